//! The example notifiers in `examples/plugins/`, one per language an author may write a
//! plugin in besides Rust: `python-notifier` (componentize-py), `js-notifier`
//! (componentize-js) and `c-notifier` (clang-16, `wit-bindgen c`, `wasm-tools`). Each tool
//! is pinned and installed when missing, like everything `cargo xtask` needs; a tool that
//! cannot be installed stops the build with the command to run.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use super::{cargo, ensure_componentize_py, ensure_debian, have, newest_mtime, run, step};

/// The componentize-js release the JavaScript example (and its `package.json`) pins.
const COMPONENTIZE_JS: &str = "0.23.0";
/// The crates.io tools the C example is built with, pinned: `wit-bindgen c` names the
/// generated C functions, which the example's source calls.
const WIT_BINDGEN_CLI: (&str, &str, &str) = ("wit-bindgen", "wit-bindgen-cli", "0.63.0");
const WASM_TOOLS: (&str, &str, &str) = ("wasm-tools", "wasm-tools", "1.263.0");

/// Builds the three example notifiers (each skipped when its component is newer than its
/// sources and the WIT package).
pub fn build_example_notifiers(root: &Path) -> Result<()> {
    build_python_notifier(root)?;
    build_js_notifier(root)?;
    build_c_notifier(root)?;
    Ok(())
}

/// True when `component` was built after every file of `sources` (and of `wit/`) changed.
fn up_to_date(root: &Path, component: &Path, sources: &[PathBuf]) -> bool {
    let mut sources = sources.to_vec();
    sources.push(root.join("wit"));
    sources.push(root.join("wit/deps/monitor-0.1.0"));
    component
        .metadata()
        .and_then(|m| m.modified())
        .is_ok_and(|built| built >= newest_mtime(&sources))
}

fn build_python_notifier(root: &Path) -> Result<()> {
    let dir = root.join("examples/plugins/python-notifier");
    let out = dir.join("python_notifier.wasm");
    if up_to_date(root, &out, &[dir.join("app.py")]) {
        return Ok(());
    }
    let tool = ensure_componentize_py(root)?;
    step("building the Python example notifier (componentize-py)");
    run(Command::new(tool)
        .arg("-d")
        .arg(root.join("wit"))
        .args(["-w", "notifier", "componentize", "app", "-p"])
        .arg(&dir)
        .arg("-o")
        .arg(&out))
}

/// componentize-js, installed with npm into target/tools/node.
fn ensure_componentize_js(root: &Path) -> Result<PathBuf> {
    ensure_debian("node", "nodejs")?;
    ensure_debian("npm", "npm")?;
    let prefix = root.join("target/tools/node");
    let package = prefix.join("node_modules/@bytecodealliance/componentize-js/package.json");
    let installed = std::fs::read_to_string(&package)
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .is_some_and(|p| p["version"] == COMPONENTIZE_JS);
    if !installed {
        let spec = format!("@bytecodealliance/componentize-js@{COMPONENTIZE_JS}");
        step(&format!("installing {spec} (npm) into target/tools/node"));
        std::fs::create_dir_all(&prefix)?;
        run(Command::new("npm")
            .arg("install")
            .arg("--prefix")
            .arg(&prefix)
            .args(["--no-audit", "--no-fund", &spec]))
        .with_context(|| {
            format!(
                "cannot install componentize-js; run: npm install --prefix {} {spec}",
                prefix.display()
            )
        })?;
    }
    Ok(prefix)
}

fn build_js_notifier(root: &Path) -> Result<()> {
    let dir = root.join("examples/plugins/js-notifier");
    let out = dir.join("js_notifier.wasm");
    let build = dir.join("build.mjs");
    if up_to_date(root, &out, &[dir.join("notifier.js"), build.clone()]) {
        return Ok(());
    }
    let prefix = ensure_componentize_js(root)?;
    step("building the JavaScript example notifier (componentize-js)");
    // The example's own build script, run from the folder componentize-js is installed in:
    // Node resolves a module's imports from the script's location, not from the working
    // directory, so the example needs no node_modules of its own.
    let script = prefix.join("build-js-notifier.mjs");
    std::fs::copy(&build, &script)
        .with_context(|| format!("cannot copy {} to {}", build.display(), script.display()))?;
    run(Command::new("node")
        .arg(&script)
        .current_dir(&dir)
        .env("WIT", root.join("wit")))
}

/// A program from a crates.io package at a pinned version: the one on `PATH` when it
/// reports that version, otherwise installed with `cargo install` into
/// target/tools/cargo (never over a different version the user has).
fn ensure_cargo_tool(
    root: &Path,
    (program, package, version): (&str, &str, &str),
) -> Result<PathBuf> {
    let reports = |path: &Path| {
        Command::new(path).arg("--version").output().is_ok_and(|o| {
            o.status.success() && String::from_utf8_lossy(&o.stdout).contains(version)
        })
    };
    if have(program) && reports(Path::new(program)) {
        return Ok(PathBuf::from(program));
    }
    let tools = root.join("target/tools/cargo");
    let path = tools.join("bin").join(program);
    if reports(&path) {
        return Ok(path);
    }
    step(&format!(
        "installing {package} {version} (crates.io) into target/tools/cargo"
    ));
    run(cargo()
        .args(["install", "--locked", package, "--version", version, "--root"])
        .arg(&tools))
    .with_context(|| {
        format!(
            "cannot install {package}; run: cargo install --locked {package} --version {version} --root {}",
            tools.display()
        )
    })?;
    Ok(path)
}

fn build_c_notifier(root: &Path) -> Result<()> {
    let dir = root.join("examples/plugins/c-notifier");
    let out = dir.join("c_notifier.wasm");
    let sources = [
        "notifier.c",
        "alert_json.c",
        "alert_json.h",
        "build.sh",
        "adapter",
    ]
    .map(|f| dir.join(f));
    if up_to_date(root, &out, &sources) {
        return Ok(());
    }
    // clang for the wasm32-wasi target, its linker, the C library and compiler runtime.
    ensure_debian("/usr/bin/clang-16", "clang-16")?;
    ensure_debian("/usr/bin/wasm-ld-16", "lld-16")?;
    ensure_debian("/usr/lib/wasm32-wasi/libc.a", "wasi-libc")?;
    ensure_debian(
        "/usr/lib/llvm-16/lib/clang/16/lib/wasi/libclang_rt.builtins-wasm32.a",
        "libclang-rt-16-dev-wasm32",
    )?;
    let wit_bindgen = ensure_cargo_tool(root, WIT_BINDGEN_CLI)?;
    let wasm_tools = ensure_cargo_tool(root, WASM_TOOLS)?;
    step("building the C example notifier (clang-16, wit-bindgen c, wasm-tools)");
    let status = Command::new("sh")
        .arg("build.sh")
        .current_dir(&dir)
        .env("WIT", root.join("wit"))
        .env("WIT_BINDGEN", &wit_bindgen)
        .env("WASM_TOOLS", &wasm_tools)
        .env(
            "CARGO",
            std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()),
        )
        .status()
        .context("cannot run sh build.sh")?;
    if !status.success() {
        bail!("building examples/plugins/c-notifier (sh build.sh) failed ({status})");
    }
    Ok(())
}
