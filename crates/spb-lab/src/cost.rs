//! The bill (issue 15): what a policy costs the rest of the kernel, measured the way reviewers of
//! the series and of defrag_mode measure it. Definitions: `docs/metrics.md`, "The bill".
//!
//! [`CostAcc`] is filled while a run or replay goes on: one [`CostAcc::record`] per page
//! allocator request with the allocator's [`RequestCost`] for it, one [`CostAcc::record_contig`]
//! per contiguous (1 GiB) request of the workload, the caller's kind of every failure, and the
//! outcome of every fallback after a failed optional request. [`CostAcc::report`] turns it, the
//! allocator's [`BackgroundWork`] and the probe's result into the typed JSON block
//! [`CostReport`] (`runs[].cost`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use spb_alloc::{BackgroundWork, CompactionsAtOrder, Gfp, MigrateType, RequestCost, StallCauses};

/// The request classes of the bill, decided from the request alone (gfp mask, order, API).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ReqClass {
    /// Non-movable, without `__GFP_DIRECT_RECLAIM` (GFP_ATOMIC, GFP_NOWAIT, and the
    /// non-blocking first tries of high-order slab pages and skb page-frag refills).
    Atomic,
    /// Non-movable, may reclaim, order 0.
    KernelOrder0,
    /// Non-movable, may reclaim, order ≥ 1.
    KernelHighOrder,
    /// Movable (`__GFP_MOVABLE`): anonymous pages, THPs, page-cache folios, shmem, whatever the
    /// reclaim bits (THP's GFP_TRANSHUGE_LIGHT does not reclaim and is still here).
    Movable,
    /// A contiguous allocation (`alloc_contig`: the workload's 1 GiB hugetlb requests; the
    /// end-of-run probe is not a request of the run).
    Contig,
}

impl ReqClass {
    pub const ALL: [ReqClass; 5] = [
        ReqClass::Atomic,
        ReqClass::KernelOrder0,
        ReqClass::KernelHighOrder,
        ReqClass::Movable,
        ReqClass::Contig,
    ];

    /// JSON key.
    pub fn name(self) -> &'static str {
        match self {
            ReqClass::Atomic => "atomic",
            ReqClass::KernelOrder0 => "kernel_order0",
            ReqClass::KernelHighOrder => "kernel_high_order",
            ReqClass::Movable => "movable",
            ReqClass::Contig => "contig",
        }
    }

    /// The class of a page-allocator request (`alloc`, not `alloc_contig`): movable first (by
    /// its migratetype), then atomic (no direct reclaim, but a kernel atomic mask: it wakes
    /// kswapd or uses the reserves, as GFP_ATOMIC and GFP_NOWAIT), then by order. An
    /// opportunistic try ([`Gfp::is_opportunistic`], SLUB's high-order first try) is a kernel
    /// request of its order, not an atomic one: its caller can sleep in its fallback.
    pub fn of(gfp: Gfp, order: u8) -> ReqClass {
        if gfp.migratetype() == MigrateType::Movable {
            ReqClass::Movable
        } else if !gfp.contains(Gfp::DIRECT_RECLAIM) && !gfp.is_opportunistic() {
            ReqClass::Atomic
        } else if order == 0 {
            ReqClass::KernelOrder0
        } else {
            ReqClass::KernelHighOrder
        }
    }
}

/// Optional requests: the caller has a cheap fallback when they fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OptionalKind {
    /// A THP at page fault; the fallback is a base page for the faulting address.
    ThpFault,
    /// A large page-cache folio; the fallback is a folio of a lower order (down to 0).
    PagecacheFolio,
    /// A slab page above the cache's minimum order; the fallback is the minimum order.
    SlabHighOrder,
    /// An skb page-frag cache refill of a high order; the fallback is an order-0 page.
    SkbFragRefill,
    /// Trace replay: a failed order ≥ 1 request, replayed as order-0 pieces of the same memory.
    ReplayPieces,
}

