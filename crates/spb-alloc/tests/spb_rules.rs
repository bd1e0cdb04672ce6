//! One test per spb behaviour, on the tiny geometry (8-page pageblocks, 16 pageblocks = 128
//! pages per SPB). Each runs with its switch on and off and checks the difference.

mod common;
use common::*;
use spb_alloc::migratetype::MigrateType as Mt;
use spb_alloc::policy::spb::Work;
use spb_alloc::*;

const SPB: u64 = 128;
/// Pages per pageblock of the tiny geometry.
const PB: u64 = 8;

fn alloc_with(spbs: u64, sw: SpbSwitches, pcp: bool, layout: Option<MemoryLayout>) -> Allocator {
    let mut c = Config {
        policy: PolicyConfig {
            kind: PolicyKind::Spb,
            spb: sw,
        },
        pcp,
        ..cfg(PolicyKind::Spb)
    };
    c.watermarks.min_free_kbytes = Some(0);
    Allocator::new(&layout.unwrap_or_else(|| tiny(spbs)), c).unwrap()
}

fn on() -> SpbSwitches {
    SpbSwitches::all_on()
}

fn off(w: SpbSwitch) -> SpbSwitches {
    SpbSwitches::all_on().without(w)
}

fn base(a: &Allocator, spb: u64) -> Pfn {
    a.zones()[0].spbs()[spb as usize].start_pfn()
}

fn spb_of(a: &Allocator, p: Pfn) -> u64 {
    a.zones()[0].spb_idx(p) as u64
}

fn cat(a: &Allocator, spb: u64) -> Category {
    a.zones()[0].spbs()[spb as usize].category()
}

/// Fill SPB `spb` with movable order-0 pages except where `keep_free(offset)`; put one unmovable
/// page at offset 0 when `taint`. Cookies are the pfns.
fn fill(a: &mut Allocator, spb: u64, taint: bool, keep_free: impl Fn(u64) -> bool) {
    let b = base(a, spb);
    for off in 0..SPB {
        if keep_free(off) {
            continue;
        }
        let gfp = if taint && off == 0 {
            Gfp::KERNEL
        } else {
            Gfp::HIGHUSER_MOVABLE
        };
        a.alloc_at(b + off, 0, gfp, (b + off) as u32).unwrap();
    }
}

fn gfp(bits: &[Gfp]) -> Gfp {
    bits.iter().fold(Gfp::NONE, |g, b| g | *b)
}

/// The seed's rule, as the issue states it: a tainted SPB with only small free fragments, no
/// empty SPB, a clean SPB with free movable pageblocks.
fn refusal_fixture(sw: SpbSwitches) -> Allocator {
    let mut a = alloc_with(2, sw, false, None);
    fill(&mut a, 0, true, |off| off == 9 || off == 19 || off == 29);
    fill(&mut a, 1, false, |off| off >= 96); // 4 free pageblocks
    assert_eq!(cat(&a, 0), Category::Tainted);
    assert_eq!(cat(&a, 1), Category::Clean);
    a
}

#[test]
fn refuse_optional_noretry_from_slow_path() {
    let mut a = refusal_fixture(on());
    let r = a.alloc(
        AllocRequest::new(3, gfp(&[Gfp::KERNEL, Gfp::NORETRY])),
        &mut NoEnv,
    );
    assert!(r.is_err(), "the NORETRY request got {:?}", r);
    assert!(a.vm().get(Vm::SpbHighorderRefused) >= 1);
    assert_eq!(cat(&a, 1), Category::Clean, "the clean SPB stays clean");
    // __GFP_NOFAIL never gets the flag: served, and it taints
    let p = a
        .alloc(
            AllocRequest::new(3, gfp(&[Gfp::KERNEL, Gfp::NORETRY, Gfp::NOFAIL])),
            &mut NoEnv,
        )
        .unwrap();
    assert_eq!(spb_of(&a, p), 1);
    assert_eq!(cat(&a, 1), Category::Tainted);
}

#[test]
fn refuse_optional_switch() {
    // an atomic order-1 request reaches the point where NOFRAGMENT is dropped
    for (sw, refused) in [(on(), true), (off(SpbSwitch::RefuseOptional), false)] {
        let mut a = refusal_fixture(sw);
        let r = a.alloc(AllocRequest::new(1, Gfp::ATOMIC), &mut NoEnv);
        assert_eq!(r.is_err(), refused, "{:?}", r);
        assert_eq!(cat(&a, 1) == Category::Clean, refused);
        assert_eq!(a.vm().get(Vm::SpbHighorderRefused) > 0, refused);
    }
}

#[test]
fn refuse_literal_switch() {
    // the posted code does not exclude __GFP_NOFAIL from the NORETRY shape
    let g = gfp(&[Gfp::KERNEL, Gfp::NORETRY, Gfp::NOFAIL]);
    let mut a = refusal_fixture(on());
    assert!(a.alloc(AllocRequest::new(3, g), &mut NoEnv).is_ok());
    let mut sw = on();
    sw.set(SpbSwitch::RefuseLiteral, true);
    let mut a = refusal_fixture(sw);
    assert!(
        a.alloc(AllocRequest::new(3, g), &mut NoEnv).is_err(),
        "the literal rule refuses even NOFAIL"
    );
}

#[test]
fn refuse_best_effort_switch() {
    let g = gfp(&[Gfp::ATOMIC, Gfp::NOWARN]);
    for (sw, refused) in [
        (off(SpbSwitch::RefuseOptional), true),
        (
            off(SpbSwitch::RefuseOptional).without(SpbSwitch::RefuseBestEffort),
            false,
        ),
    ] {
        let mut a = refusal_fixture(sw);
        let r = a.alloc(AllocRequest::new(1, g), &mut NoEnv);
        assert_eq!(
            matches!(
                r,
                Err(AllocError {
                    kind: AllocErrorKind::Refused,
                    ..
                })
            ),
            refused,
            "{:?}",
            r
        );
        assert_eq!(a.vm().get(Vm::SpbBesteffortRefused) > 0, refused);
    }
}

#[test]
fn atomic_relax_switch() {
    for (sw, relaxed) in [(on(), true), (off(SpbSwitch::AtomicRelax), false)] {
        let mut a = refusal_fixture(sw);
        let _ = a.alloc(AllocRequest::new(1, Gfp::ATOMIC), &mut NoEnv);
        assert_eq!(a.vm().get(Vm::SpbAtomicRelax) > 0, relaxed);
    }
}

#[test]
fn steer_tainted_switch() {
    for (sw, to_tainted) in [(on(), true), (off(SpbSwitch::SteerTainted), false)] {
        let mut a = alloc_with(4, sw, false, None);
        let b2 = base(&a, 2);
        a.alloc_at(b2, 0, Gfp::KERNEL, 1).unwrap();
        let p = a
            .alloc(AllocRequest::new(0, Gfp::KERNEL), &mut NoEnv)
            .unwrap();
        assert_eq!(
            spb_of(&a, p) == 2,
            to_tainted,
            "landed in SPB {}",
            spb_of(&a, p)
        );
    }
}

#[test]
fn steer_movable_fullest_switch() {
    for (sw, expect) in [(on(), 1), (off(SpbSwitch::SteerMovableFullest), 0)] {
        let mut a = alloc_with(4, sw, false, None);
        fill(&mut a, 1, false, |off| off >= 50);
        fill(&mut a, 3, false, |off| off >= 20);
        let p = a
            .alloc(AllocRequest::new(0, Gfp::HIGHUSER_MOVABLE), &mut NoEnv)
            .unwrap();
        assert_eq!(spb_of(&a, p), expect);
    }
}

#[test]
fn tainted_reserve_switch() {
    for (sw, expect) in [(on(), 1), (off(SpbSwitch::TaintedReserve), 0)] {
        let mut a = alloc_with(2, sw, false, None);
        fill(&mut a, 0, true, |off| off >= 104); // 3 free pageblocks <= reserve 4
        let p = a
            .alloc(AllocRequest::new(0, Gfp::HIGHUSER_MOVABLE), &mut NoEnv)
            .unwrap();
        assert_eq!(spb_of(&a, p), expect);
    }
}

#[test]
fn hint_cache_switch() {
    for (sw, hits) in [(on(), true), (off(SpbSwitch::HintCache), false)] {
        let mut a = alloc_with(4, sw, false, None);
        fill(&mut a, 1, false, |off| off >= 60);
        a.alloc(AllocRequest::new(0, Gfp::HIGHUSER_MOVABLE), &mut NoEnv)
            .unwrap();
        a.alloc(AllocRequest::new(0, Gfp::HIGHUSER_MOVABLE), &mut NoEnv)
            .unwrap();
        assert_eq!(a.vm().get(Vm::SpbPass1Hint) > 0, hits);
    }
}

/// SPB 0 tainted, full of movable pages but for two whole free pageblocks; SPBs 1.. empty.
fn pass2_fixture(sw: SpbSwitches, spbs: u64) -> Allocator {
    let mut a = alloc_with(spbs, sw, false, None);
    fill(&mut a, 0, true, |off| (64..80).contains(&off));
    a
}

#[test]
fn pass2_claim_switch() {
    for (sw, expect0) in [(on(), true), (off(SpbSwitch::Pass2Claim), false)] {
        let mut a = pass2_fixture(sw, 3);
        let p = a
            .alloc(AllocRequest::new(0, Gfp::KERNEL), &mut NoEnv)
            .unwrap();
        assert_eq!(spb_of(&a, p) == 0, expect0);
    }
}

/// SPB 0 tainted with only free fragments inside movable pageblocks; 9 SPBs (above the
/// aggressive threshold).
fn fragments_fixture(sw: SpbSwitches) -> Allocator {
    let mut a = alloc_with(9, sw, false, None);
    fill(&mut a, 0, true, |off| off % 8 >= 5);
    a
}

#[test]
fn pass2b_relabel_switch() {
    for (sw, expect0) in [
        (off(SpbSwitch::CrossBorrow), true),
        (
            off(SpbSwitch::CrossBorrow).without(SpbSwitch::Pass2bRelabel),
            false,
        ),
    ] {
        let mut a = fragments_fixture(sw);
        let p = a
            .alloc(AllocRequest::new(0, Gfp::KERNEL), &mut NoEnv)
            .unwrap();
        assert_eq!(spb_of(&a, p) == 0, expect0);
        if expect0 {
            assert_eq!(
                a.zones()[0].pb(p).migratetype(),
                Mt::Unmovable,
                "PASS_2B relabels the block"
            );
        }
    }
}

#[test]
fn cross_borrow_switch() {
    for (sw, expect0) in [
        (off(SpbSwitch::Pass2bRelabel), true),
        (
            off(SpbSwitch::Pass2bRelabel).without(SpbSwitch::CrossBorrow),
            false,
        ),
    ] {
        let mut a = fragments_fixture(sw);
        let p = a
            .alloc(AllocRequest::new(0, Gfp::KERNEL), &mut NoEnv)
            .unwrap();
        assert_eq!(spb_of(&a, p) == 0, expect0);
        if expect0 {
            assert_eq!(
                a.zones()[0].pb(p).migratetype(),
                Mt::Movable,
                "PASS_2D borrows without relabelling"
            );
            assert_eq!(a.vm().get(Vm::SpbPass2d), 1);
        }
    }
}

#[test]
fn aggressive_pack_switch() {
    for (sw, expect0) in [(on(), true), (off(SpbSwitch::AggressivePack), false)] {
        let mut a = fragments_fixture(sw);
        let p = a
            .alloc(AllocRequest::new(0, Gfp::KERNEL), &mut NoEnv)
            .unwrap();
        assert_eq!(spb_of(&a, p) == 0, expect0);
    }
}

#[test]
fn lost_first_switch() {
    let mut l = tiny(3);
    let b2 = l.zones[0].span.start + 2 * SPB;
    l.zones[0].reserved.push(spb_alloc::layout::Reservation {
        range: PfnRange::new(b2, b2 + 4),
        kind: spb_alloc::layout::ReserveKind::KernelImage,
    });
    for (sw, expect2) in [(on(), true), (off(SpbSwitch::LostFirst), false)] {
        let mut a = alloc_with(3, sw, false, Some(l.clone()));
        a.alloc_at(b2 + 100, 0, Gfp::HIGHUSER_MOVABLE, 0).unwrap(); // SPB 2 is clean, not empty
        let p = a
            .alloc(AllocRequest::new(0, Gfp::KERNEL), &mut NoEnv)
            .unwrap();
        assert_eq!(
            spb_of(&a, p) == 2,
            expect2,
            "landed in SPB {}",
            spb_of(&a, p)
        );
    }
}

