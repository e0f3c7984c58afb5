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
/// Shared behind an `Arc`: selectors hand the same label set to many results, so a clone is a
/// reference count, and the few changes (dropping the name, setting a label) copy on write.
/// The names and values are shared strings too, so that copy (dropping `__name__` from every
/// series a `rate()` reads) costs one allocation, not two per label.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Labels(Arc<Vec<(Arc<str>, Arc<str>)>>);

impl Labels {
    pub fn new() -> Self {
        Labels(Arc::new(Vec::new()))
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

    pub fn get(&self, name: &str) -> &str {
        match self.0.binary_search_by(|(k, _)| (**k).cmp(name)) {
            Ok(i) => &self.0[i].1,
            Err(_) => "",
        }
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.binary_search_by(|(k, _)| (**k).cmp(name)).is_ok()
    }

    /// Sets a label; an empty value removes it, as in Prometheus.
    pub fn set(&mut self, name: &str, value: String) {
        match self.0.binary_search_by(|(k, _)| (**k).cmp(name)) {
            Ok(i) => {
                if value.is_empty() {
                    Arc::make_mut(&mut self.0).remove(i);
                } else if *self.0[i].1 != *value {
                    Arc::make_mut(&mut self.0)[i].1 = value.into();
                }
            }
            Err(i) => {
                if !value.is_empty() {
                    Arc::make_mut(&mut self.0).insert(i, (name.into(), value.into()));
                }
            }
        }
    }

    pub fn remove(&mut self, name: &str) {
        if let Ok(i) = self.0.binary_search_by(|(k, _)| (**k).cmp(name)) {
            Arc::make_mut(&mut self.0).remove(i);
        }
    }

    pub fn without_name(&self) -> Labels {
        let mut l = self.clone();
        l.remove(METRIC_NAME);
        l
    }

    pub fn name(&self) -> &str {
        self.get(METRIC_NAME)
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

    /// The labels named in `names` (`keep = true`) or all but those (`keep = false`).
    /// `without` grouping always drops the metric name too.
    pub fn project(&self, names: &[String], keep: bool) -> Labels {
        Labels(Arc::new(
            self.0
                .iter()
                .filter(|(k, _)| {
                    let listed = names.iter().any(|n| **n == **k);
                    if keep {
                        listed
                    } else {
                        !listed && &**k != METRIC_NAME
                    }
                })
                .cloned()
                .collect(),
        ))
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
        let mut h = std::hash::DefaultHasher::new();
        for (k, v) in self.0.iter() {
            let listed = names.iter().any(|n| **n == **k);
            let included = if keep {
                listed
            } else {
                !listed && &**k != METRIC_NAME
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
