//! Kernel consumers: slab populations, network flows, 1 GiB hugetlb requests.
//!
//! gfp shapes (6.18):
//! - slab pages: see [`crate::sim::slab::slab_attempts`];
//! - page-fragment refill (napi_alloc_frag / page_frag_cache): order 3 with
//!   `GFP_ATOMIC|__GFP_COMP|__GFP_NOWARN|__GFP_NORETRY|__GFP_NOMEMALLOC`, then order 0 with
//!   `GFP_ATOMIC`; a fragment page is freed when its last fragment is;
//! - large skb data (kmalloc_reserve beyond kmalloc-8k): `GFP_ATOMIC|__GFP_NOWARN|__GFP_COMP|
//!   __GFP_NOMEMALLOC` at order 1-2, the packet is dropped on failure;
//! - 1 GiB hugetlb (alloc_gigantic_folio): `alloc_contig_pages` with `GFP_HIGHUSER|__GFP_COMP|
//!   __GFP_RETRY_MAYFAIL|__GFP_NOWARN|__GFP_THISNODE`.

use spb_alloc::Gfp;

use super::{op, TICK_NS};
use crate::scenario::{Hugetlb, Net, SlabLoad, SlabModel};
use crate::sim::ctx::{Component, Ctx};
use crate::sim::queue::Ev;
use crate::sim::slab::{cache_id, kmalloc_cache, NONE};
use crate::sim::world::slab::pages::{binomial_small, PagePop};
use crate::sim::world::slab::unref;
use crate::sim::world::{kind, HKind};

pub const GFP_FRAG_HI: Gfp = Gfp::ATOMIC
    .with(Gfp::COMP)
    .with(Gfp::NOWARN)
    .with(Gfp::NORETRY)
    .with(Gfp::NOMEMALLOC);
pub const GFP_FRAG_LO: Gfp = Gfp::ATOMIC;
pub const GFP_SKB_LARGE: Gfp = Gfp::ATOMIC
    .with(Gfp::NOWARN)
    .with(Gfp::COMP)
    .with(Gfp::NOMEMALLOC);
pub const GFP_GIGANTIC: Gfp = Gfp::HIGHUSER
    .with(Gfp::COMP)
    .with(Gfp::RETRY_MAYFAIL)
    .with(Gfp::NOWARN)
    .with(Gfp::THISNODE);
/// PAGE_FRAG_CACHE_MAX_ORDER (32 KiB).
pub const FRAG_ORDER: u8 = 3;
/// Slab population tick.
pub const SLAB_TICK_NS: u64 = 100_000_000;

/// Run-time state of a slab population.
pub struct SlabRt {
    pub cfg: SlabLoad,
    pub cache: u16,
    pub holder: u32,
    pub start_objs: f64,
    pub end_objs: f64,
    /// Objects of ours believed to be on the cache's LRU.
    pub cached: u64,
    /// In the aggregated slab model (`SlabModel::Pages`): our in-use objects as counts per
    /// slab page (the holder's `kobjs` stays empty); `None` in the per-object model.
    pub pop: Option<PagePop>,
}

impl SlabRt {
    pub fn new(cx: &Ctx, p: &SlabLoad) -> SlabRt {
        let c = cache_id(&p.cache);
        let sz = crate::sim::slab::CACHES[c as usize].obj_size as f64;
        let s = p.size.bytes(cx.ram) as f64 / sz;
        let e = p.grow_to.map(|g| g.bytes(cx.ram) as f64 / sz).unwrap_or(s);
        SlabRt {
            cfg: p.clone(),
            cache: c,
            holder: NONE,
            start_objs: s,
            end_objs: e,
            cached: 0,
            pop: (cx.sc.slab_model == SlabModel::Pages).then(PagePop::new),
        }
    }
}

/// One flow.
#[derive(Clone, Copy, Debug)]
pub struct Flow {
    pub cpu: u16,
    pub queued: u64,
}

