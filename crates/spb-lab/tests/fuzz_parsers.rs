//! Property tests standing in for fuzz targets (issue 8): the trace parser and the scenario
//! TOML loader never panic, on random bytes and on mutations of real inputs, and their errors
//! name a place.

use proptest::prelude::*;
use spb_lab::trace::TraceParser;
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
        let _ = Scenario::from_toml(&text, "fuzz.toml");
    }

    #[test]
    fn scenario_loader_names_the_file(extra in "[a-z_]{1,12} = [0-9]{1,4}") {
        let text = format!("{}\n{}\n", SCENARIO, extra);
        if let Err(e) = Scenario::from_toml(&text, "fuzz.toml") {
            prop_assert!(e.to_string().contains("fuzz.toml"), "{}", e);
        }
    }
}
