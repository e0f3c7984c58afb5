//! `node_network_*` interface attributes, as node_exporter reads them from /sys/class/net/<iface>.
//!
//! By default most attributes come from one rtnetlink dump and only the five that netlink does
//! not carry (addr_assign_type, dev_id, name_assign_type, duplex, speed) are read from sysfs:
//! node_exporter spends ~4.5 ms per scrape opening every file of every interface directory.
//! `--no-collector.netclass.netlink` (and fixture trees) read sysfs only. An attribute the kernel
//! refuses (EINVAL for `speed` of a virtual NIC, `carrier` of a down one) is omitted either way.

use std::collections::HashMap;
use std::sync::Mutex;

use regex::Regex;
use vigie_exposition::{Family, Kind};

use super::{Collector, Error, FamilySet, Result, dir_names, parse_int_prefixed, read_attr};
use crate::paths::Paths;

#[derive(Debug, Clone)]
pub struct Options {
    pub ignored_devices: Regex,
    pub ignore_invalid_speed: bool,
    pub netlink: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            ignored_devices: super::builtin_regex("^$"),
            ignore_invalid_speed: false,
            netlink: true,
        }
    }
}

const INFO_HELP: &str = "Non-numeric data from /sys/class/net/<iface>, value is always 1.";
const UP_HELP: &str = "Value is 1 if operstate is 'up', 0 otherwise.";

/// (metric suffix, metric name, HELP): names spelled out so a scrape formats nothing.
const PROPS: &[(&str, &str, &str)] = &[
    (
        "address_assign_type",
        "node_network_address_assign_type",
        "Network device property: address_assign_type",
    ),
    (
        "carrier",
        "node_network_carrier",
        "Network device property: carrier",
    ),
    (
        "carrier_changes_total",
        "node_network_carrier_changes_total",
        "Network device property: carrier_changes_total",
    ),
    (
        "carrier_up_changes_total",
        "node_network_carrier_up_changes_total",
        "Network device property: carrier_up_changes_total",
    ),
    (
        "carrier_down_changes_total",
        "node_network_carrier_down_changes_total",
        "Network device property: carrier_down_changes_total",
    ),
    (
        "device_id",
        "node_network_device_id",
        "Network device property: device_id",
    ),
    (
        "dormant",
        "node_network_dormant",
        "Network device property: dormant",
    ),
    (
        "flags",
        "node_network_flags",
        "Network device property: flags",
    ),
    (
        "iface_id",
        "node_network_iface_id",
        "Network device property: iface_id",
    ),
    (
        "iface_link",
        "node_network_iface_link",
        "Network device property: iface_link",
    ),
    (
        "iface_link_mode",
        "node_network_iface_link_mode",
        "Network device property: iface_link_mode",
    ),
    (
        "mtu_bytes",
        "node_network_mtu_bytes",
        "Network device property: mtu_bytes",
    ),
    (
        "name_assign_type",
        "node_network_name_assign_type",
        "Network device property: name_assign_type",
    ),
    (
        "net_dev_group",
        "node_network_net_dev_group",
        "Network device property: net_dev_group",
    ),
    (
        "transmit_queue_length",
        "node_network_transmit_queue_length",
        "Network device property: transmit_queue_length",
    ),
    (
        "protocol_type",
        "node_network_protocol_type",
        "Network device property: protocol_type",
    ),
    (
        "speed_bytes",
        "node_network_speed_bytes",
        "Network device property: speed_bytes",
    ),
];

/// (sysfs attribute, metric suffix, counter?)
const NUMERIC: &[(&str, &str, bool)] = &[
    ("addr_assign_type", "address_assign_type", false),
    ("carrier", "carrier", false),
    ("carrier_changes", "carrier_changes_total", true),
    ("carrier_up_count", "carrier_up_changes_total", true),
    ("carrier_down_count", "carrier_down_changes_total", true),
    ("dev_id", "device_id", false),
    ("dormant", "dormant", false),
    ("flags", "flags", false),
    ("ifindex", "iface_id", false),
    ("iflink", "iface_link", false),
    ("link_mode", "iface_link_mode", false),
    ("mtu", "mtu_bytes", false),
    ("name_assign_type", "name_assign_type", false),
    ("netdev_group", "net_dev_group", false),
    ("tx_queue_len", "transmit_queue_length", false),
    ("type", "protocol_type", false),
];

