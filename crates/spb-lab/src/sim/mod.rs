//! The deterministic discrete-event simulator: a virtual clock, an event queue, the allocator,
//! the world (which implements the allocator's `Env`), and the workload components.
//!
//! Determinism: every random choice comes from a per-component `Pcg64` stream derived from the
//! scenario seed and the component's name; simultaneous events run in scheduling order. The
//! request stream therefore depends on the policy only through failures and their fallbacks
//! (and through what reclaim and the OOM killer take away), which are part of the behaviour.

pub mod ctx;
pub mod queue;
pub mod rng;
pub mod run;
pub mod slab;
pub mod world;

pub use ctx::{SimStats, PROFILE};

use spb_alloc::layout::ZoneKind;
use spb_alloc::watermark::WatermarkConfig;
use spb_alloc::{Allocator, Config, Geometry, Gfp, MemoryLayout, PolicyConfig, X86Options};

use crate::scenario::{LayoutKind, Scenario};
use crate::workload::{self, op};
use ctx::{Component, Ctx};
use queue::{Ev, Queue, GLOBAL};
use rng::Rng;
use slab::NONE;
use world::{kind, World};

/// Background work (kswapd, kcompactd, proactive compaction, spb workers) runs at least this
/// often on the virtual clock, and at once whenever kswapd or kcompactd is woken.
pub const BACKGROUND_NS: u64 = 10_000_000;
/// Writeback flusher period.
pub const FLUSH_NS: u64 = 5_000_000_000;
/// khugepaged scan period (scan_sleep_millisecs).
pub const KHUGEPAGED_NS: u64 = 10_000_000_000;

/// Global event ops.
pub mod gop {
    pub const SAMPLE: u8 = 1;
    pub const FLUSH: u8 = 2;
    pub const KHUGEPAGED: u8 = 3;
    pub const BOOT_FREE: u8 = 4;
}

/// Run-time options that are not part of the scenario.
#[derive(Clone, Debug)]
pub struct SimOptions {
    pub policy: PolicyConfig,
    /// Allocator invariant check every N operations (0 = never).
    pub check_every: u64,
    /// The scenario's memory layout when the caller has already built it with [`layout_of`]
    /// (the CLI does, to check the machine before it starts any work); `None` builds it here.
    pub layout: Option<MemoryLayout>,
}

/// One workload component and what the simulator keeps for it: its name, its active window
/// `[start, stop)`, its random stream (lent to it in every [`Ctx`]) and its state.
pub struct Comp {
    pub name: String,
    pub start: u64,
    pub stop: u64,
    pub rng: Rng,
    pub rt: Box<dyn Component>,
}

/// A scheduled hook for the measurement layer: called at each sample time.
pub type SampleHook<'a> = dyn FnMut(&mut Sim) + 'a;

/// The simulator.
pub struct Sim {
    pub a: Allocator,
    pub w: World,
    pub q: Queue,
    pub now: u64,
    pub end: u64,
    pub sc: Scenario,
    /// RAM of the machine in bytes (what `%` sizes refer to).
    pub ram: u64,
    pub cpus: u16,
    pub geo: Geometry,
    pub comps: Vec<Comp>,
    pub st: SimStats,
    pub rng: Rng,
    next_bg: u64,
    /// Boot allocations freed shortly after boot.
    pub boot_transient: u32,
    pub boot_holder: u32,
}

/// Build the memory layout of a scenario.
pub fn layout_of(sc: &Scenario) -> Result<MemoryLayout, String> {
    let mut o = match sc.machine.layout {
        LayoutKind::I440fx => X86Options::i440fx(),
        LayoutKind::Q35 => X86Options::q35(),
    };
    if let Some(b) = sc.machine.below_4g {
        o.below_4g_bytes = b;
    }
    o.kaslr_seed = sc
        .machine
        .kaslr_seed
        .unwrap_or(rng::mix64(sc.seed ^ 0x6b_6173_6c72));
    let ram = sc.visible_ram();
    MemoryLayout::x86_64(ram, &o).map_err(|e| format!("machine: {e}"))
}

