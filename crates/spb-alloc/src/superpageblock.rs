//! Superpageblock bookkeeping (series patches 08, 10, 14 and 17): per-SPB counters, the
//! category, the fullness bucket and the zone lists `[category][fullness]` an SPB is filed on.
//!
//! The bookkeeping runs under every policy, because the measures (tainted, lost, clean) are
//! defined for every policy; only the `spb` policy *steers* by it.

use alloc::vec::Vec;

use crate::page::NIL;
use crate::pageblock::content;

/// SPB category.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Category {
    /// Every usable pageblock is free.
    Empty = 0,
    /// Only free and movable pages (reserved pages and holes aside).
    Clean = 1,
    /// Holds a non-movable page.
    Tainted = 2,
    /// Held by a contiguous (1 GiB) allocation: out of steering.
    Isolated = 3,
}

/// Number of categories.
pub const NR_CATEGORIES: usize = 4;

/// Fullness buckets, fullest first (SB_FULL .. SB_ALMOST_EMPTY). Bucket 0 holds SPBs with no
/// free page at all (allocation walks skip it: at 1 TiB most SPBs are full and stepping over
/// them would make every walk O(SPBs)); the others follow the fraction of the SPB's usable
/// pages that are free: `< 1/8`, `< 3/8`, `< 5/8`, `< 7/8`, and the rest. (The series' boundaries
/// were not recoverable; these are evenly spaced so "fullest first" has a useful resolution.)
pub const NR_FULLNESS: usize = 6;
/// First bucket an allocation walk visits.
pub const FIRST_WITH_FREE: usize = 1;

/// Counters of one superpageblock.
///
/// # Invariants
/// - `pb_free, pb_unmovable, pb_reclaimable, pb_movable, pb_reserved <= total_pageblocks`
///   (patch 22's sanity checks).
/// - `free_pages + pcp_pages + alloc_pages.sum() + reserved_pages + absent_pages ==` pages of
///   the SPB inside the zone span.
/// - The SPB is linked on exactly one zone list: `lists[category][fullness]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpbMeta {
    pub(crate) start_pfn: u64,
    /// Pageblocks of this SPB inside the zone span.
    pub(crate) total_pageblocks: u32,
    pub(crate) pb_free: u32,
    pub(crate) pb_unmovable: u32,
    pub(crate) pb_reclaimable: u32,
    pub(crate) pb_movable: u32,
    /// Pageblocks holding reserved pages or holes.
    pub(crate) pb_reserved: u32,
    pub(crate) free_pages: u64,
    pub(crate) pcp_pages: u64,
    /// Allocated pages by class (unmovable, movable, reclaimable, highatomic).
    pub(crate) alloc_pages: [u64; 4],
    pub(crate) reserved_pages: u64,
    /// Holes, uninitialised memory and pages outside the zone span.
    pub(crate) absent_pages: u64,
    /// Pages of the SPB outside the zone span (part of `absent_pages`).
    pub(crate) outside_pages: u64,
    /// Held by a contiguous allocation (patch 17).
    pub(crate) contig_allocated: bool,
    pub(crate) category: Category,
    pub(crate) fullness: u8,
    pub(crate) list_prev: u32,
    pub(crate) list_next: u32,
    /// Free-page thresholds of the fullness buckets above 1: `ceil((2k+1)/8 * usable)`, k = 0..3.
    /// Derived from the usable pages; refreshed whenever those change.
    pub(crate) bounds: [u64; 4],
}

