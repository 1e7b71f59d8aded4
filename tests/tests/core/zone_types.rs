//! Record types in the zone loader: every type NSD reads in presentation form, the RFC 3597
//! generic form for any type, and the types no zone may hold.

use std::path::Path;

use names_core::domain::base::iana::Rtype;
use names_core::domain::base::rdata::ComposeRecordData;
use names_core::domain::rdata::AllRecordData;
use names_core::zone::{load_zone, LoadError, Zone, ZoneSet};
use names_tests::build::name;

fn load(text: &str) -> Result<Zone, LoadError> {
    load_zone("t.zone", text, &mut |p, _| {
        Err(format!("unexpected include {p}"))
    })
}

fn with_soa(records: &str) -> String {
    format!("$ORIGIN example.\n@ 300 SOA ns h 1 2 3 4 5\n{records}\n")
}

/// The wire rdata of the one record of `qtype` at `owner`.
fn rdata(set: &ZoneSet, owner: &str, qtype: Rtype) -> Vec<u8> {
    let answer = set.answer(&name(owner), qtype).expect("inside the zone");
    assert_eq!(answer.answer.len(), 1, "{owner} {qtype}: one record");
    let rr = &answer.answer[0];
    assert_eq!(rr.rtype(), qtype);
    let mut wire = Vec::new();
    rr.data().compose_rdata(&mut wire).unwrap();
    wire
}

fn types_zone() -> ZoneSet {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/core/data/types.zone");
    let text = std::fs::read_to_string(path).unwrap();
    ZoneSet::new(vec![load_zone("types.zone", &text, &mut |_, _| {
        Err("none".into())
    })
    .unwrap()])
    .unwrap()
}

#[test]
fn every_type_nsd_reads_loads_and_answers_its_own_queries() {
    let set = types_zone();
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/core/data/types.zone"),
    )
    .unwrap();
    let mut checked = 0;
    for line in text
        .lines()
        .filter(|l| !l.starts_with([';', '$', '@', ' ']))
    {
        let mut words = line.split_whitespace();
        let (Some(owner), Some(rtype)) = (words.next(), words.next()) else {
            continue;
        };
        if rtype == "(" || owner == "ns" {
            continue;
        }
        let rtype: Rtype = rtype.parse().unwrap();
        let owner = if owner == "afsdb-relative" {
            "afsdb-relative.sub.example".to_string()
        } else {
            format!("{owner}.example")
        };
        rdata(&set, &owner, rtype);
        checked += 1;
    }
    assert!(checked >= 70, "{checked} records checked");
}

#[test]
fn our_readers_give_nsds_bytes() {
    let set = types_zone();
    // NSD 4.6's bytes for the same text (dig +unknownformat against it).
    for (owner, rtype, nsd) in [
        ("loc", Rtype::LOC, "0033161389172dd070be15f000988d20"),
        ("loc-lines", Rtype::LOC, "001224138917069070bf2dd800988d20"),
        ("spf-2", Rtype::SPF, "06763d737066310761202271222041"),
        ("afsdb", Rtype::AFSDB, "00010178076578616d706c6500"),
        ("kx", Rtype::KX, "000a0178076578616d706c6500"),
        ("eui64", Rtype::EUI64, "00005eef1000002a"),
        (
            "uri",
            Rtype::URI,
            "000a00016674703a2f2f667470312e6578616d706c652e636f6d2f7075626c6963",
        ),
        ("csync-2", Rtype::CSYNC, "000000420003"),
        ("apl-2", Rtype::APL, ""),
        ("a-generic", Rtype::A, "0a000001"),
        ("type12345-2", Rtype::from_int(12345), ""),
    ] {
        let got: String = rdata(&set, &format!("{owner}.example"), rtype)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(got, nsd, "{owner} {rtype}");
    }
    // Names in rdata are completed with the $ORIGIN in force.
    let relative = rdata(&set, "afsdb-relative.sub.example", Rtype::AFSDB);
    assert_eq!(&relative[2..], b"\x02db\x03sub\x07example\x00");
}

