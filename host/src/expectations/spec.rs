//! A script's `expect` block in the registry: read and checked with the rest of the entry
//! (every problem at its field path, `scripts[2].expect.schedule: ...`), normalised into
//! [`Expectations`] with every default filled in.

use std::time::Duration;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use super::duration;
use super::schedule::{self, Schedule};
use crate::config::{self, Checker, ConfigValue};

/// `failures_in_a_row` when the block gives none: one failure makes the script failing, as
/// in healthchecks.io and Cronitor.
pub const DEFAULT_FAILURES_IN_A_ROW: u32 = 1;
/// The most `failures_in_a_row` may ask for.
pub const MAX_FAILURES_IN_A_ROW: u32 = 1000;
/// The shortest `every`: an expectation finer than a second is not checked.
pub const MIN_EVERY: Duration = Duration::from_secs(1);
/// The keys an `expect` block may have.
pub const KEYS: &[&str] = &[
    "every",
    "schedule",
    "timezone",
    "grace",
    "max_duration",
    "min_duration",
    "failures_in_a_row",
    "alert_after_last_retry",
];

/// What a script is expected to do, and what counts as going wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct Expectations {
    /// How often it must succeed (`every` or `schedule`, with `grace`); `None`: no window,
    /// the script runs on demand.
    pub cadence: Option<Cadence>,
    /// An attempt still running after this long is overdue (alerted while it runs; below
    /// the script's `timeout_ms`).
    pub max_duration: Option<Duration>,
    /// A success shorter than this is too short (a backup done in 40 ms did nothing).
    pub min_duration: Option<Duration>,
    /// Failures in a row that make the script failing, at least 1 (default
    /// [`DEFAULT_FAILURES_IN_A_ROW`]).
    pub failures_in_a_row: u32,
    /// Whether only an execution's last attempt counts (default true): an attempt that
    /// failed and will be retried is not a failure of the script.
    pub alert_after_last_retry: bool,
}

/// When successes are due: the rule, and how long past a due time a success still counts.
#[derive(Debug, Clone, PartialEq)]
pub struct Cadence {
    /// `every` or `schedule`.
    pub rule: Rule,
    /// How long after a due time the script is late before it has missed that run.
    pub grace: Duration,
}

/// How due times follow one another.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// A success is due this long after the last one (`every`).
    Every(Duration),
    /// A success is due at each slot of a cron schedule (`schedule`, `timezone`).
    Schedule(Schedule),
}

impl Rule {
    /// The first due time after `t`: `t` plus the interval, or the schedule's first slot
    /// strictly after `t`.
    pub fn next_after(
        &self,
        t: chrono::DateTime<chrono::Utc>,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        match self {
            Rule::Every(every) => t.checked_add_signed(duration::to_chrono(*every)),
            Rule::Schedule(s) => s.next_after(t),
        }
    }
}

/// The normalised form (`metaclaude registry check --normalized`): every key of the
/// block, with defaults filled in, `null` where nothing applies, durations in their
/// canonical text.
impl Serialize for Expectations {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let text = |d: Option<Duration>| d.map(duration::format);
        let (every, schedule, timezone) = match self.cadence.as_ref().map(|c| &c.rule) {
            None => (None, None, None),
            Some(Rule::Every(d)) => (Some(duration::format(*d)), None, None),
            Some(Rule::Schedule(sc)) => (
                None,
                Some(sc.pattern().to_string()),
                Some(sc.timezone().name().to_string()),
            ),
        };
        let mut m = s.serialize_map(Some(KEYS.len()))?;
        m.serialize_entry("every", &every)?;
        m.serialize_entry("schedule", &schedule)?;
        m.serialize_entry("timezone", &timezone)?;
        m.serialize_entry("grace", &text(self.cadence.as_ref().map(|c| c.grace)))?;
        m.serialize_entry("max_duration", &text(self.max_duration))?;
        m.serialize_entry("min_duration", &text(self.min_duration))?;
        m.serialize_entry("failures_in_a_row", &self.failures_in_a_row)?;
        m.serialize_entry("alert_after_last_retry", &self.alert_after_last_retry)?;
        m.end()
    }
}

