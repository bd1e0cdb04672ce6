//! The per-CPU hit fast path (`src/fastpath.rs`) changes nothing observable: two allocators,
//! one with `Config::fast_path` on and one with it off, driven in lockstep by the same long
//! random operation sequence (mixed orders and gfp masks, frees on any CPU, invalid requests and
//! frees, background ticks with reclaim, compaction and OOM kills, drains, splits, contiguous
//! and placed allocations, zone growth, per-CPU lists switched off and on), must return the
//! same result for every operation, make the same calls into their embedders, emit the same
//! events, and hold the same state: vmstat, buddyinfo, pagetypeinfo, every page, pageblock and
//! SPB record, the free lists, every CPU's lists and their high/batch tuning, and the spb
//! policy's state.

use std::collections::HashMap;

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;
use spb_alloc::layout::{PfnRange, ZoneKind};
use spb_alloc::*;

/// An embedder whose behaviour depends only on the calls it gets: it tracks where each cookie
/// lives, refuses to move some, drops others, reclaims the oldest blocks with even cookies and
/// kills in batches. Every call is logged for the comparison.
#[derive(Default)]
struct Embedder {
    /// cookie -> (pfn, order), and cookies in allocation order.
    live: HashMap<u32, (Pfn, u8)>,
    order: Vec<u32>,
    log: Vec<String>,
}

impl Embedder {
    fn add(&mut self, cookie: u32, pfn: Pfn, order: u8) {
        assert!(self.live.insert(cookie, (pfn, order)).is_none());
        self.order.push(cookie);
    }
    fn remove(&mut self, cookie: u32) {
        self.live.remove(&cookie);
        if let Some(k) = self.order.iter().position(|&c| c == cookie) {
            self.order.remove(k);
        }
    }
    fn give_back(&mut self, pages: u64, even_only: bool, out: &mut Vec<FreedBlock>) -> u64 {
        let mut got = 0;
        let mut k = 0;
        while got < pages && k < self.order.len() {
            let c = self.order[k];
            if even_only && !c.is_multiple_of(2) {
                k += 1;
                continue;
            }
            let (pfn, order) = self.live[&c];
            out.push(FreedBlock { pfn, order });
            got += 1u64 << order;
            self.live.remove(&c);
            self.order.remove(k);
        }
        got
    }
}

impl Env for Embedder {
    fn migrate(&mut self, from: Pfn, to: Pfn, order: u8, cookie: u32) -> MigrateOutcome {
        self.log.push(format!(
            "migrate {from:#x} -> {to:#x} order {order} cookie {cookie}"
        ));
        if !self.live.contains_key(&cookie) || cookie.is_multiple_of(7) {
            return MigrateOutcome::Refused;
        }
        if cookie.is_multiple_of(11) {
            self.remove(cookie);
            return MigrateOutcome::Dropped;
        }
        self.live.insert(cookie, (to, order));
        MigrateOutcome::Moved
    }
    fn reclaim(&mut self, req: ReclaimRequest, out: &mut Vec<FreedBlock>) {
        let got = self.give_back(req.nr_pages, true, out);
        self.log.push(format!("reclaim {req:?} -> {got}"));
    }
    fn reclaimable_pages(&self) -> u64 {
        self.live
            .iter()
            .filter(|(c, _)| *c % 2 == 0)
            .map(|(_, &(_, o))| 1u64 << o)
            .sum()
    }
    fn oom_kill(&mut self, out: &mut Vec<FreedBlock>) -> bool {
        let got = self.give_back(64, false, out);
        self.log.push(format!("oom_kill -> {got}"));
        got > 0
    }
}

const GFPS: [Gfp; 12] = [
    Gfp::HIGHUSER_MOVABLE,
    Gfp::HIGHUSER_MOVABLE,
    Gfp::KERNEL,
    Gfp::KERNEL,
    Gfp(Gfp::KERNEL.0 | Gfp::RECLAIMABLE.0),
    Gfp::ATOMIC,
    Gfp::NOWAIT,
    Gfp::TRANSHUGE,
    Gfp::TRANSHUGE_LIGHT,
    Gfp(Gfp::KERNEL.0 | Gfp::GFP_DMA32.0),
    Gfp(Gfp::KERNEL.0 | Gfp::GFP_DMA.0),
    Gfp(Gfp::HIGHUSER_MOVABLE.0 | Gfp::NORETRY.0),
];

