//! `spb sweep`: a grid of scenarios x policies x memory sizes x seeds on all cores (or
//! `--jobs`), one JSON line per cell; `--shard I/N` (or `--shard env` under a Slurm job array
//! or a Kubernetes Indexed Job) runs a slice; `spb sweep --merge FILES` joins the shards and
//! builds the summary. Recipes: docs/sweep.md.

use std::collections::BTreeMap;
use std::path::PathBuf;

use spb_lab::scenario::units::{parse_duration, parse_memory};
use spb_lab::scenario::{Overrides, Scenario};
use spb_lab::sweep::{self, Cell, CellOutcome, CellResult, Grid, Seeds, Shard};
use spb_lab::{run_scenario, SimOptions};

use crate::cmd_run;
use crate::CliError;

/// Arguments of `spb sweep`.
#[derive(clap::Args, Debug)]
pub struct SweepArgs {
    /// Scenarios (comma-separated built-in names or TOML files) [default: seed-16g].
    #[arg(long, value_delimiter = ',')]
    pub scenarios: Vec<String>,
    /// Policies, comma-separated: vanilla, defrag, spb, spb-next, or spb-off:SWITCH,... (the run
    /// spec of `spb run --policy`) [default: vanilla,defrag,spb,spb-next].
    #[arg(long)]
    pub policies: Option<String>,
    /// Memory sizes, 64M to 15T each (comma-separated, e.g. 16G,64G) [default: the scenario's].
    #[arg(long, value_delimiter = ',', value_parser = parse_memory)]
    pub memory: Vec<u64>,
    /// Seeds: comma-separated, or a range A..B (B excluded) [default: 1].
    #[arg(long, default_value = "1", value_parser = Seeds::parse)]
    pub seeds: Seeds,
    /// Virtual duration of every cell (above 0, at most 24h).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<u64>,
    /// Run only cells I, I+N, ... of the grid: `I/N`, or `env` / `env/N` to take I (and N) from
    /// a Slurm job array ($SLURM_ARRAY_TASK_ID) or a Kubernetes Indexed Job
    /// ($JOB_COMPLETION_INDEX, N from $SPB_SHARDS); see docs/sweep.md. One invocation runs at
    /// most 1000000 cells.
    #[arg(long)]
    pub shard: Option<String>,
    /// Output file for the JSON lines [default: stdout]; with --merge, the merged lines.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Merge JSON-lines files from earlier (sharded) runs: print the summary, and write the
    /// merged lines (in cell order, as one unsharded sweep writes them) to --out.
    #[arg(long, num_args = 1..)]
    pub merge: Vec<PathBuf>,
    /// Run at most N cells at once, one per worker thread [default: the cores, fewer when that
    /// many of the grid's largest machines would not fit in the memory available]. Under a
    /// scheduler, the CPUs given to the task (e.g. `$SLURM_CPUS_PER_TASK`).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,
}

/// `--shard`: `I/N`, `env` or `env/N`.
pub fn parse_shard(s: &str) -> Result<Shard, CliError> {
    let r = if s.trim_start().starts_with("env") {
        Shard::from_env(s.trim(), |k| std::env::var(k).ok())
    } else {
        Shard::parse(s)
    };
    r.map_err(|e| CliError::Usage(format!("--shard: {e}")))
}

/// The grid's scenarios: each loaded once per name (cells clone it and apply their
/// overrides), and every (scenario, memory) machine of the grid as loaded.
struct Scenarios {
    by_name: BTreeMap<String, Scenario>,
    machines: Vec<Scenario>,
}

impl Scenarios {
    /// Load every scenario and check every (scenario, memory) machine before any cell runs,
    /// with the errors and exit codes of `spb run`.
    fn load(g: &Grid) -> Result<Scenarios, CliError> {
        let mut by_name = BTreeMap::new();
        let mut machines = Vec::new();
        for name in &g.scenarios {
            for mem in &g.memories {
                let o = Overrides {
                    memory: *mem,
                    duration_ns: g.duration_ns,
                    ..Overrides::default()
                };
                let l = cmd_run::load_scenario(Some(name), &o)?;
                if mem.is_none() {
                    by_name.insert(name.clone(), l.sc.clone());
                }
                machines.push(l.sc);
            }
            if !by_name.contains_key(name) {
                let l = cmd_run::load_scenario(Some(name), &Overrides::default())?;
                by_name.insert(name.clone(), l.sc);
            }
        }
        Ok(Scenarios { by_name, machines })
    }

    /// How many of `want` cells to run at once: `want`, fewer when that many of the grid's
    /// largest machines would not fit in the memory available (a machine that does not fit
    /// even alone is left to its cells' own check, which names it in their error).
    fn at_once(&self, want: usize) -> usize {
        self.machines
            .iter()
            .filter_map(|sc| spb_lab::input::scenario_machines_that_fit(sc, want).ok())
            .fold(want, usize::min)
            .max(1)
    }

