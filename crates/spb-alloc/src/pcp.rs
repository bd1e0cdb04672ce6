//! Per-CPU page lists (PCP): small caches of free pages per CPU, per order and type.
//!
//! Pages on a per-CPU list are neither free (not in the buddy lists, not in NR_FREE_PAGES, they
//! block merging) nor allocated; the measures never count them as non-movable.
//!
//! Sizing follows mainline: `batch` 63 on zones of 1 GiB or more, `high` auto-tuned between
//! `high_min` (low watermark / CPUs) and `high_max` (managed / 8 / CPUs); order-0 refills grow
//! with consecutive refills (`alloc_factor`, up to 5) and shrink on frees. The free side is
//! mainline's `free_frozen_page_commit` ([`PcpFreeTuning::Mainline`], the default): every
//! allocation from a list halves the free streak (`free_count`); a free adds to it, picks the
//! effective high (`nr_pcp_high`: `high_min` while the zone is below its high watermark, with
//! `pcp->high` lowered by the streak; raised to `free_count + batch` in a free burst) and, when
//! the count reaches it, frees `nr_pcp_free` pages (the streak, between `batch` and
//! `high - batch`) coldest first; and a streak of order-1..3 frees (`free_high`) drains up to
//! `32 x batch` pages at once. [`PcpFreeTuning::Simple`] is the older model (drain down to
//! `high - batch`, no `free_high`), kept to reproduce earlier results. Left out: the lists kept
//! tiny while kswapd balances the zone (`ZONE_RECLAIM_ACTIVE`): the lab's kswapd runs in one
//! turn, between requests.

use crate::geometry::Pfn;
use crate::migratetype::MigrateType;
use crate::page::{PageState, NIL};
use crate::pageblock::Acct;
use crate::zone::Zone;

/// Lists per CPU: 3 types x orders 0..3, plus two for the THP order (movable, other).
pub const NR_PCP_LISTS: usize = 14;
/// Largest order cached below the THP order (PAGE_ALLOC_COSTLY_ORDER).
pub const PCP_MAX_SMALL_ORDER: u8 = 3;
/// CONFIG_PCP_BATCH_SCALE_MAX.
pub const PCP_BATCH_SCALE_MAX: u8 = 5;

/// How frees tune and trim the per-CPU lists (`Config::pcp_free_tuning`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum PcpFreeTuning {
    /// Mainline 6.18 (`free_frozen_page_commit`, `nr_pcp_high`, `nr_pcp_free`): a streak of
    /// order-1..3 frees drains once `free_count >= batch + high_min / 2`.
    #[default]
    Mainline,
    /// The same, with the `free_high` threshold of kernels before 6.18 (`free_count >=
    /// batch`), e.g. the 6.12 kernel of the shared from-boot capture.
    MainlineBatch,
    /// The model before 2026-12-05: trim to `high - batch` when the count reaches `high`
    /// (`high_min` below the high watermark), no `free_high`, the streak halved on refills
    /// only, the two THP lists in the other order. Reproduces earlier results exactly.
    Simple,
}

/// One CPU's lists for one zone.
///
/// # Invariants
/// `count` equals the pages of all entries on the lists; each list's entries are `Pcp` heads
/// linked through `next`/`prev`; `alloc_factor <= PCP_BATCH_SCALE_MAX`; `free_count` is below
/// `batch << PCP_BATCH_SCALE_MAX` plus one block of the largest cached order (it grows by a
/// block per free only while under the cap). Re-checked by `Allocator::check`.
#[derive(Clone, Debug)]
pub struct Pcp {
    pub(crate) head: [u32; NR_PCP_LISTS],
    pub(crate) tail: [u32; NR_PCP_LISTS],
    /// Pages on all lists.
    pub(crate) count: u64,
    pub(crate) high: u64,
    pub(crate) high_min: u64,
    pub(crate) high_max: u64,
    pub(crate) batch: u64,
    pub(crate) alloc_factor: u8,
    pub(crate) free_count: u64,
    /// PCPF_PREV_FREE_HIGH_ORDER: the last free to these lists was of order 1..3.
    pub(crate) prev_free_high_order: bool,
}

impl Default for Pcp {
    fn default() -> Self {
        Pcp {
            head: [NIL; NR_PCP_LISTS],
            tail: [NIL; NR_PCP_LISTS],
            count: 0,
            high: 0,
            high_min: 0,
            high_max: 0,
            batch: 1,
            alloc_factor: 0,
            free_count: 0,
            prev_free_high_order: false,
        }
    }
}

