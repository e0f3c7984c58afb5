//! The spool: every batch is written here, already encoded, before it is sent, so its lines
//! keep the timestamps they were read with and a resend is an exact duplicate Loki discards.
//! While Loki is away batches pile up here, up to `max_size`; then `append` blocks and reading
//! pauses (the files are the buffer). Segments are deleted once every record in them is
//! acknowledged and the positions saying so are on disk.
//!
//! Frame: `magic u32 | payload length u32 | crc32 u32 | payload`. A torn frame at the end of the
//! last segment (a crash mid-write) is cut off at open; those lines were never sent.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::entry::Position;
use super::stats::Stats;

const MAGIC: u32 = 0x5647_4c31; // "VGL1"
const SEGMENT_BYTES: u64 = 32 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

/// One encoded push request and what it carries.
#[derive(Debug, Clone)]
pub struct Record {
    pub seq: u64,
    pub encoding: Encoding,
    pub tenant: Option<String>,
    pub lines: u32,
    pub bytes: u64,
    pub checkpoints: Vec<(Arc<str>, Position)>,
    /// Shared, not copied, by every push attempt.
    pub body: bytes::Bytes,
}

impl Record {
    fn encode(&self) -> Vec<u8> {
        let mut p = Vec::with_capacity(self.body.len() + 64);
        p.extend_from_slice(&self.seq.to_le_bytes());
        p.push(match self.encoding {
            Encoding::Protobuf => 0,
            Encoding::Json => 1,
        });
        let t = self.tenant.as_deref().unwrap_or("");
        p.push(u8::from(self.tenant.is_some()));
        put_str(&mut p, t);
        p.extend_from_slice(&self.lines.to_le_bytes());
        p.extend_from_slice(&self.bytes.to_le_bytes());
        p.extend_from_slice(&(self.checkpoints.len() as u32).to_le_bytes());
        for (k, pos) in &self.checkpoints {
            put_str(&mut p, k);
            match pos {
                Position::None => p.push(0),
                Position::Offset(o) => {
                    p.push(1);
                    p.extend_from_slice(&o.to_le_bytes());
                }
                Position::Cursor(c) => {
                    p.push(2);
                    put_str(&mut p, c);
                }
            }
        }
        p.extend_from_slice(&self.body);
        let mut crc = flate2::Crc::new();
        crc.update(&p);
        let mut frame = Vec::with_capacity(p.len() + 12);
        frame.extend_from_slice(&MAGIC.to_le_bytes());
        frame.extend_from_slice(&(p.len() as u32).to_le_bytes());
        frame.extend_from_slice(&crc.sum().to_le_bytes());
        frame.extend_from_slice(&p);
        frame
    }

    /// Decodes a frame's payload, keeping its buffer for the body (no copy of the body).
    fn decode(mut p: Vec<u8>) -> Option<Record> {
        let mut r = Reader(&p);
        let seq = r.u64()?;
        let encoding = match r.u8()? {
            0 => Encoding::Protobuf,
            _ => Encoding::Json,
        };
        let has_tenant = r.u8()? == 1;
        let tenant = r.str()?;
        let lines = r.u32()?;
        let bytes = r.u64()?;
        let n = r.u32()?;
        let mut checkpoints = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let k: Arc<str> = Arc::from(r.str()?);
            let pos = match r.u8()? {
                1 => Position::Offset(r.u64()?),
                2 => Position::Cursor(r.str()?),
                _ => Position::None,
            };
            checkpoints.push((k, pos));
        }
        let head = p.len() - r.0.len();
        p.drain(..head);
        Some(Record {
            seq,
            encoding,
            tenant: has_tenant.then_some(tenant),
            lines,
            bytes,
            checkpoints,
            body: bytes::Bytes::from(p),
        })
    }
}

