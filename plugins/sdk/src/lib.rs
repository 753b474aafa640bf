//! The Rust SDK for metaclaude plugins.
//!
//! A plugin is a WebAssembly component implementing one world of the `metaclaude:monitor`
//! WIT package (`wit/monitor.wit`). Depend on this crate with the feature of your world
//! (`sink`, `exporter`, `alert-rule` or `notifier`, built against WIT 0.3.0 as published
//! in `wit/deps/monitor-0.3.0/`; `pusher`, new in 0.4.0, against `wit/`), implement
//! `Guest`, and export it:
//!
//! ```ignore
//! use metaclaude_plugin_sdk::{export_sink, sink::Guest, types::Event};
//!
//! struct Counter;
//!
//! impl Guest for Counter {
//!     fn init(_config: String) -> Result<(), String> { Ok(()) }
//!     fn handle_batch(events: Vec<Event>) -> Result<(), String> {
//!         metaclaude_plugin_sdk::info!("got {} events", events.len());
//!         Ok(())
//!     }
//!     fn flush() -> Result<(), String> { Ok(()) }
//! }
//!
//! export_sink!(Counter);
//! ```
//!
//! Build with `cargo build --release --target wasm32-wasip2`; the `.wasm` in
//! `target/wasm32-wasip2/release/` is the component to put beside a `plugin.toml`.
//!
//! [`config::Table`] reads the manifest's `[config]` table (handed to `init` as JSON).
//! It needs no world: a plugin whose logic builds natively without its component glue
//! (behind a feature of its own) depends on this crate without a world feature and
//! enables the world with its glue. Its tests take the manifest's `[config]` as the host
//! hands it over from `testing::manifest_config_json` (feature `testing`, enabled by a
//! dev-dependency only).

#[cfg(any(
    all(feature = "sink", feature = "exporter"),
    all(feature = "sink", feature = "alert-rule"),
    all(feature = "sink", feature = "notifier"),
    all(feature = "sink", feature = "pusher"),
    all(feature = "exporter", feature = "alert-rule"),
    all(feature = "exporter", feature = "notifier"),
    all(feature = "exporter", feature = "pusher"),
    all(feature = "alert-rule", feature = "notifier"),
    all(feature = "alert-rule", feature = "pusher"),
    all(feature = "notifier", feature = "pusher"),
))]
compile_error!("enable exactly one of the features sink, exporter, alert-rule, notifier, pusher");

pub mod config;
#[cfg(feature = "testing")]
pub mod testing;

#[cfg(feature = "sink")]
pub mod sink {
    wit_bindgen::generate!({
        path: "../../wit/deps/monitor-0.3.0",
        world: "sink",
        pub_export_macro: true,
        export_macro_name: "export_sink",
        default_bindings_module: "metaclaude_plugin_sdk::sink",
    });
}
#[cfg(feature = "sink")]
pub use sink as world;
#[cfg(feature = "sink")]
pub use sink::export_sink;

#[cfg(feature = "exporter")]
pub mod exporter {
    wit_bindgen::generate!({
        path: "../../wit/deps/monitor-0.3.0",
        world: "exporter",
        pub_export_macro: true,
        export_macro_name: "export_exporter",
        default_bindings_module: "metaclaude_plugin_sdk::exporter",
    });
}
#[cfg(feature = "exporter")]
pub use exporter as world;
#[cfg(feature = "exporter")]
pub use exporter::export_exporter;

#[cfg(feature = "alert-rule")]
pub mod alert_rule {
    wit_bindgen::generate!({
        path: "../../wit/deps/monitor-0.3.0",
        world: "alert-rule",
        pub_export_macro: true,
        export_macro_name: "export_alert_rule",
        default_bindings_module: "metaclaude_plugin_sdk::alert_rule",
    });
}
#[cfg(feature = "alert-rule")]
pub use alert_rule as world;
#[cfg(feature = "alert-rule")]
pub use alert_rule::export_alert_rule;

#[cfg(feature = "notifier")]
pub mod notifier {
    wit_bindgen::generate!({
        path: "../../wit/deps/monitor-0.3.0",
        world: "notifier",
        pub_export_macro: true,
        export_macro_name: "export_notifier",
        default_bindings_module: "metaclaude_plugin_sdk::notifier",
    });
}
#[cfg(feature = "notifier")]
pub use notifier as world;
#[cfg(feature = "notifier")]
pub use notifier::export_notifier;

/// A sink the host ticks, sending elsewhere (WIT 0.4.0: remote write, OTLP).
#[cfg(feature = "pusher")]
pub mod pusher {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "pusher",
        pub_export_macro: true,
        export_macro_name: "export_pusher",
        default_bindings_module: "metaclaude_plugin_sdk::pusher",
    });
}
#[cfg(feature = "pusher")]
pub use pusher as world;
#[cfg(feature = "pusher")]
pub use pusher::export_pusher;

/// Logging into the host, and its clock.
#[cfg(any(
    feature = "sink",
    feature = "exporter",
    feature = "alert-rule",
    feature = "notifier"
))]
pub use world::metaclaude::monitor::host;
/// Outgoing HTTP to the destinations the manifest grants (notifiers only).
#[cfg(feature = "notifier")]
pub use world::metaclaude::monitor::http;
/// The event model: `Event`, `ExecutionResult`, `Alert`, ...
#[cfg(any(
    feature = "sink",
    feature = "exporter",
    feature = "alert-rule",
    feature = "notifier"
))]
pub use world::metaclaude::monitor::types;

/// The pusher world's interfaces (WIT 0.4.0): the same host, event model and HTTP, and
/// `delivery`, where it reports its figures per destination.
#[cfg(feature = "pusher")]
pub use world::metaclaude::monitor0_4_0::{delivery, host, http, types};

#[cfg(any(
    feature = "sink",
    feature = "exporter",
    feature = "alert-rule",
    feature = "notifier",
    feature = "pusher"
))]
mod events;
#[cfg(any(
    feature = "sink",
    feature = "exporter",
    feature = "alert-rule",
    feature = "notifier",
    feature = "pusher"
))]
pub use events::{category_name, finished, kind_name, seconds, severity_name};

/// Logs through the host if the host keeps messages at this level (the message is only
/// formatted when it does).
#[macro_export]
macro_rules! log {
    ($level:expr, $($arg:tt)*) => {{
        let level = $level;
        if $crate::host::log_enabled(level) {
            $crate::host::log(level, &format!($($arg)*));
        }
    }};
}
#[macro_export]
macro_rules! debug { ($($arg:tt)*) => { $crate::log!($crate::host::Level::Debug, $($arg)*) }; }
#[macro_export]
macro_rules! info { ($($arg:tt)*) => { $crate::log!($crate::host::Level::Info, $($arg)*) }; }
#[macro_export]
macro_rules! warn { ($($arg:tt)*) => { $crate::log!($crate::host::Level::Warn, $($arg)*) }; }
#[macro_export]
macro_rules! error { ($($arg:tt)*) => { $crate::log!($crate::host::Level::Error, $($arg)*) }; }