/// zone_batchsize.
pub fn zone_batchsize(managed: u64) -> u64 {
    let b = (managed / 1024).min(256) / 4;
    if b <= 1 {
        return 1;
    }
    let x = b + b / 2;
    (1u64 << (63 - x.leading_zeros())) - 1
}

impl Zone {
    /// Whether `order` is cached on per-CPU lists.
    #[inline(always)]
    pub fn pcp_allowed(&self, order: u8) -> bool {
        order <= PCP_MAX_SMALL_ORDER || order == self.geo.pageblock_order
    }

    /// List index of (order, type).
    #[inline(always)]
    pub fn pindex(&self, order: u8, mt: MigrateType) -> usize {
        if order <= PCP_MAX_SMALL_ORDER {
            order as usize * 3 + mt.idx().min(2)
        } else {
            // NR_LOWORDER_PCP_LISTS + (movable ? 1 : 0), as order_to_pindex (the older model,
            // kept by `Simple`, had the two THP lists the other way round)
            let movable = mt == MigrateType::Movable;
            12 + usize::from(movable != (self.pcp_free_tuning == PcpFreeTuning::Simple))
        }
    }

    /// Order of list `pindex`.
    #[inline(always)]
    pub fn pindex_order(&self, pindex: usize) -> u8 {
        if pindex < 12 {
            (pindex / 3) as u8
        } else {
            self.geo.pageblock_order
        }
    }

    /// Set batch and high limits of every CPU (after watermarks are known).
    pub fn setup_pcp(&mut self) {
        let ncpu = self.pcp.len().max(1) as u64;
        let batch = zone_batchsize(self.managed_pages);
        let high_min = (self.wmark[crate::zone::WMARK_LOW] / ncpu).max(4 * batch);
        let high_max = (self.managed_pages / 8 / ncpu).max(4 * batch).max(high_min);
        for p in self.pcp.iter_mut() {
            p.batch = batch;
            p.high_min = high_min;
            p.high_max = high_max;
            p.high = high_min;
        }
    }

    /// Link a block on CPU `cpu`'s list (head = hot, tail = cold). Does not account.
    #[inline(always)]
    pub fn pcp_push(&mut self, cpu: usize, pfn: Pfn, order: u8, mt: MigrateType, at_tail: bool) {
        let li = self.pindex(order, mt);
        let i = self.idx(pfn) as u32;
        {
            let pg = &mut self.pages[i as usize];
            pg.state = PageState::Pcp;
            pg.order = order;
            pg.mt = mt.idx().min(2) as u8;
            pg.aux = cpu as u8;
        }
        let p = &mut self.pcp[cpu];
        let (h, t) = (p.head[li], p.tail[li]);
        if h == NIL {
            self.pages[i as usize].next = NIL;
            self.pages[i as usize].prev = NIL;
            p.head[li] = i;
            p.tail[li] = i;
        } else if at_tail {
            self.pages[i as usize].prev = t;
            self.pages[i as usize].next = NIL;
            self.pages[t as usize].next = i;
            p.tail[li] = i;
        } else {
            self.pages[i as usize].next = h;
            self.pages[i as usize].prev = NIL;
            self.pages[h as usize].prev = i;
            p.head[li] = i;
        }
        p.count += 1u64 << order;
    }

    /// Unlink page index `i` from CPU `cpu`'s list `li`. Does not account.
    #[inline(always)]
    pub fn pcp_unlink(&mut self, cpu: usize, li: usize, i: u32) {
        let (pv, nx) = (self.pages[i as usize].prev, self.pages[i as usize].next);
        let p = &mut self.pcp[cpu];
        if pv != NIL {
            self.pages[pv as usize].next = nx;
        } else {
            p.head[li] = nx;
        }
        if nx != NIL {
            self.pages[nx as usize].prev = pv;
        } else {
            p.tail[li] = pv;
        }
        p.count -= 1u64 << self.pages[i as usize].order;
        self.pages[i as usize].next = NIL;
        self.pages[i as usize].prev = NIL;
    }

    /// Pop the hottest entry of list `li`.
    #[inline(always)]
    pub fn pcp_pop(&mut self, cpu: usize, li: usize) -> Option<Pfn> {
        let h = self.pcp[cpu].head[li];
        if h == NIL {
            return None;
        }
        self.pcp_unlink(cpu, li, h);
        Some(self.pfn_of(h))
    }

