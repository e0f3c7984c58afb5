//! `--config.file` in Promtail's shape: `server`, `clients`, `positions`, `scrape_configs`
//! (`static_configs`, `journal`, `relabel_configs`, `pipeline_stages`), `target_config`,
//! `limits_config`, plus vigie's `spool`. A key outside the supported subset is an error naming
//! it with its file and line, so a Promtail file never half-works silently.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::cli::parse_duration;

#[derive(Debug, thiserror::Error)]
#[error("{}", .0.join("\n"))]
pub struct ConfigError(pub Vec<String>);

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub clients: Vec<Spanned<ClientConfig>>,
    /// Promtail's single-client form.
    pub client: Option<Spanned<ClientConfig>>,
    #[serde(default)]
    pub positions: PositionsConfig,
    #[serde(default)]
    pub scrape_configs: Vec<Spanned<ScrapeConfig>>,
    #[serde(default)]
    pub target_config: TargetConfig,
    #[serde(default)]
    pub limits_config: LimitsConfig,
    /// vigie: the on-disk queue between reading and Loki.
    #[serde(default)]
    pub spool: SpoolConfig,
    #[serde(default)]
    pub options: Option<serde::de::IgnoredAny>,
    #[serde(skip)]
    pub file: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub http_listen_address: Option<String>,
    pub http_listen_port: Option<u16>,
    pub grpc_listen_address: Option<String>,
    pub grpc_listen_port: Option<u16>,
    pub log_level: Option<String>,
    pub log_format: Option<String>,
    pub disable: Option<bool>,
    pub register_instrumentation: Option<bool>,
    pub health_check_target: Option<bool>,
    pub http_server_read_timeout: Option<String>,
    pub http_server_write_timeout: Option<String>,
    pub http_server_idle_timeout: Option<String>,
    pub graceful_shutdown_timeout: Option<String>,
    pub enable_runtime_reload: Option<bool>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    pub url: String,
    pub tenant_id: Option<String>,
    pub basic_auth: Option<BasicAuth>,
    pub bearer_token: Option<String>,
    pub bearer_token_file: Option<String>,
    pub tls_config: Option<TlsConfig>,
    pub batchwait: Option<String>,
    pub batchsize: Option<u64>,
    pub backoff_config: Option<BackoffConfig>,
    #[serde(default)]
    pub external_labels: BTreeMap<String, String>,
    pub timeout: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Accepted for Promtail files; vigie never drops a rate-limited batch.
    pub drop_rate_limited_batches: Option<bool>,
    /// vigie: `protobuf` (default, snappy) or `json`.
    pub encoding: Option<String>,
    pub proxy_url: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    pub username: Option<String>,
    pub password: Option<String>,
    pub password_file: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub ca_file: Option<String>,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    pub server_name: Option<String>,
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackoffConfig {
    pub min_period: Option<String>,
    pub max_period: Option<String>,
    /// Accepted for Promtail files; vigie retries until Loki takes the batch.
    pub max_retries: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PositionsConfig {
    pub filename: Option<String>,
    pub sync_period: Option<String>,
    #[serde(default)]
    pub ignore_invalid_yaml: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    pub sync_period: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    pub readline_rate_enabled: Option<bool>,
    pub readline_rate: Option<f64>,
    pub readline_burst: Option<u64>,
    pub readline_rate_drop: Option<bool>,
    pub max_streams: Option<u64>,
    pub max_line_size: Option<u64>,
    pub max_line_size_truncate: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpoolConfig {
    /// Default: `<positions file>.spool/` next to the positions file.
    pub directory: Option<String>,
    /// Bytes, or `512MiB`, `1GiB`…; default 1 GiB. When full, reading pauses.
    pub max_size: Option<Size>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Size {
    Bytes(u64),
    Text(String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeConfig {
    pub job_name: String,
    #[serde(default)]
    pub pipeline_stages: Vec<Spanned<StageConfig>>,
    #[serde(default)]
    pub static_configs: Vec<StaticConfig>,
    pub journal: Option<JournalConfig>,
    #[serde(default)]
    pub relabel_configs: Vec<Spanned<RelabelConfig>>,
    /// Accepted: only UTF-8 (and lossy replacement of invalid bytes) is read.
    pub encoding: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticConfig {
    #[serde(default)]
    pub targets: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalConfig {
    pub max_age: Option<String>,
    #[serde(default)]
    pub json: bool,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub path: Option<String>,
    pub matches: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelabelConfig {
    #[serde(default)]
    pub source_labels: Vec<String>,
    pub separator: Option<String>,
    pub regex: Option<String>,
    pub modulus: Option<u64>,
    pub target_label: Option<String>,
    pub replacement: Option<String>,
    pub action: Option<String>,
}

/// One entry of `pipeline_stages`: a map with exactly one key, the stage's name.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageConfig {
    Regex(RegexStage),
    Json(JsonStage),
    Logfmt(LogfmtStage),
    Replace(ReplaceStage),
    Labels(BTreeMap<String, Option<String>>),
    StaticLabels(BTreeMap<String, Option<String>>),
    Labeldrop(Vec<String>),
    Labelallow(Vec<String>),
    StructuredMetadata(BTreeMap<String, Option<String>>),
    NonIndexedLabels(BTreeMap<String, Option<String>>),
    Timestamp(TimestampStage),
    Output(OutputStage),
    Drop(DropStage),
    Multiline(MultilineStage),
    Limit(LimitStage),
    Match(MatchStage),
    Template(TemplateStage),
    Metrics(BTreeMap<String, MetricStage>),
    Tenant(TenantStage),
    Docker(Option<serde::de::IgnoredAny>),
    Cri(Option<CriStage>),
    Decolorize(Option<serde::de::IgnoredAny>),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegexStage {
    pub expression: String,
    pub source: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonStage {
    #[serde(default)]
    pub expressions: BTreeMap<String, Option<String>>,
    pub source: Option<String>,
    #[serde(default)]
    pub drop_malformed: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogfmtStage {
    #[serde(default)]
    pub mapping: BTreeMap<String, Option<String>>,
    pub source: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplaceStage {
    pub expression: String,
    pub source: Option<String>,
    #[serde(default)]
    pub replace: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimestampStage {
    pub source: String,
    pub format: String,
    #[serde(default)]
    pub fallback_formats: Vec<String>,
    pub location: Option<String>,
    pub action_on_failure: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputStage {
    pub source: String,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropStage {
    pub source: Option<OneOrMany>,
    pub separator: Option<String>,
    pub expression: Option<String>,
    pub value: Option<String>,
    pub older_than: Option<String>,
    pub longer_than: Option<Size>,
    pub drop_counter_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultilineStage {
    pub firstline: String,
    pub max_wait_time: Option<String>,
    pub max_lines: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitStage {
    pub rate: f64,
    pub burst: u64,
    #[serde(default)]
    pub drop: bool,
    pub by_label_name: Option<String>,
    pub max_distinct_labels: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchStage {
    pub selector: String,
    #[serde(default)]
    pub stages: Vec<Spanned<StageConfig>>,
    pub action: Option<String>,
    pub drop_counter_reason: Option<String>,
    pub pipeline_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateStage {
    pub source: String,
    pub template: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricStage {
    #[serde(rename = "type")]
    pub kind: String,
    pub description: Option<String>,
    pub source: Option<String>,
    pub prefix: Option<String>,
    pub max_idle_duration: Option<String>,
    #[serde(default)]
    pub config: MetricStageConfig,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricStageConfig {
    pub value: Option<String>,
    pub action: Option<String>,
    #[serde(default)]
    pub match_all: bool,
    #[serde(default)]
    pub count_entry_bytes: bool,
    #[serde(default)]
    pub buckets: Vec<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantStage {
    pub source: Option<String>,
    pub value: Option<String>,
    pub label: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CriStage {
    pub max_partial_lines: Option<u64>,
    pub max_partial_line_size: Option<u64>,
    pub max_partial_line_size_truncate: Option<bool>,
}

/// `file: line:col: message`, without the parser's source snippet.
fn yaml_error(file: &str, e: &serde_saphyr::Error) -> String {
    let text = e.to_string();
    let head = text.lines().next().unwrap_or_default().trim();
    let head = head.strip_prefix("error: ").unwrap_or(head);
    if let Some(rest) = head.strip_prefix("line ")
        && let Some((line, rest)) = rest.split_once(" column ")
        && let Some((col, msg)) = rest.split_once(": ")
    {
        return format!("{file}: {line}:{col}: {msg}");
    }
    format!("{file}: {head}")
}

/// Replaces `${VAR}` and `${VAR:-default}` as Promtail's `-config.expand-env` does.
pub fn expand_env(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[at..]);
            return out;
        };
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        match std::env::var(name) {
            Ok(v) if !v.is_empty() || default.is_none() => out.push_str(&v),
            _ => out.push_str(default.unwrap_or("")),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

impl Config {
    pub fn load(path: &Path, expand: bool) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|e| ConfigError(vec![format!("{file}: {e}")]))?;
        let text = if expand { expand_env(&text) } else { text };
        Self::parse(&file, &text)
    }

    pub fn parse(file: &str, text: &str) -> Result<Config, ConfigError> {
        let mut cfg: Config = if text.trim().is_empty() {
            Config::default()
        } else {
            serde_saphyr::from_str(text).map_err(|e| ConfigError(vec![yaml_error(file, &e)]))?
        };
        cfg.file = file.to_string();
        if let Some(c) = cfg.client.take() {
            cfg.clients.insert(0, c);
        }
        let mut errors = Vec::new();
        let at = |l: &serde_saphyr::Location| format!("{file}: {}:{}:", l.line(), l.column());
        for c in &cfg.clients {
            let w = at(&c.referenced);
            if c.value.url.is_empty() {
                errors.push(format!("{w} clients: url is required"));
            } else if !(c.value.url.starts_with("http://") || c.value.url.starts_with("https://")) {
                errors.push(format!(
                    "{w} clients.url {:?}: must be an http:// or https:// URL",
                    c.value.url
                ));
            }
            for (key, d) in [
                ("batchwait", &c.value.batchwait),
                ("timeout", &c.value.timeout),
            ] {
                if let Some(d) = d
                    && let Err(e) = parse_duration(d)
                {
                    errors.push(format!("{w} clients.{key}: {e}"));
                }
            }
            if let Some(b) = &c.value.backoff_config {
                for (key, d) in [("min_period", &b.min_period), ("max_period", &b.max_period)] {
                    if let Some(d) = d
                        && let Err(e) = parse_duration(d)
                    {
                        errors.push(format!("{w} clients.backoff_config.{key}: {e}"));
                    }
                }
            }
            if let Some(e) = &c.value.encoding
                && e != "protobuf"
                && e != "json"
            {
                errors.push(format!(
                    "{w} clients.encoding {e:?}: must be protobuf or json"
                ));
            }
            if c.value.proxy_url.is_some() {
                errors.push(format!(
                    "{w} clients.proxy_url: not supported by vigie-agent"
                ));
            }
            if c.value.bearer_token.is_some() && c.value.bearer_token_file.is_some() {
                errors.push(format!(
                    "{w} clients: at most one of bearer_token and bearer_token_file"
                ));
            }
        }
        for (key, d) in [
            ("positions.sync_period", &cfg.positions.sync_period),
            ("target_config.sync_period", &cfg.target_config.sync_period),
        ] {
            if let Some(d) = d
                && let Err(e) = parse_duration(d)
            {
                errors.push(format!("{file}: {key}: {e}"));
            }
        }
        let l = &cfg.limits_config;
        if l.readline_rate_enabled == Some(true) {
            errors.push(format!(
                "{file}: limits_config.readline_rate_enabled: not supported by vigie-agent (use a limit stage)"
            ));
        }
        if l.max_streams.is_some_and(|m| m > 0) {
            errors.push(format!(
                "{file}: limits_config.max_streams: not supported by vigie-agent"
            ));
        }
        if let Some(s) = &cfg.spool.max_size
            && let Err(e) = s.bytes()
        {
            errors.push(format!("{file}: spool.max_size: {e}"));
        }
        if cfg.clients.is_empty() && !cfg.scrape_configs.is_empty() {
            errors.push(format!(
                "{file}: clients: at least one Loki client is required to ship scrape_configs"
            ));
        }
        let mut jobs = std::collections::HashSet::new();
        for sc in &cfg.scrape_configs {
            let w = at(&sc.referenced);
            if sc.value.job_name.is_empty() {
                errors.push(format!("{w} scrape_configs: job_name is required"));
            } else if !jobs.insert(sc.value.job_name.clone()) {
                errors.push(format!(
                    "{w} scrape_configs: duplicate job_name {:?}",
                    sc.value.job_name
                ));
            }
            if sc.value.journal.is_none() && sc.value.static_configs.is_empty() {
                errors.push(format!(
                    "{w} scrape_configs {:?}: needs static_configs or journal",
                    sc.value.job_name
                ));
            }
            if let Some(j) = &sc.value.journal
                && let Some(d) = &j.max_age
                && let Err(e) = parse_duration(d)
            {
                errors.push(format!("{w} journal.max_age: {e}"));
            }
            for st in &sc.value.static_configs {
                for name in st.labels.keys() {
                    if !crate::logs::entry::valid_label_name(name) {
                        errors.push(format!(
                            "{w} static_configs.labels: {name:?} is not a valid label name (Loki would refuse every line)"
                        ));
                    }
                }
            }
            for r in &sc.value.relabel_configs {
                if let Err(e) = crate::logs::relabel::Rule::new(&r.value) {
                    errors.push(format!("{} relabel_configs: {e}", at(&r.referenced)));
                }
            }
            if let Err(e) = crate::logs::stages::Pipeline::new(
                &sc.value.job_name,
                &sc.value.pipeline_stages,
                file,
                &std::sync::Arc::new(crate::logs::stats::Stats::default()),
            ) {
                errors.extend(e.0);
            }
        }
        if errors.is_empty() {
            Ok(cfg)
        } else {
            Err(ConfigError(errors))
        }
    }

    /// `limits_config.max_line_size` (0: no limit) and whether longer lines are cut, not dropped.
    pub fn max_line(&self) -> (usize, bool) {
        (
            self.limits_config.max_line_size.unwrap_or(0) as usize,
            self.limits_config.max_line_size_truncate.unwrap_or(false),
        )
    }

    /// Promtail's `positions.filename` default.
    pub fn positions_file(&self) -> PathBuf {
        PathBuf::from(
            self.positions
                .filename
                .clone()
                .unwrap_or_else(|| "/var/log/positions.yaml".into()),
        )
    }

    pub fn spool_dir(&self) -> PathBuf {
        match &self.spool.directory {
            Some(d) => PathBuf::from(d),
            None => {
                let mut p = self.positions_file().into_os_string();
                p.push(".spool");
                PathBuf::from(p)
            }
        }
    }

    pub fn spool_max(&self) -> u64 {
        self.spool
            .max_size
            .as_ref()
            .and_then(|s| s.bytes().ok())
            .unwrap_or(1 << 30)
    }

    pub fn positions_sync(&self) -> Duration {
        self.positions
            .sync_period
            .as_deref()
            .and_then(|d| parse_duration(d).ok())
            .unwrap_or(Duration::from_secs(10))
    }

    pub fn discovery_period(&self) -> Duration {
        self.target_config
            .sync_period
            .as_deref()
            .and_then(|d| parse_duration(d).ok())
            .unwrap_or(Duration::from_secs(10))
    }

    /// `server.http_listen_address:port`, used when `--web.listen-address` is not given.
    pub fn listen_address(&self) -> Option<String> {
        let port = self.server.http_listen_port?;
        let host = self.server.http_listen_address.clone().unwrap_or_default();
        Some(if host.is_empty() {
            format!(":{port}")
        } else if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        })
    }
}

impl Size {
    pub fn bytes(&self) -> Result<u64, String> {
        match self {
            Size::Bytes(b) => Ok(*b),
            Size::Text(t) => parse_size(t),
        }
    }
}

/// `1GiB`, `512MB`, `64KB`, `1048576`.
pub fn parse_size(t: &str) -> Result<u64, String> {
    let t = t.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("invalid size {t:?}"))?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "kib" | "k" => 1024.0,
        "mb" => 1e6,
        "mib" | "m" => 1048576.0,
        "gb" => 1e9,
        "gib" | "g" => 1073741824.0,
        "tb" => 1e12,
        "tib" | "t" => 1099511627776.0,
        u => return Err(format!("unknown unit {u:?} in size {t:?}")),
    };
    Ok((n * scale) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn promtail_file_parses() {
        let text = r#"
server:
  http_listen_port: 9080
  grpc_listen_port: 0
positions:
  filename: /tmp/positions.yaml
clients:
  - url: http://127.0.0.1:3100/loki/api/v1/push
    tenant_id: t1
    external_labels: {host: h1}
    backoff_config: {min_period: 500ms, max_period: 5m, max_retries: 10}
scrape_configs:
  - job_name: system
    static_configs:
      - targets: [localhost]
        labels:
          job: varlogs
          __path__: /var/log/*log
    pipeline_stages:
      - regex:
          expression: '^(?P<level>\w+) '
      - labels:
          level:
      - match:
          selector: '{level="debug"}'
          action: drop
  - job_name: journal
    journal:
      max_age: 12h
      labels: {job: systemd-journal}
    relabel_configs:
      - source_labels: ['__journal__systemd_unit']
        target_label: unit
"#;
        let cfg = Config::parse("p.yaml", text).expect("parses");
        assert_eq!(cfg.clients.len(), 1);
        assert_eq!(cfg.scrape_configs.len(), 2);
        assert_eq!(cfg.listen_address().as_deref(), Some(":9080"));
        assert_eq!(cfg.scrape_configs[0].value.pipeline_stages.len(), 3);
    }

    #[test]
    fn unsupported_key_names_file_and_line() {
        let text = "clients:\n  - url: http://127.0.0.1:3100/loki/api/v1/push\nscrape_configs:\n  - job_name: k\n    kubernetes_sd_configs: []\n";
        let e = Config::parse("p.yaml", text)
            .expect_err("rejected")
            .to_string();
        assert!(e.starts_with("p.yaml: 5:"), "{e}");
        assert!(e.contains("kubernetes_sd_configs"), "{e}");
        let e = Config::parse(
            "p.yaml",
            "clients: [{url: 'http://127.0.0.1:1/x'}]\nscrape_configs:\n  - job_name: a\n    static_configs: [{labels: {__path__: /x}}]\n    pipeline_stages:\n      - regex: {expression: '('}\n",
        )
        .expect_err("bad regex")
        .to_string();
        assert!(e.contains("p.yaml: 6:") && e.contains("regex"), "{e}");
        let e = Config::parse(
            "p.yaml",
            "limits_config: {readline_rate_enabled: true}\nscrape_configs:\n  - job_name: a\n    static_configs: [{labels: {foo.bar: x, __path__: /x}}]\n",
        )
        .expect_err("bad label name")
        .to_string();
        assert!(e.contains("p.yaml: 3:") && e.contains("\"foo.bar\""), "{e}");
        assert!(e.contains("readline_rate_enabled"), "{e}");
    }

    #[test]
    fn env_expansion_and_sizes() {
        // SAFETY: tests in this module do not read this variable concurrently.
        unsafe { std::env::set_var("VIGIE_TEST_LOKI", "http://127.0.0.1:1") };
        assert_eq!(
            expand_env("url: ${VIGIE_TEST_LOKI}/x ${NOPE_VIGIE:-d}"),
            "url: http://127.0.0.1:1/x d"
        );
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("64KB"), Ok(64_000));
        assert!(parse_size("3 parsecs").is_err());
    }
}
