//! `vigie-router run` end to end: it scrapes a real agent into its embedded store, evaluates
//! rules, serves Prometheus' query, rules and alerts APIs, survives broken reloads and keeps
//! alert state across a restart; in remote mode it evaluates against a real Prometheus and a
//! real VictoriaMetrics that scrape the agent.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use vigie_e2e::{Proc, bin, free_port, get, peer, post, start_alertmanager, wait_for, wait_http};

fn json(port: u16, path: &str) -> Value {
    let r = get(port, path, &[]).expect("router answers");
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{path}: {e}: {}", r.text()))
}

fn start_agent(dir: &Path) -> (Proc, u16) {
    let port = free_port();
    let mut p = Proc::start(
        "agent",
        &bin("vigie-agent"),
        &[format!("--web.listen-address=127.0.0.1:{port}")],
        dir,
    );
    wait_http(&mut p, port, "/-/healthy");
    (p, port)
}

fn start_router(dir: &Path, port: u16, name: &str) -> Proc {
    let mut p = Proc::start(
        name,
        &bin("vigie-router"),
        &[
            "run".into(),
            format!("--config.file={}", dir.join("router.yml").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            format!("--storage.path={}", dir.join("data").display()),
        ],
        dir,
    );
    wait_http(&mut p, port, "/-/healthy");
    p
}

const RULES: &str = r#"groups:
  - name: node
    interval: 1s
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
      - alert: TargetDown
        expr: up == 0
        for: 2s
        labels:
          severity: critical
        annotations:
          summary: '{{ $labels.instance }} of {{ $labels.job }} is down ({{ $value }}), dc {{ $externalLabels.dc }}'
"#;

fn firing(port: u16, alertname: &str) -> Option<Value> {
    let v = json(port, "/api/v1/alerts");
    v["data"]["alerts"]
        .as_array()?
        .iter()
        .find(|a| a["labels"]["alertname"] == alertname && a["state"] == "firing")
        .cloned()
}

#[test]
fn embedded_mode_scrapes_evaluates_reloads_and_restores() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_agent, agent_port) = start_agent(dir.path());
    let dead = free_port();
    std::fs::write(
        dir.path().join("router.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n  external_labels:\n    dc: par1\nrule_files:\n  - rules/*.yml\nscrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:{agent_port}']\n  - job_name: gone\n    static_configs:\n      - targets: ['127.0.0.1:{dead}']\nroute:\n  receiver: ops\nreceivers:\n  - name: ops\n"
        ),
    )
    .expect("config");
    std::fs::create_dir_all(dir.path().join("rules")).expect("rules dir");
    let rules = dir.path().join("rules/node.yml");
    std::fs::write(&rules, RULES).expect("rules");
    let port = free_port();
    let mut router = start_router(dir.path(), port, "router");

    // The store fills from real scrapes: node metrics under node_exporter's names, and `up`.
    let up = wait_for("both targets scraped", Duration::from_secs(30), || {
        let v = json(port, "/api/v1/query?query=up");
        let r = v["data"]["result"].as_array()?.clone();
        (r.len() == 2).then_some(r)
    });
    for s in &up {
        let want = if s["metric"]["job"] == "node" {
            "1"
        } else {
            "0"
        };
        assert_eq!(s["value"][1], want, "{s}");
    }
    let cpus = json(
        port,
        "/api/v1/query?query=count(node_cpu_seconds_total%7Bmode%3D%22idle%22%7D)",
    );
    assert!(
        cpus["data"]["result"][0]["value"][1]
            .as_str()
            .is_some_and(|v| v != "0"),
        "{cpus}"
    );

    // Recording rules land in the store; the alert fires after `for` with templated text.
    wait_for("job:up:sum recorded", Duration::from_secs(20), || {
        let v = json(port, "/api/v1/query?query=job:up:sum%7Bjob%3D%22node%22%7D");
        (v["data"]["result"][0]["value"][1] == "1").then_some(())
    });
    let alert = wait_for("TargetDown firing", Duration::from_secs(20), || {
        firing(port, "TargetDown")
    });
    assert_eq!(alert["labels"]["job"], "gone");
    assert_eq!(alert["labels"]["severity"], "critical");
    assert_eq!(
        alert["annotations"]["summary"],
        format!("127.0.0.1:{dead} of gone is down (0), dc par1")
    );
    let active_at = alert["activeAt"].clone();

    // Range queries, series, labels and values answer as Prometheus does.
    // Two scrapes inside the last 3 s: polled, as a loaded machine may delay the second one.
    let range = wait_for(
        "two points in a range query",
        Duration::from_secs(20),
        || {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .ok()?
                .as_secs();
            let range = json(
                port,
                &format!(
                    "/api/v1/query_range?query=up%7Bjob%3D%22node%22%7D&start={}&end={now}&step=1",
                    now - 3
                ),
            );
            range["data"]["result"][0]["values"]
                .as_array()
                .is_some_and(|v| v.len() >= 2)
                .then_some(range)
        },
    );
    assert_eq!(range["data"]["resultType"], "matrix");
    let series = json(port, "/api/v1/series?match%5B%5D=up");
    assert_eq!(series["data"].as_array().map(Vec::len), Some(2));
    let labels = json(port, "/api/v1/labels");
    assert!(
        labels["data"]
            .as_array()
            .is_some_and(|l| l.iter().any(|x| x == "instance"))
    );
    let jobs = json(port, "/api/v1/label/job/values");
    assert_eq!(jobs["data"], serde_json::json!(["gone", "node"]));

    // Bad input: a 400 with the reason, and nothing else changes.
    let bad = get(port, "/api/v1/query?query=sum(up", &[]).expect("answer");
    assert_eq!(bad.status, 400);
    assert!(bad.text().contains("bad_data"), "{}", bad.text());

    // A broken rule file keeps the previous rules running and says so.
    std::fs::write(
        &rules,
        format!("{RULES}      - alert: Broken\n        expr: sum(up\n"),
    )
    .expect("write");
    let r = post(port, "/-/reload", &[], b"").expect("reload answers");
    assert_eq!(r.status, 500);
    assert!(r.text().contains("node.yml: 15:15"), "{}", r.text());
    let metrics = get(port, "/metrics", &[]).expect("metrics").text();
    assert!(
        metrics.contains("vigie_config_last_reload_successful 0"),
        "{metrics}"
    );
    let info = json(port, "/api/v1/status/runtimeinfo");
    assert_eq!(info["data"]["reloadConfigSuccess"], false);
    assert!(firing(port, "TargetDown").is_some_and(|a| a["activeAt"] == active_at));

    // SIGHUP after a fix loads the new rules; the unchanged alert keeps its start.
    std::fs::write(
        &rules,
        format!("{RULES}      - alert: AlwaysOn\n        expr: vector(1)\n"),
    )
    .expect("write");
    let pid = router.child.id().to_string();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    wait_for(
        "AlwaysOn loaded and firing",
        Duration::from_secs(20),
        || firing(port, "AlwaysOn"),
    );
    let metrics = get(port, "/metrics", &[]).expect("metrics").text();
    assert!(
        metrics.contains("vigie_config_last_reload_successful 1"),
        "{metrics}"
    );
    assert_eq!(
        firing(port, "TargetDown").map(|a| a["activeAt"].clone()),
        Some(active_at.clone())
    );
    let rules_api = json(port, "/api/v1/rules");
    let names: Vec<&str> = rules_api["data"]["groups"][0]["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(names, ["job:up:sum", "TargetDown", "AlwaysOn"]);

    // A restart restores alert state: the alert is firing at once, with its original start.
    let pid = router.child.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    let _ = router.child.wait();
    let port2 = free_port();
    let _router2 = start_router(dir.path(), port2, "router2");
    let restored = firing(port2, "TargetDown").expect("TargetDown firing right after restart");
    assert_eq!(restored["activeAt"], active_at);
}

