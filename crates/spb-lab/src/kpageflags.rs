//! Reading `/proc/kpageflags` and `/proc/kpagecount` dumps and classifying every page frame.
//!
//! Both files hold one little-endian `u64` per pfn, starting at pfn 0. The dumps in
//! `shared/traces/*/{before,after}/` are zstd-compressed (`kpageflags.zst`, `kpagecount.zst`),
//! the QEMU runs keep only zstd kpageflags; plain and gzip dumps work too. The compression is
//! detected from the magic bytes (`28 b5 2f fd` zstd, `1f 8b` gzip, anything else plain) and
//! the data is streamed in 64 KiB chunks, never loaded whole.
//!
//! Two things to know when reading the numbers:
//! - **kpagecount is the map count**, not the reference count: the number of user page-table
//!   mappings of the page. Kernel allocations (vmalloc, kernel stacks, the trace ring buffer,
//!   pages cached on per-CPU free lists) carry no kpageflags bit and have map count 0, exactly
//!   like never-initialised memory. [`classify`] alone cannot tell them apart (it says
//!   [`PageClass::Uninit`]); [`classify_at`] and [`census`] can, given the zone layout.
//! - A free buddy block has the BUDDY bit on *every* page of the block, so free memory is
//!   counted page by page correctly.
#![warn(missing_docs)]

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use spb_alloc::layout::{MemoryLayout, PfnRange};

/// kpageflags bit numbers, as documented in the kernel's
/// `Documentation/admin-guide/mm/pagemap.rst` (bits 0–26 are the stable ABI of
/// `include/uapi/linux/kernel-page-flags.h`; bits 32–41 are the kernel-internal "hacking
/// assistance" bits, subject to change).
pub mod kpf {
    /// Page is locked for exclusive access (I/O in progress).
    pub const LOCKED: u32 = 0;
    /// I/O error on the page (now unused).
    pub const ERROR: u32 = 1;
    /// Page was referenced since last LRU scan.
    pub const REFERENCED: u32 = 2;
    /// Page holds valid data.
    pub const UPTODATE: u32 = 3;
    /// Page has been written to.
    pub const DIRTY: u32 = 4;
    /// Page is on an LRU list.
    pub const LRU: u32 = 5;
    /// Page is on the active LRU list.
    pub const ACTIVE: u32 = 6;
    /// Page belongs to the slab allocator.
    pub const SLAB: u32 = 7;
    /// Page is being written back.
    pub const WRITEBACK: u32 = 8;
    /// Page will be reclaimed soon after its pageout I/O completes (PG_reclaim).
    pub const RECLAIM: u32 = 9;
    /// Page is part of a free buddy block (set on every page of the block).
    pub const BUDDY: u32 = 10;
    /// Page is mapped into some process.
    pub const MMAP: u32 = 11;
    /// Anonymous page.
    pub const ANON: u32 = 12;
    /// Page is in the swap cache.
    pub const SWAPCACHE: u32 = 13;
    /// Page is backed by swap / RAM (shmem, anon).
    pub const SWAPBACKED: u32 = 14;
    /// Head page of a compound page.
    pub const COMPOUND_HEAD: u32 = 15;
    /// Tail page of a compound page.
    pub const COMPOUND_TAIL: u32 = 16;
    /// Part of a hugetlbfs page.
    pub const HUGE: u32 = 17;
    /// Page is on the unevictable LRU list.
    pub const UNEVICTABLE: u32 = 18;
    /// Hardware-poisoned page.
    pub const HWPOISON: u32 = 19;
    /// No struct page behind this pfn (a hole in the memory map).
    pub const NOPAGE: u32 = 20;
    /// KSM-merged page.
    pub const KSM: u32 = 21;
    /// Part of a transparent huge page.
    pub const THP: u32 = 22;
    /// Page is logically offline (balloon, virtio-mem); was BALLOON before 4.20.
    pub const OFFLINE: u32 = 23;
    /// The zero page (or huge zero page).
    pub const ZERO_PAGE: u32 = 24;
    /// Page has not been accessed since marked idle (page_idle tracking).
    pub const IDLE: u32 = 25;
    /// Page is used as a page table.
    pub const PGTABLE: u32 = 26;
    /// PG_reserved: memblock reservations and other never-freed pages.
    pub const RESERVED: u32 = 32;
    /// PG_mlocked.
    pub const MLOCKED: u32 = 33;
    /// PG_mappedtodisk.
    pub const MAPPEDTODISK: u32 = 34;
    /// PG_private (buffer heads, fs-private data).
    pub const PRIVATE: u32 = 35;
    /// PG_private_2.
    pub const PRIVATE_2: u32 = 36;
    /// PG_owner_priv_1.
    pub const OWNER_PRIVATE: u32 = 37;
    /// PG_arch_1.
    pub const ARCH: u32 = 38;
    /// PG_uncached.
    pub const UNCACHED: u32 = 39;
    /// Soft-dirty (pte-level, reported for the page).
    pub const SOFTDIRTY: u32 = 40;
    /// PG_arch_2.
    pub const ARCH_2: u32 = 41;