impl Sim {
    /// Build a simulator for a scenario and a policy. Errors name what is wrong.
    pub fn new(sc: &Scenario, opts: &SimOptions) -> Result<Sim, String> {
        let layout = match &opts.layout {
            Some(l) => l.clone(),
            None => layout_of(sc)?,
        };
        let max_pfn = layout.zones.iter().map(|z| z.span.end).max().unwrap_or(0);
        if max_pfn >= u32::MAX as u64 {
            return Err(
                "machine.memory: the lab's object records hold 32-bit pfns (at most 16 TiB)".into(),
            );
        }
        let mut wm = WatermarkConfig::default();
        if let Some(k) = sc.vm.min_free_kbytes {
            wm.min_free_kbytes = Some(k);
        }
        if let Some(b) = sc.vm.watermark_boost_factor {
            wm.watermark_boost_factor = b;
        }
        wm.thp_raises_min_free = sc.vm.thp_enabled != crate::scenario::ThpEnabled::Never;
        let cfg = Config {
            policy: opts.policy.clone(),
            nr_cpus: sc.machine.cpus,
            pcp: true,
            watermarks: wm,
            check_every: opts.check_every,
            event_capacity: 0,
            compaction_proactiveness: sc.vm.compaction_proactiveness,
            pcp_free_tuning: sc.pcp_free.tuning(),
            compaction_skip_hints: sc.compaction_skip_hints,
            compaction_async_stride: sc.compaction_async_stride,
            kswapd_reclaims_high_watermark: sc.kswapd_reclaims_high_watermark,
            compaction_capture: sc.compaction_capture,
            compaction_skip_on_failure: sc.compaction_skip_on_failure,
            ..Config::default()
        };
        let a = Allocator::new(&layout, cfg).map_err(|e| format!("machine: {e}"))?;
        let bounds: Vec<(u64, u64)> = a
            .zones()
            .iter()
            .map(|z| (z.span().start, z.span().end))
            .collect();
        let w = World::new(bounds, sc.machine.cpus, sc.vm.swap);
        let geo = layout.geometry;
        let mut sim = Sim {
            a,
            w,
            q: Queue::default(),
            now: 0,
            end: sc.duration_ns,
            sc: sc.clone(),
            ram: sc.machine.memory,
            cpus: sc.machine.cpus as u16,
            geo,
            comps: Vec::new(),
            st: SimStats::default(),
            rng: Rng::stream(sc.seed, "global"),
            next_bg: 0,
            boot_transient: NONE,
            boot_holder: NONE,
        };
        let run = sc.duration_ns;
        for (i, wl) in sc.workloads.iter().enumerate() {
            let rt = workload::build(&sim.ctx(), wl);
            sim.comps.push(Comp {
                name: wl.common.name.clone(),
                start: wl.common.start.ns(run),
                stop: wl.common.stop.map(|d| d.ns(run)).unwrap_or(u64::MAX),
                rng: Rng::stream(sc.seed, &format!("{}#{}", wl.common.name, i)),
                rt,
            });
        }
        Ok(sim)
    }