#[test]
fn contig_emptiest_switch() {
    for (sw, expect) in [(on(), 1), (off(SpbSwitch::ContigEmptiest), 0)] {
        let mut a = alloc_with(2, sw, false, None);
        fill(&mut a, 0, false, |off| off >= 10);
        fill(&mut a, 1, false, |off| off >= 2);
        let mut env = TrackEnv::default();
        let p = a
            .alloc_contig(7, Gfp::HIGHUSER_MOVABLE, 99, &mut env)
            .unwrap();
        assert_eq!(spb_of(&a, p), expect);
        assert_eq!(env.moves, if expect == 1 { 2 } else { 10 });
    }
}

#[test]
fn no_watermark_boost_switch() {
    for (sw, boosted) in [(on(), false), (off(SpbSwitch::NoWatermarkBoost), true)] {
        let mut c = Config {
            policy: PolicyConfig {
                kind: PolicyKind::Spb,
                spb: sw.without(SpbSwitch::CrossBorrow),
            },
            pcp: false,
            ..cfg(PolicyKind::Spb)
        };
        c.watermarks.min_free_kbytes = None;
        let mut a = Allocator::new(&tiny(9), c).unwrap();
        fill(&mut a, 0, true, |off| off % 8 >= 5);
        a.alloc(AllocRequest::new(0, Gfp::KERNEL), &mut NoEnv)
            .unwrap();
        assert_eq!(a.zones()[0].watermark_boost() > 0, boosted);
    }
}

#[test]
fn evacuate_claimed_switch() {
    for (sw, evacuated) in [
        (off(SpbSwitch::CrossBorrow), true),
        (
            off(SpbSwitch::CrossBorrow).without(SpbSwitch::EvacuateClaimed),
            false,
        ),
    ] {
        let mut a = fragments_fixture(sw.without(SpbSwitch::DefragWorker));
        let p = a
            .alloc(AllocRequest::new(0, Gfp::KERNEL), &mut NoEnv)
            .unwrap();
        let mut env = TrackEnv::default();
        a.background(1, &mut env);
        assert_eq!(
            a.zones()[0].pb(p).alloc()[1] == 0,
            evacuated,
            "movable pages left in the claimed block"
        );
    }
}

#[test]
fn defrag_worker_switch() {
    for (sw, worked) in [(on(), true), (off(SpbSwitch::DefragWorker), false)] {
        let mut a = alloc_with(3, sw, false, None);
        fill(&mut a, 0, true, |off| (120..128).contains(&off)); // one free pageblock
        a.alloc(AllocRequest::new(0, Gfp::KERNEL), &mut NoEnv)
            .unwrap();
        let before = a.zones()[0].spbs()[0].pb_free();
        a.background(1, &mut TrackEnv::default());
        assert_eq!(
            a.zones()[0].spbs()[0].pb_free() > before,
            worked,
            "free pageblocks {} -> {}",
            before,
            a.zones()[0].spbs()[0].pb_free()
        );
        assert_eq!(a.vm().get(Vm::SpbDefragRuns) > 0, worked);
    }
}

#[test]
fn defrag_deep_switch() {
    // SPB 0 tainted and full (one unmovable page, 127 movable), SPBs 1 and 2 empty: a kernel
    // request reaches PASS_3, whose last-chance trigger starts SPB 0's defrag. The series' defrag
    // stops once a few pageblocks are free (96 movable pages stay); with `defrag_deep` it
    // evacuates every movable pageblock (pageblock 0's movable pages leave when the unmovable
    // page's pageblock is claimed, `evacuate_claimed`, with or without the switch).
    for (sw, deep) in [(on(), false), (on().with(SpbSwitch::DefragDeep), true)] {
        let mut a = alloc_with(3, sw, false, None);
        fill(&mut a, 0, true, |_| false);
        a.alloc(AllocRequest::new(0, Gfp::KERNEL), &mut NoEnv)
            .unwrap();
        let mut env = TrackEnv::default();
        for t in 1..8 {
            a.background(t * 1_000_000_000, &mut env);
        }
        let left = a.zones()[0].spbs()[0].movable_pages();
        assert_eq!(a.zones()[0].pb(base(&a, 0)).alloc()[1], 0);
        if deep {
            assert_eq!(left, 0, "every movable page evacuated");
        } else {
            assert!(
                left > 64,
                "the series' defrag stops early: {left} movable pages left"
            );
            assert!(a.vm().get(Vm::SpbDefragRuns) > 0);
        }
        a.check().unwrap();
    }
}

#[test]
fn defrag_undone_switch() {
    // SPB 0 tainted with one free pageblock, the rest movable; SPBs 1 and 2 empty. A kernel
    // request takes from the free pageblock and starts SPB 0's defrag, which moves pages out.
    // Movable allocations then take all that room back but one page, and a second kernel
    // request takes that page and starts the defrag again: it moves pages again without the
    // switch, and nothing with it (the no-progress cooldown instead).
    for (sw, undone) in [(on(), false), (on().with(SpbSwitch::DefragUndone), true)] {
        let mut a = alloc_with(3, sw, false, None);
        fill(&mut a, 0, true, |off| (120..128).contains(&off));
        a.alloc(AllocRequest::new(0, Gfp::KERNEL), &mut NoEnv)
            .unwrap();
        let mut env = TrackEnv::default();
        a.background(1, &mut env);
        let moved = a.vm().get(Vm::SpbDefragPagesMoved);
        assert!(moved > 0, "{sw:?}: the first run moved pages");
        // movable pages take back all the room but one page, which a kernel request takes
        let b = base(&a, 0);
        for off in 0..SPB {
            if a.zones()[0].spbs()[0].free_pages() == 1 {
                break;
            }
            let _ = a.alloc_at(b + off, 0, Gfp::HIGHUSER_MOVABLE, (b + off) as u32);
        }
        let p = a
            .alloc(AllocRequest::new(0, Gfp::KERNEL), &mut NoEnv)
            .unwrap();
        assert_eq!(spb_of(&a, p), 0);
        a.background(2, &mut env);
        let again = a.vm().get(Vm::SpbDefragPagesMoved) - moved;
        assert_eq!(again == 0, undone, "{sw:?}: the second run moved {again}");
        assert_eq!(a.vm().get(Vm::SpbDefragRuns) == 1, undone, "{sw:?}");
        a.check().unwrap();
    }
}

#[test]
fn defrag_thp_last_switch() {
    // SPB 0 tainted: its first pageblock kernel pages but one free page, each other pageblock
    // one movable block of pageblock order (a THP); SPBs 1 and 2 empty. A kernel request starts
    // SPB 0's defrag, which finds no pageblock it may evacuate (a THP moves only with
    // `evacuate_thp`'s credit, off here): without the switch the SPB stays without a free
    // pageblock; with it one THP leaves and a pageblock of room is free.
    for (sw, moves) in [(on(), false), (on().with(SpbSwitch::DefragThpLast), true)] {
        let mut a = alloc_with(3, sw, false, None);
        let b = base(&a, 0);
        for off in 0..PB - 1 {
            a.alloc_at(b + off, 0, Gfp::KERNEL, (b + off) as u32)
                .unwrap();
        }
        for pb in 1..SPB / PB {
            let p = b + pb * PB;
            a.alloc_at(p, 3, Gfp::HIGHUSER_MOVABLE, p as u32).unwrap();
        }
        // the request is served outside SPB 0 (an empty SPB); before that, the walk's
        // last-chance trigger starts SPB 0's defrag
        a.alloc(AllocRequest::new(0, Gfp::KERNEL), &mut NoEnv)
            .unwrap();
        assert_eq!(a.zones()[0].spbs()[0].pb_free(), 0);
        let mut env = TrackEnv::default();
        for t in 1..4 {
            a.background(t * 1_000_000_000, &mut env);
        }
        assert!(a.vm().get(Vm::SpbDefragRuns) > 0, "{sw:?}: the defrag ran");
        let s = &a.zones()[0].spbs()[0];
        assert_eq!(
            s.pb_free() > 0,
            moves,
            "{sw:?}: free pageblocks {}",
            s.pb_free()
        );
        assert_eq!(
            a.vm().get(Vm::SpbDefragPagesMoved) > 0,
            moves,
            "{sw:?}: pages moved by the defrag"
        );
        a.check().unwrap();
    }
}

#[test]
fn defrag_start_gate_switch() {
    // SPB 0 tainted with three free pageblocks and one free page in each of pageblocks 1-12
    // (36 free pages; the tiny geometry's defrag starts at one free pageblock or less and stops
    // at three pageblocks' worth of free pages, 24); SPBs 1 and 2 empty. Kernel requests claim
    // the free pageblocks one by one; when one free pageblock is left the defrag's start and
    // stop tests both hold. Without the switch a run starts there, stops at once and starts the
    // no-progress cooldown, so when the free pages fall below the stop test no run makes room;
    // with it no run starts until then. A run queued there that finds the stop test holding
    // again (pages were freed meanwhile) moves nothing and starts no cooldown either: the run
    // queued when the free pages fall below the stop test again moves pages out.
    for (sw, gated) in [(on(), false), (on().with(SpbSwitch::DefragStartGate), true)] {
        let mut a = alloc_with(3, sw, false, None);
        fill(&mut a, 0, true, |off| {
            off >= 13 * PB || (off >= PB && off % PB == 4)
        });
        let mut env = TrackEnv::default();
        let kernel = |a: &mut Allocator| {
            let p = a
                .alloc(AllocRequest::new(0, Gfp::KERNEL), &mut NoEnv)
                .unwrap();
            assert_eq!(spb_of(a, p), 0, "{sw:?}: served in the tainted SPB");
            p
        };
        let free = |a: &Allocator| a.zones()[0].spbs()[0].free_pages();
        while a.zones()[0].spbs()[0].pb_free() > 1 {
            kernel(&mut a);
        }
        assert!(free(&a) >= 3 * PB);
        a.background(1_000_000, &mut env);
        let runs = a.vm().get(Vm::SpbDefragRuns);
        assert_eq!(runs == 0, gated, "{sw:?}: runs in the overlap {runs}");
        // below the stop test (a run is queued with the switch), then above it again
        let mut taken = Vec::new();
        while free(&a) >= 3 * PB {
            taken.push(kernel(&mut a));
        }
        a.free(taken.pop().unwrap(), 0, 0).unwrap();
        a.background(500_000_000, &mut env);
        assert_eq!(a.vm().get(Vm::SpbDefragRuns), 1, "{sw:?}: one run so far");
        assert_eq!(a.vm().get(Vm::SpbDefragPagesMoved), 0, "{sw:?}");
        kernel(&mut a);
        a.background(1_000_000_000, &mut env);
        let moved = a.vm().get(Vm::SpbDefragPagesMoved);
        assert_eq!(
            moved > 0,
            gated,
            "{sw:?}: pages moved below the stop test {moved}"
        );
        a.check().unwrap();
    }
}

#[test]
fn targeted_evacuation_switch() {
    for (sw, stays_clean) in [(on(), true), (off(SpbSwitch::TargetedEvacuation), false)] {
        let mut a = alloc_with(2, sw, false, None);
        fill(&mut a, 0, true, |_| false); // SPB 0 full
        fill(&mut a, 1, false, |off| off >= 64);
        let mut env = TrackEnv::default();
        let p = a
            .alloc(AllocRequest::new(0, Gfp::KERNEL), &mut env)
            .unwrap();
        assert_eq!(spb_of(&a, p) == 0, stays_clean);
        assert_eq!(cat(&a, 1) == Category::Clean, stays_clean);
    }
}

#[test]
fn deferred_evacuation_switch() {
    for (sw, queued) in [(on(), true), (off(SpbSwitch::DeferredEvacuation), false)] {
        let mut a = alloc_with(3, sw.without(SpbSwitch::Pass2Claim), false, None);
        fill(&mut a, 0, true, |off| (120..128).contains(&off));
        a.alloc(AllocRequest::new(0, Gfp::KERNEL), &mut NoEnv)
            .unwrap();
        let w = a.policy().spb().unwrap().work();
        assert_eq!(
            w.iter().any(|w| matches!(w, Work::EvacuateForOrder { .. })),
            queued,
            "{:?}",
            w
        );
    }
}

