//! The seed's metrics as OTLP metrics (`opentelemetry/proto/metrics/v1/metrics.proto`),
//! from the Prometheus exporter's series (`metaclaude_prometheus_series`: the same
//! families, label caps and buckets, walked as [`Exporter::points`]):
//!
//! ```text
//! ExportMetricsServiceRequest { repeated ResourceMetrics resource_metrics = 1; }
//! ResourceMetrics { Resource resource = 1; repeated ScopeMetrics scope_metrics = 2; }
//! ScopeMetrics    { InstrumentationScope scope = 1; repeated Metric metrics = 2; }
//! Metric { string name = 1; string description = 2; string unit = 3;
//!          oneof data { Sum sum = 7; Histogram histogram = 9; } }
//! Sum       { repeated NumberDataPoint data_points = 1;
//!             AggregationTemporality aggregation_temporality = 2; bool is_monotonic = 3; }
//! Histogram { repeated HistogramDataPoint data_points = 1;
//!             AggregationTemporality aggregation_temporality = 2; }
//! NumberDataPoint { repeated KeyValue attributes = 7; fixed64 start_time_unix_nano = 2;
//!                   fixed64 time_unix_nano = 3; double as_double = 4; }
//! HistogramDataPoint { repeated KeyValue attributes = 9; fixed64 start_time_unix_nano = 2;
//!                      fixed64 time_unix_nano = 3; fixed64 count = 4; double sum = 5;
//!                      repeated fixed64 bucket_counts = 6; repeated double explicit_bounds = 7; }
//! ```
//!
//! Each family is a `Metric` under the seed's name (`metaclaude.executions.total`,
//! `metaclaude.execution.duration_seconds` ...) and unit (UCUM: `s`, `MiBy`,
//! `{execution}`); counters are cumulative monotonic sums, histograms cumulative
//! explicit-bucket histograms with the Prometheus exporter's bounds (memory in MiB, the
//! seed's unit); attributes are the Prometheus labels (`script`, `specialist`,
//! `category`), so a Collector's Prometheus exporter or remote write gives the series
//! the Grafana dashboards query. A point's start is when its series was made; its time,
//! the snapshot's.
//!
//! Snapshots are taken every interval ([`Metrics::due`]); none before the first interval
//! has passed, so an instance that only lives to be listed or checked sends nothing, and
//! a one-shot `run` (whose counters would start from zero in every process, a reset to a
//! receiver each time) sends its trace and log record only.

use metaclaude_prometheus_series::config::Config as SeriesConfig;
use metaclaude_prometheus_series::families::{Exporter, FamilyInfo, Finished, Point, Value};
use metaclaude_push::proto::{
    bytes_field, double_field, fixed64_field, key, message_field, varint, varint_field, LEN,
};

use crate::trace::{attribute, Value as Attribute};

/// `AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE`.
const CUMULATIVE: u64 = 2;

/// Seconds since the Unix epoch as Unix nanoseconds.
fn ns(seconds: f64) -> u64 {
    if seconds.is_finite() && seconds > 0.0 {
        (seconds * 1e9) as u64
    } else {
        0
    }
}

/// The series, and when to take the next snapshot of them.
pub struct Metrics {
    series: Exporter,
    interval_ms: i64,
    next_ms: i64,
    snapshots: u64,
}

impl Metrics {
    /// Empty series at `now_ms`; the first snapshot one `interval_ms` away.
    pub fn new(config: &SeriesConfig, interval_ms: u64, now_ms: i64) -> Metrics {
        Metrics {
            series: Exporter::new(config, now_ms as f64 / 1000.0),
            interval_ms: interval_ms as i64,
            next_ms: now_ms + interval_ms as i64,
            snapshots: 0,
        }
    }

    /// Counts a finished execution; warnings to log (a label cap reached) go to
    /// `warnings`.
    pub fn observe(&mut self, f: &Finished, warnings: &mut Vec<String>) {
        self.series.observe(f, warnings);
    }

    /// A snapshot (its `Metric` messages) when one is due at `now_ms`; the next is an
    /// interval later (intervals a stalled host missed are not made up).
    pub fn due(&mut self, now_ms: i64) -> Option<Vec<Vec<u8>>> {
        if now_ms < self.next_ms {
            return None;
        }
        let behind = (now_ms - self.next_ms) / self.interval_ms;
        self.next_ms += (behind + 1) * self.interval_ms;
        self.snapshots += 1;
        Some(metrics(&self.series, ns(now_ms as f64 / 1000.0)))
    }

