//! Notifiers written in other languages: the three examples of `examples/plugins/`
//! (Python, JavaScript, C; built by `cargo xtask build-plugins`) are dropped into a
//! plugins directory as a user would, beside a hostile sink whose quarantine raises the
//! host's own `plugin_quarantined` alert. Each POSTs that alert, as the host's alert JSON,
//! to a webhook on loopback; a webhook that answers 503 is reported as an error.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use metaclaude::plugin::PluginHost;
use metaclaude::{ExecutionRequest, ExecutorConfig, Registry, ToolExecutionService};
use serde_json::Value;

use crate::plugins::write_plugin;
use crate::util::{
    bin, example_registry, root, run_hello_with_plugins, wait_until, LoopbackServer,
};

/// Each example: its folder under examples/plugins, its component, the variable its
/// manifest reads the webhook URL from.
const EXAMPLES: [(&str, &str, &str); 3] = [
    (
        "python-notifier",
        "python_notifier.wasm",
        "PYTHON_NOTIFIER_URL",
    ),
    ("js-notifier", "js_notifier.wasm", "JS_NOTIFIER_URL"),
    ("c-notifier", "c_notifier.wasm", "C_NOTIFIER_URL"),
];

/// One POST the webhook received.
#[derive(Debug, Clone)]
pub struct Received {
    /// The request line and headers, as received.
    pub head: String,
    pub path: String,
    pub content_type: String,
    pub body: String,
}

