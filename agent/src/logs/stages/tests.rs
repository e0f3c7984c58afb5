use std::sync::Arc;

use super::*;
use crate::logs::config::Config;

fn pipeline(stages_yaml: &str) -> (Pipeline, Arc<Stats>) {
    let text = format!(
        "clients: [{{url: 'http://127.0.0.1:1/loki/api/v1/push'}}]\nscrape_configs:\n  - job_name: t\n    static_configs: [{{labels: {{__path__: /x}}}}]\n    pipeline_stages:\n{stages_yaml}"
    );
    let cfg = Config::parse("t.yaml", &text).expect("config");
    let stats = Arc::new(Stats::default());
    let p = Pipeline::new(
        "t",
        &cfg.scrape_configs[0].value.pipeline_stages,
        "t.yaml",
        &stats,
    )
    .expect("pipeline");
    (p, stats)
}

fn entry(line: &str) -> Entry {
    Entry {
        labels: Labels::from_pairs(vec![("job".into(), "t".into())]),
        ts: 1,
        line: line.into(),
        ..Entry::default()
    }
}

fn run1(p: &mut Pipeline, line: &str) -> Vec<Entry> {
    let mut out = Vec::new();
    p.process(entry(line), &mut out);
    out
}

#[test]
fn regex_labels_timestamp_output() {
    let (mut p, _) = pipeline(
        r#"      - regex:
          expression: '^(?P<ts>\S+) (?P<level>\w+) (?P<msg>.*)$'
      - labels:
          level:
      - timestamp:
          source: ts
          format: RFC3339Nano
      - output:
          source: msg
"#,
    );
    let out = run1(&mut p, "2026-11-24T10:00:00.5Z warn disk almost full");
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].labels.get("level"), Some("warn"));
    assert_eq!(out[0].ts, 1_795_514_400_500_000_000);
    assert_eq!(out[0].line, "disk almost full");
}

#[test]
fn json_logfmt_static_drop_allow() {
    let (mut p, stats) = pipeline(
        r#"      - json:
          expressions:
            lvl: level
            user: ctx.user
      - labels: {lvl: }
      - static_labels: {env: prod}
      - labelallow: [lvl, env]
      - drop:
          source: user
          value: bot
          drop_counter_reason: bots
"#,
    );
    let out = run1(&mut p, r#"{"level":"info","ctx":{"user":"ana"}}"#);
    assert_eq!(out[0].labels.render(), r#"{env="prod", lvl="info"}"#);
    assert!(run1(&mut p, r#"{"level":"info","ctx":{"user":"bot"}}"#).is_empty());
    assert_eq!(stats.dropped_lines("bots"), 1);
    let (mut p, _) = pipeline(
        "      - logfmt:\n          mapping: {level: , d: duration}\n      - labels: {level: }\n",
    );
    let out = run1(&mut p, "level=error duration=3s msg=\"x y\"");
    assert_eq!(out[0].labels.get("level"), Some("error"));
    assert_eq!(out[0].extracted.get("d").map(String::as_str), Some("3s"));
}

#[test]
fn match_drop_and_nested_stages() {
    let (mut p, stats) = pipeline(
        r#"      - regex: {expression: '^(?P<level>\w+)'}
      - labels: {level: }
      - match:
          selector: '{level="debug"}'
          action: drop
      - match:
          selector: '{level="error"} |= "db"'
          stages:
            - static_labels: {team: data}
"#,
    );
    assert!(run1(&mut p, "debug noise").is_empty());
    assert_eq!(stats.dropped_lines("match_stage"), 1);
    assert_eq!(
        run1(&mut p, "error db down")[0].labels.get("team"),
        Some("data")
    );
    assert_eq!(run1(&mut p, "error web down")[0].labels.get("team"), None);
}

#[test]
fn multiline_joins_until_next_first_line_or_deadline() {
    let (mut p, _) = pipeline(
        "      - multiline:\n          firstline: '^\\d{4}-'\n          max_wait_time: 3s\n",
    );
    assert!(run1(&mut p, "2026-11-24 panic").is_empty());
    assert!(run1(&mut p, "  at frame 1").is_empty());
    assert!(p.has_pending());
    let out = run1(&mut p, "2026-11-24 next");
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].line, "2026-11-24 panic\n  at frame 1");
    let mut out = Vec::new();
    p.flush_due(Instant::now(), false, &mut out);
    assert!(out.is_empty(), "not due yet");
    p.flush_due(Instant::now() + Duration::from_secs(4), false, &mut out);
    assert_eq!(out[0].line, "2026-11-24 next");
    assert!(!p.has_pending());
}

#[test]
fn template_metrics_limit_and_cri() {
    let (mut p, stats) = pipeline(
        r#"      - regex: {expression: '^(?P<level>\w+) (?P<took>[\d.]+)'}
      - template:
          source: level
          template: '{{ ToUpper .Value }}'
      - labels: {level: }
      - metrics:
          lines_total:
            type: Counter
            description: lines
            config: {match_all: true, action: inc}
          took_seconds:
            type: Histogram
            source: took
            config: {buckets: [0.1, 1]}
"#,
    );
    let out = run1(&mut p, "warn 0.5");
    assert_eq!(out[0].labels.get("level"), Some("WARN"));
    run1(&mut p, "warn 2");
    let fams = stats.families();
    let mut text = Vec::new();
    vigie_exposition::Format::Text.encode(&fams, &mut text);
    let text = String::from_utf8(text).expect("utf8");
    assert!(
        text.contains("promtail_custom_lines_total{job=\"t\",level=\"WARN\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("promtail_custom_took_seconds_bucket{job=\"t\",level=\"WARN\",le=\"1\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("promtail_custom_took_seconds_count{job=\"t\",level=\"WARN\"} 2"),
        "{text}"
    );

    let (mut p, stats) = pipeline("      - limit: {rate: 1, burst: 2, drop: true}\n");
    let kept: usize = (0..5).map(|_| run1(&mut p, "x").len()).sum();
    assert_eq!(kept, 2);
    assert_eq!(stats.dropped_lines("limit_stage"), 3);

    let (mut p, _) = pipeline("      - cri: {}\n");
    assert!(run1(&mut p, "2026-11-24T10:00:00Z stdout P part one ").is_empty());
    let out = run1(&mut p, "2026-11-24T10:00:00.1Z stdout F and two");
    assert_eq!(out[0].line, "part one and two");
    assert_eq!(out[0].labels.get("stream"), Some("stdout"));
}
