//! `node_entropy_available_bits` and `node_entropy_pool_size_bits` from /proc/sys/kernel/random.

use vigie_exposition::Family;

use super::{Collector, Error, Result, gauge, read};
use crate::paths::Paths;

pub struct Entropy {
    paths: Paths,
}

impl Entropy {
    pub fn new(o: &super::Options) -> Entropy {
        Entropy {
            paths: o.paths.clone(),
        }
    }

    fn value(&self, rel: &str) -> Result<f64> {
        let path = self.paths.proc(rel);
        let text = read(&path)?;
        text.trim()
            .parse()
            .map_err(|_| Error::parse(&path, 1, format!("invalid value {:?}", text.trim())))
    }
}

impl Collector for Entropy {
    fn update(&self, out: &mut Vec<Family>) -> Result<()> {
        out.push(gauge(
            "node_entropy_available_bits",
            "Bits of available entropy.",
            self.value("sys/kernel/random/entropy_avail")?,
        ));
        out.push(gauge(
            "node_entropy_pool_size_bits",
            "Bits of entropy pool.",
            self.value("sys/kernel/random/poolsize")?,
        ));
        Ok(())
    }
}
