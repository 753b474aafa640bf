//! Silences end to end: a real `metaclaude serve` with the default alert rule (made quick)
//! and the file notifier; silences made and expired from the CLI mute a firing alert (the
//! history marks it silenced, the notifier receives nothing) and, once over, let it be
//! notified; the API refuses a cross-site silence; inhibition rules files give their
//! golden errors.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::alerts::{install, registry, set};
use crate::serve::{get, Server};
use crate::util::{assert_golden_errors, bin, wait_until};

/// The alert-rules plugin made quick (3 samples, ticks of 200 ms) and the file notifier
/// (no group wait), granted.
fn plugins_dir(dir: &Path) -> PathBuf {
    let plugins = dir.join("plugins");
    install(&plugins, "alert-rules", |t| {
        let t = set(t, "min_samples", "3");
        let t = set(t, "window_seconds", "60");
        let t = set(t, "keep_firing_for_seconds", "0");
        set(t, "tick_ms", "200")
    });
    install(&plugins, "file-notifier", |t| set(t, "group_wait_s", "0"));
    plugins
}

/// Every JSON line of `file` (none while it does not exist).
fn json_lines(file: &Path) -> Vec<Value> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// `metaclaude alerts ARGS... --server URL`, which must succeed; its stdout.
fn alerts_cli(server: &Server, args: &[&str]) -> String {
    let out = bin()
        .arg("alerts")
        .args(args)
        .args(["--server", &server.url("")])
        .env("USER", "tester")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "alerts {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The id in `silence ID made ...`.
fn made_id(stdout: &str) -> String {
    stdout
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("no id in {stdout:?}"))
        .to_string()
}

fn is_ops(a: &Value) -> bool {
    a["type"] == "error_rate_high" && a["specialist"] == "ops"
}

fn is_global(a: &Value) -> bool {
    a["type"] == "error_rate_high" && a["specialist"].is_null()
}

