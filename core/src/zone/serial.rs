//! SOA serial numbers and their arithmetic (RFC 1982, SERIAL_BITS = 32).

use std::cmp::Ordering;

/// An SOA serial. Serials wrap around: `a` is newer than `b` when `a` is ahead of `b` by
/// less than 2^31, so ordering is partial (RFC 1982 3.2): two serials exactly 2^31 apart
/// are not comparable, and `partial_cmp` says `None`.
///
/// ```
/// use names_core::zone::Serial;
/// assert!(Serial(1) > Serial(0));
/// assert!(Serial(0) > Serial(u32::MAX)); // wrapped: 0 is newer
/// assert_eq!(Serial(0).partial_cmp(&Serial(1 << 31)), None);
/// assert_eq!(Serial(u32::MAX).plus(2), Serial(1));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Serial(pub u32);

impl Serial {
    /// The serial `n` ahead (RFC 1982 3.1: `n` must be below 2^31; larger is clamped).
    #[must_use]
    pub fn plus(self, n: u32) -> Serial {
        Serial(self.0.wrapping_add(n.min(i32::MAX as u32)))
    }

    /// Whether `self` is newer than `other` (RFC 1982 3.2's `>`).
    pub fn is_newer_than(self, other: Serial) -> bool {
        self.partial_cmp(&other) == Some(Ordering::Greater)
    }
}

impl PartialOrd for Serial {
    fn partial_cmp(&self, other: &Serial) -> Option<Ordering> {
        match self.0.wrapping_sub(other.0) {
            0 => Some(Ordering::Equal),
            d if d < 1 << 31 => Some(Ordering::Greater),
            d if d > 1 << 31 => Some(Ordering::Less),
            _ => None,
        }
    }
}

impl std::fmt::Display for Serial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl From<u32> for Serial {
    fn from(n: u32) -> Serial {
        Serial(n)
    }
}

#[cfg(test)]
mod tests {
    use super::Serial;
    use proptest::prelude::*;

    #[test]
    fn rfc_1982_examples() {
        // RFC 1982 5.2 with SERIAL_BITS = 32, and the undefined pair.
        assert!(Serial(44).is_newer_than(Serial(43)));
        assert!(Serial(100).is_newer_than(Serial(u32::MAX - 100)));
        assert!(!Serial(5).is_newer_than(Serial(5)));
        assert!(!Serial(1 << 31).is_newer_than(Serial(0)));
        assert!(!Serial(0).is_newer_than(Serial(1 << 31)));
        assert_eq!(
            Serial(7).plus(u32::MAX),
            Serial(7u32.wrapping_add(i32::MAX as u32))
        );
    }

    proptest! {
        #[test]
        fn adding_less_than_half_the_space_is_newer(s: u32, n in 1u32..(1 << 31)) {
            let a = Serial(s);
            prop_assert!(a.plus(n).is_newer_than(a));
            prop_assert!(!a.is_newer_than(a.plus(n)));
            prop_assert_eq!(a.plus(n).partial_cmp(&a), a.partial_cmp(&a.plus(n)).map(|o| o.reverse()));
        }
    }
}
