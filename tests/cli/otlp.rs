//! The OpenTelemetry exporter, end to end: `plugins-available/otlp-exporter` in the real
//! binary (`run` and `serve`) sending to a receiver in the test on loopback (no
//! OpenTelemetry Collector can run here), which decodes every request with the official
//! definitions (the `opentelemetry-proto` crate: prost for protobuf, its serde for
//! OTLP/JSON): the execution's span and its attempt spans with their attributes, status
//! and resource; a caller's trace joined (`METACLAUDE_TRACEPARENT` on `run`, the
//! `traceparent` header on `serve`); the log record; the seed's metrics; gzip; a 503 with
//! `Retry-After` retried, by `serve` and at the end of a one-shot `run`; a 400 reported
//! and never retried.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::{number_data_point, AggregationTemporality};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::{json, Value};

use crate::alerts::set;
use crate::serve::{agent, get, reply, Server};
use crate::util::{
    bin, example_registry, grant_all, read_http_request, wait_until, LoopbackServer,
};

const CALLER: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// One request the receiver got, and what it answered.
#[derive(Clone)]
struct Got {
    /// The request line and headers, lowercase.
    head: String,
    body: Vec<u8>,
    status: u16,
}

impl Got {
    fn is_traces(&self) -> bool {
        self.head.starts_with("post /v1/traces ")
    }

    /// The body, gunzipped when the request says gzip.
    fn plain(&self) -> Vec<u8> {
        if self.head.contains("content-encoding: gzip") {
            let mut plain = Vec::new();
            flate2::read::GzDecoder::new(&self.body[..])
                .read_to_end(&mut plain)
                .expect("gzip");
            plain
        } else {
            self.body.clone()
        }
    }

    /// A request to /v1/traces, decoded with the official definitions.
    fn decoded(&self) -> ExportTraceServiceRequest {
        assert!(self.is_traces(), "{}", self.head);
        ExportTraceServiceRequest::decode(&self.plain()[..]).expect("an ExportTraceServiceRequest")
    }

    /// A request to /v1/logs, decoded with the official definitions.
    fn decoded_logs(&self) -> ExportLogsServiceRequest {
        assert!(self.head.starts_with("post /v1/logs "), "{}", self.head);
        ExportLogsServiceRequest::decode(&self.plain()[..]).expect("an ExportLogsServiceRequest")
    }

    /// An OTLP/JSON request, read with the official definitions' serde.
    fn decoded_json<T: serde::de::DeserializeOwned>(&self) -> T {
        assert!(
            self.head.contains("content-type: application/json"),
            "{}",
            self.head
        );
        let plain = self.plain();
        serde_json::from_slice(&plain)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&plain)))
    }
}

/// An OTLP/HTTP receiver on loopback: answers each request to /v1/traces with the next of
/// `script` (status, headers), 200 once it is empty (and every other request 200), and
/// keeps what it got.
struct Receiver {
    server: LoopbackServer,
    got: Arc<Mutex<Vec<Got>>>,
}

impl Receiver {
    fn start(script: Vec<(u16, &'static str)>) -> Receiver {
        let got: Arc<Mutex<Vec<Got>>> = Arc::default();
        let seen = got.clone();
        let script = Mutex::new(VecDeque::from(script));
        let server = LoopbackServer::start(move |stream, _| {
            let Some((head, body)) = read_http_request(&stream) else {
                return;
            };
            let head = head.to_ascii_lowercase();
            // The script is the traces'; logs are always taken.
            let (status, extra) = if head.starts_with("post /v1/traces ") {
                script.lock().unwrap().pop_front().unwrap_or((200, ""))
            } else {
                (200, "")
            };
            seen.lock().unwrap().push(Got { head, body, status });
            let message = if status == 200 {
                ""
            } else {
                "the receiver says no"
            };
            let _ = (&stream).write_all(
                format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{message}",
                    message.len()
                )
                .as_bytes(),
            );
        });
        Receiver { server, got }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.server.port())
    }

    /// The requests to /v1/traces.
    fn got(&self) -> Vec<Got> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|g| g.is_traces())
            .cloned()
            .collect()
    }

    /// The requests to /v1/logs.
    fn got_logs(&self) -> Vec<Got> {
        self.got_to("/v1/logs")
    }

    /// The requests to `path`.
    fn got_to(&self, path: &str) -> Vec<Got> {
        let line = format!("post {path} ");
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|g| g.head.starts_with(&line))
            .cloned()
            .collect()
    }

    /// Every span of the requests answered 200.
    fn accepted_spans(&self) -> Vec<Span> {
        self.got()
            .iter()
            .filter(|g| g.status == 200)
            .flat_map(|g| g.decoded().resource_spans)
            .flat_map(|rs| rs.scope_spans)
            .flat_map(|ss| ss.spans)
            .collect()
    }
}

