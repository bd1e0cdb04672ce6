//! The hand-written byte-level line parser (no regex, no allocation on the hot path).
//!
//! See the [module documentation of `trace`](super) for the accepted layouts. The parser works in
//! three steps:
//!
//! 1. **Context columns.** Find the first `[` that is preceded by `-<pid>` (optionally followed by
//!    the record-tgid column `(<tgid>)`) and followed by `<digits>]`. Everything before the dash,
//!    minus leading blanks, is the comm (which may contain spaces). After `]` comes an optional
//!    irq-flags column (a token that does not start with a digit) and the timestamp
//!    `<secs>[.<frac>]:`, then the event name up to its `:`.
//! 2. **Event dispatch** on the name: the six kmem page events, `tracing_mark_write` (and
//!    trace-cmd's `print`) as markers, anything else as [`TraceEvent::Other`].
//! 3. **Fields**: the body is split on blanks into `key=value` tokens; tokens without `=` are
//!    ignored (trace-cmd prints `[FAILED TO PARSE]` in front of raw fields), unknown keys are
//!    ignored, required keys that are missing or whose value does not parse are a
//!    [`ParseError`].

use std::collections::HashMap;
use std::fmt;

use super::{EventNameId, GfpTable, Line, SkipReason, TraceEvent, TraceRecord};

/// A line of a known kmem event (or a line with valid context columns) whose content is malformed.
///
/// The caller decides whether to count it and continue or to abort. `Display` gives
/// `line <n>: <message>`; the message names what was expected and what was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number in the input (0 if the caller did not supply line numbers).
    pub line_no: u64,
    /// The event name (`"mm_page_alloc"`, ...) or `"<context>"` for a broken timestamp/name.
    pub event: String,
    /// What was expected and what was found.
    pub message: String,
    /// The offending line (lossy UTF-8, at most 256 bytes).
    pub line: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}: {}: {} (line: {:?})",
            self.line_no, self.event, self.message, self.line
        )
    }
}

impl std::error::Error for ParseError {}

/// The context columns of a trace line, as located by [`split_context`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Context<'a> {
    /// Task comm, leading blanks removed (may contain spaces; `<...>` when not cached).
    pub comm: &'a [u8],
    /// Thread id.
    pub pid: u32,
    /// Thread-group id from the `record-tgid` column, if present and known.
    pub tgid: Option<u32>,
    /// CPU number.
    pub cpu: u32,
    /// The irq-info flags column (`d..1.`), empty when absent.
    pub flags: &'a [u8],
    /// The rest of the line after the CPU (and flags) column: `<ts>: <event>: <body>`.
    pub rest: &'a [u8],
}

/// The parser: holds the gfp-string and other-event-name intern tables.
#[derive(Debug, Default)]
pub struct TraceParser {
    gfp: GfpTable,
    names: NameTable,
}

#[derive(Debug, Default)]
struct NameTable {
    map: HashMap<Box<str>, EventNameId, super::FxBuild>,
    names: Vec<Box<str>>,
}

impl NameTable {
    fn intern(&mut self, s: &str) -> EventNameId {
        if let Some(&id) = self.map.get(s) {
            return id;
        }
        let id = EventNameId(self.names.len() as u32);
        self.names.push(s.into());
        self.map.insert(s.into(), id);
        id
    }
}

#[inline]
fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn lossy_snippet(line: &[u8]) -> String {
    let cut = &line[..line.len().min(256)];
    String::from_utf8_lossy(cut).into_owned()
}

/// Locate the `<comm>-<pid> [(<tgid>)] [<cpu>] [<flags>]` context columns.
///
/// Returns `None` when the line does not have them (then it is not a trace line).
pub fn split_context(line: &[u8]) -> Option<Context<'_>> {
    // The kernel's own layout puts the CPU column at a fixed offset: `%16s-%-7d ` = 25 bytes,
    // plus `(%7d) ` = 10 with record-tgid. Try those first.
    for lb in [25usize, 35] {
        if line.get(lb) == Some(&b'[') {
            if let Some(c) = context_at(line, lb) {
                return Some(c);
            }
        }
    }
    let mut from = 0usize;
    // Bound the search: the context columns are near the start of the line. A comm is at most
    // 15 bytes (plus "<...>") and the padding is small; 128 bytes is generous.
    let limit = line.len().min(128);
    while from < limit {
        let rel = memchr::memchr(b'[', &line[from..limit])?;
        let lb = from + rel;
        if let Some(c) = context_at(line, lb) {
            return Some(c);
        }
        from = lb + 1;
    }
    None
}

