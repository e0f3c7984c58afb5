//! `promtool check metrics` (Debian `prometheus`, 2.42) on the agent's live output and on every
//! golden file: nothing may be reported except node_exporter's own legacy names, the same rule
//! node_exporter's `make checkmetrics` applies.

use std::io::Write;
use std::process::{Command, Stdio};

use vigie_e2e::{Proc, bin, collector_flags, free_port, get, peer, root, wait_http};

const LEGACY: &[&str] = &[
    "node_entropy_",
    "node_memory_",
    "node_netstat_",
    "node_wifi_station_",
];

/// Findings promtool reports, minus the legacy ones.
fn lint(promtool: &std::path::Path, text: &str) -> Vec<String> {
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool output");
    let code = out.status.code().unwrap_or(-1);
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        code == 0 || code == 3,
        "promtool could not parse the exposition (exit {code}):\n{report}"
    );
    report
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| !LEGACY.iter().any(|p| l.starts_with(p)))
        .map(str::to_string)
        .collect()
}

#[test]
fn live_output_passes_promtool() {
    let Some(promtool) = peer(&["promtool"], "prometheus") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut args = collector_flags();
    args.push(format!("--web.listen-address=127.0.0.1:{port}"));
    let mut agent = Proc::start("vigie-agent", &bin("vigie-agent"), &args, dir.path());
    wait_http(&mut agent, port, "/-/healthy");
    let text = get(port, "/metrics", &[]).unwrap();
    assert_eq!(
        text.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let findings = lint(&promtool, &text.text());
    assert!(
        findings.is_empty(),
        "promtool findings on text output:\n{}",
        findings.join("\n")
    );
    assert!(
        text.text()
            .contains("node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"}")
    );
}

#[test]
fn golden_files_pass_promtool() {
    let Some(promtool) = peer(&["promtool"], "prometheus") else {
        return;
    };
    let mut checked = 0;
    for tree in ["vm", "edge"] {
        let dir = root().join("agent/tests/golden").join(tree);
        for entry in std::fs::read_dir(&dir).expect("golden dir") {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let findings = lint(&promtool, &text);
            assert!(
                findings.is_empty(),
                "{}: {}",
                path.display(),
                findings.join("\n")
            );
            checked += 1;
        }
    }
    assert!(checked >= 30, "only {checked} golden files checked");
}
