//! The dispatcher: alerts from the API and the rule engine are stored, routed into aggregation
//! groups (route × `group_by` values), and each group flushes on its timers through the
//! notification pipeline: time intervals → inhibition → silences → per-integration dedup against
//! the notification log → send with retry → log. One lightweight task per group, all state
//! behind one lock that is never held across an await.

mod oncall;
pub mod route;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::amconfig::Routing;
use crate::durable::{Durable, Loaded, Op};
use crate::inhibit::Inhibitor;
use crate::matcher::labels_string;
use crate::nflog::{self, Entry, NotificationLog};
use crate::notify::metrics::Metrics as NotifyMetrics;
use crate::notify::template::Templates;
use crate::notify::throttle::{Limit, Verdict};
use crate::notify::{Data, Delivery, Integration, Notification, Reason, send_with_retry};

/// Where one integration's notification goes.
struct Target<'a> {
    receiver: &'a str,
    integration: &'a Integration,
    templates: &'a Templates,
    limit: Option<&'a Limit>,
    /// The person on call when the receiver targets a schedule.
    contact: Option<&'a crate::oncall::Contact>,
}
use crate::provider::{Alert, Alerts};
use crate::silence::{Silence, SilenceError, Silences};
use route::{Route, RouteOpts};

const MS: i64 = 1_000_000;
/// How long expired silences and notification-log entries are kept (Alertmanager's
/// `--data.retention`).
pub const RETENTION_NS: i64 = 120 * 3_600_000 * MS;
/// The shortest time a flush may take, whatever `group_interval` is.
const MIN_FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// Wall time in Unix nanoseconds. Tests run it off Tokio's clock so a paused runtime drives
/// alert times and group timers together.
#[derive(Debug, Clone)]
pub struct Clock {
    base: Option<(i64, Instant)>,
}

impl Clock {
    pub fn system() -> Clock {
        Clock { base: None }
    }

    /// Starts at `ns` and advances with `tokio::time` (paused in tests).
    pub fn following_tokio(ns: i64) -> Clock {
        Clock {
            base: Some((ns, Instant::now())),
        }
    }

    pub fn now(&self) -> i64 {
        match self.base {
            Some((ns, at)) => ns + at.elapsed().as_nanos() as i64,
            None => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as i64)
                .unwrap_or(0),
        }
    }
}

/// An aggregation group: the alerts of one route sharing its `group_by` values.
#[derive(Debug)]
pub struct Group {
    /// `routeKey:{groupLabels}`, Alertmanager's group key.
    pub key: String,
    pub route_id: usize,
    pub opts: Arc<RouteOpts>,
    pub labels: BTreeMap<String, String>,
    alerts: Mutex<HashMap<u64, Arc<Alert>>>,
    timing: Mutex<Timing>,
    wake: Notify,
    cancel: CancellationToken,
}

