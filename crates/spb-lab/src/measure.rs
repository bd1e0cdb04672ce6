//! The measures, computed from the allocator's SPB and pageblock counters (shared by the lab and
//! the trace replayer). The definitions are the ones of `docs/metrics.md` ("Definitions", in
//! this repository), written there once; this module computes them.
//!
//! An SPB belongs to one zone ("a 1 GiB-aligned group of pageblocks inside a zone"): a 1 GiB
//! region shared by two zones is one SPB of each, both with holes. "All zones" values are sums
//! of the per-zone values (a 1 GiB page never crosses a zone).

use spb_alloc::layout::ZoneKind;
use spb_alloc::migratetype::MigrateType;
use spb_alloc::zone::{Zone, WMARK_MIN};
use spb_alloc::{Allocator, Env, FreedBlock, Gfp};

use crate::metrics::{BlockContent, SpbCensus, SpbMap, SpbRow};

/// Counts of one zone (or a sum of zones).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ZoneCensus {
    pub spbs: u64,
    pub tainted: u64,
    pub pinned: u64,
    pub holed: u64,
    /// Pinned or with holes.
    pub pinned_or_hole: u64,
    pub lost: u64,
    pub clean: u64,
    pub empty: u64,
    pub non_movable_pages: u64,
    pub reserved_pages: u64,
    pub movable_pages: u64,
    pub lost_floor: u64,
    pub tainted_floor: u64,
}

impl ZoneCensus {
    fn add(&mut self, o: &ZoneCensus) {
        self.spbs += o.spbs;
        self.tainted += o.tainted;
        self.pinned += o.pinned;
        self.holed += o.holed;
        self.pinned_or_hole += o.pinned_or_hole;
        self.lost += o.lost;
        self.clean += o.clean;
        self.empty += o.empty;
        self.non_movable_pages += o.non_movable_pages;
        self.reserved_pages += o.reserved_pages;
        self.movable_pages += o.movable_pages;
        self.lost_floor += o.lost_floor;
        self.tainted_floor += o.tainted_floor;
    }
    /// As the JSON census (the peak is filled in by the caller).
    pub fn to_metrics(&self, peak: u64) -> SpbCensus {
        SpbCensus {
            spb_total: self.spbs,
            spb_tainted: self.tainted,
            spb_tainted_peak: peak.max(self.tainted),
            spb_pinned: self.pinned,
            spb_lost: self.lost,
            lost_floor: self.lost_floor,
            tainted_floor: self.tainted_floor,
            spb_clean: self.clean,
            spb_empty: self.empty,
        }
    }
}

/// Census of one zone.
pub fn zone_census(z: &Zone) -> ZoneCensus {
    let sp = z.geo().spb_pages();
    let mut c = ZoneCensus {
        spbs: z.spbs().len() as u64,
        ..Default::default()
    };
    for s in z.spbs() {
        let t = s.is_tainted();
        let p = s.is_pinned();
        let h = s.has_hole();
        c.tainted += t as u64;
        c.pinned += p as u64;
        c.holed += h as u64;
        c.pinned_or_hole += (p || h) as u64;
        c.non_movable_pages += s.non_movable_pages();
        c.reserved_pages += s.reserved_pages();
        c.movable_pages += s.movable_pages();
        if t || p || h {
            c.lost += 1;
        } else if s.movable_pages() == 0 {
            c.empty += 1;
        } else {
            c.clean += 1;
        }
    }
    c.tainted_floor = c.non_movable_pages.div_ceil(sp);
    c.lost_floor = c
        .pinned_or_hole
        .max((c.non_movable_pages + c.reserved_pages).div_ceil(sp));
    c
}

/// Census of the Normal zone (zeros when there is none) and of all zones.
pub fn census(a: &Allocator) -> (ZoneCensus, ZoneCensus) {
    let mut all = ZoneCensus::default();
    let mut normal = ZoneCensus::default();
    for z in a.zones() {
        let c = zone_census(z);
        if z.kind() == ZoneKind::Normal {
            normal = c;
        }
        all.add(&c);
    }
    (normal, all)
}

