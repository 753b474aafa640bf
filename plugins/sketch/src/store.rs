//! The bucket counts of a sketch: a dense, bounded, "collapsing lowest" store.
//!
//! The store holds one count per bucket key over a contiguous key range at most `cap` keys
//! wide. Its state is a function of the multiset of keys added, whatever their order or
//! grouping, which is what makes merging exact:
//!
//! * `hi` is the highest key added;
//! * the lowest kept key is `max(lowest key added, hi - cap + 1)`;
//! * every kept key but the lowest counts the keys equal to it; the lowest also counts
//!   every key below it (those were *collapsed* into it).
//!
//! Invariants (checked by [`Store::from_parts`] for a store read from outside): empty
//! exactly when `total` is 0; otherwise the first and the last count are non-zero, the range
//! is at most `cap` wide, `total` is the sum of the counts, and a collapsed store is exactly
//! `cap` wide.

/// Bucket counts over keys `offset .. offset + bins.len()`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Store {
    /// The key of `bins[0]`.
    offset: i64,
    bins: Vec<u64>,
    /// The most keys the range may span.
    cap: usize,
    /// Whether some key was ever folded into the lowest bucket.
    collapsed: bool,
    total: u64,
}

impl Store {
    pub(crate) fn new(cap: usize) -> Self {
        Store {
            offset: 0,
            bins: Vec::new(),
            cap,
            collapsed: false,
            total: 0,
        }
    }

    /// A store from its parts, if they keep the invariants; otherwise why not.
    pub(crate) fn from_parts(
        cap: usize,
        offset: i64,
        bins: Vec<u64>,
        collapsed: bool,
    ) -> Result<Self, &'static str> {
        if bins.len() > cap {
            return Err("the buckets span more keys than max_buckets");
        }
        if let (Some(first), Some(last)) = (bins.first(), bins.last()) {
            if *first == 0 || *last == 0 {
                return Err("the lowest and the highest bucket must not be empty");
            }
            // The highest key must be representable next to the offset.
            if offset.checked_add(bins.len() as i64).is_none() {
                return Err("bucket key out of range");
            }
        } else if collapsed {
            return Err("an empty store cannot be collapsed");
        }
        if collapsed && bins.len() != cap {
            return Err("a collapsed store spans exactly max_buckets keys");
        }
        let total = bins
            .iter()
            .try_fold(0u64, |sum, count| sum.checked_add(*count))
            .ok_or("the bucket counts overflow")?;
        Ok(Store {
            offset,
            bins,
            cap,
            collapsed,
            total,
        })
    }

    /// Empties the store; keeps its allocation.
    pub(crate) fn clear(&mut self) {
        self.bins.clear();
        self.offset = 0;
        self.collapsed = false;
        self.total = 0;
    }

    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.bins.is_empty()
    }

    pub(crate) fn collapsed(&self) -> bool {
        self.collapsed
    }

    /// The key of the lowest bucket (meaningless when empty).
    pub(crate) fn offset(&self) -> i64 {
        self.offset
    }

    /// The counts from the lowest key up.
    pub(crate) fn bins(&self) -> &[u64] {
        &self.bins
    }

    /// Bytes of counts allocated (the vector's capacity, not its length).
    pub(crate) fn allocated_bytes(&self) -> usize {
        self.bins.capacity() * std::mem::size_of::<u64>()
    }

    /// Counts `n` (> 0) more keys `key`.
    pub(crate) fn add(&mut self, key: i64, n: u64) {
        let in_range = key >= self.offset && key < self.offset + self.bins.len() as i64;
        if !in_range {
            self.reshape(key, key);
        }
        let index = self.index_of(key);
        self.bins[index] += n;
        self.total += n;
    }

    /// Adds every count of `other` (same cap) as if its keys had been added one by one.
    pub(crate) fn merge(&mut self, other: &Store) {
        if other.is_empty() {
            return;
        }
        let other_hi = other.offset + other.bins.len() as i64 - 1;
        self.reshape(other.offset, other_hi);
        for (j, count) in other.bins.iter().enumerate() {
            if *count > 0 {
                let index = self.index_of(other.offset + j as i64);
                self.bins[index] += count;
            }
        }
        self.total += other.total;
        self.collapsed |= other.collapsed;
    }

    /// The index of the bucket counting `key`, once the range covers `key` or lies above
    /// it with no room left (then `key` folds into the lowest bucket).
    fn index_of(&mut self, key: i64) -> usize {
        if key < self.offset {
            self.collapsed = true;
            0
        } else {
            (key - self.offset) as usize
        }
    }

    /// Widens the range to take keys `lo ..= hi`, within the cap: the range becomes
    /// `max(lowest, highest - cap + 1) ..= highest` over the old range and the new keys,
    /// and the counts of keys that fall below it fold into its lowest bucket.
    fn reshape(&mut self, lo: i64, hi: i64) {
        let cap = self.cap as i64;
        if self.bins.is_empty() {
            self.offset = lo.max(hi - cap + 1);
            self.grow_to((hi - self.offset + 1) as usize);
            return;
        }
        let old_hi = self.offset + self.bins.len() as i64 - 1;
        let new_hi = old_hi.max(hi);
        let new_lo = self.offset.min(lo).max(new_hi - cap + 1);
        let new_len = (new_hi - new_lo + 1) as usize;
        if new_lo < self.offset {
            // Room below: prepend empty buckets (at most `cap` times over a store's life
            // before it is full, so the copy is paid a bounded number of times).
            let mut bins = Vec::with_capacity(self.capacity_for(new_len));
            bins.resize((self.offset - new_lo) as usize, 0);
            bins.extend_from_slice(&self.bins);
            self.bins = bins;
            self.offset = new_lo;
        } else if new_lo > self.offset {
            // The range moves up: the lowest buckets fold into the new lowest one.
            let drop = ((new_lo - self.offset) as usize).min(self.bins.len());
            let folded: u64 = self.bins.drain(..drop).sum();
            self.offset = new_lo;
            if self.bins.is_empty() {
                self.bins.push(0);
            }
            self.bins[0] += folded;
            self.collapsed = true;
        }
        self.grow_to(new_len);
    }

    /// Resizes to `len` buckets, growing the allocation geometrically but never past the cap.
    fn grow_to(&mut self, len: usize) {
        if len > self.bins.capacity() {
            let want = self.capacity_for(len);
            self.bins.reserve_exact(want - self.bins.len());
        }
        self.bins.resize(len, 0);
    }

    fn capacity_for(&self, len: usize) -> usize {
        (2 * self.bins.capacity()).clamp(len, self.cap.max(len))
    }

    /// The key of the bucket holding the `rank`-th count (0-based, `rank < total`).
    pub(crate) fn key_at_rank(&self, rank: u64) -> i64 {
        debug_assert!(rank < self.total);
        // High ranks (p90, p99) are found from the top, low ones from the bottom.
        if rank >= self.total / 2 {
            let mut below = self.total; // counts below the bucket reached, once it is subtracted
            for (j, count) in self.bins.iter().enumerate().rev() {
                below -= count;
                if below <= rank {
                    return self.offset + j as i64;
                }
            }
        } else {
            let mut upto = 0u64;
            for (j, count) in self.bins.iter().enumerate() {
                upto += count;
                if upto > rank {
                    return self.offset + j as i64;
                }
            }
        }
        self.offset + self.bins.len() as i64 - 1
    }
}

