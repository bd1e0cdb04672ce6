//! Contiguous allocation of an aligned range of any order (`alloc_contig_range`): 1 GiB
//! hugetlb pages and the end-of-run 1 GiB probe.
//!
//! For each candidate range (the policy picks the order: mainline tries aligned ranges from the
//! bottom of the zone; spb starts from the emptiest clean or empty SPB, patch 17): reject it if
//! it holds holes, reserved or non-movable pages; isolate its pageblocks (free pages move to the
//! ISOLATE lists, nothing new can be allocated there); drain the per-CPU lists; reclaim the
//! clean page cache ([`Env::reclaim_clean`]) and migrate every other movable page out (up to 5
//! rounds, as the kernel); when every page is free, take the range.

use alloc::vec::Vec;

use crate::cost::StallCauses;
use crate::env::{Env, MigrateOutcome};
use crate::geometry::Pfn;
use crate::gfp::{AllocFlags, Gfp};
use crate::migratetype::MigrateType;
use crate::page::{PageMeta, PageState};
use crate::pageblock::{pbflag, Acct};
use crate::policy::spb_contig::{self, ContigPlan};
use crate::vmstat::Vm;
use crate::zone::{Zone, ZoneId};
use crate::{AllocRequest, Allocator};

/// Pages reclaimed at a time when a migration target cannot be found.
pub const MIGRATE_RECLAIM_BATCH: u64 = 1024;

/// The mask a migration target is allocated with ([`Allocator::migrate_out`]); its highest
/// zone is the one whose `lowmem_reserve` the targets' watermark test applies (spb-next's fit
/// test reads it too: `policy::spb_contig::fits`).
pub(crate) const MIGRATION_TARGET_GFP: Gfp = Gfp::HIGHUSER_MOVABLE.with(Gfp::NOWARN);

/// Reclaim rounds a contiguous allocation's migration target may take: the kernel's
/// `alloc_migration_target` for `alloc_contig_range` asks with `__GFP_RETRY_MAYFAIL`, whose
/// slow path reclaims and retries for as long as reclaim makes progress (`should_reclaim_retry`,
/// at most `MAX_RECLAIM_RETRIES` = 16 rounds without progress). The model stops at the first
/// round that frees nothing, and after 16 rounds in any case, so one target costs at most 16
/// batches of [`MIGRATE_RECLAIM_BATCH`].
pub const CONTIG_TARGET_RECLAIM_ROUNDS: u32 = 16;

/// Reclaim rounds a policy's evacuation target may take in the caller's context (spb's and
/// spb-next's evacuations): one batch, then the evacuation stops. The kernel's compaction
/// never reclaims for a target (its targets are free pages); the series' evacuation is
/// compaction-like, so it gets one batch and no retries, which bounds the work it adds to the
/// request that runs it.
pub const EVACUATE_TARGET_RECLAIM_ROUNDS: u32 = 1;

/// Whose move a migration target is for: how many reclaim rounds it may take
/// ([`CONTIG_TARGET_RECLAIM_ROUNDS`], [`EVACUATE_TARGET_RECLAIM_ROUNDS`]) and which stall cause
/// each round counts as ([`crate::cost::StallCauses`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TargetFor {
    /// A contiguous allocation's range.
    Contig,
    /// A policy's evacuation (`policy::Core::migrate_out`).
    Evacuation,
    /// A long-term pin's move out of a clean SPB ([`Allocator::longterm_pin`]): best effort,
    /// no reclaim, never a fresh or clean SPB (pinned in place instead).
    LongtermPin,
}

