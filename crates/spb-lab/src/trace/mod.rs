//! Reading ftrace page-allocator traces (`kmem:mm_page_*` events) as produced by `trace_pipe`,
//! `trace`, or `trace-cmd report`.
//!
//! # Accepted line formats
//!
//! A trace line is
//!
//! ```text
//! <comm>-<pid> [(<tgid>)] [<cpu>] [<irq-flags>] <secs>.<frac>: <event>: <fields>
//! ```
//!
//! * `trace_pipe` / `trace` (the kernel's own text output; see `linux-baseline.md` §7.6): comm
//!   right-aligned in 16 columns, `-%-7d` pid, optional `(%7d)` tgid column (tracefs option
//!   `record-tgid`; `(-------)` when unknown), `[%03d]` CPU, the five irq-info flag characters
//!   (`d..1.`; absent with `irq-info` off), timestamp `%5lu.%06lu`.
//!   Example: `   python3-14548   [001] d..1.   911.953156: mm_page_free: pfn=0x450000 order=10`
//! * `trace-cmd report`: `  <comm>-<pid>  [cpu]  <ts>: <event>:  <fields>` - the same columns
//!   with different padding, with or without the flags column, possibly with nanosecond
//!   timestamps and a `cpus=N` / `version = N` / `CPU N is empty` preamble.
//!
//! The comm may contain spaces (`opt cgu.0-11347`) and dashes; it is everything before the
//! `-<pid>` that precedes the CPU column. Timestamps are kept as integer nanoseconds
//! ([`TraceRecord::ts_ns`]); a timestamp without a fraction (counter clocks such as `x86-tsc`)
//! is kept as the raw counter value.
//!
//! # Events
//!
//! | event | fields (6.x) | [`TraceEvent`] |
//! |---|---|---|
//! | `mm_page_alloc` | `[page=%p] pfn=0x%lx order=%d migratetype=%d gfp_flags=%s` | [`TraceEvent::Alloc`]; `pfn=0x0` (or, without `pfn`, a NULL `page`) is a **failed** allocation: `pfn: None` |
//! | `mm_page_free` | `[page=%p] pfn=0x%lx order=%d` | [`TraceEvent::Free`] |
//! | `mm_page_free_batched` | `[page=%p] pfn=0x%lx order=0` | [`TraceEvent::FreeBatched`] - a duplicate marker following the `mm_page_free` of the same pfn, not a second free |
//! | `mm_page_alloc_zone_locked` | `[page=%p] pfn order migratetype percpu_refill` | [`TraceEvent::ZoneLocked`] |
//! | `mm_page_pcpu_drain` | `[page=%p] pfn order migratetype` | [`TraceEvent::PcpuDrain`] |
//! | `mm_page_alloc_extfrag` | `[page=%p] pfn alloc_order fallback_order pageblock_order alloc_migratetype fallback_migratetype fragmenting change_ownership` | [`TraceEvent::ExtFrag`] |
//! | `tracing_mark_write` (trace-cmd: `print`) | free text | [`TraceEvent::Marker`] |
//! | anything else | - | [`TraceEvent::Other`] (interned name) |
//!
//! The `page=` field is optional everywhere (the shared captures removed it; raw `trace_pipe`
//! output has it). `pfn` may be hex with `0x` or decimal (pre-5.x kernels printed `%lu`). Extra
//! unknown `key=value` fields (e.g. the old `cpu=` of zone_locked) are ignored.
//!
//! # Non-event lines
//!
//! Blank lines, `#` comments/headers and trace-cmd preamble lines are returned as
//! [`Line::Skipped`] with a [`SkipReason`]; `CPU:N [LOST M EVENTS]` (trace_pipe) and
//! `CPU:N [M EVENTS DROPPED]` (trace-cmd) as [`Line::Lost`]. A line with valid context columns
//! whose timestamp/event name is broken, or a known kmem event whose fields are missing or do not
//! parse, is a [`ParseError`] naming the line and what was expected; the caller counts it or
//! aborts. Value ranges (order <= 10, known migratetypes) are *not* checked here: that is the
//! replayer's job.
//!
//! # gfp flags
//!
//! The gfp string of `mm_page_alloc` is not parsed here. The parser interns each distinct string
//! into a dense [`GfpId`] ([`GfpTable`]); the record also carries the text
//! ([`TraceRecord::gfp_text`]). A consumer parses each distinct string once, e.g. with
//! `spb_alloc::gfp::Gfp::parse`, through a [`GfpCache`]:
//!
//! ```ignore
//! let mut gfps = GfpCache::new();
//! if let TraceEvent::Alloc { gfp, .. } = rec.event {
//!     let g: &Gfp = gfps.get_or_try_insert_with(gfp, rec.gfp_text, Gfp::parse)?;
//! }
//! ```
//!
//! # Input
//!
//! [`input::TraceReader`] streams plain, zstd or gzip files (detected by magic bytes) or a
//! capture directory; [`TraceStream`] combines it with the parser; [`count_events`] reads a whole
//! trace and returns a [`Summary`].

