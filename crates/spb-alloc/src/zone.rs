//! A zone: its page and pageblock metadata, its superpageblocks, its free lists and the buddy
//! primitives (list add/remove, split, merge) every policy is built from.
//!
//! Rule of the layer: list operations never touch the content counters; every change of what a
//! range of pages *is* (free, on a per-CPU list, allocated as some type, reserved, absent) goes
//! through [`Zone::account`], which keeps pageblock and SPB counters and the SPB lists in step.

use alloc::vec;
use alloc::vec::Vec;

use crate::freelist::{FreeArea, MAX_NR_ORDERS};
use crate::geometry::{Geometry, Pfn};
use crate::layout::{PfnRange, ZoneKind, ZoneSpec};
use crate::migratetype::{MigrateType, MIGRATE_TYPES};
use crate::page::{PageMeta, PageState};
use crate::pageblock::{Acct, PageblockMeta};
use crate::pcp::Pcp;
use crate::superpageblock::{build_lists, new_spbs, Category, SpbLists, SpbMeta};

/// Index of a zone inside the allocator.
pub type ZoneId = usize;

/// A category change of one SPB, recorded by [`Zone::account`] for the event stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CategoryChange {
    pub spb: u32,
    pub from: Category,
    pub to: Category,
}

/// Watermark indices.
pub const WMARK_MIN: usize = 0;
pub const WMARK_LOW: usize = 1;
pub const WMARK_HIGH: usize = 2;
pub const WMARK_PROMO: usize = 3;

/// Compaction bookkeeping of a zone (cached scanner positions, deferral).
#[derive(Clone, Debug, Default)]
pub struct CompactState {
    pub(crate) cached_migrate_pfn: Pfn,
    pub(crate) cached_free_pfn: Pfn,
    pub(crate) considered: u32,
    pub(crate) defer_shift: u32,
    pub(crate) order_failed: u8,
    /// Start pfns of the pageblocks marked skipped (`compaction::skip`, its invariant).
    pub(crate) skipped: Vec<Pfn>,
    /// A direct compaction's scanners met since the marks were last cleared
    /// (`compact_blockskip_flush`): kswapd clears them when it goes to sleep.
    pub(crate) blockskip_flush: bool,
}

/// One zone.
///
/// # Invariants
/// - `pages.len() == span.len()`; `pageblocks` cover `span` rounded out to pageblocks; `spbs`
///   cover it rounded out to superpageblocks.
/// - Every free buddy is on exactly one list: `areas[bucket_of(pfn)]`, at its order, under its
///   pageblock's list type.
/// - `nr_free[o][t]` equals the number of buddies on lists (o, t) over all buckets;
///   `free_pages` is the sum of their pages except ISOLATE lists.
/// - Counters in `pageblocks` and `spbs` equal a recount of page states (checked by
///   `check.rs`).
pub struct Zone {
    pub(crate) kind: ZoneKind,
    pub(crate) node: u16,
    pub(crate) geo: Geometry,
    pub(crate) span: PfnRange,
    pub(crate) pages: Vec<PageMeta>,
    pub(crate) pb_base: u64,
    pub(crate) pageblocks: Vec<PageblockMeta>,
    /// One bit per pageblock, set exactly when its `free` counter is above zero (a summary
    /// of `pageblocks` kept by every counter update, 16 KiB for 1 TiB of 2 MiB pageblocks):
    /// a walk over many pageblocks that only wants those with free pages (spb's Phase 0
    /// refill over a CPU's owned blocks) tests a bit of this small array instead of loading
    /// each 20-byte record from a table of megabytes. The checker recounts it.
    pub(crate) pb_has_free: Vec<u64>,
    /// Per CPU, per label: the pageblocks that CPU owns (`owner` = CPU + 1, spb's per-CPU
    /// ownership) that have a free page, counted (grown on demand; a CPU beyond its length
    /// owns none with free pages). spb's Phase 0 refill, which can only take free pages of
    /// owned blocks of the requested label, asks it first and skips its walk of the CPU's
    /// owned list when the count is zero (most refills, when most owned blocks are full).
    ///
    /// # Invariants
    /// - `owned_free[c][t]` is the number of pageblocks `i` with `owner == c + 1`,
    ///   `pb_has_free(i)` and label `t` (checked by `check.rs`);
    /// - it has a row for every owner a pageblock has had (`set_pb_owner` grows it).
    pub(crate) owned_free: Vec<[u32; MIGRATE_TYPES]>,
    pub(crate) spb_base: u64,
    pub(crate) spbs: Vec<SpbMeta>,
    /// Per SPB, its pages still uninitialised (deferred init: part of the SPB's
    /// `absent_pages`, handed over later by [`crate::Allocator::grow_zone`]). An SPB whose
    /// absent pages are all uninitialised will be whole: it is not lost for good
    /// ([`Zone::spb_lost_for_good`]).
    ///
    /// # Invariants
    /// `spb_uninit[i]` is the number of pages of SPB `i` in state `Uninit` (checked by
    /// `check.rs`), so at most its `absent_pages`; one entry per SPB.
    pub(crate) spb_uninit: Vec<u64>,
    pub(crate) spb_lists: SpbLists,
    /// Free lists per superpageblock (true) or one zone-wide set (false).
    pub(crate) per_spb_lists: bool,
    pub(crate) areas: Vec<FreeArea>,
    /// Free buddies per (order, list type), all buckets together.
    pub(crate) nr_free: [[u64; MIGRATE_TYPES]; MAX_NR_ORDERS],
    /// NR_FREE_PAGES: pages on buddy lists other than ISOLATE.
    pub(crate) free_pages: u64,
    /// NR_FREE_PAGES_BLOCKS: free pages in buddies of order >= pageblock_order (not isolated).
    pub(crate) free_pages_blocks: u64,
    pub(crate) nr_free_highatomic: u64,
    pub(crate) nr_reserved_highatomic: u64,
    pub(crate) present_pages: u64,
    pub(crate) managed_pages: u64,
    pub(crate) reserved_pages: u64,
    /// min, low, high, promo (without boost).
    pub(crate) wmark: [u64; 4],
    pub(crate) watermark_boost: u64,
    /// lowmem_reserve against requests whose highest zone index is i.
    pub(crate) lowmem_reserve: [u64; 4],
    pub(crate) boosted: bool,
    /// How frees tune and trim the per-CPU lists (from `Config::pcp_free_tuning`).
    pub(crate) pcp_free_tuning: crate::pcp::PcpFreeTuning,
    pub(crate) below_high: bool,
    pub(crate) pcp: Vec<Pcp>,
    pub(crate) compact: CompactState,
    /// Category changes since the last drain (for the event stream and taint accounting).
    pub(crate) cat_changes: Vec<CategoryChange>,
}

