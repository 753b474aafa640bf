//! What the notifier plugins share, defined once.
//!
//! * [`text`]: text from outside made safe for a terminal, and cut to a budget.
//! * [`line`](mod@line): an alert in one line for people (the console notifier, chat messages).
//! * [`alertmanager`]: an alert's label set and annotations in Alertmanager's terms.
//! * [`config`]: the notifiers' `[config]` readers (a URL to post to, request headers) on
//!   top of the SDK's `config::Table`.
//! * [`http`]: what an HTTP answer means for a delivery, and URLs made safe to show.
//! * `sdk` (feature `sdk`): the SDK's alert record converted, the host's clock, the POST.
//! * `testing` (feature `testing`): a real Alertmanager, a loopback HTTP client and a
//!   listener, for integration tests.
//!
//! The alert itself and its JSON are `metaclaude_formats::alerts` (the host writes the
//! same JSON to its alert history). Everything but `sdk` builds natively, so each
//! notifier's logic is tested without the component glue.

pub mod alertmanager;
pub mod config;
pub mod http;
pub mod line;
pub mod text;

#[cfg(feature = "sdk")]
pub mod sdk;

#[cfg(any(test, feature = "testing"))]
pub mod test_alerts;
#[cfg(feature = "testing")]
pub mod testing;
