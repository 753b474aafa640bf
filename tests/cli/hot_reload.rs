//! A long-running host (`metaclaude batch`) picks up plugin folders added, changed and
//! removed while it runs, and no plugin loses an event meanwhile.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{ChildStdin, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

use serde_json::Value;

use crate::plugins::recorder;
use crate::util::{bin, example_registry};

/// Execution ids recorded by the recorder writing into `out`, with how many events each.
fn recorded(out: &Path) -> std::collections::HashMap<String, usize> {
    let mut seen = std::collections::HashMap::new();
    let text = std::fs::read_to_string(out.join("events.txt")).unwrap_or_default();
    for line in text.lines() {
        let id = line.split_whitespace().next().unwrap().to_string();
        *seen.entry(id).or_insert(0) += 1;
    }
    seen
}

/// Sends `n` requests and returns the ids of their `n` result lines.
fn run_some(
    stdin: &mut ChildStdin,
    results: &mut impl Iterator<Item = std::io::Result<String>>,
    n: usize,
) -> Vec<String> {
    for _ in 0..n {
        stdin.write_all(b"{\"script_id\":\"noop\"}\n").unwrap();
    }
    stdin.flush().unwrap();
    (0..n)
        .map(|_| {
            let line = results.next().expect("a result line").unwrap();
            let v: Value = serde_json::from_str(&line).unwrap();
            v["execution_id"].as_str().unwrap().to_string()
        })
        .collect()
}

/// Waits (at most 30 s) for the host to say `line` on stderr.
fn expect_said(said: &Receiver<String>, line: &str) {
    loop {
        match said.recv_timeout(Duration::from_secs(30)) {
            Ok(l) if l == line => return,
            Ok(_) => {}
            Err(e) => panic!("the host never said {line:?}: {e}"),
        }
    }
}

#[test]
fn batch_picks_up_plugins_added_and_removed_while_it_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    // Prepared away from the plugins directory and its grants (the staged copy is named
    // `recorder` at first, and grants are by name).
    let staging = tmp.path().join("elsewhere/staging");
    let (out_a, out_b) = (tmp.path().join("a"), tmp.path().join("b"));
    recorder(&plugins, &out_a);
    let mut host = bin()
        .args(["batch", "--registry"])
        .arg(example_registry())
        .arg("--plugins")
        .arg(&plugins)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = host.stdin.take().unwrap();
    let mut results = BufReader::new(host.stdout.take().unwrap()).lines();
    let stderr = BufReader::new(host.stderr.take().unwrap());
    let (tell, said) = channel();
    let reader = std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = tell.send(line);
        }
    });

    let first = run_some(&mut stdin, &mut results, 5);
    // A second recorder, installed the way the README says: prepared elsewhere, then
    // moved in whole.
    recorder(&staging, &out_b);
    let manifest = staging.join("recorder/plugin.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replace("name = \"recorder\"", "name = \"recorder-b\""),
    )
    .unwrap();
    // Granted first, in the plugins directory's grants, then moved in.
    crate::util::grant_in(&plugins, &staging.join("recorder"));
    std::fs::rename(staging.join("recorder"), plugins.join("recorder-b")).unwrap();
    expect_said(&said, "metaclaude: plugin recorder-b added");
    let second = run_some(&mut stdin, &mut results, 5);
    std::fs::remove_dir_all(plugins.join("recorder")).unwrap();
    expect_said(&said, "metaclaude: plugin recorder removed");
    let third = run_some(&mut stdin, &mut results, 5);
    drop(stdin);
    let status = host.wait().unwrap();
    reader.join().unwrap();
    assert!(status.success(), "{status:?}");

    // Every event of an execution a plugin was loaded for reached it: queued, started
    // and finished at least (a retry would add more).
    let (a, b) = (recorded(&out_a), recorded(&out_b));
    for id in first.iter().chain(&second) {
        assert!(
            a.get(id).is_some_and(|n| *n >= 3),
            "recorder lost {id}: {a:?}"
        );
    }
    for id in second.iter().chain(&third) {
        assert!(
            b.get(id).is_some_and(|n| *n >= 3),
            "recorder-b lost {id}: {b:?}"
        );
    }
    let third: HashSet<&String> = third.iter().collect();
    assert!(
        a.keys().all(|id| !third.contains(id)),
        "the removed recorder still received events"
    );
}

/// A plugin copied into the watched directory slowly (a large component, written in
/// pieces over several watch passes, its manifest first, as `cp -r` may) is loaded once,
/// whole, when it stops changing: never loaded half-written, never reported broken.
#[test]
fn a_plugin_copied_in_slowly_is_loaded_once_when_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let source = crate::util::root().join("examples/plugins/python-sink");
    let wasm = std::fs::read(source.join("python_sink.wasm"))
        .expect("the Python example is built by cargo xtask build-plugins");
    assert!(
        wasm.len() > 4 << 20,
        "a large component: {} bytes",
        wasm.len()
    );
    let mut host = bin()
        .args(["batch", "--registry"])
        .arg(example_registry())
        .arg("--plugins")
        .arg(&plugins)
        .env("PYTHON_SINK_DIR", tmp.path().join("py-out"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = host.stdin.take().unwrap();
    let stderr = BufReader::new(host.stderr.take().unwrap());
    let (tell, said) = channel();
    let reader = std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = tell.send(line);
        }
    });
    // The operator grants it first, from a whole copy beside the plugins directory (the
    // same grants file), then the slow copy begins.
    let staged = tmp.path().join("staging/python-sink");
    std::fs::create_dir_all(&staged).unwrap();
    for file in ["plugin.toml", "python_sink.wasm"] {
        std::fs::copy(source.join(file), staged.join(file)).unwrap();
    }
    crate::util::grant_all(staged.parent().unwrap());
    let target = plugins.join("python-sink");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::copy(source.join("plugin.toml"), target.join("plugin.toml")).unwrap();
    let mut file = std::fs::File::create(target.join("python_sink.wasm")).unwrap();
    // Six pieces, 0.7 s apart: the copy spans two or three passes of the 2 s watch.
    for piece in wasm.chunks(wasm.len().div_ceil(6)) {
        file.write_all(piece).unwrap();
        file.flush().unwrap();
        std::thread::sleep(Duration::from_millis(700));
    }
    drop(file);
    expect_said(&said, "metaclaude: plugin python-sink added");
    // Two more passes: nothing more to say about it.
    std::thread::sleep(Duration::from_millis(4500));
    drop(stdin);
    let status = host.wait().unwrap();
    reader.join().unwrap();
    let rest: Vec<String> = said.try_iter().collect();
    assert!(status.success(), "{status:?}: {rest:?}");
    assert!(
        rest.iter().all(|l| !l.contains("python-sink")),
        "said more about the plugin: {rest:?}"
    );
}