/// A webhook on a free loopback port: records every request and answers `status`.
pub struct Webhook {
    server: LoopbackServer,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Webhook {
    pub fn start(status: u16) -> Webhook {
        let received = Arc::new(Mutex::new(Vec::new()));
        let server = {
            let received = received.clone();
            LoopbackServer::start(move |mut s, _| {
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                if let Some(request) = read_request(&mut s) {
                    received.lock().unwrap().push(request);
                }
                let code = status;
                let reason = if code < 300 {
                    "OK"
                } else {
                    "Service Unavailable"
                };
                let body = if code < 300 { "" } else { "maintenance" };
                let _ = write!(
                    s,
                    "HTTP/1.1 {code} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            })
        };
        Webhook { server, received }
    }

    pub fn port(&self) -> u16 {
        self.server.port()
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port())
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

/// One HTTP request: its path, content type and body (Content-Length bytes).
fn read_request(s: &mut impl Read) -> Option<Received> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&data).to_string();
        let Some(end) = text.find("\r\n\r\n") else {
            continue;
        };
        let header = |name: &str| {
            text[..end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
                })
                .unwrap_or_default()
        };
        let length: usize = header("content-length").parse().unwrap_or(0);
        if data.len() < end + 4 + length {
            continue;
        }
        let path = text.split(' ').nth(1).unwrap_or_default().to_string();
        return Some(Received {
            head: text[..end].to_string(),
            path,
            content_type: header("content-type"),
            body: String::from_utf8_lossy(&data[end + 4..end + 4 + length]).to_string(),
        });
    }
}

/// A plugins directory with the three examples (as shipped, notifying at once:
/// `group_wait_s = 0`) and a sink that traps on its first batch, quarantined at once.
fn plugins_dir(plugins: &Path) {
    for (example, wasm, _) in EXAMPLES {
        let from = root().join("examples/plugins").join(example);
        let to = plugins.join(example);
        std::fs::create_dir_all(&to).unwrap();
        assert!(
            from.join(wasm).is_file(),
            "{example} is not built: run `cargo xtask build-plugins`"
        );
        std::fs::copy(from.join(wasm), to.join(wasm)).unwrap();
        let manifest = std::fs::read_to_string(from.join("plugin.toml")).unwrap();
        std::fs::write(
            to.join("plugin.toml"),
            format!("{manifest}\n[alerts]\ngroup_wait_s = 0\n"),
        )
        .unwrap();
    }
    write_plugin(
        plugins,
        "hostile-trap",
        "fixture_sink.wasm",
        "name = \"NAME\"\nversion = \"1.0.0\"\nkind = \"sink\"\ncomponent = \"COMPONENT\"\n\
         [config]\nmode = \"trap\"\n[limits]\nmax_failures = 1\n",
    );
}

/// `2024-01-15T10:30:45.123456Z`: RFC 3339, UTC, microseconds.
fn is_rfc3339_micros(v: &Value) -> bool {
    let Some(s) = v.as_str() else { return false };
    let pattern = "dddd-dd-ddTdd:dd:dd.ddddddZ";
    s.len() == pattern.len()
        && s.chars().zip(pattern.chars()).all(|(c, p)| match p {
            'd' => c.is_ascii_digit(),
            _ => c == p,
        })
}

/// The alert with its numbers as floats: `1`, `1.0` and `1e0` are the same number.
fn normalised(mut v: Value) -> Value {
    for key in ["value", "threshold"] {
        if let Some(n) = v[key].as_f64() {
            v[key] = Value::from(n);
        }
    }
    v
}

#[test]
fn each_example_notifier_delivers_the_quarantine_alert() {
    let webhook = Webhook::start(200);
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    plugins_dir(&plugins);
    let mut run = bin();
    for (example, _, variable) in EXAMPLES {
        run.env(variable, webhook.url(example));
    }
    let out = run_hello_with_plugins(&mut run, &plugins);
    wait_until(
        "each example notifier POSTs the alert",
        Duration::from_secs(30),
        || {
            let got = webhook.received();
            EXAMPLES
                .iter()
                .all(|(e, _, _)| got.iter().any(|r| r.path == format!("/{e}")))
        },
        || {
            format!(
                "{:?}\nstderr:\n{}",
                webhook.received(),
                String::from_utf8_lossy(&out.stderr)
            )
        },
    );
    let mut alerts = Vec::new();
    for (example, _, _) in EXAMPLES {
        let got: Vec<Received> = webhook
            .received()
            .into_iter()
            .filter(|r| r.path == format!("/{example}"))
            .collect();
        assert_eq!(got.len(), 1, "{example}: one alert, one POST: {got:?}");
        assert_eq!(got[0].content_type, "application/json", "{example}");
        let alert: Value = serde_json::from_str(&got[0].body)
            .unwrap_or_else(|e| panic!("{example} sent no JSON ({e}): {}", got[0].body));
        assert_eq!(alert["type"], "plugin_quarantined", "{example}: {alert}");
        assert_eq!(alert["severity"], "critical", "{example}: {alert}");
        assert_eq!(alert["status"], "firing", "{example}: {alert}");
        assert_eq!(
            alert["labels"]["plugin"], "hostile-trap",
            "{example}: {alert}"
        );
        assert!(
            alert["message"].as_str().unwrap().contains("hostile-trap"),
            "{example}: {alert}"
        );
        let fingerprint = alert["fingerprint"].as_str().unwrap();
        assert!(
            fingerprint.len() == 16 && fingerprint.chars().all(|c| c.is_ascii_hexdigit()),
            "{example}: {alert}"
        );
        assert!(is_rfc3339_micros(&alert["timestamp"]), "{example}: {alert}");
        assert!(is_rfc3339_micros(&alert["starts_at"]), "{example}: {alert}");
        for absent in ["ends_at", "specialist"] {
            assert!(alert.get(absent).is_none(), "{example}: {alert}");
        }
        assert!(alert["value"].is_number() && alert["threshold"].is_number());
        alerts.push((example, normalised(alert)));
    }
    // Three languages, one alert JSON.
    for (example, alert) in &alerts[1..] {
        assert_eq!(alert, &alerts[0].1, "{example} and {}", alerts[0].0);
    }
}

#[test]
fn a_failed_delivery_is_reported_as_an_error() {
    let webhook = Webhook::start(503);
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    plugins_dir(&plugins);
    for (example, _, _) in EXAMPLES {
        let manifest = plugins.join(example).join("plugin.toml");
        let text = std::fs::read_to_string(&manifest).unwrap();
        let at = text.find("${").unwrap();
        let default = &text[at..text[at..].find('}').unwrap() + at + 1];
        std::fs::write(&manifest, text.replace(default, &webhook.url(example))).unwrap();
    }
    crate::util::grant_all(&plugins);
    // The compiled-component cache `bin()` uses too: the runtimes compile once.
    let cache = std::env::temp_dir().join("metaclaude-test-component-cache");
    std::fs::create_dir_all(&cache).unwrap();
    let mut host = PluginHost::new(Some(cache)).unwrap();
    let errors = host.load_dir(&plugins).unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    let host = Arc::new(host);
    let mut service = ToolExecutionService::new(
        Registry::load(example_registry()).unwrap(),
        ExecutorConfig::default(),
    );
    service.add_sink(host.clone());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let r = rt.block_on(service.execute(ExecutionRequest::new("hello").input("name", "x")));
    assert!(r.success, "{:?}", r.error_details);
    let refused = |example: &str| {
        host.list()
            .into_iter()
            .find(|p| p.name == example)
            .is_some_and(|p| {
                p.refused > 0
                    && p.last_error.as_deref().is_some_and(|e| {
                        e.contains("answered 503")
                            && e.contains("maintenance")
                            && e.contains(example)
                    })
            })
    };
    wait_until(
        "each example notifier reports the 503 as an error",
        Duration::from_secs(30),
        || EXAMPLES.iter().all(|(e, _, _)| refused(e)),
        || {
            let list: Vec<_> = host
                .list()
                .into_iter()
                .map(|p| (p.name, p.refused, p.last_error))
                .collect();
            format!("{list:?}")
        },
    );
    host.shutdown();
}
