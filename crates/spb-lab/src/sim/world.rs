//! The world around the allocator: every allocated block as a 16-byte object record (its index
//! is the allocator's cookie, so a migration is O(1)), the holders that own blocks (processes,
//! files, tmpfs mounts, packet batches, slab populations), the slab caches, the page-cache LRU,
//! and the [`Env`] implementation: migration, reclaim (clean page cache oldest first, dirty
//! page cache after writeback, anonymous memory only with swap, reclaimable slab through the
//! shrinkers) and the OOM killer.

use spb_alloc::{Env, FreedBlock, MigrateOutcome, Pfn, ReclaimRequest, Reclaimer};

use super::slab::{sref, unref, SlabCache, SlabRef, SlabSlot, CACHES, NONE};

/// Object kinds.
pub mod kind {
    /// Anonymous 4 KiB page.
    pub const ANON: u8 = 0;
    /// Anonymous THP (order 9).
    pub const THP: u8 = 1;
    /// Page cache of a disk filesystem (evictable).
    pub const CACHE: u8 = 2;
    /// tmpfs / shmem page (movable, not evictable without swap).
    pub const SHMEM: u8 = 3;
    /// Page table page.
    pub const PTE: u8 = 4;
    /// Kernel stack page (vmalloc'd).
    pub const STACK: u8 = 5;
    /// Slab page.
    pub const SLAB: u8 = 6;
    /// Network page fragment cache page (order 3 or 0).
    pub const FRAG: u8 = 7;
    /// skb data allocated from the page allocator.
    pub const NETDATA: u8 = 8;
    /// Pipe buffer page.
    pub const PIPE: u8 = 9;
    /// Boot-time kernel allocation.
    pub const BOOT: u8 = 10;
    /// 1 GiB hugetlb page.
    pub const HUGETLB: u8 = 11;
    /// vmalloc / misc kernel pages.
    pub const VMALLOC: u8 = 12;
    pub const N: usize = 13;
    pub const NAMES: [&str; N] = [
        "anon",
        "thp",
        "pagecache",
        "shmem",
        "pagetable",
        "kernel_stack",
        "slab",
        "net_frag",
        "net_data",
        "pipe",
        "boot",
        "hugetlb",
        "vmalloc",
    ];
}

/// Object flags.
pub mod flag {
    /// Dirty page cache (on the holder's `dirty` list).
    pub const DIRTY: u8 = 1;
    /// Pinned (GUP/DMA): migration is refused.
    pub const PINNED: u8 = 2;
    /// On the holder's `aux` list.
    pub const AUX: u8 = 4;
}

/// One allocated block. For slab pages `holder` is the cache and `slot` the slab's index in the
/// cache; for fragment pages `slot` is the reference count; otherwise `slot` is the index in
/// the holder's list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Obj {
    pub pfn: u32,
    pub holder: u32,
    pub slot: u32,
    pub order: u8,
    pub kind: u8,
    pub flags: u8,
    pub zone: u8,
}

const _: () = assert!(std::mem::size_of::<Obj>() == 16);

impl Obj {
    const EMPTY: Obj = Obj {
        pfn: 0,
        holder: NONE,
        slot: NONE,
        order: 0,
        kind: 0,
        flags: 0,
        zone: 0,
    };
}

/// Holder kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HKind {
    Process,
    File,
    Mount,
    Pool,
    Packets,
    Boot,
    Hugetlb,
    StackCache,
}

/// Something that owns blocks and slab objects.
pub struct Holder {
    /// Page objects (clean page cache for files).
    pub pages: Vec<u32>,
    /// Dirty page cache.
    pub dirty: Vec<u32>,
    /// Transient pages (pipe buffers, large skb data, ...).
    pub aux: Vec<u32>,
    /// Slab objects held (slab page ids; one entry per object).
    pub kobjs: Vec<u32>,
    /// Pinned page objects (processes) or fragment pages referenced (packet batches).
    pub refs: Vec<u32>,
    pub gen: u32,
    pub alive: bool,
    pub kind: HKind,
    pub cpu: u16,
    pub comp: u16,
    pub lru_prev: u32,
    pub lru_next: u32,
    pub on_lru: bool,
    /// Whether the file's dentry and inode are held (false: evicted, "cold").
    pub warm: bool,
    pub dirtied_at: u64,
    /// Process: small anonymous pages mapped. File: pages written so far.
    pub small: u32,
    /// Process: THPs mapped.
    pub huge: u32,
    /// Process: PTE pages.
    pub ptes: u32,
    /// Process: resident-set target in pages. File: size in pages.
    pub target: u32,
    /// Process: small pages still owed by THP fallbacks.
    pub fallback: u32,
    /// Process: exit time.
    pub death: u64,
    /// Process: phase timer (cycle hold).
    pub phase_t: u64,
    /// Index in `World::procs`.
    pub pslot: u32,
    /// Process: the storm (parent holder) it belongs to; packets: the flow.
    pub group: u32,
    pub flags: u8,
    /// Bytes queued (packet batches) or radix nodes held (files).
    pub aux_count: u32,
}

/// Holder flags.
pub mod hflag {
    pub const MADVISED: u8 = 1;
    pub const CHILD: u8 = 2;
    pub const NOTHP: u8 = 4;
    pub const CYCLE_FULL: u8 = 8;
}

