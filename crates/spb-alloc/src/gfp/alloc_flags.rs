//! ALLOC flags (the kernel's internal `alloc_flags`) and their derivation from a gfp mask on
//! the fast path, the slow path and for the reserves.

use core::fmt;

use super::Gfp;
use crate::migratetype::MigrateType;

// ---------------------------------------------------------------------------------------------
// ALLOC_* flags
// ---------------------------------------------------------------------------------------------

/// ALLOC_* flags (`mm/internal.h` values, plus the spb series' two).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AllocFlags(pub u32);

impl AllocFlags {
    /// Test the min watermark (index 0; the "flag" is the absence of the other two).
    pub const WMARK_MIN: AllocFlags = AllocFlags(0);
    /// Test the low watermark (fast path).
    pub const WMARK_LOW: AllocFlags = AllocFlags(1);
    /// Test the high watermark.
    pub const WMARK_HIGH: AllocFlags = AllocFlags(2);
    /// The two bits holding the watermark index.
    pub const WMARK_MASK: AllocFlags = AllocFlags(3);
    /// Skip watermark checks entirely (`__GFP_MEMALLOC`, PF_MEMALLOC).
    pub const NO_WATERMARKS: AllocFlags = AllocFlags(0x4);
    /// OOM victim: extra reserve access.
    pub const OOM: AllocFlags = AllocFlags(0x8);
    /// The caller cannot direct-reclaim (and did not say NOMEMALLOC): dip further into min.
    pub const NON_BLOCK: AllocFlags = AllocFlags(0x10);
    /// `__GFP_HIGH`: may use half of the min reserve.
    pub const MIN_RESERVE: AllocFlags = AllocFlags(0x20);
    /// Obey cpuset placement.
    pub const CPUSET: AllocFlags = AllocFlags(0x40);
    /// May use CMA pageblocks (movable requests).
    pub const CMA: AllocFlags = AllocFlags(0x80);
    /// Avoid fallbacks that would mix migratetypes inside a pageblock.
    pub const NOFRAGMENT: AllocFlags = AllocFlags(0x100);
    /// May use, and create, the MIGRATE_HIGHATOMIC reserve.
    pub const HIGHATOMIC: AllocFlags = AllocFlags(0x200);
    /// Only trylock (alloc_pages_nolock).
    pub const TRYLOCK: AllocFlags = AllocFlags(0x400);
    /// May wake kswapd (`__GFP_KSWAPD_RECLAIM`).
    pub const KSWAPD: AllocFlags = AllocFlags(0x800);
    /// spb (18/35): NOFRAGMENT, but allow relabelling movable blocks inside tainted SPBs.
    pub const NOFRAG_TAINTED_OK: AllocFlags = AllocFlags(0x1000);
    /// spb (26): the caller can fall back to a lower order or another path.
    pub const HIGHORDER_OPTIONAL: AllocFlags = AllocFlags(0x2000);
    /// spb-next (`pin_migrate`): the target of a long-term pin's migration, a movable block
    /// served from SPBs already tainted (above their reserve) or lost to reservations or holes,
    /// else from the zone's pin SPB (clean), never from an empty SPB: best effort, the block is
    /// pinned in place when there is no room.
    pub const PIN_TARGET: AllocFlags = AllocFlags(0x4000);
    /// spb-next: served from SPBs already tainted (or lost) or not at all. `refill_no_taint`:
    /// a per-CPU refill's page after the caller's own (a cache is never filled by tainting a
    /// clean or empty SPB); `evacuate_before_empty`: the zones below the one whose walk the
    /// rule refused.
    pub const NO_TAINT: AllocFlags = AllocFlags(0x8000);
    /// Flags that allow allocations below the min watermark.
    pub const RESERVES: AllocFlags = AllocFlags(0x10 | 0x20 | 0x200 | 0x8);

