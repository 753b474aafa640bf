//! A cron schedule in a time zone: `expect.schedule` (five fields, or `@hourly`, `@daily`,
//! `@weekly`, `@monthly`, `@yearly`/`@annually`) with `expect.timezone` (an IANA name).
//!
//! The crate is `croner`, with `chrono-tz` for the zones, rather than `cron`: `cron` wants a
//! seconds field (six or seven fields, not the five everyone writes) and, at a change of
//! the clocks, drops a time that does not exist (a 02:30 daily job on the night the clocks
//! spring forward from 02:00 to 03:00 would have no run that day) and yields a repeated
//! time twice (a 01:30 job on the night they fall back from 02:00 to 01:00 would run twice).
//! `croner` follows Vixie cron there, as the Open Cron Pattern Specification writes it
//! down: a job at one fixed time of day that falls in the skipped hour runs at the first
//! instant after it (03:00), and one in the repeated hour runs once, at the first of the
//! two instants; a job on a wildcard or a step of hours (`*/15 * * * *`) runs at every real
//! instant, so it has no slot in the skipped hour and two in the repeated one. A script is
//! expected to run when its scheduler would run it, and those are the times a scheduler
//! that follows Vixie cron (cron itself, systemd's calendar timers in most zones) keeps.

use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;

/// A cron schedule and the time zone its wall-clock times are read in.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    written: String,
    /// Boxed: a parsed pattern is some 300 bytes, kept once per script.
    cron: Box<Cron>,
    timezone: Tz,
}

/// A schedule or a time zone that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// Not a five-field cron pattern (six, with seconds, where they are allowed) or an
    /// alias.
    #[error("cannot read `{pattern}` as a cron schedule ({why}): {}", fields_hint(*seconds))]
    Pattern {
        /// As written.
        pattern: String,
        /// The cron parser's words.
        why: String,
        /// Whether a seconds field was allowed (the words of the hint).
        seconds: bool,
    },
    /// A pattern that no date matches (`0 0 30 2 *`).
    #[error("`{0}` never comes: no date matches it")]
    Never(String),
    /// Not an IANA time zone name.
    #[error(
        "unknown time zone `{name}`{hint} (use an IANA name such as \"Europe/Paris\" or \"UTC\")"
    )]
    Timezone {
        /// As written.
        name: String,
        /// `; did you mean ...?` or empty.
        hint: String,
    },
}

/// The aliases a schedule may be, each for its five fields.
pub const ALIASES: [&str; 6] = [
    "@hourly",
    "@daily",
    "@weekly",
    "@monthly",
    "@yearly",
    "@annually",
];

/// What a pattern may be, for the message of one that is not.
fn fields_hint(seconds: bool) -> &'static str {
    if seconds {
        "give five fields (minute hour day-of-month month day-of-week) such as \"30 2 * * *\", \
         six with seconds first such as \"*/5 * * * * *\", or @hourly, @daily, @weekly, \
         @monthly, @yearly"
    } else {
        "give five fields (minute hour day-of-month month day-of-week) such as \"30 2 * * *\", \
         or @hourly, @daily, @weekly, @monthly, @yearly"
    }
}

/// Reads a five-field cron pattern or an alias (see the module doc).
pub fn parse_pattern(pattern: &str) -> Result<Cron, ScheduleError> {
    parse_fields(pattern, false)
}

/// Reads a cron pattern of five fields, or of six with a seconds field first
/// (`*/5 * * * * *`: every five seconds), or an alias: what `run_schedule.cron` takes.
pub fn parse_pattern_with_seconds(pattern: &str) -> Result<Cron, ScheduleError> {
    parse_fields(pattern, true)
}

fn parse_fields(pattern: &str, seconds: bool) -> Result<Cron, ScheduleError> {
    let fail = |why: String| ScheduleError::Pattern {
        pattern: pattern.to_string(),
        why,
        seconds,
    };
    if pattern.starts_with('@') {
        if !ALIASES.iter().any(|a| a.eq_ignore_ascii_case(pattern)) {
            let hint = crate::suggest::did_you_mean(pattern, ALIASES);
            return Err(fail(format!("unknown alias{hint}")));
        }
    } else {
        let fields = pattern.split_whitespace().count();
        if fields != 5 && !(seconds && fields == 6) {
            return Err(fail(format!(
                "{fields} field{}",
                if fields == 1 { "" } else { "s" }
            )));
        }
    }
    let parser = CronParser::builder()
        .seconds(if seconds {
            Seconds::Optional
        } else {
            Seconds::Disallowed
        })
        .year(Year::Disallowed)
        .build();
    let cron = parser.parse(pattern).map_err(|e| {
        // The crate's words, without its own category ("Component error: ").
        let text = e.to_string();
        let text = text.split_once(": ").map_or(text.as_str(), |(_, why)| why);
        fail(text.trim_end_matches('.').to_string())
    })?;
    // The first slot after a fixed time: a calendar impossibility fails whatever the start.
    let start = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    cron.find_next_occurrence(&start, false)
        .map_err(|_| ScheduleError::Never(pattern.to_string()))?;
    Ok(cron)
}

/// Reads an IANA time zone name (`"Europe/Paris"`, `"UTC"`), with a "did you mean".
pub fn parse_timezone(name: &str) -> Result<Tz, ScheduleError> {
    Tz::from_str(name).map_err(|_| ScheduleError::Timezone {
        name: name.to_string(),
        hint: crate::suggest::did_you_mean(name, chrono_tz::TZ_VARIANTS.iter().map(|z| z.name())),
    })
}

impl Schedule {
    /// The schedule `cron` (read from `written` by [`parse_pattern`]) in `timezone`.
    pub fn new(written: impl Into<String>, cron: Cron, timezone: Tz) -> Schedule {
        Schedule {
            written: written.into(),
            cron: Box::new(cron),
            timezone,
        }
    }

