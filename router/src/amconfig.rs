//! Alertmanager's half of the configuration file (`route`, `receivers`, `inhibit_rules`,
//! `time_intervals`, `mute_time_intervals`, `templates`, `global.resolve_timeout`), validated as
//! Alertmanager validates it, into the [`Routing`] the dispatcher runs.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_saphyr::Spanned;

use crate::config::{BasicAuth, Dur, TlsConfig, dur};
use crate::dispatch::route::{Route, RouteOpts};
use crate::inhibit::InhibitRule;
use crate::matcher::{Matcher, Op, parse_matchers, valid_name};
use crate::notify::template::{Builder, Templates};
use crate::notify::webhook::Webhook;
use crate::notify::{
    BuildCtx, Globals, Integration, Receiver, discord, email, freemobile, googlechat, matrix,
    mattermost, msteamsv2, outbox, ovh, slack, sms, telegram, throttle, twilio, vonage,
};
use crate::timeinterval::{RawNamed, TimeInterval};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub receiver: Option<Spanned<String>>,
    pub group_by: Option<Vec<String>>,
    #[serde(rename = "continue", default)]
    pub continue_: bool,
    #[serde(rename = "match", default)]
    pub match_: BTreeMap<String, String>,
    #[serde(default)]
    pub match_re: BTreeMap<String, String>,
    #[serde(default)]
    pub matchers: Vec<Spanned<String>>,
    pub group_wait: Option<Dur>,
    pub group_interval: Option<Dur>,
    pub repeat_interval: Option<Dur>,
    #[serde(default)]
    pub mute_time_intervals: Vec<String>,
    #[serde(default)]
    pub active_time_intervals: Vec<String>,
    #[serde(default)]
    pub routes: Vec<RawRoute>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authorization {
    #[serde(rename = "type")]
    pub type_: Option<String>,
    pub credentials: Option<String>,
    pub credentials_file: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    pub basic_auth: Option<BasicAuth>,
    pub authorization: Option<Authorization>,
    pub bearer_token: Option<String>,
    pub bearer_token_file: Option<String>,
    pub tls_config: Option<TlsConfig>,
    pub follow_redirects: Option<bool>,
    pub enable_http2: Option<bool>,
    pub proxy_url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhook {
    pub send_resolved: Option<bool>,
    pub url: Option<Spanned<String>>,
    pub url_file: Option<String>,
    #[serde(default)]
    pub max_alerts: u64,
    pub http_config: Option<HttpConfig>,
    pub timeout: Option<Dur>,
}

/// A receiver. Alertmanager's integrations not implemented are named so that using one is a
/// clear error rather than an unknown key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReceiver {
    pub name: Spanned<String>,
    /// Vigie: at most `max` notifications per `per` and integration; then one summary.
    pub limit: Option<throttle::RawLimit>,
    /// Vigie: page through this escalation policy (`oncall.escalation_policies`).
    pub escalation: Option<String>,
    /// Vigie: every notification goes to whoever is on call in this schedule (their phone,
    /// address, chat mention) instead of the integrations' own recipients.
    pub oncall: Option<String>,
    #[serde(default)]
    pub webhook_configs: Vec<RawWebhook>,
    #[serde(default)]
    pub slack_configs: Vec<slack::RawSlack>,
    #[serde(default)]
    pub mattermost_configs: Vec<mattermost::RawMattermost>,
    #[serde(default)]
    pub msteamsv2_configs: Vec<msteamsv2::RawTeams>,
    #[serde(default)]
    pub discord_configs: Vec<discord::RawDiscord>,
    #[serde(default)]
    pub telegram_configs: Vec<telegram::RawTelegram>,
    #[serde(default)]
    pub matrix_configs: Vec<matrix::RawMatrix>,
    #[serde(default)]
    pub googlechat_configs: Vec<googlechat::RawGoogleChat>,
    #[serde(default)]
    pub twilio_configs: Vec<twilio::RawTwilio>,
    #[serde(default)]
    pub ovh_configs: Vec<ovh::RawOvh>,
    #[serde(default)]
    pub vonage_configs: Vec<vonage::RawVonage>,
    #[serde(default)]
    pub freemobile_configs: Vec<freemobile::RawFreeMobile>,
    #[serde(default)]
    pub sms_configs: Vec<sms::RawGateway>,
    #[serde(default)]
    pub email_configs: Vec<email::RawEmail>,
    /// Vigie: a file and the console, for a node with no channel yet.
    #[serde(default)]
    pub outbox_configs: Vec<outbox::RawOutbox>,
    pub pagerduty_configs: Option<IgnoredAny>,
    pub opsgenie_configs: Option<IgnoredAny>,
    pub victorops_configs: Option<IgnoredAny>,
    pub pushover_configs: Option<IgnoredAny>,
    pub wechat_configs: Option<IgnoredAny>,
    pub sns_configs: Option<IgnoredAny>,
    pub webex_configs: Option<IgnoredAny>,
    pub msteams_configs: Option<IgnoredAny>,
    pub jira_configs: Option<IgnoredAny>,
    pub rocketchat_configs: Option<IgnoredAny>,
    pub incidentio_configs: Option<IgnoredAny>,
}

