//! Presentation-form record data for the types `domain`'s zone file scanner cannot read
//! (LOC, SPF, AFSDB, ...), written as wire data.
//!
//! The loader hands such a record to the scanner in the RFC 3597 generic form
//! (`TYPEnnn \# len hex`), which it reads for any type; this module turns the record's
//! presentation form into those bytes, one function a type shape. It also refuses the
//! meta types, which no zone may hold.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use bytes::Bytes;
use domain::base::iana::{Rtype, SecurityAlgorithm};
use domain::base::Name;
use domain::rdata::dnssec::RtypeBitmapBuilder;

/// The types `domain` 0.12 scans itself (its `ZoneRecordData`).
const SCANNED: &[Rtype] = &[
    Rtype::A,
    Rtype::CNAME,
    Rtype::HINFO,
    Rtype::MB,
    Rtype::MD,
    Rtype::MF,
    Rtype::MG,
    Rtype::MINFO,
    Rtype::MR,
    Rtype::MX,
    Rtype::NS,
    Rtype::PTR,
    Rtype::SOA,
    Rtype::TXT,
    Rtype::AAAA,
    Rtype::CAA,
    Rtype::CDNSKEY,
    Rtype::CDS,
    Rtype::DNAME,
    Rtype::DNSKEY,
    Rtype::RRSIG,
    Rtype::NSEC,
    Rtype::DS,
    Rtype::IPSECKEY,
    Rtype::NAPTR,
    Rtype::NSEC3,
    Rtype::NSEC3PARAM,
    Rtype::OPENPGPKEY,
    Rtype::RP,
    Rtype::SRV,
    Rtype::SSHFP,
    Rtype::SVCB,
    Rtype::HTTPS,
    Rtype::TLSA,
    Rtype::ZONEMD,
];

/// Why a zone cannot hold a record of `rtype`, for the meta and query-only types.
pub(super) fn refused(rtype: Rtype) -> Option<&'static str> {
    match rtype {
        Rtype::OPT => Some("OPT is an EDNS pseudo-record (RFC 6891), not zone data"),
        Rtype::TSIG | Rtype::TKEY => {
            Some("a transaction meta type (RFC 8945, 2930), not zone data")
        }
        Rtype::AXFR | Rtype::IXFR | Rtype::ANY | Rtype::MAILA | Rtype::MAILB => {
            Some("a query type (RFC 1035 3.2.3), not zone data")
        }
        _ => None,
    }
}

/// How a record of `rtype` written in presentation form is read.
pub(super) enum Reader {
    /// By `domain`'s scanner.
    Scanner,
    /// By [`rdata`] here.
    Here,
    /// By neither: only the generic form (`\# len hex`) can carry it.
    GenericOnly,
}

/// Who reads the presentation form of `rtype`.
pub(super) fn reader(rtype: Rtype) -> Reader {
    if SCANNED.contains(&rtype) {
        Reader::Scanner
    } else if HERE.contains(&rtype) {
        Reader::Here
    } else {
        Reader::GenericOnly
    }
}

/// The types [`rdata`] reads.
const HERE: &[Rtype] = &[
    Rtype::LOC,
    Rtype::SPF,
    Rtype::AVC,
    Rtype::X25,
    Rtype::ISDN,
    Rtype::AFSDB,
    Rtype::RT,
    Rtype::KX,
    Rtype::LP,
    Rtype::PX,
    Rtype::L32,
    Rtype::L64,
    Rtype::NID,
    Rtype::EUI48,
    Rtype::EUI64,
    Rtype::URI,
    Rtype::DHCID,
    Rtype::SMIMEA,
    Rtype::DLV,
    Rtype::KEY,
    Rtype::CERT,
    Rtype::CSYNC,
    Rtype::APL,
    Rtype::NSAP,
    Rtype::WKS,
    Rtype::SIG,
    Rtype::NXT,
];

/// A token of record data: its text (quotes removed) and whether it was quoted.
#[derive(Clone, Copy)]
pub(super) struct Token<'a> {
    pub text: &'a str,
    pub quoted: bool,
}

