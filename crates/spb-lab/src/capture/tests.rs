//! Capture tests against a fake tracefs tree and a fake /proc (no root or kernel needed).

use std::sync::Mutex;

use super::*;
use crate::trace::tests::Scratch;
use crate::trace::{count_events, TraceReader};

/// A backend whose "tracefs" is a plain directory: creating an instance populates it with
/// regular files, `trace_pipe` holding fixed text.
struct Fake {
    root: bool,
    pipe_text: String,
    missing_event: Option<&'static str>,
    created: Mutex<Vec<PathBuf>>,
    removed: Mutex<Vec<PathBuf>>,
}

impl Fake {
    fn new(pipe_text: String) -> Fake {
        Fake {
            root: true,
            pipe_text,
            missing_event: None,
            created: Mutex::default(),
            removed: Mutex::default(),
        }
    }
}

impl Backend for Fake {
    fn is_root(&self) -> bool {
        self.root
    }
    fn is_kernel_tracefs(&self, _: &Path) -> bool {
        false
    }
    fn mount_tracefs(&self, _: &Path) -> io::Result<()> {
        Err(io::Error::other("no mounting in tests"))
    }
    fn unmount(&self, _: &Path) -> io::Result<()> {
        Ok(())
    }
    fn create_instance(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir(dir)?;
        for (f, c) in [
            ("tracing_on", "0\n"),
            (
                "trace_clock",
                "[local] global counter uptime perf mono mono_raw boot\n",
            ),
            ("buffer_size_kb", "7 (expanded: 1408)\n"),
            ("trace", ""),
            ("trace_marker", ""),
            ("set_event", ""),
        ] {
            fs::write(dir.join(f), c)?;
        }
        fs::write(dir.join("trace_pipe"), &self.pipe_text)?;
        fs::create_dir_all(dir.join("events"))?;
        fs::write(dir.join("events/enable"), "0\n")?;
        for e in REQUIRED_EVENTS.iter().chain(["compaction"].iter()) {
            if Some(*e) == self.missing_event {
                continue;
            }
            fs::create_dir_all(dir.join("events").join(e))?;
            fs::write(dir.join("events").join(e).join("enable"), "0\n")?;
        }
        for (cpu, dropped) in [(0, 0), (1, 3)] {
            let d = dir.join(format!("per_cpu/cpu{cpu}"));
            fs::create_dir_all(&d)?;
            fs::write(
                d.join("stats"),
                format!(
                    "entries: 0\noverrun: 0\ncommit overrun: 0\nbytes: 0\noldest event ts:   747.090626\nnow ts:   747.187648\ndropped events: {dropped}\nread events: 100\n"
                ),
            )?;
        }
        self.created.lock().unwrap().push(dir.to_path_buf());
        Ok(())
    }
    fn remove_instance(&self, dir: &Path) -> io::Result<()> {
        self.removed.lock().unwrap().push(dir.to_path_buf());
        fs::remove_dir_all(dir)
    }
}

fn fake_tracefs(s: &Scratch) -> PathBuf {
    let t = s.0.join("tracefs");
    fs::create_dir_all(t.join("instances")).unwrap();
    t
}

fn fake_proc(s: &Scratch) -> PathBuf {
    let p = s.0.join("proc");
    fs::create_dir_all(p.join("sys/kernel")).unwrap();
    for f in PROC_SNAPSHOT_FILES {
        fs::write(p.join(f), format!("fake {f}\n")).unwrap();
    }
    fs::write(p.join("uptime"), "123.45 67.89\n").unwrap();
    fs::write(p.join("sys/kernel/osrelease"), "6.18.0-fake\n").unwrap();
    let flags: Vec<u8> = (0..4096u64)
        .flat_map(|i| (i * 0x9e37).to_le_bytes())
        .collect();
    fs::write(p.join("kpageflags"), &flags).unwrap();
    fs::write(p.join("kpagecount"), vec![1u8; 4096 * 8]).unwrap();
    p
}

