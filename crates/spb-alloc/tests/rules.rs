//! One test per mainline rule, on the tiny geometry (8-page pageblocks, order-4 buddies,
//! 16 pageblocks per SPB).

mod common;
use common::*;
use spb_alloc::migratetype::MigrateType as Mt;
use spb_alloc::page::PageState;
use spb_alloc::*;

/// No per-CPU lists and no watermarks: the rule under test is the only thing deciding.
fn nopcp(kind: PolicyKind) -> Config {
    let mut c = Config {
        pcp: false,
        ..cfg(kind)
    };
    c.watermarks.min_free_kbytes = Some(0);
    c
}

fn label(a: &Allocator, pfn: Pfn) -> Mt {
    let z = &a.zones()[a.zone_of(pfn).unwrap()];
    z.pb(pfn).migratetype()
}

fn relabel(a: &mut Allocator, pfn: Pfn, mt: Mt) {
    let zi = a.zone_of(pfn).unwrap();
    let z = &mut test_support::zones_mut(a)[zi];
    z.split_straddling(pfn, 3);
    test_support::move_freepages_block(z, pfn, mt).unwrap();
}

/// Allocate every free page of the zone as movable order-0 pages at known places.
fn fill_movable(a: &mut Allocator) -> Vec<Pfn> {
    let z = &a.zones()[0];
    let (s, e) = (z.span().start, z.span().end);
    let mut v = vec![];
    for p in s..e {
        if a.alloc_at(p, 0, Gfp::HIGHUSER_MOVABLE, 0).is_ok() {
            v.push(p);
        }
    }
    v
}

#[test]
fn fallback_prefers_reclaimable_for_unmovable() {
    let mut a = Allocator::new(&tiny(1), nopcp(PolicyKind::Vanilla)).unwrap();
    let pages = fill_movable(&mut a);
    let base = pages[0];
    // two free order-3 blocks that are not buddies: X movable, Y reclaimable
    let (x, y) = (base + 16, base + 40);
    for p in 0..8 {
        a.free(y + p, 0, 0).unwrap();
    }
    test_support::move_freepages_block(&mut test_support::zones_mut(&mut a)[0], y, Mt::Reclaimable)
        .unwrap();
    for p in 0..8 {
        a.free(x + p, 0, 0).unwrap();
    }
    let p = a
        .alloc(AllocRequest::new(0, Gfp::KERNEL), &mut NoEnv)
        .unwrap();
    assert!(
        (y..y + 8).contains(&p),
        "unmovable fell back to {:#x}, not the reclaimable block",
        p
    );
    assert_eq!(label(&a, p), Mt::Unmovable);
    assert_eq!(label(&a, x), Mt::Movable);
}

#[test]
fn claim_needs_half_a_pageblock() {
    let mut a = Allocator::new(&tiny(1), nopcp(PolicyKind::Vanilla)).unwrap();
    let pages = fill_movable(&mut a);
    let base = pages[0];
    let (blk_a, blk_b) = (base, base + 8);
    // block A: 3 free pages (not enough); block B: 5 free pages (enough)
    for p in [
        blk_a,
        blk_a + 2,
        blk_a + 4,
        blk_b,
        blk_b + 2,
        blk_b + 4,
        blk_b + 6,
        blk_b + 1,
    ] {
        a.free(p, 0, 0).unwrap();
    }
    let p = a
        .alloc(AllocRequest::new(0, Gfp::KERNEL), &mut NoEnv)
        .unwrap();
    assert!((blk_b..blk_b + 8).contains(&p), "claimed {:#x}", p);
    assert_eq!(label(&a, blk_b), Mt::Unmovable, "block B was claimed");
    assert_eq!(label(&a, blk_a), Mt::Movable, "block A keeps its label");
    assert_eq!(a.vm().get(Vm::ExtfragClaim), 1);
}

