//! Unit tests of the replay rules on tiny hand-written traces.

use std::path::PathBuf;

use super::*;

/// One Normal zone of 512 Mi... 2 GiB: 1 GiB managed at the bottom, the rest uninitialised
/// (deferred init) except the memmap estimate at the top.
const ZONEINFO: &str = "Node 0, zone   Normal\n  pages free     262144\n        spanned  524288\n        present  524288\n        managed  262144\n  start_pfn:           1048576\n";

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("spb-replay-unit-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn line(ts: f64, cpu: u32, body: &str) -> String {
    format!("            bash-100     [{cpu:03}] .....  {ts:>10.6}: {body}\n")
}

fn alloc(ts: f64, pfn: u64, order: u32, gfp: &str, mt: u32) -> String {
    line(
        ts,
        0,
        &format!("mm_page_alloc: pfn={pfn:#x} order={order} migratetype={mt} gfp_flags={gfp}"),
    )
}

fn free(ts: f64, pfn: u64, order: u32) -> String {
    line(ts, 0, &format!("mm_page_free: pfn={pfn:#x} order={order}"))
}

fn run(
    name: &str,
    lines: &[String],
    strict: bool,
    policies: &str,
) -> Result<ReplayOutput, ReplayError> {
    let d = dir(name);
    let t = d.join("trace.txt");
    std::fs::write(&t, lines.concat()).unwrap();
    let z = d.join("zoneinfo");
    std::fs::write(&z, ZONEINFO).unwrap();
    let opts = ReplayOptions {
        policies: PolicySel::parse_list(policies, &[]).unwrap(),
        zoneinfo: Some(z),
        strict,
        threads: 2,
        ..Default::default()
    };
    let r = replay(&t, &opts);
    let _ = std::fs::remove_dir_all(&d);
    r
}

const ALL: &str = "real,vanilla,defrag,spb";
const K: u64 = 0x100000;

fn notes_of(out: &ReplayOutput, policy: &str) -> serde_json::Value {
    out.doc
        .runs
        .iter()
        .find(|r| r.policy == policy)
        .unwrap()
        .extra["replay_notes"]
        .clone()
}

fn no_sim_errors(out: &ReplayOutput) {
    for r in &out.doc.runs {
        let n = &r.extra["replay_notes"];
        for k in [
            "sim_free_errors",
            "sim_split_errors",
            "real_alloc_at_failed",
            "grow_errors",
            "free_unmapped",
            "prefill_alloc_at_failed",
        ] {
            assert!(
                n.get(k).is_none(),
                "{}: {k} = {:?} ({n})",
                r.policy,
                n.get(k)
            );
        }
    }
}

#[test]
fn free_batched_is_not_a_second_free() {
    let t = vec![
        alloc(1.0, K + 8, 0, "GFP_HIGHUSER_MOVABLE", 1),
        free(1.1, K + 8, 0),
        line(
            1.1,
            0,
            &format!("mm_page_free_batched: pfn={:#x} order=0", K + 8),
        ),
        alloc(1.2, K + 8, 0, "GFP_KERNEL", 0),
    ];
    let out = run("batched", &t, true, ALL).unwrap();
    assert_eq!(out.stats.skipped.get("free_batched_duplicate"), Some(&1));
    assert!(!out.stats.skipped.contains_key("double_free"));
    no_sim_errors(&out);
    // the page is allocated (unmovable) at the end in the real column
    let real = &out.doc.runs[0];
    assert_eq!(real.normal.spb_tainted, 1);
}

#[test]
fn partial_free_after_split() {
    // a THP, split: one page freed, then the other 511 one by one
    let mut t = vec![
        alloc(1.0, K + 512, 9, "GFP_TRANSHUGE", 1),
        free(1.1, K + 512 + 5, 0),
    ];
    for k in 0..512u64 {
        if k != 5 {
            t.push(free(1.2, K + 512 + k, 0));
        }
    }
    let out = run("split", &t, true, ALL).unwrap();
    assert_eq!(out.notes.get("partial_frees"), Some(&1));
    no_sim_errors(&out);
    for r in &out.doc.runs {
        assert_eq!(
            r.vmstat.get("pgfree").copied().unwrap_or(0),
            512,
            "{}",
            r.policy
        );
    }
}