#[derive(Default)]
struct ShrinkEnv {
    shrinks: u32,
}
impl Env for ShrinkEnv {
    fn reclaim(&mut self, req: ReclaimRequest, _out: &mut Vec<FreedBlock>) {
        if req.who == Reclaimer::SpbShrink {
            self.shrinks += 1;
        }
    }
}

#[test]
fn slab_shrink_switch() {
    for (sw, shrunk) in [(on(), true), (off(SpbSwitch::SlabShrink), false)] {
        let mut a = alloc_with(3, sw, false, None);
        let b = base(&a, 0);
        for off in 0..120 {
            a.alloc_at(b + off, 0, Gfp(Gfp::KERNEL.0 | Gfp::RECLAIMABLE.0), 0)
                .unwrap();
        }
        a.alloc(
            AllocRequest::new(0, Gfp(Gfp::KERNEL.0 | Gfp::RECLAIMABLE.0)),
            &mut NoEnv,
        )
        .unwrap();
        let mut env = ShrinkEnv::default();
        a.background(1, &mut env);
        assert_eq!(env.shrinks > 0, shrunk);
    }
}

#[test]
fn compaction_spb_switch() {
    for (sw, skip) in [(on(), true), (off(SpbSwitch::CompactionSpb), false)] {
        let mut a = alloc_with(2, sw, false, None);
        let b = base(&a, 0);
        a.alloc_at(b, 0, Gfp::KERNEL, 0).unwrap();
        assert_eq!(!a.policy().compaction_source_ok(&a.zones()[0], b), skip);
    }
}

#[test]
fn keep_nofragment_switch() {
    // reclaim can free a whole pageblock inside the tainted SPB
    struct Reclaim(Vec<FreedBlock>);
    impl Env for Reclaim {
        fn reclaim(&mut self, _req: ReclaimRequest, out: &mut Vec<FreedBlock>) {
            out.append(&mut self.0);
        }
    }
    for (sw, stays_clean) in [
        (off(SpbSwitch::TargetedEvacuation), true),
        (
            off(SpbSwitch::TargetedEvacuation).without(SpbSwitch::KeepNofragment),
            false,
        ),
    ] {
        let mut a = alloc_with(2, sw, false, None);
        fill(&mut a, 0, true, |_| false);
        fill(&mut a, 1, false, |off| off >= 64);
        let b = base(&a, 0);
        let mut env = Reclaim(
            (16..24)
                .map(|o| FreedBlock {
                    pfn: b + o,
                    order: 0,
                })
                .collect(),
        );
        let p = a
            .alloc(AllocRequest::new(0, Gfp::KERNEL), &mut env)
            .unwrap();
        assert_eq!(
            cat(&a, 1) == Category::Clean,
            stays_clean,
            "landed in SPB {}",
            spb_of(&a, p)
        );
    }
}

#[test]
fn pcp_ownership_switch() {
    for (sw, owned) in [(on(), true), (off(SpbSwitch::PcpOwnership), false)] {
        let mut a = alloc_with(2, sw, true, None);
        let p = a
            .alloc(
                AllocRequest::new(0, Gfp::HIGHUSER_MOVABLE).cpu(1),
                &mut NoEnv,
            )
            .unwrap();
        assert_eq!(a.zones()[0].pb(p).owner() == 2, owned);
        a.free(p, 0, 0).unwrap();
        let m = a.page_state(p).unwrap();
        assert_eq!(m.state(), spb_alloc::page::PageState::Pcp);
        assert_eq!(
            m.cpu() == 1,
            owned,
            "a free of an owned page returns to the owner's list"
        );
        a.check().unwrap();
    }
}

#[test]
fn adopt_partial_switch() {
    for (sw, owned) in [
        (off(SpbSwitch::PcpOwnership), true),
        (
            off(SpbSwitch::PcpOwnership).without(SpbSwitch::AdoptPartial),
            false,
        ),
    ] {
        let mut a = alloc_with(2, sw, true, None);
        let b = base(&a, 0);
        // an unmovable pageblock in SPB 0 with free fragments
        let z = &mut spb_alloc::test_support::zones_mut(&mut a)[0];
        z.split_straddling(b, 3);
        spb_alloc::test_support::move_freepages_block(z, b, Mt::Unmovable).unwrap();
        a.alloc_at(b, 0, Gfp::KERNEL, 0).unwrap();
        let p = a
            .alloc(AllocRequest::new(0, Gfp::KERNEL).cpu(1), &mut NoEnv)
            .unwrap();
        assert_eq!(spb_of(&a, p), 0);
        assert_eq!(a.zones()[0].pb(p).owner() == 2, owned);
    }
}

#[test]
fn every_switch_has_a_test_and_a_name() {
    // highorder_evacuate's and movable_best_fit's tests need a larger geometry and live in
    // spb_highorder.rs and spb_fit.rs
    let src = concat!(
        include_str!("spb_rules.rs"),
        include_str!("spb_highorder.rs"),
        include_str!("spb_fit.rs")
    );
    for w in SpbSwitch::ALL {
        let needle = format!("SpbSwitch::{:?}", w);
        assert!(
            src.contains(&needle) || *w == SpbSwitch::RefuseLiteral,
            "no test mentions {}",
            needle
        );
        assert_eq!(SpbSwitch::from_name(w.name()), Some(*w));
    }
}

// spb-next's switches (off in `spb`, docs/spb-next.md)

fn stalls(a: &Allocator) -> u64 {
    a.vm().get(Vm::AllocstallNormal)
}

/// An embedder whose reclaim hands back the given blocks once.
struct Reclaim(Vec<FreedBlock>);
impl Reclaim {
    /// Reclaim frees the order-0 pages at `base + off` for every `off` in `offs`.
    fn pages(base: Pfn, offs: core::ops::Range<u64>) -> Reclaim {
        Reclaim(
            offs.map(|o| FreedBlock {
                pfn: base + o,
                order: 0,
            })
            .collect(),
        )
    }
}
impl Env for Reclaim {
    fn migrate(&mut self, _f: Pfn, _t: Pfn, _o: u8, _c: u32) -> MigrateOutcome {
        MigrateOutcome::Moved
    }
    fn reclaim(&mut self, _req: ReclaimRequest, out: &mut Vec<FreedBlock>) {
        out.append(&mut self.0);
    }
}

/// spb's switches with `taint_when_full` and without the targeted evacuation: the slow path's
/// synchronous evacuation is the only one that runs before a retry.
fn synchronous_evacuation() -> SpbSwitches {
    on().without(SpbSwitch::TargetedEvacuation)
        .with(SpbSwitch::TaintWhenFull)
}

#[test]
fn evacuate_before_empty_switch() {
    // SPB 0 tainted and full (one unmovable page, the rest movable), SPBs 1 and 2 empty. A
    // kernel request finds no room in SPB 0: the walk's PASS_3 takes an empty SPB without the
    // switch; with it the walk fails there, and the slow path's `taint_when_full` evacuates a
    // pageblock of SPB 0 (into an empty SPB, which stays clean) and serves the request inside
    // SPB 0.
    let next = synchronous_evacuation();
    for (sw, evacuates) in [
        (next, false),
        (next.with(SpbSwitch::EvacuateBeforeEmpty), true),
    ] {
        let mut a = alloc_with(3, sw, false, None);
        fill(&mut a, 0, true, |_| false);
        let mut env = Reclaim(Vec::new());
        let p = a
            .alloc(AllocRequest::new(0, Gfp::KERNEL), &mut env)
            .unwrap();
        assert_eq!(spb_of(&a, p) == 0, evacuates, "{sw:?}");
        let tainted = (0..3).filter(|&i| cat(&a, i) == Category::Tainted).count();
        assert_eq!(tainted, if evacuates { 1 } else { 2 }, "{sw:?}");
        assert_eq!(a.pages_migrated() > 0, evacuates, "{sw:?}");
        a.check().unwrap();
    }
    // The same below a DMA32 zone. With the switch, the walk refused in Normal goes on to
    // DMA32 for its tainted SPBs' room only: an empty DMA32 is not tainted instead (the slow
    // path evacuates in Normal as above); a tainted DMA32 SPB with room serves the request.
    for dma32_tainted in [false, true] {
        for (sw, on) in [
            (next, false),
            (next.with(SpbSwitch::EvacuateBeforeEmpty), true),
        ] {
            let mut a = alloc_with(0, sw, false, Some(tiny_two_zone(3)));
            let (dma32, normal) = (0, 1);
            let spb_base = |a: &Allocator, z: usize| a.zones()[z].spbs()[0].start_pfn();
            let b = spb_base(&a, normal);
            for off in 0..SPB {
                let gfp = if off == 0 {
                    Gfp::KERNEL
                } else {
                    Gfp::HIGHUSER_MOVABLE
                };
                a.alloc_at(b + off, 0, gfp, (b + off) as u32).unwrap();
            }
            if dma32_tainted {
                let d = spb_base(&a, dma32);
                a.alloc_at(d, 0, Gfp::KERNEL, d as u32).unwrap();
            }
            let mut env = Reclaim(Vec::new());
            let p = a
                .alloc(AllocRequest::new(0, Gfp::KERNEL), &mut env)
                .unwrap();
            let (n, d) = (&a.zones()[normal], &a.zones()[dma32]);
            let ctx = format!("{sw:?}, DMA32 tainted {dma32_tainted}");
            if on && dma32_tainted {
                assert!(d.span().contains(p), "{ctx}: DMA32's tainted room");
                assert_eq!(a.pages_migrated(), 0, "{ctx}");
            } else {
                assert!(n.span().contains(p), "{ctx}: served in Normal");
                assert_eq!(n.spb_idx(p) == 0, on, "{ctx}: evacuated in Normal");
            }
            assert_eq!(
                d.spbs()[0].category() == Category::Tainted,
                dma32_tainted,
                "{ctx}: DMA32 not tainted by the request"
            );
            a.check().unwrap();
        }
    }
}

#[test]
fn evacuate_headroom_switch() {
    // SPB 0 tainted and full (one unmovable page, the rest movable), SPBs 1 and 2 empty: a
    // kernel request finds the tainted pool without a free page, and `taint_when_full`
    // evacuates a pageblock of SPB 0, which the request takes. With the switch a second
    // pageblock is evacuated and stays free: room for a request that cannot evacuate.
    let next = synchronous_evacuation().with(SpbSwitch::EvacuateBeforeEmpty);
    for (sw, headroom) in [
        (next, false),
        (next.with(SpbSwitch::EvacuateHeadroom), true),
    ] {
        let mut a = alloc_with(3, sw, false, None);
        fill(&mut a, 0, true, |_| false);
        let p = a
            .alloc(AllocRequest::new(0, Gfp::KERNEL), &mut Reclaim(Vec::new()))
            .unwrap();
        assert_eq!(spb_of(&a, p), 0, "{sw:?}: served inside the tainted SPB");
        let s = &a.zones()[0].spbs()[0];
        assert_eq!(s.pb_free(), headroom as u32, "{sw:?}: free pageblocks left");
        assert_eq!(a.pages_migrated(), (1 + headroom as u64) * PB, "{sw:?}");
        a.check().unwrap();
    }
}

#[test]
fn taint_when_full_switch() {
    // the tainted SPB holds movable pages: evacuate one pageblock of them instead of reclaiming
    let next = on().without(SpbSwitch::TargetedEvacuation);
    for (sw, evacuates) in [(next, false), (next.with(SpbSwitch::TaintWhenFull), true)] {
        let mut a = alloc_with(2, sw, false, None);
        fill(&mut a, 0, true, |_| false);
        fill(&mut a, 1, false, |off| off >= 64);
        let b = base(&a, 0);
        let mut env = Reclaim::pages(b, 16..24);
        let p = a
            .alloc(AllocRequest::new(0, Gfp::KERNEL), &mut env)
            .unwrap();
        assert_eq!(spb_of(&a, p), 0, "served inside the tainted SPB");
        assert_eq!(cat(&a, 1), Category::Clean);
        assert_eq!(
            stalls(&a) == 0,
            evacuates,
            "direct reclaim only without the switch"
        );
        assert_eq!(a.pages_migrated() > 0, evacuates);
    }
    // the tainted SPB is full of non-movable pages: taint the next SPB at once, no reclaim
    for (sw, taints_at_once) in [(next, false), (next.with(SpbSwitch::TaintWhenFull), true)] {
        let mut a = alloc_with(2, sw, false, None);
        let b = base(&a, 0);
        for off in 0..SPB {
            a.alloc_at(b + off, 0, Gfp::KERNEL, 0).unwrap();
        }
        fill(&mut a, 1, false, |off| off >= 64);
        let mut env = Reclaim(Vec::new());
        let p = a
            .alloc(AllocRequest::new(0, Gfp::KERNEL), &mut env)
            .unwrap();
        assert_eq!(spb_of(&a, p), 1);
        assert_eq!(stalls(&a) == 0, taints_at_once);
    }
}

