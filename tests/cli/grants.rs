//! The operator's grants: a plugin dropped into the plugins directory runs nothing until
//! the operator grants what it asks for (`metaclaude plugins grant`), never more than
//! that, and stops when the grant is revoked. Native code is granted by its digest and is
//! never loaded by `plugins list` or `check`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc::channel;
use std::time::Duration;

use metaclaude::plugin::grants::{Grants, FILE_NAME};

use crate::plugins::component;
use crate::util::{bin, example_registry, root, succeed, wait_until};

/// `metaclaude ARGS...` with stdout and stderr together, for messages.
fn said(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Asserts that `out` exited with `code` and said `text` (on stdout or stderr).
fn expect(out: &Output, code: i32, text: &str) {
    let all = said(out);
    assert_eq!(out.status.code(), Some(code), "{all}");
    assert!(all.contains(text), "expected {text:?} in:\n{all}");
}

fn metaclaude(args: &[&str], plugins: &Path) -> Output {
    bin()
        .args(args)
        .arg("--plugins")
        .arg(plugins)
        .output()
        .unwrap()
}

/// `metaclaude plugins grant NAMES... --yes --plugins DIR`.
fn grant(plugins: &Path, names: &[&str]) -> Output {
    bin()
        .args(["plugins", "grant"])
        .args(names)
        .args(["--yes", "--plugins"])
        .arg(plugins)
        .output()
        .unwrap()
}

/// A sink (the recording fixture) that asks to write `out`, not granted.
fn recorder(plugins: &Path, out: &Path, extra: &str) -> PathBuf {
    let folder = plugins.join("recorder");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(
        folder.join("plugin.toml"),
        format!(
            "name = \"recorder\"\nversion = \"1.0.0\"\nkind = \"sink\"\ncomponent = \"{}\"\n{extra}\n\
             [config]\nmode = \"record\"\n\
             [capabilities]\ndirs = [{{ host = \"{}\", guest = \"/out\", mode = \"rw\", create = true }}]\n",
            component("fixture_sink.wasm").display(),
            out.display()
        ),
    )
    .unwrap();
    folder
}

/// A native plugin whose library's constructor appends to `marker` the moment it is
/// loaded: the code a `dlopen` runs before anything else can be checked.
fn native_marker(plugins: &Path, build: &Path, marker: &Path) -> PathBuf {
    std::fs::create_dir_all(build).unwrap();
    let source = build.join("marker.c");
    std::fs::write(
        &source,
        format!(
            "#include <stdio.h>\n\
             __attribute__((constructor)) static void mark(void) {{\n\
               FILE *f = fopen(\"{}\", \"a\");\n\
               if (f) {{ fputs(\"constructor ran\\n\", f); fclose(f); }}\n\
             }}\n",
            marker.display()
        ),
    )
    .unwrap();
    let folder = plugins.join("native-marker");
    std::fs::create_dir_all(&folder).unwrap();
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(folder.join("libmarker.so"))
        .arg(&source)
        .status()
        .expect("cc (gcc) builds the native test library");
    assert!(status.success());
    std::fs::write(
        folder.join("plugin.toml"),
        "name = \"native-marker\"\nversion = \"1.0.0\"\nkind = \"sink\"\n\
         native = \"libmarker.so\"\ntrusted = true\n",
    )
    .unwrap();
    folder
}

fn run_hello(plugins: &Path) -> Output {
    bin()
        .args(["run", "hello", "--registry"])
        .arg(example_registry())
        .arg("--plugins")
        .arg(plugins)
        .output()
        .unwrap()
}

/// Each grant of a grants file, without the date it was given.
fn undated(file: &Path) -> Grants {
    let mut g = Grants::parse(&std::fs::read_to_string(file).unwrap(), file).unwrap();
    for grant in g.plugins.values_mut() {
        grant.granted = None;
    }
    g.file = PathBuf::new();
    g
}

/// The default set is installed with `plugins/default-grants.toml` beside it: exactly
/// what its plugins ask for, no more (what `plugins grant --all --yes` writes for them).
#[test]
fn the_default_set_is_granted_exactly_what_it_asks_for() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    let installed = root().join("target/debug/plugins");
    for entry in std::fs::read_dir(&installed).unwrap().flatten() {
        let to = plugins.join(entry.file_name());
        std::fs::create_dir_all(&to).unwrap();
        for file in std::fs::read_dir(entry.path()).unwrap().flatten() {
            std::fs::copy(file.path(), to.join(file.file_name())).unwrap();
        }
    }
    let out = succeed(
        bin()
            .args(["plugins", "grant", "--all", "--yes", "--plugins"])
            .arg(&plugins),
    );
    assert!(said(&out).contains("log-sink: granted"), "{}", said(&out));
    let shipped = undated(&root().join("plugins/default-grants.toml"));
    assert_eq!(undated(&tmp.path().join(FILE_NAME)), shipped);
    assert_eq!(
        undated(&root().join("target/debug").join(FILE_NAME)),
        shipped,
        "cargo xtask build-plugins installs plugins/default-grants.toml beside the default set"
    );
    // And with it, the default set loads.
    let out = succeed(bin().args(["plugins", "list"]));
    assert!(!said(&out).contains("FAILED"), "{}", said(&out));
}

