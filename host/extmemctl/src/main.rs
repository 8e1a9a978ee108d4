// SPDX-License-Identifier: GPL-2.0

//! extmemctl: the operator's tool for extmem.
//!
//! `list` shows the areas, regions, allocation fds, HugeTLB backing and the kexec handover state
//! (a table, or JSON with `--json`); `create-region` and `destroy-region` manage regions
//! (`/dev/extmem_region/<name>`); `convert` grows or shrinks the HugeTLB pages extmem backs on
//! a node. Everything is checked before anything changes; a refusal prints one line naming the
//! cause and exits non-zero:
//!
//! - 0: done;
//! - 1: the kernel or the system refused (the line says why);
//! - 2: invalid arguments (nothing was asked of the kernel);
//! - 3: no such region.
//!
//! Documentation/admin-guide/mm/extmem.rst describes the tool and the JSON schema.

mod ioctl;
mod state;
mod units;

use clap::{Parser, Subcommand};
use ioctl::{Dev, RegionArgs, HUGETLB_QUERY, NAME_LEN, NODE_ANY, REGION_STICKY};
use std::process::ExitCode;
use units::{human, parse_size};

#[derive(Parser, Debug)]
#[command(
    name = "extmemctl",
    version,
    about = "List and manage extmem: areas, regions, HugeTLB conversion",
    after_help = "Exit status: 0 done, 1 the kernel or the system refused, 2 invalid arguments, \
                  3 no such region.\nSizes take a binary unit: 4K, 512M, 2G, 1T."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Show areas, regions, allocation fds, HugeTLB backing and the kexec handover state.
    List {
        /// Print JSON (schema version 1) instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Create a region: /dev/extmem_region/NAME, zeroed, kept until destroy-region.
    CreateRegion {
        /// 1 to 31 characters of A-Z a-z 0-9 . _ - (not starting with '.').
        name: String,
        /// Size with a unit (512M, 2G); a multiple of the alignment.
        #[arg(long)]
        size: String,
        /// NUMA node to take the memory from (default: any node with room).
        #[arg(long)]
        node: Option<i32>,
        /// Physical alignment: 4K to 1G, a power of two (default 2M).
        #[arg(long)]
        align: Option<String>,
        /// Owner of the device node: USER[:GROUP], names or numbers (default root:root).
        #[arg(long)]
        owner: Option<String>,
        /// Permission bits of the device node, octal (default 0600).
        #[arg(long, default_value = "0600")]
        mode: String,
        /// Keep the region, with its contents, across kexec.
        #[arg(long)]
        sticky: bool,
    },
    /// Destroy a region and free its memory (refused while it is open or mapped).
    DestroyRegion {
        /// The region's name.
        name: String,
    },
    /// Set how many HugeTLB pages extmem backs on a node: COUNT, +N (grow) or -N (shrink).
    Convert {
        /// NUMA node.
        #[arg(long)]
        node: i32,
        /// HugeTLB page size: 2M or 1G.
        #[arg(long)]
        page_size: String,
        /// The number of pages to end with, or +N / -N relative to now.
        #[arg(allow_hyphen_values = true)]
        count: String,
    },
}

/// Why a command failed, and so its exit status.
#[derive(Debug)]
enum Fail {
    /// The kernel or the system refused.
    Refused(String),
    /// Invalid arguments; nothing was attempted.
    Usage(String),
    /// No such region.
    NotFound(String),
}

impl Fail {
    fn code(&self) -> u8 {
        match self {
            Fail::Refused(_) => 1,
            Fail::Usage(_) => 2,
            Fail::NotFound(_) => 3,
        }
    }

    fn message(&self) -> &str {
        match self {
            Fail::Refused(m) | Fail::Usage(m) | Fail::NotFound(m) => m,
        }
    }
}

fn usage(m: impl Into<String>) -> Fail {
    Fail::Usage(m.into())
}

fn refused(m: impl Into<String>) -> Fail {
    Fail::Refused(m.into())
}

/// Checks a region name as the kernel will, so that a bad one is refused before anything is
/// asked, and returns it NUL-padded.
fn region_name(name: &str) -> Result<[u8; NAME_LEN], Fail> {
    let rule = "names are 1 to 31 characters of A-Z a-z 0-9 . _ - and do not start with '.'";
    if name.contains('/') {
        return Err(usage(format!("region name '{name}' contains '/'; {rule}")));
    }
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty() || name.len() >= NAME_LEN || name.starts_with('.') || !name.chars().all(ok) {
        return Err(usage(format!("invalid region name '{name}'; {rule}")));
    }
    let mut out = [0u8; NAME_LEN];
    out[..name.len()].copy_from_slice(name.as_bytes());
    Ok(out)
}

