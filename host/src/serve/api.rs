//! The HTTP API under `/api/v1`, the health checks, and the router that puts them, the
//! feed and `/metrics` behind the security guard.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use chrono::Utc;
use metaclaude_formats::log_record;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::views::plugin_json;
use super::{
    alerts, connections, dashboard, feed, schedules, scrape, security, Refusal, ServerState,
};
use crate::executor::{parse_execution_body, ExecutionRequest, Recording};
use crate::logs::{dates, LogQuery};
use crate::monitor::{Known, MAX_BUCKETS, MAX_PERIOD_MINUTES};
use crate::plugin::{Health, PluginInfo};
use crate::registry::ScriptEntry;

/// The OpenAPI document of this API (checked against the server by the tests).
const OPENAPI: &str = include_str!("openapi.json");

/// The longest listing one request returns.
const MAX_LIMIT: usize = 1000;

pub fn router(state: Arc<ServerState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(scrape::handler))
        .route("/ws", get(feed::handler))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/executions", post(submit).get(list))
        .route("/api/v1/executions/{id}", get(one))
        .route("/api/v1/scripts", get(scripts))
        .route("/api/v1/schedules", get(schedules::list))
        .route("/api/v1/plugins", get(plugins))
        .route("/api/v1/plugins/reload", post(reload_plugins))
        .route("/api/v1/reload", post(reload_registry))
        .route("/api/v1/stats", get(stats))
        .route("/api/v1/stats/timeseries", get(timeseries))
        .route("/api/v1/alerts", get(alerts::active))
        .route("/api/v1/alerts/history", get(alerts::history))
        .route("/api/v1/alerts/thresholds", get(alerts::thresholds))
        .route(
            "/api/v1/alerts/thresholds/{name}",
            put(alerts::set_threshold),
        )
        .route(
            "/api/v1/silences",
            get(alerts::silences).post(alerts::add_silence),
        )
        .route("/api/v1/silences/{id}", delete(alerts::expire_silence))
        .merge(dashboard::routes())
        // On every route above (so: add routes above this line only): nothing runs for a
        // cross-site request; a method a route does not take is still 405.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            security::same_origin_only,
        ))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        // Inside the guard: a request refused there takes no slot.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            connections::hold_a_slot,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            security::guard,
        ))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint; the API is described at /api/v1/openapi.json")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that method; see /api/v1/openapi.json",
    )
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn openapi() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        OPENAPI,
    )
        .into_response()
}

