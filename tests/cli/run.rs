//! `metaclaude run`: results, categories, limits, retries and lifecycle events, each
//! reproduced by a real script from `examples/registry`.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{
    assert_measured_with_cgroups, bin, category, cgroups_expected, example_registry,
    processes_of_execution, run_json,
};

#[test]
fn success_carries_every_documented_field() {
    let (out, r) = run_json(
        "hello",
        &[
            "--input",
            "name=Ada",
            "--input",
            "times=2",
            "--session-id",
            "session-123",
            "--correlation-id",
            "request-456",
            "--user",
            "ops",
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(r["success"], true);
    assert_eq!(r["exit_code"], 0);
    assert_eq!(r["signal"], Value::Null);
    assert_eq!(r["stdout"], "Hello, Ada!\nHello, Ada!\n");
    assert_eq!(r["stdout_truncated"], false);
    assert_eq!(r["script_id"], "hello");
    assert_eq!(r["specialist"], "examples");
    assert_eq!(r["session_id"], "session-123");
    assert_eq!(r["correlation_id"], "request-456");
    assert_eq!(r["user"], "ops");
    assert_eq!(r["retries"], 0);
    assert_eq!(r["error_details"], Value::Null);
    // Inputs come back typed, defaults filled in.
    assert_eq!(r["inputs"]["times"], 2);
    assert_eq!(r["inputs"]["shout"], false);
    let id = r["execution_id"].as_str().unwrap();
    assert_eq!(id.len(), 26, "ULID: {id}");
    // UTC with microseconds.
    let started = r["started_at"].as_str().unwrap();
    assert!(started.ends_with('Z') && started.len() == 27, "{started}");
    let attempts = r["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0]["attempt"], 1);
    assert_eq!(attempts[0]["success"], true);
    let u = &r["resource_usage"];
    for field in [
        "memory_start_mb",
        "memory_end_mb",
        "peak_memory_mb",
        "peak_memory_largest_process_mb",
        "cpu_time_seconds",
        "cpu_user_seconds",
        "cpu_system_seconds",
        "wall_time_seconds",
    ] {
        assert!(u[field].as_f64().is_some_and(|v| v >= 0.0), "{field}: {u}");
    }
    assert!(u["peak_memory_mb"].as_f64().unwrap() > 0.0, "{u}");
    assert_ne!(u["peak_memory_source"], "none", "{u}");
    assert!(u["wall_time_seconds"].as_f64().unwrap() > 0.0);
    for field in [
        "memory_start_source",
        "peak_memory_source",
        "cpu_time_source",
    ] {
        assert!(u[field].is_string(), "{field}: {u}");
    }
}

#[test]
fn human_summary_names_status_and_resources() {
    let out = bin()
        .args(["run", "slow", "--registry"])
        .arg(example_registry())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("slow: FAILED [TIMEOUT] Script execution timed out after 500ms"),
        "{text}"
    );
    assert!(text.contains("suggestions:"), "{text}");
    assert!(
        text.contains("- Increase the timeout value in the script configuration"),
        "{text}"
    );
    assert!(text.contains("memory: start"), "{text}");
    assert!(text.contains("cpu: "), "{text}");
}

#[test]
fn timeout_is_reported_with_the_seed_message_and_suggestions() {
    let (out, r) = run_json("slow", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(category(&r), "TIMEOUT");
    let e = &r["error_details"];
    assert_eq!(e["message"], "Script execution timed out after 500ms");
    assert_eq!(
        e["suggestions"],
        serde_json::json!([
            "Increase the timeout value in the script configuration",
            "Optimize the script to run faster",
            "Check for infinite loops or blocking operations"
        ])
    );
    assert_eq!(e["context"]["script_id"], "slow");
    assert_eq!(e["context"]["script_path"], "scripts/slow.sh");
    assert_eq!(e["context"]["specialist"], "examples");
    assert_eq!(e["context"]["attempt"], 1);
    assert_eq!(r["signal"], "SIGTERM");
    assert_no_survivors(r["execution_id"].as_str().unwrap());
}

/// Runs a script that times out (after 300 or 400 ms); it must come back whatever its
/// children do. They sleep 60 s: a host that waited for them (for the end of its output,
/// or for the tree to exit on its own) would take that long, two orders of magnitude above
/// a run on a loaded machine, so this bound tells waiting from slowness.
fn run_timing_out(id: &str) -> (Value, String) {
    let start = Instant::now();
    let (_, r) = run_json(id, &[]);
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(50),
        "{id} took {took:?}: the host waited for the script's children (they sleep 60 s)"
    );
    assert_eq!(category(&r), "TIMEOUT");
    let execution_id = r["execution_id"].as_str().unwrap().to_string();
    (r, execution_id)
}

fn assert_no_survivors(execution_id: &str) {
    let survivors = processes_of_execution(execution_id);
    assert!(survivors.is_empty(), "survivors: {survivors:?}");
}

#[test]
fn timeout_ends_a_grandchild_that_holds_stdout_and_never_hangs() {
    let (_, id) = run_timing_out("orphan_holds_stdout");
    assert_no_survivors(&id);
}

#[test]
fn a_script_that_ignores_sigterm_gets_sigkill_after_the_grace() {
    let (r, id) = run_timing_out("ignores_sigterm");
    assert_eq!(r["signal"], "SIGKILL");
    let wall = r["resource_usage"]["wall_time_seconds"].as_f64().unwrap();
    // Not before its 300 ms timeout and the 2 s grace (less the timers' rounding); how
    // long after depends on the machine's load, and the SIGKILL above says it came.
    assert!(wall >= 2.2, "killed before the grace was over: wall {wall}");
    // Left alone, the script (TERM ignored, inherited by its sleeps) would end after 60 s.
    assert!(wall < 30.0, "no SIGKILL in time: wall {wall}");
    assert_no_survivors(&id);
}

#[test]
fn a_descendant_that_calls_setsid_is_ended_too() {
    let (r, id) = run_timing_out("setsid_escape");
    assert_measured_with_cgroups(&r, true, "setsid_escape");
    if cgroups_expected() {
        // The cgroup holds every descendant, whatever its session or process group.
        assert_no_survivors(&id);
    } else {
        // Documented: without cgroups a setsid escapee survives, but the host never waits
        // for it. Clean it up so it does not outlive the test.
        for pid in processes_of_execution(&id) {
            // SAFETY: kill(2) has no memory-safety preconditions.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

#[test]
fn validation_unknown_script_names_the_closest_ids_and_runs_nothing() {
    let (out, r) = run_json("helo", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(category(&r), "VALIDATION");
    assert_eq!(r["error_details"]["message"], "Unknown script `helo`");
    assert_eq!(
        r["error_details"]["suggestions"][0],
        "Did you mean `hello`?"
    );
    assert_eq!(r["attempts"], serde_json::json!([]));
}

#[test]
fn validation_of_inputs_runs_nothing() {
    for (args, expected) in [
        (
            vec!["--input", "times=many"],
            "input `times`: expected an integer value, found \"many\"",
        ),
        (
            vec!["--input", "nmae=x"],
            "unknown input `nmae`; did you mean `name`?",
        ),
    ] {
        let (out, r) = run_json("hello", &args);
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(category(&r), "VALIDATION");
        let msg = r["error_details"]["message"].as_str().unwrap();
        assert!(msg.contains(expected), "{msg}");
        assert_eq!(r["attempts"], serde_json::json!([]));
    }
    let (_, r) = run_json("validate_api_schema", &[]);
    assert_eq!(category(&r), "VALIDATION");
    assert!(r["error_details"]["message"]
        .as_str()
        .unwrap()
        .contains("missing required input `schema_file` (path)"));
    let (_, r) = run_json(
        "validate_api_schema",
        &["--input", "schema_file=data/nope.json"],
    );
    assert_eq!(category(&r), "VALIDATION");
    assert!(r["error_details"]["message"]
        .as_str()
        .unwrap()
        .contains("does not exist"));
}

#[test]
fn dependency_missing_python_module_names_it_and_how_to_install() {
    let (_, r) = run_json("missing_module", &[]);
    assert_eq!(category(&r), "DEPENDENCY");
    let e = &r["error_details"];
    assert_eq!(
        e["context"]["missing_module"],
        "metaclaude_example_missing_module"
    );
    assert_eq!(
        e["suggestions"][0],
        "Install it: python3 -m pip install metaclaude_example_missing_module"
    );
    assert!(e["stack_trace"]
        .as_str()
        .unwrap()
        .starts_with("Traceback (most recent call last):"));
    assert_eq!(r["retries"], 0, "DEPENDENCY is never retried");
}

#[test]
fn dependency_import_error() {
    let (_, r) = run_json("import_error", &[]);
    assert_eq!(category(&r), "DEPENDENCY");
    let msg = r["error_details"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("Import failed: ImportError: cannot import name 'load_everything_fast'"),
        "{msg}"
    );
}

#[test]
fn dependency_missing_requirement_runs_nothing() {
    let (_, r) = run_json("missing_tool", &[]);
    assert_eq!(category(&r), "DEPENDENCY");
    assert_eq!(
        r["error_details"]["context"]["missing_command"],
        "metaclaude-example-missing-tool"
    );
    assert_eq!(r["attempts"], serde_json::json!([]));
}

#[test]
fn dependency_command_not_found_exit_127() {
    let (_, r) = run_json("command_not_found", &[]);
    assert_eq!(category(&r), "DEPENDENCY");
    assert_eq!(r["exit_code"], 127);
    assert_eq!(
        r["error_details"]["context"]["missing_command"],
        "metaclaude-example-missing-command"
    );
    assert_eq!(r["error_details"]["context"]["exit_code"], 127);
}

#[test]
fn dependency_missing_interpreter_and_script_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("x.sh"),
        "#!/nonexistent/interpreter\necho hi\n",
    )
    .unwrap();
    set_executable(&dir.path().join("x.sh"));
    std::fs::write(
        dir.path().join("registry.json"),
        r#"{"scripts": [
            {"id": "bad_shebang", "path": "x.sh"},
            {"id": "bad_interpreter", "path": "x.sh", "interpreter": "no-such-python"},
            {"id": "gone", "path": "gone.sh"}
        ]}"#,
    )
    .unwrap();
    let reg = dir.path().join("registry.json");
    for (id, needle) in [
        (
            "bad_shebang",
            "interpreter `/nonexistent/interpreter` (from its #! line) was not found",
        ),
        (
            "bad_interpreter",
            "Interpreter `no-such-python` was not found on PATH",
        ),
        ("gone", "does not exist"),
    ] {
        let out = bin()
            .args(["run", id, "--json", "--registry"])
            .arg(&reg)
            .output()
            .unwrap();
        let r: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(category(&r), "DEPENDENCY", "{id}: {r}");
        let msg = r["error_details"]["message"].as_str().unwrap();
        assert!(msg.contains(needle), "{id}: {msg}");
    }
}

#[test]
fn permission_not_executable() {
    let (_, r) = run_json("not_executable", &[]);
    assert_eq!(category(&r), "PERMISSION");
    assert!(r["error_details"]["suggestions"][0]
        .as_str()
        .unwrap()
        .starts_with("Make the script executable: chmod +x"));
}

#[test]
fn permission_python_permission_error() {
    let (_, r) = run_json("permission_denied", &[]);
    assert_eq!(category(&r), "PERMISSION");
    assert_eq!(
        r["error_details"]["message"],
        "Permission denied: /etc/shadow"
    );
    assert_eq!(r["retries"], 0, "PERMISSION is never retried");
}

#[test]
fn permission_exit_126() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("inner.sh"), "echo never\n").unwrap();
    std::fs::write(dir.path().join("outer.sh"), "#!/bin/sh\n./inner.sh\n").unwrap();
    set_executable(&dir.path().join("outer.sh"));
    std::fs::write(
        dir.path().join("registry.json"),
        r#"{"scripts": [{"id": "outer", "path": "outer.sh"}]}"#,
    )
    .unwrap();
    let out = bin()
        .args(["run", "outer", "--json", "--registry"])
        .arg(dir.path().join("registry.json"))
        .output()
        .unwrap();
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["exit_code"], 126);
    assert_eq!(category(&r), "PERMISSION");
}

