//! One sender per configured Loki client: takes records from its spool in order, pushes them,
//! and acknowledges them only after a 2xx. 429, 5xx, connection errors and auth or routing
//! errors (401/403/404) are retried for as long as it takes, with exponential back-off, jitter
//! and `Retry-After`; a batch is never given up because retries ran out. Any other 4xx is
//! split in halves until the entries Loki refuses are isolated; those alone are dropped,
//! counted and logged.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use rustls_pki_types::pem::PemObject;

use super::checkpoint::Checkpointer;
use super::config::ClientConfig;
use super::push;
use super::spool::{Encoding, Record, Spool};
use super::stats::Stats;
use crate::cli::parse_duration;

pub struct Client {
    pub name: String,
    url: String,
    http: reqwest::Client,
    auth: Option<String>,
    headers: Vec<(String, String)>,
    timeout: Duration,
    min_backoff: Duration,
    max_backoff: Duration,
    pub spool: Arc<Spool>,
    stats: Arc<Stats>,
    checkpointer: Arc<Checkpointer>,
    stop: Arc<AtomicBool>,
}

enum Outcome {
    Delivered,
    Stopped,
}

/// A stable spool/positions name for a client: its index and URL.
pub fn client_name(idx: usize, url: &str) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in url.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("client-{idx}-{:08x}", h as u32)
}

fn system_roots(roots: &mut rustls::RootCertStore) {
    for p in [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/ssl/cert.pem",
    ] {
        if let Ok(pem) = std::fs::read(p) {
            for cert in rustls_pki_types::CertificateDer::pem_slice_iter(&pem).flatten() {
                let _ = roots.add(cert);
            }
            return;
        }
    }
}

fn http_client(c: &ClientConfig, timeout: Duration) -> anyhow::Result<reqwest::Client> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    let tls = c.tls_config.clone().unwrap_or_default();
    match &tls.ca_file {
        Some(ca) => {
            let pem = std::fs::read(ca).with_context(|| format!("tls_config.ca_file {ca}"))?;
            for cert in rustls_pki_types::CertificateDer::pem_slice_iter(&pem) {
                roots
                    .add(cert.with_context(|| format!("tls_config.ca_file {ca}: bad certificate"))?)
                    .with_context(|| format!("tls_config.ca_file {ca}"))?;
            }
        }
        None => system_roots(&mut roots),
    }
    let roots = Arc::new(roots);
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS versions")?;
    let builder = match &tls.server_name {
        // Verify the certificate against this name instead of the URL's host.
        Some(name) => {
            let name = rustls_pki_types::ServerName::try_from(name.clone())
                .with_context(|| format!("tls_config.server_name {name:?}"))?;
            let inner =
                rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider)
                    .build()
                    .context("certificate verifier")?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(crate::logs::tlsverify::AsName {
                    inner,
                    name,
                }))
        }
        None => builder.with_root_certificates(roots),
    };
    let mut cfg = match (&tls.cert_file, &tls.key_file) {
        (Some(cf), Some(kf)) => {
            let certs = rustls_pki_types::CertificateDer::pem_file_iter(cf)
                .with_context(|| format!("tls_config.cert_file {cf}"))?
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("tls_config.cert_file {cf}"))?;
            let key = rustls_pki_types::PrivateKeyDer::from_pem_file(kf)
                .with_context(|| format!("tls_config.key_file {kf}"))?;
            builder
                .with_client_auth_cert(certs, key)
                .context("client certificate")?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => anyhow::bail!("tls_config: cert_file and key_file go together"),
    };
    if tls.insecure_skip_verify {
        cfg.dangerous()
            .set_certificate_verifier(Arc::new(crate::logs::tlsverify::NoVerify));
    }
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(cfg)
        .timeout(timeout)
        .pool_idle_timeout(Duration::from_secs(90))
        .user_agent(concat!("vigie-agent/", env!("CARGO_PKG_VERSION")))
        .build()?)
}

fn secret_file(path: &str, what: &str) -> anyhow::Result<String> {
    Ok(std::fs::read_to_string(path)
        .with_context(|| format!("{what} {path}"))?
        .trim()
        .to_string())
}

