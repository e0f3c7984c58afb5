//! vigie-router: evaluates Prometheus rule files and routes the alerts they raise.
//!
//! - [`rules`]: the rule-file model (strict, with file/line errors) and group evaluation;
//! - [`alerting`]: the alert state machine and Prometheus-style templates;
//! - [`unittest`]: promtool's `test rules` format;
//! - [`check`]: `check rules` / `check config` reports.

pub mod alerting;
pub mod amconfig;
pub mod check;
pub mod config;
pub mod dispatch;
pub mod durable;
pub mod inhibit;
pub mod labelset;
pub mod matcher;
pub mod nflog;
pub mod notify;
pub mod oncall;
pub mod provider;
pub mod rules;
pub mod server;
pub mod silence;
pub mod store;
pub mod timeinterval;
pub mod unittest;
