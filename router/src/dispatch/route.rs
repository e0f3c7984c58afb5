//! The routing tree: every alert enters at the root, children are tried in order, a matching
//! child without `continue` stops its later siblings, and a node none of whose children match is
//! the match itself. Children inherit what they leave unset.

use std::collections::BTreeMap;

use crate::labelset::{LabelSet, LabelSource};
use crate::matcher::{Matcher, matchers_string};

#[derive(Debug, Clone, PartialEq)]
pub struct RouteOpts {
    pub receiver: String,
    /// Sorted label names; ignored when `group_by_all`.
    pub group_by: Vec<String>,
    /// `group_by: ['...']`: one group per label set.
    pub group_by_all: bool,
    pub group_wait_ms: i64,
    pub group_interval_ms: i64,
    pub repeat_interval_ms: i64,
    /// Not inherited, as in Alertmanager.
    pub mute_time_intervals: Vec<String>,
    pub active_time_intervals: Vec<String>,
}

impl Default for RouteOpts {
    fn default() -> Self {
        RouteOpts {
            receiver: String::new(),
            group_by: Vec::new(),
            group_by_all: false,
            group_wait_ms: 30_000,
            group_interval_ms: 300_000,
            repeat_interval_ms: 4 * 3_600_000,
            mute_time_intervals: Vec::new(),
            active_time_intervals: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Route {
    /// Position in a pre-order walk: tells apart routes whose keys are equal.
    pub id: usize,
    /// `{}` for the root, `{}/{team="db"}` for a child: the first half of group keys.
    pub key: String,
    pub matchers: Vec<Matcher>,
    pub continue_: bool,
    pub opts: RouteOpts,
    pub routes: Vec<Route>,
}

impl Route {
    /// Builds a node; `matchers` are sorted as Alertmanager sorts them, since the key shows them.
    pub fn new(
        mut matchers: Vec<Matcher>,
        continue_: bool,
        opts: RouteOpts,
        parent_key: Option<&str>,
    ) -> Route {
        matchers.sort_by(|a, b| (&a.name, &a.value, a.op).cmp(&(&b.name, &b.value, b.op)));
        let own = matchers_string(&matchers);
        let key = match parent_key {
            Some(p) => format!("{p}/{own}"),
            None => own,
        };
        Route {
            id: 0,
            key,
            matchers,
            continue_,
            opts,
            routes: Vec::new(),
        }
    }

    /// Numbers the nodes in pre-order.
    pub fn number(&mut self) {
        fn walk(r: &mut Route, next: &mut usize) {
            r.id = *next;
            *next += 1;
            for c in &mut r.routes {
                walk(c, next);
            }
        }
        walk(self, &mut 0);
    }

    /// The routes an alert with these labels lands in, in tree order.
    pub fn matches<'a, L: LabelSource + ?Sized>(&'a self, labels: &L) -> Vec<&'a Route> {
        let mut out = Vec::new();
        self.collect(labels, &mut out);
        out
    }

    fn collect<'a, L: LabelSource + ?Sized>(
        &'a self,
        labels: &L,
        out: &mut Vec<&'a Route>,
    ) -> bool {
        if !self.matchers.iter().all(|m| m.matches(labels)) {
            return false;
        }
        let before = out.len();
        for child in &self.routes {
            if child.collect(labels, out) && !child.continue_ {
                break;
            }
        }
        if out.len() == before {
            out.push(self);
        }
        true
    }

    /// The labels an alert is grouped by on this route.
    pub fn group_labels(&self, labels: &LabelSet) -> BTreeMap<String, String> {
        if self.opts.group_by_all {
            return labels.to_map();
        }
        self.opts
            .group_by
            .iter()
            .filter_map(|k| {
                labels
                    .get(k)
                    .filter(|v| !v.is_empty())
                    .map(|v| (k.clone(), v.to_string()))
            })
            .collect()
    }

    /// Every node, pre-order.
    pub fn walk(&self) -> Vec<&Route> {
        let mut out = vec![self];
        for c in &self.routes {
            out.extend(c.walk());
        }
        out
    }
}
