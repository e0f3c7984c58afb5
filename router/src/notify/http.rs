//! What every HTTP integration shares: the client from `http_config`, secrets from the file,
//! a `*_file` or the environment, the classification of a response (with the wait a receiver
//! names, capped), truncation by characters with a visible mark, escaping for each markup, and
//! URL redaction: webhook URLs and bot tokens are credentials.

use std::path::Path;
use std::time::Duration;

use reqwest::header::HeaderMap;

use super::{Outcome, Reason};
use crate::amconfig::HttpConfig;
use crate::config::resolve_basic_auth_for;

/// The longest wait a receiver may impose before one retry. Past it the attempt fails, so an
/// escalation moves on instead of sleeping (Discord once asked for two days).
pub const MAX_WAIT: Duration = Duration::from_secs(60);

/// Appended where text was cut to fit a receiver's limit.
pub const TRUNCATED: &str = "… truncated";

pub const USER_AGENT: &str = concat!("Vigie-Router/", env!("CARGO_PKG_VERSION"));

/// A client configured from `http_config` (the integration's, else the global one).
#[derive(Debug, Clone)]
pub struct Http {
    client: reqwest::Client,
    authorization: Option<String>,
    timeout: Option<Duration>,
}

impl Http {
    pub fn build(
        own: Option<&HttpConfig>,
        global: Option<&HttpConfig>,
        base: &Path,
        file: &str,
    ) -> Result<Http, String> {
        let http = own.or(global).cloned().unwrap_or_default();
        if http.proxy_url.is_some() {
            return Err("http_config.proxy_url is not supported".into());
        }
        let authorization = authorization(&http, base, file)?;
        let client = match &http.tls_config {
            Some(tls) => {
                crate::server::client_with_tls(&crate::config::resolve_tls(tls.clone(), base))
                    .map_err(|e| format!("tls_config: {e:#}"))?
            }
            None => crate::server::plain_client(),
        };
        Ok(Http {
            client,
            authorization,
            timeout: None,
        })
    }

    pub fn with_timeout(mut self, t: Option<Duration>) -> Http {
        self.timeout = t;
        self
    }

    /// A request with the user agent, the configured authorization and timeout.
    pub fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let mut req = self
            .client
            .request(method, url)
            .header("User-Agent", USER_AGENT);
        if let Some(a) = &self.authorization {
            req = req.header("Authorization", a);
        }
        if let Some(t) = self.timeout {
            req = req.timeout(t);
        }
        req
    }

    pub fn has_authorization(&self) -> bool {
        self.authorization.is_some()
    }

    /// POSTs a JSON body and reads the answer.
    pub async fn post_json(
        &self,
        url: &str,
        body: &serde_json::Value,
    ) -> Result<Response, Outcome> {
        send(self.request(reqwest::Method::POST, url).json(body)).await
    }
}

/// A wait an API puts in its JSON answer (`/retry_after` in seconds, `/retry_after_ms` with
/// `scale` 0.001), for [`classify`].
pub fn json_wait(r: &Response, pointer: &str, scale: f64) -> Option<Duration> {
    let v = r.json()?.pointer(pointer)?.as_f64()? * scale;
    (v.is_finite() && v >= 0.0).then(|| Duration::from_secs_f64(v))
}

/// A response read whole (bodies of these APIs are small).
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Response {
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&self.body).ok()
    }

    /// The start of the body, for error messages.
    pub fn snippet(&self) -> String {
        let b = self.body.trim();
        let cut: String = b.chars().take(200).collect();
        if cut.len() < b.len() {
            format!("{cut}…")
        } else {
            cut
        }
    }
}

