//! Durations as the registry writes them: `"90s"`, `"15m"`, `"1h30m"`, `"1d"`, `"500ms"`.
//!
//! Whole numbers, each followed by a unit (`ms`, `s`, `m`, `h`, `d`, `w`), the units from the
//! largest to the smallest and each at most once, as Prometheus writes durations; `"0"`
//! alone is zero. [`format()`] writes the one canonical form (`"1h30m"`, never `"90m"`), which
//! the normalised registry shows.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// The longest duration the registry takes: ten years (every time sum stays far from the
/// limits of the clock's arithmetic).
pub const MAX: Duration = Duration::from_secs(3650 * 86_400);

/// The units, largest first: their names and lengths in milliseconds.
const UNITS: [(&str, u64); 6] = [
    ("w", 7 * 86_400_000),
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1000),
    ("ms", 1),
];

/// A duration that cannot be read, and what would be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Not whole numbers with units.
    #[error(
        "cannot read `{0}` as a duration: use whole numbers with the units ms, s, m, h, d or w, \
         such as \"90s\", \"15m\" or \"1h30m\""
    )]
    Unreadable(String),
    /// A unit repeated or after a smaller one (`"1m1h"`, `"5m5m"`).
    #[error(
        "cannot read `{0}` as a duration: give the units from the largest to the smallest, \
         each once (such as \"1h30m\")"
    )]
    UnitOrder(String),
    /// Longer than [`MAX`].
    #[error("`{0}` is too long: at most 3650d")]
    TooLong(String),
}

/// Reads a duration such as `"1h30m"` (see the module doc).
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let unreadable = || DurationError::Unreadable(text.to_string());
    if text.is_empty() {
        return Err(unreadable());
    }
    let mut rest = text;
    let mut total: u64 = 0;
    // The index in UNITS the next unit must come after.
    let mut next_unit = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(unreadable());
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| DurationError::TooLong(text.to_string()))?;
        rest = &rest[digits..];
        let letters = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..letters];
        rest = &rest[letters..];
        let Some(index) = UNITS.iter().position(|(name, _)| *name == unit) else {
            return Err(unreadable());
        };
        if index < next_unit {
            return Err(DurationError::UnitOrder(text.to_string()));
        }
        next_unit = index + 1;
        total = number
            .checked_mul(UNITS[index].1)
            .and_then(|ms| total.checked_add(ms))
            .ok_or_else(|| DurationError::TooLong(text.to_string()))?;
    }
    let duration = Duration::from_millis(total);
    if duration > MAX {
        return Err(DurationError::TooLong(text.to_string()));
    }
    Ok(duration)
}

/// The canonical text of `d` (whole milliseconds; weeks are written as days): `"1d2h"`,
/// `"1m30s"`, `"250ms"`, `"0s"`.
pub fn format(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (name, length) in UNITS.iter().skip(1) {
        let length = u128::from(*length);
        if ms >= length {
            out.push_str(&format!("{}{name}", ms / length));
            ms %= length;
        }
    }
    out
}

/// A duration as chrono adds it to a time (saturating at chrono's limit, far beyond [`MAX`]).
pub fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// `t` plus `d`, saturating at the latest time chrono has (never a panic).
pub fn after(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    t.checked_add_signed(to_chrono(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_unit_and_their_sums() {
        let s = Duration::from_secs;
        assert_eq!(parse("90s"), Ok(s(90)));
        assert_eq!(parse("15m"), Ok(s(900)));
        assert_eq!(parse("1h"), Ok(s(3600)));
        assert_eq!(parse("1d"), Ok(s(86_400)));
        assert_eq!(parse("2w"), Ok(s(14 * 86_400)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("1h30m"), Ok(s(5400)));
        assert_eq!(parse("1d2h3m4s5ms"), Ok(Duration::from_millis(93_784_005)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
        assert_eq!(parse("3650d"), Ok(MAX));
    }

    #[test]
    fn bad_durations_say_what_is_accepted() {
        for bad in [
            "", "h", "1", "1.5h", "-1h", " 1h", "1h ", "1 h", "1y", "1H", "ms5",
        ] {
            assert_eq!(
                parse(bad),
                Err(DurationError::Unreadable(bad.into())),
                "{bad:?}"
            );
        }
        for bad in ["1m1h", "5m5m", "1s1ms1s"] {
            assert_eq!(
                parse(bad),
                Err(DurationError::UnitOrder(bad.into())),
                "{bad}"
            );
        }
        for bad in ["3651d", "99999999999999999999s", "18446744073709551615w"] {
            assert_eq!(parse(bad), Err(DurationError::TooLong(bad.into())), "{bad}");
        }
        assert_eq!(
            parse("1.5h").unwrap_err().to_string(),
            "cannot read `1.5h` as a duration: use whole numbers with the units ms, s, m, h, d \
             or w, such as \"90s\", \"15m\" or \"1h30m\""
        );
    }

    #[test]
    fn the_canonical_form_reads_back_to_the_same_duration() {
        for (text, canonical) in [
            ("90m", "1h30m"),
            ("1w", "7d"),
            ("1500ms", "1s500ms"),
            ("0", "0s"),
            ("1d2h3m4s5ms", "1d2h3m4s5ms"),
            ("110s", "1m50s"),
        ] {
            let d = parse(text).unwrap();
            assert_eq!(format(d), canonical);
            assert_eq!(parse(canonical), Ok(d));
        }
    }
}
