//! A deterministic synthetic [`RunsDoc`] for tests, demos and the browser test.
//!
//! The numbers only look plausible: non-movable pageblocks accumulate over time, scattered
//! across the machine by `mainline` and packed into the first SPBs by the `spb` policies;
//! movable memory fills the rest. Census, timeline and maps are derived from the same model, so
//! they agree with each other.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;

use crate::metrics::{
    BlockContent, Gigantic, RunMetrics, RunsDoc, SpbCensus, SpbMap, SpbRow, Thp, TimelinePoint,
    TraceStats,
};

/// Shape of [`sample_doc_with`].
#[derive(Clone, Debug)]
pub struct SampleSpec {
    /// SPBs of the machine (1 GiB each; the first three are DMA32, the rest Normal).
    pub spbs: usize,
    /// Pageblocks per SPB (512 on x86-64).
    pub blocks_per_spb: usize,
    /// Maps per run (the last at the end of the run).
    pub moments: usize,
    /// Virtual seconds of each run.
    pub seconds: f64,
    /// Timeline sample interval.
    pub interval: f64,
    /// Policies (one run each).
    pub policies: Vec<String>,
    /// Also add a trace-replay scenario (same machine, with [`TraceStats`]).
    pub trace_scenario: bool,
}

impl Default for SampleSpec {
    fn default() -> Self {
        SampleSpec {
            spbs: 16,
            blocks_per_spb: 512,
            moments: 4,
            seconds: 600.0,
            interval: 10.0,
            policies: vec!["mainline".into(), "spb".into(), "spb-strict".into()],
            trace_scenario: true,
        }
    }
}

/// 3 policies on a 16 GiB machine: scenario `mixed-churn` (4 map moments) and the trace
/// replay `trace-build` (2 map moments, with trace stats). Always the same document.
pub fn sample_doc() -> RunsDoc {
    sample_doc_with(&SampleSpec::default())
}

/// A synthetic document of the given shape; deterministic.
pub fn sample_doc_with(spec: &SampleSpec) -> RunsDoc {
    let mut runs = Vec::new();
    for (pi, policy) in spec.policies.iter().enumerate() {
        runs.push(run(spec, "mixed-churn", policy, pi, 42, spec.moments, 1.0));
    }
    if spec.trace_scenario {
        for (pi, policy) in spec.policies.iter().enumerate() {
            let mut r = run(spec, "trace-build", policy, pi, 7, spec.moments.min(2), 0.6);
            r.trace = Some(TraceStats {
                lines: 1_234_567,
                parsed: 1_230_001,
                skipped: BTreeMap::from([
                    ("cpu-offline".to_string(), 66),
                    ("malformed".to_string(), 4_500),
                ]),
                unknown_frees: 812 + 10 * pi as u64,
                fallback_replays: 35 * (pi as u64 + 1),
                inferred_bulk_pages: 9_000,
            });
            runs.push(r);
        }
    }
    RunsDoc { runs }
}

const DMA32_SPBS: usize = 3;
const PAGES_PER_SPB: u64 = 262_144;

struct Model {
    bps: usize,
    spbs: usize,
    /// Static contents (reserved, holes), `None` where dynamic.
    fixed: Vec<Option<BlockContent>>,
    /// Non-movable placements in order.
    nm: Vec<(usize, BlockContent)>,
    /// Movable threshold of each block: movable once occupancy exceeds it.
    u: Vec<f32>,
    /// SPBs isolated (obtained as 1 GiB pages) in the final map.
    isolated: Vec<usize>,
}

impl Model {
    fn blocks_at(&self, f: f64, end: bool) -> Vec<BlockContent> {
        let n = self.spbs * self.bps;
        let mut b: Vec<BlockContent> = (0..n)
            .map(|i| match self.fixed[i] {
                Some(c) => c,
                None if (self.u[i] as f64) < occupancy(f) => BlockContent::Movable,
                None => BlockContent::Free,
            })
            .collect();
        let k = ((self.nm.len() as f64) * ramp(f)).round() as usize;
        for &(i, c) in &self.nm[..k.min(self.nm.len())] {
            b[i] = c;
        }
        if end {
            for &s in &self.isolated {
                b[s * self.bps..(s + 1) * self.bps].fill(BlockContent::Isolated);
            }
        }
        b
    }
}

