//! A script's `run_schedule` block in the registry: when `serve` runs the script itself
//! (`cron` in a `timezone`), how far after each slot (`jitter`), what happens when a slot
//! comes while the previous run still goes (`overlap`), and with which `inputs`. Read and
//! checked with the rest of the entry, every problem at its field path; the inputs are
//! checked against the script's declared ones by the registry, which owns them.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::config::{self, Checker};
use crate::expectations::duration;
use crate::expectations::schedule::{self, Schedule};
use crate::expectations::spec::{duration_value, string};
use crate::suggest::did_you_mean;

/// The keys a `run_schedule` block may have.
pub const KEYS: &[&str] = &["cron", "timezone", "jitter", "overlap", "inputs"];

/// What a slot does when the script's previous scheduled run still goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Overlap {
    /// The slot is not run: counted missed (`overlap`). The default: two backups at once
    /// are rarely what anyone wants.
    Skip,
    /// The slot waits for the running one to end, then runs; at most one waits (a later
    /// slot while one waits is counted missed).
    Queue,
    /// The slot runs beside the running one.
    Allow,
}

impl Overlap {
    /// Every policy, as the registry names them.
    pub const NAMES: [&'static str; 3] = ["skip", "queue", "allow"];

    /// The policy named `name` in the registry.
    pub fn parse(name: &str) -> Option<Overlap> {
        Some(match name {
            "skip" => Overlap::Skip,
            "queue" => Overlap::Queue,
            "allow" => Overlap::Allow,
            _ => return None,
        })
    }

    /// Its name in the registry (`"skip"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Overlap::Skip => "skip",
            Overlap::Queue => "queue",
            Overlap::Allow => "allow",
        }
    }
}

/// When and how `serve` runs a script on its own.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSchedule {
    /// The slots: a cron pattern (five fields, six with seconds first, or an alias) in a
    /// time zone (default UTC).
    pub schedule: Schedule,
    /// Each slot's run starts this long after it at most (default 0): a delay in `[0,
    /// jitter)` fixed by the script and the slot, so that many scripts on the same
    /// pattern do not start at one instant, and a run's time can be told in advance.
    pub jitter: Duration,
    /// What a slot does while the previous run goes (default `skip`).
    pub overlap: Overlap,
    /// The inputs of each run, as a request gives them (the registry checks them against
    /// the script's declared inputs).
    pub inputs: BTreeMap<String, Value>,
}

/// The normalised form: every key, defaults filled in.
impl Serialize for RunSchedule {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(KEYS.len()))?;
        m.serialize_entry("cron", self.schedule.pattern())?;
        m.serialize_entry("timezone", self.schedule.timezone().name())?;
        m.serialize_entry("jitter", &duration::format(self.jitter))?;
        m.serialize_entry("overlap", &self.overlap)?;
        m.serialize_entry("inputs", &self.inputs)?;
        m.end()
    }
}

