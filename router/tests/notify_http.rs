//! Every HTTP integration against a double on 127.0.0.1 that checks the documented request
//! (method, path, headers, auth, body) and answers success, 4xx, 5xx and 429 with a wait; the
//! classification of each answer, and a retry after a named wait, are asserted.

mod double;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use double::{Double, Reply, Req};
use vigie_router::config::Config;
use vigie_router::notify::template::Templates;
use vigie_router::notify::{Data, DataAlert, Integration, Notification, Outcome, Reason};

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A firing group of two alerts; the second one's instance tries every injection there is.
fn data() -> Data {
    let alert = |instance: &str| DataAlert {
        status: "firing",
        labels: labels(&[
            ("alertname", "DiskFull"),
            ("instance", instance),
            ("severity", "critical"),
        ]),
        annotations: labels(&[("summary", "Disk almost full")]),
        starts_at: "2026-11-24T03:58:00Z".into(),
        ends_at: "0001-01-01T00:00:00Z".into(),
        generator_url: "http://prom/graph".into(),
        fingerprint: "3f2a9c0d1b7e4a55".into(),
        starts_ns: 1_795_492_680_000_000_000,
        ends_ns: 0,
    };
    Data {
        receiver: "r".into(),
        status: "firing",
        alerts: vec![
            alert("db01"),
            alert("<!channel> @everyone <users/all> [x](http://evil) <b>"),
        ],
        group_labels: labels(&[("alertname", "DiskFull")]),
        common_labels: labels(&[("alertname", "DiskFull"), ("severity", "critical")]),
        common_annotations: labels(&[("summary", "Disk almost full")]),
        external_url: "http://router:9093".into(),
        group_key: "{}:{alertname=\"DiskFull\"}".into(),
    }
}

/// The receiver `r`'s first integration from a configuration snippet.
fn integration(receiver_yaml: &str) -> (Integration, std::sync::Arc<Templates>) {
    let yaml = format!("route:\n  receiver: r\nreceivers:\n- name: r\n{receiver_yaml}");
    let cfg = Config::parse(Path::new("vigie.yml"), &yaml)
        .unwrap_or_else(|e| panic!("config refused: {e}\n{yaml}"));
    let routing = cfg.routing.expect("routing");
    let i = routing.receivers["r"].integrations[0].clone();
    (i, routing.templates.clone())
}

async fn once(i: &Integration, t: &Templates, id: &str) -> Outcome {
    let d = data();
    let n = Notification {
        data: &d,
        templates: t,
        id,
        contact: None,
        ack_url: None,
    };
    i.notify(&n).await
}

#[derive(Debug)]
enum Want {
    Sent,
    Partial,
    Failed(Reason),
    Retry(Reason, Option<Duration>),
}

/// Each reply in turn, and the outcome it must give; every request is checked by `check`.
async fn classify(
    i: &Integration,
    t: &Templates,
    double: &Double,
    cases: Vec<(Reply, Want)>,
    mut check: impl FnMut(&Req),
) {
    for (k, (reply, want)) in cases.into_iter().enumerate() {
        double.script([reply.clone()]);
        // A new notification each time (SMS integrations skip recipients already texted).
        let got = once(i, t, &format!("n{k}")).await;
        let ok = match (&want, &got) {
            (Want::Sent, Outcome::Sent) => true,
            (Want::Partial, Outcome::Partial(_)) => true,
            (Want::Failed(r), Outcome::Failed(g, _)) => r == g,
            (Want::Retry(r, w), Outcome::Retry(g, _, gw)) => r == g && w == gw,
            _ => false,
        };
        assert!(ok, "reply {reply:?}: wanted {want:?}, got {got:?}");
        let reqs = double.take();
        assert!(!reqs.is_empty(), "no request sent");
        for r in &reqs {
            check(r);
        }
    }
}

/// Common 5xx and 429 cases with a `Retry-After` header.
fn throttling() -> Vec<(Reply, Want)> {
    vec![
        (
            Reply::new(500, "oops"),
            Want::Retry(Reason::ServerError, None),
        ),
        (
            Reply::new(429, "slow down").header("Retry-After", "7"),
            Want::Retry(Reason::RateLimited, Some(Duration::from_secs(7))),
        ),
        (
            Reply::new(429, "").header("Retry-After", "172800"),
            Want::Failed(Reason::WaitTooLong),
        ),
    ]
}

