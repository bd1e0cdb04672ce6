//! Files: page cache of a disk filesystem, and tmpfs sb-stress loops.
//!
//! gfp shapes (6.18, ext4 with large folios; see shared/traces/pagecache):
//! - buffered write, order 0: `GFP_HIGHUSER_MOVABLE|__GFP_WRITE|__GFP_COMP`; larger folios add
//!   `__GFP_NOWARN|__GFP_NORETRY` and fall back one order at a time (`__filemap_get_folio`);
//!   the folio order follows the write size (4K: 0, 64K: 4, 1M: 8, 2M: 9);
//! - readahead: the mapping mask of ext4 (no __GFP_FS) plus `__GFP_NORETRY|__GFP_NOWARN`:
//!   `GFP_NOFS|__GFP_HIGHMEM|__GFP_MOVABLE|__GFP_NOWARN|__GFP_NORETRY|__GFP_COMP|
//!   __GFP_HARDWALL`, falling back to order 0;
//! - per file: a dentry (reclaimable slab), an ext4 inode (reclaimable), one xarray node per
//!   64 cached pages (reclaimable, GFP_NOFS) and one buffer head per written 4 KiB block
//!   (reclaimable, GFP_NOFS), freed with the pages;
//! - tmpfs: shmem pages `GFP_HIGHUSER_MOVABLE|__GFP_COMP` (movable, not evictable without
//!   swap), shmem inodes (unmovable slab), dentries (reclaimable slab, in use while mounted).

use std::collections::VecDeque;

use spb_alloc::Gfp;

use super::{op, TICK_NS};
use crate::scenario::{PageCache, Tmpfs};
use crate::sim::ctx::{Component, Ctx};
use crate::sim::queue::Ev;
use crate::sim::slab::{cache_id, NONE};
use crate::sim::world::{kind, HKind};

pub const GFP_WRITE0: Gfp = Gfp::HIGHUSER_MOVABLE.with(Gfp::WRITE).with(Gfp::COMP);
pub const GFP_WRITE_LARGE: Gfp = GFP_WRITE0.with(Gfp::NOWARN).with(Gfp::NORETRY);
pub const GFP_READAHEAD: Gfp = Gfp::HIGHUSER_MOVABLE
    .without(Gfp::FS)
    .with(Gfp::NORETRY)
    .with(Gfp::NOWARN)
    .with(Gfp::COMP);
pub const GFP_SHMEM: Gfp = Gfp::HIGHUSER_MOVABLE.with(Gfp::COMP);

/// Run-time state of a page-cache component.
pub struct PageCacheRt {
    pub cfg: PageCache,
    /// Files, oldest first: (holder, generation, creation time).
    pub files: VecDeque<(u32, u32, u64)>,
    pub cur: Option<(u32, u32)>,
    pub write_per_tick: f64,
    pub read_per_tick: f64,
    pub file_pages: f64,
    pub write_order: u8,
    pub life_ns: Option<u64>,
    pub buffer_head: u16,
    pub read_debt: f64,
    /// Pages of one readahead window (`ra_window_pages`).
    pub ra_window: u32,
}

impl PageCacheRt {
    pub fn new(cx: &Ctx, p: &PageCache) -> PageCacheRt {
        let tick_s = TICK_NS as f64 / 1e9;
        let wb = (p.write_block.bytes(cx.ram) / 4096).max(1);
        let write_order = (63 - wb.leading_zeros()) as u8;
        PageCacheRt {
            cfg: p.clone(),
            files: VecDeque::new(),
            cur: None,
            write_per_tick: p.write_rate.pages(cx.ram) as f64 * tick_s,
            read_per_tick: p.read_rate.pages(cx.ram) as f64 * tick_s,
            file_pages: (p.file_size.pages(cx.ram) as f64).max(1.0),
            write_order: write_order
                .min(cx.geo.max_order)
                .min(cx.geo.pageblock_order),
            life_ns: p.lifetime.map(|d| d.ns(cx.sc.duration_ns)),
            buffer_head: cache_id("buffer_head"),
            read_debt: 0.0,
            ra_window: ra_window_pages(
                p.read_ahead.pages(cx.ram),
                p.read_order.min(cx.geo.max_order),
            ),
        }
    }
}