const SUPPORTED: &str = "webhook, email, slack, mattermost, msteamsv2, discord, telegram, matrix, googlechat, twilio, ovh, vonage, freemobile, sms, outbox";

impl RawReceiver {
    fn unsupported(&self) -> Vec<&'static str> {
        let all = [
            ("pagerduty_configs", self.pagerduty_configs.is_some()),
            ("opsgenie_configs", self.opsgenie_configs.is_some()),
            ("victorops_configs", self.victorops_configs.is_some()),
            ("pushover_configs", self.pushover_configs.is_some()),
            ("wechat_configs", self.wechat_configs.is_some()),
            ("sns_configs", self.sns_configs.is_some()),
            ("webex_configs", self.webex_configs.is_some()),
            (
                "msteams_configs (Office 365 connectors are retired; use msteamsv2_configs)",
                self.msteams_configs.is_some(),
            ),
            ("jira_configs", self.jira_configs.is_some()),
            ("rocketchat_configs", self.rocketchat_configs.is_some()),
            ("incidentio_configs", self.incidentio_configs.is_some()),
        ];
        all.into_iter()
            .filter(|(_, on)| *on)
            .map(|(n, _)| n)
            .collect()
    }

    /// Every configured integration, built in the order Alertmanager lists them.
    fn integrations(
        &self,
        ctx: &mut BuildCtx<'_>,
        errors: &mut Vec<String>,
        at: &str,
    ) -> Vec<Integration> {
        let mut out = Vec::new();
        for (idx, w) in self.webhook_configs.iter().enumerate() {
            match Webhook::build(w, ctx.globals.http_config.as_ref(), ctx.base, ctx.file) {
                Ok(hook) => out.push(Integration::new(
                    "webhook",
                    idx,
                    w.send_resolved.unwrap_or(true),
                    Arc::new(hook),
                )),
                Err(e) => errors.push(format!("{at} webhook_configs[{idx}]: {e}")),
            }
        }
        macro_rules! each {
            ($list:expr, $name:literal, $key:literal, $ty:path) => {
                each!($list, $name, $key, $ty, true)
            };
            // The last argument is Alertmanager's default for `send_resolved`.
            ($list:expr, $name:literal, $key:literal, $ty:path, $resolved:literal) => {
                for (idx, raw) in $list.iter().enumerate() {
                    match <$ty>::build(raw, ctx) {
                        Ok(n) => out.push(Integration::new(
                            $name,
                            idx,
                            raw.send_resolved.unwrap_or($resolved),
                            Arc::new(n),
                        )),
                        Err(e) => errors.push(format!("{at} {}[{idx}]: {e}", $key)),
                    }
                }
            };
        }
        each!(
            self.email_configs,
            "email",
            "email_configs",
            email::Email,
            false
        );
        each!(
            self.slack_configs,
            "slack",
            "slack_configs",
            slack::Slack,
            false
        );
        each!(
            self.mattermost_configs,
            "mattermost",
            "mattermost_configs",
            mattermost::Mattermost
        );
        each!(
            self.msteamsv2_configs,
            "msteamsv2",
            "msteamsv2_configs",
            msteamsv2::Teams
        );
        each!(
            self.discord_configs,
            "discord",
            "discord_configs",
            discord::Discord
        );
        each!(
            self.telegram_configs,
            "telegram",
            "telegram_configs",
            telegram::Telegram
        );
        each!(
            self.matrix_configs,
            "matrix",
            "matrix_configs",
            matrix::Matrix
        );
        each!(
            self.googlechat_configs,
            "googlechat",
            "googlechat_configs",
            googlechat::GoogleChat
        );
        each!(
            self.twilio_configs,
            "twilio",
            "twilio_configs",
            twilio::Twilio
        );
        each!(self.ovh_configs, "ovh", "ovh_configs", ovh::Ovh);
        each!(
            self.vonage_configs,
            "vonage",
            "vonage_configs",
            vonage::Vonage
        );
        each!(
            self.freemobile_configs,
            "freemobile",
            "freemobile_configs",
            freemobile::FreeMobile
        );
        each!(self.sms_configs, "sms", "sms_configs", sms::Gateway);
        each!(
            self.outbox_configs,
            "outbox",
            "outbox_configs",
            outbox::Outbox
        );
        out
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInhibit {
    pub name: Option<String>,
    #[serde(default)]
    pub source_match: BTreeMap<String, String>,
    #[serde(default)]
    pub source_match_re: BTreeMap<String, String>,
    #[serde(default)]
    pub source_matchers: Vec<Spanned<String>>,
    #[serde(default)]
    pub target_match: BTreeMap<String, String>,
    #[serde(default)]
    pub target_match_re: BTreeMap<String, String>,
    #[serde(default)]
    pub target_matchers: Vec<Spanned<String>>,
    #[serde(default)]
    pub equal: Vec<String>,
}

/// Alertmanager's top-level keys as they appear in the file.
#[derive(Debug, Default)]
pub struct RawAlertmanager<'a> {
    pub resolve_timeout: Option<&'a Dur>,
    pub globals: Globals,
    pub route: Option<&'a RawRoute>,
    pub receivers: &'a [RawReceiver],
    pub inhibit_rules: &'a [RawInhibit],
    pub time_intervals: &'a [RawNamed],
    pub mute_time_intervals: &'a [RawNamed],
    pub templates: &'a [String],
    pub oncall: Option<&'a crate::oncall::RawOnCall>,
}

