//! The example plugins in `examples/plugins/`, one per language an author may write a
//! plugin in besides Rust: `python-sink` and `python-notifier` (componentize-py),
//! `js-notifier` (componentize-js) and `c-notifier` (clang-16, `wit-bindgen c`,
//! `wasm-tools`). Built by `cargo xtask build-plugins --all` and `cargo xtask test`, not by
//! the demo. Each tool is pinned and installed when missing (`tools`); a tool that cannot
//! be installed stops the build with the command to run.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::tools::{componentize_py, ensure_componentize_js, wasm_tools, wit_bindgen};
use crate::{cargo_program, ensure_debian, run, step};

/// Builds the four example plugins (each skipped when its component is newer than its
/// sources and the WIT package).
pub fn build_examples(root: &Path) -> Result<()> {
    // The tools, linked into target/tools/bin, where the scaffold tests find them too.
    componentize_py(root)?;
    wit_bindgen(root)?;
    wasm_tools(root)?;
    build_python(root, "python-sink", "python_sink.wasm", "sink")?;
    build_python(root, "python-notifier", "python_notifier.wasm", "notifier")?;
    build_js_notifier(root)?;
    build_c_notifier(root)?;
    Ok(())
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

/// True when `component` was built after every file of `sources` (and of `wit/`) changed.
fn up_to_date(root: &Path, component: &Path, sources: &[PathBuf]) -> bool {
    let mut sources = sources.to_vec();
    sources.push(root.join("wit"));
    sources.push(root.join("wit/deps/monitor-0.1.0"));
    sources.push(root.join("wit/deps/monitor-0.2.0"));
    sources.push(root.join("wit/deps/monitor-0.3.0"));
    component
        .metadata()
        .and_then(|m| m.modified())
        .is_ok_and(|built| built >= newest_mtime(&sources))
}

fn build_python(root: &Path, folder: &str, component: &str, world: &str) -> Result<()> {
    let dir = root.join("examples/plugins").join(folder);
    let out = dir.join(component);
    if up_to_date(root, &out, &[dir.join("app.py")]) {
        return Ok(());
    }
    let tool = componentize_py(root)?;
    step(&format!(
        "building the Python example {folder} (componentize-py)"
    ));
    run(Command::new(tool)
        .arg("-d")
        .arg(root.join("wit"))
        .args(["-w", world, "componentize", "app", "-p"])
        .arg(&dir)
        .arg("-o")
        .arg(&out))
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

/// The WASI adapter the C builds link with, as the C example's build wrote it: the C
/// scaffold tests reuse it rather than build their own.
pub fn c_adapter(root: &Path) -> PathBuf {
    root.join("examples/plugins/c-notifier/build/wasi_snapshot_preview1.reactor.wasm")
}

fn build_c_notifier(root: &Path) -> Result<()> {
    let dir = root.join("examples/plugins/c-notifier");
    let out = dir.join("c_notifier.wasm");
    let sources = [
        "notifier.c",
        "support.c",
        "support.h",
        "build.sh",
        "plugin.toml",
        "adapter",
        "adapter/src",
    ]
    .map(|f| dir.join(f));
    if up_to_date(root, &out, &sources) && c_adapter(root).is_file() {
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
    let wit_bindgen = wit_bindgen(root)?;
    let wasm_tools = wasm_tools(root)?;
    step("building the C example notifier (clang-16, wit-bindgen c, wasm-tools)");
    let status = Command::new("sh")
        .arg("build.sh")
        .current_dir(&dir)
        .env("WIT", root.join("wit"))
        .env("WIT_BINDGEN", &wit_bindgen)
        .env("WASM_TOOLS", &wasm_tools)
        .env("CARGO", cargo_program())
        .status()
        .context("cannot run sh build.sh")?;
    if !status.success() {
        bail!("building examples/plugins/c-notifier (sh build.sh) failed ({status})");
    }
    Ok(())
}
