//! The world around the allocator: every allocated block as a 16-byte object record (its index
//! is the allocator's cookie, so a migration is O(1)), the holders that own blocks, the slab
//! caches, the page cache and its LRU, reclaim and the OOM killer, and the [`Env`]
//! implementation. One concern per module:
//!
//! - `objects`: object records (`kind`, `flag`, [`Obj`]), their ids and the per-kind counts;
//! - `holders`: holders (processes, files, mounts, packet batches, pools) and their lists;
//! - `pagecache`: clean/dirty page cache of files, buffer heads, cold files;
//! - `lru`: the LRU of files (oldest first);
//! - [`slab`]: the one SLUB occupancy model (slabs, partial lists, unused cached objects,
//!   shrinkers); the static cache catalogue is `sim::slab`;
//! - `reclaim`: eviction, swap-out, the reclaim policy, the OOM killer's choice;
//! - [`env`]: the allocator's [`Env`] (migration, reclaim, OOM kill).
//!
//! Invariants of the state owned here: `kind_pages[k]` is the sum of `1 << order` over live
//! objects of kind `k`, so its total equals the allocator's allocated pages (checked by
//! `Sim::verify`); `pending` holds blocks already forgotten by the world and not yet freed to
//! the allocator (the simulator flushes it after every event, the Env hooks drain it into the
//! allocator's output).
//!
//! [`Env`]: spb_alloc::Env

mod env;
mod holders;
mod lru;
mod objects;
mod pagecache;
mod reclaim;
pub mod slab;

pub use holders::{hflag, HKind, Holder};
pub use objects::{flag, kind, Obj};

use super::slab::{CACHES, NONE};
use slab::SlabCache;

/// Start loading the cache line of `p` (no effect on results; a hint that lets the next
/// random accesses into arrays of millions of slabs and objects overlap their misses).
#[inline(always)]
pub(crate) fn prefetch<T>(p: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 only hints the cache; it never faults and reads nothing into the
    // program, and `p` is a valid reference anyway. SSE is part of the x86_64 baseline.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
            p as *const T as *const i8,
        )
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Counters kept by the world.
#[derive(Clone, Debug, Default)]
pub struct WorldStats {
    pub oom_kills: u64,
    /// Holders killed by the OOM killer and not yet seen by their component: (holder,
    /// component, holder flags).
    pub killed: Vec<(u32, u16, u8)>,
    pub pgsteal_file: u64,
    pub pgscan_file: u64,
    pub pgsteal_anon: u64,
    pub pswpout: u64,
    pub writeback_pages: u64,
    pub slabs_scanned: u64,
    pub slab_objects_shrunk: u64,
    pub migrate_moved: u64,
    pub migrate_refused: u64,
    pub migrate_dropped: u64,
    pub pgfault: u64,
    /// Anonymous THPs split into base pages (`Env::split`: migration found no whole target),
    /// the kernel's `thp_split_page`.
    pub thp_split_page: u64,
    /// Large page-cache and shmem folios split the same way (no kernel counter).
    pub file_folio_split: u64,
    /// Blocks handed to the allocator by reclaim and OOM kills.
    pub env_frees: u64,
}

/// The world.
pub struct World {
    pub objs: Vec<Obj>,
    free_objs: Vec<u32>,
    pub holders: Vec<Holder>,
    free_holders: Vec<u32>,
    pub caches: Vec<SlabCache>,
    pub lru_head: u32,
    pub lru_tail: u32,
    pub lru_len: u32,
    /// Alive processes (holder ids).
    pub procs: Vec<u32>,
    zone_bounds: Vec<(u64, u64)>,
    /// Pages by object kind.
    pub kind_pages: [u64; kind::N],
    pub dirty_pages: u64,
    pub clean_cache_zone: [u64; 4],
    /// Clean page-cache pages per GiB of physical memory (index `pfn >> CLEAN_GIB_SHIFT`),
    /// kept with `clean_cache_zone` by `count_clean`: what `Env::clean_cache_by_range`
    /// answers for SPB-sized ranges without a pass over the object records.
    pub clean_cache_gib: Vec<u64>,
    /// Reclaimable slab pages a full shrink would free, per zone.
    pub freeable_slab_zone: [u64; 4],
    pub slab_reclaimable_pages: u64,
    pub slab_unreclaimable_pages: u64,
    /// Blocks to free: (pfn, order, cpu).
    pub pending: Vec<(u64, u8, u16)>,
    pub swap: bool,
    pub now: u64,
    pub st: WorldStats,
    /// Per-CPU kernel stack caches (holder ids).
    pub stack_cache: Vec<u32>,
    pub radix_cache: u16,
    pub dentry_cache: u16,
    pub inode_cache: u16,
}

impl World {
    pub fn new(zone_bounds: Vec<(u64, u64)>, cpus: usize, swap: bool) -> World {
        let mut w = World {
            objs: Vec::new(),
            free_objs: Vec::new(),
            holders: Vec::new(),
            free_holders: Vec::new(),
            caches: CACHES.iter().map(SlabCache::new).collect(),
            lru_head: NONE,
            lru_tail: NONE,
            lru_len: 0,
            procs: Vec::new(),
            zone_bounds,
            kind_pages: [0; kind::N],
            dirty_pages: 0,
            clean_cache_zone: [0; 4],
            clean_cache_gib: Vec::new(),
            freeable_slab_zone: [0; 4],
            slab_reclaimable_pages: 0,
            slab_unreclaimable_pages: 0,
            pending: Vec::new(),
            swap,
            now: 0,
            st: WorldStats::default(),
            stack_cache: Vec::new(),
            radix_cache: super::slab::cache_id("radix_tree_node"),
            dentry_cache: super::slab::cache_id("dentry"),
            inode_cache: super::slab::cache_id("ext4_inode_cache"),
        };
        for c in 0..cpus {
            let h = w.new_holder(HKind::StackCache, u16::MAX, c as u16);
            w.stack_cache.push(h);
        }
        w
    }

    /// Zone index of a pfn.
    #[inline]
    pub fn zone_of(&self, pfn: u64) -> u8 {
        // highest zone first: most memory is there
        for (i, &(s, e)) in self.zone_bounds.iter().enumerate().rev() {
            if pfn >= s && pfn < e {
                return i as u8;
            }
        }
        0
    }
}

/// A world of two zones (pfns [0, 1 Mi) and [1 Mi, 4 Mi)), one CPU, no swap: for the unit tests.
#[cfg(test)]
fn test_world() -> World {
    World::new(vec![(0, 1 << 20), (1 << 20, 1 << 22)], 1, false)
}
