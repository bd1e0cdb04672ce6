//! Compaction capture (`Config::compaction_capture`): a direct compaction stops as soon as the
//! frees of the folios it moved make a free block of the requested order, where the model
//! without capture finished the pageblock first. kcompactd never captures. And async direct
//! compaction's skip-on-failure (`Config::compaction_skip_on_failure`): an order-aligned chunk
//! holding a folio that would not isolate is passed over whole.

mod common;
use common::*;
use spb_alloc::compaction::{CompactPriority, CompactResult};
use spb_alloc::migratetype::MigrateType as Mt;
use spb_alloc::*;

/// One tiny Normal zone (16 pageblocks of 8 pages), every page allocated movable and tracked,
/// then page 1 freed (the buddy of page 0) and every fourth page of the top four pageblocks
/// (single pages: the migration targets). No free block of order 1 exists; moving page 0
/// makes one.
fn one_move_from_an_order_1_block(capture: bool, env: &mut TrackEnv) -> Allocator {
    let mut c = quiet(PolicyKind::Vanilla);
    c.compaction_capture = capture;
    let mut a = Allocator::new(&tiny(1), c).unwrap();
    let span = a.zones()[0].span();
    for p in span.start..span.end {
        a.alloc_at(p, 0, Gfp::HIGHUSER_MOVABLE, p as u32).unwrap();
        env.loc.insert(p as u32, (p, 0));
    }
    let mut free = vec![span.start + 1];
    free.extend((span.end - 32..span.end).step_by(4));
    for p in free {
        a.free(p, 0, 0).unwrap();
        env.loc.remove(&(p as u32));
    }
    a
}

fn moved(a: &Allocator) -> u64 {
    a.vm().get(Vm::PgmigrateSuccess)
}

#[test]
fn direct_compaction_stops_at_the_first_block_of_the_order() {
    let mut with = Vec::new();
    for capture in [true, false] {
        let mut env = TrackEnv::default();
        let mut a = one_move_from_an_order_1_block(capture, &mut env);
        let r = a.compact_zone(
            0,
            Some(1),
            CompactPriority::SyncLight,
            Mt::Movable,
            false,
            &mut env,
        );
        assert_eq!(r, CompactResult::Success, "capture {capture}");
        a.check().unwrap();
        with.push(moved(&a));
    }
    // with capture the run ends after page 0's move frees an order-1 block; without, the
    // migrate scanner finishes the pageblock (pages 0 and 2..8: 7 moves)
    assert_eq!(with, vec![1, 7]);
}

#[test]
fn kcompactd_does_not_capture() {
    let mut env = TrackEnv::default();
    let mut a = one_move_from_an_order_1_block(true, &mut env);
    let r = a.compact_zone(
        0,
        Some(1),
        CompactPriority::SyncLight,
        Mt::Movable,
        true,
        &mut env,
    );
    assert_eq!(r, CompactResult::Success);
    a.check().unwrap();
    assert_eq!(moved(&a), 7, "the daemon finishes the pageblock");
}

#[test]
fn a_movable_block_is_not_captured_for_an_unmovable_request() {
    // the kernel's rule: a movable block below the pageblock order does not go to a
    // non-movable compaction (it would pollute the movable pageblock)
    let mut env = TrackEnv::default();
    let mut a = one_move_from_an_order_1_block(true, &mut env);
    a.compact_zone(
        0,
        Some(1),
        CompactPriority::SyncLight,
        Mt::Unmovable,
        false,
        &mut env,
    );
    a.check().unwrap();
    assert!(moved(&a) > 1, "moved {}", moved(&a));
}

/// Every page allocated movable, the top four pageblocks' every fourth page freed (targets),
/// page 0 pinned: the order-1 chunk [0, 2) cannot be freed, [2, 4) can.
fn pinned_first_chunk(skip_on_failure: bool, env: &mut TrackEnv) -> Allocator {
    let mut c = quiet(PolicyKind::Vanilla);
    c.compaction_skip_on_failure = skip_on_failure;
    let mut a = Allocator::new(&tiny(1), c).unwrap();
    let span = a.zones()[0].span();
    for p in span.start..span.end {
        a.alloc_at(p, 0, Gfp::HIGHUSER_MOVABLE, p as u32).unwrap();
        env.loc.insert(p as u32, (p, 0));
    }
    for p in (span.end - 32..span.end).step_by(4) {
        a.free(p, 0, 0).unwrap();
        env.loc.remove(&(p as u32));
    }
    env.pinned.insert(span.start as u32);
    a
}

#[test]
fn async_direct_compaction_passes_over_a_chunk_that_cannot_be_freed() {
    let mut with = Vec::new();
    for skip in [true, false] {
        let mut env = TrackEnv::default();
        let mut a = pinned_first_chunk(skip, &mut env);
        let r = a.compact_zone(
            0,
            Some(1),
            CompactPriority::Async,
            Mt::Movable,
            false,
            &mut env,
        );
        assert_eq!(r, CompactResult::Success, "skip {skip}");
        a.check().unwrap();
        with.push(moved(&a));
    }
    // with skip-on-failure, [0, 2) is passed over (page 0 is pinned) and pages 2 and 3 move;
    // without it page 1 moves for nothing first
    assert_eq!(with, vec![2, 3]);
}

#[test]
fn sync_compaction_does_not_skip_on_failure() {
    let mut env = TrackEnv::default();
    let mut a = pinned_first_chunk(true, &mut env);
    let r = a.compact_zone(
        0,
        Some(1),
        CompactPriority::SyncLight,
        Mt::Movable,
        false,
        &mut env,
    );
    assert_eq!(r, CompactResult::Success);
    a.check().unwrap();
    assert_eq!(moved(&a), 3, "pages 1, 2 and 3");
}
