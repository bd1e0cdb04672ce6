//! A native reader for trace-cmd's binary `trace.dat` files (file versions 6 and 7), yielding the
//! same [`Line`]s as the text parser so that the replay consumes both.
//!
//! * **File header**: magic `17 08 44 "tracing"`, the version string, endianness, long size,
//!   page size; v7 adds the compression algorithm (`zstd` or `none`) and the offset of the first
//!   options section.
//! * **v7 sections** (`id, flags, string id, size`; flag 1 = compressed: `csize, usize, data`):
//!   options (0; chained through the DONE option's next offset), header info (16: `header_page`
//!   and `header_event` formats), ftrace event formats (17), event formats (18), saved command
//!   lines (21). `BUFFER` options (3) give each instance's clock, page size and per-CPU data
//!   offset and size; compressed per-CPU data is a chunk count followed by `csize, usize, data`
//!   chunks of whole pages.
//! * **v6**: the same metadata in a fixed order, then `options  \0`, then `flyrecord\0` with
//!   per-CPU `offset, size` pairs (instance buffers: a `BUFFER` option pointing at another such
//!   table).
//! * **Events**: field offsets come from the format text stored in the file (never hard-coded):
//!   `kmem:mm_page_alloc`, `mm_page_free`, `mm_page_free_batched`, `mm_page_alloc_zone_locked`,
//!   `mm_page_pcpu_drain`, `mm_page_alloc_extfrag`, `ftrace:print` (trace_marker writes, e.g.
//!   `PHASE stress_end`); anything else is [`TraceEvent::Other`]. `gfp_flags` is a number in the
//!   record; it is rendered with the `__print_flags` table of the event's own print fmt, exactly
//!   as `trace-cmd report` prints it, and interned like the text parser's gfp strings.
//! * **Order**: each CPU's pages are decoded in order (time deltas, time extends, absolute
//!   timestamps, padding) and the CPUs are merged by timestamp (ties: lowest CPU first, as
//!   trace-cmd does). A page whose commit word has the missed-events bit yields a
//!   [`Line::Lost`] (with the stored count when the kernel stored it) before its first event.
//!
//! Bad input is a [`DatError`] naming the file, the byte offset (or section) and what was
//! expected; nothing in here panics on any input. A record too short for its event's fields is a
//! non-fatal error (the reader can go on, like a text parse error); everything else is fatal.

pub mod format;
mod ring;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use spb_alloc::Pfn;

use super::{EventNameId, FxBuild, GfpTable, Line, TraceEvent, TraceRecord};
pub use format::{EventFormat, Field};
use ring::{CpuStream, Item, PageGeom};

/// The first bytes of every trace-cmd file.
pub const MAGIC: [u8; 10] = [0x17, 0x08, 0x44, b't', b'r', b'a', b'c', b'i', b'n', b'g'];

/// Metadata sections larger than this are corrupt rather than a reason to allocate.
const MAX_META_BYTES: u64 = 1 << 30;

/// Whether `head` starts like a trace-cmd `.dat` file.
pub fn is_dat(head: &[u8]) -> bool {
    head.starts_with(&MAGIC)
}

/// Byte order of the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endian {
    /// 0 in the header.
    Little,
    /// 1 in the header.
    Big,
}

impl Endian {
    #[inline]
    fn u16(self, b: &[u8]) -> u16 {
        let a = [b[0], b[1]];
        match self {
            Endian::Little => u16::from_le_bytes(a),
            Endian::Big => u16::from_be_bytes(a),
        }
    }
    #[inline]
    fn u32(self, b: &[u8]) -> u32 {
        let a = [b[0], b[1], b[2], b[3]];
        match self {
            Endian::Little => u32::from_le_bytes(a),
            Endian::Big => u32::from_be_bytes(a),
        }
    }
    #[inline]
    fn u64(self, b: &[u8]) -> u64 {
        let a = [b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]];
        match self {
            Endian::Little => u64::from_le_bytes(a),
            Endian::Big => u64::from_be_bytes(a),
        }
    }
}

/// A `.dat` file that cannot be read: the file, where, and what was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatError {
    /// The file.
    pub path: String,
    /// Byte offset in the file (of the section, page or chunk being read).
    pub offset: u64,
    /// What was expected and what was found.
    pub message: String,
    /// Only this record is bad (its event's fields do not fit it); the reader can go on.
    pub record_only: bool,
    /// The file could not be opened or read (I/O), as opposed to bad content.
    pub io: bool,
}

impl DatError {
    fn new(path: &str, offset: u64, message: String) -> DatError {
        DatError {
            path: path.to_string(),
            offset,
            message,
            record_only: false,
            io: false,
        }
    }
}

impl fmt::Display for DatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: trace-cmd data at offset {}: {}",
            self.path, self.offset, self.message
        )
    }
}

impl std::error::Error for DatError {}

/// One buffer (instance) of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BufferInfo {
    /// Instance name (`""` = the top-level buffer).
    pub name: String,
    /// Trace clock (`local`, `mono`, ...).
    pub clock: String,
    /// Ring-buffer page size.
    pub page_size: u32,
    /// `(cpu, file offset, bytes in the file)`.
    pub cpus: Vec<(u32, u64, u64)>,
    /// Whether the per-CPU data is zstd-chunked.
    pub compressed: bool,
}

impl BufferInfo {
    /// Bytes of data in the file over all CPUs.
    pub fn data_bytes(&self) -> u64 {
        // saturating: the sizes are the file's word, checked only when the data is read
        self.cpus.iter().fold(0, |a, c| a.saturating_add(c.2))
    }
}

