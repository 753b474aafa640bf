//! Silences with an injected clock: every boundary of a silence's life, validation, and
//! the store's file.

use chrono::TimeZone;

use super::*;
use crate::model::Severity;

fn t(s: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + s, 0).unwrap()
}

fn spec(text: &str) -> MatcherSpec {
    Matcher::parse(text).unwrap().into()
}

fn new(matchers: &[&str], starts: Option<i64>, ends: i64) -> NewSilence {
    NewSilence {
        matchers: matchers.iter().map(|m| spec(m)).collect(),
        starts_at: starts.map(t),
        ends_at: t(ends),
        created_by: "ana".into(),
        comment: "backup maintenance".into(),
    }
}

fn backup_alert() -> Alert {
    let mut a = Alert::firing(t(0), "script_failing", Severity::Critical, "m", 3.0, 3.0);
    a.labels.insert("script".into(), "backup".into());
    a.fingerprint = a.identity();
    a
}

#[test]
fn a_silence_mutes_from_its_start_included_to_its_end_excluded() {
    let mut s = Silences::default();
    let made = s
        .add(new(&["script=backup"], Some(100), 200), "S1".into(), t(0))
        .unwrap();
    assert_eq!((made.starts_at, made.ends_at), (t(100), t(200)));
    let a = backup_alert();
    assert_eq!(made.state(t(99)), SilenceState::Pending);
    assert!(s.matches(&a, t(99)).is_empty(), "pending");
    assert_eq!(s.matches(&a, t(100)), ["S1"], "from its start");
    assert_eq!(s.matches(&a, t(199)), ["S1"]);
    assert!(s.matches(&a, t(200)).is_empty(), "not at its end");
    assert_eq!(made.state(t(200)), SilenceState::Expired);
    assert_eq!(s.next_change(t(0)), Some(t(100)));
    assert_eq!(s.next_change(t(100)), Some(t(200)));
    assert_eq!(s.next_change(t(200)), None);
    // Not every matcher matching: not muted.
    s.add(
        new(&["script=backup", "severity=warning"], None, 300),
        "S2".into(),
        t(0),
    )
    .unwrap();
    assert_eq!(s.matches(&a, t(150)), ["S1"]);
}

#[test]
fn expiring_early_ends_it_now_and_a_pending_one_never_starts() {
    let mut s = Silences::default();
    s.add(new(&["script=backup"], None, 1000), "A".into(), t(0))
        .unwrap();
    s.add(new(&["script=backup"], Some(500), 1000), "P".into(), t(0))
        .unwrap();
    let a = backup_alert();
    let ended = s.expire("A", t(10)).unwrap();
    assert_eq!((ended.ends_at, ended.updated_at), (t(10), t(10)));
    assert!(s.matches(&a, t(10)).is_empty());
    let p = s.expire("P", t(20)).unwrap();
    assert_eq!((p.starts_at, p.ends_at), (t(20), t(20)));
    assert!(s.matches(&a, t(600)).is_empty(), "never starts");
    let again = s.expire("A", t(30)).unwrap_err().to_string();
    assert!(again.contains("already expired"), "{again}");
    let unknown = s.expire("nope", t(30)).unwrap_err().to_string();
    assert!(
        unknown.contains("\"nope\"") && unknown.contains("silences --all"),
        "{unknown}"
    );
    // Listed by state; expired only when asked.
    assert!(s.list(t(30), false).is_empty());
    let all = s.list(t(30), true);
    assert_eq!(all.len(), 2);
    assert!(all.iter().all(|(_, st)| *st == SilenceState::Expired));
}

#[test]
fn expired_silences_are_kept_their_retention_then_forgotten() {
    let mut s = Silences::default();
    s.add(new(&["script=backup"], None, 100), "A".into(), t(0))
        .unwrap();
    let retention = RETENTION.as_secs() as i64;
    s.forget_old(t(100 + retention - 1));
    assert_eq!(s.len(), 1);
    s.forget_old(t(100 + retention));
    assert!(s.is_empty());
}

#[test]
fn a_new_silence_is_validated_field_by_field() {
    let mut s = Silences::default();
    let e = |n: NewSilence| {
        Silences::default()
            .add(n, "X".into(), t(0))
            .unwrap_err()
            .to_string()
    };
    assert!(e(new(&[], None, 100)).starts_with("matchers: a silence needs at least one matcher"));
    let everything = e(new(&["script!=backup", "x=~.*"], None, 100));
    assert!(
        everything.starts_with("matchers: script!=backup, x=~\".*\" would match an alert that has none of these labels"),
        "{everything}"
    );
    let mut bad_regex = new(&["script=backup"], None, 100);
    bad_regex.matchers.push(MatcherSpec {
        name: "type".into(),
        op: matchers::MatchOp::Regex,
        value: "(".into(),
    });
    assert!(e(bad_regex).starts_with("matchers[1]: matcher \"type=~(\": the regex"));
    assert!(e(new(&["script=backup"], Some(100), 100)).starts_with("ends_at: "));
    assert!(e(new(&["script=backup"], None, -5)).contains("is not after the start"));
    let mut no_comment = new(&["script=backup"], None, 100);
    no_comment.comment = "  ".into();
    assert!(e(no_comment).starts_with("comment: empty: say why"));
    let mut no_author = new(&["script=backup"], None, 100);
    no_author.created_by = String::new();
    assert!(e(no_author).starts_with("created_by: empty"));
    // A start in the past is now (as Alertmanager does).
    let made = s
        .add(new(&["script=backup"], Some(-50), 100), "A".into(), t(0))
        .unwrap();
    assert_eq!(made.starts_at, t(0));
}

