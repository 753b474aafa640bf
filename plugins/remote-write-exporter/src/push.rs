//! The pushing: snapshots of the series into the queue every interval, and requests
//! from its front when due, with Prometheus' retry rules (`metaclaude_push::retry`); the figures
//! the host shows. No I/O of its own: the request is a function handed in, the time too.

use metaclaude_prometheus_series::families::Exporter;

use metaclaude_push::retry::Verdict;
use metaclaude_push::sender::{Answer, Sender, MAX_REQUESTS_PER_TICK};

use crate::config::Config;
use crate::queue::Queue;
use crate::wire;

pub struct Pusher {
    config: Config,
    pub queue: Queue,
    /// The receiver's figures, its backoff.
    pub sender: Sender,
    next_snapshot_ms: i64,
    /// Snapshots taken so far: none yet, and nothing is sent (see [`Pusher::live`]).
    snapshots: u64,
    /// The external labels, as every series gets them.
    external: Vec<(String, String)>,
}

impl Pusher {
    /// A pusher starting at `now_ms` with `queue` (read back from the spool, or empty):
    /// the first snapshot is one interval away.
    pub fn new(config: Config, queue: Queue, now_ms: i64) -> Pusher {
        Pusher {
            sender: Sender::new(config.min_backoff_ms, config.max_backoff_ms, now_ms),
            next_snapshot_ms: now_ms + config.interval_s as i64 * 1000,
            snapshots: 0,
            external: config
                .external_labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            config,
            queue,
        }
    }

    /// Whether it has run for an interval (taken a snapshot). Until then it sends nothing,
    /// not even what the spool kept: an instance that only lives to be listed or checked
    /// (`metaclaude plugins list`, `plugins check` load and initialise every plugin) must
    /// not push, nor take the spool from the host that runs.
    pub fn live(&self) -> bool {
        self.snapshots > 0
    }

    /// Samples waiting to be sent.
    pub fn pending(&self) -> u64 {
        self.queue.len() as u64
    }

    /// Samples given up on: dropped by the queue (full, or too old in the spool) or
    /// refused by the receiver.
    pub fn dropped(&self) -> u64 {
        self.queue.dropped() + self.sender.figures.refused
    }

