//! Parser/reader tests on the committed excerpts in `tests/data/`:
//! - `build-excerpt.txt.zst`: the first 24 100 lines of the shared `build` capture (includes the
//!   `BUDDYCAP SNAPSHOT_BEGIN` marker and one `mm_compaction_kcompactd_sleep`);
//! - `variants.txt`: hand-written lines covering the trace_pipe and trace-cmd layouts, the
//!   `page=` field, a failed allocation, record-tgid, markers, lost events and garbage.

use spb_lab::trace::{count_events, GfpId, Line, SkipReason, TraceEvent, TraceStream};

fn data(name: &str) -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/").to_string() + name
}

#[test]
fn build_excerpt_counts() {
    let s = count_events(data("build-excerpt.txt.zst")).unwrap();
    assert_eq!(s.lines, 24_100);
    assert_eq!(s.count("mm_page_alloc"), 9_546);
    assert_eq!(s.count("mm_page_free"), 7_188);
    assert_eq!(s.count("mm_page_free_batched"), 5_240);
    assert_eq!(s.count("mm_page_alloc_zone_locked"), 2_124);
    assert_eq!(s.count("mm_page_pcpu_drain"), 0);
    assert_eq!(s.count("mm_page_alloc_extfrag"), 0);
    assert_eq!(s.count("tracing_mark_write"), 1);
    assert_eq!(s.count("mm_compaction_kcompactd_sleep"), 1);
    assert_eq!(s.parse_errors, 0, "{:?}", s.first_errors);
    assert!(s.skipped.is_empty(), "{:?}", s.skipped);
    assert_eq!(s.failed_allocs, 0);
    assert_eq!(s.distinct_gfp, 14);
    assert_eq!(s.timestamp_inversions, 1);
    assert_eq!(s.first_ts_ns, Some(683_177_210_000));
    assert_eq!(
        s.markers,
        vec![(
            683_288_259_000,
            "BUDDYCAP SNAPSHOT_BEGIN name=build".to_string()
        )]
    );
}

#[test]
fn build_excerpt_first_records() {
    let mut st = TraceStream::open(data("build-excerpt.txt.zst")).unwrap();
    let Some(Line::Event(r)) = st.next().unwrap() else {
        panic!()
    };
    assert_eq!(
        (r.line_no, r.ts_ns, r.cpu, r.pid, r.comm),
        (1, 683_177_210_000, 0, 10853, &b"bash"[..])
    );
    assert_eq!(
        r.event,
        TraceEvent::Alloc {
            pfn: Some(0x152ad5),
            order: 0,
            migratetype: 1,
            gfp: GfpId(0)
        }
    );
    assert_eq!(r.gfp_str(), "GFP_HIGHUSER_MOVABLE|__GFP_COMP");
    assert_eq!(r.irqs_off(), Some(false));
}

#[test]
fn variants_file() {
    let mut st = TraceStream::open(data("variants.txt")).unwrap();
    let mut out = Vec::new();
    while let Some(l) = st.next().unwrap() {
        out.push(match l {
            Line::Event(r) => format!(
                "{} {}/{:?} cpu{} {} {:?} {:?}",
                r.line_no,
                r.pid,
                r.tgid,
                r.cpu,
                r.comm_lossy(),
                r.ts_ns,
                r.event
            ),
            Line::Lost { cpu, events } => format!("lost {cpu:?} {events:?}"),
            Line::Skipped(s) => s.to_string(),
        });
    }
    let kcompactd = st
        .parser()
        .event_name(spb_lab::trace::EventNameId(0))
        .to_string();
    assert_eq!(kcompactd, "mm_compaction_kcompactd_sleep");
    let expect = [
        "comment", "comment", "comment", "comment", "comment", "comment", "comment", "comment", "comment", "comment",
        "comment", "comment",
        "13 2397/None cpu1 bash 1523904112000 Alloc { pfn: Some(1221632), order: 0, migratetype: 1, gfp: GfpId(0) }",
        "14 2397/None cpu1 bash 1523904113000 ZoneLocked { pfn: 1221632, order: 0, migratetype: 1, percpu_refill: true }",
        "15 2397/None cpu1 bash 1523904120000 Alloc { pfn: None, order: 9, migratetype: 1, gfp: GfpId(1) }",
        "16 2397/Some(2390) cpu1 bash 1523904200000 Free { pfn: 1221632, order: 0 }",
        "17 2398/None cpu0 <...> 1523904201000 FreeBatched { pfn: 1221632 }",
        "18 11347/None cpu0 opt cgu.0 1523904300000 PcpuDrain { pfn: 1221632, order: 0, migratetype: 1 }",
        "19 10868/None cpu1 cat 1523904400000 ExtFrag { pfn: 1605632, alloc_order: 0, fallback_order: 10, pageblock_order: 9, alloc_migratetype: 0, fallback_migratetype: 1, fragmenting: false, change_ownership: true }",
        "20 2397/None cpu1 bash 1523904500000 Marker(\"BUDDYCAP SNAPSHOT_BEGIN name=variants\")",
        "lost Some(1) Some(17)",
        "22 36/None cpu0 kcompactd0 1523904600000 Other(EventNameId(0))",
        "blank",
        "unrecognized",
        "trace-cmd-header",
        "trace-cmd-header",
        "27 4321/None cpu0 <...> 1524000001000 Alloc { pfn: Some(1223744), order: 2, migratetype: 0, gfp: GfpId(2) }",
        "28 123/None cpu1 kworker/u8:2 1524000002123 Free { pfn: 1223680, order: 2 }",
        "29 2397/None cpu1 bash 1524000003000 Marker(\"BUDDYCAP SNAPSHOT_END\")",
        "30 2397/None cpu1 bash 1524000004000 Free { pfn: 16, order: 0 }",
        "31 2397/None cpu1 bash 1524000005000 ZoneLocked { pfn: 16, order: 0, migratetype: 0, percpu_refill: false }",
    ];
    assert_eq!(out, expect);
    let t = st.parser().gfp_table();
    assert_eq!(t.get(GfpId(2)), Some("GFP_KERNEL|__GFP_COMP"));

    let s = count_events(data("variants.txt")).unwrap();
    assert_eq!(s.lines, 31);
    assert_eq!(s.skipped(SkipReason::Comment), 12);
    assert_eq!(s.skipped(SkipReason::TraceCmdHeader), 2);
    assert_eq!(s.skipped(SkipReason::Unrecognized), 1);
    assert_eq!(s.skipped(SkipReason::Blank), 1);
    assert_eq!((s.lost_lines, s.lost_events), (1, 17));
    assert_eq!(s.failed_allocs, 1);
    assert_eq!(s.count("tracing_mark_write"), 1);
    assert_eq!(s.count("print"), 1);
    assert_eq!(s.parse_errors, 0);
}