impl TargetFor {
    fn reclaim_rounds(self) -> u32 {
        match self {
            TargetFor::Contig => CONTIG_TARGET_RECLAIM_ROUNDS,
            TargetFor::Evacuation => EVACUATE_TARGET_RECLAIM_ROUNDS,
            TargetFor::LongtermPin => 0,
        }
    }
    /// The target's mask and ALLOC flags, and whether a fragmenting fallback may serve it when
    /// the non-fragmenting search finds nothing.
    fn target_request(self) -> (Gfp, AllocFlags, bool) {
        match self {
            TargetFor::Contig | TargetFor::Evacuation => (
                MIGRATION_TARGET_GFP,
                AllocFlags::WMARK_MIN
                    .with(AllocFlags::NOFRAGMENT)
                    .with(AllocFlags::CMA),
                true,
            ),
            // the kernel pins inside a `memalloc_pin_save` scope, which takes __GFP_MOVABLE
            // off the target (an unmovable page, out of ZONE_MOVABLE and CMA). The SPB
            // analogue keeps the page movable (it can move again once unpinned, and it claims
            // no pageblock) and puts it where a pin costs the fewest 1 GiB pages: PIN_TARGET.
            TargetFor::LongtermPin => (
                MIGRATION_TARGET_GFP,
                AllocFlags::WMARK_LOW
                    .with(AllocFlags::NOFRAGMENT)
                    .with(AllocFlags::PIN_TARGET),
                false,
            ),
        }
    }
}

/// Why one candidate range was not obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RangeFail {
    /// Rejected before isolation (holes, reserved, non-movable, busy).
    Rejected,
    /// A page would not move (pinned).
    Refused,
    /// No migration target memory.
    NoTarget,
}

/// Why a contiguous allocation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContigError {
    /// Order below the pageblock order or above the SPB order.
    BadOrder,
    /// No candidate range could be taken; the counts say why ranges were rejected.
    Failed(ContigStats),
}

/// What happened to the candidate ranges.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ContigStats {
    pub ranges_tried: u32,
    /// Rejected: holes or reserved pages.
    pub reserved: u32,
    /// Rejected: non-movable pages.
    pub unmovable: u32,
    /// Rejected: already isolated, or holding a block of an earlier contiguous allocation (a
    /// hugetlb page).
    pub busy: u32,
    /// Gave up: migration failed (pinned pages, no target memory).
    pub migrate_failed: u32,
    /// Pages migrated (in the successful range and failed ones).
    pub pages_migrated: u64,
    /// Skipped before isolation: its movable pages exceed the free memory above min plus the
    /// reclaimable memory (spb-next `contig_fit`).
    pub no_room: u32,
    /// Large blocks split to migrate their base pages (spb-next `contig_split`).
    pub split: u32,
    /// Skipped before isolation: holds a block the embedder reports maybe pinned (spb-next
    /// `contig_pinned`).
    pub pinned: u32,
}

impl core::fmt::Display for ContigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ContigError::BadOrder => {
                f.write_str("order must be between the pageblock order and the SPB order")
            }
            ContigError::Failed(s) => {
                write!(
                    f,
                    "no range could be allocated ({} tried: {} with holes/reserved, {} with unmovable pages, {} busy, {} migration failures",
                    s.ranges_tried, s.reserved, s.unmovable, s.busy, s.migrate_failed
                )?;
                if s.no_room > 0 {
                    write!(f, ", {} without room for their movable pages", s.no_room)?;
                }
                if s.pinned > 0 {
                    write!(f, ", {} holding pinned pages", s.pinned)?;
                }
                f.write_str(")")
            }
        }
    }
}

impl Zone {
    /// If a free buddy larger than `order` covers `start`, split it so that the aligned block
    /// of `order` at `start` is a free buddy of its own (the kernel splits straddling buddies
    /// when isolating a range).
    pub fn split_straddling(&mut self, start: Pfn, order: u8) {
        let Some((h, st)) = crate::allocator::find_head(self, start) else {
            return;
        };
        let m = *self.page(h);
        if st != PageState::Free || m.order <= order {
            return;
        }
        let mt = MigrateType::from_u8(m.mt).unwrap_or(MigrateType::Movable);
        self.list_del(h);
        let (mut cur, mut co) = (h, m.order);
        while co > order {
            co -= 1;
            let upper = cur + (1u64 << co);
            let (keep, other) = if start >= upper {
                (upper, cur)
            } else {
                (cur, upper)
            };
            let i = self.idx(other);
            self.pages[i] = PageMeta {
                state: PageState::Free,
                order: co,
                ..PageMeta::TAIL
            };
            self.list_add(other, co, mt, false);
            cur = keep;
        }
        let i = self.idx(cur);
        self.pages[i] = PageMeta {
            state: PageState::Free,
            order,
            ..PageMeta::TAIL
        };
        self.list_add(cur, order, mt, false);
    }
}

