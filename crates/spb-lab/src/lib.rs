//! spb-lab: the deterministic workload lab, trace replayer, metrics and reports for spb-alloc.
pub mod metrics;
pub mod kpageflags;
pub mod report;
pub mod soak;