impl Client {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: String,
        c: &ClientConfig,
        spool: Arc<Spool>,
        stats: Arc<Stats>,
        checkpointer: Arc<Checkpointer>,
        stop: Arc<AtomicBool>,
    ) -> anyhow::Result<Client> {
        let timeout = c
            .timeout
            .as_deref()
            .and_then(|t| parse_duration(t).ok())
            .unwrap_or(Duration::from_secs(10));
        let backoff = c.backoff_config.clone().unwrap_or_default();
        let d = |v: &Option<String>, def: u64| {
            v.as_deref()
                .and_then(|t| parse_duration(t).ok())
                .unwrap_or(Duration::from_millis(def))
        };
        let auth = if let Some(b) = &c.basic_auth {
            let pass = match (&b.password, &b.password_file) {
                (_, Some(f)) => secret_file(f, "basic_auth.password_file")?,
                (Some(p), None) => p.clone(),
                (None, None) => String::new(),
            };
            use base64::Engine;
            Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:{pass}", b.username.as_deref().unwrap_or("")))
            ))
        } else if let Some(f) = &c.bearer_token_file {
            Some(format!("Bearer {}", secret_file(f, "bearer_token_file")?))
        } else {
            c.bearer_token.as_ref().map(|t| format!("Bearer {t}"))
        };
        Ok(Client {
            name,
            url: c.url.clone(),
            http: http_client(c, timeout)?,
            auth,
            headers: c
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            timeout,
            min_backoff: d(&backoff.min_period, 500),
            max_backoff: d(&backoff.max_period, 300_000),
            spool,
            stats,
            checkpointer,
            stop,
        })
    }

    /// The sender thread: runs until stopped, then gives in-flight work `grace` to finish.
    pub fn run(self, grace: Duration) {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                tracing::error!(client = %self.url, error = %e, "cannot start the sender");
                return;
            }
        };
        let mut last = self.checkpointer.acked(&self.name);
        let mut stopping_since: Option<Instant> = None;
        loop {
            if self.stop.load(Ordering::Relaxed) {
                let since = *stopping_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= grace {
                    break;
                }
            }
            let wait = if stopping_since.is_some() {
                Duration::ZERO
            } else {
                Duration::from_millis(250)
            };
            let Some(rec) = self.spool.next_after(last, wait) else {
                if stopping_since.is_some() {
                    break;
                }
                self.checkpoint(false);
                continue;
            };
            if rec.lines > 0 {
                let deadline = stopping_since.map(|s| s + grace);
                match rt.block_on(self.deliver(&rec, deadline)) {
                    Outcome::Delivered => {}
                    Outcome::Stopped => break,
                }
                self.stats
                    .lines_sent
                    .fetch_add(u64::from(rec.lines), Ordering::Relaxed);
                self.stats
                    .bytes_sent
                    .fetch_add(rec.bytes, Ordering::Relaxed);
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default();
                self.stats
                    .last_push_ms
                    .store(now.as_millis() as i64, Ordering::Relaxed);
            }
            last = rec.seq;
            self.spool.ack(rec.seq);
            self.checkpointer.ack(&self.name, rec.seq);
            self.checkpoint(false);
        }
        self.checkpoint(true);
    }

    /// Saves positions when due, then frees spool segments they cover.
    fn checkpoint(&self, force: bool) {
        if let Some(persisted) = self.checkpointer.persist(force)
            && let Some(seq) = persisted.get(&self.name)
        {
            self.spool.gc(*seq);
        }
    }

    fn stopping(&self, deadline: Option<Instant>) -> bool {
        self.stop.load(Ordering::Relaxed) && deadline.is_none_or(|d| Instant::now() >= d)
    }

    async fn deliver(&self, rec: &Record, deadline: Option<Instant>) -> Outcome {
        let mut backoff = self.min_backoff;
        loop {
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let result = self.post(rec).await;
            let wait = match result {
                Ok((status, _, _)) if (200..300).contains(&status) => return Outcome::Delivered,
                Ok((status, retry_after, body))
                    if status == 429
                        || status >= 500
                        || matches!(status, 401 | 403 | 404 | 407 | 408) =>
                {
                    tracing::warn!(client = %self.url, status, body = %body.trim(), "push failed; retrying");
                    retry_after
                }
                Ok((status, _, body)) => {
                    return Box::pin(self.rejected(rec, status, body, deadline)).await;
                }
                Err(e) => {
                    tracing::warn!(client = %self.url, error = %e, "push failed; retrying");
                    None
                }
            };
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            let jittered = backoff.mul_f64(1.0 + fastrand_unit());
            let sleep = wait.unwrap_or(jittered).min(self.max_backoff);
            backoff = (backoff * 2).min(self.max_backoff);
            let until = Instant::now() + sleep;
            while Instant::now() < until {
                if self.stopping(deadline) || self.stop.load(Ordering::Relaxed) {
                    // Unacknowledged: it stays in the spool for the next start.
                    return Outcome::Stopped;
                }
                tokio::time::sleep((until - Instant::now()).min(Duration::from_millis(100))).await;
            }
        }
    }

    /// A permanent rejection: isolate the refused entries by halving.
    async fn rejected(
        &self,
        rec: &Record,
        status: u16,
        body: String,
        deadline: Option<Instant>,
    ) -> Outcome {
        let streams = match push::decode(&rec.body, rec.encoding) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(client = %self.url, error = %e, "cannot decode a rejected batch; dropped");
                self.stats
                    .drop_lines("undecodable", u64::from(rec.lines), rec.bytes);
                return Outcome::Delivered;
            }
        };
        let n: usize = streams.iter().map(|s| s.entries.len()).sum();
        if n <= 1 || status == 422 {
            let reason = match status {
                413 => "too_large",
                422 => "empty",
                _ => "rejected",
            };
            for s in &streams {
                for e in &s.entries {
                    tracing::warn!(client = %self.url, status, stream = %s.labels, ts = e.ts, reason = %body.trim(), "Loki refused an entry; dropped");
                }
            }
            self.stats.drop_lines(
                reason,
                n as u64,
                streams
                    .iter()
                    .flat_map(|s| &s.entries)
                    .map(|e| e.line.len() as u64)
                    .sum(),
            );
            return Outcome::Delivered;
        }
        let (left, right) = push::halves(streams);
        for half in [left, right] {
            let lines: usize = half.iter().map(|s| s.entries.len()).sum();
            if lines == 0 {
                continue;
            }
            let sub = Record {
                seq: rec.seq,
                encoding: rec.encoding,
                tenant: rec.tenant.clone(),
                lines: lines as u32,
                bytes: half
                    .iter()
                    .flat_map(|s| &s.entries)
                    .map(|e| e.line.len() as u64)
                    .sum(),
                checkpoints: Vec::new(),
                body: push::encode(&half, rec.encoding).into(),
            };
            if let Outcome::Stopped = Box::pin(self.deliver(&sub, deadline)).await {
                return Outcome::Stopped;
            }
        }
        Outcome::Delivered
    }

    async fn post(&self, rec: &Record) -> Result<(u16, Option<Duration>, String), reqwest::Error> {
        let mut req = self
            .http
            .post(&self.url)
            .timeout(self.timeout)
            .header(
                reqwest::header::CONTENT_TYPE,
                match rec.encoding {
                    Encoding::Protobuf => "application/x-protobuf",
                    Encoding::Json => "application/json",
                },
            )
            .body(rec.body.clone());
        if let Some(t) = &rec.tenant {
            req = req.header("X-Scope-OrgID", t);
        }
        if let Some(a) = &self.auth {
            req = req.header(reqwest::header::AUTHORIZATION, a);
        }
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let body = if (200..300).contains(&status) {
            String::new()
        } else {
            let b = resp.text().await.unwrap_or_default();
            b.chars().take(1024).collect()
        };
        Ok((status, retry_after, body))
    }
}

