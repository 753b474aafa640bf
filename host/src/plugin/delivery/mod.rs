//! What travels from the host to a plugin's worker: events ([`Delivery`]), alerts and
//! control messages ([`Message`]), through the worker's [`Mailbox`].

pub(in crate::plugin) mod ack;
pub mod destinations;
pub(in crate::plugin) mod dispatch;
pub mod health;
pub(in crate::plugin) mod worker;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::Thread;
use std::time::Duration;

use metaclaude_formats::prometheus::Format;

use crate::alerting::NotifierQueue;
use crate::model::{Alert, ExecutionEvent, Threshold};
use crate::plugin::delivery::ack::AckGroup;
use crate::plugin::delivery::health::PluginStats;
use crate::plugin::runtime::convert::SharedRecords;
use crate::plugin::runtime::lifting::Rendered;

/// An event on its way to plugins. Its JSON is made at most once, by the first worker
/// whose plugin wants it, never on the executor's path.
pub struct Delivery {
    pub event: ExecutionEvent,
    pub json: std::sync::OnceLock<String>,
    /// Its WIT records, each converted once for all the plugins that receive it.
    pub records: SharedRecords,
    /// Set on a `finished` event that acknowledging plugins receive; each of their
    /// workers answers it once (see `ack`).
    pub ack: Option<Arc<AckGroup>>,
}

impl Delivery {
    /// Roughly the bytes this event takes in a plugin's memory: its JSON when the
    /// plugin takes it (`json`), else the script's outputs when it takes them (`output`),
    /// plus a fixed share for the rest of the record.
    pub fn weight(&self, json: bool, output: bool) -> usize {
        const RECORD: usize = 1024;
        RECORD
            + if json {
                self.json().len()
            } else if output {
                self.output_bytes()
            } else {
                0
            }
    }

    /// The bytes of the script's stdout and stderr (0 for an event without a result).
    fn output_bytes(&self) -> usize {
        self.event
            .result
            .as_deref()
            .map_or(0, |r| r.stdout.len() + r.stderr.len())
    }

    pub fn json(&self) -> &str {
        self.json.get_or_init(|| {
            // Sized for the outputs and the rest at once: grown from serde_json's 128
            // bytes, a 1 KiB output's event was copied four times on the way.
            let outputs = self.output_bytes();
            let mut json = Vec::with_capacity(outputs + outputs / 8 + 1024);
            match serde_json::to_writer(&mut json, &self.event) {
                // SAFETY: serde_json writes only UTF-8 (it escapes nothing into other
                // bytes and copies `str` contents as they are), as its own `to_string`
                // relies on.
                Ok(()) => unsafe { String::from_utf8_unchecked(json) },
                Err(_) => String::new(),
            }
        })
    }
}

pub enum Message {
    Event(Arc<Delivery>),
    Alerts(Arc<Vec<Alert>>),
    Flush(SyncSender<()>),
    /// An exporter's exposition, asked in this format.
    Render(Format, SyncSender<Result<Rendered, String>>),
    /// An alert rule's threshold change, answered with the rule's word on it (boxed: rare,
    /// and every slot of a worker's queue is as large as its largest message).
    SetThreshold(Box<SetThreshold>),
    Thresholds(SyncSender<Result<Vec<Threshold>, String>>),
    /// Deliver what is queued, flush, and end. With `process_exiting` (a one-shot host
    /// about to exit), the instance is left for the exit to reclaim instead of dropped.
    Shutdown {
        /// The process ends right after.
        process_exiting: bool,
    },
}

pub struct SetThreshold {
    pub name: String,
    pub value: f64,
    pub reply: SyncSender<Result<String, String>>,
}

// A queue of `limits.queue` slots (10 000 by default) is allocated whole when a plugin
// starts, each slot a message and a stamp: 32 bytes, 310 KiB a plugin, where a threshold
// change held inline made it 56 bytes and 550 KiB.
const _: () = assert!(std::mem::size_of::<Message>() <= 24);

/// The sending side of a worker's queue.
///
/// A worker with an open batch does not wait on its channel, where every send would wake
/// it (a thread wake-up per event per plugin, which on a small machine cost more than
/// the plugins' own work): it sleeps until the batch is due. A sender wakes it early only
/// when that matters: a control message, an event an executor waits on (acknowledged
/// mode), or a full batch's worth of events waiting (or a full queue, if that is smaller,
/// so that a sender under `block` never waits on a sleeping worker).
pub struct Mailbox {
    tx: SyncSender<Message>,
    worker: Thread,
    stats: Arc<PluginStats>,
    room: Arc<Room>,
    /// Wake the worker once this many events are offered and not yet delivered or dropped.
    wake_at: u64,
}

impl Mailbox {
    pub fn new(
        tx: SyncSender<Message>,
        worker: Thread,
        stats: Arc<PluginStats>,
        room: Arc<Room>,
        batch_max: usize,
        queue: usize,
    ) -> Mailbox {
        Mailbox {
            tx,
            worker,
            stats,
            room,
            wake_at: batch_max.min(queue).max(1) as u64,
        }
    }

