//! The superpageblock policy: steer non-movable allocations into SPBs that are already tainted,
//! movable ones into the fullest clean SPB, refuse fragmenting fallbacks for callers with a
//! cheap alternative, and evacuate movable pages out of tainted SPBs in the background.
//!
//! # The walk (`__rmqueue_smallest` of the series, patches 14, 20, 24, 27, 31)
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

use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;

use crate::event::{Event, Pass};
use crate::geometry::Pfn;
use crate::gfp::{AllocFlags, Gfp};
use crate::migratetype::MigrateType;
use crate::page::NIL;
use crate::superpageblock::{Category, SpbMeta, FIRST_WITH_FREE, NR_FULLNESS};
use crate::vmstat::{Vm, WalkHistogram};
use crate::zone::{CategoryChange, Zone};

use super::mainline::{self, RmqueueMode};
use super::spb_gfp::{has_cheap_fallback, CheapFallbackRule};
use super::Ctx;

pub use super::spb_switches::{SpbSwitch, SpbSwitches};

/// Owned pageblocks one Phase 0 refill may scan without finding a free block of the
/// requested order before it falls through to the ordinary walk. Spb's choice (the series
/// does not say how Phase 0 bounds its walk): 4 pageblock scans cost about as much as the
/// walk itself, and the round-robin order brings every owned block up within a few refills.
pub const HARVEST_MISS_BUDGET: u32 = 4;

/// SPB_TAINTED_RESERVE_MIN (patch 23).
pub const TAINTED_RESERVE_MIN: u32 = 4;
/// Share of an SPB's pageblocks kept free for non-movable use, in percent (patch 23: ~3 %).
pub const TAINTED_RESERVE_PERCENT: u32 = 3;
/// SPB_AGGRESSIVE_THRESHOLD (patch 19): zones with more SPBs than this consume tainted SPBs at
/// any granularity.
pub const AGGRESSIVE_THRESHOLD: usize = 8;
/// Minimum virtual time between two slab-shrink requests for one SPB. The series relies on
/// workqueue single-flight (a request in flight absorbs repeats) after removing a 100 ms
/// throttle; in the simulator a work item completes at the next background tick, so
/// single-flight alone would re-run it on every allocation. 100 ms stands for the latency of
/// one shrink work item.
pub const SLAB_SHRINK_INTERVAL_NS: u64 = 100_000_000;
/// SPB_DEFRAG_NOOP_COOLDOWN (v1 43/45): a defrag run that moved nothing waits this long.
pub const DEFRAG_NOOP_COOLDOWN_NS: u64 = 5_000_000_000;

/// Free pageblocks at which a defrag run of a tainted SPB stops (patch 15: twice the start
/// threshold, which patch 23 puts at a quarter of the reserve).
pub fn defrag_stop_pageblocks(s: &SpbMeta) -> u32 {
    2 * (tainted_reserve(s) / 4).max(1)
}

/// spb_tainted_reserve: free pageblocks a tainted SPB keeps for non-movable allocations.
#[inline]
pub fn tainted_reserve(s: &SpbMeta) -> u32 {
    (s.total_pageblocks * TAINTED_RESERVE_PERCENT)
        .div_ceil(100)
        .max(TAINTED_RESERVE_MIN)
        .min(s.total_pageblocks)
}

/// What PASS_1 saw on the tainted list (struct spb_tainted_walk, patch 26).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaintedWalk {
    pub saw_free_pages: bool,
    pub saw_free_pb: bool,
    pub saw_below_reserve: bool,
}

/// A unit of background work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Work {
    /// Per-SPB defrag of a tainted SPB (patch 15).
    Defrag { zone: u8, spb: u32 },
    /// Evacuate the movable pages left in a pageblock claimed for non-movable use (06).
    EvacuateBlock { zone: u8, pfn: Pfn },
    /// Deferred evacuation: make free pageblocks inside tainted SPBs (25).
    EvacuateForOrder {
        zone: u8,
        order: u8,
        mt: MigrateType,
    },
    /// Shrink reclaimable slab living in a tainted SPB under pressure (28).
    SlabShrink { zone: u8, spb: u32 },
    /// spb-next `highorder_supply` / `highorder_evacuate`: evacuate the cheapest movable-only
    /// pageblock.
    EvacuateFree { zone: u8 },
}

/// Per-zone policy state.
#[derive(Clone, Debug, Default)]
pub struct ZoneState {
    /// PASS_1 hint per (order, migratetype): the SPB that last served it.
    pub(crate) hint: Vec<[u32; 3]>,
    /// SPBs lost to reservations or holes (static unless the zone grows).
    pub(crate) lost: Vec<u32>,
    /// Pageblocks each CPU owns (per-CPU pageblock ownership): (first pfn, listing generation),
    /// visited round-robin by Phase 0.
    ///
    /// # Invariants
    /// - an entry is live exactly when the block's `owner` is this CPU + 1 and its generation
    ///   equals `owned_gen` of the block; every other entry is stale and dropped when visited;
    /// - a block has at most one live entry over all CPUs (each listing bumps the generation).
    pub(crate) owned: Vec<VecDeque<(Pfn, u32)>>,
    /// Listing generation per pageblock of the zone (grown on demand).
    pub(crate) owned_gen: Vec<u32>,
    /// Time of the last defrag run of each SPB that made no progress.
    pub(crate) defrag_noop_ns: Vec<u64>,
    /// Defrag queued or running for this SPB.
    pub(crate) defrag_queued: Vec<bool>,
    /// spb-next `defrag_deep`: this SPB's defrag runs until no movable pageblock can be
    /// evacuated (set by the last-chance trigger, cleared by a run that moves nothing or
    /// leaves no movable page).
    pub(crate) defrag_deep: Vec<bool>,
    /// Time of the last slab-shrink request per SPB.
    pub(crate) shrink_ns: Vec<u64>,
    /// spb-next `evacuate_thp`: the most non-movable pages the zone has held, as last seen by
    /// [`SpbPolicy::thp_move_credit`].
    pub(crate) nonmovable_peak: u64,
    /// spb-next `evacuate_thp`: moves of blocks of pageblock order out of the zone's tainted SPBs
    /// attempted (those that found no target are not counted).
    ///
    /// # Invariants
    /// - `thp_moved <= nonmovable_peak / pageblock pages` (each move is paid for by a
    ///   pageblock of non-movable memory).
    pub(crate) thp_moved: u64,
}