#[test]
fn below_half_steals_without_relabel() {
    let mut a = Allocator::new(&tiny(1), nopcp(PolicyKind::Vanilla)).unwrap();
    let pages = fill_movable(&mut a);
    let blk = pages[0];
    for p in [blk, blk + 2, blk + 4] {
        a.free(p, 0, 0).unwrap();
    }
    let p = a
        .alloc(AllocRequest::new(0, Gfp::KERNEL), &mut NoEnv)
        .unwrap();
    assert!((blk..blk + 8).contains(&p));
    assert_eq!(label(&a, blk), Mt::Movable, "a steal does not relabel");
    assert_eq!(a.vm().get(Vm::ExtfragSteal), 1);
    assert_eq!(a.page_state(p).unwrap().mt(), Mt::Unmovable as u8);
}

#[test]
fn defrag_mode_never_steals() {
    let mut a = Allocator::new(&tiny(1), nopcp(PolicyKind::Defrag)).unwrap();
    let pages = fill_movable(&mut a);
    let blk = pages[0];
    for p in [blk, blk + 2, blk + 4] {
        a.free(p, 0, 0).unwrap();
    }
    // GFP_NOWAIT cannot reclaim: with NOFRAGMENT kept it fails instead of stealing
    let r = a.alloc(AllocRequest::new(0, Gfp::NOWAIT), &mut NoEnv);
    assert!(r.is_err());
    assert_eq!(a.vm().get(Vm::ExtfragSteal), 0);
    // GFP_KERNEL reaches the last resort and then may steal
    a.alloc(AllocRequest::new(0, Gfp::KERNEL), &mut NoEnv)
        .unwrap();
    assert_eq!(a.vm().get(Vm::ExtfragSteal), 1);
}

#[test]
fn movable_claims_only_from_large_enough_buddies() {
    // pageblock order 3: movable requests claim only from buddies of order >= 1
    let mut a = Allocator::new(&tiny(1), nopcp(PolicyKind::Vanilla)).unwrap();
    let base = a.zones()[0].span().start;
    // make everything unmovable-labelled, then leave only order-0 unmovable fragments free
    for b in (0..128).step_by(8) {
        relabel(&mut a, base + b, Mt::Unmovable);
    }
    let mut got = vec![];
    while let Ok(p) = a.alloc(AllocRequest::new(0, Gfp::KERNEL), &mut NoEnv) {
        got.push(p);
    }
    a.free(got[0], 0, 0).unwrap();
    a.free(got[2], 0, 0).unwrap();
    let before = a.vm().get(Vm::ExtfragClaim);
    a.alloc(AllocRequest::new(0, Gfp::HIGHUSER_MOVABLE), &mut NoEnv)
        .unwrap();
    assert_eq!(
        a.vm().get(Vm::ExtfragClaim),
        before,
        "no claim from an order-0 buddy"
    );
    assert_eq!(a.vm().get(Vm::ExtfragSteal), 1);
}

#[test]
fn merging_across_mergeable_types_at_pageblock_order() {
    let mut a = Allocator::new(&tiny(1), nopcp(PolicyKind::Vanilla)).unwrap();
    let base = a.zones()[0].span().start;
    relabel(&mut a, base, Mt::Unmovable);
    // allocate the unmovable block whole, then free it: it merges with its movable buddy
    a.alloc_at(base, 3, Gfp::KERNEL, 0).unwrap();
    a.free(base, 3, 0).unwrap();
    let m = a.page_state(base).unwrap();
    assert_eq!((m.state(), m.order()), (PageState::Free, 4));
    assert_eq!(
        label(&a, base + 8),
        Mt::Unmovable,
        "the buddy's block takes the freeing type"
    );
}

#[test]
fn no_merge_with_isolated_or_highatomic() {
    let mut a = Allocator::new(&tiny(1), nopcp(PolicyKind::Vanilla)).unwrap();
    let base = a.zones()[0].span().start;
    relabel(&mut a, base + 8, Mt::HighAtomic);
    a.alloc_at(base, 3, Gfp::HIGHUSER_MOVABLE, 0).unwrap();
    a.free(base, 3, 0).unwrap();
    assert_eq!(
        a.page_state(base).unwrap().order(),
        3,
        "no merge with a highatomic buddy"
    );
}

