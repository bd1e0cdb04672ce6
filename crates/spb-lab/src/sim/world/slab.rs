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
//! `Ctx::kobj_alloc` allocates the page; [`World::slab_fill_partial`] takes a population's
//! regrowth a partial slab at a time), [`World::slab_put`] frees one (an empty slab beyond
//! `min_partial` goes back to `pending`), [`World::slab_to_lru`] / [`World::slab_from_lru`]
//! move an object between in use and unused-cached, and the shrinkers
//! ([`World::shrink_slab`], [`World::shrink_range`]) free unused cached objects oldest first.

pub mod pages;

use std::collections::VecDeque;

use spb_alloc::Pfn;

use super::{prefetch, World};
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

/// Steps per batch of [`World::slab_churn`]: enough independent loads to keep a core's
/// outstanding-miss slots (10-20) busy, small enough for two arrays on the stack.
pub const CHURN_BATCH: usize = 32;

/// How many slabs ahead [`World::slab_take_room`] starts loading the next partial slab. A
/// fresh slab takes 10-40 objects (one `take_room` each) before the next is needed, but after
/// the shrinkers have freed scattered objects most partial slabs have room for one or two, so
/// the lead is counted in slabs of one object each: 16 of them (a few microseconds of work)
/// cover a miss that also misses the TLB (the slot arrays are tens of MB in 4 KiB pages).
const TAKE_AHEAD: usize = 16;

