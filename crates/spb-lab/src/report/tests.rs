use std::path::PathBuf;

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;

use super::*;
use crate::metrics::{BlockContent, SpbMap, SpbRow};

/// A fresh empty directory under the target tmp dir.
fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("spb-report-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn count(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}

const VOID: [&str; 6] = ["meta", "br", "img", "link", "input", "hr"];

/// Checks that every element of `html` is closed in order (our own output: no optional end
/// tags, attribute values escaped). Returns the first problem.
fn check_balanced(html: &str) -> Result<(), String> {
    let mut stack: Vec<String> = Vec::new();
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        rest = &rest[lt..];
        if rest.starts_with("<!--") {
            let end = rest.find("-->").ok_or("unclosed comment")?;
            rest = &rest[end + 3..];
            continue;
        }
        if rest.starts_with("<!") || rest.starts_with("<?") {
            let end = rest.find('>').ok_or("unclosed declaration")?;
            rest = &rest[end + 1..];
            continue;
        }
        let end = rest.find('>').ok_or("unclosed tag")?;
        let tag = &rest[1..end];
        rest = &rest[end + 1..];
        if tag.contains('<') {
            return Err(format!("'<' inside tag: {tag:.80}"));
        }
        if let Some(name) = tag.strip_prefix('/') {
            let name = name.trim().to_ascii_lowercase();
            match stack.pop() {
                Some(open) if open == name => {}
                other => return Err(format!("</{name}> closes {other:?}")),
            }
            continue;
        }
        let name: String = tag
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '/')
            .collect::<String>()
            .to_ascii_lowercase();
        if name.is_empty() {
            return Err(format!("empty tag name: <{tag:.40}>"));
        }
        if tag.ends_with('/') || VOID.contains(&name.as_str()) {
            continue;
        }
        if name == "style" || name == "script" {
            let close = format!("</{name}>");
            let end = rest.find(&close).ok_or(format!("unclosed {name}"))?;
            rest = &rest[end + close.len()..];
            continue;
        }
        stack.push(name);
    }
    if stack.is_empty() {
        Ok(())
    } else {
        Err(format!("unclosed: {stack:?}"))
    }
}

#[test]
fn balance_checker_catches_errors() {
    assert!(check_balanced("<div><p>x</p></div>").is_ok());
    assert!(check_balanced("<div><p>x</div>").is_err());
    assert!(check_balanced("<div>").is_err());
    assert!(check_balanced("<svg><rect/></svg><meta charset=\"u\">").is_ok());
}

#[test]
fn sample_doc_is_deterministic_and_consistent() {
    let a = sample_doc();
    let b = sample_doc();
    assert_eq!(a, b);
    assert_eq!(a.runs.len(), 6);
    for r in &a.runs {
        assert!(!r.timeline.is_empty());
        assert!(!r.maps.is_empty());
        let end = r.maps.last().unwrap();
        assert_eq!(end.t, r.virtual_seconds);
        assert_eq!(end.rows.len(), 16);
        assert!(end.rows.iter().all(|row| row.blocks.len() == 512));
        let tainted = end
            .rows
            .iter()
            .filter(|row| row.zone == "Normal" && row.category.starts_with("tainted"))
            .count() as u64;
        assert_eq!(tainted, r.normal.spb_tainted, "{} {}", r.scenario, r.policy);
        assert!(r.normal.spb_tainted >= r.normal.tainted_floor);
        assert!(r.gigantic.allocatable <= r.gigantic.limit);
    }
    // The JSON round trip keeps everything (the sample is valid against the contract).
    let json = serde_json::to_string(&a).unwrap();
    let back: RunsDoc = serde_json::from_str(&json).unwrap();
    assert_eq!(back, a);
}

