//! The classic text format 0.0.4, byte for byte as client_golang's `expfmt` writes it.

use crate::float::write_go;
use crate::model::{Family, Kind, Sample};

/// Writes normalised families. HELP is written when present; samples carry their timestamp
/// when they have one.
pub fn encode(families: &[Family], out: &mut Vec<u8>) {
    for fam in families {
        if !fam.help.is_empty() {
            out.extend_from_slice(b"# HELP ");
            out.extend_from_slice(fam.name.as_bytes());
            out.push(b' ');
            escape_help(out, &fam.help);
            out.push(b'\n');
        }
        out.extend_from_slice(b"# TYPE ");
        out.extend_from_slice(fam.name.as_bytes());
        out.push(b' ');
        out.extend_from_slice(fam.kind.as_text().as_bytes());
        out.push(b'\n');
        for s in &fam.samples {
            write_sample(out, &fam.name, fam.kind, s, write_go);
        }
    }
}

pub(crate) fn write_sample(
    out: &mut Vec<u8>,
    name: &str,
    _kind: Kind,
    s: &Sample,
    write_value: fn(&mut Vec<u8>, f64),
) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(s.suffix.as_str().as_bytes());
    if !s.labels.is_empty() {
        out.push(b'{');
        for (i, (n, v)) in s.labels.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(n.as_bytes());
            out.extend_from_slice(b"=\"");
            escape_label_value(out, v);
            out.push(b'"');
        }
        out.push(b'}');
    }
    out.push(b' ');
    write_value(out, s.value);
    if let Some(ts) = s.timestamp_ms {
        out.push(b' ');
        out.extend_from_slice(ts.to_string().as_bytes());
    }
    out.push(b'\n');
}

/// HELP text escapes backslash and newline.
pub(crate) fn escape_help(out: &mut Vec<u8>, s: &str) {
    if !s.bytes().any(|b| b == b'\\' || b == b'\n') {
        out.extend_from_slice(s.as_bytes());
        return;
    }
    for b in s.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            _ => out.push(b),
        }
    }
}

/// Label values escape backslash, double quote and newline.
pub(crate) fn escape_label_value(out: &mut Vec<u8>, s: &str) {
    // Label values are most of a large page's bytes (cgroup paths, container ids): scan them
    // with SIMD.
    if memchr::memchr3(b'\\', b'"', b'\n', s.as_bytes()).is_none() {
        out.extend_from_slice(s.as_bytes());
        return;
    }
    for b in s.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            _ => out.push(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Kind, normalize};

    #[test]
    fn writes_node_exporter_shape() {
        let mut f = Family::new(
            "node_disk_discarded_sectors_total",
            "The total number of sectors discarded successfully.",
            Kind::Counter,
        );
        f.push(&[("device", "sdb")], 1925173784.0);
        let info = Family::new(
            "node_uname_info",
            "Labeled system information as provided by the uname system call.",
            Kind::Gauge,
        )
        .with(&[("sysname", "Linux"), ("release", "a\"b\\c\nd")], 1.0);
        let (fams, _) = normalize(vec![info, f]);
        let mut out = Vec::new();
        encode(&fams, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "# HELP node_disk_discarded_sectors_total The total number of sectors discarded successfully.\n\
             # TYPE node_disk_discarded_sectors_total counter\n\
             node_disk_discarded_sectors_total{device=\"sdb\"} 1.925173784e+09\n\
             # HELP node_uname_info Labeled system information as provided by the uname system call.\n\
             # TYPE node_uname_info gauge\n\
             node_uname_info{release=\"a\\\"b\\\\c\\nd\",sysname=\"Linux\"} 1\n"
        );
    }
}
