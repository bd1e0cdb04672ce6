//! The physical memory map: zones, holes, boot-time reservations and not-yet-initialised memory.
//!
//! A [`MemoryLayout`] is plain data. It comes from one of three places: [`MemoryLayout::x86_64`]
//! (the default layout of a PC with a given amount of RAM), [`MemoryLayout::from_zoneinfo`]
//! (a real machine's `/proc/zoneinfo`, parsed in [`crate::zoneinfo`]), or hand-built ranges in
//! tests ([`MemoryLayout::single_zone`], [`MemoryLayout::tiny_two_zone`]).
#![warn(missing_docs)]

use alloc::string::String;
use alloc::vec::Vec;

use crate::geometry::{Geometry, Pfn};

/// Zone types in index order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum ZoneKind {
    /// ZONE_DMA: the first 16 MiB (ISA DMA).
    Dma = 0,
    /// ZONE_DMA32: 16 MiB to 4 GiB (32-bit DMA).
    Dma32 = 1,
    /// ZONE_NORMAL: everything above 4 GiB on x86_64.
    Normal = 2,
    /// ZONE_MOVABLE: only with kernelcore=/movablecore=/movable_node.
    Movable = 3,
}

impl ZoneKind {
    /// All kinds in index order.
    pub const ALL: [ZoneKind; 4] = [
        ZoneKind::Dma,
        ZoneKind::Dma32,
        ZoneKind::Normal,
        ZoneKind::Movable,
    ];
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
    /// First pfn in the range.
    pub start: Pfn,
    /// One past the last pfn.
    pub end: Pfn,
}

impl PfnRange {
    /// The range as maximal naturally aligned blocks of order `<= max_order`, lowest first:
    /// (pfn, order) pairs, how the allocator hands a range to its buddy lists.
    pub fn aligned_blocks(self, max_order: u8) -> impl Iterator<Item = (Pfn, u8)> {
        crate::zone::carve(self, max_order)
    }
    /// `[start, end)`.
    pub const fn new(start: Pfn, end: Pfn) -> Self {
        PfnRange { start, end }
    }
    /// Number of pfns (0 when `end <= start`).
    pub const fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }
    /// True when the range holds no pfn.
    pub const fn is_empty(&self) -> bool {
        self.end <= self.start
    }
    /// True when `start <= pfn < end`.
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
    /// The reserved pfns.
    pub range: PfnRange,
    /// What they hold.
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
    /// Which zone this is.
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
        ZoneSpec {
            kind,
            node: 0,
            span,
            holes: Vec::new(),
            reserved: Vec::new(),
            uninit: Vec::new(),
        }
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
        self.present_pages()
            - self.reserved_pages()
            - self.uninit.iter().map(|u| u.len()).sum::<u64>()
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
    /// Page size and orders the pfns are expressed in.
    pub geometry: Geometry,
    /// Zones in index order (DMA, DMA32, Normal, Movable); absent zones are omitted.
    pub zones: Vec<ZoneSpec>,
}