impl Holder {
    fn new(kind: HKind, comp: u16, cpu: u16) -> Holder {
        Holder {
            pages: Vec::new(),
            dirty: Vec::new(),
            aux: Vec::new(),
            kobjs: Vec::new(),
            refs: Vec::new(),
            gen: 0,
            alive: true,
            kind,
            cpu,
            comp,
            lru_prev: NONE,
            lru_next: NONE,
            on_lru: false,
            warm: false,
            dirtied_at: 0,
            small: 0,
            huge: 0,
            ptes: 0,
            target: 0,
            fallback: 0,
            death: u64::MAX,
            phase_t: 0,
            pslot: NONE,
            group: NONE,
            flags: 0,
            aux_count: 0,
        }
    }
    /// Resident pages (for the OOM killer).
    pub fn rss(&self) -> u64 {
        self.small as u64 + self.huge as u64 * 512 + self.ptes as u64 + self.aux.len() as u64
    }
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
    /// Reclaimable slab pages a full shrink would free, per zone.
    pub freeable_slab_zone: [u64; 4],
    pub slab_reclaimable_pages: u64,
    pub slab_unreclaimable_pages: u64,
    /// Blocks to free: (pfn, order, cpu).
    pub pending: Vec<(u64, u8, u16)>,
    /// Inside a contiguous allocation: clean page cache is dropped instead of migrated.
    pub contig_mode: bool,
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
            freeable_slab_zone: [0; 4],
            slab_reclaimable_pages: 0,
            slab_unreclaimable_pages: 0,
            pending: Vec::new(),
            contig_mode: false,
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

    // ----- objects -----

    /// Reserve an object id (the cookie of an allocation in flight).
    #[inline]
    pub fn new_obj(&mut self) -> u32 {
        if let Some(i) = self.free_objs.pop() {
            i
        } else {
            self.objs.push(Obj::EMPTY);
            (self.objs.len() - 1) as u32
        }
    }
    #[inline]
    pub fn release_obj(&mut self, id: u32) {
        self.objs[id as usize] = Obj::EMPTY;
        self.free_objs.push(id);
    }
    /// Live objects.
    pub fn live_objs(&self) -> usize {
        self.objs.len() - self.free_objs.len()
    }

    /// Record a freshly allocated block in object `id` and count it.
    #[inline]
    pub fn fill_obj(&mut self, id: u32, pfn: u64, order: u8, k: u8, holder: u32) {
        debug_assert!(
            pfn < u32::MAX as u64,
            "pfn {pfn:#x} does not fit the 32-bit object record"
        );
        let zone = self.zone_of(pfn);
        self.objs[id as usize] = Obj {
            pfn: pfn as u32,
            holder,
            slot: NONE,
            order,
            kind: k,
            flags: 0,
            zone,
        };
        self.kind_pages[k as usize] += 1u64 << order;
    }

    // ----- holders -----

    pub fn new_holder(&mut self, k: HKind, comp: u16, cpu: u16) -> u32 {
        if let Some(h) = self.free_holders.pop() {
            let gen = self.holders[h as usize].gen;
            let old = std::mem::replace(&mut self.holders[h as usize], Holder::new(k, comp, cpu));
            let hd = &mut self.holders[h as usize];
            hd.gen = gen;
            // keep small buffers for reuse
            for (dst, mut src) in [
                (&mut hd.pages, old.pages),
                (&mut hd.dirty, old.dirty),
                (&mut hd.aux, old.aux),
                (&mut hd.kobjs, old.kobjs),
                (&mut hd.refs, old.refs),
            ] {
                if src.capacity() <= 4096 {
                    src.clear();
                    *dst = src;
                }
            }
            h
        } else {
            self.holders.push(Holder::new(k, comp, cpu));
            (self.holders.len() - 1) as u32
        }
    }

    /// Release an emptied holder.
    pub fn release_holder(&mut self, h: u32) {
        let hd = &mut self.holders[h as usize];
        debug_assert!(
            hd.pages.is_empty() && hd.dirty.is_empty() && hd.aux.is_empty() && hd.kobjs.is_empty()
        );
        hd.alive = false;
        hd.gen = hd.gen.wrapping_add(1);
        if hd.pslot != NONE {
            let s = hd.pslot;
            hd.pslot = NONE;
            let last = self.procs.pop().unwrap();
            if last != h {
                self.procs[s as usize] = last;
                self.holders[last as usize].pslot = s;
            }
        }
        self.free_holders.push(h);
    }

    #[inline]
    pub fn alive(&self, h: u32, gen: u32) -> bool {
        let hd = &self.holders[h as usize];
        hd.alive && hd.gen == gen
    }

    pub fn register_process(&mut self, h: u32) {
        self.holders[h as usize].pslot = self.procs.len() as u32;
        self.procs.push(h);
    }

    /// Attach object `id` to a list of its holder (`which`: 0 pages, DIRTY, AUX).
    #[inline]
    pub fn attach(&mut self, id: u32, h: u32, which: u8) {
        let hd = &mut self.holders[h as usize];
        let list = match which {
            flag::DIRTY => &mut hd.dirty,
            flag::AUX => &mut hd.aux,
            _ => &mut hd.pages,
        };
        let o = &mut self.objs[id as usize];
        o.holder = h;
        o.slot = list.len() as u32;
        o.flags = (o.flags & !(flag::DIRTY | flag::AUX)) | which;
        list.push(id);
    }

