//! What a workload component sees of the simulator: the [`Component`] trait and its narrow
//! context [`Ctx`].
//!
//! A component (`workload/`) owns its run-time state and reacts to its own events. It works
//! through a [`Ctx`] lent by the simulator for one call: the allocation helpers (the allocator
//! itself is not reachable), the world's objects/holders/slab API, the event queue (events of
//! this component only), the component's random stream, the counters and the fixed facts of
//! the run. The context is a handful of borrows built on the stack for each event: no
//! allocation.
//!
//! Layering: this module depends on `world`, `queue`, `rng`, `slab` and the scenario types,
//! never on the simulator (`sim/mod.rs`) or on `workload/`; the simulator owns the components
//! as `Box<dyn Component>` and builds them through `workload::build`.

use spb_alloc::{AllocRequest, Allocator, Geometry, Gfp};

use super::queue::{Ev, Queue};
use super::rng::Rng;
use super::slab::{slab_attempts, CACHES, NONE};
use super::world::slab::SlabRef;
use super::world::{kind, World};
use crate::scenario::{KswapdModel, Scenario};

/// Time allocator calls (set SPB_LAB_PROFILE at build time; off in normal builds).
pub const PROFILE: bool = option_env!("SPB_LAB_PROFILE").is_some();

/// The start time of a profiled allocator call (None unless [`PROFILE`]).
#[inline(always)]
pub fn prof_start() -> Option<std::time::Instant> {
    if PROFILE {
        Some(std::time::Instant::now())
    } else {
        None
    }
}

/// Counters of the simulator.
#[derive(Clone, Debug, Default)]
pub struct SimStats {
    /// Allocation requests + frees processed.
    pub events: u64,
    pub thp_fault_alloc: u64,
    pub thp_fault_fallback: u64,
    pub thp_collapse_alloc: u64,
    pub thp_collapse_alloc_failed: u64,
    /// Failed allocations: (gfp, order, count).
    pub failures: Vec<(Gfp, u8, u64)>,
    pub htlb_attempts: u64,
    pub htlb_success: u64,
    pub packets: u64,
    pub packets_dropped: u64,
    pub slab_alloc_fallbacks: u64,
    pub pagecache_folio_fallbacks: u64,
    pub processes_spawned: u64,
    pub processes_exited: u64,
    pub mmap_enomem: u64,
    pub tmpfs_mounts: u64,
    /// Pages moved before a long-term pin (spb-next `pin_migrate`).
    pub pins_migrated: u64,
    pub bg_calls: u64,
    /// Allocation requests by object kind.
    pub allocs_by_kind: [u64; kind::N],
    /// Wall nanoseconds spent in allocator calls (alloc, free, background), when profiling.
    pub prof_alloc_ns: u64,
    pub prof_free_ns: u64,
    pub prof_bg_ns: u64,
    /// The bill: direct work per request, failures by kind, optional requests' fallbacks.
    pub bill: crate::cost::CostAcc,
}

impl SimStats {
    /// One call of the allocator's background work (`f`): counted in `bg_calls`, and timed in
    /// `prof_bg_ns` when profiling.
    #[inline]
    pub fn background_call<R>(&mut self, f: impl FnOnce() -> R) -> R {
        self.bg_calls += 1;
        let t0 = prof_start();
        let r = f();
        if let Some(t0) = t0 {
            self.prof_bg_ns += t0.elapsed().as_nanos() as u64;
        }
        r
    }
    pub fn note_failure(&mut self, gfp: Gfp, order: u8) {
        for f in self.failures.iter_mut() {
            if f.0 == gfp && f.1 == order {
                f.2 += 1;
                return;
            }
        }
        self.failures.push((gfp, order, 1));
    }
}

/// A workload component: the run-time state of one scenario workload.
pub trait Component {
    /// The component's start time has come (called once).
    fn start(&mut self, cx: &mut Ctx);
    /// One of the component's own events (scheduled with [`Ctx::at`]).
    fn handle(&mut self, cx: &mut Ctx, ev: Ev);
    /// Holder `h` of this component (holder flags `flags`) was killed by the OOM killer.
    fn killed(&mut self, _cx: &mut Ctx, _h: u32, _flags: u8) {}
}