/// The wire rdata of a record of `rtype` (one of [`HERE`]) from its presentation tokens;
/// relative names are completed with `origin`.
pub(super) fn rdata(
    rtype: Rtype,
    tokens: &[Token<'_>],
    origin: &Name<Bytes>,
) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut t = Tokens { tokens, next: 0 };
    match rtype {
        Rtype::LOC => loc(&mut t, &mut out)?,
        Rtype::SPF | Rtype::AVC => {
            charstr(t.next()?, &mut out)?;
            while let Some(token) = t.maybe() {
                charstr(token, &mut out)?;
            }
        }
        Rtype::X25 => charstr(t.next()?, &mut out)?,
        Rtype::ISDN => {
            charstr(t.next()?, &mut out)?;
            if let Some(token) = t.maybe() {
                charstr(token, &mut out)?;
            }
        }
        Rtype::AFSDB | Rtype::RT | Rtype::KX | Rtype::LP => {
            u16_(t.plain()?, &mut out)?;
            name(t.plain()?, origin, &mut out)?;
        }
        Rtype::PX => {
            u16_(t.plain()?, &mut out)?;
            name(t.plain()?, origin, &mut out)?;
            name(t.plain()?, origin, &mut out)?;
        }
        Rtype::L32 => {
            u16_(t.plain()?, &mut out)?;
            let addr = Ipv4Addr::from_str(t.plain()?).map_err(|_| "expected an IPv4 address")?;
            out.extend_from_slice(&addr.octets());
        }
        Rtype::L64 | Rtype::NID => {
            u16_(t.plain()?, &mut out)?;
            locator64(t.plain()?, &mut out)?;
        }
        Rtype::EUI48 => eui(t.plain()?, 6, &mut out)?,
        Rtype::EUI64 => eui(t.plain()?, 8, &mut out)?,
        Rtype::URI => {
            u16_(t.plain()?, &mut out)?;
            u16_(t.plain()?, &mut out)?;
            // The target is the rest of the rdata, without a length octet (RFC 7553 4.5).
            let target = unescape(t.next()?.text)?;
            if target.is_empty() {
                return Err("the URI target is empty".into());
            }
            out.extend_from_slice(&target);
        }
        Rtype::DHCID => out.extend(base64(&t.rest()?)?),
        Rtype::SMIMEA => {
            for _ in 0..3 {
                u8_(t.plain()?, &mut out)?;
            }
            out.extend(hex(&t.rest()?)?);
        }
        Rtype::DLV => {
            u16_(t.plain()?, &mut out)?;
            algorithm(t.plain()?, &mut out)?;
            u8_(t.plain()?, &mut out)?;
            out.extend(hex(&t.rest()?)?);
        }
        Rtype::KEY => {
            u16_(t.plain()?, &mut out)?;
            u8_(t.plain()?, &mut out)?;
            algorithm(t.plain()?, &mut out)?;
            out.extend(base64(&t.rest()?)?);
        }
        Rtype::CERT => {
            cert_type(t.plain()?, &mut out)?;
            u16_(t.plain()?, &mut out)?;
            algorithm(t.plain()?, &mut out)?;
            out.extend(base64(&t.rest()?)?);
        }
        Rtype::CSYNC => {
            let serial: u32 = t
                .plain()?
                .parse()
                .map_err(|_| "expected a serial (0-4294967295)")?;
            out.extend_from_slice(&serial.to_be_bytes());
            u16_(t.plain()?, &mut out)?;
            let mut bitmap = RtypeBitmapBuilder::new_vec();
            while let Some(token) = t.maybe() {
                let rtype = Rtype::from_str(token.text)
                    .map_err(|_| format!("{} is not a record type", token.text))?;
                bitmap.add(rtype).map_err(|_| "type bitmap too long")?;
            }
            out.extend_from_slice(bitmap.finalize().as_slice());
        }
        Rtype::APL => {
            while let Some(token) = t.maybe() {
                apl_item(token.text, &mut out)?;
            }
        }
        Rtype::NSAP => {
            let text = t.plain()?;
            let digits = text
                .strip_prefix("0x")
                .or_else(|| text.strip_prefix("0X"))
                .ok_or("an NSAP address starts with 0x")?;
            out.extend(hex(&digits.replace('.', ""))?);
        }
        Rtype::WKS => wks(&mut t, &mut out)?,
        Rtype::SIG => sig(&mut t, origin, &mut out)?,
        Rtype::NXT => {
            // RFC 2535 5.2: the next name, then one bit a type (types 1 to 127).
            name(t.plain()?, origin, &mut out)?;
            let mut bitmap = Vec::new();
            while let Some(token) = t.maybe() {
                let rtype = Rtype::from_str(token.text)
                    .map_err(|_| format!("{} is not a record type", token.text))?;
                let value = rtype.to_int();
                if value == 0 || value > 127 {
                    return Err(format!(
                        "{rtype} cannot be in an NXT bitmap (types 1 to 127)"
                    ));
                }
                set_bit(&mut bitmap, value);
            }
            out.extend_from_slice(&bitmap);
        }
        _ => return Err(format!("no presentation-form reader for {rtype}")),
    }
    if let Some(extra) = t.maybe() {
        return Err(format!("unexpected {:?} after the record data", extra.text));
    }
    if out.len() > usize::from(u16::MAX) {
        return Err("record data longer than 65535 octets".into());
    }
    Ok(out)
}

