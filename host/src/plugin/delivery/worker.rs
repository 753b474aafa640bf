//! One worker thread per plugin: a bounded queue in, batches out, and the failure policy.
//!
//! Invariants:
//! * the worker always drains its queue, even while the plugin restarts or after it was
//!   quarantined (events are then counted as dropped), so a sender under the `block`
//!   policy never waits on a dead plugin; a sender waiting for room (`Room`) is woken
//!   once the queue is down to half, and at once when the worker ends;
//! * a trapped instance is never called again: it is dropped and, under `reload`, a fresh
//!   one starts from the pre-linked component after an exponential backoff; after
//!   `max_failures` failures within `failure_window_s` the plugin is quarantined;
//! * nothing a plugin does reaches the executor except through this queue;
//! * in acknowledged mode, every event carrying an `AckGroup` is answered exactly once by
//!   this worker: confirmed after the plugin handled it, denied when the call failed or
//!   the event was dropped; and such an event is delivered as soon as the queue is empty,
//!   not at the end of the batch window.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;

use crate::alerting::outbox::Outbox;
use crate::alerting::router::{plugin_quarantined, AlertRouter};
use crate::model::Alert;
use crate::plugin::delivery::health::{Health, PluginStats};
use crate::plugin::delivery::{Delivery, Message, Room, SetThreshold};
use crate::plugin::manifest::{EventRecord, FailurePolicy, Manifest, PluginKind};
use crate::plugin::runtime::convert::Shape;
use crate::plugin::runtime::instance::CallError;
use crate::plugin::runtime::{Live, Runtime};

pub struct Worker {
    pub name: Arc<str>,
    pub manifest: Arc<Manifest>,
    pub runtime: Runtime,
    pub instance: Option<Live>,
    pub stats: Arc<PluginStats>,
    pub router: Arc<AlertRouter>,
    /// Where senders wait for room in a full queue: woken as the worker drains it.
    pub room: Arc<Room>,
}

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long a flush or shutdown waits out a restarting plugin's backoff; past it, the
/// events the worker holds for the plugin are counted as dropped.
const MAX_WAIT_FOR_RESTART: Duration = Duration::from_secs(2);

impl Worker {
    /// Serves the queue until told to stop (or it is gone); `true` when the stop said the
    /// process exits right after (see [`Message::Shutdown`]).
    pub fn run(self, rx: Receiver<Message>) -> bool {
        /// However the worker ends (a panic too), once its queue is gone, senders waiting
        /// for room are woken to find it gone.
        struct Ending(Arc<Room>, Arc<PluginStats>);
        impl Drop for Ending {
            fn drop(&mut self) {
                self.0.release(&self.1, true);
            }
        }
        let _ending = Ending(self.room.clone(), self.stats.clone());
        self.serve(rx)
    }