#[test]
fn generic_form_of_a_known_type_is_checked_as_that_type() {
    let zone = load(&with_soa("a A \\# 4 0a000001")).unwrap();
    let set = ZoneSet::new(vec![zone]).unwrap();
    let answer = set.answer(&name("a.example"), Rtype::A).unwrap();
    assert!(
        matches!(answer.answer[0].data(), AllRecordData::A(a) if a.addr().octets() == [10, 0, 0, 1])
    );
    let short = load(&with_soa("a A \\# 3 0a0000")).unwrap_err();
    assert_eq!(short.line, Some(3), "{short}");
    let long = load(&with_soa("a A \\# 5 0a00000100")).unwrap_err();
    assert!(
        long.to_string()
            .starts_with("t.zone:3: A record data has 1 octets too many"),
        "{long}"
    );
    let mx = load(&with_soa("m MX \\# 3 000a00")).unwrap();
    assert_eq!(mx.record_count(), 2);
    let mismatch = load(&with_soa("x TYPE12345 \\# 2 00")).unwrap_err();
    assert_eq!(mismatch.line, Some(3), "{mismatch}");
}

#[test]
fn meta_types_are_refused_at_their_line() {
    for record in [
        "x OPT \\# 0",
        "x TYPE41 \\# 0",
        "x TSIG \\# 0",
        "x TKEY \\# 0",
        "x AXFR \\# 0",
        "x IXFR \\# 0",
        "x ANY \\# 0",
        "x MAILA \\# 0",
        "x MAILB \\# 0",
        "x OPT 1 2 3",
        "x ANY 1.2.3.4",
    ] {
        let e = load(&with_soa(&format!("ok A 1.2.3.4\n{record}"))).unwrap_err();
        assert_eq!(e.line, Some(4), "{record}: {e}");
        assert!(e.message.contains("cannot be in a zone"), "{record}: {e}");
    }
}

#[test]
fn types_without_a_reader_say_to_use_the_generic_form() {
    let e = load(&with_soa("s NINFO \"x\"")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "t.zone:3: type NINFO is not supported in presentation form; \
         write it as RFC 3597 generic data (\\# len hex)"
    );
    let generic = load(&with_soa("s NINFO \\# 2 0178")).unwrap();
    assert_eq!(generic.record_count(), 2);
}

#[test]
fn bad_data_of_our_types_names_the_line_and_what_is_wrong() {
    for (record, words) in [
        ("l LOC 91 N 0 E 0m", "LOC"),
        ("l LOC 1 N 2 E", "ends early"),
        ("e EUI48 00-00-5e", "hex pairs"),
        ("s SPF \"unterminated", "SPF"),
        ("u URI 1 1 \"\"", "empty"),
        ("w WKS 10.0.0.1 tcp smtp", "port number"),
        ("a AFSDB 1 x y", "unexpected"),
    ] {
        let e = load(&with_soa(&format!("ok A 1.2.3.4\n\n{record}\nz A 1.2.3.4"))).unwrap_err();
        assert_eq!(e.line, Some(5), "{record}: {e}");
        assert!(e.message.contains(words), "{record}: {e}");
    }
}

#[test]
fn lines_after_a_rewritten_multiline_record_keep_their_numbers() {
    let text = with_soa("l LOC ( 42 21 54 N ; lat\n 71 06 18 W\n -24m 30m )\nbad A 1.2.3");
    let e = load(&text).unwrap_err();
    assert_eq!(e.line, Some(6), "{e}");
}

#[test]
fn hostile_presentation_data_is_an_error_not_a_panic() {
    let long_uri = format!("u URI 1 1 \"{}\"", "a".repeat(70_000));
    let many_apl = format!("a APL {}", "1:1.2.3.4/32 ".repeat(9000));
    for record in [
        "l LOC 99999999999999999999 N 0 E 0m",
        "l LOC 1 2 3.9999 N 0 E 0m",
        "l LOC 1 N 0 E 0m 1e5m",
        "l LOC - N 0 E 0m",
        "l LOC 0 N 0 E -m",
        "x X25 \\",
        "x X25 \"\\",
        "x ISDN a b c",
        "c CSYNC 1 2 NOTATYPE",
        "c CERT 99999 0 0 AQID",
        "k KEY 1 2 NOALG AQID",
        "d DHCID !!!",
        "n NSAP 47",
        "l L64 1 ::::",
        "l L32 1 1.2.3.4.5",
        long_uri.as_str(),
        many_apl.as_str(),
    ] {
        let result = load(&with_soa(record));
        assert!(result.is_err(), "{:.60}: loaded", record);
    }
}

