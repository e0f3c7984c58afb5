//! A collector that never returns costs one `success 0`, not the scrape.

use std::time::{Duration, Instant};

use vigie_agent::collector::{Collector, Collectors, Options, Result};
use vigie_exposition::{Family, Kind};

struct Hangs;

impl Collector for Hangs {
    fn update(&self, _out: &mut Vec<Family>) -> Result<()> {
        std::thread::sleep(Duration::from_secs(3));
        Ok(())
    }
}

struct Quick;

impl Collector for Quick {
    fn update(&self, out: &mut Vec<Family>) -> Result<()> {
        out.push(Family::single(
            "quick_value",
            "A fast collector.",
            Kind::Gauge,
            1.0,
        ));
        Ok(())
    }
}

#[test]
fn timeout_sets_success_zero_and_is_not_restarted_while_busy() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let c = Collectors::from_collectors(
        vec![
            ("hangs", Box::new(Hangs) as Box<dyn Collector>),
            ("quick", Box::new(Quick)),
        ],
        Duration::from_millis(300),
    );
    let _ = Options::default();
    for _ in 0..2 {
        let started = Instant::now();
        let families = rt.block_on(c.scrape(|_| true));
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "scrape took {:?}",
            started.elapsed()
        );
        let success = families
            .iter()
            .find(|f| f.name == "node_scrape_collector_success")
            .unwrap();
        let value = |name: &str| {
            success
                .samples
                .iter()
                .find(|s| s.label("collector") == Some(name))
                .unwrap()
                .value
        };
        assert_eq!(value("hangs"), 0.0);
        assert_eq!(value("quick"), 1.0);
        assert!(families.iter().any(|f| f.name == "quick_value"));
    }
}
