//! The soak's HTTP client for the server's API (ureq, one short connection per request:
//! the server's descriptors then count no idle client connection when it is sampled).

use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// The server's API at one address.
#[derive(Clone)]
pub struct Api {
    agent: ureq::Agent,
    base: String,
}

/// A status and a body, whatever the status.
pub struct Reply {
    pub status: u16,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Result<Value> {
        serde_json::from_str(&self.body).with_context(|| {
            let start: String = self.body.chars().take(200).collect();
            format!("answer {} is not JSON: {start}", self.status)
        })
    }
}

impl Api {
    /// `addr` is `HOST:PORT`.
    pub fn new(addr: &str) -> Api {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .max_idle_connections(0)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        Api {
            agent,
            base: format!("http://{addr}"),
        }
    }

    fn reply(
        path: &str,
        r: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Reply> {
        let mut r = r.with_context(|| format!("no answer to {path}"))?;
        let status = r.status().as_u16();
        let body = r
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_string()
            .with_context(|| format!("reading the answer to {path}"))?;
        Ok(Reply { status, body })
    }

    pub fn get(&self, path: &str) -> Result<Reply> {
        Self::reply(path, self.agent.get(format!("{}{path}", self.base)).call())
    }

    pub fn post(&self, path: &str, body: &str) -> Result<Reply> {
        Self::reply(
            path,
            self.agent
                .post(format!("{}{path}", self.base))
                .header("content-type", "application/json")
                .send(body),
        )
    }

    /// The JSON of a `GET` answered 200.
    pub fn get_json(&self, path: &str) -> Result<Value> {
        let r = self.get(path)?;
        if r.status != 200 {
            bail!("GET {path}: {} {}", r.status, r.body);
        }
        r.json()
    }
}
