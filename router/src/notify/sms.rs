//! What every SMS integration shares: text made to fit a number of segments (GSM-7 when it can
//! be, counted in septets; UCS-2 otherwise, counted in UTF-16 units), with the group's link
//! kept at the end; recipients remembered per notification so a retry never texts twice; and
//! the generic HTTP gateway (`sms_configs`).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;

use super::http::{self, Http};
use super::template::Field;
use super::throttle::Rate;
use super::{BoxFuture, BuildCtx, Notification, Notifier, Outcome, Reason};
use crate::amconfig::HttpConfig;

/// GSM 03.38's basic character set (one septet each; ESC left out).
const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// Its extension table (two septets each: ESC + the character).
const GSM_EXT: &str = "^{}\\[~]|€\u{c}";

/// A text as it will be billed.
#[derive(Debug, Clone, PartialEq)]
pub struct Fitted {
    pub text: String,
    pub segments: u32,
    pub ucs2: bool,
}

/// Typographic punctuation and accents outside GSM-7 mapped to what GSM-7 has, whitespace
/// runs (newlines too) made one space, control characters and emoji dropped.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for c in text.chars() {
        let mapped: &str = match c {
            '‘' | '’' | '‚' | '′' | '`' | '´' => "'",
            '“' | '”' | '„' | '″' | '«' | '»' => "\"",
            '–' | '—' | '−' | '‐' => "-",
            '…' => "...",
            'á' | 'â' | 'ã' => "a",
            'Á' | 'Â' | 'Ã' | 'À' => "A",
            'ê' | 'ë' => "e",
            'Ê' | 'Ë' | 'È' => "E",
            'í' | 'î' | 'ï' => "i",
            'Í' | 'Î' | 'Ï' | 'Ì' => "I",
            'ó' | 'ô' | 'õ' => "o",
            'Ó' | 'Ô' | 'Õ' | 'Ò' => "O",
            'ú' | 'û' => "u",
            'Ú' | 'Û' | 'Ù' => "U",
            'ç' => "c",
            'œ' => "oe",
            'Œ' => "OE",
            'ÿ' => "y",
            _ => "",
        };
        if !mapped.is_empty() {
            out.push_str(mapped);
            space = false;
        } else if c.is_whitespace() {
            if !space && !out.is_empty() {
                out.push(' ');
            }
            space = true;
        } else if c.is_control() || (c as u32) > 0xFFFF || ('\u{2600}'..='\u{27BF}').contains(&c) {
            // Emoji and pictographs would switch the whole message to UCS-2.
        } else {
            out.push(c);
            space = false;
        }
    }
    out.trim_end().to_string()
}

fn is_gsm(text: &str) -> bool {
    text.chars()
        .all(|c| GSM_BASIC.contains(c) || GSM_EXT.contains(c))
}

/// The length that counts: septets (GSM-7) or UTF-16 units (UCS-2).
fn units(text: &str, ucs2: bool) -> usize {
    if ucs2 {
        text.encode_utf16().count()
    } else {
        text.chars()
            .map(|c| if GSM_EXT.contains(c) { 2 } else { 1 })
            .sum()
    }
}

fn capacity(segments: u32, ucs2: bool) -> usize {
    let s = segments.max(1) as usize;
    match (s, ucs2) {
        (1, false) => 160,
        (1, true) => 70,
        (n, false) => n * 153,
        (n, true) => n * 67,
    }
}

pub fn segments_of(text: &str) -> (u32, bool) {
    let ucs2 = !is_gsm(text);
    let n = units(text, ucs2);
    let seg = if n <= capacity(1, ucs2) {
        1
    } else {
        n.div_ceil(if ucs2 { 67 } else { 153 })
    };
    (seg as u32, ucs2)
}

