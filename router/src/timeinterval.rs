//! Alertmanager's `time_intervals` (and the deprecated `mute_time_intervals`): named sets of
//! times, weekdays, days of month, months and years in a time zone, used by routes to mute or to
//! limit notifications to a window.

use jiff::tz::TimeZone;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNamed {
    pub name: String,
    #[serde(default)]
    pub time_intervals: Vec<RawInterval>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInterval {
    pub times: Option<Vec<RawTimes>>,
    pub weekdays: Option<Vec<String>>,
    pub days_of_month: Option<Vec<String>>,
    pub months: Option<Vec<String>>,
    pub years: Option<Vec<String>>,
    pub location: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTimes {
    pub start_time: String,
    pub end_time: String,
}

/// One sub-interval: every field present must match.
#[derive(Debug, Clone)]
pub struct Interval {
    /// Minutes of the day, half-open `[start, end)`.
    times: Option<Vec<(u32, u32)>>,
    /// Sunday = 0, as Go's `time.Weekday`.
    weekdays: Option<Vec<(i32, i32)>>,
    days_of_month: Option<Vec<(i32, i32)>>,
    months: Option<Vec<(i32, i32)>>,
    years: Option<Vec<(i32, i32)>>,
    tz: TimeZone,
}

/// A named interval: any sub-interval matching is enough.
#[derive(Debug, Clone)]
pub struct TimeInterval {
    pub name: String,
    intervals: Vec<Interval>,
}

const WEEKDAYS: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];
const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

impl TimeInterval {
    pub fn build(raw: &RawNamed) -> Result<TimeInterval, String> {
        let mut intervals = Vec::new();
        for r in &raw.time_intervals {
            intervals.push(build_one(r).map_err(|e| format!("time interval {:?}: {e}", raw.name))?);
        }
        Ok(TimeInterval {
            name: raw.name.clone(),
            intervals,
        })
    }

    /// Whether the instant (Unix nanoseconds) lies in the interval.
    pub fn contains(&self, ns: i64) -> bool {
        self.intervals.iter().any(|i| i.contains(ns))
    }
}

fn build_one(r: &RawInterval) -> Result<Interval, String> {
    let tz = match r.location.as_deref() {
        None | Some("UTC") | Some("") => TimeZone::UTC,
        Some("Local") => TimeZone::system(),
        Some(name) => TimeZone::get(name).map_err(|e| format!("location {name:?}: {e}"))?,
    };
    let times = r
        .times
        .as_ref()
        .map(|ts| {
            ts.iter()
                .map(|t| {
                    let s = clock(&t.start_time)?;
                    let e = clock(&t.end_time)?;
                    if s >= e {
                        return Err(format!(
                            "start time {:?} must be before end time {:?}",
                            t.start_time, t.end_time
                        ));
                    }
                    Ok((s, e))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    let weekdays = ranges(&r.weekdays, |s| named(s, &WEEKDAYS, 0), "weekday")?;
    let days_of_month = ranges(
        &r.days_of_month,
        |s| {
            let d: i32 = s
                .parse()
                .map_err(|_| format!("invalid day of month {s:?}"))?;
            if d == 0 || !(-31..=31).contains(&d) {
                return Err(format!("day of month {d} out of range"));
            }
            Ok(d)
        },
        "day of month",
    )?;
    let months = ranges(&r.months, |s| named(s, &MONTHS, 1), "month")?;
    let years = ranges(
        &r.years,
        |s| s.parse().map_err(|_| format!("invalid year {s:?}")),
        "year",
    )?;
    Ok(Interval {
        times,
        weekdays,
        days_of_month,
        months,
        years,
        tz,
    })
}

/// `HH:MM`, `24:00` allowed.
fn clock(s: &str) -> Result<u32, String> {
    let bad = || format!("invalid time of day {s:?}");
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if m > 59 || h > 24 || (h == 24 && m != 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

/// A weekday or month by name (any case) or number.
fn named(s: &str, names: &[&str], base: i32) -> Result<i32, String> {
    let l = s.trim().to_ascii_lowercase();
    if let Some(i) = names.iter().position(|n| *n == l) {
        return Ok(i as i32 + base);
    }
    match l.parse::<i32>() {
        Ok(n) if base == 1 && (1..=12).contains(&n) => Ok(n),
        _ => Err(format!("{s:?} is not a valid name")),
    }
}

type Ranges = Option<Vec<(i32, i32)>>;

/// `a` or `a:b` (inclusive) for each element.
fn ranges(
    list: &Option<Vec<String>>,
    one: impl Fn(&str) -> Result<i32, String>,
    what: &str,
) -> Result<Ranges, String> {
    let Some(list) = list else { return Ok(None) };
    let mut out = Vec::new();
    for s in list {
        let (a, b) = match s.split_once(':') {
            Some((a, b)) => (one(a.trim())?, one(b.trim())?),
            None => {
                let v = one(s.trim())?;
                (v, v)
            }
        };
        if (a >= 0) == (b >= 0) && a > b {
            return Err(format!("{what} range {s:?}: start is after end"));
        }
        out.push((a, b));
    }
    Ok(Some(out))
}

impl Interval {
    fn contains(&self, ns: i64) -> bool {
        let Ok(ts) = jiff::Timestamp::from_nanosecond(i128::from(ns)) else {
            return false;
        };
        let z = ts.to_zoned(self.tz.clone());
        if let Some(times) = &self.times {
            let minute = u32::from(z.hour() as u8) * 60 + u32::from(z.minute() as u8);
            if !times.iter().any(|(s, e)| minute >= *s && minute < *e) {
                return false;
            }
        }
        let within = |rs: &Ranges, v: i32| {
            rs.as_ref()
                .is_none_or(|rs| rs.iter().any(|(a, b)| v >= *a && v <= *b))
        };
        if !within(
            &self.weekdays,
            i32::from(z.weekday().to_sunday_zero_offset()),
        ) {
            return false;
        }
        if let Some(days) = &self.days_of_month {
            let dim = i32::from(z.days_in_month());
            let day = i32::from(z.day());
            let hit = days.iter().any(|(b, e)| {
                let begin = if *b < 0 { dim + b + 1 } else { *b };
                let end = if *e < 0 { dim + e + 1 } else { *e };
                begin <= dim && day >= begin.clamp(-dim, dim) && day <= end.clamp(-dim, dim)
            });
            if !hit {
                return false;
            }
        }
        within(&self.months, i32::from(z.month())) && within(&self.years, i32::from(z.year()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(s: &str) -> i64 {
        let t: jiff::Timestamp = s.parse().expect("timestamp");
        t.as_nanosecond() as i64
    }

    fn interval(yaml: &str) -> TimeInterval {
        let raw: RawNamed = serde_saphyr::from_str(yaml).expect("yaml");
        TimeInterval::build(&raw).expect("valid")
    }

    #[test]
    fn business_hours_in_paris() {
        let ti = interval(
            "name: work\ntime_intervals:\n- times: [{start_time: '09:00', end_time: '17:00'}]\n  weekdays: ['monday:friday']\n  location: Europe/Paris\n",
        );
        // 2026-11-24 is a Tuesday; Paris is UTC+1 in November.
        assert!(ti.contains(ns("2026-11-24T08:00:00Z")));
        assert!(!ti.contains(ns("2026-11-24T07:59:00Z")));
        assert!(!ti.contains(ns("2026-11-24T16:00:00Z")));
        assert!(!ti.contains(ns("2026-11-29T10:00:00Z"))); // Sunday
    }

    #[test]
    fn negative_days_and_months() {
        let ti = interval(
            "name: eom\ntime_intervals:\n- days_of_month: ['-3:-1']\n  months: ['february', '11:12']\n",
        );
        assert!(ti.contains(ns("2026-11-28T12:00:00Z")));
        assert!(!ti.contains(ns("2026-11-27T12:00:00Z")));
        assert!(ti.contains(ns("2026-02-26T00:00:00Z")));
        assert!(!ti.contains(ns("2026-03-30T00:00:00Z")));
    }

    #[test]
    fn rejects_bad_fields() {
        for bad in [
            "name: x\ntime_intervals:\n- times: [{start_time: '10:00', end_time: '09:00'}]\n",
            "name: x\ntime_intervals:\n- weekdays: ['funday']\n",
            "name: x\ntime_intervals:\n- days_of_month: ['0']\n",
            "name: x\ntime_intervals:\n- location: Mars/Olympus\n",
        ] {
            let raw: RawNamed = serde_saphyr::from_str(bad).expect("yaml");
            assert!(TimeInterval::build(&raw).is_err(), "{bad}");
        }
    }
}
