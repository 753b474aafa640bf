//! The remote write 1.0 wire format: a protobuf `prometheus.WriteRequest` (Prometheus'
//! `prompb/remote.proto` and `types.proto`), compressed with snappy's block format.
//!
//! ```text
//! message WriteRequest { repeated TimeSeries timeseries = 1; reserved 2; repeated MetricMetadata metadata = 3; }
//! message TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; ... }
//! message Label        { string name = 1; string value = 2; }
//! message Sample       { double value = 1; int64 timestamp = 2; }  // milliseconds
//! ```
//!
//! A series' labels are sorted by name, `__name__` among them, as the protocol requires;
//! they are encoded once per series ([`series_labels`]) and copied into each request.

/// The request headers of the protocol (the host adds `User-Agent`, `Host` and
/// `Content-Length`).
pub const HEADERS: [(&str, &str); 3] = [
    ("Content-Encoding", "snappy"),
    ("Content-Type", "application/x-protobuf"),
    ("X-Prometheus-Remote-Write-Version", "0.1.0"),
];

use metaclaude_push::proto::{bytes_field, key, varint, varint_len, I64, LEN, VARINT};

/// The `labels` fields of a `TimeSeries` (each a `Label`): `name` as `__name__` and
/// `labels`, sorted by name; a name given twice keeps its first value.
pub fn series_labels(name: &str, labels: &[(&str, &str)]) -> Vec<u8> {
    let mut all: Vec<(&str, &str)> = Vec::with_capacity(labels.len() + 1);
    all.push(("__name__", name));
    all.extend_from_slice(labels);
    // Stable: of two equal names, the one given first comes first and is kept.
    all.sort_by(|a, b| a.0.cmp(b.0));
    all.dedup_by(|later, first| later.0 == first.0);
    let mut out = Vec::with_capacity(all.iter().map(|(n, v)| n.len() + v.len() + 6).sum());
    let mut label = Vec::new();
    for (n, v) in all {
        label.clear();
        bytes_field(&mut label, 1, n.as_bytes());
        bytes_field(&mut label, 2, v.as_bytes());
        bytes_field(&mut out, 1, &label);
    }
    out
}

/// The bytes one `Sample` adds to a `TimeSeries`.
pub fn sample_len(timestamp_ms: i64) -> usize {
    // key, length, (key, 8 bytes), (key, varint)
    2 + 9 + 1 + varint_len(timestamp_ms as u64)
}

/// The bytes a `TimeSeries` of `labels` (from [`series_labels`]) with samples of `body`
/// bytes takes in a `WriteRequest`.
pub fn series_len(labels: &[u8], body: usize) -> usize {
    let inner = labels.len() + body;
    1 + varint_len(inner as u64) + inner
}

/// Writes a `WriteRequest`: each series' labels (from [`series_labels`]) with its
/// samples (timestamp in milliseconds, value), oldest first.
pub fn write_request<'a>(
    series: impl IntoIterator<Item = (&'a [u8], &'a [(i64, f64)])>,
    capacity: usize,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(capacity);
    let mut ts = Vec::new();
    for (labels, samples) in series {
        ts.clear();
        ts.extend_from_slice(labels);
        for &(t, v) in samples {
            key(&mut ts, 2, LEN);
            varint(&mut ts, (sample_len(t) - 2) as u64);
            key(&mut ts, 1, I64);
            ts.extend_from_slice(&v.to_le_bytes());
            key(&mut ts, 2, VARINT);
            varint(&mut ts, t as u64);
        }
        bytes_field(&mut out, 1, &ts);
    }
    out
}

/// Snappy's block format (not its framing format), as remote write has it.
pub fn compress(body: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(body)
        .expect("snappy compresses any input below 4 GiB")
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    // Prometheus' prompb, declared for prost: an independent decoder of what we write.
    #[derive(Clone, PartialEq, prost::Message)]
    struct WriteRequest {
        #[prost(message, repeated, tag = "1")]
        timeseries: Vec<TimeSeries>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct TimeSeries {
        #[prost(message, repeated, tag = "1")]
        labels: Vec<Label>,
        #[prost(message, repeated, tag = "2")]
        samples: Vec<Sample>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct Label {
        #[prost(string, tag = "1")]
        name: String,
        #[prost(string, tag = "2")]
        value: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct Sample {
        #[prost(double, tag = "1")]
        value: f64,
        #[prost(int64, tag = "2")]
        timestamp: i64,
    }

    fn label(name: &str, value: &str) -> Label {
        Label {
            name: name.into(),
            value: value.into(),
        }
    }

    #[test]
    fn prost_decodes_what_we_write() {
        let a = series_labels(
            "metaclaude_executions_total",
            &[
                ("script", "héllo \"x\"\n"),
                ("specialist", "none"),
                ("host", "a"),
            ],
        );
        let b = series_labels("up", &[("Zeta", "1"), ("host", "a"), ("host", "ignored")]);
        let samples_a = [(1_700_000_000_123, 3.0), (1_700_000_015_123, 4.5)];
        let samples_b = [
            (-5, f64::INFINITY),
            (0, -0.25),
            (i64::MAX, f64::MIN_POSITIVE),
        ];
        let body = write_request([(&a[..], &samples_a[..]), (&b[..], &samples_b[..])], 0);
        let expected_len = series_len(&a, samples_a.iter().map(|s| sample_len(s.0)).sum())
            + series_len(&b, samples_b.iter().map(|s| sample_len(s.0)).sum());
        assert_eq!(
            body.len(),
            expected_len,
            "the batcher's size sums are exact"
        );
        let got = WriteRequest::decode(&body[..]).unwrap();
        assert_eq!(got.timeseries.len(), 2);
        assert_eq!(
            got.timeseries[0].labels,
            [
                label("__name__", "metaclaude_executions_total"),
                label("host", "a"),
                label("script", "héllo \"x\"\n"),
                label("specialist", "none"),
            ],
            "sorted by name, __name__ included"
        );
        assert_eq!(
            got.timeseries[1].labels,
            [
                label("Zeta", "1"),
                label("__name__", "up"),
                label("host", "a")
            ],
            "sorted by bytes; a name twice keeps its first value"
        );
        let samples = |ts: &TimeSeries| -> Vec<(i64, f64)> {
            ts.samples.iter().map(|s| (s.timestamp, s.value)).collect()
        };
        assert_eq!(samples(&got.timeseries[0]), samples_a);
        assert_eq!(samples(&got.timeseries[1]), samples_b);
    }

    #[test]
    fn snappy_round_trips_in_the_block_format() {
        let labels = series_labels("x", &[("a", "b")]);
        let samples: Vec<(i64, f64)> = (0..1000).map(|i| (i * 15_000, i as f64)).collect();
        let body = write_request([(&labels[..], &samples[..])], 0);
        let packed = compress(&body);
        assert!(packed.len() < body.len());
        // The block format starts with the uncompressed length as a varint (no stream
        // identifier chunk, which the framing format would have).
        let mut len = Vec::new();
        varint(&mut len, body.len() as u64);
        assert!(packed.starts_with(&len));
        assert_eq!(
            snap::raw::Decoder::new().decompress_vec(&packed).unwrap(),
            body
        );
        assert_eq!(compress(&[]), [0]);
    }
}