/// A Prometheus-format scrape config for the agent, every second (Prometheus and VictoriaMetrics).
fn node_scrape_config(agent_port: u16) -> String {
    format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:{agent_port}']\n"
    )
}

fn remote_mode(name: &str, query_port: u16, dir: &Path) {
    std::fs::write(
        dir.join("router.yml"),
        format!(
            "global:\n  evaluation_interval: 1s\nrule_files:\n  - remote-rules.yml\nremote_query:\n  url: http://127.0.0.1:{query_port}\n  timeout: 5s\n"
        ),
    )
    .expect("config");
    std::fs::write(
        dir.join("remote-rules.yml"),
        "groups:\n  - name: remote\n    rules:\n      - alert: NodeScraped\n        expr: up{job=\"node\"} == 1\n        annotations:\n          summary: 'seen by {{ $labels.job }} ({{ $value }})'\n      - alert: Load\n        expr: count(node_load1) > 0\n",
    )
    .expect("rules");
    let port = free_port();
    let _router = start_router(dir, port, &format!("router-{name}"));
    let a = wait_for(
        &format!("NodeScraped firing via {name}"),
        Duration::from_secs(60),
        || firing(port, "NodeScraped"),
    );
    assert_eq!(a["annotations"]["summary"], "seen by node (1)");
    wait_for(
        &format!("Load firing via {name}"),
        Duration::from_secs(30),
        || firing(port, "Load"),
    );
    // Instant queries through the router go to the remote API.
    let v = json(port, "/api/v1/query?query=up%7Bjob%3D%22node%22%7D");
    assert_eq!(v["data"]["result"][0]["value"][1], "1", "{v}");

    // Recording rules need a store to write to: refused, with the file and rule named.
    std::fs::write(
        dir.join("remote-rules.yml"),
        "groups:\n  - name: remote\n    rules:\n      - record: job:up:sum\n        expr: sum by (job) (up)\n",
    )
    .expect("rules");
    let out = std::process::Command::new(bin("vigie-router"))
        .args(["check", "config"])
        .arg(dir.join("router.yml"))
        .output()
        .expect("check config");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("job:up:sum") && err.contains("remote"),
        "{err}"
    );
}

