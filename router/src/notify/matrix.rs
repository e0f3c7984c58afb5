//! Matrix client-server API: `PUT /_matrix/client/v3/rooms/{room}/send/m.room.message/{txnId}`
//! with a Bearer token (never the deprecated `access_token` query). The transaction id is the
//! notification's, the same on every retry, so the homeserver drops a duplicate. Sends an
//! `m.notice` (clients never auto-reply to it) with a plain body and an HTML rendering.

use serde::Deserialize;
use serde_json::{Value as J, json};

use super::http::{self, Http};
use super::template::Field;
use super::throttle::Rate;
use super::{BoxFuture, BuildCtx, Notification, Notifier, Outcome};
use crate::amconfig::HttpConfig;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMatrix {
    pub send_resolved: Option<bool>,
    pub http_config: Option<HttpConfig>,
    pub homeserver_url: String,
    pub room_id: String,
    pub access_token: Option<String>,
    pub access_token_file: Option<String>,
    pub message: Option<String>,
    /// The HTML rendering; an empty string sends the plain body only.
    pub html: Option<String>,
    pub msgtype: Option<String>,
}

#[derive(Debug)]
pub struct Matrix {
    base: String,
    http: Http,
    token: String,
    message: Field,
    html: Option<Field>,
    msgtype: String,
}

/// An event must stay under 65,536 bytes; keep room for the envelope.
pub const CONTENT_MAX: usize = 60_000;

impl Matrix {
    pub fn build(raw: &RawMatrix, ctx: &mut BuildCtx<'_>) -> Result<Matrix, String> {
        http::check_url(&raw.homeserver_url, "homeserver_url")?;
        if !raw.room_id.starts_with('!') && !raw.room_id.starts_with('#') {
            return Err(format!(
                "room_id: {:?} is not a room id (!…:server) or alias (#…:server)",
                raw.room_id
            ));
        }
        let token = ctx.secret(
            raw.access_token.as_deref(),
            raw.access_token_file.as_deref(),
            "access_token",
        )?;
        let room: String = form_urlencoded::byte_serialize(raw.room_id.as_bytes()).collect();
        let html = match raw.html.as_deref() {
            Some("") => None,
            own => Some(ctx.field(own, r#"{{ template "matrix.default.html" . }}"#, "html")?),
        };
        Ok(Matrix {
            base: format!(
                "{}/_matrix/client/v3/rooms/{room}/send/m.room.message",
                raw.homeserver_url.trim_end_matches('/')
            ),
            http: ctx.http(raw.http_config.as_ref())?,
            token,
            message: ctx.field(
                raw.message.as_deref(),
                r#"{{ template "matrix.default.message" . }}"#,
                "message",
            )?,
            html,
            msgtype: raw.msgtype.clone().unwrap_or_else(|| "m.notice".into()),
        })
    }

    pub fn body(&self, n: &Notification<'_>) -> Result<J, Outcome> {
        let plain = n.text(&self.message, &http::no_escape)?;
        let mut body = json!({
            "msgtype": self.msgtype,
            "body": http::truncate(&plain, CONTENT_MAX / 4),
        });
        if let Some(f) = &self.html {
            let html = n.text(f, &http::esc_html)?;
            // A cut could break a tag: an oversized rendering is left out.
            if html.len() + body.to_string().len() < CONTENT_MAX {
                body["format"] = J::String("org.matrix.custom.html".into());
                body["formatted_body"] = J::String(html);
            }
        }
        Ok(body)
    }

    async fn send(&self, n: &Notification<'_>) -> Outcome {
        let body = match self.body(n) {
            Ok(b) => b,
            Err(o) => return o,
        };
        let url = format!("{}/{}", self.base, n.id);
        let req = self
            .http
            .request(reqwest::Method::PUT, &url)
            .bearer_auth(&self.token)
            .json(&body);
        match http::send(req).await {
            Ok(r) => http::classify(&r, http::json_wait(&r, "/retry_after_ms", 0.001)),
            Err(o) => o,
        }
    }
}

impl Notifier for Matrix {
    fn notify<'a>(&'a self, n: &'a Notification<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(self.send(n))
    }

    /// Homeservers rate-limit per user; one room, one queue.
    fn destination(&self) -> Option<(String, Rate)> {
        Some((
            http::destination_key("matrix", &[&self.base]),
            Rate::new(1.0, 5.0),
        ))
    }
}
