//! The public allocator: construction, the fast path, `rmqueue`, freeing, splitting, growing.

use alloc::vec::Vec;

use crate::env::{Env, FreedBlock};
use crate::error::{AllocError, AllocErrorKind, FreeError, GrowError, LabelError};
use crate::event::EventLog;
use crate::geometry::{Geometry, Pfn};
use crate::gfp::{AllocFlags, Gfp};
use crate::layout::{LayoutError, MemoryLayout, PfnRange, ZoneKind};
use crate::migratetype::MigrateType;
use crate::page::{PageMeta, PageState};
use crate::pageblock::Acct;
use crate::policy::{mainline, Ctx, Policy, PolicyConfig, RmqueueMode};
use crate::vmstat::{Vm, VmStat};
use crate::watermark::{setup_watermarks, WatermarkConfig};
use crate::zone::{Zone, ZoneId, WMARK_HIGH};

/// Allocator configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub policy: PolicyConfig,
    /// Simulated CPUs (each has its own per-CPU lists).
    pub nr_cpus: usize,
    /// Use per-CPU lists (off: every request goes to the buddy lists).
    pub pcp: bool,
    pub watermarks: WatermarkConfig,
    /// Run the invariant checker every N operations (0 = never).
    pub check_every: u64,
    /// Record events in the event log (bounded to this many; 0 = off).
    pub event_capacity: usize,
    /// Bound on slow-path retries for __GFP_NOFAIL (a simulator must terminate).
    pub nofail_retries: u32,
    /// vm.compaction_proactiveness.
    pub compaction_proactiveness: u64,
    /// vm.extfrag_threshold.
    pub extfrag_threshold: i64,
    /// Serve per-CPU list hits through the short path of `fastpath.rs` (default on).
    /// Results are identical either way; off forces every request through the full path
    /// (for the equivalence tests and for profiling the full path).
    pub fast_path: bool,
    /// How frees tune and trim the per-CPU lists (mainline's `free_frozen_page_commit` by
    /// default; see [`crate::pcp::PcpFreeTuning`]).
    pub pcp_free_tuning: crate::pcp::PcpFreeTuning,
    /// Compaction's skip hints (`PB_compact_skip`, module `compaction::skip`): scanners pass
    /// over pageblocks an earlier walk found of no use until kswapd sleeps or deferral
    /// restarts. On by default; off is the model before 2026-12-05.
    pub compaction_skip_hints: bool,
    /// The async free scanner's stride (`isolate_freepages`): async direct compaction reads
    /// one entry in 32 of a pageblock, every entry of the pageblock after one that gave free
    /// pages, and doubles the stride (up to 32) after one that gave none. Off by default (every
    /// entry read): measured on two scenarios only (RESULTS.md, the skip-hint note), where it
    /// helps thp-challenge and hurts pagecache-churn.
    pub compaction_async_stride: bool,
    /// How much kswapd asks reclaim for per round: the high watermark of every zone it
    /// balances (at least 32 pages each), as the kernel's `kswapd_shrink_node` sets
    /// `nr_to_reclaim` (default on), or (off, the model before 2026-12-06 night) only the zones'
    /// deficit below their high watermark. Every reclaim pass shrinks slab by a fraction of
    /// each cache whatever the pages it asks for, so many small rounds shrink more slab than
    /// the kernel's few large ones.
    pub kswapd_reclaims_high_watermark: bool,
    /// Compaction capture (`compaction_capture`): a direct compaction ends as soon as the
    /// frees of the folios it moved make a free block of the requested order (the kernel
    /// hands such a block to the compacting task from `__free_one_page` and stops the run),
    /// instead of finishing the pageblock. On by default; off is the model before
    /// 2026-12-07, which only stopped at pageblock boundaries.
    pub compaction_capture: bool,
    /// Skip-on-failure (`compaction_skip_on_failure`): async direct compaction moves an
    /// order-aligned chunk of a pageblock only if every folio in it would isolate (the
    /// kernel's `isolate_migratepages_block` puts the chunk's isolated folios back at the
    /// first failure and goes on at the next chunk), instead of moving every movable folio.
    /// On by default; off is the model before 2026-12-07 (second session).
    pub compaction_skip_on_failure: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            policy: PolicyConfig::vanilla(),
            nr_cpus: 2,
            pcp: true,
            watermarks: WatermarkConfig::default(),
            check_every: 0,
            event_capacity: 0,
            nofail_retries: 64,
            compaction_proactiveness: 20,
            extfrag_threshold: 500,
            fast_path: true,
            pcp_free_tuning: crate::pcp::PcpFreeTuning::Mainline,
            compaction_skip_hints: true,
            compaction_async_stride: false,
            kswapd_reclaims_high_watermark: true,
            compaction_capture: true,
            compaction_skip_on_failure: true,
        }
    }
}

/// One allocation request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AllocRequest {
    pub order: u8,
    pub gfp: Gfp,
    /// The CPU allocating (selects per-CPU lists).
    pub cpu: u16,
    /// The embedder's tag, handed back in migration callbacks.
    pub cookie: u32,
    /// Lockless/trylock entry point (alloc_pages_nolock): fast path only.
    pub trylock: bool,
}

impl AllocRequest {
    pub fn new(order: u8, gfp: Gfp) -> Self {
        AllocRequest {
            order,
            gfp,
            cpu: 0,
            cookie: 0,
            trylock: false,
        }
    }
    pub fn cpu(mut self, cpu: u16) -> Self {
        self.cpu = cpu;
        self
    }
    pub fn cookie(mut self, c: u32) -> Self {
        self.cookie = c;
        self
    }
}

/// Background work requested by the allocation paths, run by [`Allocator::background`].
#[derive(Clone, Debug, Default)]
pub struct Pending {
    /// kswapd woken with this order (None = asleep).
    pub kswapd: Option<u8>,
    /// kcompactd woken with this order.
    pub kcompactd: Option<u8>,
}

