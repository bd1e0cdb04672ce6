//! The spb policy's work that needs the embedder: evacuation (patches 06, 15, 23, 25), slab
//! shrinking under SPB pressure (28), the atomic relax sequence (18, 35) and the last step
//! before ALLOC_NOFRAGMENT is dropped (20, 23). These run at points where an [`Env`] is at hand:
//! the slow path and [`crate::Allocator::background`], through the core's narrow
//! [`Core`] operations (the policy never holds the allocator).

use alloc::vec::Vec;

use crate::env::{Env, ReclaimRequest, Reclaimer};
use crate::event::Event;
use crate::geometry::Pfn;
use crate::gfp::AllocFlags;
use crate::migratetype::MigrateType;
use crate::page::PageState;
use crate::superpageblock::Category;
use crate::vmstat::Vm;
use crate::zone::{Zone, ZoneId};
use crate::AllocRequest;

use super::spb::{tainted_reserve, SpbSwitch, Work};
use super::spb_gfp::is_best_effort_high_order;
use super::{Core, DropDecision, RelaxDecision};

/// Pageblocks one defrag run evacuates at most before yielding.
pub const DEFRAG_BLOCKS_PER_RUN: usize = 8;
/// Pageblocks the targeted evacuation of patch 23 evacuates per phase at most.
pub const TARGETED_BLOCKS: usize = 4;
/// Work items served per background call.
pub const WORK_PER_CALL: usize = 16;

fn sw<C: Core>(c: &C, w: SpbSwitch) -> bool {
    c.policy().spb().is_some_and(|s| s.sw.on(w))
}

/// Staged relaxation for callers that cannot reclaim (patch 18), with the best-effort
/// refusal of patch 35 before NOFRAGMENT is dropped.
pub(crate) fn atomic_relax<C: Core>(
    c: &mut C,
    req: AllocRequest,
    flags: &mut AllocFlags,
    step: &mut u8,
) -> RelaxDecision {
    if !flags.contains(AllocFlags::NOFRAGMENT) {
        return RelaxDecision::Fail;
    }
    // Movable requests cannot taint: the relax sequence and the best-effort refusal exist
    // for non-movable ones. Movable atomic callers drop NOFRAGMENT at once.
    if !sw(c, SpbSwitch::AtomicRelax) || req.gfp.migratetype() == MigrateType::Movable {
        *flags = flags.without(AllocFlags::NOFRAGMENT);
        return RelaxDecision::Retry;
    }
    c.vm().inc(Vm::SpbAtomicRelax);
    match *step {
        0 => {
            *step = 1;
            *flags = flags.with(AllocFlags::NOFRAG_TAINTED_OK);
            c.events().push(Event::SpbAtomicRelax {
                step: 1,
                gfp: req.gfp,
                order: req.order,
            });
            RelaxDecision::Retry
        }
        1 => {
            *step = 2;
            // spb-next (`taint_when_full`): with free memory above min in an allowed zone, the
            // tainted SPBs' lack of room is a placement shortage, not a memory one. Refusing
            // (patch 35 here, patch 26's walk refusal after NOFRAGMENT is dropped) fails a
            // request that memory could serve; instead drop both and let the walk claim a
            // pageblock of the fullest clean SPB, as `slowpath_entry` does for callers that
            // reclaim. Below min the series' refusals stand (memory itself is short).
            // `spare_opportunistic`: an opportunistic try (SLUB's high-order first try) has its
            // caller's minimum-order fallback; it does not taint, the refusals stand for it.
            let spare = sw(c, SpbSwitch::SpareOpportunistic) && req.gfp.is_opportunistic();
            if sw(c, SpbSwitch::TaintWhenFull)
                && !spare
                && above_min(c.zones(), req.gfp.highest_zone(), req.order)
            {
                *flags = flags
                    .without(AllocFlags::NOFRAGMENT)
                    .without(AllocFlags::HIGHORDER_OPTIONAL);
                c.events().push(Event::SpbAtomicRelax {
                    step: 3,
                    gfp: req.gfp,
                    order: req.order,
                });
                return RelaxDecision::Retry;
            }
            if sw(c, SpbSwitch::RefuseBestEffort)
                && is_best_effort_high_order(req.gfp, req.order)
                && tainted_pool_plausible(c.zones(), req.gfp.highest_zone())
            {
                c.vm().inc(Vm::SpbBesteffortRefused);
                c.events().push(Event::SpbRefused {
                    gfp: req.gfp,
                    order: req.order,
                    rule: "best_effort",
                });
                return RelaxDecision::Refuse;
            }
            *flags = flags.without(AllocFlags::NOFRAGMENT);
            c.events().push(Event::SpbAtomicRelax {
                step: 3,
                gfp: req.gfp,
                order: req.order,
            });
            RelaxDecision::Retry
        }
        _ => RelaxDecision::Fail,
    }
}

