//! `steal_last` and spb-next's `movable_zone_order`: clean memory in every allowed zone before a
//! single-page steal inside a tainted SPB.
//!
//! spb's walk lets movable requests ignore ALLOC_NOFRAGMENT (docs/spb.md, "the walk"): a
//! movable page cannot taint an SPB, so the series' reason for NOFRAGMENT does not apply to
//! it. But the zonelist walk is where NOFRAGMENT does its other job: in mainline the fast
//! path first walks every zone with NOFRAGMENT (Normal, then DMA32), and only when no zone
//! can serve the request without fragmenting does it drop the flag and walk again. Under spb
//! the walk of the preferred zone steals at once, so a movable request (or a migration target
//! of the defrag worker, which asks with NOFRAGMENT first for exactly this reason) puts page
//! cache into the free room of the unmovable and reclaimable pageblocks of tainted SPBs while
//! a lower zone still has free movable memory. That room is what non-movable requests need;
//! once it is eaten they taint the next SPB.
//!
//! `steal_last` (spb-next's idea, on in spb-next since it was re-measured with
//! `highorder_supply`, and on in spb since the lab's kswapd runs on wake-up: over 21 seeds of
//! seed-16g it no longer costs the probe; docs/spb.md, "Choices"): a migration target of spb's
//! own evacuation (the defrag
//! worker, the evacuation of a claimed block, targeted and deferred evacuation: an SPB is
//! `excluded` while it is emptied) honours NOFRAGMENT in the walk: no single-page steal, claims
//! of whole free pageblocks only. `migrate_out` already asks the zonelist twice, with
//! NOFRAGMENT and then without, so a target steals only when no allowed zone had clean memory.
//! On the shared pagecache trace every one of spb's steals was such a target.
//!
//! `movable_zone_order` (off in both: measured worse on thp-challenge and seed-16g's probe,
//! docs/spb-next.md): every movable request honours NOFRAGMENT in the walk, and the zonelist
//! walk drops NOFRAGMENT for movable requests only, after every allowed zone was tried:
//! mainline's fast-path order for the requests that cannot taint. Non-movable requests keep
//! NOFRAGMENT through the slow path as the series does (patch 20). No constant in either.

use crate::gfp::AllocFlags;
use crate::migratetype::MigrateType;

use super::spb_switches::{SpbSwitch, SpbSwitches};

/// May a movable request of the walk take a fragmenting fallback (a single-page steal, or a
/// claim of less than a whole free pageblock)? spb: always. Not while NOFRAGMENT is set for a
/// migration target of an evacuation (`steal_last`, `evacuating`) or for any movable request
/// (`movable_zone_order`).
#[inline]
pub(crate) fn movable_may_fragment(sw: SpbSwitches, flags: AllocFlags, evacuating: bool) -> bool {
    if evacuating && sw.on(SpbSwitch::EvacNoSteal) {
        return false;
    }
    !flags.contains(AllocFlags::NOFRAGMENT)
        || !(sw.on(SpbSwitch::MovableZoneOrder) || (evacuating && sw.on(SpbSwitch::StealLast)))
}

/// Does the zonelist walk drop NOFRAGMENT and walk again for a request of type `mt` when no
/// zone served it? spb keeps the flag (patch 20) unless `keep_nofragment` is off;
/// `movable_zone_order` drops it for movable requests (they cannot taint; mainline's order).
#[inline]
pub(crate) fn drop_in_walk(sw: SpbSwitches, mt: MigrateType) -> bool {
    !sw.on(SpbSwitch::KeepNofragment)
        || (sw.on(SpbSwitch::MovableZoneOrder) && mt == MigrateType::Movable)
}
