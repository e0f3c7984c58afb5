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
    let mut r = Report::new();
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
            Err(e) => r.failed(&e.0),
        }
        r.stdout.push('\n');
    }
    r
}

impl Report {
    fn new() -> Self {
        Report {
            stdout: String::new(),
            stderr: String::new(),
            code: 0,
        }
    }

    /// promtool's failure block: `  FAILED:` then one line per error, on stderr; exit 1.
    fn failed(&mut self, errors: &[String]) {
        let _ = writeln!(self.stderr, "  FAILED:");
        for line in errors {
            let _ = writeln!(self.stderr, "{line}");
        }
        self.code = 1;
    }
}

/// Checks configuration files like `promtool check config`: the file, then each rule file it names.
pub fn config(paths: &[&Path]) -> Report {
    let mut r = Report::new();
    for path in paths {
        let _ = writeln!(r.stdout, "Checking {}", path.display());
        match crate::config::Config::load(path) {
            Ok(cfg) => {
                let mut files = Vec::new();
                for p in &cfg.rule_files {
                    match crate::rules::file::expand_glob(Path::new(p)) {
                        Ok(found) => files.extend(found),
                        Err(e) => {
                            let _ = writeln!(r.stderr, "  FAILED: {e}");
                            r.code = 1;
                        }
                    }
                }
                let _ = writeln!(r.stdout, "  SUCCESS: {} rule files found", files.len());
                let _ = writeln!(
                    r.stdout,
                    " SUCCESS: {} is valid configuration file syntax\n",
                    path.display()
                );
                if let Some(routing) = &cfg.routing {
                    let _ = writeln!(
                        r.stdout,
                        "Found:\n - route\n - {} inhibit rules\n - {} receivers\n - {} time intervals\n",
                        routing.inhibit_rules.len(),
                        routing.receivers.len(),
                        routing.time_intervals.len()
                    );
                }
                let refs: Vec<&Path> = files.iter().map(|p| p.as_path()).collect();
                let sub = rules(&refs, false, false);
                r.stdout.push_str(&sub.stdout);
                r.stderr.push_str(&sub.stderr);
                if cfg.remote.is_some()
                    && let Err(e) = crate::server::load_rules(&cfg)
                {
                    let _ = writeln!(r.stderr, "  FAILED:\n{e}");
                    r.code = 1;
                }
                r.code = r.code.max(sub.code);
            }
            Err(e) => {
                r.failed(&e.0);
                r.stdout.push('\n');
            }
        }
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

/// `test routes`: the receivers an alert with these labels reaches, comma-separated in tree
/// order (as `amtool config routes test`); with `verify`, exit 1 when they differ.
pub fn routes(path: &Path, labels: &[String], verify: Option<&str>, tree: bool) -> Report {
    let mut r = Report::new();
    let cfg = match crate::config::Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            r.failed(&e.0);
            return r;
        }
    };
    let Some(routing) = &cfg.routing else {
        let _ = writeln!(
            r.stderr,
            "{}: no route in the configuration",
            path.display()
        );
        r.code = 1;
        return r;
    };
    let mut set = BTreeMap::new();
    for l in labels {
        match crate::matcher::parse_matchers(l) {
            Ok(ms) => {
                for m in ms {
                    if m.op != crate::matcher::Op::Equal {
                        let _ = writeln!(r.stderr, "{l}: only label=value pairs describe an alert");
                        r.code = 1;
                        return r;
                    }
                    set.insert(m.name, m.value);
                }
            }
            Err(e) => {
                let _ = writeln!(r.stderr, "{l}: {e}");
                r.code = 1;
                return r;
            }
        }
    }
    if tree {
        let _ = writeln!(r.stdout, "Routing tree:");
        print_tree(&routing.route, "", true, true, &mut r.stdout);
        r.stdout.push('\n');
    }
    let receivers: Vec<&str> = routing
        .route
        .matches(&set)
        .iter()
        .map(|n| n.opts.receiver.as_str())
        .collect();
    let slug = receivers.join(",");
    let _ = writeln!(r.stdout, "{slug}");
    if let Some(want) = verify
        && want != slug
    {
        let _ = writeln!(
            r.stdout,
            "WARNING: Expected receivers did not match resolved receivers."
        );
        r.code = 1;
    }
    r
}

fn print_tree(
    n: &crate::dispatch::route::Route,
    prefix: &str,
    last: bool,
    root: bool,
    out: &mut String,
) {
    let branch = if root {
        ""
    } else if last {
        "└── "
    } else {
        "├── "
    };
    let own = n.key.rsplit('/').next().unwrap_or("{}");
    let name = if root { "default-route" } else { own };
    let cont = if n.continue_ { "  continue: true" } else { "" };
    let _ = writeln!(
        out,
        "{prefix}{branch}{name}  receiver: {}{cont}",
        n.opts.receiver
    );
    let child_prefix = if root {
        String::new()
    } else {
        format!("{prefix}{}", if last { "    " } else { "│   " })
    };
    for (i, c) in n.routes.iter().enumerate() {
        print_tree(c, &child_prefix, i + 1 == n.routes.len(), false, out);
    }
}
