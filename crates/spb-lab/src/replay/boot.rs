//! From-boot captures (issue 12): the layout `../shared/qemu/run.sh` leaves and
//! `spb capture --from-boot` writes, detected in a directory, and the starting state they imply.
//!
//! ```text
//! DIR/[out/]trace/boot_trace.txt.zst   ftrace text from the kernel command line's trace_event=
//! DIR/[out/]trace/run.dat              the stream (trace-cmd .dat; or trace.txt.zst)
//! DIR/[out/]proc/00_boot/{zoneinfo,pagetypeinfo}   at the start of user space
//! DIR/[out/]proc/10_after_stress/{zoneinfo,pagetypeinfo}   at the stress_end marker
//! DIR/[out/]proc/kpageflags_00_boot.bin.zst, kpageflags_10_after_stress.bin.zst
//! DIR/[out/]iomem.txt                  where the kernel image is
//! DIR/analysis.json                    the capture's own per-region result (optional)
//! ```
//!
//! or the layout of `spb capture --from-boot`: `DIR/boot_trace.txt.zst`, `DIR/trace.txt.zst`,
//! `DIR/before/` (boot snapshot: zoneinfo, pagetypeinfo, kpageflags.zst), `DIR/after/` (at the
//! `PHASE stress_end` marker), `DIR/iomem.txt`.
//!
//! The starting state is only what memblock reserved: the `PG_reserved` pages of the first
//! kpageflags snapshot become the layout's reservations (holes: `PG_nopage`), so every other
//! page's placement is the policy's decision.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use spb_alloc::layout::{MemoryLayout, PfnRange, Reservation, ReserveKind};
use spb_alloc::Geometry;

use super::ReplayError;
use crate::kpageflags::{kpf, KpageReader};

/// The marker that ends the workload in these captures.
pub const STRESS_END: &str = "PHASE stress_end";

/// The files of a from-boot capture.
#[derive(Clone, Debug, Default)]
pub struct BootCapture {
    /// The directory holding `trace/` and `proc/` (DIR or DIR/out).
    pub out: PathBuf,
    /// The capture's top directory (DIR).
    pub root: PathBuf,
    pub boot_text: Option<PathBuf>,
    pub stream: Option<PathBuf>,
    pub zoneinfo: Option<PathBuf>,
    pub pagetypeinfo_before: Option<PathBuf>,
    pub kpageflags_boot: Option<PathBuf>,
    pub iomem: Option<PathBuf>,
    pub analysis: Option<PathBuf>,
    /// Snapshot at the stop marker (`10_after_stress`).
    pub end_zoneinfo: Option<PathBuf>,
    pub end_pagetypeinfo: Option<PathBuf>,
    pub end_kpageflags: Option<PathBuf>,
}

fn first(dir: &Path, names: &[&str]) -> Option<PathBuf> {
    names.iter().map(|n| dir.join(n)).find(|p| p.is_file())
}

/// Detect a from-boot capture in `dir` (or `dir/out`): it needs `trace/boot_trace.txt[.zst]`
/// or `trace/run.dat`, and `proc/00_boot/zoneinfo`.
pub fn detect(dir: &Path) -> Option<BootCapture> {
    if !dir.is_dir() {
        return None;
    }
    // `spb capture --from-boot` layout: boot_trace.txt.zst next to trace.txt.zst, before/, after/
    if let (Some(b), Some(z)) = (
        first(dir, &["boot_trace.txt.zst", "boot_trace.txt"]),
        first(&dir.join("before"), &["zoneinfo"]),
    ) {
        let a = dir.join("after");
        return Some(BootCapture {
            out: dir.to_path_buf(),
            root: dir.to_path_buf(),
            boot_text: Some(b),
            stream: first(
                dir,
                &["trace.txt.zst", "trace.txt.gz", "trace.txt", "trace.dat"],
            ),
            zoneinfo: Some(z),
            pagetypeinfo_before: first(&dir.join("before"), &["pagetypeinfo"]),
            kpageflags_boot: first(&dir.join("before"), &["kpageflags.zst", "kpageflags"]),
            iomem: first(dir, &["iomem.txt"]),
            analysis: first(dir, &["analysis.json"]),
            end_zoneinfo: first(&a, &["zoneinfo"]),
            end_pagetypeinfo: first(&a, &["pagetypeinfo"]),
            end_kpageflags: first(&a, &["kpageflags.zst", "kpageflags"]),
        });
    }
    let out = if dir.join("out").join("trace").is_dir() {
        dir.join("out")
    } else {
        dir.to_path_buf()
    };
    let t = out.join("trace");
    let boot_text = first(
        &t,
        &["boot_trace.txt.zst", "boot_trace.txt.gz", "boot_trace.txt"],
    );
    let stream = first(
        &t,
        &[
            "run.dat",
            "trace.dat",
            "run.txt.zst",
            "trace.txt.zst",
            "trace.txt",
        ],
    );
    let zoneinfo = first(&out.join("proc/00_boot"), &["zoneinfo"]);
    if (boot_text.is_none() && stream.is_none()) || zoneinfo.is_none() {
        return None;
    }
    let p = out.join("proc");
    Some(BootCapture {
        root: dir.to_path_buf(),
        boot_text,
        stream,
        zoneinfo,
        pagetypeinfo_before: first(&p.join("00_boot"), &["pagetypeinfo"]),
        kpageflags_boot: first(
            &p,
            &["kpageflags_00_boot.bin.zst", "kpageflags_00_boot.bin"],
        ),
        iomem: first(&out, &["iomem.txt"]),
        analysis: first(dir, &["analysis.json"]),
        end_zoneinfo: first(&p.join("10_after_stress"), &["zoneinfo"]),
        end_pagetypeinfo: first(&p.join("10_after_stress"), &["pagetypeinfo"]),
        end_kpageflags: first(
            &p,
            &[
                "kpageflags_10_after_stress.bin.zst",
                "kpageflags_10_after_stress.bin",
            ],
        ),
        out,
    })
}