impl OptionalKind {
    pub const ALL: [OptionalKind; 5] = [
        OptionalKind::ThpFault,
        OptionalKind::PagecacheFolio,
        OptionalKind::SlabHighOrder,
        OptionalKind::SkbFragRefill,
        OptionalKind::ReplayPieces,
    ];
    /// JSON key.
    pub fn name(self) -> &'static str {
        match self {
            OptionalKind::ThpFault => "thp_fault",
            OptionalKind::PagecacheFolio => "pagecache_folio",
            OptionalKind::SlabHighOrder => "slab_high_order",
            OptionalKind::SkbFragRefill => "skb_frag_refill",
            OptionalKind::ReplayPieces => "replay_order0_pieces",
        }
    }
}

/// The link between a failed optional request and its caller's fallback: made by
/// [`CostAcc::optional_failed`] when the optional request fails, consumed by
/// [`CostAcc::fallback_done`] with the fallback's outcome.
#[must_use = "a failed optional request's fallback outcome must be recorded"]
#[derive(Debug)]
pub struct FallbackLink {
    kind: OptionalKind,
}

/// An exact distribution of non-negative integers (value -> count), with the zeros (most
/// requests) counted apart.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dist {
    zeros: u64,
    vals: BTreeMap<u64, u64>,
}

impl Dist {
    /// Add `n` observations of `v`.
    pub fn add(&mut self, v: u64, n: u64) {
        if n == 0 {
            return;
        }
        if v == 0 {
            self.zeros += n;
        } else {
            *self.vals.entry(v).or_insert(0) += n;
        }
    }
    /// Observations.
    pub fn count(&self) -> u64 {
        self.zeros + self.vals.values().sum::<u64>()
    }
    /// Sum of the observations.
    pub fn sum(&self) -> u64 {
        self.vals.iter().map(|(v, n)| v * n).sum()
    }
    /// Largest observation (0 when empty).
    pub fn max(&self) -> u64 {
        self.vals.keys().next_back().copied().unwrap_or(0)
    }
    /// The `q`-quantile, `q = per_mille / 1000` (1..=1000), by the nearest-rank method: the
    /// smallest value `v` such that at least `ceil(q × N)` observations are ≤ `v` (integer
    /// arithmetic: no rounding). 0 when empty.
    pub fn quantile(&self, per_mille: u64) -> u64 {
        let n = self.count();
        if n == 0 {
            return 0;
        }
        let rank = ((per_mille as u128 * n as u128).div_ceil(1000) as u64).clamp(1, n);
        if rank <= self.zeros {
            return 0;
        }
        let mut seen = self.zeros;
        for (&v, &c) in &self.vals {
            seen += c;
            if seen >= rank {
                return v;
            }
        }
        self.max()
    }
    /// Add every observation of `o`.
    pub fn merge(&mut self, o: &Dist) {
        self.zeros += o.zeros;
        for (&v, &c) in &o.vals {
            *self.vals.entry(v).or_insert(0) += c;
        }
    }
    /// Observations of at least `v` (exact).
    pub fn at_least(&self, v: u64) -> u64 {
        if v == 0 {
            return self.count();
        }
        self.vals.range(v..).map(|(_, c)| c).sum()
    }
    /// The summary the JSON carries.
    pub fn summary(&self) -> Percentiles {
        let n = self.count();
        Percentiles {
            at_least: (n > 0).then(|| Tail {
                ge_1k: self.at_least(1_000),
                ge_10k: self.at_least(10_000),
                ge_100k: self.at_least(100_000),
                ge_1m: self.at_least(1_000_000),
            }),
            count: n,
            p50: self.quantile(500),
            p99: self.quantile(990),
            p999: self.quantile(999),
            max: self.max(),
            mean: if n == 0 {
                0.0
            } else {
                self.sum() as f64 / n as f64
            },
        }
    }
}

/// Pages of direct work by kind, summed over requests.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectPages {
    pub reclaim_scanned: u64,
    pub compact_migrate_scanned: u64,
    pub compact_free_scanned: u64,
    pub migrated: u64,
}

