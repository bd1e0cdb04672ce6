//! `spb run` prints the bill and `spb bill FILE...` renders saved results' bills side by side.

mod common;
use common::*;

#[test]
fn run_prints_the_bill_and_bill_joins_files() {
    let t = Tmp::new("bill");
    let a = t.path("a.json");
    let b = t.path("b.json");
    let out = spb(&[
        "run",
        "seed-16g",
        "--memory",
        "2G",
        "--duration",
        "2s",
        "--json",
        s(&a),
    ]);
    assert_exit(&out, 0, &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("the bill (pages touched)"), "{text}");
    assert!(
        text.contains("direct pages, slow p50/p99/p99.9/max"),
        "{text}"
    );
    let out = spb(&[
        "run",
        "seed-16g",
        "--memory",
        "2G",
        "--duration",
        "2s",
        "--policy",
        "spb",
        "--json",
        s(&b),
    ]);
    assert_exit(&out, 0, &[]);
    let out = spb(&["bill", s(&a), s(&b)]);
    assert_exit(&out, 0, &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("== the bill: seed-16g =="), "{text}");
    let header = text
        .lines()
        .find(|l| l.starts_with("the bill (pages touched)"))
        .unwrap();
    // every run of both files is a column: vanilla, defrag, spb, spb-next, and spb again (its
    // seed added)
    for p in ["vanilla", "defrag", "spb", "spb-next"] {
        assert!(header.contains(p), "{header}");
    }
    let spb_columns = header.split_whitespace().filter(|w| *w == "spb").count();
    assert_eq!(spb_columns, 2, "{header}");
    assert!(text.contains("probe migrated per 1 GiB page"), "{text}");
    let stalls = text
        .lines()
        .find(|l| l.starts_with("direct stalls: slow path / contig / evacuation"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        !stalls.contains('–'),
        "this build's runs carry the causes: {stalls}"
    );
    // issue 15's targets against vanilla: a column per other run, a verdict per target
    let out = spb(&["bill", s(&a), s(&b), "--against", "vanilla"]);
    assert_exit(&out, 0, &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("== targets against vanilla: seed-16g =="),
        "{text}"
    );
    let row = text
        .lines()
        .find(|l| l.starts_with("failures <= 1.05 x base + 100"))
        .unwrap();
    assert_eq!(
        row.matches("ok ").count() + row.matches("MISS ").count(),
        4,
        "{row}"
    );
    // no run of the named policy: a clear error, exit 3
    assert_exit(
        &spb(&["bill", s(&a), "--against", "nobody"]),
        3,
        &["no run to judge against `nobody`"],
    );
}

#[test]
fn bill_rejects_bad_files_clearly() {
    let t = Tmp::new("bill-bad");
    let bad = t.write("bad.json", "{\"runs\": [ {\"scenario\": 3 ]}");
    assert_exit(
        &spb(&["bill", s(&bad)]),
        3,
        &[s(&bad), "expected a results file"],
    );
    let old = t.write("old.json", "{\"runs\": []}");
    assert_exit(&spb(&["bill", s(&old)]), 3, &[s(&old), "no run has a bill"]);
    let nope = t.path("nope.json");
    assert_exit(&spb(&["bill", s(&nope)]), 4, &[s(&nope)]);
    assert_exit(&spb(&["bill"]), 2, &[]);
}

#[test]
fn bill_reads_sweep_lines_and_judges_each_seed() {
    let t = Tmp::new("bill-sweep");
    let lines = t.path("s.jsonl");
    let out = spb(&[
        "sweep",
        "--scenarios",
        "seed-16g",
        "--policies",
        "vanilla,spb-next",
        "--memory",
        "2G",
        "--duration",
        "2s",
        "--seeds",
        "1..3",
        "--out",
        s(&lines),
    ]);
    assert_exit(&out, 0, &[]);
    let out = spb(&["bill", s(&lines), "--against", "vanilla"]);
    assert_exit(&out, 0, &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    let header = text.lines().find(|l| l.starts_with("target")).unwrap();
    assert!(
        header.contains("spb-next s1") && header.contains("spb-next s2"),
        "each seed judged against vanilla's run of that seed: {header}"
    );
    // the summary: spb-next's two runs in one column, totals equal to the tables' "N of M met"
    let out = spb(&["bill", s(&lines), "--against", "vanilla", "--summary"]);
    assert_exit(&out, 0, &[]);
    let sum = String::from_utf8_lossy(&out.stdout);
    assert!(!sum.contains("== the bill"), "the summary alone: {sum}");
    let row = |l: &str| -> Vec<String> {
        sum.lines()
            .find(|x| x.starts_with(l))
            .unwrap_or_else(|| panic!("{l}: {sum}"))[l.len()..]
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    assert_eq!(row("target"), ["spb-next"], "{sum}");
    assert_eq!(row("runs judged"), ["2"], "{sum}");
    let (mut met, mut of) = (0, 0);
    for l in text.lines().filter(|l| l.starts_with("spb-next s")) {
        for part in l.split("; ") {
            let w: Vec<&str> = part.split_whitespace().collect();
            met += w[2].parse::<usize>().unwrap();
            of += w[4].parse::<usize>().unwrap();
        }
    }
    assert_eq!(row("all targets"), [format!("{met}/{of}")], "{sum}\n{text}");
    assert!(sum.contains("== targets missed"), "{sum}");
    // --summary needs --against
    assert_exit(&spb(&["bill", s(&lines), "--summary"]), 2, &["--against"]);
    // a sweep line that is not one: the file and line are named
    let bad = t.write("bad.jsonl", "{\"cell\": 3}\n");
    assert_exit(&spb(&["bill", s(&bad)]), 3, &[s(&bad), ":1:"]);
}