/// Try to read the context columns assuming the CPU column's `[` is at `lb`.
fn context_at(line: &[u8], lb: usize) -> Option<Context<'_>> {
    // CPU digits and ']'.
    let mut i = lb + 1;
    let mut cpu: u32 = 0;
    let cpu_start = i;
    while i < line.len() && line[i].is_ascii_digit() {
        cpu = cpu.checked_mul(10)?.checked_add((line[i] - b'0') as u32)?;
        i += 1;
    }
    if i == cpu_start || i >= line.len() || line[i] != b']' {
        return None;
    }
    let after_cpu = i + 1;

    // Walk backwards from '[': blanks (at least one), optional "(tgid)" + blanks, pid digits, '-'.
    let mut j = lb;
    let blanks_end = j;
    while j > 0 && is_blank(line[j - 1]) {
        j -= 1;
    }
    if j == blanks_end {
        return None;
    }
    let mut tgid = None;
    if j > 0 && line[j - 1] == b')' {
        let close = j - 1;
        let lo = close.saturating_sub(24);
        let open = lo + line[lo..close].iter().rposition(|&b| b == b'(')?;
        let inner = trim_blanks(&line[open + 1..close]);
        if inner.is_empty() {
            return None;
        }
        if inner.iter().all(|&b| b == b'-') {
            tgid = None;
        } else {
            tgid = Some(parse_dec_u32(inner)?);
        }
        j = open;
        let e = j;
        while j > 0 && is_blank(line[j - 1]) {
            j -= 1;
        }
        if j == e {
            return None;
        }
    }
    let pid_end = j;
    while j > 0 && line[j - 1].is_ascii_digit() {
        j -= 1;
    }
    if j == pid_end || j == 0 || line[j - 1] != b'-' {
        return None;
    }
    let pid = parse_dec_u32(&line[j..pid_end])?;
    let dash = j - 1;
    let mut cs = 0;
    while cs < dash && is_blank(line[cs]) {
        cs += 1;
    }
    let comm = &line[cs..dash];

    // Forward: blanks, optional flags token (does not start with a digit), blanks.
    let mut k = after_cpu;
    while k < line.len() && is_blank(line[k]) {
        k += 1;
    }
    let mut flags: &[u8] = &[];
    if k < line.len() && !line[k].is_ascii_digit() {
        let fs = k;
        while k < line.len() && !is_blank(line[k]) {
            k += 1;
        }
        flags = &line[fs..k];
        while k < line.len() && is_blank(line[k]) {
            k += 1;
        }
    }
    Some(Context {
        comm,
        pid,
        tgid,
        cpu,
        flags,
        rest: &line[k..],
    })
}

#[inline]
fn trim_blanks(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if is_blank(*first) {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if is_blank(*last) {
            s = rest;
        } else {
            break;
        }
    }
    s
}

/// Parse a non-negative decimal `u32` (1-10 digits, no sign, no blanks).
#[inline]
pub fn parse_dec_u32(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 10 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in s {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + d as u64;
    }
    u32::try_from(v).ok()
}

/// Parse a non-negative decimal `u64`.
#[inline]
pub fn parse_dec_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in s {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(d as u64)?;
    }
    Some(v)
}

/// Parse 1-16 hex digits (no prefix).
#[inline]
pub fn parse_hex_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 16 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in s {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => return None,
        };
        v = (v << 4) | d as u64;
    }
    Some(v)
}

/// A pfn value: `0x<hex>` (kernels >= 4.x print `pfn=0x%lx`) or plain decimal (older `pfn=%lu`).
#[inline]
pub fn parse_pfn(s: &[u8]) -> Option<u64> {
    match s {
        [b'0', b'x' | b'X', hex @ ..] => parse_hex_u64(hex),
        _ => parse_dec_u64(s),
    }
}

