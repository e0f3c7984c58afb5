//! A Loki double: a real HTTP/1.1 server on 127.0.0.1 that takes `POST /loki/api/v1/push` in
//! protobuf + raw snappy (decoded here with `prost`, independently of the agent's hand-written
//! encoder) or JSON, validates it as Loki 3.x does (label syntax and limits, line size, time
//! window, empty requests, encodings), stores entries with Loki's exact-duplicate dedup, and
//! can be told to answer 204, 400, 429 with `Retry-After`, 500, or to stop listening.
//! Anything outside the documented API is recorded as a deviation that fails the test.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Clone, PartialEq, prost::Message)]
pub struct PushRequest {
    #[prost(message, repeated, tag = "1")]
    pub streams: Vec<StreamAdapter>,
    #[prost(string, tag = "2")]
    pub format: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StreamAdapter {
    #[prost(string, tag = "1")]
    pub labels: String,
    #[prost(message, repeated, tag = "2")]
    pub entries: Vec<EntryAdapter>,
    #[prost(uint64, tag = "3")]
    pub hash: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct EntryAdapter {
    #[prost(message, optional, tag = "1")]
    pub timestamp: Option<prost_types::Timestamp>,
    #[prost(string, tag = "2")]
    pub line: String,
    #[prost(message, repeated, tag = "3")]
    pub structured_metadata: Vec<LabelPair>,
    #[prost(message, repeated, tag = "4")]
    pub parsed: Vec<LabelPair>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct LabelPair {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// How the double answers pushes.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    Accept,
    /// Answer this status (with `Retry-After` seconds when given) and store nothing.
    Fail(u16, Option<u64>),
}

#[derive(Debug, Default)]
pub struct Store {
    /// Stream labels (sorted, rendered) → entries in arrival order.
    pub streams: BTreeMap<String, Vec<(i64, String)>>,
    seen: HashSet<(String, i64, String)>,
    max_ts: HashMap<String, i64>,
    pub duplicates: u64,
    pub requests: u64,
    pub rejected: Vec<String>,
    pub deviations: Vec<String>,
    pub tenants: HashSet<String>,
    pub encodings: HashSet<String>,
}

pub struct LokiDouble {
    pub port: u16,
    pub store: Arc<Mutex<Store>>,
    mode: Arc<Mutex<Mode>>,
    up: Arc<AtomicBool>,
    generation: Arc<std::sync::atomic::AtomicU64>,
    /// Checked limits (Loki defaults), adjustable per test.
    pub max_line: usize,
}

const DAY_NS: i64 = 86_400_000_000_000;

impl LokiDouble {
    pub fn start() -> LokiDouble {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loki double");
        let port = listener.local_addr().expect("addr").port();
        let d = LokiDouble {
            port,
            store: Arc::default(),
            mode: Arc::new(Mutex::new(Mode::Accept)),
            up: Arc::new(AtomicBool::new(true)),
            generation: Arc::default(),
            max_line: 256 * 1024,
        };
        d.serve(listener);
        d
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/loki/api/v1/push", self.port)
    }

    fn serve(&self, listener: TcpListener) {
        let store = self.store.clone();
        let mode = self.mode.clone();
        let up = self.up.clone();
        let generation = self.generation.clone();
        let my_gen = generation.load(Ordering::SeqCst);
        let max_line = self.max_line;
        listener.set_nonblocking(true).expect("nonblocking");
        std::thread::spawn(move || {
            loop {
                if generation.load(Ordering::SeqCst) != my_gen {
                    return; // listener dropped: the port refuses connections
                }
                match listener.accept() {
                    Ok((s, _)) => {
                        let _ = s.set_nonblocking(false);
                        let (store, mode, up, generation) =
                            (store.clone(), mode.clone(), up.clone(), generation.clone());
                        std::thread::spawn(move || {
                            handle(s, &store, &mode, &up, &generation, my_gen, max_line)
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
    }

    pub fn set_mode(&self, m: Mode) {
        *self.mode.lock().unwrap_or_else(|p| p.into_inner()) = m;
    }

    /// Closes the port and every open connection.
    pub fn stop(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.generation.fetch_add(1, Ordering::SeqCst);
        // Let the accept loop see the change and drop the listener.
        std::thread::sleep(Duration::from_millis(50));
    }

    /// Listens again on the same port.
    pub fn restart(&self) {
        let listener = crate::wait_for(
            "the loki double's port to bind again",
            Duration::from_secs(10),
            || TcpListener::bind(("127.0.0.1", self.port)).ok(),
        );
        self.up.store(true, Ordering::SeqCst);
        self.serve(listener);
    }

    pub fn with<T>(&self, f: impl FnOnce(&Store) -> T) -> T {
        f(&self.store.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Entries stored so far (after Loki's dedup).
    pub fn count(&self) -> usize {
        self.with(|s| s.streams.values().map(Vec::len).sum())
    }

    /// Fails the test if any request deviated from the push API.
    pub fn assert_clean(&self) {
        self.with(|s| {
            assert!(
                s.deviations.is_empty(),
                "push API deviations: {:#?}",
                s.deviations
            )
        });
    }
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

fn handle(
    mut s: TcpStream,
    store: &Mutex<Store>,
    mode: &Mutex<Mode>,
    up: &AtomicBool,
    generation: &std::sync::atomic::AtomicU64,
    my_gen: u64,
    max_line: usize,
) {
    let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 256 * 1024];
    loop {
        if !up.load(Ordering::SeqCst) || generation.load(Ordering::SeqCst) != my_gen {
            return;
        }
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            match s.read(&mut chunk) {
                Ok(0) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return,
            }
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap_or_default().to_string();
        let headers: HashMap<String, String> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < end + 4 + len {
            match s.read(&mut chunk) {
                Ok(0) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    if !up.load(Ordering::SeqCst) {
                        return;
                    }
                }
                Err(_) => return,
            }
        }
        let body = buf[end + 4..end + 4 + len].to_vec();
        buf.drain(..end + 4 + len);
        let (status, extra, text) = push(&request_line, &headers, &body, store, mode, max_line);
        if !up.load(Ordering::SeqCst) {
            return;
        }
        let resp = format!(
            "HTTP/1.1 {status} X\r\nContent-Length: {}\r\n{extra}\r\n{text}",
            text.len()
        );
        if s.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}

fn valid_name(n: &str) -> bool {
    let mut c = n.chars();
    matches!(c.next(), Some(x) if x.is_ascii_alphabetic() || x == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

/// Parses a stream selector as Loki's distributor does (unquoted names only).
fn parse_labels(s: &str) -> Result<Vec<(String, String)>, String> {
    let t = s.trim();
    let inner = t
        .strip_prefix('{')
        .and_then(|x| x.strip_suffix('}'))
        .ok_or_else(|| format!("couldn't parse labels: {s:?}"))?;
    let mut out = Vec::new();
    let mut rest = inner.trim();
    while !rest.is_empty() {
        let (name, r) = rest
            .split_once('=')
            .ok_or_else(|| format!("couldn't parse labels: {s:?}"))?;
        let name = name.trim();
        if !valid_name(name) {
            return Err(format!(
                "couldn't parse labels: invalid label name {name:?}"
            ));
        }
        let r = r
            .trim_start()
            .strip_prefix('"')
            .ok_or_else(|| format!("couldn't parse labels: {s:?}"))?;
        let mut v = String::new();
        let mut it = r.char_indices();
        let mut end = None;
        while let Some((i, c)) = it.next() {
            match c {
                '"' => {
                    end = Some(i + 1);
                    break;
                }
                '\\' => match it.next() {
                    Some((_, 'n')) => v.push('\n'),
                    Some((_, 't')) => v.push('\t'),
                    Some((_, c)) => v.push(c),
                    None => {}
                },
                c => v.push(c),
            }
        }
        let end = end.ok_or_else(|| format!("couldn't parse labels: {s:?}"))?;
        out.push((name.to_string(), v));
        rest = r[end..].trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
    }
    let mut names: Vec<&str> = out.iter().map(|(n, _)| n.as_str()).collect();
    names.sort();
    if names.windows(2).any(|w| w[0] == w[1]) {
        return Err("duplicate label name".into());
    }
    if out.iter().filter(|(n, _)| n != "service_name").count() > 15 {
        return Err(format!(
            "entry for stream '{s}' has {} label names; limit 15",
            out.len()
        ));
    }
    for (n, v) in &out {
        if n.len() > 1024 || v.len() > 2048 {
            return Err(format!("label name or value too long for stream '{s}'"));
        }
    }
    out.retain(|(_, v)| !v.is_empty());
    out.sort();
    Ok(out)
}

fn render(l: &[(String, String)]) -> String {
    let parts: Vec<String> = l.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", parts.join(", "))
}

type Decoded = Vec<(String, Vec<(i64, String)>)>;

fn decode(
    headers: &HashMap<String, String>,
    body: &[u8],
    st: &mut Store,
) -> Result<Decoded, String> {
    let ctype = headers.get("content-type").cloned().unwrap_or_default();
    let cenc = headers.get("content-encoding").cloned().unwrap_or_default();
    if ctype == "application/json" {
        st.encodings.insert("json".into());
        let raw = match cenc.as_str() {
            "" => body.to_vec(),
            "gzip" => {
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(body)
                    .read_to_end(&mut out)
                    .map_err(|e| e.to_string())?;
                out
            }
            e => return Err(format!("Content-Encoding {e:?} not supported")),
        };
        let v: serde_json::Value =
            serde_json::from_slice(&raw).map_err(|e| format!("bad json: {e}"))?;
        let mut out = Vec::new();
        for s in v["streams"].as_array().ok_or("streams missing")? {
            let labels: Vec<(String, String)> = s["stream"]
                .as_object()
                .ok_or("stream missing")?
                .iter()
                .map(|(k, v)| {
                    Ok((
                        k.clone(),
                        v.as_str()
                            .ok_or("label value must be a string")?
                            .to_string(),
                    ))
                })
                .collect::<Result<_, String>>()?;
            let mut entries = Vec::new();
            for e in s["values"].as_array().ok_or("values missing")? {
                let ts: i64 = e[0]
                    .as_str()
                    .ok_or("timestamp must be a string")?
                    .parse()
                    .map_err(|_| "timestamp must be integer nanoseconds")?;
                let line = e[1].as_str().ok_or("line must be a string")?.to_string();
                if let Some(m) = e.get(2)
                    && m.as_object()
                        .is_none_or(|o| o.values().any(|v| !v.is_string()))
                {
                    return Err("structured metadata values must be strings".into());
                }
                entries.push((ts, line));
            }
            out.push((
                render(&{
                    let mut l = labels;
                    l.sort();
                    l
                }),
                entries,
            ));
        }
        return Ok(out);
    }
    if ctype != "application/x-protobuf" {
        st.deviations.push(format!(
            "Content-Type {ctype:?}: the agent must send application/x-protobuf or application/json"
        ));
    }
    st.encodings.insert("protobuf".into());
    if !matches!(cenc.as_str(), "" | "snappy") {
        return Err(format!("Content-Encoding {cenc:?} not supported"));
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| format!("snappy: {e}"))?;
    let req: PushRequest =
        prost::Message::decode(raw.as_slice()).map_err(|e| format!("proto: {e}"))?;
    let mut out = Vec::new();
    for s in req.streams {
        let mut entries = Vec::new();
        for e in s.entries {
            if !e.parsed.is_empty() {
                st.deviations.push("client sent `parsed` labels".into());
            }
            let t = e.timestamp.unwrap_or_default();
            entries.push((t.seconds * 1_000_000_000 + i64::from(t.nanos), e.line));
        }
        out.push((s.labels, entries));
    }
    Ok(out)
}

fn push(
    request_line: &str,
    headers: &HashMap<String, String>,
    body: &[u8],
    store: &Mutex<Store>,
    mode: &Mutex<Mode>,
    max_line: usize,
) -> (u16, String, String) {
    let mut st = store.lock().unwrap_or_else(|p| p.into_inner());
    st.requests += 1;
    if !request_line.starts_with("POST /loki/api/v1/push ") {
        st.deviations
            .push(format!("unexpected request {request_line:?}"));
        return (404, String::new(), "404 page not found\n".into());
    }
    if let Some(t) = headers.get("x-scope-orgid") {
        let t = t.clone();
        st.tenants.insert(t);
    }
    let m = mode.lock().unwrap_or_else(|p| p.into_inner()).clone();
    if let Mode::Fail(code, retry) = m {
        let extra = retry
            .map(|r| format!("Retry-After: {r}\r\n"))
            .unwrap_or_default();
        return (code, extra, format!("induced {code}\n"));
    }
    let streams = match decode(headers, body, &mut st) {
        Ok(s) => s,
        Err(e) => return (400, String::new(), format!("{e}\n")),
    };
    if streams.is_empty() {
        st.deviations
            .push("empty push request (Loki answers 422)".into());
        return (
            422,
            String::new(),
            "error at least one valid stream is required for ingestion\n".into(),
        );
    }
    let now = now_ns();
    let mut errors = Vec::new();
    for (labels, entries) in streams {
        let parsed = match parse_labels(&labels) {
            Ok(l) => l,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let key = render(&parsed);
        for (ts, line) in entries {
            if line.len() > max_line {
                errors.push(format!(
                    "max entry size '{max_line}' bytes exceeded for stream '{key}'"
                ));
                continue;
            }
            if ts < now - 7 * DAY_NS {
                errors.push(format!(
                    "entry for stream '{key}' has timestamp too old: {ts}"
                ));
                continue;
            }
            if ts > now + 600_000_000_000 {
                errors.push(format!(
                    "entry for stream '{key}' has timestamp too new: {ts}"
                ));
                continue;
            }
            let max = st.max_ts.get(&key).copied().unwrap_or(i64::MIN);
            if max != i64::MIN && ts < max - 3_600_000_000_000 {
                errors.push(format!(
                    "entry with timestamp {ts} ignored, reason: 'entry too far behind'"
                ));
                continue;
            }
            if !st.seen.insert((key.clone(), ts, line.clone())) {
                st.duplicates += 1;
                continue;
            }
            st.max_ts.insert(key.clone(), max.max(ts));
            st.streams.entry(key.clone()).or_default().push((ts, line));
        }
    }
    if errors.is_empty() {
        (204, String::new(), String::new())
    } else {
        // Like Loki: the valid entries of the request are stored, the answer is 400.
        st.rejected.extend(errors.iter().cloned());
        (400, String::new(), errors.join("\n") + "\n")
    }
}
