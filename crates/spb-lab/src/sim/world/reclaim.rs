//! Reclaim and the OOM killer's choice: eviction of clean page cache oldest file first (dirty
//! files written back on the way), swap-out of anonymous memory (only with swap), the
//! shrinkers, and the reclaim policy shared by the Env hook and the probe.
//!
//! Invariants: reclaim only frees through `free_page`/`slab_put` (blocks go to `pending`); the
//! pages it reports freed are pages taken off the world's counters.

use spb_alloc::{FreedBlock, ReclaimRequest, Reclaimer};

use super::objects::{flag, kind};
use super::World;
use crate::sim::slab::NONE;

/// Objects a targeted SPB slab shrink (`Reclaimer::SpbShrink` with a range, spb's patch 28) scans
/// per page it is asked to free, and the least it scans. A slab page frees only when every one
/// of its objects does, and the modelled reclaimable caches hold 6 to 64 objects a page
/// (inode_cache about 6, dentry 21, kmalloc-rcl-64 64), so a page's worth of frees takes
/// scanning several pages' worth of objects.
/// Inferred: the series' shrink work (in vmscan.c) is not in the posted text (docs/spb.md).
const SPB_SHRINK_SCAN_PER_PAGE: u64 = 64;
const SPB_SHRINK_SCAN_MIN: u64 = 4096;

impl World {
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

    pub(super) fn drain_pending_into(&mut self, from: usize, out: &mut Vec<FreedBlock>) {
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
                        let scan = nr
                            .saturating_mul(SPB_SHRINK_SCAN_PER_PAGE)
                            .max(SPB_SHRINK_SCAN_MIN);
                        self.shrink_range(lo, hi, scan, cpu);
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

#[cfg(test)]
mod tests {
    use super::super::HKind;
    use super::*;

    use super::super::test_world as world;

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
