//! The log shipper: sources (files, journal) → pipeline stages → batches → spool → Loki.
//!
//! Threads: one reader (discovery, tailing, stages, batching, spool writes), one sender per
//! Loki client (push, retry, acknowledge), one per journal target (journalctl). A line's
//! timestamp is fixed when it is read and travels with it into the spool; a position moves on
//! only once every client acknowledged the batch that carried it.

pub mod batch;
pub mod checkpoint;
pub mod client;
pub mod config;
pub mod entry;
pub mod positions;
pub mod push;
pub mod relabel;
pub mod source;
pub mod spool;
pub mod stages;
pub mod stats;
mod tlsverify;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use notify::Watcher;
use vigie_exposition::Family;

use batch::{Batcher, ClientShape};
use checkpoint::Checkpointer;
use config::Config;
use entry::{Checkpoint, Entry, Labels, Position};
use positions::{FileState, Ledger};
use source::file::{self as filesrc, PathGlob, Read, Tailer};
use source::journal::JournalSource;
use spool::{Encoding, Spool};
use stages::Pipeline;
use stats::Stats;

/// How long a renamed or deleted file is still followed after its last new line.
const ROTATE_WAIT: Duration = Duration::from_secs(5);
/// Quiet time after which a rotated generation no longer holds back its successor.
const GENERATION_QUIET: Duration = Duration::from_secs(1);
/// Bytes read from one file before moving to the next, so one busy file cannot starve others.
const READ_CHUNK: usize = 1 << 20;

pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// Read-time timestamps: wall clock, but never repeating or going back within a run, so the
/// order of lines is kept by their timestamps too.
struct Clock {
    last: i64,
}

impl Clock {
    fn next(&mut self) -> i64 {
        let now = now_ns();
        self.last = if now > self.last { now } else { self.last + 1 };
        self.last
    }
}

struct FileTarget {
    job: usize,
    glob: PathGlob,
    exclude: Option<PathGlob>,
    labels: Labels,
}

enum Wake {
    Fs(notify::Event),
    /// A journal entry is waiting.
    Tick,
}

pub struct Shipper {
    pub stats: Arc<Stats>,
    stop_reader: Arc<AtomicBool>,
    stop_senders: Arc<AtomicBool>,
    reader: Option<JoinHandle<()>>,
    senders: Vec<JoinHandle<()>>,
    journals: Vec<JoinHandle<()>>,
    checkpointer: Arc<Checkpointer>,
}

