//! Issue 13, classes 2–5, 7 and 8, end to end through the `spb` binary: output paths that are
//! not plain files, stdout full or closed, inputs without bounds, allocation failures, capture
//! directories with broken files, and messages that name the real problem.
//!
//! The classes and limits are listed in docs/reliability.md ("Hostile input, round two").

use std::io::Read;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::*;

/// A short run (1 GiB, 2 virtual seconds, one policy) with extra arguments.
fn short_run(extra: &[&str]) -> Output {
    let mut a = vec![
        "run",
        "--memory",
        "1G",
        "--duration",
        "2s",
        "--policy",
        "spb",
    ];
    a.extend_from_slice(extra);
    spb(&a)
}

/// A run that would take minutes (seed-16g at 64 GiB, 3 policies): an output error must be
/// found before it starts, so the command has to fail within seconds.
#[track_caller]
fn fails_before_long_run(extra: &[&str], code: i32, needles: &[&str]) {
    let mut a = vec!["run", "--memory", "64G", "--duration", "600s"];
    a.extend_from_slice(extra);
    let t0 = Instant::now();
    let out = spb(&a);
    assert_exit(&out, code, needles);
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "the error came after the run ({:?})",
        t0.elapsed()
    );
}

fn no_tmp_left(t: &Tmp, sub: &str) {
    let l = t.listing(sub);
    assert!(
        !l.iter().any(|n| n.contains(".tmp")),
        "temporary files left: {l:?}"
    );
}

fn zoneinfo_8g() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../spb-alloc/tests/data/zoneinfo-q35-8g")
}

fn variants_trace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../spb-lab/tests/data/variants.txt")
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

// ---------------------------------------------------------------------------------------------
// class 2: output paths

#[test]
fn output_devices_fifos_and_symlinks_are_written_not_replaced() {
    let t = Tmp::new("outputs");
    // a device is written in place (as root a rename would have replaced /dev/null)
    let out = short_run(&["--json", "/dev/null"]);
    assert_exit(&out, 0, &[]);
    let m = std::fs::symlink_metadata("/dev/null").unwrap();
    assert!(
        m.file_type().is_char_device(),
        "/dev/null is still a device"
    );
    // /dev/full: the write fails, exit 4 naming it, and it stays a device
    let out = short_run(&["--json", "/dev/full"]);
    assert_exit(&out, 4, &["/dev/full", "no space left on device"]);
    assert!(std::fs::symlink_metadata("/dev/full")
        .unwrap()
        .file_type()
        .is_char_device());
    // a symbolic link is followed: its target is written, the link stays a link
    let real = t.path("real.json");
    std::os::unix::fs::symlink("real.json", t.path("link.json")).unwrap();
    let out = short_run(&["--json", s(&t.path("link.json"))]);
    assert_exit(&out, 0, &[]);
    assert!(std::fs::symlink_metadata(t.path("link.json"))
        .unwrap()
        .file_type()
        .is_symlink());
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&real).unwrap()).unwrap();
    assert!(v.get("runs").is_some());
    // a link into another directory: the temporary file goes there, not next to the link
    std::fs::create_dir(t.path("other")).unwrap();
    std::os::unix::fs::symlink(t.path("other/x.json"), t.path("far.json")).unwrap();
    assert_exit(&short_run(&["--json", s(&t.path("far.json"))]), 0, &[]);
    assert!(t.path("other/x.json").is_file());
    no_tmp_left(&t, "");
    no_tmp_left(&t, "other");
    // a FIFO is written in place (a reader drains it)
    let fifo = t.path("fifo");
    let c = std::ffi::CString::new(s(&fifo)).unwrap();
    // SAFETY: valid path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let f2 = fifo.clone();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::fs::File::open(f2)
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        s
    });
    assert_exit(&short_run(&["--json", s(&fifo)]), 0, &[]);
    assert!(reader.join().unwrap().contains("\"runs\""));
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
    // sweep --out through a symlink and to a device
    std::os::unix::fs::symlink("sweep-real.jsonl", t.path("sweep.jsonl")).unwrap();
    let sw = |out: &str| {
        spb(&[
            "sweep",
            "--memory",
            "1G",
            "--duration",
            "1s",
            "--policies",
            "spb",
            "--out",
            out,
        ])
    };
    assert_exit(&sw(s(&t.path("sweep.jsonl"))), 0, &[]);
    assert!(t.path("sweep-real.jsonl").is_file());
    assert_exit(&sw("/dev/null"), 0, &[]);
    assert!(std::fs::symlink_metadata("/dev/null")
        .unwrap()
        .file_type()
        .is_char_device());
    no_tmp_left(&t, "");
}