    /// The mask of bit `b`.
    pub const fn bit(b: u32) -> u64 {
        1u64 << b
    }
    /// True when bit `b` is set in `flags`.
    pub const fn has(flags: u64, b: u32) -> bool {
        flags & bit(b) != 0
    }
}

/// What a page frame is, as far as fragmentation is concerned.
///
/// There is no "movable but pinned" class: a long-term GUP pin is invisible in kpageflags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PageClass {
    /// In a free buddy block (BUDDY).
    Free,
    /// User memory the kernel can migrate: on an LRU list, anonymous, swap-backed, in the swap
    /// cache, KSM or THP (mlocked/unevictable pages included: compaction migrates them by
    /// default).
    Movable,
    /// A slab page. `reclaimable` is always `false` from [`classify`]: kpageflags has no bit
    /// for reclaimable (SLAB_RECLAIM_ACCOUNT) caches — RECLAIM is PG_reclaim, a writeback
    /// state — so slab is treated as unmovable. Callers with better knowledge (slabinfo, the
    /// trace's migratetype-2 allocations) may reclassify.
    Slab {
        /// Whether the slab cache is reclaimable (shrinkable).
        reclaimable: bool,
    },
    /// A page-table page (PGTABLE).
    PageTable,
    /// Part of a hugetlbfs page (HUGE), e.g. a 1 GiB page held by the probe.
    HugeTlb,
    /// PG_reserved: boot-time reservations (memmap, kernel image, bounce buffers, the low
    /// 1 MiB), the zero page.
    Reserved,
    /// Hardware-poisoned or logically offline (balloon) pages.
    Offline,
    /// Kernel memory with no identifying flag that is not free: mapped pages without LRU
    /// (driver mappings), compound tails of kernel allocations, and — with a layout — flag-0
    /// pages outside the layout's uninit ranges (vmalloc, stacks, ring buffers, pcp lists).
    KernelOther,
    /// Flags 0 and map count 0. Without a layout this is "never initialised *or* an unmapped
    /// kernel page"; with a layout, only flag-0 pages inside its uninit or reserved ranges.
    Uninit,
    /// No memory: NOPAGE, or (with a layout) a flag-0 pfn in a hole or outside every zone.
    Hole,
}

impl PageClass {
    /// Number of distinct classes (both `Slab` variants counted).
    pub const COUNT: usize = 11;

    /// All classes in [`PageClass::index`] order.
    pub const ALL: [PageClass; PageClass::COUNT] = [
        PageClass::Free,
        PageClass::Movable,
        PageClass::Slab { reclaimable: true },
        PageClass::Slab { reclaimable: false },
        PageClass::PageTable,
        PageClass::HugeTlb,
        PageClass::Reserved,
        PageClass::Offline,
        PageClass::KernelOther,
        PageClass::Uninit,
        PageClass::Hole,
    ];

    /// Dense index `0..COUNT`.
    pub const fn index(self) -> usize {
        match self {
            PageClass::Free => 0,
            PageClass::Movable => 1,
            PageClass::Slab { reclaimable: true } => 2,
            PageClass::Slab { reclaimable: false } => 3,
            PageClass::PageTable => 4,
            PageClass::HugeTlb => 5,
            PageClass::Reserved => 6,
            PageClass::Offline => 7,
            PageClass::KernelOther => 8,
            PageClass::Uninit => 9,
            PageClass::Hole => 10,
        }
    }

    /// Short column name.
    pub const fn name(self) -> &'static str {
        match self {
            PageClass::Free => "free",
            PageClass::Movable => "movable",
            PageClass::Slab { reclaimable: true } => "slab_r",
            PageClass::Slab { reclaimable: false } => "slab_u",
            PageClass::PageTable => "pgtable",
            PageClass::HugeTlb => "hugetlb",
            PageClass::Reserved => "reserved",
            PageClass::Offline => "offline",
            PageClass::KernelOther => "kernel",
            PageClass::Uninit => "uninit",
            PageClass::Hole => "hole",
        }
    }

    /// Whether a page of this class keeps its 1 GiB region from becoming a gigantic page
    /// without freeing kernel memory (everything but free, movable and hugetlb pages).
    pub const fn blocks_gigantic(self) -> bool {
        !matches!(
            self,
            PageClass::Free | PageClass::Movable | PageClass::HugeTlb
        )
    }
}

impl fmt::Display for PageClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Bits that mark user memory the kernel can migrate.
const MOVABLE_BITS: u64 = kpf::bit(kpf::LRU)
    | kpf::bit(kpf::ANON)
    | kpf::bit(kpf::SWAPCACHE)
    | kpf::bit(kpf::SWAPBACKED)
    | kpf::bit(kpf::KSM)
    | kpf::bit(kpf::THP)
    | kpf::bit(kpf::UNEVICTABLE);

