//! End-to-end tests: the real `metaclaude` binary, real child processes, real scripts from
//! `examples/registry`, temp dirs for anything a test writes. One binary, as in ripgrep.

mod acknowledged;
mod alertmanager_cluster;
mod alerts;
mod bless;
mod concurrent_log;
mod custom_notifiers;
mod dashboard;
mod dashboard_terminal;
mod expectations;
mod exposition;
mod grants;
mod host_files;
mod host_metrics;
mod hot_reload;
mod http_import;
mod library;
mod log_sink;
mod logs_cli;
mod metrics;
mod otlp;
mod plugins;
mod prometheus;
mod prometheus_fleet;
mod registry_check;
mod remote_write;
mod run;
mod scaffold;
mod schedules;
mod serve;
mod serve_security;
mod silences;
mod statsd;
mod util;
