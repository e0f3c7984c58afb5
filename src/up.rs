//! `vigie up`: this node monitored in one command. The agent serves the node's metrics, the
//! router scrapes it (and itself) into its embedded store, evaluates the rule files and sends
//! every notification to the outbox (a file and the console) unless `--config.file` names other
//! channels. Everything it keeps lives under `--data.path`:
//!
//! ```text
//! DATA/vigie.yml       the generated router configuration (rewritten at every start)
//! DATA/outbox.jsonl    one JSON line per notification
//! DATA/textfile/       the agent's --collector.textfile.directory
//! DATA/router/         alert state, silences, notification log
//! ```

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Arg, ArgAction, ArgMatches, Command};
use tokio::sync::watch;
use tracing_subscriber::filter::LevelFilter;

use crate::nodeconfig::{NodeConfig, local_target};

/// The manual's other sections, after the options in `--help`.
const MANUAL: &str = "\
Examples:
  cargo run --release -- up
      From the repository: this node, the rules in rules/, state in ./data.
  vigie up --data.path=/var/lib/vigie --agent.listen-address=:9100 --router.listen-address=:9093
      Every interface, state elsewhere.
  vigie up --config.file=vigie.yml
      A copy of DATA/vigie.yml with a Slack, mail or SMS receiver added.

Files (under --data.path):
  vigie.yml       the generated router configuration (rewritten at every start)
  outbox.jsonl    one JSON line per notification: title, text, the webhook body
  textfile/       *.prom files served with the node's metrics (the agent's textfile directory)
  router/         alert state, silences and notification log

Signals:
  SIGINT (Ctrl-C), SIGTERM   stop both parts; the next start resumes from DATA

Exit status:
  0 stopped by a signal; 1 could not start or a part failed (the message says which); 2 a bad flag

See also:
  vigie-agent --help and vigie-router --help: each part on its own, with every option.";

pub fn command() -> Command {
    Command::new("up")
        .about("Run the agent and the router of this node together")
        .long_about(
            "Run the agent and the router of this node in one process: the agent serves this \
             node's metrics, the router scrapes them into its embedded store, evaluates the rule \
             files and sends each notification to the outbox (DATA/outbox.jsonl and the console) \
             — no Prometheus, Loki, Alertmanager or SMTP server needed.\n\n\
             State lives under --data.path: the generated router configuration (vigie.yml, \
             rewritten at every start), the outbox, the textfile directory (textfile/) whose \
             *.prom files the agent serves, and the router's alert state (router/). Ctrl-C or \
             SIGTERM stops both cleanly; the next start resumes where this one left off.",
        )
        .after_long_help(MANUAL)
        .arg(
            Arg::new("data.path")
                .long("data.path")
                .value_name("DIR")
                .default_value("data")
                .help("Directory holding everything the node keeps; created if missing"),
        )
        .arg(
            Arg::new("agent.listen-address")
                .long("agent.listen-address")
                .value_name("HOST:PORT")
                .default_value("127.0.0.1:9100")
                .help("Where the agent serves /metrics (':9100' for every interface)"),
        )
        .arg(
            Arg::new("router.listen-address")
                .long("router.listen-address")
                .value_name("HOST:PORT")
                .default_value("127.0.0.1:9093")
                .help("Where the router serves its UI and APIs (':9093' for every interface)"),
        )
        .arg(
            Arg::new("rules")
                .long("rules")
                .value_name("GLOB")
                .action(ArgAction::Append)
                .help(
                    "Rule files to evaluate; repeatable [default: rules/*.yml, from the \
                     working directory, else from the source tree the binary was built in]",
                ),
        )
        .arg(
            Arg::new("config.file")
                .long("config.file")
                .value_name("FILE")
                .help(
                    "Router configuration to use instead of the generated one (Prometheus' and \
                     Alertmanager's keys); its rule_files and scrape_configs are used as written",
                ),
        )
        .arg(
            Arg::new("agent.config.file")
                .long("agent.config.file")
                .value_name("FILE")
                .help("Log shipping configuration in Promtail's format (clients: Loki's push URL)"),
        )
        .arg(
            Arg::new("scrape.interval")
                .long("scrape.interval")
                .value_name("DURATION")
                .default_value("15s")
                .help("How often the router scrapes and evaluates the rules"),
        )
        .arg(
            Arg::new("route.group-wait")
                .long("route.group-wait")
                .value_name("DURATION")
                .default_value("10s")
                .help("How long a new alert group waits for more alerts before its first notification"),
        )
        .arg(
            Arg::new("route.group-interval")
                .long("route.group-interval")
                .value_name("DURATION")
                .default_value("1m")
                .help("How long a group waits before notifying its changes (new alerts, resolutions)"),
        )
}

/// The resolved command line.
struct Up {
    data: PathBuf,
    agent_listen: String,
    router_listen: String,
    rules: Vec<String>,
    config_file: Option<PathBuf>,
    agent_config: Option<PathBuf>,
    scrape_interval: String,
    group_wait: String,
    group_interval: String,
    log_level: LevelFilter,
}

