//! Silences: matchers plus a time window, created and expired by API or `amtool`. Updates keep
//! the id only where Alertmanager keeps it (same matchers, allowed time change); any other
//! change expires the old silence and creates a new one, so history is never rewritten.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::labelset::LabelSource;

use crate::matcher::{Matcher, Op};

/// A matcher as the v2 API carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiMatcher {
    pub name: String,
    pub value: String,
    #[serde(rename = "isRegex")]
    pub is_regex: bool,
    #[serde(rename = "isEqual", default = "yes")]
    pub is_equal: bool,
}

fn yes() -> bool {
    true
}

impl ApiMatcher {
    pub fn op(&self) -> Op {
        match (self.is_regex, self.is_equal) {
            (false, true) => Op::Equal,
            (false, false) => Op::NotEqual,
            (true, true) => Op::Regex,
            (true, false) => Op::NotRegex,
        }
    }

    pub fn to_matcher(&self) -> Result<Matcher, String> {
        let op = self.op();
        if !crate::matcher::valid_name(&self.name) {
            return Err(format!("invalid label name {:?}", self.name));
        }
        Matcher::new(&self.name, op, &self.value).map_err(|e| e.to_string())
    }

    pub fn from_matcher(m: &Matcher) -> ApiMatcher {
        ApiMatcher {
            name: m.name.clone(),
            value: m.value.clone(),
            is_regex: m.is_regex(),
            is_equal: m.is_equal(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Pending,
    Active,
    Expired,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Active => "active",
            State::Expired => "expired",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Silence {
    pub id: String,
    pub matchers: Vec<ApiMatcher>,
    /// Unix nanoseconds.
    pub starts_at: i64,
    pub ends_at: i64,
    pub updated_at: i64,
    pub created_by: String,
    pub comment: String,
    #[serde(skip)]
    compiled: Vec<Matcher>,
}

impl Silence {
    pub fn new(
        matchers: Vec<ApiMatcher>,
        starts_at: i64,
        ends_at: i64,
        created_by: String,
        comment: String,
    ) -> Result<Silence, String> {
        let mut s = Silence {
            id: String::new(),
            matchers,
            starts_at,
            ends_at,
            updated_at: 0,
            created_by,
            comment,
            compiled: Vec::new(),
        };
        s.compile()?;
        Ok(s)
    }

    /// Builds the matchers and checks the silence silences something specific.
    pub fn compile(&mut self) -> Result<(), String> {
        if self.matchers.is_empty() {
            return Err("at least one matcher required".into());
        }
        self.compiled = self
            .matchers
            .iter()
            .map(ApiMatcher::to_matcher)
            .collect::<Result<_, _>>()?;
        if self.compiled.iter().all(|m| m.matches_value("")) {
            return Err("at least one matcher must not match the empty string".into());
        }
        if self.ends_at < self.starts_at {
            return Err("end time must not be before start time".into());
        }
        Ok(())
    }

    pub fn state(&self, now: i64) -> State {
        if now < self.starts_at {
            State::Pending
        } else if now > self.ends_at {
            State::Expired
        } else {
            State::Active
        }
    }

    pub fn matches<L: LabelSource + ?Sized>(&self, labels: &L) -> bool {
        self.compiled.iter().all(|m| m.matches(labels))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SilenceError {
    #[error("silence not found")]
    NotFound,
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug, Default)]
pub struct Silences {
    map: HashMap<String, Silence>,
}

impl Silences {
    /// Creates or updates; returns the silence stored under its (possibly new) id and, when an
    /// update replaced a silence, the expired old one — both to be persisted.
    pub fn set(
        &mut self,
        mut s: Silence,
        now: i64,
    ) -> Result<(Silence, Option<Silence>), SilenceError> {
        s.compile().map_err(SilenceError::Invalid)?;
        let mut expired = None;
        if !s.id.is_empty() {
            let prev = self.map.get(&s.id).ok_or(SilenceError::NotFound)?.clone();
            if can_update(&prev, &s, now) {
                s.updated_at = now;
                self.map.insert(s.id.clone(), s.clone());
                return Ok((s, None));
            }
            if prev.state(now) != State::Expired {
                expired = self.expire(&prev.id, now).ok().flatten();
            }
        }
        s.id = uuid::Uuid::new_v4().to_string();
        s.starts_at = s.starts_at.max(now);
        s.updated_at = now;
        self.map.insert(s.id.clone(), s.clone());
        Ok((s, expired))
    }

    /// Ends a silence now; `None` when it had already ended.
    pub fn expire(&mut self, id: &str, now: i64) -> Result<Option<Silence>, SilenceError> {
        let s = self.map.get_mut(id).ok_or(SilenceError::NotFound)?;
        match s.state(now) {
            State::Expired => return Ok(None),
            State::Active => s.ends_at = now,
            State::Pending => {
                s.starts_at = now;
                s.ends_at = now;
            }
        }
        s.updated_at = now;
        Ok(Some(s.clone()))
    }

    /// Takes back a persisted silence; one whose matchers no longer build is dropped, since
    /// without them it would match every alert.
    pub fn restore(&mut self, mut s: Silence) {
        match s.compile() {
            Ok(()) => {
                self.map.insert(s.id.clone(), s);
            }
            Err(e) => tracing::warn!(id = %s.id, error = %e, "stored silence dropped"),
        }
    }

    pub fn get(&self, id: &str) -> Option<&Silence> {
        self.map.get(id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Silence> {
        self.map.values()
    }

    /// Ids of the active silences that mute these labels, sorted.
    pub fn mutes<L: LabelSource + ?Sized>(&self, labels: &L, now: i64) -> Vec<String> {
        let mut ids: Vec<String> = self
            .map
            .values()
            .filter(|s| s.state(now) == State::Active && s.matches(labels))
            .map(|s| s.id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// Forgets silences that ended more than `retention` ago; returns their ids.
    pub fn gc(&mut self, now: i64, retention: i64) -> Vec<String> {
        let gone: Vec<String> = self
            .map
            .values()
            .filter(|s| s.ends_at + retention < now)
            .map(|s| s.id.clone())
            .collect();
        for id in &gone {
            self.map.remove(id);
        }
        gone
    }
}

fn can_update(a: &Silence, b: &Silence, now: i64) -> bool {
    if a.matchers != b.matchers {
        return false;
    }
    match a.state(now) {
        State::Active => b.starts_at == a.starts_at && b.ends_at >= now,
        State::Pending => b.starts_at >= now,
        State::Expired => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str, value: &str, regex: bool) -> ApiMatcher {
        ApiMatcher {
            name: name.into(),
            value: value.into(),
            is_regex: regex,
            is_equal: true,
        }
    }

    fn sil(ms: Vec<ApiMatcher>, s: i64, e: i64) -> Silence {
        Silence::new(ms, s, e, "me".into(), "why".into()).expect("valid")
    }

    #[test]
    fn validation() {
        assert!(Silence::new(vec![], 0, 10, String::new(), String::new()).is_err());
        assert!(
            Silence::new(
                vec![m("a", ".*", true)],
                0,
                10,
                String::new(),
                String::new()
            )
            .is_err()
        );
        assert!(
            Silence::new(
                vec![m("a", "x", false)],
                10,
                0,
                String::new(),
                String::new()
            )
            .is_err()
        );
    }

    #[test]
    fn update_in_place_or_replace() {
        let mut ss = Silences::default();
        let (a, _) = ss
            .set(sil(vec![m("job", "node", false)], 0, 1_000), 100)
            .expect("set");
        assert_eq!(a.starts_at, 100, "a start in the past is clamped to now");
        // Extending an active silence keeps its id.
        let mut ext = a.clone();
        ext.ends_at = 2_000;
        let (b, old) = ss.set(ext, 200).expect("update");
        assert_eq!((b.id.as_str(), old.is_none()), (a.id.as_str(), true));
        // Changing matchers expires it and creates a new one.
        let mut other = b.clone();
        other.matchers = vec![m("job", "db", false)];
        let (c, old) = ss.set(other, 300).expect("replace");
        assert_ne!(c.id, a.id);
        assert_eq!(old.map(|o| o.ends_at), Some(300));
        assert_eq!(ss.get(&a.id).map(|s| s.state(301)), Some(State::Expired));
        assert_eq!(
            ss.set(sil(vec![m("a", "b", false)], 0, 1), 0).map(|_| ()),
            Ok(())
        );
        let mut unknown = sil(vec![m("a", "b", false)], 0, 1_000);
        unknown.id = "nope".into();
        assert_eq!(ss.set(unknown, 0).unwrap_err(), SilenceError::NotFound);
    }

    #[test]
    fn a_stored_silence_that_no_longer_builds_is_dropped_not_matching_everything() {
        let mut ss = Silences::default();
        let mut s = sil(vec![m("a", "b", false)], 0, 1_000);
        s.id = "broken".into();
        s.matchers = vec![m("a", "(", true)];
        ss.restore(s);
        assert!(ss.get("broken").is_none());
        let labels = crate::matcher::tests::ls(&[("x", "1")]);
        assert!(ss.mutes(&labels, 10).is_empty());
    }

    #[test]
    fn expire_pending_and_twice() {
        let mut ss = Silences::default();
        let (a, _) = ss
            .set(sil(vec![m("x", "1", false)], 500, 1_000), 100)
            .expect("set");
        assert_eq!(a.state(100), State::Pending);
        let e = ss.expire(&a.id, 200).expect("expire").expect("changed");
        assert_eq!((e.starts_at, e.ends_at), (200, 200));
        assert!(matches!(ss.expire(&a.id, 300), Ok(None)));
        let labels: std::collections::BTreeMap<String, String> =
            [("x".to_string(), "1".to_string())].into_iter().collect();
        assert!(ss.mutes(&labels, 300).is_empty());
    }
}