#![warn(missing_docs)]

pub mod dat;
pub mod input;
pub mod parse;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::Path;

use serde::{Deserialize, Serialize};
use spb_alloc::Pfn;

pub use input::{Compression, InputError, TraceReader};
pub use parse::{ParseError, TraceParser};

/// Dense id of a distinct gfp string, in first-seen order (`0, 1, 2, ...`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GfpId(pub u32);

/// Dense id of a distinct "other" event name (see [`TraceParser::event_name`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventNameId(pub u32);

/// One parsed trace event. Owned and small (40 bytes); buffer it freely.
///
/// Numbers are stored as printed; range checks (order <= MAX_PAGE_ORDER, known migratetype
/// numbers) are the consumer's business.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TraceEvent {
    /// `mm_page_alloc`: one page-allocator call, success or failure.
    Alloc {
        /// First pfn of the block; `None` for a failed allocation (`pfn=0x0` / NULL page).
        pfn: Option<Pfn>,
        /// Requested order.
        order: u32,
        /// Requested migratetype (gfp_migratetype), as a number.
        migratetype: u32,
        /// The `gfp_flags` text, interned in the parser's [`GfpTable`].
        gfp: GfpId,
    },
    /// `mm_page_free`: a page/folio freed by its user.
    Free {
        /// First pfn of the block.
        pfn: Pfn,
        /// Folio order.
        order: u32,
    },
    /// `mm_page_free_batched`: duplicate marker after the `Free` of the same pfn (batched
    /// `free_unref_folios` path); not a second free. Its `order=0` is literal text.
    FreeBatched {
        /// The pfn of the preceding `Free`.
        pfn: Pfn,
    },
    /// `mm_page_alloc_zone_locked`: a block taken off the buddy lists under zone->lock.
    ZoneLocked {
        /// First pfn of the block.
        pfn: Pfn,
        /// Order of the block taken.
        order: u32,
        /// The free list searched.
        migratetype: u32,
        /// Order/type were pcp-eligible (usually part of a pcp refill).
        percpu_refill: bool,
    },
    /// `mm_page_pcpu_drain`: a pcp-list page returned to the buddy lists.
    PcpuDrain {
        /// First pfn of the block.
        pfn: Pfn,
        /// Its order.
        order: u32,
        /// The block's migratetype at that moment.
        migratetype: u32,
    },
    /// `mm_page_alloc_extfrag`: a migratetype fallback (claim or steal).
    ExtFrag {
        /// First pfn of the fallback buddy.
        pfn: Pfn,
        /// Requested order.
        alloc_order: u32,
        /// Order of the free buddy taken from the other type's list.
        fallback_order: u32,
        /// The kernel's pageblock_order.
        pageblock_order: u32,
        /// Requested migratetype.
        alloc_migratetype: u32,
        /// The list it came from.
        fallback_migratetype: u32,
        /// fallback_order < pageblock_order.
        fragmenting: bool,
        /// The block's type now equals the requested type (a claim).
        change_ownership: bool,
    },
    /// `tracing_mark_write` (or trace-cmd `print`) text, e.g. `BUDDYCAP SNAPSHOT_BEGIN name=build`.
    Marker(Box<str>),
    /// Any other event (compaction, migrate, vmscan, ...), by interned name
    /// ([`TraceParser::event_name`]).
    Other(EventNameId),
}