    /// Reads both parts at once (tests and callers without a field to blame).
    pub fn parse(pattern: &str, timezone: &str) -> Result<Schedule, ScheduleError> {
        Ok(Schedule::new(
            pattern,
            parse_pattern(pattern)?,
            parse_timezone(timezone)?,
        ))
    }

    /// The pattern as written in the registry.
    pub fn pattern(&self) -> &str {
        &self.written
    }

    /// The time zone the pattern's times are read in.
    pub fn timezone(&self) -> Tz {
        self.timezone
    }

    /// The first slot strictly after `t`, or `None` when the search finds none (a pattern
    /// that [`parse_pattern`] accepted always has one within the cron crate's limits).
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = t.with_timezone(&self.timezone);
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|next| next.with_timezone(&Utc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// The next `n` slots after `from`, as UTC text.
    fn slots(s: &Schedule, from: &str, n: usize) -> Vec<String> {
        let mut t = utc(from);
        (0..n)
            .map(|_| {
                t = s.next_after(t).unwrap();
                t.format("%m-%d %H:%MZ").to_string()
            })
            .collect()
    }

    /// New York springs forward on 2024-03-10 (02:00 EST becomes 03:00 EDT): 02:30 does
    /// not exist that day, and the 02:30 job runs at 03:00 EDT (07:00Z), once.
    #[test]
    fn a_fixed_time_in_the_skipped_hour_runs_right_after_it() {
        let s = Schedule::parse("30 2 * * *", "America/New_York").unwrap();
        assert_eq!(
            slots(&s, "2024-03-08T12:00:00Z", 4),
            [
                "03-09 07:30Z", // 02:30 EST
                "03-10 07:00Z", // 03:00 EDT, the first instant after the gap
                "03-11 06:30Z", // 02:30 EDT
                "03-12 06:30Z",
            ]
        );
    }

    /// New York falls back on 2024-11-03 (02:00 EDT becomes 01:00 EST): 01:30 happens
    /// twice, and the 01:30 job runs once, at the first (05:30Z).
    #[test]
    fn a_fixed_time_in_the_repeated_hour_runs_once() {
        let s = Schedule::parse("30 1 * * *", "America/New_York").unwrap();
        assert_eq!(
            slots(&s, "2024-11-01T12:00:00Z", 4),
            [
                "11-02 05:30Z", // 01:30 EDT
                "11-03 05:30Z", // 01:30 EDT, the first of the two
                "11-04 06:30Z", // 01:30 EST
                "11-05 06:30Z",
            ]
        );
    }

    /// An interval job runs at every real instant: no slot in the skipped hour, two
    /// in the repeated one.
    #[test]
    fn an_interval_follows_real_time_across_both_changes() {
        let s = Schedule::parse("30 * * * *", "America/New_York").unwrap();
        assert_eq!(
            slots(&s, "2024-03-10T06:00:00Z", 3),
            ["03-10 06:30Z", "03-10 07:30Z", "03-10 08:30Z"] // 01:30 EST, 03:30, 04:30 EDT
        );
        assert_eq!(
            slots(&s, "2024-11-03T04:00:00Z", 4),
            // 00:30 EDT, 01:30 EDT, 01:30 EST, 02:30 EST
            [
                "11-03 04:30Z",
                "11-03 05:30Z",
                "11-03 06:30Z",
                "11-03 07:30Z"
            ]
        );
    }

    #[test]
    fn aliases_and_the_default_zone() {
        let s = Schedule::parse("@daily", "UTC").unwrap();
        assert_eq!(
            slots(&s, "2024-01-01T00:00:00Z", 2),
            ["01-02 00:00Z", "01-03 00:00Z"]
        );
        let s = Schedule::parse("@hourly", "Europe/Paris").unwrap();
        assert_eq!(slots(&s, "2024-01-01T00:10:00Z", 1), ["01-01 01:00Z"]);
        assert_eq!(s.pattern(), "@hourly");
        assert_eq!(s.timezone(), chrono_tz::Europe::Paris);
    }

    #[test]
    fn bad_patterns_and_zones_say_why() {
        for bad in [
            "",
            "* * * *",
            "0 0 * * * *",
            "60 * * * *",
            "@reboot",
            "a b c d e",
        ] {
            assert!(
                matches!(parse_pattern(bad), Err(ScheduleError::Pattern { .. })),
                "{bad:?}"
            );
        }
        assert_eq!(
            parse_pattern("* * * *").unwrap_err().to_string(),
            "cannot read `* * * *` as a cron schedule (4 fields): give five fields (minute hour \
             day-of-month month day-of-week) such as \"30 2 * * *\", or @hourly, @daily, \
             @weekly, @monthly, @yearly"
        );
        let why = |p: &str| match parse_pattern(p) {
            Err(ScheduleError::Pattern { why, .. }) => why,
            other => panic!("{other:?}"),
        };
        assert_eq!(why("@dayly"), "unknown alias; did you mean `@daily`?");
        assert_eq!(why("60 * * * *"), "Number out of bounds");
        assert_eq!(
            why("x * * * *"),
            "CronPattern contains illegal character 'X' in part 'X'"
        );
        assert!(parse_pattern("@DAILY").is_ok());
        assert_eq!(
            parse_pattern("0 0 30 2 *"),
            Err(ScheduleError::Never("0 0 30 2 *".into()))
        );
        assert_eq!(
            parse_timezone("Europe/Pariss").unwrap_err().to_string(),
            "unknown time zone `Europe/Pariss`; did you mean `Europe/Paris`? (use an IANA name \
             such as \"Europe/Paris\" or \"UTC\")"
        );
        assert!(parse_timezone("UTC").is_ok());
    }
}
