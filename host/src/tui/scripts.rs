//! The Scripts view's rows: each script with an `expect` block (the server's `GET
//! /api/v1/scripts`, which gives each a `status`), its state, last run and result, last
//! success, next expected run, failure and missed counts, its schedule, and the active
//! silences that would mute one of its alerts (`/api/v1/silences`, `/api/v1/schedules`:
//! `None` when the server has no such API). Pure: the source fetches, this reads.
//!
//! The states are the server's (its script watch): from a log directory there are none.

use metaclaude::alerting::matchers::{MatchOp, Matcher as HostMatcher};
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use metaclaude::model::ExecutionResult;

/// What a server said about the scripts it watches, as fetched.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Watched {
    /// The registry's scripts that have a `status` (an `expect` block).
    pub scripts: Vec<Value>,
    /// The silences; `None`: the server has no silences API.
    pub silences: Option<Vec<Value>>,
    /// The schedules; `None`: the server has no schedules API.
    pub schedules: Option<Vec<Value>>,
}

impl Watched {
    /// From the answers of `/api/v1/scripts`, `/api/v1/silences` and `/api/v1/schedules`
    /// (each `None` when the server answered 404).
    pub fn from_answers(
        scripts: &Value,
        silences: Option<&Value>,
        schedules: Option<&Value>,
    ) -> Watched {
        let list = |v: &Value, key: &str| v[key].as_array().cloned().unwrap_or_default();
        Watched {
            scripts: list(scripts, "scripts")
                .into_iter()
                .filter(|s| s["status"].is_object())
                .collect(),
            silences: silences.map(|v| list(v, "silences")),
            schedules: schedules.map(|v| list(v, "schedules")),
        }
    }

    /// Whether `script` is one of the watched.
    pub fn has(&self, script: &str) -> bool {
        self.scripts.iter().any(|s| s["id"] == script)
    }
}

/// A script's newest finished execution, as the view shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct LastRun {
    pub execution_id: String,
    pub finished_at: DateTime<Utc>,
    /// `ok`, or the error's category (see [`super::outcome`]).
    pub outcome: String,
}

impl LastRun {
    pub fn of(r: &ExecutionResult) -> LastRun {
        LastRun {
            execution_id: r.execution_id.clone(),
            finished_at: r.finished_at,
            outcome: super::outcome(r),
        }
    }
}

/// One script of the view. Text from the server is kept as given: the drawing makes it
/// safe.
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptRow {
    pub script: String,
    pub specialist: Option<String>,
    /// `new`, `ok`, `late`, `missed`, `overdue`, `failing`, `too_short` or `silenced`.
    pub state: String,
    /// Every condition holding, most severe first.
    pub conditions: Vec<String>,
    /// Attempts running now.
    pub running: u64,
    pub last_run: Option<LastRun>,
    pub last_success: Option<DateTime<Utc>>,
    pub next_expected: Option<DateTime<Utc>>,
    pub failures_in_a_row: u64,
    pub missed_in_a_row: u64,
    pub missed_total: u64,
    /// `cron timezone`, when the server schedules it.
    pub schedule: Option<String>,
    /// The short ids of the active silences that would mute one of its alerts; a `?` after
    /// one whose regex this view cannot evaluate (it may or may not apply).
    pub silenced_by: Vec<String>,
}

/// One active silence.
#[derive(Debug, Clone, PartialEq)]
pub struct SilenceRow {
    pub id: String,
    /// Its matchers as written: `script="backup", alertname=~"script_.*"`.
    pub matchers: String,
    pub ends_at: Option<DateTime<Utc>>,
    pub created_by: String,
    pub comment: String,
}

/// The Scripts view as a frame shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum ScriptsView {
    /// Following a log directory: the states are a server's.
    NeedsServer,
    /// Nothing fetched from the server yet.
    Waiting,
    Known {
        rows: Vec<ScriptRow>,
        /// `None`: the server has no silences API.
        silences: Option<Vec<SilenceRow>>,
    },
}

/// The states, most severe first (the view's order).
const STATES: [&str; 8] = [
    "failing",
    "missed",
    "overdue",
    "too_short",
    "silenced",
    "late",
    "new",
    "ok",
];