    #[inline]
    pub const fn contains(self, o: AllocFlags) -> bool {
        self.0 & o.0 == o.0
    }
    #[inline]
    pub const fn intersects(self, o: AllocFlags) -> bool {
        self.0 & o.0 != 0
    }
    #[inline]
    pub const fn with(self, o: AllocFlags) -> AllocFlags {
        AllocFlags(self.0 | o.0)
    }
    #[inline]
    pub const fn without(self, o: AllocFlags) -> AllocFlags {
        AllocFlags(self.0 & !o.0)
    }
    /// The watermark index (0 min, 1 low, 2 high).
    #[inline]
    pub const fn wmark(self) -> usize {
        (self.0 & 3) as usize
    }

    /// Names of the flag bits (the watermark index is printed separately).
    const NAMES: [(AllocFlags, &'static str); 14] = [
        (AllocFlags::NO_WATERMARKS, "NO_WATERMARKS"),
        (AllocFlags::OOM, "OOM"),
        (AllocFlags::NON_BLOCK, "NON_BLOCK"),
        (AllocFlags::MIN_RESERVE, "MIN_RESERVE"),
        (AllocFlags::CPUSET, "CPUSET"),
        (AllocFlags::CMA, "CMA"),
        (AllocFlags::NOFRAGMENT, "NOFRAGMENT"),
        (AllocFlags::HIGHATOMIC, "HIGHATOMIC"),
        (AllocFlags::TRYLOCK, "TRYLOCK"),
        (AllocFlags::KSWAPD, "KSWAPD"),
        (AllocFlags::NOFRAG_TAINTED_OK, "NOFRAG_TAINTED_OK"),
        (AllocFlags::HIGHORDER_OPTIONAL, "HIGHORDER_OPTIONAL"),
        (AllocFlags::PIN_TARGET, "PIN_TARGET"),
        (AllocFlags::NO_TAINT, "NO_TAINT"),
    ];
}

impl core::ops::BitOr for AllocFlags {
    type Output = AllocFlags;
    fn bitor(self, o: AllocFlags) -> AllocFlags {
        AllocFlags(self.0 | o.0)
    }
}

impl fmt::Display for AllocFlags {
    /// `WMARK_LOW|CMA|KSWAPD`; an unknown bit prints as hex.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.wmark() {
            0 => "WMARK_MIN",
            1 => "WMARK_LOW",
            2 => "WMARK_HIGH",
            _ => "WMARK_3",
        })?;
        let mut rest = self.0 & !AllocFlags::WMARK_MASK.0;
        for (flag, name) in AllocFlags::NAMES {
            if rest & flag.0 != 0 {
                rest &= !flag.0;
                write!(f, "|{}", name)?;
            }
        }
        if rest != 0 {
            write!(f, "|{:#x}", rest)?;
        }
        Ok(())
    }
}

impl fmt::Debug for AllocFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AllocFlags({:#x} {})", self.0, self)
    }
}

/// `PAGE_ALLOC_COSTLY_ORDER`: orders above this are "costly" (reclaim gives up sooner,
/// no OOM kill, compaction is used). Fixed at 3 in the kernel, independent of the geometry.
pub const PAGE_ALLOC_COSTLY_ORDER: u8 = 3;

/// `order > PAGE_ALLOC_COSTLY_ORDER`.
#[inline]
pub const fn is_costly(order: u8) -> bool {
    order > PAGE_ALLOC_COSTLY_ORDER
}

/// The caller may sleep in direct reclaim and compaction (`gfpflags_allow_blocking`).
#[inline]
pub const fn can_direct_reclaim(gfp: Gfp) -> bool {
    gfp.intersects(Gfp::DIRECT_RECLAIM)
}

