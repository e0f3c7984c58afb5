//! Gorilla-compressed sample chunks (Facebook's "Gorilla" paper, as Prometheus' XOR chunks):
//! timestamps as delta-of-delta in variable-width buckets, values as XOR with the previous
//! value. Regular scrapes of slowly changing series cost one or two bits per sample.

/// Samples per chunk before a new one starts (Prometheus uses 120).
pub const CHUNK_SAMPLES: u16 = 120;

#[derive(Debug, Default, Clone)]
struct BitWriter {
    bytes: Vec<u8>,
    /// Bits used in the last byte (0 = the last byte is full or there is none).
    used: u8,
}

impl BitWriter {
    fn bit(&mut self, b: bool) {
        if self.used == 0 {
            self.bytes.push(0);
        }
        if b {
            let last = self.bytes.len() - 1;
            self.bytes[last] |= 0x80 >> self.used;
        }
        self.used = (self.used + 1) % 8;
    }

    /// Appends the low `n` bits of `v`, most significant first, a byte at a time.
    fn bits(&mut self, v: u64, n: u8) {
        let mut left = n as u32;
        while left > 0 {
            if self.used == 0 {
                self.bytes.push(0);
            }
            let room = 8 - self.used as u32;
            let take = room.min(left);
            let chunk = ((v >> (left - take)) & ((1u64 << take) - 1)) as u8;
            let last = self.bytes.len() - 1;
            self.bytes[last] |= chunk << (room - take);
            self.used = ((self.used as u32 + take) % 8) as u8;
            left -= take;
        }
    }
}

struct BitReader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl BitReader<'_> {
    fn bit(&mut self) -> Option<bool> {
        let byte = *self.bytes.get(self.pos / 8)?;
        let b = byte & (0x80 >> (self.pos % 8)) != 0;
        self.pos += 1;
        Some(b)
    }

    /// The 64 bits starting at the current position (zeros past the end).
    fn peek64(&self) -> u64 {
        let byte = self.pos / 8;
        let off = (self.pos % 8) as u32;
        let (hi, lo) = match self.bytes.get(byte..byte + 9) {
            Some(b) => (
                u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
                u64::from(b[8]),
            ),
            None => {
                let mut buf = [0u8; 9];
                let tail = self.bytes.get(byte..).unwrap_or(&[]);
                buf[..tail.len()].copy_from_slice(tail);
                (
                    u64::from_be_bytes([
                        buf[0], buf[1], buf[2], buf[3], buf[4], buf[5], buf[6], buf[7],
                    ]),
                    u64::from(buf[8]),
                )
            }
        };
        if off == 0 {
            hi
        } else {
            (hi << off) | (lo >> (8 - off))
        }
    }

    /// Reads `n` (≤ 64) bits, most significant first.
    fn bits(&mut self, n: u8) -> Option<u64> {
        if n == 0 {
            return Some(0);
        }
        if self.pos + n as usize > self.bytes.len() * 8 {
            return None;
        }
        let v = self.peek64() >> (64 - u32::from(n));
        self.pos += n as usize;
        Some(v)
    }
}

/// Delta-of-delta buckets: (prefix bits, prefix length, value bits).
const BUCKETS: [(u64, u8, u8); 3] = [(0b10, 2, 14), (0b110, 3, 17), (0b1110, 4, 20)];

fn fits(v: i64, bits: u8) -> bool {
    let half = 1i64 << (bits - 1);
    -half <= v && v < half
}

/// One chunk: an append-only bit stream plus the state needed to append to it.
#[derive(Debug, Default, Clone)]
pub struct Chunk {
    w: BitWriter,
    count: u16,
    pub min_t: i64,
    pub max_t: i64,
    last_delta: i64,
    last_v: u64,
    leading: u8,
    trailing: u8,
    /// Decoder states every [`MARK_EVERY`] samples, so that a window near the end (what
    /// `rate(x[5m])` reads at every evaluation) is decoded from the nearest mark, not from the
    /// chunk's first sample.
    marks: [Option<Mark>; MARKS],
}

/// Samples between two marks of a chunk.
const MARK_EVERY: u16 = 32;
const MARKS: usize = ((CHUNK_SAMPLES - 1) / MARK_EVERY) as usize;

/// The decoder's state just after one sample: enough to resume decoding at the next one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mark {
    t: i64,
    vb: u64,
    delta: i64,
    /// Bit position of the next sample.
    pos: u16,
    /// Index of the sample this state follows.
    index: u8,
    leading: u8,
    trailing: u8,
}

impl Chunk {
    pub fn len(&self) -> u16 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn is_full(&self) -> bool {
        self.count >= CHUNK_SAMPLES
    }

    /// Bytes of the encoded bit stream alone.
    pub fn stream_bytes(&self) -> usize {
        self.w.bytes.len()
    }

    /// Bytes the chunk occupies (its bit stream plus fixed fields).
    pub fn bytes(&self) -> usize {
        self.w.bytes.capacity() + std::mem::size_of::<Self>()
    }

