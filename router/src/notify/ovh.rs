//! SMS through OVHcloud's API (`POST /sms/{serviceName}/jobs`), signed as OVH requires: the
//! application key and consumer key in headers, a timestamp corrected by the server's clock
//! (`GET /auth/time`, cached an hour) and `$1$` + SHA-1 of secret, consumer key, method, full
//! URL, exact body and timestamp joined by `+`. A 200 listing `invalidReceivers` is partial.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Value as J, json};

use super::http::{self, Http};
use super::sms::{self, Text};
use super::throttle::Rate;
use super::{BoxFuture, BuildCtx, Notification, Notifier, Outcome, Reason};
use crate::amconfig::HttpConfig;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOvh {
    pub send_resolved: Option<bool>,
    pub http_config: Option<HttpConfig>,
    /// `ovh-eu` (default), `ovh-ca`, `ovh-us`, or a base URL ending in `/1.0`.
    pub endpoint: Option<String>,
    pub application_key: String,
    pub application_secret: Option<String>,
    pub application_secret_file: Option<String>,
    pub consumer_key: Option<String>,
    pub consumer_key_file: Option<String>,
    pub service_name: String,
    /// A validated sender name; without it OVH's short number sends (and can take replies).
    pub sender: Option<String>,
    pub to: Vec<String>,
    pub message: Option<String>,
    pub max_segments: Option<u32>,
    pub link: Option<bool>,
    /// `high` (default), `medium`, `low`, `veryLow`.
    pub priority: Option<String>,
    /// Minutes after which OVH drops an undelivered page.
    pub validity_period: Option<u32>,
}

#[derive(Debug)]
pub struct Ovh {
    base: String,
    http: Http,
    ak: String,
    secret: String,
    ck: String,
    service: String,
    sender: Option<String>,
    to: Vec<String>,
    text: Text,
    priority: String,
    validity: Option<u32>,
    /// Server time minus local time, and when it was measured.
    delta: Mutex<Option<(i64, Instant)>>,
}

const DELTA_TTL: Duration = Duration::from_secs(3600);

impl Ovh {
    pub fn build(raw: &RawOvh, ctx: &mut BuildCtx<'_>) -> Result<Ovh, String> {
        let base = match raw.endpoint.as_deref().unwrap_or("ovh-eu") {
            "ovh-eu" => "https://eu.api.ovh.com/1.0".to_string(),
            "ovh-ca" => "https://ca.api.ovh.com/1.0".to_string(),
            "ovh-us" => "https://api.us.ovhcloud.com/1.0".to_string(),
            u => {
                http::check_url(u, "endpoint")?;
                u.trim_end_matches('/').to_string()
            }
        };
        let priority = raw.priority.clone().unwrap_or_else(|| "high".into());
        if !matches!(priority.as_str(), "high" | "medium" | "low" | "veryLow") {
            return Err(format!(
                "priority: {priority:?} is not one of high, medium, low, veryLow"
            ));
        }
        if raw.service_name.is_empty() || raw.service_name.contains('/') {
            return Err(format!(
                "service_name: {:?} is not an SMS account name",
                raw.service_name
            ));
        }
        sms::check_numbers(&raw.to, "to")?;
        Ok(Ovh {
            base,
            http: ctx.http(raw.http_config.as_ref())?,
            ak: raw.application_key.clone(),
            secret: ctx.secret(
                raw.application_secret.as_deref(),
                raw.application_secret_file.as_deref(),
                "application_secret",
            )?,
            ck: ctx.secret(
                raw.consumer_key.as_deref(),
                raw.consumer_key_file.as_deref(),
                "consumer_key",
            )?,
            service: raw.service_name.clone(),
            sender: raw.sender.clone(),
            to: raw.to.clone(),
            text: Text::build(raw.message.as_deref(), raw.max_segments, raw.link, ctx)?,
            priority,
            validity: raw.validity_period,
            delta: Mutex::new(None),
        })
    }

    async fn server_delta(&self) -> Result<i64, Outcome> {
        if let Some((d, at)) = *self.delta.lock().unwrap_or_else(|p| p.into_inner())
            && at.elapsed() < DELTA_TTL
        {
            return Ok(d);
        }
        let req = self
            .http
            .request(reqwest::Method::GET, &format!("{}/auth/time", self.base));
        let r = http::send(req).await?;
        if r.status != 200 {
            return Err(Outcome::Retry(
                Reason::ServerError,
                format!("GET /auth/time: status {}", r.status),
                None,
            ));
        }
        let server: i64 = r.body.trim().parse().map_err(|_| {
            Outcome::Retry(
                Reason::ServerError,
                format!("GET /auth/time: {:?} is not a time", r.snippet()),
                None,
            )
        })?;
        let d = server - jiff::Timestamp::now().as_second();
        *self.delta.lock().unwrap_or_else(|p| p.into_inner()) = Some((d, Instant::now()));
        Ok(d)
    }

