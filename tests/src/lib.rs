//! Harness for the end-to-end tests: the real release binaries, real peers from Debian
//! (node_exporter, promtool, Prometheus), ports on 127.0.0.1 only.
//!
//! A missing peer skips the test on a developer's machine with a message; with `CI=true` it
//! fails, so CI can never pass by testing nothing.

pub mod loki;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Path of a release binary of this workspace, built once per test process.
pub fn bin(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        // Cargo gives the test process its own CARGO_MANIFEST_DIR, CARGO_PKG_*…; some build
        // scripts (ring's) rerun when those change, which would rebuild every binary in
        // release here after `.ci/run` built them.
        for (k, _) in std::env::vars() {
            if k.starts_with("CARGO_") && k != "CARGO_HOME" && k != "CARGO_TARGET_DIR" {
                cargo.env_remove(k);
            }
        }
        let status = cargo
            // The same selection as `.ci/run`'s build, so features unify the same way and the
            // binaries built there are reused instead of rebuilt.
            .args(["build", "--release", "--workspace", "--bins"])
            .current_dir(root())
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build --release failed");
    });
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    dir.join("release").join(name)
}

/// A peer program from the machine, or `None` (skip) when absent outside CI.
pub fn peer(names: &[&str], package: &str) -> Option<PathBuf> {
    for name in names {
        for dir in std::env::var("PATH").unwrap_or_default().split(':').chain([
            "/usr/bin",
            "/usr/sbin",
            "/bin",
        ]) {
            let p = Path::new(dir).join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("peer {names:?} is missing (Debian package {package}); CI must install it");
    }
    eprintln!("SKIP: peer {names:?} not installed (apt-get install {package})");
    None
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A child process killed when the test ends, whatever the outcome.
pub struct Proc {
    pub child: Child,
    pub name: String,
    pub log: PathBuf,
}

impl Proc {
    pub fn start(name: &str, program: &Path, args: &[String], log_dir: &Path) -> Proc {
        let log = log_dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
        Proc {
            child,
            name: name.into(),
            log,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `vigie up` run from the repository root as the README runs it, with 1 s scrape, group wait
/// and group interval; stderr in `DIR/NAME.log` (the `Proc`'s log), stdout (the banner and the
/// console outbox) in the returned file.
pub fn start_up(
    dir: &Path,
    name: &str,
    data: &Path,
    ports: (u16, u16),
    extra: &[String],
) -> (Proc, PathBuf) {
    let stdout = dir.join(format!("{name}.stdout"));
    let stderr = dir.join(format!("{name}.log"));
    let child = Command::new(bin("vigie"))
        .args([
            "up".to_string(),
            format!("--data.path={}", data.display()),
            format!("--agent.listen-address=127.0.0.1:{}", ports.0),
            format!("--router.listen-address=127.0.0.1:{}", ports.1),
            "--scrape.interval=1s".into(),
            "--route.group-wait=1s".into(),
            "--route.group-interval=1s".into(),
        ])
        .args(extra)
        .current_dir(root())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).expect("stdout file"))
        .stderr(std::fs::File::create(&stderr).expect("stderr file"))
        .spawn()
        .expect("start vigie up");
    (
        Proc {
            child,
            name: name.into(),
            log: stderr,
        },
        stdout,
    )
}

/// Polls `check` until it returns `Some`, or panics with `what` after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A plain HTTP/1.1 GET on 127.0.0.1 (one request per connection; chunked bodies decoded).
pub fn get(port: u16, path: &str, headers: &[(&str, &str)]) -> std::io::Result<Response> {
    send(port, "GET", path, headers, b"")
}

/// A POST with a body (e.g. a form or JSON), otherwise like [`get`].
pub fn post(
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    send(port, "POST", path, headers, body)
}

/// A request with any method and body (DELETE, PUT, …), otherwise like [`get`].
pub fn send(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header end"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        out.extend_from_slice(&b[start..(start + size).min(b.len())]);
        b = b.get(start + size + 2..).unwrap_or(&[]);
    }
    out
}

/// Waits until `port` answers `path` with a 2xx, so a test never races a start-up.
pub fn wait_http(proc_: &mut Proc, port: u16, path: &str) {
    wait_for(
        &format!("{} to answer on {port}", proc_.name),
        Duration::from_secs(30),
        || {
            if let Ok(Some(status)) = proc_.child.try_wait() {
                panic!("{} exited with {status}:\n{}", proc_.name, proc_.log());
            }
            // A 503 from `/-/ready` means starting, not ready: only a 2xx counts.
            get(port, path, &[])
                .ok()
                .filter(|r| (200..300).contains(&r.status))
                .map(|_| ())
        },
    )
}

/// Every collector both exporters have, enabled explicitly: the same flags work for node_exporter.
pub fn collector_flags() -> Vec<String> {
    let mut v = vec!["--collector.disable-defaults".to_string()];
    v.extend(
        vigie_agent::collector::ALL
            .iter()
            // node_exporter's systemd needs D-Bus, the agent's a running systemd: neither here.
            .filter(|c| {
                !vigie_agent::collector::VIGIE_ONLY.contains(&c.name) && c.name != "systemd"
            })
            .map(|c| format!("--collector.{}", c.name)),
    );
    v
}

/// node_exporter 1.5's upstream default (Debian's package excludes more).
pub const UPSTREAM_MOUNT_POINTS_EXCLUDE: &str =
    "^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)";

/// One request a [`WebhookDouble`] received.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: Instant,
    pub path: String,
    pub body: serde_json::Value,
}

/// A webhook receiver on 127.0.0.1 that checks every request against Alertmanager's webhook
/// format (version 4): POST, `application/json`, every documented field with its type. A
/// deviation is recorded and fails the test through [`WebhookDouble::received`].
pub struct WebhookDouble {
    pub port: u16,
    log: std::sync::Arc<std::sync::Mutex<(Vec<Received>, Vec<String>)>>,
}

impl WebhookDouble {
    pub fn start() -> WebhookDouble {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind webhook double");
        let port = listener.local_addr().expect("addr").port();
        let log: std::sync::Arc<std::sync::Mutex<(Vec<Received>, Vec<String>)>> =
            Default::default();
        let l = log.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let l = l.clone();
                std::thread::spawn(move || serve_webhook(stream, &l));
            }
        });
        WebhookDouble { port, log }
    }

    /// What arrived so far; panics if any request deviated from the format.
    pub fn received(&self) -> Vec<Received> {
        let g = self.log.lock().unwrap_or_else(|p| p.into_inner());
        assert!(g.1.is_empty(), "webhook format deviations: {:#?}", g.1);
        g.0.clone()
    }
}

