//! The fleet, end to end: two `metaclaude serve` hosts with the default plugin set (its
//! `prometheus-exporter` included) on free loopback ports, and a real Prometheus server
//! (Debian's `prometheus`, installed by `cargo xtask test`) scraping both every second
//! with the scrape config of `examples/prometheus/prometheus.yml`. What ran on each host is
//! what Prometheus' query API counts, told apart by `instance`; then every panel of
//! `examples/grafana/metaclaude.json` is queried and must return data.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::exposition::{scrape, PROMETHEUS_ACCEPT};
use crate::serve::{get, Server};
use crate::util::{example_registry, listening_port, root};

/// A `prometheus` server child process, killed when dropped.
pub struct Prometheus {
    child: Child,
    pub url: String,
    log: std::path::PathBuf,
}

/// The flag that starts Prometheus in agent mode.
pub const AGENT_MODE: &str = "--enable-feature=agent";

impl Prometheus {
    /// Starts `/usr/bin/prometheus` on a loopback port it picks (and names in its log) with
    /// `config`, its storage in `dir`, and waits (bounded) until it is ready.
    pub fn start(dir: &Path, config: &str) -> Prometheus {
        Prometheus::start_with(dir, config, &[])
    }

    /// [`Prometheus::start`] with more flags: [`AGENT_MODE`] (its storage is then the
    /// agent's write-ahead log), `--web.enable-remote-write-receiver` ...
    pub fn start_with(dir: &Path, config: &str, flags: &[&str]) -> Prometheus {
        std::fs::create_dir_all(dir).unwrap();
        let file = dir.join("prometheus.yml");
        std::fs::write(&file, config).unwrap();
        let log = dir.join("prometheus.log");
        let storage = if flags.contains(&AGENT_MODE) {
            "--storage.agent.path"
        } else {
            "--storage.tsdb.path"
        };
        let mut child = Command::new("/usr/bin/prometheus")
            .arg(format!("--config.file={}", file.display()))
            .arg(format!("{storage}={}", dir.join("data").display()))
            .args(flags)
            .arg("--web.listen-address=127.0.0.1:0")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect(
                "/usr/bin/prometheus (Debian's prometheus package; cargo xtask test installs it)",
            );
        let port = listening_port(&mut child, &log, "prometheus");
        let p = Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
        };
        p.wait("Prometheus ready", Duration::from_secs(60), || {
            crate::serve::agent()
                .get(&format!("{}/-/ready", p.url))
                .call()
                .is_ok_and(|r| r.status() == 200)
        });
        p
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn wait(&self, what: &str, limit: Duration, done: impl Fn() -> bool) {
        crate::util::wait_until(what, limit, done, || {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            format!("prometheus log (last lines):\n{}", tail.join("\n"))
        });
    }

    pub fn api(&self, path: &str) -> Value {
        let r = get(&format!("{}{path}", self.url));
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        let v = r.json();
        assert_eq!(v["status"], "success", "{path}: {v}");
        v["data"].clone()
    }

    /// An instant query's result vector.
    pub fn query(&self, promql: &str) -> Vec<Value> {
        let encoded: String = url_encode(promql);
        let data = self.api(&format!("/api/v1/query?query={encoded}"));
        assert_eq!(data["resultType"], "vector", "{promql}: {data}");
        data["result"].as_array().unwrap().clone()
    }

