//! Buddy free lists: `free_area[order][migratetype]` as index-linked lists.
//!
//! A zone holds one [`FreeArea`] (mainline) or one per superpageblock (the series' per-SPB free
//! lists, patch 14). Which one a free block belongs to is decided by the zone
//! (`Zone::bucket_of`); the lists themselves only know indices.

use crate::migratetype::MIGRATE_TYPES;
use crate::page::{PageMeta, NIL};

/// Largest supported number of buddy orders.
pub const MAX_NR_ORDERS: usize = 16;

/// One set of free lists, one list per (order, migratetype).
///
/// # Invariants
/// `head[o][t] == NIL` iff `tail[o][t] == NIL` iff bit `o` of `mask[t]` is clear.
#[derive(Clone, Debug)]
pub struct FreeArea {
    pub head: [[u32; MIGRATE_TYPES]; MAX_NR_ORDERS],
    pub tail: [[u32; MIGRATE_TYPES]; MAX_NR_ORDERS],
    /// Bit `o` of `mask[t]` is set when list (o, t) is non-empty.
    pub mask: [u16; MIGRATE_TYPES],
}

impl Default for FreeArea {
    fn default() -> Self {
        FreeArea {
            head: [[NIL; MIGRATE_TYPES]; MAX_NR_ORDERS],
            tail: [[NIL; MIGRATE_TYPES]; MAX_NR_ORDERS],
            mask: [0; MIGRATE_TYPES],
        }
    }
}

impl FreeArea {
    /// Link page `i` at the head (or tail) of list (order, mt).
    #[inline]
    pub fn push(&mut self, pages: &mut [PageMeta], i: u32, order: usize, mt: usize, at_tail: bool) {
        let (h, t) = (self.head[order][mt], self.tail[order][mt]);
        if h == NIL {
            pages[i as usize].next = NIL;
            pages[i as usize].prev = NIL;
            self.head[order][mt] = i;
            self.tail[order][mt] = i;
            self.mask[mt] |= 1 << order;
        } else if at_tail {
            pages[i as usize].prev = t;
            pages[i as usize].next = NIL;
            pages[t as usize].next = i;
            self.tail[order][mt] = i;
        } else {
            pages[i as usize].next = h;
            pages[i as usize].prev = NIL;
            pages[h as usize].prev = i;
            self.head[order][mt] = i;
        }
    }
    /// Unlink page `i` from list (order, mt).
    #[inline]
    pub fn unlink(&mut self, pages: &mut [PageMeta], i: u32, order: usize, mt: usize) {
        let (p, n) = (pages[i as usize].prev, pages[i as usize].next);
        if p != NIL {
            pages[p as usize].next = n;
        } else {
            self.head[order][mt] = n;
        }
        if n != NIL {
            pages[n as usize].prev = p;
        } else {
            self.tail[order][mt] = p;
        }
        if self.head[order][mt] == NIL {
            self.mask[mt] &= !(1 << order);
        }
        pages[i as usize].next = NIL;
        pages[i as usize].prev = NIL;
    }
    /// Make page `i` (on list (order, mt)) the head: the entries before it move, in order,
    /// behind the old tail (the kernel's `move_freelist_head`: a search that walks the list
    /// from the tail next meets the entries it has not looked at yet).
    pub fn rotate_to_head(&mut self, pages: &mut [PageMeta], i: u32, order: usize, mt: usize) {
        let h = self.head[order][mt];
        if h == i {
            return;
        }
        let (p, t) = (pages[i as usize].prev, self.tail[order][mt]);
        pages[t as usize].next = h;
        pages[h as usize].prev = t;
        pages[p as usize].next = NIL;
        pages[i as usize].prev = NIL;
        self.head[order][mt] = i;
        self.tail[order][mt] = p;
    }
    /// Tail of list (order, mt), if any.
    #[inline]
    pub fn last(&self, order: usize, mt: usize) -> Option<u32> {
        let t = self.tail[order][mt];
        (t != NIL).then_some(t)
    }
    /// Head of list (order, mt), if any.
    #[inline]
    pub fn first(&self, order: usize, mt: usize) -> Option<u32> {
        let h = self.head[order][mt];
        (h != NIL).then_some(h)
    }
    /// Smallest order `>= order` with a non-empty list of type `mt`.
    #[inline]
    pub fn smallest_from(&self, order: usize, mt: usize) -> Option<usize> {
        let m = (self.mask[mt] as u32) >> order;
        (m != 0).then(|| order + m.trailing_zeros() as usize)
    }
    /// Largest order `>= min` and `<= max` with a non-empty list of type `mt`.
    #[inline]
    pub fn largest_between(&self, min: usize, max: usize, mt: usize) -> Option<usize> {
        let m = (self.mask[mt] as u32) & ((2u32 << max) - 1) & !((1u32 << min) - 1);
        (m != 0).then(|| 31 - m.leading_zeros() as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn order_of(a: &FreeArea, pages: &[PageMeta]) -> Vec<u32> {
        let mut v = Vec::new();
        let mut i = a.head[0][0];
        let mut prev = NIL;
        while i != NIL {
            assert_eq!(pages[i as usize].prev, prev, "prev link of {i}");
            v.push(i);
            prev = i;
            i = pages[i as usize].next;
        }
        assert_eq!(a.tail[0][0], prev, "tail");
        v
    }

    #[test]
    fn rotate_to_head_moves_the_entries_before_it_behind_the_tail() {
        let mut pages = alloc::vec![PageMeta::TAIL; 8];
        let mut a = FreeArea::default();
        for i in 0..5 {
            a.push(&mut pages, i, 0, 0, true);
        }
        a.rotate_to_head(&mut pages, 3, 0, 0);
        assert_eq!(order_of(&a, &pages), [3, 4, 0, 1, 2]);
        a.rotate_to_head(&mut pages, 3, 0, 0);
        assert_eq!(order_of(&a, &pages), [3, 4, 0, 1, 2], "the head stays");
        a.rotate_to_head(&mut pages, 2, 0, 0);
        assert_eq!(
            order_of(&a, &pages),
            [2, 3, 4, 0, 1],
            "the tail becomes the head"
        );
        assert_eq!(a.last(0, 0), Some(1));
        assert_eq!(a.mask[0], 1);
    }
}
