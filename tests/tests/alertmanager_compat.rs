//! The router side by side with a real Alertmanager 0.25: the same configuration, the same
//! scripted alert timeline posted to both, each delivering to its own checking webhook double.
//! The notifications (receiver, group key, alerts and their status) must be the same, and
//! arrive within a stated tolerance of each other. Also: `amtool` against the router, and the
//! API's view of inhibited and silenced alerts compared with Alertmanager's.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};
use vigie_e2e::*;

/// How far apart the two systems may deliver the same notification.
const TOLERANCE: Duration = Duration::from_millis(700);

fn config(hook_port: u16, system: &str) -> String {
    let hook = |name: &str, resolved: bool| {
        format!(
            "  - name: {name}\n    webhook_configs:\n      - url: http://127.0.0.1:{hook_port}/{system}/{name}\n        send_resolved: {resolved}\n"
        )
    };
    format!(
        r#"route:
  receiver: default
  group_by: [alertname]
  group_wait: 1s
  group_interval: 4s
  repeat_interval: 10s
  routes:
    - matchers: ['team="db"']
      receiver: db
      group_by: [alertname, cluster]
      continue: true
    - matchers: ['team="db"', 'severity="critical"']
      receiver: pager
      group_by: ['...']
    - match: {{team: web}}
      receiver: web
      # Empty: inherits [alertname] in Alertmanager 0.25.
      group_by: []
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [cluster]
receivers:
{}{}{}{}"#,
        hook("default", true),
        hook("db", true),
        hook("pager", false),
        hook("web", true)
    )
}

struct System {
    name: &'static str,
    port: u16,
    _proc: Proc,
}

fn start_am(am: &Path, dir: &Path, hook_port: u16) -> System {
    let cfg = dir.join("am.yml");
    std::fs::write(&cfg, config(hook_port, "am")).expect("config");
    let (p, port) = vigie_e2e::start_alertmanager(am, dir, &cfg, &dir.join("am-data"));
    System {
        name: "am",
        port,
        _proc: p,
    }
}

fn start_router(dir: &Path, hook_port: u16) -> System {
    let cfg = dir.join("router.yml");
    std::fs::write(&cfg, config(hook_port, "vigie")).expect("config");
    let port = free_port();
    let p = start_router_on("router", dir, &cfg, &dir.join("router-data"), port);
    System {
        name: "vigie",
        port,
        _proc: p,
    }
}

fn alert(labels: &[(&str, &str)], starts: SystemTime, ends: SystemTime) -> Value {
    let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
    json!({
        "labels": labels,
        "annotations": {"summary": format!("{} is broken", labels.get("alertname").unwrap_or(&""))},
        "startsAt": rfc3339(starts),
        "endsAt": rfc3339(ends),
        "generatorURL": "http://prometheus:9090/graph?g0.expr=up",
    })
}

fn post_all(systems: &[&System], path: &str, body: &Value) -> Vec<Value> {
    systems
        .iter()
        .map(|s| {
            let r = post(
                s.port,
                path,
                &[("Content-Type", "application/json")],
                body.to_string().as_bytes(),
            )
            .expect("post");
            assert_eq!(r.status, 200, "{} {path}: {}", s.name, r.text());
            serde_json::from_slice(&r.body).unwrap_or(Value::Null)
        })
        .collect()
}

/// (receiver, groupKey, status, [(fingerprint, status)]): what must be equal.
type Key = (String, String, String, Vec<(String, String)>);