#[test]
fn watermarks_follow_min_free_kbytes() {
    let l = MemoryLayout::x86_64(16 << 30, &X86Options::default()).unwrap();
    let a = Allocator::new(&l, Config::default()).unwrap();
    let total_min: u64 = a.zones().iter().map(|z| z.wmark()[0]).sum();
    // THP raises min_free_kbytes to 11 pageblocks per zone: 3 zones * 11 * 512 pages
    assert!(
        (16896 - 3..=16896).contains(&total_min),
        "sum of min watermarks {}",
        total_min
    );
    let n = &a.zones()[a.zone_by_kind(ZoneKind::Normal).unwrap()];
    assert!(n.wmark()[1] > n.wmark()[0] && n.wmark()[2] > n.wmark()[1]);
    // GFP_ATOMIC sees 37.5 % less of min: passes where a normal request fails
    let free = n.wmark()[0] - n.wmark()[0] / 4;
    let f_atomic = AllocFlags::MIN_RESERVE.with(AllocFlags::NON_BLOCK);
    assert!(n.watermark_ok(0, n.wmark()[0], 2, f_atomic, free));
    assert!(!n.watermark_ok(0, n.wmark()[0], 2, AllocFlags::WMARK_MIN, free));
    // lowmem reserve protects DMA32 from Normal-capable requests
    let d = &a.zones()[a.zone_by_kind(ZoneKind::Dma32).unwrap()];
    assert!(d.lowmem_reserve()[ZoneKind::Normal as usize] > 0);
}

#[test]
fn highatomic_reserve_and_unreserve() {
    // default watermarks: min 64 pages, low 80 on this 1024-page zone
    let mut a = Allocator::new(
        &tiny(8),
        Config {
            pcp: false,
            ..cfg(PolicyKind::Vanilla)
        },
    )
    .unwrap();
    let pages = fill_movable(&mut a);
    // leave 72 free pages: below low (the fast path fails), above the atomic reserve of min
    for &p in pages.iter().rev().take(72) {
        a.free(p, 0, 0).unwrap();
    }
    let p = a
        .alloc(AllocRequest::new(1, Gfp::ATOMIC), &mut NoEnv)
        .unwrap();
    assert_eq!(
        label(&a, p),
        Mt::HighAtomic,
        "a high-order atomic allocation reserves its block"
    );
    assert_eq!(a.zones()[0].nr_reserved_highatomic(), 8);
    assert_eq!(a.vm().get(Vm::HighatomicReserve), 1);
    // the reserve is hidden from normal requests' watermark and served to atomics first
    let q = a
        .alloc(AllocRequest::new(1, Gfp::ATOMIC), &mut NoEnv)
        .unwrap();
    assert_eq!(label(&a, q), Mt::HighAtomic);
    let zi = 0;
    // force-unreserve gives the block back to the requester's type
    let mut released = false;
    for _ in 0..2 {
        let z = &mut test_support::zones_mut(&mut a)[zi];
        let mut vm = VmStat::default();
        let mut ev = spb_alloc::event::EventLog::default();
        let mut ctx = test_support::policy_ctx(&mut vm, &mut ev);
        released |=
            spb_alloc::policy::mainline::unreserve_highatomic(z, &mut ctx, Mt::Unmovable, true);
    }
    assert!(released);
    assert_eq!(label(&a, p), Mt::Unmovable);
}

use spb_alloc::vmstat::VmStat;

