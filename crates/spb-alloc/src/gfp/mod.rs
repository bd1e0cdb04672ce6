//! GFP flags (what the caller asks for) and ALLOC flags (how the allocator goes about it).
//!
//! # Two flag words
//!
//! * [`Gfp`] is the kernel's `gfp_t`: the request shape a *caller* passes to the page
//!   allocator. It says which zones may be used (`__GFP_DMA`, `__GFP_DMA32`, `__GFP_HIGHMEM`,
//!   `__GFP_MOVABLE`), what mobility the page will have (`__GFP_MOVABLE`,
//!   `__GFP_RECLAIMABLE`, which select the migratetype), what the caller tolerates (may it sleep
//!   and reclaim: `__GFP_DIRECT_RECLAIM`; may it wake kswapd: `__GFP_KSWAPD_RECLAIM`; may it
//!   fail: `__GFP_NORETRY` / `__GFP_RETRY_MAYFAIL` / `__GFP_NOFAIL`), which reserves it may
//!   touch (`__GFP_HIGH`, `__GFP_MEMALLOC`, `__GFP_NOMEMALLOC`) and a few post-allocation
//!   actions (`__GFP_ZERO`, `__GFP_COMP`). These bits are what the `mm_page_alloc` tracepoint
//!   prints as `gfp_flags=...`, so the trace replayer parses them with [`parse`] and can print
//!   them back byte-for-byte with [`Gfp::fmt_trace`].
//! * [`AllocFlags`] is the kernel's internal `alloc_flags` (`ALLOC_*` in `mm/internal.h`): the
//!   *mode* of one attempt inside the allocator: which watermark to test, whether reserves
//!   may be dipped into, whether fragmenting fallbacks are allowed (`ALLOC_NOFRAGMENT`), and so
//!   on. They are derived from the gfp mask, differently on the fast path
//!   ([`fast_path_alloc_flags`]) and the slow path ([`gfp_to_alloc_flags`], plus the reserve
//!   override [`pfmemalloc_flags`]), and then adjusted by the allocator as it retries. Callers
//!   never see them; they are not traced.
//!
//! # Modelled configuration
//!
//! Bit values are those of the kernel that produced the reference traces: Linux 6.18 on
//! x86_64 with `CONFIG_KASAN_HW_TAGS=n` (it only exists on arm64), `CONFIG_LOCKDEP=n` and
//! `CONFIG_SLAB_OBJ_EXT=y` (implied by memcg). Since 6.10 the kernel numbers its gfp bits with
//! an `enum` that skips configured-out flags, so the value of the last bits depends on the
//! configuration; with this one `__GFP_ZEROTAGS` is bit 23 and `__GFP_NO_OBJ_EXT` bit 24
//! (`0x1000000`), and `__GFP_SKIP_ZERO`, `__GFP_SKIP_KASAN`, `__GFP_NOLOCKDEP` are defined as
//! `0`, exactly as the kernel defines them when their option is off (see [`Gfp::NOLOCKDEP`]).
//!
//! # Trace syntax
//!
//! `show_gfp_flags()` walks a fixed table of (mask, name) pairs, composites first; every entry
//! whose whole mask is still contained in the remaining bits is printed and its bits are
//! cleared, names are joined with `|`, left-over bits are appended as `0x<hex>`, and an empty
//! mask prints `none`. The table order changed in 6.15 (see [`FlagOrder`]); the printed *set* of
//! composites is the same, only the order of single-bit names differs.
//!
//! # Policy predicates
//!
//! Predicates a policy keys on the shape of the gfp mask live with their policy (spb's in
//! [`crate::policy::spb_gfp`]).

//!
//! # Layout of this module
//!
//! - this file: the flag bits ([`Gfp`], its single bits and composite masks, zone and
//!   migratetype selection);
//! - `trace.rs`: the ftrace text syntax (printing with [`FlagOrder`] tables, [`parse`]);
//! - `alloc_flags.rs`: [`AllocFlags`] and their derivation from a gfp mask.

