//! Allocator operation sequences against the reference model (spb_alloc::harness::Harness):
//! the input's first bytes choose a small hand-built layout, the policy, a random spb switch
//! set, the CPU count, per-CPU lists on/off and the embedder's seed; the rest decode into up to
//! 400 operations (alloc of any order/gfp/cpu, valid and invalid frees and splits, alloc_at,
//! alloc_contig, compact_zone, drain, background with time steps, valid and invalid
//! grow_zone). Config.check_every = 1 and the model check after every operation; at the end
//! everything is freed and no page may be lost. Any violation panics.
//!
//! `SPB_FUZZ_KNOWN="msg1|msg2"` tolerates invariant-checker messages containing one of the
//! substrings (known, reported core bugs), so that a run can look for other bugs.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn known() -> &'static [String] {
    static K: OnceLock<Vec<String>> = OnceLock::new();
    K.get_or_init(|| std::env::var("SPB_FUZZ_KNOWN").map(|v| v.split('|').filter(|s| !s.is_empty()).map(String::from).collect()).unwrap_or_default())
}

fuzz_target!(|data: &[u8]| {
    let k: Vec<&str> = known().iter().map(|s| s.as_str()).collect();
    spb_alloc::harness::Harness::run_fuzz(data, &k);
});
