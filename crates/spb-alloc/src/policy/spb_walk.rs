//! The walk of the superpageblock policy: which SPB, and which of its free lists, serves a
//! request (the series' `__rmqueue_smallest`, patches 14, 20, 24, 27, 31).
//!
//! Non-movable requests (UNMOVABLE, RECLAIMABLE):
//! - PASS_1: the request's own free lists in tainted SPBs (hint first, then fullest first), and
//!   with `lost_first` in SPBs already lost to reservations or holes;
//! - PASS_2: claim a whole free pageblock inside a tainted SPB;
//! - PASS_2B: relabel a partly used MOVABLE pageblock inside a tainted SPB without the 50 %
//!   rule (only where fragments may be consumed: zones of more than 8 SPBs with
//!   `aggressive_pack`, or after the atomic relax step ALLOC_NOFRAG_TAINTED_OK);
//! - PASS_2C / PASS_2D: borrow a block of the other non-movable type / of MOVABLE inside a
//!   tainted SPB without relabelling;
//! - PASS_3: take a whole pageblock from an empty SPB;
//! - then the refusal of patch 26 for callers with a cheap fallback, and PASS_4: claim or steal
//!   in clean SPBs (fullest first) — only once ALLOC_NOFRAGMENT has been dropped.
//!
//! Movable requests: PASS_1 in clean SPBs fullest first (patch 12), then tainted SPBs above their
//! reserve (spb's choice: use space already lost before opening an empty SPB), PASS_3 empty
//! SPBs, PASS_4 mainline claim/steal from other types inside tainted SPBs.

use crate::event::{Event, Pass};
use crate::geometry::Pfn;
use crate::gfp::{AllocFlags, Gfp};
use crate::migratetype::MigrateType;
use crate::page::NIL;
use crate::superpageblock::{Category, SpbMeta, FIRST_WITH_FREE, NR_FULLNESS};
use crate::vmstat::Vm;
use crate::zone::Zone;

use super::mainline::{self, RmqueueMode};
use super::spb::{
    defrag_stop_pageblocks, tainted_reserve, SpbPolicy, SpbSwitch, TaintedWalk, Work,
    AGGRESSIVE_THRESHOLD,
};
use super::Ctx;

impl SpbPolicy {
    /// The policy's `__rmqueue`.
    #[allow(clippy::too_many_arguments)]
    pub fn rmqueue(
        &mut self,
        z: &mut Zone,
        ctx: &mut Ctx,
        order: u8,
        mt: MigrateType,
        flags: AllocFlags,
        mode: &mut RmqueueMode,
        gfp: Gfp,
    ) -> Option<Pfn> {
        let optional = flags.contains(AllocFlags::HIGHORDER_OPTIONAL) && mt != MigrateType::Movable;
        if optional {
            *mode = RmqueueMode::Normal;
        }
        let mut visited = 0u32;
        let (r, pass) = if mt == MigrateType::Movable {
            self.walk_movable(z, ctx, order, flags, &mut visited)
        } else {
            self.walk_nonmovable(z, ctx, order, mt, flags, optional, &mut visited, gfp)
        };
        self.walks.record(visited as u64);
        ctx.vm.inc(match pass {
            Pass::Pass1 => Vm::SpbPass1,
            Pass::Pass2 => Vm::SpbPass2,
            Pass::Pass2b => Vm::SpbPass2b,
            Pass::Pass2c => Vm::SpbPass2c,
            Pass::Pass2d => Vm::SpbPass2d,
            Pass::Pass3 => Vm::SpbPass3,
            Pass::Pass4 => Vm::SpbPass4,
            Pass::Fail => Vm::SpbPassFail,
        });
        ctx.ev.push(Event::SpbWalk {
            zone: ctx.zone_id,
            pass,
            visited,
            order,
            mt,
        });
        r
    }

    /// Try `smallest_in` on SPB `i`.
    #[inline]
    pub(super) fn try_spb(z: &mut Zone, i: u32, order: u8, mt: MigrateType) -> Option<Pfn> {
        mainline::smallest_in(z, i as usize, order, mt)
    }

