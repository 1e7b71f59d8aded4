//! A zone written out as an RFC 1035 master file (`--zone-dir`), which
//! [`load_zone`](crate::zone::load_zone) reads back to the same records.
//!
//! Types whose presentation form `domain` writes so that it reads back the same are
//! written in it; every other type in the RFC 3597 generic form (`TYPEn \# len hex`),
//! which reads back the same for any type (`domain` 0.12 writes an SRV target without
//! its final dot, which would read back as a name below the origin).

use std::fmt::Write;

use domain::base::iana::Rtype;
use domain::base::rdata::ComposeRecordData;

use crate::client::record_line;
use crate::record::Rr;
use crate::zone::Zone;

/// The types written in presentation form (each checked to read back the same).
const PRESENTED: &[Rtype] = &[
    Rtype::SOA,
    Rtype::A,
    Rtype::AAAA,
    Rtype::NS,
    Rtype::CNAME,
    Rtype::DNAME,
    Rtype::PTR,
    Rtype::MX,
    Rtype::TXT,
    Rtype::CAA,
];

/// The zone as master-file text: the SOA first, then every record, one a line, absolute
/// names.
pub fn master_file(zone: &Zone) -> String {
    let mut out = format!(
        "; zone {} serial {}, written by names\n",
        zone.origin().fmt_with_dot(),
        zone.serial()
    );
    for rr in std::iter::once(zone.soa()).chain(&zone.records) {
        if PRESENTED.contains(&rr.rtype()) {
            out.push_str(&record_line(rr));
        } else {
            generic_line(&mut out, rr);
        }
        out.push('\n');
    }
    out
}

/// `owner TTL class TYPEn \# len hex` (RFC 3597 5).
fn generic_line(out: &mut String, rr: &Rr) {
    let mut data = Vec::new();
    // Composing into a Vec cannot fail.
    let _ = rr.data().compose_rdata(&mut data);
    // Writing into a String cannot fail.
    let _ = write!(
        out,
        "{} {} {} TYPE{} \\# {}",
        rr.owner().fmt_with_dot(),
        rr.ttl().as_secs(),
        rr.class(),
        rr.rtype().to_int(),
        data.len()
    );
    if !data.is_empty() {
        out.push(' ');
        for byte in data {
            let _ = write!(out, "{byte:02x}");
        }
    }
}