use crate::layout::ZoneKind;
use crate::migratetype::MigrateType;

mod alloc_flags;
#[cfg(test)]
mod tests;
mod trace;

pub use alloc_flags::*;
pub use trace::*;

/// A set of `__GFP_*` bits with the values of the modelled kernel (6.18, x86_64, no HW-tag
/// KASAN, no lockdep; see the module documentation).
///
/// The associated constants without a prefix are the single bits (`Gfp::IO` is `__GFP_IO`);
/// the composite masks are named after the kernel's `GFP_*` macros without the prefix
/// (`Gfp::KERNEL` is `GFP_KERNEL`), except [`Gfp::GFP_DMA`] and [`Gfp::GFP_DMA32`] which would
/// otherwise clash with the single bits they equal.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Gfp(pub u32);

macro_rules! gfp_consts {
    ($($(#[$doc:meta])* $name:ident = $val:expr;)*) => {
        impl Gfp { $($(#[$doc])* pub const $name: Gfp = Gfp($val);)* }
    };
}

// Single bits (`include/linux/gfp_types.h`).
gfp_consts! {
    /// `__GFP_DMA`: only ZONE_DMA (the low 16 MiB on x86_64).
    DMA = 0x1;
    /// `__GFP_HIGHMEM`: ZONE_HIGHMEM allowed (no such zone on 64-bit; with MOVABLE it
    /// allows ZONE_MOVABLE).
    HIGHMEM = 0x2;
    /// `__GFP_DMA32`: only zones below 4 GiB.
    DMA32 = 0x4;
    /// `__GFP_MOVABLE`: the page can be migrated or reclaimed (MIGRATE_MOVABLE; also a zone
    /// modifier allowing ZONE_MOVABLE together with HIGHMEM).
    MOVABLE = 0x8;
    /// `__GFP_RECLAIMABLE`: slab with a shrinker (MIGRATE_RECLAIMABLE).
    RECLAIMABLE = 0x10;
    /// `__GFP_HIGH`: high priority, may use part of the min reserve (ALLOC_MIN_RESERVE).
    HIGH = 0x20;
    /// `__GFP_IO`: reclaim may start physical I/O.
    IO = 0x40;
    /// `__GFP_FS`: reclaim may call into filesystems.
    FS = 0x80;
    /// `__GFP_ZERO`: return zeroed memory.
    ZERO = 0x100;
    /// `__GFP_DIRECT_RECLAIM`: the caller may sleep in direct reclaim / compaction.
    DIRECT_RECLAIM = 0x400;
    /// `__GFP_KSWAPD_RECLAIM`: wake kswapd when the low watermark is hit (ALLOC_KSWAPD).
    KSWAPD_RECLAIM = 0x800;
    /// `__GFP_WRITE`: the caller will dirty the page (dirty-limit spreading, fast path only).
    WRITE = 0x1000;
    /// `__GFP_NOWARN`: no failure report.
    NOWARN = 0x2000;
    /// `__GFP_RETRY_MAYFAIL`: retry reclaim harder, but may fail; never OOM-kill.
    RETRY_MAYFAIL = 0x4000;
    /// `__GFP_NOFAIL`: must not fail; retries forever.
    NOFAIL = 0x8000;
    /// `__GFP_NORETRY`: one light reclaim/compaction attempt, then fail.
    NORETRY = 0x10000;
    /// `__GFP_MEMALLOC`: may use all reserves (ALLOC_NO_WATERMARKS).
    MEMALLOC = 0x20000;
    /// `__GFP_COMP`: set up a compound page.
    COMP = 0x40000;
    /// `__GFP_NOMEMALLOC`: never use emergency reserves; wins over MEMALLOC.
    NOMEMALLOC = 0x80000;
    /// `__GFP_HARDWALL`: enforce the cpuset memory policy.
    HARDWALL = 0x100000;
    /// `__GFP_THISNODE`: no fallback to other NUMA nodes.
    THISNODE = 0x200000;
    /// `__GFP_ACCOUNT`: charge to the memory cgroup.
    ACCOUNT = 0x400000;
    /// `__GFP_ZEROTAGS`: zero memory tags with the memory (no effect without HW tags).
    ZEROTAGS = 0x800000;
    /// `__GFP_NO_OBJ_EXT`: slab allocation without object extension (bit 24 in the modelled
    /// configuration; printed by name in 6.15+ traces when `CONFIG_SLAB_OBJ_EXT=y`).
    NO_OBJ_EXT = 0x100_0000;
    /// `__GFP_SKIP_ZERO`: **0** in the modelled configuration. It only has a bit with
    /// `CONFIG_KASAN_HW_TAGS` (arm64), where it takes bit 24 and pushes the later bits up.
    /// Like the kernel's macro it is a no-op here: test it with `intersects`, never `contains`
    /// (every mask "contains" the empty mask).
    SKIP_ZERO = 0;
    /// `__GFP_SKIP_KASAN`: **0** in the modelled configuration (see [`Gfp::SKIP_ZERO`]).
    SKIP_KASAN = 0;
    /// `__GFP_NOLOCKDEP`: **0** in the modelled configuration; it only has a bit with
    /// `CONFIG_LOCKDEP` (see [`Gfp::SKIP_ZERO`]).
    NOLOCKDEP = 0;
}

// Composite masks (`include/linux/gfp_types.h`).
gfp_consts! {
    /// `__GFP_RECLAIM` = DIRECT_RECLAIM | KSWAPD_RECLAIM (0xc00).
    RECLAIM = 0x400 | 0x800;
    /// `GFP_KERNEL` = RECLAIM | IO | FS (0xcc0).
    KERNEL = 0x400 | 0x800 | 0x40 | 0x80;
    /// `GFP_KERNEL_ACCOUNT` = GFP_KERNEL | ACCOUNT (0x400cc0).
    KERNEL_ACCOUNT = 0x400 | 0x800 | 0x40 | 0x80 | 0x400000;
    /// `GFP_ATOMIC` = HIGH | KSWAPD_RECLAIM (0x820).
    ATOMIC = 0x20 | 0x800;
    /// `GFP_NOWAIT` = KSWAPD_RECLAIM | NOWARN (0x2800; 0x800 before NOWARN was added).
    NOWAIT = 0x800 | 0x2000;
    /// `GFP_NOIO` = RECLAIM (0xc00).
    NOIO = 0x400 | 0x800;
    /// `GFP_NOFS` = RECLAIM | IO (0xc40).
    NOFS = 0x400 | 0x800 | 0x40;
    /// `GFP_USER` = GFP_KERNEL | HARDWALL (0x100cc0).
    USER = 0x400 | 0x800 | 0x40 | 0x80 | 0x100000;
    /// `GFP_HIGHUSER` = GFP_USER | HIGHMEM (0x100cc2).
    HIGHUSER = 0x400 | 0x800 | 0x40 | 0x80 | 0x100000 | 0x2;
    /// `GFP_HIGHUSER_MOVABLE` = GFP_HIGHUSER | MOVABLE (| SKIP_KASAN, 0 here) (0x100cca).
    HIGHUSER_MOVABLE = 0x400 | 0x800 | 0x40 | 0x80 | 0x100000 | 0x2 | 0x8;
    /// `GFP_TRANSHUGE_LIGHT` = (GFP_HIGHUSER_MOVABLE | COMP | NOMEMALLOC | NOWARN) without
    /// both reclaim bits (0x1c20ca).
    TRANSHUGE_LIGHT = (0x100cca | 0x40000 | 0x80000 | 0x2000) & !0xc00;
    /// `GFP_TRANSHUGE` = GFP_TRANSHUGE_LIGHT | DIRECT_RECLAIM (0x1c24ca).
    TRANSHUGE = ((0x100cca | 0x40000 | 0x80000 | 0x2000) & !0xc00) | 0x400;
    /// `GFP_DMA` (= `__GFP_DMA`); trace output spells a lone DMA bit this way.
    GFP_DMA = 0x1;
    /// `GFP_DMA32` (= `__GFP_DMA32`); trace output spells a lone DMA32 bit this way.
    GFP_DMA32 = 0x4;
    /// `GFP_ZONEMASK`: the four zone modifier bits.
    ZONEMASK = 0x1 | 0x2 | 0x4 | 0x8;
    /// `GFP_MOVABLE_MASK`: the two mobility bits that select the migratetype.
    MOVABLE_MASK = 0x8 | 0x10;
    /// `__GFP_BITS_MASK`: every bit the modelled kernel defines (bits 0..=24).
    BITS_MASK = (1 << 25) - 1;
}

impl Gfp {
    /// The empty mask (printed `none`).
    pub const NONE: Gfp = Gfp(0);

    /// All of `o`'s bits are set.
    #[inline]
    pub const fn contains(self, o: Gfp) -> bool {
        self.0 & o.0 == o.0
    }
    /// At least one of `o`'s bits is set.
    #[inline]
    pub const fn intersects(self, o: Gfp) -> bool {
        self.0 & o.0 != 0
    }
    /// `self | o`.
    #[inline]
    pub const fn with(self, o: Gfp) -> Gfp {
        Gfp(self.0 | o.0)
    }
    /// `self & !o`.
    #[inline]
    pub const fn without(self, o: Gfp) -> Gfp {
        Gfp(self.0 & !o.0)
    }
    /// No bit set.
    #[inline]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// The raw bits.
    #[inline]
    pub const fn bits(self) -> u32 {
        self.0
    }
    /// An opportunistic try: the caller may neither reclaim (directly or by waking kswapd) nor
    /// use the reserves (`__GFP_RECLAIM` and `__GFP_HIGH` all clear), as SLUB's first try of a
    /// slab above the cache's minimum order, whose fallback is that minimum order with the
    /// caller's own mask. Not an atomic allocation: GFP_ATOMIC and GFP_NOWAIT wake kswapd.
    #[inline]
    pub const fn is_opportunistic(self) -> bool {
        !self.intersects(Gfp::RECLAIM) && !self.intersects(Gfp::HIGH)
    }

    /// `gfp_migratetype`: the mobility bits select the migratetype. Both bits set is a caller
    /// bug in the kernel (it would index MIGRATE_HIGHATOMIC); the model treats it as movable.
    pub const fn migratetype(self) -> MigrateType {
        if self.0 & 0x8 != 0 {
            MigrateType::Movable
        } else if self.0 & 0x10 != 0 {
            MigrateType::Reclaimable
        } else {
            MigrateType::Unmovable
        }
    }

    /// `gfp_zone` on x86_64 (no ZONE_HIGHMEM): the highest zone the request may use.
    /// DMA wins, then DMA32; MOVABLE|HIGHMEM allows ZONE_MOVABLE; everything else stops at
    /// ZONE_NORMAL.
    pub const fn highest_zone(self) -> ZoneKind {
        if self.0 & 0x1 != 0 {
            ZoneKind::Dma
        } else if self.0 & 0x4 != 0 {
            ZoneKind::Dma32
        } else if self.0 & 0xa == 0xa {
            ZoneKind::Movable
        } else {
            ZoneKind::Normal
        }
    }
}

impl core::ops::BitOr for Gfp {
    type Output = Gfp;
    fn bitor(self, o: Gfp) -> Gfp {
        Gfp(self.0 | o.0)
    }
}

impl core::ops::BitOrAssign for Gfp {
    fn bitor_assign(&mut self, o: Gfp) {
        self.0 |= o.0;
    }
}

impl core::ops::BitAnd for Gfp {
    type Output = Gfp;
    fn bitand(self, o: Gfp) -> Gfp {
        Gfp(self.0 & o.0)
    }
}