#[test]
fn evacuate_no_reclaim_switch() {
    // SPB 0 tainted and full, SPB 1 full of movable pages but 4: a kernel request makes
    // `taint_when_full` evacuate a pageblock (8 pages) of SPB 0, whose fifth migration target
    // finds the free lists dry. Without the switch that target reclaims (the embedder frees 8
    // pages of SPB 1): a stall counted for the evacuation's targets. With it the evacuation
    // stops there and reclaim is left to the caller's own slow path.
    let sw = on()
        .without(SpbSwitch::TargetedEvacuation)
        .with(SpbSwitch::TaintWhenFull);
    for (sw, target_reclaims) in [(sw, true), (sw.with(SpbSwitch::EvacuateNoReclaim), false)] {
        let mut a = alloc_with(2, sw, false, None);
        fill(&mut a, 0, true, |_| false);
        fill(&mut a, 1, false, |off| off >= SPB - 4);
        let b1 = base(&a, 1);
        let mut env = Reclaim::pages(b1, 16..24);
        a.alloc(AllocRequest::new(0, Gfp::KERNEL), &mut env)
            .unwrap();
        let c = *a.stall_causes();
        assert!(
            a.pages_migrated() >= 4,
            "the evacuation moved its first pages"
        );
        assert_eq!(c.evacuation_targets > 0, target_reclaims, "{c:?}");
        a.check().unwrap();
    }
}

#[test]
fn taint_when_full_evacuates_a_block_it_can_move() {
    // the tainted SPB: pageblock 0 unmovable, pageblock 1 one pageblock-order movable block
    // (a THP: evacuation never moves it), the rest order-0 movable pages; the clean SPB has
    // room. The evacuation must pick a pageblock of base pages, not the THP's (which it would
    // leave in place, and the request would then taint the clean SPB).
    let sw = on()
        .without(SpbSwitch::TargetedEvacuation)
        .with(SpbSwitch::TaintWhenFull);
    let mut a = alloc_with(2, sw, false, None);
    let b = base(&a, 0);
    let pbp = 1u64 << a.geo().pageblock_order;
    for off in 0..pbp {
        a.alloc_at(b + off, 0, Gfp::KERNEL, 0).unwrap();
    }
    a.alloc_at(b + pbp, a.geo().pageblock_order, Gfp::HIGHUSER_MOVABLE, 1)
        .unwrap();
    for off in 2 * pbp..SPB {
        a.alloc_at(b + off, 0, Gfp::HIGHUSER_MOVABLE, (b + off) as u32)
            .unwrap();
    }
    fill(&mut a, 1, false, |off| off >= 64);
    let mut env = Reclaim(Vec::new());
    let p = a
        .alloc(AllocRequest::new(0, Gfp::KERNEL), &mut env)
        .unwrap();
    assert_eq!(
        spb_of(&a, p),
        0,
        "served inside the tainted SPB (migrated {}, runs {})",
        a.pages_migrated(),
        a.vm().get(Vm::SpbEvacuateRuns)
    );
    assert_eq!(cat(&a, 1), Category::Clean);
    assert_eq!(a.pages_migrated(), pbp, "one pageblock of base pages moved");
    assert_eq!(stalls(&a), 0);
}

#[test]
fn taint_when_full_atomic_best_effort() {
    // an atomic best-effort order-1 request (patch 35's shape) that the tainted SPB cannot hold,
    // with free memory above min in the clean SPB: spb refuses it, spb-next serves it there
    let g = gfp(&[Gfp::ATOMIC, Gfp::NOWARN]);
    for (sw, served) in [(on(), false), (on().with(SpbSwitch::TaintWhenFull), true)] {
        let mut a = refusal_fixture(sw);
        let r = a.alloc(AllocRequest::new(1, g), &mut NoEnv);
        assert_eq!(r.is_ok(), served, "{:?}", r);
        if let Ok(p) = r {
            assert_eq!(spb_of(&a, p), 1);
        }
        assert_eq!(cat(&a, 1) == Category::Tainted, served);
        assert_eq!(a.vm().get(Vm::SpbBesteffortRefused) == 0, served);
        assert_eq!(stalls(&a), 0, "an atomic request never reclaims");
    }
    // below the min watermark (only the tainted SPB's three scattered free pages, fewer than
    // the 4 an order-2 request needs above min 0) the series' refusal stands in spb-next too
    let mut a = alloc_with(2, on().with(SpbSwitch::TaintWhenFull), false, None);
    fill(&mut a, 0, true, |off| off == 9 || off == 19 || off == 29);
    fill(&mut a, 1, false, |_| false);
    let r = a.alloc(AllocRequest::new(2, g), &mut NoEnv);
    assert!(
        matches!(
            r,
            Err(AllocError {
                kind: AllocErrorKind::Refused,
                ..
            })
        ),
        "{:?}",
        r
    );
    assert!(a.vm().get(Vm::SpbBesteffortRefused) > 0);
}

#[test]
fn spare_opportunistic_switch() {
    // SLUB's high-order first try (both reclaim bits cleared, NOMEMALLOC) that the tainted SPB
    // cannot hold: taint_when_full serves it in the clean SPB, spare_opportunistic keeps the
    // series' refusal for it (its caller falls back to the cache's minimum order); a true
    // atomic request is served either way
    let slab_try = gfp(&[
        Gfp::KERNEL,
        Gfp::RECLAIMABLE,
        Gfp::NOWARN,
        Gfp::NORETRY,
        Gfp::NOMEMALLOC,
    ])
    .without(Gfp::RECLAIM);
    let atomic = gfp(&[Gfp::ATOMIC, Gfp::NOWARN]);
    let next = on().with(SpbSwitch::TaintWhenFull);
    for (sw, served) in [
        (next, true),
        (next.with(SpbSwitch::SpareOpportunistic), false),
    ] {
        let mut a = refusal_fixture(sw);
        let r = a.alloc(AllocRequest::new(1, slab_try), &mut NoEnv);
        assert_eq!(r.is_ok(), served, "{:?}", r);
        assert_eq!(cat(&a, 1) == Category::Tainted, served);
        let mut a = refusal_fixture(sw);
        assert!(a.alloc(AllocRequest::new(1, atomic), &mut NoEnv).is_ok());
        assert_eq!(cat(&a, 1), Category::Tainted);
    }
}

#[test]
fn refuse_fast_switch() {
    let g = gfp(&[Gfp::KERNEL, Gfp::NORETRY]);
    for (sw, fast) in [(on(), false), (on().with(SpbSwitch::RefuseFast), true)] {
        let mut a = refusal_fixture(sw);
        let r = a.alloc(AllocRequest::new(3, g), &mut NoEnv);
        assert!(r.is_err(), "refused either way: {:?}", r);
        assert_eq!(cat(&a, 1), Category::Clean);
        assert_eq!(stalls(&a) == 0, fast, "no reclaim for a refused request");
    }
}

#[test]
fn compact_fragments_switch() {
    for (sw, target) in [
        (on(), false),
        (on().with(SpbSwitch::CompactFragments), true),
    ] {
        let mut a = alloc_with(2, sw, false, None);
        // tainted, with free pages only in fragments of movable pageblocks (no free pageblock)
        fill(&mut a, 0, true, |off| off % 8 == 7);
        let b = base(&a, 0);
        assert_eq!(cat(&a, 0), Category::Tainted);
        assert_eq!(
            a.policy().compaction_target_ok(&a.zones()[0], b + 15),
            target
        );
    }
}

#[test]
fn reserve_needs_clean_switch() {
    // SPB 0 tainted, its free pages only fragments of movable pageblocks (no free pageblock:
    // at its reserve); SPB 1 empty, or tainted by one unmovable page. The reserve keeps
    // compaction's targets out of SPB 0 while SPB 1 can still become a 1 GiB page; with
    // `reserve_needs_clean` and SPB 1 tainted there is nothing left to protect
    let rnc = on().with(SpbSwitch::ReserveNeedsClean);
    for (sw, taint1, target) in [
        (on(), false, false),
        (on(), true, false),
        (rnc, false, false),
        (rnc, true, true),
    ] {
        let mut a = alloc_with(2, sw, false, None);
        fill(&mut a, 0, true, |off| off % 8 == 7);
        let (b, b1) = (base(&a, 0), base(&a, 1));
        if taint1 {
            a.alloc_at(b1, 0, Gfp::KERNEL, b1 as u32).unwrap();
        }
        // the policy looks at the zones again in the background
        a.background(0, &mut NoEnv);
        assert_eq!(cat(&a, 1) == Category::Tainted, taint1);
        assert_eq!(
            a.policy().compaction_target_ok(&a.zones()[0], b + 15),
            target,
            "{taint1}"
        );
        // a movable request: the fullest SPB above its reserve, else the reserve's room
        let p = a
            .alloc(AllocRequest::new(0, Gfp::HIGHUSER_MOVABLE), &mut NoEnv)
            .unwrap();
        assert_eq!(spb_of(&a, p), if target { 0 } else { 1 }, "{taint1}");
        a.check().unwrap();
    }
    // a zone's reserve also protects the zones above it, whose requests fall back into it:
    // DMA32's one SPB tainted at its reserve keeps it while Normal has an empty SPB
    for (normal_tainted, target) in [(false, false), (true, true)] {
        let mut a = alloc_with(1, rnc, false, Some(tiny_two_zone(1)));
        // zone 0 is DMA32
        fill(&mut a, 0, true, |off| off % 8 == 7);
        let d = base(&a, 0);
        if normal_tainted {
            let n = a.zones()[1].spbs()[0].start_pfn();
            a.alloc_at(n, 0, Gfp::KERNEL, n as u32).unwrap();
        }
        a.background(0, &mut NoEnv);
        assert_eq!(
            a.policy().compaction_target_ok(&a.zones()[0], d + 15),
            target,
            "{normal_tainted}"
        );
    }
}

#[test]
fn contig_targets_switch() {
    // SPB 0 tainted with room, SPB 1 the cheapest candidate, SPB 2 the fullest clean SPB
    for (sw, to_tainted) in [(on(), false), (on().with(SpbSwitch::ContigTargets), true)] {
        let mut a = alloc_with(3, sw, false, None);
        let b = base(&a, 0);
        a.alloc_at(b, 0, Gfp::KERNEL, 0).unwrap();
        fill(&mut a, 1, false, |off| off >= 4);
        fill(&mut a, 2, false, |off| off >= 96);
        let mut env = TrackEnv::default();
        let p = a
            .alloc_contig(7, Gfp::HIGHUSER_MOVABLE, 99, &mut env)
            .unwrap();
        assert_eq!(spb_of(&a, p), 1);
        let movable_in_0 = a.zones()[0].spbs()[0].alloc_pages()[1];
        assert_eq!(movable_in_0 == 4, to_tainted, "{movable_in_0}");
    }
}

/// An embedder that moves everything, splits large blocks into base pages (new cookies from
/// 10 000) and claims `reclaimable` pages it never frees.
#[derive(Default)]
struct SplitEnv {
    moves: u64,
    splits: u32,
    reclaimable: u64,
}
impl Env for SplitEnv {
    fn migrate(&mut self, _f: Pfn, _t: Pfn, _o: u8, _c: u32) -> MigrateOutcome {
        self.moves += 1;
        MigrateOutcome::Moved
    }
    fn split(&mut self, _pfn: Pfn, order: u8, cookie: u32, out: &mut Vec<u32>) -> bool {
        self.splits += 1;
        out.push(cookie);
        out.extend((1..1u32 << order).map(|i| 10_000 + i));
        true
    }
    fn reclaimable_without_swap(&self) -> u64 {
        self.reclaimable
    }
}