/// `n` copies of `v`, allocated fallibly (see [`Zone::new`]).
fn try_filled<T: Clone>(
    spec: &ZoneSpec,
    what: &str,
    v: T,
    n: usize,
) -> Result<Vec<T>, crate::layout::LayoutError> {
    let mut out = Vec::new();
    out.try_reserve_exact(n).map_err(|_| {
        crate::layout::LayoutError::out_of_memory(
            alloc::format!("zone {}", spec.kind.name()),
            what,
            (n as u64).saturating_mul(core::mem::size_of::<T>() as u64),
        )
    })?;
    out.resize(n, v);
    Ok(out)
}

impl Zone {
    /// Build a zone from its spec: pages in holes, reservations and uninitialised ranges get
    /// those states; everything else is freed into the buddy lists as MOVABLE blocks of the
    /// largest aligned order, like the kernel's boot-time freeing.
    ///
    /// The page and pageblock tables (sizes from the layout, that is from input) are allocated
    /// fallibly: too little memory is
    /// [`LayoutError::out_of_memory`](crate::layout::LayoutError::out_of_memory), not an
    /// abort.
    pub fn new(
        spec: &ZoneSpec,
        geo: Geometry,
        per_spb_lists: bool,
        nr_cpus: usize,
    ) -> Result<Zone, crate::layout::LayoutError> {
        let span = spec.span;
        let pbo = geo.pageblock_order as u32;
        let so = geo.spb_order as u32;
        let pb_base = span.start >> pbo;
        let pb_n = (((span.end - 1) >> pbo) - pb_base + 1) as usize;
        let spb_base = span.start >> so;
        let spb_n = (((span.end - 1) >> so) - spb_base + 1) as usize;
        let mut z = Zone {
            kind: spec.kind,
            node: spec.node,
            geo,
            span,
            pages: try_filled(spec, "page metadata", PageMeta::TAIL, span.len() as usize)?,
            pb_base,
            pageblocks: try_filled(
                spec,
                "pageblock metadata",
                PageblockMeta {
                    mt: MigrateType::Movable as u8,
                    ..Default::default()
                },
                pb_n,
            )?,
            pb_has_free: Vec::new(),
            owned_free: Vec::new(),
            spb_base,
            spbs: new_spbs(spb_base << so, spb_n, geo.spb_pages()),
            spb_uninit: alloc::vec![0; spb_n],
            spb_lists: SpbLists::default(),
            per_spb_lists,
            areas: vec![FreeArea::default(); if per_spb_lists { spb_n } else { 1 }],
            nr_free: [[0; MIGRATE_TYPES]; MAX_NR_ORDERS],
            free_pages: 0,
            free_pages_blocks: 0,
            nr_free_highatomic: 0,
            nr_reserved_highatomic: 0,
            present_pages: spec.present_pages(),
            managed_pages: 0,
            reserved_pages: spec.reserved_pages(),
            wmark: [0; 4],
            watermark_boost: 0,
            lowmem_reserve: [0; 4],
            boosted: false,
            below_high: false,
            pcp_free_tuning: crate::pcp::PcpFreeTuning::default(),
            pcp: (0..nr_cpus).map(|_| Pcp::default()).collect(),
            compact: CompactState::default(),
            cat_changes: Vec::new(),
        };
        // Pageblock counters start "absent"; pages start as tails of nothing and get their
        // state below (holes, reservations, uninitialised memory, managed blocks).
        let pbp = geo.pageblock_pages();
        for pb in z.pageblocks.iter_mut() {
            pb.absent = pbp as u16;
        }
        // the parts of the first and last pageblocks outside the span stay absent
        let mut marks: Vec<(PfnRange, PageState)> = Vec::new();
        for r in &spec.reserved {
            marks.push((r.range, PageState::Reserved));
        }
        for r in &spec.uninit {
            marks.push((*r, PageState::Uninit));
            z.add_uninit(*r);
        }
        for h in &spec.holes {
            marks.push((*h, PageState::Hole));
        }
        marks.sort_by_key(|m| m.0.start);
        // Walk the span: gaps between marks are managed.
        let mut cursor = span.start;
        let mut managed: Vec<PfnRange> = Vec::new();
        for (r, st) in &marks {
            if r.start > cursor {
                managed.push(PfnRange::new(cursor, r.start));
            }
            for pfn in r.start..r.end {
                z.pages[(pfn - span.start) as usize] = PageMeta::with_state(*st);
            }
            if *st == PageState::Reserved {
                z.set_counts_direct(r.start, r.len(), Acct::Reserved);
            }
            cursor = cursor.max(r.end);
        }
        if cursor < span.end {
            managed.push(PfnRange::new(cursor, span.end));
        }
        for r in managed {
            z.set_counts_direct(r.start, r.len(), Acct::Free);
            z.managed_pages += r.len();
            for (pfn, order) in carve(r, geo.max_order) {
                z.pages[(pfn - span.start) as usize] = PageMeta {
                    state: PageState::Free,
                    order,
                    ..PageMeta::TAIL
                };
                z.list_add(pfn, order, MigrateType::Movable, true);
            }
        }
        z.rebuild_pb_has_free();
        // SPB aggregates from the pageblock counters, then the lists.
        for i in 0..z.spbs.len() {
            z.recompute_spb(i);
        }
        z.spb_lists = build_lists(&mut z.spbs);
        Ok(z)
    }

