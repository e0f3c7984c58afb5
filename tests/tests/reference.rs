//! The configuration reference (`docs/configuration.md`) and the command-line reference
//! (`docs/cli.md`) cannot drift from the code.
//!
//! Configuration: every section of every file format is probed with an unknown key; the parser's
//! refusal lists the keys the code accepts there, and the reference's table for that section must
//! list exactly those. Command line: each binary's `--help` must be the text in `docs/cli.md`.
//!
//! `VIGIE_UPDATE_DOCS=1 cargo test -p vigie-e2e --test reference` rewrites the key tables (keeping
//! every description already written, adding new keys with an empty one, dropping removed keys)
//! and the `--help` blocks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use vigie_e2e::{bin, root};

const PROBE: &str = "zz_reference_probe";

/// How a section is reached: the file format and a document that puts the probe key there.
struct Section {
    name: &'static str,
    format: Format,
    yaml: String,
}

#[derive(Clone, Copy, PartialEq)]
enum Format {
    /// `vigie-router --config.file` (and `vigie up --config.file`).
    Router,
    /// `vigie-agent --config.file`: Promtail's format.
    Logs,
    /// `vigie-agent --web.config.file`: the exporter toolkit's format.
    Web,
}

fn sections() -> Vec<Section> {
    let p = format!("{PROBE}: 1");
    let mut out = Vec::new();
    let mut add =
        |name: &'static str, format: Format, yaml: String| out.push(Section { name, format, yaml });
    use Format::{Logs, Router, Web};
    let recv = |inner: &str| format!("route: {{receiver: a}}\nreceivers: [{{name: a, {inner}}}]\n");
    add("router", Router, format!("{p}\n"));
    add("global", Router, format!("global: {{{p}}}\n"));
    add(
        "scrape_configs[]",
        Router,
        format!("scrape_configs: [{{{p}, job_name: a}}]\n"),
    );
    add(
        "static_configs[]",
        Router,
        format!("scrape_configs: [{{job_name: a, static_configs: [{{{p}}}]}}]\n"),
    );
    add(
        "file_sd_configs[]",
        Router,
        format!("scrape_configs: [{{job_name: a, file_sd_configs: [{{{p}}}]}}]\n"),
    );
    add(
        "basic_auth",
        Router,
        format!("scrape_configs: [{{job_name: a, basic_auth: {{{p}}}}}]\n"),
    );
    add(
        "tls_config",
        Router,
        format!("scrape_configs: [{{job_name: a, tls_config: {{{p}}}}}]\n"),
    );
    add(
        "remote_query",
        Router,
        format!("remote_query: {{{p}, url: 'http://a'}}\n"),
    );
    add("alerting", Router, format!("alerting: {{{p}}}\n"));
    add(
        "alertmanagers[]",
        Router,
        format!("alerting: {{alertmanagers: [{{{p}}}]}}\n"),
    );
    add(
        "route",
        Router,
        format!("route: {{{p}, receiver: a}}\nreceivers: [{{name: a}}]\n"),
    );
    add("receivers[]", Router, recv(&p));
    add("limit", Router, recv(&format!("limit: {{{p}}}")));
    add(
        "http_config",
        Router,
        recv(&format!(
            "webhook_configs: [{{url: 'http://a', http_config: {{{p}}}}}]"
        )),
    );
    for (name, key) in [
        ("webhook_configs[]", "webhook_configs"),
        ("email_configs[]", "email_configs"),
        ("slack_configs[]", "slack_configs"),
        ("mattermost_configs[]", "mattermost_configs"),
        ("msteamsv2_configs[]", "msteamsv2_configs"),
        ("discord_configs[]", "discord_configs"),
        ("telegram_configs[]", "telegram_configs"),
        ("matrix_configs[]", "matrix_configs"),
        ("googlechat_configs[]", "googlechat_configs"),
        ("twilio_configs[]", "twilio_configs"),
        ("ovh_configs[]", "ovh_configs"),
        ("vonage_configs[]", "vonage_configs"),
        ("freemobile_configs[]", "freemobile_configs"),
        ("sms_configs[]", "sms_configs"),
        ("outbox_configs[]", "outbox_configs"),
    ] {
        add(name, Router, recv(&format!("{key}: [{{{p}}}]")));
    }
    add(
        "inhibit_rules[]",
        Router,
        format!("inhibit_rules: [{{{p}}}]\n"),
    );
    add(
        "time_intervals[]",
        Router,
        format!("time_intervals: [{{{p}, name: a}}]\n"),
    );
    add(
        "time_intervals[].time_intervals[]",
        Router,
        format!("time_intervals: [{{name: a, time_intervals: [{{{p}}}]}}]\n"),
    );
    add(
        "times[]",
        Router,
        format!("time_intervals: [{{name: a, time_intervals: [{{times: [{{{p}}}]}}]}}]\n"),
    );
    add("oncall", Router, format!("oncall: {{{p}}}\n"));
    add(
        "people.NAME",
        Router,
        format!("oncall: {{people: {{alice: {{{p}}}}}}}\n"),
    );
    add(
        "schedules[]",
        Router,
        format!("oncall: {{schedules: [{{{p}, name: s}}]}}\n"),
    );
    add(
        "layers[]",
        Router,
        format!("oncall: {{schedules: [{{name: s, layers: [{{{p}}}]}}]}}\n"),
    );
    add(
        "restrictions[]",
        Router,
        format!("oncall: {{schedules: [{{name: s, layers: [{{restrictions: [{{{p}}}]}}]}}]}}\n"),
    );
    add(
        "overrides[]",
        Router,
        format!("oncall: {{schedules: [{{name: s, overrides: [{{{p}}}]}}]}}\n"),
    );
    add(
        "escalation_policies[]",
        Router,
        format!("oncall: {{escalation_policies: [{{{p}, name: e}}]}}\n"),
    );
    add(
        "steps[]",
        Router,
        format!("oncall: {{escalation_policies: [{{name: e, steps: [{{{p}}}]}}]}}\n"),
    );
    add(
        "notify[]",
        Router,
        format!("oncall: {{escalation_policies: [{{name: e, steps: [{{notify: [{{{p}}}]}}]}}]}}\n"),
    );
    add(
        "notices[]",
        Router,
        format!("oncall: {{notices: [{{{p}}}]}}\n"),
    );

    add("logs", Logs, format!("{p}\n"));
    add("server", Logs, format!("server: {{{p}}}\n"));
    add("clients[]", Logs, format!("clients: [{{{p}}}]\n"));
    add(
        "backoff_config",
        Logs,
        format!("clients: [{{backoff_config: {{{p}}}}}]\n"),
    );
    add("positions", Logs, format!("positions: {{{p}}}\n"));
    add("spool", Logs, format!("spool: {{{p}}}\n"));
    add("target_config", Logs, format!("target_config: {{{p}}}\n"));
    add("limits_config", Logs, format!("limits_config: {{{p}}}\n"));
    add(
        "logs scrape_configs[]",
        Logs,
        format!("scrape_configs: [{{{p}, job_name: a}}]\n"),
    );
    add(
        "logs static_configs[]",
        Logs,
        format!("scrape_configs: [{{job_name: a, static_configs: [{{{p}}}]}}]\n"),
    );
    add(
        "journal",
        Logs,
        format!("scrape_configs: [{{job_name: a, journal: {{{p}}}}}]\n"),
    );
    add(
        "relabel_configs[]",
        Logs,
        format!("scrape_configs: [{{job_name: a, relabel_configs: [{{{p}}}]}}]\n"),
    );
    add(
        "pipeline_stages[]",
        Logs,
        format!("scrape_configs: [{{job_name: a, pipeline_stages: [{{{p}}}]}}]\n"),
    );
    for (name, stage) in [
        ("regex", "regex"),
        ("json", "json"),
        ("logfmt", "logfmt"),
        ("replace", "replace"),
        ("timestamp", "timestamp"),
        ("output", "output"),
        ("drop", "drop"),
        ("multiline", "multiline"),
        ("limit (stage)", "limit"),
        ("match", "match"),
        ("template", "template"),
        ("tenant", "tenant"),
        ("cri", "cri"),
    ] {
        add(
            name,
            Logs,
            format!("scrape_configs: [{{job_name: a, pipeline_stages: [{{{stage}: {{{p}}}}}]}}]\n"),
        );
    }
    add(
        "metrics.NAME",
        Logs,
        format!(
            "scrape_configs: [{{job_name: a, pipeline_stages: [{{metrics: {{m: {{{p}}}}}}}]}}]\n"
        ),
    );
    add(
        "metrics.NAME.config",
        Logs,
        format!(
            "scrape_configs: [{{job_name: a, pipeline_stages: [{{metrics: {{m: {{type: Counter, config: {{{p}}}}}}}}}]}}]\n"
        ),
    );

    add("web", Web, format!("{p}\n"));
    add(
        "tls_server_config",
        Web,
        format!("tls_server_config: {{{p}}}\n"),
    );
    add(
        "http_server_config",
        Web,
        format!("http_server_config: {{{p}}}\n"),
    );
    out
}