/// Parse the timestamp `<secs>[.<frac>]` into nanoseconds. Fractions longer than 9 digits are
/// truncated; a timestamp without a fraction (counter clocks) is returned as is.
#[inline]
pub fn parse_timestamp_ns(s: &[u8]) -> Option<u64> {
    let (secs, frac) = match memchr::memchr(b'.', s) {
        Some(p) => (&s[..p], Some(&s[p + 1..])),
        None => (s, None),
    };
    let secs = parse_dec_u64(secs)?;
    match frac {
        None => Some(secs),
        Some(f) => {
            if f.is_empty() {
                return None;
            }
            let mut ns: u64 = 0;
            for (n, &b) in f.iter().enumerate() {
                let d = b.wrapping_sub(b'0');
                if d > 9 {
                    return None;
                }
                if n < 9 {
                    ns = ns * 10 + d as u64;
                }
            }
            if f.len() < 9 {
                ns *= 10u64.pow(9 - f.len() as u32);
            }
            secs.checked_mul(1_000_000_000)?.checked_add(ns)
        }
    }
}

/// Parse `<secs>[.<frac>]:` at the start of `s`; returns (ns, index of the ':').
#[inline]
fn scan_timestamp(s: &[u8]) -> Option<(u64, usize)> {
    let mut i = 0;
    let mut secs: u64 = 0;
    while i < s.len() {
        let d = s[i].wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        secs = secs.checked_mul(10)?.checked_add(d as u64)?;
        i += 1;
    }
    if i == 0 || i >= s.len() {
        return None;
    }
    if s[i] == b':' {
        return Some((secs, i));
    }
    if s[i] != b'.' {
        return None;
    }
    i += 1;
    let fs = i;
    let mut ns: u64 = 0;
    while i < s.len() {
        let d = s[i].wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        if i - fs < 9 {
            ns = ns * 10 + d as u64;
        }
        i += 1;
    }
    let nd = i - fs;
    if nd == 0 || i >= s.len() || s[i] != b':' {
        return None;
    }
    if nd < 9 {
        ns *= 10u64.pow(9 - nd as u32);
    }
    Some((secs.checked_mul(1_000_000_000)?.checked_add(ns)?, i))
}

/// `key=value` tokens of an event body.
struct Fields<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Fields<'a> {
    type Item = (&'a [u8], &'a [u8]);
    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let s = self.s;
        loop {
            while self.pos < s.len() && is_blank(s[self.pos]) {
                self.pos += 1;
            }
            if self.pos >= s.len() {
                return None;
            }
            let start = self.pos;
            let mut eq = usize::MAX;
            while self.pos < s.len() && !is_blank(s[self.pos]) {
                if s[self.pos] == b'=' && eq == usize::MAX {
                    eq = self.pos;
                }
                self.pos += 1;
            }
            if eq != usize::MAX {
                return Some((&s[start..eq], &s[eq + 1..self.pos]));
            }
            // A token without '=' (e.g. trace-cmd's "[FAILED TO PARSE]"): skip it.
        }
    }
}

