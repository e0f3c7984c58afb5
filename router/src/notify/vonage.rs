//! SMS through Vonage's (Nexmo's) SMS API: one form POST per recipient. Vonage answers 200 even
//! when it refuses, so each `messages[].status` decides: 0 sent, 1 throttled and 5 internal
//! error retried, 4 credentials, anything else final.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value as J;

use super::http::{self, Http};
use super::sms::{self, Delivered, Fitted, Text};
use super::throttle::Rate;
use super::{BoxFuture, BuildCtx, Notification, Notifier, Outcome, Reason};
use crate::amconfig::HttpConfig;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVonage {
    pub send_resolved: Option<bool>,
    pub http_config: Option<HttpConfig>,
    pub api_url: Option<String>,
    pub api_key: String,
    pub api_secret: Option<String>,
    pub api_secret_file: Option<String>,
    pub from: String,
    pub to: Vec<String>,
    pub message: Option<String>,
    pub max_segments: Option<u32>,
    pub link: Option<bool>,
}

#[derive(Debug)]
pub struct Vonage {
    url: String,
    http: Http,
    key: String,
    secret: String,
    from: String,
    to: Vec<String>,
    text: Text,
    delivered: Arc<Delivered>,
}

impl Vonage {
    pub fn build(raw: &RawVonage, ctx: &mut BuildCtx<'_>) -> Result<Vonage, String> {
        let api = raw
            .api_url
            .clone()
            .unwrap_or_else(|| "https://rest.nexmo.com".into());
        http::check_url(&api, "api_url")?;
        sms::check_numbers(&raw.to, "to")?;
        Ok(Vonage {
            url: format!("{}/sms/json", api.trim_end_matches('/')),
            http: ctx.http(raw.http_config.as_ref())?,
            key: raw.api_key.clone(),
            secret: ctx.secret(
                raw.api_secret.as_deref(),
                raw.api_secret_file.as_deref(),
                "api_secret",
            )?,
            from: raw.from.clone(),
            to: raw.to.clone(),
            text: Text::build(raw.message.as_deref(), raw.max_segments, raw.link, ctx)?,
            delivered: Arc::default(),
        })
    }

    async fn send_one(&self, to: &str, sms: &Fitted) -> Outcome {
        let mut pairs = vec![
            ("api_key", self.key.as_str()),
            ("api_secret", self.secret.as_str()),
            ("from", self.from.as_str()),
            ("to", to.trim_start_matches('+')),
            ("text", sms.text.as_str()),
        ];
        if sms.ucs2 {
            pairs.push(("type", "unicode"));
        }
        let form: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        let req = self
            .http
            .request(reqwest::Method::POST, &self.url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form);
        let r = match http::send(req).await {
            Ok(r) => r,
            Err(o) => return o,
        };
        match http::classify(&r, None) {
            Outcome::Sent => {}
            o => return o,
        }
        let Some(messages) = r.json().and_then(|j| j.get("messages").cloned()) else {
            return Outcome::Failed(
                Reason::ClientError,
                format!("unexpected answer: {}", r.snippet()),
            );
        };
        let mut worst = Outcome::Sent;
        for m in messages.as_array().into_iter().flatten() {
            let status = m.get("status").and_then(J::as_str).unwrap_or("");
            let text = m.get("error-text").and_then(J::as_str).unwrap_or("");
            let msg = format!("Vonage status {status}: {text}");
            let o = match status {
                "0" => Outcome::Sent,
                "1" => Outcome::Retry(Reason::RateLimited, msg, None),
                "5" => Outcome::Retry(Reason::ServerError, msg, None),
                "4" | "8" => Outcome::Failed(Reason::Auth, msg),
                _ => Outcome::Failed(Reason::ClientError, msg),
            };
            if o != Outcome::Sent {
                worst = o;
            }
        }
        worst
    }

    async fn send(&self, n: &Notification<'_>) -> Outcome {
        let sms = match self.text.render(n) {
            Ok(s) => s,
            Err(o) => return o,
        };
        sms::per_recipient(&self.delivered, n, &self.to, |to| {
            let sms = &sms;
            async move { self.send_one(&to, sms).await }
        })
        .await
    }
}

impl Notifier for Vonage {
    fn notify<'a>(&'a self, n: &'a Notification<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(self.send(n))
    }

    fn destination(&self) -> Option<(String, Rate)> {
        sms::destination(&self.to)
    }
}
