//! The per-CPU *hit* fast path of [`Allocator::alloc`] and [`Allocator::free`].
//!
//! # What it covers
//!
//! - **Allocation**: a request whose preferred zone (the highest zone its gfp mask allows) has a
//!   non-empty per-CPU list for (order, migratetype) on the requesting CPU, with the per-CPU
//!   lists on, a cacheable order (0..=3 or the pageblock order), and the zone not flagged below
//!   its high watermark and passing the high-watermark test. The hit pops the hottest entry,
//!   accounts it per-CPU -> allocated and then runs `Allocator::prep_new_page`, the same tail
//!   every successful `rmqueue` runs (head metadata, kswapd wake-up on boost, category-change
//!   events, the spb policy's `after_alloc` hook, `pgalloc_<zone>`), and the invariant check
//!   of `check_every`.
//! - **Free**: a block that is an allocated head of the given order, of a cacheable order, in a
//!   pageblock that is not isolated, with the per-CPU lists on. The hit is `free` with
//!   `free_inner`'s per-CPU branch inlined: `pgfree`, account allocated -> per-CPU, return to the
//!   owning CPU's list under spb pageblock ownership, [`crate::zone::Zone::pcp_free`] (which also does the
//!   high/batch tuning and trims the list with `free_pcppages_bulk` when it is over `high`),
//!   category-change events, the invariant check.
//!
//! # When it falls back
//!
//! Whenever one of those conditions does not hold the hit returns before touching anything and
//! the full path runs as it always did: bad order or CPU, no zone for the mask, per-CPU lists
//! off or `Config::fast_path` off, an uncached order, an empty list (the refill with
//! `nr_pcp_alloc`, spb's owned-pageblock harvest and the policy's `rmqueue` live in the full
//! path), a zone below or near its high watermark (the full path walks the zonelist, updates
//! `below_high` and checks the alloc-flags watermark), and on the free side invalid frees (for
//! the error), contiguous blocks and isolated pageblocks.
//!
//! # Why it is equivalent
//!
//! The full allocation path computes the fast-path alloc flags, walks the zonelist from the
//! preferred zone down and calls `rmqueue` on the first zone that passes its watermark test;
//! `rmqueue` pops the per-CPU list when it is non-empty. With the conditions above the walk
//! stops at the preferred zone: `below_high` is false and the high-watermark test passes, so
//! the walk neither changes `below_high` nor evaluates the second test, and `rmqueue` finds
//! the list non-empty, so no refill runs and no `nr_pcp_alloc` tuning happens. What is left is
//! exactly what the hit does, in the same order: `ops += 1`, `pcp_alloc_started` (mainline halves
//! the free streak on every list allocation), `pcp_pop`, `account`,
//! `prep_new_page`, `after_op`. The alloc flags the hit passes on lack only `NOFRAGMENT`
//! (added by the policy for some zones and for trylock requests), which neither the watermark
//! test nor `prep_new_page` reads; it matters only to the policy's `rmqueue` on a refill. All
//! the tests it performs before committing are pure, so falling back after them is the same as
//! never having tried. The free hit is literally the full path's sequence of operations for
//! its case. Both hits account through `Zone::account_block`, as the full path's `rmqueue`
//! and `free_inner` do for the same moves. `tests/fastpath.rs` checks this end to end: the same long random operation
//! sequences with `fast_path` on and off return the same pfns and leave the same counters, per-CPU
//! lists, free lists and dumps.

use crate::allocator::{AllocRequest, Allocator};
use crate::geometry::Pfn;
use crate::gfp::{fast_path_alloc_flags, Gfp};
use crate::migratetype::MigrateType;
use crate::page::{PageState, NIL};
use crate::pageblock::Acct;
use crate::vmstat::Vm;
use crate::zone::WMARK_HIGH;

/// Where the allocation hit looks for a request, by the gfp bits that select the zone and the
/// migratetype (`gfp & HitRoute::GFP_BITS`): precomputed by [`hit_routes`] from
/// [`Gfp::highest_zone`], [`Gfp::migratetype`] and the allocator's preferred-zone table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HitRoute {
    /// The preferred zone (`u8::MAX`: no zone the mask allows).
    pub zone: u8,
    /// The highest zone index the mask allows (for `lowmem_reserve`).
    pub highest: u8,
    pub mt: MigrateType,
}