/// Some zone at or below `highest` has `2^order` pages free above its min watermark: free
/// memory exists, so a request that fails is short of placement, not of memory.
pub(super) fn above_min(zones: &[Zone], highest: crate::layout::ZoneKind, order: u8) -> bool {
    zones
        .iter()
        .filter(|z| z.kind <= highest)
        .any(|z| z.free_pages >= z.wmark_pages(crate::zone::WMARK_MIN) + (1u64 << order))
}

/// spb-next `reserve_needs_clean`: refresh [`super::spb::SpbPolicy::protects_none`], from the
/// highest zone down (a zone protects what it or a zone above it holds).
fn refresh_protected<C: Core>(c: &mut C) {
    if !sw(c, SpbSwitch::ReserveNeedsClean) {
        return;
    }
    let mut protects = false;
    for zi in (0..c.zones().len()).rev() {
        let z = &c.zones()[zi];
        protects |= super::spb::zone_has_protected(z);
        let kind = z.kind as usize;
        if let Some(s) = c.policy_mut().spb_mut() {
            s.protects_none[kind] = !protects;
        }
    }
}

/// Some tainted SPB has movable pages (reclaim or migration can make room) or free pages.
fn tainted_pool_plausible(zones: &[Zone], highest: crate::layout::ZoneKind) -> bool {
    zones.iter().filter(|z| z.kind <= highest).any(|z| {
        z.spbs
            .iter()
            .any(|s| s.category == Category::Tainted && (s.movable_pages() > 0 || s.free_pages > 0))
    })
}

/// Before the slow path drops NOFRAGMENT: targeted evacuation for non-movable requests
/// (patch 23), once.
pub(crate) fn before_drop_nofragment<C: Core>(
    c: &mut C,
    req: AllocRequest,
    tried: &mut bool,
    env: &mut dyn Env,
) -> DropDecision {
    let mt = req.gfp.migratetype();
    if mt != MigrateType::Movable && !*tried && sw(c, SpbSwitch::TargetedEvacuation) {
        *tried = true;
        let mut moved = 0;
        for zi in (0..c.zones().len()).rev() {
            if c.zones()[zi].kind <= req.gfp.highest_zone() {
                moved += evacuate_for_order(c, zi, req.order, mt, true, env);
            }
        }
        if moved > 0 {
            return DropDecision::Retry;
        }
    }
    DropDecision::Drop
}

