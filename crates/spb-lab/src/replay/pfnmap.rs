//! The replay's one per-pfn byte encoding, shared by the decode pass (its shadow of the kernel's
//! own allocations) and the prefill (the pages in use in a kpageflags snapshot).
//!
//! **State byte** per pfn: [`S_FREE`], [`S_TAIL`] (inside an allocated block), [`S_UNINIT`]
//! (deferred-init memory not handed to the allocator yet), [`S_RESERVED`] (a layout
//! reservation), [`S_HOLE`] (no memory or no zone), or [`S_HEAD`]` | order` (the first pfn of an
//! allocated block of that order).
//!
//! **Flags byte** per pfn: bits 4-5 ([`F_MT_MASK`]) hold a migratetype — of the allocation at a
//! head in the decode pass, of each page in use in the prefill; bit 6 ([`F_SLAB`], prefill) marks
//! a slab page (Reclaimable if its pageblock is labelled so); bits 0-3 are the decode pass's
//! bookkeeping ([`F_TOUCHED`], [`F_PREFILL`], [`F_AWAIT_BATCHED`], [`F_PCP`]); bit 7
//! ([`F_COMPOUND`], prefill) is kpageflags' compound-head bit until the block is formed.

use spb_alloc::layout::MemoryLayout;

pub(crate) const S_FREE: u8 = 0;
pub(crate) const S_TAIL: u8 = 1;
pub(crate) const S_UNINIT: u8 = 2;
pub(crate) const S_RESERVED: u8 = 3;
pub(crate) const S_HOLE: u8 = 4;
pub(crate) const S_HEAD: u8 = 0x80;
/// The order bits of a head's state.
pub(crate) const S_ORDER_MASK: u8 = 0x1f;

/// The page was touched by the trace (allocated or freed).
pub(crate) const F_TOUCHED: u8 = 1;
/// The block comes from the prefill.
pub(crate) const F_PREFILL: u8 = 2;
/// Its `mm_page_free_batched` marker may follow.
pub(crate) const F_AWAIT_BATCHED: u8 = 4;
/// On a kernel per-CPU list, as far as the trace tells.
pub(crate) const F_PCP: u8 = 8;
/// Bits 4-5: a migratetype.
pub(crate) const F_MT_SHIFT: u8 = 4;
pub(crate) const F_MT_MASK: u8 = 0x30;
/// A slab page (prefill).
pub(crate) const F_SLAB: u8 = 0x40;
/// The kpageflags compound-head bit, before the prefill forms the block (prefill).
pub(crate) const F_COMPOUND: u8 = 0x80;

/// The migratetype bits of `mt` (0-3).
#[inline]
pub(crate) fn mt_bits(mt: u8) -> u8 {
    (mt.min(3) << F_MT_SHIFT) & F_MT_MASK
}

/// The migratetype in a flags byte.
#[inline]
pub(crate) fn mt_of(flags: u8) -> u8 {
    (flags & F_MT_MASK) >> F_MT_SHIFT
}

/// The initial state bytes of a layout: free managed memory, uninit, reserved, holes.
pub(crate) fn shadow_for(l: &MemoryLayout) -> Vec<u8> {
    let end = l.zones.iter().map(|z| z.span.end).max().unwrap_or(0) as usize;
    let mut v = vec![S_HOLE; end];
    for z in &l.zones {
        for s in &mut v[z.span.start as usize..z.span.end as usize] {
            *s = S_FREE;
        }
        for r in &z.reserved {
            for s in &mut v[r.range.start as usize..r.range.end as usize] {
                *s = S_RESERVED;
            }
        }
        for r in &z.uninit {
            for s in &mut v[r.start as usize..r.end as usize] {
                *s = S_UNINIT;
            }
        }
        for r in &z.holes {
            for s in &mut v[r.start as usize..r.end as usize] {
                *s = S_HOLE;
            }
        }
    }
    v
}
