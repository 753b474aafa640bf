//! What travels from the host to a plugin's worker: events ([`Delivery`]), alerts and
//! control messages ([`Message`]), through the worker's [`Mailbox`].

pub(in crate::plugin) mod ack;
pub mod destinations;
pub(in crate::plugin) mod dispatch;
pub mod health;
pub(in crate::plugin) mod worker;

use std::sync::atomic::Ordering;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::Thread;

use metaclaude_formats::prometheus::Format;

use crate::alerting::NotifierQueue;
use crate::model::{Alert, ExecutionEvent, Threshold};
use crate::plugin::delivery::ack::AckGroup;
use crate::plugin::delivery::health::PluginStats;
use crate::plugin::runtime::convert::SharedRecords;

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
        let outputs = || {
            self.event
                .result
                .as_deref()
                .map_or(0, |r| r.stdout.len() + r.stderr.len())
        };
        RECORD
            + if json {
                self.json().len()
            } else if output {
                outputs()
            } else {
                0
            }
    }

    pub fn json(&self) -> &str {
        self.json
            .get_or_init(|| serde_json::to_string(&self.event).unwrap_or_default())
    }
}

pub enum Message {
    Event(Arc<Delivery>),
    Alerts(Arc<Vec<Alert>>),
    Flush(SyncSender<()>),
    /// An exporter's exposition, asked in this format.
    Render(Format, SyncSender<Result<String, String>>),
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
    /// Wake the worker once this many events are offered and not yet delivered or dropped.
    wake_at: u64,
}

impl Mailbox {
    pub fn new(
        tx: SyncSender<Message>,
        worker: Thread,
        stats: Arc<PluginStats>,
        batch_max: usize,
        queue: usize,
    ) -> Mailbox {
        Mailbox {
            tx,
            worker,
            stats,
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
            self.tx
                .send(Message::Event(delivery))
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

    /// Sends a control message (flush, render, shutdown), waiting for room, and wakes the
    /// worker for it. Fails when the worker has stopped.
    pub fn send(&self, message: Message) -> Result<(), ()> {
        self.tx.send(message).map_err(|_| ())?;
        self.worker.unpark();
        Ok(())
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