fn occupancy(f: f64) -> f64 {
    0.25 + 0.45 * f
}

fn ramp(f: f64) -> f64 {
    (f * 1.6).min(1.0) * 0.85 + 0.15 * f
}

fn zone_of(spb: usize) -> &'static str {
    if spb < DMA32_SPBS {
        "DMA32"
    } else {
        "Normal"
    }
}

fn start_pfn(spb: usize) -> u64 {
    // DMA32 covers GiB 0..3, the PCI hole GiB 3..4, Normal starts at 4 GiB.
    let gib = if spb < DMA32_SPBS { spb } else { spb + 1 };
    gib as u64 * PAGES_PER_SPB
}

fn model(spec: &SampleSpec, policy: usize, seed: u64, load: f64) -> Model {
    let bps = spec.blocks_per_spb.max(8);
    let spbs = spec.spbs.max(DMA32_SPBS + 1);
    let n = spbs * bps;
    let mut rng = Pcg64Mcg::seed_from_u64(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ policy as u64);
    let mut fixed = vec![None; n];
    // Low memory: a hole, then firmware and early reservations.
    fixed[0] = Some(BlockContent::Hole);
    for b in fixed.iter_mut().take(8).skip(1) {
        *b = Some(BlockContent::Reserved);
    }
    // The top of DMA32 runs into the PCI hole.
    for b in fixed
        .iter_mut()
        .take(DMA32_SPBS * bps)
        .skip(DMA32_SPBS * bps - bps / 4)
    {
        *b = Some(BlockContent::Hole);
    }
    // Kernel image and memmap at the start of Normal.
    let normal0 = DMA32_SPBS * bps;
    let reserved = 12 + spbs / 8;
    for b in fixed.iter_mut().skip(normal0).take(reserved) {
        *b = Some(BlockContent::Reserved);
    }
    let kind = |rng: &mut Pcg64Mcg| {
        let x: f64 = rng.gen();
        if x < 0.6 {
            BlockContent::Unmovable
        } else if x < 0.97 {
            BlockContent::Reclaimable
        } else {
            BlockContent::HighAtomic
        }
    };
    let total_nm = ((n as f64) * 0.035 * load).round() as usize;
    let mut nm: Vec<(usize, BlockContent)> = Vec::with_capacity(total_nm);
    let mut taken = vec![false; n];
    let mut cursor = normal0 + reserved;
    while nm.len() < total_nm {
        let pos = if policy == 0 {
            // mainline: fallbacks steal pageblocks all over the machine, in small clusters.
            if nm.is_empty() || rng.gen_bool(0.3) {
                rng.gen_range(0..n)
            } else {
                nm[rng.gen_range(0..nm.len())].0 + rng.gen_range(1..6)
            }
        } else if policy == 1 && rng.gen_bool(0.04) {
            // spb: mostly packed, a few strays.
            rng.gen_range(normal0..n)
        } else {
            let p = cursor;
            cursor += 1;
            p
        };
        let pos = pos % n;
        if taken[pos] || fixed[pos].is_some() {
            if policy != 0 && cursor >= n {
                break;
            }
            continue;
        }
        taken[pos] = true;
        nm.push((pos, kind(&mut rng)));
    }
    // Movable thresholds: mainline spreads page cache everywhere; spb fills SPBs in order.
    let mut u = vec![0f32; n];
    let mut chunk = 0f32;
    for (i, v) in u.iter_mut().enumerate() {
        if i % 16 == 0 {
            chunk = rng.gen();
        }
        let noise: f32 = rng.gen();
        *v = if policy == 0 {
            0.5 * chunk + 0.5 * noise
        } else {
            let pos = i as f32 / n as f32;
            (0.75 * pos + 0.15 * chunk + 0.1 * noise).min(0.999)
        };
    }
    Model {
        bps,
        spbs,
        fixed,
        nm,
        u,
        isolated: vec![],
    }
}

