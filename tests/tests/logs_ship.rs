//! The log shipper end to end: the release `vigie-agent` with a Promtail-shaped config, tailing
//! real files (and a real journal directory) into the Loki double, through outages, 429
//! storms, SIGKILLs and every rotation pattern Promtail is known to lose lines in. Every test
//! asserts that each generated line arrived, in order per stream, and that the only repeats
//! were exact (labels, timestamp, line) duplicates — which Loki discards.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use vigie_e2e::loki::{LokiDouble, Mode};
use vigie_e2e::{Proc, bin, free_port, get, peer, wait_for, wait_http};

/// A line with its id first, about 100 bytes like an access log.
fn line(id: usize) -> String {
    format!(
        "{id:08} 10.1.{}.{} - - \"GET /img/p/{}.jpg HTTP/1.1\" 200 6358 0.179 \"Mozilla/5.0 (iPhone)\"\n",
        id % 250,
        id % 199,
        id % 9973
    )
}

fn append(path: &Path, ids: std::ops::Range<usize>) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open log");
    let mut buf = String::with_capacity(ids.len() * 100);
    for id in ids {
        buf.push_str(&line(id));
    }
    f.write_all(buf.as_bytes()).expect("write log");
}

struct Agent {
    proc: Option<Proc>,
    port: u16,
    dir: PathBuf,
    config: PathBuf,
    runs: usize,
}

impl Agent {
    fn start(dir: &Path, config: &str) -> Agent {
        let path = dir.join("agent.yaml");
        std::fs::write(&path, config).expect("config");
        let mut a = Agent {
            proc: None,
            port: free_port(),
            dir: dir.to_path_buf(),
            config: path,
            runs: 0,
        };
        a.restart();
        a
    }

    fn restart(&mut self) {
        self.runs += 1;
        let args = vec![
            format!("--config.file={}", self.config.display()),
            format!("--web.listen-address=127.0.0.1:{}", self.port),
            "--collector.disable-defaults".into(),
        ];
        let mut p = Proc::start(
            &format!("agent-{}", self.runs),
            &bin("vigie-agent"),
            &args,
            &self.dir,
        );
        wait_http(&mut p, self.port, "/metrics");
        self.proc = Some(p);
    }

    fn kill9(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.child.kill().expect("SIGKILL");
            p.child.wait().expect("reap");
        }
    }

    fn metric(&self, name: &str) -> f64 {
        let body = get(self.port, "/metrics", &[])
            .map(|r| r.text())
            .unwrap_or_default();
        body.lines()
            .filter(|l| l.starts_with(name) && !l.starts_with('#'))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    fn log(&self) -> String {
        self.proc.as_ref().map(Proc::log).unwrap_or_default()
    }
}

fn config(dir: &Path, loki: &LokiDouble, glob: &str, extra: &str) -> String {
    format!(
        "server:\n  http_listen_port: 0\npositions:\n  filename: {}/positions.yaml\n  sync_period: 1s\nclients:\n  - url: {}\n    batchwait: 200ms\n    backoff_config: {{min_period: 100ms, max_period: 1s}}\nscrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: [localhost]\n        labels:\n          job: app\n          __path__: {glob}\n{extra}",
        dir.display(),
        loki.url()
    )
}

/// Every id below `total` stored exactly once, ids increasing within each stream, timestamps
/// not going back; no deviation from the push API.
fn assert_complete(d: &LokiDouble, total: usize) {
    d.assert_clean();
    d.with(|s| {
        let mut seen = vec![false; total];
        for (stream, entries) in &s.streams {
            let mut last: Option<usize> = None;
            let mut last_ts = i64::MIN;
            for (ts, l) in entries {
                let id: usize = l
                    .get(..8)
                    .and_then(|x| x.parse().ok())
                    .unwrap_or_else(|| panic!("unexpected line {l:?}"));
                assert!(id < total, "unexpected id {id}");
                assert!(
                    !seen[id],
                    "line {id} stored twice: a repeat that is not an exact duplicate"
                );
                assert_eq!(format!("{l}\n"), line(id), "line {id} altered");
                seen[id] = true;
                if let Some(p) = last {
                    assert!(id > p, "stream {stream}: line {id} after {p}");
                }
                assert!(
                    *ts >= last_ts,
                    "stream {stream}: timestamps go back at line {id}"
                );
                last = Some(id);
                last_ts = *ts;
            }
        }
        let missing: Vec<usize> = seen
            .iter()
            .enumerate()
            .filter(|(_, s)| !**s)
            .map(|(i, _)| i)
            .collect();
        assert!(
            missing.is_empty(),
            "{} lines missing, first {:?}",
            missing.len(),
            &missing[..missing.len().min(10)]
        );
    });
}