impl SpbMeta {
    pub(crate) fn new(start_pfn: u64) -> SpbMeta {
        SpbMeta {
            start_pfn,
            total_pageblocks: 0,
            pb_free: 0,
            pb_unmovable: 0,
            pb_reclaimable: 0,
            pb_movable: 0,
            pb_reserved: 0,
            free_pages: 0,
            pcp_pages: 0,
            alloc_pages: [0; 4],
            reserved_pages: 0,
            absent_pages: 0,
            outside_pages: 0,
            contig_allocated: false,
            category: Category::Empty,
            fullness: 0,
            list_prev: NIL,
            list_next: NIL,
            bounds: [0; 4],
        }
    }
    /// Recompute the fullness thresholds from the usable pages.
    pub fn refresh_bounds(&mut self) {
        let u = self.usable_pages();
        for k in 0..4 {
            self.bounds[k] = ((2 * k as u64 + 1) * u).div_ceil(8);
        }
    }
    /// The fullness bucket for `free` free pages (0 = fullest).
    #[inline(always)]
    pub fn fullness_of(&self, free: u64) -> u8 {
        (free > 0) as u8
            + (free >= self.bounds[0]) as u8
            + (free >= self.bounds[1]) as u8
            + (free >= self.bounds[2]) as u8
            + (free >= self.bounds[3]) as u8
    }
    /// Non-movable pages (unmovable + reclaimable + highatomic allocations).
    #[inline]
    pub fn non_movable_pages(&self) -> u64 {
        self.alloc_pages[0] + self.alloc_pages[2] + self.alloc_pages[3]
    }
    /// Movable pages allocated.
    #[inline]
    pub fn movable_pages(&self) -> u64 {
        self.alloc_pages[1]
    }
    /// Holds a non-movable page.
    #[inline]
    pub fn is_tainted(&self) -> bool {
        self.non_movable_pages() > 0
    }
    /// Holds a reserved page.
    #[inline]
    pub fn is_pinned(&self) -> bool {
        self.reserved_pages > 0
    }
    /// Has a hole (including pages outside the zone, or memory not yet initialised).
    #[inline]
    pub fn has_hole(&self) -> bool {
        self.absent_pages > 0
    }
    /// Cannot become a 1 GiB page without freeing kernel memory.
    #[inline]
    pub fn is_lost(&self) -> bool {
        self.is_tainted() || self.is_pinned() || self.has_hole()
    }
    /// Pages that could ever be free.
    #[inline]
    pub fn usable_pages(&self) -> u64 {
        self.free_pages + self.pcp_pages + self.alloc_pages.iter().sum::<u64>()
    }
    /// All usable pages free.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.free_pages == self.usable_pages()
    }
    /// The category the counters imply.
    pub fn compute_category(&self) -> Category {
        if self.contig_allocated {
            Category::Isolated
        } else if self.is_tainted() {
            Category::Tainted
        } else if self.free_pages == self.usable_pages() && self.usable_pages() > 0 {
            Category::Empty
        } else {
            Category::Clean
        }
    }
    /// The fullness bucket the counters imply: 0 = no free page; then by free eighths of the
    /// usable pages: 0 -> 1, 1-2 -> 2, 3-4 -> 3, 5-6 -> 4, 7-8 -> 5 (almost empty).
    pub fn compute_fullness(&self) -> u8 {
        let usable = self.usable_pages();
        if usable == 0 || self.free_pages == 0 {
            return 0;
        }
        match (self.free_pages * 8 / usable) as u8 {
            0 => 1,
            1 | 2 => 2,
            3 | 4 => 3,
            5 | 6 => 4,
            _ => 5,
        }
    }
    /// Apply a pageblock content transition to the pageblock counters.
    pub(crate) fn pb_transition(&mut self, old: u8, new: u8) {
        let diff = old ^ new;
        if diff == 0 {
            return;
        }
        let adj = |v: &mut u32, bit: u8| {
            if diff & bit != 0 {
                if new & bit != 0 {
                    *v += 1;
                } else {
                    *v -= 1;
                }
            }
        };
        adj(&mut self.pb_free, content::ALL_FREE);
        // highatomic content counts as unmovable for the pageblock counts
        if (diff & (content::UNMOVABLE | content::HIGHATOMIC)) != 0 {
            let o = old & (content::UNMOVABLE | content::HIGHATOMIC) != 0;
            let n = new & (content::UNMOVABLE | content::HIGHATOMIC) != 0;
            if o != n {
                if n {
                    self.pb_unmovable += 1
                } else {
                    self.pb_unmovable -= 1
                }
            }
        }
        adj(&mut self.pb_reclaimable, content::RECLAIMABLE);
        adj(&mut self.pb_movable, content::MOVABLE);
        adj(&mut self.pb_reserved, content::RESERVED);
    }
}

/// The zone's SPB lists: one doubly linked list (through `list_prev`/`list_next`) per
/// (category, fullness) pair. Heads are SPB indices.
#[derive(Clone, Debug)]
pub struct SpbLists {
    pub(crate) heads: [[u32; NR_FULLNESS]; NR_CATEGORIES],
    pub(crate) counts: [[u32; NR_FULLNESS]; NR_CATEGORIES],
}

impl Default for SpbLists {
    fn default() -> Self {
        SpbLists {
            heads: [[NIL; NR_FULLNESS]; NR_CATEGORIES],
            counts: [[0; NR_FULLNESS]; NR_CATEGORIES],
        }
    }
}

