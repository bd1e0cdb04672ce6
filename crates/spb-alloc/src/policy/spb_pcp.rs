//! Per-CPU pageblock ownership (patches 02 and 21): a CPU that breaks a whole free pageblock to
//! refill its per-CPU list becomes the block's owner, and its later refills first take the free
//! pages left in the blocks it owns (Phase 0) before the ordinary walk breaks another block. So
//! the pages one CPU frees and reallocates stay in few pageblocks, instead of every CPU's
//! refills spreading over many.
//!
//! # The owned lists
//!
//! Each CPU keeps, per zone, a list of the pageblocks it owns (the `owned` lists of
//! [`ZoneState`](super::spb::ZoneState): first pfn and listing generation), visited
//! round-robin: a refill visits entries from the front, and the visited prefix goes to the
//! back. Entries go stale instead of being removed (the
//! block became wholly free and lost its owner, or was listed again with a new generation) and
//! are dropped when visited. Most owned blocks are full, and most refills find nothing in
//! them: Phase 0 first asks the zone how many blocks the CPU owns with the requested label and
//! a free page ([`Zone::owned_with_free`]) and returns at once when none; otherwise it steps
//! over the full ones with a scan of the list against the zone's has-free bitmap
//! ([`Zone::pb_has_free`]), a bitmap test per owned block without free pages and a pageblock
//! record per block with some.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use crate::geometry::Pfn;
use crate::gfp::{AllocFlags, Gfp};
use crate::migratetype::MigrateType;
use crate::superpageblock::Category;
use crate::vmstat::Vm;
use crate::zone::Zone;

use super::mainline::RmqueueMode;
use super::spb::{SpbPolicy, SpbSwitch};
use super::Ctx;

/// Owned pageblocks one Phase 0 refill may scan without finding a free block of the
/// requested order before it falls through to the ordinary walk. Spb's choice (the series
/// does not say how Phase 0 bounds its walk): 4 pageblock scans cost about as much as the
/// walk itself, and the round-robin order brings every owned block up within a few refills.
pub const HARVEST_MISS_BUDGET: u32 = 4;

