//! Execution ids: ULIDs (48-bit millisecond time, 80 random bits, Crockford base32), so
//! they are unique across hosts and sort by creation time, also within one millisecond.

use std::sync::Mutex;

use rand::rngs::OsRng;
use rand::{Rng, TryRngCore};

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

#[derive(Default)]
pub struct IdGenerator {
    last: Mutex<(u64, u128)>,
}

impl IdGenerator {
    pub fn next(&self) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let mut last = self.last.lock().unwrap();
        let random = if now <= last.0 {
            // Same (or an earlier, after a clock step) millisecond: keep order by counting up.
            last.1 + 1
        } else {
            // Straight from the kernel (one `getrandom`): a thread's seeded generator
            // costs a one-shot `run` about 0.1 ms to set up, most of it detecting the
            // CPU's features for ChaCha.
            OsRng.unwrap_err().random::<u128>() & ((1u128 << 79) - 1)
        };
        let time = now.max(last.0);
        *last = (time, random);
        encode(((time as u128) << 80) | (random & ((1u128 << 80) - 1)))
    }
}

fn encode(mut value: u128) -> String {
    let mut out = [0u8; 26];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(value & 31) as usize];
        value >>= 5;
    }
    String::from_utf8(out.to_vec()).expect("ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_sorted() {
        let g = IdGenerator::default();
        let ids: Vec<String> = (0..10_000).map(|_| g.next()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        assert!(ids.iter().all(|id| id.len() == 26));
    }
}
