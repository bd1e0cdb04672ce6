//! The long-running soak: epochs of generated operations on per-epoch machines, and the
//! replay of one epoch.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

use super::{exec::*, ops::*, report::*};
use crate::layout::{Reservation, ReserveKind};
use crate::{Config, Geometry, MemoryLayout, Pfn, PfnRange, PolicyConfig, ZoneKind, ZoneSpec};

/// The simulated machine of a soak, in SPBs of `geometry`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SoakMemory {
    pub geometry: Geometry,
    /// SPBs of the Normal zone handed over at construction.
    pub normal_spbs: u64,
    /// SPBs at the top of the Normal zone left uninitialised (deferred init).
    pub uninit_spbs: u64,
    /// SPBs above the Normal zone that memory hot-add may bring.
    pub hotplug_spbs: u64,
    /// Pages cut off the top of the Normal zone, so that it ends inside its last pageblock
    /// (0: it ends on an SPB boundary).
    pub tail_pages: u64,
}

impl Default for SoakMemory {
    fn default() -> Self {
        SoakMemory {
            geometry: Geometry::TINY,
            normal_spbs: 12,
            uninit_spbs: 2,
            hotplug_spbs: 2,
            tail_pages: 0,
        }
    }
}

/// Options of [`run`].
#[derive(Clone, Debug)]
pub struct SoakOptions {
    /// Operations in total.
    pub ops: u64,
    pub seed: u64,
    pub policy: PolicyConfig,
    /// Run the full check (invariant checker + model) every this many operations (0: only at
    /// the end of each epoch).
    pub check_every: u64,
    pub memory: SoakMemory,
    pub nr_cpus: usize,
    /// Free everything, verify zero lost pages and start a fresh allocator every this many
    /// operations (0: one epoch), so hotplug growth and deferred init recur.
    pub epoch_ops: u64,
    /// Violation messages containing one of these are known, reported core bugs: counted in
    /// `known_bug_hits` instead of `violations` (see docs/reliability.md).
    pub known_bugs: Vec<String>,
    /// Draw each epoch's machine from `memory` and `nr_cpus` as upper bounds (see
    /// [`epoch_machine`]) instead of using them as they are.
    pub vary: bool,
}

impl Default for SoakOptions {
    fn default() -> Self {
        SoakOptions {
            ops: 1_000_000,
            seed: 1,
            policy: PolicyConfig::spb(),
            check_every: 1000,
            memory: SoakMemory::default(),
            nr_cpus: 4,
            epoch_ops: 100_000,
            known_bugs: Vec::new(),
            vary: true,
        }
    }
}

/// The soak layout: a DMA32 SPB (with a hole and a reservation) below a Normal zone of
/// `normal_spbs + uninit_spbs` SPBs whose top `uninit_spbs` are uninitialised, and room for
/// `hotplug_spbs` more above it. Returns the layout and the pfn limit.
pub fn soak_layout(mem: &SoakMemory) -> (MemoryLayout, Pfn) {
    let g = mem.geometry;
    let s = g.spb_pages();
    let pb = g.pageblock_pages();
    let mut d32 = ZoneSpec::plain(ZoneKind::Dma32, PfnRange::new(s, 2 * s));
    d32.holes.push(PfnRange::new(s + 2 * pb, s + 3 * pb));
    d32.reserved.push(Reservation {
        range: PfnRange::new(2 * s - pb / 2, 2 * s),
        kind: ReserveKind::BounceBuffers,
    });
    let top = (2 + mem.normal_spbs.max(1) + mem.uninit_spbs) * s;
    let nend = top - mem.tail_pages.min(pb - 1);
    let mut n = ZoneSpec::plain(ZoneKind::Normal, PfnRange::new(2 * s, nend));
    if mem.uninit_spbs > 0 {
        n.uninit
            .push(PfnRange::new(top - mem.uninit_spbs * s, nend));
    }
    n.reserved.push(Reservation {
        range: PfnRange::new(2 * s + 5, 2 * s + 7),
        kind: ReserveKind::KernelImage,
    });
    (
        MemoryLayout {
            geometry: g,
            zones: vec![d32, n],
        },
        top + mem.hotplug_spbs * s,
    )
}

