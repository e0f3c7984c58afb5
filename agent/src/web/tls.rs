//! Serving the router over plain TCP or TLS (rustls with the ring provider).

use std::io::BufReader;
use std::sync::Arc;

use anyhow::{Context, bail};
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::config::WebConfig;

/// Builds the rustls server configuration from `tls_server_config`.
pub fn server_config(web: &WebConfig) -> anyhow::Result<Option<Arc<rustls::ServerConfig>>> {
    let Some(tls) = &web.tls_server_config else {
        return Ok(None);
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs: Vec<CertificateDer<'static>> = match (&tls.cert, &tls.cert_file) {
        (Some(pem), _) => CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<_, _>>()
            .context("tls_server_config.cert")?,
        (None, Some(f)) => {
            let path = web.resolve(f);
            CertificateDer::pem_file_iter(&path)
                .with_context(|| format!("tls_server_config.cert_file {}", path.display()))?
                .collect::<Result<_, _>>()
                .with_context(|| format!("tls_server_config.cert_file {}", path.display()))?
        }
        (None, None) => bail!("tls_server_config: missing cert_file"),
    };
    if certs.is_empty() {
        bail!("tls_server_config.cert_file: no certificate found");
    }
    let key: PrivateKeyDer<'static> = match (&tls.key, &tls.key_file) {
        (Some(pem), _) => {
            PrivateKeyDer::from_pem_slice(pem.as_bytes()).context("tls_server_config.key")?
        }
        (None, Some(f)) => {
            let path = web.resolve(f);
            PrivateKeyDer::from_pem_file(&path)
                .with_context(|| format!("tls_server_config.key_file {}", path.display()))?
        }
        (None, None) => bail!("tls_server_config: missing key_file"),
    };
    let versions: Vec<&'static rustls::SupportedProtocolVersion> =
        match (tls.min_version.as_deref(), tls.max_version.as_deref()) {
            (Some("TLS13"), _) => vec![&rustls::version::TLS13],
            (_, Some("TLS12")) => vec![&rustls::version::TLS12],
            _ => vec![&rustls::version::TLS12, &rustls::version::TLS13],
        };
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .context("TLS versions")?;
    let builder = match tls.client_auth_type.as_deref().unwrap_or("") {
        "" | "NoClientCert" => builder.with_no_client_auth(),
        mode => {
            let ca = tls
                .client_ca_file
                .as_deref()
                .context("tls_server_config.client_ca_file is required")?;
            let path = web.resolve(ca);
            let mut roots = rustls::RootCertStore::empty();
            let file = std::fs::File::open(&path)
                .with_context(|| format!("tls_server_config.client_ca_file {}", path.display()))?;
            for cert in CertificateDer::pem_reader_iter(BufReader::new(file)) {
                roots.add(cert.with_context(|| {
                    format!("tls_server_config.client_ca_file {}", path.display())
                })?)?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if mode == "VerifyClientCertIfGiven" {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder
                .with_client_cert_verifier(verifier.build().context("client certificate verifier")?)
        }
    };
    let mut cfg = builder
        .with_single_cert(certs, key)
        .context("tls_server_config: certificate and key do not match")?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(Arc::new(cfg)))
}

/// Serves `app` on `listener` until `shutdown` completes: plain HTTP, or TLS with the
/// certificate in force when each connection arrives (see [`super::reload`]).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    web: Arc<super::reload::WebRuntime>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    if web.current().tls.is_none() {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await?;
        return Ok(());
    }
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::debug!("accept failed: {e}");
                    continue;
                }
            },
        };
        let Some(tls) = web.current().tls.clone() else {
            continue;
        };
        let acceptor = TlsAcceptor::from(tls);
        let app = app.clone();
        tokio::spawn(async move {
            let stream = match acceptor.accept(stream).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(%peer, "TLS handshake failed: {e}");
                    return;
                }
            };
            let service = TowerToHyperService::new(app);
            if let Err(e) = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%peer, "connection error: {e}");
            }
        });
    }
}
