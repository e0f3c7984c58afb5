//! Loki's push request: `logproto.PushRequest` encoded by hand (three small messages; no
//! generated code) and compressed with raw snappy, or the JSON form. Decoding is here too, for
//! splitting a rejected request to isolate the entries Loki refuses.

use std::fmt::Write as _;

use super::spool::Encoding;

/// One stream of a request: its label selector text and its entries.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamData {
    pub labels: String,
    pub entries: Vec<EntryData>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct EntryData {
    pub ts: i64,
    pub line: String,
    pub metadata: Vec<(String, String)>,
}

fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, field: u8, b: &[u8]) {
    out.push((field << 3) | 2);
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn ts_parts(ts: i64) -> (i64, i32) {
    (
        ts.div_euclid(1_000_000_000),
        ts.rem_euclid(1_000_000_000) as i32,
    )
}

fn ts_len(ts: i64) -> usize {
    let (s, n) = ts_parts(ts);
    (if s != 0 { 1 + varint_len(s as u64) } else { 0 })
        + (if n != 0 { 1 + varint_len(n as u64) } else { 0 })
}

fn pair_len(n: &str, v: &str) -> usize {
    field_len(n.len()) + field_len(v.len())
}

fn field_len(n: usize) -> usize {
    1 + varint_len(n as u64) + n
}

/// The protobuf size of one entry message (without its own tag and length).
pub fn entry_len(ts: i64, line: &[u8], meta: &[(String, String)]) -> usize {
    let t = ts_len(ts);
    1 + varint_len(t as u64)
        + t
        + field_len(line.len())
        + meta
            .iter()
            .map(|(n, v)| field_len(pair_len(n, v)))
            .sum::<usize>()
}

/// Appends one `EntryAdapter` (tag, length and body) as field 2 of a stream.
pub fn put_entry(out: &mut Vec<u8>, ts: i64, line: &[u8], meta: &[(String, String)]) {
    out.push((2 << 3) | 2);
    put_varint(out, entry_len(ts, line, meta) as u64);
    let (s, n) = ts_parts(ts);
    out.push((1 << 3) | 2);
    put_varint(out, ts_len(ts) as u64);
    if s != 0 {
        out.push(1 << 3);
        put_varint(out, s as u64);
    }
    if n != 0 {
        out.push(2 << 3);
        put_varint(out, n as u64);
    }
    put_bytes(out, 2, line);
    for (k, v) in meta {
        out.push((3 << 3) | 2);
        put_varint(out, pair_len(k, v) as u64);
        put_bytes(out, 1, k.as_bytes());
        put_bytes(out, 2, v.as_bytes());
    }
}

/// Appends one `StreamAdapter` as field 1 of the request, around already encoded entries.
pub fn put_stream(out: &mut Vec<u8>, labels: &str, entries: &[u8]) {
    put_stream_header(out, labels, entries.len());
    out.extend_from_slice(entries);
}

/// A stream's tag, length and labels; `entries_len` bytes of entries must follow.
pub fn put_stream_header(out: &mut Vec<u8>, labels: &str, entries_len: usize) {
    out.push((1 << 3) | 2);
    put_varint(out, (field_len(labels.len()) + entries_len) as u64);
    put_bytes(out, 1, labels.as_bytes());
}

/// What `put_entry` appends for this entry (tag and length included).
pub fn entry_field_len(ts: i64, line: &[u8], meta: &[(String, String)]) -> usize {
    field_len(entry_len(ts, line, meta))
}

pub fn snappy(raw: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(raw)
        .unwrap_or_default()
}

/// JSON body: `{"streams":[{"stream":{…},"values":[["ns","line",{meta}]]}]}`.
pub fn json(streams: &[StreamData]) -> Vec<u8> {
    let mut out = String::with_capacity(4096);
    out.push_str("{\"streams\":[");
    for (i, s) in streams.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"stream\":{");
        for (j, (k, v)) in parse_labels(&s.labels).iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            json_str(&mut out, k);
            out.push(':');
            json_str(&mut out, v);
        }
        out.push_str("},\"values\":[");
        for (j, e) in s.entries.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            let _ = write!(out, "[\"{}\",", e.ts);
            json_str(&mut out, &e.line);
            if !e.metadata.is_empty() {
                out.push_str(",{");
                for (k, (n, v)) in e.metadata.iter().enumerate() {
                    if k > 0 {
                        out.push(',');
                    }
                    json_str(&mut out, n);
                    out.push(':');
                    json_str(&mut out, v);
                }
                out.push('}');
            }
            out.push(']');
        }
        out.push_str("]}");
    }
    out.push_str("]}");
    out.into_bytes()
}

