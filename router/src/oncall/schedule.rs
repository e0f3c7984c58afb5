//! Who is on call: a schedule is rotation layers in one time zone, the highest layer that
//! applies at an instant wins, and overrides (ad-hoc cover) win over every layer.
//!
//! Rotations whose length is whole days hand off at the same local wall time every time, DST
//! or not (a weekly 09:00 hand-off stays at 09:00 in winter and summer); shorter rotations
//! (12h) are counted in absolute time.

use jiff::civil::{DateTime, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan, Zoned};

#[derive(Debug, Clone)]
pub struct Schedule {
    pub name: String,
    pub tz: TimeZone,
    pub tz_name: String,
    /// Lowest priority first.
    pub layers: Vec<Layer>,
    pub overrides: Vec<Override>,
}

#[derive(Debug, Clone)]
pub struct Layer {
    pub name: String,
    pub members: Vec<String>,
    /// The first shift starts here, local time.
    pub start: DateTime,
    pub rotation: Rotation,
    /// Empty: always. Otherwise the layer applies only inside one of these windows.
    pub restrictions: Vec<Restriction>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rotation {
    Days(i64),
    /// Seconds, for rotations that are not whole days.
    Seconds(i64),
}

/// A weekly window: on these days (the day it starts), from `start` to `end` local time;
/// `end <= start` runs past midnight into the next day.
#[derive(Debug, Clone)]
pub struct Restriction {
    pub days: Vec<Weekday>,
    pub start: Time,
    pub end: Time,
}

#[derive(Debug, Clone)]
pub struct Override {
    pub member: String,
    pub start: Timestamp,
    pub end: Timestamp,
}

/// Who is on call at an instant, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct OnCall {
    pub member: String,
    /// The layer's name, or `override`.
    pub source: String,
}

impl Schedule {
    pub fn who(&self, at: Timestamp) -> Option<OnCall> {
        if let Some(o) = self
            .overrides
            .iter()
            .rev()
            .find(|o| o.start <= at && at < o.end)
        {
            return Some(OnCall {
                member: o.member.clone(),
                source: "override".into(),
            });
        }
        let local = at.to_zoned(self.tz.clone());
        for l in self.layers.iter().rev() {
            if let Some(m) = l.member_at(&local)
                && l.admits(&local)
            {
                return Some(OnCall {
                    member: m.to_string(),
                    source: l.name.clone(),
                });
            }
        }
        None
    }

    /// The next instant after `at` (within `horizon`) when `who` changes, and who it becomes.
    /// Found by walking the candidate instants: shift boundaries, restriction edges, overrides.
    pub fn next_change(
        &self,
        at: Timestamp,
        horizon: jiff::SignedDuration,
    ) -> Option<(Timestamp, Option<OnCall>)> {
        let now = self.who(at);
        let end = at.checked_add(horizon).ok()?;
        let mut candidates: Vec<Timestamp> = Vec::new();
        for o in &self.overrides {
            candidates.extend([o.start, o.end]);
        }
        let local = at.to_zoned(self.tz.clone());
        for l in &self.layers {
            candidates.extend(l.boundaries(&local, end, &self.tz));
        }
        candidates.retain(|t| *t > at && *t <= end);
        candidates.sort();
        candidates.dedup();
        candidates
            .into_iter()
            .map(|t| (t, self.who(t)))
            .find(|(_, w)| *w != now)
    }
}

impl Layer {
    /// The shift's member at this local instant; `None` before the first shift.
    pub fn member_at(&self, local: &Zoned) -> Option<&str> {
        if self.members.is_empty() {
            return None;
        }
        let shift = self.shift_index(local)?;
        let i = shift.rem_euclid(self.members.len() as i64) as usize;
        Some(self.members[i].as_str())
    }

