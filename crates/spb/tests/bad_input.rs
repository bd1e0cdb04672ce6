//! Bad input to the `spb` command, end to end (issue 8): every class gets a message naming the
//! file, the line where there is one and what was expected; the documented exit code (README.md
//! "Exit codes": 2 bad command line, 3 bad input file, 4 I/O); no panic; and no half-written
//! output — the `--json` file asked for does not exist afterwards, or keeps its previous content.
//!
//! The table of classes is in docs/reliability.md ("Bad input to the spb command").

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Output;

mod common;
use common::*;

/// Exit 0, no panic, and stderr contains every one of `needles`.
#[track_caller]
fn assert_ok(out: &Output, needles: &[&str]) {
    assert_exit(out, 0, needles);
}

/// The output file was not written: absent, or (when `previous` is given) unchanged; and no
/// temporary file is left next to it.
#[track_caller]
fn assert_no_output(t: &Tmp, name: &str, previous: Option<&str>) {
    let p = t.path(name);
    match previous {
        None => assert!(!p.exists(), "{} must not exist", p.display()),
        Some(c) => assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            c,
            "{} must keep its content",
            p.display()
        ),
    }
    let tmp: Vec<String> = t
        .listing("")
        .into_iter()
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(tmp.is_empty(), "temporary files left behind: {tmp:?}");
}

const CTX: &str = "            bash-1000    [000] .....";

/// A small valid trace: 300 order-2 allocations in the Normal zone, then every second one freed
/// (450 lines). Line numbers are 1-based; [`with_line`] inserts a line as line 101.
fn good_trace() -> String {
    let mut s = String::new();
    let mut t = 100.0f64;
    for i in 0..300u64 {
        s.push_str(&format!("{CTX} {t:.6}: mm_page_alloc: pfn={:#x} order=2 migratetype=1 gfp_flags=GFP_HIGHUSER_MOVABLE|__GFP_COMP\n", 0x100000 + 4 * i));
        t += 0.00001;
    }
    for i in (0..300u64).step_by(2) {
        s.push_str(&format!(
            "            bash-1000    [001] .....   {t:.6}: mm_page_free: pfn={:#x} order=2\n",
            0x100000 + 4 * i
        ));
        t += 0.00001;
    }
    s
}

/// The good trace with `line` inserted as line 101 (its timestamp, 200 s, is after every other
/// line, so it is applied last).
fn with_line(line: &str) -> String {
    let g = good_trace();
    let mut lines: Vec<&str> = g.lines().collect();
    lines.insert(100, line);
    lines.join("\n") + "\n"
}

fn zstd_bytes(text: &str) -> Vec<u8> {
    let mut e = zstd::stream::Encoder::new(Vec::new(), 3).unwrap();
    e.include_checksum(true).unwrap();
    e.write_all(text.as_bytes()).unwrap();
    e.finish().unwrap()
}

fn gzip_bytes(text: &str) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(text.as_bytes()).unwrap();
    e.finish().unwrap()
}

/// Flip 32 bytes in the middle.
fn corrupt(mut b: Vec<u8>) -> Vec<u8> {
    let m = b.len() / 2;
    for x in &mut b[m - 16..m + 16] {
        *x ^= 0xa5;
    }
    b
}

fn zoneinfo_8g() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../spb-alloc/tests/data/zoneinfo-q35-8g")
}

// ---------------------------------------------------------------------------------------------
// 1. compressed traces

#[test]
fn valid_compressed_traces_replay_and_write_json_atomically() {
    let t = Tmp::new("valid");
    let g = good_trace();
    for (name, data) in [("t.zst", zstd_bytes(&g)), ("t.gz", gzip_bytes(&g))] {
        let f = t.write(name, data);
        let json = t.path("out.json");
        let out = spb(&["replay", s(&f), "--policy", "real,spb", "--json", s(&json)]);
        assert_ok(&out, &[]);
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        assert_eq!(doc["runs"].as_array().map(|r| r.len()), Some(2));
        assert!(
            t.listing("").iter().all(|n| !n.contains(".tmp")),
            "{:?}",
            t.listing("")
        );
        std::fs::remove_file(&json).unwrap();
    }
}

