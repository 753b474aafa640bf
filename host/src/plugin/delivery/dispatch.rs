//! Dispatch: each event offered to the queue of every plugin whose filter takes it (the
//! executor's `EventSink` side of the plugin set, which calls [`offer`]).

use std::sync::Arc;
use std::time::Duration;

use super::ack::AckGroup;
use super::{Delivery, Mailbox};
use crate::executor::Receipt;
use crate::model::{ExecutionEvent, LifecycleKind};
use crate::plugin::manifest::{self, Manifest, OnFull};

fn passes(filter: &manifest::Filter, e: &ExecutionEvent) -> bool {
    if !filter.kinds.is_empty() && !filter.kinds.iter().any(|k| k == e.kind.as_str()) {
        return false;
    }
    if !filter.scripts.is_empty() && !filter.scripts.contains(&e.identity.script_id) {
        return false;
    }
    if !filter.specialists.is_empty()
        && !e
            .identity
            .specialist
            .as_ref()
            .is_some_and(|s| filter.specialists.contains(s))
    {
        return false;
    }
    if let Some(want) = filter.success {
        let outcome = match e.kind {
            LifecycleKind::Finished => e.result.as_ref().map(|r| r.success),
            LifecycleKind::AttemptFailed => Some(false),
            _ => None,
        };
        if outcome != Some(want) {
            return false;
        }
    }
    true
}

/// Puts `event` on the queue of every plugin of `plugins` whose filter takes it. With
/// `acknowledge` (a `finished` event) and at least one acknowledging receiver, returns the
/// receipt their workers will answer.
pub(in crate::plugin) fn offer<'p>(
    plugins: impl Iterator<Item = (&'p Manifest, &'p Mailbox)>,
    event: &ExecutionEvent,
    acknowledge: bool,
) -> Option<Receipt> {
    let receivers: Vec<(&Manifest, &Mailbox)> = plugins
        .filter(|(m, _)| m.kind.takes_events() && passes(&m.filter, event))
        .collect();
    if receivers.is_empty() {
        return None;
    }
    let acknowledging: Vec<&Manifest> = receivers
        .iter()
        .map(|(m, _)| *m)
        .filter(|m| acknowledge && m.acknowledgements.enabled)
        .collect();
    let (ack, receipt) = if acknowledging.is_empty() {
        (None, None)
    } else {
        let timeout = acknowledging
            .iter()
            .map(|m| m.acknowledgements.timeout_ms)
            .max()
            .unwrap_or_default();
        let names = acknowledging.iter().map(|m| m.name.clone()).collect();
        let (group, receipt) = AckGroup::new(names, Duration::from_millis(timeout));
        (Some(group), Some(receipt))
    };
    let delivery = Arc::new(Delivery {
        event: event.clone(),
        json: std::sync::OnceLock::new(),
        records: Default::default(),
        ack,
    });
    for (m, mailbox) in receivers {
        let acknowledges = m.acknowledgements.enabled;
        let block = m.limits.on_full == OnFull::Block;
        let urgent = acknowledges && delivery.ack.is_some();
        if let Err(why) = mailbox.offer(delivery.clone(), block, urgent) {
            if let (Some(group), true) = (&delivery.ack, acknowledges) {
                group.deny(&m.name, why);
            }
        }
    }
    receipt
}
