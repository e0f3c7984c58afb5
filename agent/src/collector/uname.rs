//! `node_uname_info` from the uname system call (not readable from a fixture tree).

use vigie_exposition::{Family, Kind};

use super::{Collector, Error, Result};

pub struct Uname;

impl Uname {
    pub fn new(_: &super::Options) -> Uname {
        Uname
    }
}

impl Collector for Uname {
    fn update(&self, out: &mut Vec<Family>) -> Result<()> {
        let u = nix::sys::utsname::uname().map_err(|e| Error::Other(format!("uname: {e}")))?;
        let s = |v: &std::ffi::OsStr| v.to_string_lossy().into_owned();
        out.push(
            Family::new(
                "node_uname_info",
                "Labeled system information as provided by the uname system call.",
                Kind::Gauge,
            )
            .with(
                &[
                    ("domainname", &s(u.domainname())),
                    ("machine", &s(u.machine())),
                    ("nodename", &s(u.nodename())),
                    ("release", &s(u.release())),
                    ("sysname", &s(u.sysname())),
                    ("version", &s(u.version())),
                ],
                1.0,
            ),
        );
        Ok(())
    }
}