impl DirectPages {
    fn add(&mut self, c: &RequestCost) {
        self.reclaim_scanned += c.reclaim_scanned;
        self.compact_migrate_scanned += c.compact_migrate_scanned;
        self.compact_free_scanned += c.compact_free_scanned;
        self.migrated += c.migrated;
    }
    fn merge(&mut self, o: &DirectPages) {
        self.reclaim_scanned += o.reclaim_scanned;
        self.compact_migrate_scanned += o.compact_migrate_scanned;
        self.compact_free_scanned += o.compact_free_scanned;
        self.migrated += o.migrated;
    }
    pub fn total(&self) -> u64 {
        self.reclaim_scanned
            + self.compact_migrate_scanned
            + self.compact_free_scanned
            + self.migrated
    }
}

/// The tail of a distribution of pages touched in absolute counts: the requests whose direct
/// work was at least 1 000 pages (about a 4 MiB reclaim or two pageblocks scanned), 10 000,
/// 100 000 and 1 000 000 (one threshold per decade). Exact.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tail {
    pub ge_1k: u64,
    pub ge_10k: u64,
    pub ge_100k: u64,
    pub ge_1m: u64,
}

/// Nearest-rank percentiles of a distribution of pages touched, and its tail in absolute counts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    pub mean: f64,
    /// The tail in absolute counts ([`Tail`]). Unlike a percentile it does not depend on the
    /// distribution's `count`, so two policies' tails compare directly even when one enters
    /// the slow path less often. None when `count` is 0 and in files written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_least: Option<Tail>,
}

/// The bill of one request class (or of all requests).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClassCost {
    /// Requests of the class.
    pub requests: u64,
    /// Of which entered the slow path (or, for contig, every request).
    pub slow_path: u64,
    /// Of which failed.
    pub failures: u64,
    /// Failures while the preferred zone's free pages were above its min watermark.
    pub failures_above_min: u64,
    /// Direct work per request, pages touched, over all requests of the class.
    pub direct_all: Percentiles,
    /// Direct work per request, pages touched, over the requests that entered the slow path.
    pub direct_slow: Percentiles,
    /// The direct work summed, by kind.
    pub pages: DirectPages,
}

/// Background work of the run, totals and per virtual second.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BackgroundCost {
    pub kswapd_runs: u64,
    pub kswapd_scanned: u64,
    pub kswapd_reclaimed: u64,
    pub kcompactd_migrate_scanned: u64,
    pub kcompactd_free_scanned: u64,
    pub kcompactd_migrated: u64,
    /// Pages moved by the policy's own workers (spb's defrag and evacuation work items).
    pub workers_migrated: u64,
    /// Pages freed by the policy's own workers' reclaim (spb's slab-shrink work items, and
    /// the reclaim of its evacuations for migration targets).
    pub workers_reclaimed: u64,
    /// Direct-reclaim stalls (`allocstall_*`) inside the policy's own workers (their
    /// evacuations' reclaim for migration targets); included in the run's stalls.
    #[serde(default)]
    pub workers_stalls: u64,
    /// The same, per virtual second of the run (`virtual_seconds`; 0 when it is 0).
    pub per_second: BackgroundRates,
}

/// Direct-reclaim stalls of the run by what reclaimed in the caller's context
/// (`spb_alloc::StallCauses`). With the policy workers' stalls
/// ([`BackgroundCost::workers_stalls`]) they add up to the run's `allocstall_*` counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StallsCost {
    /// Requests' own direct reclaim in the slow path.
    pub slow_path: u64,
    /// Reclaim rounds for the migration targets of contiguous allocations (the run's 1 GiB
    /// requests; the probe's are not the run's).
    pub contig_targets: u64,
    /// Reclaim for the migration targets of the policy's evacuations in the allocating
    /// caller's context.
    pub evacuation_targets: u64,
}

/// The run's direct compactions of one request order (`spb_alloc::CompactionsAtOrder`):
/// `compact_stall` and `compact_success` split by order, with the scanners' work in them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactionCost {
    pub order: u8,
    /// Direct compactions (`compact_stall`) and those after which the request got its page
    /// (`compact_success`).
    pub stalls: u64,
    pub success: u64,
    /// Entries the migrate scanner read, and pages the free scanner read, in them.
    pub migrate_scanned: u64,
    pub free_scanned: u64,
}

