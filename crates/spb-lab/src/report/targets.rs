//! Issue 15's targets: every run judged against a baseline run (normally `vanilla`) of the same
//! request stream (same scenario, seed and memory size), one verdict per target.
//!
//! The targets and why each bound has the form it has are defined in docs/metrics.md,
//! "Targets". Each cell prints the run's value, the bound, and `ok` or `MISS` with the margin, so
//! a reviewer sees the bill beside the win. A target that does not apply to a run (no THP
//! requests in either run, no 1 GiB page asked for, a run without a bill) reads `n/a`; it is
//! neither met nor missed.

use core::fmt::Write;

use crate::metrics::{RunMetrics, RunsDoc};

/// Pages in one 1 GiB page: the most a probe may migrate per 1 GiB page it obtains (an SPB is
/// emptied at most once).
pub const PROBE_MIGRATIONS_PER_PAGE: f64 = 262_144.0;
/// Relative slack on failures (5 %) and its absolute floor (100 requests): a policy may not fail
/// more requests than the baseline beyond noise.
pub const FAILURE_SLACK: (f64, f64) = (1.05, 100.0);
/// Relative slack on direct-reclaim stalls (10 %) and its absolute floor (100 stalls).
pub const STALL_SLACK: (f64, f64) = (1.10, 100.0);
/// THP success may be lower than the baseline's by at most this many percentage points.
pub const THP_SLACK_PP: f64 = 0.5;

/// The verdict of one target for one run.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Met: the value and the bound.
    Met(String),
    /// Missed: the value, the bound and by how much.
    Missed(String),
    /// Does not apply (see the module doc).
    NotApplicable,
}

impl Verdict {
    fn cell(&self) -> String {
        match self {
            Verdict::Met(s) => format!("ok {s}"),
            Verdict::Missed(s) => format!("MISS {s}"),
            Verdict::NotApplicable => "n/a".into(),
        }
    }
    /// (met, applicable): (1, 1), (0, 1) or (0, 0).
    fn counts(&self) -> (usize, usize) {
        match self {
            Verdict::Met(_) => (1, 1),
            Verdict::Missed(_) => (0, 1),
            Verdict::NotApplicable => (0, 0),
        }
    }
}

/// The index in [`TARGETS`] of the all-zones probe, whose misses the summary also counts at
/// the capacity bound (docs/metrics.md: the most 1 GiB pages the memory left room for).
const ALL_ZONES_PROBE: usize = 1;
/// The summary's row of those: all-zones probe misses that reached the capacity bound, out of
/// all-zones probe misses.
const AT_BOUND: &str = "  all-zones misses at capacity bound";

/// The names of the targets, in table order.
pub const TARGETS: [&str; 9] = [
    "Normal lost <= lost floor + 1",
    "1 GiB probe >= limit - 1, all zones",
    "1 GiB probe >= limit - 1, Normal",
    "failures <= 1.05 x base + 100",
    "direct-reclaim stalls <= 1.1 x base + 100",
    "atomic failures <= base",
    "THP success >= base - 0.5 pp",
    "p99 direct pages, slow path <= base",
    "probe migrations per 1 GiB page <= 262 144",
];

fn at_most(v: f64, bound: f64) -> Verdict {
    let s = format!("{} <= {}", num(v), num(bound));
    if v <= bound {
        Verdict::Met(s)
    } else {
        Verdict::Missed(format!("{s} (by {})", num(v - bound)))
    }
}

fn at_least(v: f64, bound: f64) -> Verdict {
    let s = format!("{} >= {}", num(v), num(bound));
    if v >= bound {
        Verdict::Met(s)
    } else {
        Verdict::Missed(format!("{s} (by {})", num(bound - v)))
    }
}

/// Integers without decimals, other values with two.
fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.2}")
    }
}

fn probe_target(obtained: u64, limit: u64) -> Verdict {
    if limit == 0 {
        return Verdict::NotApplicable;
    }
    at_least(obtained as f64, limit.saturating_sub(1) as f64)
}

fn thp_pct(r: &RunMetrics) -> Option<f64> {
    (r.thp.attempts > 0).then(|| 100.0 * r.thp.success as f64 / r.thp.attempts as f64)
}

