//! A parser for the text format 0.0.4 with the rules of Go's `expfmt.TextParser`: HELP and TYPE
//! at most once per family and before its samples, `_sum`/`_count`/`_bucket` joining their
//! summary or histogram, reserved and duplicate label names refused.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::model::{Family, Kind, Sample, Suffix};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    pub message: String,
}

/// Parses a float the way Go's `strconv.ParseFloat` accepts exposition values.
pub fn parse_float(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" | "nan" => Some(f64::NAN),
        _ => {
            let v: f64 = s.parse().ok()?;
            Some(v)
        }
    }
}

pub fn is_metric_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' || b == b':' => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
}

pub fn is_label_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

struct State {
    families: Vec<Family>,
    by_name: HashMap<String, usize>,
    has_help: Vec<bool>,
    has_type: Vec<bool>,
}

impl State {
    fn family(&mut self, name: &str) -> usize {
        if let Some(&i) = self.by_name.get(name) {
            return i;
        }
        self.families
            .push(Family::new(name, String::new(), Kind::Untyped));
        self.has_help.push(false);
        self.has_type.push(false);
        let i = self.families.len() - 1;
        self.by_name.insert(name.to_string(), i);
        i
    }

    /// Finds the family a sample name belongs to, and the suffix it carries.
    fn family_of_sample(&mut self, name: &str) -> (usize, Suffix) {
        for (suffix, kinds) in [
            (Suffix::Bucket, &[Kind::Histogram][..]),
            (Suffix::Sum, &[Kind::Histogram, Kind::Summary][..]),
            (Suffix::Count, &[Kind::Histogram, Kind::Summary][..]),
        ] {
            if let Some(base) = name.strip_suffix(suffix.as_str())
                && let Some(&i) = self.by_name.get(base)
                && kinds.contains(&self.families[i].kind)
            {
                return (i, suffix);
            }
        }
        (self.family(name), Suffix::None)
    }
}

/// Parses a whole exposition. Families keep the order they first appeared in.
pub fn parse_text(input: &str) -> Result<Vec<Family>, ParseError> {
    let mut st = State {
        families: Vec::new(),
        by_name: HashMap::new(),
        has_help: Vec::new(),
        has_type: Vec::new(),
    };
    for (idx, raw) in input.lines().enumerate() {
        let line_no = idx + 1;
        let err = |message: String| ParseError {
            line: line_no,
            message,
        };
        let line = raw.trim_start_matches([' ', '\t']);
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('#') {
            let rest = rest.trim_start_matches([' ', '\t']);
            let (keyword, rest) = split_token(rest);
            match keyword {
                "HELP" => {
                    let (name, help) = split_token(rest);
                    if !is_metric_name(name) {
                        return Err(err(format!("invalid metric name in comment: {name:?}")));
                    }
                    let help = unescape_help(help).map_err(err)?;
                    let i = st.family(name);
                    if st.has_help[i] {
                        return Err(err(format!("second HELP line for metric name {name:?}")));
                    }
                    st.has_help[i] = true;
                    st.families[i].help = help;
                }
                "TYPE" => {
                    let (name, kind) = split_token(rest);
                    if !is_metric_name(name) {
                        return Err(err(format!("invalid metric name in comment: {name:?}")));
                    }
                    let kind_text = kind.trim_end_matches([' ', '\t']);
                    let kind = match Kind::from_text(kind_text) {
                        Some(k) if kind_text != "unknown" => k,
                        _ => return Err(err(format!("unknown metric type {kind_text:?}"))),
                    };
                    let i = st.family(name);
                    if st.has_type[i] || !st.families[i].samples.is_empty() {
                        return Err(err(format!(
                            "second TYPE line for metric name {name:?}, or TYPE reported after samples"
                        )));
                    }
                    st.has_type[i] = true;
                    st.families[i].kind = kind;
                }
                _ => {}
            }
            continue;
        }
        let sample = parse_sample_line(line).map_err(err)?;
        let (i, suffix) = st.family_of_sample(sample.0);
        let fam = &mut st.families[i];
        match (fam.kind, suffix) {
            (Kind::Summary, Suffix::None) if !sample.1.iter().any(|(n, _)| n == "quantile") => {
                return Err(err(format!(
                    "summary sample {:?} has no quantile label",
                    sample.0
                )));
            }
            (Kind::Histogram, Suffix::Bucket) if !sample.1.iter().any(|(n, _)| n == "le") => {
                return Err(err(format!(
                    "histogram bucket {:?} has no le label",
                    sample.0
                )));
            }
            (Kind::Histogram, Suffix::None) => {
                return Err(err(format!(
                    "histogram sample {:?} must end in _bucket, _sum or _count",
                    sample.0
                )));
            }
            _ => {}
        }
        fam.samples.push(Sample {
            suffix,
            labels: sample.1,
            value: sample.2,
            timestamp_ms: sample.3,
        });
    }
    Ok(st.families)
}