/// What the rest of the script's entry says that the block is checked against.
#[derive(Debug, Clone)]
pub struct ScriptLimits {
    /// The script's `timeout_ms`, when it is valid (`None`: not compared).
    pub timeout_ms: Option<u64>,
    /// The longest one execution can take: every attempt to its timeout, every backoff at
    /// its cap (plus the `run_schedule`'s jitter: a scheduled run starts that much after
    /// its slot). `grace` defaults to it, so a run that starts on time is not missed while
    /// it is still trying.
    pub longest_execution: Duration,
    /// The cadence a `run_schedule` implies (its cron schedule), taken when the block
    /// gives neither `every` nor `schedule`: a script `serve` runs on a schedule is
    /// expected to succeed on it.
    pub implied: Option<Rule>,
}

impl Expectations {
    /// The expectations of a script without an `expect` block that `serve` runs on
    /// `rule`: a success due at each slot, within `grace`; every other key its default.
    pub fn implied(rule: Rule, grace: Duration) -> Expectations {
        Expectations {
            cadence: Some(Cadence {
                rule,
                grace: grace.min(duration::MAX),
            }),
            max_duration: None,
            min_duration: None,
            failures_in_a_row: DEFAULT_FAILURES_IN_A_ROW,
            alert_after_last_retry: true,
        }
    }
}

/// Checks the `expect` block `v` at `at` (`scripts[2].expect`), recording every problem in
/// `c`; the expectations when it has none.
pub fn parse(c: &mut Checker, at: &str, v: &Value, limits: ScriptLimits) -> Option<Expectations> {
    let before = c.count();
    let Value::Object(obj) = v else {
        c.expected(at, "an object such as {\"every\": \"1h\"}", v);
        return None;
    };
    c.unknown_keys(at, obj.keys(), KEYS);
    let field = |k: &str| config::field(at, k);
    if obj.is_empty() {
        c.problem(
            at,
            format!(
                "empty: say what to expect with at least one of {}",
                KEYS.join(", ")
            ),
        );
        return None;
    }

    let every = read_duration(c, obj, &field("every"), "every");
    if let Some(d) = every {
        if d < MIN_EVERY {
            c.problem(
                field("every"),
                format!(
                    "{} is shorter than 1s: expectations finer than a second are not checked",
                    duration::format(d)
                ),
            );
        }
    }
    let pattern = obj.get("schedule").and_then(|v| {
        let text = string(c, &field("schedule"), v)?;
        schedule::parse_pattern(&text)
            .map(|cron| (text, cron))
            .map_err(|e| c.problem(field("schedule"), e))
            .ok()
    });
    let timezone = obj.get("timezone").and_then(|v| {
        let name = string(c, &field("timezone"), v)?;
        schedule::parse_timezone(&name)
            .map_err(|e| c.problem(field("timezone"), e))
            .ok()
    });
    let grace = read_duration(c, obj, &field("grace"), "grace");
    let positive = |c: &mut Checker, key: &str| {
        read_duration(c, obj, &field(key), key).filter(|d| {
            if d.is_zero() {
                c.problem(field(key), "must be longer than 0");
            }
            !d.is_zero()
        })
    };
    let max_duration = positive(c, "max_duration");
    let min_duration = positive(c, "min_duration");
    let failures_in_a_row = match obj.get("failures_in_a_row") {
        None => DEFAULT_FAILURES_IN_A_ROW,
        Some(v) => match v.as_u64() {
            Some(n) if (1..=u64::from(MAX_FAILURES_IN_A_ROW)).contains(&n) => n as u32,
            _ => {
                c.expected(
                    field("failures_in_a_row"),
                    &format!("a whole number from 1 to {MAX_FAILURES_IN_A_ROW}"),
                    v,
                );
                DEFAULT_FAILURES_IN_A_ROW
            }
        },
    };
    let alert_after_last_retry = match obj.get("alert_after_last_retry") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(v) => {
            c.expected(field("alert_after_last_retry"), "true or false", v);
            true
        }
    };

    // How the fields go together: checked on the keys given, so that a value already
    // reported is not reported again for its company.
    let has = |k: &str| obj.contains_key(k);
    if has("every") && has("schedule") {
        c.problem(
            field("schedule"),
            "give either `every` (a success due that long after the last) or `schedule` (a \
             success due at each slot), not both",
        );
    }
    if has("timezone") && !has("schedule") {
        c.problem(
            field("timezone"),
            "a time zone applies to `schedule` only: add a schedule, or remove timezone",
        );
    }
    if has("grace") && !has("every") && !has("schedule") && limits.implied.is_none() {
        c.problem(
            field("grace"),
            "grace applies to `every`, `schedule` or the script's `run_schedule`: add one of \
             them, or remove grace",
        );
    }
    if let (Some(max), Some(timeout_ms)) = (max_duration, limits.timeout_ms) {
        if max.as_millis() >= u128::from(timeout_ms) {
            c.problem(
                field("max_duration"),
                format!(
                    "{} is not below the script's timeout_ms ({timeout_ms} ms): an attempt is \
                     stopped at its timeout before it could be overdue; make max_duration \
                     shorter or timeout_ms longer",
                    duration::format(max)
                ),
            );
        }
    }
    if let (Some(min), Some(max)) = (min_duration, max_duration) {
        if min >= max {
            c.problem(
                field("min_duration"),
                format!(
                    "{} is not below max_duration ({}): every run would be too short or \
                     overdue",
                    duration::format(min),
                    duration::format(max)
                ),
            );
        }
    } else if let (Some(min), Some(timeout_ms)) = (min_duration, limits.timeout_ms) {
        if min.as_millis() >= u128::from(timeout_ms) {
            c.problem(
                field("min_duration"),
                format!(
                    "{} is not below the script's timeout_ms ({timeout_ms} ms): every success \
                     would be too short",
                    duration::format(min)
                ),
            );
        }
    }

    if c.count() > before {
        return None;
    }
    let grace = grace.unwrap_or(limits.longest_execution.min(duration::MAX));
    let rule = match (every, pattern) {
        (Some(every), _) => Some(Rule::Every(every)),
        (None, Some((text, cron))) => Some(Rule::Schedule(Schedule::new(
            text,
            cron,
            timezone.unwrap_or(chrono_tz::UTC),
        ))),
        (None, None) => limits.implied,
    };
    Some(Expectations {
        cadence: rule.map(|rule| Cadence { rule, grace }),
        max_duration,
        min_duration,
        failures_in_a_row,
        alert_after_last_retry,
    })
}

