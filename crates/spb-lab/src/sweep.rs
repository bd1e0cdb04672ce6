//! Sweeps: a grid of (scenario, policy, memory size, seed) cells, each run independently and
//! deterministically, written as one JSON line per cell. `--shard I/N` runs every N-th cell
//! starting at I, so any batch scheduler (a Slurm job array, a Kubernetes Indexed Job, `xargs
//! -P`; docs/sweep.md) can spread a large grid over machines; [`merge`] reads the JSON lines of
//! all shards back and builds the summary.
//!
//! The grid is never expanded: a cell is computed from its index ([`Grid::cell`]), so a seed
//! range of 2^64 - 1 seeds costs nothing until its cells run, and one invocation runs at most
//! [`MAX_CELLS`] cells (more are split with `--shard`).

use std::collections::BTreeMap;
use std::io::{BufRead, Read, Write};

use serde::{Deserialize, Serialize};
use spb_alloc::PolicyConfig;

use crate::metrics::{RunMetrics, SweepSummary as Summary};
pub use crate::report::sweep_table as summary_text;

/// The most cells one invocation (one shard) runs; a larger grid needs `--shard I/N`.
pub const MAX_CELLS: u64 = 1_000_000;

/// The seeds of a sweep: a list, or a range `A..B` (B excluded) that is never expanded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seeds {
    List(Vec<u64>),
    Range { start: u64, end: u64 },
}

impl Seeds {
    /// `1,2,7` or `A..B` with A < B (B excluded).
    pub fn parse(s: &str) -> Result<Seeds, String> {
        let t = s.trim();
        if let Some((a, b)) = t.split_once("..") {
            let num = |x: &str, which: &str| {
                x.trim().parse::<u64>().map_err(|_| {
                    format!(
                        "expected a range A..B of seeds (whole numbers from 0 to {}), got \"{s}\" ({which} is not one)",
                        u64::MAX
                    )
                })
            };
            let (a, b) = (num(a, "A")?, num(b, "B")?);
            if b <= a {
                return Err(format!(
                    "expected a range A..B with A < B (B excluded), got \"{s}\", which holds no seed"
                ));
            }
            return Ok(Seeds::Range { start: a, end: b });
        }
        let v = t
            .split(',')
            .map(|x| x.trim().parse::<u64>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| {
                format!("expected seeds separated by commas or a range A..B, got \"{s}\"")
            })?;
        Ok(Seeds::List(v))
    }
    /// How many seeds.
    pub fn len(&self) -> u64 {
        match self {
            Seeds::List(v) => v.len() as u64,
            Seeds::Range { start, end } => end - start,
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The `i`-th seed (`i < len`).
    pub fn get(&self, i: u64) -> u64 {
        match self {
            Seeds::List(v) => v[i as usize],
            Seeds::Range { start, .. } => start + i,
        }
    }
}

/// The axes of a sweep.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grid {
    pub scenarios: Vec<String>,
    pub policies: Vec<PolicyConfig>,
    /// Memory sizes in bytes (`None` = the scenario's own).
    pub memories: Vec<Option<u64>>,
    pub seeds: Seeds,
    /// Virtual duration of every cell (`None` = the scenario's own).
    pub duration_ns: Option<u64>,
}

/// One cell of the grid: everything a run needs, typed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cell {
    /// Position in the full grid (stable across shards).
    pub index: u64,
    pub scenario: String,
    /// The policy, written as its run spec (`spb-off:a,b`).
    #[serde(with = "policy_spec")]
    pub policy: PolicyConfig,
    pub memory: Option<u64>,
    pub seed: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ns: Option<u64>,
}

/// A [`PolicyConfig`] as its run-spec string in JSON.
mod policy_spec {
    use serde::{Deserialize, Deserializer, Serializer};
    use spb_alloc::PolicyConfig;

    pub fn serialize<S: Serializer>(p: &PolicyConfig, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(p)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PolicyConfig, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A shard: cells `i, i + n, i + 2n, ...`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl Shard {
    /// Parse `I/N` (0 <= I < N).
    pub fn parse(s: &str) -> Result<Shard, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("shard `{}`: expected I/N, e.g. 0/4", s))?;
        let index: u64 = i
            .trim()
            .parse()
            .map_err(|_| format!("shard `{}`: I must be a whole number", s))?;
        let count: u64 = n
            .trim()
            .parse()
            .map_err(|_| format!("shard `{}`: N must be a whole number", s))?;
        if count == 0 || index >= count {
            return Err(format!("shard `{}`: expected 0 <= I < N", s));
        }
        Ok(Shard { index, count })
    }