/// Looks `name` up in an `/etc/passwd`-style file (name:x:id:...), or takes a number.
fn lookup_id(name: &str, file: &str, what: &str) -> Result<u32, Fail> {
    if let Ok(n) = name.parse() {
        return Ok(n);
    }
    let text = std::fs::read_to_string(file).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let n = f.next()?;
            let id = f.nth(1)?.parse().ok()?;
            (n == name).then_some(id)
        })
        .next()
        .ok_or_else(|| {
            usage(format!(
                "unknown {what} '{name}' (not a number, not in {file})"
            ))
        })
}

fn open_dev(what: &str) -> Result<Dev, Fail> {
    Dev::open().map_err(|e| {
        let hint = match e.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => " (it needs CAP_SYS_ADMIN)",
            Some(libc::ENOENT) => " (no extmem in this kernel, or no areas)",
            _ => "",
        };
        refused(format!("{what}: cannot open {}: {e}{hint}", ioctl::DEV))
    })
}

#[allow(clippy::too_many_arguments)]
fn create_region(
    name: &str,
    size: &str,
    node: Option<i32>,
    align: Option<&str>,
    owner: Option<&str>,
    mode: &str,
    sticky: bool,
) -> Result<(), Fail> {
    let raw = region_name(name)?;
    let length = parse_size(size).map_err(usage)?;
    let alignment = match align {
        Some(a) => parse_size(a).map_err(usage)?,
        None => 2 << 20,
    };
    if !alignment.is_power_of_two() || !(4096..=1 << 30).contains(&alignment) {
        return Err(usage(format!(
            "alignment {} is not a power of two from 4 KiB to 1 GiB",
            human(alignment)
        )));
    }
    if length == 0 || !length.is_multiple_of(alignment) {
        return Err(usage(format!(
            "size {} is not a non-zero multiple of the alignment {}",
            human(length),
            human(alignment)
        )));
    }
    let mode = u32::from_str_radix(mode.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| m & !0o777 == 0)
        .ok_or_else(|| {
            usage(format!(
                "mode '{mode}' is not octal permission bits (0600, 0660)"
            ))
        })?;
    let (uid, gid) = match owner {
        None => (0, 0),
        Some(o) => {
            let (u, g) = o.split_once(':').unwrap_or((o, o));
            let uid = lookup_id(u, "/etc/passwd", "user")?;
            let gid = if g == u && !o.contains(':') {
                // USER alone: the user's own group number when it is numeric, else its name.
                lookup_id(g, "/etc/group", "group").unwrap_or(uid)
            } else {
                lookup_id(g, "/etc/group", "group")?
            };
            (uid, gid)
        }
    };
    // Check what sysfs can tell before asking: the name, the node, the room.
    let areas = state::areas().map_err(refused)?;
    if areas.is_empty() {
        return Err(refused(
            "this kernel has no extmem areas (boot with extmem=)",
        ));
    }
    if state::regions()
        .map_err(refused)?
        .iter()
        .any(|r| r.name == name)
    {
        return Err(refused(format!("region '{name}' already exists")));
    }
    let nodes = || {
        let mut n: Vec<String> = areas.iter().map(|a| a.node.to_string()).collect();
        n.dedup();
        n.join(", ")
    };
    let on_node: Vec<&state::Area> = areas
        .iter()
        .filter(|a| node.is_none_or(|n| a.node == n))
        .collect();
    if let (Some(n), true) = (node, on_node.is_empty()) {
        return Err(usage(format!(
            "node {n} has no extmem area (areas are on node {})",
            nodes()
        )));
    }
    let largest = on_node.iter().map(|a| a.largest_free).max().unwrap_or(0);
    let where_ = node.map_or("any node".to_string(), |n| format!("node {n}"));
    if length > largest {
        return Err(refused(format!(
            "size {} is too large: the largest free range on {where_} is {}",
            human(length),
            human(largest)
        )));
    }
    let dev = open_dev("create-region")?;
    let args = RegionArgs {
        flags: if sticky { REGION_STICKY } else { 0 },
        length,
        alignment,
        node: node.unwrap_or(NODE_ANY),
        uid,
        gid,
        mode,
        name: raw,
        ..RegionArgs::default()
    };
    dev.create_region(args).map_err(|e| {
        refused(match e.raw_os_error() {
            Some(libc::EEXIST) => format!("region '{name}' already exists"),
            Some(libc::ENOMEM) => format!(
                "no free {} range aligned to {} on {where_}",
                human(length),
                human(alignment)
            ),
            Some(libc::ENODEV) => format!("{where_} has no extmem area"),
            Some(libc::ENOSPC) => "too many regions (256 at most)".to_string(),
            Some(libc::EPERM) => "creating regions needs CAP_SYS_ADMIN".to_string(),
            _ => format!("the kernel refused to create '{name}': {e} (see dmesg)"),
        })
    })?;
    println!(
        "created {}/{name}: {} on {where_}, align {}, mode {mode:04o}, owner {uid}:{gid}{}",
        state::DEV_DIR,
        human(length),
        human(alignment),
        if sticky { ", sticky" } else { "" }
    );
    Ok(())
}

