//! Long-term pins: where a block the embedder is about to pin for a long time should live.
//!
//! The kernel takes a long-term pin (`pin_user_pages(FOLL_LONGTERM)`: RDMA memory regions,
//! VFIO, io_uring fixed buffers) only on a folio that may stay put: a folio in `ZONE_MOVABLE`
//! or a CMA area is first migrated to a page allocated without `__GFP_MOVABLE`
//! (`check_and_migrate_movable_pages`), because a pinned page can never be moved out of the
//! way of a contiguous allocation. A clean superpageblock is the same kind of region: one
//! pinned page keeps the whole 1 GiB from being allocated. spb-next's `pin_migrate` applies the
//! kernel's rule to clean SPBs; every other policy (and spb-next with the switch off) leaves the
//! block where it is.

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
        let before = self.policy.exclude(Some((zi as u8, si)));
        let moved = self.migrate_out(zi, pfn, TargetFor::LongtermPin, env) == Some(true);
        self.policy.exclude(before);
        self.after_op(env);
        moved
    }
}