    /// Move `n` pages starting at `pfn` from Absent to `to` in the pageblock counters only
    /// (construction and growth, before SPB aggregates are computed).
    fn set_counts_direct(&mut self, pfn: Pfn, n: u64, to: Acct) {
        let pbp = self.geo.pageblock_pages();
        let mut p = pfn;
        let end = pfn + n;
        while p < end {
            let pb_end = (p | (pbp - 1)) + 1;
            let cnt = end.min(pb_end) - p;
            let i = self.pb_idx(p);
            let pb = &mut self.pageblocks[i];
            pb.absent -= cnt as u16;
            *pb.counter(to) += cnt as u16;
            p += cnt;
        }
    }

    /// [`Zone::pb_has_free`] and [`Zone::owned_free`] recomputed from the pageblock records
    /// (construction, growth).
    fn rebuild_pb_has_free(&mut self) {
        self.pb_has_free.clear();
        self.pb_has_free
            .resize(self.pageblocks.len().div_ceil(64), 0);
        for i in 0..self.pageblocks.len() {
            if self.pageblocks[i].free > 0 {
                self.pb_has_free[i / 64] |= 1 << (i % 64);
            }
        }
        self.owned_free
            .iter_mut()
            .for_each(|c| *c = [0; MIGRATE_TYPES]);
        for i in 0..self.pageblocks.len() {
            self.owned_free_add(i, 1);
        }
    }

    /// Keep bit `pbi` of [`Zone::pb_has_free`] in step with the pageblock's free counter,
    /// and [`Zone::owned_free`] with the bit.
    #[inline(always)]
    fn note_pb_free(&mut self, pbi: usize) {
        let w = &mut self.pb_has_free[pbi / 64];
        let bit = 1u64 << (pbi % 64);
        let before = *w;
        if self.pageblocks[pbi].free > 0 {
            *w |= bit;
        } else {
            *w &= !bit;
        }
        if *w != before && self.pageblocks[pbi].owner != 0 {
            self.owned_free_flip(pbi);
        }
    }

    /// [`Zone::owned_free`] after the free bit of owned pageblock `pbi` flipped (only spb's
    /// per-CPU ownership sets owners: kept out of line, off the buddy allocator's path).
    #[cold]
    #[inline(never)]
    fn owned_free_flip(&mut self, pbi: usize) {
        let pb = &self.pageblocks[pbi];
        let c = &mut self.owned_free[pb.owner as usize - 1][pb.mt as usize];
        *c = if pb.free > 0 { *c + 1 } else { *c - 1 };
    }

    /// Count pageblock `pbi` in [`Zone::owned_free`] (`d` = 1) or take it out (`d` = -1), if
    /// it is owned and has a free page: around a change of its owner or label.
    #[inline]
    fn owned_free_add(&mut self, pbi: usize, d: i32) {
        let pb = self.pageblocks[pbi];
        if pb.owner == 0 || !self.pb_has_free(pbi) {
            return;
        }
        let c = &mut self.owned_free[pb.owner as usize - 1][pb.mt as usize];
        *c = c.wrapping_add_signed(d);
    }

    /// Set pageblock `pbi`'s owner (CPU + 1, or 0 for none), keeping [`Zone::owned_free`] in
    /// step (and long enough for every owner, so that a later change of the block's free
    /// bit finds its count).
    pub(crate) fn set_pb_owner(&mut self, pbi: usize, owner: u16) {
        if self.owned_free.len() < owner as usize {
            self.owned_free.resize(owner as usize, [0; MIGRATE_TYPES]);
        }
        self.owned_free_add(pbi, -1);
        self.pageblocks[pbi].owner = owner;
        self.owned_free_add(pbi, 1);
    }

    /// Set the label of pageblock `pbi`, keeping [`Zone::owned_free`] in step.
    #[inline]
    fn set_pb_label(&mut self, pbi: usize, mt: MigrateType) {
        self.owned_free_add(pbi, -1);
        self.pageblocks[pbi].mt = mt as u8;
        self.owned_free_add(pbi, 1);
    }

    /// Owned pageblocks of CPU `cpu` (spb's per-CPU ownership) labelled `mt` that have a free
    /// page, counted as the blocks change (the checker recounts them).
    #[inline]
    pub fn owned_with_free(&self, cpu: usize, mt: MigrateType) -> u32 {
        self.owned_free.get(cpu).map_or(0, |c| c[mt.idx()])
    }

    /// Whether pageblock `pbi` (an index into `pageblocks`) has any free page: the same
    /// answer as `pageblocks[pbi].free > 0`, from a bitmap that stays in cache.
    #[inline(always)]
    pub fn pb_has_free(&self, pbi: usize) -> bool {
        self.pb_has_free[pbi / 64] & (1u64 << (pbi % 64)) != 0
    }

