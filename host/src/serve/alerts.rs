//! The alerts API: `GET /api/v1/alerts` (active, and lately resolved),
//! `GET /api/v1/alerts/history` (the alert history beside the execution log),
//! `GET /api/v1/alerts/thresholds` and `PUT /api/v1/alerts/thresholds/{name}` (the seed's
//! `set_alert_threshold` against a running host), and the silences:
//! `GET /api/v1/silences`, `POST /api/v1/silences`, `DELETE /api/v1/silences/{id}` (expire
//! one now), kept in `silences.json` in the log directory.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::ServerState;
use crate::alerting::history::{self, HistoryQuery};
use crate::alerting::silences::{NewSilence, Silence, SilenceError, SilenceState};
use crate::logs::dates;
use crate::model::{Alert, AlertStatus, Severity};

/// The longest history listing one request returns.
const MAX_LIMIT: usize = 1000;

/// The active alerts, most severe first, and those resolved lately, newest first.
pub async fn active(State(state): State<Arc<ServerState>>) -> Json<Value> {
    let (active, resolved, stats) = match state.host.plugins() {
        Some(p) => (p.active_alerts(), p.recent_alerts(), Some(p.alert_stats())),
        None => Default::default(),
    };
    Json(json!({
        "active": active,
        "recently_resolved": resolved,
        "refused": stats.as_ref().map_or(0, |s| s.refused),
        "history": {
            "file": state.config.log_dir.join(metaclaude_formats::log_files::ALERTS_FILE),
            "write_failures": stats.as_ref().map_or(0, |s| s.history_failures),
            "last_error": stats.and_then(|s| s.history_error),
        },
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryParams {
    #[serde(rename = "type")]
    kind: Option<String>,
    severity: Option<String>,
    specialist: Option<String>,
    status: Option<String>,
    since: Option<String>,
    limit: Option<usize>,
}

/// The alert history, newest first, filtered.
pub async fn history(
    State(state): State<Arc<ServerState>>,
    query: Result<Query<HistoryParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| {
        ApiError::bad_request(format!(
            "query string: {e} (known: type, severity, specialist, status, since, limit)"
        ))
    })?;
    let given = |v: Option<String>| v.filter(|v| !v.is_empty());
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(
            ApiError::bad_request(format!("limit {limit}: from 1 to {MAX_LIMIT}"))
                .with("field", "limit"),
        );
    }
    let severity = match given(q.severity).as_deref() {
        None => None,
        Some("warning") => Some(Severity::Warning),
        Some("critical") => Some(Severity::Critical),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "severity {other:?}: expected warning or critical"
            ))
            .with("field", "severity"))
        }
    };
    let status = match given(q.status).as_deref() {
        None => None,
        Some("firing") => Some(AlertStatus::Firing),
        Some("resolved") => Some(AlertStatus::Resolved),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "status {other:?}: expected firing or resolved"
            ))
            .with("field", "status"))
        }
    };
    let since = match given(q.since) {
        None => None,
        Some(s) => {
            let age = dates::parse_since(&s).map_err(|e| {
                ApiError::bad_request(format!(
                    "since {s:?}: {e} (an age such as 90s, 15m, 1h, 2d, 1w)"
                ))
                .with("field", "since")
            })?;
            Some(
                Utc::now()
                    .checked_sub_signed(age)
                    .unwrap_or(chrono::DateTime::<Utc>::MIN_UTC),
            )
        }
    };
    let query = HistoryQuery {
        kind: given(q.kind),
        severity,
        specialist: given(q.specialist),
        status,
        since,
        limit,
    };
    let dir = state.config.log_dir.clone();
    let answer = tokio::task::spawn_blocking(move || history::query(&dir, &query))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "alert_history",
                e.to_string(),
            )
        })?;
    Ok(Json(json!({
        "alerts": answer.alerts,
        "damaged_lines": answer.damaged,
    })))
}

/// The thresholds of every alert rule.
pub async fn thresholds(State(state): State<Arc<ServerState>>) -> Result<Json<Value>, ApiError> {
    let plugins = rules_host(&state)?;
    let list = tokio::task::spawn_blocking(move || plugins.alert_thresholds(None))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?
        .map_err(|e| ApiError::new(StatusCode::CONFLICT, "no_alert_rules", e.to_string()))?;
    let rules: Vec<Value> = list
        .into_iter()
        .map(|(plugin, answer)| match answer {
            Ok(thresholds) => json!({ "plugin": plugin, "thresholds": thresholds }),
            Err(e) => json!({ "plugin": plugin, "error": e }),
        })
        .collect();
    Ok(Json(json!({ "rules": rules })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThresholdBody {
    value: f64,
    plugin: Option<String>,
}

/// Changes a threshold: `{"value": 15.0}` (every rule that has it) or with `"plugin"`.
pub async fn set_threshold(
    State(state): State<Arc<ServerState>>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let body = read_body(body)?;
    let ThresholdBody { value, plugin } = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "request body: {e} (expected {{\"value\": 15.0}}, optionally with \"plugin\": \"alert-rules\")"
        ))
    })?;
    if !value.is_finite() {
        return Err(ApiError::bad_request("value: a finite number").with("field", "value"));
    }
    let plugins = rules_host(&state)?;
    let threshold = name.clone();
    let answer = tokio::task::spawn_blocking(move || {
        plugins.set_alert_threshold(&threshold, value, plugin.as_deref())
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    match answer {
        Ok(changed) => Ok(Json(
            json!({ "threshold": name, "value": value, "changed": changed }),
        )),
        Err(e) if e.no_rule() => Err(ApiError::new(
            StatusCode::CONFLICT,
            "no_alert_rules",
            e.to_string(),
        )),
        Err(e) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "threshold_rejected",
            e.to_string(),
        )
        .with("field", "value")),
    }
}