#[derive(Debug)]
struct Timing {
    next: Instant,
    has_flushed: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Group {
    pub fn alerts(&self) -> Vec<Arc<Alert>> {
        lock(&self.alerts).values().cloned().collect()
    }

    fn insert(&self, a: Arc<Alert>, now: i64) {
        let starts = a.starts_at;
        lock(&self.alerts).insert(a.fingerprint(), a);
        let mut t = lock(&self.timing);
        // An alert older than group_wait flushes a group that never flushed at once.
        if !t.has_flushed && starts + self.opts.group_wait_ms * MS < now {
            t.next = Instant::now();
            self.wake.notify_one();
        }
    }
}

#[derive(Debug, Default)]
pub struct Stats {
    pub received_firing: AtomicU64,
    pub received_resolved: AtomicU64,
    pub invalid: AtomicU64,
    pub notifications: AtomicU64,
    pub notifications_failed: AtomicU64,
}

#[derive(Default)]
struct State {
    alerts: Alerts,
    silences: Silences,
    inhibitor: Inhibitor,
    nflog: NotificationLog,
    groups: HashMap<(usize, String), Arc<Group>>,
    /// Per route id, the options groups of that route share.
    opts: Vec<Arc<RouteOpts>>,
}

pub struct Dispatcher {
    state: Mutex<State>,
    routing: RwLock<Option<Arc<Routing>>>,
    durable: Durable,
    pub clock: Clock,
    external_url: String,
    pub stats: Stats,
    pub notify_metrics: NotifyMetrics,
    pub attempts: crate::notify::attempts::AttemptLog,
    /// On-call escalations of groups sent to escalating receivers.
    pub escalations: Arc<crate::oncall::escalation::Engine>,
    notice_tasks: Mutex<Vec<tokio::task::AbortHandle>>,
}

/// An alert with what the API reports about it.
#[derive(Debug, Clone)]
pub struct AlertView {
    pub alert: Arc<Alert>,
    pub receivers: Vec<String>,
    pub silenced_by: Vec<String>,
    pub inhibited_by: Vec<u64>,
}

impl Dispatcher {
    pub fn new(durable: Durable, clock: Clock, external_url: String, loaded: Loaded) -> Arc<Self> {
        let mut st = State::default();
        for a in loaded.alerts {
            st.alerts.restore(a);
        }
        for s in loaded.silences {
            st.silences.restore(s);
        }
        for (k, e) in loaded.nflog {
            st.nflog.log(k, e);
        }
        Arc::new(Dispatcher {
            state: Mutex::new(st),
            routing: RwLock::new(None),
            durable,
            clock,
            external_url,
            stats: Stats::default(),
            notify_metrics: NotifyMetrics::default(),
            attempts: Default::default(),
            escalations: Arc::default(),
            notice_tasks: Mutex::default(),
        })
    }

