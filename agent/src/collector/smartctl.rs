//! Drive health from `smartctl --json` (smartmontools 7+), under the community
//! smartctl_exporter's metric names so its dashboards and alert rules work unchanged.
//!
//! SMART commands wake disks and can take seconds per device, so this runs in the background
//! ([`super::background`]) every `--collector.smartctl.interval` with a deadline per device; the
//! scrape serves the last result. Devices come from `smartctl --scan-open --json` unless listed
//! with `--collector.smartctl.device`.
//!
//! Differences from smartctl_exporter, on purpose: the `device` label is the kernel name without
//! `/dev/` (`sda`, `nvme0`), so it joins with `node_disk_*`; NVMe-only series are only written for
//! NVMe devices; every family is a gauge (promtool's lint wants `_total` on counters, and these
//! are the tool's readings, not counters we maintain); NVMe bytes read/written use the spec's
//! data unit (1,000 × 512 bytes).

use std::path::PathBuf;
use std::time::Duration;

use regex::Regex;
use serde_json::Value;
use vigie_exposition::{Family, Kind};

use super::background::{self, Background};
use super::{Error, FamilySet, Result};

#[derive(Debug, Clone)]
pub struct Options {
    pub path: PathBuf,
    pub interval: Duration,
    /// Deadline for one `smartctl` run (the scan, or one device).
    pub timeout: Duration,
    /// Devices to read instead of scanning (`/dev/sda`, or `/dev/sda;sat` with a type).
    pub devices: Vec<String>,
    pub device_exclude: Option<Regex>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            path: PathBuf::from("smartctl"),
            interval: Duration::from_secs(300),
            timeout: Duration::from_secs(30),
            devices: Vec::new(),
            device_exclude: None,
        }
    }
}

/// The collector: `smartctl` on its own thread every interval; the scrape serves the last run.
pub fn new(o: &super::Options) -> Background {
    let opts = o.smartctl.clone();
    Background::spawn("smartctl", opts.interval, move || collect(&opts))
}

/// One device to read: its path and the `-d` type the scan found.
#[derive(Debug, Clone, PartialEq)]
pub struct Device {
    pub name: String,
    pub kind: Option<String>,
}

const FLAG: &str = "collector.smartctl.path";

/// Parses `smartctl --scan-open --json`: the devices, and the tool's version labels.
pub fn parse_scan(text: &[u8]) -> Result<(Vec<Device>, Option<Family>)> {
    let v: Value = serde_json::from_slice(text)
        .map_err(|e| Error::Other(format!("smartctl --scan-open: output is not JSON: {e}")))?;
    let mut devices = Vec::new();
    if let Some(list) = v.get("devices").and_then(Value::as_array) {
        for d in list {
            let Some(name) = d.get("name").and_then(Value::as_str) else {
                continue;
            };
            // --scan-open marks devices it could not open; they are still worth a try (and an
            // exit status metric) rather than a silent hole.
            devices.push(Device {
                name: name.to_string(),
                kind: d.get("type").and_then(Value::as_str).map(str::to_string),
            });
        }
    }
    Ok((devices, version_family(&v)))
}

fn version_family(v: &Value) -> Option<Family> {
    let s = v.get("smartctl")?;
    let join = |a: Option<&Value>| {
        a.and_then(Value::as_array)
            .map(|parts| {
                parts
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(".")
            })
            .unwrap_or_default()
    };
    let json_format = join(v.get("json_format_version"));
    let version = join(s.get("version"));
    let svn = str_at(s, "svn_revision");
    let build = str_at(s, "build_info");
    Some(
        Family::new("smartctl_version", "smartctl version", Kind::Gauge).with(
            &[
                ("json_format_version", &json_format),
                ("smartctl_version", &version),
                ("svn_revision", &svn),
                ("build_info", &build),
            ],
            1.0,
        ),
    )
}

fn at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, k| v.get(k))
}

fn num(v: &Value, path: &str) -> Option<f64> {
    at(v, path).and_then(|x| match x {
        Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        other => other.as_f64(),
    })
}

