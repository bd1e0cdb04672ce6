//! Errors: why an allocation failed, why a free was rejected.

use crate::geometry::Pfn;
use crate::gfp::Gfp;

/// Why an allocation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AllocErrorKind {
    /// The order is above the largest buddy order (use `alloc_contig` for larger blocks).
    OrderTooLarge,
    /// No zone the gfp mask allows exists.
    NoZone,
    /// Out of memory after everything the gfp mask permits (reclaim, compaction, OOM kills).
    NoMemory,
    /// The policy refused a fragmenting fallback for a caller with a cheap fallback
    /// (spb patches 26 and 35); the caller should use its fallback.
    Refused,
    /// A `__GFP_NOFAIL` request exhausted the simulator's retry bound.
    NofailExhausted,
    /// The cpu number is not one of the configured CPUs.
    BadCpu,
}

/// A failed allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AllocError {
    pub order: u8,
    pub gfp: Gfp,
    pub kind: AllocErrorKind,
}

impl core::fmt::Display for AllocError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "order-{} allocation with gfp {:#x} failed: {:?}",
            self.order, self.gfp.0, self.kind
        )
    }
}

/// Why a free (or split) was rejected. The allocator state is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreeError {
    /// The pfn lies in no zone.
    OutOfRange { pfn: Pfn },
    /// The block is already free (or on a per-CPU list).
    DoubleFree { pfn: Pfn },
    /// The pfn is not the head of an allocated block.
    NotAllocated { pfn: Pfn },
    /// The order given does not match the allocation.
    WrongOrder { pfn: Pfn, allocated: u8, given: u8 },
    /// The pfn is a hole, reserved or uninitialised memory.
    NotManaged { pfn: Pfn },
    /// Split to an order not below the block's order.
    BadSplit { pfn: Pfn, order: u8, new_order: u8 },
}

impl core::fmt::Display for FreeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            FreeError::OutOfRange { pfn } => write!(f, "pfn {:#x} is outside every zone", pfn),
            FreeError::DoubleFree { pfn } => write!(f, "double free of pfn {:#x}", pfn),
            FreeError::NotAllocated { pfn } => {
                write!(f, "pfn {:#x} is not the head of an allocated block", pfn)
            }
            FreeError::WrongOrder {
                pfn,
                allocated,
                given,
            } => {
                write!(
                    f,
                    "pfn {:#x} was allocated at order {} but freed at order {}",
                    pfn, allocated, given
                )
            }
            FreeError::NotManaged { pfn } => {
                write!(f, "pfn {:#x} is a hole, reserved or not initialised", pfn)
            }
            FreeError::BadSplit {
                pfn,
                order,
                new_order,
            } => {
                write!(
                    f,
                    "cannot split the order-{} block at {:#x} to order {}",
                    order, pfn, new_order
                )
            }
        }
    }
}

/// Why growing a zone was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrowError {
    /// The range is empty, below the zone start, or overlaps another zone.
    BadRange { start: Pfn, end: Pfn },
    /// A page of the range is already managed.
    AlreadyManaged { pfn: Pfn },
    /// No such zone.
    NoZone,
    /// The metadata of the grown span could not be allocated (nothing was changed).
    OutOfMemory { end: Pfn },
}

impl core::fmt::Display for GrowError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            GrowError::BadRange { start, end } => {
                write!(f, "cannot grow over {:#x}-{:#x}", start, end)
            }
            GrowError::AlreadyManaged { pfn } => write!(f, "pfn {:#x} is already managed", pfn),
            GrowError::NoZone => f.write_str("no such zone"),
            GrowError::OutOfMemory { end } => {
                write!(f, "no memory for the metadata of a span up to {:#x}", end)
            }
        }
    }
}

/// Why labelling a pageblock was rejected ([`crate::Allocator::label_pageblock`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LabelError {
    /// The pageblock holding the pfn overlaps no zone.
    OutOfRange { pfn: Pfn },
    /// `Isolate` is not a label: isolation is a separate bit set by compaction and
    /// `alloc_contig`.
    BadType { pfn: Pfn },
    /// The pageblock's zone part is not a whole pageblock (the zone ends inside it).
    Straddles { pfn: Pfn },
}

impl core::fmt::Display for LabelError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            LabelError::OutOfRange { pfn } => {
                write!(f, "the pageblock of pfn {:#x} is in no zone", pfn)
            }
            LabelError::BadType { pfn } => write!(
                f,
                "pageblock of pfn {:#x}: isolate is not a label (expected unmovable, movable, reclaimable or highatomic)",
                pfn
            ),
            LabelError::Straddles { pfn } => {
                write!(f, "the pageblock of pfn {:#x} straddles a zone boundary", pfn)
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for LabelError {}
#[cfg(feature = "std")]
impl std::error::Error for AllocError {}
#[cfg(feature = "std")]
impl std::error::Error for FreeError {}
#[cfg(feature = "std")]
impl std::error::Error for GrowError {}
