//! The bill of short runs: every run has a `cost` block whose numbers hold together, and whose
//! totals are the allocator's own counters split by context (docs/metrics.md, "The bill").

mod common;
use common::run;
use spb_alloc::PolicyKind;
use spb_lab::cost::{ClassCost, CostReport, Percentiles, ReqClass};
use spb_lab::metrics::RunMetrics;

fn ordered(p: &Percentiles, what: &str) {
    assert!(
        p.p50 <= p.p99 && p.p99 <= p.p999 && p.p999 <= p.max,
        "{what}: percentiles out of order: {p:?}"
    );
    assert!(p.mean <= p.max as f64, "{what}: {p:?}");
}

fn check_class(c: &ClassCost, what: &str) {
    ordered(&c.direct_all, &format!("{what} all"));
    ordered(&c.direct_slow, &format!("{what} slow"));
    assert!(c.slow_path <= c.requests, "{what}: {c:?}");
    assert!(c.failures <= c.requests, "{what}: {c:?}");
    assert!(c.failures_above_min <= c.failures, "{what}: {c:?}");
    assert_eq!(c.direct_all.count, c.requests, "{what}");
    assert_eq!(c.direct_slow.count, c.slow_path, "{what}");
    // fast-path requests cost nothing: the slow entries carry all the work
    assert!(c.direct_all.max == c.direct_slow.max, "{what}: {c:?}");
    assert!(c.direct_all.p50 <= c.direct_slow.max, "{what}");
    let total = c.pages.total() as f64;
    assert!(
        (c.direct_all.mean * c.requests as f64 - total).abs() <= 1e-6 * total.max(1.0),
        "{what}: the mean over all requests is the total over the requests: {c:?}"
    );
}