fn wait_count(d: &LokiDouble, total: usize, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while d.count() < total {
        if Instant::now() >= deadline {
            // Say which lines are missing rather than only that some are.
            assert_complete(d, total);
            panic!("timed out after {timeout:?} waiting for {total} lines");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn ships_through_stages_to_two_clients_with_labels_and_tenants() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let loki = LokiDouble::start();
    let json = LokiDouble::start();
    std::fs::create_dir(d.join("logs")).expect("mkdir");
    let log = d.join("logs/app.log");
    append(&log, 0..5000);
    let cfg = format!(
        "positions:\n  filename: {d}/positions.yaml\nclients:\n  - url: {a}\n    tenant_id: ops\n    batchwait: 100ms\n    external_labels: {{host: node1}}\n  - url: {b}\n    encoding: json\n    batchwait: 100ms\nscrape_configs:\n  - job_name: app\n    static_configs:\n      - labels: {{job: app, __path__: '{d}/logs/*.log'}}\n    pipeline_stages:\n      - regex:\n          expression: '^(?P<id>\\d{{8}}) (?P<ip>\\S+) .* (?P<status>\\d{{3}}) \\d+ (?P<took>[\\d.]+)'\n      - labels: {{status: }}\n      - metrics:\n          requests_seconds:\n            type: Histogram\n            source: took\n            config: {{buckets: [0.1, 0.5]}}\n",
        d = d.display(),
        a = loki.url(),
        b = json.url()
    );
    let agent = Agent::start(d, &cfg);
    wait_count(&loki, 5000, Duration::from_secs(60));
    wait_count(&json, 5000, Duration::from_secs(60));
    assert_complete(&loki, 5000);
    assert_complete(&json, 5000);
    let want = format!(
        "{{filename=\"{}\", host=\"node1\", job=\"app\", status=\"200\"}}",
        log.display()
    );
    loki.with(|s| {
        assert_eq!(s.streams.keys().collect::<Vec<_>>(), [&want]);
        assert!(s.tenants.contains("ops"), "{:?}", s.tenants);
        assert!(s.encodings.contains("protobuf"));
    });
    json.with(|s| assert!(s.encodings.contains("json")));
    wait_for("sent counter", Duration::from_secs(10), || {
        (agent.metric("vigie_logs_sent_lines_total") >= 10_000.0).then_some(())
    });
    assert_eq!(
        agent.metric("promtail_custom_requests_seconds_count"),
        5000.0
    );
    // Positions are saved every sync_period (Promtail's 10 s default here).
    let positions = wait_for("the positions file", Duration::from_secs(20), || {
        std::fs::read_to_string(d.join("positions.yaml")).ok()
    });
    let v: serde_json::Value =
        serde_json::from_str(&positions).expect("positions are JSON (and YAML)");
    assert_eq!(v["version"], 1);
}

#[test]
fn loki_down_sixty_seconds_in_the_middle_of_a_million_lines() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let loki = LokiDouble::start();
    let log = d.join("app.log");
    append(&log, 0..1_000_000);
    let agent = Agent::start(d, &config(d, &loki, &log.display().to_string(), ""));
    wait_count(&loki, 200_000, Duration::from_secs(120));
    loki.stop();
    let stopped = loki.count();
    assert!(
        stopped < 1_000_000,
        "everything arrived before the outage; nothing tested"
    );
    std::thread::sleep(Duration::from_secs(60));
    // While Loki is away the lines wait in the spool, on disk.
    assert!(
        agent.metric("vigie_logs_spool_bytes") > 0.0,
        "nothing spooled during the outage"
    );
    assert_eq!(loki.count(), stopped);
    loki.restart();
    wait_count(&loki, 1_000_000, Duration::from_secs(180));
    assert_complete(&loki, 1_000_000);
    assert!(agent.metric("vigie_logs_push_retries_total") > 0.0);
    assert_eq!(agent.metric("vigie_logs_dropped_lines_total"), 0.0);
}

#[test]
fn a_429_storm_and_5xx_lose_nothing_and_honour_retry_after() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let loki = LokiDouble::start();
    let log = d.join("app.log");
    loki.set_mode(Mode::Fail(429, Some(1)));
    append(&log, 0..100_000);
    let agent = Agent::start(d, &config(d, &loki, &log.display().to_string(), ""));
    wait_for(
        "retries under the 429 storm",
        Duration::from_secs(30),
        || (agent.metric("vigie_logs_push_retries_total") >= 3.0).then_some(()),
    );
    let requests = loki.with(|s| s.requests);
    // Retry-After: 1 is honoured: no hammering (backoff alone would be 100 ms..1 s).
    assert!(
        requests <= 8,
        "{requests} requests in a few seconds of 429s"
    );
    loki.set_mode(Mode::Fail(503, None));
    append(&log, 100_000..150_000);
    std::thread::sleep(Duration::from_secs(2));
    loki.set_mode(Mode::Accept);
    wait_count(&loki, 150_000, Duration::from_secs(60));
    assert_complete(&loki, 150_000);
}

