//! Mail through SMTP with `lettre`, configured with Alertmanager's `email_configs` keys and
//! `global.smtp_*` defaults. STARTTLS is required unless `require_tls: false`; port 465 (or
//! `force_implicit_tls`) means implicit TLS; AUTH PLAIN or LOGIN only after TLS. Text and HTML
//! go as `multipart/alternative`. Every mail has its own `Message-ID` and points at one root id
//! per alert group in `In-Reply-To`/`References`, so firing, repeats and resolved thread
//! together. One pooled transport per integration reuses connections during a burst.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, Identity, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Deserialize;

use super::http;
use super::template::Field;
use super::throttle::Rate;
use super::{BoxFuture, BuildCtx, Notification, Notifier, Outcome, Reason};
use crate::config::TlsConfig;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEmail {
    pub send_resolved: Option<bool>,
    pub to: Option<String>,
    pub from: Option<String>,
    pub smarthost: Option<String>,
    pub hello: Option<String>,
    pub auth_username: Option<String>,
    pub auth_password: Option<String>,
    pub auth_password_file: Option<String>,
    pub auth_secret: Option<String>,
    pub auth_secret_file: Option<String>,
    pub auth_identity: Option<String>,
    pub require_tls: Option<bool>,
    pub force_implicit_tls: Option<bool>,
    pub tls_config: Option<TlsConfig>,
    pub html: Option<String>,
    pub text: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// `global.smtp_*`.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct SmtpGlobals {
    pub from: Option<String>,
    pub hello: Option<String>,
    pub smarthost: Option<String>,
    pub auth_username: Option<String>,
    pub auth_password: Option<String>,
    pub auth_password_file: Option<String>,
    pub auth_identity: Option<String>,
    pub require_tls: Option<bool>,
    pub tls_config: Option<TlsConfig>,
}

/// How to reach the server; the transport is made on first use (it needs the runtime).
#[derive(Debug, Clone)]
struct Server {
    host: String,
    port: u16,
    mode: Mode,
    hello: String,
    credentials: Option<(String, String)>,
    tls: TlsConfig,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Implicit,
    StartTlsRequired,
    /// `require_tls: false`: STARTTLS when offered, else plain.
    Opportunistic,
}

#[derive(Debug)]
pub struct Email {
    server: Server,
    transport: OnceLock<Result<AsyncSmtpTransport<Tokio1Executor>, String>>,
    from: Mailbox,
    to: Vec<Mailbox>,
    subject: Field,
    html: Option<Field>,
    text: Option<Field>,
    headers: Vec<(HeaderName, Field)>,
    /// The domain of message ids.
    domain: String,
}

const TIMEOUT: Duration = Duration::from_secs(30);