/// One sb-stress worker.
#[derive(Clone, Copy, Debug)]
pub struct TmpfsWorker {
    pub mount: u32,
    pub gen: u32,
    pub created: u32,
    pub umount_at: u64,
    pub cpu: u16,
}

/// Run-time state of a tmpfs component.
pub struct TmpfsRt {
    pub cfg: Tmpfs,
    pub workers: Vec<TmpfsWorker>,
    pub file_pages: u32,
    pub blob_pages: u32,
    pub period_ns: u64,
}

impl TmpfsRt {
    pub fn new(cx: &Ctx, p: &Tmpfs) -> TmpfsRt {
        TmpfsRt {
            cfg: p.clone(),
            workers: Vec::new(),
            file_pages: (p.file_size.pages(cx.ram) as u32).max(if p.file_size.bytes(cx.ram) > 0 {
                1
            } else {
                0
            }),
            blob_pages: p.blob.pages(cx.ram) as u32,
            period_ns: p.period.ns(cx.sc.duration_ns).max(TICK_NS),
        }
    }
}

impl Component for PageCacheRt {
    fn start(&mut self, cx: &mut Ctx) {
        self.on_tick(cx);
    }

    fn handle(&mut self, cx: &mut Ctx, ev: Ev) {
        if ev.op == op::TICK {
            self.on_tick(cx);
        }
    }
}

impl PageCacheRt {
    /// A tick while active: writes, reads, deletions; the next tick.
    fn on_tick(&mut self, cx: &mut Ctx) {
        if !cx.active() {
            return;
        }
        self.pagecache_tick(cx);
        cx.at(cx.now + TICK_NS, op::TICK, 0, 0);
    }

    /// Create a file: dentry and inode.
    fn create_file(&mut self, cx: &mut Ctx, cpu: u16) -> Option<(u32, u32)> {
        let h = cx.w.new_holder(HKind::File, cx.comp, cpu);
        let gen = cx.w.holders[h as usize].gen;
        let (dc, ic) = (cx.w.dentry_cache, cx.w.inode_cache);
        if !cx.kobj_for(h, gen, dc, Gfp::KERNEL, cpu) || !cx.kobj_for(h, gen, ic, Gfp::NOFS, cpu) {
            if cx.w.alive(h, gen) {
                cx.w.free_holder(h, cpu);
            }
            return None;
        }
        let mean = self.file_pages;
        let size = cx.rng.lognormal(mean, 1.0).clamp(1.0, 64.0 * mean) as u32;
        let hd = &mut cx.w.holders[h as usize];
        hd.warm = true;
        hd.target = size;
        cx.w.lru_add(h);
        let now = cx.now;
        self.files.push_back((h, gen, now));
        Some((h, gen))
    }

    /// Delete a file: truncate its page cache and free its inode and dentry (taking them back
    /// from the unused cache if the file had gone cold).
    fn delete_file(cx: &mut Ctx, h: u32, cpu: u16) {
        if !cx.w.holders[h as usize].warm {
            for c in [cx.w.dentry_cache, cx.w.inode_cache] {
                if let Some(s) = cx.w.slab_from_lru(c) {
                    cx.w.slab_put(s, cpu);
                }
            }
        }
        cx.w.free_holder(h, cpu);
    }

    /// Make a file warm again (its dentry and inode back in use).
    fn warm_file(cx: &mut Ctx, h: u32, gen: u32, cpu: u16) -> bool {
        if cx.w.holders[h as usize].warm {
            return true;
        }
        for (c, g) in [
            (cx.w.dentry_cache, Gfp::KERNEL),
            (cx.w.inode_cache, Gfp::NOFS),
        ] {
            let s = match cx.w.slab_from_lru(c) {
                Some(s) => s,
                None => match cx.kobj_alloc(c, g, cpu) {
                    Some(s) => s,
                    None => return false,
                },
            };
            if !cx.w.alive(h, gen) {
                cx.w.slab_put(s, cpu);
                return false;
            }
            cx.w.holders[h as usize].kobjs.push(s);
        }
        cx.w.holders[h as usize].warm = true;
        true
    }

