//! A zone written out as an RFC 1035 master file (`--zone-dir`), which
//! [`load_zone`](crate::zone::load_zone) reads back to the same records.

use crate::client::record_line;
use crate::zone::Zone;

/// The zone as master-file text: the SOA first, then every record, one a line, absolute
/// names.
pub fn master_file(zone: &Zone) -> String {
    let mut out = format!(
        "; zone {} serial {}, written by names\n",
        zone.origin().fmt_with_dot(),
        zone.serial()
    );
    for rr in std::iter::once(zone.soa()).chain(&zone.records) {
        out.push_str(&record_line(rr));
        out.push('\n');
    }
    out
}
