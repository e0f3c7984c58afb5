//! The router configuration `vigie up` writes into its data directory: scrape this node's agent
//! and the router itself, evaluate the rule files, send every notification to the outbox. It is
//! an ordinary router configuration, so a user who outgrows it copies it, adds a channel and
//! passes it back with `--config.file`.

/// What the generated configuration depends on.
pub struct NodeConfig<'a> {
    /// Rule file globs, absolute.
    pub rule_files: &'a [String],
    /// `host:port` the router scrapes the agent at.
    pub agent: &'a str,
    /// `host:port` the router scrapes itself at.
    pub router: &'a str,
    pub scrape_interval: &'a str,
    pub group_wait: &'a str,
    pub group_interval: &'a str,
}

/// A YAML double-quoted scalar (JSON's escapes are YAML's).
fn q(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

impl NodeConfig<'_> {
    pub fn render(&self) -> String {
        let rules: Vec<String> = self.rule_files.iter().map(|r| q(r)).collect();
        format!(
            r#"# Written by `vigie up` at every start: edits here are overwritten. To add a channel, copy
# this file, add a receiver and a route to it, and run `vigie up --config.file=COPY`.
global:
  scrape_interval: {si}
  evaluation_interval: {si}
rule_files: [{rules}]
scrape_configs:
  - job_name: node
    static_configs: [{{targets: [{agent}]}}]
  - job_name: vigie-router
    static_configs: [{{targets: [{router}]}}]
route:
  receiver: outbox
  group_by: [alertname, instance]
  group_wait: {gw}
  group_interval: {gi}
  repeat_interval: 4h
receivers:
  - name: outbox
    # One JSON line per notification in outbox.jsonl (beside this file), and the console.
    outbox_configs: [{{path: outbox.jsonl, console: true, send_resolved: true}}]
"#,
            si = self.scrape_interval,
            rules = rules.join(", "),
            agent = q(self.agent),
            router = q(self.router),
            gw = self.group_wait,
            gi = self.group_interval,
        )
    }
}

/// Where a scraper on this node reaches a listen address: `:9100`, `0.0.0.0:9100` →
/// `127.0.0.1:9100`; `[::]:9100` → `[::1]:9100`; a named address stays as it is.
pub fn local_target(listen: &str) -> String {
    match listen.rsplit_once(':') {
        Some(("" | "0.0.0.0", port)) => format!("127.0.0.1:{port}"),
        Some(("[::]", port)) => format!("[::1]:{port}"),
        _ => listen.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_targets() {
        assert_eq!(local_target(":9100"), "127.0.0.1:9100");
        assert_eq!(local_target("0.0.0.0:9100"), "127.0.0.1:9100");
        assert_eq!(local_target("[::]:9093"), "[::1]:9093");
        assert_eq!(local_target("127.0.0.1:19100"), "127.0.0.1:19100");
        assert_eq!(local_target("node-1:9100"), "node-1:9100");
    }

    /// The generated file is a configuration the router accepts as it is, routing to the outbox.
    #[test]
    fn rendered_config_loads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rules = dir.path().join("rules");
        std::fs::create_dir(&rules).expect("mkdir");
        std::fs::write(
            rules.join("a.yml"),
            "groups: [{name: a, rules: [{alert: A, expr: vector(1)}]}]\n",
        )
        .expect("write rules");
        let glob = format!("{}/*.yml", rules.display());
        let text = NodeConfig {
            rule_files: &[glob],
            agent: "127.0.0.1:9100",
            router: "127.0.0.1:9093",
            scrape_interval: "15s",
            group_wait: "10s",
            group_interval: "1m",
        }
        .render();
        let path = dir.path().join("vigie.yml");
        std::fs::write(&path, text).expect("write config");
        let cfg = vigie_router::config::Config::load(&path).expect("the router accepts it");
        assert_eq!(cfg.jobs.len(), 2);
        let routing = cfg.routing.clone().expect("a route");
        assert_eq!(routing.route.opts.receiver, "outbox");
        let outbox = &routing.receivers["outbox"].integrations;
        assert_eq!(outbox.len(), 1);
        assert_eq!(outbox[0].name, "outbox");
        assert!(outbox[0].send_resolved);
        let groups = vigie_router::server::load_rules(&cfg).expect("rules load");
        assert_eq!(groups.len(), 1);
    }
}
