//! Two sets of results compared without their timings: the check behind "results unchanged"
//! (issue 16: a change that only makes the lab faster must leave every run's JSON equal but for
//! its wall-clock fields).
//!
//! A run is identified by its scenario, policy, seed and memory size; when one file holds the
//! same identity more than once (a replay's columns, a repeated policy), the k-th occurrence on
//! one side is paired with the k-th on the other. Each pair is compared field by field as JSON
//! after [`strip_timing`]; a float compares equal only when it is the same number (the lab is
//! deterministic: a seed fully determines a run, so no tolerance is needed). The runs are read
//! through [`RunMetrics`], so a key that this version of the lab does not know is not compared.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::metrics::RunMetrics;

/// The keys whose values depend on the machine and its load, not on the run: removed at any
/// depth before two runs are compared.
pub const TIMING_KEYS: &[&str] = &[
    "wall_seconds",
    "events_per_second",
    "workload_events_per_second",
    "workload_wall_seconds",
    "setup_wall_seconds",
    "loop_events_per_second",
    // a replay's CPU times (`spb replay`)
    "decode_cpu_seconds",
    "replay_cpu_seconds",
    "measure_cpu_seconds",
    "trace_lines_per_cpu_second",
];

/// Remove [`TIMING_KEYS`] from `v` at any depth.
pub fn strip_timing(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for k in TIMING_KEYS {
                m.remove(*k);
            }
            m.values_mut().for_each(strip_timing);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_timing),
        _ => {}
    }
}

/// What identifies a run across two result files.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct RunId {
    pub scenario: String,
    pub policy: String,
    pub seed: u64,
    pub memory_bytes: u64,
    /// 0 for the first run of this identity in its file, 1 for the second, ...
    pub occurrence: usize,
}

impl core::fmt::Display for RunId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{} / {} / seed {} / ",
            self.scenario, self.policy, self.seed
        )?;
        if self.memory_bytes.is_multiple_of(1 << 30) {
            write!(f, "{} GiB", self.memory_bytes >> 30)?;
        } else {
            write!(f, "{} MiB", self.memory_bytes >> 20)?;
        }
        if self.occurrence > 0 {
            write!(f, " (#{})", self.occurrence + 1)?;
        }
        Ok(())
    }
}

/// One difference between the two sides.
#[derive(Clone, Debug, PartialEq)]
pub enum Difference {
    /// A run only the first (`before == true`) or only the second side holds.
    Unpaired { id: RunId, before: bool },
    /// A field whose value differs; `path` is dotted (`cost.classes.all.direct_slow.p99`, array
    /// elements as `[i]`); a value is `None` where that side lacks the field.
    Field {
        id: RunId,
        path: String,
        before: Option<Value>,
        after: Option<Value>,
    },
}

impl core::fmt::Display for Difference {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let show = |v: &Option<Value>| match v {
            None => "(absent)".to_string(),
            Some(v) => {
                let s = v.to_string();
                if s.len() > 80 {
                    format!("{}...", &s[..s.floor_char_boundary(77)])
                } else {
                    s
                }
            }
        };
        match self {
            Difference::Unpaired { id, before } => write!(
                f,
                "{id}: only in the {} results",
                if *before { "first" } else { "second" }
            ),
            Difference::Field {
                id,
                path,
                before,
                after,
            } => write!(f, "{id}: {path}: {} -> {}", show(before), show(after)),
        }
    }
}

/// The comparison of two sides.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DiffReport {
    /// Runs present on both sides.
    pub paired: usize,
    /// Of those, the ones equal without their timings.
    pub equal: usize,
    /// Every difference, in the order of the first side's runs (then the second side's
    /// unpaired runs).
    pub differences: Vec<Difference>,
}

impl DiffReport {
    /// Both sides hold the same runs with the same results.
    pub fn is_equal(&self) -> bool {
        self.differences.is_empty()
    }
}

fn ids(runs: &[RunMetrics]) -> Vec<RunId> {
    let mut seen: BTreeMap<(String, String, u64, u64), usize> = BTreeMap::new();
    runs.iter()
        .map(|r| {
            let k = (r.scenario.clone(), r.policy.clone(), r.seed, r.memory_bytes);
            let n = seen.entry(k).or_insert(0);
            *n += 1;
            RunId {
                scenario: r.scenario.clone(),
                policy: r.policy.clone(),
                seed: r.seed,
                memory_bytes: r.memory_bytes,
                occurrence: *n - 1,
            }
        })
        .collect()
}

fn value_of(r: &RunMetrics) -> Value {
    let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
    strip_timing(&mut v);
    v
}

