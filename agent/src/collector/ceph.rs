//! Ceph cluster health from the `ceph` CLI (`status`, `df`, `osd df`, `osd tree`, all with
//! `--format json`, Ceph 16+), under the names of the Ceph manager's Prometheus module where one
//! exists, so Ceph's own dashboards and alerts read them.
//!
//! A monitor that does not answer makes `ceph` hang, so this runs in the background
//! ([`super::background`]) on its own interval, each command with a deadline. Any node with a
//! client keyring can run it; run it on one or two nodes, not all (every node reports the same
//! cluster).
//!
//! Names without a manager equivalent: `ceph_osdmap_num_{osds,up_osds,in_osds}`,
//! `ceph_cluster_recovery_{bytes,objects}_per_second`, `ceph_cluster_total_avail_bytes`.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use vigie_exposition::{Family, Kind};

use super::background::{self, Background};
use super::{Error, FamilySet, Result};

#[derive(Debug, Clone)]
pub struct Options {
    pub path: PathBuf,
    /// Extra arguments for every command (`--id monitoring --cluster ceph`).
    pub args: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            path: PathBuf::from("ceph"),
            args: Vec::new(),
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
        }
    }
}

/// The collector: `ceph` on its own thread every interval; the scrape serves the last run.
pub fn new(o: &super::Options) -> Background {
    let opts = o.ceph.clone();
    Background::spawn("ceph", opts.interval, move || collect(&opts))
}

const FLAG: &str = "collector.ceph.path";

/// Every PG state the manager module counts; all are written (0 when absent) so a rule on
/// `ceph_pg_degraded` never sees an absent series on a healthy cluster.
pub const PG_STATES: &[&str] = &[
    "active",
    "clean",
    "down",
    "recovery_unfound",
    "backfill_unfound",
    "scrubbing",
    "degraded",
    "inconsistent",
    "peering",
    "repair",
    "recovering",
    "forced_recovery",
    "backfill_wait",
    "incomplete",
    "stale",
    "remapped",
    "deep",
    "backfilling",
    "forced_backfill",
    "backfill_toofull",
    "recovery_wait",
    "recovery_toofull",
    "undersized",
    "activating",
    "peered",
    "snaptrim",
    "snaptrim_wait",
    "snaptrim_error",
    "creating",
    "unknown",
    "premerge",
    "failed_repair",
    "laggy",
    "wait",
];

fn json(what: &str, text: &[u8]) -> Result<Value> {
    let v: Value = serde_json::from_slice(text)
        .map_err(|e| Error::Other(format!("ceph {what}: output is not JSON (truncated?): {e}")))?;
    if !v.is_object() {
        return Err(Error::Other(format!("ceph {what}: expected a JSON object")));
    }
    Ok(v)
}

fn num(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64)
}