/// Run-time state of a network component.
pub struct NetRt {
    pub cfg: Net,
    pub flows: Vec<Flow>,
    /// Per-CPU page-fragment cache: (page object, bytes used).
    pub frag: Vec<(u32, u32)>,
    pub skb_head: u16,
    pub burst_ns: u64,
    pub latency_ns: u64,
    pub size: u32,
    pub rcvbuf: u64,
}

impl NetRt {
    pub fn new(cx: &Ctx, p: &Net) -> NetRt {
        let burst_ns = if p.rate > 0.0 {
            (p.burst as f64 / p.rate * 1e9) as u64
        } else {
            u64::MAX / 4
        };
        NetRt {
            cfg: p.clone(),
            flows: Vec::new(),
            frag: vec![(NONE, 0); cx.cpus as usize],
            skb_head: cache_id("skbuff_head_cache"),
            burst_ns: burst_ns.max(1000),
            latency_ns: p.latency.ns(cx.sc.duration_ns).max(1000),
            size: p.size.bytes(cx.ram).clamp(1, 1 << 20) as u32,
            rcvbuf: p.rcvbuf.bytes(cx.ram),
        }
    }
}

/// Run-time state of a hugetlb component.
pub struct HugetlbRt {
    pub cfg: Hugetlb,
    pub at: Vec<u64>,
    pub every: Option<u64>,
    pub hold_ns: u64,
}

impl HugetlbRt {
    pub fn new(cx: &Ctx, p: &Hugetlb) -> HugetlbRt {
        let run = cx.sc.duration_ns;
        HugetlbRt {
            cfg: p.clone(),
            at: p.at.iter().map(|d| d.ns(run)).collect(),
            every: p.every.map(|d| d.ns(run).max(TICK_NS)),
            hold_ns: p.hold.ns(run),
        }
    }
}

// ----- slab populations -----

impl Component for SlabRt {
    /// The population's pool holder, its first tick, and the next.
    fn start(&mut self, cx: &mut Ctx) {
        let h = cx.w.new_holder(HKind::Pool, cx.comp, 0);
        self.holder = h;
        self.slab_tick(cx);
        cx.at(cx.now + SLAB_TICK_NS, op::TICK, 0, 0);
    }

    fn handle(&mut self, cx: &mut Ctx, ev: Ev) {
        if ev.op == op::TICK {
            if cx.now >= cx.stop {
                return;
            }
            self.slab_tick(cx);
            cx.at(cx.now + SLAB_TICK_NS, op::TICK, 0, 0);
        }
    }
}

