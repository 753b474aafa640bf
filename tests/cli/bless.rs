//! Whether golden files may be rewritten: only when asked (`METACLAUDE_BLESS=1`, which
//! `cargo xtask bless` sets), and never in CI, where a rewrite would turn every golden
//! test into one that passes. Shared by the end-to-end tests (`tests/cli/util.rs`) and the
//! terminal dashboard's snapshots (`host/src/tui/render.rs`, by `#[path]`).

use std::ffi::OsString;

/// True when golden files are to be rewritten from what the code gives now. Panics when
/// a rewrite is asked for under CI (`CI` set, as every CI service sets it).
pub fn blessing() -> bool {
    decide(std::env::var_os("METACLAUDE_BLESS"), std::env::var_os("CI"))
        .unwrap_or_else(|refusal| panic!("{refusal}"))
}

/// The decision, from the values of `METACLAUDE_BLESS` and `CI`.
pub fn decide(bless: Option<OsString>, ci: Option<OsString>) -> Result<bool, String> {
    let asked = bless.is_some_and(|v| v == "1");
    match ci {
        Some(ci) if asked && !ci.is_empty() => Err(format!(
            "METACLAUDE_BLESS=1 with CI={} set: a CI run never rewrites golden files (it \
             would make every golden test pass); unset METACLAUDE_BLESS there, and rewrite \
             them on purpose with `cargo xtask bless` outside CI",
            ci.to_string_lossy()
        )),
        _ => Ok(asked),
    }
}

#[test]
fn a_rewrite_is_refused_under_ci_and_done_only_when_asked() {
    let v = |s: &str| Some(OsString::from(s));
    assert_eq!(decide(None, None), Ok(false));
    assert_eq!(decide(v("0"), None), Ok(false));
    assert_eq!(decide(v("1"), None), Ok(true));
    assert_eq!(decide(v("1"), v("")), Ok(true), "CI empty is CI unset");
    assert_eq!(decide(None, v("true")), Ok(false), "CI alone compares");
    let refusal = decide(v("1"), v("true")).unwrap_err();
    assert!(
        refusal.contains("METACLAUDE_BLESS=1 with CI=true set")
            && refusal.contains("cargo xtask bless"),
        "{refusal}"
    );
}
