//! Reliability harness: random (or fuzzer-decoded) allocator operation sequences checked against
//! a reference model of live blocks, and the long-running soak built on it.
//!
//! The same [`Harness`] runs three ways:
//! - the `alloc_ops` fuzz target decodes its input with [`Harness::from_fuzz_bytes`] and runs in
//!   *strict* mode (the first violation panics, so libFuzzer records the input);
//! - the proptest stand-in (`crates/spb-alloc/tests/soak.rs`) feeds it random byte strings the
//!   same way;
//! - [`run`] (the `spb soak` command) generates a weighted random mix with a seeded PRNG, checks
//!   every `check_every` operations and *counts* violations instead of stopping.
//!
//! What is checked (a *violation* is any of these failing):
//! - the allocator's own invariant checker ([`Allocator::check`]);
//! - every block the model holds is an allocated head of the same order and cookie; the pages
//!   the allocator counts as allocated (managed − free − per-CPU) equal the model's;
//! - every block handed out (alloc, alloc_contig, alloc_at, a migration target) is naturally
//!   aligned, lies in managed memory of a zone the gfp mask allows, and overlaps no live block;
//! - frees and splits of what the model says is live succeed; every other free or split
//!   returns `Err` and changes nothing (page metadata, free lists, counters: a digest);
//! - argument errors are the documented ones: `OrderTooLarge`, `BadCpu`, `NoZone`,
//!   `ContigError::BadOrder`, `GrowError::{NoZone, BadRange, AlreadyManaged}`;
//! - migration callbacks only name blocks the model holds, with their order and cookie;
//! - nothing panics;
//! - at the end everything is freed and, after draining the per-CPU lists, free == managed
//!   (else the difference is reported as *lost pages*).

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;
use spb_alloc::compaction::CompactPriority;
use spb_alloc::layout::{Reservation, ReserveKind};
use spb_alloc::{
    AllocErrorKind, AllocRequest, Allocator, Config, ContigError, Env, FreedBlock, Geometry, Gfp,
    GrowError, MemoryLayout, MigrateOutcome, MigrateType, Pfn, PfnRange, PolicyConfig, PolicyKind,
    ReclaimRequest, SpbSwitches, ZoneKind, ZoneSpec,
};

// ---------------------------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------------------------

/// One operation of a sequence. Pfns are absolute; `pick` selects a live block of the model
/// (the first live block at or after `pick % limit`, wrapping), so sequences stay meaningful
/// whatever the allocator returned earlier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// `alloc` with any order (also above the maximum), any gfp bits, any cpu (also invalid).
    Alloc {
        order: u8,
        gfp: Gfp,
        cpu: u16,
        trylock: bool,
    },
    /// Free a live block (must succeed).
    Free { pick: u64, cpu: u16 },
    /// Free something derived from the model: a live block with another order, an interior pfn,
    /// a recently freed block (double free), a random pfn, a pfn outside every zone. Succeeds
    /// exactly when the model says `(pfn, order)` is live.
    FreeOther {
        how: u8,
        pick: u64,
        arg: u64,
        cpu: u16,
    },
    /// Split a live block to a lower order (must succeed).
    Split { pick: u64, new_order: u8 },
    /// Split something derived from the model (as `FreeOther`), any new order.
    SplitOther {
        how: u8,
        pick: u64,
        arg: u64,
        new_order: u8,
    },
    /// `alloc_at`: must fail if the block overlaps a live block or unmanaged memory, and
    /// succeed otherwise (aligned, order ≤ max, inside one zone).
    AllocAt { pfn: Pfn, order: u8, gfp: Gfp },
    /// `alloc_contig` of any order (orders outside pageblock..=SPB order must be `BadOrder`).
    Contig { order: u8, gfp: Gfp },
    /// `compact_zone` on a valid zone.
    Compact {
        zone: u8,
        order: Option<u8>,
        prio: u8,
        mt: u8,
        daemon: bool,
    },
    /// `drain_all_pcp`.
    Drain,
    /// Advance the virtual clock and run `background` (kswapd, kcompactd, spb evacuation).
    Background { step_ns: u64 },
    /// `grow_zone` with an arbitrary range (bounded above by the harness limit); the result
    /// must be exactly what the model predicts.
    Grow { zone: u8, start: Pfn, end: Pfn },
    /// Grow a zone the valid way: the next uninitialised chunk, or beyond the span end.
    GrowNext { zone: u8, pages: u64 },
}

/// How the pfns of the Free/Split "other" operations are derived (`how % 6`).
const HOW_WRONG_ORDER: u8 = 0;
const HOW_INTERIOR: u8 = 1;
const HOW_DOUBLE: u8 = 2;
const HOW_RANDOM: u8 = 3;
const HOW_OUTSIDE: u8 = 4;
// 5: the live block itself (a valid free through the "other" path)

// ---------------------------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------------------------

/// A live block as the model knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block {
    pub order: u8,
    pub cookie: u32,
    pub mt: MigrateType,
}

/// What a pfn is, as far as the model knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    /// Outside every span, a hole, or uninitialised: `grow_zone` may hand it over.
    Absent,
    /// Reserved at boot: never managed, never growable.
    Reserved,
    /// Managed by the allocator (free or allocated).
    Managed,
}

/// The reference model: live blocks, what each pfn is, zone spans, and the embedder's
/// behaviour (driven by a small PRNG seeded from the input).
pub struct Model {
    pub live: BTreeMap<Pfn, Block>,
    class: Vec<Class>,
    spans: Vec<PfnRange>,
    kinds: Vec<ZoneKind>,
    /// Every pfn the harness may touch is below this (bounds `grow_zone`).
    pub limit: Pfn,
    recent_free: VecDeque<(Pfn, u8)>,
    next_cookie: u32,
    rng: u64,
    /// Violations seen inside embedder callbacks (they cannot return errors).
    pub errors: Vec<String>,
    /// Pages currently live.
    pub live_pages: u64,
    /// Embedder statistics.
    pub migrations: u64,
    pub refused: u64,
    pub dropped: u64,
    pub reclaimed_pages: u64,
    pub oom_kills: u64,
    /// Print the embedder's decisions to stderr.
    pub trace: bool,
}

impl Model {
    fn new(layout: &MemoryLayout, limit: Pfn, seed: u64) -> Model {
        let mut class = vec![Class::Absent; limit as usize];
        for z in &layout.zones {
            for p in z.span.start..z.span.end.min(limit) {
                class[p as usize] = Class::Managed;
            }
            for h in z.holes.iter().chain(z.uninit.iter()) {
                for p in h.start..h.end.min(limit) {
                    class[p as usize] = Class::Absent;
                }
            }
            for r in &z.reserved {
                for p in r.range.start..r.range.end.min(limit) {
                    class[p as usize] = Class::Reserved;
                }
            }
        }
        Model {
            live: BTreeMap::new(),
            class,
            spans: layout.zones.iter().map(|z| z.span).collect(),
            kinds: layout.zones.iter().map(|z| z.kind).collect(),
            limit,
            recent_free: VecDeque::new(),
            next_cookie: 0,
            rng: seed | 1,
            errors: Vec::new(),
            live_pages: 0,
            migrations: 0,
            refused: 0,
            dropped: 0,
            reclaimed_pages: 0,
            oom_kills: 0,
            trace: false,
        }
    }

