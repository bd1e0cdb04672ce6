//! Background work on the virtual clock: kswapd, kcompactd, proactive compaction and the spb
//! policy's workers (defrag, evacuation, slab shrinking).
//!
//! The embedder calls [`Allocator::background`] as its clock advances; requests from the
//! allocation paths (kswapd wake-ups, kcompactd wake-ups, spb work items) are served there.
//! An embedder whose kswapd runs beside the allocating tasks also calls
//! [`Allocator::kswapd_turn`] right after a request, so that a burst of requests between two
//! clock steps meets kswapd's reclaim as it would on a machine with a kswapd thread.

use crate::compaction::{extfrag_for_order, CompactPriority, CompactResult};
use crate::env::{Env, ReclaimRequest, Reclaimer};
use crate::gfp::AllocFlags;
use crate::layout::ZoneKind;
use crate::migratetype::MigrateType;
use crate::vmstat::Vm;
use crate::zone::{Zone, WMARK_HIGH, WMARK_MIN};
use crate::Allocator;

/// HPAGE_FRAG_CHECK_INTERVAL_MSEC.
pub const PROACTIVE_INTERVAL_NS: u64 = 500_000_000;
/// The vmstat worker's interval (decay of per-CPU list limits).
pub const PCP_DECAY_INTERVAL_NS: u64 = 1_000_000_000;
/// kswapd gives up a run after this many reclaim rounds without reaching balance.
pub const KSWAPD_MAX_ROUNDS: u32 = 16;

impl Allocator {
    /// Wake kswapd for `order` (wakeup_kswapd). An order above the buddy orders (no allocation
    /// has one) is taken as the largest: a wake-up is a hint, never an error.
    pub fn wake_kswapd(&mut self, order: u8) {
        let order = order.min(self.geo.max_order);
        match self.pending.kswapd {
            Some(o) if o >= order => {}
            _ => {
                if self.pending.kswapd.is_none() {
                    self.vm.inc(Vm::KswapdWake);
                }
                self.pending.kswapd = Some(order);
            }
        }
    }

    /// Wake kcompactd for `order` (above the buddy orders: the largest, as for kswapd).
    pub fn wake_kcompactd(&mut self, order: u8) {
        let order = order.min(self.geo.max_order);
        if order == 0 {
            return;
        }
        self.pending.kcompactd = Some(self.pending.kcompactd.map_or(order, |o| o.max(order)));
    }

    /// Whether the node is balanced for `order`: some eligible zone passes its high watermark
    /// on the free pages kswapd counts (all, or under spb-next's `kswapd_movable_free` those
    /// not on unmovable or reclaimable free lists; in whole free pageblocks in defrag_mode for
    /// order > 0) and no zone is boosted.
    pub fn pgdat_balanced(&self, order: u8) -> bool {
        self.pgdat_balanced_on(order, self.policy.kswapd_movable_free())
    }

    /// [`Allocator::pgdat_balanced`] on all free pages, or (`movable_free`) on those not on
    /// non-movable free lists ([`Allocator::counted_free`]).
    fn pgdat_balanced_on(&self, order: u8, movable_free: bool) -> bool {
        if self.zones.iter().any(|z| z.watermark_boost > 0) {
            return false;
        }
        // every zone is checked against the waker's highest zone index (kswapd is woken by
        // allocations up to Normal), so lowmem_reserve keeps a free DMA zone from counting
        let hz = self.kswapd_classzone();
        self.zones
            .iter()
            .filter(|z| z.kind <= ZoneKind::Normal)
            .any(|z| {
                let free = if self.policy.defrag_mode() && order > 0 {
                    z.free_pages_blocks
                } else {
                    Self::counted_free(z, movable_free)
                };
                z.watermark_ok(
                    order,
                    z.wmark_pages(WMARK_HIGH),
                    hz,
                    AllocFlags::WMARK_HIGH,
                    free,
                )
            })
    }

    /// Zone `z`'s free pages as kswapd counts them: all of them, or (`movable_free`, spb-next's
    /// `kswapd_movable_free`) those not on unmovable or reclaimable free lists.
    fn counted_free(z: &Zone, movable_free: bool) -> u64 {
        if !movable_free {
            return z.free_pages;
        }
        let held = z.free_pages_on(&[MigrateType::Unmovable, MigrateType::Reclaimable]);
        z.free_pages.saturating_sub(held)
    }

