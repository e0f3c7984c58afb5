//! Log sources: files (glob discovery, tailing, rotation) and the systemd journal.

pub mod file;
pub mod journal;