    fn hint_try(
        &mut self,
        z: &mut Zone,
        ctx: &mut Ctx,
        order: u8,
        mt: MigrateType,
        want: Category,
    ) -> Option<Pfn> {
        if !self.sw.on(SpbSwitch::HintCache) {
            return None;
        }
        let zs = &self.zones[ctx.zone_id as usize];
        let h = zs
            .hint
            .get(order as usize)
            .map(|a| a[mt.idx().min(2)])
            .unwrap_or(NIL);
        if h == NIL
            || h as usize >= z.spbs.len()
            || h == self.excluded_in(ctx.zone_id)
            || z.spbs[h as usize].category != want
        {
            return None;
        }
        let p = Self::try_spb(z, h, order, mt)?;
        ctx.vm.inc(Vm::SpbPass1Hint);
        Some(p)
    }

    fn set_hint(&mut self, zone: u8, order: u8, mt: MigrateType, i: u32) {
        if self.sw.on(SpbSwitch::HintCache) {
            if let Some(a) = self.zones[zone as usize].hint.get_mut(order as usize) {
                a[mt.idx().min(2)] = i;
            }
        }
    }

    /// Walk the list `cat` fullest first, calling `f` on each SPB until it returns Some.
    #[inline]
    pub(super) fn walk_list(
        z: &mut Zone,
        cat: Category,
        excluded: u32,
        visited: &mut u32,
        mut f: impl FnMut(&mut Zone, u32) -> Option<Pfn>,
    ) -> Option<(Pfn, u32)> {
        for full in FIRST_WITH_FREE..NR_FULLNESS {
            let mut i = z.spb_lists.heads[cat as usize][full];
            while i != NIL {
                let next = z.spbs[i as usize].list_next;
                if i != excluded {
                    *visited += 1;
                    if let Some(p) = f(z, i) {
                        return Some((p, i));
                    }
                }
                i = next;
            }
        }
        None
    }

