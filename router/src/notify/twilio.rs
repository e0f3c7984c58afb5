//! SMS through Twilio's Messages API: one form-encoded POST per recipient, HTTP Basic with the
//! account SID and auth token, `201` with the message resource on success. Twilio's error body
//! (`code`, `message`) is quoted in failures; 429 (code 20429) is retried after its wait.

use std::sync::Arc;

use serde::Deserialize;

use super::http::{self, Http};
use super::sms::{self, Delivered, Fitted, Text};
use super::throttle::Rate;
use super::{BoxFuture, BuildCtx, Notification, Notifier, Outcome};
use crate::amconfig::HttpConfig;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTwilio {
    pub send_resolved: Option<bool>,
    pub http_config: Option<HttpConfig>,
    pub api_url: Option<String>,
    pub account_sid: String,
    pub auth_token: Option<String>,
    pub auth_token_file: Option<String>,
    pub from: Option<String>,
    pub messaging_service_sid: Option<String>,
    pub to: Vec<String>,
    pub message: Option<String>,
    pub max_segments: Option<u32>,
    pub link: Option<bool>,
    /// Seconds after which Twilio drops an undelivered page.
    pub validity_period: Option<u32>,
}

#[derive(Debug)]
pub struct Twilio {
    url: String,
    http: Http,
    sid: String,
    token: String,
    sender: (&'static str, String),
    to: Vec<String>,
    text: Text,
    validity: Option<u32>,
    delivered: Arc<Delivered>,
}

impl Twilio {
    pub fn build(raw: &RawTwilio, ctx: &mut BuildCtx<'_>) -> Result<Twilio, String> {
        let api = raw
            .api_url
            .clone()
            .unwrap_or_else(|| "https://api.twilio.com".into());
        http::check_url(&api, "api_url")?;
        if !raw.account_sid.starts_with("AC") {
            return Err(format!(
                "account_sid: {:?} does not start with AC",
                raw.account_sid
            ));
        }
        let sender = match (&raw.from, &raw.messaging_service_sid) {
            (Some(f), None) => ("From", f.clone()),
            (None, Some(m)) => ("MessagingServiceSid", m.clone()),
            _ => return Err("exactly one of from and messaging_service_sid is required".into()),
        };
        sms::check_numbers(&raw.to, "to")?;
        Ok(Twilio {
            url: format!(
                "{}/2010-04-01/Accounts/{}/Messages.json",
                api.trim_end_matches('/'),
                raw.account_sid
            ),
            http: ctx.http(raw.http_config.as_ref())?,
            sid: raw.account_sid.clone(),
            token: ctx.secret(
                raw.auth_token.as_deref(),
                raw.auth_token_file.as_deref(),
                "auth_token",
            )?,
            sender,
            to: raw.to.clone(),
            text: Text::build(raw.message.as_deref(), raw.max_segments, raw.link, ctx)?,
            validity: raw.validity_period,
            delivered: Arc::default(),
        })
    }

    async fn send_one(&self, to: &str, sms: &Fitted) -> Outcome {
        let mut form = vec![
            ("To", to.to_string()),
            (self.sender.0, self.sender.1.clone()),
            ("Body", sms.text.clone()),
        ];
        if let Some(v) = self.validity {
            form.push(("ValidityPeriod", v.to_string()));
        }
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let req = self
            .http
            .request(reqwest::Method::POST, &self.url)
            .basic_auth(&self.sid, Some(&self.token))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body);
        let r = match http::send(req).await {
            Ok(r) => r,
            Err(o) => return o,
        };
        match http::classify(&r, None) {
            Outcome::Failed(reason, _) => Outcome::Failed(reason, twilio_error(&r)),
            Outcome::Retry(reason, _, w) => Outcome::Retry(reason, twilio_error(&r), w),
            o => o,
        }
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

fn twilio_error(r: &http::Response) -> String {
    match r.json() {
        Some(j) => format!(
            "status {}: Twilio error {}: {}",
            r.status,
            j.get("code").map(|c| c.to_string()).unwrap_or_default(),
            j.get("message").and_then(|m| m.as_str()).unwrap_or("")
        ),
        None => format!("status {}: {}", r.status, r.snippet()),
    }
}

impl Notifier for Twilio {
    fn notify<'a>(&'a self, n: &'a Notification<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(self.send(n))
    }

    fn destination(&self) -> Option<(String, Rate)> {
        sms::destination(&self.to)
    }
}
