//! The dispatcher's side of on-call: groups reaching a receiver with `escalation:` start or
//! stop escalations, pages and notices go out through receivers' integrations (with the
//! person's contact on a page), and notice tasks follow the configuration.

use std::sync::Arc;
use std::time::Duration;

use super::{Dispatcher, Group};
use crate::notify::{BoxFuture, Data, Notification, send_with_retry};
use crate::oncall::Contact;
use crate::oncall::escalation::{Pager, Start};
use crate::oncall::notices::Announcer;

/// How long one page or notice may take, retries included.
const SEND_DEADLINE: Duration = Duration::from_secs(300);

impl Dispatcher {
    /// After a flush of `g` to `receiver`: `alerts` are the group's alerts not muted; an
    /// escalating receiver starts (or refreshes) the group's escalation while any fires, and
    /// stops it otherwise.
    pub(super) fn escalate(self: &Arc<Self>, g: &Group, receiver: &str, data: Option<Data>) {
        let Some(routing) = self.routing() else {
            return;
        };
        let Some(r) = routing.receivers.get(receiver) else {
            return;
        };
        let (Some(policy), Some(oc)) = (r.escalation.as_ref(), routing.oncall.as_ref()) else {
            return;
        };
        let Some(policy) = oc.policies.get(policy) else {
            return;
        };
        match data {
            Some(d) if d.status == "firing" => {
                self.escalations.firing(
                    Start {
                        oncall: oc.clone(),
                        policy: policy.clone(),
                        receiver: receiver.to_string(),
                        pager: self.clone(),
                        clock: self.clock.clone(),
                        external_url: self.external_url.clone(),
                    },
                    d,
                );
            }
            _ => self
                .escalations
                .resolved(receiver, &g.key, self.clock.now()),
        }
    }

    /// Sends `data` through every integration of `receiver`; true if any delivered it.
    async fn send_to(
        &self,
        receiver: &str,
        data: &Data,
        contact: Option<&Contact>,
        ack_url: Option<&str>,
    ) -> bool {
        let Some(routing) = self.routing() else {
            return false;
        };
        let Some(r) = routing.receivers.get(receiver) else {
            tracing::warn!(receiver, "page or notice to an undefined receiver");
            return false;
        };
        let id = uuid::Uuid::new_v4().simple().to_string();
        let deadline = tokio::time::Instant::now() + SEND_DEADLINE;
        let mut any = false;
        for i in &r.integrations {
            let _slot = i.in_flight.acquire().await;
            let n = Notification {
                data,
                templates: &routing.templates,
                id: &id,
                contact,
                ack_url,
            };
            let started = std::time::Instant::now();
            let d = send_with_retry(i, &n, deadline).await;
            self.notify_metrics
                .record(i.name, receiver, &d, started.elapsed());
            self.attempts.record(
                self.clock.now(),
                receiver,
                i.name,
                &data.group_key,
                &d,
                started.elapsed().as_secs_f64(),
            );
            if let Some((_, e)) = &d.failure {
                tracing::warn!(receiver, integration = i.name, error = %e, "page or notice failed");
            }
            any |= d.sent;
        }
        any
    }

    /// Starts the configuration's notices (stopping the previous ones).
    pub(super) fn restart_notices(self: &Arc<Self>) {
        let mut tasks = self.notice_tasks.lock().unwrap_or_else(|p| p.into_inner());
        for t in tasks.drain(..) {
            t.abort();
        }
        let Some(oc) = self.routing().and_then(|r| r.oncall.clone()) else {
            return;
        };
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        for n in &oc.notices {
            let to: Arc<dyn Announcer> = self.clone();
            let h = tokio::spawn(crate::oncall::notices::run(
                n.clone(),
                oc.clone(),
                self.clock.clone(),
                to,
            ));
            tasks.push(h.abort_handle());
        }
    }
}

impl Pager for Dispatcher {
    fn page<'a>(
        &'a self,
        via: &'a str,
        contact: &'a Contact,
        data: &'a Data,
        ack_url: &'a str,
    ) -> BoxFuture<'a, bool> {
        Box::pin(self.send_to(via, data, Some(contact), Some(ack_url)))
    }
}

impl Announcer for Dispatcher {
    fn announce<'a>(&'a self, receiver: &'a str, mut data: Data) -> BoxFuture<'a, bool> {
        data.receiver = receiver.to_string();
        Box::pin(async move { self.send_to(receiver, &data, None, None).await })
    }

    fn firing(&self) -> Vec<(String, usize)> {
        self.groups()
            .into_iter()
            .map(|(g, alerts)| {
                let labels: Vec<String> = g.labels.values().cloned().collect();
                (labels.join(" "), alerts.len())
            })
            .collect()
    }

    fn external_url(&self) -> String {
        self.external_url.clone()
    }
}
