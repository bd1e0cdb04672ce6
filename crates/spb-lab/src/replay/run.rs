//! Pass 2: replay an [`OpLog`] under one policy.
//!
//! Modelled policies (vanilla, defrag, spb) place every request themselves; a map from the
//! kernel's pfn to the simulated block (a flat `Vec<u32>` indexed by kernel pfn) lets frees and
//! splits find what the matching allocation received in the simulation. The `real` column places
//! every request where the kernel did (`alloc_at`, per-CPU lists off), so its census comes from
//! the same measure functions.

use std::collections::BTreeMap;

use spb_alloc::layout::{MemoryLayout, PfnRange};
use spb_alloc::{
    AllocErrorKind, AllocRequest, Allocator, Config, Env, Gfp, MigrateOutcome, MigrateType, Pfn,
    PolicyConfig, Vm,
};

use super::measure::{measure, tainted_now};
use super::oplog::{OpKind, OpLog, OPF_INFERRED};
use super::{ExtfragCounts, PolicySel, ReplayError};
use crate::cost::{CostAcc, OptionalKind};
use crate::metrics::{RunMetrics, Thp, TimelinePoint};

/// Map entry: no simulated block.
const M_NONE: u32 = u32::MAX;
/// Map entry: the simulated allocation failed.
const M_FAILED: u32 = u32::MAX - 1;
/// Map entry flag: the allocation was replayed as order-0 pieces (each kernel pfn has its own
/// entry).
const M_PIECES: u32 = 1 << 31;
const M_MASK: u32 = !M_PIECES;

/// The embedder: owns the kernel-pfn → simulated-pfn map, so migrations keep it current.
pub struct MapEnv {
    pub map: Vec<u32>,
}

impl Env for MapEnv {
    fn migrate(&mut self, from: Pfn, to: Pfn, _order: u8, cookie: u32) -> MigrateOutcome {
        let k = cookie as usize;
        match self.map.get(k) {
            Some(&e) if e != M_NONE && e != M_FAILED && (e & M_MASK) as u64 == from => {
                self.map[k] = to as u32 | (e & M_PIECES);
                MigrateOutcome::Moved
            }
            _ => MigrateOutcome::Refused,
        }
    }
}

/// The result of one policy's replay.
pub struct PolicyRun {
    pub metrics: RunMetrics,
    /// CPU seconds of this thread for the replay itself (allocator, prefill, ops; not the
    /// end-of-run census and probe).
    pub cpu_s: f64,
    /// Pageblocks by label per zone at the end, counted like the kernel's pagetypeinfo (see
    /// [`block_counts`]).
    pub block_counts: BTreeMap<String, BTreeMap<String, u64>>,
    pub extfrag: ExtfragCounts,
}

pub(crate) fn thread_cpu_s() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

fn bump(m: &mut BTreeMap<String, u64>, k: &str, n: u64) {
    *m.entry(k.to_string()).or_default() += n;
}

/// Pageblock label counts per zone (see [`PolicyRun::block_counts`]), counted like the kernel's
/// pagetypeinfo: every pageblock with present, initialised memory, reserved or not. One
/// exception: in a zone with deferred-init (uninit) memory, the layout's memmap reservation is a
/// stand-in placed at the top of the zone where the real machine has uninitialised memory that
/// the kernel does not count (the Normal zone of the shared traces shows no PG_reserved page
/// there), so pageblocks without a managed page are skipped there.
pub fn block_counts(
    a: &Allocator,
    layout: &MemoryLayout,
) -> BTreeMap<String, BTreeMap<String, u64>> {
    let mut out = BTreeMap::new();
    for (zi, z) in a.zones().iter().enumerate() {
        let pbp = z.geo().pageblock_pages() as u16;
        let spec = layout.zones.get(zi).filter(|s| s.kind == z.kind());
        let deferred = spec.is_some_and(|s| !s.uninit.is_empty());
        let mut m: BTreeMap<String, u64> = BTreeMap::new();
        for mt in [
            MigrateType::Unmovable,
            MigrateType::Movable,
            MigrateType::Reclaimable,
            MigrateType::HighAtomic,
            MigrateType::Isolate,
        ] {
            m.insert(mt.name().to_string(), 0);
        }
        for pb in z.pageblocks() {
            if pb.absent() >= pbp {
                continue;
            }
            if deferred && pb.absent() + pb.reserved() >= pbp {
                continue;
            }
            *m.entry(pb.list_type().name().to_string()).or_default() += 1;
        }
        out.insert(z.kind().name().to_string(), m);
    }
    out
}