/// The context of one call into a component (or into a kernel-thread step of the lab such as
/// khugepaged, or boot, with the component fields set to the global values).
pub struct Ctx<'a> {
    /// Reached only through the allocation helpers below.
    a: &'a mut Allocator,
    q: &'a mut Queue,
    /// Objects, holders, slab caches, page cache.
    pub w: &'a mut World,
    pub st: &'a mut SimStats,
    /// The component's own random stream.
    pub rng: &'a mut Rng,
    pub sc: &'a Scenario,
    /// Virtual time of the event.
    pub now: u64,
    /// End of the run.
    pub end: u64,
    /// RAM of the machine in bytes (what `%` sizes refer to).
    pub ram: u64,
    pub cpus: u16,
    pub geo: Geometry,
    /// The component's index (the `comp` of its holders and events).
    pub comp: u16,
    /// The component's active window `[start, stop)`.
    pub start: u64,
    pub stop: u64,
}

impl<'a> Ctx<'a> {
    /// A context over the simulator's parts (the simulator builds it; component fields are
    /// those of `comp`).
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(super) fn new(
        a: &'a mut Allocator,
        q: &'a mut Queue,
        w: &'a mut World,
        st: &'a mut SimStats,
        rng: &'a mut Rng,
        sc: &'a Scenario,
        facts: (u64, u64, u64, u16, Geometry),
        comp: (u16, u64, u64),
    ) -> Ctx<'a> {
        let (now, end, ram, cpus, geo) = facts;
        let (comp, start, stop) = comp;
        Ctx {
            a,
            q,
            w,
            st,
            rng,
            sc,
            now,
            end,
            ram,
            cpus,
            geo,
            comp,
            start,
            stop,
        }
    }

    /// Schedule an event of this component at time `t`.
    #[inline]
    pub fn at(&mut self, t: u64, op: u8, a: u32, gen: u32) {
        self.q.push(t, self.comp, op, a, gen);
    }

    /// Whether the component is active now.
    #[inline]
    pub fn active(&self) -> bool {
        self.now >= self.start && self.now < self.stop
    }

    /// The THP order (the pageblock order).
    #[inline]
    pub fn thp_order(&self) -> u8 {
        self.geo.pageblock_order
    }

    /// Pages of one THP.
    #[inline]
    pub fn thp_pages(&self) -> u32 {
        1 << self.geo.pageblock_order
    }

    /// A request for object `id` failed: release the object and count the failure (the
    /// failure counters and the bill's failures by caller kind).
    fn failed(&mut self, id: u32, gfp: Gfp, order: u8, k: u8) {
        self.w.release_obj(id);
        self.st.note_failure(gfp, order);
        self.st.bill.failed_kind(kind::NAMES[k as usize]);
    }

    /// Allocate a block of `order` for holder `h` (generation `gen`; `NONE` for loose blocks)
    /// and attach it to the holder's list `which`. If the holder died meanwhile (the OOM killer
    /// ran inside the allocation), the block is freed again and None returned.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    pub fn alloc_for(
        &mut self,
        h: u32,
        gen: u32,
        order: u8,
        gfp: Gfp,
        cpu: u16,
        k: u8,
        which: u8,
    ) -> Option<u32> {
        let id = self.w.new_obj();
        self.st.events += 1;
        self.st.allocs_by_kind[k as usize] += 1;
        let req = AllocRequest {
            order,
            gfp,
            cpu,
            cookie: id,
            trylock: false,
        };
        let t0 = prof_start();
        let r = self.a.alloc(req, &mut *self.w);
        if let Some(t0) = t0 {
            self.st.prof_alloc_ns += t0.elapsed().as_nanos() as u64;
        }
        let cost = self.a.take_request_cost();
        self.st.bill.record(gfp, order, &cost, r.is_ok());
        self.kswapd_turn();
        match r {
            Ok(pfn) => {
                self.w.fill_obj(id, pfn, order, k, h);
                if h != NONE {
                    if !self.w.alive(h, gen) {
                        self.w.free_loose(id, cpu);
                        return None;
                    }
                    self.w.attach(id, h, which);
                }
                Some(id)
            }
            Err(_) => {
                self.failed(id, gfp, order, k);
                None
            }
        }
    }

    /// kswapd's turn right after a request that woke it, when the scenario's kswapd runs
    /// on wake-up ([`KswapdModel::OnWake`]). It runs before the new block joins its holder,
    /// so its reclaim never takes the block the caller is about to use.
    #[inline]
    fn kswapd_turn(&mut self) {
        if self.sc.kswapd == KswapdModel::OnWake && self.a.pending().kswapd.is_some() {
            let (a, w) = (&mut *self.a, &mut *self.w);
            self.st.background_call(|| a.kswapd_turn(w));
        }
    }

    /// Allocate one object of slab cache `c` for the caller mask `gfp`: a partial slab first,
    /// else a new slab page the way SLUB asks for it.
    pub fn kobj_alloc(&mut self, c: u16, gfp: Gfp, cpu: u16) -> Option<SlabRef> {
        if let Some(s) = self.w.slab_take_room(c) {
            return Some(s);
        }
        let spec = &CACHES[c as usize];
        let mut mask = gfp.with(Gfp::COMP);
        if spec.reclaimable {
            mask = mask.with(Gfp::RECLAIMABLE);
        }
        let maxo = self.geo.max_order;
        let attempts = slab_attempts(mask, spec.order.min(maxo), spec.min_order().min(maxo));
        // the failed high-order try, linked to its fallback's outcome
        let mut link = None;
        for (i, &(order, g)) in attempts.iter().enumerate() {
            if i == 1 {
                self.st.slab_alloc_fallbacks += 1;
                // optional only when the first try was above the minimum order
                let l = (attempts[0].0 > order).then(|| {
                    self.st
                        .bill
                        .optional_failed(crate::cost::OptionalKind::SlabHighOrder)
                });
                // reclaim inside the first attempt may have made room
                if let Some(s) = self.w.slab_take_room(c) {
                    if let Some(l) = l {
                        self.st.bill.fallback_done(l, true);
                    }
                    return Some(s);
                }
                link = l;
            }
            if let Some(id) = self.alloc_for(NONE, 0, order, g, cpu, kind::SLAB, 0) {
                if let Some(l) = link.take() {
                    self.st.bill.fallback_done(l, true);
                }
                return Some(self.w.slab_new(c, id));
            }
        }
        if let Some(l) = link {
            self.st.bill.fallback_done(l, false);
        }
        None
    }

    /// Allocate a slab object held by holder `h`.
    pub fn kobj_for(&mut self, h: u32, gen: u32, c: u16, gfp: Gfp, cpu: u16) -> bool {
        let Some(s) = self.kobj_alloc(c, gfp, cpu) else {
            return false;
        };
        if !self.w.alive(h, gen) {
            self.w.slab_put(s, cpu);
            return false;
        }
        self.w.holders[h as usize].kobjs.push(s);
        true
    }

    /// One contiguous allocation of `order` with `gfp` (migrating movable pages, dropping
    /// clean page cache), recorded as a loose object of kind `k` (the caller attaches it).
    pub fn alloc_contig(&mut self, order: u8, gfp: Gfp, k: u8) -> Option<u32> {
        let id = self.w.new_obj();
        self.st.events += 1;
        let r = self.a.alloc_contig(order, gfp, id, &mut *self.w);
        // the bill: a contiguous request's direct work is the pages it migrated, the pages
        // reclaimed for their targets and the clean page cache it reclaimed in its range
        let c = self.a.take_request_cost();
        self.st.bill.record_contig(&c, r.is_ok());
        match r {
            Ok(pfn) => {
                self.w.fill_obj(id, pfn, order, k, NONE);
                Some(id)
            }
            Err(_) => {
                self.failed(id, gfp, order, k);
                None
            }
        }
    }

    /// Take a long-term pin on the page object `id` (`FOLL_LONGTERM`): the allocator may first
    /// move it out of a clean SPB (spb-next `pin_migrate`; [`Allocator::longterm_pin`]), then
    /// the object is marked pinned wherever it lives.
    pub fn pin_longterm(&mut self, id: u32) {
        let o = self.w.objs[id as usize];
        if self.a.longterm_pin(o.pfn as spb_alloc::Pfn, &mut *self.w) {
            self.st.pins_migrated += 1u64 << o.order;
        }
        self.w.objs[id as usize].flags |= super::world::flag::PINNED;
    }

    /// Beyond vm.dirty_ratio, writers write back the oldest dirty files synchronously.
    pub fn balance_dirty(&mut self) {
        let limit = (self.ram as f64 / 4096.0 * self.sc.vm.dirty_ratio / 100.0) as u64;
        if self.w.dirty_pages <= limit {
            return;
        }
        let mut h = self.w.lru_head;
        while h != NONE && self.w.dirty_pages > limit * 3 / 4 {
            let next = self.w.holders[h as usize].lru_next;
            self.w.clean_file(h);
            h = next;
        }
    }
}