/// The kernel image's physical range from `/proc/iomem` (`Kernel code` .. `Kernel bss`), as pfns.
pub fn kernel_image_pfns(iomem: &str) -> Option<PfnRange> {
    let mut lo = u64::MAX;
    let mut hi = 0u64;
    for line in iomem.lines() {
        let t = line.trim();
        let Some((range, name)) = t.split_once(" : ") else {
            continue;
        };
        if !name.starts_with("Kernel ") {
            continue;
        }
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let (Ok(a), Ok(b)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16)) else {
            continue;
        };
        lo = lo.min(a >> 12);
        hi = hi.max((b >> 12) + 1);
    }
    (lo < hi).then(|| PfnRange::new(lo, hi))
}

/// The layout of the boot snapshot: zones from the zoneinfo, holes and reservations replaced by
/// the kpageflags dump's `PG_nopage` and `PG_reserved` runs (the kernel image, found through
/// iomem, is `KernelImage`; the run at the top of the last zone `Memmap`; the rest `Other`).
/// Returns the layout and page counts by kind.
pub fn boot_layout(
    zoneinfo: &Path,
    kpageflags: &Path,
    iomem: Option<&Path>,
) -> Result<(MemoryLayout, BTreeMap<String, u64>), ReplayError> {
    let text = std::fs::read_to_string(zoneinfo)
        .map_err(|e| ReplayError::Io(format!("{}: {e}", zoneinfo.display())))?;
    let mut layout = MemoryLayout::from_zoneinfo(&text, Geometry::X86_64)
        .map_err(|e| ReplayError::Input(format!("{}: {e}", zoneinfo.display())))?;
    let image = iomem
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| kernel_image_pfns(&t));
    let end = layout.zones.iter().map(|z| z.span.end).max().unwrap_or(0);
    let kerr = |e: crate::kpageflags::KpageError| match e.kind {
        crate::kpageflags::KpageErrorKind::Open => ReplayError::Io(e.to_string()),
        _ => ReplayError::Input(e.to_string()),
    };
    let mut r = KpageReader::open(kpageflags, None).map_err(kerr)?;
    // runs of (kind: 1 = reserved, 2 = hole)
    let mut runs: Vec<(u8, u64, u64)> = Vec::new();
    let mut seen = 0u64;
    while let Some(e) = r.next_entry().map_err(kerr)? {
        if e.pfn >= end {
            break;
        }
        seen = e.pfn + 1;
        let k = if kpf::has(e.flags, kpf::NOPAGE) {
            2
        } else if kpf::has(e.flags, kpf::RESERVED) {
            1
        } else {
            0
        };
        if k == 0 {
            continue;
        }
        match runs.last_mut() {
            Some((rk, _, re)) if *rk == k && *re == e.pfn => *re += 1,
            _ => runs.push((k, e.pfn, e.pfn + 1)),
        }
    }
    if seen < end {
        return Err(ReplayError::Input(format!(
            "{}: {seen} entries, but the zoneinfo's zones end at pfn {end:#x}: expected one 8-byte entry per pfn up to there",
            kpageflags.display()
        )));
    }
    let mut pages: BTreeMap<String, u64> = BTreeMap::new();
    let nz = layout.zones.len();
    for (zi, z) in layout.zones.iter_mut().enumerate() {
        z.holes.clear();
        z.reserved.clear();
        z.uninit.clear();
        for &(k, a, b) in &runs {
            let a = a.max(z.span.start);
            let b = b.min(z.span.end);
            if a >= b {
                continue;
            }
            let r = PfnRange::new(a, b);
            if k == 2 {
                z.holes.push(r);
                *pages.entry("holes".into()).or_default() += b - a;
                continue;
            }
            // split a reserved run at the kernel image's bounds
            let mut cuts = vec![a, b];
            if let Some(img) = image {
                for c in [img.start, img.end] {
                    if c > a && c < b {
                        cuts.push(c);
                    }
                }
            }
            cuts.sort_unstable();
            for w in cuts.windows(2) {
                let r = PfnRange::new(w[0], w[1]);
                let kind = if image.is_some_and(|i| i.start <= r.start && r.end <= i.end) {
                    ReserveKind::KernelImage
                } else if zi + 1 == nz && r.end == z.span.end {
                    ReserveKind::Memmap
                } else {
                    ReserveKind::Other
                };
                let name = match kind {
                    ReserveKind::KernelImage => "reserved_kernel_image",
                    ReserveKind::Memmap => "reserved_memmap",
                    _ => "reserved_other",
                };
                *pages.entry(name.into()).or_default() += r.len();
                z.reserved.push(Reservation { range: r, kind });
            }
        }
    }
    layout.validate().map_err(|e| {
        ReplayError::Input(format!(
            "{} with {}: the reserved/hole runs do not form a valid layout: {e}",
            zoneinfo.display(),
            kpageflags.display()
        ))
    })?;
    Ok((layout, pages))
}

