//! The attempt log: every delivery with each of its tries (what the receiver answered, how
//! long it asked to wait), the last thousand kept in memory for `/api/v1/notifications`. The
//! notification log proper (nflog) records what was delivered, for de-duplication; this one
//! says why something was not, or took long.

use std::collections::VecDeque;
use std::sync::Mutex;

use super::Delivery;

const KEEP: usize = 1000;

#[derive(Debug, Clone)]
pub struct Attempt {
    /// Unix ns when the delivery ended.
    pub at: i64,
    pub receiver: String,
    pub integration: &'static str,
    pub group_key: String,
    /// `sent`, `partial`, `failed` or `held`.
    pub outcome: &'static str,
    pub reason: Option<&'static str>,
    /// Each try's result, in order.
    pub tries: Vec<String>,
    pub seconds: f64,
}

#[derive(Debug, Default)]
pub struct AttemptLog(Mutex<VecDeque<Attempt>>);

impl AttemptLog {
    pub fn record(
        &self,
        at: i64,
        receiver: &str,
        integration: &'static str,
        group_key: &str,
        d: &Delivery,
        seconds: f64,
    ) {
        let outcome = match (&d.failure, d.sent) {
            (None, _) => "sent",
            (Some(_), true) => "partial",
            (Some((super::Reason::Limited, _)), false) => "held",
            (Some(_), false) => "failed",
        };
        let mut q = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if q.len() >= KEEP {
            q.pop_front();
        }
        q.push_back(Attempt {
            at,
            receiver: receiver.to_string(),
            integration,
            group_key: group_key.to_string(),
            outcome,
            reason: d.failure.as_ref().map(|(r, _)| r.as_str()),
            tries: d.tries.clone(),
            seconds,
        });
    }

    /// Newest first.
    pub fn list(&self) -> Vec<Attempt> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .rev()
            .cloned()
            .collect()
    }
}
