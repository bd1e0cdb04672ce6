//! Mainline (6.18) free-list decisions: `__rmqueue_smallest`, `__rmqueue_claim`,
//! `__rmqueue_steal`, `try_to_claim_block`, watermark boosting and the HIGHATOMIC reserve.
//!
//! These run on any bucket layout: with zone-wide lists (vanilla, defrag) they are the kernel's
//! functions; the spb policy reuses the claim and steal steps on its per-SPB lists.

use crate::event::Event;
use crate::geometry::Pfn;
use crate::gfp::AllocFlags;
use crate::migratetype::MigrateType;
use crate::vmstat::Vm;
use crate::zone::Zone;

use super::Ctx;

/// The rmqueue mode cursor (`enum rmqueue_mode`), shared across one per-CPU refill.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RmqueueMode {
    Normal,
    Cma,
    Claim,
    Steal,
}

/// `__rmqueue_smallest` on one bucket: the head of the smallest non-empty list of `mt` at
/// order >= `order`, split down. Returns the block head (off all lists, still accounted free).
#[inline]
pub fn smallest_in(z: &mut Zone, bucket: usize, order: u8, mt: MigrateType) -> Option<Pfn> {
    let o = z.areas[bucket].smallest_from(order as usize, mt.idx())?;
    let i = z.areas[bucket].first(o, mt.idx())?;
    let pfn = z.pfn_of(i);
    Some(z.take_and_expand(pfn, order, mt))
}

/// `__rmqueue_smallest` over every bucket in index order (zone-wide lists: the one bucket).
pub fn smallest_any(z: &mut Zone, order: u8, mt: MigrateType) -> Option<Pfn> {
    for b in 0..z.areas.len() {
        if let Some(p) = smallest_in(z, b, order, mt) {
            return Some(p);
        }
    }
    None
}

/// should_try_claim_block.
#[inline]
pub fn should_try_claim_block(z: &Zone, order: u8, start: MigrateType) -> bool {
    let pbo = z.geo.pageblock_order;
    order >= pbo
        || order >= pbo / 2
        || start == MigrateType::Unmovable
        || start == MigrateType::Reclaimable
}

/// Raise the watermark boost after a sub-pageblock fallback of a `start_type` request
/// (boost_watermark). Returns whether it boosted.
pub fn boost_watermark(z: &mut Zone, ctx: &mut Ctx, start_type: MigrateType) -> bool {
    let allowed = match ctx.boost {
        super::Boost::All => true,
        super::Boost::Off => false,
        super::Boost::MovableOnly => start_type == MigrateType::Movable,
    };
    if ctx.boost_factor == 0 || !allowed {
        return false;
    }
    let pbp = z.pbp();
    if z.managed_pages / pbp < 4 || z.wmark[2] == 0 {
        return false;
    }
    let max = pbp.max(z.wmark[2] * ctx.boost_factor / 10000);
    let nb = (z.watermark_boost + pbp).min(max);
    if nb == z.watermark_boost {
        return false;
    }
    z.watermark_boost = nb;
    ctx.vm.inc(Vm::WatermarkBoost);
    true
}

/// try_to_claim_block: take over the pageblock holding the free block `pfn` (of
/// `current_order`, on `block_type`'s list) for `start_type`, then allocate `order` from it.
/// The half-pageblock rule applies unless `skip_half_rule` (spb PASS_2B inside tainted SPBs).
#[allow(clippy::too_many_arguments)]
pub fn try_to_claim_block(
    z: &mut Zone,
    ctx: &mut Ctx,
    pfn: Pfn,
    current_order: u8,
    order: u8,
    start_type: MigrateType,
    block_type: MigrateType,
    flags: AllocFlags,
    skip_half_rule: bool,
) -> Option<Pfn> {
    let pbo = z.geo.pageblock_order;
    if current_order >= pbo {
        z.list_del(pfn);
        z.set_pb_range_type(pfn, current_order, start_type);
        let p = z.expand(pfn, order, current_order, start_type);
        return Some(p);
    }
    if boost_watermark(z, ctx, start_type) && flags.contains(AllocFlags::KSWAPD) {
        z.boosted = true;
    }
    if !z.pb_in_zone(pfn) {
        return None;
    }
    let pbp = z.pbp();
    let (free, movable) = z.block_free_and_movable(pfn);
    let alike = if start_type == MigrateType::Movable {
        movable
    } else if block_type == MigrateType::Movable {
        pbp - free - movable
    } else {
        0
    };
    if skip_half_rule || free + alike >= pbp / 2 {
        z.move_freepages_block(pfn, start_type)?;
        let b = z.bucket_of(pfn);
        return smallest_in(z, b, order, start_type);
    }
    None
}

#[allow(clippy::too_many_arguments)]
fn extfrag(
    ctx: &mut Ctx,
    z: &Zone,
    pfn: Pfn,
    alloc_order: u8,
    fallback_order: u8,
    alloc_mt: MigrateType,
    fallback_mt: MigrateType,
    claim: bool,
) {
    let fragmenting = fallback_order < z.geo.pageblock_order;
    ctx.vm.inc(Vm::ExtfragEvents);
    if fragmenting {
        ctx.vm.inc(Vm::ExtfragFragmenting);
    }
    ctx.vm.inc(if claim {
        Vm::ExtfragClaim
    } else {
        Vm::ExtfragSteal
    });
    let change_ownership = z.pb(pfn).migratetype() == alloc_mt;
    ctx.ev.push(Event::ExtFrag {
        zone: ctx.zone_id,
        pfn,
        alloc_order,
        fallback_order,
        alloc_mt,
        fallback_mt,
        fragmenting,
        change_ownership,
    });
}

