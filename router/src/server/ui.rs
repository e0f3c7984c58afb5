//! The web UI, rendered on the server and usable without JavaScript: alerts by group with
//! matcher filters, silences (create with a preview of what they will mute, expire), the routing
//! tree with a "which receivers get these labels" tester, and status. Forms are plain GET/POST.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as AxPath, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use super::api::S;
use crate::dispatch::AlertView;
use crate::dispatch::route::Route;
use crate::matcher::{Matcher, parse_matchers};
use crate::provider::format_time;
use crate::silence::{ApiMatcher, Silence, State as SilenceState};

pub fn routes() -> Router<S> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/alerts") }))
        .route("/ui", get(|| async { Redirect::to("/ui/alerts") }))
        .route("/ui/alerts", get(alerts))
        .route("/ui/silences", get(silences))
        .route("/ui/silences/new", get(new_silence).post(create_silence))
        .route("/ui/silences/{id}/expire", post(expire_silence))
        .route("/ui/routes", get(routes_page))
        .route("/ui/status", get(status))
}

pub(super) fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

fn url(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

pub(super) fn page(title: &str, body: &str) -> Response {
    let html = format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{t} · Vigie</title>
<style>
body{{font-family:system-ui,sans-serif;margin:0;color:#1d2430;background:#f6f7f9}}
nav{{background:#1d2430;padding:.6em 1em}}nav a{{color:#fff;margin-right:1.2em;text-decoration:none;font-weight:600}}
main{{padding:1em 1.5em;max-width:75em}}h1{{font-size:1.4em}}
.group{{background:#fff;border:1px solid #d8dce3;border-radius:6px;margin:.8em 0;padding:.6em .9em}}
.label{{display:inline-block;background:#e8edf5;border-radius:4px;padding:0 .4em;margin:.1em;font-size:.9em}}
.state-suppressed{{color:#8a6d00}}.state-active{{color:#b00020}}
table{{border-collapse:collapse;width:100%;background:#fff}}td,th{{border-bottom:1px solid #e3e6eb;padding:.35em .5em;text-align:left;vertical-align:top}}
input[type=text]{{width:32em;max-width:100%}}button{{cursor:pointer}}
pre{{background:#fff;border:1px solid #d8dce3;padding:.6em;overflow:auto}}.muted{{color:#667}}
</style></head><body><nav><a href="/ui/alerts">Alerts</a><a href="/ui/silences">Silences</a><a href="/ui/routes">Routes</a><a href="/ui/oncall">On call</a><a href="/ui/status">Status</a></nav>
<main><h1>{t}</h1>{body}</main></body></html>"#,
        t = esc(title)
    );
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

pub(super) fn params(q: Option<String>) -> Vec<(String, String)> {
    form_urlencoded::parse(q.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub(super) fn param<'a>(p: &'a [(String, String)], k: &str) -> &'a str {
    p.iter()
        .find(|(n, _)| n == k)
        .map_or("", |(_, v)| v.as_str())
}

fn labels_html<'a>(labels: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    labels
        .into_iter()
        .map(|(k, v)| format!(r#"<span class="label">{}="{}"</span>"#, esc(k), esc(v)))
        .collect()
}

/// A matcher string that selects exactly these labels, for "silence this" links.
fn matchers_for(labels: &crate::labelset::LabelSet) -> String {
    let parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}={}", crate::matcher::go_quote(v)))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

fn alert_row(v: &AlertView) -> String {
    let suppressed = !v.silenced_by.is_empty() || !v.inhibited_by.is_empty();
    let state = if suppressed { "suppressed" } else { "active" };
    let mut why = String::new();
    if !v.silenced_by.is_empty() {
        why.push_str(&format!(
            " (silenced by {})",
            esc(&v.silenced_by.join(", "))
        ));
    }
    if !v.inhibited_by.is_empty() {
        why.push_str(" (inhibited)");
    }
    let summary = v
        .alert
        .annotations
        .get("summary")
        .or(v.alert.annotations.get("description"))
        .map(esc)
        .unwrap_or_default();
    format!(
        r#"<tr><td class="state-{state}">{state}{why}</td><td>{}</td><td>{summary}</td><td class="muted">{}</td><td><a href="/ui/silences/new?matchers={}">Silence</a></td></tr>"#,
        labels_html(v.alert.labels.iter()),
        esc(&format_time(v.alert.starts_at)),
        url(&matchers_for(&v.alert.labels)),
    )
}

async fn alerts(State((shared, _)): State<S>, RawQuery(q): RawQuery) -> Response {
    let p = params(q);
    let filter = param(&p, "filter");
    let mut body = format!(
        r#"<form method="get" action="/ui/alerts"><label>Filter <input type="text" name="filter" value="{}" placeholder='severity="critical", team=~"db|web"'></label> <button type="submit">Apply</button></form>"#,
        esc(filter)
    );
    let matchers: Vec<Matcher> = match parse_matchers(filter) {
        Ok(m) => m,
        Err(e) => {
            let _ = write!(
                body,
                r#"<p class="state-active">Bad filter: {}</p>"#,
                esc(&e.to_string())
            );
            return page("Alerts", &body);
        }
    };
    let groups = shared.dispatcher.groups();
    let mut shown = 0;
    for (g, views) in groups {
        let views: Vec<&AlertView> = views
            .iter()
            .filter(|v| matchers.iter().all(|m| m.matches(&v.alert.labels)))
            .collect();
        if views.is_empty() {
            continue;
        }
        shown += views.len();
        let _ = write!(
            body,
            r#"<section class="group"><div><strong>{}</strong> <span class="muted">→ receiver {}</span></div><table><tr><th>State</th><th>Labels</th><th>Summary</th><th>Since</th><th></th></tr>{}</table></section>"#,
            if g.labels.is_empty() {
                "(no group labels)".to_string()
            } else {
                labels_html(g.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            },
            esc(&g.opts.receiver),
            views.iter().map(|v| alert_row(v)).collect::<String>()
        );
    }
    // Alerts that reached no group (no route configured) are still listed.
    if shared.dispatcher.routing().is_none() {
        let rows: String = shared
            .dispatcher
            .alerts()
            .iter()
            .filter(|v| matchers.iter().all(|m| m.matches(&v.alert.labels)))
            .inspect(|_| shown += 1)
            .map(alert_row)
            .collect();
        if !rows.is_empty() {
            let _ = write!(
                body,
                r#"<section class="group"><div><strong>Not routed</strong> <span class="muted">(no route in the configuration)</span></div><table>{rows}</table></section>"#
            );
        }
    }
    let _ = write!(body, r#"<p class="muted">{shown} alerts</p>"#);
    page("Alerts", &body)
}

fn silence_row(s: &Silence, now: i64) -> String {
    let matchers: String = s
        .matchers
        .iter()
        .map(|m| {
            let op = m.op().as_str();
            format!(
                r#"<span class="label">{}{op}"{}"</span>"#,
                esc(&m.name),
                esc(&m.value)
            )
        })
        .collect();
    let state = s.state(now);
    let expire = if state == SilenceState::Expired {
        String::new()
    } else {
        format!(
            r#"<form method="post" action="/ui/silences/{}/expire"><button type="submit">Expire</button></form>"#,
            esc(&s.id)
        )
    };
    format!(
        r#"<tr><td>{}</td><td>{matchers}</td><td>{}<br><span class="muted">until {}</span></td><td>{}</td><td>{}</td><td class="muted">{}</td><td>{expire}</td></tr>"#,
        state.as_str(),
        esc(&format_time(s.starts_at)),
        esc(&format_time(s.ends_at)),
        esc(&s.created_by),
        esc(&s.comment),
        esc(&s.id),
    )
}

async fn silences(State((shared, _)): State<S>) -> Response {
    let now = shared.dispatcher.clock.now();
    let mut list = shared.dispatcher.silences();
    list.sort_by_key(|s| (rank(s.state(now)), s.ends_at));
    let rows: String = list.iter().map(|s| silence_row(s, now)).collect();
    let body = format!(
        r#"<p><a href="/ui/silences/new">New silence</a></p><table><tr><th>State</th><th>Matchers</th><th>Window</th><th>Created by</th><th>Comment</th><th>ID</th><th></th></tr>{rows}</table>"#
    );
    page("Silences", &body)
}

fn rank(s: SilenceState) -> u8 {
    match s {
        SilenceState::Active => 0,
        SilenceState::Pending => 1,
        SilenceState::Expired => 2,
    }
}

/// The silence form; `action=preview` (a GET) lists the alerts it would mute.
async fn new_silence(State((shared, _)): State<S>, RawQuery(q): RawQuery) -> Response {
    let p = params(q);
    let matchers = param(&p, "matchers");
    let duration = match param(&p, "duration") {
        "" => "2h",
        d => d,
    };
    let mut body = silence_form(
        matchers,
        duration,
        param(&p, "createdBy"),
        param(&p, "comment"),
    );
    if !matchers.is_empty() {
        match parse_matchers(matchers) {
            Ok(ms) => {
                let hit: Vec<AlertView> = shared
                    .dispatcher
                    .alerts()
                    .into_iter()
                    .filter(|v| ms.iter().all(|m| m.matches(&v.alert.labels)))
                    .collect();
                let _ = write!(
                    body,
                    r#"<h2>Preview</h2><p id="preview-count">This silence would mute {} alerts now.</p><table>{}</table>"#,
                    hit.len(),
                    hit.iter().map(alert_row).collect::<String>()
                );
            }
            Err(e) => {
                let _ = write!(
                    body,
                    r#"<p class="state-active">Bad matchers: {}</p>"#,
                    esc(&e.to_string())
                );
            }
        }
    }
    page("New silence", &body)
}

fn silence_form(matchers: &str, duration: &str, by: &str, comment: &str) -> String {
    format!(
        r#"<form method="get" action="/ui/silences/new">
<p><label>Matchers <input type="text" name="matchers" value="{}" placeholder='alertname="NodeDown", instance=~"db-.*"'></label></p>
<p><label>Duration <input type="text" name="duration" value="{}" size="6"></label></p>
<p><label>Created by <input type="text" name="createdBy" value="{}"></label></p>
<p><label>Comment <input type="text" name="comment" value="{}"></label></p>
<p><button type="submit" name="action" value="preview">Preview</button>
<button type="submit" formmethod="post" name="action" value="create">Create</button></p></form>"#,
        esc(matchers),
        esc(duration),
        esc(by),
        esc(comment)
    )
}

async fn create_silence(State((shared, _)): State<S>, body: Bytes) -> Response {
    let p: Vec<(String, String)> = form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let (matchers, duration) = (param(&p, "matchers"), param(&p, "duration"));
    let (by, comment) = (param(&p, "createdBy"), param(&p, "comment"));
    let error = |msg: String| {
        let body = format!(
            r#"<p class="state-active">{}</p>{}"#,
            esc(&msg),
            silence_form(matchers, duration, by, comment)
        );
        let mut r = page("New silence", &body);
        *r.status_mut() = StatusCode::BAD_REQUEST;
        r
    };
    let ms = match parse_matchers(matchers) {
        Ok(ms) => ms,
        Err(e) => return error(format!("matchers: {e}")),
    };
    let dur_ms = match vigie_promql::notation::parse_duration(duration) {
        Ok(d) if d > 0 => d,
        _ => return error(format!("duration: {duration:?} is not a positive duration")),
    };
    if by.trim().is_empty() || comment.trim().is_empty() {
        return error("created by and comment are required".into());
    }
    let now = shared.dispatcher.clock.now();
    let s = match Silence::new(
        ms.iter().map(ApiMatcher::from_matcher).collect(),
        now,
        now + dur_ms * 1_000_000,
        by.to_string(),
        comment.to_string(),
    ) {
        Ok(s) => s,
        Err(e) => return error(e),
    };
    match shared.dispatcher.set_silence(s).await {
        Ok(_) => Redirect::to("/ui/silences").into_response(),
        Err(e) => error(e.to_string()),
    }
}

async fn expire_silence(State((shared, _)): State<S>, AxPath(id): AxPath<String>) -> Response {
    match shared.dispatcher.expire_silence(&id).await {
        Ok(()) => Redirect::to("/ui/silences").into_response(),
        Err(e) => {
            let mut r = page(
                "Silences",
                &format!(r#"<p class="state-active">{}</p>"#, esc(&e.to_string())),
            );
            *r.status_mut() = StatusCode::NOT_FOUND;
            r
        }
    }
}

fn tree_html(r: &Route, hit: &[usize], out: &mut String) {
    let own = if r.id == 0 {
        "root".to_string()
    } else {
        r.key.rsplit('/').next().unwrap_or("{}").to_string()
    };
    let mark = if hit.contains(&r.id) {
        " <strong>◀ match</strong>"
    } else {
        ""
    };
    let group = if r.opts.group_by_all {
        "...".to_string()
    } else {
        r.opts.group_by.join(", ")
    };
    let _ = write!(
        out,
        r#"<li><code>{}</code> → <strong>{}</strong> <span class="muted">group_by [{}]{}</span>{mark}"#,
        esc(&own),
        esc(&r.opts.receiver),
        esc(&group),
        if r.continue_ { ", continue" } else { "" }
    );
    if !r.routes.is_empty() {
        out.push_str("<ul>");
        for c in &r.routes {
            tree_html(c, hit, out);
        }
        out.push_str("</ul>");
    }
    out.push_str("</li>");
}

async fn routes_page(State((shared, _)): State<S>, RawQuery(q): RawQuery) -> Response {
    let p = params(q);
    let labels_text = param(&p, "labels");
    let mut body = format!(
        r#"<form method="get" action="/ui/routes"><label>Labels <input type="text" name="labels" value="{}" placeholder='alertname="NodeDown", severity="critical"'></label> <button type="submit">Which receivers?</button></form>"#,
        esc(labels_text)
    );
    let Some(routing) = shared.dispatcher.routing() else {
        body.push_str("<p>No route in the configuration.</p>");
        return page("Routes", &body);
    };
    let mut hit = Vec::new();
    if !labels_text.is_empty() {
        match parse_matchers(labels_text) {
            Ok(ms) => {
                let labels: BTreeMap<String, String> =
                    ms.into_iter().map(|m| (m.name, m.value)).collect();
                let matched = routing.route.matches(&labels);
                hit = matched.iter().map(|r| r.id).collect();
                let names: Vec<String> = matched.iter().map(|r| esc(&r.opts.receiver)).collect();
                let _ = write!(
                    body,
                    r#"<p id="receivers">Receivers: <strong>{}</strong></p>"#,
                    names.join(", ")
                );
            }
            Err(e) => {
                let _ = write!(
                    body,
                    r#"<p class="state-active">Bad labels: {}</p>"#,
                    esc(&e.to_string())
                );
            }
        }
    }
    body.push_str("<ul>");
    tree_html(&routing.route, &hit, &mut body);
    body.push_str("</ul>");
    page("Routes", &body)
}

async fn status(State((shared, _)): State<S>) -> Response {
    let cfg = shared.config();
    let (active, suppressed, sil) = shared.dispatcher.counts();
    let body = format!(
        r#"<table><tr><th>Version</th><td>{}</td></tr><tr><th>Uptime</th><td>{} s</td></tr>
<tr><th>Alerts</th><td>{active} active, {suppressed} suppressed</td></tr>
<tr><th>Silences</th><td>{} active, {} pending, {} expired</td></tr>
<tr><th>Configuration file</th><td>{}</td></tr></table><h2>Configuration</h2><pre>{}</pre>"#,
        env!("CARGO_PKG_VERSION"),
        shared.started.elapsed().as_secs(),
        sil[SilenceState::Active as usize],
        sil[SilenceState::Pending as usize],
        sil[SilenceState::Expired as usize],
        esc(&cfg.path.display().to_string()),
        esc(&cfg.original)
    );
    page("Status", &body)
}
