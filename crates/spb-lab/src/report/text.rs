//! Plain-text side-by-side summary for stdout.

use std::fmt::Write as _;

use super::{group_scenarios, human_bytes, summary_rows};
use crate::metrics::RunsDoc;

/// The summary of every scenario as plain text: one block per scenario, one column per run
/// (policy), one row per metric of the Normal zone unless said otherwise. Floors and limits
/// follow the value in parentheses; the best value of a row is marked `*` when the runs differ.
///
/// ```text
/// == scenario kernel-build (16 GiB, 600 s virtual) ==
///                          mainline       spb
/// Tainted SPBs          9 (floor 2)   3 (floor 2)*
/// ```
pub fn summary_table(doc: &RunsDoc) -> String {
    let mut out = String::new();
    for g in group_scenarios(doc) {
        let r0 = g.runs[0];
        let _ = writeln!(
            out,
            "== scenario {} ({}, {} s virtual) ==",
            g.scenario,
            human_bytes(r0.memory_bytes),
            super::map::fmt_t(r0.virtual_seconds)
        );
        let rows = summary_rows(&g.runs);
        let mut table: Vec<Vec<String>> = Vec::new();
        let mut header = vec![String::new()];
        header.extend(g.labels.iter().map(|l| format!("{l} ")));
        table.push(header);
        let multi = g.runs.len() > 1;
        for row in &rows {
            let best = row.best();
            let mut line = vec![row.label.to_string()];
            for (c, b) in row.cells.iter().zip(best) {
                let mut s = c.text.clone();
                if !c.note.is_empty() {
                    let _ = write!(s, " ({})", c.note);
                }
                if multi {
                    s.push(if b { '*' } else { ' ' });
                }
                line.push(s);
            }
            table.push(line);
        }
        let cols = table[0].len();
        let widths: Vec<usize> = (0..cols)
            .map(|i| {
                table
                    .iter()
                    .map(|l| l[i].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for line in &table {
            let mut s = format!("{:<w$}", line[0], w = widths[0]);
            for i in 1..cols {
                let _ = write!(s, "  {:>w$}", line[i], w = widths[i]);
            }
            out.push_str(s.trim_end());
            out.push('\n');
        }
        if multi {
            out.push_str("(* best of the row)\n");
        }
        out.push('\n');
    }
    out
}
