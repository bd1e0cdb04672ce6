//! The aggregated slab model (`slab_model = "pages"`, `--slab-model pages`): a slab
//! population's in-use objects are kept as counts per slab page ([`PagePop`]) instead of one
//! reference per object (the holder's `kobjs`), and a churn step frees objects page by page.
//!
//! What stays the same as the per-object model ([`World::slab_churn`]): each of the `k` frees
//! of a step takes a uniformly random object of the population (in use, or cached on the
//! cache's LRU, most recent first); so the number of frees landing on a page follows the same
//! (multivariate hypergeometric) law, and the same pages become empty (freed beyond
//! `min_partial`) or stay pinned by one object. The slab state (`SlabSlot`, partial list, LRU
//! queue, freeable counters) is the one of `sim::world::slab`, changed by the same rules.
//!
//! Two ways to draw, chosen by cost only (both draw from the same law):
//! - **sparse** (few frees for the population's pages): the per-object model's sequence of
//!   draws, one at a time, with the in-use object picked through [`PagePop::pick`] (a page
//!   chosen with probability proportional to its count: a uniform object) — same law and same
//!   order of effects as the per-object model, without a per-object array;
//! - **dense** (many frees per page): the number of in-use frees is split from the cached ones
//!   (hypergeometric), then the in-use frees are spread page by page in one pass (each page's
//!   count conditional on the frees and objects left: binomial with the remaining fraction,
//!   which is the hypergeometric law up to a finite-population term of order
//!   objects-per-page / population), the cached frees are popped from the LRU queue in runs of
//!   one slab, and each page's frees are applied at once ([`World::slab_put_n`]) in the order
//!   in which the per-object sequence would first touch it (a page freed `x` times is first
//!   touched at the minimum of `x` uniform positions). Cost O(pages of the population + runs),
//!   not O(objects).
//!
//! Invariants of [`PagePop`]: `total` = sum of the counts = the population's in-use objects; a
//! slot with count `c > 0` is in `by_count[c]` at index `at[slot].1`; a counted slot is a live
//! slab whose `inuse` is at least its count (its objects keep it alive).

use super::{sref, unref, World, NONE};
use crate::sim::rng::Rng;

/// The in-use objects of one slab population, as counts per slab slot of its cache.
#[derive(Clone, Debug, Default)]
pub struct PagePop {
    /// `by_count[c]`: the slots holding exactly `c` of the population's objects (`c >= 1`).
    by_count: Vec<Vec<u32>>,
    /// Per slot of the cache: (count, index in `by_count[count]`); count 0 = not counted.
    at: Vec<(u32, u32)>,
    total: u64,
    pages: u64,
}