    /// Return up to `count` pages from CPU `cpu`'s lists to the buddy allocator, coldest first,
    /// list by list starting at `start` (free_pcppages_bulk). Returns pages freed.
    pub fn free_pcppages_bulk(&mut self, cpu: usize, count: u64, start: usize) -> u64 {
        let mut freed = 0;
        let mut li = start;
        let mut empty_rounds = 0;
        while freed < count && self.pcp[cpu].count > 0 {
            let t = self.pcp[cpu].tail[li];
            if t == NIL {
                li = (li + 1) % NR_PCP_LISTS;
                empty_rounds += 1;
                if empty_rounds > NR_PCP_LISTS {
                    break;
                }
                continue;
            }
            empty_rounds = 0;
            let order = self.pages[t as usize].order;
            self.pcp_unlink(cpu, li, t);
            let pfn = self.pfn_of(t);
            let n = 1u64 << order;
            self.account(pfn, n, Acct::Pcp, Acct::Free);
            self.free_block(pfn, order);
            freed += n;
        }
        freed
    }

    /// Drain every list of CPU `cpu`.
    pub fn drain_pcp(&mut self, cpu: usize) -> u64 {
        let c = self.pcp[cpu].count;
        self.free_pcppages_bulk(cpu, c, 0)
    }

    /// Drain every CPU.
    pub fn drain_all_pcp(&mut self) -> u64 {
        (0..self.pcp.len()).map(|c| self.drain_pcp(c)).sum()
    }

    /// Refill count for an empty list (nr_pcp_alloc), in entries of `order`.
    pub fn nr_pcp_alloc(&mut self, cpu: usize, order: u8) -> u64 {
        let below_high = self.below_high;
        let simple = self.pcp_free_tuning == PcpFreeTuning::Simple;
        let p = &mut self.pcp[cpu];
        let base = p.batch;
        if simple {
            // (mainline halves the streak on every list allocation: `pcp_alloc_started`)
            p.free_count >>= 1;
        }
        if order > 0 {
            return (base >> order).max(2);
        }
        let mut b = base << p.alloc_factor;
        if p.high_min != p.high_max && !below_high {
            p.high = (p.high + b).min(p.high_max);
        }
        let max_nr = (p.high.saturating_sub(p.count + base)).max(base);
        if b <= max_nr && p.alloc_factor < PCP_BATCH_SCALE_MAX {
            p.alloc_factor += 1;
        }
        b = b.min(max_nr);
        b
    }

    /// An allocation from CPU `cpu`'s lists begins (rmqueue_pcplist): mainline halves the free
    /// streak here, whether or not the list needs a refill.
    #[inline(always)]
    pub fn pcp_alloc_started(&mut self, cpu: usize) {
        if self.pcp_free_tuning != PcpFreeTuning::Simple {
            self.pcp[cpu].free_count >>= 1;
        }
    }

    /// Put a freed block on CPU `cpu`'s list and trim the list if it is over `high`
    /// (free_frozen_page_commit). The caller has checked `pcp_allowed` and that the block is not
    /// isolated, and has accounted it Alloc -> Pcp. Returns pages sent back to the buddy lists.
    #[inline(always)]
    pub fn pcp_free(&mut self, cpu: usize, pfn: Pfn, order: u8, block_mt: MigrateType) -> u64 {
        let mt = if block_mt.is_mergeable() {
            block_mt
        } else {
            MigrateType::Movable
        };
        self.pcp_push(cpu, pfn, order, mt, false);
        let li = self.pindex(order, mt);
        if self.pcp_free_tuning == PcpFreeTuning::Simple {
            return self.pcp_free_simple(cpu, order, li);
        }
        let below_high = self.below_high;
        let half_high_min = self.pcp_free_tuning == PcpFreeTuning::Mainline;
        let p = &mut self.pcp[cpu];
        p.alloc_factor >>= 1;
        let batch = p.batch;
        let mut free_high = false;
        if (1..=PCP_MAX_SMALL_ORDER).contains(&order) {
            // PCPF_FREE_HIGH_BATCH is taken as set (a CPU's share of the last-level cache is
            // more than 3 x batch pages on any current x86 server), hence `count >= batch`
            let threshold = if half_high_min {
                batch + p.high_min / 2
            } else {
                batch
            };
            free_high = p.free_count >= threshold && p.prev_free_high_order && p.count >= batch;
            p.prev_free_high_order = true;
        } else {
            p.prev_free_high_order = false;
        }
        if p.free_count < batch << PCP_BATCH_SCALE_MAX {
            p.free_count += 1u64 << order;
        }
        let high = p.nr_pcp_high(below_high, free_high);
        if p.count < high {
            return 0;
        }
        let to_free = p.nr_pcp_free(high, free_high);
        self.pcp_drain_after_free(cpu, to_free, li)
    }

