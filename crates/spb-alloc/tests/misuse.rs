//! The allocator API rejects misuse with an error value, without panicking and without touching
//! its state: for every class, the documented error is returned, `check()` passes, the free
//! count is unchanged, and a snapshot of all page metadata, pageblock and SPB counters, free
//! list counts and per-CPU counts is identical before and after. One test per class, each
//! under all three policies. (docs/reliability.md lists the classes and their errors.)

mod common;
use common::*;
use spb_alloc::layout::{Reservation, ReserveKind};
use spb_alloc::page::{PageMeta, PageState};
use spb_alloc::pageblock::PageblockMeta;
use spb_alloc::superpageblock::SpbMeta;
use spb_alloc::*;

/// Everything a rejected call must leave alone.
#[derive(Clone, Debug, PartialEq)]
struct Snapshot {
    spans: Vec<PfnRange>,
    free: u64,
    managed: Vec<u64>,
    present: Vec<u64>,
    pcp: Vec<Vec<u64>>,
    nr_free: Vec<Vec<Vec<u64>>>,
    pages: Vec<Vec<PageMeta>>,
    pageblocks: Vec<Vec<PageblockMeta>>,
    spbs: Vec<Vec<SpbMeta>>,
}

fn snap(a: &Allocator) -> Snapshot {
    Snapshot {
        spans: a.zones().iter().map(|z| z.span()).collect(),
        free: a.free_pages(),
        managed: a.zones().iter().map(|z| z.managed_pages()).collect(),
        present: a.zones().iter().map(|z| z.present_pages()).collect(),
        pcp: a
            .zones()
            .iter()
            .map(|z| z.pcp().iter().map(|c| c.count()).collect())
            .collect(),
        nr_free: a
            .zones()
            .iter()
            .map(|z| z.nr_free().iter().map(|r| r.to_vec()).collect())
            .collect(),
        pages: a.zones().iter().map(|z| z.pages().to_vec()).collect(),
        pageblocks: a.zones().iter().map(|z| z.pageblocks().to_vec()).collect(),
        spbs: a.zones().iter().map(|z| z.spbs().to_vec()).collect(),
    }
}

/// Assert that `f` returns `expected`, and that the allocator is intact and unchanged.
fn rejects<T: PartialEq + std::fmt::Debug>(
    a: &mut Allocator,
    what: &str,
    expected: T,
    f: impl FnOnce(&mut Allocator) -> T,
) {
    let before = snap(a);
    let got = f(a);
    assert_eq!(got, expected, "{}: {:?}", what, a.config().policy.kind);
    a.check()
        .unwrap_or_else(|e| panic!("{}: invariant violated after a rejected call: {}", what, e));
    let after = snap(a);
    assert_eq!(after.free, before.free, "{}: the free count changed", what);
    assert!(after == before, "{}: the allocator state changed", what);
}

/// Two zones (DMA32 one SPB, Normal 4 SPBs) with a hole, a reservation and uninitialised
/// memory in the Normal zone, and room to grow above it.
fn layout() -> MemoryLayout {
    let mut l = tiny_two_zone(4);
    let s = Geometry::TINY.spb_pages();
    let n = &mut l.zones[1];
    n.holes.push(PfnRange::new(3 * s, 3 * s + 8));
    n.reserved.push(Reservation {
        range: PfnRange::new(3 * s + 16, 3 * s + 24),
        kind: ReserveKind::KernelImage,
    });
    n.uninit.push(PfnRange::new(5 * s, 6 * s));
    l
}

/// An allocator per policy with some state: allocations of several orders on both CPUs, some
/// freed (so per-CPU lists and merged buddies exist).
fn setups() -> Vec<(Allocator, Vec<(Pfn, u8)>)> {
    PolicyKind::ALL
        .iter()
        .map(|&k| {
            let mut a = Allocator::new(&layout(), cfg(k)).unwrap();
            let mut live = Vec::new();
            for i in 0..40u32 {
                let order = [0u8, 0, 1, 2, 3, 4][i as usize % 6];
                let gfp = if i % 3 == 0 {
                    Gfp::KERNEL
                } else {
                    Gfp::HIGHUSER_MOVABLE
                };
                let p = a
                    .alloc(
                        AllocRequest::new(order, gfp).cpu((i % 2) as u16).cookie(i),
                        &mut NoEnv,
                    )
                    .unwrap();
                live.push((p, order));
            }
            for (p, o) in live.drain(30..) {
                a.free(p, o, 1).unwrap();
            }
            a.check().unwrap();
            (a, live)
        })
        .collect()
}

