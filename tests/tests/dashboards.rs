//! `dashboards/`: current-schema Grafana JSON whose panels take their data source from a
//! variable; every PromQL expression (panels and variables) parses, and every metric it names,
//! with every label it matches on, is in a live store: the router of a running `vigie up` (which
//! scrapes its agent and itself, records the rules and writes `ALERTS`) plus an agent running the
//! storage collectors on fixtures. Every LogQL stream selector uses labels the shipped log
//! configurations (`deploy/`) set, and has a matcher Loki accepts. The provisioning files name the
//! data sources and the folder the dashboards load from.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use promql_parser::label::MatchOp;
use promql_parser::parser::{self, Expr, VectorSelector};
use serde_json::Value;
use vigie_e2e::loki::LokiDouble;
use vigie_e2e::{Proc, bin, free_port, get, root, start_up, wait_for, wait_http};

fn dashboards() -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = Vec::new();
    for e in std::fs::read_dir(root().join("dashboards")).expect("dashboards/") {
        let p = e.expect("entry").path();
        if p.extension().is_some_and(|x| x == "json") {
            let text = std::fs::read_to_string(&p).expect("read dashboard");
            let v: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: not JSON: {e}", p.display()));
            out.push((
                p.file_name().unwrap_or_default().to_string_lossy().into(),
                v,
            ));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() >= 5, "node, storage, logs, alerting, agent");
    out
}

/// Panels, rows' nested panels included.
fn panels(d: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().into_iter().flatten() {
        out.push(p);
        out.extend(p["panels"].as_array().into_iter().flatten());
    }
    out
}