/// Per-zone inputs of the 1 GiB limit that the allocator does not know.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LimitInputs {
    /// Non-movable pages a full shrink would free (reclaimable slab pages whose every object
    /// is unused and cached).
    pub shrinkable_pages: u64,
    /// Clean page cache pages (dropped rather than migrated).
    pub clean_cache_pages: u64,
}

/// Terms of the limit formula for one zone: (SPBs, SPBs pinned or with holes, pages that
/// must stay allocated).
fn limit_terms(z: &Zone, inp: LimitInputs) -> (u64, u64, u64) {
    let c = zone_census(z);
    let nonmov_stuck = c.non_movable_pages.saturating_sub(inp.shrinkable_pages);
    let movable_stuck = c.movable_pages.saturating_sub(inp.clean_cache_pages);
    (
        c.spbs,
        c.pinned_or_hole,
        nonmov_stuck + c.reserved_pages + movable_stuck + z.wmark()[WMARK_MIN],
    )
}

fn limit_of(spbs: u64, pinned_or_hole: u64, must: u64, spb_pages: u64) -> u64 {
    spbs.saturating_sub(pinned_or_hole.max(must.div_ceil(spb_pages)))
}

/// The 1 GiB limit of one zone, counting the zone's own pages.
pub fn zone_limit(z: &Zone, inp: LimitInputs) -> u64 {
    let (n, p, m) = limit_terms(z, inp);
    limit_of(n, p, m, z.geo().spb_pages())
}

/// The 1 GiB limit of the Normal zone (its own pages) and of all zones together: the formula
/// applied to the sums over all zones, since migration moves movable pages across zones (a
/// 1 GiB page in Normal can be made by moving Normal's movable pages into DMA32). The probe
/// can therefore beat a single zone's limit, never the all-zones limit.
pub fn limits(a: &Allocator, inputs: &[LimitInputs]) -> (u64, u64) {
    let (mut n, mut p, mut m) = (0, 0, 0);
    let mut normal = 0;
    for (i, z) in a.zones().iter().enumerate() {
        let inp = inputs.get(i).copied().unwrap_or_default();
        let t = limit_terms(z, inp);
        if z.kind() == ZoneKind::Normal {
            normal = limit_of(t.0, t.1, t.2, z.geo().spb_pages());
        }
        n += t.0;
        p += t.1;
        m += t.2;
    }
    (normal, limit_of(n, p, m, a.geo().spb_pages()))
}

/// The 1 GiB capacity bound over all zones (docs/metrics.md): the SPBs that could become
/// 1 GiB pages (neither pinned nor with holes), minus the SPBs needed for the pages that must
/// stay (the limit's count) beyond what the pinned-or-holed SPBs can hold (their usable and
/// reserved pages). The limit's `max` counts a pinned or holed SPB as a whole SPB of room for
/// those pages; most are partial (DMA, DMA32 below the PCI hole, the memmap's SPB), so the
/// probe can stay below `limit - 1` while it reaches this bound. Diagnostic only: the targets
/// keep the limit as defined.
pub fn capacity_bound(a: &Allocator, inputs: &[LimitInputs]) -> u64 {
    let sp = a.geo().spb_pages();
    let (mut candidates, mut room, mut must) = (0u64, 0u64, 0u64);
    for (i, z) in a.zones().iter().enumerate() {
        must += limit_terms(z, inputs.get(i).copied().unwrap_or_default()).2;
        for s in z.spbs() {
            if s.is_pinned() || s.has_hole() {
                room += s.usable_pages() + s.reserved_pages();
            } else {
                candidates += 1;
            }
        }
    }
    candidates.saturating_sub(must.saturating_sub(room).div_ceil(sp))
}

