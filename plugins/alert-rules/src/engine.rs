//! [`AlertRules`]: the four rules over every execution and over each specialist, their
//! alerts' life cycles, and the thresholds in force. Time is passed in.

use std::collections::BTreeMap;

use metaclaude_formats::finished::Finished;

use crate::alert::Alert;
use crate::config::Config;
use crate::lifecycle::{Lifecycle, Timing};
use crate::rules::{Context, Rule};
use crate::thresholds::Thresholds;
use crate::time::{seconds_to_micros, Time};
use crate::window::{Figures, Geometry, ScopeWindows};

/// Every execution, or one specialist's: its windows and its four alerts.
#[derive(Debug)]
struct Scope {
    windows: ScopeWindows,
    /// One per rule, in [`Rule::ALL`]'s order.
    alerts: [Lifecycle; 4],
    /// The figures of the interval last evaluated, until something is added.
    cached: Option<(u64, Figures)>,
}

impl Scope {
    fn new(geometry: Geometry) -> Scope {
        Scope {
            windows: ScopeWindows::new(geometry),
            alerts: Default::default(),
            cached: None,
        }
    }

    fn add(&mut self, f: &Finished, at: Time) {
        self.windows.add(f, at);
        self.cached = None;
    }

    /// The figures at `now`: they change only when an execution is added or `now` enters
    /// another interval, so an evaluation within the same interval reuses them.
    fn figures(&mut self, now: Time, geometry: Geometry) -> Figures {
        let interval = geometry.interval_of(now);
        match &self.cached {
            Some((held, figures)) if *held == interval => figures.clone(),
            _ => {
                let figures = self.windows.figures(now);
                self.cached = Some((interval, figures.clone()));
                figures
            }
        }
    }

    /// Whether the scope holds nothing any more: no execution in any window, no alert
    /// pending or firing.
    fn is_spent(&self, now: Time) -> bool {
        self.windows.is_idle(now) && self.alerts.iter().all(Lifecycle::is_inactive)
    }
}

/// The default alert rules' state.
#[derive(Debug)]
pub struct AlertRules {
    config: Config,
    geometry: Geometry,
    timing: Timing,
    global: Scope,
    /// At most `config.max_specialists`, while they have executions in a window or an
    /// alert pending or firing.
    specialists: BTreeMap<String, Scope>,
    /// Whether the cap on specialists was reported.
    cap_reported: bool,
    /// The latest instant seen: evaluations never go back in time.
    clock: Time,
}

impl AlertRules {
    pub fn new(config: Config) -> AlertRules {
        let geometry = Geometry::new(config.window_seconds);
        AlertRules {
            timing: Timing {
                for_us: seconds_to_micros(config.for_seconds),
                keep_firing_for_us: seconds_to_micros(config.keep_firing_for_seconds),
            },
            geometry,
            global: Scope::new(geometry),
            specialists: BTreeMap::new(),
            cap_reported: false,
            clock: Time::default(),
            config,
        }
    }

    /// `now`, or the latest instant seen if that is later (a clock stepped back).
    fn advance(&mut self, now: Time) -> Time {
        self.clock = self.clock.max(now);
        self.clock
    }

    /// Counts the finished execution `f`, received at `now`, at its finish time (`now`
    /// if that is later: a clock stepped back). Globally, and for its specialist while
    /// fewer than `max_specialists` are held; the first specialist refused pushes a
    /// warning to `warnings` (once per instance).
    pub fn observe(&mut self, f: &Finished, now: Time, warnings: &mut Vec<String>) {
        let now = self.advance(now);
        let at = Time::from_seconds(f.at).min(now);
        self.global.add(f, at);
        if !self.config.per_specialist {
            return;
        }
        let Some(specialist) = f.specialist.as_deref().filter(|s| !s.is_empty()) else {
            return;
        };
        if !self.specialists.contains_key(specialist)
            && self.specialists.len() >= self.config.max_specialists
        {
            self.evict_spent(now);
            if self.specialists.len() >= self.config.max_specialists {
                if !self.cap_reported {
                    self.cap_reported = true;
                    warnings.push(format!(
                        "more than {} specialists at once: `{specialist}` (and any other new one while {} are held) counts only in the global rules, not on its own (raise config.max_specialists)",
                        self.config.max_specialists, self.config.max_specialists
                    ));
                }
                return;
            }
        }
        let geometry = self.geometry;
        self.specialists
            .entry(specialist.to_string())
            .or_insert_with(|| Scope::new(geometry))
            .add(f, at);
    }

    /// Forgets the specialists that hold nothing any more (their room goes to others).
    fn evict_spent(&mut self, now: Time) {
        self.specialists.retain(|_, scope| !scope.is_spent(now));
    }

    /// Evaluates every rule globally and for each specialist at `now` (or the latest
    /// instant seen, if later): every alert firing and every one that resolved now, the
    /// global ones first, then each specialist's by name, rules in [`Rule::ALL`]'s order.
    pub fn evaluate(&mut self, now: Time) -> Vec<Alert> {
        let now = self.advance(now);
        let mut alerts = Vec::new();
        let (config, geometry, timing) = (&self.config, self.geometry, self.timing);
        evaluate_scope(
            &mut self.global,
            None,
            now,
            config,
            geometry,
            timing,
            &mut alerts,
        );
        for (name, scope) in &mut self.specialists {
            evaluate_scope(
                scope,
                Some(name),
                now,
                config,
                geometry,
                timing,
                &mut alerts,
            );
        }
        self.evict_spent(now);
        alerts
    }

    /// `set-threshold`: see [`Thresholds::set`]. The next evaluation judges by it.
    pub fn set_threshold(&mut self, name: &str, value: f64) -> Result<String, String> {
        self.config.thresholds.set(name, value)
    }

    pub fn thresholds(&self) -> &Thresholds {
        &self.config.thresholds
    }

    /// The specialists evaluated on their own now.
    pub fn specialists(&self) -> impl Iterator<Item = &str> {
        self.specialists.keys().map(String::as_str)
    }

    /// The most bytes the windows can occupy with this config, whatever the rate: the
    /// global scope's and `max_specialists` specialists' (see `window`).
    pub fn max_window_bytes(&self) -> usize {
        let scopes = if self.config.per_specialist {
            1 + self.config.max_specialists
        } else {
            1
        };
        scopes * ScopeWindows::max_memory_bytes()
    }
}

fn evaluate_scope(
    scope: &mut Scope,
    specialist: Option<&str>,
    now: Time,
    config: &Config,
    geometry: Geometry,
    timing: Timing,
    alerts: &mut Vec<Alert>,
) {
    let figures = scope.figures(now, geometry);
    let cx = Context {
        thresholds: &config.thresholds,
        min_samples: config.min_samples,
        window_seconds: config.window_seconds,
        specialist,
    };
    for (rule, lifecycle) in Rule::ALL.into_iter().zip(&mut scope.alerts) {
        let observation = rule.evaluate(&figures, cx);
        if let Some(report) = lifecycle.step(now, observation, timing) {
            alerts.push(Alert::new(
                rule,
                specialist,
                report,
                now,
                config.runbook_url.as_deref(),
            ));
        }
    }
}

#[cfg(test)]
mod tests;
