//! The superpageblock policy: its state, its hooks into the allocator, and the 1 GiB steering.
//! Steer non-movable allocations into SPBs that are already tainted, movable ones into the
//! fullest clean SPB, refuse fragmenting fallbacks for callers with a cheap alternative, and
//! evacuate movable pages out of tainted SPBs in the background.
//!
//! The parts live beside this module: the walk that picks an SPB for every request
//! (`spb_walk`), per-CPU pageblock ownership (`spb_pcp`), the background work
//! (`spb_work`), the refusal rule ([`super::spb_gfp`]), the switches
//! ([`super::spb_switches`]) and spb-next's additions (`spb_highorder`, `spb_contig`,
//! `spb_fit`, `spb_steal`).

use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;

use crate::geometry::Pfn;
use crate::gfp::{AllocFlags, Gfp};
use crate::layout::ZoneKind;
use crate::migratetype::MigrateType;
use crate::page::NIL;
use crate::superpageblock::{Category, SpbMeta, NR_FULLNESS};
use crate::vmstat::{Vm, WalkHistogram};
use crate::zone::{CategoryChange, Zone};

use super::spb_gfp::{has_cheap_fallback, CheapFallbackRule};
use super::Ctx;

pub use super::spb_pcp::HARVEST_MISS_BUDGET;
pub use super::spb_switches::{SpbSwitch, SpbSwitches};

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

