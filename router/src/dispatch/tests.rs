//! Alert timelines on Tokio's paused clock: group_wait, group_interval, repeat_interval,
//! resolution, inhibition, silences, `continue` and time intervals, checked notification by
//! notification.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::config::Config;
use crate::notify::{BoxFuture, Data, Notification, Notifier, Outcome};
use crate::silence::ApiMatcher;

const T0: i64 = 1_795_000_000 * 1_000_000_000; // 2026-11-18, a Wednesday

type Sent = Arc<Mutex<Vec<Data>>>;

/// Records notifications in memory.
#[derive(Debug)]
struct Capture(Sent);

impl Notifier for Capture {
    fn notify<'a>(&'a self, n: &'a Notification<'a>) -> BoxFuture<'a, Outcome> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(n.data.clone());
        Box::pin(async { Outcome::Sent })
    }
}

fn setup(yaml: &str) -> (Arc<Dispatcher>, Sent) {
    let cfg = Config::parse(Path::new("am.yml"), yaml).expect("valid config");
    let mut routing = (*cfg.routing.expect("route")).clone();
    let sent: Sent = Arc::default();
    for r in routing.receivers.values_mut() {
        for i in &mut r.integrations {
            i.notifier = Arc::new(Capture(sent.clone()));
        }
    }
    let d = Dispatcher::new(
        Durable::memory(),
        Clock::following_tokio(T0),
        "http://router:9093".into(),
        Loaded::default(),
    );
    d.configure(Some(Arc::new(routing)));
    (d, sent)
}

fn alert(d: &Dispatcher, pairs: &[(&str, &str)], started_ago_s: i64, ends_in_s: i64) -> Alert {
    let now = d.clock.now();
    Alert {
        labels: pairs.iter().copied().collect(),
        annotations: Default::default(),
        starts_at: now - started_ago_s * 1_000_000_000,
        ends_at: now + ends_in_s * 1_000_000_000,
        updated_at: now,
        generator_url: "".into(),
        timeout: false,
    }
}

/// (receiver, status, [(alertname/instance, status)]) of each notification so far.
fn summary(sent: &Sent) -> Vec<(String, String, Vec<String>)> {
    sent.lock()
        .expect("lock")
        .iter()
        .map(|d| {
            (
                d.receiver.clone(),
                d.status.to_string(),
                d.alerts
                    .iter()
                    .map(|a| {
                        let id = a
                            .labels
                            .get("instance")
                            .or(a.labels.get("alertname"))
                            .cloned()
                            .unwrap_or_default();
                        format!("{id}:{}", a.status)
                    })
                    .collect(),
            )
        })
        .collect()
}

async fn wait(s: u64) {
    tokio::time::sleep(Duration::from_secs(s)).await;
}

const BASIC: &str = "
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 30s
  group_interval: 1m
  repeat_interval: 4m
receivers:
  - name: hook
    webhook_configs: [{url: 'http://127.0.0.1:1/'}]
";

