//! The `timestamp` stage: Promtail's named formats (`RFC3339`, `Unix`, `UnixMs`…) and Go
//! reference layouts (`2006-01-02 15:04:05.000 MST`), parsed here the way Go's `time.Parse`
//! reads them, with `location` for layouts that carry no zone.

/// A parsed format: a Unix epoch unit or a Go layout.
#[derive(Debug, Clone)]
pub enum Format {
    Unix,
    UnixMs,
    UnixUs,
    UnixNs,
    Layout(Vec<Tok>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Lit(String),
    LongMonth,
    Month,
    NumMonth,
    ZeroMonth,
    LongWeekDay,
    WeekDay,
    Day,
    UnderDay,
    ZeroDay,
    YearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    LongYear,
    Year,
    PM,
    Pm,
    TZ,
    /// `-0700`-like numeric zone; `z` says whether `Z` stands for UTC.
    NumTZ {
        colon: bool,
        seconds: bool,
        hours_only: bool,
        z: bool,
    },
    /// `.000` (fixed digits) or `.999` (optional, trimmed).
    Frac {
        digits: usize,
    },
}

pub fn named(format: &str) -> &str {
    match format {
        "ANSIC" => "Mon Jan _2 15:04:05 2006",
        "UnixDate" => "Mon Jan _2 15:04:05 MST 2006",
        "RubyDate" => "Mon Jan 02 15:04:05 -0700 2006",
        "RFC822" => "02 Jan 06 15:04 MST",
        "RFC822Z" => "02 Jan 06 15:04 -0700",
        "RFC850" => "Monday, 02-Jan-06 15:04:05 MST",
        "RFC1123" => "Mon, 02 Jan 2006 15:04:05 MST",
        "RFC1123Z" => "Mon, 02 Jan 2006 15:04:05 -0700",
        "RFC3339" => "2006-01-02T15:04:05Z07:00",
        "RFC3339Nano" => "2006-01-02T15:04:05.999999999Z07:00",
        "Kitchen" => "3:04PM",
        "Stamp" => "Jan _2 15:04:05",
        "StampMilli" => "Jan _2 15:04:05.000",
        "StampMicro" => "Jan _2 15:04:05.000000",
        "StampNano" => "Jan _2 15:04:05.000000000",
        other => other,
    }
}

impl Format {
    pub fn new(format: &str) -> Result<Format, String> {
        Ok(match format {
            "Unix" => Format::Unix,
            "UnixMs" => Format::UnixMs,
            "UnixUs" => Format::UnixUs,
            "UnixNs" => Format::UnixNs,
            f => {
                let toks = tokenize(named(f));
                if !toks.iter().any(|t| !matches!(t, Tok::Lit(_))) {
                    return Err(format!("format {f:?}: not a Go time layout"));
                }
                Format::Layout(toks)
            }
        })
    }