    /// Recompute SPB `i`'s aggregates from its pageblocks (construction, growth).
    pub fn recompute_spb(&mut self, i: usize) {
        let mut s = self.spb_aggregate(i);
        s.category = self.spbs[i].category;
        s.fullness = self.spbs[i].fullness;
        s.list_prev = self.spbs[i].list_prev;
        s.list_next = self.spbs[i].list_next;
        s.contig_allocated = self.spbs[i].contig_allocated;
        s.refresh_bounds();
        self.spbs[i] = s;
    }

    /// SPB `i`'s counters as recomputed from its pageblock counters (list links and flags are
    /// left default).
    pub fn spb_aggregate(&self, i: usize) -> SpbMeta {
        let pbo = self.geo.pageblock_order as u32;
        let pbp = self.geo.pageblock_pages();
        let start = self.spbs[i].start_pfn;
        let end = start + self.geo.spb_pages();
        let mut s = SpbMeta::new(start);
        let mut pfn = start;
        while pfn < end {
            let pbn = pfn >> pbo;
            if pbn < self.pb_base || pbn >= self.pb_base + self.pageblocks.len() as u64 {
                s.absent_pages += pbp;
                pfn += pbp;
                continue;
            }
            let pb = self.pageblocks[(pbn - self.pb_base) as usize];
            s.total_pageblocks += 1;
            s.pb_transition(0, pb.content(pbp as u16));
            s.free_pages += pb.free as u64;
            s.pcp_pages += pb.pcp as u64;
            for k in 0..4 {
                s.alloc_pages[k] += pb.alloc[k] as u64;
            }
            s.reserved_pages += pb.reserved as u64;
            s.absent_pages += pb.absent as u64;
            pfn += pbp;
        }
        let out_lo = self
            .span
            .start
            .saturating_sub(start)
            .min(self.geo.spb_pages());
        let out_hi = end.saturating_sub(self.span.end).min(self.geo.spb_pages());
        s.outside_pages = out_lo + out_hi;
        s.refresh_bounds();
        s
    }

    // ----- indexing -----

    /// Index of `pfn` in `pages`.
    #[inline(always)]
    pub fn idx(&self, pfn: Pfn) -> usize {
        (pfn - self.span.start) as usize
    }
    /// Pfn of page index `i`.
    #[inline(always)]
    pub fn pfn_of(&self, i: u32) -> Pfn {
        self.span.start + i as u64
    }
    /// Index of the pageblock holding `pfn`.
    #[inline(always)]
    pub fn pb_idx(&self, pfn: Pfn) -> usize {
        ((pfn >> self.geo.pageblock_order) - self.pb_base) as usize
    }
    /// Index of the SPB holding `pfn`.
    #[inline(always)]
    pub fn spb_idx(&self, pfn: Pfn) -> usize {
        ((pfn >> self.geo.spb_order) - self.spb_base) as usize
    }
    /// Count the pages of `r` (uninitialised memory inside the span) in their SPBs'
    /// [`Zone::spb_uninit`]; [`crate::Allocator::grow_zone`] takes them off as it hands them
    /// over.
    fn add_uninit(&mut self, r: PfnRange) {
        let spb = self.geo.spb_pages();
        let mut p = r.start;
        while p < r.end {
            let n = (p - p % spb + spb).min(r.end) - p;
            let i = self.spb_idx(p);
            self.spb_uninit[i] += n;
            p += n;
        }
    }

    /// The free-list bucket of `pfn` (its SPB, or 0 with zone-wide lists).
    #[inline(always)]
    pub fn bucket_of(&self, pfn: Pfn) -> usize {
        if self.per_spb_lists {
            self.spb_idx(pfn)
        } else {
            0
        }
    }
    /// Whether `pfn` lies in the zone span.
    #[inline(always)]
    pub fn contains(&self, pfn: Pfn) -> bool {
        self.span.contains(pfn)
    }
    /// The pageblock holding `pfn`.
    #[inline(always)]
    pub fn pb(&self, pfn: Pfn) -> &PageblockMeta {
        &self.pageblocks[self.pb_idx(pfn)]
    }
    /// The page metadata of `pfn`.
    #[inline(always)]
    pub fn page(&self, pfn: Pfn) -> &PageMeta {
        &self.pages[self.idx(pfn)]
    }
    /// The number of plain entries ([`crate::page::is_plain`]) from `from` on, before `end`:
    /// a head-to-head scan at `from` reaches `from + k` having only stepped one page at a time.
    #[inline]
    pub(crate) fn plain_run(&self, from: Pfn, end: Pfn) -> u64 {
        crate::page::plain_run(&self.pages[self.idx(from)..self.idx(end)]) as u64
    }
    /// The pfns of the pageblock holding `pfn` that lie inside the zone span.
    ///
    /// Every scan of a pageblock's pages goes through this range: a zone grown by less than a
    /// pageblock (hotplug, deferred init of a partial chunk) ends inside its last pageblock,
    /// and the pages past the span have no metadata.
    #[inline]
    pub fn pb_span(&self, pfn: Pfn) -> core::ops::Range<Pfn> {
        let pbp = self.geo.pageblock_pages();
        let s = pfn & !(pbp - 1);
        s.max(self.span.start)..(s + pbp).min(self.span.end)
    }
    /// Whether the whole pageblock holding `pfn` lies inside the zone.
    #[inline]
    pub fn pb_in_zone(&self, pfn: Pfn) -> bool {
        let s = pfn & !(self.geo.pageblock_pages() - 1);
        s >= self.span.start && s + self.geo.pageblock_pages() <= self.span.end
    }

