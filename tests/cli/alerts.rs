//! Alerts end to end: the default alert rule in a real `metaclaude serve`, every kind of
//! notifier delivering (console, file, webhook to a loopback receiver, a real
//! Alertmanager, a notifier built against WIT 0.1.0), misbehaving notifiers beside them,
//! thresholds changed over the API and the CLI, the alert history and its query.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use crate::host_metrics::sample;
use crate::plugins::write_plugin;
use crate::serve::{agent, get, ws_connect, ws_next, Server};
use crate::util::{bin, listening_port, succeed, wait_until};

const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";

/// A real Alertmanager on a loopback port it picked, killed when dropped.
pub struct Alertmanager {
    child: Child,
    pub url: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Alertmanager {
    fn start() -> Alertmanager {
        Alertmanager::start_with(
            "route:\n  receiver: nobody\n  group_wait: 1s\nreceivers:\n  - name: nobody\n",
            &["--cluster.listen-address=".into()],
        )
    }

    /// Alertmanager with `config` (its YAML) and `args` (its cluster flags), on a web
    /// port it picks, ready.
    pub fn start_with(config: &str, args: &[String]) -> Alertmanager {
        assert!(
            Path::new(ALERTMANAGER).is_file(),
            "{ALERTMANAGER} is missing: sudo apt-get install -y prometheus-alertmanager (cargo xtask test installs it)"
        );
        let dir = tempfile::tempdir().unwrap();
        let config_file = dir.path().join("alertmanager.yml");
        std::fs::write(&config_file, config).unwrap();
        // On a port it picks, and names in its log.
        let log = dir.path().join("alertmanager.log");
        let mut child = Command::new(ALERTMANAGER)
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg("--web.listen-address=127.0.0.1:0")
            .args(args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start Alertmanager");
        let port = listening_port(&mut child, &log, "Alertmanager");
        let url = format!("http://127.0.0.1:{port}");
        let am = Alertmanager {
            child,
            url,
            log,
            _dir: dir,
        };
        wait_until(
            "Alertmanager ready",
            Duration::from_secs(30),
            || {
                agent()
                    .get(format!("{}/-/ready", am.url))
                    .call()
                    .is_ok_and(|r| r.status() == 200)
            },
            || "not ready".into(),
        );
        am
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kills it now (and reaps it).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The alerts Alertmanager holds named `alertname`, active or not.
    pub fn alerts(&self, alertname: &str) -> Vec<Value> {
        let r = get(&format!(
            "{}/api/v2/alerts?active=true&silenced=true&inhibited=true&unprocessed=true",
            self.url
        ));
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|a| a["labels"]["alertname"] == alertname)
            .collect()
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A webhook receiver on loopback: keeps the body of every POST, answers 200.
pub struct Receiver {
    pub url: String,
    bodies: Arc<Mutex<Vec<Value>>>,
}

impl Receiver {
    pub fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/alerts", listener.local_addr().unwrap());
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let kept = bodies.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                if let Some(body) = read_post(stream) {
                    kept.lock().unwrap().push(body);
                }
            }
        });
        Receiver { url, bodies }
    }

    pub fn bodies(&self) -> Vec<Value> {
        self.bodies.lock().unwrap().clone()
    }

    /// Every alert of every JSON-format POST, in order.
    fn alerts(&self) -> Vec<Value> {
        self.bodies()
            .into_iter()
            .flat_map(|b| b.as_array().cloned().unwrap_or_default())
            .collect()
    }
}

/// Reads one HTTP/1.1 request (headers, then Content-Length bytes), answers 200.
fn read_post(mut stream: TcpStream) -> Option<Value> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    serde_json::from_slice(&body).ok()
}

/// A registry with `fail` (exit 1) and `hello`, both of specialist `ops`, no retries.
pub fn registry(dir: &Path) -> PathBuf {
    crate::util::write_scripts(
        dir,
        &[
            ("fail.sh", "#!/bin/sh\necho broken >&2\nexit 1\n"),
            ("hello.sh", "#!/bin/sh\necho hello\n"),
        ],
    );
    let registry = dir.join("registry.json");
    std::fs::write(
        &registry,
        r#"{"scripts": [
            {"id": "fail", "path": "scripts/fail.sh", "specialist": "ops", "max_retries": 0},
            {"id": "hello", "path": "scripts/hello.sh", "specialist": "ops"}
        ]}"#,
    )
    .unwrap();
    registry
}