impl SpbPolicy {
    /// Per-CPU refill with pageblock ownership (patches 02, 21). Phase 0 recovers free pages
    /// of blocks this CPU owns; then the ordinary walk serves the rest, smallest block first,
    /// and when it has to break a whole free pageblock the CPU becomes that block's owner (the
    /// series' Phase 1, which claims whole pageblocks *before* sub-pageblock chunks, would break
    /// up the free pageblocks THP needs; spb keeps the buddy allocator's smallest-first order and
    /// makes ownership a consequence of it). With `adopt_partial` (21) a non-movable refill
    /// served from a partially free pageblock of a tainted SPB adopts that block. The free pages
    /// of an owned block stay in the buddy lists until the owner's refills take them; frees of
    /// its pages return to the owner's list. Fills up to `n` entries; returns how many.
    #[allow(clippy::too_many_arguments)]
    pub fn pcp_refill_owned(
        &mut self,
        z: &mut Zone,
        ctx: &mut Ctx,
        cpu: usize,
        order: u8,
        mt: MigrateType,
        flags: AllocFlags,
        gfp: Gfp,
        n: u64,
    ) -> u64 {
        let pbo = z.geo.pageblock_order;
        let own = self.sw.on(SpbSwitch::PcpOwnership);
        let adopt = self.sw.on(SpbSwitch::AdoptPartial) && mt != MigrateType::Movable;
        if order >= pbo || n == 0 || !(own || adopt) {
            return 0;
        }
        let zi = ctx.zone_id as usize;
        let pbp = z.geo.pageblock_pages();
        let mut got = if own {
            self.harvest_owned(z, zi, cpu, order, mt, n)
        } else {
            0
        };
        let mut mode = RmqueueMode::Normal;
        let no_steal = self.sw.on(SpbSwitch::RefillNoSteal);
        let one_taint = self.sw.on(SpbSwitch::RefillOneTaint);
        let no_taint =
            (self.sw.on(SpbSwitch::RefillNoTaint) || one_taint) && mt != MigrateType::Movable;
        // the batch; `refill_one_taint`'s SPB (`refill_spb`) is this refill's and ends with it
        let got = 'refill: {
            while got < n {
                // spb-next `refill_no_taint`: the caller's page is the list's first; the pages
                // after it may not taint an SPB
                let later = no_taint && got > 0;
                let f = if later {
                    flags.with(AllocFlags::NO_TAINT)
                } else {
                    flags
                };
                // (the steal counter is read only with the switch on: this is the refill loop)
                let steals = if no_steal {
                    ctx.vm.get(Vm::ExtfragSteal)
                } else {
                    0
                };
                let Some(p) = self.rmqueue(z, ctx, order, mt, f, &mut mode, gfp) else {
                    if later {
                        // the refill is over: the generic loop must not take the rest either
                        break 'refill n;
                    }
                    break;
                };
                // spb-next `refill_one_taint`: the caller's page taints its SPB; the rest may too
                if one_taint && got == 0 {
                    let si = z.spb_idx(p);
                    if z.spbs[si].category != Category::Tainted {
                        self.refill_spb = Some((ctx.zone_id, si as u32));
                    }
                }
                // spb-next `refill_no_steal`: this page was stolen from another type's block; keep it
                // (the caller may need it) and stop filling the cache that way
                let stop = no_steal && ctx.vm.get(Vm::ExtfragSteal) != steals;
                let bi = z.pb_idx(p);
                let pb = z.pageblocks[bi];
                let broke_whole = pb.free as u64 == pbp;
                let si = z.spb_idx(p);
                let adopt_here = adopt
                    && pb.owner == 0
                    && !broke_whole
                    && z.spbs[si].category == Category::Tainted;
                to_pcp(z, cpu, p, order, mt);
                got += 1;
                if (own && broke_whole && pb.owner == 0) || adopt_here {
                    let b = p & !(pbp - 1);
                    z.set_pb_owner(bi, cpu as u16 + 1);
                    let zs = &mut self.zones[zi];
                    if zs.owned.len() <= cpu {
                        zs.owned.resize(cpu + 1, VecDeque::new());
                    }
                    if zs.owned_gen.len() <= bi {
                        zs.owned_gen.resize(bi + 1, 0);
                    }
                    zs.owned_gen[bi] = zs.owned_gen[bi].wrapping_add(1);
                    let gen = zs.owned_gen[bi];
                    let list = &mut zs.owned[cpu];
                    list.push_back((b, gen));
                    // stale entries of blocks visited rarely: keep the list within twice the zone
                    if list.len() > 2 * z.pageblocks.len().max(8) {
                        let g = &zs.owned_gen;
                        list.retain(|&(b, e)| {
                            let i = z.pb_idx(b);
                            z.pageblocks[i].owner == cpu as u16 + 1 && g[i] == e
                        });
                    }
                    // the rest of the refill comes from the block just claimed
                    if own && got < n && pb.migratetype() == mt {
                        got += harvest_block(z, b, cpu, order, mt, n - got);
                    }
                }
                if stop {
                    // the refill is over: the generic loop must not take the rest either
                    break 'refill n;
                }
            }
            got
        };
        self.refill_spb = None;
        got
    }

    /// Phase 0: take free blocks of `order` (splitting larger free buddies) out of the
    /// pageblocks `cpu` owns whose label is `mt`, onto its list. Stale entries (the block
    /// became entirely free, or was listed again) are dropped.
    ///
    /// The owned blocks are visited round-robin, and one refill gives up after
    /// [`HARVEST_MISS_BUDGET`] scanned blocks that yielded nothing: a CPU can own thousands
    /// of pageblocks, and one whose free pages are all smaller than `order` costs a scan of
    /// the whole block; unbounded, Phase 0 made refills O(owned blocks x pageblock pages).
    fn harvest_owned(
        &mut self,
        z: &mut Zone,
        zi: usize,
        cpu: usize,
        order: u8,
        mt: MigrateType,
        n: u64,
    ) -> u64 {
        // nothing to take: no owned block of this label has a free page (the walk below
        // would only step over the list and drop stale entries, which changes no live
        // entry's place)
        if z.owned_with_free(cpu, mt) == 0 {
            return 0;
        }
        let zs = &mut self.zones[zi];
        let Some(list) = zs.owned.get_mut(cpu) else {
            return 0;
        };
        let gens = &zs.owned_gen;
        let len = list.len();
        let mut got = 0;
        let mut misses = 0;
        // Each entry is visited at most once, from the front; a visited entry goes to the
        // back (in order) unless stale. Most owned blocks are full: an entry whose block has
        // no free page can yield nothing, so it only goes round, and finding the next entry
        // with free pages is a scan of the list against `Zone::pb_has_free` (a 16 KiB bitmap)
        // instead of a pop, a load of the pageblock record and a push per entry. The visited
        // prefix moves to the back in one rotation at the end. A stale entry whose block has
        // no free page goes round too: it stays stale (only a new listing, with a new
        // generation, makes a block owned again) and is dropped at a later visit; a stale
        // entry changes nothing but the list's length, which bounds only this loop's
        // visits, each entry at most once.
        let mut j = 0;
        let mut stale: Vec<usize> = Vec::new();
        while got < n && misses < HARVEST_MISS_BUDGET {
            j = next_with_free(z, list, j);
            if j == len {
                break;
            }
            let (b, gen) = list[j];
            j += 1;
            let bi = z.pb_idx(b);
            let pb = z.pageblocks[bi];
            if pb.owner != cpu as u16 + 1 || gens.get(bi) != Some(&gen) {
                stale.push(j - 1);
                continue;
            }
            if pb.migratetype() != mt || pb.is_isolated() || (pb.free as u64) < (1u64 << order) {
                continue;
            }
            let before = got;
            got += harvest_block(z, b, cpu, order, mt, n - got);
            if got == before {
                misses += 1;
            }
        }
        if stale.is_empty() {
            list.rotate_left(j);
        } else {
            let mut k = 0;
            let kept: Vec<(Pfn, u32)> = list
                .drain(..j)
                .enumerate()
                .filter(|&(i, _)| {
                    let drop = stale.get(k) == Some(&i);
                    k += drop as usize;
                    !drop
                })
                .map(|(_, e)| e)
                .collect();
            list.extend(kept);
        }
        got
    }
}

