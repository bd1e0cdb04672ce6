//! The SLUB cache catalogue: geometry (object size, objects per slab, slab order) taken from
//! the `/proc/slabinfo` of the 2-vCPU QEMU guest in `shared/qemu` (6.12), the kmalloc size
//! classes, and SLUB's masks for a new slab. Static data only: the run-time occupancy model
//! (objects go into partially filled slabs first; a slab page is freed only when its last
//! object is freed and the cache already keeps `min_partial` empty slabs, so long-lived objects
//! pin pages) is `sim::world::slab`.

use spb_alloc::Gfp;

/// Static description of a cache.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CacheSpec {
    pub name: &'static str,
    pub obj_size: u32,
    /// Preferred slab order (`oo`).
    pub order: u8,
    /// SLAB_RECLAIM_ACCOUNT: slab pages are __GFP_RECLAIMABLE and have a shrinker.
    pub reclaimable: bool,
    /// The usual caller mask.
    pub gfp: Gfp,
}

impl CacheSpec {
    /// Minimum order (`s->min`): the order of one object.
    pub fn min_order(&self) -> u8 {
        let mut o = 0;
        while (4096u32 << o) < self.obj_size {
            o += 1;
        }
        o
    }
    /// Objects in a slab of `order`.
    pub fn objs(&self, order: u8) -> u16 {
        (((4096u32 << order) / self.obj_size).clamp(1, u16::MAX as u32)) as u16
    }
    /// SLUB's min_partial: empty slabs kept per node.
    pub fn min_partial(&self) -> u32 {
        let ilog = 31 - self.obj_size.leading_zeros();
        (ilog / 2).clamp(5, 10)
    }
}

const K: Gfp = Gfp::KERNEL;
const NOFS: Gfp = Gfp::NOFS;
const AT: Gfp = Gfp::ATOMIC;

macro_rules! caches {
    ($($n:literal, $sz:literal, $o:literal, $r:literal, $g:expr;)*) => {
        /// Every modelled cache.
        pub const CACHES: &[CacheSpec] = &[$(CacheSpec { name: $n, obj_size: $sz, order: $o, reclaimable: $r, gfp: $g },)*];
        /// Their names.
        pub const CACHE_NAMES: &[&str] = &[$($n,)*];
    };
}

// name, object size, slab order, reclaimable, caller mask (slabinfo of the 6.12 QEMU guest;
// ext4_inode_cache from a 6.18 machine)
caches! {
    "dentry", 192, 0, true, K;
    "ext4_inode_cache", 1184, 3, true, NOFS;
    "proc_inode_cache", 704, 2, true, K;
    "sock_inode_cache", 832, 2, true, K;
    "radix_tree_node", 584, 1, true, NOFS;
    "buffer_head", 104, 0, true, NOFS;
    "shmem_inode_cache", 760, 2, false, K;
    "inode_cache", 632, 2, true, K;
    "task_struct", 8448, 3, false, K;
    "mm_struct", 1408, 3, false, K;
    "vm_area_struct", 176, 0, false, K;
    "anon_vma", 104, 0, false, K;
    "anon_vma_chain", 64, 0, false, K;
    "files_cache", 704, 2, false, K;
    "signal_cache", 1152, 2, false, K;
    "sighand_cache", 2112, 3, false, K;
    "cred", 192, 0, false, K;
    "pid", 128, 0, false, K;
    "filp", 192, 0, false, K;
    "maple_node", 256, 0, false, K;
    "vmap_area", 72, 0, false, K;
    "skbuff_head_cache", 256, 0, false, AT;
    "skbuff_small_head", 704, 2, false, AT;
    "kmalloc-8", 8, 0, false, K;
    "kmalloc-16", 16, 0, false, K;
    "kmalloc-32", 32, 0, false, K;
    "kmalloc-64", 64, 0, false, K;
    "kmalloc-96", 96, 0, false, K;
    "kmalloc-128", 128, 0, false, K;
    "kmalloc-192", 192, 0, false, K;
    "kmalloc-256", 256, 0, false, K;
    "kmalloc-512", 512, 1, false, K;
    "kmalloc-1k", 1024, 2, false, K;
    "kmalloc-2k", 2048, 3, false, K;
    "kmalloc-4k", 4096, 3, false, K;
    "kmalloc-8k", 8192, 3, false, K;
    "kmalloc-rcl-64", 64, 0, true, K;
    "kmalloc-rcl-256", 256, 0, true, K;
}