impl HitRoute {
    /// The gfp bits [`Gfp::highest_zone`] and [`Gfp::migratetype`] read: the four zone
    /// modifiers and `__GFP_RECLAIMABLE`.
    pub const GFP_BITS: u32 = Gfp::ZONEMASK.0 | Gfp::RECLAIMABLE.0;
    pub const NONE: HitRoute = HitRoute {
        zone: u8::MAX,
        highest: 0,
        mt: MigrateType::Unmovable,
    };
}

/// The route of every value of the [`HitRoute::GFP_BITS`] of a mask, for these zones.
pub(crate) fn hit_routes(preferred_by_kind: &[Option<usize>; 4]) -> [HitRoute; 32] {
    let mut t = [HitRoute::NONE; 32];
    for (bits, r) in t.iter_mut().enumerate() {
        let gfp = Gfp(bits as u32);
        let highest = gfp.highest_zone();
        *r = HitRoute {
            zone: preferred_by_kind[highest as usize].map_or(u8::MAX, |z| z as u8),
            highest: highest as u8,
            mt: gfp.migratetype(),
        };
    }
    t
}

impl Allocator {
    /// The allocation hit (see the module documentation). `None` means "not a hit": nothing
    /// was changed and the full path must run.
    #[inline(always)]
    pub(crate) fn alloc_pcp_hit(&mut self, req: AllocRequest) -> Option<Pfn> {
        let order = req.order;
        let cpu = req.cpu as usize;
        if !self.cfg.fast_path
            || !self.cfg.pcp
            || order > self.geo.max_order
            || cpu >= self.cfg.nr_cpus
        {
            return None;
        }
        let route = self.hit_routes[(req.gfp.0 & HitRoute::GFP_BITS) as usize];
        let zi = route.zone as usize;
        let highest = route.highest as usize;
        let mt = route.mt;
        let z = self.zones.get_mut(zi)?;
        if !z.pcp_allowed(order) {
            return None;
        }
        let li = z.pindex(order, mt);
        if z.pcp[cpu].head[li] == NIL || z.below_high {
            return None;
        }
        let flags = fast_path_alloc_flags(req.gfp);
        let high = z.wmark_pages(WMARK_HIGH);
        let pass = if order == 0 {
            // watermark_fast's order-0 shortcut (fast-path flags never include the reserves)
            z.free_pages as i64 - z.nr_free_highatomic as i64
                > high as i64 + z.lowmem_reserve[highest] as i64
        } else {
            z.watermark_fast(order, high, highest, flags, req.gfp.contains(Gfp::HIGH))
        };
        if !pass {
            return None;
        }
        self.ops += 1;
        z.pcp_alloc_started(cpu);
        let p = z.pcp_pop(cpu, li)?;
        z.account_block(p, order, Acct::Pcp, Acct::Alloc(mt));
        self.prep_new_page(zi, p, req, mt, flags);
        self.maybe_check();
        Some(p)
    }

    /// The free hit (see the module documentation). `false` means "not a hit": nothing was
    /// changed and the full path must run.
    #[inline(always)]
    pub(crate) fn free_pcp_hit(&mut self, pfn: Pfn, order: u8, cpu: u16) -> bool {
        if !self.cfg.fast_path || !self.cfg.pcp {
            return false;
        }
        // most memory is in the highest zone
        let last = self.zones.len().wrapping_sub(1);
        let zi = match self.zones.get(last) {
            Some(z) if z.contains(pfn) => last,
            _ => match self.zone_of(pfn) {
                Some(zi) => zi,
                None => return false,
            },
        };
        let z = &mut self.zones[zi];
        if !z.pcp_allowed(order) {
            return false;
        }
        let m = z.pages[z.idx(pfn)];
        if m.state != PageState::Alloc || m.order != order {
            return false;
        }
        let pb = *z.pb(pfn);
        if pb.is_isolated() {
            return false;
        }
        let n = 1u64 << order;
        let cpu = (cpu as usize).min(z.pcp.len() - 1);
        let mt = MigrateType::from_u8(m.mt).unwrap_or(MigrateType::Movable);
        self.ops += 1;
        self.vm.add(Vm::Pgfree, n);
        z.account_block(pfn, order, Acct::Alloc(mt), Acct::Pcp);
        // spb per-CPU ownership: frees of owned pages return to the owner's lists
        let cpu = if pb.owner > 0 && (pb.owner as usize - 1) < z.pcp.len() {
            pb.owner as usize - 1
        } else {
            cpu
        };
        z.pcp_free(cpu, pfn, order, pb.migratetype());
        if !z.cat_changes.is_empty() {
            self.note_category_changes(zi, Gfp::NONE, order);
        }
        self.maybe_check();
        true
    }
}

