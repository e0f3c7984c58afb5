//! Storage health and per-container collectors: parsers on fixture outputs (written from each
//! tool's documented JSON, plus real captures from this machine marked `real-`), the background
//! collectors driven through stub tools, and the bounds that keep a scrape cheap.
//!
//! Fixtures live in `tests/fixtures/storage/`; the stubs `smartctl/smartctl` and `ceph/ceph`
//! answer from the JSON files next to them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use vigie_agent::collector::{
    Collectors, FamilySet, Options, ceph, cgroup, file_age, mdadm, smartctl, systemd,
};
use vigie_exposition::{Family, normalize, text};

fn fixtures(dir: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/storage")
        .join(dir)
}

fn read(dir: &str, file: &str) -> Vec<u8> {
    std::fs::read(fixtures(dir).join(file)).unwrap()
}

fn render(families: Vec<Family>) -> String {
    let (families, _) = normalize(families);
    let mut out = Vec::new();
    text::encode(&families, &mut out);
    String::from_utf8(out).unwrap()
}

fn has(out: &str, line: &str) -> bool {
    out.lines().any(|l| l == line)
}

fn scrape(c: &Collectors) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    render(rt.block_on(c.scrape(|_| true)))
}

/// Scrapes until `done` holds, within `within`; returns the last page.
fn scrape_until(c: &Collectors, within: Duration, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + within;
    loop {
        let out = scrape(c);
        if done(&out) {
            return out;
        }
        assert!(Instant::now() < deadline, "condition never held:\n{out}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Scrapes one background collector until its first run has landed.
fn after_first_run(collector: &str, o: &Options) -> String {
    let name = vigie_agent::collector::spec(collector).unwrap().name;
    let c = Collectors::new(&[name], o, Duration::from_secs(5));
    let landed = format!("node_scrape_collector_cache_age_seconds{{collector=\"{collector}\"}}");
    scrape_until(&c, Duration::from_secs(20), |out| out.contains(&landed))
}

fn device(name: &str, kind: &str) -> smartctl::Device {
    smartctl::Device {
        name: name.into(),
        kind: Some(kind.into()),
    }
}

fn parse_smart(file: &str, dev: &smartctl::Device) -> (String, Result<(), String>) {
    let mut set = FamilySet::default();
    let r = smartctl::parse_device(&mut set, dev, &read("smartctl", file), None)
        .map_err(|e| e.to_string());
    (render(set.into_vec()), r)
}

#[test]
fn smartctl_sata_hdd_ssd_nvme_and_sas() {
    let (hdd, r) = parse_smart("sda.json", &device("/dev/sda", "sat"));
    r.unwrap();
    for line in [
        "smartctl_device_smart_status{device=\"sda\"} 1",
        "smartctl_device_temperature{device=\"sda\",temperature_type=\"current\"} 34",
        "smartctl_device_power_on_seconds{device=\"sda\"} 1.037412e+08",
        "smartctl_device_rotation_rate{device=\"sda\"} 5400",
        "smartctl_device_attribute{attribute_flags_long=\"prefailure,updated_online,auto_keep\",attribute_flags_short=\"PO--CK\",attribute_id=\"5\",attribute_name=\"Reallocated_Sector_Ct\",attribute_value_type=\"thresh\",device=\"sda\"} 140",
        "smartctl_device_attribute{attribute_flags_long=\"updated_online,event_count,auto_keep\",attribute_flags_short=\"-O--CK\",attribute_id=\"9\",attribute_name=\"Power_On_Hours\",attribute_value_type=\"raw\",device=\"sda\"} 28817",
        "smartctl_device_error_log_count{device=\"sda\",error_log_type=\"summary\"} 0",
        "smartctl_device_erc_seconds{device=\"sda\",op_type=\"read\"} 7",
        "smartctl_device_interface_speed{device=\"sda\",speed_type=\"max\"} 6e+09",
        "smartctl_device_smartctl_exit_status{device=\"sda\"} 0",
        "smartctl_device_capacity_bytes{device=\"sda\"} 4.000787030016e+12",
    ] {
        assert!(has(&hdd, line), "missing {line}:\n{hdd}");
    }
    // ATA devices carry no NVMe series.
    assert!(!hdd.contains("smartctl_device_percentage_used"));

    let (ssd, r) = parse_smart("sdb.json", &device("/dev/sdb", "sat"));
    r.unwrap();
    assert!(
        !ssd.contains("smartctl_device_rotation_rate"),
        "an SSD has no rotation rate"
    );
    assert!(ssd.contains(
        "attribute_name=\"Wear_Leveling_Count\",attribute_value_type=\"value\",device=\"sdb\"} 93"
    ));

    let (nvme, r) = parse_smart("nvme0.json", &device("/dev/nvme0", "nvme"));
    r.unwrap();
    for line in [
        "smartctl_device_percentage_used{device=\"nvme0\"} 84",
        "smartctl_device_available_spare{device=\"nvme0\"} 100",
        "smartctl_device_available_spare_threshold{device=\"nvme0\"} 10",
        "smartctl_device_critical_warning{device=\"nvme0\"} 0",
        "smartctl_device_media_errors{device=\"nvme0\"} 0",
        "smartctl_device_num_err_log_entries{device=\"nvme0\"} 12",
        "smartctl_device_bytes_written{device=\"nvme0\"} 6.3209875968e+13",
        "smartctl_device_power_on_seconds{device=\"nvme0\"} 5.4e+07",
    ] {
        assert!(has(&nvme, line), "missing {line}:\n{nvme}");
    }

    let (sas, r) = parse_smart("sdc.json", &device("/dev/sdc", "scsi"));
    r.unwrap();
    let ids = "device=\"sdc\",model_family=\"\",model_name=\"SEAGATE ST1200MM0088\",serial_number=\"S4020000\"";
    assert!(
        has(&sas, &format!("smartctl_scsi_grown_defect_list{{{ids}}} 3")),
        "{sas}"
    );
    assert!(has(
        &sas,
        &format!("smartctl_write_total_uncorrected_errors{{{ids}}} 1")
    ));
    assert!(has(
        &sas,
        "smartctl_device_temperature{device=\"sdc\",temperature_type=\"drive_trip\"} 60"
    ));
    assert!(has(
        &sas,
        "smartctl_device_power_on_seconds{device=\"sdc\"} 1.4400072e+08"
    ));
}

#[test]
fn smartctl_failing_drive_unanswering_bridge_and_truncated_output() {
    let (failing, r) = parse_smart("sdd.json", &device("/dev/sdd", "sat"));
    r.unwrap();
    assert!(has(
        &failing,
        "smartctl_device_smart_status{device=\"sdd\"} 0"
    ));
    assert!(has(
        &failing,
        "smartctl_device_smartctl_exit_status{device=\"sdd\"} 88"
    ));
    assert!(failing.contains(
        "attribute_name=\"Reallocated_Sector_Ct\",attribute_value_type=\"value\",device=\"sdd\"} 1"
    ));
    assert!(has(
        &failing,
        "smartctl_device_self_test_log_error_count{device=\"sdd\",self_test_log_type=\"standard\"} 2"
    ));

    // A USB bridge smartctl does not know: only the exit status, no invented health.
    let (usb, r) = parse_smart("sde.json", &device("/dev/sde", "scsi"));
    r.unwrap();
    assert!(
        has(
            &usb,
            "smartctl_device_smartctl_exit_status{device=\"sde\"} 1"
        ),
        "{usb}"
    );
    assert!(!usb.contains("smart_status"));
    // Captured here: a device that is not there (exit status 2, "No such device").
    let (gone, r) = parse_smart("real-no-such-device.json", &device("/dev/sdz", "auto"));
    r.unwrap();
    assert!(
        has(
            &gone,
            "smartctl_device_smartctl_exit_status{device=\"sdz\"} 2"
        ),
        "{gone}"
    );

    // Truncated output: a clear error naming the device; the exit status is still written.
    let whole = read("smartctl", "sda.json");
    let mut set = FamilySet::default();
    let e = smartctl::parse_device(&mut set, &device("/dev/sda", "sat"), &whole[..300], Some(0))
        .unwrap_err()
        .to_string();
    assert!(e.contains("/dev/sda") && e.contains("not JSON"), "{e}");
    assert!(has(
        &render(set.into_vec()),
        "smartctl_device_smartctl_exit_status{device=\"sda\"} 0"
    ));

    // The scan, from this machine (no SMART device here) and from the fixture.
    let (devices, version) =
        smartctl::parse_scan(&read("smartctl", "real-scan-empty.json")).unwrap();
    assert!(devices.is_empty());
    assert!(render(vec![version.unwrap()]).contains("smartctl_version=\"7.3\""));
    let (devices, _) = smartctl::parse_scan(&read("smartctl", "scan.json")).unwrap();
    assert_eq!(devices.len(), 6);
    assert_eq!(devices[2], device("/dev/nvme0", "nvme"));
    assert!(smartctl::parse_scan(b"{\"json_format_vers").is_err());
}

fn options() -> Options {
    let mut o = Options::default();
    o.smartctl.path = fixtures("smartctl").join("smartctl");
    o.smartctl.interval = Duration::from_secs(3600);
    o.smartctl.timeout = Duration::from_secs(10);
    o.ceph.path = fixtures("ceph").join("ceph");
    o.ceph.interval = Duration::from_secs(3600);
    o
}

#[test]
fn smartctl_collector_serves_every_device_through_the_tool() {
    let out = after_first_run("smartctl", &options());
    assert!(
        has(
            &out,
            "node_scrape_collector_success{collector=\"smartctl\"} 1"
        ),
        "{out}"
    );
    assert!(has(&out, "smartctl_devices 6"));
    for d in ["sda", "sdb", "nvme0", "sdc", "sdd", "sde"] {
        assert!(
            out.contains(&format!(
                "smartctl_device_smartctl_exit_status{{device=\"{d}\"}}"
            )),
            "{d} missing:\n{out}"
        );
    }
    assert!(has(&out, "smartctl_device_smart_status{device=\"sdd\"} 0"));
    assert!(has(
        &out,
        "smartctl_device_percentage_used{device=\"nvme0\"} 84"
    ));
}

#[test]
fn smartctl_truncated_device_output_is_success_0_and_the_others_are_served() {
    let dir = tempfile::tempdir().unwrap();
    for f in [
        "smartctl",
        "scan.json",
        "sda.json",
        "sdb.json",
        "nvme0.json",
        "sdc.json",
        "sdd.json",
        "sde.json",
    ] {
        std::fs::copy(fixtures("smartctl").join(f), dir.path().join(f)).unwrap();
    }
    let whole = read("smartctl", "sdb.json");
    std::fs::write(dir.path().join("sdb.json"), &whole[..whole.len() / 2]).unwrap();
    let mut o = options();
    o.smartctl.path = dir.path().join("smartctl");
    let out = after_first_run("smartctl", &o);
    assert!(
        has(
            &out,
            "node_scrape_collector_success{collector=\"smartctl\"} 0"
        ),
        "{out}"
    );
    assert!(has(&out, "smartctl_device_smart_status{device=\"sda\"} 1"));
    assert!(!out.contains("smartctl_device_smart_status{device=\"sdb\"}"));
}

#[test]
fn a_missing_smartctl_is_success_0_with_the_flag_to_set() {
    let (families, error) = smartctl::collect(&smartctl::Options {
        path: PathBuf::from("/nonexistent/smartctl"),
        ..smartctl::Options::default()
    });
    assert!(families.is_empty());
    let e = error.unwrap().to_string();
    assert!(
        e.contains("not found") && e.contains("--collector.smartctl.path"),
        "{e}"
    );
}

/// A stub tool that records its PID, then hangs.
fn hanging_tool(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let pid_file = dir.join(format!("{name}.pid"));
    let tool = dir.join(name);
    std::fs::write(
        &tool,
        format!("#!/bin/sh\necho $$ > {}\nsleep 60\n", pid_file.display()),
    )
    .unwrap();
    let mut perms = std::fs::metadata(&tool).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&tool, perms).unwrap();
    (tool, pid_file)
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit(')')
                .next()
                .map(|r| r.split_whitespace().next() != Some("Z"))
        })
        .unwrap_or(false)
}

