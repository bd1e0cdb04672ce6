//! Reliability harness: random (or fuzzer-decoded) allocator operation sequences checked against
//! a reference model of live blocks, and the long-running soak built on it.
//!
//! The same [`Harness`] runs three ways:
//! - the `alloc_ops` fuzz target decodes its input with [`Harness::from_fuzz_bytes`] and runs in
//!   *strict* mode (the first violation panics, so libFuzzer records the input);
//! - the proptest stand-in (`crates/spb-alloc/tests/soak.rs`) feeds it random byte strings the
//!   same way;
//! - [`run`] (the `spb soak` command) generates a weighted random mix with a seeded PRNG, checks
//!   every `check_every` operations and *counts* violations instead of stopping.
//!
//! What is checked (a *violation* is any of these failing):
//! - the allocator's own invariant checker ([`Allocator::check`](crate::Allocator::check));
//! - every block the model holds is an allocated head of the same order and cookie; the pages
//!   the allocator counts as allocated (managed − free − per-CPU) equal the model's;
//! - every block handed out (alloc, alloc_contig, alloc_at, a migration target) is naturally
//!   aligned, lies in managed memory of a zone the gfp mask allows, and overlaps no live block;
//! - frees and splits of what the model says is live succeed; every other free or split
//!   returns `Err` and changes nothing (page metadata, free lists, counters: a digest);
//! - argument errors are the documented ones: `OrderTooLarge`, `BadCpu`, `NoZone`,
//!   `ContigError::BadOrder`, `GrowError::{NoZone, BadRange, AlreadyManaged}` (`OutOfMemory` cannot happen on the soak's machines);
//! - migration callbacks only name blocks the model holds, with their order and cookie;
//! - nothing panics;
//! - at the end everything is freed and, after draining the per-CPU lists, free == managed
//!   (else the difference is reported as *lost pages*).
//!
//! It is the allocator's one shadow model (the differential property test `tests/model.rs`
//! runs on it too), behind the `harness` feature (std, `rand`, `rand_pcg`); the default
//! `no_std` build does not see it. Concerns, one module each: [`ops`] (the operations and the
//! soak's generator), [`model`] (the shadow model and its embedder), [`exec`] (the harness),
//! [`fuzz`] (fuzz input decoding), [`minimise`] (violation classes, delta debugging),
//! [`report`] (what a soak found), [`soak`] (epochs, per-epoch machines, replay).

pub mod exec;
pub mod fuzz;
pub mod minimise;
pub mod model;
pub mod ops;
pub mod report;
pub mod soak;

pub use exec::{Counters, Harness};
pub use minimise::{minimize, violation_class};
pub use model::{Block, Model, ModelEnv};
pub use ops::Op;
pub use report::SoakReport;
pub use soak::{
    epoch_machine, epoch_ops, replay, run, soak_config, soak_layout, SoakMemory, SoakOptions,
};
