//! `--web.config.file` in the Prometheus exporter toolkit's YAML shape: TLS and bcrypt basic auth.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    pub tls_server_config: Option<TlsServerConfig>,
    pub http_server_config: Option<HttpServerConfig>,
    #[serde(default)]
    pub basic_auth_users: BTreeMap<String, String>,
    /// Directory of the config file: relative certificate paths are relative to it.
    #[serde(skip)]
    pub dir: PathBuf,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsServerConfig {
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
    pub client_auth_type: Option<String>,
    pub client_ca_file: Option<String>,
    pub min_version: Option<String>,
    pub max_version: Option<String>,
    pub prefer_server_cipher_suites: Option<bool>,
    pub cipher_suites: Option<Vec<String>>,
    pub curve_preferences: Option<Vec<String>>,
    pub client_allowed_sans: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpServerConfig {
    pub http2: Option<bool>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

impl WebConfig {
    pub fn load(path: &Path) -> Result<WebConfig, ConfigError> {
        let file = path.display().to_string();
        let invalid = |message: String| ConfigError::Invalid {
            file: file.clone(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| invalid(e.to_string()))?;
        let mut cfg: WebConfig = if text.trim().is_empty() {
            WebConfig::default()
        } else {
            serde_saphyr::from_str(&text).map_err(|e| invalid(e.to_string()))?
        };
        cfg.dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        cfg.validate().map_err(invalid)?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), String> {
        for (user, hash) in &self.basic_auth_users {
            if hash.parse::<bcrypt::HashParts>().is_err() {
                return Err(format!("basic_auth_users.{user}: not a bcrypt hash"));
            }
        }
        let Some(tls) = &self.tls_server_config else {
            return Ok(());
        };
        for (set, key) in [
            (tls.cipher_suites.is_some(), "cipher_suites"),
            (tls.curve_preferences.is_some(), "curve_preferences"),
            (tls.client_allowed_sans.is_some(), "client_allowed_sans"),
        ] {
            if set {
                return Err(format!(
                    "tls_server_config.{key}: not supported by vigie-agent (rustls chooses safe suites and curves)"
                ));
            }
        }
        if tls.cert_file.is_none() && tls.cert.is_none() {
            return Err("tls_server_config: missing cert_file".into());
        }
        if tls.key_file.is_none() && tls.key.is_none() {
            return Err("tls_server_config: missing key_file".into());
        }
        match tls.client_auth_type.as_deref().unwrap_or("") {
            "" | "NoClientCert" => {}
            "VerifyClientCertIfGiven" | "RequireAndVerifyClientCert" => {
                if tls.client_ca_file.is_none() {
                    return Err("tls_server_config.client_ca_file: required when client certificates are verified".into());
                }
            }
            "RequestClientCert" | "RequireAnyClientCert" => {
                return Err(format!(
                    "tls_server_config.client_auth_type: {:?} (unverified client certificates) is not supported; use RequireAndVerifyClientCert",
                    tls.client_auth_type.as_deref().unwrap_or("")
                ));
            }
            other => {
                return Err(format!(
                    "tls_server_config.client_auth_type: invalid value {other:?}"
                ));
            }
        }
        for (key, v) in [
            ("min_version", &tls.min_version),
            ("max_version", &tls.max_version),
        ] {
            match v.as_deref() {
                None | Some("TLS12") | Some("TLS13") => {}
                Some("TLS10") | Some("TLS11") => {
                    return Err(format!(
                        "tls_server_config.{key}: TLS 1.0 and 1.1 are not supported"
                    ));
                }
                Some(other) => {
                    return Err(format!(
                        "tls_server_config.{key}: unknown TLS version {other:?}"
                    ));
                }
            }
        }
        Ok(())
    }

    pub fn resolve(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.dir.join(p)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(yaml: &str) -> Result<WebConfig, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("web.yml");
        std::fs::write(&p, yaml).unwrap();
        WebConfig::load(&p)
    }

    #[test]
    fn accepts_toolkit_shape_and_names_bad_keys() {
        let ok = load_str("basic_auth_users:\n  alice: $2y$10$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\n").unwrap();
        assert_eq!(ok.basic_auth_users.len(), 1);
        let e = load_str("tls_server_config:\n  cert_file: a\n  kye_file: b\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("kye_file") && e.contains("line 3"), "{e}");
        let e = load_str("tls_server_config:\n  cert_file: a\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing key_file"), "{e}");
        let e = load_str("basic_auth_users:\n  bob: plaintext\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("bob"), "{e}");
    }
}