#[test]
fn a_slow_tool_never_delays_the_scrape_and_the_timeout_kills_it() {
    let dir = tempfile::tempdir().unwrap();
    let (smart, smart_pid) = hanging_tool(dir.path(), "smartctl");
    let (cephcli, ceph_pid) = hanging_tool(dir.path(), "ceph");
    let mut o = options();
    o.smartctl.path = smart;
    o.smartctl.timeout = Duration::from_secs(2);
    o.ceph.path = cephcli;
    o.ceph.timeout = Duration::from_secs(2);
    let c = Collectors::new(&["smartctl", "ceph", "loadavg"], &o, Duration::from_secs(5));
    // While both tools hang, scrapes answer at once: the rest of the page, success 0 for them.
    let started = Instant::now();
    let out = scrape(&c);
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "scrape took {:?}",
        started.elapsed()
    );
    assert!(
        has(
            &out,
            "node_scrape_collector_success{collector=\"smartctl\"} 0"
        ),
        "{out}"
    );
    assert!(has(
        &out,
        "node_scrape_collector_success{collector=\"ceph\"} 0"
    ));
    assert!(out.contains("node_load1 "));
    let wait_pid = |f: &Path| -> i32 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(pid) = std::fs::read_to_string(f)
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                return pid;
            }
            assert!(Instant::now() < deadline, "the tool never started");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let (sp, cp) = (wait_pid(&smart_pid), wait_pid(&ceph_pid));
    assert!(alive(sp) && alive(cp), "the tools run while we scrape");
    for _ in 0..3 {
        let t = Instant::now();
        scrape(&c);
        assert!(t.elapsed() < Duration::from_millis(500));
    }
    // At the deadline the tools are killed and the run reports why.
    let out = scrape_until(&c, Duration::from_secs(15), |o| {
        o.contains("cache_age_seconds{collector=\"smartctl\"}")
            && o.contains("cache_age_seconds{collector=\"ceph\"}")
    });
    assert!(has(
        &out,
        "node_scrape_collector_success{collector=\"smartctl\"} 0"
    ));
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(sp) || alive(cp) {
        assert!(
            Instant::now() < deadline,
            "a hung tool survived its timeout"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn parse_ceph(status: &str) -> (String, Result<(), String>) {
    let mut set = FamilySet::default();
    let r = ceph::parse_status(&mut set, &read("ceph", status)).map_err(|e| e.to_string());
    (render(set.into_vec()), r)
}

#[test]
fn ceph_health_ok_warn_err_and_older_releases() {
    let (ok, r) = parse_ceph("status-ok.json");
    r.unwrap();
    assert!(has(&ok, "ceph_health_status 0"));
    assert!(has(&ok, "ceph_pg_active 193") && has(&ok, "ceph_pg_clean 193"));
    assert!(has(&ok, "ceph_pg_degraded 0"), "absent states are 0:\n{ok}");
    assert!(has(&ok, "ceph_num_objects_degraded 0"));
    assert!(!ok.contains("ceph_health_detail{"));

    let (warn, r) = parse_ceph("status-warn.json");
    r.unwrap();
    for line in [
        "ceph_health_status 1",
        "ceph_health_detail{name=\"OSD_DOWN\",severity=\"HEALTH_WARN\"} 1",
        "ceph_health_detail{name=\"PG_DEGRADED\",severity=\"HEALTH_WARN\"} 1",
        "ceph_osdmap_num_osds 6",
        "ceph_osdmap_num_up_osds 5",
        "ceph_pg_total 193",
        "ceph_pg_degraded 31",
        "ceph_pg_recovering 6",
        "ceph_pg_undersized 31",
        "ceph_num_objects_degraded 21357",
        "ceph_cluster_recovery_bytes_per_second 2.39075328e+08",
    ] {
        assert!(has(&warn, line), "missing {line}:\n{warn}");
    }

    let (err, r) = parse_ceph("status-err.json");
    r.unwrap();
    assert!(has(&err, "ceph_health_status 2"));
    assert!(has(
        &err,
        "ceph_health_detail{name=\"OSD_FULL\",severity=\"HEALTH_ERR\"} 1"
    ));
    assert!(
        has(&err, "ceph_num_objects_unfound 2") && has(&err, "ceph_num_objects_misplaced 8841")
    );
    assert!(has(&err, "ceph_pg_backfill_toofull 2"));

    let (old, r) = parse_ceph("status-nautilus.json");
    r.unwrap();
    assert!(has(&old, "ceph_osdmap_num_up_osds 3"), "{old}");

    let (_, r) = parse_ceph("status-truncated.json");
    let e = r.unwrap_err();
    assert!(e.contains("ceph status") && e.contains("not JSON"), "{e}");
    let mut set = FamilySet::default();
    let e = ceph::parse_status(&mut set, br#"{"health":{"status":"HEALTH_MAYBE"}}"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("HEALTH_MAYBE"), "{e}");
}

#[test]
fn ceph_capacity_and_osds() {
    let mut set = FamilySet::default();
    ceph::parse_df(&mut set, &read("ceph", "df.json")).unwrap();
    ceph::parse_osd_df(&mut set, &read("ceph", "osd-df.json")).unwrap();
    ceph::parse_osd_tree(&mut set, &read("ceph", "osd-tree.json")).unwrap();
    let out = render(set.into_vec());
    for line in [
        "ceph_pool_metadata{name=\"music\",pool_id=\"2\"} 1",
        "ceph_pool_percent_used{pool_id=\"2\"} 0.86",
        "ceph_pool_max_avail{pool_id=\"2\"} 5.49755813888e+11",
        "ceph_cluster_total_bytes 3.9582418599936e+13",
        "ceph_osd_up{ceph_daemon=\"osd.3\"} 0",
        "ceph_osd_up{ceph_daemon=\"osd.2\"} 1",
        "ceph_osd_in{ceph_daemon=\"osd.5\"} 0",
        "ceph_osd_metadata{ceph_daemon=\"osd.3\",device_class=\"hdd\",hostname=\"ceph2\"} 1",
        "ceph_osd_stat_bytes{ceph_daemon=\"osd.0\"} 6.001181851648e+12",
        "ceph_osd_numpg{ceph_daemon=\"osd.5\"} 0",
    ] {
        assert!(has(&out, line), "missing {line}:\n{out}");
    }
}

#[test]
fn ceph_collector_through_the_cli_and_without_it() {
    let out = after_first_run("ceph", &options());
    assert!(
        has(&out, "node_scrape_collector_success{collector=\"ceph\"} 1"),
        "{out}"
    );
    assert!(has(&out, "ceph_health_status 1"));
    assert!(has(&out, "ceph_osd_up{ceph_daemon=\"osd.3\"} 0"));
    assert!(has(&out, "ceph_pool_percent_used{pool_id=\"2\"} 0.86"));

    let (_, error) = ceph::collect(&ceph::Options {
        path: PathBuf::from("/nonexistent/ceph"),
        ..ceph::Options::default()
    });
    let e = error.unwrap().to_string();
    assert!(
        e.contains("--collector.ceph.path") && e.matches("not found").count() == 1,
        "{e}"
    );
}

#[test]
fn mdstat_cases() {
    let all = String::from_utf8(read("mdstat", "all-states.txt")).unwrap();
    let arrays = mdadm::parse(&all).unwrap();
    assert_eq!(arrays.len(), 9);
    let md = |n: &str| arrays.iter().find(|a| a.name == n).unwrap();
    assert_eq!(
        (
            md("md1").disks_failed,
            md("md1").disks_down,
            md("md1").disks_active
        ),
        (1.0, 1.0, 3.0)
    );
    assert_eq!(
        (md("md2").state.as_str(), md("md2").blocks_synced),
        ("recovering", 420136960.0)
    );
    assert_eq!(md("md3").state, "checking");
    assert_eq!(
        (md("md4").state.as_str(), md("md4").blocks_synced),
        ("resyncing", 0.0)
    );
    assert_eq!(
        (md("md6").state.as_str(), md("md6").disks_spare),
        ("inactive", 2.0)
    );
    assert_eq!(md("md7").disks_total, 2.0);
    assert_eq!(md("md8").state, "active");
    assert!(
        mdadm::parse(&String::from_utf8(read("mdstat", "none.txt")).unwrap())
            .unwrap()
            .is_empty()
    );
    let (line, msg) =
        mdadm::parse(&String::from_utf8(read("mdstat", "truncated.txt")).unwrap()).unwrap_err();
    assert_eq!(line, 2, "{msg}");
    let (line, msg) =
        mdadm::parse(&String::from_utf8(read("mdstat", "malformed.txt")).unwrap()).unwrap_err();
    assert_eq!(line, 3, "{msg}");

    // Through the collector: the error names the file and line, success 0.
    let root = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixtures("mdstat").join("malformed.txt"),
        root.path().join("mdstat"),
    )
    .unwrap();
    let mut o = Options::default();
    o.paths.procfs = root.path().to_path_buf();
    let out = scrape(&Collectors::new(&["mdadm"], &o, Duration::from_secs(5)));
    assert!(
        has(&out, "node_scrape_collector_success{collector=\"mdadm\"} 0"),
        "{out}"
    );
}

fn touch(path: &Path, bytes: usize, age: Duration) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, vec![b'x'; bytes]).unwrap();
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(SystemTime::now() - age).unwrap();
}