/// The tokens of one record's data, taken in turn.
struct Tokens<'t, 'a> {
    tokens: &'t [Token<'a>],
    next: usize,
}

impl<'t, 'a> Tokens<'t, 'a> {
    fn maybe(&mut self) -> Option<&'t Token<'a>> {
        let token = self.tokens.get(self.next)?;
        self.next += 1;
        Some(token)
    }

    fn next(&mut self) -> Result<&'t Token<'a>, String> {
        self.maybe()
            .ok_or_else(|| "record data ends early".to_string())
    }

    /// An unquoted token.
    fn plain(&mut self) -> Result<&'a str, String> {
        let token = self.next()?;
        if token.quoted {
            return Err(format!("unexpected quoted {:?}", token.text));
        }
        Ok(token.text)
    }

    /// Every token left, joined (base64 and hex may be split by blanks).
    fn rest(&mut self) -> Result<String, String> {
        let mut joined = String::new();
        while let Some(token) = self.maybe() {
            joined.push_str(token.text);
        }
        if joined.is_empty() {
            return Err("record data ends early".into());
        }
        Ok(joined)
    }
}

fn u8_(text: &str, out: &mut Vec<u8>) -> Result<(), String> {
    out.push(number(text, u8::MAX.into())? as u8);
    Ok(())
}

fn u16_(text: &str, out: &mut Vec<u8>) -> Result<(), String> {
    out.extend_from_slice(&(number(text, u16::MAX.into())? as u16).to_be_bytes());
    Ok(())
}

/// A decimal number from 0 to `max`.
fn number(text: &str, max: u32) -> Result<u32, String> {
    text.parse::<u32>()
        .ok()
        .filter(|&value| value <= max)
        .ok_or_else(|| format!("{text:?} is not a number from 0 to {max}"))
}

/// A DNSSEC algorithm by number or mnemonic (RFC 4034 A.1).
fn algorithm(text: &str, out: &mut Vec<u8>) -> Result<(), String> {
    let alg =
        SecurityAlgorithm::from_str(text).map_err(|_| format!("{text:?} is not an algorithm"))?;
    out.push(alg.to_int());
    Ok(())
}

/// A CERT type by number or mnemonic (RFC 4398 2.1).
fn cert_type(text: &str, out: &mut Vec<u8>) -> Result<(), String> {
    const MNEMONICS: &[(&str, u16)] = &[
        ("PKIX", 1),
        ("SPKI", 2),
        ("PGP", 3),
        ("IPKIX", 4),
        ("ISPKI", 5),
        ("IPGP", 6),
        ("ACPKIX", 7),
        ("IACPKIX", 8),
        ("URI", 253),
        ("OID", 254),
    ];
    match MNEMONICS.iter().find(|(m, _)| m.eq_ignore_ascii_case(text)) {
        Some(&(_, value)) => {
            out.extend_from_slice(&value.to_be_bytes());
            Ok(())
        }
        None => u16_(text, out),
    }
}

