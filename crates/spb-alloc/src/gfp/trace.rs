//! The ftrace text syntax of a gfp mask: `show_gfp_flags()` printing with the flag tables of
//! both kernel generations, and the parser of `gfp_flags=` values.

use core::fmt;

use alloc::string::String;

use super::Gfp;

impl Gfp {
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
pub(crate) static MODERN_TABLE: [FlagName; 11 + 27] = concat_tables(
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
pub(crate) static LEGACY_TABLE: [FlagName; 11 + 24] = concat_tables(
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