/// The first fallback type (table order) with a free block at exactly `order` in `bucket`.
#[inline]
pub fn find_fallback(
    z: &Zone,
    bucket: usize,
    order: u8,
    start: MigrateType,
) -> Option<MigrateType> {
    start
        .fallbacks()
        .iter()
        .copied()
        .find(|t| z.areas[bucket].mask[t.idx()] & (1 << order) != 0)
}

/// __rmqueue_claim over `bucket`.
pub fn claim_in(
    z: &mut Zone,
    ctx: &mut Ctx,
    bucket: usize,
    order: u8,
    start: MigrateType,
    flags: AllocFlags,
    min_order_floor: bool,
) -> Option<Pfn> {
    let pbo = z.geo.pageblock_order;
    let min_order = if min_order_floor && flags.contains(AllocFlags::NOFRAGMENT) && order < pbo {
        pbo
    } else {
        order
    };
    let mut co = z.geo.max_order as i32;
    while co >= min_order as i32 {
        let c = co as u8;
        if !should_try_claim_block(z, c, start) {
            break;
        }
        if let Some(ft) = find_fallback(z, bucket, c, start) {
            let i = z.areas[bucket].first(c as usize, ft.idx()).unwrap();
            let pfn = z.pfn_of(i);
            if let Some(p) = try_to_claim_block(z, ctx, pfn, c, order, start, ft, flags, false) {
                extfrag(ctx, z, p, order, c, start, ft, true);
                return Some(p);
            }
        }
        co -= 1;
    }
    None
}

/// __rmqueue_steal over `bucket`: the smallest suitable foreign buddy, split with the
/// remainders left on the foreign type's lists.
pub fn steal_in(
    z: &mut Zone,
    ctx: &mut Ctx,
    bucket: usize,
    order: u8,
    start: MigrateType,
) -> Option<Pfn> {
    for c in order..=z.geo.max_order {
        if let Some(ft) = find_fallback(z, bucket, c, start) {
            let i = z.areas[bucket].first(c as usize, ft.idx()).unwrap();
            let pfn = z.pfn_of(i);
            let p = z.take_and_expand(pfn, order, ft);
            extfrag(ctx, z, p, order, c, start, ft, false);
            return Some(p);
        }
    }
    None
}

/// Mainline `__rmqueue` on zone-wide lists.
pub fn rmqueue(
    z: &mut Zone,
    ctx: &mut Ctx,
    order: u8,
    mt: MigrateType,
    flags: AllocFlags,
    mode: &mut RmqueueMode,
) -> Option<Pfn> {
    let b = 0;
    if *mode == RmqueueMode::Normal {
        if let Some(p) = smallest_in(z, b, order, mt) {
            return Some(p);
        }
    }
    if matches!(
        *mode,
        RmqueueMode::Normal | RmqueueMode::Cma | RmqueueMode::Claim
    ) {
        if let Some(p) = claim_in(z, ctx, b, order, mt, flags, true) {
            *mode = RmqueueMode::Normal;
            return Some(p);
        }
    }
    if !flags.contains(AllocFlags::NOFRAGMENT) {
        if let Some(p) = steal_in(z, ctx, b, order, mt) {
            *mode = RmqueueMode::Steal;
            return Some(p);
        }
    }
    None
}

/// reserve_highatomic_pageblock: after a successful ALLOC_HIGHATOMIC allocation at `pfn`.
pub fn reserve_highatomic(z: &mut Zone, ctx: &mut Ctx, pfn: Pfn, order: u8) {
    let pbp = z.pbp();
    if z.managed_pages / 100 < pbp {
        return;
    }
    let max = (z.managed_pages / 100).div_ceil(pbp) * pbp;
    if z.nr_reserved_highatomic >= max {
        return;
    }
    let mt = z.pb(pfn).migratetype();
    if !mt.is_mergeable() || z.pb(pfn).is_isolated() {
        return;
    }
    let pbo = z.geo.pageblock_order;
    if order < pbo {
        if z.move_freepages_block(pfn, MigrateType::HighAtomic)
            .is_none()
        {
            return;
        }
        z.nr_reserved_highatomic += pbp;
    } else {
        z.set_pb_range_type(pfn, order, MigrateType::HighAtomic);
        z.nr_reserved_highatomic += 1u64 << order;
    }
    ctx.vm.inc(Vm::HighatomicReserve);
}

/// unreserve_highatomic_pageblock for one zone: give the first HIGHATOMIC block found back to
/// `to` (the requester's type). Returns whether one was released.
pub fn unreserve_highatomic(z: &mut Zone, ctx: &mut Ctx, to: MigrateType, force: bool) -> bool {
    let pbp = z.pbp();
    if !force && z.nr_reserved_highatomic <= pbp {
        return false;
    }
    for b in 0..z.areas.len() {
        for o in 0..z.geo.nr_orders() {
            if let Some(i) = z.areas[b].first(o, MigrateType::HighAtomic.idx()) {
                let pfn = z.pfn_of(i);
                let sz = pbp.max(1u64 << o);
                z.nr_reserved_highatomic = z.nr_reserved_highatomic.saturating_sub(sz);
                if o as u8 >= z.geo.pageblock_order {
                    z.set_pb_range_type(pfn, o as u8, to);
                    z.list_move(pfn, to, true);
                } else {
                    z.move_freepages_block(pfn, to);
                }
                ctx.vm.inc(Vm::HighatomicUnreserve);
                return true;
            }
        }
    }
    false
}
