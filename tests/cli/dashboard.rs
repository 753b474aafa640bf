//! The web dashboard in a real browser: Debian's headless Chromium driven over WebDriver
//! (chromedriver, through fantoccini) against the real `metaclaude serve`. The page
//! exposes its state in DOM attributes, so every wait is on a value, never a sleep.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::{json, Value};

// Shared with the dashboard benchmark.
#[path = "../../host/benches/support/browser.rs"]
mod browser;
use browser::Browser;

use crate::serve::{get, post, Server};
use crate::util::example_registry;

fn run_script(server: &Server, body: Value) -> Value {
    let r = post(&server.url("/api/v1/executions"), &body.to_string());
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

#[test]
fn the_dashboard_shows_a_mixed_workload_live_with_details_filters_and_sorting() {
    let server = Server::start(&example_registry(), &[], |_| {});
    let browser = Browser::start();
    browser.goto(&server.url("/"));
    browser.wait_for("live", "document.body.dataset.connection === 'live'");
    assert_eq!(browser.attr("#feed", "data-count"), "0", "an empty server");

    // A mixed workload, with the page open.
    let mut ids = Vec::new();
    for script in [
        "hello",
        "hello",
        "summarize_json",
        "failing",
        "missing_tool",
        "hello",
    ] {
        let body = json!({ "script_id": script, "inputs": if script == "summarize_json" { json!({"values": "1,2,3"}) } else { json!({}) } });
        ids.push(run_script(&server, body)["execution_id"].clone());
    }
    let failing = ids[3].as_str().unwrap().to_string();
    browser.wait_for(
        "the summary counts all six",
        "document.getElementById('sum-total').dataset.value === '6'",
    );
    browser.wait_for(
        "the feed lists all six",
        "document.getElementById('feed').dataset.count === '6'",
    );
    for id in &ids {
        let id = id.as_str().unwrap();
        assert!(
            !browser
                .attr(
                    &format!("#feed tr[data-execution-id='{id}']"),
                    "data-script"
                )
                .is_empty(),
            "{id} in the feed"
        );
    }
    // The error breakdown, overall and per script.
    browser.wait_for(
        "failures by category",
        "document.querySelector('#errors-by-category tr[data-category=EXECUTION]')",
    );
    assert_eq!(
        browser.attr(
            "#errors-by-category tr[data-category=DEPENDENCY]",
            "data-count"
        ),
        "1"
    );
    assert_eq!(
        browser.attr("#errors-by-script tr[data-script=failing]", "data-failures"),
        "1"
    );
    assert_eq!(
        browser.attr("#top-scripts tr[data-script=hello]", "data-count"),
        "3"
    );
    let charted = browser.wait_for(
        "the chart counts them",
        "document.getElementById('chart-executions').dataset.total === '6' && document.getElementById('chart-executions').dataset.failures",
    );
    assert_eq!(charted, json!("2"));
    let rate: f64 = browser
        .attr("#sum-success-rate", "data-value")
        .parse()
        .unwrap();
    assert!((rate - 200.0 / 3.0).abs() < 1e-6, "four of six: {rate}");
    browser.wait_for(
        "plugin health",
        "document.querySelector('#plugin-table tr[data-plugin=log-sink][data-state=running]')",
    );

    // The failing script's detail: category, message, suggestions, stack trace, output.
    browser.click(&format!("#feed tr[data-execution-id='{failing}'] td"));
    browser.wait_for(
        "the detail view",
        &format!("document.getElementById('detail').dataset.state === 'shown' && document.getElementById('detail').dataset.executionId === '{failing}'"),
    );
    let detail = browser.js(
        "return {
            category: document.querySelector('#detail [data-field=category]').textContent,
            message: document.querySelector('#detail [data-field=message]').textContent,
            suggestions: document.querySelectorAll('#detail-suggestions li').length,
            stack: (document.getElementById('detail-stack') || {}).textContent || '',
            stderr: document.getElementById('detail-stderr').textContent,
            attempts: document.querySelectorAll('#detail-attempts tbody tr').length,
            sources: [...document.querySelectorAll('#detail-usage tbody tr td:nth-child(3)')].map(e => e.textContent),
        };",
    );
    assert_eq!(detail["category"], "EXECUTION", "{detail}");
    assert!(detail["suggestions"].as_u64().unwrap() >= 1, "{detail}");
    assert!(
        detail["stack"].as_str().unwrap().contains("Traceback"),
        "{detail}"
    );
    assert!(
        detail["stderr"].as_str().unwrap().contains("ValueError"),
        "{detail}"
    );
    assert!(detail["attempts"].as_u64().unwrap() >= 1, "{detail}");
    assert!(
        detail["sources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s != "" && s != "clock"),
        "each figure names its source: {detail}"
    );
    browser.screenshot("dashboard-detail.png");
    browser.click("#detail-close");
    browser.wait_for("closed", "document.getElementById('detail').hidden");

    // A new execution streams in without a reload.
    let seq_before: u64 = browser.attr("body", "data-seq").parse().unwrap();
    run_script(&server, json!({ "script_id": "hello" }));
    browser.wait_for(
        "a seventh",
        "document.getElementById('sum-total').dataset.value === '7' && document.getElementById('feed').dataset.count === '7'",
    );
    let seq_after: u64 = browser.attr("body", "data-seq").parse().unwrap();
    assert!(
        seq_after >= seq_before + 3,
        "queued, started, finished: {seq_before} -> {seq_after}"
    );

    // Sorting by a column, kept in the URL.
    browser.click("#top-scripts button[data-key=key]");
    browser.wait_for(
        "sorted by name",
        "document.getElementById('top-scripts').dataset.sort === 'key'",
    );
    let order = browser.js(
        "return [...document.querySelectorAll('#top-scripts tbody tr')].map(r => r.dataset.script);",
    );
    let mut sorted: Vec<String> = serde_json::from_value(order.clone()).unwrap();
    sorted.sort();
    assert_eq!(order, json!(sorted));
    assert!(browser
        .js("return location.search;")
        .as_str()
        .unwrap()
        .contains("sort=key"));

    // A filter in the URL: the same view after a reload.
    browser.goto(&server.url("/?script=hello&window=5"));
    browser.wait_for("live again", "document.body.dataset.connection === 'live'");
    browser.wait_for(
        "only hello's",
        "document.getElementById('sum-total').dataset.value === '4' && document.getElementById('feed').dataset.count === '4'",
    );
    let scripts = browser.js(
        "return [...new Set([...document.querySelectorAll('#feed tbody tr')].map(r => r.dataset.script))];",
    );
    assert_eq!(scripts, json!(["hello"]));
    assert_eq!(
        browser.js("return document.querySelector('#filters [name=script]').value;"),
        json!("hello")
    );

    // Pause holds the feed still; resume takes a fresh snapshot.
    browser.click("#pause");
    browser.wait_for("paused", "document.body.dataset.paused === 'true'");
    run_script(&server, json!({ "script_id": "hello" }));
    browser.wait_for(
        "counted while paused",
        "Number(document.getElementById('feed-pending').textContent) >= 1",
    );
    assert_eq!(
        browser.attr("#feed", "data-count"),
        "4",
        "not shown while paused"
    );
    let snapshots: u64 = browser.attr("body", "data-snapshots").parse().unwrap();
    browser.click("#pause");
    browser.wait_for(
        "resumed with a fresh snapshot",
        &format!("Number(document.body.dataset.snapshots) > {snapshots} && document.getElementById('feed').dataset.count === '5'"),
    );

    browser.goto(&server.url("/"));
    browser.wait_for(
        "everything again",
        "document.getElementById('sum-total').dataset.value === '8'",
    );
    let shot = browser.screenshot("dashboard.png");
    assert!(
        std::fs::metadata(shot).unwrap().len() > 10_000,
        "a real picture"
    );
    assert_eq!(browser.attr("body", "data-csp-violations"), "0");
}

#[test]
fn the_dashboard_survives_a_server_restart_without_a_reload() {
    let logs = tempfile::tempdir().unwrap();
    // The first server on a port the system picks; the second on the same one once the
    // first is gone (the one port picked before it is bound, as a restart does).
    let start = |port: &str| {
        Server::start(
            &example_registry(),
            &["--http-port", port, "--no-ws-port"],
            |c| {
                c.env("METACLAUDE_LOG_DIR", logs.path());
            },
        )
    };
    let server = start("0");
    let port = server.http.rsplit(':').next().unwrap().to_string();
    let browser = Browser::start();
    browser.goto(&server.url("/"));
    browser.wait_for("live", "document.body.dataset.connection === 'live'");
    run_script(&server, json!({ "script_id": "hello" }));
    browser.wait_for(
        "one",
        "document.getElementById('feed').dataset.count === '1'",
    );

    let (status, _) = server.stop();
    assert!(status.success());
    browser.wait_for(
        "disconnected, with the data's age shown",
        "document.body.dataset.connection === 'disconnected' && document.getElementById('connection').textContent.includes('retrying')",
    );
    browser.wait_for(
        "how old the data is",
        "document.getElementById('age').textContent.startsWith('data from')",
    );
    assert_eq!(
        browser.attr("#feed", "data-count"),
        "1",
        "the last data stays shown"
    );

    let server = start(&port);
    browser.wait_for(
        "live again on its own, from a fresh snapshot",
        "document.body.dataset.connection === 'live' && Number(document.body.dataset.snapshots) >= 2",
    );
    run_script(
        &server,
        json!({ "script_id": "summarize_json", "inputs": {"values": "4"} }),
    );
    browser.wait_for(
        "new data from the new server",
        "document.querySelector('#feed tr[data-script=summarize_json]')",
    );
    // The new server read the first one's execution back from the shared log.
    assert_eq!(
        get(&server.url("/api/v1/executions?limit=5")).json()["count"],
        2
    );
}

/// A registry whose script prints everything a hostile script could: markup, an
/// event-handler attribute, ANSI escapes, bytes that are not UTF-8, a 1 MiB line.
fn hostile_registry(dir: &Path) -> PathBuf {
    crate::util::write_registry(
        dir,
        &[(
            "hostile.sh",
            "#!/bin/sh\n\
             printf '<script>window.__xss = 1</script><img src=x onerror=\"window.__xss = 2\">\\n'\n\
             printf '\\033[31mred\\033[0m \\033]0;title\\007 \\377\\376 done\\n'\n\
             head -c 1048576 /dev/zero | tr '\\0' 'A'\n\
             echo\n\
             printf '<svg onload=\"window.__xss = 3\">' >&2\n\
             exit 1\n",
        )],
        r#"{"scripts": [{"id": "hostile", "path": "hostile.sh", "max_retries": 0,
            "specialist": "<b onmouseover=alert(1)>x</b>"}]}"#,
    )
}