/// Free a contiguous allocation (order above the buddy maximum) back to the buddy lists.
pub(crate) fn release_contig(z: &mut Zone, pfn: Pfn, order: u8) {
    let n = 1u64 << order;
    let mt = MigrateType::from_u8(z.page(pfn).mt).unwrap_or(MigrateType::Movable);
    let i = z.idx(pfn);
    z.pages[i] = PageMeta::TAIL;
    let si = z.spb_idx(pfn);
    if order >= z.geo.spb_order {
        z.spbs[si].contig_allocated = false;
    }
    z.account(pfn, n, Acct::Alloc(mt), Acct::Free);
    for (p, o) in crate::zone::carve(crate::layout::PfnRange::new(pfn, pfn + n), z.geo.max_order) {
        z.free_block(p, o);
    }
}

/// Does `[start, end)` of zone `z` hold, or lie inside, an allocated block larger than the
/// buddy allocator's largest order? Only a contiguous allocation makes one (a hugetlb page),
/// and it is aligned to its size, so its head is at a multiple of `2^(max_order + 1)` inside
/// the range or at the range's start aligned down to its order.
fn holds_contig_block(z: &Zone, start: Pfn, end: Pfn) -> bool {
    let geo = &z.geo;
    // the order of the block above the buddy orders whose head is `p`, if any
    let big = |p: Pfn| {
        let m = z.page(p);
        (m.state == PageState::Alloc && m.order > geo.max_order).then_some(m.order)
    };
    for g in geo.max_order + 1..=geo.spb_order {
        let h = start & !((1u64 << g) - 1);
        if h >= z.span.start && h < start && big(h).is_some_and(|o| h + (1u64 << o) > start) {
            return true;
        }
    }
    let step = 1u64 << (geo.max_order + 1);
    let mut p = start.div_ceil(step) * step;
    while p < end {
        if big(p).is_some() {
            return true;
        }
        p += step;
    }
    false
}

/// The next pfn a head-by-head walk must look at after `p`, a page that is not a block head.
///
/// A tail page lies inside exactly one block whose (aligned) head precedes it, and no head
/// lies between `p` and that block's end, so the walk may jump there: the range walks of a
/// contiguous allocation act only on heads, and stepping through a large block's tail one pfn
/// at a time made them cost the range's pages instead of its blocks (at 1 TiB, 79 % of a
/// vanilla `syzkaller-256g` run, with the skip of pageblocks without free pages). Returns `p + 1` when no enclosing head is found.
#[inline]
fn skip_tail(z: &Zone, p: Pfn) -> Pfn {
    if z.page(p).state == PageState::Tail {
        for o in 1..=z.geo.spb_order {
            let h = p & !((1u64 << o) - 1);
            if h < z.span.start {
                break;
            }
            let m = *z.page(h);
            if matches!(
                m.state,
                PageState::Free | PageState::Alloc | PageState::Pcp | PageState::Isolated
            ) {
                let e = h + (1u64 << m.order);
                if e > p {
                    return e;
                }
                // a head whose block ends before `p`: the enclosing block is larger
            }
        }
    }
    p + 1
}

/// The pfn after the block whose head is `p` (`m` its record): a head-by-head walk's step.
#[inline]
pub(crate) fn after_block(z: &Zone, p: Pfn, m: &crate::page::PageMeta) -> Pfn {
    match m.state {
        PageState::Alloc | PageState::Free | PageState::Pcp | PageState::Isolated => {
            p + (1u64 << m.order)
        }
        _ => skip_tail(z, p),
    }
}

