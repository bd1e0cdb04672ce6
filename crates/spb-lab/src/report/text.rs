//! The plain-text renderers: the side-by-side summary, the tables of `spb run`, `spb ablate` and
//! `spb sweep`, and the end-of-run maps of `spb run --map`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{group_scenarios, human_bytes, summary_rows};

use crate::metrics::{RunDetails, RunMetrics, RunsDoc, SweepSummary};

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

/// The side-by-side table of `spb run` (and `ablate`'s runs): one column per policy, one row
/// per metric, reading the typed fields of [`RunMetrics`] and [`RunMetrics::details`]. The
/// header names the scenario of the first run (every run of a table runs the same one).
pub fn run_table(runs: &[RunMetrics]) -> String {
    let mut s = String::new();
    if let Some(r) = runs.first() {
        let _ = writeln!(
            s,
            "scenario {}  seed {}  memory {}  {} virtual s",
            r.scenario,
            r.seed,
            human_bytes(r.memory_bytes),
            r.virtual_seconds
        );
    }
    let det: Vec<RunDetails> = runs.iter().map(|r| r.details()).collect();
    type Cell<'a> = &'a dyn Fn(&RunMetrics, &RunDetails) -> String;
    let mut rows: Vec<(&str, Vec<String>)> = Vec::new();
    let mut row = |name: &'static str, f: Cell| {
        rows.push((name, runs.iter().zip(&det).map(|(r, d)| f(r, d)).collect()))
    };
    let opt = |v: Option<f64>, scale: f64| v.map(|v| format!("{:.2}", v / scale));
    row("Normal SPBs", &|r, _| r.normal.spb_total.to_string());
    row("  tainted (end / peak)", &|r, _| {
        format!("{} / {}", r.normal.spb_tainted, r.normal.spb_tainted_peak)
    });
    row("  tainted floor", &|r, _| {
        r.normal.tainted_floor.to_string()
    });
    row("  pinned", &|r, _| r.normal.spb_pinned.to_string());
    row("  lost (floor)", &|r, _| {
        format!("{} ({})", r.normal.spb_lost, r.normal.lost_floor)
    });
    row("  clean / empty", &|r, _| {
        format!("{} / {}", r.normal.spb_clean, r.normal.spb_empty)
    });
    row("all zones: SPBs tainted / lost", &|r, _| {
        format!("{} / {}", r.all_zones.spb_tainted, r.all_zones.spb_lost)
    });
    row("1 GiB probe / limit", &|r, _| {
        format!("{} / {}", r.gigantic.allocatable, r.gigantic.limit)
    });
    row("  Normal probe / limit", &|_, d| {
        format!(
            "{} / {}",
            d.gigantic_normal_allocatable, d.gigantic_normal_limit
        )
    });
    row("  probe pages migrated", &|r, _| {
        r.gigantic.probe_pages_migrated.to_string()
    });
    row("  probe stopped at", &|_, d| {
        d.probe_stop.clone().unwrap_or_else(|| "-".into())
    });
    row("1 GiB requests during run", &|_, d| {
        format!("{} / {}", d.hugetlb_obtained, d.hugetlb_requested)
    });
    row("THP success / attempts", &|r, _| {
        let pct = if r.thp.attempts > 0 {
            100.0 * r.thp.success as f64 / r.thp.attempts as f64
        } else {
            0.0
        };
        format!("{:.0}% of {}", pct, r.thp.attempts)
    });
    row("pages migrated", &|r, _| r.pages_migrated.to_string());
    row("compact stall / success", &|r, _| {
        format!("{} / {}", r.vm("compact_stall"), r.vm("compact_success"))
    });
    row("extfrag events (fragmenting)", &|r, _| {
        format!(
            "{} ({})",
            r.vm("extfrag_events"),
            r.vm("extfrag_fragmenting")
        )
    });
    row("kswapd wakes / direct stalls", &|r, _| {
        format!("{} / {}", r.vm("kswapd_wake"), r.alloc_stalls())
    });
    row("alloc failures", &|r, _| r.failures().to_string());
    row("  without __GFP_NOWARN", &|_, d| {
        d.alloc_failures_warned
            .map(|v| v.to_string())
            .unwrap_or_default()
    });
    row("OOM kills", &|r, _| r.oom_kills.to_string());
    row("events", &|r, _| r.events.to_string());
    row("events/s (M)", &|r, _| {
        format!("{:.2}", r.events as f64 / r.wall_seconds.max(1e-9) / 1e6)
    });
    row("  workload only (no probe)", &|_, d| {
        opt(d.workload_events_per_second, 1e6).unwrap_or_default()
    });
    row("  without the set-up", &|_, d| {
        opt(d.loop_events_per_second, 1e6).unwrap_or_default()
    });
    row("wall s", &|r, _| format!("{:.1}", r.wall_seconds));
    row("SPBs visited per walk (mean)", &|_, d| {
        opt(d.mean_spbs_visited, 1.0).unwrap_or_else(|| "-".into())
    });
    row("metadata bytes per page", &|_, d| {
        opt(d.metadata_bytes_per_page, 1.0).unwrap_or_default()
    });
    let w = rows
        .iter()
        .flat_map(|(_, c)| c.iter().map(|x| x.len()))
        .chain(runs.iter().map(|r| r.policy.len()))
        .max()
        .unwrap_or(8)
        .max(10);
    let _ = write!(s, "{:<32}", "");
    for r in runs {
        let _ = write!(s, "  {:>w$}", r.policy, w = w);
    }
    s.push('\n');
    for (name, cells) in rows {
        let _ = write!(s, "{:<32}", name);
        for c in cells {
            let _ = write!(s, "  {:>w$}", c, w = w);
        }
        s.push('\n');
    }
    s
}