/// The string `v`, or a problem at `at` (also the run schedule's reader).
pub(crate) fn string(c: &mut Checker, at: &str, v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        other => {
            c.expected(at, "a string", other);
            None
        }
    }
}

/// The duration at `key`, if given; a problem at `at` if it cannot be read.
fn read_duration(
    c: &mut Checker,
    obj: &Map<String, Value>,
    at: &str,
    key: &str,
) -> Option<Duration> {
    duration_value(c, obj.get(key)?, at, "15m")
}

/// The duration `v`, or a problem at `at` whose example is `example` (also the run
/// schedule's reader).
pub(crate) fn duration_value(
    c: &mut Checker,
    v: &Value,
    at: &str,
    example: &str,
) -> Option<Duration> {
    match v {
        Value::String(s) => duration::parse(s).map_err(|e| c.problem(at, e)).ok(),
        other => {
            c.problem(
                at,
                format!(
                    "expected a duration such as \"{example}\" (a number and a unit, in quotes), found {}",
                    other.describe()
                ),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LIMITS: ScriptLimits = ScriptLimits {
        timeout_ms: Some(60_000),
        longest_execution: Duration::from_secs(110),
        implied: None,
    };

    fn check(v: Value) -> Result<Expectations, Vec<String>> {
        let mut c = Checker::new();
        let e = parse(&mut c, "scripts[0].expect", &v, LIMITS);
        match c.finish(e, "r.json") {
            Ok(e) => Ok(e),
            Err(config::ConfigError::Invalid { problems, .. }) => {
                Err(problems.iter().map(|p| p.to_string()).collect())
            }
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn defaults_fill_in() {
        let e = check(json!({"every": "1h"})).unwrap();
        assert_eq!(
            e.cadence,
            Some(Cadence {
                rule: Rule::Every(Duration::from_secs(3600)),
                grace: Duration::from_secs(110),
            })
        );
        assert_eq!(e.failures_in_a_row, 1);
        assert!(e.alert_after_last_retry);
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            json!({"every": "1h", "schedule": null, "timezone": null, "grace": "1m50s",
                   "max_duration": null, "min_duration": null, "failures_in_a_row": 1,
                   "alert_after_last_retry": true})
        );
        let e = check(json!({"schedule": "@daily"})).unwrap();
        let Some(Cadence {
            rule: Rule::Schedule(s),
            ..
        }) = &e.cadence
        else {
            panic!("{e:?}")
        };
        assert_eq!(s.timezone(), chrono_tz::UTC);
        let e = check(json!({"failures_in_a_row": 3})).unwrap();
        assert_eq!(e.cadence, None);
    }

    #[test]
    fn every_problem_is_named_with_its_field() {
        let errs = check(json!({
            "every": "1h", "schedule": "0 3 * * *", "timezone": "Mars/Olympus",
            "grace": 60, "max_duration": "2m", "min_duration": "5m",
            "failures_in_a_row": 0, "alert_after_last_retry": "yes", "retries": 1
        }))
        .unwrap_err();
        assert_eq!(
            errs,
            [
                "scripts[0].expect.retries: unknown key (known keys: every, schedule, timezone, grace, max_duration, min_duration, failures_in_a_row, alert_after_last_retry)",
                "scripts[0].expect.timezone: unknown time zone `Mars/Olympus` (use an IANA name such as \"Europe/Paris\" or \"UTC\")",
                "scripts[0].expect.grace: expected a duration such as \"15m\" (a number and a unit, in quotes), found 60",
                "scripts[0].expect.failures_in_a_row: expected a whole number from 1 to 1000, found 0",
                "scripts[0].expect.alert_after_last_retry: expected true or false, found \"yes\"",
                "scripts[0].expect.schedule: give either `every` (a success due that long after the last) or `schedule` (a success due at each slot), not both",
                "scripts[0].expect.max_duration: 2m is not below the script's timeout_ms (60000 ms): an attempt is stopped at its timeout before it could be overdue; make max_duration shorter or timeout_ms longer",
                "scripts[0].expect.min_duration: 5m is not below max_duration (2m): every run would be too short or overdue",
            ]
        );
    }

    #[test]
    fn fields_that_need_company_say_so() {
        assert_eq!(
            check(json!({"timezone": "UTC", "grace": "5m"})).unwrap_err(),
            [
                "scripts[0].expect.timezone: a time zone applies to `schedule` only: add a schedule, or remove timezone",
                "scripts[0].expect.grace: grace applies to `every`, `schedule` or the script's `run_schedule`: add one of them, or remove grace",
            ]
        );
        assert_eq!(
            check(json!({})).unwrap_err(),
            ["scripts[0].expect: empty: say what to expect with at least one of every, schedule, timezone, grace, max_duration, min_duration, failures_in_a_row, alert_after_last_retry"]
        );
        assert_eq!(
            check(json!("daily")).unwrap_err(),
            ["scripts[0].expect: expected an object such as {\"every\": \"1h\"}, found \"daily\""]
        );
        assert_eq!(
            check(json!({"every": "500ms", "min_duration": "1m", "max_duration": "0s"}))
                .unwrap_err(),
            [
                "scripts[0].expect.every: 500ms is shorter than 1s: expectations finer than a second are not checked",
                "scripts[0].expect.max_duration: must be longer than 0",
                "scripts[0].expect.min_duration: 1m is not below the script's timeout_ms (60000 ms): every success would be too short",
            ]
        );
        assert_eq!(
            check(json!({"min_duration": "1m"})).unwrap_err(),
            ["scripts[0].expect.min_duration: 1m is not below the script's timeout_ms (60000 ms): every success would be too short"]
        );
    }

    #[test]
    fn a_zero_grace_and_a_limit_just_below_the_timeout_are_fine() {
        let e = check(
            json!({"every": "1m", "grace": "0", "max_duration": "59s999ms",
                             "min_duration": "59s998ms"}),
        )
        .unwrap();
        assert_eq!(e.cadence.unwrap().grace, Duration::ZERO);
        assert_eq!(e.max_duration, Some(Duration::from_millis(59_999)));
    }
}