impl SlabRt {
    fn slab_tick(&mut self, cx: &mut Ctx) {
        let (c, h, s, e, churn, in_use, cached) = {
            let rt = &*self;
            (
                rt.cache,
                rt.holder,
                rt.start_objs,
                rt.end_objs,
                rt.cfg.churn,
                rt.cfg.in_use,
                rt.cached,
            )
        };
        let gen = cx.w.holders[h as usize].gen;
        let (t0, t1) = (cx.start, cx.stop.min(cx.end));
        let frac = if t1 > t0 {
            ((cx.now - t0.min(cx.now)) as f64 / (t1 - t0) as f64).min(1.0)
        } else {
            1.0
        };
        let want = s + (e - s) * frac;
        let cpu = cx.rng.below(cx.cpus as u64) as u16;
        let reclaimable = cx.w.caches[c as usize].spec.reclaimable;
        let lru_len = cx.w.caches[c as usize].lru_q.len() as u64;
        let cached = cached.min(lru_len);
        if self.pop.is_some() {
            self.slab_tick_pages(cx, want, cached, cpu);
            return;
        }
        let used = cx.w.holders[h as usize].kobjs.len() as u64;
        let have = used + cached;
        // churn: objects freed (unlink, close, kfree) and replaced
        let k = cx
            .rng
            .round(churn * have as f64 * SLAB_TICK_NS as f64 / 1e9);
        let mut cached = cx.w.slab_churn(h, c, k, cached, cx.rng, cpu);
        // grow back to the target
        let have = cx.w.holders[h as usize].kobjs.len() as u64 + cached;
        let add = (want as u64).saturating_sub(have);
        let mut added = 0u64;
        while added < add {
            // the objects that fit in the next partial slab, at once: the same as one
            // `kobj_alloc` each (they take room in that slab until it is full, and no page
            // is allocated, so the holder cannot die meanwhile), with the same draws
            if cx.w.alive(h, gen) {
                let max = (add - added).min(u32::MAX as u64) as u32;
                if let Some((m, lru)) = cx.w.slab_fill_partial(h, c, max, in_use, cx.rng) {
                    added += m as u64;
                    cached += lru as u64;
                    continue;
                }
            }
            let Some(sid) = cx.kobj_alloc(c, crate::sim::slab::CACHES[c as usize].gfp, cpu) else {
                break;
            };
            added += 1;
            if reclaimable && !cx.rng.chance(in_use) {
                cx.w.slab_to_lru(sid);
                cached += 1;
            } else if cx.w.alive(h, gen) {
                cx.w.holders[h as usize].kobjs.push(sid);
            } else {
                cx.w.slab_put(sid, cpu);
            }
        }
        self.cached = cached;
    }

    /// [`Self::slab_tick`] in the aggregated model: the same churn and regrowth, drawn page
    /// by page (`sim::world::slab::pages`). `cached` is already capped by the LRU queue.
    fn slab_tick_pages(&mut self, cx: &mut Ctx, want: f64, cached: u64, cpu: u16) {
        let (c, h, churn, in_use) = (self.cache, self.holder, self.cfg.churn, self.cfg.in_use);
        let gen = cx.w.holders[h as usize].gen;
        let reclaimable = cx.w.caches[c as usize].spec.reclaimable;
        let mut pop = self.pop.take().expect("pages model");
        let have = pop.total() + cached;
        let k = cx
            .rng
            .round(churn * have as f64 * SLAB_TICK_NS as f64 / 1e9);
        let mut cached = cx.w.slab_churn_pages(&mut pop, c, k, cached, cx.rng, cpu);
        // grow back to the target, a slab at a time: the objects taken from one slab split
        // between in use and cached as they would one by one (each in use with `in_use`)
        let have = pop.total() + cached;
        let mut left = (want as u64).saturating_sub(have);
        let alive = cx.w.alive(h, gen);
        while left > 0 {
            let (s, m) = match cx.w.slab_take_room_n(c, left.min(u32::MAX as u64) as u32) {
                Some(x) => x,
                None => {
                    let Some(r) = cx.kobj_alloc(c, crate::sim::slab::CACHES[c as usize].gfp, cpu)
                    else {
                        break;
                    };
                    (unref(r).1, 1)
                }
            };
            left -= m as u64;
            let used = if reclaimable {
                binomial_small(cx.rng, m, in_use)
            } else {
                m
            };
            cx.w.slab_to_lru_n(c, s, m - used);
            cached += (m - used) as u64;
            if alive {
                pop.add(s, used);
            } else {
                cx.w.slab_put_n(c as usize, s, used, cpu);
            }
        }
        self.pop = Some(pop);
        self.cached = cached;
    }
}

// ----- network -----

impl Component for NetRt {
    /// The flows, each on a random CPU, start within one burst period.
    fn start(&mut self, cx: &mut Ctx) {
        let n = self.cfg.flows;
        let b = self.burst_ns;
        for i in 0..n {
            let cpu = cx.rng.below(cx.cpus as u64) as u16;
            self.flows.push(Flow { cpu, queued: 0 });
            let d = cx.rng.below(b);
            cx.at(cx.now + d, op::FLOW, i, 0);
        }
    }