#[test]
fn hostile_output_and_names_stay_inert_text_under_a_strict_csp() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&hostile_registry(tmp.path()), &[], |_| {});
    let browser = Browser::start();
    browser.goto(&server.url("/"));
    browser.wait_for("live", "document.body.dataset.connection === 'live'");
    let hostile = run_script(&server, json!({ "script_id": "hostile" }));
    // An unknown script id and a user name are the caller's text too.
    let unknown = run_script(
        &server,
        json!({ "script_id": "<img src=x onerror=window.__xss=4>", "user": "<script>window.__xss=5</script>" }),
    );
    assert_eq!(unknown["success"], false);
    browser.wait_for(
        "both",
        "document.getElementById('feed').dataset.count === '2'",
    );
    let id = hostile["execution_id"].as_str().unwrap();
    browser.click(&format!("#feed tr[data-execution-id='{id}'] td"));
    browser.wait_for(
        "the hostile detail",
        "document.getElementById('detail').dataset.state === 'shown'",
    );
    let seen = browser.js(
        "const out = document.getElementById('detail-stdout').textContent;
         return {
            xss: window.__xss === undefined ? null : window.__xss,
            images: document.images.length,
            scripts: document.scripts.length,
            svgs: document.querySelectorAll('svg:not(.chart)').length,
            bold: document.querySelectorAll('b').length,
            markup: out.includes('<script>window.__xss = 1</script>'),
            escape: out.includes('\\u241b[31mred'),
            raw_escape: out.includes('\\u001b'),
            long: out.length,
            feed_script: [...document.querySelectorAll('#feed tbody tr td:nth-child(2)')].map(e => e.textContent).join('|'),
            specialists: [...document.querySelectorAll('#feed tbody tr td:nth-child(3)')].map(e => e.textContent).join('|'),
         };",
    );
    assert_eq!(seen["xss"], Value::Null, "nothing ran: {seen}");
    assert_eq!(seen["images"], 0, "{seen}");
    assert_eq!(seen["scripts"], 1, "only the page's own: {seen}");
    assert_eq!(seen["svgs"], 0, "{seen}");
    assert_eq!(seen["bold"], 0, "{seen}");
    assert_eq!(seen["markup"], true, "the markup is shown as text: {seen}");
    assert_eq!(seen["escape"], true, "ESC shown as a picture: {seen}");
    assert_eq!(seen["raw_escape"], false, "{seen}");
    assert!(
        seen["long"].as_u64().unwrap() > 100_000,
        "the long line is there: {seen}"
    );
    assert!(
        seen["feed_script"].as_str().unwrap().contains("<img src=x"),
        "{seen}"
    );
    assert!(
        seen["specialists"]
            .as_str()
            .unwrap()
            .contains("<b onmouseover"),
        "{seen}"
    );
    // Hovering the hostile specialist does nothing either.
    browser.js("document.querySelectorAll('td').forEach(td => td.dispatchEvent(new MouseEvent('mouseover', {bubbles: true}))); return 0;");
    assert_eq!(
        browser.js("return window.__xss === undefined;"),
        json!(true)
    );

    assert_eq!(browser.attr("body", "data-csp-violations"), "0");
    let console = browser.console();
    assert!(
        !console
            .iter()
            .any(|m| m.contains("Content Security Policy") || m.contains("Refused to")),
        "CSP violations in the console: {console:?}"
    );
    // And the policy is the strict one.
    let page = get(&server.url("/"));
    assert!(page
        .header("content-security-policy")
        .unwrap()
        .starts_with("default-src 'self'"));
}