    /// One readahead folio of exactly `order` (clean page cache). Returns the pages added.
    fn readahead_folio(cx: &mut Ctx, h: u32, gen: u32, order: u8, cpu: u16) -> u32 {
        let Some(id) = cx.alloc_for(NONE, 0, order, GFP_READAHEAD, cpu, kind::CACHE, 0) else {
            return 0;
        };
        if !cx.w.alive(h, gen) {
            cx.w.free_loose(id, cpu);
            return 0;
        }
        cx.w.add_cache_page(id, h, false);
        let hd = &mut cx.w.holders[h as usize];
        let need = hd.huge.div_ceil(64);
        if need > hd.aux_count {
            hd.aux_count += 1;
            let rc = cx.w.radix_cache;
            cx.kobj_for(h, gen, rc, Gfp::NOFS, cpu);
        }
        1 << order
    }

    /// Add a written (dirty) folio of up to `order` to file `h`, falling back one order at a
    /// time as `__filemap_get_folio` does. Returns the pages added (0 on failure).
    fn add_folio(cx: &mut Ctx, h: u32, gen: u32, order: u8, cpu: u16, bh_cache: u16) -> u32 {
        let write = true;
        let mut o = order as i32;
        // the first failed large folio, linked to the outcome of the orders below it
        let mut link = None;
        while o >= 0 {
            let ou = o as u8;
            let gfp = if ou > 0 { GFP_WRITE_LARGE } else { GFP_WRITE0 };
            if let Some(id) = cx.alloc_for(NONE, 0, ou, gfp, cpu, kind::CACHE, 0) {
                if let Some(l) = link.take() {
                    cx.st.bill.fallback_done(l, true);
                }
                if !cx.w.alive(h, gen) {
                    cx.w.free_loose(id, cpu);
                    return 0;
                }
                cx.w.add_cache_page(id, h, write);
                let n = 1u32 << ou;
                let hd = &mut cx.w.holders[h as usize];
                if write && hd.dirty.len() == 1 {
                    hd.dirtied_at = cx.now;
                }
                // xarray nodes: one per 64 cached pages
                let need = hd.huge.div_ceil(64);
                if need > hd.aux_count {
                    hd.aux_count += 1;
                    let rc = cx.w.radix_cache;
                    cx.kobj_for(h, gen, rc, Gfp::NOFS, cpu);
                }
                if write {
                    for _ in 0..n {
                        if !cx.w.alive(h, gen) {
                            break;
                        }
                        if let Some(s) = cx.kobj_alloc(bh_cache, Gfp::NOFS, cpu) {
                            if cx.w.alive(h, gen) {
                                cx.w.holders[h as usize].refs.push(s);
                            } else {
                                cx.w.slab_put(s, cpu);
                            }
                        }
                    }
                }
                return n;
            }
            if !cx.w.alive(h, gen) {
                // killed inside the allocation: no fallback is tried
                if let Some(l) = link {
                    cx.st.bill.fallback_done(l, false);
                }
                return 0;
            }
            if o > 0 {
                cx.st.pagecache_folio_fallbacks += 1;
                if link.is_none() {
                    link = Some(
                        cx.st
                            .bill
                            .optional_failed(crate::cost::OptionalKind::PagecacheFolio),
                    );
                }
            }
            o -= 1;
        }
        if let Some(l) = link {
            cx.st.bill.fallback_done(l, false);
        }
        0
    }