#[test]
fn resource_memory_limit_is_enforced_with_and_without_cgroups() {
    // With a memory cgroup the kernel OOM-kills the tree; without, RLIMIT_AS makes the
    // allocation fail (Python's MemoryError). Both are RESOURCE.
    for extra in [&[][..], &["--no-cgroups"][..]] {
        let (_, r) = run_json("memory_hog", extra);
        assert_measured_with_cgroups(&r, extra.is_empty(), &format!("memory_hog {extra:?}"));
        assert_eq!(category(&r), "RESOURCE", "{extra:?}: {r}");
        assert_eq!(
            r["error_details"]["message"],
            "Script exceeded its memory limit of 100 MB"
        );
        assert_eq!(r["error_details"]["context"]["memory_limit_mb"], "100");
        assert!(!r["stdout"].as_str().unwrap().contains("allocated 400"));
        // The kernel's OOM kill, or the allocation refused.
        if extra.is_empty() && cgroups_expected() {
            assert_eq!(r["signal"], "SIGKILL", "{r}");
        } else {
            assert_eq!(
                (&r["signal"], &r["exit_code"]),
                (&Value::Null, &1.into()),
                "{r}"
            );
            assert!(r["stderr"].as_str().unwrap().contains("MemoryError"), "{r}");
        }
    }
}