    /// Detach object `id` from its holder's list.
    #[inline]
    pub fn detach(&mut self, id: u32) {
        let o = self.objs[id as usize];
        let hd = &mut self.holders[o.holder as usize];
        let list = if o.flags & flag::DIRTY != 0 {
            &mut hd.dirty
        } else if o.flags & flag::AUX != 0 {
            &mut hd.aux
        } else {
            &mut hd.pages
        };
        let last = list.pop().unwrap();
        if last != id {
            list[o.slot as usize] = last;
            self.objs[last as usize].slot = o.slot;
        }
    }

    /// Forget a block (no longer allocated: freed by us or dropped by the allocator).
    #[inline]
    fn forget(&mut self, id: u32) {
        let o = self.objs[id as usize];
        let n = 1u64 << o.order;
        self.kind_pages[o.kind as usize] -= n;
        if o.kind == kind::CACHE || o.kind == kind::SHMEM {
            if o.kind == kind::CACHE {
                if o.flags & flag::DIRTY != 0 {
                    self.dirty_pages -= n;
                } else {
                    self.clean_cache_zone[o.zone as usize] -= n;
                }
            }
            if o.holder != NONE {
                let hd = &mut self.holders[o.holder as usize];
                hd.huge = hd.huge.saturating_sub(n as u32);
            }
        }
        self.release_obj(id);
    }

    /// Attach a freshly allocated page-cache (or shmem) object to file `h`, clean or dirty.
    pub fn add_cache_page(&mut self, id: u32, h: u32, dirty: bool) {
        let o = self.objs[id as usize];
        let n = 1u64 << o.order;
        if o.kind == kind::CACHE {
            if dirty {
                self.dirty_pages += n;
            } else {
                self.clean_cache_zone[o.zone as usize] += n;
            }
        }
        self.holders[h as usize].huge += n as u32;
        self.attach(
            id,
            h,
            if dirty && o.kind == kind::CACHE {
                flag::DIRTY
            } else {
                0
            },
        );
    }

    /// Free a page object attached to a holder list: detach, forget, queue the block.
    #[inline]
    pub fn free_page(&mut self, id: u32, cpu: u16) {
        let o = self.objs[id as usize];
        self.detach(id);
        self.pending.push((o.pfn as u64, o.order, cpu));
        self.forget(id);
    }

    /// Free an unattached object (fragment pages, hugetlb pages held elsewhere).
    #[inline]
    pub fn free_loose(&mut self, id: u32, cpu: u16) {
        let o = self.objs[id as usize];
        self.pending.push((o.pfn as u64, o.order, cpu));
        self.forget(id);
    }

    /// Mark a clean page-cache object dirty or clean, moving it between the lists.
    pub fn set_dirty(&mut self, id: u32, dirty: bool) {
        let o = self.objs[id as usize];
        let is = o.flags & flag::DIRTY != 0;
        if is == dirty || o.kind != kind::CACHE {
            return;
        }
        let h = o.holder;
        self.detach(id);
        let n = 1u64 << o.order;
        if dirty {
            self.clean_cache_zone[o.zone as usize] -= n;
            self.dirty_pages += n;
            self.attach(id, h, flag::DIRTY);
        } else {
            self.dirty_pages -= n;
            self.clean_cache_zone[o.zone as usize] += n;
            self.attach(id, h, 0);
        }
    }

    /// Write back every dirty page of a file.
    pub fn clean_file(&mut self, h: u32) -> u64 {
        let mut n = 0;
        while let Some(&id) = self.holders[h as usize].dirty.last() {
            n += 1u64 << self.objs[id as usize].order;
            self.set_dirty(id, false);
        }
        self.st.writeback_pages += n;
        n
    }

    // ----- page-cache LRU (of files) -----

    pub fn lru_add(&mut self, h: u32) {
        if self.holders[h as usize].on_lru {
            return;
        }
        let t = self.lru_tail;
        {
            let hd = &mut self.holders[h as usize];
            hd.on_lru = true;
            hd.lru_prev = t;
            hd.lru_next = NONE;
        }
        if t != NONE {
            self.holders[t as usize].lru_next = h;
        } else {
            self.lru_head = h;
        }
        self.lru_tail = h;
        self.lru_len += 1;
    }

    pub fn lru_del(&mut self, h: u32) {
        let (p, n, on) = {
            let hd = &self.holders[h as usize];
            (hd.lru_prev, hd.lru_next, hd.on_lru)
        };
        if !on {
            return;
        }
        if p != NONE {
            self.holders[p as usize].lru_next = n;
        } else {
            self.lru_head = n;
        }
        if n != NONE {
            self.holders[n as usize].lru_prev = p;
        } else {
            self.lru_tail = p;
        }
        let hd = &mut self.holders[h as usize];
        hd.on_lru = false;
        hd.lru_prev = NONE;
        hd.lru_next = NONE;
        self.lru_len -= 1;
    }

    /// Mark a file recently used.
    pub fn lru_touch(&mut self, h: u32) {
        if self.holders[h as usize].on_lru && self.lru_tail != h {
            self.lru_del(h);
            self.lru_add(h);
        }
    }

    // ----- slab -----