#[test]
fn with_a_token_the_page_works_after_opening_the_printed_url_once() {
    let tmp = tempfile::tempdir().unwrap();
    let token = "dashboard-test-token-0123456789";
    let token_file = crate::serve::token_file(tmp.path(), token);
    let server = Server::start(
        &example_registry(),
        &["--token-file", token_file.to_str().unwrap()],
        |_| {},
    );
    // Nothing of the page or its data without the token.
    for path in ["/", "/dashboard/dashboard.js", "/api/v1/stats", "/ws"] {
        assert_eq!(get(&server.url(path)).status, 401, "{path}");
    }
    let browser = Browser::start();
    browser.goto(&server.url(&format!("/?token={token}&window=5")));
    browser.wait_for("live", "document.body.dataset.connection === 'live'");
    assert_eq!(
        browser.js("return location.search;"),
        json!("?window=5"),
        "the token leaves the address bar"
    );
    let r = crate::serve::agent()
        .post(&server.url("/api/v1/executions"))
        .header("authorization", &format!("Bearer {token}"))
        .header("content-type", "application/json")
        .send(json!({ "script_id": "hello" }).to_string())
        .unwrap();
    assert_eq!(r.status(), 200);
    browser.wait_for(
        "shown with the cookie alone",
        "document.getElementById('sum-total').dataset.value === '1' && document.getElementById('feed').dataset.count === '1'",
    );
    // A reload needs nothing more.
    browser.goto(&server.url("/"));
    browser.wait_for(
        "live after a reload",
        "document.body.dataset.connection === 'live'",
    );
    assert_eq!(
        browser.js("return document.getElementById('notice').hidden;"),
        json!(true),
        "no token notice"
    );

    // A page on another port of the same host (the same site: the browser sends it the
    // cookie) tries what the issue found: a no-cors POST, and a text/plain form whose
    // body is a valid request (`{"script_id": "hello", "user": "="}`). Nothing runs.
    let elsewhere = another_site_page();
    browser.goto(&elsewhere);
    let target = server.url("/api/v1/executions");
    // The promise settles once the answer is in; Chromium then hides it from the page
    // (opaque), or refuses it (the server's Cross-Origin-Resource-Policy: same-origin).
    let settled = browser.js(&format!(
        "return fetch('{target}', {{method: 'POST', mode: 'no-cors', credentials: 'include', body: '{{\"script_id\": \"hello\"}}'}}).then(r => r.type, e => e.name);"
    ));
    assert!(
        settled == json!("opaque") || settled == json!("TypeError"),
        "{settled}"
    );
    browser.js(&format!(
        "const f = document.createElement('form');
         f.method = 'POST'; f.action = '{target}'; f.enctype = 'text/plain';
         const i = document.createElement('input');
         i.name = '{{\"script_id\": \"hello\", \"user\": \"'; i.value = '\"}}';
         f.appendChild(i); document.body.appendChild(f); f.submit(); return true;"
    ));
    let refused = browser.wait_for(
        "the form's answer",
        "location.pathname === '/api/v1/executions' && document.body.textContent",
    );
    assert!(
        refused.as_str().unwrap().contains("origin_not_allowed"),
        "{refused}"
    );
    let listed = crate::serve::agent()
        .get(&server.url("/api/v1/executions"))
        .header("authorization", &format!("Bearer {token}"))
        .call()
        .unwrap()
        .body_mut()
        .read_json::<Value>()
        .unwrap();
    assert_eq!(listed["count"], 1, "only the bearer's execution: {listed}");

    // The browser's own requests pass the rule: a POST from the server's page (the
    // browser's real Origin and Sec-Fetch-Site, the cookie) works when it says JSON, and
    // not when it does not.
    browser.goto(&server.url("/"));
    let status = |body: &str| {
        browser.js(&format!(
            "return fetch('/api/v1/reload', {{method: 'POST', {body}}}).then(r => r.status);"
        ))
    };
    assert_eq!(
        status("headers: {'Content-Type': 'application/json'}, body: '{}'"),
        json!(200)
    );
    assert_eq!(status("body: '{}'"), json!(415), "text/plain");
}

