//! spb-lab: the deterministic workload lab, trace replayer, metrics and reports for spb-alloc.
pub mod capture;
pub mod metrics;
pub mod kpageflags;
pub mod replay;
pub mod report;
pub mod trace;