    /// The highest zone index kswapd balances for (the highest zone up to Normal).
    fn kswapd_classzone(&self) -> usize {
        self.zones
            .iter()
            .filter(|z| z.kind <= ZoneKind::Normal)
            .map(|z| z.kind as usize)
            .max()
            .unwrap_or(0)
    }

    /// Run pending background work up to virtual time `now_ns`.
    pub fn background(&mut self, now_ns: u64, env: &mut dyn Env) {
        self.now_ns = self.now_ns.max(now_ns);
        self.kswapd_turn(env);
        let s = self.work_snap();
        if let Some(order) = self.pending.kcompactd.take() {
            self.run_kcompactd(order, env);
        }
        if self.now_ns >= self.last_pcp_decay_ns + PCP_DECAY_INTERVAL_NS {
            self.last_pcp_decay_ns = self.now_ns;
            for z in self.zones.iter_mut() {
                z.decay_pcp_high();
                let _ = z.take_cat_changes();
            }
        }
        if self.cfg.compaction_proactiveness > 0
            && self.now_ns >= self.last_proactive_ns + PROACTIVE_INTERVAL_NS
        {
            self.last_proactive_ns = self.now_ns;
            if self.proactive_compact(env) == Some(false) {
                // kcompactd: no progress (the score did not go down) defers proactive
                // compaction to default_timeout << COMPACT_MAX_DEFER_SHIFT
                self.last_proactive_ns =
                    self.now_ns + (PROACTIVE_INTERVAL_NS << 6) - PROACTIVE_INTERVAL_NS;
            }
        }
        let d = s.since(&self.work_snap());
        self.bg_work.add_kcompactd(&d);
        let s = self.work_snap();
        self.in_policy_worker = true;
        crate::policy::Policy::background(self, env);
        self.in_policy_worker = false;
        let d = s.since(&self.work_snap());
        self.bg_work.add_policy(&d);
    }

    /// Run kswapd now if an allocation woke it, and return whether it ran: the first step of
    /// [`Allocator::background`], public for an embedder whose kswapd runs beside the
    /// allocating task. Such an embedder calls it right after a request (the lab does when
    /// its scenario's `kswapd` is `on-wake`): a request that finds the zone below its low
    /// watermark wakes kswapd, which reclaims to the high watermark before the next request,
    /// instead of leaving a burst of requests to fall below min and stall in direct reclaim.
    /// Its work is kswapd's in the bill, never the request's.
    pub fn kswapd_turn(&mut self, env: &mut dyn Env) -> bool {
        let Some(order) = self.pending.kswapd.take() else {
            return false;
        };
        // the bill: each worker's work is the counters' delta around it
        let s = self.work_snap();
        self.run_kswapd(order, env);
        self.bg_work.kswapd_runs += 1;
        let d = s.since(&self.work_snap());
        self.bg_work.add_kswapd(&d);
        true
    }

    fn run_kswapd(&mut self, order: u8, env: &mut dyn Env) {
        self.vm.inc(Vm::Pageoutrun);
        let mut out = core::mem::take(&mut self.freed_scratch);
        for _ in 0..KSWAPD_MAX_ROUNDS {
            let boosted: u64 = self.zones.iter().map(|z| z.watermark_boost).sum();
            let unbalanced = !self.pgdat_balanced(order);
            if !unbalanced {
                break;
            }
            let boost_only = boosted > 0 && self.pgdat_balanced_ignoring_boost(order);
            let want: u64 = self
                .zones
                .iter()
                .filter(|z| z.kind <= ZoneKind::Normal)
                .map(|z| {
                    // kswapd_shrink_node: max(high_wmark_pages, SWAP_CLUSTER_MAX) per zone
                    let high = z.wmark_pages(WMARK_HIGH);
                    if self.cfg.kswapd_reclaims_high_watermark {
                        high.max(32)
                    } else {
                        let free = Self::counted_free(z, self.policy.kswapd_movable_free());
                        high.saturating_sub(free).max(32)
                    }
                })
                .sum::<u64>()
                .max(if boost_only { boosted } else { 0 });
            // `kswapd_movable_free`: a zone short of movable free pages alone is not helped by
            // shrinking slab, whose freed pages land on the reclaimable lists: slab is shrunk
            // only while the zone is short of free pages of any kind
            let shrink_slab =
                !self.policy.kswapd_movable_free() || !self.pgdat_balanced_on(order, false);
            out.clear();
            let req = ReclaimRequest {
                nr_pages: want,
                order,
                who: Reclaimer::Kswapd,
                may_swap: !boost_only,
                shrink_slab,
                prefer_range: None,
            };
            env.reclaim(req, &mut out);
            let (pages, _) = self.free_blocks(&out);
            self.vm.add(Vm::PgscanKswapd, pages);
            self.vm.add(Vm::PgstealKswapd, pages);
            if boost_only {
                for z in self.zones.iter_mut() {
                    z.watermark_boost = 0;
                }
                self.wake_kcompactd(self.geo.pageblock_order);
            }
            if pages == 0 {
                for z in self.zones.iter_mut() {
                    z.watermark_boost = 0;
                }
                break;
            }
        }
        self.freed_scratch = out;
        if self.cfg.compaction_skip_hints && self.pgdat_balanced(order) {
            // kswapd goes to sleep: where a direct compaction's scanners met, its marks go
            // (`reset_isolation_suitable`)
            for z in self.zones.iter_mut().filter(|z| z.compact.blockskip_flush) {
                z.reset_isolation_suitable();
            }
        }
        if order > 0 {
            self.wake_kcompactd(order);
        }
    }

