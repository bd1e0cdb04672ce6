//! What the lab's integration tests share: one short run of a built-in scenario.

use spb_alloc::{PolicyConfig, PolicyKind};
use spb_lab::metrics::RunMetrics;
use spb_lab::scenario::Overrides;
use spb_lab::{load_scenario, run_scenario, SimOptions};

/// Run built-in scenario `name` at `memory` bytes for `secs` virtual seconds under policy `p`
/// with seed `seed`; panics with the scenario and policy on error (a test failure).
pub fn run(name: &str, memory: u64, secs: u64, seed: u64, p: PolicyKind) -> RunMetrics {
    let mut sc = load_scenario(name).unwrap();
    sc.apply(&Overrides {
        memory: Some(memory),
        duration_ns: Some(secs * 1_000_000_000),
        seed: Some(seed),
        ..Overrides::default()
    });
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
