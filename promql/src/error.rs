//! Errors of parsing and evaluation.

/// Why an expression could not be evaluated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The expression does not parse.
    #[error("parse error: {0}")]
    Parse(String),
    /// The expression parses but cannot be evaluated on this data (e.g. many-to-many matching).
    #[error("{0}")]
    Eval(String),
    /// A feature this engine deliberately does not implement (native histograms, some
    /// experimental syntax): a clear refusal instead of a wrong answer.
    #[error("not supported: {0}")]
    Unsupported(String),
}

pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn eval_err<T>(msg: impl Into<String>) -> Result<T> {
    Err(Error::Eval(msg.into()))
}
