//! Running a scenario under one policy and collecting its metrics.

use std::collections::BTreeMap;
use std::time::Instant;

use spb_alloc::{FreedBlock, ReclaimRequest, Reclaimer};

use super::world::{kind, World};
use super::{Sim, SimOptions};
use crate::measure::{self, LimitInputs, ProbeEnv};
use crate::metrics::{Gigantic, RunMetrics, Thp, TimelinePoint};
use crate::scenario::Scenario;

impl ProbeEnv for World {
    fn probe_reclaim(&mut self, out: &mut Vec<FreedBlock>) {
        let from = self.pending.len();
        let total: u64 =
            self.clean_cache_zone.iter().sum::<u64>() + self.slab_reclaimable_pages + 1;
        self.do_reclaim(ReclaimRequest {
            nr_pages: total,
            order: 0,
            who: Reclaimer::Contig,
            may_swap: false,
            shrink_slab: true,
            prefer_range: None,
        });
        for &(pfn, order, _) in &self.pending[from..] {
            out.push(FreedBlock { pfn, order });
        }
        self.pending.truncate(from);
    }
    fn probe_cookie(&mut self) -> u32 {
        // a loose object: never attached, never migrated (1 GiB pages are not migration
        // sources)
        let id = self.new_obj();
        self.objs[id as usize].kind = kind::HUGETLB;
        id
    }
}

/// What the sample hook accumulates.
#[derive(Default)]
struct Acc {
    timeline: Vec<TimelinePoint>,
    peak_normal: u64,
    peak_all: u64,
    maps: Vec<crate::metrics::SpbMap>,
}

impl Sim {
    /// Consistency of the lab's bookkeeping with the allocator: every allocated page is known
    /// to the world, and (in debug builds, or with `check_every`) the allocator's own invariant
    /// checker passes.
    pub fn verify(&self, full: bool) -> Result<(), String> {
        let alloc: u64 = self
            .a
            .zones()
            .iter()
            .flat_map(|z| z.spbs().iter())
            .map(|s| s.alloc_pages().iter().sum::<u64>())
            .sum();
        let world: u64 = self.w.kind_pages.iter().sum();
        if alloc != world {
            return Err(format!("lab bookkeeping: the allocator has {alloc} pages allocated, the world knows {world}"));
        }
        let slab: u64 = self.w.caches.iter().map(|c| c.pages).sum();
        if slab != self.w.kind_pages[kind::SLAB as usize] {
            return Err(format!(
                "lab bookkeeping: slab caches hold {slab} pages, slab objects count {}",
                self.w.kind_pages[kind::SLAB as usize]
            ));
        }
        if full {
            self.a
                .check()
                .map_err(|e| format!("allocator invariant: {e}"))?;
        }
        Ok(())
    }

    /// Per-zone inputs of the limit.
    pub fn limit_inputs(&self) -> Vec<LimitInputs> {
        (0..self.a.zones().len())
            .map(|i| LimitInputs {
                shrinkable_pages: self.w.freeable_slab_zone[i],
                clean_cache_pages: self.w.clean_cache_zone[i],
            })
            .collect()
    }

    fn thp_counts(&self) -> (u64, u64) {
        let s = &self.st;
        (
            s.thp_fault_alloc
                + s.thp_fault_fallback
                + s.thp_collapse_alloc
                + s.thp_collapse_alloc_failed,
            s.thp_fault_alloc + s.thp_collapse_alloc,
        )
    }

    fn sample(&self, acc: &mut Acc) {
        let (n, all) = measure::census(&self.a);
        let (_, lim_all) = measure::limits(&self.a, &self.limit_inputs());
        acc.peak_normal = acc.peak_normal.max(n.tainted);
        acc.peak_all = acc.peak_all.max(all.tainted);
        let (att, ok) = self.thp_counts();
        acc.timeline.push(TimelinePoint {
            t: self.now as f64 / 1e9,
            tainted: n.tainted,
            lost: n.lost,
            lost_floor: n.lost_floor,
            free_pages: self.a.free_pages(),
            gigantic_obtainable: Some((all.clean + all.empty).min(lim_all)),
            thp_attempts: att,
            thp_success: ok,
            pages_migrated: self.a.pages_migrated(),
        });
    }