/// Classify one page frame from its kpageflags word and kpagecount (map count) alone.
///
/// Precedence: NOPAGE → `Hole`; HWPOISON or OFFLINE → `Offline`; RESERVED → `Reserved`;
/// BUDDY → `Free`; SLAB → `Slab` (not reclaimable, see [`PageClass::Slab`]); PGTABLE →
/// `PageTable`; HUGE → `HugeTlb`; any of LRU, ANON, SWAPCACHE, SWAPBACKED, KSM, THP,
/// UNEVICTABLE → `Movable`; flags 0 and count 0 → `Uninit`; anything else → `KernelOther`
/// (MMAP alone is a driver mapping of kernel memory, not migratable).
pub fn classify(flags: u64, count: u64) -> PageClass {
    use kpf::has;
    if has(flags, kpf::NOPAGE) {
        PageClass::Hole
    } else if has(flags, kpf::HWPOISON) || has(flags, kpf::OFFLINE) {
        PageClass::Offline
    } else if has(flags, kpf::RESERVED) {
        PageClass::Reserved
    } else if has(flags, kpf::BUDDY) {
        PageClass::Free
    } else if has(flags, kpf::SLAB) {
        PageClass::Slab { reclaimable: false }
    } else if has(flags, kpf::PGTABLE) {
        PageClass::PageTable
    } else if has(flags, kpf::HUGE) {
        PageClass::HugeTlb
    } else if flags & MOVABLE_BITS != 0 {
        PageClass::Movable
    } else if flags == 0 && count == 0 {
        PageClass::Uninit
    } else {
        PageClass::KernelOther
    }
}

/// Where a pfn sits in a layout, for [`classify_at`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    /// In a hole or outside every zone.
    NoMemory,
    /// In an uninit or reserved range.
    NotManaged,
    /// Managed memory.
    Managed,
}

/// A sorted index of a layout's ranges for fast lookups of ascending pfns.
struct LayoutIndex {
    /// Sorted, disjoint; gaps between entries are `NoMemory`.
    ranges: Vec<(PfnRange, Place)>,
    cursor: usize,
}

impl LayoutIndex {
    fn new(layout: &MemoryLayout) -> LayoutIndex {
        let mut ranges = Vec::new();
        for z in &layout.zones {
            let mut special: Vec<(PfnRange, Place)> = Vec::new();
            special.extend(z.holes.iter().map(|h| (*h, Place::NoMemory)));
            special.extend(z.uninit.iter().map(|u| (*u, Place::NotManaged)));
            special.extend(z.reserved.iter().map(|r| (r.range, Place::NotManaged)));
            special.sort_by_key(|s| s.0);
            let mut cur = z.span.start;
            for (r, p) in special {
                let r = PfnRange::new(r.start.max(cur), r.end.min(z.span.end));
                if r.is_empty() {
                    continue;
                }
                if r.start > cur {
                    ranges.push((PfnRange::new(cur, r.start), Place::Managed));
                }
                ranges.push((r, p));
                cur = r.end;
            }
            if cur < z.span.end {
                ranges.push((PfnRange::new(cur, z.span.end), Place::Managed));
            }
        }
        ranges.sort_by_key(|r| r.0);
        LayoutIndex { ranges, cursor: 0 }
    }

    fn place(&mut self, pfn: u64) -> Place {
        if let Some((r, p)) = self.ranges.get(self.cursor) {
            if r.contains(pfn) {
                return *p;
            }
        }
        // Not in the cached range: binary search for the last range starting at or before pfn.
        let i = self.ranges.partition_point(|(r, _)| r.start <= pfn);
        if i == 0 {
            return Place::NoMemory;
        }
        self.cursor = i - 1;
        let (r, p) = self.ranges[i - 1];
        if r.contains(pfn) {
            p
        } else {
            Place::NoMemory
        }
    }
}

fn refine(class: PageClass, flags: u64, place: Place) -> PageClass {
    match place {
        Place::NoMemory if flags == 0 => PageClass::Hole,
        Place::Managed if class == PageClass::Uninit => PageClass::KernelOther,
        _ => class,
    }
}

/// Classify with the help of the machine's layout: a flag-0 pfn in a hole or outside every
/// zone is a `Hole`; a flag-0, count-0 pfn is `Uninit` only inside the layout's uninit or
/// reserved ranges (deferred-init memory whose struct pages were never set up) and
/// `KernelOther` elsewhere (an unmapped kernel allocation). Otherwise as [`classify`].
///
/// For many pfns in ascending order, [`census`] is much faster (it indexes the layout once).
pub fn classify_at(flags: u64, count: u64, pfn: u64, layout: &MemoryLayout) -> PageClass {
    refine(
        classify(flags, count),
        flags,
        LayoutIndex::new(layout).place(pfn),
    )
}

/// How a dump file is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// Raw little-endian u64s.
    Plain,
    /// zstd (magic `28 b5 2f fd`); concatenated frames are fine.
    Zstd,
    /// gzip (magic `1f 8b`); concatenated members are fine.
    Gzip,
}