    // ----- accounting -----

    /// Move `n` pages from accounting class `from` to `to`, keeping pageblock counters, SPB
    /// counters and SPB lists in step. The range must lie inside the zone.
    #[inline]
    pub fn account(&mut self, pfn: Pfn, n: u64, from: Acct, to: Acct) {
        let pbp = self.geo.pageblock_pages();
        if (pfn ^ (pfn + n - 1)) < pbp && (pfn & (pbp - 1)) + n <= pbp {
            // the common case: inside one pageblock
            self.account_one::<false>(pfn, n, from, to);
        } else {
            self.account_range(pfn, n, from, to);
        }
    }

    /// [`Zone::account`] of the naturally aligned block of `2^order` pages at `pfn`, always
    /// inlined, so that the classes of a call site with constant classes fold away (the
    /// per-CPU hit paths).
    #[inline(always)]
    pub(crate) fn account_block(&mut self, pfn: Pfn, order: u8, from: Acct, to: Acct) {
        debug_assert_eq!(pfn & ((1u64 << order) - 1), 0, "unaligned block");
        if order <= self.geo.pageblock_order {
            // an aligned block of at most a pageblock lies inside one pageblock
            self.account_one::<true>(pfn, 1u64 << order, from, to);
        } else {
            self.account_range(pfn, 1u64 << order, from, to);
        }
    }

    /// One pageblock's part of [`Zone::account`]. With `OUTLINE_SETTLE` the rare part (content
    /// bits changed, or free pages moved) is a call, which keeps the inlined common part of
    /// the per-CPU hits small; otherwise all of it is inline.
    #[inline(always)]
    fn account_one<const OUTLINE_SETTLE: bool>(&mut self, p: Pfn, cnt: u64, from: Acct, to: Acct) {
        let pbp = self.geo.pageblock_pages() as u16;
        let pbi = self.pb_idx(p);
        let pb = &mut self.pageblocks[pbi];
        // only the bits of the two classes involved can change
        let before = pb.class_bit(from, pbp) | pb.class_bit(to, pbp);
        *pb.counter(from) -= cnt as u16;
        *pb.counter(to) += cnt as u16;
        let after = pb.class_bit(from, pbp) | pb.class_bit(to, pbp);
        if matches!(from, Acct::Free) || matches!(to, Acct::Free) {
            self.note_pb_free(pbi);
        }
        let si = self.spb_idx(p);
        let s = &mut self.spbs[si];
        *spb_counter(s, from) -= cnt;
        *spb_counter(s, to) += cnt;
        if OUTLINE_SETTLE {
            // Moves between per-CPU and allocated classes change neither the SPB's free pages
            // nor its usable pages, so its fullness and its emptiness stay, and its taint
            // changes only when a class count crosses zero, which changes the content of a
            // pageblock (before != after). Otherwise category and fullness, filed to match the
            // counters (the checker verifies it), still match, and account_settle would find
            // nothing to do.
            let counts_only = matches!(from, Acct::Pcp | Acct::Alloc(_))
                && matches!(to, Acct::Pcp | Acct::Alloc(_));
            if before != after || !counts_only {
                self.account_settle_outlined(pbi, si, from, to, before, after);
            }
        } else {
            self.account_settle(pbi, si, from, to, before, after);
        }
    }

    #[inline(never)]
    fn account_settle_outlined(
        &mut self,
        pbi: usize,
        si: usize,
        from: Acct,
        to: Acct,
        before: u8,
        after: u8,
    ) {
        self.account_settle(pbi, si, from, to, before, after);
    }

    /// The rest of [`Zone::account_one`] after the counters moved: the pageblock's content
    /// bits (`before`/`after`: the bits of the two classes involved), the SPB's pageblock
    /// counts and bounds, and its category and fullness lists.
    #[inline(always)]
    fn account_settle(
        &mut self,
        pbi: usize,
        si: usize,
        from: Acct,
        to: Acct,
        before: u8,
        after: u8,
    ) {
        let pbp = self.geo.pageblock_pages() as u16;
        let (old, new) = if before != after {
            let pb = &mut self.pageblocks[pbi];
            let new = pb.content(pbp);
            if new & crate::pageblock::content::ALL_FREE != 0 && pb.owner != 0 {
                // wholly free: the block leaves its owner, and the owned-with-free count
                // (its free bit is set: `account_one` noted the free pages before this)
                debug_assert!(self.pb_has_free[pbi / 64] & (1 << (pbi % 64)) != 0);
                self.owned_free[pb.owner as usize - 1][pb.mt as usize] -= 1;
                pb.owner = 0;
            }
            (new ^ before ^ after, new)
        } else {
            (0, 0)
        };
        let s = &mut self.spbs[si];
        if matches!(from, Acct::Reserved | Acct::Absent)
            || matches!(to, Acct::Reserved | Acct::Absent)
        {
            s.refresh_bounds();
        }
        if old != new {
            s.pb_transition(old, new);
        } else if s.fullness_of(s.free_pages) == s.fullness && s.compute_category() == s.category {
            // (an SPB with holes turns empty or clean without any pageblock changing content)
            return;
        }
        if let Some(fromc) = self.spb_lists.refile(&mut self.spbs, si as u32) {
            let to_c = self.spbs[si].category;
            self.cat_changes.push(CategoryChange {
                spb: si as u32,
                from: fromc,
                to: to_c,
            });
        }
    }

    fn account_range(&mut self, pfn: Pfn, n: u64, from: Acct, to: Acct) {
        let pbp = self.geo.pageblock_pages();
        let mut p = pfn;
        let end = pfn + n;
        while p < end {
            let cnt = end.min((p | (pbp - 1)) + 1) - p;
            self.account_one::<false>(p, cnt, from, to);
            p += cnt;
        }
    }

