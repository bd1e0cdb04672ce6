//! GFP flags (what the caller asks for) and ALLOC flags (how the allocator goes about it).
//!
//! # Two flag words
//!
//! * [`Gfp`] is the kernel's `gfp_t`: the request shape a *caller* passes to the page
//!   allocator. It says which zones may be used (`__GFP_DMA`, `__GFP_DMA32`, `__GFP_HIGHMEM`,
//!   `__GFP_MOVABLE`), what mobility the page will have (`__GFP_MOVABLE`,
//!   `__GFP_RECLAIMABLE`, which select the migratetype), what the caller tolerates (may it sleep
//!   and reclaim: `__GFP_DIRECT_RECLAIM`; may it wake kswapd: `__GFP_KSWAPD_RECLAIM`; may it
//!   fail: `__GFP_NORETRY` / `__GFP_RETRY_MAYFAIL` / `__GFP_NOFAIL`), which reserves it may
//!   touch (`__GFP_HIGH`, `__GFP_MEMALLOC`, `__GFP_NOMEMALLOC`) and a few post-allocation
//!   actions (`__GFP_ZERO`, `__GFP_COMP`). These bits are what the `mm_page_alloc` tracepoint
//!   prints as `gfp_flags=...`, so the trace replayer parses them with [`parse`] and can print
//!   them back byte-for-byte with [`Gfp::fmt_trace`].
//! * [`AllocFlags`] is the kernel's internal `alloc_flags` (`ALLOC_*` in `mm/internal.h`): the
//!   *mode* of one attempt inside the allocator: which watermark to test, whether reserves
//!   may be dipped into, whether fragmenting fallbacks are allowed (`ALLOC_NOFRAGMENT`), and so
//!   on. They are derived from the gfp mask, differently on the fast path
//!   ([`fast_path_alloc_flags`]) and the slow path ([`gfp_to_alloc_flags`], plus the reserve
//!   override [`pfmemalloc_flags`]), and then adjusted by the allocator as it retries. Callers
//!   never see them; they are not traced.
//!
//! # Modelled configuration
//!
//! Bit values are those of the kernel that produced the reference traces: Linux 6.18 on
//! x86_64 with `CONFIG_KASAN_HW_TAGS=n` (it only exists on arm64), `CONFIG_LOCKDEP=n` and
//! `CONFIG_SLAB_OBJ_EXT=y` (implied by memcg). Since 6.10 the kernel numbers its gfp bits with
//! an `enum` that skips configured-out flags, so the value of the last bits depends on the
//! configuration; with this one `__GFP_ZEROTAGS` is bit 23 and `__GFP_NO_OBJ_EXT` bit 24
//! (`0x1000000`), and `__GFP_SKIP_ZERO`, `__GFP_SKIP_KASAN`, `__GFP_NOLOCKDEP` are defined as
//! `0`, exactly as the kernel defines them when their option is off (see [`Gfp::NOLOCKDEP`]).
//!
//! # Trace syntax
//!
//! `show_gfp_flags()` walks a fixed table of (mask, name) pairs, composites first; every entry
//! whose whole mask is still contained in the remaining bits is printed and its bits are
//! cleared, names are joined with `|`, left-over bits are appended as `0x<hex>`, and an empty
//! mask prints `none`. The table order changed in 6.15 (see [`FlagOrder`]); the printed *set* of
//! composites is the same, only the order of single-bit names differs.
//!
//! # Policy predicates
//!
//! Predicates a policy keys on the shape of the gfp mask live with their policy (spb's in
//! [`crate::policy::spb_gfp`]).

use core::fmt;

use alloc::string::String;

use crate::layout::ZoneKind;
use crate::migratetype::MigrateType;

/// A set of `__GFP_*` bits with the values of the modelled kernel (6.18, x86_64, no HW-tag
/// KASAN, no lockdep; see the module documentation).
///
/// The associated constants without a prefix are the single bits (`Gfp::IO` is `__GFP_IO`);
/// the composite masks are named after the kernel's `GFP_*` macros without the prefix
/// (`Gfp::KERNEL` is `GFP_KERNEL`), except [`Gfp::GFP_DMA`] and [`Gfp::GFP_DMA32`] which would
/// otherwise clash with the single bits they equal.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Gfp(pub u32);