    fn pagecache_tick(&mut self, cx: &mut Ctx) {
        let cpu = cx.rng.below(cx.cpus as u64) as u16;
        let (wpt, rpt, worder, max_files, life, bh) = {
            let rt = &*self;
            (
                rt.write_per_tick,
                rt.read_per_tick,
                rt.write_order,
                rt.cfg.files,
                rt.life_ns,
                rt.buffer_head,
            )
        };
        // deletions: beyond the file count, or past the lifetime (oldest first)
        loop {
            let now = cx.now;
            let rt = &mut *self;
            let Some(&(h, gen, born)) = rt.files.front() else {
                break;
            };
            let expired = life.map(|l| now.saturating_sub(born) >= l).unwrap_or(false);
            if rt.files.len() as u32 <= max_files && !expired {
                break;
            }
            rt.files.pop_front();
            if rt.cur == Some((h, gen)) {
                rt.cur = None;
            }
            if cx.w.alive(h, gen) {
                Self::delete_file(cx, h, cpu);
            }
        }
        // writes
        let mut budget = cx.rng.round(wpt) as i64;
        while budget > 0 {
            let cur0 = self.cur;
            let cur = match cur0 {
                Some((h, g))
                    if cx.w.alive(h, g)
                        && cx.w.holders[h as usize].small < cx.w.holders[h as usize].target =>
                {
                    (h, g)
                }
                _ => match self.create_file(cx, cpu) {
                    Some(x) => {
                        self.cur = Some(x);
                        x
                    }
                    None => break,
                },
            };
            let (h, gen) = cur;
            let left = cx.w.holders[h as usize].target - cx.w.holders[h as usize].small;
            let mut o = worder;
            while o > 0 && (1u32 << o) > left {
                o -= 1;
            }
            let n = Self::add_folio(cx, h, gen, o, cpu, bh);
            if n == 0 {
                break;
            }
            cx.w.holders[h as usize].small += n;
            cx.w.lru_touch(h);
            budget -= n as i64;
        }
        cx.balance_dirty();
        // reads: whole files, recently written ones more often
        let read_order = self.cfg.read_order.min(cx.geo.max_order);
        self.read_debt += rpt;
        let mut guard = 64;
        while self.read_debt >= 1.0 && guard > 0 {
            guard -= 1;
            let n = self.files.len() as u64;
            if n == 0 {
                self.read_debt = 0.0;
                break;
            }
            // half the reads go to the newest quarter of the files
            let k = if cx.rng.chance(0.5) {
                n - 1 - cx.rng.below(n.div_ceil(4))
            } else {
                cx.rng.below(n)
            };
            let (h, gen, _) = self.files[k as usize];
            if !cx.w.alive(h, gen) {
                continue;
            }
            let (size, cached) = {
                let hd = &cx.w.holders[h as usize];
                (hd.small.min(hd.target), hd.huge)
            };
            self.read_debt -= size.max(1) as f64;
            if !Self::warm_file(cx, h, gen, cpu) {
                break;
            }
            cx.w.lru_add(h);
            cx.w.lru_touch(h);
            // readahead of what is not cached (`readahead_windows`); a refused large folio is
            // linked to its order-0 fallback in the bill (not a killed reader's)
            let missing = size.saturating_sub(cached);
            readahead_windows(missing, self.ra_window, read_order, |order, fallback| {
                if !fallback {
                    return Self::readahead_folio(cx, h, gen, order, cpu);
                }
                cx.st.pagecache_folio_fallbacks += 1;
                let link = cx.w.alive(h, gen).then(|| {
                    cx.st
                        .bill
                        .optional_failed(crate::cost::OptionalKind::PagecacheFolio)
                });
                let got = Self::readahead_folio(cx, h, gen, 0, cpu);
                if let Some(l) = link {
                    cx.st.bill.fallback_done(l, got > 0);
                }
                got
            });
        }
    }
}

