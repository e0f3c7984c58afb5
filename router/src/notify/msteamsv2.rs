//! Microsoft Teams through a Workflows (Power Automate) webhook: an Adaptive Card in a message
//! envelope (plain `{"text"}` makes the flow fail without telling us). Any 2xx is success (the
//! flow answers `202` and runs later). The card stays under 25 KB: the text is cut to fit.

use serde::Deserialize;
use serde_json::{Value as J, json};

use super::http::{self, Http};
use super::template::Field;
use super::throttle::Rate;
use super::{BoxFuture, BuildCtx, Notification, Notifier, Outcome};
use crate::amconfig::HttpConfig;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTeams {
    pub send_resolved: Option<bool>,
    pub http_config: Option<HttpConfig>,
    pub webhook_url: Option<String>,
    pub webhook_url_file: Option<String>,
    pub title: Option<String>,
    pub text: Option<String>,
}

#[derive(Debug)]
pub struct Teams {
    url: String,
    http: Http,
    title: Field,
    text: Field,
}

/// Teams refuses posts over about 28 KB; keep a margin.
pub const BODY_MAX: usize = 25_000;

impl Teams {
    pub fn build(raw: &RawTeams, ctx: &mut BuildCtx<'_>) -> Result<Teams, String> {
        let url = ctx.secret_url(
            raw.webhook_url.as_deref(),
            raw.webhook_url_file.as_deref(),
            "webhook_url",
        )?;
        Ok(Teams {
            http: ctx.http(raw.http_config.as_ref())?,
            url,
            title: ctx.field(
                raw.title.as_deref(),
                r#"{{ template "msteamsv2.default.title" . }}"#,
                "title",
            )?,
            text: ctx.field(
                raw.text.as_deref(),
                r#"{{ template "msteamsv2.default.text" . }}"#,
                "text",
            )?,
        })
    }

    pub fn body(&self, n: &Notification<'_>) -> Result<J, Outcome> {
        let v = n.value(&http::esc_markdown);
        let title = n.render(&self.title, &v)?;
        // A TextBlock needs a blank line for a line break.
        let text = n.render(&self.text, &v)?.replace('\n', "\n\n");
        let firing = n.data.status == "firing";
        let card = |text: &str| {
            json!({
                "type": "message",
                "attachments": [{
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "contentUrl": null,
                    "content": {
                        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                        "type": "AdaptiveCard",
                        "version": "1.2",
                        "msteams": {"width": "Full"},
                        "body": [
                            {"type": "TextBlock", "text": title, "weight": "Bolder", "size": "Medium",
                             "color": if firing { "Attention" } else { "Good" }, "wrap": true},
                            {"type": "TextBlock", "text": text, "wrap": true},
                        ],
                    },
                }],
            })
        };
        let mut body = card(&text);
        let mut max = text.chars().count();
        while body.to_string().len() > BODY_MAX && max > 0 {
            let over = body.to_string().len() - BODY_MAX;
            max = max.saturating_sub(over.max(64));
            body = card(&http::truncate(&text, max));
        }
        Ok(body)
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

impl Notifier for Teams {
    fn notify<'a>(&'a self, n: &'a Notification<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(self.send(n))
    }

    /// Teams webhooks took at most four requests a second.
    fn destination(&self) -> Option<(String, Rate)> {
        Some((
            http::destination_key("msteams", &[&self.url]),
            Rate::new(4.0, 4.0),
        ))
    }
}