impl TraceEvent {
    /// The kind of this event (for counting).
    pub fn kind(&self) -> EventKind {
        match self {
            TraceEvent::Alloc { .. } => EventKind::Alloc,
            TraceEvent::Free { .. } => EventKind::Free,
            TraceEvent::FreeBatched { .. } => EventKind::FreeBatched,
            TraceEvent::ZoneLocked { .. } => EventKind::ZoneLocked,
            TraceEvent::PcpuDrain { .. } => EventKind::PcpuDrain,
            TraceEvent::ExtFrag { .. } => EventKind::ExtFrag,
            TraceEvent::Marker(_) => EventKind::Marker,
            TraceEvent::Other(_) => EventKind::Other,
        }
    }
}

/// Discriminant of [`TraceEvent`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    /// [`TraceEvent::Alloc`]
    Alloc,
    /// [`TraceEvent::Free`]
    Free,
    /// [`TraceEvent::FreeBatched`]
    FreeBatched,
    /// [`TraceEvent::ZoneLocked`]
    ZoneLocked,
    /// [`TraceEvent::PcpuDrain`]
    PcpuDrain,
    /// [`TraceEvent::ExtFrag`]
    ExtFrag,
    /// [`TraceEvent::Marker`]
    Marker,
    /// [`TraceEvent::Other`]
    Other,
}

impl EventKind {
    /// The six kmem page events, in table order.
    pub const KMEM: [EventKind; 6] = [
        EventKind::Alloc,
        EventKind::Free,
        EventKind::FreeBatched,
        EventKind::ZoneLocked,
        EventKind::PcpuDrain,
        EventKind::ExtFrag,
    ];

    /// The ftrace event name (`mm_page_alloc`, ...; `tracing_mark_write` for markers, `other`).
    pub fn ftrace_name(self) -> &'static str {
        match self {
            EventKind::Alloc => "mm_page_alloc",
            EventKind::Free => "mm_page_free",
            EventKind::FreeBatched => "mm_page_free_batched",
            EventKind::ZoneLocked => "mm_page_alloc_zone_locked",
            EventKind::PcpuDrain => "mm_page_pcpu_drain",
            EventKind::ExtFrag => "mm_page_alloc_extfrag",
            EventKind::Marker => "tracing_mark_write",
            EventKind::Other => "other",
        }
    }
}

/// One parsed event line, borrowing the comm, flags, name and gfp text from the input line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceRecord<'a> {
    /// 1-based line number in the input.
    pub line_no: u64,
    /// Timestamp in nanoseconds of the trace clock (`mono` in the shared captures).
    pub ts_ns: u64,
    /// CPU the event was recorded on.
    pub cpu: u32,
    /// Thread id of the task that was current.
    pub pid: u32,
    /// Thread-group id (only with the `record-tgid` column).
    pub tgid: Option<u32>,
    /// Task comm (raw bytes; may contain spaces; `<...>` if unknown).
    pub comm: &'a [u8],
    /// The irq-info flags column (`d..1.`), empty if absent.
    pub flags: &'a [u8],
    /// The event name as it appears in the line.
    pub name: &'a str,
    /// The raw `gfp_flags` text of an `Alloc` (valid UTF-8, checked when first interned),
    /// empty for other events.
    pub gfp_text: &'a [u8],
    /// The event.
    pub event: TraceEvent,
}

impl TraceRecord<'_> {
    /// Timestamp in seconds.
    pub fn ts_secs(&self) -> f64 {
        self.ts_ns as f64 / 1e9
    }
    /// The gfp text as `&str` (`""` for non-`Alloc` events).
    pub fn gfp_str(&self) -> &str {
        std::str::from_utf8(self.gfp_text).unwrap_or("")
    }
    /// The comm as text (lossy).
    pub fn comm_lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(self.comm)
    }
    /// Whether irqs were off (`d`/`D` in the first flag column); `None` without a flags column.
    pub fn irqs_off(&self) -> Option<bool> {
        self.flags.first().map(|&c| c == b'd' || c == b'D')
    }
    /// An owned copy without the borrowed text columns.
    pub fn to_timed(&self) -> TimedEvent {
        TimedEvent {
            ts_ns: self.ts_ns,
            cpu: self.cpu,
            pid: self.pid,
            event: self.event.clone(),
        }
    }
}

/// An owned event with its timestamp, CPU and pid (for buffering/sorting).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimedEvent {
    /// Timestamp (ns of the trace clock).
    pub ts_ns: u64,
    /// CPU.
    pub cpu: u32,
    /// Thread id.
    pub pid: u32,
    /// The event.
    pub event: TraceEvent,
}