fn json_str(out: &mut String, s: &str) {
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()));
}

/// Parses our own `{a="b", c="d"}` rendering back into pairs.
pub fn parse_labels(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim().trim_start_matches('{').trim_end_matches('}');
    while !rest.is_empty() {
        let Some((name, r)) = rest.split_once('=') else {
            break;
        };
        let r = r.trim_start();
        let Some(r) = r.strip_prefix('"') else { break };
        let mut value = String::new();
        let mut chars = r.char_indices();
        let mut end = r.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    end = i + 1;
                    break;
                }
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, 't')) => value.push('\t'),
                    Some((_, 'r')) => value.push('\r'),
                    Some((_, 'x')) => {
                        let h: String = chars.by_ref().take(2).map(|(_, c)| c).collect();
                        if let Ok(b) = u8::from_str_radix(&h, 16) {
                            value.push(b as char);
                        }
                    }
                    Some((_, c)) => value.push(c),
                    None => {}
                },
                c => value.push(c),
            }
        }
        out.push((
            name.trim().trim_start_matches(',').trim().to_string(),
            value,
        ));
        rest = r[end..].trim_start().trim_start_matches(',').trim_start();
    }
    out
}

/// Encodes streams in the given encoding (used when a rejected request is split).
pub fn encode(streams: &[StreamData], encoding: Encoding) -> Vec<u8> {
    match encoding {
        Encoding::Json => json(streams),
        Encoding::Protobuf => {
            let mut raw = Vec::new();
            let mut entries = Vec::new();
            for s in streams {
                entries.clear();
                for e in &s.entries {
                    put_entry(&mut entries, e.ts, e.line.as_bytes(), &e.metadata);
                }
                put_stream(&mut raw, &s.labels, &entries);
            }
            snappy(&raw)
        }
    }
}

/// Decodes a body this agent produced.
pub fn decode(body: &[u8], encoding: Encoding) -> Result<Vec<StreamData>, String> {
    match encoding {
        Encoding::Json => decode_json(body),
        Encoding::Protobuf => {
            let raw = snap::raw::Decoder::new()
                .decompress_vec(body)
                .map_err(|e| format!("snappy: {e}"))?;
            decode_proto(&raw)
        }
    }
}

fn decode_json(body: &[u8]) -> Result<Vec<StreamData>, String> {
    #[derive(serde::Deserialize)]
    struct Req {
        streams: Vec<S>,
    }
    #[derive(serde::Deserialize)]
    struct S {
        stream: std::collections::BTreeMap<String, String>,
        values: Vec<Vec<serde_json::Value>>,
    }
    let r: Req = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for s in r.streams {
        let labels = super::entry::Labels::from_pairs(s.stream.into_iter().collect()).render();
        let mut entries = Vec::new();
        for v in s.values {
            let ts = v
                .first()
                .and_then(|t| t.as_str())
                .and_then(|t| t.parse().ok())
                .ok_or("bad timestamp")?;
            let line = v
                .get(1)
                .and_then(|l| l.as_str())
                .ok_or("bad line")?
                .to_string();
            let metadata = v
                .get(2)
                .and_then(|m| m.as_object())
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default();
            entries.push(EntryData { ts, line, metadata });
        }
        out.push(StreamData { labels, entries });
    }
    Ok(out)
}

struct Pb<'a>(&'a [u8]);

impl<'a> Pb<'a> {
    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self.0.split_first().ok_or("truncated varint")?;
            self.0 = rest;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err("varint too long".into())
    }
    fn field(&mut self) -> Result<Option<(u64, Field<'a>)>, String> {
        if self.0.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let f = match key & 7 {
            0 => Field::Varint(self.varint()?),
            2 => {
                let n = self.varint()? as usize;
                if self.0.len() < n {
                    return Err("truncated field".into());
                }
                let (a, b) = self.0.split_at(n);
                self.0 = b;
                Field::Bytes(a)
            }
            w => return Err(format!("unexpected wire type {w}")),
        };
        Ok(Some((key >> 3, f)))
    }
}

enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

fn decode_proto(raw: &[u8]) -> Result<Vec<StreamData>, String> {
    let mut out = Vec::new();
    let mut p = Pb(raw);
    while let Some((n, f)) = p.field()? {
        let (1, Field::Bytes(sb)) = (n, f) else {
            continue;
        };
        let mut s = StreamData::default();
        let mut sp = Pb(sb);
        while let Some((n, f)) = sp.field()? {
            match (n, f) {
                (1, Field::Bytes(l)) => s.labels = String::from_utf8_lossy(l).into_owned(),
                (2, Field::Bytes(eb)) => {
                    let mut e = EntryData::default();
                    let mut ep = Pb(eb);
                    while let Some((n, f)) = ep.field()? {
                        match (n, f) {
                            (1, Field::Bytes(tb)) => {
                                let mut tp = Pb(tb);
                                let (mut secs, mut nanos) = (0i64, 0i64);
                                while let Some((n, f)) = tp.field()? {
                                    match (n, f) {
                                        (1, Field::Varint(v)) => secs = v as i64,
                                        (2, Field::Varint(v)) => nanos = v as i64,
                                        _ => {}
                                    }
                                }
                                e.ts = secs * 1_000_000_000 + nanos;
                            }
                            (2, Field::Bytes(l)) => {
                                e.line = String::from_utf8_lossy(l).into_owned()
                            }
                            (3, Field::Bytes(mb)) => {
                                let mut mp = Pb(mb);
                                let (mut k, mut v) = (String::new(), String::new());
                                while let Some((n, f)) = mp.field()? {
                                    match (n, f) {
                                        (1, Field::Bytes(b)) => {
                                            k = String::from_utf8_lossy(b).into_owned()
                                        }
                                        (2, Field::Bytes(b)) => {
                                            v = String::from_utf8_lossy(b).into_owned()
                                        }
                                        _ => {}
                                    }
                                }
                                e.metadata.push((k, v));
                            }
                            _ => {}
                        }
                    }
                    s.entries.push(e);
                }
                _ => {}
            }
        }
        out.push(s);
    }
    Ok(out)
}

/// Splits a request's entries into two halves of about equal count, keeping stream order.
pub fn halves(streams: Vec<StreamData>) -> (Vec<StreamData>, Vec<StreamData>) {
    let total: usize = streams.iter().map(|s| s.entries.len()).sum();
    let mut left = Vec::new();
    let mut right = Vec::new();
    let mut taken = 0;
    for mut s in streams {
        let room = (total / 2).saturating_sub(taken);
        if room >= s.entries.len() {
            taken += s.entries.len();
            left.push(s);
        } else if room == 0 {
            right.push(s);
        } else {
            let tail = s.entries.split_off(room);
            taken += room;
            right.push(StreamData {
                labels: s.labels.clone(),
                entries: tail,
            });
            left.push(s);
        }
    }
    (left, right)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<StreamData> {
        vec![
            StreamData {
                labels: r#"{job="a", path="x \"q\""}"#.into(),
                entries: vec![
                    EntryData {
                        ts: 1_795_514_400_000_000_001,
                        line: "one".into(),
                        metadata: vec![],
                    },
                    EntryData {
                        ts: 1_795_514_400_000_000_000,
                        line: "two é".into(),
                        metadata: vec![("trace_id".into(), "abc".into())],
                    },
                ],
            },
            StreamData {
                labels: r#"{job="b"}"#.into(),
                entries: vec![EntryData {
                    ts: 5,
                    line: "three".into(),
                    metadata: vec![],
                }],
            },
        ]
    }

    #[test]
    fn proto_and_json_roundtrip() {
        for enc in [Encoding::Protobuf, Encoding::Json] {
            let body = encode(&sample(), enc);
            assert_eq!(decode(&body, enc).expect("decode"), sample(), "{enc:?}");
        }
        assert_eq!(parse_labels(r#"{job="a", path="x \"q\""}"#)[1].1, "x \"q\"");
    }

    #[test]
    fn halves_split_entries_not_streams() {
        let (l, r) = halves(sample());
        assert_eq!(l.iter().map(|s| s.entries.len()).sum::<usize>(), 1);
        assert_eq!(r.iter().map(|s| s.entries.len()).sum::<usize>(), 2);
        assert_eq!(r[0].labels, l[0].labels);
    }
}