#[test]
fn resource_cpu_limit_is_enforced() {
    let (_, r) = run_json("cpu_burner", &[]);
    assert_eq!(category(&r), "RESOURCE", "{r}");
    assert_eq!(r["signal"], "SIGXCPU");
    let cpu = r["resource_usage"]["cpu_time_seconds"].as_f64().unwrap();
    // RLIMIT_CPU is enforced on the kernel's tick-sampled CPU time, which on a loaded
    // (virtual) machine can run ahead of the precise figure reported here.
    assert!((0.5..2.5).contains(&cpu), "cpu {cpu}");
}

#[test]
fn execution_failure_carries_the_python_traceback() {
    let (_, r) = run_json("failing", &[]);
    assert_eq!(category(&r), "EXECUTION");
    assert_eq!(r["exit_code"], 1);
    let e = &r["error_details"];
    assert_eq!(
        e["message"],
        "Script exited with code 1: ValueError: invalid literal for int() with base 10: 'twelve'"
    );
    let trace = e["stack_trace"].as_str().unwrap();
    assert!(
        trace.starts_with("Traceback (most recent call last):"),
        "{trace}"
    );
    assert!(trace.contains("line 2, in parse"), "{trace}");
    assert_eq!(e["context"]["exit_code"], 1);
}

#[test]
fn unknown_signal_is_unknown_with_context() {
    let (_, r) = run_json("self_signal", &[]);
    assert_eq!(category(&r), "UNKNOWN");
    assert_eq!(r["signal"], "SIGUSR1");
    assert_eq!(r["error_details"]["context"]["signal"], "SIGUSR1");
    assert_eq!(r["stdout"], "sending myself SIGUSR1\n");
}