    /// The shard of a batch scheduler's task, from the environment:
    /// - `env`: a Slurm job array: I = `SLURM_ARRAY_TASK_ID` - `SLURM_ARRAY_TASK_MIN`,
    ///   N = `SLURM_ARRAY_TASK_COUNT` (the array must be contiguous, e.g. `--array=0-15`);
    ///   else a Kubernetes Indexed Job: I = `JOB_COMPLETION_INDEX`, N = `SPB_SHARDS`;
    /// - `env/N`: I from `SLURM_ARRAY_TASK_ID` - `SLURM_ARRAY_TASK_MIN` (0 when unset) or
    ///   `JOB_COMPLETION_INDEX`, N given.
    ///
    /// `get` reads a variable (`std::env::var` in the command; a map in tests).
    pub fn from_env(spec: &str, get: impl Fn(&str) -> Option<String>) -> Result<Shard, String> {
        let num = |k: &str| -> Result<Option<u64>, String> {
            match get(k) {
                None => Ok(None),
                Some(v) => v.trim().parse::<u64>().map(Some).map_err(|_| {
                    format!("shard `{spec}`: ${k} is \"{v}\", expected a whole number")
                }),
            }
        };
        let given: Option<u64> = match spec.strip_prefix("env") {
            Some("") => None,
            Some(rest) => Some(
                rest.strip_prefix('/')
                    .and_then(|n| n.trim().parse().ok())
                    .ok_or_else(|| format!("shard `{spec}`: expected env or env/N"))?,
            ),
            None => return Err(format!("shard `{spec}`: expected env or env/N")),
        };
        let (index, count, from) = if let Some(id) = num("SLURM_ARRAY_TASK_ID")? {
            let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            let count = match given {
                Some(n) => n,
                None => num("SLURM_ARRAY_TASK_COUNT")?.ok_or_else(|| {
                    format!("shard `{spec}`: $SLURM_ARRAY_TASK_COUNT is not set; give N as env/N")
                })?,
            };
            let i = id.checked_sub(min).ok_or_else(|| {
                format!("shard `{spec}`: $SLURM_ARRAY_TASK_ID {id} is below $SLURM_ARRAY_TASK_MIN {min}")
            })?;
            (i, count, "$SLURM_ARRAY_TASK_ID")
        } else if let Some(i) = num("JOB_COMPLETION_INDEX")? {
            let count = match given {
                Some(n) => n,
                None => num("SPB_SHARDS")?.ok_or_else(|| {
                    format!("shard `{spec}`: $SPB_SHARDS is not set; give N as env/N or set it to the Job's completions")
                })?,
            };
            (i, count, "$JOB_COMPLETION_INDEX")
        } else {
            return Err(format!(
                "shard `{spec}`: neither $SLURM_ARRAY_TASK_ID (Slurm job array) nor $JOB_COMPLETION_INDEX (Kubernetes Indexed Job) is set"
            ));
        };
        if count == 0 || index >= count {
            return Err(format!(
                "shard `{spec}`: {from} gives shard {index} of {count}; expected 0 <= I < N (a contiguous array of N tasks)"
            ));
        }
        Ok(Shard { index, count })
    }
}

