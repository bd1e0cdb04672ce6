//! What the lab's integration tests share: one short run of a built-in scenario.

use spb_alloc::{PolicyConfig, PolicyKind};
use spb_lab::metrics::RunMetrics;
use spb_lab::scenario::{Overrides, Scenario};
use spb_lab::{load_scenario, run_scenario, SimOptions};

/// Run built-in scenario `name` at `memory` bytes for `secs` virtual seconds under policy `p`
/// with seed `seed`; panics with the scenario and policy on error (a test failure).
pub fn run(name: &str, memory: u64, secs: u64, seed: u64, p: PolicyKind) -> RunMetrics {
    run_with(name, memory, secs, seed, p, |_| {})
}

/// [`run`], with `tweak` applied to the scenario after the overrides (a key they do not set).
#[allow(dead_code)] // not every test crate tweaks
pub fn run_with(
    name: &str,
    memory: u64,
    secs: u64,
    seed: u64,
    p: PolicyKind,
    tweak: impl FnOnce(&mut Scenario),
) -> RunMetrics {
    let mut sc = load_scenario(name).unwrap();
    sc.apply(&Overrides {
        memory: Some(memory),
        duration_ns: Some(secs * 1_000_000_000),
        seed: Some(seed),
        ..Overrides::default()
    });
    tweak(&mut sc);
    run_scenario(
        &sc,
        &SimOptions {
            policy: PolicyConfig::of(p),
            check_every: 0,
            layout: None,
        },
        &mut |_| {},
    )
    .unwrap_or_else(|e| panic!("{name} {p:?}: {e}"))
}