fn pipe_text(n: usize) -> String {
    let mut t = String::new();
    for i in 0..n {
        let pfn = 0x100000 + i;
        match i % 4 {
            0 => t.push_str(&format!("            bash-2397    [001] .....  1523.{:06}: mm_page_alloc: page=00000000a1b2c3d4 pfn=0x{pfn:x} order=0 migratetype=1 gfp_flags=GFP_HIGHUSER_MOVABLE|__GFP_ZERO\n", i)),
            1 => t.push_str(&format!("            bash-2397    [001] .....  1523.{:06}: mm_page_free: page=00000000a1b2c3d4 pfn=0x{pfn:x} order=0\n", i)),
            2 => t.push_str(&format!("            bash-2397    [001] d..3.  1523.{:06}: mm_page_alloc_zone_locked: page=00000000a1b2c3d4 pfn=0x{pfn:x} order=0 migratetype=1 percpu_refill=1\n", i)),
            _ => t.push_str(&format!("      kcompactd0-36      [000] .....  1523.{:06}: mm_compaction_kcompactd_sleep: nid=0\n", i)),
        }
    }
    t.push_str("CPU:1 [LOST 7 EVENTS]\n");
    // A final line without '\n'.
    t.push_str("            bash-2397    [001] .....  1524.000000: mm_page_free: page=00000000a1b2c3d4 pfn=0x10 order=0");
    t
}

fn opts(s: &Scratch, duration: Duration) -> CaptureOptions {
    let mut o = CaptureOptions::new(duration, s.0.join("out"));
    o.tracefs = Some(fake_tracefs(s));
    o.proc_root = fake_proc(s);
    o.buffer_kb = 1024;
    o.extra_events = vec!["compaction".into(), "vmscan/nope".into()];
    o
}

#[test]
fn options_validation() {
    let s = Scratch::new("cap-opts");
    let ok = CaptureOptions::new(Duration::from_secs(2), s.0.join("new"));
    ok.validate().unwrap();
    let mut o = ok.clone();
    o.duration = Duration::ZERO;
    assert!(matches!(o.validate(), Err(CaptureError::InvalidOptions(m)) if m.contains("duration")));
    let mut o = ok.clone();
    o.buffer_kb = 1;
    assert!(
        matches!(o.validate(), Err(CaptureError::InvalidOptions(m)) if m.contains("buffer_kb"))
    );
    o.buffer_kb = MAX_BUFFER_KB + 1;
    assert!(o.validate().is_err());
    let mut o = ok.clone();
    o.extra_events = vec!["../../x".into()];
    assert!(o.validate().is_err());
    // Existing empty dir is fine, non-empty or a file is not.
    let mut o = ok.clone();
    o.out = s.0.join("empty");
    fs::create_dir(&o.out).unwrap();
    o.validate().unwrap();
    fs::write(o.out.join("x"), "").unwrap();
    assert!(
        matches!(o.validate(), Err(CaptureError::InvalidOptions(m)) if m.contains("not empty"))
    );
    o.out = o.out.join("x");
    assert!(
        matches!(o.validate(), Err(CaptureError::InvalidOptions(m)) if m.contains("not a directory"))
    );
}

#[test]
fn not_root_and_no_tracefs() {
    let s = Scratch::new("cap-root");
    let mut fake = Fake::new(String::new());
    fake.root = false;
    let mut o = opts(&s, Duration::from_millis(10));
    o.tracefs = None;
    let e = capture_with(&fake, &o, Arc::default(), |_| {}).unwrap_err();
    assert!(matches!(e, CaptureError::NotRoot), "{e}");
    // As root, with no kernel tracefs and mounting impossible.
    fake.root = true;
    o.tracefs = Some(s.0.join("not-a-tracefs"));
    fs::create_dir_all(s.0.join("not-a-tracefs")).unwrap();
    let e = capture_with(&fake, &o, Arc::default(), |_| {}).unwrap_err();
    assert!(
        matches!(&e, CaptureError::NoTracefs(m) if m.contains("instances")),
        "{e}"
    );
}