/// The end-of-run SPB map of every run (`spb run --map`), drawn by the one terminal map
/// renderer ([`super::terminal_map`]) that `spb map` uses too.
pub fn end_maps(runs: &[RunMetrics]) -> String {
    let mut s = String::new();
    for r in runs {
        if let Some(m) = r.maps.last() {
            let _ = writeln!(s, "\nSPB map at the end, {}:", r.policy);
            s.push_str(&super::terminal_map(m, false));
        }
    }
    s
}

/// The table of `spb ablate`: one row per configuration, with deltas against `spb` all on.
pub fn ablation_table(runs: &[RunMetrics]) -> String {
    let base = runs.iter().find(|r| r.policy == "spb");
    let mut s = String::new();
    s.push_str(&format!(
        "{:<34} {:>8} {:>6} {:>6} {:>10} {:>12} {:>9}\n",
        "configuration", "tainted", "lost", "1GiB", "limit", "migrated", "failures"
    ));
    for r in runs {
        let fails = r.failures() + r.oom_kills;
        let d = |x: i64, b: i64| {
            if base.is_some() && r.policy != "spb" {
                format!(" ({:+})", x - b)
            } else {
                String::new()
            }
        };
        let (bt, bg, bm) = base
            .map(|b| {
                (
                    b.normal.spb_tainted as i64,
                    b.gigantic.allocatable as i64,
                    b.pages_migrated as i64,
                )
            })
            .unwrap_or((0, 0, 0));
        s.push_str(&format!(
            "{:<34} {:>8} {:>6} {:>6} {:>10} {:>12} {:>9}\n",
            r.policy,
            format!(
                "{}{}",
                r.normal.spb_tainted,
                d(r.normal.spb_tainted as i64, bt)
            ),
            r.normal.spb_lost,
            format!(
                "{}{}",
                r.gigantic.allocatable,
                d(r.gigantic.allocatable as i64, bg)
            ),
            r.gigantic.limit,
            format!("{}{}", r.pages_migrated, d(r.pages_migrated as i64, bm)),
            fails
        ));
    }
    s
}

/// The summary of a sweep (`spb sweep`, `spb sweep --merge`) as a text table: one row per
/// (scenario, memory, policy), means over the seeds.
pub fn sweep_table(m: &BTreeMap<(String, Option<u64>, String), SweepSummary>) -> String {
    let pw = m.keys().map(|k| k.2.len()).max().unwrap_or(0).max(28);
    let sw = m.keys().map(|k| k.0.len()).max().unwrap_or(0).max(16);
    let mut s = String::new();
    s.push_str(&format!(
        "{:<sw$} {:>8} {:<pw$} {:>5} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10} {:>9}\n",
        "scenario",
        "memory",
        "policy",
        "runs",
        "tainted",
        "lost",
        "floor",
        "1GiB",
        "limit",
        "migrated",
        "failures"
    ));
    for ((sc, mem, pol), v) in m {
        let mem = mem.map(human_bytes).unwrap_or_else(|| "-".into());
        s.push_str(&format!(
            "{:<sw$} {:>8} {:<pw$} {:>5} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>10.0} {:>9.1}{}\n",
            sc,
            mem,
            pol,
            v.runs,
            v.tainted_mean,
            v.lost_mean,
            v.lost_floor_mean,
            v.gigantic_mean,
            v.limit_mean,
            v.migrated_mean,
            v.failures_mean,
            if v.errors > 0 { format!("  ({} errors)", v.errors) } else { String::new() }
        ));
    }
    s
}
