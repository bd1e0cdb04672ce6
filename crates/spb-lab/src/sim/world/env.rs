//! The allocator's [`Env`]: migration of a block (refused when pinned), the contiguous
//! allocation's reclaim of clean page cache in its range, reclaim, and the OOM kill.
//!
//! Invariants: a migration moves the object record with the block (pfn and zone, per-zone
//! clean-cache counts); blocks freed inside a hook are handed to the allocator through `out`
//! and counted in `env_frees`, never left on `pending`.

use spb_alloc::{Env, FreedBlock, MigrateOutcome, Pfn, ReclaimRequest};

use super::objects::{flag, kind};
use super::pagecache::CLEAN_GIB_SHIFT;
use super::World;
use crate::sim::slab::NONE;

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
        let z = self.zone_of(to);
        if o.kind == kind::CACHE && o.flags & flag::DIRTY == 0 {
            let n = 1u64 << order;
            self.count_clean(o.zone, o.pfn, n, false);
            self.count_clean(z, to as u32, n, true);
        }
        let ob = &mut self.objs[cookie as usize];
        ob.pfn = to as u32;
        ob.zone = z;
        self.st.migrate_moved += 1;
        MigrateOutcome::Moved
    }

    fn prefetch(&self, cookie: u32) {
        if let Some(o) = self.objs.get(cookie as usize) {
            super::prefetch(o);
        }
    }

    fn reclaim_clean(&mut self, pfn: Pfn, order: u8, cookie: u32) -> bool {
        let Some(&o) = self.objs.get(cookie as usize) else {
            return false;
        };
        // a pinned folio keeps its extra references: reclaim fails as migration does
        if o.holder == NONE
            || o.pfn as u64 != pfn
            || o.order != order
            || o.kind != kind::CACHE
            || o.flags & (flag::DIRTY | flag::PINNED) != 0
        {
            return false;
        }
        let h = o.holder;
        self.detach(cookie);
        self.forget(cookie);
        let cpu = self.holders[h as usize].cpu;
        self.free_bh(h, 1 << order, cpu);
        self.st.migrate_dropped += 1;
        self.st.pgsteal_file += 1u64 << order;
        if self.holders[h as usize].pages.is_empty() && self.holders[h as usize].dirty.is_empty() {
            // slab pages freed here are freed through the normal path after the callback
            self.lru_del(h);
            self.file_cold(h, cpu);
        }
        true
    }

    fn reclaim(&mut self, req: ReclaimRequest, out: &mut Vec<FreedBlock>) {
        let from = self.pending.len();
        self.do_reclaim(req);
        self.drain_pending_into(from, out);
    }

    fn reclaimable_pages(&self) -> u64 {
        self.reclaimable()
    }

    fn split(&mut self, pfn: Pfn, order: u8, cookie: u32, out: &mut Vec<u32>) -> bool {
        // an anonymous THP splits into small anonymous pages of its process, a large
        // page-cache or shmem folio into small pages of its file, dirty if it was (the head
        // keeps its id as the first one); a pinned folio does not split (its extra references
        // make split_folio fail)
        let Some(&o) = self.objs.get(cookie as usize) else {
            return false;
        };
        if !matches!(o.kind, kind::THP | kind::CACHE | kind::SHMEM)
            || o.holder == NONE
            || o.pfn as u64 != pfn
            || o.order != order
            || order == 0
            || o.flags & (flag::PINNED | flag::AUX) != 0
        {
            return false;
        }
        let h = o.holder;
        let n = 1u64 << order;
        if o.kind != kind::THP {
            // same pages, same file, same dirty state: only the object count changes
            self.st.file_folio_split += 1;
            self.kind_pages[o.kind as usize] -= n - 1;
            self.objs[cookie as usize].order = 0;
            out.push(cookie);
            let dirty = o.flags & flag::DIRTY;
            for i in 1..n {
                let id = self.new_obj();
                self.fill_obj(id, pfn + i, 0, o.kind, h);
                self.attach(id, h, dirty);
                out.push(id);
            }
            return true;
        }
        self.st.thp_split_page += 1;
        self.kind_pages[kind::THP as usize] -= n;
        self.kind_pages[kind::ANON as usize] += 1;
        let head = &mut self.objs[cookie as usize];
        head.kind = kind::ANON;
        head.order = 0;
        out.push(cookie);
        for i in 1..n {
            let id = self.new_obj();
            self.fill_obj(id, pfn + i, 0, kind::ANON, h);
            self.attach(id, h, 0);
            out.push(id);
        }
        let hd = &mut self.holders[h as usize];
        hd.huge = hd.huge.saturating_sub(1);
        hd.small += n as u32;
        true
    }

    fn maybe_pinned(&self, pfn: Pfn, cookie: u32) -> bool {
        // the lab knows its pins exactly (the kernel's test can also say "maybe" for a page
        // with many references; the lab has no such false positives)
        self.objs
            .get(cookie as usize)
            .is_some_and(|o| o.holder != NONE && o.pfn as u64 == pfn && o.flags & flag::PINNED != 0)
    }

    fn clean_cache_by_range(&self, start: Pfn, end: Pfn, unit: u64, out: &mut Vec<u64>) {
        // what reclaim_clean would drop (page cache is never pinned in the lab: pins are of
        // process memory)
        let base = start / unit * unit;
        out.clear();
        out.resize((end.saturating_sub(base)).div_ceil(unit) as usize, 0);
        if unit == 1 << CLEAN_GIB_SHIFT {
            // SPB-sized ranges: the per-GiB counts, whole ranges
            let first = (base >> CLEAN_GIB_SHIFT) as usize;
            for (i, v) in out.iter_mut().enumerate() {
                *v = self.clean_cache_gib.get(first + i).copied().unwrap_or(0);
            }
            return;
        }
        // other sizes: one pass over the object records, pages of [start, end) only
        for o in &self.objs {
            let p = o.pfn as u64;
            if o.holder != NONE
                && o.kind == kind::CACHE
                && o.flags & (flag::DIRTY | flag::PINNED) == 0
                && (start..end).contains(&p)
            {
                out[((p - base) / unit) as usize] += 1u64 << o.order;
            }
        }
    }

    fn reclaimable_without_swap(&self) -> u64 {
        // clean page cache, and the reclaimable slab pages whose every object is unused: a
        // shrinker frees unused cached objects only, so a slab with an object in use stays
        self.clean_cache_zone.iter().sum::<u64>() + self.freeable_slab_zone.iter().sum::<u64>()
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
    use super::super::HKind;
    use super::*;

    use super::super::test_world as world;

    #[test]
    fn migration_moves_refuses_pinned_and_contig_reclaims_clean_cache() {
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
        assert!(!w.maybe_pinned((1 << 20) + 7, id));
        w.objs[id as usize].flags |= flag::PINNED;
        assert!(
            w.maybe_pinned((1 << 20) + 7, id),
            "maybe_pinned tells before migrating"
        );
        assert!(
            !w.maybe_pinned(5000, id),
            "not at a pfn the block is not at"
        );
        assert_eq!(w.migrate((1 << 20) + 7, 9, 0, id), MigrateOutcome::Refused);
        assert!(
            !w.reclaim_clean((1 << 20) + 7, 0, id),
            "a pinned clean page is not reclaimed"
        );
        w.objs[id as usize].flags &= !flag::PINNED;
        assert!(!w.reclaim_clean((1 << 20) + 8, 0, id), "not at another pfn");
        assert!(w.reclaim_clean((1 << 20) + 7, 0, id));
        assert_eq!(w.clean_cache_zone[1], 0);
        assert!(w.holders[h as usize].pages.is_empty());
        assert_eq!(w.kind_pages[kind::CACHE as usize], 0);
        // dirty page cache is not reclaimed: it is migrated
        let id2 = w.new_obj();
        w.fill_obj(id2, 6000, 0, kind::CACHE, h);
        w.add_cache_page(id2, h, true);
        assert!(!w.reclaim_clean(6000, 0, id2));
        assert_eq!(w.migrate(6000, 6001, 0, id2), MigrateOutcome::Moved);
    }

    #[test]
    fn clean_cache_by_range_counts_what_reclaim_clean_would_drop() {
        let mut w = world();
        let h = w.new_holder(HKind::File, 0, 0);
        // range 0 ([0, 1024)): a clean order-2 folio and a dirty page; range 1: a clean page
        // and a pinned clean page; range 2: an anonymous page
        let page = |w: &mut World, pfn: u64, order: u8, k: u8, dirty: bool| {
            let id = w.new_obj();
            w.fill_obj(id, pfn, order, k, h);
            if k == kind::CACHE {
                w.add_cache_page(id, h, dirty);
            }
            id
        };
        page(&mut w, 100, 2, kind::CACHE, false);
        page(&mut w, 200, 0, kind::CACHE, true);
        page(&mut w, 1500, 0, kind::CACHE, false);
        let pinned = page(&mut w, 1600, 0, kind::CACHE, false);
        w.objs[pinned as usize].flags |= flag::PINNED;
        page(&mut w, 2100, 0, kind::ANON, false);
        let mut out = vec![9];
        w.clean_cache_by_range(0, 3000, 1024, &mut out);
        assert_eq!(out, vec![4, 1, 0]);
        // a span that starts inside a range: indexed from the aligned start, pages outside
        // the span not counted
        w.clean_cache_by_range(1550, 3000, 1024, &mut out);
        assert_eq!(out, vec![0, 0]);
        // GiB-sized ranges come from the per-GiB counts, kept through dirtying, cleaning,
        // migration across GiBs and freeing: they equal a pass over the records
        const GIB: u64 = 1 << CLEAN_GIB_SHIFT;
        let far = page(&mut w, 3 * GIB + 40, 3, kind::CACHE, false);
        let c = page(&mut w, GIB + 8, 1, kind::CACHE, false);
        let d = page(&mut w, GIB + 16, 0, kind::CACHE, true);
        let scan = |w: &World| {
            let mut v = vec![0u64; 4];
            for o in w.objs.iter().filter(|o| {
                o.holder != NONE
                    && o.kind == kind::CACHE
                    && o.flags & (flag::DIRTY | flag::PINNED) == 0
            }) {
                v[(o.pfn as u64 / GIB) as usize] += 1 << o.order;
            }
            v
        };
        let mut check = |w: &World, want: [u64; 4]| {
            w.clean_cache_by_range(0, 4 * GIB, GIB, &mut out);
            assert_eq!(out, want.to_vec());
        };
        w.objs[pinned as usize].flags &= !flag::PINNED;
        assert_eq!(scan(&w), vec![6, 2, 0, 8]);
        check(&w, [6, 2, 0, 8]);
        w.set_dirty(d, false);
        w.set_dirty(c, true);
        check(&w, [6, 1, 0, 8]);
        assert_eq!(
            w.migrate(3 * GIB + 40, 2 * GIB + 64, 3, far),
            MigrateOutcome::Moved
        );
        check(&w, [6, 1, 8, 0]);
        w.forget(far);
        check(&w, [6, 1, 0, 0]);
        assert_eq!(scan(&w), vec![6, 1, 0, 0]);
    }

    #[test]
    fn split_turns_a_large_folio_into_small_pages_of_its_owner_unless_pinned() {
        let mut w = world();
        let h = w.new_holder(HKind::Process, 0, 0);
        let id = w.new_obj();
        w.fill_obj(id, 4096, 9, kind::THP, h);
        w.attach(id, h, 0);
        w.holders[h as usize].huge = 1;
        let mut out = Vec::new();
        w.objs[id as usize].flags |= flag::PINNED;
        assert!(
            !w.split(4096, 9, id, &mut out),
            "a pinned THP does not split"
        );
        assert!(out.is_empty());
        w.objs[id as usize].flags &= !flag::PINNED;
        assert!(!w.split(4096, 8, id, &mut out), "wrong order: refused");
        assert_eq!(
            (w.st.thp_split_page, w.st.file_folio_split),
            (0, 0),
            "refused splits are not counted"
        );
        assert!(w.split(4096, 9, id, &mut out));
        assert_eq!((w.st.thp_split_page, w.st.file_folio_split), (1, 0));
        assert_eq!(out.len(), 512);
        assert_eq!(out[0], id);
        for (i, &c) in out.iter().enumerate() {
            let o = w.objs[c as usize];
            assert_eq!(
                (o.pfn as u64, o.order, o.kind, o.holder),
                (4096 + i as u64, 0, kind::ANON, h)
            );
        }
        assert_eq!(w.kind_pages[kind::THP as usize], 0);
        assert_eq!(w.kind_pages[kind::ANON as usize], 512);
        let hd = &w.holders[h as usize];
        assert_eq!((hd.huge, hd.small, hd.pages.len()), (0, 512, 512));
        // a dirty page-cache folio splits into dirty small pages of its file
        let f = w.new_holder(HKind::File, 0, 0);
        let c = w.new_obj();
        w.fill_obj(c, 8192, 4, kind::CACHE, f);
        w.add_cache_page(c, f, true);
        let (dirty, cache) = (w.dirty_pages, w.kind_pages[kind::CACHE as usize]);
        out.clear();
        assert!(!w.split(8192, 3, c, &mut out), "wrong order: refused");
        assert!(w.split(8192, 4, c, &mut out));
        assert_eq!((w.st.thp_split_page, w.st.file_folio_split), (1, 1));
        assert_eq!(out.len(), 16);
        assert_eq!(out[0], c, "the head keeps its id");
        for (i, &id) in out.iter().enumerate() {
            let o = w.objs[id as usize];
            assert_eq!(
                (
                    o.pfn as u64,
                    o.order,
                    o.kind,
                    o.holder,
                    o.flags & flag::DIRTY
                ),
                (8192 + i as u64, 0, kind::CACHE, f, flag::DIRTY)
            );
        }
        assert_eq!(w.holders[f as usize].dirty.len(), 16);
        assert_eq!(w.holders[f as usize].huge, 16);
        assert_eq!(
            (w.dirty_pages, w.kind_pages[kind::CACHE as usize]),
            (dirty, cache)
        );
        // a clean one keeps the clean count, and reclaim sees the same pages
        let c2 = w.new_obj();
        w.fill_obj(c2, 8448, 2, kind::CACHE, f);
        w.add_cache_page(c2, f, false);
        let before = w.reclaimable_without_swap();
        out.clear();
        assert!(w.split(8448, 2, c2, &mut out));
        assert_eq!(w.reclaimable_without_swap(), before);
        assert_eq!(w.holders[f as usize].pages.len(), 4);
    }
}