/// What the dispatcher runs: the validated tree, receivers, inhibit rules and intervals.
#[derive(Debug, Clone)]
pub struct Routing {
    pub route: Route,
    pub receivers: BTreeMap<String, Receiver>,
    pub inhibit_rules: Vec<InhibitRule>,
    pub time_intervals: HashMap<String, TimeInterval>,
    pub resolve_timeout_ms: i64,
    /// The defaults, the `templates:` files and every integration's field templates.
    pub templates: Arc<Templates>,
    pub oncall: Option<Arc<crate::oncall::OnCall>>,
}

/// Validates Alertmanager's keys; `None` with errors pushed when they are wrong, `None` without
/// errors when the file has no `route` (a router that only evaluates rules).
pub fn build(
    raw: &RawAlertmanager<'_>,
    file: &str,
    base: &Path,
    errors: &mut Vec<String>,
) -> Option<Routing> {
    let start = errors.len();
    let resolve_timeout_ms = dur(
        &raw.resolve_timeout.cloned(),
        "global.resolve_timeout",
        300_000,
        file,
        errors,
    );
    let Some(root) = raw.route else {
        if !raw.receivers.is_empty() {
            errors.push(format!("{file}: no route provided in config"));
        }
        return None;
    };
    let mut files: Vec<PathBuf> = Vec::new();
    for t in raw.templates {
        let pattern = if Path::new(t).is_absolute() {
            t.into()
        } else {
            base.join(t)
        };
        match crate::rules::file::expand_glob(&pattern) {
            Ok(found) => files.extend(found),
            Err(e) => errors.push(format!("{file}: templates: {t}: {e}")),
        }
    }
    let mut builder = match Builder::new(&files) {
        Ok(b) => b,
        Err(e) => {
            errors.push(format!("{file}: templates: {e}"));
            Templates::defaults()
        }
    };
    let mut receivers = BTreeMap::new();
    let mut buckets = throttle::Buckets::default();
    for r in raw.receivers {
        let at = format!(
            "{file}: {}:{}: receiver {:?}:",
            r.name.referenced.line(),
            r.name.referenced.column(),
            r.name.value
        );
        if r.name.value.is_empty() {
            errors.push(format!("{at} missing name in receiver"));
        }
        for n in r.unsupported() {
            errors.push(format!(
                "{at} {n} is not supported (supported: {SUPPORTED})"
            ));
        }
        let mut ctx = BuildCtx {
            globals: &raw.globals,
            base,
            file,
            templates: &mut builder,
        };
        let mut integrations = r.integrations(&mut ctx, errors, &at);
        for i in &mut integrations {
            if let Some((key, rate)) = i.notifier.destination() {
                i.bucket = Some(buckets.get(&key, rate));
            }
        }
        let limit = r.limit.as_ref().and_then(|l| {
            let per = dur(&Some(l.per.clone()), "limit.per", 0, file, errors);
            if l.max == 0 || per <= 0 {
                errors.push(format!("{at} limit: max and per must be positive"));
                return None;
            }
            Some(Arc::new(throttle::Limit::new(l.max, per * 1_000_000)))
        });
        if receivers
            .insert(
                r.name.value.clone(),
                Receiver {
                    name: r.name.value.clone(),
                    integrations,
                    limit,
                    escalation: r.escalation.clone(),
                    oncall: r.oncall.clone(),
                },
            )
            .is_some()
        {
            errors.push(format!(
                "{at} notification config name {:?} is not unique",
                r.name.value
            ));
        }
    }
    let names: Vec<String> = raw.receivers.iter().map(|r| r.name.value.clone()).collect();
    let oncall = raw
        .oncall
        .and_then(|o| crate::oncall::build(o, &names, base, file, errors));
    for r in raw.receivers {
        if let Some(s) = &r.oncall
            && oncall.as_ref().is_none_or(|o| !o.schedules.contains_key(s))
        {
            errors.push(format!(
                "{file}: receiver {:?}: oncall schedule {s:?} is not defined in oncall.schedules",
                r.name.value
            ));
        }
        if let Some(p) = &r.escalation
            && oncall.as_ref().is_none_or(|o| !o.policies.contains_key(p))
        {
            errors.push(format!(
                "{file}: receiver {:?}: escalation policy {p:?} is not defined in oncall.escalation_policies",
                r.name.value
            ));
        }
    }
    let mut time_intervals = HashMap::new();
    for ti in raw.time_intervals.iter().chain(raw.mute_time_intervals) {
        match TimeInterval::build(ti) {
            Ok(t) => {
                if time_intervals.insert(ti.name.clone(), t).is_some() {
                    errors.push(format!("{file}: time interval {:?} is not unique", ti.name));
                }
            }
            Err(e) => errors.push(format!("{file}: {e}")),
        }
    }
    let mut inhibit_rules = Vec::new();
    for (i, r) in raw.inhibit_rules.iter().enumerate() {
        let at = format!("{file}: inhibit_rules[{i}]:");
        let source = route_matchers(
            &r.source_match,
            &r.source_match_re,
            &r.source_matchers,
            &at,
            file,
            errors,
        );
        let target = route_matchers(
            &r.target_match,
            &r.target_match_re,
            &r.target_matchers,
            &at,
            file,
            errors,
        );
        for e in &r.equal {
            if !valid_name(e) {
                errors.push(format!("{at} equal: invalid label name {e:?}"));
            }
        }
        inhibit_rules.push(InhibitRule {
            name: r.name.clone().unwrap_or_default(),
            source,
            target,
            equal: r.equal.clone(),
        });
    }

    // The root route: receiver required, no matchers, continue or time intervals.
    let root_at = root
        .receiver
        .as_ref()
        .map(|r| {
            format!(
                "{file}: {}:{}: route:",
                r.referenced.line(),
                r.referenced.column()
            )
        })
        .unwrap_or_else(|| format!("{file}: route:"));
    if root.receiver.as_ref().is_none_or(|r| r.value.is_empty()) {
        errors.push(format!(
            "{root_at} root route must specify a default receiver"
        ));
    }
    if !root.match_.is_empty() || !root.match_re.is_empty() || !root.matchers.is_empty() {
        errors.push(format!("{root_at} root route must not have any matchers"));
    }
    if root.continue_ {
        errors.push(format!("{root_at} cannot have continue in root route"));
    }
    if !root.mute_time_intervals.is_empty() {
        errors.push(format!(
            "{root_at} root route must not have any mute time intervals"
        ));
    }
    if !root.active_time_intervals.is_empty() {
        errors.push(format!(
            "{root_at} root route must not have any active time intervals"
        ));
    }
    let mut tree = build_route(root, &RouteOpts::default(), None, file, errors);
    tree.number();
    let mut seen_receivers = HashSet::new();
    for r in tree.walk() {
        if !receivers.contains_key(&r.opts.receiver) && seen_receivers.insert(&r.opts.receiver) {
            errors.push(format!(
                "{file}: undefined receiver {:?} used in route",
                r.opts.receiver
            ));
        }
        for t in r
            .opts
            .mute_time_intervals
            .iter()
            .chain(&r.opts.active_time_intervals)
        {
            if !time_intervals.contains_key(t) {
                errors.push(format!(
                    "{file}: undefined time interval {t:?} used in route"
                ));
            }
        }
    }
    if errors.len() > start {
        return None;
    }
    Some(Routing {
        route: tree,
        receivers,
        inhibit_rules,
        time_intervals,
        resolve_timeout_ms,
        templates: Arc::new(builder.finish()),
        oncall,
    })
}

