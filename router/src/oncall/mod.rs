//! On-call: people and their contact points, schedules (rotation layers, restrictions,
//! overrides, in a time zone), escalation policies, signed acknowledgement links, and cron
//! notices (hand-off, daily digest). Configured under the top-level `oncall:` key of the
//! router's file; a receiver with `escalation: <policy>` pages through a policy.

pub mod cron;
pub mod escalation;
pub mod link;
pub mod notices;
pub mod schedule;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use jiff::Timestamp;
use jiff::civil::{DateTime, Time};
use jiff::tz::TimeZone;
use serde::Deserialize;

use crate::config::{Dur, dur};
use schedule::{Layer, Override, Restriction, Rotation, Schedule};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOnCall {
    /// The key signing acknowledgement links (`${ENV}` allowed), or a file holding it.
    pub ack_secret: Option<String>,
    pub ack_secret_file: Option<String>,
    /// How long an acknowledgement link stays valid (default 24h).
    pub link_ttl: Option<Dur>,
    #[serde(default)]
    pub people: BTreeMap<String, RawPerson>,
    #[serde(default)]
    pub schedules: Vec<RawSchedule>,
    #[serde(default)]
    pub escalation_policies: Vec<RawPolicy>,
    #[serde(default)]
    pub notices: Vec<RawNotice>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPerson {
    pub phone: Option<String>,
    pub email: Option<String>,
    /// How chat messages mention the person (`@alice`, `<@U123>`).
    pub chat: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSchedule {
    pub name: String,
    pub time_zone: Option<String>,
    #[serde(default)]
    pub layers: Vec<RawLayer>,
    #[serde(default)]
    pub overrides: Vec<RawOverride>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLayer {
    pub name: Option<String>,
    pub members: Vec<String>,
    /// The first hand-off, local time: `2026-11-02T09:00`.
    pub start: String,
    /// Shift length: `1w`, `1d`, `12h`.
    pub rotation: Dur,
    #[serde(default)]
    pub restrictions: Vec<RawRestriction>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRestriction {
    /// `mon`…`sun`; all days when empty.
    #[serde(default)]
    pub days: Vec<String>,
    pub start: String,
    pub end: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOverride {
    pub member: String,
    /// Local time in the schedule's zone, or RFC 3339 with an offset.
    pub start: String,
    pub end: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    pub name: String,
    /// How many more times the whole policy runs after its last step (default 0).
    #[serde(default)]
    pub repeat: u32,
    pub steps: Vec<RawStep>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    pub notify: Vec<RawTarget>,
    /// The receiver whose integrations carry the page (SMS, mail, chat).
    pub via: String,
    /// How long to wait for an acknowledgement before the next step.
    pub wait: Dur,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    pub schedule: Option<String>,
    pub person: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNotice {
    /// `handoff` (who is on call now and next) or `digest` (firing alerts and who is on call).
    pub kind: String,
    /// Six fields with seconds, or five: `0 0 9 * * *`.
    pub cron: String,
    pub time_zone: Option<String>,
    pub schedule: Option<String>,
    pub receiver: String,
}

/// A person's contact points.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Contact {
    pub name: String,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub chat: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Target {
    Schedule(String),
    Person(String),
}

#[derive(Debug, Clone)]
pub struct Step {
    pub targets: Vec<Target>,
    pub via: String,
    pub wait_ms: i64,
}

#[derive(Debug, Clone)]
pub struct Policy {
    pub name: String,
    pub repeat: u32,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NoticeKind {
    Handoff,
    Digest,
}

#[derive(Debug, Clone)]
pub struct Notice {
    pub kind: NoticeKind,
    pub cron: cron::Cron,
    pub tz: TimeZone,
    pub schedule: Option<String>,
    pub receiver: String,
}

/// The validated `oncall:` section.
#[derive(Debug)]
pub struct OnCall {
    pub people: BTreeMap<String, Contact>,
    pub schedules: BTreeMap<String, Schedule>,
    pub policies: BTreeMap<String, Arc<Policy>>,
    pub notices: Vec<Notice>,
    pub links: link::Signer,
}

impl OnCall {
    /// Everyone a target reaches at `at` (a schedule's on-call person, or the person).
    pub fn resolve(&self, t: &Target, at: Timestamp) -> Option<Contact> {
        let name = match t {
            Target::Person(p) => p.clone(),
            Target::Schedule(s) => self.schedules.get(s)?.who(at)?.member,
        };
        Some(self.people.get(&name).cloned().unwrap_or_else(|| Contact {
            name: name.clone(),
            ..Contact::default()
        }))
    }
}

fn zone(name: Option<&str>) -> Result<(TimeZone, String), String> {
    let n = name.unwrap_or("UTC");
    TimeZone::get(n)
        .map(|z| (z, n.to_string()))
        .map_err(|e| format!("time_zone {n:?}: {e}"))
}

/// Local `2026-11-02T09:00` in `tz`, or RFC 3339 with an offset.
fn instant(s: &str, tz: &TimeZone) -> Result<Timestamp, String> {
    if let Ok(t) = s.parse::<Timestamp>() {
        return Ok(t);
    }
    let dt: DateTime = s
        .parse()
        .map_err(|e| format!("{s:?} is not a date and time (2026-11-24T19:00): {e}"))?;
    dt.to_zoned(tz.clone())
        .map(|z| z.timestamp())
        .map_err(|e| format!("{s:?}: {e}"))
}

fn clock_time(s: &str) -> Result<Time, String> {
    s.parse::<Time>()
        .map_err(|_| format!("{s:?} is not a time of day (19:00)"))
}

/// Validates the section; errors name the schedule, layer, policy or step.
pub fn build(
    raw: &RawOnCall,
    receivers: &[String],
    base: &Path,
    file: &str,
    errors: &mut Vec<String>,
) -> Option<Arc<OnCall>> {
    let start = errors.len();
    let at = |what: String| format!("{file}: oncall: {what}");
    let people: BTreeMap<String, Contact> = raw
        .people
        .iter()
        .map(|(n, p)| {
            (
                n.clone(),
                Contact {
                    name: n.clone(),
                    phone: p.phone.clone(),
                    email: p.email.clone(),
                    chat: p.chat.clone(),
                },
            )
        })
        .collect();
    let mut schedules = BTreeMap::new();
    for s in &raw.schedules {
        let (tz, tz_name) = match zone(s.time_zone.as_deref()) {
            Ok(z) => z,
            Err(e) => {
                errors.push(at(format!("schedule {:?}: {e}", s.name)));
                continue;
            }
        };
        let mut layers = Vec::new();
        for (i, l) in s.layers.iter().enumerate() {
            let name = l.name.clone().unwrap_or_else(|| format!("layer{}", i + 1));
            let here = |e: String| at(format!("schedule {:?}: layer {name:?}: {e}", s.name));
            if l.members.is_empty() {
                errors.push(here("members: at least one member is required".into()));
            }
            for m in &l.members {
                if !people.contains_key(m) {
                    errors.push(here(format!("member {m:?} is not in oncall.people")));
                }
            }
            let start: DateTime = match l.start.parse() {
                Ok(d) => d,
                Err(e) => {
                    errors.push(here(format!("start: {:?}: {e}", l.start)));
                    continue;
                }
            };
            let ms = dur(&Some(l.rotation.clone()), "rotation", 0, file, errors);
            let rotation = if ms <= 0 {
                errors.push(here("rotation must be positive".into()));
                continue;
            } else if ms % 86_400_000 == 0 {
                Rotation::Days(ms / 86_400_000)
            } else if ms % 1000 == 0 {
                Rotation::Seconds(ms / 1000)
            } else {
                errors.push(here("rotation must be whole seconds".into()));
                continue;
            };
            let mut restrictions = Vec::new();
            for r in &l.restrictions {
                let days: Result<Vec<_>, String> = if r.days.is_empty() {
                    Ok(vec![
                        jiff::civil::Weekday::Monday,
                        jiff::civil::Weekday::Tuesday,
                        jiff::civil::Weekday::Wednesday,
                        jiff::civil::Weekday::Thursday,
                        jiff::civil::Weekday::Friday,
                        jiff::civil::Weekday::Saturday,
                        jiff::civil::Weekday::Sunday,
                    ])
                } else {
                    r.days
                        .iter()
                        .map(|d| {
                            schedule::parse_weekday(d)
                                .ok_or_else(|| format!("restrictions: {d:?} is not a day"))
                        })
                        .collect()
                };
                match (days, clock_time(&r.start), clock_time(&r.end)) {
                    (Ok(days), Ok(start), Ok(end)) => {
                        restrictions.push(Restriction { days, start, end })
                    }
                    (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                        errors.push(here(format!("restrictions: {e}")))
                    }
                }
            }
            layers.push(Layer {
                name,
                members: l.members.clone(),
                start,
                rotation,
                restrictions,
            });
        }
        let mut overrides = Vec::new();
        for o in &s.overrides {
            let here = |e: String| {
                at(format!(
                    "schedule {:?}: override for {:?}: {e}",
                    s.name, o.member
                ))
            };
            if !people.contains_key(&o.member) {
                errors.push(here("member is not in oncall.people".into()));
            }
            match (instant(&o.start, &tz), instant(&o.end, &tz)) {
                (Ok(a), Ok(b)) if a < b => overrides.push(Override {
                    member: o.member.clone(),
                    start: a,
                    end: b,
                }),
                (Ok(_), Ok(_)) => errors.push(here("end must be after start".into())),
                (Err(e), _) | (_, Err(e)) => errors.push(here(e)),
            }
        }
        if schedules
            .insert(
                s.name.clone(),
                Schedule {
                    name: s.name.clone(),
                    tz,
                    tz_name,
                    layers,
                    overrides,
                },
            )
            .is_some()
        {
            errors.push(at(format!("schedule {:?} is defined twice", s.name)));
        }
    }
    let mut policies = BTreeMap::new();
    for p in &raw.escalation_policies {
        if p.steps.is_empty() {
            errors.push(at(format!("escalation policy {:?}: no steps", p.name)));
        }
        let mut steps = Vec::new();
        for (i, s) in p.steps.iter().enumerate() {
            let here = |e: String| at(format!("escalation policy {:?}: steps[{i}]: {e}", p.name));
            if !receivers.contains(&s.via) {
                errors.push(here(format!("via: receiver {:?} is not defined", s.via)));
            }
            let mut targets = Vec::new();
            for t in &s.notify {
                match (&t.schedule, &t.person) {
                    (Some(sc), None) if schedules.contains_key(sc) => {
                        targets.push(Target::Schedule(sc.clone()))
                    }
                    (Some(sc), None) => {
                        errors.push(here(format!("schedule {sc:?} is not defined")))
                    }
                    (None, Some(pe)) if people.contains_key(pe) => {
                        targets.push(Target::Person(pe.clone()))
                    }
                    (None, Some(pe)) => {
                        errors.push(here(format!("person {pe:?} is not in oncall.people")))
                    }
                    _ => errors.push(here("each target is one of schedule or person".into())),
                }
            }
            if targets.is_empty() {
                errors.push(here("notify: at least one target".into()));
            }
            let wait_ms = dur(&Some(s.wait.clone()), "wait", 0, file, errors);
            if wait_ms <= 0 {
                errors.push(here("wait must be positive".into()));
            }
            steps.push(Step {
                targets,
                via: s.via.clone(),
                wait_ms,
            });
        }
        policies.insert(
            p.name.clone(),
            Arc::new(Policy {
                name: p.name.clone(),
                repeat: p.repeat,
                steps,
            }),
        );
    }
    let mut notices = Vec::new();
    for (i, n) in raw.notices.iter().enumerate() {
        let here = |e: String| at(format!("notices[{i}]: {e}"));
        let kind = match n.kind.as_str() {
            "handoff" => NoticeKind::Handoff,
            "digest" => NoticeKind::Digest,
            k => {
                errors.push(here(format!("kind {k:?} is not handoff or digest")));
                continue;
            }
        };
        if kind == NoticeKind::Handoff
            && n.schedule
                .as_ref()
                .is_none_or(|s| !schedules.contains_key(s))
        {
            errors.push(here("a handoff notice names a defined schedule".into()));
        }
        if !receivers.contains(&n.receiver) {
            errors.push(here(format!("receiver {:?} is not defined", n.receiver)));
        }
        match (cron::Cron::parse(&n.cron), zone(n.time_zone.as_deref())) {
            (Ok(c), Ok((tz, _))) => notices.push(Notice {
                kind,
                cron: c,
                tz,
                schedule: n.schedule.clone(),
                receiver: n.receiver.clone(),
            }),
            (Err(e), _) => errors.push(here(format!("cron {:?}: {e}", n.cron))),
            (_, Err(e)) => errors.push(here(e)),
        }
    }
    let ttl = dur(&raw.link_ttl, "link_ttl", 86_400_000, file, errors);
    let secret = match crate::notify::http::secret(
        raw.ack_secret.as_deref(),
        raw.ack_secret_file.as_deref(),
        base,
        "ack_secret",
    ) {
        Ok(Some(s)) if s.len() >= 16 => Some(s),
        Ok(Some(_)) => {
            errors.push(at("ack_secret: at least 16 characters".into()));
            None
        }
        Ok(None) => None,
        Err(e) => {
            errors.push(at(e));
            None
        }
    };
    if errors.len() > start {
        return None;
    }
    Some(Arc::new(OnCall {
        people,
        schedules,
        policies,
        notices,
        links: link::Signer::new(secret.as_deref(), ttl),
    }))
}
