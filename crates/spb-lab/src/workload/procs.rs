//! Processes: anonymous memory, THP faults, page tables, kernel stacks, per-process slab
//! objects, pins, pipe buffers, fork storms; and khugepaged.
//!
//! gfp shapes (6.18):
//! - anonymous 4 KiB fault: `GFP_HIGHUSER_MOVABLE|__GFP_ZERO|__GFP_COMP` (vma_alloc_folio adds
//!   __GFP_COMP; the traces in shared/traces show exactly this string);
//! - copy-on-write copy after fork: `GFP_HIGHUSER_MOVABLE|__GFP_COMP`;
//! - THP fault: `vma_thp_gfp_mask()` per the defrag setting, first tried with
//!   `__GFP_THISNODE|__GFP_NORETRY` (alloc_pages_mpol), retried without them when the mask
//!   allows direct reclaim; on failure the fault falls back to 4 KiB pages for that 2 MiB;
//! - page tables: `GFP_KERNEL_ACCOUNT|__GFP_ZERO|__GFP_COMP` (pagetable_alloc), one PTE page
//!   per 512 mapped 4 KiB pages plus three upper-level pages per process;
//! - kernel stacks: 16 KiB vmalloc'd as four order-0 `GFP_KERNEL|__GFP_HIGHMEM|__GFP_ZERO|
//!   __GFP_NOWARN` pages, with a per-CPU cache of two freed stacks;
//! - pipe buffers: order-0 `GFP_HIGHUSER|__GFP_ACCOUNT`;
//! - vmalloc'd kernel memory (kcov buffers, bpf maps, ...): order-0 `GFP_KERNEL|__GFP_HIGHMEM|
//!   __GFP_NOWARN` pages;
//! - khugepaged collapse: `GFP_TRANSHUGE` (khugepaged/defrag=1) or `GFP_TRANSHUGE_LIGHT`.

use spb_alloc::Gfp;

use super::{op, TICK_NS};
use crate::scenario::{Procs, ThpDefrag, ThpEnabled, ThpUse, VmSettings};
use crate::sim::ctx::{Component, Ctx};
use crate::sim::queue::Ev;
use crate::sim::slab::{cache_id, NONE};
use crate::sim::world::{flag, hflag, kind, HKind};

pub const GFP_ANON: Gfp = Gfp::HIGHUSER_MOVABLE.with(Gfp::ZERO).with(Gfp::COMP);
pub const GFP_COW: Gfp = Gfp::HIGHUSER_MOVABLE.with(Gfp::COMP);
pub const GFP_PGTABLE: Gfp = Gfp::KERNEL_ACCOUNT.with(Gfp::ZERO).with(Gfp::COMP);
pub const GFP_STACK: Gfp = Gfp::KERNEL
    .with(Gfp::HIGHMEM)
    .with(Gfp::ZERO)
    .with(Gfp::NOWARN);
pub const GFP_PIPE: Gfp = Gfp::HIGHUSER.with(Gfp::ACCOUNT);
/// vmalloc's page allocations (__vmalloc_area_node: caller mask | __GFP_HIGHMEM | __GFP_NOWARN).
pub const GFP_VMALLOC: Gfp = Gfp::KERNEL.with(Gfp::HIGHMEM).with(Gfp::NOWARN);
/// Upper-level page-table pages per process (PGD, PUD, PMD).
pub const TOP_PTES: u32 = 3;

/// Per-process slab objects: (cache, count, per thread).
const PROC_KOBJS: &[(&str, f64, bool)] = &[
    ("task_struct", 1.0, true),
    ("pid", 1.0, true),
    ("vmap_area", 1.0, true),
    ("mm_struct", 1.0, false),
    ("vm_area_struct", 20.0, false),
    ("anon_vma", 4.0, false),
    ("anon_vma_chain", 8.0, false),
    ("files_cache", 1.0, false),
    ("signal_cache", 1.0, false),
    ("sighand_cache", 1.0, false),
    ("cred", 2.0, false),
    ("filp", 4.0, false),
    ("maple_node", 6.0, false),
    ("kmalloc-64", 8.0, false),
    ("kmalloc-256", 4.0, false),
    ("kmalloc-1k", 1.0, false),
];

