//! Alertmanager's API v2, the part Prometheus, the Loki ruler, Grafana, `amtool` and karma use:
//! alerts (post, list, groups), silences (create/update, list, get, expire), status, receivers.
//! Shapes follow Alertmanager's OpenAPI models, whose required fields `amtool` checks.

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as AxPath, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value as Json, json};

use super::api::S;
use crate::dispatch::AlertView;
use crate::matcher::{Matcher, parse_matchers};
use crate::provider::{Postable, fingerprint_hex, format_time, parse_time};
use crate::silence::{ApiMatcher, Silence, SilenceError, State as SilenceState};

pub fn routes() -> Router<S> {
    Router::new()
        .route("/api/v2/alerts", get(get_alerts).post(post_alerts))
        .route("/api/v2/alerts/groups", get(get_groups))
        .route("/api/v2/silences", get(get_silences).post(post_silence))
        .route(
            "/api/v2/silence/{id}",
            get(get_silence).delete(delete_silence),
        )
        .route("/api/v2/status", get(status))
        .route("/api/v2/receivers", get(receivers))
}

/// Alertmanager's error bodies are JSON strings.
fn fail(code: StatusCode, msg: impl Into<String>) -> Response {
    (code, axum::Json(Json::String(msg.into()))).into_response()
}

fn json_response(v: Json) -> Response {
    axum::Json(v).into_response()
}

async fn post_alerts(State((shared, _)): State<S>, body: Bytes) -> Response {
    let d = &shared.dispatcher;
    let now = d.clock.now();
    let timeout = d.resolve_timeout_ns();
    // The common case, a well-formed batch, in one pass; per-index errors only when it is not.
    if let Ok(batch) = serde_json::from_slice::<Vec<Postable>>(&body) {
        let mut valid = Vec::with_capacity(batch.len());
        let mut errors = Vec::new();
        for (i, p) in batch.into_iter().enumerate() {
            match p.into_alert(now, timeout) {
                Ok(a) => valid.push(a),
                Err(e) => errors.push(format!("alert {i}: {e}")),
            }
        }
        return finish_post(d, valid, errors).await;
    }
    let items: Vec<Json> = match serde_json::from_slice::<Json>(&body) {
        Ok(Json::Array(items)) => items,
        Ok(_) => {
            return fail(
                StatusCode::BAD_REQUEST,
                "parsing alerts body failed: expected a JSON array of alerts",
            );
        }
        Err(e) => {
            return fail(
                StatusCode::BAD_REQUEST,
                format!("parsing alerts body failed: {e}"),
            );
        }
    };
    let mut valid = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let parsed = serde_json::from_value::<Postable>(item)
            .map_err(|e| e.to_string())
            .and_then(|p| p.into_alert(now, timeout));
        match parsed {
            Ok(a) => valid.push(a),
            Err(e) => errors.push(format!("alert {i}: {e}")),
        }
    }
    finish_post(d, valid, errors).await
}

/// Best effort, as Alertmanager: the valid alerts of a batch are kept, the invalid ones named.
async fn finish_post(
    d: &std::sync::Arc<crate::dispatch::Dispatcher>,
    valid: Vec<crate::provider::Alert>,
    errors: Vec<String>,
) -> Response {
    if let Err(e) = d.put(valid).await {
        return fail(StatusCode::INTERNAL_SERVER_ERROR, e);
    }
    if !errors.is_empty() {
        d.stats
            .invalid
            .fetch_add(errors.len() as u64, std::sync::atomic::Ordering::Relaxed);
        return fail(StatusCode::BAD_REQUEST, errors.join("; "));
    }
    StatusCode::OK.into_response()
}

/// The `active`, `silenced`, `inhibited`, `filter` and `receiver` parameters.
struct AlertFilter {
    active: bool,
    silenced: bool,
    inhibited: bool,
    matchers: Vec<Matcher>,
    receiver: Option<regex::Regex>,
}

