//! Float spelling exactly as Go's `expfmt` writes it.
//!
//! Text 0.0.4 uses `strconv.FormatFloat(v, 'g', -1, 64)`: shortest round-trip digits, exponent
//! form when the decimal exponent is < -4 or >= 6 (`1.925173784e+09`, `5.894e-05`). OpenMetrics
//! uses the same digits and appends `.0` to integral values (`7200.0`).

use std::fmt::Write;

/// Appends `v` as Go's text format writes it.
pub fn write_go(out: &mut Vec<u8>, v: f64) {
    if v == 0.0 {
        out.push(b'0');
    } else if v.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if v.is_infinite() {
        out.extend_from_slice(if v > 0.0 { b"+Inf" } else { b"-Inf" });
    } else if v.fract() == 0.0 && v.abs() < 9007199254740992.0 {
        // Integers below 2^53 (most counters and gauges) are exact: their shortest round-trip
        // digits are their decimal digits without trailing zeros, no float formatting needed.
        let mut buf = itoa_buf();
        let digits = fmt_i64(&mut buf, v as i64);
        let (sign, digits) = match digits.split_first() {
            Some((b'-', rest)) => (true, rest),
            _ => (false, digits),
        };
        if sign {
            out.push(b'-');
        }
        if digits.len() <= 6 {
            out.extend_from_slice(digits);
        } else {
            let exp = digits.len() - 1;
            let end = digits.iter().rposition(|&d| d != b'0').map_or(1, |i| i + 1);
            out.push(digits[0]);
            if end > 1 {
                out.push(b'.');
                out.extend_from_slice(&digits[1..end]);
            }
            out.extend_from_slice(b"e+");
            if exp < 10 {
                out.push(b'0');
            }
            let mut eb = itoa_buf();
            out.extend_from_slice(fmt_i64(&mut eb, exp as i64));
        }
    } else {
        write_general(out, v);
    }
}

/// Appends `v` as Go's OpenMetrics writer does: integral values get a `.0`.
pub fn write_openmetrics(out: &mut Vec<u8>, v: f64) {
    let start = out.len();
    write_go(out, v);
    if v.is_finite() && !out[start..].iter().any(|&b| b == b'.' || b == b'e') {
        out.extend_from_slice(b".0");
    }
}

/// Formats `v` as Go's `strconv.FormatFloat(v, 'g', -1, 64)`.
pub fn go_string(v: f64) -> String {
    let mut out = Vec::with_capacity(24);
    write_go(&mut out, v);
    String::from_utf8(out).unwrap_or_default()
}

fn write_general(out: &mut Vec<u8>, v: f64) {
    // Rust's `{:e}` gives the shortest round-trip digits, like Go's shortest mode.
    let mut s = String::with_capacity(32);
    let _ = write!(s, "{v:e}");
    let (mantissa, exp) = match s.split_once('e') {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (s.as_str(), 0),
    };
    let (neg, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    if neg {
        out.push(b'-');
    }
    if !(-4..6).contains(&exp) {
        out.extend_from_slice(mantissa.as_bytes());
        out.push(b'e');
        out.push(if exp < 0 { b'-' } else { b'+' });
        let e = exp.unsigned_abs();
        if e < 10 {
            out.push(b'0');
        }
        out.extend_from_slice(e.to_string().as_bytes());
        return;
    }
    let digits: Vec<u8> = mantissa.bytes().filter(|b| *b != b'.').collect();
    if exp < 0 {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', (-exp - 1) as usize));
        out.extend_from_slice(&digits);
    } else {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            out.extend_from_slice(&digits);
            out.extend(std::iter::repeat_n(b'0', int_len - digits.len()));
        } else {
            out.extend_from_slice(&digits[..int_len]);
            out.push(b'.');
            out.extend_from_slice(&digits[int_len..]);
        }
    }
}

fn itoa_buf() -> [u8; 24] {
    [0u8; 24]
}

fn fmt_i64(buf: &mut [u8; 24], v: i64) -> &[u8] {
    let neg = v < 0;
    let mut n = v.unsigned_abs();
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if neg {
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn om(v: f64) -> String {
        let mut out = Vec::new();
        write_openmetrics(&mut out, v);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn matches_go_strconv_g_shortest() {
        // Values taken from node_exporter's output and Go's strconv documentation.
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "0"),
            (1.0, "1"),
            (-1.0, "-1"),
            (802104.0, "802104"),
            (999999.0, "999999"),
            (1e6, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (2466186.0, "2.466186e+06"),
            (2.70553174016e11, "2.70553174016e+11"),
            (1925173784.0, "1.925173784e+09"),
            (0.000294009, "0.000294009"),
            (5.894e-05, "5.894e-05"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (18446744073709551615.0, "1.8446744073709552e+19"),
            (444.9, "444.9"),
            (0.1, "0.1"),
            (-0.5, "-0.5"),
            (123456.5, "123456.5"),
            (-1234567.0, "-1.234567e+06"),
            (1e100, "1e+100"),
            (9007199254740991.0, "9.007199254740991e+15"),
            (9007199254740992.0, "9.007199254740992e+15"),
            (-2500000.0, "-2.5e+06"),
            (10000000.0, "1e+07"),
            (270553174016.0, "2.70553174016e+11"),
            (5e-324, "5e-324"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (-125000.0, "-125000"),
        ];
        for (v, want) in cases {
            assert_eq!(go_string(*v), *want, "formatting {v:?}");
        }
    }

    #[test]
    fn openmetrics_marks_integers() {
        assert_eq!(om(1.0), "1.0");
        assert_eq!(om(0.0), "0.0");
        assert_eq!(om(7200.0), "7200.0");
        assert_eq!(om(1e6), "1e+06");
        assert_eq!(om(0.25), "0.25");
        assert_eq!(om(f64::NAN), "NaN");
        assert_eq!(om(f64::INFINITY), "+Inf");
    }
}