/// The metadata of a `.dat` file.
#[derive(Clone, Debug)]
pub struct DatFile {
    /// The file.
    pub path: PathBuf,
    /// 6 or 7.
    pub version: u32,
    /// Byte order.
    pub endian: Endian,
    /// User-space long size (4 or 8).
    pub long_size: u8,
    /// Host page size.
    pub page_size: u32,
    /// Compression algorithm (`none` for v6).
    pub compression: String,
    /// Page geometry from `header_page`.
    geom: PageGeom,
    /// Kernel long size, from the `commit` field of `header_page`.
    pub kernel_long: u8,
    /// Event formats by id.
    pub events: HashMap<u16, EventFormat>,
    /// Buffers with their per-CPU data.
    pub buffers: Vec<BufferInfo>,
    /// pid → comm from the saved command lines.
    pub cmdlines: HashMap<u32, Box<[u8]>>,
    /// Options seen, by id (for diagnostics).
    pub options_seen: BTreeMap<u16, u32>,
}

/// A bounded cursor over an in-memory byte slice with error context.
struct Cur<'a> {
    b: &'a [u8],
    i: usize,
    e: Endian,
    path: &'a str,
    base: u64,
    what: &'a str,
}

impl<'a> Cur<'a> {
    fn err(&self, msg: String) -> DatError {
        DatError::new(
            self.path,
            self.base + self.i as u64,
            format!("{}: {msg}", self.what),
        )
    }
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], DatError> {
        match self.i.checked_add(n) {
            Some(e) if e <= self.b.len() => {
                let s = &self.b[self.i..e];
                self.i = e;
                Ok(s)
            }
            _ => Err(self.err(format!(
                "expected {what} ({n} bytes), but only {} bytes are left",
                self.b.len() - self.i
            ))),
        }
    }
    fn u16(&mut self, what: &str) -> Result<u16, DatError> {
        let e = self.e;
        Ok(e.u16(self.take(2, what)?))
    }
    fn u32(&mut self, what: &str) -> Result<u32, DatError> {
        let e = self.e;
        Ok(e.u32(self.take(4, what)?))
    }
    fn u64(&mut self, what: &str) -> Result<u64, DatError> {
        let e = self.e;
        Ok(e.u64(self.take(8, what)?))
    }
    fn cstr(&mut self, what: &str) -> Result<String, DatError> {
        let rest = &self.b[self.i..];
        let n = memchr::memchr(0, rest)
            .ok_or_else(|| self.err(format!("expected {what} (a NUL-terminated string)")))?;
        let s = String::from_utf8_lossy(&rest[..n]).into_owned();
        self.i += n + 1;
        Ok(s)
    }
    /// A `u64`/`u32` size followed by that many bytes.
    fn sized(&mut self, size_bytes: usize, what: &str) -> Result<&'a [u8], DatError> {
        let n = if size_bytes == 8 {
            self.u64(what)?
        } else {
            self.u32(what)? as u64
        };
        if n > (self.b.len() - self.i) as u64 {
            return Err(self.err(format!(
                "{what}: size {n} is larger than the {} bytes left",
                self.b.len() - self.i
            )));
        }
        self.take(n as usize, what)
    }
}

fn read_at(file: &File, path: &str, off: u64, n: u64, what: &str) -> Result<Vec<u8>, DatError> {
    if n > MAX_META_BYTES {
        return Err(DatError::new(
            path,
            off,
            format!("{what}: size {n}: expected at most {MAX_META_BYTES} bytes"),
        ));
    }
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if off.saturating_add(n) > len {
        return Err(DatError::new(
            path,
            off,
            format!("expected {what} ({n} bytes), but the file ends at {len} (truncated?)"),
        ));
    }
    let mut v = vec![0u8; n as usize];
    file.read_exact_at(&mut v, off).map_err(|e| {
        let mut d = DatError::new(path, off, format!("reading {what}: {e}"));
        d.io = true;
        d
    })?;
    Ok(v)
}

fn zstd_decompress(
    data: &[u8],
    usize_: u32,
    path: &str,
    off: u64,
    what: &str,
) -> Result<Vec<u8>, DatError> {
    if usize_ as u64 > MAX_META_BYTES.min(4096 * (data.len() as u64 + 64)) {
        return Err(DatError::new(
            path,
            off,
            format!("{what}: uncompressed size {usize_}: expected at most {MAX_META_BYTES}"),
        ));
    }
    let v = zstd::bulk::decompress(data, usize_ as usize)
        .map_err(|e| DatError::new(path, off, format!("{what}: corrupt zstd data: {e}")))?;
    if v.len() != usize_ as usize {
        return Err(DatError::new(
            path,
            off,
            format!(
                "{what}: decompressed to {} bytes, expected {usize_}",
                v.len()
            ),
        ));
    }
    Ok(v)
}

/// Option ids (trace-cmd.h).
mod opt {
    pub const DONE: u16 = 0;
    pub const BUFFER: u16 = 3;
    pub const HEADER_INFO: u16 = 16;
    pub const FTRACE_EVENTS: u16 = 17;
    pub const EVENT_FORMATS: u16 = 18;
    pub const CMDLINES: u16 = 21;
}