fn gauge(set: &mut FamilySet, name: &str, help: &str, labels: &[(&'static str, &str)], x: f64) {
    set.family(name, help, Kind::Gauge).push(labels, x);
}

/// `ceph status --format json`: health and its checks, the OSD map's counts, PGs by state,
/// degraded/misplaced/unfound objects and the recovery rate.
pub fn parse_status(set: &mut FamilySet, text: &[u8]) -> Result<()> {
    let v = json("status", text)?;
    let health = v
        .get("health")
        .ok_or_else(|| Error::Other("ceph status: no \"health\" field".into()))?;
    let status = health.get("status").and_then(Value::as_str).unwrap_or("");
    let code = match status {
        "HEALTH_OK" => 0.0,
        "HEALTH_WARN" => 1.0,
        "HEALTH_ERR" => 2.0,
        other => {
            return Err(Error::Other(format!(
                "ceph status: unknown health status {other:?}"
            )));
        }
    };
    gauge(
        set,
        "ceph_health_status",
        "Cluster health status (0 HEALTH_OK, 1 HEALTH_WARN, 2 HEALTH_ERR)",
        &[],
        code,
    );
    let detail = set.family(
        "ceph_health_detail",
        "healthcheck status by type (0=inactive, 1=active)",
        Kind::Gauge,
    );
    if let Some(checks) = health.get("checks").and_then(Value::as_object) {
        for (name, check) in checks {
            let severity = check
                .get("severity")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            detail.push(&[("name", name), ("severity", &severity)], 1.0);
        }
    }
    // Ceph 16+ writes the OSD map flat; older releases nested it under a second "osdmap".
    let osdmap = v
        .get("osdmap")
        .map(|m| m.get("osdmap").unwrap_or(m))
        .ok_or_else(|| Error::Other("ceph status: no \"osdmap\" field".into()))?;
    for (key, name, help) in [
        ("num_osds", "ceph_osdmap_num_osds", "OSDs in the OSD map"),
        ("num_up_osds", "ceph_osdmap_num_up_osds", "OSDs that are up"),
        ("num_in_osds", "ceph_osdmap_num_in_osds", "OSDs that are in"),
    ] {
        gauge(set, name, help, &[], num(osdmap, key).unwrap_or(0.0));
    }
    let pgmap = v
        .get("pgmap")
        .ok_or_else(|| Error::Other("ceph status: no \"pgmap\" field".into()))?;
    let mut counts: Vec<f64> = vec![0.0; PG_STATES.len()];
    let mut total = 0.0;
    for by_state in pgmap
        .get("pgs_by_state")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let n = num(by_state, "count").unwrap_or(0.0);
        total += n;
        let name = by_state
            .get("state_name")
            .and_then(Value::as_str)
            .unwrap_or("");
        for state in name.split('+') {
            if let Some(i) = PG_STATES.iter().position(|s| *s == state) {
                counts[i] += n;
            }
        }
    }
    let total = num(pgmap, "num_pgs").unwrap_or(total);
    gauge(set, "ceph_pg_total", "PG Total Count", &[], total);
    for (state, n) in PG_STATES.iter().zip(counts) {
        gauge(
            set,
            &format!("ceph_pg_{state}"),
            &format!("PGs in state {state} (cluster-wide)"),
            &[],
            n,
        );
    }
    for (key, name, help) in [
        (
            "degraded_objects",
            "ceph_num_objects_degraded",
            "Number of degraded objects",
        ),
        (
            "misplaced_objects",
            "ceph_num_objects_misplaced",
            "Number of misplaced objects",
        ),
        (
            "unfound_objects",
            "ceph_num_objects_unfound",
            "Number of unfound objects",
        ),
        (
            "recovering_bytes_per_sec",
            "ceph_cluster_recovery_bytes_per_second",
            "Recovery rate of the cluster, bytes per second",
        ),
        (
            "recovering_objects_per_sec",
            "ceph_cluster_recovery_objects_per_second",
            "Recovery rate of the cluster, objects per second",
        ),
    ] {
        // Ceph leaves these out when they are zero.
        gauge(set, name, help, &[], num(pgmap, key).unwrap_or(0.0));
    }
    Ok(())
}

/// `ceph df --format json`: raw capacity and each pool's use.
pub fn parse_df(set: &mut FamilySet, text: &[u8]) -> Result<()> {
    let v = json("df", text)?;
    let stats = v
        .get("stats")
        .ok_or_else(|| Error::Other("ceph df: no \"stats\" field".into()))?;
    let total = num(stats, "total_bytes").unwrap_or(0.0);
    let used_raw = num(stats, "total_used_raw_bytes")
        .or(num(stats, "total_used_bytes"))
        .unwrap_or(0.0);
    gauge(
        set,
        "ceph_cluster_total_bytes",
        "DF total_bytes",
        &[],
        total,
    );
    gauge(
        set,
        "ceph_cluster_total_used_bytes",
        "DF total_used_bytes",
        &[],
        num(stats, "total_used_bytes").unwrap_or(0.0),
    );
    gauge(
        set,
        "ceph_cluster_total_used_raw_bytes",
        "DF total_used_raw_bytes",
        &[],
        used_raw,
    );
    gauge(
        set,
        "ceph_cluster_total_avail_bytes",
        "DF total_avail_bytes",
        &[],
        num(stats, "total_avail_bytes").unwrap_or(total - used_raw),
    );
    for pool in v
        .get("pools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let (Some(id), Some(name)) = (
            pool.get("id").and_then(Value::as_i64),
            pool.get("name").and_then(Value::as_str),
        ) else {
            continue;
        };
        let id = id.to_string();
        gauge(
            set,
            "ceph_pool_metadata",
            "POOL Metadata",
            &[("pool_id", &id), ("name", name)],
            1.0,
        );
        let Some(stats) = pool.get("stats") else {
            continue;
        };
        for (key, metric, help) in [
            ("stored", "ceph_pool_stored", "DF pool stored"),
            ("objects", "ceph_pool_objects", "DF pool objects"),
            ("bytes_used", "ceph_pool_bytes_used", "DF pool bytes_used"),
            ("max_avail", "ceph_pool_max_avail", "DF pool max_avail"),
            (
                "percent_used",
                "ceph_pool_percent_used",
                "DF pool percent_used (a ratio, 0 to 1)",
            ),
        ] {
            if let Some(x) = num(stats, key) {
                gauge(set, metric, help, &[("pool_id", &id)], x);
            }
        }
    }
    Ok(())
}