/// A domain name, relative ones below `origin`, uncompressed.
fn name(text: &str, origin: &Name<Bytes>, out: &mut Vec<u8>) -> Result<(), String> {
    let full = if text == "@" {
        Some(origin.clone())
    } else {
        absolute(text, Some(origin))
    };
    let full = full.ok_or_else(|| format!("{text:?} is not a domain name"))?;
    out.extend_from_slice(full.as_slice());
    Ok(())
}

/// `name` made absolute below `origin` (as `$ORIGIN` takes it), if it is a valid name.
pub(super) fn absolute(name: &str, origin: Option<&Name<Bytes>>) -> Option<Name<Bytes>> {
    // A final dot ends an absolute name unless escaped (an odd run of backslashes).
    if let Some(head) = name.strip_suffix('.') {
        if head.bytes().rev().take_while(|&b| b == b'\\').count() % 2 == 0 {
            return Name::bytes_from_str(name).ok();
        }
    }
    match origin {
        Some(o) if o.is_root() => Name::bytes_from_str(&format!("{name}.")).ok(),
        Some(o) => Name::bytes_from_str(&format!("{name}.{}", o.fmt_with_dot())).ok(),
        None => None,
    }
}

/// A character string (RFC 1035 5.1): escapes decoded, at most 255 octets.
fn charstr(token: &Token<'_>, out: &mut Vec<u8>) -> Result<(), String> {
    let bytes = unescape(token.text)?;
    let len = u8::try_from(bytes.len()).map_err(|_| "character string longer than 255 octets")?;
    out.push(len);
    out.extend_from_slice(&bytes);
    Ok(())
}

/// `\X` and `\DDD` decoded.
fn unescape(text: &str) -> Result<Vec<u8>, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let digits = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(u8::is_ascii_digit));
        if let Some(d) = digits {
            let value = d.iter().fold(0u32, |v, &c| v * 10 + u32::from(c - b'0'));
            out.push(u8::try_from(value).map_err(|_| format!("escape \\{value} is over 255"))?);
            i += 4;
        } else {
            let &c = bytes.get(i + 1).ok_or("a lone \\ at the end")?;
            out.push(c);
            i += 2;
        }
    }
    Ok(out)
}

fn base64(text: &str) -> Result<Vec<u8>, String> {
    domain::utils::base64::decode::<Vec<u8>>(text).map_err(|e| format!("bad base64: {e}"))
}

fn hex(text: &str) -> Result<Vec<u8>, String> {
    domain::utils::base16::decode_vec(text).map_err(|e| format!("bad hex: {e}"))
}

/// Four groups of up to four hex digits (RFC 6742 2.3): `0014:4fff:ff20:ee64`.
fn locator64(text: &str, out: &mut Vec<u8>) -> Result<(), String> {
    let groups: Vec<&str> = text.split(':').collect();
    if groups.len() != 4 {
        return Err(format!(
            "{text:?} is not a 64-bit locator (four hex groups)"
        ));
    }
    for group in groups {
        let value = u16::from_str_radix(group, 16)
            .ok()
            .filter(|_| (1..=4).contains(&group.len()))
            .ok_or_else(|| format!("{text:?} is not a 64-bit locator"))?;
        out.extend_from_slice(&value.to_be_bytes());
    }
    Ok(())
}

/// An EUI-48 or EUI-64 as hyphen-separated hex pairs (RFC 7043 3.2, 4.2).
fn eui(text: &str, len: usize, out: &mut Vec<u8>) -> Result<(), String> {
    let pairs: Vec<&str> = text.split('-').collect();
    if pairs.len() != len || pairs.iter().any(|p| p.len() != 2) {
        return Err(format!("{text:?} is not {len} hyphen-separated hex pairs"));
    }
    for pair in pairs {
        out.push(
            u8::from_str_radix(pair, 16).map_err(|_| format!("{text:?}: bad hex pair {pair:?}"))?,
        );
    }
    Ok(())
}

