//! The harness: an allocator, its shadow model and counters; one operation at a time, each
//! result checked against the model.

use super::{model::*, ops::*};
use crate::compaction::CompactPriority;
use crate::{
    AllocErrorKind, AllocRequest, Allocator, Config, ContigError, GrowError, MemoryLayout,
    MigrateType, Pfn, PfnRange,
};

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
    /// Long-term pins taken, and of them the ones that moved their block first.
    pub pins: u64,
    pub pins_moved: u64,
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
            pins,
            pins_moved,
        } = *o;
        self.pins += pins;
        self.pins_moved += pins_moved;
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
    pub(crate) digest_bad_ops: bool,
    /// Invariant-checker messages containing one of these are known core bugs and tolerated
    /// (so that a fuzzing run can look past a reported bug; see docs/reliability.md).
    pub known_bugs: Vec<String>,
    /// Checker failures tolerated because of `known_bugs`.
    pub known_hits: u64,
    /// Print every concrete API call and its result to stderr.
    pub trace: bool,
}

/// FNV-1a over the allocator state that a rejected operation must not change.
pub(crate) fn digest(a: &Allocator) -> u64 {
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
pub(crate) fn allocated_pages(a: &Allocator) -> u64 {
    a.zones
        .iter()
        .map(|z| z.managed_pages - z.free_pages - z.pcp.iter().map(|c| c.count).sum::<u64>())
        .sum()
}

pub(crate) fn managed_pages(a: &Allocator) -> u64 {
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

    /// Pages the allocator holds unallocated: the buddy lists' free pages plus every per-CPU
    /// list's pages.
    fn held_pages(&self) -> u64 {
        let pcp: u64 = self
            .a
            .zones
            .iter()
            .flat_map(|z| z.pcp.iter())
            .map(|c| c.count)
            .sum();
        self.a.free_pages() + pcp
    }

    /// Count a rejected call; a rejection must leave the allocator as it was (checked with the
    /// state digest taken `before` it, where the machine is small enough to digest).
    fn rejected_unchanged(
        &mut self,
        before: Option<u64>,
        call: impl FnOnce() -> String,
    ) -> Result<(), String> {
        self.c.rejected += 1;
        if before.is_some_and(|d| d != digest(&self.a)) {
            return self.fail(format!(
                "{} was rejected but changed the allocator state",
                call()
            ));
        }
        Ok(())
    }

    pub(crate) fn fail<T>(&self, msg: String) -> Result<T, String> {
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
                    if s.state == crate::page::PageState::Alloc
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

    pub(crate) fn tr(&self, f: impl FnOnce() -> String) {
        if self.trace {
            eprintln!("    {}", f());
        }
    }

    /// Whether `msg` is a known core bug (and count it).
    pub(crate) fn known(&mut self, msg: &str) -> bool {
        let k = self.known_bugs.iter().any(|k| msg.contains(k.as_str()));
        if k {
            self.known_hits += 1;
        }
        k
    }

    /// The allocator's invariant checker, tolerating `known_bugs`.
    pub(crate) fn checker(&mut self, what: &str) -> Result<(), String> {
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
            Op::LongtermPin { pick } => {
                let Some((p, b)) = self.m.pick(pick) else {
                    return Ok(());
                };
                let moved = self.a.longterm_pin(p, &mut ModelEnv { m: &mut self.m });
                self.tr(|| format!("a.longterm_pin({p:#x}, &mut env) = {moved}"));
                self.c.pins += 1;
                self.c.pins_moved += moved as u64;
                // moved: the model saw the migration (or the drop); else the block is where it was
                if !moved && self.m.live.get(&p) != Some(&b) {
                    return self.fail(format!(
                        "longterm_pin of {p:#x} moved nothing but the block changed"
                    ));
                }
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
                let held_before = self.held_pages();
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
                        let held = self.held_pages();
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

    pub(crate) fn free_predicted(&mut self, p: Pfn, o: u8, cpu: u16) -> Result<(), String> {
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
                self.rejected_unchanged(before, || format!("free({p:#x}, order {o})"))?
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

    pub(crate) fn split_predicted(&mut self, p: Pfn, o: u8, no: u8) -> Result<(), String> {
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
                self.rejected_unchanged(before, || format!("split({p:#x}, {o}, {no})"))?
            }
            (r, _) => {
                return self.fail(format!(
                    "split({p:#x}, {o}, {no}): got {r:?}, the model has {live:?}"
                ))
            }
        }
        Ok(())
    }

    pub(crate) fn grow_predicted(&mut self, zi: usize, range: PfnRange) -> Result<(), String> {
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
}
