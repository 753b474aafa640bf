//! Fuzzing: the cargo-fuzz (libFuzzer) targets of `host/fuzz/`, a workspace of its own
//! that builds the host library without its `runtime` feature (no wasmtime, no
//! cranelift): `cargo xtask fuzz` (long runs) and the short run of `cargo xtask test`.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::{run, step};

/// How long `cargo xtask test` fuzzes each target.
pub const SMOKE_SECONDS: u64 = 20;
/// libFuzzer's limits for every run: inputs up to 64 KiB; an input that takes more than
/// 10 s is a hang, a process past 2 GiB (or one allocation past 512 MiB) an unbounded
/// allocation. Both are reported as crashes.
const LIBFUZZER_LIMITS: [&str; 4] = [
    "-max_len=65536",
    "-timeout=10",
    "-rss_limit_mb=2048",
    "-malloc_limit_mb=512",
];

/// `cargo fuzz` (the prebuilt cargo-fuzz from PyPI, `target/tools/bin/cargo-fuzz`) with
/// what it needs on this stable toolchain: its instrumentation flags are nightly-only, and
/// `RUSTC_BOOTSTRAP=1` lets the stable compiler accept them.
///
/// Without the variables `cargo run` gave this xtask about itself (`CARGO_PKG_NAME=xtask`
/// ...): build scripts such as ring's rerun when they change, so the targets would be
/// rebuilt each time one switches between `cargo xtask fuzz` and a `cargo fuzz` replay.
fn cargo_fuzz(root: &Path) -> Result<Command> {
    let mut cmd = Command::new(crate::tools::cargo_fuzz(root)?);
    cmd.arg("fuzz")
        .env("CARGO", crate::cargo_program())
        .env_remove("METACLAUDE_BLESS")
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
    Ok(cmd)
}

/// The fuzz targets (`cargo fuzz list`: the `[[bin]]`s of host/fuzz/Cargo.toml). A file
/// in host/fuzz/fuzz_targets/ without its entry there is an error, not a target skipped.
pub fn fuzz_targets(root: &Path) -> Result<Vec<String>> {
    let out = cargo_fuzz(root)?.arg("list").output()?;
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
///
/// cargo-fuzz has no `--locked`: the fuzz workspace's lock file is checked first, so the
/// build cannot rewrite it.
pub fn fuzz_build(root: &Path) -> Result<()> {
    step("building the fuzz targets (host/fuzz)");
    let manifest = root.join("host/fuzz/Cargo.toml");
    let locked = Command::new(crate::cargo_program())
        .args([
            "metadata",
            "--locked",
            "--format-version",
            "1",
            "--manifest-path",
        ])
        .arg(&manifest)
        .output()?;
    if !locked.status.success() {
        bail!(
            "host/fuzz/Cargo.lock is not up to date with the host's dependencies: run `cargo metadata --manifest-path host/fuzz/Cargo.toml > /dev/null` and commit host/fuzz/Cargo.lock\n{}",
            String::from_utf8_lossy(&locked.stderr)
        );
    }
    run(cargo_fuzz(root)?.args(["build", "--debug-assertions"]))
}

/// Fuzzes each target for `seconds`, as many at once as the machine has cores (each
/// target one libFuzzer process), from its committed seeds in host/fuzz/corpus/<target>/.
/// Each run's output goes to host/fuzz/target/logs/<target>.log, shown when it fails.
/// What the fuzzer finds goes to a folder under host/fuzz/target/ (ignored by git), so
/// the committed corpus stays small: with `keep`, host/fuzz/target/corpus/<target>/,
/// which a later long run goes on from; otherwise (the short run of `cargo xtask test`) a
/// folder emptied first, so the run takes the same time however many runs came before.
/// Fails on a crash, hang or out-of-memory, naming its input and how to replay it.
pub fn fuzz_all(root: &Path, targets: &[String], seconds: u64, keep: bool) -> Result<()> {
    let jobs = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(targets.len().max(1));
    step(&format!(
        "fuzzing {} targets for {seconds}s each, {jobs} at a time",
        targets.len()
    ));
    let queue = std::sync::Mutex::new(targets.iter());
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                let Some(target) = queue.lock().unwrap().next() else {
                    return;
                };
                if let Err(e) = fuzz_one(root, target, seconds, keep) {
                    eprintln!("`{target}`: FAILED");
                    failures.lock().unwrap().push(e);
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    match failures.len() {
        0 => Ok(()),
        n => {
            for e in &failures {
                eprintln!("{e:#}");
            }
            bail!("{n} fuzz target(s) failed (above)")
        }
    }
}

fn fuzz_one(root: &Path, target: &str, seconds: u64, keep: bool) -> Result<()> {
    let fuzz = root.join("host/fuzz");
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
    let logs = fuzz.join("target/logs");
    std::fs::create_dir_all(&logs)?;
    let log_path = logs.join(format!("{target}.log"));
    let log = std::fs::File::create(&log_path)?;
    let seeds = fuzz.join("corpus").join(target);
    let started = std::time::Instant::now();
    let mut cmd = cargo_fuzz(root)?;
    cmd.args(["run", "--debug-assertions", target])
        .arg(&scratch);
    if seeds.is_dir() {
        cmd.arg(&seeds);
    }
    cmd.arg("--")
        .args(LIBFUZZER_LIMITS)
        // One process per target (libFuzzer's default): the targets run side by side.
        .arg(format!("-max_total_time={seconds}"))
        // The log reader reports every damaged line on stderr, as it should; that
        // would flood the log. libFuzzer's own report still shows.
        .arg(if target == "logs" {
            "-close_fd_mask=2"
        } else {
            "-close_fd_mask=0"
        })
        .stdout(log.try_clone()?)
        .stderr(log);
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    if !status.success() {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(60).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!(
            "fuzz target `{target}` failed ({status}); the end of {}:\n{}\n\
             The input is in host/fuzz/artifacts/{target}/ (replay it with: cd host && RUSTC_BOOTSTRAP=1 ../target/tools/bin/cargo-fuzz fuzz run --debug-assertions {target} fuzz/artifacts/{target}/<file>); \
             fix the parser and add the input as a regression test (README, Fuzzing)",
            log_path.display(),
            tail.join("\n")
        );
    }
    let runs = std::fs::read_to_string(&log_path)
        .unwrap_or_default()
        .lines()
        .rev()
        .find(|l| l.starts_with("Done ") && l.contains(" runs in "))
        .map(|l| format!(" ({})", l.trim()))
        .unwrap_or_default();
    eprintln!("`{target}`: no crash in {:.0?}{runs}", started.elapsed());
    Ok(())
}

/// `cargo xtask fuzz [TARGET] [--minutes N | --seconds N]`: the longer run, every target
/// (or one) for N minutes each (default 10), going on from the corpus earlier runs grew.
pub fn fuzz(root: &Path, args: &[String]) -> Result<()> {
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
    fuzz_build(root)?;
    fuzz_all(root, &targets, seconds, true)?;
    step("no crash, hang or out-of-memory found");
    Ok(())
}
