//! The router's alert ingestion and notification latency, side by side with Alertmanager 0.25
//! on the same load, in one run: CPU seconds per 1,000 alerts ingested (batches of 1, 10, 100
//! distinct alerts), RSS with 10k and 100k active alerts, and POST → webhook latency with
//! `group_wait: 0s`; and notification throughput: N distinct one-alert groups (`group_by:
//! ['...']`) delivered to a webhook sink, with RSS after. Run by hand:
//!
//! `cargo bench -p vigie-e2e --bench dispatch -- [--totals 10000,100000] [--batches 1,10,100] [--probes 200] [--notifications 10000] [--only-notifications]`

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use vigie_e2e::*;

const CONNECTIONS: usize = 16;

struct Target {
    name: &'static str,
    program: PathBuf,
    args: fn(&Path, &Path, u16) -> Vec<String>,
}

fn router_args(cfg: &Path, data: &Path, port: u16) -> Vec<String> {
    vec![
        "run".into(),
        format!("--config.file={}", cfg.display()),
        format!("--storage.path={}", data.display()),
        format!("--web.listen-address=127.0.0.1:{port}"),
        "--log.level=warn".into(),
    ]
}

fn am_args(cfg: &Path, data: &Path, port: u16) -> Vec<String> {
    vec![
        format!("--config.file={}", cfg.display()),
        format!("--storage.path={}", data.display()),
        format!("--web.listen-address=127.0.0.1:{port}"),
        "--cluster.listen-address=".into(),
        "--log.level=warn".into(),
    ]
}

/// A keep-alive HTTP/1.1 client connection (like wrk's).
struct Conn {
    s: TcpStream,
    port: u16,
    buf: Vec<u8>,
}

impl Conn {
    fn new(port: u16) -> Conn {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_nodelay(true).ok();
        Conn {
            s,
            port,
            buf: Vec::new(),
        }
    }

    fn post(&mut self, path: &str, body: &[u8]) -> u16 {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.port,
            body.len()
        );
        self.s.write_all(head.as_bytes()).expect("write");
        self.s.write_all(body).expect("write");
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).to_ascii_lowercase();
                let status = head
                    .split(' ')
                    .nth(1)
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0);
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                while self.buf.len() < end + 4 + len {
                    let n = self.s.read(&mut chunk).expect("read");
                    self.buf.extend_from_slice(&chunk[..n]);
                }
                self.buf.drain(..end + 4 + len);
                return status;
            }
            let n = self.s.read(&mut chunk).expect("read");
            assert!(n > 0, "connection closed");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// The measured alert shape (labels and annotations as Prometheus sends, ~370 bytes).
fn batch_body(first: usize, batch: usize, names: usize, run: &str) -> Vec<u8> {
    let starts = rfc3339(SystemTime::now() - Duration::from_secs(60));
    let ends = rfc3339(SystemTime::now() + Duration::from_secs(3600));
    let parts: Vec<String> = (first..first + batch)
        .map(|n| {
            format!(
                r#"{{"labels":{{"alertname":"Bench{}","instance":"host-{n}.example.org:9100","job":"node","severity":"warning","run":"{run}"}},"annotations":{{"summary":"Instance host-{n} down","description":"synthetic benchmark alert {n}"}},"startsAt":"{starts}","endsAt":"{ends}","generatorURL":"http://prometheus.example.org:9090/graph?g0.expr=up%3D%3D0"}}"#,
                n % names
            )
        })
        .collect();
    format!("[{}]", parts.join(",")).into_bytes()
}

fn start(t: &Target, cfg_text: &str, dir: &Path) -> (Proc, u16) {
    let run_dir = tempfile::tempdir_in(dir).expect("tempdir").keep();
    let cfg = run_dir.join("cfg.yml");
    std::fs::write(&cfg, cfg_text).expect("config");
    let port = free_port();
    let mut p = Proc::start(
        t.name,
        &t.program,
        &(t.args)(&cfg, &run_dir.join("data"), port),
        &run_dir,
    );
    wait_http(&mut p, port, "/-/ready");
    (p, port)
}

fn ingest(t: &Target, total: usize, batch: usize, dir: &Path) -> (f64, f64, f64) {
    let cfg = "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 10m\n  group_interval: 10m\n  repeat_interval: 4h\nreceivers:\n  - name: hook\n    webhook_configs: [{url: 'http://127.0.0.1:9/'}]\n";
    let (p, port) = start(t, cfg, dir);
    let pid = p.child.id();
    let bodies: Vec<Vec<u8>> = (0..total / batch)
        .map(|i| batch_body(i * batch, batch, 10, "r"))
        .collect();
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicUsize::new(0));
    let cpu0 = cpu_seconds(pid);
    let started = Instant::now();
    let workers: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let (bodies, next) = (bodies.clone(), next.clone());
            std::thread::spawn(move || {
                let mut c = Conn::new(port);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(b) = bodies.get(i) else { return };
                    assert_eq!(c.post("/api/v2/alerts", b), 200);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("worker");
    }
    let wall = started.elapsed().as_secs_f64();
    // As measured for Alertmanager: CPU until, and RSS at, 5 s after the load.
    std::thread::sleep(Duration::from_secs(5));
    let cpu = cpu_seconds(pid) - cpu0;
    let rss = status_kib(pid, "VmRSS:") / 1024.0;
    let listed = get(
        port,
        "/api/v2/alerts?filter=run%3D%22r%22&filter=instance%3D%22host-0.example.org%3A9100%22",
        &[],
    )
    .map(|r| r.text())
    .unwrap_or_default();
    assert!(
        listed.contains("host-0.example.org"),
        "{}: alert 0 missing",
        t.name
    );
    (total as f64 / wall, cpu / total as f64 * 1000.0, rss)
}