    fn rand(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn cookie(&mut self) -> u32 {
        self.next_cookie = self.next_cookie.wrapping_add(1);
        self.next_cookie
    }

    /// The live block covering `pfn`, if any.
    pub fn covering(&self, pfn: Pfn) -> Option<(Pfn, Block)> {
        let (&h, &b) = self.live.range(..=pfn).next_back()?;
        (pfn < h + (1u64 << b.order)).then_some((h, b))
    }

    /// A live block overlapping `[p, p + n)`, if any.
    fn overlapping(&self, p: Pfn, n: u64) -> Option<(Pfn, Block)> {
        let end = p.saturating_add(n);
        let (&h, &b) = self.live.range(..end).next_back()?;
        (h + (1u64 << b.order) > p).then_some((h, b))
    }

    /// The first live block at or after `pick % limit`, wrapping around.
    fn pick(&self, pick: u64) -> Option<(Pfn, Block)> {
        let start = pick % self.limit.max(1);
        self.live
            .range(start..)
            .next()
            .or_else(|| self.live.iter().next())
            .map(|(&p, &b)| (p, b))
    }

    fn insert(&mut self, p: Pfn, b: Block) {
        self.live_pages += 1u64 << b.order;
        self.live.insert(p, b);
    }

    fn remove(&mut self, p: Pfn) -> Option<Block> {
        let b = self.live.remove(&p)?;
        self.live_pages -= 1u64 << b.order;
        if self.recent_free.len() >= 32 {
            self.recent_free.pop_front();
        }
        self.recent_free.push_back((p, b.order));
        Some(b)
    }

    fn zone_of(&self, p: Pfn) -> Option<usize> {
        self.spans.iter().position(|s| s.contains(p))
    }

    fn all_managed(&self, p: Pfn, n: u64) -> bool {
        match p.checked_add(n) {
            Some(end) if end <= self.limit => {
                (p..end).all(|q| self.class[q as usize] == Class::Managed)
            }
            _ => false,
        }
    }

    /// Check a block the allocator handed out: aligned, in managed memory of an allowed zone,
    /// overlapping nothing live. `except` is a live block that may overlap (a migration source
    /// never overlaps its target, so it is None everywhere today).
    fn check_new_block(
        &self,
        what: &str,
        p: Pfn,
        order: u8,
        highest: Option<ZoneKind>,
    ) -> Result<(), String> {
        let n = 1u64 << order;
        if p & (n - 1) != 0 {
            return Err(format!(
                "{what}: block {p:#x} of order {order} is not aligned"
            ));
        }
        if !self.all_managed(p, n) {
            return Err(format!(
                "{what}: block {p:#x} of order {order} is not all managed memory"
            ));
        }
        let zi = self
            .zone_of(p)
            .ok_or_else(|| format!("{what}: block {p:#x} lies in no zone"))?;
        if self.zone_of(p + n - 1) != Some(zi) {
            return Err(format!(
                "{what}: block {p:#x} of order {order} crosses a zone boundary"
            ));
        }
        if let Some(h) = highest {
            if self.kinds[zi] > h {
                return Err(format!(
                    "{what}: block {p:#x} is in zone {} but the gfp mask allows up to {}",
                    self.kinds[zi].name(),
                    h.name()
                ));
            }
        }
        if let Some((q, b)) = self.overlapping(p, n) {
            return Err(format!(
                "{what}: block {p:#x} of order {order} overlaps the live block {q:#x} of order {}",
                b.order
            ));
        }
        Ok(())
    }

    /// A pfn for the "other" free/split operations.
    fn other_pfn(&self, how: u8, pick: u64, arg: u64, max_order: u8) -> (Pfn, u8) {
        let live = self.pick(pick);
        match how % 6 {
            HOW_WRONG_ORDER => match live {
                Some((p, b)) => {
                    let o = (arg % (max_order as u64 + 4)) as u8;
                    (p, if o == b.order { o + 1 } else { o })
                }
                None => (arg % self.limit.max(1), 0),
            },
            HOW_INTERIOR => match live {
                Some((p, b)) if b.order > 0 => (
                    p + 1 + arg % ((1u64 << b.order) - 1),
                    (arg >> 32) as u8 % (max_order + 2),
                ),
                Some((p, b)) => (p + 1, b.order),
                None => (arg % self.limit.max(1), 0),
            },
            HOW_DOUBLE => match self.recent_free.len() {
                0 => (arg % self.limit.max(1), 0),
                n => self.recent_free[(pick % n as u64) as usize],
            },
            HOW_RANDOM => (arg % (self.limit + 64), (arg >> 48) as u8 % (max_order + 2)),
            HOW_OUTSIDE => (
                [
                    u64::MAX,
                    u64::MAX - 1,
                    1 << 40,
                    self.limit + (arg % 4096),
                    1u64 << 63,
                ][(pick % 5) as usize],
                (arg % 4) as u8,
            ),
            _ => match live {
                Some((p, b)) => (p, b.order),
                None => (arg % self.limit.max(1), 0),
            },
        }
    }
}

/// The embedder: moves pages (updating the model), sometimes refuses (pinned: every cookie
/// divisible by 11, and 5% of requests at random), sometimes drops the content (5%), reclaims
/// movable and reclaimable blocks of the model, and OOM-kills "processes" (cookie mod 16).
pub struct ModelEnv<'a> {
    pub m: &'a mut Model,
}

impl Env for ModelEnv<'_> {
    fn migrate(&mut self, from: Pfn, to: Pfn, order: u8, cookie: u32) -> MigrateOutcome {
        let m = &mut *self.m;
        match m.live.get(&from) {
            Some(b) if b.order == order && b.cookie == cookie => {}
            other => {
                m.errors.push(format!("migrate({from:#x} -> {to:#x}, order {order}, cookie {cookie}): the model has {other:?} there"));
                return MigrateOutcome::Refused;
            }
        }
        if let Err(e) = m.check_new_block("migration target", to, order, None) {
            m.errors.push(e);
            return MigrateOutcome::Refused;
        }
        let r = m.rand() % 100;
        let out = if cookie % 11 == 0 || r < 5 {
            m.refused += 1;
            MigrateOutcome::Refused
        } else if r < 10 {
            m.dropped += 1;
            m.remove(from);
            MigrateOutcome::Dropped
        } else {
            m.migrations += 1;
            let b = m.remove(from).expect("checked above");
            m.insert(to, b);
            MigrateOutcome::Moved
        };
        if m.trace {
            eprintln!(
                "      env.migrate({from:#x} -> {to:#x}, order {order}, cookie {cookie}) = {out:?}"
            );
        }
        out
    }

    fn reclaim(&mut self, req: ReclaimRequest, out: &mut Vec<FreedBlock>) {
        let m = &mut *self.m;
        if m.live.is_empty() || m.rand() % 100 < 25 {
            return; // nothing reclaimable right now
        }
        let start = match req.prefer_range {
            Some((s, _)) => s,
            None => m.rand() % m.limit.max(1),
        };
        let want = req.nr_pages.max(1);
        let mut got = 0u64;
        let mut picked: Vec<Pfn> = Vec::new();
        let budget = (4 * want + 64) as usize;
        for (&p, b) in m
            .live
            .range(start..)
            .chain(m.live.range(..start))
            .take(budget)
        {
            let ok = match b.mt {
                MigrateType::Movable => req.may_swap || b.cookie % 2 == 0, // odd cookies: anon, needs swap
                MigrateType::Reclaimable => req.shrink_slab,
                _ => false,
            };
            if ok && b.order <= 10 {
                picked.push(p);
                got += 1u64 << b.order;
                if got >= want {
                    break;
                }
            }
        }
        if m.trace {
            eprintln!("      env.reclaim({req:?}) frees {picked:x?}");
        }
        for p in picked {
            let b = m.remove(p).expect("picked from live");
            m.reclaimed_pages += 1u64 << b.order;
            out.push(FreedBlock {
                pfn: p,
                order: b.order,
            });
            // now and then a block the allocator must skip: the same pfn again (already freed)
            // or a wrong order
            match m.rand() % 64 {
                0 => out.push(FreedBlock {
                    pfn: p,
                    order: b.order,
                }),
                1 => out.push(FreedBlock {
                    pfn: u64::MAX - 7,
                    order: 0,
                }),
                _ => {}
            }
        }
    }

    fn reclaimable_pages(&self) -> u64 {
        // an estimate, as the kernel's: half the live pages
        self.m.live_pages / 2
    }

    fn oom_kill(&mut self, out: &mut Vec<FreedBlock>) -> bool {
        let m = &mut *self.m;
        if m.live.is_empty() {
            return false;
        }
        let r = m.rand();
        let Some((_, victim)) = m.pick(r) else {
            return false;
        };
        let proc_id = victim.cookie % 16;
        let blocks: Vec<Pfn> = m
            .live
            .iter()
            .filter(|(_, b)| b.cookie % 16 == proc_id && b.mt == MigrateType::Movable)
            .map(|(&p, _)| p)
            .collect();
        if blocks.is_empty() {
            return false;
        }
        m.oom_kills += 1;
        if m.trace {
            eprintln!("      env.oom_kill() frees {blocks:x?}");
        }
        for p in blocks {
            let b = m.remove(p).expect("listed from live");
            out.push(FreedBlock {
                pfn: p,
                order: b.order,
            });
        }
        true
    }
}

// ---------------------------------------------------------------------------------------------
// The harness
// ---------------------------------------------------------------------------------------------

/// Operation counters of a harness run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub ops: u64,
    pub allocs: u64,
    pub alloc_fail: u64,
    pub frees: u64,
    /// Bad frees/splits/grows/alloc_at/alloc arguments correctly rejected.
    pub rejected: u64,
    pub splits: u64,
    pub alloc_at: u64,
    pub contig_ok: u64,
    pub contig_fail: u64,
    pub compactions: u64,
    pub grows: u64,
    pub grown_pages: u64,
    pub drains: u64,
    pub background_runs: u64,
    pub checks: u64,
}

