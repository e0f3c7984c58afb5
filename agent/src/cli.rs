//! Command-line flags with node_exporter's names, so a unit file can swap binaries unchanged.
//! `--collector.NAME` / `--no-collector.NAME` are generated from the collector table.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Arg, ArgAction, ArgMatches, Command};
use regex::Regex;

use crate::collector::{
    self, DeviceFilter, Options, ceph, cgroup, cpu, file_age, filesystem, netclass, smartctl,
    systemd,
};
use crate::paths::Paths;

/// node_exporter 1.5's collectors that vigie-agent does not have (yet). Their flags are
/// accepted so a unit file written for node_exporter still starts; enabling one is a warning.
pub const NODE_EXPORTER_ONLY: &[&str] = &[
    "arp",
    "bcache",
    "bonding",
    "btrfs",
    "buddyinfo",
    "cgroups",
    "conntrack",
    "dmi",
    "drbd",
    "drm",
    "edac",
    "ethtool",
    "fibrechannel",
    "infiniband",
    "interrupts",
    "ipvs",
    "ksmd",
    "lnstat",
    "logind",
    "meminfo_numa",
    "mountstats",
    "network_route",
    "nfs",
    "nfsd",
    "ntp",
    "nvme",
    "os",
    "perf",
    "powersupplyclass",
    "processes",
    "qdisc",
    "rapl",
    "runit",
    "schedstat",
    "selinux",
    "slabinfo",
    "softnet",
    "supervisord",
    "sysctl",
    "tapestats",
    "tcpstat",
    "timex",
    "udp_queues",
    "wifi",
    "xfs",
    "zfs",
    "zoneinfo",
];

/// Options of node_exporter collectors vigie-agent has, that it accepts and ignores (the D-Bus
/// extras of the systemd collector).
const IGNORED_OPTIONS: &[&str] = &[
    "systemd.enable-task-metrics",
    "systemd.enable-restarts-metrics",
    "systemd.enable-start-time-metrics",
    "systemd.private",
];

/// Everything `vigie-agent` was asked to do.
#[derive(Debug)]
pub struct Cli {
    pub listen_addresses: Vec<String>,
    pub telemetry_path: String,
    pub web_config_file: Option<PathBuf>,
    /// `--web.listen-address` was given (it then wins over the log config's `server`).
    pub listen_explicit: bool,
    /// Promtail-shaped log shipping configuration.
    pub config_file: Option<PathBuf>,
    pub config_expand_env: bool,
    pub disable_exporter_metrics: bool,
    pub openmetrics: bool,
    pub max_requests: usize,
    pub collectors: Vec<&'static str>,
    pub collector_timeout: Duration,
    pub options: Options,
    pub log_level: String,
    /// node_exporter collectors asked for that vigie-agent does not implement.
    pub unimplemented: Vec<&'static str>,
    /// Option flags of those collectors, accepted and ignored.
    pub ignored_options: Vec<String>,
}

/// Parses a Go duration (`5s`, `1m30s`, `250ms`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let mut total = 0.0f64;
    let mut rest = s.trim();
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err("empty duration".into());
    }
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("missing unit in duration {s:?}"))?;
        let value: f64 = rest[..num_end]
            .parse()
            .map_err(|_| format!("invalid duration {s:?}"))?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            u => return Err(format!("unknown unit {u:?} in duration {s:?}")),
        };
        total += value * scale;
        rest = &rest[unit_end..];
    }
    Ok(Duration::from_secs_f64(total))
}

fn flag(name: &'static str, help: impl Into<String>) -> Arg {
    Arg::new(name)
        .long(name)
        .help(help.into())
        .action(ArgAction::SetTrue)
}

fn value(name: &'static str, help: impl Into<String>, default: Option<&'static str>) -> Arg {
    let a = Arg::new(name)
        .long(name)
        .help(help.into())
        .value_name("VALUE")
        .action(ArgAction::Set);
    match default {
        Some(d) => a.default_value(d),
        None => a,
    }
}

/// A bool flag with its `--no-` twin; the last one given wins.
fn bool_pair(name: &'static str, help: String) -> [Arg; 2] {
    let no: &'static str = Box::leak(format!("no-{name}").into_boxed_str());
    [
        Arg::new(name)
            .long(name)
            .help(help)
            .action(ArgAction::SetTrue)
            .overrides_with(no),
        Arg::new(no)
            .long(no)
            .hide(true)
            .action(ArgAction::SetTrue)
            .overrides_with(name),
    ]
}

