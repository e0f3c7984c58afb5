//! `vigie-router run`: loads the configuration and rules, scrapes targets into the embedded
//! store (or queries a remote API), evaluates rule groups on their intervals, serves the query,
//! rules and alerts APIs, and reloads on SIGHUP, `POST /-/reload` or a changed file — keeping
//! the previous configuration and rules when the new ones are broken.

pub mod api;
pub mod apiv2;
pub mod oncall;
pub mod remote;
pub mod scrape;
pub mod sender;
pub mod state;
pub mod ui;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use promql_parser::parser::Expr;
use tokio::task::JoinHandle;
use vigie_promql::{Engine, Labels, Value};

use crate::alerting::Context;
use crate::config::{Config, Target, target_for};
use crate::dispatch::{Clock, Dispatcher};
use crate::durable::Durable;
use crate::rules::file::{self, RuleKind};
use crate::rules::group::{Backend, GroupState};
use crate::store::Store;
use remote::RemoteBackend;
use scrape::Health;

/// Command-line settings of `run`.
#[derive(Debug, Clone)]
pub struct Options {
    pub config_file: PathBuf,
    pub listen: String,
    pub storage_path: PathBuf,
    pub retention_ms: i64,
    pub external_url: String,
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// RFC 3339 in UTC with milliseconds, as the Prometheus and Alertmanager APIs write times.
pub fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (y, m, d) = vigie_promql::civil_from_days(secs.div_euclid(86400));
    let sod = secs.rem_euclid(86400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60,
        ms.rem_euclid(1000)
    )
}

/// The outcome of the last (re)load, for `/metrics` and the status API.
#[derive(Debug, Clone, Default)]
pub struct ReloadStatus {
    pub successful: bool,
    pub last_success_ms: i64,
    pub last_error: String,
}

/// Per-group evaluation figures for `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct GroupStats {
    pub evaluations: u64,
    pub failures: u64,
    pub last_duration_s: f64,
    pub last_eval_ms: i64,
}