fn destroy_region(name: &str) -> Result<(), Fail> {
    let raw = region_name(name)?;
    if !state::regions()
        .map_err(refused)?
        .iter()
        .any(|r| r.name == name)
    {
        return Err(Fail::NotFound(format!("no region named '{name}'")));
    }
    let dev = open_dev("destroy-region")?;
    dev.destroy_region(raw)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT) => Fail::NotFound(format!("no region named '{name}'")),
            Some(libc::EBUSY) => refused(format!(
                "region '{name}' is open or mapped; stop the processes using it first"
            )),
            Some(libc::EPERM) => refused("destroying regions needs CAP_SYS_ADMIN"),
            _ => refused(format!("the kernel refused to destroy '{name}': {e}")),
        })?;
    println!("destroyed region '{name}'");
    Ok(())
}

fn convert(node: i32, page_size: &str, count: &str) -> Result<(), Fail> {
    let ps = parse_size(page_size).map_err(usage)?;
    if ps != 2 << 20 && ps != 1 << 30 {
        return Err(usage(format!(
            "page size {} is not a HugeTLB size extmem converts to (2M or 1G)",
            human(ps)
        )));
    }
    let bad = || usage(format!("count '{count}' is not N, +N or -N"));
    let (rel, n) = match count.as_bytes().first() {
        Some(b'+') => (1i8, count[1..].parse::<u64>().map_err(|_| bad())?),
        Some(b'-') => (-1, count[1..].parse::<u64>().map_err(|_| bad())?),
        _ => (0, count.parse::<u64>().map_err(|_| bad())?),
    };
    let areas = state::areas().map_err(refused)?;
    if !areas.iter().any(|a| a.node == node) {
        return Err(usage(format!("node {node} has no extmem area")));
    }
    let dev = open_dev("convert")?;
    let (now, r) = dev.hugetlb(node, ps, HUGETLB_QUERY);
    r.map_err(|e| refused(format!("cannot read the HugeTLB count of node {node}: {e}")))?;
    let target = match rel {
        1 => now.checked_add(n),
        -1 => now.checked_sub(n),
        _ => Some(n),
    }
    .ok_or_else(|| {
        usage(format!(
            "node {node} has {now} pages; {count} is out of range"
        ))
    })?;
    let (after, r) = dev.hugetlb(node, ps, target);
    let what = format!("node {node}: {} HugeTLB pages from extmem", human(ps));
    match r {
        Ok(()) => {
            println!("{what}: {now} -> {after}");
            Ok(())
        }
        Err(e) => Err(refused(match e.raw_os_error() {
            Some(libc::ENOSPC) => format!(
                "{what}: not enough free extmem for {target} pages; still {after}, nothing converted"
            ),
            Some(libc::EBUSY) => {
                format!("{what}: {after} (not {target}): the others are in use or reserved")
            }
            Some(libc::EOPNOTSUPP) => format!("{what}: this CPU or kernel has no such page size"),
            _ => format!("{what}: {e}; now {after}"),
        })),
    }
}

