//! The serde form of a [`DdSketch`] (JSON for a plugin handing a sketch to the host).
//!
//! ```json
//! {"relative_accuracy":0.01,"max_buckets":2048,"min_value":1e-9,"count":4,"sum":20.5,
//!  "min":0.0,"max":12.0,"zero_count":1,"collapsed":false,
//!  "buckets":[{"key":24,"counts":[1]},{"key":110,"counts":[1,0,1]}]}
//! ```
//!
//! `buckets` lists the non-empty buckets as runs of consecutive keys (bucket `k` holds the
//! values in (γ^(k−1), γ^k]); a run carries short gaps as zero counts and a long gap starts
//! a new run, so a compact distribution is a dense list and two far-apart modes cost two
//! runs. A sketch read back is checked whole: the config in its ranges, runs in ascending
//! order within the cap, counts that add up, min and max consistent with the zero bucket.
//! Anything else is refused with a message, so a sketch from a plugin can never make the
//! host panic or allocate past the cap.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::sketch::{Config, DdSketch};
use crate::store::Store;

/// A gap of more empty buckets than this starts a new run (a run costs about as much JSON
/// as ten zero counts).
const MAX_GAP: usize = 8;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    relative_accuracy: f64,
    max_buckets: usize,
    min_value: f64,
    count: u64,
    sum: f64,
    min: Option<f64>,
    max: Option<f64>,
    zero_count: u64,
    collapsed: bool,
    buckets: Vec<Run>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Run {
    key: i64,
    counts: Vec<u64>,
}

impl Serialize for DdSketch {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let config = self.config();
        Wire {
            relative_accuracy: config.relative_accuracy(),
            max_buckets: config.max_buckets(),
            min_value: config.min_value(),
            count: self.count,
            sum: self.sum,
            min: self.min(),
            max: self.max(),
            zero_count: self.zero_count,
            collapsed: self.store.collapsed(),
            buckets: runs(self.store.offset(), self.store.bins()),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for DdSketch {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = Wire::deserialize(deserializer)?;
        from_wire(wire).map_err(D::Error::custom)
    }
}

/// The non-empty stretches of `bins` (whose first and last counts are non-zero).
fn runs(offset: i64, bins: &[u64]) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    let mut zeros = 0usize; // empty buckets since the last non-empty one
    for (j, count) in bins.iter().enumerate() {
        if *count == 0 {
            zeros += 1;
            continue;
        }
        match runs.last_mut() {
            Some(run) if zeros <= MAX_GAP => {
                run.counts.extend(std::iter::repeat_n(0, zeros));
                run.counts.push(*count);
            }
            _ => runs.push(Run {
                key: offset + j as i64,
                counts: vec![*count],
            }),
        }
        zeros = 0;
    }
    runs
}

fn from_wire(wire: Wire) -> Result<DdSketch, String> {
    let config = Config::new(wire.relative_accuracy)
        .and_then(|c| c.with_max_buckets(wire.max_buckets))
        .and_then(|c| c.with_min_value(wire.min_value))
        .map_err(|e| e.to_string())?;
    let (offset, bins) = dense(&config, &wire.buckets)?;
    let store = Store::from_parts(config.max_buckets(), offset, bins, wire.collapsed)?;

    let counted = store.total().checked_add(wire.zero_count);
    if counted != Some(wire.count) {
        return Err(format!(
            "count {} is not the zero bucket's {} plus the buckets' {}",
            wire.count,
            wire.zero_count,
            store.total()
        ));
    }
    let (min, max) = match (wire.count, wire.min, wire.max) {
        (0, None, None) if wire.sum == 0.0 => (f64::INFINITY, f64::NEG_INFINITY),
        (0, ..) => return Err("an empty sketch has no min or max and a sum of 0".into()),
        (_, Some(min), Some(max))
            if min.is_finite() && max.is_finite() && 0.0 <= min && min <= max =>
        {
            (min, max)
        }
        _ => return Err("min and max must be finite, with 0 <= min <= max".into()),
    };
    if !(wire.sum.is_finite() && wire.sum >= 0.0) {
        return Err("sum must be finite and not negative".into());
    }
    // The zero bucket holds exactly the values at or below min_value.
    if (wire.zero_count > 0) != (min <= config.min_value()) {
        return Err("min does not agree with the zero bucket".into());
    }
    let has_buckets = !store.is_empty();
    if has_buckets != (max > config.min_value()) {
        return Err("max does not agree with the buckets".into());
    }
    Ok(DdSketch {
        config,
        store,
        zero_count: wire.zero_count,
        count: wire.count,
        sum: wire.sum,
        min,
        max,
    })
}

