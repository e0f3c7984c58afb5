//! The Prometheus exposition formats, spoken by both the agent (serving `/metrics`) and the
//! router (scraping agents).
//!
//! Why a crate of our own: node_exporter's output is byte-defined by Go's client library (float
//! spelling, ordering, escaping), `prometheus-client` writes only OpenMetrics with different float
//! spelling, and the tikv crate formats floats the Rust way. Matching the bytes is the product, so
//! the encoders live here, next to the parser that reads the same format back.

pub mod float;
pub mod model;
pub mod openmetrics;
pub mod parse;
pub mod text;

pub use model::{Conflict, Family, Kind, LabelName, Labels, Sample, Suffix, normalize};
pub use parse::{ParseError, parse_text};

/// `Content-Type` of the classic text format, as node_exporter sends it.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// `Content-Type` of OpenMetrics 1.0.0 text, as client_golang sends it.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Which text format a scraper asked for in its `Accept` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    OpenMetrics,
}

impl Format {
    /// Picks OpenMetrics when the `Accept` header lists `application/openmetrics-text` with a
    /// weight above every `text/plain` entry (Prometheus sends OpenMetrics first, text at q=0.5).
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Text;
        };
        let mut best_om = -1.0f32;
        let mut best_text = -1.0f32;
        for part in accept.split(',') {
            let mut params = part.split(';');
            let media = params.next().unwrap_or("").trim().to_ascii_lowercase();
            let mut q = 1.0f32;
            let mut version_ok = true;
            for p in params {
                let p = p.trim();
                if let Some(v) = p.strip_prefix("q=") {
                    q = v.trim().parse().unwrap_or(0.0);
                } else if let Some(v) = p.strip_prefix("version=")
                    && media == "application/openmetrics-text"
                {
                    version_ok = v.starts_with("1.0") || v.starts_with("0.0.1");
                }
            }
            match media.as_str() {
                "application/openmetrics-text" if version_ok => best_om = best_om.max(q),
                "text/plain" | "*/*" | "text/*" => best_text = best_text.max(q),
                _ => {}
            }
        }
        if best_om > 0.0 && best_om >= best_text {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => TEXT_CONTENT_TYPE,
            Format::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
        }
    }

    /// Encodes normalised families (see [`normalize`]) in this format.
    pub fn encode(self, families: &[Family], out: &mut Vec<u8>) {
        match self {
            Format::Text => text::encode(families, out),
            Format::OpenMetrics => openmetrics::encode(families, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_accept_header_gets_openmetrics() {
        let prom = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::negotiate(Some(prom)), Format::OpenMetrics);
        assert_eq!(Format::negotiate(None), Format::Text);
        assert_eq!(Format::negotiate(Some("*/*")), Format::Text);
        assert_eq!(
            Format::negotiate(Some("text/plain;version=0.0.4")),
            Format::Text
        );
        assert_eq!(
            Format::negotiate(Some("text/plain;q=1,application/openmetrics-text;q=0.2")),
            Format::Text
        );
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text; version=2.0.0")),
            Format::Text
        );
    }
}