#[test]
fn sigkill_ten_times_while_shipping_a_million_lines() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let loki = LokiDouble::start();
    let log = d.join("app.log");
    append(&log, 0..1_000_000);
    let mut agent = Agent::start(d, &config(d, &loki, &log.display().to_string(), ""));
    for k in 0..10 {
        let target = (k + 1) * 80_000;
        wait_count(&loki, target, Duration::from_secs(120));
        agent.kill9();
        agent.restart();
    }
    wait_count(&loki, 1_000_000, Duration::from_secs(180));
    assert_complete(&loki, 1_000_000);
    let dups = loki.with(|s| s.duplicates);
    eprintln!("sigkill x10: {dups} exact duplicates resent (Loki discards them)");
}

/// A writer appending `total` lines at about `rate` lines/s, calling `rotate` every `every`
/// lines (with the writer's file handle, so it can keep writing the old file).
fn writer(
    log: PathBuf,
    total: usize,
    every: usize,
    rate: usize,
    rotate: impl Fn(&Path, &mut std::fs::File, usize) + Send + 'static,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("open");
        let start = Instant::now();
        let batch = 500;
        let mut id = 0;
        while id < total {
            let mut buf = String::new();
            for i in id..(id + batch).min(total) {
                buf.push_str(&line(i));
            }
            f.write_all(buf.as_bytes()).expect("write");
            id = (id + batch).min(total);
            if id % every == 0 && id < total {
                rotate(&log, &mut f, id);
            }
            let due = start + Duration::from_secs_f64(id as f64 / rate as f64);
            if let Some(w) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(w);
            }
        }
    })
}

#[test]
fn rotation_by_rename_every_ten_thousand_lines() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path().to_path_buf();
    let loki = LokiDouble::start();
    let log = d.join("app.log");
    std::fs::write(&log, "").expect("create");
    let _agent = Agent::start(&d, &config(&d, &loki, &log.display().to_string(), ""));
    let w = writer(log.clone(), 200_000, 10_000, 50_000, |log, f, id| {
        let rotated = log.with_extension(format!("log.{id}"));
        std::fs::rename(log, rotated).expect("rename");
        *f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("reopen");
    });
    w.join().expect("writer");
    wait_count(&loki, 200_000, Duration::from_secs(60));
    assert_complete(&loki, 200_000);
}

