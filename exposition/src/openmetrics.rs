//! OpenMetrics 1.0 text, as client_golang writes it when a scraper negotiates it: counter
//! families are named without `_total`, `untyped` becomes `unknown`, integral values carry `.0`,
//! and the body ends with `# EOF`.

use crate::float::write_openmetrics;
use crate::model::{Family, Kind};
use crate::text::{escape_label_value, write_sample};

pub fn encode(families: &[Family], out: &mut Vec<u8>) {
    for fam in families {
        let (family_name, sample_name) = match fam.kind {
            Kind::Counter => match fam.name.strip_suffix("_total") {
                Some(base) => (base.to_string(), fam.name.clone()),
                None => (fam.name.clone(), format!("{}_total", fam.name)),
            },
            _ => (fam.name.clone(), fam.name.clone()),
        };
        let kind = match fam.kind {
            Kind::Untyped => "unknown",
            k => k.as_text(),
        };
        if !fam.help.is_empty() {
            out.extend_from_slice(b"# HELP ");
            out.extend_from_slice(family_name.as_bytes());
            out.push(b' ');
            // OpenMetrics escapes HELP like a label value (backslash, quote, newline).
            escape_label_value(out, &fam.help);
            out.push(b'\n');
        }
        out.extend_from_slice(b"# TYPE ");
        out.extend_from_slice(family_name.as_bytes());
        out.push(b' ');
        out.extend_from_slice(kind.as_bytes());
        out.push(b'\n');
        for s in &fam.samples {
            let mut s = s.clone();
            // OpenMetrics timestamps are seconds.
            let ts = s.timestamp_ms.take();
            write_sample(out, &sample_name, fam.kind, &s, write_openmetrics);
            if let Some(ts) = ts {
                out.pop();
                out.push(b' ');
                write_openmetrics_ts(out, ts);
                out.push(b'\n');
            }
        }
    }
    out.extend_from_slice(b"# EOF\n");
}

fn write_openmetrics_ts(out: &mut Vec<u8>, ms: i64) {
    let secs = ms.div_euclid(1000);
    let rem = ms.rem_euclid(1000);
    out.extend_from_slice(secs.to_string().as_bytes());
    if rem != 0 {
        out.extend_from_slice(format!(".{rem:03}").trim_end_matches('0').as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::normalize;

    #[test]
    fn counter_family_without_total_and_eof() {
        let c = Family::new("node_forks_total", "Total number of forks.", Kind::Counter)
            .with(&[], 1234.0);
        let u = Family::single(
            "node_vmstat_pgfault",
            "/proc/vmstat information field pgfault.",
            Kind::Untyped,
            7.0,
        );
        let (fams, _) = normalize(vec![c, u]);
        let mut out = Vec::new();
        encode(&fams, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "# HELP node_forks Total number of forks.\n# TYPE node_forks counter\nnode_forks_total 1234.0\n\
             # HELP node_vmstat_pgfault /proc/vmstat information field pgfault.\n# TYPE node_vmstat_pgfault unknown\nnode_vmstat_pgfault 7.0\n# EOF\n"
        );
    }
}