/// Run-time state of a process class.
pub struct ProcsRt {
    pub cfg: Procs,
    pub rss_pages: f64,
    pub fault_per_tick: f64,
    pub life_ns: Option<u64>,
    pub hold_ns: u64,
    pub fork_every_ns: u64,
    pub child_rss: f64,
    pub child_life_ns: u64,
    pub pin_ns: u64,
    pub pipe_per_tick: f64,
    pub churn_per_tick: f64,
    pub kobjs: Vec<(u16, f64, bool)>,
    pub vmalloc_pages: u64,
    /// Parents alive.
    pub live: u32,
}

impl ProcsRt {
    pub fn new(cx: &Ctx, p: &Procs) -> ProcsRt {
        let ram = cx.ram;
        let run = cx.sc.duration_ns;
        let tick_s = TICK_NS as f64 / 1e9;
        ProcsRt {
            cfg: p.clone(),
            rss_pages: p.rss.pages(ram) as f64,
            fault_per_tick: p.fault_rate.pages(ram) as f64 * tick_s,
            life_ns: p.lifetime.map(|d| d.ns(run)),
            hold_ns: p.hold.ns(run),
            fork_every_ns: p.fork_every.ns(run).max(1_000_000),
            child_rss: p.child_rss.pages(ram) as f64,
            child_life_ns: p.child_lifetime.ns(run).max(1_000_000),
            pin_ns: p.pin_time.ns(run).max(1_000_000),
            pipe_per_tick: p.pipe_rate.pages(ram) as f64 * tick_s,
            churn_per_tick: p.churn * tick_s,
            kobjs: PROC_KOBJS
                .iter()
                .map(|&(n, c, t)| (cache_id(n), c * p.kernel_objects, t))
                .collect(),
            vmalloc_pages: p.vmalloc.pages(ram),
            live: 0,
        }
    }
}

impl Component for ProcsRt {
    /// The parents are spawned over the first twentieth of the run (at most 2 s).
    fn start(&mut self, cx: &mut Ctx) {
        let n = self.cfg.count;
        let spread = (cx.sc.duration_ns / 20).clamp(1, 2_000_000_000);
        for _ in 0..n {
            let d = cx.rng.below(spread);
            cx.at(cx.now + d, op::SPAWN, 0, 0);
        }
    }

    fn handle(&mut self, cx: &mut Ctx, ev: Ev) {
        match ev.op {
            op::SPAWN if cx.active() => {
                self.spawn_proc(cx, None);
            }
            op::PROC if cx.w.alive(ev.a, ev.gen) => {
                self.proc_tick(cx, ev.a, ev.gen);
            }
            op::FORK if cx.w.alive(ev.a, ev.gen) && cx.active() => {
                self.fork_storm(cx, ev.a, ev.gen);
            }
            op::UNPIN if cx.w.alive(ev.a, ev.gen) => {
                self.repin(cx, ev.a, ev.gen);
            }
            _ => {}
        }
    }

    fn killed(&mut self, cx: &mut Ctx, _h: u32, flags: u8) {
        if flags & hflag::CHILD == 0 {
            self.parent_gone(cx);
        }
    }
}

impl ProcsRt {
    /// Spawn a process of class `ci` (a child of `parent` when given). Returns the holder.
    fn spawn_proc(&mut self, cx: &mut Ctx, parent: Option<(u32, u64)>) -> Option<u32> {
        let cpu = cx.rng.below(cx.cpus as u64) as u16;
        let h = cx.w.new_holder(HKind::Process, cx.comp, cpu);
        let gen = cx.w.holders[h as usize].gen;
        cx.w.register_process(h);
        cx.st.processes_spawned += 1;
        let (target, death, flags, group, threads) = {
            let rt = &*self;
            let cfg = &rt.cfg;
            match parent {
                Some((ph, d)) => {
                    let t = rt.child_rss;
                    (t, d, hflag::CHILD | hflag::NOTHP, ph, 1)
                }
                None => {
                    let fl = match cfg.thp {
                        ThpUse::Inherit => 0,
                        ThpUse::Madvise => hflag::MADVISED,
                        ThpUse::Never => hflag::NOTHP,
                    };
                    (
                        rt.rss_pages,
                        rt.life_ns.map(|l| l as f64).unwrap_or(-1.0) as u64,
                        fl,
                        NONE,
                        cfg.threads,
                    )
                }
            }
        };
        let jit = self.cfg.rss_jitter;
        let t = cx.rng.jitter(target, jit).max(0.0) as u32;
        let death = if parent.is_some() {
            death
        } else if let Some(l) = self.life_ns {
            cx.now + cx.rng.exp_ns(l)
        } else {
            u64::MAX
        };
        {
            let hd = &mut cx.w.holders[h as usize];
            hd.target = t;
            hd.death = death;
            hd.flags = flags;
            hd.group = group;
        }
        if parent.is_none() {
            self.live += 1;
        }
        let ok = self.spawn_kernel_side(cx, h, gen, cpu, threads, parent.map(|p| p.0));
        if !ok {
            if cx.w.alive(h, gen) {
                self.exit_proc(cx, h);
            }
            return None;
        }
        let first = cx.rng.below(TICK_NS);
        cx.at(cx.now + first, op::PROC, h, gen);
        if parent.is_none() {
            let (children, every, pin, pin_ns) = {
                let rt = &*self;
                (rt.cfg.children, rt.fork_every_ns, rt.cfg.pin, rt.pin_ns)
            };
            if children > 0 {
                let d = cx.rng.exp_ns(every);
                cx.at(cx.now + d, op::FORK, h, gen);
            }
            if pin > 0.0 {
                let d = cx.rng.below(pin_ns);
                cx.at(cx.now + d, op::UNPIN, h, gen);
            }
        }
        Some(h)
    }

