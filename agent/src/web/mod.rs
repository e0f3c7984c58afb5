//! The HTTP surface: `/metrics` (text 0.0.4 or OpenMetrics, gzip when asked), `/-/healthy`,
//! `/-/ready` and a landing page, behind optional basic auth, over plain TCP or TLS.

pub mod config;
pub mod reload;
pub mod tls;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use flate2::Compression;
use flate2::write::GzEncoder;
use tokio::sync::Semaphore;
use vigie_exposition::{Format, normalize};

use crate::collector::Collectors;
use crate::selfmetrics::{SelfMetrics, VERSION};

pub struct AppState {
    pub collectors: Collectors,
    pub self_metrics: SelfMetrics,
    pub exporter_metrics: bool,
    /// Offer OpenMetrics when asked; off means text 0.0.4 always, byte for byte node_exporter.
    pub openmetrics: bool,
    pub telemetry_path: String,
    pub limiter: Option<Semaphore>,
    /// Basic auth, headers and TLS from `--web.config.file`, reloaded when it changes.
    pub web: Arc<reload::WebRuntime>,
    /// Conflicts already logged, so a duplicate series is reported once, not every scrape.
    logged_conflicts: Mutex<HashSet<String>>,
    /// The log shipper's metrics (`vigie_logs_*` and the `metrics` stage's series).
    pub logs: Option<Arc<crate::logs::stats::Stats>>,
}

impl AppState {
    pub fn new(collectors: Collectors, telemetry_path: String) -> AppState {
        AppState {
            collectors,
            self_metrics: SelfMetrics::new(),
            exporter_metrics: true,
            openmetrics: true,
            telemetry_path,
            limiter: None,
            web: Arc::new(reload::WebRuntime::fixed(reload::WebSettings::default())),
            logged_conflicts: Mutex::new(HashSet::new()),
            logs: None,
        }
    }
}

/// bcrypt users. A verified `Authorization` value is cached: bcrypt costs tens of milliseconds
/// by design, far more than a scrape.
pub struct BasicAuth {
    users: std::collections::BTreeMap<String, String>,
    verified: Mutex<HashSet<String>>,
}

impl BasicAuth {
    pub fn new(users: std::collections::BTreeMap<String, String>) -> BasicAuth {
        BasicAuth {
            users,
            verified: Mutex::new(HashSet::new()),
        }
    }

    /// Already verified: no bcrypt, no thread hop.
    fn cached(&self, header: Option<&str>) -> bool {
        header.is_some_and(|v| {
            self.verified
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(v)
        })
    }

    fn check(&self, header: Option<&str>) -> bool {
        let Some(value) = header else { return false };
        if self.cached(header) {
            return true;
        }
        let Some(encoded) = value.strip_prefix("Basic ") else {
            return false;
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
            return false;
        };
        let Ok(decoded) = String::from_utf8(decoded) else {
            return false;
        };
        let Some((user, pass)) = decoded.split_once(':') else {
            return false;
        };
        // Unknown users still pay one bcrypt round so timing does not reveal which users exist.
        const DUMMY: &str = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";
        let (hash, known) = match self.users.get(user) {
            Some(h) => (h.as_str(), true),
            None => (DUMMY, false),
        };
        let ok = bcrypt::verify(pass, hash).unwrap_or(false) && known;
        if ok {
            let mut cache = self.verified.lock().unwrap_or_else(|p| p.into_inner());
            if cache.len() >= 64 {
                cache.clear();
            }
            cache.insert(value.to_string());
        }
        ok
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    let path = state.telemetry_path.clone();
    Router::new()
        .route(&path, get(metrics))
        .route("/", get(landing))
        .route("/-/healthy", get(|| async { "Healthy\n" }))
        .route("/-/ready", get(|| async { "Ready\n" }))
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

/// Basic auth and the configured response headers, for every route.
async fn guard(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let web = st.web.current();
    if let Some(auth) = &web.basic_auth {
        let header = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let ok = auth.cached(header.as_deref()) || {
            // bcrypt is deliberately slow: keep it off the thread that serves HTTP.
            let web = web.clone();
            tokio::task::spawn_blocking(move || {
                web.basic_auth
                    .as_ref()
                    .is_some_and(|a| a.check(header.as_deref()))
            })
            .await
            .unwrap_or(false)
        };
        if !ok {
            let mut resp = (StatusCode::UNAUTHORIZED, "Unauthorized\n").into_response();
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
            return resp;
        }
    }
    let mut resp = next.run(req).await;
    for (k, v) in &web.headers {
        resp.headers_mut().insert(k.clone(), v.clone());
    }
    resp
}

async fn landing(State(st): State<Arc<AppState>>) -> Html<String> {
    Html(format!(
        "<!DOCTYPE html>\n<html><head><title>Vigie agent</title></head><body>\n<h1>Vigie agent</h1>\n<p>Version {VERSION}. A node_exporter-compatible agent.</p>\n<ul><li><a href=\"{p}\">Metrics</a></li><li><a href=\"/-/healthy\">Health</a></li><li><a href=\"/-/ready\">Readiness</a></li></ul>\n<p>Collectors: {c}</p>\n</body></html>\n",
        p = st.telemetry_path,
        c = st.collectors.names().join(", ")
    ))
}

/// Decodes `collect[]=cpu&exclude[]=meminfo` (node_exporter's per-request filter).
fn collector_filter(query: Option<&str>) -> (Vec<String>, Vec<String>) {
    let mut collect = Vec::new();
    let mut exclude = Vec::new();
    for pair in query.unwrap_or("").split('&') {
        let Some((k, v)) = pair.split_once('=') else {
            continue;
        };
        let k = percent_decode(k);
        match k.as_str() {
            "collect[]" => collect.push(percent_decode(v)),
            "exclude[]" => exclude.push(percent_decode(v)),
            _ => {}
        }
    }
    (collect, exclude)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(
                    std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                    16,
                ) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Gives the scrape's freed buffers back to the kernel: between scrapes an exporter should hold
/// nothing, and glibc otherwise keeps freed heap resident.
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory to the kernel; it is thread-safe.
    unsafe {
        libc::malloc_trim(64 * 1024);
    }
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',').any(|part| {
                let mut it = part.split(';');
                let enc = it.next().unwrap_or("").trim();
                let q = it
                    .find_map(|p| p.trim().strip_prefix("q="))
                    .and_then(|q| q.parse::<f32>().ok())
                    .unwrap_or(1.0);
                enc.eq_ignore_ascii_case("gzip") && q > 0.0
            })
        })
}