/// How the modelled columns are run (the `real` column ignores them).
pub(crate) struct ColumnOpts<'a> {
    /// Emulate the kernel's once-a-second `decay_pcp_high`.
    pub pcp_decay: bool,
    /// Grow a deferred-init zone when the column's own watermark fails.
    pub on_demand_grow: bool,
    /// How frees trim the per-CPU lists, and where that rule came from (for the JSON).
    pub pcp_free: crate::scenario::PcpFree,
    pub pcp_free_from: &'a str,
    /// Compaction's skip hints (`Config::compaction_skip_hints`).
    pub skip_hints: bool,
}

/// Build an allocator for `sel` over `layout` with the log's prefill applied.
pub(crate) fn build_allocator(
    log: &OpLog,
    layout: &MemoryLayout,
    sel: &PolicySel,
    col: &ColumnOpts<'_>,
    notes: &mut BTreeMap<String, u64>,
) -> Result<(Allocator, MapEnv), ReplayError> {
    let (policy, pcp) = match sel {
        PolicySel::Real => (PolicyConfig::vanilla(), false),
        PolicySel::Model(p) => (p.clone(), true),
    };
    let cfg = Config {
        policy,
        pcp,
        nr_cpus: log.nr_cpus.max(1),
        event_capacity: 1 << 16,
        pcp_free_tuning: col.pcp_free.tuning(),
        compaction_skip_hints: col.skip_hints,
        ..Config::default()
    };
    let mut a = Allocator::new(layout, cfg).map_err(|e| ReplayError::Layout(e.to_string()))?;
    let end = layout.zones.iter().map(|z| z.span.end).max().unwrap_or(0) as usize;
    let mut env = MapEnv {
        map: vec![M_NONE; end],
    };
    for &(pfn, order, g) in &log.prefill {
        match a.alloc_at(pfn, order, log.gfps[g as usize], pfn as u32) {
            Ok(()) => env.map[pfn as usize] = pfn as u32,
            Err(_) => bump(notes, "prefill_alloc_at_failed", 1),
        }
    }
    for &(pfn, mt) in &log.pageblock_types {
        // a pageblock straddling the zone start (DMA: pfn 0) is labelled by its part in the zone
        let mt = MigrateType::from_u8(mt).unwrap_or(MigrateType::Movable);
        if a.label_pageblock(pfn, mt).is_err() {
            bump(notes, "pageblock_label_failed", 1);
        }
    }
    let _ = a.drain_events().count();
    Ok((a, env))
}

