//! Which series each selector matched. Rules run the same selectors at every evaluation, and
//! the set of live series changes far less often: a new series is tested against the cached
//! selectors as it is created, so an entry stays right without being recomputed.

use std::sync::Arc;

use promql_parser::label::Matcher;
use vigie_promql::{Labels, matches};

/// More entries than this (ad-hoc API queries) and the cache starts over.
const MAX_ENTRIES: usize = 1024;
/// Nor may the ids held add up to more than this (8 MiB).
const MAX_IDS: usize = 1 << 21;

#[derive(Debug, Default)]
pub(super) struct MatchCache {
    entries: vigie_promql::hash::HashMap<Vec<Matcher>, Arc<Vec<u32>>>,
    ids: usize,
}

impl MatchCache {
    pub(super) fn get(&self, matchers: &[Matcher]) -> Option<Arc<Vec<u32>>> {
        self.entries.get(matchers).cloned()
    }

    pub(super) fn insert(&mut self, matchers: &[Matcher], ids: Arc<Vec<u32>>) {
        if self.entries.len() >= MAX_ENTRIES || self.ids + ids.len() > MAX_IDS {
            self.clear();
        }
        self.ids += ids.len();
        if let Some(old) = self.entries.insert(matchers.to_vec(), ids) {
            self.ids -= old.len();
        }
    }

    /// A series was created under `id`: it joins every entry whose selector it matches.
    pub(super) fn series_added(&mut self, id: u32, labels: &Labels) {
        for (matchers, ids) in self.entries.iter_mut() {
            if matches(labels, matchers) {
                let ids = Arc::make_mut(ids);
                let at = ids.partition_point(|&x| x < id);
                if ids.get(at) != Some(&id) {
                    ids.insert(at, id);
                    self.ids += 1;
                }
            }
        }
    }

    /// Series were dropped: their ids may be handed out again.
    pub(super) fn clear(&mut self) {
        self.entries.clear();
        self.ids = 0;
    }
}