/// The index of the first entry of `list` at or after `from` whose pageblock has a free page,
/// or `list.len()`.
fn next_with_free(z: &Zone, list: &VecDeque<(Pfn, u32)>, from: usize) -> usize {
    let has = |&(p, _): &(Pfn, u32)| z.pb_has_free(z.pb_idx(p));
    let (a, b) = list.as_slices();
    if from < a.len() {
        if let Some(i) = a[from..].iter().position(has) {
            return from + i;
        }
    }
    let s = from.max(a.len()) - a.len();
    b[s..]
        .iter()
        .position(has)
        .map_or(list.len(), |i| a.len() + s + i)
}

/// Put the block of `order` at `p`, just taken off the free lists, on `cpu`'s list of `mt`.
fn to_pcp(z: &mut Zone, cpu: usize, p: Pfn, order: u8, mt: MigrateType) {
    z.account(
        p,
        1u64 << order,
        crate::pageblock::Acct::Free,
        crate::pageblock::Acct::Pcp,
    );
    z.pcp_push(cpu, p, order, mt, true);
}

/// Move free blocks of `order` (splitting larger free buddies) of the pageblock at `b` onto
/// `cpu`'s list, up to `n`; returns how many.
fn harvest_block(z: &mut Zone, b: Pfn, cpu: usize, order: u8, mt: MigrateType, n: u64) -> u64 {
    let span = z.pb_span(b);
    let mut got = 0;
    let mut p = span.start;
    while p < span.end && got < n {
        // the entries the match below would only step over, in one go
        p += z.plain_run(p, span.end);
        if p >= span.end {
            break;
        }
        let m = *z.page(p);
        match m.state {
            crate::page::PageState::Free
                if m.order >= order && m.order <= z.geo.pageblock_order =>
            {
                let q = z.take_and_expand(p, order, mt);
                to_pcp(z, cpu, q, order, mt);
                got += 1;
                p += 1u64 << order;
            }
            crate::page::PageState::Free
            | crate::page::PageState::Alloc
            | crate::page::PageState::Pcp
            | crate::page::PageState::Isolated => p += 1u64 << m.order,
            _ => p += 1,
        }
    }
    got
}