impl DatFile {
    /// Read the metadata of a `.dat` file.
    pub fn open(path: impl AsRef<Path>) -> Result<DatFile, DatError> {
        let path = path.as_ref();
        let ps = path.display().to_string();
        let file = File::open(path).map_err(|e| {
            let mut d = DatError::new(&ps, 0, format!("cannot open: {e}"));
            d.io = true;
            d
        })?;
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let head = read_at(&file, &ps, 0, len.min(4096), "the file header")?;
        if !is_dat(&head) {
            return Err(DatError::new(
                &ps,
                0,
                "expected the trace-cmd magic 17 08 44 \"tracing\"".to_string(),
            ));
        }
        let mut c = Cur {
            b: &head,
            i: 10,
            e: Endian::Little,
            path: &ps,
            base: 0,
            what: "file header",
        };
        let vs = c.cstr("the version string")?;
        let version: u32 = vs
            .parse()
            .map_err(|_| c.err(format!("version {vs:?}: expected a number")))?;
        if version != 6 && version != 7 {
            return Err(c.err(format!("file version {version}: expected 6 or 7")));
        }
        let endian = match c.take(1, "the endianness byte")?[0] {
            0 => Endian::Little,
            1 => Endian::Big,
            x => return Err(c.err(format!("endianness {x}: expected 0 or 1"))),
        };
        c.e = endian;
        let long_size = c.take(1, "the long size")?[0];
        if long_size != 4 && long_size != 8 {
            return Err(c.err(format!("long size {long_size}: expected 4 or 8")));
        }
        let page_size = c.u32("the page size")?;
        if !(512..=(1 << 20)).contains(&page_size) || !page_size.is_power_of_two() {
            return Err(c.err(format!(
                "page size {page_size}: expected a power of two between 512 and 1 MiB"
            )));
        }
        let mut d = DatFile {
            path: path.to_path_buf(),
            version,
            endian,
            long_size,
            page_size,
            compression: "none".to_string(),
            geom: PageGeom {
                page_size: page_size as usize,
                commit_offset: 8,
                commit_size: 8,
                data_offset: 16,
            },
            kernel_long: 8,
            events: HashMap::new(),
            buffers: Vec::new(),
            cmdlines: HashMap::new(),
            options_seen: BTreeMap::new(),
        };
        let mut have_header = false;
        if version == 7 {
            let name = c.cstr("the compression algorithm name")?;
            let _ver = c.cstr("the compression algorithm version")?;
            if name != "none" && name != "zstd" {
                return Err(c.err(format!(
                    "compression {name:?}: expected \"zstd\" or \"none\" (other algorithms are not supported)"
                )));
            }
            d.compression = name;
            let first = c.u64("the offset of the first options section")?;
            d.read_v7(&file, &ps, first, &mut have_header)?;
        } else {
            let off = c.i as u64;
            d.read_v6(&file, &ps, off, len, &mut have_header)?;
        }
        if !have_header {
            return Err(DatError::new(
                &ps,
                0,
                "no header_page section: expected the ring-buffer page format".to_string(),
            ));
        }
        for b in &mut d.buffers {
            if b.page_size == 0 {
                b.page_size = page_size;
            }
        }
        Ok(d)
    }

    fn parse_header_page(&mut self, text: &str, ps: &str, off: u64) -> Result<(), DatError> {
        let mut fields = HashMap::new();
        for line in text.lines() {
            if let Some(rest) = line.trim().strip_prefix("field:") {
                if let Some(f) =
                    format::parse_format("header", &format!("name: h\nID: 0\nfield:{rest}"))
                        .ok()
                        .and_then(|e| e.fields.into_iter().next())
                {
                    fields.insert(f.name.clone(), f);
                }
            }
        }
        let (Some(commit), Some(data)) = (fields.get("commit"), fields.get("data")) else {
            return Err(DatError::new(
                ps,
                off,
                "header_page: expected `commit` and `data` fields".to_string(),
            ));
        };
        let ts_ok = fields
            .get("timestamp")
            .is_some_and(|t| t.offset == 0 && t.size == 8);
        let pg = self.page_size as usize;
        if !ts_ok
            || !(commit.size == 4 || commit.size == 8)
            || commit.offset + commit.size > data.offset
            || data.offset >= pg
        {
            return Err(DatError::new(
                ps,
                off,
                format!(
                    "header_page: timestamp at 0 (8 bytes), commit at {} ({} bytes), data at {}: expected a u64 timestamp at 0 and 4/8-byte commit before the data, inside a {pg}-byte page",
                    commit.offset, commit.size, data.offset
                ),
            ));
        }
        self.geom.commit_offset = commit.offset;
        self.geom.commit_size = commit.size;
        self.geom.data_offset = data.offset;
        self.kernel_long = commit.size as u8;
        Ok(())
    }

    /// `header_page\0 size data header_event\0 size data`.
    fn parse_header_info(&mut self, b: &[u8], ps: &str, off: u64) -> Result<(), DatError> {
        let mut c = Cur {
            b,
            i: 0,
            e: self.endian,
            path: ps,
            base: off,
            what: "header info",
        };
        let tag = c.take(12, "\"header_page\\0\"")?;
        if tag != b"header_page\0" {
            return Err(c.err("expected the string \"header_page\"".to_string()));
        }
        let hp = c.sized(8, "the header_page format")?;
        let tag = c.take(13, "\"header_event\\0\"")?;
        if tag != b"header_event\0" {
            return Err(c.err("expected the string \"header_event\"".to_string()));
        }
        let _he = c.sized(8, "the header_event format")?;
        let text = String::from_utf8_lossy(hp).into_owned();
        self.parse_header_page(&text, ps, off)
    }

    fn add_format(
        &mut self,
        system: &str,
        text: &[u8],
        ps: &str,
        off: u64,
    ) -> Result<(), DatError> {
        let t = String::from_utf8_lossy(text);
        let f = format::parse_format(system, &t).map_err(|m| {
            DatError::new(ps, off, format!("event format of system {system:?}: {m}"))
        })?;
        self.events.insert(f.id, f);
        Ok(())
    }

    fn parse_ftrace_events(&mut self, b: &[u8], ps: &str, off: u64) -> Result<(), DatError> {
        let mut c = Cur {
            b,
            i: 0,
            e: self.endian,
            path: ps,
            base: off,
            what: "ftrace event formats",
        };
        let n = c.u32("the number of ftrace event formats")?;
        for _ in 0..n {
            let t = c.sized(8, "an ftrace event format")?;
            self.add_format("ftrace", t, ps, off)?;
        }
        Ok(c.i as u64).map(|_| ())
    }

    fn parse_event_formats(&mut self, b: &[u8], ps: &str, off: u64) -> Result<usize, DatError> {
        let mut c = Cur {
            b,
            i: 0,
            e: self.endian,
            path: ps,
            base: off,
            what: "event formats",
        };
        let n = c.u32("the number of event systems")?;
        for _ in 0..n {
            let sys = c.cstr("a system name")?;
            let k = c.u32("the number of events of the system")?;
            for _ in 0..k {
                let t = c.sized(8, "an event format")?;
                self.add_format(&sys, t, ps, off)?;
            }
        }
        Ok(c.i)
    }