    /// Nanoseconds since the epoch; `tz` is used when the value carries no zone, `now` fills a
    /// missing year.
    pub fn parse(&self, v: &str, tz: Option<&jiff::tz::TimeZone>, now_year: i16) -> Option<i64> {
        let v = v.trim();
        match self {
            Format::Unix => {
                if let Some((s, f)) = v.split_once('.') {
                    let secs: i64 = s.parse().ok()?;
                    let mut frac = f.to_string();
                    frac.truncate(9);
                    while frac.len() < 9 {
                        frac.push('0');
                    }
                    Some(secs.checked_mul(1_000_000_000)? + frac.parse::<i64>().ok()?)
                } else {
                    v.parse::<i64>().ok()?.checked_mul(1_000_000_000)
                }
            }
            Format::UnixMs => v.parse::<i64>().ok()?.checked_mul(1_000_000),
            Format::UnixUs => v.parse::<i64>().ok()?.checked_mul(1_000),
            Format::UnixNs => v.parse::<i64>().ok(),
            Format::Layout(toks) => parse_layout(toks, v, tz, now_year),
        }
    }
}

fn tokenize(layout: &str) -> Vec<Tok> {
    const TABLE: &[(&str, Tok)] = &[
        ("January", Tok::LongMonth),
        ("Jan", Tok::Month),
        ("Monday", Tok::LongWeekDay),
        ("Mon", Tok::WeekDay),
        ("MST", Tok::TZ),
        ("2006", Tok::LongYear),
        ("002", Tok::YearDay),
        ("01", Tok::ZeroMonth),
        ("02", Tok::ZeroDay),
        ("03", Tok::ZeroHour12),
        ("04", Tok::ZeroMinute),
        ("05", Tok::ZeroSecond),
        ("06", Tok::Year),
        ("15", Tok::Hour),
        ("_2", Tok::UnderDay),
        ("PM", Tok::PM),
        ("pm", Tok::Pm),
    ];
    let mut out: Vec<Tok> = Vec::new();
    let b = layout.as_bytes();
    let mut i = 0;
    let mut lit = String::new();
    let push_lit = |lit: &mut String, out: &mut Vec<Tok>| {
        if !lit.is_empty() {
            out.push(Tok::Lit(std::mem::take(lit)));
        }
    };
    'outer: while i < b.len() {
        let rest = &layout[i..];
        // Numeric zones, longest first.
        for (pat, colon, seconds, hours_only) in [
            ("-07:00:00", true, true, false),
            ("-070000", false, true, false),
            ("-07:00", true, false, false),
            ("-0700", false, false, false),
            ("-07", false, false, true),
        ] {
            for z in [true, false] {
                let p = if z {
                    format!("Z{}", &pat[1..])
                } else {
                    pat.to_string()
                };
                if rest.starts_with(&p) {
                    push_lit(&mut lit, &mut out);
                    out.push(Tok::NumTZ {
                        colon,
                        seconds,
                        hours_only,
                        z,
                    });
                    i += p.len();
                    continue 'outer;
                }
            }
        }
        if (rest.starts_with(".0")
            || rest.starts_with(".9")
            || rest.starts_with(",0")
            || rest.starts_with(",9"))
            && matches!(out.last(), Some(Tok::ZeroSecond | Tok::Second))
            && lit.is_empty()
        {
            let digit = b[i + 1];
            let n = rest[1..].bytes().take_while(|c| *c == digit).count();
            let after = rest.as_bytes().get(1 + n);
            if !after.is_some_and(u8::is_ascii_digit) {
                out.push(Tok::Frac {
                    digits: if digit == b'0' { n } else { 0 },
                });
                i += 1 + n;
                continue;
            }
        }
        for (pat, tok) in TABLE {
            if rest.starts_with(pat) {
                // `Jan`/`Mon` only when not the start of a longer word handled above.
                push_lit(&mut lit, &mut out);
                out.push(tok.clone());
                i += pat.len();
                continue 'outer;
            }
        }
        let single = match b[i] {
            b'1' => Some(Tok::NumMonth),
            b'2' => Some(Tok::Day),
            b'3' => Some(Tok::Hour12),
            b'4' => Some(Tok::Minute),
            b'5' => Some(Tok::Second),
            _ => None,
        };
        if let Some(t) = single {
            push_lit(&mut lit, &mut out);
            out.push(t);
            i += 1;
            continue;
        }
        let ch = rest.chars().next().unwrap_or(' ');
        lit.push(ch);
        i += ch.len_utf8();
    }
    push_lit(&mut lit, &mut out);
    out
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

fn digits(v: &str, min: usize, max: usize) -> Option<(i64, &str)> {
    let n = v.bytes().take(max).take_while(u8::is_ascii_digit).count();
    if n < min {
        return None;
    }
    Some((v[..n].parse().ok()?, &v[n..]))
}

fn prefix_word<'a>(v: &'a str, words: &[&str], short: bool) -> Option<(usize, &'a str)> {
    for (i, w) in words.iter().enumerate() {
        let w = if short { &w[..3] } else { w };
        if v.len() >= w.len() && v[..w.len()].eq_ignore_ascii_case(w) {
            return Some((i, &v[w.len()..]));
        }
    }
    None
}

