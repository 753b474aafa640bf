//! The commands' standard output. [`outln!`] and [`out!`] print like `println!` and
//! `print!` but return instead of panicking when the write fails.
//!
//! A reader that went away (`metaclaude run x | head -1`) is no failure: the command has
//! done its work (a run is recorded before its summary is printed). Nothing more is printed
//! and the command ends with its own status. Any other failure, such as a full disk under
//! `> file`, is an error that names standard output.

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once standard output's reader is gone: later prints are dropped.
static READER_GONE: AtomicBool = AtomicBool::new(false);

/// Writes `text` to standard output; see the module's documentation.
pub fn write(text: fmt::Arguments<'_>) -> anyhow::Result<()> {
    if READER_GONE.load(Ordering::Relaxed) {
        return Ok(());
    }
    match io::stdout().lock().write_fmt(text) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
            READER_GONE.store(true, Ordering::Relaxed);
            Ok(())
        }
        Err(e) => Err(anyhow::Error::new(e).context("cannot write to standard output")),
    }
}

/// `print!` that returns an error instead of panicking; see [`write`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::stdout::write(format_args!($($arg)*))
    };
}

/// `println!` that returns an error instead of panicking; see [`write`].
macro_rules! outln {
    () => {
        $crate::cli::stdout::write(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::stdout::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}
