//! Unit tests of the trace parser and input layer: one per layout variant and error class.

use std::io::Write;
use std::path::PathBuf;

use super::input::{InputErrorKind, MAX_LINE_BYTES};
use super::*;

/// (event, ts_ns, cpu, pid, tgid, comm, flags)
type Parsed = (TraceEvent, u64, u32, u32, Option<u32>, String, String);

fn parse(line: &str) -> Result<Parsed, ParseError> {
    let mut p = TraceParser::new();
    match p.parse_line(line.as_bytes(), 7)? {
        Line::Event(r) => Ok((
            r.event.clone(),
            r.ts_ns,
            r.cpu,
            r.pid,
            r.tgid,
            r.comm_lossy().into_owned(),
            String::from_utf8_lossy(r.flags).into_owned(),
        )),
        other => panic!("not an event: {other:?}"),
    }
}

fn ev(line: &str) -> TraceEvent {
    parse(line).unwrap().0
}

fn err(line: &str) -> ParseError {
    let mut p = TraceParser::new();
    match p.parse_line(line.as_bytes(), 42) {
        Err(e) => e,
        Ok(l) => panic!("expected an error, got {l:?}"),
    }
}

const ALLOC: &str = "         python3-14548   [001] d..1.   911.953156: mm_page_alloc: pfn=0x1297ac order=0 migratetype=1 gfp_flags=GFP_HIGHUSER_MOVABLE|__GFP_ZERO|__GFP_COMP";

#[test]
fn trace_pipe_alloc_without_page() {
    let (e, ts, cpu, pid, tgid, comm, flags) = parse(ALLOC).unwrap();
    assert_eq!(
        e,
        TraceEvent::Alloc {
            pfn: Some(0x1297ac),
            order: 0,
            migratetype: 1,
            gfp: GfpId(0)
        }
    );
    assert_eq!(ts, 911_953_156_000);
    assert_eq!((cpu, pid, tgid), (1, 14548, None));
    assert_eq!(comm, "python3");
    assert_eq!(flags, "d..1.");
}

#[test]
fn trace_pipe_with_page_field() {
    let l = "            bash-2397    [001] .....  1523.904112: mm_page_alloc: page=00000000a1b2c3d4 pfn=0x12a400 order=3 migratetype=0 gfp_flags=GFP_KERNEL|__GFP_COMP";
    assert_eq!(
        ev(l),
        TraceEvent::Alloc {
            pfn: Some(0x12a400),
            order: 3,
            migratetype: 0,
            gfp: GfpId(0)
        }
    );
    let l = "            bash-2397    [001] .....  1523.904112: mm_page_free: page=00000000a1b2c3d4 pfn=0x12a400 order=3";
    assert_eq!(
        ev(l),
        TraceEvent::Free {
            pfn: 0x12a400,
            order: 3
        }
    );
    let l = "            bash-2397    [001] ...2.  1523.904112: mm_page_free_batched: page=00000000a1b2c3d4 pfn=0x12a400 order=0";
    assert_eq!(ev(l), TraceEvent::FreeBatched { pfn: 0x12a400 });
    let l = "            bash-2397    [001] d..3.  1523.904112: mm_page_alloc_zone_locked: page=00000000a1b2c3d4 pfn=0x17fcae order=0 migratetype=0 percpu_refill=1";
    assert_eq!(
        ev(l),
        TraceEvent::ZoneLocked {
            pfn: 0x17fcae,
            order: 0,
            migratetype: 0,
            percpu_refill: true
        }
    );
    let l = "           rustc-11238   [001] d..3.   692.127442: mm_page_pcpu_drain: page=00000000a1b2c3d4 pfn=0x18a6f0 order=9 migratetype=1";
    assert_eq!(
        ev(l),
        TraceEvent::PcpuDrain {
            pfn: 0x18a6f0,
            order: 9,
            migratetype: 1
        }
    );
    let l = "             cat-10868   [001] d..3.   683.577959: mm_page_alloc_extfrag: page=00000000a1b2c3d4 pfn=0x188000 alloc_order=0 fallback_order=10 pageblock_order=9 alloc_migratetype=0 fallback_migratetype=1 fragmenting=0 change_ownership=1";
    assert_eq!(
        ev(l),
        TraceEvent::ExtFrag {
            pfn: 0x188000,
            alloc_order: 0,
            fallback_order: 10,
            pageblock_order: 9,
            alloc_migratetype: 0,
            fallback_migratetype: 1,
            fragmenting: false,
            change_ownership: true
        }
    );
}

