//! The router's web UI in headless Chromium (Debian `chromium`), without JavaScript: alerts by
//! group with a matcher filter, a silence previewed, created and expired, the route tester and
//! status. Screenshots of every page are kept in `target/ui-screenshots/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;
use vigie_e2e::*;

struct Browser {
    program: PathBuf,
    profile: tempfile::TempDir,
    shots: PathBuf,
}

impl Browser {
    fn args(&self) -> Vec<String> {
        vec![
            "--headless".into(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--no-first-run".into(),
            format!("--user-data-dir={}", self.profile.path().display()),
        ]
    }

    fn run(&self, extra: &[String], url: &str) -> std::process::Output {
        let out = Command::new(&self.program)
            .args(self.args())
            .args(extra)
            .arg(url)
            .output()
            .expect("run chromium");
        assert!(
            out.status.success(),
            "chromium: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// The DOM as Chromium rendered it.
    fn dom(&self, url: &str) -> String {
        let out = self.run(&["--dump-dom".into()], url);
        let dom = String::from_utf8_lossy(&out.stdout).into_owned();
        // Chromium's --dump-dom needs scripts on, so the page itself must carry none.
        assert!(!dom.contains("<script"), "{url} uses JavaScript");
        dom
    }

    fn screenshot(&self, url: &str, name: &str) {
        let path = self.shots.join(format!("{name}.png"));
        self.run(
            &[
                format!("--screenshot={}", path.display()),
                "--window-size=1280,900".into(),
            ],
            url,
        );
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        assert!(size > 1000, "screenshot {} is empty", path.display());
    }
}

fn start_router(dir: &Path, hook_port: u16) -> (Proc, u16) {
    std::fs::write(
        dir.join("router.yml"),
        format!(
            "route:\n  receiver: default\n  group_by: [alertname]\n  routes:\n    - matchers: [team=db]\n      receiver: db\ninhibit_rules:\n  - source_matchers: [severity=critical]\n    target_matchers: [severity=warning]\n    equal: [team]\nreceivers:\n  - name: default\n    webhook_configs: [{{url: 'http://127.0.0.1:{hook_port}/'}}]\n  - name: db\n    webhook_configs: [{{url: 'http://127.0.0.1:{hook_port}/'}}]\n"
        ),
    )
    .expect("config");
    let port = free_port();
    let p = start_router_on(
        "router-ui",
        dir,
        &dir.join("router.yml"),
        &dir.join("data"),
        port,
    );
    (p, port)
}

#[test]
fn ui_works_without_javascript() {
    let Some(program) = peer(&["chromium", "chromium-browser"], "chromium") else {
        return;
    };
    let shots = root().join("target").join("ui-screenshots");
    std::fs::create_dir_all(&shots).expect("screenshot dir");
    let browser = Browser {
        program,
        profile: tempfile::tempdir().expect("profile"),
        shots,
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let hooks = WebhookDouble::start();
    let (_router, port) = start_router(dir.path(), hooks.port);
    let base = format!("http://127.0.0.1:{port}");
    let alerts = json!([
        {"labels": {"alertname": "DiskFull", "team": "db", "severity": "critical", "instance": "db-1"},
         "annotations": {"summary": "disk <full> on db-1"}},
        {"labels": {"alertname": "SlowQueries", "team": "db", "severity": "warning", "instance": "db-1"}},
        {"labels": {"alertname": "CertExpiry", "team": "web", "severity": "warning", "instance": "www"}},
    ]);
    let r = post(
        port,
        "/api/v2/alerts",
        &[("Content-Type", "application/json")],
        alerts.to_string().as_bytes(),
    )
    .expect("post");
    assert_eq!(r.status, 200);

    // Alerts by group; the summary is escaped; the inhibited one is marked.
    let dom = browser.dom(&format!("{base}/ui/alerts"));
    for want in [
        "DiskFull",
        "SlowQueries",
        "CertExpiry",
        "disk &lt;full&gt; on db-1",
        "suppressed",
        "receiver db",
    ] {
        assert!(
            dom.contains(want),
            "{want:?} not on the alerts page:\n{dom}"
        );
    }
    browser.screenshot(&format!("{base}/ui/alerts"), "alerts");
    let filtered = browser.dom(&format!("{base}/ui/alerts?filter=team%3D%22web%22"));
    assert!(
        filtered.contains("CertExpiry") && !filtered.contains("DiskFull"),
        "{filtered}"
    );
    assert!(filtered.contains("1 alerts"), "{filtered}");

    // A silence: the preview (the form's GET) lists what it would mute.
    let preview = format!(
        "{base}/ui/silences/new?matchers=team%3D%22web%22&duration=1h&createdBy=ops&comment=renewing&action=preview"
    );
    let dom = browser.dom(&preview);
    assert!(
        dom.contains("would mute 1 alerts") && dom.contains("CertExpiry"),
        "{dom}"
    );
    browser.screenshot(&preview, "silence-preview");
    // Create: what the form's POST sends.
    let r = post(
        port,
        "/ui/silences/new",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"matchers=team%3D%22web%22&duration=1h&createdBy=ops&comment=renewing&action=create",
    )
    .expect("create silence");
    assert!(
        r.status == 303 || r.status == 302 || r.status == 307,
        "{} {}",
        r.status,
        r.text()
    );
    let dom = browser.dom(&format!("{base}/ui/silences"));
    assert!(
        dom.contains("renewing") && dom.contains(">active<"),
        "{dom}"
    );
    browser.screenshot(&format!("{base}/ui/silences"), "silences");
    let silenced = browser.dom(&format!("{base}/ui/alerts?filter=alertname%3DCertExpiry"));
    assert!(silenced.contains("silenced by"), "{silenced}");
    // A bad form is refused with the reason and the form kept.
    let r = post(
        port,
        "/ui/silences/new",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"matchers=team%3D~%22.*%22&duration=1h&createdBy=ops&comment=x&action=create",
    )
    .expect("bad silence");
    assert_eq!(r.status, 400);
    assert!(
        r.text().contains("must not match the empty string"),
        "{}",
        r.text()
    );

    // Expire it through the form's POST.
    let id = {
        let r = get(port, "/api/v2/silences", &[]).expect("silences");
        let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
        v[0]["id"].as_str().expect("id").to_string()
    };
    let r = post(
        port,
        &format!("/ui/silences/{id}/expire"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"",
    )
    .expect("expire");
    assert!(
        r.status == 303 || r.status == 302 || r.status == 307,
        "{}",
        r.status
    );
    let dom = browser.dom(&format!("{base}/ui/silences"));
    assert!(dom.contains(">expired<"), "{dom}");

    // The route tester.
    let tester = format!("{base}/ui/routes?labels=team%3D%22db%22%2C+severity%3D%22critical%22");
    let dom = browser.dom(&tester);
    assert!(dom.contains("Receivers: <strong>db</strong>"), "{dom}");
    browser.screenshot(&tester, "routes");
    let dom = browser.dom(&format!("{base}/ui/status"));
    assert!(
        dom.contains("inhibit_rules") && dom.contains("2 active, 1 suppressed"),
        "{dom}"
    );
    browser.screenshot(&format!("{base}/ui/status"), "status");
}
