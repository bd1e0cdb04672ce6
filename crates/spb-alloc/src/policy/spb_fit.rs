//! spb-next `movable_best_fit`: a movable request takes the smallest free movable block the
//! zone's SPBs can give it, not the smallest block of the first SPB the walk visits.
//!
//! With per-SPB free lists (patch 14) the walk is "SPB first, order second": it takes the
//! fullest clean SPB and splits the smallest block *in that SPB* (the series: "exhaust each
//! preferred SPB before moving on", patch 20). When that SPB holds only large blocks, an
//! order-0 page-cache page splits an order-4..10 block there while other SPBs of the same zone
//! still have free order-0..3 blocks on their movable lists. Mainline's zone-wide
//! `__rmqueue_smallest` never does that. Measured on thp-challenge (docs/spb-next.md,
//! "Movable high-order failures"): spb-next split a larger block while a smaller movable one
//! was free elsewhere in the zone 166 310 times (25 874 of them an order >= 4 block), and at
//! its failed order-4..8 page-cache folio requests Normal had 80 000 free pages on average but
//! only 84 in blocks of the requested order or larger (vanilla: 49 000 and 8 800).
//!
//! The switch: before the walk, find the SPB whose movable lists hold the smallest block of
//! at least the requested order, among the SPBs the walk would use before an empty SPB (clean
//! SPBs, then tainted SPBs above their reserve), in the walk's own order; take from it when
//! that block is smaller than a pageblock. Whole free pageblocks and larger are left to the
//! walk (fullest clean SPB first, then an empty SPB), so where no fragment exists the
//! placement is the series'. No constant: the bound is the pageblock order (above it no
//! fragment exists to prefer, and the whole-pageblock order is the series' own choice).
//!
//! Cost: one pass over the SPBs of the two lists, stopping at the first SPB that holds a block
//! of the smallest order the zone has on its movable lists at all (the zone-wide counts give
//! that order), so a zone whose fragments sit in the fullest SPBs pays one or two visits.

use crate::migratetype::MigrateType;
use crate::page::NIL;
use crate::superpageblock::{Category, FIRST_WITH_FREE, NR_FULLNESS};
use crate::zone::Zone;

use super::spb::tainted_reserve;

/// The SPB (index) to serve a movable request of `order` from, if some SPB of the clean list or
/// a tainted SPB above its reserve (`reserve_on`: patch 23's reserve is honoured) holds a free
/// movable block of at least `order` and below the pageblock order; the SPB with the smallest
/// such block, the walk's order (clean fullest first, then tainted fullest first) breaking ties.
/// `excluded` is the SPB being evacuated (never a source).
pub fn best_fit_spb(z: &Zone, order: u8, excluded: u32, reserve_on: bool) -> Option<u32> {
    let mv = MigrateType::Movable.idx();
    let pbo = z.geo.pageblock_order as usize;
    let o = order as usize;
    if o >= pbo || z.areas.len() != z.spbs.len() {
        return None;
    }
    // The smallest order with a free movable block anywhere in the zone: nothing can beat it.
    let floor = (o..pbo).find(|&k| z.nr_free[k][mv] > 0)?;
    let mut best: Option<(usize, u32)> = None;
    for cat in [Category::Clean, Category::Tainted] {
        for full in FIRST_WITH_FREE..NR_FULLNESS {
            let mut i = z.spb_lists.heads[cat as usize][full];
            while i != NIL {
                let s = &z.spbs[i as usize];
                let next = s.list_next;
                let usable = i != excluded
                    && (cat == Category::Clean || !reserve_on || s.pb_free > tainted_reserve(s));
                if usable {
                    if let Some(k) = z.areas[i as usize].smallest_from(o, mv) {
                        if k < pbo && best.is_none_or(|(b, _)| k < b) {
                            best = Some((k, i));
                            if k == floor {
                                return Some(i);
                            }
                        }
                    }
                }
                i = next;
            }
        }
    }
    best.map(|(_, i)| i)
}