/// Replay `log` under `sel`.
pub(crate) fn run_policy(
    log: &OpLog,
    layout: &MemoryLayout,
    sel: &PolicySel,
    sample_ns: u64,
    scenario: &str,
    col: &ColumnOpts<'_>,
) -> Result<PolicyRun, ReplayError> {
    let (pcp_decay, on_demand_grow) = (col.pcp_decay, col.on_demand_grow);
    let cpu0 = thread_cpu_s();
    let wall0 = std::time::Instant::now();
    let mut notes: BTreeMap<String, u64> = BTreeMap::new();
    let (mut a, mut env) = build_allocator(log, layout, sel, col, &mut notes)?;
    let real = matches!(sel, PolicySel::Real);
    let pbo = a.geo().pageblock_order;
    let mut failures: BTreeMap<String, u64> = BTreeMap::new();
    let mut thp = Thp::default();
    // the bill: requests the model served (the real column's placements are the kernel's)
    let mut bill = CostAcc::default();
    let mut fallback_replays = 0u64;
    let mut peak = (0u64, 0u64);
    let mut timeline = Vec::new();
    let sample_us = (sample_ns / 1000).max(1);
    let mut next_sample = 0u64;
    let bg_us = 10_000u64;
    let mut next_bg = bg_us;
    let mut extfrag_pairs: BTreeMap<String, u64> = BTreeMap::new();
    let mut events = 0u64;
    let mut next_decay = 1_000_000u64;
    let mut saved_high: Vec<u64> = Vec::new();
    // Lazy deferred init grows a zone when an allocation finds it below its watermark
    // (`_deferred_grow_zone` in get_page_from_freelist). The trace shows where and when the
    // kernel grew; a modelled column grows the same ranges in the same order, but when *its*
    // watermark fails, so that it never falls back to a lower zone the kernel did not use.
    let grow_idx: Vec<usize> = if real || !on_demand_grow {
        Vec::new()
    } else {
        log.ops
            .iter()
            .enumerate()
            .filter(|(_, o)| o.kind == OpKind::Grow)
            .map(|(i, _)| i)
            .collect()
    };
    let mut grown = vec![false; grow_idx.len()];
    let mut next_grow = 0usize;
    let mut grow_pos = 0usize; // index into grow_idx of the op being replayed
    let first_normal = a
        .zones()
        .iter()
        .find(|z| z.kind() == spb_alloc::ZoneKind::Normal)
        .map(|z| z.span().start)
        .unwrap_or(u64::MAX);
    let mut lower_zone_pages = 0u64;
    let mut lower_zone_first_us: Option<u64> = None;
    let mut lower_zone_by_mt: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut pcp_peak = 0u64;
    // 1 GiB regions that ever received a non-movable allocation (the capture's "tainted")
    let spb_shift = a.geo().spb_order as u32;
    let mut ever =
        vec![
            false;
            (layout.zones.iter().map(|z| z.span.end).max().unwrap_or(0) >> spb_shift) as usize + 1
        ];
    for &(pfn, _, g) in &log.prefill {
        if log.gfps[g as usize].migratetype().is_non_movable() {
            if let Some(e) = ever.get_mut((pfn >> spb_shift) as usize) {
                *e = true;
            }
        }
    }
    let t = tainted_now(&a);
    peak = (peak.0.max(t.0), peak.1.max(t.1));
    for (op_i, op) in log.ops.iter().enumerate() {
        let ts = op.ts_us as u64;
        if ts >= next_sample {
            timeline.push(sample(&a, ts));
            next_sample = (ts / sample_us + 1) * sample_us;
        }
        if !real && pcp_decay && ts >= next_decay {
            pcp_peak = pcp_peak.max(pcp_pages(&a));
            let d = decay_pcp_high(&mut a);
            bump(&mut notes, "pcp_decay_drained_pages", d);
            next_decay = (ts / 1_000_000 + 1) * 1_000_000;
        }
        if !real && ts >= next_bg {
            a.background(ts * 1000, &mut env);
            next_bg = (ts / bg_us + 1) * bg_us;
            drain_events(&mut a, &mut extfrag_pairs);
        }
        events += 1;
        let pfn = op.pfn as u64;
        let order = op.order;
        match op.kind {
            OpKind::Alloc => {
                let gfp = log.gfps[op.gfp as usize];
                if !grow_idx.is_empty() && next_grow < grow_idx.len() {
                    let kz = a.zone_of(log.ops[grow_idx[next_grow]].pfn as u64);
                    if let Some(zi) = kz {
                        let z = &a.zones()[zi];
                        if z.free_pages()
                            < z.wmark_pages(spb_alloc::zone::WMARK_LOW) + (1u64 << order)
                        {
                            // grow the next burst (consecutive Grow ops) now
                            let mut k = next_grow;
                            loop {
                                let gi = grow_idx[k];
                                if !grown[k] {
                                    let g = log.ops[gi];
                                    grow(&mut a, g.pfn as u64, g.order, &mut notes);
                                    grown[k] = true;
                                    bump(&mut notes, "grown_on_demand_pages", 1u64 << g.order);
                                }
                                k += 1;
                                if k >= grow_idx.len() || grow_idx[k] != gi + 1 {
                                    break;
                                }
                            }
                            next_grow = k;
                        }
                    }
                }
                let is_thp = order == pbo && gfp.contains(Gfp::MOVABLE) && gfp.contains(Gfp::COMP);
                if is_thp {
                    thp.attempts += 1;
                }
                if op.flags & OPF_INFERRED != 0 {
                    bump(&mut notes, "inferred_bulk_allocs", 1);
                }
                let nonmov = gfp.migratetype().is_non_movable();
                if real {
                    match a.alloc_at(pfn, order, gfp, op.pfn) {
                        Ok(()) => {
                            if nonmov {
                                ever[(pfn >> spb_shift) as usize] = true;
                            }
                            env.map[pfn as usize] = op.pfn;
                            thp.success += is_thp as u64;
                        }
                        Err(_) => {
                            bump(&mut notes, "real_alloc_at_failed", 1);
                            env.map[pfn as usize] = M_FAILED;
                        }
                    }
                } else {
                    let req = AllocRequest {
                        order,
                        gfp,
                        cpu: op.arg as u16 % a.config().nr_cpus as u16,
                        cookie: op.pfn,
                        trylock: false,
                    };
                    let r = a.alloc(req, &mut env);
                    let class = bill.record(gfp, order, &a.take_request_cost(), r.is_ok());
                    match r {
                        Ok(s) => {
                            if nonmov {
                                if let Some(e) = ever.get_mut((s >> spb_shift) as usize) {
                                    *e = true;
                                }
                            }
                            env.map[pfn as usize] = s as u32;
                            thp.success += is_thp as u64;
                            if s < first_normal && pfn >= first_normal {
                                // placed below the zone the kernel used (a zone fallback)
                                lower_zone_pages += 1u64 << order;
                                if lower_zone_first_us.is_none() {
                                    lower_zone_first_us = Some(ts);
                                }
                                *lower_zone_by_mt
                                    .entry(gfp.migratetype().name())
                                    .or_default() += 1u64 << order;
                            }
                        }
                        Err(e) => {
                            // a trace has no caller kinds: the class stands for the kind
                            bill.failed_kind(class.name());
                            *failures
                                .entry(format!(
                                    "{} order={}",
                                    log.gfp_names[op.gfp as usize], order
                                ))
                                .or_default() += 1;
                            if order > 0 {
                                let link = bill.optional_failed(OptionalKind::ReplayPieces);
                                let mut pieces_ok = true;
                                // the caller's fallback: the same memory as order-0 pages
                                fallback_replays += 1;
                                if e.kind == AllocErrorKind::Refused {
                                    bump(&mut notes, "fallback_after_refusal", 1);
                                }
                                let g0 = gfp.without(Gfp::COMP);
                                for k in 0..(1u64 << order) {
                                    let req = AllocRequest {
                                        order: 0,
                                        gfp: g0,
                                        cpu: req.cpu,
                                        cookie: (pfn + k) as u32,
                                        trylock: false,
                                    };
                                    let r = a.alloc(req, &mut env);
                                    let class =
                                        bill.record(g0, 0, &a.take_request_cost(), r.is_ok());
                                    env.map[(pfn + k) as usize] = match r {
                                        Ok(s) => s as u32 | M_PIECES,
                                        Err(_) => {
                                            bill.failed_kind(class.name());
                                            pieces_ok = false;
                                            bump(&mut notes, "fallback_piece_failed", 1);
                                            M_FAILED
                                        }
                                    };
                                }
                                bill.fallback_done(link, pieces_ok);
                            } else {
                                env.map[pfn as usize] = M_FAILED;
                            }
                        }
                    }
                }
            }
            OpKind::Free => {
                if !real && pcp_decay {
                    save_highs(&a, &mut saved_high);
                }
                let cpu = op.arg as u16 % a.config().nr_cpus as u16;
                let e = env.map[pfn as usize];
                if e == M_NONE {
                    bump(&mut notes, "free_unmapped", 1);
                } else if e == M_FAILED {
                    bump(&mut notes, "free_of_failed_alloc", 1);
                } else if e & M_PIECES != 0 {
                    for k in 0..(1u64 << order) {
                        let ek = env.map[(pfn + k) as usize];
                        if ek == M_NONE || ek == M_FAILED {
                            continue;
                        }
                        if a.free((ek & M_MASK) as u64, 0, cpu).is_err() {
                            bump(&mut notes, "sim_free_errors", 1);
                        }
                        env.map[(pfn + k) as usize] = M_NONE;
                    }
                } else {
                    if let Err(err) = a.free(e as u64, order, cpu) {
                        bump(&mut notes, "sim_free_errors", 1);
                        if notes.get("sim_free_errors") == Some(&1) {
                            bump(&mut notes, &format!("first_sim_free_error: {err}"), 1);
                        }
                    }
                    env.map[pfn as usize] = M_NONE;
                }
                if !real && pcp_decay {
                    restore_highs(&mut a, &saved_high);
                }
            }
            OpKind::Split => {
                let new = op.arg;
                let e = env.map[pfn as usize];
                let step = 1u64 << new;
                let n = 1u64 << order;
                if e == M_NONE || e == M_FAILED {
                    let mut k = 0;
                    while k < n {
                        env.map[(pfn + k) as usize] = e;
                        k += step;
                    }
                } else if e & M_PIECES != 0 {
                    // already order-0 pieces, each with its own entry
                } else {
                    let s = e as u64;
                    if a.split(s, order, new).is_err() {
                        bump(&mut notes, "sim_split_errors", 1);
                    } else {
                        let mut k = 0;
                        while k < n {
                            env.map[(pfn + k) as usize] = (s + k) as u32;
                            let _ = a.set_cookie(s + k, (pfn + k) as u32);
                            k += step;
                        }
                    }
                }
            }
            OpKind::Grow => {
                if grow_idx.is_empty() {
                    grow(&mut a, pfn, order, &mut notes);
                } else {
                    // this op's position among the grows
                    while grow_pos < grow_idx.len() && grow_idx[grow_pos] < op_i {
                        grow_pos += 1;
                    }
                    if grow_pos < grow_idx.len() && grow_idx[grow_pos] == op_i && !grown[grow_pos] {
                        grow(&mut a, pfn, order, &mut notes);
                        grown[grow_pos] = true;
                        next_grow = next_grow.max(grow_pos + 1);
                    }
                }
            }
        }
        let t = tainted_now(&a);
        if t.0 > peak.0 {
            peak.0 = t.0;
        }
        if t.1 > peak.1 {
            peak.1 = t.1;
        }
    }
    drain_events(&mut a, &mut extfrag_pairs);
    bump(&mut notes, "pcp_pages_at_end", pcp_pages(&a));
    if lower_zone_pages > 0 {
        bump(&mut notes, "below_kernel_zone_pages", lower_zone_pages);
        bump(
            &mut notes,
            "below_kernel_zone_first_ms",
            lower_zone_first_us.unwrap_or(0) / 1000,
        );
        for (k, v) in &lower_zone_by_mt {
            bump(&mut notes, &format!("below_kernel_zone_pages_{k}"), *v);
        }
    }
    bump(
        &mut notes,
        "pcp_pages_peak_sampled",
        pcp_peak.max(pcp_pages(&a)),
    );
    let end_us = (log.duration_s * 1e6) as u64;
    timeline.push(sample(&a, end_us));
    // the replay's CPU time: allocator, prefill and ops (not the end-of-run measures)
    let cpu_s = thread_cpu_s() - cpu0;
    // everything read from the allocator before the probe changes it
    let vmstat: BTreeMap<String, u64> = a
        .vm()
        .iter()
        .filter(|(_, v)| *v > 0)
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    let pages_migrated = a.pages_migrated();
    let extfrag = ExtfragCounts {
        events: a.vm().get(Vm::ExtfragEvents),
        fragmenting: a.vm().get(Vm::ExtfragFragmenting),
        claim: a.vm().get(Vm::ExtfragClaim),
        steal: a.vm().get(Vm::ExtfragSteal),
        by_pair: extfrag_pairs,
    };
    let blocks = block_counts(&a, layout);
    // per 1 GiB region, before the probe changes anything
    let mut regions = Vec::new();
    for z in a.zones() {
        for sp in z.spbs() {
            let gib = sp.start_pfn() >> spb_shift;
            regions.push(serde_json::json!({
                "region": gib,
                "zone": z.kind().name(),
                "live_nonmovable_pages": sp.non_movable_pages(),
                "movable_pages": sp.movable_pages(),
                "reserved_pages": sp.reserved_pages(),
                "tainted_now": sp.is_tainted(),
                "ever_tainted": ever.get(gib as usize).copied().unwrap_or(false),
            }));
        }
    }
    let bg = *a.background_work();
    let stalls = *a.stall_causes();
    let compactions = a.direct_compactions().to_vec();
    let m = measure(&mut a, &mut env, peak);
    let cost = (!real).then(|| {
        bill.report(
            &bg,
            &stalls,
            &compactions,
            log.duration_s,
            m.gigantic.allocatable,
            m.gigantic.probe_pages_migrated,
        )
    });
    let present: u64 = layout.zones.iter().map(|z| z.present_pages()).sum();
    let mut extra = BTreeMap::new();
    if !real {
        extra.insert(
            "pcp_free".to_string(),
            serde_json::json!({"rule": col.pcp_free.name(), "from": col.pcp_free_from}),
        );
        if !col.skip_hints {
            extra.insert("compaction_skip_hints".to_string(), false.into());
        }
        extra.insert(
            "gigantic_capacity_bound".to_string(),
            m.capacity_bound.into(),
        );
    }
    extra.insert(
        "replay_notes".to_string(),
        serde_json::to_value(&notes).unwrap_or_default(),
    );
    extra.insert(
        "extfrag".to_string(),
        serde_json::to_value(&extfrag).unwrap_or_default(),
    );
    extra.insert(
        "pageblock_types".to_string(),
        serde_json::to_value(&blocks).unwrap_or_default(),
    );
    extra.insert("regions".to_string(), serde_json::Value::Array(regions));
    extra.insert(
        "fallback_replays".to_string(),
        serde_json::json!(fallback_replays),
    );
    extra.insert(
        "measure_cpu_seconds".to_string(),
        serde_json::json!(thread_cpu_s() - cpu0 - cpu_s),
    );
    let metrics = RunMetrics {
        scenario: scenario.to_string(),
        policy: sel.label(),
        seed: 0,
        memory_bytes: present << a.geo().page_shift,
        virtual_seconds: log.duration_s,
        events,
        wall_seconds: wall0.elapsed().as_secs_f64(),
        normal: m.normal,
        all_zones: m.all_zones,
        gigantic: m.gigantic,
        thp,
        pages_migrated,
        alloc_failures: failures,
        oom_kills: 0,
        vmstat,
        timeline,
        maps: Vec::new(),
        extra,
        trace: None,
        cost,
    };
    Ok(PolicyRun {
        metrics,
        cpu_s,
        block_counts: blocks,
        extfrag,
    })
}

