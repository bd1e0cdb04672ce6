//! spb-next `highorder_evacuate` (policy/spb_highorder.rs) and `evacuate_split`, each rule with
//! the switch on and off, on a small geometry: 32-page pageblocks (order 5, the THP order here),
//! 8 pageblocks per SPB.

mod common;
use common::*;
use spb_alloc::policy::spb::Work;
use spb_alloc::*;

const PB: u64 = 32;
const SPB: u64 = 256;

/// spb-next's default set with `highorder_evacuate` on or off (on by default since the session
/// of 2026-12-05: see docs/spb-next.md; its background half, `highorder_supply`, is on by
/// default too and off here when `on` is false, so that `false` is the slow path of spb).
fn next(on: bool) -> SpbSwitches {
    let s = SpbSwitches::next_on();
    assert!(s.on(SpbSwitch::HighorderEvacuate));
    assert!(s.on(SpbSwitch::HighorderSupply));
    let s = s
        .without(SpbSwitch::HighorderEvacuate)
        .without(SpbSwitch::HighorderSupply);
    if on {
        s.with(SpbSwitch::HighorderEvacuate)
    } else {
        s
    }
}

fn alloc_with(spbs: u64, sw: SpbSwitches) -> Allocator {
    spb_next_pb32(spbs, sw)
}

/// First pfn of pageblock `pb` (counted from the zone start).
fn pb_base(pb: u64) -> Pfn {
    SPB + pb * PB
}

/// Fill every pageblock of the zone with movable order-0 pages, leaving free the offsets
/// `free(pb, off)` says. Cookies are the pfns.
fn fill(a: &mut Allocator, env: &mut TrackEnv, pbs: u64, free: impl Fn(u64, u64) -> bool) {
    for pb in 0..pbs {
        for off in 0..PB {
            if free(pb, off) {
                continue;
            }
            let p = pb_base(pb) + off;
            a.alloc_at(p, 0, Gfp::HIGHUSER_MOVABLE, p as u32).unwrap();
            env.loc.insert(p as u32, (p, 0));
        }
    }
}

/// One free page in four, no two of them buddies: a pageblock with 24 movable pages and no free
/// block above order 0.
fn scattered(off: u64) -> bool {
    off % 4 == 1
}

/// 16 pageblocks each with free pages but none free as a whole: pageblock `cheap` holds 8
/// movable pages (every fourth page), the others 24 ([`scattered`]).
fn fill_one_cheap(a: &mut Allocator, env: &mut TrackEnv, cheap: u64) {
    fill(a, env, 16, |pb, off| {
        if pb == cheap {
            !off.is_multiple_of(4)
        } else {
            scattered(off)
        }
    });
}

#[test]
fn evacuates_the_cheapest_block_for_a_thp() {
    // 2 SPBs = 16 pageblocks, each with free pages but none free as a whole; pageblock 11 has
    // the fewest movable pages (8: every fourth page)
    for on in [false, true] {
        let mut a = alloc_with(2, next(on));
        let mut env = TrackEnv::default();
        fill_one_cheap(&mut a, &mut env, 11);
        let r = a.alloc(AllocRequest::new(5, Gfp::TRANSHUGE), &mut env);
        let evac = a.vm().get(Vm::SpbEvacuateRuns);
        if on {
            let p = r.expect("served from the evacuated pageblock");
            assert_eq!(
                p,
                pb_base(11),
                "the pageblock with the fewest movable pages"
            );
            assert_eq!(evac, 1);
            assert_eq!(a.pages_migrated(), 8, "its 8 movable pages, nothing else");
            assert_eq!(a.vm().get(Vm::CompactStall), 0, "no compaction");
        } else {
            assert_eq!(evac, 0);
            assert!(a.vm().get(Vm::CompactStall) > 0, "compaction instead");
        }
        assert!(
            a.zones()[0]
                .spbs()
                .iter()
                .all(|s| s.category() != Category::Tainted),
            "nothing tainted"
        );
    }
}

#[test]
fn below_the_pageblock_order_does_not_evacuate() {
    // an order-4 request (a large folio, above PAGE_ALLOC_COSTLY_ORDER) keeps the slow path of spb
    let mut a = alloc_with(2, next(true));
    let mut env = TrackEnv::default();
    fill(&mut a, &mut env, 16, |_, off| scattered(off));
    let _ = a.alloc(
        AllocRequest::new(4, Gfp::HIGHUSER_MOVABLE.with(Gfp::NORETRY)),
        &mut env,
    );
    assert_eq!(a.vm().get(Vm::SpbEvacuateRuns), 0);
}

