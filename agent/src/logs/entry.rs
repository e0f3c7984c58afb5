//! One log entry as it moves from a source through the stages to a batch.

use std::collections::HashMap;

/// Stream labels, kept sorted by name so a set renders and compares the same way every time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Labels(pub Vec<(String, String)>);

impl Labels {
    pub fn from_pairs(mut pairs: Vec<(String, String)>) -> Labels {
        pairs.sort();
        pairs.dedup_by(|a, b| a.0 == b.0);
        Labels(pairs)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].1.as_str())
    }

    /// Sets a label; an empty value removes it, as Loki does with empty values.
    pub fn set(&mut self, name: &str, value: &str) {
        match self.0.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
            Ok(i) if value.is_empty() => {
                self.0.remove(i);
            }
            Ok(i) => value.clone_into(&mut self.0[i].1),
            Err(_) if value.is_empty() => {}
            Err(i) => self.0.insert(i, (name.to_string(), value.to_string())),
        }
    }

    pub fn remove(&mut self, name: &str) -> Option<String> {
        self.0
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
            .map(|i| self.0.remove(i).1)
    }

    /// Drops `__`-prefixed labels (Promtail's internal ones never reach Loki).
    pub fn without_internal(mut self) -> Labels {
        self.0.retain(|(n, _)| !n.starts_with("__"));
        self
    }

    /// Loki's stream selector text: `{a="b", c="d"}`, values quoted as Go's `strconv.Quote`.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(2 + self.0.len() * 24);
        out.push('{');
        for (i, (n, v)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(n);
            out.push('=');
            go_quote(v, &mut out);
        }
        out.push('}');
        out
    }
}

/// Go's `strconv.Quote` for the characters that need it in a label value.
pub fn go_quote(v: &str, out: &mut String) {
    use std::fmt::Write;
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Label names Loki accepts unquoted; Promtail replaces everything else with `_`.
pub fn sanitize_label_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

pub fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Where an entry came from and how far reading that source has got once it is delivered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checkpoint {
    /// Source key (see `source::SourceKey`), shared by every entry of the source.
    pub key: std::sync::Arc<str>,
    /// Byte offset after the entry's last line, or a journal cursor.
    pub position: Position,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Position {
    #[default]
    None,
    Offset(u64),
    Cursor(String),
}

#[derive(Debug, Clone, Default)]
pub struct Entry {
    pub labels: Labels,
    /// Nanoseconds since the Unix epoch; fixed when the line is read.
    pub ts: i64,
    pub line: String,
    pub metadata: Vec<(String, String)>,
    /// Values the parsing stages extracted (Promtail's "extracted map").
    pub extracted: HashMap<String, String>,
    pub checkpoint: Checkpoint,
    /// Set by a `tenant` stage or the `__tenant_id__` label.
    pub tenant: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_stay_sorted_and_render_like_promtail() {
        let mut l = Labels::from_pairs(vec![("job".into(), "x".into())]);
        l.set("filename", "/var/log/a \"b\".log");
        l.set("empty", "");
        assert_eq!(l.render(), r#"{filename="/var/log/a \"b\".log", job="x"}"#);
        l.set("job", "");
        assert_eq!(l.get("job"), None);
        assert_eq!(sanitize_label_name("foo.bar-1"), "foo_bar_1");
        assert_eq!(sanitize_label_name("1x"), "_1x");
    }
}