/// The allocator: a set of zones, a policy, counters.
pub struct Allocator {
    pub(crate) geo: Geometry,
    pub(crate) zones: Vec<Zone>,
    pub(crate) policy: Policy,
    pub(crate) cfg: Config,
    pub(crate) vm: VmStat,
    pub(crate) events: EventLog,
    pub(crate) pending: Pending,
    /// Virtual time (ns), advanced by the embedder through [`Allocator::background`].
    pub(crate) now_ns: u64,
    pub(crate) ops: u64,
    pub(crate) freed_scratch: Vec<FreedBlock>,
    /// Pages migrated for any reason.
    pub(crate) pages_migrated: u64,
    pub(crate) last_proactive_ns: u64,
    pub(crate) last_pcp_decay_ns: u64,
    /// Zone index to use for each highest zone kind a gfp mask allows (None = no such zone).
    pub(crate) preferred_by_kind: [Option<ZoneId>; 4],
    pub(crate) has_dma32: bool,
    /// The per-CPU hit's zone and type by gfp bits (see [`crate::fastpath`]).
    pub(crate) hit_routes: [crate::fastpath::HitRoute; 32],
    /// Direct work of the slow-path entries since the embedder last took it (the bill).
    pub(crate) req_cost: crate::cost::RequestCost,
    /// Background work by worker since the start (the bill).
    pub(crate) bg_work: crate::cost::BackgroundWork,
    /// Direct-reclaim stalls by cause since the start (the bill).
    pub(crate) stall_causes: crate::cost::StallCauses,
    /// Direct compactions by request order since the start (the bill), one entry per buddy
    /// order. Invariant: the entries' `stalls` and `success` add up to `compact_stall` and
    /// `compact_success`.
    pub(crate) compactions: Vec<crate::cost::CompactionsAtOrder>,
    /// Pages freed by reclaim outside the kernel's direct-reclaim counters: reclaim a policy
    /// asked for through `policy::Core::reclaim`, and clean page cache reclaimed in place of a
    /// migration ([`Allocator::reclaim_clean`]).
    pub(crate) policy_reclaimed: u64,
    /// True while the policy's own background workers run (inside [`Allocator::background`]):
    /// their migration targets' reclaim is the worker's, which `worker_no_reclaim` forbids.
    pub(crate) in_policy_worker: bool,
}

impl Allocator {
    /// Build an allocator over a memory layout.
    pub fn new(layout: &MemoryLayout, cfg: Config) -> Result<Allocator, LayoutError> {
        layout.validate()?;
        let geo = layout.geometry;
        if geo.max_order as usize >= crate::freelist::MAX_NR_ORDERS {
            return Err(LayoutError {
                place: "geometry".into(),
                message: "max order must be below 16".into(),
            });
        }
        let policy = Policy::new(&cfg.policy);
        let nr_cpus = cfg.nr_cpus.max(1);
        let mut zones: Vec<Zone> = layout
            .zones
            .iter()
            .map(|s| Zone::new(s, geo, policy.per_spb_lists(), nr_cpus))
            .collect::<Result<_, _>>()?;
        for z in zones.iter_mut() {
            z.pcp_free_tuning = cfg.pcp_free_tuning;
        }
        setup_watermarks(&mut zones, &cfg.watermarks);
        let events = EventLog {
            enabled: cfg.event_capacity > 0,
            capacity: cfg.event_capacity,
            ..EventLog::default()
        };
        let mut a = Allocator {
            geo,
            zones,
            policy,
            cfg,
            vm: VmStat::default(),
            events,
            pending: Pending::default(),
            now_ns: 0,
            ops: 0,
            freed_scratch: Vec::new(),
            pages_migrated: 0,
            last_proactive_ns: 0,
            last_pcp_decay_ns: 0,
            preferred_by_kind: [None; 4],
            has_dma32: false,
            hit_routes: [crate::fastpath::HitRoute::NONE; 32],
            req_cost: crate::cost::RequestCost::default(),
            bg_work: crate::cost::BackgroundWork::default(),
            stall_causes: crate::cost::StallCauses::default(),
            compactions: alloc::vec![crate::cost::CompactionsAtOrder::default(); geo.nr_orders()],
            policy_reclaimed: 0,
            in_policy_worker: false,
        };
        a.refresh_zone_tables();
        a.cfg.nr_cpus = nr_cpus;
        a.policy.init_zones(&a.zones);
        Ok(a)
    }

    // ---- the read-only inspection view (lab, CLI, tests) ------------------------------------

