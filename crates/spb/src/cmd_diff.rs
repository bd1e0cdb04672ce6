//! `spb diff BEFORE AFTER`: are two sets of results the same but for their timings? The check
//! behind "results unchanged" (issue 16): a change that only makes the lab faster leaves every
//! run's JSON equal once the wall-clock fields (`spb_lab::diff::TIMING_KEYS`) are removed.
//! Runs are paired by scenario, policy, seed and memory size. Exit 0 when equal, 1 when not
//! (like `cmp`), 3 when a file is not results.

use std::path::PathBuf;

use crate::CliError;

/// Arguments of `spb diff`.
#[derive(clap::Args, Debug)]
pub struct DiffArgs {
    /// The first results file (`spb run --json`, `spb replay --json` or `spb sweep` lines).
    pub before: PathBuf,
    /// The second results file, same forms.
    pub after: PathBuf,
    /// Print at most this many differences (all are counted).
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub max: usize,
}

pub fn run(a: DiffArgs) -> Result<(), CliError> {
    let before = crate::results::load_runs(std::slice::from_ref(&a.before))?;
    let after = crate::results::load_runs(std::slice::from_ref(&a.after))?;
    let rep = spb_lab::diff::diff_runs(&before.runs, &after.runs);
    let mut out = String::new();
    for d in rep.differences.iter().take(a.max) {
        out.push_str(&format!("{d}\n"));
    }
    if rep.differences.len() > a.max {
        out.push_str(&format!("... and {} more\n", rep.differences.len() - a.max));
    }
    out.push_str(&format!(
        "{} of {} paired runs equal without timings ({} only in {}, {} only in {}); {} difference(s)\n",
        rep.equal,
        rep.paired,
        before.runs.len() - rep.paired,
        a.before.display(),
        after.runs.len() - rep.paired,
        a.after.display(),
        rep.differences.len()
    ));
    crate::output::print(out);
    if rep.is_equal() {
        Ok(())
    } else {
        Err(CliError::Run(format!(
            "{} and {} differ",
            a.before.display(),
            a.after.display()
        )))
    }
}