/// Ready when the registry is loaded (it always is once serving) and every plugin runs.
async fn readyz(State(state): State<Arc<ServerState>>) -> Response {
    let registry = state.host.service().registry();
    let plugins = plugin_list(&state);
    let down: Vec<Value> = plugins
        .iter()
        .filter(|p| p.health != Health::Running)
        .map(|p| json!({ "name": p.name, "state": p.health.describe() }))
        .collect();
    let stopping = state.is_stopping();
    let ready = down.is_empty() && !stopping;
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "stopping": stopping,
        "registry": {
            "file": registry.file,
            "scripts": registry.scripts.len(),
            "last_reload_error": state.registry.lock().unwrap().last_error,
        },
        "plugins": { "loaded": plugins.len(), "not_running": down },
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

#[derive(Debug, Deserialize)]
struct SubmitQuery {
    wait: Option<bool>,
}

/// Runs an execution: by default answers with its whole result (the JSON of `run --json`)
/// once it finished; with `?wait=false`, 202 and its id at once.
async fn submit(
    State(state): State<Arc<ServerState>>,
    query: Result<Query<SubmitQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query
        .map_err(|e| ApiError::bad_request(format!("query string: {e} (wait is true or false)")))?;
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!(
                    "the request body is larger than this server takes ({} bytes, --max-body-bytes)",
                    state.config.max_body_bytes
                ),
            )
        } else {
            ApiError::bad_request(format!("cannot read the request body: {e}"))
        }
    })?;
    let mut request = parse_submit(&body)?;
    // A W3C `traceparent` joins the caller's trace (the OTLP exporter's spans hang under
    // the caller's span).
    if let Some(value) = headers.get("traceparent") {
        let joined = value
            .to_str()
            .map_err(|_| "not visible ASCII".to_string())
            .and_then(|v| request.join_trace(v).map_err(|e| e.to_string()));
        if let Err(why) = joined {
            return Err(ApiError::bad_request(format!("traceparent header: {why}")));
        }
    }
    let permit = match state.admit() {
        Ok(permit) => permit,
        Err(Refusal::Stopping) => return Err(ApiError::shutting_down()),
        Err(Refusal::Busy) => {
            state.counters.rejected_busy.fetch_add(1, Ordering::Relaxed);
            let mut e = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "busy",
                format!(
                    "{} executions are running or waiting already (--concurrency plus --queue); try again shortly",
                    state.host.service().max_concurrency() + state.config.queue
                ),
            );
            e.retry_after = Some(1);
            return Err(e);
        }
    };
    let service = state.host.service().clone();
    let id = service.new_execution_id();
    if query.wait == Some(false) {
        state.run_in_background(permit, id.clone(), request, |_| {});
        // The execution is known (queued) before its id is answered, so a GET of its URL
        // right after finds it: the task emits `queued` at its first step, which another
        // worker takes at once; bounded, in case the runtime is starved.
        let known_by = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
        while state.monitor.get(&id).is_none() && tokio::time::Instant::now() < known_by {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        let url = format!("/api/v1/executions/{id}");
        let mut response = (
            StatusCode::ACCEPTED,
            Json(json!({ "execution_id": id, "state": "queued", "url": url })),
        )
            .into_response();
        if let Ok(v) = HeaderValue::from_str(&url) {
            response.headers_mut().insert(header::LOCATION, v);
        }
        return Ok(response);
    }
    let execution = service.execute_recorded_as(id, request).await;
    drop(permit);
    let recording = match &execution.recording {
        Recording::Unconfirmed => "unconfirmed".to_string(),
        Recording::Confirmed => "confirmed".to_string(),
        Recording::Failed(reasons) => format!("failed: {}", reasons.join("; ")),
    };
    let mut response = Json(&execution.result).into_response();
    if let Ok(v) = HeaderValue::from_str(&recording) {
        response.headers_mut().insert("metaclaude-recording", v);
    }
    Ok(response)
}

/// The request body as an execution request; a problem names the field.
fn parse_submit(body: &[u8]) -> Result<ExecutionRequest, ApiError> {
    parse_execution_body(body).map_err(|p| {
        let mut e = ApiError::bad_request(p.message);
        if let Some(field) = p.field {
            e = e.with("field", field);
        }
        if let Some((line, column)) = p.position {
            e = e.with("line", line).with("column", column);
        }
        e
    })
}

/// A running execution's state so far, or a finished one's result (from memory, else
/// from the log).
async fn one(
    State(state): State<Arc<ServerState>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    match state.monitor.get(&id) {
        Some(Known::Running(r)) => return Ok(Json(*r).into_response()),
        Some(Known::Finished(r)) => return Ok(Json(&*r).into_response()),
        None => {}
    }
    let query = LogQuery {
        log_dir: state.config.log_dir.clone(),
        execution_id: Some(id.clone()),
        ..LogQuery::default()
    };
    let found = blocking_log_query(&state, query, 1).await?;
    match found.into_iter().next() {
        Some(result) => Ok(Json(result).into_response()),
        None => Err(ApiError::not_found(format!(
            "no execution {id}: not running, not among the recent ones, not in the log"
        ))
        .with("execution_id", id)),
    }
}

/// `GET /api/v1/executions` filters.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    failed: Option<bool>,
    limit: Option<usize>,
    script: Option<String>,
    specialist: Option<String>,
    user: Option<String>,
    session: Option<String>,
    correlation_id: Option<String>,
    category: Option<String>,
    since: Option<String>,
    from: Option<String>,
    state: Option<String>,
}