/// A plugin folder dropped in runs nothing until the operator grants it: not the WASM
/// plugin asking for a host directory (the directory is not even created), and not the
/// native library (its constructor never runs): not in `run`, not in `plugins list`,
/// not in `plugins check`. Each says what it asks for and what to run. Once granted,
/// both load (the marker proves the test would have seen a load).
#[test]
fn a_dropped_in_plugin_runs_nothing_until_the_operator_grants_it() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    let out_dir = tmp.path().join("wanted");
    let marker = tmp.path().join("marker");
    let recorder = recorder(&plugins, &out_dir, "");
    let native = native_marker(&plugins, &tmp.path().join("build"), &marker);

    let list = metaclaude(&["plugins", "list"], &plugins);
    assert_eq!(list.status.code(), Some(1), "{}", said(&list));
    let text = said(&list);
    assert!(
        text.contains("plugin recorder (")
            && text.contains("is not started: the operator has not granted it anything")
            && text.contains(&format!("read-write directory {}", out_dir.display()))
            && text.contains(&format!(
                "run: metaclaude plugins grant recorder --plugins {}",
                plugins.display()
            )),
        "{text}"
    );
    assert!(
        text.contains("native library, inspected (plugins list never loads native code)")
            && text.contains("not granted: NATIVE CODE"),
        "{text}"
    );

    let check = bin()
        .args(["plugins", "check"])
        .arg(&native)
        .output()
        .unwrap();
    expect(&check, 1, "never runs native code");
    let check = bin()
        .args(["plugins", "check"])
        .arg(&recorder)
        .output()
        .unwrap();
    expect(&check, 1, "NOT GRANTED what it asks for, so none of it ran");

    let run = run_hello(&plugins);
    assert!(run.status.success(), "{}", said(&run));
    assert!(
        said(&run).contains("warning: plugin recorder (")
            && said(&run).contains("warning: plugin native-marker ("),
        "{}",
        said(&run)
    );
    assert!(!marker.exists(), "the native library was loaded ungranted");
    assert!(!out_dir.exists(), "the ungranted directory was created");

    // Granted: both load.
    let grant = bin()
        .args([
            "plugins",
            "grant",
            "recorder",
            "native-marker",
            "--yes",
            "--plugins",
        ])
        .arg(&plugins)
        .output()
        .unwrap();
    assert!(grant.status.success(), "{}", said(&grant));
    let text = said(&grant);
    assert!(
        text.contains("NATIVE CODE, unsandboxed inside the host")
            && text.contains("recorder: granted"),
        "{text}"
    );
    let run = run_hello(&plugins);
    assert!(run.status.success(), "{}", said(&run));
    assert!(out_dir.is_dir(), "{}", said(&run));
    if crate::util::exe_is_static() {
        // The static executable has no dynamic loader: it says so, naming the library
        // and the build that loads it, and runs the rest.
        assert!(
            said(&run).contains("plugin native-marker (")
                && said(&run).contains(
                    "libmarker.so: this metaclaude is the static executable (cargo xtask build-static)"
                )
                && said(&run).contains("cargo build --release -p metaclaude-host"),
            "{}",
            said(&run)
        );
        assert!(!marker.exists(), "the static executable loaded a library");
        return;
    }
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap(),
        "constructor ran\n",
        "the granted library is loaded (and, not being a plugin, refused after): {}",
        said(&run)
    );
    // A library changed since it was granted is not loaded again.
    std::fs::remove_file(&marker).unwrap();
    let mut lib = std::fs::OpenOptions::new()
        .append(true)
        .open(native.join("libmarker.so"))
        .unwrap();
    lib.write_all(b"\0changed").unwrap();
    let run = run_hello(&plugins);
    assert!(
        said(&run).contains("plugin native-marker (") && said(&run).contains("all it asks for"),
        "{}",
        said(&run)
    );
    assert!(!marker.exists(), "a changed library was loaded");
}

/// What a plugin asks for beyond its grant keeps it from starting, naming just that:
/// more memory, or a variable of the host's environment its config would read (and
/// could send out). `plugins grant` shows what is new.
#[test]
fn a_plugin_asking_for_more_than_its_grant_does_not_start() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    let out_dir = tmp.path().join("out");
    recorder(&plugins, &out_dir, "");
    let granted = grant(&plugins, &["recorder"]);
    assert!(granted.status.success(), "{}", said(&granted));
    succeed(bin().args(["plugins", "list", "--plugins"]).arg(&plugins));
    recorder(
        &plugins,
        &out_dir,
        "[limits]\nmemory_mb = 512\n[filter]\nscripts = [\"${METACLAUDE_TEST_SECRET:-hello}\"]",
    );
    let list = metaclaude(&["plugins", "list"], &plugins);
    let text = said(&list);
    assert_eq!(list.status.code(), Some(1), "{text}");
    assert!(
        text.contains("the operator has not granted all it asks for:\n    - the environment variable METACLAUDE_TEST_SECRET\n    - up to 512 MiB of memory\n"),
        "{text}"
    );
    let text = said(&grant(&plugins, &["recorder"]));
    assert!(
        text.contains("- up to 512 MiB of memory   (NEW)")
            && text.contains(&format!("- read-write directory {}\n", out_dir.display())),
        "{text}"
    );
    succeed(bin().args(["plugins", "list", "--plugins"]).arg(&plugins));
}

