//! Holders: the owners of blocks and slab objects (processes, files, tmpfs mounts, packet
//! batches, slab pools, the boot allocations, hugetlb requests, per-CPU stack caches).
//!
//! Invariants: a holder id is alive with generation `gen` until released; events carry
//! `(holder, gen)` and are dropped when the pair is no longer alive. An object attached to a
//! holder has `holder` set and `slot` equal to its index in the holder's list chosen by its
//! flags (`DIRTY`: `dirty`, `AUX`: `aux`, else `pages`). `procs` lists exactly the alive
//! processes, each at its `pslot`.

use super::objects::{flag, kind};
use super::World;
use crate::sim::slab::NONE;

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

impl World {
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
        self.unpin_all(h);
        self.free_holder(h, cpu);
    }

    /// Drop every pin process `h` holds (its `refs`); pages it no longer holds are left alone.
    pub fn unpin_all(&mut self, h: u32) {
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
}
