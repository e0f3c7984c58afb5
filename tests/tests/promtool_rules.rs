//! Differential tests against Debian's promtool (2.42): every rule unit-test file and every rule
//! file in the repository gets the same verdict from `promtool` and `vigie-router`, the
//! deliberately broken ones included.

use std::path::{Path, PathBuf};
use std::process::Command;

use vigie_e2e::{bin, peer, root};

/// YAML files under `dir` (not recursive), sorted.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    out.retain(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"));
    out.sort();
    out
}

fn is_unit_test(p: &Path) -> bool {
    std::fs::read_to_string(p).is_ok_and(|t| t.lines().any(|l| l.starts_with("tests:")))
}

fn code(program: &Path, args: &[&str], file: &Path) -> (i32, String) {
    let out = Command::new(program)
        .args(args)
        .arg(file)
        .output()
        .expect("run checker");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn dirs() -> Vec<PathBuf> {
    let r = root();
    vec![
        r.join("router/tests/testdata/unittest"),
        r.join("router/tests/testdata/rules"),
        r.join("rules"),
        r.join("rules/tests"),
    ]
}

#[test]
fn unit_tests_get_promtools_verdict() {
    let Some(promtool) = peer(&["promtool"], "prometheus") else {
        return;
    };
    let router = bin("vigie-router");
    let mut files: Vec<PathBuf> = dirs().iter().flat_map(|d| yaml_files(d)).collect();
    files.retain(|p| is_unit_test(p));
    assert!(files.len() >= 4, "unit-test files found: {files:?}");
    let (mut passing, mut failing) = (0, 0);
    for f in &files {
        let (want, want_text) = code(&promtool, &["test", "rules"], f);
        let (got, got_text) = code(&router, &["test", "rules"], f);
        assert_eq!(
            got,
            want,
            "{}: promtool exit {want}, vigie-router exit {got}\n--- promtool\n{want_text}\n--- vigie-router\n{got_text}",
            f.display()
        );
        if want == 0 {
            passing += 1
        } else {
            failing += 1
        }
    }
    // Both kinds must be present, or the comparison proves little.
    assert!(
        passing >= 1 && failing >= 3,
        "{passing} passing, {failing} failing"
    );
}

#[test]
fn rule_files_get_promtools_verdict() {
    let Some(promtool) = peer(&["promtool"], "prometheus") else {
        return;
    };
    let router = bin("vigie-router");
    let mut files: Vec<PathBuf> = dirs().iter().flat_map(|d| yaml_files(d)).collect();
    files.retain(|p| !is_unit_test(p));
    assert!(files.len() >= 8, "rule files found: {files:?}");
    for f in &files {
        let (want, want_text) = code(&promtool, &["check", "rules"], f);
        let (got, got_text) = code(&router, &["check", "rules"], f);
        assert_eq!(
            got,
            want,
            "{}: promtool exit {want}, vigie-router exit {got}\n--- promtool\n{want_text}\n--- vigie-router\n{got_text}",
            f.display()
        );
        // A failure names the file and the line.
        if want != 0 {
            let name = f.display().to_string();
            assert!(
                got_text.lines().any(|l| l.starts_with(&format!("{name}: "))
                    && l[name.len() + 2..].starts_with(|c: char| c.is_ascii_digit())),
                "{name}: error without file:line: {got_text}"
            );
        }
    }
}