impl Counters {
    /// Add another run's counts to these.
    pub fn add(&mut self, o: &Counters) {
        let Counters {
            ops,
            allocs,
            alloc_fail,
            frees,
            rejected,
            splits,
            alloc_at,
            contig_ok,
            contig_fail,
            compactions,
            grows,
            grown_pages,
            drains,
            background_runs,
            checks,
        } = *o;
        self.ops += ops;
        self.allocs += allocs;
        self.alloc_fail += alloc_fail;
        self.frees += frees;
        self.rejected += rejected;
        self.splits += splits;
        self.alloc_at += alloc_at;
        self.contig_ok += contig_ok;
        self.contig_fail += contig_fail;
        self.compactions += compactions;
        self.grows += grows;
        self.grown_pages += grown_pages;
        self.drains += drains;
        self.background_runs += background_runs;
        self.checks += checks;
    }
}

/// An allocator, its model and counters.
pub struct Harness {
    pub a: Allocator,
    pub m: Model,
    pub c: Counters,
    /// Panic on the first violation (fuzzing) instead of returning it.
    pub strict: bool,
    /// Compute a state digest around rejected operations (cheap on small layouts).
    digest_bad_ops: bool,
    /// Invariant-checker messages containing one of these are known core bugs and tolerated
    /// (so that a fuzzing run can look past a reported bug; see docs/reliability.md).
    pub known_bugs: Vec<String>,
    /// Checker failures tolerated because of `known_bugs`.
    pub known_hits: u64,
    /// Print every concrete API call and its result to stderr.
    pub trace: bool,
}

/// FNV-1a over the allocator state that a rejected operation must not change.
fn digest(a: &Allocator) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut mix = |v: u64| {
        h ^= v;
        h = h.wrapping_mul(0x100_0000_01b3);
    };
    for z in &a.zones {
        mix(z.span.start);
        mix(z.span.end);
        mix(z.managed_pages);
        mix(z.present_pages);
        mix(z.free_pages);
        mix(z.free_pages_blocks);
        for row in z.nr_free.iter() {
            for v in row {
                mix(*v);
            }
        }
        for c in &z.pcp {
            mix(c.count);
        }
        for p in &z.pages {
            mix((p.next as u64) << 32 | p.prev as u64);
            mix((p.next as u64) << 32
                | (p.order as u64) << 24
                | (p.state as u64) << 16
                | (p.mt as u64) << 8
                | p.aux as u64);
        }
        for pb in &z.pageblocks {
            mix(pb.free as u64
                | (pb.pcp as u64) << 16
                | (pb.mt as u64) << 32
                | (pb.flags as u64) << 40
                | (pb.owner as u64) << 48);
            for v in pb.alloc.iter() {
                mix(*v as u64);
            }
        }
    }
    h
}

/// Pages the allocator holds as allocated: managed − free − per-CPU.
fn allocated_pages(a: &Allocator) -> u64 {
    a.zones
        .iter()
        .map(|z| z.managed_pages - z.free_pages - z.pcp.iter().map(|c| c.count).sum::<u64>())
        .sum()
}

fn managed_pages(a: &Allocator) -> u64 {
    a.zones.iter().map(|z| z.managed_pages).sum()
}

impl Harness {
    /// A harness over `layout`. `limit` bounds every pfn the operations may grow to.
    pub fn new(
        layout: &MemoryLayout,
        cfg: Config,
        limit: Pfn,
        seed: u64,
        strict: bool,
    ) -> Result<Harness, String> {
        let a = Allocator::new(layout, cfg).map_err(|e| e.to_string())?;
        let digest_bad_ops = a.zones.iter().map(|z| z.pages.len()).sum::<usize>() <= 1 << 16;
        Ok(Harness {
            a,
            m: Model::new(layout, limit, seed),
            c: Counters::default(),
            strict,
            digest_bad_ops,
            known_bugs: Vec::new(),
            known_hits: 0,
            trace: false,
        })
    }

    fn fail<T>(&self, msg: String) -> Result<T, String> {
        if self.strict {
            panic!("{msg}");
        }
        Err(msg)
    }

    /// The model's view against the allocator's: invariant checker, every live block, the
    /// allocated page total, callback errors.
    pub fn check(&mut self) -> Result<(), String> {
        self.c.checks += 1;
        if let Some(e) = self.m.errors.first() {
            let e = format!("embedder callback: {e}");
            self.m.errors.clear();
            return self.fail(e);
        }
        self.checker("invariant checker")?;
        for (&p, b) in &self.m.live {
            match self.a.page_state(p) {
                Some(s)
                    if s.state == spb_alloc::page::PageState::Alloc
                        && s.order == b.order
                        && s.cookie() == b.cookie => {}
                s => {
                    return self.fail(format!(
                        "model block {p:#x} order {} cookie {} is {:?} in the allocator",
                        b.order, b.cookie, s
                    ))
                }
            }
        }
        let ap = allocated_pages(&self.a);
        if ap != self.m.live_pages {
            return self.fail(format!(
                "the allocator counts {} allocated pages, the model {} ({} pages unaccounted)",
                ap,
                self.m.live_pages,
                ap as i64 - self.m.live_pages as i64
            ));
        }
        Ok(())
    }

    fn tr(&self, f: impl FnOnce() -> String) {
        if self.trace {
            eprintln!("    {}", f());
        }
    }

    /// Whether `msg` is a known core bug (and count it).
    fn known(&mut self, msg: &str) -> bool {
        let k = self.known_bugs.iter().any(|k| msg.contains(k.as_str()));
        if k {
            self.known_hits += 1;
        }
        k
    }

    /// The allocator's invariant checker, tolerating `known_bugs`.
    fn checker(&mut self, what: &str) -> Result<(), String> {
        if let Err(e) = self.a.check() {
            if !self.known(&e.0) {
                return self.fail(format!("{what}: {e}"));
            }
        }
        Ok(())
    }