fn print_tables(s: &state::State) {
    println!("AREAS");
    println!(
        "  {:<6} {:>4}  {:<14} {:>10} {:>10} {:>10} {:>7}  quarantined",
        "area", "node", "base", "size", "free", "largest", "allocs"
    );
    for a in &s.areas {
        println!(
            "  {:<6} {:>4}  {:<14} {:>10} {:>10} {:>10} {:>7}  {}",
            format!("area{}", a.index),
            a.node,
            a.base
                .map_or_else(|| "-".to_string(), |b| format!("{b:#x}")),
            human(a.size),
            human(a.free),
            human(a.largest_free),
            a.allocations,
            a.quarantined.as_deref().unwrap_or("no")
        );
    }
    if s.areas.is_empty() {
        println!("  (none: boot with extmem=<node>:<size>)");
    }
    println!("REGIONS");
    if s.regions.is_empty() {
        println!("  (none)");
    } else {
        println!(
            "  {:<20} {:>4} {:>10} {:>8}  {:<5} {:<11} {:<6}  device",
            "name", "node", "size", "align", "mode", "owner", "sticky"
        );
    }
    for r in &s.regions {
        println!(
            "  {:<20} {:>4} {:>10} {:>8}  {:<5} {:<11} {:<6}  {}",
            r.name,
            r.node,
            human(r.size),
            human(r.align),
            r.mode,
            format!("{}:{}", r.uid, r.gid),
            if r.sticky { "yes" } else { "no" },
            r.device
        );
    }
    println!("ALLOCATION FDS");
    if s.allocation_fds.is_empty() {
        println!("  (none)");
    }
    for h in &s.allocation_fds {
        println!("  pid {:<7} {:<16} {} fd(s)", h.pid, h.comm, h.fds);
    }
    println!("HUGETLB FROM EXTMEM");
    if s.hugetlb.is_empty() {
        println!("  (none)");
    }
    for h in &s.hugetlb {
        println!(
            "  node {:<3} 2 MiB pages: {:<6} 1 GiB pages: {:<4} plugged: {}",
            h.node,
            h.pages_2m,
            h.pages_1g,
            human(h.plugged_bytes)
        );
    }
    let h = &s.handover;
    println!("KEXEC HANDOVER");
    println!(
        "  {}; preserved allocations: {}, sticky regions: {}, from the previous kernel waiting: {}",
        if h.enabled {
            "enabled"
        } else {
            "off (kho=on and areas needed)"
        },
        h.preserved_allocations,
        h.sticky_regions,
        h.incoming_allocations
    );
}

fn list(json: bool) -> Result<(), Fail> {
    let s = state::read_all().map_err(refused)?;
    if json {
        let text = serde_json::to_string_pretty(&s)
            .map_err(|e| refused(format!("cannot write JSON: {e}")))?;
        println!("{text}");
    } else {
        print_tables(&s);
    }
    Ok(())
}

fn run(cli: Cli) -> Result<(), Fail> {
    match cli.cmd {
        Cmd::List { json } => list(json),
        Cmd::CreateRegion {
            name,
            size,
            node,
            align,
            owner,
            mode,
            sticky,
        } => create_region(
            &name,
            &size,
            node,
            align.as_deref(),
            owner.as_deref(),
            &mode,
            sticky,
        ),
        Cmd::DestroyRegion { name } => destroy_region(&name),
        Cmd::Convert {
            node,
            page_size,
            count,
        } => convert(node, &page_size, &count),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("extmemctl: {}", f.message());
            ExitCode::from(f.code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    #[test]
    fn names() {
        assert!(region_name("vm0").is_ok());
        assert!(region_name("a.b_c-9").is_ok());
        for bad in ["", ".x", "a/b", "sp ace", &"x".repeat(32)] {
            let e = region_name(bad).unwrap_err();
            assert_eq!(e.code(), 2, "{bad}");
        }
        assert!(region_name("a/b").unwrap_err().message().contains("'/'"));
    }

    #[test]
    fn cli_parses() {
        let c = Cli::try_parse_from([
            "extmemctl",
            "create-region",
            "vm0",
            "--size",
            "1G",
            "--node",
            "1",
            "--sticky",
        ])
        .unwrap();
        assert!(matches!(c.cmd, Cmd::CreateRegion { sticky: true, .. }));
        let c = Cli::try_parse_from([
            "extmemctl",
            "convert",
            "--node",
            "0",
            "--page-size",
            "2M",
            "-4",
        ])
        .unwrap();
        assert!(matches!(c.cmd, Cmd::Convert { ref count, .. } if count == "-4"));
        assert!(Cli::try_parse_from(["extmemctl", "create-region", "x"]).is_err());
    }

    #[test]
    fn io_errors_keep_their_errno() {
        let e = io::Error::from_raw_os_error(libc::EEXIST);
        assert_eq!(e.raw_os_error(), Some(libc::EEXIST));
    }
}
