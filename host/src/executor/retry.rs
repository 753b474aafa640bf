//! The retry policy: which failures are retried, and the backoff before each retry.

use rand::Rng;

use crate::model::ErrorDetails;
use crate::registry::RetryPolicy;

/// Whether a failed attempt is retried (the attempt count aside).
pub(super) fn should_retry(
    policy: &RetryPolicy,
    error: &ErrorDetails,
    exit_code: Option<i32>,
) -> bool {
    if error.category.is_never_retried() {
        return false;
    }
    policy.retry_on_categories.contains(&error.category)
        || exit_code.is_some_and(|c| policy.retry_on_exit_codes.contains(&c))
}

/// Capped exponential backoff with full jitter (uniform between zero and the step).
pub(super) fn backoff_ms(policy: &RetryPolicy, retry_index: u32) -> u64 {
    let step = (policy.initial_ms as f64 * policy.multiplier.powi(retry_index as i32))
        .min(policy.max_ms as f64) as u64;
    if policy.jitter {
        rand::rng().random_range(0..=step)
    } else {
        step
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ErrorCategory;

    #[test]
    fn backoff_is_capped_exponential_with_full_jitter() {
        let mut p = RetryPolicy {
            initial_ms: 100,
            max_ms: 1000,
            multiplier: 2.0,
            jitter: false,
            ..RetryPolicy::default()
        };
        let steps: Vec<u64> = (0..6).map(|i| backoff_ms(&p, i)).collect();
        assert_eq!(steps, vec![100, 200, 400, 800, 1000, 1000]);
        p.jitter = true;
        for i in 0..50 {
            assert!(backoff_ms(&p, i % 6) <= 1000);
        }
    }

    #[test]
    fn never_retries_what_a_retry_cannot_fix() {
        let p = RetryPolicy::default();
        let mut e = ErrorDetails {
            category: ErrorCategory::Permission,
            message: String::new(),
            context: Default::default(),
            suggestions: vec![],
            stack_trace: None,
        };
        assert!(!should_retry(&p, &e, Some(75)));
        e.category = ErrorCategory::Timeout;
        assert!(should_retry(&p, &e, None));
        e.category = ErrorCategory::Execution;
        assert!(!should_retry(&p, &e, Some(1)));
        assert!(should_retry(&p, &e, Some(75)));
    }
}