/// Fast-path cursor over an event body in the exact kernel layout (`key=value` separated by
/// single spaces, fields in the kernel's order). Any deviation makes the fast path give up and
/// the general [`Fields`] path (with full error reporting) take over.
struct Cur<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Cur<'a> {
    #[inline(always)]
    fn new(body: &'a [u8]) -> Self {
        let mut c = Cur { s: body, i: 0 };
        // Optional leading `page=<ptr> `.
        if body.starts_with(b"page=") {
            match memchr::memchr(b' ', body) {
                Some(sp) => c.i = sp + 1,
                None => c.i = body.len(),
            }
        }
        c
    }
    #[inline(always)]
    fn key(&mut self, k: &[u8]) -> Option<()> {
        if self.s.len() >= self.i + k.len() && &self.s[self.i..self.i + k.len()] == k {
            self.i += k.len();
            Some(())
        } else {
            None
        }
    }
    /// A value ends at a single space (consumed) or at the end of the body.
    #[inline(always)]
    fn value(&mut self) -> &'a [u8] {
        let st = self.i;
        let mut j = st;
        while j < self.s.len() && self.s[j] != b' ' {
            j += 1;
        }
        self.i = if j < self.s.len() { j + 1 } else { j };
        &self.s[st..j]
    }
    #[inline(always)]
    fn hex0x(&mut self) -> Option<u64> {
        self.key(b"0x")?;
        let st = self.i;
        let mut v: u64 = 0;
        let mut j = st;
        while j < self.s.len() {
            let b = self.s[j];
            let d = match b {
                b'0'..=b'9' => b - b'0',
                b'a'..=b'f' => b - b'a' + 10,
                b' ' => break,
                _ => return None,
            };
            v = (v << 4) | d as u64;
            j += 1;
        }
        if j == st || j - st > 16 {
            return None;
        }
        self.i = if j < self.s.len() { j + 1 } else { j };
        Some(v)
    }
    #[inline(always)]
    fn dec(&mut self) -> Option<u32> {
        let st = self.i;
        let mut v: u32 = 0;
        let mut j = st;
        while j < self.s.len() {
            let d = self.s[j].wrapping_sub(b'0');
            if d > 9 {
                if self.s[j] == b' ' {
                    break;
                }
                return None;
            }
            v = v.checked_mul(10)?.checked_add(d as u32)?;
            j += 1;
        }
        if j == st {
            return None;
        }
        self.i = if j < self.s.len() { j + 1 } else { j };
        Some(v)
    }
    #[inline(always)]
    fn done(&self) -> Option<()> {
        (self.i >= self.s.len()).then_some(())
    }
}

/// Builder for error messages of one line.
struct Ctx<'l> {
    line: &'l [u8],
    line_no: u64,
    event: &'static str,
}

impl Ctx<'_> {
    #[cold]
    fn err(&self, message: String) -> ParseError {
        ParseError {
            line_no: self.line_no,
            event: self.event.to_string(),
            message,
            line: lossy_snippet(self.line),
        }
    }
    #[cold]
    fn missing(&self, key: &str) -> ParseError {
        self.err(format!("missing field `{key}=`"))
    }
    #[cold]
    fn bad(&self, key: &str, expected: &str, found: &[u8]) -> ParseError {
        self.err(format!(
            "field `{key}=`: expected {expected}, found `{}`",
            String::from_utf8_lossy(&found[..found.len().min(64)])
        ))
    }
    #[inline]
    fn pfn(&self, key: &str, v: &[u8]) -> Result<u64, ParseError> {
        parse_pfn(v)
            .ok_or_else(|| self.bad(key, "a hex number like 0x1a2b (or a decimal number)", v))
    }
    #[inline]
    fn num(&self, key: &str, v: &[u8]) -> Result<u32, ParseError> {
        parse_dec_u32(v).ok_or_else(|| self.bad(key, "a non-negative decimal integer", v))
    }
    #[inline]
    fn flag(&self, key: &str, v: &[u8]) -> Result<bool, ParseError> {
        parse_dec_u32(v)
            .map(|n| n != 0)
            .ok_or_else(|| self.bad(key, "0 or 1", v))
    }
}

#[inline]
fn req<T>(c: &Ctx<'_>, v: Option<T>, key: &str) -> Result<T, ParseError> {
    match v {
        Some(v) => Ok(v),
        None => Err(c.missing(key)),
    }
}

/// `page=` values that denote NULL: 16 zeros (hashed %p), `(null)`, `(nil)`, `0`, `0x0`.
fn page_is_null(v: &[u8]) -> bool {
    v == b"(null)"
        || v == b"(nil)"
        || (!v.is_empty() && parse_pfn(v) == Some(0))
        || (!v.is_empty() && v.iter().all(|&b| b == b'0'))
}

impl TraceParser {
    /// A parser with empty intern tables.
    pub fn new() -> Self {
        Self::default()
    }

    /// The table of distinct gfp strings seen so far (ids are dense, in first-seen order).
    pub fn gfp_table(&self) -> &GfpTable {
        &self.gfp
    }