fn walk(
    id: &RunId,
    path: &mut String,
    a: Option<&Value>,
    b: Option<&Value>,
    out: &mut Vec<Difference>,
) {
    match (a, b) {
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                walk(id, path, x.get(k), y.get(k), out);
                path.truncate(len);
            }
        }
        (Some(Value::Array(x)), Some(Value::Array(y))) => {
            for i in 0..x.len().max(y.len()) {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                walk(id, path, x.get(i), y.get(i), out);
                path.truncate(len);
            }
        }
        (x, y) if x == y => {}
        (x, y) => out.push(Difference::Field {
            id: id.clone(),
            path: path.clone(),
            before: x.cloned(),
            after: y.cloned(),
        }),
    }
}

/// Compare `before` with `after` run by run, without their timings.
pub fn diff_runs(before: &[RunMetrics], after: &[RunMetrics]) -> DiffReport {
    let (ia, ib) = (ids(before), ids(after));
    let index: BTreeMap<&RunId, usize> = ib.iter().enumerate().map(|(i, id)| (id, i)).collect();
    let mut rep = DiffReport::default();
    let mut used = vec![false; after.len()];
    for (i, id) in ia.iter().enumerate() {
        let Some(&j) = index.get(id) else {
            rep.differences.push(Difference::Unpaired {
                id: id.clone(),
                before: true,
            });
            continue;
        };
        used[j] = true;
        rep.paired += 1;
        let n = rep.differences.len();
        walk(
            id,
            &mut String::new(),
            Some(&value_of(&before[i])),
            Some(&value_of(&after[j])),
            &mut rep.differences,
        );
        if rep.differences.len() == n {
            rep.equal += 1;
        }
    }
    for (j, id) in ib.iter().enumerate() {
        if !used[j] {
            rep.differences.push(Difference::Unpaired {
                id: id.clone(),
                before: false,
            });
        }
    }
    rep
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(policy: &str, failures: u64, wall: f64) -> RunMetrics {
        let mut r = RunMetrics {
            scenario: "s".into(),
            policy: policy.into(),
            seed: 1,
            memory_bytes: 16 << 30,
            wall_seconds: wall,
            ..Default::default()
        };
        r.alloc_failures
            .insert("GFP_KERNEL order=0".into(), failures);
        for (k, v) in [
            ("workload_events_per_second", wall * 3.0),
            ("setup_wall_seconds", wall / 9.0),
            ("loop_events_per_second", wall * 4.0),
        ] {
            r.extra.insert(k.into(), Value::from(v));
        }
        r
    }

    #[test]
    fn timings_do_not_count_and_results_do() {
        let a = [run("vanilla", 3, 1.0), run("spb", 4, 2.0)];
        let same = [run("spb", 4, 9.0), run("vanilla", 3, 7.0)];
        let rep = diff_runs(&a, &same);
        assert!(rep.is_equal(), "{:?}", rep.differences);
        assert_eq!((rep.paired, rep.equal), (2, 2));

        let other = [run("vanilla", 3, 1.0), run("spb", 5, 2.0)];
        let rep = diff_runs(&a, &other);
        assert_eq!((rep.paired, rep.equal), (2, 1));
        assert_eq!(
            rep.differences,
            vec![Difference::Field {
                id: ids(&a)[1].clone(),
                path: "alloc_failures.GFP_KERNEL order=0".into(),
                before: Some(Value::from(4u64)),
                after: Some(Value::from(5u64)),
            }]
        );
    }

    #[test]
    fn unpaired_runs_and_repeated_identities() {
        let a = [run("spb", 1, 1.0), run("spb", 2, 1.0)];
        let b = [run("spb", 1, 1.0)];
        let rep = diff_runs(&a, &b);
        assert_eq!((rep.paired, rep.equal), (1, 1));
        assert!(matches!(
            &rep.differences[..],
            [Difference::Unpaired { id, before: true }] if id.occurrence == 1
        ));
        let rep = diff_runs(&b, &a);
        assert!(matches!(
            &rep.differences[..],
            [Difference::Unpaired { before: false, .. }]
        ));
    }

    #[test]
    fn strip_reaches_every_depth() {
        let mut v: Value = serde_json::json!({"wall_seconds": 1, "x": [{"events_per_second": 2, "y": 3}],
            "extra": {"replay_cpu_seconds": 0.5, "decode_cpu_seconds": 1.0, "measure_cpu_seconds": 0.1,
                "trace_lines_per_cpu_second": 9.0, "ops": 4}});
        strip_timing(&mut v);
        assert_eq!(v, serde_json::json!({"x": [{"y": 3}], "extra": {"ops": 4}}));
    }
}