    /// Run one operation and check its result against the model (not the full check).
    pub fn step(&mut self, op: &Op) -> Result<(), String> {
        self.c.ops += 1;
        let geo = self.a.geo;
        match *op {
            Op::Alloc {
                order,
                gfp,
                cpu,
                trylock,
            } => {
                let cookie = self.m.cookie();
                let req = AllocRequest {
                    order,
                    gfp,
                    cpu,
                    cookie,
                    trylock,
                };
                let r = self.a.alloc(req, &mut ModelEnv { m: &mut self.m });
                self.tr(|| format!("a.alloc(AllocRequest {{ order: {order}, gfp: Gfp({:#x}), cpu: {cpu}, cookie: {cookie}, trylock: {trylock} }}, &mut env) = {r:?}", gfp.0));
                let highest = gfp.highest_zone();
                let expect = if order > geo.max_order {
                    Some(AllocErrorKind::OrderTooLarge)
                } else if cpu as usize >= self.a.cfg.nr_cpus {
                    Some(AllocErrorKind::BadCpu)
                } else if !self.m.kinds.iter().any(|k| *k <= highest) {
                    Some(AllocErrorKind::NoZone)
                } else {
                    None
                };
                match (r, expect) {
                    (Ok(p), None) => {
                        if let Err(e) = self.m.check_new_block("alloc", p, order, Some(highest)) {
                            return self.fail(format!("{e} ({op:?})"));
                        }
                        self.m.insert(
                            p,
                            Block {
                                order,
                                cookie,
                                mt: gfp.migratetype(),
                            },
                        );
                        self.c.allocs += 1;
                    }
                    (Err(e), Some(k)) if e.kind == k => self.c.rejected += 1,
                    (Err(e), None)
                        if !matches!(
                            e.kind,
                            AllocErrorKind::OrderTooLarge
                                | AllocErrorKind::BadCpu
                                | AllocErrorKind::NoZone
                        ) =>
                    {
                        self.c.alloc_fail += 1
                    }
                    (r, k) => {
                        return self.fail(format!(
                            "{op:?}: got {r:?}, expected {}",
                            k.map_or(
                                "success or an out-of-memory error".to_string(),
                                |k| format!("{k:?}")
                            )
                        ))
                    }
                }
            }
            Op::Free { pick, cpu } => {
                let Some((p, b)) = self.m.pick(pick) else {
                    return Ok(());
                };
                let r = self.a.free(p, b.order, cpu);
                self.tr(|| format!("a.free({p:#x}, {}, {cpu}) = {r:?}", b.order));
                if let Err(e) = r {
                    return self.fail(format!(
                        "free of the live block {p:#x} order {} failed: {e}",
                        b.order
                    ));
                }
                self.m.remove(p);
                self.c.frees += 1;
            }
            Op::FreeOther {
                how,
                pick,
                arg,
                cpu,
            } => {
                let (p, o) = self.m.other_pfn(how, pick, arg, geo.max_order);
                self.free_predicted(p, o, cpu)?;
            }
            Op::Split { pick, new_order } => {
                let Some((p, b)) = self.m.pick(pick) else {
                    return Ok(());
                };
                if b.order == 0 {
                    return Ok(());
                }
                let no = new_order % b.order;
                self.split_predicted(p, b.order, no)?;
            }
            Op::SplitOther {
                how,
                pick,
                arg,
                new_order,
            } => {
                let (p, o) = self.m.other_pfn(how, pick, arg, geo.max_order);
                self.split_predicted(p, o, new_order)?;
            }
            Op::AllocAt { pfn, order, gfp } => {
                let n = 1u64.checked_shl(order as u32).unwrap_or(0);
                let zi = self.m.zone_of(pfn);
                let ok_shape = order <= geo.max_order
                    && pfn & (n - 1) == 0
                    && zi.is_some_and(|zi| pfn + n <= self.m.spans[zi].end);
                let expect_ok =
                    ok_shape && self.m.all_managed(pfn, n) && self.m.overlapping(pfn, n).is_none();
                let held_before = self.a.free_pages()
                    + self
                        .a
                        .zones
                        .iter()
                        .flat_map(|z| z.pcp.iter())
                        .map(|c| c.count)
                        .sum::<u64>();
                let cookie = self.m.cookie();
                let r = self.a.alloc_at(pfn, order, gfp, cookie);
                self.tr(|| {
                    format!(
                        "a.alloc_at({pfn:#x}, {order}, Gfp({:#x}), {cookie}) = {r:?}",
                        gfp.0
                    )
                });
                match (r, expect_ok) {
                    (Ok(()), true) => {
                        self.m.insert(
                            pfn,
                            Block {
                                order,
                                cookie,
                                mt: gfp.migratetype(),
                            },
                        );
                        self.c.alloc_at += 1;
                    }
                    (Err(_), false) => {
                        self.c.rejected += 1;
                        let held = self.a.free_pages()
                            + self
                                .a
                                .zones
                                .iter()
                                .flat_map(|z| z.pcp.iter())
                                .map(|c| c.count)
                                .sum::<u64>();
                        if held != held_before {
                            return self.fail(format!("{op:?} was rejected but free + per-CPU pages went from {held_before} to {held}"));
                        }
                    }
                    (Err(e), true) if order > geo.pageblock_order => {
                        // every page is free, but in buddies of pageblocks whose types do not
                        // merge (see docs/reliability.md, core bug 3)
                        let msg = format!("alloc_at refused a wholly free range: {op:?} got {e:?}");
                        if self.known(&msg) {
                            self.c.rejected += 1;
                        } else {
                            return self.fail(msg);
                        }
                    }
                    (r, _) => {
                        return self.fail(format!(
                            "{op:?}: got {r:?}, the model expected {}",
                            if expect_ok { "success" } else { "an error" }
                        ))
                    }
                }
            }
            Op::Contig { order, gfp } => {
                let cookie = self.m.cookie();
                let r = self
                    .a
                    .alloc_contig(order, gfp, cookie, &mut ModelEnv { m: &mut self.m });
                self.tr(|| {
                    format!(
                        "a.alloc_contig({order}, Gfp({:#x}), {cookie}, &mut env) = {r:?}",
                        gfp.0
                    )
                });
                let bad = order < geo.pageblock_order || order > geo.spb_order;
                match r {
                    Ok(p) if !bad => {
                        if let Err(e) = self.m.check_new_block(
                            "alloc_contig",
                            p,
                            order,
                            Some(gfp.highest_zone()),
                        ) {
                            return self.fail(format!("{e} ({op:?})"));
                        }
                        self.m.insert(
                            p,
                            Block {
                                order,
                                cookie,
                                mt: MigrateType::Movable,
                            },
                        );
                        self.c.contig_ok += 1;
                    }
                    Err(ContigError::BadOrder) if bad => self.c.rejected += 1,
                    Err(ContigError::Failed(_)) if !bad => self.c.contig_fail += 1,
                    r => return self.fail(format!("{op:?}: got {r:?}")),
                }
            }
            Op::Compact {
                zone,
                order,
                prio,
                mt,
                daemon,
            } => {
                let zi = zone as usize % self.a.zones.len();
                let prio = [
                    CompactPriority::SyncFull,
                    CompactPriority::SyncLight,
                    CompactPriority::Async,
                ][prio as usize % 3];
                let mt = [
                    MigrateType::Unmovable,
                    MigrateType::Movable,
                    MigrateType::Reclaimable,
                ][mt as usize % 3];
                let order = order.map(|o| o % (geo.max_order + 1));
                let r = self.a.compact_zone(
                    zi,
                    order,
                    prio,
                    mt,
                    daemon,
                    &mut ModelEnv { m: &mut self.m },
                );
                self.tr(|| format!("a.compact_zone({zi}, {order:?}, CompactPriority::{prio:?}, MigrateType::{mt:?}, {daemon}, &mut env) = {r:?}"));
                self.c.compactions += 1;
            }
            Op::Drain => {
                self.a.drain_all_pcp();
                self.tr(|| "a.drain_all_pcp()".to_string());
                self.c.drains += 1;
            }
            Op::Background { step_ns } => {
                let t = self.a.now_ns.saturating_add(step_ns);
                self.a.background(t, &mut ModelEnv { m: &mut self.m });
                self.tr(|| format!("a.background({t}, &mut env)"));
                self.c.background_runs += 1;
            }
            Op::Grow { zone, start, end } => {
                let end = end.min(self.m.limit);
                self.grow_predicted(zone as usize, PfnRange::new(start, end))?;
            }
            Op::GrowNext { zone, pages } => {
                let zi = zone as usize % self.a.zones.len();
                let span = self.m.spans[zi];
                let cap = self
                    .m
                    .spans
                    .get(zi + 1)
                    .map_or(self.m.limit, |s| s.start)
                    .min(self.m.limit);
                // the first absent pfn of the span, else the span end
                let start = (span.start..span.end)
                    .find(|&p| self.m.class[p as usize] == Class::Absent)
                    .unwrap_or(span.end);
                let mut end = start;
                while end < cap
                    && end - start < pages.max(1)
                    && self.m.class[end as usize] == Class::Absent
                {
                    end += 1;
                }
                if end > start {
                    self.grow_predicted(zi, PfnRange::new(start, end))?;
                }
            }
        }
        if self.strict || !self.m.errors.is_empty() {
            if let Some(e) = self.m.errors.first().cloned() {
                self.m.errors.clear();
                return self.fail(format!("embedder callback during {op:?}: {e}"));
            }
        }
        Ok(())
    }

    fn free_predicted(&mut self, p: Pfn, o: u8, cpu: u16) -> Result<(), String> {
        let live = self.m.live.get(&p).copied();
        let expect_ok = live.is_some_and(|b| b.order == o);
        let before = self.digest_bad_ops.then(|| digest(&self.a));
        let r = self.a.free(p, o, cpu);
        self.tr(|| format!("a.free({p:#x}, {o}, {cpu}) = {r:?}"));
        match (r, expect_ok) {
            (Ok(()), true) => {
                self.m.remove(p);
                self.c.frees += 1;
            }
            (Err(_), false) => {
                self.c.rejected += 1;
                if before.is_some_and(|d| d != digest(&self.a)) {
                    return self.fail(format!(
                        "free({p:#x}, order {o}) was rejected but changed the allocator state"
                    ));
                }
            }
            (r, _) => {
                return self.fail(format!(
                    "free({p:#x}, order {o}): got {r:?}, the model has {:?} ({:?} covers it)",
                    live,
                    self.m.covering(p)
                ))
            }
        }
        Ok(())
    }

