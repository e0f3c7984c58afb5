//! Parsing through `promql-parser`, with Prometheus' raw-string rule restored: the crate reads
//! backtick strings as escaped strings, so `` `\d+` `` would be refused; we hand it the same
//! string double-quoted instead.

use promql_parser::parser::Expr;

use crate::error::{Error, Result};

/// Parses a PromQL expression.
pub fn parse(input: &str) -> Result<Expr> {
    let fixed = quote_raw_strings(input);
    promql_parser::parser::parse(&fixed).map_err(Error::Parse)
}

/// Rewrites every backtick string as an equivalent double-quoted one; everything else is kept.
fn quote_raw_strings(input: &str) -> std::borrow::Cow<'_, str> {
    if !input.contains('`') {
        return input.into();
    }
    let mut out = String::with_capacity(input.len() + 8);
    let mut chars = input.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' => {
                out.push(c);
                let mut escaped = false;
                for d in chars.by_ref() {
                    out.push(d);
                    if escaped {
                        escaped = false;
                    } else if d == '\\' {
                        escaped = true;
                    } else if d == c {
                        break;
                    }
                }
            }
            '#' => {
                out.push(c);
                for d in chars.by_ref() {
                    out.push(d);
                    if d == '\n' {
                        break;
                    }
                }
            }
            '`' => {
                out.push('"');
                for d in chars.by_ref() {
                    match d {
                        '`' => break,
                        '\\' => out.push_str("\\\\"),
                        '"' => out.push_str("\\\""),
                        '\n' => out.push_str("\\n"),
                        other => out.push(other),
                    }
                }
                out.push('"');
            }
            other => out.push(other),
        }
    }
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_strings_keep_backslashes() {
        let e = parse(r#"label_replace(up, "x", "$1", "instance", `(\d+):.*`)"#).unwrap();
        assert!(e.to_string().contains(r#"(\\d+):.*"#), "{e}");
        assert!(parse(r#"up{instance=~`.*\d+`}"#).is_ok());
        assert!(parse(r#"up{a="`"}"#).is_ok());
    }
}
