//! Differential property test: random operation sequences against a trivial reference model
//! (a map of live blocks), under every policy and random spb switch sets, with the invariant
//! checker after every operation. No page is handed out twice, none is lost, the free total
//! matches.

mod common;
use common::*;
use proptest::prelude::*;
use spb_alloc::*;
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
enum Op {
    Alloc { order: u8, gfp_i: usize, cpu: u16 },
    Free { k: usize },
    Split { k: usize },
    Contig { order_off: u8 },
    Compact,
    Drain,
    Background,
    Grow,
    BadFree { k: usize, delta: u8 },
}

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
    prop_oneof![
        6 => (0u8..=4, 0usize..GFPS.len(), 0u16..2).prop_map(|(order, gfp_i, cpu)| Op::Alloc { order, gfp_i, cpu }),
        4 => any::<usize>().prop_map(|k| Op::Free { k }),
        1 => any::<usize>().prop_map(|k| Op::Split { k }),
        1 => (0u8..2).prop_map(|order_off| Op::Contig { order_off }),
        1 => Just(Op::Compact),
        1 => Just(Op::Drain),
        1 => Just(Op::Background),
        1 => Just(Op::Grow),
        1 => (any::<usize>(), 0u8..3).prop_map(|(k, delta)| Op::BadFree { k, delta }),
    ]
}

/// A moving embedder that keeps the reference model in step with migrations.
struct ModelEnv<'a> {
    live: &'a mut BTreeMap<u64, (u8, u32)>,
}

impl Env for ModelEnv<'_> {
    fn migrate(&mut self, from: Pfn, to: Pfn, order: u8, cookie: u32) -> MigrateOutcome {
        if cookie % 5 == 0 {
            return MigrateOutcome::Refused; // pinned
        }
        let v = self
            .live
            .remove(&from)
            .expect("migrating a block the model does not know");
        assert_eq!(v.0, order);
        self.live.insert(to, v);
        MigrateOutcome::Moved
    }
}

fn run(policy: PolicyConfig, ops: Vec<Op>) {
    let g = Geometry::TINY;
    let s = g.spb_pages();
    // a Normal zone with one uninitialised SPB at the top that Grow hands over
    let mut layout = tiny_two_zone(4);
    layout.zones[1].uninit.push(PfnRange::new(5 * s, 6 * s));
    let mut a = Allocator::new(
        &layout,
        Config {
            policy,
            check_every: 1,
            nr_cpus: 2,
            ..Config::default()
        },
    )
    .unwrap();
    let mut live: BTreeMap<u64, (u8, u32)> = BTreeMap::new();
    let mut cookie = 0u32;
    let mut grown = false;
    for op in ops {
        match op {
            Op::Alloc { order, gfp_i, cpu } => {
                cookie += 1;
                let r = a.alloc(
                    AllocRequest::new(order, GFPS[gfp_i])
                        .cpu(cpu)
                        .cookie(cookie),
                    &mut ModelEnv { live: &mut live },
                );
                if let Ok(p) = r {
                    let n = 1u64 << order;
                    for (&q, &(o, _)) in live.range(..p + n).rev().take(1) {
                        assert!(
                            q + (1u64 << o) <= p,
                            "block {:#x}/{} overlaps live {:#x}/{}",
                            p,
                            order,
                            q,
                            o
                        );
                    }
                    live.insert(p, (order, cookie));
                }
            }
            Op::Free { k } if !live.is_empty() => {
                let p = *live.keys().nth(k % live.len()).unwrap();
                let (o, _) = live.remove(&p).unwrap();
                a.free(p, o, (k % 2) as u16).unwrap();
            }
            Op::Split { k } if !live.is_empty() => {
                let p = *live.keys().nth(k % live.len()).unwrap();
                let (o, c) = live[&p];
                if o > 0 && o <= g.max_order {
                    a.split(p, o, 0).unwrap();
                    live.remove(&p);
                    for i in 0..(1u64 << o) {
                        live.insert(p + i, (0, c));
                    }
                }
            }
            Op::Contig { order_off } => {
                cookie += 1;
                let order = g.spb_order - order_off;
                if let Ok(p) = a.alloc_contig(
                    order,
                    Gfp::HIGHUSER_MOVABLE,
                    cookie,
                    &mut ModelEnv { live: &mut live },
                ) {
                    live.insert(p, (order, cookie));
                }
            }
            Op::Compact => {
                let zi = a.zones.len() - 1;
                a.compact_zone(
                    zi,
                    Some(2),
                    spb_alloc::compaction::CompactPriority::SyncLight,
                    MigrateType::Unmovable,
                    false,
                    &mut ModelEnv { live: &mut live },
                );
            }
            Op::Drain => a.drain_all_pcp(),
            Op::Background => {
                let t = a.now_ns + 1_000_000_000;
                a.background(t, &mut ModelEnv { live: &mut live });
            }
            Op::Grow if !grown => {
                grown = true;
                a.grow_zone(1, PfnRange::new(5 * s, 6 * s)).unwrap();
            }
            Op::BadFree { k, delta } if !live.is_empty() => {
                let p = *live.keys().nth(k % live.len()).unwrap();
                let (o, _) = live[&p];
                let before = a.free_pages();
                let r = match delta {
                    0 => a.free(p, o + 1, 0),
                    1 => a.free(p + 1, 0, 0),
                    _ => a.free(1 << 40, 0, 0),
                };
                if delta == 1 && o == 0 {
                    // p + 1 may be another live block or free: either way no corruption
                } else {
                    assert!(r.is_err(), "a bad free was accepted");
                }
                if r.is_ok() {
                    live.remove(&(p + 1));
                }
                let _ = before;
            }
            _ => {}
        }
        a.check().unwrap();
    }
    // free everything, drain: all managed memory is free again
    for (p, (o, _)) in std::mem::take(&mut live) {
        a.free(p, o, 0).unwrap();
    }
    a.drain_all_pcp();
    a.check().unwrap();
    let managed: u64 = a.zones.iter().map(|z| z.managed_pages).sum();
    assert_eq!(a.free_pages(), managed, "pages lost");
}

fn switches() -> impl Strategy<Value = SpbSwitches> {
    any::<u64>().prop_map(|bits| {
        SpbSwitches(bits & SpbSwitches::all_on().0 | (bits & (1 << SpbSwitch::RefuseLiteral as u8)))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn vanilla_matches_model(ops in prop::collection::vec(op(), 1..300)) {
        run(PolicyConfig::vanilla(), ops);
    }
    #[test]
    fn defrag_matches_model(ops in prop::collection::vec(op(), 1..300)) {
        run(PolicyConfig::defrag(), ops);
    }
    #[test]
    fn spb_matches_model(ops in prop::collection::vec(op(), 1..300), sw in switches()) {
        run(PolicyConfig { kind: PolicyKind::Spb, spb: sw }, ops);
    }
}