/// How many pages ahead of the block it is moving a contiguous allocation hints the embedder
/// ([`Env::prefetch`]). Base pages of one range have records scattered over the embedder's
/// memory, one miss each; the hints keep a few dozen of those misses in flight while the
/// current block moves (a block of the pageblock order is hinted one block ahead). Measured in
/// the lab at 1 TiB: the record loads of its `reclaim_clean` took 1 743 samples with no hint,
/// 1 316 with 16 pages ahead, 1 032 with 64 (BENCHMARKS.md). Any value is correct: only the
/// speed depends on it.
const PREFETCH_AHEAD: u64 = 64;

/// Hint the embedder of every allocated block whose head lies in `[from, upto.min(end))`
/// (page records are read in order, a few ahead of the walk); returns where the next call
/// starts. Reads only; a stale record (a block freed or moved meanwhile) costs one wasted hint.
fn prefetch_ahead(z: &Zone, mut from: Pfn, upto: Pfn, end: Pfn, env: &dyn Env) -> Pfn {
    while from < upto.min(end) {
        let m = *z.page(from);
        if m.state == PageState::Alloc {
            env.prefetch(m.cookie());
        }
        from = after_block(z, from, &m);
    }
    from
}

impl Allocator {
    /// Allocate an aligned block of `2^order` pages (order from the pageblock order up to the
    /// SPB order), migrating movable pages out of the way. `gfp` selects the zones.
    ///
    /// The call is one slow-path entry of [`Allocator::take_request_cost`]: its direct work is
    /// the pages it migrated and the pages reclaimed for their targets.
    pub fn alloc_contig(
        &mut self,
        order: u8,
        gfp: Gfp,
        cookie: u32,
        env: &mut dyn Env,
    ) -> Result<Pfn, ContigError> {
        let before = self.work_snap();
        let r = self.alloc_contig_unmeasured(order, gfp, cookie, env);
        let d = before.since(&self.work_snap());
        self.req_cost.add_entry(&d);
        r
    }

    fn alloc_contig_unmeasured(
        &mut self,
        order: u8,
        gfp: Gfp,
        cookie: u32,
        env: &mut dyn Env,
    ) -> Result<Pfn, ContigError> {
        if order < self.geo.pageblock_order || order > self.geo.spb_order {
            return Err(ContigError::BadOrder);
        }
        let pages = 1u64 << order;
        let highest = gfp.highest_zone();
        let mut stats = ContigStats::default();
        for zi in (0..self.zones.len()).rev() {
            if self.zones[zi].kind > highest {
                continue;
            }
            let plan = self.policy.contig_plan(&self.zones[zi], pages);
            let mut clean = Vec::new();
            if plan.clean_first {
                let z = &self.zones[zi];
                env.clean_cache_by_range(z.span.start, z.span.end, pages, &mut clean);
            }
            let cands = self
                .policy
                .contig_candidates(zi, &self.zones[zi], pages, &clean);
            for (k, &start) in cands.iter().enumerate() {
                stats.ranges_tried += 1;
                if plan.fit
                    && !spb_contig::fits(
                        &self.zones,
                        zi,
                        start,
                        pages,
                        env.reclaimable_without_swap(),
                        plan.fit_reserves,
                    )
                {
                    stats.no_room += 1;
                    continue;
                }
                if plan.pinned && self.range_maybe_pinned(zi, start, pages, env) {
                    stats.pinned += 1;
                    continue;
                }
                self.policy
                    .contig_trying(zi, &self.zones[zi], pages, &cands[k..]);
                let r = self.try_contig_range(zi, start, order, cookie, plan, &mut stats, env);
                let z = &self.zones[zi];
                self.policy.contig_tried(zi, z, pages, start, r.is_ok());
                match r {
                    Ok(p) => {
                        self.vm.inc(Vm::ContigAllocSuccess);
                        return Ok(p);
                    }
                    // later candidates need at least as many targets (the plan's policy
                    // orders them by movable pages, or by those less the clean page cache
                    // with `contig_clean_first`): they would run out of targets too
                    Err(RangeFail::NoTarget) if plan.fit => break,
                    Err(_) => {}
                }
            }
        }
        self.vm.inc(Vm::ContigAllocFail);
        Err(ContigError::Failed(stats))
    }

