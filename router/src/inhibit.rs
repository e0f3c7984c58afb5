//! Inhibition: a firing source alert mutes target alerts that share its `equal` labels. Sources
//! are indexed per rule as alerts arrive, so a check at flush time looks at a rule's sources
//! only, never at every alert.

use std::collections::HashMap;
use std::sync::Arc;

use crate::labelset::LabelSource;
use crate::matcher::{Matcher, matches_all};
use crate::provider::Alert;

#[derive(Debug, Clone)]
pub struct InhibitRule {
    pub name: String,
    pub source: Vec<Matcher>,
    pub target: Vec<Matcher>,
    pub equal: Vec<String>,
}

#[derive(Debug, Default)]
pub struct Inhibitor {
    rules: Vec<InhibitRule>,
    /// Per rule: the alerts matching its source side, by fingerprint.
    sources: Vec<HashMap<u64, Arc<Alert>>>,
}

impl Inhibitor {
    pub fn new(rules: Vec<InhibitRule>) -> Inhibitor {
        let sources = rules.iter().map(|_| HashMap::new()).collect();
        Inhibitor { rules, sources }
    }

    /// Records an alert (new or updated) as a source for the rules it matches.
    pub fn observe(&mut self, alert: &Arc<Alert>) {
        for (rule, cache) in self.rules.iter().zip(&mut self.sources) {
            if matches_all(&rule.source, &alert.labels) {
                cache.insert(alert.fingerprint(), alert.clone());
            }
        }
    }

    /// The fingerprints of the firing alerts that inhibit these labels, sorted.
    pub fn mutes<L: LabelSource + ?Sized>(&self, labels: &L, now: i64) -> Vec<u64> {
        let mut by = Vec::new();
        for (rule, cache) in self.rules.iter().zip(&self.sources) {
            if !matches_all(&rule.target, labels) {
                continue;
            }
            // An alert matching both sides is not inhibited by others that also match both.
            let two_sided = matches_all(&rule.source, labels);
            for (fp, src) in cache {
                if src.resolved_at(now) || (two_sided && matches_all(&rule.target, &src.labels)) {
                    continue;
                }
                let equal = rule
                    .equal
                    .iter()
                    .all(|l| src.labels.get(l).unwrap_or("") == labels.label(l).unwrap_or(""));
                if equal {
                    by.push(*fp);
                }
            }
        }
        by.sort_unstable();
        by.dedup();
        by
    }

    /// Forgets resolved sources.
    pub fn gc(&mut self, now: i64) {
        for cache in &mut self.sources {
            cache.retain(|_, a| !a.resolved_at(now));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matcher::parse_matchers;

    fn alert(pairs: &[(&str, &str)], ends_at: i64) -> Arc<Alert> {
        Arc::new(Alert {
            labels: pairs.iter().copied().collect(),
            annotations: Default::default(),
            starts_at: 1,
            ends_at,
            updated_at: 1,
            generator_url: "".into(),
            timeout: false,
        })
    }

    #[test]
    fn source_mutes_target_with_equal_labels() {
        let mut inh = Inhibitor::new(vec![InhibitRule {
            name: String::new(),
            source: parse_matchers("severity=critical").expect("valid"),
            target: parse_matchers("severity=warning").expect("valid"),
            equal: vec!["cluster".into()],
        }]);
        let crit = alert(
            &[
                ("alertname", "Down"),
                ("severity", "critical"),
                ("cluster", "a"),
            ],
            100,
        );
        inh.observe(&crit);
        let warn_a = alert(
            &[
                ("alertname", "Slow"),
                ("severity", "warning"),
                ("cluster", "a"),
            ],
            100,
        );
        let warn_b = alert(
            &[
                ("alertname", "Slow"),
                ("severity", "warning"),
                ("cluster", "b"),
            ],
            100,
        );
        assert_eq!(inh.mutes(&warn_a.labels, 50), vec![crit.fingerprint()]);
        assert!(inh.mutes(&warn_b.labels, 50).is_empty());
        // Once the source resolves it mutes nothing.
        assert!(inh.mutes(&warn_a.labels, 100).is_empty());
    }

    #[test]
    fn two_sided_alerts_do_not_inhibit_each_other() {
        let mut inh = Inhibitor::new(vec![InhibitRule {
            name: String::new(),
            source: parse_matchers("team=db").expect("valid"),
            target: parse_matchers("team=db").expect("valid"),
            equal: vec![],
        }]);
        let a = alert(&[("alertname", "A"), ("team", "db")], 100);
        let b = alert(&[("alertname", "B"), ("team", "db")], 100);
        inh.observe(&a);
        inh.observe(&b);
        assert!(inh.mutes(&a.labels, 1).is_empty());
    }
}