/// `plugins-available/otlp-exporter` installed in `plugins`, sending to `endpoint`, granted.
fn install_otlp(plugins: &Path, endpoint: &str) {
    install_otlp_with(plugins, endpoint, &[]);
}

/// The same, with these manifest keys set too.
fn install_otlp_with(plugins: &Path, endpoint: &str, more: &[(&str, &str)]) {
    let available = crate::util::exe()
        .parent()
        .unwrap()
        .join("plugins-available/otlp-exporter");
    assert!(
        available.is_dir(),
        "{} is not installed: run cargo xtask build-plugins --all",
        available.display()
    );
    let to = plugins.join("otlp");
    std::fs::create_dir_all(&to).unwrap();
    for entry in std::fs::read_dir(&available).unwrap().flatten() {
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
    let manifest = std::fs::read_to_string(to.join("plugin.toml")).unwrap();
    let edits = [
        ("name", "\"otlp\"".to_string()),
        ("tick_ms", "100".into()),
        ("endpoint", format!("\"{endpoint}\"")),
        ("host_name", "\"web-1\"".into()),
        ("min_backoff_ms", "100".into()),
        ("http", format!("[\"{endpoint}/v1/*\"]")),
    ];
    let manifest = edits
        .iter()
        .map(|(k, v)| (*k, v.as_str()))
        .chain(more.iter().copied())
        .fold(manifest, |text, (key, value)| set(text, key, value));
    std::fs::write(to.join("plugin.toml"), manifest).unwrap();
    grant_all(plugins);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attr<'a>(attributes: &'a [KeyValue], name: &str) -> Option<&'a Any> {
    attributes
        .iter()
        .find(|kv| kv.key == name)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

fn text(s: &str) -> Option<&'static Any> {
    Some(Box::leak(Box::new(Any::StringValue(s.into()))))
}

/// The execution span of `script` and its attempt spans, in attempt order.
fn trace_of(spans: &[Span], script: &str) -> (Span, Vec<Span>) {
    let root = spans
        .iter()
        .find(|s| s.name == format!("run {script}"))
        .unwrap_or_else(|| panic!("no span `run {script}` in {spans:?}"))
        .clone();
    let mut attempts: Vec<Span> = spans
        .iter()
        .filter(|s| s.parent_span_id == root.span_id)
        .cloned()
        .collect();
    attempts.sort_by_key(|s| s.start_time_unix_nano);
    (root, attempts)
}

fn serve(plugins: &Path) -> Server {
    Server::start(
        &example_registry(),
        &["--plugins", plugins.to_str().unwrap()],
        |_| {},
    )
}