impl SpbLists {
    /// Link SPB `i` on the list its `category`/`fullness` fields name (at the head).
    pub fn link(&mut self, spbs: &mut [SpbMeta], i: u32) {
        let (c, f) = (
            spbs[i as usize].category as usize,
            spbs[i as usize].fullness as usize,
        );
        let head = self.heads[c][f];
        spbs[i as usize].list_prev = NIL;
        spbs[i as usize].list_next = head;
        if head != NIL {
            spbs[head as usize].list_prev = i;
        }
        self.heads[c][f] = i;
        self.counts[c][f] += 1;
    }
    /// Unlink SPB `i` from the list its current fields name.
    pub fn unlink(&mut self, spbs: &mut [SpbMeta], i: u32) {
        let (c, f) = (
            spbs[i as usize].category as usize,
            spbs[i as usize].fullness as usize,
        );
        let (p, n) = (spbs[i as usize].list_prev, spbs[i as usize].list_next);
        if p != NIL {
            spbs[p as usize].list_next = n;
        } else {
            self.heads[c][f] = n;
        }
        if n != NIL {
            spbs[n as usize].list_prev = p;
        }
        spbs[i as usize].list_prev = NIL;
        spbs[i as usize].list_next = NIL;
        self.counts[c][f] -= 1;
    }
    /// Re-file SPB `i` if its category or fullness changed (sb_update_list). Returns the old
    /// category when it changed.
    pub fn refile(&mut self, spbs: &mut [SpbMeta], i: u32) -> Option<Category> {
        let s = &spbs[i as usize];
        let (c, f) = (s.compute_category(), s.fullness_of(s.free_pages));
        if c == s.category && f == s.fullness {
            return None;
        }
        let old = s.category;
        self.unlink(spbs, i);
        spbs[i as usize].category = c;
        spbs[i as usize].fullness = f;
        self.link(spbs, i);
        if old != c {
            Some(old)
        } else {
            None
        }
    }
    /// SPB indices of one list, in list order.
    pub fn iter<'a>(&self, spbs: &'a [SpbMeta], c: Category, f: usize) -> SpbListIter<'a> {
        SpbListIter {
            spbs,
            cur: self.heads[c as usize][f],
        }
    }
    /// Number of SPBs in a category.
    pub fn category_count(&self, c: Category) -> u32 {
        self.counts[c as usize].iter().sum()
    }
}

/// Iterator over one SPB list.
pub struct SpbListIter<'a> {
    spbs: &'a [SpbMeta],
    cur: u32,
}

impl Iterator for SpbListIter<'_> {
    type Item = u32;
    fn next(&mut self) -> Option<u32> {
        if self.cur == NIL {
            return None;
        }
        let i = self.cur;
        self.cur = self.spbs[i as usize].list_next;
        Some(i)
    }
}

/// Build an empty list set for `n` SPBs, filing each by its counters.
pub(crate) fn build_lists(spbs: &mut [SpbMeta]) -> SpbLists {
    let mut l = SpbLists::default();
    for i in 0..spbs.len() {
        spbs[i].refresh_bounds();
        spbs[i].category = spbs[i].compute_category();
        spbs[i].fullness = spbs[i].compute_fullness();
        l.link(spbs, i as u32);
    }
    l
}

/// Allocate a vector of SPB metadata for a zone span.
pub(crate) fn new_spbs(first_spb_pfn: u64, n: usize, spb_pages: u64) -> Vec<SpbMeta> {
    (0..n)
        .map(|i| SpbMeta::new(first_spb_pfn + i as u64 * spb_pages))
        .collect()
}

/// Read-only access to the fields (the inspection view; only the allocator changes them).
impl SpbMeta {
    pub fn start_pfn(&self) -> u64 {
        self.start_pfn
    }
    pub fn total_pageblocks(&self) -> u32 {
        self.total_pageblocks
    }
    pub fn pb_free(&self) -> u32 {
        self.pb_free
    }
    pub fn pb_unmovable(&self) -> u32 {
        self.pb_unmovable
    }
    pub fn pb_reclaimable(&self) -> u32 {
        self.pb_reclaimable
    }
    pub fn pb_movable(&self) -> u32 {
        self.pb_movable
    }
    pub fn pb_reserved(&self) -> u32 {
        self.pb_reserved
    }
    pub fn free_pages(&self) -> u64 {
        self.free_pages
    }
    pub fn pcp_pages(&self) -> u64 {
        self.pcp_pages
    }
    pub fn alloc_pages(&self) -> [u64; 4] {
        self.alloc_pages
    }
    pub fn reserved_pages(&self) -> u64 {
        self.reserved_pages
    }
    pub fn absent_pages(&self) -> u64 {
        self.absent_pages
    }
    pub fn outside_pages(&self) -> u64 {
        self.outside_pages
    }
    pub fn contig_allocated(&self) -> bool {
        self.contig_allocated
    }
    pub fn category(&self) -> Category {
        self.category
    }
    pub fn fullness(&self) -> u8 {
        self.fullness
    }
    pub fn list_prev(&self) -> u32 {
        self.list_prev
    }
    pub fn list_next(&self) -> u32 {
        self.list_next
    }
    pub fn bounds(&self) -> [u64; 4] {
        self.bounds
    }
}