#[test]
fn pcp_pages_are_neither_free_nor_allocated() {
    // a 1 GiB zone: batch 63
    let l = MemoryLayout::single_zone(Geometry::X86_64, ZoneKind::Normal, 1 << 20, 1 << 18);
    let mut a = Allocator::new(
        &l,
        Config {
            check_every: 0,
            ..cfg(PolicyKind::Vanilla)
        },
    )
    .unwrap();
    let managed = a.zones()[0].managed_pages();
    let p = a
        .alloc(
            AllocRequest::new(0, Gfp::HIGHUSER_MOVABLE).cpu(1),
            &mut NoEnv,
        )
        .unwrap();
    a.check().unwrap();
    let z = &a.zones()[0];
    let pcp = z.pcp()[1].count();
    assert!(pcp > 0, "the refill left pages on cpu 1's list");
    assert_eq!(z.free_pages() + pcp + 1, managed);
    assert_eq!(z.spbs().iter().map(|s| s.pcp_pages()).sum::<u64>(), pcp);
    a.free(p, 0, 1).unwrap();
    assert_eq!(
        a.zones()[0].pcp()[1].count(),
        pcp + 1,
        "a freed order-0 page goes to the per-CPU list"
    );
    a.drain_all_pcp();
    assert_eq!(a.zones()[0].free_pages(), managed);
    // buddyinfo does not see per-CPU pages
    a.alloc(AllocRequest::new(0, Gfp::KERNEL), &mut NoEnv)
        .unwrap();
    let bi_pages: u64 = (0..11)
        .map(|o| a.zones()[0].nr_free()[o].iter().sum::<u64>() << o)
        .sum();
    assert_eq!(bi_pages, a.zones()[0].free_pages());
}

#[test]
fn zone_fallback_normal_then_dma32() {
    let mut a = Allocator::new(&tiny_two_zone(1), nopcp(PolicyKind::Vanilla)).unwrap();
    let mut zones_used = std::collections::BTreeSet::new();
    while let Ok(p) = a.alloc(AllocRequest::new(0, Gfp::KERNEL), &mut NoEnv) {
        zones_used.insert(a.zone_of(p).unwrap());
    }
    assert!(
        zones_used.contains(&1) && zones_used.contains(&0),
        "Normal first, then DMA32: {:?}",
        zones_used
    );
    // a DMA32 request never uses Normal
    let mut b = Allocator::new(&tiny_two_zone(1), nopcp(PolicyKind::Vanilla)).unwrap();
    let p = b
        .alloc(
            AllocRequest::new(0, Gfp(Gfp::KERNEL.0 | Gfp::DMA32.0)),
            &mut NoEnv,
        )
        .unwrap();
    assert_eq!(b.zone_of(p), Some(0));
}

#[test]
fn bad_frees_are_rejected_without_damage() {
    let mut a = Allocator::new(&tiny(1), cfg(PolicyKind::Vanilla)).unwrap();
    let p = a
        .alloc(AllocRequest::new(2, Gfp::KERNEL), &mut NoEnv)
        .unwrap();
    assert!(matches!(a.free(p, 1, 0), Err(FreeError::WrongOrder { .. })));
    assert!(matches!(
        a.free(p + 1, 0, 0),
        Err(FreeError::NotAllocated { .. })
    ));
    assert!(matches!(
        a.free(1 << 40, 0, 0),
        Err(FreeError::OutOfRange { .. })
    ));
    a.free(p, 2, 0).unwrap();
    assert!(matches!(a.free(p, 2, 0), Err(FreeError::DoubleFree { .. })));
    a.check().unwrap();
}

#[test]
fn split_pieces_free_separately() {
    let mut a = Allocator::new(&tiny(1), cfg(PolicyKind::Vanilla)).unwrap();
    let p = a
        .alloc(AllocRequest::new(3, Gfp::HIGHUSER_MOVABLE), &mut NoEnv)
        .unwrap();
    a.split(p, 3, 0).unwrap();
    for i in 0..8 {
        a.free(p + i, 0, 0).unwrap();
    }
    a.drain_all_pcp();
    assert_eq!(a.free_pages(), a.zones()[0].managed_pages());
}

