//! A Slack-compatible message: `{"text": ...}`, one line per alert (the console's line,
//! `metaclaude_notify::line`), for Slack's incoming webhooks and the chat servers that
//! take the same payload (Mattermost, Rocket.Chat, Zulip's Slack integration ...).
//!
//! Slack reads `&`, `<` and `>` as markup (`<!channel>` pings everyone, `<url|text>`
//! disguises a link), so they are escaped as Slack asks (`&amp;`, `&lt;`, `&gt;`): text
//! from an alert is shown, never acted on. The text is kept under Slack's 40 000
//! characters: lines past the budget are counted in a last line instead.

use metaclaude_formats::alerts::Alert;
use metaclaude_formats::json::Object;
use metaclaude_notify::line::{alert_line, LineOptions};

/// The text's budget, in bytes (Slack cuts a message's text at 40 000 characters).
pub const MAX_TEXT_BYTES: usize = 39_000;

/// What each line shows.
pub fn line_options() -> LineOptions {
    LineOptions {
        timestamp: false,
        annotations: vec!["runbook_url".into()],
        max_bytes: 2048,
    }
}

/// `text` with Slack's three control characters escaped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// The message's text: a line per alert, within [`MAX_TEXT_BYTES`].
pub fn text(alerts: &[Alert]) -> String {
    let options = line_options();
    let mut text = String::new();
    for (i, alert) in alerts.iter().enumerate() {
        let line = escape(&alert_line(alert, &options));
        // Room is kept for the last line that counts what did not fit.
        if text.len() + line.len() + 64 > MAX_TEXT_BYTES {
            let more = alerts.len() - i;
            text.push_str(&format!(
                "… and {more} more alert{}",
                if more == 1 { "" } else { "s" }
            ));
            return text;
        }
        text.push_str(&line);
        text.push('\n');
    }
    text.pop();
    text
}

/// The payload: `{"text": ...}`.
pub fn payload(alerts: &[Alert]) -> String {
    let mut out = String::new();
    let mut o = Object::new(&mut out);
    o.string("text", &text(alerts));
    o.end();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use metaclaude_notify::test_alerts::{firing, resolved};

    #[test]
    fn one_line_per_alert_in_a_text_field() {
        let alert = firing();
        let gone = resolved(&alert, alert.timestamp);
        assert_eq!(
            payload(&[alert, gone]),
            r#"{"text":"ALERT [warning] error_rate_high specialist=api-ui-designer: Error rate is 15.3% (threshold: 10.0%)\nRESOLVED [warning] error_rate_high specialist=api-ui-designer: Error rate is 15.3% (threshold: 10.0%)"}"#
        );
    }

    #[test]
    fn alert_text_cannot_ping_or_disguise_links() {
        let mut alert = firing();
        alert.message = "<!channel> see <http://evil|http://wiki> & \u{1b}[31m".into();
        let v: serde_json::Value = serde_json::from_str(&payload(&[alert])).unwrap();
        assert_eq!(
            v["text"],
            "ALERT [warning] error_rate_high specialist=api-ui-designer: &lt;!channel&gt; see &lt;http://evil|http://wiki&gt; &amp; "
        );
    }

    #[test]
    fn a_flood_is_cut_with_a_count() {
        let alerts: Vec<Alert> = (0..1000)
            .map(|i| {
                let mut a = firing();
                a.message = format!("alert number {i} {}", "x".repeat(100));
                a
            })
            .collect();
        let text = text(&alerts);
        assert!(text.len() <= MAX_TEXT_BYTES, "{}", text.len());
        let last = text.lines().last().unwrap();
        let shown = text.lines().count() - 1;
        assert_eq!(last, format!("… and {} more alerts", 1000 - shown));
    }
}
