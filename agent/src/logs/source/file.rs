//! Tailing files. A file is identified by device, inode and a fingerprint of its first line, so
//! a rename is never re-read and a reused inode is never mistaken for the old file. Each tailed
//! file keeps its descriptor open: a file renamed or deleted while the agent is behind is still
//! read to its end, and a writer that keeps writing a renamed file for a while is followed
//! (`rotate_wait`). A truncation (copytruncate) first finishes the unread part from the copy
//! next to it when there is one, then reads the file again from the start.

use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use globset::{Glob, GlobMatcher};

use crate::logs::entry::Labels;

/// Bytes of the first line that identify a file.
pub const FINGERPRINT_BYTES: usize = 256;
/// A line longer than this is cut into pieces of this size.
pub const MAX_LINE: usize = 4 << 20;

/// Extensions of compressed rotated files, skipped by default.
const COMPRESSED: &[&str] = &[
    "gz", "bz2", "xz", "zst", "zip", "lz4", "z", "Z", "tgz", "lzma", "br",
];

pub fn is_compressed(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| COMPRESSED.contains(&e))
}

fn fnv(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for x in b {
        h ^= u64::from(*x);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// The fingerprint of an open file: a hash of its first line (or first 256 bytes); `None`
/// while the file has no complete first line yet.
pub fn fingerprint(f: &File) -> Option<String> {
    let mut buf = [0u8; FINGERPRINT_BYTES];
    let mut n = 0;
    while n < buf.len() {
        match f.read_at(&mut buf[n..], n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(_) => return None,
        }
    }
    let head = &buf[..n];
    let first = match memchr::memchr(b'\n', head) {
        Some(i) => &head[..i],
        None if n == FINGERPRINT_BYTES => head,
        None => return None,
    };
    Some(format!("{:016x}", fnv(first)))
}

pub fn source_key(dev: u64, ino: u64, fp: &str) -> String {
    format!("file:{dev}:{ino}:{fp}")
}

/// A `__path__` glob: the directory to list and the matcher for what is found there.
#[derive(Debug, Clone)]
pub struct PathGlob {
    pub pattern: String,
    pub base: PathBuf,
    pub recursive: bool,
    pub depth: usize,
    matcher: GlobMatcher,
}

impl PathGlob {
    pub fn new(pattern: &str) -> Result<PathGlob, String> {
        let matcher = Glob::new(pattern)
            .map_err(|e| format!("__path__ {pattern:?}: {e}"))?
            .compile_matcher();
        let crate::glob::Split {
            base,
            depth,
            recursive,
        } = crate::glob::split(pattern);
        if depth == 0 {
            // A plain path: its directory is listed, the name matched exactly.
            let parent = base.parent().map(Path::to_path_buf).unwrap_or_default();
            return Ok(PathGlob {
                pattern: pattern.to_string(),
                base: parent,
                recursive: false,
                depth: 1,
                matcher,
            });
        }
        Ok(PathGlob {
            pattern: pattern.to_string(),
            base,
            recursive,
            depth,
            matcher,
        })
    }

    pub fn is_match(&self, p: &Path) -> bool {
        self.matcher.is_match(p)
    }

    /// Regular files under the base that match.
    pub fn expand(&self, out: &mut Vec<PathBuf>) {
        fn walk(g: &PathGlob, dir: &Path, level: usize, out: &mut Vec<PathBuf>) {
            let Ok(rd) = std::fs::read_dir(dir) else {
                return;
            };
            for e in rd.flatten() {
                let p = e.path();
                let Ok(ft) = e.file_type() else { continue };
                let ft = if ft.is_symlink() {
                    match std::fs::metadata(&p) {
                        Ok(m) => m.file_type(),
                        Err(_) => continue,
                    }
                } else {
                    ft
                };
                if ft.is_file() {
                    if (level == g.depth || g.recursive) && g.matcher.is_match(&p) {
                        out.push(p);
                    }
                } else if ft.is_dir() && (g.recursive || level < g.depth) && level < 32 {
                    walk(g, &p, level + 1, out);
                }
            }
        }
        walk(self, &self.base, 1, out);
    }
}

pub struct Tailer {
    pub key: Arc<str>,
    pub path: PathBuf,
    /// The `filename` label; kept when the file is renamed, so its stream stays one stream.
    pub labels: Labels,
    pub rendered: Arc<str>,
    pub job: usize,
    pub file: File,
    pub dev: u64,
    pub ino: u64,
    pub fp: String,
    /// End of the last complete line handed on.
    pub offset: u64,
    /// Bytes read so far (offset plus a held partial line).
    read_pos: u64,
    partial: Vec<u8>,
    pub size: u64,
    /// Since when no discovery pass found this file at a matching path.
    pub orphan_since: Option<Instant>,
    pub last_data: Instant,
    pub next_poll: Instant,
    idle_polls: u32,
    /// Longest wait between two polls of a quiet file: short when polling is all there is,
    /// longer when inotify wakes the file on a write.
    pub idle_cap: Duration,
    /// Read from a copy left by copytruncate: closed at its end.
    pub drain_only: bool,
    /// Reading order among files of one stream: a rotated generation (lower) is finished
    /// before its successor (higher) is read.
    pub generation: u64,
}

pub enum Read {
    /// Lines were handed on (count).
    Data(usize),
    Idle,
    Truncated,
    Error(std::io::Error),
}

impl Tailer {
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        path: PathBuf,
        file: File,
        dev: u64,
        ino: u64,
        fp: String,
        offset: u64,
        labels: Labels,
        job: usize,
    ) -> Tailer {
        let rendered: Arc<str> = Arc::from(labels.render());
        let now = Instant::now();
        Tailer {
            key: Arc::from(source_key(dev, ino, &fp)),
            path,
            labels,
            rendered,
            job,
            file,
            dev,
            ino,
            fp,
            offset,
            read_pos: offset,
            partial: Vec::new(),
            size: offset,
            orphan_since: None,
            last_data: now,
            next_poll: now,
            idle_polls: 0,
            idle_cap: Duration::from_secs(1),
            drain_only: false,
            generation: 0,
        }
    }

    /// Reads up to `max` bytes and hands each complete line with the offset after it.
    pub fn read(
        &mut self,
        buf: &mut Vec<u8>,
        max: usize,
        mut line: impl FnMut(&[u8], u64),
    ) -> Read {
        let size = match self.file.metadata() {
            Ok(m) => m.len(),
            Err(e) => return Read::Error(e),
        };
        self.size = size;
        if size < self.read_pos {
            return Read::Truncated;
        }
        if size == self.read_pos {
            self.idle_polls = self.idle_polls.saturating_add(1);
            let backoff =
                Duration::from_millis(250u64 << self.idle_polls.min(5)).min(self.idle_cap);
            self.next_poll = Instant::now() + backoff;
            return Read::Idle;
        }
        // copytruncate followed by a quick regrowth past our offset: the first line changed.
        if !self.fp.is_empty() && fingerprint(&self.file).is_some_and(|fp| fp != self.fp) {
            return Read::Truncated;
        }
        let want = ((size - self.read_pos) as usize).min(max);
        buf.clear();
        buf.resize(want, 0);
        let n = match self.file.read_at(buf, self.read_pos) {
            Ok(n) => n,
            Err(e) => return Read::Error(e),
        };
        buf.truncate(n);
        self.idle_polls = 0;
        self.next_poll = Instant::now();
        self.last_data = Instant::now();
        let base = self.read_pos;
        self.read_pos += n as u64;
        let mut start = 0;
        let mut count = 0;
        for i in memchr::memchr_iter(b'\n', buf) {
            let end_off = base + i as u64 + 1;
            let mut l = &buf[start..i];
            if !self.partial.is_empty() {
                self.partial.extend_from_slice(l);
                let whole = std::mem::take(&mut self.partial);
                let mut w: &[u8] = &whole;
                if w.last() == Some(&b'\r') {
                    w = &w[..w.len() - 1];
                }
                line(w, end_off);
            } else {
                if l.last() == Some(&b'\r') {
                    l = &l[..l.len() - 1];
                }
                line(l, end_off);
            }
            self.offset = end_off;
            count += 1;
            start = i + 1;
        }
        self.partial.extend_from_slice(&buf[start..]);
        if self.partial.len() >= MAX_LINE {
            let whole = std::mem::take(&mut self.partial);
            line(&whole, self.read_pos);
            self.offset = self.read_pos;
            count += 1;
        }
        Read::Data(count)
    }

    /// Re-reads the size; used for files not being read right now.
    pub fn refresh_size(&mut self) {
        if let Ok(m) = self.file.metadata() {
            self.size = m.len();
        }
    }

    /// Whether a file not being read right now was truncated (or truncated and rewritten).
    pub fn check_truncated(&mut self) -> bool {
        self.refresh_size();
        self.size < self.read_pos
            || (!self.fp.is_empty()
                && self.size > self.read_pos
                && fingerprint(&self.file).is_some_and(|fp| fp != self.fp))
    }

    /// After a truncation: read the file again from the start under its new identity.
    pub fn restart(&mut self, fp: String) {
        self.fp = fp;
        self.key = Arc::from(source_key(self.dev, self.ino, &self.fp));
        self.offset = 0;
        self.read_pos = 0;
        self.partial.clear();
        self.size = 0;
    }

    pub fn at_eof(&self) -> bool {
        self.read_pos >= self.size
    }
}

/// A copy of `path` left by copytruncate: a file in the same directory whose name starts with
/// the file's name, with the same fingerprint, at least `offset` bytes long, another inode.
pub fn find_copy(
    path: &Path,
    fp: &str,
    offset: u64,
    ino: u64,
) -> Option<(PathBuf, File, u64, u64)> {
    let dir = path.parent()?;
    let name = path.file_name()?.to_string_lossy().into_owned();
    let mut best: Option<(PathBuf, File, u64, u64, i64)> = None;
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        let n = e.file_name().to_string_lossy().into_owned();
        if p == path || !n.starts_with(&name) || is_compressed(&p) {
            continue;
        }
        let Ok(f) = File::open(&p) else { continue };
        let Ok(m) = f.metadata() else { continue };
        if !m.is_file() || m.ino() == ino || m.len() < offset {
            continue;
        }
        if fingerprint(&f).as_deref() != Some(fp) {
            continue;
        }
        let mtime = m.mtime();
        if best.as_ref().is_none_or(|b| mtime > b.4) {
            best = Some((p, f, m.dev(), m.ino(), mtime));
        }
    }
    best.map(|(p, f, d, i, _)| (p, f, d, i))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn globs_expand_and_match() {
        let dir = tempfile::tempdir().expect("tmp");
        let d = dir.path();
        std::fs::create_dir_all(d.join("a/b")).expect("mk");
        for f in ["x.log", "y.txt", "a/z.log", "a/b/w.log", "x.log.gz"] {
            std::fs::write(d.join(f), "l\n").expect("w");
        }
        let mut out = Vec::new();
        PathGlob::new(&format!("{}/*.log", d.display()))
            .expect("g")
            .expand(&mut out);
        assert_eq!(out, vec![d.join("x.log")]);
        out.clear();
        PathGlob::new(&format!("{}/**/*.log", d.display()))
            .expect("g")
            .expand(&mut out);
        out.sort();
        assert_eq!(
            out,
            vec![d.join("a/b/w.log"), d.join("a/z.log"), d.join("x.log")]
        );
        out.clear();
        PathGlob::new(&format!("{}/x.log", d.display()))
            .expect("g")
            .expand(&mut out);
        assert_eq!(out, vec![d.join("x.log")]);
        assert!(is_compressed(&d.join("x.log.gz")));
    }

    #[test]
    fn lines_partial_lines_and_truncation() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("f.log");
        let mut w = File::create(&p).expect("create");
        w.write_all(b"first\r\nsecond\nthi").expect("w");
        let f = File::open(&p).expect("open");
        let fp = fingerprint(&f).expect("fp");
        let mut t = Tailer::open(p.clone(), f, 0, 1, fp, 0, Labels::default(), 0);
        let mut got = Vec::new();
        let mut buf = Vec::new();
        t.read(&mut buf, 1 << 20, |l, o| {
            got.push((String::from_utf8_lossy(l).into_owned(), o))
        });
        assert_eq!(got, [("first".to_string(), 7), ("second".to_string(), 14)]);
        w.write_all(b"rd\n").expect("w");
        t.read(&mut buf, 1 << 20, |l, o| {
            got.push((String::from_utf8_lossy(l).into_owned(), o))
        });
        assert_eq!(got[2], ("third".to_string(), 20));
        assert!(matches!(t.read(&mut buf, 1 << 20, |_, _| {}), Read::Idle));
        w.set_len(0).expect("truncate");
        assert!(matches!(
            t.read(&mut buf, 1 << 20, |_, _| {}),
            Read::Truncated
        ));
    }
}
