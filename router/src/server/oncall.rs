//! On-call over HTTP: who is on call (API and UI), escalations with their timelines, and
//! acknowledgement by API, by the UI, or by the signed link a page carries. The link's GET
//! only shows a confirmation form (mail scanners fetch links); the POST acknowledges.

use std::fmt::Write as _;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as AxPath, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde_json::{Value as Json, json};

use super::api::S;
use super::ui::{esc, page, param, params};
use crate::oncall::OnCall;
use crate::oncall::escalation::{Status, View};
use crate::provider::format_time;

pub fn routes() -> Router<S> {
    Router::new()
        .route("/api/v1/oncall/who", get(who_api))
        .route("/api/v1/oncall/escalations", get(escalations_api))
        .route("/api/v1/oncall/escalations/{id}/ack", post(ack_api))
        .route("/oncall/ack", get(ack_form).post(ack_link))
        .route("/ui/oncall", get(ui))
        .route("/ui/oncall/{id}/ack", post(ack_ui))
}

fn oncall(shared: &super::Shared) -> Option<std::sync::Arc<OnCall>> {
    shared.dispatcher.routing().and_then(|r| r.oncall.clone())
}

fn err(status: StatusCode, msg: &str) -> Response {
    (status, axum::Json(json!({"status": "error", "error": msg}))).into_response()
}

/// Who is on call in each schedule (or `schedule`) at `at` (RFC 3339, default now), and the
/// next change.
pub fn who(oc: &OnCall, schedule: Option<&str>, at: jiff::Timestamp) -> Result<Vec<Json>, String> {
    let mut out = Vec::new();
    for (name, s) in &oc.schedules {
        if schedule.is_some_and(|x| x != name) {
            continue;
        }
        let now = s.who(at);
        let contact = now.as_ref().and_then(|w| oc.people.get(&w.member));
        let next = s.next_change(at, jiff::SignedDuration::from_hours(24 * 62));
        out.push(json!({
            "schedule": name,
            "time_zone": s.tz_name,
            "at": at.to_string(),
            "oncall": now.as_ref().map(|w| w.member.clone()),
            "source": now.as_ref().map(|w| w.source.clone()),
            "phone": contact.and_then(|c| c.phone.clone()),
            "email": contact.and_then(|c| c.email.clone()),
            "next": next.map(|(t, w)| json!({
                "at": t.to_string(),
                "oncall": w.map(|w| w.member),
            })),
        }));
    }
    if let Some(s) = schedule
        && out.is_empty()
    {
        return Err(format!("no schedule {s:?}"));
    }
    Ok(out)
}

async fn who_api(State((shared, _)): State<S>, RawQuery(q): RawQuery) -> Response {
    let Some(oc) = oncall(&shared) else {
        return err(
            StatusCode::NOT_FOUND,
            "no oncall section in the configuration",
        );
    };
    let p = params(q);
    let at = match param(&p, "at") {
        "" => jiff::Timestamp::now(),
        t => match t.parse() {
            Ok(t) => t,
            Err(e) => return err(StatusCode::BAD_REQUEST, &format!("at: {e}")),
        },
    };
    let schedule = Some(param(&p, "schedule")).filter(|s| !s.is_empty());
    match who(&oc, schedule, at) {
        Ok(v) => axum::Json(json!({"status": "success", "data": v})).into_response(),
        Err(e) => err(StatusCode::NOT_FOUND, &e),
    }
}

fn status_json(s: &Status) -> Json {
    match s {
        Status::Active {
            step,
            round,
            next_at,
        } => {
            json!({"state": "active", "step": step + 1, "round": round + 1, "nextStepAt": format_time(*next_at)})
        }
        Status::Acknowledged { by, at } => {
            json!({"state": "acknowledged", "by": by, "at": format_time(*at)})
        }
        Status::Resolved { at } => json!({"state": "resolved", "at": format_time(*at)}),
        Status::Exhausted { at } => json!({"state": "exhausted", "at": format_time(*at)}),
    }
}

fn view_json(v: &View) -> Json {
    json!({
        "id": v.id,
        "receiver": v.receiver,
        "groupKey": v.group_key,
        "policy": v.policy,
        "summary": v.summary,
        "startedAt": format_time(v.started),
        "status": status_json(&v.status),
        "timeline": v.events.iter().map(|e| json!({"at": format_time(e.at), "event": e.what})).collect::<Vec<_>>(),
    })
}

async fn escalations_api(State((shared, _)): State<S>) -> Response {
    let list: Vec<Json> = shared
        .dispatcher
        .escalations
        .list()
        .iter()
        .map(view_json)
        .collect();
    axum::Json(json!({"status": "success", "data": list})).into_response()
}

fn ack(shared: &super::Shared, id: &str, by: &str) -> Result<(), (StatusCode, String)> {
    let by = if by.trim().is_empty() {
        "someone"
    } else {
        by.trim()
    };
    shared
        .dispatcher
        .escalations
        .ack(id, by, shared.dispatcher.clock.now())
        .map_err(|e| {
            let code = match e {
                crate::oncall::escalation::AckError::Unknown => StatusCode::NOT_FOUND,
                _ => StatusCode::CONFLICT,
            };
            (code, e.to_string())
        })
}

async fn ack_api(
    State((shared, _)): State<S>,
    AxPath(id): AxPath<String>,
    body: Bytes,
) -> Response {
    let by = serde_json::from_slice::<Json>(&body)
        .ok()
        .and_then(|j| j.get("by").and_then(Json::as_str).map(String::from))
        .unwrap_or_default();
    match ack(&shared, &id, &by) {
        Ok(()) => axum::Json(json!({"status": "success"})).into_response(),
        Err((code, e)) => err(code, &e),
    }
}