/// The runs as one dense vector and the key of its first count, checked to be in
/// ascending order, within the cap and within the keys values can have.
fn dense(config: &Config, runs: &[Run]) -> Result<(i64, Vec<u64>), String> {
    let Some(first) = runs.first() else {
        return Ok((0, Vec::new()));
    };
    // Keys a value above min_value up to f64::MAX can have, with one key of slack each
    // side for the last bit of another platform's logarithm.
    let lowest = config.key(config.min_value()) - 1;
    let highest = config.key(f64::MAX) + 1;
    let offset = first.key;
    let mut bins: Vec<u64> = Vec::new();
    for run in runs {
        if run.counts.is_empty() {
            return Err(format!("the run at key {} has no counts", run.key));
        }
        let next = offset + bins.len() as i64;
        if run.key < next || (run.key == offset && !bins.is_empty()) {
            return Err(format!(
                "the run at key {} overlaps or precedes the one before it",
                run.key
            ));
        }
        let end = run
            .key
            .checked_add(run.counts.len() as i64 - 1)
            .filter(|end| run.key >= lowest && *end <= highest)
            .ok_or_else(|| format!("the run at key {} is out of the key range", run.key))?;
        if end - offset >= config.max_buckets() as i64 {
            return Err(format!(
                "the buckets span more than max_buckets ({}) keys",
                config.max_buckets()
            ));
        }
        bins.resize((run.key - offset) as usize, 0);
        bins.extend_from_slice(&run.counts);
    }
    Ok((offset, bins))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::support::{assert_same_buckets, sketch_with};

    fn sketch_of(config: Config, values: &[f64]) -> DdSketch {
        sketch_with(DdSketch::with_config(config), values)
    }

    fn round_trip(sketch: &DdSketch) -> DdSketch {
        let json = serde_json::to_string(sketch).unwrap();
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"))
    }

    /// Everything but the floats equal; the floats to the last bit or one unit in the last
    /// place (serde_json's default float parsing is not always correctly rounded).
    fn assert_same(a: &DdSketch, b: &DdSketch) {
        let close = |x: f64, y: f64| x == y || (x - y).abs() <= 2.0 * f64::EPSILON * x.abs();
        assert_same_buckets(a, b, "round trip");
        assert!(close(a.sum, b.sum), "{} {}", a.sum, b.sum);
        assert!(close(a.min, b.min) || a.count == 0, "{} {}", a.min, b.min);
        assert!(close(a.max, b.max) || a.count == 0, "{} {}", a.max, b.max);
    }

    #[test]
    fn json_form_is_pinned() {
        // 0 goes to the zero bucket; 1.5 and 2.0 are one key apart, 12 far above.
        let sketch = sketch_of(Config::default(), &[0.0, 1.5, 2.0, 12.0, 12.0]);
        let json = serde_json::to_string(&sketch).unwrap();
        assert_eq!(
            json,
            r#"{"relative_accuracy":0.01,"max_buckets":2048,"min_value":1e-9,"count":5,"sum":27.5,"min":0.0,"max":12.0,"zero_count":1,"collapsed":false,"buckets":[{"key":21,"counts":[1]},{"key":35,"counts":[1]},{"key":125,"counts":[2]}]}"#
        );
        assert_eq!(
            serde_json::to_string(&DdSketch::new()).unwrap(),
            r#"{"relative_accuracy":0.01,"max_buckets":2048,"min_value":1e-9,"count":0,"sum":0.0,"min":null,"max":null,"zero_count":0,"collapsed":false,"buckets":[]}"#
        );
    }

    #[test]
    fn short_gaps_stay_in_a_run_and_long_ones_split_it() {
        let bins = [1, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3];
        let runs = runs(10, &bins);
        assert_eq!(runs.len(), 2);
        assert_eq!(
            (runs[0].key, runs[0].counts.as_slice()),
            (10, &[1, 0, 0, 2][..])
        );
        assert_eq!((runs[1].key, runs[1].counts.as_slice()), (23, &[3][..]));
    }

    #[test]
    fn json_round_trip_keeps_the_sketch() {
        let values: Vec<f64> = (0..5000)
            .map(|i| {
                if i % 7 == 0 {
                    0.0
                } else {
                    1.37f64.powi(i % 90) * 0.01
                }
            })
            .collect();
        let plain = sketch_of(Config::default(), &values);
        assert_same(&round_trip(&plain), &plain);
        let capped = sketch_of(Config::default().with_max_buckets(50).unwrap(), &values);
        assert!(capped.is_collapsed());
        assert_same(&round_trip(&capped), &capped);
        let empty = DdSketch::with_config(Config::new(0.05).unwrap());
        assert_same(&round_trip(&empty), &empty);
        // A sketch read back merges with one made here.
        let mut merged = round_trip(&plain);
        merged.merge(&plain).unwrap();
        assert_eq!(merged.count(), 2 * plain.count());
        // Bimodal values stay small: two runs.
        let bimodal = sketch_of(Config::default(), &[10.0, 10.1, 30_000.0, 30_500.0]);
        let json = serde_json::to_string(&bimodal).unwrap();
        assert!(json.len() < 300, "{json}");
    }

    #[test]
    fn json_refuses_inconsistent_sketches() {
        let valid = r#"{"relative_accuracy":0.01,"max_buckets":4,"min_value":1e-9,"count":4,"sum":27.5,"min":0.0,"max":2.0,"zero_count":1,"collapsed":false,"buckets":[{"key":21,"counts":[1,0,2]}]}"#;
        assert!(serde_json::from_str::<DdSketch>(valid).is_ok());
        let cases = [
            (
                "\"relative_accuracy\":0.01",
                "\"relative_accuracy\":1.5",
                "relative accuracy",
            ),
            ("\"max_buckets\":4", "\"max_buckets\":0", "max_buckets"),
            ("\"max_buckets\":4", "\"max_buckets\":2", "span more"),
            ("\"min_value\":1e-9", "\"min_value\":-1", "min_value"),
            ("\"count\":4", "\"count\":5", "count 5"),
            (
                "\"zero_count\":1",
                "\"zero_count\":18446744073709551615",
                "count",
            ),
            ("[1,0,2]", "[0,1,2]", "lowest and the highest"),
            ("[1,0,2]", "[1,0,0]", "lowest and the highest"),
            ("[1,0,2]", "[]", "no counts"),
            ("[1,0,2]}", "[1]},{\"key\":21,\"counts\":[2]}", "overlaps"),
            ("[1,0,2]}", "[1]},{\"key\":20,\"counts\":[2]}", "overlaps"),
            ("\"key\":21", "\"key\":9223372036854775807", "key range"),
            ("\"key\":21", "\"key\":-5000", "key range"),
            ("\"collapsed\":false", "\"collapsed\":true", "collapsed"),
            ("\"min\":0.0", "\"min\":3.0", "0 <= min <= max"),
            ("\"min\":0.0", "\"min\":-1.0", "0 <= min <= max"),
            ("\"min\":0.0", "\"min\":null", "0 <= min <= max"),
            ("\"min\":0.0", "\"min\":0.5", "zero bucket"),
            ("\"max\":2.0", "\"max\":1e-10", "agree with the buckets"),
            ("\"sum\":27.5", "\"sum\":-1", "sum"),
            (
                "\"collapsed\":false",
                "\"collapsed\":false,\"extra\":1",
                "unknown field",
            ),
        ];
        for (from, to, message) in cases {
            assert!(valid.contains(from), "{from}");
            let json = valid.replacen(from, to, 1);
            let error = serde_json::from_str::<DdSketch>(&json)
                .unwrap_err()
                .to_string();
            assert!(error.contains(message), "{to}: {error}");
        }
        let empty_with_min = r#"{"relative_accuracy":0.01,"max_buckets":4,"min_value":1e-9,"count":0,"sum":0.0,"min":1.0,"max":1.0,"zero_count":0,"collapsed":false,"buckets":[]}"#;
        assert!(serde_json::from_str::<DdSketch>(empty_with_min).is_err());
    }

    #[test]
    fn mangled_json_never_panics_and_what_is_accepted_is_usable() {
        // Every single-character change of a valid sketch (digits swapped, signs added):
        // refused with an error, or accepted and then safe to query and merge.
        let sketch = sketch_of(
            Config::default().with_max_buckets(16).unwrap(),
            &[0.0, 1.0, 1.5, 2.0, 2.0, 3.0, 1e6],
        );
        let json = serde_json::to_string(&sketch).unwrap();
        let replacements = ['0', '1', '9', '-', 'e', '.'];
        let mut accepted = 0;
        for (i, _) in json.char_indices() {
            for r in replacements {
                let mut mangled = json.clone();
                mangled.replace_range(i..i + 1, &r.to_string());
                if let Ok(read) = serde_json::from_str::<DdSketch>(&mangled) {
                    accepted += 1;
                    for q in [0.0, 0.01, 0.5, 0.99, 1.0] {
                        let v = read.quantile(q).unwrap_or(0.0);
                        assert!(v.is_finite(), "{mangled}");
                    }
                    let mut merged = read.clone();
                    let _ = merged.merge(&sketch);
                    let _ = merged.merge(&read);
                    assert!(merged.bucket_count() <= 16 || merged.config() != sketch.config());
                }
            }
        }
        assert!(accepted > 0);
    }
}
