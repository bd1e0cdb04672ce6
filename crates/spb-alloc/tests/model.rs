//! Differential property test: random operation sequences against the shadow model of
//! `spb_alloc::harness` (the one the soak and the `alloc_ops` fuzz target use), under every
//! policy and random spb switch sets, with the allocator's invariant checker after every
//! operation (`check_every = 1`) and the harness's full check after every operation (strict:
//! the first violation panics). No page is handed out twice, none is lost, every misuse is
//! rejected without a change, the free total matches at the end.

mod common;
use common::*;
use proptest::prelude::*;
use spb_alloc::harness::{Harness, Op};
use spb_alloc::*;

const GFPS: [Gfp; 8] = [
    Gfp::KERNEL,
    Gfp::HIGHUSER_MOVABLE,
    Gfp(Gfp::KERNEL.0 | Gfp::RECLAIMABLE.0),
    Gfp::ATOMIC,
    Gfp::NOWAIT,
    Gfp::TRANSHUGE_LIGHT,
    Gfp(Gfp::KERNEL.0 | Gfp::NORETRY.0 | Gfp::NOWARN.0),
    Gfp(Gfp::ATOMIC.0 | Gfp::NOWARN.0 | Gfp::NORETRY.0 | Gfp::COMP.0 | Gfp::NOMEMALLOC.0),
];

fn op() -> impl Strategy<Value = Op> {
    let spb_order = Geometry::TINY.spb_order;
    let s = Geometry::TINY.spb_pages();
    prop_oneof![
        6 => (0u8..=4, 0usize..GFPS.len(), 0u16..2).prop_map(|(order, g, cpu)| Op::Alloc {
            order,
            gfp: GFPS[g],
            cpu,
            trylock: false,
        }),
        4 => (any::<u64>(), 0u16..2).prop_map(|(pick, cpu)| Op::Free { pick, cpu }),
        1 => any::<u64>().prop_map(|pick| Op::Split { pick, new_order: 0 }),
        1 => (0u8..2).prop_map(move |off| Op::Contig {
            order: spb_order - off,
            gfp: Gfp::HIGHUSER_MOVABLE,
        }),
        1 => Just(Op::Compact {
            zone: 1,
            order: Some(2),
            prio: 1,
            mt: 0,
            daemon: false,
        }),
        1 => Just(Op::Drain),
        1 => Just(Op::Background {
            step_ns: 1_000_000_000
        }),
        1 => Just(Op::GrowNext { zone: 1, pages: s }),
        1 => (0u8..6, any::<u64>(), any::<u64>()).prop_map(|(how, pick, arg)| Op::FreeOther {
            how,
            pick,
            arg,
            cpu: 0,
        }),
    ]
}

fn run(policy: PolicyConfig, ops: Vec<Op>, seed: u64) {
    let s = Geometry::TINY.spb_pages();
    // a Normal zone with one uninitialised SPB at the top that GrowNext hands over
    let mut layout = tiny_two_zone(4);
    layout.zones[1].uninit.push(PfnRange::new(5 * s, 6 * s));
    let cfg = Config {
        policy,
        check_every: 1,
        nr_cpus: 2,
        ..Config::default()
    };
    let mut h = Harness::new(&layout, cfg, 6 * s, seed, true).unwrap();
    for op in &ops {
        h.step(op).unwrap();
        h.check().unwrap();
    }
    // free everything, drain: all managed memory is free again
    assert_eq!(h.free_everything().unwrap(), 0, "pages lost");
}

fn switches() -> impl Strategy<Value = SpbSwitches> {
    any::<u128>().prop_map(|bits| {
        let literal = SpbSwitches::all_on().with(SpbSwitch::RefuseLiteral);
        SpbSwitches::from_bits(bits & literal.bits())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn vanilla_matches_model(ops in prop::collection::vec(op(), 1..300), seed in any::<u64>()) {
        run(PolicyConfig::vanilla(), ops, seed);
    }
    #[test]
    fn defrag_matches_model(ops in prop::collection::vec(op(), 1..300), seed in any::<u64>()) {
        run(PolicyConfig::defrag(), ops, seed);
    }
    #[test]
    fn spb_matches_model(
        ops in prop::collection::vec(op(), 1..300),
        sw in switches(),
        seed in any::<u64>(),
    ) {
        run(PolicyConfig { kind: PolicyKind::Spb, spb: sw }, ops, seed);
    }
}
