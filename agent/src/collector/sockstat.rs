//! `node_sockstat_*` from /proc/net/sockstat and sockstat6, named as node_exporter names them.

use std::io;

use vigie_exposition::Family;

use super::{Collector, Error, Result, gauge, read};
use crate::paths::Paths;

pub struct Sockstat {
    paths: Paths,
    page_size: f64,
}

impl Sockstat {
    pub fn new(o: &super::Options) -> Sockstat {
        let page_size = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
            .ok()
            .flatten()
            .unwrap_or(4096) as f64;
        Sockstat {
            paths: o.paths.clone(),
            page_size,
        }
    }

    fn parse(&self, text: &str, out: &mut Vec<Family>) {
        for line in text.lines() {
            let Some((proto, rest)) = line.split_once(':') else {
                continue;
            };
            let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
            for pair in fields.chunks(2) {
                let [key, value] = pair else { continue };
                let Ok(v) = value.parse::<f64>() else {
                    continue;
                };
                if proto == "sockets" {
                    if *key == "used" {
                        out.push(gauge(
                            "node_sockstat_sockets_used",
                            "Number of IPv4 sockets in use.",
                            v,
                        ));
                    }
                    continue;
                }
                if !matches!(*key, "inuse" | "orphan" | "tw" | "alloc" | "mem" | "memory") {
                    continue;
                }
                out.push(gauge(
                    format!("node_sockstat_{proto}_{key}"),
                    format!("Number of {proto} sockets in state {key}."),
                    v,
                ));
                if *key == "mem" {
                    out.push(gauge(
                        format!("node_sockstat_{proto}_mem_bytes"),
                        format!("Number of {proto} sockets in state mem_bytes."),
                        v * self.page_size,
                    ));
                }
            }
        }
    }
}

impl Collector for Sockstat {
    fn update(&self, out: &mut Vec<Family>) -> Result<()> {
        let path = self.paths.proc("net/sockstat");
        self.parse(&read(&path)?, out);
        let path6 = self.paths.proc("net/sockstat6");
        match super::kfile::read(&path6) {
            Ok(text) => self.parse(&text, out),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&path6, e)),
        }
        Ok(())
    }
}