async fn metrics(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let started = Instant::now();
    let _permit = match &st.limiter {
        Some(sem) => match sem.try_acquire() {
            Ok(p) => Some(p),
            Err(_) => {
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Too many concurrent scrapes\n",
                )
                    .into_response();
            }
        },
        None => None,
    };
    let (collect, exclude) = collector_filter(req.uri().query());
    if !collect.is_empty() && !exclude.is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            "collect[] and exclude[] cannot be used together\n",
        )
            .into_response();
    }
    let enabled = st.collectors.names();
    if let Some(missing) = collect
        .iter()
        .chain(&exclude)
        .find(|n| !enabled.contains(&n.as_str()))
    {
        return (
            StatusCode::BAD_REQUEST,
            format!("couldn't create filtered metrics handler: missing collector: {missing}\n"),
        )
            .into_response();
    }
    let mut families = st
        .collectors
        .scrape(|name| {
            (collect.is_empty() || collect.iter().any(|c| c == name))
                && !exclude.iter().any(|c| c == name)
        })
        .await;
    if st.exporter_metrics {
        families.extend(st.self_metrics.families());
    }
    if let Some(logs) = &st.logs {
        families.extend(logs.families());
    }
    let (families, conflicts) = normalize(families);
    if !conflicts.is_empty() {
        let mut logged = st
            .logged_conflicts
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for c in conflicts {
            let text = c.to_string();
            if logged.len() < 10_000 && logged.insert(text.clone()) {
                tracing::warn!("{text}");
            }
        }
    }
    let format = match st.openmetrics {
        true => Format::negotiate(
            req.headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok()),
        ),
        false => Format::Text,
    };
    let mut body = Vec::with_capacity(64 * 1024);
    format.encode(&families, &mut body);
    let gzip = accepts_gzip(req.headers());
    if gzip {
        use std::io::Write;
        let mut enc = GzEncoder::new(Vec::with_capacity(body.len() / 4), Compression::fast());
        if enc.write_all(&body).is_ok()
            && let Ok(z) = enc.finish()
        {
            body = z;
        }
    }
    drop(families);
    st.self_metrics.observe_scrape(started.elapsed());
    release_free_memory();
    let mut resp = Response::new(Body::from(body));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if gzip {
        resp.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_filters_and_gzip() {
        let (c, e) = collector_filter(Some("collect%5B%5D=cpu&collect[]=mem+info&x=1"));
        assert_eq!(c, ["cpu", "mem info"]);
        assert!(e.is_empty());
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("deflate, gzip;q=0.5"),
        );
        assert!(accepts_gzip(&h));
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("gzip;q=0"),
        );
        assert!(!accepts_gzip(&h));
    }
}