/// Everything observable about an allocator, for comparison.
fn state(a: &Allocator) -> Vec<(String, String)> {
    let mut v = vec![
        ("vmstat".to_string(), a.vmstat_text()),
        ("buddyinfo".to_string(), a.buddyinfo()),
        ("pagetypeinfo".to_string(), a.pagetypeinfo()),
        ("spb letters".to_string(), a.spb_letters()),
        ("pending".to_string(), format!("{:?}", a.pending())),
        (
            "misc".to_string(),
            format!(
                "now {} migrated {} free {} pcp {}",
                a.now_ns(),
                a.pages_migrated(),
                a.free_pages(),
                a.config().pcp
            ),
        ),
    ];
    for (i, z) in a.zones().iter().enumerate() {
        v.push((format!("zone {i} pcp"), format!("{:?}", z.pcp())));
        v.push((
            format!("zone {i} counters"),
            format!(
                "nr_free {:?} free {} hafree {} hares {} managed {} present {} wmark {:?} boost {} reserve {:?} {} span {:?}",
                z.nr_free(),
                z.free_pages(),
                z.nr_free_highatomic(),
                z.nr_reserved_highatomic(),
                z.managed_pages(),
                z.present_pages(),
                z.wmark(),
                z.watermark_boost(),
                z.lowmem_reserve(),
                spb_alloc::test_support::zone_private_state(z),
                z.span()
            ),
        ));
        v.push((format!("zone {i} pages"), format!("{:?}", z.pages())));
        v.push((
            format!("zone {i} pageblocks"),
            format!("{:?}", z.pageblocks()),
        ));
        v.push((format!("zone {i} spbs"), format!("{:?}", z.spbs())));
        v.push((
            format!("zone {i} spb lists"),
            format!("{:?}", z.spb_lists()),
        ));
    }
    if let Some(s) = a.policy().spb() {
        v.push((
            "spb".to_string(),
            format!(
                "{:?} {:?} {:?} {:?} {:?}",
                s.zones(),
                s.excluded(),
                s.work(),
                s.walks(),
                s.taint_causes()
            ),
        ));
    }
    v
}

fn assert_same_state(a: &Allocator, b: &Allocator, when: &str) {
    for ((ka, va), (_, vb)) in state(a).iter().zip(state(b).iter()) {
        assert!(
            va == vb,
            "{when}: {ka} differs with the fast path on and off\non:  {va}\noff: {vb}"
        );
    }
}

struct Run {
    a: Allocator,
    env: Embedder,
}

