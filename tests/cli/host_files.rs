//! The host's own files where plugins write (`host/src/safe_fs.rs`), through the real
//! binary: a link a plugin plants in the log directory is never followed, neither by the
//! alert history's writer nor by `metaclaude logs`; the log directory and its files are
//! private whatever the umask, while scripts keep the umask they were started with, and
//! files made for others too; a compiled-component cache others may write is not used.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use metaclaude::model::ExecutionResult;
use serde_json::Value;

use crate::alerts::{install, set};
use crate::plugins::write_plugin;
use crate::serve::{get, Server};
use crate::util::{bin, example_registry, wait_until};

/// A registry with `fail` (exit 1, no retries) and `umask` (prints its umask).
fn registry(dir: &Path) -> PathBuf {
    let scripts = dir.join("scripts");
    std::fs::create_dir_all(&scripts).unwrap();
    for (name, body) in [
        ("fail.sh", "#!/bin/sh\nexit 1\n"),
        ("umask.sh", "#!/bin/sh\numask\n"),
    ] {
        let p = scripts.join(name);
        std::fs::write(&p, body).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let registry = dir.join("registry.json");
    std::fs::write(
        &registry,
        r#"{"scripts": [
            {"id": "fail", "path": "scripts/fail.sh", "specialist": "ops", "max_retries": 0},
            {"id": "umask", "path": "scripts/umask.sh", "specialist": "ops"}
        ]}"#,
    )
    .unwrap();
    registry
}

/// The default alert rule, made to fire at the first failure and to tick often.
fn quick_alert_rule(plugins: &Path) {
    install(plugins, "alert-rules", |t| {
        let t = set(t, "min_samples", "1");
        let t = set(t, "per_specialist", "false");
        set(t, "tick_ms", "200")
    });
}

/// An execution record as the log sink writes it, for an execution named `id`.
fn record_line(id: &str) -> String {
    let now = chrono::Utc::now();
    let mut r = ExecutionResult::new(id, "hello", now);
    r.finished_at = now;
    let mut v = serde_json::to_value(&r).unwrap();
    v["event"] = "finished".into();
    v["level"] = "INFO".into();
    format!("{v}\n")
}

/// Starts `cmd` under umask 022, as `sh -c 'umask 022; exec metaclaude ...'` would.
fn under_umask_022(cmd: &mut Command) -> &mut Command {
    // SAFETY: `umask` is async-signal-safe and touches no memory.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0o022);
            Ok(())
        })
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

fn is_link(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink())
}

/// The alerts API's `history` object.
fn history_status(server: &Server) -> Value {
    get(&server.url("/api/v1/alerts")).json()["history"].clone()
}

#[test]
fn links_a_plugin_plants_in_the_log_directory_are_never_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    let outside = tmp.path().join("outside.jsonl");
    std::fs::write(&outside, b"").unwrap();
    // What a link would lead the reader to: a record `logs` would print.
    const SECRET: &str = "01SECRETSECRETSECRETSECRET";
    std::fs::write(tmp.path().join("secret.jsonl"), record_line(SECRET)).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(record_line(SECRET).as_bytes()).unwrap();
    std::fs::write(tmp.path().join("secret.jsonl.gz"), gz.finish().unwrap()).unwrap();
    let rotated = "executions-2026-01-01T00-00-00.000000Z.jsonl.gz";

    // A plugin granted the log directory read-write, as the log sink is, plants relative
    // links through WASI when it starts; the alert rule fires at the first failure.
    let plugins = tmp.path().join("plugins");
    quick_alert_rule(&plugins);
    write_plugin(
        &plugins,
        "planter",
        "fixture_sink.wasm",
        &format!(
            "name = \"NAME\"\nversion = \"1.0.0\"\nkind = \"sink\"\ncomponent = \"COMPONENT\"\n\
             [config]\nmode = \"plant-links\"\n\
             links = \"alerts.jsonl=../outside.jsonl,executions.jsonl=../secret.jsonl,{rotated}=../secret.jsonl.gz\"\n\
             [capabilities]\ndirs = [{{ host = \"{}\", guest = \"/out\", mode = \"rw\", create = true }}]\n",
            logs.display()
        ),
    );
    let server = Server::start(
        &registry(tmp.path()),
        &["--plugins", &plugins.to_string_lossy()],
        |cmd| {
            cmd.env("METACLAUDE_LOG_DIR", &logs);
        },
    );
    let loaded = get(&server.url("/api/v1/plugins")).json();
    assert_eq!(
        loaded["plugins"].as_array().map(Vec::len),
        Some(2),
        "both plugins load: {loaded}\n{}",
        server.stderr()
    );
    for name in ["alerts.jsonl", "executions.jsonl", rotated] {
        assert!(
            is_link(&logs.join(name)),
            "the plugin planted {name} through WASI; stderr:\n{}",
            server.stderr()
        );
    }

    assert_eq!(server.run("fail")["success"], false);
    wait_until(
        "the alert fires and its history write is refused",
        Duration::from_secs(30),
        || history_status(&server)["write_failures"].as_u64() > Some(0),
        || format!("{}\n{}", history_status(&server), server.stderr()),
    );
    let error = history_status(&server)["last_error"].to_string();
    assert!(
        error.contains("alerts.jsonl is a symbolic link (to ../outside.jsonl)")
            && error.contains("a plugin with write access"),
        "{error}"
    );
    // Its stderr is read by a thread of the test's: the line may arrive a little after
    // the status that says the same.
    wait_until(
        "the host says so in its log",
        Duration::from_secs(30),
        || server.stderr().contains("alerts.jsonl is a symbolic link"),
        || server.stderr(),
    );
    assert_eq!(
        std::fs::read(&outside).unwrap(),
        b"",
        "nothing written outside"
    );
    assert!(is_link(&logs.join("alerts.jsonl")), "the link left alone");
    drop(server);

    // `logs` reads neither link's target, and names each link it skipped.
    let out = bin()
        .env("METACLAUDE_LOG_DIR", &logs)
        .args(["logs", "--json"])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(!stdout.contains(SECRET), "read through a link:\n{stdout}");
    for name in ["executions.jsonl", rotated] {
        assert!(
            stderr.contains(&format!("{name} is a symbolic link")),
            "{name} reported:\n{stderr}"
        );
    }
    // Nor `alerts history`, which says it skipped the link.
    let out = bin()
        .args(["alerts", "history", "--log-dir"])
        .arg(&logs)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("alerts.jsonl is a symbolic link"),
        "{stderr}"
    );
}

