//! Mail against a real SMTP server (aiosmtpd) with TLS from a test CA and AUTH: the delivered
//! messages are read back from its Maildir and their parts, headers and threading checked.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vigie_router::config::Config;
use vigie_router::notify::{Data, DataAlert, Notification, Outcome, Reason};

struct Smtp {
    child: Child,
    port: u16,
    maildir: PathBuf,
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// aiosmtpd, or `None` (and a note) when it is not installed outside CI.
fn aiosmtpd_present() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "aiosmtpd is missing (bash .ci/run installs it)"
        );
        eprintln!("aiosmtpd not installed: mail tests skipped");
    }
    ok
}

/// A CA and a leaf for 127.0.0.1/localhost (rustls refuses a self-signed CA as a server).
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{
        BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_cert = leaf
        .signed_by(&leaf_key, &Issuer::from_params(&ca, &ca_key))
        .unwrap();
    let paths = (
        dir.join("ca.pem"),
        dir.join("leaf.pem"),
        dir.join("leaf.key"),
    );
    std::fs::write(&paths.0, ca_cert.pem()).unwrap();
    std::fs::write(&paths.1, leaf_cert.pem()).unwrap();
    std::fs::write(&paths.2, leaf_key.serialize_pem()).unwrap();
    paths
}

fn start(dir: &Path, mode: &str) -> Smtp {
    let (_, cert, key) = certificates(dir);
    let maildir = dir.join(format!("maildir-{mode}"));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp_double.py");
    let mut child = Command::new("python3")
        .args(["-W", "ignore"])
        .arg(script)
        .arg(&maildir)
        .arg(&cert)
        .arg(&key)
        .arg(port.to_string())
        .arg(mode)
        .args(["vigie", "s3cret"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3");
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufReader::new(out).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("SMTP double start");
    assert_eq!(line.trim(), "ready");
    Smtp {
        child,
        port,
        maildir,
    }
}

fn data(status: &'static str) -> Data {
    let labels: BTreeMap<String, String> = [
        ("alertname", "DiskFull"),
        ("instance", "db01"),
        ("severity", "critical"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    Data {
        receiver: "mail".into(),
        status,
        alerts: vec![DataAlert {
            status,
            labels: labels.clone(),
            annotations: [(
                "summary".to_string(),
                "Disque presque plein <b>".to_string(),
            )]
            .into(),
            starts_at: String::new(),
            ends_at: String::new(),
            generator_url: "http://prom/graph".into(),
            fingerprint: "3f2a9c0d1b7e4a55".into(),
            starts_ns: 1_795_492_680_000_000_000,
            ends_ns: if status == "resolved" {
                1_795_493_000_000_000_000
            } else {
                0
            },
        }],
        group_labels: [("alertname".to_string(), "DiskFull".to_string())].into(),
        common_labels: labels,
        common_annotations: BTreeMap::new(),
        external_url: "http://router:9093".into(),
        group_key: "{}:{alertname=\"DiskFull\"}".into(),
    }
}

fn integration(
    dir: &Path,
    smtp: &Smtp,
    extra: &str,
) -> (
    vigie_router::notify::Integration,
    std::sync::Arc<vigie_router::notify::template::Templates>,
) {
    let yaml = format!(
        "global:\n  smtp_from: 'Vigie <vigie@example.org>'\n  smtp_smarthost: '127.0.0.1:{}'\n  smtp_auth_username: vigie\n  smtp_tls_config: {{ca_file: ca.pem}}\nroute:\n  receiver: mail\nreceivers:\n- name: mail\n  email_configs:\n  - to: 'oncall@example.org, backup@example.org'\n    headers: {{X-Team: db}}\n{extra}",
        smtp.port
    );
    let path = dir.join("vigie.yml");
    let cfg = Config::parse(&path, &yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    let r = cfg.routing.unwrap();
    (
        r.receivers["mail"].integrations[0].clone(),
        r.templates.clone(),
    )
}

/// The stored messages, oldest first, waiting until `n` are there.
fn messages(maildir: &Path, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut files: Vec<_> = std::fs::read_dir(maildir.join("new"))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        if files.len() >= n || Instant::now() > deadline {
            files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
            return files
                .iter()
                .map(|p| std::fs::read_to_string(p).unwrap())
                .collect();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn header<'a>(msg: &'a str, name: &str) -> Vec<&'a str> {
    let head = msg.split("\n\n").next().unwrap_or("");
    head.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
        .collect()
}

async fn send(
    i: &vigie_router::notify::Integration,
    t: &vigie_router::notify::template::Templates,
    d: &Data,
    id: &str,
) -> Outcome {
    i.notify(&Notification {
        data: d,
        templates: t,
        id,
        contact: None,
        ack_url: None,
    })
    .await
}

#[tokio::test]
async fn starttls_auth_parts_and_threading() {
    if !aiosmtpd_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let smtp = start(dir.path(), "starttls");
    let (i, t) = integration(
        dir.path(),
        &smtp,
        "    auth_password: s3cret\n    send_resolved: true\n",
    );
    assert!(i.send_resolved);
    assert_eq!(send(&i, &t, &data("firing"), "n1").await, Outcome::Sent);
    assert_eq!(send(&i, &t, &data("resolved"), "n2").await, Outcome::Sent);
    let m = messages(&smtp.maildir, 2);
    assert_eq!(m.len(), 2);
    let (firing, resolved) = (&m[0], &m[1]);
    assert_eq!(
        header(firing, "Subject"),
        ["[FIRING:1] DiskFull (db01 critical)"]
    );
    assert_eq!(
        header(resolved, "Subject"),
        ["[RESOLVED] DiskFull (db01 critical)"]
    );
    assert_eq!(header(firing, "From"), ["Vigie <vigie@example.org>"]);
    assert_eq!(header(firing, "X-Team"), ["db"]);
    assert_eq!(
        header(firing, "X-RcptTo"),
        ["oncall@example.org, backup@example.org"]
    );
    // Each mail its own id; both point at the group's root.
    let (id1, id2) = (header(firing, "Message-ID"), header(resolved, "Message-ID"));
    assert_eq!(id1.len(), 1);
    assert_ne!(id1, id2);
    let root = header(firing, "In-Reply-To");
    assert_eq!(root.len(), 1);
    assert!(
        root[0].starts_with("<group.") && root[0].ends_with("@example.org>"),
        "{root:?}"
    );
    assert_eq!(header(firing, "References"), root);
    assert_eq!(header(resolved, "In-Reply-To"), root);
    assert_eq!(header(resolved, "References"), root);
    // multipart/alternative: text first, then HTML with the value escaped.
    assert!(header(firing, "Content-Type")[0].starts_with("multipart/alternative"));
    let text_at = firing.find("Content-Type: text/plain").expect("text part");
    let html_at = firing.find("Content-Type: text/html").expect("html part");
    assert!(text_at < html_at);
    assert!(
        firing.contains("&lt;b&gt;"),
        "HTML escapes values:\n{firing}"
    );

    // A wrong password is refused for good.
    let (bad, t2) = integration(dir.path(), &smtp, "    auth_password: wrong\n");
    match send(&bad, &t2, &data("firing"), "n3").await {
        Outcome::Failed(Reason::Auth, e) => assert!(e.contains("535"), "{e}"),
        o => panic!("{o:?}"),
    }
    // No credentials: the server requires AUTH.
    let yaml = format!(
        "route:\n  receiver: mail\nreceivers:\n- name: mail\n  email_configs:\n  - to: a@example.org\n    from: v@example.org\n    smarthost: '127.0.0.1:{}'\n    tls_config: {{ca_file: ca.pem}}\n",
        smtp.port
    );
    let cfg = Config::parse(&dir.path().join("vigie.yml"), &yaml).unwrap();
    let r = cfg.routing.unwrap();
    let anon = &r.receivers["mail"].integrations[0];
    match send(anon, &r.templates, &data("firing"), "n4").await {
        Outcome::Failed(Reason::Auth, e) => assert!(e.contains("530"), "{e}"),
        o => panic!("{o:?}"),
    }
    // A server certificate from an unknown CA is not trusted.
    let yaml2 = yaml.replace(
        "    tls_config: {ca_file: ca.pem}\n",
        "    auth_username: vigie\n    auth_password: s3cret\n",
    );
    let cfg = Config::parse(&dir.path().join("vigie.yml"), &yaml2).unwrap();
    let r = cfg.routing.unwrap();
    let o = send(
        &r.receivers["mail"].integrations[0],
        &r.templates,
        &data("firing"),
        "n5",
    )
    .await;
    assert!(
        matches!(
            o,
            Outcome::Retry(Reason::Transport, _, _) | Outcome::Failed(..)
        ),
        "{o:?}"
    );
    assert_eq!(
        messages(&smtp.maildir, 2).len(),
        2,
        "nothing else delivered"
    );
}

#[tokio::test]
async fn implicit_tls() {
    if !aiosmtpd_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let smtp = start(dir.path(), "implicit");
    let (i, t) = integration(
        dir.path(),
        &smtp,
        "    auth_password: s3cret\n    force_implicit_tls: true\n    text: ''\n",
    );
    assert_eq!(send(&i, &t, &data("firing"), "n1").await, Outcome::Sent);
    let m = messages(&smtp.maildir, 1);
    assert_eq!(m.len(), 1);
    assert!(
        header(&m[0], "Content-Type")[0].starts_with("text/html"),
        "{}",
        m[0]
    );
}

#[test]
fn mail_configuration_errors() {
    for (snippet, want) in [
        ("  - to: a@example.org\n", "no from address"),
        (
            "  - to: a@example.org\n    from: v@example.org\n",
            "no smarthost",
        ),
        (
            "  - to: a@example.org\n    from: v@example.org\n    smarthost: nohost\n",
            "is not host:port",
        ),
        (
            "  - to: 'not an address'\n    from: v@example.org\n    smarthost: 'h:25'\n",
            "to:",
        ),
        (
            "  - to: a@example.org\n    from: v@example.org\n    smarthost: 'h:25'\n    auth_secret: x\n",
            "CRAM-MD5",
        ),
    ] {
        let yaml =
            format!("route:\n  receiver: m\nreceivers:\n- name: m\n  email_configs:\n{snippet}");
        let e = Config::parse(Path::new("vigie.yml"), &yaml)
            .err()
            .unwrap_or_else(|| panic!("accepted: {yaml}"))
            .to_string();
        assert!(e.contains(want) && e.contains("email_configs[0]"), "{e}");
    }
}
