//! Runs every script in `testdata/`: each eval must pass (skips are listed, not failures).

use std::path::Path;

use vigie_promql::Engine;
use vigie_promql::promqltest::{Verdict, run};

#[test]
fn scripts_pass() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("testdata dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "test"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    let mut failures = Vec::new();
    let mut passed = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).expect("readable script");
        for o in run(&text, &Engine::default()) {
            let name = f.file_name().unwrap_or_default().to_string_lossy();
            match o.verdict {
                Verdict::Pass => passed += 1,
                Verdict::Fail(why) => failures.push(format!("FAIL {name}:{}: {why}", o.line)),
                Verdict::Skip(why) => failures.push(format!("SKIP {name}:{}: {why}", o.line)),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{passed} passed\n{}",
        failures.join("\n")
    );
}