#[test]
fn shared_capture_lines_without_page() {
    let l = "            bash-10868   [000] .....   683.177824: mm_page_free: pfn=0x1da992 order=0";
    assert_eq!(
        ev(l),
        TraceEvent::Free {
            pfn: 0x1da992,
            order: 0
        }
    );
    let l = "            bash-10868   [000] ...2.   683.177825: mm_page_free_batched: pfn=0x1da992 order=0";
    assert_eq!(ev(l), TraceEvent::FreeBatched { pfn: 0x1da992 });
    let l = "            bash-10869   [001] d..3.   683.186127: mm_page_alloc_zone_locked: pfn=0x17fcae order=0 migratetype=0 percpu_refill=0";
    assert_eq!(
        ev(l),
        TraceEvent::ZoneLocked {
            pfn: 0x17fcae,
            order: 0,
            migratetype: 0,
            percpu_refill: false
        }
    );
    let l = "             cat-10868   [001] d..3.   683.577959: mm_page_alloc_extfrag: pfn=0x188000 alloc_order=3 fallback_order=4 pageblock_order=9 alloc_migratetype=1 fallback_migratetype=0 fragmenting=1 change_ownership=0";
    assert!(matches!(
        ev(l),
        TraceEvent::ExtFrag {
            fragmenting: true,
            change_ownership: false,
            alloc_order: 3,
            ..
        }
    ));
}

#[test]
fn failed_allocation_is_pfn_none() {
    let l = "            bash-2397    [001] .....  1523.904112: mm_page_alloc: page=0000000000000000 pfn=0x0 order=9 migratetype=1 gfp_flags=GFP_TRANSHUGE";
    assert!(matches!(
        ev(l),
        TraceEvent::Alloc {
            pfn: None,
            order: 9,
            ..
        }
    ));
    let l = "            bash-2397    [001] .....  1523.904112: mm_page_alloc: pfn=0x0 order=0 migratetype=0 gfp_flags=GFP_KERNEL";
    assert!(matches!(ev(l), TraceEvent::Alloc { pfn: None, .. }));
    // No pfn field at all but a NULL page (trace-cmd/older formats).
    let l = "            bash-2397    [001] .....  1523.904112: mm_page_alloc: page=(null) order=0 migratetype=0 gfp_flags=GFP_KERNEL";
    assert!(matches!(ev(l), TraceEvent::Alloc { pfn: None, .. }));
}

#[test]
fn record_tgid_column() {
    let l = "            bash-2397    (   2390) [001] .....  1523.904112: mm_page_free: pfn=0x10 order=1";
    let (e, _, cpu, pid, tgid, comm, _) = parse(l).unwrap();
    assert_eq!(
        e,
        TraceEvent::Free {
            pfn: 0x10,
            order: 1
        }
    );
    assert_eq!(
        (cpu, pid, tgid, comm.as_str()),
        (1, 2397, Some(2390), "bash")
    );
    let l = "           <...>-2397    (-------) [000] d..1.  1523.904112: mm_page_free: pfn=0x10 order=1";
    let (_, _, cpu, pid, tgid, comm, _) = parse(l).unwrap();
    assert_eq!((cpu, pid, tgid, comm.as_str()), (0, 2397, None, "<...>"));
}

#[test]
fn comm_with_spaces_dashes_and_digits() {
    let l = "     opt cgu.0-11347     [000] .....   692.382312: mm_page_alloc: pfn=0x1297ac order=0 migratetype=1 gfp_flags=GFP_HIGHUSER_MOVABLE|__GFP_ZERO|__GFP_COMP";
    let (_, _, _, pid, _, comm, _) = parse(l).unwrap();
    assert_eq!((pid, comm.as_str()), (11347, "opt cgu.0"));
    let l = "  foo-bar-12 [x]-999     [001] .....  1525.100000: mm_page_free: pfn=0x10 order=0";
    let (_, _, cpu, pid, _, comm, _) = parse(l).unwrap();
    assert_eq!((cpu, pid, comm.as_str()), (1, 999, "foo-bar-12 [x]"));
    let l = "<...>-1 [000] 1.000001: mm_page_free: pfn=0x10 order=0";
    let (_, ts, _, pid, _, comm, flags) = parse(l).unwrap();
    assert_eq!(
        (ts, pid, comm.as_str(), flags.as_str()),
        (1_000_001_000, 1, "<...>", "")
    );
}

