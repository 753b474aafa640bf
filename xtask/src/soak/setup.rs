//! What the soak runs on: a temporary directory (a copy of the example registry, a
//! plugins folder, the execution log) and the `metaclaude serve` process.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// The server's `--concurrency` (the default on 2 cores, given so that every machine
/// runs the same soak).
pub const CONCURRENCY: u64 = 8;
/// The plugin the soak makes hostile and good again.
pub const HOSTILE: &str = "hostile";
/// Failures within `failure_window_s` before the hostile plugin is quarantined.
pub const HOSTILE_MAX_FAILURES: u32 = 3;

/// The soak's temporary directory.
pub struct SoakDir {
    pub path: PathBuf,
    pub registry: PathBuf,
    pub plugins: PathBuf,
    pub logs: PathBuf,
    /// Where the recorder writes `<execution_id> <kind>` lines.
    pub recorder_out: PathBuf,
    hostile_out: PathBuf,
}

impl SoakDir {
    /// Makes the directory: the example registry copied (scripts keep their modes), the
    /// default log sink (writing into `logs/`), a recorder and the hostile plugin (both
    /// the fixture sink), each folder with its own copy of its component.
    pub fn create(root: &Path) -> Result<SoakDir> {
        let path = std::env::temp_dir().join(format!("metaclaude-soak-{}", std::process::id()));
        if path.exists() {
            std::fs::remove_dir_all(&path)?;
        }
        std::fs::create_dir_all(&path)?;
        let dir = SoakDir {
            registry: path.join("registry/registry.json"),
            plugins: path.join("plugins"),
            logs: path.join("logs"),
            recorder_out: path.join("recorder-out"),
            hostile_out: path.join("hostile-out"),
            path,
        };
        crate::run(
            Command::new("cp")
                .arg("-a")
                .arg(root.join("examples/registry"))
                .arg(dir.path.join("registry")),
        )?;
        for d in [&dir.plugins, &dir.logs, &dir.recorder_out, &dir.hostile_out] {
            std::fs::create_dir_all(d)?;
        }
        let log_sink = root.join("target/debug/plugins/log-sink");
        let fixture = root.join("plugins/target/wasm32-wasip2/release/fixture_sink.wasm");
        for (name, from, file) in [
            ("log-sink", log_sink.join("log_sink.wasm"), "log_sink.wasm"),
            ("recorder", fixture.clone(), "fixture_sink.wasm"),
            (HOSTILE, fixture, "fixture_sink.wasm"),
        ] {
            let folder = dir.plugins.join(name);
            std::fs::create_dir_all(&folder)?;
            std::fs::copy(&from, folder.join(file))
                .with_context(|| format!("copying {}", from.display()))?;
        }
        std::fs::copy(
            log_sink.join("plugin.toml"),
            dir.plugins.join("log-sink/plugin.toml"),
        )?;
        dir.write_recorder(0)?;
        dir.write_hostile(true, 0)?;
        Ok(dir)
    }

