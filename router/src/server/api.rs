//! The HTTP surface: Prometheus' query API (so Grafana can use the router as a Prometheus data
//! source), `/api/v1/rules` and `/api/v1/alerts`, targets, health, reload, and `/metrics`.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as AxPath, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde_json::{Value as Json, json};
use vigie_exposition::{Family, Kind};
use vigie_promql::{Labels, Value, format_go_float, notation::parse_duration};

use super::{Shared, Tasks, now_ms, reload, rfc3339};
use crate::alerting::{Alert, State as AlertState};
use crate::rules::group::RuleState;

pub type S = (Arc<Shared>, Arc<Mutex<Tasks>>);

pub fn router(shared: Arc<Shared>, tasks: Arc<Mutex<Tasks>>) -> Router {
    Router::new()
        .route("/api/v1/query", any(query))
        .route("/api/v1/query_range", any(query_range))
        .route("/api/v1/series", any(series))
        .route("/api/v1/labels", any(labels))
        .route("/api/v1/label/{name}/values", get(label_values))
        .route("/api/v1/rules", get(rules))
        .route("/api/v1/alerts", get(alerts))
        .route("/api/v1/targets", get(targets))
        .route("/api/v1/metadata", get(|| async { ok(json!({})) }))
        .route("/api/v1/status/buildinfo", get(buildinfo))
        .route("/api/v1/status/config", get(status_config))
        .route("/api/v1/status/runtimeinfo", get(runtimeinfo))
        .route("/-/healthy", get(|| async { "Healthy.\n" }))
        .route("/-/ready", get(|| async { "Ready.\n" }))
        .route("/-/reload", post(reload_handler))
        .route("/metrics", get(metrics))
        .route("/api/v1/notifications", get(notifications))
        .merge(super::apiv2::routes())
        .merge(super::ui::routes())
        .merge(super::oncall::routes())
        .with_state((shared, tasks))
}

fn ok(data: Json) -> Response {
    axum::Json(json!({"status": "success", "data": data})).into_response()
}

fn error(status: StatusCode, kind: &str, msg: impl Into<String>) -> Response {
    (
        status,
        axum::Json(json!({"status": "error", "errorType": kind, "error": msg.into()})),
    )
        .into_response()
}

fn bad(msg: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, "bad_data", msg)
}

/// Form parameters from the query string and, for POST, the urlencoded body.
fn params(
    query: Option<String>,
    method: &Method,
    headers: &HeaderMap,
    body: &Bytes,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut add = |s: &[u8]| {
        out.extend(form_urlencoded::parse(s).map(|(k, v)| (k.into_owned(), v.into_owned())));
    };
    if let Some(q) = &query {
        add(q.as_bytes());
    }
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if method == Method::POST && form {
        add(body);
    }
    out
}

fn param<'a>(p: &'a [(String, String)], name: &str) -> Option<&'a str> {
    p.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// A time parameter: Unix seconds (fractional) or RFC 3339.
fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(f) = s.parse::<f64>() {
        return Ok((f * 1000.0).round() as i64);
    }
    parse_rfc3339(s).ok_or_else(|| format!("cannot parse {s:?} to a valid timestamp"))
}

fn parse_rfc3339(s: &str) -> Option<i64> {
    // YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || (b[10] != b'T' && b[10] != b't') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d, h, mi, se) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    let mut rest = &s[19..];
    let mut ms = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(frac.len());
        let f = &frac[..digits];
        ms = format!("{:0<3}", &f[..f.len().min(3)]).parse().ok()?;
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6 => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            sign * (o[1..3].parse::<i64>().ok()? * 3600 + o[4..6].parse::<i64>().ok()? * 60)
        }
        _ => return None,
    };
    let days = vigie_promql::days_from_civil(y, mo as u32, d as u32);
    Some(((days * 86400 + h * 3600 + mi * 60 + se - offset) * 1000) + ms)
}

