//! Positions: per source, how far Loki has acknowledged (every client), plus each client's
//! last acknowledged spool sequence. Written atomically (temp file, fsync, rename, directory
//! fsync) and versioned. A Promtail positions file (`positions: {path: "offset"}`) is read as a
//! migration: its offsets are taken for the files still at those paths.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::entry::Position;

pub const VERSION: u32 = 1;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FileState {
    pub path: String,
    pub dev: u64,
    pub inode: u64,
    /// Hash of the file's first line (at most 256 bytes): identity across renames.
    pub fingerprint: String,
    pub offset: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Saved {
    pub version: u32,
    #[serde(default)]
    pub clients: BTreeMap<String, u64>,
    #[serde(default)]
    pub files: BTreeMap<String, FileState>,
    #[serde(default)]
    pub journal: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
struct PromtailPositions {
    positions: BTreeMap<String, String>,
}

/// What a restart starts from.
#[derive(Debug, Default)]
pub struct Loaded {
    pub saved: Saved,
    /// Promtail's path → offset, to be matched against files found at start.
    pub promtail: HashMap<String, u64>,
}

pub fn load(path: &Path, ignore_invalid: bool) -> Result<Loaded, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Loaded::default()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    if text.trim().is_empty() {
        return Ok(Loaded::default());
    }
    if let Ok(saved) = serde_json::from_str::<Saved>(&text) {
        if saved.version > VERSION {
            return Err(format!(
                "{}: positions version {} is newer than this agent understands ({VERSION})",
                path.display(),
                saved.version
            ));
        }
        return Ok(Loaded {
            saved,
            promtail: HashMap::new(),
        });
    }
    match serde_saphyr::from_str::<PromtailPositions>(&text) {
        Ok(p) => Ok(Loaded {
            saved: Saved::default(),
            promtail: p
                .positions
                .into_iter()
                .filter(|(k, _)| !k.starts_with("cursor-"))
                .filter_map(|(k, v)| Some((k, v.parse().ok()?)))
                .collect(),
        }),
        Err(e) if ignore_invalid => {
            tracing::warn!(file = %path.display(), error = %e, "positions file unreadable; ignore_invalid_yaml is set, starting without it");
            Ok(Loaded::default())
        }
        Err(e) => Err(format!(
            "{}: not a positions file ({}); set positions.ignore_invalid_yaml to start without it",
            path.display(),
            e.to_string().lines().next().unwrap_or_default()
        )),
    }
}

/// Writes `saved` so that a crash at any point leaves either the old or the new file.
pub fn store(path: &Path, saved: &Saved) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = PathBuf::from(path);
    tmp.as_mut_os_string().push(".tmp");
    let body = serde_json::to_vec_pretty(saved).map_err(std::io::Error::other)?;
    {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(&body)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Acknowledged state shared by the reader (which registers sources and appends records) and
/// the senders (which acknowledge them).
#[derive(Debug, Default)]
pub struct Ledger {
    pub clients: BTreeMap<String, u64>,
    /// Checkpoints of records not yet acknowledged by every client, by sequence.
    pub pending: BTreeMap<u64, Vec<(Arc<str>, Position)>>,
    /// Source key → what is known about it and its acknowledged position.
    pub files: BTreeMap<String, FileState>,
    pub journal: BTreeMap<String, String>,
    /// The lowest sequence every client has acknowledged, folded into `files`/`journal`.
    pub folded: u64,
    pub dirty: bool,
}

impl Ledger {
    pub fn from_saved(s: &Saved) -> Ledger {
        Ledger {
            clients: s.clients.clone(),
            files: s.files.clone(),
            journal: s.journal.clone(),
            folded: s.clients.values().copied().min().unwrap_or(0),
            ..Ledger::default()
        }
    }

    pub fn snapshot(&self) -> Saved {
        Saved {
            version: VERSION,
            clients: self.clients.clone(),
            files: self.files.clone(),
            journal: self.journal.clone(),
        }
    }

    pub fn register_file(&mut self, key: &str, state: FileState) {
        self.files.entry(key.to_string()).or_insert(state);
    }

    pub fn set_path(&mut self, key: &str, path: &str) {
        if let Some(f) = self.files.get_mut(key) {
            path.clone_into(&mut f.path);
            self.dirty = true;
        }
    }

    /// Records a client's acknowledgement and folds what every client has now acknowledged.
    pub fn ack(&mut self, client: &str, seq: u64) {
        let e = self.clients.entry(client.to_string()).or_insert(0);
        *e = (*e).max(seq);
        let min = self.clients.values().copied().min().unwrap_or(seq);
        while let Some((&s, _)) = self.pending.first_key_value() {
            if s > min {
                break;
            }
            if let Some((_, cks)) = self.pending.pop_first() {
                for (key, pos) in cks {
                    match pos {
                        Position::Offset(o) => {
                            if let Some(f) = self.files.get_mut(&*key) {
                                f.offset = o;
                            }
                        }
                        Position::Cursor(c) => {
                            self.journal.insert(key.to_string(), c);
                        }
                        Position::None => {}
                    }
                }
            }
        }
        self.folded = min;
        self.dirty = true;
    }

    /// Forgets files that no longer exist and are not waiting in the spool.
    pub fn retain_files(&mut self, alive: impl Fn(&str, &FileState) -> bool) {
        let pending: std::collections::HashSet<&str> =
            self.pending.values().flatten().map(|(k, _)| &**k).collect();
        let before = self.files.len();
        self.files
            .retain(|k, f| pending.contains(k.as_str()) || alive(k, f));
        if self.files.len() != before {
            self.dirty = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_folds_only_what_every_client_acknowledged() {
        let mut l = Ledger::default();
        l.clients.insert("a".into(), 0);
        l.clients.insert("b".into(), 0);
        l.register_file("k", FileState::default());
        let key: Arc<str> = Arc::from("k");
        l.pending
            .insert(1, vec![(key.clone(), Position::Offset(10))]);
        l.pending.insert(2, vec![(key, Position::Offset(20))]);
        l.ack("a", 2);
        assert_eq!(l.files["k"].offset, 0);
        l.ack("b", 1);
        assert_eq!(l.files["k"].offset, 10);
        l.ack("b", 2);
        assert_eq!(l.files["k"].offset, 20);
        assert!(l.pending.is_empty());
    }

    #[test]
    fn store_load_roundtrip_and_promtail_migration() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("positions.yaml");
        let mut s = Saved {
            version: VERSION,
            ..Saved::default()
        };
        s.clients.insert("c".into(), 7);
        store(&p, &s).expect("store");
        let l = load(&p, false).expect("load");
        assert_eq!(l.saved.clients["c"], 7);
        std::fs::write(
            &p,
            "positions:\n  /var/log/syslog: \"123\"\n  cursor-journal: \"s=1\"\n",
        )
        .expect("w");
        let l = load(&p, false).expect("promtail");
        assert_eq!(l.promtail["/var/log/syslog"], 123);
        std::fs::write(&p, "\0\0\0garbage: [").expect("w");
        assert!(load(&p, false).is_err());
        assert!(load(&p, true).is_ok());
    }
}
