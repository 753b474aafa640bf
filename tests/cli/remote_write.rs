//! The remote write exporter, end to end: `metaclaude serve` hosts with
//! `plugins-available/remote-write-exporter` (two copies each: one to a real Prometheus
//! started with `--web.enable-remote-write-receiver`, one to a real VictoriaMetrics,
//! Debian's packages, which `cargo xtask test` installs) on loopback. What ran on each host
//! is what both query APIs count, told apart by the `host` external label; a receiver
//! stopped for about 20 s (until the plugin has failed a dozen times) and started again
//! gets every sample the queue held; a host restarted while its receiver is down sends
//! what its spool kept; a receiver answering 400 is reported with its message and never
//! asked twice for the same samples.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::alerts::set;
use crate::prometheus::{url_encode, Prometheus};
use crate::serve::{get, Server};
use crate::util::{
    bin, example_registry, grant_all, read_http_request, wait_until, LoopbackServer,
};

/// A `victoria-metrics` child process on loopback, killed when dropped.
struct VictoriaMetrics {
    child: Option<Child>,
    port: u16,
    log: PathBuf,
}

impl VictoriaMetrics {
    /// Starts `/usr/bin/victoria-metrics` storing in `dir`, on `port` (0: a port it picks
    /// itself, read back from the socket it listens on), and waits until it answers.
    fn start(dir: &Path, port: u16) -> VictoriaMetrics {
        std::fs::create_dir_all(dir).unwrap();
        let data = dir.join("data");
        let log = dir.join(format!("victoria-metrics-{port}.log"));
        let child = Command::new("/usr/bin/victoria-metrics")
            .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
            .arg(format!("-storageDataPath={}", data.display()))
            // Answer with what was just written: no 30 s latency offset, no result cache.
            .arg("-search.latencyOffset=0s")
            .arg("-search.disableCache")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("/usr/bin/victoria-metrics (Debian's victoria-metrics; cargo xtask test installs it)");
        let mut vm = VictoriaMetrics {
            port,
            child: Some(child),
            log,
        };
        if port == 0 {
            let pid = vm.child.as_ref().unwrap().id();
            wait_until(
                "victoria-metrics listens",
                Duration::from_secs(60),
                || listening_tcp_port(pid).is_some(),
                || vm.log_tail(),
            );
            vm.port = listening_tcp_port(pid).unwrap();
        }
        wait_until(
            "victoria-metrics answers",
            Duration::from_secs(60),
            || {
                crate::serve::agent()
                    .get(&format!("{}/health", vm.url()))
                    .call()
                    .is_ok_and(|r| r.status() == 200)
            },
            || vm.log_tail(),
        );
        vm
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(15).collect();
        format!("victoria-metrics log (last lines):\n{}", tail.join("\n"))
    }

    /// Stops it (SIGTERM, waited for): its port refuses connections until it starts again.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            crate::serve::signal(child.id() as i32, libc::SIGTERM);
            child.wait().unwrap();
        }
    }

    /// An instant query's result as `by` labels joined with `/` → value.
    fn by(&self, promql: &str, by: &[&str]) -> BTreeMap<String, f64> {
        by_labels(&get_data(&self.url(), promql), by)
    }

    /// The raw samples' timestamps (ms) of the series `selector` matches (one series).
    fn timestamps(&self, selector: &str) -> Vec<i64> {
        let r = get(&format!(
            "{}/api/v1/export?match[]={}",
            self.url(),
            url_encode(selector)
        ));
        assert_eq!(r.status, 200, "{}", r.body);
        let lines: Vec<Value> = r
            .body
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 1, "{selector}: {}", r.body);
        let mut t: Vec<i64> = lines[0]["timestamps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_i64().unwrap())
            .collect();
        t.sort();
        t
    }
}