    // ----- free list primitives -----

    /// Put the free block at `pfn` (head already marked Free with `order`) on list (order, mt).
    #[inline]
    pub fn list_add(&mut self, pfn: Pfn, order: u8, mt: MigrateType, at_tail: bool) {
        let i = self.idx(pfn) as u32;
        let b = self.bucket_of(pfn);
        {
            let pg = &mut self.pages[i as usize];
            pg.state = PageState::Free;
            pg.order = order;
            pg.mt = mt as u8;
        }
        self.areas[b].push(&mut self.pages, i, order as usize, mt.idx(), at_tail);
        self.nr_free[order as usize][mt.idx()] += 1;
        let n = 1u64 << order;
        if mt != MigrateType::Isolate {
            self.free_pages += n;
            if order >= self.geo.pageblock_order {
                self.free_pages_blocks += n;
            }
        }
        if mt == MigrateType::HighAtomic {
            self.nr_free_highatomic += n;
        }
    }

    /// Take the free block at `pfn` off its list. Its head stays marked Free until the caller
    /// changes it.
    #[inline]
    pub fn list_del(&mut self, pfn: Pfn) {
        let i = self.idx(pfn) as u32;
        let (order, mt) = (self.pages[i as usize].order, self.pages[i as usize].mt);
        let b = self.bucket_of(pfn);
        self.areas[b].unlink(&mut self.pages, i, order as usize, mt as usize);
        self.nr_free[order as usize][mt as usize] -= 1;
        let n = 1u64 << order;
        if mt != MigrateType::Isolate as u8 {
            self.free_pages -= n;
            if order >= self.geo.pageblock_order {
                self.free_pages_blocks -= n;
            }
        }
        if mt == MigrateType::HighAtomic as u8 {
            self.nr_free_highatomic -= n;
        }
    }

    /// Move a free block to the list of another type (same order, same bucket).
    #[inline]
    pub fn list_move(&mut self, pfn: Pfn, mt: MigrateType, at_tail: bool) {
        let order = self.pages[self.idx(pfn)].order;
        self.list_del(pfn);
        self.list_add(pfn, order, mt, at_tail);
    }

    /// Split a free block of order `high` at `pfn` (already off its list) down to order `low`:
    /// the upper halves go to the head of the lists of type `mt` (mainline `expand`). Returns
    /// `pfn`, now the head of an order-`low` block that is on no list.
    #[inline]
    pub fn expand(&mut self, pfn: Pfn, low: u8, high: u8, mt: MigrateType) -> Pfn {
        let mut h = high;
        while h > low {
            h -= 1;
            let buddy = pfn + (1u64 << h);
            let i = self.idx(buddy);
            self.pages[i] = PageMeta {
                state: PageState::Free,
                order: h,
                ..PageMeta::TAIL
            };
            self.list_add(buddy, h, mt, false);
        }
        let i = self.idx(pfn);
        self.pages[i].order = low;
        pfn
    }

    /// Remove the free block at `pfn` from its list and split it to `order`, remainders to
    /// the lists of `mt`. Returns the head (state still Free, on no list; caller accounts).
    #[inline]
    pub fn take_and_expand(&mut self, pfn: Pfn, order: u8, mt: MigrateType) -> Pfn {
        let high = self.pages[self.idx(pfn)].order;
        self.list_del(pfn);
        self.expand(pfn, order, high, mt)
    }

    /// Free a block into the buddy lists with merging (`__free_one_page`). The caller has
    /// already accounted the pages as free. Blocks larger than a pageblock are freed pageblock
    /// by pageblock, each under its own block's type (`split_large_buddy`).
    pub fn free_block(&mut self, pfn: Pfn, order: u8) {
        let pbo = self.geo.pageblock_order;
        if order > pbo {
            let step = 1u64 << pbo;
            let mut p = pfn;
            while p < pfn + (1u64 << order) {
                self.merge_in(p, pbo);
                p += step;
            }
        } else {
            self.merge_in(pfn, order);
        }
    }

    fn merge_in(&mut self, mut pfn: Pfn, mut order: u8) {
        let pbo = self.geo.pageblock_order;
        let mt = self.pb(pfn).list_type();
        while order < self.geo.max_order {
            let buddy = pfn ^ (1u64 << order);
            if !self.contains(buddy) {
                break;
            }
            let bm = self.pages[self.idx(buddy)];
            if bm.state != PageState::Free || bm.order != order {
                break;
            }
            if order >= pbo {
                let bt = MigrateType::from_u8(bm.mt).unwrap_or(MigrateType::Movable);
                if bt != mt && (!bt.is_mergeable() || !mt.is_mergeable()) {
                    break;
                }
                self.list_del(buddy);
                if bt != mt {
                    self.set_pb_range_type(buddy, order, mt);
                }
            } else {
                self.list_del(buddy);
            }
            let bi = self.idx(buddy);
            self.pages[bi] = PageMeta::TAIL;
            let pi = self.idx(pfn);
            self.pages[pi] = PageMeta::TAIL;
            pfn &= buddy;
            order += 1;
        }
        let i = self.idx(pfn);
        self.pages[i] = PageMeta {
            state: PageState::Free,
            order,
            ..PageMeta::TAIL
        };
        // buddy_merge_likely: if the next-order buddy is free, put this at the tail.
        let mut to_tail = false;
        if order + 1 < self.geo.max_order {
            let hb = (pfn & !((2u64 << order) - 1)) ^ (2u64 << order);
            if self.contains(hb) {
                let m = self.pages[self.idx(hb)];
                to_tail = m.state == PageState::Free && m.order == order + 1;
            }
        }
        self.list_add(pfn, order, mt, to_tail);
    }

