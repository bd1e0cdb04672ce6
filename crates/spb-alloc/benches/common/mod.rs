//! Shared workload code of the allocator benchmarks (`benches/alloc.rs`, `benches/icount.rs`).
//!
//! Every allocator under test sees the *identical* request sequence: the sequences are generated
//! once from a pinned seed (splitmix64, inline so the benches need no RNG crate) and replayed
//! through the [`FrameAlloc`] adapter of each allocator. spb-alloc allocators get the gfp mask and
//! the CPU of each request; the peer crates ignore both (they have no types and no CPUs).
//!
//! If an allocation fails, the slot it would have filled stays empty and the later free of that
//! slot is skipped, so the sequence of *requests* stays identical across allocators; failures are
//! counted and reported (they are expected to be zero on a half-full machine).
#![allow(dead_code)]

use std::time::{Duration, Instant};

use spb_alloc::page::PageState;
use spb_alloc::{
    AllocRequest, Allocator, Config, Geometry, Gfp, MemoryLayout, NoEnv, PolicyConfig, PolicyKind,
    X86Options, ZoneKind,
};

/// The pinned seed of every generated sequence.
pub const SEED: u64 = 0x005e_ed00_169b_2025;

// ----------------------------------------------------------------------------------------------
// RNG

/// splitmix64.
#[derive(Clone)]
pub struct Rng(pub u64);

