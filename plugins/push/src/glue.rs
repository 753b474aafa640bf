//! The pushers' glue to the host (the SDK's pusher world, WIT 0.4.0): its clock in
//! milliseconds, its `http` import as the poster [`crate::sender`] expects, a
//! destination's figures as a `delivery` report.

use metaclaude_plugin_sdk::delivery::DestinationReport;
use metaclaude_plugin_sdk::types::Datetime;

use crate::sender::{Answer, Figures};

/// A WIT datetime as Unix milliseconds.
pub fn ms(t: &Datetime) -> i64 {
    t.seconds * 1000 + i64::from(t.nanoseconds / 1_000_000)
}

/// Unix milliseconds as a WIT datetime.
pub fn datetime(ms: i64) -> Datetime {
    Datetime {
        seconds: ms.div_euclid(1000),
        nanoseconds: (ms.rem_euclid(1000) * 1_000_000) as u32,
    }
}

/// A POST of a request body to `url` through the host's `http` import.
pub fn post<'a>(
    url: &'a str,
    headers: &'a [(String, String)],
) -> impl FnMut(&[u8]) -> Result<Answer, String> + 'a {
    move |body| {
        metaclaude_plugin_sdk::http::post(url, headers, body).map(|r| Answer {
            status: r.status,
            headers: r.headers,
            body: r.body,
        })
    }
}

/// One destination's report: `pending` items waiting, `dropped` given up on (the queue's
/// drops and the destination's refusals), the rest from `figures`.
pub fn report(
    destination: &str,
    unit: &str,
    pending: u64,
    dropped: u64,
    figures: &Figures,
) -> DestinationReport {
    DestinationReport {
        destination: destination.to_string(),
        unit: unit.to_string(),
        pending,
        sent: figures.sent,
        dropped,
        failed_requests: figures.failed_requests,
        retried_requests: figures.retried_requests,
        last_error: figures.last_error.clone(),
        last_error_at: figures.last_error_at_ms.map(datetime),
        last_success_at: figures.last_success_at_ms.map(datetime),
    }
}