macro_rules! gfp_consts {
    ($($(#[$doc:meta])* $name:ident = $val:expr;)*) => {
        impl Gfp { $($(#[$doc])* pub const $name: Gfp = Gfp($val);)* }
    };
}

// Single bits (`include/linux/gfp_types.h`).
gfp_consts! {
    /// `__GFP_DMA`: only ZONE_DMA (the low 16 MiB on x86_64).
    DMA = 0x1;
    /// `__GFP_HIGHMEM`: ZONE_HIGHMEM allowed (no such zone on 64-bit; with MOVABLE it
    /// allows ZONE_MOVABLE).
    HIGHMEM = 0x2;
    /// `__GFP_DMA32`: only zones below 4 GiB.
    DMA32 = 0x4;
    /// `__GFP_MOVABLE`: the page can be migrated or reclaimed (MIGRATE_MOVABLE; also a zone
    /// modifier allowing ZONE_MOVABLE together with HIGHMEM).
    MOVABLE = 0x8;
    /// `__GFP_RECLAIMABLE`: slab with a shrinker (MIGRATE_RECLAIMABLE).
    RECLAIMABLE = 0x10;
    /// `__GFP_HIGH`: high priority, may use part of the min reserve (ALLOC_MIN_RESERVE).
    HIGH = 0x20;
    /// `__GFP_IO`: reclaim may start physical I/O.
    IO = 0x40;
    /// `__GFP_FS`: reclaim may call into filesystems.
    FS = 0x80;
    /// `__GFP_ZERO`: return zeroed memory.
    ZERO = 0x100;
    /// `__GFP_DIRECT_RECLAIM`: the caller may sleep in direct reclaim / compaction.
    DIRECT_RECLAIM = 0x400;
    /// `__GFP_KSWAPD_RECLAIM`: wake kswapd when the low watermark is hit (ALLOC_KSWAPD).
    KSWAPD_RECLAIM = 0x800;
    /// `__GFP_WRITE`: the caller will dirty the page (dirty-limit spreading, fast path only).
    WRITE = 0x1000;
    /// `__GFP_NOWARN`: no failure report.
    NOWARN = 0x2000;
    /// `__GFP_RETRY_MAYFAIL`: retry reclaim harder, but may fail; never OOM-kill.
    RETRY_MAYFAIL = 0x4000;
    /// `__GFP_NOFAIL`: must not fail; retries forever.
    NOFAIL = 0x8000;
    /// `__GFP_NORETRY`: one light reclaim/compaction attempt, then fail.
    NORETRY = 0x10000;
    /// `__GFP_MEMALLOC`: may use all reserves (ALLOC_NO_WATERMARKS).
    MEMALLOC = 0x20000;
    /// `__GFP_COMP`: set up a compound page.
    COMP = 0x40000;
    /// `__GFP_NOMEMALLOC`: never use emergency reserves; wins over MEMALLOC.
    NOMEMALLOC = 0x80000;
    /// `__GFP_HARDWALL`: enforce the cpuset memory policy.
    HARDWALL = 0x100000;
    /// `__GFP_THISNODE`: no fallback to other NUMA nodes.
    THISNODE = 0x200000;
    /// `__GFP_ACCOUNT`: charge to the memory cgroup.
    ACCOUNT = 0x400000;
    /// `__GFP_ZEROTAGS`: zero memory tags with the memory (no effect without HW tags).
    ZEROTAGS = 0x800000;
    /// `__GFP_NO_OBJ_EXT`: slab allocation without object extension (bit 24 in the modelled
    /// configuration; printed by name in 6.15+ traces when `CONFIG_SLAB_OBJ_EXT=y`).
    NO_OBJ_EXT = 0x100_0000;
    /// `__GFP_SKIP_ZERO`: **0** in the modelled configuration. It only has a bit with
    /// `CONFIG_KASAN_HW_TAGS` (arm64), where it takes bit 24 and pushes the later bits up.
    /// Like the kernel's macro it is a no-op here: test it with `intersects`, never `contains`
    /// (every mask "contains" the empty mask).
    SKIP_ZERO = 0;
    /// `__GFP_SKIP_KASAN`: **0** in the modelled configuration (see [`Gfp::SKIP_ZERO`]).
    SKIP_KASAN = 0;
    /// `__GFP_NOLOCKDEP`: **0** in the modelled configuration; it only has a bit with
    /// `CONFIG_LOCKDEP` (see [`Gfp::SKIP_ZERO`]).
    NOLOCKDEP = 0;
}

// Composite masks (`include/linux/gfp_types.h`).
gfp_consts! {
    /// `__GFP_RECLAIM` = DIRECT_RECLAIM | KSWAPD_RECLAIM (0xc00).
    RECLAIM = 0x400 | 0x800;
    /// `GFP_KERNEL` = RECLAIM | IO | FS (0xcc0).
    KERNEL = 0x400 | 0x800 | 0x40 | 0x80;
    /// `GFP_KERNEL_ACCOUNT` = GFP_KERNEL | ACCOUNT (0x400cc0).
    KERNEL_ACCOUNT = 0x400 | 0x800 | 0x40 | 0x80 | 0x400000;
    /// `GFP_ATOMIC` = HIGH | KSWAPD_RECLAIM (0x820).
    ATOMIC = 0x20 | 0x800;
    /// `GFP_NOWAIT` = KSWAPD_RECLAIM | NOWARN (0x2800; 0x800 before NOWARN was added).
    NOWAIT = 0x800 | 0x2000;
    /// `GFP_NOIO` = RECLAIM (0xc00).
    NOIO = 0x400 | 0x800;
    /// `GFP_NOFS` = RECLAIM | IO (0xc40).
    NOFS = 0x400 | 0x800 | 0x40;
    /// `GFP_USER` = GFP_KERNEL | HARDWALL (0x100cc0).
    USER = 0x400 | 0x800 | 0x40 | 0x80 | 0x100000;
    /// `GFP_HIGHUSER` = GFP_USER | HIGHMEM (0x100cc2).
    HIGHUSER = 0x400 | 0x800 | 0x40 | 0x80 | 0x100000 | 0x2;
    /// `GFP_HIGHUSER_MOVABLE` = GFP_HIGHUSER | MOVABLE (| SKIP_KASAN, 0 here) (0x100cca).
    HIGHUSER_MOVABLE = 0x400 | 0x800 | 0x40 | 0x80 | 0x100000 | 0x2 | 0x8;
    /// `GFP_TRANSHUGE_LIGHT` = (GFP_HIGHUSER_MOVABLE | COMP | NOMEMALLOC | NOWARN) without
    /// both reclaim bits (0x1c20ca).
    TRANSHUGE_LIGHT = (0x100cca | 0x40000 | 0x80000 | 0x2000) & !0xc00;
    /// `GFP_TRANSHUGE` = GFP_TRANSHUGE_LIGHT | DIRECT_RECLAIM (0x1c24ca).
    TRANSHUGE = ((0x100cca | 0x40000 | 0x80000 | 0x2000) & !0xc00) | 0x400;
    /// `GFP_DMA` (= `__GFP_DMA`); trace output spells a lone DMA bit this way.
    GFP_DMA = 0x1;
    /// `GFP_DMA32` (= `__GFP_DMA32`); trace output spells a lone DMA32 bit this way.
    GFP_DMA32 = 0x4;
    /// `GFP_ZONEMASK`: the four zone modifier bits.
    ZONEMASK = 0x1 | 0x2 | 0x4 | 0x8;
    /// `GFP_MOVABLE_MASK`: the two mobility bits that select the migratetype.
    MOVABLE_MASK = 0x8 | 0x10;
    /// `__GFP_BITS_MASK`: every bit the modelled kernel defines (bits 0..=24).
    BITS_MASK = (1 << 25) - 1;
}

impl Gfp {
    /// The empty mask (printed `none`).
    pub const NONE: Gfp = Gfp(0);

    /// All of `o`'s bits are set.
    #[inline]
    pub const fn contains(self, o: Gfp) -> bool {
        self.0 & o.0 == o.0
    }
    /// At least one of `o`'s bits is set.
    #[inline]
    pub const fn intersects(self, o: Gfp) -> bool {
        self.0 & o.0 != 0
    }
    /// `self | o`.
    #[inline]
    pub const fn with(self, o: Gfp) -> Gfp {
        Gfp(self.0 | o.0)
    }
    /// `self & !o`.
    #[inline]
    pub const fn without(self, o: Gfp) -> Gfp {
        Gfp(self.0 & !o.0)
    }
    /// No bit set.
    #[inline]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// The raw bits.
    #[inline]
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// `gfp_migratetype`: the mobility bits select the migratetype. Both bits set is a caller
    /// bug in the kernel (it would index MIGRATE_HIGHATOMIC); the model treats it as movable.
    pub const fn migratetype(self) -> MigrateType {
        if self.0 & 0x8 != 0 {
            MigrateType::Movable
        } else if self.0 & 0x10 != 0 {
            MigrateType::Reclaimable
        } else {
            MigrateType::Unmovable
        }
    }

    /// `gfp_zone` on x86_64 (no ZONE_HIGHMEM): the highest zone the request may use.
    /// DMA wins, then DMA32; MOVABLE|HIGHMEM allows ZONE_MOVABLE; everything else stops at
    /// ZONE_NORMAL.
    pub const fn highest_zone(self) -> ZoneKind {
        if self.0 & 0x1 != 0 {
            ZoneKind::Dma
        } else if self.0 & 0x4 != 0 {
            ZoneKind::Dma32
        } else if self.0 & 0xa == 0xa {
            ZoneKind::Movable
        } else {
            ZoneKind::Normal
        }
    }

    /// Display the mask the way the kernel's `show_gfp_flags()` prints it, with the flag table
    /// of the given kernel generation. `Display for Gfp` uses [`FlagOrder::Modern`].
    #[inline]
    pub const fn fmt_trace(self, order: FlagOrder) -> TraceGfp {
        TraceGfp { gfp: self, order }
    }

    /// Write the trace spelling of the mask into any `fmt::Write` (no allocation).
    pub fn write_trace<W: fmt::Write + ?Sized>(self, order: FlagOrder, w: &mut W) -> fmt::Result {
        if self.0 == 0 {
            return w.write_str("none");
        }
        let mut rest = self.0;
        let mut first = true;
        for &(mask, name) in order.table() {
            if rest == 0 {
                break;
            }
            if rest & mask.0 != mask.0 {
                continue;
            }
            rest &= !mask.0;
            if !first {
                w.write_char('|')?;
            }
            first = false;
            w.write_str(name)?;
        }
        if rest != 0 {
            if !first {
                w.write_char('|')?;
            }
            write!(w, "{:#x}", rest)?;
        }
        Ok(())
    }
}

impl core::ops::BitOr for Gfp {
    type Output = Gfp;
    fn bitor(self, o: Gfp) -> Gfp {
        Gfp(self.0 | o.0)
    }
}

impl core::ops::BitOrAssign for Gfp {
    fn bitor_assign(&mut self, o: Gfp) {
        self.0 |= o.0;
    }
}

impl core::ops::BitAnd for Gfp {
    type Output = Gfp;
    fn bitand(self, o: Gfp) -> Gfp {
        Gfp(self.0 & o.0)
    }
}

impl fmt::Display for Gfp {
    /// The 6.15+ trace spelling, e.g. `GFP_HIGHUSER_MOVABLE|__GFP_ZERO|__GFP_COMP`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_trace(FlagOrder::Modern, f)
    }
}

impl fmt::Debug for Gfp {
    /// `Gfp(0xcc0 GFP_KERNEL)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Gfp({:#x} ", self.0)?;
        self.write_trace(FlagOrder::Modern, f)?;
        f.write_str(")")
    }
}

impl fmt::LowerHex for Gfp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::LowerHex::fmt(&self.0, f)
    }
}

impl core::str::FromStr for Gfp {
    type Err = GfpParseError;
    fn from_str(s: &str) -> Result<Gfp, GfpParseError> {
        parse(s)
    }
}

// ---------------------------------------------------------------------------------------------
// Printing
// ---------------------------------------------------------------------------------------------

/// Which kernel generation's `show_gfp_flags()` table to print with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum FlagOrder {
    /// 6.15 and later (the table was regenerated from the bit enum in March 2025): the
    /// composites, then every single bit in bit order. This is what the reference 6.18 traces
    /// use.
    #[default]
    Modern,
    /// Before 6.15: the same composites, then a hand-ordered single-bit list in which
    /// `__GFP_HIGHMEM` and `GFP_DMA32` follow `GFP_DMA`, and `__GFP_RECLAIM`, the reclaim bits
    /// and the mobility bits come late. It has no `__GFP_NO_OBJ_EXT` entry (that bit prints as
    /// hex).
    Legacy,
}

