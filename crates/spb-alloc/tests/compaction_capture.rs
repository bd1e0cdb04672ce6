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

/// The machine of every test: one tiny Normal zone (16 pageblocks of 8 pages), every page
/// allocated movable and tracked, then every fourth page of the top four pageblocks freed
/// (single pages: the migration targets). `start` shapes the first order-1 chunk: `Free1` frees
/// page 1 (the buddy of page 0: moving page 0 makes an order-1 block), `Pin0` pins page 0 (the
/// chunk [0, 2) can never be freed, [2, 4) can).
#[derive(Clone, Copy, PartialEq)]
enum Start {
    Free1,
    Pin0,
}

/// One order-1 compaction of that machine under `c`: its result and the pages it moved.
fn compact(
    c: Config,
    start: Start,
    prio: CompactPriority,
    mt: Mt,
    daemon: bool,
) -> (CompactResult, u64) {
    let mut env = TrackEnv::default();
    let mut a = Allocator::new(&tiny(1), c).unwrap();
    let span = a.zones()[0].span();
    for p in span.start..span.end {
        a.alloc_at(p, 0, Gfp::HIGHUSER_MOVABLE, p as u32).unwrap();
        env.loc.insert(p as u32, (p, 0));
    }
    let mut free: Vec<Pfn> = (span.end - 32..span.end).step_by(4).collect();
    match start {
        Start::Free1 => free.push(span.start + 1),
        Start::Pin0 => {
            env.pinned.insert(span.start as u32);
        }
    }
    for p in free {
        a.free(p, 0, 0).unwrap();
        env.loc.remove(&(p as u32));
    }
    let r = a.compact_zone(0, Some(1), prio, mt, daemon, &mut env);
    a.check().unwrap();
    (r, a.vm().get(Vm::PgmigrateSuccess))
}

fn with(f: impl FnOnce(&mut Config)) -> Config {
    let mut c = quiet(PolicyKind::Vanilla);
    f(&mut c);
    c
}

const SYNC: CompactPriority = CompactPriority::SyncLight;
const ASYNC: CompactPriority = CompactPriority::Async;

#[test]
fn direct_compaction_stops_at_the_first_block_of_the_order() {
    // with capture the run ends after page 0's move frees an order-1 block; without, the
    // migrate scanner finishes the pageblock (pages 0 and 2..8: 7 moves)
    let on = compact(with(|_| {}), Start::Free1, SYNC, Mt::Movable, false);
    let off = compact(
        with(|c| c.compaction_capture = false),
        Start::Free1,
        SYNC,
        Mt::Movable,
        false,
    );
    assert_eq!(
        (on, off),
        ((CompactResult::Success, 1), (CompactResult::Success, 7))
    );
}

#[test]
fn kcompactd_does_not_capture() {
    let r = compact(with(|_| {}), Start::Free1, SYNC, Mt::Movable, true);
    assert_eq!(
        r,
        (CompactResult::Success, 7),
        "the daemon finishes the pageblock"
    );
}

#[test]
fn a_movable_block_is_not_captured_for_an_unmovable_request() {
    // the kernel's rule: a movable block below the pageblock order does not go to a
    // non-movable compaction (it would pollute the movable pageblock)
    let (_, moved) = compact(with(|_| {}), Start::Free1, SYNC, Mt::Unmovable, false);
    assert!(moved > 1, "moved {moved}");
}

#[test]
fn async_direct_compaction_passes_over_a_chunk_that_cannot_be_freed() {
    // with skip-on-failure, [0, 2) is passed over (page 0 is pinned) and pages 2 and 3 move;
    // without it page 1 moves for nothing first
    let on = compact(with(|_| {}), Start::Pin0, ASYNC, Mt::Movable, false);
    let off = compact(
        with(|c| c.compaction_skip_on_failure = false),
        Start::Pin0,
        ASYNC,
        Mt::Movable,
        false,
    );
    assert_eq!(
        (on, off),
        ((CompactResult::Success, 2), (CompactResult::Success, 3))
    );
}

#[test]
fn sync_compaction_does_not_skip_on_failure() {
    let r = compact(with(|_| {}), Start::Pin0, SYNC, Mt::Movable, false);
    assert_eq!(r, (CompactResult::Success, 3), "pages 1, 2 and 3");
}