/// The manual's other sections, after the options in `--help`.
const MANUAL: &str = "\
Examples:
  vigie-agent
      node_exporter's defaults: every default collector on :9100/metrics.
  vigie-agent --collector.textfile.directory=/var/lib/vigie-agent/textfile \\
      --collector.smartctl --collector.file_age.path='/mnt/nas/backup/*'
      Also serve scripts' *.prom files, drive health and the age of the newest backup.
  vigie-agent --config.file=/etc/vigie/logs.yaml --config.expand-env
      Also ship log files and the journal to Loki (Promtail's configuration format).
  curl 'localhost:9100/metrics?collect[]=cpu&collect[]=meminfo'
      One scrape of two collectors only (exclude[]=NAME leaves some out).

Endpoints:
  /metrics     text format 0.0.4, or OpenMetrics 1.0 when the scraper asks; gzip when asked
  /-/healthy   200 while the process runs
  /-/ready     200 once listening
  /            a landing page with a link to the metrics

Files:
  --web.config.file   TLS and basic auth in the exporter toolkit's YAML; re-read on change
  --config.file       log shipping in Promtail's YAML; positions and spool where it says
  Every key of both is in docs/configuration.md; every flag in docs/cli.md.

Signals:
  SIGINT, SIGTERM     stop: HTTP stops, read log lines reach the spool, positions are saved

Exit status:
  0   stopped by a signal
  1   could not start (a bad configuration file, an address in use)
  2   a bad flag or flag value (named in the message)

See also:
  vigie-router --help, vigie up --help; node_exporter's and Promtail's documentation for the
  metric names and configuration keys the agent shares with them.";

pub fn command() -> Command {
    let mut cmd = Command::new("vigie-agent")
        .version(crate::selfmetrics::VERSION)
        .about("Exposes node metrics in node_exporter's names for Prometheus to scrape.")
        .long_about(
            "vigie-agent serves this node's CPU, memory, network, filesystem and disk metrics on \
             /metrics, under node_exporter 1.5's metric names, labels and flags, so existing \
             dashboards and alert rules keep working. Each collector runs with a deadline: a hung \
             mount or driver reports node_scrape_collector_success 0 instead of stalling the scrape.",
        )
        .after_long_help(MANUAL)
        .disable_version_flag(true)
        .arg(Arg::new("version").long("version").action(ArgAction::Version).help("Print the version and exit"))
        .next_help_heading("Web and log shipping")
        .arg(value("web.listen-address", "Addresses on which to expose metrics and web interface (repeatable)", Some(":9100")).action(ArgAction::Append))
        .arg(value("web.telemetry-path", "Path under which to expose metrics", Some("/metrics")))
        .arg(value("web.config.file", "Path to a configuration file that can enable TLS or authentication (exporter toolkit format)", None))
        .arg(value("config.file", "Log shipping configuration in Promtail's format (server, clients, positions, scrape_configs); ships files and the journal to Loki", None))
        .arg(flag("config.expand-env", "Expand ${VAR} and ${VAR:-default} in --config.file from the environment"))
        .arg(flag("web.disable-exporter-metrics", "Exclude the agent's own vigie_* metrics"))
        .arg(value("web.max-requests", "Maximum number of parallel scrape requests; 0 disables the limit", Some("40")))
        .next_help_heading("Host paths (read the host from a container)")
        .arg(value("path.procfs", "procfs mountpoint", Some("/proc")))
        .arg(value("path.sysfs", "sysfs mountpoint", Some("/sys")))
        .arg(value("path.rootfs", "rootfs mountpoint", Some("/")))
        .arg(value("path.udev.data", "udev data path", Some("/run/udev/data")))
        .next_help_heading("Collector options")
        .arg(flag("collector.disable-defaults", "Set all collectors to disabled by default"))
        .arg(value("collector.timeout", "Deadline for one collector in one scrape (vigie extension)", Some("10s")))
        .arg(value("collector.cpu.info.flags-include", "Filter the `flags` field in cpuInfo with a value that must be a regular expression", None))
        .arg(value("collector.cpu.info.bugs-include", "Filter the `bugs` field in cpuInfo with a value that must be a regular expression", None))
        .arg(value("collector.diskstats.device-exclude", "Regexp of diskstats devices to exclude (mutually exclusive to device-include)", None).alias("collector.diskstats.ignored-devices"))
        .arg(value("collector.diskstats.device-include", "Regexp of diskstats devices to include (mutually exclusive to device-exclude)", None))
        .arg(value("collector.filesystem.mount-points-exclude", "Regexp of mount points to exclude for filesystem collector", Some(filesystem::DEFAULT_MOUNT_POINTS_EXCLUDE)).alias("collector.filesystem.ignored-mount-points"))
        .arg(value("collector.filesystem.fs-types-exclude", "Regexp of filesystem types to exclude for filesystem collector", Some(filesystem::DEFAULT_FS_TYPES_EXCLUDE)).alias("collector.filesystem.ignored-fs-types"))
        .arg(value("collector.filesystem.mount-timeout", "How long to wait for a mount to respond before marking it as stale", Some("5s")))
        .arg(value("collector.netclass.ignored-devices", "Regexp of net devices to ignore for netclass collector", Some("^$")))
        .arg(flag("collector.netclass.ignore-invalid-speed", "Ignore devices where the speed is invalid"))
        .arg(value("collector.netdev.device-include", "Regexp of net devices to include (mutually exclusive to device-exclude)", None).alias("collector.netdev.device-whitelist"))
        .arg(value("collector.netdev.device-exclude", "Regexp of net devices to exclude (mutually exclusive to device-include)", None).alias("collector.netdev.device-blacklist"))
        .arg(value("collector.netstat.fields", "Regexp of fields to return for netstat collector", Some(collector::netstat::DEFAULT_FIELDS)))
        .arg(value("collector.textfile.directory", "Directory to read text files with metrics from", Some("")))
        .arg(value("collector.vmstat.fields", "Regexp of fields to return for vmstat collector", Some(collector::vmstat::DEFAULT_FIELDS)))
        .arg(flag("collector.stat.softirq", "Export softirq calls per vector"))
        .arg(flag("collector.cpu.info", "Enables metric node_cpu_info"))
        .arg(value("collector.smartctl.path", "The smartctl binary (smartmontools 7+)", Some("smartctl")))
        .arg(value("collector.smartctl.interval", "How often smartctl reads the devices, in the background", Some("5m")))
        .arg(value("collector.smartctl.timeout", "Deadline for one smartctl run (the scan, or one device); a hung run is killed", Some("30s")))
        .arg(value("collector.smartctl.device", "Device to read instead of scanning, as /dev/sda or /dev/sda;sat (repeatable)", None).action(ArgAction::Append))
        .arg(value("collector.smartctl.device-exclude", "Regexp of devices (sda, nvme0) not to read", None))
        .arg(value("collector.ceph.path", "The ceph CLI", Some("ceph")))
        .arg(value("collector.ceph.args", "Extra arguments for every ceph command, space-separated (--id monitoring --cluster ceph)", Some("")))
        .arg(value("collector.ceph.interval", "How often the ceph commands run, in the background", Some("30s")))
        .arg(value("collector.ceph.timeout", "Deadline for one ceph command; a hung one is killed", Some("10s")))
        .arg(value("collector.cgroup.max-depth", "Levels of the cgroup v2 hierarchy walked below the root", Some("4")))
        .arg(value("collector.cgroup.max-cgroups", "Cgroups reported per scrape at most (breadth first); the rest are counted in node_cgroup_skipped", Some("500")))
        .arg(value("collector.cgroup.include", "Regexp of cgroup paths (/system.slice/nginx.service) to report", None))
        .arg(value("collector.systemd.path", "The systemctl binary", Some("systemctl")))
        .arg(value("collector.systemd.interval", "How often unit states are read, in the background", Some("15s")))
        .arg(value("collector.systemd.timeout", "Deadline for one systemctl run; a hung one is killed", Some("10s")))
        .arg(value("collector.systemd.unit-include", "Regexp of systemd units to include. Units must both match include and not match exclude to be included", Some(systemd::DEFAULT_UNIT_INCLUDE)).alias("collector.systemd.unit-whitelist"))
        .arg(value("collector.systemd.unit-exclude", "Regexp of systemd units to exclude. Units must both match include and not match exclude to be included", Some(systemd::DEFAULT_UNIT_EXCLUDE)).alias("collector.systemd.unit-blacklist"))
        .arg(value("collector.file_age.path", "Absolute path or glob (/mnt/nas/backup/*.tar.gz, /srv/dumps/**) whose newest file, count and size are reported (repeatable)", None).action(ArgAction::Append))
        .arg(value("collector.file_age.interval", "How often the file_age paths are walked, in the background", Some("1m")))
        .next_help_heading("Logging")
        .arg(value("log.level", "Only log messages with the given severity or above: debug, info, warn, error", Some("info")))
        .arg(value("log.format", "Output format of log messages: logfmt", Some("logfmt")));
    for (heading, [on, off]) in [
        ("Collector options", bool_pair("collector.cpu.guest", "Enables metric node_cpu_guest_seconds_total (default: enabled)".into())),
        ("Web and log shipping", bool_pair("web.openmetrics", "Offer OpenMetrics 1.0 to scrapers that ask for it; --no-web.openmetrics serves text 0.0.4 only, as node_exporter does (default: enabled)".into())),
        ("Collector options", bool_pair("collector.netdev.netlink", "Use netlink to gather stats instead of /proc/net/dev (default: enabled)".into())),
        ("Collector options", bool_pair("collector.netclass.netlink", "Use netlink for most netclass attributes instead of reading every sysfs file (default: enabled)".into())),
    ] {
        cmd = cmd.arg(on.help_heading(heading)).arg(off);
    }
    cmd = cmd
        .next_help_heading("Collectors (--collector.NAME enables, --no-collector.NAME disables)");
    for spec in collector::ALL {
        let name: &'static str = Box::leak(format!("collector.{}", spec.name).into_boxed_str());
        let state = if spec.default_enabled {
            "enabled"
        } else {
            "disabled"
        };
        let [on, off] = bool_pair(
            name,
            format!(
                "Enable the {} collector: {} (default: {state})",
                spec.name, spec.help
            ),
        );
        cmd = cmd.arg(on).arg(off);
    }
    for name in NODE_EXPORTER_ONLY {
        let flag: &'static str = Box::leak(format!("collector.{name}").into_boxed_str());
        let [on, off] = bool_pair(
            flag,
            format!(
                "node_exporter's {name} collector: not implemented by vigie-agent, accepted and ignored"
            ),
        );
        cmd = cmd.arg(on.hide(true)).arg(off);
    }
    cmd
}

/// What went wrong with a flag's value; printed as `vigie-agent: error: ...`, exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("--{flag}: {message}")]
pub struct FlagError {
    pub flag: String,
    pub message: String,
}

fn regex_flag(m: &ArgMatches, name: &str) -> Result<Option<Regex>, FlagError> {
    match m.get_one::<String>(name) {
        None => Ok(None),
        Some(s) => collector::filter_regex(s).map(Some).map_err(|e| FlagError {
            flag: name.into(),
            message: format!("invalid regular expression: {e}"),
        }),
    }
}

/// A unit filter, anchored as node_exporter anchors it.
fn anchored_flag(m: &ArgMatches, name: &str) -> Result<Regex, FlagError> {
    let pattern = m.get_one::<String>(name).cloned().unwrap_or_default();
    collector::filter_regex(&format!("^(?:{pattern})$")).map_err(|e| FlagError {
        flag: name.into(),
        message: format!("invalid regular expression: {e}"),
    })
}

fn filter_pair(
    m: &ArgMatches,
    include: &str,
    exclude: &str,
    default_exclude: Option<&str>,
) -> Result<DeviceFilter, FlagError> {
    let inc = regex_flag(m, include)?;
    let exc = regex_flag(m, exclude)?;
    if inc.is_some() && exc.is_some() {
        return Err(FlagError {
            flag: include.into(),
            message: format!("--{include} and --{exclude} are mutually exclusive"),
        });
    }
    let exc = match (&inc, exc, default_exclude) {
        (None, None, Some(d)) => Some(collector::filter_regex(d).map_err(|e| FlagError {
            flag: exclude.into(),
            message: e.to_string(),
        })?),
        (_, e, _) => e,
    };
    Ok(DeviceFilter {
        include: inc,
        exclude: exc,
    })
}

/// Parses the command line; clap's own errors (unknown flag, missing value) exit with code 2.
pub fn parse<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    // Promtail's Go flags are written with one dash: `-config.file=…`.
    let args = args
        .into_iter()
        .map(Into::into)
        .map(|a: OsString| match a.to_str() {
            Some(t) if t.starts_with("-config.") => OsString::from(format!("-{t}")),
            _ => a,
        });
    let (args, ignored) = split_foreign_options(args);
    let m = command().try_get_matches_from(args)?;
    let mut cli = from_matches(&m)
        .map_err(|e| command().error(clap::error::ErrorKind::ValueValidation, e.to_string()))?;
    cli.ignored_options = ignored;
    Ok(cli)
}