/// Look a cache up by name.
pub fn cache_spec(name: &str) -> Option<&'static CacheSpec> {
    CACHES.iter().find(|c| c.name == name)
}

/// Index of a cache in [`CACHES`] (panics on an unknown name: for built-in code paths).
pub fn cache_id(name: &str) -> u16 {
    CACHES
        .iter()
        .position(|c| c.name == name)
        .unwrap_or_else(|| panic!("unknown slab cache {name}")) as u16
}

/// The kmalloc cache for `bytes` (None above kmalloc-8k: a page allocation).
pub fn kmalloc_cache(bytes: u32) -> Option<u16> {
    let n = match bytes {
        0..=8 => "kmalloc-8",
        9..=16 => "kmalloc-16",
        17..=32 => "kmalloc-32",
        33..=64 => "kmalloc-64",
        65..=96 => "kmalloc-96",
        97..=128 => "kmalloc-128",
        129..=192 => "kmalloc-192",
        193..=256 => "kmalloc-256",
        257..=512 => "kmalloc-512",
        513..=1024 => "kmalloc-1k",
        1025..=2048 => "kmalloc-2k",
        2049..=4096 => "kmalloc-4k",
        4097..=8192 => "kmalloc-8k",
        _ => return None,
    };
    Some(cache_id(n))
}

/// SLUB's two attempts for a new slab: the preferred order with `(mask | NOWARN | NORETRY) &
/// ~NOFAIL` (and, for reclaim-capable callers when above the minimum order, `| NOMEMALLOC` and
/// no __GFP_RECLAIM), then the minimum order with the caller's mask. `mask` already includes
/// the cache's allocflags (__GFP_COMP, __GFP_RECLAIMABLE).
pub fn slab_attempts(mask: Gfp, order: u8, min_order: u8) -> [(u8, Gfp); 2] {
    let mut hi = mask
        .with(Gfp::NOWARN)
        .with(Gfp::NORETRY)
        .without(Gfp::NOFAIL);
    if hi.contains(Gfp::DIRECT_RECLAIM) && order > min_order {
        hi = hi.with(Gfp::NOMEMALLOC).without(Gfp::RECLAIM);
    }
    [(order, hi), (min_order, mask)]
}

/// The "no id" value of object, holder and slot indices.
pub const NONE: u32 = u32::MAX;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry() {
        let d = cache_spec("dentry").unwrap();
        assert_eq!(d.objs(0), 21);
        assert_eq!(d.min_order(), 0);
        let t = cache_spec("task_struct").unwrap();
        assert_eq!(t.objs(3), 3);
        assert_eq!(t.min_order(), 2);
        assert_eq!(t.min_partial(), 6);
        assert_eq!(cache_spec("kmalloc-1k").unwrap().objs(2), 16);
        assert_eq!(kmalloc_cache(100), Some(cache_id("kmalloc-128")));
        assert_eq!(kmalloc_cache(9000), None);
    }

    #[test]
    fn slub_masks() {
        // GFP_KERNEL above the minimum order: reclaim bits cleared, NOMEMALLOC added.
        let a = slab_attempts(Gfp::KERNEL.with(Gfp::COMP), 3, 0);
        assert_eq!(
            a[0].1.to_string(),
            "__GFP_IO|__GFP_FS|__GFP_NOWARN|__GFP_NORETRY|__GFP_COMP|__GFP_NOMEMALLOC"
        );
        assert_eq!(a[1], (0, Gfp::KERNEL.with(Gfp::COMP)));
        // at the minimum order the first try keeps the reclaim bits
        let a = slab_attempts(Gfp::KERNEL.with(Gfp::COMP), 0, 0);
        assert_eq!(
            a[0].1.to_string(),
            "GFP_KERNEL|__GFP_NOWARN|__GFP_NORETRY|__GFP_COMP"
        );
        // reclaimable, GFP_NOFS caller
        let a = slab_attempts(Gfp::NOFS.with(Gfp::COMP).with(Gfp::RECLAIMABLE), 1, 0);
        assert_eq!(
            a[0].1.to_string(),
            "__GFP_RECLAIMABLE|__GFP_IO|__GFP_NOWARN|__GFP_NORETRY|__GFP_COMP|__GFP_NOMEMALLOC"
        );
        // atomic callers keep their mask
        let a = slab_attempts(Gfp::ATOMIC.with(Gfp::COMP), 2, 0);
        assert_eq!(
            a[0].1.to_string(),
            "GFP_ATOMIC|__GFP_NOWARN|__GFP_NORETRY|__GFP_COMP"
        );
    }
}