/// What went wrong in a [`KpageError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KpageErrorKind {
    /// The file could not be opened.
    #[error("cannot open")]
    Open,
    /// Reading or decompressing failed (corrupt zstd/gzip data, I/O error).
    #[error("corrupt or unreadable data")]
    Corrupt,
    /// The (decompressed) data ends inside an 8-byte entry.
    #[error("truncated: expected a multiple of 8 bytes")]
    Truncated,
    /// The kpagecount dump has fewer entries than the kpageflags dump.
    #[error("kpagecount dump is shorter than the kpageflags dump")]
    CountShorter,
    /// The kpagecount dump has more entries than the kpageflags dump.
    #[error("kpagecount dump is longer than the kpageflags dump")]
    CountLonger,
}

/// An error reading a dump: the file, the byte offset in its *decompressed* data, and what
/// was wrong.
#[derive(Debug, thiserror::Error)]
#[error("{}: byte offset {offset}: {kind}{}", path.display(), if detail.is_empty() { String::new() } else { format!(" ({detail})") })]
pub struct KpageError {
    /// The file.
    pub path: PathBuf,
    /// Offset in the decompressed stream (8 × pfn for entry-level problems).
    pub offset: u64,
    /// The kind of problem.
    pub kind: KpageErrorKind,
    /// Details (the underlying I/O or decoder message), may be empty.
    pub detail: String,
}

/// A stream of little-endian u64s from a plain/zstd/gzip file.
struct U64Stream {
    path: PathBuf,
    compression: Compression,
    src: Box<dyn Read + Send>,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    /// Bytes of the decompressed stream before `buf[0]`.
    base: u64,
    eof: bool,
}

const CHUNK: usize = 1 << 16;

impl U64Stream {
    fn open(path: &Path) -> Result<U64Stream, KpageError> {
        let e = |kind, detail: String| KpageError {
            path: path.to_path_buf(),
            offset: 0,
            kind,
            detail,
        };
        let file = File::open(path).map_err(|err| e(KpageErrorKind::Open, err.to_string()))?;
        let mut br = BufReader::with_capacity(CHUNK, file);
        let head = loop {
            match br.fill_buf() {
                Ok(h) => break h,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(e(KpageErrorKind::Corrupt, err.to_string())),
            }
        };
        let (compression, src): (Compression, Box<dyn Read + Send>) =
            if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
                let d = zstd::stream::read::Decoder::with_buffer(br)
                    .map_err(|err| e(KpageErrorKind::Corrupt, err.to_string()))?;
                (Compression::Zstd, Box::new(d))
            } else if head.starts_with(&[0x1f, 0x8b]) {
                (
                    Compression::Gzip,
                    Box::new(flate2::bufread::MultiGzDecoder::new(br)),
                )
            } else {
                (Compression::Plain, Box::new(br))
            };
        Ok(U64Stream {
            path: path.to_path_buf(),
            compression,
            src,
            buf: vec![0; CHUNK],
            pos: 0,
            len: 0,
            base: 0,
            eof: false,
        })
    }

    fn error(&self, offset: u64, kind: KpageErrorKind, detail: String) -> KpageError {
        KpageError {
            path: self.path.clone(),
            offset,
            kind,
            detail,
        }
    }

    /// Offset of the next unread byte.
    fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// Move the unread tail to the front and read until 8 bytes are buffered or EOF.
    fn refill(&mut self) -> Result<(), KpageError> {
        let tail = self.len - self.pos;
        self.buf.copy_within(self.pos..self.len, 0);
        self.base += self.pos as u64;
        self.pos = 0;
        self.len = tail;
        while !self.eof && self.len < CHUNK {
            match self.src.read(&mut self.buf[self.len..]) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    self.len += n;
                    if self.len >= 8 {
                        break;
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => {
                    let at = self.base + self.len as u64;
                    return Err(self.error(at, KpageErrorKind::Corrupt, err.to_string()));
                }
            }
        }
        Ok(())
    }

    #[inline]
    fn next(&mut self) -> Result<Option<u64>, KpageError> {
        if self.len - self.pos < 8 {
            self.refill()?;
            let left = self.len - self.pos;
            if left == 0 {
                return Ok(None);
            }
            if left < 8 {
                let at = self.offset();
                return Err(self.error(
                    at,
                    KpageErrorKind::Truncated,
                    format!("{left} trailing bytes"),
                ));
            }
        }
        let mut w = [0u8; 8];
        w.copy_from_slice(&self.buf[self.pos..self.pos + 8]);
        self.pos += 8;
        Ok(Some(u64::from_le_bytes(w)))
    }
}

/// One page frame of a dump.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KpageEntry {
    /// Page frame number (the entry's index in the dump).
    pub pfn: u64,
    /// The kpageflags word (see [`kpf`]).
    pub flags: u64,
    /// The kpagecount word (map count), `None` without a count dump.
    pub count: Option<u64>,
}

impl KpageEntry {
    /// [`classify`] with a missing count taken as 0.
    pub fn class(&self) -> PageClass {
        classify(self.flags, self.count.unwrap_or(0))
    }
}

