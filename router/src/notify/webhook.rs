//! The webhook integration: Alertmanager's JSON (version 4) to a URL. 2xx is success; 5xx, 429
//! and transport errors are retried (429 after its `Retry-After`); any other status is final.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use super::{Data, Outcome};
use crate::amconfig::{HttpConfig, RawWebhook};
use crate::config::resolve_basic_auth_for;

#[derive(Debug)]
pub struct Webhook {
    url: Option<String>,
    url_file: Option<PathBuf>,
    max_alerts: usize,
    timeout: Option<Duration>,
    authorization: Option<String>,
    client: reqwest::Client,
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(flatten)]
    data: &'a Data,
    version: &'static str,
    #[serde(rename = "groupKey")]
    group_key: &'a str,
    #[serde(rename = "truncatedAlerts")]
    truncated_alerts: usize,
}

impl Webhook {
    pub fn build(
        raw: &RawWebhook,
        global: Option<&HttpConfig>,
        base: &Path,
        file: &str,
    ) -> Result<Webhook, String> {
        let url = raw.url.as_ref().map(|u| u.value.clone());
        if url.is_some() == raw.url_file.is_some() {
            return Err("one of url or url_file must be configured".into());
        }
        if let Some(u) = &url
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            return Err(format!("url {u:?} is not an http(s) URL"));
        }
        let http = raw
            .http_config
            .as_ref()
            .or(global)
            .cloned()
            .unwrap_or_default();
        if http.proxy_url.is_some() {
            return Err("http_config.proxy_url is not supported".into());
        }
        let authorization = authorization(&http, base, file)?;
        let client = match &http.tls_config {
            Some(tls) => {
                crate::server::client_with_tls(&crate::config::resolve_tls(tls.clone(), base))
                    .map_err(|e| format!("tls_config: {e:#}"))?
            }
            None => crate::server::plain_client(),
        };
        let mut errors = Vec::new();
        let timeout_ms = crate::config::dur(&raw.timeout, "timeout", 0, file, &mut errors);
        if let Some(e) = errors.pop() {
            return Err(e);
        }
        let timeout = (timeout_ms > 0).then(|| Duration::from_millis(timeout_ms as u64));
        Ok(Webhook {
            url,
            url_file: raw.url_file.as_ref().map(|f| base.join(f)),
            max_alerts: raw.max_alerts as usize,
            timeout,
            authorization,
            client,
        })
    }

    /// The request body, as Alertmanager 0.25 writes it (ending in a newline like Go's encoder).
    pub fn body(&self, data: &Data) -> Vec<u8> {
        let mut data_ref = std::borrow::Cow::Borrowed(data);
        let mut truncated = 0;
        if self.max_alerts > 0 && data.alerts.len() > self.max_alerts {
            truncated = data.alerts.len() - self.max_alerts;
            data_ref.to_mut().alerts.truncate(self.max_alerts);
        }
        let mut out = serde_json::to_vec(&Body {
            data: &data_ref,
            version: "4",
            group_key: &data.group_key,
            truncated_alerts: truncated,
        })
        .unwrap_or_default();
        out.push(b'\n');
        out
    }

    pub async fn notify(&self, data: &Data) -> Outcome {
        let url = match (&self.url, &self.url_file) {
            (Some(u), _) => u.clone(),
            (None, Some(f)) => match std::fs::read_to_string(f) {
                Ok(u) => u.trim().to_string(),
                Err(e) => return Outcome::Failed(format!("reading url_file {}: {e}", f.display())),
            },
            (None, None) => return Outcome::Failed("no url".into()),
        };
        let mut req = self
            .client
            .post(&url)
            .header("Content-Type", "application/json")
            .header(
                "User-Agent",
                concat!("Vigie-Router/", env!("CARGO_PKG_VERSION")),
            )
            .body(self.body(data));
        if let Some(a) = &self.authorization {
            req = req.header("Authorization", a);
        }
        if let Some(t) = self.timeout {
            req = req.timeout(t);
        }
        match req.send().await {
            Err(e) => Outcome::Retry(format!("{e}"), None),
            Ok(r) if r.status().is_success() => Outcome::Sent,
            Ok(r) => {
                let status = r.status();
                let after = r
                    .headers()
                    .get("Retry-After")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                let reason = format!("unexpected status code {}", status.as_u16());
                if status.is_server_error() {
                    Outcome::Retry(reason, None)
                } else if status.as_u16() == 429 {
                    Outcome::Retry(reason, after)
                } else {
                    Outcome::Failed(reason)
                }
            }
        }
    }
}

fn authorization(http: &HttpConfig, base: &Path, file: &str) -> Result<Option<String>, String> {
    let read = |f: &str| {
        std::fs::read_to_string(base.join(f))
            .map(|s| s.trim().to_string())
            .map_err(|e| format!("{f}: {e}"))
    };
    if let Some(b) = &http.basic_auth {
        let mut errors = Vec::new();
        let (u, p) = resolve_basic_auth_for(b, base, &mut errors, file);
        if let Some(e) = errors.pop() {
            return Err(e);
        }
        use base64::Engine as _;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
        return Ok(Some(format!("Basic {token}")));
    }
    if let Some(a) = &http.authorization {
        let kind = a.type_.clone().unwrap_or_else(|| "Bearer".into());
        let cred = match (&a.credentials, &a.credentials_file) {
            (Some(c), _) => c.clone(),
            (None, Some(f)) => read(f)?,
            (None, None) => String::new(),
        };
        return Ok(Some(format!("{kind} {cred}")));
    }
    match (&http.bearer_token, &http.bearer_token_file) {
        (Some(t), _) => Ok(Some(format!("Bearer {t}"))),
        (None, Some(f)) => Ok(Some(format!("Bearer {}", read(f)?))),
        (None, None) => Ok(None),
    }
}
