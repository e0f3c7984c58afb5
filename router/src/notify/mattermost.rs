//! Mattermost incoming webhooks with Alertmanager's `mattermost_configs` keys: Markdown text
//! (at most 16,383 characters), optional channel, username, icon and message priority.
//! Values are Markdown-escaped and cannot form an `@channel` mention.

use serde::Deserialize;
use serde_json::{Value as J, json};

use super::http::{self, Http};
use super::template::Field;
use super::throttle::Rate;
use super::{BoxFuture, BuildCtx, Notification, Notifier, Outcome};
use crate::amconfig::HttpConfig;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPriority {
    pub priority: Option<String>,
    pub requested_ack: Option<bool>,
    pub persistent_notifications: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMattermost {
    pub send_resolved: Option<bool>,
    pub http_config: Option<HttpConfig>,
    pub webhook_url: Option<String>,
    pub webhook_url_file: Option<String>,
    pub channel: Option<String>,
    pub username: Option<String>,
    pub icon_url: Option<String>,
    pub icon_emoji: Option<String>,
    pub text: Option<String>,
    pub priority: Option<RawPriority>,
}

#[derive(Debug)]
pub struct Mattermost {
    url: String,
    http: Http,
    channel: Field,
    username: Field,
    icon_url: Option<String>,
    icon_emoji: Option<String>,
    text: Field,
    priority: Option<RawPriority>,
}

pub const TEXT_MAX: usize = 16_383;

impl Mattermost {
    pub fn build(raw: &RawMattermost, ctx: &mut BuildCtx<'_>) -> Result<Mattermost, String> {
        let url = ctx.secret_url(
            raw.webhook_url.as_deref(),
            raw.webhook_url_file.as_deref(),
            "webhook_url",
        )?;
        if let Some(p) = raw.priority.as_ref().and_then(|p| p.priority.as_deref())
            && !matches!(p, "standard" | "important" | "urgent")
        {
            return Err(format!(
                "priority.priority: {p:?} is not one of standard, important, urgent"
            ));
        }
        Ok(Mattermost {
            http: ctx.http(raw.http_config.as_ref())?,
            url,
            channel: ctx.field(raw.channel.as_deref(), "", "channel")?,
            username: ctx.field(raw.username.as_deref(), "", "username")?,
            icon_url: raw.icon_url.clone(),
            icon_emoji: raw.icon_emoji.clone(),
            text: ctx.field(
                raw.text.as_deref(),
                r#"{{ template "mattermost.default.text" . }}"#,
                "text",
            )?,
            priority: raw.priority.clone(),
        })
    }

    pub fn body(&self, n: &Notification<'_>) -> Result<J, Outcome> {
        let v = n.value(&http::esc_markdown);
        let mut body = serde_json::Map::new();
        body.insert(
            "text".into(),
            J::String(http::truncate(&n.render(&self.text, &v)?, TEXT_MAX)),
        );
        for (k, f) in [("channel", &self.channel), ("username", &self.username)] {
            let s = n.render(f, &v)?;
            if !s.is_empty() {
                body.insert(k.into(), J::String(s));
            }
        }
        for (k, s) in [
            ("icon_url", &self.icon_url),
            ("icon_emoji", &self.icon_emoji),
        ] {
            if let Some(s) = s {
                body.insert(k.into(), J::String(s.clone()));
            }
        }
        if let Some(p) = &self.priority {
            body.insert(
                "priority".into(),
                json!({
                    "priority": p.priority.as_deref().unwrap_or("standard"),
                    "requested_ack": p.requested_ack.unwrap_or(false),
                    "persistent_notifications": p.persistent_notifications.unwrap_or(false),
                }),
            );
        }
        Ok(J::Object(body))
    }

    async fn send(&self, n: &Notification<'_>) -> Outcome {
        let body = match self.body(n) {
            Ok(b) => b,
            Err(o) => return o,
        };
        match self.http.post_json(&self.url, &body).await {
            Ok(r) => http::classify(&r, None),
            Err(o) => o,
        }
    }
}

impl Notifier for Mattermost {
    fn notify<'a>(&'a self, n: &'a Notification<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(self.send(n))
    }

    /// Mattermost's limit is the admin's; stay gentle.
    fn destination(&self) -> Option<(String, Rate)> {
        Some((
            http::destination_key("mattermost", &[&self.url]),
            Rate::new(2.0, 5.0),
        ))
    }
}