#[test]
fn trace_cmd_report_layout() {
    // No flags column, wide padding after the event name, decimal pfn, hashed page as 0x...
    let l = "           <...>-4321  [000]  1524.000001: mm_page_alloc:        page=0xffffea0004a90000 pfn=1223744 order=0 migratetype=0 gfp_flags=GFP_KERNEL";
    let (e, ts, cpu, pid, _, _, flags) = parse(l).unwrap();
    assert_eq!(
        e,
        TraceEvent::Alloc {
            pfn: Some(1223744),
            order: 0,
            migratetype: 0,
            gfp: GfpId(0)
        }
    );
    assert_eq!(
        (ts, cpu, pid, flags.as_str()),
        (1_524_000_001_000, 0, 4321, "")
    );
    // With a flags column and nanosecond timestamp.
    let l = "     kworker/u8:2-123   [001] d..1. 1524.000002123: mm_page_free:         pfn=0x12ac00 order=2";
    let (e, ts, ..) = parse(l).unwrap();
    assert_eq!(
        e,
        TraceEvent::Free {
            pfn: 0x12ac00,
            order: 2
        }
    );
    assert_eq!(ts, 1_524_000_002_123);
    // trace-cmd's "[FAILED TO PARSE]" prefix with raw fields.
    let l = "  bash-1  [000]  5.5: mm_page_free: [FAILED TO PARSE] page=0xffffea0000000400 pfn=16 order=0";
    assert_eq!(ev(l), TraceEvent::Free { pfn: 16, order: 0 });
    // The preamble.
    let mut p = TraceParser::new();
    for (l, r) in [
        ("cpus=2", SkipReason::TraceCmdHeader),
        ("version = 7", SkipReason::TraceCmdHeader),
        ("CPU 0 is empty", SkipReason::TraceCmdHeader),
        ("# tracer: nop", SkipReason::Comment),
        (
            "#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION",
            SkipReason::Comment,
        ),
        ("   \t ", SkipReason::Blank),
        ("", SkipReason::Blank),
        ("hello world", SkipReason::Unrecognized),
        (
            "[001] 5.5: mm_page_free: pfn=0x1 order=0",
            SkipReason::Unrecognized,
        ),
    ] {
        assert_eq!(
            p.parse_line(l.as_bytes(), 1).unwrap(),
            Line::Skipped(r),
            "{l:?}"
        );
    }
}

#[test]
fn kernel_fields_in_other_order_and_extra_fields() {
    // Older zone_locked format had a cpu= field; fields out of order go to the slow path.
    let l = "  bash-1  [000]  5.5: mm_page_alloc_zone_locked: page=0x1 pfn=16 order=2 migratetype=1 cpu=0 percpu_refill=1";
    assert_eq!(
        ev(l),
        TraceEvent::ZoneLocked {
            pfn: 16,
            order: 2,
            migratetype: 1,
            percpu_refill: true
        }
    );
    let l =
        "  bash-1  [000]  5.5: mm_page_alloc: gfp_flags=GFP_KERNEL order=1 pfn=0x20 migratetype=2";
    assert!(matches!(
        ev(l),
        TraceEvent::Alloc {
            pfn: Some(0x20),
            order: 1,
            migratetype: 2,
            ..
        }
    ));
}

#[test]
fn markers_and_other_events() {
    let mut p = TraceParser::new();
    let l = "            bash-10853   [000] ...1.   683.288259: tracing_mark_write: BUDDYCAP SNAPSHOT_BEGIN name=build";
    match p.parse_line(l.as_bytes(), 1).unwrap() {
        Line::Event(r) => {
            assert_eq!(
                r.event,
                TraceEvent::Marker("BUDDYCAP SNAPSHOT_BEGIN name=build".into())
            );
            assert_eq!(r.name, "tracing_mark_write");
        }
        o => panic!("{o:?}"),
    }
    let l = "  bash-1  [000]  5.5: print:                tracing_mark_write: hello: world";
    match p.parse_line(l.as_bytes(), 2).unwrap() {
        Line::Event(r) => assert_eq!(r.event, TraceEvent::Marker("hello: world".into())),
        o => panic!("{o:?}"),
    }
    let l =
        "      kcompactd0-36      [000] .....   683.304084: mm_compaction_kcompactd_sleep: nid=0";
    let id = match p.parse_line(l.as_bytes(), 3).unwrap() {
        Line::Event(TraceRecord {
            event: TraceEvent::Other(id),
            name,
            ..
        }) => {
            assert_eq!(name, "mm_compaction_kcompactd_sleep");
            id
        }
        o => panic!("{o:?}"),
    };
    assert_eq!(p.event_name(id), "mm_compaction_kcompactd_sleep");
    let l = "         python3-14546   [001] ...1.   915.580246: remove_migration_pte: addr=7fc79de00000, pte=800000040c400067 order=0";
    match p.parse_line(l.as_bytes(), 4).unwrap() {
        Line::Event(TraceRecord {
            event: TraceEvent::Other(id2),
            ..
        }) => assert_ne!(id, id2),
        o => panic!("{o:?}"),
    }
    // An event without any fields.
    let l = "  bash-1  [000]  5.5: some_event:";
    assert!(matches!(
        p.parse_line(l.as_bytes(), 5).unwrap(),
        Line::Event(TraceRecord {
            event: TraceEvent::Other(_),
            ..
        })
    ));
}

