//! Sweeps: a grid of (scenario, policy, switch set, memory size, seed) cells, each run
//! independently and deterministically, written as one JSON line per cell. `--shard I/N` runs
//! every N-th cell starting at I, so any batch scheduler can spread a large grid over machines;
//! [`merge`] reads the JSON lines of all shards back and builds the summary.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

use crate::metrics::RunMetrics;

/// The axes of a sweep.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grid {
    pub scenarios: Vec<String>,
    /// Policy labels: `vanilla`, `defrag`, `spb`, or `spb-off:a,b` for a switch set.
    pub policies: Vec<String>,
    /// Memory sizes in bytes (`None` = the scenario's own).
    pub memories: Vec<Option<u64>>,
    pub seeds: Vec<u64>,
}

/// One cell of the grid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cell {
    /// Position in the full grid (stable across shards).
    pub index: usize,
    pub scenario: String,
    pub policy: String,
    pub memory: Option<u64>,
    pub seed: u64,
}

/// A shard: cells `i, i + n, i + 2n, ...`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// Parse `I/N` (0 <= I < N).
    pub fn parse(s: &str) -> Result<Shard, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("shard `{}`: expected I/N, e.g. 0/4", s))?;
        let index: usize = i
            .trim()
            .parse()
            .map_err(|_| format!("shard `{}`: I must be a whole number", s))?;
        let count: usize = n
            .trim()
            .parse()
            .map_err(|_| format!("shard `{}`: N must be a whole number", s))?;
        if count == 0 || index >= count {
            return Err(format!("shard `{}`: expected 0 <= I < N", s));
        }
        Ok(Shard { index, count })
    }
}

impl Grid {
    /// Every cell, in a fixed order (scenario, memory, policy, seed).
    pub fn cells(&self) -> Vec<Cell> {
        let mut v = Vec::new();
        for s in &self.scenarios {
            for m in &self.memories {
                for p in &self.policies {
                    for seed in &self.seeds {
                        v.push(Cell {
                            index: v.len(),
                            scenario: s.clone(),
                            policy: p.clone(),
                            memory: *m,
                            seed: *seed,
                        });
                    }
                }
            }
        }
        v
    }
    /// The cells of one shard.
    pub fn shard_cells(&self, shard: Option<Shard>) -> Vec<Cell> {
        let all = self.cells();
        match shard {
            None => all,
            Some(sh) => all
                .into_iter()
                .filter(|c| c.index % sh.count == sh.index)
                .collect(),
        }
    }
}

/// One line of sweep output.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CellResult {
    pub cell: Cell,
    /// The run's metrics, or why it failed.
    #[serde(flatten)]
    pub outcome: CellOutcome,
}

/// A cell's outcome.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum CellOutcome {
    Metrics(Box<RunMetrics>),
    Error(String),
}

/// Run `cells` in parallel with `runner`, writing one JSON line per finished cell to `out` in
/// cell order. `progress` is called after each cell.
pub fn run<F, W>(
    cells: &[Cell],
    runner: F,
    out: &mut W,
    mut progress: impl FnMut(usize),
) -> std::io::Result<Vec<CellResult>>
where
    F: Fn(&Cell) -> Result<RunMetrics, String> + Sync,
    W: Write,
{
    use rayon::prelude::*;
    let results: Vec<CellResult> = cells
        .par_iter()
        .map(|c| CellResult {
            cell: c.clone(),
            outcome: match runner(c) {
                Ok(m) => CellOutcome::Metrics(Box::new(m)),
                Err(e) => CellOutcome::Error(e),
            },
        })
        .collect();
    for (k, r) in results.iter().enumerate() {
        serde_json::to_writer(&mut *out, r)?;
        out.write_all(b"\n")?;
        progress(k + 1);
    }
    Ok(results)
}