#[test]
fn the_store_keeps_its_file_private_and_reads_it_back() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let store = SilenceStore::open(&logs).unwrap();
    assert!(store.snapshot().is_empty(), "no file: no silences");
    let heard = Arc::new(AtomicU64::new(0));
    let h = heard.clone();
    store.watch(Box::new(move || {
        h.fetch_add(1, Ordering::Relaxed);
    }));
    let made = store
        .add(new(&["script=backup"], None, 7200), t(0))
        .unwrap();
    assert_eq!(made.id.len(), 26, "a ULID");
    assert_eq!((store.version(), heard.load(Ordering::Relaxed)), (1, 1));
    let mode = std::fs::metadata(store.path())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let leftovers: Vec<_> = std::fs::read_dir(&logs)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != SILENCES_FILE)
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // Another store of the same directory (a restart) has it.
    let again = SilenceStore::open(&logs).unwrap();
    assert_eq!(again.snapshot(), store.snapshot());
    assert_eq!(
        again.snapshot().matches(&backup_alert(), t(10)),
        std::slice::from_ref(&made.id)
    );
    store.expire(&made.id, t(20)).unwrap();
    let after = SilenceStore::open(&logs).unwrap().snapshot();
    assert_eq!(after.get(&made.id).unwrap().ends_at, t(20));
    // A refused change changes nothing.
    assert!(store.expire("nope", t(30)).is_err());
    assert_eq!(store.version(), 2);
}

#[test]
fn a_damaged_file_is_an_error_naming_it_and_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(SILENCES_FILE);
    std::fs::write(&path, b"{\"version\": 1, \"silences\": [{\"id\": 3}]}").unwrap();
    let e = SilenceStore::open(dir.path()).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!(
            "the silences file {} is damaged: ",
            path.display()
        )) && e.contains("line 1")
            && e.contains("move it away"),
        "{e}"
    );
    let bad_matcher = r#"{"version": 1, "silences": [{"id": "A", "matchers": [{"name": "x", "op": "=~", "value": "("}],
        "starts_at": "2024-01-01T00:00:00Z", "ends_at": "2024-01-02T00:00:00Z", "created_by": "a", "comment": "c",
        "updated_at": "2024-01-01T00:00:00Z"}]}"#;
    std::fs::write(&path, bad_matcher).unwrap();
    let e = SilenceStore::open(dir.path()).unwrap_err().to_string();
    assert!(e.contains("does not compile"), "{e}");
    std::fs::write(&path, b"{\"version\": 9, \"silences\": []}").unwrap();
    let e = SilenceStore::open(dir.path()).unwrap_err().to_string();
    assert!(e.contains("version 9"), "{e}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        b"{\"version\": 9, \"silences\": []}",
        "left as it was"
    );
}

#[test]
fn a_link_in_place_of_the_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    std::fs::write(dir.path().join("outside.json"), b"{}").unwrap();
    std::os::unix::fs::symlink("../outside.json", logs.join(SILENCES_FILE)).unwrap();
    let e = SilenceStore::open(&logs).unwrap_err().to_string();
    assert!(e.contains("symbolic link"), "{e}");
}

#[test]
fn a_change_another_process_made_to_the_file_is_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let server = SilenceStore::open(dir.path()).unwrap();
    server.reload_if_changed().unwrap();
    assert_eq!(server.version(), 0, "nothing changed");
    // The CLI, with no server answering, edits the file directly.
    let cli = SilenceStore::open(dir.path()).unwrap();
    let made = cli.add(new(&["script=backup"], None, 7200), t(0)).unwrap();
    server.reload_if_changed().unwrap();
    assert_eq!(server.version(), 1);
    assert!(server.snapshot().get(&made.id).is_some());
    // A change through the server keeps it.
    server
        .add(new(&["script=deploy"], None, 7200), t(1))
        .unwrap();
    assert_eq!(SilenceStore::open(dir.path()).unwrap().snapshot().len(), 2);
    // Damaged meanwhile: an error, the silences in force kept, told once.
    std::fs::write(server.path(), b"not json").unwrap();
    assert!(server.reload_if_changed().is_err());
    assert!(
        server.reload_if_changed().is_ok(),
        "the same damage is not told again"
    );
    assert_eq!(server.snapshot().len(), 2);
    let refused = server
        .add(new(&["script=x"], None, 7200), t(2))
        .unwrap_err()
        .to_string();
    assert!(refused.contains("is damaged"), "{refused}");
    assert_eq!(
        std::fs::read(server.path()).unwrap(),
        b"not json",
        "not written over"
    );
}