fn put_str(p: &mut Vec<u8>, s: &str) {
    p.extend_from_slice(&(s.len() as u32).to_le_bytes());
    p.extend_from_slice(s.as_bytes());
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn str(&mut self) -> Option<String> {
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
}

struct Segment {
    path: PathBuf,
    file: File,
    len: u64,
    last_seq: u64,
}

struct Meta {
    seq: u64,
    segment: usize,
    offset: u64,
    len: u32,
}

struct Inner {
    segments: VecDeque<Segment>,
    /// Index of `segments[0]` in the ever-growing numbering used by `Meta::segment`.
    base: usize,
    records: VecDeque<Meta>,
    /// Bytes of frames not yet acknowledged.
    unacked: u64,
    acked: u64,
    next_id: u64,
}

pub struct Spool {
    dir: PathBuf,
    max: u64,
    inner: Mutex<Inner>,
    changed: Condvar,
    stats: Arc<Stats>,
}

impl Spool {
    /// Opens the spool, dropping records at or below `acked` and a torn tail.
    pub fn open(dir: &Path, max: u64, acked: u64, stats: Arc<Stats>) -> std::io::Result<Spool> {
        std::fs::create_dir_all(dir)?;
        let mut names: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)?
            .filter_map(Result::ok)
            .filter_map(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                let id = n.strip_prefix("seg-")?.strip_suffix(".log")?;
                Some((u64::from_str_radix(id, 16).ok()?, e.path()))
            })
            .collect();
        names.sort();
        let mut inner = Inner {
            segments: VecDeque::new(),
            base: 0,
            records: VecDeque::new(),
            unacked: 0,
            acked,
            next_id: names.last().map_or(0, |(id, _)| id + 1),
        };
        for (_, path) in names {
            let file = OpenOptions::new().read(true).append(true).open(&path)?;
            let size = file.metadata()?.len();
            let idx = inner.base + inner.segments.len();
            let mut off = 0u64;
            let mut last_seq = 0;
            let mut head = [0u8; 12];
            while off + 12 <= size {
                if file.read_exact_at(&mut head, off).is_err() {
                    break;
                }
                let magic = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
                let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
                let crc = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
                if magic != MAGIC || off + 12 + u64::from(len) > size {
                    break;
                }
                let mut p = vec![0u8; len as usize];
                if file.read_exact_at(&mut p, off + 12).is_err() {
                    break;
                }
                let mut c = flate2::Crc::new();
                c.update(&p);
                if c.sum() != crc || p.len() < 8 {
                    break;
                }
                // (the payload is read again when sent: only the index stays in memory)
                let seq = u64::from_le_bytes(p[..8].try_into().unwrap_or_default());
                last_seq = seq;
                if seq > acked {
                    inner.records.push_back(Meta {
                        seq,
                        segment: idx,
                        offset: off,
                        len: 12 + len,
                    });
                    inner.unacked += u64::from(12 + len);
                }
                off += 12 + u64::from(len);
            }
            if off < size {
                tracing::warn!(segment = %path.display(), kept = off, size, "spool segment has a torn tail (crash mid-write); cut");
                file.set_len(off)?;
            }
            inner.segments.push_back(Segment {
                path,
                file,
                len: off,
                last_seq,
            });
        }
        let spool = Spool {
            dir: dir.to_path_buf(),
            max,
            inner: Mutex::new(inner),
            changed: Condvar::new(),
            stats,
        };
        spool.gc(acked);
        spool.publish();
        Ok(spool)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn publish(&self) {
        let i = self.lock();
        self.stats.spool_bytes.store(i.unacked, Ordering::Relaxed);
        self.stats.spool_records.store(
            i.records.iter().filter(|m| m.seq > i.acked).count() as u64,
            Ordering::Relaxed,
        );
    }

    /// Every record still in the spool, oldest first, one at a time (used once at start to find
    /// how far reading had got; a backlog of a gigabyte is never in memory at once).
    pub fn for_each(&self, mut f: impl FnMut(Record)) {
        let i = self.lock();
        for m in &i.records {
            if let Some(r) = read_record(&i, m) {
                f(r);
            }
        }
    }

    pub fn last_seq(&self) -> u64 {
        let i = self.lock();
        i.records
            .back()
            .map(|m| m.seq)
            .or_else(|| i.segments.iter().map(|s| s.last_seq).max())
            .unwrap_or(0)
    }

    /// Whether a frame of `need` bytes fits (an empty spool always takes one, however big).
    pub fn has_room(&self, need: u64) -> bool {
        let i = self.lock();
        i.unacked == 0 || i.unacked + need <= self.max
    }

    pub fn append(&self, rec: &Record) -> std::io::Result<()> {
        let frame = rec.encode();
        let mut i = self.lock();
        let roll = i
            .segments
            .back()
            .is_none_or(|s| s.len + frame.len() as u64 > SEGMENT_BYTES && s.len > 0);
        if roll {
            if let Some(s) = i.segments.back() {
                s.file.sync_data()?;
            }
            let path = self.dir.join(format!("seg-{:016x}.log", i.next_id));
            i.next_id += 1;
            let file = OpenOptions::new()
                .read(true)
                .append(true)
                .create(true)
                .open(&path)?;
            i.segments.push_back(Segment {
                path,
                file,
                len: 0,
                last_seq: 0,
            });
        }
        let idx = i.base + i.segments.len() - 1;
        let seg = i
            .segments
            .back_mut()
            .ok_or_else(|| std::io::Error::other("no segment"))?;
        seg.file.write_all(&frame)?;
        let offset = seg.len;
        seg.len += frame.len() as u64;
        seg.last_seq = rec.seq;
        i.records.push_back(Meta {
            seq: rec.seq,
            segment: idx,
            offset,
            len: frame.len() as u32,
        });
        i.unacked += frame.len() as u64;
        drop(i);
        self.publish();
        self.changed.notify_all();
        Ok(())
    }

    /// The first record after `seq`, waiting up to `wait` for one.
    pub fn next_after(&self, seq: u64, wait: Duration) -> Option<Record> {
        let mut i = self.lock();
        let deadline = std::time::Instant::now() + wait;
        loop {
            let pos = i.records.partition_point(|m| m.seq <= seq);
            if let Some(m) = i.records.get(pos) {
                return read_record(&i, m);
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return None;
            }
            i = self
                .changed
                .wait_timeout(i, deadline - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }

    /// Marks everything up to `seq` acknowledged by this spool's client.
    pub fn ack(&self, seq: u64) {
        let mut i = self.lock();
        i.acked = i.acked.max(seq);
        let acked = i.acked;
        let mut freed = 0u64;
        for m in i.records.iter().filter(|m| m.seq <= acked) {
            freed += u64::from(m.len);
        }
        // Records stay indexed (for gc) but no longer count against the size limit.
        let keep: VecDeque<Meta> = std::mem::take(&mut i.records)
            .into_iter()
            .filter(|m| m.seq > acked)
            .collect();
        i.records = keep;
        i.unacked = i.unacked.saturating_sub(freed);
        drop(i);
        self.publish();
        self.changed.notify_all();
    }

    /// Deletes segments whose records are all at or below `persisted` (acknowledged, and the
    /// positions recording that are on disk).
    pub fn gc(&self, persisted: u64) {
        let mut i = self.lock();
        while let Some(s) = i.segments.front() {
            let live = i
                .records
                .iter()
                .any(|m| m.segment == i.base && m.seq > persisted);
            if live || s.last_seq > persisted {
                break;
            }
            let only = i.segments.len() == 1;
            if only && s.len < SEGMENT_BYTES / 4 && s.len > 0 {
                // Keep appending to a small active segment rather than churn files.
                if let Some(seg) = i.segments.front_mut()
                    && seg.file.set_len(0).is_ok()
                {
                    seg.len = 0;
                }
                break;
            }
            if let Some(s) = i.segments.pop_front() {
                let _ = std::fs::remove_file(&s.path);
            }
            i.base += 1;
        }
    }
}

fn read_record(i: &Inner, m: &Meta) -> Option<Record> {
    let seg = i.segments.get(m.segment.checked_sub(i.base)?)?;
    let len = (m.len as usize).checked_sub(12)?;
    let mut buf = vec![0u8; len];
    seg.file.read_exact_at(&mut buf, m.offset + 12).ok()?;
    Record::decode(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(seq: u64, body: &[u8]) -> Record {
        Record {
            seq,
            encoding: Encoding::Protobuf,
            tenant: Some("t".into()),
            lines: 1,
            bytes: body.len() as u64,
            checkpoints: vec![(Arc::from("file:1"), Position::Offset(seq * 10))],
            body: bytes::Bytes::copy_from_slice(body),
        }
    }

    #[test]
    fn survives_reopen_and_a_torn_tail() {
        let dir = tempfile::tempdir().expect("tmp");
        let stats = Arc::new(Stats::default());
        {
            let s = Spool::open(dir.path(), 1 << 20, 0, stats.clone()).expect("open");
            for seq in 1..=3 {
                s.append(&rec(seq, b"body")).expect("append");
            }
            s.ack(1);
        }
        // A crash in the middle of a frame.
        let seg = std::fs::read_dir(dir.path())
            .expect("dir")
            .next()
            .expect("one")
            .expect("e")
            .path();
        let mut f = OpenOptions::new().append(true).open(&seg).expect("seg");
        f.write_all(&MAGIC.to_le_bytes()).expect("w");
        f.write_all(&[200, 0, 0, 0, 1, 2]).expect("w");
        drop(f);
        let s = Spool::open(dir.path(), 1 << 20, 1, stats).expect("reopen");
        let mut all = Vec::new();
        s.for_each(|r| all.push(r));
        assert_eq!(all.iter().map(|r| r.seq).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(all[0].tenant.as_deref(), Some("t"));
        assert_eq!(all[1].checkpoints[0].1, Position::Offset(30));
        assert_eq!(s.next_after(2, Duration::ZERO).map(|r| r.seq), Some(3));
        assert!(s.next_after(3, Duration::from_millis(10)).is_none());
    }

    #[test]
    fn a_full_spool_has_room_again_once_acknowledged() {
        let dir = tempfile::tempdir().expect("tmp");
        let s = Spool::open(dir.path(), 100, 0, Arc::new(Stats::default())).expect("open");
        assert!(s.has_room(1000), "an empty spool takes any batch");
        s.append(&rec(1, &[0u8; 80])).expect("append");
        assert!(!s.has_room(80));
        s.ack(1);
        assert!(s.has_room(80));
    }
}
