//! The embedder's side of the allocator: who owns movable pages, who can reclaim, who can kill.
//!
//! The allocator never knows what a page holds. When it needs a page moved (compaction,
//! contiguous allocation, spb evacuation) it asks the [`Env`]; when it needs memory back (kswapd,
//! direct reclaim, the OOM killer) the Env returns the blocks it gave up and the allocator frees
//! them. Every method has a conservative default, so `NoEnv` (no embedder) is a valid Env that
//! refuses every migration and reclaims nothing.

use alloc::vec::Vec;

use crate::geometry::Pfn;

/// What became of a migration request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MigrateOutcome {
    /// The content now lives at the target; the source block is to be freed.
    Moved,
    /// The page cannot move now (pinned for DMA, under writeback, ...); nothing changed.
    Refused,
    /// The embedder dropped the content instead (clean page cache); the source block is to be
    /// freed and the target is not needed.
    Dropped,
}

/// A block the embedder gave back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FreedBlock {
    pub pfn: Pfn,
    pub order: u8,
}

/// Who is reclaiming.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reclaimer {
    Kswapd,
    Direct,
    /// The 1 GiB probe or a contiguous allocation: clean page cache and reclaimable slab only.
    Contig,
    /// The spb policy asking for slab shrinking under SPB pressure (patch 28).
    SpbShrink,
}

/// A reclaim request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReclaimRequest {
    /// Pages wanted.
    pub nr_pages: u64,
    /// Order of the allocation that triggered it (0 for background reclaim).
    pub order: u8,
    pub who: Reclaimer,
    /// Writeback and swap are allowed (false for boosted kswapd reclaim and for probes).
    pub may_swap: bool,
    /// Shrinkers (reclaimable slab) may run.
    pub shrink_slab: bool,
    /// Optional pfn range to prefer (spb: shrink slab living in tainted SPBs).
    pub prefer_range: Option<(Pfn, Pfn)>,
}

/// The embedder.
pub trait Env {
    /// Move the allocated block of `order` at `from` (tagged `cookie`) to the free block `to`.
    fn migrate(&mut self, from: Pfn, to: Pfn, order: u8, cookie: u32) -> MigrateOutcome {
        let _ = (from, to, order, cookie);
        MigrateOutcome::Refused
    }
    /// Reclaim the allocated block of `order` at `pfn` (tagged `cookie`) instead of migrating
    /// it, if it is clean page cache: what a contiguous allocation does with every page of its
    /// range before it migrates the rest (the kernel's `reclaim_clean_pages_from_list` in
    /// `alloc_contig_range`), so such a page needs no migration target. Return true when the
    /// content is gone (the allocator frees the block); false (nothing changed) otherwise: the
    /// block is migrated. Default: false.
    fn reclaim_clean(&mut self, pfn: Pfn, order: u8, cookie: u32) -> bool {
        let _ = (pfn, order, cookie);
        false
    }
    /// A hint, nothing more: the allocator will soon ask about the allocated block tagged
    /// `cookie` ([`Env::reclaim_clean`], [`Env::migrate`]). A contiguous allocation walks its
    /// range block by block, so an embedder whose per-block records are large and scattered
    /// can start loading the next ones while the current block moves. It must not change
    /// anything the allocator can observe; `cookie` may be stale (the block freed
    /// meanwhile). Default: nothing.
    fn prefetch(&self, cookie: u32) {
        let _ = cookie;
    }
    /// Split the allocated block of `order` at `pfn` (tagged `cookie`) into `2^order` base
    /// pages, as the kernel's migration splits a large folio it found no target for: push one
    /// cookie per base page into `out`, in pfn order (the first is the block's own page), and
    /// return true; false (nothing changed) when the block cannot be split (pinned, or not a
    /// splittable folio).
    fn split(&mut self, pfn: Pfn, order: u8, cookie: u32, out: &mut Vec<u32>) -> bool {
        let _ = (pfn, order, cookie, out);
        false
    }
    /// May the allocated block at `pfn` (tagged `cookie`) be pinned, so that migrating it
    /// would be refused? The kernel's `folio_maybe_dma_pinned`: a cheap look at the folio
    /// before any migration is attempted (spb-next `contig_pinned`). Default: false (the
    /// embedder knows nothing; every block is tried).
    fn maybe_pinned(&self, pfn: Pfn, cookie: u32) -> bool {
        let _ = (pfn, cookie);
        false
    }
    /// The pages of each `unit`-aligned range covering `[start, end)` that
    /// [`Env::reclaim_clean`] would drop (clean, unpinned page cache): `out[i]` for the range
    /// at `start / unit * unit + i * unit` (spb-next `contig_clean_first`: such pages need no
    /// migration target). A range reaching past `[start, end)` may be counted whole: only
    /// ranges inside the zone are candidates. Default: nothing known, `out` left empty.
    fn clean_cache_by_range(&self, start: Pfn, end: Pfn, unit: u64, out: &mut Vec<u64>) {
        let _ = (start, end, unit, out);
    }
    /// An upper bound of the pages a reclaim without swap could free now (clean page cache,
    /// and the slab pages a full shrink would free: those whose objects are all unused): what
    /// a contiguous allocation can count on beside free memory. The tighter the bound, the
    /// fewer candidates spb-next's `contig_fit` tries that cannot be emptied.
    fn reclaimable_without_swap(&self) -> u64 {
        0
    }
    /// Give back memory; push every freed block into `out` (the allocator frees them).
    fn reclaim(&mut self, req: ReclaimRequest, out: &mut Vec<FreedBlock>) {
        let _ = (req, out);
    }
    /// Pages the embedder could reclaim (clean + dirty page cache, swappable anon, shrinkable
    /// slab), for the reclaim retry decision.
    fn reclaimable_pages(&self) -> u64 {
        0
    }
    /// Kill a process: push all its blocks into `out`. Return false when there is nothing to
    /// kill.
    fn oom_kill(&mut self, out: &mut Vec<FreedBlock>) -> bool {
        let _ = out;
        false
    }
}

/// An embedder that owns nothing movable: migration is refused, nothing is reclaimable.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoEnv;

impl Env for NoEnv {}