/// Whether zone `z` holds an SPB that the tainted SPBs' reserve protects: a clean or empty SPB
/// not lost for good (reservations or holes keep an SPB lost for good from ever being a 1 GiB
/// page, tainted or not). Stops at the first such SPB on the two category lists; the SPBs
/// lost for good are the few at a zone's edges, so this visits a handful at most.
pub(crate) fn zone_has_protected(z: &Zone) -> bool {
    [Category::Clean, Category::Empty].iter().any(|&cat| {
        (0..NR_FULLNESS).any(|full| {
            let mut i = z.spb_lists.heads[cat as usize][full];
            while i != NIL {
                if !z.spb_lost_for_good(i as usize) {
                    return true;
                }
                i = z.spbs[i as usize].list_next;
            }
            false
        })
    })
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
    /// SPBs lost for good to reservations or holes ([`Zone::spb_lost_for_good`]: memory
    /// waiting for deferred init is not a hole), refreshed when the zone's growth turns holes
    /// into memory.
    pub(crate) lost: Vec<u32>,
    /// spb-next `pin_migrate`: the clean SPB that takes long-term pins when no tainted or lost
    /// SPB has room ([`NIL`]: none yet), so that pins gather in a few clean SPBs instead of
    /// reaching every one. Chosen fullest first, kept while it has room.
    ///
    /// # Invariants
    /// - [`NIL`] or the index of one of the zone's SPBs.
    pub(crate) pin_spb: u32,
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
    /// spb-next `defrag_undone`: per SPB, its movable pages when its last defrag run ended and
    /// the pages that run moved ((0, 0) before any run; the pages moved are 0 after a run the
    /// rule skipped, so the next one is not skipped).
    pub(crate) defrag_last: Vec<(u64, u64)>,
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
    /// The evacuation running now is the high-order supply's (it is to make a free pageblock;
    /// spb-next `supply_keep_blocks`).
    ///
    /// # Invariants
    /// - false outside that evacuation (set and cleared around it).
    pub(crate) making_pageblock: bool,
    /// spb-next `refill_one_taint`: the SPB (zone, spb) that the per-CPU refill running now
    /// took its first page from while it was not tainted; the refill's later pages may come
    /// from it too.
    ///
    /// # Invariants
    /// - None outside a refill (set and cleared inside `pcp_refill_owned`).
    pub(crate) refill_spb: Option<(u8, u32)>,
    /// spb-next `evacuate_before_empty` refused an empty SPB in the zone the zonelist walk
    /// just tried: the lower zones are walked for their tainted or lost SPBs only, so that a
    /// clean or empty SPB there is not tainted instead and the slow path evacuates (taken by
    /// [`Policy::lower_zones_no_taint`]).
    ///
    /// # Invariants
    /// - false between allocations (set inside a zone's walk, taken right after it).
    ///
    /// [`Policy::lower_zones_no_taint`]: super::Policy::lower_zones_no_taint
    pub(crate) evacuate_first: bool,
    /// The SPB whose defrag run is running now: (zone, spb). Its `defrag_queued` flag stays set
    /// while it runs (the run is taken off the queue first), so the checker accepts it.
    pub(crate) defrag_running: Option<(u8, u32)>,
    /// spb-next `reserve_needs_clean`, by zone kind: neither the zone nor a zone above it holds
    /// an SPB the tainted SPBs' reserve protects ([`zone_has_protected`]), as of the last
    /// background call (`spb_work::refresh_protected`); false until then.
    pub(crate) protects_none: [bool; ZoneKind::ALL.len()],
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
            making_pageblock: false,
            refill_spb: None,
            evacuate_first: false,
            defrag_running: None,
            protects_none: [false; ZoneKind::ALL.len()],
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
            st.defrag_last.resize(n, (0, 0));
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
    pub(super) fn contig_target(
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

    /// Queue background work once (a queued item is not queued again).
    pub(crate) fn queue(&mut self, w: Work) {
        if !self.work.contains(&w) {
            self.work.push(w);
        }
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
        let pbp = z.geo.pageblock_pages();
        // spb-next `defrag_start_gate`: a run whose stop test already holds would stop at once
        // and start the no-progress cooldown
        let wanted = self.needs_defrag(s, pbp)
            && !(self.sw.on(SpbSwitch::DefragStartGate) && self.defrag_done(s, pbp, false));
        if deep || wanted {
            self.zones[zone as usize].defrag_queued[i as usize] = true;
            self.work.push(Work::Defrag { zone, spb: i });
        }
    }

    /// The last-chance trigger of patch 28: before tainting a fresh SPB, try to start defrag on
    /// every tainted SPB (bounded by the number of tainted SPBs).
    pub(super) fn last_chance_defrag(&mut self, z: &Zone, ctx: &Ctx) {
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
    /// spb-next `pin_migrate`: whether a long-term pin of the allocated block at `pfn` of zone
    /// `zi` should first move it: its SPB is clean, lost to nothing, and not the zone's pin SPB.
    pub fn pin_should_migrate(&self, zi: crate::zone::ZoneId, z: &Zone, pfn: Pfn) -> bool {
        let si = z.spb_idx(pfn);
        let m = &z.spbs[si];
        self.sw.on(SpbSwitch::PinMigrate)
            && m.category == Category::Clean
            && !m.is_lost()
            && self.zones.get(zi).is_none_or(|s| s.pin_spb != si as u32)
    }

    /// spb-next `pin_make_room`: the zone's pin SPB, when a long-term pin of a block of
    /// `order` from SPB `from` would find no free block for it there (none of `order` or
    /// more; below the pageblock order none that is not a piece of a free pageblock), so that
    /// room should be made in it first. None: the switch is off, the zone has no pin SPB (or
    /// it is no longer clean, or is `from`), or it has room.
    pub fn pin_room_spb(
        &self,
        zi: crate::zone::ZoneId,
        z: &Zone,
        order: u8,
        from: u32,
    ) -> Option<u32> {
        let ps = self.zones.get(zi)?.pin_spb;
        if !self.sw.on(SpbSwitch::PinMakeRoom) || ps == NIL || ps == from {
            return None;
        }
        let s = &z.spbs[ps as usize];
        if s.category != Category::Clean || s.is_lost() {
            return None;
        }
        // what the pin target's walk takes there (`movable_in_pin_spb`)
        let room = Self::fragment_fits(z, ps, order)
            && z.areas[ps as usize]
                .smallest_from(order as usize, MigrateType::Movable.idx())
                .is_some();
        (!room).then_some(ps)
    }

    /// SPB `si` is a tainted one at or below its reserve, and the reserve rule (39) is on.
    fn target_reserve_applies(&self, z: &Zone, si: usize) -> bool {
        let s = &z.spbs[si];
        s.category == Category::Tainted && s.pb_free <= tainted_reserve(s) && self.reserve_on(z)
    }

    /// Whether the tainted SPBs of zone `z` keep their reserve (23/39): the switch is on and,
    /// with spb-next's `reserve_needs_clean`, `z` or a zone whose requests fall back into it
    /// holds an SPB the reserve protects ([`SpbPolicy::protects_none`]). The zones above count: a
    /// non-movable request of the Normal zone takes DMA32's room before it fragments a clean
    /// Normal SPB, so DMA32's reserve protects Normal's clean SPBs too.
    #[inline]
    pub(crate) fn reserve_on(&self, z: &Zone) -> bool {
        self.sw.on(SpbSwitch::TaintedReserve)
            && !(self.sw.on(SpbSwitch::ReserveNeedsClean) && self.protects_none[z.kind as usize])
    }
}

fn zone_state(z: &Zone) -> ZoneState {
    let n = z.spbs.len();
    ZoneState {
        hint: vec![[NIL; 3]; z.geo.nr_orders()],
        owned: Vec::new(),
        owned_gen: Vec::new(),
        lost: (0..n as u32)
            .filter(|&i| z.spb_lost_for_good(i as usize))
            .collect(),
        pin_spb: NIL,
        defrag_noop_ns: vec![0; n],
        defrag_queued: vec![false; n],
        defrag_last: vec![(0, 0); n],
        defrag_deep: vec![false; n],
        shrink_ns: vec![0; n],
        nonmovable_peak: 0,
        thp_moved: 0,
    }
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
