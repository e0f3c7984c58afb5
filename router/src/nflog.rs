//! The notification log: per (group, receiver, integration), which alerts were last notified
//! firing and resolved, and when. It decides whether a flush sends anything, and it is persisted
//! after every send so a restart neither repeats nor forgets a page.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Sorted fingerprints.
    pub firing: Vec<u64>,
    pub resolved: Vec<u64>,
    /// Unix nanoseconds of the notification.
    pub at: i64,
    pub expires_at: i64,
}

/// `groupKey:receiver/integration/index`, Alertmanager's state key.
pub fn key(group_key: &str, receiver: &str, integration: &str, idx: usize) -> String {
    format!("{group_key}:{receiver}/{integration}/{idx}")
}

/// Whether a flush with these sets must notify (Alertmanager's dedup stage): something new
/// fired, everything resolved, something newly resolved (when resolved alerts are sent), or the
/// repeat interval passed.
pub fn needs_update(
    entry: Option<&Entry>,
    firing: &[u64],
    resolved: &[u64],
    send_resolved: bool,
    repeat_ns: i64,
    now: i64,
) -> bool {
    let Some(e) = entry else {
        return !firing.is_empty();
    };
    if !subset(firing, &e.firing) {
        return true;
    }
    if firing.is_empty() {
        return !e.firing.is_empty();
    }
    if send_resolved && !subset(resolved, &e.resolved) {
        return true;
    }
    // Strictly before, measured from when the last send was logged: like Alertmanager, a repeat
    // interval that is a multiple of group_interval repeats one flush later.
    e.at + repeat_ns < now
}

/// Both sorted.
fn subset(small: &[u64], big: &[u64]) -> bool {
    small.iter().all(|x| big.binary_search(x).is_ok())
}

#[derive(Debug, Default)]
pub struct NotificationLog {
    map: HashMap<String, Entry>,
}

impl NotificationLog {
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.map.get(key)
    }

    pub fn log(&mut self, key: String, entry: Entry) {
        self.map.insert(key, entry);
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Drops expired entries; returns their keys.
    pub fn gc(&mut self, now: i64) -> Vec<String> {
        let gone: Vec<String> = self
            .map
            .iter()
            .filter(|(_, e)| e.expires_at <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for k in &gone {
            self.map.remove(k);
        }
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(firing: &[u64], resolved: &[u64], at: i64) -> Entry {
        Entry {
            firing: firing.to_vec(),
            resolved: resolved.to_vec(),
            at,
            expires_at: i64::MAX,
        }
    }

    #[test]
    fn dedup_decisions() {
        // First notification only when something fires.
        assert!(needs_update(None, &[1], &[], true, 100, 0));
        assert!(!needs_update(None, &[], &[1], true, 100, 0));
        let last = e(&[1, 2], &[], 0);
        // Nothing new before the repeat interval; a repeat after it.
        assert!(!needs_update(Some(&last), &[1, 2], &[], true, 100, 50));
        assert!(!needs_update(Some(&last), &[1, 2], &[], true, 100, 100));
        assert!(needs_update(Some(&last), &[1, 2], &[], true, 100, 101));
        // A new firing alert; a fewer-firing set is not news without send_resolved.
        assert!(needs_update(Some(&last), &[1, 3], &[], false, 100, 50));
        assert!(!needs_update(Some(&last), &[1], &[2], false, 100, 50));
        assert!(needs_update(Some(&last), &[1], &[2], true, 100, 50));
        // All resolved: always recorded.
        assert!(needs_update(Some(&last), &[], &[1, 2], false, 100, 50));
        assert!(!needs_update(
            Some(&e(&[], &[1, 2], 0)),
            &[],
            &[1, 2],
            true,
            100,
            50
        ));
    }
}