impl Drop for VictoriaMetrics {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The TCP port process `pid` listens on, from its socket descriptors and
/// `/proc/PID/net/tcp` (VictoriaMetrics started on port 0 does not log the one it got).
fn listening_tcp_port(pid: u32) -> Option<u16> {
    let inodes: HashSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()?
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter_map(|l| {
            l.to_string_lossy()
                .strip_prefix("socket:[")?
                .strip_suffix(']')
                .map(String::from)
        })
        .collect();
    let table = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).ok()?;
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        // local address, state 0A (LISTEN), inode.
        (f.get(3) == Some(&"0A") && inodes.contains(*f.get(9)?))
            .then(|| u16::from_str_radix(f[1].rsplit(':').next()?, 16).ok())
            .flatten()
    })
}

/// `GET /api/v1/query` of the Prometheus HTTP API (both receivers speak it): the result.
fn get_data(url: &str, promql: &str) -> Vec<Value> {
    let r = get(&format!("{url}/api/v1/query?query={}", url_encode(promql)));
    assert_eq!(r.status, 200, "{promql}: {}", r.body);
    let v = r.json();
    assert_eq!(v["status"], "success", "{promql}: {v}");
    v["data"]["result"].as_array().unwrap().clone()
}

fn by_labels(result: &[Value], by: &[&str]) -> BTreeMap<String, f64> {
    result
        .iter()
        .map(|s| {
            let key: Vec<&str> = by
                .iter()
                .map(|l| s["metric"][*l].as_str().unwrap_or(""))
                .collect();
            (
                key.join("/"),
                s["value"][1].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect()
}

/// Installs `plugins-available/remote-write-exporter` into `plugins` as `name`, pushing
/// to `url` every second with the external labels `host` and `site`, ticked every 100 ms,
/// its spool in `spool`, a short backoff (100 ms doubling to 2 s); and grants it.
fn install_remote_write(plugins: &Path, name: &str, url: &str, host: &str, spool: &Path) {
    let available = crate::util::exe()
        .parent()
        .unwrap()
        .join("plugins-available/remote-write-exporter");
    assert!(
        available.is_dir(),
        "{} is not installed: run cargo xtask build-plugins --all",
        available.display()
    );
    let to = plugins.join(name);
    std::fs::create_dir_all(&to).unwrap();
    for entry in std::fs::read_dir(&available).unwrap().flatten() {
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
    let manifest = std::fs::read_to_string(to.join("plugin.toml")).unwrap();
    let edits = [
        ("name", format!("\"{name}\"")),
        ("tick_ms", "100".into()),
        ("url", format!("\"{url}\"")),
        (
            "external_labels",
            format!("{{ host = \"{host}\", site = \"loopback\" }}"),
        ),
        ("interval_s", "1".into()),
        ("min_backoff_ms", "100".into()),
        ("max_backoff_ms", "2000".into()),
        ("http", format!("[\"{url}\"]")),
        (
            "dirs",
            format!(
                "[{{ host = \"{}\", guest = \"/spool\", mode = \"rw\", create = true }}]",
                spool.display()
            ),
        ),
    ];
    let manifest = edits
        .iter()
        .fold(manifest, |text, (key, value)| set(text, key, value));
    std::fs::write(to.join("plugin.toml"), manifest).unwrap();
    grant_all(plugins);
}

/// What plugin `name` of `server` reports of its one destination.
fn delivery(server: &Server, name: &str) -> Value {
    let plugins = get(&server.url("/api/v1/plugins")).json();
    let p = plugins["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no plugin {name}: {plugins}"))
        .clone();
    assert_eq!(p["state"], "running", "{p}");
    let destinations = p["destinations"].as_array().unwrap();
    assert_eq!(destinations.len(), 1, "{p}");
    destinations[0].clone()
}

fn figure(d: &Value, key: &str) -> u64 {
    d[key].as_u64().unwrap_or_else(|| panic!("{key} in {d}"))
}

/// Runs each script of `scripts` on `server` and counts it in `ran` under `host/script`.
fn run_all(server: &Server, host: &str, scripts: &[&str], ran: &mut BTreeMap<String, f64>) {
    for id in scripts {
        server.run(id);
        *ran.entry(format!("{host}/{id}")).or_default() += 1.0;
    }
}

const EXECUTIONS: &str = "sum by (host, script) (metaclaude_executions_total)";

#[test]
fn two_hosts_push_to_prometheus_and_victoria_metrics_and_a_stopped_receiver_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("prometheus")).unwrap();
    let prometheus = Prometheus::start_with(
        &dir.path().join("prometheus"),
        "global:\n  scrape_interval: 15s\n",
        &["--web.enable-remote-write-receiver"],
    );
    let mut vm = VictoriaMetrics::start(&dir.path().join("victoria-metrics"), 0);
    let names = ["host-a", "host-b"];
    let hosts: Vec<Server> = names
        .iter()
        .map(|host| {
            let plugins = dir.path().join(host).join("plugins");
            install_remote_write(
                &plugins,
                "rw-prometheus",
                &format!("{}/api/v1/write", prometheus.url),
                host,
                &dir.path().join(host).join("spool-prometheus"),
            );
            install_remote_write(
                &plugins,
                "rw-victoria",
                &format!("{}/api/v1/write", vm.url()),
                host,
                &dir.path().join(host).join("spool-victoria"),
            );
            Server::start(
                &example_registry(),
                &["--plugins", plugins.to_str().unwrap()],
                |_| {},
            )
        })
        .collect();

    // Round one: both receivers count, per host and per script, what ran.
    let mut ran = BTreeMap::new();
    run_all(
        &hosts[0],
        names[0],
        &["hello", "hello", "failing"],
        &mut ran,
    );
    run_all(&hosts[1], names[1], &["noop", "hello"], &mut ran);
    prometheus.wait("round one in Prometheus", Duration::from_secs(60), || {
        by_labels(&prometheus.query(EXECUTIONS), &["host", "script"]) == ran
    });
    wait_until(
        "round one in VictoriaMetrics",
        Duration::from_secs(60),
        || vm.by(EXECUTIONS, &["host", "script"]) == ran,
        || {
            format!(
                "{:?} against {ran:?}",
                vm.by(EXECUTIONS, &["host", "script"])
            )
        },
    );
    let failures = "sum by (host, category) (metaclaude_executions_failure_total)";
    let expected_failures: BTreeMap<String, f64> = [("host-a/EXECUTION".to_string(), 1.0)].into();
    assert_eq!(
        by_labels(&prometheus.query(failures), &["host", "category"]),
        expected_failures
    );
    assert_eq!(vm.by(failures, &["host", "category"]), expected_failures);
    // Every series carries both external labels; histograms arrive whole.
    assert_eq!(
        vm.by("count by (site) (metaclaude_executions_total)", &["site"]),
        [("loopback".to_string(), 4.0)].into()
    );
    let inf = r#"sum by (host) (metaclaude_execution_duration_seconds_bucket{le="+Inf"})"#;
    let per_host: BTreeMap<String, f64> =
        [("host-a".to_string(), 3.0), ("host-b".to_string(), 2.0)].into();
    assert_eq!(by_labels(&prometheus.query(inf), &["host"]), per_host);
    assert_eq!(vm.by(inf, &["host"]), per_host);

    // VictoriaMetrics stops; the hosts keep running scripts and queueing snapshots until
    // each has failed a dozen times (about 20 s of backoff at most 2 s).
    let port = vm.port;
    vm.stop();
    let stopped_at = chrono::Utc::now().timestamp_millis();
    run_all(&hosts[0], names[0], &["hello", "noop"], &mut ran);
    run_all(&hosts[1], names[1], &["hello"], &mut ran);
    for h in &hosts {
        wait_until(
            "the plugin fails a dozen times and holds what it could not send",
            Duration::from_secs(120),
            || {
                let d = delivery(h, "rw-victoria");
                figure(&d, "failed_requests") >= 12 && figure(&d, "pending") > 0
            },
            || delivery(h, "rw-victoria").to_string(),
        );
        let d = delivery(h, "rw-victoria");
        assert_eq!(
            figure(&d, "failed_requests"),
            figure(&d, "retried_requests"),
            "{d}"
        );
        assert!(
            d["last_error"].as_str().unwrap().contains("127.0.0.1"),
            "the host's word on the refused connection: {d}"
        );
        // The other receiver was never held up.
        assert_eq!(figure(&delivery(h, "rw-prometheus"), "failed_requests"), 0);
    }
    let restarted_at = chrono::Utc::now().timestamp_millis();
    let vm = VictoriaMetrics::start(&dir.path().join("victoria-metrics"), port);
    wait_until(
        "round two in VictoriaMetrics after its restart",
        Duration::from_secs(60),
        || vm.by(EXECUTIONS, &["host", "script"]) == ran,
        || {
            format!(
                "{:?} against {ran:?}",
                vm.by(EXECUTIONS, &["host", "script"])
            )
        },
    );
    prometheus.wait("round two in Prometheus", Duration::from_secs(60), || {
        by_labels(&prometheus.query(EXECUTIONS), &["host", "script"]) == ran
    });
    // Nothing the queue held was lost: a snapshot a second all through the outage.
    for host in names {
        let t = vm.timestamps(&format!(
            r#"metaclaude_executions_total{{host="{host}",script="hello"}}"#
        ));
        let outage: Vec<i64> = t
            .iter()
            .copied()
            .filter(|t| (stopped_at..restarted_at).contains(t))
            .collect();
        assert!(
            outage.len() as i64 >= (restarted_at - stopped_at) / 1000 - 2,
            "{host}: {} samples in the {} ms VictoriaMetrics was down: {outage:?}",
            outage.len(),
            restarted_at - stopped_at
        );
        let widest = t.windows(2).map(|w| w[1] - w[0]).max().unwrap();
        assert!(widest <= 2500, "{host}: a gap of {widest} ms in {t:?}");
    }
    for h in &hosts {
        for plugin in ["rw-prometheus", "rw-victoria"] {
            let d = delivery(h, plugin);
            assert_eq!(figure(&d, "dropped"), 0, "{plugin}: {d}");
            assert!(figure(&d, "sent") > 0, "{d}");
        }
    }
}

/// Requests as a receiver saw them: the head (request line and headers) and the body.
type Seen = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A receiver answering 400 to everything, recording what it was sent.
struct Refusing {
    server: LoopbackServer,
    requests: Seen,
}

impl Refusing {
    fn start() -> Refusing {
        let requests: Seen = Arc::default();
        let seen = requests.clone();
        let server = LoopbackServer::start(move |stream, _| {
            let Some((head, body)) = read_http_request(&stream) else {
                return;
            };
            seen.lock().unwrap().push((head, body));
            let message = "out of order sample: the receiver says no\n";
            let _ = (&stream).write_all(
                format!(
                    "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{message}",
                    message.len()
                )
                .as_bytes(),
            );
        });
        Refusing { server, requests }
    }
}

#[test]
fn a_receiver_answering_400_is_reported_and_never_asked_twice_for_the_same_samples() {
    let dir = tempfile::tempdir().unwrap();
    let refusing = Refusing::start();
    let url = format!("http://127.0.0.1:{}/api/v1/write", refusing.server.port());
    let plugins = dir.path().join("plugins");
    install_remote_write(&plugins, "rw", &url, "host-a", &dir.path().join("spool"));
    // Listing or checking the plugins loads and initialises them, and sends nothing.
    let listed = bin()
        .args(["plugins", "list", "--plugins"])
        .arg(&plugins)
        .output()
        .unwrap();
    assert!(listed.status.success(), "{listed:?}");
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains("rw                   pusher"),
        "{listed:?}"
    );
    let checked = bin()
        .args(["plugins", "check"])
        .arg(plugins.join("rw"))
        .output()
        .unwrap();
    assert!(checked.status.success(), "{checked:?}");
    assert!(
        String::from_utf8_lossy(&checked.stdout)
            .contains("exports the `pusher` world of metaclaude:monitor@0.4.0"),
        "{checked:?}"
    );
    assert_eq!(
        refusing.requests.lock().unwrap().len(),
        0,
        "plugins list or check pushed"
    );
    let host = Server::start(
        &example_registry(),
        &["--plugins", plugins.to_str().unwrap()],
        |_| {},
    );
    host.run("hello");
    wait_until(
        "three requests refused",
        Duration::from_secs(60),
        || figure(&delivery(&host, "rw"), "failed_requests") >= 3,
        || delivery(&host, "rw").to_string(),
    );
    let d = delivery(&host, "rw");
    let requests = refusing.requests.lock().unwrap().clone();
    assert!(
        requests.len() as u64 >= figure(&d, "failed_requests"),
        "{d}"
    );
    assert_eq!(
        figure(&d, "retried_requests"),
        0,
        "a 400 is not retried: {d}"
    );
    assert!(figure(&d, "dropped") > 0, "{d}");
    assert_eq!(
        d["last_error"], "HTTP 400: out of order sample: the receiver says no",
        "{d}"
    );
    assert_eq!(
        d["destination"],
        format!("http://127.0.0.1:{}", refusing.server.port())
    );
    // Each request carried new samples: the same batch never came twice.
    let bodies: HashSet<&Vec<u8>> = requests.iter().map(|(_, body)| body).collect();
    assert_eq!(bodies.len(), requests.len(), "a request repeated");
    // The protocol's headers, and the host's User-Agent.
    let head = requests[0].0.to_ascii_lowercase();
    for header in [
        "post /api/v1/write http/1.1",
        "content-encoding: snappy",
        "content-type: application/x-protobuf",
        "x-prometheus-remote-write-version: 0.1.0",
        "user-agent: metaclaude/",
    ] {
        assert!(head.contains(header), "{header} in {head}");
    }

    // plugins list, asked of the running server, shows the receiver's message.
    let out = bin()
        .args(["plugins", "list", "--server", &host.http])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!(
            "delivers to http://127.0.0.1:{}: ",
            refusing.server.port()
        )) && text.contains("last delivery error at ")
            && text.contains(": HTTP 400: out of order sample: the receiver says no"),
        "{text}"
    );
    // And the host's metrics count the refused samples.
    let metrics = get(&host.url("/metrics")).body;
    let refused = metrics
        .lines()
        .find(|l| l.starts_with("metaclaude_plugin_delivery_dropped_items_total{plugin=\"rw\","))
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(!refused.ends_with(" 0"), "{refused}");
}