    #[inline]
    fn slab_track(&mut self, c: usize, s: u32, before: bool) {
        let cache = &self.caches[c];
        if !cache.spec.reclaimable {
            return;
        }
        let after = cache.freeable(s);
        if before != after {
            let x = cache.slots[s as usize];
            let n = 1u64 << x.order;
            if after {
                self.freeable_slab_zone[x.zone as usize] += n;
            } else {
                self.freeable_slab_zone[x.zone as usize] -= n;
            }
        }
    }

    /// Take room for one object in a partial slab of cache `c`.
    #[inline]
    pub fn slab_take_room(&mut self, c: u16) -> Option<SlabRef> {
        let ci = c as usize;
        let s = *self.caches[ci].partial.last()?;
        let before = self.caches[ci].freeable(s);
        let cache = &mut self.caches[ci];
        let x = &mut cache.slots[s as usize];
        if x.inuse == 0 {
            cache.empty -= 1;
        }
        x.inuse += 1;
        let full = x.inuse >= x.cap;
        cache.objects += 1;
        if full {
            cache.partial_del(s);
        }
        self.slab_track(ci, s, before);
        Some(sref(c, s))
    }

    /// Register a new slab page (object `id`, already filled with kind SLAB) in cache `c` and
    /// take one object from it.
    pub fn slab_new(&mut self, c: u16, id: u32) -> SlabRef {
        let ci = c as usize;
        let o = self.objs[id as usize];
        let cache = &mut self.caches[ci];
        let cap = cache.spec.objs(o.order);
        let x = SlabSlot {
            id,
            ppos: NONE,
            inuse: 1,
            lru: 0,
            cap,
            order: o.order,
            zone: o.zone,
        };
        let s = match cache.free_slots.pop() {
            Some(s) => {
                cache.slots[s as usize] = x;
                s
            }
            None => {
                cache.slots.push(x);
                (cache.slots.len() - 1) as u32
            }
        };
        if cap > 1 {
            cache.partial_add(s);
        }
        cache.objects += 1;
        cache.pages += 1u64 << o.order;
        cache.slabs_allocated += 1;
        let recl = cache.spec.reclaimable;
        let ob = &mut self.objs[id as usize];
        ob.holder = c as u32;
        ob.slot = s;
        if recl {
            self.slab_reclaimable_pages += 1u64 << o.order;
        } else {
            self.slab_unreclaimable_pages += 1u64 << o.order;
        }
        sref(c, s)
    }

    /// Free one object.
    pub fn slab_put(&mut self, r: SlabRef, cpu: u16) {
        let (ci, s) = unref(r);
        let before = self.caches[ci].freeable(s);
        let cache = &mut self.caches[ci];
        let x = &mut cache.slots[s as usize];
        debug_assert!(x.inuse > 0 && x.id != NONE);
        x.inuse -= 1;
        let now_empty = x.inuse == 0;
        let (zone, order) = (x.zone, x.order);
        cache.objects -= 1;
        if now_empty {
            if cache.empty < cache.spec.min_partial() {
                cache.empty += 1;
                cache.partial_add(s);
            } else {
                if before {
                    self.freeable_slab_zone[zone as usize] -= 1u64 << order;
                }
                self.slab_free_page(ci, s, cpu);
                return;
            }
        } else {
            cache.partial_add(s);
        }
        self.slab_track(ci, s, before);
    }

    /// Free the (empty) slab in slot `s` of cache `ci` to the page allocator.
    fn slab_free_page(&mut self, ci: usize, s: u32, cpu: u16) {
        let cache = &mut self.caches[ci];
        cache.partial_del(s);
        let x = cache.slots[s as usize];
        cache.slots[s as usize].id = NONE;
        cache.free_slots.push(s);
        cache.pages -= 1u64 << x.order;
        cache.slabs_freed += 1;
        if cache.spec.reclaimable {
            self.slab_reclaimable_pages -= 1u64 << x.order;
        } else {
            self.slab_unreclaimable_pages -= 1u64 << x.order;
        }
        self.free_loose(x.id, cpu);
    }

    /// An in-use object becomes unused but cached (on the cache's LRU).
    pub fn slab_to_lru(&mut self, r: SlabRef) {
        let (ci, s) = unref(r);
        let before = self.caches[ci].freeable(s);
        self.caches[ci].slots[s as usize].lru += 1;
        self.caches[ci].lru_q.push_back(r);
        self.slab_track(ci, s, before);
    }

    /// Reuse the most recently cached unused object of cache `c` (it becomes in use).
    pub fn slab_from_lru(&mut self, c: u16) -> Option<SlabRef> {
        let ci = c as usize;
        let r = self.caches[ci].lru_q.pop_back()?;
        let (_, s) = unref(r);
        let before = self.caches[ci].freeable(s);
        self.caches[ci].slots[s as usize].lru -= 1;
        self.slab_track(ci, s, before);
        Some(r)
    }

    /// The pfn of an object's slab page.
    pub fn slab_pfn(&self, r: SlabRef) -> Pfn {
        let (ci, s) = unref(r);
        self.objs[self.caches[ci].slots[s as usize].id as usize].pfn as Pfn
    }

    /// Free the oldest unused cached object of cache `c` (the shrinker's step).
    pub fn slab_shrink_one(&mut self, c: u16, cpu: u16) -> bool {
        let ci = c as usize;
        let Some(r) = self.caches[ci].lru_q.pop_front() else {
            return false;
        };
        let (_, s) = unref(r);
        let before = self.caches[ci].freeable(s);
        self.caches[ci].slots[s as usize].lru -= 1;
        self.slab_track(ci, s, before);
        self.slab_put(r, cpu);
        self.st.slab_objects_shrunk += 1;
        true
    }