    /// Set the label of every pageblock covered by a block of `order` at `pfn`.
    pub fn set_pb_range_type(&mut self, pfn: Pfn, order: u8, mt: MigrateType) {
        let pbo = self.geo.pageblock_order;
        let n = if order >= pbo {
            1u64 << (order - pbo)
        } else {
            1
        };
        let first = self.pb_idx(pfn);
        for k in 0..n as usize {
            self.set_pb_label(first + k, mt);
        }
    }

    /// Move every free buddy inside the pageblock holding `pfn` to the lists of `mt`, and label
    /// the block `mt` (`move_freepages_block` + `set_pageblock_migratetype`). Returns the number
    /// of free pages moved. Refuses (None) when the block straddles the zone boundary.
    pub fn move_freepages_block(&mut self, pfn: Pfn, mt: MigrateType) -> Option<u64> {
        if !self.pb_in_zone(pfn) {
            return None;
        }
        let pbp = self.geo.pageblock_pages();
        let start = pfn & !(pbp - 1);
        let mut p = start;
        let mut moved = 0;
        let list_mt = if self.pb(start).is_isolated() {
            MigrateType::Isolate
        } else {
            mt
        };
        while p < start + pbp {
            let m = self.pages[self.idx(p)];
            if m.state == PageState::Free {
                let n = 1u64 << m.order;
                if m.order >= self.geo.pageblock_order {
                    // a buddy covering the whole block (or more): retype all of it
                    self.list_move(p, list_mt, true);
                    self.set_pb_range_type(p, m.order, mt);
                    return Some(n);
                }
                if m.mt != list_mt as u8 {
                    self.list_move(p, list_mt, true);
                }
                moved += n;
                p += n;
            } else if matches!(m.state, PageState::Alloc | PageState::Pcp) {
                p += 1u64 << m.order;
            } else {
                p += 1;
            }
        }
        let i = self.pb_idx(start);
        self.set_pb_label(i, mt);
        Some(moved)
    }

    /// Free pages and "movable-looking" allocated pages in the pageblock holding `pfn`
    /// (`prep_move_freepages_block`'s counts).
    pub fn block_free_and_movable(&self, pfn: Pfn) -> (u64, u64) {
        let pb = self.pb(pfn);
        (pb.free as u64, pb.movable_pages() as u64)
    }

    /// Highest zone index the reserve check uses (for lowmem_reserve lookups).
    pub fn zone_idx(&self) -> usize {
        self.kind as usize
    }

    /// Pages per pageblock.
    #[inline(always)]
    pub fn pbp(&self) -> u64 {
        self.geo.pageblock_pages()
    }

    /// Drain recorded category changes.
    #[inline]
    pub fn take_cat_changes(&mut self) -> Vec<CategoryChange> {
        if self.cat_changes.is_empty() {
            // (keep the buffer: no deallocation now, no allocation at the next change)
            return Vec::new();
        }
        core::mem::take(&mut self.cat_changes)
    }
}

#[inline(always)]
fn spb_counter(s: &mut SpbMeta, a: Acct) -> &mut u64 {
    match a {
        Acct::Free => &mut s.free_pages,
        Acct::Pcp => &mut s.pcp_pages,
        Acct::Alloc(mt) => &mut s.alloc_pages[crate::pageblock::alloc_class(mt)],
        Acct::Reserved => &mut s.reserved_pages,
        Acct::Absent => &mut s.absent_pages,
    }
}

/// Carve a range into maximal naturally aligned blocks of order <= max_order (public as
/// [`PfnRange::aligned_blocks`]).
pub(crate) fn carve(r: PfnRange, max_order: u8) -> impl Iterator<Item = (Pfn, u8)> {
    let mut p = r.start;
    core::iter::from_fn(move || {
        if p >= r.end {
            return None;
        }
        let mut o = max_order;
        loop {
            let n = 1u64 << o;
            if p & (n - 1) == 0 && p + n <= r.end {
                break;
            }
            o -= 1;
        }
        let out = (p, o);
        p += 1u64 << o;
        Some(out)
    })
}