impl Shipper {
    pub fn start(cfg: Config) -> anyhow::Result<Shipper> {
        let stats = Arc::new(Stats::default());
        let pos_path = cfg.positions_file();
        let loaded = positions::load(&pos_path, cfg.positions.ignore_invalid_yaml)
            .map_err(anyhow::Error::msg)?;
        let mut ledger = Ledger::from_saved(&loaded.saved);
        let names: Vec<String> = cfg
            .clients
            .iter()
            .enumerate()
            .map(|(i, c)| client::client_name(i, &c.value.url))
            .collect();
        ledger.clients.retain(|k, _| names.contains(k));
        for n in &names {
            ledger.clients.entry(n.clone()).or_insert(0);
        }
        ledger.folded = ledger.clients.values().copied().min().unwrap_or(0);
        let spool_dir = cfg.spool_dir();
        let mut spools = Vec::new();
        for n in &names {
            let acked = ledger.clients[n];
            let s = Spool::open(&spool_dir.join(n), cfg.spool_max(), acked, stats.clone())
                .with_context(|| format!("opening spool {}", spool_dir.join(n).display()))?;
            spools.push(Arc::new(s));
        }
        // Where reading resumes: acknowledged positions, then every checkpoint still spooled.
        let mut resume: HashMap<String, Position> = HashMap::new();
        for (k, f) in &ledger.files {
            resume.insert(k.clone(), Position::Offset(f.offset));
        }
        for (k, c) in &ledger.journal {
            resume.insert(k.clone(), Position::Cursor(c.clone()));
        }
        let mut spooled: BTreeMap<u64, Vec<(Arc<str>, Position)>> = BTreeMap::new();
        let mut last_seq = ledger.clients.values().copied().max().unwrap_or(0);
        for s in &spools {
            s.for_each(|r| {
                last_seq = last_seq.max(r.seq);
                if !r.checkpoints.is_empty() {
                    spooled.insert(r.seq, r.checkpoints);
                }
            });
            last_seq = last_seq.max(s.last_seq());
        }
        for (seq, cks) in &spooled {
            for (k, p) in cks {
                resume.insert(k.to_string(), p.clone());
            }
            if *seq > ledger.folded {
                ledger.pending.insert(*seq, cks.clone());
            }
        }
        let checkpointer = Arc::new(Checkpointer::new(ledger, pos_path, cfg.positions_sync()));

        let mut shapes = Vec::new();
        let mut batch_bytes = usize::MAX;
        let mut batch_wait = Duration::from_secs(1);
        for c in &cfg.clients {
            let c = &c.value;
            shapes.push(ClientShape {
                encoding: match c.encoding.as_deref() {
                    Some("json") => Encoding::Json,
                    _ => Encoding::Protobuf,
                },
                external: Labels::from_pairs(c.external_labels.clone().into_iter().collect()),
                tenant: c.tenant_id.clone().filter(|t| !t.is_empty()),
            });
            batch_bytes = batch_bytes.min(c.batchsize.unwrap_or(1 << 20) as usize);
            if let Some(w) = c
                .batchwait
                .as_deref()
                .and_then(|w| crate::cli::parse_duration(w).ok())
            {
                batch_wait = w;
            }
        }
        if batch_bytes == usize::MAX {
            batch_bytes = 1 << 20;
        }

        let stop_reader = Arc::new(AtomicBool::new(false));
        let stop_senders = Arc::new(AtomicBool::new(false));
        let mut senders = Vec::new();
        for (i, c) in cfg.clients.iter().enumerate() {
            let cl = client::Client::new(
                names[i].clone(),
                &c.value,
                spools[i].clone(),
                stats.clone(),
                checkpointer.clone(),
                stop_senders.clone(),
            )
            .with_context(|| format!("{}: clients[{i}] ({})", cfg.file, c.value.url))?;
            senders.push(
                std::thread::Builder::new()
                    .name(format!("loki-{i}"))
                    .spawn(move || cl.run(Duration::from_secs(5)))?,
            );
        }

        let mut pipelines = Vec::new();
        let mut targets = Vec::new();
        let mut relabels = Vec::new();
        let mut journal_srcs = Vec::new();
        for (job, sc) in cfg.scrape_configs.iter().enumerate() {
            let sc = &sc.value;
            pipelines.push(
                Pipeline::new(&sc.job_name, &sc.pipeline_stages, &cfg.file, &stats)
                    .map_err(|e| anyhow::anyhow!("{e}"))?,
            );
            let rules: Vec<relabel::Rule> = sc
                .relabel_configs
                .iter()
                .map(|r| relabel::Rule::new(&r.value).map_err(anyhow::Error::msg))
                .collect::<anyhow::Result<_>>()?;
            for st in &sc.static_configs {
                let labels = Labels::from_pairs(st.labels.clone().into_iter().collect());
                let Some(labels) = relabel::apply(&rules, labels) else {
                    continue;
                };
                let Some(path) = labels.get("__path__").map(str::to_string) else {
                    tracing::warn!(job = %sc.job_name, "static_configs entry without __path__; ignored");
                    continue;
                };
                let glob = PathGlob::new(&path).map_err(anyhow::Error::msg)?;
                let exclude = match labels.get("__path_exclude__") {
                    Some(x) if !x.is_empty() => Some(PathGlob::new(x).map_err(anyhow::Error::msg)?),
                    _ => None,
                };
                targets.push(FileTarget {
                    job,
                    glob,
                    exclude,
                    labels: labels.without_internal(),
                });
            }
            if let Some(j) = &sc.journal {
                let key: Arc<str> = Arc::from(format!("journal:{}", sc.job_name));
                let cursor = match resume.get(&*key) {
                    Some(Position::Cursor(c)) => Some(c.clone()),
                    _ => None,
                };
                journal_srcs.push(JournalSource {
                    job,
                    key,
                    path: j.path.clone(),
                    matches: j.matches.clone(),
                    max_age: j
                        .max_age
                        .as_deref()
                        .and_then(|d| crate::cli::parse_duration(d).ok())
                        .unwrap_or(Duration::from_secs(7 * 3600)),
                    json: j.json,
                    labels: Labels::from_pairs(j.labels.clone().into_iter().collect()),
                    cursor,
                });
            }
            relabels.push(rules);
        }

        let (wake_tx, wake_rx) = sync_channel::<Wake>(16 * 1024);
        // Journal entries wait in a bounded channel: while the spool is full the reader stops
        // taking them, journalctl's pipe fills, and the journal itself is the buffer.
        let (journal_tx, journal_rx) = sync_channel::<(usize, Entry)>(4096);
        let mut journals = Vec::new();
        for src in journal_srcs {
            let jtx = journal_tx.clone();
            let wtx = wake_tx.clone();
            let stop = stop_reader.clone();
            let st = stats.clone();
            journals.push(
                std::thread::Builder::new()
                    .name("journal".into())
                    .spawn(move || {
                        src.run(
                            jtx,
                            move || {
                                let _ = wtx.try_send(Wake::Tick);
                            },
                            stop,
                            st,
                        )
                    })?,
            );
        }
        drop(journal_tx);

        raise_fd_limit();
        let discovery = cfg.discovery_period();
        let mut reader = Reader {
            targets,
            pipelines,
            relabels,
            tailers: Vec::new(),
            by_inode: HashMap::new(),
            by_path: HashMap::new(),
            finished: HashSet::new(),
            resume,
            promtail: loaded.promtail,
            generations: Vec::new(),
            generations_seen: 0,
            stream_counts: HashMap::new(),
            shared_streams: false,
            deferred: HashMap::new(),
            batcher: Batcher::new(batch_bytes, batch_wait, last_seq + 1),
            shapes,
            spools,
            checkpointer: checkpointer.clone(),
            stats: stats.clone(),
            stop: stop_reader.clone(),
            wake_rx,
            journal_rx,
            unspooled: std::collections::VecDeque::new(),
            blocked: false,
            watcher: None,
            watch_failed: false,
            discovery_period: discovery,
            last_discovery: None,
            rediscover: true,
            clock: Clock { last: 0 },
            max_line: cfg.max_line(),
            buf: Vec::with_capacity(READ_CHUNK),
            out: Vec::new(),
        };
        reader.watch(wake_tx);
        let handle = std::thread::Builder::new()
            .name("logs-reader".into())
            .spawn(move || reader.run())?;
        Ok(Shipper {
            stats,
            stop_reader,
            stop_senders,
            reader: Some(handle),
            senders,
            journals,
            checkpointer,
        })
    }