    pub fn routing(&self) -> Option<Arc<Routing>> {
        self.routing
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn resolve_timeout_ns(&self) -> i64 {
        self.routing().map_or(300_000, |r| r.resolve_timeout_ms) * MS
    }

    /// Installs a (new) configuration: all groups are rebuilt from the stored alerts, as on an
    /// Alertmanager reload; the notification log keeps them from re-sending.
    pub fn configure(self: &Arc<Self>, routing: Option<Arc<Routing>>) {
        let now = self.clock.now();
        let mut st = lock(&self.state);
        // Swapped under the state lock, so `put` never routes with one tree into the other's
        // groups.
        *self.routing.write().unwrap_or_else(|p| p.into_inner()) = routing.clone();
        for g in st.groups.values() {
            g.cancel.cancel();
        }
        st.groups.clear();
        st.inhibitor = Inhibitor::new(
            routing
                .as_ref()
                .map(|r| r.inhibit_rules.clone())
                .unwrap_or_default(),
        );
        st.opts = routing
            .as_ref()
            .map(|r| {
                r.route
                    .walk()
                    .iter()
                    .map(|n| Arc::new(n.opts.clone()))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(r) = &routing {
            self.notify_metrics.initialize(&r.receivers);
        }
        let all: Vec<Arc<Alert>> = st.alerts.iter().cloned().collect();
        for a in &all {
            st.inhibitor.observe(a);
        }
        if let Some(r) = &routing {
            for a in all {
                self.route_alert(&mut st, &r.route, a, now);
            }
        }
        drop(st);
        self.restart_notices();
    }

    fn route_alert(self: &Arc<Self>, st: &mut State, root: &Route, a: Arc<Alert>, now: i64) {
        for route in root.matches(&a.labels) {
            let labels = route.group_labels(&a.labels);
            let key = format!("{}:{}", route.key, labels_string(&labels));
            let map_key = (route.id, key);
            let group = match st.groups.get(&map_key) {
                Some(g) => g.clone(),
                None => {
                    let opts = st.opts.get(route.id).cloned().unwrap_or_default();
                    let g = Arc::new(Group {
                        key: map_key.1.clone(),
                        route_id: route.id,
                        labels,
                        timing: Mutex::new(Timing {
                            next: Instant::now() + Duration::from_millis(opts.group_wait_ms as u64),
                            has_flushed: false,
                        }),
                        opts,
                        alerts: Mutex::new(HashMap::new()),
                        wake: Notify::new(),
                        cancel: CancellationToken::new(),
                    });
                    st.groups.insert(map_key, g.clone());
                    tokio::spawn(self.clone().run_group(g.clone()));
                    g
                }
            };
            group.insert(a.clone(), now);
        }
    }

    /// Stores and routes alerts; resolves once they are on disk.
    pub async fn put(self: &Arc<Self>, alerts: Vec<Alert>) -> Result<(), String> {
        let now = self.clock.now();
        let mut ops = Vec::with_capacity(alerts.len());
        {
            let mut st = lock(&self.state);
            let routing = self.routing();
            for a in alerts {
                let counter = if a.resolved_at(now) {
                    &self.stats.received_resolved
                } else {
                    &self.stats.received_firing
                };
                counter.fetch_add(1, Ordering::Relaxed);
                let merged = st.alerts.put(a, now);
                st.inhibitor.observe(&merged);
                ops.push(Op::PutAlert(merged.clone()));
                if let Some(r) = &routing {
                    self.route_alert(&mut st, &r.route, merged, now);
                }
            }
        }
        self.durable.commit(ops).await
    }

    async fn run_group(self: Arc<Self>, g: Arc<Group>) {
        loop {
            let next = lock(&g.timing).next;
            // Due now (group_wait 0s, or an old alert): no trip through the 1 ms timer wheel.
            if next > Instant::now() {
                tokio::select! {
                _ = g.cancel.cancelled() => return,
                _ = g.wake.notified() => continue,
                _ = tokio::time::sleep_until(next) => {}
                }
            } else if g.cancel.is_cancelled() {
                return;
            }
            let interval = Duration::from_millis(g.opts.group_interval_ms as u64);
            {
                let mut t = lock(&g.timing);
                let now = Instant::now();
                if t.next > now {
                    continue;
                }
                // Re-armed before the attempt, so flushes keep a steady rhythm.
                t.next = now + interval;
                t.has_flushed = true;
            }
            let deadline = Instant::now() + interval.max(MIN_FLUSH_TIMEOUT);
            tokio::select! {
                _ = g.cancel.cancelled() => return,
                _ = self.flush(&g, deadline) => {}
            }
        }
    }

    /// Sends what the group holds, then forgets its resolved alerts if every integration
    /// succeeded and they were not updated meanwhile.
    async fn flush(self: &Arc<Self>, g: &Arc<Group>, deadline: Instant) {
        let now = self.clock.now();
        let mut snapshot: Vec<Arc<Alert>> = lock(&g.alerts)
            .values()
            .map(|a| {
                if a.resolved_at(now) {
                    a.clone()
                } else {
                    // Not resolved yet: notified as firing, whatever end it announces.
                    Arc::new(Alert {
                        ends_at: 0,
                        ..(**a).clone()
                    })
                }
            })
            .collect();
        if snapshot.is_empty() {
            return;
        }
        snapshot.sort_by(|a, b| alert_order(a, b));
        if self.notify(g, &snapshot, now, deadline).await {
            let mut alerts = lock(&g.alerts);
            for a in snapshot.iter().filter(|a| a.ends_at != 0) {
                let fp = a.fingerprint();
                if alerts
                    .get(&fp)
                    .is_some_and(|cur| cur.updated_at == a.updated_at)
                {
                    alerts.remove(&fp);
                }
            }
        }
    }

    /// The pipeline for one flush; true when nothing failed.
    async fn notify(
        self: &Arc<Self>,
        g: &Arc<Group>,
        alerts: &[Arc<Alert>],
        now: i64,
        deadline: Instant,
    ) -> bool {
        let Some(routing) = self.routing() else {
            return true;
        };
        if muted_by_time(&routing, &g.opts, now) {
            return true;
        }
        let alerts: Vec<Arc<Alert>> = {
            let st = lock(&self.state);
            alerts
                .iter()
                .filter(|a| {
                    st.inhibitor.mutes(&a.labels, now).is_empty()
                        && st.silences.mutes(&a.labels, now).is_empty()
                })
                .cloned()
                .collect()
        };
        let Some(receiver) = routing.receivers.get(&g.opts.receiver) else {
            return true;
        };
        if receiver.escalation.is_some() {
            let firing: Vec<Arc<Alert>> =
                alerts.iter().filter(|a| a.ends_at == 0).cloned().collect();
            let data = (!firing.is_empty()).then(|| {
                Data::new(
                    &receiver.name,
                    &g.key,
                    &g.labels,
                    &firing,
                    &self.external_url,
                )
            });
            self.escalate(g, &receiver.name, data);
        }
        if alerts.is_empty() {
            return true;
        }
        let on_call = receiver.oncall.as_ref().and_then(|s| {
            let oc = routing.oncall.as_ref()?;
            let at = jiff::Timestamp::from_nanosecond(i128::from(now)).ok()?;
            oc.resolve(&crate::oncall::Target::Schedule(s.clone()), at)
        });
        if receiver.oncall.is_some() && on_call.is_none() {
            tracing::warn!(receiver = %receiver.name, "nobody is on call: the receiver's own recipients are used");
        }
        let mut set = tokio::task::JoinSet::new();
        for integration in receiver.integrations.clone() {
            let (d, g, alerts, name, templates, limit, contact) = (
                self.clone(),
                g.clone(),
                alerts.clone(),
                receiver.name.clone(),
                routing.templates.clone(),
                receiver.limit.clone(),
                on_call.clone(),
            );
            set.spawn(async move {
                let to = Target {
                    receiver: &name,
                    integration: &integration,
                    templates: &templates,
                    limit: limit.as_deref(),
                    contact: contact.as_ref(),
                };
                d.notify_integration(&g, to, alerts, deadline).await
            });
        }
        let mut ok = true;
        while let Some(r) = set.join_next().await {
            ok &= r.unwrap_or(false);
        }
        ok
    }

    async fn notify_integration(
        &self,
        g: &Group,
        to: Target<'_>,
        alerts: Vec<Arc<Alert>>,
        deadline: Instant,
    ) -> bool {
        let (receiver, integration, templates) = (to.receiver, to.integration, to.templates);
        let key = nflog::key(&g.key, receiver, integration.name, integration.idx);
        let mut firing: Vec<u64> = Vec::new();
        let mut resolved: Vec<u64> = Vec::new();
        for a in &alerts {
            if a.ends_at == 0 {
                firing.push(a.fingerprint());
            } else {
                resolved.push(a.fingerprint());
            }
        }
        firing.sort_unstable();
        resolved.sort_unstable();
        let repeat_ns = g.opts.repeat_interval_ms * MS;
        let needed = {
            let st = lock(&self.state);
            nflog::needs_update(
                st.nflog.get(&key),
                &firing,
                &resolved,
                integration.send_resolved,
                repeat_ns,
                self.clock.now(),
            )
        };
        if !needed {
            return true;
        }
        let sent: Vec<Arc<Alert>> = if integration.send_resolved {
            alerts
        } else {
            alerts.into_iter().filter(|a| a.ends_at == 0).collect()
        };
        if !sent.is_empty() {
            let _slot = integration.in_flight.acquire().await;
            let data = Data::new(receiver, &g.key, &g.labels, &sent, &self.external_url);
            let verdict = to
                .limit
                .map(|l| l.check(integration.name, integration.idx, &data, self.clock.now()));
            let data = match verdict {
                None | Some(Verdict::Send) => data,
                Some(Verdict::Summary(summary)) => *summary,
                Some(Verdict::Hold) => {
                    // Counted and logged as notified: the summary already told the receiver.
                    let held = Delivery {
                        tries: Vec::new(),
                        attempts: 0,
                        failure: Some((
                            Reason::Limited,
                            "held back by the receiver's limit".into(),
                        )),
                        sent: false,
                    };
                    self.notify_metrics
                        .record(integration.name, receiver, &held, Duration::ZERO);
                    self.attempts.record(
                        self.clock.now(),
                        receiver,
                        integration.name,
                        &g.key,
                        &held,
                        0.0,
                    );
                    tracing::info!(group = %g.key, receiver, integration = integration.name, "notification held back by the receiver's limit");
                    self.log_notified(key, firing, resolved, repeat_ns).await;
                    return true;
                }
            };
            // One id per notification, the same on each of its retries.
            let id = format!(
                "{:016x}",
                crate::provider::fingerprint(
                    [
                        ("g", g.key.as_str()),
                        ("r", receiver),
                        ("i", integration.name),
                        ("n", &integration.idx.to_string()),
                        ("t", &self.clock.now().to_string()),
                    ]
                    .into_iter()
                )
            );
            let n = Notification {
                data: &data,
                templates,
                id: &id,
                contact: to.contact,
                ack_url: None,
            };
            let started = std::time::Instant::now();
            let delivery = send_with_retry(integration, &n, deadline).await;
            self.notify_metrics
                .record(integration.name, receiver, &delivery, started.elapsed());
            self.attempts.record(
                self.clock.now(),
                receiver,
                integration.name,
                &data.group_key,
                &delivery,
                started.elapsed().as_secs_f64(),
            );
            if let Some((_, e)) = &delivery.failure {
                tracing::warn!(group = %g.key, receiver, error = %e, "notify failed");
            }
            if delivery.sent {
                self.stats.notifications.fetch_add(1, Ordering::Relaxed);
            } else {
                self.stats
                    .notifications_failed
                    .fetch_add(1, Ordering::Relaxed);
                return false;
            }
        }
        self.log_notified(key, firing, resolved, repeat_ns).await;
        true
    }

    async fn log_notified(
        &self,
        key: String,
        firing: Vec<u64>,
        resolved: Vec<u64>,
        repeat_ns: i64,
    ) {
        let at = self.clock.now();
        let entry = Entry {
            firing,
            resolved,
            at,
            expires_at: at + RETENTION_NS.min(2 * repeat_ns),
        };
        lock(&self.state).nflog.log(key.clone(), entry.clone());
        if let Err(e) = self.durable.commit(vec![Op::PutNflog(key, entry)]).await {
            tracing::error!(error = %e, "notification log not persisted");
        }
    }

    /// Periodic clean-up: empty groups stop, resolved alerts, expired silences and old
    /// notification-log entries are dropped (and deleted on disk).
    pub async fn maintain(self: &Arc<Self>) {
        let now = self.clock.now();
        let mut ops = Vec::new();
        {
            let mut st = lock(&self.state);
            st.groups.retain(|_, g| {
                let keep = !lock(&g.alerts).is_empty();
                if !keep {
                    g.cancel.cancel();
                }
                keep
            });
            // A resolved alert stays on disk until its group has notified the resolution, so
            // a crash in between does not lose that notification.
            let pending: std::collections::HashSet<u64> = st
                .groups
                .values()
                .flat_map(|g| lock(&g.alerts).keys().copied().collect::<Vec<_>>())
                .collect();
            ops.extend(st.alerts.gc(now, &pending).into_iter().map(Op::DelAlert));
            st.inhibitor.gc(now);
            ops.extend(
                st.silences
                    .gc(now, RETENTION_NS)
                    .into_iter()
                    .map(Op::DelSilence),
            );
            ops.extend(st.nflog.gc(now).into_iter().map(Op::DelNflog));
        }
        self.escalations.gc(now);
        crate::labelset::purge_interned();
        // Give back what a burst of alerts (request bodies, resolved alerts) left free.
        // SAFETY: malloc_trim only returns free memory to the kernel; it is thread-safe.
        unsafe {
            libc::malloc_trim(1 << 20);
        }
        if let Err(e) = self.durable.commit(ops).await {
            tracing::error!(error = %e, "state clean-up not persisted");
        }
    }

    /// Runs [`Self::maintain`] every 30 s until the runtime stops.
    pub fn spawn_maintenance(self: &Arc<Self>) {
        let d = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(30));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                d.maintain().await;
            }
        });
    }

