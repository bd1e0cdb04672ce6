//! Fuzz input decoding: a byte string becomes a small layout, a configuration and an
//! operation sequence (the `alloc_ops` fuzz target and its proptest stand-in).

use super::{exec::*, ops::*};
use crate::layout::{Reservation, ReserveKind};
use crate::{
    Config, Geometry, Gfp, MemoryLayout, Pfn, PfnRange, PolicyConfig, PolicyKind, SpbSwitches,
    ZoneKind, ZoneSpec,
};

impl Harness {
    /// Decode a fuzzer's byte string into a strict harness and an operation sequence. Layouts
    /// are small hand-built ones on [`Geometry::TINY`] (and two edge geometries), with holes,
    /// reservations, uninitialised memory and room to grow; `Config.check_every = 1`.
    ///
    /// With `known_bugs` non-empty the allocator's own per-operation checker is off
    /// (`check_every = 0`: it would panic on the known bug) and the harness check, which runs
    /// after every operation anyway, tolerates checker messages containing one of them.
    pub fn from_fuzz_bytes(data: &[u8], known_bugs: &[&str]) -> (Harness, Vec<Op>) {
        let mut u = Bytes { d: data, i: 0 };
        let (layout, limit) = fuzz_layout(u.u8());
        let kind = PolicyKind::ALL[u.u8() as usize % PolicyKind::ALL.len()];
        // eight bytes, as when the set was 64 bits wide (the stored regressions keep their
        // meaning); the switches past bit 63 take the same bytes, rotated
        let lo = u.u64();
        let bits = u128::from(lo) | u128::from(lo.rotate_left(32)) << 64;
        let spb = if u.u8().is_multiple_of(4) {
            kind.default_switches()
        } else {
            SpbSwitches::from_bits(bits)
        };
        let flags = u.u8();
        let cfg = Config {
            policy: PolicyConfig { kind, spb },
            nr_cpus: 1 + (flags & 3) as usize,
            pcp: flags & 4 == 0,
            check_every: if known_bugs.is_empty() { 1 } else { 0 },
            nofail_retries: 8,
            ..Config::default()
        };
        let seed = u.u64();
        let mut h = Harness::new(&layout, cfg, limit, seed, true).expect("fuzz layouts are valid");
        h.known_bugs = known_bugs.iter().map(|s| s.to_string()).collect();
        let geo = layout.geometry;
        let nz = layout.zones.len() as u8;
        let mut ops = Vec::new();
        while !u.done() && ops.len() < 400 {
            ops.push(decode_op(&mut u, geo, nz, limit));
        }
        (h, ops)
    }

    /// Run a decoded fuzz sequence: every operation, the full check after each, and at the end
    /// free everything and demand zero lost pages. Panics on any violation.
    pub fn run_fuzz(data: &[u8], known_bugs: &[&str]) {
        let (mut h, ops) = Harness::from_fuzz_bytes(data, known_bugs);
        for op in &ops {
            h.step(op).expect("strict");
            h.check().expect("strict");
        }
        let lost = h.free_everything().expect("strict");
        assert_eq!(lost, 0, "{lost} pages lost after freeing everything");
    }
}

/// A cursor over fuzz bytes that yields zeros once exhausted.
pub(crate) struct Bytes<'a> {
    pub(crate) d: &'a [u8],
    pub(crate) i: usize,
}

impl Bytes<'_> {
    pub(crate) fn done(&self) -> bool {
        self.i >= self.d.len()
    }
    pub(crate) fn u8(&mut self) -> u8 {
        let v = self.d.get(self.i).copied().unwrap_or(0);
        self.i += 1;
        v
    }
    pub(crate) fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    pub(crate) fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    pub(crate) fn u64(&mut self) -> u64 {
        (self.u32() as u64) | (self.u32() as u64) << 32
    }
}

/// Realistic gfp masks (the reference traces' most common ones).
pub(crate) const GFPS: [Gfp; 10] = [
    Gfp::KERNEL,
    Gfp::HIGHUSER_MOVABLE,
    Gfp(Gfp::KERNEL.0 | Gfp::RECLAIMABLE.0),
    Gfp::ATOMIC,
    Gfp::NOWAIT,
    Gfp::TRANSHUGE_LIGHT,
    Gfp::TRANSHUGE,
    Gfp(Gfp::KERNEL.0 | Gfp::NORETRY.0 | Gfp::NOWARN.0),
    Gfp(Gfp::ATOMIC.0 | Gfp::NOWARN.0 | Gfp::NORETRY.0 | Gfp::COMP.0 | Gfp::NOMEMALLOC.0),
    Gfp(Gfp::KERNEL.0 | Gfp::NOFAIL.0),
];

pub(crate) fn gfp_of(u: &mut Bytes) -> Gfp {
    let b = u.u8();
    if b < 200 {
        GFPS[b as usize % GFPS.len()]
    } else {
        Gfp(u.u32())
    }
}