fn variables(d: &Value) -> Vec<&Value> {
    d["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .collect()
}

/// The data source type a panel or target uses, through the dashboard's variables.
fn source_kind(d: &Value, ds: &Value) -> Option<String> {
    if let Some(t) = ds["type"].as_str() {
        return Some(t.to_string());
    }
    let uid = ds["uid"].as_str()?;
    let name = uid.trim_start_matches("${").trim_end_matches('}');
    variables(d)
        .into_iter()
        .find(|v| v["name"] == name && v["type"] == "datasource")
        .and_then(|v| v["query"].as_str().map(String::from))
}

/// `$var`, `${var}` and Grafana's interval variables replaced so the text parses.
fn substitute(expr: &str, value: impl Fn(&str) -> String) -> String {
    let re = regex::Regex::new(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?").expect("regex");
    re.replace_all(expr, |c: &regex::Captures<'_>| {
        let name = &c[1];
        if matches!(
            name,
            "__rate_interval" | "__interval" | "__range" | "__auto" | "__interval_ms"
        ) {
            "5m".to_string()
        } else {
            value(name)
        }
    })
    .into_owned()
}

/// Every vector selector in a PromQL expression.
fn selectors(e: &Expr, out: &mut Vec<VectorSelector>) {
    match e {
        Expr::Aggregate(a) => {
            selectors(&a.expr, out);
            if let Some(p) = &a.param {
                selectors(p, out);
            }
        }
        Expr::Unary(u) => selectors(&u.expr, out),
        Expr::Binary(b) => {
            selectors(&b.lhs, out);
            selectors(&b.rhs, out);
        }
        Expr::Paren(p) => selectors(&p.expr, out),
        Expr::Subquery(s) => selectors(&s.expr, out),
        Expr::VectorSelector(v) => out.push(v.clone()),
        Expr::MatrixSelector(m) => out.push(m.vs.clone()),
        Expr::Call(c) => {
            for a in &c.args.args {
                selectors(a, out);
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

/// Where a PromQL text sits, for messages.
struct Query {
    at: String,
    expr: String,
    /// `label_values(…, label)`: the label the variable lists.
    lists: Option<String>,
}

/// Every PromQL text of every dashboard: Prometheus panels' targets and query variables.
fn promql_queries() -> Vec<Query> {
    let mut out = Vec::new();
    let lv = regex::Regex::new(r"^\s*label_values\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$")
        .expect("regex");
    for (file, d) in dashboards() {
        for p in panels(&d) {
            for t in p["targets"].as_array().into_iter().flatten() {
                let ds = if t["datasource"].is_null() {
                    &p["datasource"]
                } else {
                    &t["datasource"]
                };
                if source_kind(&d, ds).as_deref() == Some("prometheus") {
                    out.push(Query {
                        at: format!("{file}: panel {:?} {}", p["title"], t["refId"]),
                        expr: t["expr"].as_str().unwrap_or_default().to_string(),
                        lists: None,
                    });
                }
            }
        }
        for v in variables(&d) {
            if v["type"] != "query"
                || source_kind(&d, &v["datasource"]).as_deref() != Some("prometheus")
            {
                continue;
            }
            let q = v["query"]["query"]
                .as_str()
                .or(v["query"].as_str())
                .unwrap_or_default();
            let c = lv.captures(q).unwrap_or_else(|| {
                panic!(
                    "{file}: variable {}: {q:?} is not label_values(…)",
                    v["name"]
                )
            });
            out.push(Query {
                at: format!("{file}: variable {}", v["name"]),
                expr: c[1].to_string(),
                lists: Some(c[2].to_string()),
            });
        }
    }
    out
}

#[test]
fn dashboards_are_current_grafana_json_with_source_variables() {
    let mut uids = BTreeSet::new();
    for (file, d) in dashboards() {
        let uid = d["uid"].as_str().unwrap_or_default();
        assert!(!uid.is_empty() && uid.len() <= 40, "{file}: uid {uid:?}");
        assert!(uids.insert(uid.to_string()), "{file}: uid {uid} used twice");
        assert!(
            d["title"]
                .as_str()
                .is_some_and(|t| t.starts_with("Vigie / ")),
            "{file}"
        );
        assert!(
            d["schemaVersion"].as_u64().is_some_and(|v| v >= 39),
            "{file}: schemaVersion {} (Grafana 11 writes 39+)",
            d["schemaVersion"]
        );
        assert!(
            d.get("id").is_none_or(Value::is_null),
            "{file}: a fixed id breaks import"
        );
        let sources: BTreeSet<String> = variables(&d)
            .into_iter()
            .filter(|v| v["type"] == "datasource")
            .filter_map(|v| v["name"].as_str().map(String::from))
            .collect();
        assert!(!sources.is_empty(), "{file}: no data-source variable");
        let mut ids = BTreeSet::new();
        for p in panels(&d) {
            let title = &p["title"];
            assert!(
                ids.insert(p["id"].as_u64().unwrap_or(0)),
                "{file}: panel id twice: {title}"
            );
            let g = &p["gridPos"];
            let (x, w) = (g["x"].as_u64().unwrap_or(99), g["w"].as_u64().unwrap_or(99));
            assert!(
                x + w <= 24 && g["h"].as_u64().is_some(),
                "{file}: {title}: gridPos {g}"
            );
            if p["type"] == "row" || p["type"] == "text" {
                continue;
            }
            // Every query panel reads through a variable, never a fixed data source.
            let uid = p["datasource"]["uid"].as_str().unwrap_or_default();
            let var = uid.trim_start_matches("${").trim_end_matches('}');
            assert!(
                uid.starts_with("${") && sources.contains(var),
                "{file}: {title}: data source {}",
                p["datasource"]
            );
            let targets = p["targets"].as_array().cloned().unwrap_or_default();
            assert!(!targets.is_empty(), "{file}: {title}: no query");
            for t in &targets {
                assert!(
                    t["expr"].as_str().is_some_and(|e| !e.trim().is_empty()),
                    "{file}: {title}: {t}"
                );
            }
        }
    }
}

#[test]
fn every_promql_expression_parses() {
    let queries = promql_queries();
    assert!(queries.len() > 80, "{} queries", queries.len());
    for q in &queries {
        let text = substitute(&q.expr, |_| "x".into());
        if let Err(e) = parser::parse(&text) {
            panic!("{}: {:?} does not parse: {e}", q.at, q.expr);
        }
    }
}

/// Every label name the shipped log configurations can put on a stream.
fn shipped_log_labels() -> BTreeSet<String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = root().join("deploy/systemd/logs.yaml");
    let manifest =
        std::fs::read_to_string(root().join("deploy/kubernetes/agent.yaml")).expect("agent.yaml");
    let mut kube = String::new();
    let mut inside = false;
    for line in manifest.lines() {
        if line.trim_start().starts_with("logs.yaml: |") {
            inside = true;
            continue;
        }
        if inside {
            if line.starts_with("    ") || line.is_empty() {
                kube.push_str(line.get(4..).unwrap_or(""));
                kube.push('\n');
            } else {
                break;
            }
        }
    }
    assert!(
        kube.contains("scrape_configs"),
        "ConfigMap logs.yaml not found"
    );
    let kube_path = dir.path().join("kube-logs.yaml");
    std::fs::write(&kube_path, &kube).expect("write");

    let mut labels = BTreeSet::new();
    for path in [server, kube_path] {
        // The agent itself accepts the file.
        if let Err(e) = vigie_agent::logs::config::Config::load(&path, false) {
            panic!("{}: the agent refuses it: {e:#}", path.display());
        }
        let text = std::fs::read_to_string(&path).expect("read");
        let v: Value = serde_saphyr::from_str(&text).expect("YAML");
        let keys = |m: &Value, out: &mut BTreeSet<String>| {
            for k in m.as_object().into_iter().flat_map(|o| o.keys()) {
                if !k.starts_with("__") {
                    out.insert(k.clone());
                }
            }
        };
        for c in v["clients"].as_array().into_iter().flatten() {
            keys(&c["external_labels"], &mut labels);
        }
        for sc in v["scrape_configs"].as_array().into_iter().flatten() {
            for st in sc["static_configs"].as_array().into_iter().flatten() {
                keys(&st["labels"], &mut labels);
                if st["labels"].get("__path__").is_some() {
                    labels.insert("filename".into());
                }
            }
            keys(&sc["journal"]["labels"], &mut labels);
            for r in sc["relabel_configs"].as_array().into_iter().flatten() {
                if let Some(t) = r["target_label"].as_str() {
                    labels.insert(t.to_string());
                }
            }
            let mut stages: Vec<Value> = sc["pipeline_stages"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            while let Some(s) = stages.pop() {
                keys(&s["labels"], &mut labels);
                keys(&s["static_labels"], &mut labels);
                if s.get("cri").is_some() || s.get("docker").is_some() {
                    labels.insert("stream".into());
                }
                stages.extend(s["match"]["stages"].as_array().cloned().unwrap_or_default());
            }
        }
    }
    labels
}

#[test]
fn logql_selectors_use_labels_the_shipper_sets() {
    let labels = shipped_log_labels();
    for l in [
        "job",
        "host",
        "level",
        "unit",
        "namespace",
        "pod",
        "container",
        "filename",
    ] {
        assert!(
            labels.contains(l),
            "the shipped configurations never set {l}: {labels:?}"
        );
    }
    let selector = regex::Regex::new(r"\{([^{}]*)\}").expect("regex");
    let matcher =
        regex::Regex::new(r#"([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)""#)
            .expect("regex");
    let mut checked = 0;
    for (file, d) in dashboards() {
        let all_values: BTreeMap<String, String> = variables(&d)
            .into_iter()
            .filter_map(|v| {
                let name = v["name"].as_str()?.to_string();
                Some((name, v["allValue"].as_str().unwrap_or("x").to_string()))
            })
            .collect();
        let mut texts: Vec<(String, String)> = Vec::new();
        for p in panels(&d) {
            for t in p["targets"].as_array().into_iter().flatten() {
                if source_kind(&d, &p["datasource"]).as_deref() == Some("loki") {
                    texts.push((
                        format!("{file}: panel {:?}", p["title"]),
                        t["expr"].as_str().unwrap_or_default().to_string(),
                    ));
                }
            }
        }
        for v in variables(&d) {
            if v["type"] == "query" && source_kind(&d, &v["datasource"]).as_deref() == Some("loki")
            {
                let q = v["query"].as_str().unwrap_or_default();
                let name = q
                    .trim_end_matches(')')
                    .rsplit([',', '('])
                    .next()
                    .unwrap_or_default()
                    .trim();
                assert!(
                    labels.contains(name),
                    "{file}: variable {} lists {name}",
                    v["name"]
                );
                texts.push((format!("{file}: variable {}", v["name"]), q.to_string()));
            }
        }
        for (at, text) in texts {
            for sel in selector.captures_iter(&text) {
                let mut accepted = false;
                let mut any = false;
                for m in matcher.captures_iter(&sel[1]) {
                    any = true;
                    let (name, op, value) = (&m[1], &m[2], &m[3]);
                    assert!(
                        labels.contains(name),
                        "{at}: {name} in {text:?} is set by no shipped configuration ({labels:?})"
                    );
                    let value = substitute(value, |v| {
                        all_values.get(v).cloned().unwrap_or_else(|| "x".into())
                    });
                    // Loki refuses a selector whose every matcher matches the empty value.
                    accepted |= match op {
                        "=" => !value.is_empty(),
                        "=~" => !regex::Regex::new(&format!("^(?:{value})$"))
                            .unwrap_or_else(|e| panic!("{at}: {value:?}: {e}"))
                            .is_match(""),
                        _ => false,
                    };
                }
                assert!(any, "{at}: empty selector in {text:?}");
                assert!(
                    accepted,
                    "{at}: Loki refuses {:?}: every matcher matches \"\"",
                    &sel[0]
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 6, "{checked} LogQL selectors");
}

#[test]
fn provisioning_names_the_sources_and_the_dashboards_folder() {
    let dir = root().join("dashboards/provisioning");
    let read = |p: &str| -> Value {
        let text = std::fs::read_to_string(dir.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
        serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{p}: {e}"))
    };
    let ds = read("datasources/vigie.yaml");
    assert_eq!(ds["apiVersion"], 1);
    let kinds: BTreeSet<&str> = ds["datasources"]
        .as_array()
        .into_iter()
        .flatten()
        .inspect(|s| {
            assert!(
                s["name"].is_string() && s["url"].as_str().is_some_and(|u| u.starts_with("http")),
                "{s}"
            );
        })
        .filter_map(|s| s["type"].as_str())
        .collect();
    // Every kind of source a dashboard variable asks for is provisioned.
    for (file, d) in dashboards() {
        for v in variables(&d)
            .into_iter()
            .filter(|v| v["type"] == "datasource")
        {
            let kind = v["query"].as_str().unwrap_or_default();
            assert!(
                kinds.contains(kind),
                "{file}: no {kind} data source provisioned"
            );
        }
    }
    let dash = read("dashboards/vigie.yaml");
    assert_eq!(dash["apiVersion"], 1);
    let provider = &dash["providers"][0];
    assert_eq!(provider["type"], "file");
    assert!(provider["options"]["path"].is_string(), "{provider}");
}

/// A `*.prom` file written as the README tells backup scripts to.
fn textfile(dir: &Path, name: &str, body: &str) {
    let tmp = dir.join(format!("{name}.tmp"));
    std::fs::write(&tmp, body).expect("write textfile");
    std::fs::rename(&tmp, dir.join(name)).expect("rename textfile");
}

fn json(port: u16, path: &str) -> Value {
    let r = get(port, path, &[]).expect("answers");
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{path}: {e}: {}", r.text()))
}

fn has_series(router: u16, name: &str) -> bool {
    let v = json(router, &format!("/api/v1/series?match[]={name}"));
    v["data"].as_array().is_some_and(|a| !a.is_empty())
}

fn storage_fixture(name: &str) -> PathBuf {
    root().join("agent/tests/fixtures").join(name)
}

#[test]
fn every_promql_metric_and_label_is_in_a_live_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("textfile")).expect("mkdir");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // A backup that failed its last run: an alert fires, a notification goes to the outbox.
    textfile(
        &data.join("textfile"),
        "backup.prom",
        &format!(
            "backup_last_run_timestamp_seconds{{backup=\"nas\"}} {now}\n\
             backup_last_success_timestamp_seconds{{backup=\"nas\"}} {}\n",
            now - 3600
        ),
    );
    // Log shipping to a Loki double, so the shipper's series exist.
    let loki = LokiDouble::start();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).expect("mkdir");
    std::fs::write(logs.join("app.log"), "ERROR first line\nINFO second line\n").expect("log");
    let logs_cfg = dir.path().join("logs.yaml");
    std::fs::write(
        &logs_cfg,
        format!(
            "positions: {{filename: {pos}}}\nclients:\n  - url: {url}\n    batchwait: 100ms\nscrape_configs:\n  - job_name: app\n    static_configs:\n      - labels: {{job: app, __path__: '{logs}/*.log'}}\n",
            pos = dir.path().join("positions.yaml").display(),
            url = loki.url(),
            logs = logs.display(),
        ),
    )
    .expect("logs config");
    let (agent, router) = (free_port(), free_port());
    let (mut up, _) = start_up(
        dir.path(),
        "up",
        &data,
        (agent, router),
        &[format!("--agent.config.file={}", logs_cfg.display())],
    );
    wait_http(&mut up, router, "/-/ready");

    // The storage collectors on fixtures: mdstat and cgroup v2 trees, stub smartctl, ceph and
    // systemctl, a backup directory for file_age.
    let rootfs = dir.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("run/systemd/system")).expect("mkdir");
    let systemctl = dir.path().join("systemctl");
    std::fs::write(
        &systemctl,
        "#!/bin/sh\ncase \"$*\" in\n*SystemState*) printf 'SystemState=running\\nVersion=252\\n' ;;\n\
         *) printf 'Id=backup.service\\nType=oneshot\\nLoadState=loaded\\nActiveState=failed\\n' ;;\nesac\n",
    )
    .expect("stub");
    let mut perms = std::fs::metadata(&systemctl).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&systemctl, perms).expect("chmod");
    let backups = dir.path().join("backups");
    std::fs::create_dir_all(&backups).expect("mkdir");
    std::fs::write(backups.join("music.tar"), "x").expect("backup file");
    let storage_port = free_port();
    let mut storage = Proc::start(
        "storage-agent",
        &bin("vigie-agent"),
        &[
            format!("--web.listen-address=127.0.0.1:{storage_port}"),
            "--collector.disable-defaults".into(),
            format!("--path.procfs={}", storage_fixture("edge/proc").display()),
            format!("--path.sysfs={}", storage_fixture("edge/sys").display()),
            format!("--path.rootfs={}", rootfs.display()),
            "--collector.mdadm".into(),
            "--collector.cgroup".into(),
            "--collector.smartctl".into(),
            format!(
                "--collector.smartctl.path={}",
                storage_fixture("storage/smartctl/smartctl").display()
            ),
            "--collector.ceph".into(),
            format!(
                "--collector.ceph.path={}",
                storage_fixture("storage/ceph/ceph").display()
            ),
            "--collector.systemd".into(),
            format!("--collector.systemd.path={}", systemctl.display()),
            "--collector.file_age".into(),
            format!("--collector.file_age.path={}/*", backups.display()),
        ],
        dir.path(),
    );
    wait_http(&mut storage, storage_port, "/-/healthy");

    // Wait for what only time produces: a firing alert, a delivered notification, pushed logs,
    // and the background collectors' first results.
    wait_for(
        "the router's store to fill",
        Duration::from_secs(60),
        || {
            [
                "ALERTS",
                "vigie_notification_latency_seconds_bucket",
                "vigie_logs_last_push_success_timestamp_seconds",
                "node_cpu_seconds_total",
            ]
            .iter()
            .all(|n| has_series(router, n))
            .then_some(())
        },
    );
    let storage_page = wait_for(
        "the background collectors' first runs",
        Duration::from_secs(60),
        || {
            let page = get(storage_port, "/metrics", &[]).ok()?.text();
            ["smartctl", "ceph", "systemd", "file_age"]
                .iter()
                .all(|c| {
                    page.contains(&format!(
                        "node_scrape_collector_cache_age_seconds{{collector=\"{c}\"}}"
                    ))
                })
                .then_some(page)
        },
    );

    // Metric name → label names, from both.
    let mut known: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let series = json(
        router,
        "/api/v1/series?match[]=%7B__name__%3D~%22.%2B%22%7D",
    );
    for s in series["data"].as_array().into_iter().flatten() {
        let Some(m) = s.as_object() else { continue };
        let name = m
            .get("__name__")
            .and_then(Value::as_str)
            .unwrap_or_default();
        known
            .entry(name.to_string())
            .or_default()
            .extend(m.keys().filter(|k| *k != "__name__").cloned());
    }
    for (name, labels, _, _) in
        vigie_exposition::parse::parse_flat(&storage_page, false).expect("storage page parses")
    {
        let e = known.entry(name).or_default();
        e.extend(labels.into_iter().map(|(k, _)| k));
        e.extend(["job".to_string(), "instance".to_string()]);
    }

    let mut missing = Vec::new();
    for q in promql_queries() {
        let text = substitute(&q.expr, |_| "x".into());
        let expr = parser::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", q.at));
        let mut found = Vec::new();
        selectors(&expr, &mut found);
        for vs in &found {
            let name = vs.name.clone().or_else(|| {
                vs.matchers
                    .matchers
                    .iter()
                    .find(|m| m.name == "__name__")
                    .map(|m| m.value.clone())
            });
            let Some(name) = name else {
                missing.push(format!("{}: a selector without a metric name", q.at));
                continue;
            };
            let Some(labels) = known.get(&name) else {
                missing.push(format!(
                    "{}: {name} is exported by neither the agent nor the router",
                    q.at
                ));
                continue;
            };
            for m in &vs.matchers.matchers {
                let positive = matches!(m.op, MatchOp::Equal | MatchOp::Re(_));
                if positive && m.name != "__name__" && !labels.contains(&m.name) {
                    missing.push(format!(
                        "{}: {name} has no label {} (has {labels:?})",
                        q.at, m.name
                    ));
                }
            }
            if let Some(l) = &q.lists
                && !labels.contains(l)
            {
                missing.push(format!("{}: {name} has no label {l} to list", q.at));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "{} problems:\n{}",
        missing.len(),
        missing.join("\n")
    );
    loki.assert_clean();
}