#[tokio::test(start_paused = true)]
async fn wait_interval_repeat_and_resolve() {
    let (d, sent) = setup(BASIC);
    d.put(vec![alert(
        &d,
        &[("alertname", "A"), ("instance", "1")],
        0,
        3600,
    )])
    .await
    .expect("put");
    wait(29).await;
    assert!(summary(&sent).is_empty(), "nothing before group_wait");
    wait(2).await;
    assert_eq!(
        summary(&sent).len(),
        1,
        "first notification after group_wait"
    );
    // A second alert joins; it goes out at the next group_interval tick, with the first.
    d.put(vec![alert(
        &d,
        &[("alertname", "A"), ("instance", "2")],
        0,
        3600,
    )])
    .await
    .expect("put");
    wait(60).await;
    assert_eq!(summary(&sent).len(), 2);
    assert_eq!(
        summary(&sent)[1].2,
        vec!["1:firing".to_string(), "2:firing".to_string()]
    );
    // Unchanged: nothing until repeat_interval has passed since the send at 90 s. The tick at
    // exactly 90 + 240 s is not past it (Alertmanager's strict comparison), the next one is.
    wait(60 * 4).await;
    assert_eq!(summary(&sent).len(), 2, "no repeat before the interval");
    wait(60).await;
    assert_eq!(summary(&sent).len(), 3, "repeat after repeat_interval");
    // Instance 2 resolves: the next tick sends it as resolved inside a firing notification.
    let mut r = alert(&d, &[("alertname", "A"), ("instance", "2")], 0, 0);
    r.ends_at = d.clock.now();
    d.put(vec![r]).await.expect("put");
    wait(60).await;
    let s = summary(&sent);
    assert_eq!(s.len(), 4);
    assert_eq!(s[3].1, "firing");
    assert_eq!(
        s[3].2,
        vec!["1:firing".to_string(), "2:resolved".to_string()]
    );
    // Both resolved: one resolved notification, then the group is quiet.
    let mut r = alert(&d, &[("alertname", "A"), ("instance", "1")], 0, 0);
    r.ends_at = d.clock.now();
    d.put(vec![r]).await.expect("put");
    wait(60).await;
    let s = summary(&sent);
    assert_eq!((s.len(), s[4].1.as_str()), (5, "resolved"));
    assert_eq!(s[4].2, vec!["1:resolved".to_string()]);
    wait(600).await;
    assert_eq!(summary(&sent).len(), 5);
}

#[tokio::test(start_paused = true)]
async fn old_alerts_skip_group_wait_and_short_lived_ones_are_never_sent() {
    let (d, sent) = setup(BASIC);
    d.put(vec![alert(&d, &[("alertname", "Old")], 120, 3600)])
        .await
        .expect("put");
    wait(1).await;
    assert_eq!(
        summary(&sent).len(),
        1,
        "startsAt older than group_wait: immediate"
    );
    d.put(vec![alert(&d, &[("alertname", "Blip")], 0, 10)])
        .await
        .expect("put");
    wait(120).await;
    assert_eq!(
        summary(&sent).len(),
        1,
        "resolved within group_wait: never notified"
    );
}

#[tokio::test(start_paused = true)]
async fn inhibition_and_silences() {
    let (d, sent) = setup(&format!(
        "{BASIC}inhibit_rules:\n  - source_matchers: [severity=critical]\n    target_matchers: [severity=warning]\n    equal: [cluster]\n"
    ));
    d.put(vec![
        alert(
            &d,
            &[
                ("alertname", "Down"),
                ("severity", "critical"),
                ("cluster", "a"),
            ],
            0,
            3600,
        ),
        alert(
            &d,
            &[
                ("alertname", "Slow"),
                ("severity", "warning"),
                ("cluster", "a"),
            ],
            0,
            3600,
        ),
        alert(
            &d,
            &[
                ("alertname", "Slow2"),
                ("severity", "warning"),
                ("cluster", "b"),
            ],
            0,
            3600,
        ),
    ])
    .await
    .expect("put");
    let s = Silence::new(
        vec![ApiMatcher {
            name: "alertname".into(),
            value: "Slow2".into(),
            is_regex: false,
            is_equal: true,
        }],
        d.clock.now(),
        d.clock.now() + 80 * 1_000_000_000,
        "ops".into(),
        "maintenance".into(),
    )
    .expect("valid");
    let id = d.set_silence(s).await.expect("silence");
    wait(31).await;
    let names: Vec<String> = summary(&sent).into_iter().flat_map(|s| s.2).collect();
    assert_eq!(
        names,
        vec!["Down:firing".to_string()],
        "inhibited and silenced left out"
    );
    let views = d.alerts();
    let slow2 = views
        .iter()
        .find(|v| {
            v.alert
                .labels
                .get("alertname")
                .is_some_and(|n| n == "Slow2")
        })
        .expect("listed");
    assert_eq!(slow2.silenced_by, vec![id]);
    // The silence ends at 80 s: Slow2 goes out at the next flush of its group (90 s).
    wait(60).await;
    assert_eq!(summary(&sent).len(), 2);
    assert_eq!(summary(&sent)[1].2, vec!["Slow2:firing".to_string()]);
}

