//! What `metaclaude serve` puts on `/metrics`, in both formats, read back by two parsers
//! that are not ours:
//!
//! * Prometheus' own: `promtool check metrics` (Debian's `prometheus` package) for the text
//!   format 0.0.4. That promtool (2.42) reads only 0.0.4, so OpenMetrics goes through
//!   Prometheus' OpenMetrics parser by way of `promtool tsdb create-blocks-from
//!   openmetrics`, which refuses a text without `# EOF`, a unit that is not the name's
//!   suffix, a bad line (and, being a backfill, samples without a timestamp: each sample
//!   gets one first);
//! * `prometheus_client`'s (Python, from PyPI, installed into `target/tools/py` by
//!   `cargo xtask test`), whose OpenMetrics parser is strict about grouping, cumulative
//!   buckets, `+Inf` and `_count`.
//!
//! The exporter is the default set's `prometheus-exporter` (installed beside the
//! executable by `cargo xtask build-plugins`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use metaclaude_formats::prometheus::{
    openmetrics_to_text, Exposition, Format, Histogram, MetricType, OPENMETRICS_CONTENT_TYPE,
    TEXT_CONTENT_TYPE,
};

use crate::log_sink::write_log_sink;
use crate::plugins::write_plugin;
use crate::serve::{agent, get, post, Reply, Server};
use crate::util::{bin, example_registry, root, succeed};

/// The `Accept` header Prometheus 2.x scrapes with.
pub const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// `GET /metrics`, with `accept` as the `Accept` header when given.
pub fn scrape(server: &Server, accept: Option<&str>) -> Reply {
    let mut request = agent().get(&server.url("/metrics"));
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    let mut r = request.call().expect("/metrics answers");
    Reply {
        status: r.status().as_u16(),
        headers: r.headers().clone(),
        body: r.body_mut().read_to_string().unwrap(),
    }
}

fn run_with_stdin(cmd: &mut Command, input: &str) -> Result<String, String> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (cargo xtask test installs it)"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(text)
    }
}

/// `promtool check metrics` on text in the format 0.0.4 (lint problems fail it too).
pub fn promtool_check_metrics(text: &str) {
    if let Err(e) = run_with_stdin(Command::new("promtool").args(["check", "metrics"]), text) {
        panic!("promtool check metrics: {e}\n{text}");
    }
}

/// Prometheus' OpenMetrics parser on `text`, through promtool's backfill.
pub fn promtool_check_openmetrics(text: &str) {
    let dir = tempfile::tempdir().unwrap();
    let stamped: String = text
        .lines()
        .map(|l| {
            if l.starts_with('#') {
                format!("{l}\n")
            } else {
                format!("{l} 1700000000\n")
            }
        })
        .collect();
    let file = dir.path().join("metrics.om");
    std::fs::write(&file, stamped).unwrap();
    let out = Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&file)
        .arg(dir.path().join("blocks"))
        .output()
        .expect("promtool (cargo xtask test installs it)");
    assert!(
        out.status.success(),
        "Prometheus' OpenMetrics parser: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn python() -> PathBuf {
    let python = root().join("target/tools/py/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: cargo xtask test creates it and installs prometheus-client there",
        python.display()
    );
    python
}

const PARSE: &str = r#"
import json, math, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics
from prometheus_client.parser import text_string_to_metric_families as text
parse = openmetrics if sys.argv[1] == "openmetrics" else text
def number(v):
    return v if math.isfinite(v) else repr(v)
print(json.dumps([
    {"name": f.name, "type": f.type, "unit": f.unit, "help": f.documentation,
     "samples": [[s.name, s.labels, number(float(s.value))] for s in f.samples]}
    for f in parse(sys.stdin.read())
]))
"#;