/// Background work per virtual second.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BackgroundRates {
    pub kswapd_scanned: f64,
    pub kswapd_reclaimed: f64,
    /// Migrate and free scanners together.
    pub kcompactd_scanned: f64,
    pub kcompactd_migrated: f64,
    pub workers_migrated: f64,
    pub workers_reclaimed: f64,
}

/// Failed optional requests of one kind and what their callers' fallbacks did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptionalCost {
    /// Optional requests that failed (or were refused).
    pub failed: u64,
    /// Of which the caller's fallback then succeeded.
    pub fallback_ok: u64,
    /// Of which the fallback failed too.
    pub fallback_failed: u64,
}

/// The 1 GiB probe's migrations per page obtained.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProbeCost {
    /// 1 GiB pages obtained (`gigantic.allocatable`).
    pub obtained: u64,
    /// Pages the probe migrated (`gigantic.probe_pages_migrated`).
    pub pages_migrated: u64,
    /// `pages_migrated / obtained`; null when nothing was obtained (the migrations bought
    /// nothing: read `pages_migrated`).
    pub migrated_per_page: Option<f64>,
}

/// Large folios the run split into base pages because migration found no whole target for
/// them (compaction under every policy; spb-next's contiguous allocations with `contig_split`
/// and its evacuations with `evacuate_split` or `evacuate_split_first`); the end-of-run
/// probe's are not the run's.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FolioSplits {
    /// Anonymous THPs (`thp_split_page`).
    pub thp: u64,
    /// Large page-cache and shmem folios.
    pub file: u64,
}

/// `runs[].cost`: the bill of one run or replay (docs/metrics.md, "The bill").
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CostReport {
    /// By request class ([`ReqClass::name`]), plus `"all"`.
    pub classes: BTreeMap<String, ClassCost>,
    pub background: BackgroundCost,
    /// Failed requests by the caller's kind (the lab's object kinds; a replay uses the class).
    pub failures_by_kind: BTreeMap<String, u64>,
    /// Failed optional requests by kind ([`OptionalKind::name`]) and their fallbacks.
    pub optional: BTreeMap<String, OptionalCost>,
    /// Atomic-class failures while the preferred zone had free pages above its min watermark.
    pub atomic_failures_above_min: u64,
    /// Of which without `__GFP_NOWARN` (the caller has no fallback; the kernel would log a
    /// "page allocation failure").
    pub atomic_failures_above_min_warned: u64,
    pub probe: ProbeCost,
    /// Direct-reclaim stalls by cause (absent in files written before it existed).
    #[serde(default)]
    pub stalls: Option<StallsCost>,
    /// Direct compactions by request order, the orders that compacted only (absent in files
    /// written before it existed).
    #[serde(default)]
    pub compactions: Option<Vec<CompactionCost>>,
    /// Large folios split during the run (runs only: a replay cannot split the traced
    /// machine's folios; absent in files written before it existed).
    #[serde(default)]
    pub folio_splits: Option<FolioSplits>,
}

impl CostReport {
    /// The class entry (all zero when absent).
    pub fn class(&self, name: &str) -> ClassCost {
        self.classes.get(name).cloned().unwrap_or_default()
    }
}

#[derive(Clone, Debug, Default)]
struct ClassAcc {
    requests: u64,
    failures: u64,
    failures_above_min: u64,
    /// Direct work of the requests that entered the slow path.
    slow: Dist,
    pages: DirectPages,
}

impl ClassAcc {
    fn merge(&mut self, o: &ClassAcc) {
        self.requests += o.requests;
        self.failures += o.failures;
        self.failures_above_min += o.failures_above_min;
        self.slow.merge(&o.slow);
        self.pages.merge(&o.pages);
    }
    fn report(&self) -> ClassCost {
        let mut all = self.slow.clone();
        all.add(0, self.requests - self.slow.count());
        ClassCost {
            requests: self.requests,
            slow_path: self.slow.count(),
            failures: self.failures,
            failures_above_min: self.failures_above_min,
            direct_all: all.summary(),
            direct_slow: self.slow.summary(),
            pages: self.pages.clone(),
        }
    }
}

