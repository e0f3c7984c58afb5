//! The series notation shared by promqltest `load` blocks and promtool's `input_series`:
//! `metric{a="b"} 1+2x3 _ stale -1x2`, and Prometheus' duration syntax.

use promql_parser::label::MatchOp;
use promql_parser::parser::Expr;

use crate::error::{Error, Result};
use crate::value::{Labels, METRIC_NAME, stale_nan};

/// One value of a series description; `None` is an omitted sample (`_`).
pub type SeqValue = Option<f64>;

/// Splits `metric{labels} values…` into the label set and the rest of the line.
pub fn split_series(line: &str) -> Result<(Labels, &str)> {
    let line = line.trim();
    let end = vigie_exposition::parse::series_end(line)
        .ok_or_else(|| Error::Parse(format!("unclosed '{{' in {line:?}")))?;
    Ok((parse_labels(&line[..end])?, line[end..].trim()))
}

/// Parses `metric{a="b"}` or `{a="b"}` into a label set.
pub fn parse_labels(s: &str) -> Result<Labels> {
    let s = s.trim();
    if s == "{}" {
        return Ok(Labels::new());
    }
    let expr = crate::parse::parse(s)?;
    let Expr::VectorSelector(vs) = expr else {
        return Err(Error::Parse(format!("{s:?} is not a series description")));
    };
    let mut l = Labels::new();
    if let Some(n) = vs.name {
        l.set(METRIC_NAME, n);
    }
    for m in vs.matchers.matchers {
        if m.op != MatchOp::Equal {
            return Err(Error::Parse(format!(
                "series description {s:?} may only use '=' matchers"
            )));
        }
        l.set(&m.name, m.value);
    }
    Ok(l)
}

fn parse_number(s: &str) -> Option<f64> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let v = match body.to_ascii_lowercase().as_str() {
        "inf" => f64::INFINITY,
        "nan" => f64::NAN,
        b if b.starts_with(|c: char| c.is_ascii_digit() || c == '.') => b.parse().ok()?,
        _ => return None,
    };
    Some(if neg { -v } else { v })
}

/// Expands the values part: `1 2 3`, `_`, `_x3`, `stale`, `5x3`, `1+2x3`, `10-1x4`.
pub fn parse_values(s: &str) -> Result<Vec<SeqValue>> {
    let mut out = Vec::new();
    for item in s.split_whitespace() {
        if item.starts_with("{{") {
            return Err(Error::Unsupported("native histogram samples".into()));
        }
        if item == "_" {
            out.push(None);
            continue;
        }
        if item == "stale" {
            out.push(Some(stale_nan()));
            continue;
        }
        let bad = || Error::Parse(format!("invalid series value {item:?}"));
        let Some((base, times)) = item.rsplit_once('x') else {
            out.push(Some(parse_number(item).ok_or_else(bad)?));
            continue;
        };
        let n: u64 = times.parse().map_err(|_| bad())?;
        if base == "_" {
            out.extend(std::iter::repeat_n(None, n as usize));
            continue;
        }
        // `a+b` / `a-b`: find the operator that is not a leading sign or an exponent sign.
        let bytes = base.as_bytes();
        let op_at = (1..bytes.len()).find(|&i| {
            (bytes[i] == b'+' || bytes[i] == b'-') && !matches!(bytes[i - 1], b'e' | b'E')
        });
        match op_at {
            None => {
                let a = if base == "stale" {
                    stale_nan()
                } else {
                    parse_number(base).ok_or_else(bad)?
                };
                out.extend(std::iter::repeat_n(Some(a), n as usize + 1));
            }
            Some(i) => {
                let mut a = parse_number(&base[..i]).ok_or_else(bad)?;
                let b = parse_number(&base[i + 1..]).ok_or_else(bad)?;
                let b = if bytes[i] == b'-' { -b } else { b };
                out.push(Some(a));
                for _ in 0..n {
                    a += b;
                    out.push(Some(a));
                }
            }
        }
    }
    Ok(out)
}

/// Prometheus' duration syntax: `1h30m`, `5m`, `90s`, `1y2w3d4h5m6s7ms`, `0`; milliseconds.
pub fn parse_duration(s: &str) -> Result<i64> {
    let s = s.trim();
    if s == "0" {
        return Ok(0);
    }
    let bad = || Error::Parse(format!("not a valid duration string: {s:?}"));
    if s.is_empty() {
        return Err(bad());
    }
    let units: [(&str, i64); 7] = [
        ("y", 365 * 24 * 3600 * 1000),
        ("w", 7 * 24 * 3600 * 1000),
        ("d", 24 * 3600 * 1000),
        ("h", 3600 * 1000),
        ("m", 60 * 1000),
        ("s", 1000),
        ("ms", 1),
    ];
    let mut total: i64 = 0;
    let mut rest = s;
    let mut last_unit = 0usize;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let n: i64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let idx = units.iter().position(|(u, _)| *u == unit).ok_or_else(bad)?;
        // Units must be in descending order and each appear once.
        if idx < last_unit || (total > 0 && idx == last_unit) {
            return Err(bad());
        }
        last_unit = idx;
        total = n
            .checked_mul(units[idx].1)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::is_stale_nan;

    #[test]
    fn expands_sequences() {
        assert_eq!(
            parse_values("1+2x3 _ 5x2 10-1x2 _x2").unwrap(),
            vec![
                Some(1.0),
                Some(3.0),
                Some(5.0),
                Some(7.0),
                None,
                Some(5.0),
                Some(5.0),
                Some(5.0),
                Some(10.0),
                Some(9.0),
                Some(8.0),
                None,
                None
            ]
        );
        let v = parse_values("stale -1 1e3 -Inf").unwrap();
        assert!(is_stale_nan(v[0].unwrap()));
        assert_eq!(v[1..], [Some(-1.0), Some(1000.0), Some(f64::NEG_INFINITY)]);
        assert_eq!(
            parse_values("-2+-1x1").unwrap(),
            vec![Some(-2.0), Some(-3.0)]
        );
        assert_eq!(
            parse_values("1e+2+1x1").unwrap(),
            vec![Some(100.0), Some(101.0)]
        );
    }

    #[test]
    fn splits_labels_and_values() {
        let (l, rest) = split_series(r#"http{path="/a b", code="200"} 1 2"#).unwrap();
        assert_eq!(l.get("path"), "/a b");
        assert_eq!(l.name(), "http");
        assert_eq!(rest, "1 2");
        let (l, rest) = split_series("up 1").unwrap();
        assert_eq!(l.name(), "up");
        assert_eq!(rest, "1");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h30m").unwrap(), 5_400_000);
        assert_eq!(parse_duration("0").unwrap(), 0);
        assert_eq!(parse_duration("1s500ms").unwrap(), 1500);
        assert!(parse_duration("5m1h").is_err());
        assert!(parse_duration("1.5h").is_err());
    }
}