/// Copies the installed plugin `name` (the default set's or plugins-available) into
/// `plugins`, its manifest edited by `edit`.
pub fn install(plugins: &Path, name: &str, edit: impl Fn(String) -> String) {
    let built = bin_dir();
    let from = [
        built.join("plugins").join(name),
        built.join("plugins-available").join(name),
    ]
    .into_iter()
    .find(|d| d.is_dir())
    .unwrap_or_else(|| panic!("{name} is not installed: run cargo xtask build-plugins"));
    let to = plugins.join(name);
    std::fs::create_dir_all(&to).unwrap();
    for entry in std::fs::read_dir(&from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_name() == "plugin.toml" {
            let text = std::fs::read_to_string(entry.path()).unwrap();
            std::fs::write(target, edit(text)).unwrap();
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
    crate::util::grant_all(plugins);
}

fn bin_dir() -> PathBuf {
    crate::util::exe().parent().unwrap().to_path_buf()
}

/// `key = old` → `key = new` in a manifest, which must have it.
pub fn set(text: String, key: &str, value: &str) -> String {
    let mut found = false;
    let out: Vec<String> = text
        .lines()
        .map(|l| {
            if l.split('=').next().is_some_and(|k| k.trim() == key) && !l.starts_with('#') {
                found = true;
                format!("{key} = {value}")
            } else {
                l.to_string()
            }
        })
        .collect();
    assert!(found, "no `{key}` in the manifest");
    out.join("\n") + "\n"
}

/// The plugins of the scenario: the default rule made quick, the default notifiers with
/// no group wait, a 0.1.0 notifier and sink, a notifier that hangs, one that traps and
/// one whose receiver refuses every connection.
fn plugins_dir(dir: &Path, out_v01: &Path) -> PathBuf {
    let plugins = dir.join("plugins");
    install(&plugins, "alert-rules", |t| {
        let t = set(t, "min_samples", "3");
        let t = set(t, "window_seconds", "60");
        let t = set(t, "keep_firing_for_seconds", "0");
        set(t, "tick_ms", "200")
    });
    for name in ["console-notifier", "file-notifier"] {
        install(&plugins, name, |t| set(t, "group_wait_s", "0"));
    }
    // The webhook's calls grouped by specialist: each POST is one specialist's.
    install(&plugins, "webhook-notifier", |t| {
        set(t, "group_wait_s", "0\ngroup_by = [\"specialist\"]")
    });
    install(&plugins, "alertmanager-notifier", |t| t);
    install(&plugins, "log-sink", |t| t);
    std::fs::create_dir_all(out_v01).unwrap();
    for (name, wasm, kind) in [
        ("v01-notifier", "fixture_v01_notifier.wasm", "notifier"),
        ("v01-sink", "fixture_v01_sink.wasm", "sink"),
    ] {
        let routing = if kind == "notifier" {
            "[alerts]\ngroup_wait_s = 0\n"
        } else {
            ""
        };
        write_plugin(
            &plugins,
            name,
            wasm,
            &format!(
                "name = \"NAME\"\nversion = \"1.0.0\"\nkind = \"{kind}\"\ncomponent = \"COMPONENT\"\nwit = \"0.1.0\"\n\
                 [capabilities]\ndirs = [{{ host = \"{}\", guest = \"/out\", mode = \"rw\" }}]\n{routing}",
                out_v01.display()
            ),
        );
    }
    for mode in ["hang", "trap", "refused"] {
        write_plugin(
            &plugins,
            &format!("{mode}-notifier"),
            "fixture_notifier.wasm",
            &format!(
                "name = \"NAME\"\nversion = \"1.0.0\"\nkind = \"notifier\"\ncomponent = \"COMPONENT\"\n\
                 [config]\nurl = \"http://127.0.0.1:9/x\"\nmode = \"{mode}\"\n\
                 [capabilities]\nhttp = [\"http://127.0.0.1:9/*\"]\n\
                 [alerts]\ngroup_wait_s = 0\n[limits]\ncall_timeout_ms = 300\n"
            ),
        );
    }
    plugins
}

/// Waits (bounded) until the `alert-rules` plugin has been handed `finished` events (all
/// it takes) and called twice since: ticks, the second begun once the first had published
/// what it found (one worker thread). Then it has judged them, and what it raised is in
/// the server's alerts: what is not, it did not raise.
pub fn rule_judged_what_it_was_handed(server: &Server, finished: u32) {
    let metrics = || get(&server.url("/metrics")).body;
    let delivered = |m: &str| {
        sample(
            m,
            "metaclaude_plugin_events_delivered_total{plugin=\"alert-rules\"}",
        )
    };
    let calls = |m: &str| {
        sample(
            m,
            "metaclaude_plugin_call_duration_seconds_count{plugin=\"alert-rules\"}",
        )
    };
    wait_until(
        "the rule was handed the executions",
        Duration::from_secs(30),
        || delivered(&metrics()) >= f64::from(finished),
        metrics,
    );
    let before = calls(&metrics());
    wait_until(
        "the rule ticked twice since",
        Duration::from_secs(30),
        || calls(&metrics()) >= before + 2.0,
        metrics,
    );
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

pub fn put(url: &str, body: &Value) -> (u16, Value) {
    let mut r = agent()
        .put(url)
        .header("content-type", "application/json")
        .send(body.to_string())
        .expect("an answer");
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[test]
fn alerts_fire_reach_every_notifier_and_resolve_when_the_threshold_moves() {
    let tmp = tempfile::tempdir().unwrap();
    let am = Alertmanager::start();
    let hook = Receiver::start();
    let (logs, alerts_dir, out_v01) = (
        tmp.path().join("logs"),
        tmp.path().join("alerts"),
        tmp.path().join("v01"),
    );
    let plugins = plugins_dir(tmp.path(), &out_v01);
    let registry = registry(tmp.path());
    let server = Server::start(
        &registry,
        &["--plugins", &plugins.to_string_lossy()],
        |cmd| {
            cmd.env("METACLAUDE_LOG_DIR", &logs)
                .env("METACLAUDE_ALERTS_DIR", &alerts_dir)
                .env("METACLAUDE_WEBHOOK_URL", &hook.url)
                .env("METACLAUDE_ALERTMANAGER_URL", &am.url);
        },
    );
    let loaded = get(&server.url("/api/v1/plugins")).json();
    assert_eq!(
        loaded["plugins"].as_array().unwrap().len(),
        11,
        "every plugin loads: {loaded}"
    );
    // A live-feed client that wants alerts only.
    let mut feed = ws_connect(&server.ws_url("/ws?kinds=alert"), None).unwrap();
    assert_eq!(ws_next(&mut feed)["alerts"], json!([]));
    // Below min_samples: nothing, however bad.
    for _ in 0..2 {
        assert_eq!(server.run("fail")["success"], false);
    }
    rule_judged_what_it_was_handed(&server, 2);
    let none = get(&server.url("/api/v1/alerts")).json();
    assert_eq!(none["active"], json!([]), "two samples page nobody: {none}");
    for _ in 0..2 {
        server.run("fail");
    }
    // 4 of 4 failed: critical (above 25 %), globally and for the specialist.
    let active = |v: &Value| -> Vec<Value> { v["active"].as_array().cloned().unwrap_or_default() };
    let alerts_url = server.url("/api/v1/alerts");
    wait_until(
        "error_rate_high fires, globally and for ops",
        Duration::from_secs(30),
        || active(&get(&alerts_url).json()).len() == 2,
        || get(&alerts_url).body,
    );
    let firing = active(&get(&alerts_url).json());
    let global = firing.iter().find(|a| a["specialist"].is_null()).unwrap();
    assert_eq!(global["type"], "error_rate_high");
    assert_eq!(global["severity"], "critical");
    assert_eq!(global["status"], "firing");
    assert_eq!(global["message"], "Error rate is 100.0% (threshold: 25.0%)");
    assert_eq!(
        (global["value"].as_f64(), global["threshold"].as_f64()),
        (Some(100.0), Some(25.0))
    );
    assert_eq!(global["fingerprint"].as_str().unwrap().len(), 16);
    let ops = firing.iter().find(|a| a["specialist"] == "ops").unwrap();
    assert_eq!(ops["labels"]["specialist"], "ops");
    assert_ne!(ops["fingerprint"], global["fingerprint"]);

    // The feed told of both as they fired, numbered; a new client has them in its snapshot.
    for _ in 0..2 {
        let m = ws_next(&mut feed);
        assert_eq!(
            (m["type"].as_str(), m["alert"]["type"].as_str()),
            (Some("alert"), Some("error_rate_high")),
            "{m}"
        );
        assert!(m["seq"].as_u64().is_some());
    }
    let mut later = ws_connect(&server.ws_url("/ws"), None).unwrap();
    assert_eq!(ws_next(&mut later)["alerts"].as_array().unwrap().len(), 2);
    drop(later);

    // Every notifier delivers, the hanging and trapping ones notwithstanding.
    let until = |what: &str, done: &dyn Fn() -> bool, detail: &dyn Fn() -> String| {
        wait_until(what, Duration::from_secs(30), done, detail)
    };
    until(
        "the webhook got both alerts",
        &|| {
            hook.alerts()
                .iter()
                .filter(|a| a["status"] == "firing")
                .count()
                >= 2
        },
        &|| format!("{:?}", hook.bodies()),
    );
    let hooked = hook.alerts();
    assert!(
        hooked.iter().all(|a| a["type"] == "error_rate_high"),
        "{hooked:?}"
    );
    let one_specialist = |b: &Value| {
        let alerts = b.as_array().cloned().unwrap_or_default();
        alerts
            .windows(2)
            .all(|w| w[0]["specialist"] == w[1]["specialist"])
    };
    assert!(
        hook.bodies().iter().all(one_specialist),
        "one group a POST: {:?}",
        hook.bodies()
    );
    let file = alerts_dir.join("alerts.jsonl");
    until(
        "the file notifier wrote both",
        &|| lines(&file).len() >= 2,
        &|| format!("{:?}", lines(&file)),
    );
    until(
        "Alertmanager holds both, active",
        &|| {
            am.alerts("error_rate_high")
                .iter()
                .filter(|a| a["status"]["state"] == "active")
                .count()
                == 2
        },
        &|| format!("{:?}", am.alerts("error_rate_high")),
    );
    let in_am = am.alerts("error_rate_high");
    assert!(in_am
        .iter()
        .any(|a| a["labels"]["specialist"] == "ops" && a["labels"]["severity"] == "critical"));
    let v01 = out_v01.join("alerts.txt");
    until(
        "the 0.1.0 notifier got both",
        &|| {
            lines(&v01)
                .iter()
                .filter(|l| l.starts_with("error_rate_high critical"))
                .count()
                >= 2
        },
        &|| format!("{:?}", lines(&v01)),
    );
    until(
        "the console notifier printed them",
        &|| server.stderr().contains("ALERT [critical] error_rate_high"),
        &|| server.stderr(),
    );
    // The 0.1.0 sink took every event.
    let events = out_v01.join("events.txt");
    let finished = || {
        lines(&events)
            .iter()
            .filter(|l| l.starts_with("finished "))
            .count()
    };
    until(
        "the 0.1.0 sink got every finished event",
        &|| finished() == 4,
        &|| format!("{:?}", lines(&events)),
    );
    // The misbehaving notifiers are counted (the hanging one once its call's deadline
    // has passed), the others not.
    let plugins_url = server.url("/api/v1/plugins");
    let plugin = |name: &str| -> Value {
        get(&plugins_url).json()["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .cloned()
            .unwrap()
    };
    for bad in ["hang-notifier", "trap-notifier"] {
        until(
            "the misbehaving notifier failed",
            &|| plugin(bad)["failures"].as_u64().unwrap() >= 1,
            &|| plugin(bad).to_string(),
        );
        let why = plugin(bad)["last_error"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let expected = if bad == "hang-notifier" {
            "deadline exceeded"
        } else {
            "told to trap"
        };
        assert!(why.contains(expected), "{bad}: {why}");
    }
    // The one whose receiver refuses is retried, not failed: counted as refused.
    until(
        "the refused notifier's delivery is refused and retried",
        &|| plugin("refused-notifier")["refused"].as_u64().unwrap() >= 2,
        &|| plugin("refused-notifier").to_string(),
    );
    assert_eq!(plugin("refused-notifier")["failures"], 0);
    assert!(plugin("refused-notifier")["last_error"]
        .as_str()
        .unwrap()
        .contains("127.0.0.1:9"));
    assert_eq!(plugin("webhook-notifier")["failures"], 0);
    // Each sandboxed plugin's linear memory is reported, and within its limit.
    let memory = plugin("alert-rules")["memory_bytes"].as_u64().unwrap();
    assert!(memory > 0 && memory <= 64 << 20, "{memory}");
    assert_eq!(plugin("v01-notifier")["wit"], "0.1.0");
    assert_eq!(plugin("webhook-notifier")["wit"], "0.3.0");

    // Thresholds: shown, a bad change refused naming why, a good one taken.
    let thresholds = get(&server.url("/api/v1/alerts/thresholds")).json();
    let rule = &thresholds["rules"][0];
    assert_eq!(rule["plugin"], "alert-rules");
    assert!(rule["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["name"] == "error_rate_percent" && t["value"] == 10.0));
    let (status, err) = put(
        &server.url("/api/v1/alerts/thresholds/error_rate_pct"),
        &json!({"value": 15}),
    );
    assert_eq!(status, 422, "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("error_rate_percent"),
        "{err}"
    );
    let (status, err) = put(
        &server.url("/api/v1/alerts/thresholds/error_rate_percent"),
        &json!({"value": "x"}),
    );
    assert_eq!(status, 400, "{err}");
    let out = succeed(bin().args([
        "alerts",
        "set-threshold",
        "error_rate_percent_critical",
        "100",
        "--server",
        &server.http,
    ]));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("alert-rules: error_rate_percent_critical: 25 -> 100"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let (status, said) = put(
        &server.url("/api/v1/alerts/thresholds/error_rate_percent"),
        &json!({"value": 100}),
    );
    assert_eq!(status, 200, "{said}");
    // 100 % is not above 100 %: both resolve at the next evaluation.
    wait_until(
        "the alerts resolve",
        Duration::from_secs(30),
        || active(&get(&server.url("/api/v1/alerts")).json()).is_empty(),
        String::new,
    );
    until(
        "the webhook was told of both resolving",
        &|| {
            hook.alerts()
                .iter()
                .filter(|a| a["status"] == "resolved")
                .count()
                >= 2
        },
        &|| format!("{:?}", hook.bodies()),
    );
    let resolved: Vec<Value> = hook
        .alerts()
        .into_iter()
        .filter(|a| a["status"] == "resolved")
        .collect();
    assert!(resolved
        .iter()
        .all(|a| a["ends_at"].is_string() && a["starts_at"].is_string()));
    assert!(
        hook.bodies().iter().all(one_specialist),
        "resolved, still one group a POST: {:?}",
        hook.bodies()
    );
    until(
        "Alertmanager shows them resolved",
        &|| {
            am.alerts("error_rate_high")
                .iter()
                .all(|a| a["status"]["state"] != "active")
        },
        &|| format!("{:?}", am.alerts("error_rate_high")),
    );
    until(
        "the 0.1.0 notifier got them with status=resolved",
        &|| {
            lines(&v01)
                .iter()
                .filter(|l| l.contains("status=resolved"))
                .count()
                >= 2
        },
        &|| format!("{:?}", lines(&v01)),
    );

    // The history has each change; the CLI queries it. Only the error-rate alerts are
    // counted: on a loaded machine the hanging and trapping notifiers may reach their
    // failure limit and be quarantined, which is right and adds its own
    // `plugin_quarantined` alert to the history.
    let all_history = succeed(
        bin()
            .args(["alerts", "history", "--json", "--limit", "0", "--log-dir"])
            .arg(&logs),
    );
    let all_changes = String::from_utf8_lossy(&all_history.stdout).into_owned();
    let history = succeed(
        bin()
            .args([
                "alerts",
                "history",
                "--json",
                "--type",
                "error_rate_high",
                "--log-dir",
            ])
            .arg(&logs),
    );
    let changes: Vec<Value> = String::from_utf8_lossy(&history.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(changes.iter().all(|c| c["type"] == "error_rate_high"));
    // Each of the two alerts (global and `ops`), oldest change first: fired critical, then
    // resolved. The thresholds move in two steps (critical to 100, then warning to 100),
    // and a rule evaluation that falls between them rightly sees 100 % above the warning
    // but not the critical threshold: the alert then changes to warning before it
    // resolves, a third change. Whether a tick falls there is the machine's timing, so
    // that change is allowed, and only that one.
    let mut by_alert: std::collections::BTreeMap<String, Vec<&Value>> = Default::default();
    for c in changes.iter().rev() {
        by_alert
            .entry(c["fingerprint"].as_str().unwrap().to_string())
            .or_default()
            .push(c);
    }
    let shape = |list: &[&Value]| -> Vec<String> {
        list.iter()
            .map(|c| {
                format!(
                    "{} {}",
                    c["status"].as_str().unwrap(),
                    c["severity"].as_str().unwrap()
                )
            })
            .collect()
    };
    assert_eq!(
        by_alert.len(),
        2,
        "two alerts: {changes:?}\nthe whole history:\n{all_changes}"
    );
    for list in by_alert.values() {
        let shape = shape(list);
        let fired_then_resolved =
            shape.len() == 2 && shape[0] == "firing critical" && shape[1] == "resolved critical";
        let through_warning = shape == ["firing critical", "firing warning", "resolved warning"];
        assert!(
            fired_then_resolved || through_warning,
            "fired critical, then resolved (through warning if a tick fell between the two threshold changes): {shape:?}\nthe whole history:\n{all_changes}"
        );
    }
    assert_eq!(
        changes.iter().filter(|c| c["status"] == "resolved").count(),
        2
    );
    let only_ops = succeed(
        bin()
            .args([
                "alerts",
                "history",
                "--specialist",
                "ops",
                "--status",
                "firing",
                "--log-dir",
            ])
            .arg(&logs),
    );
    let text = String::from_utf8_lossy(&only_ops.stdout);
    let ops_firing = changes
        .iter()
        .filter(|c| c["specialist"] == "ops" && c["status"] == "firing")
        .count();
    assert!(
        text.contains(&format!("{ops_firing} alert(s)")) && text.contains("specialist=ops"),
        "{text}"
    );
    let api =
        get(&server.url("/api/v1/alerts/history?type=error_rate_high&severity=critical&limit=10"))
            .json();
    let critical = changes
        .iter()
        .filter(|c| c["severity"] == "critical")
        .count();
    assert!(critical >= 2, "{changes:?}");
    assert_eq!(api["alerts"].as_array().unwrap().len(), critical, "{api}");
    let active_cli = succeed(bin().args(["alerts", "active", "--server", &server.http]));
    assert!(String::from_utf8_lossy(&active_cli.stdout).contains("no alerts"));
    let (status, stderr) = server.stop();
    assert!(status.success(), "{stderr}");
}

/// Without a server, `alerts active` reads the history: the alerts whose last change is
/// `firing`. What an alert says is untrusted (a script's name can carry an escape
/// sequence into a message): the terminal gets none of its control characters. A damaged
/// line is named and skipped.
#[test]
fn alerts_are_listed_from_the_history_when_no_server_answers() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let alert = |status: &str, at: &str| {
        json!({
            "timestamp": at, "type": "error_rate_high", "severity": "warning",
            "message": "Error rate is 15.0% (threshold: 10.0%) \u{1b}]0;owned\u{7}",
            "value": 15.0, "threshold": 10.0, "status": status,
            "fingerprint": "00000000000000aa", "starts_at": "2026-01-01T00:00:00.000000Z"
        })
        .to_string()
    };
    std::fs::write(
        logs.join("alerts.jsonl"),
        format!(
            "{}\n{}\nnot json\n",
            alert("firing", "2026-01-01T00:00:00.000000Z"),
            alert("firing", "2026-01-01T00:01:00.000000Z")
        ),
    )
    .unwrap();
    let out = bin()
        .args([
            "alerts",
            "active",
            "--server",
            "http://127.0.0.1:9",
            "--log-dir",
        ])
        .arg(&logs)
        .output()
        .unwrap();
    // --server given and not answering: an error naming it.
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("cannot reach the server at http://127.0.0.1:9"));
    let out = bin()
        .env_remove("METACLAUDE_SERVER")
        .args(["alerts", "active", "--log-dir"])
        .arg(&logs)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        text.contains("1 alert(s)") && text.contains("alerts last seen firing"),
        "{text}"
    );
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "{text:?}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("alerts.jsonl:3"),
        "the damaged line is named"
    );
}

/// The seed's library calls: `register_alert_callback` hears each change at once (no group
/// wait), `set_alert_threshold` changes a rule's threshold and explains a bad name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_library_registers_callbacks_and_sets_thresholds() {
    use metaclaude::app::{MonitoredHost, PluginSource};
    use metaclaude::model::Alert;
    use metaclaude::ExecutionRequest;

    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    install(&plugins, "alert-rules", |t| {
        let t = set(t, "min_samples", "2");
        let t = set(t, "keep_firing_for_seconds", "0");
        set(t, "tick_ms", "100")
    });
    let registry = registry(tmp.path());
    let host = MonitoredHost::builder(&registry)
        .plugins(PluginSource::Dir(plugins))
        .env(
            "METACLAUDE_LOG_DIR",
            tmp.path().join("logs").to_string_lossy(),
        )
        .build()
        .unwrap();
    let heard: Arc<Mutex<Vec<Alert>>> = Arc::default();
    let sink = heard.clone();
    host.register_alert_callback(move |alerts| sink.lock().unwrap().extend_from_slice(alerts));
    let err = host
        .set_alert_threshold("error_rate", 5.0)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("error_rate_percent"),
        "the known names are listed: {err}"
    );
    let err = host
        .set_alert_threshold("error_rate_percent", 150.0)
        .unwrap_err()
        .to_string();
    assert!(err.contains("100"), "the range is given: {err}");
    // One failure in four: 25 %, above 20 but not above the default critical 25.
    let changed = host
        .set_alert_threshold("error_rate_percent", 20.0)
        .unwrap();
    assert_eq!(changed[0].plugin, "alert-rules");
    assert_eq!(changed[0].change, "error_rate_percent: 10 -> 20");
    for script in ["hello", "hello", "hello", "fail"] {
        host.execute(ExecutionRequest::new(script)).await;
    }
    let fired = || {
        heard
            .lock()
            .unwrap()
            .iter()
            .filter(|a| a.kind == "error_rate_high" && a.specialist.is_none())
            .cloned()
            .collect::<Vec<_>>()
    };
    wait_until(
        "the callback hears error_rate_high",
        Duration::from_secs(30),
        || !fired().is_empty(),
        || format!("{:?}", heard.lock().unwrap()),
    );
    let a = &fired()[0];
    assert_eq!(a.message, "Error rate is 25.0% (threshold: 20.0%)");
    assert_eq!(a.severity, metaclaude::model::Severity::Warning);
    assert_eq!(host.active_alerts().len(), 2, "global and ops");
    let thresholds = host.alert_thresholds();
    let list = thresholds[0].1.as_ref().unwrap();
    assert!(list
        .iter()
        .any(|t| t.name == "error_rate_percent" && t.value == 20.0));
    host.shutdown();
}