pub fn main(m: &ArgMatches) -> ExitCode {
    let get = |n: &str| m.get_one::<String>(n).cloned().unwrap_or_default();
    let up = Up {
        data: PathBuf::from(get("data.path")),
        agent_listen: get("agent.listen-address"),
        router_listen: get("router.listen-address"),
        rules: m
            .get_many::<String>("rules")
            .map(|v| v.cloned().collect())
            .unwrap_or_default(),
        config_file: m.get_one::<String>("config.file").map(PathBuf::from),
        agent_config: m.get_one::<String>("agent.config.file").map(PathBuf::from),
        scrape_interval: get("scrape.interval"),
        group_wait: get("route.group-wait"),
        group_interval: get("route.group-interval"),
        log_level: match get("log.level").as_str() {
            "debug" => LevelFilter::DEBUG,
            "warn" => LevelFilter::WARN,
            "error" => LevelFilter::ERROR,
            _ => LevelFilter::INFO,
        },
    };
    for flag in [
        "scrape.interval",
        "route.group-wait",
        "route.group-interval",
    ] {
        if let Err(e) = vigie_agent::cli::parse_duration(&get(flag)) {
            eprintln!("vigie up: --{flag}: {e}");
            return ExitCode::from(2);
        }
    }
    vigie_agent::serve::init_logging(up.log_level, &["vigie", "vigie_agent", "vigie_router"]);
    // Two malloc arenas rather than one per thread, as each binary on its own.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts allocator tunables; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(64)
        .thread_keep_alive(Duration::from_secs(600))
        .enable_all()
        .build();
    match rt
        .context("starting the runtime")
        .and_then(|rt| rt.block_on(run(up)))
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vigie up: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The rule globs as absolute paths; the default falls back to the source tree's `rules/` when
/// the working directory has none, so the binary also works when started elsewhere.
fn rule_globs(given: &[String]) -> anyhow::Result<Vec<String>> {
    let cwd = std::env::current_dir().context("reading the working directory")?;
    if given.is_empty() {
        let here = cwd.join("rules");
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
        let dir = if here.is_dir() || !source.is_dir() {
            here
        } else {
            source
        };
        if !has_rule_file(&dir) {
            bail!(
                "no rule files in {} (run from the repository root, or pass --rules GLOB)",
                dir.display()
            );
        }
        return Ok(vec![format!("{}/*.yml", dir.display())]);
    }
    Ok(given
        .iter()
        .map(|g| {
            if Path::new(g).is_absolute() {
                g.clone()
            } else {
                format!("{}/{g}", cwd.display())
            }
        })
        .collect())
}

fn has_rule_file(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.path().extension().is_some_and(|x| x == "yml"))
    })
}

/// Prepares the data directory and the router configuration, then runs both parts until a
/// signal or until either fails (which stops the other).
async fn run(up: Up) -> anyhow::Result<()> {
    let textfile = up.data.join("textfile");
    let router_data = up.data.join("router");
    for dir in [&up.data, &textfile, &router_data] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let config_file = match &up.config_file {
        Some(f) => f.clone(),
        None => {
            let rules = rule_globs(&up.rules)?;
            let path = up.data.join("vigie.yml");
            let text = NodeConfig {
                rule_files: &rules,
                agent: &local_target(&up.agent_listen),
                router: &local_target(&up.router_listen),
                scrape_interval: &up.scrape_interval,
                group_wait: &up.group_wait,
                group_interval: &up.group_interval,
            }
            .render();
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
            path
        }
    };

    let mut agent_args = vec![
        "vigie-agent".to_string(),
        format!("--web.listen-address={}", up.agent_listen),
        format!("--collector.textfile.directory={}", textfile.display()),
    ];
    if let Some(c) = &up.agent_config {
        agent_args.push(format!("--config.file={}", c.display()));
    }
    let agent_cli = vigie_agent::cli::parse(&agent_args).map_err(|e| anyhow::anyhow!("{e}"))?;
    let router_opts = vigie_router::server::Options {
        config_file: config_file.clone(),
        listen: up.router_listen.clone(),
        storage_path: router_data,
        retention_ms: 6 * 3600 * 1000,
        external_url: format!("http://{}", local_target(&up.router_listen)),
    };

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let mut agent = tokio::spawn(vigie_agent::serve::run(agent_cli, stopped(stop_rx.clone())));
    let mut router = tokio::spawn(vigie_router::server::run_until(
        router_opts,
        stopped(stop_rx.clone()),
    ));
    let banner = tokio::spawn(announce(
        local_target(&up.agent_listen),
        local_target(&up.router_listen),
        up.data.clone(),
        config_file,
    ));
    let (mut agent_done, mut router_done) = (None, None);
    tokio::select! {
        _ = vigie_router::server::shutdown_signal() => {
            tracing::info!("stopping the agent and the router");
        }
        r = &mut agent => agent_done = Some(r),
        r = &mut router => router_done = Some(r),
    }
    banner.abort();
    let _ = stop_tx.send(true);
    let agent = match agent_done {
        Some(r) => r,
        None => agent.await,
    };
    let router = match router_done {
        Some(r) => r,
        None => router.await,
    };
    agent.context("the agent task")?.context("agent")?;
    router.context("the router task")?.context("router")?;
    tracing::info!("stopped");
    Ok(())
}

/// Prints where to look once both parts accept connections.
async fn announce(agent: String, router: String, data: PathBuf, config: PathBuf) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    for addr in [&agent, &router] {
        while tokio::net::TcpStream::connect(addr.as_str()).await.is_err() {
            if tokio::time::Instant::now() > deadline {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    println!(
        "\nVigie is watching this node.\n\
         \x20 metrics     http://{agent}/metrics\n\
         \x20 alerts UI   http://{router}/ui/\n\
         \x20 API         http://{router}/api/v2/alerts (Alertmanager v2), http://{router}/api/v1/query (Prometheus)\n\
         \x20 outbox      {outbox} (notifications also print here)\n\
         \x20 textfile    {textfile}/*.prom are served with the node's metrics\n\
         \x20 config      {config}\n\
         Ctrl-C stops both.\n",
        outbox = data.join("outbox.jsonl").display(),
        textfile = data.join("textfile").display(),
        config = config.display(),
    );
}