    /// Kernel-named counters.
    pub fn vmstat(&self) -> BTreeMap<String, u64> {
        let mut m: BTreeMap<String, u64> = self
            .a
            .vm()
            .iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let w = &self.w;
        let kp = |k: u8| w.kind_pages[k as usize];
        let tp = 1u64 << self.geo.pageblock_order;
        let add = |m: &mut BTreeMap<String, u64>, k: &str, v: u64| {
            m.insert(k.to_string(), v);
        };
        add(&mut m, "nr_free_pages", self.a.free_pages());
        add(&mut m, "nr_anon_pages", kp(kind::ANON) + kp(kind::THP));
        add(&mut m, "nr_anon_transparent_hugepages", kp(kind::THP) / tp);
        add(&mut m, "nr_file_pages", kp(kind::CACHE) + kp(kind::SHMEM));
        add(&mut m, "nr_shmem", kp(kind::SHMEM));
        add(&mut m, "nr_dirty", w.dirty_pages);
        add(&mut m, "nr_slab_reclaimable", w.slab_reclaimable_pages);
        add(&mut m, "nr_slab_unreclaimable", w.slab_unreclaimable_pages);
        add(&mut m, "nr_page_table_pages", kp(kind::PTE));
        add(&mut m, "nr_kernel_stack", kp(kind::STACK) * 4);
        add(&mut m, "thp_fault_alloc", self.st.thp_fault_alloc);
        add(&mut m, "thp_fault_fallback", self.st.thp_fault_fallback);
        add(&mut m, "thp_collapse_alloc", self.st.thp_collapse_alloc);
        add(
            &mut m,
            "thp_collapse_alloc_failed",
            self.st.thp_collapse_alloc_failed,
        );
        add(&mut m, "pgsteal_file", w.st.pgsteal_file);
        add(&mut m, "pgscan_file", w.st.pgscan_file);
        add(&mut m, "pgsteal_anon", w.st.pgsteal_anon);
        add(&mut m, "pswpout", w.st.pswpout);
        add(&mut m, "slabs_scanned", w.st.slabs_scanned);
        add(&mut m, "pgfault", w.st.pgfault);
        add(&mut m, "thp_split_page", w.st.thp_split_page);
        add(&mut m, "file_folio_split", w.st.file_folio_split);
        m
    }

    fn extra(&self) -> BTreeMap<String, serde_json::Value> {
        let mut e = BTreeMap::new();
        let s = &self.st;
        let w = &self.w;
        let mut put = |k: &str, v: u64| {
            e.insert(k.to_string(), serde_json::Value::from(v));
        };
        put("hugetlb_requested", s.htlb_attempts);
        put("hugetlb_obtained", s.htlb_success);
        put("packets", s.packets);
        put("packets_dropped", s.packets_dropped);
        put("slab_high_order_fallbacks", s.slab_alloc_fallbacks);
        put("pagecache_folio_fallbacks", s.pagecache_folio_fallbacks);
        put("processes_spawned", s.processes_spawned);
        put("processes_exited", s.processes_exited);
        put("fault_enomem", s.mmap_enomem);
        put("tmpfs_mounts", s.tmpfs_mounts);
        put("longterm_pins_migrated", s.pins_migrated);
        put("migrate_moved", w.st.migrate_moved);
        put("migrate_refused_pinned", w.st.migrate_refused);
        put("migrate_dropped_clean_cache", w.st.migrate_dropped);
        put("writeback_pages", w.st.writeback_pages);
        put("slab_objects_shrunk", w.st.slab_objects_shrunk);
        put("background_calls", s.bg_calls);
        put("live_objects", w.live_objs() as u64);
        if super::PROFILE {
            put("prof_alloc_ms", s.prof_alloc_ns / 1_000_000);
            put("prof_free_ms", s.prof_free_ns / 1_000_000);
            put("prof_background_ms", s.prof_bg_ns / 1_000_000);
        }
        let mut ak = serde_json::Map::new();
        for (i, n) in kind::NAMES.iter().enumerate() {
            ak.insert(n.to_string(), serde_json::Value::from(s.allocs_by_kind[i]));
        }
        e.insert("allocs_by_kind".to_string(), serde_json::Value::Object(ak));
        let mut kinds = serde_json::Map::new();
        for (i, n) in kind::NAMES.iter().enumerate() {
            kinds.insert(n.to_string(), serde_json::Value::from(w.kind_pages[i]));
        }
        e.insert(
            "pages_by_kind".to_string(),
            serde_json::Value::Object(kinds),
        );
        e
    }
}