fn serve_webhook(mut s: TcpStream, log: &std::sync::Mutex<(Vec<Received>, Vec<String>)>) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap_or_default().to_string();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let len: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < end + 4 + len {
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let at = Instant::now();
        let body = &buf[end + 4..end + 4 + len];
        let mut parts = request_line.split(' ');
        let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let mut problems = Vec::new();
        if method != "POST" {
            problems.push(format!("{path}: method {method}, want POST"));
        }
        if !headers
            .iter()
            .any(|(k, v)| k == "content-type" && v.starts_with("application/json"))
        {
            problems.push(format!("{path}: Content-Type is not application/json"));
        }
        let value: serde_json::Value = serde_json::from_slice(body).unwrap_or_else(|e| {
            problems.push(format!("{path}: body is not JSON: {e}"));
            serde_json::Value::Null
        });
        problems.extend(
            check_webhook_body(&value)
                .into_iter()
                .map(|p| format!("{path}: {p}")),
        );
        {
            let mut g = log.lock().unwrap_or_else(|p| p.into_inner());
            g.0.push(Received {
                at,
                path: path.to_string(),
                body: value,
            });
            g.1.extend(problems);
        }
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        buf.drain(..end + 4 + len);
    }
}

/// The fields of Alertmanager's webhook body and their types.
pub fn check_webhook_body(v: &serde_json::Value) -> Vec<String> {
    let mut p = Vec::new();
    let is_str_map = |v: &serde_json::Value| {
        v.as_object()
            .is_some_and(|m| m.values().all(|x| x.is_string()))
    };
    let rfc3339 = |v: &serde_json::Value| {
        v.as_str().is_some_and(|s| {
            s.len() >= 20
                && s.as_bytes().get(10) == Some(&b'T')
                && (s.ends_with('Z') || s.contains('+'))
        })
    };
    for k in ["receiver", "externalURL", "groupKey"] {
        if !v[k].is_string() {
            p.push(format!("{k} missing or not a string"));
        }
    }
    if v["version"] != "4" {
        p.push(format!("version is {}, want \"4\"", v["version"]));
    }
    if !(v["status"] == "firing" || v["status"] == "resolved") {
        p.push(format!("status {}", v["status"]));
    }
    for k in ["groupLabels", "commonLabels", "commonAnnotations"] {
        if !is_str_map(&v[k]) {
            p.push(format!("{k} is not a map of strings"));
        }
    }
    if !v["truncatedAlerts"].is_u64() {
        p.push("truncatedAlerts missing or not a count".into());
    }
    let Some(alerts) = v["alerts"].as_array() else {
        p.push("alerts is not an array".into());
        return p;
    };
    if alerts.is_empty() {
        p.push("alerts is empty".into());
    }
    for (i, a) in alerts.iter().enumerate() {
        if !(a["status"] == "firing" || a["status"] == "resolved") {
            p.push(format!("alerts[{i}].status {}", a["status"]));
        }
        for k in ["labels", "annotations"] {
            if !is_str_map(&a[k]) {
                p.push(format!("alerts[{i}].{k} is not a map of strings"));
            }
        }
        for k in ["startsAt", "endsAt"] {
            if !rfc3339(&a[k]) {
                p.push(format!("alerts[{i}].{k} {} is not RFC 3339", a[k]));
            }
        }
        if a["status"] == "firing" && a["endsAt"] != "0001-01-01T00:00:00Z" {
            p.push(format!("alerts[{i}] firing with endsAt {}", a["endsAt"]));
        }
        if !a["generatorURL"].is_string() {
            p.push(format!("alerts[{i}].generatorURL missing"));
        }
        if !a["fingerprint"]
            .as_str()
            .is_some_and(|f| f.len() == 16 && f.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            p.push(format!("alerts[{i}].fingerprint {}", a["fingerprint"]));
        }
    }
    p
}