/// spb-next, at slow-path entry (after the first freelist attempt failed): tell a placement
/// shortage from a memory shortage before the slow path reclaims. Called until it returns
/// None; after each Some(Retry) the slow path retries the freelists. `step` starts at 0.
///
/// - `refuse_fast`: a request the walk refused as optional (patch 26: the tainted pool has
///   free pages for its fallback) fails at once: reclaim and compaction on its behalf would
///   only make room for a request whose caller does not need it. With `taint_when_full`, when
///   the tainted pool is tight (its free pages below the sum of the tainted reserves: the
///   fallback would not find room either), the request is real non-movable demand instead and
///   is served as below.
/// - `taint_when_full`: a non-movable request that may reclaim, while some allowed zone is above
///   its min watermark (so free memory exists, only outside the tainted SPBs), first evacuates
///   the cheapest movable-holding pageblock of the tainted SPB with the most movable pages (room
///   a tainted SPB can give back, at a pageblock's migrations at most) and retries; when nothing
///   could be moved, or the retry failed, it drops ALLOC_NOFRAGMENT: the walk then takes a
///   pageblock of the fullest clean SPB. Below min watermark the slow path runs as before
///   (reclaim is then what vanilla would do too).
pub(crate) fn slowpath_entry<C: Core>(
    c: &mut C,
    req: AllocRequest,
    flags: &mut AllocFlags,
    step: &mut u8,
    env: &mut dyn Env,
) -> Option<DropDecision> {
    let mt = req.gfp.migratetype();
    if mt == MigrateType::Movable {
        return super::spb_highorder::movable_entry(c, req, step, env);
    }
    if !flags.contains(AllocFlags::NOFRAGMENT) {
        return None;
    }
    let taint = sw(c, SpbSwitch::TaintWhenFull);
    let fast = sw(c, SpbSwitch::RefuseFast);
    if !(taint || fast) || *step >= 2 {
        return None;
    }
    let highest = req.gfp.highest_zone();
    let allowed = |z: &Zone| z.kind <= highest;
    if *step == 1 {
        *step = 2;
        *flags = flags.without(AllocFlags::NOFRAGMENT);
        return Some(DropDecision::Retry);
    }
    *step = 2;
    let (free, reserve) = c
        .zones()
        .iter()
        .filter(|z| allowed(z))
        .fold((0, 0), |acc, z| {
            let pbp = z.geo.pageblock_pages();
            z.spbs
                .iter()
                .filter(|s| s.category == Category::Tainted)
                .fold(acc, |(f, r), s| {
                    (f + s.free_pages, r + tainted_reserve(s) as u64 * pbp)
                })
        });
    let tight = free < reserve;
    // callers that cannot reclaim skip reclaim anyway and have their own staged relax (patch
    // 18, which may serve them from tainted fragments): refuse_fast is for those that reclaim
    let can_reclaim = req.gfp.contains(crate::gfp::Gfp::DIRECT_RECLAIM);
    let optional = flags.contains(AllocFlags::HIGHORDER_OPTIONAL) && free > 0 && can_reclaim;
    if optional && !(taint && tight) {
        if fast {
            c.vm().inc(Vm::SpbHighorderRefused);
            return Some(DropDecision::Refuse);
        }
        return None;
    }
    if !taint || !can_reclaim {
        return None;
    }
    if !above_min(c.zones(), highest, req.order) {
        return None;
    }
    *flags = flags.without(AllocFlags::HIGHORDER_OPTIONAL);
    let mut moved = 0;
    for zi in (0..c.zones().len()).rev() {
        if allowed(&c.zones()[zi]) && moved == 0 {
            // spb-next `evacuate_headroom`: the zone's tainted SPBs had no free page; leave a
            // pageblock for the requests that cannot evacuate
            let dry = sw(c, SpbSwitch::EvacuateHeadroom)
                && c.zones()[zi].spb_lists.counts[Category::Tainted as usize]
                    [crate::superpageblock::FIRST_WITH_FREE..]
                    .iter()
                    .all(|&n| n == 0);
            moved += evacuate_cheapest(c, zi, mt, highest, env);
            if moved > 0 && dry {
                moved += evacuate_cheapest(c, zi, mt, highest, env);
            }
        }
    }
    if moved > 0 {
        *step = 1;
    } else {
        *flags = flags.without(AllocFlags::NOFRAGMENT);
    }
    Some(DropDecision::Retry)
}

