//! Receivers and their integrations behind one [`Notifier`] trait, the notification data every
//! integration renders (the webhook body is exactly Alertmanager's `template.Data`), and the
//! retry loop: an integration reports sent, partial, retry (after a delay it may name), or
//! permanent failure, each with a [`Reason`] the metrics count.

pub mod attempts;
pub mod discord;
pub mod email;
pub mod freemobile;
pub mod googlechat;
pub mod http;
pub mod matrix;
pub mod mattermost;
pub mod metrics;
pub mod msteamsv2;
pub mod outbox;
pub mod ovh;
pub mod slack;
pub mod sms;
pub mod telegram;
pub mod template;
pub mod throttle;
pub mod twilio;
pub mod vonage;
pub mod webhook;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::labelset::LabelSet;
use crate::provider::{Alert, fingerprint_hex, format_time};
use template::Templates;

#[derive(Debug, Clone)]
pub struct Receiver {
    pub name: String,
    pub integrations: Vec<Integration>,
    /// `limit: {max, per}`: notifications per window and integration.
    pub limit: Option<Arc<throttle::Limit>>,
    /// The escalation policy firing groups page through.
    pub escalation: Option<String>,
    /// The schedule whose on-call person receives this receiver's notifications.
    pub oncall: Option<String>,
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One integration (Slack, SMS through OVH, …): renders a notification and sends it once;
/// retries, limits and bookkeeping are the caller's.
pub trait Notifier: Send + Sync + std::fmt::Debug {
    fn notify<'a>(&'a self, n: &'a Notification<'a>) -> BoxFuture<'a, Outcome>;

    /// Where messages go (a key that holds no secret in clear) and how fast that place
    /// accepts them; `None` for no throttling.
    fn destination(&self) -> Option<(String, throttle::Rate)> {
        None
    }
}

/// What an integration is asked to send.
pub struct Notification<'a> {
    pub data: &'a Data,
    pub templates: &'a Templates,
    /// The same on every attempt of one notification: Matrix' `txnId`, idempotency keys.
    pub id: &'a str,
    /// An on-call page: the person to reach (their phone, address, chat mention) instead of
    /// the integration's own recipients.
    pub contact: Option<&'a crate::oncall::Contact>,
    /// The signed link that acknowledges the escalation.
    pub ack_url: Option<&'a str>,
}

#[derive(Debug, Clone)]
pub struct Integration {
    /// Alertmanager's integration name (`webhook`, `slack`), part of the notification-log key.
    pub name: &'static str,
    /// Position among the receiver's integrations of that kind.
    pub idx: usize,
    pub send_resolved: bool,
    pub notifier: Arc<dyn Notifier>,
    /// The destination's token bucket, shared with integrations sending to the same place.
    pub bucket: Option<Arc<throttle::Bucket>>,
    /// Notifications this integration prepares and sends at once: a burst of groups waits
    /// here (holding no rendered data) instead of opening a connection per group.
    pub in_flight: Arc<tokio::sync::Semaphore>,
}

/// Concurrent notifications per integration.
pub const MAX_IN_FLIGHT: usize = 8;

impl Integration {
    pub fn new(
        name: &'static str,
        idx: usize,
        send_resolved: bool,
        notifier: Arc<dyn Notifier>,
    ) -> Integration {
        Integration {
            name,
            idx,
            send_resolved,
            notifier,
            bucket: None,
            in_flight: Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT)),
        }
    }
}

impl Integration {
    pub async fn notify(&self, n: &Notification<'_>) -> Outcome {
        self.notifier.notify(n).await
    }
}

/// Alertmanager's `global` keys that integrations default to.
#[derive(Debug, Default, Clone)]
pub struct Globals {
    pub http_config: Option<crate::amconfig::HttpConfig>,
    pub slack_api_url: Option<String>,
    pub slack_api_url_file: Option<String>,
    pub telegram_api_url: Option<String>,
    pub smtp: email::SmtpGlobals,
}

/// What building an integration needs besides its own keys.
pub struct BuildCtx<'a> {
    pub globals: &'a Globals,
    pub base: &'a std::path::Path,
    pub file: &'a str,
    pub templates: &'a mut template::Builder,
}

impl BuildCtx<'_> {
    /// The configured template, else the default; a parse error names the key.
    pub fn field(
        &mut self,
        own: Option<&str>,
        default: &str,
        key: &str,
    ) -> Result<template::Field, String> {
        self.templates
            .field(own.unwrap_or(default))
            .map_err(|e| format!("{key}: {e}"))
    }

    pub fn http(&self, own: Option<&crate::amconfig::HttpConfig>) -> Result<http::Http, String> {
        http::Http::build(own, self.globals.http_config.as_ref(), self.base, self.file)
    }

    pub fn secret(&self, v: Option<&str>, f: Option<&str>, key: &str) -> Result<String, String> {
        http::required_secret(v, f, self.base, key)
    }

    /// A URL that holds its credential (webhooks), from `key` or `key_file`; http(s) only.
    pub fn secret_url(
        &self,
        v: Option<&str>,
        f: Option<&str>,
        key: &str,
    ) -> Result<String, String> {
        let url = self.secret(v, f, key)?;
        http::check_url(&url, key)?;
        Ok(url)
    }
}