/// SPB 1 holds one pageblock-sized movable block (a THP); SPBs 0 and 2 have free pages only as
/// single pages (one per pageblock), so that block has no whole target anywhere. Returns the
/// 1 GiB-sized allocation's SPB, the allocator and the embedder after it.
fn contig_thp_without_target(sw: SpbSwitches) -> (u64, Allocator, SplitEnv) {
    let mut a = alloc_with(3, sw, false, None);
    fill(&mut a, 0, false, |off| off % 8 == 0);
    fill(&mut a, 2, false, |off| off % 8 == 0);
    a.alloc_at(base(&a, 1), 3, Gfp::HIGHUSER_MOVABLE, 7)
        .unwrap();
    let mut env = SplitEnv::default();
    let p = a
        .alloc_contig(7, Gfp::HIGHUSER_MOVABLE, 99, &mut env)
        .unwrap();
    a.check().unwrap();
    (spb_of(&a, p), a, env)
}

#[test]
fn contig_split_switch() {
    for (sw, spb, splits, moves) in [
        (on(), 0, 0, 112),
        (on().with(SpbSwitch::ContigSplit), 1, 1, 8),
    ] {
        let (got, _, env) = contig_thp_without_target(sw);
        assert_eq!(got, spb);
        assert_eq!((env.splits, env.moves), (splits, moves));
    }
}

#[test]
fn contig_split_first_switch() {
    // with `contig_split` the THP's target reclaims first (the embedder frees nothing: one
    // stall of the contiguous allocation's targets), then it splits; with `contig_split_first`
    // it splits at once
    let split = on().with(SpbSwitch::ContigSplit);
    for (sw, target_stalls) in [(split, 1), (split.with(SpbSwitch::ContigSplitFirst), 0)] {
        let (spb, a, env) = contig_thp_without_target(sw);
        assert_eq!(spb, 1);
        assert_eq!((env.splits, env.moves), (1, 8));
        assert_eq!(a.stall_causes().contig_targets, target_stalls);
    }
}

#[test]
fn contig_fit_switch() {
    // SPB 0: 70 movable pages, 58 free; SPB 1: 80 movable, 48 free. Neither fits in the free
    // memory outside it: without the switch both are tried and pages move for nothing.
    let fixture = |sw: SpbSwitches| {
        let mut a = alloc_with(2, sw, false, None);
        fill(&mut a, 0, false, |off| off >= 70);
        fill(&mut a, 1, false, |off| off >= 80);
        a
    };
    let fit = on().with(SpbSwitch::ContigFit);
    for (sw, reclaimable, moves, failed, no_room) in [
        (on(), 0, 48 + 106, 2, 0),
        (fit, 0, 0, 0, 2),
        // the embedder promises reclaim it cannot deliver: the first attempt runs out of
        // targets, and the zone's later candidate (more movable pages) is not tried
        (fit, 1000, 48, 1, 0),
    ] {
        let mut a = fixture(sw);
        let mut env = SplitEnv {
            reclaimable,
            ..SplitEnv::default()
        };
        let e = a
            .alloc_contig(7, Gfp::HIGHUSER_MOVABLE, 99, &mut env)
            .unwrap_err();
        let ContigError::Failed(st) = e else {
            panic!("{e}")
        };
        assert_eq!(
            (env.moves, st.migrate_failed, st.no_room),
            (moves, failed, no_room),
            "{e}"
        );
        a.check().unwrap();
    }
    // a candidate that fits is tried: SPB 1 with 50 movable pages against 58 free outside
    let mut a = alloc_with(2, fit, false, None);
    fill(&mut a, 0, false, |off| off >= 70);
    fill(&mut a, 1, false, |off| off >= 50);
    let mut env = SplitEnv::default();
    let p = a
        .alloc_contig(7, Gfp::HIGHUSER_MOVABLE, 99, &mut env)
        .unwrap();
    assert_eq!((spb_of(&a, p), env.moves), (1, 50));
}

#[test]
fn contig_fit_reserves_switch() {
    // DMA32 (one SPB) below Normal (40 SPBs): DMA32 keeps back 40 * 128 / 256 = 20 pages from
    // requests that may use Normal (its lowmem_reserve), so of its 30 free pages 10 can be
    // migration targets. Normal is full of movable pages but for its last SPB, which holds
    // `movable` of them. 8 fit there: that SPB is obtained. 15 do not: the Normal SPB is
    // passed over and DMA32's SPB (98 movable pages, room in the Normal SPB's free pages) is
    // obtained with 98 moves. Without `contig_fit_reserves`, 15 < 30 passes the test: 10 of
    // the Normal SPB's pages move for nothing before DMA32's SPB is emptied (118 moves).
    let no_reserves = on().with(SpbSwitch::ContigFit);
    let fit = no_reserves.with(SpbSwitch::ContigFitReserves);
    // (switches, movable pages of the Normal SPB, obtained there (else DMA32's), pages moved)
    for (sw, movable, in_normal, moves) in [
        (fit, 8, true, 8),
        (fit, 15, false, 98),
        (no_reserves, 8, true, 8),
        (no_reserves, 15, false, 118),
    ] {
        let mut a = alloc_with(0, sw, false, Some(tiny_two_zone(40)));
        let s = a.geo().spb_pages();
        let (dma32, normal) = (s, 2 * s);
        let take = |a: &mut Allocator, p: Pfn| {
            a.alloc_at(p, 0, Gfp::HIGHUSER_MOVABLE, p as u32).unwrap();
        };
        for off in 0..SPB - 30 {
            take(&mut a, dma32 + off);
        }
        for p in normal..normal + 39 * s {
            take(&mut a, p);
        }
        let last = normal + 39 * s;
        for off in 0..movable {
            take(&mut a, last + off);
        }
        let mut env = SplitEnv::default();
        let p = a
            .alloc_contig(7, Gfp::HIGHUSER_MOVABLE, 99, &mut env)
            .unwrap();
        let want = if in_normal { last } else { dma32 };
        assert_eq!((p, env.moves), (want, moves), "movable {movable}");
        a.check().unwrap();
    }
}

/// DMA32 (one SPB) below Normal (one SPB). Normal is tainted: its first pageblock is labelled
/// UNMOVABLE and holds 6 unmovable pages and 2 free ones, every other page is movable. DMA32
/// keeps its last `dma32_free` pages free (clean memory) and is full of movable pages below.
fn steal_fixture(sw: SpbSwitches, dma32_free: u64) -> (Allocator, Pfn) {
    let mut a = alloc_with(0, sw, false, Some(tiny_two_zone(1)));
    let s = a.geo().spb_pages();
    let (dma32, normal) = (s, 2 * s);
    a.label_pageblock(normal, Mt::Unmovable).unwrap();
    for off in 0..SPB {
        let g = match off {
            0..=5 => Gfp::KERNEL,
            6 | 7 => continue,
            _ => Gfp::HIGHUSER_MOVABLE,
        };
        a.alloc_at(normal + off, 0, g, (normal + off) as u32)
            .unwrap();
    }
    for off in 0..SPB - dma32_free {
        a.alloc_at(dma32 + off, 0, Gfp::HIGHUSER_MOVABLE, (dma32 + off) as u32)
            .unwrap();
    }
    assert_eq!(a.zones()[1].spbs()[0].category(), Category::Tainted);
    (a, normal)
}

#[test]
fn movable_zone_order_switch() {
    // clean memory in DMA32: spb steals one of the tainted SPB's two free unmovable-block pages;
    // with movable_zone_order the movable request takes DMA32's clean memory and leaves that
    // room free (steal_last alone does not touch requests)
    for (sw, steals) in [
        (off(SpbSwitch::StealLast), true),
        (on(), true),
        (on().with(SpbSwitch::MovableZoneOrder), false),
    ] {
        let (mut a, normal) = steal_fixture(sw, 8);
        let p = a
            .alloc(AllocRequest::new(0, Gfp::HIGHUSER_MOVABLE), &mut NoEnv)
            .unwrap();
        assert_eq!(p >= normal, steals, "served in Normal only when it steals");
        assert_eq!(a.vm().get(Vm::ExtfragSteal) > 0, steals);
        assert_eq!(
            a.zones()[1].free_pages() == 2,
            !steals,
            "the unmovable room"
        );
        assert_eq!(stalls(&a) + a.vm().get(Vm::AllocstallDma32), 0);
    }
    // no clean memory anywhere: the request still steals, in the fast path (no reclaim, no
    // failure), after both zones were tried without fragmenting
    let (mut a, normal) = steal_fixture(on().with(SpbSwitch::MovableZoneOrder), 0);
    let p = a
        .alloc(AllocRequest::new(0, Gfp::HIGHUSER_MOVABLE), &mut NoEnv)
        .unwrap();
    assert!(p >= normal);
    assert_eq!(a.vm().get(Vm::ExtfragSteal), 1);
    assert_eq!(stalls(&a) + a.vm().get(Vm::AllocstallDma32), 0);
}

#[test]
fn steal_last_switch() {
    // Normal: SPB 0 tainted, one free pageblock left, the rest movable (the defrag worker empties
    // it); SPB 1 tainted with three free pages in its unmovable pageblock and no other free
    // page. DMA32 has four free pageblocks (clean memory). The defrag worker's migration targets
    // steal SPB 1's unmovable room without steal_last; with it (spb's default) or with
    // evac_no_steal they go to DMA32.
    // With DMA32 full, steal_last steals after all and evac_no_steal stops the defrag run.
    let (without, last, none) = (
        off(SpbSwitch::StealLast),
        on(),
        off(SpbSwitch::StealLast).with(SpbSwitch::EvacNoSteal),
    );
    assert!(on().on(SpbSwitch::StealLast), "on in spb's default set");
    for (sw, dma32_free, steals, moves) in [
        (without, 32, true, true),
        (last, 32, false, true),
        (none, 32, false, true),
        (without, 0, true, true),
        (last, 0, true, true),
        (none, 0, false, false),
    ] {
        let mut a = alloc_with(0, sw, false, Some(tiny_two_zone(2)));
        let s = a.geo().spb_pages();
        let (dma32, n0, n1) = (s, 2 * s, 3 * s);
        let mut env = TrackEnv::default();
        let mut put = |a: &mut Allocator, p: Pfn, g: Gfp| {
            a.alloc_at(p, 0, g, p as u32).unwrap();
            env.loc.insert(p as u32, (p, 0));
        };
        for off in 0..SPB - 8 {
            let g = if off == 0 {
                Gfp::KERNEL
            } else {
                Gfp::HIGHUSER_MOVABLE
            };
            put(&mut a, n0 + off, g);
        }
        a.label_pageblock(n1, Mt::Unmovable).unwrap();
        for off in 0..SPB {
            match off {
                0..=4 => put(&mut a, n1 + off, Gfp::KERNEL),
                5..=7 => {}
                _ => put(&mut a, n1 + off, Gfp::HIGHUSER_MOVABLE),
            }
        }
        for off in 0..SPB - dma32_free {
            put(&mut a, dma32 + off, Gfp::HIGHUSER_MOVABLE);
        }
        // a reclaimable slab page claims SPB 0's last free pageblock (PASS_2): SPB 0 is now
        // below its defrag threshold
        let p = a
            .alloc(
                AllocRequest::new(0, Gfp::KERNEL | Gfp::RECLAIMABLE),
                &mut env,
            )
            .unwrap();
        assert_eq!(p & !(s - 1), n0);
        let before = a.zones()[1].spbs()[1].free_pages();
        a.background(1, &mut env);
        assert_eq!(
            a.vm().get(Vm::SpbDefragPagesMoved) > 0,
            moves,
            "the defrag worker moved pages"
        );
        assert_eq!(a.vm().get(Vm::ExtfragSteal) > 0, steals);
        assert_eq!(
            a.zones()[1].spbs()[1].free_pages() == before,
            !steals,
            "SPB 1's unmovable room: {} -> {}",
            before,
            a.zones()[1].spbs()[1].free_pages()
        );
        if !steals && moves {
            assert!(a.zones()[0].free_pages() < 32, "targets in DMA32");
        }
        a.check().unwrap();
    }
}

