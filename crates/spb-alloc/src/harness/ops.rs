//! The operations of a harness sequence, and the soak's weighted random generator of them.

use rand::Rng;
use rand_pcg::Pcg64;

use super::fuzz::*;
use crate::{Geometry, Gfp, Pfn};

// ---------------------------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------------------------

/// One operation of a sequence. Pfns are absolute; `pick` selects a live block of the model
/// (the first live block at or after `pick % limit`, wrapping), so sequences stay meaningful
/// whatever the allocator returned earlier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// `alloc` with any order (also above the maximum), any gfp bits, any cpu (also invalid).
    Alloc {
        order: u8,
        gfp: Gfp,
        cpu: u16,
        trylock: bool,
    },
    /// Free a live block (must succeed).
    Free { pick: u64, cpu: u16 },
    /// Free something derived from the model: a live block with another order, an interior pfn,
    /// a recently freed block (double free), a random pfn, a pfn outside every zone. Succeeds
    /// exactly when the model says `(pfn, order)` is live.
    FreeOther {
        how: u8,
        pick: u64,
        arg: u64,
        cpu: u16,
    },
    /// Split a live block to a lower order (must succeed).
    Split { pick: u64, new_order: u8 },
    /// Split something derived from the model (as `FreeOther`), any new order.
    SplitOther {
        how: u8,
        pick: u64,
        arg: u64,
        new_order: u8,
    },
    /// `alloc_at`: must fail if the block overlaps a live block or unmanaged memory, and
    /// succeed otherwise (aligned, order ≤ max, inside one zone).
    AllocAt { pfn: Pfn, order: u8, gfp: Gfp },
    /// `alloc_contig` of any order (orders outside pageblock..=SPB order must be `BadOrder`).
    Contig { order: u8, gfp: Gfp },
    /// `compact_zone` on a valid zone.
    Compact {
        zone: u8,
        order: Option<u8>,
        prio: u8,
        mt: u8,
        daemon: bool,
    },
    /// `longterm_pin` of a live block: it may move (spb-next `pin_migrate`), through the model's
    /// migration callback, and stays live either way.
    LongtermPin { pick: u64 },
    /// `drain_all_pcp`.
    Drain,
    /// Advance the virtual clock and run `background` (kswapd, kcompactd, spb evacuation).
    Background { step_ns: u64 },
    /// `grow_zone` with an arbitrary range (bounded above by the harness limit); the result
    /// must be exactly what the model predicts.
    Grow { zone: u8, start: Pfn, end: Pfn },
    /// Grow a zone the valid way: the next uninitialised chunk, or beyond the span end.
    GrowNext { zone: u8, pages: u64 },
}

/// How the pfns of the Free/Split "other" operations are derived (`how % 6`).
pub(crate) const HOW_WRONG_ORDER: u8 = 0;
pub(crate) const HOW_INTERIOR: u8 = 1;
pub(crate) const HOW_DOUBLE: u8 = 2;
pub(crate) const HOW_RANDOM: u8 = 3;
pub(crate) const HOW_OUTSIDE: u8 = 4;
// 5: the live block itself (a valid free through the "other" path)

/// Generate one soak operation: a realistic mix, most of it allocations and frees, with
/// every other kind (and every misuse) present.
pub(crate) fn soak_op(rng: &mut Pcg64, geo: Geometry, nz: u8, limit: Pfn, nr_cpus: u16) -> Op {
    let r = rng.gen_range(0..1000u32);
    let order = |rng: &mut Pcg64| -> u8 {
        match rng.gen_range(0..100) {
            0..=69 => 0,
            70..=84 => 1,
            85..=92 => rng.gen_range(2..=3),
            _ => rng.gen_range(0..=geo.max_order),
        }
    };
    let gfp = |rng: &mut Pcg64| -> Gfp {
        if rng.gen_ratio(1, 50) {
            Gfp(rng.gen())
        } else {
            GFPS[rng.gen_range(0..GFPS.len())]
        }
    };
    match r {
        0..=439 => Op::Alloc {
            order: order(rng),
            gfp: gfp(rng),
            cpu: rng.gen_range(0..nr_cpus),
            trylock: rng.gen_ratio(1, 20),
        },
        440..=459 => Op::Alloc {
            order: rng.gen_range(0..=geo.max_order + 2),
            gfp: Gfp(rng.gen()),
            cpu: rng.gen_range(0..nr_cpus + 2),
            trylock: false,
        },
        460..=859 => Op::Free {
            pick: rng.gen(),
            cpu: rng.gen_range(0..nr_cpus + 1),
        },
        860..=884 => Op::FreeOther {
            how: rng.gen(),
            pick: rng.gen(),
            arg: rng.gen(),
            cpu: rng.gen_range(0..nr_cpus),
        },
        885..=899 => Op::Split {
            pick: rng.gen(),
            new_order: rng.gen(),
        },
        900..=904 => Op::SplitOther {
            how: rng.gen(),
            pick: rng.gen(),
            arg: rng.gen(),
            new_order: rng.gen_range(0..=geo.spb_order),
        },
        905..=919 => {
            let order = order(rng);
            Op::AllocAt {
                pfn: rng.gen_range(0..limit) & !((1u64 << order) - 1),
                order,
                gfp: gfp(rng),
            }
        }
        920..=939 => Op::Contig {
            order: if rng.gen_ratio(3, 4) {
                geo.spb_order
            } else {
                rng.gen_range(geo.pageblock_order..=geo.spb_order)
            },
            gfp: Gfp::HIGHUSER_MOVABLE,
        },
        940..=944 => Op::Contig {
            order: rng.gen_range(0..=geo.spb_order + 1),
            gfp: gfp(rng),
        },
        945..=954 => Op::Compact {
            zone: rng.gen_range(0..nz),
            order: rng
                .gen_ratio(3, 4)
                .then(|| rng.gen_range(0..=geo.max_order)),
            prio: rng.gen(),
            mt: rng.gen(),
            daemon: rng.gen(),
        },
        955..=959 => Op::Drain,
        960..=964 => Op::LongtermPin { pick: rng.gen() },
        965..=984 => Op::Background {
            step_ns: [1_000_000, 50_000_000, 250_000_000, 1_000_000_000][rng.gen_range(0..4)],
        },
        985..=992 => Op::GrowNext {
            zone: rng.gen_range(0..nz),
            pages: [
                1,
                geo.pageblock_pages(),
                1u64 << geo.max_order,
                geo.spb_pages(),
            ][rng.gen_range(0..4)],
        },
        _ => {
            let start = rng.gen_range(0..limit + 64);
            let len = rng.gen_range(0..geo.spb_pages() * 2);
            Op::Grow {
                zone: rng.gen_range(0..=nz),
                start,
                end: if rng.gen_ratio(1, 8) {
                    start.saturating_sub(len)
                } else {
                    start + len
                },
            }
        }
    }
}
