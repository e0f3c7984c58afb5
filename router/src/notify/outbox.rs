//! Vigie's outbox: each notification written where a person can read it — one JSON line in a
//! file and a few lines on the console — for a node with no chat, mail or SMS channel yet.
//! `vigie up` routes there by default, so a first breach is visible before any channel is set up.
//!
//! A line holds the rendered title and text (what a chat or mail would show) and the exact
//! webhook body (what a webhook would receive).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use serde::Deserialize;

use super::template::Field;
use super::{BoxFuture, BuildCtx, Notification, Notifier, Outcome, Reason, webhook};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutbox {
    pub send_resolved: Option<bool>,
    /// JSON-lines file, appended to; relative to the configuration file.
    pub path: Option<String>,
    /// Also print each notification on standard output.
    #[serde(default)]
    pub console: bool,
    pub title: Option<String>,
    pub text: Option<String>,
}

#[derive(Debug)]
pub struct Outbox {
    path: Option<PathBuf>,
    console: bool,
    title: Field,
    text: Field,
    /// One writer at a time, so lines and console blocks never interleave.
    write: Mutex<()>,
}

impl Outbox {
    pub fn build(raw: &RawOutbox, ctx: &mut BuildCtx<'_>) -> Result<Outbox, String> {
        if raw.path.is_none() && !raw.console {
            return Err("set path, console: true, or both".into());
        }
        Ok(Outbox {
            path: raw.path.as_ref().map(|p| ctx.base.join(p)),
            console: raw.console,
            title: ctx.field(
                raw.title.as_deref(),
                r#"{{ template "__subject" . }}"#,
                "title",
            )?,
            text: ctx.field(
                raw.text.as_deref(),
                r#"{{ template "__vigie_text" . }}"#,
                "text",
            )?,
            write: Mutex::new(()),
        })
    }

    /// The file line: time, receiver, status, rendered title and text, then the webhook body.
    pub fn line(&self, n: &Notification<'_>, title: &str, text: &str) -> Vec<u8> {
        let s = |v: &str| serde_json::Value::String(v.to_string()).to_string();
        let mut out = format!(
            "{{\"time\":{},\"receiver\":{},\"status\":{},\"title\":{},\"text\":{},\"webhook\":",
            s(&jiff::Timestamp::now().to_string()),
            s(&n.data.receiver),
            s(n.data.status),
            s(title),
            s(text),
        )
        .into_bytes();
        let mut body = webhook::payload(n.data, 0, n.contact, n.ack_url);
        if body.last() == Some(&b'\n') {
            body.pop();
        }
        out.extend_from_slice(&body);
        out.extend_from_slice(b"}\n");
        out
    }

    fn write(&self, n: &Notification<'_>) -> Outcome {
        let v = n.value(&|s: &str| s.to_string());
        let title = match n.render(&self.title, &v) {
            Ok(t) => t,
            Err(o) => return o,
        };
        let text = match n.render(&self.text, &v) {
            Ok(t) => t,
            Err(o) => return o,
        };
        let _one = self.write.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(path) = &self.path {
            let line = self.line(n, &title, &text);
            let written = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut f| f.write_all(&line));
            if let Err(e) = written {
                return Outcome::Retry(
                    Reason::Transport,
                    format!("writing {}: {e}", path.display()),
                    None,
                );
            }
        }
        if self.console {
            let mut block = format!("\n── notification to {} ──\n{title}\n", n.data.receiver);
            for l in text.lines().filter(|l| !l.trim().is_empty()) {
                block.push_str("  ");
                block.push_str(l);
                block.push('\n');
            }
            let mut out = std::io::stdout().lock();
            // A closed terminal is no reason to retry: the file has the line.
            let _ = out.write_all(block.as_bytes()).and_then(|()| out.flush());
        }
        Outcome::Sent
    }
}

impl Notifier for Outbox {
    fn notify<'a>(&'a self, n: &'a Notification<'a>) -> BoxFuture<'a, Outcome> {
        // A local append; short enough to do on the worker.
        Box::pin(async move { self.write(n) })
    }
}