impl Notification<'_> {
    /// Renders a text template with values escaped by `esc`; a failure is final.
    pub fn text(
        &self,
        f: &template::Field,
        esc: &dyn Fn(&str) -> String,
    ) -> Result<String, Outcome> {
        self.render(f, &self.value(esc))
    }

    /// The template data, built once when several fields are rendered: Alertmanager's model
    /// plus `.Contact` (Name, Phone, Email, Chat) and `.AckURL` on an on-call page.
    pub fn value(&self, esc: &dyn Fn(&str) -> String) -> gotmpl::Value {
        let mut v = template::value(self.data, esc);
        if let gotmpl::Value::Map(m) = &mut v {
            let m = Arc::make_mut(m);
            if let Some(c) = self.contact {
                let s = |x: &Option<String>| {
                    gotmpl::Value::String(esc(x.as_deref().unwrap_or("")).into())
                };
                let mut cm: BTreeMap<Arc<str>, gotmpl::Value> = BTreeMap::new();
                cm.insert("Name".into(), gotmpl::Value::String(esc(&c.name).into()));
                cm.insert("Phone".into(), s(&c.phone));
                cm.insert("Email".into(), s(&c.email));
                // The mention is the operator's own markup: not escaped.
                cm.insert(
                    "Chat".into(),
                    gotmpl::Value::String(c.chat.as_deref().unwrap_or("").into()),
                );
                m.insert("Contact".into(), gotmpl::Value::Map(Arc::new(cm)));
            }
            m.insert(
                "AckURL".into(),
                gotmpl::Value::String(esc(self.ack_url.unwrap_or("")).into()),
            );
        }
        v
    }

    pub fn render(&self, f: &template::Field, v: &gotmpl::Value) -> Result<String, Outcome> {
        self.templates
            .text(f, v)
            .map_err(|e| Outcome::Failed(Reason::Render, format!("template: {e}")))
    }
}

/// Why an attempt did not fully succeed, as `vigie_notifications_failed_total{reason}` counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// Connection refused, reset, TLS, timeout.
    Transport,
    RateLimited,
    ServerError,
    ClientError,
    /// Credentials refused (401/403 and the API's own auth errors).
    Auth,
    /// Accepted for some recipients only.
    Partial,
    /// The notification could not be rendered or configured secrets could not be read.
    Render,
    /// Rate limited for longer than the cap on a single wait.
    WaitTooLong,
    /// Held back by the receiver's `limit`.
    Limited,
}

impl Reason {
    pub const ALL: [Reason; 9] = [
        Reason::Transport,
        Reason::RateLimited,
        Reason::ServerError,
        Reason::ClientError,
        Reason::Auth,
        Reason::Partial,
        Reason::Render,
        Reason::WaitTooLong,
        Reason::Limited,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Transport => "transport",
            Reason::RateLimited => "rate_limited",
            Reason::ServerError => "server_error",
            Reason::ClientError => "client_error",
            Reason::Auth => "auth",
            Reason::Partial => "partial",
            Reason::Render => "render",
            Reason::WaitTooLong => "wait_too_long",
            Reason::Limited => "limited",
        }
    }
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Sent,
    /// Delivered to some recipients, refused for others (not retried: the refusal is final).
    Partial(String),
    /// Worth trying again, after the given delay if the receiver named one.
    Retry(Reason, String, Option<Duration>),
    Failed(Reason, String),
}

/// One alert as notifications show it.
#[derive(Debug, Clone, Serialize)]
pub struct DataAlert {
    pub status: &'static str,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    #[serde(rename = "startsAt")]
    pub starts_at: String,
    #[serde(rename = "endsAt")]
    pub ends_at: String,
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
    pub fingerprint: String,
    /// Unix nanoseconds, for templates' time functions.
    #[serde(skip)]
    pub starts_ns: i64,
    #[serde(skip)]
    pub ends_ns: i64,
}

/// Alertmanager's notification data model, field for field.
#[derive(Debug, Clone, Serialize)]
pub struct Data {
    pub receiver: String,
    pub status: &'static str,
    pub alerts: Vec<DataAlert>,
    #[serde(rename = "groupLabels")]
    pub group_labels: BTreeMap<String, String>,
    #[serde(rename = "commonLabels")]
    pub common_labels: BTreeMap<String, String>,
    #[serde(rename = "commonAnnotations")]
    pub common_annotations: BTreeMap<String, String>,
    #[serde(rename = "externalURL")]
    pub external_url: String,
    #[serde(skip)]
    pub group_key: String,
}

