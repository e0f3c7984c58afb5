//! `node_netstat_<Proto>_<Field>` (untyped) from /proc/net/netstat, snmp and snmp6, filtered by
//! `--collector.netstat.fields`.

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::Mutex;

use regex::Regex;
use vigie_exposition::{Family, Kind};

use super::{Collector, Error, Result, read};
use crate::paths::Paths;

pub const DEFAULT_FIELDS: &str = "^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)|TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts)|Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab)|Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$";

pub struct Netstat {
    paths: Paths,
    fields: Regex,
    /// `Proto_Field` → selected by `--collector.netstat.fields`? The field names only change
    /// with the kernel, so each is matched once, not on every scrape.
    selected: Mutex<HashMap<String, bool>>,
}

impl Netstat {
    pub fn new(o: &super::Options) -> Netstat {
        Netstat {
            paths: o.paths.clone(),
            fields: o.netstat_fields.clone(),
            selected: Mutex::new(HashMap::new()),
        }
    }
}

/// Parses the header/value line pairs of /proc/net/netstat and /proc/net/snmp.
pub fn parse_pairs(text: &str, path: &Path, mut emit: impl FnMut(&str, &str, &str)) -> Result<()> {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    for (pair, chunk) in lines.chunks(2).enumerate() {
        let line_no = pair * 2 + 1;
        let [names, values] = chunk else {
            return Err(Error::parse(
                path,
                line_no,
                "header line without a value line",
            ));
        };
        let (Some((proto, names)), Some((proto2, values))) =
            (names.split_once(':'), values.split_once(':'))
        else {
            return Err(Error::parse(path, line_no, "expected 'Proto: fields'"));
        };
        if proto != proto2 {
            return Err(Error::parse(
                path,
                line_no + 1,
                format!("value line for {proto2:?} follows header for {proto:?}"),
            ));
        }
        let names: Vec<&str> = names.split_ascii_whitespace().collect();
        let values: Vec<&str> = values.split_ascii_whitespace().collect();
        if names.len() != values.len() {
            return Err(Error::parse(
                path,
                line_no + 1,
                format!(
                    "{} names but {} values for {proto}",
                    names.len(),
                    values.len()
                ),
            ));
        }
        for (n, v) in names.iter().zip(values) {
            emit(proto, n, v);
        }
    }
    Ok(())
}

/// Parses /proc/net/snmp6: `Ip6InReceives 123` lines, protocol up to and including the `6`.
pub fn parse_snmp6(text: &str, mut emit: impl FnMut(&str, &str, &str)) {
    for line in text.lines() {
        let mut parts = line.split_ascii_whitespace();
        let (Some(key), Some(value)) = (parts.next(), parts.next()) else {
            continue;
        };
        if let Some(six) = key.find('6') {
            emit(&key[..=six], &key[six + 1..], value);
        }
    }
}

impl Netstat {
    fn emit(
        &self,
        proto: &str,
        name: &str,
        value: &str,
        path: &Path,
        out: &mut Vec<Family>,
        bad: &mut Option<Error>,
    ) {
        let mut key = String::with_capacity(proto.len() + name.len() + 1);
        key.push_str(proto);
        key.push('_');
        key.push_str(name);
        let selected = {
            let mut cache = self.selected.lock().unwrap_or_else(|p| p.into_inner());
            match cache.get(&key) {
                Some(&s) => s,
                None => {
                    let s = self.fields.is_match(&key);
                    if cache.len() < 10_000 {
                        cache.insert(key.clone(), s);
                    }
                    s
                }
            }
        };
        if !selected {
            return;
        }
        match value.parse::<f64>() {
            Ok(v) => out.push(Family::single(
                format!("node_netstat_{key}"),
                format!("Statistic {proto}{name}."),
                Kind::Untyped,
                v,
            )),
            Err(_) => {
                bad.get_or_insert(Error::parse(
                    path,
                    0,
                    format!("invalid value {value:?} for {key}"),
                ));
            }
        }
    }
}

impl Collector for Netstat {
    fn update(&self, out: &mut Vec<Family>) -> Result<()> {
        let mut bad: Option<Error> = None;
        for file in ["net/netstat", "net/snmp"] {
            let path = self.paths.proc(file);
            let text = read(&path)?;
            parse_pairs(&text, &path, |p, n, v| {
                self.emit(p, n, v, &path, out, &mut bad)
            })?;
        }
        let path = self.paths.proc("net/snmp6");
        match std::fs::read_to_string(&path) {
            Ok(text) => parse_snmp6(&text, |p, n, v| self.emit(p, n, v, &path, out, &mut bad)),
            // IPv6 disabled: nothing to report, not an error.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&path, e)),
        }
        bad.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pairs_and_snmp6() {
        let mut got = Vec::new();
        parse_pairs(
            "Tcp: InSegs OutSegs\nTcp: 5 6\n",
            Path::new("snmp"),
            |p, n, v| got.push(format!("{p}_{n}={v}")),
        )
        .unwrap();
        parse_snmp6(
            "Ip6InOctets 10\nIcmp6InMsgs 2\nUdpLite6InErrors 0\n",
            |p, n, v| got.push(format!("{p}_{n}={v}")),
        );
        assert_eq!(
            got,
            [
                "Tcp_InSegs=5",
                "Tcp_OutSegs=6",
                "Ip6_InOctets=10",
                "Icmp6_InMsgs=2",
                "UdpLite6_InErrors=0"
            ]
        );
        assert!(parse_pairs("Tcp: A B\nTcp: 1\n", Path::new("snmp"), |_, _, _| {}).is_err());
        assert!(parse_pairs("Tcp: A B\n", Path::new("snmp"), |_, _, _| {}).is_err());
    }
}
