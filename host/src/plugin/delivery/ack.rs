//! Acknowledged delivery, the way log shippers do end-to-end acknowledgements: the
//! executor reports an execution as finished only once every plugin that acknowledges
//! (manifest `[acknowledgements] enabled = true`) has handled its `finished` event.
//!
//! One [`AckGroup`] travels with such an event to every plugin. The worker of each
//! acknowledging plugin answers it exactly once: it confirms after the plugin's
//! `handle-batch` (and, with `sync`, its `flush`) returned ok, and denies when the call
//! failed or the event was dropped (queue full, plugin quarantined). The first denial
//! answers the receipt at once; a group dropped unanswered (its plugin was unloaded)
//! counts as a denial, so a receipt never waits for an answer that cannot come; and the
//! receipt carries its own deadline.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::executor::Receipt;

pub struct AckGroup {
    state: Mutex<State>,
}

struct State {
    /// Acknowledging plugins that have not answered yet.
    waiting: usize,
    answer: Option<oneshot::Sender<Result<(), String>>>,
}

impl AckGroup {
    /// A group expecting an answer from each of `plugins`, and the receipt the executor
    /// awaits: it fails after `timeout`, naming the plugins.
    pub fn new(plugins: Vec<String>, timeout: Duration) -> (Arc<AckGroup>, Receipt) {
        let (tx, rx) = oneshot::channel();
        let group = Arc::new(AckGroup {
            state: Mutex::new(State {
                waiting: plugins.len(),
                answer: Some(tx),
            }),
        });
        let deadline = tokio::time::Instant::now() + timeout;
        let receipt = Box::pin(async move {
            match tokio::time::timeout_at(deadline, rx).await {
                Ok(Ok(answer)) => answer,
                Ok(Err(_)) => Err(format!(
                    "plugin {} went away before confirming",
                    plugins.join(", ")
                )),
                Err(_) => Err(format!(
                    "plugin {} did not confirm within {} ms (raise [acknowledgements] timeout_ms, or see `metaclaude plugins list`)",
                    plugins.join(", "),
                    timeout.as_millis()
                )),
            }
        });
        (group, receipt)
    }

    /// One plugin stored the event; the last confirmation answers the receipt.
    pub fn confirm(&self) {
        let mut s = self.state.lock().unwrap();
        s.waiting = s.waiting.saturating_sub(1);
        if s.waiting == 0 {
            if let Some(tx) = s.answer.take() {
                let _ = tx.send(Ok(()));
            }
        }
    }

    /// `plugin` did not store the event: answers the receipt with the reason at once.
    pub fn deny(&self, plugin: &str, why: impl fmt::Display) {
        let mut s = self.state.lock().unwrap();
        s.waiting = s.waiting.saturating_sub(1);
        if let Some(tx) = s.answer.take() {
            let _ = tx.send(Err(format!("plugin {plugin} did not store it: {why}")));
        }
    }
}

impl Drop for AckGroup {
    fn drop(&mut self) {
        let s = self.state.get_mut().unwrap();
        if let Some(tx) = s.answer.take() {
            let _ = tx.send(Err(
                "an acknowledging plugin was unloaded before it answered".into(),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(receipt: Receipt) -> Result<(), String> {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(receipt)
    }

    #[test]
    fn every_plugin_must_confirm() {
        let (g, r) = AckGroup::new(vec!["a".into(), "b".into()], Duration::from_secs(5));
        g.confirm();
        g.confirm();
        assert_eq!(answer(r), Ok(()));
    }

    #[test]
    fn the_first_denial_answers_at_once() {
        let (g, r) = AckGroup::new(vec!["a".into(), "b".into()], Duration::from_secs(5));
        g.deny("a", "disk full");
        assert_eq!(
            answer(r),
            Err("plugin a did not store it: disk full".into())
        );
        g.confirm();
    }

    #[test]
    fn silence_ends_at_the_deadline_and_a_dropped_group_is_a_denial() {
        let (g, r) = AckGroup::new(vec!["slow".into()], Duration::from_millis(20));
        let err = answer(r).unwrap_err();
        assert!(
            err.starts_with("plugin slow did not confirm within 20 ms"),
            "{err}"
        );
        drop(g);
        let (g, r) = AckGroup::new(vec!["gone".into()], Duration::from_secs(5));
        drop(g);
        assert!(answer(r)
            .unwrap_err()
            .contains("unloaded before it answered"));
    }
}
