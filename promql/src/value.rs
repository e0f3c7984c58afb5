//! The values PromQL computes with: label sets, samples, series and the four result types.

use std::fmt;
use std::sync::Arc;

/// The staleness marker Prometheus writes when a series disappears: a NaN with a fixed bit
/// pattern, told apart from an ordinary NaN value by its bits.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// The staleness marker as a float.
pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// Whether `v` is the staleness marker (not merely a NaN).
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// The metric name label.
pub const METRIC_NAME: &str = "__name__";

/// A label set, sorted by name, without empty values (an empty value means "no such label").
///
/// The metric name is held apart from the other labels: most functions and operators drop
/// it, and dropping it then copies nothing. The other labels are shared behind an `Arc`:
/// selectors hand the same label set to many results, so a clone is a reference count, and
/// the few changes (setting a label) copy on write. Names and values are shared strings, so
/// that copy costs one allocation, not two per label.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Labels {
    name: Option<Arc<str>>,
    /// Every label but `__name__`, sorted by name.
    rest: Arc<Vec<(Arc<str>, Arc<str>)>>,
}

/// Whether a label name sorts after `__name__` (most do: lower-case names), deciding on the
/// first byte when it can.
fn after_name(k: &str) -> bool {
    match k.as_bytes().first() {
        Some(&b) if b != b'_' => b > b'_',
        _ => k > METRIC_NAME,
    }
}

impl Labels {
    pub fn new() -> Self {
        Labels::default()
    }

    /// Builds a label set from pairs in any order; later duplicates win, empty values are dropped.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let mut l = Labels::new();
        for (k, v) in pairs {
            l.set(&k.into(), v.into());
        }
        l
    }

    fn find(&self, name: &str) -> Result<usize, usize> {
        self.rest.binary_search_by(|(k, _)| (**k).cmp(name))
    }

    pub fn get(&self, name: &str) -> &str {
        if name == METRIC_NAME {
            return self.name();
        }
        match self.find(name) {
            Ok(i) => &self.rest[i].1,
            Err(_) => "",
        }
    }

    pub fn has(&self, name: &str) -> bool {
        if name == METRIC_NAME {
            return self.name.is_some();
        }
        self.find(name).is_ok()
    }

    /// Sets a label; an empty value removes it, as in Prometheus.
    pub fn set(&mut self, name: &str, value: String) {
        if name == METRIC_NAME {
            self.name = (!value.is_empty()).then(|| value.into());
            return;
        }
        match self.find(name) {
            Ok(i) => {
                if value.is_empty() {
                    Arc::make_mut(&mut self.rest).remove(i);
                } else if *self.rest[i].1 != *value {
                    Arc::make_mut(&mut self.rest)[i].1 = value.into();
                }
            }
            Err(i) => {
                if !value.is_empty() {
                    Arc::make_mut(&mut self.rest).insert(i, (name.into(), value.into()));
                }
            }
        }
    }

    pub fn remove(&mut self, name: &str) {
        if name == METRIC_NAME {
            self.name = None;
        } else if let Ok(i) = self.find(name) {
            Arc::make_mut(&mut self.rest).remove(i);
        }
    }

    pub fn without_name(&self) -> Labels {
        Labels {
            name: None,
            rest: Arc::clone(&self.rest),
        }
    }

    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or("")
    }

    /// The labels in name order, `__name__` among them.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        let at = match self.name {
            Some(_) => self.rest.partition_point(|(k, _)| !after_name(k)),
            None => self.rest.len(),
        };
        let (before, after) = self.rest.split_at(at);
        fn pair(p: &(Arc<str>, Arc<str>)) -> (&str, &str) {
            (&p.0, &p.1)
        }
        before
            .iter()
            .map(pair)
            .chain(self.name.as_deref().map(|v| (METRIC_NAME, v)))
            .chain(after.iter().map(pair))
    }

    pub fn len(&self) -> usize {
        self.rest.len() + usize::from(self.name.is_some())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The labels named in `names` (`keep = true`) or all but those (`keep = false`).
    /// `without` grouping always drops the metric name too.
    pub fn project(&self, names: &[String], keep: bool) -> Labels {
        let listed = |k: &str| names.iter().any(|n| n == k);
        Labels {
            name: self.name.clone().filter(|_| keep && listed(METRIC_NAME)),
            rest: Arc::new(
                self.rest
                    .iter()
                    .filter(|(k, _)| listed(k) == keep)
                    .cloned()
                    .collect(),
            ),
        }
    }
}