/// `ceph osd df --format json`: each OSD's capacity, use and PGs.
pub fn parse_osd_df(set: &mut FamilySet, text: &[u8]) -> Result<()> {
    let v = json("osd df", text)?;
    for osd in v
        .get("nodes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(name) = osd.get("name").and_then(Value::as_str) else {
            continue;
        };
        let d = [("ceph_daemon", name)];
        if let Some(kb) = num(osd, "kb") {
            gauge(
                set,
                "ceph_osd_stat_bytes",
                "OSD stat bytes",
                &d,
                kb * 1024.0,
            );
        }
        if let Some(kb) = num(osd, "kb_used") {
            gauge(
                set,
                "ceph_osd_stat_bytes_used",
                "OSD stat bytes_used",
                &d,
                kb * 1024.0,
            );
        }
        if let Some(x) = num(osd, "pgs") {
            gauge(set, "ceph_osd_numpg", "PG count per OSD", &d, x);
        }
        if let Some(x) = num(osd, "reweight") {
            gauge(set, "ceph_osd_weight", "OSD reweight", &d, x);
        }
    }
    Ok(())
}

/// `ceph osd tree --format json`: each OSD's up/in state, host and device class.
pub fn parse_osd_tree(set: &mut FamilySet, text: &[u8]) -> Result<()> {
    let v = json("osd tree", text)?;
    let nodes: Vec<&Value> = v
        .get("nodes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .chain(
            v.get("stray")
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        )
        .collect();
    let host_of = |id: i64| -> String {
        nodes
            .iter()
            .find(|n| {
                n.get("type").and_then(Value::as_str) == Some("host")
                    && n.get("children")
                        .and_then(Value::as_array)
                        .is_some_and(|c| c.iter().any(|x| x.as_i64() == Some(id)))
            })
            .and_then(|n| n.get("name").and_then(Value::as_str))
            .unwrap_or("")
            .to_string()
    };
    for osd in nodes
        .iter()
        .filter(|n| n.get("type").and_then(Value::as_str) == Some("osd"))
    {
        let (Some(id), Some(name)) = (
            osd.get("id").and_then(Value::as_i64),
            osd.get("name").and_then(Value::as_str),
        ) else {
            continue;
        };
        let d = [("ceph_daemon", name)];
        let up = osd.get("status").and_then(Value::as_str) == Some("up");
        gauge(
            set,
            "ceph_osd_up",
            "OSD status up",
            &d,
            f64::from(u8::from(up)),
        );
        let is_in = num(osd, "reweight").is_some_and(|w| w > 0.0);
        gauge(
            set,
            "ceph_osd_in",
            "OSD status in",
            &d,
            f64::from(u8::from(is_in)),
        );
        let class = osd
            .get("device_class")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        gauge(
            set,
            "ceph_osd_metadata",
            "OSD Metadata",
            &[
                ("ceph_daemon", name),
                ("hostname", &host_of(id)),
                ("device_class", &class),
            ],
            1.0,
        );
    }
    Ok(())
}

type Parser = fn(&mut FamilySet, &[u8]) -> Result<()>;

/// One background run: the four commands; one failing still lets the others report.
pub fn collect(o: &Options) -> (Vec<Family>, Option<Error>) {
    let commands: [(&[&str], Parser); 4] = [
        (&["status"], parse_status),
        (&["df"], parse_df),
        (&["osd", "df"], parse_osd_df),
        (&["osd", "tree"], parse_osd_tree),
    ];
    let mut set = FamilySet::default();
    let mut errors = Vec::new();
    let connect = format!("--connect-timeout={}", o.timeout.as_secs().max(1));
    for (words, parse) in commands {
        let mut args: Vec<String> = words.iter().map(|w| w.to_string()).collect();
        args.extend(["--format".to_string(), "json".to_string(), connect.clone()]);
        args.extend(o.args.iter().cloned());
        let what = format!("ceph {}", words.join(" "));
        let result = background::run_ok(&o.path, &args, o.timeout, FLAG, &what)
            .and_then(|stdout| parse(&mut set, &stdout));
        if let Err(e) = result {
            // A missing binary fails every command the same way: say it once.
            let missing = e.to_string().contains("not found");
            errors.push(e.to_string());
            if missing {
                break;
            }
        }
    }
    let error = (!errors.is_empty()).then(|| Error::Other(errors.join("; ")));
    (set.into_vec(), error)
}
