//! Reports: a self-contained HTML page, CSV time series, plain-text tables and terminal maps.
//!
//! Everything here reads the data contract of [`crate::metrics`] and nothing else.
//!
//! * [`write_report`] writes `dir/index.html` (one page: inline CSS and inline SVG, no network,
//!   no script) plus `dir/timeline-<scenario>.csv` for every scenario, each file atomically.
//! * [`summary_table`] is the plain-text side-by-side table printed after `spb run`.
//! * [`bill_table`] / [`bill_tables`] render the bill (`runs[].cost`) side by side.
//! * [`targets_tables`] judges every run against a baseline policy's run of the same request
//!   stream by issue 15's targets (docs/metrics.md, "Targets"); [`targets_summary`] totals them
//!   per policy over many runs (a sweep) and lists every miss on one line.
//! * [`terminal_map`] draws one superpageblock map with the kernel's migratetype letters.
//! * [`write_csv_timeline`] / [`timeline_csv`] write the time series of runs as CSV.
//! * [`sample_doc`] builds a deterministic synthetic [`RunsDoc`] for tests and demos.
//!
//! Runs are grouped by scenario (in order of first appearance); within a scenario, every run is a
//! column, labelled by its policy (and its seed when a policy appears more than once).

mod bill;
mod csv;
mod html;
mod map;
mod plots;
mod sample;
mod targets;
#[cfg(test)]
mod tests;
mod text;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::metrics::{RunMetrics, RunsDoc};

pub use self::bill::{bill_table, bill_tables};
pub use self::csv::{timeline_csv, write_csv_timeline};
pub use self::map::{group_size, terminal_map, worst_rank, TERMINAL_WIDTH};
pub use self::sample::{sample_doc, sample_doc_with, SampleSpec};
pub use self::targets::{judge, targets_summary, targets_tables, Verdict, TARGETS};
pub use self::text::{ablation_table, end_maps, run_table, summary_table, sweep_table};

/// Number of plots per scenario in the HTML report.
pub const PLOTS_PER_SCENARIO: usize = 6;

/// Errors of report writing.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("plot: {0}")]
    Plot(String),
}

impl ReportError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        ReportError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Writes `dir/index.html` and `dir/timeline-<scenario>.csv` (one per scenario).
///
/// The page is rendered completely in memory first; each file is then written to a temporary
/// file in `dir` and renamed into place, `index.html` last, so an error never leaves a
/// half-written report (an older `index.html` stays intact).
pub fn write_report(dir: &Path, doc: &RunsDoc, title: &str) -> Result<(), ReportError> {
    fs::create_dir_all(dir).map_err(|e| ReportError::io(dir, e))?;
    for (name, bytes) in render_report(doc, title)? {
        atomic_write(&dir.join(name), &bytes)?;
    }
    Ok(())
}

/// The files of the report [`write_report`] writes, rendered in memory: `(file name, bytes)`,
/// the CSV files first and `index.html` last (for a caller with its own writer, such as the
/// `spb` command's all-or-nothing directory writer).
pub fn render_report(doc: &RunsDoc, title: &str) -> Result<Vec<(String, Vec<u8>)>, ReportError> {
    let groups = group_scenarios(doc);
    let csv_names = csv_file_names(&groups);
    let page = html::render_page(doc, &groups, &csv_names, title)?;
    let mut files: Vec<(String, Vec<u8>)> = groups
        .iter()
        .zip(&csv_names)
        .map(|(g, name)| (name.clone(), timeline_csv(&g.runs).into_bytes()))
        .collect();
    files.push(("index.html".into(), page.into_bytes()));
    Ok(files)
}

/// Element counts that a browser should find in the page [`write_report`] writes for `doc`,
/// computed from the document alone (used by the headless-browser test).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReportExpect {
    pub scenarios: usize,
    /// `svg.plot` elements.
    pub plots: usize,
    /// `svg.spb-row` elements: one per SPB per run per map moment.
    pub map_rows: usize,
    /// `.map-panel` headers: one per run per map moment.
    pub map_panels: usize,
    /// `table.summary` elements.
    pub summary_tables: usize,
}

/// See [`ReportExpect`].
pub fn report_expect(doc: &RunsDoc) -> ReportExpect {
    let groups = group_scenarios(doc);
    let map_rows = doc
        .runs
        .iter()
        .map(|r| r.maps.iter().map(|m| m.rows.len()).sum::<usize>())
        .sum();
    let map_panels = doc.runs.iter().map(|r| r.maps.len()).sum();
    ReportExpect {
        scenarios: groups.len(),
        plots: groups.len() * PLOTS_PER_SCENARIO,
        map_rows,
        map_panels,
        summary_tables: groups.len(),
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename.
pub(crate) fn atomic_write(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let res = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)
    })();
    if let Err(e) = res {
        let _ = fs::remove_file(&tmp);
        return Err(ReportError::io(path, e));
    }
    Ok(())
}