#[test]
fn report_has_rows_plots_csv_and_is_balanced() {
    let doc = sample_doc();
    let dir = tmpdir("sample");
    write_report(&dir, &doc, "Sample <report>").unwrap();
    let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
    check_balanced(&html).unwrap();

    let expect = report_expect(&doc);
    assert_eq!(expect.scenarios, 2);
    // One map row per SPB per policy per moment: 3 policies × (4 + 2 moments) × 16 SPBs.
    assert_eq!(expect.map_rows, 3 * (4 + 2) * 16);
    assert_eq!(count(&html, "<svg class=\"spb-row\""), expect.map_rows);
    assert_eq!(count(&html, "map-panel"), expect.map_panels);
    assert_eq!(
        count(&html, "<table class=\"t summary\""),
        expect.summary_tables
    );
    // Every row of the end map of each run is in the page with its label.
    assert!(html.contains(">Normal #15</div>"));
    assert!(html.contains(">DMA32 #0</div>"));

    // Plots: six per scenario, each with drawn lines.
    assert_eq!(count(&html, "<svg class=\"plot\""), expect.plots);
    assert_eq!(expect.plots, 2 * PLOTS_PER_SCENARIO);
    for svg in html.split("<svg class=\"plot\"").skip(1) {
        let svg = &svg[..svg.find("</svg>").unwrap()];
        assert!(svg.contains("<polyline"), "plot without lines");
        assert!(!svg.contains("no data"));
    }

    // Summary per scenario: one column per policy, best cells highlighted.
    for p in ["mainline", "spb", "spb-strict"] {
        assert!(html.contains(&format!("</span>{p}</th>")), "{p}");
    }
    assert!(html.contains("class=\"best\""));
    // Trace stats only for the trace scenario.
    assert_eq!(count(&html, "<table class=\"t trace\""), 1);
    assert!(html.contains("Skipped: malformed"));

    // Self-contained: no external reference of any kind.
    for bad in [
        "<script",
        "<link",
        "<img",
        "src=",
        "href=\"http",
        "url(http",
        "@import",
    ] {
        assert!(!html.contains(bad), "{bad}");
    }
    assert!(html.contains("Sample &lt;report&gt;"));

    // CSVs linked and written.
    for s in ["mixed-churn", "trace-build"] {
        let name = format!("timeline-{s}.csv");
        assert!(html.contains(&format!("href=\"{name}\"")));
        let csv = std::fs::read_to_string(dir.join(&name)).unwrap();
        let runs: Vec<_> = doc.runs.iter().filter(|r| r.scenario == s).collect();
        assert_eq!(
            csv.lines().count(),
            1 + runs.iter().map(|r| r.timeline.len()).sum::<usize>()
        );
        assert!(csv.starts_with("scenario,policy,seed,t,"));
    }
    // No temporary files left.
    for e in std::fs::read_dir(&dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.starts_with('.'), "{name}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn failed_write_leaves_no_partial_report() {
    let doc = sample_doc();
    let dir = tmpdir("fail");
    // index.html is a non-empty directory: the final rename must fail.
    std::fs::create_dir_all(dir.join("index.html").join("x")).unwrap();
    let err = write_report(&dir, &doc, "t").unwrap_err();
    assert!(matches!(err, ReportError::Io { .. }), "{err}");
    for e in std::fs::read_dir(&dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.contains(".tmp-"), "temporary file left: {name}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn empty_doc_and_missing_data() {
    let dir = tmpdir("empty");
    write_report(&dir, &RunsDoc::default(), "empty").unwrap();
    let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
    check_balanced(&html).unwrap();
    assert!(html.contains("No runs."));
    assert!(summary_table(&RunsDoc::default()).is_empty());

    // A run without timeline or maps still renders (plots say "no data", no map section).
    let mut doc = sample_doc();
    doc.runs.truncate(1);
    doc.runs[0].timeline.clear();
    doc.runs[0].maps.clear();
    doc.runs[0].thp = Default::default();
    write_report(&dir, &doc, "bare").unwrap();
    let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
    check_balanced(&html).unwrap();
    assert_eq!(count(&html, "<svg class=\"plot\""), PLOTS_PER_SCENARIO);
    assert!(html.contains("no data"));
    assert_eq!(count(&html, "<svg class=\"spb-row\""), 0);
    assert!(html.contains("no attempts"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn duplicate_policies_get_seed_or_size_labels_and_unique_csv_names() {
    let mut doc = sample_doc();
    doc.runs.truncate(1);
    let mut second = doc.runs[0].clone();
    second.seed = 99;
    doc.runs.push(second);
    let mut odd = doc.runs[0].clone();
    odd.scenario = "mixed/churn".into();
    doc.runs.push(odd);
    let groups = group_scenarios(&doc);
    assert_eq!(
        groups[0].labels,
        vec!["mainline s42".to_string(), "mainline s99".to_string()]
    );
    assert_eq!(
        csv_file_names(&groups),
        vec![
            "timeline-mixed-churn.csv".to_string(),
            "timeline-mixed_churn.csv".to_string()
        ]
    );
    // a sweep over memory sizes: the size tells the runs apart, and the seed when it varies too
    let mut sizes = sample_doc();
    sizes.runs.truncate(1);
    let mut big = sizes.runs[0].clone();
    big.memory_bytes = 32 << 30;
    sizes.runs[0].memory_bytes = 8 << 30;
    sizes.runs.push(big.clone());
    assert_eq!(
        group_scenarios(&sizes)[0].labels,
        vec!["mainline 8G".to_string(), "mainline 32G".to_string()]
    );
    big.seed = 7;
    big.memory_bytes = 1 << 40;
    sizes.runs.push(big);
    assert_eq!(
        group_scenarios(&sizes)[0].labels,
        vec![
            "mainline 8G s42".to_string(),
            "mainline 32G s42".to_string(),
            "mainline 1T s7".to_string()
        ]
    );
    let dir = tmpdir("dup");
    write_report(&dir, &doc, "dup").unwrap();
    assert!(dir.join("timeline-mixed_churn.csv").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

fn big_doc(random_blocks: bool) -> RunsDoc {
    let mut doc = sample_doc_with(&SampleSpec {
        spbs: 256,
        interval: 30.0,
        trace_scenario: false,
        ..SampleSpec::default()
    });
    if random_blocks {
        // Worst realistic case for run-length merging: every pageblock drawn at random.
        let mut rng = Pcg64Mcg::seed_from_u64(1);
        let pick = [
            BlockContent::Free,
            BlockContent::Movable,
            BlockContent::Movable,
            BlockContent::Unmovable,
            BlockContent::Reclaimable,
        ];
        for r in &mut doc.runs {
            for m in &mut r.maps {
                for row in &mut m.rows {
                    for b in &mut row.blocks {
                        *b = pick[rng.gen_range(0..pick.len())];
                    }
                }
            }
        }
    }
    doc
}

#[test]
fn large_machine_report_stays_small() {
    for random in [false, true] {
        let doc = big_doc(random);
        assert_eq!(doc.runs.len(), 3);
        assert!(doc
            .runs
            .iter()
            .all(|r| r.maps.len() == 4 && r.maps[0].rows.len() == 256));
        let dir = tmpdir(if random { "big-random" } else { "big" });
        write_report(&dir, &doc, "256 GiB").unwrap();
        let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
        let expect = report_expect(&doc);
        assert_eq!(expect.map_rows, 3 * 4 * 256);
        assert_eq!(count(&html, "<svg class=\"spb-row\""), expect.map_rows);
        assert!(
            html.len() < 10 << 20,
            "index.html is {} bytes (random={random})",
            html.len()
        );
        // Large maps fold all moments but the end.
        assert_eq!(count(&html, "<details class=\"moment\" open>"), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

fn row(blocks: Vec<BlockContent>) -> SpbRow {
    SpbRow {
        zone: "Normal".into(),
        start_pfn: 0x100000,
        category: "tainted".into(),
        blocks,
    }
}

#[test]
fn row_svg_merges_runs() {
    use super::map::row_svg;
    let mut b = vec![BlockContent::Movable; 512];
    let mut s = String::new();
    row_svg(&mut s, &b, "t");
    assert!(s.contains("class=\"bm\""));
    assert!(!s.contains("<path"), "{s}");
    b[10] = BlockContent::Unmovable;
    b[11] = BlockContent::Unmovable;
    b[100] = BlockContent::Free;
    b[300] = BlockContent::Unmovable;
    let mut s = String::new();
    row_svg(&mut s, &b, "t");
    // Unmovable runs are widened by half a block each side: [19, 25) then [599, 603).
    assert!(
        s.contains("<path class=\"ku\" d=\"M19 .5h6m574 0h4\"/>"),
        "{s}"
    );
    assert!(s.contains("<path class=\"kf\" d=\"M200 .5h2\"/>"), "{s}");
    // Unmovable is painted last.
    assert!(s.find("class=\"ku\"").unwrap() > s.find("class=\"kf\"").unwrap());
    // Alternating contents: one sub-path per run, a few bytes each.
    let alt: Vec<_> = (0..512)
        .map(|i| {
            if i % 2 == 0 {
                BlockContent::Free
            } else {
                BlockContent::Movable
            }
        })
        .collect();
    let mut s = String::new();
    row_svg(&mut s, &alt, "t");
    assert!(s.len() < 512 * 8 + 300, "{}", s.len());
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c == '\x1b' {
            for d in it.by_ref() {
                if d == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn terminal_map_letters_grouping_and_colour() {
    assert_eq!(group_size(512, 100), 8);
    assert_eq!(group_size(512, 64), 8);
    assert_eq!(group_size(513, 64), 16);
    assert_eq!(group_size(16, 100), 1);
    assert_eq!(group_size(0, 10), 1);

    let mut b = vec![BlockContent::Movable; 512];
    b[100] = BlockContent::Unmovable; // group 12
    b[101] = BlockContent::Reclaimable;
    b[200] = BlockContent::Reclaimable; // group 25
    b[0..8].fill(BlockContent::Free); // group 0
    b[504..512].fill(BlockContent::Hole); // group 63
    b[300] = BlockContent::HighAtomic; // group 37
    b[301] = BlockContent::Reserved;
    let map = SpbMap {
        t: 600.0,
        rows: vec![row(b.clone()), row(vec![BlockContent::Free; 512])],
    };
    let text = terminal_map(&map, false);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2 + 2, "{text}");
    assert!(lines[0].starts_with("# SPB map at t=600s: 2 SPBs, 1 char = 8 pageblocks"));
    assert!(lines[1].starts_with('#') && lines[1].contains("U unmovable"));
    for l in &lines {
        assert!(l.chars().count() <= TERMINAL_WIDTH, "{l}");
    }
    let cells = &lines[2][lines[2].find('|').unwrap() + 1..lines[2].len() - 1];
    let cells: Vec<char> = cells.chars().collect();
    assert_eq!(cells.len(), 64);
    assert_eq!(cells[0], '.');
    assert_eq!(cells[1], 'M');
    assert_eq!(cells[12], 'U');
    assert_eq!(cells[25], 'E');
    assert_eq!(cells[37], 'R');
    assert_eq!(cells[63], ' ');
    assert!(lines[2].starts_with("Normal 0 tainted |"), "{}", lines[2]);
    assert!(lines[3].ends_with(&format!("|{}|", ".".repeat(64))));

    let colored = terminal_map(&map, true);
    assert!(colored.contains("\x1b[1;31mU"));
    assert_eq!(strip_ansi(&colored), text);

    // Small SPBs (tiny geometry) are drawn one pageblock per character.
    let tiny = SpbMap {
        t: 1.5,
        rows: vec![row(vec![BlockContent::Movable; 16])],
    };
    let t = terminal_map(&tiny, false);
    assert!(t.contains("1 char = 1 pageblock "), "{t}");
    assert!(t
        .lines()
        .last()
        .unwrap()
        .ends_with(&format!("|{}|", "M".repeat(16))));
}

#[test]
fn terminal_map_of_sample_fits() {
    let doc = sample_doc();
    for r in &doc.runs {
        let m = r.maps.last().unwrap();
        let t = terminal_map(m, false);
        assert_eq!(t.lines().count(), m.rows.len() + 2);
        assert!(t.lines().all(|l| l.chars().count() <= TERMINAL_WIDTH));
    }
}

#[test]
fn summary_table_side_by_side() {
    let doc = sample_doc();
    let t = summary_table(&doc);
    assert!(
        t.contains("== scenario mixed-churn (16 GiB, 600 s virtual) =="),
        "{t}"
    );
    assert!(t.contains("== scenario trace-build"));
    let header = t.lines().nth(1).unwrap();
    let (a, b, c) = (
        header.find("mainline").unwrap(),
        header.find(" spb ").unwrap(),
        header.find("spb-strict").unwrap(),
    );
    assert!(a < b && b < c, "{header}");
    for label in [
        "Tainted SPBs",
        "Lost SPBs",
        "1 GiB pages obtained",
        "THP success",
        "OOM kills",
        "Allocation failures",
    ] {
        assert!(t.lines().any(|l| l.starts_with(label)), "{label}");
    }
    let tainted = t.lines().find(|l| l.starts_with("Tainted SPBs ")).unwrap();
    assert!(tainted.contains("(floor"));
    assert!(tainted.trim_end().ends_with('*'), "{tainted}");
    // Columns line up: every table line of a block has the same width or less.
    assert!(t.contains("(* best of the row)"));
    // One run: no best markers.
    let mut one = doc.clone();
    one.runs.truncate(1);
    assert!(!summary_table(&one).contains('*'));
}

#[test]
fn summary_best_handles_ties_and_missing() {
    let mk = |k: Option<f64>| Cell {
        text: String::new(),
        note: String::new(),
        key: k,
        tip: String::new(),
    };
    let r = SummaryRow {
        label: "x",
        help: "",
        better: Better::Lower,
        cells: vec![mk(Some(2.0)), mk(Some(1.0)), mk(Some(1.0))],
    };
    assert_eq!(r.best(), vec![false, true, true]);
    let r = SummaryRow {
        label: "x",
        help: "",
        better: Better::Higher,
        cells: vec![mk(Some(2.0)), mk(Some(2.0))],
    };
    assert_eq!(r.best(), vec![false, false]);
    let r = SummaryRow {
        label: "x",
        help: "",
        better: Better::Higher,
        cells: vec![mk(None), mk(Some(2.0)), mk(Some(3.0))],
    };
    assert_eq!(r.best(), vec![false, false, true]);
}

#[test]
fn csv_quotes_and_empty_probe() {
    let mut doc = sample_doc();
    doc.runs.truncate(1);
    doc.runs[0].policy = "a,\"b\"".into();
    let runs: Vec<_> = doc.runs.iter().collect();
    let csv = timeline_csv(&runs);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], super::csv::TIMELINE_CSV_HEADER);
    assert!(
        lines[1].starts_with("mixed-churn,\"a,\"\"b\"\"\",42,0,"),
        "{}",
        lines[1]
    );
    // Sample 1 (t=10) was not probed: empty gigantic field.
    let fields: Vec<&str> = lines[2].rsplitn(5, ',').collect();
    assert_eq!(fields[3], "", "{}", lines[2]);
    let dir = tmpdir("csv");
    write_csv_timeline(&dir.join("x.csv"), &runs).unwrap();
    assert_eq!(std::fs::read_to_string(dir.join("x.csv")).unwrap(), csv);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn number_formats() {
    assert_eq!(thousands(0), "0");
    assert_eq!(thousands(1234567), "1,234,567");
    assert_eq!(compact(950.0), "950");
    assert_eq!(compact(2.5), "2.5");
    assert_eq!(compact(12500.0), "12.5k");
    assert_eq!(compact(250000.0), "250k");
    assert_eq!(compact(3_200_000.0), "3.2M");
    assert_eq!(human_bytes(16 << 30), "16 GiB");
    assert_eq!(slug("a b/c"), "a_b_c");
    assert_eq!(slug(""), "_");
}

/// A bill built through the accumulator: `n` slow-path kernel requests of `pages` each.
fn bill(n: u64, pages: u64) -> crate::cost::CostReport {
    let mut acc = crate::cost::CostAcc::default();
    for _ in 0..n {
        let c = spb_alloc::RequestCost {
            slow_entries: 1,
            reclaim_scanned: pages,
            ..Default::default()
        };
        acc.record(spb_alloc::Gfp::KERNEL, 0, &c, true);
    }
    let l = acc.optional_failed(crate::cost::OptionalKind::ThpFault);
    acc.fallback_done(l, true);
    acc.report(
        &spb_alloc::BackgroundWork::default(),
        &spb_alloc::StallCauses::default(),
        &[],
        10.0,
        0,
        77,
    )
}

#[test]
fn the_bill_side_by_side_in_text_and_html() {
    let mut doc = sample_doc();
    // no bill anywhere: no table
    assert!(bill_tables(&doc).is_empty());
    assert!(bill_table(&doc.runs).is_empty());
    let n = doc.runs.len();
    for (i, r) in doc.runs.iter_mut().enumerate() {
        // one run without a bill (an older file, a replay's real column): empty cells
        if i + 1 < n {
            r.cost = Some(bill(3, 10 * (i as u64 + 1)));
        }
    }
    // the first run reports its folio splits, the second (a replay's) has none to report
    doc.runs[0].cost.as_mut().unwrap().folio_splits =
        Some(crate::cost::FolioSplits { thp: 7, file: 1234 });
    let t = bill_tables(&doc);
    assert!(t.contains("== the bill: mixed-churn =="), "{t}");
    let header = t
        .lines()
        .find(|l| l.starts_with("the bill (pages touched)"))
        .unwrap();
    for p in ["mainline", "spb", "spb-strict"] {
        assert!(header.contains(p), "{header}");
    }
    let row = t
        .lines()
        .find(|l| l.starts_with("  direct pages, slow p50/p99/p99.9/max"))
        .unwrap();
    assert!(
        row.contains("10 / 10 / 10 / 10") && row.contains("20 / 20 / 20 / 20"),
        "{row}"
    );
    assert!(t.contains("optional thp_fault: failed / fallback ok"));
    assert!(t.contains("none obtained (77 migrated)"));
    let row = t
        .lines()
        .find(|l| l.starts_with("large folios split: THP / file"))
        .unwrap();
    assert!(row.contains("7 / 1234") && row.contains('–'), "{row}");
    // classes nobody saw are left out
    assert!(!t.contains("contig: requests"), "{t}");
    let dir = tmpdir("bill");
    write_report(&dir, &doc, "bill").unwrap();
    let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
    check_balanced(&html).unwrap();
    assert!(
        count(&html, "<table class=\"t bill\"") >= 1,
        "the bill is in the report"
    );
    assert!(html.contains("kernel_order0: requests / slow / failed"));
}

#[test]
fn targets_judge_each_run_against_the_baseline() {
    let mut doc = sample_doc();
    assert!(
        targets_tables(&doc, "mainline").is_err(),
        "no bill: nothing to judge"
    );
    for (i, r) in doc.runs.iter_mut().enumerate() {
        r.cost = Some(bill(3, 10 * (i as u64 + 1)));
        r.alloc_failures.clear();
        r.vmstat.retain(|k, _| !k.starts_with("allocstall"));
    }
    assert!(targets_tables(&doc, "nobody").is_err());
    let (base, run) = (doc.runs[0].clone(), doc.runs[1].clone());
    let v = judge(&run, &base);
    assert_eq!(v.len(), TARGETS.len());
    // failures: 105 against a base of 0 misses by 5, 100 is met
    let mut r = run.clone();
    r.alloc_failures.insert("x order=0".into(), 105);
    assert_eq!(
        judge(&r, &base)[3],
        Verdict::Missed("105 <= 100 (by 5)".into())
    );
    r.alloc_failures.insert("x order=0".into(), 100);
    assert!(matches!(judge(&r, &base)[3], Verdict::Met(_)));
    // stalls: 10 % above the base plus 100
    let mut b = base.clone();
    b.vmstat.insert("allocstall_normal".into(), 1000);
    r.vmstat.insert("allocstall_normal".into(), 1201);
    assert_eq!(
        judge(&r, &b)[4],
        Verdict::Missed("1201 <= 1200 (by 1)".into())
    );
    // a run that obtained more 1 GiB pages during the run says so beside those two misses
    r.extra
        .insert("hugetlb_obtained".into(), serde_json::json!(5));
    assert_eq!(
        judge(&r, &b)[4],
        Verdict::Missed("1201 <= 1200 (by 1); 1 GiB pages during the run 5 against 0".into())
    );
    b.extra
        .insert("hugetlb_obtained".into(), serde_json::json!(5));
    assert_eq!(
        judge(&r, &b)[4],
        Verdict::Missed("1201 <= 1200 (by 1)".into())
    );
    // the direct-work p99 of slow-path entries: the run's 20 pages against the base's 10
    assert_eq!(judge(&r, &b)[7], Verdict::Missed("20 <= 10 (by 10)".into()));
    assert!(matches!(judge(&b, &r)[7], Verdict::Met(_)));
    // the probe: limit - 1 and migrations per page; nothing asked is n/a
    r.gigantic.limit = 4;
    r.gigantic.allocatable = 2;
    assert_eq!(judge(&r, &b)[1], Verdict::Missed("2 >= 3 (by 1)".into()));
    // a miss names the capacity bound when the run recorded one
    r.extra
        .insert("gigantic_capacity_bound".into(), serde_json::json!(2));
    assert_eq!(
        judge(&r, &b)[1],
        Verdict::Missed("2 >= 3 (by 1); capacity bound 2".into())
    );
    // and what stopped the probe, when the run recorded it
    r.extra.insert(
        "probe_stop".into(),
        serde_json::json!({"tried": 3, "pinned": 3}),
    );
    assert_eq!(
        judge(&r, &b)[1],
        Verdict::Missed(
            "2 >= 3 (by 1); capacity bound 2; probe stopped at 3 tried: 3 pinned".into()
        )
    );
    r.extra.remove("probe_stop");
    r.gigantic.allocatable = 3;
    assert!(matches!(judge(&r, &b)[1], Verdict::Met(_)));
    r.gigantic.limit = 0;
    assert_eq!(judge(&r, &b)[1], Verdict::NotApplicable);
    // no page obtained but pages moved: missed (the sample bill migrated 77)
    assert!(matches!(judge(&r, &b)[8], Verdict::Missed(_)));
    let c = r.cost.as_mut().unwrap();
    c.probe.obtained = 1;
    c.probe.pages_migrated = 262_144;
    assert!(matches!(judge(&r, &b)[8], Verdict::Met(_)));
    // THP: 0.5 percentage points of slack
    b.thp.attempts = 1000;
    b.thp.success = 1000;
    r.thp.attempts = 1000;
    r.thp.success = 995;
    assert!(matches!(judge(&r, &b)[6], Verdict::Met(_)));
    r.thp.success = 994;
    assert!(matches!(judge(&r, &b)[6], Verdict::Missed(_)));
    r.thp.attempts = 0;
    assert_eq!(judge(&r, &b)[6], Verdict::NotApplicable);
    // the table: a column per judged run, the baseline is not one
    let t = targets_tables(&doc, "mainline").unwrap();
    assert!(
        t.contains("== targets against mainline: mixed-churn =="),
        "{t}"
    );
    let header = t.lines().find(|l| l.starts_with("target")).unwrap();
    assert!(
        header.contains("spb-strict") && !header.contains("mainline"),
        "{header}"
    );
    for name in TARGETS {
        assert!(t.lines().any(|l| l.starts_with(name)), "{name}: {t}");
    }
    assert!(t.contains(" met"), "{t}");
}

#[test]
fn targets_summary_totals_per_policy_and_lists_each_miss() {
    let mut doc = sample_doc();
    assert!(targets_summary(&doc, "mainline").is_err(), "no bill");
    for r in doc.runs.iter_mut() {
        r.cost = Some(bill(3, 10));
        r.alloc_failures.clear();
        r.vmstat.retain(|k, _| !k.starts_with("allocstall"));
    }
    assert!(targets_summary(&doc, "nobody").is_err());
    // one miss: spb-strict's failures on mixed-churn
    let i = doc
        .runs
        .iter()
        .position(|r| r.policy == "spb-strict" && r.scenario == "mixed-churn")
        .unwrap();
    doc.runs[i].alloc_failures.insert("x order=0".into(), 105);
    // the all-zones probe: n/a everywhere but mixed-churn, where spb-strict misses it at the
    // capacity bound and spb misses it under the bound
    for r in doc.runs.iter_mut() {
        r.gigantic.limit = 0;
        if r.scenario == "mixed-churn" && r.policy != "mainline" {
            r.gigantic.limit = 4;
            r.gigantic.allocatable = if r.policy == "spb-strict" { 2 } else { 1 };
            r.extra
                .insert("gigantic_capacity_bound".into(), serde_json::json!(2));
        }
    }
    let t = targets_summary(&doc, "mainline").unwrap();
    let cols = |start: &str| -> Vec<String> {
        let l = t.lines().find(|l| l.starts_with(start)).unwrap();
        l[start.len()..]
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    // the two other policies, each judged on both scenarios; the baseline is no column
    let header = cols("target");
    assert_eq!(header.len(), 2, "{t}");
    assert!(!header.contains(&"mainline".to_string()), "{t}");
    let s = header.iter().position(|p| p == "spb-strict").unwrap();
    assert_eq!(cols("runs judged"), ["2", "2"], "{t}");
    assert_eq!(cols("failures <= 1.05 x base + 100")[s], "1/2", "{t}");
    assert_eq!(cols("failures <= 1.05 x base + 100")[1 - s], "2/2", "{t}");
    assert_eq!(
        cols("1 GiB probe >= limit - 1, all zones"),
        ["0/1", "0/1"],
        "{t}"
    );
    let at = cols("  all-zones misses at capacity bound");
    assert_eq!((at[s].as_str(), at[1 - s].as_str()), ("1/1", "0/1"), "{t}");
    // the totals add the per-target counts; a run's totals equal its table's "N of M met"
    let all = cols("all targets");
    let tables = targets_tables(&doc, "mainline").unwrap();
    for (k, p) in header.iter().enumerate() {
        let (mut met, mut of) = (0, 0);
        for l in tables.lines().filter(|l| l.contains(" met")) {
            for part in l.split("; ").filter(|x| x.starts_with(&format!("{p}:"))) {
                let w: Vec<&str> = part.split_whitespace().collect();
                met += w[1].parse::<usize>().unwrap();
                of += w[3].parse::<usize>().unwrap();
            }
        }
        assert_eq!(all[k], format!("{met}/{of}"), "{p}: {t}\n{tables}");
    }
    // every miss on its own line, named by run
    let misses: Vec<&str> = t
        .lines()
        .skip_while(|l| !l.starts_with("== targets missed"))
        .skip(1)
        .filter(|l| l.contains("failures <= 1.05"))
        .collect();
    assert_eq!(
        misses,
        ["mixed-churn 16G s42 spb-strict: failures <= 1.05 x base + 100: 105 <= 100 (by 5)"],
        "{t}"
    );
}
