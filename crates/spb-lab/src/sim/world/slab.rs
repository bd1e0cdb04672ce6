//! The one SLUB occupancy model: slabs of each cache (slots, partial list, empty slabs kept up
//! to `min_partial`), unused cached objects (the cache's LRU, what the shrinkers free), and the
//! operations on them. The static catalogue (object sizes, slab orders, masks) is
//! `sim::slab`; this module owns the run-time state.
//!
//! Invariants: a slot with `id != NONE` is a live slab page whose object record has kind SLAB,
//! `holder` = the cache and `slot` = the slot; `ppos` is its index in `partial` iff it has room
//! or is empty; `0 <= lru <= inuse <= cap`; `empty` counts the slabs with `inuse == 0`; the
//! cache's `pages` is the sum of its slabs' pages; `freeable_slab_zone[z]` is the pages of
//! reclaimable slabs in zone `z` whose objects are all unused (`inuse == lru`), and
//! `slab_reclaimable_pages` / `slab_unreclaimable_pages` the pages of all slabs by kind.
//!
//! API: [`World::slab_take_room`] / [`World::slab_new`] allocate an object (the simulator's
//! `Ctx::kobj_alloc` allocates the page), [`World::slab_put`] frees one (an empty slab beyond
//! `min_partial` goes back to `pending`), [`World::slab_to_lru`] / [`World::slab_from_lru`]
//! move an object between in use and unused-cached, and the shrinkers
//! ([`World::shrink_slab`], [`World::shrink_range`]) free unused cached objects oldest first.

use std::collections::VecDeque;

use spb_alloc::Pfn;

use super::World;
use crate::sim::slab::{CacheSpec, CACHES, NONE};

/// A reference to one object's slab: the cache index in the top [`REF_CACHE_BITS`] bits, the
/// slab's slot in the cache below. Slots are stable while the slab lives (freed slots are
/// reused), so an object operation needs no lookup of the page record.
pub type SlabRef = u32;
pub const REF_SLOT_BITS: u32 = 26;
pub const REF_CACHE_BITS: u32 = 32 - REF_SLOT_BITS;

#[inline]
pub fn sref(c: u16, slot: u32) -> SlabRef {
    debug_assert!(slot < (1 << REF_SLOT_BITS) && (c as u32) < (1 << REF_CACHE_BITS));
    ((c as u32) << REF_SLOT_BITS) | slot
}

/// (cache, slot) of a reference.
#[inline]
pub fn unref(r: SlabRef) -> (usize, u32) {
    (
        (r >> REF_SLOT_BITS) as usize,
        r & ((1 << REF_SLOT_BITS) - 1),
    )
}

const _: () = assert!(CACHES.len() < (1 << REF_CACHE_BITS));

/// One slab: 16 bytes, so an object operation touches one cache line of slab state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlabSlot {
    /// The slab page's object id.
    pub id: u32,
    /// Position in the cache's partial list, or [`NONE`].
    pub ppos: u32,
    pub inuse: u16,
    /// Objects unused but cached (on the LRU, shrinkable).
    pub lru: u16,
    pub cap: u16,
    pub order: u8,
    pub zone: u8,
}

/// Runtime state of one cache.
pub struct SlabCache {
    pub spec: &'static CacheSpec,
    /// Slabs by slot; a free slot has `id == NONE`.
    pub slots: Vec<SlabSlot>,
    /// Free slots, reused first.
    pub free_slots: Vec<u32>,
    /// Slots of slabs with room.
    pub partial: Vec<u32>,
    /// Slabs with no object kept for reuse.
    pub empty: u32,
    /// Unused cached objects, oldest first.
    pub lru_q: VecDeque<SlabRef>,
    pub objects: u64,
    pub pages: u64,
    pub slabs_allocated: u64,
    pub slabs_freed: u64,
    /// Shrinker work deferred to the next call (objects).
    pub shrink_debt: f64,
}

