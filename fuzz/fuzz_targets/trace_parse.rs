//! The trace reader, the line parser and the replay's decode pass on arbitrary bytes: never a
//! panic; parse errors carry the number of the line they were given; every decode error and
//! every bad-input warning names the file (and, for a line, `FILE:LINE:`).
//!
//! First byte: mode (bit 0: decode against a small fixed layout instead of one inferred from the
//! pfns; bit 1: strict). The rest is the trace: plain, or zstd/gzip when the magic matches. The
//! line loop stops after 8 MiB of (decompressed) text; the decode pass runs on plain text only
//! (a small compressed frame can expand to hundreds of megabytes).
#![no_main]
use libfuzzer_sys::fuzz_target;
use spb_alloc::layout::{MemoryLayout, PfnRange, ZoneKind, ZoneSpec};
use spb_alloc::Geometry;
use spb_lab::replay::decode::{decode, DecodeSettings};
use spb_lab::replay::ReplayError;
use spb_lab::trace::{Compression, TraceParser, TraceReader};
use std::io::Cursor;

const NAME: &str = "fuzz.trace";
const MAX_TEXT: usize = 8 << 20;

fn layout() -> MemoryLayout {
    let mut z = ZoneSpec::plain(ZoneKind::Dma32, PfnRange::new(0x1000, 0x8000));
    z.holes.push(PfnRange::new(0x2000, 0x2200));
    z.uninit.push(PfnRange::new(0x7000, 0x8000));
    MemoryLayout { geometry: Geometry::X86_64, zones: vec![ZoneSpec::plain(ZoneKind::Dma, PfnRange::new(1, 0x1000)), z] }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    // 1. reader + line parser
    if let Ok(mut r) = TraceReader::from_reader(NAME, Cursor::new(rest.to_vec())) {
        let mut p = TraceParser::new();
        let mut text = 0usize;
        let mut n = 0u64;
        loop {
            match r.next_line() {
                Ok(Some(line)) => {
                    text += line.len() + 1;
                    n += 1;
                    if let Err(e) = p.parse_line(line, n) {
                        assert_eq!(e.line_no, n, "a parse error names the line it was given");
                        let _ = e.to_string();
                    }
                    if text > MAX_TEXT {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    assert!(e.to_string().starts_with(NAME), "{e}");
                    let _ = e.is_bad_content();
                    break;
                }
            }
        }
    }
    // 2. the replay's decode pass (plain text)
    if Compression::detect(rest) != Compression::None {
        return;
    }
    let Ok(r) = TraceReader::from_reader(NAME, Cursor::new(rest.to_vec())) else { return };
    let l = layout();
    let settings = DecodeSettings {
        layout: (mode & 1 == 1).then_some(&l),
        prefill: &[],
        pageblock_types: &[],
        snapshot_ns: None,
        strict: mode & 2 == 2,
        max_order: Geometry::X86_64.max_order,
        // 64 MiB of 4 KiB pages: keeps an inferred shadow small
        max_inferred_pfn: 1 << 14,
        stop_marker: None,
    };
    match decode(r, settings) {
        Ok(d) => {
            for (reason, first) in &d.first_bad {
                assert!(first.starts_with(&format!("{NAME}:")), "{first}");
                assert!(d.stats.skipped.get(reason).copied().unwrap_or(0) > 0, "warned `{reason}` is counted");
            }
            assert!(d.pfn_min <= d.pfn_end || d.pfn_end == 0);
            let bound = if mode & 1 == 1 { 0x8000 } else { 1 << 14 };
            for op in &d.log.ops {
                assert!((op.pfn as u64) < bound, "an op outside the layout: {op:?}");
            }
        }
        Err(ReplayError::Input(m)) | Err(ReplayError::Io(m)) | Err(ReplayError::Layout(m)) => {
            assert!(m.starts_with(NAME), "{m}");
        }
    }
});
