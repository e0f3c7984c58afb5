//! Rule evaluation benchmark (run by hand, not by CI):
//!
//! ```text
//! cargo bench -p vigie-router --bench eval -- [--nodes 100] [--hours 6] [--cycles 20] [--prometheus]
//! ```
//!
//! Builds `--nodes` simulated nodes from two real scrapes of the agent on this machine (`--gap`
//! seconds apart: each series' value and observed rate of change), fills the embedded store with `--hours` of samples at 15 s, then times full
//! evaluation cycles of the repository's rule files (`rules/*.yml`) and reports bytes per stored
//! sample. With `--prometheus`, the same data is backfilled into Debian's Prometheus 2.42
//! (`promtool tsdb create-blocks-from openmetrics`) running the same rules, and its
//! `prometheus_rule_group_last_duration_seconds` is reported beside ours.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use vigie_exposition::{Kind, parse_text};
use vigie_promql::{Engine, Labels};
use vigie_router::alerting::Context;
use vigie_router::rules::file;
use vigie_router::rules::group::{GroupState, Local};
use vigie_router::store::Store;

const STEP_MS: i64 = 15_000;
/// How far Prometheus' copy of the data is moved ahead (see `prometheus_side_by_side`).
const SHIFT_MS: i64 = 12 * 60 * 1000;

/// One series of a node, from two real scrapes of the agent.
struct Template {
    labels: Vec<(String, String)>,
    counter: bool,
    /// The value at the first scrape.
    first: f64,
    /// How much it moved per 15 s between the two scrapes.
    delta: f64,
    /// Whether the series only ever held whole numbers (packets, bytes, pages).
    integral: bool,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf()
}