#[test]
fn transient_failures_are_retried_with_backoff_and_events() {
    let out = bin()
        .args(["run", "flaky", "--json", "--events", "--registry"])
        .arg(example_registry())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["retries"], 2);
    let attempts = r["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 3);
    assert_eq!(attempts[0]["exit_code"], 75);
    assert_eq!(attempts[0]["category"], "EXECUTION");
    assert_eq!(attempts[2]["success"], true);
    // Full jitter: each delay lies between 0 and the capped exponential step.
    assert_eq!(attempts[0]["delay_before_ms"], 0);
    assert!(attempts[1]["delay_before_ms"].as_u64().unwrap() <= 50);
    assert!(attempts[2]["delay_before_ms"].as_u64().unwrap() <= 100);
    assert_eq!(r["stdout"], "succeeded on attempt 3\n");

    let events: Vec<Value> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, crate::util::FLAKY_LIFECYCLE);
    let id = &r["execution_id"];
    assert!(events.iter().all(|e| &e["execution_id"] == id));
    assert!(events[1]["pid"].as_u64().is_some());
    assert_eq!(events[2]["error"]["context"]["exit_code"], 75);
    assert_eq!(events[3]["retry_delay_ms"], attempts[1]["delay_before_ms"]);
    assert_eq!(events[8]["result"], r);
}

