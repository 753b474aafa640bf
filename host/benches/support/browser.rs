//! Debian's headless Chromium behind its own chromedriver, driven over WebDriver with
//! fantoccini: what the dashboard's browser tests and its benchmark share. Every wait is
//! on a value the page exposes, never a sleep.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// Headless Chromium behind its own chromedriver, with a fresh profile; both are ended
/// when dropped (also when a test fails half way).
pub struct Browser {
    client: Option<Client>,
    driver: Child,
    driver_url: String,
    profile: tempfile::TempDir,
    runtime: tokio::runtime::Runtime,
}

impl Browser {
    pub fn start() -> Browser {
        for (path, package) in [(CHROMEDRIVER, "chromium-driver"), (CHROMIUM, "chromium")] {
            assert!(
                Path::new(path).exists(),
                "{path} is missing: the browser tests need Debian's Chromium; install it with \
                 sudo apt-get install -y chromium chromium-driver (cargo xtask test does it as root) [{package}]"
            );
        }
        // On a port the system picks (`--port=0`), which chromedriver then names.
        let mut driver = Command::new(CHROMEDRIVER)
            .arg("--port=0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let port = started_on(&mut driver);
        let driver_url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !ureq::get(&format!("{driver_url}/status"))
            .call()
            .is_ok_and(|r| r.status() == 200)
        {
            assert!(Instant::now() < deadline, "chromedriver did not answer");
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1400,2200",
                    // Every tab live, as on a wall of screens (the benchmark opens ten).
                    "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
                    "--disable-backgrounding-occluded-windows",
                    // The page's heap, exactly and after a collection (the benchmark).
                    "--enable-precise-memory-info", "--js-flags=--expose-gc",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        caps.insert("goog:loggingPrefs".into(), json!({ "browser": "ALL" }));
        let client = runtime.block_on(async {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            ClientBuilder::new(connector)
                .capabilities(caps)
                .connect(&driver_url)
                .await
                .expect("a WebDriver session")
        });
        Browser {
            client: Some(client),
            driver,
            driver_url,
            profile,
            runtime,
        }
    }

    pub fn client(&self) -> &Client {
        self.client.as_ref().unwrap()
    }

    pub fn goto(&self, url: &str) {
        self.runtime
            .block_on(self.client().goto(url))
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    /// Runs `script` (a function body) in the page and returns what it returns.
    pub fn js(&self, script: &str) -> Value {
        self.runtime
            .block_on(self.client().execute(script, vec![]))
            .unwrap_or_else(|e| panic!("{script}: {e}"))
    }

    /// Waits (bounded) until the expression `condition` is truthy in the page; returns
    /// its value.
    pub fn wait_for(&self, what: &str, condition: &str) -> Value {
        let script = format!("return ({condition});");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let v = self.js(&script);
            let truthy = match &v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return v;
            }
            if Instant::now() > deadline {
                let state = self.js("return document.body.dataset;");
                panic!("{what}: `{condition}` never held; the page's state: {state}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn attr(&self, selector: &str, name: &str) -> String {
        let v = self.js(&format!(
            "const e = document.querySelector({}); return e ? e.getAttribute({}) : null;",
            json!(selector),
            json!(name)
        ));
        v.as_str().unwrap_or_default().to_string()
    }

    /// Clicks the element `selector`. A page that redraws a table between the find and
    /// the click replaces the element (gone, or stale): it is found again, a bounded
    /// number of times.
    pub fn click(&self, selector: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let tried = self.runtime.block_on(async {
                let element = self.client().find(Locator::Css(selector)).await?;
                element.click().await
            });
            match tried {
                Ok(()) => return,
                Err(e) if Instant::now() > deadline => panic!("click {selector}: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Types `text` into the element `selector` as a keyboard does (WebDriver's key codes,
    /// such as `\u{E007}` for Enter, included), after the text it has.
    pub fn type_into(&self, selector: &str, text: &str) {
        self.runtime.block_on(async {
            self.client()
                .find(Locator::Css(selector))
                .await
                .unwrap_or_else(|e| panic!("find {selector}: {e}"))
                .send_keys(text)
                .await
                .unwrap_or_else(|e| panic!("type into {selector}: {e}"))
        });
    }

    /// Chooses the option of value `value` of the `<select>` `selector`, as a click does.
    pub fn select(&self, selector: &str, value: &str) {
        self.runtime.block_on(async {
            self.client()
                .find(Locator::Css(selector))
                .await
                .unwrap_or_else(|e| panic!("find {selector}: {e}"))
                .select_by_value(value)
                .await
                .unwrap_or_else(|e| panic!("choose {value} in {selector}: {e}"))
        });
    }

    /// The browser's console messages since the last call (chromedriver's log endpoint).
    pub fn console(&self) -> Vec<String> {
        let id = self
            .runtime
            .block_on(self.client().session_id())
            .unwrap()
            .expect("a session id");
        let r: Value = ureq::post(&format!("{}/session/{id}/se/log", self.driver_url))
            .send_json(json!({ "type": "browser" }))
            .expect("the browser's log")
            .body_mut()
            .read_json()
            .unwrap();
        r["value"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| e["message"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    pub fn screenshot(&self, name: &str) -> PathBuf {
        let png = self
            .runtime
            .block_on(self.client().screenshot())
            .expect("a screenshot");
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("artefacts");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, png).unwrap();
        eprintln!("dashboard screenshot: {}", path.display());
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = self.runtime.block_on(async {
                tokio::time::timeout(Duration::from_secs(10), client.close()).await
            });
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        // Whatever chromedriver left behind, by the profile only this browser uses.
        let _ = Command::new("pkill")
            .args(["-KILL", "-f"])
            .arg(self.profile.path())
            .status();
    }
}

impl Browser {
    /// Opens `url` in `n` more tabs (each its own page and feed client); the first tab
    /// stays the current one.
    pub fn open_tabs(&self, url: &str, n: usize) {
        self.runtime.block_on(async {
            let first = self.client().window().await.expect("the current tab");
            for _ in 0..n {
                let tab = self.client().new_window(true).await.expect("a new tab");
                self.client()
                    .switch_to_window(tab.handle)
                    .await
                    .expect("switch to the tab");
                self.client().goto(url).await.expect("open the page");
            }
            self.client()
                .switch_to_window(first)
                .await
                .expect("back to the first tab");
        });
    }
}

/// The port chromedriver says it listens on ("ChromeDriver was started successfully on
/// port N."), read from its stdout (then drained, so that it never blocks on it).
fn started_on(driver: &mut Child) -> u16 {
    use std::io::{BufRead, BufReader};
    let stdout = driver.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut said = String::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let port = line
                .strip_prefix("ChromeDriver was started successfully on port ")
                .and_then(|rest| rest.trim_end_matches('.').parse::<u16>().ok());
            said.push_str(&line);
            said.push('\n');
            if let Some(port) = port {
                let _ = tx.send(Ok(port));
            }
        }
        let _ = tx.send(Err(said));
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(Ok(port)) => port,
        Ok(Err(said)) => panic!("chromedriver exited without a port:\n{said}"),
        Err(_) => panic!("chromedriver named no port within 30 s"),
    }
}
