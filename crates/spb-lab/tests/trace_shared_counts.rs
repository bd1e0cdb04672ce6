//! Checks the parser against the event table of `../shared/traces/README.md` on the three real
//! captures (5-9 M lines each): every line accounted for, zero unparsed kmem lines.
//!
//! Skipped when `../shared/traces` is absent. Ignored in debug builds (too slow); run with
//!
//! ```text
//! cargo test -p spb-lab --release --test trace_shared_counts
//! ```
//! (or `cargo test -p spb-lab --test trace_shared_counts -- --ignored` in debug, slowly).

use std::path::PathBuf;
use std::time::Instant;

use spb_lab::trace::count_events;

struct Expect {
    name: &'static str,
    lines: u64,
    alloc: u64,
    free: u64,
    batched: u64,
    zone_locked: u64,
    pcpu_drain: u64,
    extfrag: u64,
    /// From meta.json: "timestamp_inversions".
    inversions: u64,
}

const TABLE: [Expect; 3] = [
    Expect {
        name: "build",
        lines: 8_995_750,
        alloc: 2_768_113,
        free: 2_585_422,
        batched: 2_388_623,
        zone_locked: 734_403,
        pcpu_drain: 519_053,
        extfrag: 5,
        inversions: 5,
    },
    Expect {
        name: "pagecache",
        lines: 5_425_861,
        alloc: 1_255_980,
        free: 1_248_471,
        batched: 1_005_364,
        zone_locked: 990_280,
        pcpu_drain: 925_564,
        extfrag: 78,
        inversions: 35,
    },
    Expect {
        name: "anon-thp",
        lines: 6_232_443,
        alloc: 1_540_949,
        free: 1_871_037,
        batched: 1_482_487,
        zone_locked: 433_273,
        pcpu_drain: 580_455,
        extfrag: 4,
        inversions: 0,
    },
];

fn shared() -> Option<PathBuf> {
    let p = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/traces"
    ));
    p.is_dir().then_some(p)
}

#[test]
#[cfg_attr(debug_assertions, ignore = "slow in debug; run with --release")]
fn shared_trace_counts_match_readme_table() {
    let Some(root) = shared() else {
        eprintln!("skipping: ../shared/traces not found");
        return;
    };
    for e in TABLE {
        let dir = root.join(e.name);
        if !dir.is_dir() {
            eprintln!("skipping {}: not present", e.name);
            continue;
        }
        let t = Instant::now();
        let s = count_events(&dir).unwrap();
        let secs = t.elapsed().as_secs_f64();
        eprintln!(
            "{}: {} lines in {:.2} s ({:.2} M lines/s wall)",
            e.name,
            s.lines,
            secs,
            s.lines as f64 / secs / 1e6
        );
        assert_eq!(s.parse_errors, 0, "{}: {:?}", e.name, s.first_errors);
        assert!(s.skipped.is_empty(), "{}: {:?}", e.name, s.skipped);
        assert_eq!(s.lines, e.lines, "{} lines", e.name);
        assert_eq!(s.count("mm_page_alloc"), e.alloc, "{} alloc", e.name);
        assert_eq!(s.count("mm_page_free"), e.free, "{} free", e.name);
        assert_eq!(
            s.count("mm_page_free_batched"),
            e.batched,
            "{} batched",
            e.name
        );
        assert_eq!(
            s.count("mm_page_alloc_zone_locked"),
            e.zone_locked,
            "{} zone_locked",
            e.name
        );
        assert_eq!(
            s.count("mm_page_pcpu_drain"),
            e.pcpu_drain,
            "{} pcpu_drain",
            e.name
        );
        assert_eq!(
            s.count("mm_page_alloc_extfrag"),
            e.extfrag,
            "{} extfrag",
            e.name
        );
        assert_eq!(s.count("tracing_mark_write"), 6, "{} markers", e.name);
        assert_eq!(s.markers.len(), 6);
        assert!(s.markers[0].1.starts_with("BUDDYCAP SNAPSHOT_BEGIN"));
        assert_eq!(s.failed_allocs, 0);
        assert_eq!((s.lost_lines, s.lost_events), (0, 0));
        assert_eq!(
            s.timestamp_inversions, e.inversions,
            "{} inversions",
            e.name
        );
        // Every line is an event: the per-name counts add up to the line count.
        assert_eq!(
            s.events.values().sum::<u64>(),
            s.lines,
            "{}: {:?}",
            e.name,
            s.events
        );
    }
}