/// No grant lets a plugin write the grants file or the plugins directory: asking for
/// the directory that holds them cannot be granted, and the plugin never starts.
#[test]
fn no_grant_lets_a_plugin_write_its_own_grants() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    recorder(&plugins, tmp.path(), "");
    let refused = grant(&plugins, &["recorder"]);
    assert_eq!(refused.status.code(), Some(2), "{}", said(&refused));
    assert!(
        said(&refused).contains("which no plugin may write")
            && said(&refused).contains("no grant can give what it asks for"),
        "{}",
        said(&refused)
    );
    assert!(!tmp.path().join(FILE_NAME).exists());
    // Written by hand, the grant still does not let it start.
    std::fs::write(
        tmp.path().join(FILE_NAME),
        format!(
            "version = 1\n[plugins.recorder]\ndirs = [{{ host = \"{}\", mode = \"rw\" }}]\n",
            tmp.path().display()
        ),
    )
    .unwrap();
    let list = metaclaude(&["plugins", "list"], &plugins);
    expect(&list, 1, "which no plugin may write");
}

/// A grants file others can change is no decision of the operator's: refused, with the
/// command that fixes it. `plugins grant` without a terminal needs `--yes`.
#[test]
fn grants_are_the_operators_alone() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    recorder(&plugins, &tmp.path().join("out"), "");
    let asked = bin()
        .args(["plugins", "grant", "recorder", "--plugins"])
        .arg(&plugins)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    expect(&asked, 2, "run again with --yes");
    let granted = grant(&plugins, &["recorder"]);
    assert!(granted.status.success(), "{}", said(&granted));
    let file = tmp.path().join(FILE_NAME);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the grants file is private");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
    let list = metaclaude(&["plugins", "list"], &plugins);
    expect(&list, 1, &format!("chmod 600 {}", file.display()));
}

/// A grant revoked while a host runs stops the plugin at the host's next look at the
/// plugins directory; granted again, it starts again.
#[test]
fn a_revoked_grant_stops_a_running_plugin() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    let out_dir = tmp.path().join("out");
    recorder(&plugins, &out_dir, "");
    let granted = grant(&plugins, &["recorder"]);
    assert!(granted.status.success(), "{}", said(&granted));
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
    let (tell, heard) = channel();
    let stderr = BufReader::new(host.stderr.take().unwrap());
    let reader = std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = tell.send(line);
        }
    });
    let mut run_one = || {
        writeln!(stdin, "{{\"script_id\": \"noop\"}}").unwrap();
        let line = results.next().unwrap().unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        v["execution_id"].as_str().unwrap().to_string()
    };
    let recorded = |id: &str| {
        std::fs::read_dir(&out_dir)
            .into_iter()
            .flatten()
            .flatten()
            .any(|f| std::fs::read_to_string(f.path()).is_ok_and(|t| t.contains(id)))
    };
    let before = run_one();
    wait_until(
        "the recorder records an execution",
        Duration::from_secs(60),
        || recorded(&before),
        String::new,
    );
    succeed(
        bin()
            .args(["plugins", "revoke", "recorder", "--plugins"])
            .arg(&plugins),
    );
    let expect = |line: &str| loop {
        match heard.recv_timeout(Duration::from_secs(60)) {
            Ok(l) if l.contains(line) => return,
            Ok(_) => {}
            Err(e) => panic!("the host never said {line:?}: {e}"),
        }
    };
    expect("metaclaude: plugin recorder stopped: its grant was revoked");
    let after = run_one();
    let granted = grant(&plugins, &["recorder"]);
    assert!(granted.status.success(), "{}", said(&granted));
    expect("metaclaude: plugin recorder added");
    let again = run_one();
    wait_until(
        "the recorder, granted again, records",
        Duration::from_secs(60),
        || recorded(&again),
        String::new,
    );
    drop(stdin);
    assert!(host.wait().unwrap().success());
    reader.join().unwrap();
    assert!(
        !recorded(&after),
        "the revoked plugin still received events"
    );
}

/// Each bad grants file in `bad_grants/` beside the exact problems the host names.
#[test]
fn bad_grants_files_give_their_golden_errors() {
    let dir = root().join("tests/cli/bad_grants");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let err = Grants::parse(&text, Path::new(&name))
            .unwrap_err()
            .to_string();
        let golden = path.with_extension("expected");
        let want = std::fs::read_to_string(&golden).unwrap_or_default();
        crate::util::assert_golden(&golden, &want, &err, &name);
        checked += 1;
    }
    assert!(checked >= 4, "only {checked} bad grants files");
}