#[test]
fn bad_output_paths_are_found_before_the_run_and_leave_nothing() {
    let t = Tmp::new("preflight");
    let p = |n: &str| t.path(n).to_str().unwrap().to_string();
    // a trailing slash names a directory; Rust's Path would silently drop it
    fails_before_long_run(
        &["--json", &p("newfile/")],
        4,
        &["newfile/", "names a directory"],
    );
    assert!(!t.path("newfile").exists());
    // a name too long for the file system (256 bytes)
    let long = p(&"n".repeat(256));
    fails_before_long_run(&["--json", &long], 4, &["file name"]);
    // 250 bytes fit (the temporary name does not grow with the target's)
    let ok = t.path(&"k".repeat(250));
    assert_exit(&short_run(&["--json", s(&ok)]), 0, &[]);
    assert!(ok.is_file());
    // a symbolic link loop
    std::os::unix::fs::symlink("loop.json", t.path("loop.json")).unwrap();
    fails_before_long_run(
        &["--json", &p("loop.json")],
        4,
        &["loop.json", "symbolic link loop"],
    );
    // an existing directory called index.html inside the report directory
    std::fs::create_dir_all(t.path("rep/index.html")).unwrap();
    fails_before_long_run(
        &["--report", &p("rep")],
        4,
        &["index.html", "not a regular file"],
    );
    assert_eq!(t.listing("rep"), vec!["index.html"]);
    // a report to stdout
    fails_before_long_run(&["--report", "-"], 4, &["--report -", "directory"]);
    // an unwritable directory: read-only for a normal user; as root, /proc
    let ro = if is_root() {
        PathBuf::from("/proc/spb-hostile-test.json")
    } else {
        std::fs::create_dir(t.path("ro")).unwrap();
        std::fs::set_permissions(
            t.path("ro"),
            std::os::unix::fs::PermissionsExt::from_mode(0o555),
        )
        .unwrap();
        t.path("ro/x.json")
    };
    fails_before_long_run(&["--json", s(&ro)], 4, &["cannot write in"]);
    // a report directory that does not exist yet is created by the check and removed again
    fails_before_long_run(
        &["--report", &p("newrep"), "--json", &p("newfile/")],
        4,
        &["newfile/"],
    );
    assert!(!t.path("newrep").exists(), "pre-flight left the directory");
    no_tmp_left(&t, "");
    // an output that is an input, or another output: refused, the input untouched
    let trace = t.write("t.txt", std::fs::read(variants_trace()).unwrap());
    let before = std::fs::read(&trace).unwrap();
    assert_exit(
        &spb(&["replay", s(&trace), "--json", s(&trace)]),
        4,
        &["--json", "is the trace", "expected different files"],
    );
    assert_eq!(std::fs::read(&trace).unwrap(), before);
    std::fs::create_dir(t.path("r")).unwrap();
    fails_before_long_run(
        &["--json", &p("r/index.html"), "--report", &p("r")],
        4,
        &["--report", "is --json"],
    );
    // a good report: written whole, no temporary file
    assert_exit(&short_run(&["--report", &p("good/sub")]), 0, &[]);
    let l = t.listing("good/sub");
    assert!(l.contains(&"index.html".to_string()), "{l:?}");
    assert!(l.iter().any(|n| n.ends_with(".csv")), "{l:?}");
    no_tmp_left(&t, "good/sub");
}

// ---------------------------------------------------------------------------------------------
// class 3: stdout