/// The accumulator of a run's bill.
#[derive(Clone, Debug, Default)]
pub struct CostAcc {
    classes: [ClassAcc; 5],
    atomic_above_min_warned: u64,
    failures_by_kind: BTreeMap<String, u64>,
    optional: [OptionalCost; 5],
}

impl CostAcc {
    /// One page-allocator request (`gfp`, `order`), its direct work `c` (the allocator's
    /// [`spb_alloc::Allocator::take_request_cost`] right after it) and whether it succeeded.
    /// Returns its class.
    #[inline]
    pub fn record(&mut self, gfp: Gfp, order: u8, c: &RequestCost, ok: bool) -> ReqClass {
        let class = ReqClass::of(gfp, order);
        let a = &mut self.classes[class as usize];
        a.requests += 1;
        if c.slow_entries > 0 {
            a.slow.add(c.pages(), 1);
            a.pages.add(c);
        }
        if !ok {
            a.failures += 1;
            a.failures_above_min += c.failed_above_min as u64;
            if class == ReqClass::Atomic && c.failed_above_min && !gfp.contains(Gfp::NOWARN) {
                self.atomic_above_min_warned += 1;
            }
        }
        class
    }

    /// One contiguous request of the workload and its direct work `c` (the allocator's
    /// [`spb_alloc::Allocator::take_request_cost`] right after it: pages migrated and pages
    /// reclaimed for their targets). Every contiguous request counts as a slow-path entry.
    pub fn record_contig(&mut self, c: &RequestCost, ok: bool) {
        let a = &mut self.classes[ReqClass::Contig as usize];
        a.requests += 1;
        a.slow.add(c.pages(), 1);
        a.pages.add(c);
        a.failures += !ok as u64;
    }

    /// A failed request of the caller kind `kind`.
    pub fn failed_kind(&mut self, kind: &str) {
        match self.failures_by_kind.get_mut(kind) {
            Some(n) => *n += 1,
            None => {
                self.failures_by_kind.insert(kind.to_string(), 1);
            }
        }
    }

    /// An optional request of kind `k` failed; the caller now falls back. The link must be
    /// handed to [`CostAcc::fallback_done`] with the fallback's outcome.
    pub fn optional_failed(&mut self, k: OptionalKind) -> FallbackLink {
        self.optional[k as usize].failed += 1;
        FallbackLink { kind: k }
    }

    /// The fallback of the failed optional request `link` succeeded (`ok`) or failed.
    pub fn fallback_done(&mut self, link: FallbackLink, ok: bool) {
        let o = &mut self.optional[link.kind as usize];
        if ok {
            o.fallback_ok += 1;
        } else {
            o.fallback_failed += 1;
        }
    }

