//! On-call end to end with the release binary: an alert reaching an escalating receiver pages
//! the person on call, then the next step's person; the signed link in the page shows a
//! confirmation form, a forged link is refused, and acknowledging stops the escalation. The
//! API, the UI and `vigie-router oncall who` agree on who is on call.

use std::time::Duration;

use serde_json::Value;
use vigie_e2e::{WebhookDouble, bin, free_port, get, post, start_router_on, wait_for};

#[test]
fn escalation_pages_then_stops_on_acknowledgement() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hook = WebhookDouble::start();
    let config = dir.path().join("router.yml");
    std::fs::write(
        &config,
        format!(
            "route:
  receiver: pager
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
- name: pager
  escalation: db
- name: page-hook
  webhook_configs: [{{url: 'http://127.0.0.1:{}/page'}}]
oncall:
  ack_secret: 0123456789abcdef0123
  people:
    alice: {{phone: '+33600000001'}}
    bob: {{phone: '+33600000002'}}
  schedules:
  - name: primary
    time_zone: Europe/Paris
    layers: [{{name: weekly, members: [alice], start: 2020-01-06T09:00, rotation: 1w}}]
  escalation_policies:
  - name: db
    repeat: 5
    steps:
    - {{notify: [{{schedule: primary}}], via: page-hook, wait: 2s}}
    - {{notify: [{{person: bob}}], via: page-hook, wait: 2s}}
",
            hook.port
        ),
    )
    .expect("config");
    let port = free_port();
    let _router = start_router_on(
        "router",
        dir.path(),
        &config,
        &dir.path().join("data"),
        port,
    );

    let alert = br#"[{"labels":{"alertname":"DiskFull","instance":"db01","severity":"critical"},"annotations":{"summary":"Disk almost full"}}]"#;
    let r = post(
        port,
        "/api/v2/alerts",
        &[("Content-Type", "application/json")],
        alert,
    )
    .expect("post");
    assert_eq!(r.status, 200, "{}", r.text());

    // Step 1 pages alice (on call in `primary`), step 2 pages bob.
    let pages = wait_for("two pages", Duration::from_secs(20), || {
        let p = hook.received();
        (p.len() >= 2).then_some(p)
    });
    let who: Vec<&str> = pages
        .iter()
        .map(|p| p.body["vigieContact"]["name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(&who[..2], ["alice", "bob"]);
    assert!(pages[1].at.duration_since(pages[0].at) >= Duration::from_millis(1900));
    assert_eq!(pages[0].body["status"], "firing");
    assert_eq!(pages[0].body["vigieContact"]["phone"], "+33600000001");
    let link = pages[0].body["vigieAckURL"]
        .as_str()
        .expect("ack link")
        .to_string();
    let path = &link[link.find("/oncall/ack?t=").expect("ack path")..];
    let token = path.trim_start_matches("/oncall/ack?t=").to_string();

    // The link's GET only shows a form; a forged or altered token is refused.
    let form = get(port, path, &[]).expect("ack form");
    assert_eq!(form.status, 200);
    assert!(
        form.text().contains("DiskFull") && form.text().contains("<form"),
        "{}",
        form.text()
    );
    let mut forged = token.clone().into_bytes();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).expect("ascii");
    assert_eq!(
        get(port, &format!("/oncall/ack?t={forged}"), &[])
            .expect("get")
            .status,
        403
    );
    let r = post(
        port,
        "/oncall/ack",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        format!("t={forged}&by=mallory").as_bytes(),
    )
    .expect("post");
    assert_eq!(r.status, 403);

    // Acknowledge with the genuine link.
    let r = post(
        port,
        "/oncall/ack",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        format!("t={token}&by=bob").as_bytes(),
    )
    .expect("post");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("Acknowledged"));
    let esc: Value = serde_json::from_slice(
        &get(port, "/api/v1/oncall/escalations", &[])
            .expect("get")
            .body,
    )
    .expect("json");
    let e = &esc["data"][0];
    assert_eq!(e["status"]["state"], "acknowledged");
    assert_eq!(e["status"]["by"], "bob");
    assert!(
        e["timeline"].as_array().is_some_and(|t| t.len() >= 3),
        "{e}"
    );
    let paged = hook.received().len();
    // Without the acknowledgement step 1 would page again 2 s after step 2.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        hook.received().len(),
        paged,
        "no page after the acknowledgement"
    );
    // A second acknowledgement is a conflict.
    let id = e["id"].as_str().expect("id");
    let r = post(
        port,
        &format!("/api/v1/oncall/escalations/{id}/ack"),
        &[],
        br#"{"by":"alice"}"#,
    )
    .expect("post");
    assert_eq!(r.status, 409);

    // The attempt log has each page.
    let log: Value =
        serde_json::from_slice(&get(port, "/api/v1/notifications", &[]).expect("get").body)
            .expect("json");
    let entries = log["data"].as_array().expect("list");
    assert!(entries.len() >= 2, "{log}");
    assert!(
        entries.iter().all(|e| e["receiver"] == "page-hook"
            && e["outcome"] == "sent"
            && e["tries"][0] == "sent"),
        "{log}"
    );

    // Who is on call: API, UI and CLI.
    let w: Value = serde_json::from_slice(
        &get(port, "/api/v1/oncall/who?schedule=primary", &[])
            .expect("get")
            .body,
    )
    .expect("json");
    assert_eq!(w["data"][0]["oncall"], "alice");
    let ui = get(port, "/ui/oncall", &[]).expect("ui");
    assert!(
        ui.text().contains("alice") && ui.text().contains("acknowledged by bob"),
        "{}",
        ui.text()
    );
    let out = std::process::Command::new(bin("vigie-router"))
        .args(["oncall", "who", "primary", "--at", "2026-11-24T12:00:00Z"])
        .arg(format!("--config.file={}", config.display()))
        .output()
        .expect("oncall who");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.starts_with("primary: alice (weekly)"), "{text}");
}
