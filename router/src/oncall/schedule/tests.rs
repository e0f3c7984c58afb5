use std::path::Path;

use jiff::Timestamp;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// The `oncall:` section of a configuration, built.
pub(crate) fn oncall(yaml: &str) -> std::sync::Arc<crate::oncall::OnCall> {
    let text = format!(
        "route:\n  receiver: sms\nreceivers:\n- name: sms\n  webhook_configs: [{{url: 'http://127.0.0.1:1/'}}]\noncall:\n  ack_secret: 0123456789abcdef0123\n  people:\n    alice: {{phone: '+33600000001', email: alice@example.org, chat: '@alice'}}\n    bob: {{phone: '+33600000002'}}\n    carol: {{phone: '+33600000003'}}\n    dave: {{phone: '+33600000004'}}\n{yaml}"
    );
    let cfg = crate::config::Config::parse(Path::new("vigie.yml"), &text)
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    cfg.routing
        .expect("routing")
        .oncall
        .clone()
        .expect("oncall")
}

fn who(oc: &crate::oncall::OnCall, s: &str, at: &str) -> String {
    oc.schedules[s]
        .who(ts(at))
        .map(|w| w.member)
        .unwrap_or_default()
}

const WEEKLY: &str = "  schedules:
  - name: primary
    time_zone: Europe/Paris
    layers:
    - name: weekly
      members: [alice, bob, carol]
      start: 2026-03-23T09:00
      rotation: 1w
";

#[test]
fn weekly_rotation_hands_off_at_local_time_across_dst() {
    let oc = oncall(WEEKLY);
    assert_eq!(
        who(&oc, "primary", "2026-03-23T07:59:00Z"),
        "",
        "before the first shift"
    );
    assert_eq!(
        who(&oc, "primary", "2026-03-23T08:00:00Z"),
        "alice",
        "09:00 CET"
    );
    // Summer time began on 29 March: the hand-off stays at 09:00 local, now 07:00 UTC.
    assert_eq!(who(&oc, "primary", "2026-03-30T06:59:00Z"), "alice");
    assert_eq!(who(&oc, "primary", "2026-03-30T07:00:00Z"), "bob");
    assert_eq!(who(&oc, "primary", "2026-04-06T07:00:00Z"), "carol");
    assert_eq!(
        who(&oc, "primary", "2026-04-13T07:00:00Z"),
        "alice",
        "wraps around"
    );
    let (at, next) = oc.schedules["primary"]
        .next_change(
            ts("2026-03-24T12:00:00Z"),
            jiff::SignedDuration::from_hours(24 * 14),
        )
        .expect("a change");
    assert_eq!(at, ts("2026-03-30T07:00:00Z"));
    assert_eq!(next.map(|w| w.member).as_deref(), Some("bob"));
}

#[test]
fn weeknight_layer_over_a_daytime_layer_and_overrides() {
    let oc = oncall(
        "  schedules:
  - name: primary
    time_zone: Europe/Paris
    layers:
    - name: business
      members: [alice]
      start: 2026-11-02T00:00
      rotation: 1d
    - name: nights
      members: [bob, carol]
      start: 2026-11-02T19:00
      rotation: 1d
      restrictions:
      - {days: [mon, tue, wed, thu, fri], start: '19:00', end: '08:00'}
    overrides:
    - {member: dave, start: 2026-11-05T19:00, end: 2026-11-06T08:00}
",
    );
    // Monday 2 Nov 2026 (CET, UTC+1).
    assert_eq!(
        who(&oc, "primary", "2026-11-02T10:00:00Z"),
        "alice",
        "daytime"
    );
    assert_eq!(
        who(&oc, "primary", "2026-11-02T18:00:00Z"),
        "bob",
        "Monday 19:00"
    );
    assert_eq!(
        who(&oc, "primary", "2026-11-03T06:59:00Z"),
        "bob",
        "until Tuesday 08:00"
    );
    assert_eq!(who(&oc, "primary", "2026-11-03T07:00:00Z"), "alice");
    assert_eq!(
        who(&oc, "primary", "2026-11-03T18:00:00Z"),
        "carol",
        "next night, next member"
    );
    // Thursday night is covered by an override.
    assert_eq!(who(&oc, "primary", "2026-11-05T20:00:00Z"), "dave");
    // Friday night runs into Saturday morning; Saturday night is not a weeknight.
    assert_eq!(
        who(&oc, "primary", "2026-11-07T05:00:00Z"),
        "bob",
        "Friday's night: shift 4"
    );
    assert_eq!(who(&oc, "primary", "2026-11-08T02:00:00Z"), "alice");
}