/// One APL item, `[!]afi:address/prefix` (RFC 3123 5), address trailing zeros trimmed.
fn apl_item(text: &str, out: &mut Vec<u8>) -> Result<(), String> {
    let bad = || format!("{text:?} is not an APL item ([!]afi:address/prefix)");
    let (negated, item) = match text.strip_prefix('!') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (afi, rest) = item.split_once(':').ok_or_else(bad)?;
    let (addr, prefix) = rest.rsplit_once('/').ok_or_else(bad)?;
    let prefix: u8 = prefix.parse().map_err(|_| bad())?;
    let (afi, mut bytes, max) = match afi {
        "1" => (
            1u16,
            Ipv4Addr::from_str(addr)
                .map_err(|_| bad())?
                .octets()
                .to_vec(),
            32,
        ),
        "2" => (
            2u16,
            Ipv6Addr::from_str(addr)
                .map_err(|_| bad())?
                .octets()
                .to_vec(),
            128,
        ),
        _ => return Err(format!("{text:?}: address family {afi} is not 1 or 2")),
    };
    if prefix > max {
        return Err(format!("{text:?}: prefix longer than {max}"));
    }
    while bytes.last() == Some(&0) {
        bytes.pop();
    }
    out.extend_from_slice(&afi.to_be_bytes());
    out.push(prefix);
    out.push(bytes.len() as u8 | if negated { 0x80 } else { 0 });
    out.extend_from_slice(&bytes);
    Ok(())
}

/// WKS (RFC 1035 3.4.2): address, protocol, then the services by port number.
fn wks(t: &mut Tokens<'_, '_>, out: &mut Vec<u8>) -> Result<(), String> {
    let addr = Ipv4Addr::from_str(t.plain()?).map_err(|_| "expected an IPv4 address")?;
    out.extend_from_slice(&addr.octets());
    let protocol = t.plain()?;
    match protocol.to_ascii_lowercase().as_str() {
        "tcp" => out.push(6),
        "udp" => out.push(17),
        _ => u8_(protocol, out)?,
    }
    let mut bitmap = Vec::new();
    while let Some(token) = t.maybe() {
        let port: u16 = token
            .text
            .parse()
            .map_err(|_| format!("service {:?}: write it as a port number", token.text))?;
        set_bit(&mut bitmap, port);
    }
    out.extend_from_slice(&bitmap);
    Ok(())
}

/// SIG (RFC 2535 7.2), written as RRSIG is (RFC 4034 3.2): type covered, algorithm,
/// labels, original TTL, expiration, inception, key tag, signer, signature.
fn sig(t: &mut Tokens<'_, '_>, origin: &Name<Bytes>, out: &mut Vec<u8>) -> Result<(), String> {
    let covered = t.plain()?;
    let covered =
        Rtype::from_str(covered).map_err(|_| format!("{covered} is not a record type"))?;
    out.extend_from_slice(&covered.to_int().to_be_bytes());
    algorithm(t.plain()?, out)?;
    u8_(t.plain()?, out)?;
    let ttl: u32 = t.plain()?.parse().map_err(|_| "expected an original TTL")?;
    out.extend_from_slice(&ttl.to_be_bytes());
    for _ in 0..2 {
        let text = t.plain()?;
        let time = domain::rdata::dnssec::Timestamp::from_str(text)
            .map_err(|_| format!("{text:?} is not a signature time"))?;
        out.extend_from_slice(&time.into_int().to_be_bytes());
    }
    u16_(t.plain()?, out)?;
    name(t.plain()?, origin, out)?;
    out.extend(base64(&t.rest()?)?);
    Ok(())
}

/// Sets bit `n` of a bitmap that grows as needed, most significant bit first (the WKS
/// and NXT bitmaps).
fn set_bit(bitmap: &mut Vec<u8>, n: u16) {
    let byte = usize::from(n / 8);
    if bitmap.len() <= byte {
        bitmap.resize(byte + 1, 0);
    }
    bitmap[byte] |= 0x80 >> (n % 8);
}

