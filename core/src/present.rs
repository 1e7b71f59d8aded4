//! Messages as text: master-file format, one record per line (for `names query`).

use bytes::Bytes;
use domain::base::Message;

use crate::record::{read_sections, Rr};

/// The answer, authority and additional records of a message, one line each:
/// `owner TTL class type data`.
pub fn record_lines(msg: &Message<Bytes>) -> Vec<String> {
    match read_sections(msg) {
        Ok(s) => s
            .answer
            .iter()
            .chain(&s.authority)
            .chain(&s.additional)
            .map(record_line)
            .collect(),
        Err(_) => vec![";; unreadable records".to_string()],
    }
}

/// One record in master-file format.
pub fn record_line(rr: &Rr) -> String {
    format!(
        "{} {} {} {} {}",
        rr.owner().fmt_with_dot(),
        rr.ttl().as_secs(),
        rr.class(),
        rr.rtype(),
        rr.data()
    )
}
