//! vigie-router: `run` is the long-running router; `check` and `test` speak promtool's and
//! amtool's formats and exit codes.

use std::path::Path;
use std::process::ExitCode;

use clap::{Arg, ArgAction, ArgMatches, Command};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use vigie_promql::Engine;
use vigie_promql::promqltest::{self, Verdict};
use vigie_router::{check, server, unittest};

fn files_arg() -> Arg {
    Arg::new("files")
        .num_args(1..)
        .required(true)
        .value_name("FILE")
}

/// The manual's other sections, after the commands in `--help`.
const MANUAL: &str = "\
Examples:
  vigie-router run --config.file=/etc/vigie/router.yml --storage.path=/var/lib/vigie-router
      Evaluate the rule files and route the alerts (an alertmanager.yml works as it is).
  vigie-router check config /etc/vigie/router.yml
      What promtool check config and amtool check-config say, in one.
  vigie-router test rules rules/tests/*.yml
      promtool's rule unit tests, unchanged.
  vigie-router test routes --config /etc/vigie/router.yml severity=critical team=db
      Which receivers an alert with these labels reaches.
  vigie-router oncall who primary --at 2026-12-24T23:00:00+01:00
      Who is on call then, and the next hand-off.

Exit status:
  run: 0 stopped by a signal, 1 could not start (the configuration is named with its error).
  check, test: 0 success, 1 a failure (promtool's and amtool's codes; check rules
  --lint-fatal: 3 on lint findings), 2 a usage error.

Files:
  --config.file    Prometheus' keys (global, rule_files, scrape_configs, alerting) and
                   Alertmanager's (route, receivers, inhibit_rules, time_intervals, templates)
                   side by side, plus Vigie's remote_query and oncall: docs/configuration.md.
  --storage.path   state.redb (alerts, silences, notification log), alerts.json (rule state).

See also:
  vigie-router run --help, vigie-agent --help, vigie up --help; Prometheus' and Alertmanager's
  documentation for the keys and semantics the router shares with them.";

const RUN_MANUAL: &str = "\
Endpoints:
  /ui/                               alerts by group, silences, routing tester, on-call, status
  /api/v2/...                        Alertmanager's API v2 (alerts, groups, silences, status,
                                     receivers): Prometheus, Loki rulers, Grafana and amtool
  /api/v1/query, query_range, series, labels, label/NAME/values
                                     Prometheus' query API over the embedded store
  /api/v1/rules, alerts, targets     Prometheus' rule and target views
  /api/v1/notifications              the last deliveries with every try's answer
  /metrics, /-/healthy, /-/ready, /-/reload (POST)

Signals:
  SIGHUP           reload the configuration and rule files (so do POST /-/reload and any change
                   to those files); a broken file keeps the previous configuration running
  SIGINT, SIGTERM  stop: rule state is saved, alerts and silences are already on disk

Exit status:
  0 stopped by a signal; 1 could not start (the error names the file, line and key); 2 a bad flag.";

fn command() -> Command {
    Command::new("vigie-router")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Evaluates Prometheus rule files and routes alerts")
        .long_about(
            "vigie-router evaluates Prometheus rule files, against its own embedded store (it \
             scrapes the targets itself) or a Prometheus-compatible query API, and routes the \
             alerts as Alertmanager does — routing tree, grouping, inhibition, silences, time \
             intervals, Alertmanager's API v2 — to chat, mail and SMS, with on-call schedules, \
             acknowledgement and escalation. Alerts, silences and the notification log are on \
             disk before the API answers: a restart loses nothing and re-sends nothing.",
        )
        .after_long_help(MANUAL)
        .subcommand_required(true)
        .subcommand(
            Command::new("run")
                .about("Run the router: scrape, evaluate rules, serve the APIs")
                .after_long_help(RUN_MANUAL)
                .arg(
                    Arg::new("config.file")
                        .long("config.file")
                        .default_value("vigie-router.yml")
                        .help("Configuration file (Prometheus' and Alertmanager's keys)"),
                )
                .arg(
                    Arg::new("web.listen-address")
                        .long("web.listen-address")
                        .default_value(":9093")
                        .help("Address for the API and UI"),
                )
                .arg(
                    Arg::new("web.external-url")
                        .long("web.external-url")
                        .help("URL the router is reachable at (links in alerts)"),
                )
                .arg(
                    Arg::new("storage.path")
                        .long("storage.path")
                        .default_value("data/")
                        .help("Directory for alert state and the notification log"),
                )
                .arg(
                    Arg::new("storage.retention")
                        .long("storage.retention")
                        .default_value("6h")
                        .help("How long the embedded store keeps samples"),
                )
                .arg(
                    Arg::new("log.level")
                        .long("log.level")
                        .default_value("info")
                        .value_parser(["debug", "info", "warn", "error"]),
                ),
        )
        .subcommand(
            Command::new("check")
                .about("Check configuration and rule files")
                .subcommand_required(true)
                .subcommand(
                    Command::new("config")
                        .about("Check configuration files and the rule files they name")
                        .arg(files_arg()),
                )
                .subcommand(
                    Command::new("rules")
                        .about("Check rule files, like promtool check rules")
                        .arg(
                            Arg::new("lint")
                                .long("lint")
                                .value_parser(["duplicate-rules", "none"])
                                .default_value("duplicate-rules"),
                        )
                        .arg(
                            Arg::new("lint-fatal")
                                .long("lint-fatal")
                                .action(ArgAction::SetTrue),
                        )
                        .arg(files_arg()),
                ),
        )
        .subcommand(
            Command::new("oncall")
                .about("On-call schedules")
                .subcommand_required(true)
                .subcommand(
                    Command::new("who")
                        .about("Who is on call now (or --at TIME), and the next hand-off")
                        .arg(Arg::new("schedule").value_name("SCHEDULE"))
                        .arg(
                            Arg::new("at")
                                .long("at")
                                .value_name("TIME")
                                .help("RFC 3339 instant, e.g. 2026-12-24T23:00:00+01:00"),
                        )
                        .arg(
                            Arg::new("config.file")
                                .long("config.file")
                                .default_value("vigie-router.yml"),
                        ),
                ),
        )
        .subcommand(
            Command::new("test")
                .about("Run rule unit tests or PromQL test scripts")
                .subcommand_required(true)
                .subcommand(
                    Command::new("rules")
                        .about("Rule unit tests in promtool's format")
                        .arg(
                            Arg::new("run")
                                .long("run")
                                .action(ArgAction::Append)
                                .value_name("REGEX")
                                .help("Only run test groups whose name matches"),
                        )
                        .arg(files_arg()),
                )
                .subcommand(
                    Command::new("promql")
                        .about("PromQL test scripts in Prometheus' promqltest format")
                        .arg(files_arg()),
                )
                .subcommand(
                    Command::new("routes")
                        .about("Which receivers an alert reaches, like amtool config routes test")
                        .arg(
                            Arg::new("config")
                                .long("config")
                                .visible_alias("config.file")
                                .default_value("vigie-router.yml"),
                        )
                        .arg(
                            Arg::new("verify.receivers")
                                .long("verify.receivers")
                                .help("Expected receivers, comma-separated; exit 1 on mismatch"),
                        )
                        .arg(
                            Arg::new("tree")
                                .long("tree")
                                .action(ArgAction::SetTrue)
                                .help("Print the routing tree"),
                        )
                        .arg(Arg::new("labels").num_args(0..).value_name("LABEL=VALUE")),
                ),
        )
}

fn files(m: &ArgMatches) -> Vec<&Path> {
    m.get_many::<String>("files")
        .map(|v| v.map(Path::new).collect())
        .unwrap_or_default()
}

fn main() -> ExitCode {
    let m = command().get_matches();
    match m.subcommand() {
        Some(("check", c)) => match c.subcommand() {
            Some(("rules", r)) => {
                let lint = r
                    .get_one::<String>("lint")
                    .is_some_and(|l| l == "duplicate-rules");
                let report = check::rules(&files(r), lint, r.get_flag("lint-fatal"));
                print!("{}", report.stdout);
                eprint!("{}", report.stderr);
                ExitCode::from(report.code)
            }
            Some(("config", f)) => {
                let report = check::config(&files(f));
                print!("{}", report.stdout);
                eprint!("{}", report.stderr);
                ExitCode::from(report.code)
            }
            _ => ExitCode::from(2),
        },
        Some(("oncall", o)) => match o.subcommand() {
            Some(("who", w)) => oncall_who(w),
            _ => ExitCode::from(2),
        },
        Some(("test", t)) => match t.subcommand() {
            Some(("rules", r)) => test_rules(r),
            Some(("promql", p)) => test_promql(&files(p)),
            Some(("routes", r)) => {
                let labels: Vec<String> = r
                    .get_many::<String>("labels")
                    .map(|v| v.cloned().collect())
                    .unwrap_or_default();
                let config = r.get_one::<String>("config").cloned().unwrap_or_default();
                let report = check::routes(
                    Path::new(&config),
                    &labels,
                    r.get_one::<String>("verify.receivers").map(String::as_str),
                    r.get_flag("tree"),
                );
                print!("{}", report.stdout);
                eprint!("{}", report.stderr);
                ExitCode::from(report.code)
            }
            _ => ExitCode::from(2),
        },
        Some(("run", r)) => run(r),
        _ => ExitCode::from(2),
    }
}

fn run(m: &ArgMatches) -> ExitCode {
    let get = |n: &str| m.get_one::<String>(n).cloned().unwrap_or_default();
    let level = match get("log.level").as_str() {
        "debug" => LevelFilter::DEBUG,
        "warn" => LevelFilter::WARN,
        "error" => LevelFilter::ERROR,
        _ => LevelFilter::INFO,
    };
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(
            Targets::new()
                .with_default(LevelFilter::WARN.min(level))
                .with_target("vigie_router", level),
        )
        .init();
    let retention = match vigie_promql::notation::parse_duration(&get("storage.retention")) {
        Ok(r) if r > 0 => r,
        _ => {
            eprintln!(
                "--storage.retention: {:?} is not a positive duration",
                get("storage.retention")
            );
            return ExitCode::from(2);
        }
    };
    let listen = get("web.listen-address");
    let external_url = m
        .get_one::<String>("web.external-url")
        .cloned()
        .unwrap_or_else(|| {
            let host = nix_hostname();
            let port = listen.rsplit(':').next().unwrap_or("9093");
            format!("http://{host}:{port}")
        });
    let opts = server::Options {
        config_file: get("config.file").into(),
        listen,
        storage_path: get("storage.path").into(),
        retention_ms: retention,
        external_url: external_url.trim_end_matches('/').to_string(),
    };
    // Two malloc arenas instead of one per thread: alert bursts are parsed on every worker and
    // the freed buffers would otherwise stay spread over many arenas.
    // SAFETY: mallopt only adjusts allocator tunables; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("starting the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(server::run(opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("vigie-router: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn nix_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

fn test_rules(m: &ArgMatches) -> ExitCode {
    let mut run = Vec::new();
    for r in m.get_many::<String>("run").into_iter().flatten() {
        match regex::Regex::new(r) {
            Ok(re) => run.push(re),
            Err(e) => {
                eprintln!("--run {r:?}: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let opts = unittest::Options { run };
    let mut ok = true;
    for f in files(m) {
        let (report, passed) = unittest::run_file(f, &opts);
        println!("{report}");
        ok &= passed;
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn test_promql(paths: &[&Path]) -> ExitCode {
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    let engine = Engine::default();
    for path in paths {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                println!("FAIL {}:0: {e}", path.display());
                failed += 1;
                continue;
            }
        };
        for o in promqltest::run(&text, &engine) {
            let at = format!("{}:{}", path.display(), o.line);
            match o.verdict {
                Verdict::Pass => {
                    passed += 1;
                    println!("PASS {at}");
                }
                Verdict::Fail(why) => {
                    failed += 1;
                    println!("FAIL {at}: {why}");
                }
                Verdict::Skip(why) => {
                    skipped += 1;
                    println!("SKIP {at}: {why}");
                }
            }
        }
    }
    println!("{passed} passed, {failed} failed, {skipped} skipped");
    if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// `oncall who`: one line per schedule; exit 1 when the configuration or the time is wrong.
fn oncall_who(m: &ArgMatches) -> ExitCode {
    let file = m
        .get_one::<String>("config.file")
        .cloned()
        .unwrap_or_default();
    let cfg = match vigie_router::config::Config::load(Path::new(&file)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    let Some(oc) = cfg.routing.as_ref().and_then(|r| r.oncall.clone()) else {
        eprintln!("{file}: no oncall section");
        return ExitCode::from(1);
    };
    let at = match m.get_one::<String>("at") {
        None => jiff::Timestamp::now(),
        Some(t) => match t.parse() {
            Ok(t) => t,
            Err(e) => {
                eprintln!("--at {t:?}: {e}");
                return ExitCode::from(1);
            }
        },
    };
    let schedule = m.get_one::<String>("schedule").map(String::as_str);
    match server::oncall::who(&oc, schedule, at) {
        Ok(rows) => {
            for r in rows {
                let s = |k: &str| r.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
                let now = r.get("oncall").and_then(|v| v.as_str()).unwrap_or("nobody");
                let next = r
                    .get("next")
                    .filter(|n| !n.is_null())
                    .map(|n| {
                        format!(
                            "; then {} from {}",
                            n.get("oncall").and_then(|v| v.as_str()).unwrap_or("nobody"),
                            n.get("at").and_then(|v| v.as_str()).unwrap_or("")
                        )
                    })
                    .unwrap_or_default();
                println!("{}: {now} ({}){next}", s("schedule"), s("source"));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn command_is_well_formed() {
        super::command().debug_assert();
    }
}
