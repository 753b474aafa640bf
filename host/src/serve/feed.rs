//! The live feed at `/ws`: on connect a snapshot (running and recent executions, stats,
//! plugins, active alerts), then every lifecycle event as JSON with its sequence number.
//!
//! Each client reads the monitor's broadcast channel, which is bounded and shared: a
//! client that falls behind by more than it holds is sent a fresh snapshot instead of the
//! events it missed; a client whose socket does not take a message within
//! [`SEND_TIMEOUT`] is cut off. Neither grows the server's memory nor slows executions.
//! A client may narrow what it gets with `?kinds=&scripts=&specialists=` (comma
//! separated) or, at any time, a message `{"subscribe": {"kinds": [...], "scripts":
//! [...], "specialists": [...]}}`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;

use super::error::ApiError;
use super::views::{plugin_json, stats_json};
use super::ServerState;
use crate::monitor::{parse_client_message, Subscription, SubscriptionQuery};

/// Finished executions a snapshot carries.
const SNAPSHOT_RECENT: usize = 50;
/// The largest message a client may send.
const MAX_CLIENT_MESSAGE: usize = 16 * 1024;

pub async fn handler(
    State(state): State<Arc<ServerState>>,
    query: Result<Query<SubscriptionQuery>, axum::extract::rejection::QueryRejection>,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let ws = match ws {
        Ok(ws) => ws,
        Err(e) => {
            return ApiError::bad_request(format!(
                "{e}: /ws is a WebSocket endpoint (connect with a WebSocket client)"
            ))
            .into_response()
        }
    };
    let subscription = match query {
        Ok(Query(q)) => q.into_subscription(),
        Err(e) => {
            return ApiError::bad_request(format!(
                "query string: {e} (known: kinds, scripts, specialists)"
            ))
            .into_response()
        }
    };
    if let Err(e) = subscription.check() {
        return ApiError::bad_request(e.to_string())
            .with("field", "kinds")
            .into_response();
    }
    if state.is_stopping() {
        return ApiError::shutting_down().into_response();
    }
    // Counted here, before the upgrade, so that the cap holds against a burst.
    let clients = state.ws_clients.fetch_add(1, Ordering::AcqRel) + 1;
    if clients > state.config.max_ws_clients {
        state.ws_clients.fetch_sub(1, Ordering::AcqRel);
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_clients",
            format!(
                "{} live-feed clients are connected already (--max-ws-clients)",
                state.config.max_ws_clients
            ),
        )
        .into_response();
    }
    let guard = ClientGuard(state.clone());
    ws.max_message_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| async move {
            let _guard = guard;
            client(socket, state, subscription).await;
        })
}

/// Counts a client out when its task ends, however it ends.
struct ClientGuard(Arc<ServerState>);

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.0.ws_clients.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The snapshot message.
fn snapshot_message(
    state: &ServerState,
    snapshot: &crate::monitor::Snapshot,
    reason: &str,
) -> String {
    let plugins: Vec<Value> = state
        .host
        .plugins()
        .map(|p| p.list())
        .unwrap_or_default()
        .iter()
        .map(plugin_json)
        .collect();
    json!({
        "type": "snapshot",
        "reason": reason,
        "seq": snapshot.seq,
        "started_at": crate::model::timestamp::format(&snapshot.started_at),
        "totals": snapshot.totals,
        "running": snapshot.running,
        "recent": snapshot.recent,
        "stats": stats_json(state, 60, 10),
        "plugins": plugins,
        "alerts": snapshot.alerts,
    })
    .to_string()
}

/// Sends one message, or gives up on a client that does not take it in time.
async fn send(socket: &mut WebSocket, within: Duration, text: String) -> bool {
    matches!(
        tokio::time::timeout(within, socket.send(Message::Text(Utf8Bytes::from(text)))).await,
        Ok(Ok(()))
    )
}

async fn client(mut socket: WebSocket, state: Arc<ServerState>, mut subscription: Subscription) {
    let (snapshot, mut rx) = state.monitor.subscribe(SNAPSHOT_RECENT);
    let mut closing = state.closing.subscribe();
    let timeout = state.config.ws_send_timeout;
    if !send(
        &mut socket,
        timeout,
        snapshot_message(&state, &snapshot, "connect"),
    )
    .await
    {
        return;
    }
    loop {
        tokio::select! {
            item = rx.recv() => match item {
                Ok(item) => {
                    if subscription.takes(&item) && !send(&mut socket, timeout, item.json.clone()).await {
                        state.counters.feed_clients_cut_off.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    // Too far behind: start again from a fresh snapshot.
                    state.counters.feed_snapshots_for_lag.fetch_add(1, Ordering::Relaxed);
                    let (snapshot, fresh) = state.monitor.subscribe(SNAPSHOT_RECENT);
                    rx = fresh;
                    let mut message: Value = serde_json::from_str(&snapshot_message(&state, &snapshot, "lagged")).unwrap_or_default();
                    message["missed"] = missed.into();
                    if !send(&mut socket, timeout, message.to_string()).await {
                        state.counters.feed_clients_cut_off.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                }
                Err(RecvError::Closed) => return,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    let reply = match parse_client_message(text.as_str()) {
                        Ok(subscribe) => {
                            subscription = subscribe;
                            json!({ "type": "subscribed", "subscription": {
                                "kinds": subscription.kinds,
                                "scripts": subscription.scripts,
                                "specialists": subscription.specialists,
                            }})
                        }
                        Err(e) => json!({ "type": "error", "error": { "code": "bad_message", "message": e.to_string() } }),
                    };
                    if !send(&mut socket, timeout, reply.to_string()).await {
                        return;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                // Pings are answered by the library; binary frames mean nothing here.
                Some(Ok(_)) => {}
            },
            _ = async { closing.wait_for(|c| *c).await.is_ok() } => {
                let _ = tokio::time::timeout(
                    Duration::from_secs(1),
                    socket.send(Message::Close(Some(CloseFrame {
                        code: 1001,
                        reason: Utf8Bytes::from_static("server shutting down"),
                    }))),
                )
                .await;
                return;
            }
        }
    }
}
