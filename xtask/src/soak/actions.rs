//! The soak's changes while the server runs, one every minute (at half past, between two
//! samples), in a rotation of four:
//!
//! 1. the hostile plugin is made good (`mode = "record"`) and the recorder's manifest
//!    changes, then `POST /api/v1/plugins/reload`: both are reloaded, the plugin comes
//!    back from quarantine and must run;
//! 2. the registry file changes: the server's watch must take it;
//! 3. the plugin is made hostile again (`mode = "trap"`), the recorder changes, reload:
//!    it must be quarantined again (after `max_failures` traps);
//! 4. the registry file changes and `POST /api/v1/reload` takes it.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde_json::Value;

use super::api::Api;
use super::setup::{SoakDir, HOSTILE};

/// One change and how it went.
#[derive(Debug, Clone)]
pub struct Action {
    /// The minute of the soak it was made in.
    pub minute: u64,
    pub what: &'static str,
    pub took: Duration,
    /// `Ok(detail)` or what went wrong.
    pub outcome: Result<String, String>,
}

/// Makes change number `step` of the rotation (in minute `step`).
pub fn perform(step: u64, dir: &SoakDir, api: &Api) -> Action {
    let started = Instant::now();
    let (what, outcome) = match step % 4 {
        0 => ("plugin made good, reloaded", plugins(step, false, dir, api)),
        1 => ("registry changed (watch)", registry(step, false, dir, api)),
        2 => (
            "plugin made hostile, reloaded",
            plugins(step, true, dir, api),
        ),
        _ => (
            "registry changed (POST /api/v1/reload)",
            registry(step, true, dir, api),
        ),
    };
    Action {
        minute: step,
        what,
        took: started.elapsed(),
        outcome: outcome.map_err(|e| format!("{e:#}")),
    }
}

/// The hostile plugin's entry in `GET /api/v1/plugins`.
pub fn hostile_state(api: &Api) -> Result<Value> {
    plugin_state(api, HOSTILE)
}

/// Plugin `name`'s entry in `GET /api/v1/plugins`; an error names what is listed.
pub fn plugin_state(api: &Api, name: &str) -> Result<Value> {
    let listed = api.get_json("/api/v1/plugins")?;
    listed["plugins"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == name))
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("plugin {name} is not listed (not started): {listed}"))
}

/// Polls until the hostile plugin's state is `want` (bounded).
fn wait_state(api: &Api, want: &str, limit: Duration) -> Result<Value> {
    let deadline = Instant::now() + limit;
    loop {
        let p = hostile_state(api)?;
        if p["state"] == want {
            return Ok(p);
        }
        if Instant::now() > deadline {
            bail!("plugin {HOSTILE} not {want} within {limit:?}: {p}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn plugins(step: u64, hostile: bool, dir: &SoakDir, api: &Api) -> Result<String> {
    dir.write_hostile(hostile, step)?;
    dir.write_recorder(step)?;
    let reply = api.post("/api/v1/plugins/reload", "")?;
    if reply.status != 200 {
        bail!(
            "POST /api/v1/plugins/reload: {} {}",
            reply.status,
            reply.body
        );
    }
    let report = reply.json()?;
    if report["errors"].as_array().is_some_and(|e| !e.is_empty()) {
        bail!("the reload reported errors: {report}");
    }
    let reloaded = report["reloaded"].to_string();
    let p = if hostile {
        wait_state(api, "quarantined", Duration::from_secs(60))?
    } else {
        // It must come back running and stay so while events reach it.
        wait_state(api, "running", Duration::from_secs(20))?;
        std::thread::sleep(Duration::from_secs(3));
        let p = hostile_state(api)?;
        if p["state"] != "running" {
            bail!("plugin {HOSTILE} made good did not stay running: {p}");
        }
        p
    };
    Ok(format!(
        "reloaded {reloaded}; {HOSTILE} {} (delivered {}, failures {}, restarts {})",
        p["state"].as_str().unwrap_or("?"),
        p["delivered"],
        p["failures"],
        p["restarts"]
    ))
}

fn registry(step: u64, post: bool, dir: &SoakDir, api: &Api) -> Result<String> {
    dir.write_registry(step)?;
    if post {
        let reply = api.post("/api/v1/reload", "")?;
        if reply.status != 200 {
            bail!("POST /api/v1/reload: {} {}", reply.status, reply.body);
        }
    }
    let marker = format!("soak revision {step})");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let scripts = api.get("/api/v1/scripts")?;
        if scripts.status == 200 && scripts.body.contains(&marker) {
            return Ok(format!("in force (`{marker}`)"));
        }
        if Instant::now() > deadline {
            bail!("the changed registry was not in force within 20 s");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
