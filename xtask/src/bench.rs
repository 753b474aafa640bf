//! `cargo xtask bench [NAME...]`: the benchmarks of `host/benches/` (all, or those named),
//! each run with `cargo bench` and its report (what it prints on standard output) written
//! to `target/bench/summary.md`, one section per benchmark, headed by when it ran, the
//! commit, the machine and its load: what the README's benchmark section quotes.
//! A run replaces the sections of the benchmarks it ran and keeps the others.
//!
//! `cargo xtask bench --readme` copies the summary's sections into the README, between
//! each benchmark's `<!-- bench:NAME -->` and `<!-- /bench:NAME -->` lines, as they are.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::{build_plugins, cargo, ensure_prerequisites, step, PluginSet};

/// The benchmarks, in the order `cargo xtask bench` runs them (the `[[bench]]`s of
/// host/Cargo.toml; one missing here is an error, not a benchmark skipped).
const BENCHES: &[&str] = &[
    "spawn_overhead",
    "plugin_delivery",
    "default_set",
    "push_exporters",
    "prometheus_render",
    "serve",
    "logs_query",
    "dashboard",
];

const SUMMARY: &str = "target/bench/summary.md";
const TITLE: &str = "# Benchmark summary (cargo xtask bench)";

pub fn bench(root: &Path, args: &[String]) -> Result<()> {
    check_bench_list(root)?;
    if args.iter().any(|a| a == "--readme") {
        return quote_in_readme(root);
    }
    for a in args {
        if !BENCHES.contains(&a.as_str()) {
            bail!(
                "no benchmark {a:?}; the benchmarks are: {} (or --readme)",
                BENCHES.join(", ")
            );
        }
    }
    let chosen: Vec<&str> = if args.is_empty() {
        BENCHES.to_vec()
    } else {
        BENCHES
            .iter()
            .copied()
            .filter(|b| args.iter().any(|a| a == b))
            .collect()
    };
    ensure_prerequisites(true)?;
    // plugin_delivery and default_set load the built components and the native sink.
    build_plugins(root, PluginSet::All)?;
    // default_set measures the static executable's one-shot runs too.
    let static_exe = if chosen.contains(&"default_set") {
        Some(crate::static_build::build_static_executable(root)?)
    } else {
        None
    };
    let path = root.join(SUMMARY);
    let mut sections = read_sections(&std::fs::read_to_string(&path).unwrap_or_default());
    for name in chosen {
        step(&format!(
            "cargo bench -p metaclaude-host --bench {name} (its report goes to {SUMMARY})"
        ));
        let header = header(root);
        let mut bench = cargo("bench");
        bench.args(["-p", "metaclaude-host", "--bench", name]);
        if let Some(exe) = &static_exe {
            bench.env("METACLAUDE_BENCH_STATIC_EXE", exe);
        }
        let report =
            run_capturing(&mut bench).with_context(|| format!("the {name} benchmark failed"))?;
        sections.insert(
            name.to_string(),
            format!("{header}\n\n```text\n{}\n```\n", report.trim_end()),
        );
        // Written after each one, so a long run that stops keeps what it measured.
        std::fs::create_dir_all(path.parent().unwrap())?;
        std::fs::write(&path, render(&sections))?;
    }
    step(&format!(
        "figures in {SUMMARY}; `cargo xtask bench --readme` quotes them in README.md"
    ));
    Ok(())
}

/// Every `[[bench]]` of host/Cargo.toml is in `BENCHES`, and every name there is one.
fn check_bench_list(root: &Path) -> Result<()> {
    let manifest = std::fs::read_to_string(root.join("host/Cargo.toml"))?;
    let mut declared = Vec::new();
    let mut in_bench = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_bench = line == "[[bench]]";
        } else if let Some(name) = line.strip_prefix("name = ").filter(|_| in_bench) {
            declared.push(name.trim_matches('"').to_string());
        }
    }
    for d in &declared {
        if !BENCHES.contains(&d.as_str()) {
            bail!("host/Cargo.toml declares the benchmark {d} that xtask/src/bench.rs does not list in BENCHES: add it there");
        }
    }
    for b in BENCHES {
        if !declared.iter().any(|d| d == b) {
            bail!("xtask/src/bench.rs lists {b}, which host/Cargo.toml does not declare");
        }
    }
    Ok(())
}

