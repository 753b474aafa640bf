//! One signal's items waiting to be sent (spans, log records or metrics, each already
//! encoded; a bounded queue: the oldest make room, counted as dropped), and requests from
//! its front when due: at most `max_spans_per_send` items a request, in protobuf or
//! OTLP/JSON, gzip unless turned off, retried per the OTLP specification through
//! `metaclaude_push`'s rules. No I/O of its own: the request is a function handed in,
//! the time too.

use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;
use metaclaude_push::queue::Bounded;
use metaclaude_push::retry::{otlp_verdict, Verdict};
use metaclaude_push::sender::{Answer, Sender, MAX_REQUESTS_PER_TICK};

use crate::config::Config;
use crate::json::{self, Signal};
use crate::trace::{self, Execution};

pub struct Exporter {
    signal: Signal,
    queue: Bounded<Vec<u8>>,
    pub sender: Sender,
    resource: Vec<u8>,
    scope: Vec<u8>,
    max_spans_per_send: usize,
    gzip: bool,
    json: bool,
}

/// The headers of an OTLP/HTTP request (the host adds `User-Agent`, `Host` and
/// `Content-Length`), before the configured ones.
pub fn headers(config: &Config) -> Vec<(String, String)> {
    let content_type = if config.json {
        "application/json"
    } else {
        "application/x-protobuf"
    };
    let mut h = vec![("Content-Type".to_string(), content_type.to_string())];
    if config.gzip {
        h.push(("Content-Encoding".into(), "gzip".into()));
    }
    h.extend(config.headers.iter().cloned());
    h
}

impl Exporter {
    /// The exporter of `signal`'s items.
    pub fn new(config: &Config, signal: Signal, now_ms: i64) -> Exporter {
        Exporter {
            signal,
            queue: Bounded::new(config.max_pending_spans),
            sender: Sender::new(config.min_backoff_ms, config.max_backoff_ms, now_ms)
                .classifying(otlp_verdict),
            resource: trace::resource(
                &config.service_name,
                config.host_name.as_deref(),
                &config.resource_attributes,
            ),
            scope: trace::scope(),
            max_spans_per_send: config.max_spans_per_send,
            gzip: config.gzip,
            json: config.json,
        }
    }

    /// Queues the spans of a finished execution.
    pub fn add(&mut self, execution: &Execution) {
        for span in trace::spans(execution) {
            self.queue.push(span);
        }
    }

    /// Queues one item already encoded (a log record, a metric).
    pub fn push(&mut self, item: Vec<u8>) {
        self.queue.push(item);
    }

    /// Items waiting to be sent.
    pub fn pending(&self) -> u64 {
        self.queue.len() as u64
    }

    /// Items given up on: dropped by the full queue, or refused by the receiver.
    pub fn dropped(&self) -> u64 {
        self.queue.dropped + self.sender.figures.refused
    }

    /// Requests from the front of the queue while no backoff holds them (at most
    /// [`MAX_REQUESTS_PER_TICK`]).
    pub fn send_due(&mut self, now_ms: i64, post: &mut dyn FnMut(&[u8]) -> Result<Answer, String>) {
        for _ in 0..MAX_REQUESTS_PER_TICK {
            if self.queue.is_empty() || !self.sender.due(now_ms) {
                return;
            }
            let n = self.queue.len().min(self.max_spans_per_send);
            let body = trace::request(
                &self.resource,
                &self.scope,
                self.queue.iter().take(n).map(|s| &s[..]),
            );
            let body = if self.json {
                match json::from_protobuf(self.signal, &body) {
                    Ok(body) => body,
                    Err(e) => {
                        // Our own encoder wrote what the JSON table lacks: a bug, said
                        // where the host shows figures, and the items counted as dropped.
                        self.queue.pop(n);
                        self.queue.dropped += n as u64;
                        self.sender.figures.last_error = Some(format!("OTLP/JSON: {e}"));
                        self.sender.figures.last_error_at_ms = Some(now_ms);
                        continue;
                    }
                }
            } else {
                body
            };
            let body = if self.gzip { gzip(&body) } else { body };
            match self.sender.take(post(&body), n as u64, now_ms) {
                Verdict::Accepted | Verdict::Refused => {
                    self.queue.pop(n);
                }
                Verdict::Retry => return,
            }
        }
    }
}

