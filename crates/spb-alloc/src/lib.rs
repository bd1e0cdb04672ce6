#![cfg_attr(not(feature = "std"), no_std)]
#![doc = include_str!("../README.md")]
extern crate alloc;

pub mod allocator;
pub mod background;
pub mod check;
pub mod compaction;
pub mod contig;
pub mod dump;
pub mod env;
pub mod error;
pub mod event;
pub mod fastpath;
pub mod freelist;
pub mod geometry;
pub mod gfp;
pub mod layout;
pub mod migratetype;
pub mod page;
pub mod pageblock;
pub mod pcp;
pub mod policy;
pub mod slowpath;
pub mod superpageblock;
pub mod vmstat;
pub mod watermark;
pub mod zone;
pub mod zoneinfo;

pub use allocator::{AllocRequest, Allocator, Config};
pub use contig::{ContigError, ContigStats};
pub use env::{Env, FreedBlock, MigrateOutcome, NoEnv, ReclaimRequest, Reclaimer};
pub use error::{AllocError, AllocErrorKind, FreeError, GrowError};
pub use geometry::{Geometry, Pfn};
pub use gfp::{AllocFlags, Gfp};
pub use layout::{MemoryLayout, PfnRange, X86Options, ZoneKind, ZoneSpec};
pub use migratetype::MigrateType;
pub use policy::{PolicyConfig, PolicyKind, SpbSwitch, SpbSwitches};
pub use superpageblock::Category;
pub use vmstat::Vm;

#[cfg(feature = "harness")]
pub mod harness;