    /// The zones, lowest first; read-only (see the inspection methods of [`Zone`]).
    pub fn zones(&self) -> &[Zone] {
        &self.zones
    }
    pub fn geo(&self) -> Geometry {
        self.geo
    }
    /// The configuration the allocator runs with (CPU count clamped to at least 1).
    pub fn config(&self) -> &Config {
        &self.cfg
    }
    /// The vmstat counters.
    pub fn vm(&self) -> &VmStat {
        &self.vm
    }
    /// The event log (see [`Allocator::drain_events`] to consume it).
    pub fn events(&self) -> &EventLog {
        &self.events
    }
    /// Take every recorded event, oldest first.
    pub fn drain_events(&mut self) -> impl Iterator<Item = crate::event::Event> + '_ {
        self.events.drain()
    }
    /// Background work requested by the allocation paths and not yet run.
    pub fn pending(&self) -> &Pending {
        &self.pending
    }
    /// Virtual time (ns).
    pub fn now_ns(&self) -> u64 {
        self.now_ns
    }
    /// Pages migrated for any reason so far.
    pub fn pages_migrated(&self) -> u64 {
        self.pages_migrated
    }
    /// The policy (read-only: its name and inspection of its state).
    pub fn policy(&self) -> &Policy {
        &self.policy
    }
    /// The direct work done in callers' context (slow-path entries of [`Allocator::alloc`])
    /// since the last call, and reset it. Taken after each request, it is that request's
    /// direct work; all zero when the request was served on the fast path.
    pub fn take_request_cost(&mut self) -> crate::cost::RequestCost {
        core::mem::take(&mut self.req_cost)
    }
    /// Background work by worker since the allocator was built.
    pub fn background_work(&self) -> &crate::cost::BackgroundWork {
        &self.bg_work
    }
    /// Direct-reclaim stalls by cause since the allocator was built.
    pub fn stall_causes(&self) -> &crate::cost::StallCauses {
        &self.stall_causes
    }
    /// Direct compactions by request order (index = order) since the allocator was built.
    pub fn direct_compactions(&self) -> &[crate::cost::CompactionsAtOrder] {
        &self.compactions
    }
    /// Count one direct-reclaim stall of zone `preferred`: its `allocstall_*` and, in
    /// [`crate::cost::StallCauses`], the field `cause` picks (so the two always agree).
    pub(crate) fn count_stall(
        &mut self,
        preferred: ZoneId,
        cause: fn(&mut crate::cost::StallCauses) -> &mut u64,
    ) {
        let kind = self.zones[preferred].kind;
        self.vm.inc(allocstall_item(kind));
        *cause(&mut self.stall_causes) += 1;
    }
    /// The counters a cost is a delta of, now.
    #[inline]
    pub(crate) fn work_snap(&self) -> crate::cost::WorkSnap {
        crate::cost::WorkSnap::take(&self.vm, self.pages_migrated, self.policy_reclaimed)
    }

    /// Index of the zone holding `pfn`.
    pub fn zone_of(&self, pfn: Pfn) -> Option<ZoneId> {
        // zones are disjoint and sorted; most memory (and most traffic) is in the highest one
        self.zones.iter().rposition(|z| z.contains(pfn))
    }

    /// Index of the zone of a kind.
    pub fn zone_by_kind(&self, k: ZoneKind) -> Option<ZoneId> {
        self.zones.iter().position(|z| z.kind == k)
    }

    /// The preferred (highest allowed) zone for a gfp mask, and the highest zone index.
    #[inline]
    pub(crate) fn preferred_zone(&self, gfp: Gfp) -> Option<(ZoneId, usize)> {
        let highest = gfp.highest_zone();
        Some((self.preferred_by_kind[highest as usize]?, highest as usize))
    }

    fn refresh_zone_tables(&mut self) {
        for k in ZoneKind::ALL {
            self.preferred_by_kind[k as usize] = self.zones.iter().rposition(|z| z.kind <= k);
        }
        self.has_dma32 = self.zones.iter().any(|z| z.kind == ZoneKind::Dma32);
        self.hit_routes = crate::fastpath::hit_routes(&self.preferred_by_kind);
    }

    pub(crate) fn ctx_parts(&mut self, zi: ZoneId) -> (&mut Zone, &mut Policy, Ctx<'_>) {
        let boost = self.policy.boost();
        let ctx = Ctx {
            vm: &mut self.vm,
            ev: &mut self.events,
            boost_factor: self.cfg.watermarks.watermark_boost_factor,
            boost,
            zone_id: zi as u8,
            now_ns: self.now_ns,
        };
        (&mut self.zones[zi], &mut self.policy, ctx)
    }

    /// Allocate a block of `2^req.order` pages.
    pub fn alloc(&mut self, req: AllocRequest, env: &mut dyn Env) -> Result<Pfn, AllocError> {
        if let Some(p) = self.alloc_pcp_hit(req) {
            return Ok(p);
        }
        self.alloc_full(req, env)
    }

    /// The full allocation path: the zonelist walk of the fast path, then the slow path.
    #[inline(never)]
    fn alloc_full(&mut self, req: AllocRequest, env: &mut dyn Env) -> Result<Pfn, AllocError> {
        let err = |kind| AllocError {
            order: req.order,
            gfp: req.gfp,
            kind,
        };
        if req.order > self.geo.max_order {
            return Err(err(AllocErrorKind::OrderTooLarge));
        }
        if req.cpu as usize >= self.cfg.nr_cpus {
            return Err(err(AllocErrorKind::BadCpu));
        }
        let (preferred, highest) = self
            .preferred_zone(req.gfp)
            .ok_or(err(AllocErrorKind::NoZone))?;
        self.ops += 1;
        let mut flags = crate::gfp::fast_path_alloc_flags(req.gfp);
        if self
            .policy
            .fast_nofragment(self.zones[preferred].kind, self.has_dma32)
            || (req.trylock && self.policy.keeps_nofragment())
        {
            flags = flags.with(AllocFlags::NOFRAGMENT);
        }
        let r = if let Some(p) = self.get_page_from_freelist(req, flags, preferred, highest) {
            Ok(p)
        } else if req.trylock {
            self.note_failure_above_min(preferred);
            Err(err(AllocErrorKind::NoMemory))
        } else {
            self.slowpath_measured(req, preferred, highest, env)
        };
        self.after_op(env);
        r
    }

    /// The slow path with its direct work added to [`Allocator::take_request_cost`]'s total.
    #[inline(never)]
    fn slowpath_measured(
        &mut self,
        req: AllocRequest,
        preferred: ZoneId,
        highest: usize,
        env: &mut dyn Env,
    ) -> Result<Pfn, AllocError> {
        let before = self.work_snap();
        let r = self.slowpath(req, preferred, highest, env);
        let d = before.since(&self.work_snap());
        self.req_cost.add_entry(&d);
        if r.is_err() {
            self.note_failure_above_min(preferred);
        }
        r
    }

    /// A request failed: note whether its preferred zone's free pages were above the zone's
    /// min watermark at this moment.
    fn note_failure_above_min(&mut self, preferred: ZoneId) {
        let z = &self.zones[preferred];
        if z.free_pages > z.wmark[crate::zone::WMARK_MIN] {
            self.req_cost.failed_above_min = true;
        }
    }

    #[inline(always)]
    pub(crate) fn after_op(&mut self, _env: &mut dyn Env) {
        self.maybe_check();
    }

    /// The invariant check of `check_every`, after an operation.
    #[inline(always)]
    // `%` rather than `is_multiple_of`: one instruction less per operation (icount.sh)
    #[allow(clippy::manual_is_multiple_of)]
    pub(crate) fn maybe_check(&self) {
        if self.cfg.check_every > 0 && self.ops % self.cfg.check_every == 0 {
            self.check_or_panic();
        }
    }

    #[cold]
    #[inline(never)]
    fn check_or_panic(&self) {
        if let Err(e) = self.check() {
            panic!("invariant violated after operation {}: {}", self.ops, e);
        }
    }

    /// get_page_from_freelist: walk the zonelist from the preferred zone down.
    pub(crate) fn get_page_from_freelist(
        &mut self,
        req: AllocRequest,
        mut flags: AllocFlags,
        preferred: ZoneId,
        highest: usize,
    ) -> Option<Pfn> {
        loop {
            let mut zone_flags = flags;
            for zi in (0..=preferred).rev() {
                let ok = {
                    let z = &mut self.zones[zi];
                    if !flags.contains(AllocFlags::NO_WATERMARKS) {
                        let mut pass = false;
                        if !z.below_high {
                            pass = z.watermark_fast(
                                req.order,
                                z.wmark_pages(WMARK_HIGH),
                                highest,
                                flags,
                                req.gfp.contains(Gfp::HIGH),
                            );
                            if !pass {
                                z.below_high = true;
                            }
                        } else if z.free_pages > z.wmark_pages(WMARK_HIGH) {
                            z.below_high = false;
                        }
                        pass || z.watermark_fast(
                            req.order,
                            z.wmark_pages(flags.wmark()),
                            highest,
                            flags,
                            req.gfp.contains(Gfp::HIGH),
                        )
                    } else {
                        true
                    }
                };
                if !ok {
                    continue;
                }
                let page = self.rmqueue(zi, req, zone_flags);
                if self.policy.lower_zones_no_taint() {
                    zone_flags = zone_flags.with(AllocFlags::NO_TAINT);
                }
                if page.is_some() {
                    return page;
                }
            }
            if flags.contains(AllocFlags::NOFRAGMENT)
                && self.policy.drop_nofragment_in_walk(req.gfp.migratetype())
            {
                flags = flags.without(AllocFlags::NOFRAGMENT);
                continue;
            }
            return None;
        }
    }

    /// rmqueue: per-CPU lists for cacheable orders, else the buddy lists.
    pub(crate) fn rmqueue(
        &mut self,
        zi: ZoneId,
        req: AllocRequest,
        flags: AllocFlags,
    ) -> Option<Pfn> {
        let order = req.order;
        let mt = req.gfp.migratetype();
        let cpu = req.cpu as usize;
        let pcp_on = self.cfg.pcp;
        let (z, policy, mut ctx) = self.ctx_parts(zi);
        let mut page = None;
        if pcp_on && z.pcp_allowed(order) {
            z.pcp_alloc_started(cpu);
            let li = z.pindex(order, mt);
            if z.pcp[cpu].head[li] == crate::page::NIL {
                let n = z.nr_pcp_alloc(cpu, order);
                let mut mode = RmqueueMode::Normal;
                // spb (patches 02/21): refill from pageblocks the CPU owns
                let owned = policy.pcp_refill_owned(z, &mut ctx, cpu, order, mt, flags, req.gfp, n);
                for _ in owned..n {
                    match policy.rmqueue(z, &mut ctx, order, mt, flags, &mut mode, req.gfp) {
                        Some(p) => {
                            z.account_block(p, order, Acct::Free, Acct::Pcp);
                            z.pcp_push(cpu, p, order, mt, true);
                        }
                        None => break,
                    }
                }
            }
            if let Some(p) = z.pcp_pop(cpu, li) {
                z.account_block(p, order, Acct::Pcp, Acct::Alloc(mt));
                page = Some(p);
            }
        }
        if page.is_none() {
            let mut p = None;
            if flags.contains(AllocFlags::HIGHATOMIC) {
                p = mainline::smallest_any(z, order, MigrateType::HighAtomic);
            }
            if p.is_none() {
                let mut mode = RmqueueMode::Normal;
                p = policy.rmqueue(z, &mut ctx, order, mt, flags, &mut mode, req.gfp);
                if p.is_none() && flags.intersects(AllocFlags::OOM.with(AllocFlags::NON_BLOCK)) {
                    p = mainline::smallest_any(z, order, MigrateType::HighAtomic);
                }
            }
            if let Some(p) = p {
                z.account_block(p, order, Acct::Free, Acct::Alloc(mt));
            }
            page = p;
        }
        let p = page?;
        self.prep_new_page(zi, p, req, mt, flags);
        Some(p)
    }

    /// The end of every successful `rmqueue` (and of the per-CPU hit in [`crate::fastpath`]):
    /// the block at `p` of type `mt` (the request's), taken off a list and accounted as
    /// allocated, gets its head metadata; then the highatomic reservation, the boost-triggered
    /// kswapd wake-up, category-change events, the spb policy's after-allocation hook and
    /// `pgalloc_<zone>`. The common case (no highatomic reservation, no wake-up, no category
    /// change) is inlined; the rest runs in [`Allocator::prep_new_page_rest`].
    #[inline(always)]
    pub(crate) fn prep_new_page(
        &mut self,
        zi: ZoneId,
        p: Pfn,
        req: AllocRequest,
        mt: MigrateType,
        flags: AllocFlags,
    ) {
        let order = req.order;
        let z = &mut self.zones[zi];
        let i = z.idx(p);
        z.pages[i] = PageMeta::alloc(order, mt as u8, req.cookie);
        if (flags.contains(AllocFlags::HIGHATOMIC) && order > 0)
            || (flags.contains(AllocFlags::KSWAPD) && z.boosted)
            || !z.cat_changes.is_empty()
        {
            self.prep_new_page_rest(zi, p, req, mt, flags);
            return;
        }
        let kind = z.kind;
        if self.policy.after_alloc_needed(z, p) {
            let (z, policy, mut ctx) = self.ctx_parts(zi);
            policy.after_alloc(z, &mut ctx, p, order, mt, req.gfp, &[]);
        }
        self.vm.add(pgalloc_item(kind), 1u64 << order);
    }

    /// [`Allocator::prep_new_page`] after the head metadata, in full.
    #[inline(never)]
    fn prep_new_page_rest(
        &mut self,
        zi: ZoneId,
        p: Pfn,
        req: AllocRequest,
        mt: MigrateType,
        flags: AllocFlags,
    ) {
        let order = req.order;
        if flags.contains(AllocFlags::HIGHATOMIC) && order > 0 {
            let (z, _, mut ctx) = self.ctx_parts(zi);
            mainline::reserve_highatomic(z, &mut ctx, p, order);
        }
        let z = &mut self.zones[zi];
        let wake = flags.contains(AllocFlags::KSWAPD) && z.boosted;
        if wake {
            z.boosted = false;
        }
        let kind = z.kind;
        let changes = z.take_cat_changes();
        let (z, policy, mut ctx) = self.ctx_parts(zi);
        policy.after_alloc(z, &mut ctx, p, order, mt, req.gfp, &changes);
        for c in changes {
            self.note_category_change(zi, c, req.gfp, order);
        }
        self.vm.add(pgalloc_item(kind), 1u64 << order);
        if wake {
            self.wake_kswapd(0);
        }
    }

    /// Drain zone `zi`'s recorded category changes into vmstat and the event log.
    #[cold]
    #[inline(never)]
    pub(crate) fn note_category_changes(&mut self, zi: ZoneId, gfp: Gfp, order: u8) {
        for c in self.zones[zi].take_cat_changes() {
            self.note_category_change(zi, c, gfp, order);
        }
    }

    pub(crate) fn note_category_change(
        &mut self,
        zi: ZoneId,
        c: crate::zone::CategoryChange,
        gfp: Gfp,
        order: u8,
    ) {
        use crate::superpageblock::Category;
        if c.to == Category::Tainted && c.from != Category::Tainted {
            self.vm.inc(Vm::SpbCleanTainted);
        } else if c.from == Category::Tainted && c.to != Category::Tainted {
            self.vm.inc(Vm::SpbTaintedCleaned);
        }
        self.events.push(crate::event::Event::SpbCategory {
            zone: zi as u8,
            spb: c.spb,
            from: c.from,
            to: c.to,
            gfp,
            order,
        });
    }

    /// Free an allocated block.
    pub fn free(&mut self, pfn: Pfn, order: u8, cpu: u16) -> Result<(), FreeError> {
        if self.free_pcp_hit(pfn, order, cpu) {
            return Ok(());
        }
        self.free_full(pfn, order, cpu)
    }

    /// The full free path (validation, per-CPU lists or buddy lists, contiguous blocks).
    #[inline(always)]
    fn free_full(&mut self, pfn: Pfn, order: u8, cpu: u16) -> Result<(), FreeError> {
        let zi = self.zone_of(pfn).ok_or(FreeError::OutOfRange { pfn })?;
        let pcp_on = self.cfg.pcp;
        let z = &mut self.zones[zi];
        let m = *z.page(pfn);
        match m.state {
            PageState::Alloc => {}
            PageState::Free | PageState::Pcp => return Err(FreeError::DoubleFree { pfn }),
            PageState::Tail => {
                // a tail of a free block is a double free; of an allocation, not a head
                return Err(match find_head(z, pfn) {
                    Some((_, PageState::Free | PageState::Pcp)) => FreeError::DoubleFree { pfn },
                    _ => FreeError::NotAllocated { pfn },
                });
            }
            _ => return Err(FreeError::NotManaged { pfn }),
        }
        if m.order != order {
            return Err(FreeError::WrongOrder {
                pfn,
                allocated: m.order,
                given: order,
            });
        }
        let cpu = (cpu as usize).min(z.pcp.len() - 1);
        let mt = MigrateType::from_u8(m.mt).unwrap_or(MigrateType::Movable);
        self.ops += 1;
        self.vm.add(Vm::Pgfree, 1u64 << order);
        self.free_inner(zi, pfn, order, mt, cpu, pcp_on);
        let changes = self.zones[zi].take_cat_changes();
        for c in changes {
            self.note_category_change(zi, c, Gfp::NONE, order);
        }
        self.maybe_check();
        Ok(())
    }

    /// Free a validated allocated block (state Alloc at `pfn`).
    pub(crate) fn free_inner(
        &mut self,
        zi: ZoneId,
        pfn: Pfn,
        order: u8,
        mt: MigrateType,
        cpu: usize,
        pcp_on: bool,
    ) {
        let z = &mut self.zones[zi];
        if order > z.geo.max_order {
            // a contiguous allocation
            crate::contig::release_contig(z, pfn, order);
            return;
        }
        let pb = *z.pb(pfn);
        if pcp_on && z.pcp_allowed(order) && !pb.is_isolated() {
            z.account_block(pfn, order, Acct::Alloc(mt), Acct::Pcp);
            let block_mt = pb.migratetype();
            // spb per-CPU ownership: frees of owned pages return to the owner's lists
            let cpu = if pb.owner > 0 && (pb.owner as usize - 1) < z.pcp.len() {
                pb.owner as usize - 1
            } else {
                cpu
            };
            z.pcp_free(cpu, pfn, order, block_mt);
        } else {
            z.account_block(pfn, order, Acct::Alloc(mt), Acct::Free);
            z.free_block(pfn, order);
        }
    }

    /// Free blocks handed back by the embedder (reclaim, OOM kills), straight to the buddy
    /// lists. Blocks that are not allocated heads are skipped (and counted in the return).
    pub(crate) fn free_blocks(&mut self, blocks: &[FreedBlock]) -> (u64, u64) {
        let mut pages = 0;
        let mut bad = 0;
        for b in blocks {
            let Some(zi) = self.zone_of(b.pfn) else {
                bad += 1;
                continue;
            };
            let m = *self.zones[zi].page(b.pfn);
            if m.state != PageState::Alloc || m.order != b.order {
                bad += 1;
                continue;
            }
            let mt = MigrateType::from_u8(m.mt).unwrap_or(MigrateType::Movable);
            self.vm.add(Vm::Pgfree, 1u64 << b.order);
            self.free_inner(zi, b.pfn, b.order, mt, 0, false);
            pages += 1u64 << b.order;
        }
        for zi in 0..self.zones.len() {
            let ch = self.zones[zi].take_cat_changes();
            for c in ch {
                self.note_category_change(zi, c, Gfp::NONE, 0);
            }
        }
        (pages, bad)
    }

    /// Split an allocated block of `order` into allocated blocks of `new_order` that are freed
    /// separately (split_page, THP split). Each piece keeps the type and cookie.
    pub fn split(&mut self, pfn: Pfn, order: u8, new_order: u8) -> Result<(), FreeError> {
        let zi = self.zone_of(pfn).ok_or(FreeError::OutOfRange { pfn })?;
        let z = &mut self.zones[zi];
        let m = *z.page(pfn);
        if m.state != PageState::Alloc {
            return Err(FreeError::NotAllocated { pfn });
        }
        if m.order != order {
            return Err(FreeError::WrongOrder {
                pfn,
                allocated: m.order,
                given: order,
            });
        }
        if new_order >= order {
            return Err(FreeError::BadSplit {
                pfn,
                order,
                new_order,
            });
        }
        let step = 1u64 << new_order;
        let mut p = pfn;
        while p < pfn + (1u64 << order) {
            let i = z.idx(p);
            z.pages[i] = PageMeta {
                order: new_order,
                ..m
            };
            p += step;
        }
        if order > z.geo.max_order {
            let si = z.spb_idx(pfn);
            z.spbs[si].contig_allocated = false;
            z.spb_lists.refile(&mut z.spbs, si as u32);
        }
        Ok(())
    }

    /// Allocate exactly the block of `2^order` pages at `pfn` (naturally aligned), if it is free
    /// (in the buddy lists or on a per-CPU list). The trace replayer's `real` placement and
    /// tests use it to reproduce a given state.
    pub fn alloc_at(
        &mut self,
        pfn: Pfn,
        order: u8,
        gfp: Gfp,
        cookie: u32,
    ) -> Result<(), FreeError> {
        let zi = self.zone_of(pfn).ok_or(FreeError::OutOfRange { pfn })?;
        if order > self.geo.max_order
            || pfn & ((1u64 << order) - 1) != 0
            || pfn + (1u64 << order) > self.zones[zi].span.end
        {
            return Err(FreeError::BadSplit {
                pfn,
                order,
                new_order: order,
            });
        }
        // pages of the range sitting on per-CPU lists go back to the buddy lists first
        let mut p = pfn;
        while p < pfn + (1u64 << order) {
            let z = &mut self.zones[zi];
            match find_head(z, p) {
                Some((h, PageState::Pcp)) => {
                    let m = *z.page(h);
                    let cpu = m.cpu();
                    let li = z.pindex(
                        m.order,
                        MigrateType::from_u8(m.mt).unwrap_or(MigrateType::Movable),
                    );
                    let i = z.idx(h) as u32;
                    z.pcp_unlink(cpu, li, i);
                    z.account(h, 1u64 << m.order, Acct::Pcp, Acct::Free);
                    z.pages[i as usize] = PageMeta::TAIL;
                    z.free_block(h, m.order);
                    p = h + (1u64 << m.order);
                }
                Some((h, PageState::Free)) => p = h + (1u64 << z.page(h).order),
                Some((_, _)) => return Err(FreeError::DoubleFree { pfn: p }),
                None => return Err(FreeError::NotManaged { pfn: p }),
            }
        }
        let z = &mut self.zones[zi];
        match find_head(z, pfn) {
            Some((h, PageState::Free)) if z.page(h).order >= order => {
                z.split_straddling(pfn, order);
                z.list_del(pfn);
            }
            Some((h, PageState::Free)) if h == pfn => {
                // several free blocks (e.g. pageblocks of types that do not merge): check that
                // they tile the range, then take each
                let end = pfn + (1u64 << order);
                let mut p = pfn;
                while p < end {
                    let m = *z.page(p);
                    if m.state != PageState::Free || p + (1u64 << m.order) > end {
                        return Err(FreeError::DoubleFree { pfn: p });
                    }
                    p += 1u64 << m.order;
                }
                let mut p = pfn;
                while p < end {
                    let o = z.page(p).order;
                    z.list_del(p);
                    let i = z.idx(p);
                    z.pages[i] = PageMeta::TAIL;
                    p += 1u64 << o;
                }
            }
            _ => return Err(FreeError::DoubleFree { pfn }),
        }
        let mt = gfp.migratetype();
        z.account(pfn, 1u64 << order, Acct::Free, Acct::Alloc(mt));
        let i = z.idx(pfn);
        z.pages[i] = PageMeta::alloc(order, mt as u8, cookie);
        let kind = z.kind;
        let changes = z.take_cat_changes();
        for c in changes {
            self.note_category_change(zi, c, gfp, order);
        }
        self.vm.add(pgalloc_item(kind), 1u64 << order);
        self.ops += 1;
        Ok(())
    }

    /// Label the pageblock holding `pfn` `mt` and move its free buddies to the lists of `mt`
    /// (`move_freepages_block` + `set_pageblock_migratetype`): the trace replayer reproduces a
    /// machine's pageblock labels with it. A pageblock straddling the start of a zone (DMA at
    /// pfn 0) is labelled by its part in that zone. Returns the free pages moved.
    pub fn label_pageblock(&mut self, pfn: Pfn, mt: MigrateType) -> Result<u64, LabelError> {
        if mt == MigrateType::Isolate {
            return Err(LabelError::BadType { pfn });
        }
        let pbp = self.geo.pageblock_pages();
        let zi = self.zone_of(pfn).or_else(|| {
            self.zones
                .iter()
                .position(|z| z.span.start > pfn && z.span.start < pfn.saturating_add(pbp))
        });
        let zi = zi.ok_or(LabelError::OutOfRange { pfn })?;
        let at = pfn.max(self.zones[zi].span.start);
        self.zones[zi]
            .move_freepages_block(at, mt)
            .ok_or(LabelError::Straddles { pfn })
    }

    /// The per-CPU lists' `high` of every zone and CPU, in zone then CPU order (see
    /// [`Allocator::cap_pcp_high`]).
    pub fn pcp_highs(&self, out: &mut Vec<u64>) {
        out.clear();
        out.extend(self.zones.iter().flat_map(|z| z.pcp.iter()).map(|p| p.high));
    }

    /// Undo an increase of the per-CPU lists' `high` since `saved` (from
    /// [`Allocator::pcp_highs`]) beyond what the kernel's free path would have raised it to
    /// (`free_count.min(batch << 5) + batch`, clamped to `high_min..=high_max`). The trace
    /// replayer uses it around frees (the core raises `high` by `batch` at every trim).
    pub fn cap_pcp_high(&mut self, saved: &[u64]) {
        let mut i = 0;
        for z in self.zones.iter_mut() {
            for p in z.pcp.iter_mut() {
                if let Some(&h) = saved.get(i) {
                    if p.high > h {
                        let need = (p.free_count.min(p.batch << 5) + p.batch)
                            .clamp(p.high_min, p.high_max);
                        p.high = h.max(need);
                    }
                }
                i += 1;
            }
        }
    }

    /// The kernel's `decay_pcp_high` as the trace replayer runs it, every zone and CPU: `high`
    /// decays by 1/8 towards `high_min` (never below `count - (batch << 5)`), and a list above
    /// its `high` is drained down to it. Returns pages drained.
    pub fn decay_pcp_high_all(&mut self) -> u64 {
        let mut drained = 0;
        for z in self.zones.iter_mut() {
            for cpu in 0..z.pcp.len() {
                let p = &mut z.pcp[cpu];
                if p.high > p.high_min {
                    let floor = p.count.saturating_sub(p.batch << 5);
                    p.high = floor.max(p.high - (p.high >> 3)).max(p.high_min);
                }
                let (count, high) = (p.count, p.high);
                if count > high {
                    drained += z.free_pcppages_bulk(cpu, count - high, 0);
                }
            }
            let _ = z.take_cat_changes();
        }
        drained
    }

    /// Pages on per-CPU lists now, over all zones.
    pub fn pcp_pages(&self) -> u64 {
        self.zones
            .iter()
            .flat_map(|z| z.pcp.iter())
            .map(|p| p.count)
            .sum()
    }

    /// Re-tag the allocated block at `pfn` (e.g. the pieces of a split block).
    pub fn set_cookie(&mut self, pfn: Pfn, cookie: u32) -> Result<(), FreeError> {
        let zi = self.zone_of(pfn).ok_or(FreeError::OutOfRange { pfn })?;
        let z = &mut self.zones[zi];
        let i = z.idx(pfn);
        if z.pages[i].state != PageState::Alloc {
            return Err(FreeError::NotAllocated { pfn });
        }
        z.pages[i].next = cookie;
        Ok(())
    }

    /// Find the allocated block containing `pfn`: (head pfn, order).
    pub fn find_allocation(&self, pfn: Pfn) -> Option<(Pfn, u8)> {
        let zi = self.zone_of(pfn)?;
        match find_head(&self.zones[zi], pfn) {
            Some((h, PageState::Alloc)) => Some((h, self.zones[zi].page(h).order)),
            _ => None,
        }
    }

    /// The state of the block head at `pfn`, if `pfn` is a head.
    pub fn page_state(&self, pfn: Pfn) -> Option<PageMeta> {
        let zi = self.zone_of(pfn)?;
        Some(*self.zones[zi].page(pfn))
    }

    /// Hand uninitialised memory of a zone to the allocator (deferred init), or extend the zone
    /// upwards (memory hot-add). `range` must be uninitialised pages of the zone, or lie beyond
    /// the zone end without overlapping the next zone.
    pub fn grow_zone(&mut self, zi: ZoneId, range: PfnRange) -> Result<u64, GrowError> {
        if zi >= self.zones.len() {
            return Err(GrowError::NoZone);
        }
        if range.is_empty() || range.start < self.zones[zi].span.start {
            return Err(GrowError::BadRange {
                start: range.start,
                end: range.end,
            });
        }
        if let Some(next) = self.zones.get(zi + 1) {
            if range.end > next.span.start {
                return Err(GrowError::BadRange {
                    start: range.start,
                    end: range.end,
                });
            }
        }
        // validate before touching anything: pages inside the span must be uninitialised or
        // holes; growth beyond the span is bounded by the next zone (checked above) and by the
        // largest span the metadata can index
        {
            let z = &self.zones[zi];
            if range.end - z.span.start > u32::MAX as u64 {
                return Err(GrowError::BadRange {
                    start: range.start,
                    end: range.end,
                });
            }
            for pfn in range.start..range.end.min(z.span.end) {
                let st = z.page(pfn).state;
                if st != PageState::Uninit && st != PageState::Hole {
                    return Err(GrowError::AlreadyManaged { pfn });
                }
            }
        }
        if range.end > self.zones[zi].span.end {
            self.zones[zi].extend_span(range.end)?;
            self.policy.rebuild_zone(zi, &self.zones[zi]);
        }
        let z = &mut self.zones[zi];
        let mut holes = 0;
        for pfn in range.start..range.end {
            let st = z.page(pfn).state;
            if st != PageState::Uninit && st != PageState::Hole {
                return Err(GrowError::AlreadyManaged { pfn });
            }
            holes += (st == PageState::Hole) as u64;
        }
        let mut added = 0;
        for (pfn, order) in crate::zone::carve(range, z.geo.max_order) {
            let n = 1u64 << order;
            let i = z.idx(pfn);
            for k in 0..n as usize {
                if z.pages[i + k].state == PageState::Uninit {
                    let s = z.spb_idx(pfn + k as u64);
                    z.spb_uninit[s] -= 1;
                }
                z.pages[i + k] = PageMeta::TAIL;
            }
            z.account(pfn, n, Acct::Absent, Acct::Free);
            z.free_block(pfn, order);
            added += n;
        }
        z.managed_pages += added;
        // uninitialised memory was present already; holes (hot-add) become present now
        z.present_pages += holes;
        let _ = z.take_cat_changes();
        setup_watermarks(&mut self.zones, &self.cfg.watermarks);
        // holes that became memory can make an SPB whole (memory that was waiting for
        // deferred init never counted as a hole: `Zone::spb_lost_for_good`)
        if holes > 0 {
            self.policy.rebuild_zone(zi, &self.zones[zi]);
        }
        Ok(added)
    }

    /// Drain every CPU's lists in every zone.
    pub fn drain_all_pcp(&mut self) {
        for z in self.zones.iter_mut() {
            z.drain_all_pcp();
            let _ = z.take_cat_changes();
        }
    }

    /// Free pages (NR_FREE_PAGES) over all zones.
    pub fn free_pages(&self) -> u64 {
        self.zones.iter().map(|z| z.free_pages).sum()
    }

    /// The spb policy's histogram of SPBs visited per allocation walk (None under other
    /// policies, which do not walk SPBs).
    pub fn spb_walks(&self) -> Option<&crate::vmstat::WalkHistogram> {
        self.policy.walks()
    }

    /// Metadata bytes per page of simulated memory (page + pageblock + SPB metadata).
    pub fn metadata_bytes_per_page(&self) -> f64 {
        let mut bytes = 0usize;
        let mut pages = 0usize;
        for z in &self.zones {
            bytes += z.pages.len() * core::mem::size_of::<PageMeta>();
            bytes += z.pageblocks.len() * core::mem::size_of::<crate::pageblock::PageblockMeta>();
            bytes += z.spbs.len() * core::mem::size_of::<crate::superpageblock::SpbMeta>();
            bytes += z.areas.len() * core::mem::size_of::<crate::freelist::FreeArea>();
            pages += z.pages.len();
        }
        bytes as f64 / pages.max(1) as f64
    }
}

