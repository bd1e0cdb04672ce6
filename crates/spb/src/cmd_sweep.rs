//! `spb sweep`: a grid of scenarios x policies x memory sizes x seeds on all cores, one JSON
//! line per cell; `--shard I/N` runs a slice; `spb sweep --merge FILES` builds the summary.

use std::path::PathBuf;

use spb_lab::sweep::{self, Cell, Grid, Shard};
use spb_lab::{run_scenario, SimOptions};

use crate::cmd_run::{self, RunArgs, ScenarioArgs};
use crate::CliError;

/// Arguments of `spb sweep`.
#[derive(clap::Args, Debug)]
pub struct SweepArgs {
    /// Scenarios (comma-separated) [default: seed-16g].
    #[arg(long, value_delimiter = ',')]
    pub scenarios: Vec<String>,
    /// Policy labels: vanilla, defrag, spb, or spb-off:a+b for a switch set [default: all three].
    #[arg(long, value_delimiter = ',')]
    pub policies: Vec<String>,
    /// Memory sizes (comma-separated, e.g. 16G,64G) [default: the scenario's].
    #[arg(long, value_delimiter = ',')]
    pub memory: Vec<String>,
    /// Seeds (comma-separated, or a range A..B) [default: 1].
    #[arg(long, default_value = "1")]
    pub seeds: String,
    /// Virtual duration override for every cell.
    #[arg(long)]
    pub duration: Option<String>,
    /// Run only cells I, I+N, ... of the grid (I/N).
    #[arg(long)]
    pub shard: Option<String>,
    /// Output file for the JSON lines [default: stdout].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Merge JSON-lines files from earlier (sharded) runs and print the summary instead.
    #[arg(long, num_args = 1..)]
    pub merge: Vec<PathBuf>,
}

fn seeds(s: &str) -> Result<Vec<u64>, CliError> {
    let bad = || {
        CliError::Usage(format!(
            "--seeds: expected numbers separated by commas or a range A..B, got \"{s}\""
        ))
    };
    if let Some((a, b)) = s.split_once("..") {
        let (a, b): (u64, u64) = (
            a.trim().parse().map_err(|_| bad())?,
            b.trim().parse().map_err(|_| bad())?,
        );
        if b <= a {
            return Err(bad());
        }
        return Ok((a..b).collect());
    }
    s.split(',')
        .map(|x| x.trim().parse().map_err(|_| bad()))
        .collect()
}

fn run_cell(c: &Cell, duration: &Option<String>) -> Result<spb_lab::metrics::RunMetrics, String> {
    let (pol, off) = match c.policy.split_once("spb-off:") {
        Some((_, rest)) => (
            "spb".to_string(),
            rest.split('+').map(|s| s.to_string()).collect(),
        ),
        None => (c.policy.clone(), Vec::new()),
    };
    let ra = RunArgs {
        sc: ScenarioArgs {
            scenario: Some(c.scenario.clone()),
            seed: Some(c.seed),
            memory: c.memory.map(|b| format!("{}", b)),
            duration: duration.clone(),
        },
        policy: vec![pol],
        spb_off: off,
        ..RunArgs::default()
    };
    let sc = cmd_run::load(&ra).map_err(|e| e.to_string())?;
    let p = cmd_run::policies(&ra).map_err(|e| e.to_string())?.remove(0);
    // cells run in parallel, one per worker thread
    spb_lab::input::check_scenario_memory(&sc, rayon::current_num_threads())?;
    let mut m = run_scenario(
        &sc,
        &SimOptions {
            policy: p,
            check_every: 0,
        },
        &mut |_| {},
    )?;
    m.policy = c.policy.clone();
    m.timeline.clear();
    m.maps.clear();
    Ok(m)
}

pub fn run(a: SweepArgs) -> Result<(), CliError> {
    if !a.merge.is_empty() {
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
        crate::output::print(sweep::summary_text(&sweep::merge(&all)));
        return Ok(());
    }
    let mut memories = Vec::new();
    for m in &a.memory {
        let b = spb_lab::scenario::units::parse_size(m, false)
            .map_err(|e| CliError::Usage(format!("--memory: {e}")))?;
        match b {
            spb_lab::scenario::units::Size::Bytes(b)
                if (spb_lab::scenario::MIN_MEMORY..=spb_lab::scenario::MAX_MEMORY).contains(&b) =>
            {
                memories.push(Some(b))
            }
            _ => {
                return Err(CliError::Usage(format!(
                    "--memory: expected a RAM size from 64M to 16T, got \"{m}\""
                )))
            }
        }
    }
    if memories.is_empty() {
        memories.push(None);
    }
    let grid = Grid {
        scenarios: if a.scenarios.is_empty() {
            vec!["seed-16g".into()]
        } else {
            a.scenarios.clone()
        },
        policies: if a.policies.is_empty() {
            vec!["vanilla".into(), "defrag".into(), "spb".into()]
        } else {
            a.policies.clone()
        },
        memories,
        seeds: seeds(&a.seeds)?,
    };
    let shard = a
        .shard
        .as_deref()
        .map(Shard::parse)
        .transpose()
        .map_err(|e| CliError::Usage(format!("--shard: {e}")))?;
    if let Some(p) = &a.out {
        crate::output::check_file("--out", p)?;
    }
    let cells = grid.shard_cells(shard);
    crate::output::eprint(format!("spb sweep: {} cells\n", cells.len()));
    let dur = a.duration.clone();
    let mut buf: Vec<u8> = Vec::new();
    let results = sweep::run(&cells, |c| run_cell(c, &dur), &mut buf, |_| {})
        .map_err(|e| CliError::Io(e.to_string()))?;
    match &a.out {
        Some(p) => crate::output::atomic_write(p, &buf)?,
        None => crate::output::print(&buf),
    }
    crate::output::eprint(sweep::summary_text(&sweep::merge(&results)));
    Ok(())
}