impl SlabCache {
    pub fn new(spec: &'static CacheSpec) -> SlabCache {
        SlabCache {
            spec,
            slots: Vec::new(),
            free_slots: Vec::new(),
            partial: Vec::new(),
            empty: 0,
            lru_q: VecDeque::new(),
            objects: 0,
            pages: 0,
            slabs_allocated: 0,
            slabs_freed: 0,
            shrink_debt: 0.0,
        }
    }
    /// Remove slot `s` from the partial list.
    #[inline]
    pub fn partial_del(&mut self, s: u32) {
        let p = self.slots[s as usize].ppos;
        if p == NONE {
            return;
        }
        let last = self.partial.pop().unwrap();
        if last != s {
            self.partial[p as usize] = last;
            self.slots[last as usize].ppos = p;
        }
        self.slots[s as usize].ppos = NONE;
    }
    /// Add slot `s` to the partial list.
    #[inline]
    pub fn partial_add(&mut self, s: u32) {
        if self.slots[s as usize].ppos == NONE {
            self.slots[s as usize].ppos = self.partial.len() as u32;
            self.partial.push(s);
        }
    }
    /// Whether slot `s` would be freed by a full shrink (every object unused).
    #[inline]
    pub fn freeable(&self, s: u32) -> bool {
        let x = &self.slots[s as usize];
        self.spec.reclaimable && x.inuse == x.lru
    }
}

impl World {
    #[inline]
    fn slab_track(&mut self, c: usize, s: u32, before: bool) {
        let cache = &self.caches[c];
        if !cache.spec.reclaimable {
            return;
        }
        let after = cache.freeable(s);
        if before != after {
            let x = cache.slots[s as usize];
            let n = 1u64 << x.order;
            if after {
                self.freeable_slab_zone[x.zone as usize] += n;
            } else {
                self.freeable_slab_zone[x.zone as usize] -= n;
            }
        }
    }

    /// Take room for one object in a partial slab of cache `c`.
    #[inline]
    pub fn slab_take_room(&mut self, c: u16) -> Option<SlabRef> {
        let ci = c as usize;
        let s = *self.caches[ci].partial.last()?;
        let before = self.caches[ci].freeable(s);
        let cache = &mut self.caches[ci];
        let x = &mut cache.slots[s as usize];
        if x.inuse == 0 {
            cache.empty -= 1;
        }
        x.inuse += 1;
        let full = x.inuse >= x.cap;
        cache.objects += 1;
        if full {
            cache.partial_del(s);
        }
        self.slab_track(ci, s, before);
        Some(sref(c, s))
    }

    /// Register a new slab page (object `id`, already filled with kind SLAB) in cache `c` and
    /// take one object from it.
    pub fn slab_new(&mut self, c: u16, id: u32) -> SlabRef {
        let ci = c as usize;
        let o = self.objs[id as usize];
        let cache = &mut self.caches[ci];
        let cap = cache.spec.objs(o.order);
        let x = SlabSlot {
            id,
            ppos: NONE,
            inuse: 1,
            lru: 0,
            cap,
            order: o.order,
            zone: o.zone,
        };
        let s = match cache.free_slots.pop() {
            Some(s) => {
                cache.slots[s as usize] = x;
                s
            }
            None => {
                cache.slots.push(x);
                (cache.slots.len() - 1) as u32
            }
        };
        if cap > 1 {
            cache.partial_add(s);
        }
        cache.objects += 1;
        cache.pages += 1u64 << o.order;
        cache.slabs_allocated += 1;
        let recl = cache.spec.reclaimable;
        let ob = &mut self.objs[id as usize];
        ob.holder = c as u32;
        ob.slot = s;
        if recl {
            self.slab_reclaimable_pages += 1u64 << o.order;
        } else {
            self.slab_unreclaimable_pages += 1u64 << o.order;
        }
        sref(c, s)
    }

    /// Free one object.
    pub fn slab_put(&mut self, r: SlabRef, cpu: u16) {
        let (ci, s) = unref(r);
        let before = self.caches[ci].freeable(s);
        let cache = &mut self.caches[ci];
        let x = &mut cache.slots[s as usize];
        debug_assert!(x.inuse > 0 && x.id != NONE);
        x.inuse -= 1;
        let now_empty = x.inuse == 0;
        let (zone, order) = (x.zone, x.order);
        cache.objects -= 1;
        if now_empty {
            if cache.empty < cache.spec.min_partial() {
                cache.empty += 1;
                cache.partial_add(s);
            } else {
                if before {
                    self.freeable_slab_zone[zone as usize] -= 1u64 << order;
                }
                self.slab_free_page(ci, s, cpu);
                return;
            }
        } else {
            cache.partial_add(s);
        }
        self.slab_track(ci, s, before);
    }