/// One entry of a `show_gfp_flags()` table: the mask and its printed name.
pub type FlagName = (Gfp, &'static str);

/// Composites shared by both tables, in table order.
macro_rules! composite_entries {
    () => {
        [
            (Gfp::TRANSHUGE, "GFP_TRANSHUGE"),
            (Gfp::TRANSHUGE_LIGHT, "GFP_TRANSHUGE_LIGHT"),
            (Gfp::HIGHUSER_MOVABLE, "GFP_HIGHUSER_MOVABLE"),
            (Gfp::HIGHUSER, "GFP_HIGHUSER"),
            (Gfp::USER, "GFP_USER"),
            (Gfp::KERNEL_ACCOUNT, "GFP_KERNEL_ACCOUNT"),
            (Gfp::KERNEL, "GFP_KERNEL"),
            (Gfp::NOFS, "GFP_NOFS"),
            (Gfp::ATOMIC, "GFP_ATOMIC"),
            (Gfp::NOIO, "GFP_NOIO"),
            (Gfp::NOWAIT, "GFP_NOWAIT"),
        ]
    };
}

const fn concat_tables<const A: usize, const B: usize, const N: usize>(
    a: [FlagName; A],
    b: [FlagName; B],
) -> [FlagName; N] {
    assert!(A + B == N);
    let mut out: [FlagName; N] = [(Gfp::NONE, ""); N];
    let mut i = 0;
    while i < A {
        out[i] = a[i];
        i += 1;
    }
    let mut j = 0;
    while j < B {
        out[A + j] = b[j];
        j += 1;
    }
    out
}

/// The 6.15+ table for the modelled configuration.
static MODERN_TABLE: [FlagName; 11 + 27] = concat_tables(
    composite_entries!(),
    [
        (Gfp::GFP_DMA, "GFP_DMA"),
        (Gfp::GFP_DMA32, "GFP_DMA32"),
        (Gfp::RECLAIM, "__GFP_RECLAIM"),
        (Gfp::DMA, "__GFP_DMA"),
        (Gfp::HIGHMEM, "__GFP_HIGHMEM"),
        (Gfp::DMA32, "__GFP_DMA32"),
        (Gfp::MOVABLE, "__GFP_MOVABLE"),
        (Gfp::RECLAIMABLE, "__GFP_RECLAIMABLE"),
        (Gfp::HIGH, "__GFP_HIGH"),
        (Gfp::IO, "__GFP_IO"),
        (Gfp::FS, "__GFP_FS"),
        (Gfp::ZERO, "__GFP_ZERO"),
        (Gfp::DIRECT_RECLAIM, "__GFP_DIRECT_RECLAIM"),
        (Gfp::KSWAPD_RECLAIM, "__GFP_KSWAPD_RECLAIM"),
        (Gfp::WRITE, "__GFP_WRITE"),
        (Gfp::NOWARN, "__GFP_NOWARN"),
        (Gfp::RETRY_MAYFAIL, "__GFP_RETRY_MAYFAIL"),
        (Gfp::NOFAIL, "__GFP_NOFAIL"),
        (Gfp::NORETRY, "__GFP_NORETRY"),
        (Gfp::MEMALLOC, "__GFP_MEMALLOC"),
        (Gfp::COMP, "__GFP_COMP"),
        (Gfp::NOMEMALLOC, "__GFP_NOMEMALLOC"),
        (Gfp::HARDWALL, "__GFP_HARDWALL"),
        (Gfp::THISNODE, "__GFP_THISNODE"),
        (Gfp::ACCOUNT, "__GFP_ACCOUNT"),
        (Gfp::ZEROTAGS, "__GFP_ZEROTAGS"),
        (Gfp::NO_OBJ_EXT, "__GFP_NO_OBJ_EXT"),
    ],
);

/// The pre-6.15 table for the modelled configuration (since 6.3, when `__GFP_ATOMIC` went).
static LEGACY_TABLE: [FlagName; 11 + 24] = concat_tables(
    composite_entries!(),
    [
        (Gfp::GFP_DMA, "GFP_DMA"),
        (Gfp::HIGHMEM, "__GFP_HIGHMEM"),
        (Gfp::GFP_DMA32, "GFP_DMA32"),
        (Gfp::HIGH, "__GFP_HIGH"),
        (Gfp::IO, "__GFP_IO"),
        (Gfp::FS, "__GFP_FS"),
        (Gfp::NOWARN, "__GFP_NOWARN"),
        (Gfp::RETRY_MAYFAIL, "__GFP_RETRY_MAYFAIL"),
        (Gfp::NOFAIL, "__GFP_NOFAIL"),
        (Gfp::NORETRY, "__GFP_NORETRY"),
        (Gfp::COMP, "__GFP_COMP"),
        (Gfp::ZERO, "__GFP_ZERO"),
        (Gfp::NOMEMALLOC, "__GFP_NOMEMALLOC"),
        (Gfp::MEMALLOC, "__GFP_MEMALLOC"),
        (Gfp::HARDWALL, "__GFP_HARDWALL"),
        (Gfp::THISNODE, "__GFP_THISNODE"),
        (Gfp::RECLAIMABLE, "__GFP_RECLAIMABLE"),
        (Gfp::MOVABLE, "__GFP_MOVABLE"),
        (Gfp::ACCOUNT, "__GFP_ACCOUNT"),
        (Gfp::WRITE, "__GFP_WRITE"),
        (Gfp::RECLAIM, "__GFP_RECLAIM"),
        (Gfp::DIRECT_RECLAIM, "__GFP_DIRECT_RECLAIM"),
        (Gfp::KSWAPD_RECLAIM, "__GFP_KSWAPD_RECLAIM"),
        (Gfp::ZEROTAGS, "__GFP_ZEROTAGS"),
    ],
);

impl FlagOrder {
    /// The (mask, name) table `show_gfp_flags()` walks, in order.
    pub fn table(self) -> &'static [FlagName] {
        match self {
            FlagOrder::Modern => &MODERN_TABLE,
            FlagOrder::Legacy => &LEGACY_TABLE,
        }
    }
}

/// A [`Gfp`] bound to a table order, for `Display` (from [`Gfp::fmt_trace`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceGfp {
    /// The mask to print.
    pub gfp: Gfp,
    /// The table to print it with.
    pub order: FlagOrder,
}

impl fmt::Display for TraceGfp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.gfp.write_trace(self.order, f)
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

/// What was wrong with a token of a gfp string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GfpParseErrorKind {
    /// Empty input, or an empty token (`||`, a leading or trailing `|`).
    Empty,
    /// Not a flag name either table knows (and not `0x...`).
    UnknownName,
    /// A real kernel flag that is compiled out (value 0) in the modelled configuration:
    /// `__GFP_SKIP_ZERO`, `__GFP_SKIP_KASAN`, `__GFP_NOLOCKDEP`. The trace comes from a kernel
    /// with another bit layout, so no bit can be assigned.
    NotInConfig,
    /// `0x` without hex digits, a non-hex digit, or a value over 32 bits.
    BadHex,
    /// `none` combined with other tokens (the kernel prints `none` only on its own).
    MisplacedNone,
}

/// A gfp string that [`parse`] rejected: which token, where, and why.
///
/// Only built on the error path, so owning the token costs nothing on success.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GfpParseError {
    /// Why the token was rejected.
    pub kind: GfpParseErrorKind,
    /// Byte offset of the token in the input.
    pub position: usize,
    /// The offending token (empty for [`GfpParseErrorKind::Empty`]).
    pub token: String,
}

impl GfpParseError {
    #[cold]
    #[inline(never)]
    fn new(kind: GfpParseErrorKind, position: usize, token: &str) -> GfpParseError {
        GfpParseError {
            kind,
            position,
            token: String::from(token),
        }
    }
}

impl fmt::Display for GfpParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            GfpParseErrorKind::Empty => "empty gfp flag token",
            GfpParseErrorKind::UnknownName => "unknown gfp flag",
            GfpParseErrorKind::NotInConfig => {
                "gfp flag not present in the modelled kernel configuration"
            }
            GfpParseErrorKind::BadHex => "malformed hex gfp value",
            GfpParseErrorKind::MisplacedNone => "`none` combined with other gfp flags",
        };
        write!(f, "{} `{}` at byte {}", what, self.token, self.position)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for GfpParseError {}

/// Parse the kernel's trace spelling of a gfp mask: `none`, or `|`-separated tokens, each a
/// `GFP_*` composite, a `__GFP_*` bit, or a hex number `0x...` (the printer's left-over bits).
/// Tokens may come in any order and repeat; their bits are OR-ed. Names of both table
/// generations are accepted (`GFP_DMA` and `__GFP_DMA`, `__GFP_RECLAIM`, ...).
///
/// Strict: no whitespace, no empty tokens. Allocation-free on success; never panics.
///
/// ```
/// use spb_alloc::gfp::{parse, Gfp};
/// assert_eq!(parse("GFP_KERNEL|__GFP_COMP"), Ok(Gfp::KERNEL | Gfp::COMP));
/// assert_eq!(parse("none"), Ok(Gfp::NONE));
/// assert_eq!(parse("__GFP_IO|0x1000000"), Ok(Gfp::IO | Gfp::NO_OBJ_EXT));
/// assert_eq!(parse("GFP_KERNEL|__GFP_BOGUS").unwrap_err().token, "__GFP_BOGUS");
/// ```
pub fn parse(s: &str) -> Result<Gfp, GfpParseError> {
    if s.is_empty() {
        return Err(GfpParseError::new(GfpParseErrorKind::Empty, 0, s));
    }
    if s == "none" {
        return Ok(Gfp::NONE);
    }
    let mut bits = 0u32;
    let mut pos = 0usize;
    for tok in s.split('|') {
        match token_bits(tok) {
            Ok(b) => bits |= b,
            Err(kind) => return Err(GfpParseError::new(kind, pos, tok)),
        }
        pos += tok.len() + 1;
    }
    Ok(Gfp(bits))
}

/// The bits one token stands for.
#[inline]
fn token_bits(tok: &str) -> Result<u32, GfpParseErrorKind> {
    if let Some(rest) = tok.strip_prefix("__GFP_") {
        single_bit(rest)
    } else if let Some(rest) = tok.strip_prefix("GFP_") {
        composite(rest).ok_or(GfpParseErrorKind::UnknownName)
    } else if let Some(hex) = tok.strip_prefix("0x").or_else(|| tok.strip_prefix("0X")) {
        parse_hex(hex)
    } else if tok.is_empty() {
        Err(GfpParseErrorKind::Empty)
    } else if tok == "none" {
        Err(GfpParseErrorKind::MisplacedNone)
    } else {
        Err(GfpParseErrorKind::UnknownName)
    }
}