/// Judges `run` against `base` on every target of [`TARGETS`], in that order.
pub fn judge(run: &RunMetrics, base: &RunMetrics) -> Vec<Verdict> {
    let mut v = Vec::with_capacity(TARGETS.len());
    v.push(at_most(
        run.normal.spb_lost as f64,
        (run.normal.lost_floor + 1) as f64,
    ));
    let d = run.details();
    v.push(
        match (
            probe_target(run.gigantic.allocatable, run.gigantic.limit),
            d.gigantic_capacity_bound,
        ) {
            // the miss, with the bound the room of the lost SPBs allows beside it and what
            // stopped the probe's last request (pinned pages are no bound's concern)
            (Verdict::Missed(m), b) => {
                let b = b.map_or(String::new(), |b| format!("; capacity bound {b}"));
                let stop = d
                    .probe_stop
                    .as_ref()
                    .map_or(String::new(), |s| format!("; probe stopped at {s}"));
                Verdict::Missed(format!("{m}{b}{stop}"))
            }
            (v, _) => v,
        },
    );
    v.push(probe_target(
        d.gigantic_normal_allocatable,
        d.gigantic_normal_limit,
    ));
    // the failure and stall bounds compare equal requests, not equal service: a run that
    // obtained more 1 GiB pages during the run than the baseline says so beside its miss
    let (got, base_got) = (d.hugetlb_obtained, base.details().hugetlb_obtained);
    let with_pages = |v: Verdict| match v {
        Verdict::Missed(m) if got > base_got => Verdict::Missed(format!(
            "{m}; 1 GiB pages during the run {got} against {base_got}"
        )),
        v => v,
    };
    v.push(with_pages(at_most(
        run.failures() as f64,
        base.failures() as f64 * FAILURE_SLACK.0 + FAILURE_SLACK.1,
    )));
    v.push(with_pages(at_most(
        run.alloc_stalls() as f64,
        base.alloc_stalls() as f64 * STALL_SLACK.0 + STALL_SLACK.1,
    )));
    let class = |r: &RunMetrics, c: &str| r.cost.as_ref().and_then(|k| k.classes.get(c).cloned());
    v.push(match (class(run, "atomic"), class(base, "atomic")) {
        (Some(a), Some(b)) => at_most(a.failures as f64, b.failures as f64),
        _ => Verdict::NotApplicable,
    });
    v.push(match (thp_pct(run), thp_pct(base)) {
        (Some(a), Some(b)) => at_least(a, b - THP_SLACK_PP),
        _ => Verdict::NotApplicable,
    });
    v.push(match (class(run, "all"), class(base, "all")) {
        (Some(a), Some(b)) => at_most(a.direct_slow.p99 as f64, b.direct_slow.p99 as f64),
        _ => Verdict::NotApplicable,
    });
    v.push(match run.cost.as_ref().map(|c| &c.probe) {
        Some(p) if p.obtained > 0 => at_most(
            p.pages_migrated as f64 / p.obtained as f64,
            PROBE_MIGRATIONS_PER_PAGE,
        ),
        Some(p) if p.pages_migrated > 0 => {
            Verdict::Missed(format!("none obtained, {} migrated", p.pages_migrated))
        }
        _ => Verdict::NotApplicable,
    });
    v
}

/// The run of `policy` with the same request stream as `r` (scenario, seed, memory size).
fn base_of<'a>(doc: &'a RunsDoc, r: &RunMetrics, policy: &str) -> Option<&'a RunMetrics> {
    doc.runs.iter().find(|b| {
        b.policy == policy
            && b.scenario == r.scenario
            && b.seed == r.seed
            && b.memory_bytes == r.memory_bytes
    })
}

/// `run` judged against `policy`'s run of the same request stream, when `run` is not of that
/// policy, has a bill, and such a run exists.
fn judge_in(doc: &RunsDoc, run: &RunMetrics, policy: &str) -> Option<Vec<Verdict>> {
    if run.policy == policy || run.cost.is_none() {
        return None;
    }
    base_of(doc, run, policy).map(|b| judge(run, b))
}

/// Two (met, applicable)-like counts added.
fn add(a: (usize, usize), b: (usize, usize)) -> (usize, usize) {
    (a.0 + b.0, a.1 + b.1)
}

/// (met, applicable) of one run's verdicts.
fn tally<'a>(v: impl IntoIterator<Item = &'a Verdict>) -> (usize, usize) {
    v.into_iter().map(Verdict::counts).fold((0, 0), add)
}

fn nothing_to_judge(against: &str) -> String {
    format!(
        "no run to judge against `{against}`: the files need a run of `{against}` and runs of other policies with a bill (`cost`) on the same scenario, seed and memory size"
    )
}