/// Read JSON lines written by [`run`] (from any number of shards). Errors name the source and
/// line.
pub fn read_lines(name: &str, r: impl BufRead) -> Result<Vec<CellResult>, String> {
    let mut v = Vec::new();
    for (i, line) in r.lines().enumerate() {
        let line = line.map_err(|e| format!("{}:{}: {}", name, i + 1, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let c: CellResult = serde_json::from_str(&line)
            .map_err(|e| format!("{}:{}: expected a sweep result line: {}", name, i + 1, e))?;
        v.push(c);
    }
    Ok(v)
}

/// Summary of one (scenario, memory, policy) over seeds.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Summary {
    pub runs: u32,
    pub errors: u32,
    pub tainted_mean: f64,
    pub lost_mean: f64,
    pub lost_floor_mean: f64,
    pub gigantic_mean: f64,
    pub limit_mean: f64,
    pub migrated_mean: f64,
    pub failures_mean: f64,
}

/// Merge results (any shards, any order, duplicates by index dropped) into summaries keyed by
/// (scenario, memory, policy).
pub fn merge(results: &[CellResult]) -> BTreeMap<(String, Option<u64>, String), Summary> {
    let mut seen = std::collections::BTreeSet::new();
    let mut acc: BTreeMap<(String, Option<u64>, String), Summary> = BTreeMap::new();
    for r in results {
        if !seen.insert(r.cell.index) {
            continue;
        }
        let e = acc
            .entry((
                r.cell.scenario.clone(),
                r.cell.memory,
                r.cell.policy.clone(),
            ))
            .or_default();
        match &r.outcome {
            CellOutcome::Error(_) => e.errors += 1,
            CellOutcome::Metrics(m) => {
                e.runs += 1;
                e.tainted_mean += m.normal.spb_tainted as f64;
                e.lost_mean += m.normal.spb_lost as f64;
                e.lost_floor_mean += m.normal.lost_floor as f64;
                e.gigantic_mean += m.gigantic.allocatable as f64;
                e.limit_mean += m.gigantic.limit as f64;
                e.migrated_mean += m.pages_migrated as f64;
                e.failures_mean += (m.alloc_failures.values().sum::<u64>() + m.oom_kills) as f64;
            }
        }
    }
    for s in acc.values_mut() {
        let n = s.runs.max(1) as f64;
        s.tainted_mean /= n;
        s.lost_mean /= n;
        s.lost_floor_mean /= n;
        s.gigantic_mean /= n;
        s.limit_mean /= n;
        s.migrated_mean /= n;
        s.failures_mean /= n;
    }
    acc
}

/// The merged summary as a text table.
pub fn summary_text(m: &BTreeMap<(String, Option<u64>, String), Summary>) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "{:<16} {:>8} {:<28} {:>5} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10} {:>9}\n",
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
        let mem = mem
            .map(|b| format!("{}G", b >> 30))
            .unwrap_or_else(|| "-".into());
        s.push_str(&format!(
            "{:<16} {:>8} {:<28} {:>5} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>10.0} {:>9.1}{}\n",
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

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> Grid {
        Grid {
            scenarios: vec!["a".into(), "b".into()],
            policies: vec!["vanilla".into(), "spb".into()],
            memories: vec![None, Some(8 << 30)],
            seeds: vec![1, 2, 3],
        }
    }

    fn fake(c: &Cell) -> Result<RunMetrics, String> {
        if c.seed == 3 && c.scenario == "b" {
            return Err("boom".into());
        }
        let mut m = RunMetrics {
            scenario: c.scenario.clone(),
            policy: c.policy.clone(),
            seed: c.seed,
            ..Default::default()
        };
        m.normal.spb_tainted = c.seed + if c.policy == "spb" { 0 } else { 10 };
        Ok(m)
    }

    #[test]
    fn shards_partition_the_grid() {
        let g = grid();
        let all = g.cells();
        assert_eq!(all.len(), 24);
        let mut idx: Vec<usize> = (0..3)
            .flat_map(|i| g.shard_cells(Some(Shard { index: i, count: 3 })))
            .map(|c| c.index)
            .collect();
        idx.sort();
        assert_eq!(idx, (0..24).collect::<Vec<_>>());
    }

    #[test]
    fn shard_parse_errors() {
        assert!(Shard::parse("1/4").is_ok());
        for bad in ["4/4", "x/2", "1", "1/0"] {
            assert!(Shard::parse(bad).is_err(), "{}", bad);
        }
    }

    #[test]
    fn run_and_merge_shards_equals_whole() {
        let g = grid();
        let mut whole = Vec::new();
        let r_all = run(&g.cells(), fake, &mut whole, |_| {}).unwrap();
        let mut lines = Vec::new();
        for i in 0..2 {
            let mut out = Vec::new();
            run(
                &g.shard_cells(Some(Shard { index: i, count: 2 })),
                fake,
                &mut out,
                |_| {},
            )
            .unwrap();
            lines.extend(read_lines("shard", &out[..]).unwrap());
        }
        assert_eq!(merge(&lines), merge(&r_all));
        let m = merge(&read_lines("whole", &whole[..]).unwrap());
        let s = &m[&("a".to_string(), None, "spb".to_string())];
        assert_eq!((s.runs, s.tainted_mean), (3, 2.0));
        assert_eq!(m[&("b".to_string(), None, "spb".to_string())].errors, 1);
        assert!(summary_text(&m).contains("(1 errors)"));
    }

    #[test]
    fn bad_lines_name_the_place() {
        let e = read_lines("x.jsonl", &b"{\"cell\":1}\n"[..]).unwrap_err();
        assert!(e.starts_with("x.jsonl:1:"), "{}", e);
    }
}
