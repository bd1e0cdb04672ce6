//! Allocator benchmarks of issues 2 and 7: spb-alloc (`vanilla`, `defrag`, `spb`) against the
//! `buddy_system_allocator` and `bitmap-allocator` crates, on the identical operation sequence,
//! at 16 GiB and 1 TiB, on a machine that is half full and fragmented. See BENCHMARKS.md.
//!
//! ```text
//! cargo bench -p spb-alloc --bench alloc                       # default: short, ~4 min on 2 cores
//! cargo bench -p spb-alloc --bench alloc -- --measurement-time 3 --warm-up-time 1 --sample-size 20
//! SPB_BENCH_SIZES=16g SPB_BENCH_ALLOCS=vanilla,spb,bsa cargo bench -p spb-alloc --bench alloc -- order0
//! ```
//!
//! Environment: `SPB_BENCH_SIZES` (comma list of `16g`, `1t`; default both), `SPB_BENCH_ALLOCS`
//! (comma list of `vanilla`, `defrag`, `spb`, `bsa`, `bitmap`; default all). Benchmark ids are
//! `<size>_<workload>_<pcp|nopcp>/<allocator>`; the usual criterion filter argument applies to
//! them (the machine is still built and filled for each selected size and allocator).
//!
//! One criterion iteration is one op of the workload (see `Workload::op`); the summary table at
//! the end prints the median ns per op from criterion's estimates and the ratios.

#[path = "common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use criterion::{Criterion, Throughput};

/// The benchmark cases run on every (machine, allocator), in this order.
const CASES: [(Workload, bool); 6] = [
    (Workload::Order0Pairs, true),
    (Workload::Order0Pairs, false),
    (Workload::Order9Pairs, true),
    (Workload::Order9Pairs, false),
    (Workload::Mixed, true),
    (Workload::Refill, false),
];

fn case_group(m: Machine, w: Workload, pcp: bool) -> String {
    format!(
        "{}_{}_{}",
        m.name(),
        w.name(),
        if pcp { "pcp" } else { "nopcp" }
    )
}

fn env_list(name: &str) -> Option<Vec<String>> {
    std::env::var(name)
        .ok()
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.split(',').map(|x| x.trim().to_string()).collect())
}

fn output_dir() -> PathBuf {
    if let Some(h) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(h);
    }
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(t).join("criterion");
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/criterion")
}

/// Mean and median (ns per iteration) from criterion's `new/estimates.json`.
fn read_estimates(dir: &Path, group: &str, func: &str) -> Option<(f64, f64)> {
    let s = std::fs::read_to_string(dir.join(group).join(func).join("new/estimates.json")).ok()?;
    let pick = |key: &str| -> Option<f64> {
        let i = s.find(&format!("\"{key}\""))?;
        let rest = &s[i..];
        let j = rest.find("\"point_estimate\":")? + "\"point_estimate\":".len();
        let num: String = rest[j..]
            .chars()
            .take_while(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+'))
            .collect();
        num.parse().ok()
    };
    Some((pick("mean")?, pick("median")?))
}

fn peak_rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let l = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = l.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

struct SetupInfo {
    machine: Machine,
    kind: Kind,
    build: Duration,
    setup: Duration,
    managed: u64,
    allocated: u64,
    fill_failures: u64,
    meta: Option<f64>,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bench_mode = args.iter().any(|a| a == "--bench");
    let list_mode = args.iter().any(|a| a == "--list");
    let out = output_dir();
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(800))
        .output_directory(&out)
        .configure_from_args();

    // `cargo test --benches` runs this without --bench (criterion's test mode, debug build):
    // keep that to the 16 GiB machine.
    let default_sizes = if bench_mode { "16g,1t" } else { "16g" };
    let sizes: Vec<Machine> = env_list("SPB_BENCH_SIZES")
        .unwrap_or_else(|| default_sizes.split(',').map(String::from).collect())
        .iter()
        .map(|s| match s.as_str() {
            "16g" => Machine::G16,
            "1t" => Machine::T1,
            o => panic!("SPB_BENCH_SIZES: unknown size {o:?} (16g, 1t)"),
        })
        .collect();
    let kinds: Vec<Kind> = match env_list("SPB_BENCH_ALLOCS") {
        Some(v) => v
            .iter()
            .map(|s| {
                Kind::from_name(s)
                    .unwrap_or_else(|| panic!("SPB_BENCH_ALLOCS: unknown allocator {s:?}"))
            })
            .collect(),
        None => Kind::ALL.to_vec(),
    };

    let mut ran: Vec<(Machine, Workload, bool, Kind, u64)> = Vec::new();
    let mut setups: Vec<SetupInfo> = Vec::new();
    for &m in &sizes {
        for &k in &kinds {
            if list_mode {
                for &(w, pcp) in &CASES {
                    let mut g = c.benchmark_group(case_group(m, w, pcp));
                    g.bench_function(k.name(), |b| b.iter(|| ()));
                    g.finish();
                }
                continue;
            }
            let t0 = Instant::now();
            let (mut a, _ranges, managed) = build(k, m);
            let build_t = t0.elapsed();
            let st = setup(&mut a, managed);
            eprintln!(
                "[setup] {} {}: build {:.2?}, fill+fragment {:.2?}, {} of {} pages allocated, {} fill failures",
                m.name(),
                k.name(),
                build_t,
                st.setup_time,
                st.allocated_pages,
                managed,
                st.fill_failures
            );
            setups.push(SetupInfo {
                machine: m,
                kind: k,
                build: build_t,
                setup: st.setup_time,
                managed,
                allocated: st.allocated_pages,
                fill_failures: st.fill_failures,
                meta: a.spb().map(|x| x.metadata_bytes_per_page()),
            });
            for &(w, pcp) in &CASES {
                a.set_pcp(pcp);
                let mut prog = Program::new(w);
                let mut invoked = false;
                let mut g = c.benchmark_group(case_group(m, w, pcp));
                g.throughput(Throughput::Elements(1));
                g.bench_function(k.name(), |b| {
                    invoked = true;
                    b.iter_custom(|iters| {
                        let t = Instant::now();
                        a.run(&mut prog, iters);
                        t.elapsed()
                    })
                });
                g.finish();
                prog.release(&mut a);
                a.set_pcp(true);
                if invoked {
                    ran.push((m, w, pcp, k, prog.failures));
                }
            }
            drop(a);
        }
    }
    c.final_summary();
    if !bench_mode || list_mode || ran.is_empty() {
        return;
    }
    summary(&out, &ran, &setups);
}