/// Read `missing` pages of a file by readahead, `window` pages at a time, asking `folio(order,
/// fallback)` for each folio (the pages it added; 0 = refused). As page_cache_ra_order: the
/// first window (the synchronous one) reads order-0 folios and every later window ramps the order
/// up by 2, to `read_order` and to what is left of the window; when a large folio is refused,
/// the rest of its window is read with order-0 folios (do_page_cache_ra; the first of them asked
/// with `fallback` set), and the next window tries the ramped order again (`ra->order` is not
/// lowered by a failure). Stops early when an order-0 folio is refused (the reader was killed).
fn readahead_windows(
    mut missing: u32,
    window: u32,
    read_order: u8,
    mut folio: impl FnMut(u8, bool) -> u32,
) {
    let mut ra_order = 0u8;
    while missing > 0 {
        let mut left = window.min(missing);
        let mut order = ra_order.min(read_order);
        while left > 0 {
            while order > 0 && (1u32 << order) > left {
                order -= 1;
            }
            let mut got = folio(order, false);
            if got == 0 && order > 0 {
                order = 0;
                got = folio(0, true);
            }
            if got == 0 {
                return;
            }
            left = left.saturating_sub(got);
            missing = missing.saturating_sub(got);
        }
        ra_order = (ra_order + 2).min(read_order);
    }
}

/// Pages of one readahead window: `read_ahead` (the device's `read_ahead_kb`), raised to a folio
/// of `read_order` when smaller (page_cache_ra_order caps a folio at `ilog2(ra->size)`, so a
/// workload that reads folios of `read_order` has windows at least that large). Never 0.
fn ra_window_pages(read_ahead_pages: u64, read_order: u8) -> u32 {
    read_ahead_pages
        .clamp(1, u32::MAX as u64)
        .max(1 << read_order) as u32
}

impl Component for TmpfsRt {
    /// The workers, each on a random CPU, start within ten ticks.
    fn start(&mut self, cx: &mut Ctx) {
        let n = self.cfg.workers;
        for i in 0..n {
            let cpu = cx.rng.below(cx.cpus as u64) as u16;
            self.workers.push(TmpfsWorker {
                mount: NONE,
                gen: 0,
                created: 0,
                umount_at: 0,
                cpu,
            });
            let d = cx.rng.below(TICK_NS * 10);
            cx.at(cx.now + d, op::TMPFS, i, 0);
        }
    }

    fn handle(&mut self, cx: &mut Ctx, ev: Ev) {
        if ev.op == op::TMPFS {
            self.tmpfs_step(cx, ev.a as usize);
        }
    }
}

