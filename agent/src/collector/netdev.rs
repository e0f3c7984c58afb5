//! `node_network_{receive,transmit}_*_total` per device, with node_exporter's legacy names:
//! from an rtnetlink dump by default (as node_exporter 1.5 does), or from /proc/net/dev plus
//! sysfs' `rx_nohandler` with `--no-collector.netdev.netlink` (and for fixture trees).

use std::path::Path;

use vigie_exposition::{Family, Kind};

use super::{Collector, DeviceFilter, Error, Result, read, read_attr};
use crate::paths::Paths;

const RECEIVE: [&str; 8] = [
    "bytes",
    "packets",
    "errs",
    "drop",
    "fifo",
    "frame",
    "compressed",
    "multicast",
];
const TRANSMIT: [&str; 8] = [
    "bytes",
    "packets",
    "errs",
    "drop",
    "fifo",
    "colls",
    "carrier",
    "compressed",
];

pub struct Netdev {
    paths: Paths,
    filter: DeviceFilter,
    netlink: bool,
    links: std::sync::Arc<super::netlink::LinkCache>,
}

impl Netdev {
    pub fn new(o: &super::Options) -> Netdev {
        Netdev {
            paths: o.paths.clone(),
            filter: o.netdev.clone(),
            netlink: o.netdev_netlink,
            links: o.links.clone(),
        }
    }
}

/// The /proc/net/dev columns computed from `rtnl_link_stats64` the way the kernel computes them.
pub fn legacy_counters(s: &[u64]) -> [f64; 16] {
    let g = |i: usize| s.get(i).copied().unwrap_or(0);
    [
        g(2),
        g(0),
        g(4),
        g(6) + g(15),
        g(14),
        g(13) + g(10) + g(11) + g(12),
        g(21),
        g(8),
        g(3),
        g(1),
        g(5),
        g(7),
        g(18),
        g(9),
        g(17) + g(16) + g(19) + g(20),
        g(22),
    ]
    .map(|v| v as f64)
}

/// Device name and its 16 counters, in /proc/net/dev column order.
pub fn parse_net_dev(text: &str, path: &Path) -> Result<Vec<(String, [f64; 16])>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().skip(2) {
        let Some((name, rest)) = line.split_once(':') else {
            if line.trim().is_empty() {
                continue;
            }
            return Err(Error::parse(path, i + 1, "expected 'device: counters'"));
        };
        let mut values = [0.0; 16];
        let mut n = 0;
        for (slot, field) in values.iter_mut().zip(rest.split_ascii_whitespace()) {
            *slot = field
                .parse::<u64>()
                .map_err(|_| Error::parse(path, i + 1, format!("invalid counter {field:?}")))?
                as f64;
            n += 1;
        }
        if n != 16 {
            return Err(Error::parse(
                path,
                i + 1,
                format!("expected 16 counters, got {n}"),
            ));
        }
        out.push((name.trim().to_string(), values));
    }
    Ok(out)
}

impl Collector for Netdev {
    fn update(&self, out: &mut Vec<Family>) -> Result<()> {
        // (device, counters, nohandler)
        let devices: Vec<(String, [f64; 16], Option<f64>)> = if self.netlink {
            self.links
                .links()
                .map_err(|e| Error::Other(format!("rtnetlink dump: {e}")))?
                .iter()
                .filter_map(|l| {
                    let s = l.stats64.as_ref()?;
                    let nohandler = s.get(23).map(|v| *v as f64);
                    Some((l.name.clone(), legacy_counters(s), nohandler))
                })
                .collect()
        } else {
            let path = self.paths.proc("net/dev");
            parse_net_dev(&read(&path)?, &path)?
                .into_iter()
                .map(|(dev, v)| {
                    let stat = self
                        .paths
                        .sys("class/net")
                        .join(&dev)
                        .join("statistics/rx_nohandler");
                    let nohandler = read_attr(&stat)
                        .and_then(|v| v.parse::<u64>().ok())
                        .map(|v| v as f64);
                    (dev, v, nohandler)
                })
                .collect()
        };
        let mut families: Vec<Family> = RECEIVE
            .iter()
            .map(|k| format!("receive_{k}"))
            .chain(TRANSMIT.iter().map(|k| format!("transmit_{k}")))
            .map(|key| {
                Family::new(
                    format!("node_network_{key}_total"),
                    format!("Network device statistic {key}."),
                    Kind::Counter,
                )
            })
            .collect();
        let mut nohandler = Family::new(
            "node_network_receive_nohandler_total",
            "Network device statistic receive_nohandler.",
            Kind::Counter,
        );
        for (dev, values, nh) in devices.iter().filter(|(d, _, _)| !self.filter.ignored(d)) {
            for (fam, v) in families.iter_mut().zip(values) {
                fam.push(&[("device", dev)], *v);
            }
            if let Some(v) = nh {
                nohandler.push(&[("device", dev)], *v);
            }
        }
        out.extend(families);
        out.push(nohandler);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_net_dev() {
        let t = "Inter-|   Receive |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n  eth0: 100 0 0 0 0 0 0 0 200 0 0 0 0 0 0 0\n";
        let d = parse_net_dev(t, Path::new("dev")).unwrap();
        assert_eq!(d[0].0, "lo");
        assert_eq!(d[0].1[15], 16.0);
        assert_eq!(d[1].1[8], 200.0);
        assert!(parse_net_dev("a\nb\nlo: 1 2\n", Path::new("dev")).is_err());
    }
}