fn delivery(server: &Server) -> Value {
    let plugins = get(&server.url("/api/v1/plugins")).json();
    let p = plugins["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "otlp")
        .unwrap_or_else(|| panic!("no plugin otlp: {plugins}"))
        .clone();
    let of = |unit: &str| {
        p["destinations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["unit"] == unit)
            .unwrap_or_else(|| panic!("no {unit} in {p}"))
            .clone()
    };
    assert!(
        of("log records")["destination"]
            .as_str()
            .unwrap()
            .ends_with("/v1/logs"),
        "{p}"
    );
    let d = of("spans");
    assert!(
        d["destination"].as_str().unwrap().ends_with("/v1/traces"),
        "{p}"
    );
    d
}

fn figure(d: &Value, key: &str) -> u64 {
    d[key].as_u64().unwrap_or_else(|| panic!("{key} in {d}"))
}

#[test]
fn run_sends_a_flaky_execution_as_a_trace_joining_the_callers() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(Vec::new());
    let plugins = dir.path().join("plugins");
    install_otlp(&plugins, &receiver.endpoint());
    let registry = example_registry();
    let out = bin()
        .args([
            "run",
            "flaky",
            "--user",
            "ann",
            "--session-id",
            "s1",
            "--registry",
        ])
        .arg(&registry)
        .arg("--plugins")
        .arg(&plugins)
        .env("METACLAUDE_TRACEPARENT", CALLER)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    // `run` flushes the plugins before it exits: the request is in.
    let got = receiver.got();
    assert_eq!(got.len(), 1, "one request");
    let head = &got[0].head;
    for header in [
        "post /v1/traces http/1.1",
        "content-type: application/x-protobuf",
        "content-encoding: gzip",
        "user-agent: metaclaude/",
    ] {
        assert!(head.contains(header), "{header} in {head}");
    }
    assert_eq!(&got[0].body[..2], [0x1f, 0x8b], "a gzip member");
    let request = got[0].decoded();
    let resource = request.resource_spans[0].resource.as_ref().unwrap();
    assert_eq!(
        attr(&resource.attributes, "service.name"),
        text("metaclaude")
    );
    assert_eq!(attr(&resource.attributes, "host.name"), text("web-1"));
    let spans = receiver.accepted_spans();
    assert_eq!(spans.len(), 4, "the execution and its three attempts");
    let (root, attempts) = trace_of(&spans, "flaky");
    // The caller's trace, under the caller's span.
    assert_eq!(hex(&root.trace_id), CALLER_TRACE);
    assert_eq!(hex(&root.parent_span_id), CALLER_SPAN);
    assert_eq!(root.status.as_ref().unwrap().code, StatusCode::Ok as i32);
    let a = &root.attributes;
    assert_eq!(attr(a, "metaclaude.script.id"), text("flaky"));
    assert_eq!(attr(a, "metaclaude.specialist"), text("examples"));
    assert_eq!(attr(a, "user.id"), text("ann"));
    assert_eq!(attr(a, "session.id"), text("s1"));
    assert_eq!(attr(a, "metaclaude.correlation_id"), text(CALLER));
    assert_eq!(attr(a, "process.exit.code"), Some(&Any::IntValue(0)));
    assert_eq!(attr(a, "metaclaude.retries"), Some(&Any::IntValue(2)));
    assert!(
        matches!(attr(a, "metaclaude.wall_time_seconds"), Some(Any::DoubleValue(w)) if *w > 0.0)
    );
    assert!(matches!(
        attr(a, "metaclaude.memory.peak_mb"),
        Some(Any::DoubleValue(_))
    ));
    assert_eq!(
        attempts.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["attempt 1", "attempt 2", "attempt 3"]
    );
    for (i, s) in attempts.iter().enumerate() {
        assert_eq!(s.trace_id, root.trace_id);
        assert!(s.start_time_unix_nano >= root.start_time_unix_nano);
        assert!(s.end_time_unix_nano <= root.end_time_unix_nano);
        if i > 0 {
            // The backoff: a gap after the attempt before at least as long as the wait
            // drawn (full jitter: from zero up to 50 ms, then 100 ms), and a `retry` event.
            let before = &attempts[i - 1];
            let Some(Any::IntValue(delay)) = attr(&s.attributes, "metaclaude.retry.delay_ms")
            else {
                panic!("no delay on {s:?}")
            };
            assert!((0..=50 << (i - 1)).contains(delay), "{i}: {delay}");
            let gap = s.start_time_unix_nano - before.end_time_unix_nano;
            assert!(
                gap >= *delay as u64 * 1_000_000,
                "{i}: {gap} ns, {delay} ms"
            );
        }
    }
    assert_eq!(root.events.iter().filter(|e| e.name == "retry").count(), 2);
    for failed in &attempts[..2] {
        let status = failed.status.as_ref().unwrap();
        assert_eq!(status.code, StatusCode::Error as i32);
        assert!(
            status.message.contains(':'),
            "category: message: {status:?}"
        );
        assert!(attr(&failed.attributes, "error.type").is_some());
        assert_eq!(
            attr(&failed.attributes, "process.exit.code"),
            Some(&Any::IntValue(75))
        );
    }
    assert_eq!(
        attempts[2].status.as_ref().unwrap().code,
        StatusCode::Ok as i32
    );
    // The execution's log record, tied to its span: the execution log's JSON line.
    let logs = receiver.got_logs();
    assert_eq!(logs.len(), 1, "one log request");
    assert!(logs[0].head.contains("content-encoding: gzip"));
    let logs = logs[0].decoded_logs();
    let record = &logs.resource_logs[0].scope_logs[0].log_records[0];
    assert_eq!(
        (&record.trace_id, &record.span_id),
        (&root.trace_id, &root.span_id)
    );
    assert_eq!(record.severity_text, "INFO");
    let Some(Any::StringValue(body)) = record.body.as_ref().and_then(|b| b.value.as_ref()) else {
        panic!("{record:?}")
    };
    let line: Value = serde_json::from_str(body).unwrap();
    assert_eq!(line["script_id"], "flaky", "{line}");
    assert_eq!(
        line["execution_id"],
        attr(&root.attributes, "metaclaude.execution.id")
            .map(|v| match v {
                Any::StringValue(s) => s.clone(),
                _ => String::new(),
            })
            .unwrap(),
        "{line}"
    );
    assert!(
        line.get("stdout").is_none_or(|o| o == ""),
        "no output: {line}"
    );

    // A traceparent that is not one is a usage error naming it; nothing runs or is sent.
    let out = bin()
        .args(["run", "hello", "--registry"])
        .arg(&registry)
        .arg("--plugins")
        .arg(&plugins)
        .env(
            "METACLAUDE_TRACEPARENT",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("METACLAUDE_TRACEPARENT") && stderr.contains("all-zero"),
        "{stderr}"
    );
    assert_eq!(receiver.got().len(), 1);
}

/// POSTs a run of `script` to `server` with these extra headers.
fn submit(server: &Server, body: Value, headers: &[(&str, &str)]) -> crate::serve::Reply {
    let mut request = agent()
        .post(&server.url("/api/v1/executions"))
        .header("content-type", "application/json");
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    reply(request.send(body.to_string()))
}

#[test]
fn serve_keeps_a_callers_trace_reports_failures_and_retries_a_503_after_its_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    // The first request is answered 503 with Retry-After: 1; then 200s.
    let receiver = Receiver::start(vec![(503, "Retry-After: 1\r\n")]);
    let plugins = dir.path().join("plugins");
    install_otlp(&plugins, &receiver.endpoint());
    let host = serve(&plugins);
    let bad = submit(
        &host,
        json!({"script_id": "hello"}),
        &[("traceparent", "00-xyz")],
    );
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.body.contains("traceparent header"), "{}", bad.body);
    let r = submit(
        &host,
        json!({"script_id": "failing", "user": "bob"}),
        &[("traceparent", CALLER)],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let failed = r.json();
    assert_eq!(failed["success"], false);
    assert_eq!(
        failed["correlation_id"], CALLER,
        "the traceparent is the correlation id"
    );
    wait_until(
        "the spans are accepted after the 503",
        Duration::from_secs(60),
        || {
            receiver
                .accepted_spans()
                .iter()
                .any(|s| s.name == "run failing")
        },
        || {
            format!(
                "{:?}",
                receiver.got().iter().map(|g| g.status).collect::<Vec<_>>()
            )
        },
    );
    let got = receiver.got();
    assert_eq!(got[0].status, 503);
    assert_eq!(got[1].decoded(), got[0].decoded(), "the same spans, again");
    let d = delivery(&host);
    assert!(figure(&d, "retried_requests") >= 1, "{d}");
    assert_eq!(figure(&d, "dropped"), 0, "{d}");
    assert!(
        d["last_error"].as_str().unwrap().starts_with("HTTP 503"),
        "{d}"
    );
    assert_eq!(d["unit"], "spans");
    let spans = receiver.accepted_spans();
    let (root, attempts) = trace_of(&spans, "failing");
    assert_eq!(hex(&root.trace_id), CALLER_TRACE);
    assert_eq!(hex(&root.parent_span_id), CALLER_SPAN);
    let status = root.status.as_ref().unwrap();
    let category = failed["error_details"]["category"].as_str().unwrap();
    assert_eq!(status.code, StatusCode::Error as i32);
    assert!(
        status.message.starts_with(&format!("{category}: ")),
        "{status:?}"
    );
    assert_eq!(attr(&root.attributes, "error.type"), text(category));
    assert_eq!(attr(&root.attributes, "user.id"), text("bob"));
    assert_eq!(attempts.len(), failed["attempts"].as_array().unwrap().len());

    // Without a traceparent: one correlation id is one trace, a root of its own.
    for _ in 0..2 {
        let r = submit(
            &host,
            json!({"script_id": "hello", "correlation_id": "job-7"}),
            &[],
        );
        assert_eq!(r.status, 200, "{}", r.body);
    }
    wait_until(
        "both hello traces",
        Duration::from_secs(60),
        || {
            receiver
                .accepted_spans()
                .iter()
                .filter(|s| s.name == "run hello")
                .count()
                == 2
        },
        || format!("{:?}", receiver.got().len()),
    );
    let hellos: Vec<Span> = receiver
        .accepted_spans()
        .into_iter()
        .filter(|s| s.name == "run hello")
        .collect();
    assert_eq!(hellos[0].trace_id, hellos[1].trace_id);
    assert_ne!(hellos[0].span_id, hellos[1].span_id);
    assert!(hellos[0].parent_span_id.is_empty());
    assert_ne!(hex(&hellos[0].trace_id), CALLER_TRACE);
}

