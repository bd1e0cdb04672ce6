//! The kpageflags/kpagecount reader on arbitrary bytes (plain, or zstd/gzip when the magic
//! matches): never panics, errors are values, and census/classify accept whatever it yields.
//! The reader takes paths, so the input is written to per-process temp files. Entries are
//! capped (a tiny zstd frame can decompress to gigabytes).
#![no_main]
use libfuzzer_sys::fuzz_target;
use spb_alloc::layout::{MemoryLayout, PfnRange, ZoneKind, ZoneSpec};
use spb_alloc::Geometry;
use spb_lab::kpageflags::{census, classify_at, KpageReader};
use std::path::PathBuf;
use std::sync::OnceLock;

const MAX_ENTRIES: usize = 1 << 18;

fn paths() -> &'static (PathBuf, PathBuf) {
    static P: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    P.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("spb-fuzz-kpageflags-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        (d.join("kpageflags"), d.join("kpagecount"))
    })
}

fn layout() -> MemoryLayout {
    let mut z = ZoneSpec::plain(ZoneKind::Normal, PfnRange::new(16, 4096));
    z.holes.push(PfnRange::new(100, 200));
    MemoryLayout { geometry: Geometry::X86_64, zones: vec![ZoneSpec::plain(ZoneKind::Dma, PfnRange::new(1, 16)), z] }
}

fuzz_target!(|data: &[u8]| {
    let (fp, cp) = paths();
    let Some((&mode, rest)) = data.split_first() else { return };
    // mode bit 0: with a kpagecount dump, split at a point chosen by the next two bytes
    let (flags, count) = if mode & 1 == 1 && rest.len() >= 2 {
        let at = u16::from_le_bytes([rest[0], rest[1]]) as usize % (rest.len() - 1);
        let (a, b) = rest[2..].split_at(at.min(rest.len() - 2));
        (a, Some(b))
    } else {
        (rest, None)
    };
    std::fs::write(fp, flags).unwrap();
    if let Some(c) = count {
        std::fs::write(cp, c).unwrap();
    }
    let reader = match KpageReader::open(fp, count.map(|_| cp.as_path())) {
        Ok(r) => r,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let _ = (reader.flags_compression(), reader.count_compression());
    let l = layout();
    if mode & 2 == 0 {
        let mut n = 0u64;
        for e in reader.take(MAX_ENTRIES) {
            match e {
                Ok(e) => {
                    assert_eq!(e.pfn, n, "entries come in pfn order");
                    n += 1;
                    let c = e.class();
                    let _ = (c.name(), c.to_string(), classify_at(e.flags, e.count.unwrap_or(0), e.pfn, &l));
                }
                Err(e) => {
                    let _ = e.to_string();
                    break;
                }
            }
        }
    } else {
        let shift = (mode >> 2) as u32 % 70;
        let with_layout = mode & 0x80 != 0;
        match census(reader.take(MAX_ENTRIES), shift, with_layout.then_some(&l)) {
            Ok(c) => {
                let _ = (c.to_string(), c.blocked_regions());
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
});
