//! MemoryLayout::from_zoneinfo on arbitrary text never panics; a layout it returns is valid,
//! and (when its zones span less than 64 GiB, to bound memory) Allocator::new builds it without
//! panicking and the result passes the invariant checker.
//!
//! Building a multi-GiB allocator takes ~0.3 s, which would starve the parser of executions, so
//! layouts above 1 GiB of span are built only for inputs whose length is a multiple of 8 (a
//! deterministic choice, so a crash reproduces from its input).
#![no_main]
use libfuzzer_sys::fuzz_target;
use spb_alloc::{Allocator, Config, Geometry, MemoryLayout};

const CAP_PAGES: u64 = (64 << 30) >> 12;
const SMALL_PAGES: u64 = (1 << 30) >> 12;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(layout) = MemoryLayout::from_zoneinfo(&text, Geometry::X86_64) else { return };
    layout.validate().expect("from_zoneinfo returned a layout that does not validate");
    let span: u64 = layout.zones.iter().map(|z| z.span.len()).fold(0u64, |a, b| a.saturating_add(b));
    if span >= CAP_PAGES || (span > SMALL_PAGES && data.len() % 8 != 0) {
        return;
    }
    let a = Allocator::new(&layout, Config::default()).expect("a validated layout must build");
    if let Err(e) = a.check() {
        panic!("fresh allocator from a zoneinfo layout violates an invariant: {e}");
    }
    assert_eq!(a.free_pages(), layout.managed_pages(), "free pages of a fresh allocator");
});
