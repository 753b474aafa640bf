//! `metaclaude batch`: many executions in one watched host, JSON lines in and out.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use metaclaude::alerting::SilenceStore;
use metaclaude::app::{HostConfig, MonitoredHost, PLUGIN_POLL};
use metaclaude::batch::{BatchNotice, MetricsFile};

use super::args::BatchArgs;
use super::{render, EXIT_FAILED, EXIT_NOT_RECORDED, EXIT_USAGE};

pub fn batch(args: BatchArgs) -> anyhow::Result<ExitCode> {
    let executor = args.host.executor(args.concurrency);
    let concurrency = executor.concurrency();
    let config = HostConfig {
        executor,
        plugins: args.host.plugin_source(),
        grants: args.host.grant_source(),
        // A long-running host: plugin folders added, changed or removed take effect
        // without a restart.
        watch_plugins: Some(PLUGIN_POLL),
        ..HostConfig::new(&args.registry)
    };
    let source = args.requests.display().to_string();
    let input: Box<dyn std::io::BufRead + Send> = if source == "-" {
        Box::new(std::io::BufReader::new(std::io::stdin()))
    } else {
        let file = std::fs::File::open(&args.requests)
            .with_context(|| format!("cannot open the requests file {source}"))?;
        Box::new(std::io::BufReader::new(file))
    };
    // The silences kept beside the log (those of `metaclaude alerts silence`) hold here too.
    let silences = match SilenceStore::open(config.log_dir()) {
        Ok(store) => store,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    let host = match MonitoredHost::start(config, Vec::new(), super::stderr_notices()) {
        Ok(host) => host,
        Err(e) => return super::host_failed(e, &args.registry),
    };
    if let Some(plugins) = host.plugins() {
        plugins.use_silences(silences);
    }
    let runtime = super::async_runtime()?;
    let mut metrics = args.metrics_file.map(|path| {
        MetricsFile::new(
            path,
            Duration::from_secs(args.metrics_interval),
            host.plugins().cloned(),
        )
    });
    let summary = runtime.block_on(metaclaude::batch::run_batch(
        host.service().clone(),
        input,
        &source,
        concurrency,
        metrics.as_mut(),
        std::io::stdout().lock(),
        std::sync::Arc::new(print_notice),
    ));
    host.shutdown();
    // The final figures: every plugin has delivered and flushed what it was sent.
    if let (Some(m), Ok(summary)) = (&mut metrics, &summary) {
        if let Some(warning) = m.update(summary, false) {
            eprintln!("{warning}");
        }
    }
    let summary = summary.context("writing the results")?;
    eprintln!("{}", render::batch_summary(&summary));
    Ok(if summary.unrecorded > 0 {
        ExitCode::from(EXIT_NOT_RECORDED)
    } else if summary.bad_lines > 0 {
        ExitCode::from(EXIT_USAGE)
    } else if summary.failed > 0 || summary.interrupted {
        ExitCode::from(EXIT_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

/// What the batch tells its operator, on stderr; a second stop signal ends the program at
/// once (status 130).
fn print_notice(notice: BatchNotice) -> std::io::Result<()> {
    use std::io::Write;
    let second_signal = matches!(notice, BatchNotice::SecondSignal);
    let printed = writeln!(std::io::stderr(), "{notice}");
    if second_signal {
        std::process::exit(130);
    }
    printed
}