impl AlertFilter {
    fn parse(query: Option<String>) -> Result<AlertFilter, String> {
        let mut f = AlertFilter {
            active: true,
            silenced: true,
            inhibited: true,
            matchers: Vec::new(),
            receiver: None,
        };
        let flag = |v: &str, name: &str| match v {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err(format!("{name}: invalid boolean {v:?}")),
        };
        for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            match k.as_ref() {
                "active" => f.active = flag(&v, "active")?,
                "silenced" => f.silenced = flag(&v, "silenced")?,
                "inhibited" => f.inhibited = flag(&v, "inhibited")?,
                "unprocessed" => {
                    flag(&v, "unprocessed")?;
                }
                "filter" => f
                    .matchers
                    .extend(parse_matchers(&v).map_err(|e| format!("bad matcher format: {e}"))?),
                "receiver" => {
                    f.receiver = Some(
                        regex::Regex::new(&format!("^(?:{v})$"))
                            .map_err(|e| format!("failed to parse receiver param: {e}"))?,
                    )
                }
                _ => {}
            }
        }
        Ok(f)
    }

    fn keep(&self, v: &AlertView) -> bool {
        if !self.matchers.iter().all(|m| m.matches(&v.alert.labels)) {
            return false;
        }
        if let Some(re) = &self.receiver
            && !v.receivers.iter().any(|r| re.is_match(r))
        {
            return false;
        }
        let suppressed = !v.silenced_by.is_empty() || !v.inhibited_by.is_empty();
        (self.active || suppressed)
            && (self.silenced || v.silenced_by.is_empty())
            && (self.inhibited || v.inhibited_by.is_empty())
    }
}

fn alert_json(v: &AlertView) -> Json {
    let a = &v.alert;
    let suppressed = !v.silenced_by.is_empty() || !v.inhibited_by.is_empty();
    json!({
        "annotations": a.annotations,
        "endsAt": format_time(a.ends_at),
        "fingerprint": fingerprint_hex(a.fingerprint()),
        "receivers": v.receivers.iter().map(|r| json!({"name": r})).collect::<Vec<_>>(),
        "startsAt": format_time(a.starts_at),
        "status": {
            "inhibitedBy": v.inhibited_by.iter().map(|fp| fingerprint_hex(*fp)).collect::<Vec<_>>(),
            "silencedBy": v.silenced_by,
            "state": if suppressed { "suppressed" } else { "active" },
        },
        "updatedAt": format_time(a.updated_at),
        "generatorURL": a.generator_url,
        "labels": a.labels,
    })
}

async fn get_alerts(State((shared, _)): State<S>, RawQuery(q): RawQuery) -> Response {
    let f = match AlertFilter::parse(q) {
        Ok(f) => f,
        Err(e) => return fail(StatusCode::BAD_REQUEST, e),
    };
    let mut alerts: Vec<AlertView> = shared
        .dispatcher
        .alerts()
        .into_iter()
        .filter(|v| f.keep(v))
        .collect();
    alerts.sort_by_key(|v| v.alert.fingerprint());
    json_response(Json::Array(alerts.iter().map(alert_json).collect()))
}

async fn get_groups(State((shared, _)): State<S>, RawQuery(q): RawQuery) -> Response {
    let f = match AlertFilter::parse(q) {
        Ok(f) => f,
        Err(e) => return fail(StatusCode::BAD_REQUEST, e),
    };
    let out: Vec<Json> = shared
        .dispatcher
        .groups()
        .into_iter()
        .filter_map(|(g, alerts)| {
            let alerts: Vec<Json> = alerts
                .iter()
                .filter(|v| f.keep(v))
                .map(alert_json)
                .collect();
            (!alerts.is_empty()).then(|| {
                json!({
                    "labels": g.labels,
                    "receiver": {"name": g.opts.receiver},
                    "alerts": alerts,
                })
            })
        })
        .collect();
    json_response(Json::Array(out))
}

fn silence_json(s: &Silence, now: i64) -> Json {
    json!({
        "id": s.id,
        "status": {"state": s.state(now).as_str()},
        "updatedAt": format_time(s.updated_at),
        "comment": s.comment,
        "createdBy": s.created_by,
        "endsAt": format_time(s.ends_at),
        "matchers": s.matchers,
        "startsAt": format_time(s.starts_at),
    })
}

