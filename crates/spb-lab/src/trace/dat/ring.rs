//! One CPU's flyrecord data: ring-buffer pages read from the file (raw, or zstd chunks in a v7
//! compressed file) and decoded event by event.
//!
//! Page layout (from the file's `header_page`): a u64 timestamp, the `commit` word (its low 27
//! bits are the data size; bit 31: events were lost before this page; bit 30: their count is
//! stored as a long right after the data), then the data. Each event starts with a 32-bit
//! header: `type_len` (5 bits) and `time_delta` (27 bits). type_len 1-28: data of
//! `type_len * 4` bytes follows; 0: the length (including itself) is the next 32-bit word; 29:
//! padding (`time_delta` 0: the rest of the page is unused); 30: time extend (the next word holds
//! bits 27.. of the delta); 31: absolute timestamp (same encoding).

use std::fs::File;
use std::os::unix::fs::FileExt;

use super::{DatError, Endian};

const TYPE_PADDING: u32 = 29;
const TYPE_TIME_EXTEND: u32 = 30;
const TYPE_TIME_STAMP: u32 = 31;
const COMMIT_MASK: u64 = (1 << 27) - 1;
const MISSED_EVENTS: u64 = 1 << 31;
const MISSED_STORED: u64 = 1 << 30;
/// Raw (uncompressed) data is read this many pages at a time.
const RAW_PAGES_PER_READ: usize = 64;
/// A chunk larger than this (compressed or not) is corrupt rather than a reason to allocate.
const MAX_CHUNK_BYTES: u32 = 256 << 20;

/// What the next item of a CPU stream is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Item {
    /// An event record: `buf[start..start + len]`.
    Event { ts: u64, start: usize, len: usize },
    /// The page at `ts` says events were lost before it (`None`: how many is unknown).
    Lost { ts: u64, count: Option<u64> },
}

/// Page geometry from the header page format.
#[derive(Clone, Copy, Debug)]
pub struct PageGeom {
    pub page_size: usize,
    pub commit_offset: usize,
    pub commit_size: usize,
    pub data_offset: usize,
}

pub struct CpuStream {
    pub cpu: u32,
    file: File,
    path: String,
    /// Next file offset to read and end of this CPU's data.
    pos: u64,
    end: u64,
    compressed: bool,
    chunks_left: u32,
    geom: PageGeom,
    endian: Endian,
    long_size: usize,
    zstd: Option<zstd::bulk::Decompressor<'static>>,
    cbuf: Vec<u8>,
    /// Uncompressed pages.
    pub buf: Vec<u8>,
    /// Offset in `buf` of the current page and its data end; `cur` the next event header.
    page: usize,
    data_end: usize,
    cur: usize,
    page_loaded: bool,
    ts: u64,
    /// The lost-events item of the current page, not yet returned.
    lost_pending: Option<Option<u64>>,
    /// Bytes of file data consumed (for progress).
    pub file_bytes: u64,
    pub peeked: Option<Item>,
    done: bool,
}