    fn serve(mut self, rx: Receiver<Message>) -> bool {
        let limits = self.manifest.limits.clone();
        let batch_window = Duration::from_millis(limits.batch_ms);
        let tick_every = matches!(
            self.manifest.kind,
            PluginKind::AlertRule | PluginKind::Pusher
        )
        .then(|| Duration::from_millis(self.manifest.tick_ms));
        let mut next_tick = tick_every.map(|t| Instant::now() + t);
        let mut batch: Vec<Arc<Delivery>> = Vec::new();
        let mut batch_started = Instant::now();
        let mut backoff = FIRST_BACKOFF;
        let mut restart_at: Option<Instant> = None;
        let mut failures: VecDeque<Instant> = VecDeque::new();
        // An executor waits on an event in the batch: deliver once the queue is empty.
        let mut urgent = false;
        // A notifier's alerts not yet delivered, retried with backoff.
        let mut outbox = Outbox::new(limits.queue);
        loop {
            self.room.release(&self.stats, false);
            let mut wake: Option<Instant> = outbox.wake_at();
            if !batch.is_empty() {
                // While the plugin is down, held events wait for its restart.
                let due = if urgent {
                    Instant::now()
                } else {
                    batch_started + batch_window
                };
                wake = Some(match restart_at.filter(|_| self.instance.is_none()) {
                    Some(at) => due.max(at),
                    None => due,
                });
            }
            if let Some(t) = next_tick {
                wake = Some(wake.map_or(t, |w| w.min(t)));
            }
            let msg = match wake {
                Some(at) if !batch.is_empty() => next_while_batching(&rx, at),
                Some(at) => rx.recv_timeout(at.saturating_duration_since(Instant::now())),
                None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            let mut ctx = Ctx {
                backoff: &mut backoff,
                restart_at: &mut restart_at,
                failures: &mut failures,
            };
            match msg {
                Ok(Message::Event(d)) => {
                    if batch.is_empty() {
                        batch_started = Instant::now();
                    }
                    urgent |= d.ack.is_some() && self.manifest.acknowledgements.enabled;
                    batch.push(d);
                    if batch.len() >= limits.batch_max {
                        self.deliver(&mut batch, &mut ctx, false);
                    }
                }
                Ok(Message::Alerts(alerts)) => {
                    let dropped = outbox.add(&alerts);
                    self.stats
                        .dropped
                        .fetch_add(dropped as u64, Ordering::Relaxed);
                }
                Ok(Message::Flush(ack)) => {
                    self.deliver(&mut batch, &mut ctx, true);
                    self.flush(&mut ctx);
                    let _ = ack.send(());
                }
                Ok(Message::Render(format, reply)) => {
                    self.deliver(&mut batch, &mut ctx, false);
                    let _ = reply.send(self.ask(&mut ctx, |i| i.render(format)));
                }
                Ok(Message::SetThreshold(change)) => {
                    let SetThreshold { name, value, reply } = *change;
                    let _ = reply.send(self.ask(&mut ctx, |i| i.set_threshold(&name, value)));
                }
                Ok(Message::Thresholds(reply)) => {
                    let _ = reply.send(self.ask(&mut ctx, |i| i.thresholds()));
                }
                Ok(Message::Shutdown { process_exiting }) => {
                    self.finish(&mut batch, &mut ctx, &mut outbox);
                    if process_exiting && matches!(self.instance, Some(Live::Wasm(_))) {
                        // Unmapping a WebAssembly instance's memory (its store's drop, which
                        // runs no guest code) costs ~0.3 ms a plugin on the way out of a
                        // one-shot run; the exit reclaims it all at once. A native
                        // plugin's state is still dropped: its `drop` is its own code.
                        std::mem::forget(self.instance.take());
                    }
                    return process_exiting;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.finish(&mut batch, &mut ctx, &mut outbox);
                    return false;
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            // The clock is read once a message, and again only after a delivery: every
            // worker reads it for every event (it was three reads, 1-3% of a counting
            // plugin's thread in the default set).
            let mut now = Instant::now();
            if !batch.is_empty() && (urgent || now >= batch_started + batch_window) {
                self.deliver(&mut batch, &mut ctx, false);
                now = Instant::now();
            }
            urgent &= !batch.is_empty();
            if outbox.due(now) {
                self.notify(&mut outbox, &mut ctx, false);
            }
            if let (Some(at), Some(every)) = (next_tick, tick_every) {
                if now >= at {
                    next_tick = Some(now + every);
                    let stats = self.stats.clone();
                    if let Some(instance) = self.ready_instance(&mut ctx, false) {
                        let result = timed(&stats, || instance.tick(Utc::now()));
                        self.settle(result, 0, &mut ctx);
                    }
                }
            }
        }
    }

    /// The live instance, starting a fresh one when the backoff allows. During the
    /// backoff it returns `None` at once, unless `wait` (a flush or shutdown, which may
    /// wait up to [`MAX_WAIT_FOR_RESTART`]): the worker must keep draining its queue, or
    /// a sender under the `block` policy would wait on a plugin that is down.
    fn ready_instance(&mut self, ctx: &mut Ctx, wait: bool) -> Option<&mut Live> {
        if matches!(
            self.stats.health(),
            Health::Quarantined(_) | Health::Disabled(_)
        ) {
            return None;
        }
        if self.instance.is_none() {
            if let Some(at) = *ctx.restart_at {
                let left = at.saturating_duration_since(Instant::now());
                if !left.is_zero() {
                    if !wait || left > MAX_WAIT_FOR_RESTART {
                        return None;
                    }
                    std::thread::sleep(left);
                }
            }
            match self
                .runtime
                .start(&self.manifest, self.name.clone(), &self.stats)
            {
                Ok(instance) => {
                    self.stats.restarts.fetch_add(1, Ordering::Relaxed);
                    *self.stats.health.lock().unwrap() = Health::Running;
                    *ctx.restart_at = None;
                    tracing::info!(plugin = %self.name, "plugin restarted");
                    self.instance = Some(instance);
                }
                Err(CallError::Trap(m)) | Err(CallError::Refused(m)) => {
                    self.fail(format!("restart failed: {m}"), 0, ctx);
                    return None;
                }
            }
        }
        self.instance.as_mut()
    }

    /// The end of the worker: delivers the batch, flushes (and gives a pusher its
    /// `shutdown_wait_ms`), notifies what is pending.
    fn finish(&mut self, batch: &mut Vec<Arc<Delivery>>, ctx: &mut Ctx, outbox: &mut Outbox) {
        self.deliver(batch, ctx, true);
        self.flush(ctx);
        self.wait_for_pending(ctx);
        if !outbox.is_empty() {
            self.notify(outbox, ctx, true);
        }
    }

    /// Hands `batch` to the plugin, `batch_max` events per call. While the plugin waits
    /// out a restart backoff, the events stay in `batch` (at most `limits.queue` of them;
    /// newer ones are dropped and counted) and go to the fresh instance; once it is
    /// quarantined or disabled, or when a flush or shutdown cannot wait, they are dropped
    /// and counted.
    fn deliver(&mut self, batch: &mut Vec<Arc<Delivery>>, ctx: &mut Ctx, wait: bool) {
        let (event_json, event_output) = (self.manifest.event_json, self.manifest.event_output);
        let shape = Shape::of(
            event_json,
            event_output,
            self.manifest.event_record == EventRecord::Figures,
        );
        let stats = self.stats.clone();
        let (batch_max, max_bytes) = (
            self.manifest.limits.batch_max,
            self.manifest.limits.batch_max_bytes(),
        );
        let sync_before_ack =
            self.manifest.acknowledgements.enabled && self.manifest.acknowledgements.sync;
        while !batch.is_empty() {
            let Some(instance) = self.ready_instance(ctx, wait) else {
                let restarting = self.stats.health() == Health::Restarting;
                let keep = if restarting && !wait {
                    self.manifest.limits.queue
                } else {
                    0
                };
                if batch.len() > keep {
                    let lost: Vec<_> = batch.drain(keep..).collect();
                    self.stats
                        .dropped
                        .fetch_add(lost.len() as u64, Ordering::Relaxed);
                    let why = format!("plugin is {}", self.stats.health().describe());
                    self.answer(&lost, Err(&why));
                }
                return;
            };
            // Native plugins see every event as JSON.
            let json = event_json || matches!(instance, Live::Native(_));
            let n = events_per_call(batch, batch_max, max_bytes, |d| {
                d.weight(json, event_output)
            });
            let mut result = timed(&stats, || instance.handle_batch(&batch[..n], shape));
            if result.is_ok() && sync_before_ack && batch[..n].iter().any(|d| d.ack.is_some()) {
                if let Err(e) = instance.flush() {
                    result = Err(e);
                }
            }
            match &result {
                Ok(_) => self.answer(&batch[..n], Ok(())),
                Err(CallError::Refused(m) | CallError::Trap(m)) => self.answer(&batch[..n], Err(m)),
            }
            batch.drain(..n);
            self.settle(result, n, ctx);
        }
    }

    /// Answers the acknowledgement of every event in `deliveries` that carries one, if
    /// this plugin acknowledges.
    fn answer(&self, deliveries: &[Arc<Delivery>], outcome: Result<(), &str>) {
        if !self.manifest.acknowledgements.enabled {
            return;
        }
        for group in deliveries.iter().filter_map(|d| d.ack.as_ref()) {
            match outcome {
                Ok(()) => group.confirm(),
                Err(why) => group.deny(&self.name, why),
            }
        }
    }

    /// A pusher with a `shutdown_wait_ms`: while it reports items waiting, it is ticked
    /// every `tick_ms` until none wait or the wait is over, so a retry its receiver asked
    /// for (a 503 with `Retry-After`, a backoff after no answer) still goes out at the end
    /// of a one-shot run. Past the wait what is left is the plugin's to count as lost.
    fn wait_for_pending(&mut self, ctx: &mut Ctx) {
        let wait = Duration::from_millis(self.manifest.shutdown_wait_ms);
        if wait.is_zero() || self.manifest.kind != PluginKind::Pusher {
            return;
        }
        let until = Instant::now() + wait;
        let every = Duration::from_millis(self.manifest.tick_ms);
        let stats = self.stats.clone();
        while stats.destinations.pending() > 0 {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                tracing::info!(plugin = %self.name, pending = stats.destinations.pending(), "shutdown wait over with items unsent");
                return;
            }
            std::thread::sleep(every.min(left));
            let Some(instance) = self.ready_instance(ctx, false) else {
                return;
            };
            let result = timed(&stats, || instance.tick(Utc::now()));
            self.settle(result, 0, ctx);
        }
    }

    fn flush(&mut self, ctx: &mut Ctx) {
        if self.instance.is_none() {
            return;
        }
        let stats = self.stats.clone();
        if let Some(instance) = self.ready_instance(ctx, true) {
            let result = timed(&stats, || instance.flush()).map(|()| Vec::new());
            self.settle(result, 0, ctx);
        }
    }

    /// One call asked for by the host (render, a threshold change): its answer, the
    /// plugin's refusal, or why it could not be asked; a trap counts as a failure.
    fn ask<T>(
        &mut self,
        ctx: &mut Ctx,
        call: impl FnOnce(&mut Live) -> Result<T, CallError>,
    ) -> Result<T, String> {
        let stats = self.stats.clone();
        match self.ready_instance(ctx, false) {
            Some(instance) => match timed(&stats, || call(instance)) {
                Ok(answer) => Ok(answer),
                Err(CallError::Refused(m)) => Err(m),
                Err(CallError::Trap(m)) => {
                    self.fail(m.clone(), 0, ctx);
                    Err(m)
                }
            },
            None => Err(format!("plugin is {}", self.stats.health().describe())),
        }
    }

    /// Hands a notifier the notifications waiting in `outbox`, one call each (one group's
    /// alerts), oldest first. A refusal (the receiver is down, answers 500 ...) keeps them
    /// for a retry after a backoff, as does a trap (after the restart); they are given up,
    /// and counted as dropped, after the last try or when the plugin is out of service. A
    /// trap also counts against the failure policy.
    fn notify(&mut self, outbox: &mut Outbox, ctx: &mut Ctx, wait: bool) {
        let stats = self.stats.clone();
        while let Some(alerts) = outbox.next() {
            let n = alerts.len();
            let result = match self.ready_instance(ctx, wait) {
                Some(instance) => timed(&stats, || instance.notify(alerts)),
                None if stats.health() == Health::Restarting && !wait => {
                    // Retried once the restart's backoff is over.
                    if let Some(lost) = outbox.failed(Instant::now()) {
                        self.stats.dropped.fetch_add(lost as u64, Ordering::Relaxed);
                    }
                    return;
                }
                None => {
                    let lost = outbox.clear();
                    self.stats.dropped.fetch_add(lost as u64, Ordering::Relaxed);
                    return;
                }
            };
            let message = match result {
                Ok(()) => {
                    outbox.sent();
                    self.stats.delivered.fetch_add(n as u64, Ordering::Relaxed);
                    *ctx.backoff = FIRST_BACKOFF;
                    continue;
                }
                Err(CallError::Refused(m)) => {
                    self.stats.refused.fetch_add(1, Ordering::Relaxed);
                    *self.stats.last_error.lock().unwrap() = Some(m.clone());
                    m
                }
                Err(CallError::Trap(m)) => {
                    if wait {
                        self.stats.refused.fetch_add(1, Ordering::Relaxed);
                        *self.stats.last_error.lock().unwrap() = Some(m.clone());
                    } else {
                        self.fail(m.clone(), 0, ctx);
                    }
                    m
                }
            };
            if wait {
                let lost = outbox.clear();
                self.stats.dropped.fetch_add(lost as u64, Ordering::Relaxed);
                tracing::error!(plugin = %self.name, alerts = lost, "notifier could not deliver before shutdown: {message}");
                return;
            }
            let now = Instant::now();
            match outbox.failed(now) {
                Some(lost) => {
                    self.stats.dropped.fetch_add(lost as u64, Ordering::Relaxed);
                    tracing::error!(plugin = %self.name, alerts = lost, attempts = crate::alerting::outbox::MAX_ATTEMPTS, "notifier gave up delivering: {message}");
                }
                None => tracing::warn!(
                    plugin = %self.name,
                    alerts = outbox.len(),
                    attempt = outbox.attempts(),
                    retry_in_s = outbox.retry_in(now).as_secs_f64(),
                    "notifier could not deliver, will retry: {message}"
                ),
            }
            return;
        }
    }

    /// Books a call's outcome: counts, alerts forwarded, failures handled.
    fn settle(&mut self, result: Result<Vec<Alert>, CallError>, events: usize, ctx: &mut Ctx) {
        match result {
            Ok(alerts) => {
                self.stats
                    .delivered
                    .fetch_add(events as u64, Ordering::Relaxed);
                *ctx.backoff = FIRST_BACKOFF;
                if !alerts.is_empty() {
                    self.router.publish(alerts);
                }
            }
            Err(CallError::Refused(message)) => {
                self.stats.refused.fetch_add(1, Ordering::Relaxed);
                self.stats
                    .delivered
                    .fetch_add(events as u64, Ordering::Relaxed);
                tracing::warn!(plugin = %self.name, "plugin returned an error: {message}");
                *self.stats.last_error.lock().unwrap() = Some(message);
            }
            Err(CallError::Trap(message)) => self.fail(message, events, ctx),
        }
    }

    /// Discards the instance and applies the failure policy.
    fn fail(&mut self, message: String, lost_events: usize, ctx: &mut Ctx) {
        self.instance = None;
        self.stats.failures.fetch_add(1, Ordering::Relaxed);
        self.stats
            .dropped
            .fetch_add(lost_events as u64, Ordering::Relaxed);
        *self.stats.last_error.lock().unwrap() = Some(message.clone());
        tracing::error!(plugin = %self.name, "plugin failed: {message}");
        let now = Instant::now();
        ctx.failures.push_back(now);
        let window = Duration::from_secs(self.manifest.limits.failure_window_s);
        while ctx
            .failures
            .front()
            .is_some_and(|t| now.duration_since(*t) > window)
        {
            ctx.failures.pop_front();
        }
        let health = match self.manifest.limits.failure_policy {
            FailurePolicy::Disable => Health::Disabled(message.clone()),
            FailurePolicy::Reload
                if ctx.failures.len() >= self.manifest.limits.max_failures as usize =>
            {
                Health::Quarantined(format!(
                    "{} failures within {}s, last: {message}",
                    ctx.failures.len(),
                    self.manifest.limits.failure_window_s
                ))
            }
            FailurePolicy::Reload => {
                *ctx.restart_at = Some(now + *ctx.backoff);
                *ctx.backoff = (*ctx.backoff * 2).min(MAX_BACKOFF);
                Health::Restarting
            }
        };
        if let Health::Quarantined(why) | Health::Disabled(why) = &health {
            tracing::error!(plugin = %self.name, "plugin taken out of service: {why}");
            self.router.publish(vec![plugin_quarantined(
                &self.name,
                why,
                ctx.failures.len(),
                self.manifest.limits.max_failures,
            )]);
        }
        *self.stats.health.lock().unwrap() = health;
    }
}

/// How many events from the front of `batch` one call takes: at most `max_events`, and
/// no more than fit in `max_bytes` by `weight`, but always one (however large: the
/// manifest's memory limit then decides).
fn events_per_call<T>(
    batch: &[T],
    max_events: usize,
    max_bytes: usize,
    weight: impl Fn(&T) -> usize,
) -> usize {
    let mut bytes = 0usize;
    let mut n = 0;
    for item in batch.iter().take(max_events) {
        bytes = bytes.saturating_add(weight(item));
        if n > 0 && bytes > max_bytes {
            break;
        }
        n += 1;
    }
    n
}

/// The next message while a batch is open, or `Timeout` at `at`. The worker takes what
/// is waiting and otherwise sleeps until `at` without waiting on the channel, so senders
/// do not wake it for every event ([`Mailbox`] wakes it when it must). A wake-up with
/// nothing to take is a `Timeout` too: the caller looks at the clock again.
fn next_while_batching(rx: &Receiver<Message>, at: Instant) -> Result<Message, RecvTimeoutError> {
    let take = || match rx.try_recv() {
        Ok(m) => Some(Ok(m)),
        Err(TryRecvError::Disconnected) => Some(Err(RecvTimeoutError::Disconnected)),
        Err(TryRecvError::Empty) => None,
    };
    if let Some(next) = take() {
        return next;
    }
    let left = at.saturating_duration_since(Instant::now());
    if !left.is_zero() {
        std::thread::park_timeout(left);
    }
    take().unwrap_or(Err(RecvTimeoutError::Timeout))
}

/// Runs one call into the plugin, counting how long it took.
fn timed<T>(stats: &PluginStats, call: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let result = call();
    stats.calls.record(started.elapsed());
    result
}

struct Ctx<'a> {
    backoff: &'a mut Duration,
    restart_at: &'a mut Option<Instant>,
    failures: &'a mut VecDeque<Instant>,
}

#[cfg(test)]
mod tests {
    use super::events_per_call;

    #[test]
    fn a_call_takes_what_fits_by_count_and_by_bytes_and_always_one() {
        let sizes = [10, 10, 10, 10, 10];
        let n = |max_events, max_bytes| events_per_call(&sizes, max_events, max_bytes, |s| *s);
        assert_eq!(n(256, 1000), 5, "all fit");
        assert_eq!(n(3, 1000), 3, "count first");
        assert_eq!(n(256, 25), 2, "then bytes");
        assert_eq!(n(256, 30), 3, "a budget met exactly");
        assert_eq!(n(256, 5), 1, "one, however large");
        let big = [usize::MAX, 1];
        assert_eq!(events_per_call(&big, 256, 100, |s| *s), 1);
        let empty: [usize; 0] = [];
        assert_eq!(events_per_call(&empty, 256, 100, |s| *s), 0);
    }
}