/// spb-next: evacuate one pageblock of a tainted SPB of zone `zi`, for a non-movable request
/// of type `mt` whose highest zone is `highest`. The SPBs are tried by movable pages, most
/// first; in each, the pageblock labelled `mt` with the fewest movable pages (its free pages
/// then coalesce with those already there), else the movable-only one with the fewest. A block
/// qualifies only if every page in it can move without a fragmenting steal (no block of
/// pageblock order, which evacuation moves only with `evacuate_thp`, and none above the largest
/// free movable block: [`super::spb_highorder::blocks_fit`]). A zone whose free memory the
/// request may not use (below its min watermark plus the lowmem reserve it keeps from
/// `highest`) is not evacuated for it: the freed pageblock would not serve the retry. With
/// `split_before_taint`, when no block qualifies, a movable-only block holding a THP or a folio
/// too large for every free block is taken (same SPB order), its large folios moved whole or
/// split. Returns pages moved.
fn evacuate_cheapest<C: Core>(
    c: &mut C,
    zi: ZoneId,
    mt: MigrateType,
    highest: crate::layout::ZoneKind,
    env: &mut dyn Env,
) -> u64 {
    let z = &c.zones()[zi];
    let keep = z.wmark()[crate::zone::WMARK_MIN] + z.lowmem_reserve()[highest as usize];
    if z.free_pages + z.geo.pageblock_pages() <= keep {
        return 0;
    }
    let fit = super::spb_highorder::evacuation_fit(c, z);
    let thp = sw(c, SpbSwitch::EvacuateThp) && thp_credit(c, zi);
    let z = &c.zones()[zi];
    let mut spbs: Vec<u32> = (0..z.spbs.len() as u32)
        .filter(|&i| {
            let s = &z.spbs[i as usize];
            s.category == Category::Tainted && s.movable_pages() > 0
        })
        .collect();
    spbs.sort_by_key(|&i| core::cmp::Reverse(z.spbs[i as usize].movable_pages()));
    let pick = |label: Option<MigrateType>, fit: usize, thp: bool| {
        spbs.iter().find_map(|&si| {
            evacuable_blocks(z, si, label)
                .into_iter()
                .find(|&(_, b)| super::spb_highorder::blocks_fit(z, b, fit, thp))
                .map(|x| x.1)
        })
    };
    let picked = pick(Some(mt), fit, thp).or_else(|| pick(None, fit, thp));
    // spb-next `split_before_taint`: the alternative is a clean SPB tainted, so a pageblock
    // holding a THP (or a folio too large for every free block) is evacuated too, the folio
    // moved whole or split
    let last = picked.is_none() && sw(c, SpbSwitch::SplitBeforeTaint);
    let picked = picked.or_else(|| last.then(|| pick(None, usize::MAX, true))?);
    let Some(b) = picked else {
        return 0;
    };
    let moved = evacuate_block_as(c, zi, b, last, env);
    c.vm().inc(Vm::SpbEvacuateRuns);
    c.vm().add(Vm::SpbEvacuatePagesMoved, moved);
    moved
}

/// Serve queued spb work.
pub(crate) fn background<C: Core>(c: &mut C, env: &mut dyn Env) {
    refresh_protected(c);
    for _ in 0..WORK_PER_CALL {
        let w = match c.policy_mut().spb_mut() {
            Some(s) if !s.work.is_empty() => s.work.remove(0),
            _ => return,
        };
        match w {
            Work::Defrag { zone, spb } => defrag_spb(c, zone as usize, spb, env),
            Work::EvacuateBlock { zone, pfn } => {
                let moved = evacuate_block(c, zone as usize, pfn, env);
                c.vm().inc(Vm::SpbEvacuateRuns);
                c.vm().add(Vm::SpbEvacuatePagesMoved, moved);
            }
            Work::EvacuateForOrder { zone, order, mt } => {
                evacuate_for_order(c, zone as usize, order, mt, false, env);
            }
            Work::SlabShrink { zone, spb } => {
                let z = &c.zones()[zone as usize];
                let s = &z.spbs[spb as usize];
                let range = (s.start_pfn, s.start_pfn + z.geo.spb_pages());
                let req = ReclaimRequest {
                    nr_pages: z.geo.pageblock_pages(),
                    order: 0,
                    who: Reclaimer::SpbShrink,
                    may_swap: false,
                    shrink_slab: true,
                    prefer_range: Some(range),
                };
                c.reclaim(req, env);
            }
            Work::EvacuateFree { zone } => {
                super::spb_highorder::background_supply(c, zone as usize, env);
            }
        }
    }
}

/// Move every movable block below the pageblock order (with `evacuate_thp`, in a tainted SPB,
/// of the pageblock order too) out of the pageblock holding `pfn`; other SPBs receive them. A
/// block without a whole target stops the evacuation there, unless `evacuate_split` splits it.
/// With `evacuate_reclaim_clean` a clean page-cache folio is reclaimed instead of moved. Returns
/// the pages that left the pageblock (moved, or reclaimed).
pub(crate) fn evacuate_block<C: Core>(c: &mut C, zi: ZoneId, pfn: Pfn, env: &mut dyn Env) -> u64 {
    evacuate_block_as(c, zi, pfn, false, env)
}