#[cfg(test)]
mod tests {
    use super::Store;

    fn store_of(cap: usize, keys: &[i64]) -> Store {
        let mut store = Store::new(cap);
        for key in keys {
            store.add(*key, 1);
        }
        store
    }

    #[test]
    fn keys_within_the_cap_are_counted_exactly() {
        let store = store_of(8, &[5, 3, 3, 10, 7]);
        assert_eq!(store.offset(), 3);
        assert_eq!(store.bins(), &[2, 0, 1, 0, 1, 0, 0, 1]);
        assert_eq!(store.total(), 5);
        assert!(!store.collapsed());
    }

    #[test]
    fn keys_below_the_cap_fold_into_the_lowest_bucket() {
        // Highest key 10, cap 4: the range is 7..=10 and 3 and 5 fold into 7.
        let store = store_of(4, &[5, 3, 10, 7]);
        assert_eq!(store.offset(), 7);
        assert_eq!(store.bins(), &[3, 0, 0, 1]);
        assert!(store.collapsed());
        assert_eq!(store.total(), 4);
    }

    #[test]
    fn a_jump_far_above_the_range_keeps_every_count() {
        let mut store = store_of(4, &[1, 1, 2]);
        store.add(1_000_000, 1);
        assert_eq!(store.offset(), 1_000_000 - 3);
        assert_eq!(store.bins(), &[3, 0, 0, 1]);
        assert_eq!(store.total(), 4);
        assert_eq!(store.key_at_rank(3), 1_000_000);
        assert_eq!(store.key_at_rank(0), 1_000_000 - 3);
    }

    #[test]
    fn state_does_not_depend_on_order_or_grouping() {
        let keys: Vec<i64> = (0..200).map(|i| (i * 7919) % 101 - 50).collect();
        let whole = store_of(16, &keys);
        let mut reversed: Vec<i64> = keys.clone();
        reversed.reverse();
        assert_eq!(store_of(16, &reversed), whole);
        for split in [0, 1, 57, 199, 200] {
            let mut merged = store_of(16, &keys[..split]);
            merged.merge(&store_of(16, &keys[split..]));
            assert_eq!(merged, whole, "split at {split}");
            let mut other_way = store_of(16, &keys[split..]);
            other_way.merge(&store_of(16, &keys[..split]));
            assert_eq!(other_way, whole, "split at {split}, merged the other way");
        }
    }

    #[test]
    fn allocation_never_exceeds_the_cap() {
        let mut store = Store::new(100);
        for key in 0..10_000 {
            store.add(key, 1);
            assert!(store.bins().len() <= 100);
            assert!(store.allocated_bytes() <= 100 * 8, "at key {key}");
        }
        for key in (-10_000..0).rev() {
            store.add(key, 1);
        }
        assert!(store.allocated_bytes() <= 100 * 8);
        assert_eq!(store.total(), 20_000);
    }

    #[test]
    fn rank_search_agrees_from_either_end() {
        let store = store_of(64, &[0, 0, 3, 3, 3, 9, 20, 20]);
        let expected = [0, 0, 3, 3, 3, 9, 20, 20];
        for (rank, key) in expected.iter().enumerate() {
            assert_eq!(store.key_at_rank(rank as u64), *key, "rank {rank}");
        }
    }

    #[test]
    fn parts_that_break_the_invariants_are_refused() {
        assert!(Store::from_parts(4, 0, vec![1, 0, 0, 0, 1], false).is_err());
        assert!(Store::from_parts(4, 0, vec![0, 1], false).is_err());
        assert!(Store::from_parts(4, 0, vec![1, 0], false).is_err());
        assert!(Store::from_parts(4, 0, vec![1, 1], true).is_err());
        assert!(Store::from_parts(4, 0, vec![], true).is_err());
        assert!(Store::from_parts(4, i64::MAX - 1, vec![1, 1], false).is_err());
        assert!(Store::from_parts(4, 0, vec![u64::MAX, 1], false).is_err());
        assert!(Store::from_parts(4, -3, vec![1, 0, 0, 2], true).is_ok());
    }
}