    /// Does the range hold a movable allocated block the embedder reports maybe pinned? Walks
    /// block heads of the pageblocks that hold movable pages only.
    pub(crate) fn range_maybe_pinned(
        &self,
        zi: ZoneId,
        start: Pfn,
        pages: u64,
        env: &dyn Env,
    ) -> bool {
        let z = &self.zones[zi];
        let pbp = self.geo.pageblock_pages();
        let end = (start + pages).min(z.span.end);
        let mut p = start.max(z.span.start);
        while p < end {
            if p & (pbp - 1) == 0 && z.pb(p).movable_pages() == 0 {
                p += pbp;
                continue;
            }
            let m = *z.page(p);
            if m.state == PageState::Alloc
                && m.mt == MigrateType::Movable as u8
                && env.maybe_pinned(p, m.cookie())
            {
                return true;
            }
            p = after_block(z, p, &m);
        }
        false
    }

    fn set_isolated(&mut self, zi: ZoneId, start: Pfn, end: Pfn, on: bool) {
        let pbp = self.geo.pageblock_pages();
        let z = &mut self.zones[zi];
        let mut b = start;
        while b < end {
            let i = z.pb_idx(b);
            if on {
                z.pageblocks[i].flags |= pbflag::ISOLATE;
            } else {
                z.pageblocks[i].flags &= !pbflag::ISOLATE;
            }
            if z.pageblocks[i].free == 0 {
                // no free page starts or lies here (`free` counts every page of a free buddy
                // in this pageblock): nothing to move, and the walk below would cost the
                // pageblock's pages for nothing
                b += pbp;
                continue;
            }
            let mt = z.pageblocks[i].migratetype();
            // move free buddies to the ISOLATE lists (or back); a buddy larger than a pageblock
            // is moved once, by its first pageblock
            let span = z.pb_span(b);
            let mut p = span.start;
            while p < span.end {
                let m = *z.page(p);
                if m.state == PageState::Free {
                    let want = if on { MigrateType::Isolate } else { mt };
                    if m.mt != want as u8 {
                        z.list_move(p, want, true);
                    }
                    p += 1u64 << m.order;
                } else if matches!(
                    m.state,
                    PageState::Alloc | PageState::Pcp | PageState::Isolated
                ) {
                    p += 1u64 << m.order;
                } else {
                    p = skip_tail(z, p);
                }
            }
            b += pbp;
        }
        if !on {
            // Re-free every free block of the range: blocks merged across pageblocks while
            // isolated are freed pageblock by pageblock, each under its own type (the kernel's
            // un-isolation does the same), and buddies that could not merge across the
            // isolated range merge now.
            let mut p = start;
            while p < end {
                if p & (pbp - 1) == 0 && z.pb(p).free == 0 {
                    // a pageblock without a free page holds no free head (see above)
                    p += pbp;
                    continue;
                }
                let m = *z.page(p);
                if m.state == PageState::Free {
                    let o = m.order;
                    z.list_del(p);
                    let i = z.idx(p);
                    z.pages[i] = PageMeta::TAIL;
                    z.free_block(p, o);
                    p += 1u64 << o;
                } else if matches!(
                    m.state,
                    PageState::Alloc | PageState::Pcp | PageState::Isolated
                ) {
                    p += 1u64 << m.order;
                } else {
                    p = skip_tail(z, p);
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn try_contig_range(
        &mut self,
        zi: ZoneId,
        start: Pfn,
        order: u8,
        cookie: u32,
        plan: ContigPlan,
        stats: &mut ContigStats,
        env: &mut dyn Env,
    ) -> Result<Pfn, RangeFail> {
        let pages = 1u64 << order;
        let end = start + pages;
        let pbp = self.geo.pageblock_pages();
        {
            let z = &self.zones[zi];
            if start < z.span.start || end > z.span.end {
                stats.reserved += 1;
                return Err(RangeFail::Rejected);
            }
            let mut b = start;
            while b < end {
                let pb = z.pb(b);
                if pb.reserved + pb.absent > 0 {
                    stats.reserved += 1;
                    return Err(RangeFail::Rejected);
                }
                if pb.non_movable_pages() > 0 {
                    stats.unmovable += 1;
                    return Err(RangeFail::Rejected);
                }
                if pb.is_isolated() {
                    stats.busy += 1;
                    return Err(RangeFail::Rejected);
                }
                b += pbp;
            }
            // after the pageblock checks, which reject most ranges from their pageblock
            // records alone (a hugetlb page's pageblocks pass them: all movable)
            if holds_contig_block(z, start, end) {
                // a hugetlb page: the kernel's `pfn_range_valid_contig` passes over any range
                // with a `PageHuge` page (`alloc_contig_pages` never migrates one 1 GiB page
                // to make room for another)
                stats.busy += 1;
                return Err(RangeFail::Rejected);
            }
        }
        self.zones[zi].split_straddling(start, order);
        self.set_isolated(zi, start, end, true);
        self.drain_all_pcp();
        let mut ok = false;
        let mut no_target = false;
        for _round in 0..5 {
            let mut p = start;
            let mut blocked = false;
            // the embedder's records of the next blocks start loading (`Env::prefetch`)
            let mut ahead = start;
            while p < end {
                ahead = prefetch_ahead(&self.zones[zi], ahead.max(p), p + PREFETCH_AHEAD, end, env);
                let m = *self.zones[zi].page(p);
                match m.state {
                    PageState::Alloc => {
                        if m.mt != MigrateType::Movable as u8 {
                            blocked = true;
                            break;
                        }
                        // clean page cache is reclaimed, not migrated: it needs no target
                        if self.reclaim_clean(zi, p, env) {
                            p += 1u64 << m.order;
                            continue;
                        }
                        let before = self.pages_migrated;
                        let r = self.migrate_out(zi, p, TargetFor::Contig, env);
                        stats.pages_migrated += self.pages_migrated - before;
                        if r.is_none()
                            && plan.split
                            && m.order > 0
                            && self.split_allocated(zi, p, env)
                        {
                            // the same pfn again, now a base page
                            stats.split += 1;
                            continue;
                        }
                        if r != Some(true) {
                            blocked = r.is_none();
                            no_target = blocked;
                        }
                        p += 1u64 << m.order;
                    }
                    PageState::Free | PageState::Pcp | PageState::Isolated => p += 1u64 << m.order,
                    _ => p = skip_tail(&self.zones[zi], p),
                }
                if blocked {
                    break;
                }
            }
            let z = &self.zones[zi];
            let mut all_free = true;
            let mut b = start;
            while b < end {
                if z.pb(b).free as u64 != pbp {
                    all_free = false;
                    break;
                }
                b += pbp;
            }
            if all_free {
                ok = true;
                break;
            }
            if blocked {
                break;
            }
        }
        if !ok {
            stats.migrate_failed += 1;
            self.set_isolated(zi, start, end, false);
            let _ = self.zones[zi].take_cat_changes();
            return Err(if no_target {
                RangeFail::NoTarget
            } else {
                RangeFail::Refused
            });
        }
        // take the whole range
        let z = &mut self.zones[zi];
        let mut p = start;
        while p < end {
            let m = *z.page(p);
            if m.state == PageState::Free {
                z.list_del(p);
                let i = z.idx(p);
                z.pages[i] = PageMeta::TAIL;
                p += 1u64 << m.order;
            } else {
                p += 1;
            }
        }
        let mut b = start;
        while b < end {
            let i = z.pb_idx(b);
            z.pageblocks[i].flags &= !pbflag::ISOLATE;
            b += pbp;
        }
        let i = z.idx(start);
        z.pages[i] = PageMeta::alloc(order, MigrateType::Movable as u8, cookie);
        if pages == z.geo.spb_pages() {
            let si = z.spb_idx(start);
            z.spbs[si].contig_allocated = true;
        }
        z.account(start, pages, Acct::Free, Acct::Alloc(MigrateType::Movable));
        let changes = z.take_cat_changes();
        for c in changes {
            self.note_category_change(zi, c, Gfp::HIGHUSER_MOVABLE, order);
        }
        Ok(start)
    }

    /// Reclaim the movable allocated block at `pfn` instead of migrating it, if the embedder
    /// says it is clean page cache ([`Env::reclaim_clean`]): the block is freed and needs no
    /// migration target. The pages count as reclaim in the caller's context (the bill's direct
    /// reclaim, or a policy worker's). What `alloc_contig_range` does with its range before it
    /// migrates (`reclaim_clean_pages_from_list`), and spb-next's evacuations with
    /// `evacuate_reclaim_clean`.
    pub(crate) fn reclaim_clean(&mut self, zi: ZoneId, pfn: Pfn, env: &mut dyn Env) -> bool {
        let m = *self.zones[zi].page(pfn);
        if m.state != PageState::Alloc
            || m.mt != MigrateType::Movable as u8
            || !env.reclaim_clean(pfn, m.order, m.cookie())
        {
            return false;
        }
        self.free_inner(zi, pfn, m.order, MigrateType::Movable, 0, false);
        self.policy_reclaimed += 1u64 << m.order;
        true
    }

    /// Split the movable allocated block at `pfn` (order above 0) into base pages, each an
    /// allocation of its own, if the embedder splits its folio (`Env::split`). The pages stay
    /// allocated with the same migratetype, so no counter changes.
    pub(crate) fn split_allocated(&mut self, zi: ZoneId, pfn: Pfn, env: &mut dyn Env) -> bool {
        let m = *self.zones[zi].page(pfn);
        let n = 1usize << m.order;
        let mut cookies = Vec::with_capacity(n);
        if !env.split(pfn, m.order, m.cookie(), &mut cookies) {
            return false;
        }
        assert_eq!(
            cookies.len(),
            n,
            "Env::split of an order-{} block at {pfn:#x} handed back {} cookies",
            m.order,
            cookies.len()
        );
        let z = &mut self.zones[zi];
        for (i, &c) in cookies.iter().enumerate() {
            let idx = z.idx(pfn + i as u64);
            z.pages[idx] = PageMeta::alloc(0, m.mt, c);
        }
        true
    }

    /// The reclaim rounds the migration target of an order-`order` block moved for `who` may
    /// take when the free lists are dry, by the policy's rules, and whether kswapd is woken
    /// when the target is not found.
    fn target_reclaim(&self, who: TargetFor, order: u8) -> (u32, bool) {
        let p = &self.policy;
        if order > 0 && !p.large_target_may_reclaim(who) {
            // spb-next `evacuate_split_first` / `contig_split_first`: a large folio with no whole
            // target on the free lists goes back to the mover to be split, unreclaimed for
            (0, false)
        } else if self.in_policy_worker && !p.worker_targets_may_reclaim() {
            // spb-next `worker_no_reclaim`: the worker's move fails; reclaim is kswapd's
            (0, true)
        } else if !self.in_policy_worker
            && who == TargetFor::Evacuation
            && !p.caller_evacuation_targets_may_reclaim()
        {
            // spb-next `evacuate_no_reclaim`: the evacuation stops, the caller goes on
            (0, false)
        } else {
            (who.reclaim_rounds(), false)
        }
    }

    /// Migrate the movable block at `pfn` to a target obtained from the normal allocation path
    /// (fast path only, movable, min watermark), reclaiming at most `who`'s rounds of batches
    /// while the free lists stay dry and each batch frees something. Some(true) moved or
    /// dropped, Some(false) refused, None no target memory.
    pub(crate) fn migrate_out(
        &mut self,
        zi: ZoneId,
        pfn: Pfn,
        who: TargetFor,
        env: &mut dyn Env,
    ) -> Option<bool> {
        let m = *self.zones[zi].page(pfn);
        if m.order > self.geo.max_order {
            // a block only a contiguous allocation makes: no free list holds a target for it
            return None;
        }
        let (reclaim_rounds, wake_kswapd) = self.target_reclaim(who, m.order);
        let (gfp, flags, may_fragment) = who.target_request();
        let req = AllocRequest {
            order: m.order,
            gfp,
            cpu: 0,
            cookie: 0,
            trylock: false,
        };
        let (preferred, highest) = self.preferred_zone(gfp)?;
        let saved_pcp = self.cfg.pcp;
        self.cfg.pcp = false;
        let mut t = None;
        // like alloc_migration_target with __GFP_RETRY_MAYFAIL: when the free lists are dry,
        // reclaim (clean page cache, shrinkable slab; never swap) and try again, while reclaim
        // makes progress. That is the target allocation's direct reclaim, in the caller's
        // context: a stall of the preferred zone and `pgscan_direct` per round, so the bill
        // charges it to the request that migrates.
        for attempt in 0..=reclaim_rounds {
            t = self.get_page_from_freelist(req, flags, preferred, highest);
            if t.is_none() && may_fragment {
                t = self.get_page_from_freelist(
                    req,
                    flags.without(AllocFlags::NOFRAGMENT),
                    preferred,
                    highest,
                );
            }
            if t.is_some() || attempt == reclaim_rounds {
                break;
            }
            let rr = crate::env::ReclaimRequest {
                nr_pages: MIGRATE_RECLAIM_BATCH.max(1u64 << m.order),
                order: m.order,
                who: crate::env::Reclaimer::Contig,
                may_swap: false,
                shrink_slab: true,
                prefer_range: None,
            };
            let cause: fn(&mut StallCauses) -> &mut u64 = match (self.in_policy_worker, who) {
                (true, _) => |c| &mut c.workers,
                (false, TargetFor::Evacuation | TargetFor::LongtermPin) => {
                    |c| &mut c.evacuation_targets
                }
                (false, TargetFor::Contig) => |c| &mut c.contig_targets,
            };
            self.count_stall(preferred, cause);
            if self.reclaim_in_caller(rr, env) == 0 {
                break;
            }
        }
        if t.is_none() && wake_kswapd {
            self.wake_kswapd(m.order);
        }
        self.cfg.pcp = saved_pcp;
        // reclaim may have freed the source itself (clean page cache): nothing left to move
        let now = *self.zones[zi].page(pfn);
        if now.state != PageState::Alloc || now.order != m.order || now.cookie() != m.cookie() {
            if let Some(t) = t {
                let _ = self.free(t, m.order, 0);
            }
            return Some(true);
        }
        let t = t?;
        let tz = self.zone_of(t)?;
        // the target is now an allocation of ours: turn it into a held block
        {
            let z = &mut self.zones[tz];
            let n = 1u64 << m.order;
            z.account(t, n, Acct::Alloc(gfp.migratetype()), Acct::Pcp);
            let i = z.idx(t);
            z.pages[i] = PageMeta {
                state: PageState::Isolated,
                order: m.order,
                ..PageMeta::TAIL
            };
        }
        let out = self.migrate_to(zi, pfn, tz, t, env);
        if out != MigrateOutcome::Moved {
            self.zones[tz].release_held(crate::compaction::Held {
                pfn: t,
                order: m.order,
            });
        }
        for z in 0..self.zones.len() {
            let _ = self.zones[z].take_cat_changes();
        }
        Some(out != MigrateOutcome::Refused)
    }
}