/// `__GFP_<name>` without the prefix.
#[inline]
fn single_bit(name: &str) -> Result<u32, GfpParseErrorKind> {
    Ok(match name {
        "DMA" => Gfp::DMA.0,
        "HIGHMEM" => Gfp::HIGHMEM.0,
        "DMA32" => Gfp::DMA32.0,
        "MOVABLE" => Gfp::MOVABLE.0,
        "RECLAIMABLE" => Gfp::RECLAIMABLE.0,
        "HIGH" => Gfp::HIGH.0,
        "IO" => Gfp::IO.0,
        "FS" => Gfp::FS.0,
        "ZERO" => Gfp::ZERO.0,
        "DIRECT_RECLAIM" => Gfp::DIRECT_RECLAIM.0,
        "KSWAPD_RECLAIM" => Gfp::KSWAPD_RECLAIM.0,
        "WRITE" => Gfp::WRITE.0,
        "NOWARN" => Gfp::NOWARN.0,
        "RETRY_MAYFAIL" => Gfp::RETRY_MAYFAIL.0,
        "NOFAIL" => Gfp::NOFAIL.0,
        "NORETRY" => Gfp::NORETRY.0,
        "MEMALLOC" => Gfp::MEMALLOC.0,
        "COMP" => Gfp::COMP.0,
        "NOMEMALLOC" => Gfp::NOMEMALLOC.0,
        "HARDWALL" => Gfp::HARDWALL.0,
        "THISNODE" => Gfp::THISNODE.0,
        "ACCOUNT" => Gfp::ACCOUNT.0,
        "ZEROTAGS" => Gfp::ZEROTAGS.0,
        "NO_OBJ_EXT" => Gfp::NO_OBJ_EXT.0,
        "RECLAIM" => Gfp::RECLAIM.0,
        "SKIP_ZERO" | "SKIP_KASAN" | "NOLOCKDEP" => return Err(GfpParseErrorKind::NotInConfig),
        _ => return Err(GfpParseErrorKind::UnknownName),
    })
}

/// `GFP_<name>` without the prefix.
#[inline]
fn composite(name: &str) -> Option<u32> {
    Some(match name {
        "HIGHUSER_MOVABLE" => Gfp::HIGHUSER_MOVABLE.0,
        "KERNEL" => Gfp::KERNEL.0,
        "NOWAIT" => Gfp::NOWAIT.0,
        "HIGHUSER" => Gfp::HIGHUSER.0,
        "NOFS" => Gfp::NOFS.0,
        "KERNEL_ACCOUNT" => Gfp::KERNEL_ACCOUNT.0,
        "TRANSHUGE" => Gfp::TRANSHUGE.0,
        "TRANSHUGE_LIGHT" => Gfp::TRANSHUGE_LIGHT.0,
        "ATOMIC" => Gfp::ATOMIC.0,
        "USER" => Gfp::USER.0,
        "NOIO" => Gfp::NOIO.0,
        "DMA" => Gfp::GFP_DMA.0,
        "DMA32" => Gfp::GFP_DMA32.0,
        _ => return None,
    })
}

/// Hex digits after `0x`, at most 32 bits (leading zeros allowed).
#[inline]
fn parse_hex(digits: &str) -> Result<u32, GfpParseErrorKind> {
    if digits.is_empty() {
        return Err(GfpParseErrorKind::BadHex);
    }
    let mut v: u32 = 0;
    for &c in digits.as_bytes() {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => return Err(GfpParseErrorKind::BadHex),
        };
        if v > (u32::MAX >> 4) {
            return Err(GfpParseErrorKind::BadHex);
        }
        v = (v << 4) | d as u32;
    }
    Ok(v)
}

// ---------------------------------------------------------------------------------------------
// ALLOC_* flags
// ---------------------------------------------------------------------------------------------

/// ALLOC_* flags (`mm/internal.h` values, plus the spb series' two).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AllocFlags(pub u32);

impl AllocFlags {
    /// Test the min watermark (index 0; the "flag" is the absence of the other two).
    pub const WMARK_MIN: AllocFlags = AllocFlags(0);
    /// Test the low watermark (fast path).
    pub const WMARK_LOW: AllocFlags = AllocFlags(1);
    /// Test the high watermark.
    pub const WMARK_HIGH: AllocFlags = AllocFlags(2);
    /// The two bits holding the watermark index.
    pub const WMARK_MASK: AllocFlags = AllocFlags(3);
    /// Skip watermark checks entirely (`__GFP_MEMALLOC`, PF_MEMALLOC).
    pub const NO_WATERMARKS: AllocFlags = AllocFlags(0x4);
    /// OOM victim: extra reserve access.
    pub const OOM: AllocFlags = AllocFlags(0x8);
    /// The caller cannot direct-reclaim (and did not say NOMEMALLOC): dip further into min.
    pub const NON_BLOCK: AllocFlags = AllocFlags(0x10);
    /// `__GFP_HIGH`: may use half of the min reserve.
    pub const MIN_RESERVE: AllocFlags = AllocFlags(0x20);
    /// Obey cpuset placement.
    pub const CPUSET: AllocFlags = AllocFlags(0x40);
    /// May use CMA pageblocks (movable requests).
    pub const CMA: AllocFlags = AllocFlags(0x80);
    /// Avoid fallbacks that would mix migratetypes inside a pageblock.
    pub const NOFRAGMENT: AllocFlags = AllocFlags(0x100);
    /// May use, and create, the MIGRATE_HIGHATOMIC reserve.
    pub const HIGHATOMIC: AllocFlags = AllocFlags(0x200);
    /// Only trylock (alloc_pages_nolock).
    pub const TRYLOCK: AllocFlags = AllocFlags(0x400);
    /// May wake kswapd (`__GFP_KSWAPD_RECLAIM`).
    pub const KSWAPD: AllocFlags = AllocFlags(0x800);
    /// spb (18/35): NOFRAGMENT, but allow relabelling movable blocks inside tainted SPBs.
    pub const NOFRAG_TAINTED_OK: AllocFlags = AllocFlags(0x1000);
    /// spb (26): the caller can fall back to a lower order or another path.
    pub const HIGHORDER_OPTIONAL: AllocFlags = AllocFlags(0x2000);
    /// Flags that allow allocations below the min watermark.
    pub const RESERVES: AllocFlags = AllocFlags(0x10 | 0x20 | 0x200 | 0x8);

    #[inline]
    pub const fn contains(self, o: AllocFlags) -> bool {
        self.0 & o.0 == o.0
    }
    #[inline]
    pub const fn intersects(self, o: AllocFlags) -> bool {
        self.0 & o.0 != 0
    }
    #[inline]
    pub const fn with(self, o: AllocFlags) -> AllocFlags {
        AllocFlags(self.0 | o.0)
    }
    #[inline]
    pub const fn without(self, o: AllocFlags) -> AllocFlags {
        AllocFlags(self.0 & !o.0)
    }
    /// The watermark index (0 min, 1 low, 2 high).
    #[inline]
    pub const fn wmark(self) -> usize {
        (self.0 & 3) as usize
    }

    /// Names of the flag bits (the watermark index is printed separately).
    const NAMES: [(AllocFlags, &'static str); 12] = [
        (AllocFlags::NO_WATERMARKS, "NO_WATERMARKS"),
        (AllocFlags::OOM, "OOM"),
        (AllocFlags::NON_BLOCK, "NON_BLOCK"),
        (AllocFlags::MIN_RESERVE, "MIN_RESERVE"),
        (AllocFlags::CPUSET, "CPUSET"),
        (AllocFlags::CMA, "CMA"),
        (AllocFlags::NOFRAGMENT, "NOFRAGMENT"),
        (AllocFlags::HIGHATOMIC, "HIGHATOMIC"),
        (AllocFlags::TRYLOCK, "TRYLOCK"),
        (AllocFlags::KSWAPD, "KSWAPD"),
        (AllocFlags::NOFRAG_TAINTED_OK, "NOFRAG_TAINTED_OK"),
        (AllocFlags::HIGHORDER_OPTIONAL, "HIGHORDER_OPTIONAL"),
    ];
}

impl core::ops::BitOr for AllocFlags {
    type Output = AllocFlags;
    fn bitor(self, o: AllocFlags) -> AllocFlags {
        AllocFlags(self.0 | o.0)
    }
}

impl fmt::Display for AllocFlags {
    /// `WMARK_LOW|CMA|KSWAPD`; an unknown bit prints as hex.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.wmark() {
            0 => "WMARK_MIN",
            1 => "WMARK_LOW",
            2 => "WMARK_HIGH",
            _ => "WMARK_3",
        })?;
        let mut rest = self.0 & !AllocFlags::WMARK_MASK.0;
        for (flag, name) in AllocFlags::NAMES {
            if rest & flag.0 != 0 {
                rest &= !flag.0;
                write!(f, "|{}", name)?;
            }
        }
        if rest != 0 {
            write!(f, "|{:#x}", rest)?;
        }
        Ok(())
    }
}

impl fmt::Debug for AllocFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AllocFlags({:#x} {})", self.0, self)
    }
}