#[test]
fn a_receiver_answering_400_is_reported_and_never_retried() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(vec![(400, ""); 100]);
    let plugins = dir.path().join("plugins");
    install_otlp(&plugins, &receiver.endpoint());
    let host = serve(&plugins);
    host.run("hello");
    host.run("hello");
    wait_until(
        "two requests refused",
        Duration::from_secs(60),
        || {
            figure(&delivery(&host), "failed_requests") >= 2
                || figure(&delivery(&host), "dropped") >= 4
        },
        || delivery(&host).to_string(),
    );
    let d = delivery(&host);
    assert_eq!(
        figure(&d, "retried_requests"),
        0,
        "a 400 is not retried: {d}"
    );
    assert_eq!(figure(&d, "dropped"), 4, "two executions of two spans: {d}");
    assert_eq!(figure(&d, "pending"), 0, "{d}");
    assert_eq!(d["last_error"], "HTTP 400: the receiver says no", "{d}");
    let got = receiver.got();
    assert_eq!(
        got.len() as u64,
        figure(&d, "failed_requests"),
        "each request once"
    );
    let bodies: std::collections::HashSet<&Vec<u8>> = got.iter().map(|g| &g.body).collect();
    assert_eq!(bodies.len(), got.len(), "a request repeated");
    let out = bin()
        .args(["plugins", "list", "--server", &host.http])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{listed}");
    assert!(
        listed.contains(&format!("delivers to {}/v1/traces: ", receiver.endpoint()))
            && listed.contains(": HTTP 400: the receiver says no"),
        "{listed}"
    );
}

