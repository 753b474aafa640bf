//! An Alertmanager pair (issue 31): two real Alertmanagers clustered on loopback, each
//! with a webhook receiver of the test's behind it, and `metaclaude serve`'s
//! `alertmanager-notifier` posting to both (`urls`), as Alertmanager's HA setup wants.
//!
//! Both pick their own ports (web and cluster: `127.0.0.1:0`); the first names its
//! cluster address in `/api/v2/status`, the second is started with it as `--cluster.peer`,
//! so no port is guessed and no race is lost. Every wait is bounded and on something
//! observable: the cluster's status (both peers, settled), the alerts each holds, what
//! the receivers got, and each Alertmanager's own counters (`/metrics`).

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::alerts::{install, put, registry, set, Alertmanager, Receiver};
use crate::serve::{agent, get, post, Server};
use crate::util::{bin, grant_all, wait_until};

/// The alert the tests raise (the default rule's error rate, made quick).
const ALERT: &str = "error_rate_high";

/// A generous bound for each wait: far above what the step takes on a loaded machine.
const LIMIT: Duration = Duration::from_secs(60);

/// Each Alertmanager's config: alerts grouped by name, notified to the test's webhook
/// receiver 1 s after they arrive, changes at the group's next flush (every 8 s), never
/// repeated within the test.
fn config(hook: &str) -> String {
    format!(
        "route:\n  receiver: hook\n  group_by: ['alertname']\n  group_wait: 1s\n  group_interval: 8s\n  repeat_interval: 1h\n\
         receivers:\n  - name: hook\n    webhook_configs:\n      - url: {hook}\n        send_resolved: true\n"
    )
}

/// Two clustered Alertmanagers and the receiver behind each.
struct Pair {
    ams: [Alertmanager; 2],
    hooks: [Receiver; 2],
}