    /// The name of an [`TraceEvent::Other`] event.
    pub fn event_name(&self, id: EventNameId) -> &str {
        self.names
            .names
            .get(id.0 as usize)
            .map(|s| &**s)
            .unwrap_or("<unknown id>")
    }

    /// Number of distinct other-event names seen so far (ids are `0..n`).
    pub fn event_name_count(&self) -> usize {
        self.names.names.len()
    }

    /// Parse one line (without or with its trailing `\n`/`\r\n`). `line_no` is only used in
    /// errors. Never panics.
    pub fn parse_line<'a>(&mut self, line: &'a [u8], line_no: u64) -> Result<Line<'a>, ParseError> {
        let mut line = line;
        while let [rest @ .., b'\n' | b'\r'] = line {
            line = rest;
        }
        let ctx = match split_context(line) {
            Some(c) => c,
            None => return Ok(classify_non_trace(line)),
        };
        let hdr_err = |message: String| ParseError {
            line_no,
            event: "<context>".to_string(),
            message,
            line: lossy_snippet(line),
        };
        // Timestamp `<secs>[.<frac>]` directly followed by ':'.
        let rest = ctx.rest;
        let (ts_ns, colon) = match scan_timestamp(rest) {
            Some(t) => t,
            None => {
                let shown = &rest[..rest.len().min(40)];
                return Err(hdr_err(format!(
                    "expected a timestamp `<seconds>.<fraction>:` after the CPU/flags columns, found `{}`",
                    String::from_utf8_lossy(shown)
                )));
            }
        };
        // Event name: blanks, [A-Za-z0-9_]+, ':'.
        let mut p = colon + 1;
        while p < rest.len() && is_blank(rest[p]) {
            p += 1;
        }
        let ns = p;
        while p < rest.len() && rest[p] != b':' {
            p += 1;
        }
        if p == ns || p >= rest.len() {
            return Err(hdr_err(
                "expected an event name followed by `:` after the timestamp".into(),
            ));
        }
        let name_b = &rest[ns..p];
        let known = known_name(name_b);
        if known.is_none()
            && !name_b
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(hdr_err(
                "expected an event name followed by `:` after the timestamp".into(),
            ));
        }
        let name = match known {
            Some(n) => n,
            None => std::str::from_utf8(name_b).unwrap_or(""),
        };
        let mut b = p + 1;
        while b < rest.len() && is_blank(rest[b]) {
            b += 1;
        }
        let body = &rest[b..];

        let mut gfp_text: &[u8] = b"";
        let event = match name_b {
            b"mm_page_alloc"
            | b"mm_page_free"
            | b"mm_page_free_batched"
            | b"mm_page_alloc_zone_locked"
            | b"mm_page_pcpu_drain"
            | b"mm_page_alloc_extfrag" => match self.fast_kmem(name_b, body) {
                Some((ev, g)) => {
                    gfp_text = g;
                    ev
                }
                None => {
                    let (ev, g) = self.slow_kmem(name_b, body, line, line_no)?;
                    gfp_text = g;
                    ev
                }
            },
            b"tracing_mark_write" => TraceEvent::Marker(String::from_utf8_lossy(body).into()),
            b"print" => {
                // trace-cmd shows ftrace's print event as `print: tracing_mark_write: <text>`
                // (older versions) or `print: <ip>: <text>`; keep the text after the prefix.
                let t = body.strip_prefix(b"tracing_mark_write: ").unwrap_or(body);
                TraceEvent::Marker(String::from_utf8_lossy(t).into())
            }
            _ => TraceEvent::Other(self.names.intern(name)),
        };
        Ok(Line::Event(TraceRecord {
            line_no,
            ts_ns,
            cpu: ctx.cpu,
            pid: ctx.pid,
            tgid: ctx.tgid,
            comm: ctx.comm,
            flags: ctx.flags,
            name,
            gfp_text,
            event,
        }))
    }
}

