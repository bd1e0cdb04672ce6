//! GFP flags (the caller's request shape) and ALLOC_* flags (the allocator's internal mode).
//!
//! CONTRACT STUB: the API below is fixed; the parser/printer bodies are being filled in.

use crate::layout::ZoneKind;
use crate::migratetype::MigrateType;

/// A set of `__GFP_*` bits with the x86_64 values (no HW-tag KASAN, no lockdep).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Gfp(pub u32);

macro_rules! gfp_consts {
    ($($name:ident = $val:expr;)*) => { impl Gfp { $(pub const $name: Gfp = Gfp($val);)* } };
}

gfp_consts! {
    DMA = 0x1; HIGHMEM = 0x2; DMA32 = 0x4; MOVABLE = 0x8; RECLAIMABLE = 0x10; HIGH = 0x20;
    IO = 0x40; FS = 0x80; ZERO = 0x100; DIRECT_RECLAIM = 0x400; KSWAPD_RECLAIM = 0x800;
    WRITE = 0x1000; NOWARN = 0x2000; RETRY_MAYFAIL = 0x4000; NOFAIL = 0x8000; NORETRY = 0x10000;
    MEMALLOC = 0x20000; COMP = 0x40000; NOMEMALLOC = 0x80000; HARDWALL = 0x100000;
    THISNODE = 0x200000; ACCOUNT = 0x400000; ZEROTAGS = 0x800000;
    RECLAIM = 0x400 | 0x800;
    KERNEL = 0x400 | 0x800 | 0x40 | 0x80;
    KERNEL_ACCOUNT = 0x400 | 0x800 | 0x40 | 0x80 | 0x400000;
    ATOMIC = 0x20 | 0x800;
    NOWAIT = 0x800 | 0x2000;
    NOIO = 0x400 | 0x800;
    NOFS = 0x400 | 0x800 | 0x40;
    USER = 0x400 | 0x800 | 0x40 | 0x80 | 0x100000;
    HIGHUSER = 0x400 | 0x800 | 0x40 | 0x80 | 0x100000 | 0x2;
    HIGHUSER_MOVABLE = 0x400 | 0x800 | 0x40 | 0x80 | 0x100000 | 0x2 | 0x8;
    TRANSHUGE_LIGHT = (0x100cca | 0x40000 | 0x80000 | 0x2000) & !0xc00;
    TRANSHUGE = ((0x100cca | 0x40000 | 0x80000 | 0x2000) & !0xc00) | 0x400;
}

impl Gfp {
    pub const NONE: Gfp = Gfp(0);
    #[inline]
    pub const fn contains(self, o: Gfp) -> bool {
        self.0 & o.0 == o.0
    }
    #[inline]
    pub const fn intersects(self, o: Gfp) -> bool {
        self.0 & o.0 != 0
    }
    #[inline]
    pub const fn with(self, o: Gfp) -> Gfp {
        Gfp(self.0 | o.0)
    }
    #[inline]
    pub const fn without(self, o: Gfp) -> Gfp {
        Gfp(self.0 & !o.0)
    }
    /// gfp_migratetype.
    pub const fn migratetype(self) -> MigrateType {
        if self.0 & 0x8 != 0 {
            MigrateType::Movable
        } else if self.0 & 0x10 != 0 {
            MigrateType::Reclaimable
        } else {
            MigrateType::Unmovable
        }
    }
    /// gfp_zone: the highest zone the request may use.
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

/// ALLOC_* flags (mm/internal.h values, plus the series' two).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct AllocFlags(pub u32);

impl AllocFlags {
    pub const WMARK_MIN: AllocFlags = AllocFlags(0);
    pub const WMARK_LOW: AllocFlags = AllocFlags(1);
    pub const WMARK_HIGH: AllocFlags = AllocFlags(2);
    pub const WMARK_MASK: AllocFlags = AllocFlags(3);
    pub const NO_WATERMARKS: AllocFlags = AllocFlags(0x4);
    pub const OOM: AllocFlags = AllocFlags(0x8);
    pub const NON_BLOCK: AllocFlags = AllocFlags(0x10);
    pub const MIN_RESERVE: AllocFlags = AllocFlags(0x20);
    pub const CPUSET: AllocFlags = AllocFlags(0x40);
    pub const CMA: AllocFlags = AllocFlags(0x80);
    pub const NOFRAGMENT: AllocFlags = AllocFlags(0x100);
    pub const HIGHATOMIC: AllocFlags = AllocFlags(0x200);
    pub const TRYLOCK: AllocFlags = AllocFlags(0x400);
    pub const KSWAPD: AllocFlags = AllocFlags(0x800);
    /// spb (18/35): NOFRAGMENT, but allow relabelling movable blocks inside tainted SPBs.
    pub const NOFRAG_TAINTED_OK: AllocFlags = AllocFlags(0x1000);
    /// spb (26): the caller can fall back to a lower order or another path.
    pub const HIGHORDER_OPTIONAL: AllocFlags = AllocFlags(0x2000);
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
}

impl core::ops::BitOr for AllocFlags {
    type Output = AllocFlags;
    fn bitor(self, o: AllocFlags) -> AllocFlags {
        AllocFlags(self.0 | o.0)
    }
}

/// gfp_to_alloc_flags as mainline computes it for the slow path (no RT task, no OOM victim).
pub fn gfp_to_alloc_flags(gfp: Gfp, order: u8, defrag_mode: bool) -> AllocFlags {
    let mut f = AllocFlags::WMARK_MIN.with(AllocFlags::CPUSET);
    if gfp.contains(Gfp::HIGH) {
        f = f.with(AllocFlags::MIN_RESERVE);
    }
    if gfp.contains(Gfp::KSWAPD_RECLAIM) {
        f = f.with(AllocFlags::KSWAPD);
    }
    if !gfp.contains(Gfp::DIRECT_RECLAIM) {
        if !gfp.contains(Gfp::NOMEMALLOC) {
            f = f.with(AllocFlags::NON_BLOCK);
        }
        if order > 0 && f.contains(AllocFlags::MIN_RESERVE) {
            f = f.with(AllocFlags::HIGHATOMIC);
        }
        if f.contains(AllocFlags::MIN_RESERVE) {
            f = f.without(AllocFlags::CPUSET);
        }
    }
    if gfp.migratetype() == MigrateType::Movable {
        f = f.with(AllocFlags::CMA);
    }
    if defrag_mode {
        f = f.with(AllocFlags::NOFRAGMENT);
    }
    f
}