/// The newest executions the filters take: from memory first, then from the log, newest
/// first. `?state=running` lists those running now instead.
async fn list(
    State(state): State<Arc<ServerState>>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| {
        ApiError::bad_request(format!(
            "query string: {e} (known: failed, limit, script, specialist, user, session, correlation_id, category, since, from, state)"
        ))
    })?;
    let running_only = match q.state.as_deref() {
        None | Some("finished") => false,
        Some("running") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "state {other:?}: expected running or finished"
            ))
            .with("field", "state"))
        }
    };
    let limit = q.limit.unwrap_or(50);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(
            ApiError::bad_request(format!("limit {limit}: from 1 to {MAX_LIMIT}"))
                .with("field", "limit"),
        );
    }
    // An empty value is no filter (`?script=` as a form leaves it).
    let given = |v: Option<String>| v.filter(|v| !v.is_empty());
    let mut log_query = LogQuery {
        log_dir: state.config.log_dir.clone(),
        failed: q.failed.unwrap_or(false),
        script: given(q.script),
        specialist: given(q.specialist),
        user: given(q.user),
        session: given(q.session),
        correlation_id: given(q.correlation_id),
        ..LogQuery::default()
    };
    // A time filter must say something, though: an empty one is a mistake.
    let (category, since, from) = (given(q.category), q.since, q.from);
    if let Some(c) = &category {
        log_query.category = Some(c.parse().map_err(|e: crate::model::UnknownCategory| {
            ApiError::bad_request(format!("category: {e}")).with("field", "category")
        })?);
    }
    if let Some(since) = &since {
        log_query.since = Some(dates::parse_since(since).map_err(|e| {
            ApiError::bad_request(format!(
                "since {since:?}: {e} (an age such as 90s, 15m, 1h, 2d, 1w)"
            ))
            .with("field", "since")
        })?);
    }
    if let Some(from) = &from {
        log_query.start_date = Some(dates::parse_instant(from, false, &Utc).map_err(|e| {
            ApiError::bad_request(format!("from {from:?}: {e}")).with("field", "from")
        })?);
        log_query.since = None;
    }
    if running_only {
        // Those running now, by the same identity filters.
        let f = log_query.filter(Utc::now());
        let keep = |want: &Option<String>, have: &Option<String>| want.is_none() || want == have;
        let running: Vec<_> = state
            .monitor
            .running()
            .into_iter()
            .filter(|r| {
                f.script.as_ref().is_none_or(|s| *s == r.identity.script_id)
                    && keep(&f.specialist, &r.identity.specialist)
                    && keep(&f.user, &r.identity.user)
                    && keep(&f.session, &r.identity.session_id)
                    && keep(&f.correlation_id, &r.identity.correlation_id)
            })
            .take(limit)
            .collect();
        return Ok(Json(json!({ "count": running.len(), "executions": running })).into_response());
    }
    let matcher = crate::logs::query::Matcher::new(log_query.filter(Utc::now()));
    let held = state.monitor.recent(&matcher, limit);
    let from_memory = held.len();
    let mut executions: Vec<Value> = held
        .iter()
        .map(|r| serde_json::to_value(&**r).unwrap_or(Value::Null))
        .collect();
    let mut from_log = 0;
    if executions.len() < limit && log_query.log_dir.is_dir() {
        // Older ones than memory holds; the log also has the ones in memory.
        let wanted = limit + from_memory;
        for record in blocking_log_query(&state, log_query, wanted).await? {
            if executions.len() >= limit {
                break;
            }
            let id = record["execution_id"].as_str().unwrap_or_default();
            if state.monitor.holds(id) || executions.iter().any(|e| e["execution_id"] == id) {
                continue;
            }
            executions.push(record);
            from_log += 1;
        }
    }
    Ok(Json(json!({
        "count": executions.len(),
        "from_memory": from_memory,
        "from_log": from_log,
        "executions": executions,
    }))
    .into_response())
}

