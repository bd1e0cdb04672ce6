//! The slow path (`__alloc_pages_slowpath`) in the kernel's order: wake kswapd, retry at the
//! min watermark, direct compaction first for costly and non-movable high-order requests, then
//! the reclaim / compaction / retry loop, the last-resort drop of ALLOC_NOFRAGMENT (defrag and
//! spb), the OOM killer, and __GFP_NOFAIL's endless retry (bounded here).

use crate::compaction::{CompactPriority, CompactResult};
use crate::env::{Env, ReclaimRequest, Reclaimer};
use crate::error::{AllocError, AllocErrorKind};
use crate::geometry::Pfn;
use crate::gfp::{gfp_to_alloc_flags, pfmemalloc_flags, AllocFlags, Gfp};
use crate::migratetype::MigrateType;
use crate::policy::{DropDecision, Policy, RelaxDecision};
use crate::vmstat::Vm;
use crate::zone::ZoneId;
use crate::{AllocRequest, Allocator};

/// SWAP_CLUSTER_MAX.
pub const SWAP_CLUSTER_MAX: u64 = 32;
/// MAX_RECLAIM_RETRIES.
pub const MAX_RECLAIM_RETRIES: u32 = 16;
/// MAX_COMPACT_RETRIES.
pub const MAX_COMPACT_RETRIES: u32 = 16;