    /// Free the (empty) slab in slot `s` of cache `ci` to the page allocator.
    fn slab_free_page(&mut self, ci: usize, s: u32, cpu: u16) {
        let cache = &mut self.caches[ci];
        cache.partial_del(s);
        let x = cache.slots[s as usize];
        cache.slots[s as usize].id = NONE;
        cache.free_slots.push(s);
        cache.pages -= 1u64 << x.order;
        cache.slabs_freed += 1;
        if cache.spec.reclaimable {
            self.slab_reclaimable_pages -= 1u64 << x.order;
        } else {
            self.slab_unreclaimable_pages -= 1u64 << x.order;
        }
        self.free_loose(x.id, cpu);
    }

    /// An in-use object becomes unused but cached (on the cache's LRU).
    pub fn slab_to_lru(&mut self, r: SlabRef) {
        let (ci, s) = unref(r);
        let before = self.caches[ci].freeable(s);
        self.caches[ci].slots[s as usize].lru += 1;
        self.caches[ci].lru_q.push_back(r);
        self.slab_track(ci, s, before);
    }

    /// Reuse the most recently cached unused object of cache `c` (it becomes in use).
    pub fn slab_from_lru(&mut self, c: u16) -> Option<SlabRef> {
        let ci = c as usize;
        let r = self.caches[ci].lru_q.pop_back()?;
        let (_, s) = unref(r);
        let before = self.caches[ci].freeable(s);
        self.caches[ci].slots[s as usize].lru -= 1;
        self.slab_track(ci, s, before);
        Some(r)
    }

    /// The pfn of an object's slab page.
    pub fn slab_pfn(&self, r: SlabRef) -> Pfn {
        let (ci, s) = unref(r);
        self.objs[self.caches[ci].slots[s as usize].id as usize].pfn as Pfn
    }

    /// Free the oldest unused cached object of cache `c` (the shrinker's step).
    pub fn slab_shrink_one(&mut self, c: u16, cpu: u16) -> bool {
        let ci = c as usize;
        let Some(r) = self.caches[ci].lru_q.pop_front() else {
            return false;
        };
        let (_, s) = unref(r);
        let before = self.caches[ci].freeable(s);
        self.caches[ci].slots[s as usize].lru -= 1;
        self.slab_track(ci, s, before);
        self.slab_put(r, cpu);
        self.st.slab_objects_shrunk += 1;
        true
    }

    /// Unused cached objects over all reclaimable caches.
    pub fn shrinkable_objects(&self) -> u64 {
        self.caches
            .iter()
            .filter(|c| c.spec.reclaimable)
            .map(|c| c.lru_q.len() as u64)
            .sum()
    }

    /// Run the shrinkers: free about `frac` of every reclaimable cache's unused objects (at
    /// least `min_objs` in total when there are any), oldest first. Returns objects freed.
    pub fn shrink_slab(&mut self, frac: f64, min_objs: u64, cpu: u16) -> u64 {
        let mut freed = 0;
        for c in 0..self.caches.len() {
            if !self.caches[c].spec.reclaimable {
                continue;
            }
            let len = self.caches[c].lru_q.len() as u64;
            // scans accumulate and run in batches of SHRINK_BATCH (128), as do_shrink_slab
            // defers small amounts of work
            let debt = self.caches[c].shrink_debt + len as f64 * frac;
            let mut n = debt as u64;
            if n < 128 && n < len && min_objs == 0 {
                self.caches[c].shrink_debt = debt;
                continue;
            }
            n = n.max(min_objs.min(len)).min(len);
            self.caches[c].shrink_debt = (debt - n as f64).max(0.0).min(len as f64);
            self.st.slabs_scanned += n;
            for _ in 0..n {
                if self.slab_shrink_one(c as u16, cpu) {
                    freed += 1;
                }
            }
        }
        freed
    }

    /// Shrink objects living in slabs inside `[lo, hi)` (spb's targeted shrinking): scan at
    /// most `scan` objects from the oldest of each reclaimable cache.
    pub fn shrink_range(&mut self, lo: Pfn, hi: Pfn, mut scan: u64, cpu: u16) -> u64 {
        let mut freed = 0;
        for c in 0..self.caches.len() {
            if !self.caches[c].spec.reclaimable {
                continue;
            }
            let len = self.caches[c].lru_q.len();
            let mut i = 0;
            let mut kept = 0;
            while i < len && scan > 0 {
                scan -= 1;
                i += 1;
                let Some(sid) = self.caches[c].lru_q.pop_front() else {
                    break;
                };
                let p = self.slab_pfn(sid);
                if p >= lo && p < hi {
                    // hand it back as if popped by the shrinker
                    self.caches[c].lru_q.push_front(sid);
                    self.slab_shrink_one(c as u16, cpu);
                    freed += 1;
                } else {
                    self.caches[c].lru_q.push_back(sid);
                    kept += 1;
                }
            }
            let _ = kept;
            self.st.slabs_scanned += i as u64;
        }
        freed
    }
}