/// What the tasks and the API share.
pub struct Shared {
    pub opts: Options,
    pub engine: Engine,
    store: RwLock<Store>,
    pub config: RwLock<Arc<Config>>,
    /// Current groups, each behind its own lock so evaluations of different groups overlap.
    pub groups: RwLock<Vec<Arc<Mutex<GroupState>>>>,
    pub group_stats: Mutex<HashMap<String, GroupStats>>,
    pub reload: Mutex<ReloadStatus>,
    health: Mutex<BTreeMap<String, (Target, Health)>>,
    pub remote: RwLock<Option<Arc<RemoteBackend>>>,
    pub client: reqwest::Client,
    pub queries: AtomicU64,
    pub started: Instant,
    /// Alertmanager's half: alerts, groups, silences, notification log.
    pub dispatcher: Arc<crate::dispatch::Dispatcher>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    pub fn store_read(&self) -> RwLockReadGuard<'_, Store> {
        self.store.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn store_write(&self) -> RwLockWriteGuard<'_, Store> {
        self.store.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The configuration in force (shared, so readers on hot paths copy a pointer).
    pub fn config(&self) -> Arc<Config> {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn groups(&self) -> Vec<Arc<Mutex<GroupState>>> {
        self.groups
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_health(&self, url: &str, h: Health) {
        if let Some(e) = lock(&self.health).get_mut(url) {
            e.1 = h;
        }
    }

    pub fn health(&self) -> Vec<(Target, Health)> {
        lock(&self.health).values().cloned().collect()
    }

    pub fn reload_status(&self) -> ReloadStatus {
        lock(&self.reload).clone()
    }

    pub fn remote(&self) -> Option<Arc<RemoteBackend>> {
        self.remote
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Evaluates an instant query for the API, against the store or the remote API.
    pub fn query(&self, expr: &Expr, text: &str, ts: i64) -> Result<Value, String> {
        self.queries.fetch_add(1, Ordering::Relaxed);
        match self.remote() {
            Some(r) => r.instant(text, ts),
            None => self
                .engine
                .instant(&*self.store_read(), expr, ts)
                .map_err(|e| e.to_string()),
        }
    }
}

/// The embedded store as a rule backend: read lock to query, write lock to append.
struct Embedded<'a>(&'a Shared);

impl Backend for Embedded<'_> {
    fn query(&self, expr: &Expr, _text: &str, ts: i64) -> Result<Value, String> {
        self.0
            .engine
            .instant(&*self.0.store_read(), expr, ts)
            .map_err(|e| e.to_string())
    }

    fn append(&self, samples: &[(Labels, f64)], t: i64) {
        let mut store = self.0.store_write();
        for (l, v) in samples {
            store.append(l, t, *v);
        }
    }
}

/// Loads the rule files a configuration names; any error fails the whole load.
pub fn load_rules(cfg: &Config) -> Result<Vec<file::Group>, String> {
    let (groups, mut errors) = match file::load_all(&cfg.rule_files) {
        Ok(g) => (g, Vec::new()),
        Err(e) => (Vec::new(), e),
    };
    if cfg.remote.is_some() {
        for g in &groups {
            for r in &g.rules {
                if matches!(r.kind, RuleKind::Recording) {
                    errors.push(format!(
                        "{}: group {:?}, rule {:?}: recording rules need a store to write to; remote_query mode has no remote write yet",
                        g.file, g.name, r.name
                    ));
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(groups)
    } else {
        Err(errors.join("\n"))
    }
}

/// The running tasks of one configuration.
#[derive(Default)]
pub struct Tasks {
    handles: Vec<JoinHandle<()>>,
}

impl Tasks {
    fn stop(&mut self) {
        for h in self.handles.drain(..) {
            h.abort();
        }
    }
}

/// Static targets plus those of `file_sd_configs` files (JSON or YAML target groups).
fn targets(cfg: &Config) -> Vec<Target> {
    let mut out = Vec::new();
    for job in &cfg.jobs {
        out.extend(job.static_targets.iter().cloned());
        for (path, _) in &job.file_sd {
            let Ok(paths) = file::expand_glob(path) else {
                continue;
            };
            for p in paths {
                match read_file_sd(&p) {
                    Ok(groups) => {
                        for (targets, labels) in groups {
                            for t in targets {
                                out.push(target_for(&job.template, &t, &labels));
                            }
                        }
                    }
                    Err(e) => tracing::warn!(file = %p.display(), error = %e, "file_sd"),
                }
            }
        }
    }
    out
}

#[derive(serde::Deserialize)]
struct SdGroup {
    #[serde(default)]
    targets: Vec<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

type SdGroups = Vec<(Vec<String>, BTreeMap<String, String>)>;

fn read_file_sd(p: &Path) -> Result<SdGroups, String> {
    let text = std::fs::read_to_string(p).map_err(|e| e.to_string())?;
    let groups: Vec<SdGroup> = if p.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).map_err(|e| e.to_string())?
    } else {
        serde_saphyr::from_str(&text).map_err(|e| file::yaml_error(&p.display().to_string(), &e))?
    };
    Ok(groups.into_iter().map(|g| (g.targets, g.labels)).collect())
}

/// Carries alert state and written-series memory from old groups to new ones with the same
/// file, name and rules, so a reload does not reset `for` timers.
fn carry_over(
    old: &[Arc<Mutex<GroupState>>],
    new: Vec<file::Group>,
) -> Vec<Arc<Mutex<GroupState>>> {
    new.into_iter()
        .map(|g| {
            let mut fresh = GroupState::new(g);
            for o in old {
                let o = lock(o);
                if o.group.file == fresh.group.file && o.group.name == fresh.group.name {
                    fresh.adopt(&o);
                }
            }
            Arc::new(Mutex::new(fresh))
        })
        .collect()
}

fn spawn_all(shared: &Arc<Shared>, tasks: &mut Tasks) {
    tasks.stop();
    let cfg = shared.config();
    let ts = targets(&cfg);
    {
        let mut h = lock(&shared.health);
        h.clear();
        for t in &ts {
            h.insert(t.url.clone(), (t.clone(), Health::default()));
        }
    }
    if cfg.remote.is_none() {
        for t in ts {
            let client = scrape_client(&t).unwrap_or_else(|_| shared.client.clone());
            tasks
                .handles
                .push(tokio::spawn(scrape::run(shared.clone(), client, t)));
        }
    }
    for g in shared.groups() {
        tasks
            .handles
            .push(tokio::spawn(eval_loop(shared.clone(), g)));
    }
}

/// A client for a target with its own TLS settings.
fn scrape_client(t: &Target) -> anyhow::Result<reqwest::Client> {
    match &t.tls {
        None => Ok(plain_client()),
        Some(tls) => client_with_tls(tls),
    }
}

/// The system's trusted roots, read once.
static NATIVE_ROOTS: std::sync::LazyLock<Vec<rustls_pki_types::CertificateDer<'static>>> =
    std::sync::LazyLock::new(|| {
        let found = rustls_native_certs::load_native_certs();
        if let Some(e) = found.errors.first() {
            tracing::warn!(error = %e, "reading the system's trusted certificates");
        }
        found.certs
    });

pub fn plain_client() -> reqwest::Client {
    client_with_tls(&Default::default()).unwrap_or_default()
}

pub(crate) fn client_with_tls(tls: &crate::config::TlsConfig) -> anyhow::Result<reqwest::Client> {
    use rustls_pki_types::pem::PemObject;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    if let Some(ca) = &tls.ca_file {
        let pem = std::fs::read(ca).with_context(|| format!("reading {ca}"))?;
        for cert in rustls_pki_types::CertificateDer::pem_slice_iter(&pem) {
            roots
                .add(cert.context("bad CA certificate")?)
                .context("adding CA")?;
        }
    } else {
        // Without a ca_file, the system's roots, as Prometheus and Alertmanager do.
        roots.add_parsable_certificates(NATIVE_ROOTS.iter().cloned());
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS versions")?
        .with_root_certificates(roots);
    let mut cfg = match (&tls.cert_file, &tls.key_file) {
        (Some(c), Some(k)) => {
            let certs = rustls_pki_types::CertificateDer::pem_file_iter(c)
                .with_context(|| format!("reading {c}"))?
                .collect::<Result<Vec<_>, _>>()
                .context("certificate")?;
            let key = rustls_pki_types::PrivateKeyDer::from_pem_file(k)
                .with_context(|| format!("reading {k}"))?;
            builder
                .with_client_auth_cert(certs, key)
                .context("client certificate")?
        }
        _ => builder.with_no_client_auth(),
    };
    if tls.insecure_skip_verify {
        cfg.dangerous().set_certificate_verifier(Arc::new(NoVerify));
    }
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(cfg)
        .build()?)
}

/// `insecure_skip_verify: true`: accept any server certificate, as the user asked.
#[derive(Debug)]
struct NoVerify;

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &rustls_pki_types::CertificateDer<'_>,
        _: &[rustls_pki_types::CertificateDer<'_>],
        _: &rustls_pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &rustls_pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &rustls_pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Evaluates one group on its interval until aborted.
async fn eval_loop(shared: Arc<Shared>, group: Arc<Mutex<GroupState>>) {
    let (key, interval) = {
        let g = lock(&group);
        let default = shared.config().evaluation_interval_ms;
        (g.group.key(), g.group.interval.unwrap_or(default).max(1))
    };
    let offset = (scrape::fnv(&key) % interval as u64) as i64;
    loop {
        let now = now_ms();
        let next = (now - offset).div_euclid(interval) * interval + interval + offset;
        tokio::time::sleep(Duration::from_millis((next - now).max(0) as u64)).await;
        let (sh, g) = (shared.clone(), group.clone());
        let started = Instant::now();
        let result = tokio::task::spawn_blocking(move || {
            let cfg = sh.config();
            let ctx = Context {
                external_labels: &cfg.external_labels,
                external_url: &sh.opts.external_url,
            };
            let g = match sh.remote() {
                Some(r) => {
                    // A remote query can take seconds (up to its timeout): evaluate a copy, so
                    // the APIs and the sender reading this group never wait behind it.
                    let mut copy = lock(&g).clone();
                    copy.eval(&*r, next, &ctx);
                    let mut g = lock(&g);
                    *g = copy;
                    g
                }
                None => {
                    let mut g = lock(&g);
                    g.eval(&Embedded(&sh), next, &ctx);
                    g
                }
            };
            let failures = g.rules.iter().filter(|r| r.last_error().is_some()).count();
            for r in &g.rules {
                if let Some(e) = r.last_error() {
                    tracing::warn!(group = %g.group.name, rule = %r.name(), error = %e, "rule evaluation failed");
                }
            }
            failures
        })
        .await;
        let failures = result.unwrap_or(1) as u64;
        {
            let mut stats = lock(&shared.group_stats);
            let s = stats.entry(key.clone()).or_default();
            s.evaluations += 1;
            s.failures += failures;
            s.last_duration_s = started.elapsed().as_secs_f64();
            s.last_eval_ms = next;
        }
        state::save(&shared);
        sender::send(&shared, &group).await;
        if shared.remote().is_none() {
            let cutoff = now_ms() - shared.opts.retention_ms;
            shared.store_write().truncate_before(cutoff);
        }
    }
}

/// Loads the configuration and rules and, if both are valid, replaces the running ones.
pub fn reload(shared: &Arc<Shared>, tasks: &Mutex<Tasks>) -> Result<(), String> {
    let result = (|| {
        let cfg = Config::load(&shared.opts.config_file).map_err(|e| e.to_string())?;
        let rules = load_rules(&cfg)?;
        Ok::<_, String>((cfg, rules))
    })();
    let mut status = lock(&shared.reload);
    match result {
        Ok((cfg, rules)) => {
            let old = shared.groups();
            let new = carry_over(&old, rules);
            let remote = cfg
                .remote
                .clone()
                .map(|r| Arc::new(RemoteBackend::new(r, shared.client.clone())));
            // A changed file rebuilds the aggregation groups, as an Alertmanager reload does;
            // a reload caused by rule files alone leaves them running.
            if shared.config().original != cfg.original {
                shared.dispatcher.configure(cfg.routing.clone());
            }
            *shared.remote.write().unwrap_or_else(|p| p.into_inner()) = remote;
            *shared.config.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(cfg);
            *shared.groups.write().unwrap_or_else(|p| p.into_inner()) = new;
            spawn_all(shared, &mut lock(tasks));
            *status = ReloadStatus {
                successful: true,
                last_success_ms: now_ms(),
                last_error: String::new(),
            };
            tracing::info!(file = %shared.opts.config_file.display(), "configuration and rules loaded");
            Ok(())
        }
        Err(e) => {
            status.successful = false;
            status.last_error = e.clone();
            tracing::error!(error = %e, "reload failed; the previous configuration and rules stay in force");
            Err(e)
        }
    }
}

/// Files whose change triggers a reload: the config, the rule files and the file_sd lists.
fn watched_files(shared: &Shared) -> Vec<PathBuf> {
    let cfg = shared.config();
    let mut out = vec![shared.opts.config_file.clone()];
    for p in &cfg.rule_files {
        if let Ok(paths) = file::expand_glob(Path::new(p)) {
            out.extend(paths);
        }
    }
    // file_sd target lists: a changed list re-reads the targets.
    for job in &cfg.jobs {
        for (p, _) in &job.file_sd {
            if let Ok(paths) = file::expand_glob(p) {
                out.extend(paths);
            }
        }
    }
    out
}

/// Runs the router until SIGINT/SIGTERM.
pub async fn run(opts: Options) -> anyhow::Result<()> {
    run_until(opts, shutdown_signal()).await
}

/// SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Runs the router until `shutdown` completes, then stops the evaluation and dispatch tasks and
/// saves the rule state.
pub async fn run_until(opts: Options, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    std::fs::create_dir_all(&opts.storage_path)
        .with_context(|| format!("creating --storage.path {}", opts.storage_path.display()))?;
    let cfg = Config::load(&opts.config_file).map_err(|e| anyhow::anyhow!("{e}"))?;
    let rules = load_rules(&cfg).map_err(|e| anyhow::anyhow!("{e}"))?;
    let engine = Engine {
        subquery_step_ms: cfg.evaluation_interval_ms,
        ..Engine::default()
    };
    let client = plain_client();
    let remote = cfg
        .remote
        .clone()
        .map(|r| Arc::new(RemoteBackend::new(r, client.clone())));
    let groups: Vec<Arc<Mutex<GroupState>>> = rules
        .into_iter()
        .map(|g| Arc::new(Mutex::new(GroupState::new(g))))
        .collect();
    let (durable, loaded) = Durable::open(&opts.storage_path)?;
    tracing::info!(
        alerts = loaded.alerts.len(),
        silences = loaded.silences.len(),
        notification_log = loaded.nflog.len(),
        "dispatcher state restored"
    );
    let dispatcher = Dispatcher::new(durable, Clock::system(), opts.external_url.clone(), loaded);
    dispatcher.configure(cfg.routing.clone());
    dispatcher.spawn_maintenance();
    let shared = Arc::new(Shared {
        opts: opts.clone(),
        engine,
        store: RwLock::new(Store::new()),
        config: RwLock::new(Arc::new(cfg)),
        groups: RwLock::new(groups),
        group_stats: Mutex::new(HashMap::new()),
        reload: Mutex::new(ReloadStatus {
            successful: true,
            last_success_ms: now_ms(),
            last_error: String::new(),
        }),
        health: Mutex::new(BTreeMap::new()),
        remote: RwLock::new(remote),
        client,
        queries: AtomicU64::new(0),
        started: Instant::now(),
        dispatcher,
    });
    state::restore(&shared);
    let tasks = Arc::new(Mutex::new(Tasks::default()));
    spawn_all(&shared, &mut lock(&tasks));

    let listener = tokio::net::TcpListener::bind(listen_addr(&opts.listen))
        .await
        .with_context(|| format!("listening on {}", opts.listen))?;
    tracing::info!(address = %opts.listen, "listening");
    let app = api::router(shared.clone(), tasks.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    // SIGHUP and changed files reload.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(4);
    let hup_tx = tx.clone();
    tokio::spawn(async move {
        if let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        {
            while hup.recv().await.is_some() {
                let _ = hup_tx.send(()).await;
            }
        }
    });
    let _watcher = watch(&shared, tx);
    let (sh, tk) = (shared.clone(), tasks.clone());
    tokio::spawn(async move {
        while rx.recv().await.is_some() {
            // Editors write in several steps; let them finish.
            tokio::time::sleep(Duration::from_millis(200)).await;
            while rx.try_recv().is_ok() {}
            let (sh2, tk2) = (sh.clone(), tk.clone());
            let _ = tokio::task::spawn_blocking(move || reload(&sh2, &tk2)).await;
        }
    });

    tokio::select! {
        _ = shutdown => {}
        r = server => { r??; }
    }
    lock(&tasks).stop();
    state::save(&shared);
    Ok(())
}

/// Watches the config and rule files (their directories, so replaced files are seen too).
fn watch(
    shared: &Arc<Shared>,
    tx: tokio::sync::mpsc::Sender<()>,
) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher;
    let files = watched_files(shared);
    let wanted: Vec<PathBuf> = files
        .iter()
        .filter_map(|p| std::fs::canonicalize(p).ok())
        .collect();
    let sh = shared.clone();
    let mut w = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
        let Ok(ev) = ev else { return };
        if !matches!(
            ev.kind,
            notify::EventKind::Modify(_)
                | notify::EventKind::Create(_)
                | notify::EventKind::Remove(_)
        ) {
            return;
        }
        let current = watched_files(&sh);
        let relevant = ev.paths.iter().any(|p| {
            wanted.contains(p)
                || current
                    .iter()
                    .any(|c| c == p || c.file_name() == p.file_name())
        });
        if relevant {
            let _ = tx.try_send(());
        }
    })
    .ok()?;
    let mut dirs: Vec<PathBuf> = files
        .iter()
        .filter_map(|p| std::fs::canonicalize(p).ok())
        .filter_map(|p| p.parent().map(Path::to_path_buf))
        .collect();
    dirs.sort();
    dirs.dedup();
    for d in dirs {
        let _ = w.watch(&d, notify::RecursiveMode::NonRecursive);
    }
    Some(w)
}

/// `:9093` means every interface, as in Prometheus' flags.
fn listen_addr(s: &str) -> String {
    if s.starts_with(':') {
        format!("0.0.0.0{s}")
    } else {
        s.to_string()
    }
}
