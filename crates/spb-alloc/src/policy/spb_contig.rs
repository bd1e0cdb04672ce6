//! spb-next's 1 GiB allocation plan (switches `contig_split` and `contig_fit`, docs/spb-next.md
//! "The 1 GiB probe"): the policy's choices; the mechanism is in `contig.rs`.
//!
//! Why: the probe's cost is its failed attempts. Measured on the built-in scenarios, almost
//! every failed attempt ran out of migration targets for a THP (an order-9 target is a whole
//! free pageblock, and the zone sat at its min watermark with the free memory in scattered
//! pages), after migrating part of the SPB; the next candidate then took those pages again.
//! - `contig_split`: the kernel's `migrate_pages` splits a large folio whose target allocation
//!   failed (-ENOMEM) and migrates its base pages; the model's contiguous path did not.
//! - `contig_fit`: before isolating a candidate, test the necessary condition for emptying it
//!   (its movable pages fit in the free memory above min outside it, per-CPU pages included,
//!   plus what reclaim without swap could free); once an attempt ran out of targets, the
//!   zone's later candidates (ordered by movable pages, fewest first) need at least as many
//!   targets, so the zone is done for this request.
//! - `contig_pinned`: a page that will not move ends an attempt after everything before it
//!   was migrated for nothing. The kernel can tell a folio that may be DMA-pinned
//!   (`folio_maybe_dma_pinned`, a look at its pin count) without migrating it; the embedder
//!   answers the same question (`Env::maybe_pinned`), and a candidate holding such a page is
//!   skipped before isolation. A false "no" only costs the attempt it would have cost anyway.
//! - `contig_clean_first`: clean page cache in a candidate is dropped, not migrated, so it needs
//!   no target; the candidates are ordered by the pages that do (movable less clean, as the
//!   embedder counts it: `Env::clean_cache_by_range`), which cuts the reclaim for targets when
//!   free memory is short (the bill's stall causes, docs/metrics.md).

use crate::geometry::Pfn;
use crate::policy::spb_switches::{SpbSwitch, SpbSwitches};
use crate::zone::Zone;

/// What `alloc_contig` does with a zone's candidates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ContigPlan {
    /// Split a movable large block with no whole target and migrate its base pages.
    pub split: bool,
    /// Skip candidates that cannot fit; stop the zone after running out of targets.
    pub fit: bool,
    /// With `fit`: count each zone's lowmem reserve and free highatomic pageblocks as kept
    /// back from the migration targets (spb-next `contig_fit_reserves`).
    pub fit_reserves: bool,
    /// Skip candidates holding a block the embedder reports maybe pinned.
    pub pinned: bool,
    /// Order the candidates by the pages that need a target (the embedder's clean page cache
    /// counted out).
    pub clean_first: bool,
}

/// The plan of the spb policy with switches `sw` for a request of `pages` in zone `z`: only
/// 1 GiB (SPB-sized) requests, the ones whose candidates are SPBs.
pub fn plan(sw: SpbSwitches, z: &Zone, pages: u64) -> ContigPlan {
    let spb = pages == z.geo.spb_pages();
    ContigPlan {
        split: spb && sw.on(SpbSwitch::ContigSplit),
        fit: spb && sw.on(SpbSwitch::ContigFit),
        fit_reserves: spb && sw.on(SpbSwitch::ContigFitReserves),
        pinned: spb && sw.on(SpbSwitch::ContigPinned),
        clean_first: spb && sw.on(SpbSwitch::ContigCleanFirst),
    }
}

/// The necessary condition for emptying the candidate at `start` (`pages` long) of zone
/// `zones[zi]`: its movable pages must land somewhere. Targets come from free pages outside
/// the candidate, per-CPU pages counted as free (the attempt drains them), of each zone above
/// its min watermark (the migration target allocation's watermark), and from what reclaim could
/// free (`reclaimable`: clean page cache and reclaimable slab; clean cache inside the candidate
/// is dropped instead of migrated, which needs no target and counts the same on both sides).
/// With `reserves` (spb-next `contig_fit_reserves`) each zone also keeps back its
/// `lowmem_reserve` against the targets' highest zone and its free highatomic pageblocks, as the
/// targets' watermark test (`Zone::watermark_ok`) does. Block orders are ignored, so the test
/// only ever rejects a candidate that cannot be emptied.
///
/// Why `reserves` (session of 2026-12-07): without it a lower zone's free pages count as room
/// that no target may take. Found at 12 GiB (`spb run seed-16g --memory 12G --seed 21`): the
/// probe's last request emptied 96 % of two candidates (477 914 pages moved) and failed both
/// for want of targets, while DMA32 held 9 000 free pages above its min watermark and a lowmem
/// reserve of 9 000 against Normal requests.
pub fn fits(
    zones: &[Zone],
    zi: usize,
    start: Pfn,
    pages: u64,
    reclaimable: u64,
    reserves: bool,
) -> bool {
    let z = &zones[zi];
    let (mut cand_movable, mut cand_free) = (0u64, 0u64);
    let spb_pages = z.geo.spb_pages();
    let mut p = start;
    while p < start + pages {
        let s = &z.spbs[z.spb_idx(p)];
        cand_movable += s.movable_pages();
        cand_free += s.free_pages + s.pcp_pages;
        p += spb_pages;
    }
    // the migration targets' highest zone, whose lowmem reserve their watermark test applies
    let highest = (crate::contig::MIGRATION_TARGET_GFP.highest_zone() as usize).min(3);
    let mut room = reclaimable;
    for (i, zz) in zones.iter().enumerate() {
        let pcp: u64 = zz.spbs.iter().map(|s| s.pcp_pages).sum();
        let mut free = zz.free_pages + pcp;
        if i == zi {
            free = free.saturating_sub(cand_free);
        }
        let mut kept = zz.wmark[crate::zone::WMARK_MIN];
        if reserves {
            kept += zz.lowmem_reserve[highest] + zz.nr_free_highatomic;
        }
        room += free.saturating_sub(kept);
    }
    room >= cand_movable
}