impl Pair {
    /// Starts the first, then the second joining it, and waits until both see both and
    /// have settled. The instance at the second place waits `--cluster.peer-timeout`
    /// before it notifies, for the first's notification log to reach it by gossip.
    fn start() -> Pair {
        let hooks = [Receiver::start(), Receiver::start()];
        let flags = |peer: Option<&str>| {
            let mut f: Vec<String> = [
                "--cluster.listen-address=127.0.0.1:0",
                "--cluster.peer-timeout=2s",
                "--cluster.gossip-interval=50ms",
                "--cluster.pushpull-interval=1s",
                "--log.level=debug",
            ]
            .map(String::from)
            .to_vec();
            f.extend(peer.map(|p| format!("--cluster.peer={p}")));
            f
        };
        let first = Alertmanager::start_with(&config(&hooks[0].url), &flags(None));
        let own = status(&first);
        let name = &own["cluster"]["name"];
        let address = own["cluster"]["peers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| &p["name"] == name)
            .and_then(|p| p["address"].as_str())
            .unwrap_or_else(|| panic!("no cluster address of its own: {own}"))
            .to_string();
        let second = Alertmanager::start_with(&config(&hooks[1].url), &flags(Some(&address)));
        let pair = Pair {
            ams: [first, second],
            hooks,
        };
        wait_until(
            "both Alertmanagers see both, settled",
            LIMIT,
            || {
                pair.ams.iter().all(|am| {
                    let s = status(am);
                    s["cluster"]["status"] == "ready"
                        && s["cluster"]["peers"].as_array().map(Vec::len) == Some(2)
                })
            },
            || pair.describe(),
        );
        pair
    }

    /// The notifications the receivers got about [`ALERT`] with `status`, all told.
    fn notified(&self, status: &str) -> usize {
        self.hooks
            .iter()
            .flat_map(Receiver::bodies)
            .filter(|b| b["groupLabels"]["alertname"] == ALERT && b["status"] == status)
            .count()
    }

    /// The instance second in line: the one that waits its peer timeout before each
    /// notification, then checks the cluster's notification log and sends only what
    /// the first has not (Alertmanager orders the peers by name).
    fn second(&self) -> &Alertmanager {
        let name = |am: &Alertmanager| status(am)["cluster"]["name"].as_str().unwrap().to_string();
        self.ams.iter().max_by_key(|am| name(am)).unwrap()
    }

    /// How often the second in line checked the notification log (`/metrics`): once per
    /// flush of the alert's group, after its wait; what it sends, it sends right after.
    fn dedup_checks(&self) -> f64 {
        counter(self.second(), "alertmanager_nflog_queries_total")
    }

    fn describe(&self) -> String {
        self.ams
            .iter()
            .map(|am| format!("{}: {}\n{}", am.url, status(am)["cluster"], am.log()))
            .chain(self.hooks.iter().map(|h| format!("{:?}", h.bodies())))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Its `/api/v2/status`; `null` when it does not answer (a killed one).
fn status(am: &Alertmanager) -> Value {
    agent()
        .get(format!("{}/api/v2/status", am.url))
        .call()
        .ok()
        .and_then(|mut r| r.body_mut().read_json().ok())
        .unwrap_or(Value::Null)
}

/// A counter of the Alertmanager's `/metrics` (`series` with its labels as written), 0
/// before it first counts.
fn counter(am: &Alertmanager, series: &str) -> f64 {
    get(&format!("{}/metrics", am.url))
        .body
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// [`ALERT`] in `am`, in `state` (`active`, `suppressed`).
fn holds(am: &Alertmanager, state: &str) -> bool {
    am.alerts(ALERT)
        .iter()
        .any(|a| a["status"]["state"] == state)
}

/// `metaclaude serve` with the default rule made quick (3 samples, one alert for all
/// specialists, never critical, resolved as soon as it clears) and the Alertmanager
/// notifier posting to `urls` (its manifest's `urls`, one `${VAR}` each, each granted).
fn serve(dir: &Path, urls: [&str; 2]) -> Server {
    let plugins = dir.join("plugins");
    install(&plugins, "alert-rules", quick_rule);
    install(&plugins, "alertmanager-notifier", pair_manifest);
    Server::start(
        &registry(dir),
        &["--plugins", &plugins.to_string_lossy()],
        |cmd| {
            cmd.env("METACLAUDE_ALERTMANAGER_URL", urls[0])
                .env("METACLAUDE_ALERTMANAGER_URL_2", urls[1]);
        },
    )
}

/// The default rule's manifest made quick: 3 samples, one alert for all specialists,
/// never critical, resolved as soon as it clears, evaluated every 200 ms.
fn quick_rule(t: String) -> String {
    let t = set(t, "min_samples", "3");
    let t = set(t, "per_specialist", "false");
    let t = set(t, "keep_firing_for_seconds", "0");
    let t = set(t, "error_rate_percent_critical", "100");
    set(t, "tick_ms", "200")
}

/// The notifier's manifest for a pair, as its comments say to write it: their `urls`
/// and `http` lines (one `${VAR}` each, with a default) in place of `url` and `http`.
fn pair_manifest(t: String) -> String {
    let lines: Vec<&str> = t.lines().collect();
    let commented = |key: &str| {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(&format!("# {key} = ")))
            .map(|v| format!("{key} = {v}"))
            .unwrap_or_else(|| panic!("no commented `{key}` in the manifest:\n{t}"))
    };
    let (urls, http) = (commented("urls"), commented("http"));
    assert!(urls.contains("${METACLAUDE_ALERTMANAGER_URL_2:-"), "{urls}");
    let out: Vec<String> = lines
        .iter()
        .map(|l| {
            if l.starts_with("url = ") {
                urls.clone()
            } else if l.starts_with("http = ") {
                http.clone()
            } else {
                l.to_string()
            }
        })
        .collect();
    out.join("\n") + "\n"
}

/// Three failures: the rule fires (100 % of 3 above 10 %), and the server holds the alert.
fn fire(server: &Server) {
    for _ in 0..3 {
        assert_eq!(server.run("fail")["success"], false);
    }
    wait_until(
        "the server's alert fires",
        LIMIT,
        || {
            get(&server.url("/api/v1/alerts")).json()["active"]
                .as_array()
                .map(Vec::len)
                == Some(1)
        },
        || get(&server.url("/api/v1/alerts")).body,
    );
}

/// The notifier as the server's `/api/v1/plugins` shows it.
fn notifier(server: &Server) -> Value {
    get(&server.url("/api/v1/plugins")).json()["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "alertmanager-notifier")
        .cloned()
        .expect("the notifier is loaded")
}

#[test]
fn an_alertmanager_pair_shows_each_alert_and_notifies_once_per_change() {
    let tmp = tempfile::tempdir().unwrap();
    let pair = Pair::start();
    // The second in line first in `urls`: each change reaches it first (see below).
    let second = pair.second().url.clone();
    let first = pair
        .ams
        .iter()
        .find(|am| am.url != second)
        .unwrap()
        .url
        .clone();
    let server = serve(tmp.path(), [&second, &first]);

    let checks = pair.dedup_checks();
    fire(&server);
    wait_until(
        "the firing alert is active on both Alertmanagers",
        LIMIT,
        || pair.ams.iter().all(|am| holds(am, "active")),
        || pair.describe(),
    );
    // The first in line notified; the second waited its peer timeout, checked the
    // cluster's notification log and found it done.
    wait_until(
        "a firing notification, and the second Alertmanager's check after it",
        LIMIT,
        || pair.notified("firing") >= 1 && pair.dedup_checks() > checks,
        || {
            format!(
                "{} since {checks}\n{}",
                pair.dedup_checks(),
                pair.describe()
            )
        },
    );
    assert_eq!(
        pair.notified("firing"),
        1,
        "once, not once per Alertmanager:\n{}",
        pair.describe()
    );

    // Resolved. Alertmanager's own race, which this setup leaves no room for: the second
    // in line snapshots the group as it begins a flush, waits its peer timeout, then
    // checks the log; had its snapshot (still firing) missed the resolution that the
    // first's caught, it would send that stale snapshot once the first had notified the
    // resolution. Both flush in step (their groups began as the notifier posted the
    // alert, every 8 s, above the 2 s peer timeout), and the notifier posts the second
    // in line first, so a resolution the first caught the second caught too.
    let checks = pair.dedup_checks();
    let (status, said) = put(
        &server.url("/api/v1/alerts/thresholds/error_rate_percent"),
        &json!({"value": 100}),
    );
    assert_eq!(status, 200, "{said}");
    wait_until(
        "the alert resolved on both Alertmanagers",
        LIMIT,
        || pair.ams.iter().all(|am| !holds(am, "active")),
        || pair.describe(),
    );
    wait_until(
        "a resolved notification, and the second Alertmanager's check after it",
        LIMIT,
        || pair.notified("resolved") >= 1 && pair.dedup_checks() > checks,
        || {
            format!(
                "{} since {checks}\n{}",
                pair.dedup_checks(),
                pair.describe()
            )
        },
    );
    let p = notifier(&server);
    assert_eq!(
        (p["refused"].as_u64(), &p["last_error"]),
        (Some(0), &Value::Null),
        "{p}"
    );
    let (exit, stderr) = server.stop();
    assert!(exit.success(), "{stderr}");
    // Once each, whatever came late.
    assert_eq!(
        (pair.notified("firing"), pair.notified("resolved")),
        (1, 1),
        "{}",
        pair.describe()
    );
}

#[test]
fn a_dead_alertmanager_leaves_the_alert_to_the_other_and_plugins_list_names_it() {
    let tmp = tempfile::tempdir().unwrap();
    let mut pair = Pair::start();
    pair.ams[1].kill();
    let (live, dead) = (pair.ams[0].url.clone(), pair.ams[1].url.clone());
    let server = serve(tmp.path(), [&live, &dead]);

    fire(&server);
    wait_until(
        "the live Alertmanager holds the alert and notified its receiver",
        LIMIT,
        || holds(&pair.ams[0], "active") && pair.notified("firing") == 1,
        || pair.describe(),
    );
    // The host retries the failed call (1 s, then 2 s ...): the dead one each time.
    wait_until(
        "the notifier's deliveries refused three times",
        LIMIT,
        || notifier(&server)["refused"].as_u64() >= Some(3),
        || notifier(&server).to_string(),
    );
    // ... and not the live one, which took the alert once: one POST, one alert.
    assert_eq!(
        counter(
            &pair.ams[0],
            "alertmanager_alerts_received_total{status=\"firing\",version=\"v2\"}"
        ),
        1.0,
        "the live Alertmanager is not posted the alert again on each retry:\n{}",
        pair.ams[0].log()
    );
    let out = bin()
        .args(["plugins", "list", "--server", &server.http])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row = text
        .lines()
        .find(|l| l.starts_with("alertmanager-notifier "))
        .unwrap_or_else(|| panic!("{text}"));
    let refused: u64 = row.split_whitespace().nth(8).unwrap().parse().unwrap();
    assert!(refused >= 3, "the REFUSED column: {row}\n{text}");
    let dead_endpoint = format!("POST {dead}/api/v2/alerts: ");
    let last_error = text
        .lines()
        .skip_while(|l| !l.starts_with("alertmanager-notifier "))
        .find_map(|l| l.strip_prefix("  last error: "))
        .unwrap_or_else(|| panic!("no last error: {text}"));
    assert!(
        last_error.starts_with("Alertmanager 2 of 2 did not take the alerts (")
            && last_error.contains(" failed POSTs in a row since ")
            && last_error.contains(&dead_endpoint)
            && last_error.ends_with(&format!(
                "; 1 of 2 took them ({live}; not posted again on the retries)"
            )),
        "{last_error}"
    );
    let (exit, stderr) = server.stop();
    assert!(exit.success(), "{stderr}");
}

#[test]
fn a_silence_made_on_one_alertmanager_holds_on_the_other() {
    let tmp = tempfile::tempdir().unwrap();
    let pair = Pair::start();
    let now = chrono::Utc::now();
    let silence = json!({
        "matchers": [{"name": "alertname", "value": ALERT, "isRegex": false, "isEqual": true}],
        "startsAt": now.to_rfc3339(),
        "endsAt": (now + chrono::Duration::hours(1)).to_rfc3339(),
        "createdBy": "metaclaude tests",
        "comment": "made on the first Alertmanager only",
    });
    let made = post(
        &format!("{}/api/v2/silences", pair.ams[0].url),
        &silence.to_string(),
    );
    assert_eq!(made.status, 200, "{}", made.body);
    let id = made.json()["silenceID"].as_str().unwrap().to_string();
    wait_until(
        "the silence reached the second Alertmanager (gossip), active",
        LIMIT,
        || {
            get(&format!("{}/api/v2/silences", pair.ams[1].url))
                .json()
                .as_array()
                .is_some_and(|s| {
                    s.iter()
                        .any(|s| s["id"] == id.as_str() && s["status"]["state"] == "active")
                })
        },
        || get(&format!("{}/api/v2/silences", pair.ams[1].url)).body,
    );

    let server = serve(tmp.path(), [&pair.ams[0].url, &pair.ams[1].url]);
    fire(&server);
    // Both hold the alert, silenced by the silence made on the first.
    wait_until(
        "the alert is suppressed on both Alertmanagers by the one silence",
        LIMIT,
        || {
            pair.ams.iter().all(|am| {
                am.alerts(ALERT).iter().any(|a| {
                    a["status"]["state"] == "suppressed"
                        && a["status"]["silencedBy"] == json!([id.as_str()])
                })
            })
        },
        || pair.describe(),
    );
    // Nobody is told, once each has flushed the alert's group twice (the first flush's
    // pipeline, muted by the silence, is over when the second begins): their own log.
    wait_until(
        "both Alertmanagers flushed the silenced group twice",
        LIMIT,
        || pair.ams.iter().all(|am| flushes(am) >= 2),
        || pair.describe(),
    );
    assert_eq!(pair.notified("firing"), 0, "{}", pair.describe());
    let (exit, stderr) = server.stop();
    assert!(exit.success(), "{stderr}");
}

/// How often `am` began to flush [`ALERT`]'s group (its debug log says so as it begins;
/// one flush's notification is over before the next begins).
fn flushes(am: &Alertmanager) -> usize {
    let group = format!("alertname=\\\"{ALERT}\\\"}}\" msg=flushing");
    am.log().lines().filter(|l| l.contains(&group)).count()
}

/// An instance that accepts connections and never answers holds up the other for one
/// call at most: the first call's POST to it spends the call's whole deadline, the one
/// after it fails at once (not tried); on the host's retry the notifier posts the one
/// that failed fast first, and it takes the alert.
#[test]
fn a_hanging_alertmanager_holds_up_the_other_for_one_call_at_most() {
    let tmp = tempfile::tempdir().unwrap();
    let live = Alertmanager::start_with(
        &config(&Receiver::start().url),
        &["--cluster.listen-address=".into()],
    );
    // Connections complete in the kernel's backlog; nobody ever reads or answers them.
    let hanging = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hanging_url = format!("http://{}", hanging.local_addr().unwrap());
    let plugins = tmp.path().join("plugins");
    install(&plugins, "alert-rules", quick_rule);
    // A 2 s call: the http import's deadline is 1.8 s after the call began.
    install(&plugins, "alertmanager-notifier", |t| {
        set(pair_manifest(t), "call_timeout_ms", "2000")
    });
    let server = Server::start(
        &registry(tmp.path()),
        &["--plugins", &plugins.to_string_lossy()],
        |cmd| {
            cmd.env("METACLAUDE_ALERTMANAGER_URL", &hanging_url)
                .env("METACLAUDE_ALERTMANAGER_URL_2", &live.url);
        },
    );
    fire(&server);
    wait_until(
        "the live Alertmanager holds the alert, the hanging one notwithstanding",
        LIMIT,
        || holds(&live, "active"),
        || format!("{}\n{}", notifier(&server), live.log()),
    );
    wait_until(
        "the notifier's error names the hanging instance alone",
        LIMIT,
        || {
            notifier(&server)["last_error"].as_str().is_some_and(|e| {
                e.starts_with("Alertmanager 1 of 2 did not take the alerts (")
                    && e.contains(&format!("POST {hanging_url}/api/v2/alerts: "))
                    && e.ends_with(&format!(
                        "; 1 of 2 took them ({}; not posted again on the retries)",
                        live.url
                    ))
            })
        },
        || notifier(&server).to_string(),
    );
    let (exit, stderr) = server.stop();
    assert!(exit.success(), "{stderr}");
    drop(hanging);
}

/// The grant flow for a pair: a manifest asking for a second Alertmanager is not started
/// until the operator grants it, and the refusal names that destination.
#[test]
fn a_second_alertmanager_is_not_posted_to_until_granted() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    install(&plugins, "alertmanager-notifier", |t| t);
    let folder = plugins.join("alertmanager-notifier");
    let manifest = folder.join("plugin.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, pair_manifest(text)).unwrap();
    let list = || {
        bin()
            .args(["plugins", "list", "--plugins"])
            .arg(&plugins)
            .env("METACLAUDE_ALERTMANAGER_URL", "http://127.0.0.1:9093")
            .env("METACLAUDE_ALERTMANAGER_URL_2", "http://127.0.0.1:9094")
            .output()
            .unwrap()
    };
    let out = list();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("FAILED TO LOAD: plugin alertmanager-notifier")
            && text.contains(
                "HTTP requests to ${METACLAUDE_ALERTMANAGER_URL_2:-http://127.0.0.1:9094}/api/v2/alerts (now http://127.0.0.1:9094/api/v2/alerts)"
            )
            && text.contains("metaclaude plugins grant alertmanager-notifier"),
        "{text}"
    );
    grant_all(&plugins);
    let out = list();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
