//! `vigie up` as a newcomer runs it (README's run command): from the repository root, on a fresh
//! data directory, with the shipped `rules/`. A backup script's textfile metric fires a shipped
//! rule, the notification reaches the outbox (file and console), then its resolution; Ctrl-C stops
//! both parts cleanly and a restart on the same directory re-sends nothing.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use vigie_e2e::{Proc, check_webhook_body, free_port, get, root, start_up, wait_for, wait_http};

/// Writes a `*.prom` file the way the README tells backup scripts to: a temporary file, then a
/// rename, so the agent never serves half a file.
fn report_backup(textfile: &Path, backup: &str, last_run: u64, last_success: u64) {
    let tmp = textfile.join(format!("{backup}.prom.tmp"));
    std::fs::write(
        &tmp,
        format!(
            "# HELP backup_last_run_timestamp_seconds Unix time the last run ended.\n\
             # TYPE backup_last_run_timestamp_seconds gauge\n\
             backup_last_run_timestamp_seconds{{backup=\"{backup}\"}} {last_run}\n\
             # HELP backup_last_success_timestamp_seconds Unix time of the last successful run.\n\
             # TYPE backup_last_success_timestamp_seconds gauge\n\
             backup_last_success_timestamp_seconds{{backup=\"{backup}\"}} {last_success}\n"
        ),
    )
    .expect("write textfile");
    std::fs::rename(&tmp, textfile.join(format!("{backup}.prom"))).expect("rename textfile");
}

