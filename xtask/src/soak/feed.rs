//! Live-feed clients: read `/ws` for the whole soak (tungstenite over a plain TcpStream),
//! check the numbering, count what arrives, and reconnect if cut off.

use std::collections::{BTreeMap, HashSet};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;
use tungstenite::client::IntoClientRequest;
use tungstenite::Message;

/// What one feed client saw.
#[derive(Debug, Default, Clone)]
pub struct FeedTally {
    pub url: String,
    pub connects: u64,
    pub snapshots: u64,
    /// Snapshots sent because the client fell behind (`"reason": "lagged"`).
    pub lagged: u64,
    pub events: u64,
    /// Alert changes (numbered with the events).
    pub alerts: u64,
    /// Events whose `seq` was not the one after the previous message's (without a
    /// snapshot between): the feed promises none for a client that keeps up.
    pub gaps: u64,
    /// Finished executions by outcome (`success` or the category).
    pub finished: BTreeMap<String, u64>,
    /// Execution ids of the finished events.
    pub ids: HashSet<String>,
    /// How the last connection ended (the close code, or the error).
    pub last_end: String,
}

/// A feed client on its own thread.
pub struct FeedClient {
    pub tally: Arc<Mutex<FeedTally>>,
    handle: JoinHandle<()>,
}

impl FeedClient {
    /// Reads `url` until the server closes the feed after `stopping` was set (or
    /// `stopping` is set and the connection cannot be made again).
    pub fn start(url: String, stopping: Arc<AtomicBool>) -> FeedClient {
        let tally = Arc::new(Mutex::new(FeedTally {
            url: url.clone(),
            ..FeedTally::default()
        }));
        let t = tally.clone();
        let handle = std::thread::Builder::new()
            .name("soak-feed".into())
            .spawn(move || read_feed(&url, &t, &stopping))
            .expect("spawn a feed thread");
        FeedClient { tally, handle }
    }

    /// Waits for the thread (it ends when the server closes the feed).
    pub fn finish(self) -> FeedTally {
        let _ = self.handle.join();
        let t = self.tally.lock().unwrap().clone();
        t
    }
}

fn connect(url: &str) -> Result<tungstenite::WebSocket<TcpStream>, String> {
    let request = url.into_client_request().map_err(|e| e.to_string())?;
    let host = url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap_or("");
    let stream = TcpStream::connect(host).map_err(|e| e.to_string())?;
    // A short read timeout: the thread looks at `stopping` between reads.
    stream
        .set_read_timeout(Some(Duration::from_secs(1)))
        .map_err(|e| e.to_string())?;
    tungstenite::client(request, stream)
        .map(|(socket, _)| socket)
        .map_err(|e| e.to_string())
}

fn read_feed(url: &str, tally: &Mutex<FeedTally>, stopping: &AtomicBool) {
    loop {
        let mut socket = match connect(url) {
            Ok(s) => s,
            Err(e) => {
                tally.lock().unwrap().last_end = format!("cannot connect: {e}");
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        tally.lock().unwrap().connects += 1;
        let mut last_seq: Option<u64> = None;
        let end = loop {
            match socket.read() {
                Ok(Message::Text(text)) => {
                    if let Ok(v) = serde_json::from_str::<Value>(text.as_str()) {
                        take(&mut tally.lock().unwrap(), &v, &mut last_seq);
                    }
                }
                Ok(Message::Close(frame)) => {
                    break frame.map_or("closed".to_string(), |f| {
                        format!("closed {}", u16::from(f.code))
                    });
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => break format!("error: {e}"),
            }
        };
        tally.lock().unwrap().last_end = end;
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Counts one feed message.
fn take(t: &mut FeedTally, v: &Value, last_seq: &mut Option<u64>) {
    let seq = v["seq"].as_u64();
    match v["type"].as_str() {
        Some("snapshot") => {
            t.snapshots += 1;
            t.lagged += u64::from(v["reason"] == "lagged");
            *last_seq = seq;
        }
        Some(kind @ ("event" | "alert")) => {
            // Alert changes are numbered with the events. A filtered client (`?kinds=`)
            // skips numbers by design; only the client that takes everything checks them.
            if !t.url.contains('?') {
                if let (Some(prev), Some(seq)) = (*last_seq, seq) {
                    t.gaps += u64::from(seq != prev + 1);
                }
            }
            *last_seq = seq;
            if kind == "alert" {
                t.alerts += 1;
                return;
            }
            t.events += 1;
            let event = &v["event"];
            if event["kind"] == "finished" {
                let result = &event["result"];
                let outcome = result["error_details"]["category"].as_str().unwrap_or(
                    if result["success"] == true {
                        "success"
                    } else {
                        "failure"
                    },
                );
                *t.finished.entry(outcome.to_string()).or_default() += 1;
                if let Some(id) = event["execution_id"].as_str() {
                    t.ids.insert(id.to_string());
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Alert changes share the events' numbers: one between two events is no gap, a
    /// missing number is.
    #[test]
    fn alerts_are_numbered_with_the_events() {
        let mut t = FeedTally {
            url: "ws://127.0.0.1:1/ws".into(),
            ..FeedTally::default()
        };
        let mut last = None;
        for v in [
            json!({"type": "snapshot", "reason": "connect", "seq": 4}),
            json!({"type": "event", "seq": 5, "event": {"kind": "queued"}}),
            json!({"type": "alert", "seq": 6, "alert": {}}),
            json!({"type": "event", "seq": 7, "event": {"kind": "started"}}),
        ] {
            take(&mut t, &v, &mut last);
        }
        assert_eq!((t.events, t.alerts, t.gaps), (2, 1, 0));
        take(
            &mut t,
            &json!({"type": "event", "seq": 9, "event": {}}),
            &mut last,
        );
        assert_eq!(t.gaps, 1);
    }
}
