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
#[cfg(feature = "runtime")]
pub mod app;
#[cfg(feature = "runtime")]
pub mod batch;
#[cfg(feature = "runtime")]
pub mod client;
pub mod config;
pub mod executor;
pub mod expectations;
mod ids;
pub mod logs;
pub mod memory;
pub mod model;
pub mod monitor;
pub mod plugin;
pub mod registry;
#[cfg(feature = "runtime")]
pub mod replay;
pub mod safe_fs;
pub mod scaffold;
pub mod schedules;
#[cfg(feature = "runtime")]
pub mod script_watch;
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