/// Sends and reads the answer; a transport error is worth a retry. Messages never carry the
/// URL (it may hold the credential).
pub async fn send(req: reqwest::RequestBuilder) -> Result<Response, Outcome> {
    let r = req
        .send()
        .await
        .map_err(|e| Outcome::Retry(Reason::Transport, e.without_url().to_string(), None))?;
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r
        .text()
        .await
        .map_err(|e| Outcome::Retry(Reason::Transport, e.without_url().to_string(), None))?;
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// The common rule: 2xx sent; 429 and 5xx (and 408) retried after the named wait; 401/403
/// refused credentials; any other status final. `body_wait` is a wait the API puts in its
/// body (Discord, Telegram, Matrix), used when no `Retry-After` header came.
pub fn classify(r: &Response, body_wait: Option<Duration>) -> Outcome {
    if (200..300).contains(&r.status) {
        return Outcome::Sent;
    }
    let msg = format!("unexpected status code {}: {}", r.status, r.snippet());
    match r.status {
        429 => retry_after_capped(
            Reason::RateLimited,
            msg,
            retry_after(&r.headers).or(body_wait),
        ),
        408 => Outcome::Retry(Reason::Transport, msg, None),
        500..=599 => retry_after_capped(Reason::ServerError, msg, retry_after(&r.headers)),
        401 | 403 => Outcome::Failed(Reason::Auth, msg),
        _ => Outcome::Failed(Reason::ClientError, msg),
    }
}

/// A retry after `wait`, or a failure when the wait is over [`MAX_WAIT`].
pub fn retry_after_capped(reason: Reason, msg: String, wait: Option<Duration>) -> Outcome {
    match wait {
        Some(w) if w > MAX_WAIT => Outcome::Failed(
            Reason::WaitTooLong,
            format!(
                "{msg} (asked to wait {}s, more than the {}s cap)",
                w.as_secs(),
                MAX_WAIT.as_secs()
            ),
        ),
        w => Outcome::Retry(reason, msg, w),
    }
}

/// `Retry-After` as delta-seconds or an HTTP-date (RFC 9110).
pub fn retry_after(h: &HeaderMap) -> Option<Duration> {
    let v = h.get("Retry-After")?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let when = jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(v)
        .ok()?;
    let now = jiff::Timestamp::now();
    let ms = when.as_millisecond() - now.as_millisecond();
    Some(Duration::from_millis(ms.max(0) as u64))
}

/// A secret from its value (`${NAME}` reads the environment) or from `<key>_file`; at most one.
pub fn secret(
    value: Option<&str>,
    file: Option<&str>,
    base: &Path,
    key: &str,
) -> Result<Option<String>, String> {
    match (value, file) {
        (Some(_), Some(_)) => Err(format!("at most one of {key} and {key}_file may be set")),
        (Some(v), None) => match v.strip_prefix("${").and_then(|r| r.strip_suffix('}')) {
            Some(name) => std::env::var(name)
                .map(Some)
                .map_err(|_| format!("{key}: environment variable {name} is not set")),
            None => Ok(Some(v.to_string())),
        },
        (None, Some(f)) => std::fs::read_to_string(base.join(f))
            .map(|s| Some(s.trim().to_string()))
            .map_err(|e| format!("{key}_file: {f}: {e}")),
        (None, None) => Ok(None),
    }
}

/// Like [`secret`], for a key that must be there.
pub fn required_secret(
    value: Option<&str>,
    file: Option<&str>,
    base: &Path,
    key: &str,
) -> Result<String, String> {
    secret(value, file, base, key)?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("one of {key} or {key}_file must be configured"))
}

/// A URL that must be http(s).
pub fn check_url(u: &str, key: &str) -> Result<(), String> {
    match reqwest::Url::parse(u) {
        Ok(p) if p.scheme() == "http" || p.scheme() == "https" => Ok(()),
        _ => Err(format!("{key}: {:?} is not an http(s) URL", redact_url(u))),
    }
}

/// Scheme and host only: what is safe to log of a URL whose path or query is a credential.
pub fn redact_url(u: &str) -> String {
    match reqwest::Url::parse(u) {
        Ok(p) => format!(
            "{}://{}{}/<redacted>",
            p.scheme(),
            p.host_str().unwrap_or(""),
            p.port().map(|p| format!(":{p}")).unwrap_or_default()
        ),
        Err(_) => "<redacted>".into(),
    }
}

/// 16 hex digits of the SHA-256 of the parts: a stable id that reveals none of them (group
/// thread keys, mail root ids, escalation ids, destination keys).
pub fn short_hash(parts: &[&str]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, parts.join("\u{0}").as_bytes());
    d.as_ref()[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// A destination key for throttling that names no secret: the kind and a hash of the parts.
pub fn destination_key(kind: &str, parts: &[&str]) -> String {
    format!("{kind}:{}", short_hash(parts))
}

/// At most `max` characters, the last ones replaced by [`TRUNCATED`] when cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let keep = max.saturating_sub(TRUNCATED.chars().count());
    let mut out: String = s.chars().take(keep).collect();
    out.push_str(TRUNCATED);
    out
}

