//! Escalations on Tokio's paused clock: steps, waits, repeats, hand-offs and overrides met
//! during an escalation, a DST night, acknowledgement at each step, and resolution.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::oncall::schedule::tests::oncall;

type Pages = Arc<Mutex<Vec<(i64, String, String, String)>>>;

/// Records (time, via, who, ack link) of each page.
struct Capture(Pages, Clock);

impl Pager for Capture {
    fn page<'a>(
        &'a self,
        via: &'a str,
        c: &'a Contact,
        _d: &'a Data,
        ack: &'a str,
    ) -> BoxFuture<'a, bool> {
        self.0.lock().unwrap().push((
            self.1.now(),
            via.to_string(),
            c.name.clone(),
            ack.to_string(),
        ));
        Box::pin(async { true })
    }
}

fn ns(s: &str) -> i64 {
    s.parse::<jiff::Timestamp>().unwrap().as_nanosecond() as i64
}

fn data() -> Data {
    crate::notify::template::tests_data()
}

const POLICY: &str = "  schedules:
  - name: primary
    time_zone: Europe/Paris
    layers:
    - {members: [alice, bob], start: 2026-11-02T09:00, rotation: 1d}
  escalation_policies:
  - name: db
    repeat: 1
    steps:
    - {notify: [{schedule: primary}], via: sms, wait: 10m}
    - {notify: [{person: carol}], via: sms, wait: 15m}
";

fn start(yaml: &str, t0: &str) -> (Arc<Engine>, Start, Pages, Clock) {
    let oc = oncall(yaml);
    let clock = Clock::following_tokio(ns(t0));
    let pages: Pages = Arc::default();
    let policy = oc.policies["db"].clone();
    let s = Start {
        oncall: oc,
        policy,
        receiver: "pager".into(),
        pager: Arc::new(Capture(pages.clone(), clock.clone())),
        clock: clock.clone(),
        external_url: "http://router:9093".into(),
    };
    (Arc::new(Engine::default()), s, pages, clock)
}

fn who_when(p: &Pages) -> Vec<(String, i64)> {
    p.lock()
        .unwrap()
        .iter()
        .map(|(t, _, w, _)| (w.clone(), *t))
        .collect()
}

async fn wait_min(m: u64) {
    tokio::time::sleep(Duration::from_secs(60 * m)).await;
}

#[tokio::test(start_paused = true)]
async fn steps_repeat_then_exhaust() {
    // Tuesday 3 Nov 10:00 CET: bob's day.
    let t0 = "2026-11-03T09:00:00Z";
    let (engine, s, pages, _clock) = start(POLICY, t0);
    let id = engine.firing(s, data());
    wait_min(60).await;
    let m = 60_000_000_000;
    assert_eq!(
        who_when(&pages),
        vec![
            ("bob".to_string(), ns(t0)),
            ("carol".to_string(), ns(t0) + 10 * m),
            ("bob".to_string(), ns(t0) + 25 * m),
            ("carol".to_string(), ns(t0) + 35 * m),
        ]
    );
    assert!(matches!(
        engine.get(&id).unwrap().status,
        Status::Exhausted { .. }
    ));
    // Later flushes of the still-firing group do not restart it.
    let (_, s2, pages2, _) = start(POLICY, t0);
    assert_eq!(engine.firing(s2, data()), id);
    wait_min(60).await;
    assert!(pages2.lock().unwrap().is_empty());
    assert_eq!(pages.lock().unwrap().len(), 4);
    // Every page carries a link that acknowledges this escalation.
    let (_, via, _, link) = pages.lock().unwrap()[0].clone();
    assert_eq!(via, "sms");
    let token = link.split("t=").nth(1).unwrap();
    let oc = oncall(POLICY);
    assert_eq!(
        oc.links.verify(token, ns(t0) / 1_000_000).as_deref(),
        Ok(id.as_str())
    );
}

