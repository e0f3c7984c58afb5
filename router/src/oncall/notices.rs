//! Notices on cron expressions: a hand-off notice says who is on call in a schedule now and who
//! is next; a digest lists what is firing and who is on call. Each is a notification through a
//! receiver's integrations, with Alertmanager's data model (status `notice`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::{Notice, NoticeKind, OnCall};
use crate::dispatch::Clock;
use crate::notify::{BoxFuture, Data, DataAlert};

/// What notices need from the router: send to a receiver, and the firing groups.
pub trait Announcer: Send + Sync {
    fn announce<'a>(&'a self, receiver: &'a str, data: Data) -> BoxFuture<'a, bool>;
    /// `(group labels, firing alerts)` of every group with firing alerts.
    fn firing(&self) -> Vec<(String, usize)>;
    fn external_url(&self) -> String;
}

/// Runs one notice until the task is aborted (on reload).
pub async fn run(notice: Notice, oncall: Arc<OnCall>, clock: Clock, to: Arc<dyn Announcer>) {
    loop {
        let now = clock.now();
        let Ok(at) = jiff::Timestamp::from_nanosecond(i128::from(now)) else {
            return;
        };
        let Some(next) = notice.cron.next(at, &notice.tz) else {
            tracing::warn!(receiver = notice.receiver, "notice cron never fires again");
            return;
        };
        let wait_ns = next.as_nanosecond() - i128::from(now);
        tokio::time::sleep(Duration::from_nanos(wait_ns.max(0) as u64)).await;
        let data = match notice.kind {
            NoticeKind::Handoff => handoff(&notice, &oncall, next, &to.external_url()),
            NoticeKind::Digest => digest(&oncall, next, &to.firing(), &to.external_url()),
        };
        if !to.announce(&notice.receiver, data).await {
            tracing::warn!(receiver = notice.receiver, "notice not delivered");
        }
    }
}

fn when(t: jiff::Timestamp, tz: &jiff::tz::TimeZone) -> String {
    t.to_zoned(tz.clone())
        .strftime("%a %d %b %H:%M %Z")
        .to_string()
}

/// The notice as one pseudo-alert, so every integration's templates render it.
fn notice_data(
    name: &str,
    labels: &[(&str, &str)],
    summary: String,
    description: String,
    at: jiff::Timestamp,
    external_url: &str,
) -> Data {
    let mut l: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    l.insert("alertname".into(), name.into());
    let ns = at.as_nanosecond() as i64;
    Data {
        receiver: String::new(),
        status: "notice",
        alerts: vec![DataAlert {
            status: "notice",
            labels: l.clone(),
            annotations: [
                ("summary".to_string(), summary),
                ("description".to_string(), description),
            ]
            .into(),
            starts_at: crate::provider::format_time(ns),
            ends_at: crate::provider::format_time(0),
            generator_url: String::new(),
            fingerprint: crate::provider::fingerprint_hex(crate::provider::fingerprint(
                l.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            )),
            starts_ns: ns,
            ends_ns: 0,
        }],
        group_labels: l.clone(),
        common_labels: l,
        common_annotations: BTreeMap::new(),
        external_url: external_url.to_string(),
        group_key: format!("vigie/notice/{name}/{ns}"),
    }
}

pub fn handoff(n: &Notice, oc: &OnCall, at: jiff::Timestamp, external_url: &str) -> Data {
    let name = n.schedule.clone().unwrap_or_default();
    let (summary, description) = match oc.schedules.get(&name) {
        Some(s) => {
            let now = s
                .who(at)
                .map(|w| w.member)
                .unwrap_or_else(|| "nobody".into());
            let next = s.next_change(at, jiff::SignedDuration::from_hours(24 * 62));
            let desc = match next {
                Some((t, w)) => format!(
                    "Until {}, then {}.",
                    when(t, &s.tz),
                    w.map(|w| w.member).unwrap_or_else(|| "nobody".into())
                ),
                None => "No change in the next two months.".into(),
            };
            (format!("On call for {name}: {now}"), desc)
        }
        None => (format!("Schedule {name} is not defined"), String::new()),
    };
    notice_data(
        "OnCallHandoff",
        &[("schedule", &name)],
        summary,
        description,
        at,
        external_url,
    )
}

