//! Golden tests: every collector runs on the fixture trees in `tests/fixtures/<tree>` and its
//! output is compared with `tests/golden/<tree>/<collector>.prom`.
//!
//! `vm` is a snapshot of this kind of machine (retake it with `fixtures/snapshot.sh`), `edge` is
//! written by hand: missing files, odd lines, zero CPUs online, a failing mount. Set
//! `VIGIE_UPDATE_GOLDEN=1` to rewrite the golden files after a deliberate change, then review the diff.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use vigie_agent::collector::filesystem::FsStat;
use vigie_agent::collector::{ALL, Collectors, Options};
use vigie_agent::paths::Paths;
use vigie_exposition::{Family, normalize, text};

/// Collectors that run a tool in the background (tested in `storage.rs` with stub tools).
const BACKGROUND: &[&str] = &["smartctl", "ceph", "systemd"];

fn fixture_options(tree: &str) -> Options {
    let root = PathBuf::from("tests/fixtures").join(tree);
    let mut o = Options {
        paths: Paths {
            procfs: root.join("proc"),
            sysfs: root.join("sys"),
            rootfs: PathBuf::from("/"),
            udev_data: root.join("udev/data"),
        },
        ..Options::default()
    };
    o.stat_softirq = true;
    o.cpu.info = false;
    o.netclass.ignore_invalid_speed = false;
    // Fixture trees are files: netlink would describe this machine instead.
    o.netclass.netlink = false;
    o.netdev_netlink = false;
    let textfile = root.join("textfile");
    o.textfile_directory = textfile.is_dir().then(|| textfile.display().to_string());
    // statfs cannot be faked by files: a deterministic stand-in, failing for "/mnt/broken".
    o.filesystem.statfs = Arc::new(|p: &Path| {
        if p.ends_with("mnt/broken") {
            return Err(io::Error::from_raw_os_error(libc_eio()));
        }
        let seed = p.as_os_str().len() as f64;
        Ok(FsStat {
            size: 1e12 + seed,
            free: 5e11,
            avail: 4.5e11,
            files: 6.5e7,
            files_free: 6e7,
        })
    });
    o
}

fn libc_eio() -> i32 {
    5
}

/// Families that depend on the clock or the kernel we run on, not on the fixture.
fn deterministic(f: &Family) -> bool {
    !matches!(
        f.name.as_str(),
        "node_time_seconds"
            | "node_time_zone_offset_seconds"
            | "node_scrape_collector_duration_seconds"
    )
}