/// What a pageblock holds.
pub fn block_content(z: &Zone, pfn: u64) -> BlockContent {
    if !z.contains(pfn) {
        return BlockContent::Hole;
    }
    let pbp = z.geo().pageblock_pages();
    let pb = z.pb(pfn);
    if pb.absent() as u64 >= pbp {
        return BlockContent::Hole;
    }
    if pb.reserved() > 0 {
        return BlockContent::Reserved;
    }
    if pb.is_isolated() {
        return BlockContent::Isolated;
    }
    if pb.alloc()[0] > 0 {
        return BlockContent::Unmovable;
    }
    if pb.alloc()[3] > 0 || (pb.migratetype() == MigrateType::HighAtomic && pb.allocated() > 0) {
        return BlockContent::HighAtomic;
    }
    if pb.alloc()[2] > 0 {
        return BlockContent::Reclaimable;
    }
    if pb.alloc()[1] > 0 {
        return BlockContent::Movable;
    }
    if pb.absent() > 0 {
        return BlockContent::Hole;
    }
    BlockContent::Free
}

/// The SPB map at time `t` (seconds): one row per SPB of every zone.
pub fn spb_map(a: &Allocator, t: f64) -> SpbMap {
    let mut rows = Vec::new();
    for z in a.zones() {
        let pbp = z.geo().pageblock_pages();
        for s in z.spbs() {
            let mut cat = String::from(if s.contig_allocated() {
                "isolated"
            } else if s.is_tainted() {
                "tainted"
            } else if s.movable_pages() == 0 {
                "empty"
            } else {
                "clean"
            });
            if s.is_pinned() {
                cat.push_str("+pinned");
            }
            if s.has_hole() {
                cat.push_str("+hole");
            }
            let blocks = (0..z.geo().pageblocks_per_spb())
                .map(|k| block_content(z, s.start_pfn() + k * pbp))
                .collect();
            rows.push(SpbRow {
                zone: z.kind().name().to_string(),
                start_pfn: s.start_pfn(),
                category: cat,
                blocks,
            });
        }
    }
    SpbMap { t, rows }
}

/// The embedder's side of the 1 GiB probe.
pub trait ProbeEnv: Env {
    /// Drop all clean page cache and shrink all reclaimable slab (no writeback, no swap, no
    /// kills); push every freed block.
    fn probe_reclaim(&mut self, out: &mut Vec<FreedBlock>);
    /// A cookie for the probe's allocations.
    fn probe_cookie(&mut self) -> u32 {
        u32::MAX
    }
}

/// Outcome of the probe.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProbeResult {
    pub allocatable: u64,
    pub normal_allocatable: u64,
    pub pages_migrated: u64,
    pub reclaimed_pages: u64,
    /// Head pfns of the 1 GiB pages obtained (still allocated).
    pub pages: Vec<u64>,
    /// Why the request that ended the probe failed: what happened to its candidate ranges.
    pub stop: Option<spb_alloc::ContigStats>,
}

/// The candidate ranges of the request that ended the probe, by what stopped each (the JSON of
/// `extra.probe_stop`, docs/metrics.md).
pub fn probe_stop_json(st: &spb_alloc::ContigStats) -> serde_json::Value {
    serde_json::json!({
        "tried": st.ranges_tried,
        "reserved": st.reserved,
        "unmovable": st.unmovable,
        "busy": st.busy,
        "migration_failed": st.migrate_failed,
        "no_room": st.no_room,
        "pinned": st.pinned,
    })
}

/// gfp of the probe's requests (alloc_gigantic_folio's mask).
pub const GFP_PROBE: Gfp = Gfp::HIGHUSER
    .with(Gfp::COMP)
    .with(Gfp::RETRY_MAYFAIL)
    .with(Gfp::NOWARN)
    .with(Gfp::THISNODE);

