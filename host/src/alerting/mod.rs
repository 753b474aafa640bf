//! The whole life of an alert once a rule (or the host, about a plugin) raised it:
//! * [`book`]: the active alerts, grouped by each receiver's routing, and what each
//!   notifier is to be told and when (group wait, repeat, resolve timeout, escalation);
//! * [`router`]: the one thread that keeps the book (`alert-router`), hands what is due to
//!   the notifiers' queues ([`NotifierQueue`]), writes every change to the [`history`] and
//!   tells the library's callbacks;
//! * [`outbox`]: a notifier's undelivered alerts and its retries' policy (backoff, the
//!   attempts before giving up, bounded);
//! * [`history`]: every change appended to `alerts.jsonl`, and the queries over it;
//! * [`matchers`]: label matchers (`=`, `!=`, `=~`, `!~`) over an alert's labels;
//! * [`silences`]: silences (matchers, a start, an end, who and why) and their store,
//!   `silences.json` beside the history;
//! * [`inhibit`]: inhibition rules (a firing alert keeps others of the same labels from
//!   being notified), built in and from `--inhibit-rules FILE`;
//! * [`maintenance`]: recurring maintenance windows from the same file (a cron schedule
//!   and a duration), muting as silences do.
//!
//! The order of alerts everywhere is `Alert::most_severe_first` (the model's). No plugin
//! knowledge here: `plugin` implements [`NotifierQueue`] with a plugin's mailbox, and its
//! worker calls the notifier with what the outbox holds; `serve` and `cli` only adapt.

pub mod book;
pub mod history;
pub mod inhibit;
pub mod maintenance;
pub mod matchers;
pub mod outbox;
pub mod router;
pub mod silences;

pub use book::{AlertBook, Outcome, Routing};
pub use history::{AlertHistory, HistoryQuery};
pub use inhibit::InhibitRules;
pub use router::{AlertCallback, AlertRouter, NotifierQueue, RouterStats};
pub use silences::{SilenceStore, Silences};
