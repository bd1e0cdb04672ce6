//! `MemoryLayout::from_zoneinfo` on real /proc/zoneinfo files: copies in tests/data, and every
//! file under ../shared when that folder exists.

use std::path::{Path, PathBuf};

use spb_alloc::layout::{ReserveKind, ZoneKind};
use spb_alloc::zoneinfo::parse_zoneinfo;
use spb_alloc::{Geometry, MemoryLayout};

fn data(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn spbs(l: &MemoryLayout, k: ZoneKind) -> u64 {
    l.zone(k).map_or(0, |z| z.spb_count(&l.geometry))
}

/// Every layout must reproduce the file's own numbers exactly.
fn check_against_raw(text: &str, l: &MemoryLayout) {
    l.validate().unwrap();
    let raw = parse_zoneinfo(text).unwrap();
    let populated: Vec<_> = raw.iter().filter(|z| z.present > 0).collect();
    assert_eq!(populated.len(), l.zones.len());
    for (r, z) in populated.iter().zip(&l.zones) {
        assert_eq!(Some(z.kind), r.kind);
        assert_eq!(z.span.start, r.start_pfn.unwrap());
        assert_eq!(z.spanned_pages(), r.spanned);
        assert_eq!(z.present_pages(), r.present);
        assert_eq!(z.managed_pages(), r.managed);
    }
}

#[test]
fn q35_16g_has_14_normal_spbs() {
    let t = data("zoneinfo-q35-16g");
    let l = MemoryLayout::from_zoneinfo(&t, Geometry::X86_64).unwrap();
    check_against_raw(&t, &l);
    assert_eq!(spbs(&l, ZoneKind::Normal), 14);
    let n = l.zone(ZoneKind::Normal).unwrap();
    assert_eq!(n.span.start, 1 << 20);
    assert!(n.uninit.is_empty());
    // Memmap estimate at the very top; DMA32 gap (swiotlb) at the top of DMA32's RAM, 1G-2G.
    assert_eq!(n.reserved.last().unwrap().kind, ReserveKind::Memmap);
    assert_eq!(n.reserved.last().unwrap().range.end, n.span.end);
    let d = l.zone(ZoneKind::Dma32).unwrap();
    assert_eq!(d.reserved_pages(), 16384);
    assert!(d.reserved.iter().all(|r| r.range.start >> 18 == 1));
}

#[test]
fn q35_8g_has_6_normal_spbs() {
    let t = data("zoneinfo-q35-8g");
    let l = MemoryLayout::from_zoneinfo(&t, Geometry::X86_64).unwrap();
    check_against_raw(&t, &l);
    assert_eq!(spbs(&l, ZoneKind::Normal), 6);
    assert_eq!(spbs(&l, ZoneKind::Dma32), 4);
}

#[test]
fn firecracker_lazy_init_is_uninit() {
    let t = data("zoneinfo-fc-24g-lazy");
    let l = MemoryLayout::from_zoneinfo(&t, Geometry::X86_64).unwrap();
    check_against_raw(&t, &l);
    assert_eq!(spbs(&l, ZoneKind::Normal), 21);
    let n = l.zone(ZoneKind::Normal).unwrap();
    assert_eq!(n.managed_pages(), 917_504);
    let uninit: u64 = n.uninit.iter().map(|r| r.len()).sum();
    assert!(uninit > 4_000_000, "{uninit}");
    // Managed at the bottom: the uninit range starts right after it.
    assert_eq!(n.uninit[0].start, n.span.start + 917_504);
    // No swiotlb: the DMA32 gap is the kernel image at 16 MiB (as kpageflags shows).
    let d = l.zone(ZoneKind::Dma32).unwrap();
    assert_eq!(d.reserved.len(), 1);
    assert_eq!(d.reserved[0].range.start, 0x1000);
    assert_eq!(d.reserved[0].range.len(), 9528);
}

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(&p, out);
        } else if p.file_name().is_some_and(|n| n == "zoneinfo") {
            out.push(p);
        }
    }
}