impl PagePop {
    pub fn new() -> PagePop {
        PagePop::default()
    }
    /// The population's in-use objects.
    #[inline]
    pub fn total(&self) -> u64 {
        self.total
    }
    /// Slab pages holding at least one of them.
    #[inline]
    pub fn pages(&self) -> u64 {
        self.pages
    }
    /// The population's objects in slot `s`.
    #[inline]
    pub fn count(&self, s: u32) -> u32 {
        self.at.get(s as usize).map_or(0, |a| a.0)
    }
    /// Every counted (slot, count), in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.by_count
            .iter()
            .enumerate()
            .flat_map(|(c, v)| v.iter().map(move |&s| (s, c as u32)))
    }

    /// Set slot `s`'s count to `n` (moving it between the count lists).
    fn set(&mut self, s: u32, n: u32) {
        let si = s as usize;
        if si >= self.at.len() {
            self.at.resize(si + 1, (0, 0));
        }
        let (old, idx) = self.at[si];
        if old == n {
            return;
        }
        if old > 0 {
            let v = &mut self.by_count[old as usize];
            let last = v.pop().expect("counted slot is listed");
            if last != s {
                v[idx as usize] = last;
                self.at[last as usize].1 = idx;
            }
            self.pages -= 1;
        }
        if n > 0 {
            let ni = n as usize;
            if ni >= self.by_count.len() {
                self.by_count.resize_with(ni + 1, Vec::new);
            }
            self.at[si] = (n, self.by_count[ni].len() as u32);
            self.by_count[ni].push(s);
            self.pages += 1;
        } else {
            self.at[si] = (0, 0);
        }
        self.total = self.total + n as u64 - old as u64;
    }

    /// `n` more objects in slot `s`.
    #[inline]
    pub fn add(&mut self, s: u32, n: u32) {
        if n > 0 {
            self.set(s, self.count(s) + n);
        }
    }

    /// `n` fewer objects in slot `s` (at most its count).
    #[inline]
    pub fn sub(&mut self, s: u32, n: u32) {
        let c = self.count(s);
        debug_assert!(n <= c, "slot {s}: {n} frees of {c} objects");
        if n > 0 {
            self.set(s, c - n);
        }
    }

    /// The slot of a uniformly random object of the population (`total > 0`): a count `c` is
    /// chosen with probability `c * |by_count[c]| / total`, then a slot of that count
    /// uniformly — together, each slot with probability `count / total`.
    pub fn pick(&self, rng: &mut Rng) -> u32 {
        debug_assert!(self.total > 0);
        let mut r = rng.below(self.total);
        for (c, v) in self.by_count.iter().enumerate().skip(1) {
            let w = c as u64 * v.len() as u64;
            if r < w {
                return v[(r / c as u64) as usize];
            }
            r -= w;
        }
        unreachable!("total is the sum of the counts")
    }
}

/// A binomial draw, Bin(n, p), by inversion (O(1 + n min(p, 1-p)) steps): for the small `n`
/// of one slab page.
pub fn binomial_small(rng: &mut Rng, n: u32, p: f64) -> u32 {
    if n == 0 || p <= 0.0 {
        return 0;
    }
    if p >= 1.0 {
        return n;
    }
    if p > 0.5 {
        return n - binomial_small(rng, n, 1.0 - p);
    }
    let q = 1.0 - p;
    let ratio = p / q;
    let mut f = q.powi(n as i32);
    let mut u = rng.f64();
    let mut x = 0u32;
    while u >= f && x < n {
        u -= f;
        f *= (n - x) as f64 / (x + 1) as f64 * ratio;
        x += 1;
    }
    x
}

/// How many of `n` draws without replacement from `total` objects hit the `good` ones
/// (hypergeometric). Exact (one draw at a time, no memory touched) up to
/// [`EXACT_SPLIT_DRAWS`] draws; beyond, the normal law with the same mean and variance
/// (finite-population term included), rounded and clamped to the possible range: the split of
/// a churn step's frees between in-use and cached objects, where `n` is thousands.
pub fn hypergeometric(rng: &mut Rng, total: u64, good: u64, n: u64) -> u64 {
    let n = n.min(total);
    let lo = n.saturating_sub(total - good);
    let hi = n.min(good);
    if lo == hi {
        return lo;
    }
    if n <= EXACT_SPLIT_DRAWS {
        let (mut t, mut g, mut x) = (total, good, 0);
        for _ in 0..n {
            if rng.below(t) < g {
                g -= 1;
                x += 1;
            }
            t -= 1;
        }
        return x;
    }
    let (t, g, m) = (total as f64, good as f64, n as f64);
    let p = g / t;
    let mean = m * p;
    let var = m * p * (1.0 - p) * (t - m) / (t - 1.0).max(1.0);
    let x = (mean + var.sqrt() * rng.normal()).round();
    (x.max(lo as f64) as u64).clamp(lo, hi)
}

/// Draws up to which [`hypergeometric`] is exact: beyond a few hundred draws the count's law
/// is within a fraction of a percent of the normal one (its skew falls as 1/sqrt(draws)),
/// while exact draws would cost one random number per object.
pub const EXACT_SPLIT_DRAWS: u64 = 256;

