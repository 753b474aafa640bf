//! [`Time`]: the instants the rules work with, microseconds since the Unix epoch (the
//! precision of the alert JSON's timestamps). The logic never reads a clock: every instant
//! is passed in (the host's clock in the component, a test's own clock in the tests).

/// An instant, microseconds since the Unix epoch, UTC. Instants before the epoch are the
/// epoch (none occur: the host's clock and its events' timestamps are current times).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(u64);

const MICROS_PER_SECOND: u64 = 1_000_000;

impl Time {
    pub const fn from_micros(micros: u64) -> Time {
        Time(micros)
    }

    /// Seconds since the epoch as a float (a finished execution's `at`); a NaN or a
    /// negative value is the epoch.
    pub fn from_seconds(seconds: f64) -> Time {
        if seconds > 0.0 {
            // `as` saturates: a value past u64::MAX microseconds is u64::MAX.
            Time((seconds * MICROS_PER_SECOND as f64).round() as u64)
        } else {
            Time(0)
        }
    }

    /// A `datetime` of the WIT (seconds and nanoseconds since the epoch); nanoseconds
    /// below the microsecond are dropped.
    pub fn from_parts(seconds: i64, nanoseconds: u32) -> Time {
        match u64::try_from(seconds) {
            Ok(s) => Time(
                s.saturating_mul(MICROS_PER_SECOND)
                    .saturating_add(u64::from(nanoseconds.min(999_999_999) / 1000)),
            ),
            Err(_) => Time(0),
        }
    }

    pub const fn micros(self) -> u64 {
        self.0
    }

    /// Whole seconds since the epoch.
    pub fn seconds(self) -> i64 {
        // u64::MAX / 10^6 fits an i64.
        (self.0 / MICROS_PER_SECOND) as i64
    }

    /// Nanoseconds past [`seconds`](Self::seconds).
    pub fn subsec_nanos(self) -> u32 {
        ((self.0 % MICROS_PER_SECOND) * 1000) as u32
    }

    /// Microseconds from `earlier` to this instant, 0 if `earlier` is later.
    pub fn micros_since(self, earlier: Time) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    /// This instant plus `seconds`.
    pub fn plus_seconds(self, seconds: u64) -> Time {
        Time(
            self.0
                .saturating_add(seconds.saturating_mul(MICROS_PER_SECOND)),
        )
    }
}

/// Seconds as microseconds.
pub const fn seconds_to_micros(seconds: u64) -> u64 {
    seconds.saturating_mul(MICROS_PER_SECOND)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_convert_both_ways_at_microsecond_precision() {
        let t = Time::from_parts(1_705_314_645, 123_456_789);
        assert_eq!(t.micros(), 1_705_314_645_123_456);
        assert_eq!(
            (t.seconds(), t.subsec_nanos()),
            (1_705_314_645, 123_456_000)
        );
        assert_eq!(Time::from_seconds(1_705_314_645.123_456), t);
        assert_eq!(Time::from_seconds(-1.0), Time(0));
        assert_eq!(Time::from_seconds(f64::NAN), Time(0));
        assert_eq!(Time::from_parts(-5, 0), Time(0));
        assert_eq!(t.plus_seconds(2).micros_since(t), 2_000_000);
        assert_eq!(t.micros_since(t.plus_seconds(1)), 0);
    }
}