/// Slack mrkdwn: `&`, `<`, `>` and nothing else (this also disarms `<!channel>` and links).
pub fn esc_slack(v: &str) -> String {
    v.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// HTML text and attribute values (Telegram's HTML mode, Matrix' formatted body).
pub fn esc_html(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Markdown (Mattermost, Discord, Teams): markup characters backslash-escaped so a value can
/// neither format nor link, and `@` kept from forming a mention (`@channel`, `@everyone`).
pub fn esc_markdown(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' | '*' | '_' | '~' | '`' | '[' | ']' | '(' | ')' | '<' | '>' | '#' | '|' => {
                out.push('\\');
                out.push(c);
            }
            '@' => out.push_str("@\u{200B}"),
            c => out.push(c),
        }
    }
    out
}

/// Google Chat: `<users/all>` and `<url|text>` need angle brackets, which values lose.
pub fn esc_gchat(v: &str) -> String {
    v.replace('<', "‹").replace('>', "›")
}

pub fn no_escape(v: &str) -> String {
    v.to_string()
}

fn authorization(http: &HttpConfig, base: &Path, file: &str) -> Result<Option<String>, String> {
    if let Some(b) = &http.basic_auth {
        let mut errors = Vec::new();
        let (u, p) = resolve_basic_auth_for(b, base, &mut errors, file);
        if let Some(e) = errors.pop() {
            return Err(e);
        }
        use base64::Engine as _;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
        return Ok(Some(format!("Basic {token}")));
    }
    if let Some(a) = &http.authorization {
        let kind = a.type_.clone().unwrap_or_else(|| "Bearer".into());
        let cred = secret(
            a.credentials.as_deref(),
            a.credentials_file.as_deref(),
            base,
            "authorization.credentials",
        )?
        .unwrap_or_default();
        return Ok(Some(format!("{kind} {cred}")));
    }
    Ok(secret(
        http.bearer_token.as_deref(),
        http.bearer_token_file.as_deref(),
        base,
        "bearer_token",
    )?
    .map(|t| format!("Bearer {t}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert("Retry-After", "3".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        let later = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(120);
        let date = jiff::fmt::rfc2822::DateTimePrinter::new()
            .timestamp_to_rfc9110_string(&later)
            .unwrap();
        h.insert("Retry-After", date.parse().unwrap());
        let w = retry_after(&h).unwrap();
        assert!(
            w > Duration::from_secs(110) && w <= Duration::from_secs(120),
            "{w:?}"
        );
        h.insert("Retry-After", "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn waits_over_the_cap_fail() {
        let o = retry_after_capped(
            Reason::RateLimited,
            "x".into(),
            Some(Duration::from_secs(172_800)),
        );
        assert!(
            matches!(o, Outcome::Failed(Reason::WaitTooLong, _)),
            "{o:?}"
        );
    }

    #[test]
    fn truncation_counts_characters_and_says_so() {
        assert_eq!(truncate("héhé", 4), "héhé");
        let t = truncate(&"é".repeat(50), 20);
        assert_eq!(t.chars().count(), 20);
        assert!(t.ends_with(TRUNCATED));
    }

    #[test]
    fn escapes_disarm_mentions_and_links() {
        assert_eq!(
            esc_slack("<!channel> & <https://x|y>"),
            "&lt;!channel&gt; &amp; &lt;https://x|y&gt;"
        );
        assert_eq!(
            esc_markdown("@everyone [x](http://e)"),
            "@\u{200B}everyone \\[x\\]\\(http://e\\)"
        );
        assert_eq!(esc_html("<b>\"'&"), "&lt;b&gt;&quot;&#39;&amp;");
        assert_eq!(esc_gchat("<users/all>"), "‹users/all›");
    }

    #[test]
    fn secrets_from_file_env_and_redaction() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tok"), "s3cret\n").unwrap();
        assert_eq!(
            secret(None, Some("tok"), dir.path(), "token")
                .unwrap()
                .as_deref(),
            Some("s3cret")
        );
        // SAFETY: tests in this module are the only readers of this variable.
        unsafe { std::env::set_var("VIGIE_TEST_SECRET", "from-env") };
        assert_eq!(
            secret(Some("${VIGIE_TEST_SECRET}"), None, dir.path(), "token")
                .unwrap()
                .as_deref(),
            Some("from-env")
        );
        assert!(secret(Some("a"), Some("tok"), dir.path(), "token").is_err());
        assert!(secret(Some("${VIGIE_NOT_SET_ANYWHERE}"), None, dir.path(), "token").is_err());
        assert_eq!(
            redact_url("https://hooks.slack.com/services/T0/B0/XXXX"),
            "https://hooks.slack.com/<redacted>"
        );
    }
}