#[test]
fn double_free() {
    for (mut a, live) in setups() {
        // an order-0 page freed to a per-CPU list, then freed again
        let (p, o) = live[0];
        a.free(p, o, 0).unwrap();
        assert_eq!(a.page_state(p).unwrap().state(), PageState::Pcp);
        rejects(
            &mut a,
            "double free of a per-CPU page",
            Err(FreeError::DoubleFree { pfn: p }),
            |a| a.free(p, o, 0),
        );
        // the same after draining: the page is in the buddy lists (maybe merged into a larger
        // buddy, so no longer a head)
        a.drain_all_pcp();
        rejects(
            &mut a,
            "double free of a drained page",
            Err(FreeError::DoubleFree { pfn: p }),
            |a| a.free(p, o, 0),
        );
        // an order-4 block (not per-CPU cacheable on TINY) freed straight to the buddy lists
        let (q, oq) = *live.iter().find(|(_, o)| *o == 4).unwrap();
        a.free(q, oq, 0).unwrap();
        rejects(
            &mut a,
            "double free of a buddy block",
            Err(FreeError::DoubleFree { pfn: q }),
            |a| a.free(q, oq, 0),
        );
        // a contiguous allocation above the buddy maximum, freed twice
        let c = a
            .alloc_contig(
                Geometry::TINY.spb_order,
                Gfp::HIGHUSER_MOVABLE,
                99,
                &mut NoEnv,
            )
            .unwrap();
        a.free(c, Geometry::TINY.spb_order, 0).unwrap();
        rejects(
            &mut a,
            "double free of a contiguous block",
            Err(FreeError::DoubleFree { pfn: c }),
            |a| a.free(c, Geometry::TINY.spb_order, 0),
        );
    }
}

#[test]
fn free_with_wrong_order() {
    for (mut a, live) in setups() {
        for &(p, o) in live.iter().take(12) {
            for given in [o + 1, o.wrapping_sub(1), 11, 255] {
                if given == o {
                    continue;
                }
                rejects(
                    &mut a,
                    "free with the wrong order",
                    Err(FreeError::WrongOrder {
                        pfn: p,
                        allocated: o,
                        given,
                    }),
                    |a| a.free(p, given, 0),
                );
            }
        }
    }
}

#[test]
fn free_of_a_pfn_never_allocated() {
    let s = Geometry::TINY.spb_pages();
    for (mut a, _) in setups() {
        a.drain_all_pcp();
        // free memory that was never handed out: the head of a free buddy, and a page inside one
        let z = a.zone_by_kind(ZoneKind::Dma32).unwrap();
        let head = a.zones()[z].span().start;
        assert_eq!(a.page_state(head).unwrap().state(), PageState::Free);
        rejects(
            &mut a,
            "free of a free buddy head",
            Err(FreeError::DoubleFree { pfn: head }),
            |a| a.free(head, 0, 0),
        );
        rejects(
            &mut a,
            "free of a page inside a free buddy",
            Err(FreeError::DoubleFree { pfn: head + 3 }),
            |a| a.free(head + 3, 0, 0),
        );
        // a hole, a reservation, uninitialised memory: not managed
        for (pfn, what) in [
            (3 * s + 2, "hole"),
            (3 * s + 17, "reserved page"),
            (5 * s + 9, "uninitialised page"),
        ] {
            rejects(&mut a, what, Err(FreeError::NotManaged { pfn }), |a| {
                a.free(pfn, 0, 0)
            });
        }
    }
}