fn summary(out: &Path, ran: &[(Machine, Workload, bool, Kind, u64)], setups: &[SetupInfo]) {
    // (group, kind) -> mean ns/op
    let mut ns: BTreeMap<(String, &'static str), (f64, f64)> = BTreeMap::new();
    let mut failures: BTreeMap<(String, &'static str), u64> = BTreeMap::new();
    for &(m, w, pcp, k, f) in ran {
        let g = case_group(m, w, pcp);
        if let Some(e) = read_estimates(out, &g, k.name()) {
            ns.insert((g.clone(), k.name()), e);
        }
        failures.insert((g, k.name()), f);
    }
    let mut s = String::new();
    let kinds: Vec<Kind> = Kind::ALL
        .iter()
        .copied()
        .filter(|k| ran.iter().any(|r| r.3 == *k))
        .collect();
    let _ = writeln!(
        s,
        "\n## spb-alloc benchmark summary (median ns/op from criterion; lower is better)\n"
    );
    let _ = write!(s, "| benchmark | op |");
    for k in &kinds {
        let _ = write!(s, " {} |", k.name());
    }
    let _ = writeln!(s, " vanilla vs bsa | spb / vanilla |");
    let _ = write!(s, "|---|---|");
    for _ in &kinds {
        let _ = write!(s, "---:|");
    }
    let _ = writeln!(s, "---:|---:|");
    let mut groups: Vec<(Machine, Workload, bool)> = Vec::new();
    for r in ran {
        if !groups.contains(&(r.0, r.1, r.2)) {
            groups.push((r.0, r.1, r.2));
        }
    }
    for &(m, w, pcp) in &groups {
        let g = case_group(m, w, pcp);
        let _ = write!(s, "| {g} | {} |", w.op());
        for k in &kinds {
            match ns.get(&(g.clone(), k.name())) {
                Some((_, median)) => {
                    let f = failures.get(&(g.clone(), k.name())).copied().unwrap_or(0);
                    let _ = write!(
                        s,
                        " {median:.1}{} |",
                        if f > 0 {
                            format!(" ({f} failed)")
                        } else {
                            String::new()
                        }
                    );
                }
                None => {
                    let _ = write!(s, " - |");
                }
            }
        }
        let get = |k: Kind| ns.get(&(g.clone(), k.name())).map(|e| e.1);
        match (get(Kind::Vanilla), get(Kind::Bsa)) {
            (Some(v), Some(b)) => {
                let _ = write!(s, " {:.2}x faster |", b / v);
            }
            _ => {
                let _ = write!(s, " - |");
            }
        }
        match (get(Kind::Spb), get(Kind::Vanilla)) {
            (Some(sp), Some(v)) => {
                let _ = writeln!(s, " {:.2}x |", sp / v);
            }
            _ => {
                let _ = writeln!(s, " - |");
            }
        }
    }
    let _ = writeln!(s, "\nops/s (millions) = 1000 / (ns/op).\n");
    let _ = writeln!(
        s,
        "| machine | allocator | build | fill+fragment | managed pages | allocated after setup | fill failures | metadata bytes/page |"
    );
    let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|---:|");
    for i in setups {
        let _ = writeln!(
            s,
            "| {} | {} | {:.2?} | {:.2?} | {} | {} | {} | {} |",
            i.machine.name(),
            i.kind.name(),
            i.build,
            i.setup,
            i.managed,
            i.allocated,
            i.fill_failures,
            i.meta.map_or("-".to_string(), |m| format!("{m:.4}"))
        );
    }
    if let Some(r) = peak_rss_mib() {
        let _ = writeln!(s, "\npeak RSS of the bench process: {r:.0} MiB");
    }
    println!("{s}");
    let _ = std::fs::create_dir_all(out);
    let _ = std::fs::write(out.join("spb-alloc-summary.md"), &s);
    println!(
        "(written to {})",
        out.join("spb-alloc-summary.md").display()
    );
}