    /// The trim of a free that reached the effective high: `to_free` pages coldest first from
    /// list `li` on, then ZONE_BELOW_HIGH cleared if the zone is back above its high watermark.
    /// (The kernel's test is `zone_watermark_ok(.., ZONE_MOVABLE, ..)`, which also keeps back the
    /// zone's lowmem reserve and free highatomic pages, so a lower zone such as DMA32 rarely
    /// clears the flag here; the model compares free pages with the watermark alone. Tried with
    /// the full test on 2026-12-05: it moves results, not re-measured yet.)
    #[inline(never)]
    fn pcp_drain_after_free(&mut self, cpu: usize, to_free: u64, li: usize) -> u64 {
        let freed = self.free_pcppages_bulk(cpu, to_free, li);
        if self.below_high && self.free_pages > self.wmark_pages(crate::zone::WMARK_HIGH) {
            self.below_high = false;
        }
        freed
    }

    /// The older free-side model ([`PcpFreeTuning::Simple`]).
    #[inline(never)]
    fn pcp_free_simple(&mut self, cpu: usize, order: u8, li: usize) -> u64 {
        let below_high = self.below_high;
        let p = &mut self.pcp[cpu];
        p.alloc_factor >>= 1;
        p.free_count = (p.free_count + (1u64 << order)).min(p.batch << PCP_BATCH_SCALE_MAX);
        // (p.high.clamp(p.high_min, p.high_max); setup_pcp keeps high_min <= high_max)
        let high = if below_high {
            p.high_min
        } else {
            p.high.max(p.high_min).min(p.high_max)
        };
        if p.count >= high {
            return self.pcp_trim(cpu, high, li);
        }
        0
    }

    /// The end of [`Zone::pcp_free_simple`] when CPU `cpu`'s count reached `high`: trim its
    /// lists.
    fn pcp_trim(&mut self, cpu: usize, high: u64, li: usize) -> u64 {
        let below_high = self.below_high;
        let p = &mut self.pcp[cpu];
        let target = high.saturating_sub(p.batch);
        let to_free = (p.count - target).max(p.batch);
        // a free burst raises high to what the burst needs (not beyond high_max)
        if !below_high && p.high_min != p.high_max && p.high < p.free_count + p.batch {
            p.high = (p.free_count + p.batch).clamp(p.high_min, p.high_max);
        }
        self.free_pcppages_bulk(cpu, to_free, li)
    }
}

impl Pcp {
    /// nr_pcp_high: the count at which this free trims the lists, and `high`'s own tuning
    /// (lowered by a `free_high` streak or while the zone is below its high watermark, raised
    /// to hold a free burst otherwise).
    #[inline(always)]
    fn nr_pcp_high(&mut self, below_high: bool, free_high: bool) -> u64 {
        let (batch, high_min, high_max) = (self.batch, self.high_min, self.high_max);
        let high = self.high.max(high_min).min(high_max);
        self.high = high;
        if high == 0 {
            return 0;
        }
        if free_high {
            self.high = high
                .saturating_sub(batch << PCP_BATCH_SCALE_MAX)
                .max(high_min);
            return 0;
        }
        if high_min == high_max {
            return high;
        }
        if below_high {
            let streak = self.free_count.max(batch);
            self.high = high.saturating_sub(streak).max(high_min);
            return self.count.max(high_min);
        }
        if self.count >= high && self.high < self.free_count + batch {
            self.high = (self.free_count + batch).clamp(high_min, high_max);
        }
        high
    }

    /// nr_pcp_free: pages a trimming free returns to the buddy lists.
    #[inline(always)]
    fn nr_pcp_free(&self, high: u64, free_high: bool) -> u64 {
        let batch = self.batch;
        if free_high {
            return self.count.min(batch << PCP_BATCH_SCALE_MAX);
        }
        if high < batch {
            return 1;
        }
        // clamp(free_count, batch, high - batch), the upper bound winning as in the kernel
        self.free_count.max(batch).min(high - batch)
    }
}

