//! `cargo xtask test`: every check, cheapest first, each a timed step; the table of wall
//! times is printed at the end, and on a failure up to the step that failed.
//!
//! No step is skipped: what a step needs is installed first, or the run stops with the
//! command to run. Every cargo run is `--locked`, and `METACLAUDE_BLESS` is cleared for
//! each (a golden test here checks, never rewrites).

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

use crate::fuzz::{fuzz_all, fuzz_build, fuzz_targets, SMOKE_SECONDS};
use crate::static_build::build_static_executable;
use crate::steps::Steps;
use crate::tools::{
    ensure_componentize_js, ensure_statsd, ensure_test_py, nextest, wasm_tools, wit_bindgen,
};
use crate::wasm::per_world;
use crate::{build_plugins, cargo, cargo_program, ensure_prerequisites, run, step, PluginSet};

/// The cargo workspaces of the repository, each with its own lock file.
const WORKSPACES: &[&str] = &[
    "Cargo.toml",
    "plugins/Cargo.toml",
    "host/fuzz/Cargo.toml",
    "plugins/native/noop-sink/Cargo.toml",
    "examples/plugins/c-notifier/adapter/Cargo.toml",
    "xtask/wit-bindgen-c/Cargo.toml",
];

/// The workspaces besides the host's and the plugins', each with the target directory
/// its builds use (the fuzz crate's lint goes into the root's, whose dependencies the
/// host's lint checked already).
const SMALL_WORKSPACES: &[(&str, &str)] = &[
    ("host/fuzz/Cargo.toml", "target"),
    (
        "plugins/native/noop-sink/Cargo.toml",
        "plugins/target/native",
    ),
    (
        "examples/plugins/c-notifier/adapter/Cargo.toml",
        "examples/plugins/c-notifier/build/adapter",
    ),
    (
        "xtask/wit-bindgen-c/Cargo.toml",
        "target/tools/wit-bindgen-c",
    ),
];

/// The end-to-end tests run again against the static executable: all but those of the
/// scaffolds (they build plugins, the executable only checks them), of the dashboards in
/// Chromium and tmux (one asks the debug build for a panic on purpose) and of the example
/// notifiers and remote write (slow, and nothing in them depends on how the executable was
/// linked that the rest do not cover): 152 of 180, a minute here.
const STATIC_EXCLUDED: &str = "not (test(/^scaffold::/) | test(/^dashboard::/) | test(/^dashboard_terminal::/) | test(/^custom_notifiers::/) | test(/^remote_write::/))";

pub fn test(root: &Path) -> Result<()> {
    let mut steps = Steps::new();
    let result = every_step(root, &mut steps);
    eprintln!("\n{}", steps.table());
    result?;
    step("all checks passed");
    Ok(())
}

