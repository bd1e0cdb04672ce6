//! Per-page metadata: 12 bytes for every 4 KiB page.
//!
//! Only the *head* page of a block (a free buddy, an allocation, a per-CPU list entry) carries a
//! meaningful state; every other page of the block is [`PageState::Tail`]. Links between pages
//! on free lists and per-CPU lists are `u32` indices relative to the zone's first pfn, never
//! pointers, so the metadata array can be moved, grown and checked.

/// Sentinel for "no page" in a link field.
pub const NIL: u32 = u32::MAX;

/// What a page is, seen from the allocator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum PageState {
    /// Part of a larger block whose head is elsewhere (or not a head at all).
    Tail = 0,
    /// Head of a free buddy on a free list (`order`, `mt` = list type).
    Free = 1,
    /// Head of an allocated block (`order`, `mt` = requested migratetype, `cookie`).
    Alloc = 2,
    /// Head of a block sitting on a per-CPU list (`order`, `mt` = list type, `cookie` = cpu).
    Pcp = 3,
    /// No memory behind this pfn.
    Hole = 4,
    /// Reserved at boot (memblock): in use by the kernel, never free.
    Reserved = 5,
    /// Present, but not handed to the allocator yet (deferred init, hot-add pending).
    Uninit = 6,
    /// Head of a free block held off the free lists by compaction or a contiguous allocation
    /// (accounted with per-CPU pages as "held").
    Isolated = 7,
}

/// Metadata of one page: 12 bytes.
///
/// # Invariants
/// - `state` is `Free` or `Pcp` exactly when the page is linked on one list through
///   `next`/`prev`; otherwise the links are never followed.
/// - An allocated head (`Alloc`) is on no list: its `next` slot holds the embedder's cookie
///   (see [`PageMeta::cookie`]).
/// - A per-CPU head (`Pcp`) holds its CPU in `aux`.
/// - For `Free`, `Alloc`, `Pcp` and `Isolated` heads, the `2^order` pages from the head are
///   covered by the block, are naturally aligned to `2^order`, and all but the head are `Tail`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct PageMeta {
    /// Next entry on a free or per-CPU list; the cookie of an allocated head.
    pub(crate) next: u32,
    pub(crate) prev: u32,
    pub(crate) order: u8,
    pub(crate) state: PageState,
    /// Migratetype: requested type for allocations, list type for free and per-CPU entries.
    pub(crate) mt: u8,
    /// The CPU of a per-CPU list entry.
    pub(crate) aux: u8,
}

const _: () = assert!(core::mem::size_of::<PageMeta>() == 12);

impl PageMeta {
    /// A tail page.
    pub const TAIL: PageMeta = PageMeta {
        next: NIL,
        prev: NIL,
        order: 0,
        state: PageState::Tail,
        mt: 0,
        aux: 0,
    };
    /// A page with a given non-head state (hole, reserved, uninit).
    pub const fn with_state(state: PageState) -> PageMeta {
        PageMeta {
            next: NIL,
            prev: NIL,
            order: 0,
            state,
            mt: 0,
            aux: 0,
        }
    }
    /// The head of an allocated block.
    #[inline(always)]
    pub const fn alloc(order: u8, mt: u8, cookie: u32) -> PageMeta {
        PageMeta {
            next: cookie,
            prev: NIL,
            order,
            state: PageState::Alloc,
            mt,
            aux: 0,
        }
    }
    /// The embedder's cookie of an allocated head (returned by migration callbacks).
    #[inline(always)]
    pub const fn cookie(&self) -> u32 {
        self.next
    }
    /// The CPU of a per-CPU list entry.
    #[inline(always)]
    pub const fn cpu(&self) -> usize {
        self.aux as usize
    }
}

/// Read-only access to the fields (the inspection view; only the allocator changes them).
impl PageMeta {
    pub fn next(&self) -> u32 {
        self.next
    }
    pub fn prev(&self) -> u32 {
        self.prev
    }
    pub fn order(&self) -> u8 {
        self.order
    }
    pub fn state(&self) -> PageState {
        self.state
    }
    pub fn mt(&self) -> u8 {
        self.mt
    }
    pub fn aux(&self) -> u8 {
        self.aux
    }
}
