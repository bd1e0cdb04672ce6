//! MINIMAL STAND-IN for `spb_lab::measure` (being written in branch `lab`): the SPB census and a
//! simple 1 GiB estimate, computed from the allocator's own SPB counters. To be replaced by the
//! lab's census/probe/limit functions when that branch is merged; every caller in the replayer
//! goes through [`measure`] so the switch is one function.
//!
//! Definitions as in ../shared/README.md. The 1 GiB figure here is *not* the probe: it is a
//! greedy bound: candidate SPBs are those that are not lost (no non-movable page, no reserved
//! page, no hole or uninitialised page, fully inside one zone); taking the ones with the fewest
//! movable pages first, an SPB is counted while the free pages outside the chosen SPBs (less the
//! zones' min watermarks) can absorb the movable pages that must migrate out of it.

use std::path::Path;

use spb_alloc::layout::MemoryLayout;
use spb_alloc::zone::{Zone, WMARK_MIN};
use spb_alloc::{Allocator, Category, ZoneKind};

use crate::kpageflags::{census, KpageReader, PageClass};
use crate::metrics::{Gigantic, SpbCensus};

/// The measures of one allocator state.
#[derive(Clone, Debug, Default)]
pub struct Measured {
    pub normal: SpbCensus,
    pub all_zones: SpbCensus,
    pub gigantic: Gigantic,
}

fn census_of<'a>(zones: impl Iterator<Item = &'a Zone>) -> SpbCensus {
    let mut c = SpbCensus::default();
    let mut nonmov = 0u64;
    let mut reserved = 0u64;
    let mut pinned_or_hole = 0u64;
    let mut spb_pages = 1u64;
    for z in zones {
        spb_pages = z.geo.spb_pages();
        for s in &z.spbs {
            c.spb_total += 1;
            let tainted = s.is_tainted();
            c.spb_tainted += tainted as u64;
            c.spb_pinned += s.is_pinned() as u64;
            c.spb_lost += s.is_lost() as u64;
            if !s.is_lost() {
                c.spb_clean += 1;
                c.spb_empty += s.is_empty() as u64;
            }
            if s.is_pinned() || s.has_hole() {
                pinned_or_hole += 1;
            }
            nonmov += s.non_movable_pages();
            reserved += s.reserved_pages;
        }
    }
    c.tainted_floor = nonmov.div_ceil(spb_pages);
    c.lost_floor = pinned_or_hole.max((nonmov + reserved).div_ceil(spb_pages));
    c
}

/// Tainted SPBs now (all zones, Normal zone), from the SPB lists (O(zones)).
#[inline]
pub fn tainted_now(a: &Allocator) -> (u64, u64) {
    let mut all = 0u64;
    let mut normal = 0u64;
    for z in &a.zones {
        let t = z.spb_lists.category_count(Category::Tainted) as u64;
        all += t;
        if z.kind == ZoneKind::Normal {
            normal += t;
        }
    }
    (all, normal)
}

/// Census of the Normal zone and of all zones, and the 1 GiB estimate (see module docs).
pub fn measure(a: &Allocator) -> Measured {
    let normal = census_of(a.zones.iter().filter(|z| z.kind == ZoneKind::Normal));
    let all_zones = census_of(a.zones.iter());
    // greedy 1 GiB estimate over all zones
    let mut cands: Vec<(u64, u64)> = Vec::new(); // (movable, free)
    let mut free_total = 0u64;
    let mut wmark = 0u64;
    for z in &a.zones {
        free_total += z.free_pages;
        wmark += z.wmark_pages(WMARK_MIN);
        for s in &z.spbs {
            if !s.is_lost() && s.outside_pages == 0 {
                cands.push((s.movable_pages(), s.free_pages + s.pcp_pages));
            }
        }
    }
    let gigantic = Gigantic { allocatable: greedy(&mut cands, free_total, wmark), limit: limit(&all_zones, a), probe_pages_migrated: 0 };
    Measured { normal, all_zones, gigantic }
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

fn limit(c: &SpbCensus, a: &Allocator) -> u64 {
    let mut must = 0u64;
    let mut spb_pages = 1;
    let mut pinned_or_hole = 0u64;
    for z in &a.zones {
        spb_pages = z.geo.spb_pages();
        must += z.wmark_pages(WMARK_MIN);
        for s in &z.spbs {
            must += s.non_movable_pages() + s.movable_pages() + s.reserved_pages;
            pinned_or_hole += (s.is_pinned() || s.has_hole()) as u64;
        }
    }
    c.spb_total.saturating_sub(pinned_or_hole.max(must.div_ceil(spb_pages)))
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
    /// 1 GiB pages obtainable (the same greedy bound as [`measure`]).
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
pub fn measure_snapshot(flags: &Path, count: Option<&Path>, layout: &MemoryLayout, min_wmark: u64) -> Result<SnapshotMeasure, String> {
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
        let zone = layout.zones.iter().find(|z| z.span.start < end && start < z.span.end);
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
        let blocked = PageClass::ALL.iter().any(|k| k.blocks_gigantic() && reg[k.index()] > 0);
        if inside && !blocked {
            m.clean += 1;
            if get(PageClass::Free) == per {
                m.empty += 1;
            }
            cands.push((get(PageClass::Movable), get(PageClass::Free)));
        }
        let blocked2 = PageClass::ALL.iter().any(|k| *k != PageClass::KernelOther && k.blocks_gigantic() && reg[k.index()] > 0);
        if inside && !blocked2 {
            cands2.push((get(PageClass::Movable), get(PageClass::Free) + flagless));
        }
    }
    m.obtainable_if_flagless_free = greedy(&mut cands2, free_total2, min_wmark);
    m.obtainable = greedy(&mut cands, free_total, min_wmark);
    Ok(m)
}
