//! `--web.config.file` is re-read when it (or a certificate or key it names) changes, as the
//! exporter toolkit does, so passwords and certificates rotate without a restart. The check is
//! driven by traffic (a request, a new TLS connection before its handshake), at most once a
//! second: an idle agent does nothing. A reload that fails keeps the previous settings and logs why.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use axum::http::{HeaderName, HeaderValue};

use super::BasicAuth;
use super::config::WebConfig;

/// What the web config decides at one moment.
#[derive(Default)]
pub struct WebSettings {
    pub basic_auth: Option<BasicAuth>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl WebSettings {
    /// The settings in `path`, and every file they depend on (the config itself, certificate,
    /// key and client CA), which is what a reload watches.
    pub fn load(path: &Path) -> anyhow::Result<(WebSettings, Vec<PathBuf>)> {
        let web = WebConfig::load(path)?;
        let mut files = vec![path.to_path_buf()];
        if let Some(tls) = &web.tls_server_config {
            files.extend(
                [&tls.cert_file, &tls.key_file, &tls.client_ca_file]
                    .into_iter()
                    .flatten()
                    .map(|f| web.resolve(f)),
            );
        }
        Ok((WebSettings::from_config(&web)?, files))
    }

    pub fn from_config(web: &WebConfig) -> anyhow::Result<WebSettings> {
        let mut headers = Vec::new();
        if let Some(http) = &web.http_server_config {
            for (k, v) in &http.headers {
                let name = HeaderName::try_from(k.as_str())
                    .with_context(|| format!("http_server_config.headers: invalid name {k:?}"))?;
                let value = HeaderValue::try_from(v.as_str())
                    .with_context(|| format!("http_server_config.headers.{k}: invalid value"))?;
                headers.push((name, value));
            }
        }
        Ok(WebSettings {
            basic_auth: (!web.basic_auth_users.is_empty())
                .then(|| BasicAuth::new(web.basic_auth_users.clone())),
            headers,
            tls: super::tls::server_config(web)?,
        })
    }
}

type Stamp = Vec<Option<(SystemTime, u64)>>;

/// What the watched files looked like at the last look, and when that was.
struct Seen {
    at: Instant,
    files: Vec<PathBuf>,
    stamp: Stamp,
}

/// The current settings and how to notice that they changed.
pub struct WebRuntime {
    path: Option<PathBuf>,
    every: Duration,
    current: RwLock<Arc<WebSettings>>,
    seen: Mutex<Seen>,
}

fn stamp(files: &[PathBuf]) -> Stamp {
    files
        .iter()
        .map(|f| {
            std::fs::metadata(f)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len())))
        })
        .collect()
}

impl WebRuntime {
    /// Settings fixed for the life of the process (no config file).
    pub fn fixed(settings: WebSettings) -> WebRuntime {
        WebRuntime {
            path: None,
            every: Duration::MAX,
            current: RwLock::new(Arc::new(settings)),
            seen: Mutex::new(Seen {
                at: Instant::now(),
                files: Vec::new(),
                stamp: Vec::new(),
            }),
        }
    }

    /// Loads `path` now (an error here stops start-up) and re-reads it when it changes.
    pub fn watch(path: &Path, every: Duration) -> anyhow::Result<WebRuntime> {
        let (settings, files) = WebSettings::load(path)?;
        let stamp = stamp(&files);
        Ok(WebRuntime {
            path: Some(path.to_path_buf()),
            every,
            current: RwLock::new(Arc::new(settings)),
            seen: Mutex::new(Seen {
                at: Instant::now(),
                files,
                stamp,
            }),
        })
    }

    /// The settings in force, reloaded first if the files changed since the last look.
    pub fn current(&self) -> Arc<WebSettings> {
        if let Some(path) = &self.path {
            self.refresh(path);
        }
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn refresh(&self, path: &Path) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.at.elapsed() < self.every {
            return;
        }
        seen.at = Instant::now();
        let now = stamp(&seen.files);
        if now == seen.stamp {
            return;
        }
        seen.stamp = now;
        let had_tls = self
            .current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .tls
            .is_some();
        match WebSettings::load(path) {
            Ok((new, _)) if new.tls.is_some() != had_tls => {
                tracing::error!(file = %path.display(), "turning TLS on or off needs a restart; keeping the previous web settings");
            }
            Ok((new, files)) => {
                // The new config may name other certificate files: watch those from now on.
                seen.stamp = stamp(&files);
                seen.files = files;
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(new);
                tracing::info!(file = %path.display(), "web configuration reloaded");
            }
            Err(e) => {
                tracing::error!(file = %path.display(), "web configuration not reloaded, previous one kept: {e:#}")
            }
        }
    }
}