fn json_ct(r: &Req) {
    assert!(
        r.header("content-type").starts_with("application/json"),
        "content-type {:?}",
        r.header("content-type")
    );
}

fn no_injection(text: &str) {
    for bad in [
        "<!channel>",
        "@everyone",
        "<users/all>",
        "[x](http://evil)",
        "<b>",
    ] {
        assert!(!text.contains(bad), "{bad:?} reached the message: {text}");
    }
}

#[tokio::test]
async fn slack() {
    let d = Double::start(Reply::new(200, "ok")).await;
    let (i, t) = integration(&format!(
        "  slack_configs:\n  - api_url: {}/services/T0/B0/XXXX\n    channel: '#ops'\n",
        d.url
    ));
    let mut cases = vec![
        (Reply::new(200, "ok"), Want::Sent),
        (
            Reply::new(200, "invalid_token"),
            Want::Failed(Reason::ClientError),
        ),
        (
            Reply::new(404, "channel_not_found"),
            Want::Failed(Reason::ClientError),
        ),
        (
            Reply::new(410, "channel_is_archived"),
            Want::Failed(Reason::ClientError),
        ),
        (
            Reply::new(403, "action_prohibited"),
            Want::Failed(Reason::Auth),
        ),
        (
            Reply::new(
                429,
                r#"{"retry_after":3,"ok":false,"error":"rate_limited"}"#,
            ),
            Want::Retry(Reason::RateLimited, Some(Duration::from_secs(3))),
        ),
    ];
    cases.extend(throttling());
    classify(&i, &t, &d, cases, |r| {
        assert_eq!(r.method, "POST");
        assert_eq!(r.uri, "/services/T0/B0/XXXX");
        json_ct(r);
        let b = r.json();
        assert_eq!(b["channel"], "#ops");
        let att = &b["attachments"][0];
        assert_eq!(att["title"], "[FIRING:2] DiskFull (critical)");
        assert_eq!(att["color"], "danger");
        let text = att["text"].as_str().expect("text");
        assert!(text.contains("&lt;!channel&gt;"), "{text}");
        assert!(!text.contains("<!channel>"), "{text}");
        assert!(text.contains("Disk almost full on db01"), "{text}");
    })
    .await;
}

#[tokio::test]
async fn mattermost() {
    let d = Double::start(Reply::new(200, "ok")).await;
    let (i, t) = integration(&format!(
        "  mattermost_configs:\n  - webhook_url: {}/hooks/abc123\n    priority: {{priority: urgent, requested_ack: true}}\n",
        d.url
    ));
    let mut cases = vec![
        (Reply::new(200, "ok"), Want::Sent),
        (
            Reply::new(
                400,
                r#"{"id":"web.incoming_webhook.invalid.app_error","message":"Invalid webhook","status_code":400}"#,
            ),
            Want::Failed(Reason::ClientError),
        ),
    ];
    cases.extend(throttling());
    classify(&i, &t, &d, cases, |r| {
        assert_eq!(r.method, "POST");
        assert_eq!(r.uri, "/hooks/abc123");
        json_ct(r);
        let b = r.json();
        let text = b["text"].as_str().expect("text");
        assert!(
            text.starts_with("**[FIRING:2] DiskFull (critical)**"),
            "{text}"
        );
        assert!(text.chars().count() <= 16_383);
        no_injection(text);
        assert_eq!(b["priority"]["priority"], "urgent");
        assert_eq!(b["priority"]["requested_ack"], true);
    })
    .await;
}

#[tokio::test]
async fn msteamsv2() {
    let d = Double::start(Reply::new(202, "")).await;
    let (i, t) = integration(&format!(
        "  msteamsv2_configs:\n  - webhook_url: '{}/workflows/abc/triggers/manual/paths/invoke?api-version=1&sig=SECRET'\n",
        d.url
    ));
    let mut cases = vec![
        (Reply::new(202, ""), Want::Sent),
        (Reply::new(200, ""), Want::Sent),
        (
            Reply::new(413, "Request Entity too large"),
            Want::Failed(Reason::ClientError),
        ),
    ];
    cases.extend(throttling());
    classify(&i, &t, &d, cases, |r| {
        assert_eq!(r.method, "POST");
        assert!(r.uri.contains("sig=SECRET"), "{}", r.uri);
        json_ct(r);
        let b = r.json();
        assert_eq!(b["type"], "message");
        let a = &b["attachments"][0];
        assert_eq!(a["contentType"], "application/vnd.microsoft.card.adaptive");
        let card = &a["content"];
        assert_eq!(card["type"], "AdaptiveCard");
        assert_eq!(card["body"][0]["type"], "TextBlock");
        assert_eq!(card["body"][0]["color"], "Attention");
        no_injection(card["body"][1]["text"].as_str().expect("text"));
        assert!(r.body.len() <= 25_000);
    })
    .await;
}