/// WORKAROUND for the allocator core (reported): the kernel's `decay_pcp_high`, run every
/// second from vmstat_update for every zone and CPU: `high` decays by 1/8 towards `high_min`
/// (never below `count - (batch << 5)`), and a list above its `high` is drained down to it.
/// The core has no such decay, and its free path raises `high` by `batch` at every trim, so the
/// modelled per-CPU lists grow towards `high_max` (managed/8 per CPU: 217 088 pages in the
/// pagecache trace) where the kernel's stay near `high_min`. Returns pages drained.
pub(crate) fn decay_pcp_high(a: &mut Allocator) -> u64 {
    a.decay_pcp_high_all()
}

/// WORKAROUND (with [`decay_pcp_high`]): the kernel's free path raises `high` only to
/// `free_count + batch` (at most `batch << 5` + `batch` = 2 079 pages here, below `high_min`), so in
/// effect never; the core raises it by `batch` at every trim. Save the highs before a free...
fn save_highs(a: &Allocator, out: &mut Vec<u64>) {
    a.pcp_highs(out);
}

/// ...and undo any increase after it.
fn restore_highs(a: &mut Allocator, saved: &[u64]) {
    a.cap_pcp_high(saved);
}

fn grow(a: &mut Allocator, pfn: u64, order: u8, notes: &mut BTreeMap<String, u64>) {
    let r = PfnRange::new(pfn, pfn + (1u64 << order));
    match a.zone_of(pfn) {
        Some(zi) => {
            if a.grow_zone(zi, r).is_err() {
                bump(notes, "grow_errors", 1);
            }
        }
        None => bump(notes, "grow_errors", 1),
    }
}

/// Pages on per-CPU lists now.
pub(crate) fn pcp_pages(a: &Allocator) -> u64 {
    a.pcp_pages()
}

fn drain_events(a: &mut Allocator, pairs: &mut BTreeMap<String, u64>) {
    for e in a.drain_events() {
        if let spb_alloc::event::Event::ExtFrag {
            alloc_mt,
            fallback_mt,
            fragmenting,
            change_ownership,
            ..
        } = e
        {
            let k = ExtfragCounts::pair_key(
                alloc_mt as u32,
                fallback_mt as u32,
                fragmenting,
                change_ownership,
            );
            *pairs.entry(k).or_default() += 1;
        }
    }
}

fn sample(a: &Allocator, ts_us: u64) -> TimelinePoint {
    let (n, _) = crate::measure::census(a);
    TimelinePoint {
        t: ts_us as f64 / 1e6,
        tainted: n.tainted,
        lost: n.lost,
        lost_floor: n.lost_floor,
        free_pages: a.free_pages(),
        gigantic_obtainable: None,
        thp_attempts: 0,
        thp_success: 0,
        pages_migrated: a.pages_migrated(),
    }
}
