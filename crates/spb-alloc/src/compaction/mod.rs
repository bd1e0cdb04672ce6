//! Compaction: the migrate scanner walks pageblocks upward from the zone start isolating movable
//! folios, the free scanner finds free pages as targets, and the embedder moves each folio.
//! Direct compaction, kcompactd and proactive compaction all run [`Allocator::compact_zone`];
//! deferral, `compaction_suitable` and the fragmentation index decide whether a run is worth it.
//!
//! A folio that finds no target of its order among the free pages already isolated gets one
//! round of the free scanner (`Allocator::isolate_freepages`): a search of the free lists
//! (module `fast`), then, only if that isolated nothing, a walk down from the zone end that stops
//! after the pageblock that brings the isolated pages to the folio's size. If the folio still
//! has no free block of its order, the run ends ([`CompactResult::Contended`]), after the folio
//! is split where the embedder can split it: the kernel's `compaction_alloc` returning NULL and
//! `migrate_pages`' -ENOMEM.
//!
//! Pageblocks whose walk was of no use are marked and passed over by later runs until the
//! marks are cleared (module `skip`).
//!
//! A direct compaction ends as soon as a moved folio's free makes a free block of the
//! requested order (the kernel's compaction capture, as a stop: `Zone::captures`,
//! `Config::compaction_capture`). Async direct compaction moves an order-aligned chunk only if
//! every folio in it would isolate (the kernel's skip-on-failure,
//! `Config::compaction_skip_on_failure`).
//!
//! Simplifications (documented in docs/architecture.md): no "fast find" of the migrate block;
//! the free scanner isolates whole pageblocks (stride 1 unless `Config::compaction_async_stride`),
//! and folios are migrated one at a time (the kernel batches up to 32 pages).

use alloc::vec::Vec;

use crate::env::{Env, MigrateOutcome};
use crate::freelist::MAX_NR_ORDERS;
use crate::geometry::Pfn;
use crate::gfp::AllocFlags;
use crate::migratetype::MigrateType;
use crate::page::{PageMeta, PageState};
use crate::pageblock::Acct;
use crate::vmstat::Vm;
use crate::zone::{Zone, ZoneId, WMARK_LOW, WMARK_MIN};
use crate::{AllocRequest, Allocator};

mod fast;
mod skip;

pub(crate) use skip::SkipHints;

/// `COMPACT_MAX_DEFER_SHIFT`: deferral skips at most 2^6 - 1 attempts in a row.
pub(crate) const COMPACT_MAX_DEFER_SHIFT: u32 = 6;

/// Compaction priority (higher value = lighter).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CompactPriority {
    SyncFull = 0,
    SyncLight = 1,
    Async = 2,
}

impl CompactPriority {
    /// One step heavier, or None at the floor (costly orders stop at SyncLight).
    pub fn raise(self, costly: bool) -> Option<CompactPriority> {
        match self {
            CompactPriority::Async => Some(CompactPriority::SyncLight),
            CompactPriority::SyncLight if !costly => Some(CompactPriority::SyncFull),
            _ => None,
        }
    }
}

/// Outcome of a compaction attempt, in the kernel's order (`enum compact_result`: a later
/// variant is "more successful"; `try_to_compact_pages` reports the maximum over its zones).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CompactResult {
    /// Not suitable (too little free memory, or not fragmentation).
    Skipped,
    /// Deferred after recent failures.
    Deferred,
    /// Scanners met without success.
    Complete,
    /// Stopped early (no targets left).
    Partial,
    /// Stopped because a folio found no target of its order among the free pages the free
    /// scanner isolated for it (the kernel's `-ENOMEM` from `migrate_pages`, which ends the
    /// run with `COMPACT_CONTENDED`): not deferred, and not a reason to drain the per-CPU lists.
    Contended,
    /// A free block of the target order exists.
    Success,
}

/// Free blocks per order, every list but MIGRATE_ISOLATE's: `(order, blocks)`.
fn free_blocks_by_order(z: &Zone) -> impl Iterator<Item = (usize, u64)> + '_ {
    (0..z.geo.nr_orders()).map(move |o| {
        let n = z.nr_free[o]
            .iter()
            .take(crate::migratetype::MIGRATE_TYPES - 1)
            .sum();
        (o, n)
    })
}