#[test]
fn worker_no_reclaim_switch() {
    // SPB 0 tainted, its one free pageblock then claimed: the defrag worker empties a pageblock
    // of it. SPBs 1 and 2 are full of movable pages, so the worker's migration targets need
    // reclaim (the embedder frees SPB 2's first pageblock). Without the switch the worker
    // reclaims (a stall counted in the worker) and moves; with it, no reclaim and no stall:
    // kswapd is woken and the worker moves nothing.
    for (sw, reclaims) in [(on(), true), (on().with(SpbSwitch::WorkerNoReclaim), false)] {
        let mut a = alloc_with(3, sw, false, None);
        fill(&mut a, 0, true, |off| (120..128).contains(&off));
        fill(&mut a, 1, false, |_| false);
        fill(&mut a, 2, false, |_| false);
        a.alloc(AllocRequest::new(0, Gfp::KERNEL), &mut NoEnv)
            .unwrap();
        assert!(a.pending().kswapd.is_none());
        let b2 = base(&a, 2);
        let mut env = Reclaim::pages(b2, 0..8);
        a.background(1, &mut env);
        let w = *a.background_work();
        assert_eq!(w.policy_workers_stalls > 0, reclaims, "{w:?}");
        assert_eq!(a.stall_causes().workers, w.policy_workers_stalls);
        assert_eq!(w.policy_workers_reclaimed > 0, reclaims, "{w:?}");
        assert_eq!(a.vm().get(Vm::SpbDefragPagesMoved) > 0, reclaims);
        assert_eq!(
            a.pending().kswapd.is_some(),
            !reclaims,
            "kswapd woken instead"
        );
        a.check().unwrap();
    }
}

#[test]
fn contig_pinned_switch() {
    // SPB 0: 40 movable pages, the last one pinned; SPB 1: 50 movable pages. SPB 0 is tried
    // first (fewest movable pages): without the switch its first 39 pages move for nothing and
    // SPB 1 is emptied after, with them; with it SPB 0 is skipped before anything moves.
    for (sw, moves, pinned) in [
        (on(), 39 + 89, 0),
        (on().with(SpbSwitch::ContigPinned), 50, 1),
    ] {
        let mut a = alloc_with(2, sw, false, None);
        fill(&mut a, 0, false, |off| off >= 40);
        fill(&mut a, 1, false, |off| off >= 50);
        let mut env = TrackEnv::default();
        env.pinned.insert((base(&a, 0) + 39) as u32);
        let p = a
            .alloc_contig(7, Gfp::HIGHUSER_MOVABLE, 99, &mut env)
            .unwrap();
        assert_eq!((spb_of(&a, p), env.moves), (1, moves));
        a.check().unwrap();
        // nothing else to take: the error names the skipped candidate
        let e = a
            .alloc_contig(7, Gfp::HIGHUSER_MOVABLE, 98, &mut env)
            .unwrap_err();
        let ContigError::Failed(st) = e else {
            panic!("{e}")
        };
        assert_eq!(st.pinned, pinned, "{e}");
        if pinned > 0 {
            assert!(e.to_string().contains("1 holding pinned pages"), "{e}");
        }
    }
}

#[test]
fn contig_clean_first_switch() {
    // SPB 0: 40 movable pages, none of them clean page cache; SPB 1: 50 movable pages, 45 of
    // them clean page cache. Without the switch the request empties SPB 0 (fewest movable
    // pages: 40 migrations); with it SPB 1 (5 pages need a target: 5 migrations, 45 dropped).
    for (sw, spb, moves, dropped) in [
        (on(), 0, 40, 0),
        (on().with(SpbSwitch::ContigCleanFirst), 1, 5, 45),
    ] {
        let mut a = alloc_with(2, sw, false, None);
        fill(&mut a, 0, false, |off| off >= 40);
        fill(&mut a, 1, false, |off| off >= 50);
        let mut env = TrackEnv::default();
        let b1 = base(&a, 1);
        env.clean.extend((5..50).map(|off| (b1 + off) as u32));
        let p = a
            .alloc_contig(7, Gfp::HIGHUSER_MOVABLE, 99, &mut env)
            .unwrap();
        assert_eq!(
            (spb_of(&a, p), env.moves, env.reclaimed_clean),
            (spb, moves, dropped)
        );
        a.check().unwrap();
    }
}

/// 96 tiny SPBs with per-CPU lists (batch 3 or more), as `alloc_with` but without the checker
/// after every one of the 12 288 fills the refill tests make.
fn refill_machine(sw: SpbSwitches) -> Allocator {
    let mut c = Config {
        policy: PolicyConfig {
            kind: PolicyKind::Spb,
            spb: sw,
        },
        check_every: 0,
        ..cfg(PolicyKind::Spb)
    };
    c.watermarks.min_free_kbytes = Some(0);
    let a = Allocator::new(&tiny(96), c).unwrap();
    assert!(a.zones()[0].pcp()[0].batch() >= 3);
    a
}

#[test]
fn refill_no_steal_switch() {
    // 96 tiny SPBs (batch 3): every page in use but in pageblocks 0-7 of SPB 0, unmovable
    // blocks of 5 unmovable pages and 3 free ones each (too few to claim the block). A movable
    // order-0 request on a CPU with an empty list refills it: every page it gets is stolen from
    // those unmovable pageblocks. Without the switch the refill steals its whole batch (the
    // caller gets one, the rest stay listed); with it the refill stops at the first steal: the
    // caller's page and nothing listed.
    for (sw, listed) in [(on(), true), (on().with(SpbSwitch::RefillNoSteal), false)] {
        let mut a = refill_machine(sw);
        // SPB 0: pageblocks 0-7 unmovable, 5 pages in use and 3 free each; the rest movable
        let b0 = base(&a, 0);
        for pb in 0..8 {
            a.label_pageblock(b0 + 8 * pb, Mt::Unmovable).unwrap();
        }
        for off in 0..SPB {
            if off < 64 && off % 8 >= 5 {
                continue;
            }
            let gfp = if off < 64 {
                Gfp::KERNEL
            } else {
                Gfp::HIGHUSER_MOVABLE
            };
            a.alloc_at(b0 + off, 0, gfp, (b0 + off) as u32).unwrap();
        }
        for s in 1..96 {
            fill(&mut a, s, false, |_| false);
        }
        a.drain_all_pcp();
        let steals = a.vm().get(Vm::ExtfragSteal);
        let p = a
            .alloc(
                AllocRequest::new(0, Gfp::HIGHUSER_MOVABLE).cpu(0),
                &mut NoEnv,
            )
            .unwrap();
        assert!(p < b0 + 64, "from the pageblocks with free pages");
        assert!(a.vm().get(Vm::ExtfragSteal) > steals, "a steal");
        let n = a.zones()[0].pcp()[0].count();
        assert_eq!(n > 0, listed, "{sw:?}: {n} pages listed after the refill");
        a.check().unwrap();
    }
}

#[test]
fn refill_no_taint_switch() {
    // 96 tiny SPBs (batch 3): SPB 0 tainted and full, every other SPB clean and full of movable
    // pages but for one free page (too few to claim its pageblock). An unmovable order-0 request
    // on a CPU with an empty list can only be served by a steal in a clean SPB once NOFRAGMENT
    // is dropped. Without the switch the refill steals its whole batch, one page from each of
    // as many clean SPBs, which the cache's next allocations taint; with it the caller's page
    // is the only one taken: one SPB tainted.
    for (sw, more) in [(on(), true), (on().with(SpbSwitch::RefillNoTaint), false)] {
        let mut a = refill_machine(sw);
        fill(&mut a, 0, true, |_| false);
        for s in 1..96 {
            fill(&mut a, s, false, |off| off == 1);
        }
        a.drain_all_pcp();
        let tainted = |a: &Allocator| (0..96).filter(|&s| cat(a, s) == Category::Tainted).count();
        assert_eq!(tainted(&a), 1);
        let req = AllocRequest::new(0, Gfp::KERNEL).cpu(0);
        let p = a.alloc(req, &mut NoEnv).unwrap();
        assert_ne!(spb_of(&a, p), 0, "a steal in a clean SPB");
        assert_eq!(tainted(&a), 2, "the caller's page taints its SPB");
        let listed = a.zones()[0].pcp()[0].count();
        assert_eq!(
            listed > 0,
            more,
            "{sw:?}: {listed} pages listed after the refill"
        );
        // the cache's pages, allocated: each taints one more SPB
        for _ in 0..listed {
            a.alloc(req, &mut NoEnv).unwrap();
        }
        assert_eq!(tainted(&a), 2 + listed as usize, "{sw:?}");
        a.check().unwrap();
    }
}

#[test]
fn refill_one_taint_switch() {
    // As `refill_no_taint_switch`, but every clean SPB has three free pages in one pageblock
    // (still too few to claim it). An unmovable refill with NOFRAGMENT dropped: without a switch
    // its batch steals from several clean SPBs; with `refill_no_taint` only the caller's page is
    // taken; with `refill_one_taint` the rest of the batch comes from the caller's SPB alone.
    for (sw, one_spb, listed) in [
        (on(), false, true),
        (on().with(SpbSwitch::RefillNoTaint), true, false),
        (on().with(SpbSwitch::RefillOneTaint), true, true),
    ] {
        let mut a = refill_machine(sw);
        fill(&mut a, 0, true, |_| false);
        for s in 1..96 {
            fill(&mut a, s, false, |off| (1..4).contains(&off));
        }
        a.drain_all_pcp();
        let tainted = |a: &Allocator| (0..96).filter(|&s| cat(a, s) == Category::Tainted).count();
        let req = AllocRequest::new(0, Gfp::KERNEL).cpu(0);
        let p = a.alloc(req, &mut NoEnv).unwrap();
        let n = a.zones()[0].pcp()[0].count();
        assert_eq!(n > 0, listed, "{sw:?}: {n} listed");
        let mut spbs = vec![spb_of(&a, p)];
        for _ in 0..n {
            let q = a.alloc(req, &mut NoEnv).unwrap();
            spbs.push(spb_of(&a, q));
        }
        spbs.dedup();
        assert_eq!(spbs.len() == 1, one_spb, "{sw:?}: pages from SPBs {spbs:?}");
        assert_eq!(tainted(&a), 1 + spbs.len(), "{sw:?}");
        a.check().unwrap();
    }
}

#[test]
fn movable_empty_first_switch() {
    // SPB 0 tainted by one unmovable page and otherwise free, SPB 1 clean and full, SPB 2 empty
    // (the tainted reserve off, so SPB 0's room is open to movable requests). A movable request
    // no clean SPB can serve goes to the tainted SPB's room without the switch, to the empty SPB
    // with it (the tainted room is left to non-movable growth).
    let sw = off(SpbSwitch::TaintedReserve);
    for (sw, want) in [(sw, 0), (sw.with(SpbSwitch::MovableEmptyFirst), 2)] {
        let mut a = alloc_with(3, sw, false, None);
        fill(&mut a, 0, true, |off| off > 0);
        fill(&mut a, 1, false, |_| false);
        assert_eq!(cat(&a, 2), Category::Empty);
        let p = a
            .alloc(AllocRequest::new(0, Gfp::HIGHUSER_MOVABLE), &mut NoEnv)
            .unwrap();
        assert_eq!(spb_of(&a, p), want, "{sw:?}");
        a.check().unwrap();
    }
}

#[test]
fn taint_roomy_switch() {
    // SPB 0 tainted and full; SPB 1 clean with one free page (the fullest clean SPB), SPB 2
    // clean with 3 free pages in each of its first eight pageblocks (24: more than a
    // pageblock's worth, none claimable); the rest full. An unmovable request can only steal in a clean SPB: the
    // fullest, SPB 1, without the switch (where the next request finds no room), SPB 2 with it.
    for (sw, want) in [(on(), 1), (on().with(SpbSwitch::TaintRoomy), 2)] {
        let mut a = alloc_with(8, sw, false, None);
        fill(&mut a, 0, true, |_| false);
        fill(&mut a, 1, false, |off| off == 1);
        fill(&mut a, 2, false, |off| off < 8 * PB && off % PB < 3);
        for s in 3..8 {
            fill(&mut a, s, false, |_| false);
        }
        let p = a
            .alloc(AllocRequest::new(0, Gfp::KERNEL), &mut NoEnv)
            .unwrap();
        assert_eq!(spb_of(&a, p), want, "{sw:?}");
        assert_eq!(cat(&a, want), Category::Tainted);
        assert_eq!(cat(&a, 3 - want), Category::Clean);
        a.check().unwrap();
    }
}