/// Runs `cmd`, showing its standard output as it comes and returning it.
fn run_capturing(cmd: &mut Command) -> Result<String> {
    let line = format!("{cmd:?}");
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {line}"))?;
    let mut captured = String::new();
    let stdout = std::io::stdout();
    for text in BufReader::new(child.stdout.take().unwrap()).lines() {
        let text = text?;
        let mut out = stdout.lock();
        writeln!(out, "{text}")?;
        out.flush()?;
        captured.push_str(&text);
        captured.push('\n');
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("{line} failed ({status})");
    }
    Ok(captured)
}

/// One line: when, which commit, which machine, how loaded it was as the benchmark began.
fn header(root: &Path) -> String {
    let output = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .current_dir(root)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let date = output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
    let commit = output("git", &["rev-parse", "--short=10", "HEAD"]);
    let dirty = if output("git", &["status", "--porcelain", "--untracked-files=no"]).is_empty() {
        ""
    } else {
        " with uncommitted changes"
    };
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory_gib = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    let load = std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    let kernel = output("uname", &["-r"]);
    let rustc = output("rustc", &["--version"]);
    format!(
        "{date}, commit {commit}{dirty}; {cpu}, {cores} cores, {memory_gib:.0} GiB, Linux {kernel}; {rustc}; load average {load} at the start"
    )
}

/// The summary's sections by benchmark name (`## NAME` to the next).
fn read_sections(text: &str) -> BTreeMap<String, String> {
    let mut sections = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    let mut fenced = false;
    for line in text.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
        }
        if let Some(name) = line.strip_prefix("## ").filter(|_| !fenced) {
            if let Some((n, body)) = current.take() {
                sections.insert(n, body.trim().to_string() + "\n");
            }
            current = Some((name.trim().to_string(), String::new()));
        } else if let Some((_, body)) = current.as_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    if let Some((n, body)) = current {
        sections.insert(n, body.trim().to_string() + "\n");
    }
    sections
}

fn render(sections: &BTreeMap<String, String>) -> String {
    let mut out = format!(
        "{TITLE}\n\nEach section is what one benchmark printed, headed by when and where it ran.\n"
    );
    for name in BENCHES {
        if let Some(body) = sections.get(*name) {
            out += &format!("\n## {name}\n\n{body}");
        }
    }
    out
}

/// Replaces each `<!-- bench:NAME -->` ... `<!-- /bench:NAME -->` block of README.md with
/// that benchmark's section of the summary.
fn quote_in_readme(root: &Path) -> Result<()> {
    let summary = std::fs::read_to_string(root.join(SUMMARY)).with_context(|| {
        format!("{SUMMARY} is missing: run `cargo xtask bench [NAME...]` first")
    })?;
    let sections = read_sections(&summary);
    let readme_path = root.join("README.md");
    let readme = std::fs::read_to_string(&readme_path)?;
    let (text, quoted, kept) = splice(&readme, &sections)?;
    if quoted.is_empty() {
        bail!(
            "{SUMMARY} has none of the benchmarks README.md quotes ({}): run `cargo xtask bench NAME` first",
            kept.join(", ")
        );
    }
    std::fs::write(&readme_path, text)?;
    step(&format!(
        "README.md quotes {} from {SUMMARY}: {}",
        quoted.len(),
        quoted.join(", ")
    ));
    if !kept.is_empty() {
        step(&format!(
            "left as they were, not in {SUMMARY}: {} (`cargo xtask bench {}` measures them)",
            kept.join(", "),
            kept.join(" ")
        ));
    }
    Ok(())
}

