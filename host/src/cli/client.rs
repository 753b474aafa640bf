//! Talking to a running `metaclaude serve` from the command line (`metrics`, `alerts`):
//! its address, its token, and requests whose error statuses become errors naming what
//! the server said.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::Value;

/// The server `metaclaude serve` starts by default.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .build()
        .into()
}

/// The token in `file` (see `serve --token-file`), if one is given.
pub fn read_token(file: Option<&Path>) -> anyhow::Result<Option<String>> {
    file.map(|f| {
        std::fs::read_to_string(f)
            .with_context(|| format!("cannot read the token file {}", f.display()))
            .map(|t| t.trim().to_string())
    })
    .transpose()
}

/// Whether a server answers its health check at `url` within half a second.
pub fn answers(url: &str) -> bool {
    agent(Duration::from_millis(500))
        .get(format!("{url}/healthz"))
        .call()
        .is_ok_and(|r| r.status().is_success())
}

/// `GET url + path`, its body; an error status is an error naming what the server said.
pub fn get(url: &str, path: &str, token: Option<&str>) -> anyhow::Result<String> {
    let mut request = agent(Duration::from_secs(30)).get(format!("{url}{path}"));
    if let Some(t) = token {
        request = request.header("authorization", &format!("Bearer {t}"));
    }
    let response = request
        .call()
        .with_context(|| format!("cannot reach the server at {url} (is `metaclaude serve` running? --log computes from the log instead)"))?;
    body_of(url, path, response)
}

/// `PUT url + path` with a JSON body, the answer's body.
pub fn put_json(
    url: &str,
    path: &str,
    token: Option<&str>,
    body: &Value,
) -> anyhow::Result<String> {
    let mut request = agent(Duration::from_secs(30))
        .put(format!("{url}{path}"))
        .header("content-type", "application/json");
    if let Some(t) = token {
        request = request.header("authorization", &format!("Bearer {t}"));
    }
    let response = request.send(body.to_string()).with_context(|| {
        format!("cannot reach the server at {url} (is `metaclaude serve` running?)")
    })?;
    body_of(url, path, response)
}

fn body_of(
    url: &str,
    path: &str,
    mut response: ureq::http::Response<ureq::Body>,
) -> anyhow::Result<String> {
    let status = response.status();
    let body = response.body_mut().read_to_string().unwrap_or_default();
    if !status.is_success() {
        let message = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(String::from))
            .unwrap_or(body);
        bail!("the server at {url} answered {status} to {path}: {message}");
    }
    Ok(body)
}