#[cfg(test)]
mod tests {
    use crate::env::NoEnv;
    use crate::gfp::Gfp;
    use crate::layout::{MemoryLayout, X86Options};
    use crate::{AllocRequest, Allocator, Config, Geometry, Pfn, PolicyConfig, PolicyKind};

    /// On a roomy machine an alloc/free pair loop is served by the hits alone, and returns the
    /// hottest page every time; with `fast_path` off the hits never apply.
    #[test]
    fn pair_loop_is_served_by_hits() {
        let layout = MemoryLayout::x86_64(
            16 << 30,
            &X86Options {
                geometry: Geometry::TINY,
                ..X86Options::i440fx()
            },
        )
        .unwrap();
        for kind in PolicyKind::ALL {
            for gfp in [Gfp::KERNEL, Gfp::HIGHUSER_MOVABLE] {
                let mut a = Allocator::new(
                    &layout,
                    Config {
                        policy: PolicyConfig::of(kind),
                        ..Config::default()
                    },
                )
                .unwrap();
                let req = AllocRequest::new(0, gfp).cpu(1);
                let p = a.alloc(req, &mut NoEnv).unwrap(); // the refill (full path)
                assert!(
                    a.free_pcp_hit(p, 0, 1),
                    "{kind:?} {gfp}: free of a cached order"
                );
                for _ in 0..100 {
                    assert_eq!(
                        a.alloc_pcp_hit(req),
                        Some(p),
                        "{kind:?} {gfp}: the hottest page comes back"
                    );
                    assert!(a.free_pcp_hit(p, 0, 1));
                }
                a.check().unwrap();
                a.cfg.fast_path = false;
                assert_eq!(a.alloc_pcp_hit(req), None);
                let q = a.alloc(req, &mut NoEnv).unwrap();
                assert!(!a.free_pcp_hit(q, 0, 1));
                a.free(q, 0, 1).unwrap();
            }
        }
    }

    /// A hit with `check_every` set still runs the invariant checker.
    fn corrupted_after_refill(check_every: u64) -> (Allocator, Pfn) {
        let layout = MemoryLayout::x86_64(
            16 << 30,
            &X86Options {
                geometry: Geometry::TINY,
                ..X86Options::i440fx()
            },
        )
        .unwrap();
        let mut a = Allocator::new(
            &layout,
            Config {
                check_every,
                ..Config::default()
            },
        )
        .unwrap();
        let p = a
            .alloc(AllocRequest::new(0, Gfp::KERNEL), &mut NoEnv)
            .unwrap();
        let zi = a.zone_of(p).unwrap();
        a.zones[zi].free_pages += 1;
        (a, p)
    }

    #[test]
    #[should_panic(expected = "invariant violated")]
    fn alloc_hit_runs_the_checker() {
        let (mut a, p) = corrupted_after_refill(1);
        a.cfg.check_every = 0;
        a.free(p, 0, 0).unwrap();
        a.cfg.check_every = 1;
        assert!(a.alloc_pcp_hit(AllocRequest::new(0, Gfp::KERNEL)).is_some());
    }

    #[test]
    #[should_panic(expected = "invariant violated")]
    fn free_hit_runs_the_checker() {
        let (mut a, p) = corrupted_after_refill(1);
        assert!(a.free_pcp_hit(p, 0, 0));
    }
}
