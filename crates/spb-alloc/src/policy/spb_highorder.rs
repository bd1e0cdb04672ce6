//! spb-next `highorder_evacuate`: make a free pageblock for a movable high-order request by
//! evacuating the cheapest movable-only pageblock, instead of failing it or scanning the zone.
//!
//! # Why
//! Under spb, movable allocations fill the fullest clean SPB first, smallest free block first,
//! so when memory is full the free pages end up spread thinly over many pageblocks: free
//! memory above the watermarks, not one free pageblock. A THP or a large page-cache folio then
//! depends on compaction, whose free scanner must find a free block of the order of every page
//! it moves (a page-cache folio of order 8 needs an order-8 target) and fails after scanning a
//! large part of the zone; a GFP_TRANSHUGE_LIGHT fault (no direct reclaim) does not compact at
//! all and fails at once.
//!
//! The allocator knows, per pageblock, how many movable pages it holds and that it holds
//! nothing else. The pageblock with the fewest movable pages is the cheapest to free: moving its
//! pages (at most one pageblock of migrations, the pages the request itself will take) makes a
//! free pageblock, which serves the request. Movable pages cannot taint an SPB, and the pages
//! moved go where the walk puts movable pages (the fullest clean SPB first), so no SPB becomes
//! tainted and the SPB they leave gets emptier.
//!
//! - A request that may reclaim directly evacuates at slow-path entry, once, and retries the
//!   free lists before the slow path's compaction and reclaim.
//! - A request that may not (GFP_TRANSHUGE_LIGHT, atomic callers) queues the same evacuation
//!   as background work: it fails now as its caller expects; the work evacuates pageblocks
//!   until the zone holds a small supply of free pageblocks (`supply_target`), so the
//!   following requests find one.
//!
//! Two switches, both on in spb-next: `highorder_supply` is the background half alone (callers
//! that may reclaim keep spb's slow path); `highorder_evacuate` is both halves (off until the
//! session of 2026-12-05, when it measured better under the current model; docs/spb-next.md,
//! "`highorder_evacuate` re-measured").

use crate::env::Env;
use crate::gfp::Gfp;
use crate::migratetype::MigrateType;
use crate::superpageblock::Category;
use crate::vmstat::Vm;
use crate::zone::{Zone, ZoneId, WMARK_LOW};
use crate::AllocRequest;

use super::spb::{SpbSwitch, Work};
use super::{Core, DropDecision};

/// Whether `highorder_evacuate` applies to a request: movable (its pages, and the pages moved
/// for it, cannot taint an SPB) and of a whole pageblock (a THP): one evacuated pageblock then
/// serves exactly the request it was made for. Smaller high-order requests (large page-cache
/// folios) are left to compaction: evacuating a whole pageblock for a fragment of it moved pages
/// their caller did not need moved, and measured, it raised their failures (docs/spb-next.md).
pub fn applies(z_geo: crate::geometry::Geometry, gfp: Gfp, order: u8) -> bool {
    gfp.migratetype() == MigrateType::Movable && order == z_geo.pageblock_order
}

/// The zone's free pages can absorb the request once a pageblock is free: free pages at least
/// the low watermark (where the fast path itself allocates) plus one pageblock. Below that,
/// memory is short, not only scattered, and reclaim is the answer (the slow path runs as in
/// spb).
fn room(z: &Zone) -> bool {
    z.free_pages >= z.wmark_pages(WMARK_LOW) + z.geo.pageblock_pages()
}

