//! Pass 1: read the trace once, follow the kernel's own allocations in a light per-pfn shadow,
//! and turn every kmem line into resolved [`Op`]s (see `docs/replay.md` for the rules).
//!
//! The shadow knows, per kernel pfn, whether it is free, the head of an allocation (with its
//! order), a tail, uninitialised, reserved or a hole. With it each line is resolved once, so the
//! policies only replay unambiguous operations:
//! - `mm_page_alloc` → `Alloc` (after releasing stale prefill blocks it overlaps, or growing the
//!   zone if it lands in uninitialised memory);
//! - `mm_page_free` → `Free` of the block; a free inside a larger live block → `Split` + `Free`;
//!   a free covering several smaller live blocks → one `Free` each; a free of uninitialised
//!   memory → `Grow` (lazy deferred init); a free of a page the kernel handed out through the
//!   bulk path (no mm_page_alloc) → an inferred `Alloc` inserted where the page entered the
//!   per-CPU list, then `Free`; other frees of free pages → unknown free (never seen) or double
//!   free (bad input);
//! - `mm_page_free_batched` → nothing (duplicate marker of the preceding free of that pfn);
//! - `mm_page_alloc_zone_locked` (percpu_refill=1) and `mm_page_pcpu_drain` → per-CPU-list
//!   bookkeeping for the bulk inference; `mm_page_alloc_extfrag` → the real fallback counts.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;

use spb_alloc::layout::{MemoryLayout, PfnRange};
use spb_alloc::{Gfp, MigrateType};

use super::oplog::{Op, OpLog, OPF_INFERRED, OPF_PREFILL};
use super::{ExtfragCounts, ReplayError};
use crate::metrics::TraceStats;
use crate::trace::dat::DatReader;
use crate::trace::{GfpCache, Line, TraceEvent, TraceParser, TraceReader};

use super::pfnmap::{
    mt_bits, mt_of, shadow_for, F_AWAIT_BATCHED, F_MT_MASK, F_PCP, F_PREFILL, F_TOUCHED, S_FREE,
    S_HEAD, S_HOLE, S_ORDER_MASK, S_RESERVED, S_TAIL, S_UNINIT,
};

/// Lines are released from the reorder buffer once they are this much older than the newest
/// timestamp seen (trace_pipe merges the per-CPU buffers with inversions of at most ~0.3 ms).
const REORDER_WINDOW_NS: u64 = 2_000_000;

/// Without a zoneinfo the layout is inferred from the pfns seen; pfns at or above this (256 GiB of
/// 4 KiB pages) are bad input (`pfn_outside_layout`) rather than a reason to build a shadow and
/// allocators for terabytes of memory. A larger machine's trace needs its `--zoneinfo`.
pub const INFERRED_LAYOUT_MAX_PFN: u64 = 1 << 26;

/// A page on a kernel per-CPU list, as far as the trace tells (refilled or freed there and not
/// handed out by mm_page_alloc or drained since).
#[derive(Clone, Copy, Debug)]
struct PcpEntry {
    /// Op index at which it entered the per-CPU list.
    idx: u32,
    ts_us: u32,
    mt: u8,
    cpu: u8,
    /// Entered through a refill (mm_page_alloc_zone_locked), not a free.
    refill: bool,
}

struct Pending {
    line_no: u64,
    ts_ns: u64,
    cpu: u32,
    event: TraceEvent,
}

/// Settings of the decode pass.
pub struct DecodeSettings<'a> {
    /// The machine's layout; `None` = infer a layout from the pfns seen.
    pub layout: Option<&'a MemoryLayout>,
    /// Blocks in use at the start: `(pfn, order, migratetype)`.
    pub prefill: &'a [(u64, u8, MigrateType)],
    /// Pageblock labels of the prefill.
    pub pageblock_types: &'a [(u64, u8)],
    /// The before/ snapshot window (trace clock, ns): with a prefill, events before its start are
    /// already in the snapshot and skipped; frees of free pages inside it are snapshot races.
    pub snapshot_ns: Option<(u64, u64)>,
    pub strict: bool,
    pub max_order: u8,
    /// Without a layout, pfns at or above this are `pfn_outside_layout` (normally
    /// [`INFERRED_LAYOUT_MAX_PFN`]).
    pub max_inferred_pfn: u64,
    /// Stop at the first marker containing this text (`PHASE stress_end`); later events are
    /// counted as `after_stop_marker` and not replayed.
    pub stop_marker: Option<String>,
}

/// Pass 1 alone over an open reader: the op log, statistics and bad-input warnings of a trace
/// (`replay` runs this, then the columns). Used by the `trace_parse` fuzz target.
pub fn decode(reader: TraceReader, settings: DecodeSettings<'_>) -> Result<Decoded, ReplayError> {
    let label = reader.path().display().to_string();
    Decoder::new(settings, &label).run_reader(reader)
}

/// Pass 1 over several sources read one after the other (see [`SourceSpec`]).
pub fn decode_sources(
    sources: Vec<SourceSpec>,
    settings: DecodeSettings<'_>,
) -> Result<Decoded, ReplayError> {
    let label = sources.first().map(|s| s.src.label()).unwrap_or_default();
    Decoder::new(settings, &label).run_sources(sources)
}

/// What the decode pass produces.
pub struct Decoded {
    pub log: OpLog,
    pub stats: TraceStats,
    /// Reconciliations and other counters that are not skipped lines.
    pub notes: BTreeMap<String, u64>,
    /// The real kernel's fallbacks (mm_page_alloc_extfrag lines).
    pub real_extfrag: ExtfragCounts,
    /// Highest pfn touched + 1.
    pub pfn_end: u64,
    /// Lowest pfn touched.
    pub pfn_min: u64,
    /// Markers: (seconds since the first replayed event, text).
    pub markers: Vec<(f64, String)>,
    /// Per skip reason that is bad input (or an unrecognised line): the first such line as
    /// `FILE:LINE: what was wrong`. The count is in `stats.skipped[reason]`.
    pub first_bad: BTreeMap<String, String>,
}

