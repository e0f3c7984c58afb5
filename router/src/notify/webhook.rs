//! The webhook integration: Alertmanager's JSON (version 4) to a URL. 2xx is success; 5xx, 429
//! and transport errors are retried (429 after its `Retry-After`); any other status is final.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use super::http::{self, Http};
use super::{BoxFuture, Data, Notification, Notifier, Outcome, Reason};
use crate::amconfig::{HttpConfig, RawWebhook};

#[derive(Debug)]
pub struct Webhook {
    url: Option<String>,
    url_file: Option<PathBuf>,
    max_alerts: usize,
    http: Http,
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
    /// On an on-call page only: who is paged and the link that acknowledges.
    #[serde(rename = "vigieContact", skip_serializing_if = "Option::is_none")]
    contact: Option<serde_json::Value>,
    #[serde(rename = "vigieAckURL", skip_serializing_if = "Option::is_none")]
    ack_url: Option<&'a str>,
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
        if let Some(u) = &url {
            http::check_url(u, "url")?;
        }
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
            http: Http::build(raw.http_config.as_ref(), global, base, file)?.with_timeout(timeout),
        })
    }

    /// The request body, as Alertmanager 0.25 writes it (ending in a newline like Go's encoder).
    pub fn body(&self, data: &Data) -> Vec<u8> {
        payload(data, self.max_alerts, None, None)
    }

    async fn send(&self, n: &Notification<'_>) -> Outcome {
        let data = n.data;
        let url = match (&self.url, &self.url_file) {
            (Some(u), _) => u.clone(),
            (None, Some(f)) => match std::fs::read_to_string(f) {
                Ok(u) => u.trim().to_string(),
                Err(e) => {
                    return Outcome::Failed(
                        Reason::Render,
                        format!("reading url_file {}: {e}", f.display()),
                    );
                }
            },
            (None, None) => return Outcome::Failed(Reason::Render, "no url".into()),
        };
        let req = self
            .http
            .request(reqwest::Method::POST, &url)
            .header("Content-Type", "application/json")
            .body(payload(data, self.max_alerts, n.contact, n.ack_url));
        match http::send(req).await {
            Ok(r) => http::classify(&r, None),
            Err(o) => o,
        }
    }
}

impl Notifier for Webhook {
    fn notify<'a>(&'a self, n: &'a Notification<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(self.send(n))
    }
}

/// Alertmanager's webhook JSON for `data`, at most `max_alerts` alerts (0: all), newline-ended;
/// on an on-call page, who is paged and the acknowledgement link.
pub fn payload(
    data: &Data,
    max_alerts: usize,
    contact: Option<&crate::oncall::Contact>,
    ack_url: Option<&str>,
) -> Vec<u8> {
    let mut data_ref = std::borrow::Cow::Borrowed(data);
    let mut truncated = 0;
    if max_alerts > 0 && data.alerts.len() > max_alerts {
        truncated = data.alerts.len() - max_alerts;
        data_ref.to_mut().alerts.truncate(max_alerts);
    }
    let mut out = serde_json::to_vec(&Body {
        data: &data_ref,
        version: "4",
        group_key: &data.group_key,
        truncated_alerts: truncated,
        contact: contact.map(|c| {
            serde_json::json!({"name": c.name, "phone": c.phone, "email": c.email, "chat": c.chat})
        }),
        ack_url,
    })
    .unwrap_or_default();
    out.push(b'\n');
    out
}
