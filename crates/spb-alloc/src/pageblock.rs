//! Pageblock metadata: the migratetype label and what the block actually contains.
//!
//! The label (`mt`) is what mainline keeps in `pageblock_flags`. The content counters are what
//! the superpageblock series tracks with `PB_has_<type>` bits (patch 07); spb keeps exact page
//! counts instead of sticky bits, so "holds a non-movable page" is always true to the letter and
//! a block whose last unmovable page is freed stops counting at once.

use crate::migratetype::MigrateType;

/// Accounting class of a range of pages (what the per-pageblock counters count).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acct {
    /// Free, on a buddy free list (including ISOLATE lists).
    Free,
    /// Held by the allocator off the free lists: on a per-CPU list, or isolated by compaction
    /// as a migration target. Not free, not allocated.
    Pcp,
    /// Allocated with this requested migratetype (Unmovable, Movable, Reclaimable, HighAtomic).
    Alloc(MigrateType),
    /// Reserved at boot.
    Reserved,
    /// Hole or not yet initialised.
    Absent,
}

/// Index into [`PageblockMeta::alloc`]'s counts: 0 unmovable, 1 movable, 2 reclaimable,
/// 3 highatomic.
#[inline(always)]
pub fn alloc_class(mt: MigrateType) -> usize {
    // Unmovable, Movable, Reclaimable, HighAtomic, Cma (movable), Isolate (never requested)
    const CLASS: [u8; crate::migratetype::MIGRATE_TYPES] = [0, 1, 2, 3, 1, 3];
    CLASS[mt as usize] as usize
}

/// Content bits derived from the counters.
pub mod content {
    pub const UNMOVABLE: u8 = 1;
    pub const MOVABLE: u8 = 2;
    pub const RECLAIMABLE: u8 = 4;
    pub const HIGHATOMIC: u8 = 8;
    /// Every page of the block is free in the buddy lists.
    pub const ALL_FREE: u8 = 16;
    /// The block holds reserved pages or holes.
    pub const RESERVED: u8 = 32;
    /// Any non-movable content.
    pub const NON_MOVABLE: u8 = UNMOVABLE | RECLAIMABLE | HIGHATOMIC;
    // the allocated classes' bits are `1 << alloc_class` (PageblockMeta::class_bit relies on it)
    const _: () = assert!(
        UNMOVABLE == 1 << 0 && MOVABLE == 1 << 1 && RECLAIMABLE == 1 << 2 && HIGHATOMIC == 1 << 3
    );
}

/// Pageblock flag bits.
pub mod pbflag {
    /// The isolate overlay (MIGRATE_ISOLATE on top of the real type).
    pub const ISOLATE: u8 = 1;
    /// Compaction skip hint.
    pub const SKIP: u8 = 2;
}

/// Metadata of one pageblock.
///
/// # Invariants
/// `free + pcp + alloc.sum() + reserved + absent == pageblock pages` (for pageblocks clipped by
/// the zone span, the pages outside the zone count as `absent`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PageblockMeta {
    /// The migratetype label.
    pub(crate) mt: u8,
    /// [`pbflag`] bits.
    pub(crate) flags: u8,
    /// Owning CPU + 1 for per-CPU pageblock ownership (spb patches 02/21); 0 = unowned.
    pub(crate) owner: u16,
    pub(crate) free: u16,
    pub(crate) pcp: u16,
    pub(crate) alloc: [u16; 4],
    pub(crate) reserved: u16,
    pub(crate) absent: u16,
}

impl PageblockMeta {
    /// The label as a migratetype.
    #[inline]
    pub fn migratetype(&self) -> MigrateType {
        MigrateType::from_u8(self.mt).unwrap_or(MigrateType::Movable)
    }
    /// The type free pages of this block are listed under (ISOLATE if isolated).
    #[inline]
    pub fn list_type(&self) -> MigrateType {
        if self.flags & pbflag::ISOLATE != 0 {
            MigrateType::Isolate
        } else {
            self.migratetype()
        }
    }
    #[inline]
    pub fn is_isolated(&self) -> bool {
        self.flags & pbflag::ISOLATE != 0
    }
    /// Pages allocated as movable.
    #[inline]
    pub fn movable_pages(&self) -> u32 {
        self.alloc[alloc_class(MigrateType::Movable)] as u32
    }
    /// Pages allocated as anything but movable (unmovable, reclaimable, highatomic).
    #[inline]
    pub fn non_movable_pages(&self) -> u32 {
        self.alloc.iter().map(|&n| n as u32).sum::<u32>() - self.movable_pages()
    }
    /// Content bits ([`content`]).
    #[inline]
    pub fn content(&self, pb_pages: u16) -> u8 {
        let mut c = 0;
        if self.alloc[0] > 0 {
            c |= content::UNMOVABLE;
        }
        if self.alloc[1] > 0 {
            c |= content::MOVABLE;
        }
        if self.alloc[2] > 0 {
            c |= content::RECLAIMABLE;
        }
        if self.alloc[3] > 0 {
            c |= content::HIGHATOMIC;
        }
        if self.free == pb_pages {
            c |= content::ALL_FREE;
        }
        if self.reserved + self.absent > 0 {
            c |= content::RESERVED;
        }
        c
    }
    /// The content bit a class contributes right now (0 when it contributes none).
    #[inline(always)]
    pub fn class_bit(&self, a: Acct, pb_pages: u16) -> u8 {
        match a {
            Acct::Free => {
                if self.free == pb_pages {
                    content::ALL_FREE
                } else {
                    0
                }
            }
            Acct::Pcp => 0,
            Acct::Alloc(mt) => {
                // content::UNMOVABLE, MOVABLE, RECLAIMABLE, HIGHATOMIC are 1 << class
                let c = alloc_class(mt);
                ((self.alloc[c] > 0) as u8) << c
            }
            Acct::Reserved | Acct::Absent => {
                if self.reserved + self.absent > 0 {
                    content::RESERVED
                } else {
                    0
                }
            }
        }
    }

    /// Allocated pages of any class.
    #[inline]
    pub fn allocated(&self) -> u32 {
        self.alloc.iter().map(|&a| a as u32).sum()
    }
    /// Mutable counter for an accounting class.
    #[inline(always)]
    pub fn counter(&mut self, a: Acct) -> &mut u16 {
        match a {
            Acct::Free => &mut self.free,
            Acct::Pcp => &mut self.pcp,
            Acct::Alloc(mt) => &mut self.alloc[alloc_class(mt)],
            Acct::Reserved => &mut self.reserved,
            Acct::Absent => &mut self.absent,
        }
    }
}

/// Read-only access to the fields (the inspection view; only the allocator changes them).
impl PageblockMeta {
    pub fn mt(&self) -> u8 {
        self.mt
    }
    pub fn flags(&self) -> u8 {
        self.flags
    }
    pub fn owner(&self) -> u16 {
        self.owner
    }
    pub fn free(&self) -> u16 {
        self.free
    }
    pub fn pcp(&self) -> u16 {
        self.pcp
    }
    pub fn alloc(&self) -> [u16; 4] {
        self.alloc
    }
    pub fn reserved(&self) -> u16 {
        self.reserved
    }
    pub fn absent(&self) -> u16 {
        self.absent
    }
}