/// The README with each marked block holding its benchmark's section, and the names
/// quoted; a block whose benchmark `sections` lacks keeps its text (its own date says
/// when it was measured), and its name is returned in the last list.
fn splice(
    readme: &str,
    sections: &BTreeMap<String, String>,
) -> Result<(String, Vec<String>, Vec<String>)> {
    let mut out = String::new();
    let mut quoted = Vec::new();
    let mut kept = Vec::new();
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        out.push_str(line);
        out.push('\n');
        let Some(name) = line
            .strip_prefix("<!-- bench:")
            .and_then(|l| l.strip_suffix(" -->"))
        else {
            continue;
        };
        let end = format!("<!-- /bench:{name} -->");
        let mut closed = false;
        let mut old = String::new();
        for inner in lines.by_ref() {
            if inner == end {
                closed = true;
                break;
            }
            old.push_str(inner);
            old.push('\n');
        }
        if !closed {
            bail!("README.md: `<!-- bench:{name} -->` has no `{end}` line after it");
        }
        match sections.get(name) {
            Some(body) => {
                out.push_str(&format!("From `{SUMMARY}`: {body}"));
                quoted.push(name.to_string());
            }
            None if BENCHES.contains(&name) => {
                out.push_str(&old);
                kept.push(name.to_string());
            }
            None => bail!(
                "README.md quotes the benchmark {name}, which is not one of {}: fix the `<!-- bench:{name} -->` block",
                BENCHES.join(", ")
            ),
        }
        out.push_str(&end);
        out.push('\n');
    }
    Ok((out, quoted, kept))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_read_back_as_written_and_splice_into_marked_blocks() {
        let mut sections = BTreeMap::new();
        sections.insert(
            "serve".to_string(),
            "2026-01-01, commit abc\n\n```text\n1 2 3\n```\n".to_string(),
        );
        sections.insert(
            "spawn_overhead".to_string(),
            "header\n\n```text\nratio 1.03\n```\n".to_string(),
        );
        let text = render(&sections);
        assert!(text.starts_with(TITLE));
        // Rendered in the benchmarks' order.
        assert!(text.find("## spawn_overhead").unwrap() < text.find("## serve").unwrap());
        assert_eq!(read_sections(&text), sections);

        let readme = "intro\n<!-- bench:serve -->\nold figures\n<!-- /bench:serve -->\nafter\n";
        let (spliced, quoted, kept) = splice(readme, &sections).unwrap();
        assert_eq!(quoted, ["serve"]);
        assert!(kept.is_empty());
        assert_eq!(
            spliced,
            format!(
                "intro\n<!-- bench:serve -->\nFrom `{SUMMARY}`: 2026-01-01, commit abc\n\n```text\n1 2 3\n```\n<!-- /bench:serve -->\nafter\n"
            )
        );
        // Splicing again gives the same text.
        assert_eq!(splice(&spliced, &sections).unwrap().0, spliced);

        let unclosed = splice("<!-- bench:serve -->\nx\n", &sections).unwrap_err();
        assert!(unclosed.to_string().contains("no `<!-- /bench:serve -->`"));
        // A benchmark the summary lacks keeps its block as it was, byte for byte.
        let not_run = format!(
            "{readme}<!-- bench:dashboard -->\nFrom an older run\n\n```text\nold\n```\n<!-- /bench:dashboard -->\n"
        );
        let (spliced, quoted, kept) = splice(&not_run, &sections).unwrap();
        assert_eq!(
            (quoted, kept),
            (vec!["serve".to_string()], vec!["dashboard".to_string()])
        );
        assert!(
            spliced.ends_with("<!-- bench:dashboard -->\nFrom an older run\n\n```text\nold\n```\n<!-- /bench:dashboard -->\n"),
            "{spliced}"
        );
        // A block naming no benchmark at all is a mistake in the README.
        let unknown =
            splice("<!-- bench:nosuch -->\n<!-- /bench:nosuch -->\n", &sections).unwrap_err();
        assert!(unknown.to_string().contains("not one of"), "{unknown}");
    }
}
