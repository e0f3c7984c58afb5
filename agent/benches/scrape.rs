//! Side-by-side scrape cost of vigie-agent and node_exporter 1.5 with the same collectors.
//!
//! `cargo bench -p vigie-agent --bench scrape [-- --scrapes 500 --rounds 3]`
//!
//! With `--storage`, two vigie-agents instead: node_exporter's collectors alone, and the same plus
//! the storage collectors (mdadm, smartctl and ceph through the stub tools, file_age, cgroup on a
//! generated tree of 2,000 cgroups, systemd), on one sysfs whose `fs/cgroup` is the fixture and
//! whose other entries link to the real /sys. Target: at most 2x the CPU per scrape.
//!
//! Each scrape is a fresh TCP connection (as curl or a Prometheus restart would open), plain then
//! gzip. CPU is read from /proc/PID/stat (user+system ticks, all threads) around each batch;
//! RSS and its high-water mark from /proc/PID/status at the end. Rounds alternate between the
//! two exporters so machine noise hits both alike. Prints CPU per scrape and the ratios.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Target {
    name: &'static str,
    child: Child,
    port: u16,
    cpu_ms: Vec<(f64, f64)>,
    bytes: (usize, usize),
}

impl Target {
    /// Starts an exporter on a free loopback port with these flags.
    fn start(name: &'static str, program: &str, flags: &[String]) -> Target {
        let port = free_port();
        let child = Command::new(program)
            .args(flags)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        Target {
            name,
            child,
            port,
            cpu_ms: Vec::new(),
            bytes: (0, 0),
        }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)
}

fn status_kb(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix(key)
                .map(|v| v.trim().trim_end_matches(" kB").trim().parse().unwrap_or(0))
        })
        .unwrap_or(0)
}

fn scrape(port: u16, gzip: bool) -> usize {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let enc = if gzip {
        "Accept-Encoding: gzip\r\n"
    } else {
        ""
    };
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{enc}\r\n"
    )
    .expect("write");
    let mut body = Vec::with_capacity(64 * 1024);
    s.read_to_end(&mut body).expect("read");
    assert!(
        body.starts_with(b"HTTP/1.1 200"),
        "scrape failed: {}",
        String::from_utf8_lossy(&body[..body.len().min(200)])
    );
    body.len()
}

fn wait_ready(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "exporter on port {port} did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn node_exporter() -> Option<String> {
    ["prometheus-node-exporter", "node_exporter"]
        .into_iter()
        .map(String::from)
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let opt = |name: &str, default: usize| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    if args.iter().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let scrapes = opt("--scrapes", 500);
    let rounds = opt("--rounds", 3);
    let mut collector_flags: Vec<String> = vec!["--collector.disable-defaults".into()];
    // The collectors both exporters have (systemd fails on a host without it, differently).
    let names: Vec<&str> = vigie_agent::collector::ALL
        .iter()
        .map(|s| s.name)
        .filter(|n| !vigie_agent::collector::VIGIE_ONLY.contains(n) && *n != "systemd")
        .collect();
    collector_flags.extend(names.iter().map(|c| format!("--collector.{c}")));
    if args.iter().any(|a| a == "--storage") {
        let fixture = tempfile::tempdir().expect("tempdir");
        // "Without" is without every collector of the storage issue, mdadm included.
        let mut base: Vec<String> = collector_flags
            .iter()
            .filter(|f| *f != "--collector.mdadm")
            .cloned()
            .collect();
        base.push(format!(
            "--path.sysfs={}",
            storage_fixture(fixture.path()).display()
        ));
        let mut with = base.clone();
        let stubs = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/storage");
        with.extend([
            "--collector.mdadm".to_string(),
            "--collector.smartctl".into(),
            format!("--collector.smartctl.path={stubs}/smartctl/smartctl"),
            "--collector.ceph".into(),
            format!("--collector.ceph.path={stubs}/ceph/ceph"),
            "--collector.file_age".into(),
            format!("--collector.file_age.path={stubs}/*/*.json"),
            "--collector.cgroup".into(),
            "--collector.systemd".into(),
        ]);
        let targets = vec![
            Target::start("without", env!("CARGO_BIN_EXE_vigie-agent"), &base),
            Target::start("with storage", env!("CARGO_BIN_EXE_vigie-agent"), &with),
        ];
        let summary = measure(
            targets,
            scrapes,
            rounds,
            "storage collectors on 2,000 cgroups",
        );
        if let [a, b] = summary[..] {
            println!(
                "\nwith/without storage collectors: CPU plain {:.3}, CPU gzip {:.3}, RSS {:.3}   (target: CPU <= 2)",
                b.0 / a.0,
                b.1 / a.1,
                b.2 / a.2
            );
        }
        return;
    }
    let mut targets = vec![Target::start(
        "vigie-agent",
        env!("CARGO_BIN_EXE_vigie-agent"),
        &collector_flags,
    )];
    match node_exporter() {
        Some(bin) => {
            // Debian's defaults differ from upstream's: no lo exclusion, no textfile directory.
            let mut flags = collector_flags.clone();
            flags.extend([
                "--collector.netdev.device-exclude=".into(),
                "--collector.textfile.directory=".into(),
            ]);
            targets.push(Target::start("node_exporter", &bin, &flags));
        }
        None => eprintln!(
            "node_exporter not found (apt-get install prometheus-node-exporter): measuring vigie-agent alone"
        ),
    }
    let summary = measure(targets, scrapes, rounds, &names.join(","));
    if summary.len() == 2 {
        let (a, b) = (summary[0], summary[1]);
        println!();
        println!(
            "vigie/node_exporter: CPU plain {:.3}, CPU gzip {:.3}, RSS {:.3}, HWM {:.3}   (targets: CPU <= 0.1, RSS <= 0.333)",
            a.0 / b.0,
            a.1 / b.1,
            a.2 / b.2,
            a.3 / b.3
        );
    }
}