    /// Unused cached objects over all reclaimable caches.
    pub fn shrinkable_objects(&self) -> u64 {
        self.caches
            .iter()
            .filter(|c| c.spec.reclaimable)
            .map(|c| c.lru_q.len() as u64)
            .sum()
    }

    /// Run the shrinkers: free about `frac` of every reclaimable cache's unused objects (at
    /// least `min_objs` in total when there are any), oldest first. Returns objects freed.
    pub fn shrink_slab(&mut self, frac: f64, min_objs: u64, cpu: u16) -> u64 {
        let mut freed = 0;
        for c in 0..self.caches.len() {
            if !self.caches[c].spec.reclaimable {
                continue;
            }
            let len = self.caches[c].lru_q.len() as u64;
            // scans accumulate and run in batches of SHRINK_BATCH (128), as do_shrink_slab
            // defers small amounts of work
            let debt = self.caches[c].shrink_debt + len as f64 * frac;
            let mut n = debt as u64;
            if n < 128 && n < len && min_objs == 0 {
                self.caches[c].shrink_debt = debt;
                continue;
            }
            n = n.max(min_objs.min(len)).min(len);
            self.caches[c].shrink_debt = (debt - n as f64).max(0.0).min(len as f64);
            self.st.slabs_scanned += n;
            for _ in 0..n {
                if self.slab_shrink_one(c as u16, cpu) {
                    freed += 1;
                }
            }
        }
        freed
    }

    /// Shrink objects living in slabs inside `[lo, hi)` (spb's targeted shrinking): scan at
    /// most `scan` objects from the oldest of each reclaimable cache.
    pub fn shrink_range(&mut self, lo: Pfn, hi: Pfn, mut scan: u64, cpu: u16) -> u64 {
        let mut freed = 0;
        for c in 0..self.caches.len() {
            if !self.caches[c].spec.reclaimable {
                continue;
            }
            let len = self.caches[c].lru_q.len();
            let mut i = 0;
            let mut kept = 0;
            while i < len && scan > 0 {
                scan -= 1;
                i += 1;
                let Some(sid) = self.caches[c].lru_q.pop_front() else {
                    break;
                };
                let p = self.slab_pfn(sid);
                if p >= lo && p < hi {
                    // hand it back as if popped by the shrinker
                    self.caches[c].lru_q.push_front(sid);
                    self.slab_shrink_one(c as u16, cpu);
                    freed += 1;
                } else {
                    self.caches[c].lru_q.push_back(sid);
                    kept += 1;
                }
            }
            let _ = kept;
            self.st.slabs_scanned += i as u64;
        }
        freed
    }

    // ----- page cache reclaim -----

    /// Evict up to `nr` clean page-cache pages, oldest files first. With `writeback`, dirty
    /// pages met on the way are written back (they become clean and reclaimable later).
    pub fn evict(&mut self, nr: u64, writeback: bool, cpu: u16) -> u64 {
        let mut freed = 0;
        let mut visits = self.lru_len as u64 + 1;
        let mut h = self.lru_head;
        while freed < nr && h != NONE && visits > 0 {
            visits -= 1;
            let next = self.holders[h as usize].lru_next;
            while freed < nr {
                let Some(&id) = self.holders[h as usize].pages.last() else {
                    break;
                };
                let n = 1u64 << self.objs[id as usize].order;
                self.free_page(id, cpu);
                self.free_bh(h, n as u32, cpu);
                self.st.pgsteal_file += n;
                self.st.pgscan_file += n;
                freed += n;
            }
            if self.holders[h as usize].pages.is_empty() {
                if self.holders[h as usize].dirty.is_empty() {
                    self.lru_del(h);
                    self.file_cold(h, cpu);
                } else {
                    if writeback {
                        self.clean_file(h);
                    }
                    self.lru_touch(h);
                }
            }
            h = next;
        }
        freed
    }

    /// Free up to `n` buffer heads of file `h` (they go with the pages they describe).
    pub fn free_bh(&mut self, h: u32, n: u32, cpu: u16) {
        for _ in 0..n {
            let Some(sid) = self.holders[h as usize].refs.pop() else {
                break;
            };
            self.slab_put(sid, cpu);
        }
    }

    /// A file lost its last page: its radix nodes and buffer heads are freed, its dentry and
    /// inode become unused cached objects.
    pub fn file_cold(&mut self, h: u32, cpu: u16) {
        self.free_bh(h, u32::MAX, cpu);
        let hd = &mut self.holders[h as usize];
        if !hd.warm {
            return;
        }
        hd.warm = false;
        hd.aux_count = 0;
        let k = std::mem::take(&mut hd.kobjs);
        for &sid in &k {
            if unref(sid).0 == self.radix_cache as usize {
                self.slab_put(sid, cpu);
            } else {
                self.slab_to_lru(sid);
            }
        }
        let mut k = k;
        k.clear();
        self.holders[h as usize].kobjs = k;
    }