fn build_route(
    raw: &RawRoute,
    parent: &RouteOpts,
    parent_key: Option<&str>,
    file: &str,
    errors: &mut Vec<String>,
) -> Route {
    let at = match &raw.receiver {
        Some(r) => format!(
            "{file}: {}:{}: route:",
            r.referenced.line(),
            r.referenced.column()
        ),
        None => format!("{file}: route:"),
    };
    let mut opts = parent.clone();
    opts.mute_time_intervals = raw.mute_time_intervals.clone();
    opts.active_time_intervals = raw.active_time_intervals.clone();
    if let Some(r) = &raw.receiver {
        opts.receiver = r.value.clone();
    }
    // An empty list is the same as none: Alertmanager 0.25 inherits the parent's grouping then
    // (measured side by side; its docs suggest otherwise).
    if let Some(g) = raw.group_by.as_ref().filter(|g| !g.is_empty()) {
        opts.group_by_all = false;
        opts.group_by.clear();
        let mut seen = HashSet::new();
        for l in g {
            if l == "..." {
                if g.len() > 1 {
                    errors.push(format!("{at} cannot have wildcard group_by (`...`) and other labels at the same time"));
                }
                opts.group_by_all = true;
            } else if !valid_name(l) {
                errors.push(format!("{at} group_by: invalid label name {l:?}"));
            } else if !seen.insert(l) {
                errors.push(format!("{at} duplicated label {l:?} in group_by"));
            } else {
                opts.group_by.push(l.clone());
            }
        }
        opts.group_by.sort();
    }
    opts.group_wait_ms = dur(
        &raw.group_wait,
        "group_wait",
        parent.group_wait_ms,
        file,
        errors,
    );
    opts.group_interval_ms = dur(
        &raw.group_interval,
        "group_interval",
        parent.group_interval_ms,
        file,
        errors,
    );
    opts.repeat_interval_ms = dur(
        &raw.repeat_interval,
        "repeat_interval",
        parent.repeat_interval_ms,
        file,
        errors,
    );
    if opts.group_interval_ms == 0 {
        errors.push(format!("{at} group_interval cannot be zero"));
    }
    if opts.repeat_interval_ms == 0 {
        errors.push(format!("{at} repeat_interval cannot be zero"));
    }
    let matchers = route_matchers(&raw.match_, &raw.match_re, &raw.matchers, &at, file, errors);
    let mut route = Route::new(matchers, raw.continue_, opts, parent_key);
    let key = route.key.clone();
    route.routes = raw
        .routes
        .iter()
        .map(|c| build_route(c, &route.opts, Some(&key), file, errors))
        .collect();
    route
}