pub fn digest(
    oc: &OnCall,
    at: jiff::Timestamp,
    firing: &[(String, usize)],
    external_url: &str,
) -> Data {
    let total: usize = firing.iter().map(|(_, n)| n).sum();
    let mut lines: Vec<String> = firing.iter().map(|(g, n)| format!("{g}: {n}")).collect();
    lines.sort();
    let who: Vec<String> = oc
        .schedules
        .values()
        .map(|s| {
            format!(
                "{}: {}",
                s.name,
                s.who(at)
                    .map(|w| w.member)
                    .unwrap_or_else(|| "nobody".into())
            )
        })
        .collect();
    let summary = format!("{total} alerts firing in {} groups", firing.len());
    let description = format!("{}\nOn call: {}", lines.join("\n"), who.join(", "));
    notice_data("OnCallDigest", &[], summary, description, at, external_url)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::oncall::schedule::tests::oncall;

    type Said = Arc<Mutex<Vec<(i64, String, Data)>>>;

    struct Capture(Said, Clock);

    impl Announcer for Capture {
        fn announce<'a>(&'a self, receiver: &'a str, data: Data) -> BoxFuture<'a, bool> {
            self.0
                .lock()
                .unwrap()
                .push((self.1.now(), receiver.to_string(), data));
            Box::pin(async { true })
        }
        fn firing(&self) -> Vec<(String, usize)> {
            vec![("DiskFull".into(), 3), ("TargetDown".into(), 1)]
        }
        fn external_url(&self) -> String {
            "http://router:9093".into()
        }
    }

    fn ns(s: &str) -> i64 {
        s.parse::<jiff::Timestamp>().unwrap().as_nanosecond() as i64
    }

    #[tokio::test(start_paused = true)]
    async fn handoff_and_digest_on_their_cron() {
        let oc = oncall(
            "  schedules:
  - name: primary
    time_zone: Europe/Paris
    layers: [{members: [alice, bob], start: 2026-11-02T09:00, rotation: 1w}]
  notices:
  - {kind: handoff, schedule: primary, cron: '0 0 9 * * MON', time_zone: Europe/Paris, receiver: sms}
  - {kind: digest, cron: '0 0 8 * * *', time_zone: Europe/Paris, receiver: sms}
",
        );
        // Sunday 8 Nov 2026, noon UTC.
        let clock = Clock::following_tokio(ns("2026-11-08T12:00:00Z"));
        let said: Said = Arc::default();
        for n in &oc.notices {
            let to: Arc<dyn Announcer> = Arc::new(Capture(said.clone(), clock.clone()));
            tokio::spawn(run(n.clone(), oc.clone(), clock.clone(), to));
        }
        tokio::time::sleep(std::time::Duration::from_secs(86_400 + 3_600)).await;
        let got = said.lock().unwrap().clone();
        assert_eq!(got.len(), 2, "{got:?}");
        // Monday 08:00 CET = 07:00Z: the digest.
        assert_eq!(got[0].0, ns("2026-11-09T07:00:00Z"));
        let d = &got[0].2;
        assert_eq!(
            d.alerts[0].annotations["summary"],
            "4 alerts firing in 2 groups"
        );
        assert!(d.alerts[0].annotations["description"].contains("On call: primary: alice"));
        // Monday 09:00 CET: bob's week begins.
        assert_eq!(got[1].0, ns("2026-11-09T08:00:00Z"));
        let h = &got[1].2;
        assert_eq!(got[1].1, "sms");
        assert_eq!(h.status, "notice");
        assert_eq!(
            h.alerts[0].annotations["summary"],
            "On call for primary: bob"
        );
        assert_eq!(
            h.alerts[0].annotations["description"],
            "Until Mon 16 Nov 09:00 CET, then alice."
        );
    }
}
