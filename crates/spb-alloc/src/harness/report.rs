//! What a soak did and found.

use std::fmt;
use std::time::Duration;

use super::exec::*;

/// What a soak did and found.
#[derive(Clone, Debug, Default)]
pub struct SoakReport {
    pub policy: String,
    /// The harness's operation counters, summed over the epochs.
    pub counts: Counters,
    /// Checks that failed, panics, and operations whose result contradicted the model.
    pub violations: u64,
    /// The first violations (up to 10), with epoch and operation number.
    pub violation_samples: Vec<String>,
    /// Pages missing after freeing everything at the end of each epoch (summed).
    pub lost_pages: u64,
    pub epochs: u64,
    pub migrations: u64,
    pub reclaimed_pages: u64,
    pub oom_kills: u64,
    /// Known-bug violations tolerated (`SoakOptions::known_bugs`).
    pub known_bug_hits: u64,
    pub wall: Duration,
}

impl SoakReport {
    /// Zero violations and zero lost pages.
    pub fn clean(&self) -> bool {
        self.violations == 0 && self.lost_pages == 0
    }

    /// Add another soak's report (another seed) to this one; the samples keep the first ten.
    pub fn add(&mut self, o: SoakReport) {
        self.counts.add(&o.counts);
        self.violations += o.violations;
        let room = 10usize.saturating_sub(self.violation_samples.len());
        self.violation_samples
            .extend(o.violation_samples.into_iter().take(room));
        self.lost_pages += o.lost_pages;
        self.epochs += o.epochs;
        self.migrations += o.migrations;
        self.reclaimed_pages += o.reclaimed_pages;
        self.oom_kills += o.oom_kills;
        self.known_bug_hits += o.known_bug_hits;
        self.wall += o.wall;
    }
}

impl fmt::Display for SoakReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.counts;
        writeln!(
            f,
            "policy {}: {} ops in {:.1?} ({} epochs, {} checks)",
            self.policy, c.ops, self.wall, self.epochs, c.checks
        )?;
        writeln!(
            f,
            "  violations {}  lost pages {}  known-bug hits {}",
            self.violations, self.lost_pages, self.known_bug_hits
        )?;
        writeln!(
            f,
            "  allocs {} (failed {})  frees {}  splits {}  alloc_at {}  rejected misuse {}",
            c.allocs, c.alloc_fail, c.frees, c.splits, c.alloc_at, c.rejected
        )?;
        writeln!(f, "  contig ok {} failed {}  compactions {}  grows {} ({} pages)  drains {}  background {}", c.contig_ok, c.contig_fail, c.compactions, c.grows, c.grown_pages, c.drains, c.background_runs)?;
        writeln!(f, "  long-term pins {} (moved {})", c.pins, c.pins_moved)?;
        write!(
            f,
            "  embedder: migrations {}  reclaimed pages {}  oom kills {}",
            self.migrations, self.reclaimed_pages, self.oom_kills
        )?;
        for v in &self.violation_samples {
            write!(f, "\n  VIOLATION: {v}")?;
        }
        Ok(())
    }
}