/// `metaclaude run hello` with the exporter in `plugins` sending to `receiver`; it
/// succeeds.
fn run_hello_sending_to(plugins: &Path, receiver: &Receiver) {
    install_otlp(plugins, &receiver.endpoint());
    let out = bin()
        .args(["run", "hello", "--registry"])
        .arg(example_registry())
        .arg("--plugins")
        .arg(plugins)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

/// Seen writing the exporter: a one-shot `run` flushed once and exited, so a receiver
/// answering 503 with `Retry-After` (a Collector under load) lost the execution's trace.
/// With `shutdown_wait_ms` the host keeps ticking the exporter while spans wait: the
/// retry goes out before the process ends.
#[test]
fn a_one_shot_run_waits_for_the_retry_its_receiver_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(vec![(503, "Retry-After: 1\r\n")]);
    run_hello_sending_to(&dir.path().join("plugins"), &receiver);
    let got = receiver.got();
    assert_eq!(
        got.iter().map(|g| g.status).collect::<Vec<_>>(),
        [503, 200],
        "refused once, then sent again before the run ended"
    );
    assert_eq!(got[1].decoded(), got[0].decoded(), "the same spans");
    assert!(receiver
        .accepted_spans()
        .iter()
        .any(|s| s.name == "run hello"));

    // A receiver that asks for more than the wait: the run ends when the wait does,
    // having tried once; the trace is lost, the execution is not held up for it.
    let slow = Receiver::start(vec![(503, "Retry-After: 3600\r\n")]);
    run_hello_sending_to(&dir.path().join("slow"), &slow);
    assert_eq!(
        slow.got().len(),
        1,
        "tried once, then held off by Retry-After"
    );
}