#[tokio::test(start_paused = true)]
async fn continue_reaches_several_receivers_with_their_own_keys() {
    let (d, sent) = setup(
        "
route:
  receiver: default
  group_by: ['...']
  group_wait: 0s
  routes:
    - matchers: [team=db]
      receiver: db
      continue: true
    - matchers: [severity=critical]
      receiver: pager
      group_by: [severity]
receivers:
  - name: default
    webhook_configs: [{url: 'http://127.0.0.1:1/'}]
  - name: db
    webhook_configs: [{url: 'http://127.0.0.1:1/'}]
  - name: pager
    webhook_configs: [{url: 'http://127.0.0.1:1/'}]
",
    );
    d.put(vec![alert(
        &d,
        &[("alertname", "X"), ("team", "db"), ("severity", "critical")],
        0,
        3600,
    )])
    .await
    .expect("put");
    wait(1).await;
    let sent = sent.lock().expect("lock").clone();
    let mut got: Vec<(String, String)> = sent
        .iter()
        .map(|d| (d.receiver.clone(), d.group_key.clone()))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            (
                "db".to_string(),
                r#"{}/{team="db"}:{alertname="X", severity="critical", team="db"}"#.to_string()
            ),
            (
                "pager".to_string(),
                r#"{}/{severity="critical"}:{severity="critical"}"#.to_string()
            ),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn mute_time_intervals_drop_without_deferring() {
    // T0 is a Wednesday: mute all of Wednesday.
    let (d, sent) = setup(
        "
route:
  receiver: hook
  group_wait: 0s
  group_interval: 1h
  routes:
    - matchers: [alertname=A]
      mute_time_intervals: [wednesdays]
receivers:
  - name: hook
    webhook_configs: [{url: 'http://127.0.0.1:1/'}]
time_intervals:
  - name: wednesdays
    time_intervals: [{weekdays: [wednesday]}]
",
    );
    d.put(vec![alert(&d, &[("alertname", "A")], 0, 48 * 3600)])
        .await
        .expect("put");
    wait(1).await;
    assert!(summary(&sent).is_empty(), "muted on Wednesday");
    // T0 is 11:06:40 UTC; hourly flushes stay muted until the first one on Thursday (46 800 s).
    wait(46_000).await;
    assert!(summary(&sent).is_empty(), "muted all Wednesday");
    wait(1_000).await;
    assert_eq!(
        summary(&sent).len(),
        1,
        "sent at the first flush on Thursday"
    );
}

#[tokio::test(start_paused = true)]
async fn resolved_alerts_are_kept_until_their_resolution_is_notified() {
    let (d, sent) = setup(BASIC);
    let firing = alert(&d, &[("alertname", "A")], 0, 3600);
    let fp = firing.fingerprint();
    d.put(vec![firing]).await.expect("put");
    wait(31).await;
    assert_eq!(summary(&sent).len(), 1);
    let mut r = alert(&d, &[("alertname", "A")], 0, 0);
    r.ends_at = d.clock.now();
    d.put(vec![r]).await.expect("put");
    // Clean-up before the group's next flush must not drop the pending resolution.
    d.maintain().await;
    assert!(
        lock(&d.state).alerts.get(fp).is_some(),
        "dropped before notified"
    );
    wait(60).await;
    assert_eq!(summary(&sent)[1].1, "resolved");
    d.maintain().await;
    assert!(
        lock(&d.state).alerts.get(fp).is_none(),
        "kept after notified"
    );
    assert!(lock(&d.state).groups.is_empty(), "empty group stopped");
}

/// A receiver's limit: the notification over it becomes one summary, the next ones are held
/// back (and logged, so they are not retried), and sending resumes when the window has passed.
#[tokio::test(start_paused = true)]
async fn receiver_limit_sends_one_summary_then_holds() {
    let (d, sent) = setup(
        "
route:
  receiver: sms
  group_by: [alertname]
  group_wait: 10s
  group_interval: 1m
  repeat_interval: 1h
receivers:
  - name: sms
    limit: {max: 2, per: 30m}
    webhook_configs: [{url: 'http://127.0.0.1:1/'}]
",
    );
    for name in ["A", "B", "C", "D"] {
        d.put(vec![alert(&d, &[("alertname", name)], 0, 7200)])
            .await
            .expect("put");
    }
    wait(11).await;
    let s = summary(&sent);
    assert_eq!(s.len(), 3, "{s:?}");
    let names: Vec<&str> = s.iter().map(|n| n.2[0].as_str()).collect();
    assert_eq!(
        names
            .iter()
            .filter(|n| n.starts_with("NotificationLimit"))
            .count(),
        1,
        "{names:?}"
    );
    // Held-back groups are not retried at their next interval.
    wait(120).await;
    assert_eq!(summary(&sent).len(), 3);
    // After the window, repeats go out again (one more summary if they overflow again).
    wait(3600).await;
    let after = summary(&sent);
    assert!(after.len() >= 5, "{after:?}");
    let held = d
        .notify_metrics
        .families()
        .into_iter()
        .find(|f| f.name == "vigie_notifications_failed_total")
        .expect("family");
    assert!(
        held.samples
            .iter()
            .any(|s| s.label("reason") == Some("limited") && s.value >= 1.0),
        "{held:?}"
    );
}

/// Records who each notification was addressed to.
#[derive(Debug)]
struct ToWhom(Arc<Mutex<Vec<String>>>);

impl Notifier for ToWhom {
    fn notify<'a>(&'a self, n: &'a Notification<'a>) -> BoxFuture<'a, Outcome> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(n.contact.map(|c| c.name.clone()).unwrap_or_default());
        Box::pin(async { Outcome::Sent })
    }
}