/// The rdata of `x.example TYPE ...` loaded from `record` (`TYPE ...`), in hex.
fn wire(record: &str) -> Result<String, LoadError> {
    let zone = load(&with_soa(&format!("x {record}")))?;
    let rtype: Rtype = record.split_whitespace().next().unwrap().parse().unwrap();
    let set = ZoneSet::new(vec![zone]).unwrap();
    Ok(rdata(&set, "x.example", rtype)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

#[test]
fn loc_rfc1876_examples_give_nsds_bytes() {
    // RFC 1876 4's examples and the extremes; the bytes are NSD 4.6's for the same text.
    for (text, nsd) in [
        (
            "42 21 54 N 71 06 18 W -24m 30m",
            "0033161389172dd070be15f000988d20",
        ),
        (
            "42 21 43.952 N 71 5 6.344 W -24m 1m 200m",
            "001224138917069070bf2dd800988d20",
        ),
        (
            "52 14 05 N 00 08 50 E 10m",
            "001216138b3556c88008165000989a68",
        ),
        (
            "32 7 19 S 116 2 25 E 10m",
            "00121613791b7d2898e6486800989a68",
        ),
        (
            "90 S 180 W -100000m 90000000m 0 0.01m",
            "009900106cb0270059604e0000000000",
        ),
    ] {
        assert_eq!(wire(&format!("LOC {text}")).unwrap(), nsd, "{text}");
    }
    for bad in [
        "91 N 0 E 0m",
        "0 N 181 E 0m",
        "0 60 N 0 E 0m",
        "0 N 0 E",
        "0 N 0 E 0m 1m 1m 1m 1m",
        "0 N 0 E 0m 90000001m",
        "0 N 0 E 42849673m",
        "1 2 3 4 N 0 E 0m",
        "0 0 60 N 0 E 0m",
    ] {
        assert!(wire(&format!("LOC {bad}")).is_err(), "{bad}");
    }
}

#[test]
fn each_shape_gives_nsds_bytes() {
    for (record, nsd) in [
        (r#"SPF "v=spf1 -all""#, "0b763d73706631202d616c6c"),
        ("AFSDB 1 x", "00010178076578616d706c6500"),
        (r"KX 1 a\.", "000102612e076578616d706c6500"),
        (r"KX 1 a\\.", "000102615c00"),
        ("L32 10 10.1.2.0", "000a0a010200"),
        ("L64 10 2001:0db8:1140:1000", "000a20010db811401000"),
        ("EUI48 00-00-5e-00-53-2a", "00005e00532a"),
        (
            "APL 1:192.168.32.0/21 !1:192.168.38.0/28",
            "00011503c0a82000011c83c0a826",
        ),
        ("CSYNC 66 3 A NS AAAA", "000000420003000460000008"),
        ("WKS 192.0.2.1 6 25", "c00002010600000040"),
        ("CERT PGP 0 0 AQID", "0003000000010203"),
        (
            "SIG A 5 2 3600 20300101000000 20200101000000 12345 example. AQID",
            "0001050200000e1070dbd8805e0be1003039076578616d706c6500010203",
        ),
        ("NXT a.example. A NS", "0161076578616d706c650060"),
    ] {
        assert_eq!(wire(record).unwrap(), nsd, "{record}");
    }
    for bad in [
        "EUI48 00-00-5e-00-53",
        "L64 1 2001:db8:1",
        "APL 3:1.2.3.4/8",
        "APL 1:1.2.3.4/33",
        "AFSDB 65536 x",
        "AFSDB 1 x extra",
        "WKS 192.0.2.1 tcp smtp",
        r"X25 \256",
        "URI 1 1",
        "NXT a.example. CAA",
    ] {
        assert!(wire(bad).is_err(), "{bad}");
    }
    assert!(wire(&format!("SPF \"{}\"", "a".repeat(256))).is_err());
    assert!(wire(&format!("SPF \"{}\"", "a".repeat(255))).is_ok());
}