/// spb policy state.
pub struct SpbPolicy {
    pub(crate) sw: SpbSwitches,
    pub(crate) zones: Vec<ZoneState>,
    /// SPB excluded from every walk while it is being evacuated: (zone, spb).
    pub(crate) excluded: Option<(u8, u32)>,
    /// The SPB whose defrag run is running now: (zone, spb). Its `defrag_queued` flag stays set
    /// while it runs (the run is taken off the queue first), so the checker accepts it.
    pub(crate) defrag_running: Option<(u8, u32)>,
    /// Pending background work (single-flight per item).
    pub(crate) work: Vec<Work>,
    /// SPBs visited per walk.
    pub(crate) walks: WalkHistogram,
    /// Tainted-SPB transitions: which (gfp, order) tainted a clean or empty SPB, counted.
    pub(crate) taint_causes: Vec<(Gfp, u8, u64)>,
    /// spb-next `contig_targets` state (boxed: the policy enum stays small).
    pub(crate) contig: alloc::boxed::Box<ContigSteer>,
}

/// spb-next `contig_targets` state.
#[derive(Default)]
pub struct ContigSteer {
    /// While a 1 GiB allocation runs in zone `.0`, the SPBs it has still to try (`.1[spb]`, the
    /// one being emptied included): no migration target there.
    pub(crate) pending: Option<(u8, Vec<bool>)>,
    /// Per zone: SPBs whose last 1 GiB attempt failed (a page that would not move): tried
    /// last, and the first clean targets of later migrations.
    pub(crate) failed: Vec<Vec<bool>>,
}

impl SpbPolicy {
    /// The switches the policy runs with.
    pub fn switches(&self) -> SpbSwitches {
        self.sw
    }
    /// Per-zone policy state.
    pub fn zones(&self) -> &[ZoneState] {
        &self.zones
    }
    /// The SPB excluded from every walk while it is being evacuated: (zone, spb).
    pub fn excluded(&self) -> Option<(u8, u32)> {
        self.excluded
    }
    /// Pending background work.
    pub fn work(&self) -> &[Work] {
        &self.work
    }
    /// SPBs visited per walk.
    pub fn walks(&self) -> &WalkHistogram {
        &self.walks
    }
    /// Tainted-SPB transitions: (gfp, order, count).
    pub fn taint_causes(&self) -> &[(Gfp, u8, u64)] {
        &self.taint_causes
    }
    pub fn new(sw: SpbSwitches) -> Self {
        SpbPolicy {
            sw,
            zones: Vec::new(),
            excluded: None,
            defrag_running: None,
            work: Vec::new(),
            walks: WalkHistogram::default(),
            taint_causes: Vec::new(),
            contig: alloc::boxed::Box::default(),
        }
    }

    /// Build per-zone state.
    pub fn init_zones(&mut self, zones: &[Zone]) {
        self.zones = zones.iter().map(zone_state).collect();
        self.contig.failed = zones.iter().map(|z| vec![false; z.spbs.len()]).collect();
    }

    /// A zone grew (patch 09/31): extend its per-SPB state (queued work and cooldowns stay
    /// valid), refresh the list of lost SPBs and invalidate the hints.
    pub fn rebuild_zone(&mut self, zi: usize, z: &Zone) {
        if zi < self.zones.len() {
            let fresh = zone_state(z);
            let st = &mut self.zones[zi];
            let n = z.spbs.len();
            st.hint = fresh.hint;
            st.lost = fresh.lost;
            st.defrag_noop_ns.resize(n, 0);
            st.defrag_queued.resize(n, false);
            st.defrag_deep.resize(n, false);
            st.shrink_ns.resize(n, 0);
        }
        if let Some(f) = self.contig.failed.get_mut(zi) {
            f.resize(z.spbs.len(), false);
        }
    }

    /// The 1 GiB candidates of zone `zi` in the order to try them: with `contig_targets`,
    /// SPBs whose last attempt failed go last (their failure says a page there would not move).
    pub fn contig_order(&self, zi: usize, z: &Zone, mut v: Vec<Pfn>) -> Vec<Pfn> {
        if self.sw.on(SpbSwitch::ContigTargets) {
            if let Some(f) = self.contig.failed.get(zi) {
                v.sort_by_key(|&p| f.get(z.spb_idx(p)).copied().unwrap_or(false));
            }
        }
        v
    }

