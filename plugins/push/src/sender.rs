//! One destination's side of pushing: a request's answer taken into the figures the host
//! shows and into when the next request may go ([`crate::retry`]'s rules). No I/O: the
//! request is made by the caller, the time handed in.

use crate::retry::{retry_after_ms, verdict, Backoff, Verdict};

/// A destination's answer to a request.
#[derive(Debug, Clone, Default)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    /// An answer of `status` with `headers` and `body` (for tests and fakes).
    pub fn of(status: u16, headers: &[(&str, &str)], body: &str) -> Answer {
        Answer {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }
}

/// Requests a tick sends at most (each ends by the tick's one deadline anyway).
pub const MAX_REQUESTS_PER_TICK: usize = 16;
/// The longest part of a receiver's message kept for people.
const MAX_MESSAGE: usize = 512;

/// What has happened so far, as the host shows it (the `delivery` report's counts).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    /// Items the destination accepted.
    pub sent: u64,
    /// Items the destination refused for good (4xx other than 429).
    pub refused: u64,
    pub failed_requests: u64,
    pub retried_requests: u64,
    pub last_error: Option<String>,
    pub last_error_at_ms: Option<i64>,
    pub last_success_at_ms: Option<i64>,
}

/// The figures and the backoff of one destination.
#[derive(Debug, Clone)]
pub struct Sender {
    backoff: Backoff,
    /// No request before this (Unix ms): a backoff or a `Retry-After`.
    next_attempt_ms: i64,
    /// Which statuses are retried: the protocol's rules.
    classify: fn(u16) -> Verdict,
    pub figures: Figures,
}

impl Sender {
    /// A destination that may be sent to from `now_ms`, backing off from `min_backoff_ms`
    /// doubling to `max_backoff_ms`, taking statuses as Prometheus does ([`verdict`]; see
    /// [`Sender::classifying`]).
    pub fn new(min_backoff_ms: u64, max_backoff_ms: u64, now_ms: i64) -> Sender {
        Sender {
            backoff: Backoff::new(min_backoff_ms, max_backoff_ms),
            next_attempt_ms: now_ms,
            classify: verdict,
            figures: Figures::default(),
        }
    }

    /// The same, taking statuses by `classify` (e.g. [`crate::retry::otlp_verdict`]).
    pub fn classifying(mut self, classify: fn(u16) -> Verdict) -> Sender {
        self.classify = classify;
        self
    }

    /// Whether a request may go at `now_ms` (no backoff or `Retry-After` holds it).
    pub fn due(&self, now_ms: i64) -> bool {
        now_ms >= self.next_attempt_ms
    }

    /// Takes the answer to a request of `items` items made at `now_ms` (`Err`: it was not
    /// reached, and why): counts it, and on a retryable failure holds the next request for
    /// the `Retry-After` asked for or else the next backoff. The caller takes the items
    /// out of its queue unless the verdict is [`Verdict::Retry`].
    pub fn take(&mut self, answer: Result<Answer, String>, items: u64, now_ms: i64) -> Verdict {
        let (outcome, message, retry_after) = match answer {
            Ok(answer) => {
                let retry_after = answer
                    .headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
                    .and_then(|(_, v)| retry_after_ms(v, now_ms));
                (
                    (self.classify)(answer.status),
                    http_message(&answer),
                    retry_after,
                )
            }
            Err(e) => (Verdict::Retry, e, None),
        };
        match outcome {
            Verdict::Accepted => {
                self.figures.sent += items;
                self.figures.last_success_at_ms = Some(now_ms);
                self.backoff.reset();
            }
            Verdict::Refused => {
                // Dropped, as Prometheus and the OTLP specification have it: sending it
                // again would fail again, and hold every later item up.
                self.figures.refused += items;
                self.fail(message, now_ms);
            }
            Verdict::Retry => {
                let wait = retry_after.unwrap_or_else(|| self.backoff.fail());
                self.next_attempt_ms = now_ms.saturating_add(wait as i64);
                self.figures.retried_requests += 1;
                self.fail(message, now_ms);
            }
        }
        outcome
    }

    fn fail(&mut self, message: String, now_ms: i64) {
        self.figures.failed_requests += 1;
        self.figures.last_error = Some(message);
        self.figures.last_error_at_ms = Some(now_ms);
    }
}

/// `HTTP 400: <the start of the receiver's message>`, on one line.
pub fn http_message(answer: &Answer) -> String {
    let text = String::from_utf8_lossy(&answer.body);
    let mut message: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(MAX_MESSAGE)
        .collect();
    if message.is_empty() {
        message = "(no message)".into();
    }
    format!("HTTP {}: {message}", answer.status)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, headers: &[(&str, &str)], body: &str) -> Result<Answer, String> {
        Ok(Answer::of(status, headers, body))
    }

    #[test]
    fn retryable_failures_hold_the_next_request_and_refusals_do_not() {
        let mut s = Sender::new(100, 400, 0);
        assert_eq!(s.take(answer(503, &[], " busy\n"), 5, 0), Verdict::Retry);
        assert!(!s.due(99) && s.due(100), "the backoff's first step");
        assert_eq!(
            s.take(answer(429, &[("Retry-After", "3")], ""), 5, 100),
            Verdict::Retry
        );
        assert!(!s.due(3099) && s.due(3100), "Retry-After wins");
        assert_eq!(s.take(Err("refused".into()), 5, 3100), Verdict::Retry);
        assert_eq!(s.figures.last_error.as_deref(), Some("refused"));
        assert_eq!(s.take(answer(400, &[], "bad"), 5, 3300), Verdict::Refused);
        assert_eq!(s.take(answer(200, &[], ""), 7, 3400), Verdict::Accepted);
        assert!(s.due(3400));
        assert_eq!(
            s.figures,
            Figures {
                sent: 7,
                refused: 5,
                failed_requests: 4,
                retried_requests: 3,
                last_error: Some("HTTP 400: bad".into()),
                last_error_at_ms: Some(3300),
                last_success_at_ms: Some(3400),
            }
        );
        let mut otlp = Sender::new(100, 400, 0).classifying(crate::retry::otlp_verdict);
        assert_eq!(otlp.take(answer(500, &[], ""), 1, 0), Verdict::Refused);
        assert_eq!(
            http_message(&answer(502, &[], "").unwrap()),
            "HTTP 502: (no message)"
        );
    }
}