/// `Retry-After`: seconds or an HTTP date.
fn parse_retry_after(v: &str) -> Option<Duration> {
    if let Ok(s) = v.trim().parse::<f64>() {
        return (s >= 0.0).then(|| Duration::from_secs_f64(s));
    }
    let t = jiff::fmt::rfc2822::parse(v.trim()).ok()?;
    let secs = t.timestamp().as_second() - jiff::Timestamp::now().as_second();
    Some(Duration::from_secs(secs.max(0) as u64))
}

/// A cheap uniform number in [0, 1) for back-off jitter.
fn fastrand_unit() -> f64 {
    let n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    let mut x = u64::from(n) ^ 0x9E37_79B9_7F4A_7C15;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT").is_some());
        assert_eq!(parse_retry_after("soon"), None);
        assert_ne!(client_name(0, "http://a"), client_name(1, "http://a"));
    }

    #[test]
    fn tls_settings_are_checked_when_the_client_is_built() {
        let mut c = ClientConfig {
            url: "https://loki.example/loki/api/v1/push".into(),
            ..ClientConfig::default()
        };
        c.tls_config = Some(crate::logs::config::TlsConfig {
            server_name: Some("loki.internal".into()),
            ..Default::default()
        });
        assert!(http_client(&c, Duration::from_secs(1)).is_ok());
        c.tls_config = Some(crate::logs::config::TlsConfig {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..Default::default()
        });
        let e = http_client(&c, Duration::from_secs(1)).expect_err("missing CA");
        assert!(
            format!("{e:#}").contains("tls_config.ca_file /nonexistent/ca.pem"),
            "{e:#}"
        );
        c.tls_config = Some(crate::logs::config::TlsConfig {
            cert_file: Some("/x.pem".into()),
            ..Default::default()
        });
        assert!(http_client(&c, Duration::from_secs(1)).is_err());
    }
}
