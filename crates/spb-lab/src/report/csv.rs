//! Timeline CSV: one row per (run, sample).

use std::fmt::Write as _;
use std::path::Path;

use super::{atomic_write, ReportError};
use crate::metrics::RunMetrics;

/// Header of [`timeline_csv`].
pub const TIMELINE_CSV_HEADER: &str = "scenario,policy,seed,t,tainted,lost,lost_floor,free_pages,\
gigantic_obtainable,thp_attempts,thp_success,pages_migrated";

/// The timelines of `runs` as CSV (RFC 4180, `\n` line ends), header first, then the samples of
/// each run in order. `gigantic_obtainable` is empty where the sample was not probed;
/// `thp_*` and `pages_migrated` are cumulative, as in [`crate::metrics::TimelinePoint`].
pub fn timeline_csv(runs: &[&RunMetrics]) -> String {
    let mut out =
        String::with_capacity(64 + runs.iter().map(|r| r.timeline.len() * 64).sum::<usize>());
    out.push_str(TIMELINE_CSV_HEADER);
    out.push('\n');
    for r in runs {
        let prefix = format!("{},{},{}", field(&r.scenario), field(&r.policy), r.seed);
        for p in &r.timeline {
            let g = p
                .gigantic_obtainable
                .map(|g| g.to_string())
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "{prefix},{},{},{},{},{},{g},{},{},{}",
                p.t,
                p.tainted,
                p.lost,
                p.lost_floor,
                p.free_pages,
                p.thp_attempts,
                p.thp_success,
                p.pages_migrated
            );
        }
    }
    out
}

/// Writes [`timeline_csv`] of `runs` to `path` atomically (temporary file + rename).
pub fn write_csv_timeline(path: &Path, runs: &[&RunMetrics]) -> Result<(), ReportError> {
    atomic_write(path, timeline_csv(runs).as_bytes())
}

/// One CSV field, quoted when it holds a comma, quote or line break.
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