/// Takes out the option flags of node_exporter collectors the agent does not have
/// (`--collector.wifi.fixtures=…`, `--collector.sysctl.include …`), so a command line written for
/// node_exporter still starts; they are returned to be logged. `qdisk` is node_exporter's own
/// spelling of its qdisc flags.
fn split_foreign_options(args: impl Iterator<Item = OsString>) -> (Vec<OsString>, Vec<String>) {
    let foreign = |flag: &str| -> bool {
        let Some(rest) = flag
            .strip_prefix("--collector.")
            .or_else(|| flag.strip_prefix("--no-collector."))
        else {
            return false;
        };
        let Some((name, _option)) = rest.split_once('.') else {
            return false;
        };
        NODE_EXPORTER_ONLY.contains(&name) || name == "qdisk" || IGNORED_OPTIONS.contains(&rest)
    };
    let mut kept = Vec::new();
    let mut ignored = Vec::new();
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        let text = arg.to_string_lossy().into_owned();
        let flag = text
            .split_once('=')
            .map_or(text.as_str(), |(f, _)| f)
            .to_string();
        if !foreign(&flag) {
            kept.push(arg);
            continue;
        }
        // `--flag value` form: the value goes too (a following flag is not a value).
        if !text.contains('=')
            && args
                .peek()
                .is_some_and(|next| !next.to_string_lossy().starts_with("--"))
        {
            args.next();
        }
        ignored.push(flag);
    }
    (kept, ignored)
}