/// Normalizes `text` and fits it, with ` link` kept at the end, into `max_segments`; what
/// does not fit is cut before the link and marked `...` (which stays GSM-7).
pub fn fit(text: &str, link: Option<&str>, max_segments: u32) -> Fitted {
    let text = normalize(text);
    let tail = link.map(|l| format!(" {l}")).unwrap_or_default();
    let whole = format!("{text}{tail}");
    let ucs2 = !is_gsm(&whole);
    let cap = capacity(max_segments, ucs2);
    if units(&whole, ucs2) <= cap {
        let (segments, ucs2) = segments_of(&whole);
        return Fitted {
            text: whole,
            segments,
            ucs2,
        };
    }
    let tail = if units(&tail, ucs2) + 3 >= cap {
        String::new()
    } else {
        tail
    };
    let budget = cap - units(&tail, ucs2) - 3;
    let mut cut = String::new();
    let mut used = 0;
    for c in text.chars() {
        let u = units(&c.to_string(), ucs2);
        if used + u > budget {
            break;
        }
        used += u;
        cut.push(c);
    }
    let out = format!("{}...{tail}", cut.trim_end());
    let (segments, ucs2) = segments_of(&out);
    Fitted {
        text: out,
        segments,
        ucs2,
    }
}

/// Recipients already texted, per notification id: a retry after a partial failure skips them.
#[derive(Debug, Default)]
pub struct Delivered(Mutex<VecDeque<String>>);

impl Delivered {
    const KEEP: usize = 4096;

    pub fn contains(&self, id: &str, to: &str) -> bool {
        let key = format!("{id}|{to}");
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|k| *k == key)
    }

    pub fn add(&self, id: &str, to: &str) {
        let mut q = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if q.len() >= Self::KEEP {
            q.pop_front();
        }
        q.push_back(format!("{id}|{to}"));
    }
}

/// Sends to each recipient (the on-call person's number on a page) not yet texted for this
/// notification, and combines the outcomes.
pub async fn per_recipient<F, Fut>(
    delivered: &Delivered,
    n: &Notification<'_>,
    own: &[String],
    send: F,
) -> Outcome
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Outcome>,
{
    let to = match recipients(n, own) {
        Ok(t) => t,
        Err(o) => return o,
    };
    let mut results = Vec::new();
    for to in to {
        if delivered.contains(n.id, &to) {
            continue;
        }
        let o = send(to.clone()).await;
        if o == Outcome::Sent {
            delivered.add(n.id, &to);
        }
        results.push((to, o));
    }
    combine(results)
}