    /// At shutdown: a last snapshot, if this instance has run an interval.
    pub fn last(&mut self, now_ms: i64) -> Option<Vec<Vec<u8>>> {
        (self.snapshots > 0).then(|| {
            self.snapshots += 1;
            metrics(&self.series, ns(now_ms as f64 / 1000.0))
        })
    }
}

/// One `Metric` being written: its family, and its data points so far.
struct Open {
    info: FamilyInfo,
    histogram: bool,
    points: Vec<u8>,
}

impl Open {
    fn finish(self) -> Vec<u8> {
        let mut m = Vec::with_capacity(self.points.len() + 256);
        bytes_field(&mut m, 1, self.info.seed_name.as_bytes());
        bytes_field(&mut m, 2, self.info.help.as_bytes());
        bytes_field(&mut m, 3, self.info.seed_unit.as_bytes());
        let field = if self.histogram { 9 } else { 7 };
        message_field(&mut m, field, |data| {
            data.extend_from_slice(&self.points);
            varint_field(data, 2, CUMULATIVE);
            if !self.histogram {
                varint_field(data, 3, 1);
            }
        });
        m
    }
}

/// Every family of `series` with points, each a protobuf `Metric`, at `now_ns`.
pub fn metrics(series: &Exporter, now_ns: u64) -> Vec<Vec<u8>> {
    let mut done = Vec::with_capacity(8);
    let mut open: Option<Open> = None;
    series.points(&mut |info, p| {
        if open
            .as_ref()
            .is_none_or(|o| o.info.seed_name != info.seed_name)
        {
            done.extend(open.take().map(Open::finish));
            open = Some(Open {
                info: *info,
                histogram: matches!(p.value, Value::Histogram { .. }),
                points: Vec::with_capacity(1024),
            });
        }
        let o = open.as_mut().expect("opened above");
        data_point(&mut o.points, info, &p, now_ns);
    });
    done.extend(open.map(Open::finish));
    done
}