fn parse_layout(
    toks: &[Tok],
    mut v: &str,
    tz: Option<&jiff::tz::TimeZone>,
    now_year: i16,
) -> Option<i64> {
    let (mut year, mut month, mut day) = (None::<i64>, 1i64, 1i64);
    let (mut hour, mut min, mut sec, mut nanos) = (0i64, 0i64, 0i64, 0i64);
    let mut pm: Option<bool> = None;
    let mut offset: Option<i64> = None;
    let mut yday: Option<i64> = None;
    for (idx, t) in toks.iter().enumerate() {
        match t {
            Tok::Lit(l) => {
                // Go allows the value's spaces to differ for padded fields.
                v = v.strip_prefix(l.as_str())?;
            }
            Tok::LongMonth => {
                (month, v) = prefix_word(v, &MONTHS, false).map(|(m, r)| (m as i64 + 1, r))?
            }
            Tok::Month => {
                (month, v) = prefix_word(v, &MONTHS, true).map(|(m, r)| (m as i64 + 1, r))?
            }
            Tok::LongWeekDay => v = prefix_word(v, &DAYS, false)?.1,
            Tok::WeekDay => v = prefix_word(v, &DAYS, true)?.1,
            Tok::NumMonth => (month, v) = digits(v, 1, 2)?,
            Tok::ZeroMonth => (month, v) = digits(v, 2, 2)?,
            Tok::Day => (day, v) = digits(v, 1, 2)?,
            Tok::UnderDay => {
                v = v.strip_prefix(' ').unwrap_or(v);
                (day, v) = digits(v, 1, 2)?;
            }
            Tok::ZeroDay => (day, v) = digits(v, 2, 2)?,
            Tok::YearDay => {
                let (d, r) = digits(v, 3, 3)?;
                yday = Some(d);
                v = r;
            }
            Tok::Hour => (hour, v) = digits(v, 1, 2)?,
            Tok::Hour12 => (hour, v) = digits(v, 1, 2)?,
            Tok::ZeroHour12 => (hour, v) = digits(v, 2, 2)?,
            Tok::Minute => (min, v) = digits(v, 1, 2)?,
            Tok::ZeroMinute => (min, v) = digits(v, 2, 2)?,
            Tok::Second | Tok::ZeroSecond => {
                (sec, v) = digits(v, if *t == Tok::Second { 1 } else { 2 }, 2)?;
                // Go reads a fraction after the seconds even when the layout has none.
                if !matches!(toks.get(idx + 1), Some(Tok::Frac { .. }))
                    && (v.starts_with('.') || v.starts_with(','))
                    && v[1..].starts_with(|c: char| c.is_ascii_digit())
                {
                    let n = v[1..].bytes().take_while(u8::is_ascii_digit).count();
                    nanos = frac_nanos(&v[1..1 + n]);
                    v = &v[1 + n..];
                }
            }
            Tok::Frac { digits: want } => {
                if let Some(r) = v.strip_prefix('.').or_else(|| v.strip_prefix(',')) {
                    let n = r.bytes().take_while(u8::is_ascii_digit).count();
                    if *want > 0 && n != *want {
                        return None;
                    }
                    nanos = frac_nanos(&r[..n]);
                    v = &r[n..];
                } else if *want > 0 {
                    return None;
                }
            }
            Tok::LongYear => {
                let (y, r) = digits(v, 4, 4)?;
                year = Some(y);
                v = r;
            }
            Tok::Year => {
                let (y, r) = digits(v, 2, 2)?;
                year = Some(if y >= 69 { 1900 + y } else { 2000 + y });
                v = r;
            }
            Tok::PM | Tok::Pm => {
                let p = v.get(..2)?;
                pm = Some(match p.to_ascii_uppercase().as_str() {
                    "PM" => true,
                    "AM" => false,
                    _ => return None,
                });
                v = &v[2..];
            }
            Tok::TZ => {
                let n = v
                    .bytes()
                    .take_while(|c| {
                        c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b'+' || *c == b'-'
                    })
                    .count();
                if n < 1 {
                    return None;
                }
                let name = &v[..n];
                if matches!(name, "UTC" | "GMT" | "Z") {
                    offset = Some(0);
                } else if let Some(rest) = name
                    .strip_prefix("GMT")
                    .or_else(|| name.strip_prefix("UTC"))
                    && let Ok(h) = rest.parse::<i64>()
                {
                    offset = Some(h * 3600);
                }
                v = &v[n..];
            }
            Tok::NumTZ {
                colon,
                seconds,
                hours_only,
                z,
            } => {
                if *z && let Some(r) = v.strip_prefix('Z') {
                    offset = Some(0);
                    v = r;
                    continue;
                }
                let sign = match v.as_bytes().first()? {
                    b'+' => 1,
                    b'-' => -1,
                    _ => return None,
                };
                let mut r = &v[1..];
                let (h, rr) = digits(r, 2, 2)?;
                r = rr;
                let mut m = 0;
                let mut s = 0;
                if !hours_only {
                    if *colon {
                        r = r.strip_prefix(':')?;
                    }
                    (m, r) = digits(r, 2, 2)?;
                    if *seconds {
                        if *colon {
                            r = r.strip_prefix(':')?;
                        }
                        (s, r) = digits(r, 2, 2)?;
                    }
                }
                offset = Some(sign * (h * 3600 + m * 60 + s));
                v = r;
            }
        }
    }
    if !v.is_empty() {
        return None;
    }
    match pm {
        Some(true) if hour < 12 => hour += 12,
        Some(false) if hour == 12 => hour = 0,
        _ => {}
    }
    let year = year.unwrap_or(i64::from(now_year));
    let mut date = jiff::civil::Date::new(
        i16::try_from(year).ok()?,
        i8::try_from(month).ok()?,
        i8::try_from(day).ok()?,
    )
    .ok()?;
    if let Some(d) = yday {
        date = jiff::civil::Date::new(date.year(), 1, 1)
            .ok()?
            .checked_add(jiff::Span::new().days(d - 1))
            .ok()?;
    }
    let dt = date.at(
        i8::try_from(hour).ok()?,
        i8::try_from(min).ok()?,
        i8::try_from(sec).ok()?,
        i32::try_from(nanos).ok()?,
    );
    let ts = match offset {
        Some(off) => {
            let o = jiff::tz::Offset::from_seconds(i32::try_from(off).ok()?).ok()?;
            o.to_timestamp(dt).ok()?
        }
        None => match tz {
            Some(tz) => tz.to_ambiguous_timestamp(dt).compatible().ok()?,
            None => jiff::tz::Offset::UTC.to_timestamp(dt).ok()?,
        },
    };
    i64::try_from(ts.as_nanosecond()).ok()
}