    /// Active (not resolved) alerts with their status.
    pub fn alerts(&self) -> Vec<AlertView> {
        let now = self.clock.now();
        let st = lock(&self.state);
        let routing = self.routing();
        st.alerts
            .iter()
            .filter(|a| !a.resolved_at(now))
            .map(|a| view(&st, routing.as_deref(), a.clone(), now))
            .collect()
    }

    /// The aggregation groups and their alerts (resolved ones left out), in key order.
    pub fn groups(&self) -> Vec<(Arc<Group>, Vec<AlertView>)> {
        let now = self.clock.now();
        let st = lock(&self.state);
        let routing = self.routing();
        let mut out: Vec<(Arc<Group>, Vec<AlertView>)> = st
            .groups
            .values()
            .map(|g| {
                let mut alerts: Vec<AlertView> = g
                    .alerts()
                    .into_iter()
                    .filter(|a| !a.resolved_at(now))
                    .map(|a| view(&st, routing.as_deref(), a, now))
                    .collect();
                alerts.sort_by(|a, b| alert_order(&a.alert, &b.alert));
                (g.clone(), alerts)
            })
            .filter(|(_, a)| !a.is_empty())
            .collect();
        out.sort_by(|a, b| (a.0.route_id, &a.0.key).cmp(&(b.0.route_id, &b.0.key)));
        out
    }

