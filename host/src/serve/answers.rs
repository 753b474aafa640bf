//! Answers shared between clients that accept a slightly old one: a request that says
//! `Cache-Control: max-age=N` (HTTP's own request directive) may be given the answer made
//! for the same path and query at most N seconds ago, with an `Age` header. The
//! dashboards ask so, and ten open pages then cost the server one computation of the
//! stats a second instead of ten. Without the header every answer is made afresh.
//!
//! Bounded: at most [`MAX_ENTRIES`] answers, none kept longer than [`MAX_AGE`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap};
use serde_json::Value;

/// Distinct queries kept at once.
pub const MAX_ENTRIES: usize = 64;
/// The oldest answer ever given.
pub const MAX_AGE: Duration = Duration::from_secs(10);

#[derive(Default)]
pub struct Answers {
    kept: Mutex<HashMap<String, (Instant, Arc<Value>)>>,
}

impl Answers {
    /// The answer for `key`: a kept one younger than what `headers` accept, else `make`'s
    /// (kept for the next). Returns it with its age in whole seconds.
    pub fn get_or_make(
        &self,
        key: String,
        headers: &HeaderMap,
        make: impl FnOnce() -> Value,
    ) -> (Arc<Value>, u64) {
        let accepted = accepted_age(headers);
        let now = Instant::now();
        if let Some(accepted) = accepted {
            if let Some((made, answer)) = self.kept.lock().unwrap().get(&key) {
                let age = now.duration_since(*made);
                if age <= accepted {
                    return (answer.clone(), age.as_secs());
                }
            }
        }
        let answer = Arc::new(make());
        let mut kept = self.kept.lock().unwrap();
        kept.retain(|_, (made, _)| now.duration_since(*made) <= MAX_AGE);
        if kept.len() >= MAX_ENTRIES {
            kept.clear();
        }
        kept.insert(key, (now, answer.clone()));
        (answer, 0)
    }
}

/// The age a request accepts (`Cache-Control: max-age=N`, at most [`MAX_AGE`]); `None`
/// for a fresh answer (no directive, `no-cache`, `max-age=0`, or one not understood).
fn accepted_age(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(header::CACHE_CONTROL)?.to_str().ok()?;
    let mut age = None;
    for directive in value.split(',').map(str::trim) {
        if directive.eq_ignore_ascii_case("no-cache") || directive.eq_ignore_ascii_case("no-store")
        {
            return None;
        }
        if let Some(n) = directive.strip_prefix("max-age=") {
            age = n.parse::<u64>().ok();
        }
    }
    let age = Duration::from_secs(age?);
    (age > Duration::ZERO).then_some(age.min(MAX_AGE))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn asking(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn shared_only_with_clients_that_accept_it_and_never_past_the_age() {
        let answers = Answers::default();
        let mut made = 0;
        let mut make = || {
            made += 1;
            Value::from(made)
        };
        let (a, age) = answers.get_or_make("q".into(), &asking("max-age=5"), &mut make);
        assert_eq!((&*a, age), (&Value::from(1), 0));
        let (a, _) = answers.get_or_make("q".into(), &asking("max-age=5"), &mut make);
        assert_eq!(*a, Value::from(1), "shared");
        let (a, _) = answers.get_or_make("q".into(), &HeaderMap::new(), &mut make);
        assert_eq!(*a, Value::from(2), "fresh without the header");
        for fresh in [
            "no-cache",
            "max-age=0",
            "max-age=soon",
            "max-age=5, no-cache",
        ] {
            let (a, _) = answers.get_or_make("q".into(), &asking(fresh), &mut make);
            assert!(a.as_i64() > Some(2), "{fresh}");
        }
        let (a, _) = answers.get_or_make("other".into(), &asking("max-age=5"), &mut make);
        assert_eq!(*a, Value::from(7), "per query");
        assert_eq!(accepted_age(&asking("max-age=3600")), Some(MAX_AGE));
        for i in 0..(2 * MAX_ENTRIES) {
            answers.get_or_make(format!("k{i}"), &HeaderMap::new(), &mut make);
        }
        assert!(answers.kept.lock().unwrap().len() <= MAX_ENTRIES);
    }
}
