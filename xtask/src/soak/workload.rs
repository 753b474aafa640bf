//! The soak's clients: threads POSTing a weighted mix of the example scripts at a bounded
//! rate, some waiting for the result (which is checked against the outcome the script is
//! written to produce), some not (`?wait=false`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::api::Api;
use Expect::{Fails, OverCpuLimit, Retried, Success};

/// What a request is expected to end in.
#[derive(Debug, Clone, Copy)]
enum Expect {
    Success,
    /// Success after at least one retry.
    Retried,
    Fails(&'static str),
    /// RESOURCE once it has used more CPU than its limit; TIMEOUT is right too when the
    /// machine gave it less than that limit (the seconds) before its wall timeout.
    OverCpuLimit(f64),
}

/// One kind of request (a label), how often it is sent (out of the total weight), and
/// what it must end in.
type Entry = (&'static str, u64, Expect);

/// The mix: every category, retries, big output, escaping descendants. Labels are script
/// ids except `unknown_script` (an id that is not in the registry) and `bad_input`
/// (`hello` with an integer input that is not one), both VALIDATION. Heavy scripts
/// (`cpu_burner`, `tree_workload`: a CPU second each) are rare.
const MIX: &[Entry] = &[
    ("hello", 8, Success),
    ("noop", 6, Success),
    ("env_inputs", 3, Success),
    ("validate_api_schema", 2, Success),
    ("summarize_json", 2, Success),
    ("flaky", 4, Retried),
    ("big_output", 3, Success),
    ("short_spike", 1, Success),
    ("tree_workload", 1, Success),
    ("slow", 2, Fails("TIMEOUT")),
    ("ignores_sigterm", 1, Fails("TIMEOUT")),
    ("orphan_holds_stdout", 1, Fails("TIMEOUT")),
    ("setsid_escape", 2, Fails("TIMEOUT")),
    ("missing_module", 1, Fails("DEPENDENCY")),
    ("import_error", 1, Fails("DEPENDENCY")),
    ("missing_tool", 1, Fails("DEPENDENCY")),
    ("command_not_found", 1, Fails("DEPENDENCY")),
    ("failing", 2, Fails("EXECUTION")),
    ("not_executable", 1, Fails("PERMISSION")),
    ("permission_denied", 1, Fails("PERMISSION")),
    ("memory_hog", 1, Fails("RESOURCE")),
    ("cpu_burner", 1, OverCpuLimit(1.0)),
    ("self_signal", 2, Fails("UNKNOWN")),
    ("unknown_script", 2, Fails("VALIDATION")),
    ("bad_input", 1, Fails("VALIDATION")),
];

/// One request in four does not wait (`?wait=false`).
const NO_WAIT_EVERY: u64 = 4;

/// A small PRNG (xorshift64): the mix needs no more.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x % n.max(1)
    }
}

fn pick(rng: &mut Rng) -> &'static Entry {
    let total: u64 = MIX.iter().map(|e| e.1).sum();
    let mut r = rng.below(total);
    for e in MIX {
        if r < e.1 {
            return e;
        }
        r -= e.1;
    }
    &MIX[0]
}

/// The request body for `entry`, the `n`th of client `client`.
fn body(entry: &Entry, client: usize, n: u64, schema: &str) -> Value {
    let (script, inputs) = match entry.0 {
        "hello" if n.is_multiple_of(3) => (
            "hello",
            json!({"name": format!("soak-{n}"), "times": 2, "shout": true}),
        ),
        "hello" => ("hello", json!({"name": format!("soak-{n}")})),
        "bad_input" => ("hello", json!({"times": "many"})),
        "unknown_script" => ("soak_no_such_script", json!({})),
        "validate_api_schema" => ("validate_api_schema", json!({"schema_file": schema})),
        "summarize_json" => (
            "summarize_json",
            json!({"values": "3,1,2", "label": "soak"}),
        ),
        "env_inputs" => ("env_inputs", json!({"region": "soak-1"})),
        other => (other, json!({})),
    };
    json!({
        "script_id": script,
        "inputs": inputs,
        "user": format!("soak-client-{client}"),
        "session_id": format!("soak-session-{}", n / 20),
        "correlation_id": format!("soak-{client}-{n}"),
    })
}