/// fragmentation index x1000 (`__fragmentation_index`).
pub fn fragmentation_index(z: &Zone, order: u8) -> i64 {
    let (mut free_pages, mut blocks, mut suitable) = (0u64, 0u64, 0u64);
    for (o, n) in free_blocks_by_order(z) {
        free_pages += n << o;
        blocks += n;
        if o >= order as usize {
            suitable += n << (o - order as usize);
        }
    }
    if blocks == 0 {
        return 0;
    }
    if suitable > 0 {
        return -1000;
    }
    1000 - ((1000 + ((free_pages * 1000) >> order)) / blocks) as i64
}

/// extfrag_for_order (percent of free memory not in blocks of `order` or larger).
pub fn extfrag_for_order(z: &Zone, order: u8) -> u64 {
    let (mut free_pages, mut suitable) = (0u64, 0u64);
    for (o, n) in free_blocks_by_order(z) {
        free_pages += n << o;
        if o >= order as usize {
            suitable += n << o;
        }
    }
    ((free_pages - suitable) * 100)
        .checked_div(free_pages)
        .unwrap_or(0)
}

impl Zone {
    /// Compaction capture (`compaction_capture` in `__free_one_page`): does the free buddy
    /// holding `pfn` (just freed by a migration) reach `order`, and may a compaction for a
    /// `req_mt` request take it? As the kernel's rule: not from an isolated pageblock, and
    /// not a movable block smaller than a pageblock for a non-movable request. The model
    /// frees a moved folio straight to the buddy lists, where the kernel's order-0 frees wait
    /// on the per-CPU lists until the drain after each `order`-aligned block; the block is
    /// left on the free lists for the freelist retry that follows (no other request runs in
    /// between, but the retry keeps its watermark test, which a captured page skips).
    pub(crate) fn captures(&self, pfn: Pfn, order: u8, req_mt: MigrateType) -> bool {
        let Some((head, PageState::Free)) = crate::allocator::find_head(self, pfn) else {
            return false;
        };
        let pb = self.pb(head);
        self.page(head).order >= order
            && !pb.is_isolated()
            && pb.migratetype() != MigrateType::Cma
            && !(order < self.geo.pageblock_order
                && pb.migratetype() == MigrateType::Movable
                && req_mt != MigrateType::Movable)
    }
}

/// Is the allocated block `m` one the migrate scanner isolates for a compaction to `target`
/// (the pageblock order for a whole-zone run)? A movable folio smaller than the target and
/// than a pageblock.
fn migration_source(m: &PageMeta, target: u8, pbo: u8) -> bool {
    m.mt == MigrateType::Movable as u8 && m.order < target && m.order < pbo
}

/// `compaction_suitable` (6.18): may a compaction for `order` run in zone `z`, judged against
/// `watermark` (the caller's: the min watermark for direct compaction and kcompactd), for
/// requests whose highest zone is `highest`? The zone's order-0 free pages (less its highatomic
/// reserve) must stay above `watermark` + `compact_gap(order)` (twice the request: room for
/// the migration targets) + the lowmem reserve, and for a costly order above the distance
/// between the low and min watermarks on top (`__compaction_suitable` asks costly orders for the
/// low watermark); and for a costly order a fragmentation index in `0..=extfrag_threshold`
/// means the shortage is memory, not fragmentation (reclaim, not compaction).
pub(crate) fn compaction_suitable(
    z: &Zone,
    order: u8,
    watermark: u64,
    highest: usize,
    extfrag_threshold: i64,
) -> bool {
    let costly = order > z.geo.costly_order();
    let boost = if costly {
        z.wmark[WMARK_LOW].saturating_sub(z.wmark[WMARK_MIN])
    } else {
        0
    };
    let mark = watermark + boost + (2u64 << order);
    if !z.watermark_ok(0, mark, highest, AllocFlags(0), z.free_pages) {
        return false;
    }
    !(costly && {
        let fi = fragmentation_index(z, order);
        fi >= 0 && fi <= extfrag_threshold
    })
}

fn deferred(z: &mut Zone, order: u8) -> bool {
    if order < z.compact.order_failed {
        return false;
    }
    let limit = 1u32 << z.compact.defer_shift;
    z.compact.considered += 1;
    if z.compact.considered >= limit {
        z.compact.considered = limit;
        return false;
    }
    true
}

