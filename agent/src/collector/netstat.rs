//! `node_netstat_<Proto>_<Field>` (untyped) from /proc/net/netstat, snmp and snmp6, filtered by
//! `--collector.netstat.fields`.

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};

use vigie_exposition::{Family, Kind};

use super::{Collector, Columns, Error, Result, read};
use crate::paths::Paths;

pub const DEFAULT_FIELDS: &str = "^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)|TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts)|Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab)|Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$";

pub struct Netstat {
    paths: Paths,
    /// The field filter's pattern, compiled only when a table layout is first seen: the
    /// automaton would otherwise stay resident for nothing.
    fields: String,
    /// Header line → which columns `--collector.netstat.fields` selects. The headers only change
    /// with the kernel, so the ~300 field names are matched once, not on every scrape.
    columns: Mutex<HashMap<String, Columns>>,
}

impl Netstat {
    pub fn new(o: &super::Options) -> Netstat {
        Netstat {
            paths: o.paths.clone(),
            fields: o.netstat_fields.as_str().to_string(),
            columns: Mutex::new(HashMap::new()),
        }
    }

    fn columns<'a>(&self, header: &str, keys: impl Iterator<Item = (&'a str, &'a str)>) -> Columns {
        let mut cache = self.columns.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = cache.get(header) {
            return c.clone();
        }
        // The pattern was validated at start-up; an empty filter selects nothing.
        let fields =
            super::filter_regex(&self.fields).unwrap_or_else(|_| super::builtin_regex("^$"));
        let cols: Columns = Arc::new(
            keys.map(|(proto, field)| {
                let key = format!("{proto}_{field}");
                fields.is_match(&key).then(|| {
                    (
                        format!("node_netstat_{key}"),
                        format!("Statistic {proto}{field}."),
                    )
                })
            })
            .collect(),
        );
        if cache.len() < 64 {
            cache.insert(header.to_string(), cols.clone());
        }
        cols
    }

    fn emit<'a>(
        &self,
        cols: &Columns,
        values: impl Iterator<Item = &'a str>,
        path: &Path,
        out: &mut Vec<Family>,
    ) -> Result<()> {
        for (col, value) in cols.iter().zip(values) {
            let Some((name, help)) = col else { continue };
            let v: f64 = value.parse().map_err(|_| {
                Error::parse(path, 0, format!("invalid value {value:?} for {name}"))
            })?;
            out.push(Family::single(name.clone(), help.clone(), Kind::Untyped, v));
        }
        Ok(())
    }
}

/// Walks the header/value line pairs of /proc/net/netstat and /proc/net/snmp:
/// `visit(header line, protocol, field names, values)`.
pub fn parse_pairs<'a>(
    text: &'a str,
    path: &Path,
    mut visit: impl FnMut(&'a str, &'a str, &'a str, &'a str) -> Result<()>,
) -> Result<()> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty()).enumerate();
    while let Some((i, header)) = lines.next() {
        let line_no = i + 1;
        let Some((_, values)) = lines.next() else {
            return Err(Error::parse(
                path,
                line_no,
                "header line without a value line",
            ));
        };
        let (Some((proto, names)), Some((proto2, values))) =
            (header.split_once(':'), values.split_once(':'))
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
        let (n, v) = (
            names.split_ascii_whitespace().count(),
            values.split_ascii_whitespace().count(),
        );
        if n != v {
            return Err(Error::parse(
                path,
                line_no + 1,
                format!("{n} names but {v} values for {proto}"),
            ));
        }
        visit(header, proto, names.trim(), values.trim())?;
    }
    Ok(())
}

/// Splits a /proc/net/snmp6 key (`Ip6InReceives`) into protocol, up to and including the `6`,
/// and field.
pub fn split_snmp6(key: &str) -> Option<(&str, &str)> {
    key.find('6').map(|six| (&key[..=six], &key[six + 1..]))
}

impl Collector for Netstat {
    fn update(&self, out: &mut Vec<Family>) -> Result<()> {
        for file in ["net/netstat", "net/snmp"] {
            let path = self.paths.proc(file);
            let text = read(&path)?;
            parse_pairs(&text, &path, |header, proto, names, values| {
                let cols = self.columns(header, names.split_ascii_whitespace().map(|n| (proto, n)));
                self.emit(&cols, values.split_ascii_whitespace(), &path, out)
            })?;
        }
        let path = self.paths.proc("net/snmp6");
        match super::kfile::read(&path) {
            Ok(text) => {
                let rows: Vec<(&str, &str)> = text
                    .lines()
                    .filter_map(|l| {
                        let mut p = l.split_ascii_whitespace();
                        Some((p.next()?, p.next()?))
                    })
                    .filter(|(k, _)| split_snmp6(k).is_some())
                    .collect();
                let header: String = rows.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(" ");
                let cols = self.columns(&header, rows.iter().filter_map(|(k, _)| split_snmp6(k)));
                self.emit(&cols, rows.iter().map(|(_, v)| *v), &path, out)?;
            }
            // IPv6 disabled: nothing to report, not an error.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&path, e)),
        }
        Ok(())
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
            |_, p, n, v| {
                got.push(format!("{p}: {n} = {v}"));
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(got, ["Tcp: InSegs OutSegs = 5 6"]);
        assert_eq!(split_snmp6("Ip6InOctets"), Some(("Ip6", "InOctets")));
        assert_eq!(
            split_snmp6("UdpLite6InErrors"),
            Some(("UdpLite6", "InErrors"))
        );
        assert!(parse_pairs("Tcp: A B\nTcp: 1\n", Path::new("snmp"), |_, _, _, _| Ok(())).is_err());
        assert!(parse_pairs("Tcp: A B\n", Path::new("snmp"), |_, _, _, _| Ok(())).is_err());
    }
}
