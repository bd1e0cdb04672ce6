//! `spb soak`: a long random operation mix against the reference model under each policy,
//! with the invariant checker every N operations; exits 1 on any violation or lost page.
//! See docs/reliability.md.
use crate::CliError;
use spb_alloc::harness::{self as soak, SoakMemory, SoakOptions};
use spb_alloc::PolicyConfig;

fn parse_count(s: &str) -> Result<u64, String> {
    let t = s.replace('_', "");
    let (num, mul) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 1_000),
        Some('m' | 'M') => (&t[..t.len() - 1], 1_000_000),
        _ => (&t[..], 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mul))
        .ok_or_else(|| format!("expected a count like 10000000, 10_000_000 or 10M, got `{s}`"))
}

#[derive(clap::Args, Debug)]
pub struct SoakArgs {
    /// Operations per policy (accepts 10M, 200k).
    #[arg(long, default_value = "10000000", value_parser = parse_count)]
    pub ops: u64,
    /// Policies to soak, comma-separated: vanilla, defrag, spb or spb-off:SWITCH,...
    #[arg(long, default_value = "vanilla,defrag,spb", value_parser = parse_policies)]
    pub policy: Policies,
    /// PRNG seed (each policy gets seed + its index).
    #[arg(long, default_value_t = 1, conflicts_with = "seeds")]
    pub seed: u64,
    /// Soak every seed of the range A..B (B excluded) for each policy, --ops operations per
    /// seed, on all cores. Seeds are independent machines and operation streams.
    #[arg(long, value_name = "A..B", value_parser = parse_seed_range)]
    pub seeds: Option<std::ops::Range<u64>>,
    /// Use the same machine (--spbs, --cpus, SPB-aligned zone end) in every epoch instead of
    /// drawing each epoch's machine with those as upper bounds.
    #[arg(long)]
    pub fixed_machine: bool,
    /// Run the invariant checker and the model check every N operations.
    #[arg(long, default_value = "1000", value_parser = parse_count)]
    pub check_every: u64,
    /// Free everything, verify zero lost pages and rebuild the allocator every N operations
    /// (0: never, one epoch).
    #[arg(long, default_value = "100000", value_parser = parse_count)]
    pub epoch_ops: u64,
    /// Superpageblocks of the Normal zone at start (tiny geometry: 128 pages each).
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub spbs: u64,
    /// Simulated CPUs.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub cpus: u64,
    /// Count violations whose message contains this text as a known (reported) core bug
    /// instead of a violation; repeatable. See docs/reliability.md for the current list.
    #[arg(long, value_name = "TEXT")]
    pub known_bug: Vec<String>,
    /// Debugging a violation: replay only epoch E (its first --ops operations) of the first
    /// policy, tracing every API call, instead of soaking.
    #[arg(long, value_name = "E")]
    pub replay_epoch: Option<u64>,
    /// With --replay-epoch: first delta-debug the operations down to a short sequence that
    /// still shows a violation of the same kind.
    #[arg(long, requires = "replay_epoch")]
    pub minimize: bool,
}

/// A `--policy` list in the one run-spec syntax ([`spb_alloc::policy::spec`]).
#[derive(Clone, Debug)]
pub struct Policies(pub Vec<PolicyConfig>);

fn parse_policies(s: &str) -> Result<Policies, String> {
    spb_alloc::policy::spec::parse_list(s)
        .map(Policies)
        .map_err(|e| e.to_string())
}

/// The most seeds one `spb soak --seeds` runs per policy.
const MAX_SOAK_SEEDS: u64 = 1_000_000;

/// `A..B` (B excluded, A < B, at most [`MAX_SOAK_SEEDS`] seeds), parsed by the sweep's seed
/// parser.
fn parse_seed_range(s: &str) -> Result<std::ops::Range<u64>, String> {
    match spb_lab::sweep::Seeds::parse(s)? {
        spb_lab::sweep::Seeds::Range { start, end } if end - start <= MAX_SOAK_SEEDS => {
            Ok(start..end)
        }
        spb_lab::sweep::Seeds::Range { .. } => Err(format!(
            "expected at most {MAX_SOAK_SEEDS} seeds, got `{s}`; split the range over several runs"
        )),
        spb_lab::sweep::Seeds::List(_) => Err(format!(
            "expected a seed range A..B with A < B (B excluded), e.g. 1..65, got `{s}`"
        )),
    }
}