/// The dense way is taken when the population's pages are at most this many times its in-use
/// frees: the dense pass reads every page once, in order, and a sparse free is one random
/// access; a streamed read costs a fraction of a miss, so the pass pays off once there is
/// about one free for every few pages. A cost choice only: both ways draw from the same law.
pub const DENSE_PAGES_PER_FREE: u64 = 4;

/// One page's frees in a dense step, applied at once.
#[derive(Clone, Copy, Debug)]
struct Unit {
    /// Where the per-object sequence would first touch the page, in [0, 1).
    key: f64,
    slot: u32,
    n: u32,
    /// Cached objects (popped from the LRU queue) rather than in-use ones.
    lru: bool,
}

impl World {
    /// Free `n` in-use objects of slot `s` of cache `ci` at once: the same final state as `n`
    /// calls of `slab_put` on that slab in a row (only the last can empty it).
    pub fn slab_put_n(&mut self, ci: usize, s: u32, n: u32, cpu: u16) {
        if n == 0 {
            return;
        }
        if n > 1 {
            let before = self.caches[ci].freeable(s);
            let x = &mut self.caches[ci].slots[s as usize];
            debug_assert!(x.inuse >= n as u16 && x.id != NONE);
            x.inuse -= (n - 1) as u16;
            self.caches[ci].objects -= (n - 1) as u64;
            self.slab_track(ci, s, before);
        }
        self.slab_put(sref(ci as u16, s), cpu);
    }

    /// The churn step of a slab population in the aggregated model: `k` frees, each of a
    /// uniformly random object among the population's in-use objects (`pop`) and its
    /// `cached` unused ones (the most recently cached of the cache's LRU). Returns the new
    /// `cached`. See the module doc for the two ways of drawing.
    #[allow(clippy::too_many_arguments)]
    pub fn slab_churn_pages(
        &mut self,
        pop: &mut PagePop,
        c: u16,
        k: u64,
        cached: u64,
        rng: &mut Rng,
        cpu: u16,
    ) -> u64 {
        let ci = c as usize;
        let mut cached = cached.min(self.caches[ci].lru_q.len() as u64);
        let mut used = pop.total();
        let k = k.min(used + cached);
        if k == 0 {
            return cached;
        }
        let ku = hypergeometric(rng, used + cached, used, k);
        if ku.saturating_mul(DENSE_PAGES_PER_FREE) < pop.pages() {
            // sparse: the per-object sequence (the split above is redrawn one step at a time)
            for _ in 0..k {
                if rng.below(used + cached) < used {
                    let s = pop.pick(rng);
                    pop.sub(s, 1);
                    self.slab_put(sref(c, s), cpu);
                    used -= 1;
                } else {
                    let r = self.caches[ci].lru_q.pop_back().expect("cached <= queue");
                    let s = unref(r).1;
                    self.slab_lru_put_n(ci, s, 1, cpu);
                    cached -= 1;
                }
            }
            return cached;
        }
        let kc = k - ku;
        let mut units: Vec<Unit> = Vec::new();
        // in-use frees, page by page over a snapshot of the counts
        let snap: Vec<(u32, u32)> = pop.iter().collect();
        let (mut n_left, mut k_left) = (used, ku);
        for &(s, cnt) in &snap {
            if k_left == 0 {
                break;
            }
            let x = binomial_small(rng, cnt, k_left as f64 / n_left as f64).min(k_left as u32);
            n_left -= cnt as u64;
            k_left -= x as u64;
            if x > 0 {
                units.push(Unit {
                    key: first_touch(rng, x),
                    slot: s,
                    n: x,
                    lru: false,
                });
            }
        }
        for u in &units {
            pop.sub(u.slot, u.n);
        }
        // what the page-wise pass left over (its last pages drew fewer than the rest): one
        // uniform object at a time among those not yet chosen
        while k_left > 0 {
            let s = pop.pick(rng);
            pop.sub(s, 1);
            units.push(Unit {
                key: first_touch(rng, 1),
                slot: s,
                n: 1,
                lru: false,
            });
            k_left -= 1;
        }
        // cached frees: the most recent `kc` of the LRU queue, in runs of one slab; the j-th
        // cached free sits, on average, at (j + 1) / (kc + 1) of the step
        let mut j = 0u64;
        while j < kc {
            let r = self.caches[ci].lru_q.pop_back().expect("cached <= queue");
            let mut n = 1u32;
            while j + (n as u64) < kc && self.caches[ci].lru_q.back() == Some(&r) {
                self.caches[ci].lru_q.pop_back();
                n += 1;
            }
            units.push(Unit {
                key: (j + 1) as f64 / (kc + 1) as f64,
                slot: unref(r).1,
                n,
                lru: true,
            });
            j += n as u64;
        }
        cached -= kc;
        units.sort_by(|a, b| a.key.total_cmp(&b.key));
        for u in &units {
            if u.lru {
                self.slab_lru_put_n(ci, u.slot, u.n, cpu);
            } else {
                self.slab_put_n(ci, u.slot, u.n, cpu);
            }
        }
        cached
    }