#[test]
fn inputs_reach_scripts_by_stdin_json_and_environment() {
    let (_, r) = run_json(
        "summarize_json",
        &["--inputs-json", r#"{"values": "1,2,3.5"}"#],
    );
    assert_eq!(
        r["stdout"], "{\"label\": \"values\", \"count\": 3, \"sum\": 6.5}\n",
        "{r}"
    );
    let (_, r) = run_json("env_inputs", &["--input", "region=eu-west"]);
    assert_eq!(
        r["stdout"], "hi from eu-west with 2 replicas (HOME=unset)\n",
        "{r}"
    );
}

#[test]
fn huge_output_is_bounded_and_keeps_head_and_tail() {
    let (_, r) = run_json("big_output", &[]);
    assert_eq!(r["success"], true);
    assert_eq!(r["stdout_truncated"], true);
    let stdout = r["stdout"].as_str().unwrap();
    assert!(stdout.len() < 70_000, "{}", stdout.len());
    assert!(stdout.starts_with("first line\n"));
    assert!(stdout.ends_with("last line\n"));
    assert!(stdout.contains("bytes truncated"));
}

#[test]
fn usage_errors_exit_2() {
    let out = bin()
        .args(["run", "hello", "--input", "no-equals-sign", "--registry"])
        .arg(example_registry())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected KEY=VALUE"));
    let out = bin().args(["run"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// The seed's resource figures checked against GNU time on the same workload: a shell
/// whose Python child holds 200 MiB and burns about a second of CPU.
#[test]
fn measurements_agree_with_gnu_time() {
    let (_, r) = run_json("tree_workload", &[]);
    assert_eq!(r["success"], true, "{r}");
    let gnu = Command::new("/usr/bin/time")
        .arg("-v")
        .arg(crate::util::root().join("examples/registry/scripts/tree_workload.sh"))
        .output()
        .expect("GNU time is installed by `cargo xtask test` (apt-get install time)");
    let report = String::from_utf8_lossy(&gnu.stderr);
    let field = |name: &str| -> f64 {
        report
            .lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} missing in GNU time output:\n{report}"))
    };
    let gnu_peak_mb = field("Maximum resident set size (kbytes):") / 1024.0;
    let gnu_cpu = field("User time (seconds):") + field("System time (seconds):");
    let u = &r["resource_usage"];
    let peak = u["peak_memory_mb"].as_f64().unwrap();
    let largest = u["peak_memory_largest_process_mb"].as_f64().unwrap();
    let cpu = u["cpu_time_seconds"].as_f64().unwrap();
    let within = |a: f64, b: f64, tolerance: f64| (a - b).abs() / b <= tolerance;
    assert!(
        within(peak, gnu_peak_mb, 0.05),
        "peak {peak} vs GNU time {gnu_peak_mb}"
    );
    assert!(
        within(largest, gnu_peak_mb, 0.05),
        "largest {largest} vs GNU time {gnu_peak_mb}"
    );
    // CPU time: GNU time's own figure moves by a few hundredths between runs; compare at
    // 5 % plus its 10 ms resolution.
    assert!(
        (cpu - gnu_cpu).abs() <= gnu_cpu * 0.05 + 0.02,
        "cpu {cpu} vs GNU time {gnu_cpu}"
    );
}

/// A process that lives ~50 ms: polling alone would miss its peak; the kernel does not.
/// Without cgroups the kernel's figure is `ru_maxrss`, usable when the host itself is
/// smaller than the script (see the README), hence no plugins in that run.
#[test]
fn peak_of_a_short_lived_process_is_right_with_and_without_cgroups() {
    for extra in [&[][..], &["--no-cgroups", "--no-plugins"][..]] {
        let (_, r) = run_json("short_spike", extra);
        assert_eq!(r["success"], true, "{r}");
        assert_measured_with_cgroups(&r, extra.is_empty(), &format!("short_spike {extra:?}"));
        let peak = r["resource_usage"]["peak_memory_mb"].as_f64().unwrap();
        assert!(peak >= 120.0, "peak {peak} MB with {extra:?}");
        assert!(peak < 200.0, "peak {peak} MB with {extra:?}");
    }
}

/// The script starts on the host's address space (vfork) and `execve` credits that
/// space's high-water mark to the script's `ru_maxrss`. A one-shot run loads its plugins
/// on another thread while the script starts, so the host grows during the spawn: that
/// growth is the host's, never the script's peak (it was reported as an 18 MB peak of
/// `hello` in about half of such runs, before the host read its own high-water mark
/// after the spawn).
#[test]
fn the_host_growing_while_a_script_starts_is_not_the_scripts_peak() {
    for _ in 0..20 {
        let (_, r) = run_json("hello", &[]);
        assert_eq!(r["success"], true, "{r}");
        let usage = &r["resource_usage"];
        for key in ["peak_memory_mb", "peak_memory_largest_process_mb"] {
            let mb = usage[key].as_f64().unwrap();
            assert!(
                mb < 8.0,
                "{key} {mb} MB for `hello` (a shell's echo): {usage}"
            );
        }
    }
}

/// A plugins directory that cannot be read fails the run before anything runs, with one
/// message that names the directory and the cause, once each.
#[test]
fn an_unreadable_plugins_directory_is_named_once_and_nothing_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-such-plugins");
    let out = bin()
        .args(["run", "hello", "--plugins"])
        .arg(&missing)
        .arg("--registry")
        .arg(example_registry())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "something ran: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        stderr.trim(),
        format!(
            "error: cannot read the plugins directory {}: No such file or directory (os error 2)",
            missing.display()
        )
    );
}

fn set_executable(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Folders named `prefix*` under the cgroup mounts (`/sys/fs/cgroup`, five levels down).
fn cgroup_folders(prefix: &str) -> Vec<std::path::PathBuf> {
    fn walk(dir: &std::path::Path, depth: u32, prefix: &str, found: &mut Vec<std::path::PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let path = e.path();
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if e.file_name().to_string_lossy().starts_with(prefix) {
                found.push(path);
            } else if depth > 0 {
                walk(&path, depth - 1, prefix, found);
            }
        }
    }
    let mut found = Vec::new();
    walk(
        std::path::Path::new("/sys/fs/cgroup"),
        5,
        prefix,
        &mut found,
    );
    found
}

#[test]
fn a_run_leaves_no_cgroup_behind() {
    // The quickest host there is (no plugins, a trivial script, or one that fails): it
    // exits while its cgroup pool may still be filling. Each run's folders must be gone
    // when it has exited, not only swept by the next host to start.
    // Without cgroups (METACLAUDE_TEST_NO_CGROUPS=1) the runs below check nothing is left either.
    let (_, first) = run_json("noop", &["--no-plugins"]);
    assert_measured_with_cgroups(&first, true, "noop");
    for n in 0..30 {
        let script = if n % 3 == 2 { "failing" } else { "noop" };
        // A host killed with -9 by another test (a server's, named by its own pid) leaves
        // its folder until the next host sweeps it, and its pid may come back as this
        // run's: only folders that were not there before the run are the run's.
        let before = cgroup_folders("metaclaude-");
        let child = bin()
            .args(["run", script, "--no-plugins", "--registry"])
            .arg(example_registry())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run metaclaude");
        let pid = child.id();
        let out = child.wait_with_output().expect("wait for metaclaude");
        let code = if script == "noop" { 0 } else { 1 };
        assert_eq!(out.status.code(), Some(code), "{script}: {out:?}");
        let left: Vec<_> = cgroup_folders(&format!("metaclaude-{pid}-"))
            .into_iter()
            .filter(|f| !before.contains(f))
            .collect();
        assert!(
            left.is_empty(),
            "metaclaude run (pid {pid}) left {left:?}; its stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `metaclaude run x | head -1`: a reader that went away before the summary is printed
/// ends nothing badly. The run is recorded, nothing panics, and the exit status is still
/// the script's (0 or 1), for the summary and for `--json`.
#[test]
fn a_reader_that_went_away_ends_the_run_quietly_with_the_scripts_status() {
    let tmp = tempfile::tempdir().unwrap();
    let registry = crate::util::write_registry(
        tmp.path(),
        &[
            ("ok.sh", "#!/bin/sh\necho fine\n"),
            ("fails.sh", "#!/bin/sh\necho broken >&2\nexit 4\n"),
        ],
        r#"{"scripts": [{"id": "ok", "path": "ok.sh"},
                        {"id": "fails", "path": "fails.sh", "max_retries": 0}]}"#,
    );
    let logs = tmp.path().join("logs");
    for (id, status) in [("ok", 0), ("fails", 1)] {
        for json in [false, true] {
            // A pipe whose only reader is closed before the host starts.
            let (reader, writer) = std::io::pipe().unwrap();
            drop(reader);
            let mut cmd = bin();
            cmd.args(["run", id, "--registry"])
                .arg(&registry)
                .env("METACLAUDE_LOG_DIR", &logs)
                .stdout(writer);
            if json {
                cmd.arg("--json");
            }
            let out = cmd.output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(status),
                "{id} json={json}: {stderr}"
            );
            assert!(stderr.is_empty(), "{id} json={json}: {stderr}");
        }
    }
    // Every run is in the log.
    let listed = bin()
        .args(["logs", "--limit", "10", "--json"])
        .env("METACLAUDE_LOG_DIR", &logs)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&listed.stdout);
    assert_eq!(text.lines().count(), 4, "{text}");
}