    fn parse_cmdlines(&mut self, text: &[u8]) {
        for line in text.split(|&b| b == b'\n') {
            let Some(sp) = line.iter().position(|&b| b == b' ') else {
                continue;
            };
            if let Some(pid) = super::parse::parse_dec_u32(&line[..sp]) {
                self.cmdlines.insert(pid, line[sp + 1..].into());
            }
        }
    }

    /// A v7 section at `off`: (id, content) with the content decompressed.
    fn section(&self, file: &File, ps: &str, off: u64) -> Result<(u16, Vec<u8>), DatError> {
        let h = read_at(
            file,
            ps,
            off,
            16,
            "a section header (id, flags, string id, size)",
        )?;
        let e = self.endian;
        let id = e.u16(&h[0..2]);
        let flags = e.u16(&h[2..4]);
        let size = e.u64(&h[8..16]);
        let body = read_at(
            file,
            ps,
            off + 16,
            size,
            &format!("the content of section {id}"),
        )?;
        if flags & 1 != 0 {
            if self.compression != "zstd" {
                return Err(DatError::new(
                    ps,
                    off,
                    format!(
                        "section {id} is flagged compressed but the file's compression is {:?}",
                        self.compression
                    ),
                ));
            }
            if body.len() < 8 {
                return Err(DatError::new(
                    ps,
                    off,
                    format!("compressed section {id}: expected a size header (8 bytes)"),
                ));
            }
            let cs = e.u32(&body[0..4]) as usize;
            let us = e.u32(&body[4..8]);
            if cs > body.len() - 8 {
                return Err(DatError::new(
                    ps,
                    off,
                    format!(
                        "compressed section {id}: compressed size {cs} is larger than the section ({} bytes)",
                        body.len() - 8
                    ),
                ));
            }
            let v = zstd_decompress(&body[8..8 + cs], us, ps, off, &format!("section {id}"))?;
            return Ok((id, v));
        }
        Ok((id, body))
    }

    fn expect_section(
        &self,
        file: &File,
        ps: &str,
        off: u64,
        want: u16,
        what: &str,
    ) -> Result<Vec<u8>, DatError> {
        let (id, b) = self.section(file, ps, off)?;
        if id != want {
            return Err(DatError::new(
                ps,
                off,
                format!("expected the {what} section (id {want}), found section id {id}"),
            ));
        }
        Ok(b)
    }

    fn read_v7(
        &mut self,
        file: &File,
        ps: &str,
        first: u64,
        have_header: &mut bool,
    ) -> Result<(), DatError> {
        let mut visited = HashSet::new();
        let mut next = first;
        let mut fly_sections: Vec<(u64, BufferInfo)> = Vec::new();
        while next != 0 {
            if !visited.insert(next) || visited.len() > 10_000 {
                return Err(DatError::new(
                    ps,
                    next,
                    "options sections form a loop: expected a chain ending in offset 0".to_string(),
                ));
            }
            let off = next;
            let body = self.expect_section(file, ps, off, 0, "options")?;
            next = 0;
            let mut c = Cur {
                b: &body,
                i: 0,
                e: self.endian,
                path: ps,
                base: off,
                what: "options section",
            };
            let mut done = false;
            while c.i < body.len() {
                let id = c.u16("an option id")?;
                let data = c.sized(4, "an option's data")?;
                *self.options_seen.entry(id).or_default() += 1;
                let mut oc = Cur {
                    b: data,
                    i: 0,
                    e: self.endian,
                    path: ps,
                    base: off,
                    what: "option",
                };
                match id {
                    opt::DONE => {
                        next = oc.u64("the next options section offset of DONE")?;
                        done = true;
                        break;
                    }
                    opt::HEADER_INFO => {
                        let o = oc.u64("the HEADER_INFO section offset")?;
                        let b = self.expect_section(file, ps, o, 16, "header info")?;
                        self.parse_header_info(&b, ps, o)?;
                        *have_header = true;
                    }
                    opt::FTRACE_EVENTS => {
                        let o = oc.u64("the FTRACE_EVENTS section offset")?;
                        let b = self.expect_section(file, ps, o, 17, "ftrace event formats")?;
                        self.parse_ftrace_events(&b, ps, o)?;
                    }
                    opt::EVENT_FORMATS => {
                        let o = oc.u64("the EVENT_FORMATS section offset")?;
                        let b = self.expect_section(file, ps, o, 18, "event formats")?;
                        self.parse_event_formats(&b, ps, o)?;
                    }
                    opt::CMDLINES => {
                        let o = oc.u64("the CMDLINES section offset")?;
                        let b = self.expect_section(file, ps, o, 21, "saved command lines")?;
                        let mut cc = Cur {
                            b: &b,
                            i: 0,
                            e: self.endian,
                            path: ps,
                            base: o,
                            what: "saved command lines",
                        };
                        let t = cc.sized(8, "the command lines")?;
                        self.parse_cmdlines(t);
                    }
                    opt::BUFFER => {
                        let o = oc.u64("the BUFFER's flyrecord section offset")?;
                        let name = oc.cstr("the buffer name")?;
                        let clock = oc.cstr("the buffer's trace clock")?;
                        let page_size = oc.u32("the buffer's page size")?;
                        let n = oc.u32("the buffer's CPU count")?;
                        if n as usize > data.len() / 20 + 1 {
                            return Err(oc.err(format!("CPU count {n} does not fit the option")));
                        }
                        let mut cpus = Vec::new();
                        for _ in 0..n {
                            let cpu = oc.u32("a CPU id")?;
                            let co = oc.u64("a CPU data offset")?;
                            let cs = oc.u64("a CPU data size")?;
                            cpus.push((cpu, co, cs));
                        }
                        fly_sections.push((
                            o,
                            BufferInfo {
                                name,
                                clock,
                                page_size,
                                cpus,
                                compressed: false,
                            },
                        ));
                    }
                    _ => {}
                }
            }
            if !done {
                return Err(DatError::new(
                    ps,
                    off,
                    "options section without a DONE option: expected it as the last option"
                        .to_string(),
                ));
            }
        }
        for (o, mut b) in fly_sections {
            // the flyrecord section header says whether the CPU data is compressed
            let h = read_at(file, ps, o, 16, "a flyrecord section header")?;
            let id = self.endian.u16(&h[0..2]);
            let flags = self.endian.u16(&h[2..4]);
            if id != opt::BUFFER {
                return Err(DatError::new(
                    ps,
                    o,
                    format!("expected a buffer flyrecord section (id 3), found section id {id}"),
                ));
            }
            b.compressed = flags & 1 != 0;
            if b.compressed && self.compression != "zstd" {
                return Err(DatError::new(
                    ps,
                    o,
                    format!(
                        "flyrecord section flagged compressed, but the file's compression is {:?}",
                        self.compression
                    ),
                ));
            }
            self.buffers.push(b);
        }
        Ok(())
    }

