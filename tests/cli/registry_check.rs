//! `metaclaude registry check`: every bad registry beside the exact error it must give
//! (golden files in `bad_registries/`, as in Spin's manifest tests).

use std::path::Path;

use crate::util::{bin, example_registry};

#[test]
fn example_registry_is_valid() {
    let out = bin()
        .args(["registry", "check"])
        .arg(example_registry())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(": ok, 23 scripts"), "{stdout}");
}

#[test]
fn bad_registries_give_their_golden_errors() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/cli/bad_registries");
    let mut checked = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let expected = std::fs::read_to_string(path.with_extension("expected"))
            .unwrap_or_else(|_| panic!("{name} needs a .expected file beside it"));
        // Run from the folder so the file is named as a user would type it.
        let out = bin()
            .current_dir(&dir)
            .args(["registry", "check", &name])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{name} must fail with exit 2");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            stderr.trim_end(),
            expected.trim_end(),
            "golden error for {name}"
        );
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} golden registries found");
}

#[test]
fn run_with_a_bad_registry_exits_2_and_points_at_check() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("registry.json");
    std::fs::write(&file, r#"{"scripts": [{"id": "x"}]}"#).unwrap();
    let out = bin()
        .args(["run", "x", "--registry"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("scripts[0].path: missing"), "{stderr}");
    assert!(stderr.contains("metaclaude registry check"), "{stderr}");
}

#[test]
fn missing_registry_file_is_named() {
    let out = bin()
        .args(["run", "x", "--registry", "/nonexistent/registry.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot read registry /nonexistent/registry.json"),
        "{stderr}"
    );
}
