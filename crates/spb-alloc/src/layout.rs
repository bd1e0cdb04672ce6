//! The physical memory map: zones, holes, boot-time reservations and not-yet-initialised memory.
//!
//! A [`MemoryLayout`] is plain data. It comes from one of three places: [`MemoryLayout::x86_64`]
//! (the default layout of a PC with a given amount of RAM), [`MemoryLayout::from_zoneinfo`]
//! (a real machine's `/proc/zoneinfo`), or hand-built ranges in tests.

use alloc::string::String;
use alloc::vec::Vec;

use crate::geometry::{Geometry, Pfn};

/// Zone types in index order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum ZoneKind {
    Dma = 0,
    Dma32 = 1,
    Normal = 2,
    Movable = 3,
}

impl ZoneKind {
    /// All kinds in index order.
    pub const ALL: [ZoneKind; 4] = [ZoneKind::Dma, ZoneKind::Dma32, ZoneKind::Normal, ZoneKind::Movable];
    /// The name the kernel prints.
    pub const fn name(self) -> &'static str {
        match self {
            ZoneKind::Dma => "DMA",
            ZoneKind::Dma32 => "DMA32",
            ZoneKind::Normal => "Normal",
            ZoneKind::Movable => "Movable",
        }
    }
    /// From the printed name.
    pub fn from_name(s: &str) -> Option<ZoneKind> {
        ZoneKind::ALL.iter().copied().find(|k| k.name() == s)
    }
    /// lowmem_reserve_ratio default for this zone (DMA 256, DMA32 256, Normal 32, Movable 0).
    pub const fn lowmem_reserve_ratio(self) -> u64 {
        match self {
            ZoneKind::Dma | ZoneKind::Dma32 => 256,
            ZoneKind::Normal => 32,
            ZoneKind::Movable => 0,
        }
    }
}

/// A half-open pfn range `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PfnRange {
    pub start: Pfn,
    pub end: Pfn,
}

impl PfnRange {
    pub const fn new(start: Pfn, end: Pfn) -> Self {
        PfnRange { start, end }
    }
    pub const fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }
    pub const fn is_empty(&self) -> bool {
        self.end <= self.start
    }
    pub const fn contains(&self, pfn: Pfn) -> bool {
        pfn >= self.start && pfn < self.end
    }
}

/// What a boot-time (memblock) reservation holds. These pages are never handed to the buddy
/// allocator and no policy can move them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReserveKind {
    /// The struct page array, at the top of memory.
    Memmap,
    /// The (KASLR-placed) kernel image.
    KernelImage,
    /// swiotlb bounce buffers and other DMA32 reservations.
    BounceBuffers,
    /// Anything else (firmware, crash kernel, ...).
    Other,
}

/// A reserved range inside a zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reservation {
    pub range: PfnRange,
    pub kind: ReserveKind,
}

/// One zone of the memory map.
///
/// # Invariants
/// `span` is non-empty; every range in `holes`, `reserved` and `uninit` lies inside `span`, and
/// those three sets are pairwise disjoint. Pages in none of them are *managed*: handed to the
/// buddy allocator at construction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneSpec {
    pub kind: ZoneKind,
    /// NUMA node (the model is UMA today; kept for output formats).
    pub node: u16,
    /// The zone span (zone_start_pfn .. zone_end_pfn).
    pub span: PfnRange,
    /// Pfns inside the span with no memory behind them (the PCI hole, firmware gaps).
    pub holes: Vec<PfnRange>,
    /// Boot-time reservations.
    pub reserved: Vec<Reservation>,
    /// Present memory not yet handed to the allocator (deferred struct page init, memory that a
    /// later hot-add brings). [`crate::Allocator::grow_zone`] hands it over.
    pub uninit: Vec<PfnRange>,
}

impl ZoneSpec {
    /// A zone covering `span` with no holes, reservations or uninitialised memory.
    pub fn plain(kind: ZoneKind, span: PfnRange) -> ZoneSpec {
        ZoneSpec { kind, node: 0, span, holes: Vec::new(), reserved: Vec::new(), uninit: Vec::new() }
    }
    /// Pages in the span.
    pub fn spanned_pages(&self) -> u64 {
        self.span.len()
    }
    /// Pages with memory behind them (span minus holes).
    pub fn present_pages(&self) -> u64 {
        self.span.len() - self.holes.iter().map(|h| h.len()).sum::<u64>()
    }
    /// Pages reserved at boot.
    pub fn reserved_pages(&self) -> u64 {
        self.reserved.iter().map(|r| r.range.len()).sum()
    }
    /// Pages handed to the allocator at construction.
    pub fn managed_pages(&self) -> u64 {
        self.present_pages() - self.reserved_pages() - self.uninit.iter().map(|u| u.len()).sum::<u64>()
    }
}

/// Why a layout was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayoutError {
    /// Where the problem is (a line number for parsed input, a zone name otherwise).
    pub place: String,
    /// What was expected.
    pub message: String,
}

impl core::fmt::Display for LayoutError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}: {}", self.place, self.message)
    }
}

/// The whole memory map of one (UMA) machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryLayout {
    pub geometry: Geometry,
    /// Zones in index order (DMA, DMA32, Normal, Movable); absent zones are omitted.
    pub zones: Vec<ZoneSpec>,
}

impl MemoryLayout {
    /// Check the invariants of every zone and that zones are ordered and disjoint.
    pub fn validate(&self) -> Result<(), LayoutError> {
        self.geometry
            .validate()
            .map_err(|e| LayoutError { place: "geometry".into(), message: e.0.into() })?;
        if self.zones.is_empty() {
            return Err(LayoutError { place: "layout".into(), message: "expected at least one zone".into() });
        }
        let mut prev_end = 0;
        let mut prev_kind: Option<ZoneKind> = None;
        for z in &self.zones {
            let place = || alloc::format!("zone {}", z.kind.name());
            if z.span.is_empty() {
                return Err(LayoutError { place: place(), message: "expected a non-empty span".into() });
            }
            if let Some(pk) = prev_kind {
                if z.kind <= pk {
                    return Err(LayoutError { place: place(), message: "zones must be in index order, each once".into() });
                }
            }
            if z.span.start < prev_end {
                return Err(LayoutError { place: place(), message: "zone spans overlap".into() });
            }
            let mut ranges: Vec<PfnRange> = Vec::new();
            ranges.extend(z.holes.iter().copied());
            ranges.extend(z.reserved.iter().map(|r| r.range));
            ranges.extend(z.uninit.iter().copied());
            ranges.sort();
            let mut last = z.span.start;
            for r in &ranges {
                if r.start < z.span.start || r.end > z.span.end || r.is_empty() {
                    return Err(LayoutError { place: place(), message: alloc::format!("range {:#x}-{:#x} is outside the zone span or empty", r.start, r.end) });
                }
                if r.start < last {
                    return Err(LayoutError { place: place(), message: alloc::format!("range {:#x}-{:#x} overlaps another hole/reservation", r.start, r.end) });
                }
                last = r.end;
            }
            prev_end = z.span.end;
            prev_kind = Some(z.kind);
        }
        Ok(())
    }

    /// Total pages of memory present.
    pub fn present_pages(&self) -> u64 {
        self.zones.iter().map(|z| z.present_pages()).sum()
    }

    /// The zone holding `pfn`, if any.
    pub fn zone_of(&self, pfn: Pfn) -> Option<usize> {
        self.zones.iter().position(|z| z.span.contains(pfn))
    }
}