    fn read_v6(
        &mut self,
        file: &File,
        ps: &str,
        start: u64,
        len: u64,
        have_header: &mut bool,
    ) -> Result<(), DatError> {
        // The metadata is small next to the data; read up to 64 MiB of it (kallsyms included).
        let n = (len - start).min(64 << 20);
        let meta = read_at(file, ps, start, n, "the v6 metadata")?;
        let mut c = Cur {
            b: &meta,
            i: 0,
            e: self.endian,
            path: ps,
            base: start,
            what: "v6 metadata",
        };
        let hdr_start = c.i;
        let _ = c.take(12, "\"header_page\\0\"")?;
        let _ = c.sized(8, "the header_page format")?;
        let _ = c.take(13, "\"header_event\\0\"")?;
        let _ = c.sized(8, "the header_event format")?;
        let hi = &meta[hdr_start..c.i];
        self.parse_header_info(hi, ps, start + hdr_start as u64)?;
        *have_header = true;
        let fe_start = c.i;
        let nf = c.u32("the number of ftrace event formats")?;
        for _ in 0..nf {
            let _ = c.sized(8, "an ftrace event format")?;
        }
        self.parse_ftrace_events(&meta[fe_start..c.i], ps, start + fe_start as u64)?;
        let ev_start = c.i;
        let used = self.parse_event_formats(&meta[ev_start..], ps, start + ev_start as u64)?;
        c.i += used;
        let _kallsyms = c.sized(4, "kallsyms")?;
        let _printk = c.sized(4, "printk formats")?;
        let cmd = c.sized(8, "saved command lines")?;
        self.parse_cmdlines(cmd);
        let ncpus = c.u32("the CPU count")?;
        if ncpus > 65536 {
            return Err(c.err(format!("CPU count {ncpus}: expected at most 65536")));
        }
        let mut instance_offsets: Vec<(String, u64)> = Vec::new();
        let mut tag = c.take(10, "\"options  \\0\" or \"flyrecord\\0\"")?;
        if tag == b"options  \0" {
            loop {
                let id = c.u16("an option id")?;
                if id == opt::DONE {
                    break;
                }
                let data = c.sized(4, "an option's data")?;
                *self.options_seen.entry(id).or_default() += 1;
                if id == opt::BUFFER {
                    let mut oc = Cur {
                        b: data,
                        i: 0,
                        e: self.endian,
                        path: ps,
                        base: start,
                        what: "BUFFER option",
                    };
                    let o = oc.u64("the buffer's data offset")?;
                    let name = oc.cstr("the buffer name")?;
                    instance_offsets.push((name, o));
                }
            }
            tag = c.take(10, "\"flyrecord\\0\"")?;
        }
        if tag != b"flyrecord\0" {
            return Err(c.err(format!(
                "expected \"flyrecord\" (latency traces are not supported), found {:?}",
                String::from_utf8_lossy(tag)
            )));
        }
        let mut cpus = Vec::new();
        for cpu in 0..ncpus {
            let o = c.u64("a CPU data offset")?;
            let s = c.u64("a CPU data size")?;
            cpus.push((cpu, o, s));
        }
        self.buffers.push(BufferInfo {
            name: String::new(),
            clock: String::new(),
            page_size: self.page_size,
            cpus,
            compressed: false,
        });
        for (name, o) in instance_offsets {
            let t = read_at(
                file,
                ps,
                o,
                ncpus as u64 * 16,
                "an instance's CPU data table",
            )?;
            let mut tc = Cur {
                b: &t,
                i: 0,
                e: self.endian,
                path: ps,
                base: o,
                what: "instance CPU data table",
            };
            let mut cpus = Vec::new();
            for cpu in 0..ncpus {
                let co = tc.u64("a CPU data offset")?;
                let cs = tc.u64("a CPU data size")?;
                cpus.push((cpu, co, cs));
            }
            self.buffers.push(BufferInfo {
                name,
                clock: String::new(),
                page_size: self.page_size,
                cpus,
                compressed: false,
            });
        }
        Ok(())
    }

    /// The buffer to replay: the one named `name`, else the one with the most data.
    pub fn pick_buffer(&self, name: Option<&str>) -> Result<&BufferInfo, DatError> {
        let ps = self.path.display().to_string();
        match name {
            Some(n) => self.buffers.iter().find(|b| b.name == n).ok_or_else(|| {
                DatError::new(
                    &ps,
                    0,
                    format!(
                        "no buffer named {n:?}: expected one of {:?}",
                        self.buffers.iter().map(|b| &b.name).collect::<Vec<_>>()
                    ),
                )
            }),
            None => self
                .buffers
                .iter()
                .max_by_key(|b| (b.data_bytes(), std::cmp::Reverse(b.name.clone())))
                .ok_or_else(|| {
                    DatError::new(&ps, 0, "no flyrecord buffer in the file".to_string())
                }),
        }
    }
}

