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

use super::{op, State, TICK_NS};
use crate::scenario::{Hugetlb, Net, SlabLoad};
use crate::sim::queue::Ev;
use crate::sim::slab::{cache_id, kmalloc_cache, NONE};
use crate::sim::world::{kind, HKind};
use crate::sim::Sim;

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
}

impl SlabRt {
    pub fn new(sim: &Sim, p: &SlabLoad) -> SlabRt {
        let c = cache_id(&p.cache);
        let sz = crate::sim::slab::CACHES[c as usize].obj_size as f64;
        let s = p.size.bytes(sim.ram) as f64 / sz;
        let e = p.grow_to.map(|g| g.bytes(sim.ram) as f64 / sz).unwrap_or(s);
        SlabRt {
            cfg: p.clone(),
            cache: c,
            holder: NONE,
            start_objs: s,
            end_objs: e,
            cached: 0,
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
    pub fn new(sim: &Sim, p: &Net) -> NetRt {
        let burst_ns = if p.rate > 0.0 {
            (p.burst as f64 / p.rate * 1e9) as u64
        } else {
            u64::MAX / 4
        };
        NetRt {
            cfg: p.clone(),
            flows: Vec::new(),
            frag: vec![(NONE, 0); sim.cpus as usize],
            skb_head: cache_id("skbuff_head_cache"),
            burst_ns: burst_ns.max(1000),
            latency_ns: p.latency.ns(sim.sc.duration_ns).max(1000),
            size: p.size.bytes(sim.ram).clamp(1, 1 << 20) as u32,
            rcvbuf: p.rcvbuf.bytes(sim.ram),
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
    pub fn new(sim: &Sim, p: &Hugetlb) -> HugetlbRt {
        let run = sim.sc.duration_ns;
        HugetlbRt {
            cfg: p.clone(),
            at: p.at.iter().map(|d| d.ns(run)).collect(),
            every: p.every.map(|d| d.ns(run).max(TICK_NS)),
            hold_ns: p.hold.ns(run),
        }
    }
}

impl Sim {
    // ----- slab populations -----

    fn slrt(&mut self, ci: usize) -> &mut SlabRt {
        match &mut self.comps[ci].st {
            State::Slab(p) => p,
            _ => unreachable!(),
        }
    }

    pub(crate) fn slab_event(&mut self, ci: usize, ev: Ev) {
        match ev.op {
            op::START => {
                let h = self.w.new_holder(HKind::Pool, ci as u16, 0);
                self.slrt(ci).holder = h;
                self.slab_tick(ci);
                self.q
                    .push(self.now + SLAB_TICK_NS, ci as u16, op::TICK, 0, 0);
            }
            op::TICK => {
                if self.now >= self.comps[ci].stop {
                    return;
                }
                self.slab_tick(ci);
                self.q
                    .push(self.now + SLAB_TICK_NS, ci as u16, op::TICK, 0, 0);
            }
            _ => {}
        }
    }

    fn slab_tick(&mut self, ci: usize) {
        let (c, h, s, e, churn, in_use, cached) = {
            let rt = self.slrt(ci);
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
        let gen = self.w.holders[h as usize].gen;
        let (t0, t1) = (self.comps[ci].start, self.comps[ci].stop.min(self.end));
        let frac = if t1 > t0 {
            ((self.now - t0.min(self.now)) as f64 / (t1 - t0) as f64).min(1.0)
        } else {
            1.0
        };
        let want = s + (e - s) * frac;
        let cpu = self.comps[ci].rng.below(self.cpus as u64) as u16;
        let reclaimable = self.w.caches[c as usize].spec.reclaimable;
        let lru_len = self.w.caches[c as usize].lru_q.len() as u64;
        let cached = cached.min(lru_len);
        let used = self.w.holders[h as usize].kobjs.len() as u64;
        let have = used + cached;
        // churn: objects freed (unlink, close, kfree) and replaced
        let k = self.comps[ci]
            .rng
            .round(churn * have as f64 * SLAB_TICK_NS as f64 / 1e9);
        let mut cached = cached;
        for _ in 0..k {
            let used = self.w.holders[h as usize].kobjs.len() as u64;
            if used + cached == 0 {
                break;
            }
            if self.comps[ci].rng.below(used + cached) < used {
                let i = self.comps[ci].rng.below(used) as usize;
                let sid = self.w.holders[h as usize].kobjs.swap_remove(i);
                self.w.slab_put(sid, cpu);
            } else if let Some(sid) = self.w.slab_from_lru(c) {
                // an unused cached object is freed (e.g. a negative dentry dropped)
                self.w.slab_put(sid, cpu);
                cached -= 1;
            } else {
                cached = 0;
            }
        }
        // grow back to the target
        let have = self.w.holders[h as usize].kobjs.len() as u64 + cached;
        let add = (want as u64).saturating_sub(have);
        let mut added = 0u64;
        while added < add {
            let Some(sid) = self.kobj_alloc(c, crate::sim::slab::CACHES[c as usize].gfp, cpu)
            else {
                break;
            };
            added += 1;
            if reclaimable && !self.comps[ci].rng.chance(in_use) {
                self.w.slab_to_lru(sid);
                cached += 1;
            } else if self.w.alive(h, gen) {
                self.w.holders[h as usize].kobjs.push(sid);
            } else {
                self.w.slab_put(sid, cpu);
            }
        }
        self.slrt(ci).cached = cached;
    }

    // ----- network -----

    fn netrt(&mut self, ci: usize) -> &mut NetRt {
        match &mut self.comps[ci].st {
            State::Net(p) => p,
            _ => unreachable!(),
        }
    }

    pub(crate) fn net_event(&mut self, ci: usize, ev: Ev) {
        match ev.op {
            op::START => {
                let n = self.netrt(ci).cfg.flows;
                let b = self.netrt(ci).burst_ns;
                for i in 0..n {
                    let cpu = self.comps[ci].rng.below(self.cpus as u64) as u16;
                    self.netrt(ci).flows.push(Flow { cpu, queued: 0 });
                    let d = self.comps[ci].rng.below(b);
                    self.q.push(self.now + d, ci as u16, op::FLOW, i, 0);
                }
            }
            op::FLOW => {
                if !self.active(ci) {
                    return;
                }
                self.net_burst(ci, ev.a as usize);
                let b = self.netrt(ci).burst_ns;
                let d = self.comps[ci].rng.exp_ns(b);
                self.q.push(self.now + d, ci as u16, op::FLOW, ev.a, 0);
            }
            op::PKT_FREE if self.w.alive(ev.a, ev.gen) => {
                self.free_packets(ci, ev.a);
            }
            _ => {}
        }
    }

    /// Take one reference on a fragment of `size` bytes from `cpu`'s page-fragment cache.
    fn frag_alloc(&mut self, ci: usize, cpu: u16, size: u32) -> Option<u32> {
        let (cur, used) = self.netrt(ci).frag[cpu as usize];
        if cur != NONE {
            let cap = 4096u32 << self.w.objs[cur as usize].order;
            if used + size <= cap {
                self.netrt(ci).frag[cpu as usize].1 += size;
                self.w.objs[cur as usize].slot += 1;
                return Some(cur);
            }
            // drop the cache's reference on the old page
            self.frag_put(cur, cpu);
            self.netrt(ci).frag[cpu as usize] = (NONE, 0);
        }
        let order = FRAG_ORDER.min(self.geo.max_order);
        let id = match self.alloc_for(NONE, 0, order, GFP_FRAG_HI, cpu, kind::FRAG, 0) {
            Some(id) => id,
            None => self.alloc_for(NONE, 0, 0, GFP_FRAG_LO, cpu, kind::FRAG, 0)?,
        };
        let cap = 4096u32 << self.w.objs[id as usize].order;
        if size > cap {
            // a fragment larger than an order-0 fallback page: give up on this packet
            self.w.objs[id as usize].slot = 1;
            self.netrt(ci).frag[cpu as usize] = (id, cap);
            return None;
        }
        // one reference for the cache, one for the fragment
        self.w.objs[id as usize].slot = 2;
        self.netrt(ci).frag[cpu as usize] = (id, size);
        Some(id)
    }

    fn frag_put(&mut self, id: u32, cpu: u16) {
        let o = &mut self.w.objs[id as usize];
        o.slot -= 1;
        if o.slot == 0 {
            self.w.free_loose(id, cpu);
        }
    }

    /// One burst of packets of a flow.
    fn net_burst(&mut self, ci: usize, fi: usize) {
        let (flow, burst, size, rcvbuf, frag, lat, head) = {
            let rt = self.netrt(ci);
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
            self.st.packets_dropped += burst as u64;
            return;
        }
        let h = self.w.new_holder(HKind::Packets, ci as u16, cpu);
        let gen = self.w.holders[h as usize].gen;
        self.w.holders[h as usize].group = fi as u32;
        let mut bytes = 0u64;
        for _ in 0..burst {
            let sz = (self.comps[ci].rng.lognormal(size as f64, 0.8) as u32).clamp(64, 65536);
            self.st.packets += 1;
            if !self.kobj_for(h, gen, head, Gfp::ATOMIC, cpu) {
                self.st.packets_dropped += 1;
                continue;
            }
            let ok = if self.comps[ci].rng.chance(frag) && sz <= 32768 {
                match self.frag_alloc(ci, cpu, sz) {
                    Some(fid) => {
                        self.w.holders[h as usize].refs.push(fid);
                        true
                    }
                    None => false,
                }
            } else if let Some(c) = kmalloc_cache(sz + 320) {
                self.kobj_for(h, gen, c, Gfp::ATOMIC, cpu)
            } else {
                let pages = (sz as u64 + 320).div_ceil(4096);
                let order = (64 - (pages - 1).leading_zeros()) as u8;
                self.alloc_for(
                    h,
                    gen,
                    order.min(self.geo.max_order),
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
                self.st.packets_dropped += 1;
            }
        }
        if !self.w.alive(h, gen) {
            return;
        }
        self.w.holders[h as usize].aux_count = bytes.min(u32::MAX as u64) as u32;
        self.netrt(ci).flows[fi].queued += bytes;
        let d = self.comps[ci].rng.exp_ns(lat);
        self.q.push(self.now + d, ci as u16, op::PKT_FREE, h, gen);
    }

    /// The receiver consumed a batch: free heads, data and fragment references.
    fn free_packets(&mut self, ci: usize, h: u32) {
        let (cpu, fi, bytes) = {
            let hd = &self.w.holders[h as usize];
            (hd.cpu, hd.group as usize, hd.aux_count as u64)
        };
        let refs = std::mem::take(&mut self.w.holders[h as usize].refs);
        for &f in &refs {
            self.frag_put(f, cpu);
        }
        let mut refs = refs;
        refs.clear();
        self.w.holders[h as usize].refs = refs;
        self.w.free_holder(h, cpu);
        let rt = self.netrt(ci);
        rt.flows[fi].queued = rt.flows[fi].queued.saturating_sub(bytes);
    }

    // ----- hugetlb -----

    fn htrt(&mut self, ci: usize) -> &mut HugetlbRt {
        match &mut self.comps[ci].st {
            State::Hugetlb(p) => p,
            _ => unreachable!(),
        }
    }

    pub(crate) fn hugetlb_event(&mut self, ci: usize, ev: Ev) {
        match ev.op {
            op::START => {
                let at = self.htrt(ci).at.clone();
                for t in at {
                    self.q.push(t.max(self.now), ci as u16, op::HTLB, 0, 0);
                }
                if self.htrt(ci).every.is_some() {
                    self.q.push(self.now, ci as u16, op::TICK, 0, 0);
                }
            }
            op::TICK => {
                if !self.active(ci) {
                    return;
                }
                self.hugetlb_request(ci);
                let e = self.htrt(ci).every.unwrap();
                self.q.push(self.now + e, ci as u16, op::TICK, 0, 0);
            }
            op::HTLB => self.hugetlb_request(ci),
            op::HTLB_FREE if self.w.alive(ev.a, ev.gen) => {
                let cpu = self.w.holders[ev.a as usize].cpu;
                self.w.free_holder(ev.a, cpu);
            }
            _ => {}
        }
    }

    /// `echo N > nr_hugepages` for 1 GiB pages, held for a while.
    fn hugetlb_request(&mut self, ci: usize) {
        let (n, hold) = {
            let rt = self.htrt(ci);
            (rt.cfg.count, rt.hold_ns)
        };
        let h = self.w.new_holder(HKind::Hugetlb, ci as u16, 0);
        let gen = self.w.holders[h as usize].gen;
        for _ in 0..n {
            self.st.htlb_attempts += 1;
            match self.alloc_gigantic() {
                Some(id) => {
                    self.st.htlb_success += 1;
                    self.w.attach(id, h, 0);
                }
                None => break,
            }
        }
        self.q
            .push(self.now + hold, ci as u16, op::HTLB_FREE, h, gen);
    }

    /// One 1 GiB contiguous allocation (migrating movable pages, dropping clean page cache).
    /// Returns the object (loose; the caller attaches it).
    pub fn alloc_gigantic(&mut self) -> Option<u32> {
        let order = self.geo.spb_order;
        let id = self.w.new_obj();
        self.st.events += 1;
        self.w.contig_mode = true;
        let r = self.a.alloc_contig(order, GFP_GIGANTIC, id, &mut self.w);
        self.w.contig_mode = false;
        match r {
            Ok(pfn) => {
                self.w.fill_obj(id, pfn, order, kind::HUGETLB, NONE);
                Some(id)
            }
            Err(_) => {
                self.w.release_obj(id);
                self.st.note_failure(GFP_GIGANTIC, order);
                None
            }
        }
    }
}