fn split_token(s: &str) -> (&str, &str) {
    match s.find([' ', '\t']) {
        Some(i) => (&s[..i], s[i..].trim_start_matches([' ', '\t'])),
        None => (s, ""),
    }
}

fn unescape_help(s: &str) -> Result<String, String> {
    if !s.contains('\\') {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('\\') => out.push('\\'),
                Some('n') => out.push('\n'),
                other => {
                    return Err(format!(
                        "invalid escape sequence '\\{}' in HELP",
                        other.unwrap_or(' ')
                    ));
                }
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

type ParsedSample<'a> = (&'a str, Vec<(Cow<'static, str>, String)>, f64, Option<i64>);

fn parse_sample_line(line: &str) -> Result<ParsedSample<'_>, String> {
    let name_end = line.find(['{', ' ', '\t']).unwrap_or(line.len());
    let name = &line[..name_end];
    if !is_metric_name(name) {
        return Err(format!("invalid metric name {name:?}"));
    }
    let mut rest = line[name_end..].trim_start_matches([' ', '\t']);
    let mut labels: Vec<(Cow<'static, str>, String)> = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        rest = parse_labels(after, &mut labels)?;
    }
    let rest = rest.trim_start_matches([' ', '\t']);
    let (value_text, rest) = split_token(rest);
    if value_text.is_empty() {
        return Err(format!("expected a value for metric {name:?}"));
    }
    let value = parse_float(value_text)
        .ok_or_else(|| format!("expected float as value, got {value_text:?}"))?;
    let rest = rest.trim_end_matches([' ', '\t']);
    let timestamp = if rest.is_empty() {
        None
    } else {
        let (ts, tail) = split_token(rest);
        if !tail.is_empty() {
            return Err(format!("spurious string after timestamp: {tail:?}"));
        }
        Some(
            ts.parse::<i64>()
                .map_err(|_| format!("expected integer as timestamp, got {ts:?}"))?,
        )
    };
    Ok((name, labels, value, timestamp))
}

/// Parses `name="value", ...}` and returns what follows the closing brace.
fn parse_labels<'a>(
    mut s: &'a str,
    labels: &mut Vec<(Cow<'static, str>, String)>,
) -> Result<&'a str, String> {
    loop {
        s = s.trim_start_matches([' ', '\t']);
        if let Some(after) = s.strip_prefix('}') {
            return Ok(after);
        }
        let eq = s.find('=').ok_or("expected '=' after label name")?;
        let lname = s[..eq].trim_end_matches([' ', '\t']);
        if !is_label_name(lname) {
            return Err(format!("invalid label name {lname:?}"));
        }
        if lname == "__name__" {
            return Err("label name \"__name__\" is reserved".to_string());
        }
        if labels.iter().any(|(n, _)| n == lname) {
            return Err(format!("duplicate label name {lname:?}"));
        }
        s = s[eq + 1..].trim_start_matches([' ', '\t']);
        let body = s
            .strip_prefix('"')
            .ok_or_else(|| format!("expected '\"' to start the value of label {lname:?}"))?;
        let mut value = String::new();
        let mut chars = body.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    end = Some(i + 1);
                    break;
                }
                '\\' => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, other)) => {
                        return Err(format!(
                            "invalid escape sequence '\\{other}' in label value"
                        ));
                    }
                    None => return Err("unterminated label value".to_string()),
                },
                c => value.push(c),
            }
        }
        let end = end.ok_or_else(|| format!("unterminated value of label {lname:?}"))?;
        labels.push((Cow::Owned(lname.to_string()), value));
        s = body[end..].trim_start_matches([' ', '\t']);
        if let Some(after) = s.strip_prefix(',') {
            s = after;
        } else if !s.starts_with('}') {
            return Err(format!(
                "unexpected {:?} after label value",
                s.chars().next().unwrap_or(' ')
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_families_summaries_and_histograms() {
        let text = "# HELP a_total Things\\ndone.\n# TYPE a_total counter\na_total{x=\"1\",y=\"q\\\"\\\\\"} 3\n\
                    # TYPE s summary\ns{quantile=\"0.5\"} 1\ns_sum 2\ns_count 3\n\
                    # TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n\
                    untyped_one{a=\"b\",} 1e3 1700000000000\n";
        let fams = parse_text(text).unwrap();
        assert_eq!(fams.len(), 4);
        assert_eq!(fams[0].help, "Things\ndone.");
        assert_eq!(fams[0].samples[0].labels[1].1, "q\"\\");
        assert_eq!(fams[1].samples.len(), 3);
        assert_eq!(fams[2].samples.len(), 4);
        assert_eq!(fams[2].samples[3].suffix, Suffix::Count);
        assert_eq!(fams[3].kind, Kind::Untyped);
        assert_eq!(fams[3].samples[0].timestamp_ms, Some(1_700_000_000_000));
    }

    #[test]
    fn rejects_what_go_rejects() {
        for (text, line) in [
            ("ok 1\n# TYPE ok gauge\n", 2),
            ("# HELP a x\n# HELP a y\n", 2),
            ("a{b=\"1\",b=\"2\"} 1\n", 1),
            ("a{__name__=\"x\"} 1\n", 1),
            ("a{b=1} 1\n", 1),
            ("a 1 2 3\n", 1),
            ("\n\na one\n", 3),
            ("0a 1\n", 1),
            ("# TYPE a nonsense\n", 1),
            ("a{b=\"x} 1\n", 1),
        ] {
            let e = parse_text(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
        }
    }
}

/// One sample as a scraper ingests it: full metric name, labels, value, optional timestamp (ms).
pub type FlatSample = (String, Vec<(String, String)>, f64, Option<i64>);

/// Parses the sample lines of a text 0.0.4 or OpenMetrics exposition without building families:
/// what a scraper stores. OpenMetrics timestamps (seconds) become milliseconds, exemplars are
/// dropped, and `# EOF` ends the input.
pub fn parse_flat(input: &str, openmetrics: bool) -> Result<Vec<FlatSample>, ParseError> {
    let mut out = Vec::new();
    for (idx, raw) in input.lines().enumerate() {
        let line = raw.trim_start_matches([' ', '\t']);
        if line.is_empty() {
            continue;
        }
        if line.starts_with('#') {
            if openmetrics && line == "# EOF" {
                break;
            }
            continue;
        }
        let err = |message: String| ParseError {
            line: idx + 1,
            message,
        };
        let (name, labels, value, ts) = if openmetrics {
            parse_openmetrics_line(line).map_err(err)?
        } else {
            parse_sample_line(line).map_err(err)?
        };
        out.push((
            name.to_string(),
            labels
                .into_iter()
                .map(|(k, v)| (k.into_owned(), v))
                .collect(),
            value,
            ts,
        ));
    }
    Ok(out)
}

/// Where the metric name and its label block end (quote-aware: `}` may appear in values);
/// `None` for a label block that is never closed.
pub fn series_end(line: &str) -> Option<usize> {
    let name_end = line.find(['{', ' ', '\t']).unwrap_or(line.len());
    if !line[name_end..].starts_with('{') {
        return Some(name_end);
    }
    let (mut in_str, mut escaped) = (false, false);
    for (i, c) in line[name_end..].char_indices() {
        if in_str {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
        } else if c == '"' {
            in_str = true;
        } else if c == '}' {
            return Some(name_end + i + 1);
        }
    }
    None
}

/// An OpenMetrics sample line: like text 0.0.4, but the timestamp is in (fractional) seconds
/// and an exemplar may follow ` # `.
fn parse_openmetrics_line(line: &str) -> Result<ParsedSample<'_>, String> {
    let end = series_end(line).unwrap_or(line.len());
    let mut tokens = line[end..].split([' ', '\t']).filter(|t| !t.is_empty());
    let value = tokens.next().unwrap_or("");
    let head_len = line[end..]
        .find(value)
        .map_or(line.len(), |i| end + i + value.len());
    let ts = match tokens.next() {
        None | Some("#") => None,
        Some(t) => {
            let secs: f64 = t
                .parse()
                .map_err(|_| format!("expected a timestamp in seconds, got {t:?}"))?;
            Some((secs * 1000.0).round() as i64)
        }
    };
    let (name, labels, value, _) = parse_sample_line(&line[..head_len])?;
    Ok((name, labels, value, ts))
}

#[cfg(test)]
mod flat_tests {
    use super::*;

    #[test]
    fn text_and_openmetrics() {
        let t = parse_flat("# HELP a x\na 1\nb{l=\"v\"} 2 1500\n", false).unwrap();
        assert_eq!(t[0], ("a".into(), vec![], 1.0, None));
        assert_eq!(t[1].3, Some(1500));
        let om = parse_flat(
            "# TYPE c counter\nc_total{l=\"a b\"} 3 1.5 # {trace=\"x\"} 1 2\nd 4\ne{x=\"}\"} 5 2\n# EOF\nf 6\n",
            true,
        )
        .unwrap();
        assert_eq!(om.len(), 3);
        assert_eq!(om[0].0, "c_total");
        assert_eq!(om[0].3, Some(1500));
        assert_eq!(om[1], ("d".into(), vec![], 4.0, None));
        assert_eq!(om[2].2, 5.0);
        assert_eq!(om[2].3, Some(2000));
    }
}