fn defer(z: &mut Zone, order: u8) {
    z.compact.considered = 0;
    z.compact.defer_shift = (z.compact.defer_shift + 1).min(COMPACT_MAX_DEFER_SHIFT);
    if order < z.compact.order_failed || z.compact.order_failed == 0 {
        z.compact.order_failed = order;
    }
}

/// What one call of the free scanner ended with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FreeScan {
    /// The stash holds a block of the folio's order or larger.
    Found,
    /// The stash holds as many pages as the folio has, none in a block large enough.
    Short,
    /// The free scanner reached the migrate scanner.
    Met,
}

/// A free block taken off the lists by the free scanner.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Held {
    pub pfn: Pfn,
    pub order: u8,
}

impl Zone {
    /// Whether the free scanner may isolate a free block of `n` pages: the zone stays at or
    /// above its min watermark (`__isolate_free_page`'s check).
    pub(crate) fn may_isolate(&self, n: u64) -> bool {
        self.free_pages >= self.wmark[WMARK_MIN] + n
    }
    /// Take the free block at `pfn` off its list and hold it (state Isolated, accounted held).
    pub(crate) fn hold_free(&mut self, pfn: Pfn) -> Held {
        let order = self.page(pfn).order;
        self.list_del(pfn);
        let i = self.idx(pfn);
        self.pages[i] = PageMeta {
            state: PageState::Isolated,
            order,
            ..PageMeta::TAIL
        };
        self.account(pfn, 1u64 << order, Acct::Free, Acct::Pcp);
        Held { pfn, order }
    }
    /// Give a held block back to the buddy lists.
    pub(crate) fn release_held(&mut self, h: Held) {
        let i = self.idx(h.pfn);
        self.pages[i] = PageMeta::TAIL;
        self.account(h.pfn, 1u64 << h.order, Acct::Pcp, Acct::Free);
        self.free_block(h.pfn, h.order);
    }
    /// Carve a target of `order` out of the stash: the smallest held block of at least `order`
    /// pages, its unused halves filed back into the stash.
    pub(crate) fn target_from_stash(&mut self, stash: &mut Stash, order: u8) -> Option<Pfn> {
        let h = stash.take_at_least(order)?;
        let mut o = h.order;
        while o > order {
            o -= 1;
            let piece = h.pfn + (1u64 << o);
            let i = self.idx(piece);
            self.pages[i] = PageMeta {
                state: PageState::Isolated,
                order: o,
                ..PageMeta::TAIL
            };
            stash.push(Held {
                pfn: piece,
                order: o,
            });
        }
        let i = self.idx(h.pfn);
        self.pages[i].order = order;
        Some(h.pfn)
    }
}

/// The free blocks the free scanner has isolated, filed by order.
///
/// # Invariants
/// - `by_order[o]` holds only blocks of exactly order `o`, each isolated (off every free list,
///   accounted as held) by this compaction run;
/// - `mask` has bit `o` set exactly when `by_order[o]` is non-empty;
/// - `pages` is the sum of `2^o` over every held block.
///
/// Filing by order keeps "is a block of at least order o held" and "take the smallest such
/// block" at O(orders) per migrated page; a flat list made both O(held blocks), which was
/// quadratic over a whole-zone compaction (one scanned pageblock can hold 512 free pages).
#[derive(Default)]
pub(crate) struct Stash {
    by_order: [Vec<Pfn>; MAX_NR_ORDERS],
    mask: u32,
    /// Pages held in all orders (the kernel's `cc->nr_freepages`).
    pages: u64,
}

impl Stash {
    pub(crate) fn push(&mut self, h: Held) {
        self.by_order[h.order as usize].push(h.pfn);
        self.mask |= 1 << h.order;
        self.pages += 1u64 << h.order;
    }
    /// Pages held, in blocks of any order.
    pub(crate) fn pages(&self) -> u64 {
        self.pages
    }
    /// Whether a block of at least `order` pages is held.
    pub(crate) fn has_at_least(&self, order: u8) -> bool {
        self.mask >> order != 0
    }
    /// Take the smallest held block of at least `order` pages.
    pub(crate) fn take_at_least(&mut self, order: u8) -> Option<Held> {
        let m = self.mask >> order;
        if m == 0 {
            return None;
        }
        let o = order as usize + m.trailing_zeros() as usize;
        let pfn = self.by_order[o].pop()?;
        if self.by_order[o].is_empty() {
            self.mask &= !(1 << o);
        }
        self.pages -= 1u64 << o;
        Some(Held {
            pfn,
            order: o as u8,
        })
    }
    /// Every held block, emptying the stash.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = Held> + '_ {
        self.mask = 0;
        self.pages = 0;
        self.by_order.iter_mut().enumerate().flat_map(|(o, v)| {
            v.drain(..).map(move |pfn| Held {
                pfn,
                order: o as u8,
            })
        })
    }
}

