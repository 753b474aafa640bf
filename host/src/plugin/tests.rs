//! The plugin host as a whole: loading, hot reload, batching, failures.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::executor::EventSink;
use crate::plugin::test_support::{event, example, grant, granting};

/// A plugin folder `dir/name` holding `manifest` as its `plugin.toml`.
fn plugin_folder(dir: &Path, name: &str, manifest: &str) -> PathBuf {
    let folder = dir.join(name);
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("plugin.toml"), manifest).unwrap();
    folder
}

/// A native counting sink in `dir/plugins/<name>`, writing its count to `dir/<count>`.
fn sink(dir: &Path, name: &str, count: &str) {
    plugin_folder(
        &dir.join("plugins"),
        name,
        &format!(
            "name = \"{name}\"\nversion = \"1\"\nkind = \"sink\"\nnative = \"{}\"\n\
             trusted = true\n[config]\ncount_file = \"{}\"\n",
            example().display(),
            dir.join(count).display()
        ),
    );
}

fn count(dir: &Path, file: &str) -> u64 {
    std::fs::read_to_string(dir.join(file))
        .map(|t| t.parse().unwrap())
        .unwrap_or(0)
}

fn caught_up(host: &PluginHost) {
    host.caught_up();
}

#[test]
fn reload_adds_replaces_and_removes_plugins_without_losing_events() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    sink(tmp.path(), "a", "a-v1");
    let mut host = granting(&plugins);
    assert!(host.load_dir(&plugins).unwrap().is_empty());
    let host = Arc::new(host);
    let mut sent = 0;
    let mut send = |n: u32| {
        for _ in 0..n {
            host.emit(&event(sent));
            sent += 1;
        }
    };
    send(100);

    // Nothing changed: nothing happens.
    assert!(host.reload_dir(&plugins).unwrap().is_empty());

    sink(tmp.path(), "b", "b");
    grant(&host, &plugins);
    let report = host.reload_dir(&plugins).unwrap();
    assert_eq!(
        (report.added.as_slice(), report.errors.len()),
        (&["b".to_string()][..], 0)
    );
    send(50);

    // A changed manifest replaces the plugin: the old version delivers what it was
    // sent (and flushes) before it stops; the new one gets everything after.
    sink(tmp.path(), "a", "a-v2");
    let report = host.reload_dir(&plugins).unwrap();
    assert_eq!(report.changed, ["a"]);
    assert_eq!(count(tmp.path(), "a-v1"), 150);
    send(30);

    std::fs::remove_dir_all(plugins.join("b")).unwrap();
    let report = host.reload_dir(&plugins).unwrap();
    assert_eq!(report.removed, ["b"]);
    assert_eq!(count(tmp.path(), "b"), 80);
    send(20);

    host.flush();
    assert_eq!(count(tmp.path(), "a-v2"), 50);
    let names: Vec<String> = host.list().into_iter().map(|p| p.name).collect();
    assert_eq!(names, ["a"]);
}

/// A worker with an open batch sleeps until the batch is due instead of waking for
/// each event, but a full batch, or a full queue under `block`, wakes it at once: with
/// a one-minute window, 100 events in batches of 10 through a queue of 4 arrive in
/// seconds, and the sender never waits on the sleeping worker. A partial batch waits
/// for its window or a flush.
#[test]
fn full_batches_and_full_queues_wake_a_batching_worker() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = plugin_folder(
        tmp.path(),
        "long-window",
        &format!(
            "name = \"long-window\"\nversion = \"1\"\nkind = \"sink\"\nnative = \"{}\"\n\
             trusted = true\n[limits]\nbatch_ms = 60000\nbatch_max = 10\nqueue = 4\n\
             on_full = \"block\"\n",
            example().display()
        ),
    );
    let mut host = granting(tmp.path());
    host.load_plugin(&folder).unwrap();
    let host = Arc::new(host);
    let delivered = |host: &PluginHost| host.list()[0].delivered;
    let (done, sent) = std::sync::mpsc::channel();
    let sender = {
        let host = host.clone();
        std::thread::spawn(move || {
            for i in 0..100 {
                host.emit(&event(i));
            }
            done.send(()).unwrap();
        })
    };
    sent.recv_timeout(Duration::from_secs(20))
        .expect("the sender waited on a sleeping worker");
    sender.join().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while delivered(&host) < 100 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(delivered(&host), 100, "full batches waited for the window");

    for i in 100..103 {
        host.emit(&event(i));
    }
    // The worker has taken the three (and a message after them) and kept them.
    caught_up(&host);
    assert_eq!(
        delivered(&host),
        100,
        "a partial batch went before its window"
    );
    host.flush();
    assert_eq!(delivered(&host), 103);
}