/// What the clients saw.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub sent: u64,
    /// Answered with an execution (200 with its result, or 202 with its id).
    pub answered: u64,
    pub not_waited: u64,
    /// 429 (admission full) and 503 (shutting down).
    pub rejected: u64,
    pub unavailable: u64,
    /// Transport errors and unexpected statuses, with the first few.
    pub errors: u64,
    pub first_errors: Vec<String>,
    /// Waited-for results that did not end as their script is written to.
    pub mismatches: u64,
    pub first_mismatches: Vec<String>,
    /// Waited-for results by outcome (`success` or the category).
    pub outcomes: BTreeMap<String, u64>,
    /// Every execution id the API answered with.
    pub ids: Vec<String>,
}

impl Tally {
    fn error(&mut self, what: String) {
        self.errors += 1;
        if self.first_errors.len() < 10 {
            self.first_errors.push(what);
        }
    }
}

/// The clients and what they share: the pacing, the pause the sampler asks for, the tally.
pub struct Workload {
    api: Api,
    schema: String,
    interval: Duration,
    next_slot: Mutex<Instant>,
    stop: AtomicBool,
    paused: AtomicBool,
    in_flight: AtomicUsize,
    tally: Mutex<Tally>,
}

impl Workload {
    /// `rate` executions per second over all clients.
    pub fn new(api: Api, rate: f64, schema: String) -> Arc<Workload> {
        Arc::new(Workload {
            api,
            schema,
            interval: Duration::from_secs_f64(1.0 / rate),
            next_slot: Mutex::new(Instant::now()),
            stop: AtomicBool::new(false),
            paused: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            tally: Mutex::new(Tally::default()),
        })
    }

    pub fn spawn(self: &Arc<Self>, clients: usize) -> Vec<JoinHandle<()>> {
        (0..clients)
            .map(|i| {
                let w = self.clone();
                std::thread::Builder::new()
                    .name(format!("soak-client-{i}"))
                    .spawn(move || w.client(i))
                    .expect("spawn a client thread")
            })
            .collect()
    }

    /// Sends `n` requests of `label` at once, without waiting: more executions than the
    /// server runs at a time, so that its bounded pools (execution cgroups) reach their
    /// size during warm-up rather than at some later peak.
    pub fn burst(&self, label: &str, n: u64) {
        let entry = MIX
            .iter()
            .find(|e| e.0 == label)
            .expect("a label of the mix");
        for i in 0..n {
            self.send(entry, 0, 1_000_000 + i, false);
        }
    }

    pub fn tally(&self) -> Tally {
        self.tally.lock().unwrap().clone()
    }