    /// `alloc_contig` tries `rest[0]` now and `rest[1..]` after it (spb-next).
    pub fn contig_trying(&mut self, zi: usize, z: &Zone, pages: u64, rest: &[Pfn]) {
        if !self.sw.on(SpbSwitch::ContigTargets) || pages != z.geo.spb_pages() {
            return;
        }
        let mut pend = match self.contig.pending.take() {
            Some((_, mut v)) => {
                v.clear();
                v.resize(z.spbs.len(), false);
                v
            }
            None => vec![false; z.spbs.len()],
        };
        for &p in rest {
            pend[z.spb_idx(p)] = true;
        }
        self.contig.pending = Some((zi as u8, pend));
    }

    /// The attempt at `start` ended (spb-next): remember a failure, end the steering.
    pub fn contig_tried(&mut self, zi: usize, z: &Zone, pages: u64, start: Pfn, ok: bool) {
        if !self.sw.on(SpbSwitch::ContigTargets) || pages != z.geo.spb_pages() {
            return;
        }
        if let Some(f) = self.contig.failed.get_mut(zi) {
            if let Some(x) = f.get_mut(z.spb_idx(start)) {
                *x = !ok;
            }
        }
        self.contig.pending = None;
    }

    /// spb-next `contig_targets`: a migration target for a page a 1 GiB allocation moves,
    /// outside every SPB the allocation has still to try, so the page moves once: tainted
    /// SPBs above their reserve (already lost), then SPBs lost to reservations or holes, then
    /// clean SPBs whose attempt failed, then other clean SPBs that are not candidates. None:
    /// the ordinary walk decides.
    fn contig_target(
        &mut self,
        z: &mut Zone,
        ctx: &mut Ctx,
        order: u8,
        visited: &mut u32,
    ) -> Option<Pfn> {
        let zi = ctx.zone_id;
        let pend = match &self.contig.pending {
            Some((pz, v)) if *pz == zi => core::mem::take(&mut self.contig.pending.as_mut()?.1),
            _ => return None,
        };
        let mt = MigrateType::Movable;
        let failed = self.contig.failed.get(zi as usize);
        let r = (|| {
            if let Some((p, _)) = Self::walk_list(z, Category::Tainted, NIL, visited, |z, i| {
                let s = &z.spbs[i as usize];
                if s.pb_free > tainted_reserve(s) {
                    Self::try_spb(z, i, order, mt)
                } else {
                    None
                }
            }) {
                return Some(p);
            }
            for &i in &self.zones[zi as usize].lost {
                if pend.get(i as usize).copied().unwrap_or(false) {
                    continue;
                }
                *visited += 1;
                if let Some(p) = Self::try_spb(z, i, order, mt) {
                    return Some(p);
                }
            }
            for want_failed in [true, false] {
                if let Some((p, _)) = Self::walk_list(z, Category::Clean, NIL, visited, |z, i| {
                    let f = failed
                        .and_then(|f| f.get(i as usize))
                        .copied()
                        .unwrap_or(false);
                    if f != want_failed || pend.get(i as usize).copied().unwrap_or(false) {
                        return None;
                    }
                    Self::try_spb(z, i, order, mt)
                }) {
                    return Some(p);
                }
            }
            None
        })();
        if let Some((_, v)) = self.contig.pending.as_mut() {
            *v = pend;
        }
        r
    }

    /// Slow-path flags: keep NOFRAGMENT (20), mark callers with a cheap fallback (26).
    pub fn slowpath_flags(&self, gfp: Gfp, _order: u8, mut f: AllocFlags) -> AllocFlags {
        if self.sw.on(SpbSwitch::KeepNofragment) {
            f = f.with(AllocFlags::NOFRAGMENT);
        }
        if self.sw.on(SpbSwitch::RefuseOptional) {
            let rule = if self.sw.on(SpbSwitch::RefuseLiteral) {
                CheapFallbackRule::Literal
            } else {
                CheapFallbackRule::Intent
            };
            if has_cheap_fallback(gfp, rule) {
                f = f.with(AllocFlags::HIGHORDER_OPTIONAL);
            }
        }
        f
    }

