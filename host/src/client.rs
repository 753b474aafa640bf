//! Talking to a running `metaclaude serve` (the CLI's `metrics` and `alerts`, the terminal
//! dashboard's figures): its address, its token, and requests whose error statuses become
//! errors naming what the server said.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

/// The server `metaclaude serve` starts by default.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

/// Why a server's answer could not be had.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The token file given (`--token-file`) could not be read.
    #[error("cannot read the token file {}", file.display())]
    TokenFile {
        /// The file, as given.
        file: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// No answer at all: the server is not there (`advice` says what to do).
    #[error("cannot reach the server at {url} ({advice})")]
    Unreachable {
        /// The server's base URL (`http://127.0.0.1:8080`).
        url: String,
        /// What to try, for the message.
        advice: &'static str,
        /// The connection's error: refused, a timeout (30 s), a bad address.
        #[source]
        source: Box<ureq::Error>,
    },
    /// An error status: what the server said (its error's message, else its body).
    #[error("the server at {url} answered {status} to {path}: {message}")]
    Refused {
        /// The server's base URL.
        url: String,
        /// The request's path and query (`/api/v1/stats?period=60`).
        path: String,
        /// The HTTP status (401, 404, 503 ...).
        status: ureq::http::StatusCode,
        /// The API error's `message`, or the whole body when it is not one.
        message: String,
    },
}

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .build()
        .into()
}

/// The token in `file` (see `serve --token-file`), if one is given.
pub fn read_token(file: Option<&Path>) -> Result<Option<String>, ClientError> {
    file.map(|f| {
        std::fs::read_to_string(f)
            .map_err(|source| ClientError::TokenFile {
                file: f.to_path_buf(),
                source,
            })
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
pub fn get(url: &str, path: &str, token: Option<&str>) -> Result<String, ClientError> {
    get_accepting(url, path, token, None)
}

/// [`get`] with `accept` as the `Accept` header (how `/metrics` is asked for OpenMetrics).
pub fn get_accepting(
    url: &str,
    path: &str,
    token: Option<&str>,
    accept: Option<&str>,
) -> Result<String, ClientError> {
    let mut request = agent(Duration::from_secs(30)).get(format!("{url}{path}"));
    if let Some(t) = token {
        request = request.header("authorization", &format!("Bearer {t}"));
    }
    if let Some(a) = accept {
        request = request.header("accept", a);
    }
    let response = request.call().map_err(|source| ClientError::Unreachable {
        url: url.to_string(),
        advice: "is `metaclaude serve` running? --log computes from the log instead",
        source: Box::new(source),
    })?;
    body_of(url, path, response)
}

/// `PUT url + path` with a JSON body, the answer's body.
pub fn put_json(
    url: &str,
    path: &str,
    token: Option<&str>,
    body: &Value,
) -> Result<String, ClientError> {
    let request = agent(Duration::from_secs(30)).put(format!("{url}{path}"));
    send_json(request, url, path, token, body)
}

/// `POST url + path` with a JSON body, the answer's body.
pub fn post_json(
    url: &str,
    path: &str,
    token: Option<&str>,
    body: &Value,
) -> Result<String, ClientError> {
    let request = agent(Duration::from_secs(30)).post(format!("{url}{path}"));
    send_json(request, url, path, token, body)
}

/// Sends `request` (a PUT or POST to `url + path`) with `body` as JSON and the token.
fn send_json(
    request: ureq::RequestBuilder<ureq::typestate::WithBody>,
    url: &str,
    path: &str,
    token: Option<&str>,
    body: &Value,
) -> Result<String, ClientError> {
    let mut request = request.header("content-type", "application/json");
    if let Some(t) = token {
        request = request.header("authorization", &format!("Bearer {t}"));
    }
    let response = request.send(body.to_string()).map_err(unreachable(url))?;
    body_of(url, path, response)
}

/// `DELETE url + path` (saying `Content-Type: application/json`, as every request that
/// changes something must), the answer's body.
pub fn delete(url: &str, path: &str, token: Option<&str>) -> Result<String, ClientError> {
    let mut request = agent(Duration::from_secs(30))
        .delete(format!("{url}{path}"))
        .header("content-type", "application/json");
    if let Some(t) = token {
        request = request.header("authorization", &format!("Bearer {t}"));
    }
    let response = request.call().map_err(unreachable(url))?;
    body_of(url, path, response)
}

fn unreachable(url: &str) -> impl FnOnce(ureq::Error) -> ClientError + '_ {
    move |source| ClientError::Unreachable {
        url: url.to_string(),
        advice: "is `metaclaude serve` running?",
        source: Box::new(source),
    }
}

fn body_of(
    url: &str,
    path: &str,
    mut response: ureq::http::Response<ureq::Body>,
) -> Result<String, ClientError> {
    let status = response.status();
    let body = response.body_mut().read_to_string().unwrap_or_default();
    if !status.is_success() {
        let message = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(String::from))
            .unwrap_or(body);
        return Err(ClientError::Refused {
            url: url.to_string(),
            path: path.to_string(),
            status,
            message,
        });
    }
    Ok(body)
}
