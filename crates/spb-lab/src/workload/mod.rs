//! The kernel's consumers around the allocator, with the gfp shapes, orders and lifetimes the
//! kernel really uses (see `docs/scenarios.md` for the references):
//!
//! - [`procs`]: processes — anonymous memory (4 KiB faults and THP faults with the
//!   `vma_thp_gfp_mask` shapes, falling back to 4 KiB), page tables, kernel stacks, the slab
//!   objects of a process, pins, pipe buffers, fork storms, exits in bursts; khugepaged.
//! - [`files`]: page cache of a disk filesystem (ext4-like large folios on write, readahead
//!   with __GFP_NORETRY|__GFP_NOWARN, writeback, eviction oldest first) and tmpfs sb-stress
//!   loops (mount, create, unmount).
//! - [`kernel`]: slab populations (dentry/inode caches growing and shrinking, kmalloc churn),
//!   network flows (GFP_ATOMIC skb data, order-3 page-fragment refills falling back to order
//!   0), and 1 GiB hugetlb requests.
//!
//! Each workload is a component: its run-time state implements [`Component`] and works only
//! through the narrow [`Ctx`] the simulator lends it for each call (allocation helpers, the
//! world, its own events and random stream, the counters). [`build`] makes the component of a
//! scenario entry; nothing here names the simulator.

pub mod files;
pub mod kernel;
pub mod procs;

use crate::scenario::{Kind, Workload};
use crate::sim::ctx::{Component, Ctx};

/// Component event ops.
pub mod op {
    pub const START: u8 = 0;
    pub const TICK: u8 = 1;
    pub const PROC: u8 = 2;
    pub const FORK: u8 = 3;
    pub const UNPIN: u8 = 4;
    pub const PKT_FREE: u8 = 5;
    pub const FLOW: u8 = 6;
    pub const TMPFS: u8 = 7;
    pub const HTLB: u8 = 8;
    pub const HTLB_FREE: u8 = 9;
    pub const SPAWN: u8 = 10;
}

/// Tick period of processes and of the page-cache, slab and tmpfs components.
pub const TICK_NS: u64 = 10_000_000;

/// Build the component of scenario workload `wl`. `cx` gives the machine and the run (no
/// random draw or allocation happens here).
pub fn build(cx: &Ctx, wl: &Workload) -> Box<dyn Component> {
    match &wl.kind {
        Kind::Processes(p) => Box::new(procs::ProcsRt::new(cx, p)),
        Kind::PageCache(p) => Box::new(files::PageCacheRt::new(cx, p)),
        Kind::Tmpfs(p) => Box::new(files::TmpfsRt::new(cx, p)),
        Kind::Slab(p) => Box::new(kernel::SlabRt::new(cx, p)),
        Kind::Net(p) => Box::new(kernel::NetRt::new(cx, p)),
        Kind::Hugetlb(p) => Box::new(kernel::HugetlbRt::new(cx, p)),
    }
}

#[cfg(test)]
mod tests {
    use super::{files, kernel, procs};

    /// The masks print as the kernel's trace does (the strings of shared/traces/*/trace.txt).
    #[test]
    fn gfp_strings_match_the_kernel() {
        let cases = [
            (procs::GFP_ANON, "GFP_HIGHUSER_MOVABLE|__GFP_ZERO|__GFP_COMP"),
            (procs::GFP_COW, "GFP_HIGHUSER_MOVABLE|__GFP_COMP"),
            (procs::GFP_PGTABLE, "GFP_KERNEL_ACCOUNT|__GFP_ZERO|__GFP_COMP"),
            (procs::GFP_PIPE, "GFP_HIGHUSER|__GFP_ACCOUNT"),
            (files::GFP_WRITE0, "GFP_HIGHUSER_MOVABLE|__GFP_WRITE|__GFP_COMP"),
            (files::GFP_WRITE_LARGE, "GFP_HIGHUSER_MOVABLE|__GFP_WRITE|__GFP_NOWARN|__GFP_NORETRY|__GFP_COMP"),
            (files::GFP_READAHEAD, "GFP_NOFS|__GFP_HIGHMEM|__GFP_MOVABLE|__GFP_NOWARN|__GFP_NORETRY|__GFP_COMP|__GFP_HARDWALL"),
            (files::GFP_SHMEM, "GFP_HIGHUSER_MOVABLE|__GFP_COMP"),
            (spb_alloc::Gfp::TRANSHUGE.with(spb_alloc::Gfp::NORETRY).with(spb_alloc::Gfp::THISNODE), "GFP_TRANSHUGE|__GFP_NORETRY|__GFP_THISNODE"),
            (kernel::GFP_FRAG_LO, "GFP_ATOMIC"),
        ];
        for (g, s) in cases {
            assert_eq!(g.to_string(), s);
        }
        // and the atomic/high-order shapes keep their flags
        let f = kernel::GFP_FRAG_HI.to_string();
        for flag in [
            "GFP_ATOMIC",
            "__GFP_COMP",
            "__GFP_NOWARN",
            "__GFP_NORETRY",
            "__GFP_NOMEMALLOC",
        ] {
            assert!(f.contains(flag), "{f}");
        }
        let g = kernel::GFP_GIGANTIC.to_string();
        for flag in [
            "GFP_HIGHUSER",
            "__GFP_COMP",
            "__GFP_RETRY_MAYFAIL",
            "__GFP_NOWARN",
            "__GFP_THISNODE",
        ] {
            assert!(g.contains(flag), "{g}");
        }
    }
}