impl TmpfsRt {
    /// One step of worker `wi`: mount, create a share of the entries, or unmount.
    fn tmpfs_step(&mut self, cx: &mut Ctx, wi: usize) {
        let wk = self.workers[wi];
        let cpu = wk.cpu;
        let (files, dirs, fpages, bpages, period) = {
            let rt = &*self;
            (
                rt.cfg.files,
                rt.cfg.dirs,
                rt.file_pages,
                rt.blob_pages,
                rt.period_ns,
            )
        };
        let total = dirs + files + 1;
        let alive = wk.mount != NONE && cx.w.alive(wk.mount, wk.gen);
        if !alive {
            if !cx.active() {
                return;
            }
            // mount: super_block, shmem_sb_info, root inode and dentry
            let h = cx.w.new_holder(HKind::Mount, cx.comp, cpu);
            let gen = cx.w.holders[h as usize].gen;
            let mut ok = true;
            for (c, n) in [
                ("kmalloc-2k", 1),
                ("kmalloc-256", 1),
                ("kmalloc-64", 4),
                ("shmem_inode_cache", 1),
                ("dentry", 1),
            ] {
                for _ in 0..n {
                    ok &= cx.kobj_for(h, gen, cache_id(c), Gfp::KERNEL, cpu);
                }
            }
            if !ok {
                if cx.w.alive(h, gen) {
                    cx.w.free_holder(h, cpu);
                }
            } else {
                let d = cx.rng.exp_ns(period);
                cx.st.tmpfs_mounts += 1;
                self.workers[wi] = TmpfsWorker {
                    mount: h,
                    gen,
                    created: 0,
                    umount_at: cx.now + d,
                    cpu,
                };
            }
        } else if wk.created < total {
            // create a share of the entries per tick so that creation spans the mount's life
            let ticks = ((wk.umount_at.saturating_sub(cx.now)) / TICK_NS).max(1) as u32;
            let n = (total - wk.created).div_ceil(ticks).max(1);
            let (h, gen) = (wk.mount, wk.gen);
            let (dc, sc) = (cx.w.dentry_cache, cache_id("shmem_inode_cache"));
            let mut made = 0;
            for _ in 0..n {
                let idx = wk.created + made;
                made += 1;
                if !cx.kobj_for(h, gen, dc, Gfp::KERNEL, cpu)
                    || !cx.kobj_for(h, gen, sc, Gfp::KERNEL, cpu)
                {
                    break;
                }
                let pages = if idx < dirs {
                    0
                } else if idx < dirs + files {
                    fpages
                } else {
                    bpages
                };
                for _ in 0..pages {
                    match cx.alloc_for(h, gen, 0, GFP_SHMEM, cpu, kind::SHMEM, 0) {
                        Some(id) => {
                            // count it as shmem of the mount
                            let _ = id;
                            cx.w.holders[h as usize].huge += 1;
                        }
                        None => break,
                    }
                }
                if !cx.w.alive(h, gen) {
                    break;
                }
            }
            if cx.w.alive(h, gen) {
                self.workers[wi].created += made;
            }
        } else if cx.now >= wk.umount_at {
            cx.w.free_holder(wk.mount, cpu);
            self.workers[wi].mount = NONE;
        }
        cx.at(cx.now + TICK_NS, op::TMPFS, wi as u32, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::{ra_window_pages, readahead_windows};

    /// The folios asked for, in order: (order, fallback).
    fn asked(missing: u32, window: u32, read_order: u8, refuse_above: u8) -> Vec<(u8, bool)> {
        let mut v = Vec::new();
        readahead_windows(missing, window, read_order, |o, fb| {
            v.push((o, fb));
            if o > refuse_above {
                0
            } else {
                1 << o
            }
        });
        v
    }

    #[test]
    fn the_order_ramps_by_two_per_window_from_order_0() {
        let v = asked(4 * 32, 32, 4, 9);
        let mut want = vec![(0, false); 32];
        want.extend([(2, false); 8]);
        want.extend([(4, false); 2]);
        want.extend([(4, false); 2]);
        assert_eq!(v, want);
    }

    #[test]
    fn a_refused_large_folio_costs_the_rest_of_its_window_in_order_0_then_the_next_window_retries()
    {
        // order 4 always refused: from the third window on, each window asks once at order 4,
        // then reads its 32 pages with order-0 folios
        let v = asked(4 * 32, 32, 4, 2);
        let mut want = vec![(0, false); 32];
        want.extend([(2, false); 8]);
        for _ in 0..2 {
            want.push((4, false));
            want.push((0, true));
            want.extend([(0, false); 31]);
        }
        assert_eq!(v, want);
        let refused = v.iter().filter(|&&(o, _)| o == 4).count();
        assert_eq!(
            refused, 2,
            "one refused large folio per window, not one per folio"
        );
    }

    #[test]
    fn a_folio_never_crosses_the_end_of_the_read() {
        // 32 + 13 pages: the second window reads three order-2 folios and one page
        let v = asked(32 + 13, 32, 4, 9);
        assert_eq!(v[..32], [(0, false); 32]);
        assert_eq!(v[32..], [(2, false), (2, false), (2, false), (0, false)]);
    }

    #[test]
    fn a_refused_order_0_folio_ends_the_read() {
        let mut n = 0;
        readahead_windows(100, 32, 4, |_, _| {
            n += 1;
            0
        });
        assert_eq!(n, 1);
    }

    #[test]
    fn the_window_is_read_ahead_raised_to_the_read_order() {
        assert_eq!(ra_window_pages(32, 4), 32);
        assert_eq!(ra_window_pages(32, 9), 512);
        assert_eq!(ra_window_pages(0, 0), 1);
        assert_eq!(ra_window_pages(1024, 2), 1024);
    }
}