/// `match`, `match_re` and `matchers` of a route or an inhibit side, ANDed.
fn route_matchers(
    eq: &BTreeMap<String, String>,
    re: &BTreeMap<String, String>,
    list: &[Spanned<String>],
    at: &str,
    file: &str,
    errors: &mut Vec<String>,
) -> Vec<Matcher> {
    let mut out = Vec::new();
    for (op, map) in [(Op::Equal, eq), (Op::Regex, re)] {
        for (k, v) in map {
            if !valid_name(k) {
                errors.push(format!("{at} invalid label name {k:?} in match"));
                continue;
            }
            match Matcher::new(k, op, v) {
                Ok(m) => out.push(m),
                Err(e) => errors.push(format!("{at} {k}: {e}")),
            }
        }
    }
    for s in list {
        match parse_matchers(&s.value) {
            Ok(ms) => out.extend(ms),
            Err(e) => errors.push(format!(
                "{file}: {}:{}: matchers: {:?}: {e}",
                s.referenced.line(),
                s.referenced.column(),
                s.value
            )),
        }
    }
    out
}

/// Keys whose values are credentials anywhere in the file.
const SECRET_KEYS: &[&str] = &[
    "password",
    "bearer_token",
    "credentials",
    "auth_password",
    "auth_secret",
    "smtp_auth_password",
    "smtp_auth_secret",
    "api_secret",
    "application_secret",
    "consumer_key",
    "auth_token",
    "bot_token",
    "access_token",
    "pass",
    "api_key",
    "routing_key",
    "service_key",
    "slack_api_url",
    "signing_key",
    "Authorization",
    "authorization",
];