/// What an event id is, with its field layout resolved.
#[derive(Clone, Debug)]
enum Kind {
    Alloc {
        pfn: Field,
        order: Field,
        mt: Field,
        gfp: Field,
        flags: Vec<(u64, String)>,
    },
    Free {
        pfn: Field,
        order: Field,
    },
    FreeBatched {
        pfn: Field,
    },
    ZoneLocked {
        pfn: Field,
        order: Field,
        mt: Field,
        refill: Field,
    },
    PcpuDrain {
        pfn: Field,
        order: Field,
        mt: Field,
    },
    ExtFrag {
        pfn: Field,
        ao: Field,
        fo: Field,
        am: Field,
        fm: Field,
        own: Field,
        pageblock_order: u32,
    },
    Print {
        buf: Field,
    },
    Other(EventNameId),
    /// A kmem event whose format lacks a field we need: every record is a record error.
    Broken(String),
}

fn need(f: &EventFormat, name: &str) -> Result<Field, String> {
    f.field(name)
        .cloned()
        .ok_or_else(|| format!("{}:{}: the format has no `{name}` field", f.system, f.name))
}

fn resolve(f: &EventFormat, names: &mut Vec<Box<str>>) -> Kind {
    let r = (|| -> Result<Kind, String> {
        Ok(match (f.system.as_str(), f.name.as_str()) {
            (_, "mm_page_alloc") => Kind::Alloc {
                pfn: need(f, "pfn")?,
                order: need(f, "order")?,
                mt: need(f, "migratetype")?,
                gfp: need(f, "gfp_flags")?,
                flags: format::print_flags_table(&f.print_fmt).ok_or_else(|| {
                    format!(
                        "{}:{}: no __print_flags table for gfp_flags in its print fmt",
                        f.system, f.name
                    )
                })?,
            },
            (_, "mm_page_free") => Kind::Free {
                pfn: need(f, "pfn")?,
                order: need(f, "order")?,
            },
            (_, "mm_page_free_batched") => Kind::FreeBatched {
                pfn: need(f, "pfn")?,
            },
            (_, "mm_page_alloc_zone_locked") => Kind::ZoneLocked {
                pfn: need(f, "pfn")?,
                order: need(f, "order")?,
                mt: need(f, "migratetype")?,
                refill: need(f, "percpu_refill")?,
            },
            (_, "mm_page_pcpu_drain") => Kind::PcpuDrain {
                pfn: need(f, "pfn")?,
                order: need(f, "order")?,
                mt: need(f, "migratetype")?,
            },
            (_, "mm_page_alloc_extfrag") => {
                // pageblock_order is a constant expression in the print fmt (5th argument)
                let args = format::print_args(&f.print_fmt);
                let pbo = args
                    .get(4)
                    .and_then(|a| format::eval(a).ok())
                    .filter(|v| (0..=20).contains(v))
                    .unwrap_or(9) as u32;
                Kind::ExtFrag {
                    pfn: need(f, "pfn")?,
                    ao: need(f, "alloc_order")?,
                    fo: need(f, "fallback_order")?,
                    am: need(f, "alloc_migratetype")?,
                    fm: need(f, "fallback_migratetype")?,
                    own: need(f, "change_ownership")?,
                    pageblock_order: pbo,
                }
            }
            ("ftrace", "print") => Kind::Print {
                buf: need(f, "buf")?,
            },
            _ => {
                let id = EventNameId(names.len() as u32);
                names.push(f.name.as_str().into());
                Kind::Other(id)
            }
        })
    })();
    r.unwrap_or_else(Kind::Broken)
}

/// Streams the events of one buffer of a `.dat` file, merged across CPUs by timestamp, as
/// [`Line`]s.
pub struct DatReader {
    info: DatFile,
    path: String,
    buffer: String,
    cpus: Vec<CpuStream>,
    kinds: HashMap<u16, Kind, FxBuild>,
    gfp: GfpTable,
    gfp_ids: HashMap<u64, super::GfpId, FxBuild>,
    names: Vec<Box<str>>,
    records: u64,
    common_pid: Field,
    endian: Endian,
    unknown: Box<[u8]>,
    /// Record ids seen that have no format in the file.
    pub unknown_ids: u64,
}

impl std::fmt::Debug for DatReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatReader")
            .field("path", &self.path)
            .field("buffer", &self.buffer)
            .field("records", &self.records)
            .finish()
    }
}

impl DatReader {
    /// Open a `.dat` file and its largest buffer.
    pub fn open(path: impl AsRef<Path>) -> Result<DatReader, DatError> {
        Self::open_buffer(path, None)
    }

    /// Open a `.dat` file and the buffer named `buffer` (`""` = top level; `None` = the one with
    /// the most data).
    pub fn open_buffer(
        path: impl AsRef<Path>,
        buffer: Option<&str>,
    ) -> Result<DatReader, DatError> {
        let info = DatFile::open(path.as_ref())?;
        let ps = info.path.display().to_string();
        let b = info.pick_buffer(buffer)?.clone();
        let mut names = Vec::new();
        let mut kinds = HashMap::default();
        for (id, f) in &info.events {
            kinds.insert(*id, resolve(f, &mut names));
        }
        let common_pid = info
            .events
            .values()
            .find_map(|f| f.field("common_pid").cloned())
            .unwrap_or(Field {
                name: "common_pid".into(),
                offset: 4,
                size: 4,
                signed: true,
            });
        let mut geom = info.geom;
        geom.page_size = b.page_size as usize;
        if geom.data_offset >= geom.page_size {
            return Err(DatError::new(
                &ps,
                0,
                format!(
                    "buffer {:?}: page size {} is smaller than the page header",
                    b.name, b.page_size
                ),
            ));
        }
        let mut cpus = Vec::new();
        for &(cpu, off, size) in &b.cpus {
            if off.checked_add(size).is_none() {
                return Err(DatError::new(
                    &ps,
                    off,
                    format!(
                        "buffer {:?}, CPU {cpu}: data of {size} bytes at offset {off} ends past \
                         any file (expected offset + size below 2^64)",
                        b.name
                    ),
                ));
            }
            let f = File::open(&info.path).map_err(|e| {
                let mut d = DatError::new(&ps, 0, format!("cannot open: {e}"));
                d.io = true;
                d
            })?;
            let mut s = CpuStream::new(
                cpu,
                f,
                &ps,
                off,
                size,
                b.compressed,
                geom,
                info.endian,
                info.kernel_long as usize,
            )?;
            s.advance()?;
            cpus.push(s);
        }
        Ok(DatReader {
            path: ps,
            buffer: b.name.clone(),
            endian: info.endian,
            info,
            cpus,
            kinds,
            gfp: GfpTable::new(),
            gfp_ids: HashMap::default(),
            names,
            records: 0,
            common_pid,
            unknown: b"<...>".to_vec().into_boxed_slice(),
            unknown_ids: 0,
        })
    }

