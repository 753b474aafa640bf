//! Formats the metaclaude host and its plugins share, defined once.
//!
//! * [`log_files`]: the names of the execution log's files (the live file, rotated files,
//!   their compressed form and the temporary files of a compression in progress). The log
//!   sink plugin writes them; `metaclaude logs` reads them.
//! * `log_summary` (feature `summary`): the summary written beside a rotated log file
//!   (figures by script, specialist, user, category and hour, with sketches), so that
//!   statistics over weeks of history do not reread it.
//! * `record_parser` (feature `summary`): a log line read into the record the queries and
//!   summaries use, fast, exactly as serde_json reads it.
//! * [`gzip_blocks`]: the rotated log file's gzip framing, members of whole lines that
//!   give their own length (the writer with feature `gzip-blocks`), so that `metaclaude
//!   logs` inflates each member in one call.
//! * [`log_record`]: the execution log's record: its field names in the order written,
//!   its version and levels, and the writer of one line. The log sink plugin writes it;
//!   `metaclaude logs`, the server and the synthetic logs of the benchmark use it.
//! * [`prometheus`]: a writer for the Prometheus text exposition format, used by the
//!   host's own metrics and by exporter plugins.
//! * [`alerts`]: the alert record, its JSON, and what identifies it (its fingerprint).
//! * [`json`]: the small JSON writer those formats use (keys in the order written).
//! * [`finished`]: the figures of a finished execution the metric exporters and the alert
//!   rules count.
//! * [`label_cap`]: the cap on the distinct values of an exporter's label.
//!
//! No I/O and no dependency beyond `chrono` (and, with `summary`, serde, the sketch crate
//! and crc32fast; with `gzip-blocks`, flate2 and crc32fast: a writer over any `Write`): the crate builds for the host and for `wasm32-wasip2` alike.

pub mod alerts;
pub mod finished;
pub mod gzip_blocks;
pub mod json;
pub mod label_cap;
pub mod log_files;
pub mod log_record;
#[cfg(feature = "summary")]
pub mod log_summary;
pub mod prometheus;
#[cfg(feature = "summary")]
pub mod record_parser;