fn every_step(root: &Path, steps: &mut Steps) -> Result<()> {
    steps.run("fmt --check, every workspace", || {
        for manifest in WORKSPACES {
            run(Command::new(cargo_program()).args([
                "fmt",
                "--all",
                "--manifest-path",
                manifest,
                "--",
                "--check",
            ]))
            .with_context(|| {
                format!("formatting differs; run: cargo fmt --all --manifest-path {manifest}")
            })?;
        }
        Ok(())
    })?;
    steps.run("lock files current, every workspace", || {
        // Cheap, and before any build: a lock file out of date fails here naming it,
        // rather than twenty minutes in.
        for manifest in WORKSPACES {
            run(Command::new(cargo_program()).args([
                "metadata",
                "--locked",
                "--format-version",
                "1",
                "--manifest-path",
                manifest,
            ]).stdout(std::process::Stdio::null()))
            .with_context(|| {
                format!("{manifest}'s lock file is out of date; run: cargo update --workspace --manifest-path {manifest}, and commit the lock file")
            })?;
        }
        Ok(())
    })?;
    steps.run(
        "prerequisites: Debian packages, PyPI tools, npm packages",
        || {
            ensure_prerequisites(true)?;
            ensure_test_py(root)?;
            wasm_tools(root)?;
            ensure_statsd(root)?;
            ensure_componentize_js(root)?;
            nextest(root)?;
            Ok(())
        },
    )?;
    steps.run(
        "wit-bindgen c: the C generator alone (xtask/wit-bindgen-c)",
        || wit_bindgen(root).map(drop),
    )?;
    steps.run(
        "build-plugins --all: plugins, fixtures, examples in C, JavaScript and Python",
        || build_plugins(root, PluginSet::All),
    )?;
    steps.run(
        "clippy -D warnings: plugins workspace and fixtures (a run per world)",
        || per_world(root, "clippy", &["--all-targets", "--", "-D", "warnings"]),
    )?;
    steps.run(
        "test: plugins workspace (a run per world; notifiers against Alertmanager)",
        || per_world(root, "test", &[]),
    )?;
    steps.run("test: the C generator (xtask/wit-bindgen-c)", || {
        run(cargo("test")
            .arg("--manifest-path")
            .arg(root.join("xtask/wit-bindgen-c/Cargo.toml"))
            .arg("--target-dir")
            .arg(root.join("target/tools/wit-bindgen-c")))
    })?;
    steps.run("clippy -D warnings: host workspace", || {
        run(cargo("clippy").args(["--workspace", "--all-targets", "--", "-D", "warnings"]))
    })?;
    steps.run(
        "clippy -D warnings: the host library without `runtime`, as fuzzed",
        || {
            run(cargo("clippy").args([
                "-p",
                "metaclaude-host",
                "--lib",
                "--no-default-features",
                "--",
                "-D",
                "warnings",
            ]))
        },
    )?;
    steps.run(
        "clippy -D warnings: fuzz targets, native example plugin, C adapter, C generator",
        || {
            for (manifest, target_dir) in SMALL_WORKSPACES {
                run(cargo("clippy")
                    .arg("--manifest-path")
                    .arg(root.join(manifest))
                    .arg("--target-dir")
                    .arg(root.join(target_dir))
                    .args(["--all-targets", "--", "-D", "warnings"]))?;
            }
            Ok(())
        },
    )?;
    steps.run(
        "test: host workspace, unit, integration and end-to-end (cargo nextest)",
        || {
            // Test groups and the tests that need the machine to themselves are in
            // .config/nextest.toml.
            run(nextest(root)?
                .args(["run", "--locked", "--workspace", "--no-fail-fast"])
                .env_remove("METACLAUDE_BLESS"))
        },
    )?;
    steps.run(
        "build-static: the static executable, and the end-to-end tests against it",
        || {
            let exe = build_static_executable(root)?;
            run(nextest(root)?
                .args([
                    "run",
                    "--locked",
                    "-p",
                    "metaclaude-host",
                    "--test",
                    "cli",
                    "--no-fail-fast",
                    "-E",
                    STATIC_EXCLUDED,
                ])
                .env("METACLAUDE_TEST_EXE", exe)
                .env_remove("METACLAUDE_BLESS"))
        },
    )?;
    steps.run("test: doc examples (nextest runs none)", || {
        run(cargo("test").args(["--workspace", "--doc"]))
    })?;
    steps.run(
        "doc: the host library's documentation, links checked",
        || {
            run(cargo("doc")
                .args(["-p", "metaclaude-host", "--no-deps", "--lib"])
                .env("RUSTDOCFLAGS", "-D warnings"))
        },
    )?;
    steps.run("fuzz: build the targets (instrumented)", || {
        fuzz_build(root)
    })?;
    let targets = fuzz_targets(root)?;
    steps.run(
        &format!(
            "fuzz: {} targets, {SMOKE_SECONDS} s each (cargo xtask fuzz runs longer)",
            targets.len()
        ),
        || fuzz_all(root, &targets, SMOKE_SECONDS, false),
    )?;
    Ok(())
}