fn category(blocks: &[BlockContent]) -> String {
    let has = |c| blocks.contains(&c);
    let base = if has(BlockContent::Isolated) {
        "isolated"
    } else if has(BlockContent::Unmovable)
        || has(BlockContent::Reclaimable)
        || has(BlockContent::HighAtomic)
    {
        "tainted"
    } else if blocks.iter().all(|&b| {
        matches!(
            b,
            BlockContent::Free | BlockContent::Hole | BlockContent::Reserved
        )
    }) {
        "empty"
    } else {
        "clean"
    };
    let mut s = base.to_string();
    if has(BlockContent::Reserved) {
        s.push_str("+pinned");
    }
    if has(BlockContent::Hole) {
        s.push_str("+hole");
    }
    s
}

fn map_of(m: &Model, blocks: &[BlockContent], t: f64) -> SpbMap {
    let rows = (0..m.spbs)
        .map(|s| {
            let b = &blocks[s * m.bps..(s + 1) * m.bps];
            SpbRow {
                zone: zone_of(s).into(),
                start_pfn: start_pfn(s),
                category: category(b),
                blocks: b.to_vec(),
            }
        })
        .collect();
    SpbMap { t, rows }
}

struct Counts {
    census: SpbCensus,
    nm_blocks: u64,
    free_blocks: u64,
    movable_blocks: u64,
}

fn census(m: &Model, blocks: &[BlockContent], zones: &[&str]) -> Counts {
    let mut c = SpbCensus::default();
    let (mut nm_blocks, mut res_blocks, mut holed, mut free_blocks, mut movable_blocks) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    for s in (0..m.spbs).filter(|&s| zones.contains(&zone_of(s))) {
        let b = &blocks[s * m.bps..(s + 1) * m.bps];
        let nm = b
            .iter()
            .filter(|x| {
                matches!(
                    x,
                    BlockContent::Unmovable | BlockContent::Reclaimable | BlockContent::HighAtomic
                )
            })
            .count();
        let res = b.iter().filter(|x| **x == BlockContent::Reserved).count();
        let hole = b.contains(&BlockContent::Hole);
        nm_blocks += nm as u64;
        res_blocks += res as u64;
        free_blocks += b.iter().filter(|x| **x == BlockContent::Free).count() as u64;
        movable_blocks += b.iter().filter(|x| **x == BlockContent::Movable).count() as u64;
        c.spb_total += 1;
        c.spb_tainted += (nm > 0) as u64;
        c.spb_pinned += (res > 0) as u64;
        holed += (res > 0 || hole) as u64;
        c.spb_lost += (nm > 0 || res > 0 || hole) as u64;
        c.spb_clean += b
            .iter()
            .all(|x| matches!(x, BlockContent::Free | BlockContent::Movable))
            as u64;
        c.spb_empty += b.iter().all(|x| *x == BlockContent::Free) as u64;
    }
    let bps = m.bps as u64;
    c.tainted_floor = nm_blocks.div_ceil(bps);
    c.lost_floor = holed.max((nm_blocks + res_blocks).div_ceil(bps));
    Counts {
        census: c,
        nm_blocks,
        free_blocks,
        movable_blocks,
    }
}

