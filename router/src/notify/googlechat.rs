//! Google Chat incoming webhooks: `{"text"}` (32,000 bytes at most), threaded per alert group
//! (`thread.threadKey` + `messageReplyOption`) so firing and resolved land together. The URL's
//! `token` is the credential. Values lose `<` `>`, so they cannot write `<users/all>` or links.

use serde::Deserialize;
use serde_json::{Value as J, json};

use super::http::{self, Http};
use super::template::Field;
use super::throttle::Rate;
use super::{BoxFuture, BuildCtx, Notification, Notifier, Outcome};
use crate::amconfig::HttpConfig;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGoogleChat {
    pub send_resolved: Option<bool>,
    pub http_config: Option<HttpConfig>,
    pub url: Option<String>,
    pub url_file: Option<String>,
    pub message: Option<String>,
    /// One thread per alert group (default true).
    pub threading: Option<bool>,
}

#[derive(Debug)]
pub struct GoogleChat {
    url: String,
    http: Http,
    message: Field,
    threading: bool,
}

/// The message limit in bytes, less room for the envelope.
pub const TEXT_MAX_BYTES: usize = 31_000;

impl GoogleChat {
    pub fn build(raw: &RawGoogleChat, ctx: &mut BuildCtx<'_>) -> Result<GoogleChat, String> {
        let url = ctx.secret_url(raw.url.as_deref(), raw.url_file.as_deref(), "url")?;
        Ok(GoogleChat {
            http: ctx.http(raw.http_config.as_ref())?,
            url,
            message: ctx.field(
                raw.message.as_deref(),
                r#"{{ template "googlechat.default.message" . }}"#,
                "message",
            )?,
            threading: raw.threading.unwrap_or(true),
        })
    }

    pub fn body(&self, n: &Notification<'_>) -> Result<J, Outcome> {
        let mut text = n.text(&self.message, &http::esc_gchat)?;
        let mut max = text.chars().count();
        while text.len() > TEXT_MAX_BYTES {
            max -= (text.len() - TEXT_MAX_BYTES).div_ceil(4).max(16);
            text = http::truncate(&text, max);
        }
        let mut body = json!({ "text": text });
        if self.threading {
            body["thread"] = json!({ "threadKey": http::short_hash(&[&n.data.group_key]) });
        }
        Ok(body)
    }

    async fn send(&self, n: &Notification<'_>) -> Outcome {
        let body = match self.body(n) {
            Ok(b) => b,
            Err(o) => return o,
        };
        let mut url = self.url.clone();
        if self.threading {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str("messageReplyOption=REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD");
        }
        let req = self
            .http
            .request(reqwest::Method::POST, &url)
            .header("Content-Type", "application/json; charset=UTF-8")
            .body(body.to_string());
        match http::send(req).await {
            Ok(r) => http::classify(&r, None),
            Err(o) => o,
        }
    }
}

impl Notifier for GoogleChat {
    fn notify<'a>(&'a self, n: &'a Notification<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(self.send(n))
    }

    /// 60 writes a minute per space.
    fn destination(&self) -> Option<(String, Rate)> {
        Some((
            http::destination_key("googlechat", &[&self.url]),
            Rate::new(1.0, 5.0),
        ))
    }
}