/// `PAGE_ALLOC_COSTLY_ORDER`: orders above this are "costly" (reclaim gives up sooner,
/// no OOM kill, compaction is used). Fixed at 3 in the kernel, independent of the geometry.
pub const PAGE_ALLOC_COSTLY_ORDER: u8 = 3;

/// `order > PAGE_ALLOC_COSTLY_ORDER`.
#[inline]
pub const fn is_costly(order: u8) -> bool {
    order > PAGE_ALLOC_COSTLY_ORDER
}

/// The caller may sleep in direct reclaim and compaction (`gfpflags_allow_blocking`).
#[inline]
pub const fn can_direct_reclaim(gfp: Gfp) -> bool {
    gfp.intersects(Gfp::DIRECT_RECLAIM)
}

/// alloc_flags of the first, fast-path attempt (`prepare_alloc_pages` +
/// `alloc_flags_nofragment`): the low watermark, `ALLOC_CMA` for movable requests and
/// `ALLOC_KSWAPD` for `__GFP_KSWAPD_RECLAIM`.
///
/// Not included: `ALLOC_NOFRAGMENT`, which depends on the preferred zone (set when it is
/// ZONE_NORMAL and a DMA32 zone exists, or always with `vm.defrag_mode`) and is the caller's
/// zone logic; and `ALLOC_CPUSET`, as the model has no cpusets.
#[inline]
pub const fn fast_path_alloc_flags(gfp: Gfp) -> AllocFlags {
    let mut f = AllocFlags::WMARK_LOW;
    if gfp.intersects(Gfp::KSWAPD_RECLAIM) {
        f = f.with(AllocFlags::KSWAPD);
    }
    if matches!(gfp.migratetype(), MigrateType::Movable) {
        f = f.with(AllocFlags::CMA);
    }
    f
}

/// `gfp_to_alloc_flags` as mainline 6.18 computes it for the slow path, for a task that is
/// neither real-time nor an OOM victim (those only add reserve access the model never grants).
///
/// * start from `WMARK_MIN | CPUSET`; `__GFP_HIGH` gives `MIN_RESERVE`,
///   `__GFP_KSWAPD_RECLAIM` gives `KSWAPD`;
/// * a caller that cannot direct-reclaim gets `NON_BLOCK` unless it said `__GFP_NOMEMALLOC`,
///   and (same condition, since 6.17's fix) `HIGHATOMIC` when it is `__GFP_HIGH` and
///   `order > 0`; a non-blocking `__GFP_HIGH` caller also drops `CPUSET`;
/// * movable requests get `CMA`; `vm.defrag_mode` adds `NOFRAGMENT`.
///
/// The spb series' `ALLOC_HIGHORDER_OPTIONAL` is *not* set here: the policy layer adds it from
/// [`crate::policy::spb_gfp::has_cheap_fallback`]. The reserve override ([`pfmemalloc_flags`]) is separate too.
pub const fn gfp_to_alloc_flags(gfp: Gfp, order: u8, defrag_mode: bool) -> AllocFlags {
    let mut f = AllocFlags::WMARK_MIN.with(AllocFlags::CPUSET);
    if gfp.intersects(Gfp::HIGH) {
        f = f.with(AllocFlags::MIN_RESERVE);
    }
    if gfp.intersects(Gfp::KSWAPD_RECLAIM) {
        f = f.with(AllocFlags::KSWAPD);
    }
    if !gfp.intersects(Gfp::DIRECT_RECLAIM) {
        if !gfp.intersects(Gfp::NOMEMALLOC) {
            f = f.with(AllocFlags::NON_BLOCK);
            if order > 0 && f.contains(AllocFlags::MIN_RESERVE) {
                f = f.with(AllocFlags::HIGHATOMIC);
            }
        }
        if f.contains(AllocFlags::MIN_RESERVE) {
            f = f.without(AllocFlags::CPUSET);
        }
    }
    if matches!(gfp.migratetype(), MigrateType::Movable) {
        f = f.with(AllocFlags::CMA);
    }
    if defrag_mode {
        f = f.with(AllocFlags::NOFRAGMENT);
    }
    f
}

/// `__gfp_pfmemalloc_flags` for the gfp mask alone: `__GFP_NOMEMALLOC` forbids any reserve
/// override (`None`), `__GFP_MEMALLOC` grants `NO_WATERMARKS`. The task-context sources
/// (PF_MEMALLOC reclaimers, OOM victims) are not modelled.
///
/// When it returns `Some(r)`, the slow path replaces its alloc_flags by `r` plus `CMA` for
/// movable requests, keeping only the `KSWAPD` bit of the old flags.
#[inline]
pub const fn pfmemalloc_flags(gfp: Gfp) -> Option<AllocFlags> {
    if gfp.intersects(Gfp::NOMEMALLOC) {
        None
    } else if gfp.intersects(Gfp::MEMALLOC) {
        Some(AllocFlags::NO_WATERMARKS)
    } else {
        None
    }
}

