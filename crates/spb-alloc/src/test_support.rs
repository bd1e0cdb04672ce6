//! White-box access for the crate's own integration tests and benches (`tests/`, `benches/`):
//! they set up exact states and compare private state. Not part of the API: the lab and the
//! command line read through the inspection view ([`crate::Allocator::zones`] and the
//! read-only methods of [`crate::zone::Zone`]) and change state through `Allocator`'s methods.

use alloc::format;
use alloc::string::String;

use crate::geometry::Pfn;
use crate::migratetype::MigrateType;
use crate::zone::Zone;
use crate::{Allocator, Config};

/// The zones, mutable.
pub fn zones_mut(a: &mut Allocator) -> &mut [Zone] {
    &mut a.zones
}

/// The configuration, mutable (e.g. per-CPU lists on/off between operations).
pub fn config_mut(a: &mut Allocator) -> &mut Config {
    &mut a.cfg
}

/// `Zone::move_freepages_block` (see [`crate::Allocator::label_pageblock`] for the checked
/// public form).
pub fn move_freepages_block(z: &mut Zone, pfn: Pfn, mt: MigrateType) -> Option<u64> {
    z.move_freepages_block(pfn, mt)
}

/// The zone state the inspection view does not show, for state-equality tests.
pub fn zone_private_state(z: &Zone) -> String {
    format!(
        "free_pages_blocks {} boosted {} below_high {} compact {:?} changes {:?} areas {:?}",
        z.free_pages_blocks, z.boosted, z.below_high, z.compact, z.cat_changes, z.areas
    )
}

/// A policy context over `vm` and `ev` (zone 0, time 0, boosting off), to call a policy hook
/// directly on a zone from [`zones_mut`].
pub fn policy_ctx<'a>(
    vm: &'a mut crate::vmstat::VmStat,
    ev: &'a mut crate::event::EventLog,
) -> crate::policy::Ctx<'a> {
    crate::policy::Ctx {
        vm,
        ev,
        boost_factor: 0,
        boost: crate::policy::Boost::Off,
        zone_id: 0,
        now_ns: 0,
    }
}
