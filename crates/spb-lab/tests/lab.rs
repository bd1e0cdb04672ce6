//! Lab-level tests: determinism, and every built-in scenario under every policy (small and
//! short, so that the suite stays fast in debug builds).

mod common;
use common::{run, run_with};
use spb_alloc::PolicyKind;
use spb_lab::metrics::RunMetrics;
use spb_lab::scenario::builtin;

/// The JSON of a run without its wall-clock fields (`spb diff`'s rule).
fn json_without_wall(m: RunMetrics) -> serde_json::Value {
    let mut v = serde_json::to_value(m).unwrap();
    spb_lab::diff::strip_timing(&mut v);
    v
}

#[test]
fn same_seed_gives_identical_json() {
    let a = run("seed-16g", 2 << 30, 4, 3, PolicyKind::Vanilla);
    let b = run("seed-16g", 2 << 30, 4, 3, PolicyKind::Vanilla);
    assert!(
        a.events > 100_000,
        "the run did something: {} events",
        a.events
    );
    assert_eq!(json_without_wall(a.clone()), json_without_wall(b));
    let c = run("seed-16g", 2 << 30, 4, 4, PolicyKind::Vanilla);
    assert_ne!(
        json_without_wall(a),
        json_without_wall(c),
        "another seed gives another run"
    );
}

/// The run's wall-time split: the set-up is part of the workload time, and the rate without
/// it is the higher one.
#[test]
fn the_setup_is_timed_apart_from_the_workload() {
    let m = run("seed-16g", 2 << 30, 2, 1, PolicyKind::Spb);
    let f = |k: &str| {
        m.extra
            .get(k)
            .and_then(|v| v.as_f64())
            .unwrap_or_else(|| panic!("extra.{k} missing"))
    };
    let (setup, workload) = (f("setup_wall_seconds"), f("workload_wall_seconds"));
    assert!(setup > 0.0 && setup < workload, "{setup} {workload}");
    let (loop_rate, workload_rate) = (f("loop_events_per_second"), f("workload_events_per_second"));
    assert!(
        workload_rate > 0.0 && loop_rate >= workload_rate,
        "{loop_rate} {workload_rate}"
    );
    let expect = m.events as f64 / (workload - setup);
    assert!((loop_rate - expect).abs() <= 1.0, "{loop_rate} {expect}");
}

/// What every short run must show, whatever the scenario and policy.
fn check_short_run(what: &str, p: PolicyKind, m: &RunMetrics) {
    let n = &m.all_zones;
    assert_eq!(
        n.spb_clean + n.spb_empty + n.spb_lost,
        n.spb_total,
        "{what} {p:?}"
    );
    assert!(n.spb_tainted <= n.spb_tainted_peak);
    assert!(
        m.gigantic.allocatable <= m.gigantic.limit,
        "{what} {p:?}: the probe cannot beat the limit: {:?}",
        m.gigantic
    );
    assert!(m.timeline.len() >= 2);
    assert_eq!(
        m.timeline.last().unwrap().gigantic_obtainable,
        Some(m.gigantic.allocatable)
    );
    assert_eq!(m.maps.len(), 2);
    assert!(m.events > 0);
    for k in m.alloc_failures.keys() {
        assert!(k.contains(" order="), "{k}");
    }
    assert!(m.vmstat.contains_key("pgalloc_normal") && m.vmstat.contains_key("nr_free_pages"));
}

#[test]
fn every_scenario_runs_under_every_policy() {
    for b in builtin::BUILTINS {
        for p in PolicyKind::ALL {
            check_short_run(b.name, p, &run(b.name, 3 << 30, 1, 1, p));
        }
    }
}

/// The example scenario files of `examples/scenarios` (user files, not built-ins) load and run,
/// so the commands their comments and RESULTS.md give keep working.
#[test]
fn every_example_scenario_file_loads_and_runs() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/scenarios");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "the example files: {files:?}");
    for f in &files {
        let f = f.to_str().unwrap();
        let sc = spb_lab::load_scenario(f).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(
            !sc.description.is_empty(),
            "{f}: a description says what it models"
        );
        // 8 GiB: their absolute sizes (200 connections of 12 MiB, 120 containers of 64 MiB)
        // overcommit a 3 GiB machine into OOM storms that only make the test slow; the two
        // ends of the policy range (every policy runs every built-in above)
        for p in [PolicyKind::Vanilla, PolicyKind::SpbNext] {
            check_short_run(f, p, &run(f, 8 << 30, 1, 1, p));
        }
    }
}