#[cfg(test)]
mod harvest_tests {
    use super::super::spb::ZoneState;
    use super::*;
    use crate::env::NoEnv;
    use crate::gfp::Gfp;
    use crate::layout::{MemoryLayout, PfnRange, ZoneKind, ZoneSpec};
    use crate::policy::Policy;
    use crate::{AllocRequest, Allocator, Config, Geometry, PolicyConfig, PolicyKind};
    use alloc::format;
    use alloc::vec;

    /// Phase 0 as it was before [`Zone::pb_has_free`]: every entry's pageblock record is
    /// loaded, stale entries are dropped at their first visit.
    fn harvest_owned_walk(
        z: &mut Zone,
        zs: &mut ZoneState,
        cpu: usize,
        order: u8,
        mt: MigrateType,
        n: u64,
    ) -> u64 {
        let Some(list) = zs.owned.get_mut(cpu) else {
            return 0;
        };
        let gens = &zs.owned_gen;
        let mut got = 0;
        let mut misses = 0;
        for _ in 0..list.len() {
            if got >= n || misses >= HARVEST_MISS_BUDGET {
                break;
            }
            let Some((b, gen)) = list.pop_front() else {
                break;
            };
            let pb = *z.pb(b);
            if pb.owner != cpu as u16 + 1 || gens.get(z.pb_idx(b)) != Some(&gen) {
                continue;
            }
            list.push_back((b, gen));
            if pb.migratetype() != mt || pb.is_isolated() || (pb.free as u64) < (1u64 << order) {
                continue;
            }
            let before = got;
            got += harvest_block(z, b, cpu, order, mt, n - got);
            if got == before {
                misses += 1;
            }
        }
        got
    }

    /// The live entries of `cpu`'s owned list, in order (what Phase 0 acts on).
    fn live(z: &Zone, zs: &ZoneState, cpu: usize) -> Vec<(Pfn, u32)> {
        zs.owned.get(cpu).map_or(Vec::new(), |l| {
            l.iter()
                .copied()
                .filter(|&(b, g)| {
                    z.pb(b).owner == cpu as u16 + 1 && zs.owned_gen.get(z.pb_idx(b)) == Some(&g)
                })
                .collect()
        })
    }

    /// A zone's whole state, for equality (pages, pageblocks, SPBs, per-CPU and free lists).
    fn zone_state(z: &Zone) -> alloc::string::String {
        format!(
            "{:?} {:?} {:?} {:?} {} {:?}",
            z.pages,
            z.pageblocks,
            z.spbs,
            z.pcp,
            crate::test_support::zone_private_state(z),
            z.pb_has_free
        )
    }