#[test]
fn callers_without_direct_reclaim_evacuate_in_the_background() {
    for on in [false, true] {
        let mut a = alloc_with(2, next(on));
        let mut env = TrackEnv::default();
        fill_one_cheap(&mut a, &mut env, 3);
        let light = Gfp::TRANSHUGE_LIGHT.with(Gfp::NORETRY);
        let r = a.alloc(AllocRequest::new(5, light), &mut env);
        assert!(
            r.is_err(),
            "no direct work for a caller that may not reclaim"
        );
        assert_eq!(a.pages_migrated(), 0);
        let queued = a
            .policy()
            .spb()
            .is_some_and(|s| s.work().contains(&Work::EvacuateFree { zone: 0 }));
        assert_eq!(queued, on);
        a.background(1_000_000_000, &mut env);
        let r = a.alloc(AllocRequest::new(5, light), &mut env);
        assert_eq!(r.is_ok(), on, "the next one finds the pageblock: {:?}", r);
        if on {
            assert_eq!(r.unwrap(), pb_base(3));
        }
    }
}

#[test]
fn skips_blocks_whose_folio_has_no_free_block_of_its_order() {
    // pageblock 2: one order-4 folio and 4 pages (20 movable); pageblock 9: 22 movable order-0
    // pages; the others 24. No free movable block of order 4 exists elsewhere, so moving the
    // folio whole would need a fragmenting steal: pageblock 9 is evacuated although it costs
    // more; with `evacuate_any_order` the cheaper pageblock 2 is, its folio split into base
    // pages that move one by one (`evacuate_split_first`, on in spb-next).
    for split_first in [false, true] {
        let sw = next(true);
        let sw = if split_first {
            sw.with(SpbSwitch::EvacuateAnyOrder)
        } else {
            sw
        };
        let (mut a, mut env, folio) = with_folio(sw, 4, |pb, off| match pb {
            2 => off < 16 || !off.is_multiple_of(4),
            9 => off % 4 == 1 || off % 16 == 3,
            _ => scattered(off),
        });
        let p = a
            .alloc(AllocRequest::new(5, Gfp::TRANSHUGE), &mut env)
            .expect("served");
        if split_first {
            assert_eq!(p, pb_base(2));
            assert_eq!(env.splits, 1);
            assert_ne!(env.t.loc[&(folio as u32)].0, folio, "the head page moved");
        } else {
            assert_eq!(p, pb_base(9));
            assert_eq!(env.splits, 0);
            assert_eq!(
                env.t.loc[&(folio as u32)],
                (folio, 4),
                "the folio did not move"
            );
        }
        assert_eq!(a.vm().get(Vm::ExtfragFragmenting), 0);
        a.check().unwrap();
    }
}

#[test]
fn memory_short_runs_the_slow_path_of_spb() {
    // fewer free pages than the low watermark plus a pageblock: reclaim is the answer, no
    // evacuation (each pageblock keeps 1 free page: 16 free pages, half a pageblock)
    let mut a = alloc_with(2, next(true));
    let mut env = TrackEnv::default();
    fill(&mut a, &mut env, 16, |_, off| off == 5);
    assert!(a.zones()[0].free_pages() < a.zones()[0].wmark()[1] + PB);
    let _ = a.alloc(AllocRequest::new(5, Gfp::TRANSHUGE), &mut env);
    assert_eq!(a.vm().get(Vm::SpbEvacuateRuns), 0);
}

#[test]
fn supply_alone_leaves_callers_that_may_reclaim_to_the_slow_path() {
    // `highorder_supply` without `highorder_evacuate`: a THP fault that may reclaim does no
    // evacuation (its slow path compacts instead), one that may not queues the background
    // supply, which then serves the next such fault
    let sw = next(false).with(SpbSwitch::HighorderSupply);
    let mut a = alloc_with(2, sw);
    let mut env = TrackEnv::default();
    fill_one_cheap(&mut a, &mut env, 3);
    let _ = a.alloc(
        AllocRequest::new(5, Gfp::TRANSHUGE.with(Gfp::NORETRY).with(Gfp::THISNODE)),
        &mut env,
    );
    assert_eq!(
        a.vm().get(Vm::SpbEvacuateRuns),
        0,
        "no synchronous evacuation"
    );
    let queued = |a: &Allocator| {
        a.policy()
            .spb()
            .is_some_and(|s| s.work().contains(&Work::EvacuateFree { zone: 0 }))
    };
    assert!(!queued(&a));
    let light = Gfp::TRANSHUGE_LIGHT.with(Gfp::NORETRY);
    assert!(a.alloc(AllocRequest::new(5, light), &mut env).is_err());
    assert!(
        queued(&a),
        "a caller that may not reclaim queues the supply"
    );
    a.background(1_000_000_000, &mut env);
    assert!(a.vm().get(Vm::SpbEvacuateRuns) > 0);
    assert!(a.alloc(AllocRequest::new(5, light), &mut env).is_ok());
}