/// alloc_flags of the first, fast-path attempt (`prepare_alloc_pages` +
/// `alloc_flags_nofragment`): the low watermark, `ALLOC_CMA` for movable requests and
/// `ALLOC_KSWAPD` for `__GFP_KSWAPD_RECLAIM`.
///
/// Not included: `ALLOC_NOFRAGMENT`, which depends on the preferred zone (set when it is
/// ZONE_NORMAL and a DMA32 zone exists, or always with `vm.defrag_mode`) and is the caller's
/// zone logic; and `ALLOC_CPUSET`, as the model has no cpusets.
#[inline]
pub const fn fast_path_alloc_flags(gfp: Gfp) -> AllocFlags {
    let mut f = AllocFlags::WMARK_LOW;
    if gfp.intersects(Gfp::KSWAPD_RECLAIM) {
        f = f.with(AllocFlags::KSWAPD);
    }
    if matches!(gfp.migratetype(), MigrateType::Movable) {
        f = f.with(AllocFlags::CMA);
    }
    f
}

/// `gfp_to_alloc_flags` as mainline 6.18 computes it for the slow path, for a task that is
/// neither real-time nor an OOM victim (those only add reserve access the model never grants).
///
/// * start from `WMARK_MIN | CPUSET`; `__GFP_HIGH` gives `MIN_RESERVE`,
///   `__GFP_KSWAPD_RECLAIM` gives `KSWAPD`;
/// * a caller that cannot direct-reclaim gets `NON_BLOCK` unless it said `__GFP_NOMEMALLOC`,
///   and (same condition, since 6.17's fix) `HIGHATOMIC` when it is `__GFP_HIGH` and
///   `order > 0`; a non-blocking `__GFP_HIGH` caller also drops `CPUSET`;
/// * movable requests get `CMA`; `vm.defrag_mode` adds `NOFRAGMENT`.
///
/// The spb series' `ALLOC_HIGHORDER_OPTIONAL` is *not* set here: the policy layer adds it from
/// [`crate::policy::spb_gfp::has_cheap_fallback`]. The reserve override ([`pfmemalloc_flags`]) is separate too.
pub const fn gfp_to_alloc_flags(gfp: Gfp, order: u8, defrag_mode: bool) -> AllocFlags {
    let mut f = AllocFlags::WMARK_MIN.with(AllocFlags::CPUSET);
    if gfp.intersects(Gfp::HIGH) {
        f = f.with(AllocFlags::MIN_RESERVE);
    }
    if gfp.intersects(Gfp::KSWAPD_RECLAIM) {
        f = f.with(AllocFlags::KSWAPD);
    }
    if !gfp.intersects(Gfp::DIRECT_RECLAIM) {
        if !gfp.intersects(Gfp::NOMEMALLOC) {
            f = f.with(AllocFlags::NON_BLOCK);
            if order > 0 && f.contains(AllocFlags::MIN_RESERVE) {
                f = f.with(AllocFlags::HIGHATOMIC);
            }
        }
        if f.contains(AllocFlags::MIN_RESERVE) {
            f = f.without(AllocFlags::CPUSET);
        }
    }
    if matches!(gfp.migratetype(), MigrateType::Movable) {
        f = f.with(AllocFlags::CMA);
    }
    if defrag_mode {
        f = f.with(AllocFlags::NOFRAGMENT);
    }
    f
}

/// `__gfp_pfmemalloc_flags` for the gfp mask alone: `__GFP_NOMEMALLOC` forbids any reserve
/// override (`None`), `__GFP_MEMALLOC` grants `NO_WATERMARKS`. The task-context sources
/// (PF_MEMALLOC reclaimers, OOM victims) are not modelled.
///
/// When it returns `Some(r)`, the slow path replaces its alloc_flags by `r` plus `CMA` for
/// movable requests, keeping only the `KSWAPD` bit of the old flags.
#[inline]
pub const fn pfmemalloc_flags(gfp: Gfp) -> Option<AllocFlags> {
    if gfp.intersects(Gfp::NOMEMALLOC) {
        None
    } else if gfp.intersects(Gfp::MEMALLOC) {
        Some(AllocFlags::NO_WATERMARKS)
    } else {
        None
    }
}