#[test]
fn free_covering_several_blocks_frees_each() {
    let t = vec![
        alloc(1.0, K + 1024, 0, "GFP_KERNEL", 0),
        alloc(1.0, K + 1025, 0, "GFP_KERNEL", 0),
        free(1.1, K + 1024, 1),
    ];
    let out = run("multi", &t, true, ALL).unwrap();
    no_sim_errors(&out);
    for r in &out.doc.runs {
        assert_eq!(r.normal.spb_tainted, 0, "{}", r.policy);
    }
}

#[test]
fn order10_free_of_uninit_memory_grows_the_zone() {
    let fresh = K + 262144; // first uninitialised pfn
    let t = vec![
        free(1.0, fresh, 10),
        free(1.0, fresh + 1024, 10),
        alloc(1.1, fresh + 3, 0, "GFP_KERNEL", 0),
    ];
    let out = run("grow", &t, true, ALL).unwrap();
    assert_eq!(out.notes.get("grow_pages"), Some(&2048));
    assert_eq!(out.stats.unknown_frees, 0);
    no_sim_errors(&out);
    let real = &out.doc.runs[0];
    // the real column allocated inside the grown memory: SPB 1 is tainted
    assert_eq!(real.normal.spb_tainted, 1);
}

#[test]
fn unknown_frees_are_counted_and_skipped() {
    let t = vec![free(1.0, K + 77, 0), alloc(1.1, K + 77, 0, "GFP_KERNEL", 0)];
    let out = run("unknown", &t, true, ALL).unwrap();
    assert_eq!(out.stats.unknown_frees, 1);
    no_sim_errors(&out);
}

#[test]
fn bulk_allocations_are_inferred_from_pcp_refills() {
    let t = vec![
        line(
            1.0,
            1,
            &format!(
                "mm_page_alloc_zone_locked: pfn={:#x} order=0 migratetype=0 percpu_refill=1",
                K + 300
            ),
        ),
        free(2.0, K + 300, 0),
    ];
    let out = run("bulk", &t, true, ALL).unwrap();
    assert_eq!(out.stats.inferred_bulk_pages, 1);
    assert_eq!(out.stats.unknown_frees, 0);
    no_sim_errors(&out);
    let n = notes_of(&out, "vanilla");
    assert_eq!(n["inferred_bulk_allocs"], 1);
    // the unmovable bulk page tainted an SPB while it lived
    assert_eq!(out.doc.runs[0].normal.spb_tainted_peak, 1);
    assert_eq!(out.doc.runs[0].normal.spb_tainted, 0);
}

#[test]
fn strict_mode_names_file_and_line() {
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec![alloc(1.0, K, 11, "GFP_KERNEL", 0)], "order 11"),
        (
            vec![
                alloc(1.0, K, 1, "GFP_KERNEL", 0),
                free(1.1, K, 1),
                free(1.2, K, 1),
            ],
            "double free",
        ),
        (
            vec![
                alloc(1.0, K, 0, "GFP_KERNEL", 0),
                free(1.1, K, 0),
                line(
                    1.15,
                    0,
                    &format!("mm_page_pcpu_drain: pfn={K:#x} order=0 migratetype=0"),
                ),
                free(1.2, K, 0),
            ],
            "double free",
        ),
        (
            vec![alloc(1.0, 0x10, 0, "GFP_KERNEL", 0)],
            "outside the memory layout",
        ),
        (
            vec![alloc(1.0, K, 0, "GFP_KERNEL|__GFP_BOGUS", 0)],
            "gfp_flags",
        ),
        (vec![line(1.0, 0, "mm_page_free: pfn=zz order=0")], "pfn"),
    ];
    for (i, (t, what)) in cases.into_iter().enumerate() {
        let n = t.len();
        let e = run(&format!("strict{i}"), &t, true, "real,vanilla").unwrap_err();
        let ReplayError::Input(m) = e else {
            panic!("case {i}: not an input error")
        };
        assert!(m.contains("trace.txt"), "case {i}: {m}");
        assert!(
            m.contains(&format!(":{n}")) || m.contains(&format!("line {n}")),
            "case {i}: {m}"
        );
        assert!(m.contains(what), "case {i}: {m}");
        // without --strict: counted, not fatal
        let out = run(&format!("lenient{i}"), &t, false, "real,vanilla").unwrap();
        assert!(out.stats.skipped.values().sum::<u64>() >= 1, "case {i}");
    }
}