/// The end-of-run 1 GiB probe ("echo N > nr_hugepages" with N larger than possible): allocate
/// SPB-order blocks until a request fails; then reclaim (clean page cache, reclaimable slab)
/// once and continue until a request fails again. The pages obtained stay allocated.
pub fn probe(a: &mut Allocator, env: &mut dyn ProbeEnv) -> ProbeResult {
    let order = a.geo().spb_order;
    let before = a.pages_migrated();
    let mut r = ProbeResult::default();
    let mut reclaimed = false;
    loop {
        let cookie = env.probe_cookie();
        let got = a.alloc_contig(order, GFP_PROBE, cookie, env);
        // the probe is nobody's request: its direct work is `probe_pages_migrated`
        let _ = a.take_request_cost();
        match got {
            Ok(p) => {
                r.allocatable += 1;
                if a.zone_of(p).map(|zi| a.zones()[zi].kind()) == Some(ZoneKind::Normal) {
                    r.normal_allocatable += 1;
                }
                r.pages.push(p);
            }
            Err(e) => {
                if let spb_alloc::ContigError::Failed(st) = e {
                    r.stop = Some(st);
                }
                if reclaimed {
                    break;
                }
                reclaimed = true;
                let mut out = Vec::new();
                env.probe_reclaim(&mut out);
                if out.is_empty() {
                    break;
                }
                for b in &out {
                    r.reclaimed_pages += 1u64 << b.order;
                    a.free(b.pfn, b.order, 0)
                        .expect("probe reclaim handed back a block that is not allocated");
                }
            }
        }
    }
    r.pages_migrated = a.pages_migrated() - before;
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use spb_alloc::layout::{MemoryLayout, PfnRange, ZoneSpec};
    use spb_alloc::{AllocRequest, Config, Geometry, MigrateOutcome, PolicyConfig, PolicyKind};

    /// A Normal zone of `spbs` tiny SPBs (128 pages, 16 pageblocks of 8 pages).
    fn tiny(spbs: u64) -> Allocator {
        let s = Geometry::TINY.spb_pages();
        tiny_zone(PfnRange::new(s, s + spbs * s))
    }

    /// A vanilla allocator with one Normal zone over `span` (TINY geometry).
    fn tiny_zone(span: PfnRange) -> Allocator {
        let l = MemoryLayout {
            geometry: Geometry::TINY,
            zones: vec![ZoneSpec::plain(ZoneKind::Normal, span)],
        };
        let cfg = Config {
            policy: PolicyConfig::of(PolicyKind::Vanilla),
            check_every: 1,
            nr_cpus: 1,
            pcp: false,
            ..Config::default()
        };
        Allocator::new(&l, cfg).unwrap()
    }

    /// An embedder owning every movable block by cookie; cookies in `pinned` refuse.
    #[derive(Default)]
    struct E {
        pinned: Vec<u32>,
        cache: Vec<u32>,
        moved: u64,
        dropped: u64,
        reclaim: Vec<FreedBlock>,
    }
    impl Env for E {
        fn migrate(&mut self, _from: u64, _to: u64, _order: u8, cookie: u32) -> MigrateOutcome {
            if self.pinned.contains(&cookie) {
                return MigrateOutcome::Refused;
            }
            self.moved += 1;
            MigrateOutcome::Moved
        }
        fn reclaim_clean(&mut self, _pfn: u64, _order: u8, cookie: u32) -> bool {
            let drop = !self.pinned.contains(&cookie) && self.cache.contains(&cookie);
            self.dropped += drop as u64;
            drop
        }
    }
    impl ProbeEnv for E {
        fn probe_reclaim(&mut self, out: &mut Vec<FreedBlock>) {
            out.append(&mut self.reclaim);
        }
    }

    fn alloc(a: &mut Allocator, order: u8, gfp: Gfp, cookie: u32) -> u64 {
        a.alloc(
            AllocRequest::new(order, gfp).cookie(cookie),
            &mut spb_alloc::NoEnv,
        )
        .unwrap()
    }

    #[test]
    fn census_on_hand_built_states() {
        let mut a = tiny(4);
        let (n, all) = census(&a);
        assert_eq!(n, all);
        assert_eq!(
            (n.spbs, n.empty, n.clean, n.lost, n.tainted),
            (4, 4, 0, 0, 0)
        );
        let sp = a.geo().spb_pages();
        // a movable page: one clean SPB; an unmovable page: one tainted SPB
        let m = alloc(&mut a, 0, Gfp::HIGHUSER_MOVABLE, 1);
        let u = alloc(&mut a, 0, Gfp::KERNEL, 2);
        let (n, _) = census(&a);
        assert_eq!(n.tainted, 1);
        assert_eq!(n.lost, 1);
        assert_eq!(n.tainted_floor, 1);
        assert_eq!(n.lost_floor, 1);
        let same = m / sp == u / sp;
        assert_eq!(n.clean + n.empty + n.lost, 4);
        assert_eq!(n.clean, if same { 0 } else { 1 });
        // the map shows one unmovable block
        let map = spb_map(&a, 0.0);
        assert_eq!(map.rows.len(), 4);
        let u_cells: usize = map
            .rows
            .iter()
            .map(|r| {
                r.blocks
                    .iter()
                    .filter(|b| **b == BlockContent::Unmovable)
                    .count()
            })
            .sum();
        assert_eq!(u_cells, 1);
        assert!(map.rows.iter().any(|r| r.category == "tainted"));
        assert!(crate::report::terminal_map(&map, false).contains('U'));
        a.free(u, 0, 0).unwrap();
        let (n, _) = census(&a);
        assert_eq!(n.tainted, 0);
    }

    #[test]
    fn floors_count_pages_not_spbs() {
        let mut a = tiny(4);
        let sp = a.geo().spb_pages();
        // 1.5 SPBs worth of unmovable pages
        let n = sp + sp / 2;
        let order = a.geo().max_order;
        let mut k = 0;
        while k < n {
            alloc(&mut a, order, Gfp::KERNEL, 0);
            k += 1 << order;
        }
        let (c, _) = census(&a);
        assert_eq!(c.tainted_floor, 2);
        assert_eq!(c.lost_floor, 2);
        assert!(c.tainted >= 2);
    }

    #[test]
    fn holes_and_reservations_are_lost() {
        let g = Geometry::TINY;
        let s = g.spb_pages();
        let mut z = ZoneSpec::plain(ZoneKind::Normal, PfnRange::new(s, s + 3 * s + s / 2));
        z.holes.push(PfnRange::new(s + 10, s + 12));
        z.reserved.push(spb_alloc::layout::Reservation {
            range: PfnRange::new(2 * s + 8, 2 * s + 16),
            kind: spb_alloc::layout::ReserveKind::Memmap,
        });
        let l = MemoryLayout {
            geometry: g,
            zones: vec![z],
        };
        let a = Allocator::new(
            &l,
            Config {
                nr_cpus: 1,
                ..Config::default()
            },
        )
        .unwrap();
        let (c, _) = census(&a);
        // SPB 0: hole; SPB 1: reserved; SPB 2: empty; SPB 3: half outside the zone (hole)
        assert_eq!(c.spbs, 4);
        assert_eq!(c.pinned, 1);
        assert_eq!(c.holed, 2);
        assert_eq!(c.pinned_or_hole, 3);
        assert_eq!(c.lost, 3);
        assert_eq!(c.empty, 1);
        assert_eq!(c.lost_floor, 3);
        let map = spb_map(&a, 0.0);
        assert!(map.rows[1].category.contains("pinned"));
        assert!(map.rows[1].blocks.contains(&BlockContent::Reserved));
        assert!(map.rows[3].blocks.contains(&BlockContent::Hole));
        assert_eq!(zone_limit(&a.zones()[0], LimitInputs::default()), 1);
    }

    #[test]
    fn limit_counts_what_must_stay() {
        let mut a = tiny(4);
        let sp = a.geo().spb_pages();
        let wmin = a.zones()[0].wmark()[WMARK_MIN];
        assert_eq!(
            zone_limit(&a.zones()[0], LimitInputs::default()),
            4 - wmin.div_ceil(sp).min(4)
        );
        // fill 2.5 SPBs with movable pages: 1 SPB of them clean page cache
        let order = a.geo().max_order;
        let mut k = 0;
        while k < 2 * sp + sp / 2 {
            alloc(&mut a, order, Gfp::HIGHUSER_MOVABLE, 0);
            k += 1 << order;
        }
        let must = 2 * sp + sp / 2 + wmin;
        assert_eq!(
            zone_limit(&a.zones()[0], LimitInputs::default()),
            4 - must.div_ceil(sp)
        );
        let inp = LimitInputs {
            clean_cache_pages: sp,
            shrinkable_pages: 0,
        };
        assert_eq!(zone_limit(&a.zones()[0], inp), 4 - (must - sp).div_ceil(sp));
        // shrinkable slab pages do not count, the others do
        let u = alloc(&mut a, 0, Gfp::KERNEL.with(Gfp::RECLAIMABLE), 0);
        let _ = u;
        let l1 = zone_limit(
            &a.zones()[0],
            LimitInputs {
                clean_cache_pages: sp,
                shrinkable_pages: 1,
            },
        );
        assert_eq!(l1, 4 - (must - sp).div_ceil(sp));
    }

    #[test]
    fn capacity_bound_counts_the_room_of_holed_spbs() {
        // a zone starting half-way into its first SPB: 3 whole SPBs and one with a hole, whose
        // room is half an SPB; movable pages that must stay fill 1.875 SPBs with the min
        // watermark
        let sp = Geometry::TINY.spb_pages();
        let mut a = tiny_zone(PfnRange::new(sp / 2, 4 * sp));
        let wmin = a.zones()[0].wmark()[WMARK_MIN];
        let movable = 2 * sp - sp / 8 - wmin;
        for _ in 0..movable {
            alloc(&mut a, 0, Gfp::HIGHUSER_MOVABLE, 0);
        }
        // the limit counts the holed SPB as a whole SPB of room: 4 - max(1, ceil(1.875))
        assert_eq!(limits(&a, &[]).1, 2);
        // its real room is half an SPB: 3 - ceil(1.875 - 0.5)
        assert_eq!(capacity_bound(&a, &[]), 1);
        // half an SPB of it clean page cache (dropped, not kept): 4 - max(1, ceil(1.375)) and
        // 3 - ceil(0.875)
        let inp = [LimitInputs {
            clean_cache_pages: sp / 2,
            shrinkable_pages: 0,
        }];
        assert_eq!(limits(&a, &inp).1, 2);
        assert_eq!(capacity_bound(&a, &inp), 2);
    }

    #[test]
    fn probe_migrates_refuses_pinned_and_reclaims() {
        let mut a = tiny(4);
        let sp = a.geo().spb_pages();
        let mut e = E::default();
        // one movable block in every SPB (cookie = block index + 1): fill the zone with
        // max-order movable blocks, then free all but the first block of each SPB
        let order = a.geo().max_order;
        let mut heads = Vec::new();
        while let Ok(p) = a.alloc(
            AllocRequest::new(order, Gfp::HIGHUSER_MOVABLE).cookie(heads.len() as u32 + 1),
            &mut spb_alloc::NoEnv,
        ) {
            heads.push(p);
        }
        heads.sort();
        let mut kept: Vec<(u32, u64)> = Vec::new();
        for (i, &p) in heads.iter().enumerate() {
            if kept.iter().any(|&(_, q)| q / sp == p / sp) {
                a.free(p, order, 0).unwrap();
            } else {
                kept.push((i as u32, p));
            }
        }
        // the cookies were handed out in allocation order; find the one of the first kept block
        let heads: Vec<(u32, u64)> = kept
            .iter()
            .map(|&(_, p)| (a.page_state(p).unwrap().cookie(), p))
            .collect();
        e.pinned.push(heads[0].0);
        let pinned_block = heads[0].1;
        // one reclaimable slab page in SPB 3 that the shrinker can free
        let r = alloc(&mut a, 0, Gfp::KERNEL.with(Gfp::RECLAIMABLE), 999);
        e.reclaim.push(FreedBlock { pfn: r, order: 0 });
        let res = probe(&mut a, &mut e);
        // SPB of the pinned block: never; the others need migration of one block each, but
        // there is only room for so many.
        assert!(res.allocatable >= 1, "{res:?}");
        assert!(res.pages.iter().all(|&p| p / sp != pinned_block / sp));
        assert!(res.pages_migrated > 0);
        assert!(e.moved > 0);
        let st = res.stop.expect("the probe ends on a failed request");
        assert!(st.ranges_tried > 0, "{st:?}");
        let j = probe_stop_json(&st);
        assert_eq!(j["tried"], st.ranges_tried);
        a.check().unwrap();
    }
}