    /// Grants every plugin of the folder what its manifest asks, as an operator does
    /// (`metaclaude plugins grant --all --yes`, into `grants.toml` beside the folder, the
    /// server's default), with the log directory the server gets: a plugin nobody granted
    /// is not started, and the soak would run without its log and recorder.
    pub fn grant(&self, bin: &Path) -> Result<()> {
        let out = Command::new(bin)
            .args(["plugins", "grant", "--all", "--yes", "--plugins"])
            .arg(&self.plugins)
            .env("METACLAUDE_LOG_DIR", &self.logs)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("cannot run {}", bin.display()))?;
        if !out.status.success() {
            bail!(
                "metaclaude plugins grant --all failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// Replaces a file at once (written beside the soak's files, then renamed), so no
    /// watcher ever reads half of it.
    fn replace(&self, target: &Path, text: &str) -> Result<()> {
        let tmp = self.path.join(".replacing");
        std::fs::File::create(&tmp)?.write_all(text.as_bytes())?;
        std::fs::rename(&tmp, target).with_context(|| format!("replacing {}", target.display()))
    }

    fn fixture_manifest(name: &str, mode: &str, out: &Path, revision: u64) -> String {
        format!(
            "# written by cargo xtask soak, revision {revision}\n\
             name = \"{name}\"\nversion = \"1.0.0\"\nkind = \"sink\"\n\
             component = \"fixture_sink.wasm\"\nwit = \"0.1.0\"\n\
             [config]\nmode = \"{mode}\"\n\
             [capabilities]\ndirs = [{{ host = \"{}\", guest = \"/out\", mode = \"rw\" }}]\n\
             [limits]\nfailure_policy = \"reload\"\nmax_failures = {HOSTILE_MAX_FAILURES}\nfailure_window_s = 60\n",
            out.display()
        )
    }

    /// The recorder's manifest; a new `revision` changes the file, so it is reloaded.
    pub fn write_recorder(&self, revision: u64) -> Result<()> {
        let text = Self::fixture_manifest("recorder", "record", &self.recorder_out, revision);
        self.replace(&self.plugins.join("recorder/plugin.toml"), &text)
    }

    /// The hostile plugin's manifest: `mode = "trap"` (it panics on every batch, so it is
    /// quarantined after [`HOSTILE_MAX_FAILURES`]) or the good `mode = "record"`.
    pub fn write_hostile(&self, hostile: bool, revision: u64) -> Result<()> {
        let mode = if hostile { "trap" } else { "record" };
        let text = Self::fixture_manifest(HOSTILE, mode, &self.hostile_out, revision);
        self.replace(&self.plugins.join(HOSTILE).join("plugin.toml"), &text)
    }

    /// The registry with `noop`'s description naming `revision`: a changed text, so the
    /// server's watch (or `POST /api/v1/reload`) takes it.
    pub fn write_registry(&self, revision: u64) -> Result<()> {
        let mut registry: Value = serde_json::from_str(&std::fs::read_to_string(&self.registry)?)?;
        let scripts = registry["scripts"]
            .as_array_mut()
            .context("registry without scripts")?;
        let noop = scripts
            .iter_mut()
            .find(|s| s["id"] == "noop")
            .context("the example registry has no `noop`")?;
        noop["description"] = Value::from(format!(
            "Does nothing: the per-execution overhead benchmark runs it (soak revision {revision})"
        ));
        let text = serde_json::to_string_pretty(&registry)? + "\n";
        self.replace(&self.registry, &text)
    }

    pub fn remove(&self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The `metaclaude serve` under test.
pub struct Server {
    /// The server, or heaptrack's script running it (`--heaptrack`).
    child: Option<Child>,
    /// The server's own pid.
    pub pid: u32,
    /// `HOST:PORT` of the HTTP listener and of the separate WebSocket listener.
    pub http: String,
    pub ws: String,
    pub stderr: PathBuf,
}

impl Server {
    /// Starts `metaclaude serve` on free loopback ports (under heaptrack, recording to
    /// `heaptrack`, when given) and waits (bounded) for the address it prints on its first
    /// stdout line. Its stderr goes to `server.stderr` in the soak's directory, the rest of
    /// its stdout to `server.stdout`.
    pub fn start(
        bin: &Path,
        dir: &SoakDir,
        keep_recent: u64,
        heaptrack: Option<&Path>,
    ) -> Result<Server> {
        let stderr = dir.path.join("server.stderr");
        let mut command = match heaptrack {
            Some(base) => super::heap::command(bin, base)?,
            None => Command::new(bin),
        };
        let mut child = command
            .args(["serve", "--registry"])
            .arg(&dir.registry)
            .arg("--plugins")
            .arg(&dir.plugins)
            .args(["--http-port", "0", "--ws-port", "0", "--keep-recent"])
            .arg(keep_recent.to_string())
            .args(["--concurrency", &CONCURRENCY.to_string()])
            .env("METACLAUDE_LOG_DIR", &dir.logs)
            .env("METACLAUDE_CACHE_DIR", dir.path.join("cache"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr)?)
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let rest = dir.path.join("server.stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let Ok(mut out) = std::fs::File::create(rest) else {
                return;
            };
            let mut tx = Some(tx);
            // heaptrack's own lines come first.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("listening on http://") {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(line.clone());
                    }
                }
                let _ = writeln!(out, "{line}");
            }
        });
        let pid = match heaptrack {
            Some(_) => super::heap::server_pid(child.id(), Duration::from_secs(30))?,
            None => child.id(),
        };
        let mut server = Server {
            child: Some(child),
            pid,
            http: String::new(),
            ws: String::new(),
            stderr,
        };
        let Ok(line) = rx.recv_timeout(Duration::from_secs(300)) else {
            bail!(
                "metaclaude serve printed no address; its stderr:\n{}",
                std::fs::read_to_string(&server.stderr).unwrap_or_default()
            );
        };
        let after = |marker: &str| {
            line.split(marker)
                .nth(1)
                .and_then(|rest| rest.split([' ', '/', ')']).next())
                .map(str::to_string)
        };
        server.http = after("listening on http://").context("no http address")?;
        server.ws = after(" and ws://").context("no separate WebSocket address")?;
        Ok(server)
    }

    /// SIGTERM: the graceful shutdown.
    pub fn terminate(&self) -> Result<()> {
        crate::run(Command::new("kill").args(["-TERM", &self.pid.to_string()]))
    }

    /// Waits for the exit, at most `limit` (then kills it and fails).
    pub fn wait(&mut self, limit: Duration) -> Result<ExitStatus> {
        let mut child = self.child.take().context("already waited for")?;
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("metaclaude serve did not exit within {limit:?} of SIGTERM; killed");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if child.id() != self.pid {
                let _ = Command::new("kill")
                    .args(["-KILL", &self.pid.to_string()])
                    .status();
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