/// A page of another site: a plain page served on another loopback port (as any local
/// development server would), for as long as the tests run.
fn another_site_page() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            use std::io::{Read, Write};
            let mut stream = stream;
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let page = "<!doctype html><title>elsewhere</title><p>another site</p>";
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                page.len()
            );
        }
    });
    url
}

#[test]
fn dashboard_prints_the_address_to_open() {
    let mut child = crate::util::bin()
        .args(["dashboard", "--registry"])
        .arg(example_registry())
        .args(["--http-port", "0", "--ws-port", "0", "--no-plugins"])
        .env("METACLAUDE_LOG_DIR", tempfile::tempdir().unwrap().path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    // The address it bound (on a port the system picked), to open as it is.
    let url = line
        .strip_prefix("metaclaude dashboard: open ")
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("no address to open: {line}"))
        .to_string();
    let port: u16 = url
        .strip_prefix("http://127.0.0.1:")
        .and_then(|rest| rest.strip_suffix('/'))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("not a loopback page address: {line}"));
    assert_ne!(port, 0, "{line}");
    let page = get(&url);
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    assert!(page
        .body
        .contains("<script src=\"/dashboard/dashboard.js\" defer></script>"));
    let etag = page.header("etag").unwrap().to_string();
    let again = crate::serve::agent()
        .get(&url)
        .header("if-none-match", &etag)
        .call()
        .unwrap();
    assert_eq!(again.status(), 304, "a reload costs nothing");
    // Open pages share the stats a client accepts a little old, and only those.
    let stats = |cache: Option<&str>| {
        let mut r = crate::serve::agent().get(&format!("{url}api/v1/stats?period=5"));
        if let Some(c) = cache {
            r = r.header("cache-control", c);
        }
        let mut r = r.call().unwrap();
        let age = r
            .headers()
            .get("age")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let v: Value = r.body_mut().read_json().unwrap();
        (v["generated_at"].as_str().unwrap().to_string(), age)
    };
    let (first, _) = stats(Some("max-age=10"));
    let (shared, age) = stats(Some("max-age=10"));
    assert_eq!(shared, first, "the same answer");
    assert!(age.parse::<u64>().unwrap() <= 10);
    let (fresh, age) = stats(None);
    assert_ne!(fresh, first, "made afresh without the header");
    assert_eq!(age, "0");
    let _ = child.kill();
    let _ = child.wait();
}