impl Allocator {
    /// Move the allocated block at `from` to the held target `to` through the embedder.
    /// On `Moved`, `to` becomes the allocation and `from` is freed; on `Dropped`, `from` is
    /// freed and `to` stays held; on `Refused` nothing changes.
    pub(crate) fn migrate_to(
        &mut self,
        zi_from: ZoneId,
        from: Pfn,
        zi_to: ZoneId,
        to: Pfn,
        env: &mut dyn Env,
    ) -> MigrateOutcome {
        let m = *self.zones[zi_from].page(from);
        let n = 1u64 << m.order;
        let mt = MigrateType::from_u8(m.mt).unwrap_or(MigrateType::Movable);
        let out = env.migrate(from, to, m.order, m.cookie());
        match out {
            MigrateOutcome::Moved => {
                let zt = &mut self.zones[zi_to];
                let i = zt.idx(to);
                zt.pages[i] = PageMeta::alloc(m.order, m.mt, m.cookie());
                zt.account(to, n, Acct::Pcp, Acct::Alloc(mt));
                self.free_inner(zi_from, from, m.order, mt, 0, false);
                self.vm.add(Vm::PgmigrateSuccess, n);
                self.pages_migrated += n;
            }
            MigrateOutcome::Dropped => {
                self.free_inner(zi_from, from, m.order, mt, 0, false);
            }
            MigrateOutcome::Refused => {
                self.vm.add(Vm::PgmigrateFail, n);
            }
        }
        out
    }

    /// One round of the free scanner for a folio of `order` (the kernel's `compaction_alloc`:
    /// look in the stash, else run `isolate_freepages` once, then look again):
    /// - [`FreeScan::Found`]: the stash holds a block of at least `order` pages;
    /// - [`FreeScan::Short`]: the round isolated free pages, none in a block that large;
    /// - [`FreeScan::Met`]: the linear scanner reached the migrate scanner (`floor`).
    ///
    /// The round first searches the free lists ([`fast`], when `fs` allows), and runs the
    /// linear scanner from `*free_pfn` downward only when the stash is still empty; the linear
    /// scanner stops after a pageblock that brings the stash to `2^order` pages (the kernel's
    /// `nr_freepages >= nr_migratepages`; the model migrates one folio at a time, so the batch
    /// is this folio).
    fn isolate_freepages(
        &mut self,
        zi: ZoneId,
        free_pfn: &mut Pfn,
        floor: Pfn,
        stash: &mut Stash,
        order: u8,
        fs: &mut fast::FastSearch,
    ) -> FreeScan {
        if stash.has_at_least(order) {
            return FreeScan::Found;
        }
        let need = 1u64 << order;
        if fs.enabled() {
            self.fast_isolate_freepages(zi, free_pfn, floor, stash, need, fs);
        }
        let pbp = self.geo.pageblock_pages();
        let mut met = false;
        let mut scanned_a_block = false;
        // async direct compaction reads every 32nd entry of a pageblock, and every entry of
        // the pageblock after one that gave free pages (`isolate_freepages`' stride)
        let strided = fs.direct_async() && self.cfg.compaction_async_stride;
        let mut stride = if strided {
            fast::COMPACT_CLUSTER_MAX as u64
        } else {
            1
        };
        while stash.pages() == 0 || (scanned_a_block && stash.pages() < need) {
            if *free_pfn < floor + pbp || *free_pfn < self.zones[zi].span.start + pbp {
                met = true;
                break;
            }
            *free_pfn -= pbp;
            let block = *free_pfn;
            if !self.free_block_ok(zi, block) {
                continue;
            }
            let z = &mut self.zones[zi];
            let pb = z.pb(block);
            if pb.migratetype() != MigrateType::Movable || z.skipped(block, fs.hints) {
                continue;
            }
            if pb.free == 0 {
                // a walk would find nothing and reach the end (not counted as scanned)
                z.mark_skipped(block, fs.hints);
                continue;
            }
            scanned_a_block = true;
            // marked when the kernel's walk would have reached the pageblock's end: it stops
            // inside the pageblock that completes the batch and resumes there next time
            let before = stash.pages();
            if self.isolate_block(zi, block, stash, stride) && stash.pages() < need {
                self.zones[zi].mark_skipped(block, fs.hints);
            }
            if strided {
                stride = if stash.pages() > before {
                    1
                } else {
                    (stride * 2).min(fast::COMPACT_CLUSTER_MAX as u64)
                };
            }
        }
        if stash.has_at_least(order) {
            FreeScan::Found
        } else if met {
            FreeScan::Met
        } else {
            FreeScan::Short
        }
    }