/// A state's place in [`STATES`] (an unknown one last).
pub fn severity_rank(state: &str) -> usize {
    STATES
        .iter()
        .position(|s| *s == state)
        .unwrap_or(STATES.len())
}

/// The alerts a script can raise, with their severities: what a silence is matched against.
const SCRIPT_ALERTS: [(&str, &str); 4] = [
    ("script_missed", "critical"),
    ("script_overdue", "warning"),
    ("script_failing", "critical"),
    ("script_too_short", "warning"),
];

/// The view from what the server said and the last runs seen, most severe first.
pub fn view(watched: &Watched, last_runs: &HashMap<String, LastRun>) -> ScriptsView {
    let active: Vec<&Value> = watched
        .silences
        .iter()
        .flatten()
        .filter(|s| s["state"].as_str().is_none_or(|st| st == "active"))
        .collect();
    let mut rows: Vec<ScriptRow> = watched
        .scripts
        .iter()
        .map(|s| row(s, watched, &active, last_runs))
        .collect();
    rows.sort_by(|a, b| {
        (severity_rank(&a.state), &a.script).cmp(&(severity_rank(&b.state), &b.script))
    });
    let silences = watched.silences.as_ref().map(|_| {
        active
            .iter()
            .map(|s| SilenceRow {
                id: text(&s["id"]),
                matchers: s["matchers"]
                    .as_array()
                    .map(|l| {
                        l.iter()
                            .map(|m| Matcher::of(m).to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default(),
                ends_at: time(&s["ends_at"]),
                created_by: text(&s["created_by"]),
                comment: text(&s["comment"]),
            })
            .collect()
    });
    ScriptsView::Known { rows, silences }
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn time(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// A silence's id as the view shows it: its first 8 characters.
pub fn short_id(id: &str) -> String {
    id.chars().take(8).collect()
}

fn row(
    script: &Value,
    watched: &Watched,
    silences: &[&Value],
    last_runs: &HashMap<String, LastRun>,
) -> ScriptRow {
    let status = &script["status"];
    let id = text(&script["id"]);
    let specialist = status["specialist"]
        .as_str()
        .or(script["specialist"].as_str())
        .map(String::from);
    let count = |k: &str| status[k].as_u64().unwrap_or(0);
    let schedule = watched
        .schedules
        .iter()
        .flatten()
        .find(|s| s["script"] == id.as_str())
        .map(|s| {
            let cron = text(&s["cron"]);
            match s["timezone"].as_str() {
                Some(tz) if !tz.is_empty() => format!("{cron} {tz}"),
                _ => cron,
            }
        });
    let silenced_by = silences
        .iter()
        .filter_map(|s| {
            let applies = applies(s, &id, specialist.as_deref().unwrap_or(""))?;
            let short = short_id(s["id"].as_str().unwrap_or("?"));
            Some(if applies { short } else { format!("{short}?") })
        })
        .collect();
    ScriptRow {
        last_run: last_runs.get(&id).cloned(),
        state: text(&status["state"]),
        conditions: status["conditions"]
            .as_array()
            .map(|l| l.iter().map(text).collect())
            .unwrap_or_default(),
        running: count("running"),
        last_success: time(&status["last_success"]),
        next_expected: time(&status["next_expected"]),
        failures_in_a_row: count("failures_in_a_row"),
        missed_in_a_row: count("missed_in_a_row"),
        missed_total: count("missed_total"),
        schedule,
        silenced_by,
        specialist,
        script: id,
    }
}

/// Whether `silence` would mute one of `script`'s alerts: `Some(true)` when it does,
/// `Some(false)` when it may (a regex this view cannot evaluate decides), `None` when not.
fn applies(silence: &Value, script: &str, specialist: &str) -> Option<bool> {
    let matchers: Vec<Matcher> = silence["matchers"]
        .as_array()
        .map(|l| l.iter().map(Matcher::of).collect())
        .unwrap_or_default();
    let mut maybe = false;
    for (kind, severity) in SCRIPT_ALERTS {
        let labels = [
            ("alertname", kind),
            ("type", kind),
            ("severity", severity),
            ("script", script),
            ("specialist", specialist),
        ];
        let value = |name: &str| {
            labels
                .iter()
                .find(|(n, _)| *n == name)
                .map_or("", |(_, v)| v)
        };
        let mut all = Some(true);
        for m in &matchers {
            match m.holds(value(&m.name)) {
                Some(true) => {}
                Some(false) => {
                    all = Some(false);
                    break;
                }
                None => all = None,
            }
        }
        match all {
            Some(true) => return Some(true),
            None => maybe = true,
            Some(false) => {}
        }
    }
    maybe.then_some(false)
}

/// A silence's matcher, as the API gives it (`is_regex`, `is_equal`; or Alertmanager's
/// `op`).
#[derive(Debug, Clone, PartialEq)]
struct Matcher {
    name: String,
    value: String,
    regex: bool,
    equal: bool,
}

impl Matcher {
    fn of(m: &Value) -> Matcher {
        let (mut regex, mut equal) = (
            m["is_regex"].as_bool().unwrap_or(false),
            m["is_equal"].as_bool().unwrap_or(true),
        );
        if let Some(op) = m["op"].as_str() {
            regex = op.contains('~');
            equal = !op.starts_with('!');
        }
        Matcher {
            name: text(&m["name"]),
            value: text(&m["value"]),
            regex,
            equal,
        }
    }

    /// Whether a label of value `value` ("" when missing) matches, by the host's own
    /// matchers (a regex anchored at both ends); `None` for a matcher the host would not
    /// take (a regex that does not compile), which may or may not apply.
    fn holds(&self, value: &str) -> Option<bool> {
        let op = match (self.equal, self.regex) {
            (true, false) => MatchOp::Equal,
            (false, false) => MatchOp::NotEqual,
            (true, true) => MatchOp::Regex,
            (false, true) => MatchOp::NotRegex,
        };
        let matcher = HostMatcher::new(&self.name, op, &self.value).ok()?;
        Some(matcher.matches_value(value))
    }
}

impl std::fmt::Display for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let op = match (self.equal, self.regex) {
            (true, false) => "=",
            (true, true) => "=~",
            (false, false) => "!=",
            (false, true) => "!~",
        };
        write!(f, "{}{op}{:?}", self.name, self.value)
    }
}

/// A time ahead of `now` or behind it, for people: `in 5m`, `40s ago`.
pub fn relative(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let s = (t - now).num_seconds();
    let a = s.unsigned_abs();
    let text = if a < 90 {
        format!("{a}s")
    } else if a < 90 * 60 {
        format!("{}m", (a + 30) / 60)
    } else if a < 48 * 3600 {
        format!("{}h", (a + 1800) / 3600)
    } else {
        format!("{}d", (a + 43200) / 86400)
    };
    if s >= 0 {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scripts() -> Value {
        json!({"file": "r.json", "scripts": [
            {"id": "plain", "path": "p.sh"},
            {"id": "backup", "specialist": "ops", "status": {
                "script": "backup", "specialist": "ops", "state": "ok", "conditions": [],
                "next_expected": "2026-01-15T11:00:00.000000Z",
                "last_success": "2026-01-15T10:00:00.000000Z",
                "missed_total": 2, "missed_in_a_row": 0, "failures_in_a_row": 0, "running": 0}},
            {"id": "sync", "status": {
                "script": "sync", "state": "failing", "conditions": ["failing", "late"],
                "missed_total": 0, "missed_in_a_row": 0, "failures_in_a_row": 3, "running": 1}}
        ]})
    }

    fn silence(id: &str, matchers: Value) -> Value {
        json!({"id": id, "matchers": matchers, "starts_at": "2026-01-15T09:00:00.000000Z",
               "ends_at": "2026-01-15T12:00:00.000000Z", "created_by": "ann",
               "comment": "maintenance", "state": "active"})
    }

    #[test]
    fn only_scripts_with_a_status_most_severe_first_with_their_last_run_and_schedule() {
        let schedules = json!({"schedules": [{"script": "backup", "cron": "0 * * * *",
            "timezone": "Europe/Paris", "next_run": "2026-01-15T11:00:00Z", "state": "ok"}]});
        let watched = Watched::from_answers(&scripts(), None, Some(&schedules));
        assert!(watched.has("sync") && !watched.has("plain"));
        let at = DateTime::parse_from_rfc3339("2026-01-15T10:29:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let last = LastRun {
            execution_id: "01X".into(),
            finished_at: at,
            outcome: "EXECUTION".into(),
        };
        let runs = HashMap::from([("sync".to_string(), last.clone())]);
        let ScriptsView::Known { rows, silences } = view(&watched, &runs) else {
            panic!("known");
        };
        assert_eq!(silences, None, "no silences API");
        let ids: Vec<&str> = rows.iter().map(|r| r.script.as_str()).collect();
        assert_eq!(ids, ["sync", "backup"]);
        assert_eq!(rows[0].state, "failing");
        assert_eq!(rows[0].conditions, ["failing", "late"]);
        assert_eq!(rows[0].failures_in_a_row, 3);
        assert_eq!(rows[0].running, 1);
        assert_eq!(rows[0].last_run, Some(last));
        assert_eq!(rows[0].schedule, None);
        assert_eq!(rows[1].specialist.as_deref(), Some("ops"));
        assert_eq!(rows[1].missed_total, 2);
        assert_eq!(rows[1].schedule.as_deref(), Some("0 * * * * Europe/Paris"));
        assert_eq!(
            rows[1].next_expected.map(|t| t.to_rfc3339()),
            Some("2026-01-15T11:00:00+00:00".into())
        );
        assert_eq!(rows[1].last_run, None);
    }

    #[test]
    fn a_silence_applies_when_it_would_mute_one_of_the_scripts_alerts() {
        let m = |name: &str, value: &str, is_regex: bool, is_equal: bool| json!({"name": name, "value": value, "is_regex": is_regex, "is_equal": is_equal});
        let silences = json!({"silences": [
            silence("aaaaaaaa-1", json!([m("script", "backup", false, true)])),
            silence("bbbbbbbb-2", json!([m("alertname", "script_failing", false, true), m("specialist", "ops", false, true)])),
            silence("cccccccc-3", json!([m("severity", "warning", false, true), m("script", "sync", false, false)])),
            silence("dddddddd-4", json!([m("script", "back.*", true, true)])),
            silence("eeeeeeee-5", json!([m("alertname", "disk_full", false, true)])),
            silence("ffffffff-6", json!([m("team", "x", false, true)])),
            // Alertmanager's operator, as another version of the API may give it.
            silence("gggggggg-7", json!([{"name": "script", "value": "sync", "op": "!~"}])),
            {"id": "hhhhhhhh-8", "matchers": [m("script", "backup", false, true)], "state": "expired"}
        ]});
        let watched = Watched::from_answers(&scripts(), Some(&silences), None);
        let ScriptsView::Known { rows, silences } = view(&watched, &HashMap::new()) else {
            panic!("known");
        };
        let by = |script: &str| {
            rows.iter()
                .find(|r| r.script == script)
                .unwrap()
                .silenced_by
                .clone()
        };
        // backup (ops): its own, ops's failing, any warning but sync's, the regex (anchored:
        // back.* is all of "backup", not of "sync"), any not sync's; not another alert's,
        // not a label it lacks, not an expired one.
        assert_eq!(
            by("backup"),
            ["aaaaaaaa", "bbbbbbbb", "cccccccc", "dddddddd", "gggggggg"]
        );
        assert!(by("sync").is_empty(), "{:?}", by("sync"));
        let silences = silences.unwrap();
        assert_eq!(silences.len(), 7, "the expired one is not listed");
        assert_eq!(
            silences[1].matchers,
            r#"alertname="script_failing", specialist="ops""#
        );
        assert_eq!(silences[3].matchers, r#"script=~"back.*""#);
        assert_eq!(silences[6].matchers, r#"script!~"sync""#);
        assert_eq!(silences[0].created_by, "ann");
    }

    #[test]
    fn relative_times_read_ahead_and_behind() {
        let now = Utc::now();
        let s = chrono::Duration::seconds;
        assert_eq!(relative(now + s(40), now), "in 40s");
        assert_eq!(relative(now - s(40), now), "40s ago");
        assert_eq!(relative(now + s(3600), now), "in 60m");
        assert_eq!(relative(now - s(3 * 3600), now), "3h ago");
        assert_eq!(relative(now + s(3 * 86400), now), "in 3d");
    }
}