/// The machine of one soak epoch: its layout, pfn limit and CPU count.
///
/// With [`SoakOptions::vary`] each epoch draws its own machine, with `memory` and `nr_cpus` as
/// upper bounds: 1..=normal_spbs Normal SPBs, 0..=uninit_spbs of them deferred, 0..=hotplug_spbs
/// of hot-add room, half the time a Normal zone that ends inside its last pageblock, and
/// 1..=nr_cpus CPUs. One fixed machine let a 10 M-operation soak miss a panic that needs a
/// partial last pageblock owned by a CPU (issue 13); a soak of many short epochs now covers
/// small and odd shapes too. The draw uses its own PRNG stream, so the operations of an epoch
/// are the same with and without `vary`.
pub fn epoch_machine(o: &SoakOptions, epoch: u64) -> (MemoryLayout, Pfn, usize) {
    let nr_cpus = o.nr_cpus.max(1);
    if !o.vary {
        let (layout, limit) = soak_layout(&o.memory);
        return (layout, limit, nr_cpus);
    }
    let mut rng = epoch_rng(o.seed ^ 0x5eed_1a70_0f00_0001, epoch);
    let m = &o.memory;
    let pb = m.geometry.pageblock_pages();
    let mem = SoakMemory {
        geometry: m.geometry,
        normal_spbs: rng.gen_range(1..=m.normal_spbs.max(1)),
        uninit_spbs: rng.gen_range(0..=m.uninit_spbs),
        hotplug_spbs: rng.gen_range(0..=m.hotplug_spbs),
        tail_pages: if rng.gen_bool(0.5) {
            rng.gen_range(1..pb)
        } else {
            0
        },
    };
    let (layout, limit) = soak_layout(&mem);
    (layout, limit, rng.gen_range(1..=nr_cpus))
}

/// The PRNG of one epoch: epochs are independent, so any epoch can be regenerated alone.
pub(crate) fn epoch_rng(seed: u64, epoch: u64) -> Pcg64 {
    Pcg64::seed_from_u64(seed ^ epoch.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// The allocator configuration of a soak.
pub fn soak_config(o: &SoakOptions, nr_cpus: usize) -> Config {
    Config {
        policy: o.policy.clone(),
        nr_cpus: nr_cpus.max(1),
        check_every: 0,
        ..Config::default()
    }
}

/// Regenerate the first `n` operations of epoch `epoch` of a soak, with the embedder's seed.
pub fn epoch_ops(o: &SoakOptions, epoch: u64, n: u64) -> (u64, Vec<Op>) {
    let (layout, limit, nr_cpus) = epoch_machine(o, epoch);
    let mut rng = epoch_rng(o.seed, epoch);
    let env_seed = rng.gen();
    let nz = layout.zones.len() as u8;
    let ops = (0..n)
        .map(|_| soak_op(&mut rng, layout.geometry, nz, limit, nr_cpus as u16))
        .collect();
    (env_seed, ops)
}

/// Replay `ops` on a fresh soak allocator, the full check every `check_every` operations (and
/// after the last). Returns the index of the first failing operation and the violation.
/// With `trace`, every concrete API call and its result is printed to stderr.
pub fn replay(
    o: &SoakOptions,
    epoch: u64,
    env_seed: u64,
    ops: &[Op],
    check_every: u64,
    trace: bool,
) -> Result<(), (usize, String)> {
    let (layout, limit, nr_cpus) = epoch_machine(o, epoch);
    let mut h = Harness::new(&layout, soak_config(o, nr_cpus), limit, env_seed, false)
        .map_err(|e| (0, e))?;
    h.known_bugs = o.known_bugs.clone();
    h.trace = trace;
    h.m.trace = trace;
    let n = ops.len();
    for (i, op) in ops.iter().enumerate() {
        let r = catch_unwind(AssertUnwindSafe(|| {
            h.step(op)?;
            if (check_every > 0 && (i as u64 + 1).is_multiple_of(check_every)) || i + 1 == n {
                h.check()?;
            }
            Ok::<(), String>(())
        }));
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err((i, e)),
            Err(p) => return Err((i, format!("panic: {}", panic_message(&*p)))),
        }
    }
    Ok(())
}

pub(crate) fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_string()
    }
}