/// The outbox lines about failed backup runs, in order.
fn backup_lines(outbox: &Path) -> Vec<Value> {
    std::fs::read_to_string(outbox)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .filter(|v| v["webhook"]["groupLabels"]["alertname"] == "BackupLastRunFailed")
        .collect()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn stop(p: &mut Proc) {
    let pid = p.child.id().to_string();
    let sent = Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("run kill");
    assert!(sent.success());
    let status = wait_for("vigie up to exit", Duration::from_secs(20), || {
        p.child.try_wait().ok().flatten()
    });
    assert!(
        status.success(),
        "Ctrl-C must stop cleanly, got {status}:\n{}",
        p.log()
    );
}

#[test]
fn up_serves_evaluates_and_notifies_through_the_outbox() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let (agent, router) = (free_port(), free_port());
    let (mut up, stdout) = start_up(dir.path(), "up", &data, (agent, router), &[]);
    wait_http(&mut up, agent, "/metrics");
    wait_http(&mut up, router, "/-/ready");

    // The agent serves node_exporter's names; the banner names every URL.
    let metrics = get(agent, "/metrics", &[]).expect("agent answers").text();
    assert!(
        metrics.contains("node_cpu_seconds_total{"),
        "{metrics:.2000}"
    );
    let banner = wait_for("the banner", Duration::from_secs(10), || {
        let s = std::fs::read_to_string(&stdout).ok()?;
        s.contains("Ctrl-C").then_some(s)
    });
    for url in [
        format!("http://127.0.0.1:{agent}/metrics"),
        format!("http://127.0.0.1:{router}/ui/"),
        format!("http://127.0.0.1:{router}/api/v2/alerts"),
    ] {
        assert!(banner.contains(&url), "banner lacks {url}:\n{banner}");
    }

    // Every shipped rule file is loaded and its rules evaluate without error on the embedded
    // store (the router scrapes the agent under job="node", as the rules expect).
    let shipped = std::fs::read_dir(root().join("rules"))
        .expect("rules/")
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "yml"))
        .count();
    let groups = wait_for("every rule evaluated", Duration::from_secs(30), || {
        let r = get(router, "/api/v1/rules", &[]).ok()?;
        let v: Value = serde_json::from_slice(&r.body).ok()?;
        let groups = v["data"]["groups"].as_array()?.clone();
        let files: std::collections::BTreeSet<String> = groups
            .iter()
            .filter_map(|g| g["file"].as_str().map(String::from))
            .collect();
        let evaluated = groups.iter().all(|g| {
            g["rules"].as_array().is_some_and(|rs| {
                rs.iter()
                    .all(|r| r["lastEvaluation"] != "0001-01-01T00:00:00Z")
            })
        });
        (files.len() == shipped && evaluated).then_some(groups)
    });
    for g in &groups {
        for r in g["rules"].as_array().into_iter().flatten() {
            assert_eq!(
                r["health"], "ok",
                "rule {} in {}: {r}",
                r["name"], g["file"]
            );
        }
    }

    // A backup run fails: its run is newer than its last success.
    let textfile = data.join("textfile");
    let outbox = data.join("outbox.jsonl");
    let t = now();
    report_backup(&textfile, "e2e", t, t - 3600);
    let fired = wait_for(
        "BackupLastRunFailed in the outbox",
        Duration::from_secs(60),
        || {
            backup_lines(&outbox)
                .into_iter()
                .find(|v| v["status"] == "firing")
        },
    );
    let problems = check_webhook_body(&fired["webhook"]);
    assert!(problems.is_empty(), "{problems:?}: {fired}");
    let alert = &fired["webhook"]["alerts"][0];
    assert_eq!(alert["labels"]["backup"], "e2e", "{fired}");
    assert_eq!(alert["labels"]["job"], "node", "{fired}");
    assert_eq!(alert["labels"]["severity"], "warning", "{fired}");
    assert_eq!(fired["receiver"], "outbox");
    let title = fired["title"].as_str().unwrap_or_default();
    assert!(
        title.starts_with("[FIRING:1] BackupLastRunFailed"),
        "{fired}"
    );
    let text = fired["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("The last run of backup e2e on 127.0.0.1:"),
        "{fired}"
    );
    assert!(
        alert["annotations"]["description"]
            .as_str()
            .is_some_and(|d| d.contains("1h 0m 0s after its last success")),
        "{fired}"
    );
    let console = std::fs::read_to_string(&stdout).unwrap_or_default();
    assert!(
        console.contains("── notification to outbox ──") && console.contains(title),
        "the console shows the notification:\n{console}"
    );

    // The next run succeeds: the resolution follows.
    let t = now();
    report_backup(&textfile, "e2e", t, t);
    let resolved = wait_for(
        "the resolution in the outbox",
        Duration::from_secs(60),
        || {
            backup_lines(&outbox)
                .into_iter()
                .find(|v| v["status"] == "resolved")
        },
    );
    assert!(
        check_webhook_body(&resolved["webhook"]).is_empty(),
        "{resolved}"
    );
    assert!(
        resolved["title"]
            .as_str()
            .is_some_and(|t| t.starts_with("[RESOLVED] BackupLastRunFailed")),
        "{resolved}"
    );
    assert_eq!(
        resolved["webhook"]["alerts"][0]["fingerprint"], alert["fingerprint"],
        "the same alert resolves"
    );

    stop(&mut up);
    let sent = backup_lines(&outbox).len();
    assert_eq!(sent, 2, "one firing, one resolved");

    // A restart on the same data directory resumes: nothing already sent is sent again. The
    // next notification of the same group (another backup failing) is the barrier: it carries
    // only the new alert, and no line about `e2e` came before it.
    let (mut again, _) = start_up(dir.path(), "up-again", &data, (agent, router), &[]);
    wait_http(&mut again, router, "/-/ready");
    let t = now();
    report_backup(&textfile, "e2e-nas", t, t - 7200);
    let next = wait_for("the next notification", Duration::from_secs(60), || {
        let lines = backup_lines(&outbox);
        (lines.len() > sent).then_some(lines)
    });
    assert_eq!(next.len(), sent + 1, "{next:?}");
    let alerts = next[sent]["webhook"]["alerts"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(alerts.len(), 1, "{}", next[sent]);
    assert_eq!(alerts[0]["labels"]["backup"], "e2e-nas", "{}", next[sent]);
    stop(&mut again);
}
