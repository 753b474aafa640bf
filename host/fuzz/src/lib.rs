//! What the fuzz targets share: the property every config error must have, and the text
//! of an input as the host would read it.
//!
//! Each target asserts a property of the answer, not only that the parser returns: an
//! input either parses into a value that keeps the parser's invariants, or gives an error
//! of the shape the golden files in `tests/cli/bad_*` show (the file's name, then a
//! line:column or the list of problems).

use std::path::Path;

use metaclaude::config::ConfigError;

/// The input as text, as the host reads a config file (`read_to_string`: a file that is
/// not UTF-8 is an I/O error before any parser sees it). `None` when it is not UTF-8.
pub fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// Asserts that `err`, from parsing `file`, is a clear error: it names the file and then
/// either a 1-based line:column of a syntax error with a message, or every problem on a
/// line of its own, each with its field and what is wrong.
pub fn assert_clear_error(err: &ConfigError, file: &Path) {
    let shown = err.to_string();
    let name = file.display().to_string();
    assert!(
        shown.starts_with(&format!("{name}:")),
        "the error does not start with the file name {name:?}: {shown:?}"
    );
    match err {
        ConfigError::Io { .. } => panic!("an I/O error from parsing text: {shown:?}"),
        ConfigError::Syntax {
            line,
            column,
            message,
            format,
            ..
        } => {
            assert!(
                *line >= 1 && *column >= 1,
                "a syntax error without its position ({line}:{column}): {shown:?}"
            );
            assert!(
                !message.trim().is_empty(),
                "a syntax error without a message: {shown:?}"
            );
            assert!(
                shown.starts_with(&format!("{name}:{line}:{column}: invalid {format}: ")),
                "{shown:?}"
            );
        }
        ConfigError::Invalid { problems, .. } => {
            assert!(
                !problems.is_empty(),
                "an invalid file without a problem: {shown:?}"
            );
            let lines: Vec<&str> = shown.lines().collect();
            let count = problems.len();
            let plural = if count == 1 { "" } else { "s" };
            assert_eq!(
                lines.first().copied(),
                Some(format!("{name}: {count} problem{plural}:").as_str()),
                "{shown:?}"
            );
            for p in problems {
                assert!(
                    !p.field.is_empty() && !p.message.trim().is_empty(),
                    "a problem without its field or message: {p:?}"
                );
            }
        }
    }
}
