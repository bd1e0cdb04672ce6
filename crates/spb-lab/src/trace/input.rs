//! Streaming line input for traces: plain text, zstd or gzip (detected by magic bytes), from a
//! file or a capture directory.
//!
//! * zstd: magic `28 b5 2f fd`; multiple concatenated frames are read in sequence. A stream that
//!   ends inside a frame (truncated file, interrupted writer) is an error, never a silent
//!   truncation.
//! * gzip: magic `1f 8b`; concatenated members are read in sequence; truncation is an error.
//! * anything else is read as plain text.
//!
//! A directory is accepted if it contains one of [`TRACE_FILE_NAMES`] (a capture directory as
//! written by [`crate::capture`] or the shared `traces/<name>/` directories).
//!
//! The reader keeps one large buffer (1 MiB, grown only for longer lines up to
//! [`MAX_LINE_BYTES`]) and hands out line slices into it: no per-line allocation, no copy, and
//! the file is never loaded as a whole.

use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

/// File names looked up (in this order) when [`TraceReader::open`] is given a directory.
pub const TRACE_FILE_NAMES: [&str; 4] = ["trace.txt.zst", "trace.txt.gz", "trace.txt", "trace.zst"];

/// Lines longer than this are an error (protects against reading a binary file as text).
pub const MAX_LINE_BYTES: usize = 16 << 20;

const BUF_BYTES: usize = 1 << 20;

/// Detected compression of the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// Plain text.
    None,
    /// zstd (`28 b5 2f fd`).
    Zstd,
    /// gzip (`1f 8b`).
    Gzip,
}

impl Compression {
    /// Detect from the first bytes of a stream.
    pub fn detect(magic: &[u8]) -> Compression {
        if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else if magic.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else {
            Compression::None
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::None => "plain",
            Compression::Zstd => "zstd",
            Compression::Gzip => "gzip",
        })
    }
}

/// What went wrong while reading.
#[derive(Debug)]
pub enum InputErrorKind {
    /// Opening the path failed.
    Open(io::Error),
    /// A directory without any of [`TRACE_FILE_NAMES`].
    NoTraceInDir,
    /// Reading or decompressing failed (truncated/corrupt compressed data, I/O error).
    Read(io::Error),
    /// A line longer than [`MAX_LINE_BYTES`].
    LineTooLong,
    /// `next_line` was called again after an error.
    AfterError,
}

/// An input error, naming the file, its compression and the last complete line read.
#[derive(Debug)]
pub struct InputError {
    /// The file (or directory) being read.
    pub path: PathBuf,
    /// Detected compression (`None` if the error happened before detection).
    pub compression: Option<Compression>,
    /// Number of complete lines successfully read before the error.
    pub lines_read: u64,
    /// The cause.
    pub kind: InputErrorKind,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.path.display();
        let c = self
            .compression
            .map(|c| format!("{c} "))
            .unwrap_or_default();
        match &self.kind {
            InputErrorKind::Open(e) => write!(f, "{p}: cannot open: {e}"),
            InputErrorKind::NoTraceInDir => write!(
                f,
                "{p}: directory contains none of {}",
                TRACE_FILE_NAMES.join(", ")
            ),
            InputErrorKind::Read(e) => {
                let what = match (e.kind() == io::ErrorKind::UnexpectedEof, self.compression) {
                    (true, _) => "truncated input (stream ended inside a compressed frame; expected the rest of the frame)",
                    (false, Some(Compression::Zstd | Compression::Gzip)) => "corrupt data (expected a valid compressed stream)",
                    (false, _) => "read error",
                };
                write!(f, "{p}: {c}{what} after line {}: {e}", self.lines_read)
            }
            InputErrorKind::LineTooLong => write!(
                f,
                "{p}: line {} is longer than {} bytes (not a text trace?)",
                self.lines_read + 1,
                MAX_LINE_BYTES
            ),
            InputErrorKind::AfterError => {
                write!(
                    f,
                    "{p}: read after a previous error (after line {})",
                    self.lines_read
                )
            }
        }
    }
}

impl InputError {
    /// The file's content is bad (corrupt or truncated compressed data, a line too long for a
    /// text trace), as opposed to the file being missing or unreadable: `spb` reports the first
    /// as bad input (exit 3), the second as an I/O error (exit 4). A decompressor's error has no
    /// OS error code; an OS read error has one.
    pub fn is_bad_content(&self) -> bool {
        match &self.kind {
            InputErrorKind::LineTooLong => true,
            InputErrorKind::Read(e) => {
                e.raw_os_error().is_none() && self.compression != Some(Compression::None)
            }
            InputErrorKind::Open(_) | InputErrorKind::NoTraceInDir | InputErrorKind::AfterError => {
                false
            }
        }
    }
}

impl std::error::Error for InputError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            InputErrorKind::Open(e) | InputErrorKind::Read(e) => Some(e),
            _ => None,
        }
    }
}