    /// fork/exec: slab objects, kernel stacks, upper page tables, copied PTE pages.
    fn spawn_kernel_side(
        &mut self,
        cx: &mut Ctx,
        h: u32,
        gen: u32,
        cpu: u16,
        threads: u32,
        parent: Option<u32>,
    ) -> bool {
        for &(c, n, per_thread) in &self.kobjs {
            let n = if per_thread { n * threads as f64 } else { n };
            let n = cx.rng.round(n);
            for _ in 0..n {
                if !cx.kobj_for(h, gen, c, Gfp::KERNEL, cpu) {
                    return false;
                }
            }
        }
        for _ in 0..threads {
            if cx.w.take_cached_stack(cpu, h) {
                continue;
            }
            for _ in 0..4 {
                if cx
                    .alloc_for(h, gen, 0, GFP_STACK, cpu, kind::STACK, flag::DIRTY)
                    .is_none()
                {
                    return false;
                }
            }
        }
        if parent.is_none() {
            for _ in 0..self.vmalloc_pages {
                if cx
                    .alloc_for(h, gen, 0, GFP_VMALLOC, cpu, kind::VMALLOC, flag::DIRTY)
                    .is_none()
                {
                    return false;
                }
            }
        }
        let copied = parent
            .map(|p| cx.w.holders[p as usize].ptes.saturating_sub(TOP_PTES))
            .unwrap_or(0);
        for _ in 0..TOP_PTES + copied {
            if cx
                .alloc_for(h, gen, 0, GFP_PGTABLE, cpu, kind::PTE, flag::DIRTY)
                .is_none()
            {
                return false;
            }
            cx.w.holders[h as usize].ptes += 1;
        }
        true
    }

    /// A process exits (or fork failed): everything it owns is freed.
    fn exit_proc(&mut self, cx: &mut Ctx, h: u32) {
        let child = cx.w.holders[h as usize].flags & hflag::CHILD != 0;
        cx.w.exit_process(h);
        cx.st.processes_exited += 1;
        if !child {
            self.parent_gone(cx);
        }
    }

    fn parent_gone(&mut self, cx: &mut Ctx) {
        let rt = &mut *self;
        rt.live = rt.live.saturating_sub(1);
        let respawn = rt.cfg.respawn;
        if respawn && cx.active() {
            let d = 10_000_000 + cx.rng.exp_ns(50_000_000);
            cx.at(cx.now + d, op::SPAWN, 0, 0);
        }
    }