#[test]
fn skip_hints_switch_reaches_the_modelled_columns() {
    let t = Tmp::new("skip-hints");
    let f = t.write("t.txt", good_trace());
    let json = t.path("out.json");
    for (flag, off) in [("on", false), ("off", true)] {
        let out = spb(&[
            "replay",
            s(&f),
            "--policy",
            "real,spb",
            "--skip-hints",
            flag,
            "--json",
            s(&json),
        ]);
        assert_ok(&out, &[]);
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        // the JSON names the switch only when it is off, and only in the modelled column
        let named: Vec<bool> = doc["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["extra"]["compaction_skip_hints"] == serde_json::json!(false))
            .collect();
        assert_eq!(named, [false, off], "--skip-hints {flag}");
    }
    let out = spb(&["replay", s(&f), "--skip-hints", "maybe"]);
    assert_exit(&out, 2, &["--skip-hints", "expected `on` or `off`"]);
    let out = spb(&[
        "run",
        "--duration",
        "1s",
        "--policy",
        "vanilla",
        "--skip-hints",
        "off",
        "--json",
        s(&json),
    ]);
    assert_ok(&out, &[]);
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(
        doc["runs"][0]["extra"]["compaction_skip_hints"],
        serde_json::json!(false)
    );
}

#[test]
fn truncated_zstd_trace_is_bad_input() {
    let t = Tmp::new("trunc-zst");
    let z = zstd_bytes(&good_trace());
    let f = t.write("trace.txt.zst", &z[..z.len() / 2]);
    let out = spb(&["replay", s(&f), "--json", s(&t.path("out.json"))]);
    assert_exit(&out, 3, &["trace.txt.zst", "zstd", "truncated", "expected"]);
    assert_no_output(&t, "out.json", None);
}

#[test]
fn corrupt_zstd_trace_is_bad_input() {
    let t = Tmp::new("corrupt-zst");
    let f = t.write("trace.txt.zst", corrupt(zstd_bytes(&good_trace())));
    t.write("out.json", "previous");
    let out = spb(&["replay", s(&f), "--json", s(&t.path("out.json"))]);
    assert_exit(&out, 3, &["trace.txt.zst", "zstd", "corrupt", "expected"]);
    assert_no_output(&t, "out.json", Some("previous"));
}

#[test]
fn truncated_gzip_trace_is_bad_input() {
    let t = Tmp::new("trunc-gz");
    let z = gzip_bytes(&good_trace());
    let f = t.write("trace.txt.gz", &z[..z.len() / 2]);
    let out = spb(&["replay", s(&f), "--json", s(&t.path("out.json"))]);
    assert_exit(
        &out,
        3,
        &[
            "trace.txt.gz",
            "gzip",
            "truncated",
            "after line",
            "expected",
        ],
    );
    assert_no_output(&t, "out.json", None);
}

#[test]
fn corrupt_gzip_trace_is_bad_input() {
    let t = Tmp::new("corrupt-gz");
    let f = t.write("trace.txt.gz", corrupt(gzip_bytes(&good_trace())));
    let out = spb(&["replay", s(&f), "--json", s(&t.path("out.json"))]);
    assert_exit(&out, 3, &["trace.txt.gz", "gzip", "corrupt", "expected"]);
    assert_no_output(&t, "out.json", None);
}

#[test]
fn trace_without_kmem_events_is_bad_input() {
    let t = Tmp::new("no-events");
    let noise: Vec<u8> = (0..20_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for (name, data) in [
        ("empty.txt", Vec::new()),
        ("noise.bin", noise),
        ("text.txt", b"hello\nworld\n".to_vec()),
    ] {
        let f = t.write(name, data);
        let out = spb(&["replay", s(&f), "--json", s(&t.path("out.json"))]);
        assert_exit(
            &out,
            3,
            &[name, "no mm_page_alloc or mm_page_free line", "expected"],
        );
        assert_no_output(&t, "out.json", None);
    }
}

// ---------------------------------------------------------------------------------------------
// 2. garbage lines: counted and warned with FILE:LINE; --strict makes them exit 3 (docs/replay.md)

#[test]
fn garbage_trace_lines_are_warned_and_fail_with_strict() {
    let t = Tmp::new("garbage");
    let cases: &[(&str, &str, &str, &[&str])] = &[
        // (name, line, skip reason, what stderr says)
        (
            "bad-pfn",
            "mm_page_alloc: pfn=0xZZZZ order=0 migratetype=1 gfp_flags=GFP_KERNEL",
            "unparsed",
            &["`pfn=`", "expected a hex number"],
        ),
        (
            "bad-order",
            "mm_page_alloc: pfn=0x200000 order=x migratetype=1 gfp_flags=GFP_KERNEL",
            "unparsed",
            &["`order=`", "expected a non-negative decimal"],
        ),
        (
            "random-text",
            "mm_page_alloc: 8f3 kq;;' random text",
            "unparsed",
            &["missing field `pfn=`"],
        ),
        (
            "huge-pfn",
            "mm_page_free: pfn=0x99999999999999999999 order=0",
            "unparsed",
            &["`pfn=`", "expected a hex number"],
        ),
        (
            "bad-gfp",
            "mm_page_alloc: pfn=0x200000 order=0 migratetype=1 gfp_flags=GFP_BOGUS",
            "bad_gfp",
            &["GFP_BOGUS", "not a known gfp flag"],
        ),
    ];
    for (name, line, reason, what) in cases {
        let f = t.write(
            &format!("{name}.txt"),
            with_line(&format!("{CTX}   200.000000: {line}")),
        );
        let loc = format!("{name}.txt:101:");
        // counted, warned, the replay goes on and writes its JSON
        let json = t.path("out.json");
        let out = spb(&["replay", s(&f), "--policy", "real,spb", "--json", s(&json)]);
        let mut needles = vec!["warning", loc.as_str(), reason, "--strict"];
        needles.extend_from_slice(what);
        assert_ok(&out, &needles);
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        assert_eq!(
            doc["runs"][0]["trace"]["skipped"][reason], 1,
            "{name}: counted in the JSON"
        );
        std::fs::remove_file(&json).unwrap();
        // --strict: exit 3, FILE:LINE: what
        let out = spb(&["replay", s(&f), "--strict", "--json", s(&json)]);
        let mut needles = vec![loc.as_str()];
        needles.extend_from_slice(what);
        assert_exit(&out, 3, &needles);
        assert_no_output(&t, "out.json", None);
    }
    // a line that is not a trace line at all: warned, not an error even with --strict
    let f = t.write("text.txt", with_line("this is random garbage ### 12"));
    let out = spb(&["replay", s(&f), "--strict", "--policy", "real"]);
    assert_ok(
        &out,
        &[
            "warning",
            "text.txt:101:",
            "not a trace line",
            "expected",
            "unrecognized",
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// 3. double free, order above the maximum

#[test]
fn double_free_and_order_above_max_are_warned_and_fail_with_strict() {
    let t = Tmp::new("double-free");
    let cases: &[(&str, &str, &str, &str)] = &[
        // pfn 0x100000 was allocated and freed before (its timestamp is after every other line)
        (
            "double-free",
            "mm_page_free: pfn=0x100000 order=2",
            "double_free",
            "double free of pfn 0x100000 order 2",
        ),
        (
            "order-20",
            "mm_page_alloc: pfn=0x200000 order=20 migratetype=1 gfp_flags=GFP_KERNEL",
            "order_above_max",
            "order 20 is above the largest buddy order 10",
        ),
        (
            "free-order-31",
            "mm_page_free: pfn=0x200000 order=31",
            "order_above_max",
            "order 31 is above the largest buddy order 10",
        ),
    ];
    for (name, line, reason, what) in cases {
        let f = t.write(
            &format!("{name}.txt"),
            with_line(&format!("{CTX}   200.000000: {line}")),
        );
        let loc = format!("{name}.txt:101:");
        let out = spb(&["replay", s(&f), "--policy", "real,vanilla"]);
        assert_ok(&out, &["warning", &loc, what, reason]);
        let out = spb(&[
            "replay",
            s(&f),
            "--strict",
            "--json",
            s(&t.path("out.json")),
        ]);
        assert_exit(&out, 3, &[&loc, what]);
        assert_no_output(&t, "out.json", None);
    }
}

// ---------------------------------------------------------------------------------------------
// 4. pfns outside the layout

#[test]
fn pfns_outside_the_layout_are_warned_and_fail_with_strict() {
    let t = Tmp::new("outside");
    let zi = zoneinfo_8g();
    let cases: &[(&str, &str, Option<&Path>, &str)] = &[
        // beyond the zoneinfo's last zone (8 GiB machine: pfns below 0x280000)
        (
            "beyond-zoneinfo",
            "mm_page_alloc: pfn=0x300000 order=0 migratetype=1 gfp_flags=GFP_KERNEL",
            Some(&zi),
            "pfn 0x300000 (order 0) is outside the memory layout",
        ),
        // in the hole below 4 GiB of that machine
        (
            "in-hole",
            "mm_page_free: pfn=0xa0000 order=0",
            Some(&zi),
            "pfn 0xa0000 (order 0) is outside the memory layout",
        ),
        // no zoneinfo: a layout inferred from the pfns stops at 256 GiB (this one is 4 TiB)
        (
            "beyond-inferred",
            "mm_page_alloc: pfn=0x40000000 order=0 migratetype=1 gfp_flags=GFP_KERNEL",
            None,
            "above the 256 GiB a layout inferred from the trace covers",
        ),
        // pfn + 2^order overflows u64
        (
            "overflow",
            "mm_page_alloc: pfn=0xfffffffffffffff0 order=4 migratetype=1 gfp_flags=GFP_KERNEL",
            None,
            "pfn 0xfffffffffffffff0 is outside the memory layout",
        ),
        (
            "pfn-zero-free",
            "mm_page_free: pfn=0x0 order=0",
            None,
            "pfn 0x0 is outside the memory layout",
        ),
    ];
    for (name, line, zoneinfo, what) in cases {
        let f = t.write(
            &format!("{name}.txt"),
            with_line(&format!("{CTX}   200.000000: {line}")),
        );
        let loc = format!("{name}.txt:101:");
        let mut args = vec!["replay", s(&f), "--policy", "real,spb"];
        if let Some(z) = zoneinfo {
            args.extend(["--zoneinfo", s(z)]);
        }
        assert_ok(&spb(&args), &["warning", &loc, what, "pfn_outside_layout"]);
        let json = t.path("out.json");
        args.extend(["--strict", "--json", s(&json)]);
        assert_exit(&spb(&args), 3, &[&loc, what]);
        assert_no_output(&t, "out.json", None);
    }
}

// ---------------------------------------------------------------------------------------------
// 5. scenario files and command-line values

#[test]
fn bad_scenario_files_name_file_line_and_expectation() {
    let t = Tmp::new("scenario");
    let cases: &[(&str, &str, &str, &[&str])] = &[
        // (name, TOML, "file:line", what stderr says)
        (
            "unknown-key",
            "name = \"x\"\n[machine]\nmemory = \"1G\"\nmemroy = \"2G\"\n",
            ":4:",
            &["machine.memroy", "unknown key"],
        ),
        (
            "wrong-type",
            "name = \"x\"\n[machine]\ncpus = \"two\"\n",
            ":3:",
            &[
                "machine.cpus",
                "expected a non-negative integer, got \"two\"",
            ],
        ),
        (
            "wrong-type-size",
            "name = \"x\"\nduration = \"1s\"\n[machine]\nmemory = true\n",
            ":4:",
            &["machine.memory", "expected a size string"],
        ),
        (
            "negative-memory",
            "name = \"x\"\n[machine]\nmemory = -5\n",
            ":3:",
            &["machine.memory", "expected a size string", "got -5"],
        ),
        (
            "negative-memory-str",
            "name = \"x\"\n[machine]\nmemory = \"-5G\"\n",
            ":3:",
            &["machine.memory", "expected a size like"],
        ),
        (
            "tiny-memory",
            "name = \"x\"\n\n[machine]\nmemory = \"4K\"\n",
            ":4:",
            &["machine.memory", "expected a RAM size from 64M to 15T"],
        ),
        (
            "negative-duration",
            "name = \"x\"\nduration = \"-1s\"\n",
            ":2:",
            &["duration", "expected a duration like"],
        ),
        (
            "bad-workload",
            "name = \"x\"\n[[workload]]\nkind = \"processes\"\n[[workload]]\nkind = \"teleport\"\n",
            ":5:",
            &["workload[1].kind", "expected"],
        ),
        (
            "not-toml",
            "name = \"x\"\n[machine\n",
            ":2:",
            &["not valid TOML"],
        ),
        (
            "no-name",
            "[machine]\nmemory = \"1G\"\n",
            ": name",
            &["expected a scenario name"],
        ),
    ];
    for (name, toml, line, what) in cases {
        let f = t.write(&format!("{name}.toml"), toml);
        let loc = format!("{name}.toml{line}");
        let mut needles = vec![loc.as_str()];
        needles.extend_from_slice(what);
        let out = spb(&[
            "run",
            s(&f),
            "--duration",
            "1s",
            "--policy",
            "spb",
            "--json",
            s(&t.path("out.json")),
        ]);
        assert_exit(&out, 3, &needles);
        assert_no_output(&t, "out.json", None);
    }
    // not UTF-8
    let f = t.write("binary.toml", [0xffu8, 0xfe, 0x00, 0x80]);
    assert_exit(
        &spb(&["run", s(&f)]),
        3,
        &["binary.toml", "expected a scenario TOML file"],
    );
}

#[test]
fn bad_command_line_values_exit_2() {
    let t = Tmp::new("cmdline");
    let json = t.path("out.json");
    std::fs::write(&json, "previous").unwrap();
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["run", "--memory", "1M"],
            &["--memory", "expected a RAM size from 64M to 15T", "1M"],
        ),
        (&["run", "--memory", "4K"], &["--memory", "64M"]),
        (
            // the scenario's firmware reservation leaves less than the smallest machine
            &["run", "syzkaller-256g", "--memory", "64M"],
            &[
                "--memory 64M",
                "expected at least 64 MiB",
                "machine.firmware_reserved keeps 4M of it, leaving 60M",
            ],
        ),
        (&["run", "--memory", "100T"], &["--memory", "15T"]),
        (
            &["run", "--memory=-5G"],
            &["--memory", "expected a size like", "-5G"],
        ),
        (&["run", "--memory", "-5G"], &["-5"]),
        (
            &["run", "--memory", "lots"],
            &["--memory", "expected a size like"],
        ),
        (
            &["run", "--duration=-1s"],
            &["--duration", "expected a duration like", "-1s"],
        ),
        (&["run", "--duration", "-1s"], &["-1"]),
        (
            &["run", "--duration", "0s"],
            &["--duration", "expected a positive duration"],
        ),
        (&["run", "--seed", "abc"], &["--seed", "abc"]),
        (&["run", "--seed", "-1"], &["-1"]),
        (
            &["run", "--policy", "bogus"],
            &[
                "--policy",
                "bogus",
                "expected vanilla, defrag, spb or spb-next",
            ],
        ),
        (
            &["run", "--spb-off", "nope"],
            &["--spb-off", "nope", "expected one of"],
        ),
        (
            &["run", "--layout", "pc99"],
            &["--layout", "expected i440fx or q35"],
        ),
        (
            &["run", "no-such-scenario"],
            &[
                "no-such-scenario",
                "no such built-in scenario",
                "built-ins:",
            ],
        ),
        (
            &["replay", "x", "--policy", "real,bogus"],
            &[
                "--policy",
                "bogus",
                "expected real, vanilla, defrag, spb or spb-next",
            ],
        ),
        (&["sweep", "--seeds", "5..2"], &["--seeds", "expected"]),
        (
            &["sweep", "--shard", "3/2"],
            &["--shard", "expected 0 <= I < N"],
        ),
        (
            &["map", "--color", "purple"],
            &["--color", "expected auto, always or never"],
        ),
        (&["soak", "--ops", "many"], &["--ops", "expected a count"]),
    ];
    for (args, what) in cases {
        let mut a: Vec<&str> = args.to_vec();
        if matches!(a[0], "run" | "replay") {
            a.extend(["--json", s(&json)]);
        }
        assert_exit(&spb(&a), 2, what);
        assert_no_output(&t, "out.json", Some("previous"));
    }
}

// ---------------------------------------------------------------------------------------------
// 6. zoneinfo and kpageflags files

#[test]
fn bad_zoneinfo_and_kpageflags_are_bad_input() {
    let t = Tmp::new("zoneinfo");
    let trace = t.write("trace.txt", good_trace());
    let json = t.path("out.json");
    // zoneinfo
    let cases: &[(&str, &[u8], &[&str])] = &[
        (
            "zi-empty",
            b"",
            &[
                "zi-empty:1:",
                "expected at least one `Node N, zone NAME` line",
            ],
        ),
        (
            "zi-garbage",
            b"garbage here\nmore garbage\n",
            &[
                "zi-garbage:1:",
                "expected at least one `Node N, zone NAME` line",
            ],
        ),
        (
            "zi-no-spanned",
            b"Node 0, zone   Normal\n  pages free     3\n",
            &["zi-no-spanned:1:", "no `spanned` line", "expected"],
        ),
        (
            "zi-binary",
            &[0xff, 0xfe, 0, 1, 2],
            &["zi-binary", "not UTF-8 text", "expected"],
        ),
    ];
    for (name, data, what) in cases {
        let zi = t.write(name, data);
        let out = spb(&[
            "replay",
            s(&trace),
            "--zoneinfo",
            s(&zi),
            "--json",
            s(&json),
        ]);
        assert_exit(&out, 3, what);
        assert_no_output(&t, "out.json", None);
    }
    // kpageflags for the 8 GiB zoneinfo: one 8-byte entry per pfn up to 0x280000 (zstd, zeros)
    let zi = zoneinfo_8g();
    let entries = 0x280000usize;
    let zst =
        |bytes: usize| zstd::stream::encode_all(std::io::Cursor::new(vec![0u8; bytes]), 3).unwrap();
    let cases: Vec<(&str, Vec<u8>, Vec<&str>)> = vec![
        (
            "kpageflags-odd",
            vec![0u8; 1003],
            vec![
                "kpageflags-odd",
                "byte offset 1000",
                "expected a multiple of 8 bytes",
            ],
        ),
        (
            "kpageflags-odd.zst",
            zst(entries * 8 + 5),
            vec!["kpageflags-odd.zst", "expected a multiple of 8 bytes"],
        ),
        (
            "kpageflags-short",
            vec![0u8; 1000],
            vec![
                "kpageflags-short",
                "125 entries",
                "expected one 8-byte entry per pfn",
            ],
        ),
        (
            "kpageflags-cut.zst",
            {
                let z = zst(entries * 8);
                z[..z.len() / 2].to_vec()
            },
            vec!["kpageflags-cut.zst", "corrupt"],
        ),
    ];
    for (name, data, what) in &cases {
        let k = t.write(name, data);
        let out = spb(&[
            "replay",
            s(&trace),
            "--zoneinfo",
            s(&zi),
            "--kpageflags",
            s(&k),
            "--json",
            s(&json),
        ]);
        assert_exit(&out, 3, what);
        assert_no_output(&t, "out.json", None);
    }
    // a kpageflags dump needs the zoneinfo
    let k = t.write("kpageflags", vec![0u8; 64]);
    assert_exit(
        &spb(&["replay", s(&trace), "--kpageflags", s(&k)]),
        3,
        &["kpageflags", "needs the machine's zoneinfo (--zoneinfo)"],
    );
}

// ---------------------------------------------------------------------------------------------
// 7. missing inputs, unwritable outputs

#[test]
fn missing_input_files_exit_4_naming_the_path() {
    let t = Tmp::new("missing");
    let trace = t.write("trace.txt", good_trace());
    let json = t.path("out.json");
    let nope = t.path("nope.txt");
    let toml = t.path("nope.toml");
    let zi = zoneinfo_8g();
    let empty_dir = t.path("capture");
    std::fs::create_dir(&empty_dir).unwrap();
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (vec!["replay", s(&nope)], vec![s(&nope), "no such file"]),
        (
            vec!["replay", s(&trace), "--zoneinfo", s(&nope)],
            vec![s(&nope), "no such file"],
        ),
        (
            vec![
                "replay",
                s(&trace),
                "--kpageflags",
                s(&nope),
                "--zoneinfo",
                s(&zi),
            ],
            vec![s(&nope), "no such file"],
        ),
        // a directory without a trace file
        (
            vec!["replay", s(&empty_dir)],
            vec![s(&empty_dir), "contains none of trace.txt.zst"],
        ),
        (
            vec!["run", s(&toml)],
            vec![s(&toml), "no such built-in scenario or file"],
        ),
        (
            vec!["sweep", "--merge", s(&nope)],
            vec![s(&nope), "no such file"],
        ),
    ];
    for (mut a, what) in cases {
        if a[0] != "sweep" {
            a.extend(["--json", s(&json)]);
        }
        assert_exit(&spb(&a), 4, &what);
        assert_no_output(&t, "out.json", None);
    }
}

#[test]
fn unwritable_outputs_exit_4_without_partial_files() {
    let t = Tmp::new("unwritable");
    let trace = t.write("trace.txt", good_trace());
    let file = t.write("a-file", "x");
    let before = t.listing("");
    let no_dir = t.path("no-such-dir/out.json");
    let under_file = file.join("out.json");
    let report_under_file = file.join("report");
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["replay", s(&trace), "--json", s(&no_dir)],
            format!("--json {}", no_dir.display()),
        ),
        (
            vec!["replay", s(&trace), "--json", s(&under_file)],
            format!("--json {}", under_file.display()),
        ),
        (
            vec!["replay", s(&trace), "--json", s(&t.0)],
            "is a directory".to_string(),
        ),
        (
            vec!["replay", s(&trace), "--report", s(&report_under_file)],
            format!("--report {}", report_under_file.display()),
        ),
        (
            vec!["replay", s(&trace), "--report", s(&file)],
            "exists and is not a directory".to_string(),
        ),
        (
            vec![
                "run",
                "--memory",
                "1G",
                "--duration",
                "1s",
                "--json",
                s(&no_dir),
            ],
            format!("--json {}", no_dir.display()),
        ),
        (
            vec![
                "run",
                "--memory",
                "1G",
                "--duration",
                "1s",
                "--report",
                s(&report_under_file),
            ],
            "is not a directory".to_string(),
        ),
        (
            vec![
                "ablate",
                "--memory",
                "1G",
                "--duration",
                "1s",
                "--json",
                s(&under_file),
            ],
            format!("--json {}", under_file.display()),
        ),
        (
            vec![
                "sweep",
                "--memory",
                "1G",
                "--duration",
                "1s",
                "--out",
                s(&no_dir),
            ],
            format!("--out {}", no_dir.display()),
        ),
    ];
    for (a, what) in cases {
        let start = std::time::Instant::now();
        assert_exit(&spb(&a), 4, &[&what]);
        assert!(
            start.elapsed().as_secs() < 30,
            "the output path is checked before the work: {a:?}"
        );
        assert_eq!(t.listing(""), before, "nothing written: {a:?}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");
    }
    // the same outputs in a good place are written whole, with no temporary file left
    let json = t.path("out.json");
    let rep = t.path("rep/sub");
    assert_ok(
        &spb(&[
            "replay",
            s(&trace),
            "--policy",
            "real",
            "--json",
            s(&json),
            "--report",
            s(&rep),
        ]),
        &[],
    );
    assert!(
        serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(&json).unwrap()).is_ok()
    );
    assert!(rep.join("index.html").is_file());
    let left: Vec<_> = std::fs::read_dir(&rep)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(
        left.is_empty() && t.listing("").iter().all(|n| !n.contains(".tmp")),
        "{left:?} {:?}",
        t.listing("")
    );
}