#[test]
fn daily_hand_off_in_the_night_clocks_go_back() {
    // 25 October 2026, Paris: 03:00 CEST becomes 02:00 CET; 02:30 happens twice.
    let oc = oncall(
        "  schedules:
  - name: nights
    time_zone: Europe/Paris
    layers:
    - members: [alice, bob]
      start: 2026-10-20T02:30
      rotation: 1d
",
    );
    // 20 Oct 02:30 CEST = 00:30Z: alice; each day at 02:30 local the other one.
    assert_eq!(
        who(&oc, "nights", "2026-10-24T00:29:00Z"),
        "bob",
        "the 23rd's shift"
    );
    assert_eq!(who(&oc, "nights", "2026-10-24T00:30:00Z"), "alice");
    // The first 02:30 of the 25th (CEST, 00:30Z) hands off; the repeated hour after it
    // (02:00-03:00 CET, 01:00Z-02:00Z) stays with the new person.
    assert_eq!(who(&oc, "nights", "2026-10-25T00:29:00Z"), "alice");
    assert_eq!(who(&oc, "nights", "2026-10-25T00:30:00Z"), "bob");
    assert_eq!(
        who(&oc, "nights", "2026-10-25T01:15:00Z"),
        "bob",
        "02:15 CET, after the hand-off"
    );
    assert_eq!(who(&oc, "nights", "2026-10-25T01:45:00Z"), "bob");
    // From the 26th the hand-off is at 02:30 CET = 01:30Z.
    assert_eq!(who(&oc, "nights", "2026-10-26T01:29:00Z"), "bob");
    assert_eq!(who(&oc, "nights", "2026-10-26T01:30:00Z"), "alice");
}

#[test]
fn configuration_errors_name_what_is_wrong() {
    let bad = |yaml: &str, want: &str| {
        let text = format!(
            "route:\n  receiver: r\nreceivers:\n- name: r\noncall:\n  people: {{alice: {{}}}}\n{yaml}"
        );
        let e = crate::config::Config::parse(Path::new("vigie.yml"), &text)
            .err()
            .unwrap_or_else(|| panic!("accepted:\n{text}"))
            .to_string();
        assert!(e.contains(want) && e.contains("vigie.yml"), "{e}");
    };
    bad(
        "  schedules:\n  - name: p\n    time_zone: Mars/Olympus\n",
        "Mars/Olympus",
    );
    bad(
        "  schedules:\n  - name: p\n    layers:\n    - {members: [zoe], start: 2026-11-02T09:00, rotation: 1w}\n",
        "member \"zoe\" is not in oncall.people",
    );
    bad(
        "  escalation_policies:\n  - name: e\n    steps:\n    - {notify: [{schedule: nope}], via: r, wait: 5m}\n",
        "schedule \"nope\" is not defined",
    );
    bad(
        "  escalation_policies:\n  - name: e\n    steps:\n    - {notify: [{person: alice}], via: nobody, wait: 5m}\n",
        "receiver \"nobody\" is not defined",
    );
    bad(
        "  notices:\n  - {kind: digest, cron: '* * *', receiver: r}\n",
        "cron",
    );
    bad("  ack_secret: short\n", "at least 16 characters");
    let text = "route:\n  receiver: r\nreceivers:\n- name: r\n  escalation: missing\n";
    let e = crate::config::Config::parse(Path::new("vigie.yml"), text)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("escalation policy \"missing\" is not defined"),
        "{e}"
    );
}