/// LOC (RFC 1876 3):
/// `d1 [m1 [s1]] N|S d2 [m2 [s2]] E|W alt[m] [size[m] [hp[m] [vp[m]]]]`.
fn loc(t: &mut Tokens<'_, '_>, out: &mut Vec<u8>) -> Result<(), String> {
    let latitude = loc_angle(t, 90, ('N', 'S'))?;
    let longitude = loc_angle(t, 180, ('E', 'W'))?;
    let altitude = t.plain()?;
    let cm = decimal(altitude.strip_suffix('m').unwrap_or(altitude), 2)
        .filter(|cm| (-10_000_000..=4_284_967_295).contains(cm))
        .ok_or_else(|| format!("altitude {altitude:?} is not from -100000.00 to 42849672.95 m"))?;
    // Size 1 m, horizontal precision 10 km, vertical 10 m unless given (RFC 1876 3).
    let mut precision = [0x12, 0x16, 0x13];
    for slot in &mut precision {
        let Some(token) = t.maybe() else { break };
        *slot = loc_size(token.text)?;
    }
    out.push(0); // version
    out.extend_from_slice(&precision);
    out.extend_from_slice(&latitude.to_be_bytes());
    out.extend_from_slice(&longitude.to_be_bytes());
    out.extend_from_slice(&((cm + 10_000_000) as u32).to_be_bytes());
    Ok(())
}

/// Degrees, optional minutes and seconds, and a hemisphere letter, as thousandths of an
/// arc second from 2^31.
fn loc_angle(
    t: &mut Tokens<'_, '_>,
    max_degrees: i64,
    (plus, minus): (char, char),
) -> Result<u32, String> {
    let mut parts = Vec::new();
    let sign = loop {
        let token = t.plain()?;
        if token.eq_ignore_ascii_case(&plus.to_string()) {
            break 1;
        }
        if token.eq_ignore_ascii_case(&minus.to_string()) {
            break -1;
        }
        if parts.len() == 3 {
            return Err(format!("expected {plus} or {minus}, found {token:?}"));
        }
        parts.push(token);
    };
    let bad = || format!("{} {plus}|{minus} is not a LOC angle", parts.join(" "));
    let degrees: i64 = parts.first().ok_or_else(bad)?.parse().map_err(|_| bad())?;
    let minutes: i64 = parts
        .get(1)
        .map_or(Ok(0), |m| m.parse())
        .map_err(|_| bad())?;
    let millis = parts
        .get(2)
        .map_or(Some(0), |s| decimal(s, 3))
        .ok_or_else(bad)?;
    if !(0..60).contains(&minutes) || !(0..60_000).contains(&millis) || degrees < 0 {
        return Err(bad());
    }
    let total = (degrees * 3600 + minutes * 60) * 1000 + millis;
    if total > max_degrees * 3_600_000 {
        return Err(bad());
    }
    Ok(((1i64 << 31) + sign * total) as u32)
}

/// A size or precision in metres as RFC 1876's mantissa and power of ten of centimetres.
fn loc_size(text: &str) -> Result<u8, String> {
    let bad = || format!("size {text:?} is not from 0 to 90000000.00 m");
    let mut cm = decimal(text.strip_suffix('m').unwrap_or(text), 2)
        .filter(|cm| (0..=9_000_000_000).contains(cm))
        .ok_or_else(bad)?;
    let mut exponent = 0;
    while cm >= 10 {
        cm /= 10;
        exponent += 1;
    }
    Ok(((cm as u8) << 4) | exponent)
}

/// A decimal number with at most `places` fraction digits, times 10^places.
fn decimal(text: &str, places: u32) -> Option<i64> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty()
        || whole.len() > 12
        || !all_digits(whole)
        || !all_digits(fraction)
        || fraction.len() > places as usize
    {
        return None;
    }
    let mut value: i64 = whole.parse().ok()?;
    for i in 0..places as usize {
        let digit = fraction
            .as_bytes()
            .get(i)
            .map_or(0, |d| i64::from(d - b'0'));
        value = value * 10 + digit;
    }
    Some(if negative { -value } else { value })
}

/// `rdata` as the generic form the scanner reads: `\# len hex`.
pub(super) fn generic(rdata: &[u8]) -> String {
    let mut text = format!("\\# {}", rdata.len());
    if !rdata.is_empty() {
        text.push(' ');
        for byte in rdata {
            text.push_str(&format!("{byte:02x}"));
        }
    }
    text
}