#[test]
fn a_silence_made_from_the_cli_mutes_a_firing_alert_until_it_expires() {
    let tmp = tempfile::tempdir().unwrap();
    let (logs, alerts_dir) = (tmp.path().join("logs"), tmp.path().join("alerts"));
    let plugins = plugins_dir(tmp.path());
    let registry = registry(tmp.path());
    let server = Server::start(
        &registry,
        &["--plugins", &plugins.to_string_lossy()],
        |cmd| {
            cmd.env("METACLAUDE_LOG_DIR", &logs)
                .env("METACLAUDE_ALERTS_DIR", &alerts_dir);
        },
    );
    let notified = alerts_dir.join("alerts.jsonl");
    let history = logs.join("alerts.jsonl");

    // A silence of the specialist ops, for a few seconds, made before anything fires.
    let made = alerts_cli(
        &server,
        &[
            "silence",
            "--matcher",
            "specialist=ops",
            "--matcher",
            "type=~\"error_rate.*\"",
            "--duration",
            "8s",
            "--comment",
            "ops maintenance",
        ],
    );
    let first = made_id(&made);
    assert!(made.contains("by tester: ops maintenance"), "{made}");
    let listed = alerts_cli(&server, &["silences"]);
    assert!(
        listed.contains(&first) && listed.contains("active"),
        "{listed}"
    );

    // Four failures: error_rate_high fires globally and for ops, in one evaluation.
    for _ in 0..4 {
        assert_eq!(server.run("fail")["success"], false);
    }
    wait_until(
        "the global alert reaches the notifier",
        Duration::from_secs(30),
        || json_lines(&notified).iter().any(is_global),
        || format!("{:?}", json_lines(&notified)),
    );
    // The ops alert fired with it (the same evaluation, the same notification): the
    // history has it silenced, the notifier received nothing of it.
    let recorded = json_lines(&history);
    let ops: Vec<&Value> = recorded.iter().filter(|a| is_ops(a)).collect();
    assert!(
        !ops.is_empty()
            && ops
                .iter()
                .all(|a| a["silenced_by"] == serde_json::json!([first])),
        "{recorded:?}"
    );
    assert!(
        !json_lines(&notified).iter().any(is_ops),
        "{:?}",
        json_lines(&notified)
    );
    let active = get(&server.url("/api/v1/alerts")).json();
    let muted = active["active"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| is_ops(a))
        .cloned()
        .unwrap();
    assert_eq!(muted["silenced_by"], serde_json::json!([first]));
    let silences = get(&server.url("/api/v1/silences")).json();
    assert_eq!(silences["silences"][0]["muting"], 1, "{silences}");

    // The silence ends while the alert still fires: it is notified then, and the history
    // records it unmuted.
    wait_until(
        "the ops alert reaches the notifier once the silence is over",
        Duration::from_secs(60),
        || json_lines(&notified).iter().any(is_ops),
        || {
            format!(
                "{:?}\n{}",
                json_lines(&notified),
                alerts_cli(&server, &["silences", "--all"])
            )
        },
    );
    let unmuted = json_lines(&history);
    let last_ops = unmuted.iter().rev().find(|a| is_ops(a)).unwrap();
    assert!(last_ops.get("silenced_by").is_none(), "{last_ops}");
    let all = alerts_cli(&server, &["silences", "--all"]);
    assert!(all.contains(&first) && all.contains("expired"), "{all}");

    // A silence of both, expired early from the CLI: both are muted (recorded), then
    // notified again, as new to the notifier.
    let before = json_lines(&notified).len();
    let second = made_id(&alerts_cli(
        &server,
        &[
            "silence",
            "-m",
            "type=error_rate_high",
            "--duration",
            "1h",
            "--comment",
            "deploy",
        ],
    ));
    wait_until(
        "the history records both silenced",
        Duration::from_secs(30),
        || {
            json_lines(&history)
                .iter()
                .filter(|a| a["silenced_by"] == serde_json::json!([second]))
                .count()
                >= 2
        },
        || format!("{:?}", json_lines(&history)),
    );
    let expired = alerts_cli(&server, &["unsilence", &second]);
    assert!(expired.contains("expired"), "{expired}");
    wait_until(
        "both are notified again",
        Duration::from_secs(30),
        || {
            let after = json_lines(&notified);
            let again = &after[before.min(after.len())..];
            again.iter().any(is_ops) && again.iter().any(is_global)
        },
        || format!("{:?}", json_lines(&notified)),
    );
    // (Without the receivers forgetting a muted alert, neither would be sent again before
    // the notifier's repeat interval, an hour.)
    // Expiring it again says so (exit 2 would be a usage error; the server answers 409).
    let again = bin()
        .args(["alerts", "unsilence", &second, "--server", &server.url("")])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already expired"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}

#[test]
fn silences_persist_and_a_cross_site_silence_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    let registry = registry(tmp.path());
    let start = || {
        Server::start(&registry, &["--no-plugins"], |cmd| {
            cmd.env("METACLAUDE_LOG_DIR", &logs);
        })
    };
    let server = start();
    let body = r#"{"matchers": [{"name": "script", "op": "=", "value": "backup"}],
        "ends_at": "2099-01-01T00:00:00Z", "created_by": "ana", "comment": "maintenance"}"#;
    let post = |origin: Option<&str>, content_type: &str| {
        let mut r = crate::serve::agent()
            .post(server.url("/api/v1/silences"))
            .header("content-type", content_type);
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        crate::serve::reply(r.send(body))
    };
    let refused = post(Some("http://evil.example"), "application/json");
    assert_eq!(refused.status, 403, "{}", refused.body);
    let form = post(None, "text/plain");
    assert_eq!(form.status, 415, "{}", form.body);
    assert_eq!(
        get(&server.url("/api/v1/silences")).json()["silences"],
        serde_json::json!([]),
        "nothing made"
    );
    let made = post(None, "application/json");
    assert_eq!(made.status, 201, "{}", made.body);
    let id = made.json()["silence"]["id"].as_str().unwrap().to_string();
    // A bad one names its field.
    let bad = crate::serve::post(
        &server.url("/api/v1/silences"),
        &body
            .replace("\"op\": \"=\"", "\"op\": \"=~\"")
            .replace("backup", "("),
    );
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert_eq!(bad.json()["error"]["field"], "matchers[0]");
    drop(server);
    // Kept across a restart, in a private file.
    let server = start();
    let listed = get(&server.url("/api/v1/silences")).json();
    assert_eq!(listed["silences"][0]["id"], id.as_str(), "{listed}");
    assert_eq!(listed["silences"][0]["state"], "active");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(logs.join("silences.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    drop(server);
    // A damaged file stops the server with its name, and is left as it was.
    std::fs::write(logs.join("silences.json"), b"{ not json").unwrap();
    let out = bin()
        .args(["serve", "--no-plugins", "--http-port", "0", "--no-ws-port"])
        .arg("--registry")
        .arg(&registry)
        .env("METACLAUDE_LOG_DIR", &logs)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("silences.json is damaged") && stderr.contains("move it away"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(logs.join("silences.json")).unwrap(),
        b"{ not json"
    );
}

#[test]
fn bad_inhibition_rules_give_their_golden_errors() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/cli/bad_inhibit_rules");
    let mut cases: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".toml"))
        .collect();
    cases.sort();
    let checked = assert_golden_errors(
        &dir,
        &cases,
        &["alerts", "check-rules"],
        |name| dir.join(name).with_extension("expected"),
        |_| {},
    );
    assert!(checked >= 3, "only {checked} golden rules files found");
    // The example in the README is valid, and serve refuses a bad one with exit 2.
    let good = dir.join("../../../examples/alerts/inhibit-rules.toml");
    let out = bin()
        .args(["alerts", "check-rules"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("ok, 1 rule(s)"),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let tmp = tempfile::tempdir().unwrap();
    let registry = registry(tmp.path());
    let out = bin()
        .args(["serve", "--no-plugins", "--http-port", "0", "--no-ws-port"])
        .arg("--registry")
        .arg(&registry)
        .arg("--inhibit-rules")
        .arg(dir.join(&cases[0]))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("check-rules"));
}

/// Seen typing the README's `alerts silence` in a shell without `$USER` (a service, a
/// container): the server refused it, `created_by` empty. The author is then `$LOGNAME`,
/// else the login name of the user running the command.
#[test]
fn without_user_the_author_is_logname_or_the_login_name() {
    let server = Server::start(&crate::util::example_registry(), &["--no-plugins"], |_| {});
    let silence = |logname: Option<&str>| {
        let mut cmd = bin();
        cmd.args(["alerts", "silence", "--matcher", "script=hello"])
            .args(["--duration", "1h", "--comment", "c", "--server"])
            .arg(server.url(""))
            .env_remove("USER")
            .env_remove("LOGNAME");
        if let Some(name) = logname {
            cmd.env("LOGNAME", name);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let login = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap();
    let login = String::from_utf8_lossy(&login.stdout).trim().to_string();
    let made = silence(None);
    assert!(made.contains(&format!("by {login}: c")), "{made}");
    let made = silence(Some("ops-bot"));
    assert!(made.contains("by ops-bot: c"), "{made}");
}