#[test]
fn inferred_layout_without_zoneinfo() {
    let d = dir("nolayout");
    let t = d.join("t.txt");
    std::fs::write(
        &t,
        [
            alloc(1.0, 0x123456, 0, "GFP_KERNEL", 0),
            free(1.1, 0x123456, 0),
        ]
        .concat(),
    )
    .unwrap();
    let opts = ReplayOptions {
        policies: PolicySel::parse_list("real,spb", &[]).unwrap(),
        threads: 1,
        ..Default::default()
    };
    let out = replay(&t, &opts).unwrap();
    no_sim_errors(&out);
    assert_eq!(out.doc.runs.len(), 2);
    assert!(out.doc.runs[0].all_zones.spb_total >= 1);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn policy_list_parsing() {
    assert_eq!(PolicySel::parse_list("real,spb", &[]).unwrap().len(), 2);
    assert!(PolicySel::parse_list("real,bogus", &[]).is_err());
    let v = PolicySel::parse_list("spb", &["steer_tainted".to_string()]).unwrap();
    assert_eq!(v[0].label(), "spb-off:steer_tainted");
    assert!(PolicySel::parse_list("spb", &["nope".to_string()]).is_err());
}

#[test]
fn block_counts_parse() {
    let t = "Number of blocks type     Unmovable      Movable  Reclaimable   HighAtomic      Isolate \nNode 0, zone      DMA            1            7            0            0            0 \nNode 0, zone   Normal          305         1425           62            0            0 \n";
    let m = prefill::parse_block_counts(t);
    assert_eq!(m["Normal"]["Unmovable"], 305);
    assert_eq!(m["DMA"]["Movable"], 7);
}

/// A from-boot capture directory: boot text, a v7 `.dat` stream overlapping it by one event, a
/// PHASE stress_end marker, the boot zoneinfo and kpageflags (the top 4096 pfns PG_reserved).
#[test]
fn from_boot_capture_merges_boot_text_and_dat_and_stops_at_stress_end() {
    use crate::trace::dat::tests::{rec_alloc, rec_free, rec_print, write_v7, Page, GFP_KERNEL};
    let d = dir("fromboot");
    let out = d.join("out");
    std::fs::create_dir_all(out.join("trace")).unwrap();
    std::fs::create_dir_all(out.join("proc/00_boot")).unwrap();
    let zi = "Node 0, zone   Normal\n  pages free     262144\n        spanned  262144\n        present  262144\n        managed  258048\n  start_pfn:           1048576\n";
    std::fs::write(out.join("proc/00_boot/zoneinfo"), zi).unwrap();
    let mut kpf = Vec::with_capacity(0x140000 * 8);
    for pfn in 0u64..0x140000 {
        let f: u64 = if pfn < K {
            1 << 20
        } else if pfn >= 0x13f000 {
            1 << 32
        } else {
            1 << 10
        };
        kpf.extend_from_slice(&f.to_le_bytes());
    }
    std::fs::write(out.join("proc/kpageflags_00_boot.bin"), kpf).unwrap();
    // boot text: an allocation at 1 s, then the one the stream also has (2 s)
    let boot = [
        alloc(1.0, K, 0, "GFP_KERNEL", 0),
        alloc(2.0, K + 0x200, 1, "GFP_KERNEL", 0),
    ];
    std::fs::write(out.join("trace/boot_trace.txt"), boot.concat()).unwrap();
    let mut p = Page::new(2_000_000_000);
    p.event(0, &rec_alloc(1, K + 0x200, 1, 0, GFP_KERNEL))
        .event(1_000_000, &rec_free(1, K, 0))
        .event(1_000_000, &rec_print("PHASE stress_end"))
        .event(1_000_000, &rec_alloc(1, K + 0x400, 0, 0, GFP_KERNEL));
    std::fs::write(out.join("trace/run.dat"), write_v7(&[vec![p]], true, 1)).unwrap();
    let opts = ReplayOptions {
        policies: PolicySel::parse_list("real,vanilla", &[]).unwrap(),
        threads: 2,
        ..Default::default()
    };
    let r = replay(&d, &opts).unwrap();
    assert!(r.from_boot);
    assert_eq!(
        r.notes.get("boot_overlap_dropped"),
        Some(&1),
        "{:?}",
        r.notes
    );
    assert_eq!(
        r.notes.get("boot_layout_reserved_memmap"),
        Some(&4096),
        "{:?}",
        r.notes
    );
    assert!(r.notes.get("after_stop_marker").copied().unwrap_or(0) >= 1);
    let real = r.doc.runs.iter().find(|m| m.policy == "real").unwrap();
    // 0x100000 freed; the order-1 block at 0x100200 replayed once; 0x100400 after stress_end
    assert_eq!(live_nonmovable(real), 2);
    assert_eq!(real.normal.spb_pinned, 1);
    let regions = real.extra["regions"].as_array().unwrap();
    assert_eq!(regions[0]["live_nonmovable_pages"], 2);
    assert_eq!(regions[0]["ever_tainted"], true);
    no_sim_errors(&r);
    // going on past the marker replays the last allocation too
    let opts2 = ReplayOptions {
        past_stop: true,
        ..opts
    };
    let r2 = replay(&d, &opts2).unwrap();
    let real2 = r2.doc.runs.iter().find(|m| m.policy == "real").unwrap();
    assert_eq!(live_nonmovable(real2), 3);
    let _ = std::fs::remove_dir_all(&d);
}

/// After the tracer reports lost events, a block the kernel takes off its free lists while the
/// trace still has it allocated is freed (its free was lost), and a free of a free page is not
/// a double free (its allocation may have been lost).
#[test]
fn lost_events_release_blocks_whose_free_was_lost() {
    let lines = vec![
        alloc(0.5, K + 0x40, 1, "GFP_KERNEL", 0),
        free(0.6, K + 0x40, 1),
        alloc(1.0, K, 0, "GFP_KERNEL", 0),
        "CPU:0 [LOST 3 EVENTS]\n".to_string(),
        line(
            2.0,
            0,
            &format!("mm_page_alloc_zone_locked: pfn={K:#x} order=0 migratetype=0 percpu_refill=1"),
        ),
        free(3.0, K + 0x40, 1),
        alloc(4.0, K + 0x80, 0, "GFP_KERNEL", 0),
    ];
    let out = run("lost", &lines, true, "real").unwrap();
    assert_eq!(
        out.notes.get("lost_free_released_pages"),
        Some(&1),
        "{:?}",
        out.notes
    );
    assert_eq!(out.stats.skipped.get("free_after_lost_events"), Some(&1));
    assert_eq!(live_nonmovable(&out.doc.runs[0]), 1);
    // without the LOST line the same zone_locked line leaves the block allocated
    let mut l2 = lines.clone();
    l2.remove(3); // the LOST line
    l2.remove(4); // the second free of K + 0x40
    let out2 = run("nolost", &l2, false, "real").unwrap();
    assert_eq!(live_nonmovable(&out2.doc.runs[0]), 2);
}

fn live_nonmovable(m: &crate::metrics::RunMetrics) -> u64 {
    m.extra["regions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["live_nonmovable_pages"].as_u64().unwrap())
        .sum()
}

#[test]
fn the_traced_kernel_chooses_the_per_cpu_free_rule() {
    use crate::scenario::PcpFree;
    // `spb capture`'s meta.json, in the capture directory or beside a trace file
    let d = dir("kernel-meta");
    std::fs::write(d.join("meta.json"), r#"{"kernel": "6.12.95+deb12-amd64"}"#).unwrap();
    std::fs::write(d.join("trace.txt"), "").unwrap();
    assert_eq!(kernel_release(&d).as_deref(), Some("6.12.95+deb12-amd64"));
    assert_eq!(
        kernel_release(&d.join("trace.txt")).as_deref(),
        Some("6.12.95+deb12-amd64")
    );
    let o = ReplayOptions::default();
    assert_eq!(
        pcp_rule(&o, kernel_release(&d).as_deref()),
        (
            PcpFree::MainlineBatch,
            "kernel 6.12.95+deb12-amd64".to_string()
        )
    );
    // a from-boot capture's dmesg, under out/
    let b = dir("kernel-dmesg");
    std::fs::create_dir_all(b.join("out")).unwrap();
    std::fs::write(
        b.join("out/dmesg_boot.txt"),
        "[    0.000000] Linux version 6.18.2-custom (gcc) #1 SMP\n[    0.000000] Command line: x\n",
    )
    .unwrap();
    assert_eq!(kernel_release(&b).as_deref(), Some("6.18.2-custom"));
    assert_eq!(pcp_rule(&o, Some("6.18.2-custom")).0, PcpFree::Mainline);
    // nothing known: mainline; --pcp-free wins over the kernel
    assert_eq!(kernel_release(&dir("kernel-none")), None);
    assert_eq!(
        pcp_rule(&o, None),
        (PcpFree::Mainline, "default".to_string())
    );
    let forced = ReplayOptions {
        pcp_free: Some(PcpFree::Simple),
        ..ReplayOptions::default()
    };
    assert_eq!(
        pcp_rule(&forced, Some("6.12.1")),
        (PcpFree::Simple, "--pcp-free".to_string())
    );
}