#[cfg(test)]
mod tests {
    use super::super::objects::kind;
    use super::*;
    use crate::sim::slab::cache_id;

    use super::super::test_world as world;

    fn new_slab(w: &mut World, c: u16, pfn: u64, order: u8) -> SlabRef {
        let id = w.new_obj();
        w.fill_obj(id, pfn, order, kind::SLAB, NONE);
        w.slab_new(c, id)
    }

    #[test]
    fn slab_occupancy_partial_first_and_pinning() {
        let mut w = world();
        let c = cache_id("kmalloc-192"); // 21 objects per order-0 slab
        let s1 = new_slab(&mut w, c, 100, 0);
        for _ in 0..20 {
            assert_eq!(
                w.slab_take_room(c),
                Some(s1),
                "a partial slab is filled first"
            );
        }
        assert_eq!(w.slab_take_room(c), None, "full: a new slab page is needed");
        let s2 = new_slab(&mut w, c, 200, 0);
        assert_eq!(w.caches[c as usize].objects, 22);
        // free 20 of s1's objects: the one long-lived object left pins the page
        for _ in 0..20 {
            w.slab_put(s1, 0);
        }
        assert!(w.pending.is_empty());
        assert_eq!(w.caches[c as usize].pages, 2);
        // new objects go to a partial slab, no page allocation
        assert!(matches!(w.slab_take_room(c), Some(s) if s == s1 || s == s2));
        // empty slabs are kept up to min_partial (5), then freed
        let min_partial = w.caches[c as usize].spec.min_partial();
        let mut extra = Vec::new();
        for k in 0..min_partial + 3 {
            extra.push(new_slab(&mut w, c, 1000 + k as u64, 0));
        }
        for &s in &extra {
            w.slab_put(s, 0);
        }
        assert_eq!(w.caches[c as usize].empty, min_partial);
        assert_eq!(
            w.pending.len(),
            3,
            "beyond min_partial, empty slabs go back to the page allocator"
        );
        assert_eq!(
            w.kind_pages[kind::SLAB as usize],
            w.caches[c as usize].pages
        );
        // slot bookkeeping: live slots point at their page records, partial positions match
        for (i, x) in w.caches[c as usize].slots.iter().enumerate() {
            if x.id == NONE {
                assert!(w.caches[c as usize].free_slots.contains(&(i as u32)));
                continue;
            }
            assert_eq!(w.objs[x.id as usize].slot, i as u32);
            if x.ppos != NONE {
                assert_eq!(w.caches[c as usize].partial[x.ppos as usize], i as u32);
            }
        }
    }

    #[test]
    fn reclaimable_slab_shrinks_oldest_first() {
        let mut w = world();
        let c = cache_id("dentry");
        // two slabs, each with 21 objects: slab A's objects all unused and cached, slab B keeps
        // one object in use
        let a = new_slab(&mut w, c, 300, 0);
        for _ in 0..20 {
            w.slab_take_room(c);
        }
        let b = new_slab(&mut w, c, 400, 0);
        for _ in 0..20 {
            w.slab_take_room(c);
        }
        for _ in 0..21 {
            w.slab_to_lru(a);
        }
        for _ in 0..20 {
            w.slab_to_lru(b);
        }
        assert_eq!(
            w.freeable_slab_zone[0], 1,
            "only slab A would be freed by a full shrink"
        );
        // reuse the most recently cached object (one of B's), then shrink everything
        assert_eq!(w.slab_from_lru(c), Some(b));
        assert_eq!(w.shrinkable_objects(), 40);
        for _ in 0..21 {
            assert!(w.slab_shrink_one(c, 0));
        }
        // A's objects were the oldest: A is now empty (kept as an empty slab, min_partial)
        assert_eq!(w.caches[c as usize].slots[unref(a).1 as usize].inuse, 0);
        assert!(w.pending.is_empty());
        let freed = w.shrink_slab(1.0, 0, 0);
        assert_eq!(freed, 19);
        assert_eq!(w.caches[c as usize].objects, 2, "the objects in use stay");
    }
}