/// The runs of one scenario, in document order.
pub(crate) struct Group<'a> {
    pub scenario: &'a str,
    pub runs: Vec<&'a RunMetrics>,
    /// Column label of each run: the policy, plus what tells its runs apart when the policy
    /// repeats (the memory size when those runs differ in it, the seed when they differ in it
    /// or in nothing else).
    pub labels: Vec<String>,
}

pub(crate) fn group_scenarios(doc: &RunsDoc) -> Vec<Group<'_>> {
    let mut groups: Vec<Group<'_>> = Vec::new();
    for r in &doc.runs {
        match groups.iter_mut().find(|g| g.scenario == r.scenario) {
            Some(g) => g.runs.push(r),
            None => groups.push(Group {
                scenario: &r.scenario,
                runs: vec![r],
                labels: vec![],
            }),
        }
    }
    for g in &mut groups {
        g.labels = g
            .runs
            .iter()
            .map(|r| {
                let same: Vec<&&RunMetrics> =
                    g.runs.iter().filter(|o| o.policy == r.policy).collect();
                if same.len() == 1 {
                    return r.policy.clone();
                }
                let mems = same.iter().any(|o| o.memory_bytes != r.memory_bytes);
                let seeds = same.iter().any(|o| o.seed != r.seed);
                let mut l = r.policy.clone();
                if mems {
                    l.push(' ');
                    l.push_str(&short_size(r.memory_bytes));
                }
                if seeds || !mems {
                    l.push_str(&format!(" s{}", r.seed));
                }
                l
            })
            .collect();
    }
    groups
}

/// `timeline-<scenario>.csv` with the scenario reduced to `[A-Za-z0-9._-]`, made unique.
fn csv_file_names(groups: &[Group<'_>]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for g in groups {
        let base = format!("timeline-{}", slug(g.scenario));
        let mut name = format!("{base}.csv");
        let mut n = 2;
        while names.contains(&name) {
            name = format!("{base}-{n}.csv");
            n += 1;
        }
        names.push(name);
    }
    names
}

/// `s` reduced to `[A-Za-z0-9._-]` (others become `_`), never empty.
pub(crate) fn slug(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    // a scenario name can be long: keep file names well below NAME_MAX (255 bytes)
    let out: String = out.chars().take(160).collect();
    if out.is_empty() || out.starts_with('.') {
        format!("_{out}")
    } else {
        out
    }
}

/// Which value of a summary row is best.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Better {
    Lower,
    Higher,
    /// Informational; nothing is highlighted.
    None,
}

/// One cell of the summary table.
pub(crate) struct Cell {
    /// Main value as shown.
    pub text: String,
    /// Secondary, smaller text (a floor or limit), may be empty.
    pub note: String,
    /// Value compared to find the best cell.
    pub key: Option<f64>,
    /// Tooltip (HTML title), may be empty.
    pub tip: String,
}

/// One row of the summary table (one cell per run of the scenario).
pub(crate) struct SummaryRow {
    pub label: &'static str,
    pub help: &'static str,
    pub better: Better,
    pub cells: Vec<Cell>,
}

impl SummaryRow {
    /// `best[i]` is true for the cells holding the best value, when the values differ.
    pub fn best(&self) -> Vec<bool> {
        let keys: Vec<f64> = self.cells.iter().filter_map(|c| c.key).collect();
        let none = vec![false; self.cells.len()];
        if self.better == Better::None || keys.len() < 2 {
            return none;
        }
        let (lo, hi) = keys
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &k| {
                (lo.min(k), hi.max(k))
            });
        if lo == hi {
            return none;
        }
        let target = if self.better == Better::Lower { lo } else { hi };
        self.cells.iter().map(|c| c.key == Some(target)).collect()
    }
}

fn num(v: u64) -> Cell {
    Cell {
        text: thousands(v),
        note: String::new(),
        key: Some(v as f64),
        tip: String::new(),
    }
}