#[test]
fn contig_migrates_movable_and_fails_on_unmovable() {
    let mut a = Allocator::new(&tiny(2), cfg(PolicyKind::Vanilla)).unwrap();
    let mut env = TrackEnv::default();
    let base = a.zones()[0].span().start;
    a.alloc_at(base + 3, 0, Gfp::HIGHUSER_MOVABLE, 7).unwrap();
    env.loc.insert(7, (base + 3, 0));
    a.alloc_at(base + 128 + 5, 0, Gfp::KERNEL, 8).unwrap();
    let p = a
        .alloc_contig(7, Gfp::HIGHUSER_MOVABLE, 9, &mut env)
        .unwrap();
    assert_eq!(p, base, "the first SPB after migrating its movable page");
    assert_eq!(env.moves, 1);
    assert!(
        a.alloc_contig(7, Gfp::HIGHUSER_MOVABLE, 10, &mut env)
            .is_err(),
        "the second SPB holds an unmovable page"
    );
    a.free(p, 7, 0).unwrap();
    a.check().unwrap();
}

/// An embedder whose movable pages are all clean page cache: a contiguous allocation reclaims
/// them (`Env::reclaim_clean`); it never needs a migration target, so reclaim for targets is a
/// defect (counted).
#[derive(Default)]
struct CleanCache {
    reclaimed_clean: u64,
    target_reclaims: u64,
    moves: u64,
}

impl Env for CleanCache {
    fn migrate(&mut self, _from: Pfn, _to: Pfn, _order: u8, _cookie: u32) -> MigrateOutcome {
        self.moves += 1;
        MigrateOutcome::Moved
    }
    fn reclaim_clean(&mut self, _pfn: Pfn, order: u8, _cookie: u32) -> bool {
        self.reclaimed_clean += 1 << order;
        true
    }
    fn reclaim(&mut self, _req: ReclaimRequest, _out: &mut Vec<FreedBlock>) {
        self.target_reclaims += 1;
    }
}

#[test]
fn contig_reclaims_clean_page_cache_before_it_migrates() {
    // alloc_contig_range: reclaim_clean_pages_from_list, then migrate_pages. A machine full of
    // clean page cache has no free target for anything, and needs none.
    let mut a = Allocator::new(&tiny(2), nopcp(PolicyKind::Vanilla)).unwrap();
    fill_movable(&mut a);
    assert_eq!(a.free_pages(), 0);
    let mut env = CleanCache::default();
    let p = a
        .alloc_contig(7, Gfp::HIGHUSER_MOVABLE, 9, &mut env)
        .expect("the range's clean page cache is reclaimed, not migrated");
    assert_eq!(p, a.zones()[0].span().start);
    assert_eq!(env.reclaimed_clean, 128, "every page of the range");
    assert_eq!(
        (env.moves, env.target_reclaims),
        (0, 0),
        "no target asked for"
    );
    assert_eq!(a.vm().get(Vm::PgmigrateSuccess), 0);
    a.check().unwrap();
}

/// An embedder that records the allocator's hints ([`Env::prefetch`]) and, at each block it
/// is asked about, whether that block and the next page's block were hinted already.
#[derive(Default)]
struct Hinted {
    hints: core::cell::RefCell<Vec<u32>>,
    asked: u64,
    unhinted: u64,
    next_unhinted: u64,
}

impl Env for Hinted {
    fn prefetch(&self, cookie: u32) {
        self.hints.borrow_mut().push(cookie);
    }
    fn reclaim_clean(&mut self, _pfn: Pfn, _order: u8, cookie: u32) -> bool {
        self.asked += 1;
        let h = self.hints.borrow();
        self.unhinted += !h.contains(&cookie) as u64;
        self.next_unhinted += !h.contains(&(cookie + 1)) as u64;
        true
    }
}