/// Why a line was skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkipReason {
    /// Empty or whitespace only.
    Blank,
    /// Starts with `#` (the `trace` file header, comments).
    Comment,
    /// trace-cmd report preamble: `cpus=N`, `version = N`, `CPU N is empty`, other `CPU...` lines.
    TraceCmdHeader,
    /// Not a trace line at all (no `<comm>-<pid> [cpu]` columns).
    Unrecognized,
}

impl SkipReason {
    /// Stable lowercase name used as a map key in [`Summary::skipped`].
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Blank => "blank",
            SkipReason::Comment => "comment",
            SkipReason::TraceCmdHeader => "trace-cmd-header",
            SkipReason::Unrecognized => "unrecognized",
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result of parsing one line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// A trace event line.
    Event(TraceRecord<'a>),
    /// `CPU:N [LOST M EVENTS]`: the ring buffer overwrote/dropped events before this point.
    Lost {
        /// The CPU whose buffer lost events.
        cpu: Option<u32>,
        /// How many, if printed.
        events: Option<u64>,
    },
    /// Not a trace line.
    Skipped(SkipReason),
}

/// A small, fast, non-cryptographic hasher (FxHash) for the intern tables.
#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut h = self.0;
        let mut c = bytes.chunks_exact(8);
        for w in &mut c {
            let v = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
            h = (h.rotate_left(5) ^ v).wrapping_mul(K);
        }
        for &b in c.remainder() {
            h = (h.rotate_left(5) ^ b as u64).wrapping_mul(K);
        }
        self.0 = h;
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.0 = (self.0.rotate_left(5) ^ i as u64).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// `BuildHasher` for [`FxHasher`].
pub type FxBuild = BuildHasherDefault<FxHasher>;

/// Interns distinct gfp strings into dense [`GfpId`]s.
#[derive(Debug, Default, Clone)]
pub struct GfpTable {
    map: HashMap<Box<[u8]>, GfpId, FxBuild>,
    names: Vec<Box<str>>,
    last: Option<GfpId>,
}

impl GfpTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// The id of `s`, inserting it if new; `None` if `s` is not valid UTF-8.
    #[inline]
    pub fn intern(&mut self, s: &[u8]) -> Option<GfpId> {
        if let Some(id) = self.last {
            if self.names[id.0 as usize].as_bytes() == s {
                return Some(id);
            }
        }
        let id = match self.map.get(s) {
            Some(&id) => id,
            None => {
                let text = std::str::from_utf8(s).ok()?;
                let id = GfpId(self.names.len() as u32);
                self.names.push(text.into());
                self.map.insert(s.into(), id);
                id
            }
        };
        self.last = Some(id);
        Some(id)
    }

    /// The most recently interned/looked-up entry.
    #[inline]
    pub fn last_entry(&self) -> Option<(GfpId, &str)> {
        let id = self.last?;
        Some((id, &self.names[id.0 as usize]))
    }

    /// The text of `id` (`None` for an id this table did not hand out).
    pub fn get(&self, id: GfpId) -> Option<&str> {
        self.names.get(id.0 as usize).map(|s| &**s)
    }

    /// The id of `s` if it was seen.
    pub fn lookup(&self, s: &str) -> Option<GfpId> {
        self.map.get(s.as_bytes()).copied()
    }

    /// Number of distinct strings.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether no string was interned yet.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// All `(id, text)` pairs in id order.
    pub fn iter(&self) -> impl Iterator<Item = (GfpId, &str)> {
        self.names
            .iter()
            .enumerate()
            .map(|(i, s)| (GfpId(i as u32), &**s))
    }
}

/// Per-[`GfpId`] cache of parsed gfp values, so each distinct string is parsed once.
///
/// `T` is whatever the consumer's parser returns (e.g. `spb_alloc::gfp::Gfp`).
#[derive(Debug, Clone)]
pub struct GfpCache<T> {
    slots: Vec<Option<T>>,
}

impl<T> Default for GfpCache<T> {
    fn default() -> Self {
        Self { slots: Vec::new() }
    }
}

impl<T> GfpCache<T> {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The cached value of `id`, if already parsed.
    #[inline]
    pub fn get(&self, id: GfpId) -> Option<&T> {
        self.slots.get(id.0 as usize).and_then(|s| s.as_ref())
    }