fn key_of(r: &Received) -> Key {
    let receiver = r.path.rsplit('/').next().unwrap_or_default().to_string();
    let mut alerts: Vec<(String, String)> = r.body["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            (
                a["fingerprint"].as_str().unwrap_or_default().to_string(),
                a["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    alerts.sort();
    (
        receiver,
        r.body["groupKey"].as_str().unwrap_or_default().to_string(),
        r.body["status"].as_str().unwrap_or_default().to_string(),
        alerts,
    )
}

#[test]
fn same_notifications_as_alertmanager() {
    let Some(am) = peer(
        &["prometheus-alertmanager", "alertmanager"],
        "prometheus-alertmanager",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let hooks = WebhookDouble::start();
    let router = start_router(dir.path(), hooks.port);
    let amgr = start_am(&am, dir.path(), hooks.port);
    let both = [&amgr, &router];

    let start = Instant::now();
    let at = |s: f64| {
        let when = start + Duration::from_secs_f64(s);
        if let Some(d) = when.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
    };
    let now = SystemTime::now;
    let later = || SystemTime::now() + Duration::from_secs(3600);
    let d1 = [
        ("alertname", "DiskFull"),
        ("team", "db"),
        ("cluster", "c1"),
        ("severity", "critical"),
        ("instance", "d1"),
    ];
    let a1 = [
        ("alertname", "HighLatency"),
        ("team", "web"),
        ("instance", "w1"),
    ];

    // t=0: a web group of two, a critical db alert (db + pager via continue), a warning it
    // inhibits, an alert for the default route and a steady one that will repeat.
    post_all(
        &both,
        "/api/v2/alerts",
        &json!([
            alert(&a1, now(), later()),
            alert(
                &[
                    ("alertname", "HighLatency"),
                    ("team", "web"),
                    ("instance", "w2")
                ],
                now(),
                later()
            ),
            alert(&d1, now(), later()),
            alert(
                &[
                    ("alertname", "Replication"),
                    ("team", "db"),
                    ("cluster", "c1"),
                    ("severity", "warning")
                ],
                now(),
                later()
            ),
            alert(
                &[("alertname", "Other"), ("instance", "o1")],
                now(),
                later()
            ),
            alert(&[("alertname", "Steady")], now(), later()),
        ]),
    );

    // t=2.5: a silence, a silenced alert, a third web alert, and an old alert (immediate flush).
    at(2.5);
    let silence = json!({
        "matchers": [{"name": "instance", "value": "o2", "isRegex": false, "isEqual": true}],
        "startsAt": rfc3339(now()),
        "endsAt": rfc3339(later()),
        "createdBy": "e2e",
        "comment": "maintenance of o2",
    });
    let ids: Vec<String> = post_all(&both, "/api/v2/silences", &silence)
        .iter()
        .map(|v| v["silenceID"].as_str().expect("silenceID").to_string())
        .collect();
    post_all(
        &both,
        "/api/v2/alerts",
        &json!([
            alert(
                &[("alertname", "Other"), ("instance", "o2")],
                now(),
                later()
            ),
            alert(
                &[
                    ("alertname", "HighLatency"),
                    ("team", "web"),
                    ("instance", "w3")
                ],
                now(),
                later()
            ),
            alert(
                &[("alertname", "Stale")],
                now() - Duration::from_secs(3600),
                later()
            ),
        ]),
    );

    // t=3.5: both APIs agree on who is suppressed and by what.
    at(3.5);
    let status = |s: &System| -> BTreeMap<String, (String, usize, Vec<String>)> {
        let r = get(s.port, "/api/v2/alerts", &[]).expect("get alerts");
        let v: Value = serde_json::from_slice(&r.body).expect("json");
        v.as_array()
            .expect("array")
            .iter()
            .map(|a| {
                (
                    a["fingerprint"].as_str().unwrap_or_default().to_string(),
                    (
                        a["status"]["state"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                        a["status"]["silencedBy"].as_array().map_or(0, Vec::len),
                        a["status"]["inhibitedBy"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|x| x.as_str().unwrap_or_default().to_string())
                            .collect(),
                    ),
                )
            })
            .collect()
    };
    let (am_view, our_view) = (status(&amgr), status(&router));
    assert_eq!(our_view, am_view, "GET /api/v2/alerts status differs");
    assert_eq!(
        our_view.values().filter(|v| v.0 == "suppressed").count(),
        2,
        "one inhibited and one silenced alert: {our_view:?}"
    );

    // t=6.5: the critical alert and one web alert resolve.
    at(6.5);
    post_all(
        &both,
        "/api/v2/alerts",
        &json!([
            alert(&d1, now() - Duration::from_secs(7), now()),
            alert(&a1, now() - Duration::from_secs(7), now())
        ]),
    );

    // t=10.5: the silence is expired.
    at(10.5);
    for (s, id) in both.iter().zip(&ids) {
        let r = send(s.port, "DELETE", &format!("/api/v2/silence/{id}"), &[], b"").expect("delete");
        assert_eq!(r.status, 200, "{}: {}", s.name, r.text());
    }
    at(15.5);

    let got = hooks.received();
    let split = |system: &str| -> Vec<(Key, Instant)> {
        got.iter()
            .filter(|r| r.path.starts_with(&format!("/{system}/")))
            .map(|r| (key_of(r), r.at))
            .collect()
    };
    let (theirs, ours) = (split("am"), split("vigie"));
    let sorted = |v: &[(Key, Instant)]| {
        let mut k: Vec<Key> = v.iter().map(|(k, _)| k.clone()).collect();
        k.sort();
        k
    };
    assert_eq!(
        sorted(&ours),
        sorted(&theirs),
        "notifications differ from Alertmanager's"
    );
    // Our own reading of the timeline, so the comparison cannot pass on two empty sets.
    let count = |recv: &str| ours.iter().filter(|(k, _)| k.0 == recv).count();
    assert_eq!(
        count("web"),
        3,
        "web: t=1, new alert at t=5, resolution at t=9"
    );
    assert_eq!(count("pager"), 1, "pager never sends resolved");
    assert_eq!(
        count("db"),
        3,
        "db: DiskFull, its resolution, Replication once uninhibited"
    );
    assert_eq!(
        count("default"),
        6,
        "default: Other, Steady, Stale (at once), Steady's and Stale's repeats, Other with o2 once unsilenced"
    );
    // Timing: the n-th notification of a key arrives within TOLERANCE on both sides.
    let mut theirs_by_key: BTreeMap<Key, Vec<Instant>> = BTreeMap::new();
    for (k, t) in &theirs {
        theirs_by_key.entry(k.clone()).or_default().push(*t);
    }
    let mut seen: BTreeMap<Key, usize> = BTreeMap::new();
    for (k, t) in &ours {
        let n = seen.entry(k.clone()).or_default();
        let their = theirs_by_key[k][*n];
        *n += 1;
        let diff = if *t > their { *t - their } else { their - *t };
        assert!(
            diff <= TOLERANCE,
            "{k:?}: {diff:?} apart (ours at {:?}, Alertmanager's at {:?})",
            *t - start,
            their - start
        );
    }
}

fn amtool(port: u16, args: &[&str]) -> (bool, String) {
    let Some(bin) = peer(&["amtool"], "prometheus-alertmanager") else {
        return (true, String::new());
    };
    let out = Command::new(bin)
        .arg(format!("--alertmanager.url=http://127.0.0.1:{port}"))
        .args(args)
        .output()
        .expect("run amtool");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn amtool_works_against_the_router() {
    if peer(&["amtool"], "prometheus-alertmanager").is_none() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let hooks = WebhookDouble::start();
    let router = start_router(dir.path(), hooks.port);
    let port = router.port;

    let (ok, out) = amtool(
        port,
        &[
            "alert",
            "add",
            "alertname=AmtoolTest",
            "instance=x1",
            "severity=warning",
            "--annotation=summary=from amtool",
        ],
    );
    assert!(ok, "alert add: {out}");
    let (ok, out) = amtool(port, &["alert", "query", "alertname=AmtoolTest"]);
    assert!(
        ok && out.contains("AmtoolTest") && out.contains("from amtool"),
        "alert query: {out}"
    );

    let (ok, id) = amtool(
        port,
        &[
            "silence",
            "add",
            "alertname=AmtoolTest",
            "--comment=testing",
            "--duration=1h",
            "-a",
            "e2e",
        ],
    );
    let id = id
        .lines()
        .find(|l| l.len() == 36)
        .unwrap_or_default()
        .to_string();
    assert!(ok && !id.is_empty(), "silence add: {id}");
    let (ok, out) = amtool(port, &["silence", "query"]);
    assert!(
        ok && out.contains(&id) && out.contains("testing"),
        "silence query: {out}"
    );
    let (ok, out) = amtool(port, &["alert", "query", "--silenced"]);
    assert!(
        ok && out.contains("AmtoolTest"),
        "silenced alert listed: {out}"
    );
    let (ok, out) = amtool(port, &["-o", "json", "silence", "query"]);
    assert!(ok, "silence query json: {out}");
    let export = dir.path().join("silences.json");
    std::fs::write(
        &export,
        out.lines().find(|l| l.starts_with('[')).unwrap_or("[]"),
    )
    .expect("write");
    let (ok, out) = amtool(port, &["silence", "expire", &id]);
    assert!(ok, "silence expire: {out}");
    let (ok, out) = amtool(port, &["silence", "query", "-q"]);
    assert!(
        ok && !out.contains(&id),
        "expired silence not active: {out}"
    );
    let (ok, out) = amtool(port, &["silence", "query", "--expired"]);
    assert!(ok && out.contains(&id), "listed as expired: {out}");
    let (ok, out) = amtool(port, &["silence", "import", &export.display().to_string()]);
    assert!(ok, "silence import: {out}");
    let (ok, out) = amtool(port, &["silence", "query", "-q"]);
    assert!(
        ok && out.lines().filter(|l| l.len() == 36).count() == 1,
        "imported silence active: {out}"
    );
    let (ok, out) = amtool(port, &["config", "show"]);
    assert!(ok && out.contains("webhook_configs"), "config show: {out}");
}

#[test]
fn invalid_alerts_are_named_by_index_and_valid_ones_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hooks = WebhookDouble::start();
    let router = start_router(dir.path(), hooks.port);
    let body = json!([
        {"labels": {"alertname": "Good"}},
        {"labels": {}},
        {"labels": {"bad-name": "x"}},
        {"labels": {"alertname": "Backwards"}, "startsAt": "2026-01-02T00:00:00Z", "endsAt": "2026-01-01T00:00:00Z"},
    ]);
    let r = post(
        router.port,
        "/api/v2/alerts",
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    )
    .expect("post");
    assert_eq!(r.status, 400);
    let msg = r.text();
    for want in [
        "alert 1: at least one label pair required",
        "alert 2: invalid label set",
        "alert 3: start time must be before end time",
    ] {
        assert!(msg.contains(want), "{want:?} missing from {msg}");
    }
    assert!(!msg.contains("alert 0"), "{msg}");
    let listed = get(router.port, "/api/v2/alerts", &[]).expect("get");
    assert!(
        listed.text().contains("\"Good\""),
        "the valid alert is kept: {}",
        listed.text()
    );
    let r = post(router.port, "/api/v2/alerts", &[], b"{\"labels\":{}}").expect("post");
    assert_eq!(r.status, 400, "{}", r.text());
}
