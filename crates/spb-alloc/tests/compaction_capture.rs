//! Compaction capture (`Config::compaction_capture`): a direct compaction stops as soon as the
//! frees of the folios it moved make a free block of the requested order, where the model
//! without capture finished the pageblock first. kcompactd never captures.

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
