//! The HTTP surface, in process: content negotiation, gzip, per-request collector filters,
//! basic auth and configured headers.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode, header};
use base64::Engine;
use tower::ServiceExt;
use vigie_agent::collector::{Collectors, Options};
use vigie_agent::web::reload::{WebRuntime, WebSettings};
use vigie_agent::web::{AppState, BasicAuth, router};

fn app(configure: impl FnOnce(&mut AppState)) -> axum::Router {
    let collectors = Collectors::new(
        &["loadavg", "meminfo", "stat"],
        &Options::default(),
        Duration::from_secs(5),
    );
    let mut state = AppState::new(collectors, "/metrics".into());
    configure(&mut state);
    router(Arc::new(state))
}

async fn call(
    app: &axum::Router,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let mut req = Request::builder().uri(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = axum::body::to_bytes(resp.into_body(), 16 << 20)
        .await
        .unwrap()
        .to_vec();
    (status, headers, body)
}

#[tokio::test]
async fn negotiates_format_and_compression() {
    let app = app(|_| {});
    let (status, h, body) = call(&app, "/metrics", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        h[header::CONTENT_TYPE],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = String::from_utf8(body).unwrap();
    assert!(text.contains("# TYPE node_forks_total counter\n"));
    assert!(text.contains("node_scrape_collector_success{collector=\"meminfo\"} 1\n"));
    assert!(text.contains("vigie_agent_build_info{"));

    let prom_accept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let (_, h, body) = call(&app, "/metrics", &[("accept", prom_accept)]).await;
    assert_eq!(
        h[header::CONTENT_TYPE],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let om = String::from_utf8(body).unwrap();
    assert!(om.ends_with("# EOF\n"));
    assert!(om.contains("# TYPE node_forks counter\n") && om.contains("\nnode_forks_total "));

    let (_, h, body) = call(&app, "/metrics", &[("accept-encoding", "gzip")]).await;
    assert_eq!(h[header::CONTENT_ENCODING], "gzip");
    let mut plain = String::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_string(&mut plain)
        .unwrap();
    assert!(plain.contains("# TYPE node_load1 gauge"));
}

#[tokio::test]
async fn per_request_collector_filters() {
    let app = app(|_| {});
    let (_, _, body) = call(&app, "/metrics?collect[]=loadavg", &[]).await;
    let text = String::from_utf8(body).unwrap();
    assert!(text.contains("node_load1 "));
    assert!(!text.contains("node_memory_MemTotal_bytes"));
    let (_, _, body) = call(&app, "/metrics?exclude[]=loadavg", &[]).await;
    let text = String::from_utf8(body).unwrap();
    assert!(!text.contains("node_load1 ") && text.contains("node_memory_MemTotal_bytes"));
    let (status, _, body) = call(&app, "/metrics?collect[]=nope", &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        String::from_utf8(body)
            .unwrap()
            .contains("missing collector: nope")
    );
    let (status, _, _) = call(&app, "/metrics?collect[]=loadavg&exclude[]=stat", &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn basic_auth_and_headers() {
    let hash = bcrypt::hash("pw", 4).unwrap();
    let app = app(|st| {
        st.web = Arc::new(WebRuntime::fixed(WebSettings {
            basic_auth: Some(BasicAuth::new(BTreeMap::from([(
                "alice".to_string(),
                hash,
            )]))),
            headers: vec![(header::X_FRAME_OPTIONS, HeaderValue::from_static("deny"))],
            tls: None,
        }));
    });
    let (status, h, _) = call(&app, "/metrics", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(h[header::WWW_AUTHENTICATE], "Basic");
    for wrong in [
        basic("alice", "nope"),
        basic("mallory", "pw"),
        "Bearer x".to_string(),
    ] {
        let (status, _, _) = call(&app, "/metrics", &[("authorization", &wrong)]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{wrong}");
    }
    for _ in 0..2 {
        let (status, h, _) = call(
            &app,
            "/-/healthy",
            &[("authorization", &basic("alice", "pw"))],
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(h[header::X_FRAME_OPTIONS], "deny");
    }
}

fn basic(u: &str, p: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
    )
}

/// Rewrites the web config with a later mtime, so the change is seen whatever the clock's grain.
fn rewrite(path: &std::path::Path, text: &str, age: u64) {
    std::fs::write(path, text).unwrap();
    let when = std::time::SystemTime::now() + Duration::from_secs(age);
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(when)
        .unwrap();
}

#[tokio::test]
async fn web_config_is_reloaded_when_it_changes_and_kept_when_broken() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.yml");
    let alice = bcrypt::hash("a-pw", 4).unwrap();
    let bob = bcrypt::hash("b-pw", 4).unwrap();
    rewrite(&path, &format!("basic_auth_users:\n  alice: {alice}\n"), 1);
    let web = Arc::new(WebRuntime::watch(&path, Duration::ZERO).unwrap());
    let app = app(|st| st.web = web.clone());
    let status = |auth: String| {
        let app = app.clone();
        async move {
            call(&app, "/-/healthy", &[("authorization", &auth)])
                .await
                .0
        }
    };
    assert_eq!(status(basic("alice", "a-pw")).await, StatusCode::OK);
    assert_eq!(status(basic("bob", "b-pw")).await, StatusCode::UNAUTHORIZED);

    // Password rotation: bob replaces alice without a restart.
    rewrite(
        &path,
        &format!(
            "basic_auth_users:\n  bob: {bob}\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\n"
        ),
        2,
    );
    assert_eq!(
        status(basic("alice", "a-pw")).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(status(basic("bob", "b-pw")).await, StatusCode::OK);
    let (_, h, _) = call(
        &app,
        "/-/healthy",
        &[("authorization", &basic("bob", "b-pw"))],
    )
    .await;
    assert_eq!(h[header::X_FRAME_OPTIONS], "deny");

    // A broken edit is refused; bob keeps working.
    rewrite(&path, "basic_auth_users:\n  bob: [not, a, hash\n", 3);
    assert_eq!(status(basic("bob", "b-pw")).await, StatusCode::OK);
}