/// The head of the block covering `pfn` (any state with an order), searching aligned
/// candidates upward.
pub(crate) fn find_head(z: &Zone, pfn: Pfn) -> Option<(Pfn, PageState)> {
    for o in 0..=z.geo.spb_order.max(z.geo.max_order) {
        let h = pfn & !((1u64 << o) - 1);
        if !z.contains(h) {
            break;
        }
        let m = z.page(h);
        if matches!(m.state, PageState::Free | PageState::Alloc | PageState::Pcp) && m.order >= o {
            return if h + (1u64 << m.order) > pfn {
                Some((h, m.state))
            } else {
                None
            };
        }
    }
    None
}

pub(crate) fn pgalloc_item(k: ZoneKind) -> Vm {
    match k {
        ZoneKind::Dma => Vm::PgallocDma,
        ZoneKind::Dma32 => Vm::PgallocDma32,
        ZoneKind::Normal => Vm::PgallocNormal,
        ZoneKind::Movable => Vm::PgallocMovable,
    }
}

fn allocstall_item(k: ZoneKind) -> Vm {
    match k {
        ZoneKind::Dma => Vm::AllocstallDma,
        ZoneKind::Dma32 => Vm::AllocstallDma32,
        ZoneKind::Normal => Vm::AllocstallNormal,
        ZoneKind::Movable => Vm::AllocstallMovable,
    }
}