#[test]
fn file_age_newest_count_and_size() {
    let root = tempfile::tempdir().unwrap();
    let nas = root.path().join("mnt/nas/backup");
    let h = Duration::from_secs(3600);
    touch(&nas.join("db-1.tar.gz"), 100, 50 * h);
    touch(&nas.join("db-2.tar.gz"), 200, 27 * h);
    touch(&nas.join("notes.txt"), 5, h);
    touch(&nas.join("daily/2026-11-23/music.tar"), 1000, 30 * h);
    touch(&nas.join("daily/2026-11-24/music.tar"), 3000, 2 * h);
    // A link back to a parent: followed, it would loop forever.
    std::os::unix::fs::symlink("..", nas.join("daily/2026-11-24/up")).unwrap();
    let mut o = Options::default();
    o.paths.rootfs = root.path().to_path_buf();
    o.file_age_paths = vec![
        "/mnt/nas/backup/*.tar.gz".into(),
        "/mnt/nas/backup/daily/**".into(),
        "/mnt/nas/backup/notes.txt".into(),
        "/mnt/gone/*".into(),
    ];
    let out = after_first_run("file_age", &o);
    assert!(
        has(
            &out,
            "node_scrape_collector_success{collector=\"file_age\"} 1"
        ),
        "{out}"
    );
    let newest = |pattern: &str| -> f64 {
        let prefix = format!("node_file_age_newest_timestamp_seconds{{path=\"{pattern}\"}} ");
        out.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {prefix}:\n{out}"))
            .parse()
            .unwrap()
    };
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let age_h = |p: &str| (now - newest(p)) / 3600.0;
    assert!((age_h("/mnt/nas/backup/*.tar.gz") - 27.0).abs() < 0.1);
    assert!((age_h("/mnt/nas/backup/daily/**") - 2.0).abs() < 0.1);
    assert!((age_h("/mnt/nas/backup/notes.txt") - 1.0).abs() < 0.1);
    assert!(has(
        &out,
        "node_file_age_files{path=\"/mnt/nas/backup/*.tar.gz\"} 2"
    ));
    assert!(has(
        &out,
        "node_file_age_bytes{path=\"/mnt/nas/backup/*.tar.gz\"} 300"
    ));
    assert!(has(
        &out,
        "node_file_age_files{path=\"/mnt/nas/backup/daily/**\"} 2"
    ));
    // Nothing there: 0, so "older than 26 h" fires rather than going quiet.
    assert!(has(
        &out,
        "node_file_age_newest_timestamp_seconds{path=\"/mnt/gone/*\"} 0"
    ));
    assert!(has(&out, "node_file_age_files{path=\"/mnt/gone/*\"} 0"));
    assert!(file_age::check("relative/*.tar").is_err());
    assert!(file_age::check("/srv/[oops").is_err());
}

