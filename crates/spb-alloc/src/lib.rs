#![cfg_attr(not(feature = "std"), no_std)]
extern crate alloc;

pub mod geometry;
pub mod gfp;
pub mod layout;
pub mod migratetype;
pub mod zoneinfo;

pub use geometry::{Geometry, Pfn};
pub use layout::{MemoryLayout, PfnRange, ZoneKind, ZoneSpec};
pub use migratetype::MigrateType;
