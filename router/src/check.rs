//! `vigie-router check rules`: promtool's report format and exit codes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::rules::file::{self, RuleKind};

/// The outcome of checking files: text for stdout and stderr, and the exit code.
pub struct Report {
    pub stdout: String,
    pub stderr: String,
    pub code: u8,
}

/// Checks rule files like `promtool check rules`: exit 0 when all load, 1 on any error, 3 when
/// `lint_fatal` and a lint (duplicate recording rules) fired.
pub fn rules(paths: &[&Path], lint: bool, lint_fatal: bool) -> Report {
    let mut r = Report {
        stdout: String::new(),
        stderr: String::new(),
        code: 0,
    };
    for path in paths {
        let _ = writeln!(r.stdout, "Checking {}", path.display());
        match file::load(path) {
            Ok(f) => {
                let _ = writeln!(r.stdout, "  SUCCESS: {} rules found", f.rule_count());
                if lint {
                    let dups = duplicates(&f);
                    if !dups.is_empty() {
                        let _ = writeln!(
                            r.stdout,
                            "  WARNING: {} duplicate rule(s) found.",
                            dups.len()
                        );
                        for (name, labels) in dups {
                            let _ = writeln!(r.stdout, "Metric: {name}\nLabel(s):");
                            for (k, v) in labels {
                                let _ = writeln!(r.stdout, "\t{k}: {v}");
                            }
                        }
                        let _ = writeln!(
                            r.stdout,
                            "Might cause inconsistency while recording expressions."
                        );
                        if lint_fatal && r.code == 0 {
                            r.code = 3;
                        }
                    }
                }
            }
            Err(e) => {
                let _ = writeln!(r.stderr, "  FAILED:");
                for line in &e.0 {
                    let _ = writeln!(r.stderr, "{line}");
                }
                r.code = 1;
            }
        }
        r.stdout.push('\n');
    }
    r
}

/// Recording rules with the same name and labels, which would overwrite each other.
fn duplicates(f: &file::RuleFile) -> Vec<(String, Vec<(String, String)>)> {
    let mut seen: BTreeMap<(String, Vec<(String, String)>), usize> = BTreeMap::new();
    for g in &f.groups {
        for rule in &g.rules {
            if matches!(rule.kind, RuleKind::Recording) {
                let mut labels = rule.labels.clone();
                labels.sort();
                *seen.entry((rule.name.clone(), labels)).or_default() += 1;
            }
        }
    }
    seen.into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(k, _)| k)
        .collect()
}
