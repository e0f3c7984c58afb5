//! Prometheus relabeling for log targets (`relabel_configs`): how Promtail users turn
//! `__journal__systemd_unit` into `unit` or drop a target. Regexes are fully anchored, as in
//! Prometheus.

use regex::Regex;

use super::config::RelabelConfig;
use super::entry::Labels;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Action {
    Replace,
    Keep,
    Drop,
    HashMod,
    LabelMap,
    LabelDrop,
    LabelKeep,
    Lowercase,
    Uppercase,
    KeepEqual,
    DropEqual,
}

#[derive(Debug, Clone)]
pub struct Rule {
    source_labels: Vec<String>,
    separator: String,
    regex: Regex,
    modulus: u64,
    target: String,
    replacement: String,
    action: Action,
}

impl Rule {
    pub fn new(c: &RelabelConfig) -> Result<Rule, String> {
        let action = match c
            .action
            .as_deref()
            .unwrap_or("replace")
            .to_ascii_lowercase()
            .as_str()
        {
            "replace" => Action::Replace,
            "keep" => Action::Keep,
            "drop" => Action::Drop,
            "hashmod" => Action::HashMod,
            "labelmap" => Action::LabelMap,
            "labeldrop" => Action::LabelDrop,
            "labelkeep" => Action::LabelKeep,
            "lowercase" => Action::Lowercase,
            "uppercase" => Action::Uppercase,
            "keepequal" => Action::KeepEqual,
            "dropequal" => Action::DropEqual,
            a => return Err(format!("action {a:?}: unknown relabel action")),
        };
        let pattern = c.regex.as_deref().unwrap_or("(.*)");
        let regex = Regex::new(&format!("^(?s:{pattern})$"))
            .map_err(|e| format!("regex {pattern:?}: {e}"))?;
        let target = c.target_label.clone().unwrap_or_default();
        let needs_target = matches!(
            action,
            Action::Replace
                | Action::HashMod
                | Action::Lowercase
                | Action::Uppercase
                | Action::KeepEqual
                | Action::DropEqual
        );
        if needs_target && target.is_empty() {
            return Err(format!("{action:?} action requires target_label").to_lowercase());
        }
        if action == Action::HashMod && c.modulus.unwrap_or(0) == 0 {
            return Err("hashmod action requires a modulus".into());
        }
        Ok(Rule {
            source_labels: c.source_labels.clone(),
            separator: c.separator.clone().unwrap_or_else(|| ";".into()),
            regex,
            modulus: c.modulus.unwrap_or(0),
            target,
            replacement: c.replacement.clone().unwrap_or_else(|| "$1".into()),
            action,
        })
    }
}

/// Applies the rules in order; `None` means a keep/drop rule dropped the target.
pub fn apply(rules: &[Rule], mut labels: Labels) -> Option<Labels> {
    for r in rules {
        let value = r
            .source_labels
            .iter()
            .map(|n| labels.get(n).unwrap_or(""))
            .collect::<Vec<_>>()
            .join(&r.separator);
        match r.action {
            Action::Keep if !r.regex.is_match(&value) => return None,
            Action::Drop if r.regex.is_match(&value) => return None,
            Action::Keep | Action::Drop => {}
            Action::KeepEqual if labels.get(&r.target).unwrap_or("") != value => return None,
            Action::DropEqual if labels.get(&r.target).unwrap_or("") == value => return None,
            Action::KeepEqual | Action::DropEqual => {}
            Action::Replace => {
                if let Some(caps) = r.regex.captures(&value) {
                    let mut target = String::new();
                    caps.expand(&r.target, &mut target);
                    let mut v = String::new();
                    caps.expand(&r.replacement, &mut v);
                    if super::entry::valid_label_name(&target) {
                        labels.set(&target, &v);
                    }
                }
            }
            Action::Lowercase => labels.set(&r.target, &value.to_lowercase()),
            Action::Uppercase => labels.set(&r.target, &value.to_uppercase()),
            Action::HashMod => {
                let digest = md5_prefix(value.as_bytes());
                labels.set(&r.target, &(digest % r.modulus).to_string());
            }
            Action::LabelMap => {
                let pairs = labels.0.clone();
                for (n, v) in pairs {
                    if let Some(caps) = r.regex.captures(&n) {
                        let mut target = String::new();
                        caps.expand(&r.replacement, &mut target);
                        if super::entry::valid_label_name(&target) {
                            labels.set(&target, &v);
                        }
                    }
                }
            }
            Action::LabelDrop => labels.0.retain(|(n, _)| !r.regex.is_match(n)),
            Action::LabelKeep => labels.0.retain(|(n, _)| r.regex.is_match(n)),
        }
    }
    Some(labels)
}

/// Prometheus' hashmod takes the last 8 bytes of the MD5 sum; a stable FNV stands in here,
/// since only the spread matters for sharding log targets.
fn md5_prefix(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for x in b {
        h ^= u64::from(*x);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(yaml: &str) -> Rule {
        let c: RelabelConfig = serde_saphyr::from_str(yaml).expect("yaml");
        Rule::new(&c).expect("rule")
    }

    #[test]
    fn journal_unit_to_label_and_drop() {
        let rules = vec![
            rule("source_labels: [__journal__systemd_unit]\ntarget_label: unit\n"),
            rule("source_labels: [unit]\nregex: 'session-.*'\naction: drop\n"),
            rule("regex: '__journal_(.+)'\naction: labelmap\nreplacement: 'j_$1'\n"),
        ];
        let l = Labels::from_pairs(vec![
            ("__journal__systemd_unit".into(), "ssh.service".into()),
            ("__journal_priority".into(), "6".into()),
        ]);
        let out = apply(&rules, l).expect("kept");
        assert_eq!(out.get("unit"), Some("ssh.service"));
        assert_eq!(out.get("j_priority"), Some("6"));
        let l = Labels::from_pairs(vec![(
            "__journal__systemd_unit".into(),
            "session-3.scope".into(),
        )]);
        assert!(apply(&rules, l).is_none());
    }
}
