//! The free scanner's free-list search (the kernel's `fast_isolate_freepages`, 5.1+).
//!
//! Before it walks pageblocks, a compaction run for a known order looks for a migration target
//! on the MOVABLE free lists of the orders below the requested one: a free buddy in the top
//! quarter of the range the free scanner has left (`low_pfn`), else the highest one seen in the
//! top half (`min_pfn`). It takes that buddy, then (unless the caller is async direct
//! compaction) every other free buddy of its pageblock (`fast_isolate_around`). Each list is
//! read from its tail, a few entries per order (the limit halves with every failed search of
//! the run and with every candidate that is only in the top half), and the entry where the
//! search stopped becomes the list's head so that the next search meets entries it has not
//! seen (`move_freelist_head`). When the search finds nothing at the start of a scan, the
//! linear scanner starts at the highest pageblock it saw above `min_pfn`, or, for direct
//! compaction, at `min_pfn` itself.
//!
//! With per-SPB free lists (spb, patch 16 of the series, text not found) the search reads the
//! SPBs' lists from the highest SPB down to the SPB holding `min_pfn`, as one list: the limit
//! counts entries over all of them, the rotation applies to the SPB list where the search
//! stopped, and the lists of SPBs that may give no targets (a tainted SPB at its reserve,
//! patch 39) are passed over. That is our inference: per-SPB lists let the search read only
//! the part of the zone where a candidate can lie, and the order it reads them in is the one
//! the top-quarter preference favours.
//!
//! A walk around the buddy that reaches the end of its pageblock without completing the batch
//! marks the pageblock skipped (module `skip`). Not modelled: the retyping of a pageblock when
//! a buddy of half a pageblock or more is isolated, and the free scanner's cached position
//! being raised to the highest block seen.

use crate::geometry::Pfn;
use crate::migratetype::MigrateType;
use crate::page::NIL;
use crate::vmstat::Vm;
use crate::zone::ZoneId;
use crate::Allocator;

use super::{SkipHints, Stash};

/// `COMPACT_CLUSTER_MAX` (= `SWAP_CLUSTER_MAX`): the kernel's migration batch, and the base of
/// the free-list search limit.
pub(crate) const COMPACT_CLUSTER_MAX: u32 = 32;

/// The search's per-run state (the kernel keeps it in `struct compact_control`).
pub(crate) struct FastSearch {
    /// The requested order (`cc->order`); the search runs only for a known order above 0.
    order: Option<u8>,
    /// The order the next search starts at (`cc->search_order`).
    search_order: i32,
    /// Failed searches in this run (`cc->fast_search_fail`).
    fail: u32,
    /// The zone's end as the free scanner starts from it: a search from there is the start of
    /// a scan (`compact_init_free_pfn`) and may look deeper.
    init_free: Pfn,
    /// Async direct compaction: no isolation around the buddy found.
    direct_async: bool,
    /// Direct compaction (not kcompactd): a fruitless first search moves the linear scanner to
    /// `min_pfn`.
    direct: bool,
    /// How the run reads and sets the skip hints (module `skip`; the kernel's
    /// `ignore_skip_hint` and `no_set_skip_hint` of the same `compact_control`).
    pub(crate) hints: SkipHints,
}

impl FastSearch {
    /// State for a run of `order` (None: the whole zone, no search) whose free scanner starts at
    /// `init_free`.
    pub(crate) fn new(
        order: Option<u8>,
        init_free: Pfn,
        direct: bool,
        direct_async: bool,
        hints: SkipHints,
    ) -> Self {
        FastSearch {
            hints,
            order: order.filter(|&o| o > 0),
            search_order: order.map_or(0, |o| o as i32),
            fail: 0,
            init_free,
            direct_async,
            direct,
        }
    }
    /// Async direct compaction (`cc->mode == MIGRATE_ASYNC` outside kcompactd).
    pub(crate) fn direct_async(&self) -> bool {
        self.direct_async
    }
    pub(crate) fn enabled(&self) -> bool {
        self.order.is_some()
    }
    /// `freelist_scan_limit`: 33, 17, 9, 5, 3, 2, 1, ... with every failed search.
    fn scan_limit(&self) -> u32 {
        (COMPACT_CLUSTER_MAX >> self.fail.min(31)) + 1
    }
    /// The next order to read after `order` (downward, wrapping to `cc_order - 1`), or None
    /// when the search came round to where it started (which then starts one order lower
    /// next time).
    fn next_order(&mut self, cc_order: i32, order: i32) -> Option<i32> {
        let mut o = order - 1;
        if o < 0 {
            o = cc_order - 1;
        }
        if o == self.search_order {
            self.search_order -= 1;
            if self.search_order < 0 {
                self.search_order = cc_order - 1;
            }
            return None;
        }
        Some(o)
    }
}