/// How many objects ahead [`World::shrink_slab`] starts loading the slab of the object it
/// will free (one free is a few hundred instructions; the objects of a long LRU lie in slabs
/// scattered over tens of MB, so a load is a cache and TLB miss of several hundred ns, which
/// 24 frees of lead cover).
const SHRINK_AHEAD: usize = 24;

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
    /// The first pfn of each slot's slab page (meaningful while the slot is live), beside
    /// `slots` so that a scan by address ([`World::shrink_range`]) reads 4 bytes per object
    /// instead of the slot and then the page record. Slab pages are never migrated (their
    /// blocks are unmovable or reclaimable), so it stays right, like the slot's `zone`.
    pub slot_pfn: Vec<u32>,
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
            slot_pfn: Vec::new(),
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
        self.slab_take_room_n(c, 1).map(|(s, _)| sref(c, s))
    }

    /// Take room for up to `max` objects (`max >= 1`) in the next partial slab of cache `c`
    /// at once: the same as `m` calls of `slab_take_room` while they stay on that slab.
    /// Returns the slot and `m` (at least 1), or `None` when no slab has room.
    #[inline]
    pub fn slab_take_room_n(&mut self, c: u16, max: u32) -> Option<(u32, u32)> {
        let ci = c as usize;
        let s = *self.caches[ci].partial.last()?;
        let before = self.caches[ci].freeable(s);
        let cache = &mut self.caches[ci];
        let x = &mut cache.slots[s as usize];
        let m = max.min((x.cap - x.inuse) as u32).max(1);
        if x.inuse == 0 {
            cache.empty -= 1;
        }
        x.inuse += m as u16;
        let full = x.inuse >= x.cap;
        cache.objects += m as u64;
        if full {
            cache.partial_del(s);
            // the slab after next few to be filled (a population grows by thousands of
            // objects a tick, slab after slab from the end of the partial list)
            if let Some(&next) = cache
                .partial
                .len()
                .checked_sub(TAKE_AHEAD)
                .and_then(|i| cache.partial.get(i))
            {
                prefetch(&cache.slots[next as usize]);
            }
        }
        self.slab_track(ci, s, before);
        Some((s, m))
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
                cache.slot_pfn[s as usize] = o.pfn;
                s
            }
            None => {
                cache.slots.push(x);
                cache.slot_pfn.push(o.pfn);
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

    /// `n` objects of slot `s` of cache `c` become unused and cached (pushed on the LRU):
    /// the same as `n` calls of `slab_to_lru`.
    pub fn slab_to_lru_n(&mut self, c: u16, s: u32, n: u32) {
        if n == 0 {
            return;
        }
        let ci = c as usize;
        let before = self.caches[ci].freeable(s);
        self.caches[ci].slots[s as usize].lru += n as u16;
        let r = sref(c, s);
        self.caches[ci]
            .lru_q
            .extend(std::iter::repeat_n(r, n as usize));
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

    /// The churn step of a slab population: `k` times, free one random object of holder `h`
    /// (cache `c`): with probability `used / (used + cached)` one of its `used` in-use objects
    /// (`kobjs`, taken out by `swap_remove` at a uniform index), else the most recently cached
    /// unused object of the cache (`cached` of them are the population's). Stops early when
    /// nothing is left. Returns the new `cached`.
    ///
    /// Same random draws, same objects, same order of effects as doing the steps one at a
    /// time (`rng.below(used + cached)`, then `rng.below(used)` for an in-use object), but in
    /// batches of [`CHURN_BATCH`]: the draws of a batch are made first (they depend only on
    /// the counts: only this loop changes `kobjs` and the cache's LRU queue, since `slab_put`
    /// touches neither), then the batch's object references are read and its slabs touched in
    /// tight loops of independent loads, then the frees are applied in order. With millions of
    /// objects every step is two cache misses (the reference, then its slab); one at a time
    /// they were 50-60 % of a 256 GiB run, in batches the misses overlap.
    #[allow(clippy::too_many_arguments)]
    pub fn slab_churn(
        &mut self,
        h: u32,
        c: u16,
        k: u64,
        mut cached: u64,
        rng: &mut crate::sim::rng::Rng,
        cpu: u16,
    ) -> u64 {
        /// An in-use object (the index is in `idx`) or, with this marker, a cached one.
        const LRU: u32 = u32::MAX;
        let ci = c as usize;
        // cached objects the queue can still give (the one-at-a-time loop's `slab_from_lru`
        // returns None, and `cached` drops to 0, once the queue is empty)
        let mut lru_left = self.caches[ci].lru_q.len() as u64;
        let mut left = k;
        let mut idx = [0u32; CHURN_BATCH];
        let mut refs = [0 as SlabRef; CHURN_BATCH];
        while left > 0 {
            // 1. the draws
            let mut n = 0;
            let mut stop = false;
            let mut used = self.holders[h as usize].kobjs.len() as u64;
            while n < CHURN_BATCH && left > 0 {
                left -= 1;
                if used + cached == 0 {
                    stop = true;
                    break;
                }
                if rng.below(used + cached) < used {
                    idx[n] = rng.below(used) as u32;
                    prefetch(&self.holders[h as usize].kobjs[idx[n] as usize]);
                    used -= 1;
                    n += 1;
                } else if lru_left > 0 {
                    idx[n] = LRU;
                    lru_left -= 1;
                    cached -= 1;
                    n += 1;
                } else {
                    cached = 0;
                }
            }
            // 2. the references (independent loads), in the loop's order per structure
            {
                let kobjs = &mut self.holders[h as usize].kobjs;
                for j in 0..n {
                    if idx[j] != LRU {
                        refs[j] = kobjs.swap_remove(idx[j] as usize);
                    }
                }
            }
            {
                let q = &mut self.caches[ci].lru_q;
                for j in 0..n {
                    if idx[j] == LRU {
                        refs[j] = q.pop_back().expect("counted above");
                    }
                }
            }
            // 3. start loading the slabs, then apply the frees in order
            for &r in &refs[..n] {
                prefetch(&self.caches[ci].slots[unref(r).1 as usize]);
            }
            for j in 0..n {
                let r = refs[j];
                if idx[j] == LRU {
                    // slab_from_lru's slab part (its queue pop is done above)
                    let s = unref(r).1;
                    let before = self.caches[ci].freeable(s);
                    self.caches[ci].slots[s as usize].lru -= 1;
                    self.slab_track(ci, s, before);
                }
                self.slab_put(r, cpu);
            }
            if stop {
                break;
            }
        }
        cached
    }

    /// The regrowth step of a slab population, a slab at a time: take room for up to `max`
    /// objects (`max >= 1`) in the next partial slab of cache `c`, each cached unused (on the
    /// LRU) unless `rng.chance(in_use)` says in use (always in use in an unreclaimable cache),
    /// the in-use ones held by the live holder `h`. Returns (objects taken, of them cached), or
    /// `None` when no slab has room.
    ///
    /// The same draws and the same state as one `slab_take_room` and then one `slab_to_lru`
    /// or push on the holder's `kobjs` per object, while they stay on that slab: all of them
    /// have the same reference, so only the counts matter.
    pub fn slab_fill_partial(
        &mut self,
        h: u32,
        c: u16,
        max: u32,
        in_use: f64,
        rng: &mut crate::sim::rng::Rng,
    ) -> Option<(u32, u32)> {
        let (s, m) = self.slab_take_room_n(c, max)?;
        let lru = if self.caches[c as usize].spec.reclaimable {
            (0..m).filter(|_| !rng.chance(in_use)).count() as u32
        } else {
            0
        };
        self.slab_to_lru_n(c, s, lru);
        self.holders[h as usize]
            .kobjs
            .extend(std::iter::repeat_n(sref(c, s), (m - lru) as usize));
        Some((m, lru))
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
                // start loading the slab of an object a few places behind this one (the
                // shrinker frees oldest first, so it is popped a few steps from now)
                let cache = &self.caches[c];
                if let Some(&ra) = cache.lru_q.get(SHRINK_AHEAD) {
                    prefetch(&cache.slots[unref(ra).1 as usize]);
                }
                if self.slab_shrink_one(c as u16, cpu) {
                    freed += 1;
                }
            }
        }
        freed
    }

    /// Shrink objects living in slabs inside `[lo, hi)` (spb's targeted shrinking): scan at
    /// most `scan` objects from the oldest of each reclaimable cache; those in the range are
    /// freed (oldest first, as the shrinker would), the others go to the young end in their
    /// order.
    ///
    /// Done as one classification pass over the scanned prefix of the queue (4 bytes of
    /// `slot_pfn` per object, loaded ahead, each loaded once), then one move of the prefix,
    /// then the frees in order: the same frees in the same order and the same final queue as
    /// scanning object by object with a pop and a push each (the frees never touch the
    /// queue), at a fraction of the cost when most scanned objects lie outside the range.
    pub fn shrink_range(&mut self, lo: Pfn, hi: Pfn, mut scan: u64, cpu: u16) -> u64 {
        /// How far ahead the classification pass starts loading an object's slab pfn, and the
        /// frees an object's slab.
        const AHEAD: usize = 16;
        let mut freed = 0;
        let mut hits: Vec<SlabRef> = Vec::new();
        let mut kept: Vec<SlabRef> = Vec::new();
        // `lo <= p < hi` as one compare (an empty range matches nothing)
        let width = hi.saturating_sub(lo);
        for c in 0..self.caches.len() {
            if !self.caches[c].spec.reclaimable {
                continue;
            }
            let cache = &self.caches[c];
            let len = cache.lru_q.len();
            let m = (len as u64).min(scan) as usize;
            scan -= m as u64;
            self.st.slabs_scanned += m as u64;
            if m == 0 {
                continue;
            }
            // 1. classify the scanned prefix into the hits and the objects that stay, both
            //    in order: each reference is written to both buffers and only one of the two
            //    ends advances, so the pass has no branch on the outcome (a third of the
            //    scanned objects are hits, at random: a branch on it mispredicts often)
            hits.clear();
            kept.clear();
            hits.resize(m, 0);
            kept.resize(m, 0);
            let (nh, nk) = {
                let (a, b) = cache.lru_q.as_slices();
                let (a, b) = if m <= a.len() {
                    (&a[..m], &b[..0])
                } else {
                    (a, &b[..m - a.len()])
                };
                let pfns = &cache.slot_pfn;
                let (mut nh, mut nk) = (0usize, 0usize);
                for (i, &r) in a.iter().chain(b.iter()).enumerate() {
                    let ahead = i + AHEAD;
                    let ra = if ahead < a.len() {
                        a[ahead]
                    } else if ahead - a.len() < b.len() {
                        b[ahead - a.len()]
                    } else {
                        r
                    };
                    prefetch(&pfns[unref(ra).1 as usize]);
                    let s = unref(r).1 as usize;
                    let p = pfns[s] as Pfn;
                    debug_assert_eq!(p, self.objs[cache.slots[s].id as usize].pfn as Pfn);
                    let hit = (p.wrapping_sub(lo) < width) as usize;
                    hits[nh] = r;
                    kept[nk] = r;
                    nh += hit;
                    nk += 1 - hit;
                }
                (nh, nk)
            };
            hits.truncate(nh);
            kept.truncate(nk);
            // 2. the queue: the unscanned rest, then the scanned objects that stay
            let cache = &mut self.caches[c];
            if hits.is_empty() {
                cache.lru_q.rotate_left(m);
                continue;
            }
            cache.lru_q.drain(..m);
            cache.lru_q.extend(kept.iter().copied());
            // 3. the frees, oldest first (slab_shrink_one without its queue pop)
            for &r in hits.iter().take(AHEAD) {
                prefetch(&self.caches[c].slots[unref(r).1 as usize]);
            }
            for (j, &r) in hits.iter().enumerate() {
                // the slab of a hit a few frees from now (a load per free: all at once, the
                // later ones would wait for the core's miss slots)
                if let Some(&ra) = hits.get(j + AHEAD) {
                    prefetch(&self.caches[c].slots[unref(ra).1 as usize]);
                }
                let s = unref(r).1;
                let before = self.caches[c].freeable(s);
                self.caches[c].slots[s as usize].lru -= 1;
                self.slab_track(c, s, before);
                self.slab_put(r, cpu);
                self.st.slab_objects_shrunk += 1;
                freed += 1;
            }
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
        // and that is what a reclaim without swap could free of slab (the bound `contig_fit`
        // counts on): slab A's page, not slab B's
        assert_eq!(spb_alloc::Env::reclaimable_without_swap(&w), 1);
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

    /// A world with one population (holder) of `c` objects spread over many slabs at
    /// scattered pfns, some in use (the holder's `kobjs`), some unused on the cache's LRU; the
    /// same for the same `seed`.
    fn populated(c: u16, seed: u64) -> (World, u32) {
        use super::super::HKind;
        let mut w = world();
        let h = w.new_holder(HKind::Pool, 0, 0);
        let mut rng = crate::sim::rng::Rng::stream(seed, "populate");
        let cap = w.caches[c as usize].spec.objs(0) as u64;
        for k in 0..400u64 {
            // pfns spread over both zones, not sorted
            let pfn = (k * 7919 + rng.below(64)) % (3 << 20) + 4096;
            let first = new_slab(&mut w, c, pfn, 0);
            let mut refs = vec![first];
            for _ in 1..1 + rng.below(cap) {
                match w.slab_take_room(c) {
                    Some(r) => refs.push(r),
                    None => break,
                }
            }
            for r in refs {
                if w.caches[c as usize].spec.reclaimable && rng.chance(0.4) {
                    w.slab_to_lru(r);
                } else {
                    w.holders[h as usize].kobjs.push(r);
                }
            }
        }
        (w, h)
    }

    /// Everything the slab operations change, for comparing two worlds.
    fn slab_state(w: &World, c: u16, h: u32) -> impl PartialEq + std::fmt::Debug {
        let cache = &w.caches[c as usize];
        (
            w.holders[h as usize].kobjs.clone(),
            cache.lru_q.clone(),
            cache.slots.clone(),
            cache.partial.clone(),
            cache.free_slots.clone(),
            (cache.empty, cache.objects, cache.pages, cache.slabs_freed),
            w.pending.clone(),
            w.freeable_slab_zone,
            (w.st.slab_objects_shrunk, w.st.slabs_scanned),
        )
    }

    #[test]
    fn slab_churn_matches_one_at_a_time() {
        for (name, seed) in [("dentry", 1u64), ("dentry", 2), ("kmalloc-192", 3)] {
            let c = cache_id(name);
            let (mut a, h) = populated(c, seed);
            let (mut b, _) = populated(c, seed);
            let mut ra = crate::sim::rng::Rng::stream(seed, "churn");
            let mut rb = crate::sim::rng::Rng::stream(seed, "churn");
            let lru = a.caches[c as usize].lru_q.len() as u64;
            // several ticks, one of them asking for more than is there (stops early)
            for (k, cached) in [(37u64, lru / 2), (500, lru / 3), (100_000, lru)] {
                // the loop slab_churn replaces, step by step
                let mut ca = cached.min(a.caches[c as usize].lru_q.len() as u64);
                for _ in 0..k {
                    let used = a.holders[h as usize].kobjs.len() as u64;
                    if used + ca == 0 {
                        break;
                    }
                    if ra.below(used + ca) < used {
                        let i = ra.below(used) as usize;
                        let sid = a.holders[h as usize].kobjs.swap_remove(i);
                        a.slab_put(sid, 0);
                    } else if let Some(sid) = a.slab_from_lru(c) {
                        a.slab_put(sid, 0);
                        ca -= 1;
                    } else {
                        ca = 0;
                    }
                }
                let cb = cached.min(b.caches[c as usize].lru_q.len() as u64);
                let cb = b.slab_churn(h, c, k, cb, &mut rb, 0);
                assert_eq!(ca, cb, "{name} seed {seed} k {k}: cached");
                assert_eq!(
                    slab_state(&a, c, h),
                    slab_state(&b, c, h),
                    "{name} seed {seed} k {k}"
                );
                assert_eq!(ra.u64(), rb.u64(), "same number of draws");
            }
            assert!(!a.pending.is_empty(), "the test frees slab pages");
        }
    }

    #[test]
    fn slab_fill_partial_matches_one_at_a_time() {
        for (name, seed) in [("dentry", 1u64), ("dentry", 2), ("kmalloc-192", 3)] {
            let c = cache_id(name);
            let (mut a, h) = populated(c, seed);
            let (mut b, _) = populated(c, seed);
            // scattered room in many partial slabs, as after a churn step or a shrink
            let lru = a.caches[c as usize].lru_q.len() as u64;
            for w in [&mut a, &mut b] {
                let mut r0 = crate::sim::rng::Rng::stream(seed, "churn");
                w.slab_churn(h, c, 900, lru / 2, &mut r0, 0);
            }
            let mut ra = crate::sim::rng::Rng::stream(seed, "grow");
            let mut rb = crate::sim::rng::Rng::stream(seed, "grow");
            let reclaimable = a.caches[c as usize].spec.reclaimable;
            for want in [1u64, 7, 50, 2_000] {
                // the loop slab_fill_partial replaces, object by object
                let (mut na, mut ca) = (0u64, 0u64);
                while na < want {
                    let Some(r) = a.slab_take_room(c) else { break };
                    na += 1;
                    if reclaimable && !ra.chance(0.3) {
                        a.slab_to_lru(r);
                        ca += 1;
                    } else {
                        a.holders[h as usize].kobjs.push(r);
                    }
                }
                let (mut nb, mut cb) = (0u64, 0u64);
                while nb < want {
                    let max = (want - nb) as u32;
                    let Some((m, l)) = b.slab_fill_partial(h, c, max, 0.3, &mut rb) else {
                        break;
                    };
                    nb += m as u64;
                    cb += l as u64;
                }
                assert_eq!((na, ca), (nb, cb), "{name} seed {seed} want {want}");
                assert_eq!(slab_state(&a, c, h), slab_state(&b, c, h), "{name} {seed}");
                assert_eq!(ra.u64(), rb.u64(), "same number of draws");
            }
        }
    }

    #[test]
    fn shrink_range_matches_pop_push_scan() {
        let c = cache_id("dentry");
        for (seed, lo, hi, scan) in [
            (1u64, 0u64, 1u64 << 20, 700u64),
            (2, 1 << 20, 3 << 20, 5000),
            (3, 0, 0, 300),
            (4, 4096, 1 << 22, 1_000_000),
        ] {
            let (mut a, h) = populated(c, seed);
            let (mut b, _) = populated(c, seed);
            // b's queue in the same order but wrapped around its ring buffer, so the scanned
            // prefix spans both of its slices
            let q = &mut b.caches[c as usize].lru_q;
            let v: Vec<SlabRef> = q.drain(..).collect();
            let half = v.len() / 2;
            for &r in v[..half].iter().rev() {
                q.push_front(r);
            }
            q.extend(&v[half..]);
            assert!(half == 0 || !q.as_slices().1.is_empty(), "wrapped");
            // the object-by-object scan shrink_range replaces
            let mut left = scan;
            let mut fa = 0;
            for ci in 0..a.caches.len() {
                if !a.caches[ci].spec.reclaimable {
                    continue;
                }
                let len = a.caches[ci].lru_q.len();
                let mut i = 0;
                while i < len && left > 0 {
                    left -= 1;
                    i += 1;
                    let sid = a.caches[ci].lru_q.pop_front().unwrap();
                    let p = a.slab_pfn(sid);
                    if p >= lo && p < hi {
                        a.caches[ci].lru_q.push_front(sid);
                        a.slab_shrink_one(ci as u16, 0);
                        fa += 1;
                    } else {
                        a.caches[ci].lru_q.push_back(sid);
                    }
                }
                a.st.slabs_scanned += i as u64;
            }
            let fb = b.shrink_range(lo, hi, scan, 0);
            assert_eq!(fa, fb, "seed {seed}: freed");
            assert_eq!(slab_state(&a, c, h), slab_state(&b, c, h), "seed {seed}");
        }
    }
}