#[test]
fn lost_events_lines() {
    let mut p = TraceParser::new();
    assert_eq!(
        p.parse_line(b"CPU:1 [LOST 42 EVENTS]", 1).unwrap(),
        Line::Lost {
            cpu: Some(1),
            events: Some(42)
        }
    );
    assert_eq!(
        p.parse_line(b"CPU:0 [1234 EVENTS DROPPED]", 1).unwrap(),
        Line::Lost {
            cpu: Some(0),
            events: Some(1234)
        }
    );
    assert_eq!(
        p.parse_line(b"CPU:0 [LOST EVENTS]", 1).unwrap(),
        Line::Lost {
            cpu: Some(0),
            events: None
        }
    );
    assert_eq!(
        p.parse_line(b"CPU:0", 1).unwrap(),
        Line::Skipped(SkipReason::TraceCmdHeader)
    );
}

#[test]
fn crlf_and_trailing_newline() {
    let l = format!("{ALLOC}\r\n");
    assert!(matches!(
        ev(&l),
        TraceEvent::Alloc {
            pfn: Some(0x1297ac),
            ..
        }
    ));
}

#[test]
fn gfp_interning_and_cache() {
    let mut p = TraceParser::new();
    let lines = [
        "  a-1  [000]  5.5: mm_page_alloc: pfn=0x1 order=0 migratetype=0 gfp_flags=GFP_KERNEL",
        "  a-1  [000]  5.5: mm_page_alloc: pfn=0x2 order=0 migratetype=1 gfp_flags=GFP_HIGHUSER_MOVABLE",
        "  a-1  [000]  5.5: mm_page_alloc: pfn=0x3 order=0 migratetype=0 gfp_flags=GFP_KERNEL",
        "  a-1  [000]  5.5: mm_page_alloc: pfn=0x3 order=0 migratetype=0 gfp_flags=GFP_KERNEL",
    ];
    let mut cache: GfpCache<usize> = GfpCache::new();
    let mut calls = 0;
    let mut ids = vec![];
    for (i, l) in lines.iter().enumerate() {
        match p.parse_line(l.as_bytes(), i as u64 + 1).unwrap() {
            Line::Event(r) => {
                let TraceEvent::Alloc { gfp, .. } = r.event else {
                    panic!()
                };
                ids.push(gfp);
                let v = *cache
                    .get_or_try_insert_with(gfp, r.gfp_text, |s| {
                        calls += 1;
                        Ok::<_, ()>(s.len())
                    })
                    .unwrap();
                assert_eq!(v, r.gfp_str().len());
            }
            o => panic!("{o:?}"),
        }
    }
    assert_eq!(ids, vec![GfpId(0), GfpId(1), GfpId(0), GfpId(0)]);
    assert_eq!(calls, 2);
    let t = p.gfp_table();
    assert_eq!(t.len(), 2);
    assert_eq!(t.get(GfpId(1)), Some("GFP_HIGHUSER_MOVABLE"));
    assert_eq!(t.lookup("GFP_KERNEL"), Some(GfpId(0)));
    assert_eq!(t.get(GfpId(9)), None);
    let all = GfpCache::resolve_all(t, |s| Ok::<_, ()>(s.to_string())).unwrap();
    assert_eq!(all.get(GfpId(0)).map(String::as_str), Some("GFP_KERNEL"));
    let e = GfpCache::<()>::resolve_all(t, |s| {
        if s == "GFP_HIGHUSER_MOVABLE" {
            Err("bad")
        } else {
            Ok(())
        }
    });
    assert_eq!(
        e.unwrap_err(),
        (GfpId(1), "GFP_HIGHUSER_MOVABLE".to_string(), "bad")
    );
}

// ---- error classes -------------------------------------------------------------------------