/// Runs a log query on a blocking thread; each record becomes a result object (the log's
/// own fields, `log_record::OWN_FIELDS`, taken out). A damaged file or line of the log is
/// told to the operator (a [`super::ServeNotice::LogRead`]) and left out.
async fn blocking_log_query(
    state: &ServerState,
    query: LogQuery,
    limit: usize,
) -> Result<Vec<Value>, ApiError> {
    let notices = state.notices.clone();
    let lines = tokio::task::spawn_blocking(move || {
        let tell = |notice| notices(super::ServeNotice::LogRead(notice));
        crate::logs::newest_records(&query, limit, &tell)
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    let lines = match lines {
        Ok(lines) => lines,
        // No log yet: nothing older than memory.
        Err(_) => return Ok(Vec::new()),
    };
    Ok(lines
        .iter()
        .filter_map(|line| serde_json::from_slice::<serde_json::Map<String, Value>>(line).ok())
        .map(|mut record| {
            for key in log_record::OWN_FIELDS {
                record.remove(key);
            }
            Value::Object(record)
        })
        .collect())
}

/// The registry in force; each script's fixed environment shows its names only
/// (`env_keys`): the values are where people put secrets.
async fn scripts(State(state): State<Arc<ServerState>>) -> Response {
    let registry = state.host.service().registry();
    let watch = state.host.script_watch();
    let active = state
        .host
        .plugins()
        .map(|p| p.active_alerts())
        .unwrap_or_default();
    let scripts: Vec<Value> = registry
        .scripts
        .iter()
        .map(|entry| {
            let mut value = script_json(entry);
            // A script with expectations: its standing now.
            if let (Some(object), Some(status)) = (
                value.as_object_mut(),
                watch.and_then(|w| w.status(&entry.id)),
            ) {
                let shown = super::views::script_state(&status, &active);
                let mut status = serde_json::to_value(&status).unwrap_or_default();
                // Silenced: the state under the silence is kept beside it.
                if shown == "silenced" {
                    status["silenced_state"] = status["state"].clone();
                    status["state"] = shown.into();
                }
                object.insert("status".into(), status);
            }
            value
        })
        .collect();
    Json(json!({ "file": registry.file, "scripts": scripts })).into_response()
}

/// A script as the API shows it: the registry's entry, `env` replaced by its names.
fn script_json(entry: &ScriptEntry) -> Value {
    let mut value = serde_json::to_value(entry).unwrap_or_default();
    if let Some(object) = value.as_object_mut() {
        object.shift_remove("env");
        object.insert(
            "env_keys".into(),
            json!(entry.env.keys().collect::<Vec<_>>()),
        );
    }
    value
}

fn plugin_list(state: &ServerState) -> Vec<PluginInfo> {
    state.host.plugins().map(|p| p.list()).unwrap_or_default()
}

async fn plugins(State(state): State<Arc<ServerState>>) -> Json<Value> {
    let plugins: Vec<Value> = plugin_list(&state).iter().map(plugin_json).collect();
    Json(json!({ "plugins_dir": state.host.plugins_dir(), "plugins": plugins }))
}

async fn reload_plugins(State(state): State<Arc<ServerState>>) -> Result<Json<Value>, ApiError> {
    let (Some(plugins), Some(dir)) = (state.host.plugins().cloned(), state.host.plugins_dir())
    else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "no_plugins",
            "this server runs without a plugins directory (--no-plugins, or none found)",
        ));
    };
    let dir = dir.to_path_buf();
    let report = tokio::task::spawn_blocking(move || plugins.reload_dir(&dir))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "plugins_dir",
                e.to_string(),
            )
        })?;
    Ok(Json(json!({
        "added": report.added,
        "reloaded": report.changed,
        "removed": report.removed,
        "revoked": report.revoked,
        "errors": report.errors.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
    })))
}

