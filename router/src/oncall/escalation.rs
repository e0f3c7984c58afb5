//! Escalations: when a group reaches a receiver with `escalation: <policy>`, its steps page
//! their targets (a schedule's on-call person is looked up when the step runs, so a hand-off
//! in the middle of an escalation pages the new person), wait, and move on; after the last
//! step the policy repeats `repeat` times. Acknowledging (API, UI, signed link) stops it, and
//! so does the group's resolution. Every page, ack and stop is kept in its timeline.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Contact, OnCall, Policy};
use crate::dispatch::Clock;
use crate::notify::{BoxFuture, Data};

/// Sends one page: `data` to `contact` through the integrations of receiver `via`.
pub trait Pager: Send + Sync {
    fn page<'a>(
        &'a self,
        via: &'a str,
        contact: &'a Contact,
        data: &'a Data,
        ack_url: &'a str,
    ) -> BoxFuture<'a, bool>;
}

#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    /// At `step` of `round`; the next step (if no ack) at `next_at` (Unix ns).
    Active {
        step: usize,
        round: u32,
        next_at: i64,
    },
    Acknowledged {
        by: String,
        at: i64,
    },
    Resolved {
        at: i64,
    },
    /// Every step and repeat ran without an acknowledgement.
    Exhausted {
        at: i64,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub at: i64,
    pub what: String,
}

/// One escalation as the API and UI show it.
#[derive(Debug, Clone)]
pub struct View {
    pub id: String,
    pub receiver: String,
    pub group_key: String,
    pub policy: String,
    pub summary: String,
    pub started: i64,
    pub status: Status,
    pub events: Vec<Event>,
}

struct Escalation {
    view: Mutex<View>,
    data: Mutex<Data>,
    cancel: CancellationToken,
}

/// All escalations, by id; finished ones are kept a day for the timeline.
#[derive(Default)]
pub struct Engine {
    all: Mutex<BTreeMap<String, Arc<Escalation>>>,
}

const KEEP_NS: i64 = 86_400 * 1_000_000_000;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Everything `firing` needs to run an escalation.
pub struct Start {
    pub oncall: Arc<OnCall>,
    pub policy: Arc<Policy>,
    pub receiver: String,
    pub pager: Arc<dyn Pager>,
    pub clock: Clock,
    pub external_url: String,
}

impl Engine {
    fn id(receiver: &str, group_key: &str) -> String {
        crate::notify::http::short_hash(&[receiver, group_key])
    }

    /// The group fires at an escalating receiver: start its escalation unless one is running,
    /// acknowledged or exhausted (then only its data is refreshed: an unacknowledged page is
    /// not restarted at every flush). Finished ones are forgotten after a day, so a group
    /// still firing then starts a new escalation. Returns the escalation's id.
    pub fn firing(self: &Arc<Self>, s: Start, data: Data) -> String {
        let id = Self::id(&s.receiver, &data.group_key);
        let now = s.clock.now();
        {
            let all = lock(&self.all);
            if let Some(e) = all.get(&id) {
                let status = lock(&e.view).status.clone();
                if matches!(
                    status,
                    Status::Active { .. } | Status::Acknowledged { .. } | Status::Exhausted { .. }
                ) {
                    *lock(&e.data) = data;
                    return id;
                }
            }
        }
        let summary = summary_of(&data);
        let e = Arc::new(Escalation {
            view: Mutex::new(View {
                id: id.clone(),
                receiver: s.receiver.clone(),
                group_key: data.group_key.clone(),
                policy: s.policy.name.clone(),
                summary,
                started: now,
                status: Status::Active {
                    step: 0,
                    round: 0,
                    next_at: now,
                },
                events: vec![Event {
                    at: now,
                    what: format!("started (policy {})", s.policy.name),
                }],
            }),
            data: Mutex::new(data),
            cancel: CancellationToken::new(),
        });
        lock(&self.all).insert(id.clone(), e.clone());
        tokio::spawn(run(e, s));
        id
    }

    /// The group resolved (or left the receiver): stop its escalation.
    pub fn resolved(&self, receiver: &str, group_key: &str, now: i64) {
        let id = Self::id(receiver, group_key);
        if let Some(e) = lock(&self.all).get(&id) {
            let mut v = lock(&e.view);
            if matches!(
                v.status,
                Status::Active { .. } | Status::Acknowledged { .. }
            ) {
                v.status = Status::Resolved { at: now };
                v.events.push(Event {
                    at: now,
                    what: "resolved".into(),
                });
                e.cancel.cancel();
            }
        }
    }

