//! What the plugin runtime's tests share: the example native sink, a plain event, and
//! hosts whose operator granted what the test's plugins ask for.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::model::{ExecutionEvent, ExecutionIdentity, LifecycleKind};
use crate::plugin::grants::admission::{grant_requests, GrantSource};
use crate::plugin::manifest::process_env;
use crate::plugin::PluginHost;

/// A host whose operator granted every plugin folder now in `dir` what it asks for.
pub fn granting(dir: &Path) -> PluginHost {
    let host = PluginHost::new(None).unwrap();
    grant(&host, dir);
    host
}

/// The operator grants every plugin folder now in `dir` what it asks for.
pub fn grant(host: &PluginHost, dir: &Path) {
    host.set_grants(GrantSource::Given(
        grant_requests(dir, &process_env).unwrap(),
    ));
}

/// The example native sink, built on first use.
pub fn example() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let target = root.join("plugins/target/native");
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--quiet", "--release", "--manifest-path"])
            .arg(root.join("plugins/native/noop-sink/Cargo.toml"))
            .arg("--target-dir")
            .arg(&target)
            .env_remove("CARGO_TARGET_DIR")
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the native example sink failed");
        target.join("release/libnative_noop_sink.so")
    })
}

/// A `queued` event for execution number `i`.
pub fn event(i: u32) -> ExecutionEvent {
    ExecutionIdentity {
        execution_id: format!("01NATIVE{i:018}"),
        script_id: "hello".into(),
        ..ExecutionIdentity::default()
    }
    .event(LifecycleKind::Queued, 0)
}
