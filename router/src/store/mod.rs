//! The embedded store: series in memory as Gorilla-compressed chunks, an inverted index of
//! label pairs for selection, and a retention window. It answers the evaluator through
//! [`vigie_promql::Storage`].

pub mod chunk;
mod match_cache;

use std::sync::{Arc, Mutex};
use vigie_promql::hash::HashMap;

use promql_parser::label::{MatchOp, Matcher};
use vigie_promql::{Labels, Series, Storage};

use crate::rules::group::Appender;
use chunk::Chunk;
use match_cache::MatchCache;

#[derive(Debug, Default)]
struct MemSeries {
    labels: Labels,
    /// Full chunks, compacted: only the bit stream and the time bounds remain.
    sealed: Vec<chunk::Sealed>,
    /// The chunk being appended to.
    head: Option<Box<Chunk>>,
    /// The last decoder mark of the newest sealed chunk: windows that begin just before the
    /// head chunk decode only the end of that chunk.
    tail_mark: Option<chunk::Mark>,
    /// The newest sample, for instant selectors.
    last: Option<(i64, f64)>,
}

impl MemSeries {
    fn overlaps(&self, mint: i64, maxt: i64) -> bool {
        self.sealed
            .iter()
            .any(|c| c.max_t >= mint && c.min_t <= maxt)
            || self
                .head
                .as_ref()
                .is_some_and(|h| h.max_t >= mint && h.min_t <= maxt)
    }

    /// About how many samples `[mint, maxt]` holds, at the head chunk's mean interval: the
    /// window's vector is allocated once instead of growing sample by sample.
    fn estimate(&self, mint: i64, maxt: i64) -> usize {
        let Some((first, last, n)) = self
            .head
            .as_ref()
            .map(|h| (h.min_t, h.max_t, h.len()))
            .or_else(|| self.sealed.last().map(|c| (c.min_t, c.max_t, c.len())))
        else {
            return 0;
        };
        let step = if n > 1 {
            (last - first) / i64::from(n - 1)
        } else {
            0
        };
        let end = maxt.min(self.last_t().unwrap_or(maxt));
        let start = mint.max(self.sealed.first().map_or(first, |c| c.min_t));
        if step <= 0 || end < start {
            return 1;
        }
        usize::try_from((end - start) / step + 2)
            .unwrap_or(1)
            .min(1 << 16)
    }

    fn last_t(&self) -> Option<i64> {
        self.last.map(|l| l.0)
    }

    /// Samples in `[mint, maxt]`, decoding only the chunks that overlap.
    fn points(&self, mint: i64, maxt: i64) -> Vec<(i64, f64)> {
        let mut points = Vec::with_capacity(self.estimate(mint, maxt));
        // Sealed chunks are in time order: skip those that end before the window.
        let first = self.sealed.partition_point(|c| c.max_t < mint);
        let newest = self.sealed.len().saturating_sub(1);
        for (i, c) in self.sealed.iter().enumerate().skip(first) {
            if c.min_t > maxt {
                break;
            }
            let mark = if i == newest {
                self.tail_mark.as_ref()
            } else {
                None
            };
            c.samples_in(mint, maxt, mark, &mut points);
        }
        if let Some(h) = &self.head
            && h.max_t >= mint
            && h.min_t <= maxt
        {
            h.samples_in(mint, maxt, &mut points);
        }
        points
    }
}

/// Counts for `/metrics` and the benchmark.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub series: usize,
    pub samples: usize,
    pub chunk_bytes: usize,
    /// The encoded bit streams alone (what Prometheus' bytes-per-sample figures count).
    pub stream_bytes: usize,
}

/// Series and their samples; series without samples in the window are dropped.
#[derive(Debug, Default)]
pub struct Store {
    series: Vec<Option<MemSeries>>,
    free: Vec<u32>,
    by_labels: HashMap<Labels, u32>,
    /// `(label name, value)` → series ids, ascending.
    postings: HashMap<(String, String), Vec<u32>>,
    /// Series ids by selector, kept up to date as series come and go.
    matches: Mutex<MatchCache>,
    /// Samples refused because they were not newer than the series' last one.
    pub out_of_order: u64,
}

impl Store {
    pub fn new() -> Self {
        Self::default()
    }

