//! The debug invariant checker: recount everything from the page states and compare with every
//! counter, list and link the allocator maintains.
//!
//! Checked: each pfn of a zone is covered by exactly one block head or is a hole / reserved /
//! uninitialised page; blocks are aligned and inside the zone; every free head is on the list
//! its bucket, order and type name, and every list entry is such a head; per-CPU lists hold
//! exactly the per-CPU heads and their counts match; zone free counters, pageblock counters and
//! SPB counters equal a recount; compaction's skip list names exactly the marked pageblocks;
//! SPB lists hold every SPB once under its current category and fullness; the patch 22 bounds
//! hold; free + per-CPU + held + allocated = managed; the stall causes add up to the
//! `allocstall_*` counters.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use crate::migratetype::{MigrateType, MIGRATE_TYPES};
use crate::page::{PageState, NIL};
use crate::pageblock::{alloc_class, PageblockMeta};
use crate::vmstat::Vm;
use crate::zone::Zone;
use crate::Allocator;

/// A violated invariant, with a description naming the zone and place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvariantViolation(pub String);

impl core::fmt::Display for InvariantViolation {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! ensure {
    ($c:expr, $($fmt:tt)*) => { if !$c { return Err(InvariantViolation(format!($($fmt)*))); } };
}

impl Allocator {
    /// Check every invariant; the first violation found is returned.
    pub fn check(&self) -> Result<(), InvariantViolation> {
        for z in &self.zones {
            check_zone(z)?;
        }
        self.policy.check(&self.zones)?;
        let stalls = self.work_snap().stalls();
        ensure!(
            self.stall_causes.total() == stalls,
            "stall causes {:?} add up to {} but the allocstall counters to {}",
            self.stall_causes,
            self.stall_causes.total(),
            stalls
        );
        let (runs, success) = self
            .compactions
            .iter()
            .fold((0, 0), |(r, s), c| (r + c.stalls, s + c.success));
        ensure!(
            runs == self.vm.get(Vm::CompactStall) && success == self.vm.get(Vm::CompactSuccess),
            "direct compactions by order add up to {} stalls and {} successes, the counters to {} and {}",
            runs,
            success,
            self.vm.get(Vm::CompactStall),
            self.vm.get(Vm::CompactSuccess)
        );
        Ok(())
    }
}

fn check_zone(z: &Zone) -> Result<(), InvariantViolation> {
    let name = z.kind.name();
    let pbp = z.geo.pageblock_pages();
    // 1. walk heads, recount pageblock counters
    let mut pbs: Vec<PageblockMeta> = z
        .pageblocks
        .iter()
        .map(|p| PageblockMeta {
            mt: p.mt,
            flags: p.flags,
            owner: p.owner,
            ..Default::default()
        })
        .collect();
    // pages outside the span in clipped pageblocks
    let first_pb_start = z.pb_base << z.geo.pageblock_order;
    for p in first_pb_start..z.span.start {
        pbs[0].absent += 1;
        let _ = p;
    }
    let last = pbs.len() - 1;
    let last_end = (z.pb_base + pbs.len() as u64) << z.geo.pageblock_order;
    pbs[last].absent += (last_end - z.span.end) as u16;
    let mut free_heads = 0u64;
    let mut nr_free = vec![[0u64; MIGRATE_TYPES]; z.geo.nr_orders()];
    let mut free_pages = 0u64;
    let mut managed = 0u64;
    let mut uninit = vec![0u64; z.spbs.len()];
    let mut pcp_heads = 0u64;
    let mut p = z.span.start;
    while p < z.span.end {
        let m = *z.page(p);
        match m.state {
            PageState::Free | PageState::Alloc | PageState::Pcp | PageState::Isolated => {
                let n = 1u64 << m.order;
                ensure!(
                    p & (n - 1) == 0,
                    "{}: block at {:#x} of order {} is not aligned",
                    name,
                    p,
                    m.order
                );
                ensure!(
                    p + n <= z.span.end,
                    "{}: block at {:#x} of order {} runs past the zone end",
                    name,
                    p,
                    m.order
                );
                for q in p + 1..p + n {
                    ensure!(
                        z.page(q).state == PageState::Tail,
                        "{}: page {:#x} inside the block at {:#x} is {:?}, expected Tail",
                        name,
                        q,
                        p,
                        z.page(q).state
                    );
                }
                managed += n;
                let mut q = p;
                while q < p + n {
                    let cnt = ((q | (pbp - 1)) + 1).min(p + n) - q;
                    let pb = &mut pbs[z.pb_idx(q)];
                    match m.state {
                        PageState::Free => pb.free += cnt as u16,
                        PageState::Pcp | PageState::Isolated => pb.pcp += cnt as u16,
                        _ => {
                            pb.alloc[alloc_class(
                                MigrateType::from_u8(m.mt).unwrap_or(MigrateType::Movable),
                            )] += cnt as u16
                        }
                    }
                    q += cnt;
                }
                if m.state == PageState::Free {
                    ensure!(
                        m.order <= z.geo.max_order,
                        "{}: free block at {:#x} has order {}",
                        name,
                        p,
                        m.order
                    );
                    free_heads += 1;
                    nr_free[m.order as usize][m.mt as usize] += 1;
                    if m.mt != MigrateType::Isolate as u8 {
                        free_pages += n;
                    }
                    let lt = z.pb(p).list_type();
                    ensure!(
                        m.mt == lt as u8 || m.order >= z.geo.pageblock_order,
                        "{}: free block at {:#x} is on the {:?} list but its pageblock lists {:?}",
                        name,
                        p,
                        MigrateType::from_u8(m.mt),
                        lt
                    );
                }
                if m.state == PageState::Pcp {
                    pcp_heads += n;
                }
                p += n;
            }
            PageState::Tail => {
                return Err(InvariantViolation(format!(
                    "{}: page {:#x} is a Tail with no head covering it",
                    name, p
                )))
            }
            PageState::Reserved => {
                pbs[z.pb_idx(p)].reserved += 1;
                p += 1;
            }
            PageState::Hole => {
                pbs[z.pb_idx(p)].absent += 1;
                p += 1;
            }
            PageState::Uninit => {
                pbs[z.pb_idx(p)].absent += 1;
                uninit[z.spb_idx(p)] += 1;
                p += 1;
            }
        }
    }
    ensure!(
        managed == z.managed_pages,
        "{}: free + per-CPU + held + allocated = {} pages, managed = {}",
        name,
        managed,
        z.managed_pages
    );
    for (i, (a, b)) in pbs.iter().zip(z.pageblocks.iter()).enumerate() {
        ensure!(
            z.pb_has_free(i) == (a.free > 0),
            "{}: pageblock {} (pfn {:#x}) has {} free pages but its has-free bit is {}",
            name,
            i,
            (z.pb_base + i as u64) << z.geo.pageblock_order,
            a.free,
            z.pb_has_free(i)
        );
        ensure!(
            a == b,
            "{}: pageblock {} (pfn {:#x}) counters {:?} differ from a recount {:?}",
            name,
            i,
            (z.pb_base + i as u64) << z.geo.pageblock_order,
            b,
            a
        );
    }
    // the owned pageblocks with a free page, per owner and label
    let mut owned = vec![[0u32; MIGRATE_TYPES]; z.owned_free.len()];
    for (i, pb) in z.pageblocks.iter().enumerate() {
        if pb.owner != 0 && z.pb_has_free(i) {
            let o = pb.owner as usize - 1;
            ensure!(
                o < owned.len(),
                "{}: pageblock {} is owned by CPU {} with a free page, beyond the owned counts ({} CPUs)",
                name,
                i,
                o,
                owned.len()
            );
            owned[o][pb.mt as usize] += 1;
        }
    }
    ensure!(
        owned == z.owned_free,
        "{}: owned pageblocks with free pages per CPU and label {:?} differ from a recount {:?}",
        name,
        z.owned_free,
        owned
    );
    // compaction's skip marks: the list names every marked pageblock once
    let pbo = z.geo.pageblock_order;
    let mut listed = vec![false; z.pageblocks.len()];
    for &b in &z.compact.skipped {
        let i = z.pb_idx(b);
        ensure!(
            b == (b >> pbo) << pbo && i < listed.len() && !listed[i],
            "{}: skip list entry {:#x} is not a pageblock start of the zone, or is listed twice",
            name,
            b
        );
        listed[i] = true;
    }
    for (i, pb) in z.pageblocks.iter().enumerate() {
        let bit = pb.flags & crate::pageblock::pbflag::SKIP != 0;
        ensure!(
            listed[i] == bit,
            "{}: pageblock {} (pfn {:#x}) skip bit {} but skip list {}",
            name,
            i,
            (z.pb_base + i as u64) << pbo,
            bit,
            listed[i]
        );
    }
    ensure!(
        free_pages == z.free_pages,
        "{}: NR_FREE_PAGES {} differs from a recount {}",
        name,
        z.free_pages,
        free_pages
    );
    for (o, row) in nr_free.iter().enumerate().take(z.geo.nr_orders()) {
        for (t, &found) in row.iter().enumerate().take(MIGRATE_TYPES) {
            ensure!(
                found == z.nr_free[o][t],
                "{}: nr_free[{}][{}] = {} but {} blocks found",
                name,
                o,
                t,
                z.nr_free[o][t],
                found
            );
        }
    }
    // 2. free lists: every entry a matching head in the right bucket
    let mut listed = 0u64;
    for (b, area) in z.areas.iter().enumerate() {
        for o in 0..z.geo.nr_orders() {
            for t in 0..MIGRATE_TYPES {
                let mut i = area.head[o][t];
                let mut prev = NIL;
                let mut n = 0u64;
                while i != NIL {
                    let m = &z.pages[i as usize];
                    let pfn = z.pfn_of(i);
                    ensure!(
                        m.state == PageState::Free && m.order as usize == o && m.mt as usize == t,
                        "{}: list ({}, {}, {}) holds {:#x} which is {:?} order {} type {}",
                        name,
                        b,
                        o,
                        t,
                        pfn,
                        m.state,
                        m.order,
                        m.mt
                    );
                    ensure!(
                        z.bucket_of(pfn) == b,
                        "{}: {:#x} is on the lists of bucket {} but belongs to {}",
                        name,
                        pfn,
                        b,
                        z.bucket_of(pfn)
                    );
                    ensure!(m.prev == prev, "{}: broken prev link at {:#x}", name, pfn);
                    prev = i;
                    i = m.next;
                    n += 1;
                    ensure!(
                        n <= z.pages.len() as u64,
                        "{}: cycle in list ({}, {}, {})",
                        name,
                        b,
                        o,
                        t
                    );
                }
                ensure!(
                    area.tail[o][t] == prev,
                    "{}: tail of list ({}, {}, {}) is wrong",
                    name,
                    b,
                    o,
                    t
                );
                ensure!(
                    (area.mask[t] & (1 << o) != 0) == (n > 0),
                    "{}: mask bit of list ({}, {}, {}) is wrong",
                    name,
                    b,
                    o,
                    t
                );
                listed += n;
            }
        }
    }
    ensure!(
        listed == free_heads,
        "{}: {} free heads but {} list entries",
        name,
        free_heads,
        listed
    );
    // 3. per-CPU lists
    let mut pcp_total = 0;
    for (c, pcp) in z.pcp.iter().enumerate() {
        let mut cnt = 0u64;
        for li in 0..crate::pcp::NR_PCP_LISTS {
            let mut i = pcp.head[li];
            let mut prev = NIL;
            while i != NIL {
                let m = &z.pages[i as usize];
                ensure!(
                    m.state == PageState::Pcp && m.cpu() == c,
                    "{}: cpu {} list {} holds {:#x} in state {:?}",
                    name,
                    c,
                    li,
                    z.pfn_of(i),
                    m.state
                );
                ensure!(
                    z.pindex(
                        m.order,
                        MigrateType::from_u8(m.mt).unwrap_or(MigrateType::Movable)
                    ) == li,
                    "{}: cpu {} list {} holds an entry of order {} type {}",
                    name,
                    c,
                    li,
                    m.order,
                    m.mt
                );
                ensure!(m.prev == prev, "{}: broken pcp prev link", name);
                cnt += 1u64 << m.order;
                prev = i;
                i = m.next;
            }
            ensure!(pcp.tail[li] == prev, "{}: pcp tail wrong", name);
        }
        // the free streak grows by one block per free only while below 32 x batch
        let streak_cap =
            (pcp.batch << crate::pcp::PCP_BATCH_SCALE_MAX) + (1u64 << z.geo.pageblock_order);
        ensure!(
            pcp.free_count < streak_cap && pcp.alloc_factor <= crate::pcp::PCP_BATCH_SCALE_MAX,
            "{}: cpu {} free streak {} (cap {}) or alloc factor {} out of range",
            name,
            c,
            pcp.free_count,
            streak_cap,
            pcp.alloc_factor
        );
        ensure!(
            cnt == pcp.count,
            "{}: cpu {} count {} but {} pages listed",
            name,
            c,
            pcp.count,
            cnt
        );
        pcp_total += cnt;
    }
    ensure!(
        pcp_total == pcp_heads,
        "{}: {} per-CPU pages listed, {} per-CPU heads",
        name,
        pcp_total,
        pcp_heads
    );
    // 4. SPB aggregates and lists
    ensure!(
        z.spb_uninit.len() == uninit.len(),
        "{}: {} per-SPB uninitialised counts for {} SPBs",
        name,
        z.spb_uninit.len(),
        uninit.len()
    );
    for (i, (&have, &want)) in z.spb_uninit.iter().zip(&uninit).enumerate() {
        ensure!(
            have == want,
            "{}: SPB {} counts {} uninitialised pages, a recount {}",
            name,
            i,
            have,
            want
        );
    }
    for i in 0..z.spbs.len() {
        let agg = z.spb_aggregate(i);
        let (a, b) = (&agg, &z.spbs[i]);
        ensure!(
            a.total_pageblocks == b.total_pageblocks
                && a.pb_free == b.pb_free
                && a.pb_unmovable == b.pb_unmovable
                && a.pb_reclaimable == b.pb_reclaimable
                && a.pb_movable == b.pb_movable
                && a.pb_reserved == b.pb_reserved,
            "{}: SPB {} pageblock counts {:?} differ from a recount {:?}",
            name,
            i,
            (
                b.pb_free,
                b.pb_unmovable,
                b.pb_reclaimable,
                b.pb_movable,
                b.pb_reserved
            ),
            (
                a.pb_free,
                a.pb_unmovable,
                a.pb_reclaimable,
                a.pb_movable,
                a.pb_reserved
            )
        );
        ensure!(
            a.free_pages == b.free_pages
                && a.pcp_pages == b.pcp_pages
                && a.alloc_pages == b.alloc_pages
                && a.reserved_pages == b.reserved_pages
                && a.absent_pages == b.absent_pages,
            "{}: SPB {} page counts differ from a recount",
            name,
            i
        );
        for v in [b.pb_free, b.pb_unmovable, b.pb_reclaimable, b.pb_movable] {
            ensure!(
                v <= b.total_pageblocks,
                "{}: SPB {} has a pageblock count above its {} pageblocks",
                name,
                i,
                b.total_pageblocks
            );
        }
        ensure!(
            b.category == b.compute_category() && b.fullness == b.compute_fullness(),
            "{}: SPB {} is filed as {:?}/{} but its counters say {:?}/{}",
            name,
            i,
            b.category,
            b.fullness,
            b.compute_category(),
            b.compute_fullness()
        );
    }
    let mut seen = vec![false; z.spbs.len()];
    for c in 0..crate::superpageblock::NR_CATEGORIES {
        for f in 0..crate::superpageblock::NR_FULLNESS {
            let mut i = z.spb_lists.heads[c][f];
            let mut n = 0;
            while i != NIL {
                ensure!(!seen[i as usize], "{}: SPB {} is on two lists", name, i);
                seen[i as usize] = true;
                let s = &z.spbs[i as usize];
                ensure!(
                    s.category as usize == c && s.fullness as usize == f,
                    "{}: SPB {} on list ({}, {}) but filed as {:?}/{}",
                    name,
                    i,
                    c,
                    f,
                    s.category,
                    s.fullness
                );
                n += 1;
                i = s.list_next;
            }
            ensure!(
                n == z.spb_lists.counts[c][f],
                "{}: SPB list ({}, {}) count {} but {} linked",
                name,
                c,
                f,
                z.spb_lists.counts[c][f],
                n
            );
        }
    }
    ensure!(seen.iter().all(|s| *s), "{}: an SPB is on no list", name);
    Ok(())
}