/// The policy's display name: `spb` for the default switch set, plus `-off:` and the switches
/// turned off relative to the defaults (or `-on:` for default-off switches turned on); the name
/// runs, sweeps and ablations use ([`spb_alloc::PolicyConfig::label`]).
pub fn policy_label(p: &spb_alloc::PolicyConfig) -> String {
    p.label()
}

/// Run a scenario under one policy. `progress` is called with the virtual time (ns) now and
/// then. The wall time covers the whole run including the probe.
pub fn run_scenario(
    sc: &Scenario,
    opts: &SimOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<RunMetrics, String> {
    let t0 = Instant::now();
    let mut sim = Sim::new(sc, opts)?;
    // the machine's set-up alone (its metadata made and first touched: grows with memory)
    let setup_wall = t0.elapsed().as_secs_f64();
    let mut acc = Acc::default();
    let mut after_boot = true;
    {
        let mut hook = |s: &mut Sim| {
            s.sample(&mut acc);
            if after_boot {
                acc.maps.push(measure::spb_map(&s.a, s.now as f64 / 1e9));
                after_boot = false;
            }
            progress(s.now);
        };
        sim.run(&mut hook);
    }
    // the workload alone (machine set-up, boot and the run with its samples; not the end
    // checks, census and probe, whose cost grows with memory, not with events)
    let workload_wall = t0.elapsed().as_secs_f64();
    progress(sim.end);
    sim.verify(cfg!(debug_assertions) || opts.check_every > 0)?;
    // end of run: census, limit, then the probe
    let (n, all) = measure::census(&sim.a);
    let inputs = sim.limit_inputs();
    let (lim_n, lim_all) = measure::limits(&sim.a, &inputs);
    let cap_bound = measure::capacity_bound(&sim.a, &inputs);
    let events = sim.events();
    let pages_migrated = sim.a.pages_migrated();
    let vmstat = sim.vmstat();
    let mut extra = sim.extra();
    extra.insert(
        "metadata_bytes_per_page".into(),
        serde_json::json!(sim.a.metadata_bytes_per_page()),
    );
    if let Some(w) = sim.a.spb_walks() {
        // before the probe: the workload's allocation walks only
        let (lo, hi) = w.median_bucket();
        extra.insert(
            "spb_walk".into(),
            serde_json::json!({
                "walks": w.walks(),
                "mean_spbs_visited": w.mean(),
                "median_bucket": [lo, if hi == u64::MAX { serde_json::Value::Null } else { hi.into() }],
                "bucket_bounds": spb_alloc::vmstat::WalkHistogram::BOUNDS,
                "buckets": w.buckets(),
            }),
        );
    }
    acc.maps
        .push(measure::spb_map(&sim.a, sim.end as f64 / 1e9));
    let (att, ok) = sim.thp_counts();
    let free_end = sim.a.free_pages();
    // background work and stalls of the run (the probe's own stalls are not the run's)
    let bg = *sim.a.background_work();
    let stalls = *sim.a.stall_causes();
    let compactions = sim.a.direct_compactions().to_vec();
    let splits = crate::cost::FolioSplits {
        thp: sim.w.st.thp_split_page,
        file: sim.w.st.file_folio_split,
    };
    let pr = {
        let Sim { a, w, .. } = &mut sim;
        measure::probe(a, w)
    };
    sim.flush();
    acc.peak_normal = acc.peak_normal.max(n.tainted);
    acc.peak_all = acc.peak_all.max(all.tainted);
    acc.timeline.push(TimelinePoint {
        t: sim.end as f64 / 1e9,
        tainted: n.tainted,
        lost: n.lost,
        lost_floor: n.lost_floor,
        free_pages: free_end,
        gigantic_obtainable: Some(pr.allocatable),
        thp_attempts: att,
        thp_success: ok,
        pages_migrated,
    });
    extra.insert(
        "gigantic_normal_allocatable".into(),
        pr.normal_allocatable.into(),
    );
    extra.insert("gigantic_normal_limit".into(), lim_n.into());
    extra.insert("gigantic_capacity_bound".into(), cap_bound.into());
    extra.insert("probe_reclaimed_pages".into(), pr.reclaimed_pages.into());
    if let Some(st) = pr.stop {
        extra.insert("probe_stop".into(), measure::probe_stop_json(&st));
    }
    if let Some(z) = sim.normal_zone() {
        extra.insert(
            "normal_min_watermark".into(),
            sim.a.zones()[z].wmark()[0].into(),
        );
    }
    let wall = t0.elapsed().as_secs_f64();
    // events per wall second over a span (0 for an empty span)
    let rate = |secs: f64| {
        serde_json::Value::from(if secs > 0.0 {
            (events as f64 / secs).round()
        } else {
            0.0
        })
    };
    extra.insert("events_per_second".into(), rate(wall));
    extra.insert(
        "workload_wall_seconds".into(),
        serde_json::json!(workload_wall),
    );
    extra.insert("workload_events_per_second".into(), rate(workload_wall));
    extra.insert("setup_wall_seconds".into(), serde_json::json!(setup_wall));
    extra.insert(
        "loop_events_per_second".into(),
        rate(workload_wall - setup_wall),
    );
    let mut alloc_failures = BTreeMap::new();
    let mut warned = 0u64;
    for &(g, o, c) in &sim.st.failures {
        *alloc_failures
            .entry(format!("{} order={}", g, o))
            .or_insert(0) += c;
        if !g.contains(spb_alloc::Gfp::NOWARN) {
            warned += c;
        }
    }
    // failures the kernel would report ("page allocation failure", warn_alloc): the caller did
    // not say, with __GFP_NOWARN, that it has a fallback
    extra.insert("alloc_failures_warned".into(), warned.into());
    // the lab's slab model, named only when it is not the default (docs/scenarios.md)
    if sc.slab_model != crate::scenario::SlabModel::default() {
        extra.insert("slab_model".into(), sc.slab_model.name().into());
    }
    if sc.kswapd != crate::scenario::KswapdModel::default() {
        extra.insert("kswapd".into(), sc.kswapd.name().into());
    }
    if sc.pcp_free != crate::scenario::PcpFree::default() {
        extra.insert("pcp_free".into(), sc.pcp_free.name().into());
    }
    if !sc.compaction_skip_hints {
        extra.insert("compaction_skip_hints".into(), false.into());
    }
    if sc.compaction_async_stride {
        extra.insert("compaction_async_stride".into(), true.into());
    }
    if !sc.kswapd_reclaims_high_watermark {
        extra.insert("kswapd_reclaims_high_watermark".into(), false.into());
    }
    if !sc.compaction_capture {
        extra.insert("compaction_capture".into(), false.into());
    }
    if !sc.compaction_skip_on_failure {
        extra.insert("compaction_skip_on_failure".into(), false.into());
    }
    Ok(RunMetrics {
        scenario: sc.name.clone(),
        policy: policy_label(&opts.policy),
        seed: sc.seed,
        memory_bytes: sc.machine.memory,
        virtual_seconds: sim.end as f64 / 1e9,
        events,
        wall_seconds: wall,
        normal: n.to_metrics(acc.peak_normal),
        all_zones: all.to_metrics(acc.peak_all),
        gigantic: Gigantic {
            allocatable: pr.allocatable,
            limit: lim_all,
            probe_pages_migrated: pr.pages_migrated,
        },
        thp: Thp {
            attempts: att,
            success: ok,
        },
        pages_migrated,
        alloc_failures,
        oom_kills: sim.w.st.oom_kills,
        vmstat,
        timeline: acc.timeline,
        maps: acc.maps,
        extra,
        trace: None,
        cost: Some(crate::cost::CostReport {
            folio_splits: Some(splits),
            ..sim.st.bill.report(
                &bg,
                &stalls,
                &compactions,
                sim.end as f64 / 1e9,
                pr.allocatable,
                pr.pages_migrated,
            )
        }),
    })
}