#[test]
fn error_bad_hex_pfn() {
    let e = err("  bash-1  [000]  5.5: mm_page_free: pfn=0xzz order=0");
    assert_eq!(e.line_no, 42);
    assert_eq!(e.event, "mm_page_free");
    assert!(
        e.message.contains("`pfn=`") && e.message.contains("hex") && e.message.contains("0xzz"),
        "{e}"
    );
    // 17 hex digits do not fit in a u64.
    let e = err("  bash-1  [000]  5.5: mm_page_free: pfn=0x11111111111111111 order=0");
    assert!(e.message.contains("pfn"), "{e}");
}

#[test]
fn error_bad_decimal() {
    let e = err(
        "  bash-1  [000]  5.5: mm_page_alloc: pfn=0x10 order=x1 migratetype=0 gfp_flags=GFP_KERNEL",
    );
    assert!(
        e.message.contains("`order=`") && e.message.contains("decimal") && e.message.contains("x1"),
        "{e}"
    );
    let e = err("  bash-1  [000]  5.5: mm_page_pcpu_drain: pfn=0x10 order=0 migratetype=-1");
    assert!(e.message.contains("migratetype"), "{e}");
    let e = err("  bash-1  [000]  5.5: mm_page_alloc_zone_locked: pfn=0x10 order=0 migratetype=0 percpu_refill=yes");
    assert!(e.message.contains("percpu_refill"), "{e}");
    let e = err("  bash-1  [000]  5.5: mm_page_free: pfn=0x10 order=99999999999");
    assert!(e.message.contains("order"), "{e}");
}

#[test]
fn error_missing_fields() {
    let e = err("  bash-1  [000]  5.5: mm_page_alloc: pfn=0x10 order=0 migratetype=0");
    assert!(e.message.contains("missing field `gfp_flags=`"), "{e}");
    let e = err("  bash-1  [000]  5.5: mm_page_free: order=0");
    assert!(e.message.contains("missing field `pfn=`"), "{e}");
    let e = err(
        "  bash-1  [000]  5.5: mm_page_alloc_extfrag: pfn=0x188000 alloc_order=0 fallback_order=10",
    );
    assert!(
        e.message.contains("missing field `pageblock_order=`"),
        "{e}"
    );
    let e = err("  bash-1  [000]  5.5: mm_page_free:");
    assert!(e.message.contains("missing field"), "{e}");
    // Truncated line (e.g. the last line of an interrupted capture).
    let e = err("            bash-10868   [000] .....   683.177824: mm_page_free: pfn=0x1da9");
    assert!(e.message.contains("missing field `order=`"), "{e}");
}

#[test]
fn error_broken_context() {
    let e =
        err("            bash-10868   [000] .....   683.17x7824: mm_page_free: pfn=0x1 order=0");
    assert_eq!(e.event, "<context>");
    assert!(e.message.contains("timestamp"), "{e}");
    let e = err("            bash-10868   [000] .....   683.177824 mm_page_free pfn=0x1 order=0");
    assert!(e.message.contains("timestamp"), "{e}");
    let e = err("            bash-10868   [000] .....   683.177824: bad name: pfn=0x1 order=0");
    assert!(e.message.contains("event name"), "{e}");
    let e = err("            bash-10868   [000] .....");
    assert!(e.message.contains("timestamp"), "{e}");
    let s = e.to_string();
    assert!(s.starts_with("line 42: "), "{s}");
}

#[test]
fn non_utf8_bytes_do_not_panic() {
    let mut p = TraceParser::new();
    let mut l =
        b"  b\xffsh-1  [000]  5.5: mm_page_alloc: pfn=0x1 order=0 migratetype=0 gfp_flags=GFP_\xfe"
            .to_vec();
    let e = p.parse_line(&l, 1).unwrap_err();
    assert!(e.message.contains("gfp_flags"), "{e}");
    l.truncate(l.len() - 1);
    l.extend_from_slice(b"KERNEL");
    match p.parse_line(&l, 2).unwrap() {
        Line::Event(r) => assert_eq!(r.comm_lossy(), "b\u{fffd}sh"),
        o => panic!("{o:?}"),
    }
    assert!(p.parse_line(b"\xff\xfe\x00\x01", 3).is_ok());
}

#[test]
fn number_helpers() {
    use super::parse::*;
    assert_eq!(parse_hex_u64(b"ffffffffffffffff"), Some(u64::MAX));
    assert_eq!(parse_hex_u64(b""), None);
    assert_eq!(parse_pfn(b"0x1A"), Some(26));
    assert_eq!(parse_pfn(b"26"), Some(26));
    assert_eq!(parse_pfn(b"0x"), None);
    assert_eq!(parse_dec_u32(b"4294967295"), Some(u32::MAX));
    assert_eq!(parse_dec_u32(b"4294967296"), None);
    assert_eq!(parse_timestamp_ns(b"1.5"), Some(1_500_000_000));
    assert_eq!(parse_timestamp_ns(b"1.0000000019"), Some(1_000_000_001));
    assert_eq!(parse_timestamp_ns(b"123"), Some(123));
    assert_eq!(parse_timestamp_ns(b"1."), None);
    assert_eq!(parse_timestamp_ns(b"99999999999999999999.1"), None);
}