#[test]
fn json_keys_are_the_documented_ones() {
    let m = run("thp-challenge", 4 << 30, 1, 1, PolicyKind::Spb);
    let v: serde_json::Value =
        serde_json::to_value(spb_lab::metrics::RunsDoc { runs: vec![m] }).unwrap();
    let r = &v["runs"][0];
    for k in [
        "scenario",
        "policy",
        "seed",
        "memory_bytes",
        "virtual_seconds",
        "events",
        "wall_seconds",
        "normal",
        "all_zones",
        "gigantic",
        "thp",
        "pages_migrated",
        "alloc_failures",
        "oom_kills",
        "vmstat",
        "timeline",
    ] {
        assert!(r.get(k).is_some(), "missing key {k}");
    }
    for k in [
        "spb_total",
        "spb_tainted",
        "spb_tainted_peak",
        "spb_pinned",
        "spb_lost",
        "lost_floor",
        "tainted_floor",
        "spb_clean",
        "spb_empty",
    ] {
        assert!(
            r["normal"].get(k).is_some() && r["all_zones"].get(k).is_some(),
            "missing census key {k}"
        );
    }
    for k in ["allocatable", "limit", "probe_pages_migrated"] {
        assert!(r["gigantic"].get(k).is_some(), "missing gigantic key {k}");
    }
    assert_eq!(r["policy"], "spb");
}

/// The lab's kswapd runs as soon as a request wakes it (scenario key `kswapd`, default
/// `on-wake`): a burst of page-cache requests inside one workload event then finds kswapd's
/// reclaim done instead of stalling in direct reclaim request after request, as it does when
/// kswapd runs only between events.
#[test]
fn kswapd_on_wake_takes_the_reclaim_that_bursts_left_to_direct_reclaim() {
    use spb_lab::scenario::KswapdModel;
    let run_k = |k: KswapdModel| {
        run_with(
            "pagecache-churn",
            2 << 30,
            10,
            1,
            PolicyKind::Vanilla,
            |sc| sc.kswapd = k,
        )
    };
    let on_wake = run_k(KswapdModel::OnWake);
    let between = run_k(KswapdModel::BetweenEvents);
    let vm = |m: &RunMetrics, k: &str| m.vmstat.get(k).copied().unwrap_or(0);
    let stalls = |m: &RunMetrics| {
        m.vmstat
            .iter()
            .filter(|(k, _)| k.starts_with("allocstall"))
            .map(|(_, v)| *v)
            .sum::<u64>()
    };
    assert!(
        stalls(&between) > 100,
        "the scenario has bursts that outrun a kswapd between events: {}",
        stalls(&between)
    );
    assert!(
        stalls(&on_wake) * 4 < stalls(&between),
        "stalls on-wake {} vs between-events {}",
        stalls(&on_wake),
        stalls(&between)
    );
    assert!(vm(&on_wake, "pgscan_direct") < vm(&between, "pgscan_direct"));
    assert!(vm(&on_wake, "pgscan_kswapd") > vm(&between, "pgscan_kswapd"));
    assert!(vm(&on_wake, "pageoutrun") > vm(&between, "pageoutrun"));
    assert_eq!(
        between.extra.get("kswapd").and_then(|v| v.as_str()),
        Some("between-events"),
        "a run names a kswapd model that is not the default"
    );
    assert!(!on_wake.extra.contains_key("kswapd"));
}

/// A sample only observes: sampling every 50 ms instead of every 10 s changes the timeline and
/// nothing else. (Before the fix a sample gave kswapd and the policy's workers a turn they would
/// not have had: this run, squeezed into 1 GiB, differed in events, failures and vmstat.)
#[test]
fn the_sampling_interval_does_not_change_the_run() {
    let run_every = |every_ns: u64| {
        let m = run_with(
            "pagecache-churn",
            1 << 30,
            5,
            1,
            PolicyKind::SpbNext,
            |sc| sc.sample_every_ns = every_ns,
        );
        let samples = m.timeline.len();
        let mut v = json_without_wall(m);
        v.as_object_mut().unwrap().remove("timeline");
        (v, samples)
    };
    let (a, na) = run_every(10_000_000_000);
    let (b, nb) = run_every(50_000_000);
    assert!(nb > 10 * na, "the second run sampled more often: {na} {nb}");
    assert_eq!(a, b);
}
