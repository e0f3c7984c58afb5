//! Where the evaluator reads samples from. The embedded store, the remote query API and the
//! test harnesses' in-memory data all answer the same question: which series match these
//! matchers, and what are their samples between two times.

use std::collections::BTreeMap;

use promql_parser::label::Matcher;

use crate::value::{Labels, Series};

/// A source of samples. Timestamps are Unix milliseconds; staleness markers are returned as
/// stored so the evaluator can apply Prometheus' staleness rules.
pub trait Storage {
    /// Every series matching all `matchers` that has at least one sample in `[mint, maxt]`,
    /// with exactly those samples, oldest first.
    fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<Series>;

    /// [`Storage::select`] restricted to the series whose labels pass `keep`. A store that can
    /// test labels before reading samples overrides it, so windows nobody will use (the right
    /// side of an `and` that the left side does not match) are never decoded.
    fn select_where(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        keep: &dyn Fn(&Labels) -> bool,
    ) -> Vec<Series> {
        let mut series = self.select(matchers, mint, maxt);
        series.retain(|s| keep(&s.metric));
        series
    }

    /// The latest sample in `[mint, maxt]` of every matching series: what an instant selector
    /// needs. Stores that know their last samples answer without decoding whole windows.
    fn select_latest(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<(Labels, i64, f64)> {
        self.select(matchers, mint, maxt)
            .into_iter()
            .filter_map(|s| s.points.last().map(|&(t, v)| (s.metric, t, v)))
            .collect()
    }
}

/// Whether a label set satisfies every matcher (a missing label matches as the empty string).
pub fn matches(labels: &Labels, matchers: &[Matcher]) -> bool {
    matchers.iter().all(|m| m.is_match(labels.get(&m.name)))
}

/// Series held in memory, sorted by labels: the data of `promqltest` scripts and rule unit tests.
#[derive(Debug, Default, Clone)]
pub struct MemoryStorage {
    series: BTreeMap<Labels, Vec<(i64, f64)>>,
}

impl MemoryStorage {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one sample; samples may arrive in any order, a repeated timestamp replaces the value.
    pub fn append(&mut self, labels: &Labels, t: i64, v: f64) {
        let points = self.series.entry(labels.clone()).or_default();
        match points.last() {
            Some(&(last, _)) if last < t => points.push((t, v)),
            None => points.push((t, v)),
            _ => match points.binary_search_by_key(&t, |p| p.0) {
                Ok(i) => points[i].1 = v,
                Err(i) => points.insert(i, (t, v)),
            },
        }
    }

    pub fn clear(&mut self) {
        self.series.clear();
    }

    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// Drops every sample older than `mint`, and series left empty.
    pub fn truncate_before(&mut self, mint: i64) {
        self.series.retain(|_, points| {
            let cut = points.partition_point(|p| p.0 < mint);
            points.drain(..cut);
            !points.is_empty()
        });
    }
}

impl Storage for MemoryStorage {
    fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<Series> {
        let mut out = Vec::new();
        for (labels, points) in &self.series {
            if !matches(labels, matchers) {
                continue;
            }
            let lo = points.partition_point(|p| p.0 < mint);
            let hi = points.partition_point(|p| p.0 <= maxt);
            if lo < hi {
                out.push(Series {
                    metric: labels.clone(),
                    points: points[lo..hi].to_vec(),
                });
            }
        }
        out
    }
}