/// Two scripts with expectations: `toggle` exits with the code in the file `code` beside
/// it (0 when there is none), writing markup and an escape to its stderr when it fails,
/// and one whose specialist is markup (ids are letters, digits, `_`, `-` and `.` only).
fn expecting_registry(dir: &Path) -> PathBuf {
    crate::util::write_registry(
        dir,
        &[(
            "toggle.sh",
            "#!/bin/sh\n\
             code=$(cat \"$(dirname \"$0\")/code\" 2>/dev/null || echo 0)\n\
             [ \"$code\" = 0 ] || printf '<img src=x onerror=\"window.__xss = 8\">disk full \\033[31mred\\n' >&2\n\
             exit \"$code\"\n",
        )],
        r#"{"scripts": [
            {"id": "toggle", "path": "toggle.sh", "max_retries": 0, "specialist": "ops",
             "expect": {"failures_in_a_row": 1}},
            {"id": "quiet", "path": "toggle.sh", "max_retries": 0,
             "specialist": "<b onmouseover=alert(1)>x</b>", "expect": {"every": "1h"}}
        ]}"#,
    )
}

/// The Scripts view: each script with an expect block, its state as a badge with the
/// word, its last run and result; a failure makes `toggle` failing (its alert's stderr
/// tail shown as text under it), the next success ok again; hostile names stay text.
#[test]
fn the_scripts_view_shows_each_scripts_state_live_and_its_failures_output_as_text() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&expecting_registry(tmp.path()), &[], |_| {});
    let browser = Browser::start();
    browser.goto(&server.url("/"));
    browser.wait_for("live", "document.body.dataset.connection === 'live'");
    browser.wait_for(
        "the two scripts with expectations",
        "document.getElementById('scripts').dataset.loaded === 'true' && document.getElementById('scripts').dataset.count === '2'",
    );
    let row = |script: &str| {
        format!(
            "[...document.querySelectorAll('#scripts-table tr[data-state]')].find(r => r.dataset.script === {})",
            json!(script)
        )
    };
    let toggle = row("toggle");
    assert_eq!(
        browser.js(&format!("return {toggle}.dataset.state;")),
        json!("new"),
        "nothing seen yet"
    );

    // A failure: failing at once (failures_in_a_row 1), with the alert's stderr tail.
    std::fs::write(tmp.path().join("code"), "3").unwrap();
    let failed = run_script(&server, json!({ "script_id": "toggle" }));
    assert_eq!(failed["success"], false, "{failed}");
    browser.wait_for(
        "toggle failing, its alert under it",
        &format!("{toggle} && {toggle}.dataset.state === 'failing' && document.querySelector('#scripts-table tr.script-alert[data-alert=script_failing] pre[data-tail=stderr_tail]')"),
    );
    let seen = browser.js(&format!(
        "const row = {toggle};
         const cells = [...row.cells].map(c => c.textContent);
         const tail = document.querySelector('#scripts-table tr.script-alert pre[data-tail=stderr_tail]');
         return {{
            cells,
            badge: row.querySelector('.state').className,
            last_run: row.cells[3].dataset.executionId,
            alert_script: tail.closest('tr').dataset.script,
            tail: tail.textContent,
            xss: window.__xss === undefined ? null : window.__xss,
            images: document.images.length,
            bold: document.querySelectorAll('b').length,
         }};"
    ));
    let cells = &seen["cells"];
    assert_eq!(cells[0], "toggle", "{seen}");
    assert_eq!(cells[1], "ops", "{seen}");
    assert_eq!(cells[2], "failing", "the word beside the colour: {seen}");
    assert!(seen["badge"].as_str().unwrap().contains("st-bad"), "{seen}");
    assert!(
        cells[3].as_str().unwrap().starts_with("EXECUTION "),
        "the last run's result: {seen}"
    );
    assert_eq!(seen["last_run"], failed["execution_id"], "{seen}");
    assert_eq!(cells[4], "none seen", "no success yet: {seen}");
    assert_eq!(cells[6], "1", "one failure in a row: {seen}");
    assert_eq!(seen["alert_script"], "toggle", "{seen}");
    let tail = seen["tail"].as_str().unwrap();
    assert!(
        tail.contains("<img src=x onerror=\"window.__xss = 8\">disk full"),
        "the tail as text: {seen}"
    );
    assert!(
        !tail.contains('\u{1b}'),
        "no escape reaches the page: {seen}"
    );
    assert_eq!(seen["xss"], Value::Null, "{seen}");
    assert_eq!(seen["images"], 0, "{seen}");
    assert_eq!(seen["bold"], 0, "{seen}");
    browser.js("document.getElementById('scripts').scrollIntoView(); return 0;");
    browser.screenshot("dashboard-scripts.png");

    // The next success: ok, the alert gone from under it.
    std::fs::write(tmp.path().join("code"), "0").unwrap();
    let ok = run_script(&server, json!({ "script_id": "toggle" }));
    assert_eq!(ok["success"], true, "{ok}");
    browser.wait_for(
        "toggle ok again, its alert resolved",
        &format!("{toggle}.dataset.state === 'ok' && !document.querySelector('#scripts-table tr.script-alert') && {toggle}.cells[3].textContent.startsWith('ok ')"),
    );
    let seen = browser.js(&format!(
        "const row = {toggle};
         return {{ badge: row.querySelector('.state').className, success: row.cells[4].textContent, failures: row.cells[6].textContent }};"
    ));
    assert!(seen["badge"].as_str().unwrap().contains("st-ok"), "{seen}");
    assert!(
        seen["success"].as_str().unwrap().ends_with(" ago"),
        "{seen}"
    );
    assert_eq!(seen["failures"], "0", "{seen}");

    // The hostile specialist: shown as it is, run as nothing.
    let hostile = row("quiet");
    let seen = browser.js(&format!(
        "const row = {hostile};
         return {{ id: row.cells[0].textContent, specialist: row.cells[1].textContent, state: row.dataset.state,
                   xss: window.__xss === undefined ? null : window.__xss, images: document.images.length,
                   bold: document.querySelectorAll('b').length }};"
    ));
    assert_eq!(seen["id"], "quiet", "{seen}");
    assert_eq!(
        seen["specialist"], "<b onmouseover=alert(1)>x</b>",
        "{seen}"
    );
    assert_eq!(seen["state"], "new", "{seen}");
    assert_eq!(seen["xss"], Value::Null, "{seen}");
    assert_eq!(seen["images"], 0, "{seen}");
    assert_eq!(seen["bold"], 0, "{seen}");
    // A server without a silences API (404): the list is not shown at all.
    assert_eq!(
        browser.js("return document.getElementById('silences').hidden;"),
        json!(get(&server.url("/api/v1/silences")).status == 404)
    );
    assert_eq!(browser.attr("body", "data-csp-violations"), "0");
}