/// Reloads racing a thread that emits: every event reaches exactly one version. The
/// thread emits until the last reload is done, and each reload waits until it has sent
/// more since the one before: every reload happens while events flow.
#[test]
fn reloads_under_load_lose_no_event() {
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    sink(tmp.path(), "a", "v0");
    let mut host = granting(&plugins);
    host.load_dir(&plugins).unwrap();
    let host = Arc::new(host);
    let emitted = Arc::new(AtomicU32::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let emitter = {
        let (host, emitted, stop) = (host.clone(), emitted.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                host.emit(&event(i));
                i += 1;
                emitted.store(i, Ordering::Relaxed);
            }
            i
        })
    };
    for v in 1..=5 {
        let since = emitted.load(Ordering::Relaxed);
        let deadline = Instant::now() + Duration::from_secs(60);
        while emitted.load(Ordering::Relaxed) < since + 2000 {
            assert!(Instant::now() < deadline, "the emitter is stuck at {since}");
            std::thread::sleep(Duration::from_millis(1));
        }
        sink(tmp.path(), "a", &format!("v{v}"));
        assert_eq!(host.reload_dir(&plugins).unwrap().changed, ["a"]);
    }
    stop.store(true, Ordering::Relaxed);
    let sent = emitter.join().unwrap();
    assert!(sent >= 10_000, "{sent}");
    host.flush();
    let total: u64 = (0..=5).map(|v| count(tmp.path(), &format!("v{v}"))).sum();
    assert_eq!(total, u64::from(sent));
}

/// A component whose imports say another, incompatible WIT version is refused with
/// both versions named, even though its manifest claims the right one.
#[test]
fn components_built_against_an_incompatible_wit_version_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = plugin_folder(
        tmp.path(),
        "old",
        "name = \"old\"\nversion = \"1\"\nkind = \"sink\"\ncomponent = \"old.wasm\"\nwit = \"0.1.0\"\n",
    );
    let component = wat::parse_str(
        r#"(component
             (import "metaclaude:monitor/host@0.5.0" (instance (export "log-enabled" (func)))))"#,
    )
    .unwrap();
    std::fs::write(folder.join("old.wasm"), component).unwrap();
    let err = granting(tmp.path()).load_plugin(&folder).unwrap_err();
    assert!(matches!(err, PluginError::WitVersion { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.starts_with("plugin old (")
            && text.contains("old.wasm): the plugin was built against metaclaude:monitor@0.5.0, but this host implements 0.1.0, 0.2.0, 0.3.0 and 0.4.0, none semver-compatible"),
        "{text}"
    );
}

/// A component importing two versions at once is refused, naming both imports.
#[test]
fn components_mixing_wit_versions_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = plugin_folder(
        tmp.path(),
        "mixed",
        "name = \"mixed\"\nversion = \"1\"\nkind = \"sink\"\ncomponent = \"mixed.wasm\"\n",
    );
    let component = wat::parse_str(
        r#"(component
             (import "metaclaude:monitor/host@0.1.0" (instance (export "log-enabled" (func))))
             (import "metaclaude:monitor/types@0.2.0" (instance)))"#,
    )
    .unwrap();
    std::fs::write(folder.join("mixed.wasm"), component).unwrap();
    let err = granting(tmp.path())
        .load_plugin(&folder)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "imports both `metaclaude:monitor/host@0.1.0` and `metaclaude:monitor/types@0.2.0`"
        ),
        "{err}"
    );
}

fn fixture_sink() -> PathBuf {
    let wasm = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../plugins/target/wasm32-wasip2/release/fixture_sink.wasm");
    assert!(
        wasm.is_file(),
        "{} is not built: run `cargo xtask build-plugins --all`",
        wasm.display()
    );
    wasm
}

