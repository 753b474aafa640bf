//! Dispatch: each event offered to the queue of every plugin whose filter takes it; the
//! executor's [`EventSink`] side of [`PluginHost`].

use std::sync::Arc;
use std::time::Duration;

use super::ack::AckGroup;
use super::delivery::Delivery;
use super::host::{LoadedPlugin, PluginHost};
use super::manifest::{self, OnFull};
use crate::executor::{EventSink, Receipt};
use crate::model::{ExecutionEvent, LifecycleKind};

fn passes(filter: &manifest::Filter, e: &ExecutionEvent) -> bool {
    if !filter.kinds.is_empty() && !filter.kinds.iter().any(|k| k == e.kind.as_str()) {
        return false;
    }
    if !filter.scripts.is_empty() && !filter.scripts.contains(&e.script_id) {
        return false;
    }
    if !filter.specialists.is_empty()
        && !e
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

impl EventSink for PluginHost {
    fn emit(&self, event: &ExecutionEvent) {
        self.offer(event, false);
    }

    fn emit_finished(&self, event: &ExecutionEvent) -> Option<Receipt> {
        self.offer(event, true)
    }
}

impl PluginHost {
    /// Puts `event` on the queue of every plugin whose filter takes it. With `acknowledge`
    /// (a `finished` event) and at least one acknowledging receiver, returns the receipt
    /// their workers will answer.
    fn offer(&self, event: &ExecutionEvent, acknowledge: bool) -> Option<Receipt> {
        // Held while offering: see `PluginHost` on why a reload cannot lose events.
        let plugins = self.plugins.read().unwrap();
        let receivers: Vec<&Arc<LoadedPlugin>> = plugins
            .iter()
            .filter(|p| p.manifest.kind.takes_events() && passes(&p.manifest.filter, event))
            .collect();
        if receivers.is_empty() {
            return None;
        }
        let acknowledging: Vec<&Arc<LoadedPlugin>> = receivers
            .iter()
            .copied()
            .filter(|p| acknowledge && p.manifest.acknowledgements.enabled)
            .collect();
        let (ack, receipt) = if acknowledging.is_empty() {
            (None, None)
        } else {
            let timeout = acknowledging
                .iter()
                .map(|p| p.manifest.acknowledgements.timeout_ms)
                .max()
                .unwrap_or_default();
            let names = acknowledging
                .iter()
                .map(|p| p.manifest.name.clone())
                .collect();
            let (group, receipt) = AckGroup::new(names, Duration::from_millis(timeout));
            (Some(group), Some(receipt))
        };
        let delivery = Arc::new(Delivery {
            event: event.clone(),
            json: std::sync::OnceLock::new(),
            ack,
        });
        for p in receivers {
            let acknowledges = p.manifest.acknowledgements.enabled;
            let block = p.manifest.limits.on_full == OnFull::Block;
            let urgent = acknowledges && delivery.ack.is_some();
            if let Err(why) = p.mailbox.offer(delivery.clone(), block, urgent) {
                if let (Some(group), true) = (&delivery.ack, acknowledges) {
                    group.deny(&p.manifest.name, why);
                }
            }
        }
        receipt
    }
}
