//! The bill (`runs[].cost`) side by side: one column per run (whatever policies the result
//! holds), one row per measure. One row builder serves the text table of `spb run` / `spb
//! replay` and the HTML report. Definitions: docs/metrics.md, "The bill".

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::cost::{BackgroundRates, ClassCost, CostReport, Percentiles, ReqClass};
use crate::metrics::RunMetrics;

/// One row: a label, a hover help and one cell per run ("" when the run has no bill).
pub(crate) struct BillRow {
    pub label: String,
    pub help: &'static str,
    pub cells: Vec<String>,
}

fn pct(p: &Percentiles) -> String {
    format!("{} / {} / {} / {}", p.p50, p.p99, p.p999, p.max)
}

/// A distribution's tail counts ([`crate::cost::Tail`]) as `a / b / c / d`; `–` in files
/// written before they existed.
fn tail(p: &Percentiles) -> String {
    match p.at_least {
        Some(t) => format!("{} / {} / {} / {}", t.ge_1k, t.ge_10k, t.ge_100k, t.ge_1m),
        None if p.count == 0 => "0 / 0 / 0 / 0".into(),
        None => "–".into(),
    }
}

/// Two background rates of a bill (per virtual second) as `a / b`.
fn per_second(b: &CostReport, pick: impl Fn(&BackgroundRates) -> (f64, f64)) -> String {
    let (x, y) = pick(&b.background.per_second);
    format!("{} / {}", rate(x), rate(y))
}

fn rate(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// The rows of the bill for `runs` (empty when no run has a bill).
pub(crate) fn bill_rows(runs: &[&RunMetrics]) -> Vec<BillRow> {
    let bills: Vec<Option<&CostReport>> = runs.iter().map(|r| r.cost.as_ref()).collect();
    if bills.iter().all(Option::is_none) {
        return Vec::new();
    }
    let mut rows = Vec::new();
    let mut row = |label: String, help: &'static str, f: &dyn Fn(&CostReport) -> String| {
        rows.push(BillRow {
            label,
            help,
            cells: bills.iter().map(|b| b.map(f).unwrap_or_default()).collect(),
        });
    };
    // the classes any run saw, in the fixed class order, then all requests together
    let mut classes: Vec<&str> = ReqClass::ALL
        .iter()
        .map(|c| c.name())
        .filter(|n| bills.iter().flatten().any(|b| b.class(n).requests > 0))
        .collect();
    classes.push("all");
    for name in classes {
        let cls = move |b: &CostReport| -> ClassCost { b.class(name) };
        row(
            format!("{name}: requests / slow / failed"),
            "Requests of the class, of which entered the slow path, of which failed",
            &|b| {
                let c = cls(b);
                format!("{} / {} / {}", c.requests, c.slow_path, c.failures)
            },
        );
        row(
            "  direct pages, all p50/p99/p99.9/max".into(),
            "Pages touched in the caller's context per request (reclaim scanned + compaction scanned + migrated), over all requests of the class",
            &|b| pct(&cls(b).direct_all),
        );
        row(
            "  direct pages, slow p50/p99/p99.9/max".into(),
            "The same over the requests that entered the slow path",
            &|b| pct(&cls(b).direct_slow),
        );
        row(
            "  slow entries >= 1k/10k/100k/1M pages".into(),
            "Slow-path entries whose direct work was at least 1 000 / 10 000 / 100 000 / 1 000 000 pages (exact counts, comparable across policies whatever their number of slow-path entries)",
            &|b| tail(&cls(b).direct_slow),
        );
        row(
            "  reclaim / compact scan / migrated".into(),
            "Direct work summed over the run, by kind: pages scanned by direct reclaim, by both compaction scanners, pages migrated",
            &|b| {
                let p = cls(b).pages;
                format!(
                    "{} / {} / {}",
                    p.reclaim_scanned,
                    p.compact_migrate_scanned + p.compact_free_scanned,
                    p.migrated
                )
            },
        );
    }
    row(
        "atomic failures, free > min".into(),
        "Atomic requests that failed while their preferred zone's free pages were above its min watermark; in parentheses those without __GFP_NOWARN",
        &|b| {
            format!(
                "{} ({} warned)",
                b.atomic_failures_above_min, b.atomic_failures_above_min_warned
            )
        },
    );
    row(
        "kswapd scanned / reclaimed per s".into(),
        "Pages kswapd scanned and reclaimed per virtual second",
        &|b| per_second(b, |p| (p.kswapd_scanned, p.kswapd_reclaimed)),
    );
    row(
        "kcompactd scanned / migrated per s".into(),
        "Pages kcompactd (woken and proactive) scanned (both scanners) and migrated per virtual second",
        &|b| per_second(b, |p| (p.kcompactd_scanned, p.kcompactd_migrated)),
    );
    row(
        "policy workers moved / reclaimed per s".into(),
        "Pages the policy's own background workers (spb defrag, evacuation, slab shrink) migrated and reclaimed per virtual second",
        &|b| per_second(b, |p| (p.workers_migrated, p.workers_reclaimed)),
    );
    row(
        "direct stalls: slow path / contig / evacuation".into(),
        "Direct-reclaim stalls (allocstall) by what reclaimed in the allocating caller's context: the requests' own slow-path reclaim, the reclaim rounds for migration targets of the run's contiguous (1 GiB) allocations, and those of the policy's evacuations run in the caller's slow path; with the next row they add up to the run's stalls",
        &|b| match &b.stalls {
            Some(s) => format!(
                "{} / {} / {}",
                s.slow_path, s.contig_targets, s.evacuation_targets
            ),
            None => "–".into(),
        },
    );
    row(
        "direct stalls in policy workers".into(),
        "Direct-reclaim stalls (allocstall) counted inside the policy's own workers, when their evacuations reclaim for migration targets; part of the run's direct-reclaim stalls",
        &|b| b.background.workers_stalls.to_string(),
    );
    // the request orders any run compacted at
    let orders: BTreeSet<u8> = bills
        .iter()
        .flatten()
        .flat_map(|b| b.compactions.iter().flatten().map(|c| c.order))
        .collect();
    for o in orders {
        row(
            format!("direct compactions, order {o}: runs / ok / scanned"),
            "Direct compactions of requests of this order (compact_stall), of which the request then got its page (compact_success), and the entries the migrate scanner plus the pages the free scanner read in them",
            &|b| match &b.compactions {
                Some(cs) => {
                    let c = cs.iter().find(|c| c.order == o).cloned().unwrap_or_default();
                    format!(
                        "{} / {} / {}",
                        c.stalls,
                        c.success,
                        c.migrate_scanned + c.free_scanned
                    )
                }
                None => "–".into(),
            },
        );
    }
    let kinds: BTreeSet<&str> = bills
        .iter()
        .flatten()
        .flat_map(|b| b.failures_by_kind.keys().map(String::as_str))
        .collect();
    for k in kinds {
        row(
            format!("failures: {k}"),
            "Failed requests of this caller kind",
            &|b| b.failures_by_kind.get(k).copied().unwrap_or(0).to_string(),
        );
    }
    let opts: BTreeSet<&str> = bills
        .iter()
        .flatten()
        .flat_map(|b| b.optional.keys().map(String::as_str))
        .collect();
    for k in opts {
        row(
            format!("optional {k}: failed / fallback ok"),
            "Failed optional requests of this kind, and of those how many the caller's fallback then served",
            &|b| {
                let o = b.optional.get(k).cloned().unwrap_or_default();
                format!("{} / {}", o.failed, o.fallback_ok)
            },
        );
    }
    row(
        "large folios split: THP / file".into(),
        "Large folios the run split into base pages because migration found no whole target for them: anonymous THPs (thp_split_page) and large page-cache or shmem folios; the end-of-run probe's are not the run's ('–' for a replay, which cannot split the traced machine's folios)",
        &|b| match &b.folio_splits {
            Some(s) => format!("{} / {}", s.thp, s.file),
            None => "–".into(),
        },
    );
    row(
        "probe migrated per 1 GiB page".into(),
        "Pages the 1 GiB probe migrated per 1 GiB page it obtained ('none obtained' when it obtained none)",
        &|b| match b.probe.migrated_per_page {
            Some(v) => format!("{v:.0}"),
            None => format!("none obtained ({} migrated)", b.probe.pages_migrated),
        },
    );
    rows
}

