//! The router's configuration file: Prometheus' vocabulary for evaluation (`global`,
//! `rule_files`, `scrape_configs`, `alerting`) and Alertmanager's for routing (`route`,
//! `receivers`, …) side by side, so an unchanged `alertmanager.yml` is a valid configuration and
//! so is one that adds rule evaluation to it. `remote_query` is ours: where to send queries
//! instead of the embedded store.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_saphyr::Spanned;
use vigie_promql::notation::parse_duration;

use crate::amconfig::{HttpConfig, RawAlertmanager, RawInhibit, RawReceiver, RawRoute, Routing};
use crate::rules::file::{valid_label_name, yaml_error};
use crate::timeinterval::RawNamed;

#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", .0.join("\n"))]
pub struct ConfigError(pub Vec<String>);

/// A duration written in Prometheus' syntax, kept with its position for error messages.
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub struct Dur(Spanned<String>);

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Global {
    pub scrape_interval: Option<Dur>,
    pub scrape_timeout: Option<Dur>,
    pub evaluation_interval: Option<Dur>,
    #[serde(default)]
    pub external_labels: BTreeMap<String, String>,
    pub rule_query_offset: Option<Dur>,
    // Prometheus keys the router has no use for, accepted so a prometheus.yml global loads.
    pub query_log_file: Option<IgnoredAny>,
    pub body_size_limit: Option<IgnoredAny>,
    pub sample_limit: Option<IgnoredAny>,
    pub label_limit: Option<IgnoredAny>,
    pub label_name_length_limit: Option<IgnoredAny>,
    pub label_value_length_limit: Option<IgnoredAny>,
    pub target_limit: Option<IgnoredAny>,
    pub keep_dropped_targets: Option<IgnoredAny>,
    // Alertmanager's global keys, read by the dispatcher and notifiers.
    pub resolve_timeout: Option<Dur>,
    pub http_config: Option<HttpConfig>,
    pub smtp_from: Option<String>,
    pub smtp_hello: Option<String>,
    pub smtp_smarthost: Option<String>,
    pub smtp_auth_username: Option<String>,
    pub smtp_auth_password: Option<String>,
    pub smtp_auth_password_file: Option<String>,
    pub smtp_auth_secret: Option<IgnoredAny>,
    pub smtp_auth_secret_file: Option<IgnoredAny>,
    pub smtp_auth_identity: Option<String>,
    pub smtp_require_tls: Option<bool>,
    pub smtp_tls_config: Option<TlsConfig>,
    pub slack_api_url: Option<String>,
    pub slack_api_url_file: Option<String>,
    pub victorops_api_key: Option<IgnoredAny>,
    pub victorops_api_key_file: Option<IgnoredAny>,
    pub victorops_api_url: Option<IgnoredAny>,
    pub pagerduty_url: Option<IgnoredAny>,
    pub opsgenie_api_key: Option<IgnoredAny>,
    pub opsgenie_api_key_file: Option<IgnoredAny>,
    pub opsgenie_api_url: Option<IgnoredAny>,
    pub wechat_api_url: Option<IgnoredAny>,
    pub wechat_api_secret: Option<IgnoredAny>,
    pub wechat_api_corp_id: Option<IgnoredAny>,
    pub telegram_api_url: Option<String>,
    pub webex_api_url: Option<IgnoredAny>,
    pub jira_api_url: Option<IgnoredAny>,
    pub rocketchat_api_url: Option<IgnoredAny>,
    pub rocketchat_token: Option<IgnoredAny>,
    pub rocketchat_token_file: Option<IgnoredAny>,
    pub rocketchat_token_id: Option<IgnoredAny>,
    pub rocketchat_token_id_file: Option<IgnoredAny>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    pub username: String,
    pub password: Option<String>,
    pub password_file: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub ca_file: Option<String>,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    pub server_name: Option<String>,
    #[serde(default)]
    pub insecure_skip_verify: bool,
    pub min_version: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticConfig {
    #[serde(default)]
    pub targets: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSdConfig {
    #[serde(default)]
    pub files: Vec<String>,
    pub refresh_interval: Option<Dur>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeConfig {
    pub job_name: Spanned<String>,
    pub scrape_interval: Option<Dur>,
    pub scrape_timeout: Option<Dur>,
    pub metrics_path: Option<String>,
    pub scheme: Option<Spanned<String>>,
    #[serde(default)]
    pub honor_labels: bool,
    pub honor_timestamps: Option<bool>,
    #[serde(default)]
    pub params: BTreeMap<String, Vec<String>>,
    pub basic_auth: Option<BasicAuth>,
    pub tls_config: Option<TlsConfig>,
    #[serde(default)]
    pub static_configs: Vec<StaticConfig>,
    #[serde(default)]
    pub file_sd_configs: Vec<FileSdConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    pub scheme: Option<String>,
    pub path_prefix: Option<String>,
    pub timeout: Option<Dur>,
    pub api_version: Option<String>,
    pub basic_auth: Option<BasicAuth>,
    pub tls_config: Option<TlsConfig>,
    #[serde(default)]
    pub static_configs: Vec<StaticConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alerting {
    #[serde(default)]
    pub alertmanagers: Vec<AlertmanagerConfig>,
}

/// Where rule queries go instead of the embedded store: any Prometheus-compatible query API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteQuery {
    pub url: Spanned<String>,
    pub basic_auth: Option<BasicAuth>,
    pub bearer_token: Option<String>,
    pub bearer_token_file: Option<String>,
    pub tls_config: Option<TlsConfig>,
    pub timeout: Option<Dur>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub global: Global,
    #[serde(default)]
    pub rule_files: Vec<String>,
    #[serde(default)]
    pub scrape_configs: Vec<ScrapeConfig>,
    pub alerting: Option<Alerting>,
    pub remote_query: Option<RemoteQuery>,
    // Alertmanager's top-level keys, read by the dispatcher.
    pub route: Option<RawRoute>,
    #[serde(default)]
    pub receivers: Vec<RawReceiver>,
    #[serde(default)]
    pub inhibit_rules: Vec<RawInhibit>,
    #[serde(default)]
    pub templates: Vec<String>,
    #[serde(default)]
    pub time_intervals: Vec<RawNamed>,
    #[serde(default)]
    pub mute_time_intervals: Vec<RawNamed>,
    /// Vigie: schedules, escalation policies, notices.
    pub oncall: Option<crate::oncall::RawOnCall>,
}

/// A scrape target with everything needed to scrape it.
#[derive(Debug, Clone)]
pub struct Target {
    pub job: String,
    pub url: String,
    /// `job` and `instance` plus the static labels.
    pub labels: Vec<(String, String)>,
    pub interval_ms: i64,
    pub timeout_ms: i64,
    pub honor_labels: bool,
    pub honor_timestamps: bool,
    pub basic_auth: Option<(String, String)>,
    pub tls: Option<TlsConfig>,
}

/// A scrape job: static targets now, file_sd files read at each refresh.
#[derive(Debug, Clone)]
pub struct Job {
    pub name: String,
    pub static_targets: Vec<Target>,
    pub file_sd: Vec<(PathBuf, i64)>,
    /// The template for targets found in files.
    pub template: Target,
}

#[derive(Debug, Clone)]
pub struct Remote {
    pub url: String,
    pub basic_auth: Option<(String, String)>,
    pub bearer_token: Option<String>,
    pub tls: Option<TlsConfig>,
    pub timeout_ms: i64,
}

#[derive(Debug, Clone)]
pub struct AlertmanagerTarget {
    pub url: String,
    pub timeout_ms: i64,
    pub basic_auth: Option<(String, String)>,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub scrape_interval_ms: i64,
    pub evaluation_interval_ms: i64,
    pub rule_query_offset_ms: i64,
    pub external_labels: Vec<(String, String)>,
    pub rule_files: Vec<String>,
    pub jobs: Vec<Job>,
    pub alertmanagers: Vec<AlertmanagerTarget>,
    pub remote: Option<Remote>,
    /// Alertmanager's keys, validated; `None` when the file has no `route`.
    pub routing: Option<std::sync::Arc<Routing>>,
    /// The file's text, for the status APIs.
    pub original: String,
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|e| ConfigError(vec![format!("{file}: {e}")]))?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let raw: RawConfig = if text.trim().is_empty() {
            RawConfig::default()
        } else {
            serde_saphyr::from_str(text).map_err(|e| ConfigError(vec![yaml_error(&file, &e)]))?
        };
        let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let mut errors = Vec::new();
        let g = &raw.global;
        let scrape_interval = dur(
            &g.scrape_interval,
            "global.scrape_interval",
            60_000,
            &file,
            &mut errors,
        );
        let scrape_timeout = dur(
            &g.scrape_timeout,
            "global.scrape_timeout",
            10_000.min(scrape_interval),
            &file,
            &mut errors,
        );
        let evaluation_interval = dur(
            &g.evaluation_interval,
            "global.evaluation_interval",
            60_000,
            &file,
            &mut errors,
        );
        let rule_query_offset = dur(
            &g.rule_query_offset,
            "global.rule_query_offset",
            0,
            &file,
            &mut errors,
        );
        let mut jobs = Vec::new();
        let mut job_names = std::collections::HashSet::new();
        for sc in &raw.scrape_configs {
            let name = sc.job_name.value.clone();
            let at = format!(
                "{file}: {}:{}:",
                sc.job_name.referenced.line(),
                sc.job_name.referenced.column()
            );
            if name.is_empty() {
                errors.push(format!("{at} job_name is empty"));
            }
            if !job_names.insert(name.clone()) {
                errors.push(format!(
                    "{at} found multiple scrape configs with job name {name:?}"
                ));
            }
            let interval = dur(
                &sc.scrape_interval,
                "scrape_interval",
                scrape_interval,
                &file,
                &mut errors,
            );
            let timeout = dur(
                &sc.scrape_timeout,
                "scrape_timeout",
                scrape_timeout.min(interval),
                &file,
                &mut errors,
            );
            if timeout > interval {
                errors.push(format!("{at} scrape timeout greater than scrape interval for scrape config with job name {name:?}"));
            }
            let scheme = sc
                .scheme
                .as_ref()
                .map_or("http".to_string(), |s| s.value.clone());
            if scheme != "http" && scheme != "https" {
                errors.push(format!("{at} scheme: {scheme:?} is not http or https"));
            }
            let path = sc.metrics_path.clone().unwrap_or_else(|| "/metrics".into());
            let query: Vec<String> = sc
                .params
                .iter()
                .flat_map(|(k, vs)| vs.iter().map(move |v| format!("{k}={v}")))
                .collect();
            let query = if query.is_empty() {
                String::new()
            } else {
                format!("?{}", query.join("&"))
            };
            let basic_auth = sc
                .basic_auth
                .as_ref()
                .map(|b| resolve_basic_auth_for(b, &base, &mut errors, &file));
            let template = Target {
                job: name.clone(),
                url: format!("{scheme}://{{}}{path}{query}"),
                labels: Vec::new(),
                interval_ms: interval,
                timeout_ms: timeout,
                honor_labels: sc.honor_labels,
                honor_timestamps: sc.honor_timestamps.unwrap_or(true),
                basic_auth,
                tls: sc.tls_config.clone().map(|t| resolve_tls(t, &base)),
            };
            let mut static_targets = Vec::new();
            for st in &sc.static_configs {
                for k in st.labels.keys() {
                    if !valid_label_name(k) {
                        errors.push(format!("{at} invalid label name {k:?} in static_configs"));
                    }
                }
                for t in &st.targets {
                    static_targets.push(target_for(&template, t, &st.labels));
                }
            }
            let file_sd = sc
                .file_sd_configs
                .iter()
                .flat_map(|f| {
                    let refresh = f
                        .refresh_interval
                        .as_ref()
                        .and_then(|d| parse_duration(&d.0.value).ok())
                        .unwrap_or(300_000);
                    f.files
                        .iter()
                        .map(move |p| (PathBuf::from(p), refresh))
                        .collect::<Vec<_>>()
                })
                .map(|(p, r)| (if p.is_absolute() { p } else { base.join(p) }, r))
                .collect();
            jobs.push(Job {
                name,
                static_targets,
                file_sd,
                template,
            });
        }
        let mut alertmanagers = Vec::new();
        for am in raw.alerting.iter().flat_map(|a| &a.alertmanagers) {
            let scheme = am.scheme.clone().unwrap_or_else(|| "http".into());
            let prefix = am.path_prefix.clone().unwrap_or_default();
            let timeout = dur(
                &am.timeout,
                "alerting.alertmanagers.timeout",
                10_000,
                &file,
                &mut errors,
            );
            if am.api_version.as_deref().is_some_and(|v| v != "v2") {
                errors.push(format!(
                    "{file}: alerting.alertmanagers.api_version: only v2 is supported"
                ));
            }
            let basic_auth = am
                .basic_auth
                .as_ref()
                .map(|b| resolve_basic_auth_for(b, &base, &mut errors, &file));
            for t in am.static_configs.iter().flat_map(|s| &s.targets) {
                alertmanagers.push(AlertmanagerTarget {
                    url: format!(
                        "{scheme}://{t}{}/api/v2/alerts",
                        prefix.trim_end_matches('/')
                    ),
                    timeout_ms: timeout,
                    basic_auth: basic_auth.clone(),
                });
            }
        }
        let remote = raw.remote_query.as_ref().map(|r| {
            let url = r.url.value.trim_end_matches('/').to_string();
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                errors.push(format!(
                    "{file}: {}:{}: remote_query.url: {url:?} is not an http(s) URL",
                    r.url.referenced.line(),
                    r.url.referenced.column()
                ));
            }
            let bearer_token = match (&r.bearer_token, &r.bearer_token_file) {
                (Some(t), _) => Some(t.clone()),
                (None, Some(f)) => match std::fs::read_to_string(base.join(f)) {
                    Ok(t) => Some(t.trim().to_string()),
                    Err(e) => {
                        errors.push(format!("{file}: remote_query.bearer_token_file: {f}: {e}"));
                        None
                    }
                },
                (None, None) => None,
            };
            Remote {
                url,
                basic_auth: r
                    .basic_auth
                    .as_ref()
                    .map(|b| resolve_basic_auth_for(b, &base, &mut Vec::new(), &file)),
                bearer_token,
                tls: r.tls_config.clone().map(|t| resolve_tls(t, &base)),
                timeout_ms: r
                    .timeout
                    .as_ref()
                    .and_then(|d| parse_duration(&d.0.value).ok())
                    .unwrap_or(30_000),
            }
        });
        let routing = crate::amconfig::build(
            &RawAlertmanager {
                resolve_timeout: g.resolve_timeout.as_ref(),
                globals: crate::notify::Globals {
                    http_config: g.http_config.clone(),
                    slack_api_url: g.slack_api_url.clone(),
                    slack_api_url_file: g.slack_api_url_file.clone(),
                    telegram_api_url: g.telegram_api_url.clone(),
                    smtp: crate::notify::email::SmtpGlobals {
                        from: g.smtp_from.clone(),
                        hello: g.smtp_hello.clone(),
                        smarthost: g.smtp_smarthost.clone(),
                        auth_username: g.smtp_auth_username.clone(),
                        auth_password: g.smtp_auth_password.clone(),
                        auth_password_file: g.smtp_auth_password_file.clone(),
                        auth_identity: g.smtp_auth_identity.clone(),
                        require_tls: g.smtp_require_tls,
                        tls_config: g.smtp_tls_config.clone(),
                    },
                },
                route: raw.route.as_ref(),
                receivers: &raw.receivers,
                inhibit_rules: &raw.inhibit_rules,
                time_intervals: &raw.time_intervals,
                mute_time_intervals: &raw.mute_time_intervals,
                templates: &raw.templates,
                oncall: raw.oncall.as_ref(),
            },
            &file,
            &base,
            &mut errors,
        )
        .map(std::sync::Arc::new);
        for k in g.external_labels.keys() {
            if !valid_label_name(k) {
                errors.push(format!(
                    "{file}: global.external_labels: invalid label name {k:?}"
                ));
            }
        }
        if !errors.is_empty() {
            return Err(ConfigError(errors));
        }
        Ok(Config {
            path: path.to_path_buf(),
            scrape_interval_ms: scrape_interval,
            evaluation_interval_ms: evaluation_interval,
            rule_query_offset_ms: rule_query_offset,
            external_labels: g.external_labels.clone().into_iter().collect(),
            rule_files: raw
                .rule_files
                .iter()
                .map(|p| {
                    let pb = PathBuf::from(p);
                    if pb.is_absolute() {
                        p.clone()
                    } else {
                        base.join(pb).display().to_string()
                    }
                })
                .collect(),
            jobs,
            alertmanagers,
            remote,
            routing,
            original: text.to_string(),
        })
    }
}