    /// Stops the escalation `id` on behalf of `by`.
    pub fn ack(&self, id: &str, by: &str, now: i64) -> Result<(), AckError> {
        let all = lock(&self.all);
        let e = all.get(id).ok_or(AckError::Unknown)?;
        let mut v = lock(&e.view);
        match &v.status {
            Status::Active { .. } | Status::Exhausted { .. } => {
                v.status = Status::Acknowledged {
                    by: by.to_string(),
                    at: now,
                };
                v.events.push(Event {
                    at: now,
                    what: format!("acknowledged by {by}"),
                });
                e.cancel.cancel();
                Ok(())
            }
            Status::Acknowledged { by, .. } => Err(AckError::Already(by.clone())),
            Status::Resolved { .. } => Err(AckError::Resolved),
        }
    }

    pub fn list(&self) -> Vec<View> {
        lock(&self.all)
            .values()
            .map(|e| lock(&e.view).clone())
            .collect()
    }

    pub fn get(&self, id: &str) -> Option<View> {
        lock(&self.all).get(id).map(|e| lock(&e.view).clone())
    }

    /// Drops finished escalations older than a day.
    pub fn gc(&self, now: i64) {
        lock(&self.all).retain(|_, e| {
            let v = lock(&e.view);
            match v.status {
                Status::Active { .. } => true,
                Status::Acknowledged { at, .. }
                | Status::Resolved { at }
                | Status::Exhausted { at } => now - at < KEEP_NS,
            }
        });
    }
}

#[derive(Debug, PartialEq)]
pub enum AckError {
    Unknown,
    Already(String),
    Resolved,
}

impl std::fmt::Display for AckError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AckError::Unknown => f.write_str("no such escalation"),
            AckError::Already(by) => write!(f, "already acknowledged by {by}"),
            AckError::Resolved => f.write_str("the alert group has resolved"),
        }
    }
}

fn summary_of(d: &Data) -> String {
    let names: Vec<&str> = d.group_labels.values().map(String::as_str).collect();
    format!("{} ({} alerts)", names.join(" "), d.alerts.len())
}

async fn run(e: Arc<Escalation>, s: Start) {
    let mut round = 0;
    loop {
        for (i, step) in s.policy.steps.iter().enumerate() {
            let now = s.clock.now();
            {
                // Checked under the view's lock, which `ack` holds while it cancels.
                let mut v = lock(&e.view);
                if e.cancel.is_cancelled() {
                    return;
                }
                v.status = Status::Active {
                    step: i,
                    round,
                    next_at: now + step.wait_ms * 1_000_000,
                };
            }
            let at = jiff::Timestamp::from_nanosecond(i128::from(now)).unwrap_or_default();
            let id = lock(&e.view).id.clone();
            let ack_url = format!(
                "{}/oncall/ack?t={}",
                s.external_url.trim_end_matches('/'),
                s.oncall.links.sign(&id, now / 1_000_000)
            );
            for t in &step.targets {
                let Some(contact) = s.oncall.resolve(t, at) else {
                    lock(&e.view).events.push(Event {
                        at: now,
                        what: format!("step {}: nobody on call for {t:?}", i + 1),
                    });
                    continue;
                };
                let data = lock(&e.data).clone();
                let ok = s.pager.page(&step.via, &contact, &data, &ack_url).await;
                if e.cancel.is_cancelled() {
                    return;
                }
                lock(&e.view).events.push(Event {
                    at: s.clock.now(),
                    what: format!(
                        "step {}: paged {} via {}{}",
                        i + 1,
                        contact.name,
                        step.via,
                        if ok { "" } else { " (delivery failed)" }
                    ),
                });
            }
            tokio::select! {
                _ = e.cancel.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(step.wait_ms as u64)) => {}
            }
        }
        if round >= s.policy.repeat {
            let now = s.clock.now();
            let mut v = lock(&e.view);
            if matches!(v.status, Status::Active { .. }) {
                v.status = Status::Exhausted { at: now };
                v.events.push(Event {
                    at: now,
                    what: "every step ran without an acknowledgement".into(),
                });
            }
            return;
        }
        round += 1;
    }
}

#[cfg(test)]
mod tests;
