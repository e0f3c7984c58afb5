//! Log shipping benchmark: the release `vigie-agent` ships 2M access-log lines (~126 bytes,
//! the shape of `../shared/reference/promtail-bench.md`) from one file or from 8, to the Loki
//! double (decodes and stores every entry) and to a null endpoint (reads the body, answers
//! 204). Reports lines/s, CPU seconds per million lines and peak RSS (VmHWM), next to the
//! Promtail 3.6.15 figures measured on this machine. With `--backlog-gib N`, also fills an
//! N GiB backlog while Loki answers 503 and reports the peak RSS while it is spooled.
//!
//! `cargo bench -p vigie-e2e --bench logs -- [--lines 2000000] [--runs 3] [--pin] [--backlog-gib 1]`

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use vigie_e2e::loki::LokiDouble;
use vigie_e2e::{Proc, bin, cpu_seconds, free_port, get, null_sink, status_kib, wait_http};

const PROMTAIL_CPU_PER_M: f64 = 14.2;
const PROMTAIL_RSS_MIB: f64 = 112.8;
const PROMTAIL_LOKI_LPS: f64 = 44_892.0;
const PROMTAIL_NULL_LPS: f64 = 80_769.0;

fn line(id: usize, out: &mut String) {
    use std::fmt::Write as _;
    let _ = writeln!(
        out,
        "2026-11-24T00:00:{:02}.{:03}Z 10.{}.{}.{} - - \"GET /img/p/{}.jpg HTTP/1.1\" {} {} 0.{:03} \"Mozilla/5.0 (iPhone)\" id={id:08}",
        (id / 1000) % 60,
        id % 1000,
        id % 256,
        (id * 7) % 256,
        (id * 13) % 256,
        (id * 31) % 99_991,
        [200, 200, 200, 304, 404, 500][id % 6],
        1000 + (id * 17) % 9000,
        id % 1000
    );
}

fn generate(path: &Path, from: usize, to: usize) {
    let mut f = std::fs::File::create(path).expect("create");
    let mut buf = String::with_capacity(1 << 20);
    for id in from..to {
        line(id, &mut buf);
        if buf.len() > (1 << 20) - 200 {
            f.write_all(buf.as_bytes()).expect("write");
            buf.clear();
        }
    }
    f.write_all(buf.as_bytes()).expect("write");
}