#[test]
fn free_of_a_pfn_outside_every_zone() {
    let s = Geometry::TINY.spb_pages();
    for (mut a, _) in setups() {
        for pfn in [0, s - 1, 6 * s, 1 << 40, u64::MAX] {
            rejects(
                &mut a,
                "free outside every zone",
                Err(FreeError::OutOfRange { pfn }),
                |a| a.free(pfn, 0, 0),
            );
            rejects(
                &mut a,
                "split outside every zone",
                Err(FreeError::OutOfRange { pfn }),
                |a| a.split(pfn, 1, 0),
            );
            rejects(
                &mut a,
                "alloc_at outside every zone",
                Err(FreeError::OutOfRange { pfn }),
                |a| a.alloc_at(pfn, 0, Gfp::KERNEL, 0),
            );
        }
    }
}

#[test]
fn free_of_an_interior_pfn() {
    for (mut a, live) in setups() {
        for &(p, o) in live.iter().filter(|(_, o)| *o > 0) {
            for off in [1, (1u64 << o) - 1] {
                rejects(
                    &mut a,
                    "free of an interior pfn",
                    Err(FreeError::NotAllocated { pfn: p + off }),
                    |a| a.free(p + off, 0, 0),
                );
                rejects(
                    &mut a,
                    "free of an interior pfn, block order",
                    Err(FreeError::NotAllocated { pfn: p + off }),
                    |a| a.free(p + off, o, 0),
                );
            }
        }
    }
}

#[test]
fn split_of_a_free_block_or_to_a_bad_order() {
    for (mut a, live) in setups() {
        a.drain_all_pcp();
        let z = a.zone_by_kind(ZoneKind::Dma32).unwrap();
        let head = a.zones()[z].span().start;
        let o = a.page_state(head).unwrap().order();
        rejects(
            &mut a,
            "split of a free block",
            Err(FreeError::NotAllocated { pfn: head }),
            |a| a.split(head, o, 0),
        );
        let (p, o) = *live.iter().find(|(_, o)| *o == 3).unwrap();
        rejects(
            &mut a,
            "split to the same order",
            Err(FreeError::BadSplit {
                pfn: p,
                order: o,
                new_order: o,
            }),
            |a| a.split(p, o, o),
        );
        rejects(
            &mut a,
            "split to a higher order",
            Err(FreeError::BadSplit {
                pfn: p,
                order: o,
                new_order: 9,
            }),
            |a| a.split(p, o, 9),
        );
        rejects(
            &mut a,
            "split with the wrong order",
            Err(FreeError::WrongOrder {
                pfn: p,
                allocated: o,
                given: 2,
            }),
            |a| a.split(p, 2, 0),
        );
        rejects(
            &mut a,
            "split of an interior pfn",
            Err(FreeError::NotAllocated { pfn: p + 1 }),
            |a| a.split(p + 1, 0, 0),
        );
    }
}

#[test]
fn alloc_at_of_a_used_or_bad_block() {
    let s = Geometry::TINY.spb_pages();
    for (mut a, live) in setups() {
        // allocated blocks, and blocks overlapping them (the error names the used pfn)
        for &(p, o) in live.iter().take(10) {
            rejects(
                &mut a,
                "alloc_at of an allocated block",
                Err(FreeError::DoubleFree { pfn: p }),
                |a| a.alloc_at(p, o, Gfp::KERNEL, 0),
            );
        }
        // an order-3 block covering an order-1 allocation: rejected; per-CPU pages of the range
        // may have gone back to the buddy lists on the way, so only free + per-CPU must hold
        let (p, _) = *live.iter().find(|(_, o)| *o == 1).unwrap();
        let held = |a: &Allocator| {
            a.free_pages()
                + a.zones()
                    .iter()
                    .flat_map(|z| z.pcp().iter())
                    .map(|c| c.count())
                    .sum::<u64>()
        };
        let before = held(&a);
        let r = a.alloc_at(p & !7, 3, Gfp::KERNEL, 0);
        assert!(
            matches!(r, Err(FreeError::DoubleFree { .. })),
            "alloc_at of an order-3 block covering an allocation: {:?}",
            r
        );
        a.check().unwrap();
        assert_eq!(held(&a), before);
        // misaligned, above the maximum order: BadSplit
        rejects(
            &mut a,
            "alloc_at misaligned",
            Err(FreeError::BadSplit {
                pfn: 2 * s + 1,
                order: 1,
                new_order: 1,
            }),
            |a| a.alloc_at(2 * s + 1, 1, Gfp::KERNEL, 0),
        );
        rejects(
            &mut a,
            "alloc_at above the max order",
            Err(FreeError::BadSplit {
                pfn: 2 * s,
                order: 5,
                new_order: 5,
            }),
            |a| a.alloc_at(2 * s, 5, Gfp::KERNEL, 0),
        );
        // a hole, a reservation, uninitialised memory
        rejects(
            &mut a,
            "alloc_at of a hole",
            Err(FreeError::NotManaged { pfn: 3 * s }),
            |a| a.alloc_at(3 * s, 0, Gfp::KERNEL, 0),
        );
        rejects(
            &mut a,
            "alloc_at of a reserved page",
            Err(FreeError::NotManaged { pfn: 3 * s + 16 }),
            |a| a.alloc_at(3 * s + 16, 0, Gfp::KERNEL, 0),
        );
        rejects(
            &mut a,
            "alloc_at of uninitialised memory",
            Err(FreeError::NotManaged { pfn: 5 * s }),
            |a| a.alloc_at(5 * s, 3, Gfp::KERNEL, 0),
        );
    }
}

