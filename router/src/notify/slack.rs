//! Slack incoming webhooks (or `chat.postMessage` with a bot token in `http_config`), with
//! Alertmanager's `slack_configs` keys and its attachment layout. Success is `200 ok` (or a
//! JSON `"ok": true`); a 429 waits for its `Retry-After`. Values are escaped for mrkdwn, so a
//! label cannot write `<!channel>` or a link.

use serde::Deserialize;
use serde_json::{Value as J, json};

use super::http::{self, Http};
use super::template::Field;
use super::throttle::Rate;
use super::{BoxFuture, BuildCtx, Notification, Notifier, Outcome, Reason};
use crate::amconfig::HttpConfig;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawField {
    pub title: String,
    pub value: String,
    pub short: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSlack {
    pub send_resolved: Option<bool>,
    pub http_config: Option<HttpConfig>,
    pub api_url: Option<String>,
    pub api_url_file: Option<String>,
    pub channel: Option<String>,
    pub username: Option<String>,
    pub color: Option<String>,
    pub title: Option<String>,
    pub title_link: Option<String>,
    pub pretext: Option<String>,
    pub text: Option<String>,
    #[serde(default)]
    pub fields: Vec<RawField>,
    #[serde(default)]
    pub short_fields: bool,
    pub footer: Option<String>,
    pub fallback: Option<String>,
    pub callback_id: Option<String>,
    pub icon_emoji: Option<String>,
    pub icon_url: Option<String>,
    pub image_url: Option<String>,
    pub thumb_url: Option<String>,
    #[serde(default)]
    pub link_names: bool,
    pub mrkdwn_in: Option<Vec<String>>,
}

#[derive(Debug)]
pub struct Slack {
    url: String,
    http: Http,
    channel: Field,
    username: Field,
    color: Field,
    title: Field,
    title_link: Field,
    pretext: Field,
    text: Field,
    fields: Vec<(Field, Field, bool)>,
    footer: Field,
    fallback: Field,
    callback_id: Field,
    icon_emoji: Field,
    icon_url: Field,
    image_url: Option<String>,
    thumb_url: Option<String>,
    link_names: bool,
    mrkdwn_in: Vec<String>,
}

/// Slack's limit on an attachment title (Alertmanager truncates there too).
const TITLE_MAX: usize = 1024;
/// Slack cuts a message's text after this many characters.
const TEXT_MAX: usize = 40_000;

impl Slack {
    pub fn build(raw: &RawSlack, ctx: &mut BuildCtx<'_>) -> Result<Slack, String> {
        let g = ctx.globals;
        let url = http::secret(
            raw.api_url.as_deref(),
            raw.api_url_file.as_deref(),
            ctx.base,
            "api_url",
        )?
        .or(http::secret(
            g.slack_api_url.as_deref(),
            g.slack_api_url_file.as_deref(),
            ctx.base,
            "global.slack_api_url",
        )?)
        .ok_or("no api_url (nor global.slack_api_url) configured")?;
        http::check_url(&url, "api_url")?;
        let mut fields = Vec::new();
        for (i, f) in raw.fields.iter().enumerate() {
            fields.push((
                ctx.field(Some(f.title.as_str()), "", &format!("fields[{i}].title"))?,
                ctx.field(Some(f.value.as_str()), "", &format!("fields[{i}].value"))?,
                f.short.unwrap_or(raw.short_fields),
            ));
        }
        Ok(Slack {
            http: ctx.http(raw.http_config.as_ref())?,
            url,
            channel: ctx.field(raw.channel.as_deref(), "", "channel")?,
            username: ctx.field(
                raw.username.as_deref(),
                r#"{{ template "slack.default.username" . }}"#,
                "username",
            )?,
            color: ctx.field(
                raw.color.as_deref(),
                r#"{{ if eq .Status "firing" }}danger{{ else }}good{{ end }}"#,
                "color",
            )?,
            title: ctx.field(
                raw.title.as_deref(),
                r#"{{ template "slack.default.title" . }}"#,
                "title",
            )?,
            title_link: ctx.field(
                raw.title_link.as_deref(),
                r#"{{ template "slack.default.titlelink" . }}"#,
                "title_link",
            )?,
            pretext: ctx.field(
                raw.pretext.as_deref(),
                r#"{{ template "slack.default.pretext" . }}"#,
                "pretext",
            )?,
            text: ctx.field(
                raw.text.as_deref(),
                r#"{{ template "slack.default.text" . }}"#,
                "text",
            )?,
            fields,
            footer: ctx.field(
                raw.footer.as_deref(),
                r#"{{ template "slack.default.footer" . }}"#,
                "footer",
            )?,
            fallback: ctx.field(
                raw.fallback.as_deref(),
                r#"{{ template "slack.default.fallback" . }}"#,
                "fallback",
            )?,
            callback_id: ctx.field(
                raw.callback_id.as_deref(),
                r#"{{ template "slack.default.callbackid" . }}"#,
                "callback_id",
            )?,
            icon_emoji: ctx.field(
                raw.icon_emoji.as_deref(),
                r#"{{ template "slack.default.iconemoji" . }}"#,
                "icon_emoji",
            )?,
            icon_url: ctx.field(
                raw.icon_url.as_deref(),
                r#"{{ template "slack.default.iconurl" . }}"#,
                "icon_url",
            )?,
            image_url: raw.image_url.clone(),
            thumb_url: raw.thumb_url.clone(),
            link_names: raw.link_names,
            mrkdwn_in: raw
                .mrkdwn_in
                .clone()
                .unwrap_or_else(|| vec!["fallback".into(), "pretext".into(), "text".into()]),
        })
    }

    /// The request body (Alertmanager's layout: one attachment).
    pub fn body(&self, n: &Notification<'_>) -> Result<J, Outcome> {
        let v = n.value(&http::esc_slack);
        let r = |f: &Field| n.render(f, &v);
        let mut att = serde_json::Map::new();
        let mut put = |k: &str, s: String| {
            if !s.is_empty() {
                att.insert(k.into(), J::String(s));
            }
        };
        put("title", http::truncate(&r(&self.title)?, TITLE_MAX));
        put("title_link", r(&self.title_link)?);
        put("pretext", r(&self.pretext)?);
        put("text", http::truncate(&r(&self.text)?, TEXT_MAX));
        put("fallback", r(&self.fallback)?);
        put("callback_id", r(&self.callback_id)?);
        put("color", r(&self.color)?);
        put("footer", r(&self.footer)?);
        if let Some(u) = &self.image_url {
            put("image_url", u.clone());
        }
        if let Some(u) = &self.thumb_url {
            put("thumb_url", u.clone());
        }
        att.insert("mrkdwn_in".into(), json!(self.mrkdwn_in));
        if !self.fields.is_empty() {
            let mut fs = Vec::new();
            for (t, val, short) in &self.fields {
                fs.push(json!({"title": r(t)?, "value": r(val)?, "short": short}));
            }
            att.insert("fields".into(), J::Array(fs));
        }
        let mut body = serde_json::Map::new();
        for (k, f) in [
            ("channel", &self.channel),
            ("username", &self.username),
            ("icon_emoji", &self.icon_emoji),
            ("icon_url", &self.icon_url),
        ] {
            let s = r(f)?;
            if !s.is_empty() {
                body.insert(k.into(), J::String(s));
            }
        }
        if self.link_names {
            body.insert("link_names".into(), J::Bool(true));
        }
        body.insert("attachments".into(), J::Array(vec![J::Object(att)]));
        Ok(J::Object(body))
    }

    async fn send(&self, n: &Notification<'_>) -> Outcome {
        let body = match self.body(n) {
            Ok(b) => b,
            Err(o) => return o,
        };
        let r = match self.http.post_json(&self.url, &body).await {
            Ok(r) => r,
            Err(o) => return o,
        };
        let body_wait = http::json_wait(&r, "/retry_after", 1.0);
        match http::classify(&r, body_wait) {
            Outcome::Sent => check_ok(&r),
            other => other,
        }
    }
}

/// A 2xx is a success only if the body says so: `ok` (webhooks) or `"ok": true` (Web API).
fn check_ok(r: &http::Response) -> Outcome {
    let b = r.body.trim();
    if b == "ok" || b.is_empty() {
        return Outcome::Sent;
    }
    match r.json() {
        Some(j) if j.get("ok").and_then(J::as_bool) == Some(true) => Outcome::Sent,
        Some(j) => Outcome::Failed(
            Reason::ClientError,
            format!(
                "error response from Slack: {}",
                j.get("error").and_then(J::as_str).unwrap_or("unknown")
            ),
        ),
        None => Outcome::Failed(
            Reason::ClientError,
            format!("error response from Slack: {}", r.snippet()),
        ),
    }
}

impl Notifier for Slack {
    fn notify<'a>(&'a self, n: &'a Notification<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(self.send(n))
    }

    /// Slack allows about one message a second per channel.
    fn destination(&self) -> Option<(String, Rate)> {
        Some((
            http::destination_key("slack", &[&self.url]),
            Rate::new(1.0, 3.0),
        ))
    }
}
