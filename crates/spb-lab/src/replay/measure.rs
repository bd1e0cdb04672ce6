//! The replay's measures: the lab's census, limit and 1 GiB probe ([`crate::measure`]) for the
//! columns, plus the same questions asked of a kpageflags snapshot ([`measure_snapshot`]) for the
//! kernel's own end state.
//!
//! Definitions as in ../shared/README.md. The replay does not know which movable pages are clean
//! page cache nor which slab a shrinker would free, so the 1 GiB limit counts every movable and
//! non-movable page as staying, and the probe migrates but cannot reclaim.

use std::path::Path;

use spb_alloc::layout::MemoryLayout;
use spb_alloc::{Allocator, Category, FreedBlock, ZoneKind};

use super::run::MapEnv;
use crate::kpageflags::{census, KpageReader, PageClass};
use crate::measure::{self as lab, ProbeEnv};
use crate::metrics::{Gigantic, SpbCensus};

/// The measures of one column at the end.
#[derive(Clone, Debug, Default)]
pub struct Measured {
    pub normal: SpbCensus,
    pub all_zones: SpbCensus,
    pub gigantic: Gigantic,
    /// The 1 GiB capacity bound over all zones ([`lab::capacity_bound`]; every allocated page
    /// stays, as in the limit).
    pub capacity_bound: u64,
}

impl ProbeEnv for MapEnv {
    /// The trace does not say which pages are clean page cache or shrinkable slab: nothing.
    fn probe_reclaim(&mut self, _out: &mut Vec<FreedBlock>) {}
}

/// Tainted SPBs now (all zones, Normal zone), from the SPB lists (O(zones)).
#[inline]
pub fn tainted_now(a: &Allocator) -> (u64, u64) {
    let mut all = 0u64;
    let mut normal = 0u64;
    for z in a.zones() {
        let t = z.spb_lists().category_count(Category::Tainted) as u64;
        all += t;
        if z.kind() == ZoneKind::Normal {
            normal += t;
        }
    }
    (all, normal)
}

/// Census (with the tainted peaks `(all zones, Normal)` seen during the run), the 1 GiB limit,
/// and the 1 GiB probe, which allocates and migrates: call it last.
pub fn measure(a: &mut Allocator, env: &mut MapEnv, peak: (u64, u64)) -> Measured {
    let (n, all) = lab::census(a);
    let (_, limit) = lab::limits(a, &[]);
    let capacity_bound = lab::capacity_bound(a, &[]);
    let p = lab::probe(a, env);
    Measured {
        normal: n.to_metrics(peak.1),
        all_zones: all.to_metrics(peak.0),
        gigantic: Gigantic {
            allocatable: p.allocatable,
            limit,
            probe_pages_migrated: p.pages_migrated,
        },
        capacity_bound,
    }
}

fn greedy(cands: &mut [(u64, u64)], free_total: u64, wmark: u64) -> u64 {
    cands.sort();
    let mut avail = free_total.saturating_sub(wmark) as i64;
    let mut n = 0;
    for &(mv, fr) in cands.iter() {
        let a2 = avail - fr as i64;
        if a2 >= mv as i64 {
            avail = a2 - mv as i64;
            n += 1;
        } else {
            break;
        }
    }
    n
}

/// The same measures from a kpageflags (+ kpagecount) dump, for the `real` column's end state
/// (the after/ snapshot): 1 GiB regions by class.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct SnapshotMeasure {
    /// 1 GiB regions overlapping a zone.
    pub regions: u64,
    /// Regions holding a non-movable page (slab, page table, unidentified kernel memory).
    pub tainted: u64,
    /// Regions in the Normal zone / tainted among them.
    pub normal_regions: u64,
    pub normal_tainted: u64,
    /// Regions fully inside one zone with only free and movable pages.
    pub clean: u64,
    /// Of those, all free.
    pub empty: u64,
    /// 1 GiB pages obtainable: clean regions, fewest movable pages first, counted while the free
    /// pages outside them (less the min watermarks) can absorb their movable pages.
    pub obtainable: u64,
    /// The same three counts if pages of class `KernelOther` (in practice: flag-less, unmapped
    /// pages in managed memory) are not taken as kernel memory. kpageflags cannot tell a
    /// vmalloc/ring-buffer page from a free page sitting on a per-CPU list or isolated by free
    /// page reporting (neither has PG_buddy): the true values lie between these and the counts
    /// above.
    pub tainted_identified: u64,
    pub normal_tainted_identified: u64,
    pub obtainable_if_flagless_free: u64,
}

/// Measure a kpageflags dump with the machine's layout (a zoneinfo of the same moment).
/// `min_wmark`: pages kept free (the zones' min watermarks).
pub fn measure_snapshot(
    flags: &Path,
    count: Option<&Path>,
    layout: &MemoryLayout,
    min_wmark: u64,
) -> Result<SnapshotMeasure, String> {
    let r = KpageReader::open(flags, count).map_err(|e| e.to_string())?;
    let shift = layout.geometry.spb_order as u32;
    let c = census(r, shift, Some(layout)).map_err(|e| e.to_string())?;
    let mut m = SnapshotMeasure::default();
    let mut cands = Vec::new();
    let mut cands2 = Vec::new();
    let mut free_total = 0u64;
    let mut free_total2 = 0u64;
    let per = 1u64 << shift;
    for (i, reg) in c.regions.iter().enumerate() {
        let start = (i as u64) << shift;
        let end = start + per;
        let zone = layout
            .zones
            .iter()
            .find(|z| z.span.start < end && start < z.span.end);
        let Some(z) = zone else { continue };
        m.regions += 1;
        let get = |k: PageClass| reg[k.index()];
        let nonmov = get(PageClass::Slab { reclaimable: false })
            + get(PageClass::Slab { reclaimable: true })
            + get(PageClass::PageTable)
            + get(PageClass::KernelOther)
            + get(PageClass::Offline);
        let tainted = nonmov > 0;
        let flagless = get(PageClass::KernelOther);
        // tainted by slab, page-table or offline pages (identified kernel memory)
        let tainted2 = nonmov > flagless;
        m.tainted += tainted as u64;
        m.tainted_identified += tainted2 as u64;
        if z.kind == ZoneKind::Normal {
            m.normal_regions += 1;
            m.normal_tainted += tainted as u64;
            m.normal_tainted_identified += tainted2 as u64;
        }
        free_total += get(PageClass::Free);
        free_total2 += get(PageClass::Free) + flagless;
        let inside = z.span.start <= start && end <= z.span.end;
        let blocked = PageClass::ALL
            .iter()
            .any(|k| k.blocks_gigantic() && reg[k.index()] > 0);
        if inside && !blocked {
            m.clean += 1;
            if get(PageClass::Free) == per {
                m.empty += 1;
            }
            cands.push((get(PageClass::Movable), get(PageClass::Free)));
        }
        let blocked2 = PageClass::ALL
            .iter()
            .any(|k| *k != PageClass::KernelOther && k.blocks_gigantic() && reg[k.index()] > 0);
        if inside && !blocked2 {
            cands2.push((get(PageClass::Movable), get(PageClass::Free) + flagless));
        }
    }
    m.obtainable_if_flagless_free = greedy(&mut cands2, free_total2, min_wmark);
    m.obtainable = greedy(&mut cands, free_total, min_wmark);
    Ok(m)
}