/// A plugin that keeps trapping, under the `block` policy with a tiny queue, never
/// makes the executor wait through its restart backoffs (0.1, 0.2, 0.4 ... s): its worker
/// keeps draining, holding what it can for the next instance. Seen without a clock: 200
/// events (25 queues' worth) go in while the worker waits out one backoff, which a
/// blocked sender could not do, since the restart that ends the backoff is counted
/// before a worker asleep in it would take anything. Every event is accounted for,
/// delivered or dropped.
#[test]
fn a_restarting_plugin_never_blocks_the_sender() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = plugin_folder(
        tmp.path(),
        "trap",
        &format!(
            "name = \"trap\"\nversion = \"1\"\nkind = \"sink\"\ncomponent = \"{}\"\n\
             [config]\nmode = \"trap\"\n[limits]\non_full = \"block\"\nqueue = 8\nbatch_max = 1\n\
             max_failures = 100\n",
            fixture_sink().display()
        ),
    );
    let mut host = granting(tmp.path());
    host.load_plugin(&folder).unwrap();
    let host = Arc::new(host);
    let info = |host: &PluginHost| host.list().remove(0);
    let mut sent = 0;
    // Each attempt during a backoff twice as long as the one before: on a machine too
    // loaded to send 200 events within the first one, within a later one.
    let mut conclusive = false;
    for _attempt in 0..8 {
        // One event to trap on, then wait (bounded) for the backoff it starts.
        host.emit(&event(sent));
        sent += 1;
        let deadline = Instant::now() + Duration::from_secs(60);
        while info(&host).health != Health::Restarting {
            assert!(Instant::now() < deadline, "no trap: {:?}", info(&host));
            std::thread::sleep(Duration::from_millis(1));
        }
        let restarts = info(&host).restarts;
        let first = sent;
        sent += 200;
        let (sender, (done, finished)) = (host.clone(), std::sync::mpsc::channel());
        std::thread::spawn(move || {
            for i in first..first + 200 {
                sender.emit(&event(i));
            }
            let _ = done.send(());
        });
        // 200 sends take milliseconds; a sender held through each restart backoff (one
        // event a restart, the backoffs doubling to 30 s) takes many minutes.
        finished
            .recv_timeout(Duration::from_secs(120))
            .expect("the sender hung on a restarting plugin: it waits out the backoffs");
        let after = info(&host);
        if after.restarts == restarts && after.health == Health::Restarting {
            conclusive = true;
            break;
        }
    }
    assert!(
        conclusive,
        "every backoff ended before 200 events were in: the sender waits on it"
    );
    host.shutdown();
    let info = info(&host);
    assert!(info.failures >= 1, "{info:?}");
    assert_eq!(info.queued, u64::from(sent));
    assert_eq!(info.delivered + info.dropped, u64::from(sent), "{info:?}");
}

/// With `limits.core_dump`, a trap leaves a WebAssembly core dump in the plugin folder
/// for its author, and the failure says where. Needs the test fixtures built
/// (`cargo xtask build-plugins`).
#[test]
fn a_trap_writes_a_core_dump_on_request() {
    let wasm = fixture_sink();
    let tmp = tempfile::tempdir().unwrap();
    let folder = plugin_folder(
        tmp.path(),
        "trap",
        &format!(
            "name = \"trap\"\nversion = \"1\"\nkind = \"sink\"\ncomponent = \"{}\"\n\
             [config]\nmode = \"trap\"\n[limits]\ncore_dump = true\nfailure_policy = \"disable\"\n",
            wasm.display()
        ),
    );
    let mut host = granting(tmp.path());
    host.load_plugin(&folder).unwrap();
    host.emit(&event(1));
    host.flush();
    let info = &host.list()[0];
    assert!(
        matches!(info.health, Health::Disabled(_)),
        "{:?}",
        info.health
    );
    let error = info.last_error.clone().unwrap();
    assert!(error.contains("core dump written to"), "{error}");
    // The panic message reached the report through the plugin's stderr.
    assert!(error.contains("fixture-sink: deliberate panic"), "{error}");
    let dumps: Vec<_> = std::fs::read_dir(&folder)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "coredump"))
        .collect();
    assert_eq!(dumps.len(), 1, "{error}");
    let bytes = std::fs::read(&dumps[0]).unwrap();
    assert!(bytes.starts_with(b"\0asm"), "a core dump is a wasm file");
    assert!(error.contains(&dumps[0].display().to_string()), "{error}");
}

/// Two folders may not load plugins of the same name; when the first goes, the
/// second loads on the next reload.
#[test]
fn plugin_names_are_unique() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    sink(tmp.path(), "a", "a");
    let mut host = granting(&plugins);
    host.load_dir(&plugins).unwrap();
    sink(tmp.path(), "b", "b");
    grant(&host, &plugins);
    let manifest = plugins.join("b/plugin.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.replace("name = \"b\"", "name = \"a\"")).unwrap();
    let report = host.reload_dir(&plugins).unwrap();
    let err = report.errors[0].to_string();
    assert!(
        err.contains("another plugin of that name is loaded from") && err.contains("b/plugin.toml"),
        "{err}"
    );
    assert!(
        host.reload_dir(&plugins).unwrap().is_empty(),
        "reported again"
    );
    std::fs::remove_dir_all(plugins.join("a")).unwrap();
    let report = host.reload_dir(&plugins).unwrap();
    assert_eq!(
        (report.removed.as_slice(), report.added.as_slice()),
        (&["a".to_string()][..], &["a".to_string()][..])
    );
    assert_eq!(host.list()[0].folder, plugins.join("b"));
}