/// RFC 3339 in UTC with milliseconds, for alert times in requests.
pub fn rfc3339(t: std::time::SystemTime) -> String {
    let ms = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let (secs, milli) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    let (days, sod) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{milli:03}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

/// Starts `vigie-router run` on a config and data directory, and waits until it is ready.
pub fn start_router_on(name: &str, dir: &Path, config: &Path, data: &Path, port: u16) -> Proc {
    let mut p = Proc::start(
        name,
        &bin("vigie-router"),
        &[
            "run".into(),
            format!("--config.file={}", config.display()),
            format!("--storage.path={}", data.display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
        ],
        dir,
    );
    wait_http(&mut p, port, "/-/ready");
    p
}

/// Starts Alertmanager (clustering off) on a config file and storage directory, and waits
/// until it is ready; returns it and its port.
pub fn start_alertmanager(program: &Path, dir: &Path, config: &Path, data: &Path) -> (Proc, u16) {
    let port = free_port();
    let mut p = Proc::start(
        "alertmanager",
        program,
        &[
            format!("--config.file={}", config.display()),
            format!("--storage.path={}", data.display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--cluster.listen-address=".into(),
        ],
        dir,
    );
    wait_http(&mut p, port, "/-/ready");
    (p, port)
}

/// A process's CPU time so far (utime + stime), in seconds.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (t(11) + t(12)) / 100.0
}

/// A field of `/proc/PID/status` in KiB (`VmRSS:`, `VmHWM:`).
pub fn status_kib(pid: u32, key: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// An HTTP sink for benchmarks: reads each request, counts it in `count` and answers `status`
/// (keep-alive), so the receiving side costs next to nothing.
pub fn null_sink(
    status: std::sync::Arc<std::sync::atomic::AtomicU16>,
    count: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) -> u16 {
    use std::sync::atomic::Ordering;
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let (status, count) = (status.clone(), count.clone());
            std::thread::spawn(move || {
                let mut s = s;
                let mut buf = Vec::new();
                let mut chunk = vec![0u8; 256 * 1024];
                loop {
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        match s.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    while buf.len() < end + 4 + len {
                        match s.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    buf.drain(..end + 4 + len);
                    count.fetch_add(1, Ordering::Relaxed);
                    let code = status.load(Ordering::Relaxed);
                    let resp = format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\n\r\n");
                    if s.write_all(resp.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}
