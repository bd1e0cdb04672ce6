//! Trace replay on the committed excerpts (`tests/data/`) under every policy, and (ignored by
//! default; `cargo test --release -p spb-lab --test replay -- --ignored`) on the full shared
//! captures in ../shared/traces.

use std::path::{Path, PathBuf};

use spb_lab::replay::{replay, PolicySel, ReplayOptions, ReplayOutput};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn zoneinfo_24g() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../spb-alloc/tests/data/zoneinfo-fc-24g-lazy")
}

/// Every run is internally consistent: no free, split or grow the simulation rejected.
fn consistent(out: &ReplayOutput) {
    for r in &out.doc.runs {
        let n = &r.extra["replay_notes"];
        for k in [
            "sim_free_errors",
            "sim_split_errors",
            "real_alloc_at_failed",
            "grow_errors",
            "free_unmapped",
            "prefill_alloc_at_failed",
        ] {
            assert!(n.get(k).is_none(), "{}: {k} = {:?}", r.policy, n.get(k));
        }
        let t = r.trace.as_ref().expect("replay runs carry trace stats");
        assert_eq!(t.lines, out.stats.lines);
    }
}

fn all_policies() -> ReplayOptions {
    ReplayOptions {
        policies: PolicySel::all(),
        threads: 2,
        ..Default::default()
    }
}

#[test]
fn build_excerpt_every_policy_inferred_layout() {
    let mut o = all_policies();
    o.strict = true; // no bad input in a real trace
    let out = replay(&data("build-excerpt.txt.zst"), &o).unwrap();
    assert_eq!(out.stats.lines, 24_100);
    assert_eq!(out.stats.parsed, 24_100);
    assert!(
        !out.stats.skipped.contains_key("unparsed"),
        "{:?}",
        out.stats.skipped
    );
    // every mm_page_free_batched line is the duplicate of a free
    assert_eq!(
        out.stats.skipped.get("free_batched_duplicate"),
        Some(&5_240)
    );
    assert_eq!(out.doc.runs.len(), 5);
    let names: Vec<&str> = out.doc.runs.iter().map(|r| r.policy.as_str()).collect();
    assert_eq!(names, ["real", "vanilla", "defrag", "spb", "spb-next"]);
    consistent(&out);
    for r in &out.doc.runs {
        assert!(r.events > 10_000, "{}: {}", r.policy, r.events);
        assert!(r.all_zones.spb_total > 0);
    }
}

#[test]
fn build_excerpt_with_zoneinfo_layout() {
    let mut o = all_policies();
    o.zoneinfo = Some(zoneinfo_24g());
    let out = replay(&data("build-excerpt.txt.zst"), &o).unwrap();
    assert!(!out.stats.skipped.contains_key("unparsed"));
    assert!(
        !out.stats.skipped.contains_key("pfn_outside_layout"),
        "{:?}",
        out.stats.skipped
    );
    consistent(&out);
    // 24 GiB: DMA, DMA32, Normal
    assert_eq!(out.doc.runs[0].memory_bytes >> 30, 23);
}

#[test]
fn variants_replay_and_json_roundtrip() {
    let out = replay(&data("variants.txt"), &all_policies()).unwrap();
    assert!(
        !out.stats.skipped.contains_key("unparsed"),
        "{:?}",
        out.stats.skipped
    );
    assert_eq!(out.stats.skipped.get("failed_alloc"), Some(&1));
    assert_eq!(out.stats.skipped.get("unrecognized"), Some(&1));
    assert_eq!(out.comparison.real_extfrag.events, 1);
    consistent(&out);
    let json = serde_json::to_string(&out.doc).unwrap();
    let back: spb_lab::metrics::RunsDoc = serde_json::from_str(&json).unwrap();
    assert_eq!(back.runs.len(), out.doc.runs.len());
    assert_eq!(
        serde_json::to_value(&back.runs[0].trace).unwrap(),
        serde_json::to_value(&out.doc.runs[0].trace).unwrap()
    );
    assert!(json.contains("\"trace\""));
    assert!(json.contains("\"unknown_frees\""));
    assert!(json.contains("\"fallback_replays\""));
    assert!(json.contains("\"inferred_bulk_pages\""));
}

/// The full shared captures (release build recommended): zero unparsed lines under every policy.
#[test]
#[ignore]
fn shared_traces_replay_completely() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/traces");
    for t in ["build", "pagecache", "anon-thp"] {
        let dir = root.join(t);
        if !dir.exists() {
            eprintln!("skipping {t}: {} not found", dir.display());
            continue;
        }
        let out = replay(&dir, &all_policies()).unwrap();
        assert!(
            !out.stats.skipped.contains_key("unparsed"),
            "{t}: {:?}",
            out.stats.skipped
        );
        assert_eq!(out.stats.parsed, out.stats.lines, "{t}");
        consistent(&out);
        for (p, lps) in &out.lines_per_s {
            eprintln!("{t} {p}: {:.2} M lines/s", lps / 1e6);
        }
    }
}

/// The shared pagecache capture (release build recommended): its kernel finishes deferred init
/// of 10 Normal regions during the trace. spb must not put kernel memory into any region it did
/// not hold kernel memory in at the start (memory waiting for deferred init is not a hole for
/// `lost_first`), while vanilla, like the kernel, does.
#[test]
#[ignore]
fn shared_pagecache_spb_keeps_the_grown_regions_clean() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/traces/pagecache");
    if !dir.exists() {
        eprintln!("skipping: {} not found", dir.display());
        return;
    }
    let opts = ReplayOptions {
        policies: PolicySel::parse_list("vanilla,spb", &[]).unwrap(),
        threads: 2,
        ..Default::default()
    };
    let out = replay(&dir, &opts).unwrap();
    consistent(&out);
    let run = |p: &str| out.doc.runs.iter().find(|r| r.policy == p).unwrap();
    let (v, s) = (run("vanilla"), run("spb"));
    let at_start = s.timeline.first().unwrap().tainted;
    assert_eq!(
        s.normal.spb_tainted_peak, at_start,
        "spb tainted a grown region"
    );
    assert!(
        v.normal.spb_tainted > s.normal.spb_tainted,
        "vanilla {} against spb {}",
        v.normal.spb_tainted,
        s.normal.spb_tainted
    );
    assert!(s.gigantic.allocatable > v.gigantic.allocatable);
}
