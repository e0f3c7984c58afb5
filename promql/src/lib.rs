//! PromQL evaluation for Vigie's router: the rule engine, `vigie-router test rules` and the
//! PromQL test-script runner all evaluate through this one crate, so a rule behaves the same in
//! a unit test as in production.
//!
//! Parsing is `promql-parser`'s; this crate adds the evaluator over its AST, a [`Storage`] trait
//! that the embedded store, the remote API client and in-memory test data implement, and the
//! series notation (`1+2x10 _ stale`) that promqltest scripts and promtool unit tests share.

pub(crate) mod aggregate;
mod binary;
mod engine;
mod error;
pub(crate) mod functions;
pub mod hash;
mod kahan;
pub mod notation;
pub mod parse;
pub mod promqltest;
mod storage;
mod value;

pub use aggregate::format_f as format_go_float;
pub use engine::{Engine, selector_matchers};
pub use error::{Error, Result};
pub use functions::{civil_from_days, days_from_civil};
pub use parse::parse;
pub use storage::{MemoryStorage, Storage, matches};
pub use value::{
    Labels, METRIC_NAME, STALE_NAN_BITS, Sample, Series, Value, is_stale_nan, stale_nan,
};