    /// Offers an event: waits for room when `block`, else fails at once on a full queue.
    /// `urgent`: an executor waits on it, so the worker delivers it without waiting for
    /// its batch window. The event is counted as queued, and as dropped if not sent.
    pub fn offer(
        &self,
        delivery: Arc<Delivery>,
        block: bool,
        urgent: bool,
    ) -> Result<(), &'static str> {
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        let sent = if block {
            self.send_when_room(Message::Event(delivery))
                .map_err(|_| "its worker has stopped")
        } else {
            match self.tx.try_send(Message::Event(delivery)) {
                Ok(()) => Ok(()),
                Err(TrySendError::Full(_)) => Err("its queue is full (limits.queue)"),
                Err(TrySendError::Disconnected(_)) => Err("its worker has stopped"),
            }
        };
        match sent {
            Ok(()) => {
                if urgent || self.stats.pending() >= self.wake_at {
                    self.worker.unpark();
                }
                Ok(())
            }
            Err(why) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                Err(why)
            }
        }
    }

    /// Sends `message`, waiting while the queue is full: then until the worker has brought
    /// it down to half ([`Room`]), not one free slot. Fails when the worker has stopped.
    fn send_when_room(&self, message: Message) -> Result<(), ()> {
        let mut message = match self.tx.try_send(message) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Disconnected(_)) => return Err(()),
            Err(TrySendError::Full(m)) => m,
        };
        // A worker asleep on its batch window must run to make room.
        self.worker.unpark();
        let mut guard = self.room.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.room.waiting.fetch_add(1, Ordering::SeqCst);
        let sent = loop {
            message = match self.tx.try_send(message) {
                Ok(()) => break Ok(()),
                Err(TrySendError::Disconnected(_)) => break Err(()),
                Err(TrySendError::Full(m)) => m,
            };
            self.room.sleeps.fetch_add(1, Ordering::Relaxed);
            guard = self
                .room
                .freed
                .wait_timeout(guard, self.room.max_wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        };
        self.room.waiting.fetch_sub(1, Ordering::SeqCst);
        sent
    }

    /// Sends a control message (flush, render, shutdown), waiting for room, and wakes the
    /// worker for it. Fails when the worker has stopped.
    pub fn send(&self, message: Message) -> Result<(), ()> {
        self.tx.send(message).map_err(|_| ())?;
        self.worker.unpark();
        Ok(())
    }
}

/// Where senders under `block` wait for room in a full queue, and what wakes them.
///
/// A sender that finds the queue full waits until the worker has brought it down to half
/// (`low`), then hands over events in a burst. Waking it for each freed slot instead (a
/// blocking channel send) made a producer faster than the plugin and the worker take
/// turns a slot at a time: a thread wake-up on each side for every event.
pub struct Room {
    /// Senders waiting (counted under `lock`, read by the worker without it).
    waiting: AtomicUsize,
    lock: Mutex<()>,
    freed: Condvar,
    /// The pending events at or below which waiting senders are woken.
    low: u64,
    /// How long a sender waits before looking at the queue again on its own.
    max_wait: Duration,
    /// Times a sender went to sleep for room.
    sleeps: AtomicU64,
}

impl Room {
    /// For a queue of `queue` slots.
    pub fn new(queue: usize) -> Room {
        Room {
            waiting: AtomicUsize::new(0),
            lock: Mutex::new(()),
            freed: Condvar::new(),
            low: (queue / 2) as u64,
            // Bounded, so that a missed wake-up would cost a pause, never a hang.
            max_wait: Duration::from_millis(100),
            sleeps: AtomicU64::new(0),
        }
    }

    /// The worker's side: wakes the waiting senders once the plugin's pending events are
    /// down to half the queue (`always`: at once, as the worker ends).
    pub fn release(&self, stats: &PluginStats, always: bool) {
        if self.waiting.load(Ordering::SeqCst) > 0 && (always || stats.pending() <= self.low) {
            let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            self.freed.notify_all();
        }
    }
}

