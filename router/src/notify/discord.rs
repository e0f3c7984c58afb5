//! Discord webhooks with Alertmanager's `discord_configs` keys: an embed (title 256,
//! description 4,096 characters) and optional content (2,000), `allowed_mentions` empty so no
//! label can ping `@everyone`. A 429's wait is the header, else the body's `retry_after`.

use serde::Deserialize;
use serde_json::{Value as J, json};

use super::http::{self, Http};
use super::template::Field;
use super::throttle::Rate;
use super::{BoxFuture, BuildCtx, Notification, Notifier, Outcome};
use crate::amconfig::HttpConfig;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDiscord {
    pub send_resolved: Option<bool>,
    pub http_config: Option<HttpConfig>,
    pub webhook_url: Option<String>,
    pub webhook_url_file: Option<String>,
    pub title: Option<String>,
    pub message: Option<String>,
    pub content: Option<String>,
    pub username: Option<String>,
    pub avatar_url: Option<String>,
}

#[derive(Debug)]
pub struct Discord {
    url: String,
    http: Http,
    title: Field,
    message: Field,
    content: Field,
    username: Option<String>,
    avatar_url: Option<String>,
}

pub const TITLE_MAX: usize = 256;
pub const DESCRIPTION_MAX: usize = 4096;
pub const CONTENT_MAX: usize = 2000;

const RED: u32 = 0x992D22;
const GREEN: u32 = 0x2ECC71;

impl Discord {
    pub fn build(raw: &RawDiscord, ctx: &mut BuildCtx<'_>) -> Result<Discord, String> {
        let url = ctx.secret_url(
            raw.webhook_url.as_deref(),
            raw.webhook_url_file.as_deref(),
            "webhook_url",
        )?;
        Ok(Discord {
            http: ctx.http(raw.http_config.as_ref())?,
            url,
            title: ctx.field(
                raw.title.as_deref(),
                r#"{{ template "discord.default.title" . }}"#,
                "title",
            )?,
            message: ctx.field(
                raw.message.as_deref(),
                r#"{{ template "discord.default.message" . }}"#,
                "message",
            )?,
            content: ctx.field(
                raw.content.as_deref(),
                r#"{{ template "discord.default.content" . }}"#,
                "content",
            )?,
            username: raw.username.clone(),
            avatar_url: raw.avatar_url.clone(),
        })
    }

    pub fn body(&self, n: &Notification<'_>) -> Result<J, Outcome> {
        let v = n.value(&http::esc_markdown);
        let color = if n.data.status == "firing" {
            RED
        } else {
            GREEN
        };
        let mut body = json!({
            "embeds": [{
                "title": http::truncate(&n.render(&self.title, &v)?, TITLE_MAX),
                "description": http::truncate(&n.render(&self.message, &v)?, DESCRIPTION_MAX),
                "color": color,
            }],
            "allowed_mentions": {"parse": []},
        });
        let content = n.render(&self.content, &v)?;
        if !content.is_empty() {
            body["content"] = J::String(http::truncate(&content, CONTENT_MAX));
        }
        if let Some(u) = &self.username {
            body["username"] = J::String(u.clone());
        }
        if let Some(u) = &self.avatar_url {
            body["avatar_url"] = J::String(u.clone());
        }
        Ok(body)
    }

    async fn send(&self, n: &Notification<'_>) -> Outcome {
        let body = match self.body(n) {
            Ok(b) => b,
            Err(o) => return o,
        };
        match self.http.post_json(&self.url, &body).await {
            Ok(r) => http::classify(&r, http::json_wait(&r, "/retry_after", 1.0)),
            Err(o) => o,
        }
    }
}

impl Notifier for Discord {
    fn notify<'a>(&'a self, n: &'a Notification<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(self.send(n))
    }

    /// About 30 messages a minute per channel.
    fn destination(&self) -> Option<(String, Rate)> {
        Some((
            http::destination_key("discord", &[&self.url]),
            Rate::new(0.5, 5.0),
        ))
    }
}