    fn shift_index(&self, local: &Zoned) -> Option<i64> {
        let start = self.start.to_zoned(local.time_zone().clone()).ok()?;
        if local.timestamp() < start.timestamp() {
            return None;
        }
        match self.rotation {
            Rotation::Days(n) => {
                // Whole local days since the start, counting a day only once its hand-off has
                // passed. The hand-off is an instant: in the hour a DST night repeats, the
                // repeated times after it do not count as before it again.
                let days = (local.date() - self.start.date()).get_days() as i64;
                let handoff = local
                    .date()
                    .to_datetime(self.start.time())
                    .to_zoned(local.time_zone().clone())
                    .ok()?;
                let before_handoff = local.timestamp() < handoff.timestamp();
                let d = days - i64::from(before_handoff);
                Some(d.div_euclid(n))
            }
            Rotation::Seconds(s) => {
                let el = local.timestamp().as_second() - start.timestamp().as_second();
                Some(el.div_euclid(s))
            }
        }
    }

    /// Does a restriction window (if any) contain this instant?
    pub fn admits(&self, local: &Zoned) -> bool {
        if self.restrictions.is_empty() {
            return true;
        }
        let (day, t) = (local.weekday(), local.time());
        let yesterday = day.previous();
        self.restrictions.iter().any(|r| {
            if r.start < r.end {
                r.days.contains(&day) && r.start <= t && t < r.end
            } else {
                // Past midnight: the part after start today, or before end on the day after.
                (r.days.contains(&day) && t >= r.start)
                    || (r.days.contains(&yesterday) && t < r.end)
            }
        })
    }

    /// Shift starts and restriction edges between `from` and `until`.
    fn boundaries(&self, from: &Zoned, until: Timestamp, tz: &TimeZone) -> Vec<Timestamp> {
        let mut out = Vec::new();
        let Ok(start) = self.start.to_zoned(tz.clone()) else {
            return out;
        };
        out.push(start.timestamp());
        match self.rotation {
            Rotation::Days(_) | Rotation::Seconds(86_400) => {
                // Every local day at the hand-off time covers shift starts of day rotations.
                let mut day = from.date().yesterday().unwrap_or(from.date());
                while let Ok(z) = day.to_datetime(self.start.time()).to_zoned(tz.clone()) {
                    if z.timestamp() > until {
                        break;
                    }
                    out.push(z.timestamp());
                    for r in &self.restrictions {
                        for t in [r.start, r.end] {
                            if let Ok(e) = day.to_datetime(t).to_zoned(tz.clone()) {
                                out.push(e.timestamp());
                            }
                        }
                    }
                    match day.tomorrow() {
                        Ok(d) => day = d,
                        Err(_) => break,
                    }
                }
            }
            Rotation::Seconds(s) => {
                let base = start.timestamp().as_second();
                let now = from.timestamp().as_second();
                let mut k = (now - base).div_euclid(s);
                loop {
                    let t = base + k * s;
                    let Ok(ts) = Timestamp::from_second(t) else {
                        break;
                    };
                    if ts > until {
                        break;
                    }
                    out.push(ts);
                    k += 1;
                }
                let mut day = from.date();
                while let Ok(z) = day.to_datetime(Time::midnight()).to_zoned(tz.clone()) {
                    if z.timestamp() > until {
                        break;
                    }
                    for r in &self.restrictions {
                        for t in [r.start, r.end] {
                            if let Ok(e) = day.to_datetime(t).to_zoned(tz.clone()) {
                                out.push(e.timestamp());
                            }
                        }
                    }
                    match day.checked_add(1.day()) {
                        Ok(d) => day = d,
                        Err(_) => break,
                    }
                }
            }
        }
        out
    }
}

pub fn parse_weekday(s: &str) -> Option<Weekday> {
    Some(match s.to_ascii_lowercase().get(..3)? {
        "mon" => Weekday::Monday,
        "tue" => Weekday::Tuesday,
        "wed" => Weekday::Wednesday,
        "thu" => Weekday::Thursday,
        "fri" => Weekday::Friday,
        "sat" => Weekday::Saturday,
        "sun" => Weekday::Sunday,
        _ => return None,
    })
}

#[cfg(test)]
pub(crate) mod tests;