/// gzip, as `Content-Encoding: gzip` has it.
pub fn gzip(body: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(body.len() / 3 + 32), Compression::fast());
    encoder
        .write_all(body)
        .expect("writing to a Vec cannot fail");
    encoder.finish().expect("writing to a Vec cannot fail")
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message;

    use super::*;
    use crate::trace::tests::flaky;

    fn answer(status: u16, headers: &[(&str, &str)]) -> Result<Answer, String> {
        Ok(Answer::of(status, headers, "nope"))
    }

    fn exporter(max_pending: usize) -> Exporter {
        Exporter::new(
            &Config {
                max_spans_per_send: 3,
                max_pending_spans: max_pending,
                min_backoff_ms: 100,
                max_backoff_ms: 400,
                ..Config::default()
            },
            Signal::Traces,
            0,
        )
    }

    fn spans_in(gzipped: &[u8]) -> usize {
        let mut body = Vec::new();
        flate2::read::GzDecoder::new(gzipped)
            .read_to_end(&mut body)
            .unwrap();
        let r = ExportTraceServiceRequest::decode(&body[..]).unwrap();
        r.resource_spans[0].scope_spans[0].spans.len()
    }

    #[test]
    fn gzipped_batches_of_spans_go_out_oldest_first() {
        let mut x = exporter(100);
        x.add(&flaky());
        x.add(&flaky());
        let mut sizes = Vec::new();
        x.send_due(0, &mut |b| {
            sizes.push(spans_in(b));
            answer(200, &[])
        });
        assert_eq!(sizes, [3, 3, 2]);
        assert_eq!((x.pending(), x.sender.figures.sent), (0, 8));
        assert_eq!(
            headers(&Config::default())[1],
            ("Content-Encoding".to_string(), "gzip".to_string())
        );
    }

    #[test]
    fn retryable_statuses_wait_and_keep_the_spans_others_are_dropped_once() {
        let mut x = exporter(100);
        x.add(&flaky());
        x.send_due(0, &mut |_| answer(500, &[]));
        assert_eq!(
            (x.pending(), x.dropped()),
            (0, 4),
            "500 is not retried: both batches dropped"
        );
        x.add(&flaky());
        for status in [429, 502, 503, 504] {
            x.send_due(10_000 * i64::from(status), &mut |_| {
                answer(status, &[("Retry-After", "2")])
            });
            assert_eq!(x.pending(), 4, "{status} keeps the spans");
        }
        assert_eq!(x.sender.figures.retried_requests, 4);
        x.send_due(5_040_000, &mut |_| panic!("Retry-After holds it"));
        let mut asked = 0;
        for now in 5_042_000..5_042_100 {
            x.send_due(now, &mut |_| {
                asked += 1;
                answer(400, &[])
            });
        }
        assert_eq!(asked, 2, "each batch once, never again");
        assert_eq!((x.pending(), x.dropped()), (0, 8));
        assert_eq!(
            x.sender.figures.last_error.as_deref(),
            Some("HTTP 400: nope")
        );
    }

    #[test]
    fn with_http_json_the_body_is_otlp_json_and_says_so() {
        let config = Config {
            json: true,
            gzip: false,
            ..Config::default()
        };
        assert_eq!(
            headers(&config)[0],
            ("Content-Type".to_string(), "application/json".to_string())
        );
        let mut x = Exporter::new(&config, Signal::Traces, 0);
        x.add(&flaky());
        let mut bodies = Vec::new();
        x.send_due(0, &mut |b| {
            bodies.push(String::from_utf8(b.to_vec()).unwrap());
            answer(200, &[])
        });
        assert_eq!(bodies.len(), 1);
        assert!(
            bodies[0].starts_with(r#"{"resourceSpans":[{"#),
            "{}",
            bodies[0]
        );
        assert_eq!(x.sender.figures.sent, 4);
    }

    #[test]
    fn a_full_queue_drops_the_oldest_spans_and_counts_them() {
        let mut x = exporter(5);
        x.add(&flaky());
        x.add(&flaky());
        assert_eq!((x.pending(), x.dropped()), (5, 3));
    }
}