    fn split_predicted(&mut self, p: Pfn, o: u8, no: u8) -> Result<(), String> {
        let live = self.m.live.get(&p).copied();
        let expect_ok = live.is_some_and(|b| b.order == o) && no < o;
        let before = self.digest_bad_ops.then(|| digest(&self.a));
        let r = self.a.split(p, o, no);
        self.tr(|| format!("a.split({p:#x}, {o}, {no}) = {r:?}"));
        match (r, expect_ok) {
            (Ok(()), true) => {
                let b = self.m.live.remove(&p).expect("live");
                self.m.live_pages -= 1u64 << o;
                for i in 0..(1u64 << (o - no)) {
                    self.m.insert(p + (i << no), Block { order: no, ..b });
                }
                self.c.splits += 1;
            }
            (Err(_), false) => {
                self.c.rejected += 1;
                if before.is_some_and(|d| d != digest(&self.a)) {
                    return self.fail(format!(
                        "split({p:#x}, {o}, {no}) was rejected but changed the allocator state"
                    ));
                }
            }
            (r, _) => {
                return self.fail(format!(
                    "split({p:#x}, {o}, {no}): got {r:?}, the model has {live:?}"
                ))
            }
        }
        Ok(())
    }

    fn grow_predicted(&mut self, zi: usize, range: PfnRange) -> Result<(), String> {
        let nz = self.m.spans.len();
        let expect: Result<u64, GrowError> = if zi >= nz {
            Err(GrowError::NoZone)
        } else if range.is_empty()
            || range.start < self.m.spans[zi].start
            || self
                .m
                .spans
                .get(zi + 1)
                .is_some_and(|n| range.end > n.start)
        {
            Err(GrowError::BadRange {
                start: range.start,
                end: range.end,
            })
        } else if let Some(p) =
            (range.start..range.end).find(|&p| self.m.class[p as usize] != Class::Absent)
        {
            Err(GrowError::AlreadyManaged { pfn: p })
        } else {
            Ok(range.len())
        };
        let before = (self.a.free_pages(), managed_pages(&self.a));
        let r = self.a.grow_zone(zi, range);
        self.tr(|| {
            format!(
                "a.grow_zone({zi}, PfnRange::new({:#x}, {:#x})) = {r:?}",
                range.start, range.end
            )
        });
        match (&r, &expect) {
            (Ok(n), Ok(m)) if n == m => {
                for p in range.start..range.end {
                    self.m.class[p as usize] = Class::Managed;
                }
                self.m.spans[zi].end = self.m.spans[zi].end.max(range.end);
                self.c.grows += 1;
                self.c.grown_pages += n;
            }
            (Err(a), Err(b)) if core::mem::discriminant(a) == core::mem::discriminant(b) => {
                self.c.rejected += 1;
                let after = (self.a.free_pages(), managed_pages(&self.a));
                if after != before {
                    return self.fail(format!("grow_zone({zi}, {range:?}) was rejected ({a}) but free/managed went from {before:?} to {after:?}"));
                }
                // A rejected grow may have extended the span (see docs/reliability.md); keep
                // the model's span in step so that later predictions agree.
                if zi < nz {
                    self.m.spans[zi].end = self.a.zones[zi].span.end;
                }
            }
            _ => {
                return self.fail(format!(
                    "grow_zone({zi}, {range:?}): got {r:?}, the model expected {expect:?}"
                ))
            }
        }
        Ok(())
    }

    /// Free every live block, drain the per-CPU lists and return the pages missing from the
    /// free total (0 when nothing was lost).
    pub fn free_everything(&mut self) -> Result<u64, String> {
        let live = std::mem::take(&mut self.m.live);
        self.m.live_pages = 0;
        for (p, b) in live {
            if let Err(e) = self.a.free(p, b.order, 0) {
                return self.fail(format!("final free of {p:#x} order {}: {e}", b.order));
            }
        }
        self.a.drain_all_pcp();
        let managed = managed_pages(&self.a);
        let free = self.a.free_pages();
        self.checker("invariant checker after freeing everything")?;
        Ok(managed.saturating_sub(free) + free.saturating_sub(managed))
    }

    // -----------------------------------------------------------------------------------------
    // Fuzz input decoding
    // -----------------------------------------------------------------------------------------

    /// Decode a fuzzer's byte string into a strict harness and an operation sequence. Layouts
    /// are small hand-built ones on [`Geometry::TINY`] (and two edge geometries), with holes,
    /// reservations, uninitialised memory and room to grow; `Config.check_every = 1`.
    ///
    /// With `known_bugs` non-empty the allocator's own per-operation checker is off
    /// (`check_every = 0`: it would panic on the known bug) and the harness check, which runs
    /// after every operation anyway, tolerates checker messages containing one of them.
    pub fn from_fuzz_bytes(data: &[u8], known_bugs: &[&str]) -> (Harness, Vec<Op>) {
        let mut u = Bytes { d: data, i: 0 };
        let (layout, limit) = fuzz_layout(u.u8());
        let kind = PolicyKind::ALL[u.u8() as usize % 3];
        let bits = u.u64();
        let spb = if u.u8() % 4 == 0 {
            SpbSwitches::all_on()
        } else {
            SpbSwitches(
                bits & (SpbSwitches::all_on().0 | 1 << spb_alloc::SpbSwitch::RefuseLiteral as u8),
            )
        };
        let flags = u.u8();
        let cfg = Config {
            policy: PolicyConfig { kind, spb },
            nr_cpus: 1 + (flags & 3) as usize,
            pcp: flags & 4 == 0,
            check_every: if known_bugs.is_empty() { 1 } else { 0 },
            nofail_retries: 8,
            ..Config::default()
        };
        let seed = u.u64();
        let mut h = Harness::new(&layout, cfg, limit, seed, true).expect("fuzz layouts are valid");
        h.known_bugs = known_bugs.iter().map(|s| s.to_string()).collect();
        let geo = layout.geometry;
        let nz = layout.zones.len() as u8;
        let mut ops = Vec::new();
        while !u.done() && ops.len() < 400 {
            ops.push(decode_op(&mut u, geo, nz, limit));
        }
        (h, ops)
    }

    /// Run a decoded fuzz sequence: every operation, the full check after each, and at the end
    /// free everything and demand zero lost pages. Panics on any violation.
    pub fn run_fuzz(data: &[u8], known_bugs: &[&str]) {
        let (mut h, ops) = Harness::from_fuzz_bytes(data, known_bugs);
        for op in &ops {
            h.step(op).expect("strict");
            h.check().expect("strict");
        }
        let lost = h.free_everything().expect("strict");
        assert_eq!(lost, 0, "{lost} pages lost after freeing everything");
    }
}

/// A cursor over fuzz bytes that yields zeros once exhausted.
struct Bytes<'a> {
    d: &'a [u8],
    i: usize,
}

impl Bytes<'_> {
    fn done(&self) -> bool {
        self.i >= self.d.len()
    }
    fn u8(&mut self) -> u8 {
        let v = self.d.get(self.i).copied().unwrap_or(0);
        self.i += 1;
        v
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    fn u64(&mut self) -> u64 {
        (self.u32() as u64) | (self.u32() as u64) << 32
    }
}

/// Realistic gfp masks (the reference traces' most common ones).
const GFPS: [Gfp; 10] = [
    Gfp::KERNEL,
    Gfp::HIGHUSER_MOVABLE,
    Gfp(Gfp::KERNEL.0 | Gfp::RECLAIMABLE.0),
    Gfp::ATOMIC,
    Gfp::NOWAIT,
    Gfp::TRANSHUGE_LIGHT,
    Gfp::TRANSHUGE,
    Gfp(Gfp::KERNEL.0 | Gfp::NORETRY.0 | Gfp::NOWARN.0),
    Gfp(Gfp::ATOMIC.0 | Gfp::NOWARN.0 | Gfp::NORETRY.0 | Gfp::COMP.0 | Gfp::NOMEMALLOC.0),
    Gfp(Gfp::KERNEL.0 | Gfp::NOFAIL.0),
];

fn gfp_of(u: &mut Bytes) -> Gfp {
    let b = u.u8();
    if b < 200 {
        GFPS[b as usize % GFPS.len()]
    } else {
        Gfp(u.u32())
    }
}

