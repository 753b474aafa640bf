//! `metaclaude logs`: the query's answer on stdout as it is found, what reading the log
//! met on stderr as it is met, then (when some lines were left out) a warning saying so.

use std::io::{self, Write};
use std::process::ExitCode;

use metaclaude::logs::{self, ReadNotice};

use super::args::LogsArgs;

pub fn logs(args: &LogsArgs) -> anyhow::Result<ExitCode> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(64 * 1024, stdout.lock());
    let answered = logs::execute(&args.query(), &mut out, &print_read_notice).and_then(|a| {
        if a.problems > 0 {
            eprintln!(
                "warning: {} problem(s) reading the log (above); the answer leaves those lines out",
                a.problems
            );
        }
        out.flush().map_err(logs::LogsError::from)
    });
    match answered {
        Ok(()) => Ok(ExitCode::SUCCESS),
        // `metaclaude logs | head`: the reader has all it wants.
        Err(e) if e.is_broken_pipe() => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e.into()),
    }
}

/// A damaged file or line of the log (or a note), on stderr.
pub fn print_read_notice(notice: ReadNotice) {
    eprintln!("{notice}");
}