    pub fn silences(&self) -> Vec<Silence> {
        lock(&self.state).silences.iter().cloned().collect()
    }

    pub fn silence(&self, id: &str) -> Option<Silence> {
        lock(&self.state).silences.get(id).cloned()
    }

    /// Creates or updates a silence; resolves with its id once on disk.
    pub async fn set_silence(&self, s: Silence) -> Result<String, SilenceError> {
        let now = self.clock.now();
        let (stored, replaced) = lock(&self.state).silences.set(s, now)?;
        let id = stored.id.clone();
        let mut ops = vec![Op::PutSilence(stored)];
        ops.extend(replaced.map(Op::PutSilence));
        self.durable
            .commit(ops)
            .await
            .map_err(SilenceError::Invalid)?;
        Ok(id)
    }

    pub async fn expire_silence(&self, id: &str) -> Result<(), SilenceError> {
        let now = self.clock.now();
        let changed = lock(&self.state).silences.expire(id, now)?;
        if let Some(s) = changed {
            self.durable
                .commit(vec![Op::PutSilence(s)])
                .await
                .map_err(SilenceError::Invalid)?;
        }
        Ok(())
    }

    /// Counts for `/metrics`: (firing, suppressed) alerts and silences by state.
    pub fn counts(&self) -> (usize, usize, [usize; 3]) {
        let now = self.clock.now();
        let st = lock(&self.state);
        let (mut active, mut suppressed) = (0, 0);
        for a in st.alerts.iter().filter(|a| !a.resolved_at(now)) {
            if st.silences.mutes(&a.labels, now).is_empty()
                && st.inhibitor.mutes(&a.labels, now).is_empty()
            {
                active += 1;
            } else {
                suppressed += 1;
            }
        }
        let mut sil = [0; 3];
        for s in st.silences.iter() {
            sil[s.state(now) as usize] += 1;
        }
        (active, suppressed, sil)
    }
}

