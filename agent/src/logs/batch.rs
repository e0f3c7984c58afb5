//! Batching: entries grouped per tenant and per stream until `batchsize` bytes or `batchwait`,
//! then encoded once per client (its external labels, tenant and encoding) into spool records.
//! Line bytes go into one arena per batch, so an entry costs no allocation of its own.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::entry::{Labels, Position};
use super::push::{self, EntryData, StreamData};
use super::spool::{Encoding, Record};

/// What a client needs to have a batch encoded its way.
#[derive(Debug, Clone)]
pub struct ClientShape {
    pub encoding: Encoding,
    pub external: Labels,
    pub tenant: Option<String>,
}

struct Stream {
    labels: Labels,
    rendered: Arc<str>,
    /// (timestamp, arena start, length, metadata index or u32::MAX)
    entries: Vec<(i64, u32, u32, u32)>,
}

#[derive(Default)]
struct Batch {
    streams: Vec<Stream>,
    index: HashMap<Arc<str>, usize>,
    arena: Vec<u8>,
    metas: Vec<Vec<(String, String)>>,
    bytes: usize,
    lines: u32,
}

/// Records per client, the checkpoints they carry, and the last sequence number used.
pub type Flushed = (Vec<Vec<Record>>, Vec<(Arc<str>, Position)>, u64);

pub struct Batcher {
    batches: Vec<(Option<String>, Batch)>,
    checkpoints: Vec<(Arc<str>, Position)>,
    ck_index: HashMap<Arc<str>, usize>,
    started: Option<Instant>,
    pub max_bytes: usize,
    pub wait: Duration,
    next_seq: u64,
}

impl Batcher {
    pub fn new(max_bytes: usize, wait: Duration, next_seq: u64) -> Batcher {
        Batcher {
            batches: Vec::new(),
            checkpoints: Vec::new(),
            ck_index: HashMap::new(),
            started: None,
            max_bytes: max_bytes.max(1),
            wait,
            next_seq,
        }
    }

    fn batch(&mut self, tenant: Option<&str>) -> &mut Batch {
        let pos = match self
            .batches
            .iter()
            .position(|(t, _)| t.as_deref() == tenant)
        {
            Some(p) => p,
            None => {
                self.batches
                    .push((tenant.map(str::to_string), Batch::default()));
                self.batches.len() - 1
            }
        };
        &mut self.batches[pos].1
    }

    #[allow(clippy::too_many_arguments)]
    pub fn push(
        &mut self,
        tenant: Option<&str>,
        labels: &Labels,
        rendered: &Arc<str>,
        ts: i64,
        line: &[u8],
        meta: &[(String, String)],
    ) {
        self.started.get_or_insert_with(Instant::now);
        let b = self.batch(tenant);
        let idx = match b.index.get(rendered) {
            Some(i) => *i,
            None => {
                b.streams.push(Stream {
                    labels: labels.clone(),
                    rendered: rendered.clone(),
                    entries: Vec::new(),
                });
                b.index.insert(rendered.clone(), b.streams.len() - 1);
                b.streams.len() - 1
            }
        };
        let start = b.arena.len() as u32;
        b.arena.extend_from_slice(line);
        let m = if meta.is_empty() {
            u32::MAX
        } else {
            b.metas.push(meta.to_vec());
            (b.metas.len() - 1) as u32
        };
        b.streams[idx]
            .entries
            .push((ts, start, line.len() as u32, m));
        b.bytes += line.len() + meta.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
        b.lines += 1;
    }

    /// Notes that a source has been consumed up to `pos` (its entries so far are in the batch).
    pub fn progress(&mut self, key: &Arc<str>, pos: Position) {
        match self.ck_index.get(key) {
            Some(i) => self.checkpoints[*i].1 = pos,
            None => {
                self.ck_index.insert(key.clone(), self.checkpoints.len());
                self.checkpoints.push((key.clone(), pos));
            }
        }
        self.started.get_or_insert_with(Instant::now);
    }

    pub fn bytes(&self) -> usize {
        self.batches.iter().map(|(_, b)| b.bytes).sum()
    }

    pub fn due(&self, now: Instant) -> bool {
        self.bytes() >= self.max_bytes
            || self
                .started
                .is_some_and(|s| now.duration_since(s) >= self.wait)
    }

    /// When the current batch must go even if no more lines come.
    pub fn deadline(&self) -> Option<Instant> {
        self.started.map(|s| s + self.wait)
    }