#[test]
fn systemd_where_it_does_not_run_and_through_systemctl() {
    // No /run/systemd/system under this root: success 0 with the reason.
    let root = tempfile::tempdir().unwrap();
    let paths = vigie_agent::paths::Paths {
        rootfs: root.path().to_path_buf(),
        ..Default::default()
    };
    let (families, error) = systemd::collect(&systemd::Options::default(), &paths);
    assert!(families.is_empty());
    assert!(
        error
            .unwrap()
            .to_string()
            .contains("systemd is not running")
    );

    // A systemd host, through a stub systemctl.
    std::fs::create_dir_all(root.path().join("run/systemd/system")).unwrap();
    let stub = root.path().join("systemctl");
    std::fs::write(
        &stub,
        "#!/bin/sh\ncase \"$*\" in\n\
         *SystemState*) printf 'SystemState=degraded\\nVersion=252.30-1~deb12u2\\n' ;;\n\
         *) printf 'Id=nginx.service\\nType=notify\\nLoadState=loaded\\nActiveState=active\\n\\nId=backup.service\\nType=oneshot\\nLoadState=loaded\\nActiveState=failed\\n\\nId=boot.mount\\nType=ext4\\nLoadState=loaded\\nActiveState=active\\n' ;;\n\
         esac\n",
    )
    .unwrap();
    let mut perms = std::fs::metadata(&stub).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&stub, perms).unwrap();
    let o = systemd::Options {
        path: stub,
        ..systemd::Options::default()
    };
    let (families, error) = systemd::collect(&o, &paths);
    assert!(error.is_none(), "{error:?}");
    let out = render(families);
    assert!(
        has(
            &out,
            "node_systemd_unit_state{name=\"backup.service\",state=\"failed\",type=\"oneshot\"} 1"
        ),
        "{out}"
    );
    assert!(has(
        &out,
        "node_systemd_unit_state{name=\"nginx.service\",state=\"active\",type=\"notify\"} 1"
    ));
    assert!(
        !out.contains("boot.mount"),
        "mounts are excluded by default"
    );
    assert!(has(&out, "node_systemd_units{state=\"failed\"} 1"));
    assert!(has(&out, "node_systemd_system_running 0"));
    assert!(has(
        &out,
        "node_systemd_version{version=\"252.30-1~deb12u2\"} 252"
    ));
}

