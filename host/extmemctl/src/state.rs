// SPDX-License-Identifier: GPL-2.0

//! What extmem shows in sysfs and procfs, read into one [`State`], which is also the JSON
//! that `extmemctl list --json` prints (schema: Documentation/admin-guide/mm/extmem.rst,
//! "extmemctl list --json").

use serde::Serialize;
use std::fs;
use std::path::{Path, PathBuf};

/// `/sys/kernel/mm/extmem`.
pub(crate) const SYSFS: &str = "/sys/kernel/mm/extmem";
/// `/sys/class/extmem_region`.
pub(crate) const REGIONS: &str = "/sys/class/extmem_region";
/// Where region nodes appear.
pub(crate) const DEV_DIR: &str = "/dev/extmem_region";

/// The version of the JSON document; bumped when a field changes meaning or goes away.
pub(crate) const SCHEMA_VERSION: u32 = 1;

/// One carved-out area (`/sys/kernel/mm/extmem/areaN/`).
#[derive(Serialize, Debug, Clone)]
pub(crate) struct Area {
    pub(crate) index: u32,
    pub(crate) node: i32,
    /// Physical base address; `null` unless the reader may see it (root: sysfs `base` is
    /// mode 0400).
    pub(crate) base: Option<u64>,
    pub(crate) size: u64,
    pub(crate) free: u64,
    pub(crate) largest_free: u64,
    pub(crate) in_use: u64,
    pub(crate) allocations: u64,
    pub(crate) failed_requests: u64,
    /// Why the area is quarantined, or `null`.
    pub(crate) quarantined: Option<String>,
}

/// One region (`/sys/class/extmem_region/<name>/`).
#[derive(Serialize, Debug, Clone)]
pub(crate) struct Region {
    pub(crate) name: String,
    pub(crate) device: String,
    pub(crate) node: i32,
    pub(crate) size: u64,
    pub(crate) align: u64,
    pub(crate) sticky: bool,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    /// Octal, as `chmod` takes it (`"0660"`).
    pub(crate) mode: String,
    /// Physical base address; `null` unless the reader may see it (root).
    pub(crate) phys: Option<u64>,
}

/// HugeTLB pages extmem backs on a node (`/sys/kernel/mm/extmem/nodeN/`).
#[derive(Serialize, Debug, Clone)]
pub(crate) struct HugeTlb {
    pub(crate) node: i32,
    pub(crate) pages_2m: u64,
    pub(crate) pages_1g: u64,
    pub(crate) plugged_bytes: u64,
}

/// Processes that hold allocation fds (`anon_inode:[extmem]` in `/proc/<pid>/fd`).
#[derive(Serialize, Debug, Clone)]
pub(crate) struct Holder {
    pub(crate) pid: u32,
    pub(crate) comm: String,
    pub(crate) fds: u32,
}

/// The kexec handover (`/sys/kernel/mm/extmem/handover/`).
#[derive(Serialize, Debug, Clone, Default)]
pub(crate) struct Handover {
    /// A buffer for the next kernel exists (KHO on and the pool has areas).
    pub(crate) enabled: bool,
    /// Allocations preserved in LUO sessions, handed over at the next kexec.
    pub(crate) preserved_allocations: u64,
    /// Sticky regions, handed over at the next kexec.
    pub(crate) sticky_regions: u64,
    /// The previous kernel's allocations still waiting to be retrieved.
    pub(crate) incoming_allocations: u64,
}

/// Everything `extmemctl list` shows.
#[derive(Serialize, Debug, Clone)]
pub(crate) struct State {
    pub(crate) version: u32,
    pub(crate) areas: Vec<Area>,
    pub(crate) regions: Vec<Region>,
    pub(crate) allocation_fds: Vec<Holder>,
    pub(crate) hugetlb: Vec<HugeTlb>,
    pub(crate) handover: Handover,
}

fn read(path: &Path) -> Result<String, String> {
    fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Reads a decimal or `0x` hexadecimal number.
fn read_num<T: TryFrom<u64>>(path: &Path) -> Result<T, String> {
    let s = read(path)?;
    let v = match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    };
    v.and_then(|v| T::try_from(v).ok())
        .ok_or_else(|| format!("{}: not a number: '{s}'", path.display()))
}

/// Sorted entries of `dir` whose names start with `prefix`, with the rest of the name.
fn entries(dir: &str, prefix: &str) -> Vec<(String, PathBuf)> {
    let mut v: Vec<(String, PathBuf)> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let rest = name.strip_prefix(prefix)?.to_string();
            Some((rest, e.path()))
        })
        .collect();
    v.sort_by(|a, b| {
        let (x, y) = (a.0.parse::<u64>(), b.0.parse::<u64>());
        match (x, y) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            _ => a.0.cmp(&b.0),
        }
    });
    v
}

/// Reads the areas; an empty list when extmem has none (or is not built in).
pub(crate) fn areas() -> Result<Vec<Area>, String> {
    let mut out = Vec::new();
    for (idx, p) in entries(SYSFS, "area") {
        let Ok(index) = idx.parse() else { continue };
        let quarantined = read(&p.join("quarantined"))?;
        out.push(Area {
            index,
            node: read_num(&p.join("node"))?,
            base: read_num(&p.join("base")).ok(),
            size: read_num(&p.join("size"))?,
            free: read_num(&p.join("free_bytes"))?,
            largest_free: read_num(&p.join("largest_free_run"))?,
            in_use: read_num(&p.join("bytes_in_use"))?,
            allocations: read_num(&p.join("allocations"))?,
            failed_requests: read_num(&p.join("failed_requests"))?,
            quarantined: (quarantined != "none").then_some(quarantined),
        });
    }
    Ok(out)
}