// ---------------------------------------------------------------------------------------------
// spb predicates
// ---------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::spb_gfp::{
        has_cheap_fallback, is_best_effort_high_order, CheapFallbackRule,
    };
    use alloc::format;
    use alloc::string::ToString;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    /// Every distinct `gfp_flags=` value in the build, pagecache and anon-thp captures.
    const TRACE_STRINGS: &str = include_str!("../tests/data/gfp_strings.txt");

    fn trace_strings() -> impl Iterator<Item = &'static str> {
        TRACE_STRINGS
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
    }

    fn p(s: &str) -> Gfp {
        parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn err(s: &str) -> GfpParseError {
        parse(s).expect_err(s)
    }

    // ---- constants --------------------------------------------------------------------------

    #[test]
    fn composite_values_match_baseline_table() {
        // linux-baseline.md §7.8.
        let table: [(Gfp, u32); 11] = [
            (Gfp::KERNEL, 0xcc0),
            (Gfp::KERNEL_ACCOUNT, 0x400cc0),
            (Gfp::NOFS, 0xc40),
            (Gfp::NOIO, 0xc00),
            (Gfp::ATOMIC, 0x820),
            (Gfp::NOWAIT, 0x2800),
            (Gfp::USER, 0x100cc0),
            (Gfp::HIGHUSER, 0x100cc2),
            (Gfp::HIGHUSER_MOVABLE, 0x100cca),
            (Gfp::TRANSHUGE_LIGHT, 0x1c20ca),
            (Gfp::TRANSHUGE, 0x1c24ca),
        ];
        for (g, v) in table {
            assert_eq!(g.0, v, "{g:?}");
        }
    }

    #[test]
    fn composites_are_built_from_their_parts() {
        assert_eq!(Gfp::RECLAIM, Gfp::DIRECT_RECLAIM | Gfp::KSWAPD_RECLAIM);
        assert_eq!(Gfp::KERNEL, Gfp::RECLAIM | Gfp::IO | Gfp::FS);
        assert_eq!(Gfp::KERNEL_ACCOUNT, Gfp::KERNEL | Gfp::ACCOUNT);
        assert_eq!(Gfp::ATOMIC, Gfp::HIGH | Gfp::KSWAPD_RECLAIM);
        assert_eq!(Gfp::NOWAIT, Gfp::KSWAPD_RECLAIM | Gfp::NOWARN);
        assert_eq!(Gfp::NOIO, Gfp::RECLAIM);
        assert_eq!(Gfp::NOFS, Gfp::RECLAIM | Gfp::IO);
        assert_eq!(Gfp::USER, Gfp::KERNEL | Gfp::HARDWALL);
        assert_eq!(Gfp::HIGHUSER, Gfp::USER | Gfp::HIGHMEM);
        assert_eq!(
            Gfp::HIGHUSER_MOVABLE,
            Gfp::HIGHUSER | Gfp::MOVABLE | Gfp::SKIP_KASAN
        );
        assert_eq!(
            Gfp::TRANSHUGE_LIGHT,
            (Gfp::HIGHUSER_MOVABLE | Gfp::COMP | Gfp::NOMEMALLOC | Gfp::NOWARN)
                .without(Gfp::RECLAIM)
        );
        assert_eq!(Gfp::TRANSHUGE, Gfp::TRANSHUGE_LIGHT | Gfp::DIRECT_RECLAIM);
        assert_eq!(Gfp::GFP_DMA, Gfp::DMA);
        assert_eq!(Gfp::GFP_DMA32, Gfp::DMA32);
        assert_eq!(Gfp::ZONEMASK, Gfp(0xf));
        assert_eq!(Gfp::MOVABLE_MASK, Gfp::MOVABLE | Gfp::RECLAIMABLE);
    }

    #[test]
    fn single_bits_are_distinct_powers_of_two_in_bit_order() {
        // The single-bit part of the 6.15+ table is in bit order: bits 0..=8, 10..=24.
        let singles: Vec<Gfp> = MODERN_TABLE
            .iter()
            .filter(|(g, _)| g.0.count_ones() == 1)
            .map(|e| e.0)
            .collect();
        // GFP_DMA / GFP_DMA32 composites come first and are single bits too.
        assert_eq!(&singles[..2], &[Gfp::GFP_DMA, Gfp::GFP_DMA32]);
        let bits: Vec<u32> = singles[2..].iter().map(|g| g.0.trailing_zeros()).collect();
        let want: Vec<u32> = (0..=24).filter(|&b| b != 9).collect();
        assert_eq!(bits, want);
        let all = singles[2..].iter().fold(0, |a, g| a | g.0);
        assert_eq!(all, Gfp::BITS_MASK.0 & !0x200);
        assert_eq!(Gfp::NO_OBJ_EXT.0, 1 << 24);
        assert_eq!(Gfp::ZEROTAGS.0, 1 << 23);
    }

    #[test]
    fn configured_out_flags_are_zero_like_the_kernel() {
        for g in [Gfp::SKIP_ZERO, Gfp::SKIP_KASAN, Gfp::NOLOCKDEP] {
            assert!(g.is_empty());
            assert!(!Gfp::KERNEL.intersects(g));
        }
        assert_eq!(
            err("GFP_KERNEL|__GFP_NOLOCKDEP").kind,
            GfpParseErrorKind::NotInConfig
        );
        assert_eq!(err("__GFP_SKIP_ZERO").kind, GfpParseErrorKind::NotInConfig);
        assert_eq!(err("__GFP_SKIP_KASAN").token, "__GFP_SKIP_KASAN");
    }

    #[test]
    fn contract_helpers() {
        let g = Gfp::KERNEL;
        assert!(g.contains(Gfp::IO | Gfp::FS));
        assert!(!g.contains(Gfp::IO | Gfp::HIGH));
        assert!(g.intersects(Gfp::IO | Gfp::HIGH));
        assert!(!g.intersects(Gfp::HIGH));
        assert_eq!(g.with(Gfp::COMP), Gfp(0x40cc0));
        assert_eq!(g.without(Gfp::FS), Gfp::NOFS);
        assert_eq!(g | Gfp::ACCOUNT, Gfp::KERNEL_ACCOUNT);
        let mut h = Gfp::NONE;
        h |= Gfp::ATOMIC;
        assert_eq!(h & Gfp::HIGH, Gfp::HIGH);
        assert_eq!(h.bits(), 0x820);
        assert_eq!(format!("{:x}", Gfp::KERNEL), "cc0");
    }

    #[test]
    fn migratetype_from_mobility_bits() {
        assert_eq!(Gfp::KERNEL.migratetype(), MigrateType::Unmovable);
        assert_eq!(Gfp::HIGHUSER_MOVABLE.migratetype(), MigrateType::Movable);
        assert_eq!(
            (Gfp::KERNEL | Gfp::RECLAIMABLE).migratetype(),
            MigrateType::Reclaimable
        );
        assert_eq!(Gfp::TRANSHUGE.migratetype(), MigrateType::Movable);
        assert_eq!(Gfp::NONE.migratetype(), MigrateType::Unmovable);
    }

    #[test]
    fn highest_zone_like_gfp_zone() {
        assert_eq!(Gfp::KERNEL.highest_zone(), ZoneKind::Normal);
        assert_eq!(Gfp::HIGHUSER.highest_zone(), ZoneKind::Normal);
        assert_eq!(Gfp::HIGHUSER_MOVABLE.highest_zone(), ZoneKind::Movable);
        assert_eq!(
            (Gfp::KERNEL | Gfp::MOVABLE).highest_zone(),
            ZoneKind::Normal
        );
        assert_eq!((Gfp::KERNEL | Gfp::GFP_DMA).highest_zone(), ZoneKind::Dma);
        assert_eq!(
            (Gfp::KERNEL | Gfp::GFP_DMA32).highest_zone(),
            ZoneKind::Dma32
        );
        assert_eq!((Gfp::DMA32 | Gfp::MOVABLE).highest_zone(), ZoneKind::Dma32);
    }

    // ---- printing ---------------------------------------------------------------------------

    fn modern(g: Gfp) -> String {
        g.fmt_trace(FlagOrder::Modern).to_string()
    }
    fn legacy(g: Gfp) -> String {
        g.fmt_trace(FlagOrder::Legacy).to_string()
    }

    #[test]
    fn prints_like_6_18_traces() {
        let cases: [(Gfp, &str); 9] = [
            (Gfp::NONE, "none"),
            (
                Gfp::HIGHUSER_MOVABLE | Gfp::ZERO | Gfp::COMP,
                "GFP_HIGHUSER_MOVABLE|__GFP_ZERO|__GFP_COMP",
            ),
            // Bit order: ZERO (0x100) before COMP (0x40000).
            (
                Gfp::KERNEL | Gfp::COMP | Gfp::ZERO,
                "GFP_KERNEL|__GFP_ZERO|__GFP_COMP",
            ),
            // Slab's opportunistic high-order try for a GFP_KERNEL cache: no reclaim bits.
            (
                (Gfp::KERNEL | Gfp::NOWARN | Gfp::NORETRY | Gfp::COMP | Gfp::NOMEMALLOC)
                    .without(Gfp::RECLAIM),
                "__GFP_IO|__GFP_FS|__GFP_NOWARN|__GFP_NORETRY|__GFP_COMP|__GFP_NOMEMALLOC",
            ),
            (
                Gfp::NOWAIT | Gfp::COMP | Gfp::NOMEMALLOC,
                "GFP_NOWAIT|__GFP_COMP|__GFP_NOMEMALLOC",
            ),
            (Gfp::TRANSHUGE, "GFP_TRANSHUGE"),
            (
                Gfp::NOFS | Gfp::NOFAIL | Gfp::ACCOUNT,
                "GFP_NOFS|__GFP_NOFAIL|__GFP_ACCOUNT",
            ),
            // GFP_HIGHUSER comes before GFP_KERNEL_ACCOUNT in the table.
            (
                Gfp::KERNEL_ACCOUNT | Gfp::HIGHMEM | Gfp::HARDWALL,
                "GFP_HIGHUSER|__GFP_ACCOUNT",
            ),
            // GFP_ATOMIC eats KSWAPD_RECLAIM first, so GFP_NOWAIT cannot match any more.
            (Gfp::ATOMIC | Gfp::NOWARN, "GFP_ATOMIC|__GFP_NOWARN"),
        ];
        for (g, s) in cases {
            assert_eq!(modern(g), s);
            assert_eq!(g.to_string(), s);
        }
    }

    #[test]
    fn prints_leftovers_and_special_names() {
        assert_eq!(modern(Gfp(0x200)), "0x200");
        assert_eq!(modern(Gfp::KERNEL | Gfp(0x200)), "GFP_KERNEL|0x200");
        assert_eq!(modern(Gfp(0x8000_0200)), "0x80000200");
        assert_eq!(
            modern(Gfp::NO_OBJ_EXT | Gfp::IO),
            "__GFP_IO|__GFP_NO_OBJ_EXT"
        );
        assert_eq!(legacy(Gfp::NO_OBJ_EXT | Gfp::IO), "__GFP_IO|0x1000000");
        assert_eq!(modern(Gfp::DMA), "GFP_DMA");
        assert_eq!(modern(Gfp::DMA32 | Gfp::KERNEL), "GFP_KERNEL|GFP_DMA32");
        // __GFP_RECLAIM never prints: GFP_NOIO has the same mask and comes first.
        assert_eq!(modern(Gfp::RECLAIM), "GFP_NOIO");
        assert_eq!(modern(Gfp::DIRECT_RECLAIM), "__GFP_DIRECT_RECLAIM");
        assert_eq!(modern(Gfp::KSWAPD_RECLAIM), "__GFP_KSWAPD_RECLAIM");
        // GFP_TRANSHUGE leaves HIGH and KSWAPD_RECLAIM, so GFP_ATOMIC still matches.
        assert_eq!(
            modern(Gfp(u32::MAX)),
            "GFP_TRANSHUGE|GFP_ATOMIC|GFP_DMA|GFP_DMA32|__GFP_RECLAIMABLE|__GFP_ZERO|__GFP_WRITE|\
             __GFP_RETRY_MAYFAIL|__GFP_NOFAIL|__GFP_NORETRY|__GFP_MEMALLOC|__GFP_THISNODE|\
             __GFP_ACCOUNT|__GFP_ZEROTAGS|__GFP_NO_OBJ_EXT|0xfe000200"
        );
    }

    #[test]
    fn legacy_order_differs_only_in_single_bit_order() {
        let g = Gfp::KERNEL | Gfp::COMP | Gfp::ZERO;
        assert_eq!(legacy(g), "GFP_KERNEL|__GFP_COMP|__GFP_ZERO");
        assert_eq!(modern(g), "GFP_KERNEL|__GFP_ZERO|__GFP_COMP");
        assert_eq!(
            legacy(Gfp::NOFS | Gfp::HIGHMEM | Gfp::MOVABLE | Gfp::NOWARN | Gfp::NORETRY | Gfp::COMP | Gfp::HARDWALL),
            "GFP_NOFS|__GFP_HIGHMEM|__GFP_NOWARN|__GFP_NORETRY|__GFP_COMP|__GFP_HARDWALL|__GFP_MOVABLE"
        );
        assert_eq!(
            legacy(Gfp::DIRECT_RECLAIM | Gfp::WRITE),
            "__GFP_WRITE|__GFP_DIRECT_RECLAIM"
        );
        assert_eq!(legacy(Gfp::NONE), "none");
        assert_eq!(
            legacy(Gfp::TRANSHUGE | Gfp::NORETRY | Gfp::THISNODE),
            "GFP_TRANSHUGE|__GFP_NORETRY|__GFP_THISNODE"
        );
        // Same composite prefix under both orders for every trace string.
        for s in trace_strings() {
            let g = p(s);
            let m = modern(g);
            let l = legacy(g);
            fn composite(t: &str) -> Vec<&str> {
                t.split('|').filter(|x| x.starts_with("GFP_")).collect()
            }
            assert_eq!(composite(&m), composite(&l), "{s}");
            let mut ms: Vec<&str> = m.split('|').collect();
            let mut ls: Vec<&str> = l.split('|').collect();
            ms.sort_unstable();
            ls.sort_unstable();
            assert_eq!(ms, ls, "{s}");
        }
    }

    #[test]
    fn tables_have_names_that_parse_to_their_masks() {
        for order in [FlagOrder::Modern, FlagOrder::Legacy] {
            for &(mask, name) in order.table() {
                assert!(!mask.is_empty(), "{name}");
                assert_eq!(p(name), mask, "{name}");
            }
        }
        assert_eq!(FlagOrder::Modern.table().len(), 38);
        assert_eq!(FlagOrder::Legacy.table().len(), 35);
        assert_eq!(FlagOrder::default(), FlagOrder::Modern);
    }

    #[test]
    fn write_trace_into_a_buffer() {
        let mut s = String::new();
        (Gfp::ATOMIC | Gfp::COMP)
            .write_trace(FlagOrder::Modern, &mut s)
            .unwrap();
        assert_eq!(s, "GFP_ATOMIC|__GFP_COMP");
        assert_eq!(format!("{:?}", Gfp::KERNEL), "Gfp(0xcc0 GFP_KERNEL)");
    }

    // ---- parsing ----------------------------------------------------------------------------

    #[test]
    fn parses_names_hex_and_none() {
        assert_eq!(p("none"), Gfp::NONE);
        assert_eq!(p("GFP_KERNEL"), Gfp::KERNEL);
        assert_eq!(p("__GFP_COMP|GFP_KERNEL"), Gfp::KERNEL | Gfp::COMP);
        assert_eq!(p("GFP_KERNEL|GFP_KERNEL"), Gfp::KERNEL);
        assert_eq!(p("__GFP_DMA"), Gfp::DMA);
        assert_eq!(p("GFP_DMA32"), Gfp::DMA32);
        assert_eq!(p("__GFP_RECLAIM"), Gfp::RECLAIM);
        assert_eq!(p("0x200"), Gfp(0x200));
        assert_eq!(p("0X1A"), Gfp(0x1a));
        assert_eq!(p("0xffffffff"), Gfp(u32::MAX));
        assert_eq!(p("0x00000000ffffffff"), Gfp(u32::MAX));
        assert_eq!(p("GFP_KERNEL|0x200|0x1"), Gfp::KERNEL | Gfp(0x201));
        assert_eq!("GFP_NOWAIT".parse::<Gfp>(), Ok(Gfp::NOWAIT));
    }

    #[test]
    fn parse_errors_name_the_token_and_its_position() {
        let e = err("GFP_KERNEL|__GFP_BOGUS|__GFP_COMP");
        assert_eq!(e.kind, GfpParseErrorKind::UnknownName);
        assert_eq!(e.token, "__GFP_BOGUS");
        assert_eq!(e.position, 11);
        assert_eq!(e.to_string(), "unknown gfp flag `__GFP_BOGUS` at byte 11");

        let cases: [(&str, GfpParseErrorKind, usize, &str); 14] = [
            ("", GfpParseErrorKind::Empty, 0, ""),
            ("|", GfpParseErrorKind::Empty, 0, ""),
            ("GFP_KERNEL|", GfpParseErrorKind::Empty, 11, ""),
            ("GFP_KERNEL||__GFP_COMP", GfpParseErrorKind::Empty, 11, ""),
            ("GFP_FOO", GfpParseErrorKind::UnknownName, 0, "GFP_FOO"),
            (
                "gfp_kernel",
                GfpParseErrorKind::UnknownName,
                0,
                "gfp_kernel",
            ),
            (
                " GFP_KERNEL",
                GfpParseErrorKind::UnknownName,
                0,
                " GFP_KERNEL",
            ),
            (
                "GFP_KERNEL ",
                GfpParseErrorKind::UnknownName,
                0,
                "GFP_KERNEL ",
            ),
            (
                "__GFP_ATOMIC",
                GfpParseErrorKind::UnknownName,
                0,
                "__GFP_ATOMIC",
            ),
            ("0x", GfpParseErrorKind::BadHex, 0, "0x"),
            ("__GFP_IO|0xg", GfpParseErrorKind::BadHex, 9, "0xg"),
            ("0x100000000", GfpParseErrorKind::BadHex, 0, "0x100000000"),
            (
                "none|GFP_KERNEL",
                GfpParseErrorKind::MisplacedNone,
                0,
                "none",
            ),
            (
                "GFP_KERNEL|none",
                GfpParseErrorKind::MisplacedNone,
                11,
                "none",
            ),
        ];
        for (s, kind, pos, tok) in cases {
            let e = err(s);
            assert_eq!(
                (e.kind, e.position, e.token.as_str()),
                (kind, pos, tok),
                "{s:?}"
            );
        }
        // Positions are byte offsets, also after multi-byte characters.
        let e = err("é|GFP_KERNEL|x");
        assert_eq!((e.position, e.token.as_str()), (0, "é"));
        let e = err("GFP_KERNEL|é");
        assert_eq!((e.position, e.token.as_str()), (11, "é"));
    }

    #[test]
    fn every_trace_string_parses_and_reprints_identically() {
        let mut n = 0;
        for s in trace_strings() {
            let g = p(s);
            assert_eq!(modern(g), s, "{s}");
            assert!(g.0 & !Gfp::BITS_MASK.0 == 0, "{s}");
            n += 1;
        }
        assert_eq!(n, 30, "distinct strings in the three captures");
    }

    #[test]
    fn trace_strings_have_the_expected_request_shapes() {
        // The slab opportunistic high-order attempt of a GFP_KERNEL cache.
        let slab_try =
            p("__GFP_IO|__GFP_FS|__GFP_NOWARN|__GFP_NORETRY|__GFP_COMP|__GFP_NOMEMALLOC");
        assert!(!can_direct_reclaim(slab_try));
        assert!(has_cheap_fallback(slab_try, CheapFallbackRule::Intent));
        assert!(is_best_effort_high_order(slab_try, 3));
        assert_eq!(
            gfp_to_alloc_flags(slab_try, 3, false),
            AllocFlags::CPUSET // no KSWAPD, no NON_BLOCK (NOMEMALLOC), unmovable
        );
        // THP fault in an madvised VMA, defrag=madvise.
        let thp = p("GFP_TRANSHUGE|__GFP_NORETRY|__GFP_THISNODE");
        assert_eq!(thp.migratetype(), MigrateType::Movable);
        assert!(can_direct_reclaim(thp));
        assert!(has_cheap_fallback(thp, CheapFallbackRule::Intent));
        assert!(!is_best_effort_high_order(thp, 9));
        // Page-cache writes.
        let pc = p("GFP_HIGHUSER_MOVABLE|__GFP_WRITE|__GFP_COMP");
        assert!(!has_cheap_fallback(pc, CheapFallbackRule::Literal));
        // NOFAIL metadata.
        let nofail = p("GFP_NOFS|__GFP_NOFAIL|__GFP_COMP|__GFP_HARDWALL");
        assert!(!has_cheap_fallback(nofail, CheapFallbackRule::Literal));
    }

    // ---- alloc flags ------------------------------------------------------------------------

    #[test]
    fn slow_path_alloc_flags() {
        use AllocFlags as A;
        // GFP_KERNEL: min watermark, cpuset, kswapd.
        assert_eq!(
            gfp_to_alloc_flags(Gfp::KERNEL, 0, false),
            A::CPUSET | A::KSWAPD
        );
        assert_eq!(gfp_to_alloc_flags(Gfp::KERNEL, 0, false).wmark(), 0);
        // Movable adds CMA; defrag_mode adds NOFRAGMENT.
        assert_eq!(
            gfp_to_alloc_flags(Gfp::HIGHUSER_MOVABLE, 0, true),
            A::CPUSET | A::KSWAPD | A::CMA | A::NOFRAGMENT
        );
        // GFP_ATOMIC: MIN_RESERVE + NON_BLOCK, cpuset dropped; HIGHATOMIC only for order > 0.
        assert_eq!(
            gfp_to_alloc_flags(Gfp::ATOMIC, 0, false),
            A::MIN_RESERVE | A::KSWAPD | A::NON_BLOCK
        );
        assert_eq!(
            gfp_to_alloc_flags(Gfp::ATOMIC, 1, false),
            A::MIN_RESERVE | A::KSWAPD | A::NON_BLOCK | A::HIGHATOMIC
        );
        // GFP_NOWAIT: NON_BLOCK but no HIGHATOMIC even at order > 0 (6.17 fix), keeps cpuset.
        assert_eq!(
            gfp_to_alloc_flags(Gfp::NOWAIT, 3, false),
            A::CPUSET | A::KSWAPD | A::NON_BLOCK
        );
        // NOMEMALLOC: neither NON_BLOCK nor HIGHATOMIC, but a __GFP_HIGH caller still drops cpuset.
        let g = Gfp::ATOMIC | Gfp::NOWARN | Gfp::NORETRY | Gfp::COMP | Gfp::NOMEMALLOC;
        assert_eq!(gfp_to_alloc_flags(g, 2, false), A::MIN_RESERVE | A::KSWAPD);
        // A blocking __GFP_HIGH caller keeps cpuset and gets no NON_BLOCK.
        assert_eq!(
            gfp_to_alloc_flags(Gfp::KERNEL | Gfp::HIGH, 2, false),
            A::CPUSET | A::KSWAPD | A::MIN_RESERVE
        );
        // THP without kswapd.
        assert_eq!(
            gfp_to_alloc_flags(Gfp::TRANSHUGE_LIGHT, 9, false),
            A::CPUSET | A::CMA
        );
        // Boot-time __GFP_COMP only (reclaim bits masked): non-blocking, no kswapd.
        assert_eq!(
            gfp_to_alloc_flags(Gfp::COMP, 1, false),
            A::CPUSET | A::NON_BLOCK
        );
        // Never the spb-only flags.
        for s in trace_strings() {
            let f = gfp_to_alloc_flags(p(s), 9, true);
            assert!(
                !f.intersects(A::HIGHORDER_OPTIONAL | A::NOFRAG_TAINTED_OK),
                "{s}"
            );
            assert_eq!(f.wmark(), 0);
        }
    }

    #[test]
    fn fast_path_alloc_flags_low_watermark() {
        use AllocFlags as A;
        assert_eq!(fast_path_alloc_flags(Gfp::KERNEL), A::WMARK_LOW | A::KSWAPD);
        assert_eq!(fast_path_alloc_flags(Gfp::KERNEL).wmark(), 1);
        assert_eq!(
            fast_path_alloc_flags(Gfp::HIGHUSER_MOVABLE),
            A::WMARK_LOW | A::KSWAPD | A::CMA
        );
        assert_eq!(fast_path_alloc_flags(Gfp::TRANSHUGE), A::WMARK_LOW | A::CMA);
        assert_eq!(fast_path_alloc_flags(Gfp::ATOMIC), A::WMARK_LOW | A::KSWAPD);
        assert!(!fast_path_alloc_flags(Gfp(u32::MAX))
            .intersects(A::NOFRAGMENT | A::CPUSET | A::RESERVES));
    }

    #[test]
    fn pfmemalloc_override() {
        assert_eq!(pfmemalloc_flags(Gfp::KERNEL), None);
        assert_eq!(
            pfmemalloc_flags(Gfp::KERNEL | Gfp::MEMALLOC),
            Some(AllocFlags::NO_WATERMARKS)
        );
        assert_eq!(
            pfmemalloc_flags(Gfp::ATOMIC | Gfp::MEMALLOC | Gfp::NOMEMALLOC),
            None
        );
        assert_eq!(pfmemalloc_flags(Gfp::TRANSHUGE), None);
    }

    #[test]
    fn alloc_flags_helpers_and_display() {
        use AllocFlags as A;
        let f = A::WMARK_HIGH | A::CMA;
        assert_eq!(f.wmark(), 2);
        assert!(f.contains(A::CMA));
        assert!(!f.intersects(A::RESERVES));
        assert_eq!(f.with(A::OOM).without(A::CMA), A(0x2 | 0x8));
        assert_eq!(
            A::RESERVES,
            A::NON_BLOCK | A::MIN_RESERVE | A::HIGHATOMIC | A::OOM
        );
        assert_eq!(A::WMARK_LOW.to_string(), "WMARK_LOW");
        assert_eq!(
            (A::CPUSET | A::KSWAPD).to_string(),
            "WMARK_MIN|CPUSET|KSWAPD"
        );
        assert_eq!(
            A(0x1_0000 | 0x2000 | 1).to_string(),
            "WMARK_LOW|HIGHORDER_OPTIONAL|0x10000"
        );
        assert_eq!(
            format!("{:?}", A::WMARK_LOW | A::CMA),
            "AllocFlags(0x81 WMARK_LOW|CMA)"
        );
        // __GFP_HIGH / __GFP_KSWAPD_RECLAIM share values with their ALLOC_ twins.
        assert_eq!(Gfp::HIGH.0, A::MIN_RESERVE.0);
        assert_eq!(Gfp::KSWAPD_RECLAIM.0, A::KSWAPD.0);
    }

    #[test]
    fn costly_and_reclaim_helpers() {
        assert!(!is_costly(0));
        assert!(!is_costly(3));
        assert!(is_costly(4));
        assert!(is_costly(9));
        assert!(can_direct_reclaim(Gfp::KERNEL));
        assert!(can_direct_reclaim(Gfp::TRANSHUGE));
        assert!(!can_direct_reclaim(Gfp::ATOMIC));
        assert!(!can_direct_reclaim(Gfp::TRANSHUGE_LIGHT));
    }

    // ---- properties -------------------------------------------------------------------------

    /// Masks biased towards realistic shapes: a composite (or nothing) plus a few bits, and
    /// sometimes arbitrary high garbage.
    fn any_gfp() -> impl Strategy<Value = Gfp> {
        let composite = prop::sample::select(
            MODERN_TABLE[..14]
                .iter()
                .map(|e| e.0)
                .chain([Gfp::NONE])
                .collect::<Vec<_>>(),
        );
        prop_oneof![
            any::<u32>().prop_map(Gfp),
            (any::<u32>()).prop_map(|b| Gfp(b & Gfp::BITS_MASK.0)),
            (composite, any::<u32>(), 0u32..4).prop_map(|(c, b, k)| {
                // Keep k in 0..4 random bits of the low 25.
                let mut extra = 0;
                let mut b = b;
                for _ in 0..k {
                    extra |= 1 << (b % 25);
                    b /= 25;
                }
                c | Gfp(extra)
            }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn round_trip_modern(g in any_gfp()) {
            let s = modern(g);
            prop_assert_eq!(parse(&s), Ok(g), "{}", s);
        }

        #[test]
        fn round_trip_legacy(g in any_gfp()) {
            let s = legacy(g);
            prop_assert_eq!(parse(&s), Ok(g), "{}", s);
        }

        #[test]
        fn printing_is_canonical(g in any_gfp()) {
            // Re-printing a parsed string gives the same string; the leftover is only bits
            // no table entry covers.
            let s = modern(g);
            prop_assert_eq!(modern(p(&s)), s.clone());
            if let Some(hex) = s.rsplit('|').next().and_then(|t| t.strip_prefix("0x")) {
                let rest = u32::from_str_radix(hex, 16).unwrap();
                prop_assert_eq!(rest & Gfp::BITS_MASK.0 & !0x200, 0);
            }
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,64}") {
            let _ = parse(&s);
        }

        #[test]
        fn parse_never_panics_on_near_misses(
            toks in prop::collection::vec(
                prop_oneof![
                    prop::sample::select(
                        MODERN_TABLE.iter().map(|e| e.1).chain(["none", "0x", "0x1", "", "__GFP_", "GFP_", "0xffffffff1"]).collect::<Vec<_>>()
                    ).prop_map(String::from),
                    "[_A-Z0-9x|]{0,12}",
                ],
                0..6,
            )
        ) {
            let s = toks.join("|");
            match parse(&s) {
                Ok(g) => prop_assert_eq!(parse(&modern(g)), Ok(g)),
                Err(e) => {
                    // The reported token really is at the reported position.
                    prop_assert_eq!(&s[e.position..e.position + e.token.len()], e.token.as_str());
                }
            }
        }

        #[test]
        fn token_order_does_not_matter(g in any_gfp(), seed in any::<u64>()) {
            let s = modern(g);
            let mut toks: Vec<&str> = s.split('|').collect();
            // Deterministic shuffle.
            let mut x = seed | 1;
            for i in (1..toks.len()).rev() {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                toks.swap(i, (x % (i as u64 + 1)) as usize);
            }
            let shuffled = toks.join("|");
            prop_assert_eq!(parse(&shuffled), Ok(g));
        }

        #[test]
        fn slow_path_invariants(g in any_gfp(), order in 0u8..11, defrag in any::<bool>()) {
            let f = gfp_to_alloc_flags(g, order, defrag);
            prop_assert_eq!(f.wmark(), 0);
            prop_assert_eq!(f.contains(AllocFlags::NOFRAGMENT), defrag);
            prop_assert_eq!(f.contains(AllocFlags::KSWAPD), g.contains(Gfp::KSWAPD_RECLAIM));
            prop_assert_eq!(f.contains(AllocFlags::MIN_RESERVE), g.contains(Gfp::HIGH));
            prop_assert_eq!(f.contains(AllocFlags::CMA), g.migratetype() == MigrateType::Movable);
            prop_assert!(!f.contains(AllocFlags::HIGHATOMIC) || f.contains(AllocFlags::NON_BLOCK));
            prop_assert!(!f.contains(AllocFlags::NON_BLOCK) || !can_direct_reclaim(g));
            // Intent is never looser than the posted code.
            prop_assert!(!has_cheap_fallback(g, CheapFallbackRule::Intent)
                || has_cheap_fallback(g, CheapFallbackRule::Literal));
        }
    }
}