impl Zone {
    /// Extend the span upward to `new_end` (memory hot-add): new pages are holes until
    /// [`crate::Allocator::grow_zone`] hands them over; pageblocks, SPBs and per-SPB free lists
    /// grow to cover them (patch 09).
    ///
    /// The tables are reserved first (`try_reserve_exact`): when that fails the zone is
    /// unchanged and the error is returned, never an abort (the size comes from the caller).
    pub fn extend_span(&mut self, new_end: Pfn) -> Result<(), crate::error::GrowError> {
        if new_end <= self.span.end {
            return Ok(());
        }
        let oom = crate::error::GrowError::OutOfMemory { end: new_end };
        let pages_n = (new_end - self.span.start) as usize;
        let pb_need = (((new_end - 1) >> self.geo.pageblock_order) - self.pb_base + 1) as usize;
        let spb_need = (((new_end - 1) >> self.geo.spb_order) - self.spb_base + 1) as usize;
        self.pages
            .try_reserve_exact(pages_n.saturating_sub(self.pages.len()))
            .map_err(|_| oom)?;
        self.pageblocks
            .try_reserve_exact(pb_need.saturating_sub(self.pageblocks.len()))
            .map_err(|_| oom)?;
        self.spbs
            .try_reserve_exact(spb_need.saturating_sub(self.spbs.len()))
            .map_err(|_| oom)?;
        if self.per_spb_lists {
            self.areas
                .try_reserve_exact(spb_need.saturating_sub(self.areas.len()))
                .map_err(|_| oom)?;
        }
        let old_end = self.span.end;
        self.pages.resize(
            (new_end - self.span.start) as usize,
            PageMeta::with_state(PageState::Hole),
        );
        let pbo = self.geo.pageblock_order as u32;
        let so = self.geo.spb_order as u32;
        let pbp = self.geo.pageblock_pages();
        // the last old pageblock may have been clipped: its new pages were counted absent
        let pb_n = (((new_end - 1) >> pbo) - self.pb_base + 1) as usize;
        self.pageblocks.resize(
            pb_n,
            PageblockMeta {
                mt: MigrateType::Movable as u8,
                absent: pbp as u16,
                ..Default::default()
            },
        );
        let spb_n = (((new_end - 1) >> so) - self.spb_base + 1) as usize;
        let old_spb_n = self.spbs.len();
        for k in old_spb_n..spb_n {
            let start = (self.spb_base + k as u64) << so;
            self.spbs.push(SpbMeta::new(start));
        }
        if self.per_spb_lists {
            self.areas.resize(spb_n, FreeArea::default());
        }
        self.spb_uninit.resize(spb_n, 0);
        self.span.end = new_end;
        let _ = old_end;
        self.rebuild_pb_has_free();
        // recompute aggregates of touched SPBs and (re)file them
        let first_touched = self.spb_idx(old_end - 1);
        for i in first_touched..spb_n {
            if i < old_spb_n {
                self.spb_lists.unlink(&mut self.spbs, i as u32);
            }
            self.recompute_spb(i);
            self.spbs[i].category = self.spbs[i].compute_category();
            self.spbs[i].fullness = self.spbs[i].compute_fullness();
            self.spb_lists.link(&mut self.spbs, i as u32);
        }
        Ok(())
    }
}

/// The read-only inspection view of a zone: what the lab, the CLI and tests may read. Every
/// change goes through [`crate::Allocator`]'s methods: the API hands out `&Zone` only, so the
/// `&mut self` methods of `Zone` are unreachable outside the crate (they stay `pub` because
/// narrowing them to `pub(crate)` changes the inlining in the allocation path: +7
/// instructions per order-0 pair without per-CPU lists, measured with `icount.sh`).
impl Zone {
    pub fn kind(&self) -> ZoneKind {
        self.kind
    }
    pub fn geo(&self) -> Geometry {
        self.geo
    }
    /// The pfns the zone spans (holes and uninitialised memory included).
    pub fn span(&self) -> PfnRange {
        self.span
    }
    /// Per-page metadata, one entry per pfn of the span.
    pub fn pages(&self) -> &[PageMeta] {
        &self.pages
    }
    /// Per-pageblock metadata: labels and exact page counts by class.
    pub fn pageblocks(&self) -> &[PageblockMeta] {
        &self.pageblocks
    }
    /// Pages of SPB `i` not yet initialised (deferred init; part of its absent pages).
    pub fn spb_uninit_pages(&self, i: usize) -> u64 {
        self.spb_uninit[i]
    }
    /// SPB `i` cannot become a 1 GiB page whatever is freed or initialised later: it holds
    /// reserved pages, or a hole that is not memory waiting for deferred init (a real hole,
    /// or pages outside the zone span). Unlike [`SpbMeta::is_lost`] it ignores taint, and an
    /// SPB that is only partly initialised yet is not lost for good.
    pub fn spb_lost_for_good(&self, i: usize) -> bool {
        let s = &self.spbs[i];
        s.is_pinned() || s.absent_pages > self.spb_uninit[i]
    }
    /// Per-SPB metadata: counts by class, category, fullness.
    pub fn spbs(&self) -> &[SpbMeta] {
        &self.spbs
    }
    /// The zone's SPB lists by category and fullness (`category_count` etc.).
    pub fn spb_lists(&self) -> &SpbLists {
        &self.spb_lists
    }
    /// Per-CPU list state, one per CPU.
    pub fn pcp(&self) -> &[crate::pcp::Pcp] {
        &self.pcp
    }
    /// NR_FREE_PAGES (buddy lists only).
    pub fn free_pages(&self) -> u64 {
        self.free_pages
    }
    pub fn present_pages(&self) -> u64 {
        self.present_pages
    }
    pub fn managed_pages(&self) -> u64 {
        self.managed_pages
    }
    pub fn reserved_pages(&self) -> u64 {
        self.reserved_pages
    }
    /// Free blocks by order and migratetype (`/proc/pagetypeinfo`).
    pub fn nr_free(&self) -> &[[u64; MIGRATE_TYPES]; MAX_NR_ORDERS] {
        &self.nr_free
    }
    /// Free pages on the free lists of the migratetypes `mts`, over every order.
    pub(crate) fn free_pages_on(&self, mts: &[MigrateType]) -> u64 {
        (0..self.geo.nr_orders())
            .map(|o| mts.iter().map(|mt| self.nr_free[o][mt.idx()]).sum::<u64>() << o)
            .sum()
    }
    /// The watermarks (min, low, high, promo) without the boost.
    pub fn wmark(&self) -> [u64; 4] {
        self.wmark
    }
    pub fn watermark_boost(&self) -> u64 {
        self.watermark_boost
    }
    pub fn lowmem_reserve(&self) -> [u64; 4] {
        self.lowmem_reserve
    }
    pub fn nr_reserved_highatomic(&self) -> u64 {
        self.nr_reserved_highatomic
    }
    pub fn nr_free_highatomic(&self) -> u64 {
        self.nr_free_highatomic
    }
}
