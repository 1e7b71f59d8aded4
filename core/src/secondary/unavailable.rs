//! SERVFAIL for secondary zones that have no data to serve: before their first transfer,
//! and once expired (as NSD and Knot answer; REFUSED would send resolvers away for good).

use bytes::Bytes;
use domain::base::Name;

use crate::resolver::{Answer, Context, Query, Resolution, Resolver};
use crate::zone::{Snapshot, ZoneSet};

/// Answers SERVFAIL for names in the secondary zones not served now, unless a zone
/// served below them holds the name. First in the chain, before the zones.
pub struct Unavailable {
    origins: Snapshot<Vec<Name<Bytes>>>,
    zones: Snapshot<ZoneSet>,
}

impl Unavailable {
    /// A resolver over the origins not served (a runtime stores a new list when a zone
    /// expires or comes back) and the zones served.
    pub fn new(origins: Snapshot<Vec<Name<Bytes>>>, zones: Snapshot<ZoneSet>) -> Unavailable {
        Unavailable { origins, zones }
    }
}

impl Resolver for Unavailable {
    fn name(&self) -> &str {
        "secondary"
    }

    fn resolve(&mut self, query: &Query<'_>, _cx: &mut Context) -> Resolution {
        let origins = self.origins.load();
        let qname = query.qname();
        let Some(unavailable) = origins
            .iter()
            .filter(|o| qname.ends_with(*o))
            .map(|o| o.label_count())
            .max()
        else {
            return Resolution::Pass;
        };
        let zones = self.zones.load();
        let closer = zones
            .zones()
            .iter()
            .any(|z| z.origin().label_count() > unavailable && qname.ends_with(z.origin()));
        if closer {
            Resolution::Pass
        } else {
            Resolution::Answer(Answer::servfail())
        }
    }
}
