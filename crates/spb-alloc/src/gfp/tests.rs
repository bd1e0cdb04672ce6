//! Tests of the gfp module: bit values, the trace syntax against real captures, the alloc-flag
//! derivation.

use super::*;
use crate::policy::spb_gfp::{has_cheap_fallback, is_best_effort_high_order, CheapFallbackRule};
use alloc::format;
use alloc::string::ToString;
use alloc::vec::Vec;
use proptest::prelude::*;

/// Every distinct `gfp_flags=` value in the build, pagecache and anon-thp captures.
const TRACE_STRINGS: &str = include_str!("../../tests/data/gfp_strings.txt");

fn trace_strings() -> impl Iterator<Item = &'static str> {
    TRACE_STRINGS
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

fn p(s: &str) -> Gfp {
    parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn err(s: &str) -> GfpParseError {
    parse(s).expect_err(s)
}

// ---- constants --------------------------------------------------------------------------

#[test]
fn composite_values_match_baseline_table() {
    // linux-baseline.md §7.8.
    let table: [(Gfp, u32); 11] = [
        (Gfp::KERNEL, 0xcc0),
        (Gfp::KERNEL_ACCOUNT, 0x400cc0),
        (Gfp::NOFS, 0xc40),
        (Gfp::NOIO, 0xc00),
        (Gfp::ATOMIC, 0x820),
        (Gfp::NOWAIT, 0x2800),
        (Gfp::USER, 0x100cc0),
        (Gfp::HIGHUSER, 0x100cc2),
        (Gfp::HIGHUSER_MOVABLE, 0x100cca),
        (Gfp::TRANSHUGE_LIGHT, 0x1c20ca),
        (Gfp::TRANSHUGE, 0x1c24ca),
    ];
    for (g, v) in table {
        assert_eq!(g.0, v, "{g:?}");
    }
}

#[test]
fn composites_are_built_from_their_parts() {
    assert_eq!(Gfp::RECLAIM, Gfp::DIRECT_RECLAIM | Gfp::KSWAPD_RECLAIM);
    assert_eq!(Gfp::KERNEL, Gfp::RECLAIM | Gfp::IO | Gfp::FS);
    assert_eq!(Gfp::KERNEL_ACCOUNT, Gfp::KERNEL | Gfp::ACCOUNT);
    assert_eq!(Gfp::ATOMIC, Gfp::HIGH | Gfp::KSWAPD_RECLAIM);
    assert_eq!(Gfp::NOWAIT, Gfp::KSWAPD_RECLAIM | Gfp::NOWARN);
    assert_eq!(Gfp::NOIO, Gfp::RECLAIM);
    assert_eq!(Gfp::NOFS, Gfp::RECLAIM | Gfp::IO);
    assert_eq!(Gfp::USER, Gfp::KERNEL | Gfp::HARDWALL);
    assert_eq!(Gfp::HIGHUSER, Gfp::USER | Gfp::HIGHMEM);
    assert_eq!(
        Gfp::HIGHUSER_MOVABLE,
        Gfp::HIGHUSER | Gfp::MOVABLE | Gfp::SKIP_KASAN
    );
    assert_eq!(
        Gfp::TRANSHUGE_LIGHT,
        (Gfp::HIGHUSER_MOVABLE | Gfp::COMP | Gfp::NOMEMALLOC | Gfp::NOWARN).without(Gfp::RECLAIM)
    );
    assert_eq!(Gfp::TRANSHUGE, Gfp::TRANSHUGE_LIGHT | Gfp::DIRECT_RECLAIM);
    assert_eq!(Gfp::GFP_DMA, Gfp::DMA);
    assert_eq!(Gfp::GFP_DMA32, Gfp::DMA32);
    assert_eq!(Gfp::ZONEMASK, Gfp(0xf));
    assert_eq!(Gfp::MOVABLE_MASK, Gfp::MOVABLE | Gfp::RECLAIMABLE);
}

#[test]
fn single_bits_are_distinct_powers_of_two_in_bit_order() {
    // The single-bit part of the 6.15+ table is in bit order: bits 0..=8, 10..=24.
    let singles: Vec<Gfp> = MODERN_TABLE
        .iter()
        .filter(|(g, _)| g.0.count_ones() == 1)
        .map(|e| e.0)
        .collect();
    // GFP_DMA / GFP_DMA32 composites come first and are single bits too.
    assert_eq!(&singles[..2], &[Gfp::GFP_DMA, Gfp::GFP_DMA32]);
    let bits: Vec<u32> = singles[2..].iter().map(|g| g.0.trailing_zeros()).collect();
    let want: Vec<u32> = (0..=24).filter(|&b| b != 9).collect();
    assert_eq!(bits, want);
    let all = singles[2..].iter().fold(0, |a, g| a | g.0);
    assert_eq!(all, Gfp::BITS_MASK.0 & !0x200);
    assert_eq!(Gfp::NO_OBJ_EXT.0, 1 << 24);
    assert_eq!(Gfp::ZEROTAGS.0, 1 << 23);
}

#[test]
fn configured_out_flags_are_zero_like_the_kernel() {
    for g in [Gfp::SKIP_ZERO, Gfp::SKIP_KASAN, Gfp::NOLOCKDEP] {
        assert!(g.is_empty());
        assert!(!Gfp::KERNEL.intersects(g));
    }
    assert_eq!(
        err("GFP_KERNEL|__GFP_NOLOCKDEP").kind,
        GfpParseErrorKind::NotInConfig
    );
    assert_eq!(err("__GFP_SKIP_ZERO").kind, GfpParseErrorKind::NotInConfig);
    assert_eq!(err("__GFP_SKIP_KASAN").token, "__GFP_SKIP_KASAN");
}

#[test]
fn contract_helpers() {
    let g = Gfp::KERNEL;
    assert!(g.contains(Gfp::IO | Gfp::FS));
    assert!(!g.contains(Gfp::IO | Gfp::HIGH));
    assert!(g.intersects(Gfp::IO | Gfp::HIGH));
    assert!(!g.intersects(Gfp::HIGH));
    assert_eq!(g.with(Gfp::COMP), Gfp(0x40cc0));
    assert_eq!(g.without(Gfp::FS), Gfp::NOFS);
    assert_eq!(g | Gfp::ACCOUNT, Gfp::KERNEL_ACCOUNT);
    let mut h = Gfp::NONE;
    h |= Gfp::ATOMIC;
    assert_eq!(h & Gfp::HIGH, Gfp::HIGH);
    assert_eq!(h.bits(), 0x820);
    assert_eq!(format!("{:x}", Gfp::KERNEL), "cc0");
}

#[test]
fn migratetype_from_mobility_bits() {
    assert_eq!(Gfp::KERNEL.migratetype(), MigrateType::Unmovable);
    assert_eq!(Gfp::HIGHUSER_MOVABLE.migratetype(), MigrateType::Movable);
    assert_eq!(
        (Gfp::KERNEL | Gfp::RECLAIMABLE).migratetype(),
        MigrateType::Reclaimable
    );
    assert_eq!(Gfp::TRANSHUGE.migratetype(), MigrateType::Movable);
    assert_eq!(Gfp::NONE.migratetype(), MigrateType::Unmovable);
}

#[test]
fn highest_zone_like_gfp_zone() {
    assert_eq!(Gfp::KERNEL.highest_zone(), ZoneKind::Normal);
    assert_eq!(Gfp::HIGHUSER.highest_zone(), ZoneKind::Normal);
    assert_eq!(Gfp::HIGHUSER_MOVABLE.highest_zone(), ZoneKind::Movable);
    assert_eq!(
        (Gfp::KERNEL | Gfp::MOVABLE).highest_zone(),
        ZoneKind::Normal
    );
    assert_eq!((Gfp::KERNEL | Gfp::GFP_DMA).highest_zone(), ZoneKind::Dma);
    assert_eq!(
        (Gfp::KERNEL | Gfp::GFP_DMA32).highest_zone(),
        ZoneKind::Dma32
    );
    assert_eq!((Gfp::DMA32 | Gfp::MOVABLE).highest_zone(), ZoneKind::Dma32);
}

// ---- printing ---------------------------------------------------------------------------

fn modern(g: Gfp) -> String {
    g.fmt_trace(FlagOrder::Modern).to_string()
}
fn legacy(g: Gfp) -> String {
    g.fmt_trace(FlagOrder::Legacy).to_string()
}

#[test]
fn prints_like_6_18_traces() {
    let cases: [(Gfp, &str); 9] = [
        (Gfp::NONE, "none"),
        (
            Gfp::HIGHUSER_MOVABLE | Gfp::ZERO | Gfp::COMP,
            "GFP_HIGHUSER_MOVABLE|__GFP_ZERO|__GFP_COMP",
        ),
        // Bit order: ZERO (0x100) before COMP (0x40000).
        (
            Gfp::KERNEL | Gfp::COMP | Gfp::ZERO,
            "GFP_KERNEL|__GFP_ZERO|__GFP_COMP",
        ),
        // Slab's opportunistic high-order try for a GFP_KERNEL cache: no reclaim bits.
        (
            (Gfp::KERNEL | Gfp::NOWARN | Gfp::NORETRY | Gfp::COMP | Gfp::NOMEMALLOC)
                .without(Gfp::RECLAIM),
            "__GFP_IO|__GFP_FS|__GFP_NOWARN|__GFP_NORETRY|__GFP_COMP|__GFP_NOMEMALLOC",
        ),
        (
            Gfp::NOWAIT | Gfp::COMP | Gfp::NOMEMALLOC,
            "GFP_NOWAIT|__GFP_COMP|__GFP_NOMEMALLOC",
        ),
        (Gfp::TRANSHUGE, "GFP_TRANSHUGE"),
        (
            Gfp::NOFS | Gfp::NOFAIL | Gfp::ACCOUNT,
            "GFP_NOFS|__GFP_NOFAIL|__GFP_ACCOUNT",
        ),
        // GFP_HIGHUSER comes before GFP_KERNEL_ACCOUNT in the table.
        (
            Gfp::KERNEL_ACCOUNT | Gfp::HIGHMEM | Gfp::HARDWALL,
            "GFP_HIGHUSER|__GFP_ACCOUNT",
        ),
        // GFP_ATOMIC eats KSWAPD_RECLAIM first, so GFP_NOWAIT cannot match any more.
        (Gfp::ATOMIC | Gfp::NOWARN, "GFP_ATOMIC|__GFP_NOWARN"),
    ];
    for (g, s) in cases {
        assert_eq!(modern(g), s);
        assert_eq!(g.to_string(), s);
    }
}

#[test]
fn prints_leftovers_and_special_names() {
    assert_eq!(modern(Gfp(0x200)), "0x200");
    assert_eq!(modern(Gfp::KERNEL | Gfp(0x200)), "GFP_KERNEL|0x200");
    assert_eq!(modern(Gfp(0x8000_0200)), "0x80000200");
    assert_eq!(
        modern(Gfp::NO_OBJ_EXT | Gfp::IO),
        "__GFP_IO|__GFP_NO_OBJ_EXT"
    );
    assert_eq!(legacy(Gfp::NO_OBJ_EXT | Gfp::IO), "__GFP_IO|0x1000000");
    assert_eq!(modern(Gfp::DMA), "GFP_DMA");
    assert_eq!(modern(Gfp::DMA32 | Gfp::KERNEL), "GFP_KERNEL|GFP_DMA32");
    // __GFP_RECLAIM never prints: GFP_NOIO has the same mask and comes first.
    assert_eq!(modern(Gfp::RECLAIM), "GFP_NOIO");
    assert_eq!(modern(Gfp::DIRECT_RECLAIM), "__GFP_DIRECT_RECLAIM");
    assert_eq!(modern(Gfp::KSWAPD_RECLAIM), "__GFP_KSWAPD_RECLAIM");
    // GFP_TRANSHUGE leaves HIGH and KSWAPD_RECLAIM, so GFP_ATOMIC still matches.
    assert_eq!(
        modern(Gfp(u32::MAX)),
        "GFP_TRANSHUGE|GFP_ATOMIC|GFP_DMA|GFP_DMA32|__GFP_RECLAIMABLE|__GFP_ZERO|__GFP_WRITE|\
         __GFP_RETRY_MAYFAIL|__GFP_NOFAIL|__GFP_NORETRY|__GFP_MEMALLOC|__GFP_THISNODE|\
         __GFP_ACCOUNT|__GFP_ZEROTAGS|__GFP_NO_OBJ_EXT|0xfe000200"
    );
}

#[test]
fn legacy_order_differs_only_in_single_bit_order() {
    let g = Gfp::KERNEL | Gfp::COMP | Gfp::ZERO;
    assert_eq!(legacy(g), "GFP_KERNEL|__GFP_COMP|__GFP_ZERO");
    assert_eq!(modern(g), "GFP_KERNEL|__GFP_ZERO|__GFP_COMP");
    assert_eq!(
        legacy(
            Gfp::NOFS
                | Gfp::HIGHMEM
                | Gfp::MOVABLE
                | Gfp::NOWARN
                | Gfp::NORETRY
                | Gfp::COMP
                | Gfp::HARDWALL
        ),
        "GFP_NOFS|__GFP_HIGHMEM|__GFP_NOWARN|__GFP_NORETRY|__GFP_COMP|__GFP_HARDWALL|__GFP_MOVABLE"
    );
    assert_eq!(
        legacy(Gfp::DIRECT_RECLAIM | Gfp::WRITE),
        "__GFP_WRITE|__GFP_DIRECT_RECLAIM"
    );
    assert_eq!(legacy(Gfp::NONE), "none");
    assert_eq!(
        legacy(Gfp::TRANSHUGE | Gfp::NORETRY | Gfp::THISNODE),
        "GFP_TRANSHUGE|__GFP_NORETRY|__GFP_THISNODE"
    );
    // Same composite prefix under both orders for every trace string.
    for s in trace_strings() {
        let g = p(s);
        let m = modern(g);
        let l = legacy(g);
        fn composite(t: &str) -> Vec<&str> {
            t.split('|').filter(|x| x.starts_with("GFP_")).collect()
        }
        assert_eq!(composite(&m), composite(&l), "{s}");
        let mut ms: Vec<&str> = m.split('|').collect();
        let mut ls: Vec<&str> = l.split('|').collect();
        ms.sort_unstable();
        ls.sort_unstable();
        assert_eq!(ms, ls, "{s}");
    }
}

#[test]
fn tables_have_names_that_parse_to_their_masks() {
    for order in [FlagOrder::Modern, FlagOrder::Legacy] {
        for &(mask, name) in order.table() {
            assert!(!mask.is_empty(), "{name}");
            assert_eq!(p(name), mask, "{name}");
        }
    }
    assert_eq!(FlagOrder::Modern.table().len(), 38);
    assert_eq!(FlagOrder::Legacy.table().len(), 35);
    assert_eq!(FlagOrder::default(), FlagOrder::Modern);
}

#[test]
fn write_trace_into_a_buffer() {
    let mut s = String::new();
    (Gfp::ATOMIC | Gfp::COMP)
        .write_trace(FlagOrder::Modern, &mut s)
        .unwrap();
    assert_eq!(s, "GFP_ATOMIC|__GFP_COMP");
    assert_eq!(format!("{:?}", Gfp::KERNEL), "Gfp(0xcc0 GFP_KERNEL)");
}

// ---- parsing ----------------------------------------------------------------------------

#[test]
fn parses_names_hex_and_none() {
    assert_eq!(p("none"), Gfp::NONE);
    assert_eq!(p("GFP_KERNEL"), Gfp::KERNEL);
    assert_eq!(p("__GFP_COMP|GFP_KERNEL"), Gfp::KERNEL | Gfp::COMP);
    assert_eq!(p("GFP_KERNEL|GFP_KERNEL"), Gfp::KERNEL);
    assert_eq!(p("__GFP_DMA"), Gfp::DMA);
    assert_eq!(p("GFP_DMA32"), Gfp::DMA32);
    assert_eq!(p("__GFP_RECLAIM"), Gfp::RECLAIM);
    assert_eq!(p("0x200"), Gfp(0x200));
    assert_eq!(p("0X1A"), Gfp(0x1a));
    assert_eq!(p("0xffffffff"), Gfp(u32::MAX));
    assert_eq!(p("0x00000000ffffffff"), Gfp(u32::MAX));
    assert_eq!(p("GFP_KERNEL|0x200|0x1"), Gfp::KERNEL | Gfp(0x201));
    assert_eq!("GFP_NOWAIT".parse::<Gfp>(), Ok(Gfp::NOWAIT));
}

#[test]
fn parse_errors_name_the_token_and_its_position() {
    let e = err("GFP_KERNEL|__GFP_BOGUS|__GFP_COMP");
    assert_eq!(e.kind, GfpParseErrorKind::UnknownName);
    assert_eq!(e.token, "__GFP_BOGUS");
    assert_eq!(e.position, 11);
    assert_eq!(e.to_string(), "unknown gfp flag `__GFP_BOGUS` at byte 11");

    let cases: [(&str, GfpParseErrorKind, usize, &str); 14] = [
        ("", GfpParseErrorKind::Empty, 0, ""),
        ("|", GfpParseErrorKind::Empty, 0, ""),
        ("GFP_KERNEL|", GfpParseErrorKind::Empty, 11, ""),
        ("GFP_KERNEL||__GFP_COMP", GfpParseErrorKind::Empty, 11, ""),
        ("GFP_FOO", GfpParseErrorKind::UnknownName, 0, "GFP_FOO"),
        (
            "gfp_kernel",
            GfpParseErrorKind::UnknownName,
            0,
            "gfp_kernel",
        ),
        (
            " GFP_KERNEL",
            GfpParseErrorKind::UnknownName,
            0,
            " GFP_KERNEL",
        ),
        (
            "GFP_KERNEL ",
            GfpParseErrorKind::UnknownName,
            0,
            "GFP_KERNEL ",
        ),
        (
            "__GFP_ATOMIC",
            GfpParseErrorKind::UnknownName,
            0,
            "__GFP_ATOMIC",
        ),
        ("0x", GfpParseErrorKind::BadHex, 0, "0x"),
        ("__GFP_IO|0xg", GfpParseErrorKind::BadHex, 9, "0xg"),
        ("0x100000000", GfpParseErrorKind::BadHex, 0, "0x100000000"),
        (
            "none|GFP_KERNEL",
            GfpParseErrorKind::MisplacedNone,
            0,
            "none",
        ),
        (
            "GFP_KERNEL|none",
            GfpParseErrorKind::MisplacedNone,
            11,
            "none",
        ),
    ];
    for (s, kind, pos, tok) in cases {
        let e = err(s);
        assert_eq!(
            (e.kind, e.position, e.token.as_str()),
            (kind, pos, tok),
            "{s:?}"
        );
    }
    // Positions are byte offsets, also after multi-byte characters.
    let e = err("é|GFP_KERNEL|x");
    assert_eq!((e.position, e.token.as_str()), (0, "é"));
    let e = err("GFP_KERNEL|é");
    assert_eq!((e.position, e.token.as_str()), (11, "é"));
}

#[test]
fn every_trace_string_parses_and_reprints_identically() {
    let mut n = 0;
    for s in trace_strings() {
        let g = p(s);
        assert_eq!(modern(g), s, "{s}");
        assert!(g.0 & !Gfp::BITS_MASK.0 == 0, "{s}");
        n += 1;
    }
    assert_eq!(n, 30, "distinct strings in the three captures");
}

#[test]
fn trace_strings_have_the_expected_request_shapes() {
    // The slab opportunistic high-order attempt of a GFP_KERNEL cache.
    let slab_try = p("__GFP_IO|__GFP_FS|__GFP_NOWARN|__GFP_NORETRY|__GFP_COMP|__GFP_NOMEMALLOC");
    assert!(!can_direct_reclaim(slab_try));
    assert!(has_cheap_fallback(slab_try, CheapFallbackRule::Intent));
    assert!(is_best_effort_high_order(slab_try, 3));
    assert_eq!(
        gfp_to_alloc_flags(slab_try, 3, false),
        AllocFlags::CPUSET // no KSWAPD, no NON_BLOCK (NOMEMALLOC), unmovable
    );
    // THP fault in an madvised VMA, defrag=madvise.
    let thp = p("GFP_TRANSHUGE|__GFP_NORETRY|__GFP_THISNODE");
    assert_eq!(thp.migratetype(), MigrateType::Movable);
    assert!(can_direct_reclaim(thp));
    assert!(has_cheap_fallback(thp, CheapFallbackRule::Intent));
    assert!(!is_best_effort_high_order(thp, 9));
    // Page-cache writes.
    let pc = p("GFP_HIGHUSER_MOVABLE|__GFP_WRITE|__GFP_COMP");
    assert!(!has_cheap_fallback(pc, CheapFallbackRule::Literal));
    // NOFAIL metadata.
    let nofail = p("GFP_NOFS|__GFP_NOFAIL|__GFP_COMP|__GFP_HARDWALL");
    assert!(!has_cheap_fallback(nofail, CheapFallbackRule::Literal));
}

// ---- alloc flags ------------------------------------------------------------------------

#[test]
fn slow_path_alloc_flags() {
    use AllocFlags as A;
    // GFP_KERNEL: min watermark, cpuset, kswapd.
    assert_eq!(
        gfp_to_alloc_flags(Gfp::KERNEL, 0, false),
        A::CPUSET | A::KSWAPD
    );
    assert_eq!(gfp_to_alloc_flags(Gfp::KERNEL, 0, false).wmark(), 0);
    // Movable adds CMA; defrag_mode adds NOFRAGMENT.
    assert_eq!(
        gfp_to_alloc_flags(Gfp::HIGHUSER_MOVABLE, 0, true),
        A::CPUSET | A::KSWAPD | A::CMA | A::NOFRAGMENT
    );
    // GFP_ATOMIC: MIN_RESERVE + NON_BLOCK, cpuset dropped; HIGHATOMIC only for order > 0.
    assert_eq!(
        gfp_to_alloc_flags(Gfp::ATOMIC, 0, false),
        A::MIN_RESERVE | A::KSWAPD | A::NON_BLOCK
    );
    assert_eq!(
        gfp_to_alloc_flags(Gfp::ATOMIC, 1, false),
        A::MIN_RESERVE | A::KSWAPD | A::NON_BLOCK | A::HIGHATOMIC
    );
    // GFP_NOWAIT: NON_BLOCK but no HIGHATOMIC even at order > 0 (6.17 fix), keeps cpuset.
    assert_eq!(
        gfp_to_alloc_flags(Gfp::NOWAIT, 3, false),
        A::CPUSET | A::KSWAPD | A::NON_BLOCK
    );
    // NOMEMALLOC: neither NON_BLOCK nor HIGHATOMIC, but a __GFP_HIGH caller still drops cpuset.
    let g = Gfp::ATOMIC | Gfp::NOWARN | Gfp::NORETRY | Gfp::COMP | Gfp::NOMEMALLOC;
    assert_eq!(gfp_to_alloc_flags(g, 2, false), A::MIN_RESERVE | A::KSWAPD);
    // A blocking __GFP_HIGH caller keeps cpuset and gets no NON_BLOCK.
    assert_eq!(
        gfp_to_alloc_flags(Gfp::KERNEL | Gfp::HIGH, 2, false),
        A::CPUSET | A::KSWAPD | A::MIN_RESERVE
    );
    // THP without kswapd.
    assert_eq!(
        gfp_to_alloc_flags(Gfp::TRANSHUGE_LIGHT, 9, false),
        A::CPUSET | A::CMA
    );
    // Boot-time __GFP_COMP only (reclaim bits masked): non-blocking, no kswapd.
    assert_eq!(
        gfp_to_alloc_flags(Gfp::COMP, 1, false),
        A::CPUSET | A::NON_BLOCK
    );
    // Never the spb-only flags.
    for s in trace_strings() {
        let f = gfp_to_alloc_flags(p(s), 9, true);
        assert!(
            !f.intersects(A::HIGHORDER_OPTIONAL | A::NOFRAG_TAINTED_OK),
            "{s}"
        );
        assert_eq!(f.wmark(), 0);
    }
}

#[test]
fn fast_path_alloc_flags_low_watermark() {
    use AllocFlags as A;
    assert_eq!(fast_path_alloc_flags(Gfp::KERNEL), A::WMARK_LOW | A::KSWAPD);
    assert_eq!(fast_path_alloc_flags(Gfp::KERNEL).wmark(), 1);
    assert_eq!(
        fast_path_alloc_flags(Gfp::HIGHUSER_MOVABLE),
        A::WMARK_LOW | A::KSWAPD | A::CMA
    );
    assert_eq!(fast_path_alloc_flags(Gfp::TRANSHUGE), A::WMARK_LOW | A::CMA);
    assert_eq!(fast_path_alloc_flags(Gfp::ATOMIC), A::WMARK_LOW | A::KSWAPD);
    assert!(
        !fast_path_alloc_flags(Gfp(u32::MAX)).intersects(A::NOFRAGMENT | A::CPUSET | A::RESERVES)
    );
}

#[test]
fn pfmemalloc_override() {
    assert_eq!(pfmemalloc_flags(Gfp::KERNEL), None);
    assert_eq!(
        pfmemalloc_flags(Gfp::KERNEL | Gfp::MEMALLOC),
        Some(AllocFlags::NO_WATERMARKS)
    );
    assert_eq!(
        pfmemalloc_flags(Gfp::ATOMIC | Gfp::MEMALLOC | Gfp::NOMEMALLOC),
        None
    );
    assert_eq!(pfmemalloc_flags(Gfp::TRANSHUGE), None);
}

#[test]
fn alloc_flags_helpers_and_display() {
    use AllocFlags as A;
    let f = A::WMARK_HIGH | A::CMA;
    assert_eq!(f.wmark(), 2);
    assert!(f.contains(A::CMA));
    assert!(!f.intersects(A::RESERVES));
    assert_eq!(f.with(A::OOM).without(A::CMA), A(0x2 | 0x8));
    assert_eq!(
        A::RESERVES,
        A::NON_BLOCK | A::MIN_RESERVE | A::HIGHATOMIC | A::OOM
    );
    assert_eq!(A::WMARK_LOW.to_string(), "WMARK_LOW");
    assert_eq!(
        (A::CPUSET | A::KSWAPD).to_string(),
        "WMARK_MIN|CPUSET|KSWAPD"
    );
    assert_eq!(
        A(0x1_0000 | 0x2000 | 1).to_string(),
        "WMARK_LOW|HIGHORDER_OPTIONAL|0x10000"
    );
    assert_eq!(
        format!("{:?}", A::WMARK_LOW | A::CMA),
        "AllocFlags(0x81 WMARK_LOW|CMA)"
    );
    // __GFP_HIGH / __GFP_KSWAPD_RECLAIM share values with their ALLOC_ twins.
    assert_eq!(Gfp::HIGH.0, A::MIN_RESERVE.0);
    assert_eq!(Gfp::KSWAPD_RECLAIM.0, A::KSWAPD.0);
}

#[test]
fn costly_and_reclaim_helpers() {
    assert!(!is_costly(0));
    assert!(!is_costly(3));
    assert!(is_costly(4));
    assert!(is_costly(9));
    assert!(can_direct_reclaim(Gfp::KERNEL));
    assert!(can_direct_reclaim(Gfp::TRANSHUGE));
    assert!(!can_direct_reclaim(Gfp::ATOMIC));
    assert!(!can_direct_reclaim(Gfp::TRANSHUGE_LIGHT));
}

// ---- properties -------------------------------------------------------------------------

/// Masks biased towards realistic shapes: a composite (or nothing) plus a few bits, and
/// sometimes arbitrary high garbage.
fn any_gfp() -> impl Strategy<Value = Gfp> {
    let composite = prop::sample::select(
        MODERN_TABLE[..14]
            .iter()
            .map(|e| e.0)
            .chain([Gfp::NONE])
            .collect::<Vec<_>>(),
    );
    prop_oneof![
        any::<u32>().prop_map(Gfp),
        (any::<u32>()).prop_map(|b| Gfp(b & Gfp::BITS_MASK.0)),
        (composite, any::<u32>(), 0u32..4).prop_map(|(c, b, k)| {
            // Keep k in 0..4 random bits of the low 25.
            let mut extra = 0;
            let mut b = b;
            for _ in 0..k {
                extra |= 1 << (b % 25);
                b /= 25;
            }
            c | Gfp(extra)
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn round_trip_modern(g in any_gfp()) {
        let s = modern(g);
        prop_assert_eq!(parse(&s), Ok(g), "{}", s);
    }

    #[test]
    fn round_trip_legacy(g in any_gfp()) {
        let s = legacy(g);
        prop_assert_eq!(parse(&s), Ok(g), "{}", s);
    }

    #[test]
    fn printing_is_canonical(g in any_gfp()) {
        // Re-printing a parsed string gives the same string; the leftover is only bits
        // no table entry covers.
        let s = modern(g);
        prop_assert_eq!(modern(p(&s)), s.clone());
        if let Some(hex) = s.rsplit('|').next().and_then(|t| t.strip_prefix("0x")) {
            let rest = u32::from_str_radix(hex, 16).unwrap();
            prop_assert_eq!(rest & Gfp::BITS_MASK.0 & !0x200, 0);
        }
    }

    #[test]
    fn parse_never_panics(s in "\\PC{0,64}") {
        let _ = parse(&s);
    }

    #[test]
    fn parse_never_panics_on_near_misses(
        toks in prop::collection::vec(
            prop_oneof![
                prop::sample::select(
                    MODERN_TABLE.iter().map(|e| e.1).chain(["none", "0x", "0x1", "", "__GFP_", "GFP_", "0xffffffff1"]).collect::<Vec<_>>()
                ).prop_map(String::from),
                "[_A-Z0-9x|]{0,12}",
            ],
            0..6,
        )
    ) {
        let s = toks.join("|");
        match parse(&s) {
            Ok(g) => prop_assert_eq!(parse(&modern(g)), Ok(g)),
            Err(e) => {
                // The reported token really is at the reported position.
                prop_assert_eq!(&s[e.position..e.position + e.token.len()], e.token.as_str());
            }
        }
    }

    #[test]
    fn token_order_does_not_matter(g in any_gfp(), seed in any::<u64>()) {
        let s = modern(g);
        let mut toks: Vec<&str> = s.split('|').collect();
        // Deterministic shuffle.
        let mut x = seed | 1;
        for i in (1..toks.len()).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            toks.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let shuffled = toks.join("|");
        prop_assert_eq!(parse(&shuffled), Ok(g));
    }

    #[test]
    fn slow_path_invariants(g in any_gfp(), order in 0u8..11, defrag in any::<bool>()) {
        let f = gfp_to_alloc_flags(g, order, defrag);
        prop_assert_eq!(f.wmark(), 0);
        prop_assert_eq!(f.contains(AllocFlags::NOFRAGMENT), defrag);
        prop_assert_eq!(f.contains(AllocFlags::KSWAPD), g.contains(Gfp::KSWAPD_RECLAIM));
        prop_assert_eq!(f.contains(AllocFlags::MIN_RESERVE), g.contains(Gfp::HIGH));
        prop_assert_eq!(f.contains(AllocFlags::CMA), g.migratetype() == MigrateType::Movable);
        prop_assert!(!f.contains(AllocFlags::HIGHATOMIC) || f.contains(AllocFlags::NON_BLOCK));
        prop_assert!(!f.contains(AllocFlags::NON_BLOCK) || !can_direct_reclaim(g));
        // Intent is never looser than the posted code.
        prop_assert!(!has_cheap_fallback(g, CheapFallbackRule::Intent)
            || has_cheap_fallback(g, CheapFallbackRule::Literal));
    }
}