    fn proc_tick(&mut self, cx: &mut Ctx, h: u32, gen: u32) {
        let (death, flags, target, mapped, phase_t, cpu) = {
            let hd = &cx.w.holders[h as usize];
            (
                hd.death,
                hd.flags,
                hd.target,
                hd.small + hd.huge * cx.thp_pages(),
                hd.phase_t,
                hd.cpu,
            )
        };
        if cx.now >= death || (!cx.active() && flags & hflag::CHILD == 0 && cx.now >= cx.stop) {
            self.exit_proc(cx, h);
            return;
        }
        let (fpt, cycle, hold, churn, pipe) = {
            let rt = &*self;
            (
                rt.fault_per_tick,
                rt.cfg.cycle,
                rt.hold_ns,
                rt.churn_per_tick,
                rt.pipe_per_tick,
            )
        };
        let budget = cx.rng.round(fpt) as u32;
        if flags & hflag::CYCLE_FULL != 0 {
            if cx.now >= phase_t {
                Self::unmap_all(cx, h);
                cx.w.holders[h as usize].flags &= !hflag::CYCLE_FULL;
            }
        } else if mapped < target {
            self.fault(cx, h, gen, budget.min(target - mapped));
            if !cx.w.alive(h, gen) {
                return;
            }
            let hd = &mut cx.w.holders[h as usize];
            if cycle && hd.small + hd.huge * (1 << cx.geo.pageblock_order) >= hd.target {
                hd.flags |= hflag::CYCLE_FULL;
                hd.phase_t = cx.now + hold;
            }
        } else if churn > 0.0 {
            let k = cx.rng.round(churn * target as f64) as u32;
            if k > 0 {
                self.unmap_random(cx, h, k);
                self.fault(cx, h, gen, k.min(budget.max(1) * 4));
            }
        }
        if !cx.w.alive(h, gen) {
            return;
        }
        if pipe > 0.0 {
            // last tick's pipe buffers have been read
            while let Some(&id) = cx.w.holders[h as usize].aux.last() {
                cx.w.free_page(id, cpu);
            }
            let n = cx.rng.round(pipe);
            for _ in 0..n {
                if cx
                    .alloc_for(h, gen, 0, GFP_PIPE, cpu, kind::PIPE, flag::AUX)
                    .is_none()
                {
                    break;
                }
            }
            if !cx.w.alive(h, gen) {
                return;
            }
        }
        let d = TICK_NS - TICK_NS / 10 + cx.rng.below(TICK_NS / 5);
        cx.at(cx.now + d, op::PROC, h, gen);
    }

    /// Fault `n` pages into process `h`.
    fn fault(&mut self, cx: &mut Ctx, h: u32, gen: u32, n: u32) {
        let (flags, cpu) = {
            let hd = &cx.w.holders[h as usize];
            (hd.flags, hd.cpu)
        };
        let tp = cx.thp_pages();
        let thp = if flags & hflag::NOTHP != 0 {
            None
        } else {
            thp_gfp(&cx.sc.vm, flags & hflag::MADVISED != 0)
        };
        let child = flags & hflag::CHILD != 0;
        let cow = self.cfg.cow;
        let mut left = n as i64;
        while left > 0 {
            let (small, huge, target, fallback, ptes) = {
                let hd = &cx.w.holders[h as usize];
                (hd.small, hd.huge, hd.target, hd.fallback, hd.ptes)
            };
            let mapped = small + huge * tp;
            if mapped >= target {
                break;
            }
            // a failed THP fault, linked to its fallback (the base page of this fault)
            let mut link = None;
            if let Some((g1, g2)) = thp {
                if fallback == 0 && target - mapped >= tp {
                    let mut got = cx
                        .alloc_for(h, gen, cx.thp_order(), g1, cpu, kind::THP, 0)
                        .is_some();
                    if !got && cx.w.alive(h, gen) {
                        if let Some(g2) = g2 {
                            got = cx
                                .alloc_for(h, gen, cx.thp_order(), g2, cpu, kind::THP, 0)
                                .is_some();
                        }
                    }
                    if !cx.w.alive(h, gen) {
                        return;
                    }
                    cx.w.st.pgfault += 1;
                    if got {
                        cx.st.thp_fault_alloc += 1;
                        cx.w.holders[h as usize].huge += 1;
                        left -= tp as i64;
                        continue;
                    }
                    cx.st.thp_fault_fallback += 1;
                    cx.w.holders[h as usize].fallback = tp;
                    link = Some(
                        cx.st
                            .bill
                            .optional_failed(crate::cost::OptionalKind::ThpFault),
                    );
                }
            }
            // the PTE page covering this fault
            let leaf = ptes.saturating_sub(TOP_PTES);
            if small >= leaf * 512 {
                if cx
                    .alloc_for(h, gen, 0, GFP_PGTABLE, cpu, kind::PTE, flag::DIRTY)
                    .is_none()
                {
                    if let Some(l) = link {
                        cx.st.bill.fallback_done(l, false);
                    }
                    if cx.w.alive(h, gen) {
                        cx.st.mmap_enomem += 1;
                    }
                    return;
                }
                cx.w.holders[h as usize].ptes += 1;
            }
            let gfp = if child && cx.rng.chance(cow) {
                GFP_COW
            } else {
                GFP_ANON
            };
            let ok = cx.alloc_for(h, gen, 0, gfp, cpu, kind::ANON, 0).is_some();
            if let Some(l) = link {
                cx.st.bill.fallback_done(l, ok);
            }
            if !ok {
                if cx.w.alive(h, gen) {
                    cx.st.mmap_enomem += 1;
                }
                return;
            }
            cx.w.st.pgfault += 1;
            let hd = &mut cx.w.holders[h as usize];
            hd.small += 1;
            hd.fallback = hd.fallback.saturating_sub(1);
            left -= 1;
        }
    }