/// Writes a cgroup v2 tree: `slices` slices of `per_slice` services each.
pub fn cgroup_tree(root: &Path, slices: usize, per_slice: usize) {
    let cg = root.join("fs/cgroup");
    std::fs::create_dir_all(&cg).unwrap();
    std::fs::write(cg.join("cgroup.controllers"), "cpu io memory pids\n").unwrap();
    for s in 0..slices {
        for c in 0..per_slice {
            let dir = cg.join(format!("s{s}.slice/c{c}.service"));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(
                dir.join("cpu.stat"),
                "usage_usec 1000000\nuser_usec 600000\nsystem_usec 400000\n",
            )
            .unwrap();
            std::fs::write(dir.join("memory.current"), "1048576\n").unwrap();
            std::fs::write(dir.join("memory.max"), "max\n").unwrap();
            std::fs::write(dir.join("pids.current"), "3\n").unwrap();
        }
    }
}

#[test]
fn cgroup_walk_is_bounded() {
    let root = tempfile::tempdir().unwrap();
    cgroup_tree(root.path(), 5, 20);
    let mut o = Options::default();
    o.paths.sysfs = root.path().to_path_buf();
    o.cgroup.max_cgroups = 30;
    let out = scrape(&Collectors::new(&["cgroup"], &o, Duration::from_secs(5)));
    assert!(
        has(
            &out,
            "node_scrape_collector_success{collector=\"cgroup\"} 1"
        ),
        "{out}"
    );
    let series = out
        .lines()
        .filter(|l| l.starts_with("node_cgroup_memory_current_bytes{"))
        .count();
    assert_eq!(series, 30 - 5, "5 slices, then 25 services");
    assert!(has(&out, "node_cgroup_skipped 75"));
    // No limit in memory.max: no limit series.
    assert!(!out.contains("node_cgroup_memory_limit_bytes{"));

    o.cgroup.max_depth = 1;
    o.cgroup.max_cgroups = 500;
    let out = scrape(&Collectors::new(&["cgroup"], &o, Duration::from_secs(5)));
    assert_eq!(
        out.lines()
            .filter(|l| l.starts_with("node_cgroup_pids{"))
            .count(),
        0,
        "slices have no pids file here"
    );
    assert_eq!(
        out.lines()
            .filter(|l| l.starts_with("node_cgroup_memory_current_bytes{"))
            .count(),
        0
    );

    o.cgroup.max_depth = 4;
    o.cgroup.include = Some(regex::Regex::new("^/s1\\.slice/").unwrap());
    let out = scrape(&Collectors::new(&["cgroup"], &o, Duration::from_secs(5)));
    assert_eq!(
        out.lines()
            .filter(|l| l.starts_with("node_cgroup_pids{"))
            .count(),
        20,
        "{out}"
    );
    assert!(cgroup::identify("/s1.slice/c3.service").unit == "c3.service");

    // A cgroup v1 host: success 0, the rest of the page served.
    let v1 = tempfile::tempdir().unwrap();
    o.paths.sysfs = v1.path().to_path_buf();
    let out = scrape(&Collectors::new(&["cgroup"], &o, Duration::from_secs(5)));
    assert!(has(
        &out,
        "node_scrape_collector_success{collector=\"cgroup\"} 0"
    ));
}