/// Pageblock labels the kernel gives reserved memory of the last zone (the one deferred struct
/// page init covers): deferred init sets a pageblock's migratetype (Movable) only when it frees
/// the pageblock's first page (`deferred_free_pages`, 6.12), so a pageblock whose first page is
/// PG_reserved keeps the zeroed pageblock flags, i.e. MIGRATE_UNMOVABLE, and `pagetypeinfo`
/// counts it as Unmovable (the 9G-10G memmap of the shared capture: 70 of the kernel's 133
/// Unmovable Normal pageblocks at /init). Lower zones are initialised by `memmap_init_range`,
/// which labels every pageblock Movable.
pub fn deferred_reserved_labels(l: &MemoryLayout) -> Vec<(u64, u8)> {
    let Some(z) = l.zones.last() else {
        return Vec::new();
    };
    let pbp = l.geometry.pageblock_pages();
    let mut out = Vec::new();
    for r in &z.reserved {
        let mut pb = r.range.start.div_ceil(pbp) * pbp;
        while pb < r.range.end {
            if pb >= z.span.start {
                out.push((pb, spb_alloc::MigrateType::Unmovable as u8));
            }
            pb += pbp;
        }
    }
    out
}

/// One 1 GiB region as the capture's own analysis (analysis.json) saw it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct KernelRegion {
    /// Region index (GiB).
    pub region: u64,
    /// `4G-5G`.
    pub range: String,
    pub zone: String,
    pub in_normal: bool,
    /// Received a non-movable mm_page_alloc between boot and stress_end.
    pub tainted: bool,
    /// Non-movable pages still allocated at stress_end (the analysis's alloc/free replay).
    pub live_nonmovable_pages_at_stress_end: u64,
}

/// The per-region rows of an analysis.json.
pub fn read_analysis(p: &Path) -> Result<Vec<KernelRegion>, ReplayError> {
    let t =
        std::fs::read_to_string(p).map_err(|e| ReplayError::Io(format!("{}: {e}", p.display())))?;
    let v: serde_json::Value = serde_json::from_str(&t)
        .map_err(|e| ReplayError::Input(format!("{}: {e}", p.display())))?;
    let regions = v.get("regions").and_then(|r| r.as_array()).ok_or_else(|| {
        ReplayError::Input(format!("{}: expected a `regions` array", p.display()))
    })?;
    Ok(regions
        .iter()
        .filter_map(|r| serde_json::from_value::<KernelRegion>(r.clone()).ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iomem_kernel_range() {
        let t = "00100000-7ffdefff : System RAM\n  64400000-653fffff : Kernel code\n  65400000-65f6cfff : Kernel rodata\n  66b2f000-66ffffff : Kernel bss\n";
        let r = kernel_image_pfns(t).unwrap();
        assert_eq!(r, PfnRange::new(0x64400, 0x67000));
        assert!(kernel_image_pfns("garbage\n").is_none());
    }
}