    fn walk_movable(
        &mut self,
        z: &mut Zone,
        ctx: &mut Ctx,
        order: u8,
        flags: AllocFlags,
        visited: &mut u32,
    ) -> (Option<Pfn>, Pass) {
        let mt = MigrateType::Movable;
        if self.contig.pending.is_some() {
            if let Some(p) = self.contig_target(z, ctx, order, visited) {
                return (Some(p), Pass::Pass4);
            }
        }
        let excl = self.excluded_in(ctx.zone_id);
        let steer = self.sw.on(SpbSwitch::SteerMovableFullest);
        let lost_first = self.sw.on(SpbSwitch::LostFirst);
        // spb-next `pin_migrate`: a long-term pin's target lives where a pin keeps no 1 GiB
        // page from being made (tainted SPBs above their reserve, SPBs lost to reservations or
        // holes), else in the zone's pin SPB, where the pins gather; below the pageblock order
        // it never splits a free pageblock (the ones THP faults and the high-order supply need).
        if flags.contains(AllocFlags::PIN_TARGET) {
            let p = self
                .movable_in_tainted(z, order, excl, visited, true)
                .or_else(|| self.movable_in_lost(z, ctx, order, excl, visited, true))
                .or_else(|| self.movable_in_pin_spb(z, ctx, order, excl, visited));
            return (p, if p.is_some() { Pass::Pass4 } else { Pass::Fail });
        }
        // spb-next `movable_best_fit`: the zone's smallest fitting fragment first; with
        // `evacuate_keep_blocks` an evacuation's target takes such a fragment (counted as
        // PASS_4) or nothing; with `evacuate_keep_band` only while the zone has no more free
        // pageblocks than the high-order supply keeps; with `supply_keep_blocks` when the
        // evacuation is the supply's own (to make a free pageblock).
        let keep_blocks = self.excluded.is_some()
            && (self.sw.on(SpbSwitch::EvacuateKeepBlocks)
                || (self.making_pageblock && self.sw.on(SpbSwitch::SupplyKeepBlocks))
                || (self.sw.on(SpbSwitch::EvacuateKeepBand)
                    && super::spb_highorder::free_pageblocks(z)
                        <= super::spb_highorder::supply_target(z)));
        if keep_blocks || self.sw.on(SpbSwitch::MovableBestFit) {
            let reserve_on = self.reserve_on(z);
            if let Some(i) = super::spb_fit::best_fit_spb(z, order, excl, reserve_on) {
                *visited += 1;
                let pass = match z.spbs[i as usize].category {
                    Category::Clean if !keep_blocks => Pass::Pass1,
                    _ => Pass::Pass4,
                };
                if let Some(p) = Self::try_spb(z, i, order, mt) {
                    return (Some(p), pass);
                }
            }
            if keep_blocks {
                return (None, Pass::Fail);
            }
        }
        // PASS_1: clean SPBs, fullest first (hint first).
        if steer {
            if let Some(p) = self.hint_try(z, ctx, order, mt, Category::Clean) {
                *visited += 1;
                return (Some(p), Pass::Pass1);
            }
            if let Some((p, i)) = Self::walk_list(z, Category::Clean, excl, visited, |z, i| {
                if lost_first && z.spb_lost_for_good(i as usize) {
                    return None;
                }
                Self::try_spb(z, i, order, mt)
            }) {
                self.set_hint(ctx.zone_id, order, mt, i);
                return (Some(p), Pass::Pass1);
            }
        }
        // spb-next `movable_empty_first`: an empty SPB before the tainted SPBs' room
        if steer && self.sw.on(SpbSwitch::MovableEmptyFirst) {
            if let Some((p, _)) = Self::walk_list(z, Category::Empty, excl, visited, |z, i| {
                Self::try_spb(z, i, order, mt)
            }) {
                return (Some(p), Pass::Pass3);
            }
        }
        if let Some(p) = self.movable_in_tainted(z, order, excl, visited, false) {
            return (Some(p), Pass::Pass4);
        }
        if steer && lost_first {
            if let Some(p) = self.movable_in_lost(z, ctx, order, excl, visited, false) {
                return (Some(p), Pass::Pass1);
            }
        }
        let reserve_on = self.reserve_on(z);
        if !steer {
            // mainline order: the lists of every SPB, lowest address first
            for i in 0..z.spbs.len() as u32 {
                if i == excl {
                    continue;
                }
                *visited += 1;
                if let Some(p) = Self::try_spb(z, i, order, mt) {
                    return (Some(p), Pass::Pass1);
                }
            }
        }
        // PASS_3: an empty SPB.
        if let Some((p, _)) = Self::walk_list(z, Category::Empty, excl, visited, |z, i| {
            Self::try_spb(z, i, order, mt)
        }) {
            return (Some(p), Pass::Pass3);
        }
        // The reserve is a preference, not a wall: with nothing left elsewhere, movable pages may
        // use it (the defrag worker and targeted evacuation move them out when non-movable
        // demand needs the room) rather than fail or fragment. The targets of an evacuation
        // (`excluded` is set) may take another tainted SPB's reserve only down to the level at
        // which that SPB's own defrag run would stop: below it they only move the shortage, and
        // two defrag workers trade the same pages back and forth while memory stays full.
        if reserve_on {
            let evacuating = self.excluded.is_some();
            if let Some((p, _)) = Self::walk_list(z, Category::Tainted, excl, visited, |z, i| {
                let s = &z.spbs[i as usize];
                if evacuating && s.pb_free <= defrag_stop_pageblocks(s) {
                    return None;
                }
                Self::try_spb(z, i, order, mt)
            }) {
                return (Some(p), Pass::Pass4);
            }
        }
        // Fallback: claim, then steal, from other types — inside tainted SPBs first.
        // (`steal_last` / `movable_zone_order`: nothing fragmenting under NOFRAGMENT.)
        let frag_ok =
            super::spb_steal::movable_may_fragment(self.sw, flags, self.excluded.is_some());
        for cat in [Category::Tainted, Category::Clean] {
            if let Some((p, _)) = Self::walk_list(z, cat, excl, visited, |z, i| {
                mainline::claim_in(z, ctx, i as usize, order, mt, flags, !frag_ok)
            }) {
                return (Some(p), Pass::Pass4);
            }
        }
        if !frag_ok {
            return (None, Pass::Fail);
        }
        // NOFRAGMENT keeps non-movable pages out of clean SPBs; a movable page cannot taint an
        // SPB, so under spb movable requests may steal regardless (tainted SPBs first).
        for cat in [Category::Tainted, Category::Clean] {
            if let Some((p, _)) = Self::walk_list(z, cat, excl, visited, |z, i| {
                mainline::steal_in(z, ctx, i as usize, order, mt)
            }) {
                return (Some(p), Pass::Pass4);
            }
        }
        let _ = flags;
        (None, Pass::Fail)
    }