/// Drive `fast` (fast path on) and `slow` (off) through `ops` random operations in lockstep.
fn lockstep(
    name: &str,
    layout: &MemoryLayout,
    mut cfg: Config,
    seed: u64,
    ops: u64,
    grow: Option<(usize, PfnRange)>,
) -> u64 {
    cfg.event_capacity = 1 << 16;
    let mut runs: Vec<Run> = [true, false]
        .iter()
        .map(|&fp| Run {
            a: Allocator::new(
                layout,
                Config {
                    fast_path: fp,
                    ..cfg.clone()
                },
            )
            .unwrap(),
            env: Embedder::default(),
        })
        .collect();
    let mut rng = Pcg64::seed_from_u64(seed);
    let nr_cpus = cfg.nr_cpus as u16;
    let geo = layout.geometry;
    let mut cookie = 1u32;
    let mut now = 0u64;
    let mut hits = 0u64;
    let mut fill = true;
    let mut grown = false;
    for step in 0..ops {
        if step % 2000 == 0 {
            fill = rng.gen_bool(0.6);
        }
        let r: u32 = rng.gen_range(0..1000);
        let mut out: Vec<String> = Vec::new();
        let live_n = runs[0].env.order.len();
        if r < if fill { 620 } else { 420 } {
            // allocate
            let order = match rng.gen_range(0..100) {
                0..=54 => 0,
                55..=79 => rng.gen_range(1..=3),
                80..=92 => geo.pageblock_order,
                93..=98 => geo.max_order,
                _ => geo.max_order + 1,
            };
            let gfp = GFPS[rng.gen_range(0..GFPS.len())];
            let cpu = if rng.gen_range(0..200) == 0 {
                nr_cpus
            } else {
                rng.gen_range(0..nr_cpus)
            };
            let trylock = rng.gen_range(0..20) == 0;
            let req = AllocRequest {
                order,
                gfp,
                cpu,
                cookie,
                trylock,
            };
            for run in runs.iter_mut() {
                let res = run.a.alloc(req, &mut run.env);
                if let Ok(p) = res {
                    run.env.add(cookie, p, order);
                }
                out.push(format!("alloc {req:?} -> {res:?}"));
            }
            cookie += 1;
        } else if r < 960 && live_n > 0 {
            // free a live block (sometimes wrongly)
            let k = rng.gen_range(0..live_n);
            let c = runs[0].env.order[k];
            let (pfn, order) = runs[0].env.live[&c];
            let cpu = rng.gen_range(0..nr_cpus + 1);
            let kind = rng.gen_range(0..100);
            for run in runs.iter_mut() {
                let res = if kind == 0 {
                    run.a.free(pfn, order + 1, cpu) // wrong order
                } else if kind == 1 && order > 0 {
                    run.a.free(pfn + 1, 0, cpu) // a tail
                } else {
                    let res = run.a.free(pfn, order, cpu);
                    if res.is_ok() {
                        run.env.remove(c);
                    }
                    res
                };
                out.push(format!(
                    "free {pfn:#x} {order} cpu {cpu} kind {kind} -> {res:?}"
                ));
            }
            if kind == 2 {
                // a double free
                for run in runs.iter_mut() {
                    let res = run.a.free(pfn, order, cpu);
                    out.push(format!("double free {pfn:#x} -> {res:?}"));
                }
            }
        } else if r < 975 {
            now += rng.gen_range(1..300_000_000u64);
            for run in runs.iter_mut() {
                run.a.background(now, &mut run.env);
                out.push("background".to_string());
            }
        } else if r < 980 {
            for run in runs.iter_mut() {
                run.a.drain_all_pcp();
            }
        } else if r < 985 && live_n > 0 {
            // split an allocation into pieces freed separately
            let k = rng.gen_range(0..live_n);
            let c = runs[0].env.order[k];
            let (pfn, order) = runs[0].env.live[&c];
            if order > 0 && order <= geo.max_order {
                let new_order = rng.gen_range(0..order);
                for run in runs.iter_mut() {
                    let res = run.a.split(pfn, order, new_order);
                    out.push(format!("split {pfn:#x} {order} -> {new_order}: {res:?}"));
                    if res.is_ok() {
                        run.env.remove(c);
                        let mut p = pfn;
                        let mut ck = cookie;
                        while p < pfn + (1u64 << order) {
                            run.env.add(ck, p, new_order);
                            let _ = run.a.set_cookie(p, ck);
                            p += 1u64 << new_order;
                            ck += 1;
                        }
                    }
                }
                cookie += 1 << (order - new_order);
            }
        } else if r < 988 {
            let order = rng.gen_range(geo.pageblock_order..=geo.max_order + 2);
            for run in runs.iter_mut() {
                let res = run
                    .a
                    .alloc_contig(order, Gfp::HIGHUSER_MOVABLE, cookie, &mut run.env);
                if let Ok(p) = res {
                    run.env.add(cookie, p, order);
                }
                out.push(format!("alloc_contig {order} -> {res:?}"));
            }
            cookie += 1;
        } else if r < 993 {
            let z = rng.gen_range(0..layout.zones.len());
            let span = runs[0].a.zones()[z].span();
            let order = rng.gen_range(0..=geo.max_order);
            let pfn =
                (span.start + rng.gen_range(0..span.end - span.start)) & !((1u64 << order) - 1);
            for run in runs.iter_mut() {
                let res = run.a.alloc_at(pfn, order, Gfp::KERNEL, cookie);
                if res.is_ok() {
                    run.env.add(cookie, pfn, order);
                }
                out.push(format!("alloc_at {pfn:#x} {order} -> {res:?}"));
            }
            cookie += 1;
        } else if r < 995 {
            // per-CPU lists off (drained first) or back on
            for run in runs.iter_mut() {
                if run.a.config().pcp {
                    run.a.drain_all_pcp();
                }
                let c = spb_alloc::test_support::config_mut(&mut run.a);
                c.pcp = !c.pcp;
            }
        } else if let (Some((zi, range)), false, true) = (grow, grown, step > ops / 3) {
            grown = true;
            for run in runs.iter_mut() {
                let res = run.a.grow_zone(zi, range);
                out.push(format!("grow {zi} {range:?} -> {res:?}"));
            }
        }
        let (x, y) = runs.split_at_mut(1);
        let (f, s) = (&mut x[0], &mut y[0]);
        for k in (0..out.len()).step_by(2) {
            assert_eq!(
                out[k],
                out[k + 1],
                "{name} step {step}: results differ with the fast path on (left) and off (right)"
            );
        }
        let ef: Vec<_> = f.a.drain_events().collect();
        let es: Vec<_> = s.a.drain_events().collect();
        assert_eq!(ef, es, "{name} step {step}: events differ");
        assert_eq!(
            f.env.log, s.env.log,
            "{name} step {step}: embedder calls differ"
        );
        f.env.log.clear();
        s.env.log.clear();
        if step % 997 == 0 {
            assert_same_state(&f.a, &s.a, &format!("{name} step {step}"));
        }
        hits += out
            .iter()
            .filter(|o| o.starts_with("alloc Alloc") && o.contains("Ok("))
            .count() as u64
            / 2;
    }
    assert_same_state(&runs[0].a, &runs[1].a, &format!("{name} end"));
    runs[0].a.check().unwrap();
    runs[1].a.check().unwrap();
    hits
}

