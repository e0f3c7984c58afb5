//! The agent's process around its parts: listeners (plain or TLS), the collectors, the log
//! shipper, and an orderly stop. `vigie-agent` runs it on its own; `vigie up` beside the router.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::cli::Cli;
use crate::collector::Collectors;
use crate::selfmetrics;
use crate::web::reload::{WebRuntime, WebSettings};
use crate::web::{self, AppState};

/// Logs to standard error: `targets` (our crates) at `level`, dependencies only from warn up;
/// colours only on a terminal.
pub fn init_logging(level: LevelFilter, targets: &[&str]) {
    let mut filter = Targets::new().with_default(LevelFilter::WARN.min(level));
    for t in targets {
        filter = filter.with_target(*t, level);
    }
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
        )
        .with(filter)
        .init();
}

/// `:9100` means every interface, as in Go.
pub async fn bind(addr: &str) -> anyhow::Result<TcpListener> {
    if let Some(port) = addr.strip_prefix(':') {
        let port: u16 = port
            .parse()
            .with_context(|| format!("--web.listen-address {addr:?}: invalid port"))?;
        if let Ok(l) = TcpListener::bind(SocketAddr::from(([0u16; 8], port))).await {
            return Ok(l);
        }
        return TcpListener::bind(SocketAddr::from(([0u8; 4], port)))
            .await
            .with_context(|| format!("listening on {addr}"));
    }
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr}"))
}

pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Serves `/metrics` (and ships logs when `--config.file` is given) until `shutdown` completes;
/// the shipper is stopped last so its positions and spool are flushed.
pub async fn run(cli: Cli, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let web = Arc::new(match &cli.web_config_file {
        Some(p) => WebRuntime::watch(p, std::time::Duration::from_secs(1))?,
        None => WebRuntime::fixed(WebSettings::default()),
    });
    let tls_on = web.current().tls.is_some();
    for flag in &cli.ignored_options {
        tracing::warn!(
            flag,
            "option of a node_exporter collector vigie-agent does not implement; ignored"
        );
    }
    for name in &cli.unimplemented {
        tracing::warn!(
            collector = name,
            "node_exporter's {name} collector is not implemented by vigie-agent; flag ignored"
        );
    }
    // The log shipper starts first: a bad --config.file stops the agent before it listens.
    let mut listen_addresses = cli.listen_addresses.clone();
    let shipper = match &cli.config_file {
        Some(path) => {
            let cfg = crate::logs::config::Config::load(path, cli.config_expand_env)?;
            if !cli.listen_explicit
                && let Some(addr) = cfg.listen_address()
            {
                listen_addresses = vec![addr];
            }
            let s = tokio::task::spawn_blocking(move || crate::logs::Shipper::start(cfg))
                .await
                .context("starting the log shipper")??;
            Some(s)
        }
        None => None,
    };
    let options = cli.options;
    let collectors = Collectors::new(&cli.collectors, &options, cli.collector_timeout);
    // The collectors hold what they need; the parsed options (compiled filters included) go.
    drop(options);
    tracing::info!(version = selfmetrics::VERSION, collectors = ?collectors.names(), "starting vigie-agent");
    let mut state = AppState::new(collectors, cli.telemetry_path.clone());
    state.exporter_metrics = !cli.disable_exporter_metrics;
    state.openmetrics = cli.openmetrics;
    state.limiter = (cli.max_requests > 0).then(|| Semaphore::new(cli.max_requests));
    state.web = web.clone();
    state.logs = shipper.as_ref().map(|s| s.stats.clone());
    let app = web::router(Arc::new(state));
    let (stop_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let mut servers = Vec::new();
    for addr in &listen_addresses {
        let listener = bind(addr).await?;
        tracing::info!(address = %listener.local_addr()?, tls = tls_on, "listening");
        let mut stop = stop_tx.subscribe();
        servers.push(tokio::spawn(web::tls::serve(
            listener,
            app.clone(),
            web.clone(),
            async move {
                let _ = stop.recv().await;
            },
        )));
    }
    shutdown.await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(());
    for s in servers {
        s.await??;
    }
    if let Some(s) = shipper {
        tokio::task::spawn_blocking(move || s.shutdown())
            .await
            .context("stopping the log shipper")?;
    }
    Ok(())
}