/// One outcome for a message sent to each recipient separately: any retry retries (the sent
/// ones are skipped then), a mix of sent and refused is partial.
pub fn combine(results: Vec<(String, Outcome)>) -> Outcome {
    let mut retry: Option<Outcome> = None;
    let mut failed = Vec::new();
    let mut sent = 0;
    for (to, o) in results {
        match o {
            Outcome::Sent => sent += 1,
            Outcome::Partial(e) => {
                sent += 1;
                failed.push((Reason::Partial, format!("{to}: {e}")));
            }
            Outcome::Retry(r, e, w) => {
                let longer = match &retry {
                    Some(Outcome::Retry(_, _, prev)) => w > *prev,
                    _ => true,
                };
                if longer {
                    retry = Some(Outcome::Retry(r, format!("{to}: {e}"), w));
                }
            }
            Outcome::Failed(r, e) => failed.push((r, format!("{to}: {e}"))),
        }
    }
    if let Some(r) = retry {
        return r;
    }
    match (sent, failed.is_empty()) {
        (_, true) => Outcome::Sent,
        (0, false) => {
            let reason = failed[0].0;
            Outcome::Failed(
                reason,
                failed
                    .into_iter()
                    .map(|(_, e)| e)
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        }
        _ => Outcome::Partial(
            failed
                .into_iter()
                .map(|(_, e)| e)
                .collect::<Vec<_>>()
                .join("; "),
        ),
    }
}

/// The message template and how to fit it.
#[derive(Debug)]
pub struct Text {
    message: Field,
    max_segments: u32,
    link: bool,
}

impl Text {
    /// From the keys every SMS integration has: `message`, `max_segments` (default 1) and
    /// `link` (append the group's link, default true).
    pub fn build(
        message: Option<&str>,
        max_segments: Option<u32>,
        link: Option<bool>,
        ctx: &mut BuildCtx<'_>,
    ) -> Result<Text, String> {
        let max = max_segments.unwrap_or(1);
        if !(1..=10).contains(&max) {
            return Err(format!("max_segments: {max} is not between 1 and 10"));
        }
        Ok(Text {
            message: ctx.field(
                message,
                r#"{{ template "sms.default.message" . }}"#,
                "message",
            )?,
            max_segments: max,
            link: link.unwrap_or(true),
        })
    }

    /// The fitted text; the link is the acknowledgement link on an on-call page.
    pub fn render(&self, n: &Notification<'_>) -> Result<Fitted, Outcome> {
        let text = n.text(&self.message, &http::no_escape)?;
        let url = match n.ack_url {
            Some(a) => a.to_string(),
            None => n.data.group_url(),
        };
        Ok(fit(
            &text,
            self.link.then_some(url.as_str()),
            self.max_segments,
        ))
    }
}

/// The numbers to text: the on-call person's on a page, else the configured ones.
pub fn recipients(n: &Notification<'_>, own: &[String]) -> Result<Vec<String>, Outcome> {
    match n.contact {
        None => Ok(own.to_vec()),
        Some(c) => match &c.phone {
            Some(p) => Ok(vec![p.clone()]),
            None => Err(Outcome::Failed(
                Reason::ClientError,
                format!("{} has no phone number in oncall.people", c.name),
            )),
        },
    }
}

/// Throttling for SMS: one recipient list, one queue, so phones are paged in order.
pub fn destination(to: &[String]) -> Option<(String, Rate)> {
    Some((
        http::destination_key("sms", &[&to.join(",")]),
        Rate::new(1.0, 3.0),
    ))
}

/// E.164 numbers: `+` then 8 to 15 digits.
pub fn check_numbers(to: &[String], key: &str) -> Result<(), String> {
    if to.is_empty() {
        return Err(format!("{key}: at least one recipient is required"));
    }
    for n in to {
        let digits = n.strip_prefix('+').unwrap_or("");
        if !(8..=15).contains(&digits.len()) || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!(
                "{key}: {n:?} is not an E.164 number (+33600000000)"
            ));
        }
    }
    Ok(())
}

// ---- the generic gateway ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGateway {
    pub send_resolved: Option<bool>,
    pub http_config: Option<HttpConfig>,
    pub url: Option<String>,
    pub url_file: Option<String>,
    pub method: Option<String>,
    /// Header values may be `${ENV}` references.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// `json` (default) or `form`.
    pub content_type: Option<String>,
    /// The body template; `.SMS.To`, `.SMS.Text`, `.SMS.Segments`, `.SMS.Encoding` are set.
    pub body: Option<String>,
    pub to: Vec<String>,
    pub message: Option<String>,
    pub max_segments: Option<u32>,
    pub link: Option<bool>,
    /// A JSON pointer into the answer that must equal `success_value` for a 2xx to count.
    pub success_pointer: Option<String>,
    pub success_value: Option<String>,
    /// Send `Idempotency-Key: <notification>:<recipient>`.
    #[serde(default)]
    pub idempotency_header: bool,
    pub timeout: Option<crate::config::Dur>,
}

#[derive(Debug)]
pub struct Gateway {
    url: String,
    http: Http,
    method: reqwest::Method,
    headers: Vec<(String, String)>,
    form: bool,
    body: Field,
    to: Vec<String>,
    text: Text,
    success: Option<(String, String)>,
    idempotency: bool,
    delivered: Arc<Delivered>,
}