impl Email {
    pub fn build(raw: &RawEmail, ctx: &mut BuildCtx<'_>) -> Result<Email, String> {
        let g = &ctx.globals.smtp;
        let to = raw.to.as_deref().ok_or("missing to address")?;
        let to: Vec<Mailbox> = to
            .split(',')
            .map(|a| a.trim().parse().map_err(|e| format!("to: {a:?}: {e}")))
            .collect::<Result<_, _>>()?;
        let from_s = raw
            .from
            .clone()
            .or_else(|| g.from.clone())
            .ok_or("no from address (nor global.smtp_from)")?;
        let from: Mailbox = from_s
            .parse()
            .map_err(|e| format!("from: {from_s:?}: {e}"))?;
        let smarthost = raw
            .smarthost
            .clone()
            .or_else(|| g.smarthost.clone())
            .ok_or("no smarthost (nor global.smtp_smarthost)")?;
        let (host, port) = smarthost
            .rsplit_once(':')
            .and_then(|(h, p)| {
                Some((
                    h.trim_matches(['[', ']']).to_string(),
                    p.parse::<u16>().ok()?,
                ))
            })
            .ok_or_else(|| format!("smarthost: {smarthost:?} is not host:port"))?;
        if raw.auth_secret.is_some() || raw.auth_secret_file.is_some() {
            return Err("auth_secret (CRAM-MD5) is not supported: use auth_password (PLAIN or LOGIN over TLS)".into());
        }
        let user = raw
            .auth_username
            .clone()
            .or_else(|| g.auth_username.clone());
        let credentials = match user {
            Some(u) => {
                let own = raw.auth_password.is_some() || raw.auth_password_file.is_some();
                let (p, f) = if own {
                    (
                        raw.auth_password.as_deref(),
                        raw.auth_password_file.as_deref(),
                    )
                } else {
                    (g.auth_password.as_deref(), g.auth_password_file.as_deref())
                };
                Some((u, ctx.secret(p, f, "auth_password")?))
            }
            None => None,
        };
        let require_tls = raw.require_tls.or(g.require_tls).unwrap_or(true);
        let mode = if raw.force_implicit_tls == Some(true)
            || (raw.force_implicit_tls.is_none() && port == 465)
        {
            Mode::Implicit
        } else if require_tls {
            Mode::StartTlsRequired
        } else {
            Mode::Opportunistic
        };
        let tls = crate::config::resolve_tls(
            raw.tls_config
                .clone()
                .or_else(|| g.tls_config.clone())
                .unwrap_or_default(),
            ctx.base,
        );
        let mut headers = Vec::new();
        for (k, v) in &raw.headers {
            let lower = k.to_ascii_lowercase();
            if matches!(
                lower.as_str(),
                "to" | "from" | "subject" | "message-id" | "in-reply-to" | "references"
            ) {
                if lower == "subject" {
                    continue;
                }
                return Err(format!("headers: {k} is set by the router"));
            }
            let name = HeaderName::new_from_ascii(k.clone())
                .map_err(|e| format!("headers: {k:?}: {e}"))?;
            headers.push((name, ctx.field(Some(v), "", &format!("headers.{k}"))?));
        }
        let subject = raw
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("subject"))
            .map(|(_, v)| v.as_str());
        let text = match raw.text.as_deref() {
            Some("") => None,
            own => Some(ctx.field(own, r#"{{ template "email.default.text" . }}"#, "text")?),
        };
        let html = match raw.html.as_deref() {
            Some("") => None,
            own => Some(ctx.field(own, r#"{{ template "email.default.html" . }}"#, "html")?),
        };
        if text.is_none() && html.is_none() {
            return Err("at least one of text or html must be non-empty".into());
        }
        let hello = raw
            .hello
            .clone()
            .or_else(|| g.hello.clone())
            .unwrap_or_else(|| "localhost".into());
        Ok(Email {
            server: Server {
                host,
                port,
                mode,
                hello,
                credentials,
                tls,
            },
            transport: OnceLock::new(),
            domain: from.email.domain().to_string(),
            from,
            to,
            subject: ctx.field(
                subject,
                r#"{{ template "email.default.subject" . }}"#,
                "headers.Subject",
            )?,
            html,
            text,
            headers,
        })
    }

    fn transport(&self) -> Result<&AsyncSmtpTransport<Tokio1Executor>, Outcome> {
        self.transport
            .get_or_init(|| make_transport(&self.server))
            .as_ref()
            .map_err(|e| Outcome::Failed(Reason::Render, e.clone()))
    }

    /// The message for this notification; its root id is the group's.
    pub fn message(&self, n: &Notification<'_>) -> Result<Message, Outcome> {
        let plain = n.value(&http::no_escape);
        let subject = n.render(&self.subject, &plain)?;
        let root = format!(
            "<group.{}@{}>",
            http::short_hash(&[&n.data.group_key]),
            self.domain
        );
        let mut b = Message::builder()
            .from(self.from.clone())
            .subject(subject.replace(['\r', '\n'], " "))
            .message_id(Some(format!(
                "<{}.{}@{}>",
                n.id,
                http::short_hash(&[&n.data.group_key]),
                self.domain
            )))
            .in_reply_to(root.clone())
            .references(root)
            .user_agent(http::USER_AGENT.to_string());
        match n.contact {
            // An on-call page goes to the person on call.
            Some(c) => {
                let addr = c.email.as_deref().ok_or_else(|| {
                    Outcome::Failed(
                        Reason::ClientError,
                        format!("{} has no email address in oncall.people", c.name),
                    )
                })?;
                let mb: Mailbox = addr.parse().map_err(|e| {
                    Outcome::Failed(
                        Reason::ClientError,
                        format!("{}'s address {addr:?}: {e}", c.name),
                    )
                })?;
                b = b.to(mb);
            }
            None => {
                for t in &self.to {
                    b = b.to(t.clone());
                }
            }
        }
        for (name, f) in &self.headers {
            let v = n.render(f, &plain)?.replace(['\r', '\n'], " ");
            b = b.raw_header(HeaderValue::new(name.clone(), v));
        }
        let text = match &self.text {
            Some(f) => Some(n.render(f, &plain)?),
            None => None,
        };
        let html = match &self.html {
            Some(f) => Some(
                n.templates
                    .html(f, &plain)
                    .map_err(|e| Outcome::Failed(Reason::Render, format!("template: {e}")))?,
            ),
            None => None,
        };
        let m = match (text, html) {
            (Some(t), Some(h)) => b.multipart(MultiPart::alternative_plain_html(t, h)),
            (Some(t), None) => b.singlepart(SinglePart::plain(t)),
            (None, Some(h)) => b.singlepart(SinglePart::html(h)),
            (None, None) => return Err(Outcome::Failed(Reason::Render, "no body".into())),
        };
        m.map_err(|e| Outcome::Failed(Reason::Render, format!("building the message: {e}")))
    }

    async fn send(&self, n: &Notification<'_>) -> Outcome {
        let m = match self.message(n) {
            Ok(m) => m,
            Err(o) => return o,
        };
        let t = match self.transport() {
            Ok(t) => t,
            Err(o) => return o,
        };
        match t.send(m).await {
            Ok(_) => Outcome::Sent,
            Err(e) => classify(&e),
        }
    }
}

/// SMTP 4xx, timeouts, connection and TLS trouble are worth another try; 5xx is final (535 is
/// refused credentials).
fn classify(e: &lettre::transport::smtp::Error) -> Outcome {
    let msg = e.to_string();
    if e.is_permanent() {
        let auth = e.status().map(|c| c.to_string()) == Some("535".into())
            || e.status().map(|c| c.to_string()) == Some("530".into());
        return Outcome::Failed(
            if auth {
                Reason::Auth
            } else {
                Reason::ClientError
            },
            msg,
        );
    }
    if e.is_transient() {
        return Outcome::Retry(Reason::ServerError, msg, None);
    }
    if e.is_client() {
        // No common AUTH mechanism, STARTTLS not offered though required: configuration.
        return Outcome::Failed(Reason::ClientError, msg);
    }
    Outcome::Retry(Reason::Transport, msg, None)
}

fn make_transport(s: &Server) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let domain = s.tls.server_name.clone().unwrap_or_else(|| s.host.clone());
    let mut p = TlsParameters::builder(domain);
    if let Some(ca) = &s.tls.ca_file {
        let pem = std::fs::read(ca).map_err(|e| format!("tls_config.ca_file: {ca}: {e}"))?;
        p = p.add_root_certificate(
            Certificate::from_pem(&pem).map_err(|e| format!("tls_config.ca_file: {ca}: {e}"))?,
        );
    }
    if let (Some(c), Some(k)) = (&s.tls.cert_file, &s.tls.key_file) {
        let cert = std::fs::read(c).map_err(|e| format!("tls_config.cert_file: {c}: {e}"))?;
        let key = std::fs::read(k).map_err(|e| format!("tls_config.key_file: {k}: {e}"))?;
        p = p.identify_with(
            Identity::from_pem(&cert, &key)
                .map_err(|e| format!("tls_config: client certificate: {e}"))?,
        );
    }
    let params = p
        .dangerous_accept_invalid_certs(s.tls.insecure_skip_verify)
        .build_rustls()
        .map_err(|e| format!("tls_config: {e}"))?;
    let tls = match s.mode {
        Mode::Implicit => Tls::Wrapper(params),
        Mode::StartTlsRequired => Tls::Required(params),
        Mode::Opportunistic => Tls::Opportunistic(params),
    };
    let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host)
        .port(s.port)
        .tls(tls)
        .hello_name(ClientId::Domain(s.hello.clone()))
        .timeout(Some(TIMEOUT));
    if let Some((u, p)) = &s.credentials {
        b = b
            .credentials(Credentials::new(u.clone(), p.clone()))
            .authentication(vec![Mechanism::Plain, Mechanism::Login]);
    }
    Ok(b.build())
}

impl Notifier for Email {
    fn notify<'a>(&'a self, n: &'a Notification<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(self.send(n))
    }

    /// Relays throttle bursts; pooled connections go one after another.
    fn destination(&self) -> Option<(String, Rate)> {
        Some((
            format!("smtp:{}:{}", self.server.host, self.server.port),
            Rate::new(5.0, 10.0),
        ))
    }
}