#[test]
fn contig_hints_the_embedder_ahead_of_the_blocks_it_walks() {
    let mut a = Allocator::new(&tiny(2), nopcp(PolicyKind::Vanilla)).unwrap();
    let (s, e) = (a.zones()[0].span().start, a.zones()[0].span().end);
    // every page an order-0 movable block whose cookie is its pfn + 1
    for p in s..e {
        a.alloc_at(p, 0, Gfp::HIGHUSER_MOVABLE, p as u32 + 1)
            .unwrap();
    }
    let mut env = Hinted::default();
    let p = a
        .alloc_contig(7, Gfp::HIGHUSER_MOVABLE, 1 << 30, &mut env)
        .expect("clean page cache is reclaimed");
    assert_eq!(env.asked, 128);
    assert_eq!(
        env.unhinted, 0,
        "every block is hinted before it is asked about"
    );
    assert_eq!(
        env.next_unhinted, 1,
        "and so is the next, but for the range's last"
    );
    let hints = env.hints.borrow();
    let mut seen: Vec<u32> = hints.clone();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), hints.len(), "each block once");
    assert!(
        hints
            .iter()
            .all(|&c| (p..p + 128).contains(&(c as u64 - 1))),
        "no hint outside the range"
    );
    a.check().unwrap();
}

/// An embedder whose reclaim frees one page per call: the first `in_range` calls free the
/// last pages of the range a contiguous allocation has isolated (progress, but no migration
/// target), the later ones pages above it.
struct SlowReclaim {
    range_end: Pfn,
    in_range: u64,
    calls: u64,
    moves: u64,
}

impl Env for SlowReclaim {
    fn migrate(&mut self, _from: Pfn, _to: Pfn, _order: u8, _cookie: u32) -> MigrateOutcome {
        self.moves += 1;
        MigrateOutcome::Moved
    }
    fn reclaim(&mut self, _req: ReclaimRequest, out: &mut Vec<FreedBlock>) {
        self.calls += 1;
        let pfn = if self.calls <= self.in_range {
            self.range_end - self.calls
        } else {
            self.range_end + (self.calls - self.in_range - 1)
        };
        out.push(FreedBlock { pfn, order: 0 });
    }
}

#[test]
fn contig_target_reclaim_retries_while_it_makes_progress() {
    // alloc_migration_target with __GFP_RETRY_MAYFAIL: reclaim that frees pages the caller
    // cannot use (here: inside its own isolated range) is progress, so the target allocation
    // reclaims again instead of failing the whole range.
    let mut a = Allocator::new(&tiny(2), nopcp(PolicyKind::Vanilla)).unwrap();
    fill_movable(&mut a);
    let start = a.zones()[0].span().start;
    let mut env = SlowReclaim {
        range_end: start + 128,
        in_range: 3,
        calls: 0,
        moves: 0,
    };
    let p = a
        .alloc_contig(7, Gfp::HIGHUSER_MOVABLE, 9, &mut env)
        .expect("the first target comes with the fourth reclaim round");
    assert_eq!(p, start);
    // 3 rounds freed pages of the range, then one page above it per page still to move
    assert_eq!((env.calls, env.moves), (128, 125));
    assert_eq!(a.vm().get(Vm::AllocstallNormal), 128, "one stall per round");
    assert_eq!(
        *a.stall_causes(),
        StallCauses {
            contig_targets: 128,
            ..StallCauses::default()
        },
        "each one a contiguous allocation's target reclaim"
    );
    a.check().unwrap();
}

#[test]
fn grow_zone_adds_memory() {
    let g = Geometry::TINY;
    let mut l = tiny(2);
    let s = l.zones[0].span.start;
    l.zones[0].uninit.push(PfnRange::new(s + 128, s + 256));
    let mut a = Allocator::new(&l, cfg(PolicyKind::Spb)).unwrap();
    assert_eq!(a.zones()[0].managed_pages(), 128);
    a.grow_zone(0, PfnRange::new(s + 128, s + 256)).unwrap();
    assert_eq!(a.zones()[0].managed_pages(), 256);
    // hot-add beyond the end: new SPBs appear
    a.grow_zone(0, PfnRange::new(s + 256, s + 256 + g.spb_pages()))
        .unwrap();
    assert_eq!(a.zones()[0].spbs().len(), 3);
    a.check().unwrap();
    assert!(matches!(
        a.grow_zone(0, PfnRange::new(s, s + 8)),
        Err(GrowError::AlreadyManaged { .. })
    ));
}