    /// Whether SPB `i` has a free movable block for `order` that is not a piece of a free
    /// pageblock (always, for a request of pageblock order or more).
    pub(super) fn fragment_fits(z: &Zone, i: u32, order: u8) -> bool {
        let pbo = z.geo.pageblock_order;
        order >= pbo
            || z.areas[i as usize]
                .smallest_from(order as usize, MigrateType::Movable.idx())
                .is_some_and(|o| o < pbo as usize)
    }

    /// A movable block from the tainted (and lost) SPBs above their reserve, fullest first
    /// (`fragments`: only where [`Self::fragment_fits`]).
    fn movable_in_tainted(
        &self,
        z: &mut Zone,
        order: u8,
        excl: u32,
        visited: &mut u32,
        fragments: bool,
    ) -> Option<Pfn> {
        let reserve_on = self.reserve_on(z);
        let above = |s: &SpbMeta| !reserve_on || s.pb_free > tainted_reserve(s);
        Self::walk_list(z, Category::Tainted, excl, visited, |z, i| {
            if above(&z.spbs[i as usize]) && (!fragments || Self::fragment_fits(z, i, order)) {
                Self::try_spb(z, i, order, MigrateType::Movable)
            } else {
                None
            }
        })
        .map(|(p, _)| p)
    }

    /// A movable block from a clean SPB lost to reservations or holes (`lost_first`'s list;
    /// `fragments`: only where [`Self::fragment_fits`]).
    fn movable_in_lost(
        &self,
        z: &mut Zone,
        ctx: &Ctx,
        order: u8,
        excl: u32,
        visited: &mut u32,
        fragments: bool,
    ) -> Option<Pfn> {
        for &i in &self.zones[ctx.zone_id as usize].lost {
            if i == excl
                || z.spbs[i as usize].category != Category::Clean
                || (fragments && !Self::fragment_fits(z, i, order))
            {
                continue;
            }
            *visited += 1;
            if let Some(p) = Self::try_spb(z, i, order, MigrateType::Movable) {
                return Some(p);
            }
        }
        None
    }

    /// spb-next `pin_migrate`: a movable block ([`Self::fragment_fits`]) from the zone's pin
    /// SPB, or, when it has none left (or is no longer clean), from the fullest clean SPB that
    /// has one, which becomes the pin SPB.
    fn movable_in_pin_spb(
        &mut self,
        z: &mut Zone,
        ctx: &Ctx,
        order: u8,
        excl: u32,
        visited: &mut u32,
    ) -> Option<Pfn> {
        let h = self.zones[ctx.zone_id as usize].pin_spb;
        if h != NIL
            && h != excl
            && z.spbs[h as usize].category == Category::Clean
            && Self::fragment_fits(z, h, order)
        {
            *visited += 1;
            if let Some(p) = Self::try_spb(z, h, order, MigrateType::Movable) {
                return Some(p);
            }
        }
        let (p, i) = Self::walk_list(z, Category::Clean, excl, visited, |z, i| {
            if z.spbs[i as usize].is_lost() || !Self::fragment_fits(z, i, order) {
                return None;
            }
            Self::try_spb(z, i, order, MigrateType::Movable)
        })?;
        self.zones[ctx.zone_id as usize].pin_spb = i;
        Some(p)
    }