#[test]
fn a_broken_new_version_leaves_the_old_one_running_and_is_reported_once() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    sink(tmp.path(), "a", "a");
    let mut host = granting(&plugins);
    host.load_dir(&plugins).unwrap();
    let manifest = plugins.join("a/plugin.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.replace("count_file", "count_fiel")).unwrap();
    let report = host.reload_dir(&plugins).unwrap();
    assert_eq!(report.errors.len(), 1);
    let err = report.errors[0].to_string();
    assert!(err.contains("unknown config key `count_fiel`"), "{err}");
    assert!(
        host.reload_dir(&plugins).unwrap().is_empty(),
        "reported again"
    );
    host.emit(&event(1));
    host.flush();
    assert_eq!(count(tmp.path(), "a"), 1, "the old version still runs");
}

/// A first load starts its folders side by side but keeps folder order for names: of two
/// folders naming the same plugin, the first loads and the second is refused, naming the
/// first; when the first does not load, the second does, as when they loaded one by one.
#[test]
fn a_first_load_keeps_folder_order_for_names() {
    let name_it = |plugins: &Path, folder: &str, name: &str| {
        let manifest = plugins.join(folder).join("plugin.toml");
        let text = std::fs::read_to_string(&manifest).unwrap();
        let text = text.replace(
            &format!("name = \"{folder}\""),
            &format!("name = \"{name}\""),
        );
        std::fs::write(&manifest, text).unwrap();
    };
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    for s in ["a", "b", "c"] {
        sink(tmp.path(), s, s);
    }
    name_it(&plugins, "b", "a");
    let mut host = granting(&plugins);
    let errors = host.load_dir(&plugins).unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    let err = errors[0].to_string();
    assert!(
        err.contains("another plugin of that name is loaded from") && err.contains("b/plugin.toml"),
        "{err}"
    );
    let loaded: Vec<(String, PathBuf)> = host
        .list()
        .into_iter()
        .map(|p| (p.name, p.folder))
        .collect();
    assert_eq!(
        loaded,
        [
            ("a".to_string(), plugins.join("a")),
            ("c".to_string(), plugins.join("c"))
        ]
    );
    host.emit(&event(1));
    host.flush();
    assert_eq!((count(tmp.path(), "a"), count(tmp.path(), "b")), (1, 0));

    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    for s in ["a", "b"] {
        sink(tmp.path(), s, s);
    }
    name_it(&plugins, "b", "a");
    let manifest = plugins.join("a/plugin.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.replace("count_file", "count_fiel")).unwrap();
    let mut host = granting(&plugins);
    let errors = host.load_dir(&plugins).unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].to_string().contains("count_fiel"),
        "{}",
        errors[0]
    );
    let loaded: Vec<(String, PathBuf)> = host
        .list()
        .into_iter()
        .map(|p| (p.name, p.folder))
        .collect();
    assert_eq!(loaded, [("a".to_string(), plugins.join("b"))]);
}

/// Threads of this process named `comm` (as the kernel keeps it, 15 bytes), with their
/// state letter (`S` sleeping, ...).
fn threads_named(comm: &str) -> Vec<String> {
    let mut found = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let name = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if name.trim_end() == comm {
            let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
            let state = stat.rsplit_once(") ").map(|(_, rest)| &rest[..1]);
            found.push(state.unwrap_or("?").to_string());
        }
    }
    found
}

/// Right before the process exits, a worker delivers and flushes what it holds, then
/// parks its thread for the exit to take (ending it would give its stack back, a TLB
/// flush across cores, for nothing); a host shut down to go on has its workers end.
#[test]
fn workers_stopped_before_the_exit_flush_and_park_and_others_end() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, before_exit) in [("exit-parks", true), ("exit-ends", false)] {
        sink(tmp.path(), name, name);
        let mut host = granting(&tmp.path().join("plugins"));
        let folder = tmp.path().join("plugins").join(name);
        host.load_plugin(&folder).unwrap();
        for i in 0..5 {
            host.emit(&event(i));
        }
        let comm = &format!("plugin-{name}")[..15.min(7 + name.len())];
        // The worker has named its thread (and taken the events, without a flush).
        caught_up(&host);
        assert_eq!(threads_named(comm).len(), 1, "{name}: its worker runs");
        if before_exit {
            host.shutdown_before_exit();
            // Alive, and asleep once it has parked (it may be on its way there).
            let deadline = Instant::now() + Duration::from_secs(10);
            while threads_named(comm) != ["S"] && Instant::now() < deadline {
                assert_eq!(threads_named(comm).len(), 1, "{name}: parked, not ended");
                std::thread::sleep(Duration::from_millis(1));
            }
            assert_eq!(threads_named(comm), ["S"], "{name}: parked, not ended");
        } else {
            host.shutdown();
            assert!(threads_named(comm).is_empty(), "{name}: ended and joined");
        }
        assert_eq!(
            count(tmp.path(), name),
            5,
            "{name}: all delivered and flushed"
        );
        std::fs::remove_dir_all(folder).unwrap();
    }
}
