//! `cargo xtask build-static`: the static executable for Linux on x86-64
//! (`x86_64-unknown-linux-musl`, release), with the default plugin set and its grants
//! installed beside it, as `build-plugins` installs them beside the other builds.
//!
//! A one-shot `metaclaude run` spends most of its own time starting: glibc's loader alone
//! asks the CPU for its caches' sizes with dozens of `cpuid` instructions at every start,
//! each a trap to the hypervisor on a virtual machine. A static executable on musl has no
//! loader and asks nothing. What it gives up, the README says ("The static executable"):
//! it cannot load native plugins.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::tools::{ensure_debian, ensure_rust_target};
use crate::wasm::{build_plugins, PluginSet};
use crate::{cargo, run, step};

/// The static executable's target triple.
pub const TARGET: &str = "x86_64-unknown-linux-musl";

/// Where `build-static` leaves the executable (its plugins in `plugins/` beside it).
pub fn executable(root: &Path) -> PathBuf {
    root.join("target").join(TARGET).join("release/metaclaude")
}

/// `cargo xtask build-static`: the default plugin set, then the static executable.
pub fn build_static(root: &Path) -> Result<PathBuf> {
    build_plugins(root, PluginSet::Default)?;
    build_static_executable(root)
}

/// The static executable alone, for callers that built the plugins already (`build-plugins`
/// installs them beside it); returns its path.
pub fn build_static_executable(root: &Path) -> Result<PathBuf> {
    ensure_rust_target(TARGET)?;
    // The C parts of the dependencies (mimalloc, ring, libdeflate) are compiled against
    // musl's headers by its GCC wrapper, which `cc` looks for under this name.
    ensure_debian("x86_64-linux-musl-gcc", "musl-tools")?;
    step(&format!(
        "building the static metaclaude (cargo build --release --target {TARGET} -p metaclaude-host)"
    ));
    run(cargo("build").args([
        "--quiet",
        "--release",
        "--target",
        TARGET,
        "-p",
        "metaclaude-host",
        "--bin",
        "metaclaude",
    ]))
    .with_context(|| format!("building the static executable for {TARGET}"))?;
    let exe = executable(root);
    step(&format!(
        "the static executable: {} (the default plugin set beside it)",
        exe.display()
    ));
    Ok(exe)
}