/// The operations the core lends the policy for its cross-zone work (see [`crate::policy::Core`]).
impl crate::policy::Core for Allocator {
    fn geo(&self) -> Geometry {
        self.geo
    }
    fn zones(&self) -> &[Zone] {
        &self.zones
    }
    fn policy(&self) -> &Policy {
        &self.policy
    }
    fn policy_mut(&mut self) -> &mut Policy {
        &mut self.policy
    }
    fn zones_and_policy_mut(&mut self) -> (&[Zone], &mut Policy) {
        (&self.zones, &mut self.policy)
    }
    fn vm(&mut self) -> &mut VmStat {
        &mut self.vm
    }
    fn events(&mut self) -> &mut EventLog {
        &mut self.events
    }
    fn now_ns(&self) -> u64 {
        self.now_ns
    }
    fn pages_migrated(&self) -> u64 {
        self.pages_migrated
    }
    fn migrate_out(&mut self, zi: ZoneId, pfn: Pfn, env: &mut dyn Env) -> Option<bool> {
        Allocator::migrate_out(self, zi, pfn, crate::contig::TargetFor::Evacuation, env)
    }
    fn reclaim(&mut self, req: crate::env::ReclaimRequest, env: &mut dyn Env) {
        let mut out = core::mem::take(&mut self.freed_scratch);
        out.clear();
        env.reclaim(req, &mut out);
        let (pages, _) = self.free_blocks(&out);
        self.policy_reclaimed += pages;
        self.freed_scratch = out;
    }
    fn reclaim_clean(&mut self, zi: ZoneId, pfn: Pfn, env: &mut dyn Env) -> bool {
        Allocator::reclaim_clean(self, zi, pfn, env)
    }
    fn split_allocated(&mut self, zi: ZoneId, pfn: Pfn, env: &mut dyn Env) -> bool {
        Allocator::split_allocated(self, zi, pfn, env)
    }
}