    pub fn body(&self, text: &str, ucs2: bool, to: &[String]) -> String {
        let mut b = json!({
            "message": text,
            "receivers": to,
            "noStopClause": true,
            "priority": self.priority,
            "coding": if ucs2 { "8bit" } else { "7bit" },
            "charset": "UTF-8",
        });
        match &self.sender {
            Some(s) => b["sender"] = J::String(s.clone()),
            None => b["senderForResponse"] = J::Bool(true),
        }
        if let Some(v) = self.validity {
            b["validityPeriod"] = J::from(v);
        }
        b.to_string()
    }

    async fn send(&self, n: &Notification<'_>) -> Outcome {
        let sms = match self.text.render(n) {
            Ok(s) => s,
            Err(o) => return o,
        };
        let delta = match self.server_delta().await {
            Ok(d) => d,
            Err(o) => return o,
        };
        let url = format!("{}/sms/{}/jobs", self.base, self.service);
        let to = match sms::recipients(n, &self.to) {
            Ok(t) => t,
            Err(o) => return o,
        };
        let body = self.body(&sms.text, sms.ucs2, &to);
        let ts = jiff::Timestamp::now().as_second() + delta;
        let sig = signature(&self.secret, &self.ck, "POST", &url, &body, ts);
        let req = self
            .http
            .request(reqwest::Method::POST, &url)
            .header("X-Ovh-Application", &self.ak)
            .header("X-Ovh-Consumer", &self.ck)
            .header("X-Ovh-Timestamp", ts.to_string())
            .header("X-Ovh-Signature", sig)
            .header("Content-Type", "application/json")
            .body(body);
        let r = match http::send(req).await {
            Ok(r) => r,
            Err(o) => return o,
        };
        let j = r.json();
        let detail = || {
            let code = j
                .as_ref()
                .and_then(|j| j.get("errorCode"))
                .and_then(J::as_str)
                .unwrap_or("");
            let msg = j
                .as_ref()
                .and_then(|j| j.get("message"))
                .and_then(J::as_str)
                .unwrap_or("");
            format!("status {}: {code} {msg}", r.status)
        };
        if r.status == 460 {
            return Outcome::Failed(
                Reason::ClientError,
                format!("{} (service expired)", detail()),
            );
        }
        match http::classify(&r, None) {
            Outcome::Sent => {
                let list = |k: &str| -> Vec<String> {
                    j.as_ref()
                        .and_then(|j| j.get(k))
                        .and_then(J::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(|v| v.as_str().map(String::from))
                                .collect()
                        })
                        .unwrap_or_default()
                };
                let invalid = list("invalidReceivers");
                if invalid.is_empty() {
                    Outcome::Sent
                } else if list("validReceivers").is_empty() {
                    Outcome::Failed(
                        Reason::ClientError,
                        format!("invalid receivers: {}", invalid.join(", ")),
                    )
                } else {
                    Outcome::Partial(format!("invalid receivers: {}", invalid.join(", ")))
                }
            }
            Outcome::Failed(reason, _) => {
                if reason == Reason::Auth {
                    // A skewed clock shows as an auth error: measure it again next time.
                    *self.delta.lock().unwrap_or_else(|p| p.into_inner()) = None;
                }
                Outcome::Failed(reason, detail())
            }
            Outcome::Retry(reason, _, w) => Outcome::Retry(reason, detail(), w),
            o => o,
        }
    }
}

/// OVH's request signature.
pub fn signature(secret: &str, ck: &str, method: &str, url: &str, body: &str, ts: i64) -> String {
    let pre = format!("{secret}+{ck}+{method}+{url}+{body}+{ts}");
    let d = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, pre.as_bytes());
    let hex: String = d.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("$1${hex}")
}

impl Notifier for Ovh {
    fn notify<'a>(&'a self, n: &'a Notification<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(self.send(n))
    }

    fn destination(&self) -> Option<(String, Rate)> {
        sms::destination(&self.to)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn signature_matches_the_reference_vector() {
        let body = r#"{"message":"[FIRING] db01 disk 95%","noStopClause":true,"receivers":["+33600000000"],"senderForResponse":true}"#;
        assert_eq!(
            super::signature(
                "EXAMPLE_APP_SECRET",
                "EXAMPLE_CONSUMER_KEY",
                "POST",
                "https://eu.api.ovh.com/1.0/sms/sms-ab12345-1/jobs",
                body,
                1_764_000_000
            ),
            "$1$577925eff7fb9ca7c6d34dde9957d2b727d66cbb"
        );
        assert_eq!(
            super::signature(
                "EXAMPLE_APP_SECRET",
                "EXAMPLE_CONSUMER_KEY",
                "GET",
                "https://eu.api.ovh.com/1.0/sms",
                "",
                1_764_000_000
            ),
            "$1$5487669b17c43bb15812bc86160ad3f058cf2a99"
        );
    }
}
