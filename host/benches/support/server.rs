//! A release `metaclaude serve` for the benches (`serve`, `dashboard`): the example
//! registry, no plugins, a free port, no second WebSocket port, its own log directory;
//! killed when dropped.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub fn registry() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/registry/registry.json")
}

pub struct Server {
    child: Child,
    /// `host:port`.
    pub addr: String,
    _logs: tempfile::TempDir,
}

impl Server {
    /// `metaclaude serve --no-plugins --http-port 0 --no-ws-port --registry EXAMPLES ARGS`.
    pub fn start(args: &[&str]) -> Server {
        let logs = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_metaclaude"))
            .env_remove("RUST_LOG")
            .env("METACLAUDE_LOG_DIR", logs.path())
            .args(["serve", "--no-plugins", "--http-port", "0", "--no-ws-port"])
            .arg("--registry")
            .arg(registry())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start metaclaude serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .split("listening on http://")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .expect("the server prints its address")
            .to_string();
        Server {
            child,
            addr,
            _logs: logs,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The server's resident memory, in KiB.
    pub fn rss_kb(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// CPU seconds the server has used (user + system).
    pub fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = after.split(' ').collect();
        let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
        // SAFETY: sysconf only reads a system constant.
        ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
