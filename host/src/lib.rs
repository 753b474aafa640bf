//! metaclaude: run and measure scripts, and stream every execution to plugins.
//!
//! The map of the code is in `ARCHITECTURE.md` at the workspace root. In short:
//! [`registry`] reads and validates `registry.json`; [`executor`] spawns, limits, measures,
//! classifies and retries; [`model`] is the one event model everything serialises.
//!
//! The feature `runtime` (on by default) adds everything that runs plugins and serves:
//! the plugin runtime (wasmtime), `app`, `batch`, `replay` and `serve`. Without it the
//! library is its parsers and models, which is how the fuzz targets build it. A parser of
//! outside input belongs in a module outside `runtime`, so that it can be fuzzed.

#![warn(missing_docs)]

pub mod alerting;
// documented after the logs/batch/serve error work merges
#[allow(missing_docs)]
#[cfg(feature = "runtime")]
pub mod app;
// documented after the logs/batch/serve error work merges
#[allow(missing_docs)]
#[cfg(feature = "runtime")]
pub mod batch;
#[cfg(feature = "runtime")]
pub mod client;
pub mod config;
// documented after the logs/batch/serve error work merges (mod.rs, request.rs and
// service.rs; its other files are documented)
#[allow(missing_docs)]
pub mod executor;
mod ids;
// documented after the logs/batch/serve error work merges
#[allow(missing_docs)]
pub mod logs;
pub mod memory;
pub mod model;
pub mod monitor;
pub mod plugin;
pub mod registry;
// documented after the logs/batch/serve error work merges
#[allow(missing_docs)]
#[cfg(feature = "runtime")]
pub mod replay;
pub mod safe_fs;
pub mod scaffold;
// documented after the logs/batch/serve error work merges (mod.rs and api.rs; its other
// files are documented)
#[allow(missing_docs)]
#[cfg(feature = "runtime")]
pub mod serve;
mod suggest;

pub use executor::{
    EventSink, Execution, ExecutionRequest, ExecutorConfig, Receipt, Recording,
    ToolExecutionService,
};
pub use model::{
    AttemptSummary, ErrorCategory, ErrorDetails, ExecutionEvent, ExecutionResult, LifecycleKind,
    ResourceUsage,
};
pub use registry::{Registry, RegistryError};