    /// Free everything a holder owns (pages, slab objects) and release it.
    pub fn free_holder(&mut self, h: u32, cpu: u16) {
        self.lru_del(h);
        for which in [0u8, flag::DIRTY, flag::AUX] {
            loop {
                let hd = &self.holders[h as usize];
                let list = match which {
                    flag::DIRTY => &hd.dirty,
                    flag::AUX => &hd.aux,
                    _ => &hd.pages,
                };
                let Some(&id) = list.last() else { break };
                self.free_page(id, cpu);
            }
        }
        let k = std::mem::take(&mut self.holders[h as usize].kobjs);
        for &sid in &k {
            self.slab_put(sid, cpu);
        }
        let mut k = k;
        k.clear();
        self.holders[h as usize].kobjs = k;
        if self.holders[h as usize].kind == HKind::File {
            // a file's refs are its buffer heads
            self.free_bh(h, u32::MAX, cpu);
        }
        self.holders[h as usize].refs.clear();
        self.release_holder(h);
    }

    /// Kill a process: its kernel stacks go to the per-CPU stack cache (up to two stacks),
    /// everything else is freed.
    pub fn exit_process(&mut self, h: u32) {
        let cpu = self.holders[h as usize].cpu;
        let sc = self.stack_cache[cpu as usize % self.stack_cache.len()];
        // move up to 8 stack pages (two 16 KiB stacks) to the cache (kernel pages of a process
        // sit on its `dirty` list)
        let mut i = 0;
        while i < self.holders[h as usize].dirty.len() && self.holders[sc as usize].pages.len() < 8
        {
            let id = self.holders[h as usize].dirty[i];
            if self.objs[id as usize].kind == kind::STACK {
                self.detach(id);
                self.attach(id, sc, 0);
            } else {
                i += 1;
            }
        }
        // unpin
        let refs = std::mem::take(&mut self.holders[h as usize].refs);
        for &id in &refs {
            let o = &mut self.objs[id as usize];
            if o.holder == h {
                o.flags &= !flag::PINNED;
            }
        }
        let mut refs = refs;
        refs.clear();
        self.holders[h as usize].refs = refs;
        self.free_holder(h, cpu);
    }

    /// Take a cached kernel stack (4 pages) for `cpu` into holder `h`.
    pub fn take_cached_stack(&mut self, cpu: u16, h: u32) -> bool {
        let sc = self.stack_cache[cpu as usize % self.stack_cache.len()];
        if self.holders[sc as usize].pages.len() < 4 {
            return false;
        }
        for _ in 0..4 {
            let id = *self.holders[sc as usize].pages.last().unwrap();
            self.detach(id);
            self.attach(id, h, flag::DIRTY);
        }
        true
    }

    /// Swap out up to `nr` anonymous pages (only with swap), from the largest processes.
    fn swap_out(&mut self, nr: u64, cpu: u16) -> u64 {
        let mut freed = 0;
        let mut tries = 4;
        while freed < nr && tries > 0 {
            tries -= 1;
            let Some(&v) = self
                .procs
                .iter()
                .max_by_key(|&&p| self.holders[p as usize].small)
            else {
                break;
            };
            if self.holders[v as usize].small == 0 {
                break;
            }
            let mut i = self.holders[v as usize].pages.len();
            while freed < nr && i > 0 {
                i -= 1;
                let id = self.holders[v as usize].pages[i];
                let o = self.objs[id as usize];
                if o.kind == kind::ANON && o.flags & flag::PINNED == 0 {
                    self.free_page(id, cpu);
                    self.holders[v as usize].small -= 1;
                    freed += 1;
                    i = i.min(self.holders[v as usize].pages.len());
                }
            }
        }
        self.st.pswpout += freed;
        self.st.pgsteal_anon += freed;
        freed
    }

    /// Pages reclaim could free.
    pub fn reclaimable(&self) -> u64 {
        let clean: u64 = self.clean_cache_zone.iter().sum();
        let slab: u64 =
            self.freeable_slab_zone.iter().sum::<u64>() + self.shrinkable_objects() / 16;
        let anon = if self.swap {
            self.kind_pages[kind::ANON as usize]
        } else {
            0
        };
        clean + self.dirty_pages + slab + anon
    }

    fn drain_pending_into(&mut self, from: usize, out: &mut Vec<FreedBlock>) {
        for &(pfn, order, _) in &self.pending[from..] {
            out.push(FreedBlock { pfn, order });
        }
        self.st.env_frees += (self.pending.len() - from) as u64;
        self.pending.truncate(from);
    }

