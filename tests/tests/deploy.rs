//! The deployment files in `deploy/` as a user would check them before shipping: systemd units
//! through `systemd-analyze verify`, Kubernetes manifests through `kubernetes-validate --strict`
//! (PyPI), and the router configuration the ConfigMap carries through `vigie-router check config`
//! with the repository's rules.

use std::path::{Path, PathBuf};
use std::process::Command;

use vigie_e2e::{bin, peer, root};

/// The block scalar `key: |` of a manifest, dedented (the ConfigMap's embedded file).
fn block(manifest: &str, key: &str) -> String {
    let mut lines = manifest
        .lines()
        .skip_while(|l| l.trim() != format!("{key}: |"));
    let header = lines.next().expect("key present");
    let indent = header.len() - header.trim_start().len() + 2;
    lines
        .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() >= indent)
        .map(|l| l.get(indent..).unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs a checker and fails the test with its output unless it exits 0.
fn succeeds(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn systemd_units_verify_without_warnings() {
    let Some(analyze) = peer(&["systemd-analyze"], "systemd") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut units = Vec::new();
    for name in ["vigie-agent.service", "vigie-router.service"] {
        // systemd-analyze checks that ExecStart exists: point it at the release binaries.
        let text = std::fs::read_to_string(root().join("deploy/systemd").join(name))
            .unwrap()
            .replace(
                "/usr/local/bin/vigie-agent",
                &bin("vigie-agent").display().to_string(),
            )
            .replace(
                "/usr/local/bin/vigie-router",
                &bin("vigie-router").display().to_string(),
            );
        let unit = dir.path().join(name);
        std::fs::write(&unit, text).unwrap();
        units.push(unit);
    }
    // Any warning (an unknown key, a bad value) is a failure, not just a non-zero exit.
    let verify = |units: &[PathBuf]| {
        let out = Command::new(&analyze)
            .arg("verify")
            .args(units)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.trim().is_empty(),
            "systemd-analyze verify {units:?}: {}\n{stderr}",
            out.status
        );
    };
    verify(&units);
    // The smartctl drop-in is a [Service] fragment with known keys only.
    let dropin =
        std::fs::read_to_string(root().join("deploy/systemd/vigie-agent-smartctl.conf")).unwrap();
    let mut merged = std::fs::read_to_string(&units[0]).unwrap();
    merged.push_str(&dropin);
    let unit = dir.path().join("with-smartctl.service");
    std::fs::write(&unit, merged).unwrap();
    verify(&[unit]);
}

#[test]
fn kubernetes_manifests_validate_strictly() {
    let Some(validate) = peer(&["kubernetes-validate"], "kubernetes-validate (PyPI)") else {
        return;
    };
    let dir = root().join("deploy/kubernetes");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "{files:?}");
    succeeds(
        Command::new(validate)
            .args(["--strict", "--quiet"])
            .args(&files),
    );
}

#[test]
fn the_router_configmap_is_a_valid_configuration_with_the_shipped_rules() {
    let manifest = std::fs::read_to_string(root().join("deploy/kubernetes/router.yaml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("slack-url");
    std::fs::write(&secret, "https://hooks.slack.com/services/T0/B0/x\n").unwrap();
    let config = block(&manifest, "vigie-router.yml")
        .replace(
            "/etc/vigie/rules/*.yml",
            &root().join("rules/*.yml").display().to_string(),
        )
        .replace(
            "/etc/vigie/secrets/slack-url",
            &secret.display().to_string(),
        );
    assert!(config.contains("route:"), "{config}");
    let file = dir.path().join("vigie-router.yml");
    std::fs::write(&file, config).unwrap();
    succeeds(
        Command::new(bin("vigie-router"))
            .args(["check", "config"])
            .arg(&file),
    );
    assert!(Path::new(&root().join("deploy/container/Containerfile")).is_file());
}