/// Run a soak: `ops` random operations in epochs of `epoch_ops`, the full check every
/// `check_every` operations, and at the end of each epoch free everything and count lost pages.
/// A violation (a failed check, a result the model contradicts, a panic inside the allocator)
/// is counted and ends the epoch, since the state can no longer be trusted; the next epoch
/// starts from a fresh allocator.
pub fn run(o: &SoakOptions) -> SoakReport {
    let t0 = Instant::now();
    // the policy's name, plus the switches that differ from the defaults
    let mut rep = SoakReport {
        policy: o.policy.label(),
        ..SoakReport::default()
    };
    let epoch_len = if o.epoch_ops == 0 {
        o.ops.max(1)
    } else {
        o.epoch_ops
    };
    let mut done = 0u64;
    let note = |rep: &mut SoakReport, msg: String| {
        rep.violations += 1;
        if rep.violation_samples.len() < 10 {
            rep.violation_samples.push(msg);
        }
    };
    while done < o.ops {
        let epoch = rep.epochs;
        rep.epochs += 1;
        let (layout, limit, nr_cpus) = epoch_machine(o, epoch);
        let (geo, nz) = (layout.geometry, layout.zones.len() as u8);
        let mut rng = epoch_rng(o.seed, epoch);
        let mut h = match Harness::new(&layout, soak_config(o, nr_cpus), limit, rng.gen(), false) {
            Ok(h) => h,
            Err(e) => {
                note(&mut rep, format!("cannot build the allocator: {e}"));
                break;
            }
        };
        h.known_bugs = o.known_bugs.clone();
        let n = epoch_len.min(o.ops - done);
        let mut broken = false;
        for i in 0..n {
            let op = soak_op(&mut rng, geo, nz, limit, nr_cpus as u16);
            let r = catch_unwind(AssertUnwindSafe(|| {
                h.step(&op)?;
                if o.check_every > 0 && (i + 1) % o.check_every == 0 {
                    h.check()?;
                }
                Ok::<(), String>(())
            }));
            let err = match r {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e),
                Err(p) => Some(format!("panic: {}", panic_message(&*p))),
            };
            if let Some(e) = err {
                note(
                    &mut rep,
                    format!("seed {} epoch {} op {} ({:?}): {}", o.seed, epoch, i, op, e),
                );
                done += i + 1;
                broken = true;
                break;
            }
        }
        if !broken {
            done += n;
            let r = catch_unwind(AssertUnwindSafe(|| {
                h.check().and_then(|_| h.free_everything())
            }));
            match r {
                Ok(Ok(lost)) => rep.lost_pages += lost,
                Ok(Err(e)) => note(
                    &mut rep,
                    format!("seed {} epoch {} end: {}", o.seed, epoch, e),
                ),
                Err(p) => note(
                    &mut rep,
                    format!(
                        "seed {} epoch {} end: panic: {}",
                        o.seed,
                        epoch,
                        panic_message(&*p)
                    ),
                ),
            }
        }
        rep.counts.add(&h.c);
        rep.migrations += h.m.migrations;
        rep.reclaimed_pages += h.m.reclaimed_pages;
        rep.oom_kills += h.m.oom_kills;
        rep.known_bug_hits += h.known_hits;
    }
    rep.wall = t0.elapsed();
    rep
}