pub(crate) struct Decoder<'a> {
    st: DecodeSettings<'a>,
    path: String,
    state: Vec<u8>,
    flags: Vec<u8>,
    dynamic: bool,
    ops: Vec<Op>,
    side: Vec<(u32, Op)>,
    /// Per pfn: op index at which the page entered a per-CPU list (valid when F_PCP is set),
    /// its timestamp, and migratetype | cpu << 2.
    pcp_idx: Vec<u32>,
    pcp_ts: Vec<u32>,
    pcp_mc: Vec<u16>,
    pcp_live: u64,
    /// The op log's bound ([`crate::input::max_trace_ops`]).
    max_ops: usize,
    gfp_cache: GfpCache<u16>,
    log: OpLog,
    bulk_gfp: [Option<u16>; 4],
    stats: TraceStats,
    skips: Skips,
    notes: BTreeMap<String, u64>,
    extfrag: ExtfragCounts,
    t0: Option<u64>,
    last_ts_us: u32,
    buf: VecDeque<Pending>,
    max_ts: u64,
    max_cpu: u32,
    pfn_end: u64,
    pfn_min: u64,
    markers: Vec<(u64, String)>,
    snap_from_markers: (Option<u64>, Option<u64>),
    first_bad: BTreeMap<&'static str, String>,
    /// mm_page_alloc / mm_page_free lines seen (parsed or not).
    kmem_lines: u64,
    /// Events at or after this timestamp are dropped (the next source has them).
    until_ns: Option<u64>,
    /// Timestamp of the stop marker, once seen.
    stop_ts: Option<u64>,
    /// The tracer reported lost events (see [`Decoder::free`] and the zone_locked rule).
    lost_seen: bool,
    /// Line number of the text line being handled (for messages).
    cur_line: u64,
}

/// One input of the decode pass.
pub enum Source {
    /// ftrace text (plain, zstd or gzip).
    Text(TraceReader),
    /// A trace-cmd `.dat` file.
    Dat(Box<DatReader>),
}

impl Source {
    /// Open a text trace or a `.dat` file (detected by its magic).
    pub fn open(
        path: &Path,
        progress: Option<&super::ReplayProgress>,
    ) -> Result<Source, ReplayError> {
        let p = crate::trace::input::resolve_trace_path(path).map_err(input_err)?;
        let mut head = [0u8; 10];
        let n = std::fs::File::open(&p)
            .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
            .unwrap_or(0);
        if crate::trace::dat::is_dat(&head[..n]) {
            return DatReader::open(&p)
                .map(|r| Source::Dat(Box::new(r)))
                .map_err(|e| {
                    if e.io {
                        ReplayError::Io(e.to_string())
                    } else {
                        ReplayError::Input(e.to_string())
                    }
                });
        }
        super::open_trace(&p, progress)
            .map(Source::Text)
            .map_err(input_err)
    }

    /// The label used in messages (`FILE` for text, `FILE:record` for `.dat`).
    pub fn label(&self) -> String {
        match self {
            Source::Text(r) => r.path().display().to_string(),
            Source::Dat(r) => format!("{}:record", r.path()),
        }
    }

    /// Timestamp of the first event of the source (text: of the first 100 000 lines).
    pub fn first_ts(&self) -> Option<u64> {
        match self {
            Source::Text(r) => {
                let mut t = TraceReader::open(r.path()).ok()?;
                let mut p = TraceParser::new();
                for n in 1..=100_000u64 {
                    let l = t.next_line().ok()??;
                    if let Ok(Line::Event(rec)) = p.parse_line(l, n) {
                        return Some(rec.ts_ns);
                    }
                }
                None
            }
            Source::Dat(r) => r.first_ts(),
        }
    }
}

/// A source and the timestamp from which its events are left to the next source.
pub struct SourceSpec {
    pub src: Source,
    pub until_ns: Option<u64>,
}

/// Skipped-line counters keyed by static reason (converted into `TraceStats::skipped` at the end).
type Skips = BTreeMap<&'static str, u64>;

/// Lines that are not trace lines at all (`unrecognized`) are skipped, but past this many, while
/// they are over 90 % of the lines read, the input is refused as not a trace (issue 13: a replay
/// of `/dev/urandom` ran forever).
pub const MAX_JUNK_LINES: u64 = 1_000_000;

#[inline]
fn skip(skips: &mut Skips, reason: &'static str) {
    *skips.entry(reason).or_default() += 1;
}

fn note(notes: &mut BTreeMap<String, u64>, k: &str, n: u64) {
    *notes.entry(k.to_string()).or_default() += n;
}