    /// The SPB of zone `zone` being evacuated (never a source of pages), or NIL.
    #[inline]
    pub(crate) fn excluded_in(&self, zone: u8) -> u32 {
        match self.excluded {
            Some((z, s)) if z == zone => s,
            _ => NIL,
        }
    }

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
    fn try_spb(z: &mut Zone, i: u32, order: u8, mt: MigrateType) -> Option<Pfn> {
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
    fn walk_list(
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
        // spb-next `movable_best_fit`: the zone's smallest fitting fragment first.
        if self.sw.on(SpbSwitch::MovableBestFit) {
            let reserve_on = self.sw.on(SpbSwitch::TaintedReserve);
            if let Some(i) = super::spb_fit::best_fit_spb(z, order, excl, reserve_on) {
                *visited += 1;
                let pass = match z.spbs[i as usize].category {
                    Category::Clean => Pass::Pass1,
                    _ => Pass::Pass4,
                };
                if let Some(p) = Self::try_spb(z, i, order, mt) {
                    return (Some(p), pass);
                }
            }
        }
        // PASS_1: clean SPBs, fullest first (hint first).
        if steer {
            if let Some(p) = self.hint_try(z, ctx, order, mt, Category::Clean) {
                *visited += 1;
                return (Some(p), Pass::Pass1);
            }
            if let Some((p, i)) = Self::walk_list(z, Category::Clean, excl, visited, |z, i| {
                let s = &z.spbs[i as usize];
                if lost_first && (s.is_pinned() || s.has_hole()) {
                    return None;
                }
                Self::try_spb(z, i, order, mt)
            }) {
                self.set_hint(ctx.zone_id, order, mt, i);
                return (Some(p), Pass::Pass1);
            }
        }
        // Tainted (and lost) SPBs above their reserve.
        let reserve_on = self.sw.on(SpbSwitch::TaintedReserve);
        let above = |s: &SpbMeta| !reserve_on || s.pb_free > tainted_reserve(s);
        if let Some((p, _)) = Self::walk_list(z, Category::Tainted, excl, visited, |z, i| {
            if above(&z.spbs[i as usize]) {
                Self::try_spb(z, i, order, mt)
            } else {
                None
            }
        }) {
            return (Some(p), Pass::Pass4);
        }
        if steer && lost_first {
            for k in 0..self.zones[ctx.zone_id as usize].lost.len() {
                let i = self.zones[ctx.zone_id as usize].lost[k];
                if i == excl || z.spbs[i as usize].category != Category::Clean {
                    continue;
                }
                *visited += 1;
                if let Some(p) = Self::try_spb(z, i, order, mt) {
                    return (Some(p), Pass::Pass1);
                }
            }
        }
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
                if let Some((p, _)) = Self::walk_list(z, Category::Clean, excl, visited, |z, i| {
                    mainline::steal_in(z, ctx, i as usize, order, mt)
                }) {
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

    /// Queue background work once (a queued item is not queued again).
    pub(crate) fn queue(&mut self, w: Work) {
        if !self.work.contains(&w) {
            self.work.push(w);
        }
    }

    fn queue_evacuate_claimed(&mut self, zone: u8, z: &Zone, p: Pfn) {
        if self.sw.on(SpbSwitch::EvacuateClaimed) && z.pb(p).movable_pages() > 0 {
            let pbp = z.geo.pageblock_pages();
            self.queue(Work::EvacuateBlock {
                zone,
                pfn: p & !(pbp - 1),
            });
        }
    }

    /// Per-CPU refill with pageblock ownership (patches 02, 21). Phase 0 recovers free pages
    /// of blocks this CPU owns; then the ordinary walk serves the rest, smallest block first,
    /// and when it has to break a whole free pageblock the CPU becomes that block's owner (the
    /// series' Phase 1, which claims whole pageblocks *before* sub-pageblock chunks, would break
    /// up the free pageblocks THP needs; spb keeps the buddy allocator's smallest-first order and
    /// makes ownership a consequence of it). With `adopt_partial` (21) a non-movable refill
    /// served from a partially free pageblock of a tainted SPB adopts that block. The free pages
    /// of an owned block stay in the buddy lists until the owner's refills take them; frees of
    /// its pages return to the owner's list. Fills up to `n` entries; returns how many.
    #[allow(clippy::too_many_arguments)]
    pub fn pcp_refill_owned(
        &mut self,
        z: &mut Zone,
        ctx: &mut Ctx,
        cpu: usize,
        order: u8,
        mt: MigrateType,
        flags: AllocFlags,
        gfp: Gfp,
        n: u64,
    ) -> u64 {
        let pbo = z.geo.pageblock_order;
        let own = self.sw.on(SpbSwitch::PcpOwnership);
        let adopt = self.sw.on(SpbSwitch::AdoptPartial) && mt != MigrateType::Movable;
        if order >= pbo || n == 0 || !(own || adopt) {
            return 0;
        }
        let zi = ctx.zone_id as usize;
        let pbp = z.geo.pageblock_pages();
        let mut got = if own {
            self.harvest_owned(z, zi, cpu, order, mt, n)
        } else {
            0
        };
        let mut mode = RmqueueMode::Normal;
        let no_steal = self.sw.on(SpbSwitch::RefillNoSteal);
        while got < n {
            // (the steal counter is read only with the switch on: this is the refill loop)
            let steals = if no_steal {
                ctx.vm.get(Vm::ExtfragSteal)
            } else {
                0
            };
            let Some(p) = self.rmqueue(z, ctx, order, mt, flags, &mut mode, gfp) else {
                break;
            };
            // spb-next `refill_no_steal`: this page was stolen from another type's block; keep it
            // (the caller may need it) and stop filling the cache that way
            let stop = no_steal && ctx.vm.get(Vm::ExtfragSteal) != steals;
            let bi = z.pb_idx(p);
            let pb = z.pageblocks[bi];
            let broke_whole = pb.free as u64 == pbp;
            let si = z.spb_idx(p);
            let adopt_here =
                adopt && pb.owner == 0 && !broke_whole && z.spbs[si].category == Category::Tainted;
            z.account(
                p,
                1u64 << order,
                crate::pageblock::Acct::Free,
                crate::pageblock::Acct::Pcp,
            );
            z.pcp_push(cpu, p, order, mt, true);
            got += 1;
            if (own && broke_whole && pb.owner == 0) || adopt_here {
                let b = p & !(pbp - 1);
                z.pageblocks[bi].owner = cpu as u16 + 1;
                let zs = &mut self.zones[zi];
                if zs.owned.len() <= cpu {
                    zs.owned.resize(cpu + 1, VecDeque::new());
                }
                if zs.owned_gen.len() <= bi {
                    zs.owned_gen.resize(bi + 1, 0);
                }
                zs.owned_gen[bi] = zs.owned_gen[bi].wrapping_add(1);
                let gen = zs.owned_gen[bi];
                let list = &mut zs.owned[cpu];
                list.push_back((b, gen));
                // stale entries of blocks visited rarely: keep the list within twice the zone
                if list.len() > 2 * z.pageblocks.len().max(8) {
                    let g = &zs.owned_gen;
                    list.retain(|&(b, e)| {
                        let i = z.pb_idx(b);
                        z.pageblocks[i].owner == cpu as u16 + 1 && g[i] == e
                    });
                }
                // the rest of the refill comes from the block just claimed
                if own && got < n && pb.migratetype() == mt {
                    got += harvest_block(z, b, cpu, order, mt, n - got);
                }
            }
            if stop {
                // the refill is over: the generic loop must not take the rest either
                return n;
            }
        }
        got
    }

    /// Phase 0: take free blocks of `order` (splitting larger free buddies) out of the
    /// pageblocks `cpu` owns whose label is `mt`, onto its list. Stale entries (the block
    /// became entirely free, or was listed again) are dropped.
    ///
    /// The owned blocks are visited round-robin, and one refill gives up after
    /// [`HARVEST_MISS_BUDGET`] scanned blocks that yielded nothing: a CPU can own thousands
    /// of pageblocks, and one whose free pages are all smaller than `order` costs a scan of
    /// the whole block; unbounded, Phase 0 made refills O(owned blocks x pageblock pages).
    fn harvest_owned(
        &mut self,
        z: &mut Zone,
        zi: usize,
        cpu: usize,
        order: u8,
        mt: MigrateType,
        n: u64,
    ) -> u64 {
        let zs = &mut self.zones[zi];
        let Some(list) = zs.owned.get_mut(cpu) else {
            return 0;
        };
        let gens = &zs.owned_gen;
        let len = list.len();
        let mut got = 0;
        let mut misses = 0;
        // Each entry is visited at most once, from the front; a visited entry goes to the
        // back (in order) unless stale. Most owned blocks are full: an entry whose block has
        // no free page can yield nothing, so it only goes round, and finding the next entry
        // with free pages is a scan of the list against `Zone::pb_has_free` (a 16 KiB bitmap)
        // instead of a pop, a load of the pageblock record and a push per entry. The visited
        // prefix moves to the back in one rotation at the end. A stale entry whose block has
        // no free page goes round too: it stays stale (only a new listing, with a new
        // generation, makes a block owned again) and is dropped at a later visit; a stale
        // entry changes nothing but the list's length, which bounds only this loop's
        // visits, each entry at most once.
        let mut j = 0;
        let mut stale: Vec<usize> = Vec::new();
        while got < n && misses < HARVEST_MISS_BUDGET {
            j = next_with_free(z, list, j);
            if j == len {
                break;
            }
            let (b, gen) = list[j];
            j += 1;
            let bi = z.pb_idx(b);
            let pb = z.pageblocks[bi];
            if pb.owner != cpu as u16 + 1 || gens.get(bi) != Some(&gen) {
                stale.push(j - 1);
                continue;
            }
            if pb.migratetype() != mt || pb.is_isolated() || (pb.free as u64) < (1u64 << order) {
                continue;
            }
            let before = got;
            got += harvest_block(z, b, cpu, order, mt, n - got);
            if got == before {
                misses += 1;
            }
        }
        if stale.is_empty() {
            list.rotate_left(j);
        } else {
            let mut k = 0;
            let kept: Vec<(Pfn, u32)> = list
                .drain(..j)
                .enumerate()
                .filter(|&(i, _)| {
                    let drop = stale.get(k) == Some(&i);
                    k += drop as usize;
                    !drop
                })
                .map(|(_, e)| e)
                .collect();
            list.extend(kept);
        }
        got
    }

    /// spb_needs_defrag (patch 15 with the earlier start of patch 23).
    #[inline]
    pub fn needs_defrag(&self, s: &SpbMeta, pbp: u64) -> bool {
        if s.category != Category::Tainted || s.movable_pages() == 0 {
            return false;
        }
        if s.free_pages < 2 * pbp {
            return true;
        }
        let start_pb = if self.sw.on(SpbSwitch::TaintedReserve) {
            (tainted_reserve(s) / 4).max(1)
        } else {
            1
        };
        s.pb_free <= start_pb
    }

    /// spb-next `evacuate_thp`'s pacing: may an evacuation in zone `zi` move one more block of
    /// pageblock order (a THP) out of a tainted SPB? Each pageblock's worth of non-movable
    /// memory the zone has held at its peak pays for one such move, so THPs leave the tainted
    /// SPBs only as fast as non-movable memory grows: under memory pressure without growth the
    /// pageblocks a move frees would be refilled by movable allocations and the THPs moved
    /// again and again. And only while the zone holds more free pageblocks than the THP
    /// supply's band (`spb_highorder::supply_target`, the low-high watermark gap): the last free
    /// pageblocks are left to the THP faults that cannot reclaim. No constant: the unit is the
    /// pageblock, the one the allocator claims. A move that was allowed and found a target is
    /// paid with [`SpbPolicy::spend_thp_move`] (one the embedder refuses, a pinned THP, is paid
    /// too: the attempt was work).
    pub(crate) fn thp_move_credit(&mut self, zi: usize, z: &Zone) -> bool {
        let nm: u64 = z.spbs.iter().map(|s| s.non_movable_pages()).sum();
        let st = &mut self.zones[zi];
        st.nonmovable_peak = st.nonmovable_peak.max(nm);
        st.thp_moved < st.nonmovable_peak / z.geo.pageblock_pages()
            && super::spb_highorder::free_pageblocks(z) > super::spb_highorder::supply_target(z)
    }

    /// Pay for a THP move [`SpbPolicy::thp_move_credit`] allowed.
    pub(crate) fn spend_thp_move(&mut self, zi: usize) {
        self.zones[zi].thp_moved += 1;
    }

    /// Whether a defrag run of SPB `s` is done (`deep`: spb-next `defrag_deep`, done only when
    /// no movable page is left).
    pub fn defrag_done(&self, s: &SpbMeta, pbp: u64, deep: bool) -> bool {
        if deep {
            return s.movable_pages() == 0;
        }
        let start_pb = if self.sw.on(SpbSwitch::TaintedReserve) {
            (tainted_reserve(s) / 4).max(1)
        } else {
            1
        };
        s.movable_pages() == 0
            || s.pb_free >= 2 * start_pb
            || s.free_pages >= (2 * start_pb as u64 + 1) * pbp
    }

    /// spb_maybe_start_defrag.
    #[inline]
    pub fn maybe_start_defrag(&mut self, zone: u8, z: &Zone, i: u32, now_ns: u64) {
        if !self.sw.on(SpbSwitch::DefragWorker) {
            return;
        }
        let zs = &self.zones[zone as usize];
        if zs.defrag_queued[i as usize] {
            return;
        }
        let last = zs.defrag_noop_ns[i as usize];
        if last != 0 && now_ns < last + DEFRAG_NOOP_COOLDOWN_NS {
            return;
        }
        let s = &z.spbs[i as usize];
        let deep = zs.defrag_deep[i as usize] && s.movable_pages() > 0;
        if deep || self.needs_defrag(s, z.geo.pageblock_pages()) {
            self.zones[zone as usize].defrag_queued[i as usize] = true;
            self.work.push(Work::Defrag { zone, spb: i });
        }
    }

    /// The last-chance trigger of patch 28: before tainting a fresh SPB, try to start defrag on
    /// every tainted SPB (bounded by the number of tainted SPBs).
    fn last_chance_defrag(&mut self, z: &Zone, ctx: &Ctx) {
        let deep = self.sw.on(SpbSwitch::DefragDeep);
        let mut i = NIL;
        for full in 0..NR_FULLNESS {
            i = z.spb_lists.heads[Category::Tainted as usize][full];
            while i != NIL {
                if deep && z.spbs[i as usize].movable_pages() > 0 {
                    self.zones[ctx.zone_id as usize].defrag_deep[i as usize] = true;
                }
                self.maybe_start_defrag(ctx.zone_id, z, i, ctx.now_ns);
                i = z.spbs[i as usize].list_next;
            }
        }
        let _ = i;
    }

    /// Whether [`SpbPolicy::after_alloc`] can do anything for an allocation at `pfn`: it
    /// records the taints among `changes`, and acts only in a tainted SPB.
    #[inline(always)]
    pub fn after_alloc_needed(&self, z: &Zone, pfn: Pfn, changes: &[CategoryChange]) -> bool {
        !changes.is_empty() || z.spbs[z.spb_idx(pfn)].category == Category::Tainted
    }

    /// After a successful allocation: record taints, trigger defrag and slab shrink (15, 28).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub fn after_alloc(
        &mut self,
        z: &mut Zone,
        ctx: &mut Ctx,
        pfn: Pfn,
        order: u8,
        mt: MigrateType,
        gfp: Gfp,
        changes: &[CategoryChange],
    ) {
        for c in changes {
            if c.to == Category::Tainted && c.from != Category::Tainted {
                if let Some(e) = self
                    .taint_causes
                    .iter_mut()
                    .find(|e| e.0 == gfp && e.1 == order)
                {
                    e.2 += 1;
                } else {
                    self.taint_causes.push((gfp, order, 1));
                }
            }
        }
        let si = z.spb_idx(pfn) as u32;
        let s = &z.spbs[si as usize];
        if s.category != Category::Tainted {
            return;
        }
        let pbp = z.geo.pageblock_pages();
        if mt != MigrateType::Movable
            && self.sw.on(SpbSwitch::SlabShrink)
            && s.alloc_pages[2] > 0
            && s.free_pages < tainted_reserve(s) as u64 * pbp
        {
            let last = &mut self.zones[ctx.zone_id as usize].shrink_ns[si as usize];
            if *last == 0 || ctx.now_ns >= *last + SLAB_SHRINK_INTERVAL_NS {
                *last = ctx.now_ns.max(1);
                self.queue(Work::SlabShrink {
                    zone: ctx.zone_id,
                    spb: si,
                });
                ctx.vm.inc(Vm::SpbSlabShrinks);
            }
        }
        self.maybe_start_defrag(ctx.zone_id, z, si, ctx.now_ns);
    }

    /// Compaction may not scan a tainted SPB without movable pages (38).
    pub fn compaction_source_ok(&self, z: &Zone, pfn: Pfn) -> bool {
        if !self.sw.on(SpbSwitch::CompactionSpb) {
            return true;
        }
        let s = &z.spbs[z.spb_idx(pfn)];
        !(s.category == Category::Tainted && s.movable_pages() == 0)
    }

    /// Compaction may not take targets from a tainted SPB's reserve (39), and prefers to keep
    /// movable pages out of tainted SPBs (16).
    pub fn compaction_target_ok(&self, z: &Zone, pfn: Pfn) -> bool {
        if self.target_reserve_applies(z, z.spb_idx(pfn)) {
            // spb-next (`compact_fragments`): the reserve counts free pageblocks, and filling
            // the free fragments of a partly used movable pageblock takes none of them
            let pb = z.pb(pfn);
            return self.sw.on(SpbSwitch::CompactFragments)
                && pb.migratetype() == MigrateType::Movable
                && (pb.free as u64) < z.geo.pageblock_pages();
        }
        true
    }
    /// Whether some pageblock of SPB `si` may pass [`Self::compaction_target_ok`]: not when
    /// the SPB is a tainted one at its reserve (and `compact_fragments` is off).
    pub fn compaction_spb_ok(&self, z: &Zone, si: usize) -> bool {
        !self.target_reserve_applies(z, si) || self.sw.on(SpbSwitch::CompactFragments)
    }
    /// SPB `si` is a tainted one at or below its reserve, and the reserve rule (39) is on.
    fn target_reserve_applies(&self, z: &Zone, si: usize) -> bool {
        let s = &z.spbs[si];
        self.sw.on(SpbSwitch::TaintedReserve)
            && s.category == Category::Tainted
            && s.pb_free <= tainted_reserve(s)
    }
}

fn zone_state(z: &Zone) -> ZoneState {
    let n = z.spbs.len();
    ZoneState {
        hint: vec![[NIL; 3]; z.geo.nr_orders()],
        owned: Vec::new(),
        owned_gen: Vec::new(),
        lost: (0..n as u32)
            .filter(|&i| z.spbs[i as usize].is_pinned() || z.spbs[i as usize].has_hole())
            .collect(),
        defrag_noop_ns: vec![0; n],
        defrag_queued: vec![false; n],
        defrag_deep: vec![false; n],
        shrink_ns: vec![0; n],
        nonmovable_peak: 0,
        thp_moved: 0,
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

/// SPB start pfns ordered for a 1 GiB contiguous request: emptiest clean or empty first (17).
/// With `clean` (spb-next `contig_clean_first`: each SPB's clean page cache, by SPB from the
/// first, [`crate::env::Env::clean_cache_by_range`]) "emptiest" counts the pages that need a
/// migration target: movable pages less the clean cache dropped in place.
pub fn contig_candidates(z: &Zone, clean: &[u64]) -> Vec<Pfn> {
    let mut v: Vec<(u64, u64, Pfn)> = z
        .spbs
        .iter()
        .filter(|s| !s.is_lost() && !s.contig_allocated)
        .map(|s| {
            let c = clean.get(z.spb_idx(s.start_pfn)).copied().unwrap_or(0);
            let need = s.movable_pages().saturating_sub(c);
            (need, u64::MAX - s.free_pages, s.start_pfn)
        })
        .collect();
    v.sort();
    v.into_iter().map(|x| x.2).collect()
}

/// The index of the first entry of `list` at or after `from` whose pageblock has a free page,
/// or `list.len()`.
fn next_with_free(z: &Zone, list: &VecDeque<(Pfn, u32)>, from: usize) -> usize {
    let has = |&(p, _): &(Pfn, u32)| z.pb_has_free(z.pb_idx(p));
    let (a, b) = list.as_slices();
    if from < a.len() {
        if let Some(i) = a[from..].iter().position(has) {
            return from + i;
        }
    }
    let s = from.max(a.len()) - a.len();
    b[s..]
        .iter()
        .position(has)
        .map_or(list.len(), |i| a.len() + s + i)
}

/// Move free blocks of `order` (splitting larger free buddies) of the pageblock at `b` onto
/// `cpu`'s list, up to `n`; returns how many.
fn harvest_block(z: &mut Zone, b: Pfn, cpu: usize, order: u8, mt: MigrateType, n: u64) -> u64 {
    let span = z.pb_span(b);
    let mut got = 0;
    let mut p = span.start;
    while p < span.end && got < n {
        // the entries the match below would only step over, in one go
        p += z.plain_run(p, span.end);
        if p >= span.end {
            break;
        }
        let m = *z.page(p);
        match m.state {
            crate::page::PageState::Free
                if m.order >= order && m.order <= z.geo.pageblock_order =>
            {
                let q = z.take_and_expand(p, order, mt);
                z.account(
                    q,
                    1u64 << order,
                    crate::pageblock::Acct::Free,
                    crate::pageblock::Acct::Pcp,
                );
                z.pcp_push(cpu, q, order, mt, true);
                got += 1;
                p += 1u64 << order;
            }
            crate::page::PageState::Free
            | crate::page::PageState::Alloc
            | crate::page::PageState::Pcp
            | crate::page::PageState::Isolated => p += 1u64 << m.order,
            _ => p += 1,
        }
    }
    got
}

#[cfg(test)]
mod harvest_tests {
    use super::*;
    use crate::env::NoEnv;
    use crate::gfp::Gfp;
    use crate::layout::{MemoryLayout, PfnRange, ZoneKind, ZoneSpec};
    use crate::policy::Policy;
    use crate::{AllocRequest, Allocator, Config, Geometry, PolicyConfig, PolicyKind};
    use alloc::format;
    use alloc::vec;

    /// Phase 0 as it was before [`Zone::pb_has_free`]: every entry's pageblock record is
    /// loaded, stale entries are dropped at their first visit.
    fn harvest_owned_walk(
        z: &mut Zone,
        zs: &mut ZoneState,
        cpu: usize,
        order: u8,
        mt: MigrateType,
        n: u64,
    ) -> u64 {
        let Some(list) = zs.owned.get_mut(cpu) else {
            return 0;
        };
        let gens = &zs.owned_gen;
        let mut got = 0;
        let mut misses = 0;
        for _ in 0..list.len() {
            if got >= n || misses >= HARVEST_MISS_BUDGET {
                break;
            }
            let Some((b, gen)) = list.pop_front() else {
                break;
            };
            let pb = *z.pb(b);
            if pb.owner != cpu as u16 + 1 || gens.get(z.pb_idx(b)) != Some(&gen) {
                continue;
            }
            list.push_back((b, gen));
            if pb.migratetype() != mt || pb.is_isolated() || (pb.free as u64) < (1u64 << order) {
                continue;
            }
            let before = got;
            got += harvest_block(z, b, cpu, order, mt, n - got);
            if got == before {
                misses += 1;
            }
        }
        got
    }

    /// The live entries of `cpu`'s owned list, in order (what Phase 0 acts on).
    fn live(z: &Zone, zs: &ZoneState, cpu: usize) -> Vec<(Pfn, u32)> {
        zs.owned.get(cpu).map_or(Vec::new(), |l| {
            l.iter()
                .copied()
                .filter(|&(b, g)| {
                    z.pb(b).owner == cpu as u16 + 1 && zs.owned_gen.get(z.pb_idx(b)) == Some(&g)
                })
                .collect()
        })
    }

    /// A zone's whole state, for equality (pages, pageblocks, SPBs, per-CPU and free lists).
    fn zone_state(z: &Zone) -> alloc::string::String {
        format!(
            "{:?} {:?} {:?} {:?} {} {:?}",
            z.pages,
            z.pageblocks,
            z.spbs,
            z.pcp,
            crate::test_support::zone_private_state(z),
            z.pb_has_free
        )
    }

    /// Phase 0 with the has-free bitmap takes the same blocks onto the same per-CPU lists,
    /// leaves the zone in the same state and the owned list's live entries in the same order
    /// as the walk that loads every pageblock record. Two allocators go through the same
    /// random allocations and frees over four CPUs; every 40 operations one runs Phase 0,
    /// the other the old walk, with the same arguments, and their states are compared (the
    /// checker, run on every operation, recounts the bitmap).
    #[test]
    fn harvest_owned_matches_the_walk() {
        let g = Geometry::TINY;
        let s = g.spb_pages();
        let layout = MemoryLayout {
            geometry: g,
            zones: vec![ZoneSpec::plain(
                ZoneKind::Normal,
                PfnRange::new(s, s + 4 * s),
            )],
        };
        let new = || {
            Allocator::new(
                &layout,
                Config {
                    policy: PolicyConfig::of(PolicyKind::Spb),
                    check_every: 1,
                    nr_cpus: 4,
                    ..Config::default()
                },
            )
            .unwrap()
        };
        let (mut a, mut b) = (new(), new());
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut rnd = |m: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % m
        };
        let gfps = [
            Gfp::KERNEL,
            Gfp::KERNEL | Gfp::RECLAIMABLE,
            Gfp::HIGHUSER_MOVABLE,
        ];
        let mut held: Vec<(Pfn, u8)> = Vec::new();
        let (mut compared, mut harvested, mut skipped) = (0u64, 0u64, 0u64);
        for step in 0..6000u32 {
            if rnd(100) < 55 || held.is_empty() {
                let order = [0u8, 0, 0, 1, 2][rnd(5) as usize];
                let req = AllocRequest::new(order, gfps[rnd(3) as usize]).cpu(rnd(4) as u16);
                let (pa, pb) = (a.alloc(req, &mut NoEnv), b.alloc(req, &mut NoEnv));
                assert_eq!(pa, pb);
                if let Ok(p) = pa {
                    held.push((p, order));
                }
            } else {
                let (p, order) = held.swap_remove(rnd(held.len() as u64) as usize);
                let cpu = rnd(4) as u16;
                a.free(p, order, cpu).unwrap();
                b.free(p, order, cpu).unwrap();
            }
            if step % 40 != 0 {
                continue;
            }
            for cpu in 0..4 {
                for (order, mt) in [
                    (0, MigrateType::Unmovable),
                    (0, MigrateType::Reclaimable),
                    (0, MigrateType::Movable),
                    (1, MigrateType::Unmovable),
                    (2, MigrateType::Movable),
                ] {
                    let n = 1 + rnd(12);
                    let (Policy::Spb(pa), Policy::Spb(pb)) = (&mut a.policy, &mut b.policy) else {
                        unreachable!("both run spb")
                    };
                    let (za, zb) = (&mut a.zones[0], &mut b.zones[0]);
                    skipped += pa.zones[0].owned.get(cpu).map_or(0, |l| {
                        l.iter()
                            .filter(|&&(p, _)| !za.pb_has_free(za.pb_idx(p)))
                            .count() as u64
                    });
                    let got = pa.harvest_owned(za, 0, cpu, order, mt, n);
                    let want = harvest_owned_walk(zb, &mut pb.zones[0], cpu, order, mt, n);
                    let at = format!("step {step} cpu {cpu} order {order} {mt:?}");
                    assert_eq!(got, want, "{at}");
                    assert_eq!(zone_state(za), zone_state(zb), "{at}: zone state");
                    assert_eq!(
                        live(za, &pa.zones[0], cpu),
                        live(zb, &pb.zones[0], cpu),
                        "{at}: owned list order"
                    );
                    compared += 1;
                    harvested += got;
                }
            }
            a.check().unwrap();
            b.check().unwrap();
        }
        // the comparison saw harvests and entries the bitmap let go round unread
        assert!(
            compared > 500 && harvested > 0 && skipped > 0,
            "{compared} {harvested} {skipped}"
        );
    }
}
