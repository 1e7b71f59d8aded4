//! Lookups: work a resolver hands to its runtime (a database query, an HTTP request)
//! and resumes on, the way it resumes on an upstream exchange. The core carries the job
//! and its result as opaque [`Payload`]s and never looks inside.

use std::any::Any;
use std::fmt;

/// A resolver's job for the runtime, or the job's result: a value of the user's own type.
/// The core never looks inside; the runtime and the resolver agree on the types.
///
/// ```
/// use names_core::Payload;
///
/// let job = Payload::new(String::from("registry/v1/web"));
/// assert_eq!(job.downcast_ref::<String>().map(String::as_str), Some("registry/v1/web"));
/// let job = job.downcast::<u32>().unwrap_err(); // not a u32: given back whole
/// assert_eq!(job.downcast::<String>().unwrap(), "registry/v1/web");
/// ```
pub struct Payload(Box<dyn Any + Send>);

impl Payload {
    /// Wraps a value.
    pub fn new<T: Any + Send>(value: T) -> Payload {
        Payload(Box::new(value))
    }

    /// The value, if it is a `T`; otherwise the payload back, unchanged.
    pub fn downcast<T: Any>(self) -> Result<T, Payload> {
        match self.0.downcast::<T>() {
            Ok(value) => Ok(*value),
            Err(other) => Err(Payload(other)),
        }
    }

    /// A reference to the value, if it is a `T`.
    pub fn downcast_ref<T: Any>(&self) -> Option<&T> {
        self.0.downcast_ref::<T>()
    }

    /// Whether the value is a `T`.
    pub fn is<T: Any>(&self) -> bool {
        self.0.is::<T>()
    }
}

/// Payloads are opaque: one is equal only to itself (the same value in the same place),
/// never to another holding an equal value.
impl PartialEq for Payload {
    fn eq(&self, other: &Payload) -> bool {
        let (a, b): (&dyn Any, &dyn Any) = (&*self.0, &*other.0);
        a.type_id() == b.type_id() && std::ptr::addr_eq(a as *const dyn Any, b as *const dyn Any)
    }
}

impl Eq for Payload {}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Payload(..)")
    }
}

/// One lookup in flight, named by the core in [`Action::Lookup`](crate::Action::Lookup);
/// the runtime gives it back with the result. Never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LookupId(pub u64);

/// How a lookup ended, as given to [`Resolver::on_lookup`](crate::Resolver::on_lookup).
#[derive(Debug)]
pub enum LookupOutcome {
    /// The runtime ran the job: its result.
    Done(Payload),
    /// The query's budget ([`Config::budget`](crate::Config::budget)) ended first; the
    /// runtime was told to drop the job ([`Action::CancelLookup`](crate::Action::CancelLookup)).
    TimedOut,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_equal_only_themselves() {
        let a = Payload::new(5u32);
        let b = Payload::new(5u32);
        assert_eq!(a, a);
        assert_ne!(a, b, "equal values, different payloads");
        let (unit, other_zst) = (Payload::new(()), Payload::new(LookupId(0)));
        assert_ne!(
            unit,
            Payload::new([0u8; 0]),
            "zero-sized values of other types"
        );
        assert_ne!(unit, other_zst);
        assert!(a.is::<u32>() && !a.is::<u64>());
        assert_eq!(format!("{a:?}"), "Payload(..)");
        let back = a.downcast::<u64>().unwrap_err();
        assert_eq!(back.downcast::<u32>().unwrap(), 5);
    }
}