#[test]
fn alloc_with_order_above_max() {
    for (mut a, _) in setups() {
        for order in [
            Geometry::TINY.max_order + 1,
            Geometry::TINY.spb_order,
            11,
            255,
        ] {
            let want = Err(AllocError {
                order,
                gfp: Gfp::KERNEL,
                kind: AllocErrorKind::OrderTooLarge,
            });
            rejects(&mut a, "alloc above the max order", want, |a| {
                a.alloc(AllocRequest::new(order, Gfp::KERNEL), &mut NoEnv)
            });
        }
        for order in [0u8, 2, 8, 255] {
            rejects(
                &mut a,
                "alloc_contig with a bad order",
                Err(ContigError::BadOrder),
                |a| a.alloc_contig(order, Gfp::HIGHUSER_MOVABLE, 0, &mut NoEnv),
            );
        }
    }
}

#[test]
fn alloc_with_bad_cpu() {
    for (mut a, _) in setups() {
        for cpu in [2u16, 3, u16::MAX] {
            let want = Err(AllocError {
                order: 0,
                gfp: Gfp::KERNEL,
                kind: AllocErrorKind::BadCpu,
            });
            rejects(&mut a, "alloc on a bad cpu", want, |a| {
                a.alloc(AllocRequest::new(0, Gfp::KERNEL).cpu(cpu), &mut NoEnv)
            });
        }
    }
}

#[test]
fn alloc_from_an_absent_zone() {
    for (mut a, _) in setups() {
        // GFP_DMA with no DMA zone
        let want = Err(AllocError {
            order: 0,
            gfp: Gfp::GFP_DMA,
            kind: AllocErrorKind::NoZone,
        });
        rejects(&mut a, "alloc from an absent zone", want, |a| {
            a.alloc(AllocRequest::new(0, Gfp::GFP_DMA), &mut NoEnv)
        });
    }
}

