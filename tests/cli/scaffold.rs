//! `metaclaude plugins new`: each language's scaffold builds with the command it prints,
//! from its own folder (its own `wit/`, packages from crates.io, npm or PyPI only), and
//! passes `plugins check`; the Python alert rule also raises its alert.
//!
//! What `cargo xtask test` built before is reused, not built again: the Rust scaffolds
//! build into the plugins' target directory (the same release profile) from the plugins'
//! lock file, so the wit-bindgen they share is compiled once; the C scaffolds take the WASI
//! adapter the C example's build wrote, and `wit-bindgen` and `wasm-tools` from
//! `target/tools/bin`; npm installs from its cache first.

use std::path::{Path, PathBuf};
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

/// `plugins check` as a new plugin's author runs it: valid but not granted (none of it
/// runs), then granted what it asks for (as the scaffold says), then loaded, `init` and all.
fn check(dir: &Path) {
    let said = |out: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let out = bin().args(["plugins", "check"]).arg(dir).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    assert!(said(&out).contains("NOT GRANTED"), "{}", said(&out));
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    crate::util::own_grants_file(dir.parent().unwrap());
    let out = bin()
        .args(["plugins", "grant", &name, "--yes", "--plugins"])
        .arg(dir.parent().unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", said(&out));
    let out = bin().args(["plugins", "check"]).arg(dir).output().unwrap();
    assert!(out.status.success(), "{}", said(&out));
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

/// A tool `cargo xtask build-plugins --all` installed (and `cargo xtask test` does):
/// target/tools/bin/<program>.
fn tool(program: &str) -> PathBuf {
    let path = root().join("target/tools/bin").join(program);
    assert!(
        path.is_file(),
        "{} is missing: it is installed by `cargo xtask build-plugins --all`",
        path.display()
    );
    path
}

#[test]
fn rust_scaffolds_of_every_kind_build_and_check() {
    let tmp = tempfile::tempdir().unwrap();
    // A plugins directory of the test's own: its grants file beside it is the test's.
    let plugins = tmp.path().join("plugins");
    // The plugins' target folder and lock file: the dependencies the plugins built are
    // reused. The component is then copied where the scaffold's manifest expects it.
    let target = root().join("plugins/target");
    let lock = root().join("plugins/Cargo.lock");
    for kind in ["sink", "exporter", "alert-rule", "notifier"] {
        let name = format!("my-{kind}");
        let printed = new_plugin(&plugins, &name, kind, "rust");
        assert!(
            printed.contains("cargo build --release --target wasm32-wasip2"),
            "{printed}"
        );
        let dir = plugins.join(&name);
        std::fs::copy(&lock, dir.join("Cargo.lock")).unwrap();
        run_ok(
            Command::new(env!("CARGO"))
                .args(["build", "--quiet", "--release", "--target", "wasm32-wasip2"])
                .current_dir(&dir)
                .env("CARGO_TARGET_DIR", &target),
        );
        let wasm = format!("{}.wasm", name.replace('-', "_"));
        let built = dir.join("target/wasm32-wasip2/release");
        std::fs::create_dir_all(&built).unwrap();
        std::fs::copy(
            target.join("wasm32-wasip2/release").join(&wasm),
            built.join(&wasm),
        )
        .unwrap();
        check(&dir);
    }
}

#[test]
fn python_alert_rule_scaffold_builds_checks_and_alerts() {
    let tool = tool("componentize-py");
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    let printed = new_plugin(&plugins, "slow-rule", "alert-rule", "python");
    let command = "componentize-py -d wit -w alert-rule componentize app -o slow_rule.wasm";
    assert!(printed.contains(command), "{printed}");
    let dir = plugins.join("slow-rule");
    run_ok(
        Command::new(&tool)
            .args(command.split(' ').skip(1))
            .current_dir(&dir),
    );
    check(&dir);
    // Every execution is "slow" at a zero threshold: the rule's alert reaches the host log.
    let manifest = std::fs::read_to_string(dir.join("plugin.toml")).unwrap();
    std::fs::write(
        dir.join("plugin.toml"),
        manifest.replace("threshold_seconds = 10.0", "threshold_seconds = 0.0"),
    )
    .unwrap();
    crate::util::grant_all(&plugins);
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
fn javascript_alert_rule_scaffold_builds_and_checks() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    let printed = new_plugin(&plugins, "js-rule", "alert-rule", "js");
    assert!(
        printed.contains("npm install && node build.mjs"),
        "{printed}"
    );
    let dir = plugins.join("js-rule");
    run_ok(
        Command::new("npm")
            .args([
                "install",
                "--silent",
                "--no-audit",
                "--no-fund",
                "--prefer-offline",
            ])
            .current_dir(&dir),
    );
    run_ok(Command::new("node").arg("build.mjs").current_dir(&dir));
    check(&dir);
}

#[test]
fn c_scaffolds_build_and_check() {
    let adapter =
        root().join("examples/plugins/c-notifier/build/wasi_snapshot_preview1.reactor.wasm");
    assert!(
        adapter.is_file(),
        "{} is missing: the C example's build writes it (cargo xtask build-plugins --all)",
        adapter.display()
    );
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    for kind in ["notifier", "sink", "exporter"] {
        let name = format!("c-{kind}");
        let printed = new_plugin(&plugins, &name, kind, "c");
        assert!(printed.contains("sh build.sh"), "{printed}");
        let dir = plugins.join(&name);
        // The adapter the C example's build wrote from the same adapter/ program (build.sh
        // runs it only when build/ has none).
        std::fs::create_dir_all(dir.join("build")).unwrap();
        std::fs::copy(
            &adapter,
            dir.join("build/wasi_snapshot_preview1.reactor.wasm"),
        )
        .unwrap();
        run_ok(
            Command::new("sh")
                .arg("build.sh")
                .current_dir(&dir)
                .env("WIT_BINDGEN", tool("wit-bindgen"))
                .env("WASM_TOOLS", tool("wasm-tools"))
                .env("CARGO", env!("CARGO")),
        );
        check(&dir);
    }
    // No C template for alert rules yet: said so, and nothing is written.
    let out = bin()
        .args([
            "plugins",
            "new",
            "c-rule",
            "--kind",
            "alert-rule",
            "--lang",
            "c",
            "--dir",
        ])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a usage error");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("rust, python or js"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!tmp.path().join("c-rule").exists());
}