/// A receiver with `oncall: <schedule>` addresses each notification to whoever is on call
/// when it is sent; the attempt log records each delivery.
#[tokio::test(start_paused = true)]
async fn receiver_targets_whoever_is_on_call() {
    let cfg = Config::parse(
        Path::new("am.yml"),
        "
route:
  receiver: oncall-sms
  group_by: [alertname]
  group_wait: 10s
  group_interval: 1m
  repeat_interval: 1h
receivers:
  - name: oncall-sms
    oncall: primary
    webhook_configs: [{url: 'http://127.0.0.1:1/'}]
oncall:
  people: {alice: {phone: '+33600000001'}, bob: {phone: '+33600000002'}}
  schedules:
  - name: primary
    time_zone: UTC
    layers: [{members: [alice, bob], start: 2026-11-18T00:00, rotation: 1d}]
",
    )
    .expect("valid config");
    let mut routing = (*cfg.routing.expect("route")).clone();
    let whom: Arc<Mutex<Vec<String>>> = Arc::default();
    for r in routing.receivers.values_mut() {
        for i in &mut r.integrations {
            i.notifier = Arc::new(ToWhom(whom.clone()));
        }
    }
    // T0 is Wednesday 18 Nov 2026 (alice's day); 23:50 is ten minutes before bob's.
    let d = Dispatcher::new(
        Durable::memory(),
        Clock::following_tokio(T0 - T0 % 86_400_000_000_000 + 86_400_000_000_000 - 600_000_000_000),
        "http://router:9093".into(),
        Loaded::default(),
    );
    d.configure(Some(Arc::new(routing)));
    d.put(vec![alert(&d, &[("alertname", "A")], 0, 7200)])
        .await
        .expect("put");
    wait(11).await;
    assert_eq!(*whom.lock().unwrap(), ["alice"]);
    // Past midnight, a new group goes to bob.
    wait(10 * 60).await;
    d.put(vec![alert(&d, &[("alertname", "B")], 0, 7200)])
        .await
        .expect("put");
    wait(11).await;
    assert_eq!(*whom.lock().unwrap(), ["alice", "bob"]);
    let log = d.attempts.list();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].outcome, "sent");
    assert_eq!(log[0].tries, ["sent"]);
    assert_eq!(log[0].receiver, "oncall-sms");
}
