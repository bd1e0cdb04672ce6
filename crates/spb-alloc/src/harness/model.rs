//! The shadow model: live blocks, what each pfn is, zone spans, and the embedder (ModelEnv)
//! that keeps the model in step with migrations, reclaim and OOM kills.

use std::collections::{BTreeMap, VecDeque};

use super::ops::*;
use crate::{
    Env, FreedBlock, MemoryLayout, MigrateOutcome, MigrateType, Pfn, PfnRange, ReclaimRequest,
    ZoneKind,
};

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
pub(crate) enum Class {
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
    pub(crate) class: Vec<Class>,
    pub(crate) spans: Vec<PfnRange>,
    pub(crate) kinds: Vec<ZoneKind>,
    /// Every pfn the harness may touch is below this (bounds `grow_zone`).
    pub limit: Pfn,
    pub(crate) recent_free: VecDeque<(Pfn, u8)>,
    pub(crate) next_cookie: u32,
    pub(crate) rng: u64,
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
    pub(crate) fn new(layout: &MemoryLayout, limit: Pfn, seed: u64) -> Model {
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

    pub(crate) fn rand(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub(crate) fn cookie(&mut self) -> u32 {
        self.next_cookie = self.next_cookie.wrapping_add(1);
        self.next_cookie
    }

    /// The live block covering `pfn`, if any.
    pub fn covering(&self, pfn: Pfn) -> Option<(Pfn, Block)> {
        let (&h, &b) = self.live.range(..=pfn).next_back()?;
        (pfn < h + (1u64 << b.order)).then_some((h, b))
    }

    /// A live block overlapping `[p, p + n)`, if any.
    pub(crate) fn overlapping(&self, p: Pfn, n: u64) -> Option<(Pfn, Block)> {
        let end = p.saturating_add(n);
        let (&h, &b) = self.live.range(..end).next_back()?;
        (h + (1u64 << b.order) > p).then_some((h, b))
    }

    /// The first live block at or after `pick % limit`, wrapping around.
    pub(crate) fn pick(&self, pick: u64) -> Option<(Pfn, Block)> {
        let start = pick % self.limit.max(1);
        self.live
            .range(start..)
            .next()
            .or_else(|| self.live.iter().next())
            .map(|(&p, &b)| (p, b))
    }

    pub(crate) fn insert(&mut self, p: Pfn, b: Block) {
        self.live_pages += 1u64 << b.order;
        self.live.insert(p, b);
    }

    pub(crate) fn remove(&mut self, p: Pfn) -> Option<Block> {
        let b = self.live.remove(&p)?;
        self.live_pages -= 1u64 << b.order;
        if self.recent_free.len() >= 32 {
            self.recent_free.pop_front();
        }
        self.recent_free.push_back((p, b.order));
        Some(b)
    }

    pub(crate) fn zone_of(&self, p: Pfn) -> Option<usize> {
        self.spans.iter().position(|s| s.contains(p))
    }

    pub(crate) fn all_managed(&self, p: Pfn, n: u64) -> bool {
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
    pub(crate) fn check_new_block(
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
    pub(crate) fn other_pfn(&self, how: u8, pick: u64, arg: u64, max_order: u8) -> (Pfn, u8) {
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

    /// Does the model hold the block the allocator names (`pfn`, `order`, `cookie`)? If not,
    /// record an error for the embedder call `call` (its text up to the arguments) and say no.
    fn holds(&mut self, call: &str, pfn: Pfn, order: u8, cookie: u32) -> bool {
        match self.live.get(&pfn) {
            Some(b) if b.order == order && b.cookie == cookie => true,
            other => {
                let e = format!(
                    "{call}, order {order}, cookie {cookie}): the model has {other:?} there"
                );
                self.errors.push(e);
                false
            }
        }
    }
}

/// The embedder: moves pages (updating the model), sometimes refuses (pinned: every cookie
/// divisible by 11, and 5% of requests at random), sometimes drops the content (5%), reclaims
/// movable and reclaimable blocks of the model, reclaims clean page cache in place (movable
/// cookies divisible by 4 and not pinned: `Env::reclaim_clean`), and OOM-kills "processes"
/// (cookie mod 16).
pub struct ModelEnv<'a> {
    pub m: &'a mut Model,
}

impl Env for ModelEnv<'_> {
    fn migrate(&mut self, from: Pfn, to: Pfn, order: u8, cookie: u32) -> MigrateOutcome {
        let m = &mut *self.m;
        if !m.holds(
            &format!("migrate({from:#x} -> {to:#x}"),
            from,
            order,
            cookie,
        ) {
            return MigrateOutcome::Refused;
        }
        if let Err(e) = m.check_new_block("migration target", to, order, None) {
            m.errors.push(e);
            return MigrateOutcome::Refused;
        }
        let r = m.rand() % 100;
        let out = if cookie.is_multiple_of(11) || r < 5 {
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

    fn reclaim_clean(&mut self, pfn: Pfn, order: u8, cookie: u32) -> bool {
        let m = &mut *self.m;
        if !m.holds(&format!("reclaim_clean({pfn:#x}"), pfn, order, cookie) {
            return false;
        }
        let mt = m.live[&pfn].mt;
        if mt != MigrateType::Movable {
            m.errors.push(format!(
                "reclaim_clean({pfn:#x}, order {order}, cookie {cookie}): asked for a {mt:?} block"
            ));
            return false;
        }
        let clean = cookie.is_multiple_of(4) && !cookie.is_multiple_of(11);
        if clean {
            m.dropped += 1;
            m.remove(pfn);
        }
        if m.trace {
            eprintln!(
                "      env.reclaim_clean({pfn:#x}, order {order}, cookie {cookie}) = {clean}"
            );
        }
        clean
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