impl PartialOrd for Labels {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Labels {
    /// Label sets compare as their sorted `(name, value)` lists, as Prometheus sorts them.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.iter().cmp(other.iter())
    }
}

impl Labels {
    /// Go's `labels.Labels.String()`: `{__name__="x", a="1"}`, used in error messages.
    pub fn go_string(&self) -> String {
        let mut out = String::from("{");
        for (i, (k, v)) in self.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(k);
            out.push('=');
            out.push_str(&format!("{v:?}"));
        }
        out.push('}');
        out
    }
}

impl Labels {
    /// A hash of [`Labels::project`]'s result, without building it: grouping and vector
    /// matching key on this (as Prometheus keys on label signatures).
    pub fn project_hash(&self, names: &[String], keep: bool) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = crate::hash::signature_hasher();
        for (k, v) in self.iter() {
            let listed = names.iter().any(|n| n == k);
            let included = if keep {
                listed
            } else {
                !listed && k != METRIC_NAME
            };
            if included {
                k.hash(&mut h);
                v.hash(&mut h);
            }
        }
        h.finish()
    }
}

impl fmt::Display for Labels {
    /// Prometheus' spelling: `name{a="1", b="2"}`, or `{a="1"}` without a name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.name();
        f.write_str(name)?;
        f.write_str("{")?;
        let mut first = true;
        for (k, v) in self.iter() {
            if k == METRIC_NAME {
                continue;
            }
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write!(f, "{k}={v:?}")?;
        }
        f.write_str("}")
    }
}

/// One point of an instant vector. `t` is the evaluation time, except straight out of a
/// selector where it is the stored sample's own time (what `timestamp()` returns).
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub metric: Labels,
    pub t: i64,
    pub v: f64,
}

/// A series of points over a range, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub metric: Labels,
    pub points: Vec<(i64, f64)>,
}

/// The result of evaluating an expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar(f64),
    Vector(Vec<Sample>),
    Matrix(Vec<Series>),
    String(String),
}

impl Value {
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Scalar(_) => "scalar",
            Value::Vector(_) => "vector",
            Value::Matrix(_) => "matrix",
            Value::String(_) => "string",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `__name__` is held apart but iterates, compares and projects in its sorted place:
    /// after upper-case names and digits, before lower-case ones.
    #[test]
    fn name_in_its_sorted_place() {
        let l = Labels::from_pairs([("b", "2"), ("__name__", "m"), ("A", "1"), ("_x", "3")]);
        let names: Vec<&str> = l.iter().map(|(k, _)| k).collect();
        assert_eq!(names, ["A", "__name__", "_x", "b"]);
        assert_eq!(l.len(), 4);
        assert_eq!(l.go_string(), r#"{A="1", __name__="m", _x="3", b="2"}"#);
        let without = l.without_name();
        assert_eq!(without.len(), 3);
        assert!(!without.has(METRIC_NAME));
        assert_eq!(
            without,
            Labels::from_pairs([("A", "1"), ("_x", "3"), ("b", "2")])
        );
        // Ordering is that of the pair lists: after ("A","1"), "__name__" < "b".
        let other = Labels::from_pairs([("A", "1"), ("b", "0")]);
        assert!(l < other);
        let named = Labels::from_pairs([("__name__", "a"), ("z", "1")]);
        assert!(named < Labels::from_pairs([("a", "1")]));
        assert_eq!(
            l.project(&["__name__".to_string(), "b".to_string()], true),
            Labels::from_pairs([("__name__", "m"), ("b", "2")])
        );
        assert_eq!(
            l.project_hash(&["b".to_string()], false),
            Labels::from_pairs([("A", "1"), ("_x", "3")]).project_hash(&[], false)
        );
    }
}