    /// The value of `id`, parsing `text` (the record's [`TraceRecord::gfp_text`]) with `parse`
    /// the first time `id` is seen. Errors are not cached.
    #[inline]
    pub fn get_or_try_insert_with<E>(
        &mut self,
        id: GfpId,
        text: &[u8],
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<&T, E> {
        let i = id.0 as usize;
        if i >= self.slots.len() {
            self.slots.resize_with(i + 1, || None);
        }
        if self.slots[i].is_none() {
            // Interned gfp text is always valid UTF-8; lossy only as a never-taken fallback.
            let s = String::from_utf8_lossy(text);
            self.slots[i] = Some(parse(&s)?);
        }
        // Just filled or already present.
        Ok(self.slots[i].as_ref().expect("slot filled above"))
    }

    /// Parse every string of `table` up front; on failure returns the id, its text and the error.
    pub fn resolve_all<E>(
        table: &GfpTable,
        mut parse: impl FnMut(&str) -> Result<T, E>,
    ) -> Result<Self, (GfpId, String, E)> {
        let mut slots = Vec::with_capacity(table.len());
        for (id, s) in table.iter() {
            match parse(s) {
                Ok(v) => slots.push(Some(v)),
                Err(e) => return Err((id, s.to_string(), e)),
            }
        }
        Ok(Self { slots })
    }
}

/// Error of [`TraceStream::next`] / [`count_events`].
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// Reading/decompressing the input failed (fatal for the stream).
    #[error(transparent)]
    Input(#[from] InputError),
    /// One line did not parse (the stream can continue with the next line).
    #[error("{path}: {err}")]
    Parse {
        /// The file being read.
        path: String,
        /// The line's error.
        err: ParseError,
    },
}

/// A [`TraceReader`] plus a [`TraceParser`]: yields parsed lines one at a time.
pub struct TraceStream {
    reader: TraceReader,
    parser: TraceParser,
    path: String,
}

impl TraceStream {
    /// Open a trace file or capture directory (see [`TraceReader::open`]).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, InputError> {
        Ok(Self::new(TraceReader::open(path)?, TraceParser::new()))
    }

    /// Combine an existing reader and parser.
    pub fn new(reader: TraceReader, parser: TraceParser) -> Self {
        let path = reader.path().display().to_string();
        Self {
            reader,
            parser,
            path,
        }
    }

    /// The next line: `Ok(None)` at the end, `Err(TraceError::Parse)` for a malformed line (call
    /// again to continue), `Err(TraceError::Input)` for a fatal read error.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Line<'_>>, TraceError> {
        let line_no = self.reader.line_no() + 1;
        let path = &self.path;
        let line = match self.reader.next_line()? {
            Some(l) => l,
            None => return Ok(None),
        };
        match self.parser.parse_line(line, line_no) {
            Ok(l) => Ok(Some(l)),
            Err(err) => Err(TraceError::Parse {
                path: path.clone(),
                err,
            }),
        }
    }

    /// The parser (gfp table, other-event names).
    pub fn parser(&self) -> &TraceParser {
        &self.parser
    }

    /// The reader (path, line number, compression).
    pub fn reader(&self) -> &TraceReader {
        &self.reader
    }

    /// Split into reader and parser.
    pub fn into_parts(self) -> (TraceReader, TraceParser) {
        (self.reader, self.parser)
    }
}

/// Per-event counts and line statistics of a whole trace (see [`count_events`]).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    /// The input path.
    pub path: String,
    /// Total lines (including skipped and unparsed lines).
    pub lines: u64,
    /// Decompressed bytes read.
    pub bytes: u64,
    /// Event lines per ftrace event name (kmem events, `tracing_mark_write`, others by name).
    pub events: BTreeMap<String, u64>,
    /// Skipped lines per [`SkipReason::as_str`].
    pub skipped: BTreeMap<String, u64>,
    /// Lines that produced a [`ParseError`].
    pub parse_errors: u64,
    /// The first few parse errors (at most 20), as text.
    pub first_errors: Vec<String>,
    /// `mm_page_alloc` lines with `pfn=0x0` / NULL page.
    pub failed_allocs: u64,
    /// `CPU:N [LOST ...]` lines.
    pub lost_lines: u64,
    /// Sum of the event counts those lines report.
    pub lost_events: u64,
    /// Lines whose timestamp is below the running maximum of earlier lines.
    pub timestamp_inversions: u64,
    /// Largest such inversion, in ns.
    pub max_inversion_ns: u64,
    /// First event timestamp (ns).
    pub first_ts_ns: Option<u64>,
    /// Last event timestamp (ns).
    pub last_ts_ns: Option<u64>,
    /// Distinct gfp strings.
    pub distinct_gfp: usize,
    /// Marker lines: `(ts_ns, text)`.
    pub markers: Vec<(u64, String)>,
}