/// An alert with the receivers it reaches and what suppresses it now.
fn view(st: &State, routing: Option<&Routing>, alert: Arc<Alert>, now: i64) -> AlertView {
    let mut receivers: Vec<String> = Vec::new();
    for route in routing.iter().flat_map(|r| r.route.matches(&alert.labels)) {
        if !receivers.contains(&route.opts.receiver) {
            receivers.push(route.opts.receiver.clone());
        }
    }
    AlertView {
        receivers,
        silenced_by: st.silences.mutes(&alert.labels, now),
        inhibited_by: st.inhibitor.mutes(&alert.labels, now),
        alert,
    }
}

/// Alertmanager's order in notifications: by `job`, then `instance`, then the label sets.
fn alert_order(a: &Alert, b: &Alert) -> std::cmp::Ordering {
    for key in ["job", "instance"] {
        match (a.labels.get(key), b.labels.get(key)) {
            (None, None) => continue,
            (None, Some(_)) => return std::cmp::Ordering::Greater,
            (Some(_), None) => return std::cmp::Ordering::Less,
            (Some(x), Some(y)) if x != y => return x.cmp(y),
            _ => {}
        }
    }
    a.labels
        .len()
        .cmp(&b.labels.len())
        .then_with(|| a.labels.iter().cmp(b.labels.iter()))
}

/// Whether the route's time intervals silence it at this instant.
fn muted_by_time(routing: &Routing, opts: &RouteOpts, now: i64) -> bool {
    let inside = |names: &[String]| {
        names.iter().any(|n| {
            routing
                .time_intervals
                .get(n)
                .is_some_and(|ti| ti.contains(now))
        })
    };
    if !opts.active_time_intervals.is_empty() && !inside(&opts.active_time_intervals) {
        return true;
    }
    inside(&opts.mute_time_intervals)
}
