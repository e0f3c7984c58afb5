//! node_exporter 1.5 (Debian `prometheus-node-exporter`) and vigie-agent run side by side on
//! this machine with the same collectors. For every family node_exporter emits, the agent must
//! emit the same name, type, label names and series; stable values must be equal, and each
//! counter node_exporter reports must lie between the agent's readings just before and after.

use std::collections::{BTreeMap, BTreeSet};

use vigie_e2e::{Proc, bin, collector_flags, free_port, get, peer, wait_http};
use vigie_exposition::{Family, Kind, parse_text};

type Series = BTreeMap<String, f64>;

fn key(labels: &[(std::borrow::Cow<'static, str>, String)], suffix: &str) -> String {
    let mut l: Vec<String> = labels.iter().map(|(n, v)| format!("{n}={v:?}")).collect();
    l.sort();
    format!("{suffix}{{{}}}", l.join(","))
}

fn index(text: &str) -> BTreeMap<String, (Family, Series)> {
    parse_text(text)
        .expect("exposition parses")
        .into_iter()
        .map(|f| {
            let series = f
                .samples
                .iter()
                .map(|s| (key(&s.labels, s.suffix.as_str()), s.value))
                .collect();
            (f.name.clone(), (f, series))
        })
        .collect()
}

fn scrape(port: u16) -> String {
    let r = get(port, "/metrics", &[]).expect("scrape");
    assert_eq!(r.status, 200);
    r.text()
}

/// Values that do not move while the test runs.
const STABLE: &[&str] = &[
    "node_memory_MemTotal_bytes",
    "node_memory_SwapTotal_bytes",
    "node_filesystem_size_bytes",
    "node_filesystem_files",
    "node_filesystem_readonly",
    "node_network_mtu_bytes",
    "node_network_iface_id",
    "node_network_iface_link",
    "node_network_flags",
    "node_network_protocol_type",
    "node_network_speed_bytes",
    "node_network_transmit_queue_length",
    "node_network_address_assign_type",
    "node_network_info",
    "node_network_up",
    "node_boot_time_seconds",
    "node_entropy_pool_size_bits",
    "node_filefd_maximum",
    "node_uname_info",
    "node_time_zone_offset_seconds",
    "node_time_clocksource_available_info",
    "node_time_clocksource_current_info",
    "node_textfile_scrape_error",
    "node_scrape_collector_success",
];

#[test]
fn agent_is_a_drop_in_for_node_exporter_on_this_machine() {
    let Some(node_exporter) = peer(
        &["prometheus-node-exporter", "node_exporter"],
        "prometheus-node-exporter",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (pa, pn) = (free_port(), free_port());
    let mut agent_args = collector_flags();
    agent_args.push(format!("--web.listen-address=127.0.0.1:{pa}"));
    let mut ne_args = collector_flags();
    // Debian's defaults differ from upstream 1.5's, which the agent keeps: no lo exclusion, no
    // textfile directory, and /mnt, /media, /run mounts are not excluded.
    ne_args.extend([
        "--collector.netdev.device-exclude=".into(),
        "--collector.textfile.directory=".into(),
        format!(
            "--collector.filesystem.mount-points-exclude={}",
            vigie_e2e::UPSTREAM_MOUNT_POINTS_EXCLUDE
        ),
    ]);
    ne_args.push(format!("--web.listen-address=127.0.0.1:{pn}"));
    let mut agent = Proc::start("vigie-agent", &bin("vigie-agent"), &agent_args, dir.path());
    let mut ne = Proc::start("node_exporter", &node_exporter, &ne_args, dir.path());
    wait_http(&mut agent, pa, "/-/healthy");
    wait_http(&mut ne, pn, "/");

    let before = index(&scrape(pa));
    let reference = index(&scrape(pn));
    let after = index(&scrape(pa));

    let mut compared = Vec::new();
    let mut problems = Vec::new();
    for (name, (nf, nseries)) in &reference {
        if name.starts_with("go_")
            || name.starts_with("process_")
            || name.starts_with("promhttp_")
            || name == "node_exporter_build_info"
        {
            continue;
        }
        compared.push(name.clone());
        let Some((af, aseries)) = before.get(name) else {
            problems.push(format!("{name}: missing from the agent"));
            continue;
        };
        if af.kind != nf.kind {
            problems.push(format!(
                "{name}: type {} in the agent, {} in node_exporter",
                af.kind.as_text(),
                nf.kind.as_text()
            ));
        }
        if af.help != nf.help {
            problems.push(format!(
                "{name}: HELP {:?} in the agent, {:?} in node_exporter",
                af.help, nf.help
            ));
        }
        let label_names = |f: &Family| -> BTreeSet<Vec<String>> {
            f.samples
                .iter()
                .map(|s| {
                    let mut v: Vec<String> = s.labels.iter().map(|(n, _)| n.to_string()).collect();
                    v.sort();
                    v
                })
                .collect()
        };
        if label_names(af) != label_names(nf) {
            problems.push(format!(
                "{name}: label names {:?} in the agent, {:?} in node_exporter",
                label_names(af),
                label_names(nf)
            ));
        }
        let (ak, nk): (BTreeSet<&String>, BTreeSet<&String>) =
            (aseries.keys().collect(), nseries.keys().collect());
        if ak != nk {
            problems.push(format!(
                "{name}: series differ: only agent {:?}, only node_exporter {:?}",
                ak.difference(&nk).collect::<Vec<_>>(),
                nk.difference(&ak).collect::<Vec<_>>()
            ));
            continue;
        }
        let after_series = after.get(name).map(|(_, s)| s);
        for (k, nv) in nseries {
            let av = aseries[k];
            if STABLE.contains(&name.as_str()) {
                if av != *nv && !(av.is_nan() && nv.is_nan()) {
                    problems.push(format!("{name}{k}: agent {av}, node_exporter {nv}"));
                }
            } else if nf.kind == Kind::Counter {
                let av2 = after_series.and_then(|s| s.get(k)).copied().unwrap_or(av);
                let eps = 1e-9 * nv.abs().max(1.0);
                if *nv < av - eps || *nv > av2 + eps {
                    problems.push(format!(
                        "{name}{k}: node_exporter {nv} outside the agent's [{av}, {av2}]"
                    ));
                }
            }
        }
    }
    let cpus = |m: &BTreeMap<String, (Family, Series)>| {
        m.get("node_cpu_seconds_total").map(|(f, _)| {
            f.samples
                .iter()
                .filter_map(|s| s.label("cpu").map(str::to_string))
                .collect::<BTreeSet<_>>()
                .len()
        })
    };
    if cpus(&before) != cpus(&reference) {
        problems.push(format!(
            "CPU count: agent {:?}, node_exporter {:?}",
            cpus(&before),
            cpus(&reference)
        ));
    }
    println!(
        "compared {} families with node_exporter:\n  {}",
        compared.len(),
        compared.join("\n  ")
    );
    for p in &problems {
        println!("DIFFERENCE: {p}");
    }
    assert!(
        compared.len() > 100,
        "node_exporter exposed too few families to compare: {}",
        compared.len()
    );
    assert!(
        problems.is_empty(),
        "{} differences with node_exporter:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