fn check(m: &RunMetrics) -> CostReport {
    let what = format!("{} {}", m.scenario, m.policy);
    let b = m
        .cost
        .clone()
        .unwrap_or_else(|| panic!("{what}: no cost block"));
    let all = b.class("all");
    let mut sum = ClassCost::default();
    for c in ReqClass::ALL {
        let cc = b.class(c.name());
        check_class(&cc, &format!("{what} {}", c.name()));
        sum.requests += cc.requests;
        sum.slow_path += cc.slow_path;
        sum.failures += cc.failures;
        sum.pages.reclaim_scanned += cc.pages.reclaim_scanned;
        sum.pages.compact_migrate_scanned += cc.pages.compact_migrate_scanned;
        sum.pages.compact_free_scanned += cc.pages.compact_free_scanned;
        sum.pages.migrated += cc.pages.migrated;
    }
    check_class(&all, &format!("{what} all"));
    assert_eq!(
        (all.requests, all.slow_path, all.failures, &all.pages),
        (sum.requests, sum.slow_path, sum.failures, &sum.pages),
        "{what}: 'all' is the sum of the classes"
    );
    // every failed request is counted once by class and once by caller kind, and once in
    // alloc_failures
    let by_kind: u64 = b.failures_by_kind.values().sum();
    assert_eq!(all.failures, by_kind, "{what}");
    assert_eq!(all.failures, m.failures(), "{what}");
    // requests: every allocation of the run, by kind
    let by_kind: u64 = m.extra["allocs_by_kind"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(
        all.requests - b.class("contig").requests,
        by_kind,
        "{what}: one record per page-allocator request"
    );
    assert_eq!(
        b.class("contig").requests,
        m.extra["hugetlb_requested"].as_u64().unwrap(),
        "{what}"
    );
    // the kernel counters, split by context: direct (the classes) + background = total
    let bg = &b.background;
    assert_eq!(
        all.pages.compact_migrate_scanned + bg.kcompactd_migrate_scanned,
        m.vm("compact_migrate_scanned"),
        "{what}"
    );
    assert_eq!(
        all.pages.compact_free_scanned + bg.kcompactd_free_scanned,
        m.vm("compact_free_scanned"),
        "{what}"
    );
    assert_eq!(
        all.pages.migrated + bg.kcompactd_migrated + bg.workers_migrated,
        m.pages_migrated,
        "{what}: every migration of the run is somebody's"
    );
    // pgscan_direct is the callers' reclaim and the policy workers' reclaim for migration
    // targets (the rest of both is reclaim a policy asks for, counted beside it)
    assert!(
        all.pages.reclaim_scanned + bg.workers_reclaimed >= m.vm("pgscan_direct"),
        "{what}"
    );
    assert_eq!(bg.kswapd_scanned, m.vm("pgscan_kswapd"), "{what}");
    // every direct-reclaim stall of the run has one cause
    let s = b.stalls.as_ref().expect("stall causes");
    let allocstalls: u64 = ["dma", "dma32", "normal", "movable"]
        .iter()
        .map(|z| m.vm(&format!("allocstall_{z}")))
        .sum();
    assert_eq!(
        s.slow_path + s.contig_targets + s.evacuation_targets + bg.workers_stalls,
        allocstalls,
        "{what}: {s:?}"
    );
    // every direct compaction of the run is counted at its request's order
    let cs = b.compactions.as_ref().expect("direct compactions by order");
    assert!(
        cs.iter().all(|c| c.stalls > 0 && c.success <= c.stalls),
        "{what}: {cs:?}"
    );
    assert_eq!(
        cs.iter().map(|c| c.stalls).sum::<u64>(),
        m.vm("compact_stall"),
        "{what}: {cs:?}"
    );
    assert_eq!(
        cs.iter().map(|c| c.success).sum::<u64>(),
        m.vm("compact_success"),
        "{what}: {cs:?}"
    );
    assert_eq!(
        b.atomic_failures_above_min,
        b.class("atomic").failures_above_min,
        "{what}"
    );
    assert!(b.atomic_failures_above_min_warned <= b.atomic_failures_above_min);
    for (k, o) in &b.optional {
        assert!(o.failed > 0, "{what}: {k} listed without a failure");
        assert_eq!(o.fallback_ok + o.fallback_failed, o.failed, "{what}: {k}");
    }
    assert_eq!(b.probe.obtained, m.gigantic.allocatable);
    assert_eq!(b.probe.pages_migrated, m.gigantic.probe_pages_migrated);
    match b.probe.migrated_per_page {
        Some(v) => assert_eq!(
            v,
            m.gigantic.probe_pages_migrated as f64 / m.gigantic.allocatable as f64
        ),
        None => assert_eq!(m.gigantic.allocatable, 0),
    }
    // the run's folio splits, the probe's counted in vmstat only
    let fs = b.folio_splits.as_ref().expect("folio splits");
    assert!(fs.thp <= m.vm("thp_split_page"), "{what}: {fs:?}");
    assert!(fs.file <= m.vm("file_folio_split"), "{what}: {fs:?}");
    // the block is in the JSON as `cost`
    let v = serde_json::to_value(m).unwrap();
    assert!(v["cost"]["classes"]["all"]["direct_slow"]["p999"].is_u64());
    b
}

#[test]
fn short_runs_carry_a_consistent_bill() {
    // small and short (debug builds), yet with direct reclaim, failures and fallbacks
    // (syzkaller-256g squeezed into 1 GiB), and direct compaction and 1 GiB requests
    // (thp-challenge, also in 1 GiB)
    let (mut slow, mut compacted, mut optional) = (0, 0, 0);
    for p in PolicyKind::ALL {
        for (name, mem, secs) in [
            ("syzkaller-256g", 1u64 << 30, 1),
            ("thp-challenge", 1 << 30, 1),
        ] {
            let m = run(name, mem, secs, 1, p);
            let b = check(&m);
            slow += b.class("all").slow_path;
            compacted += b.class("all").pages.compact_migrate_scanned;
            optional += b.optional.values().map(|o| o.failed).sum::<u64>();
        }
    }
    assert!(
        slow > 0 && compacted > 0 && optional > 0,
        "the runs exercised the slow path"
    );
}