/// A streaming line reader over a (possibly compressed) trace.
pub struct TraceReader {
    path: PathBuf,
    compression: Compression,
    inner: Box<dyn Read + Send>,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    failed: bool,
    line_no: u64,
    bytes: u64,
}

impl fmt::Debug for TraceReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceReader")
            .field("path", &self.path)
            .field("compression", &self.compression)
            .field("line_no", &self.line_no)
            .finish()
    }
}

/// Resolve a capture directory to its trace file; files are returned unchanged.
pub fn resolve_trace_path(path: &Path) -> Result<PathBuf, InputError> {
    let md = std::fs::metadata(path).map_err(|e| InputError {
        path: path.to_path_buf(),
        compression: None,
        lines_read: 0,
        kind: InputErrorKind::Open(e),
    })?;
    if !md.is_dir() {
        return Ok(path.to_path_buf());
    }
    for n in TRACE_FILE_NAMES {
        let p = path.join(n);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(InputError {
        path: path.to_path_buf(),
        compression: None,
        lines_read: 0,
        kind: InputErrorKind::NoTraceInDir,
    })
}

impl TraceReader {
    /// Open a trace file (plain/zstd/gzip by magic) or a capture directory.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, InputError> {
        let path = resolve_trace_path(path.as_ref())?;
        let f = File::open(&path).map_err(|e| InputError {
            path: path.clone(),
            compression: None,
            lines_read: 0,
            kind: InputErrorKind::Open(e),
        })?;
        Self::from_reader(path, f)
    }

    /// Wrap any byte stream; `name` is used in error messages. Compression is detected from the
    /// first four bytes.
    pub fn from_reader(
        name: impl Into<PathBuf>,
        mut r: impl Read + Send + 'static,
    ) -> Result<Self, InputError> {
        let path = name.into();
        let mut magic = [0u8; 4];
        let mut got = 0;
        while got < magic.len() {
            match r.read(&mut magic[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(InputError {
                        path,
                        compression: None,
                        lines_read: 0,
                        kind: InputErrorKind::Read(e),
                    })
                }
            }
        }
        let compression = Compression::detect(&magic[..got]);
        let head = io::Cursor::new(magic[..got].to_vec());
        let chained = head.chain(r);
        let inner: Box<dyn Read + Send> = match compression {
            Compression::None => Box::new(chained),
            Compression::Zstd => {
                let d = zstd::stream::read::Decoder::with_buffer(BufReader::with_capacity(
                    256 << 10,
                    chained,
                ))
                .map_err(|e| InputError {
                    path: path.clone(),
                    compression: Some(compression),
                    lines_read: 0,
                    kind: InputErrorKind::Read(e),
                })?;
                Box::new(d)
            }
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(
                BufReader::with_capacity(256 << 10, chained),
            )),
        };
        Ok(Self {
            path,
            compression,
            inner,
            buf: vec![0u8; BUF_BYTES],
            start: 0,
            end: 0,
            eof: false,
            failed: false,
            line_no: 0,
            bytes: 0,
        })
    }

    /// The file being read (the resolved trace file for a directory).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Detected compression.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// Number of lines returned so far (= the 1-based number of the last line returned).
    pub fn line_no(&self) -> u64 {
        self.line_no
    }

    /// Decompressed bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes
    }

    fn err(&mut self, kind: InputErrorKind) -> InputError {
        self.failed = true;
        InputError {
            path: self.path.clone(),
            compression: Some(self.compression),
            lines_read: self.line_no,
            kind,
        }
    }

    /// The next line without its `\n` (a final line without `\n` is returned too), or `None` at
    /// the end of the input.
    pub fn next_line(&mut self) -> Result<Option<&[u8]>, InputError> {
        if self.failed {
            return Err(self.err(InputErrorKind::AfterError));
        }
        let mut scan_from = self.start;
        loop {
            if let Some(rel) = memchr::memchr(b'\n', &self.buf[scan_from..self.end]) {
                let nl = scan_from + rel;
                let s = self.start;
                self.start = nl + 1;
                self.line_no += 1;
                return Ok(Some(&self.buf[s..nl]));
            }
            if self.eof {
                if self.start < self.end {
                    let s = self.start;
                    self.start = self.end;
                    self.line_no += 1;
                    return Ok(Some(&self.buf[s..self.end]));
                }
                return Ok(None);
            }
            // Need more data: compact, grow if the partial line fills the buffer, read.
            let pending = self.end - self.start;
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.start = 0;
                self.end = pending;
            }
            scan_from = pending;
            if self.end == self.buf.len() {
                if self.buf.len() >= MAX_LINE_BYTES {
                    return Err(self.err(InputErrorKind::LineTooLong));
                }
                let n = (self.buf.len() * 2).min(MAX_LINE_BYTES);
                self.buf.resize(n, 0);
            }
            loop {
                match self.inner.read(&mut self.buf[self.end..]) {
                    Ok(0) => {
                        self.eof = true;
                        break;
                    }
                    Ok(n) => {
                        self.end += n;
                        self.bytes += n as u64;
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(self.err(InputErrorKind::Read(e))),
                }
            }
        }
    }
}