impl TraceParser {
    /// The exact-layout fast path for the kmem events; `None` means "use the slow path".
    #[inline(always)]
    fn fast_kmem<'a>(&mut self, name_b: &[u8], body: &'a [u8]) -> Option<(TraceEvent, &'a [u8])> {
        let mut c = Cur::new(body);
        c.key(b"pfn=")?;
        let pfn = c.hex0x()?;
        let ev = match name_b {
            b"mm_page_alloc" => {
                c.key(b"order=")?;
                let order = c.dec()?;
                c.key(b"migratetype=")?;
                let migratetype = c.dec()?;
                c.key(b"gfp_flags=")?;
                // Most lines repeat the previous gfp string: compare the rest of the body with it
                // before scanning for the end of the value.
                let tail = &c.s[c.i..];
                if let Some((id, last)) = self.gfp.last_entry() {
                    if tail == last.as_bytes() {
                        let pfn = if pfn == 0 { None } else { Some(pfn) };
                        return Some((
                            TraceEvent::Alloc {
                                pfn,
                                order,
                                migratetype,
                                gfp: id,
                            },
                            tail,
                        ));
                    }
                }
                let g = c.value();
                c.done()?;
                if g.is_empty() {
                    return None;
                }
                let pfn = if pfn == 0 { None } else { Some(pfn) };
                return Some((
                    TraceEvent::Alloc {
                        pfn,
                        order,
                        migratetype,
                        gfp: self.gfp.intern(g)?,
                    },
                    g,
                ));
            }
            b"mm_page_free" => {
                c.key(b"order=")?;
                TraceEvent::Free {
                    pfn,
                    order: c.dec()?,
                }
            }
            b"mm_page_free_batched" => {
                c.key(b"order=")?;
                c.dec()?;
                TraceEvent::FreeBatched { pfn }
            }
            b"mm_page_alloc_zone_locked" => {
                c.key(b"order=")?;
                let order = c.dec()?;
                c.key(b"migratetype=")?;
                let migratetype = c.dec()?;
                c.key(b"percpu_refill=")?;
                let percpu_refill = c.dec()? != 0;
                TraceEvent::ZoneLocked {
                    pfn,
                    order,
                    migratetype,
                    percpu_refill,
                }
            }
            b"mm_page_pcpu_drain" => {
                c.key(b"order=")?;
                let order = c.dec()?;
                c.key(b"migratetype=")?;
                let migratetype = c.dec()?;
                TraceEvent::PcpuDrain {
                    pfn,
                    order,
                    migratetype,
                }
            }
            _ => return None,
        };
        c.done()?;
        Some((ev, b""))
    }

    /// The general path: any field order, optional/extra fields, full error reporting.
    #[inline(never)]
    fn slow_kmem<'a>(
        &mut self,
        name_b: &[u8],
        body: &'a [u8],
        line: &[u8],
        line_no: u64,
    ) -> Result<(TraceEvent, &'a [u8]), ParseError> {
        let mut gfp_text: &[u8] = b"";
        let event = match name_b {
            b"mm_page_alloc" => {
                let c = Ctx {
                    line,
                    line_no,
                    event: "mm_page_alloc",
                };
                let (mut pfn, mut order, mut mt, mut gfp, mut page_null) =
                    (None, None, None, None, None);
                for (k, v) in (Fields { s: body, pos: 0 }) {
                    match k {
                        b"pfn" => pfn = Some(c.pfn("pfn", v)?),
                        b"order" => order = Some(c.num("order", v)?),
                        b"migratetype" => mt = Some(c.num("migratetype", v)?),
                        b"gfp_flags" => gfp = Some(v),
                        b"page" => page_null = Some(page_is_null(v)),
                        _ => {}
                    }
                }
                let pfn = match (pfn, page_null) {
                    (Some(0), _) => None,
                    (Some(p), _) => Some(p),
                    (None, Some(true)) => None,
                    (None, _) => return Err(c.missing("pfn")),
                };
                let order = req(&c, order, "order")?;
                let migratetype = req(&c, mt, "migratetype")?;
                let g = req(&c, gfp, "gfp_flags")?;
                if g.is_empty() {
                    return Err(c.bad(
                        "gfp_flags",
                        "a gfp flag string like GFP_KERNEL|__GFP_COMP",
                        g,
                    ));
                }
                let id = match self.gfp.intern(g) {
                    Some(id) => id,
                    None => return Err(c.bad("gfp_flags", "UTF-8 gfp flag names", g)),
                };
                gfp_text = g;
                TraceEvent::Alloc {
                    pfn,
                    order,
                    migratetype,
                    gfp: id,
                }
            }
            b"mm_page_free" => {
                let c = Ctx {
                    line,
                    line_no,
                    event: "mm_page_free",
                };
                let (mut pfn, mut order) = (None, None);
                for (k, v) in (Fields { s: body, pos: 0 }) {
                    match k {
                        b"pfn" => pfn = Some(c.pfn("pfn", v)?),
                        b"order" => order = Some(c.num("order", v)?),
                        _ => {}
                    }
                }
                TraceEvent::Free {
                    pfn: req(&c, pfn, "pfn")?,
                    order: req(&c, order, "order")?,
                }
            }
            b"mm_page_free_batched" => {
                let c = Ctx {
                    line,
                    line_no,
                    event: "mm_page_free_batched",
                };
                let mut pfn = None;
                for (k, v) in (Fields { s: body, pos: 0 }) {
                    match k {
                        b"pfn" => pfn = Some(c.pfn("pfn", v)?),
                        b"order" => {
                            c.num("order", v)?;
                        }
                        _ => {}
                    }
                }
                TraceEvent::FreeBatched {
                    pfn: req(&c, pfn, "pfn")?,
                }
            }
            b"mm_page_alloc_zone_locked" => {
                let c = Ctx {
                    line,
                    line_no,
                    event: "mm_page_alloc_zone_locked",
                };
                let (mut pfn, mut order, mut mt, mut refill) = (None, None, None, None);
                for (k, v) in (Fields { s: body, pos: 0 }) {
                    match k {
                        b"pfn" => pfn = Some(c.pfn("pfn", v)?),
                        b"order" => order = Some(c.num("order", v)?),
                        b"migratetype" => mt = Some(c.num("migratetype", v)?),
                        b"percpu_refill" => refill = Some(c.flag("percpu_refill", v)?),
                        _ => {}
                    }
                }
                TraceEvent::ZoneLocked {
                    pfn: req(&c, pfn, "pfn")?,
                    order: req(&c, order, "order")?,
                    migratetype: req(&c, mt, "migratetype")?,
                    percpu_refill: req(&c, refill, "percpu_refill")?,
                }
            }
            b"mm_page_pcpu_drain" => {
                let c = Ctx {
                    line,
                    line_no,
                    event: "mm_page_pcpu_drain",
                };
                let (mut pfn, mut order, mut mt) = (None, None, None);
                for (k, v) in (Fields { s: body, pos: 0 }) {
                    match k {
                        b"pfn" => pfn = Some(c.pfn("pfn", v)?),
                        b"order" => order = Some(c.num("order", v)?),
                        b"migratetype" => mt = Some(c.num("migratetype", v)?),
                        _ => {}
                    }
                }
                TraceEvent::PcpuDrain {
                    pfn: req(&c, pfn, "pfn")?,
                    order: req(&c, order, "order")?,
                    migratetype: req(&c, mt, "migratetype")?,
                }
            }
            b"mm_page_alloc_extfrag" => {
                let c = Ctx {
                    line,
                    line_no,
                    event: "mm_page_alloc_extfrag",
                };
                let mut pfn = None;
                let mut n: [Option<u32>; 5] = [None; 5];
                let mut fl: [Option<bool>; 2] = [None; 2];
                for (k, v) in (Fields { s: body, pos: 0 }) {
                    match k {
                        b"pfn" => pfn = Some(c.pfn("pfn", v)?),
                        b"alloc_order" => n[0] = Some(c.num("alloc_order", v)?),
                        b"fallback_order" => n[1] = Some(c.num("fallback_order", v)?),
                        b"pageblock_order" => n[2] = Some(c.num("pageblock_order", v)?),
                        b"alloc_migratetype" => n[3] = Some(c.num("alloc_migratetype", v)?),
                        b"fallback_migratetype" => n[4] = Some(c.num("fallback_migratetype", v)?),
                        b"fragmenting" => fl[0] = Some(c.flag("fragmenting", v)?),
                        b"change_ownership" => fl[1] = Some(c.flag("change_ownership", v)?),
                        _ => {}
                    }
                }
                TraceEvent::ExtFrag {
                    pfn: req(&c, pfn, "pfn")?,
                    alloc_order: req(&c, n[0], "alloc_order")?,
                    fallback_order: req(&c, n[1], "fallback_order")?,
                    pageblock_order: req(&c, n[2], "pageblock_order")?,
                    alloc_migratetype: req(&c, n[3], "alloc_migratetype")?,
                    fallback_migratetype: req(&c, n[4], "fallback_migratetype")?,
                    fragmenting: req(&c, fl[0], "fragmenting")?,
                    change_ownership: req(&c, fl[1], "change_ownership")?,
                }
            }
            _ => {
                return Err(ParseError {
                    line_no,
                    event: String::from_utf8_lossy(name_b).into_owned(),
                    message: "not a kmem page event".into(),
                    line: lossy_snippet(line),
                })
            }
        };
        Ok((event, gfp_text))
    }
}

