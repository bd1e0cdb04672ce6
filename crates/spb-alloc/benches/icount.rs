//! Instruction-count harness of the allocator fast path (issue 7, item 2).
//!
//! Builds one machine in the benchmark state (half full, fragmented; see `common::setup`), runs
//! `N` warm-up ops of one workload, then `N` measured ops inside [`measured`], a non-inlined
//! function that callgrind is told to count alone:
//!
//! ```text
//! cargo bench -p spb-alloc --bench icount --no-run        # prints the binary path
//! valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*icount*measured*' \
//!     --callgrind-out-file=cg.out <binary> 16g vanilla order0_pairs pcp 20000
//! # instructions per op = the "totals:" line of cg.out / 20000
//! ```
//!
//! `crates/spb-alloc/benches/icount.sh` runs the whole matrix and prints the table recorded in
//! BENCHMARKS.md. Run natively (as `cargo bench` does, or with `--time`) it reports ns/op from a
//! plain clock instead, for a quick cross-check that needs neither valgrind nor criterion.

#[path = "common/mod.rs"]
mod common;

use std::time::Instant;

use common::*;

/// The measured region: `n` ops of `p` on `a`. Never inlined, so callgrind's
/// `--toggle-collect` can count exactly this call (and everything it calls).
#[inline(never)]
#[no_mangle]
pub fn icount_measured(a: &mut AnyAlloc, p: &mut Program, n: u64) {
    a.run(p, n);
}

fn scenario(m: Machine, k: Kind, w: Workload, pcp: bool, n: u64) -> f64 {
    let (mut a, _r, managed) = build(k, m);
    let st = setup(&mut a, managed);
    assert_eq!(st.fill_failures, 0, "fill failed");
    a.set_pcp(pcp);
    let mut p = Program::new(w);
    // warm-up: fill the window / live set and the per-CPU lists
    a.run(&mut p, n);
    let t = Instant::now();
    icount_measured(&mut a, &mut p, std::hint::black_box(n));
    let dt = t.elapsed();
    assert_eq!(p.failures, 0, "allocation failures in the workload");
    p.release(&mut a);
    dt.as_nanos() as f64 / n as f64
}

fn parse_machine(s: &str) -> Machine {
    match s {
        "16g" => Machine::G16,
        "1t" => Machine::T1,
        o => panic!("unknown machine {o:?} (16g, 1t)"),
    }
}

fn main() {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if args.len() >= 4 && matches!(args[0].as_str(), "16g" | "1t") {
        let m = parse_machine(&args[0]);
        let k =
            Kind::from_name(&args[1]).unwrap_or_else(|| panic!("unknown allocator {:?}", args[1]));
        let w = Workload::from_name(&args[2])
            .unwrap_or_else(|| panic!("unknown workload {:?}", args[2]));
        let pcp = match args[3].as_str() {
            "pcp" => true,
            "nopcp" => false,
            o => panic!("pcp or nopcp, not {o:?}"),
        };
        let n: u64 = args.get(4).map(|s| s.parse().expect("N")).unwrap_or(20_000);
        let ns = scenario(m, k, w, pcp, n);
        println!(
            "{} {} {} {} n={} {:.1} ns/op (wall clock; meaningless under valgrind)",
            args[0], args[1], args[2], args[3], n, ns
        );
        return;
    }
    // `cargo bench` (no scenario given): a quick wall-clock pass over the 16 GiB matrix
    // (`cargo test --benches`, a debug build without --bench: a smoke run).
    let n = if bench_mode { 200_000 } else { 2_000 };
    println!("icount: quick wall-clock pass (run under callgrind for instruction counts: see BENCHMARKS.md)");
    println!("| workload | vanilla | defrag | spb | buddy_system_allocator |");
    println!("|---|---:|---:|---:|---:|");
    for (w, pcp) in [
        (Workload::Order0Pairs, true),
        (Workload::Order0Pairs, false),
        (Workload::Order9Pairs, true),
        (Workload::Order9Pairs, false),
        (Workload::Mixed, true),
        (Workload::Refill, false),
    ] {
        let mut line = format!("| 16g_{}_{} |", w.name(), if pcp { "pcp" } else { "nopcp" });
        for k in [Kind::Vanilla, Kind::Defrag, Kind::Spb, Kind::Bsa] {
            line.push_str(&format!(" {:.1} |", scenario(Machine::G16, k, w, pcp, n)));
        }
        println!("{line}");
    }
}