/// The token's escalation, or why the link is refused.
fn verified(shared: &super::Shared, token: &str) -> Result<String, &'static str> {
    let Some(oc) = oncall(shared) else {
        return Err("on-call is not configured");
    };
    oc.links
        .verify(token, shared.dispatcher.clock.now() / 1_000_000)
}

fn refused(msg: &str) -> Response {
    let mut r = page(
        "Acknowledge",
        &format!("<p class=\"state-active\">{}</p>", esc(msg)),
    );
    *r.status_mut() = StatusCode::FORBIDDEN;
    r
}

async fn ack_form(State((shared, _)): State<S>, RawQuery(q): RawQuery) -> Response {
    let p = params(q);
    let token = param(&p, "t");
    let id = match verified(&shared, token) {
        Ok(id) => id,
        Err(e) => return refused(e),
    };
    let summary = shared
        .dispatcher
        .escalations
        .get(&id)
        .map(|v| v.summary)
        .unwrap_or_else(|| "this escalation".into());
    page(
        "Acknowledge",
        &format!(
            r#"<p>Acknowledge <b>{}</b>? Escalation stops; the alert keeps firing until it resolves.</p>
<form method="post" action="/oncall/ack"><input type="hidden" name="t" value="{}"><label>Your name <input type="text" name="by"></label> <button type="submit">Acknowledge</button></form>"#,
            esc(&summary),
            esc(token)
        ),
    )
}

async fn ack_link(State((shared, _)): State<S>, body: Bytes) -> Response {
    let p: Vec<(String, String)> = form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let id = match verified(&shared, param(&p, "t")) {
        Ok(id) => id,
        Err(e) => return refused(e),
    };
    match ack(&shared, &id, param(&p, "by")) {
        Ok(()) => page(
            "Acknowledged",
            "<p>Acknowledged. The escalation has stopped.</p><p><a href=\"/ui/oncall\">On call</a></p>",
        ),
        Err((code, e)) => {
            let mut r = page("Acknowledge", &format!("<p>{}</p>", esc(&e)));
            *r.status_mut() = code;
            r
        }
    }
}

async fn ack_ui(State((shared, _)): State<S>, AxPath(id): AxPath<String>, body: Bytes) -> Response {
    let p: Vec<(String, String)> = form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    match ack(&shared, &id, param(&p, "by")) {
        Ok(()) => Redirect::to("/ui/oncall").into_response(),
        Err((code, e)) => {
            let mut r = page(
                "On call",
                &format!("<p class=\"state-active\">{}</p>", esc(&e)),
            );
            *r.status_mut() = code;
            r
        }
    }
}

async fn ui(State((shared, _)): State<S>) -> Response {
    let Some(oc) = oncall(&shared) else {
        return page(
            "On call",
            "<p class=\"muted\">No <code>oncall</code> section in the configuration.</p>",
        );
    };
    let mut body = String::from(
        "<h2>Who is on call</h2><table><tr><th>Schedule</th><th>Now</th><th>Next change</th></tr>",
    );
    for w in who(&oc, None, jiff::Timestamp::now()).unwrap_or_default() {
        let s = |k: &str| w.get(k).and_then(Json::as_str).unwrap_or("").to_string();
        let next = w
            .get("next")
            .filter(|n| !n.is_null())
            .map(|n| {
                format!(
                    "{} at {}",
                    n.get("oncall").and_then(Json::as_str).unwrap_or("nobody"),
                    n.get("at").and_then(Json::as_str).unwrap_or("")
                )
            })
            .unwrap_or_else(|| "—".into());
        let _ = write!(
            body,
            "<tr><td>{} <span class=\"muted\">{}</span></td><td><b>{}</b> <span class=\"muted\">{}</span></td><td>{}</td></tr>",
            esc(&s("schedule")),
            esc(&s("time_zone")),
            esc(w.get("oncall").and_then(Json::as_str).unwrap_or("nobody")),
            esc(&s("source")),
            esc(&next)
        );
    }
    body.push_str("</table><h2>Escalations</h2>");
    let mut list = shared.dispatcher.escalations.list();
    list.sort_by_key(|v| std::cmp::Reverse(v.started));
    if list.is_empty() {
        body.push_str("<p class=\"muted\">None.</p>");
    }
    for v in &list {
        let state = match &v.status {
            Status::Active { step, round, .. } => format!(
                "<span class=\"state-active\">active</span>, step {} (round {})",
                step + 1,
                round + 1
            ),
            Status::Acknowledged { by, .. } => format!("acknowledged by {}", esc(by)),
            Status::Resolved { .. } => "resolved".into(),
            Status::Exhausted { .. } => {
                "<span class=\"state-active\">every step ran, unacknowledged</span>".into()
            }
        };
        let _ = write!(
            body,
            "<div class=\"group\"><b>{}</b> · {} · policy {} · {}",
            esc(&v.summary),
            esc(&v.receiver),
            esc(&v.policy),
            state
        );
        if matches!(v.status, Status::Active { .. } | Status::Exhausted { .. }) {
            let _ = write!(
                body,
                r#"<form method="post" action="/ui/oncall/{}/ack"><input type="text" name="by" placeholder="your name"> <button type="submit">Acknowledge</button></form>"#,
                esc(&v.id)
            );
        }
        body.push_str("<ul>");
        for e in &v.events {
            let _ = write!(
                body,
                "<li><span class=\"muted\">{}</span> {}</li>",
                esc(&format_time(e.at)),
                esc(&e.what)
            );
        }
        body.push_str("</ul></div>");
    }
    page("On call", &body)
}