#[test]
fn event_name_helper() {
    assert_eq!(
        parse::event_name_of(ALLOC.as_bytes()),
        Some(&b"mm_page_alloc"[..])
    );
    assert_eq!(parse::event_name_of(b"# header"), None);
}

// ---- property tests: nothing panics ------------------------------------------------------------

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut p = TraceParser::new();
            let _ = p.parse_line(&bytes, 1);
            let _ = parse::event_name_of(&bytes);
        }

        #[test]
        fn token_soup_never_panics(toks in proptest::collection::vec(proptest::sample::select(vec![
            " ", "  ", "-", "-12", "[", "]", "[001]", "(", ")", "(  12)", "(---)", "1", "12.5", ".", ":", ": ",
            "mm_page_alloc", "mm_page_free", "mm_page_alloc_extfrag", "tracing_mark_write", "print",
            "page=", "pfn=", "0x", "ff", "order=", "migratetype=", "gfp_flags=", "GFP_KERNEL", "=",
            "percpu_refill=", "CPU:", "LOST", "EVENTS", "d..1.", "\u{fffd}", "#",
        ]), 0..40)) {
            let line: String = toks.concat();
            let mut p = TraceParser::new();
            let _ = p.parse_line(line.as_bytes(), 1);
            let _ = parse::event_name_of(line.as_bytes());
            let _ = crate::capture::tests_strip_page(line.as_bytes());
        }

        #[test]
        fn mutated_real_lines_never_panic(idx in 0usize..ALLOC.len(), byte in any::<u8>(), cut in 0usize..200) {
            let mut l = ALLOC.as_bytes().to_vec();
            l[idx] = byte;
            l.truncate(cut.min(l.len()));
            let mut p = TraceParser::new();
            let _ = p.parse_line(&l, 1);
        }

        #[test]
        fn roundtrip_generated_lines(pfn in any::<u64>(), order in any::<u32>(), mt in any::<u32>(),
                                    pid in 0u32..10_000_000, cpu in 0u32..1024, secs in 0u64..10_000_000,
                                    usec in 0u64..1_000_000, tgid in proptest::option::of(0u32..10_000_000),
                                    page in any::<bool>()) {
            let tg = tgid.map(|t| format!("({t:>7}) ")).unwrap_or_default();
            let pg = if page { "page=00000000deadbeef " } else { "" };
            let l = format!("{:>16}-{:<7} {tg}[{cpu:03}] d..1. {secs:>5}.{usec:06}: mm_page_alloc_zone_locked: {pg}pfn=0x{pfn:x} order={order} migratetype={mt} percpu_refill=1",
                            "some comm", pid);
            let mut p = TraceParser::new();
            match p.parse_line(l.as_bytes(), 1).unwrap() {
                Line::Event(r) => {
                    prop_assert_eq!(r.event, TraceEvent::ZoneLocked { pfn, order, migratetype: mt, percpu_refill: true });
                    prop_assert_eq!(r.pid, pid);
                    prop_assert_eq!(r.cpu, cpu);
                    prop_assert_eq!(r.tgid, tgid);
                    prop_assert_eq!(r.ts_ns, secs * 1_000_000_000 + usec * 1000);
                    prop_assert_eq!(r.comm, b"some comm");
                }
                o => prop_assert!(false, "{:?}", o),
            }
        }
    }
}

// ---- input ----------------------------------------------------------------------------------

/// A unique scratch directory under the system temp dir, removed on drop.
pub(crate) struct Scratch(pub PathBuf);

