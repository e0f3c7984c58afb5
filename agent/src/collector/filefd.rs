//! `node_filefd_allocated` and `node_filefd_maximum` from /proc/sys/fs/file-nr.

use vigie_exposition::Family;

use super::{Collector, Error, Result, gauge, read};
use crate::paths::Paths;

pub struct Filefd {
    paths: Paths,
}

impl Filefd {
    pub fn new(o: &super::Options) -> Filefd {
        Filefd {
            paths: o.paths.clone(),
        }
    }
}

impl Collector for Filefd {
    fn update(&self, out: &mut Vec<Family>) -> Result<()> {
        let path = self.paths.proc("sys/fs/file-nr");
        let text = read(&path)?;
        let fields: Vec<f64> = text
            .split_ascii_whitespace()
            .filter_map(|f| f.parse().ok())
            .collect();
        if fields.len() != 3 {
            return Err(Error::parse(
                &path,
                1,
                format!("expected 3 numbers, got {:?}", text.trim()),
            ));
        }
        out.push(gauge(
            "node_filefd_allocated",
            "File descriptor statistics: allocated.",
            fields[0],
        ));
        out.push(gauge(
            "node_filefd_maximum",
            "File descriptor statistics: maximum.",
            fields[2],
        ));
        Ok(())
    }
}