#[test]
fn compaction_frees_a_high_order_block() {
    let mut a = Allocator::new(&tiny(1), nopcp(PolicyKind::Vanilla)).unwrap();
    let mut env = TrackEnv::default();
    let pages = fill_movable(&mut a);
    for (k, &p) in pages.iter().enumerate() {
        env.loc.insert(0, (p, 0));
        if k % 2 == 0 {
            a.free(p, 0, 0).unwrap();
        }
    }
    env.loc.clear();
    assert_eq!(a.zones()[0].nr_free()[3].iter().sum::<u64>(), 0);
    let r = a.compact_zone(
        0,
        Some(3),
        spb_alloc::compaction::CompactPriority::SyncFull,
        Mt::Movable,
        false,
        &mut env,
    );
    assert_eq!(r, spb_alloc::compaction::CompactResult::Success);
    assert!(a.zones()[0].nr_free()[3..].iter().flatten().sum::<u64>() > 0);
    assert!(a.vm().get(Vm::PgmigrateSuccess) > 0);
}

#[test]
fn dumps_have_kernel_layout() {
    let a = Allocator::new(&tiny_two_zone(2), cfg(PolicyKind::Vanilla)).unwrap();
    let bi = a.buddyinfo();
    for line in bi.lines() {
        assert!(line.starts_with("Node 0, zone "));
        assert!(line.ends_with(' '));
    }
    let pt = a.pagetypeinfo();
    assert!(pt.starts_with(
        "Page block order: 3\nPages per block:  8\n\nFree pages count per migrate type at order "
    ));
    assert!(pt.contains("Node    0, zone   Normal, type      Movable "));
    assert!(pt.contains("\nNumber of blocks type     Unmovable      Movable  Reclaimable   HighAtomic          CMA      Isolate \n"));
    assert!(pt.contains("Node 0, zone   Normal            0           32            0            0            0            0 \n"), "{}", pt);
}

/// A 1 GiB zone (batch 63) under `tuning`, with `n` order-1 kernel blocks allocated on CPU 0
/// and CPU 0's lists then drained: the free streak starts from nothing.
fn order1_blocks(tuning: spb_alloc::pcp::PcpFreeTuning, n: usize) -> (Allocator, Vec<Pfn>) {
    let l = MemoryLayout::single_zone(Geometry::X86_64, ZoneKind::Normal, 1 << 20, 1 << 18);
    let mut a = Allocator::new(
        &l,
        Config {
            check_every: 0,
            pcp_free_tuning: tuning,
            ..cfg(PolicyKind::Vanilla)
        },
    )
    .unwrap();
    let blocks: Vec<Pfn> = (0..n)
        .map(|_| {
            a.alloc(AllocRequest::new(1, Gfp::KERNEL).cpu(0), &mut NoEnv)
                .unwrap()
        })
        .collect();
    a.drain_all_pcp();
    (a, blocks)
}