    /// Free `n` cached objects of slot `s` (already popped from the LRU queue).
    fn slab_lru_put_n(&mut self, ci: usize, s: u32, n: u32, cpu: u16) {
        let before = self.caches[ci].freeable(s);
        self.caches[ci].slots[s as usize].lru -= n as u16;
        self.slab_track(ci, s, before);
        self.slab_put_n(ci, s, n, cpu);
    }
}

/// Where, in [0, 1), the first of `x` uniformly placed frees falls: the minimum of `x`
/// uniforms, `1 - U^(1/x)`.
fn first_touch(rng: &mut Rng, x: u32) -> f64 {
    let u = rng.f64();
    if x == 1 {
        u
    } else {
        1.0 - (1.0 - u).powf(1.0 / x as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::objects::kind;
    use super::super::super::{test_world, HKind};
    use super::*;
    use crate::sim::slab::cache_id;

    fn new_slab(w: &mut World, c: u16, pfn: u64) -> u32 {
        let id = w.new_obj();
        w.fill_obj(id, pfn, 0, kind::SLAB, NONE);
        unref(w.slab_new(c, id)).1
    }

    /// A world with one population of cache `c` over `nslabs` order-0 slabs, each filled to a
    /// random count, each object in use or (with `cached_frac`, if the cache is reclaimable) cached.
    /// The same slab state for the same `seed` in both models: the in-use objects are the
    /// holder's `kobjs` (returned holder) or the counts of the returned `PagePop`.
    fn build(
        seed: u64,
        c: u16,
        nslabs: u64,
        pages_model: bool,
        cached_frac: f64,
    ) -> (World, u32, PagePop, u64) {
        let mut w = test_world();
        let h = w.new_holder(HKind::Pool, 0, 0);
        let mut pop = PagePop::new();
        let mut rng = Rng::stream(seed, "build");
        let cap = w.caches[c as usize].spec.objs(0) as u64;
        let recl = w.caches[c as usize].spec.reclaimable;
        let mut cached = 0;
        for i in 0..nslabs {
            let s = new_slab(&mut w, c, 4096 + i * 8);
            let n = 1 + rng.below(cap);
            if n > 1 {
                let (s2, m) = w.slab_take_room_n(c, (n - 1) as u32).unwrap();
                assert_eq!((s2, m as u64), (s, n - 1));
            }
            for _ in 0..n {
                if recl && rng.chance(cached_frac) {
                    w.slab_to_lru_n(c, s, 1);
                    cached += 1;
                } else if pages_model {
                    pop.add(s, 1);
                } else {
                    w.holders[h as usize].kobjs.push(sref(c, s));
                }
            }
        }
        (w, h, pop, cached)
    }

    /// The world's slab state agrees with the population's counts.
    fn check(w: &World, c: u16, pop: &PagePop) {
        let cache = &w.caches[c as usize];
        let mut sum = 0u64;
        for (s, n) in pop.iter() {
            let x = cache.slots[s as usize];
            assert_ne!(x.id, NONE, "slot {s} counted but not live");
            assert!(
                n <= x.inuse as u32 && x.inuse <= x.cap,
                "slot {s}: {n} {x:?}"
            );
            assert_eq!(pop.count(s), n);
            sum += n as u64;
        }
        assert_eq!(sum, pop.total(), "sum of page counts = population");
        assert_eq!(pop.iter().count() as u64, pop.pages());
        let mut lru = vec![0u32; cache.slots.len()];
        for &r in &cache.lru_q {
            lru[unref(r).1 as usize] += 1;
        }
        let mut objects = 0u64;
        let mut freeable = [0u64; 4];
        for (s, x) in cache.slots.iter().enumerate() {
            if x.id == NONE {
                continue;
            }
            assert_eq!(x.lru as u32, lru[s], "slot {s}: lru count = queue entries");
            // only this population uses the cache: in use and not cached = ours
            assert_eq!(x.inuse as u32 - x.lru as u32, pop.count(s as u32));
            objects += x.inuse as u64;
            if cache.spec.reclaimable && x.inuse == x.lru {
                freeable[x.zone as usize] += 1;
            }
            assert_eq!(
                x.ppos != NONE,
                x.inuse < x.cap,
                "slot {s}: partial iff room"
            );
        }
        assert_eq!(objects, cache.objects);
        assert_eq!(freeable, w.freeable_slab_zone);
    }

    /// Grow the population by `add` objects as `SlabRt::slab_tick_pages` does (a slab at a
    /// time, new order-0 slabs at fresh pfns when none has room).
    fn grow(w: &mut World, c: u16, pop: &mut PagePop, add: u64, rng: &mut Rng, pfn: &mut u64) {
        let mut left = add;
        while left > 0 {
            let (s, m) = match w.slab_take_room_n(c, left as u32) {
                Some(x) => x,
                None => {
                    *pfn += 8;
                    (new_slab(w, c, *pfn), 1)
                }
            };
            left -= m as u64;
            let used = binomial_small(rng, m, 0.5);
            w.slab_to_lru_n(c, s, m - used);
            pop.add(s, used);
        }
    }

    #[test]
    fn churn_keeps_page_counts_consistent() {
        for cache in ["dentry", "kmalloc-192"] {
            let c = cache_id(cache);
            let (mut w, _, mut pop, mut cached) = build(3, c, 60, true, 0.5);
            check(&w, c, &pop);
            let mut rng = Rng::stream(5, "churn");
            let mut pfn = 1 << 16;
            let target = pop.total() + cached;
            for step in 0..200u64 {
                // sparse and dense steps, and now and then everything
                let have = pop.total() + cached;
                let k = match step % 4 {
                    0 => 2,
                    1 => have / 3,
                    2 => have / 20,
                    _ => have + 5,
                };
                let before = w.pending.len();
                cached = w.slab_churn_pages(&mut pop, c, k, cached, &mut rng, 0);
                assert_eq!(pop.total() + cached, have - k.min(have));
                check(&w, c, &pop);
                // every slab handed back was empty and is no longer live
                for &(p, o, _) in &w.pending[before..] {
                    assert_eq!(o, 0);
                    assert!(!w.caches[c as usize]
                        .slots
                        .iter()
                        .any(|x| x.id != NONE && w.objs[x.id as usize].pfn as u64 == p));
                }
                let add = target.saturating_sub(pop.total() + cached);
                grow(&mut w, c, &mut pop, add, &mut rng, &mut pfn);
                check(&w, c, &pop);
            }
        }
    }

    /// Frees applied a page at a time leave the same state (slabs, partial list, empty slabs
    /// kept, pages handed back, freeable counters) as the same frees one object at a time.
    #[test]
    fn page_frees_equal_object_frees() {
        for cache in ["dentry", "kmalloc-192"] {
            let c = cache_id(cache);
            let ci = c as usize;
            let (mut a, _, pop, _) = build(9, c, 50, true, 0.0);
            let (mut b, _, _, _) = build(9, c, 50, true, 0.0);
            let mut rng = Rng::stream(11, "frees");
            // a page order and a number of frees per page (every object of some pages)
            let mut plan: Vec<(u32, u32)> = pop
                .iter()
                .map(|(s, n)| {
                    (
                        s,
                        if rng.chance(0.5) {
                            n
                        } else {
                            rng.below(n as u64 + 1) as u32
                        },
                    )
                })
                .collect();
            let mut keyed: Vec<(u64, (u32, u32))> =
                plan.drain(..).map(|x| (rng.below(1 << 30), x)).collect();
            keyed.sort_unstable();
            plan.extend(keyed.into_iter().map(|(_, x)| x));
            for &(s, n) in &plan {
                a.slab_put_n(ci, s, n, 0);
                for _ in 0..n {
                    b.slab_put(sref(c, s), 0);
                }
            }
            assert!(
                !a.pending.is_empty(),
                "some pages were emptied and handed back"
            );
            assert_eq!(a.pending, b.pending);
            let (x, y) = (&a.caches[ci], &b.caches[ci]);
            assert_eq!(x.slots, y.slots);
            assert_eq!(x.partial, y.partial);
            assert_eq!((x.empty, x.objects, x.pages), (y.empty, y.objects, y.pages));
            assert_eq!(a.freeable_slab_zone, b.freeable_slab_zone);
            assert_eq!(
                (a.slab_reclaimable_pages, a.slab_unreclaimable_pages),
                (b.slab_reclaimable_pages, b.slab_unreclaimable_pages)
            );
        }
    }

    /// After one churn step of `k` frees on the same small population, the distribution of
    /// the slabs' occupancy (objects in use per slab), the pages handed back, the emptied
    /// slabs kept and the population left match between the per-object model and the page
    /// model, over many draws; for a sparse step and for dense ones.
    #[test]
    fn page_churn_matches_object_churn_in_law() {
        const TRIALS: u64 = 1500;
        for (cache, k) in [("dentry", 6u64), ("dentry", 250), ("kmalloc-192", 300)] {
            let c = cache_id(cache);
            let ci = c as usize;
            let cap = test_world().caches[ci].spec.objs(0) as usize;
            let mut hist = [vec![0f64; cap + 1], vec![0f64; cap + 1]];
            let mut scalars = [[0f64; 3]; 2];
            let mut sq = [[0f64; 3]; 2];
            for (m, pages_model) in [false, true].into_iter().enumerate() {
                for t in 0..TRIALS {
                    let (mut w, h, mut pop, cached) = build(21, c, 40, pages_model, 0.5);
                    let mut rng = Rng::stream(1000 + t, "trial");
                    let left = if pages_model {
                        let cached = w.slab_churn_pages(&mut pop, c, k, cached, &mut rng, 0);
                        pop.total() + cached
                    } else {
                        let cached = w.slab_churn(h, c, k, cached, &mut rng, 0);
                        w.holders[h as usize].kobjs.len() as u64 + cached
                    };
                    for x in &w.caches[ci].slots {
                        if x.id != NONE {
                            hist[m][x.inuse as usize] += 1.0;
                        }
                    }
                    let v = [
                        w.pending.len() as f64,
                        w.caches[ci].empty as f64,
                        left as f64,
                    ];
                    for i in 0..3 {
                        scalars[m][i] += v[i];
                        sq[m][i] += v[i] * v[i];
                    }
                }
            }
            let n = TRIALS as f64;
            for i in 0..3 {
                let (ma, mb) = (scalars[0][i] / n, scalars[1][i] / n);
                let va = (sq[0][i] / n - ma * ma).max(0.0);
                let vb = (sq[1][i] / n - mb * mb).max(0.0);
                // 5 standard errors of the difference of two means, plus a small floor
                let tol = 5.0 * ((va + vb) / n).sqrt() + 0.02;
                assert!(
                    (ma - mb).abs() <= tol,
                    "{cache} k={k}: measure {i}: objects {ma:.3} vs pages {mb:.3} (tol {tol:.3})"
                );
                // the spread agrees too (within 25 % or a small floor)
                assert!(
                    (va.sqrt() - vb.sqrt()).abs() <= 0.25 * va.sqrt().max(vb.sqrt()) + 0.1,
                    "{cache} k={k}: measure {i}: sd {:.3} vs {:.3}",
                    va.sqrt(),
                    vb.sqrt()
                );
            }
            let (ta, tb): (f64, f64) = (hist[0].iter().sum(), hist[1].iter().sum());
            for (o, (&ha, &hb)) in hist[0].iter().zip(&hist[1]).enumerate() {
                let (pa, pb) = (ha / ta, hb / tb);
                // per-trial slab counts are correlated: count a trial as one sample
                let tol = 5.0 * ((pa * (1.0 - pa) + pb * (1.0 - pb)) / n).sqrt() + 0.004;
                assert!(
                    (pa - pb).abs() <= tol,
                    "{cache} k={k}: slabs with {o} in use: objects {pa:.4} vs pages {pb:.4} (tol {tol:.4})"
                );
            }
        }
    }

    #[test]
    fn pick_is_uniform_over_objects() {
        let mut pop = PagePop::new();
        pop.add(0, 1);
        pop.add(1, 3);
        pop.add(2, 6);
        let mut rng = Rng::stream(1, "pick");
        let mut hits = [0u32; 3];
        for _ in 0..100_000 {
            hits[pop.pick(&mut rng) as usize] += 1;
        }
        for (s, want) in [(0, 0.1), (1, 0.3), (2, 0.6)] {
            let p = hits[s] as f64 / 100_000.0;
            assert!((p - want).abs() < 0.01, "slot {s}: {p}");
        }
        pop.sub(1, 3);
        assert_eq!((pop.total(), pop.pages(), pop.count(1)), (7, 2, 0));
    }

    #[test]
    fn samplers_have_the_right_moments() {
        let mut rng = Rng::stream(2, "moments");
        let n = 200_000;
        for (m, p) in [(21u32, 0.05), (64, 0.5), (8, 0.9)] {
            let (mut s, mut s2) = (0f64, 0f64);
            for _ in 0..n {
                let x = binomial_small(&mut rng, m, p) as f64;
                assert!(x <= m as f64);
                s += x;
                s2 += x * x;
            }
            let mean = s / n as f64;
            let var = s2 / n as f64 - mean * mean;
            let (em, ev) = (m as f64 * p, m as f64 * p * (1.0 - p));
            assert!(
                (mean - em).abs() < 0.02 * em.max(1.0),
                "Bin({m},{p}) mean {mean}"
            );
            assert!(
                (var - ev).abs() < 0.05 * ev.max(1.0),
                "Bin({m},{p}) var {var}"
            );
        }
        for (total, good, draws) in [(100u64, 30u64, 40u64), (100_000, 20_000, 5_000)] {
            let (mut s, mut s2) = (0f64, 0f64);
            let trials = 20_000;
            for _ in 0..trials {
                let x = hypergeometric(&mut rng, total, good, draws);
                assert!(x <= good.min(draws));
                s += x as f64;
                s2 += (x * x) as f64;
            }
            let mean = s / trials as f64;
            let var = s2 / trials as f64 - mean * mean;
            let (t, g, d) = (total as f64, good as f64, draws as f64);
            let em = d * g / t;
            let ev = d * (g / t) * (1.0 - g / t) * (t - d) / (t - 1.0);
            assert!((mean - em).abs() < 0.01 * em, "HG mean {mean} vs {em}");
            assert!((var - ev).abs() < 0.05 * ev, "HG var {var} vs {ev}");
        }
    }
}