    pub fn families(&self) -> Vec<Family> {
        self.stats.families()
    }

    /// Stops reading (what was read goes to the spool), gives senders a few seconds to push
    /// what they can, then saves positions.
    pub fn shutdown(mut self) {
        self.stop_reader.store(true, Ordering::Relaxed);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        self.stop_senders.store(true, Ordering::Relaxed);
        for s in self.senders.drain(..) {
            let _ = s.join();
        }
        for j in self.journals.drain(..) {
            let _ = j.join();
        }
        self.checkpointer.persist(true);
    }
}

fn raise_fd_limit() {
    // Every tailed file keeps a descriptor; the soft limit is often 1024.
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}

/// A copytruncate generation: the fingerprint and offset of the content before the truncation.
struct Generation {
    fp: String,
    offset: u64,
    labels: Labels,
    generation: u64,
    at: Instant,
}

struct Reader {
    targets: Vec<FileTarget>,
    pipelines: Vec<Pipeline>,
    relabels: Vec<Vec<relabel::Rule>>,
    tailers: Vec<Tailer>,
    by_inode: HashMap<(u64, u64), usize>,
    by_path: HashMap<PathBuf, usize>,
    /// Copies drained after a copytruncate: not to be read again.
    finished: HashSet<(u64, u64)>,
    resume: HashMap<String, Position>,
    promtail: HashMap<String, u64>,
    generations: Vec<Generation>,
    generations_seen: u64,
    /// Tailers per stream: more than one means rotated generations to read in order.
    stream_counts: HashMap<Arc<str>, usize>,
    shared_streams: bool,
    deferred: HashMap<(u64, u64), Instant>,
    batcher: Batcher,
    shapes: Vec<ClientShape>,
    spools: Vec<Arc<Spool>>,
    checkpointer: Arc<Checkpointer>,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
    wake_rx: Receiver<Wake>,
    journal_rx: Receiver<(usize, Entry)>,
    /// Encoded batches waiting for room in a full spool (reading is paused meanwhile).
    unspooled: std::collections::VecDeque<(usize, spool::Record)>,
    blocked: bool,
    watcher: Option<notify::RecommendedWatcher>,
    watch_failed: bool,
    discovery_period: Duration,
    last_discovery: Option<Instant>,
    rediscover: bool,
    clock: Clock,
    /// `limits_config.max_line_size` and `max_line_size_truncate`.
    max_line: (usize, bool),
    buf: Vec<u8>,
    out: Vec<Entry>,
}

