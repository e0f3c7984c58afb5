//! `node_network_*` interface attributes from /sys/class/net/<iface>. Only the attributes
//! node_exporter exports are read (Go's procfs reads every file in the directory, which is where
//! its 4.5 ms per scrape went); an attribute the kernel refuses is simply omitted.

use regex::Regex;
use vigie_exposition::{Family, Kind};

use super::{Collector, Error, FamilySet, Result, dir_names, parse_int_prefixed, read_attr};
use crate::paths::Paths;

#[derive(Debug, Clone)]
pub struct Options {
    pub ignored_devices: Regex,
    pub ignore_invalid_speed: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { ignored_devices: Regex::new("^$").expect("static regex"), ignore_invalid_speed: false }
    }
}

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

pub struct Netclass {
    paths: Paths,
    opts: Options,
}

impl Netclass {
    pub fn new(o: &super::Options) -> Netclass {
        Netclass { paths: o.paths.clone(), opts: o.netclass.clone() }
    }
}

impl Collector for Netclass {
    fn update(&self, out: &mut Vec<Family>) -> Result<()> {
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
            set.family("node_network_info", "Non-numeric data from /sys/class/net/<iface>, value is always 1.", Kind::Gauge)
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
            set.family("node_network_up", "Value is 1 if operstate is 'up', 0 otherwise.", Kind::Gauge)
                .push(&[("device", &dev)], if operstate == "up" { 1.0 } else { 0.0 });
            for (file, metric, counter) in NUMERIC {
                let Some(v) = attr(file).and_then(|v| parse_int_prefixed(&v)) else { continue };
                let kind = if *counter { Kind::Counter } else { Kind::Gauge };
                set.family(&format!("node_network_{metric}"), &format!("{metric} value of /sys/class/net/<iface>."), kind)
                    .push(&[("device", &dev)], v as f64);
            }
            if let Some(speed) = attr("speed").and_then(|v| parse_int_prefixed(&v)) {
                if !(self.opts.ignore_invalid_speed && speed < 0) {
                    // Mb/s to bytes/s, as node_exporter does (-1, unknown, becomes -125000).
                    set.family("node_network_speed_bytes", "speed_bytes value of /sys/class/net/<iface>.", Kind::Gauge)
                        .push(&[("device", &dev)], speed as f64 * 125000.0);
                }
            }
        }
        out.extend(set.into_vec());
        Ok(())
    }
}