    /// Timestamp of the earliest item not yet returned (None at the end).
    pub fn first_ts(&self) -> Option<u64> {
        self.cpus
            .iter()
            .filter_map(|c| match c.peeked {
                Some(Item::Event { ts, .. }) => Some(ts),
                _ => None,
            })
            .min()
    }

    /// The file's metadata.
    pub fn info(&self) -> &DatFile {
        &self.info
    }

    /// The file path as given.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The buffer being read.
    pub fn buffer(&self) -> &str {
        &self.buffer
    }

    /// Items (events and lost-event markers) returned so far; the `line_no` of the last one.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Bytes of per-CPU data consumed from the file so far (compressed bytes for v7 zstd).
    pub fn bytes_read(&self) -> u64 {
        self.cpus.iter().map(|c| c.file_bytes).sum()
    }

    /// The interned gfp strings.
    pub fn gfp_table(&self) -> &GfpTable {
        &self.gfp
    }

    /// The name of an [`TraceEvent::Other`] event.
    pub fn event_name(&self, id: EventNameId) -> &str {
        self.names.get(id.0 as usize).map(|s| &**s).unwrap_or("?")
    }

    fn read_field(&self, rec: &[u8], f: &Field, what: &str) -> Result<u64, String> {
        let end = f.offset.saturating_add(f.size);
        if end > rec.len() {
            return Err(format!(
                "field {what} at {}..{end} is outside the {}-byte record",
                f.offset,
                rec.len()
            ));
        }
        let b = &rec[f.offset..end];
        let e = self.endian;
        let v = match f.size {
            1 => b[0] as u64,
            2 => e.u16(b) as u64,
            4 => e.u32(b) as u64,
            8 => e.u64(b),
            n => return Err(format!("field {what} has size {n}: expected 1, 2, 4 or 8")),
        };
        if f.signed && f.size < 8 {
            // sign-extend
            let sh = 64 - 8 * f.size as u32;
            return Ok((((v << sh) as i64) >> sh) as u64);
        }
        Ok(v)
    }

    fn u32_field(&self, rec: &[u8], f: &Field, what: &str) -> Result<u32, String> {
        let v = self.read_field(rec, f, what)?;
        u32::try_from(v).map_err(|_| {
            format!(
                "field {what} = {}: expected a non-negative 32-bit value",
                v as i64
            )
        })
    }