/// [`evacuate_block`]; with `split_all` (spb-next `split_before_taint`) a block of pageblock
/// order moves too, without `evacuate_thp`'s credit, and any large folio that finds no whole
/// target is split and its base pages moved.
fn evacuate_block_as<C: Core>(
    c: &mut C,
    zi: ZoneId,
    pfn: Pfn,
    split_all: bool,
    env: &mut dyn Env,
) -> u64 {
    let geo = c.geo();
    let pbp = geo.pageblock_pages();
    let start = pfn & !(pbp - 1);
    let si = c.zones()[zi].spb_idx(start) as u32;
    let saved = c
        .policy_mut()
        .spb_mut()
        .map(|s| s.excluded.replace((zi as u8, si)));
    let before = c.pages_migrated();
    let split =
        split_all || sw(c, SpbSwitch::EvacuateSplit) || sw(c, SpbSwitch::EvacuateSplitFirst);
    let reclaim_clean = sw(c, SpbSwitch::EvacuateReclaimClean);
    let mut reclaimed = 0;
    // spb-next `evacuate_thp`: in a tainted SPB a block of pageblock order moves too, when
    // non-movable growth has paid for it (`SpbPolicy::thp_move_credit`)
    let thp = sw(c, SpbSwitch::EvacuateThp)
        && c.zones()[zi].spbs[si as usize].category == Category::Tainted;
    let span = c.zones()[zi].pb_span(start);
    let mut p = span.start;
    while p < span.end {
        let m = *c.zones()[zi].page(p);
        match m.state {
            PageState::Alloc => {
                let n = 1u64 << m.order;
                let movable = m.mt == MigrateType::Movable as u8;
                let thp_move = movable
                    && m.order == geo.pageblock_order
                    && (split_all || (thp && thp_credit(c, zi)));
                let moves = movable && (m.order < geo.pageblock_order || thp_move);
                // spb-next `evacuate_reclaim_clean`: clean page cache needs no target
                if moves && reclaim_clean && c.reclaim_clean(zi, p, env) {
                    reclaimed += n;
                    p += n;
                    continue;
                }
                let out = moves.then(|| c.migrate_out(zi, p, env));
                if thp_move && !split_all && matches!(out, Some(Some(_))) {
                    if let Some(s) = c.policy_mut().spb_mut() {
                        s.spend_thp_move(zi);
                    }
                }
                if out == Some(None) {
                    // no whole target: `evacuate_split` splits the folio and moves its base
                    // pages (the same pfn again, now an order-0 page); else stop here
                    if split && m.order > 0 && c.split_allocated(zi, p, env) {
                        c.vm().inc(Vm::SpbEvacuateSplits);
                        continue;
                    }
                    break; // no target memory left
                }
                p += n;
            }
            PageState::Free | PageState::Pcp | PageState::Isolated => p += 1u64 << m.order,
            _ => p += 1,
        }
    }
    if let (Some(s), Some(prev)) = (c.policy_mut().spb_mut(), saved) {
        s.excluded = prev;
    }
    c.pages_migrated() - before + reclaimed
}

/// spb-next `evacuate_thp`: [`super::spb::SpbPolicy::thp_move_credit`] of zone `zi`.
fn thp_credit<C: Core>(c: &mut C, zi: ZoneId) -> bool {
    let (zones, policy) = c.zones_and_policy_mut();
    policy
        .spb_mut()
        .is_some_and(|p| p.thp_move_credit(zi, &zones[zi]))
}

/// Pageblocks of SPB `si` that hold movable pages and nothing non-movable, cheapest first.
pub(crate) fn evacuable_blocks(z: &Zone, si: u32, label: Option<MigrateType>) -> Vec<(u16, Pfn)> {
    let pbp = z.geo.pageblock_pages();
    let s = &z.spbs[si as usize];
    let mut v = Vec::new();
    let mut b = s.start_pfn.max(z.span.start);
    let end = (s.start_pfn + z.geo.spb_pages()).min(z.span.end);
    b = b.div_ceil(pbp) * pbp;
    while b + pbp <= end {
        let pb = z.pb(b);
        let label_ok = match label {
            Some(l) => pb.migratetype() == l,
            None => pb.non_movable_pages() == 0,
        };
        let movable = pb.movable_pages();
        if movable > 0 && label_ok && !pb.is_isolated() && pb.reserved + pb.absent == 0 {
            v.push((movable as u16, b));
        }
        b += pbp;
    }
    v.sort();
    v
}