impl Summary {
    /// Count of one event name (0 if absent).
    pub fn count(&self, name: &str) -> u64 {
        self.events.get(name).copied().unwrap_or(0)
    }
    /// Count of skipped lines of one reason.
    pub fn skipped(&self, r: SkipReason) -> u64 {
        self.skipped.get(r.as_str()).copied().unwrap_or(0)
    }
}

/// Read a whole trace (file or capture directory) and count events, skipped lines and parse
/// errors. Parse errors are counted (never fatal); only input errors are returned.
pub fn count_events(path: impl AsRef<Path>) -> Result<Summary, InputError> {
    let mut reader = TraceReader::open(path.as_ref())?;
    let mut parser = TraceParser::new();
    let mut kinds = [0u64; 6];
    let mut others: Vec<u64> = Vec::new();
    let mut marker_names: BTreeMap<String, u64> = BTreeMap::new();
    let mut skipped = [0u64; 4];
    let mut s = Summary {
        path: reader.path().display().to_string(),
        ..Summary::default()
    };
    let mut max_ts = 0u64;
    loop {
        let line_no = reader.line_no() + 1;
        let line = match reader.next_line()? {
            Some(l) => l,
            None => break,
        };
        match parser.parse_line(line, line_no) {
            Ok(Line::Event(r)) => {
                if s.first_ts_ns.is_none() {
                    s.first_ts_ns = Some(r.ts_ns);
                }
                s.last_ts_ns = Some(r.ts_ns);
                if r.ts_ns < max_ts {
                    s.timestamp_inversions += 1;
                    s.max_inversion_ns = s.max_inversion_ns.max(max_ts - r.ts_ns);
                } else {
                    max_ts = r.ts_ns;
                }
                match &r.event {
                    TraceEvent::Alloc { pfn, .. } => {
                        kinds[0] += 1;
                        if pfn.is_none() {
                            s.failed_allocs += 1;
                        }
                    }
                    TraceEvent::Free { .. } => kinds[1] += 1,
                    TraceEvent::FreeBatched { .. } => kinds[2] += 1,
                    TraceEvent::ZoneLocked { .. } => kinds[3] += 1,
                    TraceEvent::PcpuDrain { .. } => kinds[4] += 1,
                    TraceEvent::ExtFrag { .. } => kinds[5] += 1,
                    TraceEvent::Marker(t) => {
                        *marker_names.entry(r.name.to_string()).or_default() += 1;
                        s.markers.push((r.ts_ns, t.to_string()));
                    }
                    TraceEvent::Other(id) => {
                        let i = id.0 as usize;
                        if i >= others.len() {
                            others.resize(i + 1, 0);
                        }
                        others[i] += 1;
                    }
                }
            }
            Ok(Line::Lost { events, .. }) => {
                s.lost_lines += 1;
                s.lost_events += events.unwrap_or(0);
            }
            Ok(Line::Skipped(r)) => skipped[r as usize] += 1,
            Err(e) => {
                s.parse_errors += 1;
                if s.first_errors.len() < 20 {
                    s.first_errors.push(e.to_string());
                }
            }
        }
    }
    s.lines = reader.line_no();
    s.bytes = reader.bytes_read();
    for (k, n) in EventKind::KMEM.iter().zip(kinds) {
        if n > 0 {
            s.events.insert(k.ftrace_name().to_string(), n);
        }
    }
    for (i, n) in others.iter().enumerate() {
        if *n > 0 {
            *s.events
                .entry(parser.event_name(EventNameId(i as u32)).to_string())
                .or_default() += n;
        }
    }
    for (k, n) in marker_names {
        *s.events.entry(k).or_default() += n;
    }
    for r in [
        SkipReason::Blank,
        SkipReason::Comment,
        SkipReason::TraceCmdHeader,
        SkipReason::Unrecognized,
    ] {
        let n = skipped[r as usize];
        if n > 0 {
            s.skipped.insert(r.as_str().to_string(), n);
        }
    }
    s.distinct_gfp = parser.gfp_table().len();
    Ok(s)
}

#[cfg(test)]
pub(crate) mod tests;
