//! Telegram Bot API `sendMessage` with Alertmanager's `telegram_configs` keys. HTML parse mode
//! by default with values HTML-escaped (MarkdownV2 escaping when chosen). A message over 4,096
//! characters is sent as plain text, cut, rather than with broken tags. The bot token sits in
//! the URL path and never appears in errors. 429 waits `parameters.retry_after`.

use serde::Deserialize;
use serde_json::{Value as J, json};

use super::http::{self, Http};
use super::template::Field;
use super::throttle::Rate;
use super::{BoxFuture, BuildCtx, Notification, Notifier, Outcome, Reason};
use crate::amconfig::HttpConfig;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTelegram {
    pub send_resolved: Option<bool>,
    pub http_config: Option<HttpConfig>,
    pub api_url: Option<String>,
    pub bot_token: Option<String>,
    pub bot_token_file: Option<String>,
    pub chat_id: Option<i64>,
    pub message_thread_id: Option<i64>,
    pub message: Option<String>,
    #[serde(default)]
    pub disable_notifications: bool,
    pub parse_mode: Option<String>,
}

#[derive(Debug)]
pub struct Telegram {
    url: String,
    http: Http,
    chat_id: i64,
    thread: Option<i64>,
    message: Field,
    silent: bool,
    parse_mode: String,
}

pub const TEXT_MAX: usize = 4096;

impl Telegram {
    pub fn build(raw: &RawTelegram, ctx: &mut BuildCtx<'_>) -> Result<Telegram, String> {
        let token = ctx.secret(
            raw.bot_token.as_deref(),
            raw.bot_token_file.as_deref(),
            "bot_token",
        )?;
        let api = raw
            .api_url
            .clone()
            .or_else(|| ctx.globals.telegram_api_url.clone())
            .unwrap_or_else(|| "https://api.telegram.org".into());
        http::check_url(&api, "api_url")?;
        let chat_id = raw.chat_id.ok_or("missing chat_id")?;
        let parse_mode = raw.parse_mode.clone().unwrap_or_else(|| "HTML".into());
        if !matches!(parse_mode.as_str(), "" | "HTML" | "MarkdownV2" | "Markdown") {
            return Err(format!(
                "parse_mode: {parse_mode:?} is not one of HTML, MarkdownV2, Markdown or empty"
            ));
        }
        Ok(Telegram {
            http: ctx.http(raw.http_config.as_ref())?,
            url: format!("{}/bot{token}/sendMessage", api.trim_end_matches('/')),
            chat_id,
            thread: raw.message_thread_id,
            message: ctx.field(
                raw.message.as_deref(),
                r#"{{ template "telegram.default.message" . }}"#,
                "message",
            )?,
            silent: raw.disable_notifications,
            parse_mode,
        })
    }

    pub fn body(&self, n: &Notification<'_>) -> Result<J, Outcome> {
        let esc: fn(&str) -> String = match self.parse_mode.as_str() {
            "HTML" => http::esc_html,
            "MarkdownV2" => esc_markdown_v2,
            _ => http::no_escape,
        };
        let mut text = n.text(&self.message, &esc)?;
        let mut mode = self.parse_mode.as_str();
        if text.chars().count() > TEXT_MAX {
            // Cutting marked-up text can break a tag or an escape: send it plain instead.
            text = http::truncate(&strip_markup(&text, mode), TEXT_MAX);
            mode = "";
        }
        let mut body = json!({
            "chat_id": self.chat_id,
            "text": text,
            "disable_notification": self.silent,
            "link_preview_options": {"is_disabled": true},
        });
        if !mode.is_empty() {
            body["parse_mode"] = J::String(mode.into());
        }
        if let Some(t) = self.thread {
            body["message_thread_id"] = J::from(t);
        }
        Ok(body)
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
        let j = r.json();
        let params = j.as_ref().and_then(|j| j.get("parameters"));
        let body_wait = http::json_wait(&r, "/parameters/retry_after", 1.0);
        if let Some(to) = params
            .and_then(|p| p.get("migrate_to_chat_id"))
            .and_then(J::as_i64)
        {
            return Outcome::Failed(
                Reason::ClientError,
                format!("the group became a supergroup: set chat_id to {to}"),
            );
        }
        match http::classify(&r, body_wait) {
            Outcome::Sent
                if j.as_ref().and_then(|j| j.get("ok")).and_then(J::as_bool) == Some(false) =>
            {
                Outcome::Failed(
                    Reason::ClientError,
                    format!("Telegram refused: {}", r.snippet()),
                )
            }
            o => o,
        }
    }
}

/// MarkdownV2 outside code: every special character backslash-escaped.
pub fn esc_markdown_v2(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        if "_*[]()~`>#+-=|{}.!\\".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Plain text from the rendered message: tags removed and entities decoded (HTML), escapes
/// removed (MarkdownV2).
fn strip_markup(text: &str, mode: &str) -> String {
    if mode == "MarkdownV2" {
        let mut out = String::with_capacity(text.len());
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                out.extend(chars.next());
            } else {
                out.push(c);
            }
        }
        return out;
    }
    if mode != "HTML" {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut in_tag = false;
    for c in text.chars() {
        match c {
            '<' if !in_tag => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

impl Notifier for Telegram {
    fn notify<'a>(&'a self, n: &'a Notification<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(self.send(n))
    }

    /// About one message a second per chat, 20 a minute per group.
    fn destination(&self) -> Option<(String, Rate)> {
        Some((
            http::destination_key("telegram", &[&self.url, &self.chat_id.to_string()]),
            Rate::new(1.0, 3.0),
        ))
    }
}