/// The static name of a known event.
#[inline]
fn known_name(b: &[u8]) -> Option<&'static str> {
    Some(match b {
        b"mm_page_alloc" => "mm_page_alloc",
        b"mm_page_free" => "mm_page_free",
        b"mm_page_free_batched" => "mm_page_free_batched",
        b"mm_page_alloc_zone_locked" => "mm_page_alloc_zone_locked",
        b"mm_page_pcpu_drain" => "mm_page_pcpu_drain",
        b"mm_page_alloc_extfrag" => "mm_page_alloc_extfrag",
        b"tracing_mark_write" => "tracing_mark_write",
        _ => return None,
    })
}

/// Only the event name of a trace line (cheap; used by the capture's live counters).
/// Returns `None` for lines that are not trace lines or have no recognisable name.
pub fn event_name_of(line: &[u8]) -> Option<&[u8]> {
    let ctx = split_context(line)?;
    let rest = ctx.rest;
    let colon = memchr::memchr(b':', rest)?;
    let mut p = colon + 1;
    while p < rest.len() && is_blank(rest[p]) {
        p += 1;
    }
    let ns = p;
    while p < rest.len() && (rest[p].is_ascii_alphanumeric() || rest[p] == b'_') {
        p += 1;
    }
    if p == ns || p >= rest.len() || rest[p] != b':' {
        return None;
    }
    Some(&rest[ns..p])
}

