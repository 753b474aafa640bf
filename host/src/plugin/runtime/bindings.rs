//! Host-side bindings generated from `wit/`, one module per published version of
//! `metaclaude:monitor` (the current one in `wit/`, each older one kept unchanged in
//! `wit/deps/`), and in each one module per world. A version's worlds share the `types`,
//! `host` and `http` interfaces generated once in its `exporter` (the widest sink world)
//! and `notifier`.

/// `metaclaude:monitor@0.3.0`, the current version: what the default plugins and new
/// plugins are built against.
pub mod v0_3 {
    pub mod exporter {
        wasmtime::component::bindgen!({
            path: "../wit",
            world: "metaclaude:monitor/exporter@0.3.0",
        });
    }

    pub mod sink {
        wasmtime::component::bindgen!({
            path: "../wit",
            world: "metaclaude:monitor/sink@0.3.0",
            with: {
                "metaclaude:monitor/types@0.3.0": super::exporter::metaclaude::monitor0_3_0::types,
                "metaclaude:monitor/host@0.3.0": super::exporter::metaclaude::monitor0_3_0::host,
            },
        });
    }

    pub mod alert_rule {
        wasmtime::component::bindgen!({
            path: "../wit",
            world: "metaclaude:monitor/alert-rule@0.3.0",
            with: {
                "metaclaude:monitor/types@0.3.0": super::exporter::metaclaude::monitor0_3_0::types,
                "metaclaude:monitor/host@0.3.0": super::exporter::metaclaude::monitor0_3_0::host,
            },
        });
    }

    pub mod notifier {
        wasmtime::component::bindgen!({
            path: "../wit",
            world: "metaclaude:monitor/notifier@0.3.0",
            with: {
                "metaclaude:monitor/types@0.3.0": super::exporter::metaclaude::monitor0_3_0::types,
                "metaclaude:monitor/host@0.3.0": super::exporter::metaclaude::monitor0_3_0::host,
            },
        });
    }

    pub use exporter::metaclaude::monitor0_3_0::{host, types};
    pub use notifier::metaclaude::monitor0_3_0::http;
}

/// `metaclaude:monitor@0.2.0`, as published: plugins built against it still load (their
/// exporters render without being told the format).
pub mod v0_2 {
    pub mod exporter {
        wasmtime::component::bindgen!({
            path: "../wit/deps/monitor-0.2.0",
            world: "exporter",
        });
    }

    pub mod sink {
        wasmtime::component::bindgen!({
            path: "../wit/deps/monitor-0.2.0",
            world: "sink",
            with: {
                "metaclaude:monitor/types": super::exporter::metaclaude::monitor::types,
                "metaclaude:monitor/host": super::exporter::metaclaude::monitor::host,
            },
        });
    }

    pub mod alert_rule {
        wasmtime::component::bindgen!({
            path: "../wit/deps/monitor-0.2.0",
            world: "alert-rule",
            with: {
                "metaclaude:monitor/types": super::exporter::metaclaude::monitor::types,
                "metaclaude:monitor/host": super::exporter::metaclaude::monitor::host,
            },
        });
    }

    pub mod notifier {
        wasmtime::component::bindgen!({
            path: "../wit/deps/monitor-0.2.0",
            world: "notifier",
            with: {
                "metaclaude:monitor/types": super::exporter::metaclaude::monitor::types,
                "metaclaude:monitor/host": super::exporter::metaclaude::monitor::host,
            },
        });
    }

    pub use exporter::metaclaude::monitor::{host, types};
    pub use notifier::metaclaude::monitor::http;
}

/// `metaclaude:monitor@0.1.0`, as published: plugins built against it still load.
pub mod v0_1 {
    pub mod exporter {
        wasmtime::component::bindgen!({
            path: "../wit/deps/monitor-0.1.0",
            world: "exporter",
        });
    }

    pub mod sink {
        wasmtime::component::bindgen!({
            path: "../wit/deps/monitor-0.1.0",
            world: "sink",
            with: {
                "metaclaude:monitor/types": super::exporter::metaclaude::monitor::types,
                "metaclaude:monitor/host": super::exporter::metaclaude::monitor::host,
            },
        });
    }

    pub mod alert_rule {
        wasmtime::component::bindgen!({
            path: "../wit/deps/monitor-0.1.0",
            world: "alert-rule",
            with: {
                "metaclaude:monitor/types": super::exporter::metaclaude::monitor::types,
                "metaclaude:monitor/host": super::exporter::metaclaude::monitor::host,
            },
        });
    }

    pub mod notifier {
        wasmtime::component::bindgen!({
            path: "../wit/deps/monitor-0.1.0",
            world: "notifier",
            with: {
                "metaclaude:monitor/types": super::exporter::metaclaude::monitor::types,
                "metaclaude:monitor/host": super::exporter::metaclaude::monitor::host,
            },
        });
    }

    pub use exporter::metaclaude::monitor::{host, types};
    pub use notifier::metaclaude::monitor::http;
}
