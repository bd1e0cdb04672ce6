//! spb-lab: the deterministic workload lab, trace replayer, metrics and reports for spb-alloc.
pub mod capture;
pub mod cost;
pub mod diff;
pub mod input;
pub mod kpageflags;
pub mod measure;
pub mod metrics;
pub mod replay;
pub mod report;
pub mod scenario;
pub mod sim;
pub mod sweep;
pub mod trace;
pub mod workload;

pub use scenario::{load as load_scenario, Overrides, Scenario, ScenarioError};
pub use sim::run::run_scenario;
pub use sim::{Sim, SimOptions};
