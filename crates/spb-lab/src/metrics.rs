//! The metrics of one run, serialised as the JSON documented in `docs/metrics.md`.
//!
//! The definitions (non-movable and reserved pages; tainted, pinned, lost, clean and empty
//! SPBs; the floors; the 1 GiB probe and limit) are written once, in the repository's
//! `docs/metrics.md` ("Definitions"); `crate::measure` computes them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Top-level JSON document: `{"runs": [...]}`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct RunsDoc {
    pub runs: Vec<RunMetrics>,
}

/// SPB census of one zone or of all zones together.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct SpbCensus {
    pub spb_total: u64,
    /// Tainted at the end of the run.
    pub spb_tainted: u64,
    /// Largest number tainted at any sample during the run.
    pub spb_tainted_peak: u64,
    pub spb_pinned: u64,
    pub spb_lost: u64,
    pub lost_floor: u64,
    pub tainted_floor: u64,
    pub spb_clean: u64,
    pub spb_empty: u64,
}

/// Outcome of the end-of-run 1 GiB probe.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Gigantic {
    /// 1 GiB pages the probe obtained.
    pub allocatable: u64,
    /// What perfect packing would allow.
    pub limit: u64,
    /// Pages migrated by the probe.
    pub probe_pages_migrated: u64,
}

/// THP fault/collapse attempts.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Thp {
    pub attempts: u64,
    pub success: u64,
}

/// One sample of the timeline (every 10 virtual seconds by default).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct TimelinePoint {
    pub t: f64,
    /// Tainted SPBs (Normal zone).
    pub tainted: u64,
    /// Lost SPBs (Normal zone).
    pub lost: u64,
    /// Lost floor at that moment (Normal zone).
    pub lost_floor: u64,
    pub free_pages: u64,
    /// 1 GiB pages obtainable if probed now (`None` when not probed at this sample).
    pub gigantic_obtainable: Option<u64>,
    /// Cumulative THP attempts and successes.
    pub thp_attempts: u64,
    pub thp_success: u64,
    /// Cumulative pages migrated.
    pub pages_migrated: u64,
}

/// One pageblock cell of the superpageblock map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BlockContent {
    /// Entirely free.
    Free,
    /// Holds movable pages only (and free pages).
    Movable,
    /// Holds reclaimable pages (and no unmovable).
    Reclaimable,
    /// Holds unmovable pages.
    Unmovable,
    /// Holds highatomic pages, or is labelled HighAtomic.
    HighAtomic,
    /// Isolated (held by a contiguous allocation in progress or done).
    Isolated,
    /// Reserved at boot (memmap, kernel image, ...).
    Reserved,
    /// No memory (hole), or not yet initialised.
    Hole,
}

impl BlockContent {
    /// One character for terminal maps (the kernel's migratetype letters where they exist).
    pub fn letter(self) -> char {
        match self {
            BlockContent::Free => '.',
            BlockContent::Movable => 'M',
            BlockContent::Reclaimable => 'E',
            BlockContent::Unmovable => 'U',
            BlockContent::HighAtomic => 'H',
            BlockContent::Isolated => 'I',
            BlockContent::Reserved => 'R',
            BlockContent::Hole => ' ',
        }
    }
}

/// One row of the superpageblock map.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SpbRow {
    /// Zone name ("Normal", ...).
    pub zone: String,
    /// First pfn of the SPB.
    pub start_pfn: u64,
    /// Category: "empty", "clean", "tainted", "isolated"; with "+pinned"/"+hole" suffixes.
    pub category: String,
    /// One cell per pageblock.
    pub blocks: Vec<BlockContent>,
}

/// The superpageblock map at one moment.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SpbMap {
    pub t: f64,
    pub rows: Vec<SpbRow>,
}

/// Metrics of one (scenario, policy) run. Key names are part of the public interface.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct RunMetrics {
    pub scenario: String,
    pub policy: String,
    pub seed: u64,
    pub memory_bytes: u64,
    pub virtual_seconds: f64,
    /// Allocation requests + frees processed.
    pub events: u64,
    pub wall_seconds: f64,
    pub normal: SpbCensus,
    pub all_zones: SpbCensus,
    pub gigantic: Gigantic,
    pub thp: Thp,
    /// Pages migrated over the whole run.
    pub pages_migrated: u64,
    /// Failed allocations keyed by "`<gfp string> order=<n>`".
    pub alloc_failures: BTreeMap<String, u64>,
    pub oom_kills: u64,
    /// Kernel-named counters.
    pub vmstat: BTreeMap<String, u64>,
    pub timeline: Vec<TimelinePoint>,
    /// Superpageblock maps at a few moments and at the end (last entry). Omitted from JSON when
    /// empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub maps: Vec<SpbMap>,
    /// Extra per-policy details (spb counters, pass histogram, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, serde_json::Value>,
    /// Present for trace replays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<TraceStats>,
    /// The bill (docs/metrics.md, "The bill"); absent in files written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<crate::cost::CostReport>,
}