/// SPB 0 of `a`: `unmovable` unmovable pages at the start of pageblock 0, then one movable block
/// of pageblock order (a THP) in every other pageblock. Returns the SPB's first pfn.
fn thp_spb(a: &mut Allocator, unmovable: u64) -> Pfn {
    let b = base(a, 0);
    for off in 0..unmovable {
        a.alloc_at(b + off, 0, Gfp::KERNEL, (b + off) as u32)
            .unwrap();
    }
    for pb in 1..SPB / PB {
        let p = b + pb * PB;
        a.alloc_at(
            p,
            PB.trailing_zeros() as u8,
            Gfp::HIGHUSER_MOVABLE,
            p as u32,
        )
        .unwrap();
    }
    b
}

#[test]
fn evacuate_thp_switch() {
    // SPB 0 tainted and full: pageblock 0 holds unmovable pages, every other pageblock one
    // movable block of pageblock order (a THP). SPBs 1 and 2 are empty. A kernel request finds
    // no room in SPB 0 and starts its defrag. The series' evacuation moves no block of
    // pageblock order, so SPB 0 gives nothing back; with `evacuate_thp` its defrag moves THPs to
    // free pageblocks of the clean SPBs, one per pageblock of non-movable memory the zone has
    // held (here one: the kernel request's page lands outside SPB 0).
    for (sw, moves) in [(on(), false), (on().with(SpbSwitch::EvacuateThp), true)] {
        let mut a = alloc_with(3, sw, false, None);
        let b = thp_spb(&mut a, PB);
        assert_eq!(cat(&a, 0), Category::Tainted);
        a.alloc(AllocRequest::new(0, Gfp::KERNEL), &mut NoEnv)
            .unwrap();
        let mut env = TrackEnv::default();
        for t in 1..8 {
            a.background(t * 1_000_000_000, &mut env);
        }
        let s = &a.zones()[0].spbs()[0];
        let thps_left = (1..SPB / PB)
            .filter(|pb| a.zones()[0].pb(b + pb * PB).alloc()[Mt::Movable.idx()] == PB as u16)
            .count() as u64
            * PB;
        if moves {
            assert_eq!(
                thps_left,
                SPB - 2 * PB,
                "one THP moved: the zone's one pageblock of non-movable memory pays for one"
            );
            assert_eq!(s.pb_free(), 1);
        } else {
            assert_eq!(thps_left, SPB - PB, "no THP moves without the switch");
        }
        a.check().unwrap();
    }
}

#[test]
fn split_before_taint_switch() {
    // SPB 0 tainted and full: pageblock 0 unmovable, every other pageblock a THP. SPBs 1 and 2
    // are full of movable pages but for one free page per pageblock: no free pageblock, so no
    // THP can move whole, and no pageblock there can be claimed. A kernel request finds no room
    // in SPB 0 and `taint_when_full` finds no pageblock it can evacuate: without the switch it
    // steals a page of a clean SPB (tainting it); with it one THP of SPB 0 is split, its base
    // pages move into the fragments, and the request is served from the pageblock it left.
    let next = on()
        .without(SpbSwitch::TargetedEvacuation)
        .with(SpbSwitch::TaintWhenFull);
    for (sw, splits) in [
        (next, false),
        (next.with(SpbSwitch::SplitBeforeTaint), true),
    ] {
        let mut a = alloc_with(3, sw, false, None);
        thp_spb(&mut a, PB);
        fill(&mut a, 1, false, |off| off % PB == 0);
        fill(&mut a, 2, false, |off| off % PB == 0);
        let mut env = SplitEnv::default();
        let p = a
            .alloc(AllocRequest::new(0, Gfp::KERNEL), &mut env)
            .unwrap();
        let clean = (1..3).filter(|&s| cat(&a, s) == Category::Clean).count();
        if splits {
            assert_eq!(spb_of(&a, p), 0, "served inside the tainted SPB");
            assert_eq!(clean, 2);
            assert_eq!((env.splits, env.moves), (1, PB));
        } else {
            assert_ne!(spb_of(&a, p), 0);
            assert_eq!(clean, 1, "a clean SPB tainted");
            assert_eq!((env.splits, env.moves), (0, 0));
        }
        a.check().unwrap();
    }
}

#[test]
fn evacuate_thp_keeps_the_supply_band() {
    // As `evacuate_thp_switch` (the kernel request fills SPB 0's unmovable pageblock), but SPBs
    // 1 and 2 are full of movable pages except single-page fragments and one free pageblock: the
    // zone's free pageblocks do not exceed the THP supply's band (at least one), so no THP
    // leaves SPB 0 (the last free pageblock is left to the THP faults that need it).
    let mut a = alloc_with(3, on().with(SpbSwitch::EvacuateThp), false, None);
    let b = thp_spb(&mut a, PB - 1);
    fill(&mut a, 1, false, |_| false);
    // one free pageblock, and free pages above the min watermark in fragments
    fill(&mut a, 2, false, |off| {
        off >= SPB - PB || (off < 64 && off % 2 == 1)
    });
    // the kernel request takes SPB 0's last free page and starts its defrag
    let p = a
        .alloc(AllocRequest::new(0, Gfp::KERNEL), &mut NoEnv)
        .unwrap();
    assert_eq!(spb_of(&a, p), 0);
    let mut env = TrackEnv::default();
    for t in 1..8 {
        a.background(t * 1_000_000_000, &mut env);
    }
    let thps_left = (1..SPB / PB)
        .filter(|pb| a.zones()[0].pb(b + pb * PB).alloc()[Mt::Movable.idx()] == PB as u16)
        .count() as u64;
    assert_eq!(thps_left, SPB / PB - 1, "no THP moved into the band");
    a.check().unwrap();
}

#[test]
fn evacuate_reclaim_clean_switch() {
    // SPB 0 tainted: pageblock 0 holds unmovable pages, the other pageblocks clean page cache.
    // SPBs 1 and 2 are full of movable pages: no migration target anywhere. The kernel request
    // takes SPB 0's last free page and starts its defrag. Without the switch the defrag finds
    // no target and moves nothing; with `evacuate_reclaim_clean` it reclaims the clean pages
    // instead, as a contiguous allocation does with its range, and SPB 0 gets pageblocks back.
    for (sw, reclaims) in [
        (on(), false),
        (on().with(SpbSwitch::EvacuateReclaimClean), true),
    ] {
        let mut a = alloc_with(3, sw, false, None);
        let b = base(&a, 0);
        let mut env = TrackEnv::default();
        for off in 0..SPB {
            if off < PB - 1 {
                a.alloc_at(b + off, 0, Gfp::KERNEL, (b + off) as u32)
                    .unwrap();
            } else if off >= PB {
                a.alloc_at(b + off, 0, Gfp::HIGHUSER_MOVABLE, (b + off) as u32)
                    .unwrap();
                env.clean.insert((b + off) as u32);
            }
        }
        fill(&mut a, 1, false, |_| false);
        fill(&mut a, 2, false, |_| false);
        let p = a
            .alloc(AllocRequest::new(0, Gfp::KERNEL), &mut NoEnv)
            .unwrap();
        assert_eq!(spb_of(&a, p), 0);
        for t in 1..8 {
            a.background(t * 1_000_000_000, &mut env);
        }
        let s = &a.zones()[0].spbs()[0];
        assert_eq!(env.moves, 0, "{sw:?}: no target to move to");
        if reclaims {
            assert!(env.reclaimed_clean >= PB, "a pageblock's worth reclaimed");
            assert!(s.pb_free() >= 1, "SPB 0 got a free pageblock back");
        } else {
            assert_eq!(env.reclaimed_clean, 0);
            assert_eq!(s.pb_free(), 0, "nothing left SPB 0");
        }
        a.check().unwrap();
    }
}

/// Records kswapd's reclaim requests and frees nothing.
#[derive(Default)]
struct KswapdAsks(Vec<ReclaimRequest>);

impl Env for KswapdAsks {
    fn reclaim(&mut self, req: ReclaimRequest, _out: &mut Vec<FreedBlock>) {
        if req.who == Reclaimer::Kswapd {
            self.0.push(req);
        }
    }
}

/// spb-next's `kswapd_movable_free`: kswapd leaves the pages on unmovable and reclaimable free
/// lists out of a zone's free pages. A zone whose free pages above the high watermark are all
/// on such lists is balanced without the switch and not with it; kswapd then reclaims for it,
/// but shrinks no slab (whose freed pages would land on those lists), since the zone is above
/// its high watermark counting every free page.
#[test]
fn kswapd_movable_free_leaves_non_movable_free_lists_out_of_the_balance() {
    for (sw_on, balanced) in [(false, true), (true, false)] {
        let mut sw = SpbSwitches::next_on();
        sw.set(SpbSwitch::KswapdMovableFree, sw_on);
        let mut c = Config {
            policy: PolicyConfig {
                kind: PolicyKind::SpbNext,
                spb: sw,
            },
            pcp: false,
            ..cfg(PolicyKind::SpbNext)
        };
        c.watermarks.min_free_kbytes = Some(16);
        let mut a = Allocator::new(&tiny(2), c).unwrap();
        let kernel: Vec<Pfn> = (0..2 * PB)
            .map(|_| {
                a.alloc(AllocRequest::new(0, Gfp::KERNEL), &mut NoEnv)
                    .unwrap()
            })
            .collect();
        while a
            .alloc(AllocRequest::new(0, Gfp::HIGHUSER_MOVABLE), &mut NoEnv)
            .is_ok()
        {}
        for p in kernel {
            a.free(p, 0, 0).unwrap();
        }
        let z = &a.zones()[0];
        let high = z.wmark()[2];
        let on_list = |mt: Mt| -> u64 {
            z.nr_free()
                .iter()
                .enumerate()
                .map(|(o, n)| n[mt as usize] << o)
                .sum()
        };
        let non_movable = on_list(Mt::Unmovable) + on_list(Mt::Reclaimable);
        assert!(
            z.free_pages() > high,
            "{} free, high {high}",
            z.free_pages()
        );
        assert!(
            z.free_pages() - non_movable < high,
            "{} free, {non_movable} of them on non-movable lists, high {high}",
            z.free_pages()
        );
        assert_eq!(a.pgdat_balanced(0), balanced, "switch {sw_on}");
        let mut env = KswapdAsks::default();
        a.wake_kswapd(0);
        assert!(a.kswapd_turn(&mut env));
        if balanced {
            assert!(env.0.is_empty(), "balanced: kswapd reclaims nothing");
        } else {
            assert!(
                !env.0.is_empty(),
                "short of movable free pages: kswapd reclaims"
            );
            assert!(env.0.iter().all(|r| !r.shrink_slab), "but shrinks no slab");
        }
    }
}

/// The set-up of the evacuation-target tests: SPB 0 tainted (pageblock 0 unmovable, the
/// other pageblocks movable base pages), SPB 1 full of movable pages but for four single free
/// pages (fragments), SPB 2 full while a kernel request takes SPB 0's last free page and starts
/// its defrag, then its first `give_back` pages freed.
fn defrag_with_fragments(sw: SpbSwitches, give_back: u64) -> Allocator {
    let mut a = alloc_with(3, sw, false, None);
    let b = base(&a, 0);
    for off in 0..SPB {
        let gfp = if off < PB - 1 {
            Gfp::KERNEL
        } else if off >= PB {
            Gfp::HIGHUSER_MOVABLE
        } else {
            continue;
        };
        a.alloc_at(b + off, 0, gfp, (b + off) as u32).unwrap();
    }
    fill(&mut a, 1, false, |off| off % 32 == 5);
    fill(&mut a, 2, false, |_| false);
    let p = a
        .alloc(AllocRequest::new(0, Gfp::KERNEL), &mut NoEnv)
        .unwrap();
    assert_eq!(spb_of(&a, p), 0);
    let b2 = base(&a, 2);
    for q in b2..b2 + give_back {
        a.free(q, 0, 0).unwrap();
    }
    a
}