fn decode_op(u: &mut Bytes, geo: Geometry, nz: u8, limit: Pfn) -> Op {
    match u.u8() % 32 {
        0..=8 => Op::Alloc {
            order: u.u8() % 12,
            gfp: gfp_of(u),
            cpu: (u.u8() % 6) as u16,
            trylock: u.u8() % 8 == 0,
        },
        9..=14 => Op::Free {
            pick: u.u16() as u64,
            cpu: u.u16(),
        },
        15..=17 => Op::FreeOther {
            how: u.u8(),
            pick: u.u16() as u64,
            arg: u.u64(),
            cpu: u.u8() as u16,
        },
        18 => Op::Split {
            pick: u.u16() as u64,
            new_order: u.u8(),
        },
        19 => Op::SplitOther {
            how: u.u8(),
            pick: u.u16() as u64,
            arg: u.u64(),
            new_order: u.u8() % 12,
        },
        20 | 21 => {
            let order = u.u8() % (geo.max_order + 3);
            let raw = u.u16() as u64 % (limit + 32);
            let pfn = if u.u8() % 4 == 0 {
                raw
            } else {
                raw & !((1u64 << order) - 1)
            };
            Op::AllocAt {
                pfn,
                order,
                gfp: gfp_of(u),
            }
        }
        22 | 23 => Op::Contig {
            order: geo.spb_order.saturating_sub(u.u8() % (geo.spb_order + 2)),
            gfp: gfp_of(u),
        },
        24 => {
            let o = u.u8();
            Op::Compact {
                zone: u.u8() % nz,
                order: (o < 200).then_some(o),
                prio: u.u8(),
                mt: u.u8(),
                daemon: u.u8() % 2 == 0,
            }
        }
        25 => Op::Drain,
        26 | 27 => Op::Background {
            step_ns: [0, 1_000_000, 100_000_000, 600_000_000, 2_000_000_000][u.u8() as usize % 5],
        },
        28 | 29 => {
            let zone = u.u8() % (nz + 1);
            let start = u.u16() as u64 % (limit + 16);
            let len = u.u16() as u64 % (limit / 2 + 1);
            Op::Grow {
                zone,
                start,
                end: if u.u8() % 8 == 0 {
                    start.wrapping_sub(len)
                } else {
                    start + len
                },
            }
        }
        _ => Op::GrowNext {
            zone: u.u8() % nz,
            pages: 1 + u.u16() as u64 % geo.spb_pages(),
        },
    }
}

/// The fuzz layouts, with the pfn limit each may grow to.
fn fuzz_layout(sel: u8) -> (MemoryLayout, Pfn) {
    let g = Geometry::TINY;
    let s = g.spb_pages(); // 128
    let rsv = |a: Pfn, b: Pfn, kind| Reservation {
        range: PfnRange::new(a, b),
        kind,
    };
    match sel % 6 {
        // one Normal zone of 4 SPBs, growth beyond the end
        0 => (
            MemoryLayout {
                geometry: g,
                zones: vec![ZoneSpec::plain(ZoneKind::Normal, PfnRange::new(s, 5 * s))],
            },
            8 * s,
        ),
        // DMA32 + Normal with an uninitialised top SPB (tests/model.rs)
        1 => {
            let mut z1 = ZoneSpec::plain(ZoneKind::Normal, PfnRange::new(2 * s, 6 * s));
            z1.uninit.push(PfnRange::new(5 * s, 6 * s));
            (
                MemoryLayout {
                    geometry: g,
                    zones: vec![
                        ZoneSpec::plain(ZoneKind::Dma32, PfnRange::new(s, 2 * s)),
                        z1,
                    ],
                },
                8 * s,
            )
        }
        // four zones, unaligned starts, holes, reservations, uninit, gaps between zones
        2 => {
            let mut dma = ZoneSpec::plain(ZoneKind::Dma, PfnRange::new(1, 64));
            dma.holes.push(PfnRange::new(20, 28));
            let mut d32 = ZoneSpec::plain(ZoneKind::Dma32, PfnRange::new(64, 3 * s));
            d32.holes.push(PfnRange::new(200, 232));
            d32.reserved.push(rsv(300, 310, ReserveKind::BounceBuffers));
            let mut n = ZoneSpec::plain(ZoneKind::Normal, PfnRange::new(3 * s, 7 * s));
            n.reserved.push(rsv(7 * s - 20, 7 * s, ReserveKind::Memmap));
            n.reserved
                .push(rsv(4 * s + 3, 4 * s + 5, ReserveKind::KernelImage));
            n.uninit.push(PfnRange::new(6 * s, 7 * s - 20));
            let mv = ZoneSpec::plain(ZoneKind::Movable, PfnRange::new(8 * s, 10 * s));
            (
                MemoryLayout {
                    geometry: g,
                    zones: vec![dma, d32, n, mv],
                },
                12 * s,
            )
        }
        // a zone boundary inside an SPB, uninit at the top
        3 => {
            let mut n = ZoneSpec::plain(ZoneKind::Normal, PfnRange::new(200, 700));
            n.uninit.push(PfnRange::new(600, 700));
            (
                MemoryLayout {
                    geometry: g,
                    zones: vec![ZoneSpec::plain(ZoneKind::Dma32, PfnRange::new(128, 200)), n],
                },
                8 * s,
            )
        }
        // pageblock order == max order
        4 => {
            let g = Geometry {
                page_shift: 12,
                pageblock_order: 3,
                max_order: 3,
                spb_order: 6,
            };
            let s = g.spb_pages();
            let mut n = ZoneSpec::plain(ZoneKind::Normal, PfnRange::new(2 * s, 8 * s));
            n.uninit.push(PfnRange::new(7 * s, 8 * s));
            (
                MemoryLayout {
                    geometry: g,
                    zones: vec![ZoneSpec::plain(ZoneKind::Dma32, PfnRange::new(s, 2 * s)), n],
                },
                12 * s,
            )
        }
        // a single small zone with no room to grow but its own uninit pages
        _ => {
            let mut n = ZoneSpec::plain(ZoneKind::Normal, PfnRange::new(s, 3 * s));
            n.uninit.push(PfnRange::new(2 * s + 16, 2 * s + 48));
            n.holes.push(PfnRange::new(2 * s + 64, 2 * s + 72));
            (
                MemoryLayout {
                    geometry: g,
                    zones: vec![n],
                },
                3 * s,
            )
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The soak
// ---------------------------------------------------------------------------------------------

/// The simulated machine of a soak, in SPBs of `geometry`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SoakMemory {
    pub geometry: Geometry,
    /// SPBs of the Normal zone handed over at construction.
    pub normal_spbs: u64,
    /// SPBs at the top of the Normal zone left uninitialised (deferred init).
    pub uninit_spbs: u64,
    /// SPBs above the Normal zone that memory hot-add may bring.
    pub hotplug_spbs: u64,
    /// Pages cut off the top of the Normal zone, so that it ends inside its last pageblock
    /// (0: it ends on an SPB boundary).
    pub tail_pages: u64,
}

impl Default for SoakMemory {
    fn default() -> Self {
        SoakMemory {
            geometry: Geometry::TINY,
            normal_spbs: 12,
            uninit_spbs: 2,
            hotplug_spbs: 2,
            tail_pages: 0,
        }
    }
}

/// Options of [`run`].
#[derive(Clone, Debug)]
pub struct SoakOptions {
    /// Operations in total.
    pub ops: u64,
    pub seed: u64,
    pub policy: PolicyConfig,
    /// Run the full check (invariant checker + model) every this many operations (0: only at
    /// the end of each epoch).
    pub check_every: u64,
    pub memory: SoakMemory,
    pub nr_cpus: usize,
    /// Free everything, verify zero lost pages and start a fresh allocator every this many
    /// operations (0: one epoch), so hotplug growth and deferred init recur.
    pub epoch_ops: u64,
    /// Violation messages containing one of these are known, reported core bugs: counted in
    /// `known_bug_hits` instead of `violations` (see docs/reliability.md).
    pub known_bugs: Vec<String>,
    /// Draw each epoch's machine from `memory` and `nr_cpus` as upper bounds (see
    /// [`epoch_machine`]) instead of using them as they are.
    pub vary: bool,
}

impl Default for SoakOptions {
    fn default() -> Self {
        SoakOptions {
            ops: 1_000_000,
            seed: 1,
            policy: PolicyConfig::spb(),
            check_every: 1000,
            memory: SoakMemory::default(),
            nr_cpus: 4,
            epoch_ops: 100_000,
            known_bugs: Vec::new(),
            vary: true,
        }
    }
}

/// What a soak did and found.
#[derive(Clone, Debug, Default)]
pub struct SoakReport {
    pub policy: String,
    /// The harness's operation counters, summed over the epochs.
    pub counts: Counters,
    /// Checks that failed, panics, and operations whose result contradicted the model.
    pub violations: u64,
    /// The first violations (up to 10), with epoch and operation number.
    pub violation_samples: Vec<String>,
    /// Pages missing after freeing everything at the end of each epoch (summed).
    pub lost_pages: u64,
    pub epochs: u64,
    pub migrations: u64,
    pub reclaimed_pages: u64,
    pub oom_kills: u64,
    /// Known-bug violations tolerated (`SoakOptions::known_bugs`).
    pub known_bug_hits: u64,
    pub wall: Duration,
}

impl SoakReport {
    /// Zero violations and zero lost pages.
    pub fn clean(&self) -> bool {
        self.violations == 0 && self.lost_pages == 0
    }

    /// Add another soak's report (another seed) to this one; the samples keep the first ten.
    pub fn add(&mut self, o: SoakReport) {
        self.counts.add(&o.counts);
        self.violations += o.violations;
        let room = 10usize.saturating_sub(self.violation_samples.len());
        self.violation_samples
            .extend(o.violation_samples.into_iter().take(room));
        self.lost_pages += o.lost_pages;
        self.epochs += o.epochs;
        self.migrations += o.migrations;
        self.reclaimed_pages += o.reclaimed_pages;
        self.oom_kills += o.oom_kills;
        self.known_bug_hits += o.known_bug_hits;
        self.wall += o.wall;
    }
}

impl fmt::Display for SoakReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.counts;
        writeln!(
            f,
            "policy {}: {} ops in {:.1?} ({} epochs, {} checks)",
            self.policy, c.ops, self.wall, self.epochs, c.checks
        )?;
        writeln!(
            f,
            "  violations {}  lost pages {}  known-bug hits {}",
            self.violations, self.lost_pages, self.known_bug_hits
        )?;
        writeln!(
            f,
            "  allocs {} (failed {})  frees {}  splits {}  alloc_at {}  rejected misuse {}",
            c.allocs, c.alloc_fail, c.frees, c.splits, c.alloc_at, c.rejected
        )?;
        writeln!(f, "  contig ok {} failed {}  compactions {}  grows {} ({} pages)  drains {}  background {}", c.contig_ok, c.contig_fail, c.compactions, c.grows, c.grown_pages, c.drains, c.background_runs)?;
        write!(
            f,
            "  embedder: migrations {}  reclaimed pages {}  oom kills {}",
            self.migrations, self.reclaimed_pages, self.oom_kills
        )?;
        for v in &self.violation_samples {
            write!(f, "\n  VIOLATION: {v}")?;
        }
        Ok(())
    }
}