fn metric(port: u16, name: &str) -> f64 {
    get(port, "/metrics", &[])
        .map(|r| r.text())
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

struct Run {
    lines_per_s: f64,
    cpu_per_m: f64,
    hwm_mib: f64,
}

fn run_case(dir: &Path, glob: &str, url: &str, lines: usize, pin: bool, spool: &str) -> Run {
    let _ = std::fs::remove_file(dir.join("positions.yaml"));
    let _ = std::fs::remove_dir_all(dir.join("positions.yaml.spool"));
    let cfg = dir.join("agent.yaml");
    std::fs::write(
        &cfg,
        format!(
            "positions: {{filename: {}/positions.yaml}}\nclients: [{{url: {url}}}]\n{spool}scrape_configs:\n  - job_name: bench\n    static_configs: [{{labels: {{job: bench, __path__: '{glob}'}}}}]\n",
            dir.display()
        ),
    )
    .expect("config");
    let port = free_port();
    let mut args = vec![
        format!("--config.file={}", cfg.display()),
        format!("--web.listen-address=127.0.0.1:{port}"),
        "--collector.disable-defaults".into(),
    ];
    let program = if pin {
        args.splice(
            0..0,
            [
                "-c".to_string(),
                "1".into(),
                bin("vigie-agent").display().to_string(),
            ],
        );
        PathBuf::from("taskset")
    } else {
        bin("vigie-agent")
    };
    let start = Instant::now();
    let mut p = Proc::start("bench-agent", &program, &args, dir);
    wait_http(&mut p, port, "/metrics");
    let pid = p.child.id();
    while metric(port, "vigie_logs_sent_lines_total") < lines as f64 {
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "benchmark run stuck: {}",
            p.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds(pid);
    let hwm = status_kib(pid, "VmHWM:") / 1024.0;
    drop(p);
    Run {
        lines_per_s: lines as f64 / wall,
        cpu_per_m: cpu / (lines as f64 / 1e6),
        hwm_mib: hwm,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let opt = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let lines: usize = opt("--lines")
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000_000);
    let runs: usize = opt("--runs").and_then(|v| v.parse().ok()).unwrap_or(3);
    let pin = args.iter().any(|a| a == "--pin");
    let backlog: Option<f64> = opt("--backlog-gib").and_then(|v| v.parse().ok());
    let _ = bin("vigie-agent");
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    std::fs::create_dir_all(d.join("single")).expect("mkdir");
    std::fs::create_dir_all(d.join("multi")).expect("mkdir");
    generate(&d.join("single/app.log"), 0, lines);
    for k in 0..8 {
        generate(
            &d.join(format!("multi/part-{k}.log")),
            k * lines / 8,
            (k + 1) * lines / 8,
        );
    }
    let bytes = std::fs::metadata(d.join("single/app.log"))
        .map(|m| m.len())
        .unwrap_or(0);
    println!(
        "{lines} lines, {:.1} bytes/line{}",
        bytes as f64 / lines as f64,
        if pin {
            ", agent pinned to one core (taskset -c 1)"
        } else {
            ""
        }
    );
    println!(
        "{:<28} {:>12} {:>10} {:>10}   vs Promtail 3.6.15",
        "case", "lines/s", "CPU-s/M", "VmHWM MiB"
    );
    let status = Arc::new(AtomicU16::new(204));
    let null = null_sink(status.clone(), Arc::default());
    let null_url = format!("http://127.0.0.1:{null}/loki/api/v1/push");
    for (name, glob, to_loki) in [
        ("1 stream -> null sink", "single/app.log", false),
        ("8 streams -> null sink", "multi/*.log", false),
        ("1 stream -> Loki double", "single/app.log", true),
        ("8 streams -> Loki double", "multi/*.log", true),
    ] {
        let mut lps = Vec::new();
        let mut cpu = Vec::new();
        let mut hwm = Vec::new();
        for _ in 0..runs {
            // A fresh double per run: it keeps every line it stores.
            let loki = to_loki.then(LokiDouble::start);
            let url = loki.as_ref().map_or(null_url.clone(), LokiDouble::url);
            let r = run_case(d, &d.join(glob).display().to_string(), &url, lines, pin, "");
            lps.push(r.lines_per_s);
            cpu.push(r.cpu_per_m);
            hwm.push(r.hwm_mib);
        }
        let (l, c, h) = (median(lps), median(cpu), median(hwm));
        let peer_lps = if to_loki {
            PROMTAIL_LOKI_LPS
        } else {
            PROMTAIL_NULL_LPS
        };
        println!(
            "{name:<28} {l:>12.0} {c:>10.3} {h:>10.1}   lines/s x{:.1}, CPU x{:.3} ({:.0}x less), RSS x{:.2}",
            l / peer_lps,
            c / PROMTAIL_CPU_PER_M,
            PROMTAIL_CPU_PER_M / c,
            h / PROMTAIL_RSS_MIB
        );
    }
    if let Some(gib) = backlog {
        // Loki away: everything goes to the spool; peak RSS while a backlog of `gib` builds.
        let per_line = bytes as f64 / lines as f64;
        let n = (gib * 1073741824.0 / per_line) as usize;
        generate(&d.join("backlog.log"), 0, n);
        status.store(503, Ordering::Relaxed);
        let cfg = d.join("agent.yaml");
        let _ = std::fs::remove_file(d.join("positions.yaml"));
        let _ = std::fs::remove_dir_all(d.join("positions.yaml.spool"));
        std::fs::write(
            &cfg,
            format!(
                "positions: {{filename: {}/positions.yaml}}\nclients: [{{url: {null_url}, backoff_config: {{max_period: 1s}}}}]\nspool: {{max_size: {}GiB}}\nscrape_configs:\n  - job_name: bench\n    static_configs: [{{labels: {{job: bench, __path__: '{}'}}}}]\n",
                d.display(),
                gib * 2.0,
                d.join("backlog.log").display()
            ),
        )
        .expect("config");
        let port = free_port();
        let mut p = Proc::start(
            "backlog-agent",
            &bin("vigie-agent"),
            &[
                format!("--config.file={}", cfg.display()),
                format!("--web.listen-address=127.0.0.1:{port}"),
                "--collector.disable-defaults".into(),
            ],
            d,
        );
        wait_http(&mut p, port, "/metrics");
        let start = Instant::now();
        while metric(port, "vigie_logs_read_lines_total") < n as f64 {
            assert!(start.elapsed() < Duration::from_secs(900), "backlog stuck");
            std::thread::sleep(Duration::from_millis(200));
        }
        std::thread::sleep(Duration::from_secs(2));
        let spooled = metric(port, "vigie_logs_spool_bytes");
        let pid = p.child.id();
        let hwm = status_kib(pid, "VmHWM:") / 1024.0;
        println!(
            "backlog: {n} lines ({gib} GiB) read while Loki answered 503: {:.0} MiB spooled on disk, VmHWM {hwm:.1} MiB (target < 64)",
            spooled / 1048576.0
        );
        status.store(204, Ordering::Relaxed);
        let t = Instant::now();
        while metric(port, "vigie_logs_sent_lines_total") < n as f64 {
            assert!(t.elapsed() < Duration::from_secs(900), "drain stuck");
            std::thread::sleep(Duration::from_millis(200));
        }
        println!(
            "backlog drained in {:.1} s once Loki answered 204; VmHWM {:.1} MiB",
            t.elapsed().as_secs_f64(),
            status_kib(pid, "VmHWM:") / 1024.0
        );
    }
}
