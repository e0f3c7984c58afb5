//! vigie-agent: node_exporter-compatible metrics for one node, and its logs shipped to Loki.

pub mod cli;
pub mod collector;
pub mod glob;
pub mod logs;
pub mod paths;
pub mod selfmetrics;
pub mod serve;
pub mod web;
