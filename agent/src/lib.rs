//! vigie-agent: node_exporter-compatible metrics for one node.

pub mod cli;
pub mod collector;
pub mod paths;
pub mod selfmetrics;
pub mod web;
