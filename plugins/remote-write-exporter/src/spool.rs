//! The spool: the queue kept in a granted directory, so a restart of the host (or of
//! the plugin) does not lose unsent samples. Written whole to a new file and renamed over
//! the last one (a crash leaves the old or the new, never half); read back at start,
//! samples older than `spool_max_age_s` dropped and counted, at most
//! `max_pending_samples` kept.

use std::path::PathBuf;

use crate::queue::Queue;

const FILE: &str = "remote-write.queue";
const NEW: &str = "remote-write.queue.new";

pub struct Spool {
    dir: PathBuf,
    /// Whether the file on disk holds samples (an empty queue is not written again).
    holds_samples: bool,
}

impl Spool {
    pub fn new(dir: &str) -> Spool {
        Spool {
            dir: PathBuf::from(dir),
            holds_samples: true,
        }
    }

    /// The queue kept last, if any, bounded by `max`, without samples older than
    /// `t_min` (Unix ms); `Err` says why a file there could not be used (it is then
    /// left for the operator and a fresh queue starts).
    pub fn load(&mut self, max: usize, t_min: i64) -> Result<Option<Queue>, String> {
        let path = self.dir.join(FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.holds_samples = false;
                return Ok(None);
            }
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let mut q = Queue::from_bytes(&bytes, max)
            .map_err(|e| format!("{} is not usable: {e}", path.display()))?;
        q.drop_older_than(t_min);
        self.holds_samples = !q.is_empty();
        Ok(Some(q))
    }

    /// Keeps `queue` (nothing is written while it stays empty).
    pub fn save(&mut self, queue: &Queue) -> Result<(), String> {
        if queue.is_empty() && !self.holds_samples {
            return Ok(());
        }
        let new = self.dir.join(NEW);
        let path = self.dir.join(FILE);
        std::fs::write(&new, queue.to_bytes())
            .and_then(|()| std::fs::rename(&new, &path))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        self.holds_samples = !queue.is_empty();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire;

    #[test]
    fn kept_and_read_back_without_what_is_too_old() {
        let dir = std::env::temp_dir().join(format!("rw-spool-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut spool = Spool::new(dir.to_str().unwrap());
        assert!(spool.load(10, 0).unwrap().is_none());
        let mut q = Queue::new(10);
        for t in 0..6 {
            q.push(wire::series_labels("x", &[]), t * 1000, 1.0);
        }
        spool.save(&q).unwrap();
        let back = Spool::new(dir.to_str().unwrap())
            .load(10, 2000)
            .unwrap()
            .unwrap();
        assert_eq!((back.len(), back.dropped()), (4, 2));
        std::fs::write(dir.join(FILE), b"garbage").unwrap();
        assert!(Spool::new(dir.to_str().unwrap())
            .load(10, 0)
            .unwrap_err()
            .contains("not usable"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
