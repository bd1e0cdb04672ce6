//! Shared test helpers: small layouts and a recording embedder.
#![allow(dead_code)]

use std::collections::HashMap;

use spb_alloc::layout::{MemoryLayout, PfnRange, ZoneKind, ZoneSpec};
use spb_alloc::*;

/// A geometry with 32-page pageblocks (order 5, also the buddy maximum: the THP order here)
/// and 8 pageblocks per SPB, for rules about whole pageblocks.
pub const PB32: Geometry = Geometry {
    page_shift: 12,
    pageblock_order: 5,
    max_order: 5,
    spb_order: 8,
};

/// spb-next on [`PB32`]: one Normal zone of `spbs` SPBs from SPB 1, switches `sw`, no per-CPU
/// lists, no min watermark and no proactive compaction (what the background does is the
/// policy's work alone).
pub fn spb_next_pb32(spbs: u64, sw: SpbSwitches) -> Allocator {
    let s = PB32.spb_pages();
    let layout = MemoryLayout {
        geometry: PB32,
        zones: vec![ZoneSpec::plain(
            ZoneKind::Normal,
            PfnRange::new(s, s + spbs * s),
        )],
    };
    let c = Config {
        policy: PolicyConfig {
            kind: PolicyKind::SpbNext,
            spb: sw,
        },
        ..quiet(PolicyKind::SpbNext)
    };
    Allocator::new(&layout, c).unwrap()
}

/// A single Normal zone of `spbs` superpageblocks on the tiny geometry (8-page pageblocks,
/// order-4 buddies, 16 pageblocks per SPB), starting at SPB 1.
pub fn tiny(spbs: u64) -> MemoryLayout {
    let g = Geometry::TINY;
    let start = g.spb_pages();
    MemoryLayout {
        geometry: g,
        zones: vec![ZoneSpec::plain(
            ZoneKind::Normal,
            PfnRange::new(start, start + spbs * g.spb_pages()),
        )],
    }
}

/// Tiny geometry with a DMA32 zone of one SPB below a Normal zone.
pub fn tiny_two_zone(normal_spbs: u64) -> MemoryLayout {
    let g = Geometry::TINY;
    let s = g.spb_pages();
    MemoryLayout {
        geometry: g,
        zones: vec![
            ZoneSpec::plain(ZoneKind::Dma32, PfnRange::new(s, 2 * s)),
            ZoneSpec::plain(
                ZoneKind::Normal,
                PfnRange::new(2 * s, (2 + normal_spbs) * s),
            ),
        ],
    }
}

/// [`cfg`] without per-CPU lists, min watermark or proactive compaction: every free page is on
/// the buddy lists and usable, and compaction runs only when a test asks for it.
pub fn quiet(kind: PolicyKind) -> Config {
    let mut c = Config {
        pcp: false,
        ..cfg(kind)
    };
    c.watermarks.min_free_kbytes = Some(0);
    c.compaction_proactiveness = 0;
    c
}

pub fn cfg(kind: PolicyKind) -> Config {
    Config {
        policy: PolicyConfig::of(kind),
        check_every: 1,
        nr_cpus: 2,
        ..Config::default()
    }
}

/// An embedder that tracks where each cookie lives and moves everything unless pinned; the
/// cookies in `clean` are clean page cache (`Env::reclaim_clean` drops them).
#[derive(Default)]
pub struct TrackEnv {
    pub loc: HashMap<u32, (Pfn, u8)>,
    pub pinned: std::collections::HashSet<u32>,
    pub clean: std::collections::HashSet<u32>,
    pub moves: u64,
    pub reclaimed_clean: u64,
}

impl Env for TrackEnv {
    fn migrate(&mut self, from: Pfn, to: Pfn, order: u8, cookie: u32) -> MigrateOutcome {
        if self.pinned.contains(&cookie) {
            return MigrateOutcome::Refused;
        }
        if let Some(l) = self.loc.get_mut(&cookie) {
            assert_eq!(
                *l,
                (from, order),
                "migration of cookie {} from the wrong place",
                cookie
            );
            *l = (to, order);
        }
        self.moves += 1;
        MigrateOutcome::Moved
    }
    fn maybe_pinned(&self, _pfn: Pfn, cookie: u32) -> bool {
        self.pinned.contains(&cookie)
    }
    fn clean_cache_by_range(&self, start: Pfn, end: Pfn, unit: u64, out: &mut Vec<u64>) {
        // a clean cookie is where `loc` says, else (tests that fill by pfn) at its own pfn
        let base = start / unit * unit;
        out.clear();
        out.resize((end - base).div_ceil(unit) as usize, 0);
        for c in self.clean.iter().filter(|c| !self.pinned.contains(c)) {
            let (p, order) = self.loc.get(c).copied().unwrap_or((*c as Pfn, 0));
            if (start..end).contains(&p) {
                out[((p - base) / unit) as usize] += 1 << order;
            }
        }
    }
    fn reclaim_clean(&mut self, _pfn: Pfn, order: u8, cookie: u32) -> bool {
        if self.pinned.contains(&cookie) || !self.clean.remove(&cookie) {
            return false;
        }
        self.loc.remove(&cookie);
        self.reclaimed_clean += 1 << order;
        true
    }
}
