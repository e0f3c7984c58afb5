use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use vigie_agent::collector::Collectors;
use vigie_agent::web::reload::{WebRuntime, WebSettings};
use vigie_agent::web::{self, AppState};
use vigie_agent::{cli, selfmetrics};

fn main() -> ExitCode {
    let cli = match cli::parse(std::env::args_os()) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    limit_malloc_arenas(cli.config_file.is_some());
    let level = match cli.log_level.as_str() {
        "debug" => LevelFilter::DEBUG,
        "warn" => LevelFilter::WARN,
        "error" => LevelFilter::ERROR,
        _ => LevelFilter::INFO,
    };
    // Our own events at --log.level, dependencies' only from warn up.
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
        )
        .with(
            Targets::new()
                .with_default(LevelFilter::WARN.min(level))
                .with_target("vigie_agent", level),
        )
        .init();
    // One thread serves HTTP (like node_exporter's GOMAXPROCS=1); collectors run on the blocking
    // pool, whose threads are kept between scrapes so a scrape never pays for thread creation.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(64)
        .thread_keep_alive(std::time::Duration::from_secs(600))
        .build();
    let result = runtime
        .context("starting the runtime")
        .and_then(|rt| rt.block_on(run(cli)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vigie-agent: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// glibc gives every thread that allocates its own arena; an exporter gains nothing from that
/// and pays for it in resident memory.
fn limit_malloc_arenas(ships_logs: bool) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts allocator tunables; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        if ships_logs {
            // Batch buffers (hundreds of KiB) are mapped and unmapped, not kept in the heap: a
            // fixed threshold stops glibc from raising it after the first free.
            libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = ships_logs;
}

/// `:9100` means every interface, as in Go.
async fn bind(addr: &str) -> anyhow::Result<TcpListener> {
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

async fn shutdown_signal() {
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

async fn run(cli: cli::Cli) -> anyhow::Result<()> {
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
            let cfg = vigie_agent::logs::config::Config::load(path, cli.config_expand_env)?;
            if !cli.listen_explicit
                && let Some(addr) = cfg.listen_address()
            {
                listen_addresses = vec![addr];
            }
            let s = tokio::task::spawn_blocking(move || vigie_agent::logs::Shipper::start(cfg))
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
    shutdown_signal().await;
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
