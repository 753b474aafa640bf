//! The memory cap of a plugin's store, on the total of its linear memories.
//!
//! wasmtime's `StoreLimits` caps each linear memory on its own: a component made of
//! several core modules, each with its memory, could use that many times
//! `limits.memory_mb`. This limiter keeps a running total instead (memories are never
//! freed before the store is dropped, and the store is one instance's), and makes a
//! refused growth a trap, so a memory bomb ends with a clear report rather than a guest
//! that limps on after `memory.grow` returned -1. Instance, table and memory counts are
//! still `StoreLimits`'.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};

const MIB: usize = 1 << 20;

pub struct PluginLimiter {
    memory_max: usize,
    memory_used: usize,
    counts: StoreLimits,
    /// Where the total is published for `plugins list` and the host's metrics.
    gauge: Arc<AtomicU64>,
}

impl PluginLimiter {
    /// The limiter of a fresh instance, publishing its memory's total in `gauge`.
    pub fn new(memory_mb: u64, gauge: Arc<AtomicU64>) -> PluginLimiter {
        gauge.store(0, Ordering::Relaxed);
        PluginLimiter {
            gauge,
            memory_max: (memory_mb as usize).saturating_mul(MIB),
            memory_used: 0,
            counts: StoreLimitsBuilder::new()
                .instances(16)
                .tables(64)
                .memories(16)
                .table_elements(1_000_000)
                .trap_on_grow_failure(true)
                .build(),
        }
    }
}

impl ResourceLimiter for PluginLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self.memory_used + desired.saturating_sub(current);
        if total > self.memory_max {
            wasmtime::bail!(
                "out of memory: growing would take the plugin's linear memories to {} MiB in total, over its {} MiB",
                total.div_ceil(MIB),
                self.memory_max / MIB
            );
        }
        if maximum.is_some_and(|max| desired > max) {
            wasmtime::bail!("a linear memory cannot grow past its own declared maximum");
        }
        self.memory_used = total;
        self.gauge.store(total as u64, Ordering::Relaxed);
        Ok(true)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        Err(error.context("the host could not grow the plugin's memory"))
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.counts.table_growing(current, desired, maximum)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.counts.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.counts.instances()
    }

    fn tables(&self) -> usize {
        self.counts.tables()
    }

    fn memories(&self) -> usize {
        self.counts.memories()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_is_on_all_memories_together() {
        let gauge = Arc::new(AtomicU64::new(7));
        let mut l = PluginLimiter::new(64, gauge.clone());
        assert_eq!(
            gauge.load(Ordering::Relaxed),
            0,
            "a fresh instance starts at 0"
        );
        // Two memories of 30 MiB each fit; a third of 30 does not, though each is
        // under the cap on its own.
        assert!(l.memory_growing(0, 30 * MIB, None).unwrap());
        assert!(l.memory_growing(0, 30 * MIB, None).unwrap());
        let err = l.memory_growing(0, 30 * MIB, None).unwrap_err().to_string();
        assert!(err.contains("90 MiB in total, over its 64 MiB"), "{err}");
        // Growing an existing memory counts only the growth.
        assert!(l.memory_growing(30 * MIB, 34 * MIB, None).unwrap());
        assert!(l.memory_growing(34 * MIB, 34 * MIB + 1, None).is_err());
        assert_eq!(
            gauge.load(Ordering::Relaxed),
            64 * MIB as u64,
            "what was granted"
        );
    }
}