/// A duration field, or its default; a bad one is reported with its position.
pub(crate) fn dur(
    d: &Option<Dur>,
    field: &str,
    default: i64,
    file: &str,
    errors: &mut Vec<String>,
) -> i64 {
    match d {
        None => default,
        Some(Dur(s)) => match parse_duration(&s.value) {
            Ok(v) => v,
            Err(e) => {
                errors.push(format!(
                    "{file}: {}:{}: {field}: {e}",
                    s.referenced.line(),
                    s.referenced.column()
                ));
                default
            }
        },
    }
}

/// A target of a job: `job`, `instance` and the group's labels.
pub fn target_for(template: &Target, address: &str, labels: &BTreeMap<String, String>) -> Target {
    let mut t = template.clone();
    t.url = template.url.replacen("{}", address, 1);
    let mut l: BTreeMap<String, String> = labels.clone();
    l.entry("job".into())
        .or_insert_with(|| template.job.clone());
    l.insert("instance".into(), address.to_string());
    t.labels = l.into_iter().collect();
    t
}

pub(crate) fn resolve_basic_auth_for(
    b: &BasicAuth,
    base: &Path,
    errors: &mut Vec<String>,
    file: &str,
) -> (String, String) {
    let password = match (&b.password, &b.password_file) {
        (Some(p), _) => p.clone(),
        (None, Some(f)) => match std::fs::read_to_string(base.join(f)) {
            Ok(p) => p.trim_end_matches(['\n', '\r']).to_string(),
            Err(e) => {
                errors.push(format!("{file}: basic_auth.password_file: {f}: {e}"));
                String::new()
            }
        },
        (None, None) => String::new(),
    };
    (b.username.clone(), password)
}

pub(crate) fn resolve_tls(mut t: TlsConfig, base: &Path) -> TlsConfig {
    let abs = |p: &mut Option<String>| {
        if let Some(v) = p
            && !Path::new(v.as_str()).is_absolute()
        {
            *v = base.join(&*v).display().to_string();
        }
    };
    abs(&mut t.ca_file);
    abs(&mut t.cert_file);
    abs(&mut t.key_file);
    t
}

/// Milliseconds spelled as Prometheus spells a duration (`1h30m`, `1d`, `0s`).
pub fn format_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let mut rest = ms;
    for (unit, size) in [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ] {
        if rest >= size {
            out.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    out
}
