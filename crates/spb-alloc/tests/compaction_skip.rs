//! Compaction's skip hints (`PB_compact_skip`): a pageblock whose walk was of no use is marked,
//! later runs pass it over (unless they ignore the hints), and kswapd going to sleep after a
//! direct compaction's scanners met clears the marks.

mod common;
use common::*;
use spb_alloc::compaction::{CompactPriority, CompactResult};
use spb_alloc::migratetype::MigrateType as Mt;
use spb_alloc::pageblock::pbflag;
use spb_alloc::*;

/// One tiny Normal zone (16 pageblocks of 8 pages), every page allocated movable and tracked,
/// then every fourth page freed: single free pages everywhere, no block of order 3 can form
/// (each pageblock keeps 6 movable pages and the free scanner's targets are those single
/// pages), so an order-3 compaction walks the zone without success.
fn scattered(skip_hints: bool, env: &mut TrackEnv) -> Allocator {
    let mut c = quiet(PolicyKind::Vanilla);
    c.compaction_skip_hints = skip_hints;
    let mut a = Allocator::new(&tiny(1), c).unwrap();
    let span = a.zones()[0].span();
    for p in span.start..span.end {
        a.alloc_at(p, 0, Gfp::HIGHUSER_MOVABLE, p as u32).unwrap();
        env.loc.insert(p as u32, (p, 0));
    }
    for p in (span.start..span.end).step_by(4) {
        a.free(p, 0, 0).unwrap();
        env.loc.remove(&(p as u32));
    }
    // pin everything: nothing can move, so every walk of the migrate scanner is fruitless
    // and the free scanner's walks isolate pages that go back unused
    env.pinned = env.loc.keys().copied().collect();
    a
}

fn marked(a: &Allocator) -> usize {
    a.zones()[0]
        .pageblocks()
        .iter()
        .filter(|pb| pb.flags() & pbflag::SKIP != 0)
        .count()
}

fn migrate_scanned(a: &Allocator) -> u64 {
    a.vm().get(Vm::CompactMigrateScanned)
}

fn compact3(a: &mut Allocator, env: &mut TrackEnv, prio: CompactPriority) -> CompactResult {
    a.compact_zone(0, Some(3), prio, Mt::Movable, false, env)
}

#[test]
fn a_fruitless_walk_marks_the_pageblock_and_later_runs_pass_it_over() {
    let mut env = TrackEnv::default();
    let mut a = scattered(true, &mut env);
    let r = compact3(&mut a, &mut env, CompactPriority::SyncLight);
    assert!(
        matches!(r, CompactResult::Complete | CompactResult::Partial),
        "nothing can move: the scanners meet ({r:?})"
    );
    let first = migrate_scanned(&a);
    assert!(first > 0, "the first run read pageblocks");
    assert!(marked(&a) > 0, "fruitless walks left marks");
    a.check().unwrap();
    // the next run starts over (the scanners met) and passes the marked pageblocks over
    compact3(&mut a, &mut env, CompactPriority::SyncLight);
    let second = migrate_scanned(&a) - first;
    assert!(
        second < first,
        "the second run read {second} entries, the first {first}"
    );
    a.check().unwrap();
}

#[test]
fn sync_full_compaction_ignores_the_marks() {
    // the same two runs with and without the hints (nothing moves: the same pages either
    // way), then SyncFull, the priority of last resort: it reads as much with the marks as
    // without them
    let mut read = Vec::new();
    for hints in [true, false] {
        let mut env = TrackEnv::default();
        let mut a = scattered(hints, &mut env);
        compact3(&mut a, &mut env, CompactPriority::SyncLight);
        compact3(&mut a, &mut env, CompactPriority::SyncLight);
        assert_eq!(marked(&a) > 0, hints);
        let before = migrate_scanned(&a);
        compact3(&mut a, &mut env, CompactPriority::SyncFull);
        read.push(migrate_scanned(&a) - before);
        a.check().unwrap();
    }
    assert!(read[0] > 0);
    assert_eq!(read[0], read[1], "SyncFull reads every pageblock");
}

#[test]
fn without_the_switch_nothing_is_marked_and_every_run_reads_the_same() {
    let mut env = TrackEnv::default();
    let mut a = scattered(false, &mut env);
    compact3(&mut a, &mut env, CompactPriority::SyncLight);
    let first = migrate_scanned(&a);
    compact3(&mut a, &mut env, CompactPriority::SyncLight);
    assert_eq!(migrate_scanned(&a) - first, first);
    assert_eq!(marked(&a), 0);
    a.check().unwrap();
}

#[test]
fn kswapd_going_to_sleep_clears_the_marks_after_a_direct_compaction_met() {
    let mut env = TrackEnv::default();
    let mut a = scattered(true, &mut env);
    compact3(&mut a, &mut env, CompactPriority::SyncLight);
    let first = migrate_scanned(&a);
    assert!(marked(&a) > 0);
    // no watermark in this zone: kswapd finds the node balanced and goes back to sleep
    a.wake_kswapd(0);
    assert!(a.kswapd_turn(&mut env), "kswapd ran");
    assert_eq!(marked(&a), 0, "the marks went with kswapd's sleep");
    a.check().unwrap();
    compact3(&mut a, &mut env, CompactPriority::SyncLight);
    assert_eq!(
        migrate_scanned(&a) - first,
        first,
        "the next run reads every pageblock again"
    );
}

#[test]
fn kcompactd_runs_leave_the_marks_to_the_next_restart() {
    // a run of kcompactd (daemon) whose scanners meet does not ask kswapd to clear the marks
    let mut env = TrackEnv::default();
    let mut a = scattered(true, &mut env);
    a.compact_zone(
        0,
        Some(3),
        CompactPriority::SyncLight,
        Mt::Unmovable,
        true,
        &mut env,
    );
    let n = marked(&a);
    assert!(n > 0);
    a.wake_kswapd(0);
    assert!(a.kswapd_turn(&mut env));
    assert_eq!(
        marked(&a),
        n,
        "only a direct compaction's meeting scanners flush"
    );
    a.check().unwrap();
}