/// A sysfs for the storage benchmark: `fs/cgroup` holds 2,000 generated cgroups (100 services,
/// 950 pods of one container each, plus their slices); everything else links to the real /sys.
fn storage_fixture(dir: &std::path::Path) -> std::path::PathBuf {
    let sys = dir.join("sys");
    std::fs::create_dir_all(sys.join("fs")).expect("mkdir");
    for entry in std::fs::read_dir("/sys").expect("read /sys").flatten() {
        let name = entry.file_name();
        if name != "fs" {
            let _ = std::os::unix::fs::symlink(entry.path(), sys.join(&name));
        }
    }
    let cg = sys.join("fs/cgroup");
    let write = |dir: &std::path::Path| {
        std::fs::create_dir_all(dir).expect("mkdir");
        for (file, text) in [
            (
                "cpu.stat",
                "usage_usec 123456789\nuser_usec 100000000\nsystem_usec 23456789\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n",
            ),
            ("memory.current", "268435456\n"),
            ("memory.peak", "402653184\n"),
            ("memory.max", "536870912\n"),
            (
                "memory.events",
                "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n",
            ),
            (
                "io.stat",
                "8:0 rbytes=10485760 wbytes=2097152 rios=300 wios=100 dbytes=0 dios=0\n",
            ),
            ("pids.current", "12\n"),
            ("pids.max", "max\n"),
        ] {
            std::fs::write(dir.join(file), text).expect("write");
        }
    };
    std::fs::create_dir_all(&cg).expect("mkdir");
    std::fs::write(cg.join("cgroup.controllers"), "cpu io memory pids\n").expect("write");
    let mut n = 0;
    write(&cg.join("system.slice"));
    n += 1;
    for i in 0..100 {
        write(&cg.join(format!("system.slice/svc{i}.service")));
        n += 1;
    }
    let qos = cg.join("kubepods.slice/kubepods-burstable.slice");
    write(&cg.join("kubepods.slice"));
    write(&qos);
    n += 2;
    let mut pod = 0;
    while n < 2000 {
        let uid = format!("{pod:08x}_0000_4000_8000_{pod:012x}");
        let pod_dir = qos.join(format!("kubepods-burstable-pod{uid}.slice"));
        write(&pod_dir);
        write(&pod_dir.join(format!("cri-containerd-{pod:064x}.scope")));
        n += 2;
        pod += 1;
    }
    sys
}

/// CPU per scrape (plain, gzip), RSS and HWM of each target, after `rounds` alternating batches.
fn measure(
    mut targets: Vec<Target>,
    scrapes: usize,
    rounds: usize,
    what: &str,
) -> Vec<(f64, f64, f64, f64)> {
    for t in &targets {
        wait_ready(t.port);
        for _ in 0..10 {
            scrape(t.port, false);
        }
    }
    println!("{scrapes} scrapes per batch, {rounds} rounds, collectors: {what}");
    println!(
        "load average at start: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    for round in 0..rounds {
        let order: Vec<usize> = if round % 2 == 0 {
            (0..targets.len()).collect()
        } else {
            (0..targets.len()).rev().collect()
        };
        for i in order {
            let t = &mut targets[i];
            let pid = t.child.id();
            let mut per = [0.0; 2];
            for (k, gzip) in [false, true].into_iter().enumerate() {
                let before = ticks(pid);
                let mut n = 0;
                for _ in 0..scrapes {
                    n = scrape(t.port, gzip);
                }
                per[k] = (ticks(pid) - before) as f64 * 10.0 / scrapes as f64;
                if gzip { t.bytes.1 = n } else { t.bytes.0 = n }
            }
            t.cpu_ms.push((per[0], per[1]));
        }
    }
    println!(
        "load average at end: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    println!();
    println!(
        "{:<14} {:>16} {:>16} {:>10} {:>10} {:>12} {:>12}",
        "exporter", "CPU ms plain", "CPU ms gzip", "RSS MiB", "HWM MiB", "body plain", "body gzip"
    );
    let mut summary = Vec::new();
    for t in &targets {
        let median = |k: usize| {
            let mut v: Vec<f64> = t
                .cpu_ms
                .iter()
                .map(|p| if k == 0 { p.0 } else { p.1 })
                .collect();
            v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
            v[v.len() / 2]
        };
        let pid = t.child.id();
        let (rss, hwm) = (
            status_kb(pid, "VmRSS:") as f64 / 1024.0,
            status_kb(pid, "VmHWM:") as f64 / 1024.0,
        );
        println!(
            "{:<14} {:>16.3} {:>16.3} {:>10.1} {:>10.1} {:>12} {:>12}",
            t.name,
            median(0),
            median(1),
            rss,
            hwm,
            t.bytes.0,
            t.bytes.1
        );
        summary.push((median(0), median(1), rss, hwm));
    }
    summary
}