/// `protocol = "http/json"`: every signal in OTLP/JSON, read back with the official
/// definitions' serde; and the seed's metrics each interval from `serve`: cumulative
/// sums and histograms with the Prometheus exporter's buckets, per script and
/// specialist, counting exactly what ran.
#[test]
fn serve_sends_the_seeds_metrics_and_every_signal_in_otlp_json() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(Vec::new());
    let plugins = dir.path().join("plugins");
    install_otlp_with(
        &plugins,
        &receiver.endpoint(),
        &[
            ("protocol", "\"http/json\""),
            ("metrics_interval_ms", "1000"),
        ],
    );
    let host = serve(&plugins);
    host.run("hello");
    host.run("hello");
    let failed = submit(&host, json!({"script_id": "failing"}), &[]).json();
    assert_eq!(failed["success"], false);
    let category = failed["error_details"]["category"]
        .as_str()
        .unwrap()
        .to_string();
    let latest = || -> Option<ExportMetricsServiceRequest> {
        receiver
            .got_to("/v1/metrics")
            .last()
            .map(|g| g.decoded_json::<ExportMetricsServiceRequest>())
    };
    let total_of = |r: &ExportMetricsServiceRequest, script: &str| -> f64 {
        let m = &r.resource_metrics[0].scope_metrics[0].metrics;
        let total = m
            .iter()
            .find(|m| m.name == "metaclaude.executions.total")
            .expect("the total");
        let Some(Data::Sum(sum)) = &total.data else {
            panic!("{total:?}")
        };
        sum.data_points
            .iter()
            .find(|p| attr(&p.attributes, "script") == text(script))
            .map_or(0.0, |p| match p.value {
                Some(number_data_point::Value::AsDouble(v)) => v,
                _ => panic!("{p:?}"),
            })
    };
    wait_until(
        "a metrics snapshot counting the three executions",
        Duration::from_secs(60),
        || latest().is_some_and(|r| total_of(&r, "hello") == 2.0 && total_of(&r, "failing") == 1.0),
        || format!("{:?}", latest()),
    );
    let r = latest().unwrap();
    let resource = r.resource_metrics[0].resource.as_ref().unwrap();
    assert_eq!(attr(&resource.attributes, "host.name"), text("web-1"));
    let metrics = &r.resource_metrics[0].scope_metrics[0].metrics;
    let find = |name: &str| {
        metrics
            .iter()
            .find(|m| m.name == name)
            .unwrap_or_else(|| panic!("no {name} in {metrics:?}"))
    };
    let Some(Data::Sum(failures)) = &find("metaclaude.executions.failure").data else {
        panic!()
    };
    assert!(failures.is_monotonic);
    assert_eq!(
        failures.aggregation_temporality,
        AggregationTemporality::Cumulative as i32
    );
    let p = &failures.data_points[0];
    assert_eq!(attr(&p.attributes, "script"), text("failing"));
    assert_eq!(attr(&p.attributes, "category"), text(&category));
    assert!(p.start_time_unix_nano > 0 && p.start_time_unix_nano <= p.time_unix_nano);
    let duration = find("metaclaude.execution.duration_seconds");
    assert_eq!(duration.unit, "s");
    let Some(Data::Histogram(h)) = &duration.data else {
        panic!("{duration:?}")
    };
    let hello = h
        .data_points
        .iter()
        .find(|p| attr(&p.attributes, "script") == text("hello"))
        .unwrap();
    assert_eq!(hello.count, 2);
    assert_eq!(hello.bucket_counts.iter().sum::<u64>(), 2);
    assert_eq!(
        hello.explicit_bounds,
        [
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
            300.0, 600.0
        ],
        "the Prometheus exporter's buckets"
    );
    let memory = find("metaclaude.resource.memory_peak_mb");
    assert_eq!(memory.unit, "MiBy");
    let Some(Data::Histogram(h)) = &memory.data else {
        panic!()
    };
    assert_eq!(
        h.data_points[0].explicit_bounds[..3],
        [1.0, 2.0, 4.0],
        "MiB"
    );

    // The traces and logs went as JSON too, and decode to the executions.
    wait_until(
        "the failing run's trace",
        Duration::from_secs(60),
        || {
            receiver.got().iter().any(|g| {
                g.decoded_json::<ExportTraceServiceRequest>()
                    .resource_spans
                    .iter()
                    .flat_map(|rs| &rs.scope_spans)
                    .flat_map(|ss| &ss.spans)
                    .any(|s| s.name == "run failing")
            })
        },
        || format!("{}", receiver.got().len()),
    );
    let logs = receiver.got_logs();
    assert!(!logs.is_empty());
    let records: usize = logs
        .iter()
        .map(|g| {
            g.decoded_json::<ExportLogsServiceRequest>().resource_logs[0].scope_logs[0]
                .log_records
                .len()
        })
        .sum();
    assert!(records >= 3, "{records}");
    let d = get(&host.url("/api/v1/plugins")).json();
    assert!(
        d.to_string().contains("/v1/metrics"),
        "the metrics are a destination of their own: {d}"
    );
}
