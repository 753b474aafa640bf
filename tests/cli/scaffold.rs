//! `metaclaude plugins new`: each language's scaffold builds with the command it prints
//! and passes `plugins check`; the Python alert rule also raises its alert.

use std::path::Path;
use std::process::Command;

use crate::util::{bin, example_registry, root};

fn new_plugin(parent: &Path, name: &str, kind: &str, lang: &str) -> String {
    let out = bin()
        .args([
            "plugins", "new", name, "--kind", kind, "--lang", lang, "--dir",
        ])
        .arg(parent)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn check(dir: &Path) {
    let out = bin().args(["plugins", "check"]).arg(dir).output().unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn run_ok(cmd: &mut Command) {
    let line = format!("{cmd:?}");
    let out = cmd.output().unwrap_or_else(|e| panic!("{line}: {e}"));
    assert!(
        out.status.success(),
        "{line}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn rust_scaffold_builds_and_checks() {
    let tmp = tempfile::tempdir().unwrap();
    let printed = new_plugin(tmp.path(), "my-sink", "sink", "rust");
    assert!(
        printed.contains("cargo build --release --target wasm32-wasip2"),
        "{printed}"
    );
    let dir = tmp.path().join("my-sink");
    // A shared target folder keeps repeated test runs incremental; the component is then
    // copied where the scaffold's manifest expects it.
    let target = root().join("target/scaffold-test");
    run_ok(
        Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--release", "--target", "wasm32-wasip2"])
            .current_dir(&dir)
            .env("CARGO_TARGET_DIR", &target),
    );
    let built = dir.join("target/wasm32-wasip2/release");
    std::fs::create_dir_all(&built).unwrap();
    std::fs::copy(
        target.join("wasm32-wasip2/release/my_sink.wasm"),
        built.join("my_sink.wasm"),
    )
    .unwrap();
    check(&dir);
}

#[test]
fn python_alert_rule_scaffold_builds_checks_and_alerts() {
    let tool = root().join("target/tools/py/bin/componentize-py");
    assert!(
        tool.is_file(),
        "componentize-py is installed by `cargo xtask build-plugins`"
    );
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    new_plugin(&plugins, "slow-rule", "alert-rule", "python");
    let dir = plugins.join("slow-rule");
    run_ok(
        Command::new(&tool)
            .arg("-d")
            .arg(root().join("wit"))
            .args([
                "-w",
                "alert-rule",
                "componentize",
                "app",
                "-o",
                "slow_rule.wasm",
            ])
            .current_dir(&dir),
    );
    check(&dir);
    // Every execution is "slow" at a zero threshold: the rule's alert reaches the host log.
    let manifest = std::fs::read_to_string(dir.join("plugin.toml")).unwrap();
    std::fs::write(
        dir.join("plugin.toml"),
        manifest.replace("threshold = 10.0", "threshold = 0.0"),
    )
    .unwrap();
    let out = bin()
        .args(["run", "hello", "--plugins"])
        .arg(&plugins)
        .arg("--registry")
        .arg(example_registry())
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("slow_execution") && stderr.contains("hello took"),
        "{stderr}"
    );
}

#[test]
fn javascript_scaffold_builds_and_checks() {
    let tmp = tempfile::tempdir().unwrap();
    let printed = new_plugin(tmp.path(), "js-sink", "sink", "js");
    assert!(
        printed.contains("npm install && node build.mjs"),
        "{printed}"
    );
    let dir = tmp.path().join("js-sink");
    run_ok(
        Command::new("npm")
            .args(["install", "--silent", "--no-audit", "--no-fund"])
            .current_dir(&dir),
    );
    run_ok(Command::new("node").arg("build.mjs").current_dir(&dir));
    check(&dir);
}