/// One point as a `NumberDataPoint` or `HistogramDataPoint`, field 1 of its `Sum` or
/// `Histogram`.
fn data_point(out: &mut Vec<u8>, info: &FamilyInfo, p: &Point<'_>, now_ns: u64) {
    let scale = info.per_seed_unit;
    message_field(out, 1, |dp| match p.value {
        Value::Counter(v) => {
            for (k, v) in p.labels {
                attribute(dp, 7, k, Attribute::Str(v));
            }
            fixed64_field(dp, 2, ns(p.since));
            fixed64_field(dp, 3, now_ns);
            double_field(dp, 4, v / scale);
        }
        Value::Histogram {
            bounds,
            counts,
            sum,
        } => {
            for (k, v) in p.labels {
                attribute(dp, 9, k, Attribute::Str(v));
            }
            fixed64_field(dp, 2, ns(p.since));
            fixed64_field(dp, 3, now_ns);
            fixed64_field(dp, 4, counts.iter().sum());
            double_field(dp, 5, sum / scale);
            key(dp, 6, LEN);
            varint(dp, counts.len() as u64 * 8);
            for c in counts {
                dp.extend_from_slice(&c.to_le_bytes());
            }
            key(dp, 7, LEN);
            varint(dp, bounds.len() as u64 * 8);
            for b in bounds {
                dp.extend_from_slice(&(b / scale).to_le_bytes());
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
    use opentelemetry_proto::tonic::metrics::v1::metric::Data;
    use opentelemetry_proto::tonic::metrics::v1::{AggregationTemporality, Metric};
    use prost::Message;

    use super::*;
    use crate::trace::{request, resource, scope};

    const T0_MS: i64 = 1_700_000_000_000;

    fn finished(script: &str, success: bool, at_s: f64) -> Finished {
        Finished {
            script: script.into(),
            specialist: Some("ops".into()),
            success,
            category: (!success).then(|| "TIMEOUT".to_string()),
            duration_seconds: 0.2,
            memory_peak_mb: 13.5,
            cpu_time_seconds: 0.125,
            retries: u32::from(!success),
            at: at_s,
        }
    }

    fn decoded(items: &[Vec<u8>]) -> Vec<Metric> {
        let body = request(
            &resource("svc", None, &[]),
            &scope(),
            items.iter().map(|m| &m[..]),
        );
        let r = ExportMetricsServiceRequest::decode(&body[..]).expect("a metrics request");
        assert_eq!(r.resource_metrics.len(), 1);
        r.resource_metrics[0].scope_metrics[0].metrics.clone()
    }

    fn attrs(list: &[opentelemetry_proto::tonic::common::v1::KeyValue]) -> Vec<(String, String)> {
        list.iter()
            .map(|kv| match &kv.value.as_ref().unwrap().value {
                Some(Any::StringValue(s)) => (kv.key.clone(), s.clone()),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn the_seeds_metrics_decode_with_the_official_definitions() {
        let config = SeriesConfig {
            duration_buckets: vec![0.1, 1.0],
            memory_buckets_mb: vec![8.0, 16.0],
            ..SeriesConfig::default()
        };
        let mut m = Metrics::new(&config, 1000, T0_MS);
        let mut warnings = Vec::new();
        m.observe(&finished("backup", true, 1_700_000_000.5), &mut warnings);
        m.observe(&finished("backup", false, 1_700_000_000.7), &mut warnings);
        assert!(m.due(T0_MS + 999).is_none(), "not before an interval");
        let items = m.due(T0_MS + 1000).expect("a snapshot");
        let metrics = decoded(&items);
        let names: Vec<&str> = metrics.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "metaclaude.executions.total",
                "metaclaude.executions.success",
                "metaclaude.executions.failure",
                "metaclaude.execution.duration_seconds",
                "metaclaude.resource.memory_peak_mb",
                "metaclaude.resource.cpu_time_seconds",
                "metaclaude.executions.retries",
                "metaclaude.exporter.label_overflow",
            ]
        );
        let total = &metrics[0];
        assert_eq!(total.unit, "{execution}");
        assert!(total.description.contains("Finished executions"));
        let Some(Data::Sum(sum)) = &total.data else {
            panic!("{total:?}")
        };
        assert!(sum.is_monotonic);
        assert_eq!(
            sum.aggregation_temporality,
            AggregationTemporality::Cumulative as i32
        );
        let p = &sum.data_points[0];
        assert_eq!(
            attrs(&p.attributes),
            [
                ("script".to_string(), "backup".to_string()),
                ("specialist".to_string(), "ops".to_string())
            ]
        );
        assert_eq!(p.start_time_unix_nano, 1_700_000_000_500_000_000);
        assert_eq!(p.time_unix_nano, 1_700_000_001_000_000_000);
        assert_eq!(
            p.value,
            Some(opentelemetry_proto::tonic::metrics::v1::number_data_point::Value::AsDouble(2.0))
        );
        let Some(Data::Sum(failures)) = &metrics[2].data else {
            panic!()
        };
        assert_eq!(
            attrs(&failures.data_points[0].attributes)[2],
            ("category".to_string(), "TIMEOUT".to_string())
        );
        assert_eq!(
            failures.data_points[0].start_time_unix_nano, 1_700_000_000_700_000_000,
            "the failures' series began with the first failure"
        );
        let Some(Data::Histogram(duration)) = &metrics[3].data else {
            panic!("{:?}", metrics[3])
        };
        assert_eq!(metrics[3].unit, "s");
        assert_eq!(
            duration.aggregation_temporality,
            AggregationTemporality::Cumulative as i32
        );
        let h = &duration.data_points[0];
        assert_eq!(h.explicit_bounds, [0.1, 1.0]);
        assert_eq!(h.bucket_counts, [0, 2, 0], "each bucket's own count");
        assert_eq!((h.count, h.sum), (2, Some(0.4)));
        let Some(Data::Histogram(memory)) = &metrics[4].data else {
            panic!()
        };
        assert_eq!(metrics[4].unit, "MiBy");
        let h = &memory.data_points[0];
        assert_eq!(h.explicit_bounds, [8.0, 16.0], "the seed's MiB");
        assert_eq!(
            (h.bucket_counts.clone(), h.sum),
            (vec![0, 2, 0], Some(27.0))
        );
        let Some(Data::Sum(overflow)) = &metrics[7].data else {
            panic!()
        };
        assert_eq!(overflow.data_points.len(), 3);
        assert_eq!(
            overflow.data_points[0].start_time_unix_nano, 1_700_000_000_000_000_000,
            "the exporter's start"
        );
    }

    #[test]
    fn snapshots_come_each_interval_and_a_last_one_only_once_running() {
        let mut m = Metrics::new(&SeriesConfig::default(), 1000, 0);
        assert!(
            m.last(500).is_none(),
            "never ran an interval: sends nothing"
        );
        assert!(m.due(1000).is_some());
        assert!(m.due(1500).is_none());
        assert!(m.due(2000).is_some());
        assert!(
            m.due(9000).is_some() && m.due(9500).is_none(),
            "a stalled host's missed intervals are not made up"
        );
        assert!(m.last(9600).is_some());
        let empty = decoded(&m.last(9700).unwrap());
        assert_eq!(
            empty.len(),
            1,
            "without executions only the overflow counters: {empty:?}"
        );
    }
}
