//! The console notifier: one line per alert on the host's stderr, for a person watching
//! `metaclaude serve` or `run`:
//!
//! ```text
//! ALERT [warning] error_rate_high specialist=api-ui-designer: Error rate is 15.3% (threshold: 10.0%)
//! RESOLVED [warning] error_rate_high specialist=api-ui-designer: Error rate is 15.3% (threshold: 10.0%)
//! ```
//!
//! The line is `metaclaude_notify::line`'s: every piece of text from outside (messages,
//! labels, annotations: they come from plugins and from names scripts chose) is made
//! terminal-safe there, so no alert can move the cursor, clear the screen, set the title
//! or smuggle a hyperlink; a line is cut to `max_line_bytes`. The manifest's
//! `[capabilities] stderr = true` lets the lines through to the host's stderr; one call's
//! lines are written at once.

pub mod config;

use metaclaude_formats::alerts::Alert;
use metaclaude_notify::line::alert_line;

use config::Config;

/// The lines of one `notify` call, each ending with a line break.
pub fn render(alerts: &[Alert], config: &Config) -> String {
    let mut out = String::new();
    for alert in alerts {
        out.push_str(&alert_line(alert, &config.line));
        out.push('\n');
    }
    out
}

#[cfg(feature = "plugin")]
mod plugin;

#[cfg(test)]
mod tests {
    use super::*;
    use metaclaude_notify::test_alerts::{firing, resolved};

    #[test]
    fn one_line_per_alert_in_the_order_given() {
        let alert = firing();
        let gone = resolved(&alert, alert.timestamp);
        let mut hostile = firing();
        hostile.message = "ok\n\u{1b}[1A\u{1b}[2KALERT [critical] forged: fake".into();
        assert_eq!(
            render(&[alert, gone, hostile], &Config::default()),
            "ALERT [warning] error_rate_high specialist=api-ui-designer: Error rate is 15.3% (threshold: 10.0%)\n\
             RESOLVED [warning] error_rate_high specialist=api-ui-designer: Error rate is 15.3% (threshold: 10.0%)\n\
             ALERT [warning] error_rate_high specialist=api-ui-designer: ok ALERT [critical] forged: fake\n"
        );
        assert_eq!(render(&[], &Config::default()), "");
    }
}