async fn reload_registry(State(state): State<Arc<ServerState>>) -> Result<Json<Value>, ApiError> {
    match state.reload_registry(false) {
        Ok(n) => Ok(Json(json!({
            "file": state.registry_file,
            "scripts": n.unwrap_or_default(),
            "reloaded": true,
        }))),
        Err(e) => {
            let problems: Vec<String> = match &e {
                crate::config::ConfigError::Invalid { problems, .. } => {
                    problems.iter().map(|p| p.to_string()).collect()
                }
                other => vec![other.to_string()],
            };
            Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_registry",
                format!("{e}\nthe registry in force is unchanged"),
            )
            .with("problems", problems))
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatsQuery {
    /// Minutes; 0 for everything held since the server started.
    period: Option<u64>,
    top: Option<usize>,
    script: Option<String>,
    specialist: Option<String>,
    user: Option<String>,
}

/// The dashboards' filters as a matcher: only the executions of this script, specialist
/// and user (an empty value is no filter; none at all, `None`).
fn scope_matcher(
    script: Option<String>,
    specialist: Option<String>,
    user: Option<String>,
) -> Option<crate::logs::query::Matcher> {
    let given = |v: Option<String>| v.filter(|v| !v.is_empty());
    let filter = crate::logs::query::Filter {
        script: given(script),
        specialist: given(specialist),
        user: given(user),
        ..Default::default()
    };
    (filter.script.is_some() || filter.specialist.is_some() || filter.user.is_some())
        .then(|| crate::logs::query::Matcher::new(filter))
}

/// A period in minutes, checked: at most a year, 0 for since start.
fn checked_period(period: Option<u64>) -> Result<u64, ApiError> {
    let period = period.unwrap_or(60);
    if period > MAX_PERIOD_MINUTES {
        return Err(ApiError::bad_request(format!(
            "period {period}: at most {MAX_PERIOD_MINUTES} minutes (a year); 0 for since start"
        ))
        .with("field", "period"));
    }
    Ok(period)
}

/// The summary the dashboards show, over the last `period` minutes (default 60).
async fn stats(
    State(state): State<Arc<ServerState>>,
    headers: HeaderMap,
    uri: Uri,
    query: Result<Query<StatsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| {
        ApiError::bad_request(format!(
            "query string: {e} (period is minutes, top a count; script, specialist, user filter)"
        ))
    })?;
    let top = q.top.unwrap_or(10);
    if !(1..=100).contains(&top) {
        return Err(ApiError::bad_request(format!("top {top}: from 1 to 100")).with("field", "top"));
    }
    let period = checked_period(q.period)?;
    let given = |v: Option<String>| v.filter(|v| !v.is_empty());
    let scope = LogQuery {
        script: given(q.script),
        specialist: given(q.specialist),
        user: given(q.user),
        ..LogQuery::default()
    };
    let matcher = scope_matcher(
        scope.script.clone(),
        scope.specialist.clone(),
        scope.user.clone(),
    );
    let now = Utc::now();
    let since = match period {
        0 => state.monitor.started_at(),
        minutes => now - chrono::Duration::minutes(minutes as i64),
    };
    let earlier = super::earlier::part(&state, since, period, scope).await;
    Ok(shared_answer(&state, &headers, &uri, || {
        let report =
            state
                .monitor
                .report_matching(period, top, now, matcher.as_ref(), earlier.as_deref());
        serde_json::to_value(report).unwrap_or_default()
    }))
}

/// `make`'s answer, or one made for the same request at most as old as the request's
/// `Cache-Control: max-age` accepts (see `answers`), with its `Age`.
fn shared_answer(
    state: &ServerState,
    headers: &HeaderMap,
    uri: &Uri,
    make: impl FnOnce() -> Value,
) -> Response {
    let (answer, age) = state.answers.get_or_make(uri.to_string(), headers, make);
    let mut response = Json(&*answer).into_response();
    response
        .headers_mut()
        .insert(header::AGE, HeaderValue::from(age));
    response
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TimeseriesQuery {
    period: Option<u64>,
    buckets: Option<usize>,
    script: Option<String>,
    specialist: Option<String>,
    user: Option<String>,
}

/// The dashboards' charts: executions, failures, error rate and duration percentiles in
/// equal intervals over the last `period` minutes.
async fn timeseries(
    State(state): State<Arc<ServerState>>,
    headers: HeaderMap,
    uri: Uri,
    query: Result<Query<TimeseriesQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| {
        ApiError::bad_request(format!(
            "query string: {e} (period is minutes, buckets a count; script, specialist, user filter)"
        ))
    })?;
    let period = checked_period(q.period)?;
    let buckets = q.buckets.unwrap_or(60);
    if !(1..=MAX_BUCKETS).contains(&buckets) {
        return Err(
            ApiError::bad_request(format!("buckets {buckets}: from 1 to {MAX_BUCKETS}"))
                .with("field", "buckets"),
        );
    }
    let matcher = scope_matcher(q.script, q.specialist, q.user);
    Ok(shared_answer(&state, &headers, &uri, || {
        let series = state
            .monitor
            .timeseries(period, buckets, Utc::now(), matcher.as_ref());
        serde_json::to_value(series).unwrap_or_default()
    }))
}