/// The rows of the per-scenario summary table, shared by the HTML and the plain-text table.
pub(crate) fn summary_rows(runs: &[&RunMetrics]) -> Vec<SummaryRow> {
    let row = |label, help, better, f: &dyn Fn(&RunMetrics) -> Cell| SummaryRow {
        label,
        help,
        better,
        cells: runs.iter().map(|r| f(r)).collect(),
    };
    vec![
        row(
            "Normal SPBs",
            "1 GiB superpageblocks in the Normal zone",
            Better::None,
            &|r| num(r.normal.spb_total),
        ),
        row(
            "Tainted SPBs",
            "Normal SPBs holding a non-movable page at the end (tainted floor)",
            Better::Lower,
            &|r| Cell {
                note: format!("floor {}", r.normal.tainted_floor),
                ..num(r.normal.spb_tainted)
            },
        ),
        row(
            "Tainted SPBs, peak",
            "Largest number of tainted Normal SPBs at any sample",
            Better::Lower,
            &|r| num(r.normal.spb_tainted_peak),
        ),
        row(
            "Lost SPBs",
            "Normal SPBs tainted, pinned or with a hole at the end (lost floor)",
            Better::Lower,
            &|r| Cell {
                note: format!("floor {}", r.normal.lost_floor),
                ..num(r.normal.spb_lost)
            },
        ),
        row(
            "Clean SPBs",
            "Normal SPBs with only free and movable pages",
            Better::Higher,
            &|r| num(r.normal.spb_clean),
        ),
        row(
            "Empty SPBs",
            "Normal SPBs entirely free",
            Better::Higher,
            &|r| num(r.normal.spb_empty),
        ),
        row(
            "1 GiB pages obtained",
            "End-of-run 1 GiB probe result (1 GiB limit)",
            Better::Higher,
            &|r| Cell {
                note: format!("of {}", r.gigantic.limit),
                ..num(r.gigantic.allocatable)
            },
        ),
        row(
            "Probe pages migrated",
            "Pages the 1 GiB probe migrated",
            Better::Lower,
            &|r| num(r.gigantic.probe_pages_migrated),
        ),
        row(
            "THP success",
            "THP fault/collapse successes / attempts",
            Better::Higher,
            &|r| {
                if r.thp.attempts == 0 {
                    Cell {
                        text: "—".into(),
                        note: "no attempts".into(),
                        key: None,
                        tip: String::new(),
                    }
                } else {
                    let pct = 100.0 * r.thp.success as f64 / r.thp.attempts as f64;
                    Cell {
                        text: format!("{pct:.1}%"),
                        note: format!(
                            "{}/{}",
                            compact(r.thp.success as f64),
                            compact(r.thp.attempts as f64)
                        ),
                        key: Some((pct * 10.0).round() / 10.0),
                        tip: String::new(),
                    }
                }
            },
        ),
        row(
            "Pages migrated",
            "Pages migrated over the whole run",
            Better::Lower,
            &|r| num(r.pages_migrated),
        ),
        row(
            "Allocation failures",
            "Failed allocations, all gfp masks and orders",
            Better::Lower,
            &|r| {
                let total: u64 = r.alloc_failures.values().sum();
                let tip = r
                    .alloc_failures
                    .iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect::<Vec<_>>()
                    .join("\n");
                Cell { tip, ..num(total) }
            },
        ),
        row("OOM kills", "OOM killer invocations", Better::Lower, &|r| {
            num(r.oom_kills)
        }),
        row(
            "Lost SPBs, all zones",
            "Lost SPBs over all zones (of all SPBs)",
            Better::Lower,
            &|r| Cell {
                note: format!("of {}", r.all_zones.spb_total),
                ..num(r.all_zones.spb_lost)
            },
        ),
    ]
}

/// `1234567` → `1,234,567`.
pub(crate) fn thousands(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Short number for axes and notes: `950`, `12.5k`, `3.2M`.
pub(crate) fn compact(v: f64) -> String {
    let a = v.abs();
    let (d, suffix) = if a >= 1e9 {
        (1e9, "G")
    } else if a >= 1e6 {
        (1e6, "M")
    } else if a >= 1e4 {
        (1e3, "k")
    } else {
        (1.0, "")
    };
    let x = v / d;
    let s = if suffix.is_empty() {
        if (x - x.round()).abs() < 1e-9 {
            format!("{}", x.round() as i64)
        } else {
            format!("{x:.1}")
        }
    } else if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    };
    let s = s.strip_suffix(".0").map(str::to_string).unwrap_or(s);
    format!("{s}{suffix}")
}

/// A memory size as the command line takes it: `8G`, `1T`, `512M` (else [`human_bytes`]).
pub(crate) fn short_size(b: u64) -> String {
    const T: u64 = 1 << 40;
    const G: u64 = 1 << 30;
    const M: u64 = 1 << 20;
    match b {
        0 => human_bytes(b),
        _ if b.is_multiple_of(T) => format!("{}T", b / T),
        _ if b.is_multiple_of(G) => format!("{}G", b / G),
        _ if b.is_multiple_of(M) => format!("{}M", b / M),
        _ => human_bytes(b),
    }
}

/// Human size of a byte count: `16 GiB`, `512 MiB`.
pub(crate) fn human_bytes(b: u64) -> String {
    const G: u64 = 1 << 30;
    const M: u64 = 1 << 20;
    if b >= G && b.is_multiple_of(G) {
        format!("{} GiB", b / G)
    } else if b >= G {
        format!("{:.1} GiB", b as f64 / G as f64)
    } else if b >= M {
        format!("{} MiB", b / M)
    } else {
        format!("{b} B")
    }
}