#[test]
fn pcp_free_high_drains_a_streak_of_high_order_frees() {
    use spb_alloc::pcp::PcpFreeTuning as T;
    let count = |a: &Allocator| a.zones()[0].pcp()[0].count();
    // before 6.18 (free_count >= batch): each order-1 free adds 2 to the streak; the 33rd
    // sees a streak of 64 >= 63, the previous free high-order and 64 pages listed: it drains
    // the CPU's lists (up to 32 x batch pages)
    let (mut a, blocks) = order1_blocks(T::MainlineBatch, 40);
    for (i, &p) in blocks.iter().take(33).enumerate() {
        a.free(p, 1, 0).unwrap();
        if i < 32 {
            assert_eq!(
                count(&a),
                2 * (i as u64 + 1),
                "free {i} keeps the block listed"
            );
        }
    }
    assert_eq!(
        count(&a),
        0,
        "the 33rd free of the streak drained the lists"
    );
    a.check().unwrap();
    // 6.18 (free_count >= batch + high_min / 2): the same 33 frees stay listed
    let (mut b, blocks) = order1_blocks(T::Mainline, 40);
    for &p in blocks.iter().take(33) {
        b.free(p, 1, 0).unwrap();
    }
    assert_eq!(count(&b), 66);
    assert!(
        b.zones()[0].pcp()[0].high_min() / 2 > 2,
        "a higher threshold"
    );
    // an order-0 free breaks the streak: the next order-1 free does not drain
    let (mut c, blocks) = order1_blocks(T::MainlineBatch, 40);
    for &p in blocks.iter().take(32) {
        c.free(p, 1, 0).unwrap();
    }
    let q = c
        .alloc(AllocRequest::new(0, Gfp::KERNEL).cpu(1), &mut NoEnv)
        .unwrap();
    c.free(q, 0, 0).unwrap();
    c.free(blocks[32], 1, 0).unwrap();
    assert!(count(&c) >= 64, "no drain right after an order-0 free");
    // the older model never drains on a streak
    let (mut d, blocks) = order1_blocks(T::Simple, 40);
    for &p in &blocks {
        d.free(p, 1, 0).unwrap();
    }
    assert_eq!(count(&d), 80);
}

#[test]
fn every_per_cpu_allocation_halves_the_free_streak() {
    use spb_alloc::pcp::PcpFreeTuning as T;
    for (tuning, halved) in [(T::Mainline, true), (T::Simple, false)] {
        let (mut a, blocks) = order1_blocks(tuning, 8);
        for &p in &blocks {
            a.free(p, 1, 0).unwrap();
        }
        let before = a.zones()[0].pcp()[0].free_count();
        assert_eq!(before, 16);
        // a hit: the order-1 list is not empty, no refill
        a.alloc(AllocRequest::new(1, Gfp::KERNEL).cpu(0), &mut NoEnv)
            .unwrap();
        let after = a.zones()[0].pcp()[0].free_count();
        assert_eq!(after, if halved { 8 } else { 16 }, "{tuning:?}");
    }
}

/// An embedder whose reclaim frees nothing though it reports reclaimable pages, and whose OOM
/// killer finds no victim: every reclaiming request runs the slow path to its end.
struct Hopeless;

impl Env for Hopeless {
    fn reclaimable_pages(&self) -> u64 {
        1 << 30
    }
}

#[test]
fn the_last_resort_nofragment_drop_keeps_the_reclaim_retry_count() {
    // defrag_mode (and spb, patch 20) keeps NOFRAGMENT through the slow path and drops it just
    // before OOM with a `goto retry` that keeps no_progress_loops: a request that no reclaim
    // serves stalls once more after the drop, not through a second series of 16 retries
    let stalls = |kind: PolicyKind| {
        let mut a = Allocator::new(&tiny(1), nopcp(kind)).unwrap();
        fill_movable(&mut a);
        let r = a.alloc(AllocRequest::new(0, Gfp::HIGHUSER_MOVABLE), &mut Hopeless);
        assert!(r.is_err(), "{kind:?}: nothing to give");
        a.check().unwrap();
        a.vm().get(Vm::AllocstallNormal)
    };
    let vanilla = stalls(PolicyKind::Vanilla);
    assert_eq!(
        vanilla, 17,
        "a stall per round until no_progress_loops exceeds 16"
    );
    for kind in [PolicyKind::Defrag, PolicyKind::Spb, PolicyKind::SpbNext] {
        assert_eq!(
            stalls(kind),
            vanilla + 1,
            "{kind:?}: the round after the drop"
        );
    }
}
