//! Property tests standing in for fuzz targets (issue 8): the trace parser and the scenario
//! TOML loader never panic, on random bytes and on mutations of real inputs, and their errors
//! name a place.

use proptest::prelude::*;
use spb_lab::replay::decode::{decode, DecodeSettings};
use spb_lab::replay::ReplayError;
use spb_lab::trace::{TraceParser, TraceReader};
use spb_lab::Scenario;

const REAL_LINES: &[&str] = &[
    "           <...>-2397    [001] .....  1523.904112: mm_page_alloc: pfn=0x12a400 order=0 migratetype=1 gfp_flags=GFP_HIGHUSER_MOVABLE|__GFP_ZERO",
    "         python3-14548   [001] d..1.   911.953156: mm_page_free: pfn=0x450000 order=10",
    "     opt cgu.0-11347     [000] .....   692.382312: mm_page_alloc: pfn=0x1297ac order=0 migratetype=1 gfp_flags=GFP_HIGHUSER_MOVABLE|__GFP_ZERO|__GFP_COMP",
    "          kswapd-80      [000] ..... 12.000001: mm_page_alloc_extfrag: page=0000000012345678 pfn=0x1000 alloc_order=0 fallback_order=9 pageblock_order=9 alloc_migratetype=0 fallback_migratetype=1 fragmenting=0 change_ownership=1",
    "  bash-1 [000] ..... 1.000000: mm_page_pcpu_drain: pfn=0x10 order=0 migratetype=1",
];

const SCENARIO: &str = r#"
name = "fuzzed"
[machine]
memory = "4G"
"#;

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn trace_parser_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let mut p = TraceParser::new();
        let _ = p.parse_line(&bytes, 1);
    }

    #[test]
    fn trace_parser_never_panics_on_mutated_lines(k in 0usize..REAL_LINES.len(), pos in any::<usize>(), b in any::<u8>(), cut in any::<usize>()) {
        let mut line = REAL_LINES[k].as_bytes().to_vec();
        let i = pos % line.len();
        line[i] = b;
        line.truncate(cut % (line.len() + 1));
        let mut p = TraceParser::new();
        if let Err(e) = p.parse_line(&line, 7) {
            prop_assert_eq!(e.line_no, 7);
        }
    }

    #[test]
    fn scenario_loader_never_panics(text in ".{0,400}") {
        if let Err(e) = Scenario::from_toml(&text, "fuzz.toml") {
            if let Some(l) = e.line {
                prop_assert!(l >= 1 && l <= text.lines().count().max(1) + 1, "{}", e);
            }
        }
    }

    #[test]
    fn scenario_loader_names_the_file(extra in "[a-z_]{1,12} = [0-9]{1,4}") {
        let text = format!("{}\n{}\n", SCENARIO, extra);
        if let Err(e) = Scenario::from_toml(&text, "fuzz.toml") {
            prop_assert!(e.to_string().contains("fuzz.toml"), "{}", e);
        }
    }
}

/// One generated trace line: alloc or free (or a line of REAL_LINES), any pfn and order.
fn kmem_line(i: usize, kind: u8, pfn: u64, order: u32) -> String {
    let ctx = format!(
        "            bash-1000    [00{}] .....   {}.{:06}: ",
        i % 3,
        100 + i / 1000,
        i % 1000
    );
    match kind % 4 {
        0 => format!(
            "{ctx}mm_page_alloc: pfn={pfn:#x} order={order} migratetype={} gfp_flags=GFP_KERNEL",
            order % 4
        ),
        1 | 2 => format!("{ctx}mm_page_free: pfn={pfn:#x} order={order}"),
        _ => REAL_LINES[i % REAL_LINES.len()].to_string(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// The replay's decode pass (what `fuzz/fuzz_targets/trace_parse.rs` fuzzes) on traces of
    /// allocs and frees with any pfn (also past 2^64 - 2^order) and order (also above the
    /// maximum): no panic, strict or not; errors and warnings name the file and line.
    #[test]
    fn replay_decode_never_panics_and_names_file_and_line(
        lines in prop::collection::vec((any::<u8>(), prop_oneof![0u64..0x4000, any::<u64>()], 0u32..24), 1..60),
        strict in any::<bool>(),
    ) {
        let text: String = lines.iter().enumerate().map(|(i, (k, p, o))| kmem_line(i, *k, *p, *o) + "\n").collect();
        let r = TraceReader::from_reader("t.trace", std::io::Cursor::new(text.into_bytes())).unwrap();
        let settings = DecodeSettings {
            layout: None,
            prefill: &[],
            pageblock_types: &[],
            snapshot_ns: None,
            strict,
            max_order: 10,
            max_inferred_pfn: 1 << 16,
            stop_marker: None,
        };
        match decode(r, settings) {
            Ok(d) => {
                for (reason, first) in &d.first_bad {
                    prop_assert!(first.starts_with("t.trace:"), "{}", first);
                    prop_assert!(d.stats.skipped.get(reason).copied().unwrap_or(0) > 0);
                }
                for op in &d.log.ops {
                    prop_assert!((op.pfn as u64) < 1 << 16);
                }
            }
            Err(ReplayError::Input(m)) => {
                prop_assert!(strict, "only --strict fails on these lines: {}", m);
                let loc = m.split(": ").next().unwrap_or("");
                prop_assert!(loc.starts_with("t.trace:") && loc["t.trace:".len()..].parse::<u64>().is_ok(), "{}", m);
            }
            Err(e) => prop_assert!(false, "{}", e),
        }
    }
}

/// Read a `.dat` image to the end (at most 100 000 items): errors name the file, never a panic.
fn read_dat_image(bytes: &[u8], tag: &str) -> Result<(), TestCaseError> {
    let dir = std::env::temp_dir().join(format!("spb-dat-prop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(format!("{tag}.dat"));
    std::fs::write(&p, bytes).unwrap();
    match spb_lab::trace::dat::DatReader::open(&p) {
        Err(e) => prop_assert!(e.to_string().contains(&format!("{tag}.dat")), "{}", e),
        Ok(mut r) => {
            for _ in 0..100_000 {
                match r.next() {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(e) => {
                        prop_assert!(e.to_string().contains(&format!("{tag}.dat")), "{}", e);
                        if !e.record_only {
                            break;
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

const SMALL_DAT: &[u8] = include_bytes!("data/dat/small_v7.dat");

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// Stand-in for the `dat_read` fuzz target: mutated and truncated trace-cmd files.
    #[test]
    fn dat_reader_never_panics_on_mutated_files(edits in prop::collection::vec((any::<usize>(), any::<u8>()), 1..8), cut in any::<usize>()) {
        let mut b = SMALL_DAT.to_vec();
        for (pos, v) in edits {
            let i = pos % b.len();
            b[i] = v;
        }
        let keep = if cut % 4 == 0 { cut % (b.len() + 1) } else { b.len() };
        b.truncate(keep);
        read_dat_image(&b, "mutated")?;
    }

    #[test]
    fn dat_reader_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let mut b = spb_lab::trace::dat::MAGIC.to_vec();
        b.extend_from_slice(&bytes);
        read_dat_image(&b, "random")?;
    }
}