/// The keys the code accepts where the probe sits, from the parser's refusal.
fn accepted(s: &Section, dir: &Path) -> Vec<String> {
    let path = dir.join("probe.yml");
    std::fs::write(&path, &s.yaml).expect("write probe");
    let err = match s.format {
        Format::Router => match vigie_router::config::Config::load(&path) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        },
        Format::Logs => match vigie_agent::logs::config::Config::load(&path, false) {
            Ok(_) => String::new(),
            Err(e) => format!("{e:#}"),
        },
        Format::Web => match vigie_agent::web::config::WebConfig::load(&path) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        },
    };
    let at = err
        .find(&format!("`{PROBE}`, expected one of "))
        .or_else(|| err.find(&format!("`{PROBE}`, expected ")))
        .unwrap_or_else(|| {
            panic!(
                "{}: the probe was not refused as unknown:\n{}\n{err}",
                s.name, s.yaml
            )
        });
    let list = &err[at + PROBE.len() + 2..];
    let list = list
        .trim_start_matches(", expected one of ")
        .trim_start_matches(", expected ");
    let list = list.lines().next().unwrap_or_default();
    let mut keys: Vec<String> = list
        .split(", ")
        .map(|k| {
            k.trim()
                .trim_matches('`')
                .trim_end_matches(['.', ')'])
                .to_string()
        })
        .filter(|k| !k.is_empty() && !k.contains(' '))
        .collect();
    keys.sort();
    keys.dedup();
    assert!(!keys.is_empty(), "{}: no keys in {err}", s.name);
    keys
}