impl Allocator {
    pub(crate) fn slowpath(
        &mut self,
        req: AllocRequest,
        preferred: ZoneId,
        highest: usize,
        env: &mut dyn Env,
    ) -> Result<Pfn, AllocError> {
        let gfp = req.gfp;
        let order = req.order;
        let mt = gfp.migratetype();
        let costly = order > self.geo.costly_order();
        let can_reclaim = gfp.contains(Gfp::DIRECT_RECLAIM);
        let fail = |kind| Err(AllocError { order, gfp, kind });
        let mut flags = gfp_to_alloc_flags(gfp, order, self.policy.defrag_mode());
        flags = self.policy.slowpath_flags(gfp, order, flags);
        if flags.contains(AllocFlags::KSWAPD) {
            self.wake_kswapd(self.kswapd_order(order));
        }
        if let Some(p) = self.get_page_from_freelist(req, flags, preferred, highest) {
            return Ok(p);
        }
        // a placement shortage, not a memory one: the policy may place instead (spb-next)
        let mut entry_step = 0u8;
        while let Some(d) = Policy::slowpath_entry(self, req, &mut flags, &mut entry_step, env) {
            if d == DropDecision::Refuse {
                return fail(AllocErrorKind::Refused);
            }
            if let Some(p) = self.get_page_from_freelist(req, flags, preferred, highest) {
                return Ok(p);
            }
        }
        let mut prio = CompactPriority::SyncLight;
        let mut compact_result = CompactResult::Skipped;
        // Compact first.
        if can_reclaim
            && gfp.contains(Gfp::IO)
            && (costly || (order > 0 && mt != MigrateType::Movable))
            && pfmemalloc_flags(gfp).is_none()
        {
            let (p, r) =
                self.direct_compact(req, flags, preferred, highest, CompactPriority::Async, env);
            if let Some(p) = p {
                return Ok(p);
            }
            compact_result = r;
            if costly && gfp.contains(Gfp::NORETRY) {
                if matches!(r, CompactResult::Skipped | CompactResult::Deferred)
                    || gfp.contains(Gfp::THISNODE)
                {
                    return self.nopage(req, flags, preferred, highest, env);
                }
                prio = CompactPriority::Async;
            }
        }
        let mut no_progress_loops = 0u32;
        let mut compaction_retries = 0u32;
        let mut guard = 0u32;
        let mut relax_step = 0u8;
        let mut evac_tried = false;
        loop {
            guard += 1;
            if guard > 4 * MAX_RECLAIM_RETRIES + 8 {
                break;
            }
            if flags.contains(AllocFlags::KSWAPD) {
                self.wake_kswapd(self.kswapd_order(order));
            }
            if let Some(rf) = pfmemalloc_flags(gfp) {
                flags = rf.with(AllocFlags(
                    flags.0 & (AllocFlags::KSWAPD.0 | AllocFlags::CMA.0),
                ));
            }
            if let Some(p) = self.get_page_from_freelist(req, flags, preferred, highest) {
                return Ok(p);
            }
            if !can_reclaim {
                // Atomic callers: freelists only. Mainline fails here (with NOFRAGMENT still
                // set in defrag_mode); spb relaxes in stages (patch 18).
                match Policy::atomic_relax(self, req, &mut flags, &mut relax_step) {
                    RelaxDecision::Retry => continue,
                    RelaxDecision::Refuse => return fail(AllocErrorKind::Refused),
                    RelaxDecision::Fail => break,
                }
            }
            // Direct reclaim.
            self.count_stall(preferred, |c| &mut c.slow_path);
            let reclaimed = self.direct_reclaim(order, env);
            if reclaimed > 0 {
                if let Some(p) = self.get_page_from_freelist(req, flags, preferred, highest) {
                    return Ok(p);
                }
                // once: release a highatomic block and drain the per-CPU lists
                let mut released = false;
                for zi in 0..self.zones.len() {
                    let (z, _, mut ctx) = self.ctx_parts(zi);
                    released |=
                        crate::policy::mainline::unreserve_highatomic(z, &mut ctx, mt, false);
                }
                self.drain_all_pcp();
                let _ = released;
                if let Some(p) = self.get_page_from_freelist(req, flags, preferred, highest) {
                    return Ok(p);
                }
            }
            // Direct compaction.
            if order > 0 {
                let (p, r) = self.direct_compact(req, flags, preferred, highest, prio, env);
                if let Some(p) = p {
                    return Ok(p);
                }
                compact_result = r;
            }
            if gfp.contains(Gfp::NORETRY) {
                break;
            }
            if costly && !gfp.contains(Gfp::RETRY_MAYFAIL) {
                break;
            }
            // should_reclaim_retry
            if reclaimed > 0 && order <= self.geo.costly_order() {
                no_progress_loops = 0;
            } else {
                no_progress_loops += 1;
            }
            let reclaimable = env.reclaimable_pages();
            if no_progress_loops <= MAX_RECLAIM_RETRIES
                && (reclaimed > 0 || reclaimable > 0)
                && self.could_pass_min_with(order, reclaimable, highest, preferred)
            {
                continue;
            }
            // force-release highatomic before conceding
            let mut released = false;
            for zi in 0..self.zones.len() {
                let (z, _, mut ctx) = self.ctx_parts(zi);
                released |= crate::policy::mainline::unreserve_highatomic(z, &mut ctx, mt, true);
            }
            if released {
                continue;
            }
            // should_compact_retry
            if order > 0 && reclaimed > 0 {
                let max = if costly {
                    MAX_COMPACT_RETRIES / 4
                } else {
                    MAX_COMPACT_RETRIES
                };
                if compact_result == CompactResult::Success && compaction_retries < max {
                    compaction_retries += 1;
                    continue;
                }
                if let Some(np) = prio.raise(costly) {
                    prio = np;
                    compaction_retries = 0;
                    continue;
                }
            }
            // Last resort before OOM: drop NOFRAGMENT (defrag_mode, spb). The kernel's `goto
            // retry` keeps no_progress_loops: one more round (a reclaim, a compaction, the
            // freelists without the flag), then the OOM path, not a second series of retries.
            if flags.contains(AllocFlags::NOFRAGMENT) {
                match Policy::before_drop_nofragment(self, req, &mut evac_tried, env) {
                    DropDecision::Refuse => return fail(AllocErrorKind::Refused),
                    DropDecision::Retry => continue,
                    DropDecision::Drop => {
                        flags = flags.without(AllocFlags::NOFRAGMENT);
                        continue;
                    }
                }
            }
            // OOM killer.
            if order <= self.geo.costly_order()
                && !gfp.intersects(Gfp::RETRY_MAYFAIL.with(Gfp::NORETRY).with(Gfp::THISNODE))
            {
                let hf =
                    AllocFlags::WMARK_HIGH.with(AllocFlags(flags.0 & !AllocFlags::WMARK_MASK.0));
                if let Some(p) = self.get_page_from_freelist(req, hf, preferred, highest) {
                    return Ok(p);
                }
                let mut out = core::mem::take(&mut self.freed_scratch);
                out.clear();
                if env.oom_kill(&mut out) {
                    self.vm.inc(Vm::OomKill);
                    self.free_blocks(&out);
                    self.freed_scratch = out;
                    no_progress_loops = 0;
                    continue;
                }
                self.freed_scratch = out;
            }
            break;
        }
        self.nopage(req, flags, preferred, highest, env)
    }