/// [`TrackEnv`] whose folios split (the lab's page cache does): the head keeps its cookie,
/// the tail pages get new ones.
#[derive(Default)]
struct SplitTrack {
    t: TrackEnv,
    splits: u32,
}

impl Env for SplitTrack {
    fn migrate(&mut self, from: Pfn, to: Pfn, order: u8, cookie: u32) -> MigrateOutcome {
        self.t.migrate(from, to, order, cookie)
    }
    fn split(&mut self, pfn: Pfn, order: u8, cookie: u32, out: &mut Vec<u32>) -> bool {
        self.splits += 1;
        self.t.loc.insert(cookie, (pfn, 0));
        out.push(cookie);
        for i in 1..1u64 << order {
            let c = 100_000 + (pfn + i) as u32;
            self.t.loc.insert(c, (pfn + i, 0));
            out.push(c);
        }
        true
    }
}

/// A two-SPB zone under `sw` whose pageblock 2 starts with a movable folio of `order` (its
/// cookie is its pfn), the rest filled as [`fill`] with `free`; the embedder splits.
fn with_folio(
    sw: SpbSwitches,
    order: u8,
    free: impl Fn(u64, u64) -> bool,
) -> (Allocator, SplitTrack, Pfn) {
    let mut a = alloc_with(2, sw);
    let mut env = SplitTrack::default();
    let folio = pb_base(2);
    a.alloc_at(folio, order, Gfp::HIGHUSER_MOVABLE, folio as u32)
        .unwrap();
    env.t.loc.insert(folio as u32, (folio, order));
    fill(&mut a, &mut env.t, 16, free);
    (a, env, folio)
}

#[test]
fn evacuate_split_moves_a_folio_whose_only_target_is_in_its_own_spb() {
    // pageblock 2 (SPB 0): one order-2 folio and 4 order-0 pages, the cheapest; pageblock 5
    // (also SPB 0) holds the zone's only free order-2 block; every other pageblock has free
    // single pages only. The folio fits the zone, but SPB 0 is the one being evacuated, so no
    // whole target exists: without the switch the evacuation stops at the folio (nothing
    // moves and the THP is not served from it); with it the folio splits and its base pages move.
    // `evacuate_split` splits after the folio's target reclaimed once for nothing (the embedder
    // frees nothing): a stall; `evacuate_split_first` splits before any reclaim: none.
    for (extra, split, target_stalls) in [
        (None, false, 1),
        (Some(SpbSwitch::EvacuateSplit), true, 1),
        (Some(SpbSwitch::EvacuateSplitFirst), true, 0),
    ] {
        // targets that may reclaim (`evacuate_no_reclaim`, on in spb-next, stops the
        // evacuation at the first dry target instead: `evacuate_no_reclaim_switch`)
        let sw = next(true)
            .without(SpbSwitch::EvacuateSplitFirst)
            .without(SpbSwitch::EvacuateNoReclaim);
        let sw = extra.map_or(sw, |w| sw.with(w));
        let (mut a, mut env, folio) = with_folio(sw, 2, |pb, off| match pb {
            2 => off < 4 || !off.is_multiple_of(4),
            5 => (8..12).contains(&off) || scattered(off),
            _ => scattered(off),
        });
        let r = a.alloc(AllocRequest::new(5, Gfp::TRANSHUGE), &mut env);
        assert_eq!(a.vm().get(Vm::SpbEvacuateSplits), split as u64);
        assert_eq!(env.splits, split as u32);
        if split {
            assert_eq!(
                r.expect("served"),
                pb_base(2),
                "from the evacuated pageblock"
            );
            assert_eq!(a.pages_migrated(), 4 + 7, "the folio's 4 pages and 7 more");
            assert!(env.t.loc[&(folio as u32)].0 >= SPB + SPB, "moved to SPB 1");
        } else {
            assert_eq!(
                env.t.loc[&(folio as u32)],
                (folio, 2),
                "the folio did not move"
            );
            assert_ne!(r.ok(), Some(pb_base(2)));
        }
        assert_eq!(a.vm().get(Vm::ExtfragFragmenting), 0);
        assert_eq!(
            a.stall_causes().evacuation_targets,
            target_stalls,
            "{extra:?}"
        );
        a.check().unwrap();
    }
}

