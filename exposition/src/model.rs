//! Metric families as a scrape produces them, and the normalisation that makes the output
//! deterministic: families sorted by name, series by label values, duplicates dropped.

use std::borrow::Cow;
use std::cmp::Ordering;

/// Label names are almost always static strings in collectors; `Cow` avoids an allocation each.
pub type LabelName = Cow<'static, str>;
pub type Labels = Vec<(LabelName, String)>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Counter,
    Gauge,
    Untyped,
    Summary,
    Histogram,
}

impl Kind {
    pub fn as_text(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Untyped => "untyped",
            Kind::Summary => "summary",
            Kind::Histogram => "histogram",
        }
    }

    pub fn from_text(s: &str) -> Option<Kind> {
        Some(match s {
            "counter" => Kind::Counter,
            "gauge" => Kind::Gauge,
            "untyped" | "unknown" => Kind::Untyped,
            "summary" => Kind::Summary,
            "histogram" => Kind::Histogram,
            _ => return None,
        })
    }
}

/// The part a sample's name adds to its family's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Suffix {
    None,
    Bucket,
    Sum,
    Count,
}

impl Suffix {
    pub fn as_str(self) -> &'static str {
        match self {
            Suffix::None => "",
            Suffix::Bucket => "_bucket",
            Suffix::Sum => "_sum",
            Suffix::Count => "_count",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub suffix: Suffix,
    pub labels: Labels,
    pub value: f64,
    pub timestamp_ms: Option<i64>,
}

impl Sample {
    pub fn new(labels: Labels, value: f64) -> Sample {
        Sample {
            suffix: Suffix::None,
            labels,
            value,
            timestamp_ms: None,
        }
    }

    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub name: String,
    pub help: String,
    pub kind: Kind,
    pub samples: Vec<Sample>,
}

impl Family {
    pub fn new(name: impl Into<String>, help: impl Into<String>, kind: Kind) -> Family {
        Family {
            name: name.into(),
            help: help.into(),
            kind,
            samples: Vec::new(),
        }
    }

    /// A family with one unlabelled sample.
    pub fn single(
        name: impl Into<String>,
        help: impl Into<String>,
        kind: Kind,
        value: f64,
    ) -> Family {
        let mut f = Family::new(name, help, kind);
        f.samples.push(Sample::new(Vec::new(), value));
        f
    }

