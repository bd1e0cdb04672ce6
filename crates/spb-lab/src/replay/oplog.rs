//! The compact operation log that the decode pass produces and every policy replays.
//!
//! One [`Op`] is 16 bytes. A 9 M-line trace decodes into about 5.5 M ops (88 MB), so the log
//! stays in memory while the policies replay it (in parallel threads, each reading the same
//! slice), and the trace text is read and parsed exactly once.

use spb_alloc::Gfp;

/// What an [`Op`] does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum OpKind {
    /// A request the kernel served: `pfn` is where the kernel put it (the `real` placement and the
    /// key of the kernel-pfn → simulated-block map), `order`, `gfp` (index into [`OpLog::gfps`]),
    /// `arg` = CPU.
    Alloc = 0,
    /// Free the allocation whose kernel head pfn is `pfn` and whose order is `order`; `arg` = CPU.
    Free = 1,
    /// Split the allocation at kernel head `pfn` from `order` into pieces of order `arg`
    /// (split_page, THP/folio split), each freed separately later.
    Split = 2,
    /// Memory added to the zone: `[pfn, pfn + 2^order)` leaves the uninitialised state and
    /// becomes free (lazy deferred init, hot-add).
    Grow = 3,
}

/// [`Op::flags`] bit: the allocation was inferred (a bulk allocation without mm_page_alloc).
pub const OPF_INFERRED: u8 = 1;
/// [`Op::flags`] bit: the allocation re-creates memory in use before the trace (prefill).
pub const OPF_PREFILL: u8 = 2;

/// One replay operation (16 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Op {
    /// Kernel pfn (head of the block).
    pub pfn: u32,
    /// Microseconds since the first replayed event.
    pub ts_us: u32,
    /// Index into [`OpLog::gfps`] (Alloc only).
    pub gfp: u16,
    pub kind: OpKind,
    pub order: u8,
    /// CPU (Alloc, Free) or the new order (Split).
    pub arg: u8,
    /// [`OPF_INFERRED`], [`OPF_PREFILL`].
    pub flags: u8,
    _pad: u16,
}

const _: () = assert!(core::mem::size_of::<Op>() == 16);

impl Op {
    pub fn alloc(pfn: u64, order: u8, gfp: u16, cpu: u8, ts_us: u32) -> Op {
        Op {
            pfn: pfn as u32,
            ts_us,
            gfp,
            kind: OpKind::Alloc,
            order,
            arg: cpu,
            flags: 0,
            _pad: 0,
        }
    }
    pub fn free(pfn: u64, order: u8, cpu: u8, ts_us: u32) -> Op {
        Op {
            pfn: pfn as u32,
            ts_us,
            gfp: 0,
            kind: OpKind::Free,
            order,
            arg: cpu,
            flags: 0,
            _pad: 0,
        }
    }
    pub fn split(pfn: u64, order: u8, new_order: u8, ts_us: u32) -> Op {
        Op {
            pfn: pfn as u32,
            ts_us,
            gfp: 0,
            kind: OpKind::Split,
            order,
            arg: new_order,
            flags: 0,
            _pad: 0,
        }
    }
    pub fn grow(pfn: u64, order: u8, ts_us: u32) -> Op {
        Op {
            pfn: pfn as u32,
            ts_us,
            gfp: 0,
            kind: OpKind::Grow,
            order,
            arg: 0,
            flags: 0,
            _pad: 0,
        }
    }
    pub fn with_flags(mut self, f: u8) -> Op {
        self.flags |= f;
        self
    }
}

/// The decoded trace: prefill, ops, and the tables they index.
#[derive(Clone, Debug, Default)]
pub struct OpLog {
    /// Blocks in use at the start (from a kpageflags dump): `(pfn, order, gfp index)`.
    pub prefill: Vec<(u64, u8, u16)>,
    /// Pageblock labels to set before the prefill: `(first pfn of the pageblock, migratetype)`.
    pub pageblock_types: Vec<(u64, u8)>,
    /// The operations, in (stable) timestamp order.
    pub ops: Vec<Op>,
    /// Parsed gfp masks, indexed by `Op::gfp`.
    pub gfps: Vec<Gfp>,
    /// Their text as printed in the trace (or a synthetic name for inferred requests).
    pub gfp_names: Vec<String>,
    /// Number of CPUs seen (max cpu + 1).
    pub nr_cpus: usize,
    /// Trace time of the last replayed event, in seconds since the first.
    pub duration_s: f64,
}

impl OpLog {
    /// Index of a gfp mask, adding it if new.
    pub fn gfp_index(&mut self, g: Gfp, name: &str) -> u16 {
        if let Some(i) = self.gfp_names.iter().position(|n| n == name) {
            return i as u16;
        }
        self.gfps.push(g);
        self.gfp_names.push(name.to_string());
        (self.gfps.len() - 1) as u16
    }
}
