//! Object records: one 16-byte [`Obj`] per allocated block, indexed by the allocator's cookie.
//!
//! Invariants: an id is either live (in `objs`, not in `free_objs`) or free (its record is
//! `Obj::EMPTY` and it is in `free_objs`); `kind_pages[k]` counts the pages of the live objects
//! of kind `k`; a page-cache object is counted in exactly one of `dirty_pages` (flag DIRTY) or
//! `clean_cache_zone[zone]`. Freeing an object queues its block on `pending` and forgets it.

use super::World;
use crate::sim::slab::NONE;

/// Object kinds.
pub mod kind {
    /// Anonymous 4 KiB page.
    pub const ANON: u8 = 0;
    /// Anonymous THP (order 9).
    pub const THP: u8 = 1;
    /// Page cache of a disk filesystem (evictable).
    pub const CACHE: u8 = 2;
    /// tmpfs / shmem page (movable, not evictable without swap).
    pub const SHMEM: u8 = 3;
    /// Page table page.
    pub const PTE: u8 = 4;
    /// Kernel stack page (vmalloc'd).
    pub const STACK: u8 = 5;
    /// Slab page.
    pub const SLAB: u8 = 6;
    /// Network page fragment cache page (order 3 or 0).
    pub const FRAG: u8 = 7;
    /// skb data allocated from the page allocator.
    pub const NETDATA: u8 = 8;
    /// Pipe buffer page.
    pub const PIPE: u8 = 9;
    /// Boot-time kernel allocation.
    pub const BOOT: u8 = 10;
    /// 1 GiB hugetlb page.
    pub const HUGETLB: u8 = 11;
    /// vmalloc / misc kernel pages.
    pub const VMALLOC: u8 = 12;
    pub const N: usize = 13;
    pub const NAMES: [&str; N] = [
        "anon",
        "thp",
        "pagecache",
        "shmem",
        "pagetable",
        "kernel_stack",
        "slab",
        "net_frag",
        "net_data",
        "pipe",
        "boot",
        "hugetlb",
        "vmalloc",
    ];
}

/// Object flags.
pub mod flag {
    /// Dirty page cache (on the holder's `dirty` list).
    pub const DIRTY: u8 = 1;
    /// Pinned (GUP/DMA): migration is refused.
    pub const PINNED: u8 = 2;
    /// On the holder's `aux` list.
    pub const AUX: u8 = 4;
}

/// One allocated block. For slab pages `holder` is the cache and `slot` the slab's index in the
/// cache; for fragment pages `slot` is the reference count; otherwise `slot` is the index in
/// the holder's list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Obj {
    pub pfn: u32,
    pub holder: u32,
    pub slot: u32,
    pub order: u8,
    pub kind: u8,
    pub flags: u8,
    pub zone: u8,
}

const _: () = assert!(std::mem::size_of::<Obj>() == 16);

impl Obj {
    const EMPTY: Obj = Obj {
        pfn: 0,
        holder: NONE,
        slot: NONE,
        order: 0,
        kind: 0,
        flags: 0,
        zone: 0,
    };
}

impl World {
    // ----- objects -----

    /// Reserve an object id (the cookie of an allocation in flight).
    #[inline]
    pub fn new_obj(&mut self) -> u32 {
        if let Some(i) = self.free_objs.pop() {
            i
        } else {
            self.objs.push(Obj::EMPTY);
            (self.objs.len() - 1) as u32
        }
    }
    #[inline]
    pub fn release_obj(&mut self, id: u32) {
        self.objs[id as usize] = Obj::EMPTY;
        self.free_objs.push(id);
    }
    /// Live objects.
    pub fn live_objs(&self) -> usize {
        self.objs.len() - self.free_objs.len()
    }

    /// Record a freshly allocated block in object `id` and count it.
    #[inline]
    pub fn fill_obj(&mut self, id: u32, pfn: u64, order: u8, k: u8, holder: u32) {
        debug_assert!(
            pfn < u32::MAX as u64,
            "pfn {pfn:#x} does not fit the 32-bit object record"
        );
        let zone = self.zone_of(pfn);
        self.objs[id as usize] = Obj {
            pfn: pfn as u32,
            holder,
            slot: NONE,
            order,
            kind: k,
            flags: 0,
            zone,
        };
        self.kind_pages[k as usize] += 1u64 << order;
    }

    /// Forget a block (no longer allocated: freed by us or dropped by the allocator).
    #[inline]
    pub(super) fn forget(&mut self, id: u32) {
        let o = self.objs[id as usize];
        let n = 1u64 << o.order;
        self.kind_pages[o.kind as usize] -= n;
        if o.kind == kind::CACHE || o.kind == kind::SHMEM {
            if o.kind == kind::CACHE {
                if o.flags & flag::DIRTY != 0 {
                    self.dirty_pages -= n;
                } else {
                    self.count_clean(o.zone, o.pfn, n, false);
                }
            }
            if o.holder != NONE {
                let hd = &mut self.holders[o.holder as usize];
                hd.huge = hd.huge.saturating_sub(n as u32);
            }
        }
        self.release_obj(id);
    }

    /// Free a page object attached to a holder list: detach, forget, queue the block.
    #[inline]
    pub fn free_page(&mut self, id: u32, cpu: u16) {
        let o = self.objs[id as usize];
        self.detach(id);
        self.pending.push((o.pfn as u64, o.order, cpu));
        self.forget(id);
    }

    /// Free an unattached object (fragment pages, hugetlb pages held elsewhere).
    #[inline]
    pub fn free_loose(&mut self, id: u32, cpu: u16) {
        let o = self.objs[id as usize];
        self.pending.push((o.pfn as u64, o.order, cpu));
        self.forget(id);
    }
}