    /// Whether the free scanner may isolate in the pageblock at `block` of zone `zi`: inside
    /// the zone, not isolated, not one whole free buddy (never broken up for targets), and
    /// allowed by the policy. The linear walk also wants a movable pageblock with free pages;
    /// the isolation around a buddy the free-list search found does not (`fast_isolate_around`).
    pub(crate) fn free_block_ok(&self, zi: ZoneId, block: Pfn) -> bool {
        let z = &self.zones[zi];
        if !z.pb_in_zone(block) || z.pb(block).is_isolated() {
            return false;
        }
        let first = z.page(block);
        !(first.state == PageState::Free && first.order >= self.geo.pageblock_order)
            && self.policy.compaction_target_ok(z, block)
    }

    /// Isolate every free buddy the walk of the pageblock at `block` reads into the stash (the
    /// model's `isolate_freepages_block`: a whole pageblock), stopping where taking the next
    /// buddy would bring the zone's free pages under min; counts the entries read. The walk
    /// reads the entry `stride` past the last page of the one before (past a free or allocated
    /// block, the block's last page): every entry at stride 1, one in 32 for the kernel's async
    /// free scanner. Returns whether the walk reached the pageblock's end.
    pub(crate) fn isolate_block(
        &mut self,
        zi: ZoneId,
        block: Pfn,
        stash: &mut Stash,
        stride: u64,
    ) -> bool {
        let end = block + self.geo.pageblock_pages();
        let mut p = block;
        let mut scanned = 0;
        while p < end {
            let z = &mut self.zones[zi];
            if stride == 1 {
                // the entries the loop below would only step over, counted in one go
                let run = z.plain_run(p, end);
                p += run;
                scanned += run;
                if p >= end {
                    break;
                }
            }
            let m = *z.page(p);
            scanned += 1;
            // the next entry read: `stride` past the last page of this entry's block
            let len = match m.state {
                PageState::Free => {
                    let n = 1u64 << m.order;
                    if !z.may_isolate(n) {
                        self.vm.add(Vm::CompactFreeScanned, scanned);
                        return false;
                    }
                    let h = z.hold_free(p);
                    stash.push(h);
                    self.vm.add(Vm::CompactIsolated, n);
                    n
                }
                PageState::Alloc | PageState::Pcp | PageState::Isolated => 1u64 << m.order,
                _ => 1,
            };
            p += len - 1 + stride;
        }
        self.vm.add(Vm::CompactFreeScanned, scanned);
        true
    }