impl<'a> Decoder<'a> {
    pub(crate) fn new(st: DecodeSettings<'a>, path: &str) -> Decoder<'a> {
        let (state, dynamic) = match st.layout {
            Some(l) => (shadow_for(l), false),
            None => (Vec::new(), true),
        };
        let n = state.len();
        let mut d = Decoder {
            path: path.to_string(),
            state,
            flags: vec![0; n],
            dynamic,
            ops: Vec::new(),
            side: Vec::new(),
            pcp_idx: vec![0; n],
            pcp_ts: vec![0; n],
            pcp_mc: vec![0; n],
            pcp_live: 0,
            max_ops: crate::input::max_trace_ops(),
            gfp_cache: GfpCache::new(),
            log: OpLog::default(),
            bulk_gfp: [None; 4],
            stats: TraceStats::default(),
            skips: Skips::new(),
            notes: BTreeMap::new(),
            extfrag: ExtfragCounts::default(),
            t0: None,
            last_ts_us: 0,
            buf: VecDeque::new(),
            max_ts: 0,
            max_cpu: 0,
            pfn_end: 0,
            pfn_min: u64::MAX,
            markers: Vec::new(),
            snap_from_markers: (None, None),
            first_bad: BTreeMap::new(),
            kmem_lines: 0,
            until_ns: None,
            stop_ts: None,
            lost_seen: false,
            cur_line: 0,
            st,
        };
        d.apply_prefill();
        d
    }

    fn apply_prefill(&mut self) {
        let prefill: Vec<(u64, u8, MigrateType)> = self.st.prefill.to_vec();
        for (pfn, order, mt) in prefill {
            let g = self.bulk_gfp_index(mt as u8, "prefill");
            self.log.prefill.push((pfn, order, g));
            self.ensure(pfn + (1u64 << order));
            self.mark_alloc(pfn, order, mt as u8);
            self.flags[pfn as usize] |= F_PREFILL;
        }
        self.log.pageblock_types = self.st.pageblock_types.to_vec();
    }

    /// The gfp index of a synthetic request of migratetype `mt` (inferred bulk allocations,
    /// prefill).
    fn bulk_gfp_index(&mut self, mt: u8, what: &str) -> u16 {
        let (g, name) = match mt {
            1 => (Gfp::HIGHUSER_MOVABLE, "GFP_HIGHUSER_MOVABLE"),
            2 => (
                Gfp::KERNEL.with(Gfp::RECLAIMABLE),
                "GFP_KERNEL|__GFP_RECLAIMABLE",
            ),
            3 => (Gfp::ATOMIC, "GFP_ATOMIC"),
            _ => (Gfp::KERNEL, "GFP_KERNEL"),
        };
        if what == "bulk" {
            if let Some(i) = self.bulk_gfp[mt.min(3) as usize] {
                return i;
            }
        }
        let i = self.log.gfp_index(g, &format!("{what}:{name}"));
        if what == "bulk" {
            self.bulk_gfp[mt.min(3) as usize] = Some(i);
        }
        i
    }

    #[inline]
    fn ensure(&mut self, end: u64) {
        if self.dynamic && end as usize > self.state.len() {
            let n = (end as usize).next_power_of_two().max(1 << 16);
            self.state.resize(n, S_FREE);
            self.flags.resize(n, 0);
            self.pcp_idx.resize(n, 0);
            self.pcp_ts.resize(n, 0);
            self.pcp_mc.resize(n, 0);
        }
    }

    #[inline]
    fn st_at(&self, pfn: u64) -> u8 {
        self.state.get(pfn as usize).copied().unwrap_or(S_HOLE)
    }

    fn mark_alloc(&mut self, pfn: u64, order: u8, mt: u8) {
        let n = 1usize << order;
        let i = pfn as usize;
        self.state[i] = S_HEAD | order;
        for k in 1..n {
            self.state[i + k] = S_TAIL;
        }
        for f in &mut self.flags[i..i + n] {
            *f = (*f & !(F_PREFILL | F_AWAIT_BATCHED | F_MT_MASK)) | F_TOUCHED;
        }
        self.flags[i] |= mt_bits(mt);
    }

    fn mark_free(&mut self, pfn: u64, order: u8) {
        let i = pfn as usize;
        let n = 1usize << order;
        for s in &mut self.state[i..i + n] {
            *s = S_FREE;
        }
        self.flags[i] &= !F_PREFILL;
    }

    /// The live allocation covering `pfn`: (head, order).
    fn find_head(&self, pfn: u64) -> Option<(u64, u8)> {
        for o in 0..=self.st.max_order.max(18) {
            let h = pfn & !((1u64 << o) - 1);
            let s = self.st_at(h);
            if s & S_HEAD != 0 {
                let q = s & S_ORDER_MASK;
                return if q >= o && h + (1u64 << q) > pfn {
                    Some((h, q))
                } else {
                    None
                };
            }
            if s != S_TAIL {
                return None;
            }
            if h == 0 {
                break;
            }
        }
        None
    }

    fn bad(&mut self, reason: &'static str, line_no: u64, msg: String) -> Result<(), ReplayError> {
        if self.st.strict {
            return Err(ReplayError::Input(format!(
                "{}:{}: {}",
                self.path, line_no, msg
            )));
        }
        skip(&mut self.skips, reason);
        let path = &self.path;
        self.first_bad
            .entry(reason)
            .or_insert_with(|| format!("{path}:{line_no}: {msg}"));
        Ok(())
    }

    fn ts_us(&self, ts_ns: u64) -> u32 {
        let t0 = self.t0.unwrap_or(ts_ns);
        (ts_ns.saturating_sub(t0) / 1000).min(u32::MAX as u64) as u32
    }

    fn push(&mut self, op: Op) {
        self.ops.push(op);
    }

    /// Read the whole trace.
    pub(crate) fn run(
        self,
        path: &Path,
        progress: Option<&super::ReplayProgress>,
    ) -> Result<Decoded, ReplayError> {
        let src = Source::open(path, progress)?;
        self.run_sources(vec![SourceSpec {
            src,
            until_ns: None,
        }])
    }

    fn run_reader(self, reader: TraceReader) -> Result<Decoded, ReplayError> {
        self.run_sources(vec![SourceSpec {
            src: Source::Text(reader),
            until_ns: None,
        }])
    }

    /// Read the sources one after the other (a from-boot capture: the boot text up to the first
    /// event of the stream, then the stream).
    pub(crate) fn run_sources(mut self, sources: Vec<SourceSpec>) -> Result<Decoded, ReplayError> {
        let mut lines = 0u64;
        let mut first_label = None;
        for spec in sources {
            // GfpIds are per parser/reader
            self.gfp_cache = GfpCache::new();
            self.until_ns = spec.until_ns;
            let label = spec.src.label();
            first_label.get_or_insert_with(|| label.clone());
            self.path = label.clone();
            match spec.src {
                Source::Text(reader) => lines += self.read_text(reader)?,
                Source::Dat(reader) => lines += self.read_dat(reader)?,
            }
        }
        while let Some(p) = self.buf.pop_front() {
            self.apply(p)?;
        }
        if self.ops.len() > self.max_ops {
            let label = first_label.clone().unwrap_or_default();
            return Err(self.too_many_ops(&label, None));
        }
        self.stats.lines = lines;
        if self.kmem_lines == 0 {
            return Err(ReplayError::Input(format!(
                "{}: no mm_page_alloc or mm_page_free line in {} lines: expected ftrace text (trace_pipe, trace or trace-cmd report) of the kmem:mm_page_* events, plain, zstd or gzip, or a trace-cmd .dat file",
                first_label.unwrap_or_default(),
                self.stats.lines
            )));
        }
        self.finish()
    }

    fn read_dat(&mut self, mut reader: Box<DatReader>) -> Result<u64, ReplayError> {
        loop {
            let line = match reader.next() {
                Ok(Some(l)) => l,
                Ok(None) => break,
                Err(e) if e.record_only => {
                    if self.st.strict {
                        return Err(ReplayError::Input(e.to_string()));
                    }
                    self.kmem_lines += 1;
                    skip(&mut self.skips, "unparsed");
                    self.first_bad.entry("unparsed").or_insert(e.to_string());
                    continue;
                }
                Err(e) if e.io => return Err(ReplayError::Io(e.to_string())),
                Err(e) => return Err(ReplayError::Input(e.to_string())),
            };
            if !self.on_line(line, &[])? {
                break;
            }
        }
        note(&mut self.notes, "dat_records", reader.records());
        Ok(reader.records())
    }

    fn read_text(&mut self, mut reader: TraceReader) -> Result<u64, ReplayError> {
        let mut parser = TraceParser::new();
        let path_s = reader.path().display().to_string();
        loop {
            let line_no = reader.line_no() + 1;
            let raw = match reader.next_line() {
                Ok(Some(l)) => l,
                Ok(None) => break,
                Err(e) => return Err(input_err(e)),
            };
            // Fast path for the most frequent line whose only content is a pfn (a quarter of the
            // build trace): mm_page_free_batched in the kernel's own column layout. It is queued
            // at the newest timestamp seen, which keeps it after the mm_page_free it duplicates.
            if let Some(pfn) = fast_free_batched(raw) {
                self.stats.parsed += 1;
                let p = Pending {
                    line_no,
                    ts_ns: self.max_ts,
                    cpu: 0,
                    event: TraceEvent::FreeBatched { pfn },
                };
                self.enqueue(p)?;
                continue;
            }
            let line = match parser.parse_line(raw, line_no) {
                Ok(l) => l,
                Err(err) => {
                    let msg = format!(
                        "{path_s}:{}: {}: {} (line: {:?})",
                        err.line_no, err.event, err.message, err.line
                    );
                    if self.st.strict {
                        return Err(ReplayError::Input(msg));
                    }
                    if err.event == "mm_page_alloc" || err.event == "mm_page_free" {
                        self.kmem_lines += 1;
                    }
                    skip(&mut self.skips, "unparsed");
                    self.first_bad.entry("unparsed").or_insert(msg);
                    continue;
                }
            };
            self.cur_line = line_no;
            if !self.on_line(line, raw)? {
                break;
            }
        }
        Ok(reader.line_no())
    }

    /// One parsed line. Returns false when reading should stop (past the stop marker).
    fn on_line(&mut self, line: Line<'_>, raw: &[u8]) -> Result<bool, ReplayError> {
        match line {
            Line::Skipped(r) => {
                skip(&mut self.skips, r.as_str());
                let junk = self.skips.get("unrecognized").copied().unwrap_or(0);
                let line_no = self.cur_line;
                if junk > MAX_JUNK_LINES && junk * 10 > line_no * 9 {
                    // bounded work for /dev/urandom or a binary file: not a trace
                    return Err(ReplayError::Input(format!(
                        "{}: {junk} of the first {line_no} lines are not trace lines: expected an ftrace text trace (at most {MAX_JUNK_LINES} such lines are skipped while they are over 90 % of the lines read)",
                        self.path
                    )));
                }
                if r == crate::trace::SkipReason::Unrecognized
                    && !self.first_bad.contains_key("unrecognized")
                {
                    let text: String = String::from_utf8_lossy(raw).chars().take(120).collect();
                    let msg = format!("{}:{}: not a trace line: expected `<comm>-<pid> [<cpu>] <timestamp>: <event>: <fields>`, found {text:?}", self.path, self.cur_line);
                    self.first_bad.insert("unrecognized", msg);
                }
            }
            Line::Lost { events, .. } => {
                skip(&mut self.skips, "lost_events_line");
                note(&mut self.notes, "lost_events", events.unwrap_or(0));
                self.lost_seen = true;
            }
            Line::Event(rec) => {
                if let Some(u) = self.until_ns {
                    if rec.ts_ns >= u {
                        // the next source has this event too (boot/stream overlap)
                        note(&mut self.notes, "boot_overlap_dropped", 1);
                        return Ok(true);
                    }
                }
                if let Some(st) = self.stop_ts {
                    if rec.ts_ns > st {
                        note(&mut self.notes, "after_stop_marker", 1);
                        return Ok(rec.ts_ns <= st + REORDER_WINDOW_NS);
                    }
                }
                self.stats.parsed += 1;
                if matches!(
                    rec.event,
                    TraceEvent::Alloc { .. } | TraceEvent::Free { .. }
                ) {
                    self.kmem_lines += 1;
                }
                match &rec.event {
                    TraceEvent::Marker(t) => {
                        skip(&mut self.skips, "marker");
                        self.markers.push((rec.ts_ns, t.to_string()));
                        if let Some(m) = &self.st.stop_marker {
                            if self.stop_ts.is_none() && t.contains(m.as_str()) {
                                self.stop_ts = Some(rec.ts_ns);
                            }
                        }
                        if t.contains("SNAPSHOT_BEGIN")
                            && !t.contains("AFTER_")
                            && self.snap_from_markers.0.is_none()
                        {
                            self.snap_from_markers.0 = Some(rec.ts_ns);
                        }
                        if t.contains("SNAPSHOT_END")
                            && !t.contains("AFTER_")
                            && self.snap_from_markers.1.is_none()
                        {
                            self.snap_from_markers.1 = Some(rec.ts_ns);
                        }
                        return Ok(true);
                    }
                    TraceEvent::Other(_) => {
                        skip(&mut self.skips, "other_event");
                        return Ok(true);
                    }
                    TraceEvent::ExtFrag {
                        fragmenting,
                        change_ownership,
                        alloc_migratetype,
                        fallback_migratetype,
                        ..
                    } => {
                        self.extfrag.record(
                            *fragmenting,
                            *change_ownership,
                            *alloc_migratetype,
                            *fallback_migratetype,
                        );
                    }
                    _ => {}
                }
                // the gfp text is borrowed from the line: resolve it now
                let gfp_text = rec.gfp_text;
                let (line_no, ts_ns, rcpu) = (rec.line_no, rec.ts_ns, rec.cpu);
                let event = match rec.event {
                    TraceEvent::Alloc {
                        pfn,
                        order,
                        migratetype,
                        gfp,
                    } => {
                        let gi = {
                            let log = &mut self.log;
                            self.gfp_cache
                                .get_or_try_insert_with(gfp, gfp_text, |s| {
                                    spb_alloc::gfp::parse(s).map(|g| {
                                        log.gfps.push(g);
                                        log.gfp_names.push(s.to_string());
                                        (log.gfps.len() - 1) as u16
                                    })
                                })
                                .ok()
                                .copied()
                        };
                        match gi {
                            Some(g) => TraceEvent::Alloc {
                                pfn,
                                order,
                                migratetype,
                                gfp: crate::trace::GfpId(g as u32),
                            },
                            None => {
                                let msg = format!("mm_page_alloc: gfp_flags {:?} is not a known gfp flag expression", String::from_utf8_lossy(gfp_text));
                                self.bad("bad_gfp", line_no, msg)?;
                                return Ok(true);
                            }
                        }
                    }
                    e => e,
                };
                if self.t0.is_none() {
                    self.t0 = Some(ts_ns);
                }
                let p = Pending {
                    line_no,
                    ts_ns,
                    cpu: rcpu,
                    event,
                };
                self.enqueue(p)?;
            }
        }
        Ok(true)
    }

    fn enqueue(&mut self, p: Pending) -> Result<(), ReplayError> {
        // the op log's bound, for every source (text and .dat) in one place
        if self.ops.len() + self.buf.len() >= self.max_ops {
            return Err(self.too_many_ops(&self.path, Some(p.line_no)));
        }
        let ts = p.ts_ns;
        // stable insertion from the back (the buffer is nearly sorted)
        let mut i = self.buf.len();
        while i > 0 && self.buf[i - 1].ts_ns > ts {
            i -= 1;
        }
        if i > 0 && i < self.buf.len() {
            note(&mut self.notes, "reordered_lines", 1);
        }
        if i == self.buf.len() {
            self.buf.push_back(p);
        } else {
            self.buf.insert(i, p);
        }
        self.max_ts = self.max_ts.max(ts);
        while let Some(f) = self.buf.front() {
            if f.ts_ns + REORDER_WINDOW_NS < self.max_ts {
                let f = self.buf.pop_front().expect("front exists");
                self.apply(f)?;
            } else {
                break;
            }
        }
        Ok(())
    }

    fn snapshot(&self) -> Option<(u64, u64)> {
        if self.st.prefill.is_empty() {
            return None;
        }
        self.st.snapshot_ns.or(match self.snap_from_markers {
            (Some(b), Some(e)) => Some((b, e)),
            (Some(b), None) => Some((b, u64::MAX)),
            _ => None,
        })
    }

    fn check_pfn(
        &mut self,
        pfn: u64,
        order: u32,
        line_no: u64,
        what: &str,
    ) -> Result<bool, ReplayError> {
        if order > self.st.max_order as u32 {
            let msg = format!(
                "{what}: order {order} is above the largest buddy order {}",
                self.st.max_order
            );
            self.bad("order_above_max", line_no, msg)?;
            return Ok(false);
        }
        let Some(end) = pfn.checked_add(1u64 << order) else {
            let msg = format!("{what}: pfn {pfn:#x} is outside the memory layout");
            self.bad("pfn_outside_layout", line_no, msg)?;
            return Ok(false);
        };
        if pfn & ((1u64 << order) - 1) != 0 {
            let msg = format!("{what}: pfn {pfn:#x} is not aligned to its order {order}");
            self.bad("misaligned_pfn", line_no, msg)?;
            return Ok(false);
        }
        if pfn == 0 || end > u32::MAX as u64 {
            let msg = format!("{what}: pfn {pfn:#x} is outside the memory layout");
            self.bad("pfn_outside_layout", line_no, msg)?;
            return Ok(false);
        }
        if self.dynamic && end > self.st.max_inferred_pfn {
            let msg = format!(
                "{what}: pfn {pfn:#x} is above the {} GiB a layout inferred from the trace covers (give the machine's zoneinfo with --zoneinfo)",
                self.st.max_inferred_pfn >> 18
            );
            self.bad("pfn_outside_layout", line_no, msg)?;
            return Ok(false);
        }
        self.ensure(end);
        let s0 = self.st_at(pfn);
        let s1 = self.st_at(end - 1);
        if s0 == S_HOLE || s1 == S_HOLE {
            let msg = format!("{what}: pfn {pfn:#x} (order {order}) is outside the memory layout (a hole or no zone)");
            self.bad("pfn_outside_layout", line_no, msg)?;
            return Ok(false);
        }
        self.pfn_end = self.pfn_end.max(end);
        self.pfn_min = self.pfn_min.min(pfn);
        Ok(true)
    }

    fn apply(&mut self, p: Pending) -> Result<(), ReplayError> {
        let ts_us = self.ts_us(p.ts_ns);
        self.last_ts_us = self.last_ts_us.max(ts_us);
        let cpu = (p.cpu % 256) as u8;
        self.max_cpu = self.max_cpu.max(cpu as u32);
        let before_snapshot = matches!(self.snapshot(), Some((b, _)) if p.ts_ns < b);
        match p.event {
            TraceEvent::Alloc { pfn: None, .. } => skip(&mut self.skips, "failed_alloc"),
            TraceEvent::Alloc {
                pfn: Some(pfn),
                order,
                migratetype,
                gfp,
            } => {
                if !self.check_pfn(pfn, order, p.line_no, "mm_page_alloc")? {
                    return Ok(());
                }
                if before_snapshot {
                    skip(&mut self.skips, "before_snapshot");
                    return Ok(());
                }
                self.alloc(
                    pfn,
                    order as u8,
                    gfp.0 as u16,
                    migratetype,
                    cpu,
                    ts_us,
                    p.line_no,
                )?;
            }
            TraceEvent::Free { pfn, order } => {
                if !self.check_pfn(pfn, order, p.line_no, "mm_page_free")? {
                    return Ok(());
                }
                // its mm_page_free_batched marker may follow, whatever becomes of this line
                self.flags[pfn as usize] |= F_AWAIT_BATCHED;
                if before_snapshot {
                    skip(&mut self.skips, "before_snapshot");
                    return Ok(());
                }
                self.free(pfn, order as u8, cpu, ts_us, p.ts_ns, p.line_no)?;
            }
            TraceEvent::FreeBatched { pfn } => {
                let i = pfn as usize;
                if i < self.flags.len() && self.flags[i] & F_AWAIT_BATCHED != 0 {
                    self.flags[i] &= !F_AWAIT_BATCHED;
                    skip(&mut self.skips, "free_batched_duplicate");
                } else {
                    skip(&mut self.skips, "free_batched_unmatched");
                }
            }
            TraceEvent::ZoneLocked {
                pfn,
                order,
                migratetype,
                percpu_refill,
            } => {
                note(&mut self.notes, "zone_locked_lines", 1);
                if (pfn as usize) < self.state.len() && order <= self.st.max_order as u32 {
                    if !before_snapshot {
                        // taken off the buddy lists: it was free
                        self.release_stale_prefill(pfn, order as u8, cpu, ts_us);
                    }
                    if percpu_refill {
                        self.pcp_enter(pfn, migratetype as u8, cpu, ts_us, true);
                    }
                }
            }
            TraceEvent::PcpuDrain { pfn, order, .. } => {
                note(&mut self.notes, "pcpu_drain_lines", 1);
                if !before_snapshot
                    && (pfn as usize) < self.state.len()
                    && order <= self.st.max_order as u32
                {
                    // a per-CPU-list page going back to the buddy lists: it was free
                    self.release_stale_prefill(pfn, order as u8, cpu, ts_us);
                }
                self.pcp_leave(pfn);
            }
            TraceEvent::ExtFrag { .. } => note(&mut self.notes, "extfrag_lines", 1),
            TraceEvent::Marker(_) | TraceEvent::Other(_) => {}
        }
        Ok(())
    }

    /// A page the kernel shows free (taken off the buddy lists, or drained from a per-CPU list)
    /// that the prefill has in use: the snapshot saw it on a per-CPU list (flag-less, like kernel
    /// memory) or the snapshot is stale. Release the prefill block.
    fn release_stale_prefill(&mut self, pfn: u64, order: u8, cpu: u8, ts_us: u32) {
        let end = (pfn + (1u64 << order)).min(self.state.len() as u64);
        let mut p = pfn;
        while p < end {
            let s = self.state[p as usize];
            if s == S_TAIL || s & S_HEAD != 0 {
                if let Some((h, q)) = self.find_head(p) {
                    if self.flags[h as usize] & F_PREFILL != 0 {
                        self.push(Op::free(h, q, cpu, ts_us).with_flags(OPF_PREFILL));
                        self.mark_free(h, q);
                        note(&mut self.notes, "prefill_released_free_pages", 1u64 << q);
                    } else if self.lost_seen {
                        // The tracer lost events and the kernel now takes this block off its
                        // free lists: its mm_page_free was among the lost ones. Free it here
                        // rather than keep it allocated for ever.
                        self.push(Op::free(h, q, cpu, ts_us));
                        self.mark_free(h, q);
                        note(&mut self.notes, "lost_free_released_pages", 1u64 << q);
                    } else {
                        note(&mut self.notes, "free_event_on_live_pages", 1);
                    }
                    p = p.max(h + (1u64 << q));
                    continue;
                }
            }
            p += 1;
        }
    }

    fn pcp_enter(&mut self, pfn: u64, mt: u8, cpu: u8, ts_us: u32, refill: bool) {
        let i = pfn as usize;
        if i >= self.flags.len() {
            return;
        }
        if self.flags[i] & F_PCP == 0 {
            self.pcp_live += 1;
        }
        self.flags[i] |= F_PCP;
        self.pcp_idx[i] = self.ops.len() as u32;
        self.pcp_ts[i] = ts_us;
        self.pcp_mc[i] = (mt & 3) as u16 | (cpu as u16) << 2 | (refill as u16) << 15;
    }

    #[inline]
    fn pcp_leave(&mut self, pfn: u64) -> Option<PcpEntry> {
        let i = pfn as usize;
        if i < self.flags.len() && self.flags[i] & F_PCP != 0 {
            self.flags[i] &= !F_PCP;
            self.pcp_live -= 1;
            let mc = self.pcp_mc[i];
            return Some(PcpEntry {
                idx: self.pcp_idx[i],
                ts_us: self.pcp_ts[i],
                mt: (mc & 3) as u8,
                cpu: (mc >> 2) as u8,
                refill: mc >> 15 != 0,
            });
        }
        None
    }

    #[allow(clippy::too_many_arguments)]
    fn alloc(
        &mut self,
        pfn: u64,
        order: u8,
        g: u16,
        mt: u32,
        cpu: u8,
        ts_us: u32,
        line_no: u64,
    ) -> Result<(), ReplayError> {
        let n = 1u64 << order;
        let gmt = self.log.gfps[g as usize].migratetype() as u32;
        if gmt != mt {
            note(&mut self.notes, "migratetype_differs_from_gfp", 1);
        }
        // what is there now?
        let mut p = pfn;
        while p < pfn + n {
            let s = self.st_at(p);
            match s {
                S_FREE => p += 1,
                S_UNINIT => {
                    // memory the kernel initialised without a traced free: grow it first
                    let mo = self.st.max_order;
                    let blk = p & !((1u64 << mo) - 1);
                    let mut q = blk;
                    let end = blk + (1u64 << mo);
                    while q < end {
                        if self.st_at(q) == S_UNINIT {
                            let mut r = q;
                            while r < end && self.st_at(r) == S_UNINIT {
                                r += 1;
                            }
                            for (bp, bo) in PfnRange::new(q, r).aligned_blocks(mo) {
                                self.push(Op::grow(bp, bo, ts_us));
                                self.mark_free(bp, bo);
                            }
                            note(&mut self.notes, "implicit_grow_pages", r - q);
                            q = r;
                        } else {
                            q += 1;
                        }
                    }
                    p += 1;
                }
                S_RESERVED => {
                    skip(&mut self.skips, "alloc_in_reserved");
                    return Ok(());
                }
                S_HOLE => {
                    let msg = format!("mm_page_alloc: pfn {p:#x} is outside the memory layout");
                    return self.bad("pfn_outside_layout", line_no, msg);
                }
                _ => {
                    // a live block overlaps: stale prefill, or a free the trace did not show
                    let Some((h, q)) = self.find_head(p) else {
                        p += 1;
                        continue;
                    };
                    let prefill = self.flags[h as usize] & F_PREFILL != 0;
                    if !prefill && self.st.strict {
                        return Err(ReplayError::Input(format!(
                            "{}:{}: mm_page_alloc: pfn {pfn:#x} order {order} overlaps the live allocation at {h:#x} (order {q}) that the trace never freed",
                            self.path, line_no
                        )));
                    }
                    self.push(Op::free(h, q, cpu, ts_us).with_flags(if prefill {
                        OPF_PREFILL
                    } else {
                        0
                    }));
                    self.mark_free(h, q);
                    note(
                        &mut self.notes,
                        if prefill {
                            "prefill_conflict_pages"
                        } else {
                            "alloc_over_live_reconciled_pages"
                        },
                        1u64 << q,
                    );
                    p = pfn;
                }
            }
        }
        self.pcp_leave(pfn);
        self.push(Op::alloc(pfn, order, g, cpu, ts_us));
        self.mark_alloc(pfn, order, gmt as u8);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn free(
        &mut self,
        pfn: u64,
        order: u8,
        cpu: u8,
        ts_us: u32,
        ts_ns: u64,
        line_no: u64,
    ) -> Result<(), ReplayError> {
        let n = 1u64 << order;
        let s = self.st_at(pfn);
        // inside a larger live block: split it first
        let inner = if s == S_TAIL {
            self.find_head(pfn)
        } else if s & S_HEAD != 0 && (s & S_ORDER_MASK) > order {
            Some((pfn, s & S_ORDER_MASK))
        } else {
            None
        };
        if let Some((h, q)) = inner {
            if q > order {
                self.push(Op::split(h, q, order, ts_us));
                let step = 1u64 << order;
                let pre = self.flags[h as usize] & F_PREFILL;
                let mut k = h;
                while k < h + (1u64 << q) {
                    self.state[k as usize] = S_HEAD | order;
                    self.flags[k as usize] |= pre;
                    k += step;
                }
                note(&mut self.notes, "partial_frees", 1);
            }
        }
        // walk the range
        let mut p = pfn;
        let mut freed = 0u64;
        let mut free_pages = 0u64;
        let mut uninit = 0u64;
        let mut other = 0u64;
        let mut head_mt = 0u8;
        while p < pfn + n {
            let s = self.st_at(p);
            if s & S_HEAD != 0 {
                let q = s & S_ORDER_MASK;
                if p + (1u64 << q) > pfn + n {
                    // cannot happen after the split above (heads are aligned)
                    other += 1;
                    p += 1;
                    continue;
                }
                self.push(Op::free(p, q, cpu, ts_us));
                if p == pfn {
                    head_mt = mt_of(self.flags[p as usize]);
                }
                self.mark_free(p, q);
                freed += 1u64 << q;
                p += 1u64 << q;
            } else {
                match s {
                    S_FREE => free_pages += 1,
                    S_UNINIT => uninit += 1,
                    _ => other += 1,
                }
                p += 1;
            }
        }
        if freed > 0 && freed < n {
            note(&mut self.notes, "free_of_partly_free_range", 1);
        }
        if freed == n {
            if freed > 1 && inner.is_none() && self.ops.last().map(|o| o.order) != Some(order) {
                note(&mut self.notes, "multi_block_frees", 1);
            }
            self.after_free(pfn, order, head_mt, cpu, ts_us);
            return Ok(());
        }
        if freed > 0 {
            self.after_free(pfn, order, head_mt, cpu, ts_us);
            return Ok(());
        }
        // nothing allocated in the range
        if uninit == n {
            self.push(Op::grow(pfn, order, ts_us));
            self.mark_free(pfn, order);
            note(&mut self.notes, "grow_pages", n);
            note(&mut self.notes, "grow_frees", 1);
            return Ok(());
        }
        if uninit > 0 {
            let mut q = pfn;
            while q < pfn + n {
                if self.st_at(q) == S_UNINIT {
                    let mut r = q;
                    while r < pfn + n && self.st_at(r) == S_UNINIT {
                        r += 1;
                    }
                    for (bp, bo) in PfnRange::new(q, r).aligned_blocks(self.st.max_order) {
                        self.push(Op::grow(bp, bo, ts_us));
                        self.mark_free(bp, bo);
                    }
                    note(&mut self.notes, "grow_pages", r - q);
                    q = r;
                } else {
                    q += 1;
                }
            }
            return Ok(());
        }
        if other > 0 && free_pages == 0 {
            skip(&mut self.skips, "free_in_reserved");
            return Ok(());
        }
        // a free page: handed out by the bulk path (alloc_pages_bulk takes order-0 pages off the
        // per-CPU list without a mm_page_alloc line)? Only order 0 can be; anything else is a
        // double free.
        let bulk = if order == 0 {
            self.pcp_leave(pfn)
        } else {
            None
        };
        if let Some(e) = bulk {
            let g = self.bulk_gfp_index(e.mt, "bulk");
            let op = Op::alloc(pfn, order, g, e.cpu, e.ts_us).with_flags(OPF_INFERRED);
            self.side.push((e.idx, op));
            self.stats.inferred_bulk_pages += n;
            note(
                &mut self.notes,
                if e.refill {
                    "inferred_bulk_from_refill"
                } else {
                    "inferred_bulk_from_free"
                },
                1,
            );
            self.push(Op::free(pfn, order, cpu, ts_us).with_flags(OPF_INFERRED));
            for f in &mut self.flags[pfn as usize..(pfn + n) as usize] {
                *f |= F_TOUCHED;
            }
            self.after_free(pfn, order, e.mt.min(3), cpu, ts_us);
            return Ok(());
        }
        if matches!(self.snapshot(), Some((_, e)) if ts_ns <= e) {
            skip(&mut self.skips, "snapshot_race");
            return Ok(());
        }
        if self.flags[pfn as usize] & F_TOUCHED == 0 {
            self.stats.unknown_frees += 1;
            skip(&mut self.skips, "unknown_free");
            return Ok(());
        }
        if self.lost_seen {
            // its mm_page_alloc may be among the events the tracer lost
            skip(&mut self.skips, "free_after_lost_events");
            return Ok(());
        }
        let msg = format!("mm_page_free: double free of pfn {pfn:#x} order {order} (already free in the trace's own history)");
        self.bad("double_free", line_no, msg)
    }

    /// Bookkeeping after a free: a pcp-eligible block now sits on the CPU's list (for the bulk
    /// inference), and its mm_page_free_batched marker may follow.
    fn after_free(&mut self, pfn: u64, order: u8, mt: u8, cpu: u8, ts_us: u32) {
        self.flags[pfn as usize] |= F_AWAIT_BATCHED;
        if order <= 3 || order == 9 {
            self.pcp_enter(pfn, mt, cpu, ts_us, false);
        }
    }

    /// The op log is bounded ([`crate::input::max_trace_ops`]): a trace past it is refused.
    fn too_many_ops(&self, path: &str, line: Option<u64>) -> ReplayError {
        ReplayError::Input(format!(
            "{path}{}: more than {} operations: the trace is longer than this host's memory allows for the replay's op log ({} B per operation, at most half of the available memory; docs/reliability.md, Limits)",
            line.map(|l| format!(":{l}")).unwrap_or_default(),
            self.max_ops,
            std::mem::size_of::<Op>()
        ))
    }

    fn finish(mut self) -> Result<Decoded, ReplayError> {
        // Merge the side list (inferred bulk allocations) into the op stream.
        let mut side = std::mem::take(&mut self.side);
        side.sort_by_key(|(i, _)| *i);
        let mut ops = Vec::with_capacity(self.ops.len() + side.len());
        let mut si = 0;
        for (i, op) in self.ops.iter().enumerate() {
            while si < side.len() && side[si].0 as usize <= i {
                ops.push(side[si].1);
                si += 1;
            }
            ops.push(*op);
        }
        while si < side.len() {
            ops.push(side[si].1);
            si += 1;
        }
        note(&mut self.notes, "pcp_entries_at_end", self.pcp_live);
        for (k, v) in std::mem::take(&mut self.skips) {
            self.stats.skipped.insert(k.to_string(), v);
        }
        let t0 = self.t0.unwrap_or(0);
        self.log.ops = ops;
        self.log.nr_cpus = self.max_cpu as usize + 1;
        self.log.duration_s = self.last_ts_us as f64 / 1e6;
        let markers = self
            .markers
            .iter()
            .map(|(t, s)| ((t.saturating_sub(t0)) as f64 / 1e9, s.clone()))
            .collect();
        Ok(Decoded {
            log: self.log,
            stats: self.stats,
            notes: self.notes,
            real_extfrag: self.extfrag,
            pfn_end: self.pfn_end,
            pfn_min: if self.pfn_min == u64::MAX {
                0
            } else {
                self.pfn_min
            },
            markers,
            first_bad: self
                .first_bad
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        })
    }
}

/// A reader error: bad content (corrupt or truncated compressed data) is bad input, a missing or
/// unreadable file an I/O error.
fn input_err(e: crate::trace::InputError) -> ReplayError {
    if e.is_bad_content() {
        ReplayError::Input(e.to_string())
    } else {
        ReplayError::Io(e.to_string())
    }
}

/// `Some(pfn)` for a `mm_page_free_batched` line in the kernel's own column layout (`%16s-%-7d
/// [%03d] flags ts: `: the CPU column's `[` at byte 25 and the event name right after the first
/// `:` that follows it), `None` for anything else (parsed normally).
#[inline]
fn fast_free_batched(line: &[u8]) -> Option<u64> {
    const NAME: &[u8] = b": mm_page_free_batched: ";
    if line.len() < 40 || line[25] != b'[' {
        return None;
    }
    let c = 30 + memchr::memchr(b':', &line[30..])?;
    if !line[c..].starts_with(NAME) {
        return None;
    }
    let rest = &line[c + NAME.len()..];
    let at = rest.windows(4).position(|w| w == b"pfn=")?;
    let v = &rest[at + 4..];
    let end = v.iter().position(|&b| b == b' ').unwrap_or(v.len());
    let v = &v[..end];
    let pfn = if let Some(h) = v.strip_prefix(b"0x") {
        u64::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()?
    } else {
        std::str::from_utf8(v).ok()?.parse().ok()?
    };
    Some(pfn)
}