pub(crate) fn decode_op(u: &mut Bytes, geo: Geometry, nz: u8, limit: Pfn) -> Op {
    match u.u8() % 32 {
        0..=8 => Op::Alloc {
            order: u.u8() % 12,
            gfp: gfp_of(u),
            cpu: (u.u8() % 6) as u16,
            trylock: u.u8().is_multiple_of(8),
        },
        9..=14 => Op::Free {
            pick: u.u16() as u64,
            cpu: u.u16(),
        },
        15..=17 => Op::FreeOther {
            how: u.u8(),
            pick: u.u16() as u64,
            arg: u.u64(),
            cpu: u.u8() as u16,
        },
        18 => Op::Split {
            pick: u.u16() as u64,
            new_order: u.u8(),
        },
        19 => Op::SplitOther {
            how: u.u8(),
            pick: u.u16() as u64,
            arg: u.u64(),
            new_order: u.u8() % 12,
        },
        20 | 21 => {
            let order = u.u8() % (geo.max_order + 3);
            let raw = u.u16() as u64 % (limit + 32);
            let pfn = if u.u8().is_multiple_of(4) {
                raw
            } else {
                raw & !((1u64 << order) - 1)
            };
            Op::AllocAt {
                pfn,
                order,
                gfp: gfp_of(u),
            }
        }
        22 | 23 => Op::Contig {
            order: geo.spb_order.saturating_sub(u.u8() % (geo.spb_order + 2)),
            gfp: gfp_of(u),
        },
        24 => {
            let o = u.u8();
            Op::Compact {
                zone: u.u8() % nz,
                order: (o < 200).then_some(o),
                prio: u.u8(),
                mt: u.u8(),
                daemon: u.u8().is_multiple_of(2),
            }
        }
        25 => {
            if u.u8().is_multiple_of(2) {
                Op::Drain
            } else {
                Op::LongtermPin {
                    pick: u.u16() as u64,
                }
            }
        }
        26 | 27 => Op::Background {
            step_ns: [0, 1_000_000, 100_000_000, 600_000_000, 2_000_000_000][u.u8() as usize % 5],
        },
        28 | 29 => {
            let zone = u.u8() % (nz + 1);
            let start = u.u16() as u64 % (limit + 16);
            let len = u.u16() as u64 % (limit / 2 + 1);
            Op::Grow {
                zone,
                start,
                end: if u.u8().is_multiple_of(8) {
                    start.wrapping_sub(len)
                } else {
                    start + len
                },
            }
        }
        _ => Op::GrowNext {
            zone: u.u8() % nz,
            pages: 1 + u.u16() as u64 % geo.spb_pages(),
        },
    }
}

/// The fuzz layouts, with the pfn limit each may grow to.
pub(crate) fn fuzz_layout(sel: u8) -> (MemoryLayout, Pfn) {
    let g = Geometry::TINY;
    let s = g.spb_pages(); // 128
    let rsv = |a: Pfn, b: Pfn, kind| Reservation {
        range: PfnRange::new(a, b),
        kind,
    };
    match sel % 6 {
        // one Normal zone of 4 SPBs, growth beyond the end
        0 => (
            MemoryLayout {
                geometry: g,
                zones: vec![ZoneSpec::plain(ZoneKind::Normal, PfnRange::new(s, 5 * s))],
            },
            8 * s,
        ),
        // DMA32 + Normal with an uninitialised top SPB (tests/model.rs)
        1 => {
            let mut z1 = ZoneSpec::plain(ZoneKind::Normal, PfnRange::new(2 * s, 6 * s));
            z1.uninit.push(PfnRange::new(5 * s, 6 * s));
            (
                MemoryLayout {
                    geometry: g,
                    zones: vec![
                        ZoneSpec::plain(ZoneKind::Dma32, PfnRange::new(s, 2 * s)),
                        z1,
                    ],
                },
                8 * s,
            )
        }
        // four zones, unaligned starts, holes, reservations, uninit, gaps between zones
        2 => {
            let mut dma = ZoneSpec::plain(ZoneKind::Dma, PfnRange::new(1, 64));
            dma.holes.push(PfnRange::new(20, 28));
            let mut d32 = ZoneSpec::plain(ZoneKind::Dma32, PfnRange::new(64, 3 * s));
            d32.holes.push(PfnRange::new(200, 232));
            d32.reserved.push(rsv(300, 310, ReserveKind::BounceBuffers));
            let mut n = ZoneSpec::plain(ZoneKind::Normal, PfnRange::new(3 * s, 7 * s));
            n.reserved.push(rsv(7 * s - 20, 7 * s, ReserveKind::Memmap));
            n.reserved
                .push(rsv(4 * s + 3, 4 * s + 5, ReserveKind::KernelImage));
            n.uninit.push(PfnRange::new(6 * s, 7 * s - 20));
            let mv = ZoneSpec::plain(ZoneKind::Movable, PfnRange::new(8 * s, 10 * s));
            (
                MemoryLayout {
                    geometry: g,
                    zones: vec![dma, d32, n, mv],
                },
                12 * s,
            )
        }
        // a zone boundary inside an SPB, uninit at the top
        3 => {
            let mut n = ZoneSpec::plain(ZoneKind::Normal, PfnRange::new(200, 700));
            n.uninit.push(PfnRange::new(600, 700));
            (
                MemoryLayout {
                    geometry: g,
                    zones: vec![ZoneSpec::plain(ZoneKind::Dma32, PfnRange::new(128, 200)), n],
                },
                8 * s,
            )
        }
        // pageblock order == max order
        4 => {
            let g = Geometry {
                page_shift: 12,
                pageblock_order: 3,
                max_order: 3,
                spb_order: 6,
            };
            let s = g.spb_pages();
            let mut n = ZoneSpec::plain(ZoneKind::Normal, PfnRange::new(2 * s, 8 * s));
            n.uninit.push(PfnRange::new(7 * s, 8 * s));
            (
                MemoryLayout {
                    geometry: g,
                    zones: vec![ZoneSpec::plain(ZoneKind::Dma32, PfnRange::new(s, 2 * s)), n],
                },
                12 * s,
            )
        }
        // a single small zone with no room to grow but its own uninit pages
        _ => {
            let mut n = ZoneSpec::plain(ZoneKind::Normal, PfnRange::new(s, 3 * s));
            n.uninit.push(PfnRange::new(2 * s + 16, 2 * s + 48));
            n.holes.push(PfnRange::new(2 * s + 64, 2 * s + 72));
            (
                MemoryLayout {
                    geometry: g,
                    zones: vec![n],
                },
                3 * s,
            )
        }
    }
}