/// Keys that are credentials inside `receivers:` (webhook URLs embed their secret).
const RECEIVER_SECRET_KEYS: &[&str] = &["url", "api_url", "webhook_url", "homeserver_url"];

/// The configuration text with every secret value replaced by `<secret>`, as Alertmanager
/// shows its configuration: for the status APIs.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_receivers = false;
    for line in text.lines() {
        if !line.starts_with([' ', '\t', '#', '-']) && !line.trim().is_empty() {
            in_receivers = line.starts_with("receivers:");
        }
        let secret = |k: &str| {
            SECRET_KEYS.contains(&k) || (in_receivers && RECEIVER_SECRET_KEYS.contains(&k))
        };
        let body = line.trim_start_matches([' ', '\t', '-']);
        let indent = &line[..line.len() - body.len()];
        match body.split_once(':') {
            // Block style `key: value`: the whole value.
            Some((k, v))
                if secret(k.trim()) && !v.trim().is_empty() && !v.trim().starts_with('{') =>
            {
                out.push_str(indent);
                out.push_str(k);
                out.push_str(": <secret>");
            }
            // Flow style `{key: value, …}`: each secret value up to `,` or `}`.
            _ => out.push_str(&redact_flow(line, &secret)),
        }
        out.push('\n');
    }
    out
}

fn redact_flow(line: &str, secret: &dyn Fn(&str) -> bool) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(i) = rest.find(['{', ',']) {
        out.push_str(&rest[..=i]);
        rest = &rest[i + 1..];
        let Some((k, after)) = rest.split_once(':') else {
            continue;
        };
        if k.contains(['{', '}', ',']) || !secret(k.trim()) {
            continue;
        }
        let end = after.find([',', '}']).unwrap_or(after.len());
        out.push_str(k);
        out.push_str(": <secret>");
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod redact_tests {
    #[test]
    fn secrets_are_hidden_everything_else_kept() {
        let text = "global:\n  smtp_auth_password: hunter2\n  http_config: {authorization: {credentials: abc}}\nremote_query:\n  url: http://prom:9090\nreceivers:\n- name: r\n  slack_configs:\n  - api_url: https://hooks.slack.com/services/T/B/X\n    channel: '#ops'\n  sms_configs:\n  - url: https://gw/send\n    headers: {Authorization: 'Bearer xyz', X-Other: ok}\n";
        let r = super::redact(text);
        for leak in ["hunter2", "abc", "hooks.slack.com", "gw/send", "xyz"] {
            assert!(!r.contains(leak), "{leak} leaked:\n{r}");
        }
        for kept in ["http://prom:9090", "#ops", "X-Other: ok", "name: r"] {
            assert!(r.contains(kept), "{kept} lost:\n{r}");
        }
    }
}