async fn get_silences(State((shared, _)): State<S>, RawQuery(q): RawQuery) -> Response {
    let mut filter = Vec::new();
    for (k, v) in form_urlencoded::parse(q.unwrap_or_default().as_bytes()) {
        if k == "filter" {
            match parse_matchers(&v) {
                Ok(ms) => filter.extend(ms),
                Err(e) => return fail(StatusCode::BAD_REQUEST, format!("bad matcher format: {e}")),
            }
        }
    }
    let now = shared.dispatcher.clock.now();
    let mut silences: Vec<Silence> = shared
        .dispatcher
        .silences()
        .into_iter()
        .filter(|s| {
            // Alertmanager matches a filter against the silence's own matchers as labels.
            let as_labels: BTreeMap<String, String> = s
                .matchers
                .iter()
                .map(|m| (m.name.clone(), m.value.clone()))
                .collect();
            filter.iter().all(|m| m.matches(&as_labels))
        })
        .collect();
    // Active (ending soonest first), then pending (starting soonest), then expired (latest).
    silences.sort_by(|a, b| {
        let rank = |s: &Silence| match s.state(now) {
            SilenceState::Active => (0, s.ends_at),
            SilenceState::Pending => (1, s.starts_at),
            SilenceState::Expired => (2, -s.ends_at),
        };
        rank(a).cmp(&rank(b))
    });
    json_response(Json::Array(
        silences.iter().map(|s| silence_json(s, now)).collect(),
    ))
}

#[derive(serde::Deserialize)]
struct PostableSilence {
    #[serde(default)]
    id: Option<String>,
    matchers: Vec<ApiMatcher>,
    #[serde(rename = "startsAt")]
    starts_at: String,
    #[serde(rename = "endsAt")]
    ends_at: String,
    #[serde(rename = "createdBy")]
    created_by: String,
    comment: String,
}

async fn post_silence(State((shared, _)): State<S>, body: Bytes) -> Response {
    let p: PostableSilence = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => {
            return fail(
                StatusCode::BAD_REQUEST,
                format!("parsing silence body failed: {e}"),
            );
        }
    };
    let (Some(starts), Some(ends)) = (parse_time(&p.starts_at), parse_time(&p.ends_at)) else {
        return fail(
            StatusCode::BAD_REQUEST,
            "startsAt and endsAt must be RFC 3339 times",
        );
    };
    if starts >= ends {
        return fail(
            StatusCode::BAD_REQUEST,
            "Failed to create silence: start time must be before end time",
        );
    }
    if ends < shared.dispatcher.clock.now() {
        return fail(
            StatusCode::BAD_REQUEST,
            "Failed to create silence: end time can't be in the past",
        );
    }
    let mut s = match Silence::new(p.matchers, starts, ends, p.created_by, p.comment) {
        Ok(s) => s,
        Err(e) => return fail(StatusCode::BAD_REQUEST, format!("invalid silence: {e}")),
    };
    s.id = p.id.unwrap_or_default();
    match shared.dispatcher.set_silence(s).await {
        Ok(id) => json_response(json!({"silenceID": id})),
        Err(SilenceError::NotFound) => fail(StatusCode::NOT_FOUND, "silence not found"),
        Err(SilenceError::Invalid(e)) => {
            fail(StatusCode::BAD_REQUEST, format!("invalid silence: {e}"))
        }
    }
}

async fn get_silence(State((shared, _)): State<S>, AxPath(id): AxPath<String>) -> Response {
    match shared.dispatcher.silence(&id) {
        Some(s) => json_response(silence_json(&s, shared.dispatcher.clock.now())),
        None => fail(StatusCode::NOT_FOUND, "silence not found"),
    }
}

async fn delete_silence(State((shared, _)): State<S>, AxPath(id): AxPath<String>) -> Response {
    match shared.dispatcher.expire_silence(&id).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(SilenceError::NotFound) => fail(StatusCode::NOT_FOUND, "silence not found"),
        Err(SilenceError::Invalid(e)) => fail(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

async fn status(State((shared, _)): State<S>) -> Response {
    let cfg = shared.config();
    let uptime_ms = shared.started.elapsed().as_millis() as i64;
    json_response(json!({
        "cluster": {"status": "disabled", "peers": []},
        "config": {"original": crate::amconfig::redact(&cfg.original)},
        "uptime": format_time((super::now_ms() - uptime_ms) * 1_000_000),
        "versionInfo": {
            "branch": "",
            "buildDate": "",
            "buildUser": "",
            "goVersion": "",
            "revision": "",
            "version": env!("CARGO_PKG_VERSION"),
        },
    }))
}

async fn receivers(State((shared, _)): State<S>) -> Response {
    let names: Vec<Json> = shared
        .dispatcher
        .routing()
        .map(|r| r.receivers.keys().map(|n| json!({"name": n})).collect())
        .unwrap_or_default();
    (
        [(header::CONTENT_TYPE, "application/json")],
        axum::Json(Json::Array(names)),
    )
        .into_response()
}
