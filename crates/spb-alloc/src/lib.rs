#![cfg_attr(not(feature = "std"), no_std)]
#![doc = include_str!("../README.md")]
extern crate alloc;

pub(crate) mod allocator;
pub(crate) mod background;
pub(crate) mod check;
pub mod compaction;
pub(crate) mod contig;
pub mod cost;
pub mod dump;
pub(crate) mod env;
pub(crate) mod error;
pub mod event;
pub(crate) mod fastpath;
pub(crate) mod freelist;
pub mod geometry;
pub mod gfp;
pub mod layout;
pub mod migratetype;
pub mod page;
pub mod pageblock;
pub mod pcp;
pub(crate) mod pin;
pub mod policy;
pub(crate) mod slowpath;
pub mod superpageblock;
pub mod vmstat;
pub mod watermark;
pub mod zone;
pub mod zoneinfo;

#[doc(hidden)]
pub mod test_support;

pub use allocator::{AllocRequest, Allocator, Config, Pending};
pub use check::InvariantViolation;
pub use contig::{ContigError, ContigStats};
pub use cost::{BackgroundWork, CompactionsAtOrder, RequestCost, StallCauses};
pub use env::{Env, FreedBlock, MigrateOutcome, NoEnv, ReclaimRequest, Reclaimer};
pub use error::{AllocError, AllocErrorKind, FreeError, GrowError, LabelError};
pub use geometry::{Geometry, Pfn};
pub use gfp::{AllocFlags, Gfp};
pub use layout::{MemoryLayout, PfnRange, X86Options, ZoneKind, ZoneSpec};
pub use migratetype::MigrateType;
pub use policy::{PolicyConfig, PolicyKind, SpbSwitch, SpbSwitches};
pub use superpageblock::Category;
pub use vmstat::Vm;

#[cfg(feature = "harness")]
pub mod harness;
