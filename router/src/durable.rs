//! The on-disk state of the dispatcher (active alerts, silences, notification log) in one redb
//! file under `--storage.path`. Changes are committed by a single writer thread that takes every
//! change queued while the previous commit ran and writes them in one transaction: an API caller
//! gets its 2xx only once its change is on disk, and a burst costs one fsync, not one per alert.

use std::path::Path;
use std::sync::{Arc, mpsc};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::nflog::Entry;
use crate::provider::Alert;
use crate::silence::Silence;

const ALERTS: TableDefinition<u64, &[u8]> = TableDefinition::new("alerts");
const SILENCES: TableDefinition<&str, &[u8]> = TableDefinition::new("silences");
const NFLOG: TableDefinition<&str, &[u8]> = TableDefinition::new("nflog");
const CACHE_BYTES: usize = 4 << 20;

#[derive(Debug, thiserror::Error)]
#[error("state store {path}: {msg}")]
pub struct DurableError {
    pub path: String,
    pub msg: String,
}

/// One change to the persisted state.
#[derive(Debug)]
pub enum Op {
    PutAlert(Arc<Alert>),
    DelAlert(u64),
    PutSilence(Silence),
    DelSilence(String),
    PutNflog(String, Entry),
    DelNflog(String),
}

type Ack = tokio::sync::oneshot::Sender<Result<(), String>>;

/// What was on disk at start.
#[derive(Debug, Default)]
pub struct Loaded {
    pub alerts: Vec<Alert>,
    pub silences: Vec<Silence>,
    pub nflog: Vec<(String, Entry)>,
}

/// Handle to the writer thread; cheap to clone. Without a database (tests) commits succeed at
/// once.
#[derive(Debug, Clone)]
pub struct Durable {
    tx: Option<mpsc::Sender<(Vec<Op>, Ack)>>,
}

impl Durable {
    pub fn memory() -> Durable {
        Durable { tx: None }
    }

    /// Opens (or creates) `<dir>/state.redb`, reads it back and starts the writer.
    pub fn open(dir: &Path) -> Result<(Durable, Loaded), DurableError> {
        let path = dir.join("state.redb");
        let err = |e: &dyn std::fmt::Display| DurableError {
            path: path.display().to_string(),
            msg: e.to_string(),
        };
        // A small page cache: the state is read once at start and then only written.
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(&path)
            .map_err(|e| err(&e))?;
        let loaded = load(&db).map_err(|e| err(&e))?;
        let (tx, rx) = mpsc::channel::<(Vec<Op>, Ack)>();
        let shown = path.display().to_string();
        std::thread::Builder::new()
            .name("state-writer".into())
            .spawn(move || writer(db, rx, shown))
            .map_err(|e| err(&e))?;
        Ok((Durable { tx: Some(tx) }, loaded))
    }

    /// Queues changes and waits until they are committed.
    pub async fn commit(&self, ops: Vec<Op>) -> Result<(), String> {
        let Some(tx) = &self.tx else { return Ok(()) };
        if ops.is_empty() {
            return Ok(());
        }
        let (ack, done) = tokio::sync::oneshot::channel();
        tx.send((ops, ack))
            .map_err(|_| "state writer stopped".to_string())?;
        done.await.map_err(|_| "state writer stopped".to_string())?
    }
}

fn load(db: &Database) -> Result<Loaded, redb::Error> {
    // Create the tables so a fresh file reads back empty.
    let w = db.begin_write()?;
    w.open_table(ALERTS)?;
    w.open_table(SILENCES)?;
    w.open_table(NFLOG)?;
    w.commit()?;
    let r = db.begin_read()?;
    let mut out = Loaded::default();
    for item in r.open_table(ALERTS)?.iter()? {
        let (_, v) = item?;
        if let Some(a) = decode_alert(v.value()) {
            out.alerts.push(a);
        }
    }
    for item in r.open_table(SILENCES)?.iter()? {
        let (_, v) = item?;
        if let Ok(s) = serde_json::from_slice(v.value()) {
            out.silences.push(s);
        }
    }
    for item in r.open_table(NFLOG)?.iter()? {
        let (k, v) = item?;
        if let Ok(e) = serde_json::from_slice(v.value()) {
            out.nflog.push((k.value().to_string(), e));
        }
    }
    Ok(out)
}

fn writer(db: Database, rx: mpsc::Receiver<(Vec<Op>, Ack)>, path: String) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        let result = apply(&db, batch.iter().flat_map(|(ops, _)| ops)).map_err(|e| {
            tracing::error!(path = %path, error = %e, "committing state failed");
            e.to_string()
        });
        for (_, ack) in batch {
            let _ = ack.send(result.clone());
        }
    }
}