impl MemoryLayout {
    /// Check the invariants of every zone and that zones are ordered and disjoint.
    pub fn validate(&self) -> Result<(), LayoutError> {
        self.geometry.validate().map_err(|e| LayoutError {
            place: "geometry".into(),
            message: e.0.into(),
        })?;
        if self.zones.is_empty() {
            return Err(LayoutError {
                place: "layout".into(),
                message: "expected at least one zone".into(),
            });
        }
        let mut prev_end = 0;
        let mut prev_kind: Option<ZoneKind> = None;
        for z in &self.zones {
            let place = || alloc::format!("zone {}", z.kind.name());
            if z.span.is_empty() {
                return Err(LayoutError {
                    place: place(),
                    message: "expected a non-empty span".into(),
                });
            }
            if let Some(pk) = prev_kind {
                if z.kind <= pk {
                    return Err(LayoutError {
                        place: place(),
                        message: "zones must be in index order, each once".into(),
                    });
                }
            }
            if z.span.start < prev_end {
                return Err(LayoutError {
                    place: place(),
                    message: "zone spans overlap".into(),
                });
            }
            let mut ranges: Vec<PfnRange> = Vec::new();
            ranges.extend(z.holes.iter().copied());
            ranges.extend(z.reserved.iter().map(|r| r.range));
            ranges.extend(z.uninit.iter().copied());
            ranges.sort();
            let mut last = z.span.start;
            for r in &ranges {
                if r.start < z.span.start || r.end > z.span.end || r.is_empty() {
                    return Err(LayoutError {
                        place: place(),
                        message: alloc::format!(
                            "range {:#x}-{:#x} is outside the zone span or empty",
                            r.start,
                            r.end
                        ),
                    });
                }
                if r.start < last {
                    return Err(LayoutError {
                        place: place(),
                        message: alloc::format!(
                            "range {:#x}-{:#x} overlaps another hole/reservation",
                            r.start,
                            r.end
                        ),
                    });
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

impl LayoutError {
    /// An error at `place` (a line number, a zone name, an option name) saying what was expected.
    pub fn new(place: impl Into<String>, message: impl Into<String>) -> LayoutError {
        LayoutError {
            place: place.into(),
            message: message.into(),
        }
    }

    /// The model's metadata for `place` could not be allocated (`bytes` asked for): the
    /// allocation is fallible because its size comes from input (a layout, a zoneinfo).
    pub fn out_of_memory(place: impl Into<String>, what: &str, bytes: u64) -> LayoutError {
        LayoutError {
            place: place.into(),
            message: alloc::format!("{OUT_OF_MEMORY}: cannot allocate {bytes} bytes for {what}"),
        }
    }

    /// Made by [`LayoutError::out_of_memory`] (the layout is valid; this host is too small).
    pub fn is_out_of_memory(&self) -> bool {
        self.message.starts_with(OUT_OF_MEMORY)
    }
}

const OUT_OF_MEMORY: &str = "out of memory";

#[cfg(feature = "std")]
impl std::error::Error for LayoutError {}

impl ZoneSpec {
    /// Number of superpageblocks the zone touches: distinct `spb_order`-aligned regions that
    /// intersect its span (an SPB shared with a neighbouring zone counts for both).
    pub fn spb_count(&self, geometry: &Geometry) -> u64 {
        if self.span.is_empty() {
            return 0;
        }
        let first = self.span.start >> geometry.spb_order;
        let last = (self.span.end - 1) >> geometry.spb_order;
        last - first + 1
    }
}

// ---------------------------------------------------------------------------------------------
// x86_64 PC layout
// ---------------------------------------------------------------------------------------------

/// Pages of the kernel image (text, data, bss and the early page tables and brk that memblock
/// keeps reserved with it), placed by KASLR.
///
/// The number is measured, not derived: in every QEMU run in `shared/qemu/runs` (Debian
/// 6.12.95 kernel) the kpageflags census shows 9 554 reserved pages (about 37 MiB) in whichever
/// 1 GiB region `/proc/iomem` puts the kernel in. It does not depend on the amount of RAM.
pub const KERNEL_IMAGE_PAGES: u64 = 9554;

/// Bounce-buffer (swiotlb) pages: the default 64 MiB.
pub const BOUNCE_BUFFER_PAGES: u64 = 16384;

/// Bytes of `struct page` per page of present memory (the memmap is present/64 pages).
pub const STRUCT_PAGE_BYTES: u64 = 64;

/// Smallest RAM size [`MemoryLayout::x86_64`] accepts.
pub const MIN_X86_RAM_BYTES: u64 = 64 << 20;

/// Largest RAM size [`MemoryLayout::x86_64`] accepts (4 PiB, the 52-bit physical address limit
/// of x86_64 with 5-level paging).
pub const MAX_X86_RAM_BYTES: u64 = 1 << 52;

/// The legacy VGA/BIOS hole between 640 KiB and 1 MiB (pfns 0x9f..0x100 with 4 KiB pages; the
/// e820 map of QEMU's SeaBIOS ends the first RAM range at 0x9fc00, so pfn 0x9f is not whole).
pub const LEGACY_HOLE: PfnRange = PfnRange::new(0x9f, 0x100);

/// x86_64 pfns (4 KiB pages) per 1 GiB region.
const X86_GIB_PFNS: u64 = 1 << 18;
/// x86_64 pfn of 16 MiB: end of ZONE_DMA.
const X86_DMA_END: Pfn = 4096;
/// x86_64 pfn of 4 GiB: end of ZONE_DMA32.
const X86_DMA32_END: Pfn = 1 << 20;
/// x86_64 pfns per 2 MiB (the KASLR physical alignment).
const X86_2M_PFNS: u64 = 512;

/// Options of [`MemoryLayout::x86_64`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct X86Options {
    /// RAM mapped below 4 GiB; the rest of RAM starts at 4 GiB and the gap up to 4 GiB is the
    /// PCI hole. 3 GiB on QEMU's i440fx machine, 2 GiB on q35. (QEMU only splits RAM when it
    /// is larger than 3.5 GiB on i440fx or 2.75 GiB on q35; this model always puts
    /// `min(ram, below_4g_bytes)` below 4 GiB, so pass `below_4g_bytes = ram` for a small
    /// guest that QEMU would not split.) Must be a multiple of 4 KiB in 64 MiB ..= 4 GiB.
    pub below_4g_bytes: u64,
    /// Add the boot-time reservations (low 1 MiB, memmap, kernel image, bounce buffers).
    pub reservations: bool,
    /// Seed for the kernel-image placement (KASLR). Same seed, same layout.
    pub kaslr_seed: u64,
    /// The geometry of the result. Anything but [`Geometry::X86_64`] gets a rescaled layout;
    /// see [`MemoryLayout::x86_64`].
    pub geometry: Geometry,
}

impl X86Options {
    /// QEMU i440fx (`-M pc`): 3 GiB of RAM below 4 GiB, reservations on, seed 0.
    pub const fn i440fx() -> X86Options {
        X86Options {
            below_4g_bytes: 3 << 30,
            reservations: true,
            kaslr_seed: 0,
            geometry: Geometry::X86_64,
        }
    }
    /// QEMU q35 (`-M q35`): 2 GiB of RAM below 4 GiB, reservations on, seed 0.
    pub const fn q35() -> X86Options {
        X86Options {
            below_4g_bytes: 2 << 30,
            reservations: true,
            kaslr_seed: 0,
            geometry: Geometry::X86_64,
        }
    }
}

impl Default for X86Options {
    /// Same as [`X86Options::i440fx`].
    fn default() -> Self {
        X86Options::i440fx()
    }
}

/// splitmix64: a tiny, good-enough deterministic generator (spb-alloc has no dependencies).
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (`n > 0`), by multiply-shift.
    fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
}

/// `span` minus `taken` (sorted, disjoint, inside `span`), as sorted ranges.
pub(crate) fn free_ranges(span: PfnRange, taken: &[PfnRange]) -> Vec<PfnRange> {
    let mut t: Vec<PfnRange> = taken.iter().copied().filter(|r| !r.is_empty()).collect();
    t.sort();
    let mut out = Vec::new();
    let mut cur = span.start;
    for r in t {
        let s = r.start.max(span.start);
        if s > cur {
            out.push(PfnRange::new(cur, s.min(span.end)));
        }
        cur = cur.max(r.end);
    }
    if cur < span.end {
        out.push(PfnRange::new(cur, span.end));
    }
    out.retain(|r| !r.is_empty());
    out
}

/// Take up to `n` pages from the top of `free` (sorted ranges), top-down; the taken ranges are
/// returned (highest first) and removed from `free`.
pub(crate) fn carve_top(free: &mut Vec<PfnRange>, mut n: u64) -> Vec<PfnRange> {
    let mut out = Vec::new();
    while n > 0 {
        let Some(last) = free.last_mut() else { break };
        let take = n.min(last.len());
        out.push(PfnRange::new(last.end - take, last.end));
        last.end -= take;
        n -= take;
        if last.is_empty() {
            free.pop();
        }
    }
    out
}

/// Take up to `n` pages from the bottom of `free` (sorted ranges), bottom-up.
pub(crate) fn carve_bottom(free: &mut Vec<PfnRange>, mut n: u64) -> Vec<PfnRange> {
    let mut out = Vec::new();
    while n > 0 && !free.is_empty() {
        let first = &mut free[0];
        let take = n.min(first.len());
        out.push(PfnRange::new(first.start, first.start + take));
        first.start += take;
        n -= take;
        if first.is_empty() {
            free.remove(0);
        }
    }
    out
}

/// Remove `r` from the sorted free list (it must lie inside one free range).
fn take_exact(free: &mut Vec<PfnRange>, r: PfnRange) -> bool {
    let Some(i) = free
        .iter()
        .position(|f| f.start <= r.start && r.end <= f.end)
    else {
        return false;
    };
    let f = free[i];
    let mut repl = Vec::new();
    if f.start < r.start {
        repl.push(PfnRange::new(f.start, r.start));
    }
    if r.end < f.end {
        repl.push(PfnRange::new(r.end, f.end));
    }
    free.splice(i..=i, repl);
    true
}

/// Pick a `len`-page, `align`-aligned slot inside one `region`-aligned region of `free`: first a
/// region uniformly among those with room, then a slot uniformly inside it.
fn pick_slot(
    free: &[PfnRange],
    len: u64,
    align: u64,
    region: u64,
    rng: &mut SplitMix64,
) -> Option<PfnRange> {
    // (region index, segment, slot count) for every free segment cut at region boundaries.
    let mut segs: Vec<(u64, PfnRange, u64)> = Vec::new();
    for f in free {
        let mut s = f.start;
        while s < f.end {
            let reg = s / region;
            let e = f.end.min((reg + 1) * region);
            let first = s.div_ceil(align) * align;
            if first + len <= e {
                segs.push((reg, PfnRange::new(s, e), (e - len - first) / align + 1));
            }
            s = e;
        }
    }
    let mut regions: Vec<u64> = segs.iter().map(|s| s.0).collect();
    regions.dedup();
    if regions.is_empty() {
        return None;
    }
    let reg = regions[rng.below(regions.len() as u64) as usize];
    let total: u64 = segs.iter().filter(|s| s.0 == reg).map(|s| s.2).sum();
    let mut k = rng.below(total);
    for (r, seg, n) in segs.iter().copied() {
        if r != reg {
            continue;
        }
        if k < n {
            let start = seg.start.div_ceil(align) * align + k * align;
            return Some(PfnRange::new(start, start + len));
        }
        k -= n;
    }
    None
}

impl MemoryLayout {
    /// The default memory map of an x86_64 PC (QEMU i440fx or q35) with `ram_bytes` of RAM.
    ///
    /// Zones (4 KiB pfns):
    /// - **DMA**: span `[0, 4096)` (16 MiB) with holes at pfn 0 and [`LEGACY_HOLE`]
    ///   (640 KiB .. 1 MiB): 3 998 present pages, as on real machines.
    /// - **DMA32**: `[4096, 1 << 20)` (16 MiB .. 4 GiB) with the PCI hole
    ///   `[below_4g_bytes, 4 GiB)` as a hole at its top; if the RAM is smaller than
    ///   `below_4g_bytes` it ends at the end of RAM instead, with no hole.
    /// - **Normal**: from 4 GiB for the rest of the RAM (absent if there is none). 16 GiB on
    ///   i440fx gives 13 Normal SPBs, on q35 14.
    ///
    /// Reservations (when `opts.reservations`), all deterministic for a given `kaslr_seed`:
    /// - **low 1 MiB** (`Other`, pfns `[1, 0x9f)`): x86_64 kernels since 5.13 reserve all RAM
    ///   below 1 MiB (BIOS data, EBDA, real-mode trampoline). Real DMA zones show
    ///   present 3 998, managed 3 840: exactly these 158 pages.
    /// - **memmap** (`Memmap`): [`STRUCT_PAGE_BYTES`] per present page, i.e. present/64 pages,
    ///   at the very top of the highest zone (memblock allocates top-down). If that zone is too
    ///   small the rest spills into the top of the next lower zone.
    /// - **bounce buffers** (`BounceBuffers`): [`BOUNCE_BUFFER_PAGES`] (swiotlb, 64 MiB) at
    ///   1 GiB, if DMA32 has RAM up to 1 GiB + 64 MiB. (The kernel allocates swiotlb top-down
    ///   below 4 GiB; on q35 that is inside the same 1 GiB region 1G–2G, which is what the
    ///   QEMU runs show; on i440fx it would be 2G–3G. Either way one DMA32 SPB is pinned.)
    /// - **kernel image** (`KernelImage`): [`KERNEL_IMAGE_PAGES`] pages placed like KASLR:
    ///   a 1 GiB region of Normal chosen uniformly among those with room, then a 2 MiB-aligned
    ///   offset inside it, avoiding the memmap. Without a Normal zone (or room in it): in DMA32,
    ///   which starts at 16 MiB.
    ///
    /// # Other geometries
    /// The layout is always computed for the x86_64 machine. For any geometry other than
    /// [`Geometry::X86_64`], every boundary is then rescaled so that one x86 1 GiB region
    /// becomes one SPB of `opts.geometry` (pfn × spb_pages / 262144, rounded down); ranges
    /// that shrink to nothing are dropped, except a reservation, which keeps at least one page
    /// so that the SPB it pins stays pinned. SPB counts per zone are preserved (16 GiB i440fx
    /// at [`Geometry::TINY`] has 13 Normal SPBs of 128 pages); the DMA zone shrinks to a few
    /// pages and the legacy hole and low-1 MiB reservation vanish.
    ///
    /// # Errors
    /// `ram_bytes` not a multiple of 4 KiB, below [`MIN_X86_RAM_BYTES`] or above
    /// [`MAX_X86_RAM_BYTES`]; `below_4g_bytes` not a multiple of 4 KiB or outside
    /// 64 MiB ..= 4 GiB; an invalid geometry.
    pub fn x86_64(ram_bytes: u64, opts: &X86Options) -> Result<MemoryLayout, LayoutError> {
        opts.geometry
            .validate()
            .map_err(|e| LayoutError::new("geometry", e.0))?;
        const PAGE: u64 = 4096;
        if !ram_bytes.is_multiple_of(PAGE) {
            return Err(LayoutError::new(
                "ram_bytes",
                alloc::format!("expected a multiple of the 4 KiB page size, got {ram_bytes}"),
            ));
        }
        if ram_bytes < MIN_X86_RAM_BYTES {
            return Err(LayoutError::new(
                "ram_bytes",
                alloc::format!("expected at least 64 MiB of RAM, got {ram_bytes} bytes"),
            ));
        }
        if ram_bytes > MAX_X86_RAM_BYTES {
            return Err(LayoutError::new(
                "ram_bytes",
                alloc::format!("expected at most 4 PiB of RAM, got {ram_bytes} bytes"),
            ));
        }
        let b4g = opts.below_4g_bytes;
        if !b4g.is_multiple_of(PAGE) || !(MIN_X86_RAM_BYTES..=(4 << 30)).contains(&b4g) {
            return Err(LayoutError::new(
                "below_4g_bytes",
                alloc::format!("expected a multiple of 4 KiB between 64 MiB and 4 GiB, got {b4g}"),
            ));
        }
        let low_bytes = ram_bytes.min(b4g);
        let low_end = low_bytes / PAGE;
        let high_pages = (ram_bytes - low_bytes) / PAGE;

        let mut zones = Vec::new();
        let mut dma = ZoneSpec::plain(ZoneKind::Dma, PfnRange::new(0, X86_DMA_END));
        dma.holes = alloc::vec![PfnRange::new(0, 1), LEGACY_HOLE];
        zones.push(dma);
        let dma32 = if ram_bytes >= b4g {
            let mut z = ZoneSpec::plain(ZoneKind::Dma32, PfnRange::new(X86_DMA_END, X86_DMA32_END));
            if low_end < X86_DMA32_END {
                z.holes.push(PfnRange::new(low_end, X86_DMA32_END));
            }
            z
        } else {
            ZoneSpec::plain(ZoneKind::Dma32, PfnRange::new(X86_DMA_END, low_end))
        };
        zones.push(dma32);
        if high_pages > 0 {
            zones.push(ZoneSpec::plain(
                ZoneKind::Normal,
                PfnRange::new(X86_DMA32_END, X86_DMA32_END + high_pages),
            ));
        }

        if opts.reservations {
            // Free lists per zone: present memory not yet reserved.
            let mut free: Vec<Vec<PfnRange>> = zones
                .iter()
                .map(|z| free_ranges(z.span, &z.holes))
                .collect();
            let reserve = |zones: &mut Vec<ZoneSpec>, zi: usize, r: PfnRange, kind: ReserveKind| {
                zones[zi].reserved.push(Reservation { range: r, kind });
            };
            // Low 1 MiB.
            let low = PfnRange::new(1, LEGACY_HOLE.start);
            if take_exact(&mut free[0], low) {
                reserve(&mut zones, 0, low, ReserveKind::Other);
            }
            // Memmap, top-down from the highest zone.
            let present: u64 = zones.iter().map(|z| z.present_pages()).sum();
            let mut memmap = present * STRUCT_PAGE_BYTES / PAGE;
            for zi in (0..zones.len()).rev() {
                for r in carve_top(&mut free[zi], memmap) {
                    memmap -= r.len();
                    reserve(&mut zones, zi, r, ReserveKind::Memmap);
                }
            }
            // Bounce buffers at 1 GiB in DMA32.
            let bounce = PfnRange::new(X86_GIB_PFNS, X86_GIB_PFNS + BOUNCE_BUFFER_PAGES);
            if take_exact(&mut free[1], bounce) {
                reserve(&mut zones, 1, bounce, ReserveKind::BounceBuffers);
            }
            // Kernel image: Normal, else DMA32.
            let mut rng = SplitMix64(opts.kaslr_seed);
            let mut placed = false;
            for zi in (1..zones.len()).rev() {
                if let Some(r) = pick_slot(
                    &free[zi],
                    KERNEL_IMAGE_PAGES,
                    X86_2M_PFNS,
                    X86_GIB_PFNS,
                    &mut rng,
                ) {
                    take_exact(&mut free[zi], r);
                    reserve(&mut zones, zi, r, ReserveKind::KernelImage);
                    placed = true;
                    break;
                }
            }
            if !placed {
                return Err(LayoutError::new(
                    "kernel image",
                    "expected room for the kernel image in Normal or DMA32",
                ));
            }
            for z in zones.iter_mut() {
                z.reserved.sort_by_key(|r| r.range);
            }
        }

        let layout = MemoryLayout {
            geometry: Geometry::X86_64,
            zones,
        };
        let layout = if opts.geometry == Geometry::X86_64 {
            layout
        } else {
            layout.rescaled(opts.geometry)?
        };
        layout.validate()?;
        Ok(layout)
    }

    /// Rescale an x86_64 layout so that a 1 GiB region becomes one SPB of `g`.
    fn rescaled(&self, g: Geometry) -> Result<MemoryLayout, LayoutError> {
        let from = self.geometry.spb_order as i32;
        let to = g.spb_order as i32;
        let f = |p: Pfn| -> Result<Pfn, LayoutError> {
            if to <= from {
                Ok(p >> (from - to))
            } else {
                let sh = (to - from) as u32;
                if p.leading_zeros() < sh {
                    Err(LayoutError::new(
                        "geometry",
                        "the rescaled layout does not fit in 64-bit pfns",
                    ))
                } else {
                    Ok(p << sh)
                }
            }
        };
        let fr = |r: PfnRange| -> Result<PfnRange, LayoutError> {
            Ok(PfnRange::new(f(r.start)?, f(r.end)?))
        };
        let mut zones = Vec::new();
        for z in &self.zones {
            let span = fr(z.span)?;
            if span.is_empty() {
                continue;
            }
            let mut nz = ZoneSpec::plain(z.kind, span);
            nz.node = z.node;
            for h in &z.holes {
                let h = fr(*h)?;
                if !h.is_empty() {
                    nz.holes.push(h);
                }
            }
            for u in &z.uninit {
                let u = fr(*u)?;
                if !u.is_empty() {
                    nz.uninit.push(u);
                }
            }
            let mut lost = Vec::new();
            for r in &z.reserved {
                let s = fr(r.range)?;
                if s.is_empty() {
                    lost.push((r.range, r.kind));
                } else {
                    nz.reserved.push(Reservation {
                        range: s,
                        kind: r.kind,
                    });
                }
            }
            // Keep one page for reservations that rounded away, where that page is free.
            for (orig, kind) in lost {
                let mut taken: Vec<PfnRange> = nz.holes.clone();
                taken.extend(nz.uninit.iter().copied());
                taken.extend(nz.reserved.iter().map(|r| r.range));
                let free = free_ranges(nz.span, &taken);
                let p = f(orig.start)?;
                if let Some(fr) = free.iter().find(|fr| fr.end > p) {
                    let q = p.max(fr.start);
                    nz.reserved.push(Reservation {
                        range: PfnRange::new(q, q + 1),
                        kind,
                    });
                }
            }
            nz.reserved.sort_by_key(|r| r.range);
            zones.push(nz);
        }
        if zones.is_empty() {
            return Err(LayoutError::new(
                "geometry",
                "every zone shrank to nothing when rescaled",
            ));
        }
        Ok(MemoryLayout { geometry: g, zones })
    }

    /// One plain zone `[start_pfn, start_pfn + pages)` with no holes or reservations, all of it
    /// managed. `pages == 0` gives a layout that [`MemoryLayout::validate`] rejects.
    pub fn single_zone(
        geometry: Geometry,
        kind: ZoneKind,
        start_pfn: Pfn,
        pages: u64,
    ) -> MemoryLayout {
        MemoryLayout {
            geometry,
            zones: alloc::vec![ZoneSpec::plain(
                kind,
                PfnRange::new(start_pfn, start_pfn.saturating_add(pages))
            )],
        }
    }

    /// A small two-zone test machine on [`Geometry::TINY`]: DMA32 `[0, 256)` (2 SPBs) and Normal
    /// `[256, 1024)` (6 SPBs), SPB-aligned, with no holes or reservations.
    pub fn tiny_two_zone() -> MemoryLayout {
        let g = Geometry::TINY;
        let s = g.spb_pages();
        MemoryLayout {
            geometry: g,
            zones: alloc::vec![
                ZoneSpec::plain(ZoneKind::Dma32, PfnRange::new(0, 2 * s)),
                ZoneSpec::plain(ZoneKind::Normal, PfnRange::new(2 * s, 8 * s)),
            ],
        }
    }

    /// The zone of kind `kind`, if present.
    pub fn zone(&self, kind: ZoneKind) -> Option<&ZoneSpec> {
        self.zones.iter().find(|z| z.kind == kind)
    }

    /// Total pages reserved at boot.
    pub fn reserved_pages(&self) -> u64 {
        self.zones.iter().map(|z| z.reserved_pages()).sum()
    }

    /// Total pages handed to the allocator at construction.
    pub fn managed_pages(&self) -> u64 {
        self.zones.iter().map(|z| z.managed_pages()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    fn normal_spbs(l: &MemoryLayout) -> u64 {
        l.zone(ZoneKind::Normal)
            .map_or(0, |z| z.spb_count(&l.geometry))
    }

    #[test]
    fn sixteen_gib_i440fx_and_q35() {
        let l = MemoryLayout::x86_64(16 * GIB, &X86Options::default()).unwrap();
        assert_eq!(normal_spbs(&l), 13);
        let n = l.zone(ZoneKind::Normal).unwrap();
        assert_eq!(n.span, PfnRange::new(1 << 20, (1 << 20) + 13 * (1 << 18)));
        let q = MemoryLayout::x86_64(16 * GIB, &X86Options::q35()).unwrap();
        assert_eq!(normal_spbs(&q), 14);
        let d32 = q.zone(ZoneKind::Dma32).unwrap();
        assert_eq!(d32.holes, alloc::vec![PfnRange::new(1 << 19, 1 << 20)]);
        let dma = q.zone(ZoneKind::Dma).unwrap();
        assert_eq!(dma.present_pages(), 3998);
        assert_eq!(dma.managed_pages(), 3840);
        assert_eq!(q.present_pages(), 16 * GIB / 4096 - 98);
    }

    #[test]
    fn reservations_are_where_documented() {
        let l = MemoryLayout::x86_64(8 * GIB, &X86Options::q35()).unwrap();
        let n = l.zone(ZoneKind::Normal).unwrap();
        let memmap: u64 = n
            .reserved
            .iter()
            .filter(|r| r.kind == ReserveKind::Memmap)
            .map(|r| r.range.len())
            .sum();
        assert_eq!(memmap, l.present_pages() / 64);
        let top = n
            .reserved
            .iter()
            .find(|r| r.kind == ReserveKind::Memmap)
            .unwrap();
        assert_eq!(top.range.end, n.span.end);
        let k = n
            .reserved
            .iter()
            .find(|r| r.kind == ReserveKind::KernelImage)
            .unwrap();
        assert_eq!(k.range.len(), KERNEL_IMAGE_PAGES);
        assert_eq!(k.range.start % 512, 0);
        assert_eq!(
            k.range.start >> 18,
            (k.range.end - 1) >> 18,
            "image inside one 1 GiB region"
        );
        let d32 = l.zone(ZoneKind::Dma32).unwrap();
        let b = d32
            .reserved
            .iter()
            .find(|r| r.kind == ReserveKind::BounceBuffers)
            .unwrap();
        assert_eq!(b.range, PfnRange::new(1 << 18, (1 << 18) + 16384));
        // Deterministic, and the seed moves the image.
        assert_eq!(
            l,
            MemoryLayout::x86_64(8 * GIB, &X86Options::q35()).unwrap()
        );
        let mut regions = alloc::collections::BTreeSet::new();
        for seed in 0..64 {
            let o = X86Options {
                kaslr_seed: seed,
                ..X86Options::q35()
            };
            let l = MemoryLayout::x86_64(8 * GIB, &o).unwrap();
            let k = l
                .zones
                .iter()
                .flat_map(|z| &z.reserved)
                .find(|r| r.kind == ReserveKind::KernelImage)
                .unwrap();
            regions.insert(k.range.start >> 18);
        }
        assert_eq!(
            regions.len(),
            6,
            "all six Normal regions get the image for some seed: {regions:?}"
        );
    }

    #[test]
    fn no_reservations() {
        let o = X86Options {
            reservations: false,
            ..X86Options::default()
        };
        let l = MemoryLayout::x86_64(4 * GIB, &o).unwrap();
        assert_eq!(l.reserved_pages(), 0);
        assert_eq!(l.managed_pages(), l.present_pages());
        assert_eq!(normal_spbs(&l), 1);
    }

    #[test]
    fn sizes_from_64_mib_to_16_tib() {
        let mut sizes = alloc::vec![
            64 << 20,
            (64 << 20) + 4096,
            100 << 20,
            GIB,
            GIB + (64 << 20),
            2 * GIB,
            3 * GIB - 4096
        ];
        sizes.extend([
            3 * GIB,
            3 * GIB + 4096,
            4 * GIB,
            5 * GIB,
            24 * GIB,
            1000 * GIB,
            16 << 40,
        ]);
        for opts in [
            X86Options::i440fx(),
            X86Options::q35(),
            X86Options {
                below_4g_bytes: 4 * GIB,
                ..X86Options::q35()
            },
        ] {
            for &ram in &sizes {
                for seed in [0, 1, 0xdead_beef] {
                    let o = X86Options {
                        kaslr_seed: seed,
                        ..opts
                    };
                    let l = MemoryLayout::x86_64(ram, &o).unwrap_or_else(|e| panic!("{ram}: {e}"));
                    l.validate().unwrap();
                    assert_eq!(l.present_pages(), ram / 4096 - 98, "{ram}");
                    let k: Vec<_> = l
                        .zones
                        .iter()
                        .flat_map(|z| &z.reserved)
                        .filter(|r| r.kind == ReserveKind::KernelImage)
                        .collect();
                    assert_eq!(k.len(), 1);
                    assert!(k[0].range.start >= 4096);
                    let memmap: u64 = l
                        .zones
                        .iter()
                        .flat_map(|z| &z.reserved)
                        .filter(|r| r.kind == ReserveKind::Memmap)
                        .map(|r| r.range.len())
                        .sum();
                    assert_eq!(memmap, l.present_pages() / 64);
                }
            }
        }
        let l = MemoryLayout::x86_64(64 << 20, &X86Options::default()).unwrap();
        assert_eq!(l.zones.len(), 2);
        assert_eq!(l.zones[1].span, PfnRange::new(4096, 16384));
    }

    #[test]
    fn rejects_bad_sizes() {
        let d = X86Options::default();
        let e = MemoryLayout::x86_64(GIB + 1, &d).unwrap_err();
        assert_eq!(e.place, "ram_bytes");
        assert!(e.message.contains("multiple"));
        assert!(MemoryLayout::x86_64(32 << 20, &d)
            .unwrap_err()
            .message
            .contains("at least 64 MiB"));
        assert!(MemoryLayout::x86_64(0, &d).is_err());
        assert!(MemoryLayout::x86_64(1 << 53, &d).is_err());
        let o = X86Options {
            below_4g_bytes: 5 * GIB,
            ..d
        };
        assert_eq!(
            MemoryLayout::x86_64(8 * GIB, &o).unwrap_err().place,
            "below_4g_bytes"
        );
        let o = X86Options {
            below_4g_bytes: 3,
            ..d
        };
        assert_eq!(
            MemoryLayout::x86_64(8 * GIB, &o).unwrap_err().place,
            "below_4g_bytes"
        );
        let o = X86Options {
            geometry: Geometry {
                page_shift: 12,
                pageblock_order: 9,
                max_order: 8,
                spb_order: 18,
            },
            ..d
        };
        assert_eq!(
            MemoryLayout::x86_64(8 * GIB, &o).unwrap_err().place,
            "geometry"
        );
    }

    #[test]
    fn tiny_geometry_keeps_spb_counts() {
        let o = X86Options {
            geometry: Geometry::TINY,
            ..X86Options::default()
        };
        let l = MemoryLayout::x86_64(16 * GIB, &o).unwrap();
        assert_eq!(l.geometry, Geometry::TINY);
        assert_eq!(normal_spbs(&l), 13);
        let n = l.zone(ZoneKind::Normal).unwrap();
        assert_eq!(n.span, PfnRange::new(512, 512 + 13 * 128));
        assert!(n
            .reserved
            .iter()
            .any(|r| r.kind == ReserveKind::KernelImage));
        assert!(n
            .reserved
            .iter()
            .any(|r| r.kind == ReserveKind::Memmap && r.range.end == n.span.end));
        for ram in [64 << 20, GIB, 5 * GIB, 1 << 40] {
            let l = MemoryLayout::x86_64(ram, &o).unwrap();
            l.validate().unwrap();
            assert!(
                l.zones
                    .iter()
                    .flat_map(|z| &z.reserved)
                    .any(|r| r.kind == ReserveKind::KernelImage),
                "{ram}"
            );
        }
    }

    #[test]
    fn helpers() {
        let l = MemoryLayout::single_zone(Geometry::TINY, ZoneKind::Normal, 128, 256);
        l.validate().unwrap();
        assert_eq!(l.managed_pages(), 256);
        assert_eq!(l.zones[0].spb_count(&l.geometry), 2);
        assert!(
            MemoryLayout::single_zone(Geometry::TINY, ZoneKind::Normal, 0, 0)
                .validate()
                .is_err()
        );
        let t = MemoryLayout::tiny_two_zone();
        t.validate().unwrap();
        assert_eq!(t.zones[0].spb_count(&t.geometry), 2);
        assert_eq!(t.zones[1].spb_count(&t.geometry), 6);
        assert_eq!(t.present_pages(), 1024);
    }

    #[test]
    fn carving() {
        let mut f = alloc::vec![PfnRange::new(0, 10), PfnRange::new(20, 25)];
        assert_eq!(
            carve_top(&mut f, 7),
            alloc::vec![PfnRange::new(20, 25), PfnRange::new(8, 10)]
        );
        assert_eq!(f, alloc::vec![PfnRange::new(0, 8)]);
        assert_eq!(carve_bottom(&mut f, 3), alloc::vec![PfnRange::new(0, 3)]);
        assert_eq!(carve_top(&mut f, 100).len(), 1);
        assert!(f.is_empty());
        assert_eq!(
            free_ranges(
                PfnRange::new(0, 10),
                &[PfnRange::new(2, 4), PfnRange::new(0, 1)]
            ),
            alloc::vec![PfnRange::new(1, 2), PfnRange::new(4, 10)]
        );
    }
}