impl Data {
    /// `alerts` carry `ends_at == 0` while firing (the flush clears ends in the future).
    pub fn new(
        receiver: &str,
        group_key: &str,
        group_labels: &BTreeMap<String, String>,
        alerts: &[Arc<Alert>],
        external_url: &str,
    ) -> Data {
        let firing = alerts.iter().any(|a| a.ends_at == 0);
        let common = |get: fn(&Alert) -> &LabelSet| {
            let mut out = alerts.first().map(|a| get(a).to_map()).unwrap_or_default();
            for a in alerts.iter().skip(1) {
                out.retain(|k, v| get(a).get(k) == Some(v.as_str()));
            }
            out
        };
        Data {
            receiver: receiver.to_string(),
            status: if firing { "firing" } else { "resolved" },
            alerts: alerts
                .iter()
                .map(|a| DataAlert {
                    status: if a.ends_at == 0 { "firing" } else { "resolved" },
                    labels: a.labels.to_map(),
                    annotations: a.annotations.to_map(),
                    starts_at: format_time(a.starts_at),
                    ends_at: format_time(a.ends_at),
                    generator_url: a.generator_url.to_string(),
                    fingerprint: fingerprint_hex(a.fingerprint()),
                    starts_ns: a.starts_at,
                    ends_ns: a.ends_at,
                })
                .collect(),
            group_labels: group_labels.clone(),
            common_labels: common(|a| &a.labels),
            common_annotations: common(|a| &a.annotations),
            external_url: external_url.to_string(),
            group_key: group_key.to_string(),
        }
    }
}

impl Data {
    /// The group in the router's UI: its alerts page filtered by the group's labels.
    pub fn group_url(&self) -> String {
        let filter: Vec<String> = self
            .group_labels
            .iter()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect();
        let q: String = form_urlencoded::byte_serialize(filter.join(",").as_bytes()).collect();
        format!(
            "{}/ui/alerts?filter={q}",
            self.external_url.trim_end_matches('/')
        )
    }
}

/// What `send_with_retry` came to.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub attempts: u32,
    /// Each try's result, for the attempt log.
    pub tries: Vec<String>,
    /// `None` when sent; the reason of the last failure otherwise (partial: sent, but).
    pub failure: Option<(Reason, String)>,
    pub sent: bool,
}

/// Tries an integration until it succeeds, fails for good, or the deadline passes: Alertmanager's
/// exponential back-off (0.5 s × 1.5ⁿ, ±50 % jitter, at most 60 s between tries), or the wait the
/// receiver named when it named one.
pub async fn send_with_retry(
    integration: &Integration,
    n: &Notification<'_>,
    deadline: tokio::time::Instant,
) -> Delivery {
    let mut attempt: u32 = 0;
    let mut tries: Vec<String> = Vec::new();
    let mut backoff = 0.5_f64;
    let at = |i: &Integration| format!("{}/{}", i.name, i.idx);
    loop {
        attempt += 1;
        let outcome = tokio::time::timeout_at(deadline, async {
            if let Some(b) = &integration.bucket {
                b.take().await;
            }
            integration.notify(n).await
        })
        .await;
        tries.push(match &outcome {
            Err(_) => "deadline passed".to_string(),
            Ok(Outcome::Sent) => "sent".to_string(),
            Ok(Outcome::Partial(e)) => format!("partial: {e}"),
            Ok(Outcome::Failed(r, e)) => format!("{}: {e}", r.as_str()),
            Ok(Outcome::Retry(r, e, w)) => match w {
                Some(w) => format!(
                    "{}: {e} (asked to wait {:.1}s)",
                    r.as_str(),
                    w.as_secs_f64()
                ),
                None => format!("{}: {e}", r.as_str()),
            },
        });
        let mut finish = |failure: Option<(Reason, String)>, sent: bool| Delivery {
            tries: std::mem::take(&mut tries),
            attempts: attempt,
            failure,
            sent,
        };
        let (reason, msg, after) = match outcome {
            Err(_) => {
                let e = format!(
                    "{}: deadline passed after {attempt} attempts",
                    at(integration)
                );
                return finish(Some((Reason::Transport, e)), false);
            }
            Ok(Outcome::Sent) => return finish(None, true),
            Ok(Outcome::Partial(e)) => {
                return finish(
                    Some((Reason::Partial, format!("{}: {e}", at(integration)))),
                    true,
                );
            }
            Ok(Outcome::Failed(r, e)) => {
                let e = format!(
                    "{}: notify retry canceled due to unrecoverable error after {attempt} attempts: {e}",
                    at(integration)
                );
                return finish(Some((r, e)), false);
            }
            Ok(Outcome::Retry(r, e, after)) => (r, e, after),
        };
        let wait = after.unwrap_or_else(|| {
            let jitter = 0.5 + jitter_unit();
            Duration::from_secs_f64((backoff * jitter).min(60.0))
        });
        backoff = (backoff * 1.5).min(60.0);
        if tokio::time::Instant::now() + wait >= deadline {
            let e = format!(
                "{}: notify failed after {attempt} attempts: {msg}",
                at(integration)
            );
            return finish(Some((reason, e)), false);
        }
        tracing::debug!(integration = integration.name, error = %msg, ?wait, "notify attempt failed; retrying");
        tokio::time::sleep(wait).await;
    }
}

/// A number in [0, 1) that differs between calls; jitter needs nothing better.
fn jitter_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}
