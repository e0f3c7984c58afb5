//! A real Prometheus server (Debian `prometheus`) scrapes the agent over TLS with basic auth, in
//! OpenMetrics (its preferred format) and in text 0.0.4 (`--no-web.openmetrics`); a job with a
//! wrong password must see the target down.

use std::process::Command;
use std::time::Duration;

use vigie_e2e::{Proc, bin, collector_flags, free_port, get, peer, wait_for, wait_http};

const PASSWORD: &str = "s3cret-scrape";

fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `openssl req` with a fresh P-256 key written to `<name>.key`, plus `extra`.
fn new_key(dir: &std::path::Path, name: &str, extra: &[&str]) {
    let key = format!("{name}.key");
    let mut args = vec![
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        &key,
    ];
    args.extend_from_slice(extra);
    openssl(dir, &args);
}

/// A test CA and a server certificate for 127.0.0.1.
fn make_certs(dir: &std::path::Path) {
    new_key(
        dir,
        "ca",
        &[
            "-x509",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=vigie test CA",
        ],
    );
    new_key(
        dir,
        "server",
        &["-out", "server.csr", "-subj", "/CN=127.0.0.1"],
    );
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n").unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
}

fn query(port: u16, q: &str) -> serde_json::Value {
    let path = format!(
        "/api/v1/query?query={}",
        q.replace(' ', "%20")
            .replace('{', "%7B")
            .replace('}', "%7D")
            .replace('"', "%22")
            .replace('=', "%3D")
    );
    let r = get(port, &path, &[]).expect("query Prometheus");
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{q}: {e}: {}", r.text()))
}

fn results(v: &serde_json::Value) -> Vec<(serde_json::Value, f64)> {
    v["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|r| {
            (
                r["metric"].clone(),
                r["value"][1]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(f64::NAN),
            )
        })
        .collect()
}

#[test]
fn prometheus_scrapes_the_agent_over_tls_with_basic_auth() {
    let Some(prometheus) = peer(&["prometheus"], "prometheus") else {
        return;
    };
    if peer(&["openssl"], "openssl").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    make_certs(d);
    let hash = bcrypt::hash(PASSWORD, 4).unwrap();
    std::fs::write(
        d.join("web.yml"),
        format!("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  prometheus: {hash}\n"),
    )
    .unwrap();
    let (p_om, p_text, p_prom) = (free_port(), free_port(), free_port());
    let web_config = d.join("web.yml").display().to_string();
    let start_agent = |name: &str, port: u16, extra: &[&str]| {
        let mut args = collector_flags();
        args.extend([
            format!("--web.listen-address=127.0.0.1:{port}"),
            format!("--web.config.file={web_config}"),
        ]);
        args.extend(extra.iter().map(|s| s.to_string()));
        Proc::start(name, &bin("vigie-agent"), &args, d)
    };
    let agent_om = start_agent("agent-openmetrics", p_om, &[]);
    let agent_text = start_agent("agent-text", p_text, &["--no-web.openmetrics"]);

    // Plain HTTP to a TLS port is refused; the agent is up once it refuses it.
    wait_for("the TLS agents to listen", Duration::from_secs(30), || {
        (std::net::TcpStream::connect(("127.0.0.1", p_om)).is_ok()
            && std::net::TcpStream::connect(("127.0.0.1", p_text)).is_ok())
        .then_some(())
    });
    assert!(
        get(p_om, "/metrics", &[])
            .map(|r| r.status != 200)
            .unwrap_or(true),
        "plain HTTP must not get metrics from a TLS listener"
    );

    let job = |name: &str, port: u16, password: &str| {
        format!(
            "  - job_name: {name}\n    scheme: https\n    tls_config:\n      ca_file: {ca}\n    basic_auth:\n      username: prometheus\n      password: {password}\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n",
            ca = d.join("ca.crt").display()
        )
    };
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n{}{}{}",
        job("openmetrics", p_om, PASSWORD),
        job("text", p_text, PASSWORD),
        job("wrong_password", p_om, "not-the-password"),
    );
    std::fs::write(d.join("prometheus.yml"), config).unwrap();
    let mut prom = Proc::start(
        "prometheus",
        &prometheus,
        &[
            format!("--config.file={}", d.join("prometheus.yml").display()),
            format!("--storage.tsdb.path={}", d.join("data").display()),
            format!("--web.listen-address=127.0.0.1:{p_prom}"),
        ],
        d,
    );
    wait_http(&mut prom, p_prom, "/-/ready");

    let ups = wait_for(
        "Prometheus to scrape all three jobs",
        Duration::from_secs(60),
        || {
            let ups = results(&query(p_prom, "up"));
            let all_seen = ["openmetrics", "text", "wrong_password"]
                .iter()
                .all(|j| ups.iter().any(|(m, _)| m["job"] == *j));
            let good_up = ups
                .iter()
                .filter(|(m, v)| m["job"] != "wrong_password" && *v == 1.0)
                .count()
                == 2;
            (all_seen && good_up).then_some(ups)
        },
    );
    for (m, v) in &ups {
        let expected = if m["job"] == "wrong_password" {
            0.0
        } else {
            1.0
        };
        assert_eq!(
            *v,
            expected,
            "up for {m}:\n{}\n{}",
            agent_om.log(),
            agent_text.log()
        );
    }
    for job in ["openmetrics", "text"] {
        let cpu = results(&query(
            p_prom,
            &format!("node_cpu_seconds_total{{job=\"{job}\",mode=\"idle\"}}"),
        ));
        assert!(!cpu.is_empty(), "no node_cpu_seconds_total from job {job}");
        assert!(cpu.iter().all(|(_, v)| *v > 0.0));
        // Counter family names must survive both encodings (OpenMetrics drops `_total` from the family).
        let forks = results(&query(
            p_prom,
            &format!("node_forks_total{{job=\"{job}\"}}"),
        ));
        assert_eq!(forks.len(), 1, "node_forks_total from job {job}");
        let samples = results(&query(
            p_prom,
            &format!("scrape_samples_scraped{{job=\"{job}\"}}"),
        ));
        assert!(
            samples.first().is_some_and(|(_, v)| *v > 300.0),
            "samples scraped for {job}: {samples:?}"
        );
    }
}