impl CpuStream {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cpu: u32,
        file: File,
        path: &str,
        offset: u64,
        size: u64,
        compressed: bool,
        geom: PageGeom,
        endian: Endian,
        long_size: usize,
    ) -> Result<CpuStream, DatError> {
        let mut s = CpuStream {
            cpu,
            file,
            path: path.to_string(),
            pos: offset,
            end: offset.saturating_add(size),
            compressed,
            chunks_left: 0,
            geom,
            endian,
            long_size,
            zstd: None,
            cbuf: Vec::new(),
            buf: Vec::new(),
            page: 0,
            data_end: 0,
            cur: 0,
            page_loaded: false,
            ts: 0,
            lost_pending: None,
            file_bytes: 0,
            peeked: None,
            done: size == 0,
        };
        if compressed && size > 0 {
            // trace-cmd's recorded size of compressed CPU data is a few bytes short of what its
            // chunks take (measured: 12 bytes on a 3.1.6 file); the chunk count bounds the
            // data, the file's length bounds the reads.
            s.end = s
                .file
                .metadata()
                .map(|m| m.len())
                .unwrap_or(s.end)
                .max(s.end);
            let mut b = [0u8; 4];
            s.read_exact_at(&mut b, s.pos, "the chunk count of the compressed CPU data")?;
            s.chunks_left = s.endian.u32(&b);
            s.pos += 4;
            s.zstd =
                Some(zstd::bulk::Decompressor::new().map_err(|e| {
                    s.err(s.pos, format!("cannot create a zstd decompressor: {e}"))
                })?);
        }
        Ok(s)
    }

    fn err(&self, offset: u64, msg: String) -> DatError {
        DatError::new(
            &self.path,
            offset,
            format!("flyrecord data of CPU {}: {msg}", self.cpu),
        )
    }

    fn read_exact_at(&self, buf: &mut [u8], off: u64, what: &str) -> Result<(), DatError> {
        if off.saturating_add(buf.len() as u64) > self.end {
            return Err(self.err(
                off,
                format!(
                    "expected {what} ({} bytes), but the CPU's data ends at offset {}",
                    buf.len(),
                    self.end
                ),
            ));
        }
        self.file
            .read_exact_at(buf, off)
            .map_err(|e| self.err(off, format!("expected {what}: {e}")))
    }

    /// Load the next block of pages into `buf`; false at the end of the data.
    fn load_block(&mut self) -> Result<bool, DatError> {
        let ps = self.geom.page_size;
        if self.compressed {
            if self.chunks_left == 0 {
                return Ok(false);
            }
            let at = self.pos;
            let mut h = [0u8; 8];
            self.read_exact_at(
                &mut h,
                at,
                "a chunk header (compressed and uncompressed size)",
            )?;
            let csize = self.endian.u32(&h[..4]);
            let usize_ = self.endian.u32(&h[4..]);
            if csize > MAX_CHUNK_BYTES || usize_ > MAX_CHUNK_BYTES {
                return Err(self.err(
                    at,
                    format!(
                        "chunk sizes {csize}/{usize_} bytes: expected at most {MAX_CHUNK_BYTES}"
                    ),
                ));
            }
            if !(usize_ as usize).is_multiple_of(ps) || usize_ == 0 {
                return Err(self.err(
                    at,
                    format!(
                        "chunk of {usize_} uncompressed bytes: expected a non-zero multiple of the {ps}-byte page"
                    ),
                ));
            }
            if usize_ as u64 > 4096 * (csize as u64 + 64) {
                return Err(self.err(
                    at,
                    format!("chunk of {csize} compressed bytes claims {usize_} uncompressed: expected at most 4096 times as many"),
                ));
            }
            if at + 8 + csize as u64 > self.end {
                return Err(self.err(
                    at,
                    format!(
                        "chunk of {csize} compressed bytes runs past the end of the file ({})",
                        self.end
                    ),
                ));
            }
            self.cbuf.resize(csize as usize, 0);
            let mut cb = std::mem::take(&mut self.cbuf);
            let r = self.read_exact_at(&mut cb, at + 8, "the chunk's compressed data");
            self.cbuf = cb;
            r?;
            self.buf.clear();
            self.buf.reserve(usize_ as usize);
            let z = self.zstd.as_mut().expect("created with compressed data");
            let n = z
                .decompress_to_buffer(&self.cbuf, &mut self.buf)
                .map_err(|e| {
                    DatError::new(
                        &self.path,
                        at,
                        format!(
                            "flyrecord data of CPU {}: corrupt zstd chunk: {e}",
                            self.cpu
                        ),
                    )
                })?;
            if n != usize_ as usize {
                return Err(self.err(
                    at,
                    format!("chunk decompressed to {n} bytes: expected {usize_}"),
                ));
            }
            self.pos = at + 8 + csize as u64;
            self.file_bytes += 8 + csize as u64;
            self.chunks_left -= 1;
        } else {
            if self.pos >= self.end {
                return Ok(false);
            }
            let n = ((self.end - self.pos) as usize).min(RAW_PAGES_PER_READ * ps);
            if !n.is_multiple_of(ps) && n < ps {
                // a partial last page: corrupt or truncated
                return Err(self.err(
                    self.pos,
                    format!("{n} bytes left: expected whole {ps}-byte pages"),
                ));
            }
            let n = n - n % ps;
            self.buf.resize(n, 0);
            let mut b = std::mem::take(&mut self.buf);
            let r = self.read_exact_at(&mut b, self.pos, "ring-buffer pages");
            self.buf = b;
            r?;
            self.pos += n as u64;
            self.file_bytes += n as u64;
        }
        self.page = 0;
        self.page_loaded = false;
        Ok(true)
    }

    fn read_long(&self, at: usize) -> u64 {
        if self.long_size == 8 {
            self.endian.u64(&self.buf[at..at + 8])
        } else {
            self.endian.u32(&self.buf[at..at + 4]) as u64
        }
    }

    /// Start the page at `self.page`.
    fn open_page(&mut self) -> Result<(), DatError> {
        let g = self.geom;
        let p = self.page;
        let at = self.file_pos_hint();
        self.ts = self.endian.u64(&self.buf[p..p + 8]);
        let commit = if g.commit_size == 8 {
            self.endian
                .u64(&self.buf[p + g.commit_offset..p + g.commit_offset + 8])
        } else {
            self.endian
                .u32(&self.buf[p + g.commit_offset..p + g.commit_offset + 4]) as u64
        };
        let size = (commit & COMMIT_MASK) as usize;
        let cap = g.page_size - g.data_offset;
        if size > cap {
            return Err(self.err(
                at,
                format!("page commit size {size}: expected at most {cap} bytes of event data"),
            ));
        }
        self.cur = p + g.data_offset;
        self.data_end = self.cur + size;
        self.lost_pending = None;
        if commit & MISSED_EVENTS != 0 {
            let count = if commit & MISSED_STORED != 0 && size + self.long_size <= cap {
                Some(self.read_long(self.data_end))
            } else {
                None
            };
            self.lost_pending = Some(count);
        }
        self.page_loaded = true;
        Ok(())
    }

    /// Approximate file offset of the current page, for messages.
    fn file_pos_hint(&self) -> u64 {
        if self.compressed {
            self.pos
        } else {
            self.pos - self.buf.len() as u64 + self.page as u64
        }
    }

    /// Decode the next item into `peeked` (None at the end).
    pub fn advance(&mut self) -> Result<(), DatError> {
        self.peeked = None;
        if self.done {
            return Ok(());
        }
        loop {
            if !self.page_loaded {
                if self.page >= self.buf.len() && !self.load_block()? {
                    self.done = true;
                    return Ok(());
                }
                self.open_page()?;
                if let Some(count) = self.lost_pending.take() {
                    self.peeked = Some(Item::Lost { ts: self.ts, count });
                    return Ok(());
                }
            }
            if self.cur + 4 > self.data_end {
                self.next_page();
                continue;
            }
            let at = self.cur;
            let hdr = self.endian.u32(&self.buf[at..at + 4]);
            let (type_len, delta) = match self.endian {
                Endian::Little => (hdr & 31, (hdr >> 5) as u64),
                Endian::Big => (hdr >> 27, (hdr & ((1 << 27) - 1)) as u64),
            };
            let body = at + 4;
            match type_len {
                TYPE_PADDING => {
                    if delta == 0 {
                        // the rest of the page is unused
                        self.next_page();
                        continue;
                    }
                    let len = self.word(body)? as usize;
                    self.ts = self.ts.wrapping_add(delta);
                    self.cur = self.checked_next(body, len)?;
                }
                TYPE_TIME_EXTEND | TYPE_TIME_STAMP => {
                    let ext = self.word(body)? as u64;
                    let v = (ext << 27) | delta;
                    if type_len == TYPE_TIME_EXTEND {
                        self.ts = self.ts.wrapping_add(v);
                    } else {
                        const LOW: u64 = (1 << 59) - 1;
                        self.ts = (self.ts & !LOW) | (v & LOW);
                    }
                    self.cur = body + 4;
                }
                0 => {
                    let len = self.word(body)? as usize;
                    if len < 4 {
                        return Err(self.err(
                            self.file_pos_hint(),
                            format!("event length word {len}: expected at least 4"),
                        ));
                    }
                    let start = body + 4;
                    let dlen = len - 4;
                    let next = self.checked_next(start, (dlen + 3) & !3)?;
                    self.ts = self.ts.wrapping_add(delta);
                    self.cur = next;
                    self.peeked = Some(Item::Event {
                        ts: self.ts,
                        start,
                        len: dlen,
                    });
                    return Ok(());
                }
                n => {
                    let dlen = n as usize * 4;
                    let next = self.checked_next(body, dlen)?;
                    self.ts = self.ts.wrapping_add(delta);
                    self.cur = next;
                    self.peeked = Some(Item::Event {
                        ts: self.ts,
                        start: body,
                        len: dlen,
                    });
                    return Ok(());
                }
            }
        }
    }

    fn word(&self, at: usize) -> Result<u32, DatError> {
        if at + 4 > self.data_end {
            return Err(self.err(
                self.file_pos_hint(),
                format!(
                    "event at page offset {} runs past the page's commit size",
                    at - self.page
                ),
            ));
        }
        Ok(self.endian.u32(&self.buf[at..at + 4]))
    }

    fn checked_next(&self, start: usize, len: usize) -> Result<usize, DatError> {
        match start.checked_add(len) {
            Some(e) if e <= self.data_end => Ok(e),
            _ => Err(self.err(
                self.file_pos_hint(),
                format!(
                    "event of {len} bytes at page offset {} runs past the page's {} bytes of data",
                    start - self.page,
                    self.data_end - self.page - self.geom.data_offset
                ),
            )),
        }
    }

    fn next_page(&mut self) {
        self.page += self.geom.page_size;
        self.page_loaded = false;
    }
}