#[test]
fn remote_mode_against_prometheus() {
    let Some(prometheus) = peer(&["prometheus"], "prometheus") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let (_agent, agent_port) = start_agent(dir.path());
    let prom_port = free_port();
    std::fs::write(
        dir.path().join("prometheus.yml"),
        node_scrape_config(agent_port),
    )
    .expect("prometheus config");
    let mut prom = Proc::start(
        "prometheus",
        &prometheus,
        &[
            format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ),
            format!("--storage.tsdb.path={}", dir.path().join("tsdb").display()),
            format!("--web.listen-address=127.0.0.1:{prom_port}"),
        ],
        dir.path(),
    );
    wait_http(&mut prom, prom_port, "/-/ready");
    remote_mode("prometheus", prom_port, dir.path());
}

#[test]
fn remote_mode_against_victoriametrics() {
    let Some(vm) = peer(&["victoria-metrics"], "victoria-metrics") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let (_agent, agent_port) = start_agent(dir.path());
    let vm_port = free_port();
    std::fs::write(
        dir.path().join("scrape.yml"),
        node_scrape_config(agent_port),
    )
    .expect("vm config");
    let mut p = Proc::start(
        "victoria-metrics",
        &vm,
        &[
            format!("-httpListenAddr=127.0.0.1:{vm_port}"),
            format!("-storageDataPath={}", dir.path().join("vmdata").display()),
            format!(
                "-promscrape.config={}",
                dir.path().join("scrape.yml").display()
            ),
            // Serve freshly scraped samples at once, so the test does not wait for the cache.
            "-search.latencyOffset=0s".into(),
        ],
        dir.path(),
    );
    wait_http(&mut p, vm_port, "/health");
    remote_mode("victoriametrics", vm_port, dir.path());
}

#[test]
fn external_alertmanager_receives_and_resolves_alerts() {
    let Some(am) = peer(
        &["prometheus-alertmanager", "alertmanager"],
        "prometheus-alertmanager",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("am.yml"),
        "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n",
    )
    .expect("am config");
    let (_am_proc, am_port) = start_alertmanager(
        &am,
        dir.path(),
        &dir.path().join("am.yml"),
        &dir.path().join("am-data"),
    );
    std::fs::write(
        dir.path().join("router.yml"),
        format!(
            "global:\n  evaluation_interval: 1s\nrule_files:\n  - am-rules.yml\nalerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{am_port}']\n"
        ),
    )
    .expect("router config");
    let rules = dir.path().join("am-rules.yml");
    std::fs::write(
        &rules,
        "groups:\n  - name: am\n    rules:\n      - alert: BackupTooOld\n        expr: vector(30)\n        labels:\n          severity: page\n        annotations:\n          summary: 'last backup {{ $value }} hours ago'\n",
    )
    .expect("rules");
    let port = free_port();
    let _router = start_router(dir.path(), port, "router-am");
    let in_am = |port: u16| -> Option<Value> {
        let r = get(port, "/api/v2/alerts", &[]).ok()?;
        let v: Value = serde_json::from_slice(&r.body).ok()?;
        v.as_array()?
            .iter()
            .find(|a| a["labels"]["alertname"] == "BackupTooOld")
            .cloned()
    };
    let a = wait_for("the alert in Alertmanager", Duration::from_secs(30), || {
        in_am(am_port)
    });
    assert_eq!(a["labels"]["severity"], "page");
    assert_eq!(a["annotations"]["summary"], "last backup 30 hours ago");
    assert_eq!(a["status"]["state"], "active");
    assert!(
        a["generatorURL"]
            .as_str()
            .is_some_and(|u| u.contains("/graph?g0.expr=")),
        "{a}"
    );

    // The condition clears: the router sends the resolution and Alertmanager drops the alert.
    std::fs::write(
        &rules,
        "groups:\n  - name: am\n    rules:\n      - alert: BackupTooOld\n        expr: vector(30) > 100\n        labels:\n          severity: page\n        annotations:\n          summary: 'last backup {{ $value }} hours ago'\n",
    )
    .expect("rules");
    wait_for(
        "the alert resolved in Alertmanager",
        Duration::from_secs(30),
        || in_am(am_port).is_none().then_some(()),
    );
}