    /// `promql`'s result as label (of `by`) → value.
    pub fn by(&self, promql: &str, by: &str) -> BTreeMap<String, f64> {
        self.query(promql)
            .iter()
            .map(|s| {
                (
                    s["metric"][by].as_str().unwrap_or("").to_string(),
                    s["value"][1].as_str().unwrap().parse().unwrap(),
                )
            })
            .collect()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `examples/prometheus/NAME` with each line whose text begins with one of
/// `replacements`' prefixes replaced (indent kept) by its text: the file the user copies
/// is the file tested. Each prefix must match exactly one line.
pub fn example_config(name: &str, replacements: &[(&str, String)]) -> String {
    let path = root().join("examples/prometheus").join(name);
    let example =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut used = vec![0; replacements.len()];
    let config: Vec<String> = example
        .lines()
        .map(|line| {
            let indent = &line[..line.len() - line.trim_start().len()];
            match replacements
                .iter()
                .position(|(prefix, _)| line.trim_start().starts_with(prefix))
            {
                Some(i) => {
                    used[i] += 1;
                    format!("{indent}{}", replacements[i].1)
                }
                None => line.to_string(),
            }
        })
        .collect();
    for ((prefix, _), n) in replacements.iter().zip(used) {
        assert_eq!(
            n, 1,
            "{name}: one line beginning with {prefix:?}, found {n}"
        );
    }
    config.join("\n")
}

/// A scrape config of the examples (`prometheus.yml`, `site.yml`, `agent.yml`) pointed at
/// `targets`, scraping every second, with `more` replacements.
pub fn scrape_config(name: &str, targets: &[String], more: &[(&str, String)]) -> String {
    let quoted: Vec<String> = targets.iter().map(|t| format!("\"{t}\"")).collect();
    let mut replacements = vec![
        ("scrape_interval:", "scrape_interval: 1s".to_string()),
        ("scrape_timeout:", "scrape_timeout: 1s".to_string()),
        ("- targets:", format!("- targets: [{}]", quoted.join(", "))),
    ];
    replacements.extend(more.iter().cloned());
    example_config(name, &replacements)
}

/// `$__rate_interval` and friends, and the dashboard's variables set to All (`.*`).
fn grafana_expr(expr: &str) -> String {
    let e = expr
        .replace("$__rate_interval", "1m")
        .replace("$__interval", "15s")
        .replace("$__range", "5m");
    let e = ["$job", "$instance", "$script"]
        .iter()
        .fold(e, |e, var| e.replace(var, ".*"));
    assert!(
        !e.contains('$'),
        "a variable the test does not know: {expr}"
    );
    e
}

/// Every query target of a dashboard's panels (rows' nested panels too): (title, expr).
fn panel_exprs(panels: &[Value], out: &mut Vec<(String, String)>) {
    for p in panels {
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push((
                p["title"].as_str().unwrap_or("").to_string(),
                t["expr"].as_str().expect("a PromQL target").to_string(),
            ));
        }
        if let Some(nested) = p["panels"].as_array() {
            panel_exprs(nested, out);
        }
    }
}

fn values(map: &BTreeMap<String, f64>) -> Vec<(String, f64)> {
    map.iter().map(|(k, v)| (k.clone(), *v)).collect()
}

/// The counts every execution adds to, per `instance`: what a fleet's Prometheus must
/// agree on with what ran.
const PER_INSTANCE_COUNTS: [&str; 4] = [
    "sum by (instance) (metaclaude_executions_total)",
    "sum by (instance) (metaclaude_execution_duration_seconds_count)",
    "sum by (instance) (metaclaude_resource_memory_peak_bytes_count)",
    r#"sum by (instance) (metaclaude_execution_duration_seconds_bucket{le="+Inf"})"#,
];

/// Two `metaclaude serve` hosts with the default set, and what ran on each.
pub struct Fleet {
    pub hosts: [Server; 2],
    /// Each host's `host:port`, as Prometheus labels it `instance`.
    pub instances: Vec<String>,
    ran: [BTreeMap<String, f64>; 2],
    retries: [f64; 2],
}

impl Fleet {
    /// Two hosts on free loopback ports, each with its prometheus-exporter running.
    pub fn start() -> Fleet {
        let hosts = [
            Server::start(&example_registry(), &[], |_| {}),
            Server::start(&example_registry(), &[], |_| {}),
        ];
        for h in &hosts {
            let plugins = get(&h.url("/api/v1/plugins")).json();
            assert!(
                plugins["plugins"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|p| p["name"] == "prometheus-exporter" && p["state"] == "running"),
                "the default set has no running prometheus-exporter (run cargo xtask build-plugins): {plugins}"
            );
        }
        let instances = hosts
            .iter()
            .map(|h| h.http.trim_start_matches("http://").to_string())
            .collect();
        Fleet {
            hosts,
            instances,
            ran: Default::default(),
            retries: [0.0; 2],
        }
    }

    /// Runs different scripts on each host in two rounds, waiting (bounded) after each
    /// until `prometheus` counts it all per `instance`, so that rates see increases.
    pub fn run_rounds(&mut self, prometheus: &Prometheus) {
        let rounds: [[&[&str]; 2]; 2] = [
            [&["hello", "failing"], &["flaky", "noop"]],
            [&["hello", "hello", "failing"], &["flaky", "noop"]],
        ];
        for (round, scripts) in rounds.iter().enumerate() {
            for (i, host) in self.hosts.iter().enumerate() {
                for id in scripts[i] {
                    let result = host.run(id);
                    self.retries[i] += result["retries"].as_f64().unwrap();
                    *self.ran[i].entry(id.to_string()).or_default() += 1.0;
                }
            }
            let expected = self.per_instance();
            // Every count, not one: samples of one scrape can reach a Prometheus in
            // separate requests (remote write sends them in batches), so one series
            // being current says nothing of another.
            prometheus.wait(
                &format!("round {} in Prometheus", round + 1),
                Duration::from_secs(60),
                || {
                    PER_INSTANCE_COUNTS
                        .iter()
                        .all(|promql| prometheus.by(promql, "instance") == expected)
                },
            );
        }
    }

    /// The executions of each host, by its `instance`.
    fn per_instance(&self) -> BTreeMap<String, f64> {
        self.instances
            .iter()
            .zip(&self.ran)
            .map(|(instance, scripts)| (instance.clone(), scripts.values().sum()))
            .collect()
    }