impl Rng {
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n`.
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
    /// True with probability `pct` percent.
    #[inline]
    pub fn pct(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            v.swap(i, j);
        }
    }
}

// ----------------------------------------------------------------------------------------------
// Requests and the allocator adapter

/// One allocation request of a sequence.
#[derive(Clone, Copy, Debug)]
pub struct Req {
    pub order: u8,
    pub gfp: Gfp,
    pub cpu: u16,
}

/// Number of simulated CPUs of the spb-alloc allocators (requests alternate at random).
pub const NR_CPUS: usize = 2;

/// What every allocator under test offers: allocate `2^order` frames, free them.
pub trait FrameAlloc {
    fn alloc(&mut self, r: Req) -> Option<u64>;
    fn free(&mut self, pfn: u64, order: u8, cpu: u16);
    /// Switch the per-CPU lists on or off (spb-alloc only; draining them first).
    fn set_pcp(&mut self, _on: bool) {}
    /// Return per-CPU lists to the buddy lists (spb-alloc only).
    fn drain(&mut self) {}
}

/// An spb-alloc allocator.
pub struct Spb(pub Allocator);

impl FrameAlloc for Spb {
    #[inline]
    fn alloc(&mut self, r: Req) -> Option<u64> {
        self.0
            .alloc(AllocRequest::new(r.order, r.gfp).cpu(r.cpu), &mut NoEnv)
            .ok()
    }
    #[inline]
    fn free(&mut self, pfn: u64, order: u8, cpu: u16) {
        let r = self.0.free(pfn, order, cpu);
        debug_assert!(r.is_ok(), "{r:?}");
    }
    fn set_pcp(&mut self, on: bool) {
        self.0.drain_all_pcp();
        spb_alloc::test_support::config_mut(&mut self.0).pcp = on;
    }
    fn drain(&mut self) {
        self.0.drain_all_pcp();
    }
}

/// `buddy_system_allocator::FrameAllocator<32>` (BTreeSet free lists, max order 31).
pub struct Bsa(pub buddy_system_allocator::FrameAllocator<32>);

impl FrameAlloc for Bsa {
    #[inline]
    fn alloc(&mut self, r: Req) -> Option<u64> {
        self.0.alloc(1usize << r.order).map(|p| p as u64)
    }
    #[inline]
    fn free(&mut self, pfn: u64, order: u8, _cpu: u16) {
        self.0.dealloc(pfn as usize, 1usize << order);
    }
}

/// `bitmap_allocator::BitAlloc256M` (segment-tree bitmap, 2^28 frames = 1 TiB; first fit).
/// Keys are pfns minus the first managed pfn.
pub struct Bitmap {
    pub b: Box<bitmap_allocator::BitAlloc256M>,
    pub base: u64,
}

impl Bitmap {
    pub fn new(base: u64) -> Bitmap {
        // BitAlloc256M is ~36 MiB: build it on the heap. All-zero is its DEFAULT (nothing free).
        let b = unsafe { Box::<bitmap_allocator::BitAlloc256M>::new_zeroed().assume_init() };
        Bitmap { b, base }
    }
}

impl FrameAlloc for Bitmap {
    #[inline]
    fn alloc(&mut self, r: Req) -> Option<u64> {
        use bitmap_allocator::BitAlloc;
        let k = if r.order == 0 {
            self.b.alloc()
        } else {
            self.b
                .alloc_contiguous(None, 1 << r.order, r.order as usize)
        };
        k.map(|k| k as u64 + self.base)
    }
    #[inline]
    fn free(&mut self, pfn: u64, order: u8, _cpu: u16) {
        use bitmap_allocator::BitAlloc;
        let k = (pfn - self.base) as usize;
        if order == 0 {
            self.b.dealloc(k);
        } else {
            self.b.dealloc_contiguous(k, 1 << order);
        }
    }
}

// ----------------------------------------------------------------------------------------------
// Machines

/// A simulated machine size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Machine {
    /// `MemoryLayout::x86_64(16 GiB, i440fx)`: DMA, DMA32, Normal (13 SPBs), reservations.
    G16,
    /// One plain 1 TiB Normal zone starting at 4 GiB (1024 SPBs).
    T1,
}

impl Machine {
    pub fn name(self) -> &'static str {
        match self {
            Machine::G16 => "16g",
            Machine::T1 => "1t",
        }
    }
    pub fn layout(self) -> MemoryLayout {
        match self {
            Machine::G16 => {
                MemoryLayout::x86_64(16 << 30, &X86Options::i440fx()).expect("16 GiB layout")
            }
            Machine::T1 => MemoryLayout::single_zone(
                Geometry::X86_64,
                ZoneKind::Normal,
                1 << 20,
                (1u64 << 40) >> 12,
            ),
        }
    }
}

/// The allocators under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Vanilla,
    Defrag,
    Spb,
    /// buddy_system_allocator::FrameAllocator<32>
    Bsa,
    /// bitmap_allocator::BitAlloc256M
    Bitmap,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Vanilla,
        Kind::Defrag,
        Kind::Spb,
        Kind::Bsa,
        Kind::Bitmap,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Kind::Vanilla => "vanilla",
            Kind::Defrag => "defrag",
            Kind::Spb => "spb",
            Kind::Bsa => "buddy_system_allocator",
            Kind::Bitmap => "bitmap_allocator",
        }
    }
    pub fn from_name(s: &str) -> Option<Kind> {
        Kind::ALL.iter().copied().find(|k| {
            k.name() == s
                || (s == "bsa" && *k == Kind::Bsa)
                || (s == "bitmap" && *k == Kind::Bitmap)
        })
    }
    pub fn is_spb_alloc(self) -> bool {
        matches!(self, Kind::Vanilla | Kind::Defrag | Kind::Spb)
    }
}

/// Managed pfn ranges of an spb-alloc allocator (maximal runs of pages that are neither holes,
/// reserved nor uninitialised): a debug cross-check of [`layout_ranges`], which is what the
/// peers are given.
pub fn managed_ranges(a: &Allocator) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for z in a.zones() {
        let mut run: Option<u64> = None;
        for (i, p) in z.pages().iter().enumerate() {
            let managed = !matches!(
                p.state(),
                PageState::Hole | PageState::Reserved | PageState::Uninit
            );
            let pfn = z.span().start + i as u64;
            match (managed, run) {
                (true, None) => run = Some(pfn),
                (false, Some(s)) => {
                    out.push((s, pfn));
                    run = None;
                }
                _ => {}
            }
        }
        if let Some(s) = run {
            out.push((s, z.span().end));
        }
    }
    // merge ranges that touch across a zone boundary
    let mut merged: Vec<(u64, u64)> = Vec::new();
    for r in out {
        match merged.last_mut() {
            Some(l) if l.1 == r.0 => l.1 = r.1,
            _ => merged.push(r),
        }
    }
    merged
}

pub fn spb_config(kind: PolicyKind, pcp: bool) -> Config {
    Config {
        policy: PolicyConfig::of(kind),
        nr_cpus: NR_CPUS,
        pcp,
        check_every: 0,
        ..Config::default()
    }
}

/// Managed pfn ranges of a layout (each zone's span minus holes, reservations and uninitialised
/// memory), merged where they touch across a zone boundary.
pub fn layout_ranges(l: &MemoryLayout) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for z in &l.zones {
        let mut cut: Vec<(u64, u64)> = z.holes.iter().map(|r| (r.start, r.end)).collect();
        cut.extend(z.reserved.iter().map(|r| (r.range.start, r.range.end)));
        cut.extend(z.uninit.iter().map(|r| (r.start, r.end)));
        cut.sort();
        let mut cur = z.span.start;
        for (s, e) in cut {
            if s > cur {
                out.push((cur, s));
            }
            cur = cur.max(e);
        }
        if cur < z.span.end {
            out.push((cur, z.span.end));
        }
    }
    let mut merged: Vec<(u64, u64)> = Vec::new();
    for r in out {
        match merged.last_mut() {
            Some(l) if l.1 == r.0 => l.1 = r.1,
            _ => merged.push(r),
        }
    }
    merged
}

/// Build an empty (all free) allocator of `kind` over `machine`. Also returns the managed pfn
/// ranges (identical for every allocator) and the managed page count.
pub fn build(kind: Kind, machine: Machine) -> (AnyAlloc, Vec<(u64, u64)>, u64) {
    let layout = machine.layout();
    let ranges = layout_ranges(&layout);
    let pages: u64 = ranges.iter().map(|r| r.1 - r.0).sum();
    let b = match kind {
        Kind::Vanilla | Kind::Defrag | Kind::Spb => {
            let pk = match kind {
                Kind::Vanilla => PolicyKind::Vanilla,
                Kind::Defrag => PolicyKind::Defrag,
                _ => PolicyKind::Spb,
            };
            let a = Allocator::new(&layout, spb_config(pk, true)).expect("allocator");
            debug_assert_eq!(managed_ranges(&a), ranges);
            assert_eq!(
                a.free_pages(),
                pages,
                "managed pages differ from the layout's"
            );
            AnyAlloc::Spb(Spb(a))
        }
        Kind::Bsa => {
            let mut f = buddy_system_allocator::FrameAllocator::<32>::new();
            for r in &ranges {
                f.add_frame(r.0 as usize, r.1 as usize);
            }
            AnyAlloc::Bsa(Bsa(f))
        }
        Kind::Bitmap => {
            use bitmap_allocator::BitAlloc;
            let base = ranges[0].0;
            let mut bm = Bitmap::new(base);
            for r in &ranges {
                bm.b.insert((r.0 - base) as usize..(r.1 - base) as usize);
            }
            AnyAlloc::Bitmap(bm)
        }
    };
    (b, ranges, pages)
}

/// Any allocator under test. The timed loops are generic over [`FrameAlloc`] and dispatched
/// once per call through [`AnyAlloc::run`], so each allocator's loop is monomorphized.
/// (Built once per benchmark: the variants' size difference costs nothing; boxing the
/// allocator would add an indirection inside the measured loops.)
#[allow(clippy::large_enum_variant)]
pub enum AnyAlloc {
    Spb(Spb),
    Bsa(Bsa),
    Bitmap(Bitmap),
}

impl AnyAlloc {
    pub fn run(&mut self, p: &mut Program, n: u64) {
        match self {
            AnyAlloc::Spb(a) => p.run(a, n),
            AnyAlloc::Bsa(a) => p.run(a, n),
            AnyAlloc::Bitmap(a) => p.run(a, n),
        }
    }
    pub fn spb(&self) -> Option<&Allocator> {
        match self {
            AnyAlloc::Spb(a) => Some(&a.0),
            _ => None,
        }
    }
}

impl FrameAlloc for AnyAlloc {
    fn alloc(&mut self, r: Req) -> Option<u64> {
        match self {
            AnyAlloc::Spb(a) => a.alloc(r),
            AnyAlloc::Bsa(a) => a.alloc(r),
            AnyAlloc::Bitmap(a) => a.alloc(r),
        }
    }
    fn free(&mut self, pfn: u64, order: u8, cpu: u16) {
        match self {
            AnyAlloc::Spb(a) => a.free(pfn, order, cpu),
            AnyAlloc::Bsa(a) => a.free(pfn, order, cpu),
            AnyAlloc::Bitmap(a) => a.free(pfn, order, cpu),
        }
    }
    fn set_pcp(&mut self, on: bool) {
        if let AnyAlloc::Spb(a) = self {
            a.set_pcp(on)
        }
    }
    fn drain(&mut self) {
        if let AnyAlloc::Spb(a) = self {
            a.drain()
        }
    }
}

// ----------------------------------------------------------------------------------------------
// Setup: half full and fragmented

/// Requests of the fill: 70 % GFP_HIGHUSER_MOVABLE order 0, 20 % GFP_KERNEL order 0-3,
/// 10 % GFP_HIGHUSER_MOVABLE order 9 (by count), until `target_pages` are requested.
pub fn fill_sequence(target_pages: u64, rng: &mut Rng) -> Vec<Req> {
    let mut v = Vec::new();
    let mut pages = 0;
    while pages < target_pages {
        let x = rng.below(100);
        let cpu = rng.below(NR_CPUS as u64) as u16;
        let r = if x < 70 {
            Req {
                order: 0,
                gfp: Gfp::HIGHUSER_MOVABLE,
                cpu,
            }
        } else if x < 90 {
            Req {
                order: rng.below(4) as u8,
                gfp: Gfp::KERNEL,
                cpu,
            }
        } else {
            Req {
                order: 9,
                gfp: Gfp::HIGHUSER_MOVABLE,
                cpu,
            }
        };
        pages += 1 << r.order;
        v.push(r);
    }
    v
}

/// The blocks a benchmark leaves allocated after setup (never freed by the timed loops).
pub struct State {
    pub fill: Vec<Option<(u64, u8, u16)>>,
    pub managed_pages: u64,
    pub allocated_pages: u64,
    pub fill_failures: u64,
    pub setup_time: Duration,
}

/// Bring `a` to the benchmark state: allocate until half of the managed pages are used (the
/// fill mix above), then free a random 40 % of the blocks, in random order.
pub fn setup<A: FrameAlloc + ?Sized>(a: &mut A, managed_pages: u64) -> State {
    let t0 = Instant::now();
    let mut rng = Rng(SEED);
    let reqs = fill_sequence(managed_pages / 2, &mut rng);
    let mut fill: Vec<Option<(u64, u8, u16)>> = Vec::with_capacity(reqs.len());
    let mut failures = 0;
    for r in &reqs {
        match a.alloc(*r) {
            Some(p) => fill.push(Some((p, r.order, r.cpu))),
            None => {
                failures += 1;
                fill.push(None)
            }
        }
    }
    let mut idx: Vec<u32> = (0..fill.len() as u32).collect();
    rng.shuffle(&mut idx);
    let nfree = idx.len() * 40 / 100;
    for &i in &idx[..nfree] {
        if let Some((p, o, c)) = fill[i as usize].take() {
            a.free(p, o, c);
        }
    }
    let allocated_pages = fill.iter().flatten().map(|b| 1u64 << b.1).sum();
    State {
        fill,
        managed_pages,
        allocated_pages,
        fill_failures: failures,
        setup_time: t0.elapsed(),
    }
}

// ----------------------------------------------------------------------------------------------
// The timed workloads

/// Blocks each workload keeps in flight (a FIFO window for the pair workloads).
pub const PAIR_WINDOW: usize = 16;
/// Length of every generated (cyclic) request sequence.
pub const SEQ_LEN: usize = 1 << 16;

/// Which timed workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// a: order-0 alloc+free pairs, 50 % GFP_HIGHUSER_MOVABLE / 50 % GFP_KERNEL.
    Order0Pairs,
    /// b: order-9 alloc+free pairs, GFP_HIGHUSER_MOVABLE.
    Order9Pairs,
    /// a': order-0 alloc+free pairs, GFP_HIGHUSER_MOVABLE only (the pure per-CPU hit path;
    /// used by the instruction-count harness).
    Order0Movable,
    /// c: mixed-order stream (orders 0-3 mostly, 5 % order 9), allocs and frees interleaved
    /// around a steady live set.
    Mixed,
    /// d: refill-dominated: bursts of 63 order-0 allocations, then the 63 frees in random order.
    Refill,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::Order0Pairs => "order0_pairs",
            Workload::Order9Pairs => "order9_pairs",
            Workload::Order0Movable => "order0_movable_pairs",
            Workload::Mixed => "mixed",
            Workload::Refill => "refill",
        }
    }
    pub fn from_name(s: &str) -> Option<Workload> {
        [
            Workload::Order0Pairs,
            Workload::Order9Pairs,
            Workload::Order0Movable,
            Workload::Mixed,
            Workload::Refill,
        ]
        .into_iter()
        .find(|w| w.name() == s)
    }
    /// What one "op" of this workload is, for the tables.
    pub fn op(self) -> &'static str {
        match self {
            Workload::Order0Pairs | Workload::Order9Pairs | Workload::Order0Movable => {
                "one alloc + one free"
            }
            Workload::Mixed | Workload::Refill => "one alloc or one free",
        }
    }
}

/// Mixed stream: live-set target.
pub const MIXED_LIVE: usize = 1024;
/// Refill burst length (the per-CPU batch of a >= 1 GiB zone).
pub const REFILL_BURST: usize = 63;

/// A generated cyclic program for one workload, and its cursor state.
pub struct Program {
    pub w: Workload,
    pub reqs: Vec<Req>,
    /// Mixed: one random word per step. Refill: free order (permutation of the burst).
    pub rand: Vec<u32>,
    pub pos: usize,
    /// Pair workloads: FIFO window. Refill: burst slots.
    pub slots: Vec<Option<(u64, u8, u16)>>,
    /// Mixed: live blocks.
    pub live: Vec<Option<(u64, u8, u16)>>,
    pub failures: u64,
}

impl Program {
    pub fn new(w: Workload) -> Program {
        let mut rng = Rng(SEED ^ (w as u64 + 1).wrapping_mul(0x1234_5678_9abc_def1));
        let mut reqs = Vec::with_capacity(SEQ_LEN);
        let mut rand = Vec::with_capacity(SEQ_LEN);
        for _ in 0..SEQ_LEN {
            let cpu = rng.below(NR_CPUS as u64) as u16;
            let r = match w {
                Workload::Order0Pairs => Req {
                    order: 0,
                    gfp: if rng.pct(50) {
                        Gfp::HIGHUSER_MOVABLE
                    } else {
                        Gfp::KERNEL
                    },
                    cpu,
                },
                Workload::Order9Pairs => Req {
                    order: 9,
                    gfp: Gfp::HIGHUSER_MOVABLE,
                    cpu,
                },
                Workload::Order0Movable => Req {
                    order: 0,
                    gfp: Gfp::HIGHUSER_MOVABLE,
                    cpu,
                },
                Workload::Mixed => {
                    let x = rng.below(100);
                    if x < 60 {
                        Req {
                            order: 0,
                            gfp: if rng.pct(70) {
                                Gfp::HIGHUSER_MOVABLE
                            } else {
                                Gfp::KERNEL
                            },
                            cpu,
                        }
                    } else if x < 95 {
                        Req {
                            order: 1 + rng.below(3) as u8,
                            gfp: if rng.pct(50) {
                                Gfp::HIGHUSER_MOVABLE
                            } else {
                                Gfp::KERNEL
                            },
                            cpu,
                        }
                    } else {
                        Req {
                            order: 9,
                            gfp: Gfp::HIGHUSER_MOVABLE,
                            cpu,
                        }
                    }
                }
                Workload::Refill => Req {
                    order: 0,
                    gfp: if rng.pct(70) {
                        Gfp::HIGHUSER_MOVABLE
                    } else {
                        Gfp::KERNEL
                    },
                    cpu,
                },
            };
            reqs.push(r);
            rand.push(rng.next_u64() as u32);
        }
        if w == Workload::Refill {
            // one permutation of the burst per burst slot of the sequence
            rand.clear();
            let mut perm: Vec<u32> = (0..REFILL_BURST as u32).collect();
            while rand.len() < SEQ_LEN {
                rng.shuffle(&mut perm);
                rand.extend_from_slice(&perm);
            }
            rand.truncate(SEQ_LEN / REFILL_BURST * REFILL_BURST);
        }
        let slots = match w {
            Workload::Order0Pairs | Workload::Order9Pairs | Workload::Order0Movable => {
                vec![None; PAIR_WINDOW]
            }
            Workload::Refill => vec![None; REFILL_BURST],
            Workload::Mixed => Vec::new(),
        };
        Program {
            w,
            reqs,
            rand,
            pos: 0,
            slots,
            live: Vec::with_capacity(2 * MIXED_LIVE),
            failures: 0,
        }
    }

    /// Run `n` ops of the program on `a` (continuing where the last call stopped).
    #[inline(never)]
    pub fn run<A: FrameAlloc>(&mut self, a: &mut A, n: u64) {
        match self.w {
            Workload::Order0Pairs | Workload::Order9Pairs | Workload::Order0Movable => {
                self.run_pairs(a, n)
            }
            Workload::Mixed => self.run_mixed(a, n),
            Workload::Refill => self.run_refill(a, n),
        }
    }

    #[inline(always)]
    fn run_pairs<A: FrameAlloc>(&mut self, a: &mut A, n: u64) {
        let len = self.reqs.len();
        for _ in 0..n {
            let r = self.reqs[self.pos];
            let s = self.pos % PAIR_WINDOW;
            if let Some((p, o, c)) = self.slots[s].take() {
                a.free(p, o, c);
            }
            match a.alloc(r) {
                Some(p) => self.slots[s] = Some((p, r.order, r.cpu)),
                None => self.failures += 1,
            }
            self.pos += 1;
            if self.pos == len {
                self.pos = 0;
            }
        }
    }

    #[inline(always)]
    fn run_mixed<A: FrameAlloc>(&mut self, a: &mut A, n: u64) {
        let len = self.reqs.len();
        for _ in 0..n {
            let x = self.rand[self.pos];
            // alloc with probability 60 % below the live target, 40 % at or above it
            let p_alloc = if self.live.len() < MIXED_LIVE { 60 } else { 40 };
            let do_alloc = self.live.is_empty() || (x % 100) < p_alloc;
            if do_alloc {
                let r = self.reqs[self.pos];
                match a.alloc(r) {
                    Some(p) => self.live.push(Some((p, r.order, r.cpu))),
                    None => {
                        self.failures += 1;
                        self.live.push(None)
                    }
                }
            } else {
                let i = (x >> 8) as usize % self.live.len();
                if let Some((p, o, c)) = self.live.swap_remove(i) {
                    a.free(p, o, c);
                }
            }
            self.pos += 1;
            if self.pos == len {
                self.pos = 0;
            }
        }
    }

    #[inline(always)]
    fn run_refill<A: FrameAlloc>(&mut self, a: &mut A, n: u64) {
        let len = self.rand.len();
        for _ in 0..n {
            // steps [0, B) of a burst allocate slot k; steps [B, 2B) free slot perm[k]
            let round = self.pos / (2 * REFILL_BURST);
            let k = self.pos % (2 * REFILL_BURST);
            if k < REFILL_BURST {
                let r = self.reqs[self.pos % self.reqs.len()];
                match a.alloc(r) {
                    Some(p) => self.slots[k] = Some((p, r.order, r.cpu)),
                    None => self.failures += 1,
                }
            } else {
                let pi = (round * REFILL_BURST + (k - REFILL_BURST)) % len;
                let s = self.rand[pi] as usize;
                if let Some((p, o, c)) = self.slots[s].take() {
                    a.free(p, o, c);
                }
            }
            self.pos += 1;
            if self.pos == 2 * len {
                self.pos = 0;
            }
        }
    }

    /// Free whatever the program still holds (back to the setup state's fill level).
    pub fn release<A: FrameAlloc + ?Sized>(&mut self, a: &mut A) {
        for s in self.slots.iter_mut().chain(self.live.iter_mut()) {
            if let Some((p, o, c)) = s.take() {
                a.free(p, o, c);
            }
        }
        self.live.clear();
    }
}
