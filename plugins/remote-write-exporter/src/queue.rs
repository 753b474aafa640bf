//! The samples waiting to be sent: bounded, oldest first, each series' labels encoded
//! once (a sample is then 24 bytes), and how the queue is kept in the spool.
//!
//! When full, the oldest samples make room and are counted as dropped: a later snapshot
//! of a counter carries what an earlier one did, so the newest are worth more.

use std::collections::HashMap;

use metaclaude_push::fnv1a;
use metaclaude_push::queue::Bounded;

use crate::wire;

#[derive(Debug, Clone, Copy, PartialEq)]
struct Entry {
    series: u32,
    t: i64,
    v: f64,
}

/// The pending samples.
#[derive(Debug, Clone)]
pub struct Queue {
    /// Each series' `Label` fields, by id.
    series: Vec<Vec<u8>>,
    ids: HashMap<Vec<u8>, u32>,
    /// The samples; its drops: the queue was full, or (from the spool) they were too old.
    entries: Bounded<Entry>,
}

/// One request's worth of samples from the front of the queue.
pub struct Batch {
    /// The `WriteRequest`, before compression.
    pub body: Vec<u8>,
    pub samples: usize,
}

impl Queue {
    /// An empty queue holding at most `max` samples.
    pub fn new(max: usize) -> Queue {
        Queue {
            series: Vec::new(),
            ids: HashMap::new(),
            entries: Bounded::new(max),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds a sample of the series whose labels are `labels` (from
    /// [`wire::series_labels`]) at `t` (Unix ms); the oldest goes when full.
    pub fn push(&mut self, labels: Vec<u8>, t: i64, v: f64) {
        let next = self.series.len() as u32;
        let series = match self.ids.get(&labels) {
            Some(id) => *id,
            None => {
                self.series.push(labels.clone());
                self.ids.insert(labels, next);
                next
            }
        };
        self.entries.push(Entry { series, t, v });
    }

    /// The oldest samples, at most `max_samples` and about `max_bytes` of protobuf (at
    /// least one sample), grouped by series, each series' samples oldest first.
    pub fn batch(&self, max_samples: usize, max_bytes: usize) -> Batch {
        let mut order: Vec<u32> = Vec::new();
        let mut groups: HashMap<u32, Vec<(i64, f64)>> = HashMap::new();
        let mut bytes = 0usize;
        let mut samples = 0usize;
        for e in &self.entries {
            let labels = &self.series[e.series as usize];
            let mut add = wire::sample_len(e.t);
            if !groups.contains_key(&e.series) {
                // The series' own key, length (at most 5 bytes) and labels.
                add += 1 + 5 + labels.len();
            }
            if samples > 0 && (samples >= max_samples || bytes + add > max_bytes) {
                break;
            }
            bytes += add;
            samples += 1;
            groups
                .entry(e.series)
                .or_insert_with(|| {
                    order.push(e.series);
                    Vec::new()
                })
                .push((e.t, e.v));
        }
        let body = wire::write_request(
            order
                .iter()
                .map(|id| (&self.series[*id as usize][..], &groups[id][..])),
            bytes,
        );
        Batch { body, samples }
    }

    /// Takes the `n` oldest samples out (sent, or refused for good).
    pub fn pop(&mut self, n: usize) {
        self.entries.pop(n);
    }

    /// Samples dropped: the queue was full, or (from the spool) they were too old.
    pub fn dropped(&self) -> u64 {
        self.entries.dropped
    }

    /// Drops (and counts) the samples older than `t_min` (Unix ms).
    pub fn drop_older_than(&mut self, t_min: i64) {
        self.entries.retain(|e| e.t >= t_min);
    }

    /// The queue as the spool keeps it: a magic line, the series' labels, the samples,
    /// and a checksum (FNV-1a 64) of all before it.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.entries.len() * 20);
        out.extend_from_slice(MAGIC);
        // Only the series still referenced, renumbered.
        let mut renumber: HashMap<u32, u32> = HashMap::new();
        let mut used: Vec<u32> = Vec::new();
        for e in &self.entries {
            renumber.entry(e.series).or_insert_with(|| {
                used.push(e.series);
                used.len() as u32 - 1
            });
        }
        out.extend_from_slice(&(used.len() as u32).to_le_bytes());
        for id in &used {
            let labels = &self.series[*id as usize];
            out.extend_from_slice(&(labels.len() as u32).to_le_bytes());
            out.extend_from_slice(labels);
        }
        out.extend_from_slice(&(self.entries.len() as u64).to_le_bytes());
        for e in &self.entries {
            out.extend_from_slice(&renumber[&e.series].to_le_bytes());
            out.extend_from_slice(&e.t.to_le_bytes());
            out.extend_from_slice(&e.v.to_le_bytes());
        }
        let sum = fnv1a(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }

    /// A queue of at most `max` samples read back from [`Queue::to_bytes`] (the newest
    /// kept, the others counted as dropped); an error says what is wrong with the bytes.
    pub fn from_bytes(bytes: &[u8], max: usize) -> Result<Queue, String> {
        let (body, sum) = bytes
            .split_last_chunk::<8>()
            .ok_or("shorter than its checksum")?;
        if fnv1a(body) != u64::from_le_bytes(*sum) {
            return Err("checksum mismatch (a damaged or partly written file)".into());
        }
        let mut r = Reader(
            body.strip_prefix(MAGIC)
                .ok_or("not a remote write spool of this version")?,
        );
        let mut q = Queue::new(max);
        let mut ids = Vec::new();
        for _ in 0..r.u32()? {
            let len = r.u32()? as usize;
            let labels = r.take(len)?.to_vec();
            let id = q.series.len() as u32;
            q.ids.insert(labels.clone(), id);
            q.series.push(labels);
            ids.push(id);
        }
        let n = r.u64()?;
        for _ in 0..n {
            let series = *ids.get(r.u32()? as usize).ok_or("a sample of no series")?;
            let t = i64::from_le_bytes(r.array()?);
            let v = f64::from_le_bytes(r.array()?);
            q.entries.push(Entry { series, t, v });
        }
        if !r.0.is_empty() {
            return Err("bytes after the samples".into());
        }
        Ok(q)
    }
}

const MAGIC: &[u8] = b"metaclaude remote write spool 1\n";

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        if self.0.len() < n {
            return Err("cut short".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        Ok(self.take(N)?.try_into().expect("N bytes"))
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.array()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(name: &str) -> Vec<u8> {
        wire::series_labels(name, &[("host", "a")])
    }

    #[test]
    fn bounded_the_oldest_go_and_are_counted() {
        let mut q = Queue::new(3);
        for i in 0..5 {
            q.push(labels("x"), i, i as f64);
        }
        assert_eq!((q.len(), q.dropped()), (3, 2));
        let b = q.batch(10, 1 << 20);
        assert_eq!(b.samples, 3);
        assert_eq!(q.entries.front().unwrap().t, 2, "the newest are kept");
        q.pop(2);
        assert_eq!(q.len(), 1);
        q.drop_older_than(5);
        assert_eq!((q.len(), q.dropped()), (0, 3));
        assert_eq!(q.series.len(), 1, "one series, encoded once");
    }

    #[test]
    fn batches_by_samples_and_by_bytes() {
        let mut q = Queue::new(1000);
        for i in 0..100 {
            q.push(labels("a"), i, 1.0);
            q.push(labels("b"), i, 2.0);
        }
        assert_eq!(q.batch(7, 1 << 20).samples, 7);
        let by_bytes = q.batch(1000, 300);
        assert!(
            by_bytes.samples > 1 && by_bytes.samples < 20,
            "{}",
            by_bytes.samples
        );
        assert!(by_bytes.body.len() <= 300, "{}", by_bytes.body.len());
        assert_eq!(q.batch(1000, 1).samples, 1, "at least one sample");
        assert_eq!(q.batch(1000, 1 << 20).samples, 200);
    }

    #[test]
    fn the_spool_round_trips_and_refuses_damage() {
        let mut q = Queue::new(100);
        for i in 0..10 {
            q.push(
                labels(if i % 2 == 0 { "a" } else { "b" }),
                1000 + i,
                i as f64 / 3.0,
            );
        }
        q.pop(3);
        let bytes = q.to_bytes();
        let back = Queue::from_bytes(&bytes, 100).unwrap();
        assert_eq!(back.entries.len(), 7);
        assert_eq!(back.batch(100, 1 << 20).body, q.batch(100, 1 << 20).body);
        let small = Queue::from_bytes(&bytes, 4).unwrap();
        assert_eq!((small.len(), small.dropped()), (4, 3));
        for cut in [0, 5, bytes.len() / 2, bytes.len() - 1] {
            assert!(Queue::from_bytes(&bytes[..cut], 100).is_err(), "{cut}");
        }
        let mut flipped = bytes.clone();
        flipped[40] ^= 1;
        assert!(Queue::from_bytes(&flipped, 100)
            .unwrap_err()
            .contains("checksum"));
        assert!(Queue::from_bytes(&Queue::new(1).to_bytes(), 1)
            .unwrap()
            .is_empty());
    }
}