    fn pgdat_balanced_ignoring_boost(&self, order: u8) -> bool {
        let hz = self.kswapd_classzone();
        self.zones
            .iter()
            .filter(|z| z.kind <= ZoneKind::Normal)
            .any(|z| {
                z.watermark_ok(
                    order,
                    z.wmark[WMARK_HIGH],
                    hz,
                    AllocFlags::WMARK_HIGH,
                    z.free_pages,
                )
            })
    }

    fn run_kcompactd(&mut self, order: u8, env: &mut dyn Env) {
        self.vm.inc(Vm::CompactDaemonWake);
        for zi in (0..self.zones.len()).rev() {
            // compaction_suit_allocation_order at the min watermark: not where the order is
            // already free, nor where compaction is unsuitable
            let suitable = {
                let z = &self.zones[zi];
                let min = z.wmark[WMARK_MIN];
                !z.watermark_ok(order, min, zi, AllocFlags(0), z.free_pages)
                    && crate::compaction::compaction_suitable(
                        z,
                        order,
                        min,
                        zi,
                        self.cfg.extfrag_threshold,
                    )
            };
            if !suitable {
                continue;
            }
            let before_free = self.vm.get(Vm::CompactFreeScanned);
            let r = self.compact_zone(
                zi,
                Some(order),
                CompactPriority::SyncLight,
                MigrateType::Unmovable,
                true,
                env,
            );
            let d = self.vm.get(Vm::CompactFreeScanned) - before_free;
            self.vm.add(Vm::CompactDaemonFreeScanned, d);
            if matches!(r, CompactResult::Complete | CompactResult::Partial) {
                self.zones[zi].drain_all_pcp();
            }
        }
    }

    /// Proactive compaction: when the node's fragmentation score (the zones' extfrag at the
    /// pageblock order, weighted by present pages) is above the high threshold, compact every
    /// zone whose own score is above the low threshold. Returns None when nothing ran, else
    /// whether some compacted zone's score went down.
    fn proactive_compact(&mut self, env: &mut dyn Env) -> Option<bool> {
        if self.pending.kswapd.is_some() {
            return None;
        }
        let low = 100u64.saturating_sub(self.cfg.compaction_proactiveness);
        let high = (low + (low / 2).min(10)).min(100);
        let pbo = self.geo.pageblock_order;
        let node_present: u64 = self.zones.iter().map(|z| z.present_pages).sum();
        let score: u64 = self
            .zones
            .iter()
            .map(|z| extfrag_for_order(z, pbo) * z.present_pages / (node_present + 1))
            .sum();
        if score <= high {
            return None;
        }
        let mut ran = None;
        for zi in 0..self.zones.len() {
            if self.zones[zi].free_pages < self.zones[zi].wmark[WMARK_HIGH] {
                continue;
            }
            let before = extfrag_for_order(&self.zones[zi], pbo);
            if before > low {
                self.compact_zone(
                    zi,
                    None,
                    CompactPriority::SyncLight,
                    MigrateType::Movable,
                    true,
                    env,
                );
                let progress = extfrag_for_order(&self.zones[zi], pbo) < before;
                ran = Some(ran.unwrap_or(false) || progress);
            }
        }
        ran
    }
}
