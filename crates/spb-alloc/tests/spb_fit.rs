//! spb-next `movable_best_fit` (policy/spb_fit.rs), with the switch on and off, on a small
//! geometry: 32-page pageblocks, 8 pageblocks per SPB.

mod common;
use common::*;
use spb_alloc::*;

const PB: u64 = 32;
const SPB: u64 = 256;

/// spb-next's default set with `movable_best_fit` on or off.
fn next(on: bool) -> SpbSwitches {
    let s = SpbSwitches::next_on();
    if on {
        s.with(SpbSwitch::MovableBestFit)
    } else {
        s.without(SpbSwitch::MovableBestFit)
    }
}

fn alloc_with(sw: SpbSwitches) -> Allocator {
    spb_next_pb32(2, sw)
}

/// Fill both SPBs with movable order-0 pages except where `free(pb, off)` says (pageblocks
/// 0-7 are the first SPB, 8-15 the second).
fn fill(a: &mut Allocator, env: &mut TrackEnv, free: impl Fn(u64, u64) -> bool) {
    for pb in 0..16 {
        for off in 0..PB {
            if free(pb, off) {
                continue;
            }
            let p = SPB + pb * PB + off;
            a.alloc_at(p, 0, Gfp::HIGHUSER_MOVABLE, p as u32).unwrap();
            env.loc.insert(p as u32, (p, 0));
        }
    }
}

/// The first SPB (the fuller one: 16 free pages) has one free order-4 block; the second (40
/// free pages) only scattered single pages, no two of them buddies.
fn big_here_fragments_there(pb: u64, off: u64) -> bool {
    (pb == 0 && off < 16) || ((8..13).contains(&pb) && off % 4 == 1)
}

fn movable_free(a: &Allocator, order: usize) -> u64 {
    a.zones()[0].nr_free()[order][MigrateType::Movable.idx()]
}

#[test]
fn order0_takes_a_fragment_not_the_fullest_spbs_large_block() {
    for on in [false, true] {
        let mut a = alloc_with(next(on));
        let mut env = TrackEnv::default();
        fill(&mut a, &mut env, big_here_fragments_there);
        assert_eq!(movable_free(&a, 4), 1);
        let p = a
            .alloc(AllocRequest::new(0, Gfp::HIGHUSER_MOVABLE), &mut env)
            .unwrap();
        if on {
            assert!(
                p >= 2 * SPB,
                "a single free page of the second SPB, got {p}"
            );
            assert_eq!(movable_free(&a, 4), 1, "the order-4 block stays whole");
        } else {
            assert!(p < 2 * SPB, "the fullest SPB first (the series), got {p}");
            assert_eq!(movable_free(&a, 4), 0, "its order-4 block is split");
        }
        // the order-4 request that follows finds its block without the slow path only with
        // the switch
        let r = a.alloc(AllocRequest::new(4, Gfp::HIGHUSER_MOVABLE), &mut env);
        assert!(r.is_ok());
        assert_eq!(a.vm().get(Vm::CompactStall) == 0, on, "switch {on}");
    }
}

#[test]
fn a_tainted_spb_at_its_reserve_gives_no_fragment() {
    for on in [false, true] {
        let mut a = alloc_with(next(on));
        let mut env = TrackEnv::default();
        // the second SPB also holds an unmovable page: tainted, no free pageblock (at or
        // below its reserve), so movable requests keep out of its fragments
        fill(&mut a, &mut env, |pb, off| {
            big_here_fragments_there(pb, off) || (pb == 15 && off == 0)
        });
        let u = SPB + 15 * PB;
        a.alloc_at(u, 0, Gfp::KERNEL, u as u32).unwrap();
        env.loc.insert(u as u32, (u, 0));
        assert_eq!(a.zones()[0].spbs()[1].category(), Category::Tainted);
        let p = a
            .alloc(AllocRequest::new(0, Gfp::HIGHUSER_MOVABLE), &mut env)
            .unwrap();
        assert!(p < 2 * SPB, "switch {on}: the clean SPB's block, got {p}");
        assert_eq!(movable_free(&a, 4), 0);
    }
}

#[test]
fn pageblock_orders_keep_the_walk() {
    // nothing below the pageblock order to prefer: the walk's choice, switch on or off
    for on in [false, true] {
        let mut a = alloc_with(next(on));
        let mut env = TrackEnv::default();
        fill(&mut a, &mut env, |pb, _| pb == 3 || pb == 12);
        let p = a
            .alloc(AllocRequest::new(5, Gfp::HIGHUSER_MOVABLE), &mut env)
            .unwrap();
        let q = a
            .alloc(AllocRequest::new(0, Gfp::HIGHUSER_MOVABLE), &mut env)
            .unwrap();
        let blocks = [SPB + 3 * PB, SPB + 12 * PB];
        assert!(
            blocks.contains(&p),
            "switch {on}: a whole free pageblock, got {p}"
        );
        let other = if p == blocks[0] { blocks[1] } else { blocks[0] };
        assert!(
            q >= other && q < other + PB,
            "switch {on}: the other one, got {q}"
        );
    }
}