    /// The next line: an event, a lost-events marker, or `None` at the end. A
    /// [`DatError::record_only`] error skips one record; call again to go on.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Line<'_>>, DatError> {
        // the CPU with the earliest next item (ties: lowest CPU)
        let mut best: Option<(usize, u64)> = None;
        for (i, c) in self.cpus.iter().enumerate() {
            let ts = match c.peeked {
                Some(Item::Event { ts, .. }) | Some(Item::Lost { ts, .. }) => ts,
                None => continue,
            };
            if best.is_none_or(|(_, b)| ts < b) {
                best = Some((i, ts));
            }
        }
        let Some((ci, _)) = best else {
            return Ok(None);
        };
        self.records += 1;
        let item = self.cpus[ci].peeked.expect("peeked above");
        // decode the record now, advance the stream after (the record borrows its buffer)
        match item {
            Item::Lost { count, .. } => {
                let cpu = self.cpus[ci].cpu;
                self.cpus[ci].advance()?;
                Ok(Some(Line::Lost {
                    cpu: Some(cpu),
                    events: count,
                }))
            }
            Item::Event { ts, start, len } => {
                // Copy the record out so that the stream can advance before we return.
                let mut rec = [0u8; 256];
                let n = len.min(rec.len());
                rec[..n].copy_from_slice(&self.cpus[ci].buf[start..start + n]);
                let long_rec: Option<Vec<u8>> =
                    (len > rec.len()).then(|| self.cpus[ci].buf[start..start + len].to_vec());
                let cpu = self.cpus[ci].cpu;
                self.cpus[ci].advance()?;
                let r: &[u8] = match &long_rec {
                    Some(v) => v,
                    None => &rec[..n],
                };
                self.decode(r, ts, cpu)
            }
        }
    }

    fn decode(&mut self, r: &[u8], ts: u64, cpu: u32) -> Result<Option<Line<'_>>, DatError> {
        let line_no = self.records;
        let rec_err = |this: &DatReader, m: String| {
            let mut d = DatError::new(
                &this.path,
                0,
                format!("record {line_no} (CPU {cpu}, ts {ts}): {m}"),
            );
            d.record_only = true;
            d
        };
        if r.len() < 2 {
            return Err(rec_err(
                self,
                format!("{} bytes: expected an event id", r.len()),
            ));
        }
        let id = self.endian.u16(&r[..2]);
        let pid = self
            .read_field(r, &self.common_pid, "common_pid")
            .unwrap_or(0) as u32;
        let Some(kind) = self.kinds.get(&id) else {
            self.unknown_ids += 1;
            return Err(rec_err(
                self,
                format!("event id {id} has no format in the file"),
            ));
        };
        // Kinds are cloned out of the map only for the rare Broken case; fields are small.
        let mut gfp_text: &[u8] = &[];
        let (name, event): (&str, TraceEvent) = match kind {
            Kind::Alloc {
                pfn,
                order,
                mt,
                gfp,
                flags,
            } => {
                let res = (|| -> Result<(u64, u32, u32, u64), String> {
                    Ok((
                        self.read_field(r, pfn, "pfn")?,
                        self.u32_field(r, order, "order")?,
                        self.u32_field(r, mt, "migratetype")?,
                        self.read_field(r, gfp, "gfp_flags")?,
                    ))
                })();
                let (p, o, m, g) = res.map_err(|m| rec_err(self, format!("mm_page_alloc: {m}")))?;
                let gid = match self.gfp_ids.get(&g) {
                    Some(&id) => id,
                    None => {
                        let s = format::render_flags(flags, g);
                        let id = self
                            .gfp
                            .intern(s.as_bytes())
                            .expect("rendered text is UTF-8");
                        self.gfp_ids.insert(g, id);
                        id
                    }
                };
                gfp_text = self.gfp.get(gid).unwrap_or("").as_bytes();
                let failed = p == 0 || p == u64::MAX || (pfn.size == 4 && p == u32::MAX as u64);
                (
                    "mm_page_alloc",
                    TraceEvent::Alloc {
                        pfn: (!failed).then_some(p as Pfn),
                        order: o,
                        migratetype: m,
                        gfp: gid,
                    },
                )
            }
            Kind::Free { pfn, order } => {
                let p = self
                    .read_field(r, pfn, "pfn")
                    .map_err(|m| rec_err(self, format!("mm_page_free: {m}")))?;
                let o = self
                    .u32_field(r, order, "order")
                    .map_err(|m| rec_err(self, format!("mm_page_free: {m}")))?;
                ("mm_page_free", TraceEvent::Free { pfn: p, order: o })
            }
            Kind::FreeBatched { pfn } => {
                let p = self
                    .read_field(r, pfn, "pfn")
                    .map_err(|m| rec_err(self, format!("mm_page_free_batched: {m}")))?;
                ("mm_page_free_batched", TraceEvent::FreeBatched { pfn: p })
            }
            Kind::ZoneLocked {
                pfn,
                order,
                mt,
                refill,
            } => {
                let res = (|| -> Result<TraceEvent, String> {
                    Ok(TraceEvent::ZoneLocked {
                        pfn: self.read_field(r, pfn, "pfn")?,
                        order: self.u32_field(r, order, "order")?,
                        migratetype: self.u32_field(r, mt, "migratetype")?,
                        percpu_refill: self.read_field(r, refill, "percpu_refill")? != 0,
                    })
                })();
                (
                    "mm_page_alloc_zone_locked",
                    res.map_err(|m| rec_err(self, format!("mm_page_alloc_zone_locked: {m}")))?,
                )
            }
            Kind::PcpuDrain { pfn, order, mt } => {
                let res = (|| -> Result<TraceEvent, String> {
                    Ok(TraceEvent::PcpuDrain {
                        pfn: self.read_field(r, pfn, "pfn")?,
                        order: self.u32_field(r, order, "order")?,
                        migratetype: self.u32_field(r, mt, "migratetype")?,
                    })
                })();
                (
                    "mm_page_pcpu_drain",
                    res.map_err(|m| rec_err(self, format!("mm_page_pcpu_drain: {m}")))?,
                )
            }
            Kind::ExtFrag {
                pfn,
                ao,
                fo,
                am,
                fm,
                own,
                pageblock_order,
            } => {
                let res = (|| -> Result<TraceEvent, String> {
                    let fallback_order = self.u32_field(r, fo, "fallback_order")?;
                    Ok(TraceEvent::ExtFrag {
                        pfn: self.read_field(r, pfn, "pfn")?,
                        alloc_order: self.u32_field(r, ao, "alloc_order")?,
                        fallback_order,
                        pageblock_order: *pageblock_order,
                        alloc_migratetype: self.u32_field(r, am, "alloc_migratetype")?,
                        fallback_migratetype: self.u32_field(r, fm, "fallback_migratetype")?,
                        fragmenting: fallback_order < *pageblock_order,
                        change_ownership: self.read_field(r, own, "change_ownership")? != 0,
                    })
                })();
                (
                    "mm_page_alloc_extfrag",
                    res.map_err(|m| rec_err(self, format!("mm_page_alloc_extfrag: {m}")))?,
                )
            }
            Kind::Print { buf } => {
                let s = r.get(buf.offset..).unwrap_or(&[]);
                let s = &s[..memchr::memchr(0, s).unwrap_or(s.len())];
                let t = String::from_utf8_lossy(s);
                ("print", TraceEvent::Marker(t.trim_end_matches('\n').into()))
            }
            Kind::Other(n) => (
                self.names.get(n.0 as usize).map(|s| &**s).unwrap_or("?"),
                TraceEvent::Other(*n),
            ),
            Kind::Broken(m) => {
                let m = m.clone();
                return Err(rec_err(self, m));
            }
        };
        let comm: &[u8] = self
            .info
            .cmdlines
            .get(&pid)
            .map(|c| &**c)
            .unwrap_or(&self.unknown);
        Ok(Some(Line::Event(TraceRecord {
            line_no,
            ts_ns: ts,
            cpu,
            pid,
            tgid: None,
            comm,
            flags: &[],
            name,
            gfp_text,
            event,
        })))
    }
}

/// Count the events of a `.dat` file by kind (for cross-checks with `trace-cmd report`).
pub fn count_dat(path: impl AsRef<Path>) -> Result<BTreeMap<String, u64>, DatError> {
    let mut r = DatReader::open(path)?;
    let mut m: BTreeMap<String, u64> = BTreeMap::new();
    loop {
        match r.next() {
            Ok(Some(Line::Event(rec))) => *m.entry(rec.name.to_string()).or_default() += 1,
            Ok(Some(Line::Lost { events, .. })) => {
                *m.entry("lost_pages".to_string()).or_default() += 1;
                *m.entry("lost_events".to_string()).or_default() += events.unwrap_or(0);
            }
            Ok(Some(Line::Skipped(_))) => {}
            Ok(None) => break,
            Err(e) if e.record_only => *m.entry("bad_records".to_string()).or_default() += 1,
            Err(e) => return Err(e),
        }
    }
    Ok(m)
}

#[cfg(test)]
pub(crate) mod tests;
