//! Saved results read back: the files of `spb run --json` and `spb replay --json`
//! (`{"runs": [...]}`) and the JSON lines of `spb sweep` (every cell that ran is a run), for
//! the commands that join runs made apart (`spb bill`, `spb diff`).

use std::path::PathBuf;

use spb_lab::input::{read_text, SWEEP_FILE_MAX_BYTES};
use spb_lab::metrics::RunsDoc;

use crate::CliError;

/// Every run of every file, in file order. A file that is neither form is bad input (exit 3)
/// named with its line and column.
pub fn load_runs(files: &[PathBuf]) -> Result<RunsDoc, CliError> {
    let mut doc = RunsDoc::default();
    for f in files {
        let text = read_text(
            f,
            "a results file ({\"runs\": [...]})",
            SWEEP_FILE_MAX_BYTES,
        )
        .map_err(|e| {
            if e.io {
                CliError::Io(e.to_string())
            } else {
                CliError::Input(e.to_string())
            }
        })?;
        if text.trim_start().starts_with("{\"cell\"") {
            let lines = spb_lab::sweep::read_lines(&f.display().to_string(), text.as_bytes())
                .map_err(CliError::Input)?;
            doc.runs
                .extend(lines.into_iter().filter_map(|c| match c.outcome {
                    spb_lab::sweep::CellOutcome::Metrics(m) => Some(*m),
                    spb_lab::sweep::CellOutcome::Error(_) => None,
                }));
            continue;
        }
        let d: RunsDoc = serde_json::from_str(&text).map_err(|e| {
            CliError::Input(format!(
                "{}:{}:{}: {e}: expected a results file ({{\"runs\": [...]}}) written by `spb run --json` or `spb replay --json`",
                f.display(),
                e.line(),
                e.column()
            ))
        })?;
        doc.runs.extend(d.runs);
    }
    Ok(doc)
}