/// Checks the `run_schedule` block `v` at `at` (`scripts[2].run_schedule`), recording
/// every problem in `c`; the schedule when it has none (its inputs still to be checked
/// against the script's).
pub fn parse(c: &mut Checker, at: &str, v: &Value) -> Option<RunSchedule> {
    let before = c.count();
    let Value::Object(obj) = v else {
        c.expected(at, "an object such as {\"cron\": \"*/15 * * * *\"}", v);
        return None;
    };
    c.unknown_keys(at, obj.keys(), KEYS);
    let field = |k: &str| config::field(at, k);
    let cron = match obj.get("cron") {
        None => {
            c.problem(
                field("cron"),
                "missing: say when to run, such as \"*/15 * * * *\" or \"@daily\"",
            );
            None
        }
        Some(v) => string(c, &field("cron"), v).and_then(|text| {
            schedule::parse_pattern_with_seconds(&text)
                .map(|cron| (text, cron))
                .map_err(|e| c.problem(field("cron"), e))
                .ok()
        }),
    };
    let timezone = match obj.get("timezone") {
        None => Some(chrono_tz::UTC),
        Some(v) => string(c, &field("timezone"), v).and_then(|name| {
            schedule::parse_timezone(&name)
                .map_err(|e| c.problem(field("timezone"), e))
                .ok()
        }),
    };
    let jitter = obj
        .get("jitter")
        .and_then(|v| duration_value(c, v, &field("jitter"), "30s"))
        .unwrap_or_default();
    let overlap = match obj.get("overlap") {
        None => Overlap::Skip,
        Some(v) => match string(c, &field("overlap"), v) {
            Some(name) => Overlap::parse(&name).unwrap_or_else(|| {
                let hint = did_you_mean(&name, Overlap::NAMES);
                c.problem(
                    field("overlap"),
                    format!(
                        "unknown policy `{name}`{hint} (expected one of {}: what a slot does \
                         while the previous run goes)",
                        Overlap::NAMES.join(", ")
                    ),
                );
                Overlap::Skip
            }),
            None => Overlap::Skip,
        },
    };
    let inputs: BTreeMap<String, Value> = match obj.get("inputs") {
        None => BTreeMap::new(),
        Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        Some(other) => {
            c.expected(
                field("inputs"),
                "an object of input values such as {\"target\": \"db\"}",
                other,
            );
            BTreeMap::new()
        }
    };
    if c.count() > before {
        return None;
    }
    let (text, cron) = cron?;
    Some(RunSchedule {
        schedule: Schedule::new(text, cron, timezone?),
        jitter,
        overlap,
        inputs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(v: Value) -> Result<RunSchedule, Vec<String>> {
        let mut c = Checker::new();
        let r = parse(&mut c, "scripts[0].run_schedule", &v);
        match c.finish(r, "r.json") {
            Ok(r) => Ok(r),
            Err(config::ConfigError::Invalid { problems, .. }) => {
                Err(problems.iter().map(|p| p.to_string()).collect())
            }
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn defaults_fill_in_and_seconds_are_allowed() {
        let r = check(json!({"cron": "*/2 * * * * *"})).unwrap();
        assert_eq!(r.overlap, Overlap::Skip);
        assert_eq!(r.jitter, Duration::ZERO);
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"cron": "*/2 * * * * *", "timezone": "UTC", "jitter": "0s",
                   "overlap": "skip", "inputs": {}})
        );
        let r = check(
            json!({"cron": "@daily", "timezone": "Europe/Paris", "jitter": "5m",
                             "overlap": "queue", "inputs": {"n": 3}}),
        )
        .unwrap();
        assert_eq!(r.overlap, Overlap::Queue);
        assert_eq!(r.jitter, Duration::from_secs(300));
        assert_eq!(r.inputs["n"], json!(3));
    }

    #[test]
    fn every_problem_is_named_with_its_field() {
        assert_eq!(
            check(json!({"crn": "* * * * *", "timezone": "Europe/Pariss", "jitter": 30,
                         "overlap": "skipp", "inputs": [1]}))
            .unwrap_err(),
            [
                "scripts[0].run_schedule.crn: unknown key; did you mean `cron`?",
                "scripts[0].run_schedule.cron: missing: say when to run, such as \"*/15 * * * *\" or \"@daily\"",
                "scripts[0].run_schedule.timezone: unknown time zone `Europe/Pariss`; did you mean `Europe/Paris`? (use an IANA name such as \"Europe/Paris\" or \"UTC\")",
                "scripts[0].run_schedule.jitter: expected a duration such as \"30s\" (a number and a unit, in quotes), found 30",
                "scripts[0].run_schedule.overlap: unknown policy `skipp`; did you mean `skip`? (expected one of skip, queue, allow: what a slot does while the previous run goes)",
                "scripts[0].run_schedule.inputs: expected an object of input values such as {\"target\": \"db\"}, found a list",
            ]
        );
        assert_eq!(
            check(json!({"cron": "* * * *"})).unwrap_err(),
            ["scripts[0].run_schedule.cron: cannot read `* * * *` as a cron schedule (4 fields): give five fields (minute hour day-of-month month day-of-week) such as \"30 2 * * *\", six with seconds first such as \"*/5 * * * * *\", or @hourly, @daily, @weekly, @monthly, @yearly"]
        );
        assert_eq!(
            check(json!("@daily")).unwrap_err(),
            ["scripts[0].run_schedule: expected an object such as {\"cron\": \"*/15 * * * *\"}, found \"@daily\""]
        );
    }
}