    #[allow(clippy::too_many_arguments)]
    fn walk_nonmovable(
        &mut self,
        z: &mut Zone,
        ctx: &mut Ctx,
        order: u8,
        mt: MigrateType,
        flags: AllocFlags,
        optional: bool,
        visited: &mut u32,
        gfp: Gfp,
    ) -> (Option<Pfn>, Pass) {
        let excl = self.excluded_in(ctx.zone_id);
        let steer = self.sw.on(SpbSwitch::SteerTainted);
        let pbo = z.geo.pageblock_order;
        let mut walk = TaintedWalk::default();
        let zi = ctx.zone_id as usize;
        // PASS_1: own lists in tainted SPBs (recording what the walk saw), then lost SPBs.
        // Full tainted SPBs (no free page) are not walked; they are at or below any reserve.
        walk.saw_below_reserve = z.spb_lists.counts[Category::Tainted as usize][0] > 0;
        if steer {
            if let Some(p) = self.hint_try(z, ctx, order, mt, Category::Tainted) {
                *visited += 1;
                return (Some(p), Pass::Pass1);
            }
            if let Some((p, i)) = Self::walk_list(z, Category::Tainted, excl, visited, |z, i| {
                let s = &z.spbs[i as usize];
                walk.saw_free_pages |= s.free_pages > 0;
                walk.saw_free_pb |= s.pb_free > 0;
                walk.saw_below_reserve |= s.pb_free <= tainted_reserve(s);
                Self::try_spb(z, i, order, mt)
            }) {
                self.set_hint(ctx.zone_id, order, mt, i);
                return (Some(p), Pass::Pass1);
            }
            if self.sw.on(SpbSwitch::LostFirst) {
                for k in 0..self.zones[zi].lost.len() {
                    let i = self.zones[zi].lost[k];
                    if i == excl || z.spbs[i as usize].category == Category::Tainted {
                        continue;
                    }
                    *visited += 1;
                    if let Some(p) = Self::try_spb(z, i, order, mt) {
                        return (Some(p), Pass::Pass1);
                    }
                    // claim a whole free pageblock there too
                    if let Some(p) = claim_whole_free(z, ctx, i, order, mt) {
                        return (Some(p), Pass::Pass2);
                    }
                }
            }
            // PASS_2: a whole free pageblock inside a tainted SPB.
            if self.sw.on(SpbSwitch::Pass2Claim) {
                if let Some((p, i)) =
                    Self::walk_list(z, Category::Tainted, excl, visited, |z, i| {
                        claim_whole_free(z, ctx, i, order, mt)
                    })
                {
                    self.queue_evacuate_claimed(ctx.zone_id, z, p);
                    let _ = i;
                    return (Some(p), Pass::Pass2);
                }
            }
            // PASS_2B: relabel a partly used movable pageblock inside a tainted SPB.
            let fragments_ok = (self.sw.on(SpbSwitch::AggressivePack)
                && z.spbs.len() > AGGRESSIVE_THRESHOLD)
                || flags.contains(AllocFlags::NOFRAG_TAINTED_OK)
                || !flags.contains(AllocFlags::NOFRAGMENT);
            if self.sw.on(SpbSwitch::Pass2bRelabel) && fragments_ok {
                if let Some((p, _)) =
                    Self::walk_list(z, Category::Tainted, excl, visited, |z, i| {
                        relabel_partial(z, ctx, i, order, mt)
                    })
                {
                    self.queue_evacuate_claimed(ctx.zone_id, z, p);
                    return (Some(p), Pass::Pass2b);
                }
            }
            // PASS_2C / PASS_2D: borrow without relabelling.
            if self.sw.on(SpbSwitch::CrossBorrow) {
                let other = if mt == MigrateType::Unmovable {
                    MigrateType::Reclaimable
                } else {
                    MigrateType::Unmovable
                };
                if let Some((p, _)) =
                    Self::walk_list(z, Category::Tainted, excl, visited, |z, i| {
                        Self::try_spb(z, i, order, other)
                    })
                {
                    return (Some(p), Pass::Pass2c);
                }
                if fragments_ok {
                    if let Some((p, _)) =
                        Self::walk_list(z, Category::Tainted, excl, visited, |z, i| {
                            // keep whole free pageblocks for PASS_2 claims: borrow only fragments
                            let o = z.areas[i as usize]
                                .smallest_from(order as usize, MigrateType::Movable.idx())?;
                            if o >= pbo as usize {
                                return None;
                            }
                            Self::try_spb(z, i, order, MigrateType::Movable)
                        })
                    {
                        return (Some(p), Pass::Pass2d);
                    }
                }
            }
        }
        // spb-next `refill_no_taint`: a refill's page after the caller's comes from the SPBs
        // walked above or not at all (nothing is about to be tainted: no work is queued)
        if steer && flags.contains(AllocFlags::NO_TAINT) {
            // `refill_one_taint`: the SPB the refill's first page tainted may give the rest
            let Some((_, x)) = self
                .refill_spb
                .filter(|&(zone, x)| zone == ctx.zone_id && x != excl)
            else {
                return (None, Pass::Fail);
            };
            *visited += 1;
            let p = Self::try_spb(z, x, order, mt)
                .or_else(|| claim_whole_free(z, ctx, x, order, mt))
                .or_else(|| mainline::claim_in(z, ctx, x as usize, order, mt, flags, true))
                .or_else(|| {
                    let nofrag = flags.contains(AllocFlags::NOFRAGMENT);
                    (!nofrag).then(|| mainline::steal_in(z, ctx, x as usize, order, mt))?
                });
            return (p, if p.is_some() { Pass::Pass4 } else { Pass::Fail });
        }
        // Before tainting a fresh SPB: kick deferred evacuation and the last-chance defrag.
        if walk.saw_below_reserve && self.sw.on(SpbSwitch::DeferredEvacuation) {
            self.queue(Work::EvacuateForOrder {
                zone: ctx.zone_id,
                order,
                mt,
            });
        }
        if self.sw.on(SpbSwitch::SlabShrink) {
            self.last_chance_defrag(z, ctx);
        }
        // spb-next `evacuate_before_empty`: the slow path evacuates a tainted SPB first
        if self.sw.on(SpbSwitch::EvacuateBeforeEmpty)
            && self.sw.on(SpbSwitch::TaintWhenFull)
            && flags.contains(AllocFlags::NOFRAGMENT)
            && gfp.contains(Gfp::DIRECT_RECLAIM)
            && super::spb_work::above_min(core::slice::from_ref(z), z.kind, order)
            && tainted_hold_movable(z, excl)
        {
            self.evacuate_first = true;
            return (None, Pass::Fail);
        }
        // PASS_3: a whole pageblock from an empty SPB.
        if let Some((p, _)) = Self::walk_list(z, Category::Empty, excl, visited, |z, i| {
            claim_whole_free(z, ctx, i, order, mt)
        }) {
            return (Some(p), Pass::Pass3);
        }
        // The refusal (26): a tainted SPB could absorb this after evacuation.
        if optional && (walk.saw_free_pages || walk.saw_free_pb) {
            ctx.vm.inc(Vm::SpbHighorderRefused);
            ctx.ev.push(Event::SpbRefused {
                gfp,
                order,
                rule: "highorder_optional",
            });
            return (None, Pass::Fail);
        }
        // PASS_4: clean SPBs (fullest first), only without NOFRAGMENT when it is kept.
        let nofrag = flags.contains(AllocFlags::NOFRAGMENT);
        if nofrag && self.sw.on(SpbSwitch::KeepNofragment) {
            return (None, Pass::Fail);
        }
        if self.sw.on(SpbSwitch::DeferredEvacuation) {
            self.queue(Work::EvacuateForOrder {
                zone: ctx.zone_id,
                order,
                mt,
            });
        }
        if steer {
            if let Some((p, _)) = Self::walk_list(z, Category::Clean, excl, visited, |z, i| {
                mainline::claim_in(z, ctx, i as usize, order, mt, flags, true)
            }) {
                return (Some(p), Pass::Pass4);
            }
            if !nofrag {
                // spb-next `taint_roomy`: first the clean SPBs with a pageblock of free pages,
                // whose room the following requests can use once this steal has tainted it
                let pbp = z.geo.pageblock_pages();
                let roomy = self.sw.on(SpbSwitch::TaintRoomy);
                let mut steal = |min_free: u64, visited: &mut u32| {
                    Self::walk_list(z, Category::Clean, excl, visited, |z, i| {
                        if z.spbs[i as usize].free_pages < min_free {
                            return None;
                        }
                        mainline::steal_in(z, ctx, i as usize, order, mt)
                    })
                };
                let found = if roomy {
                    steal(pbp, visited).or_else(|| steal(0, visited))
                } else {
                    steal(0, visited)
                };
                if let Some((p, _)) = found {
                    return (Some(p), Pass::Pass4);
                }
            }
            return (None, Pass::Fail);
        }
        // without steering: mainline order over every SPB, lowest address first
        for i in 0..z.spbs.len() as u32 {
            if i == excl {
                continue;
            }
            *visited += 1;
            if let Some(p) = Self::try_spb(z, i, order, mt) {
                return (Some(p), Pass::Pass4);
            }
            if let Some(p) = mainline::claim_in(z, ctx, i as usize, order, mt, flags, true) {
                return (Some(p), Pass::Pass4);
            }
        }
        if !nofrag {
            for i in 0..z.spbs.len() as u32 {
                if i == excl {
                    continue;
                }
                if let Some(p) = mainline::steal_in(z, ctx, i as usize, order, mt) {
                    return (Some(p), Pass::Pass4);
                }
            }
        }
        (None, Pass::Fail)
    }

