//! The README's two fleet shapes beyond one Prometheus (issue 31), each with real
//! Prometheus servers (Debian's 2.42) on loopback ports they pick, configured with the
//! ready files of `examples/prometheus/` (only targets, addresses and intervals
//! replaced), over two `metaclaude serve` hosts running different scripts:
//!
//! * agent mode: a Prometheus agent (`agent.yml`) scrapes both hosts and remote-writes to
//!   a central Prometheus (`central.yml`, `--web.enable-remote-write-receiver`);
//! * federation: a site Prometheus (`site.yml`) scrapes both hosts, a top-level one
//!   (`top-level.yml`) scrapes the site's `/federate` for `{job="metaclaude"}` with
//!   `honor_labels: true`.
//!
//! At the central (top-level) Prometheus, the query API must count what ran on each host
//! per `instance`, per script, in every count, the series must carry the site's label
//! (they came through the site's Prometheus), and every Grafana panel query must return
//! data. Every wait is bounded and on the query API's answers.

use std::time::Duration;

use crate::prometheus::{
    check_dashboard, example_config, scrape_config, Fleet, Prometheus, AGENT_MODE,
};

/// The central series came through the site's Prometheus: each carries its `site`.
fn check_site_label(central: &Prometheus) {
    let by_site = central.by("sum by (site) (metaclaude_executions_total)", "site");
    assert_eq!(
        by_site.into_iter().collect::<Vec<_>>(),
        [("site-a".to_string(), 9.0)],
        "every execution, under the site's label"
    );
}

#[test]
fn agent_mode_remote_writes_both_hosts_to_a_central_prometheus() {
    let mut fleet = Fleet::start();
    let dir = tempfile::tempdir().unwrap();
    let central = Prometheus::start_with(
        &dir.path().join("central"),
        &example_config("central.yml", &[]),
        &["--web.enable-remote-write-receiver"],
    );
    let agent = Prometheus::start_with(
        &dir.path().join("agent"),
        &scrape_config(
            "agent.yml",
            &fleet.instances,
            &[
                ("- url:", format!("- url: {}/api/v1/write", central.url)),
                ("batch_send_deadline:", "batch_send_deadline: 1s".into()),
            ],
        ),
        &[AGENT_MODE],
    );
    // The agent keeps nothing to query: it is in agent mode indeed.
    let answer = crate::serve::get(&format!("{}/api/v1/query?query=up", agent.url));
    assert_ne!(
        answer.status, 200,
        "an agent answers no query: {}",
        answer.body
    );

    fleet.run_rounds(&central);
    fleet.check_counts(&central);
    check_site_label(&central);
    check_dashboard(&central);
}

#[test]
fn a_top_level_prometheus_federates_a_site_prometheus() {
    let mut fleet = Fleet::start();
    let dir = tempfile::tempdir().unwrap();
    let site = Prometheus::start(
        &dir.path().join("site"),
        &scrape_config("site.yml", &fleet.instances, &[]),
    );
    let site_address = site.url.trim_start_matches("http://");
    let top = Prometheus::start(
        &dir.path().join("top"),
        &scrape_config("top-level.yml", &[site_address.to_string()], &[]),
    );
    top.wait("the site's /federate up", Duration::from_secs(60), || {
        let targets = top.api("/api/v1/targets");
        let active = targets["activeTargets"].as_array().unwrap();
        active.len() == 1 && active[0]["health"] == "up"
    });

    fleet.run_rounds(&top);
    fleet.check_counts(&top);
    check_site_label(&top);
    // honor_labels: the hosts' job, not the federating job's.
    assert_eq!(
        top.by("count by (job) (metaclaude_executions_total)", "job")
            .keys()
            .collect::<Vec<_>>(),
        ["metaclaude"]
    );
    check_dashboard(&top);
}