/// Streaming reader of a kpageflags dump, optionally paired with the kpagecount dump of the
/// same moment. Iterates `Result<KpageEntry, KpageError>` in pfn order; after an error it
/// yields nothing more.
pub struct KpageReader {
    flags: U64Stream,
    count: Option<U64Stream>,
    pfn: u64,
    done: bool,
}

impl KpageReader {
    /// Open a kpageflags dump and, optionally, its kpagecount dump (plain, zstd or gzip each).
    pub fn open(
        flags_path: impl AsRef<Path>,
        count_path: Option<&Path>,
    ) -> Result<KpageReader, KpageError> {
        let flags = U64Stream::open(flags_path.as_ref())?;
        let count = count_path.map(U64Stream::open).transpose()?;
        Ok(KpageReader {
            flags,
            count,
            pfn: 0,
            done: false,
        })
    }

    /// How the flags dump is compressed.
    pub fn flags_compression(&self) -> Compression {
        self.flags.compression
    }

    /// How the count dump is compressed, if there is one.
    pub fn count_compression(&self) -> Option<Compression> {
        self.count.as_ref().map(|c| c.compression)
    }

    /// The next entry, `Ok(None)` at the end.
    pub fn next_entry(&mut self) -> Result<Option<KpageEntry>, KpageError> {
        if self.done {
            return Ok(None);
        }
        let r = self.step();
        if !matches!(r, Ok(Some(_))) {
            self.done = true;
        }
        r
    }

    fn step(&mut self) -> Result<Option<KpageEntry>, KpageError> {
        let Some(flags) = self.flags.next()? else {
            if let Some(c) = self.count.as_mut() {
                let at = c.offset();
                if c.next()?.is_some() {
                    // the kpageflags dump is the one that ended: name it (and the other file)
                    return Err(self.flags.error(
                        at,
                        KpageErrorKind::CountLonger,
                        format!(
                            "kpageflags ends after {} entries, {} has more",
                            self.pfn,
                            c.path.display()
                        ),
                    ));
                }
            }
            return Ok(None);
        };
        let count = match self.count.as_mut() {
            None => None,
            Some(c) => {
                let at = c.offset();
                match c.next()? {
                    Some(v) => Some(v),
                    None => {
                        return Err(c.error(
                            at,
                            KpageErrorKind::CountShorter,
                            format!("no entry for pfn {:#x}", self.pfn),
                        ))
                    }
                }
            }
        };
        let e = KpageEntry {
            pfn: self.pfn,
            flags,
            count,
        };
        self.pfn += 1;
        Ok(Some(e))
    }
}

impl Iterator for KpageReader {
    type Item = Result<KpageEntry, KpageError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_entry().transpose()
    }
}

/// Per-region page counts by class.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Census {
    /// log2 of pfns per region (18: 1 GiB of 4 KiB pages).
    pub region_shift: u32,
    /// `regions[i][class.index()]`: pages of `class` in pfns `[i << shift, (i + 1) << shift)`.
    pub regions: Vec<[u64; PageClass::COUNT]>,
    /// Entries read.
    pub pages: u64,
}

impl Census {
    /// Pages of `class` in region `region` (0 past the end).
    pub fn get(&self, region: usize, class: PageClass) -> u64 {
        self.regions.get(region).map_or(0, |r| r[class.index()])
    }

    /// Pages of `class` over all regions.
    pub fn total(&self, class: PageClass) -> u64 {
        self.regions.iter().map(|r| r[class.index()]).sum()
    }

    /// Regions holding at least one page that [`PageClass::blocks_gigantic`] (excluding
    /// holes: a region that is *only* hole is no memory at all).
    pub fn blocked_regions(&self) -> Vec<usize> {
        (0..self.regions.len())
            .filter(|&i| {
                let r = &self.regions[i];
                let holes = r[PageClass::Hole.index()];
                let total: u64 = r.iter().sum();
                holes < total
                    && PageClass::ALL
                        .iter()
                        .any(|c| c.blocks_gigantic() && r[c.index()] > 0)
            })
            .collect()
    }
}