impl Gateway {
    pub fn build(raw: &RawGateway, ctx: &mut BuildCtx<'_>) -> Result<Gateway, String> {
        let url = ctx.secret_url(raw.url.as_deref(), raw.url_file.as_deref(), "url")?;
        let method = match raw.method.as_deref().unwrap_or("POST") {
            "POST" => reqwest::Method::POST,
            "PUT" => reqwest::Method::PUT,
            "GET" => reqwest::Method::GET,
            m => return Err(format!("method: {m:?} is not one of POST, PUT, GET")),
        };
        let form = match raw.content_type.as_deref().unwrap_or("json") {
            "json" => false,
            "form" => true,
            c => return Err(format!("content_type: {c:?} is not json or form")),
        };
        if raw.to.is_empty() {
            return Err("to: at least one recipient is required".into());
        }
        let mut headers = Vec::new();
        for (k, v) in &raw.headers {
            let v =
                http::secret(Some(v), None, ctx.base, &format!("headers.{k}"))?.unwrap_or_default();
            headers.push((k.clone(), v));
        }
        let default_body = if form {
            "to={{ .SMS.To | urlquery }}&text={{ .SMS.Text | urlquery }}"
        } else {
            r#"{"to":{{ .SMS.To | toJson }},"text":{{ .SMS.Text | toJson }}}"#
        };
        let success = match (&raw.success_pointer, &raw.success_value) {
            (Some(p), Some(v)) => Some((p.clone(), v.clone())),
            (None, None) => None,
            _ => return Err("success_pointer and success_value go together".into()),
        };
        let mut errors = Vec::new();
        let timeout_ms = crate::config::dur(&raw.timeout, "timeout", 0, ctx.file, &mut errors);
        if let Some(e) = errors.pop() {
            return Err(e);
        }
        Ok(Gateway {
            http: ctx
                .http(raw.http_config.as_ref())?
                .with_timeout((timeout_ms > 0).then(|| Duration::from_millis(timeout_ms as u64))),
            url,
            method,
            headers,
            form,
            body: ctx.field(raw.body.as_deref(), default_body, "body")?,
            to: raw.to.clone(),
            text: Text::build(raw.message.as_deref(), raw.max_segments, raw.link, ctx)?,
            success,
            idempotency: raw.idempotency_header,
            delivered: Arc::default(),
        })
    }

    async fn send_one(&self, n: &Notification<'_>, to: &str, sms: &Fitted) -> Outcome {
        let mut v = n.value(&http::no_escape);
        if let gotmpl::Value::Map(m) = &mut v {
            let mut s: BTreeMap<Arc<str>, gotmpl::Value> = BTreeMap::new();
            s.insert("To".into(), gotmpl::Value::String(to.into()));
            s.insert(
                "Text".into(),
                gotmpl::Value::String(sms.text.as_str().into()),
            );
            s.insert(
                "Segments".into(),
                gotmpl::Value::Int(i64::from(sms.segments)),
            );
            s.insert(
                "Encoding".into(),
                gotmpl::Value::String(if sms.ucs2 { "UCS-2" } else { "GSM-7" }.into()),
            );
            Arc::make_mut(m).insert("SMS".into(), gotmpl::Value::Map(Arc::new(s)));
        }
        let body = match n.render(&self.body, &v) {
            Ok(b) => b,
            Err(o) => return o,
        };
        let mut req = self
            .http
            .request(self.method.clone(), &self.url)
            .header(
                "Content-Type",
                if self.form {
                    "application/x-www-form-urlencoded"
                } else {
                    "application/json"
                },
            )
            .body(body);
        for (k, v) in &self.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        if self.idempotency {
            req = req.header("Idempotency-Key", format!("{}:{to}", n.id));
        }
        let r = match http::send(req).await {
            Ok(r) => r,
            Err(o) => return o,
        };
        match http::classify(&r, None) {
            Outcome::Sent => match &self.success {
                None => Outcome::Sent,
                Some((ptr, want)) => {
                    let got = r.json().and_then(|j| j.pointer(ptr).cloned());
                    let got_s = match &got {
                        Some(serde_json::Value::String(s)) => s.clone(),
                        Some(other) => other.to_string(),
                        None => String::new(),
                    };
                    if got_s == *want {
                        Outcome::Sent
                    } else {
                        Outcome::Failed(
                            Reason::ClientError,
                            format!("{ptr} is {got_s:?}, not {want:?}: {}", r.snippet()),
                        )
                    }
                }
            },
            o => o,
        }
    }

