//! `node_network_{receive,transmit}_*_total` per device from /proc/net/dev, with node_exporter's
//! legacy names; `receive_nohandler` comes from sysfs, where the kernel publishes it.

use std::path::Path;

use vigie_exposition::{Family, Kind};

use super::{Collector, DeviceFilter, Error, Result, read, read_attr};
use crate::paths::Paths;

const RECEIVE: [&str; 8] = ["bytes", "packets", "errs", "drop", "fifo", "frame", "compressed", "multicast"];
const TRANSMIT: [&str; 8] = ["bytes", "packets", "errs", "drop", "fifo", "colls", "carrier", "compressed"];

pub struct Netdev {
    paths: Paths,
    filter: DeviceFilter,
}

impl Netdev {
    pub fn new(o: &super::Options) -> Netdev {
        Netdev { paths: o.paths.clone(), filter: o.netdev.clone() }
    }
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
                .map_err(|_| Error::parse(path, i + 1, format!("invalid counter {field:?}")))? as f64;
            n += 1;
        }
        if n != 16 {
            return Err(Error::parse(path, i + 1, format!("expected 16 counters, got {n}")));
        }
        out.push((name.trim().to_string(), values));
    }
    Ok(out)
}

impl Collector for Netdev {
    fn update(&self, out: &mut Vec<Family>) -> Result<()> {
        let path = self.paths.proc("net/dev");
        let devices = parse_net_dev(&read(&path)?, &path)?;
        let mut families: Vec<Family> = RECEIVE
            .iter()
            .map(|k| format!("receive_{k}"))
            .chain(TRANSMIT.iter().map(|k| format!("transmit_{k}")))
            .map(|key| {
                Family::new(format!("node_network_{key}_total"), format!("Network device statistic {key}."), Kind::Counter)
            })
            .collect();
        let mut nohandler = Family::new(
            "node_network_receive_nohandler_total",
            "Network device statistic receive_nohandler.",
            Kind::Counter,
        );
        for (dev, values) in devices.iter().filter(|(d, _)| !self.filter.ignored(d)) {
            for (fam, v) in families.iter_mut().zip(values) {
                fam.push(&[("device", dev)], *v);
            }
            let stat = self.paths.sys("class/net").join(dev).join("statistics/rx_nohandler");
            if let Some(v) = read_attr(&stat).and_then(|v| v.parse::<u64>().ok()) {
                nohandler.push(&[("device", dev)], v as f64);
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
