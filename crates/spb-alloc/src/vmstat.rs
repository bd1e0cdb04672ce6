//! Event counters with the kernel's /proc/vmstat names, plus spb's own counters.

macro_rules! vm_items {
    ($($v:ident => $n:literal,)*) => {
        /// A counter.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[allow(non_camel_case_types)]
        #[repr(usize)]
        pub enum Vm { $($v,)* }
        /// Number of counters.
        pub const NR_VM_ITEMS: usize = [$($n,)*].len();
        /// Names, in the order of [`Vm`].
        pub const VM_NAMES: [&str; NR_VM_ITEMS] = [$($n,)*];
    };
}

vm_items! {
    PgallocDma => "pgalloc_dma",
    PgallocDma32 => "pgalloc_dma32",
    PgallocNormal => "pgalloc_normal",
    PgallocMovable => "pgalloc_movable",
    AllocstallDma => "allocstall_dma",
    AllocstallDma32 => "allocstall_dma32",
    AllocstallNormal => "allocstall_normal",
    AllocstallMovable => "allocstall_movable",
    Pgfree => "pgfree",
    PgscanKswapd => "pgscan_kswapd",
    PgscanDirect => "pgscan_direct",
    PgstealKswapd => "pgsteal_kswapd",
    PgstealDirect => "pgsteal_direct",
    Pageoutrun => "pageoutrun",
    OomKill => "oom_kill",
    PgmigrateSuccess => "pgmigrate_success",
    PgmigrateFail => "pgmigrate_fail",
    CompactMigrateScanned => "compact_migrate_scanned",
    CompactFreeScanned => "compact_free_scanned",
    CompactIsolated => "compact_isolated",
    CompactStall => "compact_stall",
    CompactFail => "compact_fail",
    CompactSuccess => "compact_success",
    CompactDaemonWake => "compact_daemon_wake",
    CompactDaemonMigrateScanned => "compact_daemon_migrate_scanned",
    CompactDaemonFreeScanned => "compact_daemon_free_scanned",
    CmaAllocSuccess => "cma_alloc_success",
    CmaAllocFail => "cma_alloc_fail",
    KswapdWake => "kswapd_wake",
    WatermarkBoost => "watermark_boost",
    HighatomicReserve => "highatomic_reserve",
    HighatomicUnreserve => "highatomic_unreserve",
    ExtfragEvents => "extfrag_events",
    ExtfragFragmenting => "extfrag_fragmenting",
    ExtfragClaim => "extfrag_claim",
    ExtfragSteal => "extfrag_steal",
    ContigAllocSuccess => "contig_alloc_success",
    ContigAllocFail => "contig_alloc_fail",
    SpbHighorderRefused => "spb_highorder_refused",
    SpbBesteffortRefused => "spb_besteffort_refused",
    SpbCleanTainted => "spb_clean_tainted",
    SpbTaintedCleaned => "spb_tainted_cleaned",
    SpbDefragRuns => "spb_defrag_runs",
    SpbDefragPagesMoved => "spb_defrag_pages_moved",
    SpbEvacuateRuns => "spb_evacuate_runs",
    SpbEvacuatePagesMoved => "spb_evacuate_pages_moved",
    SpbEvacuateSplits => "spb_evacuate_splits",
    SpbSlabShrinks => "spb_slab_shrinks",
    SpbAtomicRelax => "spb_atomic_relax",
    SpbPass1 => "spb_alloc_pass1",
    SpbPass1Hint => "spb_alloc_pass1_hint",
    SpbPass2 => "spb_alloc_pass2",
    SpbPass2b => "spb_alloc_pass2b",
    SpbPass2c => "spb_alloc_pass2c",
    SpbPass2d => "spb_alloc_pass2d",
    SpbPass3 => "spb_alloc_pass3",
    SpbPass4 => "spb_alloc_pass4",
    SpbPassFail => "spb_alloc_fail",
    SpbContigSpbFastpath => "spb_contig_fastpath",
}

/// The counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmStat {
    pub(crate) v: [u64; NR_VM_ITEMS],
}

impl Default for VmStat {
    fn default() -> Self {
        VmStat {
            v: [0; NR_VM_ITEMS],
        }
    }
}

impl VmStat {
    #[inline(always)]
    pub fn inc(&mut self, i: Vm) {
        self.v[i as usize] += 1;
    }
    #[inline(always)]
    pub fn add(&mut self, i: Vm, n: u64) {
        self.v[i as usize] += n;
    }
    #[inline(always)]
    pub fn get(&self, i: Vm) -> u64 {
        self.v[i as usize]
    }
    /// (name, value) pairs in declaration order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        VM_NAMES.iter().copied().zip(self.v.iter().copied())
    }
}

/// Histogram of SPBs visited per spb allocation walk: buckets [0,5), [5,10), [10,20), [20,50),
/// [50,100), [100,inf) (the buckets of the series' spb_alloc_walk measurements).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WalkHistogram {
    pub(crate) buckets: [u64; 6],
    pub(crate) total_visits: u64,
    pub(crate) walks: u64,
}

impl WalkHistogram {
    /// Walks per bucket (bounds [`Self::BOUNDS`]).
    pub fn buckets(&self) -> [u64; 6] {
        self.buckets
    }
    /// SPBs visited over all walks.
    pub fn total_visits(&self) -> u64 {
        self.total_visits
    }
    /// Walks recorded.
    pub fn walks(&self) -> u64 {
        self.walks
    }
    pub const BOUNDS: [u64; 6] = [0, 5, 10, 20, 50, 100];
    pub fn record(&mut self, visited: u64) {
        let b = Self::BOUNDS
            .iter()
            .rposition(|&lo| visited >= lo)
            .unwrap_or(0);
        self.buckets[b] += 1;
        self.total_visits += visited;
        self.walks += 1;
    }
    /// Mean SPBs visited per walk.
    pub fn mean(&self) -> f64 {
        if self.walks == 0 {
            0.0
        } else {
            self.total_visits as f64 / self.walks as f64
        }
    }
    /// The bucket `[lo, hi)` holding the median walk (`hi` = u64::MAX for the last bucket).
    pub fn median_bucket(&self) -> (u64, u64) {
        let mut seen = 0;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen * 2 >= self.walks && n > 0 {
                return (
                    Self::BOUNDS[i],
                    Self::BOUNDS.get(i + 1).copied().unwrap_or(u64::MAX),
                );
            }
        }
        (0, Self::BOUNDS[1])
    }
}