    /// No new requests from now on.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Stops sending and waits (at most `limit`) until no request is in flight; false
    /// when some still are.
    pub fn pause(&self, limit: Duration) -> bool {
        self.paused.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + limit;
        while self.in_flight.load(Ordering::SeqCst) > 0 {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    pub fn resume(&self) {
        // The slots missed while paused are not made up for.
        *self.next_slot.lock().unwrap() = Instant::now();
        self.paused.store(false, Ordering::SeqCst);
    }

    /// The next send time: one slot per `interval` over all clients, never a burst.
    fn take_slot(&self) -> Instant {
        let mut next = self.next_slot.lock().unwrap();
        let slot = (*next).max(Instant::now());
        *next = slot + self.interval;
        slot
    }

    fn client(&self, index: usize) {
        let mut rng =
            Rng(0x9E37_79B9_7F4A_7C15 ^ ((index as u64 + 1) << 32) ^ u64::from(std::process::id()));
        let mut n: u64 = 0;
        while !self.stop.load(Ordering::SeqCst) {
            let slot = self.take_slot();
            std::thread::sleep(slot.saturating_duration_since(Instant::now()));
            // Counted in flight before looking at the pause, so that the sampler, which
            // sets the pause and then waits for none in flight, cannot miss this one.
            self.in_flight.fetch_add(1, Ordering::SeqCst);
            if self.paused.load(Ordering::SeqCst) || self.stop.load(Ordering::SeqCst) {
                self.in_flight.fetch_sub(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            n += 1;
            let entry = pick(&mut rng);
            let wait = !n.is_multiple_of(NO_WAIT_EVERY);
            self.send(entry, index, n, wait);
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn send(&self, entry: &Entry, client: usize, n: u64, wait: bool) {
        let path = if wait {
            "/api/v1/executions"
        } else {
            "/api/v1/executions?wait=false"
        };
        let request = body(entry, client, n, &self.schema).to_string();
        let reply = self.api.post(path, &request);
        let mut tally = self.tally.lock().unwrap();
        tally.sent += 1;
        let reply = match reply {
            Ok(r) => r,
            Err(e) => {
                tally.error(format!("{}: {e:#}", entry.0));
                return;
            }
        };
        match (reply.status, wait) {
            (429, _) => tally.rejected += 1,
            (503, _) => tally.unavailable += 1,
            (200, true) | (202, false) => match reply.json() {
                Ok(v) => {
                    let Some(id) = v["execution_id"].as_str() else {
                        tally.error(format!("{}: no execution_id in {v}", entry.0));
                        return;
                    };
                    tally.answered += 1;
                    tally.ids.push(id.to_string());
                    if wait {
                        check(&mut tally, entry, &v);
                    } else {
                        tally.not_waited += 1;
                    }
                }
                Err(e) => tally.error(format!("{}: {e:#}", entry.0)),
            },
            (status, _) => {
                let start: String = reply.body.chars().take(200).collect();
                tally.error(format!("{}: status {status}: {start}", entry.0));
            }
        }
    }
}

/// Compares a waited-for result with what its script is written to produce.
fn check(tally: &mut Tally, entry: &Entry, result: &Value) {
    let category = result["error_details"]["category"].as_str();
    let success = result["success"].as_bool() == Some(true);
    let retries = result["retries"].as_u64().unwrap_or(0);
    let outcome = category.unwrap_or(if success { "success" } else { "failure" });
    *tally.outcomes.entry(outcome.to_string()).or_default() += 1;
    let ok = match entry.2 {
        Success => success,
        Retried => success && retries > 0,
        Fails(c) => !success && category == Some(c),
        OverCpuLimit(limit) => {
            let cpu = result["resource_usage"]["cpu_time_seconds"].as_f64();
            !success
                && (category == Some("RESOURCE")
                    || (category == Some("TIMEOUT") && cpu.is_some_and(|s| s < limit)))
        }
    };
    if !ok {
        tally.mismatches += 1;
        if tally.first_mismatches.len() < 10 {
            let message = result["error_details"]["message"].as_str().unwrap_or("");
            tally.first_mismatches.push(format!(
                "{} ({}): expected {:?}, got {outcome} after {retries} retries: {message}",
                entry.0,
                result["execution_id"].as_str().unwrap_or("?"),
                entry.2,
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu_burner(category: &str, cpu: f64) -> Value {
        json!({
            "execution_id": "x",
            "success": false,
            "error_details": {"category": category, "message": ""},
            "resource_usage": {"cpu_time_seconds": cpu},
        })
    }

    fn mismatches(result: &Value) -> u64 {
        let entry = MIX.iter().find(|e| e.0 == "cpu_burner").unwrap();
        let mut tally = Tally::default();
        check(&mut tally, entry, result);
        tally.mismatches
    }

    #[test]
    fn a_cpu_limit_is_met_by_resource_or_by_a_timeout_that_came_first() {
        assert_eq!(mismatches(&cpu_burner("RESOURCE", 1.02)), 0);
        // Starved of CPU: the 20 s wall timeout came before its 1 s of CPU.
        assert_eq!(mismatches(&cpu_burner("TIMEOUT", 0.4)), 0);
        // It had its CPU second and more, and still was not stopped for it.
        assert_eq!(mismatches(&cpu_burner("TIMEOUT", 1.5)), 1);
        assert_eq!(mismatches(&cpu_burner("EXECUTION", 0.4)), 1);
        assert_eq!(
            mismatches(&json!({"success": true, "execution_id": "x"})),
            1
        );
    }
}