    /// Every sample of `exporter`'s state at `now_ms` into the queue, with the external
    /// labels (a series' own label of the same name wins).
    pub fn snapshot(&mut self, exporter: &Exporter, now_ms: i64) {
        self.snapshots += 1;
        let queue = &mut self.queue;
        let external = &self.external;
        exporter.samples(&mut |s| {
            let mut labels: Vec<(&str, &str)> = Vec::with_capacity(s.labels.len() + external.len());
            labels.extend_from_slice(s.labels);
            labels.extend(external.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            queue.push(wire::series_labels(s.name, &labels), now_ms, s.value);
        });
    }

    /// What is due at `now_ms`: a snapshot once the interval has passed, then (once live)
    /// requests while there are samples and no backoff holds them (at most
    /// [`MAX_REQUESTS_PER_TICK`]).
    pub fn tick(
        &mut self,
        exporter: &Exporter,
        now_ms: i64,
        post: &mut dyn FnMut(&[u8]) -> Result<Answer, String>,
    ) {
        if now_ms >= self.next_snapshot_ms {
            self.snapshot(exporter, now_ms);
            let interval = self.config.interval_s as i64 * 1000;
            // The next one an interval after this one was due, or after now if ticks
            // were late (never a burst of snapshots to catch up).
            self.next_snapshot_ms = (self.next_snapshot_ms + interval).max(now_ms + interval / 2);
        }
        if self.live() {
            self.send_due(now_ms, post);
        }
    }

    /// Requests from the front of the queue while no backoff holds them.
    pub fn send_due(&mut self, now_ms: i64, post: &mut dyn FnMut(&[u8]) -> Result<Answer, String>) {
        for _ in 0..MAX_REQUESTS_PER_TICK {
            if self.queue.is_empty() || !self.sender.due(now_ms) {
                return;
            }
            let batch = self.queue.batch(
                self.config.max_samples_per_send,
                self.config.max_bytes_per_send,
            );
            let body = wire::compress(&batch.body);
            match self.sender.take(post(&body), batch.samples as u64, now_ms) {
                // Sent, or refused for good (Prometheus drops those: sending them again
                // would fail again, and hold every later sample up).
                Verdict::Accepted | Verdict::Refused => self.queue.pop(batch.samples),
                Verdict::Retry => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metaclaude_formats::finished::Finished;
    use metaclaude_prometheus_series::config::Config as SeriesConfig;

    fn exporter() -> Exporter {
        let mut e = Exporter::new(&SeriesConfig::default(), 0.0);
        let f = Finished {
            script: "hello".into(),
            specialist: None,
            success: true,
            category: None,
            duration_seconds: 0.1,
            memory_peak_mb: 1.0,
            cpu_time_seconds: 0.01,
            retries: 0,
            at: 0.0,
        };
        e.observe(&f, &mut Vec::new());
        e
    }

    fn pusher(max_pending: usize) -> Pusher {
        let config = Config {
            interval_s: 1,
            max_samples_per_send: 10,
            max_pending_samples: max_pending,
            min_backoff_ms: 100,
            max_backoff_ms: 400,
            external_labels: [("host".to_string(), "a".to_string())].into(),
            ..Config::default()
        };
        Pusher::new(config, Queue::new(max_pending), 0)
    }

    fn answer(status: u16, headers: &[(&str, &str)], body: &str) -> Result<Answer, String> {
        Ok(Answer::of(status, headers, body))
    }

    #[test]
    fn snapshots_every_interval_and_sends_in_batches() {
        let e = exporter();
        let mut p = pusher(100_000);
        let mut bodies = Vec::new();
        p.tick(&e, 500, &mut |_| {
            panic!("nothing due before the first interval")
        });
        p.tick(&e, 1000, &mut |b| {
            bodies.push(b.to_vec());
            answer(204, &[], "")
        });
        let per_snapshot = p.sender.figures.sent;
        assert!(
            per_snapshot > 40,
            "every family of a pair and the overflow counters: {per_snapshot}"
        );
        assert_eq!(
            bodies.len() as u64,
            per_snapshot.div_ceil(10),
            "10 samples a request"
        );
        assert_eq!(p.pending(), 0);
        p.tick(&e, 1500, &mut |_| panic!("no snapshot yet"));
        p.tick(&e, 2000, &mut |_| answer(200, &[], ""));
        assert_eq!(p.sender.figures.sent, 2 * per_snapshot);
        assert_eq!(p.sender.figures.last_success_at_ms, Some(2000));
    }

    #[test]
    fn nothing_goes_out_before_the_first_interval_not_even_the_spools() {
        let e = exporter();
        let mut spooled = Queue::new(100);
        spooled.push(wire::series_labels("x", &[]), -5000, 1.0);
        let config = Config {
            interval_s: 15,
            ..Config::default()
        };
        let mut p = Pusher::new(config, spooled, 0);
        for now in (0..15_000).step_by(250) {
            p.tick(&e, now, &mut |_| {
                panic!("sent at {now} ms, before any snapshot")
            });
        }
        assert!(!p.live());
        let mut sent = 0;
        p.tick(&e, 15_000, &mut |_| {
            sent += 1;
            answer(200, &[], "")
        });
        assert!(p.live());
        assert_eq!(
            (sent, p.pending()),
            (1, 0),
            "the spool's sample and the snapshot"
        );
    }

    #[test]
    fn five_hundreds_back_off_doubling_and_keep_the_samples() {
        let e = exporter();
        let mut p = pusher(100_000);
        p.snapshot(&e, 0);
        let queued = p.pending();
        let mut tries = Vec::new();
        for now in (0..2000).step_by(50) {
            p.send_due(now, &mut |_| {
                tries.push(now);
                answer(503, &[], "  overloaded\n")
            });
        }
        assert_eq!(
            tries,
            [0, 100, 300, 700, 1100, 1500, 1900],
            "100, 200, 400, 400 ..."
        );
        assert_eq!(p.pending(), queued, "nothing lost");
        assert_eq!(p.dropped(), 0);
        assert_eq!(p.sender.figures.retried_requests, 7);
        assert_eq!(
            p.sender.figures.last_error.as_deref(),
            Some("HTTP 503: overloaded")
        );
        // Back: everything goes, the backoff starts again from its floor.
        p.send_due(2300, &mut |_| answer(200, &[], ""));
        assert_eq!((p.pending(), p.sender.figures.sent), (0, queued));
    }

    #[test]
    fn unreachable_is_retried_and_429_waits_its_retry_after() {
        let e = exporter();
        let mut p = pusher(100_000);
        p.snapshot(&e, 0);
        p.send_due(0, &mut |_| Err("connection refused".into()));
        assert_eq!(
            p.sender.figures.last_error.as_deref(),
            Some("connection refused")
        );
        p.send_due(100, &mut |_| {
            answer(429, &[("retry-after", "3")], "slow down")
        });
        p.send_due(3099, &mut |_| panic!("Retry-After holds it"));
        p.send_due(3100, &mut |_| answer(200, &[], ""));
        assert_eq!(p.pending(), 0);
        assert_eq!(
            (
                p.sender.figures.failed_requests,
                p.sender.figures.retried_requests
            ),
            (2, 2)
        );
    }

    #[test]
    fn other_four_hundreds_drop_the_batch_once_and_say_why() {
        let e = exporter();
        let mut p = pusher(100_000);
        p.snapshot(&e, 0);
        let queued = p.pending();
        let mut requests = 0;
        for now in 0..100 {
            p.send_due(now, &mut |_| {
                requests += 1;
                answer(400, &[], "out of order sample")
            });
        }
        assert_eq!(
            requests as u64,
            queued.div_ceil(10),
            "each batch once, never again"
        );
        assert_eq!((p.pending(), p.dropped()), (0, queued));
        assert_eq!(p.sender.figures.retried_requests, 0);
        assert_eq!(
            p.sender.figures.last_error.as_deref(),
            Some("HTTP 400: out of order sample")
        );
    }

    #[test]
    fn a_full_queue_drops_the_oldest_and_counts_them() {
        let e = exporter();
        let mut p = pusher(100);
        for t in 0..5 {
            p.snapshot(&e, t * 1000);
        }
        assert_eq!(p.pending(), 100);
        assert!(p.dropped() > 0);
        let dropped = p.dropped();
        p.send_due(10_000, &mut |_| answer(200, &[], ""));
        assert_eq!(p.sender.figures.sent, 100, "what the queue held");
        assert_eq!(p.dropped(), dropped, "sending drops nothing more");
    }

    #[test]
    fn external_labels_join_every_series() {
        let e = exporter();
        let mut p = pusher(100_000);
        p.snapshot(&e, 0);
        let batch = p.queue.batch(100_000, 1 << 24);
        let text = String::from_utf8_lossy(&batch.body);
        assert_eq!(
            text.matches("__name__").count(),
            text.matches("host").count()
        );
        assert!(text.contains("hello"));
    }
}
