//! `metaclaude registry check`: every bad registry beside the exact error it must give
//! (golden files in `bad_registries/`), and every good one beside the normalised form the
//! host reads, every default filled in (`good_registries/`), as in Spin's manifest tests.
//! `METACLAUDE_BLESS=1` (`cargo xtask bless`) rewrites the golden files.

use std::path::Path;

use crate::util::{assert_golden_errors, assert_golden_normalized, bin, example_registry, root};

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
    let mut cases: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect();
    cases.sort();
    let checked = assert_golden_errors(
        &dir,
        &cases,
        &["registry", "check"],
        |name| dir.join(name).with_extension("expected"),
        |_| {},
    );
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

#[test]
fn good_registries_normalise_to_their_golden_form() {
    let dir = root().join("tests/cli/good_registries");
    let mut cases: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect();
    cases.sort();
    let checked = assert_golden_normalized(&dir, &cases, &["registry", "check"], |name| {
        dir.join(name).with_extension("normalized")
    });
    assert!(checked >= 2, "only {checked} good registries");
    // The example registry too: its normalised form is the reference of every default.
    let examples = root().join("examples/registry");
    assert_golden_normalized(
        &examples,
        &["registry.json".to_string()],
        &["registry", "check"],
        |_| dir.join("examples.normalized"),
    );
}
