//! The bill: direct work done in an allocating caller's context, and background work by worker.
//!
//! Both are measured in pages touched with the kernel's own counters (`pgscan_direct`,
//! `compact_migrate_scanned`, `compact_free_scanned`, `pgmigrate_success`): the slow path and
//! `alloc_contig` take the counters' deltas around their own work, and
//! [`Allocator::background`](crate::Allocator::background) takes them around each worker. The
//! per-CPU hit and the zonelist walk of the fast path are never touched: a request that never
//! leaves the fast path costs nothing here (its direct work is 0 by definition). Definitions:
//! `docs/metrics.md`, "The bill".

use crate::vmstat::{Vm, VmStat};

/// Direct work done in the allocating caller's context, in pages touched, summed over the slow
/// path entries since the last [`crate::Allocator::take_request_cost`]. The embedder takes it
/// after every request; a request that was served on the fast path leaves it all zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestCost {
    /// Slow-path entries (`__alloc_pages_slowpath`, or one `alloc_contig` call).
    pub slow_entries: u32,
    /// Pages scanned by direct reclaim (`pgscan_direct`; the model's reclaim scans exactly the
    /// pages it frees), plus pages freed by reclaim a policy asks for in the slow path.
    pub reclaim_scanned: u64,
    /// Pages scanned by direct compaction's migrate scanner (`compact_migrate_scanned`).
    pub compact_migrate_scanned: u64,
    /// Pages scanned by direct compaction's free scanner (`compact_free_scanned`).
    pub compact_free_scanned: u64,
    /// Pages migrated in the caller's context: direct compaction, spb's synchronous evacuation,
    /// contiguous allocation (`pgmigrate_success`).
    pub migrated: u64,
    /// Set when a request failed while its preferred zone's free pages were above the zone's
    /// min watermark (read at the moment of the failure).
    pub failed_above_min: bool,
}

impl RequestCost {
    /// All pages touched: scanned by reclaim and by both compaction scanners, plus migrated.
    pub fn pages(&self) -> u64 {
        self.reclaim_scanned
            + self.compact_migrate_scanned
            + self.compact_free_scanned
            + self.migrated
    }
}

/// The counters a cost is a delta of.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WorkSnap {
    reclaim_scanned: u64,
    kswapd_scanned: u64,
    kswapd_reclaimed: u64,
    migrate_scanned: u64,
    free_scanned: u64,
    migrated: u64,
    policy_reclaimed: u64,
    stalls: u64,
}

impl WorkSnap {
    #[inline]
    pub(crate) fn take(vm: &VmStat, migrated: u64, policy_reclaimed: u64) -> WorkSnap {
        WorkSnap {
            stalls: vm.get(Vm::AllocstallDma)
                + vm.get(Vm::AllocstallDma32)
                + vm.get(Vm::AllocstallNormal)
                + vm.get(Vm::AllocstallMovable),
            reclaim_scanned: vm.get(Vm::PgscanDirect),
            kswapd_scanned: vm.get(Vm::PgscanKswapd),
            kswapd_reclaimed: vm.get(Vm::PgstealKswapd),
            migrate_scanned: vm.get(Vm::CompactMigrateScanned),
            free_scanned: vm.get(Vm::CompactFreeScanned),
            migrated,
            policy_reclaimed,
        }
    }

    /// The `allocstall_*` counters' sum.
    pub(crate) fn stalls(&self) -> u64 {
        self.stalls
    }

    /// `now - self`, field by field.
    pub(crate) fn since(&self, now: &WorkSnap) -> WorkSnap {
        WorkSnap {
            reclaim_scanned: now.reclaim_scanned - self.reclaim_scanned,
            kswapd_scanned: now.kswapd_scanned - self.kswapd_scanned,
            kswapd_reclaimed: now.kswapd_reclaimed - self.kswapd_reclaimed,
            migrate_scanned: now.migrate_scanned - self.migrate_scanned,
            free_scanned: now.free_scanned - self.free_scanned,
            migrated: now.migrated - self.migrated,
            policy_reclaimed: now.policy_reclaimed - self.policy_reclaimed,
            stalls: now.stalls - self.stalls,
        }
    }
}

impl RequestCost {
    /// Add one slow-path entry's work `d`.
    pub(crate) fn add_entry(&mut self, d: &WorkSnap) {
        self.slow_entries += 1;
        // a policy's own reclaim in the slow path is direct reclaim too
        self.reclaim_scanned += d.reclaim_scanned + d.policy_reclaimed;
        self.compact_migrate_scanned += d.migrate_scanned;
        self.compact_free_scanned += d.free_scanned;
        self.migrated += d.migrated;
    }
}