#[test]
fn a_host_restarted_while_its_receiver_is_down_sends_what_its_spool_kept() {
    let dir = tempfile::tempdir().unwrap();
    // A port VictoriaMetrics picked, then stopped: connections are refused there.
    let mut vm = VictoriaMetrics::start(&dir.path().join("victoria-metrics"), 0);
    let port = vm.port;
    vm.stop();
    let plugins = dir.path().join("plugins");
    let spool = dir.path().join("spool");
    install_remote_write(
        &plugins,
        "rw",
        &format!("http://127.0.0.1:{port}/api/v1/write"),
        "host-a",
        &spool,
    );
    let args = ["--plugins", plugins.to_str().unwrap()];
    let host = Server::start(&example_registry(), &args, |_| {});
    host.run("hello");
    host.run("hello");
    wait_until(
        "samples held after failed requests",
        Duration::from_secs(60),
        || {
            let d = delivery(&host, "rw");
            figure(&d, "failed_requests") >= 2 && figure(&d, "pending") > 0
        },
        || delivery(&host, "rw").to_string(),
    );
    let (status, stderr) = host.stop();
    assert!(status.success(), "{stderr}");
    let kept = spool.join("remote-write.queue");
    assert!(
        std::fs::metadata(&kept).is_ok_and(|m| m.len() > 100),
        "{} after the stop",
        kept.display()
    );

    // The receiver is back and so is the host: the counts of before the restart arrive
    // (the new host's counters start again from zero; hello does not run again).
    let vm = VictoriaMetrics::start(&dir.path().join("victoria-metrics"), port);
    let host = Server::start(&example_registry(), &args, |_| {});
    let before = r#"max_over_time(metaclaude_executions_total{host="host-a",script="hello"}[10m])"#;
    wait_until(
        "the spooled samples in VictoriaMetrics",
        Duration::from_secs(60),
        || vm.by(before, &["script"]) == [("hello".to_string(), 2.0)].into(),
        || {
            format!(
                "{:?}; {}",
                vm.by(before, &["script"]),
                delivery(&host, "rw")
            )
        },
    );
    assert_eq!(figure(&delivery(&host, "rw"), "dropped"), 0);
}