    /// `prometheus` counts what ran on each host, per `instance` and per script, in
    /// every count: executions, the histograms' `_count` and `+Inf` bucket, failures by
    /// category, retries.
    pub fn check_counts(&self, prometheus: &Prometheus) {
        let per_instance = self.per_instance();
        assert_eq!(per_instance.values().sum::<f64>(), 9.0);
        for promql in PER_INSTANCE_COUNTS {
            assert_eq!(
                values(&prometheus.by(promql, "instance")),
                values(&per_instance),
                "{promql}"
            );
        }
        assert_eq!(
            prometheus.query("sum(metaclaude_executions_total)")[0]["value"][1],
            "9"
        );
        for (i, instance) in self.instances.iter().enumerate() {
            let scripts = prometheus.by(
                &format!(
                    r#"sum by (script) (metaclaude_executions_total{{instance="{instance}"}})"#
                ),
                "script",
            );
            assert_eq!(scripts, self.ran[i], "{instance}");
            let failures = prometheus.by(
                &format!(
                    r#"sum by (category) (metaclaude_executions_failure_total{{instance="{instance}"}})"#
                ),
                "category",
            );
            let failed = self.ran[i].get("failing").copied().unwrap_or(0.0);
            let expect: BTreeMap<String, f64> = if failed > 0.0 {
                [("EXECUTION".to_string(), failed)].into()
            } else {
                BTreeMap::new()
            };
            assert_eq!(failures, expect, "{instance}");
            let got = prometheus.by(
                &format!(r#"sum by (instance) (metaclaude_executions_retries_total{{instance="{instance}"}})"#),
                "instance",
            );
            assert_eq!(
                got.get(instance.as_str()),
                Some(&self.retries[i]),
                "{instance}"
            );
        }
        assert_eq!(self.retries[1], 4.0, "flaky is retried twice each time");
    }
}

/// Every panel query of `examples/grafana/metaclaude.json` (variables All, Grafana's
/// intervals made concrete) parses and returns a finite value at `prometheus`, and the
/// template variables' `label_values()` queries find their labels.
pub fn check_dashboard(prometheus: &Prometheus) {
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("examples/grafana/metaclaude.json")).unwrap(),
    )
    .expect("the dashboard is JSON");
    let mut exprs = Vec::new();
    panel_exprs(dashboard["panels"].as_array().unwrap(), &mut exprs);
    assert!(exprs.len() >= 15, "{} panel queries", exprs.len());
    for (title, expr) in &exprs {
        let promql = grafana_expr(expr);
        let result = prometheus.query(&promql);
        let finite = result.iter().any(|s| {
            s["value"][1]
                .as_str()
                .and_then(|v| v.parse::<f64>().ok())
                .is_some_and(f64::is_finite)
        });
        assert!(
            finite,
            "panel {title:?}: {promql} returned no finite value: {result:?}"
        );
    }
    for var in dashboard["templating"]["list"].as_array().unwrap() {
        let Some(query) = var["query"]["query"].as_str() else {
            continue;
        };
        let (selector, label) = query
            .strip_prefix("label_values(")
            .and_then(|q| q.strip_suffix(')'))
            .and_then(|q| q.rsplit_once(", "))
            .unwrap_or_else(|| panic!("variable query {query}"));
        let selector = grafana_expr(selector);
        let series = prometheus.api(&format!("/api/v1/series?match[]={}", url_encode(&selector)));
        let found: Vec<&str> = series
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s[label].as_str())
            .collect();
        assert!(!found.is_empty(), "variable {}: {query}", var["name"]);
    }
}

#[test]
fn two_hosts_one_prometheus_counts_what_ran_on_each_and_every_panel_has_data() {
    let mut fleet = Fleet::start();
    let dir = tempfile::tempdir().unwrap();
    let prometheus = Prometheus::start(
        dir.path(),
        &scrape_config("prometheus.yml", &fleet.instances, &[]),
    );
    prometheus.wait("both targets up", Duration::from_secs(30), || {
        let targets = prometheus.api("/api/v1/targets");
        let active = targets["activeTargets"].as_array().unwrap();
        active.len() == 2 && active.iter().all(|t| t["health"] == "up")
    });
    let targets = prometheus.api("/api/v1/targets");
    for t in targets["activeTargets"].as_array().unwrap() {
        assert_eq!(t["lastError"], "", "{t}");
        assert_eq!(t["labels"]["job"], "metaclaude");
    }
    fleet.run_rounds(&prometheus);
    fleet.check_counts(&prometheus);

    // Prometheus scraped OpenMetrics: `_created` samples exist only in that form, and a
    // scrape asking as Prometheus does gets that content type.
    assert_eq!(
        prometheus
            .by(
                "count by (instance) (metaclaude_executions_created)",
                "instance"
            )
            .len(),
        2
    );
    for h in &fleet.hosts {
        let r = scrape(h, Some(PROMETHEUS_ACCEPT));
        assert_eq!(
            r.header("content-type"),
            Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
        );
    }

    // Every panel of the example dashboard parses and returns data.
    check_dashboard(&prometheus);
}