impl Scratch {
    pub(crate) fn new(tag: &str) -> Scratch {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "spb-lab-test-{}-{}-{}",
            tag,
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn sample_text(n: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        s.push_str(&format!(
            "            bash-10853   [000] .....   683.{:06}: mm_page_free: pfn=0x{:x} order=0\n",
            i % 1_000_000,
            0x100000 + i
        ));
    }
    s
}

fn read_all(r: &mut TraceReader) -> Result<Vec<Vec<u8>>, InputError> {
    let mut v = vec![];
    while let Some(l) = r.next_line()? {
        v.push(l.to_vec());
    }
    Ok(v)
}

fn zstd_bytes(data: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(data, 3).unwrap()
}

fn gzip_bytes(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn reader_detects_plain_zstd_gzip() {
    let text = sample_text(5000);
    for (bytes, c) in [
        (text.clone().into_bytes(), Compression::None),
        (zstd_bytes(text.as_bytes()), Compression::Zstd),
        (gzip_bytes(text.as_bytes()), Compression::Gzip),
    ] {
        let mut r = TraceReader::from_reader("mem", std::io::Cursor::new(bytes)).unwrap();
        assert_eq!(r.compression(), c);
        let lines = read_all(&mut r).unwrap();
        assert_eq!(lines.len(), 5000);
        assert_eq!(r.line_no(), 5000);
        assert_eq!(r.bytes_read(), text.len() as u64);
        assert_eq!(lines[4999], text.lines().last().unwrap().as_bytes());
    }
}

#[test]
fn reader_concatenated_zstd_frames_and_gzip_members() {
    let a = sample_text(10);
    let b = sample_text(7);
    let mut z = zstd_bytes(a.as_bytes());
    z.extend(zstd_bytes(b.as_bytes()));
    let mut r = TraceReader::from_reader("mem", std::io::Cursor::new(z)).unwrap();
    assert_eq!(read_all(&mut r).unwrap().len(), 17);
    let mut g = gzip_bytes(a.as_bytes());
    g.extend(gzip_bytes(b.as_bytes()));
    let mut r = TraceReader::from_reader("mem", std::io::Cursor::new(g)).unwrap();
    assert_eq!(read_all(&mut r).unwrap().len(), 17);
}

#[test]
fn reader_tiny_and_empty_inputs_and_final_line_without_newline() {
    for (data, n) in [
        (&b""[..], 0),
        (&b"a"[..], 1),
        (&b"ab\ncd"[..], 2),
        (&b"\n\n"[..], 2),
    ] {
        let mut r = TraceReader::from_reader("mem", std::io::Cursor::new(data.to_vec())).unwrap();
        assert_eq!(read_all(&mut r).unwrap().len(), n, "{data:?}");
    }
}

#[test]
fn reader_long_lines_grow_the_buffer_and_too_long_is_an_error() {
    let long = "x".repeat(3 << 20);
    let data = format!("short\n{long}\nend\n");
    let mut r = TraceReader::from_reader("mem", std::io::Cursor::new(data.into_bytes())).unwrap();
    let lines = read_all(&mut r).unwrap();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[1].len(), 3 << 20);

    let data = vec![b'y'; MAX_LINE_BYTES + 10];
    let mut r = TraceReader::from_reader("bin", std::io::Cursor::new(data)).unwrap();
    let e = read_all(&mut r).unwrap_err();
    assert!(matches!(e.kind, InputErrorKind::LineTooLong), "{e}");
    assert!(e.to_string().contains("bin"), "{e}");
}

#[test]
fn truncated_zstd_is_an_error_naming_file_and_line() {
    let d = Scratch::new("trunc-zst");
    let text = sample_text(20_000);
    let z = zstd_bytes(text.as_bytes());
    let p = d.0.join("cut.txt.zst");
    std::fs::write(&p, &z[..z.len() * 2 / 3]).unwrap();
    let mut r = TraceReader::open(&p).unwrap();
    assert_eq!(r.compression(), Compression::Zstd);
    let mut n = 0u64;
    let e = loop {
        match r.next_line() {
            Ok(Some(_)) => n += 1,
            Ok(None) => panic!("truncated zstd must not end silently"),
            Err(e) => break e,
        }
    };
    assert!(n > 0 && n < 20_000);
    assert_eq!(e.lines_read, n);
    let msg = e.to_string();
    assert!(
        msg.contains("cut.txt.zst")
            && msg.contains(&format!("after line {n}"))
            && msg.contains("zstd"),
        "{msg}"
    );
    // Calling again keeps failing rather than pretending the input ended.
    assert!(matches!(
        r.next_line().unwrap_err().kind,
        InputErrorKind::AfterError
    ));
}

#[test]
fn truncated_zstd_at_every_cut_point_never_panics_nor_ends_silently() {
    let text = sample_text(300);
    let z = zstd_bytes(text.as_bytes());
    for cut in (1..z.len()).step_by(7) {
        let r = TraceReader::from_reader("cut", std::io::Cursor::new(z[..cut].to_vec()));
        if let Ok(mut r) = r {
            // A cut inside the 4-byte magic is read as plain text: that is fine.
            if r.compression() == Compression::Zstd {
                assert!(read_all(&mut r).is_err(), "cut at {cut} ended silently");
            }
        }
    }
}

#[test]
fn corrupt_zstd_and_truncated_gzip_are_errors() {
    let text = sample_text(5000);
    let mut z = zstd_bytes(text.as_bytes());
    let mid = z.len() / 2;
    for b in &mut z[mid..mid + 64] {
        *b ^= 0x5a;
    }
    let mut r = TraceReader::from_reader("corrupt.zst", std::io::Cursor::new(z)).unwrap();
    let e = read_all(&mut r).unwrap_err();
    assert!(e.to_string().contains("corrupt.zst"), "{e}");

    let g = gzip_bytes(text.as_bytes());
    let mut r = TraceReader::from_reader("cut.gz", std::io::Cursor::new(g[..g.len() / 2].to_vec()))
        .unwrap();
    assert_eq!(r.compression(), Compression::Gzip);
    let e = read_all(&mut r).unwrap_err();
    assert!(
        e.to_string().contains("cut.gz") && e.to_string().contains("gzip"),
        "{e}"
    );
}

#[test]
fn open_directory_and_missing_paths() {
    let d = Scratch::new("dir");
    let e = TraceReader::open(&d.0).unwrap_err();
    assert!(matches!(e.kind, InputErrorKind::NoTraceInDir), "{e}");
    std::fs::write(d.0.join("trace.txt"), sample_text(3)).unwrap();
    let mut r = TraceReader::open(&d.0).unwrap();
    assert!(r.path().ends_with("trace.txt"));
    assert_eq!(read_all(&mut r).unwrap().len(), 3);
    std::fs::write(
        d.0.join("trace.txt.zst"),
        zstd_bytes(sample_text(4).as_bytes()),
    )
    .unwrap();
    let mut r = TraceReader::open(&d.0).unwrap();
    assert!(r.path().ends_with("trace.txt.zst"));
    assert_eq!(read_all(&mut r).unwrap().len(), 4);
    let e = TraceReader::open(d.0.join("nope")).unwrap_err();
    assert!(
        matches!(e.kind, InputErrorKind::Open(_)) && e.to_string().contains("nope"),
        "{e}"
    );
}

#[test]
fn stream_and_count_events() {
    let d = Scratch::new("count");
    let mut text = String::from("# tracer: nop\n\n");
    text.push_str(ALLOC);
    text.push('\n');
    text.push_str("  bash-1  [000]  911.000000: mm_page_alloc: pfn=0x0 order=0 migratetype=0 gfp_flags=GFP_KERNEL\n");
    text.push_str("  bash-1  [000]  912.000000: tracing_mark_write: BUDDYCAP X\n");
    text.push_str("  bash-1  [000]  913.000000: mm_page_free: pfn=0xq order=0\n");
    text.push_str("CPU:1 [LOST 5 EVENTS]\n");
    text.push_str("  bash-1  [000]  914.000000: mm_compaction_kcompactd_sleep: nid=0\n");
    text.push_str("garbage\n");
    let p = d.0.join("t.txt.gz");
    std::fs::write(&p, gzip_bytes(text.as_bytes())).unwrap();
    let s = count_events(&p).unwrap();
    assert_eq!(s.lines, 9);
    assert_eq!(s.count("mm_page_alloc"), 2);
    assert_eq!(s.count("tracing_mark_write"), 1);
    assert_eq!(s.count("mm_compaction_kcompactd_sleep"), 1);
    assert_eq!(s.failed_allocs, 1);
    assert_eq!(s.parse_errors, 1);
    assert!(s.first_errors[0].contains("line 6"), "{:?}", s.first_errors);
    assert_eq!((s.lost_lines, s.lost_events), (1, 5));
    assert_eq!(s.skipped(SkipReason::Comment), 1);
    assert_eq!(s.skipped(SkipReason::Blank), 1);
    assert_eq!(s.skipped(SkipReason::Unrecognized), 1);
    // 911.953156 then 911.000000: one inversion.
    assert_eq!(s.timestamp_inversions, 1);
    assert_eq!(s.markers, vec![(912_000_000_000, "BUDDYCAP X".to_string())]);
    assert_eq!(s.distinct_gfp, 2);

    let mut st = TraceStream::open(&p).unwrap();
    let mut events = 0;
    let mut errors = 0;
    loop {
        match st.next() {
            Ok(Some(Line::Event(_))) => events += 1,
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(TraceError::Parse { err, .. }) => {
                assert_eq!(err.line_no, 6);
                errors += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!((events, errors), (4, 1));
    assert_eq!(st.parser().gfp_table().len(), 2);
}
