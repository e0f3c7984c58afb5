//! `node_pressure_*_seconds_total` from /proc/pressure (PSI, kernel 4.20+).

use std::io;

use vigie_exposition::{Family, Kind};

use super::{Collector, Error, Result};
use crate::paths::Paths;

pub struct Pressure {
    paths: Paths,
}

impl Pressure {
    pub fn new(o: &super::Options) -> Pressure {
        Pressure {
            paths: o.paths.clone(),
        }
    }
}

/// The `total=` value in seconds of the `some` and `full` lines.
pub fn parse_psi(text: &str) -> (Option<f64>, Option<f64>) {
    let mut some = None;
    let mut full = None;
    for line in text.lines() {
        let mut parts = line.split_ascii_whitespace();
        let slot = match parts.next() {
            Some("some") => &mut some,
            Some("full") => &mut full,
            _ => continue,
        };
        *slot = parts
            .find_map(|p| p.strip_prefix("total="))
            .and_then(|v| v.parse::<u64>().ok())
            .map(|us| us as f64 / 1e6);
    }
    (some, full)
}

impl Collector for Pressure {
    fn update(&self, out: &mut Vec<Family>) -> Result<()> {
        for resource in ["cpu", "io", "memory"] {
            let path = self.paths.proc(&format!("pressure/{resource}"));
            let text = match super::kfile::read(&path) {
                Ok(t) => t,
                Err(e)
                    if e.kind() == io::ErrorKind::NotFound
                        || e.raw_os_error() == Some(libc::EOPNOTSUPP) =>
                {
                    return Err(Error::NoData(
                        "pressure information is unavailable, you need a Linux kernel >= 4.20 and/or CONFIG_PSI enabled".into(),
                    ));
                }
                Err(e) => return Err(Error::io(&path, e)),
            };
            let (some, full) = parse_psi(&text);
            let some = some.ok_or_else(|| Error::parse(&path, 1, "no 'some' line with total="))?;
            let (waiting, stalled) = match resource {
                "cpu" => (
                    "Total time in seconds that processes have waited for CPU time",
                    None,
                ),
                "io" => (
                    "Total time in seconds that processes have waited due to IO congestion",
                    Some(
                        "Total time in seconds no process could make progress due to IO congestion",
                    ),
                ),
                _ => (
                    "Total time in seconds that processes have waited for memory",
                    Some(
                        "Total time in seconds no process could make progress due to memory congestion",
                    ),
                ),
            };
            out.push(Family::single(
                format!("node_pressure_{resource}_waiting_seconds_total"),
                waiting,
                Kind::Counter,
                some,
            ));
            if let (Some(help), Some(full)) = (stalled, full) {
                out.push(Family::single(
                    format!("node_pressure_{resource}_stalled_seconds_total"),
                    help,
                    Kind::Counter,
                    full,
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_psi() {
        let t = "some avg10=0.00 avg60=0.00 avg300=0.00 total=14036781\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=2\n";
        assert_eq!(parse_psi(t), (Some(14.036781), Some(0.000002)));
        assert_eq!(parse_psi("junk\n"), (None, None));
    }
}