#[test]
fn grow_zone_misuse() {
    let s = Geometry::TINY.spb_pages();
    for (mut a, _) in setups() {
        let n = a.zone_by_kind(ZoneKind::Normal).unwrap();
        let d = a.zone_by_kind(ZoneKind::Dma32).unwrap();
        // over managed memory (inside the span)
        rejects(
            &mut a,
            "grow over managed memory",
            Err(GrowError::AlreadyManaged { pfn: 2 * s }),
            |a| a.grow_zone(n, PfnRange::new(2 * s, 2 * s + 8)),
        );
        // over reserved memory
        rejects(
            &mut a,
            "grow over reserved memory",
            Err(GrowError::AlreadyManaged { pfn: 3 * s + 16 }),
            |a| a.grow_zone(n, PfnRange::new(3 * s + 16, 3 * s + 24)),
        );
        // DMA32 over the Normal zone
        rejects(
            &mut a,
            "grow over another zone",
            Err(GrowError::BadRange {
                start: 2 * s - 8,
                end: 2 * s + 8,
            }),
            |a| a.grow_zone(d, PfnRange::new(2 * s - 8, 2 * s + 8)),
        );
        // below the zone start
        rejects(
            &mut a,
            "grow below the zone",
            Err(GrowError::BadRange {
                start: s,
                end: s + 8,
            }),
            |a| a.grow_zone(n, PfnRange::new(s, s + 8)),
        );
        // empty and reversed ranges
        rejects(
            &mut a,
            "grow with an empty range",
            Err(GrowError::BadRange {
                start: 5 * s,
                end: 5 * s,
            }),
            |a| a.grow_zone(n, PfnRange::new(5 * s, 5 * s)),
        );
        rejects(
            &mut a,
            "grow with a reversed range",
            Err(GrowError::BadRange {
                start: 5 * s + 8,
                end: 5 * s,
            }),
            |a| a.grow_zone(n, PfnRange::new(5 * s + 8, 5 * s)),
        );
        // no such zone
        rejects(
            &mut a,
            "grow a zone that does not exist",
            Err(GrowError::NoZone),
            |a| a.grow_zone(7, PfnRange::new(5 * s, 6 * s)),
        );
        // and the valid growth still works afterwards
        assert_eq!(a.grow_zone(n, PfnRange::new(5 * s, 6 * s)), Ok(s));
        a.check().unwrap();
    }
}

/// BUG (reported, core not changed here): `grow_zone` extends the zone span (and, for spb,
/// rebuilds the policy's zone state) *before* it checks that the range is unmanaged, so a
/// range that starts in managed memory and ends beyond the zone is rejected with
/// `AlreadyManaged` but leaves the span (pages, pageblocks, SPBs, per-SPB lists) grown. With a
/// huge end (e.g. `1 << 40`) the rejected call first tries to allocate metadata for the whole
/// range and aborts the process on allocation failure instead of returning the error.
#[test]
fn bug_rejected_grow_zone_extends_the_span() {
    let s = Geometry::TINY.spb_pages();
    for (mut a, _) in setups() {
        let n = a.zone_by_kind(ZoneKind::Normal).unwrap();
        // starts in managed memory, ends 2 SPBs above the zone end
        rejects(
            &mut a,
            "grow over managed memory and beyond the end",
            Err(GrowError::AlreadyManaged { pfn: 4 * s }),
            |a| a.grow_zone(n, PfnRange::new(4 * s, 8 * s)),
        );
    }
}

/// The same classes in an optimised build cannot panic either: every rejected call above goes
/// through the same code; this test only documents that misuse never reaches an `unwrap` or an
/// index out of bounds on the extreme values (u64::MAX pfns, order 255, cpu u16::MAX).
#[test]
fn extreme_values_never_panic() {
    for (mut a, live) in setups() {
        let (p, _) = live[0];
        for pfn in [u64::MAX, u64::MAX - 1, 1 << 63, p] {
            for order in [0u8, 31, 63, 64, 200, 255] {
                let _ = a.free(pfn, order, u16::MAX);
                let _ = a.split(pfn, order, order.wrapping_sub(1));
                let _ = a.alloc_at(pfn, order, Gfp(u32::MAX), u32::MAX);
                let _ = a.find_allocation(pfn);
                let _ = a.page_state(pfn);
            }
        }
        for order in [31u8, 63, 64, 200, 255] {
            let _ = a.alloc(
                AllocRequest::new(order, Gfp(u32::MAX)).cpu(u16::MAX),
                &mut NoEnv,
            );
            let _ = a.alloc_contig(order, Gfp(u32::MAX), 0, &mut NoEnv);
        }
        let _ = a.grow_zone(usize::MAX, PfnRange::new(u64::MAX - 1, u64::MAX));
        let _ = a.grow_zone(0, PfnRange::new(u64::MAX, 0));
        a.check().unwrap();
    }
}

#[test]
fn wake_ups_with_an_order_above_max() {
    for (mut a, _) in setups() {
        // a wake-up is a hint: an order beyond the buddy orders is read as the largest, and
        // the background work it asks for runs without harm
        a.wake_kswapd(255);
        a.wake_kcompactd(Geometry::TINY.spb_order);
        assert!(a.pending().kswapd.is_some());
        a.background(1_000_000_000, &mut NoEnv);
        a.check().expect("consistent after the background work");
    }
}
