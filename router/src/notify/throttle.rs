//! Delivery control. A token bucket per destination (a chat, a channel, a phone number) queues
//! notifications so a burst never reaches an API faster than it accepts (Slack, Telegram and
//! Google Chat answer bursts with 429s, and Slack may disable the app). A receiver's `limit`
//! caps notifications per window; the first one over it becomes a single summary, the rest are
//! held back and counted, so a storm costs one SMS, not a hundred.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use tokio::time::Instant;

use super::{Data, DataAlert};

/// How fast a destination accepts messages.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: f64,
}

impl Rate {
    pub const fn new(per_second: f64, burst: f64) -> Rate {
        Rate { per_second, burst }
    }
}

/// A token bucket; waiters queue on its lock in arrival order.
#[derive(Debug)]
pub struct Bucket {
    rate: Rate,
    state: tokio::sync::Mutex<(f64, Option<Instant>)>,
}

impl Bucket {
    pub fn new(rate: Rate) -> Bucket {
        Bucket {
            rate,
            state: tokio::sync::Mutex::new((rate.burst, None)),
        }
    }

    /// Waits for a token.
    pub async fn take(&self) {
        let mut s = self.state.lock().await;
        loop {
            let now = Instant::now();
            if let Some(last) = s.1 {
                let add = now.duration_since(last).as_secs_f64() * self.rate.per_second;
                s.0 = (s.0 + add).min(self.rate.burst);
            }
            s.1 = Some(now);
            if s.0 >= 1.0 {
                s.0 -= 1.0;
                return;
            }
            let wait = (1.0 - s.0) / self.rate.per_second;
            tokio::time::sleep(Duration::from_secs_f64(wait)).await;
        }
    }
}

/// One bucket per destination key, shared by every integration that sends there.
#[derive(Debug, Default)]
pub struct Buckets(HashMap<String, Arc<Bucket>>);

impl Buckets {
    pub fn get(&mut self, key: &str, rate: Rate) -> Arc<Bucket> {
        self.0
            .entry(key.to_string())
            .or_insert_with(|| Arc::new(Bucket::new(rate)))
            .clone()
    }
}

/// `limit: {max: 10, per: 1h}` on a receiver.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimit {
    pub max: u32,
    pub per: crate::config::Dur,
}

/// What the limit allows for one notification.
#[derive(Debug, Clone)]
pub enum Verdict {
    Send,
    /// Over the limit for the first time in this window: send this summary instead.
    Summary(Box<Data>),
    /// Over the limit, summary already sent: held back.
    Hold,
}

#[derive(Debug, Default)]
struct Window {
    sent: VecDeque<i64>,
    held: u64,
    summarized: bool,
}

/// Per receiver, counted per integration (an SMS limit does not throttle the chat).
#[derive(Debug)]
pub struct Limit {
    pub max: u32,
    pub per_ns: i64,
    windows: Mutex<BTreeMap<(&'static str, usize), Window>>,
}

impl Limit {
    pub fn new(max: u32, per_ns: i64) -> Limit {
        Limit {
            max,
            per_ns,
            windows: Mutex::default(),
        }
    }

    pub fn check(&self, integration: &'static str, idx: usize, data: &Data, now: i64) -> Verdict {
        let mut all = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let w = all.entry((integration, idx)).or_default();
        while w.sent.front().is_some_and(|t| *t <= now - self.per_ns) {
            w.sent.pop_front();
        }
        if w.sent.len() < self.max as usize {
            w.sent.push_back(now);
            if w.sent.len() == 1 {
                w.summarized = false;
                w.held = 0;
            }
            return Verdict::Send;
        }
        w.held += 1;
        if w.summarized {
            return Verdict::Hold;
        }
        w.summarized = true;
        Verdict::Summary(Box::new(self.summary(data, now)))
    }

    fn summary(&self, d: &Data, now: i64) -> Data {
        let per = crate::config::format_duration(self.per_ns / 1_000_000);
        let labels: BTreeMap<String, String> = [
            ("alertname", "NotificationLimit"),
            ("receiver", d.receiver.as_str()),
            ("severity", "warning"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let annotations: BTreeMap<String, String> = [
            (
                "summary".to_string(),
                format!(
                    "Limit of {} notifications per {per} reached for {}; more are held back",
                    self.max, d.receiver
                ),
            ),
            (
                "description".to_string(),
                format!(
                    "Held back first: {}. See the router for every firing alert.",
                    d.group_labels
                        .values()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
            ),
        ]
        .into();
        Data {
            receiver: d.receiver.clone(),
            status: "firing",
            alerts: vec![DataAlert {
                status: "firing",
                labels: labels.clone(),
                annotations,
                starts_at: crate::provider::format_time(now),
                ends_at: crate::provider::format_time(0),
                generator_url: String::new(),
                fingerprint: crate::provider::fingerprint_hex(crate::provider::fingerprint(
                    labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                )),
                starts_ns: now,
                ends_ns: 0,
            }],
            group_labels: [("alertname".to_string(), "NotificationLimit".to_string())].into(),
            common_labels: labels,
            common_annotations: BTreeMap::new(),
            external_url: d.external_url.clone(),
            group_key: format!("vigie/limit/{}", d.receiver),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn bucket_spaces_a_burst() {
        let b = Bucket::new(Rate::new(1.0, 2.0));
        let t0 = Instant::now();
        for _ in 0..5 {
            b.take().await;
        }
        // Two from the burst, then one a second.
        assert_eq!(t0.elapsed(), Duration::from_secs(3));
    }

    #[test]
    fn limit_sends_one_summary_then_holds() {
        let l = Limit::new(2, 3_600_000_000_000);
        let d = crate::notify::template::tests_data();
        let h = 3_600_000_000_000;
        assert!(matches!(l.check("twilio", 0, &d, 0), Verdict::Send));
        assert!(matches!(l.check("twilio", 0, &d, 1), Verdict::Send));
        match l.check("twilio", 0, &d, 2) {
            Verdict::Summary(s) => {
                assert_eq!(s.group_labels["alertname"], "NotificationLimit");
                assert!(s.alerts[0].annotations["summary"].contains("2 notifications per 1h"));
            }
            v => panic!("{v:?}"),
        }
        assert!(matches!(l.check("twilio", 0, &d, 3), Verdict::Hold));
        assert!(
            matches!(l.check("slack", 0, &d, 3), Verdict::Send),
            "counted per integration"
        );
        // The window slides: once the first sends expire, sending (and one summary) resume.
        assert!(matches!(l.check("twilio", 0, &d, h + 1), Verdict::Send));
        assert!(matches!(l.check("twilio", 0, &d, h + 2), Verdict::Send));
        assert!(matches!(
            l.check("twilio", 0, &d, h + 3),
            Verdict::Summary(_)
        ));
    }
}