fn ops() -> u64 {
    if cfg!(debug_assertions) {
        20_000
    } else {
        250_000
    }
}

/// A named layout and, optionally, a zone growth to apply during the run.
type NamedLayout = (&'static str, MemoryLayout, Option<(usize, PfnRange)>);

fn layouts() -> Vec<NamedLayout> {
    let g = Geometry::TINY;
    let s = g.spb_pages();
    // 16 GiB i440fx rescaled to the tiny geometry: DMA, DMA32, Normal with reservations
    let x86 = MemoryLayout::x86_64(
        16 << 30,
        &X86Options {
            geometry: g,
            ..X86Options::i440fx()
        },
    )
    .unwrap();
    // two zones, the last SPB of Normal uninitialised until grow_zone hands it over
    let mut two = MemoryLayout::tiny_two_zone();
    let ni = two.zones.len() - 1;
    let end = two.zones[ni].span.end;
    two.zones[ni].uninit.push(PfnRange::new(end - s, end));
    // one zone that grows upwards (hot-add) past its end
    let one = MemoryLayout::single_zone(g, ZoneKind::Normal, s, 6 * s);
    vec![
        ("x86-16g-tiny", x86, None),
        ("two-zone", two, Some((ni, PfnRange::new(end - s, end)))),
        ("one-zone", one, Some((0, PfnRange::new(7 * s, 8 * s + 40)))),
    ]
}

fn check_policy(kind: PolicyKind, seed: u64) {
    for (i, (name, layout, grow)) in layouts().into_iter().enumerate() {
        for (nr_cpus, check_every) in [(2usize, 0u64), (3, 0), (1, 0), (4, 211)] {
            let cfg = Config {
                policy: PolicyConfig::of(kind),
                nr_cpus,
                check_every,
                ..Config::default()
            };
            let n = if check_every > 0 { ops() / 5 } else { ops() };
            let label = format!("{} {name} cpus {nr_cpus}", kind.name());
            let hits = lockstep(
                &label,
                &layout,
                cfg,
                seed * 1000 + i as u64 * 10 + nr_cpus as u64,
                n,
                grow,
            );
            assert!(hits > n / 10, "{label}: only {hits} successful allocations");
        }
    }
}

#[test]
fn fast_path_identical_vanilla() {
    check_policy(PolicyKind::Vanilla, 1);
}

#[test]
fn fast_path_identical_defrag() {
    check_policy(PolicyKind::Defrag, 2);
}

#[test]
fn fast_path_identical_spb() {
    check_policy(PolicyKind::Spb, 3);
}