#[test]
fn every_shared_zoneinfo() {
    let root = shared();
    if !root.join("traces").is_dir() && !root.join("qemu").is_dir() {
        eprintln!("skipped: {} not found", root.display());
        return;
    }
    let mut files = Vec::new();
    collect(&root.join("traces"), &mut files);
    collect(&root.join("qemu/runs"), &mut files);
    files.sort();
    assert!(!files.is_empty());
    for f in &files {
        let t = std::fs::read_to_string(f).unwrap();
        let l = MemoryLayout::from_zoneinfo(&t, Geometry::X86_64)
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        check_against_raw(&t, &l);
        let desc: Vec<String> = l
            .zones
            .iter()
            .map(|z| {
                let u: u64 = z.uninit.iter().map(|r| r.len()).sum();
                format!(
                    "{} [{:#x},{:#x}) present {} managed {} reserved {} uninit {} spbs {}",
                    z.kind.name(),
                    z.span.start,
                    z.span.end,
                    z.present_pages(),
                    z.managed_pages(),
                    z.reserved_pages(),
                    u,
                    z.spb_count(&l.geometry)
                )
            })
            .collect();
        eprintln!(
            "{}:\n  {}",
            f.strip_prefix(&root).unwrap_or(f).display(),
            desc.join("\n  ")
        );
        let normal = spbs(&l, ZoneKind::Normal);
        let s = f.to_string_lossy();
        if s.contains("_16G_") {
            assert_eq!(normal, 14, "{s}");
        } else if s.contains("_8G_") {
            assert_eq!(normal, 6, "{s}");
        } else if s.contains("/traces/") {
            assert_eq!(normal, 21, "{s}");
        }
    }
    eprintln!("{} files", files.len());
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Replacing any line of a real file by garbage or any number never panics, and an
        /// accepted result is a valid layout.
        #[test]
        fn mutated_lines_never_panic(line in 0usize..200, value in any::<u64>(), junk in "[ -~]{0,24}", mode in 0u8..4) {
            let t = data("zoneinfo-q35-16g");
            let mut lines: Vec<String> = t.lines().map(String::from).collect();
            let i = line % lines.len();
            let key = lines[i].split_whitespace().next().unwrap_or("").to_string();
            lines[i] = match mode {
                0 => format!("  {key} {value}"),
                1 => junk.clone(),
                2 => format!("Node {junk}"),
                _ => format!("  {key} {value} {junk}"),
            };
            let text = lines.join("\n");
            if let Ok(l) = MemoryLayout::from_zoneinfo(&text, Geometry::X86_64) {
                prop_assert!(l.validate().is_ok());
            }
        }

        #[test]
        fn arbitrary_text_never_panics(text in "(Node [0-9], zone (DMA|Normal|Foo)\n|  (spanned|present|managed|start_pfn:) [0-9]{1,20}\n|[ -~]{0,10}\n){0,40}") {
            let _ = MemoryLayout::from_zoneinfo(&text, Geometry::X86_64);
        }

        #[test]
        fn x86_any_size_never_panics(ram in any::<u64>(), b4g in any::<u64>(), seed in any::<u64>(), tiny in any::<bool>()) {
            let g = if tiny { Geometry::TINY } else { Geometry::X86_64 };
            let o = spb_alloc::layout::X86Options { below_4g_bytes: b4g, reservations: true, kaslr_seed: seed, geometry: g };
            let _ = MemoryLayout::x86_64(ram, &o);
            let ram = (ram % (1 << 44)).max(64 << 20) & !4095;
            let o = spb_alloc::layout::X86Options { below_4g_bytes: (b4g % (4 << 30)).max(64 << 20) & !4095, ..o };
            let l = MemoryLayout::x86_64(ram, &o).unwrap();
            prop_assert!(l.validate().is_ok());
        }
    }
}