impl NotifierQueue for Mailbox {
    /// Hands alerts to a notifier without waiting; when its queue is full they are
    /// dropped and counted.
    fn send_alerts(&self, alerts: Arc<Vec<Alert>>) {
        let n = alerts.len() as u64;
        if self.tx.try_send(Message::Alerts(alerts)).is_err() {
            self.stats.dropped.fetch_add(n, Ordering::Relaxed);
        } else {
            self.worker.unpark();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::sync_channel;

    use super::*;
    use crate::model::{ExecutionEvent, ExecutionResult};

    fn delivery() -> Arc<Delivery> {
        let result = ExecutionResult::new("01ROOM".to_string(), "noop", chrono::Utc::now());
        Arc::new(Delivery {
            event: ExecutionEvent::finished(result),
            json: Default::default(),
            records: Default::default(),
            ack: None,
        })
    }

    /// A sender under `block` that finds the queue full sleeps until the worker has
    /// brought it down to half, then sends a burst: a few sleeps for many events, not one
    /// sleep (and a wake-up on each side) per event as a blocking channel send takes.
    #[test]
    fn a_sender_waiting_for_room_is_woken_at_half_the_queue_not_per_slot() {
        const QUEUE: usize = 8;
        const EVENTS: u64 = 400;
        let (tx, rx) = sync_channel(QUEUE);
        let stats = PluginStats::new();
        let room = Arc::new(Room {
            // Only a wake-up ends a sleep here.
            max_wait: Duration::from_secs(600),
            ..Room::new(QUEUE)
        });
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let worker = {
            let (stats, room, done) = (stats.clone(), room.clone(), done.clone());
            std::thread::spawn(move || {
                let mut taken = 0;
                loop {
                    // A worker slower than its sender: it takes an event only while the
                    // sender waits for room (or has sent everything).
                    while room.waiting.load(Ordering::SeqCst) == 0 && !done.load(Ordering::SeqCst) {
                        std::thread::yield_now();
                    }
                    let Ok(Message::Event(_)) = rx.recv() else {
                        return taken;
                    };
                    stats.delivered.fetch_add(1, Ordering::Relaxed);
                    room.release(&stats, false);
                    taken += 1;
                }
            })
        };
        let mailbox = Mailbox::new(
            tx,
            worker.thread().clone(),
            stats.clone(),
            room.clone(),
            512,
            QUEUE,
        );
        for _ in 0..EVENTS {
            mailbox.offer(delivery(), true, false).unwrap();
        }
        done.store(true, Ordering::SeqCst);
        drop(mailbox);
        assert_eq!(worker.join().unwrap(), EVENTS);
        let sleeps = room.sleeps.load(Ordering::Relaxed);
        // Each sleep ends with at most QUEUE / 2 pending, so about QUEUE / 2 sends follow
        // before the queue is full again: about EVENTS / 4 sleeps, where waking the
        // sender for each freed slot makes it about half EVENTS or more.
        assert!(
            sleeps <= EVENTS * 3 / 10,
            "{sleeps} sleeps for {EVENTS} events through a queue of {QUEUE}"
        );
    }

    /// The log sink takes the result's text from an event's JSON as its last member
    /// (`record_parser::last_member`), without reading it: the JSON plugins get must have
    /// `result` last, whatever the event carries, and taking it so must give what a full
    /// read gives.
    #[test]
    fn an_events_json_has_its_result_last() {
        use crate::model::{ErrorCategory, ErrorContext, ErrorDetails, LifecycleKind};
        use metaclaude_formats::record_parser::{last_member, raw_member};
        let mut result = ExecutionResult::new("01LAST".to_string(), "noop", chrono::Utc::now());
        result.stdout = "},\"result\":{\"x\":1}}\n\u{1}".into();
        result.stderr = "\"}".into();
        let error = ErrorDetails {
            category: ErrorCategory::Execution,
            message: "\"result\":{".into(),
            context: ErrorContext::default(),
            suggestions: vec!["}".into()],
            stack_trace: None,
        };
        result.error_details = Some(error.clone());
        let mut finished = ExecutionEvent::finished(result);
        // Every optional member an event can carry, before the result.
        finished.pid = Some(7);
        finished.error = Some(error);
        finished.retry_delay_ms = Some(5);
        let mut started = finished.clone();
        started.kind = LifecycleKind::Started;
        started.result = None;
        for (event, has_result) in [(finished, true), (started, false)] {
            let d = Delivery {
                event,
                json: Default::default(),
                records: Default::default(),
                ack: None,
            };
            let json = d.json();
            let full = raw_member(json, "result").expect("the host's JSON is read whole");
            assert_eq!(last_member(json, "result"), full, "{json}");
            assert_eq!(full.is_some(), has_result, "{json}");
        }
    }

    /// A worker that ends wakes its waiting senders at once, and they are told.
    #[test]
    fn a_sender_waiting_for_room_learns_at_once_that_the_worker_ended() {
        let (tx, rx) = sync_channel(1);
        let stats = PluginStats::new();
        let room = Arc::new(Room {
            max_wait: Duration::from_secs(600),
            ..Room::new(1)
        });
        let mailbox = Mailbox::new(
            tx,
            std::thread::current(),
            stats.clone(),
            room.clone(),
            1,
            1,
        );
        mailbox.offer(delivery(), true, false).unwrap();
        let ender = {
            let (stats, room) = (stats.clone(), room.clone());
            std::thread::spawn(move || {
                // Waits (bounded) for the sender to be asleep, then ends as a worker does.
                let deadline = std::time::Instant::now() + Duration::from_secs(60);
                while room.waiting.load(Ordering::SeqCst) == 0 {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "the sender never waited"
                    );
                    std::thread::yield_now();
                }
                drop(rx);
                room.release(&stats, true);
            })
        };
        assert_eq!(
            mailbox.offer(delivery(), true, false),
            Err("its worker has stopped")
        );
        ender.join().unwrap();
    }
}