#[test]
fn evacuate_keep_blocks_switch() {
    // SPB 0 tainted: pageblock 0 holds unmovable pages, the other pageblocks movable base
    // pages. SPB 1 is full of movable pages but for four single free pages (fragments); SPB 2
    // is full while the kernel request takes SPB 0's last free page and starts its defrag, then
    // emptied (free pageblocks only). Without the switch the defrag's targets take the
    // fragments, then split SPB 2's free pageblocks; with `evacuate_keep_blocks` they take the
    // fragments only, and SPB 2 keeps every pageblock whole.
    for (keep, sw) in [
        (false, on()),
        (true, on().with(SpbSwitch::EvacuateKeepBlocks)),
    ] {
        let mut a = defrag_with_fragments(sw, SPB);
        let mut env = TrackEnv::default();
        for t in 1..8 {
            a.background(t * 1_000_000_000, &mut env);
        }
        let whole = u64::from(a.zones()[0].spbs()[2].pb_free());
        if keep {
            assert_eq!(env.moves, 4, "the four fragments, then no target");
            assert_eq!(whole, SPB / PB, "SPB 2 keeps every pageblock whole");
        } else {
            assert!(env.moves > 4, "past the fragments: {}", env.moves);
            assert!(whole < SPB / PB, "a free pageblock of SPB 2 was split");
        }
        a.check().unwrap();
    }
}

#[test]
fn pin_migrate_switch() {
    // SPB 0 tainted (one unmovable page, the rest free), SPB 1 clean (half movable), SPB 2
    // empty. A long-term pin of a movable page in SPB 1 moves it into SPB 0 with
    // `pin_migrate`, nowhere without; SPB 2 stays empty either way.
    for pin_migrate in [false, true] {
        let mut sw = on();
        sw.set(SpbSwitch::PinMigrate, pin_migrate);
        let mut a = alloc_with(3, sw, false, None);
        fill(&mut a, 0, true, |off| off > 0);
        fill(&mut a, 1, false, |off| off % 2 == 1);
        let p = base(&a, 1);
        let mut env = TrackEnv::default();
        env.loc.insert(p as u32, (p, 0));
        let moved = a.longterm_pin(p, &mut env);
        assert_eq!(moved, pin_migrate);
        assert_eq!(env.moves, pin_migrate as u64);
        let now = env.loc[&(p as u32)].0;
        assert_eq!(spb_of(&a, now), if pin_migrate { 0 } else { 1 });
        assert_eq!(cat(&a, 1), Category::Clean);
        assert_eq!(cat(&a, 2), Category::Empty);
        // a page already in a tainted SPB stays where it is
        if pin_migrate {
            assert!(!a.longterm_pin(now, &mut env), "SPB 0 is tainted already");
        }
        a.check().unwrap();
    }
    // no room in a tainted SPB: the pins gather in the fullest other clean SPB (the pin SPB),
    // and pin in place when only their own SPB and empty ones have room
    let mut a = alloc_with(4, on().with(SpbSwitch::PinMigrate), false, None);
    fill(&mut a, 0, true, |_| false);
    fill(&mut a, 1, false, |off| off % 2 == 1);
    fill(&mut a, 2, false, |off| off % 8 == 1);
    let mut env = TrackEnv::default();
    for k in 0..4 {
        let p = base(&a, 1) + 2 * k;
        env.loc.insert(p as u32, (p, 0));
        assert!(a.longterm_pin(p, &mut env));
        assert_eq!(
            spb_of(&a, env.loc[&(p as u32)].0),
            2,
            "the fullest other clean SPB"
        );
    }
    // a page of the pin SPB stays; SPB 2 is the only other clean SPB with room and now full,
    // and SPB 1's own pages find nothing but their SPB and the empty SPB 3
    assert!(!a.longterm_pin(base(&a, 2), &mut env));
    for k in 4..16 {
        let p = base(&a, 1) + 2 * k;
        env.loc.insert(p as u32, (p, 0));
        a.longterm_pin(p, &mut env);
    }
    assert_eq!(env.moves, 16, "SPB 2's 16 free pages, then nothing");
    assert_eq!(cat(&a, 3), Category::Empty, "no empty SPB opened for a pin");
    a.check().unwrap();
}

#[test]
fn pin_make_room_switch() {
    // SPB 0 tainted and full; SPB 1 clean, the pages to pin; SPB 2 clean with one free page,
    // which the first pin takes (SPB 2 becomes the pin SPB, now full); SPB 3 clean with room
    // (every other page free). The second pin finds no room in the pin SPB: without
    // `pin_make_room` it lands in SPB 3 (the pins spread over two SPBs); with it, one unpinned
    // page of SPB 2 moves out first (to SPB 3) and the pin lands in SPB 2, beside the first.
    for make_room in [false, true] {
        let mut sw = on().with(SpbSwitch::PinMigrate);
        sw.set(SpbSwitch::PinMakeRoom, make_room);
        let mut a = alloc_with(5, sw, false, None);
        fill(&mut a, 0, true, |_| false);
        fill(&mut a, 1, false, |off| off % 2 == 1);
        fill(&mut a, 2, false, |off| off == 5);
        fill(&mut a, 3, false, |off| off % 2 == 1);
        let mut env = TrackEnv::default();
        let pin = |a: &mut Allocator, env: &mut TrackEnv, p: Pfn| {
            env.loc.insert(p as u32, (p, 0));
            assert!(a.longterm_pin(p, env));
            env.pinned.insert(p as u32); // the embedder pins it where it now is
            spb_of(a, env.loc[&(p as u32)].0)
        };
        let b1 = base(&a, 1);
        let first = pin(&mut a, &mut env, b1);
        assert_eq!(first, 2, "the fullest other clean SPB with room");
        assert_eq!(env.moves, 1);
        let second = pin(&mut a, &mut env, b1 + 2);
        if make_room {
            assert_eq!(second, 2, "gathered in the pin SPB");
            assert_eq!(env.moves, 3, "one unpinned page moved out, then the pin");
        } else {
            assert_eq!(second, 3, "spread to the next clean SPB with room");
            assert_eq!(env.moves, 2);
        }
        assert_eq!(cat(&a, 4), Category::Empty, "no empty SPB opened for a pin");
        a.check().unwrap();
    }
    // a pin of a whole pageblock: the pin SPB's cheapest unpinned pageblock moves out whole
    let sw = on()
        .with(SpbSwitch::PinMigrate)
        .with(SpbSwitch::PinMakeRoom);
    let mut a = alloc_with(5, sw, false, None);
    fill(&mut a, 0, true, |_| false);
    fill(&mut a, 2, false, |off| off < PB); // SPB 2: one free pageblock
    fill(&mut a, 3, false, |off| off >= SPB / 2); // SPB 3: half free
    let thp = |a: &mut Allocator, p: Pfn| {
        a.alloc_at(p, 3, Gfp::HIGHUSER_MOVABLE, p as u32).unwrap();
    };
    let b1 = base(&a, 1);
    thp(&mut a, b1);
    thp(&mut a, b1 + PB);
    let mut env = TrackEnv::default();
    for (k, moves) in [(0u64, 1u64), (1, 1 + PB + 1)] {
        let p = base(&a, 1) + k * PB;
        env.loc.insert(p as u32, (p, 3));
        assert!(a.longterm_pin(p, &mut env));
        env.pinned.insert(p as u32);
        assert_eq!(
            spb_of(&a, env.loc[&(p as u32)].0),
            2,
            "pin {k} in the pin SPB"
        );
        assert_eq!(env.moves, moves, "pin {k}");
    }
    a.check().unwrap();
}

#[test]
fn lost_first_counts_only_spbs_lost_for_good() {
    // SPB 0 tainted and full; SPB 1 partly (or wholly) uninitialised memory, waiting for
    // deferred init; SPB 2 with a real hole; SPB 3 empty. `lost_first` sends a non-movable
    // request to an SPB that can never be a 1 GiB page: SPB 2, not SPB 1, which becomes whole
    // once the zone grows. Both before and after SPB 1 is handed over (the list of lost SPBs
    // follows the growth).
    for (uninit_from, grow) in [(SPB / 2, false), (0, true), (SPB / 2, true)] {
        let mut layout = tiny(4);
        let s1 = layout.zones[0].span.start + SPB;
        let s2 = s1 + SPB;
        let pending = PfnRange::new(s1 + uninit_from, s2);
        layout.zones[0].uninit.push(pending);
        layout.zones[0]
            .holes
            .push(PfnRange::new(s2 + SPB - 64, s2 + SPB));
        let mut a = alloc_with(4, on(), false, Some(layout));
        fill(&mut a, 0, true, |_| false);
        assert!(a.zones()[0].spb_lost_for_good(2));
        assert_eq!(a.zones()[0].spb_uninit_pages(1), SPB - uninit_from);
        assert!(
            !a.zones()[0].spb_lost_for_good(1),
            "memory waiting for init is no hole"
        );
        if grow {
            assert_eq!(a.grow_zone(0, pending).unwrap(), pending.len());
            assert_eq!(a.zones()[0].spb_uninit_pages(1), 0);
        }
        let p = a
            .alloc(AllocRequest::new(0, Gfp::KERNEL), &mut NoEnv)
            .unwrap();
        assert_eq!(spb_of(&a, p), 2, "uninit from {uninit_from}, grown {grow}");
        assert_ne!(cat(&a, 1), Category::Tainted);
        a.check().unwrap();
    }
}

#[test]
fn evacuate_keep_band_switch() {
    // evacuate_keep_blocks_switch's set-up, with SPB 2 given back either whole (16 free
    // pageblocks, more than the supply's band of 1) or one pageblock only (the band). With
    // `evacuate_keep_band` the defrag's targets split a free pageblock in the first case and
    // take the four fragments only in the second (which splits without the switch).
    for (whole_spb, band, split_expected) in [
        (true, true, true),
        (false, true, false),
        (false, false, true),
    ] {
        let mut sw = on();
        sw.set(SpbSwitch::EvacuateKeepBand, band);
        let mut a = defrag_with_fragments(sw, if whole_spb { SPB } else { PB });
        let before = u64::from(a.zones()[0].spbs()[2].pb_free());
        let mut env = TrackEnv::default();
        for t in 1..8 {
            a.background(t * 1_000_000_000, &mut env);
        }
        let after = u64::from(a.zones()[0].spbs()[2].pb_free());
        if split_expected {
            assert!(env.moves > 4, "past the fragments: {}", env.moves);
            assert!(after < before, "a free pageblock of SPB 2 was split");
        } else {
            assert_eq!(env.moves, 4, "the four fragments, then no target");
            assert_eq!(after, before, "the band's pageblock is kept whole");
        }
        a.check().unwrap();
    }
}

#[test]
fn boost_movable_switch() {
    // With no_watermark_boost (spb's default), `boost_movable` boosts after the fallback of a
    // movable request and still not after a non-movable request's claim.
    for (boost_movable, kernel_boosts, movable_boosts) in
        [(false, false, false), (true, false, true)]
    {
        let mut sw = on().without(SpbSwitch::CrossBorrow);
        sw.set(SpbSwitch::BoostMovable, boost_movable);
        let config = |min: Option<u64>| {
            let mut c = Config {
                policy: PolicyConfig {
                    kind: PolicyKind::Spb,
                    spb: sw,
                },
                pcp: false,
                ..cfg(PolicyKind::Spb)
            };
            c.watermarks.min_free_kbytes = min;
            c
        };
        // a kernel request steals from a movable pageblock (as in no_watermark_boost_switch)
        let mut a = Allocator::new(&tiny(9), config(None)).unwrap();
        fill(&mut a, 0, true, |off| off % 8 >= 5);
        a.alloc(AllocRequest::new(0, Gfp::KERNEL), &mut NoEnv)
            .unwrap();
        assert_eq!(a.zones()[0].watermark_boost() > 0, kernel_boosts);
        // a movable order-1 request (a claim: order >= half the pageblock order, as the
        // kernel's boost is only on the claim path) whose only free pages lie in the unmovable
        // pageblock a kernel page claimed
        let mut a = Allocator::new(&tiny(9), config(Some(0))).unwrap();
        let k = a
            .alloc(AllocRequest::new(0, Gfp::KERNEL), &mut NoEnv)
            .unwrap();
        let kb = k & !(PB - 1);
        for spb in 0..9 {
            let b = base(&a, spb);
            for q in (b..b + SPB).filter(|q| !(kb..kb + PB).contains(q)) {
                a.alloc_at(q, 0, Gfp::HIGHUSER_MOVABLE, q as u32).unwrap();
            }
        }
        let p = a
            .alloc(AllocRequest::new(1, Gfp::HIGHUSER_MOVABLE), &mut NoEnv)
            .unwrap();
        assert!((kb..kb + PB).contains(&p), "from the unmovable pageblock");
        assert_eq!(a.zones()[0].watermark_boost() > 0, movable_boosts);
        a.check().unwrap();
    }
}