#[tokio::test(start_paused = true)]
async fn acknowledgement_at_each_step_stops_the_rest() {
    for (ack_after_min, pages_before) in [(1, 1), (11, 2), (26, 3), (36, 4)] {
        let (engine, s, pages, clock) = start(POLICY, "2026-11-03T09:00:00Z");
        let id = engine.firing(s, data());
        wait_min(ack_after_min).await;
        engine.ack(&id, "bob", clock.now()).expect("ack");
        wait_min(120).await;
        assert_eq!(
            pages.lock().unwrap().len(),
            pages_before,
            "ack after {ack_after_min} min"
        );
        match engine.get(&id).unwrap().status {
            Status::Acknowledged { by, .. } => assert_eq!(by, "bob"),
            s => panic!("{s:?}"),
        }
        assert_eq!(
            engine.ack(&id, "carol", clock.now()),
            Err(AckError::Already("bob".into()))
        );
        // Still firing: the same group does not start a second escalation.
        let (_, s2, _, _) = start(POLICY, "2026-11-03T09:00:00Z");
        let again = engine.firing(
            Start {
                pager: Arc::new(Capture(pages.clone(), clock.clone())),
                ..s2
            },
            data(),
        );
        assert_eq!(again, id);
        wait_min(60).await;
        assert_eq!(pages.lock().unwrap().len(), pages_before);
    }
}

#[tokio::test(start_paused = true)]
async fn resolution_stops_it() {
    let (engine, s, pages, clock) = start(POLICY, "2026-11-03T09:00:00Z");
    let d = data();
    let id = engine.firing(s, d.clone());
    wait_min(5).await;
    engine.resolved("pager", &d.group_key, clock.now());
    wait_min(120).await;
    assert_eq!(pages.lock().unwrap().len(), 1);
    assert!(matches!(
        engine.get(&id).unwrap().status,
        Status::Resolved { .. }
    ));
    assert_eq!(engine.ack(&id, "bob", clock.now()), Err(AckError::Resolved));
}

#[tokio::test(start_paused = true)]
async fn hand_off_and_override_met_during_an_escalation() {
    let yaml = "  schedules:
  - name: primary
    time_zone: Europe/Paris
    layers:
    - {members: [alice, bob], start: 2026-11-02T09:00, rotation: 1d}
    overrides:
    - {member: dave, start: 2026-11-03T09:20, end: 2026-11-03T10:00}
  escalation_policies:
  - name: db
    repeat: 3
    steps:
    - {notify: [{schedule: primary}], via: sms, wait: 10m}
";
    // Monday 2 Nov 08:55 CET is alice's (Monday 09:00 → Tuesday 09:00 is alice's shift: the
    // first shift started Monday 09:00); 08:55 Tuesday is still alice, 09:05 is bob.
    let (engine, s, pages, _) = start(yaml, "2026-11-03T07:55:00Z");
    engine.firing(s, data());
    wait_min(40).await;
    let names: Vec<String> = who_when(&pages).into_iter().map(|(w, _)| w).collect();
    // 08:55 alice, 09:05 bob (hand-off at 09:00), 09:15 bob, 09:25 dave (override).
    assert_eq!(names, ["alice", "bob", "bob", "dave"]);
}

#[tokio::test(start_paused = true)]
async fn escalation_through_a_dst_night() {
    // 25 Oct 2026 in Paris: 03:00 CEST → 02:00 CET. Daily hand-off at 02:30 local.
    let yaml = "  schedules:
  - name: primary
    time_zone: Europe/Paris
    layers:
    - {members: [alice, bob], start: 2026-10-20T02:30, rotation: 1d}
  escalation_policies:
  - name: db
    repeat: 5
    steps:
    - {notify: [{schedule: primary}], via: sms, wait: 30m}
";
    // 02:00 CEST (00:00Z), the 25th: alice (the 24th's shift); hand-off at the first 02:30
    // (00:30Z) to bob, who keeps the repeated hour and the second 02:30 (01:30Z).
    let (engine, s, pages, _) = start(yaml, "2026-10-25T00:00:00Z");
    engine.firing(s, data());
    wait_min(100).await;
    let names: Vec<String> = who_when(&pages).into_iter().map(|(w, _)| w).collect();
    assert_eq!(names, ["alice", "bob", "bob", "bob"]);
}