fn doc_path(name: &str) -> PathBuf {
    root().join("docs").join(name)
}

/// The reference's sections: heading name → (key → description), in file order.
fn read_tables(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("### `") {
            current = Some(h.trim_end_matches('`').to_string());
            out.entry(h.trim_end_matches('`').to_string()).or_default();
        } else if let (Some(c), Some(row)) = (&current, line.strip_prefix("| `")) {
            if let Some((key, rest)) = row.split_once('`') {
                let desc = rest
                    .trim_start_matches(" |")
                    .trim_end_matches('|')
                    .trim()
                    .to_string();
                out.entry(c.clone())
                    .or_default()
                    .insert(key.to_string(), desc);
            }
        } else if line.starts_with("## ") || line.starts_with("### ") {
            current = None;
        }
    }
    out
}

/// The reference with each section's table rewritten to `keys`, descriptions kept.
fn rewrite(text: &str, accepted: &BTreeMap<&str, Vec<String>>) -> String {
    let old = read_tables(text);
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    let mut seen = Vec::new();
    while let Some(line) = lines.next() {
        out.push_str(line);
        out.push('\n');
        let Some(h) = line.strip_prefix("### `") else {
            continue;
        };
        let name = h.trim_end_matches('`');
        let Some(keys) = accepted.get(name) else {
            continue;
        };
        seen.push(name.to_string());
        // Prose up to the table (or the next heading), then the new table.
        while let Some(l) = lines.peek() {
            if l.starts_with('|') || l.starts_with("## ") || l.starts_with("### ") {
                break;
            }
            out.push_str(l);
            out.push('\n');
            lines.next();
        }
        while lines.peek().is_some_and(|l| l.starts_with('|')) {
            lines.next();
        }
        out.push_str(&table(keys, old.get(name)));
    }
    for (name, keys) in accepted {
        if !seen.iter().any(|s| s == name) {
            out.push_str(&format!("\n### `{name}`\n\n"));
            out.push_str(&table(keys, None));
        }
    }
    out
}