fn latency(t: &Target, probes: usize, dir: &Path) -> (f64, f64, f64) {
    let hooks = WebhookDouble::start();
    let cfg = format!(
        "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 0s\n  group_interval: 5m\n  repeat_interval: 4h\nreceivers:\n  - name: hook\n    webhook_configs: [{{url: 'http://127.0.0.1:{}/hook'}}]\n",
        hooks.port
    );
    let (_p, port) = start(t, &cfg, dir);
    let mut c = Conn::new(port);
    let mut lat = Vec::new();
    for i in 0..probes {
        let body = format!(r#"[{{"labels":{{"alertname":"Probe{i}","job":"probe"}}}}]"#);
        let sent = Instant::now();
        assert_eq!(c.post("/api/v2/alerts", body.as_bytes()), 200);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = hooks.received();
            if let Some(r) = got
                .iter()
                .find(|r| r.body["groupLabels"]["alertname"] == format!("Probe{i}").as_str())
            {
                lat.push(r.at.duration_since(sent).as_secs_f64() * 1000.0);
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{}: probe {i} never arrived",
                t.name
            );
            std::thread::sleep(Duration::from_micros(200));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    lat.sort_by(f64::total_cmp);
    let pct = |q: f64| lat[((lat.len() as f64 - 1.0) * q).round() as usize];
    (pct(0.0), pct(0.5), pct(0.99))
}

/// `n` distinct alerts, each its own group, to a webhook: notifications per second from the
/// first POST to the last delivery, CPU seconds, and RSS once delivered.
fn notifications(t: &Target, n: usize, dir: &Path) -> (f64, f64, f64) {
    let count = Arc::new(AtomicUsize::new(0));
    let sink = null_sink(Arc::new(AtomicU16::new(200)), count.clone());
    let cfg = format!(
        "route:\n  receiver: hook\n  group_by: ['...']\n  group_wait: 0s\n  group_interval: 1h\n  repeat_interval: 4h\nreceivers:\n  - name: hook\n    webhook_configs: [{{url: 'http://127.0.0.1:{sink}/hook'}}]\n"
    );
    let (p, port) = start(t, &cfg, dir);
    let pid = p.child.id();
    let bodies: Vec<Vec<u8>> = (0..n / 100)
        .map(|i| batch_body(i * 100, 100, n, "n"))
        .collect();
    let cpu0 = cpu_seconds(pid);
    let started = Instant::now();
    let mut c = Conn::new(port);
    for b in &bodies {
        assert_eq!(c.post("/api/v2/alerts", b), 200);
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    while count.load(Ordering::Relaxed) < n {
        assert!(
            Instant::now() < deadline,
            "{}: only {} of {n} delivered",
            t.name,
            count.load(Ordering::Relaxed)
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds(pid) - cpu0;
    let rss = status_kib(pid, "VmRSS:") / 1024.0;
    (n as f64 / wall, cpu, rss)
}

fn list(args: &[String], flag: &str, default: &str) -> Vec<usize> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .map_or(default, String::as_str)
        .split(',')
        .filter_map(|v| v.parse().ok())
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let totals = list(&args, "--totals", "10000,100000");
    let batches = list(&args, "--batches", "1,10,100");
    let probes = list(&args, "--probes", "200")[0];
    let Some(am) = peer(
        &["prometheus-alertmanager", "alertmanager"],
        "prometheus-alertmanager",
    ) else {
        eprintln!("Alertmanager is needed for the side-by-side comparison");
        return;
    };
    let targets = [
        Target {
            name: "vigie-router",
            program: bin("vigie-router"),
            args: router_args,
        },
        Target {
            name: "alertmanager",
            program: am,
            args: am_args,
        },
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    let n = list(&args, "--notifications", "10000")[0];
    println!("{n} distinct one-alert notifications to a webhook sink:");
    println!("| system | notifications/s | CPU-s | RSS MB after |");
    println!("|---|---|---|---|");
    let mut row = Vec::new();
    for t in &targets {
        let (rate, cpu, rss) = notifications(t, n, dir.path());
        println!("| {} | {rate:.0} | {cpu:.2} | {rss:.1} |", t.name);
        row.push((rate, rss));
    }
    println!(
        "throughput ratio (vigie/AM) {:.2}, RSS ratio {:.2}\n",
        row[0].0 / row[1].0,
        row[0].1 / row[1].1
    );
    if args.iter().any(|a| a == "--only-notifications") {
        return;
    }
    println!("| alerts | batch | system | alerts/s | CPU-s per 1k | RSS MB |");
    println!("|---|---|---|---|---|---|");
    let mut ratios = Vec::new();
    for &total in &totals {
        for &batch in &batches {
            let mut row = Vec::new();
            for t in &targets {
                let (rate, cpu, rss) = ingest(t, total, batch, dir.path());
                println!(
                    "| {total} | {batch} | {} | {rate:.0} | {cpu:.4} | {rss:.1} |",
                    t.name
                );
                row.push((cpu, rss));
            }
            ratios.push((total, batch, row[0].0 / row[1].0, row[0].1 / row[1].1));
        }
    }
    println!("\n| alerts | batch | CPU ratio (vigie/AM) | RSS ratio |");
    println!("|---|---|---|---|");
    for (total, batch, c, r) in ratios {
        println!("| {total} | {batch} | {c:.3} | {r:.3} |");
    }
    println!("\nPOST → webhook, group_wait 0s, {probes} sequential probes at ~10/s (ms):");
    println!("| system | min | median | p99 |");
    println!("|---|---|---|---|");
    for t in &targets {
        let (min, med, p99) = latency(t, probes, dir.path());
        println!("| {} | {min:.2} | {med:.2} | {p99:.2} |", t.name);
    }
}