    /// The context of a global step (boot, khugepaged): the global random stream, no
    /// component ([`GLOBAL`], always active).
    fn ctx(&mut self) -> Ctx<'_> {
        self.split().0
    }

    /// A global context and, beside it, the components.
    fn split(&mut self) -> (Ctx<'_>, &mut [Comp]) {
        let Sim {
            a,
            w,
            q,
            st,
            sc,
            rng,
            comps,
            now,
            end,
            ram,
            cpus,
            geo,
            ..
        } = self;
        let facts = (*now, *end, *ram, *cpus, *geo);
        let cx = Ctx::new(a, q, w, st, rng, sc, facts, (GLOBAL, 0, u64::MAX));
        (cx, comps)
    }

    /// The context of component `ci` (its rng and active window) and the component.
    fn comp_ctx(&mut self, ci: u16) -> (Ctx<'_>, &mut dyn Component) {
        let (mut cx, comps) = self.split();
        let c = &mut comps[ci as usize];
        cx.rng = &mut c.rng;
        (cx.comp, cx.start, cx.stop) = (ci, c.start, c.stop);
        (cx, &mut *c.rt)
    }

    /// Run one component event (its start, or one of its own events).
    fn dispatch(&mut self, ev: Ev) {
        let (mut cx, c) = self.comp_ctx(ev.comp);
        if ev.op == op::START {
            c.start(&mut cx);
        } else {
            c.handle(&mut cx, ev);
        }
    }

    /// A holder of component `comp` was killed by the OOM killer.
    fn on_killed(&mut self, comp: u16, h: u32, flags: u8) {
        let (mut cx, c) = self.comp_ctx(comp);
        c.killed(&mut cx, h, flags);
    }

    /// Free the blocks the world queued, through the allocator's normal free path.
    pub fn flush(&mut self) {
        if self.w.pending.is_empty() {
            return;
        }
        let mut p = std::mem::take(&mut self.w.pending);
        let t0 = ctx::prof_start();
        for &(pfn, order, cpu) in &p {
            self.st.events += 1;
            if let Err(e) = self.a.free(pfn, order, cpu % self.cpus) {
                panic!("lab bookkeeping error: free of {pfn:#x} order {order}: {e}");
            }
        }
        if let Some(t0) = t0 {
            self.st.prof_free_ns += t0.elapsed().as_nanos() as u64;
        }
        p.clear();
        if self.w.pending.is_empty() {
            self.w.pending = p;
        }
    }

    /// Run background work up to `t`.
    fn background_until(&mut self, t: u64) {
        while self.next_bg <= t {
            let bt = self.next_bg;
            let (a, w) = (&mut self.a, &mut self.w);
            self.st.background_call(|| a.background(bt, w));
            self.flush();
            self.next_bg += BACKGROUND_NS;
        }
    }

    fn kick_background(&mut self) {
        if self.a.pending().kswapd.is_some() || self.a.pending().kcompactd.is_some() {
            let (a, w, now) = (&mut self.a, &mut self.w, self.now);
            self.st.background_call(|| a.background(now, w));
            self.flush();
        }
    }

    /// Events counted by the world's hooks (blocks handed back by reclaim and OOM kills) are
    /// added here.
    pub fn events(&self) -> u64 {
        self.st.events + self.w_env_frees()
    }

    fn w_env_frees(&self) -> u64 {
        self.w.st.env_frees
    }

    /// Boot: the early kernel allocations, exactly as the allocator serves them (low pfns of
    /// Normal first), then the components start.
    pub fn boot(&mut self) {
        let ram = self.ram;
        let h = self.w.new_holder(world::HKind::Boot, GLOBAL, 0);
        let ht = self.w.new_holder(world::HKind::Boot, GLOBAL, 0);
        self.boot_holder = h;
        self.boot_transient = ht;
        let mut r = Rng::stream(self.sc.seed, "boot");
        let un = self.sc.boot.unmovable.pages(ram);
        let re = self.sc.boot.reclaimable.pages(ram);
        let freed = self.sc.boot.freed;
        let maxo = self.geo.max_order;
        let mut cx = self.ctx();
        // unmovable: page allocations of mixed orders and slab
        let mut done = 0u64;
        let dentry = cx.w.dentry_cache;
        let kmallocs: Vec<u16> = ["kmalloc-64", "kmalloc-256", "kmalloc-1k", "kmalloc-4k"]
            .iter()
            .map(|n| slab::cache_id(n))
            .collect();
        let mut guard = 0;
        while done < un && guard < 10_000_000 {
            guard += 1;
            let x = r.f64();
            let transient = r.chance(freed);
            let holder = if transient { ht } else { h };
            let cpu = (r.below(cx.cpus as u64)) as u16;
            if x < 0.55 {
                // slab objects (about 40 per slab page touched)
                let c = kmallocs[r.below(kmallocs.len() as u64) as usize];
                let before = cx.w.caches[c as usize].pages;
                for _ in 0..32 {
                    cx.kobj_for(
                        holder,
                        cx.w.holders[holder as usize].gen,
                        c,
                        Gfp::KERNEL,
                        cpu,
                    );
                }
                done += cx.w.caches[c as usize].pages - before;
                done += 1;
            } else if x < 0.9 {
                if cx
                    .alloc_for(
                        holder,
                        cx.w.holders[holder as usize].gen,
                        0,
                        Gfp::KERNEL,
                        cpu,
                        kind::BOOT,
                        0,
                    )
                    .is_some()
                {
                    done += 1;
                }
            } else {
                let order = (1 + r.below(maxo as u64)).min(maxo as u64) as u8;
                let order = if r.chance(0.7) { order.min(3) } else { order };
                if cx
                    .alloc_for(
                        holder,
                        cx.w.holders[holder as usize].gen,
                        order,
                        Gfp::KERNEL.with(Gfp::COMP),
                        cpu,
                        kind::BOOT,
                        0,
                    )
                    .is_some()
                {
                    done += 1 << order;
                }
            }
        }
        // reclaimable: dentries and inodes of the root filesystem, sysfs, proc
        let mut done = 0u64;
        let inode = slab::cache_id("proc_inode_cache");
        while done < re && guard < 20_000_000 {
            guard += 1;
            let cpu = (r.below(cx.cpus as u64)) as u16;
            let c = if r.chance(0.6) { dentry } else { inode };
            let before = cx.w.caches[c as usize].pages;
            for _ in 0..16 {
                if cx.kobj_for(h, cx.w.holders[h as usize].gen, c, Gfp::KERNEL, cpu)
                    && r.chance(0.5)
                {
                    // half of them end up unused and cached
                    let s = cx.w.holders[h as usize].kobjs.pop().unwrap();
                    cx.w.slab_to_lru(s);
                }
            }
            done += cx.w.caches[c as usize].pages - before + 1;
        }
        self.flush();
        self.q.push(1_000_000_000, GLOBAL, gop::BOOT_FREE, 0, 0);
    }

    /// Run the scenario to its end. `on_sample` is called at every sample time (t = 0 after
    /// boot, then every `sample_every`, and at the end).
    pub fn run(&mut self, on_sample: &mut SampleHook) {
        self.boot();
        on_sample(self);
        for i in 0..self.comps.len() {
            let t = self.comps[i].start;
            self.q.push(t, i as u16, op::START, 0, 0);
        }
        self.q
            .push(self.sc.sample_every_ns, GLOBAL, gop::SAMPLE, 0, 0);
        self.q.push(FLUSH_NS, GLOBAL, gop::FLUSH, 0, 0);
        if self.sc.vm.khugepaged && self.sc.vm.thp_enabled != crate::scenario::ThpEnabled::Never {
            self.q.push(KHUGEPAGED_NS, GLOBAL, gop::KHUGEPAGED, 0, 0);
        }
        while let Some(ev) = self.q.pop() {
            if ev.t > self.end {
                break;
            }
            self.background_until(ev.t);
            self.now = ev.t;
            self.w.now = ev.t;
            if ev.comp == GLOBAL {
                match ev.op {
                    gop::SAMPLE => {
                        on_sample(self);
                        let t = ev.t + self.sc.sample_every_ns;
                        if t < self.end {
                            self.q.push(t, GLOBAL, gop::SAMPLE, 0, 0);
                        }
                    }
                    gop::FLUSH => {
                        self.flusher();
                        self.q.push(ev.t + FLUSH_NS, GLOBAL, gop::FLUSH, 0, 0);
                    }
                    gop::KHUGEPAGED => {
                        workload::procs::khugepaged(&mut self.ctx());
                        self.q
                            .push(ev.t + KHUGEPAGED_NS, GLOBAL, gop::KHUGEPAGED, 0, 0);
                    }
                    gop::BOOT_FREE => {
                        let ht = self.boot_transient;
                        self.w.free_holder(ht, 0);
                        self.boot_transient = NONE;
                    }
                    _ => {}
                }
            } else {
                self.dispatch(ev);
            }
            self.flush();
            // a sample only observes: it must not give kswapd or the policy's workers a turn
            // they would not have had (the run would then depend on `sample_every`)
            if !(ev.comp == GLOBAL && ev.op == gop::SAMPLE) {
                self.kick_background();
            }
            self.reap_killed();
        }
        self.now = self.end;
        self.w.now = self.end;
        self.background_until(self.end);
        self.flush();
    }

    /// Let components see the processes the OOM killer took.
    fn reap_killed(&mut self) {
        if self.w.st.killed.is_empty() {
            return;
        }
        let k = std::mem::take(&mut self.w.st.killed);
        for (h, comp, fl) in k {
            if (comp as usize) < self.comps.len() {
                self.on_killed(comp, h, fl);
            }
        }
    }

    /// Writeback: files dirty for longer than dirty_expire are written back; beyond the dirty
    /// limit, the oldest dirty files are written back at once.
    fn flusher(&mut self) {
        let expire = self.sc.vm.dirty_expire_ns;
        let mut h = self.w.lru_head;
        let mut n = self.w.lru_len;
        while h != NONE && n > 0 {
            n -= 1;
            let next = self.w.holders[h as usize].lru_next;
            let hd = &self.w.holders[h as usize];
            if !hd.dirty.is_empty() && self.now.saturating_sub(hd.dirtied_at) >= expire {
                self.w.clean_file(h);
            }
            h = next;
        }
    }

    /// Zone index of the Normal zone.
    pub fn normal_zone(&self) -> Option<usize> {
        self.a.zone_by_kind(ZoneKind::Normal)
    }
}
