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

/// (sysfs attribute, metric suffix)
const NUMERIC: &[(&str, &str)] = &[
    ("addr_assign_type", "address_assign_type"),
    ("carrier", "carrier"),
    ("carrier_changes", "carrier_changes_total"),
    ("carrier_up_count", "carrier_up_changes_total"),
    ("carrier_down_count", "carrier_down_changes_total"),
    ("dev_id", "device_id"),
    ("dormant", "dormant"),
    ("flags", "flags"),
    ("ifindex", "iface_id"),
    ("iflink", "iface_link"),
    ("link_mode", "iface_link_mode"),
    ("mtu", "mtu_bytes"),
    ("name_assign_type", "name_assign_type"),
    ("netdev_group", "net_dev_group"),
    ("tx_queue_len", "transmit_queue_length"),
    ("type", "protocol_type"),
];

/// The non-numeric attributes of a device, from netlink or sysfs.
struct Info<'a> {
    address: &'a str,
    broadcast: &'a str,
    duplex: &'a str,
    ifalias: &'a str,
    operstate: &'a str,
}

/// `node_network_info` and `node_network_up`, the same whichever source they came from.
fn push_info(set: &mut FamilySet, dev: &str, i: &Info) {
    set.family("node_network_info", INFO_HELP, Kind::Gauge)
        .push(
            &[
                ("address", i.address),
                ("broadcast", i.broadcast),
                ("device", dev),
                ("duplex", i.duplex),
                ("ifalias", i.ifalias),
                ("operstate", i.operstate),
            ],
            1.0,
        );
    let up = if i.operstate == "up" { 1.0 } else { 0.0 };
    set.family("node_network_up", UP_HELP, Kind::Gauge)
        .push(&[("device", dev)], up);
}

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
    /// One property of one device; the `_total` ones are counters, as in node_exporter.
    fn push(&self, set: &mut FamilySet, dev: &str, metric: &str, v: f64) {
        let Some((_, name, help)) = PROPS.iter().find(|(m, _, _)| *m == metric) else {
            return;
        };
        let kind = if name.ends_with("_total") {
            Kind::Counter
        } else {
            Kind::Gauge
        };
        set.family(name, help, kind).push(&[("device", dev)], v);
    }

    fn speed(&self, set: &mut FamilySet, dev: &str, speed: Option<i64>) {
        if let Some(speed) = speed
            && !(self.opts.ignore_invalid_speed && speed < 0)
        {
            // Mb/s to bytes/s, as node_exporter does (-1, unknown, becomes -125000).
            self.push(set, dev, "speed_bytes", speed as f64 * 125000.0);
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
            let (address, broadcast) = (
                l.address.as_deref().map(hw_addr).unwrap_or_default(),
                l.broadcast.as_deref().map(hw_addr).unwrap_or_default(),
            );
            let info = Info {
                address: &address,
                broadcast: &broadcast,
                duplex: duplex.as_deref().unwrap_or(""),
                ifalias: l.ifalias.as_deref().unwrap_or(""),
                operstate: l.operstate_name(),
            };
            push_info(&mut set, dev, &info);
            let values: [(&str, Option<f64>); 16] = [
                ("address_assign_type", assign_type.map(|v| v as f64)),
                ("carrier", l.carrier.filter(|_| running).map(f64::from)),
                ("carrier_changes_total", l.carrier_changes.map(f64::from)),
                ("carrier_up_changes_total", l.carrier_up.map(f64::from)),
                ("carrier_down_changes_total", l.carrier_down.map(f64::from)),
                ("device_id", dev_id.map(|v| v as f64)),
                (
                    "dormant",
                    running.then_some(if l.flags & IFF_DORMANT != 0 { 1.0 } else { 0.0 }),
                ),
                ("flags", Some(l.sysfs_flags() as f64)),
                ("iface_id", Some(l.index as f64)),
                ("iface_link", Some(l.link.unwrap_or(l.index) as f64)),
                ("iface_link_mode", l.linkmode.map(f64::from)),
                ("mtu_bytes", l.mtu.map(f64::from)),
                ("name_assign_type", name_assign.map(|v| v as f64)),
                ("net_dev_group", l.group.map(f64::from)),
                ("transmit_queue_length", l.txqlen.map(f64::from)),
                ("protocol_type", Some(f64::from(l.kind))),
            ];
            for (metric, v) in values {
                if let Some(v) = v {
                    self.push(&mut set, dev, metric, v);
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
            let text = |name: &str| attr(name).unwrap_or_default();
            let (address, broadcast, duplex, ifalias, operstate) = (
                text("address"),
                text("broadcast"),
                text("duplex"),
                text("ifalias"),
                text("operstate"),
            );
            let info = Info {
                address: &address,
                broadcast: &broadcast,
                duplex: &duplex,
                ifalias: &ifalias,
                operstate: &operstate,
            };
            push_info(&mut set, &dev, &info);
            for (file, metric) in NUMERIC {
                if let Some(v) = attr(file).and_then(|v| parse_int_prefixed(&v)) {
                    self.push(&mut set, &dev, metric, v as f64);
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
