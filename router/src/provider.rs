//! Alerts as Alertmanager knows them (labels identify, annotations follow the latest update, a
//! time range decides firing or resolved) and the store of active alerts the API writes to and
//! the dispatcher reads.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Deserialize;

use crate::labelset::{LabelSet, intern};
use crate::matcher::valid_name;

/// Go's zero `time.Time`: the `endsAt` Alertmanager writes for alerts still firing.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub labels: LabelSet,
    pub annotations: LabelSet,
    /// Unix nanoseconds, so times clients send come back with their own precision.
    pub starts_at: i64,
    pub ends_at: i64,
    pub updated_at: i64,
    pub generator_url: Arc<str>,
    /// `endsAt` was not sent: it is `resolve_timeout` after the last update.
    pub timeout: bool,
}

impl Alert {
    pub fn fingerprint(&self) -> u64 {
        fingerprint(self.labels.iter())
    }

    pub fn resolved_at(&self, now: i64) -> bool {
        self.ends_at != 0 && self.ends_at <= now
    }

    /// Merges a re-post of the same alert, as Alertmanager does: the younger update wins, the
    /// earliest start stays, and an explicit end beats a timeout default.
    pub fn merge(&self, o: &Alert, now: i64) -> Alert {
        if o.updated_at < self.updated_at {
            return o.merge(self, now);
        }
        let mut res = o.clone();
        if self.starts_at < o.starts_at {
            res.starts_at = self.starts_at;
        }
        if o.resolved_at(now) {
            if self.resolved_at(now) && self.ends_at > o.ends_at {
                res.ends_at = self.ends_at;
            }
        } else if self.ends_at > o.ends_at && !self.timeout {
            res.ends_at = self.ends_at;
        }
        res
    }
}

/// Prometheus' label-set fingerprint (FNV-1a over sorted name, 0xff, value, 0xff), so the
/// fingerprints in the API and webhooks are those Alertmanager shows.
pub fn fingerprint<'a>(sorted: impl Iterator<Item = (&'a str, &'a str)>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut add = |b: u8| {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    };
    for (k, v) in sorted {
        k.bytes().for_each(&mut add);
        add(0xff);
        v.bytes().for_each(&mut add);
        add(0xff);
    }
    h
}

pub fn fingerprint_hex(fp: u64) -> String {
    format!("{fp:016x}")
}

/// RFC 3339 as Go's `RFC3339Nano` writes it: UTC, fraction only as long as needed.
pub fn format_time(ns: i64) -> String {
    if ns == 0 {
        return ZERO_TIME.to_string();
    }
    match jiff::Timestamp::from_nanosecond(i128::from(ns)) {
        Ok(t) => t.to_string(),
        Err(_) => ZERO_TIME.to_string(),
    }
}

/// RFC 3339 (any offset) to Unix nanoseconds; Go's zero time is 0.
pub fn parse_time(s: &str) -> Option<i64> {
    let t: jiff::Timestamp = s.parse().ok()?;
    if t.as_second() <= -62_135_596_800 {
        return Some(0);
    }
    i64::try_from(t.as_nanosecond()).ok()
}

/// One element of `POST /api/v2/alerts`. Unknown fields are ignored, as Alertmanager's decoder
/// ignores them (some clients send `status`).
#[derive(Debug, Deserialize)]
pub struct Postable {
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(rename = "startsAt", default)]
    pub starts_at: Option<String>,
    #[serde(rename = "endsAt", default)]
    pub ends_at: Option<String>,
    #[serde(rename = "generatorURL", default)]
    pub generator_url: Option<String>,
}

impl Postable {
    /// Validates and completes a posted alert as Alertmanager's API does: a missing start is
    /// now (or the end), a missing end is now + `resolve_timeout`, empty label values dropped.
    pub fn into_alert(self, now: i64, resolve_timeout_ns: i64) -> Result<Alert, String> {
        let time = |s: &Option<String>, field: &str| -> Result<i64, String> {
            match s.as_deref() {
                None | Some("") => Ok(0),
                Some(v) => parse_time(v).ok_or_else(|| format!("{field}: invalid time {v:?}")),
            }
        };
        let mut starts_at = time(&self.starts_at, "startsAt")?;
        let mut ends_at = time(&self.ends_at, "endsAt")?;
        if starts_at == 0 {
            starts_at = if ends_at == 0 { now } else { ends_at };
        }
        let mut timeout = false;
        if ends_at == 0 {
            timeout = true;
            ends_at = now + resolve_timeout_ns;
        }
        let labels: BTreeMap<String, String> = self
            .labels
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .collect();
        if labels.is_empty() {
            return Err("at least one label pair required".into());
        }
        if let Some(k) = labels.keys().find(|k| !valid_name(k)) {
            return Err(format!("invalid label set: invalid name {k:?}"));
        }
        if let Some(k) = self.annotations.keys().find(|k| !valid_name(k)) {
            return Err(format!("invalid annotations: invalid name {k:?}"));
        }
        if ends_at < starts_at {
            return Err("start time must be before end time".into());
        }
        Ok(Alert {
            labels: labels.iter().collect(),
            annotations: self.annotations.iter().collect(),
            starts_at,
            ends_at,
            updated_at: now,
            generator_url: intern(self.generator_url.as_deref().unwrap_or_default()),
            timeout,
        })
    }
}