/// The cheapest movable-only pageblock of zone `z`: the fewest movable pages, nothing
/// non-movable, no per-CPU or reserved pages, no movable block of pageblock order or more (those
/// are never moved), every movable block of an order below `fit`, outside `excluded`.
/// SPBs are visited by free pages, most first, and the search stops when no later SPB can hold
/// a block with more free pages than the best found.
pub fn cheapest_block(z: &Zone, excluded: u32, fit: usize) -> Option<crate::geometry::Pfn> {
    let pbp = z.geo.pageblock_pages();
    let mut order: alloc::vec::Vec<u32> = (0..z.spbs.len() as u32)
        .filter(|&i| {
            let s = &z.spbs[i as usize];
            i != excluded
                && matches!(s.category, Category::Clean | Category::Tainted)
                && s.movable_pages() > 0
                && s.free_pages > 0
        })
        .collect();
    order.sort_by_key(|&i| core::cmp::Reverse(z.spbs[i as usize].free_pages));
    let mut best: Option<(u64, crate::geometry::Pfn)> = None;
    for i in order {
        let s = &z.spbs[i as usize];
        if let Some((bf, _)) = best {
            if s.free_pages <= bf {
                break;
            }
        }
        let end = (s.start_pfn + z.geo.spb_pages()).min(z.span.end);
        let mut b = s.start_pfn.max(z.span.start).div_ceil(pbp) * pbp;
        while b + pbp <= end {
            let pb = z.pb(b);
            let ok = pb.movable_pages() > 0
                && pb.non_movable_pages() == 0
                && pb.pcp == 0
                && pb.reserved + pb.absent == 0
                && !pb.is_isolated()
                && best.is_none_or(|(bf, _)| pb.free as u64 > bf);
            if ok && blocks_fit(z, b, fit, false) {
                best = Some((pb.free as u64, b));
            }
            b += pbp;
        }
    }
    best.map(|x| x.1)
}

/// The bound of [`blocks_fit`] for zone `z`: one above the largest order with a free movable
/// block (a folio with no free block of its order to go to would be served by a fragmenting
/// steal); 0 when there is none.
fn free_movable_fit(z: &Zone) -> usize {
    (0..z.geo.nr_orders())
        .rev()
        .find(|&o| z.nr_free[o][MigrateType::Movable.idx()] > 0)
        .map_or(0, |o| o + 1)
}

/// The `fit` bound of the policy's evacuations in zone `z`: [`free_movable_fit`], or no bound
/// with spb-next `evacuate_any_order` (and `evacuate_split_first`, whose evacuations split a
/// folio that finds no whole target instead of stopping at it, so a pageblock holding one is no
/// longer a dead end).
pub(crate) fn evacuation_fit<C: Core>(c: &C, z: &Zone) -> usize {
    if c.policy().spb().is_some_and(|s| {
        s.sw.on(SpbSwitch::EvacuateAnyOrder) && s.sw.on(SpbSwitch::EvacuateSplitFirst)
    }) {
        usize::MAX
    } else {
        free_movable_fit(z)
    }
}

/// Every movable allocated block in the pageblock at `b` (the blocks an evacuation moves) is of
/// an order below `fit` (so the free lists hold a target for it without a steal) and below the
/// pageblock order, or, with `thp` (spb-next `evacuate_thp`), at most the pageblock order: an
/// evacuation moves a block that large only then.
pub(crate) fn blocks_fit(z: &Zone, b: crate::geometry::Pfn, fit: usize, thp: bool) -> bool {
    let too_large = z.geo.pageblock_order + thp as u8;
    let span = z.pb_span(b);
    let mut p = span.start;
    while p < span.end {
        let m = z.page(p);
        match m.state {
            crate::page::PageState::Alloc => {
                let moves = m.mt == MigrateType::Movable as u8;
                if moves && (m.order as usize >= fit || m.order >= too_large) {
                    return false;
                }
                p += 1u64 << m.order;
            }
            crate::page::PageState::Free
            | crate::page::PageState::Pcp
            | crate::page::PageState::Isolated => p += 1u64 << m.order,
            _ => p += 1,
        }
    }
    true
}

/// At slow-path entry for a movable request (see the module doc). `step` is the slow path's
/// entry step (0 on entry): the evacuation runs once. Returns Some(Retry) when a pageblock was
/// evacuated, so the slow path retries its free lists.
pub(crate) fn movable_entry<C: Core>(
    c: &mut C,
    req: AllocRequest,
    step: &mut u8,
    env: &mut dyn Env,
) -> Option<DropDecision> {
    let (direct, supply) = c.policy().spb().map_or((false, false), |s| {
        let direct = s.sw.on(SpbSwitch::HighorderEvacuate);
        (direct, direct || s.sw.on(SpbSwitch::HighorderSupply))
    });
    let may_reclaim = req.gfp.contains(Gfp::DIRECT_RECLAIM);
    let on = if may_reclaim { direct } else { supply };
    if !on || *step != 0 || !applies(c.geo(), req.gfp, req.order) {
        return None;
    }
    *step = 2;
    let highest = req.gfp.highest_zone();
    let zi = (0..c.zones().len())
        .rev()
        .find(|&zi| c.zones()[zi].kind <= highest && room(&c.zones()[zi]))?;
    if !may_reclaim {
        if let Some(s) = c.policy_mut().spb_mut() {
            s.queue(Work::EvacuateFree { zone: zi as u8 });
        }
        return None;
    }
    (evacuate_one(c, zi, env) > 0).then_some(DropDecision::Retry)
}