impl Allocator {
    /// The free-list search for a folio of `need` pages; see the module documentation.
    /// `free_pfn` is the linear scanner's position (exclusive: the next pageblock it scans
    /// ends there) and `floor` the migrate scanner's.
    pub(crate) fn fast_isolate_freepages(
        &mut self,
        zi: ZoneId,
        free_pfn: &mut Pfn,
        floor: Pfn,
        stash: &mut Stash,
        need: u64,
        fs: &mut FastSearch,
    ) {
        let Some(cc_order) = fs.order.map(|o| o as i32) else {
            return;
        };
        let pbp = self.geo.pageblock_pages();
        let mov = MigrateType::Movable.idx();
        // the kernel's cc->free_pfn is the start of the next pageblock the scanner reads
        let kfree = free_pfn.saturating_sub(pbp);
        let scan_start = *free_pfn >= fs.init_free;
        let mut limit = if scan_start {
            (pbp >> 1) as u32
        } else {
            (fs.scan_limit() >> 1).max(1)
        };
        let distance = kfree.saturating_sub(floor);
        let low_pfn = (kfree - distance / 4) & !(pbp - 1);
        let min_pfn = (kfree - distance / 2) & !(pbp - 1);
        fs.search_order = fs.search_order.min(cc_order - 1);
        let zone_start = self.zones[zi].span.start;
        let nb = self.zones[zi].areas.len();
        let mut nr_scanned = 0u64;
        let mut highest: Pfn = 0;
        let mut page: Option<Pfn> = None;
        let mut order = fs.search_order;
        while page.is_none() && order >= 0 {
            let o = order as usize;
            let mut order_scanned = 0u32;
            let mut high: Option<(usize, u32)> = None;
            let mut stop: Option<(usize, u32)> = None;
            let z = &self.zones[zi];
            'walk: for b in (0..nb).rev() {
                if z.per_spb_lists {
                    // an SPB wholly below min_pfn holds no candidate: the walk ends there
                    let spb_end = (b as u64 + z.spb_base + 1) << z.geo.spb_order;
                    if spb_end <= min_pfn {
                        break 'walk;
                    }
                    if !self.policy.compaction_spb_ok(z, b) {
                        continue;
                    }
                }
                let mut i = z.areas[b].last(o, mov).unwrap_or(NIL);
                while i != NIL {
                    let pfn = z.pfn_of(i);
                    order_scanned += 1;
                    nr_scanned += 1;
                    if pfn >= highest {
                        highest = (pfn & !(pbp - 1)).max(zone_start);
                    }
                    // the series' reserve rule (patch 39) applies to the buddies found here
                    // as to the linear scanner's pageblocks
                    let ok = self.policy.compaction_target_ok(z, pfn);
                    if ok && pfn >= low_pfn {
                        fs.fail = 0;
                        fs.search_order = order;
                        page = Some(pfn);
                        stop = Some((b, i));
                        break 'walk;
                    }
                    if ok && pfn >= min_pfn && high.is_none_or(|(_, h)| pfn > z.pfn_of(h)) {
                        high = Some((b, i));
                        limit >>= 1;
                    }
                    if order_scanned >= limit {
                        stop = Some((b, i));
                        break 'walk;
                    }
                    i = z.pages[i as usize].prev;
                }
            }
            if page.is_none() {
                if let Some((b, i)) = high {
                    page = Some(self.zones[zi].pfn_of(i));
                    stop = Some((b, i));
                }
            }
            if let Some((b, i)) = stop {
                let z = &mut self.zones[zi];
                z.areas[b].rotate_to_head(&mut z.pages, i, o, mov);
            }
            if let Some(pfn) = page {
                let z = &mut self.zones[zi];
                let n = 1u64 << o;
                if !z.may_isolate(n) {
                    // __isolate_free_page refused: the search ends here (and starts one
                    // order lower next time)
                    page = None;
                    let _ = fs.next_order(cc_order, fs.search_order + 1);
                    break;
                }
                let h = z.hold_free(pfn);
                stash.push(h);
                self.vm.add(Vm::CompactIsolated, n);
                nr_scanned += n - 1;
            }
            if stash.pages() >= need {
                break;
            }
            if order_scanned >= limit {
                limit = (limit >> 1).max(1);
            }
            if page.is_some() {
                break;
            }
            match fs.next_order(cc_order, order) {
                Some(n) => order = n,
                None => break,
            }
        }
        self.vm.add(Vm::CompactFreeScanned, nr_scanned);
        let mut around = page;
        if page.is_none() {
            fs.fail += 1;
            if scan_start {
                if highest != 0 && highest >= min_pfn {
                    around = Some(highest);
                    *free_pfn = highest + pbp;
                } else if fs.direct && self.zones[zi].pb_in_zone(min_pfn) {
                    // suitable_migration_target: a movable pageblock (the reserve rule is
                    // checked with every block below)
                    if self.zones[zi].pb(min_pfn).migratetype() == MigrateType::Movable {
                        around = Some(min_pfn);
                    }
                    *free_pfn = min_pfn + pbp;
                }
            }
        }
        // fast_isolate_around: the rest of the found buddy's pageblock
        if let Some(pfn) = around {
            let block = pfn & !(pbp - 1);
            if stash.pages() < need
                && !fs.direct_async
                && self.free_block_ok(zi, block)
                && self.isolate_block(zi, block, stash, 1)
                && stash.pages() < need
            {
                // walked to its end without completing the batch (full or nearly full): later
                // runs pass it over
                self.zones[zi].mark_skipped(block, fs.hints);
            }
        }
    }
}
