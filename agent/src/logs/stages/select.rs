//! The LogQL stream selector of a `match` stage: `{app="web", level=~"warn|error"}`, optionally
//! followed by line filters (`|= "x"`, `!= "x"`, `|~ "re"`, `!~ "re"`).

use regex::Regex;

use crate::logs::entry::Labels;

#[derive(Debug, Clone)]
enum Op {
    Eq(String),
    Ne(String),
    Re(Regex),
    Nre(Regex),
}

#[derive(Debug, Clone)]
enum LineFilter {
    Contains(String),
    NotContains(String),
    Re(Regex),
    NotRe(Regex),
}

#[derive(Debug, Clone)]
pub struct Selector {
    matchers: Vec<(String, Op)>,
    filters: Vec<LineFilter>,
}

fn quoted(s: &str) -> Result<(String, &str), String> {
    let s = s.trim_start();
    let q = s.chars().next().ok_or("expected a quoted string")?;
    if q == '`' {
        let end = s[1..].find('`').ok_or("unterminated raw string")?;
        return Ok((s[1..1 + end].to_string(), &s[end + 2..]));
    }
    if q != '"' {
        return Err(format!("expected a quoted string at {s:?}"));
    }
    let mut out = String::new();
    let mut chars = s[1..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, &s[i + 2..])),
            '\\' => match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, 't')) => out.push('\t'),
                Some((_, c)) => out.push(c),
                None => break,
            },
            c => out.push(c),
        }
    }
    Err("unterminated string".into())
}

fn anchored(re: &str) -> Result<Regex, String> {
    Regex::new(&format!("^(?s:{re})$")).map_err(|e| format!("regex {re:?}: {e}"))
}

impl Selector {
    pub fn parse(text: &str) -> Result<Selector, String> {
        let t = text.trim();
        let body = t
            .strip_prefix('{')
            .ok_or_else(|| format!("selector {text:?}: must start with {{"))?;
        let mut rest = body;
        let mut matchers = Vec::new();
        loop {
            rest = rest.trim_start();
            if let Some(r) = rest.strip_prefix('}') {
                rest = r;
                break;
            }
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .ok_or_else(|| format!("selector {text:?}: unterminated"))?;
            let name = rest[..end].to_string();
            if name.is_empty() {
                return Err(format!(
                    "selector {text:?}: expected a label name at {rest:?}"
                ));
            }
            rest = rest[end..].trim_start();
            let (op, r) = if let Some(r) = rest.strip_prefix("=~") {
                ("=~", r)
            } else if let Some(r) = rest.strip_prefix("!~") {
                ("!~", r)
            } else if let Some(r) = rest.strip_prefix("!=") {
                ("!=", r)
            } else if let Some(r) = rest.strip_prefix('=') {
                ("=", r)
            } else {
                return Err(format!(
                    "selector {text:?}: expected an operator after {name}"
                ));
            };
            let (value, r) = quoted(r).map_err(|e| format!("selector {text:?}: {e}"))?;
            let op = match op {
                "=" => Op::Eq(value),
                "!=" => Op::Ne(value),
                "=~" => Op::Re(anchored(&value)?),
                _ => Op::Nre(anchored(&value)?),
            };
            matchers.push((name, op));
            rest = r.trim_start();
            rest = rest.strip_prefix(',').unwrap_or(rest);
        }
        if matchers.is_empty() {
            return Err(format!("selector {text:?}: needs at least one matcher"));
        }
        let mut filters = Vec::new();
        loop {
            rest = rest.trim_start();
            if rest.is_empty() {
                break;
            }
            let (op, r) = ["|=", "!=", "|~", "!~"]
                .iter()
                .find_map(|op| rest.strip_prefix(op).map(|r| (*op, r)))
                .ok_or_else(|| format!("selector {text:?}: unsupported pipeline at {rest:?}"))?;
            let (value, r) = quoted(r).map_err(|e| format!("selector {text:?}: {e}"))?;
            filters.push(match op {
                "|=" => LineFilter::Contains(value),
                "!=" => LineFilter::NotContains(value),
                "|~" => {
                    LineFilter::Re(Regex::new(&value).map_err(|e| format!("regex {value:?}: {e}"))?)
                }
                _ => LineFilter::NotRe(
                    Regex::new(&value).map_err(|e| format!("regex {value:?}: {e}"))?,
                ),
            });
            rest = r;
        }
        Ok(Selector { matchers, filters })
    }

    pub fn matches(&self, labels: &Labels, line: &str) -> bool {
        self.matchers.iter().all(|(n, op)| {
            let v = labels.get(n).unwrap_or("");
            match op {
                Op::Eq(x) => v == x,
                Op::Ne(x) => v != x,
                Op::Re(r) => r.is_match(v),
                Op::Nre(r) => !r.is_match(v),
            }
        }) && self.filters.iter().all(|f| match f {
            LineFilter::Contains(s) => line.contains(s.as_str()),
            LineFilter::NotContains(s) => !line.contains(s.as_str()),
            LineFilter::Re(r) => r.is_match(line),
            LineFilter::NotRe(r) => !r.is_match(line),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_with_line_filters() {
        let s = Selector::parse(r#"{app="web", level=~"warn|error"} |= "timeout" != "retry""#)
            .expect("parses");
        let l = Labels::from_pairs(vec![
            ("app".into(), "web".into()),
            ("level".into(), "error".into()),
        ]);
        assert!(s.matches(&l, "db timeout"));
        assert!(!s.matches(&l, "db timeout, retry"));
        assert!(!s.matches(&l, "ok"));
        let l2 = Labels::from_pairs(vec![
            ("app".into(), "web".into()),
            ("level".into(), "errors".into()),
        ]);
        assert!(!s.matches(&l2, "timeout"));
        assert!(Selector::parse("app=\"x\"").is_err());
        assert!(Selector::parse("{app=\"x\"} | json").is_err());
    }
}
