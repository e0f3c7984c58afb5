//! `kill -9` at random points while alerts stream in, ten times, restarting on the same
//! `--storage.path` each time: every alert acknowledged with a 2xx is still there, every alert
//! is notified, and a kill costs at most one repeated notification.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use vigie_e2e::*;

const KILLS: usize = 10;
const BATCH: usize = 5;

fn start(dir: &Path, port: u16, n: usize) -> Proc {
    start_router_on(
        &format!("router-{n}"),
        dir,
        &dir.join("router.yml"),
        &dir.join("data"),
        port,
    )
}

/// A small deterministic generator; the seed is printed so a failure can be replayed.
struct Lcg(u64);

impl Lcg {
    fn next_ms(&mut self, lo: u64, hi: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        lo + (self.0 >> 33) % (hi - lo)
    }
}

#[test]
fn kill_9_loses_nothing_and_repeats_at_most_once_per_kill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hooks = WebhookDouble::start();
    std::fs::write(
        dir.path().join("router.yml"),
        format!(
            "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n    webhook_configs: [{{url: 'http://127.0.0.1:{}/hook'}}]\n",
            hooks.port
        ),
    )
    .expect("config");
    let port = free_port();
    let router = Arc::new(Mutex::new(Some(start(dir.path(), port, 0))));

    // A silence acknowledged before the kills must outlive them.
    let silence = json!({
        "matchers": [{"name": "alertname", "value": "NeverSent", "isRegex": false, "isEqual": true}],
        "startsAt": rfc3339(SystemTime::now()),
        "endsAt": rfc3339(SystemTime::now() + Duration::from_secs(3600)),
        "createdBy": "e2e",
        "comment": "survives kill -9",
    });
    let r = post(
        port,
        "/api/v2/silences",
        &[("Content-Type", "application/json")],
        silence.to_string().as_bytes(),
    )
    .expect("post silence");
    assert_eq!(r.status, 200, "{}", r.text());
    let silence_id: Value = serde_json::from_slice(&r.body).expect("json");
    let silence_id = silence_id["silenceID"].as_str().expect("id").to_string();

    // The client: batches of alerts, each batch its own group, re-sent until acknowledged,
    // as Prometheus re-sends.
    let acked: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let client = {
        let (acked, stop) = (acked.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut batch = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let names: Vec<String> = (0..BATCH).map(|i| format!("b{batch}-{i}")).collect();
                let started = rfc3339(SystemTime::now());
                let ends = rfc3339(SystemTime::now() + Duration::from_secs(3600));
                let body: Vec<Value> = names
                    .iter()
                    .map(|n| {
                        json!({"labels": {"alertname": format!("Batch{batch}"), "instance": n},
                               "startsAt": started, "endsAt": ends})
                    })
                    .collect();
                let body = Value::Array(body).to_string();
                loop {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    match post(
                        port,
                        "/api/v2/alerts",
                        &[("Content-Type", "application/json")],
                        body.as_bytes(),
                    ) {
                        Ok(r) if r.status == 200 => break,
                        _ => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
                acked
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .extend(names);
                batch += 1;
                std::thread::sleep(Duration::from_millis(30));
            }
        })
    };

    let seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    eprintln!("kill schedule seed {seed}");
    let mut rng = Lcg(seed);
    for n in 1..=KILLS {
        std::thread::sleep(Duration::from_millis(rng.next_ms(200, 1200)));
        let mut guard = router.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(mut p) = guard.take() {
            // SIGKILL: no chance to flush anything.
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
        *guard = Some(start(dir.path(), port, n));
    }
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    client.join().expect("client");
    let acked = acked.lock().unwrap_or_else(|p| p.into_inner()).clone();
    assert!(
        acked.len() >= BATCH * 20,
        "the client made progress: {}",
        acked.len()
    );

    // Every acknowledged alert survived.
    let listed: BTreeSet<String> = {
        let r = get(port, "/api/v2/alerts", &[]).expect("get alerts");
        let v: Value = serde_json::from_slice(&r.body).expect("json");
        v.as_array()
            .expect("array")
            .iter()
            .filter_map(|a| a["labels"]["instance"].as_str().map(String::from))
            .collect()
    };
    let lost: Vec<&String> = acked.difference(&listed).collect();
    assert!(lost.is_empty(), "acknowledged alerts lost: {lost:?}");

    let r = get(port, &format!("/api/v2/silence/{silence_id}"), &[]).expect("get silence");
    assert_eq!(r.status, 200, "silence lost: {}", r.text());
    assert!(r.text().contains("survives kill -9"), "{}", r.text());

    // Every acknowledged alert was notified (once its group flushed).
    let notified = || -> BTreeSet<String> {
        hooks
            .received()
            .iter()
            .flat_map(|r| r.body["alerts"].as_array().cloned().unwrap_or_default())
            .filter_map(|a| a["labels"]["instance"].as_str().map(String::from))
            .collect()
    };
    wait_for(
        "every acknowledged alert notified",
        Duration::from_secs(20),
        || {
            let n = notified();
            acked.is_subset(&n).then_some(())
        },
    );

    // Repeats: a notification whose group and firing set were already delivered.
    let mut seen: BTreeMap<String, BTreeSet<Vec<String>>> = BTreeMap::new();
    let mut repeats = 0;
    for r in hooks.received() {
        let mut set: Vec<String> = r.body["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a["labels"]["instance"].as_str().map(String::from))
            .collect();
        set.sort();
        let key = r.body["groupKey"].as_str().unwrap_or_default().to_string();
        if !seen.entry(key).or_default().insert(set) {
            repeats += 1;
        }
    }
    eprintln!(
        "{} alerts acknowledged, {} notifications, {repeats} repeated over {KILLS} kills",
        acked.len(),
        hooks.received().len()
    );
    assert!(
        repeats <= KILLS,
        "{repeats} repeated notifications for {KILLS} kills"
    );
}
