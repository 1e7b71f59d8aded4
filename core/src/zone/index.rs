//! The lookup index of a zone, built once at load time.
//!
//! Names are keyed by their lowercase wire form, so a query name is looked up by
//! lowercasing it once into a stack buffer ([`Key`]) and then hashing slices of that
//! buffer: every ancestor of a name is a suffix of its wire form. No query walks the
//! records linearly.

use bytes::Bytes;
use domain::base::iana::{Class, Rtype};
use domain::base::{Name, Record, Ttl};
use domain::rdata::AllRecordData;

use crate::fasthash::FastMap;
use crate::record::Rr;

/// Most labels a name can have (255 bytes of wire form).
const MAX_LABELS: usize = 128;

/// A name's lowercase wire form and where each of its labels starts.
pub(crate) struct Key {
    buf: [u8; 255],
    len: usize,
    starts: [u8; MAX_LABELS],
    labels: usize,
}

impl Key {
    /// Lowercases `name` into a key. Length octets are at most 63, below `A`, so the
    /// whole wire form can be lowercased byte by byte.
    pub(crate) fn new(name: &Name<Bytes>) -> Key {
        Key::from_wire(name.as_slice())
    }

    pub(crate) fn from_wire(wire: &[u8]) -> Key {
        let mut key = Key {
            buf: [0; 255],
            len: wire.len().min(255),
            starts: [0; MAX_LABELS],
            labels: 0,
        };
        for (d, s) in key.buf.iter_mut().zip(wire) {
            *d = s.to_ascii_lowercase();
        }
        let mut pos = 0;
        while pos < key.len && key.buf[pos] != 0 && key.labels < MAX_LABELS {
            // `pos` < 255, so it fits a byte.
            key.starts[key.labels] = pos as u8;
            key.labels += 1;
            pos += usize::from(key.buf[pos]) + 1;
        }
        key
    }

    /// The name's own wire form.
    pub(crate) fn full(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Labels, the root not counted.
    pub(crate) fn labels(&self) -> usize {
        self.labels
    }

    /// The ancestor (or the name itself) with `keep` labels, the root not counted.
    pub(crate) fn suffix(&self, keep: usize) -> &[u8] {
        if keep >= self.labels {
            return self.full();
        }
        if keep == 0 {
            // The root: the last byte (no label starts there, so `starts` has no entry).
            return &self.buf[self.len.saturating_sub(1)..self.len];
        }
        let start = usize::from(self.starts[self.labels - keep]);
        &self.buf[start..self.len]
    }

    /// `*.` + the ancestor with `keep` labels, in `out`.
    pub(crate) fn wildcard<'o>(&self, keep: usize, out: &'o mut [u8; 257]) -> &'o [u8] {
        let suffix = self.suffix(keep);
        out[0] = 1;
        out[1] = b'*';
        let end = (2 + suffix.len()).min(out.len());
        out[2..end].copy_from_slice(&suffix[..end - 2]);
        &out[..end]
    }
}

/// The records at one name, grouped into RRsets in file order.
#[derive(Debug, Default)]
pub(crate) struct Node {
    pub(crate) rrsets: Vec<(Rtype, Vec<Rr>)>,
    /// An NS RRset below the apex: a zone cut.
    pub(crate) cut: bool,
}

impl Node {
    pub(crate) fn rrset(&self, rtype: Rtype) -> Option<&[Rr]> {
        self.rrsets
            .iter()
            .find(|(t, _)| *t == rtype)
            .map(|(_, rrs)| rrs.as_slice())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rrsets.is_empty()
    }

    fn add(&mut self, rr: Rr) {
        let rtype = rr.rtype();
        match self.rrsets.iter_mut().find(|(t, _)| *t == rtype) {
            Some((_, set)) => {
                if !set.iter().any(|r| r.data() == rr.data()) {
                    set.push(rr);
                }
            }
            None => self.rrsets.push((rtype, vec![rr])),
        }
    }
}

/// One loaded zone: its apex SOA, its records and their index.
#[derive(Debug)]
pub struct Zone {
    pub(crate) origin: Name<Bytes>,
    /// Labels of the origin, the root not counted.
    pub(crate) origin_labels: usize,
    pub(crate) soa: Rr,
    /// The SOA as negative answers carry it: TTL min(SOA TTL, MINIMUM) (RFC 2308 3).
    pub(crate) negative_soa: Rr,
    pub(crate) serial: u32,
    /// Every record but the SOA, in file order (for AXFR).
    pub(crate) records: Vec<Rr>,
    pub(crate) nodes: FastMap<Box<[u8]>, Node>,
    /// Where the zone came from (the file name), for messages.
    pub(crate) source: String,
}

impl Zone {
    /// Builds the index. `soa` must be the zone's one SOA and every record must be at
    /// or below its owner (the loader checks both).
    pub(crate) fn build(soa: Rr, records: Vec<Rr>, source: String) -> Zone {
        let origin = soa.owner().clone();
        let origin_key = Key::new(&origin);
        let (serial, minimum) = match soa.data() {
            AllRecordData::Soa(s) => (s.serial().into_int(), s.minimum().as_secs()),
            _ => (0, 0),
        };
        let negative_soa = Record::new(
            origin.clone(),
            Class::IN,
            Ttl::from_secs(soa.ttl().as_secs().min(minimum)),
            soa.data().clone(),
        );
        let mut nodes: FastMap<Box<[u8]>, Node> = FastMap::default();
        nodes
            .entry(origin_key.full().into())
            .or_default()
            .add(soa.clone());
        for rr in &records {
            let key = Key::new(rr.owner());
            // Empty non-terminals: every ancestor down from the apex exists as a node.
            for keep in origin_key.labels() + 1..key.labels() {
                nodes.entry(key.suffix(keep).into()).or_default();
            }
            let node = nodes.entry(key.full().into()).or_default();
            node.add(rr.clone());
            if rr.rtype() == Rtype::NS && key.labels() > origin_key.labels() {
                node.cut = true;
            }
        }
        Zone {
            origin_labels: origin_key.labels(),
            origin,
            soa,
            negative_soa,
            serial,
            records,
            nodes,
            source,
        }
    }

    /// The zone's name (its SOA owner).
    pub fn origin(&self) -> &Name<Bytes> {
        &self.origin
    }

    /// The SOA serial.
    pub fn serial(&self) -> u32 {
        self.serial
    }

    /// Records in the zone, the SOA included.
    pub fn record_count(&self) -> usize {
        self.records.len() + 1
    }

    /// The file (or other source) the zone was loaded from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The apex SOA record.
    pub fn soa(&self) -> &Rr {
        &self.soa
    }

    pub(crate) fn node(&self, wire: &[u8]) -> Option<&Node> {
        self.nodes.get(wire)
    }
}