fn rules_host(state: &ServerState) -> Result<Arc<crate::plugin::PluginHost>, ApiError> {
    state.host.plugins().cloned().ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "no_alert_rules",
            "this server runs without plugins (--no-plugins, or none found), so without alert rules",
        )
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SilencesParams {
    all: Option<bool>,
}

/// A silence as the API shows it: with its state now and how many active alerts it mutes.
fn silence_json(s: &Silence, state: SilenceState, active: &[Alert]) -> Value {
    let mut v = serde_json::to_value(s).expect("silences serialise");
    v["state"] = state.as_str().into();
    v["muting"] = active
        .iter()
        .filter(|a| a.silenced_by.contains(&s.id))
        .count()
        .into();
    v
}

fn active_alerts(state: &ServerState) -> Vec<Alert> {
    state
        .host
        .plugins()
        .map(|p| p.active_alerts())
        .unwrap_or_default()
}

/// The silences active or pending (with `?all=true`, those expired lately too), oldest
/// first.
pub async fn silences(
    State(state): State<Arc<ServerState>>,
    query: Result<Query<SilencesParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query
        .map_err(|e| ApiError::bad_request(format!("query string: {e} (known: all=true|false)")))?;
    let now = Utc::now();
    let active = active_alerts(&state);
    let list: Vec<Value> = state
        .silences
        .snapshot()
        .list(now, q.all.unwrap_or(false))
        .iter()
        .map(|(s, st)| silence_json(s, *st, &active))
        .collect();
    Ok(Json(json!({
        "silences": list,
        "file": state.silences.path(),
    })))
}

/// What a silence error answers: the caller's mistakes 404, 409 or 422 (naming the
/// field), the store's failures 500.
fn silence_error(e: SilenceError) -> ApiError {
    let message = e.to_string();
    match e {
        SilenceError::Invalid { field, .. } => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "silence_rejected",
            message,
        )
        .with("field", field),
        SilenceError::NotFound { .. } => ApiError::not_found(message),
        SilenceError::AlreadyExpired { .. } => {
            ApiError::new(StatusCode::CONFLICT, "silence_expired", message)
        }
        SilenceError::TooMany => ApiError::new(StatusCode::CONFLICT, "too_many_silences", message),
        SilenceError::Damaged { .. } | SilenceError::Read { .. } | SilenceError::Write { .. } => {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "silences_store", message)
        }
    }
}

/// Makes a silence: `{"matchers": [{"name": "script", "op": "=", "value": "backup"}],
/// "ends_at": "...", "created_by": "...", "comment": "..."}` (and `starts_at`); 201 with it.
pub async fn add_silence(
    State(state): State<Arc<ServerState>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body = read_body(body)?;
    let new: NewSilence = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "request body: {e} (expected {{\"matchers\": [{{\"name\": \"script\", \"op\": \"=\", \"value\": \"backup\"}}], \"ends_at\": \"2030-01-01T00:00:00Z\", \"created_by\": \"ana\", \"comment\": \"why\"}}, optionally with \"starts_at\")"
        ))
    })?;
    let store = state.silences.clone();
    let made = tokio::task::spawn_blocking(move || store.add(new, Utc::now()))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?
        .map_err(silence_error)?;
    let now = Utc::now();
    Ok((
        StatusCode::CREATED,
        Json(json!({ "silence": silence_json(&made, made.state(now), &active_alerts(&state)) })),
    ))
}

/// Expires silence `id` now (Alertmanager's DELETE): what it muted is notified again.
pub async fn expire_silence(
    State(state): State<Arc<ServerState>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let store = state.silences.clone();
    let ended = tokio::task::spawn_blocking(move || store.expire(&id, Utc::now()))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?
        .map_err(silence_error)?;
    Ok(Json(
        json!({ "silence": silence_json(&ended, SilenceState::Expired, &[]) }),
    ))
}

/// A request body, or why it could not be read (413 past --max-body-bytes).
fn read_body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "the request body is larger than this server takes (--max-body-bytes)",
            )
        } else {
            ApiError::bad_request(format!("cannot read the request body: {e}"))
        }
    })
}