#[test]
fn the_log_is_private_under_umask_022_and_scripts_keep_that_umask() {
    let tmp = tempfile::tempdir().unwrap();
    // Not there yet: the host (the log sink's grant) creates it, and the cache.
    let logs = tmp.path().join("new/logs");
    let cache = tmp.path().join("cache");
    let plugins = tmp.path().join("plugins");
    quick_alert_rule(&plugins);
    install(&plugins, "log-sink", |t| t);
    let server = Server::start(
        &registry(tmp.path()),
        &["--plugins", &plugins.to_string_lossy()],
        |cmd| {
            under_umask_022(cmd)
                .env("METACLAUDE_LOG_DIR", &logs)
                .env("METACLAUDE_CACHE_DIR", &cache);
        },
    );
    let r = server.run("umask");
    assert_eq!(r["stdout"], "0022\n", "the script's umask: {r}");
    assert_eq!(server.run("fail")["success"], false);
    let history = logs.join("alerts.jsonl");
    wait_until(
        "the alert is in the history and both executions in the log",
        Duration::from_secs(30),
        || {
            history.exists()
                && std::fs::read_to_string(logs.join("executions.jsonl"))
                    .is_ok_and(|t| t.lines().count() >= 2)
        },
        || format!("{}\n{}", history_status(&server), server.stderr()),
    );
    let (status, stderr) = server.stop();
    assert!(status.success(), "{stderr}");

    assert_eq!(mode(&logs), 0o700, "the log directory");
    let files: Vec<PathBuf> = std::fs::read_dir(&logs)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(files.len() >= 2, "{files:?}");
    for f in &files {
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }
    let components = cache.join("components");
    assert_eq!(mode(&components), 0o700, "the compiled-component cache");
    for f in std::fs::read_dir(&components).unwrap().flatten() {
        let want = if f.path().is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(&f.path()), want, "{}", f.path().display());
    }
}

#[test]
fn a_compiled_cache_its_group_may_write_is_not_used() {
    let tmp = tempfile::tempdir().unwrap();
    let components = tmp.path().join("components");
    std::fs::create_dir(&components).unwrap();
    std::fs::set_permissions(&components, std::fs::Permissions::from_mode(0o775)).unwrap();
    let out = bin()
        .env("METACLAUDE_LOG_DIR", tmp.path().join("logs"))
        .env("METACLAUDE_CACHE_DIR", tmp.path())
        .args(["run", "hello", "--registry"])
        .arg(example_registry())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        stderr
            .matches("not using the compiled-component cache")
            .count(),
        1,
        "said once:\n{stderr}"
    );
    assert!(
        stderr.contains("its group may write it (mode 0775)")
            && stderr.contains("chmod -R go-w")
            && stderr.contains("METACLAUDE_CACHE_DIR"),
        "{stderr}"
    );
    let written: Vec<_> = std::fs::read_dir(&components).unwrap().flatten().collect();
    assert!(written.is_empty(), "nothing cached there: {written:?}");
}

#[test]
fn files_made_for_others_keep_the_operators_umask() {
    let tmp = tempfile::tempdir().unwrap();
    // A textfile collector may run as another user.
    let metrics = tmp.path().join("metaclaude.prom");
    let out = under_umask_022(&mut bin())
        .args(["batch", "--no-plugins", "--registry"])
        .arg(example_registry())
        .arg("--metrics-file")
        .arg(&metrics)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(mode(&metrics), 0o644, "the metrics file");
    // A plugin's source is the operator's like any other.
    let out = under_umask_022(&mut bin())
        .args([
            "plugins", "new", "shared", "--kind", "sink", "--lang", "rust", "--dir",
        ])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut seen = 0;
    let mut folders = vec![tmp.path().join("shared")];
    while let Some(dir) = folders.pop() {
        assert_eq!(mode(&dir), 0o755, "{}", dir.display());
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            if e.path().is_dir() {
                folders.push(e.path());
            } else {
                assert_eq!(mode(&e.path()), 0o644, "{}", e.path().display());
                seen += 1;
            }
        }
    }
    assert!(seen >= 4, "{seen} files");
}
