//! `spb diff BEFORE AFTER`: results compared without their timings.

mod common;
use common::*;

fn run(t: &Tmp, name: &str, extra: &[&str]) -> std::path::PathBuf {
    let p = t.path(name);
    let mut args = vec![
        "run",
        "seed-16g",
        "--memory",
        "2G",
        "--policy",
        "vanilla,spb",
        "--json",
        s(&p),
    ];
    args.extend(extra);
    assert_exit(&spb(&args), 0, &[]);
    p
}

#[test]
fn same_runs_are_equal_and_changed_ones_are_named() {
    let t = Tmp::new("diff");
    let a = run(&t, "a.json", &["--duration", "2s"]);
    // one policy at a time instead of one per core: the same results
    let b = run(&t, "b.json", &["--duration", "2s", "--jobs", "1"]);
    let out = spb(&["diff", s(&a), s(&b)]);
    assert_exit(&out, 0, &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("2 of 2 paired runs equal without timings"),
        "{text}"
    );

    // a longer run of the same streams: every run paired, fields differ, exit 1
    let c = run(&t, "c.json", &["--duration", "3s"]);
    let out = spb(&["diff", s(&a), s(&c), "--max", "100000"]);
    assert_exit(&out, 1, &["differ"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("seed-16g / vanilla / seed 1 / 2 GiB: virtual_seconds: 2.0 -> 3.0"),
        "{text}"
    );
    assert!(text.contains("0 of 2 paired runs equal"), "{text}");
    let out = spb(&["diff", s(&a), s(&c), "--max", "3"]);
    assert_exit(&out, 1, &["differ"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.lines().count(),
        5,
        "3 differences, the rest counted: {text}"
    );
    assert!(text.contains("... and "), "{text}");

    // another seed: no run pairs
    let d = run(&t, "d.json", &["--duration", "2s", "--seed", "2"]);
    let out = spb(&["diff", s(&a), s(&d)]);
    assert_exit(&out, 1, &["differ"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("seed-16g / spb / seed 2 / 2 GiB: only in the second results"),
        "{text}"
    );
}

#[test]
fn bad_input_is_named() {
    let t = Tmp::new("diff-bad");
    let bad = t.path("bad.json");
    std::fs::write(&bad, "{\"runs\": [1]}").unwrap();
    let out = spb(&["diff", s(&bad), s(&bad)]);
    assert_exit(&out, 3, &["bad.json:1:", "expected a results file"]);
    let out = spb(&["diff", s(&bad), s(&t.path("missing.json"))]);
    assert_exit(&out, 3, &["bad.json"]);
}