fn frac_nanos(d: &str) -> i64 {
    let mut s = d.to_string();
    s.truncate(9);
    while s.len() < 9 {
        s.push('0');
    }
    s.parse().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(fmt: &str, v: &str) -> Option<i64> {
        Format::new(fmt).expect("format").parse(v, None, 2026)
    }

    #[test]
    fn named_and_unix_formats() {
        assert_eq!(
            p("RFC3339", "2026-11-24T10:00:00Z"),
            Some(1_795_514_400_000_000_000)
        );
        assert_eq!(
            p("RFC3339Nano", "2026-11-24T11:00:00.5+01:00"),
            Some(1_795_514_400_500_000_000)
        );
        assert_eq!(
            p("RFC3339", "2026-11-24T10:00:00.25Z"),
            Some(1_795_514_400_250_000_000)
        );
        assert_eq!(p("Unix", "1795514400.25"), Some(1_795_514_400_250_000_000));
        assert_eq!(
            p("UnixMs", "1795514400250"),
            Some(1_795_514_400_250_000_000)
        );
        assert_eq!(
            p("UnixNs", "1795514400250000001"),
            Some(1_795_514_400_250_000_001)
        );
        assert_eq!(
            p("RFC1123Z", "Tue, 24 Nov 2026 10:00:00 +0000"),
            Some(1_795_514_400_000_000_000)
        );
        assert_eq!(
            p("Stamp", "Nov 24 10:00:00"),
            Some(1_795_514_400_000_000_000)
        );
        assert_eq!(
            p("Stamp", "Nov  4 10:00:00"),
            Some(1_793_786_400_000_000_000)
        );
        assert_eq!(p("RFC3339", "garbage"), None);
    }

    #[test]
    fn go_layouts_with_zone_and_location() {
        assert_eq!(
            p("2006-01-02 15:04:05.000", "2026-11-24 10:00:00.123"),
            Some(1_795_514_400_123_000_000)
        );
        assert_eq!(
            p("02/Jan/2006:15:04:05 -0700", "24/Nov/2026:11:00:00 +0100"),
            Some(1_795_514_400_000_000_000)
        );
        assert_eq!(p("3:04PM", "10:00PM"), Some(1_767_304_800_000_000_000));
        let paris = jiff::tz::TimeZone::get("Europe/Paris").expect("tz");
        let f = Format::new("2006-01-02 15:04:05").expect("f");
        assert_eq!(
            f.parse("2026-11-24 11:00:00", Some(&paris), 2026),
            Some(1_795_514_400_000_000_000)
        );
    }
}