fn table(keys: &[String], old: Option<&BTreeMap<String, String>>) -> String {
    let mut t = String::from("| key | |\n|---|---|\n");
    for k in keys {
        let d = old.and_then(|o| o.get(k)).map(String::as_str).unwrap_or("");
        t.push_str(&format!("| `{k}` | {d} |\n"));
    }
    t
}

#[test]
fn the_configuration_reference_lists_exactly_the_accepted_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sections = sections();
    let accepted: BTreeMap<&str, Vec<String>> = sections
        .iter()
        .map(|s| (s.name, accepted(s, dir.path())))
        .collect();
    let path = doc_path("configuration.md");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    if std::env::var("VIGIE_UPDATE_DOCS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, rewrite(&text, &accepted)).expect("write reference");
        return;
    }
    let documented = read_tables(&text);
    let mut problems = Vec::new();
    for (name, keys) in &accepted {
        let Some(doc) = documented.get(*name) else {
            problems.push(format!("section `{name}` is missing"));
            continue;
        };
        for k in keys {
            if !doc.contains_key(k) {
                problems.push(format!("`{name}`: `{k}` is accepted but not documented"));
            }
        }
        for k in doc.keys() {
            if !keys.contains(k) {
                problems.push(format!("`{name}`: `{k}` is documented but not accepted"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "docs/configuration.md has drifted from the code:\n{}\n(VIGIE_UPDATE_DOCS=1 cargo test -p vigie-e2e --test reference rewrites the tables)",
        problems.join("\n")
    );
}

/// `--help` of each binary and subcommand, as the binaries print it.
fn helps() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (program, args) in [
        ("vigie", vec!["up", "--help"]),
        ("vigie-agent", vec!["--help"]),
        ("vigie-router", vec!["--help"]),
        ("vigie-router", vec!["run", "--help"]),
        ("vigie-router", vec!["check", "config", "--help"]),
        ("vigie-router", vec!["check", "rules", "--help"]),
        ("vigie-router", vec!["test", "rules", "--help"]),
        ("vigie-router", vec!["test", "routes", "--help"]),
        ("vigie-router", vec!["test", "promql", "--help"]),
        ("vigie-router", vec!["oncall", "who", "--help"]),
    ] {
        let o = std::process::Command::new(bin(program))
            .args(&args)
            .env("COLUMNS", "100")
            .output()
            .expect("run --help");
        assert!(
            o.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        out.push((
            format!("{program} {}", args.join(" ")),
            String::from_utf8_lossy(&o.stdout).trim_end().to_string(),
        ));
    }
    out
}

#[test]
fn the_command_line_reference_is_each_binarys_help() {
    let mut want = String::from(
        "# Command-line reference\n\n\
         Each binary's `--help`, as it prints it; `tests/tests/reference.rs` checks that this file\n\
         is exactly that (`VIGIE_UPDATE_DOCS=1 cargo test -p vigie-e2e --test reference`\n\
         rewrites it). The configuration files are in `configuration.md`.\n",
    );
    for (cmd, help) in helps() {
        want.push_str(&format!("\n## `{cmd}`\n\n```text\n{help}\n```\n"));
    }
    let path = doc_path("cli.md");
    if std::env::var("VIGIE_UPDATE_DOCS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &want).expect("write cli.md");
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    if have != want {
        let first = have
            .lines()
            .zip(want.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(have.lines().count().min(want.lines().count()));
        panic!(
            "docs/cli.md differs from the binaries' --help from line {}:\n  doc:    {:?}\n  binary: {:?}\n(VIGIE_UPDATE_DOCS=1 cargo test -p vigie-e2e --test reference rewrites it)",
            first + 1,
            have.lines().nth(first),
            want.lines().nth(first)
        );
    }
}