fn from_matches(m: &ArgMatches) -> Result<Cli, FlagError> {
    let s = |n: &str| m.get_one::<String>(n).cloned().unwrap_or_default();
    let dur = |n: &str| {
        parse_duration(&s(n)).map_err(|message| FlagError {
            flag: n.into(),
            message,
        })
    };
    let req_regex =
        |n: &str| regex_flag(m, n).map(|r| r.unwrap_or_else(|| collector::builtin_regex("^$")));
    let disable_defaults = m.get_flag("collector.disable-defaults");
    let mut collectors = Vec::new();
    for spec in collector::ALL {
        let on = m.get_flag(&format!("collector.{}", spec.name));
        let off = m.get_flag(&format!("no-collector.{}", spec.name));
        let enabled = if on {
            true
        } else if off {
            false
        } else {
            spec.default_enabled && !disable_defaults
        };
        if enabled {
            collectors.push(spec.name);
        }
    }
    let count = |n: &str| {
        s(n).parse::<usize>().map_err(|_| FlagError {
            flag: n.into(),
            message: "not a number".into(),
        })
    };
    let many = |n: &str| -> Vec<String> {
        m.get_many::<String>(n)
            .map(|v| v.filter(|x| !x.is_empty()).cloned().collect())
            .unwrap_or_default()
    };
    let file_age_paths = many("collector.file_age.path");
    for p in &file_age_paths {
        file_age::check(p).map_err(|message| FlagError {
            flag: "collector.file_age.path".into(),
            message,
        })?;
    }
    let options = Options {
        paths: Paths {
            procfs: PathBuf::from(s("path.procfs")),
            sysfs: PathBuf::from(s("path.sysfs")),
            rootfs: PathBuf::from(s("path.rootfs")),
            udev_data: PathBuf::from(s("path.udev.data")),
        },
        ceph: ceph::Options {
            path: PathBuf::from(s("collector.ceph.path")),
            args: s("collector.ceph.args")
                .split_whitespace()
                .map(str::to_string)
                .collect(),
            interval: dur("collector.ceph.interval")?,
            timeout: dur("collector.ceph.timeout")?,
        },
        cgroup: cgroup::Options {
            max_depth: count("collector.cgroup.max-depth")?,
            max_cgroups: count("collector.cgroup.max-cgroups")?,
            include: regex_flag(m, "collector.cgroup.include")?,
        },
        cpu: cpu::Options {
            guest: !m.get_flag("no-collector.cpu.guest"),
            info: m.get_flag("collector.cpu.info"),
            flags_include: regex_flag(m, "collector.cpu.info.flags-include")?,
            bugs_include: regex_flag(m, "collector.cpu.info.bugs-include")?,
        },
        diskstats: filter_pair(
            m,
            "collector.diskstats.device-include",
            "collector.diskstats.device-exclude",
            Some(collector::diskstats::DEFAULT_EXCLUDE),
        )?,
        file_age_paths,
        file_age_interval: dur("collector.file_age.interval")?,
        filesystem: filesystem::Options {
            mount_points_exclude: req_regex("collector.filesystem.mount-points-exclude")?,
            fs_types_exclude: req_regex("collector.filesystem.fs-types-exclude")?,
            mount_timeout: dur("collector.filesystem.mount-timeout")?,
            ..filesystem::Options::default()
        },
        netclass: netclass::Options {
            ignored_devices: req_regex("collector.netclass.ignored-devices")?,
            ignore_invalid_speed: m.get_flag("collector.netclass.ignore-invalid-speed"),
            // netlink describes this process's network namespace: right for the live /sys, wrong
            // for a fixture tree or another root, where sysfs is read as node_exporter does.
            netlink: !m.get_flag("no-collector.netclass.netlink")
                && s("path.sysfs").trim_end_matches('/') == "/sys",
        },
        netdev: filter_pair(
            m,
            "collector.netdev.device-include",
            "collector.netdev.device-exclude",
            None,
        )?,
        netdev_netlink: !m.get_flag("no-collector.netdev.netlink"),
        netstat_fields: req_regex("collector.netstat.fields")?,
        smartctl: smartctl::Options {
            path: PathBuf::from(s("collector.smartctl.path")),
            interval: dur("collector.smartctl.interval")?,
            timeout: dur("collector.smartctl.timeout")?,
            devices: many("collector.smartctl.device"),
            device_exclude: regex_flag(m, "collector.smartctl.device-exclude")?,
        },
        systemd: systemd::Options {
            path: PathBuf::from(s("collector.systemd.path")),
            interval: dur("collector.systemd.interval")?,
            timeout: dur("collector.systemd.timeout")?,
            unit_include: anchored_flag(m, "collector.systemd.unit-include")?,
            unit_exclude: anchored_flag(m, "collector.systemd.unit-exclude")?,
        },
        links: Default::default(),
        stat_softirq: m.get_flag("collector.stat.softirq"),
        textfile_directory: Some(s("collector.textfile.directory")).filter(|d| !d.is_empty()),
        vmstat_fields: req_regex("collector.vmstat.fields")?,
    };
    let telemetry_path = s("web.telemetry-path");
    if !telemetry_path.starts_with('/') || telemetry_path == "/" {
        return Err(FlagError {
            flag: "web.telemetry-path".into(),
            message: "must start with '/' and not be '/'".into(),
        });
    }
    let log_level = s("log.level");
    if !matches!(log_level.as_str(), "debug" | "info" | "warn" | "error") {
        return Err(FlagError {
            flag: "log.level".into(),
            message: format!("unknown level {log_level:?}"),
        });
    }
    if s("log.format") != "logfmt" {
        return Err(FlagError {
            flag: "log.format".into(),
            message: "only logfmt is supported".into(),
        });
    }
    Ok(Cli {
        listen_addresses: m
            .get_many::<String>("web.listen-address")
            .map(|v| v.cloned().collect())
            .unwrap_or_default(),
        telemetry_path,
        web_config_file: m
            .get_one::<String>("web.config.file")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from),
        listen_explicit: m.value_source("web.listen-address")
            == Some(clap::parser::ValueSource::CommandLine),
        config_file: m
            .get_one::<String>("config.file")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from),
        config_expand_env: m.get_flag("config.expand-env"),
        disable_exporter_metrics: m.get_flag("web.disable-exporter-metrics"),
        openmetrics: !m.get_flag("no-web.openmetrics"),
        max_requests: s("web.max-requests").parse().map_err(|_| FlagError {
            flag: "web.max-requests".into(),
            message: "not a number".into(),
        })?,
        collectors,
        collector_timeout: dur("collector.timeout")?,
        options,
        log_level,
        ignored_options: Vec::new(),
        unimplemented: NODE_EXPORTER_ONLY
            .iter()
            .copied()
            .filter(|n| m.get_flag(&format!("collector.{n}")))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_exporter_flags() {
        let cli = parse([
            "vigie-agent",
            "--collector.disable-defaults",
            "--collector.cpu",
            "--collector.meminfo",
            "--no-collector.meminfo",
            "--web.listen-address=127.0.0.1:1",
            "--collector.filesystem.mount-timeout=1m30s",
        ])
        .unwrap();
        assert_eq!(cli.collectors, ["cpu"]);
        assert_eq!(cli.listen_addresses, ["127.0.0.1:1"]);
        assert_eq!(
            cli.options.filesystem.mount_timeout,
            Duration::from_secs(90)
        );
        let all = parse(["vigie-agent", "--no-collector.cpu"]).unwrap();
        assert!(!all.collectors.contains(&"cpu") && all.collectors.contains(&"meminfo"));
        assert!(
            !parse(["vigie-agent", "--no-collector.cpu.guest"])
                .unwrap()
                .options
                .cpu
                .guest
        );
    }

    #[test]
    fn node_exporters_end_to_end_command_line_starts() {
        // The option flags node_exporter's own e2e test passes (end-to-end-test.sh, v1.5.0).
        let cli = parse([
            "vigie-agent",
            "--collector.wifi.fixtures=collector/fixtures/wifi",
            "--collector.qdisc.fixtures=collector/fixtures/qdisc/",
            "--collector.qdisk.device-include=(wlan0|eth0)",
            "--collector.arp.device-exclude=nope",
            "--collector.bcache.priorityStats",
            "--collector.sysctl.include",
            "kernel.threads-max",
            "--collector.sysctl.include-info=kernel.seccomp.actions_avail",
            "--collector.netclass.ignored-devices=(dmz|int)",
            "--collector.netclass.ignore-invalid-speed",
            "--collector.netdev.device-include=lo",
            "--collector.cpu.info",
            "--collector.stat.softirq",
            "--collector.wifi",
            "--log.level=debug",
        ])
        .unwrap();
        assert_eq!(cli.ignored_options.len(), 7, "{:?}", cli.ignored_options);
        assert_eq!(cli.unimplemented, ["wifi"]);
        assert!(
            cli.options.netclass.ignore_invalid_speed
                && cli.options.cpu.info
                && cli.options.stat_softirq
        );
        // Our own collectors' unknown options stay errors.
        assert!(parse(["vigie-agent", "--collector.cpu.nonsense=1"]).is_err());
    }

    #[test]
    fn node_exporter_only_collectors_are_accepted() {
        let cli = parse([
            "vigie-agent",
            "--no-collector.wifi",
            "--collector.nfs",
            "--no-collector.zfs",
            "--collector.systemd.enable-task-metrics",
        ])
        .unwrap();
        assert_eq!(cli.unimplemented, ["nfs"]);
        assert_eq!(
            cli.ignored_options,
            ["--collector.systemd.enable-task-metrics"]
        );
        assert!(cli.collectors.contains(&"cpu"));
    }

    #[test]
    fn bad_flags_exit_2() {
        for args in [
            vec!["vigie-agent", "--collector.nope"],
            vec!["vigie-agent", "--collector.vmstat.fields=("],
            vec![
                "vigie-agent",
                "--collector.netdev.device-include=a",
                "--collector.netdev.device-exclude=b",
            ],
            vec!["vigie-agent", "--collector.filesystem.mount-timeout=5x"],
        ] {
            let e = parse(args.clone()).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{args:?}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert!(parse_duration("5").is_err());
    }
}