    /// With `evacuate_claimed` (patch 06): a block the walk claimed for a non-movable type
    /// while it still holds movable pages gets their evacuation queued.
    fn queue_evacuate_claimed(&mut self, zone: u8, z: &Zone, p: Pfn) {
        if self.sw.on(SpbSwitch::EvacuateClaimed) && z.pb(p).movable_pages() > 0 {
            let pbp = z.geo.pageblock_pages();
            self.queue(Work::EvacuateBlock {
                zone,
                pfn: p & !(pbp - 1),
            });
        }
    }
}

/// Claim a whole free pageblock (a free buddy of order >= pageblock order) inside SPB `i` for
/// `mt` (claim_whole_block, patch 13) and allocate `order` from it.
fn claim_whole_free(
    z: &mut Zone,
    ctx: &mut Ctx,
    i: u32,
    order: u8,
    mt: MigrateType,
) -> Option<Pfn> {
    let pbo = z.geo.pageblock_order;
    let min = order.max(pbo) as usize;
    for t in [
        MigrateType::Movable,
        if mt == MigrateType::Unmovable {
            MigrateType::Reclaimable
        } else {
            MigrateType::Unmovable
        },
        mt,
    ] {
        let area = &z.areas[i as usize];
        if let Some(o) = area.smallest_from(min, t.idx()) {
            let h = area.first(o, t.idx())?;
            let pfn = z.pfn_of(h);
            return mainline::try_to_claim_block(
                z,
                ctx,
                pfn,
                o as u8,
                order,
                mt,
                t,
                AllocFlags::NOFRAGMENT,
                false,
            );
        }
    }
    None
}