fn parse_step(s: &str) -> Result<i64, String> {
    if let Ok(f) = s.parse::<f64>() {
        return Ok((f * 1000.0).round() as i64);
    }
    parse_duration(s).map_err(|_| format!("cannot parse {s:?} to a valid duration"))
}

fn secs(ms: i64) -> Json {
    json!(ms as f64 / 1000.0)
}

fn metric_json(l: &Labels) -> Json {
    Json::Object(l.iter().map(|(k, v)| (k.to_string(), json!(v))).collect())
}

fn value_json(v: &Value, ts: i64) -> Json {
    match v {
        Value::Scalar(f) => {
            json!({"resultType": "scalar", "result": [secs(ts), format_go_float(*f)]})
        }
        Value::String(s) => json!({"resultType": "string", "result": [secs(ts), s]}),
        Value::Vector(samples) => json!({
            "resultType": "vector",
            "result": samples.iter().map(|s| json!({"metric": metric_json(&s.metric), "value": [secs(ts), format_go_float(s.v)]})).collect::<Vec<_>>(),
        }),
        Value::Matrix(series) => json!({
            "resultType": "matrix",
            "result": series.iter().map(|s| json!({
                "metric": metric_json(&s.metric),
                "values": s.points.iter().map(|(t, v)| json!([secs(*t), format_go_float(*v)])).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        }),
    }
}

/// The `query` parameter, parsed.
fn query_param(p: &[(String, String)]) -> Result<(String, promql_parser::parser::Expr), String> {
    let text = param(p, "query").ok_or("missing query parameter")?;
    let expr = vigie_promql::parse(text).map_err(|e| e.to_string())?;
    Ok((text.to_string(), expr))
}

async fn query(
    State((shared, _)): State<S>,
    method: Method,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    let p = params(q, &method, &headers, &body);
    let (text, expr) = match query_param(&p) {
        Ok(q) => q,
        Err(e) => return bad(e),
    };
    let ts = match param(&p, "time") {
        Some(t) => match parse_time(t) {
            Ok(t) => t,
            Err(e) => return bad(format!("invalid parameter \"time\": {e}")),
        },
        None => now_ms(),
    };
    let result = tokio::task::spawn_blocking(move || shared.query(&expr, &text, ts)).await;
    match result {
        Ok(Ok(v)) => ok(value_json(&v, ts)),
        Ok(Err(e)) => error(StatusCode::UNPROCESSABLE_ENTITY, "execution", e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
    }
}

async fn query_range(
    State((shared, _)): State<S>,
    method: Method,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    let p = params(q, &method, &headers, &body);
    let (_, expr) = match query_param(&p) {
        Ok(q) => q,
        Err(e) => return bad(e),
    };
    let get = |name: &str, f: fn(&str) -> Result<i64, String>| -> Result<i64, String> {
        let v = param(&p, name).ok_or_else(|| format!("missing parameter {name:?}"))?;
        f(v).map_err(|e| format!("invalid parameter {name:?}: {e}"))
    };
    let (start, end, step) = match (
        get("start", parse_time),
        get("end", parse_time),
        get("step", parse_step),
    ) {
        (Ok(a), Ok(b), Ok(c)) => (a, b, c),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return bad(e),
    };
    if end < start {
        return bad("end timestamp must not be before start time");
    }
    if step <= 0 {
        return bad(
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        );
    }
    if (end - start) / step > 11_000 {
        return bad(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        );
    }
    if shared.remote().is_some() {
        // In remote mode Grafana should query the remote API itself.
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "execution",
            "range queries go to the remote query API directly in remote mode",
        );
    }
    let result = tokio::task::spawn_blocking(move || {
        shared
            .engine
            .range(&*shared.store_read(), &expr, start, end, step)
    })
    .await;
    match result {
        Ok(Ok(series)) => ok(value_json(&Value::Matrix(series), end)),
        Ok(Err(e)) => error(StatusCode::UNPROCESSABLE_ENTITY, "execution", e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
    }
}

/// `match[]` selectors, start and end (default: everything in the store).
fn selection(
    p: &[(String, String)],
) -> Result<(Vec<Vec<promql_parser::label::Matcher>>, i64, i64), String> {
    let mut selectors = Vec::new();
    for (k, v) in p {
        if k == "match[]" {
            match vigie_promql::parse(v) {
                Ok(promql_parser::parser::Expr::VectorSelector(vs)) => {
                    selectors.extend(vigie_promql::selector_matchers(&vs));
                }
                Ok(_) => {
                    return Err(format!(
                        "invalid parameter \"match[]\": {v:?} is not a series selector"
                    ));
                }
                Err(e) => return Err(format!("invalid parameter \"match[]\": {e}")),
            }
        }
    }
    let start = match param(p, "start") {
        Some(s) => parse_time(s)?,
        None => i64::MIN,
    };
    let end = match param(p, "end") {
        Some(s) => parse_time(s)?,
        None => i64::MAX,
    };
    Ok((selectors, start, end))
}

/// The label sets the `match[]`, `start` and `end` parameters select (all series without
/// `match[]`, unless `required`).
fn matching_series(
    shared: &Shared,
    p: &[(String, String)],
    required: bool,
) -> Result<Vec<Labels>, String> {
    let (selectors, start, end) = selection(p)?;
    if required && selectors.is_empty() {
        return Err("no match[] parameter provided".into());
    }
    Ok(shared.store_read().series_labels(&selectors, start, end))
}

/// Sorted distinct values.
fn distinct(mut v: Vec<String>) -> Json {
    v.sort();
    v.dedup();
    json!(v)
}

async fn series(
    State((shared, _)): State<S>,
    method: Method,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    let p = params(q, &method, &headers, &body);
    match matching_series(&shared, &p, true) {
        Ok(found) => ok(Json::Array(found.iter().map(metric_json).collect())),
        Err(e) => bad(e),
    }
}

async fn labels(
    State((shared, _)): State<S>,
    method: Method,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    let p = params(q, &method, &headers, &body);
    match matching_series(&shared, &p, false) {
        Ok(found) => ok(distinct(
            found
                .iter()
                .flat_map(|l| l.iter().map(|(k, _)| k.to_string()).collect::<Vec<_>>())
                .collect(),
        )),
        Err(e) => bad(e),
    }
}

async fn label_values(
    State((shared, _)): State<S>,
    AxPath(name): AxPath<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let p = params(q, &Method::GET, &HeaderMap::new(), &Bytes::new());
    match matching_series(&shared, &p, false) {
        Ok(found) => ok(distinct(
            found
                .iter()
                .map(|l| l.get(&name).to_string())
                .filter(|v| !v.is_empty())
                .collect(),
        )),
        Err(e) => bad(e),
    }
}

fn alert_json(a: &Alert) -> Json {
    let mut j = json!({
        "labels": metric_json(&a.labels),
        "annotations": Json::Object(a.annotations.iter().map(|(k, v)| (k.clone(), json!(v))).collect()),
        "state": a.state.as_str(),
        "activeAt": rfc3339(a.active_at),
        "value": format_go_float(a.value),
    });
    if let Some(k) = a.keep_firing_since {
        j["keepFiringSince"] = json!(rfc3339(k));
    }
    j
}

async fn rules(State((shared, _)): State<S>, RawQuery(q): RawQuery) -> Response {
    let p = params(q, &Method::GET, &HeaderMap::new(), &Bytes::new());
    let want = param(&p, "type");
    let cfg = shared.config();
    let stats = shared
        .group_stats
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let mut groups = Vec::new();
    for g in shared.groups() {
        let g = g.lock().unwrap_or_else(|p| p.into_inner());
        let key = g.group.key();
        let st = stats.get(&key).cloned().unwrap_or_default();
        let last_eval = if st.last_eval_ms > 0 {
            rfc3339(st.last_eval_ms)
        } else {
            "0001-01-01T00:00:00Z".into()
        };
        let mut rules = Vec::new();
        for r in &g.rules {
            let health = if r.last_error().is_some() {
                "err"
            } else if st.evaluations == 0 {
                "unknown"
            } else {
                "ok"
            };
            let (rule, kind) = match r {
                RuleState::Recording { rule, .. } => (rule, "recording"),
                RuleState::Alerting { rule, .. } => (&rule.rule, "alerting"),
            };
            if want.is_some_and(|w| !kind.starts_with(&w[..w.len().min(5)])) {
                continue;
            }
            let labels = Json::Object(
                rule.labels
                    .iter()
                    .map(|(k, v)| (k.clone(), json!(v)))
                    .collect(),
            );
            let mut j = json!({
                "name": rule.name,
                "query": rule.expr_text,
                "labels": labels,
                "health": health,
                "lastError": r.last_error().unwrap_or(""),
                "evaluationTime": st.last_duration_s,
                "lastEvaluation": last_eval,
                "type": kind,
            });
            if let RuleState::Alerting { rule: ar, .. } = r {
                let (for_ms, keep, annotations) = match &ar.rule.kind {
                    crate::rules::file::RuleKind::Alerting {
                        for_ms,
                        keep_firing_for_ms,
                        annotations,
                    } => (*for_ms, *keep_firing_for_ms, annotations.clone()),
                    _ => (0, 0, Vec::new()),
                };
                let active: Vec<&Alert> = ar
                    .active
                    .values()
                    .filter(|a| a.state != AlertState::Inactive)
                    .collect();
                let state = if active.iter().any(|a| a.state == AlertState::Firing) {
                    "firing"
                } else if active.is_empty() {
                    "inactive"
                } else {
                    "pending"
                };
                j["state"] = json!(state);
                j["duration"] = json!(for_ms as f64 / 1000.0);
                j["keepFiringFor"] = json!(keep as f64 / 1000.0);
                j["annotations"] = Json::Object(
                    annotations
                        .into_iter()
                        .map(|(k, v)| (k, json!(v)))
                        .collect(),
                );
                j["alerts"] = json!(active.iter().map(|a| alert_json(a)).collect::<Vec<_>>());
            }
            rules.push(j);
        }
        groups.push(json!({
            "name": g.group.name,
            "file": g.group.file,
            "interval": g.group.interval.unwrap_or(cfg.evaluation_interval_ms) as f64 / 1000.0,
            "limit": g.group.limit,
            "rules": rules,
            "evaluationTime": st.last_duration_s,
            "lastEvaluation": last_eval,
        }));
    }
    ok(json!({"groups": groups}))
}

async fn alerts(State((shared, _)): State<S>) -> Response {
    let mut out = Vec::new();
    for g in shared.groups() {
        let g = g.lock().unwrap_or_else(|p| p.into_inner());
        for r in &g.rules {
            if let RuleState::Alerting { rule, .. } = r {
                out.extend(
                    rule.active
                        .values()
                        .filter(|a| a.state != AlertState::Inactive)
                        .map(alert_json),
                );
            }
        }
    }
    ok(json!({"alerts": out}))
}

async fn targets(State((shared, _)): State<S>) -> Response {
    let active: Vec<Json> = shared
        .health()
        .into_iter()
        .map(|(t, h)| {
            json!({
                "labels": Json::Object(t.labels.iter().map(|(k, v)| (k.clone(), json!(v))).collect()),
                "scrapePool": t.job,
                "scrapeUrl": t.url,
                "health": if h.last_scrape_ms == 0 { "unknown" } else if h.up { "up" } else { "down" },
                "lastError": h.last_error,
                "lastScrape": if h.last_scrape_ms == 0 { "0001-01-01T00:00:00Z".to_string() } else { rfc3339(h.last_scrape_ms) },
                "lastScrapeDuration": h.last_duration_s,
                "scrapeInterval": format!("{}s", t.interval_ms / 1000),
                "scrapeTimeout": format!("{}s", t.timeout_ms / 1000),
            })
        })
        .collect();
    ok(json!({"activeTargets": active, "droppedTargets": []}))
}

async fn buildinfo() -> Response {
    ok(json!({
        "version": "2.42.0",
        "revision": "vigie-router",
        "branch": "",
        "buildUser": "",
        "buildDate": "",
        "goVersion": format!("vigie-router {}", env!("CARGO_PKG_VERSION")),
    }))
}

async fn status_config(State((shared, _)): State<S>) -> Response {
    let text = std::fs::read_to_string(&shared.opts.config_file).unwrap_or_default();
    ok(json!({"yaml": crate::amconfig::redact(&text)}))
}

async fn runtimeinfo(State((shared, _)): State<S>) -> Response {
    let r = shared.reload_status();
    ok(json!({
        "reloadConfigSuccess": r.successful,
        "lastConfigTime": rfc3339(r.last_success_ms),
        "lastConfigError": r.last_error,
        "storageRetention": format!("{}s", shared.opts.retention_ms / 1000),
    }))
}

async fn reload_handler(State((shared, tasks)): State<S>) -> Response {
    match tokio::task::spawn_blocking(move || reload(&shared, &tasks)).await {
        Ok(Ok(())) => (StatusCode::OK, "").into_response(),
        Ok(Err(e)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to reload config: {e}\n"),
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn metrics(State((shared, _)): State<S>) -> Response {
    let mut fams = Vec::new();
    let r = shared.reload_status();
    fams.push(Family::single(
        "vigie_config_last_reload_successful",
        "Whether the last configuration and rules reload succeeded.",
        Kind::Gauge,
        if r.successful { 1.0 } else { 0.0 },
    ));
    fams.push(Family::single(
        "vigie_config_last_reload_success_timestamp_seconds",
        "Timestamp of the last successful configuration and rules reload.",
        Kind::Gauge,
        r.last_success_ms as f64 / 1000.0,
    ));
    let stats = shared
        .group_stats
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let mut evals = Family::new(
        "vigie_rule_evaluations_total",
        "Rule group evaluations.",
        Kind::Counter,
    );
    let mut fails = Family::new(
        "vigie_rule_evaluation_failures_total",
        "Rule evaluations that failed.",
        Kind::Counter,
    );
    let mut dur = Family::new(
        "vigie_rule_group_last_duration_seconds",
        "Duration of the last evaluation of a rule group.",
        Kind::Gauge,
    );
    let mut rules_count = Family::new(
        "vigie_rule_group_rules",
        "Rules in a rule group.",
        Kind::Gauge,
    );
    for g in shared.groups() {
        let g = g.lock().unwrap_or_else(|p| p.into_inner());
        let key = g.group.key();
        let st = stats.get(&key).cloned().unwrap_or_default();
        evals.push(&[("rule_group", &key)], st.evaluations as f64);
        fails.push(&[("rule_group", &key)], st.failures as f64);
        dur.push(&[("rule_group", &key)], st.last_duration_s);
        rules_count.push(&[("rule_group", &key)], g.rules.len() as f64);
    }
    fams.extend([evals, fails, dur, rules_count]);
    let s = shared.store_read().stats();
    fams.push(Family::single(
        "vigie_store_series",
        "Series in the embedded store.",
        Kind::Gauge,
        s.series as f64,
    ));
    fams.push(Family::single(
        "vigie_store_samples",
        "Samples in the embedded store.",
        Kind::Gauge,
        s.samples as f64,
    ));
    fams.push(Family::single(
        "vigie_store_chunk_bytes",
        "Bytes of compressed chunks in the embedded store.",
        Kind::Gauge,
        s.chunk_bytes as f64,
    ));
    let mut up = Family::new(
        "vigie_scrape_target_up",
        "Whether the last scrape of a target succeeded.",
        Kind::Gauge,
    );
    for (t, h) in shared.health() {
        up.push(
            &[("job", &t.job), ("url", &t.url)],
            if h.up { 1.0 } else { 0.0 },
        );
    }
    fams.push(up);
    fams.push(Family::single(
        "vigie_queries_total",
        "Queries answered through the API.",
        Kind::Counter,
        shared.queries.load(std::sync::atomic::Ordering::Relaxed) as f64,
    ));
    dispatch_metrics(&shared, &mut fams);
    let (fams, _) = vigie_exposition::normalize(fams);
    let mut out = Vec::new();
    vigie_exposition::text::encode(&fams, &mut out);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}

/// The dispatcher's figures under Alertmanager's metric names, so its dashboards work.
fn dispatch_metrics(shared: &Shared, fams: &mut Vec<Family>) {
    use std::sync::atomic::Ordering::Relaxed;
    let d = &shared.dispatcher;
    let (active, suppressed, silences) = d.counts();
    let mut alerts = Family::new(
        "alertmanager_alerts",
        "How many alerts by state.",
        Kind::Gauge,
    );
    alerts.push(&[("state", "active")], active as f64);
    alerts.push(&[("state", "suppressed")], suppressed as f64);
    let mut received = Family::new(
        "alertmanager_alerts_received_total",
        "The total number of received alerts.",
        Kind::Counter,
    );
    received.push(
        &[("status", "firing")],
        d.stats.received_firing.load(Relaxed) as f64,
    );
    received.push(
        &[("status", "resolved")],
        d.stats.received_resolved.load(Relaxed) as f64,
    );
    let mut sil = Family::new(
        "alertmanager_silences",
        "How many silences by state.",
        Kind::Gauge,
    );
    for (i, state) in ["pending", "active", "expired"].iter().enumerate() {
        sil.push(&[("state", state)], silences[i] as f64);
    }
    let mut sent = Family::new(
        "alertmanager_notifications_total",
        "The total number of attempted notifications.",
        Kind::Counter,
    );
    let mut fail = Family::new(
        "alertmanager_notifications_failed_total",
        "The total number of failed notifications.",
        Kind::Counter,
    );
    for (integration, (total, failed)) in d.notify_metrics.per_integration() {
        sent.push(&[("integration", integration)], total as f64);
        fail.push(&[("integration", integration)], failed as f64);
    }
    fams.extend([alerts, received, sil, sent, fail]);
    fams.extend(d.notify_metrics.families());
    fams.push(Family::single(
        "alertmanager_alerts_invalid_total",
        "The total number of received alerts that were invalid.",
        Kind::Counter,
        d.stats.invalid.load(Relaxed) as f64,
    ));
}

/// The attempt log, newest first: each delivery and every try.
async fn notifications(State((shared, _)): State<S>) -> Response {
    let list: Vec<Json> = shared
        .dispatcher
        .attempts
        .list()
        .into_iter()
        .map(|a| {
            json!({
                "at": crate::provider::format_time(a.at),
                "receiver": a.receiver,
                "integration": a.integration,
                "groupKey": a.group_key,
                "outcome": a.outcome,
                "reason": a.reason,
                "tries": a.tries,
                "seconds": a.seconds,
            })
        })
        .collect();
    ok(Json::Array(list))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time("1700000000.5"), Ok(1_700_000_000_500));
        assert_eq!(
            parse_time("2023-11-14T22:13:20.123Z"),
            Ok(1_700_000_000_123)
        );
        assert_eq!(
            parse_time("2023-11-14T23:13:20+01:00"),
            Ok(1_700_000_000_000)
        );
        assert!(parse_time("yesterday").is_err());
        assert_eq!(parse_step("15s"), Ok(15_000));
        assert_eq!(parse_step("0.5"), Ok(500));
        let p = params(
            Some("query=a%20b+c%3D&match%5B%5D=up".into()),
            &Method::GET,
            &HeaderMap::new(),
            &Bytes::new(),
        );
        assert_eq!(param(&p, "query"), Some("a b c="));
        assert_eq!(param(&p, "match[]"), Some("up"));
    }
}