#[test]
fn a_slow_path_evacuations_target_reclaim_is_counted_as_its_own_stall_cause() {
    // pageblocks 0-7 (one SPB) full of movable pages, pageblocks 8-15 (the other) scattered
    // with pageblock 11 the cheapest: its evacuation must find targets outside its own SPB,
    // where nothing is free, so the target allocation reclaims in the faulting caller's slow
    // path. That stall is the evacuation's, not the slow path's own reclaim (the bill's
    // "direct stalls" row); the causes add up to the allocstall counters. With spb-next's
    // `evacuate_no_reclaim` (on by default) the evacuation stops at that target instead and
    // no stall is the evacuation's.
    let sw = next(true);
    assert!(sw.on(SpbSwitch::EvacuateNoReclaim));
    for (sw, target_reclaims) in [
        (sw.without(SpbSwitch::EvacuateNoReclaim), true),
        (sw, false),
    ] {
        let mut a = alloc_with(2, sw);
        let mut env = TrackEnv::default();
        fill(&mut a, &mut env, 16, |pb, off| match pb {
            0..=7 => false,
            11 => !off.is_multiple_of(4),
            _ => scattered(off),
        });
        let _ = a.alloc(AllocRequest::new(5, Gfp::TRANSHUGE), &mut env);
        assert_eq!(a.vm().get(Vm::SpbEvacuateRuns), 1);
        let c = *a.stall_causes();
        assert_eq!(c.evacuation_targets >= 1, target_reclaims, "{c:?}");
        assert_eq!((c.contig_targets, c.workers), (0, 0), "{c:?}");
        let allocstalls = [
            Vm::AllocstallDma,
            Vm::AllocstallDma32,
            Vm::AllocstallNormal,
            Vm::AllocstallMovable,
        ]
        .iter()
        .map(|&v| a.vm().get(v))
        .sum::<u64>();
        assert_eq!(c.total(), allocstalls);
        a.check().unwrap();
    }
}

#[test]
fn supply_keep_blocks_never_splits_a_free_pageblock_to_make_one() {
    // watermark_scale_factor 10 % of 768 pages: the supply keeps 2 free pageblocks. SPBs 0-1:
    // every other page free, pageblock 3 the cheapest (8 movable pages); SPB 2: full but for its
    // last pageblock, given back after a light THP fault found no free pageblock and queued the
    // supply. The supply evacuates pageblock 3: without the switch its targets split the free
    // pageblock of SPB 2 (the fullest clean SPB), which the supply must then evacuate too; with
    // it they take the scattered free pages.
    for keep in [false, true] {
        let mut sw = SpbSwitches::next_on();
        sw.set(SpbSwitch::SupplyKeepBlocks, keep);
        let s = PB32.spb_pages();
        let layout = MemoryLayout {
            geometry: PB32,
            zones: vec![ZoneSpec::plain(
                ZoneKind::Normal,
                PfnRange::new(s, s + 3 * s),
            )],
        };
        let mut c = Config {
            policy: PolicyConfig {
                kind: PolicyKind::SpbNext,
                spb: sw,
            },
            ..quiet(PolicyKind::SpbNext)
        };
        c.watermarks.watermark_scale_factor = 1000;
        let mut a = Allocator::new(&layout, c).unwrap();
        let mut env = TrackEnv::default();
        fill(&mut a, &mut env, 24, |pb, off| match pb {
            3 => !off.is_multiple_of(4),
            0..16 => off % 2 == 1,
            _ => false,
        });
        let light = Gfp::TRANSHUGE_LIGHT.with(Gfp::NORETRY);
        assert!(a.alloc(AllocRequest::new(5, light), &mut env).is_err());
        for off in 0..PB {
            let p = pb_base(23) + off;
            a.free(p, 0, 0).unwrap();
            env.loc.remove(&(p as u32));
        }
        assert_eq!(a.zones()[0].spbs()[2].pb_free(), 1);
        a.background(1_000_000_000, &mut env);
        if keep {
            assert_eq!(
                a.pages_migrated(),
                8,
                "pageblock 3's 8 pages, into fragments"
            );
            assert_eq!(a.zones()[0].spbs()[0].pb_free(), 1, "pageblock 3 is free");
            assert_eq!(
                a.zones()[0].spbs()[2].pb_free(),
                1,
                "SPB 2's pageblock untouched"
            );
        } else {
            // the 8 pages split SPB 2's free pageblock, which the supply then evacuates again
            assert_eq!(a.pages_migrated(), 16, "the same 8 pages moved twice");
        }
        a.check().unwrap();
    }
}