/// Issue 15's targets for every run of `doc` that has a bill and a run of `against` on the same
/// request stream, one table per scenario (a column per judged run). Err names what is missing
/// when no run can be judged.
pub fn targets_tables(doc: &RunsDoc, against: &str) -> Result<String, String> {
    let mut s = String::new();
    let mut judged = 0usize;
    for g in super::group_scenarios(doc) {
        let cols: Vec<(String, Vec<Verdict>)> = g
            .runs
            .iter()
            .zip(&g.labels)
            .filter_map(|(r, label)| judge_in(doc, r, against).map(|v| (label.clone(), v)))
            .collect();
        if cols.is_empty() {
            continue;
        }
        judged += cols.len();
        let lw = TARGETS.iter().map(|t| t.len()).max().unwrap_or(0);
        let cells: Vec<Vec<String>> = cols
            .iter()
            .map(|(_, v)| v.iter().map(Verdict::cell).collect())
            .collect();
        let w = cells
            .iter()
            .flatten()
            .map(|c| c.chars().count())
            .chain(cols.iter().map(|(l, _)| l.chars().count()))
            .max()
            .unwrap_or(8);
        let _ = writeln!(s, "== targets against {against}: {} ==", g.scenario);
        let _ = write!(s, "{:<lw$}", "target");
        for (l, _) in &cols {
            let _ = write!(s, "  {l:>w$}");
        }
        s.push('\n');
        for (i, t) in TARGETS.iter().enumerate() {
            let _ = write!(s, "{t:<lw$}");
            for c in &cells {
                let _ = write!(s, "  {:>w$}", c[i]);
            }
            s.push('\n');
        }
        let met: Vec<String> = cols
            .iter()
            .map(|(l, v)| {
                let (m, a) = tally(v);
                format!("{l}: {m} of {a} met")
            })
            .collect();
        let _ = writeln!(s, "{}\n", met.join("; "));
    }
    if judged == 0 {
        return Err(nothing_to_judge(against));
    }
    Ok(s)
}

/// Issue 15's targets over many runs (a sweep), compactly: per policy, each target's runs met
/// out of the runs it applied to, and the total; then every miss on one line, named by
/// scenario, memory size, seed and policy. Err as [`targets_tables`].
pub fn targets_summary(doc: &RunsDoc, against: &str) -> Result<String, String> {
    /// One policy's column.
    struct Column<'a> {
        policy: &'a str,
        runs: usize,
        /// Per target, (runs met, runs it applied to).
        per_target: [(usize, usize); TARGETS.len()],
        /// All-zones probe misses: (at the capacity bound, all).
        at_bound: (usize, usize),
    }
    // policies in order of first appearance
    let mut pols: Vec<Column<'_>> = Vec::new();
    let mut misses = String::new();
    for r in &doc.runs {
        let Some(v) = judge_in(doc, r, against) else {
            continue;
        };
        let i = match pols.iter().position(|p| p.policy == r.policy) {
            Some(i) => i,
            None => {
                pols.push(Column {
                    policy: &r.policy,
                    runs: 0,
                    per_target: [(0, 0); TARGETS.len()],
                    at_bound: (0, 0),
                });
                pols.len() - 1
            }
        };
        let col = &mut pols[i];
        col.runs += 1;
        if let Verdict::Missed(_) = v[ALL_ZONES_PROBE] {
            let at = r
                .details()
                .gigantic_capacity_bound
                .is_some_and(|b| r.gigantic.allocatable >= b);
            col.at_bound = add(col.at_bound, (at as usize, 1));
        }
        for (k, x) in v.iter().enumerate() {
            col.per_target[k] = add(col.per_target[k], x.counts());
            if let Verdict::Missed(why) = x {
                let _ = writeln!(
                    misses,
                    "{} {} s{} {}: {}: {why}",
                    r.scenario,
                    super::short_size(r.memory_bytes),
                    r.seed,
                    r.policy,
                    TARGETS[k]
                );
            }
        }
    }
    if pols.is_empty() {
        return Err(nothing_to_judge(against));
    }
    let frac = |(m, a): (usize, usize)| {
        if a == 0 {
            "n/a".to_string()
        } else {
            format!("{m}/{a}")
        }
    };
    let lw = TARGETS.iter().map(|t| t.len()).max().unwrap_or(0);
    let w = pols
        .iter()
        .map(|p| p.policy.chars().count())
        .max()
        .unwrap_or(0)
        .max(9);
    let mut s = String::new();
    let _ = writeln!(s, "== targets against {against}: runs met / runs judged ==");
    // one row: the label, then a cell per policy
    let mut row = |label: &str, cell: &dyn Fn(&Column<'_>) -> String| {
        let _ = write!(s, "{label:<lw$}");
        for p in &pols {
            let _ = write!(s, "  {:>w$}", cell(p));
        }
        s.push('\n');
    };
    row("target", &|p| p.policy.to_string());
    row("runs judged", &|p| p.runs.to_string());
    for (k, t) in TARGETS.iter().enumerate() {
        row(t, &|p| frac(p.per_target[k]));
        if k == ALL_ZONES_PROBE {
            row(AT_BOUND, &|p| frac(p.at_bound));
        }
    }
    row("all targets", &|p| {
        frac(p.per_target.iter().copied().fold((0, 0), add))
    });
    if misses.is_empty() {
        let _ = writeln!(s, "\n== targets missed: none ==");
    } else {
        let _ = writeln!(s, "\n== targets missed ==\n{misses}");
    }
    Ok(s)
}