#[test]
fn stdout_full_or_closed_is_an_error_or_a_quiet_exit() {
    let t = Tmp::new("stdout");
    let full = || {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap()
    };
    for args in [
        vec!["scenarios"],
        vec![
            "run",
            "--memory",
            "1G",
            "--duration",
            "1s",
            "--policy",
            "spb",
        ],
        vec![
            "run",
            "--memory",
            "1G",
            "--duration",
            "1s",
            "--policy",
            "spb",
            "--json",
            "-",
        ],
        vec!["dump", "buddyinfo", "--memory", "1G", "--duration", "1s"],
        vec!["soak", "--ops", "2000", "--policy", "spb"],
    ] {
        let out = cmd(&args).stdout(full()).output().unwrap();
        assert_exit(&out, 4, &["spb: stdout: no space left on device"]);
        // a closed pipe: no message, exit 0
        let mut child = cmd(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert_exit(&out, 0, &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !err.contains("spb:"),
            "{args:?}: quiet exit expected:\n{err}"
        );
    }
    // the other outputs are still written when stdout is closed or full
    let j = t.path("x.json");
    let out = cmd(&[
        "run",
        "--memory",
        "1G",
        "--duration",
        "1s",
        "--policy",
        "spb",
        "--json",
        s(&j),
    ])
    .stdout(full())
    .output()
    .unwrap();
    assert_exit(&out, 4, &["stdout"]);
    assert!(j.is_file());
    // stderr full as well: still the documented exit code, no panic (nothing can be seen)
    let out = cmd(&["run", "/nonexistent/x.toml"])
        .stderr(full())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
}

// ---------------------------------------------------------------------------------------------
// class 4: input bounds, memory check

#[test]
fn unbounded_inputs_are_refused_with_bounded_memory() {
    let t = Tmp::new("bounds");
    let t0 = Instant::now();
    assert_exit(
        &spb(&["run", "/dev/zero"]),
        3,
        &["/dev/zero", "limit for a scenario TOML file"],
    );
    assert_exit(
        &spb(&["sweep", "--merge", "/dev/zero"]),
        3,
        &["/dev/zero", "limit for a sweep results file"],
    );
    assert!(t0.elapsed() < Duration::from_secs(30));
    // a trace longer than the op log may grow (4 KiB available: 128 operations of 16 B)
    let mut tr = String::new();
    for i in 0..300u64 {
        tr.push_str(&format!("            bash-1000    [000] .....   {:.6}: mm_page_alloc: pfn={:#x} order=2 migratetype=1 gfp_flags=GFP_HIGHUSER_MOVABLE|__GFP_COMP\n", 100.0 + i as f64 * 1e-5, 0x100000 + 4 * i));
    }
    let tp = t.write("t300.txt", &tr);
    let out = cmd(&["replay", s(&tp), "--policy", "vanilla"])
        .env("SPB_MEMORY_AVAILABLE", "4K")
        .output()
        .unwrap();
    assert_exit(&out, 3, &["t300.txt:129:", "more than 128 operations"]);
    assert_exit(&spb(&["replay", s(&tp), "--policy", "vanilla"]), 0, &[]);
    // a 2 MiB scenario file
    let big = t.write("big.toml", "# padding\n".repeat(200_000));
    assert_exit(&spb(&["run", s(&big)]), 3, &["big.toml", "limit"]);
    // a zoneinfo whose Normal zone spans 2^36 pages: refused at its line, nothing allocated
    let zi = std::fs::read_to_string(zoneinfo_8g()).unwrap();
    let huge = t.write(
        "zi36",
        zi.replace("spanned  1572864", "spanned  68719476736")
            .replace("present  1572864", "present  68719476736"),
    );
    assert_exit(
        &spb(&["replay", "--zoneinfo", s(&huge), s(&variants_trace())]),
        3,
        &["zi36:135:", "zone Normal", "expected zones below pfn"],
    );
    // a zoneinfo of 16 TiB is valid but needs more model memory than the host has
    let big = t.write(
        "zi32",
        zi.replace("spanned  1572864", "spanned  4293918720")
            .replace("present  1572864", "present  4293918720"),
    );
    let out = cmd(&["replay", "--zoneinfo", s(&big), s(&variants_trace())])
        .env("SPB_MEMORY_AVAILABLE", "4G")
        .output()
        .unwrap();
    assert_exit(
        &out,
        3,
        &["zi32", "GiB of model memory", "this machine has 4.0 GiB"],
    );
    // --memory 15T (the largest valid size): not even one of the 4 default policies' machines
    // fits, so the check refuses before building anything
    let out = cmd(&["run", "--memory", "15T", "--duration", "1s"])
        .env("SPB_MEMORY_AVAILABLE", "32G")
        .output()
        .unwrap();
    assert_exit(
        &out,
        3,
        &[
            "15T",
            "1 machine of",
            "GiB of model memory",
            "this machine has 32.0 GiB",
        ],
    );
    // one machine fits but not two: the policies run one at a time, and say so
    let out = cmd(&["run", "--memory", "1G", "--duration", "1s", "--jobs", "4"])
        .env("SPB_MEMORY_AVAILABLE", "70M")
        .output()
        .unwrap();
    assert_exit(
        &out,
        0,
        &["1 of the 4 policies at a time", "4 would not fit"],
    );
    assert_exit(&spb(&["run", "--jobs", "0"]), 2, &["--jobs"]);
    // the same for a sweep's cells
    let sweep: Vec<&str> = "sweep --memory 1G --duration 1s --policies vanilla,spb --jobs 2"
        .split(' ')
        .collect();
    let out = cmd(&sweep)
        .env("SPB_MEMORY_AVAILABLE", "70M")
        .output()
        .unwrap();
    assert_exit(&out, 0, &["1 cell at a time", "2 would not fit"]);
    // the estimate lets a small machine through
    let out = cmd(&[
        "run",
        "--memory",
        "1G",
        "--duration",
        "1s",
        "--policy",
        "spb",
    ])
    .env("SPB_MEMORY_AVAILABLE", "1G")
    .output()
    .unwrap();
    assert_exit(&out, 0, &[]);
    let out = cmd(&["run", "--memory", "1G", "--duration", "1s"])
        .env("SPB_MEMORY_AVAILABLE", "lots")
        .output()
        .unwrap();
    assert_exit(&out, 3, &["SPB_MEMORY_AVAILABLE", "lots"]);
}

// ---------------------------------------------------------------------------------------------
// class 5: allocation failures

#[test]
fn failed_allocation_is_an_error_not_an_abort() {
    // The memory check off, and an address-space limit of 2 GiB: the 8T machine's page table
    // (24 GiB) cannot be allocated. Before: "memory allocation of ... failed", SIGABRT.
    let mut c = cmd(&[
        "run",
        "--memory",
        "8T",
        "--duration",
        "1s",
        "--policy",
        "spb",
    ]);
    c.env("SPB_MEMORY_AVAILABLE", "unlimited");
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        c.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 2 << 30,
                rlim_max: 2 << 30,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = c.output().unwrap();
    assert_exit(
        &out,
        3,
        &["out of memory: cannot allocate", "bytes for page metadata"],
    );
}

// ---------------------------------------------------------------------------------------------
// class 7: capture directories

#[test]
fn capture_directory_files_are_validated_and_named() {
    let t = Tmp::new("capture");
    let trace = std::fs::read(variants_trace()).unwrap();
    t.write("cap/trace.txt", &trace);
    t.write("cap/before/zoneinfo", std::fs::read(zoneinfo_8g()).unwrap());
    let cap = t.path("cap");
    let replay = || spb(&["replay", s(&cap), "--policy", "vanilla"]);
    assert_exit(&replay(), 0, &[]);
    let meta = t.path("cap/meta.json");
    // truncated meta.json (its markers set the snapshot window: silently ignored before)
    std::fs::write(
        &meta,
        r#"{"markers": [{"ts": 1.5, "text": "BUDDYCAP SNAPSHOT_BEGIN"}"#,
    )
    .unwrap();
    assert_exit(
        &replay(),
        3,
        &["cap/meta.json:1:", "expected the capture's JSON summary"],
    );
    // binary
    std::fs::write(&meta, [0x7b, 0xff, 0xfe, 0x00, 0x01]).unwrap();
    assert_exit(&replay(), 3, &["cap/meta.json", "not UTF-8"]);
    // a marker without a time
    std::fs::write(
        &meta,
        r#"{"markers": [{"text": "BUDDYCAP SNAPSHOT_BEGIN"}]}"#,
    )
    .unwrap();
    assert_exit(&replay(), 3, &["cap/meta.json", "markers[0]"]);
    // a well-formed one is accepted
    std::fs::write(
        &meta,
        r#"{"markers": [{"ts": 1.5, "text": "BUDDYCAP SNAPSHOT_BEGIN"}]}"#,
    )
    .unwrap();
    assert_exit(&replay(), 0, &[]);
    std::fs::remove_file(&meta).unwrap();
    // a link loop, a link to /dev/zero, a dangling link
    std::os::unix::fs::symlink("meta.json", &meta).unwrap();
    assert_exit(&replay(), 4, &["cap/meta.json", "symbolic link loop"]);
    std::fs::remove_file(&meta).unwrap();
    std::os::unix::fs::symlink("/dev/zero", t.path("cap/before/kpageflags.zst")).unwrap();
    assert_exit(
        &replay(),
        3,
        &[
            "cap/before/kpageflags.zst",
            "character device, expected a regular file",
        ],
    );
    std::fs::remove_file(t.path("cap/before/kpageflags.zst")).unwrap();
    std::os::unix::fs::symlink("gone", t.path("cap/before/pagetypeinfo")).unwrap();
    assert_exit(
        &replay(),
        4,
        &["cap/before/pagetypeinfo", "dangling symbolic link to gone"],
    );
    std::fs::remove_file(t.path("cap/before/pagetypeinfo")).unwrap();
    // the trace itself as a loop: named, not "contains none of"
    std::fs::rename(t.path("cap/trace.txt"), t.path("cap/t")).unwrap();
    std::os::unix::fs::symlink("trace.txt", t.path("cap/trace.txt")).unwrap();
    assert_exit(&replay(), 4, &["cap/trace.txt", "symbolic link loop"]);
    std::fs::remove_file(t.path("cap/trace.txt")).unwrap();
    std::fs::rename(t.path("cap/t"), t.path("cap/trace.txt")).unwrap();
    // a truncated zoneinfo snapshot
    let zi = std::fs::read_to_string(zoneinfo_8g()).unwrap();
    t.write("cap/after/zoneinfo", &zi[..300]);
    assert_exit(&replay(), 3, &["cap/after/zoneinfo:1:", "spanned"]);
}

// ---------------------------------------------------------------------------------------------
// class 8: messages

#[test]
fn messages_name_the_real_problem() {
    let t = Tmp::new("messages");
    let trace = variants_trace();
    let zi = zoneinfo_8g();
    // a directory where a file is expected: I/O (4), not bad input
    assert_exit(
        &spb(&[
            "replay",
            "--zoneinfo",
            s(&zi),
            "--kpageflags",
            s(&t.0),
            s(&trace),
        ]),
        4,
        &["--kpageflags", "is a directory, expected a file"],
    );
    assert_exit(
        &spb(&["sweep", "--merge", s(&t.0)]),
        4,
        &["is a directory, expected a file"],
    );
    // symbolic link loops are loops, not missing files
    let lp = t.path("loop");
    std::os::unix::fs::symlink("loop", &lp).unwrap();
    for args in [
        vec!["replay", "--zoneinfo", s(&lp), s(&trace)],
        vec!["run", s(&lp)],
        vec!["sweep", "--merge", s(&lp)],
        vec!["replay", s(&lp)],
    ] {
        assert_exit(&spb(&args), 4, &["symbolic link loop"]);
    }
    // a zoneinfo with a UTF-8 byte order mark is accepted
    let mut bom = b"\xef\xbb\xbf".to_vec();
    bom.extend(std::fs::read(&zi).unwrap());
    let zb = t.write("zoneinfo-bom", bom);
    assert_exit(
        &spb(&[
            "replay",
            "--zoneinfo",
            s(&zb),
            "--policy",
            "vanilla",
            s(&trace),
        ]),
        0,
        &[],
    );
    // firmware_reserved that leaves nothing: the key and its line
    let fw = t.write(
        "fw.toml",
        "name = \"fw\"\nduration = \"10s\"\n[machine]\nmemory = \"1G\"\nfirmware_reserved = \"100%\"\n",
    );
    assert_exit(
        &spb(&["run", s(&fw)]),
        3,
        &[
            "fw.toml:5:",
            "machine.firmware_reserved",
            "left to the kernel",
        ],
    );
    // a kpageflags dump shorter than its kpagecount: the message names the kpageflags file
    let n = 0x280000usize;
    let kf = t.write("kpageflags", vec![0u8; (n / 2) * 8]);
    let kc = t.write("kpagecount", vec![0u8; n * 8]);
    let out = spb(&[
        "replay",
        "--zoneinfo",
        s(&zi),
        "--kpageflags",
        s(&kf),
        "--kpagecount",
        s(&kc),
        s(&trace),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_exit(&out, 3, &["kpageflags ends after"]);
    assert!(
        err.starts_with(&format!("spb: {}:", kf.display())),
        "the kpageflags file first:\n{err}"
    );
}