fn options(a: &SoakArgs, seed: u64, policy: &PolicyConfig) -> SoakOptions {
    SoakOptions {
        ops: a.ops,
        seed,
        policy: policy.clone(),
        check_every: a.check_every,
        memory: SoakMemory {
            normal_spbs: a.spbs,
            ..SoakMemory::default()
        },
        nr_cpus: a.cpus as usize,
        epoch_ops: a.epoch_ops,
        known_bugs: a.known_bug.clone(),
        vary: !a.fixed_machine,
    }
}

fn replay_epoch(a: &SoakArgs, epoch: u64) -> Result<(), CliError> {
    let kind = &a.policy.0[0];
    let o = options(a, a.seeds.as_ref().map_or(a.seed, |r| r.start), kind);
    let (env_seed, mut ops) = soak::epoch_ops(&o, epoch, a.ops);
    if a.minimize {
        crate::output::eprint(format!(
            "minimizing {} operations of epoch {epoch} ({}, seed {})\n",
            ops.len(),
            kind,
            o.seed
        ));
        ops = soak::minimize(&o, epoch, env_seed, &ops, a.check_every.max(1));
        crate::output::eprint(format!("{} operations left:\n", ops.len()));
        for (i, op) in ops.iter().enumerate() {
            crate::output::eprint(format!("  {i}: {op:?}\n"));
        }
    }
    crate::output::eprint("replay (check after every operation):\n");
    match soak::replay(&o, epoch, env_seed, &ops, 1, true) {
        Ok(()) => {
            crate::output::print(format!("no violation in {} operations\n", ops.len()));
            Ok(())
        }
        Err((i, e)) => Err(CliError::Run(format!(
            "violation at operation {i} ({:?}): {e}",
            ops[i]
        ))),
    }
}

pub fn run(a: SoakArgs) -> Result<(), CliError> {
    if let Some(e) = a.replay_epoch {
        return replay_epoch(&a, e);
    }
    let mut bad = Vec::new();
    let per_policy = a.seeds.as_ref().map_or(1, |r| r.end - r.start);
    // seeds soaked, with the elapsed time ticking; on a terminal only
    let pb = crate::progress::bar(
        per_policy.saturating_mul(a.policy.0.len() as u64),
        "{spinner} soak {msg} [{bar:30}] {pos}/{len} seeds  {elapsed_precise}  ETA {eta}",
    );
    if !pb.is_hidden() {
        pb.enable_steady_tick(std::time::Duration::from_millis(250));
    }
    for (i, kind) in a.policy.0.iter().enumerate() {
        let seeds = a.seeds.clone().unwrap_or_else(|| {
            let s = a.seed.wrapping_add(i as u64);
            s..s + 1
        });
        pb.set_message(kind.to_string());
        let r = soak_seeds(&a, kind, seeds, &pb);
        pb.suspend(|| crate::output::print(format!("{r}\n")));
        if !r.clean() {
            bad.push(format!(
                "{}: {} violations, {} lost pages",
                kind, r.violations, r.lost_pages
            ));
        }
    }
    pb.finish_and_clear();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(CliError::Run(format!("soak failed: {}", bad.join("; "))))
    }
}

/// Soak each seed of `seeds` (in parallel, one seed a task) and sum the reports.
fn soak_seeds(
    a: &SoakArgs,
    kind: &PolicyConfig,
    seeds: std::ops::Range<u64>,
    pb: &indicatif::ProgressBar,
) -> soak::SoakReport {
    use rayon::prelude::*;
    let t0 = std::time::Instant::now();
    let n = seeds.end - seeds.start;
    let mut reports: Vec<soak::SoakReport> = seeds
        .into_par_iter()
        .map(|seed| {
            let r = soak::run(&options(a, seed, kind));
            pb.inc(1);
            r
        })
        .collect();
    let mut total = reports.remove(0);
    for r in reports {
        total.add(r);
    }
    if n > 1 {
        total.policy = format!("{} ({} seeds)", total.policy, n);
    }
    total.wall = t0.elapsed();
    total
}
