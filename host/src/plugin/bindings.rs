//! Host-side bindings generated from `wit/`: one module per world, sharing the `types`,
//! `host` and `http` interfaces generated once in `exporter` (the widest sink world).

pub mod exporter {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "exporter",
    });
}

pub mod sink {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "sink",
        with: {
            "metaclaude:monitor/types": crate::plugin::bindings::exporter::metaclaude::monitor::types,
            "metaclaude:monitor/host": crate::plugin::bindings::exporter::metaclaude::monitor::host,
        },
    });
}

pub mod alert_rule {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "alert-rule",
        with: {
            "metaclaude:monitor/types": crate::plugin::bindings::exporter::metaclaude::monitor::types,
            "metaclaude:monitor/host": crate::plugin::bindings::exporter::metaclaude::monitor::host,
        },
    });
}

pub mod notifier {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "notifier",
        with: {
            "metaclaude:monitor/types": crate::plugin::bindings::exporter::metaclaude::monitor::types,
            "metaclaude:monitor/host": crate::plugin::bindings::exporter::metaclaude::monitor::host,
        },
    });
}

pub use exporter::metaclaude::monitor::{host, types};
pub use notifier::metaclaude::monitor::http;