/// The soak layout: a DMA32 SPB (with a hole and a reservation) below a Normal zone of
/// `normal_spbs + uninit_spbs` SPBs whose top `uninit_spbs` are uninitialised, and room for
/// `hotplug_spbs` more above it. Returns the layout and the pfn limit.
pub fn soak_layout(mem: &SoakMemory) -> (MemoryLayout, Pfn) {
    let g = mem.geometry;
    let s = g.spb_pages();
    let pb = g.pageblock_pages();
    let mut d32 = ZoneSpec::plain(ZoneKind::Dma32, PfnRange::new(s, 2 * s));
    d32.holes.push(PfnRange::new(s + 2 * pb, s + 3 * pb));
    d32.reserved.push(Reservation {
        range: PfnRange::new(2 * s - pb / 2, 2 * s),
        kind: ReserveKind::BounceBuffers,
    });
    let top = (2 + mem.normal_spbs.max(1) + mem.uninit_spbs) * s;
    let nend = top - mem.tail_pages.min(pb - 1);
    let mut n = ZoneSpec::plain(ZoneKind::Normal, PfnRange::new(2 * s, nend));
    if mem.uninit_spbs > 0 {
        n.uninit
            .push(PfnRange::new(top - mem.uninit_spbs * s, nend));
    }
    n.reserved.push(Reservation {
        range: PfnRange::new(2 * s + 5, 2 * s + 7),
        kind: ReserveKind::KernelImage,
    });
    (
        MemoryLayout {
            geometry: g,
            zones: vec![d32, n],
        },
        top + mem.hotplug_spbs * s,
    )
}

/// The machine of one soak epoch: its layout, pfn limit and CPU count.
///
/// With [`SoakOptions::vary`] each epoch draws its own machine, with `memory` and `nr_cpus` as
/// upper bounds: 1..=normal_spbs Normal SPBs, 0..=uninit_spbs of them deferred, 0..=hotplug_spbs
/// of hot-add room, half the time a Normal zone that ends inside its last pageblock, and
/// 1..=nr_cpus CPUs. One fixed machine let a 10 M-operation soak miss a panic that needs a
/// partial last pageblock owned by a CPU (issue 13); a soak of many short epochs now covers
/// small and odd shapes too. The draw uses its own PRNG stream, so the operations of an epoch
/// are the same with and without `vary`.
pub fn epoch_machine(o: &SoakOptions, epoch: u64) -> (MemoryLayout, Pfn, usize) {
    let nr_cpus = o.nr_cpus.max(1);
    if !o.vary {
        let (layout, limit) = soak_layout(&o.memory);
        return (layout, limit, nr_cpus);
    }
    let mut rng = epoch_rng(o.seed ^ 0x5eed_1a70_0f00_0001, epoch);
    let m = &o.memory;
    let pb = m.geometry.pageblock_pages();
    let mem = SoakMemory {
        geometry: m.geometry,
        normal_spbs: rng.gen_range(1..=m.normal_spbs.max(1)),
        uninit_spbs: rng.gen_range(0..=m.uninit_spbs),
        hotplug_spbs: rng.gen_range(0..=m.hotplug_spbs),
        tail_pages: if rng.gen_bool(0.5) {
            rng.gen_range(1..pb)
        } else {
            0
        },
    };
    let (layout, limit) = soak_layout(&mem);
    (layout, limit, rng.gen_range(1..=nr_cpus))
}

/// Generate one soak operation: a realistic mix, most of it allocations and frees, with
/// every other kind (and every misuse) present.
fn soak_op(rng: &mut Pcg64, geo: Geometry, nz: u8, limit: Pfn, nr_cpus: u16) -> Op {
    let r = rng.gen_range(0..1000u32);
    let order = |rng: &mut Pcg64| -> u8 {
        match rng.gen_range(0..100) {
            0..=69 => 0,
            70..=84 => 1,
            85..=92 => rng.gen_range(2..=3),
            _ => rng.gen_range(0..=geo.max_order),
        }
    };
    let gfp = |rng: &mut Pcg64| -> Gfp {
        if rng.gen_ratio(1, 50) {
            Gfp(rng.gen())
        } else {
            GFPS[rng.gen_range(0..GFPS.len())]
        }
    };
    match r {
        0..=439 => Op::Alloc {
            order: order(rng),
            gfp: gfp(rng),
            cpu: rng.gen_range(0..nr_cpus),
            trylock: rng.gen_ratio(1, 20),
        },
        440..=459 => Op::Alloc {
            order: rng.gen_range(0..=geo.max_order + 2),
            gfp: Gfp(rng.gen()),
            cpu: rng.gen_range(0..nr_cpus + 2),
            trylock: false,
        },
        460..=859 => Op::Free {
            pick: rng.gen(),
            cpu: rng.gen_range(0..nr_cpus + 1),
        },
        860..=884 => Op::FreeOther {
            how: rng.gen(),
            pick: rng.gen(),
            arg: rng.gen(),
            cpu: rng.gen_range(0..nr_cpus),
        },
        885..=899 => Op::Split {
            pick: rng.gen(),
            new_order: rng.gen(),
        },
        900..=904 => Op::SplitOther {
            how: rng.gen(),
            pick: rng.gen(),
            arg: rng.gen(),
            new_order: rng.gen_range(0..=geo.spb_order),
        },
        905..=919 => {
            let order = order(rng);
            Op::AllocAt {
                pfn: rng.gen_range(0..limit) & !((1u64 << order) - 1),
                order,
                gfp: gfp(rng),
            }
        }
        920..=939 => Op::Contig {
            order: if rng.gen_ratio(3, 4) {
                geo.spb_order
            } else {
                rng.gen_range(geo.pageblock_order..=geo.spb_order)
            },
            gfp: Gfp::HIGHUSER_MOVABLE,
        },
        940..=944 => Op::Contig {
            order: rng.gen_range(0..=geo.spb_order + 1),
            gfp: gfp(rng),
        },
        945..=954 => Op::Compact {
            zone: rng.gen_range(0..nz),
            order: rng
                .gen_ratio(3, 4)
                .then(|| rng.gen_range(0..=geo.max_order)),
            prio: rng.gen(),
            mt: rng.gen(),
            daemon: rng.gen(),
        },
        955..=964 => Op::Drain,
        965..=984 => Op::Background {
            step_ns: [1_000_000, 50_000_000, 250_000_000, 1_000_000_000][rng.gen_range(0..4)],
        },
        985..=992 => Op::GrowNext {
            zone: rng.gen_range(0..nz),
            pages: [
                1,
                geo.pageblock_pages(),
                1u64 << geo.max_order,
                geo.spb_pages(),
            ][rng.gen_range(0..4)],
        },
        _ => {
            let start = rng.gen_range(0..limit + 64);
            let len = rng.gen_range(0..geo.spb_pages() * 2);
            Op::Grow {
                zone: rng.gen_range(0..=nz),
                start,
                end: if rng.gen_ratio(1, 8) {
                    start.saturating_sub(len)
                } else {
                    start + len
                },
            }
        }
    }
}

