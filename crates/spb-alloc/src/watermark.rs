//! Watermarks (min/low/high/promo), lowmem_reserve and the watermark test.
//!
//! Defaults follow mainline: `min_free_kbytes = clamp(sqrt(16 * lowmem_kbytes), 128, 262144)`,
//! raised, when THP is enabled, to khugepaged's recommendation (11 pageblocks per populated
//! zone up to Normal, capped at 5 % of lowmem); each lowmem zone gets its managed share of
//! `min`; `gap = max(min / 4, managed * watermark_scale_factor / 10000)`.

use crate::gfp::AllocFlags;
use crate::layout::ZoneKind;
use crate::migratetype::MigrateType;
use crate::zone::Zone;

/// Watermark tunables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatermarkConfig {
    /// vm.min_free_kbytes; `None` = computed like the kernel.
    pub min_free_kbytes: Option<u64>,
    /// vm.watermark_scale_factor (default 10 = 0.1 %).
    pub watermark_scale_factor: u64,
    /// vm.watermark_boost_factor (default 15000 = 150 % of high).
    pub watermark_boost_factor: u64,
    /// THP enabled: khugepaged raises min_free_kbytes.
    pub thp_raises_min_free: bool,
}

impl Default for WatermarkConfig {
    fn default() -> Self {
        WatermarkConfig {
            min_free_kbytes: None,
            watermark_scale_factor: 10,
            watermark_boost_factor: 15000,
            thp_raises_min_free: true,
        }
    }
}

fn isqrt(n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    // Newton's method on integers (no floating point in no_std core).
    let mut x = n;
    let mut y = x.div_ceil(2);
    while y < x {
        x = y;
        y = (x + n / x) / 2;
    }
    x
}

/// Compute min_free_kbytes as the kernel does for these zones.
pub fn default_min_free_kbytes(zones: &[Zone], cfg: &WatermarkConfig) -> u64 {
    let page_kb = zones
        .first()
        .map(|z| z.geo.page_size() / 1024)
        .unwrap_or(4)
        .max(1);
    let lowmem: u64 = zones
        .iter()
        .filter(|z| z.kind != ZoneKind::Movable)
        .map(|z| z.managed_pages)
        .sum();
    let lowmem_kb = lowmem * page_kb;
    let mut mfk = isqrt(lowmem_kb * 16).clamp(128, 262144);
    if cfg.thp_raises_min_free {
        let nr_zones = zones
            .iter()
            .filter(|z| z.kind <= ZoneKind::Normal && z.managed_pages > 0)
            .count() as u64;
        let pbp = zones
            .first()
            .map(|z| z.geo.pageblock_pages())
            .unwrap_or(512);
        let mut rec = pbp * nr_zones * (2 + 3 * 3);
        rec = rec.min(lowmem / 20);
        let rec_kb = rec * page_kb;
        if rec_kb > mfk {
            mfk = rec_kb;
        }
    }
    mfk
}

/// Set watermarks and lowmem_reserve of every zone.
pub fn setup_watermarks(zones: &mut [Zone], cfg: &WatermarkConfig) {
    let page_kb = zones
        .first()
        .map(|z| z.geo.page_size() / 1024)
        .unwrap_or(4)
        .max(1);
    let mfk = cfg
        .min_free_kbytes
        .unwrap_or_else(|| default_min_free_kbytes(zones, cfg));
    let pages_min = mfk / page_kb;
    let lowmem: u64 = zones
        .iter()
        .filter(|z| z.kind != ZoneKind::Movable)
        .map(|z| z.managed_pages)
        .sum::<u64>()
        .max(1);
    for z in zones.iter_mut() {
        let managed = z.managed_pages;
        let min = if z.kind == ZoneKind::Movable {
            (managed / 1024).clamp(32, 128)
        } else {
            (pages_min as u128 * managed as u128 / lowmem as u128) as u64
        };
        let gap = (min / 4).max(managed * cfg.watermark_scale_factor / 10000);
        z.wmark = [min, min + gap, min + 2 * gap, min + 3 * gap];
        z.watermark_boost = 0;
    }
    // lowmem_reserve: zone i keeps back, from requests whose highest zone is j > i, the managed
    // pages of zones i+1..=j divided by zone i's ratio.
    let n = zones.len();
    for i in 0..n {
        let ratio = zones[i].kind.lowmem_reserve_ratio();
        let mut res = [0u64; 4];
        let mut sum = 0;
        for zj in &zones[i + 1..n] {
            sum += zj.managed_pages;
            res[zj.kind as usize] = sum.checked_div(ratio).unwrap_or(0);
        }
        // kinds above the last present zone inherit the top value
        let mut last = 0;
        let ki = zones[i].kind as usize;
        for (k, r) in res.iter_mut().enumerate() {
            if k > ki {
                if *r == 0 {
                    *r = last;
                }
                last = *r;
            }
        }
        zones[i].lowmem_reserve = res;
    }
    for z in zones.iter_mut() {
        z.setup_pcp();
    }
}

impl Zone {
    /// Watermark `w` including the current boost.
    #[inline]
    pub fn wmark_pages(&self, w: usize) -> u64 {
        self.wmark[w] + self.watermark_boost
    }

    /// __zone_watermark_ok.
    pub fn watermark_ok(
        &self,
        order: u8,
        mark: u64,
        highest_zoneidx: usize,
        flags: AllocFlags,
        free_pages: u64,
    ) -> bool {
        let mut free = free_pages as i64 - ((1i64 << order) - 1);
        if !flags.intersects(AllocFlags::RESERVES) {
            free -= self.nr_free_highatomic as i64;
        }
        let mut min = mark as i64;
        if flags.contains(AllocFlags::MIN_RESERVE) {
            min -= min / 2;
            if flags.contains(AllocFlags::NON_BLOCK) {
                min -= min / 4;
            }
        }
        if flags.contains(AllocFlags::OOM) {
            min -= min / 2;
        }
        if free <= min + self.lowmem_reserve[highest_zoneidx.min(3)] as i64 {
            return false;
        }
        if order == 0 {
            return true;
        }
        for o in order as usize..self.geo.nr_orders() {
            for mt in [
                MigrateType::Unmovable,
                MigrateType::Movable,
                MigrateType::Reclaimable,
            ] {
                if self.nr_free[o][mt.idx()] > 0 {
                    return true;
                }
            }
            if flags.intersects(AllocFlags::HIGHATOMIC.with(AllocFlags::OOM))
                && self.nr_free[o][MigrateType::HighAtomic.idx()] > 0
            {
                return true;
            }
        }
        false
    }

    /// zone_watermark_fast: the order-0 shortcut, and __GFP_HIGH order-0 requests at MIN
    /// ignore the boost.
    pub fn watermark_fast(
        &self,
        order: u8,
        mark: u64,
        highest_zoneidx: usize,
        flags: AllocFlags,
        gfp_high: bool,
    ) -> bool {
        let free = self.free_pages;
        if order == 0 {
            let mut fast_free = free as i64;
            if !flags.intersects(AllocFlags::RESERVES) {
                fast_free -= self.nr_free_highatomic as i64;
            }
            if fast_free > mark as i64 + self.lowmem_reserve[highest_zoneidx.min(3)] as i64 {
                return true;
            }
        }
        if self.watermark_ok(order, mark, highest_zoneidx, flags, free) {
            return true;
        }
        if order == 0
            && gfp_high
            && self.watermark_boost > 0
            && flags.wmark() == crate::zone::WMARK_MIN
        {
            let m = mark - self.watermark_boost;
            return self.watermark_ok(order, m, highest_zoneidx, flags, free);
        }
        false
    }
}
