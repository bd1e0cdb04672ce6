//! The compaction free scanner as the kernel runs it since 6.10 (large folios migrated) and
//! 5.1 (free-list search): one round of isolation per folio that finds no target in what is
//! already isolated, a search of the free lists before the linear walk, and the end of the
//! run when a folio finds no free block of its order (`migrate_pages`' -ENOMEM).

mod common;
use common::*;
use spb_alloc::compaction::{CompactPriority, CompactResult};
use spb_alloc::migratetype::MigrateType as Mt;
use spb_alloc::*;

/// One tiny Normal zone (one SPB of 16 pageblocks of 8 pages), no per-CPU lists, no min
/// watermark, no proactive compaction, every page allocated movable and tracked by `env`.
fn full_zone(kind: PolicyKind, env: &mut TrackEnv) -> (Allocator, Pfn, Pfn) {
    let mut a = Allocator::new(&tiny(1), quiet(kind)).unwrap();
    let span = a.zones()[0].span();
    for p in span.start..span.end {
        a.alloc_at(p, 0, Gfp::HIGHUSER_MOVABLE, p as u32).unwrap();
        env.loc.insert(p as u32, (p, 0));
    }
    (a, span.start, span.end)
}

fn free(a: &mut Allocator, env: &mut TrackEnv, p: Pfn) {
    a.free(p, 0, 0).unwrap();
    env.loc.remove(&(p as u32));
}

/// [`full_zone`] with an order-2 folio (cookie 1 000 000) at the zone's start `s`: the first
/// thing the migrate scanner meets.
fn full_zone_with_folio(kind: PolicyKind, env: &mut TrackEnv) -> (Allocator, Pfn, Pfn) {
    let (mut a, s, e) = full_zone(kind, env);
    for p in s..s + 4 {
        free(&mut a, env, p);
    }
    a.alloc_at(s, 2, Gfp::HIGHUSER_MOVABLE, 1_000_000).unwrap();
    env.loc.insert(1_000_000, (s, 2));
    (a, s, e)
}

/// Direct compaction of the zone for an order-3 movable request.
fn compact3(a: &mut Allocator, env: &mut TrackEnv, prio: CompactPriority) -> CompactResult {
    a.compact_zone(0, Some(3), prio, Mt::Movable, false, env)
}

#[test]
fn a_large_folio_with_no_target_of_its_order_ends_the_run() {
    for kind in [PolicyKind::Vanilla, PolicyKind::Spb] {
        let mut env = TrackEnv::default();
        let (mut a, s, e) = full_zone_with_folio(kind, &mut env);
        // free memory only as single pages, every other page of the upper half
        for p in ((s + e) / 2..e).step_by(2) {
            free(&mut a, &mut env, p);
        }
        let free_before = a.free_pages();
        let r = compact3(&mut a, &mut env, CompactPriority::SyncLight);
        assert_eq!(
            r,
            CompactResult::Contended,
            "{kind:?}: the folio found only single pages"
        );
        assert_eq!(env.moves, 0, "{kind:?}: nothing moved");
        assert_eq!(env.loc[&1_000_000], (s, 2), "{kind:?}: the folio stays");
        assert!(
            a.vm().get(Vm::CompactIsolated) >= 4,
            "{kind:?}: the free scanner isolated as many pages as the folio has"
        );
        assert_eq!(
            a.free_pages(),
            free_before,
            "{kind:?}: the isolated pages went back"
        );
        a.check().unwrap();
    }
}

#[test]
fn the_run_goes_on_when_the_folio_finds_a_block_of_its_order() {
    for kind in [PolicyKind::Vanilla, PolicyKind::Spb] {
        let mut env = TrackEnv::default();
        let (mut a, s, e) = full_zone_with_folio(kind, &mut env);
        // one free order-2 block near the top, and single pages
        for p in e - 12..e - 8 {
            free(&mut a, &mut env, p);
        }
        for p in ((s + e) / 2..e - 16).step_by(2) {
            free(&mut a, &mut env, p);
        }
        let r = compact3(&mut a, &mut env, CompactPriority::SyncLight);
        assert_ne!(r, CompactResult::Contended, "{kind:?}");
        assert_eq!(
            env.loc[&1_000_000],
            (e - 12, 2),
            "{kind:?}: the folio moved into the order-2 block"
        );
        a.check().unwrap();
    }
}

#[test]
fn the_free_list_search_takes_a_buddy_from_the_top_quarter() {
    let mut env = TrackEnv::default();
    let (mut a, s, e) = full_zone(PolicyKind::Vanilla, &mut env);
    // two free pages below the top half, one in the top quarter and one in the zone's last
    // pageblock. The last one is freed last, so it is the list's head; the search reads from
    // the tail and stops at the first page in the top quarter, where the linear scanner,
    // walking down from the top, would have taken the last pageblock's page
    let mid = (s + e) / 2;
    free(&mut a, &mut env, mid - 32);
    free(&mut a, &mut env, mid - 24);
    free(&mut a, &mut env, e - 30);
    free(&mut a, &mut env, e - 6);
    let r = compact3(&mut a, &mut env, CompactPriority::Async);
    assert!(env.moves >= 1, "compaction moved something ({r:?})");
    assert_eq!(
        env.loc[&(s as u32)],
        (e - 30, 0),
        "the first page went to the top-quarter page the list search met first"
    );
    a.check().unwrap();
}