#[test]
fn missing_event_is_named_and_instance_removed() {
    let s = Scratch::new("cap-missing");
    let mut fake = Fake::new(pipe_text(4));
    fake.missing_event = Some("kmem/mm_page_alloc_extfrag");
    let o = opts(&s, Duration::from_millis(10));
    let e = capture_with(&fake, &o, Arc::default(), |_| {}).unwrap_err();
    assert!(
        matches!(&e, CaptureError::EventMissing(n) if n == "kmem/mm_page_alloc_extfrag"),
        "{e}"
    );
    assert!(e.to_string().contains("mm_page_alloc_extfrag"));
    let created = fake.created.lock().unwrap().clone();
    assert_eq!(created.len(), 1);
    assert_eq!(*fake.removed.lock().unwrap(), created);
    assert!(!created[0].exists());
}

#[test]
fn full_flow_on_fake_tracefs() {
    let s = Scratch::new("cap-full");
    let fake = Fake::new(pipe_text(1000));
    let o = opts(&s, Duration::from_millis(300));
    let mut phases = Vec::new();
    let sum = capture_with(&fake, &o, Arc::default(), |p| {
        if phases.last() != Some(&p.phase) {
            phases.push(p.phase)
        }
    })
    .unwrap();
    assert_eq!(
        phases,
        [
            CapturePhase::Setup,
            CapturePhase::SnapshotBefore,
            CapturePhase::Tracing,
            CapturePhase::SnapshotAfter,
            CapturePhase::Draining,
            CapturePhase::Done
        ]
    );
    assert!(!sum.interrupted);
    assert!(sum.duration_s >= 0.29, "{}", sum.duration_s);
    assert_eq!(sum.kernel, "6.18.0-fake");
    assert_eq!(sum.trace_clock, "mono");
    assert_eq!(sum.lines_total, 1002);
    assert_eq!(sum.event_counts["mm_page_alloc"], 250);
    assert_eq!(sum.event_counts["mm_page_free"], 251);
    assert_eq!(sum.event_counts["mm_page_alloc_zone_locked"], 250);
    assert_eq!(sum.event_counts["mm_compaction_kcompactd_sleep"], 250);
    assert_eq!((sum.lost_event_lines, sum.lost_events_in_stream), (1, 7));
    assert_eq!(sum.ringbuffer_stats.len(), 2);
    assert_eq!(sum.events_lost, 3);
    assert_eq!(sum.missing_extra_events, vec!["vmscan/nope".to_string()]);
    assert!(sum.enabled_events.contains(&"compaction".to_string()));
    let texts: Vec<&str> = sum.markers.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "BUDDYCAP SNAPSHOT_BEGIN name=out",
            "BUDDYCAP SNAPSHOT_END",
            "BUDDYCAP WORKLOAD_BEGIN name=out",
            "BUDDYCAP WORKLOAD_END rc=0",
            "BUDDYCAP AFTER_SNAPSHOT_BEGIN",
            "BUDDYCAP AFTER_SNAPSHOT_END"
        ]
    );

    let out = &o.out;
    // Snapshots.
    for d in ["before", "after"] {
        for f in PROC_SNAPSHOT_FILES {
            assert_eq!(
                fs::read_to_string(out.join(d).join(f)).unwrap(),
                format!("fake {f}\n")
            );
        }
        let flags =
            zstd::decode_all(File::open(out.join(d).join("kpageflags.zst")).unwrap()).unwrap();
        assert_eq!(flags, fs::read(o.proc_root.join("kpageflags")).unwrap());
        assert!(out.join(d).join("kpagecount.zst").is_file());
    }
    // meta.json round-trips.
    let meta: CaptureSummary =
        serde_json::from_str(&fs::read_to_string(out.join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta, sum);
    assert!(fs::read_to_string(out.join("ringbuffer_stats.txt"))
        .unwrap()
        .contains("== cpu1\n"));
    // The trace: page= removed, readable as a directory, same counts.
    let text = String::from_utf8(
        zstd::decode_all(File::open(out.join("trace.txt.zst")).unwrap()).unwrap(),
    )
    .unwrap();
    assert!(!text.contains("page="));
    assert!(text.contains("mm_page_alloc: pfn=0x100000 order=0 migratetype=1 gfp_flags="));
    assert!(text.ends_with("mm_page_free: pfn=0x10 order=0\n"));
    let r = TraceReader::open(out).unwrap();
    assert!(r.path().ends_with("trace.txt.zst"));
    let c = count_events(out).unwrap();
    assert_eq!(c.lines, 1002);
    assert_eq!(c.parse_errors, 0);
    assert_eq!(c.count("mm_page_alloc"), 250);
    assert_eq!(c.lost_events, 7);
    // The instance is gone; the fake tracefs still has its instances/ dir.
    let created = fake.created.lock().unwrap().clone();
    assert_eq!(*fake.removed.lock().unwrap(), created);
    assert!(!created[0].exists());
    assert!(o.tracefs.as_ref().unwrap().join("instances").is_dir());
}