/// PASS_2B: relabel the pageblock of a movable free fragment inside SPB `i` for `mt`, skipping
/// the half-pageblock rule (from_tainted_spb).
fn relabel_partial(z: &mut Zone, ctx: &mut Ctx, i: u32, order: u8, mt: MigrateType) -> Option<Pfn> {
    let pbo = z.geo.pageblock_order;
    let area = &z.areas[i as usize];
    let o = area.largest_between(
        order as usize,
        (pbo as usize).saturating_sub(1),
        MigrateType::Movable.idx(),
    )?;
    if o >= pbo as usize {
        return None;
    }
    let h = area.first(o, MigrateType::Movable.idx())?;
    let pfn = z.pfn_of(h);
    if !z.pb_in_zone(pfn) {
        ctx.ev.push(Event::SpbClaimRefused {
            zone: ctx.zone_id,
            pfn,
            reason: "zone boundary",
        });
        return None;
    }
    mainline::try_to_claim_block(
        z,
        ctx,
        pfn,
        o as u8,
        order,
        mt,
        MigrateType::Movable,
        AllocFlags::NOFRAGMENT,
        true,
    )
}

/// Some tainted SPB of `z` but `excl` holds movable pages (an evacuation can make room there).
fn tainted_hold_movable(z: &Zone, excl: u32) -> bool {
    (0..NR_FULLNESS).any(|full| {
        z.spb_lists
            .iter(&z.spbs, Category::Tainted, full)
            .any(|i| i != excl && z.spbs[i as usize].movable_pages() > 0)
    })
}