impl fmt::Display for Census {
    /// A table: one row per region (`start_pfn`), one column per class that occurs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cols: Vec<PageClass> = PageClass::ALL
            .iter()
            .copied()
            .filter(|c| self.total(*c) > 0)
            .collect();
        write!(f, "{:>4} {:>10}", "reg", "start_pfn")?;
        for c in &cols {
            write!(f, " {:>9}", c.name())?;
        }
        writeln!(f)?;
        for (i, r) in self.regions.iter().enumerate() {
            write!(f, "{:>4} {:>#10x}", i, (i as u64) << self.region_shift)?;
            for c in &cols {
                write!(f, " {:>9}", r[c.index()])?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

/// Count pages per class in regions of `1 << region_shift` pfns (18 = 1 GiB of 4 KiB
/// pages; values above 63 are treated as 63). With a `layout` (for example
/// [`MemoryLayout::from_zoneinfo`] of the snapshot's own zoneinfo) classes are refined as in
/// [`classify_at`]; without one, as in [`classify`] (a missing count is taken as 0).
pub fn census<I>(
    entries: I,
    region_shift: u32,
    layout: Option<&MemoryLayout>,
) -> Result<Census, KpageError>
where
    I: IntoIterator<Item = Result<KpageEntry, KpageError>>,
{
    let shift = region_shift.min(63);
    let mut index = layout.map(LayoutIndex::new);
    let mut c = Census {
        region_shift: shift,
        regions: Vec::new(),
        pages: 0,
    };
    for e in entries {
        let e = e?;
        let mut class = e.class();
        if let Some(ix) = index.as_mut() {
            class = refine(class, e.flags, ix.place(e.pfn));
        }
        let reg = (e.pfn >> shift) as usize;
        if reg >= c.regions.len() {
            c.regions.resize(reg + 1, [0; PageClass::COUNT]);
        }
        c.regions[reg][class.index()] += 1;
        c.pages += 1;
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use spb_alloc::layout::{ZoneKind, ZoneSpec};
    use spb_alloc::Geometry;
    use std::io::Write;

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("spb-kpageflags-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn le(words: &[u64]) -> Vec<u8> {
        words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    fn write(path: &Path, bytes: &[u8]) {
        std::fs::write(path, bytes).unwrap();
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    use kpf::bit;

    /// A synthetic machine: 3 regions of 8 pfns (shift 3).
    fn synthetic() -> (Vec<u64>, Vec<u64>) {
        let flags = vec![
            // region 0
            bit(kpf::RESERVED),
            bit(kpf::BUDDY),
            bit(kpf::BUDDY),
            bit(kpf::LRU) | bit(kpf::UPTODATE),
            bit(kpf::SLAB),
            bit(kpf::PGTABLE),
            0,
            0,
            // region 1
            bit(kpf::NOPAGE),
            bit(kpf::ANON) | bit(kpf::MMAP),
            bit(kpf::HUGE) | bit(kpf::COMPOUND_TAIL),
            bit(kpf::OFFLINE),
            bit(kpf::MMAP),
            bit(kpf::COMPOUND_TAIL),
            bit(kpf::THP) | bit(kpf::COMPOUND_TAIL) | bit(kpf::LRU),
            bit(kpf::HWPOISON) | bit(kpf::LRU),
            // region 2, 4 entries
            0,
            0,
            0,
            bit(kpf::BUDDY),
        ];
        let mut count = vec![0u64; flags.len()];
        count[6] = 1; // flags 0, mapped: kernel
        count[9] = 2;
        count[12] = 1;
        (flags, count)
    }

    #[test]
    fn classify_rules() {
        use PageClass::*;
        let (f, c) = synthetic();
        let got: Vec<PageClass> = f.iter().zip(&c).map(|(f, c)| classify(*f, *c)).collect();
        let slab = Slab { reclaimable: false };
        assert_eq!(
            got,
            vec![
                Reserved,
                Free,
                Free,
                Movable,
                slab,
                PageTable,
                KernelOther,
                Uninit,
                Hole,
                Movable,
                HugeTlb,
                Offline,
                KernelOther,
                KernelOther,
                Movable,
                Offline,
                Uninit,
                Uninit,
                Uninit,
                Free
            ]
        );
        for (i, c) in PageClass::ALL.iter().enumerate() {
            assert_eq!(c.index(), i);
        }
    }

    #[test]
    fn reads_plain_zstd_gzip_and_censuses() {
        let d = tmpdir("formats");
        let (f, c) = synthetic();
        let raw_f = le(&f);
        let raw_c = le(&c);
        let variants: Vec<(Compression, Vec<u8>, Vec<u8>)> = vec![
            (Compression::Plain, raw_f.clone(), raw_c.clone()),
            (
                Compression::Zstd,
                zstd::encode_all(&raw_f[..], 3).unwrap(),
                zstd::encode_all(&raw_c[..], 3).unwrap(),
            ),
            (Compression::Gzip, gzip(&raw_f), gzip(&raw_c)),
        ];
        for (comp, fb, cb) in variants {
            let fp = d.join(format!("{comp:?}.flags"));
            let cp = d.join(format!("{comp:?}.count"));
            write(&fp, &fb);
            write(&cp, &cb);
            let r = KpageReader::open(&fp, Some(&cp)).unwrap();
            assert_eq!(r.flags_compression(), comp);
            assert_eq!(r.count_compression(), Some(comp));
            let entries: Vec<KpageEntry> = r.map(|e| e.unwrap()).collect();
            assert_eq!(entries.len(), f.len());
            assert_eq!(
                entries[9],
                KpageEntry {
                    pfn: 9,
                    flags: f[9],
                    count: Some(2)
                }
            );
            let cs = census(KpageReader::open(&fp, Some(&cp)).unwrap(), 3, None).unwrap();
            assert_eq!(cs.pages, 20);
            assert_eq!(cs.regions.len(), 3);
            assert_eq!(cs.get(0, PageClass::Free), 2);
            assert_eq!(cs.get(0, PageClass::Uninit), 1);
            assert_eq!(cs.get(0, PageClass::KernelOther), 1);
            assert_eq!(cs.get(1, PageClass::Movable), 2);
            assert_eq!(cs.get(2, PageClass::Uninit), 3);
            assert_eq!(cs.total(PageClass::Offline), 2);
            assert_eq!(cs.blocked_regions(), vec![0, 1, 2]);
            // Without counts: pfn 6 (flags 0, mapped) becomes Uninit.
            let cs = census(KpageReader::open(&fp, None).unwrap(), 3, None).unwrap();
            assert_eq!(cs.get(0, PageClass::Uninit), 2);
            let table = cs.to_string();
            assert!(
                table.contains("start_pfn") && table.contains("uninit"),
                "{table}"
            );
        }
        // A concatenation of two zstd frames reads as one stream.
        let mut two = zstd::encode_all(&raw_f[..80], 1).unwrap();
        two.extend(zstd::encode_all(&raw_f[80..], 1).unwrap());
        let p = d.join("two.zst");
        write(&p, &two);
        assert_eq!(KpageReader::open(&p, None).unwrap().count(), 20);
        // An empty file is an empty dump.
        let p = d.join("empty");
        write(&p, &[]);
        assert_eq!(KpageReader::open(&p, None).unwrap().count(), 0);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn layout_refines_flag_zero_pages() {
        let (f, c) = synthetic();
        // Zone [0, 18): pfn 7 is reserved, pfns 16..18 are uninit, 18.. is outside.
        let mut z = ZoneSpec::plain(ZoneKind::Normal, PfnRange::new(0, 18));
        z.reserved.push(spb_alloc::layout::Reservation {
            range: PfnRange::new(7, 8),
            kind: spb_alloc::layout::ReserveKind::Other,
        });
        z.uninit.push(PfnRange::new(16, 18));
        let l = MemoryLayout {
            geometry: Geometry::TINY,
            zones: vec![z],
        };
        let entries = f.iter().zip(&c).enumerate().map(|(i, (f, c))| {
            Ok(KpageEntry {
                pfn: i as u64,
                flags: *f,
                count: Some(*c),
            })
        });
        let cs = census(entries, 3, Some(&l)).unwrap();
        assert_eq!(
            cs.get(0, PageClass::Uninit),
            1,
            "pfn 7 is in a reserved range"
        );
        assert_eq!(cs.get(2, PageClass::Uninit), 2);
        assert_eq!(
            cs.get(2, PageClass::Hole),
            1,
            "pfn 18 is outside every zone"
        );
        assert_eq!(classify_at(0, 0, 3, &l), PageClass::KernelOther);
        assert_eq!(classify_at(0, 0, 100, &l), PageClass::Hole);
        assert_eq!(classify_at(bit(kpf::BUDDY), 0, 100, &l), PageClass::Free);
    }

    fn err_of(r: Result<Vec<KpageEntry>, KpageError>) -> KpageError {
        r.unwrap_err()
    }

    #[test]
    fn errors_name_file_and_offset() {
        let d = tmpdir("errors");
        let words = le(&[1, 2, 3]);
        // Truncated plain file.
        let p = d.join("trunc");
        let mut b = words.clone();
        b.extend([9, 9, 9]);
        write(&p, &b);
        let e = err_of(KpageReader::open(&p, None).unwrap().collect());
        assert_eq!((e.kind, e.offset), (KpageErrorKind::Truncated, 24));
        assert_eq!(e.path, p);
        assert!(
            e.to_string().contains("trunc: byte offset 24: truncated"),
            "{e}"
        );
        // Truncated inside zstd data.
        let p = d.join("trunc.zst");
        write(&p, &zstd::encode_all(&b[..], 3).unwrap());
        let e = err_of(KpageReader::open(&p, None).unwrap().collect());
        assert_eq!((e.kind, e.offset), (KpageErrorKind::Truncated, 24));
        // Corrupt zstd: a valid frame cut short, and garbage after the magic.
        let big: Vec<u64> = (0..100_000u64)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .collect();
        let z = zstd::encode_all(&le(&big)[..], 3).unwrap();
        let p = d.join("cut.zst");
        write(&p, &z[..z.len() / 2]);
        let e = err_of(KpageReader::open(&p, None).unwrap().collect());
        assert_eq!(e.kind, KpageErrorKind::Corrupt, "{e}");
        assert!(e.offset < 800_000, "{e}");
        let p = d.join("garbage.zst");
        write(
            &p,
            &[
                0x28, 0xb5, 0x2f, 0xfd, 0xff, 0xff, 0xff, 0xff, 0x00, 0x13, 0x37,
            ],
        );
        let e = err_of(KpageReader::open(&p, None).unwrap().collect());
        assert_eq!((e.kind, e.offset), (KpageErrorKind::Corrupt, 0), "{e}");
        // Corrupt gzip.
        let p = d.join("bad.gz");
        let mut g = gzip(&le(&big));
        let n = g.len();
        for x in &mut g[20..n - 8] {
            *x ^= 0x5a;
        }
        write(&p, &g);
        let e = err_of(KpageReader::open(&p, None).unwrap().collect());
        assert_eq!(e.kind, KpageErrorKind::Corrupt, "{e}");
        // Count shorter / longer than flags.
        let fp = d.join("flags");
        write(&fp, &words);
        let cp = d.join("count-short");
        write(&cp, &le(&[0, 0]));
        let e = err_of(KpageReader::open(&fp, Some(&cp)).unwrap().collect());
        assert_eq!(
            (e.kind, e.offset, e.path.clone()),
            (KpageErrorKind::CountShorter, 16, cp.clone())
        );
        assert!(e.to_string().contains("pfn 0x2"), "{e}");
        let cp = d.join("count-long");
        write(&cp, &le(&[0, 0, 0, 0]));
        let e = err_of(KpageReader::open(&fp, Some(&cp)).unwrap().collect());
        assert_eq!((e.kind, e.offset), (KpageErrorKind::CountLonger, 24));
        // Missing file.
        let e = KpageReader::open(d.join("nope"), None).err().unwrap();
        assert_eq!(e.kind, KpageErrorKind::Open);
        // census passes errors through.
        let cp = d.join("count-short");
        assert!(census(KpageReader::open(&fp, Some(&cp)).unwrap(), 18, None).is_err());
        // The iterator stops after an error.
        let mut r = KpageReader::open(d.join("trunc"), None).unwrap();
        assert_eq!(r.by_ref().filter(|e| e.is_err()).count(), 1);
        assert!(r.next().is_none());
        let _ = std::fs::remove_dir_all(&d);
    }

    fn shared(rel: &str) -> PathBuf {
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")).join(rel)
    }

    /// Census of the real build/after snapshot (6.5M pfns), refined with its own zoneinfo.
    #[test]
    fn real_build_after_census() {
        let dir = shared("traces/build/after");
        let flags = dir.join("kpageflags.zst");
        if !flags.exists() {
            eprintln!("skipped: {} not found", flags.display());
            return;
        }
        let t0 = std::time::Instant::now();
        let zi = std::fs::read_to_string(dir.join("zoneinfo")).unwrap();
        let layout = MemoryLayout::from_zoneinfo(&zi, Geometry::X86_64).unwrap();
        let r = KpageReader::open(&flags, Some(&dir.join("kpagecount.zst"))).unwrap();
        let cs = census(r, 18, Some(&layout)).unwrap();
        eprintln!("{cs}");
        eprintln!("census of {} pfns took {:?}", cs.pages, t0.elapsed());
        assert_eq!(cs.pages, 6_553_600);
        assert_eq!(cs.regions.len(), 25);
        // 3G-4G is the PCI hole.
        assert_eq!(cs.get(3, PageClass::Hole), 262_144);
        // Low memory and the kernel image (16 MiB, no KASLR) are reserved in region 0.
        assert!(cs.get(0, PageClass::Reserved) > 9_000);
        // Deferred init: the top of Normal is never-initialised memory.
        for reg in 8..25 {
            assert_eq!(cs.get(reg, PageClass::Uninit), 262_144, "region {reg}");
        }
        // Buddy pages match the zoneinfo's `pages free` (the snapshot is not atomic: 1 %).
        let zone_free: u64 = zi
            .lines()
            .filter_map(|l| l.trim().strip_prefix("pages free"))
            .map(|v| v.trim().parse::<u64>().unwrap())
            .sum();
        let free = cs.total(PageClass::Free);
        assert!(
            free.abs_diff(zone_free) * 100 <= zone_free,
            "{free} vs {zone_free}"
        );
    }

    /// Census of a QEMU q35 8 GiB boot snapshot (kpageflags only, no kpagecount).
    #[test]
    fn real_qemu_boot_census() {
        let dir = shared("qemu/runs/ctrl1_8G_0s_retry_20261125T192645Z/out/proc");
        let flags = dir.join("kpageflags_00_boot.bin.zst");
        if !flags.exists() {
            eprintln!("skipped: {} not found", flags.display());
            return;
        }
        let zi = std::fs::read_to_string(dir.join("00_boot/zoneinfo")).unwrap();
        let layout = MemoryLayout::from_zoneinfo(&zi, Geometry::X86_64).unwrap();
        let cs = census(KpageReader::open(&flags, None).unwrap(), 18, Some(&layout)).unwrap();
        eprintln!("{cs}");
        // The memmap and friends at the top region (9G-10G), ~16k swiotlb pages in 1G-2G.
        assert!(cs.get(9, PageClass::Reserved) > 30_000);
        assert!(cs.get(1, PageClass::Reserved) >= 16_384);
        // The PCI hole 2G-4G.
        assert_eq!(
            cs.get(2, PageClass::Hole) + cs.get(3, PageClass::Hole),
            2 * 262_144
        );
    }
}
