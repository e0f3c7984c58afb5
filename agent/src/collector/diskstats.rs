//! `node_disk_*` from /proc/diskstats (sectors are 512 bytes, times in ms), with device labels
//! from udev's database.

use std::collections::HashMap;
use std::path::Path;

use vigie_exposition::{Family, Kind};

use super::{Collector, DeviceFilter, Error, FamilySet, Result, read};
use crate::paths::Paths;

pub const DEFAULT_EXCLUDE: &str = r"^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$";
const SECTOR: f64 = 512.0;

/// (metric, help, kind, scale) for fields 4.. of a /proc/diskstats line, in kernel order.
const FIELDS: &[(&str, &str, Kind, f64)] = &[
    (
        "node_disk_reads_completed_total",
        "The total number of reads completed successfully.",
        Kind::Counter,
        1.0,
    ),
    (
        "node_disk_reads_merged_total",
        "The total number of reads merged.",
        Kind::Counter,
        1.0,
    ),
    (
        "node_disk_read_bytes_total",
        "The total number of bytes read successfully.",
        Kind::Counter,
        SECTOR,
    ),
    (
        "node_disk_read_time_seconds_total",
        "The total number of seconds spent by all reads.",
        Kind::Counter,
        0.001,
    ),
    (
        "node_disk_writes_completed_total",
        "The total number of writes completed successfully.",
        Kind::Counter,
        1.0,
    ),
    (
        "node_disk_writes_merged_total",
        "The number of writes merged.",
        Kind::Counter,
        1.0,
    ),
    (
        "node_disk_written_bytes_total",
        "The total number of bytes written successfully.",
        Kind::Counter,
        SECTOR,
    ),
    (
        "node_disk_write_time_seconds_total",
        "This is the total number of seconds spent by all writes.",
        Kind::Counter,
        0.001,
    ),
    (
        "node_disk_io_now",
        "The number of I/Os currently in progress.",
        Kind::Gauge,
        1.0,
    ),
    (
        "node_disk_io_time_seconds_total",
        "Total seconds spent doing I/Os.",
        Kind::Counter,
        0.001,
    ),
    (
        "node_disk_io_time_weighted_seconds_total",
        "The weighted # of seconds spent doing I/Os.",
        Kind::Counter,
        0.001,
    ),
    (
        "node_disk_discards_completed_total",
        "The total number of discards completed successfully.",
        Kind::Counter,
        1.0,
    ),
    (
        "node_disk_discards_merged_total",
        "The total number of discards merged.",
        Kind::Counter,
        1.0,
    ),
    (
        "node_disk_discarded_sectors_total",
        "The total number of sectors discarded successfully.",
        Kind::Counter,
        1.0,
    ),
    (
        "node_disk_discard_time_seconds_total",
        "This is the total number of seconds spent by all discards.",
        Kind::Counter,
        0.001,
    ),
    (
        "node_disk_flush_requests_total",
        "The total number of flush requests completed successfully",
        Kind::Counter,
        1.0,
    ),
    (
        "node_disk_flush_requests_time_seconds_total",
        "This is the total number of seconds spent by all flush requests.",
        Kind::Counter,
        0.001,
    ),
];

pub struct Diskstats {
    paths: Paths,
    filter: DeviceFilter,
}

impl Diskstats {
    pub fn new(o: &super::Options) -> Diskstats {
        Diskstats {
            paths: o.paths.clone(),
            filter: o.diskstats.clone(),
        }
    }
}

pub struct Disk {
    pub major: String,
    pub minor: String,
    pub name: String,
    pub values: Vec<f64>,
}

pub fn parse_diskstats(text: &str, path: &Path) -> Result<Vec<Disk>> {
    let mut disks = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let parts: Vec<&str> = line.split_ascii_whitespace().collect();
        if parts.is_empty() {
            continue;
        }
        if parts.len() < 14 {
            return Err(Error::parse(
                path,
                i + 1,
                format!("expected at least 14 fields, got {}", parts.len()),
            ));
        }
        let values = parts[3..]
            .iter()
            .map(|f| f.parse::<u64>().map(|v| v as f64))
            .collect::<std::result::Result<Vec<f64>, _>>()
            .map_err(|_| Error::parse(path, i + 1, format!("invalid counter for {}", parts[2])))?;
        disks.push(Disk {
            major: parts[0].into(),
            minor: parts[1].into(),
            name: parts[2].into(),
            values,
        });
    }
    Ok(disks)
}

