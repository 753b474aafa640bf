//! Where the dashboard's data comes from, each a thread sending [`Update`]s: a running
//! server's live feed (`/ws`: a snapshot, then numbered events and alerts; a `lagged`
//! snapshot starts again) with its figures fetched every interval, reconnecting forever
//! with capped exponential backoff; or the execution log, followed as it is written.

use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::mpsc::SyncSender as Sender;
use std::time::{Duration, Instant};

use chrono::Utc;
use metaclaude::client::{self, ClientError};
use metaclaude::logs::ReadNotice;
use metaclaude::model::{ExecutionEvent, ExecutionIdentity, ExecutionResult, LifecycleKind};
use serde_json::Value;
use tungstenite::client::IntoClientRequest;
use tungstenite::Message;

use super::data::{Connection, Update, PERIOD_MINUTES, TOP};
use super::scripts::Watched;
use metaclaude::logs::follow::Follower;

/// Capped exponential backoff: 250 ms doubling to 10 s, back to the start after a
/// connection that worked.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(250);
    const CAP: Duration = Duration::from_secs(10);

    pub fn new() -> Backoff {
        Backoff { next: Self::FIRST }
    }

    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(Self::CAP);
        d
    }

    pub fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new()
    }
}

/// Why the live feed (or the server's address) failed; the dashboard shows it, with its
/// causes, and tries again.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("{url}: https is not supported by the terminal dashboard; reach the server over http (e.g. through an SSH tunnel)")]
    Https { url: String },
    #[error("{url}: the server's address must start with http://")]
    NotHttp { url: String },
    #[error("{url}: no host in the server's address")]
    NoHost { url: String },
    #[error("cannot resolve {authority}")]
    Resolve {
        authority: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no address for {authority}")]
    NoAddress { authority: String },
    #[error("cannot connect to {authority}")]
    Connect {
        authority: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The feed's request could not be made.
    #[error(transparent)]
    Request(Box<tungstenite::Error>),
    #[error(transparent)]
    Header(#[from] tungstenite::http::header::InvalidHeaderValue),
    #[error("the live feed refused: {0}")]
    Refused(Box<tungstenite::Error>),
    #[error("the live feed's handshake timed out")]
    HandshakeTimedOut,
    #[error("the live feed closed")]
    Lost(#[source] Box<tungstenite::Error>),
    /// The server's close frame: its code and reason, when it sent them.
    #[error("the server closed the live feed{}", frame.as_deref().map(|f| format!(" ({f})")).unwrap_or_default())]
    Closed { frame: Option<String> },
    /// The figures or plugins could not be fetched.
    #[error(transparent)]
    Fetch(#[from] ClientError),
    /// The figures or plugins answered are not JSON (`what`: which).
    #[error("the {what} are not JSON")]
    NotJson {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

/// An error and its causes, `: ` between them, as the command line shows an error.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// A running server to follow.
#[derive(Debug, Clone)]
pub struct ServerSource {
    /// `http://host:port`, no trailing slash.
    pub url: String,
    pub token: Option<String>,
    /// How often the figures and plugins are fetched.
    pub interval: Duration,
}

/// Follows `source` until the dashboard goes away (its receiver is dropped).
pub fn spawn_server(source: ServerSource, tx: Sender<Update>) {
    std::thread::Builder::new()
        .name("dashboard-feed".into())
        .spawn(move || {
            let mut backoff = Backoff::new();
            let mut attempt = 0;
            loop {
                attempt += 1;
                let connecting = Connection::Connecting {
                    url: source.url.clone(),
                    attempt,
                };
                if tx.send(Update::Connection(connecting)).is_err() {
                    return;
                }
                let error = match follow_feed(&source, &tx, &mut || {
                    backoff.reset();
                    attempt = 0;
                }) {
                    Ok(()) => return, // the dashboard went away
                    Err(e) => with_causes(&e),
                };
                let retry_in = backoff.next_delay();
                tracing::debug!("live feed: {error}; retrying in {retry_in:?}");
                let lost = Connection::Disconnected {
                    url: source.url.clone(),
                    error,
                    retry_in,
                };
                if tx.send(Update::Connection(lost)).is_err() {
                    return;
                }
                std::thread::sleep(retry_in);
            }
        })
        .expect("cannot start the live feed's thread");
}

/// `ws://host:port/ws` for `http://host:port`, and the `host:port` to connect to.
pub fn feed_address(url: &str) -> Result<(String, String), FeedError> {
    let url_owned = || url.to_string();
    let Some(rest) = url.strip_prefix("http://") else {
        if url.starts_with("https://") {
            return Err(FeedError::Https { url: url_owned() });
        }
        return Err(FeedError::NotHttp { url: url_owned() });
    };
    let authority = rest.split('/').next().unwrap_or(rest);
    if authority.is_empty() {
        return Err(FeedError::NoHost { url: url_owned() });
    }
    Ok((format!("ws://{authority}/ws"), authority.to_string()))
}

/// One connection: the snapshot, then every message, until it fails. `Ok` only when the
/// dashboard went away. `connected` is called once the snapshot came.
fn follow_feed(
    source: &ServerSource,
    tx: &Sender<Update>,
    connected: &mut dyn FnMut(),
) -> Result<(), FeedError> {
    let (ws_url, authority) = feed_address(&source.url)?;
    let address = authority
        .to_socket_addrs()
        .map_err(|source| FeedError::Resolve {
            authority: authority.clone(),
            source,
        })?
        .next()
        .ok_or_else(|| FeedError::NoAddress {
            authority: authority.clone(),
        })?;
    let stream =
        TcpStream::connect_timeout(&address, Duration::from_secs(3)).map_err(|source| {
            FeedError::Connect {
                authority: authority.clone(),
                source,
            }
        })?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut request = ws_url
        .as_str()
        .into_client_request()
        .map_err(|e| FeedError::Request(Box::new(e)))?;
    if let Some(t) = &source.token {
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {t}").parse()?);
    }
    let (mut socket, _) = tungstenite::client(request, stream).map_err(|e| match e {
        tungstenite::HandshakeError::Failure(e) => FeedError::Refused(Box::new(e)),
        tungstenite::HandshakeError::Interrupted(_) => FeedError::HandshakeTimedOut,
    })?;
    // Short reads from here on, so the figures are fetched on time.
    socket
        .get_ref()
        .set_read_timeout(Some(Duration::from_millis(250)))?;
    // The figures are fetched at once after the snapshot, then every interval.
    let mut last_fetch: Option<Instant> = None;
    let mut seen_snapshot = false;
    // The scripts whose last run was asked for on this connection.
    let mut asked = std::collections::HashSet::new();
    loop {
        if seen_snapshot && last_fetch.is_none_or(|t| t.elapsed() >= source.interval) {
            last_fetch = Some(Instant::now());
            for update in fetch_figures(source, &mut asked)? {
                if tx.send(update).is_err() {
                    return Ok(());
                }
            }
        }
        let message = match socket.read() {
            Ok(m) => m,
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(e) => return Err(FeedError::Lost(Box::new(e))),
        };
        let text = match message {
            Message::Text(t) => t,
            Message::Close(frame) => {
                return Err(FeedError::Closed {
                    frame: frame.map(|f| format!("{} {}", f.code, f.reason)),
                })
            }
            _ => continue,
        };
        let Ok(value) = serde_json::from_str::<Value>(text.as_str()) else {
            continue;
        };
        let Some(update) = parse_feed_message(value) else {
            continue;
        };
        if matches!(update, Update::Reset { .. }) && !seen_snapshot {
            seen_snapshot = true;
            connected();
            let live = Connection::Live {
                url: source.url.clone(),
            };
            if tx.send(Update::Connection(live)).is_err() {
                return Ok(());
            }
        }
        if tx.send(update).is_err() {
            return Ok(());
        }
    }
}

/// The whole result of the finished execution `id` from the server (the feed's copy keeps
/// the last 8 KiB of each output), fetched on a thread of its own; nothing comes when it
/// cannot be had (an id that is not a plain ULID is not asked for).
pub fn fetch_whole_result(
    source: &ServerSource,
    id: &str,
) -> std::sync::mpsc::Receiver<ExecutionResult> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return rx;
    }
    let (url, token, path) = (
        source.url.clone(),
        source.token.clone(),
        format!("/api/v1/executions/{id}"),
    );
    let spawned = std::thread::Builder::new()
        .name("dashboard-detail".into())
        .spawn(move || {
            let body = match client::get(&url, &path, token.as_deref()) {
                Ok(body) => body,
                Err(e) => return tracing::debug!("the whole result: {}", with_causes(&e)),
            };
            match serde_json::from_str::<ExecutionResult>(&body) {
                Ok(r) => {
                    let _ = tx.send(r);
                }
                Err(e) => tracing::debug!("the whole result: {e}"),
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot fetch the whole result: {e}");
    }
    rx
}

/// The server's figures, plugins and watched scripts (with its silences and schedules, when
/// it has those APIs), as updates; the newest execution of each watched script not in
/// `asked` yet (then added to it).
fn fetch_figures(
    source: &ServerSource,
    asked: &mut std::collections::HashSet<String>,
) -> Result<Vec<Update>, FeedError> {
    let token = source.token.as_deref();
    let not_json = |what| move |source| FeedError::NotJson { what, source };
    let json = |what: &'static str, body: String| {
        serde_json::from_str::<Value>(&body).map_err(not_json(what))
    };
    // An API an older server lacks: `None` when it answers 404.
    let if_there = |what: &'static str, path: &str| match client::get(&source.url, path, token) {
        Ok(body) => json(what, body).map(Some),
        Err(ClientError::Refused { status, .. }) if status.as_u16() == 404 => Ok(None),
        Err(e) => Err(FeedError::from(e)),
    };
    let scripts = json(
        "scripts",
        client::get(&source.url, "/api/v1/scripts", token)?,
    )?;
    let silences = if_there("silences", "/api/v1/silences")?;
    let schedules = if_there("schedules", "/api/v1/schedules")?;
    let watched = Watched::from_answers(&scripts, silences.as_ref(), schedules.as_ref());
    let mut updates = Vec::new();
    for script in &watched.scripts {
        let Some(id) = script["id"].as_str() else {
            continue;
        };
        if !asked.insert(id.to_string()) {
            continue;
        }
        let path = format!("/api/v1/executions?script={}&limit=1", query_value(id));
        let newest = json("executions", client::get(&source.url, &path, token)?)?;
        if let Some(r) = newest["executions"]
            .get(0)
            .and_then(|r| serde_json::from_value::<ExecutionResult>(r.clone()).ok())
        {
            updates.push(Update::LastRun(Box::new(r)));
        }
    }
    updates.push(Update::Watched(watched));
    let stats = client::get(
        &source.url,
        &format!("/api/v1/stats?period={PERIOD_MINUTES}&top={TOP}"),
        token,
    )?;
    let plugins = client::get(&source.url, "/api/v1/plugins", token)?;
    let plugins: Value = serde_json::from_str(&plugins).map_err(not_json("plugins"))?;
    let plugins = match plugins {
        Value::Array(list) => list,
        other => other["plugins"].as_array().cloned().unwrap_or_default(),
    };
    updates.push(Update::Stats(
        serde_json::from_str(&stats).map_err(not_json("stats"))?,
    ));
    updates.push(Update::Plugins(plugins));
    Ok(updates)
}

/// `value` for a query string: every byte but the unreserved ones percent-encoded.
fn query_value(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One message of the live feed as an update (`None`: nothing for the dashboard).
pub fn parse_feed_message(mut value: Value) -> Option<Update> {
    match value["type"].as_str()? {
        "snapshot" => {
            let recent = serde_json::from_value(value["recent"].take()).unwrap_or_default();
            let alerts = serde_json::from_value(value["alerts"].take()).unwrap_or_default();
            let running = value["running"]
                .as_array()
                .map(|list| list.iter().flat_map(running_events).collect())
                .unwrap_or_default();
            let plugins = value["plugins"].as_array().cloned();
            let stats = Some(value["stats"].take()).filter(|s| !s.is_null());
            Some(Update::Reset {
                running,
                recent,
                alerts,
                stats,
                plugins,
            })
        }
        "event" => serde_json::from_value(value["event"].take())
            .ok()
            .map(|e| Update::Event(Box::new(e))),
        "alert" => serde_json::from_value(value["alert"].take())
            .ok()
            .map(|a| Update::Alert(Box::new(a))),
        _ => None,
    }
}

/// The events that bring a snapshot's running execution (`GET /api/v1/executions/{id}`'s
/// shape) to its state: queued, then started or retry_scheduled.
fn running_events(r: &Value) -> Vec<ExecutionEvent> {
    let Some(id) = r["execution_id"].as_str() else {
        return Vec::new();
    };
    let text = |k: &str| r[k].as_str().map(String::from);
    let time = |k: &str| {
        r[k].as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
    };
    let queued_at = time("queued_at").unwrap_or_else(Utc::now);
    let identity = ExecutionIdentity {
        execution_id: id.to_string(),
        script_id: text("script_id").unwrap_or_default(),
        specialist: text("specialist"),
        session_id: text("session_id"),
        correlation_id: text("correlation_id"),
        user: text("user"),
    };
    let queued = ExecutionEvent {
        timestamp: queued_at,
        ..identity.event(LifecycleKind::Queued, 0)
    };
    let attempt = r["attempt"].as_u64().unwrap_or(0) as u32;
    let next = match r["state"].as_str() {
        Some("running") => Some(ExecutionEvent {
            kind: LifecycleKind::Started,
            timestamp: time("attempt_started_at").unwrap_or(queued_at),
            attempt,
            pid: r["pid"].as_u64().map(|p| p as u32),
            ..queued.clone()
        }),
        Some("retrying") => Some(ExecutionEvent {
            kind: LifecycleKind::RetryScheduled,
            timestamp: queued_at,
            attempt,
            error: serde_json::from_value(r["last_error"].clone()).ok(),
            retry_delay_ms: r["retry_delay_ms"].as_u64(),
            ..queued.clone()
        }),
        _ => None,
    };
    std::iter::once(queued).chain(next).collect()
}

/// Follows the log directory `dir`: what finished in the last hour, then each new record.
/// A damaged rotated file or line of it is reported to `notices`.
pub fn spawn_log(dir: PathBuf, tx: Sender<Update>, notices: fn(ReadNotice)) {
    std::thread::Builder::new()
        .name("dashboard-log".into())
        .spawn(move || follow_log(&dir, &tx, notices))
        .expect("cannot start the log follower's thread");
}

fn follow_log(dir: &std::path::Path, tx: &Sender<Update>, notices: fn(ReadNotice)) {
    let shown = dir.display().to_string();
    let mut follower = Follower::new(dir);
    let since = Utc::now() - chrono::Duration::minutes(PERIOD_MINUTES as i64);
    let mut send_finished = |r: ExecutionResult| {
        let _ = tx.send(Update::Finished(Box::new(r)));
    };
    let mut state = None;
    let set_state = |c: Connection, state: &mut Option<Connection>| {
        if state.as_ref() != Some(&c) {
            *state = Some(c.clone());
            tx.send(Update::Connection(c)).is_ok()
        } else {
            true
        }
    };
    let unreadable = |e: &dyn std::fmt::Display| Connection::LogUnreadable {
        dir: shown.clone(),
        error: e.to_string(),
    };
    let mut backoff = Backoff::new();
    loop {
        match follower.start(since, &mut send_finished, &notices) {
            Ok(()) => break,
            Err(e) => {
                if !set_state(unreadable(&e), &mut state) {
                    return;
                }
                std::thread::sleep(backoff.next_delay());
            }
        }
    }
    let following = Connection::Following { dir: shown.clone() };
    if !set_state(following.clone(), &mut state) || tx.send(Update::Loaded).is_err() {
        return;
    }
    loop {
        let now = match follower.poll(&mut send_finished) {
            Ok(true) => continue,
            Ok(false) => following.clone(),
            Err(e) => unreadable(&e),
        };
        // Sent every turn, also when unchanged: a dashboard that went away ends the
        // thread at this send.
        if tx.send(Update::Connection(now)).is_err() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_backoff_doubles_to_its_cap_and_starts_again_after_a_success() {
        let mut b = Backoff::new();
        let delays: Vec<u64> = (0..8).map(|_| b.next_delay().as_millis() as u64).collect();
        assert_eq!(delays, [250, 500, 1000, 2000, 4000, 8000, 10000, 10000]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(250));
    }

    #[test]
    fn the_feed_address_is_the_servers_with_ws_and_https_is_refused_by_name() {
        assert_eq!(
            feed_address("http://127.0.0.1:8080").unwrap(),
            ("ws://127.0.0.1:8080/ws".into(), "127.0.0.1:8080".into())
        );
        let e = feed_address("https://example.org").unwrap_err().to_string();
        assert!(e.contains("https is not supported"), "{e}");
        assert!(feed_address("ftp://x").is_err());
    }

    #[test]
    fn a_snapshot_becomes_a_reset_with_its_running_executions_as_events() {
        let message = json!({
            "type": "snapshot", "reason": "connect", "seq": 3,
            "running": [{"execution_id": "01R", "script_id": "slow", "state": "running",
                         "queued_at": "2026-01-01T00:00:00.000000Z", "attempt": 1, "pid": 42,
                         "attempt_started_at": "2026-01-01T00:00:01.000000Z"}],
            "recent": [], "alerts": [], "stats": {"running": 1}, "plugins": [{"name": "log-sink"}],
        });
        let Some(Update::Reset {
            running,
            stats,
            plugins,
            ..
        }) = parse_feed_message(message)
        else {
            panic!("not a reset");
        };
        let kinds: Vec<LifecycleKind> = running.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [LifecycleKind::Queued, LifecycleKind::Started]);
        assert_eq!(running[1].pid, Some(42));
        assert_eq!(stats.unwrap()["running"], 1);
        assert_eq!(plugins.unwrap().len(), 1);
        assert!(parse_feed_message(json!({"type": "subscribed"})).is_none());
    }
}