    /// Appends a sample; the caller guarantees `t` is after the last one.
    pub fn push(&mut self, t: i64, v: f64) {
        let vb = v.to_bits();
        match self.count {
            0 => {
                self.w.bits(t as u64, 64);
                self.w.bits(vb, 64);
                self.min_t = t;
            }
            1 => {
                let delta = t - self.max_t;
                self.w.bits(delta as u64, 64);
                self.push_value(vb);
                self.last_delta = delta;
            }
            _ => {
                let delta = t - self.max_t;
                let dod = delta - self.last_delta;
                if dod == 0 {
                    self.w.bit(false);
                } else if let Some(&(prefix, plen, bits)) = BUCKETS.iter().find(|b| fits(dod, b.2))
                {
                    self.w.bits(prefix, plen);
                    self.w.bits((dod as u64) & ((1u64 << bits) - 1), bits);
                } else {
                    self.w.bits(0b1111, 4);
                    self.w.bits(dod as u64, 64);
                }
                self.push_value(vb);
                self.last_delta = delta;
            }
        }
        self.max_t = t;
        self.last_v = vb;
        self.count += 1;
        if self.count.is_multiple_of(MARK_EVERY) && self.count < CHUNK_SAMPLES {
            let used = u32::from(self.w.used);
            let pos = self.w.bytes.len() as u32 * 8 - if used == 0 { 0 } else { 8 - used };
            self.marks[usize::from(self.count / MARK_EVERY) - 1] = Some(Mark {
                t,
                vb,
                delta: self.last_delta,
                pos: pos as u16,
                index: (self.count - 1) as u8,
                leading: self.leading,
                trailing: self.trailing,
            });
        }
    }

    fn push_value(&mut self, vb: u64) {
        let x = vb ^ self.last_v;
        if x == 0 {
            self.w.bit(false);
            return;
        }
        self.w.bit(true);
        let leading = (x.leading_zeros() as u8).min(31);
        let trailing = x.trailing_zeros() as u8;
        if self.count > 1
            && self.leading != u8::MAX
            && leading >= self.leading
            && trailing >= self.trailing
        {
            // Reuse the previous window of meaningful bits.
            self.w.bit(false);
            let sig = 64 - self.leading - self.trailing;
            self.w.bits(x >> self.trailing, sig);
        } else {
            self.w.bit(true);
            let sig = 64 - leading - trailing;
            self.w.bits(u64::from(leading), 5);
            // 64 significant bits do not fit in 6 bits; 0 stands for 64.
            self.w.bits(u64::from(sig) & 0x3f, 6);
            self.w.bits(x >> trailing, sig);
            self.leading = leading;
            self.trailing = trailing;
        }
    }

    /// The chunk reduced to what reading needs, once it is full, and its last mark (the store
    /// keeps it for the newest sealed chunk only, which short windows still reach into).
    pub fn seal(self) -> (Sealed, Option<Mark>) {
        let last = self.marks.iter().rev().flatten().next().copied();
        let sealed = Sealed {
            data: self.w.bytes.into_boxed_slice(),
            count: self.count,
            min_t: self.min_t,
            max_t: self.max_t,
        };
        (sealed, last)
    }

    /// Decodes every sample, oldest first.
    pub fn samples(&self) -> Vec<(i64, f64)> {
        let mut out = Vec::with_capacity(self.count as usize);
        decode(
            &self.w.bytes,
            self.count,
            None,
            i64::MIN,
            i64::MAX,
            &mut out,
        );
        out
    }

    /// Appends the samples in `[mint, maxt]` to `out`.
    pub fn samples_in(&self, mint: i64, maxt: i64, out: &mut Vec<(i64, f64)>) {
        let from = self.marks.iter().flatten().rfind(|m| m.t < mint);
        decode(&self.w.bytes, self.count, from, mint, maxt, out);
    }
}

/// A full chunk: its bit stream and time bounds, nothing else.
#[derive(Debug, Clone)]
pub struct Sealed {
    data: Box<[u8]>,
    count: u16,
    pub min_t: i64,
    pub max_t: i64,
}

impl Sealed {
    pub fn len(&self) -> u16 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn stream_bytes(&self) -> usize {
        self.data.len()
    }

    pub fn bytes(&self) -> usize {
        self.data.len() + std::mem::size_of::<Self>()
    }

    pub fn samples(&self) -> Vec<(i64, f64)> {
        let mut out = Vec::with_capacity(self.count as usize);
        decode(&self.data, self.count, None, i64::MIN, i64::MAX, &mut out);
        out
    }

    /// Appends the samples in `[mint, maxt]` to `out`, starting after `mark` (this chunk's,
    /// from [`Chunk::seal`]) when the window begins after it.
    pub fn samples_in(&self, mint: i64, maxt: i64, mark: Option<&Mark>, out: &mut Vec<(i64, f64)>) {
        let from = mark.filter(|m| m.t < mint);
        decode(&self.data, self.count, from, mint, maxt, out);
    }
}