/// The PRNG of one epoch: epochs are independent, so any epoch can be regenerated alone.
fn epoch_rng(seed: u64, epoch: u64) -> Pcg64 {
    Pcg64::seed_from_u64(seed ^ epoch.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// The allocator configuration of a soak.
pub fn soak_config(o: &SoakOptions, nr_cpus: usize) -> Config {
    Config {
        policy: o.policy.clone(),
        nr_cpus: nr_cpus.max(1),
        check_every: 0,
        ..Config::default()
    }
}

/// Regenerate the first `n` operations of epoch `epoch` of a soak, with the embedder's seed.
pub fn epoch_ops(o: &SoakOptions, epoch: u64, n: u64) -> (u64, Vec<Op>) {
    let (layout, limit, nr_cpus) = epoch_machine(o, epoch);
    let mut rng = epoch_rng(o.seed, epoch);
    let env_seed = rng.gen();
    let nz = layout.zones.len() as u8;
    let ops = (0..n)
        .map(|_| soak_op(&mut rng, layout.geometry, nz, limit, nr_cpus as u16))
        .collect();
    (env_seed, ops)
}

/// Replay `ops` on a fresh soak allocator, the full check every `check_every` operations (and
/// after the last). Returns the index of the first failing operation and the violation.
/// With `trace`, every concrete API call and its result is printed to stderr.
pub fn replay(
    o: &SoakOptions,
    epoch: u64,
    env_seed: u64,
    ops: &[Op],
    check_every: u64,
    trace: bool,
) -> Result<(), (usize, String)> {
    let (layout, limit, nr_cpus) = epoch_machine(o, epoch);
    let mut h = Harness::new(&layout, soak_config(o, nr_cpus), limit, env_seed, false)
        .map_err(|e| (0, e))?;
    h.known_bugs = o.known_bugs.clone();
    h.trace = trace;
    h.m.trace = trace;
    let n = ops.len();
    for (i, op) in ops.iter().enumerate() {
        let r = catch_unwind(AssertUnwindSafe(|| {
            h.step(op)?;
            if (check_every > 0 && (i as u64 + 1) % check_every == 0) || i + 1 == n {
                h.check()?;
            }
            Ok::<(), String>(())
        }));
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err((i, e)),
            Err(p) => return Err((i, format!("panic: {}", panic_message(&*p)))),
        }
    }
    Ok(())
}

/// The shape of a violation message: digits and hex numbers blanked, so that the same bug at
/// another pfn compares equal.
pub fn violation_class(msg: &str) -> String {
    let mut out = String::new();
    let mut last_digit = false;
    for w in msg.split_inclusive(|c: char| !c.is_ascii_alphanumeric()) {
        let core = w.trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
        let is_num = !core.is_empty()
            && (core.chars().all(|c| c.is_ascii_digit())
                || (core.starts_with("0x") && core[2..].chars().all(|c| c.is_ascii_hexdigit())));
        if is_num {
            if !last_digit {
                out.push('N');
            }
            out.push_str(&w[core.len()..]);
        } else {
            out.push_str(w);
        }
        last_digit = is_num;
    }
    out
}

/// Delta-debug `ops` down to a short sequence that still produces a violation of the same
/// class (checking every `check_every` operations while searching). Slow for long inputs, but
/// each replay is cheap in release builds.
pub fn minimize(
    o: &SoakOptions,
    epoch: u64,
    env_seed: u64,
    ops: &[Op],
    check_every: u64,
) -> Vec<Op> {
    let Err((i, e)) = replay(o, epoch, env_seed, ops, check_every, false) else {
        return ops.to_vec();
    };
    let class = violation_class(&e);
    let fails = |v: &[Op]| matches!(replay(o, epoch, env_seed, v, check_every, false), Err((_, e)) if violation_class(&e) == class);
    let mut cur: Vec<Op> = ops[..=i].to_vec();
    let mut chunk = cur.len().div_ceil(2).max(1);
    loop {
        let mut removed = false;
        let mut start = 0;
        while start < cur.len() {
            let end = (start + chunk).min(cur.len());
            let mut cand = Vec::with_capacity(cur.len() - (end - start));
            cand.extend_from_slice(&cur[..start]);
            cand.extend_from_slice(&cur[end..]);
            if !cand.is_empty() && fails(&cand) {
                cur = cand;
                removed = true;
            } else {
                start = end;
            }
        }
        if chunk == 1 && !removed {
            break;
        }
        if !removed {
            chunk = chunk.div_ceil(2);
        }
    }
    // cut what follows the first failure with a check after every operation
    if let Err((i, _)) = replay(o, epoch, env_seed, &cur, 1, false) {
        cur.truncate(i + 1);
    }
    cur
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_string()
    }
}

/// Run a soak: `ops` random operations in epochs of `epoch_ops`, the full check every
/// `check_every` operations, and at the end of each epoch free everything and count lost pages.
/// A violation (a failed check, a result the model contradicts, a panic inside the allocator)
/// is counted and ends the epoch, since the state can no longer be trusted; the next epoch
/// starts from a fresh allocator.
pub fn run(o: &SoakOptions) -> SoakReport {
    let t0 = Instant::now();
    let label = if o.policy.kind != PolicyKind::Spb || o.policy.spb == SpbSwitches::all_on() {
        o.policy.kind.name().to_string()
    } else {
        o.policy.label()
    };
    let mut rep = SoakReport {
        policy: label,
        ..SoakReport::default()
    };
    let epoch_len = if o.epoch_ops == 0 {
        o.ops.max(1)
    } else {
        o.epoch_ops
    };
    let mut done = 0u64;
    let note = |rep: &mut SoakReport, msg: String| {
        rep.violations += 1;
        if rep.violation_samples.len() < 10 {
            rep.violation_samples.push(msg);
        }
    };
    while done < o.ops {
        let epoch = rep.epochs;
        rep.epochs += 1;
        let (layout, limit, nr_cpus) = epoch_machine(o, epoch);
        let (geo, nz) = (layout.geometry, layout.zones.len() as u8);
        let mut rng = epoch_rng(o.seed, epoch);
        let mut h = match Harness::new(&layout, soak_config(o, nr_cpus), limit, rng.gen(), false) {
            Ok(h) => h,
            Err(e) => {
                note(&mut rep, format!("cannot build the allocator: {e}"));
                break;
            }
        };
        h.known_bugs = o.known_bugs.clone();
        let n = epoch_len.min(o.ops - done);
        let mut broken = false;
        for i in 0..n {
            let op = soak_op(&mut rng, geo, nz, limit, nr_cpus as u16);
            let r = catch_unwind(AssertUnwindSafe(|| {
                h.step(&op)?;
                if o.check_every > 0 && (i + 1) % o.check_every == 0 {
                    h.check()?;
                }
                Ok::<(), String>(())
            }));
            let err = match r {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e),
                Err(p) => Some(format!("panic: {}", panic_message(&*p))),
            };
            if let Some(e) = err {
                note(
                    &mut rep,
                    format!("seed {} epoch {} op {} ({:?}): {}", o.seed, epoch, i, op, e),
                );
                done += i + 1;
                broken = true;
                break;
            }
        }
        if !broken {
            done += n;
            let r = catch_unwind(AssertUnwindSafe(|| {
                h.check().and_then(|_| h.free_everything())
            }));
            match r {
                Ok(Ok(lost)) => rep.lost_pages += lost,
                Ok(Err(e)) => note(
                    &mut rep,
                    format!("seed {} epoch {} end: {}", o.seed, epoch, e),
                ),
                Err(p) => note(
                    &mut rep,
                    format!(
                        "seed {} epoch {} end: panic: {}",
                        o.seed,
                        epoch,
                        panic_message(&*p)
                    ),
                ),
            }
        }
        rep.counts.add(&h.c);
        rep.migrations += h.m.migrations;
        rep.reclaimed_pages += h.m.reclaimed_pages;
        rep.oom_kills += h.m.oom_kills;
        rep.known_bug_hits += h.known_hits;
    }
    rep.wall = t0.elapsed();
    rep
}
