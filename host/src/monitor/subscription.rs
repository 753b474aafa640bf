//! What a live-feed client asks for: the feed items it takes ([`Subscription`]), from the
//! query string of its `/ws` request or from a message it sends at any time. Pure parsers
//! (no I/O): the fuzz target `feed_message` drives [`parse_client_message`].

use serde::Deserialize;

use super::FeedItem;

/// Which events a client wants (empty lists: all).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscription {
    /// Lifecycle kinds (`finished`, ...) and `alert`.
    #[serde(default)]
    pub kinds: Vec<String>,
    /// Script ids: events of other scripts are left out (alerts are not).
    #[serde(default)]
    pub scripts: Vec<String>,
    /// Specialists: events of other specialists' scripts are left out (alerts are not).
    #[serde(default)]
    pub specialists: Vec<String>,
}

impl Subscription {
    /// Whether the client wants `item`. An alert is the kind `alert`; the script and
    /// specialist filters narrow events only (an alert about one specialist is still news
    /// to a client watching some scripts).
    pub fn takes(&self, item: &FeedItem) -> bool {
        let Some(kind) = item.kind else {
            return self.kinds.is_empty() || self.kinds.iter().any(|k| k == "alert");
        };
        (self.kinds.is_empty() || self.kinds.iter().any(|k| k == kind.as_str()))
            && (self.scripts.is_empty() || self.scripts.contains(&item.script_id))
            && (self.specialists.is_empty()
                || item
                    .specialist
                    .as_ref()
                    .is_some_and(|s| self.specialists.contains(s)))
    }

    /// Every kind named is one the feed has.
    pub fn check(&self) -> Result<(), SubscriptionError> {
        match self.kinds.iter().find(|k| !KINDS.contains(&k.as_str())) {
            Some(bad) => Err(SubscriptionError::UnknownKind { kind: bad.clone() }),
            None => Ok(()),
        }
    }
}

/// The kinds of items the feed has.
const KINDS: [&str; 6] = [
    "queued",
    "started",
    "attempt_failed",
    "retry_scheduled",
    "finished",
    "alert",
];

/// What is wrong with a subscription (said back to the client; the connection stays).
#[derive(Debug, thiserror::Error)]
pub enum SubscriptionError {
    /// `kinds` names one the feed does not have (a lifecycle kind or `alert`).
    #[error("unknown kind {kind:?} (known: {})", KINDS.join(", "))]
    UnknownKind {
        /// The kind as the client wrote it.
        kind: String,
    },
    /// Not a `subscribe` message: serde_json's message and the shape expected.
    #[error("{json} (send {{\"subscribe\": {{\"kinds\": [...], \"scripts\": [...], \"specialists\": [...]}}}})")]
    NotASubscription {
        /// What is wrong with the message, at which line and column.
        json: serde_json::Error,
    },
}

/// The query-string form: comma-separated lists.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionQuery {
    kinds: Option<String>,
    scripts: Option<String>,
    specialists: Option<String>,
}

impl SubscriptionQuery {
    /// The lists split at commas, blanks trimmed and empty entries dropped.
    pub fn into_subscription(self) -> Subscription {
        let split = |s: Option<String>| -> Vec<String> {
            s.map(|s| {
                s.split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
        };
        Subscription {
            kinds: split(self.kinds),
            scripts: split(self.scripts),
            specialists: split(self.specialists),
        }
    }
}

/// What a client may send.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientMessage {
    subscribe: Subscription,
}

/// A message a live-feed client sent, as the subscription it asks for, or what is wrong
/// with it (said back to the client; the connection stays).
pub fn parse_client_message(text: &str) -> Result<Subscription, SubscriptionError> {
    let ClientMessage { subscribe } =
        serde_json::from_str(text).map_err(|json| SubscriptionError::NotASubscription { json })?;
    subscribe.check()?;
    Ok(subscribe)
}