/// Reads `E:KEY=value` properties of a udev database entry.
pub fn parse_udev(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("E:"))
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl Collector for Diskstats {
    fn update(&self, out: &mut Vec<Family>) -> Result<()> {
        let path = self.paths.proc("diskstats");
        let disks = parse_diskstats(&read(&path)?, &path)?;
        let mut set = FamilySet::default();
        for disk in disks.iter().filter(|d| !self.filter.ignored(&d.name)) {
            let dev = disk.name.as_str();
            for ((name, help, kind, scale), v) in FIELDS.iter().zip(&disk.values) {
                set.family(name, help, *kind)
                    .push(&[("device", dev)], v * scale);
            }
            let udev = std::fs::read_to_string(
                self.paths.udev(&format!("b{}:{}", disk.major, disk.minor)),
            )
            .map(|t| parse_udev(&t))
            .unwrap_or_default();
            let get = |k: &str| udev.get(k).map(String::as_str).unwrap_or("");
            let serial = match get("SCSI_IDENT_SERIAL") {
                "" => get("ID_SERIAL_SHORT"),
                s => s,
            };
            set.family(
                "node_disk_info",
                "Info of /sys/block/<block_device>.",
                Kind::Gauge,
            )
            .push(
                &[
                    ("device", dev),
                    ("major", &disk.major),
                    ("minor", &disk.minor),
                    ("path", get("ID_PATH")),
                    ("wwn", get("ID_WWN")),
                    ("model", get("ID_MODEL")),
                    ("serial", serial),
                    ("revision", get("ID_REVISION")),
                ],
                1.0,
            );
            if let Some(fs_type) = udev.get("ID_FS_TYPE") {
                set.family(
                    "node_disk_filesystem_info",
                    "Info about disk filesystem.",
                    Kind::Gauge,
                )
                .push(
                    &[
                        ("device", dev),
                        ("type", fs_type),
                        ("usage", get("ID_FS_USAGE")),
                        ("uuid", get("ID_FS_UUID")),
                        ("version", get("ID_FS_VERSION")),
                    ],
                    1.0,
                );
            }
            if let Some(dm_name) = udev.get("DM_NAME") {
                set.family(
                    "node_disk_device_mapper_info",
                    "Info about disk device mapper.",
                    Kind::Gauge,
                )
                .push(
                    &[
                        ("device", dev),
                        ("name", dm_name),
                        ("uuid", get("DM_UUID")),
                        ("vg_name", get("DM_VG_NAME")),
                        ("lv_name", get("DM_LV_NAME")),
                        ("lv_layer", get("DM_LV_LAYER")),
                    ],
                    1.0,
                );
            }
            for (key, name, help) in [
                (
                    "ID_ATA_ROTATION_RATE_RPM",
                    "node_disk_ata_rotation_rate_rpm",
                    "ATA disk rotation rate in RPMs (0 for SSDs).",
                ),
                (
                    "ID_ATA_WRITE_CACHE",
                    "node_disk_ata_write_cache",
                    "ATA disk has a write cache.",
                ),
                (
                    "ID_ATA_WRITE_CACHE_ENABLED",
                    "node_disk_ata_write_cache_enabled",
                    "ATA disk has its write cache enabled.",
                ),
            ] {
                if let Some(v) = udev.get(key).and_then(|v| v.parse::<f64>().ok()) {
                    set.family(name, help, Kind::Gauge)
                        .push(&[("device", dev)], v);
                }
            }
        }
        out.extend(set.into_vec());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_diskstats_and_udev() {
        let t = " 254       0 vda 100 0 2000 50 10 0 80 5 0 60 55 0 0 0 0 3 1\n   7 0 loop0 1 0 0 0 0 0 0 0 0 0 0\n";
        let d = parse_diskstats(t, Path::new("d")).unwrap();
        assert_eq!(d[0].values.len(), 17);
        assert_eq!(d[1].values.len(), 11);
        assert!(parse_diskstats("8 0 sda 1 2\n", Path::new("d")).is_err());
        let u = parse_udev("S:disk/by-id/x\nE:ID_MODEL=QEMU\nE:ID_PATH=pci-0000:00:05.0\n");
        assert_eq!(u["ID_MODEL"], "QEMU");
        assert_eq!(u["ID_PATH"], "pci-0000:00:05.0");
    }
}
