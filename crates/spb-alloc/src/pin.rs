//! Long-term pins: where a block the embedder is about to pin for a long time should live.
//!
//! The kernel takes a long-term pin (`pin_user_pages(FOLL_LONGTERM)`: RDMA memory regions,
//! VFIO, io_uring fixed buffers) only on a folio that may stay put: a folio in `ZONE_MOVABLE`
//! or a CMA area is first migrated to a page allocated without `__GFP_MOVABLE`
//! (`check_and_migrate_movable_pages`), because a pinned page can never be moved out of the
//! way of a contiguous allocation. A clean superpageblock is the same kind of region: one
//! pinned page keeps the whole 1 GiB from being allocated. spb-next's `pin_migrate` applies the
//! kernel's rule to clean SPBs; every other policy (and spb-next with the switch off) leaves the
//! block where it is. With `pin_make_room` (off), a pin that finds no room in the zone's pin
//! SPB first moves unpinned movable memory out of it, so the pins stay gathered there instead
//! of spreading to whichever clean SPB has a free block left.

use crate::contig::TargetFor;
use crate::env::Env;
use crate::geometry::Pfn;
use crate::migratetype::MigrateType;
use crate::page::PageState;
use crate::Allocator;

impl Allocator {
    /// The embedder is about to take a long-term pin on the allocated movable block at `pfn`.
    /// If the policy keeps long-term pins out of the block's SPB
    /// ([`crate::policy::Policy::pin_should_migrate`]), the block is migrated first through
    /// [`Env::migrate`] to a movable block where a pin costs the fewest 1 GiB pages: a tainted
    /// SPB above its reserve, an SPB lost to reservations or holes, else the zone's pin SPB
    /// (the fullest clean SPB with room; never an empty SPB, nor the block's own), from the
    /// free lists only (low watermark, no reclaim; below the pageblock order never a piece of a
    /// free pageblock). Returns whether the block moved; when it did not (no policy rule, no
    /// room, or the embedder refused), the embedder pins it where it is.
    ///
    /// A pin is not an allocation request: its work is not added to
    /// [`Allocator::take_request_cost`]; the pages it moves count in `pgmigrate_success` and
    /// the allocator's pages migrated.
    pub fn longterm_pin(&mut self, pfn: Pfn, env: &mut dyn Env) -> bool {
        let Some(zi) = self.zone_of(pfn) else {
            return false;
        };
        let z = &self.zones[zi];
        let m = *z.page(pfn);
        if m.state != PageState::Alloc
            || MigrateType::from_u8(m.mt) != Some(MigrateType::Movable)
            || !self.policy.pin_should_migrate(zi, z, pfn)
        {
            return false;
        }
        // the target never comes from the block's own SPB
        let si = z.spb_idx(pfn) as u32;
        // spb-next `pin_make_room`: the pins stay gathered in the pin SPB
        if let Some(ps) = self.policy.pin_room_spb(zi, z, m.order, si) {
            self.make_pin_room(zi, ps, m.order, env);
        }
        let before = self.policy.exclude(Some((zi as u8, si)));
        let moved = self.migrate_out(zi, pfn, TargetFor::LongtermPin, env) == Some(true);
        self.policy.exclude(before);
        self.after_op(env);
        moved
    }

    /// spb-next `pin_make_room`: make room for a block of `order` in SPB `ps` (the zone's pin
    /// SPB), moving movable blocks the embedder does not report maybe pinned to memory outside
    /// `ps` (evacuation targets: no reclaim under spb-next's `evacuate_no_reclaim` and
    /// `evacuate_split_first`; a THP moves whole or not at all). At the pageblock order or
    /// above: the whole pageblock with the fewest movable pages among those holding movable
    /// pages only and no pinned block. Below it: one block of `order` in such a pageblock that
    /// holds other pages, so the room it leaves is a fragment, which is what a pin target below
    /// the pageblock order takes. A move that finds no target ends it, the room half made (the
    /// pin then goes where the walk finds room, as without the rule).
    fn make_pin_room(&mut self, zi: usize, ps: u32, order: u8, env: &mut dyn Env) {
        let z = &self.zones[zi];
        let pbp = self.geo.pageblock_pages();
        let whole = order >= self.geo.pageblock_order;
        // an unpinned block of `order` in the pageblock at `b`
        let unpinned_block = |b: Pfn| {
            let mut p = b;
            while p < b + pbp {
                let m = *z.page(p);
                if m.state == PageState::Alloc
                    && m.order == order
                    && m.mt == MigrateType::Movable as u8
                    && !env.maybe_pinned(p, m.cookie())
                {
                    return Some(p);
                }
                p = crate::contig::after_block(z, p, &m);
            }
            None
        };
        // the movable-only pageblocks, cheapest first; below the pageblock order only those
        // that keep other pages once the block is out
        let first = crate::policy::spb_work::evacuable_blocks(z, ps, None)
            .into_iter()
            .filter(|&(movable, _)| whole || u64::from(movable) > 1u64 << order)
            .find_map(|(_, b)| {
                if whole {
                    (!self.range_maybe_pinned(zi, b, pbp, env)).then_some(b)
                } else {
                    unpinned_block(b)
                }
            });
        let Some(first) = first else {
            return;
        };
        let last = first + if whole { pbp } else { 1u64 << order };
        let before = self.policy.exclude(Some((zi as u8, ps)));
        let mut p = first;
        while p < last {
            let m = *self.zones[zi].page(p);
            if m.state == PageState::Alloc
                && m.mt == MigrateType::Movable as u8
                && self.migrate_out(zi, p, TargetFor::Evacuation, env) != Some(true)
            {
                break;
            }
            p = crate::contig::after_block(&self.zones[zi], p, &m);
        }
        self.policy.exclude(before);
    }
}
