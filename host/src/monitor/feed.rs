//! The live feed's wire format: what each numbered item carries, the message every client
//! is sent (serialised once, when the monitor numbers the event), the snapshot a client
//! starts from, and the copy of a result they carry (outputs cut). The socket that sends
//! them is the server's (`serve::feed`); which items a client takes is `subscription`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::report::Totals;
use super::running::RunningExecution;
use crate::model::{timestamp, Alert, ExecutionEvent, ExecutionResult, LifecycleKind};

/// Bytes of each of stdout and stderr that the feed's copy of a result keeps (the tail;
/// `stdout_truncated` says so). The whole result stays available by its id.
pub const FEED_OUTPUT_BYTES: usize = 8 * 1024;

/// One event of the feed: its sequence number, what a subscription filters on, and the
/// message every client is sent, serialised once.
#[derive(Debug)]
pub struct FeedItem {
    /// Its number: one more than the item before, from 1, over events and alerts alike.
    pub seq: u64,
    /// The event's kind; `None` for an alert.
    pub kind: Option<LifecycleKind>,
    /// The event's script; empty for an alert.
    pub script_id: String,
    /// The event's specialist, or the alert's; `None` when it has none.
    pub specialist: Option<String>,
    /// `{"type":"event","seq":N,"event":{...}}` or `{"type":"alert","seq":N,"alert":{...}}`.
    pub json: String,
}

/// The state a live client starts from; the feed's items after `seq` follow it.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// The last event this snapshot includes.
    pub seq: u64,
    /// When the host started (a replay: its log's first execution), UTC.
    #[serde(with = "timestamp")]
    pub started_at: DateTime<Utc>,
    /// Counts since start.
    pub totals: Totals,
    /// The executions running, oldest first.
    pub running: Vec<RunningExecution>,
    /// The newest finished executions, newest first (outputs cut as in the feed).
    pub recent: Vec<ExecutionResult>,
    /// The alerts in force, most severe first.
    pub alerts: Vec<Alert>,
}

/// A result as the feed and snapshots carry it: each output cut to its last
/// [`FEED_OUTPUT_BYTES`] (at a character boundary), marked truncated.
pub fn feed_copy(r: &ExecutionResult) -> ExecutionResult {
    let cut = |text: &str| -> Option<String> {
        if text.len() <= FEED_OUTPUT_BYTES {
            return None;
        }
        let mut start = text.len() - FEED_OUTPUT_BYTES;
        while !text.is_char_boundary(start) {
            start += 1;
        }
        Some(text[start..].to_string())
    };
    let mut copy = r.clone();
    if let Some(tail) = cut(&r.stdout) {
        copy.stdout = tail;
        copy.stdout_truncated = true;
    }
    if let Some(tail) = cut(&r.stderr) {
        copy.stderr = tail;
        copy.stderr_truncated = true;
    }
    copy
}

/// The feed message of one event.
#[derive(Serialize)]
struct FeedMessage<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    seq: u64,
    event: &'a ExecutionEvent,
}

#[derive(Serialize)]
struct AlertMessage<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    seq: u64,
    alert: &'a Alert,
}

/// The feed item of event number `seq`: `{"type":"event","seq":N,"event":{...}}`, each
/// output of a finished execution's result cut to [`FEED_OUTPUT_BYTES`].
pub(super) fn event_item(seq: u64, event: &ExecutionEvent) -> FeedItem {
    let cut;
    let event = match &event.result {
        Some(r) if r.stdout.len() > FEED_OUTPUT_BYTES || r.stderr.len() > FEED_OUTPUT_BYTES => {
            let mut copy = event.clone();
            copy.result = Some(Arc::new(feed_copy(r)));
            cut = copy;
            &cut
        }
        _ => event,
    };
    let json = serde_json::to_string(&FeedMessage {
        kind: "event",
        seq,
        event,
    })
    .unwrap_or_default();
    FeedItem {
        seq,
        kind: Some(event.kind),
        script_id: event.identity.script_id.clone(),
        specialist: event.identity.specialist.clone(),
        json,
    }
}

/// The feed item of alert change number `seq`: `{"type":"alert","seq":N,"alert":{...}}`.
pub(super) fn alert_item(seq: u64, alert: &Alert) -> FeedItem {
    let json = serde_json::to_string(&AlertMessage {
        kind: "alert",
        seq,
        alert,
    })
    .unwrap_or_default();
    FeedItem {
        seq,
        kind: None,
        script_id: String::new(),
        specialist: alert.specialist.clone(),
        json,
    }
}