/// The matchers the silence form holds now, as `name op value` lines.
fn form_matchers(browser: &Browser) -> Value {
    browser.js(
        "return [...document.querySelectorAll('#silence-matcher-rows .matcher')].map(r =>
            r.querySelector('[name=matcher-name]').value + ' ' + r.querySelector('[name=matcher-op]').value
            + ' ' + r.querySelector('[name=matcher-value]').value);",
    )
}

/// The silences the API lists (with `?all=true`, the expired too).
fn silences_listed(server: &Server, all: bool) -> Vec<Value> {
    let path = if all {
        "/api/v1/silences?all=true"
    } else {
        "/api/v1/silences"
    };
    let listed = get(&server.url(path)).json();
    listed["silences"].as_array().unwrap().clone()
}

/// Issue 32 on the page: a script's alert fires; its row's "Silence" opens a form with
/// its matcher, which the server refuses without a comment (its 422 message shown at the
/// comment), then takes with a second matcher, an author and a comment: the API lists it
/// and marks the alert silenced by it. "Expire", with the keyboard, ends it.
#[test]
fn a_silence_is_made_from_a_scripts_row_and_expired_from_the_page() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&expecting_registry(tmp.path()), &[], |_| {});
    let browser = Browser::start();
    browser.goto(&server.url("/"));
    browser.wait_for("live", "document.body.dataset.connection === 'live'");
    browser.wait_for(
        "the scripts and the silences",
        "document.getElementById('scripts').dataset.loaded === 'true' && !document.getElementById('silences').hidden",
    );
    std::fs::write(tmp.path().join("code"), "3").unwrap();
    assert_eq!(
        run_script(&server, json!({ "script_id": "toggle" }))["success"],
        false
    );
    browser.wait_for(
        "the alert fires, with its action",
        "document.querySelector('#alerts-active tr[data-alert=script_failing] button[data-action=silence-alert]')",
    );

    // A firing alert's action: its type and labels, prefilled; Escape closes the form and
    // gives the focus back to the button.
    browser.click("#alerts-active tr[data-alert=script_failing] button[data-action=silence-alert]");
    browser.wait_for(
        "the form, open",
        "document.getElementById('silence-dialog').open",
    );
    let mut prefilled: Vec<String> = serde_json::from_value(form_matchers(&browser)).unwrap();
    prefilled.sort();
    assert_eq!(
        prefilled,
        [
            "script = toggle",
            "specialist = ops",
            "type = script_failing"
        ]
    );
    browser.type_into("#silence-comment", "\u{E00C}");
    browser.wait_for(
        "closed by Escape",
        "!document.getElementById('silence-dialog').open && document.getElementById('silence-dialog').dataset.state === 'closed'",
    );
    assert_eq!(
        browser.js("return document.activeElement.dataset.action || '';"),
        json!("silence-alert"),
        "the focus is back on the alert's button"
    );

    // The script row's action: its script matcher.
    let action = "#scripts-table tr[data-script=toggle] button[data-action=silence-script]";
    browser.click(action);
    browser.wait_for(
        "the form, open again",
        "document.getElementById('silence-dialog').open",
    );
    assert_eq!(form_matchers(&browser), json!(["script = toggle"]));
    assert_eq!(
        browser.js("return document.activeElement.id;"),
        json!("silence-created-by"),
        "no author remembered yet: the focus is where the form needs words"
    );
    browser.type_into("#silence-created-by", "ana");

    // Without a comment: the server's 422 message, next to the comment.
    browser.click("#silence-submit");
    let said = browser.wait_for(
        "the server's refusal at the comment",
        "document.getElementById('silence-dialog').dataset.state === 'rejected' && !document.getElementById('silence-error-comment').hidden && document.getElementById('silence-error-comment').textContent",
    );
    assert!(
        said.as_str()
            .unwrap()
            .starts_with("comment: empty: say why alerts are muted"),
        "the server's words: {said}"
    );
    let seen = browser.js(
        "return {
            open: document.getElementById('silence-dialog').open,
            focus: document.activeElement.id,
            invalid: document.getElementById('silence-comment').getAttribute('aria-invalid'),
            described: document.getElementById('silence-comment').getAttribute('aria-describedby'),
            others: [...document.querySelectorAll('#silence-form .field-error')].filter(e => !e.hidden).length,
        };",
    );
    assert_eq!(
        seen,
        json!({"open": true, "focus": "silence-comment", "invalid": "true",
               "described": "silence-error-comment", "others": 1})
    );
    assert!(silences_listed(&server, true).is_empty(), "nothing made");
    browser.screenshot("dashboard-silence-form.png");

    // A second matcher, 4 hours, a comment: made.
    browser.click("#silence-add-matcher");
    let second = "#silence-matcher-rows .matcher[data-index='1']";
    assert_eq!(
        browser.js("return document.activeElement.name;"),
        json!("matcher-name"),
        "the new matcher has the focus"
    );
    browser.type_into(&format!("{second} [name=matcher-name]"), "type");
    browser.select(&format!("{second} [name=matcher-op]"), "=~");
    browser.type_into(&format!("{second} [name=matcher-value]"), "script_.*");
    browser.select("#silence-duration", "14400");
    let comment = "disk replaced: <b>back</b> at noon";
    browser.type_into("#silence-comment", comment);
    let asked_at = chrono::Utc::now();
    browser.click("#silence-submit");
    let id = browser.wait_for(
        "made, and said so",
        "!document.getElementById('silence-dialog').open && document.getElementById('silences-status').dataset.state === 'made' && document.getElementById('silences-status').dataset.silence",
    );
    let id = id.as_str().unwrap().to_string();
    assert_eq!(
        browser.js("return document.activeElement.dataset.action || '';"),
        json!("silence-script"),
        "the focus is back on the row's action"
    );

    let listed = silences_listed(&server, false);
    assert_eq!(listed.len(), 1, "{listed:?}");
    let made = &listed[0];
    assert_eq!(made["id"], json!(id), "{made}");
    assert_eq!(
        made["matchers"],
        json!([{"name": "script", "op": "=", "value": "toggle"},
               {"name": "type", "op": "=~", "value": "script_.*"}]),
        "{made}"
    );
    assert_eq!(made["comment"], comment, "{made}");
    assert_eq!(made["created_by"], "ana", "{made}");
    assert_eq!(made["state"], "active", "{made}");
    let ends: chrono::DateTime<chrono::Utc> = made["ends_at"].as_str().unwrap().parse().unwrap();
    let hours = (ends - asked_at).num_seconds() as f64 / 3600.0;
    assert!((3.95..=4.05).contains(&hours), "4 hours: {made}");

    crate::util::wait_until(
        "the alert marked silenced by it",
        std::time::Duration::from_secs(30),
        || {
            get(&server.url("/api/v1/alerts")).json()["active"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["type"] == "script_failing" && a["silenced_by"] == json!([id]))
        },
        || get(&server.url("/api/v1/alerts")).body,
    );
    // The page shows it: in the silences (the comment as text), on the row, on the alert.
    browser.wait_for(
        "listed and marked on the page",
        &format!(
            "document.querySelector('#silences-table tr[data-silence=\"{id}\"]') && document.querySelector('#scripts-table tr[data-state][data-script=toggle]').dataset.silenced === '1' && (document.querySelector('#alerts-active tr[data-alert=script_failing]').dataset.silencedBy || '').includes('{id}')"
        ),
    );
    let row = browser.js(&format!(
        "const r = document.querySelector('#silences-table tr[data-silence=\"{id}\"]');
         return {{ matchers: r.cells[1].textContent, comment: r.cells[5].textContent, bold: document.querySelectorAll('b').length }};"
    ));
    assert_eq!(
        row,
        json!({"matchers": "script=\"toggle\", type=~\"script_.*\"", "comment": comment, "bold": 0})
    );
    browser.js("document.getElementById('scripts').scrollIntoView(); return 0;");
    browser.screenshot("dashboard-silence.png");

    // Expired with the keyboard: Enter on its button.
    browser.type_into(
        &format!("#silences-table tr[data-silence=\"{id}\"] button[data-action=expire]"),
        "\u{E007}",
    );
    browser.wait_for(
        "expired, and said so; its row gone",
        &format!(
            "document.getElementById('silences-status').dataset.state === 'expired' && !document.querySelector('#silences-table tr[data-silence=\"{id}\"]')"
        ),
    );
    assert!(silences_listed(&server, false).is_empty());
    let all = silences_listed(&server, true);
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["id"], json!(id));
    assert_eq!(all[0]["state"], "expired", "{all:?}");
    assert_eq!(browser.attr("body", "data-csp-violations"), "0");
}
