//! When to try again, as Prometheus' remote write does ([`verdict`]; OTLP retries fewer
//! statuses: [`otlp_verdict`]): a doubling backoff between
//! `min_backoff` and `max_backoff` after a failure that may pass (unreachable, 5xx,
//! 429), reset by a success; a receiver's `Retry-After` (seconds, or an HTTP date)
//! wins over it. Other 4xx are not retried: the request would fail again.

/// What to do with a request's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx: accepted.
    Accepted,
    /// 5xx, 429 or no answer: try the same samples again later.
    Retry,
    /// Another status (4xx, a 3xx that is never followed): the samples are dropped.
    Refused,
}

/// How an HTTP status is taken.
pub fn verdict(status: u16) -> Verdict {
    match status {
        200..=299 => Verdict::Accepted,
        429 | 500..=599 => Verdict::Retry,
        _ => Verdict::Refused,
    }
}

/// How an HTTP status is taken by OTLP/HTTP (the OpenTelemetry specification's
/// "Retryable Response Codes"): 429, 502, 503 and 504 are retried; every other 4xx or 5xx
/// is not (it would fail again).
pub fn otlp_verdict(status: u16) -> Verdict {
    match status {
        200..=299 => Verdict::Accepted,
        429 | 502 | 503 | 504 => Verdict::Retry,
        _ => Verdict::Refused,
    }
}

/// The longest wait a `Retry-After` may ask for: a receiver cannot stall the queue
/// longer than this at once.
pub const MAX_RETRY_AFTER_MS: u64 = 300_000;

/// The `min_backoff_ms` and `max_backoff_ms` keys of a pusher's `[config]`: each from
/// 1 ms to an hour, the second not below the first; absent keys keep `(min, max)`.
pub fn backoff_config(
    table: &metaclaude_plugin_sdk::config::Table,
    (mut min, mut max): (u64, u64),
) -> Result<(u64, u64), String> {
    if let Some(n) = table.whole("min_backoff_ms", 1, 3_600_000)? {
        min = n;
    }
    if let Some(n) = table.whole("max_backoff_ms", 1, 3_600_000)? {
        max = n;
    }
    if max < min {
        return Err(table.problem("max_backoff_ms", &format!("below min_backoff_ms ({min})")));
    }
    Ok((min, max))
}

/// A doubling backoff.
#[derive(Debug, Clone)]
pub struct Backoff {
    min_ms: u64,
    max_ms: u64,
    next_ms: u64,
}

impl Backoff {
    pub fn new(min_ms: u64, max_ms: u64) -> Backoff {
        Backoff {
            min_ms,
            max_ms,
            next_ms: min_ms,
        }
    }

    /// The wait after one more failure: the first is `min`, each next doubles, up to `max`.
    pub fn fail(&mut self) -> u64 {
        let wait = self.next_ms;
        self.next_ms = self.next_ms.saturating_mul(2).min(self.max_ms);
        wait
    }

    /// A success: the next failure waits `min` again.
    pub fn reset(&mut self) {
        self.next_ms = self.min_ms;
    }
}

/// A `Retry-After` value as milliseconds to wait from `now_ms` (Unix ms): delay-seconds
/// (`120`) or an HTTP date (`Wed, 21 Oct 2015 07:28:00 GMT`, IMF-fixdate; a date past is
/// 0); capped at [`MAX_RETRY_AFTER_MS`]. `None` for anything else.
pub fn retry_after_ms(value: &str, now_ms: i64) -> Option<u64> {
    let value = value.trim();
    let ms = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        value
            .parse::<u64>()
            .map_or(u64::MAX, |s| s.saturating_mul(1000))
    } else {
        let at = http_date_ms(value)?;
        u64::try_from(at.saturating_sub(now_ms)).unwrap_or(0)
    };
    Some(ms.min(MAX_RETRY_AFTER_MS))
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) as Unix milliseconds.
fn http_date_ms(s: &str) -> Option<i64> {
    let (_, rest) = s.split_once(", ")?;
    let mut parts = rest.split(' ');
    let day: i64 = parts.next()?.parse().ok()?;
    let month = parts.next()?;
    let year: i64 = parts.next()?.parse().ok()?;
    let time = parts.next()?;
    if parts.next()? != "GMT" || parts.next().is_some() {
        return None;
    }
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| *m == month)? as i64 + 1;
    let mut hms = time.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, sec) = (hms.next()??, hms.next()??, hms.next()??);
    if hms.next().is_some() || !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    // Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400) + h * 3600 + m * 60 + sec) * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_ceiling_and_resets() {
        let mut b = Backoff::new(250, 5000);
        let waits: Vec<u64> = (0..7).map(|_| b.fail()).collect();
        assert_eq!(waits, [250, 500, 1000, 2000, 4000, 5000, 5000]);
        b.reset();
        assert_eq!(b.fail(), 250);
    }

    #[test]
    fn statuses_as_prometheus_takes_them() {
        assert_eq!(verdict(200), Verdict::Accepted);
        assert_eq!(verdict(204), Verdict::Accepted);
        assert_eq!(verdict(429), Verdict::Retry);
        assert_eq!(verdict(500), Verdict::Retry);
        assert_eq!(verdict(503), Verdict::Retry);
        assert_eq!(verdict(400), Verdict::Refused);
        assert_eq!(verdict(404), Verdict::Refused);
        assert_eq!(verdict(413), Verdict::Refused);
        assert_eq!(
            verdict(302),
            Verdict::Refused,
            "redirects are never followed"
        );
    }

    #[test]
    fn statuses_as_the_otlp_specification_takes_them() {
        for status in [200, 202] {
            assert_eq!(otlp_verdict(status), Verdict::Accepted);
        }
        for status in [429, 502, 503, 504] {
            assert_eq!(otlp_verdict(status), Verdict::Retry, "{status}");
        }
        for status in [302, 400, 401, 403, 404, 413, 500, 501, 505] {
            assert_eq!(otlp_verdict(status), Verdict::Refused, "{status}");
        }
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let now = 1_445_412_470_000; // Wed, 21 Oct 2015 07:27:50 GMT
        assert_eq!(retry_after_ms("120", now), Some(120_000));
        assert_eq!(retry_after_ms(" 0 ", now), Some(0));
        assert_eq!(
            retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(10_000)
        );
        assert_eq!(
            retry_after_ms("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(0),
            "past"
        );
        assert_eq!(
            retry_after_ms("99999999999999999999", now),
            Some(MAX_RETRY_AFTER_MS)
        );
        assert_eq!(
            retry_after_ms("Thu, 01 Jan 2099 00:00:00 GMT", now),
            Some(MAX_RETRY_AFTER_MS)
        );
        for bad in [
            "",
            "-1",
            "1.5",
            "soon",
            "Wed, 21 Oct 2015 07:28:00 UTC",
            "Wed, 32 Oct 2015 07:28:00 GMT",
            "Wed, 21 Foo 2015 07:28:00 GMT",
        ] {
            assert_eq!(retry_after_ms(bad, now), None, "{bad:?}");
        }
        assert_eq!(http_date_ms("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            http_date_ms("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777_000)
        );
        assert_eq!(
            http_date_ms("Tue, 29 Feb 2000 12:00:00 GMT"),
            Some(951_825_600_000)
        );
    }
}
