//! `cargo xtask demo | test | bench | bench-dashboard | build-plugins | build-static | bless |
//! fuzz | soak`:
//! the README's commands.
//!
//! Each command first makes sure what it needs is installed: it installs it when it can
//! (rustup targets; Debian packages when running as root; pinned tools from PyPI, npm and
//! crates.io into `target/tools/`) and otherwise stops with the exact command to run. It
//! never skips a step silently. Every cargo run is `--locked`: no command rewrites a lock
//! file (a stale one is an error naming the workspace).
//!
//! Modules: `tools` (what is installed and where), `wasm` (the plugins and test fixtures:
//! one cargo run per SDK world), `examples` (the plugins in C, JavaScript and Python),
//! `test` (`cargo xtask test` and its steps), `steps` (the wall-time table), `fuzz`,
//! `bench`, `dashboard` (`bench-dashboard`), `soak`, `static_build` (`build-static`).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

mod bench;
mod dashboard;
mod examples;
mod fuzz;
#[cfg(test)]
mod imports;
mod soak;
mod static_build;
mod steps;
mod test;
mod tools;
mod wasm;

pub use tools::{ensure_debian, ensure_prerequisites};
pub use wasm::{build_plugins, PluginSet};

const USAGE: &str = "usage: cargo xtask <command>

commands:
  demo             build the host and the default plugin set, and run the tour of the example registry
  test             every check: fmt, clippy -D warnings, unit, integration and end-to-end tests, a short fuzz run
                   (also builds the example plugins in C, JavaScript and Python, and the test fixtures)
  bench [NAME...]  the benchmarks (ratios against baselines measured in the same run); the figures go to
                   target/bench/summary.md with the date, the machine and the commit
  bench-dashboard  the terminal dashboard's CPU at 1000 executions/s and its memory over an hour of them
                   (--rate N --seconds N --hour-events N --hour-rate N --debug)
  build-plugins    build the default plugin set (Rust, wasm32-wasip2) and install it beside the host;
                   --all: also the opt-in plugins, the test fixtures, the native example and the
                   example plugins in C, JavaScript and Python
  build-static     the static executable (x86_64-unknown-linux-musl, release) with the default plugin set
                   beside it: starts sooner, cannot load native plugins
  bless            rewrite the golden files (tests/cli/bad_*, good_*) from what the code gives now
  fuzz             fuzz every parser, or one: fuzz [TARGET] [--minutes N (default 10) | --seconds N]
  soak             one long-running server under a mixed workload; RSS, fds, threads, children, cgroups
                   every minute, judged on their slope (--minutes N --rate R)";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root();
    std::env::set_current_dir(&root)?;
    match args.first().map(String::as_str) {
        Some("demo") => demo(&root),
        Some("test") => test::test(&root),
        Some("bench") => bench::bench(&root, &args[1..]),
        Some("bench-dashboard") => dashboard::bench_dashboard(&root, &args[1..]),
        Some("build-plugins") => match args.get(1).map(String::as_str) {
            None => build_plugins(&root, PluginSet::Default),
            Some("--all") => build_plugins(&root, PluginSet::All),
            Some(other) => bail!("build-plugins takes --all or nothing, not {other:?}"),
        },
        Some("build-static") => static_build::build_static(&root).map(drop),
        Some("bless") => bless(&root),
        Some("fuzz") => fuzz::fuzz(&root, &args[1..]),
        Some("soak") => soak::soak(&root, &args[1..]),
        _ => {
            eprintln!("{USAGE}");
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

/// The cargo that runs this xtask.
fn cargo_program() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// `cargo SUBCOMMAND --locked`: no run rewrites a lock file (one that is out of date is an
/// error naming it). `METACLAUDE_BLESS` is cleared, so that a golden test run by any step
/// checks rather than rewrites (only `cargo xtask bless` sets it, on its own command).
fn cargo(subcommand: &str) -> Command {
    let mut cmd = Command::new(cargo_program());
    cmd.args([subcommand, "--locked"])
        .env_remove("METACLAUDE_BLESS");
    cmd
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The debug build of the host, with the default plugin set installed beside it.
fn build_host(root: &Path) -> Result<PathBuf> {
    step("building metaclaude (cargo build -p metaclaude-host)");
    run(cargo("build").args(["--quiet", "-p", "metaclaude-host", "--bin", "metaclaude"]))?;
    Ok(root.join("target/debug/metaclaude"))
}

fn demo(root: &Path) -> Result<()> {
    let mut steps = steps::Steps::new();
    let result = tour(root, &mut steps);
    eprintln!("\n{}", steps.table());
    result?;
    eprintln!(
        "The web dashboard on the same registry (the executions above are in its log):\n\n    \
         target/debug/metaclaude dashboard --registry examples/registry/registry.json\n\n\
         then open the address it prints. The rest of the CLI is in README.md.\n\
         The demo built the host and the default plugin set only. The example plugins in C,\n\
         JavaScript and Python and the test fixtures are built by `cargo xtask test` and by\n\
         `cargo xtask build-plugins --all`."
    );
    Ok(())
}

fn tour(root: &Path, steps: &mut steps::Steps) -> Result<()> {
    steps.run("prerequisites", || ensure_prerequisites(false))?;
    steps.run("build: the default plugin set (wasm32-wasip2)", || {
        build_plugins(root, PluginSet::Default)
    })?;
    let bin = steps.run("build: the host (debug)", || build_host(root))?;
    steps.run("the tour of the example registry", || run_tour(root, &bin))
}

fn run_tour(root: &Path, bin: &Path) -> Result<()> {
    let registry = root.join("examples/registry/registry.json");
    step("checking the example registry");
    run(Command::new(bin).args(["registry", "check"]).arg(&registry))?;
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
        let status = Command::new(bin)
            .args(["run", id, "--registry"])
            .arg(&registry)
            .args(*extra)
            .status()?;
        eprintln!("(exit status {})", status.code().unwrap_or(-1));
    }
    step("metaclaude plugins list   (the default plugin set, installed beside the executable)");
    run(Command::new(bin).args(["plugins", "list"]))?;
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
    Ok(())
}

/// Rewrites every golden file from what the code gives now, for a message or a default
/// changed on purpose: review `git diff tests/cli` before committing.
fn bless(root: &Path) -> Result<()> {
    build_plugins(root, PluginSet::All)?;
    step("rewriting golden files (METACLAUDE_BLESS=1 cargo test --test cli golden)");
    run(cargo("test")
        .args(["-p", "metaclaude-host", "--test", "cli", "golden"])
        .env("METACLAUDE_BLESS", "1"))?;
    // The terminal dashboard's screen snapshots (host/src/tui/snapshots/).
    run(cargo("test")
        .args([
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
