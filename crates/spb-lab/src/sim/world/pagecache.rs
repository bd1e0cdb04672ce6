//! Page cache of files: clean and dirty folios, writeback, buffer heads, and files going cold
//! (their dentry and inode become unused cached slab objects).
//!
//! Invariants: a file's `huge` counts its cached pages; `dirty_pages` is the sum of its dirty
//! folios over all files, `clean_cache_zone[z]` of the clean ones in zone `z`; a file's `refs`
//! are its buffer heads (slab objects), freed with the pages they describe.

use super::objects::{flag, kind};
use super::slab::unref;
use super::World;

/// `World::clean_cache_gib`'s unit: a GiB of 4 KiB pages (one x86_64 SPB).
pub const CLEAN_GIB_SHIFT: u32 = 18;

impl World {
    /// `n` clean page-cache pages at `pfn` of zone `zone` more (`add`) or fewer: the per-zone
    /// count and the per-GiB one, always together.
    #[inline]
    pub(super) fn count_clean(&mut self, zone: u8, pfn: u32, n: u64, add: bool) {
        let i = (pfn >> CLEAN_GIB_SHIFT) as usize;
        if i >= self.clean_cache_gib.len() {
            self.clean_cache_gib.resize(i + 1, 0);
        }
        if add {
            self.clean_cache_zone[zone as usize] += n;
            self.clean_cache_gib[i] += n;
        } else {
            self.clean_cache_zone[zone as usize] -= n;
            self.clean_cache_gib[i] -= n;
        }
    }

    /// Attach a freshly allocated page-cache (or shmem) object to file `h`, clean or dirty.
    pub fn add_cache_page(&mut self, id: u32, h: u32, dirty: bool) {
        let o = self.objs[id as usize];
        let n = 1u64 << o.order;
        if o.kind == kind::CACHE {
            if dirty {
                self.dirty_pages += n;
            } else {
                self.count_clean(o.zone, o.pfn, n, true);
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
            self.count_clean(o.zone, o.pfn, n, false);
            self.dirty_pages += n;
            self.attach(id, h, flag::DIRTY);
        } else {
            self.dirty_pages -= n;
            self.count_clean(o.zone, o.pfn, n, true);
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
}