/// Classify a line that has no context columns.
fn classify_non_trace(line: &[u8]) -> Line<'static> {
    let t = trim_blanks(line);
    if t.is_empty() {
        return Line::Skipped(SkipReason::Blank);
    }
    if t[0] == b'#' {
        return Line::Skipped(SkipReason::Comment);
    }
    if let Some(rest) = t.strip_prefix(b"CPU:") {
        // trace_pipe: "CPU:1 [LOST 123 EVENTS]"; trace-cmd: "CPU:1 [123 EVENTS DROPPED]".
        let d = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        let cpu = parse_dec_u32(&rest[..d]);
        let tail = &rest[d..];
        if let Some(lb) = memchr::memchr(b'[', tail) {
            let inside = &tail[lb + 1..];
            let inside = inside.strip_prefix(b"LOST ").unwrap_or(inside);
            if memchr::memmem::find(inside, b"EVENTS").is_some() {
                let nd = inside.iter().take_while(|b| b.is_ascii_digit()).count();
                let events = parse_dec_u64(&inside[..nd]);
                return Line::Lost { cpu, events };
            }
        }
        return Line::Skipped(SkipReason::TraceCmdHeader);
    }
    if t.starts_with(b"cpus=") || t.starts_with(b"CPU") || t.starts_with(b"version") {
        return Line::Skipped(SkipReason::TraceCmdHeader);
    }
    Line::Skipped(SkipReason::Unrecognized)
}