#[test]
fn copytruncate_rotation() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path().to_path_buf();
    let loki = LokiDouble::start();
    let log = d.join("app.log");
    std::fs::write(&log, "").expect("create");
    let _agent = Agent::start(&d, &config(&d, &loki, &log.display().to_string(), ""));
    let w = writer(log.clone(), 100_000, 20_000, 40_000, |log, f, id| {
        // logrotate's copytruncate: copy, then truncate the file the writer keeps open.
        std::fs::copy(log, log.with_extension(format!("log.{id}"))).expect("copy");
        f.set_len(0).expect("truncate");
    });
    w.join().expect("writer");
    wait_count(&loki, 100_000, Duration::from_secs(60));
    assert_complete(&loki, 100_000);
}

#[test]
fn a_file_deleted_while_being_read_is_read_to_its_end() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let loki = LokiDouble::start();
    loki.set_mode(Mode::Fail(503, None));
    let log = d.join("app.log");
    append(&log, 0..300_000);
    // A small spool so the agent is still reading when the file goes.
    let _agent = Agent::start(
        d,
        &config(
            d,
            &loki,
            &log.display().to_string(),
            "spool:\n  max_size: 2MiB\n",
        ),
    );
    wait_for(
        "the agent to start reading",
        Duration::from_secs(30),
        || (loki.with(|s| s.requests) > 0).then_some(()),
    );
    std::fs::remove_file(&log).expect("delete");
    loki.set_mode(Mode::Accept);
    wait_count(&loki, 300_000, Duration::from_secs(60));
    assert_complete(&loki, 300_000);
}

#[test]
fn ten_thousand_files_under_one_glob() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let logs = d.join("pods");
    std::fs::create_dir(&logs).expect("mkdir");
    let loki = LokiDouble::start();
    for f in 0..10_000 {
        append(&logs.join(format!("pod-{f:05}.log")), f * 10..f * 10 + 10);
    }
    let agent = Agent::start(
        d,
        &config(d, &loki, &format!("{}/*.log", logs.display()), ""),
    );
    wait_count(&loki, 100_000, Duration::from_secs(120));
    assert_complete(&loki, 100_000);
    assert_eq!(loki.with(|s| s.streams.len()), 10_000);
    // New lines in an old file and a new file are both picked up.
    append(&logs.join("pod-00042.log"), 100_000..100_001);
    append(&logs.join("pod-new.log"), 100_001..100_002);
    wait_count(&loki, 100_002, Duration::from_secs(10));
    assert_complete(&loki, 100_002);
    assert_eq!(agent.metric("vigie_logs_files_active"), 10_001.0);
}

/// The agent behind (Loki down, small spool: reading paused), then rotations.
fn behind(d: &Path, loki: &LokiDouble, log: &Path, lines: usize) -> Agent {
    loki.set_mode(Mode::Fail(503, None));
    append(log, 0..lines);
    let agent = Agent::start(
        d,
        &config(
            d,
            loki,
            &log.display().to_string(),
            "spool:\n  max_size: 2MiB\n",
        ),
    );
    wait_for(
        "reading to pause on the full spool",
        Duration::from_secs(30),
        || (agent.metric("vigie_logs_backpressure_total") > 0.0).then_some(()),
    );
    agent
}

#[test]
fn rename_while_behind_then_the_new_file_grows_past_the_old_offset() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let loki = LokiDouble::start();
    let log = d.join("app.log");
    let _agent = behind(d, &loki, &log, 200_000);
    std::fs::rename(&log, d.join("app.log.1")).expect("rename");
    append(&log, 200_000..500_000);
    loki.set_mode(Mode::Accept);
    wait_count(&loki, 500_000, Duration::from_secs(90));
    assert_complete(&loki, 500_000);
}