/// Decodes the samples of a chunk's bit stream that fall in `[mint, maxt]` into `out`,
/// stopping at the first one past `maxt`; from the chunk's start, or just after `from` (a mark
/// of this chunk earlier than `mint`).
fn decode(
    bytes: &[u8],
    count: u16,
    from: Option<&Mark>,
    mint: i64,
    maxt: i64,
    out: &mut Vec<(i64, f64)>,
) {
    let mut keep = |t: i64, v: u64| -> bool {
        if t > maxt {
            return false;
        }
        if t >= mint {
            out.push((t, f64::from_bits(v)));
        }
        true
    };
    let mut decode = || -> Option<()> {
        let mut r;
        let (mut t, mut vb, mut delta, mut leading, mut trailing, first);
        match from {
            Some(m) => {
                r = BitReader {
                    bytes,
                    pos: usize::from(m.pos),
                };
                (t, vb, delta, leading, trailing) = (m.t, m.vb, m.delta, m.leading, m.trailing);
                first = u16::from(m.index) + 1;
            }
            None => {
                r = BitReader { bytes, pos: 0 };
                (t, vb) = (r.bits(64)? as i64, r.bits(64)?);
                if !keep(t, vb) {
                    return Some(());
                }
                (delta, leading, trailing) = (0, 0, 0);
                first = 1;
            }
        }
        for i in first..count {
            if i == 1 {
                delta = r.bits(64)? as i64;
            } else {
                let mut dod = 0i64;
                if r.bit()? {
                    let mut bucket = None;
                    for b in &BUCKETS {
                        if !r.bit()? {
                            bucket = Some(b.2);
                            break;
                        }
                    }
                    dod = match bucket {
                        Some(bits) => {
                            let raw = r.bits(bits)?;
                            // Sign-extend from `bits`.
                            let shift = 64 - u32::from(bits);
                            ((raw << shift) as i64) >> shift
                        }
                        None => r.bits(64)? as i64,
                    };
                }
                delta += dod;
            }
            t += delta;
            if r.bit()? {
                if r.bit()? {
                    leading = r.bits(5)? as u8;
                    let mut sig = r.bits(6)? as u8;
                    if sig == 0 {
                        sig = 64;
                    }
                    trailing = 64 - leading - sig;
                }
                let sig = 64 - leading - trailing;
                vb ^= r.bits(sig)? << trailing;
            }
            if !keep(t, vb) {
                return Some(());
            }
        }
        Some(())
    };
    let _ = decode();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let mut c = Chunk::default();
        let mut want = Vec::new();
        let values = [
            1.0,
            1.0,
            2.5,
            -3.0,
            f64::NAN,
            f64::INFINITY,
            1e300,
            0.1,
            0.1,
            0.2,
            12345.678,
        ];
        let mut t = 1_700_000_000_000i64;
        for (i, v) in values.iter().cycle().take(120).enumerate() {
            t += [15_000, 15_000, 15_003, 14_990, 1, 100_000, 15_000_000][i % 7];
            c.push(t, *v);
            want.push((t, *v));
        }
        let got = c.samples();
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g.0, w.0);
            assert_eq!(g.1.to_bits(), w.1.to_bits());
        }
        assert!(c.is_full());
    }

    #[test]
    fn windows_read_from_a_mark_equal_full_decodes() {
        let mut c = Chunk::default();
        let mut t = 1_700_000_000_000i64;
        let mut v = 0.0f64;
        for i in 0..120i64 {
            t += [15_000, 15_001, 14_999, 60_000][i as usize % 4];
            v += [0.5, 1e9, -3.25, 0.0, 7.0][i as usize % 5];
            c.push(t, v);
            let all = c.samples();
            // Every window start, including ones just before, on and after each mark.
            for w in 0..all.len() {
                let mint = all[w].0 - (w % 2) as i64;
                let mut got = Vec::new();
                c.samples_in(mint, i64::MAX, &mut got);
                let want: Vec<_> = all.iter().filter(|p| p.0 >= mint).copied().collect();
                assert_eq!(got, want, "after {} samples, window from {mint}", i + 1);
            }
        }
        let full = c.samples();
        let (sealed, mark) = c.seal();
        assert_eq!(mark.map(|m| m.index), Some(95));
        for w in 0..full.len() {
            let mut got = Vec::new();
            sealed.samples_in(full[w].0, i64::MAX, mark.as_ref(), &mut got);
            assert_eq!(got, full[w..].to_vec());
        }
    }

    #[test]
    fn regular_counters_are_small() {
        let mut c = Chunk::default();
        for i in 0..120i64 {
            c.push(i * 15_000, (i * 7) as f64);
        }
        // 16 bytes of header plus a few bits a sample.
        assert!(c.w.bytes.len() < 16 + 120 * 2, "{} bytes", c.w.bytes.len());
    }
}