/// The bill of `runs` as a text table, one column per run labelled by its policy; empty when no
/// run has a bill.
pub fn bill_table(runs: &[RunMetrics]) -> String {
    let refs: Vec<&RunMetrics> = runs.iter().collect();
    let labels: Vec<String> = runs.iter().map(|r| r.policy.clone()).collect();
    render(&refs, &labels)
}

fn render(runs: &[&RunMetrics], labels: &[String]) -> String {
    let rows = bill_rows(runs);
    if rows.is_empty() {
        return String::new();
    }
    let lw = rows
        .iter()
        .map(|r| r.label.chars().count())
        .max()
        .unwrap_or(0)
        .max(32);
    let w = rows
        .iter()
        .flat_map(|r| r.cells.iter().map(|c| c.chars().count()))
        .chain(labels.iter().map(|l| l.chars().count()))
        .max()
        .unwrap_or(8)
        .max(10);
    let mut s = String::new();
    let _ = write!(s, "{:<lw$}", "the bill (pages touched)");
    for l in labels {
        let _ = write!(s, "  {:>w$}", l);
    }
    s.push('\n');
    for r in &rows {
        let _ = write!(s, "{:<lw$}", r.label);
        for c in &r.cells {
            let _ = write!(s, "  {:>w$}", c);
        }
        s.push('\n');
    }
    s
}

/// The bill of every scenario of `doc` ([`bill_table`] per scenario, headed by its name);
/// empty when no run has a bill.
pub fn bill_tables(doc: &crate::metrics::RunsDoc) -> String {
    let mut s = String::new();
    for g in super::group_scenarios(doc) {
        let t = render(&g.runs, &g.labels);
        if !t.is_empty() {
            let _ = writeln!(s, "== the bill: {} ==", g.scenario);
            s.push_str(&t);
            s.push('\n');
        }
    }
    s
}
