//! The part of a long report window that memory does not hold (the oldest executions, let
//! go under `--keep-recent`, or those before the server started), counted from the log
//! directory: whole rotated files from their summaries, the rest read (`replay::earlier`).
//! On a blocking thread, and kept for [`KEPT_FOR`] per period and scope, so that a
//! dashboard showing the last 24 hours, asking every second, costs one reading of the log
//! every ten seconds, not one a second.
//!
//! What a kept answer may be off by: executions that left the window's old end since it
//! was made (at most [`KEPT_FOR`] of them) still count. The window says `complete: false`
//! when memory let go of executions the kept answer does not have.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::logs::LogQuery;
use crate::monitor::Earlier;

use super::ServerState;

/// How long a counted part is used again.
pub const KEPT_FOR: Duration = Duration::from_secs(10);
/// Distinct periods and scopes kept at once.
const MAX_KEPT: usize = 16;

/// The kept parts, by period and scope.
#[derive(Default)]
pub struct EarlierParts {
    kept: Mutex<HashMap<String, (Instant, Arc<Earlier>)>>,
}

/// The log's part of the window from `since` for `scope` (its script, specialist and user),
/// when memory does not hold all of it and the log directory can be read; `None` when
/// memory holds the whole window.
pub async fn part(
    state: &Arc<ServerState>,
    since: DateTime<Utc>,
    period_minutes: u64,
    scope: LogQuery,
) -> Option<Arc<Earlier>> {
    let until = state.monitor.memory_covers_from();
    if since >= until {
        return None;
    }
    let key = format!(
        "{period_minutes}\u{0}{:?}\u{0}{:?}\u{0}{:?}",
        scope.script, scope.specialist, scope.user
    );
    let now = Instant::now();
    if let Some((made, part)) = state.earlier.kept.lock().unwrap().get(&key) {
        if now.duration_since(*made) <= KEPT_FOR {
            return Some(part.clone());
        }
    }
    let notices = state.notices.clone();
    let log_dir = state.config.log_dir.clone();
    let counted = tokio::task::spawn_blocking(move || {
        let tell = |notice| notices(super::ServeNotice::LogRead(notice));
        crate::replay::earlier(&log_dir, Some(since), until, &scope, &tell)
    })
    .await
    .ok()?
    // No log directory (no log sink): memory is all there is.
    .ok()?;
    let part = Arc::new(counted);
    let mut kept = state.earlier.kept.lock().unwrap();
    kept.retain(|_, (made, _)| now.duration_since(*made) <= KEPT_FOR);
    if kept.len() < MAX_KEPT {
        kept.insert(key, (now, part.clone()));
    }
    Some(part)
}
