//! Soak and fuzz-input tests of the allocator against the reference model.
//!
//! The harness lives in `spb-lab` (`crates/spb-lab/src/soak.rs`, behind `spb soak` and the
//! `alloc_ops` fuzz target); it only needs `spb_alloc`, `rand` and `rand_pcg`, so it is
//! compiled straight into this test as a module (spb-alloc cannot depend on spb-lab).
//!
//! - `short_soak_*`: 200 000 random operations per policy with the full check every 500,
//!   part of the normal suite;
//! - `fuzz_inputs_*`: the proptest stand-in for the `alloc_ops` fuzz target: random byte
//!   strings decoded exactly as the fuzzer's, strict mode (any violation fails);
//! - `long_soak_*` (ignored): 10 million operations per policy; run in release with
//!   `cargo test --release -p spb-alloc --test soak -- --ignored`.

#[path = "../../spb-lab/src/soak.rs"]
#[allow(dead_code)]
mod soak;

use proptest::prelude::*;
use soak::*;
use spb_alloc::*;

fn soak_policy(policy: PolicyConfig, ops: u64, seed: u64) {
    let o = SoakOptions { ops, seed, policy, check_every: 500, epoch_ops: 50_000, ..SoakOptions::default() };
    let r = run(&o);
    eprintln!("{r}");
    assert_eq!(r.ops, ops);
    assert!(r.clean(), "{r}");
    assert!(r.allocs > ops / 10 && r.frees > ops / 10, "{r}");
    assert!(r.contig_ok > 0 && r.grows > 0 && r.compactions > 0 && r.drains > 0 && r.background_runs > 0, "{r}");
    assert!(r.rejected > 0, "{r}");
}

#[test]
fn short_soak_vanilla() {
    soak_policy(PolicyConfig::vanilla(), 200_000, 1);
}

#[test]
fn short_soak_defrag() {
    soak_policy(PolicyConfig::defrag(), 200_000, 2);
}

#[test]
fn short_soak_spb() {
    soak_policy(PolicyConfig::spb(), 200_000, 3);
}

#[test]
#[ignore = "long: 10M operations per policy, run in release"]
fn long_soak_all_policies() {
    for (i, p) in [PolicyConfig::vanilla(), PolicyConfig::defrag(), PolicyConfig::spb()].into_iter().enumerate() {
        let o = SoakOptions { ops: 10_000_000, seed: 100 + i as u64, policy: p, ..SoakOptions::default() };
        let r = run(&o);
        eprintln!("{r}");
        assert!(r.clean(), "{r}");
    }
}

/// The fuzz target's inputs, from proptest: the first bytes choose layout, policy, switches,
/// CPUs and the embedder's seed; the rest are operations.
fn fuzz_input() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 16..2048)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn fuzz_inputs_never_violate(data in fuzz_input()) {
        Harness::run_fuzz(&data);
    }
    #[test]
    fn fuzz_inputs_each_layout_and_policy(layout in 0u8..6, policy in 0u8..3, mut data in fuzz_input()) {
        data[0] = layout;
        data[1] = policy;
        Harness::run_fuzz(&data);
    }
}