fn apply<'a>(db: &Database, ops: impl Iterator<Item = &'a Op>) -> Result<(), redb::Error> {
    let w = db.begin_write()?;
    {
        let mut alerts = w.open_table(ALERTS)?;
        let mut silences = w.open_table(SILENCES)?;
        let mut nflog = w.open_table(NFLOG)?;
        let mut buf = Vec::new();
        for op in ops {
            match op {
                Op::PutAlert(a) => {
                    buf.clear();
                    encode_alert(a, &mut buf);
                    alerts.insert(a.fingerprint(), buf.as_slice())?;
                }
                Op::DelAlert(fp) => {
                    alerts.remove(*fp)?;
                }
                Op::PutSilence(s) => {
                    let v = serde_json::to_vec(s).unwrap_or_default();
                    silences.insert(s.id.as_str(), v.as_slice())?;
                }
                Op::DelSilence(id) => {
                    silences.remove(id.as_str())?;
                }
                Op::PutNflog(k, e) => {
                    let v = serde_json::to_vec(e).unwrap_or_default();
                    nflog.insert(k.as_str(), v.as_slice())?;
                }
                Op::DelNflog(k) => {
                    nflog.remove(k.as_str())?;
                }
            }
        }
    }
    w.commit()?;
    Ok(())
}

/// Alerts are most of the writes: a compact binary form (version byte, times, flag, then
/// length-prefixed strings) costs a fraction of JSON to write and to read back.
fn encode_alert(a: &Alert, out: &mut Vec<u8>) {
    fn s(out: &mut Vec<u8>, v: &str) {
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    out.push(1);
    for t in [a.starts_at, a.ends_at, a.updated_at] {
        out.extend_from_slice(&t.to_le_bytes());
    }
    out.push(u8::from(a.timeout));
    for map in [&a.labels, &a.annotations] {
        out.extend_from_slice(&(map.len() as u32).to_le_bytes());
        for (k, v) in map.iter() {
            s(out, k);
            s(out, v);
        }
    }
    s(out, &a.generator_url);
}

fn decode_alert(b: &[u8]) -> Option<Alert> {
    struct R<'a>(&'a [u8]);
    impl R<'_> {
        fn take(&mut self, n: usize) -> Option<&[u8]> {
            let (h, t) = (self.0.get(..n)?, self.0.get(n..)?);
            self.0 = t;
            Some(h)
        }
        fn u32(&mut self) -> Option<usize> {
            Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?) as usize)
        }
        fn i64(&mut self) -> Option<i64> {
            Some(i64::from_le_bytes(self.take(8)?.try_into().ok()?))
        }
        fn str(&mut self) -> Option<String> {
            let n = self.u32()?;
            String::from_utf8(self.take(n)?.to_vec()).ok()
        }
        fn map(&mut self) -> Option<crate::labelset::LabelSet> {
            let n = self.u32()?;
            let pairs: Option<Vec<(String, String)>> =
                (0..n).map(|_| Some((self.str()?, self.str()?))).collect();
            Some(pairs?.into_iter().collect())
        }
    }
    let mut r = R(b);
    if r.take(1)? != [1] {
        return None;
    }
    Some(Alert {
        starts_at: r.i64()?,
        ends_at: r.i64()?,
        updated_at: r.i64()?,
        timeout: r.take(1)?[0] != 0,
        labels: r.map()?,
        annotations: r.map()?,
        generator_url: crate::labelset::intern(&r.str()?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn commits_survive_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let alert = Alert {
            labels: [("alertname", "A")].into_iter().collect(),
            annotations: [("summary", "s")].into_iter().collect(),
            starts_at: 1,
            ends_at: 2,
            updated_at: 1,
            generator_url: "http://x/".into(),
            timeout: false,
        };
        {
            let (d, loaded) = Durable::open(dir.path()).expect("open");
            assert!(loaded.alerts.is_empty());
            let entry = Entry {
                firing: vec![1],
                resolved: vec![],
                at: 5,
                expires_at: 10,
            };
            d.commit(vec![
                Op::PutAlert(Arc::new(alert.clone())),
                Op::PutNflog("k".into(), entry),
            ])
            .await
            .expect("commit");
        }
        // The writer thread holds the file until its channel closes.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let loaded = loop {
            match Durable::open(dir.path()) {
                Ok((_, l)) => break l,
                Err(e) if std::time::Instant::now() < deadline => {
                    let _ = e;
                    std::thread::yield_now();
                }
                Err(e) => panic!("reopen: {e}"),
            }
        };
        assert_eq!(loaded.alerts, vec![alert]);
        assert_eq!(loaded.nflog.len(), 1);
    }
}