/// (ifindex, name, MAC address): what identifies a device's creation-time attributes.
type LinkKey = (i32, String, Vec<u8>);

pub struct Netclass {
    paths: Paths,
    opts: Options,
    /// addr_assign_type, dev_id and name_assign_type are fixed when a device is created (the
    /// first changes with its MAC address), so they are read once per (ifindex, name, MAC).
    fixed: Mutex<HashMap<LinkKey, [Option<i64>; 3]>>,
    links: std::sync::Arc<super::netlink::LinkCache>,
}

impl Netclass {
    pub fn new(o: &super::Options) -> Netclass {
        Netclass {
            paths: o.paths.clone(),
            opts: o.netclass.clone(),
            fixed: Mutex::new(HashMap::new()),
            links: o.links.clone(),
        }
    }
}

impl Netclass {
    fn push(&self, set: &mut FamilySet, dev: &str, metric: &str, counter: bool, v: f64) {
        let kind = if counter { Kind::Counter } else { Kind::Gauge };
        let Some((_, name, help)) = PROPS.iter().find(|(m, _, _)| *m == metric) else {
            return;
        };
        set.family(name, help, kind).push(&[("device", dev)], v);
    }

    fn speed(&self, set: &mut FamilySet, dev: &str, speed: Option<i64>) {
        if let Some(speed) = speed
            && !(self.opts.ignore_invalid_speed && speed < 0)
        {
            // Mb/s to bytes/s, as node_exporter does (-1, unknown, becomes -125000).
            self.push(set, dev, "speed_bytes", false, speed as f64 * 125000.0);
        }
    }