/// The typed view of the details a lab run writes into [`RunMetrics::extra`] (their meaning is
/// in docs/metrics.md). Text renderers read these fields, not the JSON keys; a key that is
/// absent (a replay, an older file) reads as `None` or 0.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunDetails {
    /// 1 GiB pages the probe obtained in the Normal zone, and that zone's limit.
    pub gigantic_normal_allocatable: u64,
    pub gigantic_normal_limit: u64,
    /// The 1 GiB capacity bound over all zones (a diagnostic beside the limit; runs only).
    pub gigantic_capacity_bound: Option<u64>,
    /// 1 GiB (hugetlb) requests of the workload during the run: obtained / requested.
    pub hugetlb_obtained: u64,
    pub hugetlb_requested: u64,
    /// Failed allocations without __GFP_NOWARN (the ones the kernel would log).
    pub alloc_failures_warned: Option<u64>,
    /// Events per wall second of the workload alone (no end checks, no probe).
    pub workload_events_per_second: Option<f64>,
    /// Events per wall second of the workload without the machine's set-up (boot and run).
    pub loop_events_per_second: Option<f64>,
    /// SPBs visited per free-list walk (spb only).
    pub mean_spbs_visited: Option<f64>,
    /// The model's metadata per 4 KiB page.
    pub metadata_bytes_per_page: Option<f64>,
    /// What stopped the 1 GiB probe: its last request's candidates by reason, e.g.
    /// "10 tried: 10 pinned" (`extra.probe_stop`; runs only).
    pub probe_stop: Option<String>,
}

/// `extra.probe_stop` in a few words: candidates tried, then each reason that stopped some.
fn probe_stop_text(v: &serde_json::Value) -> String {
    let n = |k: &str| v.get(k).and_then(|x| x.as_u64()).unwrap_or(0);
    let reasons: Vec<String> = [
        ("pinned", "pinned"),
        ("no_room", "no room"),
        ("unmovable", "unmovable"),
        ("reserved", "reserved"),
        ("busy", "busy"),
        ("migration_failed", "migration failed"),
    ]
    .iter()
    .filter(|(k, _)| n(k) > 0)
    .map(|(k, name)| format!("{} {name}", n(k)))
    .collect();
    if reasons.is_empty() {
        format!("{} tried", n("tried"))
    } else {
        format!("{} tried: {}", n("tried"), reasons.join(", "))
    }
}

impl RunMetrics {
    /// The typed details of [`RunMetrics::extra`].
    pub fn details(&self) -> RunDetails {
        let u = |k: &str| self.extra.get(k).and_then(|v| v.as_u64());
        let f = |k: &str| self.extra.get(k).and_then(|v| v.as_f64());
        RunDetails {
            gigantic_normal_allocatable: u("gigantic_normal_allocatable").unwrap_or(0),
            gigantic_normal_limit: u("gigantic_normal_limit").unwrap_or(0),
            gigantic_capacity_bound: u("gigantic_capacity_bound"),
            hugetlb_obtained: u("hugetlb_obtained").unwrap_or(0),
            hugetlb_requested: u("hugetlb_requested").unwrap_or(0),
            alloc_failures_warned: u("alloc_failures_warned"),
            workload_events_per_second: f("workload_events_per_second"),
            loop_events_per_second: f("loop_events_per_second"),
            mean_spbs_visited: self
                .extra
                .get("spb_walk")
                .and_then(|w| w.get("mean_spbs_visited"))
                .and_then(|v| v.as_f64()),
            metadata_bytes_per_page: f("metadata_bytes_per_page"),
            probe_stop: self.extra.get("probe_stop").map(probe_stop_text),
        }
    }
    /// A kernel-named vmstat counter (0 when absent).
    pub fn vm(&self, name: &str) -> u64 {
        self.vmstat.get(name).copied().unwrap_or(0)
    }
    /// Direct-reclaim stalls over all zones (`allocstall_*`).
    pub fn alloc_stalls(&self) -> u64 {
        [
            "allocstall_dma",
            "allocstall_dma32",
            "allocstall_normal",
            "allocstall_movable",
        ]
        .iter()
        .map(|k| self.vm(k))
        .sum()
    }
    /// All failed allocations.
    pub fn failures(&self) -> u64 {
        self.alloc_failures.values().sum()
    }
}

/// Summary of one (scenario, memory, policy) of a sweep over its seeds (`spb_lab::sweep::merge`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SweepSummary {
    pub runs: u32,
    pub errors: u32,
    pub tainted_mean: f64,
    pub lost_mean: f64,
    pub lost_floor_mean: f64,
    pub gigantic_mean: f64,
    pub limit_mean: f64,
    pub migrated_mean: f64,
    pub failures_mean: f64,
}

/// Replay statistics.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct TraceStats {
    pub lines: u64,
    pub parsed: u64,
    /// Skipped lines by reason.
    pub skipped: BTreeMap<String, u64>,
    pub unknown_frees: u64,
    pub fallback_replays: u64,
    /// Pages inferred for bulk allocations that emit no mm_page_alloc.
    #[serde(default)]
    pub inferred_bulk_pages: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_stop_reads_as_reasons() {
        let v = serde_json::json!({"tried": 10, "reserved": 0, "unmovable": 1, "busy": 0,
            "migration_failed": 0, "no_room": 0, "pinned": 9});
        assert_eq!(probe_stop_text(&v), "10 tried: 9 pinned, 1 unmovable");
        let none = serde_json::json!({"tried": 0});
        assert_eq!(probe_stop_text(&none), "0 tried");
        let r = RunMetrics::default();
        assert_eq!(
            r.details().probe_stop,
            None,
            "absent in replays and older files"
        );
    }
}