#[test]
fn two_renames_one_second_apart_while_behind() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let loki = LokiDouble::start();
    let log = d.join("app.log");
    let _agent = behind(d, &loki, &log, 200_000);
    std::fs::rename(&log, d.join("app.log.1")).expect("rename");
    append(&log, 200_000..300_000);
    std::thread::sleep(Duration::from_secs(1));
    std::fs::rename(d.join("app.log.1"), d.join("app.log.2")).expect("rename");
    std::fs::rename(&log, d.join("app.log.1")).expect("rename");
    append(&log, 300_000..400_000);
    loki.set_mode(Mode::Accept);
    wait_count(&loki, 400_000, Duration::from_secs(90));
    assert_complete(&loki, 400_000);
}

#[test]
fn a_writer_that_keeps_writing_the_renamed_file_for_a_second() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path().to_path_buf();
    let loki = LokiDouble::start();
    let log = d.join("app.log");
    std::fs::write(&log, "").expect("create");
    let _agent = Agent::start(&d, &config(&d, &loki, &log.display().to_string(), ""));
    // 20k lines/s; at 50k and 100k the file is renamed, and the writer learns about it only a
    // second later (logrotate without copytruncate, delayed reopen): 20k lines go on into the
    // renamed file each time.
    let total = 150_000;
    let mut f = OpenOptions::new().append(true).open(&log).expect("open");
    let start = Instant::now();
    let mut reopen_at: Option<Instant> = None;
    let mut id = 0;
    while id < total {
        let mut buf = String::new();
        for i in id..id + 500 {
            buf.push_str(&line(i));
        }
        f.write_all(buf.as_bytes()).expect("write");
        id += 500;
        if id % 50_000 == 0 && id < total {
            std::fs::rename(&log, log.with_extension(format!("log.{id}"))).expect("rename");
            reopen_at = Some(Instant::now() + Duration::from_secs(1));
        }
        if reopen_at.is_some_and(|r| Instant::now() >= r) {
            f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .expect("reopen");
            reopen_at = None;
        }
        let due = start + Duration::from_secs_f64(id as f64 / 20_000.0);
        if let Some(w) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(w);
        }
    }
    wait_count(&loki, total, Duration::from_secs(60));
    assert_complete(&loki, total);
}

#[test]
fn permanent_rejections_are_isolated_and_the_rest_delivered() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let loki = LokiDouble::start();
    let log = d.join("app.log");
    append(&log, 0..1000);
    // One line over Loki's 256 KB limit in the middle.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .and_then(|mut f| f.write_all(format!("{}\n", "x".repeat(300 * 1024)).as_bytes()))
        .expect("long line");
    append(&log, 1000..2000);
    let agent = Agent::start(d, &config(d, &loki, &log.display().to_string(), ""));
    wait_count(&loki, 2000, Duration::from_secs(30));
    wait_for("the refused line counted", Duration::from_secs(10), || {
        (agent.metric("vigie_logs_dropped_lines_total") == 1.0).then_some(())
    });
    assert!(
        agent.log().contains("Loki refused an entry"),
        "{}",
        agent.log()
    );
    assert_complete(&loki, 2000);
}

