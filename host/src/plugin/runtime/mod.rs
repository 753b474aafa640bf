//! What a worker runs: a sandboxed WebAssembly instance or a trusted native one, behind
//! one set of calls in the host's own types, so the worker's queue, batching and failure
//! policy are the same for both.

mod bindings;
mod cache_pruning;
pub(in crate::plugin) mod convert;
pub mod engine;
mod file_append;
pub(in crate::plugin) mod instance;
pub(in crate::plugin) mod lifting;
mod limiter;
mod lowering;
pub mod native;
mod stderr;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use metaclaude_formats::prometheus::Format;

use crate::model::{Alert, Threshold};
use crate::plugin::delivery::health::PluginStats;
use crate::plugin::delivery::Delivery;
use crate::plugin::manifest::Manifest;
use crate::plugin::runtime::instance::{CallError, Instance, Prepared};
use crate::plugin::runtime::lifting::Rendered;
use crate::plugin::runtime::native::{NativeInstance, NativeLibrary};

/// How to start a fresh instance of a plugin (after a failure, or the first time).
pub enum Runtime {
    /// A component, pre-linked once; each instance gets its own `Store`.
    Wasm {
        /// The host's engine, which the component was compiled for.
        engine: wasmtime::Engine,
        /// The component linked against the host's imports, its exports checked.
        prepared: Prepared,
    },
    /// A loaded shared library; each instance is a fresh `init`.
    Native(Arc<NativeLibrary>),
}

impl Runtime {
    /// A fresh instance; a WebAssembly one publishes its linear memory's size and its
    /// delivery reports in `stats`.
    pub fn start(
        &self,
        manifest: &Manifest,
        name: Arc<str>,
        stats: &PluginStats,
    ) -> Result<Live, CallError> {
        match self {
            Runtime::Wasm { engine, prepared } => {
                stats.destinations.begin_instance();
                Instance::start(
                    engine,
                    prepared,
                    manifest,
                    name,
                    stats.memory_bytes.clone(),
                    stats.destinations.clone(),
                )
                .map(Live::Wasm)
            }
            Runtime::Native(library) => library
                .start(&manifest.config.to_string())
                .map(Live::Native),
        }
    }
}

/// A live instance of either kind.
pub enum Live {
    /// A sandboxed instance in its own `Store`.
    Wasm(Instance),
    /// A native library's `init`ed state.
    Native(NativeInstance),
}

impl Live {
    /// Delivers a batch, each event's record in `shape` (what the manifest asks for:
    /// `event_json`, `event_output`, `event_record`). Native plugins always get the JSON:
    /// it is how they see events.
    pub fn handle_batch(
        &mut self,
        batch: &[Arc<Delivery>],
        shape: convert::Shape,
    ) -> Result<Vec<Alert>, CallError> {
        match self {
            Live::Wasm(instance) => instance.handle_batch(batch, shape),
            Live::Native(instance) => {
                // Made at most once per event, shared with every other plugin wanting it.
                let events: Vec<&str> = batch.iter().map(|d| d.json()).collect();
                instance.handle_batch(&events)
            }
        }
    }

    /// An alert rule's or a pusher's clock tick at `now`: the alerts a rule returns.
    pub fn tick(&mut self, now: DateTime<Utc>) -> Result<Vec<Alert>, CallError> {
        match self {
            Live::Wasm(instance) => instance.tick(now),
            Live::Native(instance) => instance.tick(now),
        }
    }

    /// Hands a notifier alerts to deliver.
    pub fn notify(&mut self, alerts: &[Alert]) -> Result<(), CallError> {
        match self {
            Live::Wasm(instance) => instance.notify(alerts),
            Live::Native(instance) => instance.notify(alerts),
        }
    }

    /// Changes an alert rule's threshold `name` to `value`; what changed, for people.
    /// Native rules cannot (a refusal).
    pub fn set_threshold(&mut self, name: &str, value: f64) -> Result<String, CallError> {
        match self {
            Live::Wasm(instance) => instance.set_threshold(name, value),
            Live::Native(_) => Err(CallError::Refused(
                "a native alert rule cannot change thresholds while it runs: change its manifest's [config]".into(),
            )),
        }
    }

    /// An alert rule's thresholds in force (none for a native plugin).
    pub fn thresholds(&mut self) -> Result<Vec<Threshold>, CallError> {
        match self {
            Live::Wasm(instance) => instance.thresholds(),
            Live::Native(_) => Ok(Vec::new()),
        }
    }

    /// Asks the plugin to make what it holds durable.
    pub fn flush(&mut self) -> Result<(), CallError> {
        match self {
            Live::Wasm(instance) => instance.flush(),
            Live::Native(instance) => instance.flush(),
        }
    }

    /// An exporter's state as an exposition, asked in `format`: an exporter built
    /// against WIT 0.3.0 is told the format; an older one and a native one render what
    /// they render (an OpenMetrics text ends with `# EOF`).
    pub fn render(&mut self, format: Format) -> Result<Rendered, CallError> {
        match self {
            Live::Wasm(instance) => instance.render(format),
            Live::Native(instance) => instance.render().map(Rendered::from),
        }
    }
}