    fn handle(&mut self, cx: &mut Ctx, ev: Ev) {
        match ev.op {
            op::FLOW => {
                if !cx.active() {
                    return;
                }
                self.net_burst(cx, ev.a as usize);
                let b = self.burst_ns;
                let d = cx.rng.exp_ns(b);
                cx.at(cx.now + d, op::FLOW, ev.a, 0);
            }
            op::PKT_FREE if cx.w.alive(ev.a, ev.gen) => {
                self.free_packets(cx, ev.a);
            }
            _ => {}
        }
    }
}

impl NetRt {
    /// Take one reference on a fragment of `size` bytes from `cpu`'s page-fragment cache.
    fn frag_alloc(&mut self, cx: &mut Ctx, cpu: u16, size: u32) -> Option<u32> {
        let (cur, used) = self.frag[cpu as usize];
        if cur != NONE {
            let cap = 4096u32 << cx.w.objs[cur as usize].order;
            if used + size <= cap {
                self.frag[cpu as usize].1 += size;
                cx.w.objs[cur as usize].slot += 1;
                return Some(cur);
            }
            // drop the cache's reference on the old page
            Self::frag_put(cx, cur, cpu);
            self.frag[cpu as usize] = (NONE, 0);
        }
        let order = FRAG_ORDER.min(cx.geo.max_order);
        let id = match cx.alloc_for(NONE, 0, order, GFP_FRAG_HI, cpu, kind::FRAG, 0) {
            Some(id) => id,
            None => {
                // the refused high-order refill, linked to its order-0 fallback
                let link = (order > 0).then(|| {
                    cx.st
                        .bill
                        .optional_failed(crate::cost::OptionalKind::SkbFragRefill)
                });
                let r = cx.alloc_for(NONE, 0, 0, GFP_FRAG_LO, cpu, kind::FRAG, 0);
                if let Some(l) = link {
                    cx.st.bill.fallback_done(l, r.is_some());
                }
                r?
            }
        };
        let cap = 4096u32 << cx.w.objs[id as usize].order;
        if size > cap {
            // a fragment larger than an order-0 fallback page: give up on this packet
            cx.w.objs[id as usize].slot = 1;
            self.frag[cpu as usize] = (id, cap);
            return None;
        }
        // one reference for the cache, one for the fragment
        cx.w.objs[id as usize].slot = 2;
        self.frag[cpu as usize] = (id, size);
        Some(id)
    }

    fn frag_put(cx: &mut Ctx, id: u32, cpu: u16) {
        let o = &mut cx.w.objs[id as usize];
        o.slot -= 1;
        if o.slot == 0 {
            cx.w.free_loose(id, cpu);
        }
    }

