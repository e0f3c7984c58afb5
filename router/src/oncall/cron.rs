//! Cron expressions for notices: `sec min hour day-of-month month day-of-week`, or the five
//! fields without seconds; `*`, lists, ranges, steps and month/day names. The next time is
//! found in the notice's time zone on civil time, so `0 0 9 * * *` is 09:00 local summer and
//! winter alike; a time skipped by a DST jump fires at the first instant after it.
//!
//! Why not tokio-cron-scheduler: it runs jobs on the system clock (the escalation and notice
//! tests run on Tokio's paused clock) and brings chrono and chrono-tz beside jiff.

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

#[derive(Debug, Clone, PartialEq)]
pub struct Cron {
    seconds: Vec<bool>,
    minutes: Vec<bool>,
    hours: Vec<bool>,
    days: Vec<bool>,
    months: Vec<bool>,
    weekdays: Vec<bool>,
    /// Both day fields restricted: either may match (cron's rule).
    day_or: bool,
}

const MONTHS: &[&str] = &[
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

fn field(s: &str, min: u32, max: u32, names: &[&str], name_base: u32) -> Result<Vec<bool>, String> {
    let mut set = vec![false; max as usize + 1];
    let value = |v: &str| -> Result<u32, String> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(v)) {
            return Ok(i as u32 + name_base);
        }
        v.parse::<u32>()
            .map_err(|_| format!("{v:?} is not a number"))
    };
    for part in s.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, st)) => (
                r,
                st.parse::<u32>()
                    .map_err(|_| format!("bad step in {part:?}"))?,
            ),
            None => (part, 1),
        };
        if step == 0 {
            return Err(format!("step 0 in {part:?}"));
        }
        let (lo, hi) = if range == "*" || range == "?" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a)?, value(b)?)
        } else {
            let v = value(range)?;
            (v, if part.contains('/') { max } else { v })
        };
        if lo < min || hi > max || lo > hi {
            return Err(format!("{part:?} is outside {min}-{max}"));
        }
        let mut v = lo;
        while v <= hi {
            set[v as usize] = true;
            v += step;
        }
    }
    Ok(set)
}

impl Cron {
    pub fn parse(expr: &str) -> Result<Cron, String> {
        let f: Vec<&str> = expr.split_whitespace().collect();
        let f: Vec<&str> = match f.len() {
            5 => std::iter::once("0").chain(f).collect(),
            6 => f,
            n => return Err(format!("{n} fields; cron takes 5 or 6")),
        };
        let mut weekdays = field(f[5], 0, 7, DAYS, 0)?;
        if weekdays[7] {
            weekdays[0] = true;
        }
        weekdays.truncate(7);
        Ok(Cron {
            seconds: field(f[0], 0, 59, &[], 0)?,
            minutes: field(f[1], 0, 59, &[], 0)?,
            hours: field(f[2], 0, 23, &[], 0)?,
            days: field(f[3], 1, 31, &[], 0)?,
            months: field(f[4], 1, 12, MONTHS, 1)?,
            weekdays,
            day_or: !matches!(f[3], "*" | "?") && !matches!(f[5], "*" | "?"),
        })
    }

    fn day_matches(&self, dt: &DateTime) -> bool {
        let dom = self.days[dt.day() as usize];
        let dow = self.weekdays[dt.weekday().to_sunday_zero_offset() as usize];
        if self.day_or { dom || dow } else { dom && dow }
    }

    /// The first matching instant strictly after `after`, within about four years.
    pub fn next(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let local = after.to_zoned(tz.clone()).datetime();
        let mut dt = local
            .checked_add(1.second())
            .ok()?
            .with()
            .subsec_nanosecond(0)
            .build()
            .ok()?;
        let limit = local.checked_add(1461.days()).ok()?;
        while dt < limit {
            if !self.months[dt.month() as usize] {
                dt = dt
                    .first_of_month()
                    .checked_add(1.month())
                    .ok()?
                    .with()
                    .hour(0)
                    .minute(0)
                    .second(0)
                    .build()
                    .ok()?;
                continue;
            }
            if !self.day_matches(&dt) {
                dt = dt
                    .date()
                    .tomorrow()
                    .ok()?
                    .to_datetime(jiff::civil::Time::midnight());
                continue;
            }
            if !self.hours[dt.hour() as usize] {
                dt = dt
                    .with()
                    .minute(0)
                    .second(0)
                    .build()
                    .ok()?
                    .checked_add(1.hour())
                    .ok()?;
                continue;
            }
            if !self.minutes[dt.minute() as usize] {
                dt = dt
                    .with()
                    .second(0)
                    .build()
                    .ok()?
                    .checked_add(1.minute())
                    .ok()?;
                continue;
            }
            if !self.seconds[dt.second() as usize] {
                dt = dt.checked_add(1.second()).ok()?;
                continue;
            }
            // A local time skipped by DST resolves to the instant after the gap.
            let t = dt.to_zoned(tz.clone()).ok()?.timestamp();
            if t > after {
                return Some(t);
            }
            dt = dt.checked_add(1.second()).ok()?;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn daily_at_nine_local_across_dst() {
        let paris = TimeZone::get("Europe/Paris").unwrap();
        let c = Cron::parse("0 0 9 * * *").unwrap();
        // Winter: UTC+1.
        assert_eq!(
            c.next(ts("2026-03-27T12:00:00Z"), &paris),
            Some(ts("2026-03-28T08:00:00Z"))
        );
        // After the spring jump (29 March 2026): UTC+2, still 09:00 local.
        assert_eq!(
            c.next(ts("2026-03-28T08:00:00Z"), &paris),
            Some(ts("2026-03-29T07:00:00Z"))
        );
        assert_eq!(
            c.next(ts("2026-03-29T07:00:00Z"), &paris),
            Some(ts("2026-03-30T07:00:00Z"))
        );
    }

    #[test]
    fn fields_lists_ranges_steps_names() {
        let utc = TimeZone::UTC;
        let c = Cron::parse("*/15 9-17 * * mon-fri").unwrap();
        // Friday 17:50 → Monday 09:00.
        assert_eq!(
            c.next(ts("2026-11-27T17:50:00Z"), &utc),
            Some(ts("2026-11-30T09:00:00Z"))
        );
        let c = Cron::parse("30 2 * * *").unwrap();
        let paris = TimeZone::get("Europe/Paris").unwrap();
        // 02:30 does not exist on 29 March 2026 in Paris: the first instant after the gap.
        assert_eq!(
            c.next(ts("2026-03-28T12:00:00Z"), &paris),
            Some(ts("2026-03-29T01:30:00Z"))
        );
        assert!(Cron::parse("61 * * * *").is_err());
        assert!(Cron::parse("* * *").is_err());
        assert_eq!(
            Cron::parse("0 12 1 jan *")
                .unwrap()
                .next(ts("2026-06-01T00:00:00Z"), &utc),
            Some(ts("2027-01-01T12:00:00Z"))
        );
    }
}