    /// The reclaim policy, shared by the Env hook and the probe.
    pub fn do_reclaim(&mut self, req: ReclaimRequest) -> u64 {
        let cpu = 0;
        let nr = req.nr_pages.max(1);
        let mut freed = 0;
        match req.who {
            Reclaimer::Kswapd | Reclaimer::Direct => {
                // shrink_node at DEF_PRIORITY (12) down to 0: each pass scans lru >> priority
                // pages, and the shrinkers scan (freeable >> priority) * 4 / seeks objects
                // (seeks = 2), until the target is met
                let mut prio = 12u32;
                loop {
                    let lru: u64 = self.clean_cache_zone.iter().sum::<u64>() + self.dirty_pages;
                    let scan = (lru >> prio).max(32).min(nr - freed);
                    freed += self.evict(scan, req.may_swap, cpu);
                    if req.shrink_slab {
                        let before: u64 = self.slab_reclaimable_pages;
                        self.shrink_slab(2.0 / (1u64 << prio) as f64, 0, cpu);
                        freed += before - self.slab_reclaimable_pages;
                    }
                    if freed >= nr || prio == 0 {
                        break;
                    }
                    prio -= 1;
                }
                if freed < nr && req.may_swap && self.swap {
                    freed += self.swap_out(nr - freed, cpu);
                }
            }
            Reclaimer::Contig => {
                freed += self.evict(nr, false, cpu);
                if freed < nr && req.shrink_slab {
                    let before: u64 = self.slab_reclaimable_pages;
                    self.shrink_slab(1.0, 0, cpu);
                    freed += before - self.slab_reclaimable_pages;
                }
            }
            Reclaimer::SpbShrink => {
                let before: u64 = self.slab_reclaimable_pages;
                match req.prefer_range {
                    Some((lo, hi)) => {
                        self.shrink_range(lo, hi, nr.saturating_mul(64).max(4096), cpu);
                    }
                    None => {
                        let objs = self.shrinkable_objects().max(1);
                        self.shrink_slab((nr as f64 * 16.0 / objs as f64).min(1.0), 0, cpu);
                    }
                }
                freed += before - self.slab_reclaimable_pages;
            }
        }
        freed
    }

    /// The OOM killer's choice: the process with the largest resident set.
    pub fn oom_victim(&self) -> Option<u32> {
        self.procs
            .iter()
            .copied()
            .max_by_key(|&p| (self.holders[p as usize].rss(), p))
    }
}

impl Env for World {
    fn migrate(&mut self, from: Pfn, to: Pfn, order: u8, cookie: u32) -> MigrateOutcome {
        let Some(&o) = self.objs.get(cookie as usize) else {
            return MigrateOutcome::Refused;
        };
        if o.holder == NONE || o.pfn as u64 != from || o.order != order {
            debug_assert!(
                false,
                "migration of cookie {cookie} from {from:#x} order {order}: record {o:?}"
            );
            return MigrateOutcome::Refused;
        }
        if o.flags & flag::PINNED != 0 {
            self.st.migrate_refused += 1;
            return MigrateOutcome::Refused;
        }
        if self.contig_mode && o.kind == kind::CACHE && o.flags & flag::DIRTY == 0 {
            // alloc_contig_range reclaims clean page cache instead of migrating it
            let h = o.holder;
            self.detach(cookie);
            self.forget(cookie);
            let cpu = self.holders[h as usize].cpu;
            self.free_bh(h, 1 << order, cpu);
            self.st.migrate_dropped += 1;
            self.st.pgsteal_file += 1u64 << order;
            if self.holders[h as usize].pages.is_empty()
                && self.holders[h as usize].dirty.is_empty()
            {
                // slab pages freed here are freed through the normal path after the callback
                self.lru_del(h);
                self.file_cold(h, cpu);
            }
            return MigrateOutcome::Dropped;
        }
        let z = self.zone_of(to);
        if o.kind == kind::CACHE && o.flags & flag::DIRTY == 0 && z != o.zone {
            let n = 1u64 << order;
            self.clean_cache_zone[o.zone as usize] -= n;
            self.clean_cache_zone[z as usize] += n;
        }
        let ob = &mut self.objs[cookie as usize];
        ob.pfn = to as u32;
        ob.zone = z;
        self.st.migrate_moved += 1;
        MigrateOutcome::Moved
    }

    fn reclaim(&mut self, req: ReclaimRequest, out: &mut Vec<FreedBlock>) {
        let from = self.pending.len();
        self.do_reclaim(req);
        self.drain_pending_into(from, out);
    }

    fn reclaimable_pages(&self) -> u64 {
        self.reclaimable()
    }