/// Reads the regions, sorted by name.
pub(crate) fn regions() -> Result<Vec<Region>, String> {
    let mut out = Vec::new();
    for (name, p) in entries(REGIONS, "") {
        out.push(Region {
            device: format!("{DEV_DIR}/{name}"),
            node: read_num(&p.join("target_node"))?,
            size: read_num(&p.join("size"))?,
            align: read_num(&p.join("align"))?,
            sticky: read(&p.join("sticky"))? == "1",
            uid: read_num(&p.join("uid"))?,
            gid: read_num(&p.join("gid"))?,
            mode: read(&p.join("mode"))?,
            phys: read_num(&p.join("resource")).ok(),
            name,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn hugetlb() -> Result<Vec<HugeTlb>, String> {
    let mut out = Vec::new();
    for (nid, p) in entries(SYSFS, "node") {
        let Ok(node) = nid.parse() else { continue };
        out.push(HugeTlb {
            node,
            pages_2m: read_num(&p.join("hugetlb_2M"))?,
            pages_1g: read_num(&p.join("hugetlb_1G"))?,
            plugged_bytes: read_num(&p.join("hugetlb_plugged_bytes"))?,
        });
    }
    Ok(out)
}

fn handover() -> Handover {
    let p = Path::new(SYSFS).join("handover");
    let num = |f: &str| read_num::<u64>(&p.join(f)).unwrap_or(0);
    Handover {
        enabled: num("enabled") == 1,
        preserved_allocations: num("preserved_allocations"),
        sticky_regions: num("sticky_regions"),
        incoming_allocations: num("incoming_allocations"),
    }
}

/// Processes with allocation fds open. Only those whose `/proc/<pid>/fd` the caller may read.
fn holders() -> Vec<Holder> {
    let mut out = Vec::new();
    for (pid, p) in entries("/proc", "") {
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        let fds = fs::read_dir(p.join("fd"))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| {
                fs::read_link(e.path())
                    .map(|l| l.as_os_str() == "anon_inode:[extmem]")
                    .unwrap_or(false)
            })
            .count();
        if fds > 0 {
            out.push(Holder {
                pid,
                comm: read(&p.join("comm")).unwrap_or_default(),
                fds: fds as u32,
            });
        }
    }
    out
}

/// Reads everything `list` shows.
pub(crate) fn read_all() -> Result<State, String> {
    if !Path::new(SYSFS).is_dir() {
        return Err(format!(
            "{SYSFS} does not exist: this kernel has no extmem (CONFIG_EXTMEM)"
        ));
    }
    Ok(State {
        version: SCHEMA_VERSION,
        areas: areas()?,
        regions: regions()?,
        allocation_fds: holders(),
        hugetlb: hugetlb()?,
        handover: handover(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The JSON field names are an interface (Documentation/admin-guide/mm/extmem.rst,
    /// "extmemctl list --json"): renaming one is a schema change.
    #[test]
    fn json_schema_version_1() {
        let s = State {
            version: SCHEMA_VERSION,
            areas: vec![Area {
                index: 0,
                node: 0,
                base: Some(1 << 32),
                size: 1 << 30,
                free: 3 << 28,
                largest_free: 3 << 28,
                in_use: 1 << 28,
                allocations: 1,
                failed_requests: 0,
                quarantined: None,
            }],
            regions: vec![Region {
                name: "vm0".into(),
                device: format!("{DEV_DIR}/vm0"),
                node: 0,
                size: 1 << 28,
                align: 2 << 20,
                sticky: true,
                uid: 1000,
                gid: 1000,
                mode: "0600".into(),
                phys: None,
            }],
            allocation_fds: vec![Holder {
                pid: 1,
                comm: "qemu".into(),
                fds: 2,
            }],
            hugetlb: vec![HugeTlb {
                node: 0,
                pages_2m: 0,
                pages_1g: 0,
                plugged_bytes: 0,
            }],
            handover: Handover::default(),
        };
        let v: serde_json::Value = serde_json::to_value(&s).unwrap();
        assert_eq!(v["version"], 1);
        let keys = |v: &serde_json::Value| {
            let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            k.sort();
            k.join(",")
        };
        assert_eq!(
            keys(&v),
            "allocation_fds,areas,handover,hugetlb,regions,version"
        );
        assert_eq!(
            keys(&v["areas"][0]),
            "allocations,base,failed_requests,free,in_use,index,largest_free,node,quarantined,size"
        );
        assert_eq!(
            keys(&v["regions"][0]),
            "align,device,gid,mode,name,node,phys,size,sticky,uid"
        );
        assert_eq!(keys(&v["allocation_fds"][0]), "comm,fds,pid");
        assert_eq!(
            keys(&v["hugetlb"][0]),
            "node,pages_1g,pages_2m,plugged_bytes"
        );
        assert_eq!(
            keys(&v["handover"]),
            "enabled,incoming_allocations,preserved_allocations,sticky_regions"
        );
        assert!(v["areas"][0]["quarantined"].is_null() && v["regions"][0]["phys"].is_null());
    }
}