impl Zone {
    /// decay_pcp_high, run once a second by the vmstat worker: `high` decays by 1/8 toward
    /// `high_min` (never below `count - 32 * batch`), and pages above it go back to the buddy
    /// lists, at most `32 * batch` per tick.
    pub fn decay_pcp_high(&mut self) -> u64 {
        let mut freed = 0;
        for cpu in 0..self.pcp.len() {
            let p = &mut self.pcp[cpu];
            if p.high > p.high_min {
                let floor = p.count.saturating_sub(32 * p.batch);
                p.high = (p.high - p.high / 8).max(p.high_min).max(floor);
            }
            if p.count > p.high {
                let n = (p.count - p.high).min(32 * p.batch);
                freed += self.free_pcppages_bulk(cpu, n, 0);
            }
        }
        freed
    }
}

/// Read-only access to the fields (the inspection view; only the allocator changes them).
impl Pcp {
    pub fn head(&self) -> [u32; NR_PCP_LISTS] {
        self.head
    }
    pub fn tail(&self) -> [u32; NR_PCP_LISTS] {
        self.tail
    }
    pub fn count(&self) -> u64 {
        self.count
    }
    pub fn high(&self) -> u64 {
        self.high
    }
    pub fn high_min(&self) -> u64 {
        self.high_min
    }
    pub fn high_max(&self) -> u64 {
        self.high_max
    }
    pub fn batch(&self) -> u64 {
        self.batch
    }
    pub fn alloc_factor(&self) -> u8 {
        self.alloc_factor
    }
    pub fn free_count(&self) -> u64 {
        self.free_count
    }
    pub fn prev_free_high_order(&self) -> bool {
        self.prev_free_high_order
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcp(count: u64, high: u64, free_count: u64) -> Pcp {
        Pcp {
            count,
            high,
            high_min: 300,
            high_max: 3000,
            batch: 63,
            free_count,
            ..Pcp::default()
        }
    }

    #[test]
    fn nr_pcp_high_rules() {
        // a free_high streak: drain now, and high drops by 32 x batch (not below high_min)
        let mut p = pcp(100, 2500, 80);
        assert_eq!(p.nr_pcp_high(false, true), 0);
        assert_eq!(p.high, 2500 - 63 * 32);
        let mut p = pcp(100, 1000, 80);
        p.nr_pcp_high(false, true);
        assert_eq!(p.high, 300);
        // below the high watermark: trim once count reaches high_min, high lowered by the streak
        let mut p = pcp(350, 1000, 80);
        assert_eq!(p.nr_pcp_high(true, false), 350);
        assert_eq!(p.high, 1000 - 80);
        let mut p = pcp(100, 1000, 10);
        assert_eq!(p.nr_pcp_high(true, false), 300, "max(count, high_min)");
        assert_eq!(p.high, 1000 - 63, "lowered by at least batch");
        // a free burst over high raises high to hold it
        let mut p = pcp(1000, 1000, 2000);
        assert_eq!(p.nr_pcp_high(false, false), 1000);
        assert_eq!(p.high, 2063);
        // high is clamped into [high_min, high_max] first
        let mut p = pcp(10, 9000, 0);
        assert_eq!(p.nr_pcp_high(false, false), 3000);
        // no auto-tuning (high_min == high_max): high as is
        let mut p = Pcp {
            high_min: 500,
            high_max: 500,
            ..pcp(600, 500, 4000)
        };
        assert_eq!(p.nr_pcp_high(true, false), 500);
        assert_eq!(p.high, 500);
    }

    #[test]
    fn nr_pcp_free_rules() {
        // a free_high streak frees up to 32 x batch
        assert_eq!(pcp(5000, 1000, 0).nr_pcp_free(0, true), 63 * 32);
        assert_eq!(pcp(70, 1000, 0).nr_pcp_free(0, true), 70);
        // otherwise the streak, at least batch, at most high - batch
        assert_eq!(pcp(1000, 1000, 10).nr_pcp_free(1000, false), 63);
        assert_eq!(pcp(1000, 1000, 500).nr_pcp_free(1000, false), 500);
        assert_eq!(pcp(1000, 1000, 5000).nr_pcp_free(1000, false), 937);
        // high below batch: one page
        assert_eq!(pcp(10, 10, 500).nr_pcp_free(10, false), 1);
        // high - batch below batch: the upper bound wins (the kernel's clamp)
        assert_eq!(pcp(100, 100, 500).nr_pcp_free(100, false), 37);
    }
}