    /// munmap everything (the anonymous memory and its PTE pages).
    fn unmap_all(cx: &mut Ctx, h: u32) {
        let cpu = cx.w.holders[h as usize].cpu;
        cx.w.unpin_all(h);
        while let Some(&id) = cx.w.holders[h as usize].pages.last() {
            cx.w.free_page(id, cpu);
        }
        // leaf page tables go with the VMAs
        let mut i = 0;
        let mut keep = TOP_PTES;
        while i < cx.w.holders[h as usize].dirty.len() {
            let id = cx.w.holders[h as usize].dirty[i];
            if cx.w.objs[id as usize].kind == kind::PTE {
                if keep > 0 {
                    keep -= 1;
                    i += 1;
                    continue;
                }
                cx.w.free_page(id, cpu);
            } else {
                i += 1;
            }
        }
        let hd = &mut cx.w.holders[h as usize];
        hd.ptes = hd.ptes.min(TOP_PTES);
        hd.small = 0;
        hd.huge = 0;
        hd.fallback = 0;
    }

    /// munmap / MADV_DONTNEED of about `k` pages: half the time the most recently faulted
    /// range (heap shrink, short-lived mappings), otherwise a range at a random place. Pinned
    /// pages stay.
    fn unmap_random(&mut self, cx: &mut Ctx, h: u32, k: u32) {
        let cpu = cx.w.holders[h as usize].cpu;
        let tp = cx.thp_pages();
        let len = cx.w.holders[h as usize].pages.len();
        if len == 0 {
            return;
        }
        let tail = cx.rng.chance(0.5);
        let span = (k as usize).min(len);
        let start = if tail {
            len - span
        } else {
            cx.rng.below((len - span + 1) as u64) as usize
        };
        let mut freed = 0u32;
        // walk the range downwards: swap_remove only pulls elements from beyond it
        let mut j = start + span;
        while j > start && freed < k {
            j -= 1;
            if j >= cx.w.holders[h as usize].pages.len() {
                continue;
            }
            let id = cx.w.holders[h as usize].pages[j];
            let o = cx.w.objs[id as usize];
            if o.flags & flag::PINNED != 0 {
                continue;
            }
            cx.w.free_page(id, cpu);
            let hd = &mut cx.w.holders[h as usize];
            if o.kind == kind::THP {
                hd.huge -= 1;
                freed += tp;
            } else {
                hd.small -= 1;
                freed += 1;
            }
        }
    }

    /// Unpin the current pins and pin a new random share of the resident set.
    fn repin(&mut self, cx: &mut Ctx, h: u32, gen: u32) {
        cx.w.unpin_all(h);
        let (share, pin_ns) = {
            let rt = &*self;
            (rt.cfg.pin, rt.pin_ns)
        };
        let tp = cx.thp_pages() as u64;
        let (small, huge) = {
            let hd = &cx.w.holders[h as usize];
            (hd.small as u64, hd.huge as u64)
        };
        let want = cx.rng.round(share * (small + huge * tp) as f64);
        let mut got = 0;
        let mut tries = want / 4 + 16;
        while got < want && tries > 0 {
            let len = cx.w.holders[h as usize].pages.len() as u64;
            if len == 0 {
                break;
            }
            let i = cx.rng.below(len) as usize;
            let id = cx.w.holders[h as usize].pages[i];
            let o = cx.w.objs[id as usize];
            if o.flags & flag::PINNED != 0 {
                tries -= 1;
                continue;
            }
            cx.pin_longterm(id);
            got += 1u64 << o.order;
            cx.w.holders[h as usize].refs.push(id);
        }
        let d = cx.rng.exp_ns(pin_ns);
        cx.at(cx.now + d, op::UNPIN, h, gen);
    }