    /// Adds a sample with these labels; label names are static in collectors.
    pub fn push(&mut self, labels: &[(&'static str, &str)], value: f64) {
        let labels = labels
            .iter()
            .map(|(n, v)| (Cow::Borrowed(*n), (*v).to_string()))
            .collect();
        self.samples.push(Sample::new(labels, value));
    }

    pub fn with(mut self, labels: &[(&'static str, &str)], value: f64) -> Family {
        self.push(labels, value);
        self
    }
}

/// Why part of a scrape was dropped during [`normalize`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conflict {
    /// Two families share a name but not a type; the later one was dropped.
    TypeMismatch {
        name: String,
        kept: Kind,
        dropped: Kind,
    },
    /// The same series appeared twice; the later sample was dropped.
    DuplicateSeries { name: String, labels: String },
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Conflict::TypeMismatch {
                name,
                kept,
                dropped,
            } => write!(
                f,
                "metric family {name} collected as {} and {}; dropped the {} one",
                kept.as_text(),
                dropped.as_text(),
                dropped.as_text()
            ),
            Conflict::DuplicateSeries { name, labels } => {
                write!(
                    f,
                    "series {name}{{{labels}}} collected twice; dropped the second"
                )
            }
        }
    }
}

fn is_bucket_label(kind: Kind, name: &str) -> bool {
    matches!(
        (kind, name),
        (Kind::Histogram, "le") | (Kind::Summary, "quantile")
    )
}

fn bucket_bound(kind: Kind, s: &Sample) -> f64 {
    match kind {
        Kind::Histogram | Kind::Summary => s
            .labels
            .iter()
            .find(|(n, _)| is_bucket_label(kind, n))
            .and_then(|(_, v)| crate::parse::parse_float(v))
            .unwrap_or(f64::INFINITY),
        _ => 0.0,
    }
}

/// Compares two series the way client_golang sorts them: label values in label-name order,
/// bucket labels excluded, then the sample's part (buckets, sum, count) and its bound.
fn compare_samples(kind: Kind, a: &Sample, b: &Sample) -> Ordering {
    if !matches!(kind, Kind::Histogram | Kind::Summary) {
        return a
            .labels
            .cmp(&b.labels)
            .then_with(|| a.timestamp_ms.cmp(&b.timestamp_ms));
    }
    let av = a.labels.iter().filter(|(n, _)| !is_bucket_label(kind, n));
    let bv = b.labels.iter().filter(|(n, _)| !is_bucket_label(kind, n));
    av.cmp(bv)
        .then_with(|| a.suffix.cmp(&b.suffix))
        .then_with(|| {
            bucket_bound(kind, a)
                .partial_cmp(&bucket_bound(kind, b))
                .unwrap_or(Ordering::Equal)
        })
        .then_with(|| a.timestamp_ms.cmp(&b.timestamp_ms))
}

fn sort_labels(kind: Kind, labels: &mut Labels) {
    let in_order = |a: &(LabelName, String), b: &(LabelName, String)| {
        (is_bucket_label(kind, &a.0), &a.0) <= (is_bucket_label(kind, &b.0), &b.0)
    };
    if labels.len() > 1 && !labels.is_sorted_by(in_order) {
        labels.sort_by(|a, b| {
            is_bucket_label(kind, &a.0)
                .cmp(&is_bucket_label(kind, &b.0))
                .then_with(|| a.0.cmp(&b.0))
        });
    }
}

/// Makes a scrape deterministic and valid: merges families of the same name (the first type
/// wins), sorts families by name, labels by name (bucket labels last) and series by label values,
/// and drops duplicate series. Returns what was dropped, so the caller can log it; a duplicate
/// never fails a scrape.
pub fn normalize(mut families: Vec<Family>) -> (Vec<Family>, Vec<Conflict>) {
    let mut conflicts = Vec::new();
    if !families.is_sorted_by(|a, b| a.name <= b.name) {
        families.sort_by(|a, b| a.name.cmp(&b.name));
    }
    let mut merged: Vec<Family> = Vec::with_capacity(families.len());
    for fam in families {
        match merged.last_mut() {
            Some(last) if last.name == fam.name => {
                if last.kind == fam.kind {
                    last.samples.extend(fam.samples);
                } else {
                    conflicts.push(Conflict::TypeMismatch {
                        name: fam.name,
                        kept: last.kind,
                        dropped: fam.kind,
                    });
                }
            }
            _ => merged.push(fam),
        }
    }
    merged.retain(|f| !f.samples.is_empty());
    for fam in &mut merged {
        let kind = fam.kind;
        for s in &mut fam.samples {
            sort_labels(kind, &mut s.labels);
        }
        if fam.samples.len() > 1 {
            if !fam
                .samples
                .is_sorted_by(|a, b| compare_samples(kind, a, b) != Ordering::Greater)
            {
                fam.samples.sort_by(|a, b| compare_samples(kind, a, b));
            }
            let before = fam.samples.len();
            let mut dropped = Vec::new();
            fam.samples.dedup_by(|later, earlier| {
                let dup = later.suffix == earlier.suffix && later.labels == earlier.labels;
                if dup {
                    dropped.push(render_labels(&later.labels));
                }
                dup
            });
            if fam.samples.len() != before {
                conflicts.extend(dropped.into_iter().map(|labels| Conflict::DuplicateSeries {
                    name: fam.name.clone(),
                    labels,
                }));
            }
        }
    }
    (merged, conflicts)
}

fn render_labels(labels: &Labels) -> String {
    labels
        .iter()
        .map(|(n, v)| format!("{n}={v:?}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_like_client_golang_and_drops_duplicates() {
        let mut cpu = Family::new("node_cpu_seconds_total", "Seconds.", Kind::Counter);
        cpu.push(&[("mode", "user"), ("cpu", "10")], 1.0);
        cpu.push(&[("cpu", "2"), ("mode", "idle")], 2.0);
        cpu.push(&[("cpu", "10"), ("mode", "idle")], 3.0);
        cpu.push(&[("cpu", "2"), ("mode", "idle")], 4.0);
        let load = Family::single("node_load1", "1m load average.", Kind::Gauge, 0.5);
        let clash = Family::single("node_load1", "other", Kind::Counter, 9.0);
        let (out, conflicts) = normalize(vec![cpu, load, clash]);
        assert_eq!(out[0].name, "node_cpu_seconds_total");
        let order: Vec<(String, f64)> = out[0]
            .samples
            .iter()
            .map(|s| (render_labels(&s.labels), s.value))
            .collect();
        assert_eq!(
            order,
            vec![
                ("cpu=\"10\",mode=\"idle\"".to_string(), 3.0),
                ("cpu=\"10\",mode=\"user\"".to_string(), 1.0),
                ("cpu=\"2\",mode=\"idle\"".to_string(), 2.0),
            ]
        );
        assert_eq!(out[1].samples.len(), 1);
        assert_eq!(out[1].kind, Kind::Gauge);
        assert_eq!(conflicts.len(), 2);
    }

    #[test]
    fn histogram_buckets_sorted_numerically_then_sum_and_count() {
        let mut h = Family::new("h", "h", Kind::Histogram);
        let mk = |suffix, le: Option<&str>, v| Sample {
            suffix,
            labels: le
                .map(|l| vec![(Cow::Borrowed("le"), l.to_string())])
                .unwrap_or_default(),
            value: v,
            timestamp_ms: None,
        };
        h.samples = vec![
            mk(Suffix::Count, None, 5.0),
            mk(Suffix::Bucket, Some("+Inf"), 5.0),
            mk(Suffix::Bucket, Some("10"), 4.0),
            mk(Suffix::Sum, None, 20.0),
            mk(Suffix::Bucket, Some("2.5"), 1.0),
        ];
        let (out, _) = normalize(vec![h]);
        let values: Vec<f64> = out[0].samples.iter().map(|s| s.value).collect();
        assert_eq!(values, vec![1.0, 4.0, 5.0, 20.0, 5.0]);
    }
}