#[test]
fn journal_entries_with_unit_labels_resume_after_restart() {
    // Debian installs it outside PATH.
    let remote = PathBuf::from("/lib/systemd/systemd-journal-remote");
    let Some(remote) = remote
        .is_file()
        .then_some(remote)
        .or_else(|| peer(&["systemd-journal-remote"], "systemd-journal-remote"))
    else {
        return;
    };
    if peer(&["journalctl"], "systemd").is_none() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let jdir = d.join("journal");
    std::fs::create_dir(&jdir).expect("mkdir");
    let write = |name: &str, from: usize, to: usize| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("time")
            .as_micros();
        let mut export = String::new();
        for i in from..to {
            export.push_str(&format!(
                "__REALTIME_TIMESTAMP={}\n__MONOTONIC_TIMESTAMP={}\n_BOOT_ID=0123456789abcdef0123456789abcdef\n_SYSTEMD_UNIT={}.service\nPRIORITY=3\n_HOSTNAME=n1\nMESSAGE={}",
                now + i as u128,
                1000 + i,
                if i % 2 == 0 { "web" } else { "db" },
                line(i)
            ));
            export.push('\n');
        }
        let mut child = std::process::Command::new(&remote)
            .arg(format!("--output={}", jdir.join(name).display()))
            .arg("-")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("systemd-journal-remote");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(export.as_bytes())
            .expect("export");
        assert!(child.wait().expect("wait").success());
    };
    write("remote-a.journal", 0, 1000);
    let loki = LokiDouble::start();
    let cfg = format!(
        "positions:\n  filename: {d}/positions.yaml\n  sync_period: 200ms\nclients:\n  - url: {u}\n    batchwait: 100ms\nscrape_configs:\n  - job_name: journal\n    journal:\n      path: {j}\n      labels: {{job: systemd-journal}}\n    relabel_configs:\n      - source_labels: [__journal__systemd_unit]\n        target_label: unit\n      - source_labels: [__journal_priority_keyword]\n        target_label: level\n",
        d = d.display(),
        u = loki.url(),
        j = jdir.display()
    );
    let mut agent = Agent::start(d, &cfg);
    wait_count(&loki, 1000, Duration::from_secs(30));
    loki.with(|s| {
        let keys: Vec<&String> = s.streams.keys().collect();
        assert_eq!(
            keys,
            [
                "{job=\"systemd-journal\", level=\"error\", unit=\"db.service\"}",
                "{job=\"systemd-journal\", level=\"error\", unit=\"web.service\"}"
            ]
        );
    });
    // Restart: the acknowledged cursor is kept; only new entries come.
    wait_for("positions with a cursor", Duration::from_secs(10), || {
        std::fs::read_to_string(d.join("positions.yaml"))
            .ok()
            .filter(|p| p.contains("cursor") || p.contains("s="))
    });
    agent.kill9();
    agent.restart();
    write("remote-b.journal", 1000, 1500);
    wait_count(&loki, 1500, Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(1));
    assert_complete(&loki, 1500);
}

#[test]
fn config_errors_name_file_line_and_key() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = dir.path().join("bad.yaml");
    std::fs::write(
        &cfg,
        "clients:\n  - url: http://127.0.0.1:1/loki/api/v1/push\nscrape_configs:\n  - job_name: k8s\n    kubernetes_sd_configs: []\n",
    )
    .expect("write");
    let out = std::process::Command::new(bin("vigie-agent"))
        .arg(format!("-config.file={}", cfg.display()))
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}: 5:", cfg.display())) && err.contains("kubernetes_sd_configs"),
        "{err}"
    );
}

#[test]
fn server_port_from_the_config_unless_the_flag_is_given() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let loki = LokiDouble::start();
    let port = free_port();
    let cfg = d.join("c.yaml");
    std::fs::write(
        &cfg,
        format!(
            "server: {{http_listen_address: 127.0.0.1, http_listen_port: {port}}}\npositions: {{filename: {}/p.yaml}}\nclients: [{{url: {}}}]\nscrape_configs:\n  - job_name: a\n    static_configs: [{{labels: {{__path__: '{}/none/*.log'}}}}]\n",
            d.display(),
            loki.url(),
            d.display()
        ),
    )
    .expect("config");
    let mut p = Proc::start(
        "agent-server-port",
        &bin("vigie-agent"),
        &[
            format!("-config.file={}", cfg.display()),
            "--collector.disable-defaults".into(),
        ],
        d,
    );
    wait_http(&mut p, port, "/metrics");
    let body = get(port, "/metrics", &[]).expect("scrape").text();
    assert!(body.contains("vigie_logs_read_lines_total 0"), "{body}");
    drop(p);
    // The flag wins: the configured port stays free.
    let other = free_port();
    let mut p = Proc::start(
        "agent-flag-port",
        &bin("vigie-agent"),
        &[
            format!("--config.file={}", cfg.display()),
            format!("--web.listen-address=127.0.0.1:{other}"),
            "--collector.disable-defaults".into(),
        ],
        d,
    );
    wait_http(&mut p, other, "/metrics");
    assert!(
        get(port, "/metrics", &[]).is_err(),
        "the config's port is used despite the flag"
    );
}