/// Direct-reclaim stalls by what reclaimed in a context that counts as direct reclaim: every
/// `allocstall_*` the allocator counts is counted here once, so the four fields add up to the
/// sum of the `allocstall_*` counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StallCauses {
    /// A request's own direct reclaim in the slow path (`__alloc_pages_direct_reclaim`).
    pub slow_path: u64,
    /// Rounds of reclaim for the migration targets of contiguous allocations (1 GiB requests
    /// and the end-of-run probe), in the caller's context.
    pub contig_targets: u64,
    /// Reclaim for the migration targets of the policy's evacuations run in the allocating
    /// caller's context (inside its slow path).
    pub evacuation_targets: u64,
    /// The same inside the policy's own background workers
    /// (= [`BackgroundWork::policy_workers_stalls`]).
    pub workers: u64,
}

impl StallCauses {
    /// All of them: the `allocstall_*` counters' sum.
    pub fn total(&self) -> u64 {
        self.slow_path + self.contig_targets + self.evacuation_targets + self.workers
    }
}

/// Direct compactions of one request order: the kernel's `compact_stall` and `compact_success`
/// split by the order of the request that compacted, with the work its scanners did in them.
/// One entry per buddy order; over all orders `stalls` and `success` add up to the two vmstat
/// counters (re-checked by the invariant checker).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompactionsAtOrder {
    /// Direct compactions that ran in at least one zone (`compact_stall`).
    pub stalls: u64,
    /// Those after which the request got its page (`compact_success`).
    pub success: u64,
    /// Entries the migrate scanner read, and pages the free scanner read, in them.
    pub migrate_scanned: u64,
    pub free_scanned: u64,
}

impl CompactionsAtOrder {
    /// Add one direct compaction whose scanners did the work `d`.
    pub(crate) fn add(&mut self, success: bool, d: &WorkSnap) {
        self.stalls += 1;
        self.success += success as u64;
        self.migrate_scanned += d.migrate_scanned;
        self.free_scanned += d.free_scanned;
    }
}

/// Background work since the allocator was built, by worker, in pages touched. Every field is
/// a delta of a kernel counter taken around that worker inside [`crate::Allocator::background`]
/// (kswapd's also inside [`crate::Allocator::kswapd_turn`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BackgroundWork {
    /// kswapd runs (`pageoutrun`).
    pub kswapd_runs: u64,
    /// Pages kswapd scanned (`pgscan_kswapd`) and reclaimed (`pgsteal_kswapd`).
    pub kswapd_scanned: u64,
    pub kswapd_reclaimed: u64,
    /// kcompactd (woken and proactive compaction): pages its migrate and free scanners
    /// scanned, and pages it migrated.
    pub kcompactd_migrate_scanned: u64,
    pub kcompactd_free_scanned: u64,
    pub kcompactd_migrated: u64,
    /// Pages moved by the policy's own workers (spb's defrag and evacuation work items).
    pub policy_workers_migrated: u64,
    /// Pages the policy's own workers freed by reclaim (spb's slab-shrink work items, and the
    /// reclaim of its evacuations for migration targets when the free lists are dry).
    pub policy_workers_reclaimed: u64,
    /// Direct-reclaim stalls (`allocstall_*`) counted inside the policy's own workers: the
    /// reclaim of their evacuations for migration targets.
    pub policy_workers_stalls: u64,
}

impl BackgroundWork {
    pub(crate) fn add_kswapd(&mut self, d: &WorkSnap) {
        self.kswapd_scanned += d.kswapd_scanned;
        self.kswapd_reclaimed += d.kswapd_reclaimed;
    }
    pub(crate) fn add_kcompactd(&mut self, d: &WorkSnap) {
        self.kcompactd_migrate_scanned += d.migrate_scanned;
        self.kcompactd_free_scanned += d.free_scanned;
        self.kcompactd_migrated += d.migrated;
    }
    pub(crate) fn add_policy(&mut self, d: &WorkSnap) {
        self.policy_workers_migrated += d.migrated;
        // a worker's evacuation reclaims for its migration targets when the free lists are
        // dry (counted as `pgscan_direct`, like any reclaim outside kswapd)
        self.policy_workers_reclaimed += d.policy_reclaimed + d.reclaim_scanned;
        self.policy_workers_stalls += d.stalls;
    }
}
