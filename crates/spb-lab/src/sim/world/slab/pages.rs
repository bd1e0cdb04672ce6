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

    /// Take room for up to `max` objects (`max >= 1`) in the next partial slab of cache `c`
    /// at once: the same as `m` calls of `slab_take_room` while they stay on that slab.
    /// Returns the slot and `m` (at least 1), or `None` when no slab has room.
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
        }
        self.slab_track(ci, s, before);
        Some((s, m))
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