/// Free pages of the zone in whole free pageblocks, in pageblocks.
pub(crate) fn free_pageblocks(z: &Zone) -> u64 {
    let pbo = z.geo.pageblock_order as usize;
    (pbo..z.geo.nr_orders())
        .map(|o| z.nr_free[o].iter().sum::<u64>() << (o - pbo))
        .sum()
}

/// How many free pageblocks the background evacuation keeps for callers that cannot reclaim:
/// the gap between the zone's low and high watermarks in pageblocks (at least one), the band
/// kswapd refills in free pages, here kept in whole pageblocks (defrag_mode's kswapd balances
/// the same watermark in free pageblocks).
pub(crate) fn supply_target(z: &Zone) -> u64 {
    let pbp = z.geo.pageblock_pages();
    (z.wmark_pages(crate::zone::WMARK_HIGH)
        .saturating_sub(z.wmark_pages(WMARK_LOW))
        / pbp)
        .max(1)
}

/// Background work of `highorder_evacuate` for zone `zi`: evacuate cheapest pageblocks until the
/// zone holds [`supply_target`] free pageblocks, at most `DEFRAG_BLOCKS_PER_RUN` per call (the
/// bound of one defrag run); requeued while it makes progress and the target is not reached.
pub(crate) fn background_supply<C: Core>(c: &mut C, zi: ZoneId, env: &mut dyn Env) {
    let mut progressed = false;
    for _ in 0..super::spb_work::DEFRAG_BLOCKS_PER_RUN {
        let z = &c.zones()[zi];
        if free_pageblocks(z) >= supply_target(z) {
            return;
        }
        if evacuate_cheapest(c, zi, env) == 0 {
            return;
        }
        progressed = true;
    }
    if progressed {
        if let Some(s) = c.policy_mut().spb_mut() {
            s.queue(Work::EvacuateFree { zone: zi as u8 });
        }
    }
}

/// Evacuate the cheapest movable-only pageblock of zone `zi` for a request that found no free
/// block (when the zone still has room for it and still has no free pageblock). Returns pages
/// moved.
pub(crate) fn evacuate_one<C: Core>(c: &mut C, zi: ZoneId, env: &mut dyn Env) -> u64 {
    // a free pageblock appeared meanwhile (frees, another evacuation): nothing to do
    if free_pageblocks(&c.zones()[zi]) > 0 {
        return 0;
    }
    evacuate_cheapest(c, zi, env)
}

/// Evacuate the cheapest movable-only pageblock of zone `zi` if the zone has room. Returns
/// pages moved.
fn evacuate_cheapest<C: Core>(c: &mut C, zi: ZoneId, env: &mut dyn Env) -> u64 {
    let z = &c.zones()[zi];
    if !room(z) {
        return 0;
    }
    let excluded = c
        .policy()
        .spb()
        .map_or(crate::page::NIL, |s| s.excluded_in(zi as u8));
    let Some(b) = cheapest_block(z, excluded, evacuation_fit(c, z)) else {
        return 0;
    };
    // spb-next `supply_keep_blocks`: this evacuation is to make a free pageblock, so its
    // targets never split one
    if let Some(s) = c.policy_mut().spb_mut() {
        s.making_pageblock = true;
    }
    let moved = super::spb_work::evacuate_block(c, zi, b, env);
    if let Some(s) = c.policy_mut().spb_mut() {
        s.making_pageblock = false;
    }
    c.vm().inc(Vm::SpbEvacuateRuns);
    c.vm().add(Vm::SpbEvacuatePagesMoved, moved);
    moved
}
