use std::collections::BTreeMap;

use super::*;
use crate::notify::{Data, DataAlert};

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn alert(status: &'static str, l: &[(&str, &str)], a: &[(&str, &str)]) -> DataAlert {
    DataAlert {
        status,
        labels: labels(l),
        annotations: labels(a),
        starts_at: "2026-11-24T03:58:00Z".into(),
        ends_at: "0001-01-01T00:00:00Z".into(),
        generator_url: "http://prom/graph?g0.expr=up".into(),
        fingerprint: "3f2a9c0d1b7e4a55".into(),
        starts_ns: 1_763_956_680_000_000_000,
        ends_ns: if status == "resolved" {
            1_763_957_000_000_000_000
        } else {
            0
        },
    }
}

pub(crate) fn sample() -> Data {
    Data {
        receiver: "db-oncall".into(),
        status: "firing",
        alerts: vec![
            alert(
                "firing",
                &[
                    ("alertname", "DiskFull"),
                    ("instance", "db01"),
                    ("severity", "critical"),
                    ("team", "db"),
                ],
                &[
                    ("summary", "Disk almost full"),
                    ("runbook_url", "https://runbooks/disk"),
                ],
            ),
            alert(
                "resolved",
                &[
                    ("alertname", "DiskFull"),
                    ("instance", "db02"),
                    ("severity", "critical"),
                    ("team", "db"),
                ],
                &[("summary", "Disk almost full")],
            ),
        ],
        group_labels: labels(&[("alertname", "DiskFull")]),
        common_labels: labels(&[
            ("alertname", "DiskFull"),
            ("severity", "critical"),
            ("team", "db"),
        ]),
        common_annotations: labels(&[("summary", "Disk almost full")]),
        external_url: "http://router:9093".into(),
        group_key: "{}:{alertname=\"DiskFull\"}".into(),
    }
}

fn render(src: &str) -> String {
    let mut b = Templates::defaults();
    let f = b.field(src).unwrap_or_else(|e| panic!("{src}: {e}"));
    let t = b.finish();
    t.text(&f, &value(&sample(), &|v| v.to_string()))
        .unwrap_or_else(|e| panic!("{src}: {e}"))
}

#[test]
fn alertmanager_methods_work_on_the_data_model() {
    assert_eq!(
        render("{{ len .Alerts.Firing }}/{{ len .Alerts.Resolved }}"),
        "1/1"
    );
    assert_eq!(
        render("{{ range .CommonLabels.SortedPairs }}{{ .Name }}={{ .Value }};{{ end }}"),
        "alertname=DiskFull;severity=critical;team=db;"
    );
    assert_eq!(
        render("{{ .CommonLabels.Remove .GroupLabels.Names | len }}"),
        "2"
    );
    assert_eq!(
        render(
            "{{ with .CommonLabels.Remove .GroupLabels.Names }}{{ .Values | join \" \" }}{{ end }}"
        ),
        "critical db"
    );
    assert_eq!(
        render(
            "{{ range .Alerts.Firing }}{{ .Labels.instance }} {{ .StartsAt.Format \"15:04\" }}{{ end }}"
        ),
        "db01 03:58"
    );
    assert_eq!(
        render("{{ (index .Alerts 0).StartsAt }}"),
        "2025-11-24 03:58:00 +0000 UTC"
    );
    assert_eq!(
        render(
            "{{ $a := .Alerts.Firing }}{{ range $a }}{{ .Labels.SortedPairs.Names | join \",\" }}{{ end }}"
        ),
        "alertname,instance,severity,team"
    );
}

#[test]
fn alertmanager_functions() {
    assert_eq!(
        render("{{ \"disk\" | toUpper }} {{ title \"hello world\" }}"),
        "DISK Hello World"
    );
    assert_eq!(
        render("{{ reReplaceAll \"(db)0(.)\" \"$1-$2\" \"db01\" }}"),
        "db-1"
    );
    assert_eq!(
        render("{{ match \"db.*\" \"db01\" }} {{ match \"b0\" \"db01\" }}"),
        "true false"
    );
    assert_eq!(render("{{ stringSlice \"a\" \"b\" | join \"+\" }}"), "a+b");
    assert_eq!(
        render("{{ (index .Alerts 0).StartsAt | date \"2006-01-02T15:04Z07:00\" }}"),
        "2025-11-24T03:58Z"
    );
    assert_eq!(
        render("{{ (index .Alerts 0).StartsAt | tz \"Europe/Paris\" | date \"15:04 MST\" }}"),
        "03:58 UTC",
        "date formats in UTC unless tz gave the zone"
    );
    assert_eq!(render("{{ humanizeDuration 3661 }}"), "1h 1m 1s");
    assert_eq!(render("{{ dict \"a\" 1 | toJson }}"), r#"{"a":1}"#);
    assert_eq!(render("{{ trimSpace \"  x \" }}"), "x");
}

#[test]
fn default_templates_read_well() {
    let subject = render("{{ template \"__subject\" . }}");
    assert_eq!(subject, "[FIRING:1] DiskFull (critical db)");
    let text = render("{{ template \"slack.default.text\" . }}");
    assert!(
        text.contains("Disk almost full on db01 [critical]"),
        "{text}"
    );
    assert!(text.contains("since Nov 24 03:58 UTC"), "{text}");
    assert!(text.contains("Runbook: https://runbooks/disk"), "{text}");
    assert!(
        text.contains("Resolved:\nDisk almost full on db02"),
        "{text}"
    );
    assert!(
        text.ends_with("Open: http://router:9093/ui/alerts?filter=alertname%3D%22DiskFull%22"),
        "{text}"
    );
}

#[test]
fn user_files_redefine_defaults_and_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("mine.tmpl");
    std::fs::write(
        &f,
        "{{ define \"slack.default.title\" }}custom {{ .Status }}{{ end }}",
    )
    .unwrap();
    let mut b = Builder::new(std::slice::from_ref(&f)).unwrap();
    let field = b.field("{{ template \"slack.default.title\" . }}").unwrap();
    let t = b.finish();
    assert_eq!(
        t.text(&field, &value(&sample(), &|v| v.to_string()))
            .unwrap(),
        "custom firing"
    );
    std::fs::write(&f, "{{ define \"x\" }}{{ .Foo ").unwrap();
    let e = Builder::new(std::slice::from_ref(&f)).err().unwrap();
    assert!(e.contains("mine.tmpl"), "{e}");
    let mut b = Templates::defaults();
    assert!(b.field("{{ nosuchfunc . }}").is_err());
}

#[test]
fn label_values_are_data_never_templates() {
    let mut d = sample();
    d.alerts[0]
        .labels
        .insert("instance".into(), "{{ .ExternalURL }}".into());
    let mut b = Templates::defaults();
    let f = b
        .field("{{ range .Alerts }}{{ .Labels.instance }}{{ end }}")
        .unwrap();
    let t = b.finish();
    let out = t.text(&f, &value(&d, &|v| v.to_string())).unwrap();
    assert!(out.starts_with("{{ .ExternalURL }}"), "{out}");
}

#[test]
fn html_escapes_by_context() {
    let mut d = sample();
    d.alerts[0]
        .annotations
        .insert("summary".into(), "<script>x</script>".into());
    let mut b = Templates::defaults();
    let f = b.field("{{ template \"email.default.html\" . }}").unwrap();
    let t = b.finish();
    let out = t.html(&f, &value(&d, &|v| v.to_string())).unwrap();
    assert!(out.contains("&lt;script&gt;x&lt;/script&gt;"), "{out}");
    assert!(!out.contains("<script>"), "{out}");
}