    /// Phase 0 with the has-free bitmap and the owned-with-free count takes the same blocks
    /// onto the same per-CPU lists, leaves the zone in the same state and the owned list's
    /// live entries in the same order as the walk that loads every pageblock record. Two
    /// allocators go through the same random allocations and frees over four CPUs; every 40
    /// operations one runs Phase 0, the other the old walk, with the same arguments, and
    /// their states are compared (the checker, run on every operation, recounts the bitmap
    /// and the counts).
    #[test]
    fn harvest_owned_matches_the_walk() {
        let g = Geometry::TINY;
        let s = g.spb_pages();
        let layout = MemoryLayout {
            geometry: g,
            zones: vec![ZoneSpec::plain(
                ZoneKind::Normal,
                PfnRange::new(s, s + 4 * s),
            )],
        };
        let new = || {
            Allocator::new(
                &layout,
                Config {
                    policy: PolicyConfig::of(PolicyKind::Spb),
                    check_every: 1,
                    nr_cpus: 4,
                    ..Config::default()
                },
            )
            .unwrap()
        };
        let (mut a, mut b) = (new(), new());
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut rnd = |m: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % m
        };
        let gfps = [
            Gfp::KERNEL,
            Gfp::KERNEL | Gfp::RECLAIMABLE,
            Gfp::HIGHUSER_MOVABLE,
        ];
        let mut held: Vec<(Pfn, u8)> = Vec::new();
        let (mut compared, mut harvested, mut skipped) = (0u64, 0u64, 0u64);
        // comparisons where the owned-with-free count let Phase 0 skip a non-empty list
        let mut counted_out = 0u64;
        for step in 0..6000u32 {
            if rnd(100) < 55 || held.is_empty() {
                let order = [0u8, 0, 0, 1, 2][rnd(5) as usize];
                let req = AllocRequest::new(order, gfps[rnd(3) as usize]).cpu(rnd(4) as u16);
                let (pa, pb) = (a.alloc(req, &mut NoEnv), b.alloc(req, &mut NoEnv));
                assert_eq!(pa, pb);
                if let Ok(p) = pa {
                    held.push((p, order));
                }
            } else {
                let (p, order) = held.swap_remove(rnd(held.len() as u64) as usize);
                let cpu = rnd(4) as u16;
                a.free(p, order, cpu).unwrap();
                b.free(p, order, cpu).unwrap();
            }
            if step % 40 != 0 {
                continue;
            }
            for cpu in 0..4 {
                for (order, mt) in [
                    (0, MigrateType::Unmovable),
                    (0, MigrateType::Reclaimable),
                    (0, MigrateType::Movable),
                    (1, MigrateType::Unmovable),
                    (2, MigrateType::Movable),
                ] {
                    let n = 1 + rnd(12);
                    let (Policy::Spb(pa), Policy::Spb(pb)) = (&mut a.policy, &mut b.policy) else {
                        unreachable!("both run spb")
                    };
                    let (za, zb) = (&mut a.zones[0], &mut b.zones[0]);
                    skipped += pa.zones[0].owned.get(cpu).map_or(0, |l| {
                        l.iter()
                            .filter(|&&(p, _)| !za.pb_has_free(za.pb_idx(p)))
                            .count() as u64
                    });
                    if za.owned_with_free(cpu, mt) == 0
                        && pa.zones[0].owned.get(cpu).is_some_and(|l| !l.is_empty())
                    {
                        counted_out += 1;
                    }
                    let got = pa.harvest_owned(za, 0, cpu, order, mt, n);
                    let want = harvest_owned_walk(zb, &mut pb.zones[0], cpu, order, mt, n);
                    let at = format!("step {step} cpu {cpu} order {order} {mt:?}");
                    assert_eq!(got, want, "{at}");
                    assert_eq!(zone_state(za), zone_state(zb), "{at}: zone state");
                    assert_eq!(
                        live(za, &pa.zones[0], cpu),
                        live(zb, &pb.zones[0], cpu),
                        "{at}: owned list order"
                    );
                    compared += 1;
                    harvested += got;
                }
            }
            a.check().unwrap();
            b.check().unwrap();
        }
        // the comparison saw harvests, entries the bitmap let go round unread, and lists the
        // count skipped whole
        assert!(
            compared > 500 && harvested > 0 && skipped > 0 && counted_out > 0,
            "{compared} {harvested} {skipped} {counted_out}"
        );
    }
}