    /// A fork storm: `children` children at once, all exiting together.
    fn fork_storm(&mut self, cx: &mut Ctx, h: u32, gen: u32) {
        let (n, life, every) = {
            let rt = &*self;
            (rt.cfg.children, rt.child_life_ns, rt.fork_every_ns)
        };
        let death = cx.now + cx.rng.exp_ns(life);
        for _ in 0..n {
            if !cx.w.alive(h, gen) {
                return;
            }
            if self.spawn_proc(cx, Some((h, death))).is_none() {
                break;
            }
        }
        if cx.w.alive(h, gen) {
            let d = cx.rng.exp_ns(every);
            cx.at(cx.now + d, op::FORK, h, gen);
        }
    }
}

/// khugepaged: up to 8 collapses (pages_to_scan 4096) per wake-up, over processes with at
/// least 512 small pages in THP-eligible memory.
pub fn khugepaged(cx: &mut Ctx) {
    let tp = cx.thp_pages();
    let gfp = if cx.sc.vm.khugepaged_defrag {
        Gfp::TRANSHUGE
    } else {
        Gfp::TRANSHUGE_LIGHT
    };
    let n = cx.w.procs.len();
    if n == 0 {
        return;
    }
    let start = cx.rng.below(n as u64) as usize;
    let mut done = 0;
    for k in 0..n {
        if done >= 8 {
            break;
        }
        let Some(&h) = cx.w.procs.get((start + k) % n.max(1)) else {
            break;
        };
        let (flags, small, cpu, gen) = {
            let hd = &cx.w.holders[h as usize];
            (hd.flags, hd.small, hd.cpu, hd.gen)
        };
        if flags & hflag::NOTHP != 0 || small < tp {
            continue;
        }
        if thp_gfp(&cx.sc.vm, flags & hflag::MADVISED != 0).is_none() {
            continue;
        }
        done += 1;
        if cx
            .alloc_for(h, gen, cx.thp_order(), gfp, cpu, kind::THP, 0)
            .is_none()
        {
            cx.st.thp_collapse_alloc_failed += 1;
            continue;
        }
        cx.st.thp_collapse_alloc += 1;
        // the 512 small pages it replaces, and their PTE page
        let mut freed = 0;
        let mut i = cx.w.holders[h as usize].pages.len();
        while freed < tp && i > 0 {
            i -= 1;
            let id = cx.w.holders[h as usize].pages[i];
            let o = cx.w.objs[id as usize];
            if o.kind == kind::ANON && o.flags & flag::PINNED == 0 {
                cx.w.free_page(id, cpu);
                freed += 1;
                i = i.min(cx.w.holders[h as usize].pages.len());
            }
        }
        let hd = &mut cx.w.holders[h as usize];
        hd.small -= freed;
        hd.huge += 1;
        if hd.ptes > TOP_PTES {
            if let Some(pos) = hd
                .dirty
                .iter()
                .rposition(|&id| cx.w.objs[id as usize].kind == kind::PTE)
            {
                let id = hd.dirty[pos];
                hd.ptes -= 1;
                cx.w.free_page(id, cpu);
            }
        }
    }
}

/// The THP fault masks for the current THP settings: the first try and the retry (None:
/// no THP fault).
fn thp_gfp(vm: &VmSettings, madvised: bool) -> Option<(Gfp, Option<Gfp>)> {
    match vm.thp_enabled {
        ThpEnabled::Never => return None,
        ThpEnabled::Madvise if !madvised => return None,
        _ => {}
    }
    let light = Gfp::TRANSHUGE_LIGHT;
    let base = match vm.thp_defrag {
        ThpDefrag::Always => Gfp::TRANSHUGE.with(if madvised { Gfp::NONE } else { Gfp::NORETRY }),
        ThpDefrag::Defer => light.with(Gfp::KSWAPD_RECLAIM),
        ThpDefrag::DeferMadvise => light.with(if madvised {
            Gfp::DIRECT_RECLAIM
        } else {
            Gfp::KSWAPD_RECLAIM
        }),
        ThpDefrag::Madvise => light.with(if madvised {
            Gfp::DIRECT_RECLAIM
        } else {
            Gfp::NONE
        }),
        ThpDefrag::Never => light,
    };
    let first = base.with(Gfp::THISNODE).with(Gfp::NORETRY);
    let second = if base.contains(Gfp::DIRECT_RECLAIM) {
        Some(base)
    } else {
        None
    };
    Some((first, second))
}