    /// Run one cell: its scenario with the cell's memory, seed and duration, its machine built
    /// once ([`spb_lab::sim::layout_of`]).
    fn run_cell(&self, c: &Cell) -> Result<spb_lab::metrics::RunMetrics, String> {
        let mut sc = self.by_name[&c.scenario].clone();
        sc.apply(&Overrides {
            memory: c.memory,
            duration_ns: c.duration_ns,
            seed: Some(c.seed),
            layout: None,
            slab_model: None,
            pcp_free: None,
            skip_hints: None,
            sets: Vec::new(),
        });
        let layout = spb_lab::sim::layout_of(&sc)?;
        // cells run in parallel, one per worker thread
        spb_lab::input::check_scenario_memory(&sc, rayon::current_num_threads())?;
        let mut m = run_scenario(
            &sc,
            &SimOptions {
                policy: c.policy.clone(),
                check_every: 0,
                layout: Some(layout),
            },
            &mut |_| {},
        )?;
        m.timeline.clear();
        m.maps.clear();
        Ok(m)
    }
}

fn merge_files(a: &SweepArgs) -> Result<(), CliError> {
    if let Some(p) = &a.out {
        crate::output::check_file("--out", p)?;
    }
    let mut all = Vec::new();
    for f in &a.merge {
        use spb_lab::input::{read_text, SWEEP_FILE_MAX_BYTES};
        let text = read_text(f, "a sweep results file", SWEEP_FILE_MAX_BYTES).map_err(|e| {
            if e.io {
                CliError::Io(e.to_string())
            } else {
                CliError::Input(e.to_string())
            }
        })?;
        all.extend(
            sweep::read_lines(&f.display().to_string(), text.as_bytes())
                .map_err(CliError::Input)?,
        );
    }
    let merged = sweep::merge_lines(all);
    if let Some(p) = &a.out {
        let mut buf = Vec::new();
        sweep::write_lines(&merged, &mut buf)?;
        crate::output::atomic_write(p, &buf)?;
    }
    crate::output::print(sweep::summary_text(&sweep::merge(&merged)));
    Ok(())
}

pub fn run(a: SweepArgs) -> Result<(), CliError> {
    if !a.merge.is_empty() {
        return merge_files(&a);
    }
    let policies = cmd_run::parse_policies("--policies", a.policies.as_deref(), &[])?;
    let grid = Grid {
        scenarios: if a.scenarios.is_empty() {
            vec!["seed-16g".into()]
        } else {
            a.scenarios.iter().map(|s| s.trim().to_string()).collect()
        },
        policies,
        memories: if a.memory.is_empty() {
            vec![None]
        } else {
            a.memory.iter().map(|m| Some(*m)).collect()
        },
        seeds: a.seeds.clone(),
        duration_ns: a.duration,
    };
    let shard = a.shard.as_deref().map(parse_shard).transpose()?;
    if let Some(p) = &a.out {
        crate::output::check_file("--out", p)?;
    }
    let cells = grid
        .shard_cells(shard)
        .map_err(|e| CliError::Usage(format!("--seeds/--shard: {e}")))?;
    let scenarios = Scenarios::load(&grid)?;
    crate::output::eprint(format!("spb sweep: {} cells\n", cells.len()));
    let pb = crate::progress::bar(
        cells.len() as u64,
        "cells [{bar:40}] {pos}/{len}  {elapsed_precise} elapsed, ETA {eta_precise}",
    );
    let want = cmd_run::jobs_wanted(a.jobs, cells.len());
    let at_once = scenarios.at_once(want);
    if at_once < want {
        crate::output::eprint(format!(
            "spb sweep: {at_once} cell{} at a time ({want} would not fit in the memory \
             available; see --jobs)\n",
            if at_once == 1 { "" } else { "s" }
        ));
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(at_once)
        .build()
        .map_err(|e| CliError::Run(format!("cannot start {at_once} worker threads: {e}")))?;
    let mut buf: Vec<u8> = Vec::new();
    let results = pool
        .install(|| sweep::run(&cells, |c| scenarios.run_cell(c), &mut buf, || pb.inc(1)))
        .map_err(|e| CliError::Io(e.to_string()))?;
    pb.finish_and_clear();
    match &a.out {
        Some(p) => crate::output::atomic_write(p, &buf)?,
        None => crate::output::print(&buf),
    }
    crate::output::eprint(sweep::summary_text(&sweep::merge(&results)));
    let failed: Vec<&CellResult> = results
        .iter()
        .filter(|r| matches!(r.outcome, CellOutcome::Error(_)))
        .collect();
    if let Some(first) = failed.first() {
        let CellOutcome::Error(e) = &first.outcome else {
            unreachable!()
        };
        return Err(CliError::Run(format!(
            "{} of {} cells failed (their lines hold the errors); first, cell {} ({} {} seed {}): {e}",
            failed.len(),
            results.len(),
            first.cell.index,
            first.cell.scenario,
            first.cell.policy,
            first.cell.seed
        )));
    }
    Ok(())
}