    /// The JSON block: `bg` is the allocator's background work over the run, `stalls` its
    /// direct-reclaim stalls by cause, `compactions` its direct compactions by request order
    /// (index = order), `virtual_seconds` the run's length, `probe_obtained`/`probe_migrated`
    /// the end-of-run probe's result.
    pub fn report(
        &self,
        bg: &BackgroundWork,
        stalls: &StallCauses,
        compactions: &[CompactionsAtOrder],
        virtual_seconds: f64,
        probe_obtained: u64,
        probe_migrated: u64,
    ) -> CostReport {
        let mut classes = BTreeMap::new();
        let mut all = ClassAcc::default();
        for c in ReqClass::ALL {
            let a = &self.classes[c as usize];
            all.merge(a);
            classes.insert(c.name().to_string(), a.report());
        }
        classes.insert("all".to_string(), all.report());
        let rate = |n: u64| {
            if virtual_seconds > 0.0 {
                n as f64 / virtual_seconds
            } else {
                0.0
            }
        };
        let background = BackgroundCost {
            kswapd_runs: bg.kswapd_runs,
            kswapd_scanned: bg.kswapd_scanned,
            kswapd_reclaimed: bg.kswapd_reclaimed,
            kcompactd_migrate_scanned: bg.kcompactd_migrate_scanned,
            kcompactd_free_scanned: bg.kcompactd_free_scanned,
            kcompactd_migrated: bg.kcompactd_migrated,
            workers_migrated: bg.policy_workers_migrated,
            workers_reclaimed: bg.policy_workers_reclaimed,
            workers_stalls: bg.policy_workers_stalls,
            per_second: BackgroundRates {
                kswapd_scanned: rate(bg.kswapd_scanned),
                kswapd_reclaimed: rate(bg.kswapd_reclaimed),
                kcompactd_scanned: rate(bg.kcompactd_migrate_scanned + bg.kcompactd_free_scanned),
                kcompactd_migrated: rate(bg.kcompactd_migrated),
                workers_migrated: rate(bg.policy_workers_migrated),
                workers_reclaimed: rate(bg.policy_workers_reclaimed),
            },
        };
        let optional = OptionalKind::ALL
            .iter()
            .filter(|k| self.optional[**k as usize].failed > 0)
            .map(|k| (k.name().to_string(), self.optional[*k as usize].clone()))
            .collect();
        CostReport {
            atomic_failures_above_min: self.classes[ReqClass::Atomic as usize].failures_above_min,
            atomic_failures_above_min_warned: self.atomic_above_min_warned,
            classes,
            background,
            failures_by_kind: self.failures_by_kind.clone(),
            optional,
            stalls: Some(StallsCost {
                slow_path: stalls.slow_path,
                contig_targets: stalls.contig_targets,
                evacuation_targets: stalls.evacuation_targets,
            }),
            compactions: Some(
                compactions
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| c.stalls > 0)
                    .map(|(o, c)| CompactionCost {
                        order: o as u8,
                        stalls: c.stalls,
                        success: c.success,
                        migrate_scanned: c.migrate_scanned,
                        free_scanned: c.free_scanned,
                    })
                    .collect(),
            ),
            folio_splits: None,
            probe: ProbeCost {
                obtained: probe_obtained,
                pages_migrated: probe_migrated,
                migrated_per_page: if probe_obtained > 0 {
                    Some(probe_migrated as f64 / probe_obtained as f64)
                } else {
                    None
                },
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dist(pairs: &[(u64, u64)]) -> Dist {
        let mut d = Dist::default();
        for &(v, n) in pairs {
            d.add(v, n);
        }
        d
    }

    #[test]
    fn tail_counts_are_exact_and_do_not_depend_on_the_zeros() {
        // the same heavy tail behind 100 or 10 000 cheap entries: the p99 moves, the counts not
        let tail = [(999, 3), (1000, 2), (50_000, 4), (2_000_000, 1)];
        let few = dist(&[&[(0, 100)][..], &tail].concat()).summary();
        let many = dist(&[&[(0, 10_000)][..], &tail].concat()).summary();
        assert_ne!(few.p99, many.p99);
        let want = Some(Tail {
            ge_1k: 7,
            ge_10k: 5,
            ge_100k: 1,
            ge_1m: 1,
        });
        assert_eq!(few.at_least, want);
        assert_eq!(many.at_least, want);
        assert_eq!(Dist::default().summary().at_least, None);
        // through a JSON value and back, as the sweep's lines are read
        let v = serde_json::to_value(&few).unwrap();
        assert_eq!(serde_json::from_value::<Percentiles>(v).unwrap(), few);
        assert_eq!(dist(&[(0, 3), (5, 1)]).at_least(0), 4);
    }

    #[test]
    fn nearest_rank_percentiles_of_known_distributions() {
        // 1..=100, once each: the q-quantile is ceil(100 q)
        let d = dist(&(1..=100).map(|v| (v, 1)).collect::<Vec<_>>());
        assert_eq!(d.quantile(500), 50);
        assert_eq!(d.quantile(990), 99);
        assert_eq!(d.quantile(999), 100);
        assert_eq!(d.quantile(1), 1);
        assert_eq!(d.max(), 100);
        assert_eq!(d.sum(), 5050);
        // 990 zeros, 9 tens, one 1000: p50 0, p99 0 (rank 990), p99.9 10 (rank 999), max 1000
        let d = dist(&[(0, 990), (10, 9), (1000, 1)]);
        let s = d.summary();
        assert_eq!(
            (s.count, s.p50, s.p99, s.p999, s.max),
            (1000, 0, 0, 10, 1000)
        );
        assert!((s.mean - 1.09).abs() < 1e-9);
        // one observation more: the p99 rank is ceil(990.99) = 991, a ten
        let d2 = dist(&[(0, 990), (10, 10), (1000, 1)]);
        assert_eq!(d2.quantile(990), 10);
        assert_eq!(d2.quantile(989), 0);
        assert_eq!(d2.quantile(1000), 1000);
        // a single value
        let d = dist(&[(7, 1)]);
        assert_eq!((d.quantile(500), d.quantile(999), d.max()), (7, 7, 7));
        // empty
        let s = Dist::default().summary();
        assert_eq!((s.count, s.p50, s.p99, s.p999, s.max), (0, 0, 0, 0, 0));
        assert_eq!(s.mean, 0.0);
    }

    #[test]
    fn merge_is_the_union() {
        let mut a = dist(&[(0, 3), (5, 2)]);
        a.merge(&dist(&[(5, 1), (9, 4), (0, 1)]));
        assert_eq!(a, dist(&[(0, 4), (5, 3), (9, 4)]));
        assert_eq!(a.count(), 11);
    }

    #[test]
    fn classes_follow_the_gfp_mask_and_order() {
        use ReqClass::*;
        assert_eq!(ReqClass::of(Gfp::ATOMIC, 0), Atomic);
        assert_eq!(ReqClass::of(Gfp::ATOMIC, 3), Atomic);
        assert_eq!(ReqClass::of(Gfp::NOWAIT, 0), Atomic);
        assert_eq!(ReqClass::of(Gfp::KERNEL, 0), KernelOrder0);
        assert_eq!(
            ReqClass::of(Gfp::KERNEL.with(Gfp::RECLAIMABLE), 0),
            KernelOrder0
        );
        assert_eq!(ReqClass::of(Gfp::KERNEL, 2), KernelHighOrder);
        assert_eq!(ReqClass::of(Gfp::HIGHUSER_MOVABLE, 0), Movable);
        assert_eq!(ReqClass::of(Gfp::TRANSHUGE, 9), Movable);
        // GFP_TRANSHUGE_LIGHT never reclaims directly and is still movable, not atomic
        assert_eq!(ReqClass::of(Gfp::TRANSHUGE_LIGHT, 9), Movable);
        // a mask without direct reclaim that still wakes kswapd is atomic
        let nowait_try = Gfp::KERNEL
            .without(Gfp::DIRECT_RECLAIM)
            .with(Gfp::NOWARN)
            .with(Gfp::NORETRY);
        assert_eq!(ReqClass::of(nowait_try, 3), Atomic);
        // SLUB's first high-order try clears __GFP_RECLAIM (both bits) and adds NOMEMALLOC:
        // an opportunistic try of a kernel caller, classed by its order
        let slab_try = Gfp::KERNEL
            .with(Gfp::RECLAIMABLE)
            .with(Gfp::NOWARN)
            .with(Gfp::NORETRY)
            .with(Gfp::NOMEMALLOC)
            .without(Gfp::RECLAIM);
        assert!(slab_try.is_opportunistic());
        assert_eq!(ReqClass::of(slab_try, 3), KernelHighOrder);
        assert_eq!(ReqClass::of(slab_try, 0), KernelOrder0);
        // __GFP_HIGH alone (no reclaim bit) is a reserve user: atomic
        assert_eq!(ReqClass::of(Gfp::HIGH, 0), Atomic);
    }

    fn cost(slow: u32, reclaim: u64, mig_scan: u64, free_scan: u64, migrated: u64) -> RequestCost {
        RequestCost {
            slow_entries: slow,
            reclaim_scanned: reclaim,
            compact_migrate_scanned: mig_scan,
            compact_free_scanned: free_scan,
            migrated,
            failed_above_min: false,
        }
    }

    #[test]
    fn aggregation_by_class_all_and_slow() {
        let mut acc = CostAcc::default();
        let fast = RequestCost::default();
        for _ in 0..97 {
            acc.record(Gfp::KERNEL, 0, &fast, true);
        }
        // three slow-path entries: 0, 32 and 32+100+200+50 pages
        acc.record(Gfp::KERNEL, 0, &cost(1, 0, 0, 0, 0), true);
        acc.record(Gfp::KERNEL, 0, &cost(1, 32, 0, 0, 0), true);
        acc.record(Gfp::KERNEL, 0, &cost(1, 32, 100, 200, 50), false);
        let atomic_fail = RequestCost {
            slow_entries: 1,
            failed_above_min: true,
            ..RequestCost::default()
        };
        assert_eq!(
            acc.record(Gfp::ATOMIC, 0, &atomic_fail, false),
            ReqClass::Atomic
        );
        let contig = RequestCost {
            slow_entries: 1,
            migrated: 262_144,
            ..RequestCost::default()
        };
        acc.record_contig(&contig, true);
        acc.failed_kind("slab");
        acc.failed_kind("slab");
        let l = acc.optional_failed(OptionalKind::SlabHighOrder);
        acc.fallback_done(l, true);
        let l = acc.optional_failed(OptionalKind::SlabHighOrder);
        acc.fallback_done(l, false);
        let bg = BackgroundWork {
            kswapd_scanned: 1000,
            kcompactd_migrate_scanned: 30,
            kcompactd_free_scanned: 10,
            ..BackgroundWork::default()
        };
        let stalls = StallCauses {
            slow_path: 3,
            contig_targets: 2,
            evacuation_targets: 1,
            workers: 4,
        };
        let r = acc.report(&bg, &stalls, &[], 10.0, 2, 600_000);
        assert_eq!(
            r.stalls,
            Some(StallsCost {
                slow_path: 3,
                contig_targets: 2,
                evacuation_targets: 1,
            }),
            "the workers' are in the background block"
        );
        let k = r.class("kernel_order0");
        assert_eq!((k.requests, k.slow_path, k.failures), (100, 3, 1));
        assert_eq!(k.direct_slow.count, 3);
        assert_eq!(
            (k.direct_slow.p50, k.direct_slow.max),
            (32, 32 + 100 + 200 + 50)
        );
        // over all 100 requests: 98 zeros, 32, 382
        assert_eq!(
            (k.direct_all.p50, k.direct_all.p99, k.direct_all.max),
            (0, 32, 382)
        );
        assert_eq!(k.pages.total(), 32 + 32 + 100 + 200 + 50);
        assert_eq!(k.pages.reclaim_scanned, 64);
        let a = r.class("atomic");
        assert_eq!((a.requests, a.failures, a.failures_above_min), (1, 1, 1));
        assert_eq!(r.atomic_failures_above_min, 1);
        assert_eq!(r.atomic_failures_above_min_warned, 1);
        let all = r.class("all");
        assert_eq!((all.requests, all.slow_path, all.failures), (102, 5, 2));
        assert_eq!(all.direct_slow.max, 262_144);
        assert_eq!(r.class("contig").pages.migrated, 262_144);
        assert_eq!(r.failures_by_kind.get("slab"), Some(&2));
        assert_eq!(
            r.optional.get("slab_high_order"),
            Some(&OptionalCost {
                failed: 2,
                fallback_ok: 1,
                fallback_failed: 1
            })
        );
        assert!(!r.optional.contains_key("thp_fault"));
        assert_eq!(r.background.per_second.kswapd_scanned, 100.0);
        assert_eq!(r.background.per_second.kcompactd_scanned, 4.0);
        assert_eq!(r.probe.migrated_per_page, Some(300_000.0));
        assert_eq!(
            acc.report(&bg, &StallCauses::default(), &[], 0.0, 0, 5)
                .probe
                .migrated_per_page,
            None
        );
        assert_eq!(
            acc.report(&bg, &StallCauses::default(), &[], 0.0, 0, 5)
                .background
                .per_second
                .kswapd_scanned,
            0.0
        );
        // the block round-trips through JSON
        let j = serde_json::to_string(&r).unwrap();
        let back: CostReport = serde_json::from_str(&j).unwrap();
        assert_eq!(back, r);
    }
}
