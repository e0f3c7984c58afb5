//! Labels and annotations of stored alerts: sorted pairs of interned strings. A label name, a
//! job or a severity is held once however many alerts carry it, which is most of an alert's
//! memory with `BTreeMap<String, String>` (100k alerts: ~1.8 KB each before, see the dispatch
//! benchmark).

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};

use serde::ser::{Serialize, SerializeMap, Serializer};

/// Anything labels can be read from: stored alerts and plain maps (CLI, tests, group labels).
pub trait LabelSource {
    fn label(&self, name: &str) -> Option<&str>;
}

impl LabelSource for BTreeMap<String, String> {
    fn label(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct LabelSet(Box<[(Arc<str>, Arc<str>)]>);

fn interner() -> &'static Mutex<HashSet<Arc<str>>> {
    static I: OnceLock<Mutex<HashSet<Arc<str>>>> = OnceLock::new();
    I.get_or_init(Default::default)
}

/// The shared copy of a string.
pub fn intern(s: &str) -> Arc<str> {
    let mut set = interner().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(a) = set.get(s) {
        return a.clone();
    }
    let a: Arc<str> = Arc::from(s);
    set.insert(a.clone());
    a
}

/// Forgets strings no alert holds any more (run by the dispatcher's maintenance).
pub fn purge_interned() {
    let mut set = interner().lock().unwrap_or_else(|p| p.into_inner());
    set.retain(|a| Arc::strong_count(a) > 1);
    set.shrink_to_fit();
}

impl LabelSet {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| (**k).cmp(name))
            .ok()
            .map(|i| &*self.0[i].1)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (&**k, &**v))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
}

impl LabelSource for LabelSet {
    fn label(&self, name: &str) -> Option<&str> {
        self.get(name)
    }
}

impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for LabelSet {
    /// Sorted by name; a repeated name keeps its last value.
    fn from_iter<I: IntoIterator<Item = (K, V)>>(it: I) -> Self {
        let map: BTreeMap<Arc<str>, Arc<str>> = it
            .into_iter()
            .map(|(k, v)| (intern(k.as_ref()), intern(v.as_ref())))
            .collect();
        LabelSet(map.into_iter().collect())
    }
}

impl Serialize for LabelSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.iter() {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_interned_and_searchable() {
        let a: LabelSet = [("job", "node"), ("alertname", "A")].into_iter().collect();
        let b: LabelSet = [("job", "node")].into_iter().collect();
        assert_eq!(
            a.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            ["alertname", "job"]
        );
        assert_eq!((a.get("job"), a.get("nope")), (Some("node"), None));
        assert!(Arc::ptr_eq(&a.0[1].1, &b.0[0].1), "one copy of \"node\"");
        assert_eq!(
            serde_json::to_string(&a).ok().as_deref(),
            Some(r#"{"alertname":"A","job":"node"}"#)
        );
    }
}