    async fn send(&self, n: &Notification<'_>) -> Outcome {
        let sms = match self.text.render(n) {
            Ok(s) => s,
            Err(o) => return o,
        };
        per_recipient(&self.delivered, n, &self.to, |to| {
            let sms = &sms;
            async move { self.send_one(n, &to, sms).await }
        })
        .await
    }
}

impl Notifier for Gateway {
    fn notify<'a>(&'a self, n: &'a Notification<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(self.send(n))
    }

    fn destination(&self) -> Option<(String, Rate)> {
        destination(&self.to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm_text_counts_septets() {
        assert_eq!(segments_of(&"a".repeat(160)), (1, false));
        assert_eq!(segments_of(&"a".repeat(161)), (2, false));
        assert_eq!(
            segments_of(&"€".repeat(80)),
            (1, false),
            "extension chars cost two"
        );
        assert_eq!(segments_of(&"€".repeat(81)), (2, false));
        assert_eq!(segments_of("ê"), (1, true), "ê is not GSM-7");
    }

    #[test]
    fn normalization_keeps_gsm7() {
        let n = normalize("Disque “plein” — 97 % sur db01… ça brûle 🔥\nà l’instant");
        assert_eq!(
            n,
            "Disque \"plein\" - 97 % sur db01... ca brule à l'instant"
        );
        assert!(is_gsm(&n));
    }

    #[test]
    fn fitting_keeps_the_link_and_marks_the_cut() {
        let link = "http://r/ui/alerts?filter=x";
        let f = fit(&"word ".repeat(100), Some(link), 1);
        assert_eq!(f.segments, 1);
        assert!(f.text.ends_with(&format!("... {link}")), "{}", f.text);
        assert!(units(&f.text, false) <= 160);
        let f = fit(&"word ".repeat(100), Some(link), 3);
        assert_eq!(f.segments, 3);
        assert!(units(&f.text, false) <= 459);
        // UCS-2 (Cyrillic has no GSM mapping): 70 units, surrogate pairs never split.
        let f = fit(&"диск ".repeat(40), None, 1);
        assert!(
            f.ucs2 && f.segments == 1 && f.text.encode_utf16().count() <= 70,
            "{f:?}"
        );
        let f = fit("short", Some(link), 1);
        assert_eq!(f.text, format!("short {link}"));
    }

    #[test]
    fn combining_per_recipient_outcomes() {
        let ok = || ("+33600000001".to_string(), Outcome::Sent);
        let bad = || {
            (
                "+33600000002".to_string(),
                Outcome::Failed(Reason::ClientError, "barred".into()),
            )
        };
        assert_eq!(combine(vec![ok(), ok()]), Outcome::Sent);
        assert!(matches!(combine(vec![ok(), bad()]), Outcome::Partial(_)));
        assert!(matches!(
            combine(vec![bad()]),
            Outcome::Failed(Reason::ClientError, _)
        ));
        let retry = (
            "+33600000003".to_string(),
            Outcome::Retry(
                Reason::RateLimited,
                "slow".into(),
                Some(Duration::from_secs(2)),
            ),
        );
        assert!(matches!(
            combine(vec![ok(), bad(), retry]),
            Outcome::Retry(..)
        ));
    }
}