fn str_at(v: &Value, path: &str) -> String {
    at(v, path)
        .and_then(Value::as_str)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The `device` label: the kernel name without `/dev/`.
pub fn device_label(name: &str) -> String {
    name.trim().trim_start_matches("/dev/").to_string()
}

/// Adds one device's families from its `smartctl --json` output. `code` is the process exit
/// status, used when the output does not say. Output that is not JSON is an error naming the
/// device; the exit status is still written.
pub fn parse_device(
    set: &mut FamilySet,
    device: &Device,
    text: &[u8],
    code: Option<i32>,
) -> Result<()> {
    let label = device_label(&device.name);
    let d = label.as_str();
    let v: Value = match serde_json::from_slice(text) {
        Ok(v) => v,
        Err(e) => {
            if let Some(c) = code {
                exit_status(set, d, c as f64);
            }
            return Err(Error::Other(format!(
                "smartctl on {}: output is not JSON (truncated?): {e}",
                device.name
            )));
        }
    };
    let status = num(&v, "smartctl.exit_status")
        .or(code.map(f64::from))
        .unwrap_or(0.0);
    exit_status(set, d, status);
    // Bits 0 and 1: the command line was refused or the device did not answer (a USB bridge
    // smartctl does not know, a device gone). The exit status above says so; nothing else is
    // known about the device.
    if status as i64 & 0b11 != 0 && v.get("model_name").is_none() && v.get("device").is_none() {
        return Ok(());
    }
    let g = |set: &mut FamilySet, name: &str, help: &str, labels: &[(&'static str, &str)], x| {
        set.family(name, help, Kind::Gauge).push(labels, x)
    };
    let family = str_at(&v, "model_family");
    let model = str_at(&v, "model_name");
    let serial = str_at(&v, "serial_number");
    let additional = at(&v, "ata_additional_product_id")
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .to_string();
    g(
        set,
        "smartctl_device",
        "Device info",
        &[
            ("device", d),
            ("interface", &str_at(&v, "device.type")),
            ("protocol", &str_at(&v, "device.protocol")),
            ("model_family", &family),
            ("model_name", &model),
            ("serial_number", &serial),
            ("ata_additional_product_id", &additional),
            ("firmware_version", &str_at(&v, "firmware_version")),
            ("ata_version", &str_at(&v, "ata_version.string")),
            ("sata_version", &str_at(&v, "sata_version.string")),
            ("form_factor", &str_at(&v, "form_factor.name")),
        ],
        1.0,
    );
    device_gauges(
        set,
        d,
        &v,
        &[
            (
                "user_capacity.blocks",
                "smartctl_device_capacity_blocks",
                "Device capacity in blocks",
                1.0,
            ),
            (
                "user_capacity.bytes",
                "smartctl_device_capacity_bytes",
                "Device capacity in bytes",
                1.0,
            ),
            (
                "power_cycle_count",
                "smartctl_device_power_cycle_count",
                "Device power cycle count",
                1.0,
            ),
            (
                "ata_sct_status.device_state",
                "smartctl_device_state",
                "Device state (0=active, 1=standby, 2=sleep, 3=dst, 4=offline, 5=sct)",
                1.0,
            ),
            (
                "smart_status.passed",
                "smartctl_device_smart_status",
                "General smart status",
                1.0,
            ),
            (
                "smart_status.passed",
                "smartctl_device_status",
                "Device status",
                1.0,
            ),
        ],
    );
    for kind in ["logical", "physical"] {
        if let Some(x) = num(&v, &format!("{kind}_block_size")) {
            g(
                set,
                "smartctl_device_block_size",
                "Device block size",
                &[("device", d), ("blocks_type", kind)],
                x,
            );
        }
    }
    for kind in ["max", "current"] {
        if let (Some(u), Some(b)) = (
            num(&v, &format!("interface_speed.{kind}.units_per_second")),
            num(&v, &format!("interface_speed.{kind}.bits_per_unit")),
        ) {
            g(
                set,
                "smartctl_device_interface_speed",
                "Device interface speed, bits per second",
                &[("device", d), ("speed_type", kind)],
                u * b,
            );
        }
    }
    attributes(set, d, &v);
    if let Some(p) = v.get("power_on_time") {
        let secs =
            num(p, "hours").unwrap_or(0.0) * 3600.0 + num(p, "minutes").unwrap_or(0.0) * 60.0;
        g(
            set,
            "smartctl_device_power_on_seconds",
            "Device power on seconds",
            &[("device", d)],
            secs,
        );
    }
    if let Some(r) = num(&v, "rotation_rate").filter(|r| *r > 0.0) {
        g(
            set,
            "smartctl_device_rotation_rate",
            "Device rotation rate",
            &[("device", d)],
            r,
        );
    }
    if let Some(t) = v.get("temperature").and_then(Value::as_object) {
        for (kind, x) in t {
            if let Some(x) = x.as_f64() {
                g(
                    set,
                    "smartctl_device_temperature",
                    "Device temperature celsius",
                    &[("device", d), ("temperature_type", kind)],
                    x,
                );
            }
        }
    }
    nvme(set, d, &v);
    logs(set, d, &v);
    scsi(set, d, &v, &family, &model, &serial);
    Ok(())
}

fn exit_status(set: &mut FamilySet, d: &str, x: f64) {
    set.family(
        "smartctl_device_smartctl_exit_status",
        "Exit status of smartctl on device",
        Kind::Gauge,
    )
    .push(&[("device", d)], x);
}

fn attributes(set: &mut FamilySet, d: &str, v: &Value) {
    let Some(table) = at(v, "ata_smart_attributes.table").and_then(Value::as_array) else {
        return;
    };
    const LONG: [&str; 6] = [
        "prefailure",
        "updated_online",
        "performance",
        "error_rate",
        "event_count",
        "auto_keep",
    ];
    for a in table {
        let name = str_at(a, "name");
        let short = str_at(a, "flags.string");
        let long = LONG
            .iter()
            .filter(|f| at(a, &format!("flags.{f}")).and_then(Value::as_bool) == Some(true))
            .copied()
            .collect::<Vec<_>>()
            .join(",");
        let id = at(a, "id").map(|x| x.to_string()).unwrap_or_default();
        for (kind, path) in [
            ("value", "value"),
            ("worst", "worst"),
            ("thresh", "thresh"),
            ("raw", "raw.value"),
        ] {
            if let Some(x) = num(a, path) {
                set.family(
                    "smartctl_device_attribute",
                    "Device attributes",
                    Kind::Gauge,
                )
                .push(
                    &[
                        ("device", d),
                        ("attribute_name", &name),
                        ("attribute_flags_short", &short),
                        ("attribute_flags_long", &long),
                        ("attribute_value_type", kind),
                        ("attribute_id", &id),
                    ],
                    x,
                );
            }
        }
    }
}

fn nvme(set: &mut FamilySet, d: &str, v: &Value) {
    let Some(log) = v.get("nvme_smart_health_information_log") else {
        return;
    };
    device_gauges(
        set,
        d,
        log,
        &[
            (
                "percentage_used",
                "smartctl_device_percentage_used",
                "Device write percentage used",
                1.0,
            ),
            (
                "available_spare",
                "smartctl_device_available_spare",
                "Normalized percentage (0 to 100%) of the remaining spare capacity available",
                1.0,
            ),
            (
                "available_spare_threshold",
                "smartctl_device_available_spare_threshold",
                "When the Available Spare falls below the threshold indicated in this field, an asynchronous event completion may occur. The value is indicated as a normalized percentage (0 to 100%)",
                1.0,
            ),
            (
                "critical_warning",
                "smartctl_device_critical_warning",
                "This field indicates critical warnings for the state of the controller",
                1.0,
            ),
            (
                "media_errors",
                "smartctl_device_media_errors",
                "Contains the number of occurrences where the controller detected an unrecovered data integrity error. Errors such as uncorrectable ECC, CRC checksum failure, or LBA tag mismatch are included in this field",
                1.0,
            ),
            (
                "num_err_log_entries",
                "smartctl_device_num_err_log_entries",
                "Contains the number of Error Information log entries over the life of the controller",
                1.0,
            ),
            // NVMe counts data in units of 1,000 512-byte blocks, whatever the LBA size.
            (
                "data_units_read",
                "smartctl_device_bytes_read",
                "Bytes read from the device (NVMe data units × 512,000)",
                512_000.0,
            ),
            (
                "data_units_written",
                "smartctl_device_bytes_written",
                "Bytes written to the device (NVMe data units × 512,000)",
                512_000.0,
            ),
        ],
    );
}

/// One gauge per device for each row `(dotted JSON path, family, help, scale)` present in `v`.
fn device_gauges(set: &mut FamilySet, d: &str, v: &Value, rows: &[(&str, &str, &str, f64)]) {
    for (path, name, help, scale) in rows {
        if let Some(x) = num(v, path) {
            set.family(name, help, Kind::Gauge)
                .push(&[("device", d)], x * scale);
        }
    }
}

/// ATA logs keyed by kind (`summary`, `extended`, `standard`, `read`/`write`): the JSON object,
/// its field, the family, its help, the label carrying the kind, and the divisor to the unit.
const LOGS: [(&str, &str, &str, &str, &str, f64); 4] = [
    (
        "ata_smart_error_log",
        "count",
        "smartctl_device_error_log_count",
        "Device SMART error log count",
        "error_log_type",
        1.0,
    ),
    (
        "ata_smart_self_test_log",
        "count",
        "smartctl_device_self_test_log_count",
        "Device SMART self test log count",
        "self_test_log_type",
        1.0,
    ),
    (
        "ata_smart_self_test_log",
        "error_count_total",
        "smartctl_device_self_test_log_error_count",
        "Device SMART self test log error count",
        "self_test_log_type",
        1.0,
    ),
    (
        "ata_sct_erc",
        "deciseconds",
        "smartctl_device_erc_seconds",
        "Device SMART Error Recovery Control Seconds",
        "op_type",
        10.0,
    ),
];

fn logs(set: &mut FamilySet, d: &str, v: &Value) {
    for (object, field, name, help, label, divisor) in LOGS {
        let Some(m) = v.get(object).and_then(Value::as_object) else {
            continue;
        };
        for (kind, log) in m {
            if let Some(x) = num(log, field) {
                set.family(name, help, Kind::Gauge)
                    .push(&[("device", d), (label, kind)], x / divisor);
            }
        }
    }
}

fn scsi(set: &mut FamilySet, d: &str, v: &Value, family: &str, model: &str, serial: &str) {
    let labels = [
        ("device", d),
        ("model_family", family),
        ("model_name", model),
        ("serial_number", serial),
    ];
    if let Some(x) = num(v, "scsi_grown_defect_list") {
        set.family(
            "smartctl_scsi_grown_defect_list",
            "Device SCSI grown defect list counter",
            Kind::Gauge,
        )
        .push(&labels, x);
    }
    let Some(log) = v.get("scsi_error_counter_log") else {
        return;
    };
    for (path, name, help) in [
        (
            "read.errors_corrected_by_rereads_rewrites",
            "smartctl_read_errors_corrected_by_rereads_rewrites",
            "Read Errors Corrected by ReReads/ReWrites",
        ),
        (
            "read.total_uncorrected_errors",
            "smartctl_read_total_uncorrected_errors",
            "Read Total Uncorrected Errors",
        ),
        (
            "write.errors_corrected_by_rereads_rewrites",
            "smartctl_write_errors_corrected_by_rereads_rewrites",
            "Write Errors Corrected by ReReads/ReWrites",
        ),
        (
            "write.total_uncorrected_errors",
            "smartctl_write_total_uncorrected_errors",
            "Write Total Uncorrected Errors",
        ),
    ] {
        if let Some(x) = num(log, path) {
            set.family(name, help, Kind::Gauge).push(&labels, x);
        }
    }
}

/// smartctl_exporter's arguments for one device (identity, health, attributes, error and
/// self-test logs), without waking a disk in standby.
pub fn device_args(device: &Device) -> Vec<String> {
    let mut args: Vec<String> = [
        "--json",
        "--info",
        "--health",
        "--attributes",
        "--tolerance=verypermissive",
        // A disk in standby is left asleep and is not an error (exit 0, not smartctl's 2).
        "--nocheck=standby,0",
        "--format=brief",
        "--log=error",
        "--log=selftest",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if let Some(k) = &device.kind {
        args.push(format!("--device={k}"));
    }
    args.push(device.name.clone());
    args
}

/// One background run: scan (or the configured list), then each device in turn.
pub fn collect(o: &Options) -> (Vec<Family>, Option<Error>) {
    let mut set = FamilySet::default();
    let mut errors = Vec::new();
    let devices = if o.devices.is_empty() {
        match background::run(
            &o.path,
            &["--scan-open".into(), "--json".into()],
            o.timeout,
            FLAG,
        )
        .and_then(|out| parse_scan(&out.stdout))
        {
            Ok((devices, version)) => {
                if let Some(v) = version {
                    set.family(&v.name, &v.help, v.kind)
                        .samples
                        .extend(v.samples);
                }
                devices
            }
            Err(e) => return (Vec::new(), Some(e)),
        }
    } else {
        o.devices
            .iter()
            .map(|d| match d.split_once(';') {
                Some((name, kind)) => Device {
                    name: name.to_string(),
                    kind: Some(kind.to_string()),
                },
                None => Device {
                    name: d.clone(),
                    kind: None,
                },
            })
            .collect()
    };
    let devices: Vec<Device> = devices
        .into_iter()
        .filter(|d| {
            o.device_exclude
                .as_ref()
                .is_none_or(|re| !re.is_match(&device_label(&d.name)))
        })
        .collect();
    set.family("smartctl_devices", "Number of devices read", Kind::Gauge)
        .push(&[], devices.len() as f64);
    for device in &devices {
        match background::run(&o.path, &device_args(device), o.timeout, FLAG) {
            Ok(out) => {
                if let Err(e) = parse_device(&mut set, device, &out.stdout, out.code) {
                    errors.push(e.to_string());
                }
            }
            Err(e) => errors.push(format!("{}: {e}", device.name)),
        }
    }
    let error = match errors.len() {
        0 => None,
        1 => Some(Error::Other(errors.remove(0))),
        n => Some(Error::Other(format!(
            "{} (and {} more device errors)",
            errors[0],
            n - 1
        ))),
    };
    (set.into_vec(), error)
}