/// Per-SPB background defrag (patch 15): evacuate the cheapest pageblocks until the stop
/// condition holds, with the no-progress cooldown.
fn defrag_spb<C: Core>(c: &mut C, zi: ZoneId, si: u32, env: &mut dyn Env) {
    // spb-next `defrag_undone`: the last run's pages were all put back by movable allocations
    let now = c.now_ns();
    let movable_now = c.zones()[zi].spbs[si as usize].movable_pages();
    if let Some(p) = c.policy_mut().spb_mut() {
        let (end, moved) = p.zones[zi].defrag_last[si as usize];
        if p.sw.on(SpbSwitch::DefragUndone) && moved > 0 && movable_now >= end + moved {
            let zs = &mut p.zones[zi];
            zs.defrag_queued[si as usize] = false;
            zs.defrag_noop_ns[si as usize] = now.max(1);
            zs.defrag_last[si as usize] = (movable_now, 0);
            return;
        }
    }
    c.vm().inc(Vm::SpbDefragRuns);
    if let Some(p) = c.policy_mut().spb_mut() {
        p.defrag_running = Some((zi as u8, si));
    }
    let pbp = c.geo().pageblock_pages();
    let mut moved = 0;
    let blocks = evacuable_blocks(&c.zones()[zi], si, None);
    let deep = c
        .policy()
        .spb()
        .is_some_and(|p| p.zones[zi].defrag_deep[si as usize]);
    let mut tried = false;
    for &(_, b) in blocks.iter().take(DEFRAG_BLOCKS_PER_RUN) {
        let done = {
            let s = &c.zones()[zi].spbs[si as usize];
            c.policy().spb().is_none_or(|p| p.defrag_done(s, pbp, deep))
        };
        if done {
            break;
        }
        tried = true;
        moved += evacuate_block(c, zi, b, env);
    }
    // spb-next `defrag_start_gate`: a run that had nothing to do made no "no progress"
    let idle = !tried && sw(c, SpbSwitch::DefragStartGate);
    // spb-next `defrag_thp_last`: no free pageblock left and nothing moved the usual way: one
    // pageblock holding a THP (or a folio too large for every free block) goes, so the requests
    // that cannot evacuate (atomic ones) find room here instead of tainting a clean SPB. A run
    // that moved nothing changed no pageblock's movable or non-movable count, so `blocks` is
    // still the list of evacuable pageblocks.
    if moved == 0 && sw(c, SpbSwitch::DefragThpLast) && c.zones()[zi].spbs[si as usize].pb_free == 0
    {
        let z = &c.zones()[zi];
        let thp_block = blocks
            .iter()
            .find(|&&(_, b)| super::spb_highorder::blocks_fit(z, b, usize::MAX, true));
        if let Some(&(_, b)) = thp_block {
            moved += evacuate_block_as(c, zi, b, true, env);
        }
    }
    c.vm().add(Vm::SpbDefragPagesMoved, moved);
    c.events().push(Event::SpbEvacuate {
        zone: zi as u8,
        spb: si,
        pages_moved: moved,
        kind: "defrag",
    });
    let (zones, policy) = c.zones_and_policy_mut();
    let z = &zones[zi];
    if let Some(p) = policy.spb_mut() {
        p.defrag_running = None;
        p.zones[zi].defrag_queued[si as usize] = false;
        p.zones[zi].defrag_last[si as usize] = (z.spbs[si as usize].movable_pages(), moved);
        if moved == 0 || z.spbs[si as usize].movable_pages() == 0 {
            p.zones[zi].defrag_deep[si as usize] = false;
        }
        if moved > 0 {
            p.maybe_start_defrag(zi as u8, z, si, now);
        } else if !idle {
            p.zones[zi].defrag_noop_ns[si as usize] = now.max(1);
        }
    }
}