    /// Encodes everything held: per tenant batch, one record per client (same sequence number
    /// across clients). The checkpoints ride on the last record so they commit only when all of
    /// the flush is acknowledged. Returns (records per client, checkpoints, last seq).
    pub fn flush(&mut self, clients: &[ClientShape]) -> Option<Flushed> {
        self.started?;
        self.started = None;
        let batches = std::mem::take(&mut self.batches);
        let checkpoints = std::mem::take(&mut self.checkpoints);
        self.ck_index.clear();
        let mut per_client: Vec<Vec<Record>> = vec![Vec::new(); clients.len()];
        let nonempty: Vec<_> = batches.into_iter().filter(|(_, b)| b.lines > 0).collect();
        let count = nonempty.len().max(1);
        let mut last = 0;
        for i in 0..count {
            let seq = self.next_seq;
            self.next_seq += 1;
            last = seq;
            let cks = if i + 1 == count {
                checkpoints.clone()
            } else {
                Vec::new()
            };
            for (c, shape) in clients.iter().enumerate() {
                let rec = match nonempty.get(i) {
                    Some((tenant, b)) => encode(b, shape, tenant.clone(), seq, cks.clone()),
                    None => Record {
                        seq,
                        encoding: shape.encoding,
                        tenant: None,
                        lines: 0,
                        bytes: 0,
                        checkpoints: cks.clone(),
                        body: bytes::Bytes::new(),
                    },
                };
                per_client[c].push(rec);
            }
        }
        Some((per_client, checkpoints, last))
    }
}

fn merged(stream: &Stream, shape: &ClientShape) -> String {
    if shape.external.0.is_empty() {
        return stream.rendered.to_string();
    }
    let mut l = shape.external.clone();
    for (k, v) in &stream.labels.0 {
        l.set(k, v);
    }
    l.render()
}

fn encode(
    b: &Batch,
    shape: &ClientShape,
    tenant: Option<String>,
    seq: u64,
    checkpoints: Vec<(Arc<str>, Position)>,
) -> Record {
    static NO_META: Vec<(String, String)> = Vec::new();
    let meta = |m: u32| b.metas.get(m as usize).unwrap_or(&NO_META);
    let body = match shape.encoding {
        Encoding::Protobuf => {
            // Sizes first, so every entry is written once, straight into the request.
            let mut raw = Vec::with_capacity(b.arena.len() + b.lines as usize * 24 + 256);
            for s in &b.streams {
                let line = |start: u32, len: u32| &b.arena[start as usize..(start + len) as usize];
                let entries_len: usize = s
                    .entries
                    .iter()
                    .map(|&(ts, start, len, m)| {
                        push::entry_field_len(ts, line(start, len), meta(m))
                    })
                    .sum();
                push::put_stream_header(&mut raw, &merged(s, shape), entries_len);
                for &(ts, start, len, m) in &s.entries {
                    push::put_entry(&mut raw, ts, line(start, len), meta(m));
                }
            }
            push::snappy(&raw)
        }
        Encoding::Json => {
            let streams: Vec<StreamData> = b
                .streams
                .iter()
                .map(|s| StreamData {
                    labels: merged(s, shape),
                    entries: s
                        .entries
                        .iter()
                        .map(|&(ts, start, len, m)| EntryData {
                            ts,
                            line: String::from_utf8_lossy(
                                &b.arena[start as usize..(start + len) as usize],
                            )
                            .into_owned(),
                            metadata: meta(m).clone(),
                        })
                        .collect(),
                })
                .collect();
            push::json(&streams)
        }
    };
    Record {
        seq,
        encoding: shape.encoding,
        tenant: tenant.or_else(|| shape.tenant.clone()),
        lines: b.lines,
        bytes: b.bytes as u64,
        checkpoints,
        body: body.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_record_per_tenant_and_client_with_external_labels() {
        let mut b = Batcher::new(1 << 20, Duration::from_secs(1), 1);
        let l = Labels::from_pairs(vec![("job".into(), "a".into())]);
        let r: Arc<str> = Arc::from(l.render());
        b.push(None, &l, &r, 10, b"x", &[]);
        b.push(Some("t2"), &l, &r, 11, b"y", &[]);
        b.progress(&Arc::from("file:1"), Position::Offset(4));
        let shapes = [
            ClientShape {
                encoding: Encoding::Protobuf,
                external: Labels::default(),
                tenant: Some("t1".into()),
            },
            ClientShape {
                encoding: Encoding::Json,
                external: Labels::from_pairs(vec![
                    ("host".into(), "h".into()),
                    ("job".into(), "ext".into()),
                ]),
                tenant: None,
            },
        ];
        let (recs, cks, last) = b.flush(&shapes).expect("flush");
        assert_eq!(last, 2);
        assert_eq!(cks.len(), 1);
        assert_eq!(recs[0].len(), 2);
        assert_eq!(recs[0][0].tenant.as_deref(), Some("t1"));
        assert_eq!(recs[0][1].tenant.as_deref(), Some("t2"));
        assert!(recs[0][0].checkpoints.is_empty() && recs[0][1].checkpoints.len() == 1);
        let s = push::decode(&recs[1][0].body, Encoding::Json).expect("json");
        assert_eq!(s[0].labels, r#"{host="h", job="a"}"#);
        assert!(b.flush(&shapes).is_none());
    }
}
