//! `spb bill FILE...`: the bill (`runs[].cost`, docs/metrics.md "The bill") of saved results
//! side by side: every run of every file (`spb run --json`, `spb replay --json`), grouped by
//! scenario, one column per run, whatever policies the files hold; the JSON lines of `spb sweep`
//! are read too (each cell a run, labelled with its seed when a policy repeats). Joins runs made apart (for
//! example a new policy's run beside an older vanilla/defrag/spb file). `--against POLICY` adds
//! issue 15's targets, every run judged against that policy's run of the same request stream;
//! `--summary` totals them per policy and lists the misses, for a sweep's many runs.

use std::path::PathBuf;

use crate::CliError;

/// Arguments of `spb bill`.
#[derive(clap::Args, Debug)]
pub struct BillArgs {
    /// Result files written by `spb run --json` or `spb replay --json`, or the JSON lines of
    /// `spb sweep` (every cell that ran is a run).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Also judge every run against this policy's run of the same scenario, seed and memory
    /// size by issue 15's targets (docs/metrics.md, "Targets"): value, bound, ok or MISS and by
    /// how much.
    #[arg(long, value_name = "POLICY")]
    pub against: Option<String>,
    /// With `--against`, print instead of the tables the targets' totals per policy (runs met
    /// out of runs judged, for each target) and every miss on one line, named by scenario,
    /// memory size, seed and policy: the form for a sweep's many runs.
    #[arg(long, requires = "against")]
    pub summary: bool,
}

pub fn run(a: BillArgs) -> Result<(), CliError> {
    let doc = crate::results::load_runs(&a.files)?;
    if let (true, Some(base)) = (a.summary, &a.against) {
        let t = spb_lab::report::targets_summary(&doc, base).map_err(CliError::Input)?;
        crate::output::print(t);
        return Ok(());
    }
    let t = spb_lab::report::bill_tables(&doc);
    if t.is_empty() {
        return Err(CliError::Input(format!(
            "{}: no run has a bill (`cost`): the files predate it, or hold only a replay's real column",
            a.files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    crate::output::print(t);
    if let Some(base) = &a.against {
        let t = spb_lab::report::targets_tables(&doc, base).map_err(CliError::Input)?;
        crate::output::print(t);
    }
    Ok(())
}