    /// Compact one zone. `order` None = the whole zone (proactive / compact_memory).
    pub fn compact_zone(
        &mut self,
        zi: ZoneId,
        order: Option<u8>,
        prio: CompactPriority,
        req_mt: MigrateType,
        daemon: bool,
        env: &mut dyn Env,
    ) -> CompactResult {
        let pbp = self.geo.pageblock_pages();
        let pbo = self.geo.pageblock_order;
        let span = self.zones[zi].span;
        let start = span.start.div_ceil(pbp) * pbp;
        let end = span.end / pbp * pbp;
        let whole = order.is_none() || prio == CompactPriority::SyncFull;
        let hints = SkipHints::new(self.cfg.compaction_skip_hints, whole);
        if hints.set && self.zones[zi].compaction_restarting(order) {
            self.zones[zi].reset_isolation_suitable();
        }
        let mut migrate_pfn = if whole {
            start
        } else {
            self.zones[zi].compact.cached_migrate_pfn.max(start)
        };
        let mut free_pfn = if whole || self.zones[zi].compact.cached_free_pfn == 0 {
            end
        } else {
            self.zones[zi].compact.cached_free_pfn.min(end)
        };
        let mut stash = Stash::default();
        let mut fs = fast::FastSearch::new(
            order,
            end,
            !daemon,
            !daemon && prio == CompactPriority::Async,
            hints,
        );
        let result;
        let target = order.unwrap_or(pbo);
        // compaction capture: direct compaction only (the kernel's capture_control belongs to
        // the compacting task)
        let capture = order.filter(|_| !daemon && self.cfg.compaction_capture);
        // skip-on-failure (`isolate_migratepages_block` in async direct compaction): the size
        // of the order-aligned chunk that is moved whole or not at all
        let chunk = match order {
            Some(o)
                if !daemon
                    && prio == CompactPriority::Async
                    && self.cfg.compaction_skip_on_failure =>
            {
                Some((1u64 << o).min(pbp))
            }
            _ => None,
        };
        'blocks: loop {
            if migrate_pfn + pbp > free_pfn {
                result = CompactResult::Complete;
                break;
            }
            let block = migrate_pfn;
            migrate_pfn += pbp;
            // whether the scanner reads the pageblock (`isolation_suitable`,
            // `suitable_migration_source`, the policy's veto) and whether a walk could find a
            // folio to move; a pageblock read without a folio isolated is marked skipped
            let (read, ok) = {
                let z = &self.zones[zi];
                let pb = z.pb(block);
                let type_ok = prio != CompactPriority::Async || daemon || {
                    let bt = pb.migratetype();
                    if req_mt == MigrateType::Movable {
                        bt == MigrateType::Movable || bt == MigrateType::Cma
                    } else {
                        bt == req_mt
                    }
                };
                let first = z.page(block);
                let read = z.pb_in_zone(block)
                    && !pb.is_isolated()
                    && !z.skipped(block, hints)
                    && type_ok
                    && self.policy.compaction_source_ok(z, block);
                let worth = pb.movable_pages() > 0
                    && !(first.state == PageState::Alloc && first.order >= pbo);
                (read, read && worth)
            };
            let mut isolated = false;
            if ok {
                let mut p = block;
                let mut scanned = 0u64;
                // the end of the chunk the pre-check passed (skip-on-failure runs only)
                let mut chunk_ok_until = block;
                while p < block + pbp {
                    if let Some(len) = chunk.filter(|_| p >= chunk_ok_until) {
                        // async direct compaction moves an order-aligned chunk only if every
                        // folio in it would isolate; the first that would not ends the chunk
                        let end = (p | (len - 1)) + 1;
                        match self.chunk_isolates(zi, p, end, target, env) {
                            Ok(()) => chunk_ok_until = end,
                            Err(read) => {
                                scanned += read;
                                p = end;
                                continue;
                            }
                        }
                    }
                    let m = *self.zones[zi].page(p);
                    scanned += 1;
                    match m.state {
                        PageState::Alloc if migration_source(&m, target, pbo) => {
                            match self.isolate_freepages(
                                zi,
                                &mut free_pfn,
                                migrate_pfn,
                                &mut stash,
                                m.order,
                                &mut fs,
                            ) {
                                FreeScan::Found => {}
                                FreeScan::Met => {
                                    result = CompactResult::Partial;
                                    break 'blocks;
                                }
                                FreeScan::Short => {
                                    // migrate_pages' -ENOMEM: the large folio is split where
                                    // the embedder can split it (its base pages stay where
                                    // they are; a later run may move them), and the run ends
                                    self.split_allocated(zi, p, env);
                                    result = CompactResult::Contended;
                                    break 'blocks;
                                }
                            }
                            let to = self.zones[zi]
                                .target_from_stash(&mut stash, m.order)
                                .expect("stash has a block");
                            let out = self.migrate_to(zi, p, zi, to, env);
                            // a folio the embedder refuses (pinned) is one the kernel's
                            // isolation would have passed over
                            isolated |= out != MigrateOutcome::Refused;
                            if out != MigrateOutcome::Moved {
                                stash.push(Held {
                                    pfn: to,
                                    order: m.order,
                                });
                            }
                            if let Some(o) = capture.filter(|_| out != MigrateOutcome::Refused) {
                                if self.zones[zi].captures(p, o, req_mt) {
                                    result = CompactResult::Success;
                                    break 'blocks;
                                }
                            }
                            p += 1u64 << m.order;
                        }
                        PageState::Free
                        | PageState::Alloc
                        | PageState::Pcp
                        | PageState::Isolated => p += 1u64 << m.order,
                        _ => p += 1,
                    }
                }
                self.vm.add(Vm::CompactMigrateScanned, scanned);
                if daemon {
                    self.vm.add(Vm::CompactDaemonMigrateScanned, scanned);
                }
            }
            if read && !isolated {
                self.zones[zi].mark_skipped(block, hints);
            }
            // finish test at the pageblock boundary
            if let Some(o) = order {
                let z = &self.zones[zi];
                let done = (o as usize..z.geo.nr_orders()).any(|k| {
                    z.nr_free[k][req_mt.idx()] > 0
                        || (k >= pbo as usize
                            && req_mt.fallbacks().iter().any(|t| z.nr_free[k][t.idx()] > 0))
                });
                if done {
                    result = CompactResult::Success;
                    break;
                }
            } else if extfrag_for_order(&self.zones[zi], pbo) <= self.proactive_low() {
                result = CompactResult::Success;
                break;
            }
        }
        for h in stash.drain() {
            self.zones[zi].release_held(h);
        }
        let _ = self.zones[zi].take_cat_changes();
        let z = &mut self.zones[zi];
        if hints.set
            && !daemon
            && matches!(result, CompactResult::Complete | CompactResult::Partial)
        {
            // the scanners met in a direct compaction: kswapd clears the marks when it sleeps
            z.compact.blockskip_flush = true;
        }
        if result == CompactResult::Complete {
            z.compact.cached_migrate_pfn = start;
            z.compact.cached_free_pfn = end;
        } else if !whole {
            z.compact.cached_migrate_pfn = migrate_pfn;
            z.compact.cached_free_pfn = free_pfn;
        }
        result
    }

    /// Would every folio of `[p, end)` (part of one order-aligned chunk) isolate for a
    /// compaction to `target`? Free blocks pass; an allocated movable folio smaller than the
    /// target and the pageblock passes unless the embedder reports it maybe pinned (the
    /// kernel's isolation sees the extra reference); anything else (a kernel page, a page on a
    /// per-CPU list, a larger folio, a reserved page) fails. `Err` carries the entries read up
    /// to and including the one that failed.
    fn chunk_isolates(
        &self,
        zi: ZoneId,
        mut p: Pfn,
        end: Pfn,
        target: u8,
        env: &dyn Env,
    ) -> Result<(), u64> {
        let z = &self.zones[zi];
        let pbo = self.geo.pageblock_order;
        let mut read = 0;
        while p < end {
            let m = *z.page(p);
            read += 1;
            match m.state {
                PageState::Free => p += 1u64 << m.order,
                PageState::Alloc
                    if migration_source(&m, target, pbo) && !env.maybe_pinned(p, m.cookie()) =>
                {
                    p += 1u64 << m.order
                }
                _ => return Err(read),
            }
        }
        Ok(())
    }

    pub(crate) fn proactive_low(&self) -> u64 {
        100u64.saturating_sub(self.cfg.compaction_proactiveness)
    }

    /// Direct compaction over the zonelist, then a freelist retry.
    pub(crate) fn direct_compact(
        &mut self,
        req: AllocRequest,
        flags: AllocFlags,
        preferred: ZoneId,
        highest: usize,
        prio: CompactPriority,
        env: &mut dyn Env,
    ) -> (Option<Pfn>, CompactResult) {
        let order = req.order;
        let mt = req.gfp.migratetype();
        let mut any_ran = false;
        let before = self.work_snap();
        // try_to_compact_pages: `rc = max(status, rc)` over the zonelist. The caller's decisions
        // (a costly __GFP_NORETRY request gives up when compaction was SKIPPED or DEFERRED)
        // read the best zone's outcome, not the last zone's: the DMA zone, tried last, is
        // nearly always skipped for a Normal request (its lowmem reserve).
        let mut rc = CompactResult::Skipped;
        for zi in (0..=preferred).rev() {
            let z = &mut self.zones[zi];
            // this zone's status, and whether the freelists are retried after it (not when
            // compaction was deferred or judged unsuitable)
            let (status, retry) = if prio != CompactPriority::SyncFull && deferred(z, order) {
                (CompactResult::Deferred, false)
            } else if z.watermark_ok(
                order,
                z.wmark_pages(flags.wmark()),
                highest,
                flags,
                z.free_pages,
            ) {
                // compaction_suit_allocation_order: the order is already there
                (CompactResult::Success, true)
            } else if !compaction_suitable(
                z,
                order,
                z.wmark[WMARK_MIN],
                highest,
                self.cfg.extfrag_threshold,
            ) {
                (CompactResult::Skipped, false)
            } else {
                any_ran = true;
                (
                    self.compact_zone(zi, Some(order), prio, mt, false, env),
                    true,
                )
            };
            rc = rc.max(status);
            if !retry {
                continue;
            }
            if let Some(p) = self.get_page_from_freelist(req, flags, preferred, highest) {
                if any_ran {
                    self.vm.inc(Vm::CompactStall);
                    self.vm.inc(Vm::CompactSuccess);
                    self.count_compaction(order, true, &before);
                }
                let z = &mut self.zones[zi];
                z.compact.considered = 0;
                z.compact.defer_shift = 0;
                if order >= z.compact.order_failed {
                    z.compact.order_failed = order + 1;
                }
                return (Some(p), CompactResult::Success);
            }
            if matches!(status, CompactResult::Complete | CompactResult::Partial)
                && prio != CompactPriority::Async
            {
                defer(&mut self.zones[zi], order);
            }
        }
        if any_ran {
            self.vm.inc(Vm::CompactStall);
            self.vm.inc(Vm::CompactFail);
            self.count_compaction(order, false, &before);
        }
        (None, rc)
    }

    /// Record one direct compaction of a request of `order` in [`Allocator::compactions`]:
    /// whether the request then got its page, and the scanners' work since `before`.
    fn count_compaction(&mut self, order: u8, success: bool, before: &crate::cost::WorkSnap) {
        let d = before.since(&self.work_snap());
        self.compactions[order as usize].add(success, &d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::MemoryLayout;
    use crate::{Config, Gfp};

    /// `compaction_suitable`: a costly order asks for the low watermark, a smaller one for the
    /// min watermark, each plus twice the request.
    #[test]
    fn a_costly_order_compacts_only_above_the_low_watermark() {
        let cfg = Config {
            pcp: false,
            ..Config::default()
        };
        let mut a = Allocator::new(&MemoryLayout::tiny_two_zone(), cfg).unwrap();
        let z = &mut a.zones[1];
        let free = z.free_pages;
        z.wmark[WMARK_MIN] = free - 40;
        z.wmark[WMARK_LOW] = free;
        let min = z.wmark[WMARK_MIN];
        // order 3 (not costly): min + 16 < free
        assert!(compaction_suitable(z, 3, min, 1, 500));
        // order 4 (costly): min + (low - min) + 32 > free
        assert!(!compaction_suitable(z, 4, min, 1, 500));
        // the same order once low is min: min + 32 < free (the zone's large free blocks make
        // the fragmentation index -1000, which never blocks)
        z.wmark[WMARK_LOW] = min;
        assert!(compaction_suitable(z, 4, min, 1, 500));
    }

    /// The async free scanner's stride: a strided walk reads one entry in `stride` (here
    /// beyond the pageblock, so its first entry only) and takes only the free pages it lands
    /// on; a walk of stride 1 takes them all.
    #[test]
    fn a_strided_walk_reads_one_entry_in_stride() {
        for (stride, taken, read) in [(1, 2, 8), (32, 1, 1)] {
            let mut cfg = Config {
                pcp: false,
                ..Config::default()
            };
            cfg.watermarks.min_free_kbytes = Some(0);
            let mut a = Allocator::new(&MemoryLayout::tiny_two_zone(), cfg).unwrap();
            let span = a.zones[1].span;
            for p in span.start..span.end {
                a.alloc_at(p, 0, Gfp::HIGHUSER_MOVABLE, p as u32).unwrap();
            }
            let pbp = a.geo.pageblock_pages();
            let block = span.start + 2 * pbp;
            a.free(block, 0, 0).unwrap();
            a.free(block + 3, 0, 0).unwrap();
            let mut stash = Stash::default();
            let before = a.vm.get(Vm::CompactFreeScanned);
            assert!(a.isolate_block(1, block, &mut stash, stride));
            assert_eq!(stash.pages(), taken, "stride {stride}");
            assert_eq!(
                a.vm.get(Vm::CompactFreeScanned) - before,
                read,
                "stride {stride}"
            );
            for h in stash.drain() {
                a.zones[1].release_held(h);
            }
            a.check().unwrap();
        }
    }
}
