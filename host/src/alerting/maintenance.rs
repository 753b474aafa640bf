//! Recurring maintenance windows: a cron schedule in a time zone and a duration; from each
//! slot for that long, the alerts the window's matchers select are muted as a silence
//! mutes them (recorded, marked `silenced_by: ["maintenance:NAME"]`, never notified; a
//! window ending while an alert still fires lets it be notified). Written in the alerting
//! rules file (`serve --inhibit-rules FILE`), `[[maintenance_windows]]`:
//!
//! ```toml
//! [[maintenance_windows]]
//! name = "db-migration"
//! schedule = "0 2 * * 6"        # Saturdays at 02:00 ...
//! timezone = "Europe/Paris"
//! duration = "2h"               # ... until 04:00
//! matchers = ["specialist=db"]
//! comment = "weekly migration"
//! ```
//!
//! Time is passed in; slots follow `expectations::schedule` (Vixie cron's rules at a
//! change of the clocks).

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::matchers::Matcher;
use crate::expectations::duration;
use crate::expectations::schedule::Schedule;
use crate::model::Alert;

/// Windows a rules file holds at most.
pub const MAX_WINDOWS: usize = 100;

/// One recurring window (see the module doc).
#[derive(Debug, Clone)]
pub struct MaintenanceWindow {
    /// Its name, unique in the file: the mark `maintenance:NAME` on what it mutes.
    pub name: String,
    /// When each window opens.
    pub schedule: Schedule,
    /// How long each stays open.
    pub duration: Duration,
    /// What it mutes (all must match).
    pub matchers: Vec<Matcher>,
    /// For people.
    pub comment: String,
}

impl PartialEq for MaintenanceWindow {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.schedule.pattern() == other.schedule.pattern()
            && self.schedule.timezone() == other.schedule.timezone()
            && self.duration == other.duration
            && self.matchers == other.matchers
            && self.comment == other.comment
    }
}

impl MaintenanceWindow {
    /// The slot of the window open at `now`, if one is: a slot `s` with `s <= now < s +
    /// duration`.
    pub fn open_since(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let from = now - duration::to_chrono(self.duration);
        self.schedule.next_after(from).filter(|slot| *slot <= now)
    }

    /// Whether the window is open at `now` and selects `alert`.
    pub fn mutes(&self, alert: &Alert, now: DateTime<Utc>) -> bool {
        self.open_since(now).is_some() && self.matchers.iter().all(|m| m.matches(alert))
    }

    /// The mark on what it mutes.
    pub fn mark(&self) -> String {
        format!("maintenance:{}", self.name)
    }

    /// The next time after `now` at which the window opens or closes.
    pub fn next_change(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self.open_since(now) {
            Some(slot) => Some(duration::after(slot, self.duration)).filter(|end| *end > now),
            None => self.schedule.next_after(now),
        }
    }
}

/// The marks of the windows muting `alert` at `now`, in the file's order.
pub fn muting(windows: &[MaintenanceWindow], alert: &Alert, now: DateTime<Utc>) -> Vec<String> {
    windows
        .iter()
        .filter(|w| w.mutes(alert, now))
        .map(MaintenanceWindow::mark)
        .collect()
}

/// The next time after `now` at which a window opens or closes.
pub fn next_change(windows: &[MaintenanceWindow], now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    windows.iter().filter_map(|w| w.next_change(now)).min()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::model::Severity;

    fn window(schedule: &str, tz: &str, duration: &str) -> MaintenanceWindow {
        MaintenanceWindow {
            name: "w".into(),
            schedule: Schedule::parse(schedule, tz).unwrap(),
            duration: duration::parse(duration).unwrap(),
            matchers: vec![Matcher::parse("script=backup").unwrap()],
            comment: String::new(),
        }
    }

    fn alert(script: &str) -> Alert {
        let mut a = Alert::firing(
            Utc::now(),
            "script_failing",
            Severity::Critical,
            String::from("x"),
            1.0,
            1.0,
        );
        a.labels.insert("script".into(), script.into());
        a
    }

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 7, h, m, s).unwrap()
    }

    #[test]
    fn open_from_each_slot_for_its_duration_end_excluded() {
        // Saturday 2026-03-07, 02:00 UTC for 2 h.
        let w = window("0 2 * * 6", "UTC", "2h");
        let backup = alert("backup");
        assert!(!w.mutes(&backup, at(1, 59, 59)));
        assert!(w.mutes(&backup, at(2, 0, 0)), "from the slot itself");
        assert!(w.mutes(&backup, at(3, 59, 59)));
        assert!(!w.mutes(&backup, at(4, 0, 0)), "the end is excluded");
        assert!(
            !w.mutes(&alert("export"), at(3, 0, 0)),
            "only what it selects"
        );
        assert_eq!(w.next_change(at(1, 0, 0)), Some(at(2, 0, 0)));
        assert_eq!(w.next_change(at(2, 30, 0)), Some(at(4, 0, 0)));
        assert_eq!(
            w.next_change(at(4, 0, 0)),
            Some(Utc.with_ymd_and_hms(2026, 3, 14, 2, 0, 0).unwrap()),
            "then the next Saturday's"
        );
        assert_eq!(muting(&[w], &backup, at(3, 0, 0)), ["maintenance:w"]);
    }

    #[test]
    fn in_a_time_zone_across_the_change_of_the_clocks() {
        // New York springs forward on 2026-03-08 at 02:00: a 01:30 window of 1 h ends at
        // 03:30 local time, an hour of real time later (06:30 to 07:30 UTC).
        let w = window("30 1 * * *", "America/New_York", "1h");
        let start = Utc.with_ymd_and_hms(2026, 3, 8, 6, 30, 0).unwrap();
        assert!(w.mutes(&alert("backup"), start));
        assert!(w.mutes(&alert("backup"), start + chrono::Duration::minutes(59)));
        assert!(!w.mutes(&alert("backup"), start + chrono::Duration::minutes(60)));
    }
}