/// Targeted evacuation (patch 23): phase 1 evacuates movable pages from pageblocks already
/// labelled `mt` inside tainted SPBs (so their buddies coalesce); phase 2 evacuates whole
/// movable pageblocks inside tainted SPBs so PASS_2 can claim them. `phase1` is skipped for
/// the deferred variant (patch 25). Returns pages moved.
fn evacuate_for_order<C: Core>(
    c: &mut C,
    zi: ZoneId,
    _order: u8,
    mt: MigrateType,
    phase1: bool,
    env: &mut dyn Env,
) -> u64 {
    let tainted: Vec<u32> = (0..c.zones()[zi].spbs.len() as u32)
        .filter(|&i| c.zones()[zi].spbs[i as usize].category == Category::Tainted)
        .collect();
    let mut moved = 0;
    if phase1 {
        let mut n = 0;
        'p1: for &si in &tainted {
            for (_, b) in evacuable_blocks(&c.zones()[zi], si, Some(mt)) {
                moved += evacuate_block(c, zi, b, env);
                n += 1;
                if n >= TARGETED_BLOCKS {
                    break 'p1;
                }
            }
        }
    }
    // phase 2: whole movable pageblocks with the fewest movable pages, in the tainted SPBs
    // with the fewest free pageblocks first
    let mut cands: Vec<(u16, Pfn)> = Vec::new();
    for &si in &tainted {
        let z = &c.zones()[zi];
        let s = &z.spbs[si as usize];
        if s.pb_free > tainted_reserve(s) {
            continue;
        }
        cands.extend(
            evacuable_blocks(z, si, Some(MigrateType::Movable))
                .into_iter()
                .take(TARGETED_BLOCKS),
        );
    }
    cands.sort();
    for (_, b) in cands.into_iter().take(TARGETED_BLOCKS) {
        moved += evacuate_block(c, zi, b, env);
    }
    c.vm().inc(Vm::SpbEvacuateRuns);
    c.vm().add(Vm::SpbEvacuatePagesMoved, moved);
    c.events().push(Event::SpbEvacuate {
        zone: zi as u8,
        spb: u32::MAX,
        pages_moved: moved,
        kind: "for_order",
    });
    moved
}

impl super::spb::SpbPolicy {
    /// Policy-level invariants: hints (and the pin SPB) name real SPBs; queued flags match the
    /// queue (or the defrag run now running); THP moves are paid for; no evacuation is marked as
    /// the supply's, and no request of `evacuate_before_empty` is pending, between calls.
    pub(crate) fn check(&self, zones: &[Zone]) -> Result<(), crate::check::InvariantViolation> {
        if self.making_pageblock {
            return Err(crate::check::InvariantViolation(
                "spb: an evacuation is still marked as the high-order supply's".into(),
            ));
        }
        if self.refill_spb.is_some() {
            return Err(crate::check::InvariantViolation(
                "spb: a refill's SPB is still set outside the refill".into(),
            ));
        }
        if self.evacuate_first {
            return Err(crate::check::InvariantViolation(
                "spb: evacuate_before_empty's request for the lower zones is still set between allocations"
                    .into(),
            ));
        }
        for (zi, zs) in self.zones.iter().enumerate() {
            let n = zones[zi].spbs.len();
            if zs.defrag_queued.len() != n
                || zs.defrag_noop_ns.len() != n
                || zs.defrag_last.len() != n
            {
                return Err(crate::check::InvariantViolation(alloc::format!(
                    "spb: zone {} state covers {} SPBs, zone has {}",
                    zi,
                    zs.defrag_queued.len(),
                    n
                )));
            }
            let paid_for = zs.nonmovable_peak / zones[zi].geo.pageblock_pages();
            if zs.thp_moved > paid_for {
                return Err(crate::check::InvariantViolation(alloc::format!(
                    "spb: zone {} moved {} THPs out of tainted SPBs, paid for {}",
                    zi,
                    zs.thp_moved,
                    paid_for
                )));
            }
            for h in zs
                .hint
                .iter()
                .flatten()
                .chain(core::iter::once(&zs.pin_spb))
            {
                if *h != crate::page::NIL && *h as usize >= n {
                    return Err(crate::check::InvariantViolation(alloc::format!(
                        "spb: zone {} hint names SPB {} of {}",
                        zi,
                        h,
                        n
                    )));
                }
            }
            for (i, q) in zs.defrag_queued.iter().enumerate() {
                let queued = self.work.contains(&Work::Defrag {
                    zone: zi as u8,
                    spb: i as u32,
                }) || self.defrag_running == Some((zi as u8, i as u32));
                if *q != queued {
                    return Err(crate::check::InvariantViolation(alloc::format!(
                        "spb: zone {} SPB {} defrag flag {} but queued {}",
                        zi,
                        i,
                        q,
                        queued
                    )));
                }
            }
        }
        Ok(())
    }
}