    fn id(&mut self, labels: &Labels) -> u32 {
        if let Some(&id) = self.by_labels.get(labels) {
            return id;
        }
        let s = MemSeries {
            labels: labels.clone(),
            sealed: Vec::new(),
            head: None,
            tail_mark: None,
            last: None,
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.series[id as usize] = Some(s);
                id
            }
            None => {
                self.series.push(Some(s));
                (self.series.len() - 1) as u32
            }
        };
        for (k, v) in labels.iter() {
            let list = self
                .postings
                .entry((k.to_string(), v.to_string()))
                .or_default();
            let at = list.partition_point(|&x| x < id);
            list.insert(at, id);
        }
        self.matches
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .series_added(id, labels);
        self.by_labels.insert(labels.clone(), id);
        id
    }

    /// Appends a sample; one not newer than the series' last sample is dropped and counted.
    pub fn append(&mut self, labels: &Labels, t: i64, v: f64) {
        let id = self.id(labels);
        let Some(s) = self.series[id as usize].as_mut() else {
            return;
        };
        if s.last_t().is_some_and(|last| t <= last) {
            self.out_of_order += 1;
            return;
        }
        s.last = Some((t, v));
        let head = s.head.get_or_insert_with(Default::default);
        head.push(t, v);
        if head.is_full()
            && let Some(full) = s.head.take()
        {
            let (sealed, mark) = full.seal();
            s.sealed.push(sealed);
            s.tail_mark = mark;
        }
    }

    /// The last sample time of a series, if it exists.
    pub fn last_timestamp(&self, labels: &Labels) -> Option<i64> {
        let id = *self.by_labels.get(labels)?;
        self.series[id as usize].as_ref()?.last_t()
    }

    /// Drops chunks entirely older than `mint`, and series left empty.
    pub fn truncate_before(&mut self, mint: i64) {
        let mut dead = Vec::new();
        for (id, slot) in self.series.iter_mut().enumerate() {
            if let Some(s) = slot {
                s.sealed.retain(|c| c.max_t >= mint);
                if s.sealed.is_empty() {
                    s.tail_mark = None;
                }
                if s.head.as_ref().is_some_and(|h| h.max_t < mint) {
                    s.head = None;
                    s.last = None;
                }
                if s.sealed.is_empty() && s.head.is_none() {
                    dead.push(id as u32);
                }
            }
        }
        if !dead.is_empty() {
            self.matches
                .get_mut()
                .unwrap_or_else(|p| p.into_inner())
                .clear();
        }
        for id in dead {
            if let Some(s) = self.series[id as usize].take() {
                self.by_labels.remove(&s.labels);
                for (k, v) in s.labels.iter() {
                    let key = (k.to_string(), v.to_string());
                    if let Some(list) = self.postings.get_mut(&key) {
                        list.retain(|&x| x != id);
                        if list.is_empty() {
                            self.postings.remove(&key);
                        }
                    }
                }
                self.free.push(id);
            }
        }
    }

    pub fn stats(&self) -> Stats {
        let mut st = Stats::default();
        for s in self.series.iter().flatten() {
            st.series += 1;
            // The sealed chunk's mark is chunk bookkeeping kept beside it.
            if s.tail_mark.is_some() {
                st.chunk_bytes += std::mem::size_of::<chunk::Mark>();
            }
            for c in &s.sealed {
                st.samples += c.len() as usize;
                st.chunk_bytes += c.bytes();
                st.stream_bytes += c.stream_bytes();
            }
            if let Some(h) = &s.head {
                st.samples += h.len() as usize;
                st.chunk_bytes += h.bytes();
                st.stream_bytes += h.stream_bytes();
            }
        }
        st
    }

    /// Ids of the live series that satisfy every matcher, ascending: from the cache when
    /// this selector was seen before.
    fn matching(&self, matchers: &[Matcher]) -> Arc<Vec<u32>> {
        let lock = || self.matches.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(ids) = lock().get(matchers) {
            return ids;
        }
        let ids = Arc::new(self.search(matchers));
        lock().insert(matchers, Arc::clone(&ids));
        ids
    }

    /// [`Store::matching`] without the cache. Equality matchers are answered by intersecting
    /// their posting lists (smallest first), so only the other matchers (`!=`, regexes,
    /// `=""`) are checked against each series' labels.
    fn search(&self, matchers: &[Matcher]) -> Vec<u32> {
        let mut lists: Vec<&[u32]> = Vec::new();
        let mut rest: Vec<&Matcher> = Vec::new();
        for m in matchers {
            if m.op == MatchOp::Equal && !m.value.is_empty() {
                match self.postings.get(&(m.name.clone(), m.value.clone())) {
                    None => return Vec::new(),
                    Some(list) => lists.push(list),
                }
            } else {
                rest.push(m);
            }
        }
        lists.sort_by_key(|l| l.len());
        let live = |id: &u32| -> Option<&MemSeries> { self.series[*id as usize].as_ref() };
        let keep = |id: &u32| {
            live(id).is_some_and(|s| {
                rest.iter().all(|m| match m.op {
                    // `label!=""`: the label is present (label sets hold no empty values).
                    MatchOp::NotEqual if m.value.is_empty() => s.labels.has(&m.name),
                    _ => m.is_match(s.labels.get(&m.name)),
                })
            })
        };
        match lists.split_first() {
            Some((first, others)) => first
                .iter()
                .filter(|id| others.iter().all(|l| l.binary_search(id).is_ok()))
                .filter(|id| keep(id))
                .copied()
                .collect(),
            None => (0..self.series.len() as u32).filter(keep).collect(),
        }
    }

    /// Label sets of series matching any of the selectors (all series for none), with samples
    /// in `[mint, maxt]`: the `series` API.
    pub fn series_labels(&self, selectors: &[Vec<Matcher>], mint: i64, maxt: i64) -> Vec<Labels> {
        let mut out: Vec<Labels> = Vec::new();
        let all = [Vec::new()];
        let selectors = if selectors.is_empty() {
            &all[..]
        } else {
            selectors
        };
        let mut seen = vigie_promql::hash::HashSet::default();
        for sel in selectors {
            for &id in self.matching(sel).iter() {
                let Some(s) = self.series[id as usize].as_ref() else {
                    continue;
                };
                if s.overlaps(mint, maxt) && seen.insert(id) {
                    out.push(s.labels.clone());
                }
            }
        }
        out.sort();
        out
    }
}

