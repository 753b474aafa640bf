//! The crate's tests against exact percentiles, merges, memory bounds, windows, a
//! property-style sweep, and an ignored micro-benchmark.

mod accuracy;
mod bench;
mod memory;
mod merge;
mod property;
pub(crate) mod support;
mod windows;
