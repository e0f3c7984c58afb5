//! Free Mobile's notification SMS (France): texts the subscriber's own line, so it suits a
//! "page myself" receiver. `GET /sendmsg?user=&pass=&msg=`; 402 means too many too fast
//! (retried), 403 a wrong login or key. The text is one line (a newline once cut messages).

use serde::Deserialize;

use super::http::{self, Http};
use super::sms::Text;
use super::throttle::Rate;
use super::{BoxFuture, BuildCtx, Notification, Notifier, Outcome, Reason};
use crate::amconfig::HttpConfig;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFreeMobile {
    pub send_resolved: Option<bool>,
    pub http_config: Option<HttpConfig>,
    pub api_url: Option<String>,
    pub user: String,
    pub pass: Option<String>,
    pub pass_file: Option<String>,
    pub message: Option<String>,
    pub max_segments: Option<u32>,
    pub link: Option<bool>,
}

#[derive(Debug)]
pub struct FreeMobile {
    url: String,
    http: Http,
    user: String,
    pass: String,
    text: Text,
}

impl FreeMobile {
    pub fn build(raw: &RawFreeMobile, ctx: &mut BuildCtx<'_>) -> Result<FreeMobile, String> {
        let api = raw
            .api_url
            .clone()
            .unwrap_or_else(|| "https://smsapi.free-mobile.fr".into());
        http::check_url(&api, "api_url")?;
        Ok(FreeMobile {
            url: format!("{}/sendmsg", api.trim_end_matches('/')),
            http: ctx.http(raw.http_config.as_ref())?,
            user: raw.user.clone(),
            pass: ctx.secret(raw.pass.as_deref(), raw.pass_file.as_deref(), "pass")?,
            text: Text::build(raw.message.as_deref(), raw.max_segments, raw.link, ctx)?,
        })
    }

    async fn send(&self, n: &Notification<'_>) -> Outcome {
        let sms = match self.text.render(n) {
            Ok(s) => s,
            Err(o) => return o,
        };
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("user", &self.user)
            .append_pair("pass", &self.pass)
            .append_pair("msg", &sms.text)
            .finish();
        let req = self
            .http
            .request(reqwest::Method::GET, &format!("{}?{query}", self.url));
        let r = match http::send(req).await {
            Ok(r) => r,
            Err(o) => return o,
        };
        match r.status {
            402 => Outcome::Retry(
                Reason::RateLimited,
                "402: too many SMS too quickly".into(),
                http::retry_after(&r.headers),
            ),
            403 => Outcome::Failed(
                Reason::Auth,
                "403: service not enabled, or wrong user or key".into(),
            ),
            _ => http::classify(&r, None),
        }
    }
}

impl Notifier for FreeMobile {
    fn notify<'a>(&'a self, n: &'a Notification<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(self.send(n))
    }

    /// Free Mobile answers 402 to texts sent too fast.
    fn destination(&self) -> Option<(String, Rate)> {
        Some((
            http::destination_key("freemobile", &[&self.user]),
            Rate::new(0.5, 2.0),
        ))
    }
}