impl Storage for Store {
    fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<Series> {
        self.select_where(matchers, mint, maxt, &|_| true)
    }

    fn select_where(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        keep: &dyn Fn(&Labels) -> bool,
    ) -> Vec<Series> {
        let mut out = Vec::new();
        for &id in self.matching(matchers).iter() {
            let Some(s) = self.series[id as usize].as_ref() else {
                continue;
            };
            if !keep(&s.labels) {
                continue;
            }
            let points = s.points(mint, maxt);
            if !points.is_empty() {
                out.push(Series {
                    metric: s.labels.clone(),
                    points,
                });
            }
        }
        out
    }

    fn select_latest(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<(Labels, i64, f64)> {
        let mut out = Vec::new();
        for &id in self.matching(matchers).iter() {
            let Some(s) = self.series[id as usize].as_ref() else {
                continue;
            };
            let Some((t, v)) = s.last else { continue };
            if t < mint {
                continue;
            }
            if t <= maxt {
                out.push((s.labels.clone(), t, v));
            } else if let Some(&(t, v)) = s.points(mint, maxt).last() {
                // A query in the past: decode the window.
                out.push((s.labels.clone(), t, v));
            }
        }
        out
    }
}

impl Appender for Store {
    fn append(&mut self, labels: &Labels, t: i64, v: f64) {
        Store::append(self, labels, t, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_and_truncate() {
        let mut st = Store::new();
        let a = Labels::from_pairs([("__name__", "up"), ("job", "a")]);
        let b = Labels::from_pairs([("__name__", "up"), ("job", "b")]);
        for i in 0..300 {
            st.append(&a, i * 1000, i as f64);
            st.append(&b, i * 1000, 1.0);
        }
        st.append(&a, 5, 0.0);
        assert_eq!(st.out_of_order, 1);
        let m = vec![Matcher::new(MatchOp::Equal, "job", "a")];
        let got = st.select(&m, 100_000, 100_500);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].points, vec![(100_000, 100.0)]);
        assert_eq!(st.stats().samples, 600);
        st.truncate_before(250_000);
        assert_eq!(st.select(&m, 0, 400_000)[0].points[0].0, 240_000);
        st.truncate_before(1_000_000);
        assert_eq!(st.stats().series, 0);
        assert!(st.select(&m, 0, i64::MAX).is_empty());
    }

    /// A selector's series are cached: series created later join it, dropped ones leave it,
    /// and a freed id handed to a series the selector does not match is not reported.
    #[test]
    fn cached_selection_follows_the_series() {
        let mut st = Store::new();
        let up = |job: &str| Labels::from_pairs([("__name__", "up"), ("job", job)]);
        let m = vec![
            Matcher::new(MatchOp::Equal, "__name__", "up"),
            Matcher::new(
                MatchOp::Re(regex::Regex::new("^(?:a|b)$").expect("regex")),
                "job",
                "a|b",
            ),
        ];
        let jobs = |st: &Store| -> Vec<String> {
            st.select(&m, 0, i64::MAX)
                .iter()
                .map(|s| s.metric.get("job").to_string())
                .collect()
        };
        st.append(&up("a"), 1_000, 1.0);
        assert_eq!(jobs(&st), ["a"]);
        st.append(&up("c"), 1_000, 1.0);
        st.append(&up("b"), 1_000, 1.0);
        assert_eq!(jobs(&st), ["a", "b"]);
        // "a" ends, so it is dropped; its id goes to a series of job "c".
        st.append(&up("b"), 500_000, 1.0);
        st.append(&up("c"), 500_000, 1.0);
        st.truncate_before(100_000);
        assert_eq!(jobs(&st), ["b"]);
        st.append(
            &Labels::from_pairs([("__name__", "up"), ("job", "d")]),
            600_000,
            1.0,
        );
        assert_eq!(jobs(&st), ["b"]);
        st.append(&up("a"), 700_000, 1.0);
        assert_eq!(jobs(&st), ["b", "a"]);
    }
}