fn render(collectors: &[&'static str], options: &Options) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let c = Collectors::new(collectors, options, Duration::from_secs(5));
    let mut families: Vec<Family> = rt
        .block_on(c.scrape(|_| true))
        .into_iter()
        .filter(deterministic)
        .collect();
    for f in &mut families {
        if f.name == "node_textfile_mtime_seconds" {
            for s in &mut f.samples {
                s.value = 1.0;
            }
        }
    }
    let (families, _) = normalize(families);
    let mut out = Vec::new();
    text::encode(&families, &mut out);
    String::from_utf8(out).unwrap()
}

fn check_tree(tree: &str) {
    let options = fixture_options(tree);
    let update = std::env::var_os("VIGIE_UPDATE_GOLDEN").is_some();
    let golden_dir = PathBuf::from("tests/golden").join(tree);
    let mut failures = Vec::new();
    for spec in ALL
        .iter()
        .filter(|s| s.name != "uname" && !BACKGROUND.contains(&s.name))
    {
        let got = render(&[spec.name], &options);
        let path = golden_dir.join(format!("{}.prom", spec.name));
        if update {
            std::fs::create_dir_all(&golden_dir).unwrap();
            std::fs::write(&path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run with VIGIE_UPDATE_GOLDEN=1)", path.display()));
        if got != want {
            failures.push(format!(
                "--- {} differs:\n{}",
                path.display(),
                diff(&want, &got)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn diff(want: &str, got: &str) -> String {
    let w: Vec<&str> = want.lines().collect();
    let g: Vec<&str> = got.lines().collect();
    let mut out = String::new();
    for l in &w {
        if !g.contains(l) {
            out.push_str(&format!("-{l}\n"));
        }
    }
    for l in &g {
        if !w.contains(l) {
            out.push_str(&format!("+{l}\n"));
        }
    }
    out
}

#[test]
fn golden_vm_snapshot() {
    check_tree("vm");
}

#[test]
fn golden_edge_cases() {
    check_tree("edge");
}

#[test]
fn edge_outcomes_are_the_ones_a_user_expects() {
    let options = fixture_options("edge");
    let out = render(
        &ALL.iter()
            .map(|s| s.name)
            .filter(|n| *n != "uname" && !BACKGROUND.contains(n))
            .collect::<Vec<_>>(),
        &options,
    );
    let has = |line: &str| out.lines().any(|l| l == line);
    // No loadavg file: the collector fails, the scrape still answers.
    assert!(has(
        "node_scrape_collector_success{collector=\"loadavg\"} 0"
    ));
    // No PSI in this kernel: no data, success 0.
    assert!(has(
        "node_scrape_collector_success{collector=\"pressure\"} 0"
    ));
    // file-nr with two numbers is an error.
    assert!(has("node_scrape_collector_success{collector=\"filefd\"} 0"));
    // Zero CPUs online is not an error: no per-CPU series.
    assert!(has("node_scrape_collector_success{collector=\"cpu\"} 1"));
    assert!(!out.contains("node_cpu_seconds_total{"));
    // A failing mount is reported, the others served, the duplicate mount line counted once.
    assert!(has(
        "node_filesystem_device_error{device=\"server:/export\",fstype=\"nfs4\",mountpoint=\"/mnt/broken\"} 1"
    ));
    assert!(has(
        "node_filesystem_readonly{device=\"/dev/sdb1\",fstype=\"xfs\",mountpoint=\"/mnt/with space\"} 1"
    ));
    assert_eq!(
        out.matches("node_filesystem_size_bytes{device=\"/dev/sda1\"")
            .count(),
        1
    );
    // Bad and timestamped textfiles are skipped and flagged; good ones served; a textfile
    // metric clashing with a collector's family does not break the scrape.
    assert!(has("node_textfile_scrape_error 1"));
    assert!(has(
        "backup_last_success_timestamp_seconds{job=\"nas\",tier=\"\"} 1.7e+09"
    ));
    assert!(has("job_duration_seconds_bucket{le=\"+Inf\"} 6"));
    assert!(!out.contains("broken_metric") && !out.contains("with_timestamp"));
    assert!(has("node_load1 99"));
    // Counters over 2^53 keep Go's spelling.
    assert!(has(
        "node_network_receive_bytes_total{device=\"eth0\"} 1.8446744073709552e+19"
    ));
    assert!(has("node_network_speed_bytes{device=\"dummy0\"} -125000"));
    assert!(has(
        "node_network_info{address=\"\",broadcast=\"\",device=\"dummy0\",duplex=\"\",ifalias=\"with \\\"quotes\\\" \\\\ and\",operstate=\"unknown\"} 1"
    ));
}

#[test]
fn a_hung_mount_never_blocks_the_scrape() {
    use std::sync::Mutex;
    use std::sync::mpsc;

    let mut options = fixture_options("edge");
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release_rx = Arc::new(Mutex::new(release_rx));
    let dead = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let dead_in_statfs = dead.clone();
    options.filesystem.mount_timeout = Duration::from_millis(200);
    options.filesystem.statfs = Arc::new(move |p: &Path| {
        if p.ends_with("mnt/broken") && dead_in_statfs.load(std::sync::atomic::Ordering::SeqCst) {
            // A dead NFS server: blocks until the test releases it.
            let _ = release_rx.lock().unwrap().recv();
        }
        Ok(FsStat {
            size: 1.0,
            free: 1.0,
            avail: 1.0,
            files: 1.0,
            files_free: 1.0,
        })
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let c = Collectors::new(&["filesystem"], &options, Duration::from_secs(5));
    let scrape = |c: &Collectors| {
        let (families, _) = normalize(rt.block_on(c.scrape(|_| true)));
        let mut out = Vec::new();
        text::encode(&families, &mut out);
        String::from_utf8(out).unwrap()
    };
    let stuck = "node_filesystem_device_error{device=\"server:/export\",fstype=\"nfs4\",mountpoint=\"/mnt/broken\"} 1";
    for round in 0..3 {
        let started = std::time::Instant::now();
        let out = scrape(&c);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "round {round} took {:?}",
            started.elapsed()
        );
        assert!(out.contains(stuck), "round {round}:\n{out}");
        assert!(out.contains("node_filesystem_size_bytes{device=\"/dev/sda1\",fstype=\"ext4\",mountpoint=\"/\"} 1"), "round {round}: healthy mounts still served");
        assert!(out.contains("node_scrape_collector_success{collector=\"filesystem\"} 1"));
    }
    // The server comes back: the next scrapes see the mount again.
    dead.store(false, std::sync::atomic::Ordering::SeqCst);
    release_tx.send(()).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let out = scrape(&c);
        if out.contains("node_filesystem_size_bytes{device=\"server:/export\"") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "mount never recovered:\n{out}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// On a live machine, the netlink path must give exactly what reading sysfs gives.
#[test]
fn netlink_and_sysfs_agree_on_this_machine() {
    let mut files = Options::default();
    files.netclass.netlink = false;
    files.netdev_netlink = false;
    let netlink = Options::default();
    let strip = |s: String| -> Vec<String> {
        s.lines()
            .filter(|l| !l.starts_with("node_scrape_collector_duration"))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(
        strip(render(&["netclass"], &files)),
        strip(render(&["netclass"], &netlink))
    );
    // Counters move between two reads; the families, devices and labels must not.
    let shape = |s: String| -> Vec<String> {
        s.lines()
            .map(|l| {
                l.rsplit_once(' ')
                    .map(|(k, _)| k.to_string())
                    .unwrap_or_default()
            })
            .collect()
    };
    assert_eq!(
        shape(render(&["netdev"], &files)),
        shape(render(&["netdev"], &netlink))
    );
}