#[tokio::test]
async fn discord() {
    let d = Double::start(Reply::new(204, "")).await;
    let (i, t) = integration(&format!(
        "  discord_configs:\n  - webhook_url: {}/api/webhooks/123/tok\n",
        d.url
    ));
    let mut cases = vec![
        (Reply::new(204, ""), Want::Sent),
        (
            Reply::new(404, r#"{"message":"Unknown Webhook","code":10015}"#),
            Want::Failed(Reason::ClientError),
        ),
        (
            Reply::new(401, r#"{"message":"Invalid Webhook Token","code":50027}"#),
            Want::Failed(Reason::Auth),
        ),
        (
            Reply::new(
                429,
                r#"{"message":"You are being rate limited.","retry_after":0.376,"global":false}"#,
            ),
            Want::Retry(Reason::RateLimited, Some(Duration::from_secs_f64(0.376))),
        ),
    ];
    cases.extend(throttling());
    classify(&i, &t, &d, cases, |r| {
        assert_eq!(r.method, "POST");
        assert_eq!(r.uri, "/api/webhooks/123/tok");
        json_ct(r);
        let b = r.json();
        assert_eq!(b["allowed_mentions"]["parse"], serde_json::json!([]));
        let e = &b["embeds"][0];
        assert!(e["title"].as_str().unwrap().chars().count() <= 256);
        let desc = e["description"].as_str().unwrap();
        assert!(desc.chars().count() <= 4096);
        no_injection(desc);
        assert!(e["color"].is_u64());
    })
    .await;
}

#[tokio::test]
async fn telegram() {
    let d = Double::start(Reply::new(200, r#"{"ok":true,"result":{"message_id":1}}"#)).await;
    let (i, t) = integration(&format!(
        "  telegram_configs:\n  - api_url: {}\n    bot_token: '123:SECRET'\n    chat_id: -1001234567890\n    message_thread_id: 7\n",
        d.url
    ));
    let cases = vec![
        (
            Reply::new(200, r#"{"ok":true,"result":{"message_id":1}}"#),
            Want::Sent,
        ),
        (
            Reply::new(
                400,
                r#"{"ok":false,"error_code":400,"description":"Bad Request: can't parse entities"}"#,
            ),
            Want::Failed(Reason::ClientError),
        ),
        (
            Reply::new(
                403,
                r#"{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}"#,
            ),
            Want::Failed(Reason::Auth),
        ),
        (
            Reply::new(
                400,
                r#"{"ok":false,"error_code":400,"description":"Bad Request: group chat was upgraded to a supergroup chat","parameters":{"migrate_to_chat_id":-1009}}"#,
            ),
            Want::Failed(Reason::ClientError),
        ),
        (
            Reply::new(
                429,
                r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 35","parameters":{"retry_after":35}}"#,
            ),
            Want::Retry(Reason::RateLimited, Some(Duration::from_secs(35))),
        ),
        (
            Reply::new(502, "Bad Gateway"),
            Want::Retry(Reason::ServerError, None),
        ),
    ];
    classify(&i, &t, &d, cases, |r| {
        assert_eq!(r.method, "POST");
        assert_eq!(r.uri, "/bot123:SECRET/sendMessage");
        json_ct(r);
        let b = r.json();
        assert_eq!(b["chat_id"], -1001234567890_i64);
        assert_eq!(b["message_thread_id"], 7);
        assert_eq!(b["parse_mode"], "HTML");
        assert_eq!(b["link_preview_options"]["is_disabled"], true);
        let text = b["text"].as_str().unwrap();
        assert!(
            text.starts_with("<b>[FIRING:2] DiskFull (critical)</b>"),
            "{text}"
        );
        assert!(
            text.contains("&lt;b&gt;"),
            "values are HTML-escaped: {text}"
        );
        assert!(text.chars().count() <= 4096);
    })
    .await;
    // The token never shows in an error.
    d.script([Reply::new(500, "")]);
    match once(&i, &t, "n2").await {
        Outcome::Retry(_, msg, _) => assert!(!msg.contains("SECRET"), "{msg}"),
        o => panic!("{o:?}"),
    }
}

#[tokio::test]
async fn matrix_reuses_the_transaction_id() {
    let d = Double::start(Reply::new(200, r#"{"event_id":"$e"}"#)).await;
    let (i, t) = integration(&format!(
        "  matrix_configs:\n  - homeserver_url: {}\n    room_id: '!room:example.org'\n    access_token: SECRET\n",
        d.url
    ));
    let mut cases = vec![
        (Reply::new(200, r#"{"event_id":"$e"}"#), Want::Sent),
        (
            Reply::new(
                401,
                r#"{"errcode":"M_UNKNOWN_TOKEN","error":"Unknown token"}"#,
            ),
            Want::Failed(Reason::Auth),
        ),
        (
            Reply::new(403, r#"{"errcode":"M_FORBIDDEN","error":"not in room"}"#),
            Want::Failed(Reason::Auth),
        ),
        (
            Reply::new(
                429,
                r#"{"errcode":"M_LIMIT_EXCEEDED","error":"Too many requests","retry_after_ms":2000}"#,
            ),
            Want::Retry(Reason::RateLimited, Some(Duration::from_secs(2))),
        ),
    ];
    cases.extend(throttling());
    classify(&i, &t, &d, cases, |r| {
        assert_eq!(r.method, "PUT");
        let txn = r
            .uri
            .strip_prefix("/_matrix/client/v3/rooms/%21room%3Aexample.org/send/m.room.message/")
            .unwrap_or_else(|| panic!("{}", r.uri));
        assert!(txn.starts_with('n'), "the notification's id: {txn}");
        assert!(!r.uri.contains("access_token"));
        assert_eq!(r.header("authorization"), "Bearer SECRET");
        json_ct(r);
        let b = r.json();
        assert_eq!(b["msgtype"], "m.notice");
        assert_eq!(b["format"], "org.matrix.custom.html");
        let html = b["formatted_body"].as_str().unwrap();
        assert!(html.contains("&lt;b&gt;"), "{html}");
        assert!(b["body"].as_str().unwrap().contains("DiskFull"));
    })
    .await;
}

#[tokio::test]
async fn googlechat_threads_per_group() {
    let d = Double::start(Reply::new(200, r#"{"name":"spaces/S/messages/M"}"#)).await;
    let (i, t) = integration(&format!(
        "  googlechat_configs:\n  - url: '{}/v1/spaces/S/messages?key=K&token=SECRET'\n",
        d.url
    ));
    let mut cases = vec![
        (
            Reply::new(200, r#"{"name":"spaces/S/messages/M"}"#),
            Want::Sent,
        ),
        (
            Reply::new(400, r#"{"error":{"code":400}}"#),
            Want::Failed(Reason::ClientError),
        ),
        (
            Reply::new(429, r#"{"error":{"code":429}}"#),
            Want::Retry(Reason::RateLimited, None),
        ),
    ];
    cases.extend(throttling());
    let mut keys = std::collections::HashSet::new();
    classify(&i, &t, &d, cases, |r| {
        assert_eq!(r.method, "POST");
        assert_eq!(r.path(), "/v1/spaces/S/messages");
        let q = r.query();
        assert!(q.contains(&("token".into(), "SECRET".into())));
        assert!(q.contains(&(
            "messageReplyOption".into(),
            "REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD".into()
        )));
        assert_eq!(r.header("content-type"), "application/json; charset=UTF-8");
        let b = r.json();
        let text = b["text"].as_str().unwrap();
        assert!(
            !text.contains("<users/all>") && !text.contains("<!channel>"),
            "{text}"
        );
        assert!(text.contains("‹users/all›"), "{text}");
        assert!(r.body.len() <= 32_000);
        keys.insert(b["thread"]["threadKey"].as_str().unwrap().to_string());
    })
    .await;
    assert_eq!(keys.len(), 1, "one thread per group");
}

fn sms_text_ok(text: &str) {
    assert!(text.starts_with("FIRING:2 DiskFull"), "{text}");
    assert!(
        text.ends_with("http://router:9093/ui/alerts?filter=alertname%3D%22DiskFull%22"),
        "{text}"
    );
    assert!(text.chars().count() <= 160, "one GSM segment: {text}");
}

#[tokio::test]
async fn twilio_texts_each_number_once() {
    let created = r#"{"sid":"SM1","status":"queued","error_code":null}"#;
    let d = Double::start(Reply::new(201, created)).await;
    let (i, t) = integration(&format!(
        "  twilio_configs:\n  - api_url: {}\n    account_sid: AC123\n    auth_token: SECRET\n    from: '+15005550006'\n    to: ['+33600000001', '+33600000002']\n",
        d.url
    ));
    let check = |r: &Req| {
        assert_eq!(r.method, "POST");
        assert_eq!(r.uri, "/2010-04-01/Accounts/AC123/Messages.json");
        assert_eq!(
            r.header("content-type"),
            "application/x-www-form-urlencoded"
        );
        use base64::Engine as _;
        let basic = base64::engine::general_purpose::STANDARD.encode("AC123:SECRET");
        assert_eq!(r.header("authorization"), format!("Basic {basic}"));
        let f: BTreeMap<_, _> = r.form().into_iter().collect();
        assert!(f["To"].starts_with("+3360000000"));
        assert_eq!(f["From"], "+15005550006");
        sms_text_ok(&f["Body"]);
    };
    let bad = r#"{"code":21211,"message":"The 'To' number is not valid.","status":400}"#;
    let busy = r#"{"code":20429,"message":"Too Many Requests","status":429}"#;
    classify(
        &i,
        &t,
        &d,
        vec![
            (Reply::new(201, created), Want::Sent),
            (Reply::new(400, bad), Want::Partial),
            (
                Reply::new(401, r#"{"code":20003,"message":"Authenticate"}"#),
                Want::Partial,
            ),
        ],
        check,
    )
    .await;
    // Both refused: a failure naming Twilio's code.
    d.script([Reply::new(400, bad), Reply::new(400, bad)]);
    match once(&i, &t, "n9").await {
        Outcome::Failed(Reason::ClientError, m) => assert!(m.contains("21211"), "{m}"),
        o => panic!("{o:?}"),
    }
    d.take();
    // The first number texted, the second throttled: the retry texts the second only.
    d.script([
        Reply::new(201, created),
        Reply::new(429, busy).header("Retry-After", "1"),
    ]);
    assert!(matches!(
        once(&i, &t, "n3").await,
        Outcome::Retry(Reason::RateLimited, _, Some(_))
    ));
    assert_eq!(d.take().len(), 2);
    assert_eq!(once(&i, &t, "n3").await, Outcome::Sent);
    let again = d.take();
    assert_eq!(again.len(), 1, "the number already texted is skipped");
    assert_eq!(again[0].form()[0], ("To".into(), "+33600000002".into()));
}

#[tokio::test]
async fn ovh_signs_every_request() {
    let ok = r#"{"totalCreditsRemoved":1,"invalidReceivers":[],"ids":[1],"validReceivers":["+33600000001"]}"#;
    let d = Double::start(Reply::new(200, ok)).await;
    let (i, t) = integration(&format!(
        "  ovh_configs:\n  - endpoint: {}/1.0\n    application_key: AK\n    application_secret: AS\n    consumer_key: CK\n    service_name: sms-ab12345-1\n    to: ['+33600000001']\n",
        d.url
    ));
    let server_time = jiff::Timestamp::now().as_second() + 1000;
    let url = d.url.clone();
    let check = move |r: &Req| {
        if r.path() == "/1.0/auth/time" {
            assert_eq!(r.method, "GET");
            return;
        }
        assert_eq!(r.method, "POST");
        assert_eq!(r.uri, "/1.0/sms/sms-ab12345-1/jobs");
        assert_eq!(r.header("x-ovh-application"), "AK");
        assert_eq!(r.header("x-ovh-consumer"), "CK");
        json_ct(r);
        let ts: i64 = r.header("x-ovh-timestamp").parse().expect("timestamp");
        assert!(
            (ts - server_time).abs() <= 5,
            "timestamp corrected by the server's clock"
        );
        let full = format!("{url}{}", r.uri);
        let pre = format!("AS+CK+POST+{full}+{}+{ts}", r.body);
        let d = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, pre.as_bytes());
        let hex: String = d.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(r.header("x-ovh-signature"), format!("$1${hex}"));
        let b = r.json();
        assert_eq!(b["receivers"], serde_json::json!(["+33600000001"]));
        assert_eq!(b["noStopClause"], true);
        assert_eq!(b["senderForResponse"], true);
        sms_text_ok(b["message"].as_str().unwrap());
    };
    d.script([Reply::new(200, &server_time.to_string())]);
    let partial = r#"{"totalCreditsRemoved":1,"invalidReceivers":["+33600000009"],"ids":[1],"validReceivers":["+33600000001"]}"#;
    let none = r#"{"totalCreditsRemoved":0,"invalidReceivers":["+33600000001"],"ids":[],"validReceivers":[]}"#;
    let cases = vec![
        (Reply::new(200, ok), Want::Sent),
        (Reply::new(200, partial), Want::Partial),
        (Reply::new(200, none), Want::Failed(Reason::ClientError)),
        (
            Reply::new(
                403,
                r#"{"errorCode":"INVALID_CREDENTIAL","message":"This credential is not valid"}"#,
            ),
            Want::Failed(Reason::Auth),
        ),
    ];
    classify(&i, &t, &d, cases, &check).await;
    // After the auth failure the clock is read again.
    d.script([
        Reply::new(200, &server_time.to_string()),
        Reply::new(460, r#"{"message":"Service expired"}"#),
    ]);
    assert!(
        matches!(once(&i, &t, "n5").await, Outcome::Failed(Reason::ClientError, m) if m.contains("expired"))
    );
    let reqs = d.take();
    assert_eq!(
        reqs[0].path(),
        "/1.0/auth/time",
        "clock read again after the auth error"
    );
    for r in &reqs {
        check(r);
    }
    classify(&i, &t, &d, throttling(), &check).await;
}

#[tokio::test]
async fn vonage_reads_each_message_status() {
    let ok =
        r#"{"message-count":"1","messages":[{"to":"33600000001","message-id":"1","status":"0"}]}"#;
    let d = Double::start(Reply::new(200, ok)).await;
    let (i, t) = integration(&format!(
        "  vonage_configs:\n  - api_url: {}\n    api_key: KEY\n    api_secret: SECRET\n    from: Vigie\n    to: ['+33600000001']\n",
        d.url
    ));
    let st = |s: &str| {
        format!(
            r#"{{"message-count":"1","messages":[{{"to":"33600000001","status":"{s}","error-text":"x"}}]}}"#
        )
    };
    let mut cases = vec![
        (Reply::new(200, ok), Want::Sent),
        (
            Reply::new(200, &st("1")),
            Want::Retry(Reason::RateLimited, None),
        ),
        (Reply::new(200, &st("9")), Want::Failed(Reason::ClientError)),
        (Reply::new(200, &st("4")), Want::Failed(Reason::Auth)),
        (
            Reply::new(200, &st("5")),
            Want::Retry(Reason::ServerError, None),
        ),
    ];
    cases.extend(throttling());
    classify(&i, &t, &d, cases, |r| {
        assert_eq!(r.method, "POST");
        assert_eq!(r.uri, "/sms/json");
        assert_eq!(
            r.header("content-type"),
            "application/x-www-form-urlencoded"
        );
        let f: BTreeMap<_, _> = r.form().into_iter().collect();
        assert_eq!(f["api_key"], "KEY");
        assert_eq!(f["api_secret"], "SECRET");
        assert_eq!(f["from"], "Vigie");
        assert_eq!(f["to"], "33600000001", "no leading +");
        assert!(!f.contains_key("type"), "GSM text is not sent as unicode");
        sms_text_ok(&f["text"]);
    })
    .await;
}

#[tokio::test]
async fn freemobile() {
    let d = Double::start(Reply::new(200, "")).await;
    let (i, t) = integration(&format!(
        "  freemobile_configs:\n  - api_url: {}\n    user: '12345678'\n    pass: SECRET\n",
        d.url
    ));
    let mut cases = vec![
        (Reply::new(200, ""), Want::Sent),
        (Reply::new(400, ""), Want::Failed(Reason::ClientError)),
        (Reply::new(402, ""), Want::Retry(Reason::RateLimited, None)),
        (Reply::new(403, ""), Want::Failed(Reason::Auth)),
    ];
    cases.extend(throttling());
    classify(&i, &t, &d, cases, |r| {
        assert_eq!(r.method, "GET");
        assert_eq!(r.path(), "/sendmsg");
        let q: BTreeMap<_, _> = r.query().into_iter().collect();
        assert_eq!(q["user"], "12345678");
        assert_eq!(q["pass"], "SECRET");
        sms_text_ok(&q["msg"]);
        assert!(!q["msg"].contains('\n'), "one line");
    })
    .await;
}

#[tokio::test]
async fn generic_sms_gateway() {
    let d = Double::start(Reply::new(200, r#"{"status":"0"}"#)).await;
    // SAFETY: no other test reads this variable.
    unsafe { std::env::set_var("VIGIE_TEST_GATEWAY_TOKEN", "SECRET") };
    let (i, t) = integration(&format!(
        "  sms_configs:\n  - url: {}/send\n    headers: {{Authorization: '${{VIGIE_TEST_GATEWAY_TOKEN}}'}}\n    to: ['+33600000001']\n    success_pointer: /status\n    success_value: '0'\n    idempotency_header: true\n",
        d.url
    ));
    let mut cases = vec![
        (Reply::new(200, r#"{"status":"0"}"#), Want::Sent),
        (
            Reply::new(200, r#"{"status":"7"}"#),
            Want::Failed(Reason::ClientError),
        ),
        (
            Reply::new(422, "bad number"),
            Want::Failed(Reason::ClientError),
        ),
    ];
    cases.extend(throttling());
    classify(&i, &t, &d, cases, |r| {
        assert_eq!(r.method, "POST");
        assert_eq!(r.uri, "/send");
        assert_eq!(r.header("authorization"), "SECRET");
        let key = r.header("idempotency-key");
        assert!(
            key.starts_with('n') && key.ends_with(":+33600000001"),
            "{key}"
        );
        json_ct(r);
        let b = r.json();
        assert_eq!(b["to"], "+33600000001");
        sms_text_ok(b["text"].as_str().unwrap());
    })
    .await;
}

#[tokio::test]
async fn webhook() {
    let d = Double::start(Reply::new(200, "")).await;
    let (i, t) = integration(&format!(
        "  webhook_configs:\n  - url: {}/hook\n    max_alerts: 1\n    http_config: {{authorization: {{credentials: SECRET}}}}\n",
        d.url
    ));
    let mut cases = vec![
        (Reply::new(200, ""), Want::Sent),
        (Reply::new(204, ""), Want::Sent),
        (Reply::new(400, ""), Want::Failed(Reason::ClientError)),
        (Reply::new(401, ""), Want::Failed(Reason::Auth)),
    ];
    cases.extend(throttling());
    classify(&i, &t, &d, cases, |r| {
        assert_eq!(r.method, "POST");
        assert_eq!(r.uri, "/hook");
        assert_eq!(r.header("authorization"), "Bearer SECRET");
        json_ct(r);
        let b = r.json();
        assert_eq!(b["version"], "4");
        assert_eq!(b["truncatedAlerts"], 1);
        assert_eq!(b["alerts"].as_array().map(Vec::len), Some(1));
        assert_eq!(b["groupKey"], "{}:{alertname=\"DiskFull\"}");
    })
    .await;
}

/// A named wait is honoured by the retry loop, then the notification goes through.
#[tokio::test]
async fn retry_waits_what_the_receiver_asked() {
    let d = Double::start(Reply::new(204, "")).await;
    let (i, t) = integration(&format!(
        "  discord_configs:\n  - webhook_url: {}/api/webhooks/1/t\n",
        d.url
    ));
    d.script([Reply::new(429, r#"{"retry_after":0.3,"global":false}"#)]);
    let data = data();
    let n = Notification {
        data: &data,
        templates: &t,
        id: "n1",
        contact: None,
        ack_url: None,
    };
    let started = std::time::Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let got = vigie_router::notify::send_with_retry(&i, &n, deadline).await;
    assert!(
        got.sent && got.attempts == 2 && got.failure.is_none(),
        "{got:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(d.take().len(), 2);
    // A permanent refusal is not retried.
    d.script([Reply::new(404, r#"{"code":10015}"#)]);
    let got = vigie_router::notify::send_with_retry(&i, &n, deadline).await;
    assert!(!got.sent && got.attempts == 1, "{got:?}");
    assert_eq!(got.failure.map(|f| f.0), Some(Reason::ClientError));
}

#[test]
fn bad_configurations_name_the_key() {
    for (snippet, want) in [
        (
            "  slack_configs:\n  - channel: x\n",
            "slack_configs[0]: no api_url",
        ),
        (
            "  telegram_configs:\n  - bot_token: t\n",
            "telegram_configs[0]: missing chat_id",
        ),
        (
            "  twilio_configs:\n  - account_sid: AC1\n    auth_token: t\n    from: '+1500'\n    to: ['0600']\n",
            "not an E.164 number",
        ),
        (
            "  discord_configs:\n  - webhook_url: http://x/\n    message: '{{ nosuch . }}'\n",
            "discord_configs[0]: message: function \"nosuch\" not defined",
        ),
        (
            "  slack_configs:\n  - api_url: x\n    colour: red\n",
            "colour",
        ),
        (
            "  msteams_configs:\n  - webhook_url: http://x\n",
            "use msteamsv2_configs",
        ),
    ] {
        let yaml = format!("route:\n  receiver: r\nreceivers:\n- name: r\n{snippet}");
        let e = Config::parse(Path::new("vigie.yml"), &yaml)
            .err()
            .unwrap_or_else(|| panic!("accepted:\n{yaml}"))
            .to_string();
        assert!(e.contains(want), "{e}");
        assert!(e.contains("vigie.yml"), "{e}");
    }
}

/// An on-call page texts the person on call (not the configured numbers), ends with the
/// acknowledgement link, and a chat page mentions them.
#[tokio::test]
async fn on_call_pages_reach_the_person() {
    let created = r#"{"sid":"SM1","status":"queued"}"#;
    let d = Double::start(Reply::new(201, created)).await;
    let (i, t) = integration(&format!(
        "  twilio_configs:\n  - api_url: {}\n    account_sid: AC123\n    auth_token: SECRET\n    from: '+15005550006'\n    to: ['+33600000009']\n",
        d.url
    ));
    let alice = vigie_router::oncall::Contact {
        name: "alice".into(),
        phone: Some("+33600000001".into()),
        email: None,
        chat: Some("@alice".into()),
    };
    let data = data();
    let ack = "http://router:9093/oncall/ack?t=abc.def";
    let n = Notification {
        data: &data,
        templates: &t,
        id: "p1",
        contact: Some(&alice),
        ack_url: Some(ack),
    };
    assert_eq!(i.notify(&n).await, Outcome::Sent);
    let reqs = d.take();
    assert_eq!(reqs.len(), 1);
    let f: BTreeMap<_, _> = reqs[0].form().into_iter().collect();
    assert_eq!(f["To"], "+33600000001");
    assert!(f["Body"].ends_with(ack), "{}", f["Body"]);
    // Nobody with a phone: a clear failure.
    let nophone = vigie_router::oncall::Contact {
        name: "bob".into(),
        ..Default::default()
    };
    let n = Notification {
        contact: Some(&nophone),
        ..n
    };
    match i.notify(&n).await {
        Outcome::Failed(Reason::ClientError, m) => assert!(m.contains("bob has no phone"), "{m}"),
        o => panic!("{o:?}"),
    }

    let chat = Double::start(Reply::new(200, "ok")).await;
    let (i, t) = integration(&format!(
        "  mattermost_configs:\n  - webhook_url: {}/hooks/x\n",
        chat.url
    ));
    let n = Notification {
        data: &data,
        templates: &t,
        id: "p2",
        contact: Some(&alice),
        ack_url: Some(ack),
    };
    assert_eq!(i.notify(&n).await, Outcome::Sent);
    let text = chat.take()[0].json()["text"].as_str().unwrap().to_string();
    assert!(text.contains("@alice "), "{text}");
    assert!(
        text.contains(&format!("Acknowledge: {}", ack.replace('_', "\\_"))),
        "{text}"
    );
}
