use std::process::ExitCode;

use anyhow::Context;
use tracing_subscriber::filter::LevelFilter;
use vigie_agent::{cli, serve};

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
    serve::init_logging(level, &["vigie_agent"]);
    // One thread serves HTTP (like node_exporter's GOMAXPROCS=1); collectors run on the blocking
    // pool, whose threads are kept between scrapes so a scrape never pays for thread creation.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(64)
        .thread_keep_alive(std::time::Duration::from_secs(600))
        .build();
    let result = runtime
        .context("starting the runtime")
        .and_then(|rt| rt.block_on(serve::run(cli, serve::shutdown_signal())));
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
