//! The StatsD exporter (`plugins/statsd-exporter`, in the default plugin set) end to end:
//! the lines a socket receives from `metaclaude run`; what the reference StatsD daemon
//! (npm `statsd`, installed into `target/tools/statsd` by `cargo xtask test`) counts after
//! concurrent `run` processes and a `serve`; and what a target that is down costs.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use metaclaude::model::{ExecutionEvent, ExecutionResult};
use metaclaude::plugin::{Health, PluginHost};
use metaclaude::EventSink;

use crate::serve::{get, post, Server};
use crate::util::{bin, example_registry, root};

#[path = "../../host/benches/support/stuck_udp.rs"]
mod stuck_udp;
use stuck_udp::stuck_receiver;

/// A script id no registry has, made of every character a StatsD line gives a meaning to.
const HOSTILE: &str = "evil:1|c\n#x,y@z";
/// `HOSTILE` as the exporter labels it.
const HOSTILE_TAG: &str = "evil_1_c__x_y_z";

/// The registry's `examples` folder, where `run` resolves the example scripts' inputs.
fn examples() -> PathBuf {
    example_registry().parent().unwrap().to_path_buf()
}

/// The execution log of these tests' hosts: their own, so that tests listing the shared
/// one (`serve`'s history) do not see these executions. A test that uses it holds a
/// [`LogDir`], which removes it.
fn log_dir() -> PathBuf {
    std::env::temp_dir().join(format!("metaclaude-statsd-tests-{}", std::process::id()))
}

/// Removes [`log_dir`] when the test ends, passed or failed (each test runs in a process
/// of its own, whose id names the folder: one left behind would stay for good).
struct LogDir;

impl Drop for LogDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(log_dir());
    }
}

/// `metaclaude run ID --json` with the default plugin set, its StatsD target `port`.
fn run(port: u16, id: &str) -> Command {
    let mut cmd = bin();
    cmd.env("METACLAUDE_METRICS_PORT", port.to_string())
        .env("METACLAUDE_LOG_DIR", log_dir())
        .current_dir(examples())
        .args(["run", id, "--json", "--registry"])
        .arg(example_registry());
    cmd
}

fn result_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not a result ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// A port on loopback nobody listens on (bound, then closed).
fn closed_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `v` as the exporter writes it: at most `decimals` decimals, no trailing zeros.
fn plain(v: f64, decimals: usize) -> String {
    let s = format!("{:.decimals$}", v.max(0.0));
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn tag_of(script_id: &str) -> &str {
    if script_id == HOSTILE {
        HOSTILE_TAG
    } else {
        script_id
    }
}

/// The lines the exporter must send for `result` (the default config: DogStatsD tags).
fn expected_lines(result: &Value) -> Vec<String> {
    let script = tag_of(result["script_id"].as_str().unwrap());
    let specialist = result["specialist"].as_str().unwrap_or("none");
    let tags = format!("script:{script},specialist:{specialist}");
    let usage = &result["resource_usage"];
    let figure = |k: &str| usage[k].as_f64().unwrap();
    let mut lines = vec![format!("metaclaude.executions.total:1|c|#{tags}")];
    if result["success"] == true {
        lines.push(format!("metaclaude.executions.success:1|c|#{tags}"));
    } else {
        let category = result["error_details"]["category"].as_str().unwrap();
        lines.push(format!(
            "metaclaude.executions.failure:1|c|#{tags},category:{category}"
        ));
    }
    lines.extend([
        format!(
            "metaclaude.execution.duration_seconds:{}|ms|#{tags}",
            plain(figure("wall_time_seconds") * 1000.0, 3)
        ),
        format!(
            "metaclaude.resource.memory_peak_mb:{}|ms|#{tags}",
            plain(figure("peak_memory_mb"), 3)
        ),
        format!(
            "metaclaude.resource.cpu_time_seconds:{}|c|#{tags}",
            plain(figure("cpu_time_seconds"), 6)
        ),
    ]);
    let retries = result["retries"].as_u64().unwrap();
    if retries > 0 {
        lines.push(format!("metaclaude.executions.retries:{retries}|c|#{tags}"));
    }
    lines
}

/// True when `line` is a StatsD line whose every part is where the format puts it.
fn well_formed(line: &str) -> bool {
    let name_ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    };
    let Some((name, rest)) = line.split_once(':') else {
        return false;
    };
    let fields: Vec<&str> = rest.split('|').collect();
    let tags_ok = match fields.get(2) {
        None => true,
        Some(t) => t.strip_prefix('#').is_some_and(|t| {
            t.split(',').all(|tag| {
                tag.split_once(':')
                    .is_some_and(|(k, v)| name_ok(k) && name_ok(v))
            })
        }),
    };
    name_ok(name)
        && fields.len() <= 3
        && fields[0].parse::<f64>().is_ok_and(|v| v >= 0.0)
        && matches!(fields.get(1), Some(&"c") | Some(&"ms") | Some(&"g"))
        && tags_ok
}