fn run(
    spec: &SampleSpec,
    scenario: &str,
    policy: &str,
    pi: usize,
    seed: u64,
    moments: usize,
    load: f64,
) -> RunMetrics {
    let mut m = model(spec, pi, seed, load);
    let total = spec.seconds.max(spec.interval);
    let steps = (total / spec.interval).round() as usize;
    let pages_per_block = PAGES_PER_SPB / m.bps as u64;
    let mut timeline = Vec::with_capacity(steps + 1);
    let mut peak = 0;
    let (mut thp_a, mut thp_s) = (0u64, 0u64);
    for k in 0..=steps {
        let t = k as f64 * spec.interval;
        let f = t / total;
        let blocks = m.blocks_at(f, false);
        let c = census(&m, &blocks, &["Normal"]);
        peak = peak.max(c.census.spb_tainted);
        let free_pages = c.free_blocks * pages_per_block + c.movable_blocks * pages_per_block / 5;
        let rate = match pi {
            0 => 0.95 - 0.35 * f,
            1 => 0.97 - 0.12 * f,
            _ => 0.98 - 0.08 * f,
        };
        let attempts = 40 + (k as u64 * 7) % 23;
        thp_a += attempts;
        thp_s += (attempts as f64 * rate).round() as u64;
        let probed = k % 10 == 0;
        let must_stay = c.nm_blocks + c.movable_blocks / 3 + 16;
        let limit_now = c
            .census
            .spb_total
            .saturating_sub(c.census.lost_floor.max(must_stay.div_ceil(m.bps as u64)));
        let obtainable =
            (c.census.spb_total - c.census.spb_lost.min(c.census.spb_total)).min(limit_now);
        timeline.push(TimelinePoint {
            t,
            tainted: c.census.spb_tainted,
            lost: c.census.spb_lost,
            lost_floor: c.census.lost_floor,
            free_pages,
            gigantic_obtainable: probed.then_some(obtainable.saturating_sub((pi == 0) as u64)),
            thp_attempts: thp_a,
            thp_success: thp_s,
            pages_migrated: (t * (150.0 + 120.0 * pi as f64) + 40.0 * f * f * total) as u64,
        });
    }
    let pre_probe = m.blocks_at(1.0, false);
    // The spb policies end with one clean SPB isolated (taken as a 1 GiB page).
    if pi > 0 {
        m.isolated = (DMA32_SPBS..m.spbs)
            .rev()
            .filter(|&s| category(&pre_probe[s * m.bps..(s + 1) * m.bps]) == "clean")
            .take(1)
            .collect();
    }
    let end_blocks = m.blocks_at(1.0, true);
    let normal = census(&m, &pre_probe, &["Normal"]);
    let all = census(&m, &pre_probe, &["DMA32", "Normal"]);
    let mut normal_c = normal.census.clone();
    normal_c.spb_tainted_peak = peak.max(normal_c.spb_tainted);
    let mut all_c = all.census.clone();
    all_c.spb_tainted_peak = all_c.spb_tainted.max(peak);
    let must_stay = normal.nm_blocks + normal.movable_blocks / 3 + 16;
    let limit = normal_c
        .spb_total
        .saturating_sub(normal_c.lost_floor.max(must_stay.div_ceil(m.bps as u64)));
    let allocatable = (normal_c.spb_total - normal_c.spb_lost).min(limit);
    let mut maps = Vec::new();
    for j in 1..=moments.max(1) {
        let f = j as f64 / moments.max(1) as f64;
        let end = j == moments.max(1);
        let b = if end {
            end_blocks.clone()
        } else {
            m.blocks_at(f, false)
        };
        maps.push(map_of(&m, &b, f * total));
    }
    let failures = match pi {
        0 => BTreeMap::from([
            (
                "GFP_KERNEL|__GFP_COMP|__GFP_NORETRY order=9".to_string(),
                137,
            ),
            ("GFP_HIGHUSER_MOVABLE order=9".to_string(), 18),
        ]),
        1 => BTreeMap::from([("GFP_KERNEL|__GFP_COMP|__GFP_NORETRY order=9".to_string(), 9)]),
        _ => BTreeMap::new(),
    };
    let migrated = timeline.last().map(|p| p.pages_migrated).unwrap_or(0);
    RunMetrics {
        scenario: scenario.into(),
        policy: policy.into(),
        seed,
        memory_bytes: m.spbs as u64 * (1 << 30),
        virtual_seconds: total,
        events: (total * 25_000.0) as u64,
        wall_seconds: 1.25 + pi as f64 * 0.5,
        normal: normal_c,
        all_zones: all_c,
        gigantic: Gigantic {
            allocatable,
            limit,
            probe_pages_migrated: 40_000 + 9_000 * pi as u64,
        },
        thp: Thp {
            attempts: thp_a,
            success: thp_s,
        },
        pages_migrated: migrated,
        alloc_failures: failures,
        oom_kills: (pi == 0) as u64,
        vmstat: BTreeMap::from([
            ("compact_stall".to_string(), 420 - 100 * pi as u64),
            ("compact_success".to_string(), 300 - 60 * pi as u64),
            ("pgmigrate_success".to_string(), migrated),
            ("thp_fault_alloc".to_string(), thp_s),
            ("thp_fault_fallback".to_string(), thp_a - thp_s),
        ]),
        timeline,
        maps,
        extra: BTreeMap::new(),
        trace: None,
        cost: None,
    }
}