impl Grid {
    /// The number of cells, or `None` past 2^64 - 1.
    pub fn len(&self) -> Option<u64> {
        (self.scenarios.len() as u64)
            .checked_mul(self.memories.len() as u64)?
            .checked_mul(self.policies.len() as u64)?
            .checked_mul(self.seeds.len())
    }
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }
    /// Cell `index` (< [`Grid::len`]), in the fixed order scenario, memory, policy, seed.
    pub fn cell(&self, index: u64) -> Cell {
        let ns = self.seeds.len();
        let np = self.policies.len() as u64;
        let nm = self.memories.len() as u64;
        let seed = index % ns;
        let rest = index / ns;
        let p = rest % np;
        let rest = rest / np;
        let m = rest % nm;
        let s = rest / nm;
        Cell {
            index,
            scenario: self.scenarios[s as usize].clone(),
            policy: self.policies[p as usize].clone(),
            memory: self.memories[m as usize],
            seed: self.seeds.get(seed),
            duration_ns: self.duration_ns,
        }
    }
    /// The indices of one shard's cells (all cells without a shard), never expanded.
    pub fn shard_indices(&self, shard: Option<Shard>) -> Result<impl Iterator<Item = u64>, String> {
        let len = self.len().ok_or_else(|| {
            format!(
                "the grid has more than {} cells; use a smaller --seeds range",
                u64::MAX
            )
        })?;
        let sh = shard.unwrap_or(Shard { index: 0, count: 1 });
        let n = if sh.index >= len {
            0
        } else {
            (len - sh.index - 1) / sh.count + 1
        };
        if n > MAX_CELLS {
            return Err(format!(
                "{n} cells in this {}; at most {MAX_CELLS} cells run in one invocation: split the grid with --shard I/N (N >= {})",
                if shard.is_some() { "shard" } else { "sweep" },
                len.div_ceil(MAX_CELLS)
            ));
        }
        Ok((0..n).map(move |k| sh.index + k * sh.count))
    }
    /// The cells of one shard (at most [`MAX_CELLS`]).
    pub fn shard_cells(&self, shard: Option<Shard>) -> Result<Vec<Cell>, String> {
        Ok(self.shard_indices(shard)?.map(|i| self.cell(i)).collect())
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

/// Run `cells` in parallel with `runner`, then write one JSON line per cell to `out` in cell
/// order. `progress` is called (from any thread) as each cell finishes.
pub fn run<F, W>(
    cells: &[Cell],
    runner: F,
    out: &mut W,
    progress: impl Fn() + Sync,
) -> std::io::Result<Vec<CellResult>>
where
    F: Fn(&Cell) -> Result<RunMetrics, String> + Sync,
    W: Write,
{
    use rayon::prelude::*;
    let results: Vec<CellResult> = cells
        .par_iter()
        .map(|c| {
            let r = CellResult {
                cell: c.clone(),
                outcome: match runner(c) {
                    Ok(m) => CellOutcome::Metrics(Box::new(m)),
                    Err(e) => CellOutcome::Error(e),
                },
            };
            progress();
            r
        })
        .collect();
    write_lines(&results, out)?;
    Ok(results)
}

/// Write results as JSON lines, in the order given.
pub fn write_lines<W: Write>(results: &[CellResult], out: &mut W) -> std::io::Result<()> {
    for r in results {
        serde_json::to_writer(&mut *out, r)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// The results of several shards as one sweep: in cell order, each cell once (the first line
/// read for an index wins).
pub fn merge_lines(mut results: Vec<CellResult>) -> Vec<CellResult> {
    results.sort_by_key(|r| r.cell.index);
    results.dedup_by_key(|r| r.cell.index);
    results
}

/// The longest line [`read_lines`] accepts (a cell's line is a few KiB).
pub const MAX_LINE: usize = 16 << 20;

/// Read JSON lines written by [`run`] (from any number of shards). Errors name the source and
/// line; a line longer than [`MAX_LINE`] is an error, so memory stays bounded on any input.
pub fn read_lines(name: &str, mut r: impl BufRead) -> Result<Vec<CellResult>, String> {
    let mut v = Vec::new();
    let mut buf = Vec::new();
    for i in 1.. {
        buf.clear();
        let n = (&mut r)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| format!("{name}:{i}: {e}"))?;
        if n == 0 {
            break;
        }
        if buf.len() > MAX_LINE {
            return Err(format!(
                "{name}:{i}: line longer than {} MiB; expected a sweep result line",
                MAX_LINE >> 20
            ));
        }
        let line = std::str::from_utf8(&buf)
            .map_err(|_| format!("{name}:{i}: not UTF-8; expected a sweep result line"))?;
        if line.trim().is_empty() {
            continue;
        }
        let c: CellResult = serde_json::from_str(line)
            .map_err(|e| format!("{name}:{i}: expected a sweep result line: {e}"))?;
        v.push(c);
    }
    Ok(v)
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
                r.cell.policy.to_string(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> Grid {
        Grid {
            scenarios: vec!["a".into(), "b".into()],
            policies: vec![PolicyConfig::vanilla(), PolicyConfig::spb()],
            memories: vec![None, Some(8 << 30)],
            seeds: Seeds::List(vec![1, 2, 3]),
            duration_ns: None,
        }
    }

    fn fake(c: &Cell) -> Result<RunMetrics, String> {
        if c.seed == 3 && c.scenario == "b" {
            return Err("boom".into());
        }
        let mut m = RunMetrics {
            scenario: c.scenario.clone(),
            policy: c.policy.to_string(),
            seed: c.seed,
            ..Default::default()
        };
        m.normal.spb_tainted = c.seed
            + if c.policy == PolicyConfig::spb() {
                0
            } else {
                10
            };
        Ok(m)
    }

    #[test]
    fn shards_partition_the_grid() {
        let g = grid();
        let all = g.shard_cells(None).unwrap();
        assert_eq!(all.len(), 24);
        assert_eq!(all[0].seed, 1);
        assert_eq!(all[23], g.cell(23));
        assert_eq!(
            (all[23].scenario.as_str(), all[23].memory),
            ("b", Some(8 << 30))
        );
        let mut idx: Vec<u64> = (0..3)
            .flat_map(|i| g.shard_cells(Some(Shard { index: i, count: 3 })).unwrap())
            .map(|c| c.index)
            .collect();
        idx.sort();
        assert_eq!(idx, (0..24).collect::<Vec<_>>());
        // more shards than cells: the last ones are empty
        assert!(g
            .shard_cells(Some(Shard {
                index: 30,
                count: 40
            }))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn huge_seed_ranges_are_never_expanded() {
        let mut g = grid();
        g.seeds = Seeds::parse("1..18446744073709551615").unwrap();
        assert_eq!(g.seeds.len(), u64::MAX - 1);
        assert_eq!(g.len(), None, "8 x (2^64 - 2) cells overflow");
        assert!(g.shard_cells(None).unwrap_err().contains("more than"));
        g.scenarios.truncate(1);
        g.memories.truncate(1);
        g.policies.truncate(1);
        assert!(g.shard_cells(None).unwrap_err().contains("--shard"));
        g.seeds = Seeds::parse("1..100000000").unwrap();
        let c = g
            .shard_cells(Some(Shard::parse("1/100000000").unwrap()))
            .unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].seed, 2);
        let c = g
            .shard_cells(Some(Shard {
                index: 7,
                count: 100,
            }))
            .unwrap();
        assert_eq!(c.len(), 1_000_000);
        assert_eq!(c.last().unwrap().seed, 1 + 7 + 100 * 999_999);
    }

    #[test]
    fn seed_and_shard_parse_errors() {
        assert_eq!(
            Seeds::parse("5..7").unwrap(),
            Seeds::Range { start: 5, end: 7 }
        );
        assert_eq!(Seeds::parse("1, 4").unwrap(), Seeds::List(vec![1, 4]));
        assert!(Seeds::parse("1..1").unwrap_err().contains("A < B"));
        assert!(Seeds::parse("5..2").unwrap_err().contains("A < B"));
        assert!(Seeds::parse("1..18446744073709551616")
            .unwrap_err()
            .contains("B is not"));
        assert!(Seeds::parse("x").is_err());
        assert!(Shard::parse("1/4").is_ok());
        for bad in ["4/4", "x/2", "1", "1/0"] {
            assert!(Shard::parse(bad).is_err(), "{}", bad);
        }
    }

    #[test]
    fn shards_from_the_scheduler_environment() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let slurm = env(&[
            ("SLURM_ARRAY_TASK_ID", "5"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "8"),
        ]);
        assert_eq!(
            Shard::from_env("env", slurm),
            Ok(Shard { index: 4, count: 8 })
        );
        assert_eq!(
            Shard::from_env("env/16", slurm),
            Ok(Shard {
                index: 4,
                count: 16
            })
        );
        let k8s = env(&[("JOB_COMPLETION_INDEX", "3"), ("SPB_SHARDS", "4")]);
        assert_eq!(
            Shard::from_env("env", k8s),
            Ok(Shard { index: 3, count: 4 })
        );
        assert!(Shard::from_env("env/3", k8s)
            .unwrap_err()
            .contains("0 <= I < N"));
        let none = env(&[]);
        assert!(Shard::from_env("env", none)
            .unwrap_err()
            .contains("JOB_COMPLETION_INDEX"));
        let bad = env(&[("JOB_COMPLETION_INDEX", "x")]);
        assert!(Shard::from_env("env/2", bad)
            .unwrap_err()
            .contains("whole number"));
        assert!(Shard::from_env("envy", k8s).is_err());
    }

    #[test]
    fn run_and_merge_shards_equals_whole() {
        let g = grid();
        let mut whole = Vec::new();
        let r_all = run(&g.shard_cells(None).unwrap(), fake, &mut whole, || {}).unwrap();
        let mut lines = Vec::new();
        for i in (0..2).rev() {
            let mut out = Vec::new();
            run(
                &g.shard_cells(Some(Shard { index: i, count: 2 })).unwrap(),
                fake,
                &mut out,
                || {},
            )
            .unwrap();
            lines.extend(read_lines("shard", &out[..]).unwrap());
        }
        assert_eq!(merge(&lines), merge(&r_all));
        let mut merged = Vec::new();
        write_lines(&merge_lines(lines), &mut merged).unwrap();
        assert_eq!(merged, whole, "the merged lines are the unsharded output");
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
        let zeros = std::io::BufReader::new(std::io::repeat(0).take(MAX_LINE as u64 + 10));
        let e = read_lines("zero", zeros).unwrap_err();
        assert!(e.contains("longer than"), "{e}");
    }
}