/// A socket of the test on loopback that waits up to 10 s for a datagram, and its port.
fn receiver() -> (UdpSocket, u16) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let port = socket.local_addr().unwrap().port();
    (socket, port)
}

/// The default plugin set, its exporter pointed at a socket of this test: each `run`
/// sends its execution's lines, tags sanitised, in one datagram. A bare socket, not the
/// reference daemon (the next test), is the point here: the daemon shows what it counted,
/// never the datagrams themselves, their size (at most 8192 bytes to a loopback target,
/// 1432 elsewhere, to pass any path's MTU unfragmented) or how the lines were packed into
/// them.
#[test]
fn run_sends_the_seed_metrics_to_the_target_it_is_given() {
    let _logs = LogDir;
    let (receiver, port) = receiver();
    // The last run is a marker: its datagram comes next only if each run before it sent
    // exactly one (a run's datagrams are all sent before it exits).
    for id in ["hello", "failing", "flaky", "noop", HOSTILE, "hello"] {
        let out = run(port, id).output().unwrap();
        let result = result_of(&out);
        let mut buf = vec![0u8; 65536];
        let n = receiver.recv(&mut buf).unwrap_or_else(|e| {
            panic!(
                "{id}: no datagram ({e}); stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        assert!(n <= 8192, "{id}: a datagram of {n} bytes");
        let text = String::from_utf8(buf[..n].to_vec()).unwrap();
        let lines: Vec<&str> = text.split('\n').collect();
        assert_eq!(lines, expected_lines(&result), "{id}");
        for line in &lines {
            assert!(well_formed(line), "{id}: {line:?}");
        }
    }
}

/// The reference StatsD daemon, on free loopback ports, killed when dropped.
struct Daemon {
    child: Child,
    port: u16,
    mgmt: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

const STATSD_INSTALL: &str =
    "npm install --prefix target/tools/statsd --no-audit --no-fund --ignore-scripts statsd@0.9.0";

/// How a [`Daemon`] start ended when it did not come up.
enum NotUp {
    /// Another process took a port between its pick and the daemon's bind.
    PortTaken(String),
    Failed(String),
}

impl Daemon {
    /// The daemon cannot be told to bind port 0 and say which it got: its ports are picked
    /// (bound by the test, then closed) before it starts. Another process may take one in
    /// between: the daemon then exits saying EADDRINUSE, and the whole start is retried on
    /// newly picked ports.
    fn start() -> Daemon {
        let stats_js = root().join("target/tools/statsd/node_modules/statsd/stats.js");
        assert!(
            stats_js.is_file(),
            "the reference StatsD daemon is not installed ({} is missing): run `cargo xtask test`, or from the checkout: {STATSD_INSTALL}",
            stats_js.display()
        );
        let mut taken = Vec::new();
        for _ in 0..5 {
            match Daemon::try_start(&stats_js) {
                Ok(daemon) => return daemon,
                Err(NotUp::PortTaken(log)) => taken.push(log),
                Err(NotUp::Failed(why)) => panic!("{why}"),
            }
        }
        panic!("statsd found its ports taken 5 times in a row: {taken:#?}")
    }

    fn try_start(stats_js: &Path) -> Result<Daemon, NotUp> {
        let dir = tempfile::tempdir().unwrap();
        let port = closed_udp_port();
        let mgmt = free_tcp_port();
        // A flush would reset the counters: none during the test.
        let config = dir.path().join("config.js");
        std::fs::write(
            &config,
            format!(
                "{{ port: {port}, address: \"127.0.0.1\", mgmt_port: {mgmt}, mgmt_address: \"127.0.0.1\", flushInterval: 3600000, backends: [] }}\n"
            ),
        )
        .unwrap();
        let log = dir.path().join("statsd.log");
        let log_file = std::fs::File::create(&log).unwrap();
        let child = Command::new("node")
            .arg(stats_js)
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .expect("node (installed by cargo xtask test: sudo apt-get install -y nodejs npm)");
        let mut daemon = Daemon {
            child,
            port,
            mgmt,
            log,
            _dir: dir,
        };
        daemon.wait_ready()?;
        Ok(daemon)
    }

    /// Until a probe sent over UDP shows in the counters (both servers are up).
    fn wait_ready(&mut self) -> Result<(), NotUp> {
        let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let log = self.log_text();
                return Err(if log.contains("EADDRINUSE") {
                    NotUp::PortTaken(log)
                } else {
                    NotUp::Failed(format!("statsd exited ({status}): {log}"))
                });
            }
            let _ = probe.send_to(b"metaclaude_test.probe:1|c", ("127.0.0.1", self.port));
            if self
                .try_command("counters")
                .is_some_and(|t| t.contains("metaclaude_test.probe"))
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(NotUp::Failed(format!(
                    "statsd did not start: {}",
                    self.log_text()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Returns once the daemon has handled every datagram sent to it before: a marker sent
    /// after them shows in its counters (it reads its one socket in order).
    fn caught_up(&self) {
        let marker = UdpSocket::bind("127.0.0.1:0").unwrap();
        marker
            .send_to(b"metaclaude_test.marker:1|c", ("127.0.0.1", self.port))
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self
            .try_command("counters")
            .is_some_and(|t| t.contains("metaclaude_test.marker"))
        {
            assert!(
                Instant::now() < deadline,
                "statsd never counted the marker: {}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A management command's answer, up to its `END`.
    fn try_command(&self, command: &str) -> Option<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.mgmt)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        s.write_all(format!("{command}\n").as_bytes()).ok()?;
        let mut text = String::new();
        let mut buf = [0u8; 65536];
        while !text.contains("\nEND\n") {
            let n = s.read(&mut buf).ok()?;
            if n == 0 {
                return None;
            }
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        let _ = s.write_all(b"quit\n");
        Some(text.split("\nEND\n").next().unwrap().to_string())
    }

    fn command(&self, command: &str) -> String {
        self.try_command(command)
            .unwrap_or_else(|| panic!("statsd did not answer `{command}`: {}", self.log_text()))
    }

    /// The `counters` command: key to value.
    fn counters(&self) -> BTreeMap<String, f64> {
        parse_inspect(&self.command("counters"))
            .into_iter()
            .map(|(k, v)| (k, v[0]))
            .collect()
    }

    /// The `timers` command: key to the samples received since the last flush.
    fn timers(&self) -> BTreeMap<String, Vec<f64>> {
        parse_inspect(&self.command("timers"))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads what the daemon prints with node's `util.inspect`: `{ 'key': 1, key2: [ 1.5, 2 ] }`
/// (keys quoted when not identifiers, arrays possibly over several lines). Each key with
/// its numbers (one for a counter). An array node shortens (`... N more items`) panics:
/// the test keeps below 100 samples a key.
fn parse_inspect(text: &str) -> BTreeMap<String, Vec<f64>> {
    let mut out = BTreeMap::new();
    let body = text.trim().trim_start_matches('{').trim_end_matches('}');
    let mut rest = body.trim_start();
    while !rest.is_empty() {
        let (key, after) = if let Some(quoted) = rest.strip_prefix('\'') {
            let end = quoted.find('\'').expect("a closing quote");
            (&quoted[..end], &quoted[end + 1..])
        } else {
            let end = rest.find(':').expect("a key");
            (&rest[..end], &rest[end..])
        };
        let after = after
            .trim_start()
            .strip_prefix(':')
            .expect("a colon")
            .trim_start();
        let (values, after) = if let Some(array) = after.strip_prefix('[') {
            let end = array.find(']').expect("a closing bracket");
            let inner = &array[..end];
            assert!(
                !inner.contains("more item"),
                "util.inspect shortened: {inner}"
            );
            let values: Vec<f64> = inner
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| s.parse().unwrap_or_else(|_| panic!("a number: {s:?}")))
                .collect();
            (values, &array[end + 1..])
        } else {
            let end = after.find([',', '\n']).unwrap_or(after.len());
            let v = after[..end].trim();
            (
                vec![v.parse().unwrap_or_else(|_| panic!("a number: {v:?}"))],
                &after[end..],
            )
        };
        out.insert(key.to_string(), values);
        rest = after.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

#[test]
fn util_inspect_output_is_read_back() {
    let text = "{\n  'statsd.bad_lines_seen': 0,\n  plain: 2,\n  'a.b;script=x': 1.5\n}";
    let m = parse_inspect(text);
    assert_eq!(m["statsd.bad_lines_seen"], [0.0]);
    assert_eq!(m["plain"], [2.0]);
    assert_eq!(m["a.b;script=x"], [1.5]);
    let text = "{\n  'a;s=x': [\n     1,   2.5, 3,\n    4, 5\n  ],\n  'b': [ 7 ]\n}";
    let m = parse_inspect(text);
    assert_eq!(m["a;s=x"], [1.0, 2.5, 3.0, 4.0, 5.0]);
    assert_eq!(m["b"], [7.0]);
    assert!(parse_inspect("{}").is_empty());
}

/// What the daemon must hold after `results`: counters (the reference daemon turns
/// DogStatsD tags into `;key=value` in the key) and the timers' samples.
struct Expected {
    counters: BTreeMap<String, f64>,
    cpu: BTreeMap<String, f64>,
    durations: BTreeMap<String, Vec<f64>>,
    memory: BTreeMap<String, Vec<f64>>,
}

fn expected_in_daemon(results: &[Value]) -> Expected {
    let mut e = Expected {
        counters: BTreeMap::new(),
        cpu: BTreeMap::new(),
        durations: BTreeMap::new(),
        memory: BTreeMap::new(),
    };
    for r in results {
        let labels = format!(
            ";script={};specialist={}",
            tag_of(r["script_id"].as_str().unwrap()),
            r["specialist"].as_str().unwrap_or("none")
        );
        let key = |name: &str| format!("metaclaude.{name}{labels}");
        *e.counters.entry(key("executions.total")).or_default() += 1.0;
        if r["success"] == true {
            *e.counters.entry(key("executions.success")).or_default() += 1.0;
        } else {
            let category = r["error_details"]["category"].as_str().unwrap();
            let failure = format!("{};category={category}", key("executions.failure"));
            *e.counters.entry(failure).or_default() += 1.0;
        }
        let retries = r["retries"].as_f64().unwrap();
        if retries > 0.0 {
            *e.counters.entry(key("executions.retries")).or_default() += retries;
        }
        let usage = &r["resource_usage"];
        *e.cpu.entry(key("resource.cpu_time_seconds")).or_default() +=
            usage["cpu_time_seconds"].as_f64().unwrap();
        e.durations
            .entry(key("execution.duration_seconds"))
            .or_default()
            .push(usage["wall_time_seconds"].as_f64().unwrap() * 1000.0);
        e.memory
            .entry(key("resource.memory_peak_mb"))
            .or_default()
            .push(usage["peak_memory_mb"].as_f64().unwrap());
    }
    e
}

fn same_samples(got: &[f64], want: &[f64], tolerance: f64) -> bool {
    let mut got = got.to_vec();
    let mut want = want.to_vec();
    got.sort_by(f64::total_cmp);
    want.sort_by(f64::total_cmp);
    got.len() == want.len()
        && got
            .iter()
            .zip(&want)
            .all(|(g, w)| (g - w).abs() <= tolerance)
}

/// Several `metaclaude run` processes at once and a `metaclaude serve`, all with the
/// default plugin set, send to the reference daemon; its counters and timers are what ran.
#[test]
fn the_reference_statsd_daemon_counts_what_concurrent_runs_and_serve_ran() {
    let _logs = LogDir;
    let daemon = Daemon::start();
    let mut runs: Vec<&str> = Vec::new();
    for (id, times) in [
        ("hello", 4),
        ("failing", 3),
        ("flaky", 2),
        ("missing_module", 2),
        ("noop", 2),
        (HOSTILE, 1),
    ] {
        runs.extend(std::iter::repeat_n(id, times));
    }
    // All at once: 14 processes, each with its own exporter and socket.
    let children: Vec<(&str, Child)> = runs
        .iter()
        .map(|id| {
            let child = run(daemon.port, id)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (*id, child)
        })
        .collect();
    let mut results: Vec<Value> = children
        .into_iter()
        .map(|(id, child)| {
            let out = child.wait_with_output().unwrap();
            let r = result_of(&out);
            assert_eq!(r["script_id"], id);
            r
        })
        .collect();

    let server = Server::start(&example_registry(), &[], |cmd| {
        cmd.env("METACLAUDE_METRICS_PORT", daemon.port.to_string())
            .env("METACLAUDE_LOG_DIR", log_dir());
    });
    for id in ["hello", "hello", "hello", "failing", "failing", HOSTILE] {
        let r = post(
            &server.url("/api/v1/executions"),
            &json!({ "script_id": id }).to_string(),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        results.push(r.json());
    }

    let want = expected_in_daemon(&results);
    // The server sends within its batch window: wait (bounded) until all has arrived.
    let deadline = Instant::now() + Duration::from_secs(20);
    let total = |c: &BTreeMap<String, f64>| -> f64 {
        c.iter()
            .filter(|(k, _)| k.starts_with("metaclaude.executions.total;"))
            .map(|(_, v)| v)
            .sum()
    };
    while total(&daemon.counters()) < results.len() as f64 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    // Everything any host sent, to its exit, is in the counters read after the marker.
    let (status, stderr) = server.stop();
    assert!(status.success(), "{status}: {stderr}");
    daemon.caught_up();
    let counters = daemon.counters();

    assert_eq!(counters["statsd.bad_lines_seen"], 0.0, "{counters:#?}");
    let got: BTreeMap<String, f64> = counters
        .iter()
        .filter(|(k, _)| k.starts_with("metaclaude.") && !k.contains(".cpu_time_seconds;"))
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    assert_eq!(got, want.counters, "counters: {counters:#?}");
    // CPU seconds: each line carries six decimals.
    for (key, seconds) in &want.cpu {
        let got = counters.get(key).copied().unwrap_or(-1.0);
        assert!(
            (got - seconds).abs() < 1e-5 * results.len() as f64,
            "{key}: {got} against {seconds}"
        );
    }
    let timers = daemon.timers();
    for (what, samples, tolerance) in [
        ("durations", &want.durations, 0.0011),
        ("memory peaks", &want.memory, 0.0011),
    ] {
        for (key, want) in samples {
            let got = timers.get(key).map(Vec::as_slice).unwrap_or(&[]);
            assert!(
                same_samples(got, want, tolerance),
                "{what} {key}: {got:?} against {want:?}"
            );
        }
    }
    let timer_keys: Vec<&String> = timers
        .keys()
        .filter(|k| k.starts_with("metaclaude."))
        .collect();
    assert_eq!(
        timer_keys.len(),
        want.durations.len() + want.memory.len(),
        "{timer_keys:#?}"
    );
}

/// A folder holding only the default StatsD exporter (as installed beside the binary).
fn exporter_only(dir: &Path) -> PathBuf {
    let installed = crate::util::exe()
        .parent()
        .unwrap()
        .join("plugins/statsd-exporter");
    let plugins = dir.join("plugins");
    let folder = plugins.join("statsd-exporter");
    std::fs::create_dir_all(&folder).unwrap();
    for file in ["plugin.toml", "statsd_exporter.wasm"] {
        std::fs::copy(installed.join(file), folder.join(file)).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; is the default plugin set installed (cargo xtask build-plugins)?",
                installed.join(file).display()
            )
        });
    }
    crate::util::grant_all(&plugins);
    plugins
}

/// Nobody listening (ICMP port unreachable), a receiver that never reads, and an address
/// nothing answers for (TEST-NET-3): a `metaclaude run` with the exporter aimed at any of
/// them ends as one aimed at a daemon that reads: the execution succeeds, the exporter
/// neither fails nor complains, the host exits 0 (what it costs in time, against a daemon
/// that reads and against no plugins, is measured by `cargo bench --bench default_set`).
/// Then a `serve` aimed at nobody counts the datagrams it lost, and shows them in its host
/// metrics and plugin list.
#[test]
fn a_target_that_is_down_costs_nothing_and_is_counted() {
    let _logs = LogDir;
    let tmp = tempfile::tempdir().unwrap();
    let plugins = exporter_only(tmp.path());
    let listening = UdpSocket::bind("127.0.0.1:0").unwrap();
    let stuck = stuck_receiver();
    let targets: Vec<(&str, String, u16)> = vec![
        (
            "listening",
            "127.0.0.1".into(),
            listening.local_addr().unwrap().port(),
        ),
        ("refusing", "127.0.0.1".into(), closed_udp_port()),
        (
            "stuck",
            "127.0.0.1".into(),
            stuck.local_addr().unwrap().port(),
        ),
        // TEST-NET-3 (RFC 5737): never assigned; dropped on the way, or no route at all.
        ("unroutable", "203.0.113.1".into(), 8125),
    ];
    for round in 0..2 {
        for (name, host, port) in &targets {
            let mut cmd = run(*port, "hello");
            cmd.env("METACLAUDE_METRICS_HOST", host)
                .arg("--plugins")
                .arg(&plugins);
            // Seconds at most on any machine; a send that waited for an answer would hang.
            let out = crate::util::hang_guard(
                &format!("metaclaude run aimed at a {name} target"),
                Duration::from_secs(120),
                move || cmd.output().unwrap(),
            );
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{name}, round {round}: {stderr}"
            );
            assert_eq!(result_of(&out)["success"], true, "{name}: {stderr}");
            assert!(stderr.trim().is_empty(), "{name}, round {round}: {stderr}");
        }
    }
    // The daemon that reads got each round's datagram from its run.
    listening
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    for _ in 0..2 {
        let mut buf = [0u8; 2048];
        let n = listening.recv(&mut buf).expect("a datagram of each run");
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(
            text.starts_with("metaclaude.executions.total:1|c|#script:hello,"),
            "{text}"
        );
    }

    // A long-running host aimed at nobody: each refusal comes back on the next send, and
    // the exporter reports the lost datagrams as a refused call.
    let server = Server::start(&example_registry(), &[], |cmd| {
        cmd.env("METACLAUDE_METRICS_PORT", closed_udp_port().to_string())
            .env("METACLAUDE_LOG_DIR", log_dir());
    });
    let refused = |server: &Server| -> f64 {
        let metrics = get(&server.url("/metrics")).body;
        metrics
            .lines()
            .find_map(|l| {
                l.strip_prefix("metaclaude_plugin_refused_calls_total{plugin=\"statsd-exporter\"} ")
            })
            .map(|v| v.parse().unwrap())
            .unwrap_or_else(|| panic!("no refused calls of the exporter in:\n{metrics}"))
    };
    let delivered = |server: &Server| -> f64 {
        crate::host_metrics::sample(
            &get(&server.url("/metrics")).body,
            "metaclaude_plugin_events_delivered_total{plugin=\"statsd-exporter\"}",
        )
    };
    let mut executions = 0;
    while refused(&server) < 1.0 {
        assert!(
            executions < 20,
            "no failure counted after {executions} executions"
        );
        let r = server.run("hello");
        assert_eq!(r["success"], true);
        executions += 1;
        // Sent (handed to the exporter, which sends in the call) before the next one, so
        // that it goes in a batch of its own: a refusal shows on the send after it.
        crate::util::wait_until(
            "the exporter was handed the execution",
            Duration::from_secs(30),
            || delivered(&server) >= f64::from(executions),
            || get(&server.url("/metrics")).body,
        );
    }
    let list = get(&server.url("/api/v1/plugins")).json();
    let exporter = list["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "statsd-exporter")
        .unwrap()
        .clone();
    assert_eq!(exporter["state"], "running", "{exporter}");
    assert_eq!(exporter["failures"], 0, "{exporter}");
    let last_error = exporter["last_error"].as_str().unwrap_or_default();
    assert!(
        last_error.contains("not sent")
            && last_error.contains("connection refused (nothing listens there")
            && !last_error.contains("os error"),
        "the refusal in the operator's terms, without WASI's errno: {exporter}"
    );
    let (status, stderr) = server.stop();
    assert!(status.success(), "{status}: {stderr}");
    assert!(
        stderr.contains("statsd:"),
        "the host's log shows it: {stderr}"
    );
}

/// Finished executions with the most output the host keeps by default (1 MiB a stream), in
/// a burst: the exporter, which needs none of it but receives it in each record, takes
/// whole batches of them within its memory limit, and sends every one (with 512 events a
/// call and 32 MiB, as first written, the first batch ran out of memory and all were lost).
/// The reference daemon counts what arrived.
#[test]
fn a_burst_of_large_outputs_fits_the_exporters_limits() {
    let daemon = Daemon::start();
    let port = daemon.port;
    let tmp = tempfile::tempdir().unwrap();
    let plugins = exporter_only(tmp.path());
    // This process's environment is not the plugin's to read: the target goes in the file.
    let manifest = plugins.join("statsd-exporter/plugin.toml");
    let text = std::fs::read_to_string(&manifest)
        .unwrap()
        .replace("${METACLAUDE_METRICS_HOST:-127.0.0.1}", "127.0.0.1")
        .replace("${METACLAUDE_METRICS_PORT:-8125}", &port.to_string());
    std::fs::write(&manifest, text).unwrap();
    crate::util::grant_all(&plugins);
    let mut host = PluginHost::new(Some(
        std::env::temp_dir().join("metaclaude-test-component-cache"),
    ))
    .unwrap();
    let errors = host.load_dir(&plugins).unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    const EXECUTIONS: usize = 40;
    let output = "x".repeat(1 << 20);
    for i in 0..EXECUTIONS {
        let mut r = ExecutionResult::new(format!("big-{i}"), "big", chrono::Utc::now());
        r.success = true;
        r.stdout = output.clone();
        r.stderr = output.clone();
        host.emit(&ExecutionEvent::finished(r));
    }
    host.shutdown();
    let info = host.list().pop().unwrap();
    assert_eq!(info.health, Health::Running, "{info:?}");
    assert_eq!((info.failures, info.dropped), (0, 0), "{info:?}");
    // Every datagram was sent before the shutdown returned.
    daemon.caught_up();
    let counters = daemon.counters();
    assert_eq!(counters["statsd.bad_lines_seen"], 0.0, "{counters:#?}");
    assert_eq!(
        counters.get("metaclaude.executions.total;script=big;specialist=none"),
        Some(&(EXECUTIONS as f64)),
        "{counters:#?}"
    );
}