/// Starts the release agent on a free port (building it if needed) and returns its URL.
fn start_agent() -> (std::process::Child, u16) {
    let status =
        std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args([
                "build",
                "--release",
                "-p",
                "vigie-agent",
                "--bin",
                "vigie-agent",
            ])
            .current_dir(root())
            .status()
            .expect("cargo build");
    assert!(status.success());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let child = std::process::Command::new(root().join("target/release/vigie-agent"))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("agent");
    let deadline = Instant::now() + Duration::from_secs(20);
    while http_get(port, "/-/healthy").is_err() {
        assert!(Instant::now() < deadline, "agent did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    (child, port)
}

/// Series key → (labels, value, is a counter).
type Scrape = BTreeMap<String, (Vec<(String, String)>, f64, bool)>;

fn scrape(port: u16) -> Scrape {
    let text = http_get(port, "/metrics").expect("scrape");
    let body = text
        .split_once("\r\n\r\n")
        .map_or(text.as_str(), |(_, b)| b);
    let mut out = BTreeMap::new();
    for fam in parse_text(body).expect("agent output parses") {
        let counter = !matches!(fam.kind, Kind::Gauge | Kind::Untyped);
        for s in fam.samples {
            let name = format!("{}{}", fam.name, s.suffix.as_str());
            let mut labels = vec![("__name__".to_string(), name)];
            labels.extend(s.labels.iter().map(|(k, v)| (k.to_string(), v.clone())));
            out.insert(format!("{labels:?}"), (labels, s.value, counter));
        }
    }
    out
}

/// One node's series from two real scrapes of the agent `gap` apart.
fn templates(gap: Duration) -> Vec<Template> {
    let (mut agent, port) = start_agent();
    let a = scrape(port);
    std::thread::sleep(gap);
    let b = scrape(port);
    let _ = agent.kill();
    let _ = agent.wait();
    let scale = STEP_MS as f64 / gap.as_millis() as f64;
    a.into_iter()
        .filter_map(|(key, (labels, first, counter))| {
            let (_, second, _) = b.get(&key)?;
            let first = if first.is_finite() { first } else { 0.0 };
            let second = if second.is_finite() { *second } else { first };
            Some(Template {
                labels,
                counter,
                first,
                delta: (second - first) * scale,
                integral: first.fract() == 0.0 && second.fract() == 0.0,
            })
        })
        .collect()
}

/// Series `k` of node `n` at step `i`: counters advance by the observed rate, varied ±50 %
/// from step to step and node to node; gauges that moved wander by the observed amount; the
/// rest stay put. Whole-number series stay whole, the others keep hundredths.
fn value(t: &Template, k: usize, n: usize, i: i64) -> f64 {
    let round = |v: f64| {
        if t.integral {
            v.round()
        } else {
            (v * 100.0).round() / 100.0
        }
    };
    let vary = |j: i64| 0.5 + ((j * 7 + k as i64 * 13 + n as i64 * 5).rem_euclid(11)) as f64 / 10.0;
    if t.delta == 0.0 {
        t.first
    } else if t.counter {
        // The sum of varied increments up to step i, in closed form per step is not needed:
        // the mean rate times i plus a bounded variation keeps the counter monotonic.
        round(t.first + t.delta.abs() * (i as f64 + (vary(i) - 1.0) * 0.9))
    } else {
        round(t.first + t.delta * (vary(i) - 1.0) * 2.0)
    }
}

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let nodes = arg(&args, "--nodes", 100) as usize;
    let hours = arg(&args, "--hours", 6) as i64;
    let cycles = arg(&args, "--cycles", 20) as usize;
    let steps = hours * 3600 * 1000 / STEP_MS;
    let templates = templates(Duration::from_secs(arg(&args, "--gap", 5)));
    let end = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64)
        / STEP_MS
        * STEP_MS;
    let start = end - (steps - 1) * STEP_MS;

    let built = Instant::now();
    let mut store = Store::new();
    for n in 0..nodes {
        let instance = format!("node{n:03}:9100");
        for (k, t) in templates.iter().enumerate() {
            let mut l = Labels::from_pairs(t.labels.clone());
            l.set("job", "node".into());
            l.set("instance", instance.clone());
            for i in 0..steps {
                store.append(&l, start + i * STEP_MS, value(t, k, n, i));
            }
        }
    }
    let stats = store.stats();
    println!(
        "store: {nodes} nodes, {} series, {} samples ({hours} h at 15 s) built in {:.1} s",
        stats.series,
        stats.samples,
        built.elapsed().as_secs_f64()
    );
    println!(
        "store: {} bytes of chunks, {:.3} bytes per sample ({:.3} of encoded stream, the rest chunk headers)",
        stats.chunk_bytes,
        stats.chunk_bytes as f64 / stats.samples as f64,
        stats.stream_bytes as f64 / stats.samples as f64
    );

    let mut groups = Vec::new();
    let mut rule_files: Vec<_> = std::fs::read_dir(root().join("rules"))
        .expect("rules/")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    rule_files.sort();
    for f in &rule_files {
        groups.extend(file::load(f).expect("rule file loads").groups);
    }
    let rules: usize = groups.iter().map(|g| g.rules.len()).sum();
    let mut states: Vec<GroupState> = groups.into_iter().map(GroupState::new).collect();
    let engine = Engine::default();
    let ctx = Context {
        external_labels: &[],
        external_url: "",
    };
    let mut times = Vec::new();
    let mut group_times: BTreeMap<String, Vec<Duration>> = BTreeMap::new();
    let series: Vec<(usize, usize, Labels)> = (0..nodes)
        .flat_map(|n| {
            templates.iter().enumerate().map(move |(k, t)| {
                let mut l = Labels::from_pairs(t.labels.clone());
                l.set("job", "node".into());
                l.set("instance", format!("node{n:03}:9100"));
                (n, k, l)
            })
        })
        .collect();
    for c in 0..cycles {
        // Each cycle one scrape later, like the live loop: every series gets its next sample
        // (not timed), then the rules run at that time.
        let ts = end + (c as i64 + 1) * STEP_MS;
        let step = steps + c as i64;
        for (n, k, l) in &series {
            store.append(l, ts, value(&templates[*k], *k, *n, step));
        }
        let t0 = Instant::now();
        let backend = Local {
            engine: &engine,
            storage: RefCell::new(&mut store),
        };
        for g in states.iter_mut() {
            let tg = Instant::now();
            g.eval(&backend, ts, &ctx);
            group_times
                .entry(g.group.name.clone())
                .or_default()
                .push(tg.elapsed());
        }
        times.push(t0.elapsed());
        for g in &states {
            for r in &g.rules {
                if let Some(e) = r.last_error() {
                    panic!("rule {} failed: {e}", r.name());
                }
            }
        }
    }
    if args.iter().any(|a| a == "--per-rule") {
        let each: Vec<String> = times.iter().map(|t| format!("{:.1}", ms(*t))).collect();
        println!("cycles in order (ms): {}", each.join(" "));
    }
    times.sort();
    let median = times[times.len() / 2];
    if args.iter().any(|a| a == "--per-rule") {
        let ts = end + cycles as i64 * STEP_MS;
        println!("per rule, at the last cycle's time:");
        for g in &states {
            for r in &g.group.rules {
                let t0 = Instant::now();
                let n = match engine.instant(&store, &r.expr, ts) {
                    Ok(vigie_promql::Value::Vector(v)) => v.len(),
                    _ => 0,
                };
                println!(
                    "  {:>8.3} ms  {:>6} samples  {}",
                    ms(t0.elapsed()),
                    n,
                    r.name
                );
            }
        }
    }
    for (name, mut t) in group_times {
        t.sort();
        println!("  group {name}: median {:.2} ms", ms(t[t.len() / 2]));
    }
    println!(
        "eval: {} rule files, {rules} rules, {cycles} cycles: median {:.2} ms, min {:.2} ms, max {:.2} ms per full cycle (groups one after the other)",
        rule_files.len(),
        ms(median),
        ms(times[0]),
        ms(times[times.len() - 1])
    );
    if args.iter().any(|a| a == "--prometheus") {
        prometheus_side_by_side(&templates, nodes, start, steps, &rule_files, ms(median));
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The same data and rules in Prometheus 2.42: backfilled blocks, then the rule groups'
/// own duration metric after a few evaluations. Prometheus evaluates at the wall clock, minutes
/// after the data was generated (backfill takes that long), so its copy of the data is shifted
/// to end `SHIFT_MS` later: its windows are full when it evaluates, as ours were.
fn prometheus_side_by_side(
    templates: &[Template],
    nodes: usize,
    start: i64,
    steps: i64,
    rules: &[PathBuf],
    ours_ms: f64,
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let om = dir.path().join("data.om");
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&om).expect("om file"));
        // OpenMetrics backfill wants each series' samples together and in time order.
        for n in 0..nodes {
            for (k, t) in templates.iter().enumerate() {
                let mut l: BTreeMap<String, String> = t.labels.iter().cloned().collect();
                let name = l.remove("__name__").unwrap_or_default();
                l.insert("job".into(), "node".into());
                l.insert("instance".into(), format!("node{n:03}:9100"));
                let labels: Vec<String> = l
                    .iter()
                    .map(|(k, v)| {
                        format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
                    })
                    .collect();
                let series = format!("{name}{{{}}}", labels.join(","));
                for i in 0..steps {
                    let _ = writeln!(
                        w,
                        "{series} {} {}",
                        value(t, k, n, i),
                        (start + i * STEP_MS) / 1000
                    );
                }
            }
        }
        let _ = writeln!(w, "# EOF");
    }
    let tsdb = dir.path().join("tsdb");
    let status = std::process::Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&om)
        .arg(&tsdb)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("promtool");
    assert!(status.success(), "backfill failed");
    let cfg = dir.path().join("prometheus.yml");
    let rule_list: Vec<String> = rules
        .iter()
        .map(|p| format!("  - {}", p.display()))
        .collect();
    std::fs::write(
        &cfg,
        format!(
            "global:\n  evaluation_interval: 15s\nrule_files:\n{}\n",
            rule_list.join("\n")
        ),
    )
    .expect("config");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let mut child = std::process::Command::new("prometheus")
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.tsdb.path={}", tsdb.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--storage.tsdb.retention.time=30d")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("prometheus");
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut best: Option<f64> = None;
    let mut seen = 0;
    println!(
        "prometheus 2.42: data ends {} s from now",
        (start + SHIFT_MS + (steps - 1) * STEP_MS - now_ms()) / 1000
    );
    while Instant::now() < deadline && seen < 8 {
        std::thread::sleep(Duration::from_secs(15));
        let Ok(body) = http_get(port, "/metrics") else {
            continue;
        };
        let total: f64 = body
            .lines()
            .filter(|l| l.starts_with("prometheus_rule_group_last_duration_seconds{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        if total > 0.0 {
            seen += 1;
            best = Some(best.map_or(total, |b: f64| b.min(total)));
            println!(
                "prometheus 2.42: full cycle (sum of group durations) {:.2} ms",
                total * 1000.0
            );
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    if let Some(b) = best {
        println!(
            "ratio vigie/prometheus: {:.3} (vigie median {ours_ms:.2} ms, prometheus best {:.2} ms)",
            ours_ms / (b * 1000.0),
            b * 1000.0
        );
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn http_get(port: u16, path: &str) -> std::io::Result<String> {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}