    /// One burst of packets of a flow.
    fn net_burst(&mut self, cx: &mut Ctx, fi: usize) {
        let (flow, burst, size, rcvbuf, frag, lat, head) = {
            let rt = &*self;
            (
                rt.flows[fi],
                rt.cfg.burst,
                rt.size,
                rt.rcvbuf,
                rt.cfg.frag,
                rt.latency_ns,
                rt.skb_head,
            )
        };
        let cpu = flow.cpu;
        if flow.queued >= rcvbuf {
            cx.st.packets_dropped += burst as u64;
            return;
        }
        let h = cx.w.new_holder(HKind::Packets, cx.comp, cpu);
        let gen = cx.w.holders[h as usize].gen;
        cx.w.holders[h as usize].group = fi as u32;
        let mut bytes = 0u64;
        for _ in 0..burst {
            let sz = (cx.rng.lognormal(size as f64, 0.8) as u32).clamp(64, 65536);
            cx.st.packets += 1;
            if !cx.kobj_for(h, gen, head, Gfp::ATOMIC, cpu) {
                cx.st.packets_dropped += 1;
                continue;
            }
            let ok = if cx.rng.chance(frag) && sz <= 32768 {
                match self.frag_alloc(cx, cpu, sz) {
                    Some(fid) => {
                        cx.w.holders[h as usize].refs.push(fid);
                        true
                    }
                    None => false,
                }
            } else if let Some(c) = kmalloc_cache(sz + 320) {
                cx.kobj_for(h, gen, c, Gfp::ATOMIC, cpu)
            } else {
                let pages = (sz as u64 + 320).div_ceil(4096);
                let order = (64 - (pages - 1).leading_zeros()) as u8;
                cx.alloc_for(
                    h,
                    gen,
                    order.min(cx.geo.max_order),
                    GFP_SKB_LARGE,
                    cpu,
                    kind::NETDATA,
                    crate::sim::world::flag::AUX,
                )
                .is_some()
            };
            if ok {
                bytes += sz as u64;
            } else {
                cx.st.packets_dropped += 1;
            }
        }
        if !cx.w.alive(h, gen) {
            return;
        }
        cx.w.holders[h as usize].aux_count = bytes.min(u32::MAX as u64) as u32;
        self.flows[fi].queued += bytes;
        let d = cx.rng.exp_ns(lat);
        cx.at(cx.now + d, op::PKT_FREE, h, gen);
    }

    /// The receiver consumed a batch: free heads, data and fragment references.
    fn free_packets(&mut self, cx: &mut Ctx, h: u32) {
        let (cpu, fi, bytes) = {
            let hd = &cx.w.holders[h as usize];
            (hd.cpu, hd.group as usize, hd.aux_count as u64)
        };
        let refs = std::mem::take(&mut cx.w.holders[h as usize].refs);
        for &f in &refs {
            Self::frag_put(cx, f, cpu);
        }
        let mut refs = refs;
        refs.clear();
        cx.w.holders[h as usize].refs = refs;
        cx.w.free_holder(h, cpu);
        let rt = &mut *self;
        rt.flows[fi].queued = rt.flows[fi].queued.saturating_sub(bytes);
    }
}

// ----- hugetlb -----

impl Component for HugetlbRt {
    /// The requests at fixed times, and the periodic ones.
    fn start(&mut self, cx: &mut Ctx) {
        for &t in &self.at {
            cx.at(t.max(cx.now), op::HTLB, 0, 0);
        }
        if self.every.is_some() {
            cx.at(cx.now, op::TICK, 0, 0);
        }
    }

    fn handle(&mut self, cx: &mut Ctx, ev: Ev) {
        match ev.op {
            op::TICK => {
                if !cx.active() {
                    return;
                }
                self.hugetlb_request(cx);
                let e = self.every.unwrap();
                cx.at(cx.now + e, op::TICK, 0, 0);
            }
            op::HTLB => self.hugetlb_request(cx),
            op::HTLB_FREE if cx.w.alive(ev.a, ev.gen) => {
                let cpu = cx.w.holders[ev.a as usize].cpu;
                cx.w.free_holder(ev.a, cpu);
            }
            _ => {}
        }
    }
}

impl HugetlbRt {
    /// `echo N > nr_hugepages` for 1 GiB pages, held for a while.
    fn hugetlb_request(&mut self, cx: &mut Ctx) {
        let (n, hold) = {
            let rt = &*self;
            (rt.cfg.count, rt.hold_ns)
        };
        let h = cx.w.new_holder(HKind::Hugetlb, cx.comp, 0);
        let gen = cx.w.holders[h as usize].gen;
        for _ in 0..n {
            cx.st.htlb_attempts += 1;
            match cx.alloc_contig(cx.geo.spb_order, GFP_GIGANTIC, kind::HUGETLB) {
                Some(id) => {
                    cx.st.htlb_success += 1;
                    cx.w.attach(id, h, 0);
                }
                None => break,
            }
        }
        cx.at(cx.now + hold, op::HTLB_FREE, h, gen);
    }
}