    fn nopage(
        &mut self,
        req: AllocRequest,
        flags: AllocFlags,
        preferred: ZoneId,
        highest: usize,
        env: &mut dyn Env,
    ) -> Result<Pfn, AllocError> {
        let gfp = req.gfp;
        if gfp.contains(Gfp::NOFAIL) && gfp.contains(Gfp::DIRECT_RECLAIM) {
            let f = AllocFlags::MIN_RESERVE.with(AllocFlags(
                flags.0 & !(AllocFlags::NOFRAGMENT.0 | AllocFlags::CPUSET.0),
            ));
            for _ in 0..self.cfg.nofail_retries {
                if let Some(p) = self.get_page_from_freelist(req, f, preferred, highest) {
                    return Ok(p);
                }
                let r = self.direct_reclaim(req.order, env);
                let mut out = core::mem::take(&mut self.freed_scratch);
                out.clear();
                let killed = r == 0 && env.oom_kill(&mut out);
                if killed {
                    self.vm.inc(Vm::OomKill);
                    self.free_blocks(&out);
                }
                self.freed_scratch = out;
                if r == 0 && !killed {
                    if req.order > 0 {
                        let (p, _) = self.direct_compact(
                            req,
                            f,
                            preferred,
                            highest,
                            CompactPriority::SyncFull,
                            env,
                        );
                        if let Some(p) = p {
                            return Ok(p);
                        }
                    }
                    break;
                }
            }
            return Err(AllocError {
                order: req.order,
                gfp,
                kind: AllocErrorKind::NofailExhausted,
            });
        }
        Err(AllocError {
            order: req.order,
            gfp,
            kind: AllocErrorKind::NoMemory,
        })
    }

    /// Whether some zone would pass its min watermark at `order` if `reclaimable` pages were
    /// freed (should_reclaim_retry's test).
    fn could_pass_min_with(
        &self,
        order: u8,
        reclaimable: u64,
        highest: usize,
        preferred: ZoneId,
    ) -> bool {
        (0..=preferred).any(|zi| {
            let z = &self.zones[zi];
            z.watermark_ok(
                order,
                z.wmark_pages(0),
                highest,
                AllocFlags::WMARK_MIN,
                z.free_pages + reclaimable,
            )
        })
    }

    /// Direct reclaim: ask the embedder for SWAP_CLUSTER_MAX pages (more for large orders).
    pub(crate) fn direct_reclaim(&mut self, order: u8, env: &mut dyn Env) -> u64 {
        let want = SWAP_CLUSTER_MAX.max(2u64 << order);
        let req = ReclaimRequest {
            nr_pages: want,
            order,
            who: Reclaimer::Direct,
            may_swap: true,
            shrink_slab: true,
            prefer_range: None,
        };
        self.reclaim_in_caller(req, env)
    }

    /// Reclaim in the allocating caller's context (`try_to_free_pages`): the embedder frees,
    /// the freed blocks go back to the buddy lists, and the pages count as `pgscan_direct` and
    /// `pgsteal_direct` (the model's reclaim scans exactly the pages it frees). The caller counts
    /// the stall (`allocstall_*`) of its preferred zone.
    pub(crate) fn reclaim_in_caller(&mut self, req: ReclaimRequest, env: &mut dyn Env) -> u64 {
        let mut out = core::mem::take(&mut self.freed_scratch);
        out.clear();
        env.reclaim(req, &mut out);
        let (pages, _) = self.free_blocks(&out);
        self.freed_scratch = out;
        self.vm.add(Vm::PgscanDirect, pages);
        self.vm.add(Vm::PgstealDirect, pages);
        pages
    }

    /// The order kswapd is woken with (defrag_mode: at least pageblock order).
    pub(crate) fn kswapd_order(&self, order: u8) -> u8 {
        if self.policy.defrag_mode() {
            order.max(self.geo.pageblock_order)
        } else {
            order
        }
    }
}
