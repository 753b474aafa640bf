//! metaclaude: run and measure scripts, and stream every execution to plugins.
//!
//! The map of the code is in `ARCHITECTURE.md` at the workspace root. In short:
//! [`registry`] reads and validates `registry.json`; [`executor`] spawns, limits, measures,
//! classifies and retries; [`model`] is the one event model everything serialises.

pub mod alerting;
pub mod app;
pub mod batch;
pub mod config;
pub mod executor;
mod ids;
pub mod logs;
pub mod memory;
pub mod model;
pub mod monitor;
pub mod plugin;
pub mod registry;
pub mod replay;
pub mod safe_fs;
pub mod scaffold;
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