/// The families prometheus_client reads in `text` (OpenMetrics or 0.0.4, as `format`):
/// `[{name, type, unit, help, samples: [[name, labels, value]]}]`. A text it refuses
/// fails the test.
pub fn prometheus_client(text: &str, format: Format) -> Vec<Value> {
    let which = match format {
        Format::OpenMetrics => "openmetrics",
        Format::Text => "text",
    };
    let out = run_with_stdin(Command::new(python()).args(["-c", PARSE, which]), text)
        .unwrap_or_else(|e| panic!("prometheus_client's {which} parser refused it: {e}\n{text}"));
    serde_json::from_str::<Value>(&out)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// Every sample as `name{labels} value` with the labels decoded and sorted, leaving out
/// `_created` (OpenMetrics only) and the families `skip` names.
fn samples(families: &[Value], skip: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = families
        .iter()
        .filter(|f| !skip.contains(&f["name"].as_str().unwrap()))
        .flat_map(|f| f["samples"].as_array().unwrap().iter())
        .filter(|s| !s[0].as_str().unwrap().ends_with("_created"))
        .map(|s| {
            let labels: std::collections::BTreeMap<String, Value> =
                serde_json::from_value(s[1].clone()).unwrap();
            format!("{}{labels:?} {}", s[0].as_str().unwrap(), s[2])
        })
        .collect();
    out.sort();
    out
}

/// Fails showing what only one side has.
fn same_samples(openmetrics: &[String], text: &[String]) {
    let only = |a: &[String], b: &[String]| -> Vec<String> {
        a.iter()
            .filter(|s| !b.contains(s))
            .take(10)
            .cloned()
            .collect()
    };
    let (om_only, text_only) = (only(openmetrics, text), only(text, openmetrics));
    assert!(
        om_only.is_empty() && text_only.is_empty(),
        "the two forms differ; only in OpenMetrics: {om_only:#?}\nonly in 0.0.4: {text_only:#?}"
    );
    assert_eq!(openmetrics.len(), text.len());
}

/// Every check above on the two forms of one exposition, and the two read back the same.
pub fn check_both(openmetrics: &str, text: &str, skip: &[&str]) -> Vec<Value> {
    promtool_check_openmetrics(openmetrics);
    promtool_check_metrics(text);
    let om = prometheus_client(openmetrics, Format::OpenMetrics);
    let plain = prometheus_client(text, Format::Text);
    same_samples(&samples(&om, skip), &samples(&plain, skip));
    let types = |families: &[Value]| -> Vec<(String, String)> {
        families
            .iter()
            .map(|f| {
                (
                    f["name"].as_str().unwrap().to_string(),
                    f["type"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    assert_eq!(types(&om), types(&plain), "families and types");
    om
}

/// The default set's Prometheus exporter, in a plugins folder of its own, manifest as
/// shipped.
pub fn prometheus_exporter(plugins: &Path) {
    let manifest = std::fs::read_to_string(root().join("plugins/prometheus-exporter/plugin.toml"))
        .unwrap()
        .replace(
            "component = \"prometheus_exporter.wasm\"",
            "component = \"COMPONENT\"",
        );
    write_plugin(
        plugins,
        "prometheus-exporter",
        "prometheus_exporter.wasm",
        &manifest,
    );
}

/// Ids no registry has (each run is refused as VALIDATION, and counted under the id as
/// typed): a backslash, quotes and a line feed, which the writer escapes; a NUL and a
/// carriage return, which the exporter makes `_`; and one longer than a label keeps.
const ODD_IDS: [&str; 3] = ["a\\b\"c\nd{x=\"1\"} 9", "nul\u{0}and\rcr", LONG_ID];
const LONG_ID: &str = "long-id-long-id-long-id-long-id-long-id-long-id-long-id-long-id-long-id-long-id-long-id-long-id-long-id-long-id-long-id-long-id-long-id-long-id-long-id-long-id-long-id-long-id-long-id-long-id-long-id-long-id-long-id-long-id";

fn histogram_checks(families: &[Value]) {
    for family in families.iter().filter(|f| f["type"] == "histogram") {
        let samples = family["samples"].as_array().unwrap();
        let name = family["name"].as_str().unwrap();
        let count_of = |labels: &Value| {
            samples
                .iter()
                .find(|s| s[0] == format!("{name}_count") && &s[1] == labels)
                .map(|s| s[2].as_f64().unwrap())
        };
        let mut checked = 0;
        for s in samples.iter().filter(|s| s[1]["le"] == "+Inf") {
            let mut labels = s[1].clone();
            labels.as_object_mut().unwrap().remove("le");
            assert_eq!(Some(s[2].as_f64().unwrap()), count_of(&labels), "{s}");
            checked += 1;
        }
        assert!(checked > 0 || samples.is_empty(), "{name}");
    }
}

/// [`check_both`] on two scrapes of one server, OpenMetrics and 0.0.4, and the
/// histograms' checks: the families read from the OpenMetrics one. The uptime moves
/// between the two scrapes, a connection of an earlier request may close, and each
/// scrape's renders are calls into the exporters, timed in the call-latency histogram.
fn check_scrapes(openmetrics: &str, text: &str) -> Vec<Value> {
    let families = check_both(
        openmetrics,
        text,
        &[
            "metaclaude_server_uptime_seconds",
            "metaclaude_server_connections_open",
            "metaclaude_plugin_call_duration_seconds",
        ],
    );
    histogram_checks(&families);
    families
}

/// A manifest for an exporter fixture named NAME, built against `wit`.
fn exporter_manifest(wit: &str) -> String {
    format!("name = \"NAME\"\nversion = \"1.0.0\"\nkind = \"exporter\"\ncomponent = \"COMPONENT\"\nwit = \"{wit}\"\n")
}

/// A server with the default set's Prometheus exporter (when `prometheus`) and the
/// exporters `more` (name, component, manifest) in a plugins folder of its own.
fn serve_exporters(prometheus: bool, more: &[(&str, &str, String)]) -> (tempfile::TempDir, Server) {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    if prometheus {
        prometheus_exporter(&plugins);
    }
    for (name, wasm, manifest) in more {
        write_plugin(&plugins, name, wasm, manifest);
    }
    let server = Server::start(&example_registry(), &["--plugins"], |cmd| {
        cmd.arg(&plugins);
    });
    (tmp, server)
}

#[test]
fn served_expositions_pass_promtool_and_prometheus_client_in_both_formats() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    prometheus_exporter(&plugins);
    let server = Server::start(&example_registry(), &["--plugins"], |cmd| {
        cmd.arg(&plugins);
    });
    for id in ["hello", "hello", "failing"] {
        server.run(id);
    }
    for id in ODD_IDS {
        let r = post(
            &server.url("/api/v1/executions"),
            &json!({ "script_id": id }).to_string(),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.json()["error_details"]["category"], "VALIDATION");
    }

    let om = scrape(&server, Some(PROMETHEUS_ACCEPT));
    assert_eq!(om.status, 200);
    assert_eq!(om.header("content-type"), Some(OPENMETRICS_CONTENT_TYPE));
    assert_eq!(om.header("vary"), Some("accept"));
    let text = scrape(&server, None);
    assert_eq!(text.header("content-type"), Some(TEXT_CONTENT_TYPE));
    assert_eq!(om.body.matches("# EOF").count(), 1);
    assert!(om.body.ends_with("\n# EOF\n"));
    assert!(!text.body.contains("# EOF") && !text.body.contains("_created"));

    let families = check_scrapes(&om.body, &text.body);
    histogram_checks(&prometheus_client(&text.body, Format::Text));

    // The odd ids, as the independent parser decodes them.
    let totals: Vec<(String, f64)> = families
        .iter()
        .find(|f| f["name"] == "metaclaude_executions")
        .expect("the exporter's families")["samples"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s[0] == "metaclaude_executions_total")
        .map(|s| {
            (
                s[1]["script"].as_str().unwrap().to_string(),
                s[2].as_f64().unwrap(),
            )
        })
        .collect();
    let long_cut = &LONG_ID[..200];
    for (script, n) in [
        ("hello", 2.0),
        ("failing", 1.0),
        ("a\\b\"c\nd{x=\"1\"} 9", 1.0),
        ("nul_and_cr", 1.0),
        (long_cut, 1.0),
    ] {
        assert!(
            totals.contains(&(script.to_string(), n)),
            "{script:?} {n}: {totals:?}"
        );
    }
    assert_eq!(totals.len(), 5, "{totals:?}");
    let failure = families
        .iter()
        .find(|f| f["name"] == "metaclaude_executions_failure")
        .unwrap();
    assert!(
        failure["samples"].as_array().unwrap().iter().any(|s| s[1]
            == json!({"script": "failing", "specialist": "examples", "category": "EXECUTION"})
            && s[2] == 1.0),
        "{failure}"
    );
    let duration = families
        .iter()
        .find(|f| f["name"] == "metaclaude_execution_duration_seconds")
        .unwrap();
    assert_eq!(duration["unit"], "seconds");
    // The host's own families are OpenMetrics too (a counter named without _total).
    assert!(om
        .body
        .contains("# TYPE metaclaude_plugin_events_delivered counter\n"));
    assert!(text
        .body
        .contains("# TYPE metaclaude_plugin_events_delivered_total counter\n"));
}

/// `metaclaude metrics --prometheus` prints the text format 0.0.4 and `--openmetrics`
/// OpenMetrics 1.0.0, from a server and from the log alike, each read by promtool in its
/// format. (From the log, `--prometheus` printed the exporter's OpenMetrics, which
/// `promtool check metrics` refuses, as a textfile collector would.)
#[test]
fn metrics_prints_the_format_asked_for_from_a_server_and_from_the_log() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    let logs = tmp.path().join("logs");
    prometheus_exporter(&plugins);
    write_log_sink(&plugins, &logs, "", "");
    let server = Server::start(&example_registry(), &["--plugins"], |cmd| {
        cmd.arg(&plugins);
    });
    for id in ["hello", "failing", "hello"] {
        server.run(id);
    }
    let metrics = |args: &[&str]| -> String {
        let out = succeed(
            bin()
                .env("METACLAUDE_LOG_DIR", &logs)
                .arg("metrics")
                .args(args),
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let from_server = ["--server", server.http.as_str()];
    let from_log = ["--log", "--plugins", plugins.to_str().unwrap()];
    let text = metrics(&[&["--prometheus"][..], &from_server].concat());
    let om = metrics(&[&["--openmetrics"][..], &from_server].concat());
    let (status, stderr) = server.stop();
    assert!(status.success(), "{stderr}");
    let logged_text = metrics(&[&["--prometheus"][..], &from_log].concat());
    let logged_om = metrics(&[&["--openmetrics"][..], &from_log].concat());
    for (what, text, om) in [("server", &text, &om), ("log", &logged_text, &logged_om)] {
        promtool_check_metrics(text);
        assert!(
            !text.contains("# EOF") && !text.contains("_created"),
            "{what}: {text}"
        );
        assert!(
            text.contains("\nmetaclaude_executions_total{"),
            "{what}: {text}"
        );
        promtool_check_openmetrics(om);
        assert_eq!(om.matches("# EOF").count(), 1, "{what}: {om}");
        assert!(om.ends_with("\n# EOF\n"), "{what}: {om}");
        assert!(om.contains("_created"), "{what}: {om}");
    }
}

#[test]
fn an_exporter_speaking_the_text_format_makes_the_whole_answer_text() {
    let (_tmp, server) = serve_exporters(
        true,
        &[(
            "counts",
            "fixture_exporter.wasm",
            exporter_manifest("0.3.0"),
        )],
    );
    server.run("hello");
    let r = scrape(&server, Some(PROMETHEUS_ACCEPT));
    assert_eq!(r.header("content-type"), Some(TEXT_CONTENT_TYPE));
    for line in [
        "fixture_executions_finished_total{script=\"hello\"} 1",
        "metaclaude_executions_total{script=\"hello\",specialist=\"examples\"} 1",
        "# TYPE metaclaude_executions_total counter",
    ] {
        assert!(r.body.lines().any(|l| l == line), "{line}:\n{}", r.body);
    }
    assert!(!r.body.contains("# EOF") && !r.body.contains("_created"));
    promtool_check_metrics(&r.body);
    // The independent parser reads the same samples, typed as the text says.
    let families = prometheus_client(&r.body, Format::Text);
    let sample = |family: &str, name: &str| -> Vec<Value> {
        let f = families
            .iter()
            .find(|f| f["name"] == family)
            .unwrap_or_else(|| panic!("no family {family} in {families:#?}"));
        assert_eq!(f["type"], "counter", "{f}");
        f["samples"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s[0] == name)
            .cloned()
            .collect()
    };
    assert_eq!(
        sample(
            "fixture_executions_finished",
            "fixture_executions_finished_total"
        ),
        [json!(["fixture_executions_finished_total", {"script": "hello"}, 1.0])]
    );
    assert_eq!(
        sample("metaclaude_executions", "metaclaude_executions_total"),
        [json!([
            "metaclaude_executions_total",
            {"script": "hello", "specialist": "examples"},
            1.0
        ])]
    );
    histogram_checks(&families);
}

/// The value of the sample `series` (name and label set, as written) in `text`.
fn sample_value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
}

/// The format a scrape negotiates reaches the exporter (WIT 0.3.0 `render` takes it): the
/// fixture counts the renders it was asked for by format. It writes only 0.0.4, so each
/// answer is 0.0.4 whatever was asked.
#[test]
fn the_negotiated_format_reaches_the_exporter() {
    let (_tmp, server) = serve_exporters(
        false,
        &[(
            "counts",
            "fixture_exporter.wasm",
            exporter_manifest("0.3.0"),
        )],
    );
    let renders = |r: &Reply| {
        assert_eq!(r.header("content-type"), Some(TEXT_CONTENT_TYPE));
        promtool_check_metrics(&r.body);
        [
            sample_value(&r.body, "fixture_renders_total{format=\"openmetrics\"}"),
            sample_value(&r.body, "fixture_renders_total{format=\"prometheus-text\"}"),
        ]
    };
    assert_eq!(
        renders(&scrape(&server, Some(PROMETHEUS_ACCEPT))),
        [1.0, 0.0]
    );
    assert_eq!(renders(&scrape(&server, None)), [1.0, 1.0]);
    assert_eq!(
        renders(&scrape(&server, Some("text/plain;version=0.0.4"))),
        [1.0, 2.0]
    );
    assert_eq!(
        renders(&scrape(&server, Some("application/openmetrics-text"))),
        [2.0, 2.0]
    );
}

/// An exporter built against WIT 0.2.0 renders OpenMetrics without being told the
/// format: served beside the 0.3.0 Prometheus exporter, it is passed through in an
/// OpenMetrics answer and converted down in a 0.0.4 one, and both answers pass promtool
/// and prometheus_client.
#[test]
fn an_exporter_built_against_0_2_0_is_served_in_both_formats() {
    let (_tmp, server) = serve_exporters(
        true,
        &[(
            "older",
            "fixture_v02_exporter.wasm",
            exporter_manifest("0.2.0"),
        )],
    );
    for id in ["hello", "hello", "failing"] {
        server.run(id);
    }
    let om = scrape(&server, Some(PROMETHEUS_ACCEPT));
    assert_eq!(om.header("content-type"), Some(OPENMETRICS_CONTENT_TYPE));
    let text = scrape(&server, None);
    assert_eq!(text.header("content-type"), Some(TEXT_CONTENT_TYPE));
    for line in [
        "# TYPE fixture_v02_executions counter",
        "fixture_v02_executions_total{script=\"hello\"} 2",
        "# UNIT fixture_v02_wall_seconds seconds",
        "# TYPE metaclaude_executions counter",
    ] {
        assert!(om.body.lines().any(|l| l == line), "{line}:\n{}", om.body);
    }
    assert!(om
        .body
        .contains("\nfixture_v02_executions_created{script=\"hello\"} "));
    assert_eq!(om.body.matches("# EOF").count(), 1);
    for line in [
        "# TYPE fixture_v02_executions_total counter",
        "fixture_v02_executions_total{script=\"hello\"} 2",
        "fixture_v02_wall_seconds_count{script=\"failing\"} 1",
        "# TYPE metaclaude_executions_total counter",
    ] {
        assert!(
            text.body.lines().any(|l| l == line),
            "{line}:\n{}",
            text.body
        );
    }
    assert!(!text.body.contains("# EOF") && !text.body.contains("_created"));
    check_scrapes(&om.body, &text.body);
    let listed = get(&server.url("/api/v1/plugins")).json();
    let wit = |name: &str| {
        listed["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {listed:#}"))["wit"]
            .clone()
    };
    assert_eq!(
        (wit("older"), wit("prometheus-exporter")),
        (json!("0.2.0"), json!("0.3.0"))
    );
}

/// The writer's OpenMetrics of every type the conversion knows, and what it converts it
/// to, both read by both parsers.
#[test]
fn the_writer_and_the_down_conversion_pass_both_parsers() {
    let bounds = [0.005, 1.0, 2.5, 1_048_576.0];
    let mut h = Histogram::new(&bounds);
    for v in [0.001, 0.7, 3.0, 5e6] {
        h.observe(&bounds, v);
    }
    let mut out = Exposition::openmetrics();
    out.family(
        "demo_up",
        MetricType::Gauge,
        "Up, \"quoted\" \\ and\nsplit.",
    )
    .sample(&[("a", "x\\y\"z\nw")], 1.0);
    out.family("demo_runs_total", MetricType::Counter, "Runs.")
        .counter(&[("script", "a\"b")], 3.0, 1_700_000_000.5);
    out.family_with_unit("demo_seconds", MetricType::Histogram, "seconds", "Times.")
        .histogram(&[("script", "a")], &bounds, &h, Some(1_700_000_000.0))
        .histogram(
            &[("script", "b")],
            &bounds,
            &Histogram::new(&bounds),
            None::<f64>,
        );
    let mut written = out.finish_families();
    // Types the writer does not make, as other exporters write them.
    written.push_str(
        "# TYPE demo_build info\n# HELP demo_build Build.\ndemo_build_info{version=\"1.0\"} 1\n\
         # TYPE demo_mode stateset\n# HELP demo_mode Mode.\ndemo_mode{demo_mode=\"a\"} 1\ndemo_mode{demo_mode=\"b\"} 0\n\
         # TYPE demo_queue gaugehistogram\n# HELP demo_queue Queue.\ndemo_queue_bucket{le=\"1.0\"} 2\ndemo_queue_bucket{le=\"+Inf\"} 3\ndemo_queue_gcount 3\ndemo_queue_gsum 4.5\n\
         # TYPE demo_latency_seconds summary\n# HELP demo_latency_seconds Latency.\n# UNIT demo_latency_seconds seconds\ndemo_latency_seconds{quantile=\"0.5\"} 0.2\ndemo_latency_seconds_sum 10.0\ndemo_latency_seconds_count 20\ndemo_latency_seconds_created 1700000000.0\n\
         # EOF\n",
    );
    let text = openmetrics_to_text(&written).unwrap();
    promtool_check_openmetrics(&written);
    promtool_check_metrics(&text);
    let om = prometheus_client(&written, Format::OpenMetrics);
    let plain = prometheus_client(&text, Format::Text);
    histogram_checks(&om);
    // The gauge histogram is a histogram in 0.0.4 (_gcount, _gsum as _count, _sum) and
    // the others keep their samples.
    let rename = |s: String| s.replace("_gcount", "_count").replace("_gsum", "_sum");
    let mut om_samples: Vec<String> = samples(&om, &[]).into_iter().map(rename).collect();
    om_samples.sort();
    same_samples(&om_samples, &samples(&plain, &[]));
    let up = &plain[0];
    assert_eq!(up["help"], "Up, \"quoted\" \\ and\nsplit.");
    assert_eq!(up["samples"][0][1]["a"], "x\\y\"z\nw");
}