    fn collect_netlink(&self, links: &[super::netlink::Link], out: &mut Vec<Family>) {
        use super::netlink::{IFF_DORMANT, hw_addr};
        let base = self.paths.sys("class/net");
        let mut set = FamilySet::default();
        let mut fixed = self.fixed.lock().unwrap_or_else(|p| p.into_inner());
        fixed.retain(|(index, name, _), _| {
            links.iter().any(|l| l.index == *index && &l.name == name)
        });
        for l in links
            .iter()
            .filter(|l| !self.opts.ignored_devices.is_match(&l.name))
        {
            let dev = l.name.as_str();
            let dir = base.join(dev);
            let attr = |name: &str| read_attr(&dir.join(name));
            let sysfs_int = |name: &str| attr(name).and_then(|v| parse_int_prefixed(&v));
            let running = l.running();
            let key = (
                l.index,
                l.name.clone(),
                l.address.clone().unwrap_or_default(),
            );
            let [assign_type, dev_id, name_assign] = *fixed.entry(key).or_insert_with(|| {
                [
                    sysfs_int("addr_assign_type"),
                    sysfs_int("dev_id"),
                    sysfs_int("name_assign_type"),
                ]
            });
            // sysfs answers speed and duplex only for a running device; don't ask otherwise.
            let duplex = if running { attr("duplex") } else { None };
            let speed = if running { sysfs_int("speed") } else { None };
            let operstate = l.operstate_name();
            set.family("node_network_info", INFO_HELP, Kind::Gauge)
                .push(
                    &[
                        (
                            "address",
                            &l.address.as_deref().map(hw_addr).unwrap_or_default(),
                        ),
                        (
                            "broadcast",
                            &l.broadcast.as_deref().map(hw_addr).unwrap_or_default(),
                        ),
                        ("device", dev),
                        ("duplex", duplex.as_deref().unwrap_or("")),
                        ("ifalias", l.ifalias.as_deref().unwrap_or("")),
                        ("operstate", operstate),
                    ],
                    1.0,
                );
            set.family("node_network_up", UP_HELP, Kind::Gauge).push(
                &[("device", dev)],
                if operstate == "up" { 1.0 } else { 0.0 },
            );
            let values: [(&str, bool, Option<f64>); 16] = [
                ("address_assign_type", false, assign_type.map(|v| v as f64)),
                (
                    "carrier",
                    false,
                    l.carrier.filter(|_| running).map(f64::from),
                ),
                (
                    "carrier_changes_total",
                    true,
                    l.carrier_changes.map(f64::from),
                ),
                (
                    "carrier_up_changes_total",
                    true,
                    l.carrier_up.map(f64::from),
                ),
                (
                    "carrier_down_changes_total",
                    true,
                    l.carrier_down.map(f64::from),
                ),
                ("device_id", false, dev_id.map(|v| v as f64)),
                (
                    "dormant",
                    false,
                    running.then_some(if l.flags & IFF_DORMANT != 0 { 1.0 } else { 0.0 }),
                ),
                ("flags", false, Some(l.sysfs_flags() as f64)),
                ("iface_id", false, Some(l.index as f64)),
                ("iface_link", false, Some(l.link.unwrap_or(l.index) as f64)),
                ("iface_link_mode", false, l.linkmode.map(f64::from)),
                ("mtu_bytes", false, l.mtu.map(f64::from)),
                ("name_assign_type", false, name_assign.map(|v| v as f64)),
                ("net_dev_group", false, l.group.map(f64::from)),
                ("transmit_queue_length", false, l.txqlen.map(f64::from)),
                ("protocol_type", false, Some(f64::from(l.kind))),
            ];
            for (metric, counter, v) in values {
                if let Some(v) = v {
                    self.push(&mut set, dev, metric, counter, v);
                }
            }
            self.speed(&mut set, dev, speed);
        }
        out.extend(set.into_vec());
    }
}

impl Collector for Netclass {
    fn update(&self, out: &mut Vec<Family>) -> Result<()> {
        if self.opts.netlink {
            match self.links.links() {
                Ok(links) => {
                    self.collect_netlink(&links, out);
                    return Ok(());
                }
                Err(e) => tracing::debug!("rtnetlink dump failed, reading sysfs: {e}"),
            }
        }
        let base = self.paths.sys("class/net");
        let names = dir_names(&base).map_err(|e| Error::io(&base, e))?;
        let mut set = FamilySet::default();
        for dev in names {
            let dir = base.join(&dev);
            if !dir.is_dir() || self.opts.ignored_devices.is_match(&dev) {
                continue;
            }
            let attr = |name: &str| read_attr(&dir.join(name));
            let operstate = attr("operstate").unwrap_or_default();
            set.family("node_network_info", INFO_HELP, Kind::Gauge)
                .push(
                    &[
                        ("address", &attr("address").unwrap_or_default()),
                        ("broadcast", &attr("broadcast").unwrap_or_default()),
                        ("device", &dev),
                        ("duplex", &attr("duplex").unwrap_or_default()),
                        ("ifalias", &attr("ifalias").unwrap_or_default()),
                        ("operstate", &operstate),
                    ],
                    1.0,
                );
            set.family("node_network_up", UP_HELP, Kind::Gauge).push(
                &[("device", &dev)],
                if operstate == "up" { 1.0 } else { 0.0 },
            );
            for (file, metric, counter) in NUMERIC {
                if let Some(v) = attr(file).and_then(|v| parse_int_prefixed(&v)) {
                    self.push(&mut set, &dev, metric, *counter, v as f64);
                }
            }
            self.speed(
                &mut set,
                &dev,
                attr("speed").and_then(|v| parse_int_prefixed(&v)),
            );
        }
        out.extend(set.into_vec());
        Ok(())
    }
}
