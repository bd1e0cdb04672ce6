//! Compaction's skip hints: the pageblock bit `PB_compact_skip` (`PB_migrate_skip` before 6.16)
//! and the rules that set, read and clear it.
//!
//! A scanner that walks a pageblock to its end marks it skipped when the walk was of no use
//! for a while: the free scanner when the walk ended without the batch it wanted (the
//! pageblock's free pages are all isolated, or were too few; the kernel stops inside the
//! pageblock that completes the batch, unmarked, and the model, which isolates whole
//! pageblocks, leaves that one unmarked too), the free-list search's isolation around a buddy
//! likewise (`fast_isolate_around`), the migrate scanner when the walk isolated nothing (a
//! folio the embedder refuses to move counts as not isolated: the kernel's isolation passes
//! pinned folios over). Both linear
//! scanners then pass a marked pageblock over without reading it, unless the run ignores the
//! hints: whole-zone runs (proactive compaction, `compact_memory`) and direct compaction at
//! `SyncFull`, the priority of last resort (`compact_zone_order`'s `ignore_skip_hint`).
//!
//! The marks are cleared all at once (`__reset_isolation_suitable`, which also sends both
//! scanners back to the zone's ends):
//! - when kswapd goes to sleep with the node balanced, in every zone where a direct
//!   compaction's scanners met since the last clear (`compact_blockskip_flush`;
//!   [`crate::Allocator`]'s kswapd turn);
//! - when a compaction starts after the deferral reached its maximum
//!   (`compaction_restarting`).
//!
//! # Invariants
//! `CompactState::skipped` lists, once each, the start pfn of every pageblock of the zone
//! whose [`pbflag::SKIP`] bit is set (checked by [`crate::check`]): a clear costs the marks
//! set since the last one, not a walk over the zone.
//!
//! Switch: [`crate::Config::compaction_skip_hints`] (on by default). Off is the model before
//! 2026-12-05, which had no hints: every run re-read the pageblocks earlier runs found useless.

use crate::geometry::Pfn;
use crate::pageblock::pbflag;
use crate::zone::Zone;

/// How one compaction run uses the hints.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SkipHints {
    /// Pass marked pageblocks over (`!cc->ignore_skip_hint`).
    pub check: bool,
    /// Mark pageblocks whose walk was of no use (`!cc->no_set_skip_hint`).
    pub set: bool,
}

impl SkipHints {
    /// The hints of a run: none when the switch is off; set but not read by a run that
    /// ignores them (`whole`).
    pub(crate) fn new(enabled: bool, whole: bool) -> Self {
        SkipHints {
            check: enabled && !whole,
            set: enabled,
        }
    }
}

impl Zone {
    /// Whether the pageblock holding `block` is marked skipped and the run reads the marks.
    #[inline]
    pub(crate) fn skipped(&self, block: Pfn, hints: SkipHints) -> bool {
        hints.check && self.pb(block).flags & pbflag::SKIP != 0
    }

    /// Mark the pageblock holding `block` skipped, if the run sets marks
    /// (`set_pageblock_skip`).
    pub(crate) fn mark_skipped(&mut self, block: Pfn, hints: SkipHints) {
        if !hints.set {
            return;
        }
        let i = self.pb_idx(block);
        if self.pageblocks[i].flags & pbflag::SKIP == 0 {
            self.pageblocks[i].flags |= pbflag::SKIP;
            let pbp = self.geo.pageblock_pages();
            self.compact.skipped.push(block & !(pbp - 1));
        }
    }

    /// Clear every mark and send both scanners back to the zone's ends
    /// (`__reset_isolation_suitable`).
    pub(crate) fn reset_isolation_suitable(&mut self) {
        let mut skipped = core::mem::take(&mut self.compact.skipped);
        for &b in &skipped {
            let i = self.pb_idx(b);
            self.pageblocks[i].flags &= !pbflag::SKIP;
        }
        skipped.clear();
        self.compact.skipped = skipped;
        self.compact.cached_migrate_pfn = 0;
        self.compact.cached_free_pfn = 0;
        self.compact.blockskip_flush = false;
    }

    /// Whether compaction at `order` restarts after the deferral reached its maximum
    /// (`compaction_restarting`): the run clears the marks first.
    pub(crate) fn compaction_restarting(&self, order: Option<u8>) -> bool {
        let Some(order) = order else {
            return false;
        };
        order >= self.compact.order_failed
            && self.compact.defer_shift == super::COMPACT_MAX_DEFER_SHIFT
            && self.compact.considered >= 1 << self.compact.defer_shift
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compaction::COMPACT_MAX_DEFER_SHIFT;
    use crate::layout::MemoryLayout;
    use crate::{Allocator, Config};

    #[test]
    fn restarting_after_maximal_deferral_and_the_clear() {
        let mut a = Allocator::new(&MemoryLayout::tiny_two_zone(), Config::default()).unwrap();
        let z = &mut a.zones[1];
        let on = SkipHints::new(true, false);
        let pbp = z.geo.pageblock_pages();
        let b = z.span.start + 3 * pbp;
        z.mark_skipped(b + 1, on);
        z.mark_skipped(b, on);
        assert!(z.skipped(b, on) && !z.skipped(b, SkipHints::new(true, true)));
        assert_eq!(z.compact.skipped, [b], "listed once, by its start");
        z.mark_skipped(b + pbp, SkipHints::new(false, false));
        assert!(!z.skipped(b + pbp, on), "a run without hints sets none");
        // deferral at its maximum, the count reached: a compaction of that order or above
        // restarts, one of a lower order or of the whole zone does not
        z.compact.order_failed = 4;
        z.compact.defer_shift = COMPACT_MAX_DEFER_SHIFT - 1;
        z.compact.considered = 64;
        assert!(!z.compaction_restarting(Some(4)), "shift below the maximum");
        z.compact.defer_shift = COMPACT_MAX_DEFER_SHIFT;
        z.compact.considered = 63;
        assert!(!z.compaction_restarting(Some(4)), "count not reached");
        z.compact.considered = 64;
        assert!(z.compaction_restarting(Some(4)) && z.compaction_restarting(Some(9)));
        assert!(!z.compaction_restarting(Some(3)) && !z.compaction_restarting(None));
        z.compact.cached_free_pfn = b;
        z.compact.blockskip_flush = true;
        z.reset_isolation_suitable();
        assert!(!z.skipped(b, on) && z.compact.skipped.is_empty());
        assert_eq!(
            (z.compact.cached_free_pfn, z.compact.blockskip_flush),
            (0, false)
        );
        a.check().unwrap();
    }
}