impl Reader {
    /// Directory watches make a new file show up at once; polling discovery stays as fallback.
    fn watch(&mut self, tx: SyncSender<Wake>) {
        let w = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
            if let Ok(ev) = ev {
                let _ = tx.try_send(Wake::Fs(ev));
            }
        });
        let mut w = match w {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "file watching unavailable; discovering files by polling every second");
                self.watch_failed = true;
                return;
            }
        };
        let mut dirs: Vec<(PathBuf, bool)> = self
            .targets
            .iter()
            .map(|t| (t.glob.base.clone(), t.glob.recursive || t.glob.depth > 1))
            .collect();
        dirs.sort();
        dirs.dedup();
        for (d, rec) in dirs {
            let mode = if rec {
                notify::RecursiveMode::Recursive
            } else {
                notify::RecursiveMode::NonRecursive
            };
            if let Err(e) = w.watch(&d, mode) {
                tracing::debug!(dir = %d.display(), error = %e, "cannot watch; polling it");
                self.watch_failed = true;
            }
        }
        self.watcher = Some(w);
    }

    fn run(mut self) {
        let mut first = true;
        loop {
            let stopping = self.stop.load(Ordering::Relaxed);
            let now = Instant::now();
            let period = if self.watch_failed {
                self.discovery_period.min(Duration::from_secs(1))
            } else {
                self.discovery_period
            };
            if self.rediscover
                || self
                    .last_discovery
                    .is_none_or(|l| now.duration_since(l) >= period)
            {
                self.discover(first);
                first = false;
            }
            self.try_spool();
            let blocked = !self.unspooled.is_empty();
            if blocked && !self.blocked {
                self.stats.backpressure.fetch_add(1, Ordering::Relaxed);
            }
            self.blocked = blocked;
            let mut progress = 0usize;
            // A rotated generation still being read or written holds back the newer file of
            // the same stream, so the stream's lines stay in order.
            let mut busy: HashMap<Arc<str>, u64> = HashMap::new();
            for t in self.tailers.iter_mut().filter(|_| self.shared_streams) {
                if self.stream_counts.get(&t.rendered).copied().unwrap_or(0) < 2 {
                    continue;
                }
                t.refresh_size();
                if !(t.at_eof() && t.last_data.elapsed() >= GENERATION_QUIET)
                    || t.fp.is_empty() && t.size > 0
                {
                    let g = busy.entry(t.rendered.clone()).or_insert(t.generation);
                    *g = (*g).min(t.generation);
                }
            }
            for i in 0..self.tailers.len() {
                let t = &self.tailers[i];
                let held = busy.get(&t.rendered).is_some_and(|g| *g < t.generation);
                if Instant::now() < t.next_poll || stopping {
                    continue;
                }
                if held || self.blocked {
                    self.watch_idle(i);
                    continue;
                }
                progress += self.read_tailer(i);
                if self.batcher.due(Instant::now()) {
                    self.flush();
                }
            }
            if !self.blocked && !stopping {
                progress += self.drain_journal();
            }
            self.drain_wakes(Duration::ZERO);
            let now = Instant::now();
            for p in 0..self.pipelines.len() {
                let mut out = std::mem::take(&mut self.out);
                self.pipelines[p].flush_due(now, stopping, &mut out);
                for e in out.drain(..) {
                    self.push_entry(e);
                }
                self.out = out;
            }
            if stopping || self.batcher.due(now) {
                self.flush();
            }
            self.close_orphans();
            if stopping {
                // What does not fit is not lost: it was never acknowledged, so it is read
                // again at the next start.
                self.try_spool();
                break;
            }
            if progress == 0 || self.blocked {
                let mut wait = Duration::from_millis(if self.blocked { 50 } else { 250 });
                if let Some(d) = self.batcher.deadline() {
                    wait = wait.min(d.saturating_duration_since(now));
                }
                if let Some(n) = self.tailers.iter().map(|t| t.next_poll).min() {
                    wait = wait.min(n.saturating_duration_since(now));
                }
                self.drain_wakes(wait.max(Duration::from_millis(5)));
            }
        }
    }

    /// A file not read right now (held behind its older generation, or the spool is full):
    /// still identified as soon as it has a first line, and watched for truncation, so that
    /// nothing can be lost while it waits.
    fn watch_idle(&mut self, i: usize) {
        self.tailers[i].next_poll = Instant::now() + Duration::from_millis(250);
        if self.tailers[i].fp.is_empty() {
            if let Some(fp) = filesrc::fingerprint(&self.tailers[i].file) {
                let t = &mut self.tailers[i];
                t.restart(fp);
                let (key, st) = (t.key.to_string(), file_state(t));
                self.checkpointer.lock().register_file(&key, st);
            }
        } else if self.tailers[i].check_truncated() {
            self.truncated(i);
        }
    }

    fn drain_journal(&mut self) -> usize {
        let mut n = 0;
        while n < 10_000 {
            let Ok((job, e)) = self.journal_rx.try_recv() else {
                break;
            };
            n += 1;
            self.stats.lines_read.fetch_add(1, Ordering::Relaxed);
            self.stats
                .bytes_read
                .fetch_add(e.line.len() as u64, Ordering::Relaxed);
            let key = e.checkpoint.key.clone();
            let pos = e.checkpoint.position.clone();
            let Some(labels) = relabel::apply(&self.relabels[job], e.labels.clone()) else {
                self.batcher.progress(&key, pos);
                continue;
            };
            let mut e = e;
            e.labels = labels;
            self.run_pipeline(job, e, key, pos);
            if self.batcher.due(Instant::now()) {
                self.flush();
                if !self.unspooled.is_empty() {
                    break;
                }
            }
        }
        n
    }

    /// Handles queued file events; waits up to `wait` for the first.
    fn drain_wakes(&mut self, wait: Duration) -> usize {
        let mut n = 0;
        let mut first = if wait.is_zero() {
            self.wake_rx.try_recv().ok()
        } else {
            self.wake_rx.recv_timeout(wait).ok()
        };
        while let Some(w) = first.take().or_else(|| self.wake_rx.try_recv().ok()) {
            match w {
                Wake::Fs(ev) => {
                    use notify::EventKind;
                    match ev.kind {
                        EventKind::Modify(notify::event::ModifyKind::Data(_))
                        | EventKind::Modify(notify::event::ModifyKind::Any) => {
                            for p in &ev.paths {
                                if let Some(&i) = self.by_path.get(p) {
                                    self.tailers[i].next_poll = Instant::now();
                                } else if self.targets.iter().any(|t| {
                                    t.glob.is_match(p)
                                        && !t.exclude.as_ref().is_some_and(|x| x.is_match(p))
                                }) {
                                    self.rediscover = true;
                                }
                            }
                        }
                        EventKind::Access(_) => {}
                        _ => self.rediscover = true,
                    }
                }
                Wake::Tick => n += 1,
            }
            if n >= 10_000 {
                break;
            }
        }
        n
    }

    fn run_pipeline(&mut self, job: usize, e: Entry, key: Arc<str>, pos: Position) {
        let mut out = std::mem::take(&mut self.out);
        self.pipelines[job].process(e, &mut out);
        if out.is_empty() && !self.pipelines[job].has_pending() {
            self.batcher.progress(&key, pos);
        }
        for e in out.drain(..) {
            self.push_entry(e);
        }
        self.out = out;
    }

    /// An entry out of the stages into the batch: internal labels go, `__tenant_id__` picks
    /// the tenant.
    fn push_entry(&mut self, mut e: Entry) {
        if let Some(t) = e.labels.remove("__tenant_id__") {
            e.tenant = Some(t);
        }
        let (max_line, truncate) = self.max_line;
        if max_line > 0 && e.line.len() > max_line {
            if !truncate {
                self.stats
                    .drop_lines("line_too_long", 1, e.line.len() as u64);
                let Checkpoint { key, position } = e.checkpoint;
                if !key.is_empty() {
                    self.batcher.progress(&key, position);
                }
                return;
            }
            let mut cut = max_line;
            while !e.line.is_char_boundary(cut) {
                cut -= 1;
            }
            e.line.truncate(cut);
        }
        let labels = e.labels.without_internal();
        let rendered: Arc<str> = Arc::from(labels.render());
        self.batcher.push(
            e.tenant.as_deref(),
            &labels,
            &rendered,
            e.ts,
            e.line.as_bytes(),
            &e.metadata,
        );
        let Checkpoint { key, position } = e.checkpoint;
        if !key.is_empty() {
            self.batcher.progress(&key, position);
        }
    }

    /// Reads one chunk of a file; returns the number of lines.
    fn read_tailer(&mut self, i: usize) -> usize {
        if self.tailers[i].fp.is_empty() {
            // Truncated and not yet rewritten far enough to be identified.
            match filesrc::fingerprint(&self.tailers[i].file) {
                Some(fp) => {
                    let t = &mut self.tailers[i];
                    t.restart(fp);
                    let (key, st) = (t.key.to_string(), file_state(t));
                    self.checkpointer.lock().register_file(&key, st);
                }
                None => {
                    self.tailers[i].next_poll = Instant::now() + Duration::from_millis(250);
                    return 0;
                }
            }
        }
        let t = &mut self.tailers[i];
        let key = t.key.clone();
        let labels = t.labels.clone();
        let rendered = t.rendered.clone();
        let job = t.job;
        let fast = self.pipelines[job].is_empty();
        let mut buf = std::mem::take(&mut self.buf);
        let mut lines = 0usize;
        let mut bytes = 0usize;
        let mut last_end = None;
        let clock = &mut self.clock;
        let batcher = &mut self.batcher;
        let pipeline = &mut self.pipelines[job];
        let out = &mut self.out;
        let mut slow: Vec<Entry> = Vec::new();
        let (max_line, truncate) = self.max_line;
        let stats = &self.stats;
        let result = t.read(&mut buf, READ_CHUNK, |line, end| {
            lines += 1;
            bytes += line.len();
            let line = if max_line > 0 && line.len() > max_line {
                if !truncate {
                    stats.drop_lines("line_too_long", 1, line.len() as u64);
                    batcher.progress(&key, Position::Offset(end));
                    return;
                }
                &line[..max_line]
            } else {
                line
            };
            let ts = clock.next();
            let text: std::borrow::Cow<'_, [u8]> = match std::str::from_utf8(line) {
                Ok(_) => std::borrow::Cow::Borrowed(line),
                Err(_) => {
                    std::borrow::Cow::Owned(String::from_utf8_lossy(line).into_owned().into_bytes())
                }
            };
            if fast {
                batcher.push(None, &labels, &rendered, ts, &text, &[]);
                last_end = Some(end);
                return;
            }
            let e = Entry {
                labels: labels.clone(),
                ts,
                line: String::from_utf8_lossy(&text).into_owned(),
                checkpoint: Checkpoint {
                    key: key.clone(),
                    position: Position::Offset(end),
                },
                ..Entry::default()
            };
            pipeline.process(e, out);
            if out.is_empty() && !pipeline.has_pending() {
                batcher.progress(&key, Position::Offset(end));
            }
            slow.append(out);
        });
        self.buf = buf;
        if let Some(end) = last_end {
            self.batcher.progress(&key, Position::Offset(end));
        }
        for e in slow {
            self.push_entry(e);
        }
        self.stats
            .lines_read
            .fetch_add(lines as u64, Ordering::Relaxed);
        self.stats
            .bytes_read
            .fetch_add(bytes as u64, Ordering::Relaxed);
        let t = &self.tailers[i];
        self.stats
            .files
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(Arc::from(t.path.display().to_string()), (t.offset, t.size));
        match result {
            Read::Data(_) | Read::Idle => {}
            Read::Truncated => self.truncated(i),
            Read::Error(e) => {
                tracing::warn!(path = %self.tailers[i].path.display(), error = %e, "read failed");
                self.tailers[i].next_poll = Instant::now() + Duration::from_secs(1);
            }
        }
        lines
    }

    /// copytruncate: finish the old content from the copy, then read the file from the start.
    fn truncated(&mut self, i: usize) {
        let t = &self.tailers[i];
        tracing::info!(path = %t.path.display(), offset = t.offset, "file truncated; reading it again from the start");
        let (fp, off, ino, labels, job, path, old_gen) = (
            t.fp.clone(),
            t.offset,
            t.ino,
            t.labels.clone(),
            t.job,
            t.path.clone(),
            t.generation,
        );
        if let Some((p, f, dev, cino)) = filesrc::find_copy(&path, &fp, off, ino)
            && !self.by_inode.contains_key(&(dev, cino))
        {
            tracing::info!(copy = %p.display(), offset = off, "finishing the truncated content from its copy");
            let mut c = Tailer::open(p, f, dev, cino, fp.clone(), off, labels.clone(), job);
            c.drain_only = true;
            c.generation = old_gen;
            c.orphan_since = Some(Instant::now());
            self.checkpointer
                .lock()
                .register_file(&c.key, file_state(&c));
            self.add_tailer(c);
        } else {
            // The copy may not be visible (yet): discovery can still adopt it.
            self.generations.push(Generation {
                fp,
                offset: off,
                labels,
                generation: old_gen,
                at: Instant::now(),
            });
        }
        let g = self.next_generation();
        let t = &mut self.tailers[i];
        t.generation = g;
        t.fp.clear();
        t.next_poll = Instant::now();
    }

    fn add_tailer(&mut self, mut t: Tailer) {
        if !self.watch_failed && self.watcher.is_some() {
            t.idle_cap = Duration::from_secs(4);
        }
        if t.generation == 0 {
            t.generation = self.next_generation();
        }
        let i = self.tailers.len();
        self.by_inode.insert((t.dev, t.ino), i);
        self.by_path.insert(t.path.clone(), i);
        let n = self.stream_counts.entry(t.rendered.clone()).or_default();
        *n += 1;
        self.shared_streams |= *n > 1;
        self.tailers.push(t);
        self.stats
            .files_active
            .store(self.tailers.len() as u64, Ordering::Relaxed);
    }

    fn next_generation(&mut self) -> u64 {
        self.generations_seen += 1;
        self.generations_seen
    }

    fn reindex(&mut self) {
        self.by_inode.clear();
        self.by_path.clear();
        self.stream_counts.clear();
        for (i, t) in self.tailers.iter().enumerate() {
            self.by_inode.insert((t.dev, t.ino), i);
            self.by_path.insert(t.path.clone(), i);
            *self.stream_counts.entry(t.rendered.clone()).or_default() += 1;
        }
        self.shared_streams = self.stream_counts.values().any(|c| *c > 1);
        self.stats
            .files_active
            .store(self.tailers.len() as u64, Ordering::Relaxed);
    }

    fn close_orphans(&mut self) {
        let mut removed = false;
        let mut k = 0;
        while k < self.tailers.len() {
            let t = &mut self.tailers[k];
            let mut done = t.orphan_since.is_some_and(|o| o.elapsed() >= ROTATE_WAIT)
                && t.last_data.elapsed() >= ROTATE_WAIT
                && !self.pipelines[t.job].has_pending();
            if done {
                // The size seen at the last poll may be old: look again before letting go.
                t.refresh_size();
                done = t.at_eof();
                if !done {
                    t.next_poll = Instant::now();
                }
            }
            if done {
                let t = self.tailers.swap_remove(k);
                tracing::debug!(path = %t.path.display(), "finished a rotated or deleted file");
                if t.drain_only {
                    self.finished.insert((t.dev, t.ino));
                }
                self.stats
                    .files
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(t.path.display().to_string().as_str());
                removed = true;
            } else {
                k += 1;
            }
        }
        if removed {
            self.reindex();
        }
    }

    fn discover(&mut self, first: bool) {
        self.rediscover = false;
        self.last_discovery = Some(Instant::now());
        self.generations
            .retain(|g| g.at.elapsed() < Duration::from_secs(60));
        let mut seen: HashSet<(u64, u64)> = HashSet::new();
        let mut found = Vec::new();
        for ti in 0..self.targets.len() {
            found.clear();
            self.targets[ti].glob.expand(&mut found);
            for path in found.drain(..) {
                let target = &self.targets[ti];
                if target.exclude.as_ref().is_some_and(|x| x.is_match(&path))
                    || filesrc::is_compressed(&path)
                {
                    continue;
                }
                let Ok(meta) = std::fs::metadata(&path) else {
                    continue;
                };
                let id = (meta.dev(), meta.ino());
                seen.insert(id);
                if let Some(&i) = self.by_inode.get(&id) {
                    let t = &mut self.tailers[i];
                    if !t.drain_only {
                        t.orphan_since = None;
                    }
                    if t.path != path {
                        self.by_path.remove(&t.path);
                        self.stats
                            .files
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .remove(t.path.display().to_string().as_str());
                        t.path = path.clone();
                        self.by_path.insert(path.clone(), i);
                        let key = t.key.to_string();
                        self.checkpointer
                            .lock()
                            .set_path(&key, &path.display().to_string());
                    }
                    continue;
                }
                if self.finished.contains(&id) {
                    continue;
                }
                let job = target.job;
                let mut labels = target.labels.clone();
                self.open_new(path, meta, job, &mut labels);
            }
        }
        for t in &mut self.tailers {
            if !seen.contains(&(t.dev, t.ino)) && t.orphan_since.is_none() {
                t.orphan_since = Some(Instant::now());
            }
        }
        if first {
            self.resume_orphans();
        } else {
            let active: HashSet<String> = self.tailers.iter().map(|t| t.key.to_string()).collect();
            self.checkpointer
                .lock()
                .retain_files(|k, f| active.contains(k) || seen.contains(&(f.dev, f.inode)));
        }
    }

    fn open_new(
        &mut self,
        path: PathBuf,
        meta: std::fs::Metadata,
        job: usize,
        labels: &mut Labels,
    ) {
        let id = (meta.dev(), meta.ino());
        let Ok(file) = File::open(&path) else { return };
        let path_s = path.display().to_string();
        let Some(fp) = filesrc::fingerprint(&file) else {
            // No complete first line yet: hold the file open (a rename cannot take it away)
            // and identify it once it has one; nothing of it was read before.
            if labels.get("filename").is_none() {
                labels.set("filename", &path_s);
            }
            let t = Tailer::open(
                path,
                file,
                id.0,
                id.1,
                String::new(),
                0,
                labels.clone(),
                job,
            );
            self.add_tailer(t);
            return;
        };
        let key = filesrc::source_key(id.0, id.1, &fp);
        let len = meta.len();
        let mut offset = 0;
        let mut adopted = 0;
        if let Some(pos) = self.resume.remove(&key) {
            if let Position::Offset(o) = pos {
                if o <= len {
                    offset = o;
                } else {
                    tracing::warn!(path = %path_s, saved = o, size = len, "file is shorter than its saved position; reading it from the start");
                }
            }
        } else if let Some(o) = self.promtail.remove(&path_s) {
            if o <= len {
                offset = o;
            }
        } else if let Some(g) = self
            .generations
            .iter()
            .position(|g| g.fp == fp && g.offset <= len)
        {
            // The copy copytruncate left: continue where the truncated file was.
            let g = self.generations.swap_remove(g);
            offset = g.offset;
            *labels = g.labels;
            adopted = g.generation;
        } else if self
            .tailers
            .iter()
            .any(|t| t.fp == fp && t.orphan_since.is_none())
        {
            // Same first line as a file being tailed: most likely a copy in progress. Wait a
            // little for the original's truncation before reading it as a new file.
            let since = *self.deferred.entry(id).or_insert_with(Instant::now);
            if since.elapsed() < Duration::from_secs(10) {
                return;
            }
        }
        self.deferred.remove(&id);
        if labels.get("filename").is_none() {
            labels.set("filename", &path_s);
        }
        let mut t = Tailer::open(path, file, id.0, id.1, fp, offset, labels.clone(), job);
        t.generation = adopted;
        self.checkpointer
            .lock()
            .register_file(&t.key, file_state(&t));
        self.add_tailer(t);
    }

    /// At start: files the positions or the spool know but discovery did not find (renamed
    /// out of the glob while the agent was down or behind) are looked for by inode next to
    /// where they were, and read to their end.
    fn resume_orphans(&mut self) {
        let known: Vec<(String, FileState)> = {
            let l = self.checkpointer.lock();
            self.resume
                .keys()
                .filter_map(|k| l.files.get(k).map(|f| (k.clone(), f.clone())))
                .collect()
        };
        for (key, st) in known {
            let Some(Position::Offset(off)) = self.resume.get(&key).cloned() else {
                continue;
            };
            let Some(dir) = Path::new(&st.path).parent() else {
                continue;
            };
            let Ok(rd) = std::fs::read_dir(dir) else {
                continue;
            };
            for e in rd.flatten() {
                let Ok(m) = e.metadata() else { continue };
                if m.dev() != st.dev || m.ino() != st.inode || m.len() < off {
                    continue;
                }
                let Ok(f) = File::open(e.path()) else {
                    continue;
                };
                if filesrc::fingerprint(&f).as_deref() != Some(st.fingerprint.as_str()) {
                    continue;
                }
                let job = self
                    .targets
                    .iter()
                    .find(|t| t.glob.is_match(Path::new(&st.path)))
                    .map(|t| (t.job, t.labels.clone()));
                let Some((job, mut labels)) = job else { break };
                labels.set("filename", &st.path);
                tracing::info!(path = %e.path().display(), was = %st.path, offset = off, "resuming a file renamed while the agent was away");
                let mut t = Tailer::open(
                    e.path(),
                    f,
                    st.dev,
                    st.inode,
                    st.fingerprint.clone(),
                    off,
                    labels,
                    job,
                );
                t.orphan_since = Some(Instant::now());
                self.resume.remove(&key);
                self.add_tailer(t);
                break;
            }
        }
    }

    /// Encodes what the batcher holds and queues it for the spools.
    fn flush(&mut self) {
        let Some((records, checkpoints, last)) = self.batcher.flush(&self.shapes) else {
            return;
        };
        if !checkpoints.is_empty() {
            self.checkpointer.lock().pending.insert(last, checkpoints);
        }
        for (c, recs) in records.into_iter().enumerate() {
            for r in recs {
                self.unspooled.push_back((c, r));
            }
        }
        self.try_spool();
    }

    /// Writes queued batches while their spool has room. A batch is never skipped: its
    /// positions would move past lines that are nowhere else.
    fn try_spool(&mut self) {
        while let Some((c, r)) = self.unspooled.front() {
            let spool = &self.spools[*c];
            if !spool.has_room(r.body.len() as u64 + 64) {
                return;
            }
            if let Err(e) = spool.append(r) {
                tracing::error!(error = %e, "cannot write the spool; reading pauses");
                return;
            }
            self.unspooled.pop_front();
        }
    }
}

fn file_state(t: &Tailer) -> FileState {
    FileState {
        path: t
            .labels
            .get("filename")
            .map_or_else(|| t.path.display().to_string(), str::to_string),
        dev: t.dev,
        inode: t.ino,
        fingerprint: t.fp.clone(),
        offset: t.offset,
    }
}