/// The active alerts by fingerprint.
#[derive(Debug, Default)]
pub struct Alerts {
    map: HashMap<u64, Arc<Alert>>,
}

impl Alerts {
    /// Stores an alert, merged with the one it re-posts when their time ranges overlap.
    pub fn put(&mut self, alert: Alert, now: i64) -> Arc<Alert> {
        let fp = alert.fingerprint();
        let alert = match self.map.get(&fp) {
            Some(old)
                if (alert.ends_at > old.starts_at && alert.ends_at < old.ends_at)
                    || (alert.starts_at > old.starts_at && alert.starts_at < old.ends_at) =>
            {
                old.merge(&alert, now)
            }
            _ => alert,
        };
        let a = Arc::new(alert);
        self.map.insert(fp, a.clone());
        a
    }

    /// Restores a persisted alert as it was.
    pub fn restore(&mut self, alert: Alert) -> Arc<Alert> {
        let a = Arc::new(alert);
        self.map.insert(a.fingerprint(), a.clone());
        a
    }

    pub fn get(&self, fp: u64) -> Option<&Arc<Alert>> {
        self.map.get(&fp)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Alert>> {
        self.map.values()
    }

    /// Drops resolved alerts (Alertmanager's `--alerts.gc-interval` sweep) except those a
    /// group still has to notify; returns their fingerprints.
    pub fn gc(&mut self, now: i64, pending: &std::collections::HashSet<u64>) -> Vec<u64> {
        let gone: Vec<u64> = self
            .map
            .iter()
            .filter(|(fp, a)| a.resolved_at(now) && !pending.contains(fp))
            .map(|(fp, _)| *fp)
            .collect();
        for fp in &gone {
            self.map.remove(fp);
        }
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matcher::tests::ls;

    #[test]
    fn fingerprint_is_prometheus() {
        // Values from Prometheus' model/signature_test.go.
        assert_eq!(fingerprint(std::iter::empty()), 14695981039346656037);
        let l = ls(&[("name", "garland, briggs"), ("fear", "love is not enough")]);
        assert_eq!(
            fingerprint(l.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
            5799056148416392346
        );
    }

    #[test]
    fn times_round_trip_like_go() {
        let t = parse_time("2026-11-24T04:52:44.371Z").expect("valid");
        assert_eq!(format_time(t), "2026-11-24T04:52:44.371Z");
        let t = parse_time("2026-11-24T05:52:44+01:00").expect("valid");
        assert_eq!(format_time(t), "2026-11-24T04:52:44Z");
        assert_eq!(parse_time(ZERO_TIME), Some(0));
        assert_eq!(format_time(0), ZERO_TIME);
    }

    #[test]
    fn validation_and_defaults() {
        let post = |j: &str| -> Result<Alert, String> {
            let p: Postable = serde_json::from_str(j).map_err(|e| e.to_string())?;
            p.into_alert(1_000, 300)
        };
        let a = post(r#"{"labels":{"a":"1","b":""}}"#).expect("valid");
        assert_eq!((a.starts_at, a.ends_at, a.timeout), (1_000, 1_300, true));
        assert_eq!(a.labels.to_map(), ls(&[("a", "1")]));
        assert_eq!(
            post(r#"{"labels":{}}"#).unwrap_err(),
            "at least one label pair required"
        );
        assert!(
            post(r#"{"labels":{"bad-name":"x"}}"#)
                .unwrap_err()
                .contains("invalid name")
        );
        assert_eq!(
            post(r#"{"labels":{"a":"1"},"startsAt":"2026-01-02T00:00:00Z","endsAt":"2026-01-01T00:00:00Z"}"#)
                .unwrap_err(),
            "start time must be before end time"
        );
    }

    #[test]
    fn merge_keeps_earliest_start_and_explicit_end() {
        let base = Alert {
            labels: ls(&[("a", "1")]).into_iter().collect(),
            annotations: LabelSet::default(),
            starts_at: 100,
            ends_at: 1_000,
            updated_at: 10,
            generator_url: intern(""),
            timeout: false,
        };
        let newer = Alert {
            starts_at: 200,
            ends_at: 900,
            updated_at: 20,
            timeout: true,
            ..base.clone()
        };
        let m = base.merge(&newer, 50);
        assert_eq!((m.starts_at, m.ends_at, m.updated_at), (100, 1_000, 20));
        let mut store = Alerts::default();
        store.put(base.clone(), 50);
        let merged = store.put(newer, 50);
        assert_eq!(merged.starts_at, 100);
    }
}