    fn oom_kill(&mut self, out: &mut Vec<FreedBlock>) -> bool {
        let Some(v) = self.oom_victim() else {
            return false;
        };
        let from = self.pending.len();
        let comp = self.holders[v as usize].comp;
        let fl = self.holders[v as usize].flags;
        self.exit_process(v);
        self.st.oom_kills += 1;
        self.st.killed.push((v, comp, fl));
        self.drain_pending_into(from, out);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::super::slab::cache_id;
    use super::*;

    fn world() -> World {
        World::new(vec![(0, 1 << 20), (1 << 20, 1 << 22)], 1, false)
    }

    fn new_slab(w: &mut World, c: u16, pfn: u64, order: u8) -> SlabRef {
        let id = w.new_obj();
        w.fill_obj(id, pfn, order, kind::SLAB, NONE);
        w.slab_new(c, id)
    }

    #[test]
    fn slab_occupancy_partial_first_and_pinning() {
        let mut w = world();
        let c = cache_id("kmalloc-192"); // 21 objects per order-0 slab
        let s1 = new_slab(&mut w, c, 100, 0);
        for _ in 0..20 {
            assert_eq!(
                w.slab_take_room(c),
                Some(s1),
                "a partial slab is filled first"
            );
        }
        assert_eq!(w.slab_take_room(c), None, "full: a new slab page is needed");
        let s2 = new_slab(&mut w, c, 200, 0);
        assert_eq!(w.caches[c as usize].objects, 22);
        // free 20 of s1's objects: the one long-lived object left pins the page
        for _ in 0..20 {
            w.slab_put(s1, 0);
        }
        assert!(w.pending.is_empty());
        assert_eq!(w.caches[c as usize].pages, 2);
        // new objects go to a partial slab, no page allocation
        assert!(matches!(w.slab_take_room(c), Some(s) if s == s1 || s == s2));
        // empty slabs are kept up to min_partial (5), then freed
        let min_partial = w.caches[c as usize].spec.min_partial();
        let mut extra = Vec::new();
        for k in 0..min_partial + 3 {
            extra.push(new_slab(&mut w, c, 1000 + k as u64, 0));
        }
        for &s in &extra {
            w.slab_put(s, 0);
        }
        assert_eq!(w.caches[c as usize].empty, min_partial);
        assert_eq!(
            w.pending.len(),
            3,
            "beyond min_partial, empty slabs go back to the page allocator"
        );
        assert_eq!(
            w.kind_pages[kind::SLAB as usize],
            w.caches[c as usize].pages
        );
        // slot bookkeeping: live slots point at their page records, partial positions match
        for (i, x) in w.caches[c as usize].slots.iter().enumerate() {
            if x.id == NONE {
                assert!(w.caches[c as usize].free_slots.contains(&(i as u32)));
                continue;
            }
            assert_eq!(w.objs[x.id as usize].slot, i as u32);
            if x.ppos != NONE {
                assert_eq!(w.caches[c as usize].partial[x.ppos as usize], i as u32);
            }
        }
    }

    #[test]
    fn reclaimable_slab_shrinks_oldest_first() {
        let mut w = world();
        let c = cache_id("dentry");
        // two slabs, each with 21 objects: slab A's objects all unused and cached, slab B keeps
        // one object in use
        let a = new_slab(&mut w, c, 300, 0);
        for _ in 0..20 {
            w.slab_take_room(c);
        }
        let b = new_slab(&mut w, c, 400, 0);
        for _ in 0..20 {
            w.slab_take_room(c);
        }
        for _ in 0..21 {
            w.slab_to_lru(a);
        }
        for _ in 0..20 {
            w.slab_to_lru(b);
        }
        assert_eq!(
            w.freeable_slab_zone[0], 1,
            "only slab A would be freed by a full shrink"
        );
        // reuse the most recently cached object (one of B's), then shrink everything
        assert_eq!(w.slab_from_lru(c), Some(b));
        assert_eq!(w.shrinkable_objects(), 40);
        for _ in 0..21 {
            assert!(w.slab_shrink_one(c, 0));
        }
        // A's objects were the oldest: A is now empty (kept as an empty slab, min_partial)
        assert_eq!(w.caches[c as usize].slots[unref(a).1 as usize].inuse, 0);
        assert!(w.pending.is_empty());
        let freed = w.shrink_slab(1.0, 0, 0);
        assert_eq!(freed, 19);
        assert_eq!(w.caches[c as usize].objects, 2, "the objects in use stay");
    }

    #[test]
    fn migration_moves_refuses_pinned_and_drops_clean_cache_in_contig_mode() {
        let mut w = world();
        let h = w.new_holder(HKind::File, 0, 0);
        let id = w.new_obj();
        w.fill_obj(id, 5000, 0, kind::CACHE, h);
        w.add_cache_page(id, h, false);
        assert_eq!(w.clean_cache_zone[0], 1);
        assert_eq!(w.migrate(5000, (1 << 20) + 7, 0, id), MigrateOutcome::Moved);
        assert_eq!(w.objs[id as usize].pfn, (1 << 20) + 7);
        assert_eq!(
            (w.clean_cache_zone[0], w.clean_cache_zone[1]),
            (0, 1),
            "per-zone clean cache follows the page"
        );
        w.objs[id as usize].flags |= flag::PINNED;
        assert_eq!(w.migrate((1 << 20) + 7, 9, 0, id), MigrateOutcome::Refused);
        w.objs[id as usize].flags &= !flag::PINNED;
        w.contig_mode = true;
        assert_eq!(w.migrate((1 << 20) + 7, 9, 0, id), MigrateOutcome::Dropped);
        assert_eq!(w.clean_cache_zone[1], 0);
        assert!(w.holders[h as usize].pages.is_empty());
        assert_eq!(w.kind_pages[kind::CACHE as usize], 0);
        // dirty page cache is migrated even in contig mode
        let id2 = w.new_obj();
        w.fill_obj(id2, 6000, 0, kind::CACHE, h);
        w.add_cache_page(id2, h, true);
        assert_eq!(w.migrate(6000, 6001, 0, id2), MigrateOutcome::Moved);
    }

    #[test]
    fn eviction_takes_the_oldest_files_and_writes_back_dirty_ones() {
        let mut w = world();
        let mut files = Vec::new();
        for f in 0..3u64 {
            let h = w.new_holder(HKind::File, 0, 0);
            w.lru_add(h);
            for k in 0..4u64 {
                let id = w.new_obj();
                w.fill_obj(id, 100 * f + k, 0, kind::CACHE, h);
                w.add_cache_page(id, h, f == 0);
            }
            files.push(h);
        }
        // the oldest file is dirty: it is written back (not freed) and rotated
        let freed = w.evict(4, true, 0);
        assert_eq!(freed, 4);
        assert_eq!(
            w.holders[files[0] as usize].pages.len(),
            4,
            "written back, now clean"
        );
        assert!(
            w.holders[files[1] as usize].pages.is_empty(),
            "the oldest clean file went first"
        );
        assert_eq!(w.pending.len(), 4);
        assert_eq!(w.dirty_pages, 0);
    }
}