#[test]
fn stop_flag_ends_early_with_valid_output() {
    let s = Scratch::new("cap-stop");
    let fake = Fake::new(pipe_text(100));
    let mut o = opts(&s, Duration::from_secs(600));
    o.strip_page_field = false;
    o.kpage_snapshots = false;
    let stop = Arc::new(AtomicBool::new(true));
    let t = Instant::now();
    let sum = capture_with(&fake, &o, stop, |_| {}).unwrap();
    assert!(t.elapsed() < Duration::from_secs(30));
    assert!(sum.interrupted);
    assert!(sum
        .markers
        .iter()
        .any(|m| m.text == "BUDDYCAP WORKLOAD_END rc=130"));
    assert!(!o.out.join("before/kpageflags.zst").exists());
    // Unstripped: the output is the pipe text verbatim (plus the final newline).
    let text = String::from_utf8(
        zstd::decode_all(File::open(o.out.join("trace.txt.zst")).unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(text, pipe_text(100) + "\n");
    assert_eq!(count_events(&o.out).unwrap().parse_errors, 0);
}

#[test]
fn page_field_stripping() {
    let cut = |l: &str| match strip_page(l.as_bytes()) {
        Some((a, b)) => format!("{}{}", &l[..a], &l[b..]),
        None => l.to_string(),
    };
    assert_eq!(
        cut("  a-1  [000] .....  5.5: mm_page_free: page=00000000a1b2c3d4 pfn=0x10 order=0"),
        "  a-1  [000] .....  5.5: mm_page_free: pfn=0x10 order=0"
    );
    assert_eq!(
        cut("  a-1  [000] .....  5.5: mm_page_free: page=0000000000000000"),
        "  a-1  [000] .....  5.5: mm_page_free:"
    );
    let other = "  a-1  [000] .....  5.5: tracing_mark_write: x: page=1 y";
    assert_eq!(cut(other), other);
    // A comm that contains ": page=" is left alone.
    let tricky = "  a: page=1-1  [000] .....  5.5: mm_page_free: pfn=0x10 order=0";
    assert_eq!(cut(tricky), tricky);
    let no_page = "  a-1  [000] .....  5.5: mm_page_free: pfn=0x10 order=0";
    assert_eq!(cut(no_page), no_page);
}

/// A real 2-second capture on this machine; needs root and a kernel with tracefs. Ignored by
/// default: `cargo test -p spb-lab --lib capture::tests::real_capture -- --ignored --nocapture`.
#[test]
#[ignore = "needs root + tracefs; touches the running kernel"]
fn real_capture() {
    let s = Scratch::new("cap-real");
    let mut o = CaptureOptions::new(Duration::from_secs(2), s.0.join("real"));
    o.buffer_kb = 8192;
    let sum = capture(&o, Arc::default(), |p| {
        eprintln!("{:?} {:?} lines={}", p.phase, p.elapsed, p.lines)
    });
    match sum {
        Ok(sum) => {
            eprintln!("{}", serde_json::to_string_pretty(&sum).unwrap());
            let c = count_events(&o.out).unwrap();
            eprintln!(
                "count_events: lines={} errors={} events={:?}",
                c.lines, c.parse_errors, c.events
            );
            assert_eq!(c.parse_errors, 0);
            assert_eq!(c.lines, sum.lines_total);
            assert_eq!(c.markers.len(), 6);
            let text = zstd::decode_all(File::open(o.out.join("trace.txt.zst")).unwrap()).unwrap();
            let text = String::from_utf8_lossy(&text);
            for l in text.lines().take(3) {
                eprintln!("{l}");
            }
            assert!(!text.contains(" page="));
        }
        Err(e) => panic!("real capture failed: {e}"),
    }
}

/// `--from-boot` on a fake tracefs whose top-level buffer holds boot text: the boot buffer is
/// saved (and the top-level `tracing_on` restored), the stream uses the top-level clock, the
/// workload's end is marked `PHASE stress_end`, and the replay detects the layout.
#[test]
fn from_boot_saves_the_boot_buffer_in_the_capture_layout() {
    let s = Scratch::new("cap-boot");
    let fake = Fake::new(pipe_text(40));
    let mut o = opts(&s, Duration::from_millis(30));
    o.from_boot = true;
    let t = o.tracefs.clone().unwrap();
    fs::write(t.join("trace_clock"), "[local] global mono\n").unwrap();
    fs::write(t.join("tracing_on"), "1\n").unwrap();
    fs::write(
        t.join("trace"),
        "# tracer: nop\n          <idle>-0       [000] d..4.     0.630291: mm_page_alloc_zone_locked: page=00000000946db1a0 pfn=0x100a09 order=0 migratetype=0 percpu_refill=1\n          <idle>-0       [000] d..1.     0.630744: mm_page_alloc: page=00000000946db1a0 pfn=0x100a09 order=0 migratetype=0 gfp_flags=__GFP_NOWARN|__GFP_NORETRY|__GFP_COMP\n",
    )
    .unwrap();
    fs::create_dir_all(t.join("per_cpu/cpu0")).unwrap();
    fs::write(t.join("per_cpu/cpu0/stats"), "entries: 2\noverrun: 0\n").unwrap();
    fs::write(
        o.proc_root.join("iomem"),
        "  64400000-653fffff : Kernel code\n",
    )
    .unwrap();
    let sum = capture_with(&fake, &o, Arc::default(), |_| {}).unwrap();
    assert_eq!(sum.boot_trace_lines, 3);
    assert_eq!(sum.boot_trace_kmem_events, 2);
    assert_eq!(sum.trace_clock, "local");
    assert!(
        sum.markers.iter().any(|m| m.text == "PHASE stress_end"),
        "{:?}",
        sum.markers
    );
    // the top-level buffer is on again
    assert_eq!(
        fs::read_to_string(t.join("tracing_on")).unwrap().trim(),
        "1"
    );
    let out = &o.out;
    let boot = count_events(out.join("boot_trace.txt.zst")).unwrap();
    assert_eq!(boot.count("mm_page_alloc"), 1);
    assert!(out.join("iomem.txt").is_file());
    assert!(out.join("boot_ringbuffer_stats.txt").is_file());
    let bc = crate::replay::boot::detect(out).expect("from-boot layout detected");
    assert_eq!(
        bc.boot_text.as_deref(),
        Some(out.join("boot_trace.txt.zst").as_path())
    );
    assert_eq!(
        bc.stream.as_deref(),
        Some(out.join("trace.txt.zst").as_path())
    );
    assert!(bc.kpageflags_boot.is_some() && bc.end_kpageflags.is_some());

    // a boot buffer without kmem events: an error naming the kernel command line
    let s2 = Scratch::new("cap-boot-empty");
    let mut o2 = opts(&s2, Duration::from_millis(10));
    o2.from_boot = true;
    let t2 = o2.tracefs.clone().unwrap();
    fs::write(t2.join("trace_clock"), "[local] mono\n").unwrap();
    fs::write(t2.join("tracing_on"), "1\n").unwrap();
    fs::write(t2.join("trace"), "# tracer: nop\n").unwrap();
    let e = capture_with(&fake, &o2, Arc::default(), |_| {}).unwrap_err();
    assert!(
        e.to_string().contains("trace_event=kmem:mm_page_alloc"),
        "{e}"
    );
    assert_eq!(
        fs::read_to_string(t2.join("tracing_on")).unwrap().trim(),
        "1"
    );
}
