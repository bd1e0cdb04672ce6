//! Capturing a page-allocator trace from the running kernel (Linux, root).
//!
//! [`capture`] does what the shared captures' `capture.sh` did, in-process:
//!
//! 1. find tracefs (`/sys/kernel/tracing`, else `/sys/kernel/debug/tracing`, else mount
//!    `tracefs` on a temporary directory, unmounted again at the end), or use
//!    [`CaptureOptions::tracefs`];
//! 2. create a private ftrace instance `instances/spb-<pid>` (the top-level buffer and settings of
//!    other tracefs users are never touched), set `trace_clock` to `mono`, `buffer_size_kb`
//!    (per CPU), and enable the six kmem page events ([`REQUIRED_EVENTS`]; a missing one is
//!    [`CaptureError::EventMissing`]) plus any [`CaptureOptions::extra_events`] that exist;
//! 3. stream the instance's `trace_pipe` into `out/trace.txt.zst` (zstd level 3) on a reader
//!    thread, counting lines per event name on the way, optionally removing the hashed
//!    ` page=<ptr>` field like the shared captures did;
//! 4. write markers through `trace_marker` and take snapshots:
//!    `BUDDYCAP SNAPSHOT_BEGIN name=<dir>` → `before/` → `BUDDYCAP SNAPSHOT_END` →
//!    `BUDDYCAP WORKLOAD_BEGIN name=<dir>` → (wait `duration` or until `stop`) →
//!    `BUDDYCAP WORKLOAD_END rc=<0, or 130 if stopped>` → `BUDDYCAP AFTER_SNAPSHOT_BEGIN` →
//!    `after/` → `BUDDYCAP AFTER_SNAPSHOT_END` - the same vocabulary as the shared traces;
//! 5. turn tracing off, drain `trace_pipe`, finish the zstd frame, read
//!    `per_cpu/cpu*/stats` (lost/overrun events), write `ringbuffer_stats.txt` and `meta.json`,
//!    and remove the instance.
//!
//! # Output directory
//!
//! | file | content |
//! |---|---|
//! | `trace.txt.zst` | the trace text (ftrace `trace_pipe` format, see [`crate::trace`]); zstd frames are closed every 64 MiB of text and at the end, so the file is valid even when the capture is stopped early |
//! | `before/`, `after/` | copies of `/proc/{zoneinfo,buddyinfo,pagetypeinfo,vmstat,meminfo,uptime}`, and `kpageflags.zst`, `kpagecount.zst` (zstd of `/proc/kpageflags`/`kpagecount`: little-endian u64 per PFN) |
//! | `ringbuffer_stats.txt` | `per_cpu/cpu*/stats` after the drain |
//! | `meta.json` | [`CaptureSummary`] |
//!
//! A capture directory can be read directly with [`crate::trace::TraceReader::open`].
//!
//! Ctrl-C handling is the caller's job: set the `stop` flag; the capture then ends the waiting
//! phase, still takes the after/ snapshot and writes complete, valid output.

#![warn(missing_docs)]

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::trace::parse::event_name_of;

/// The kmem events a capture needs (relative to the instance's `events/`).
pub const REQUIRED_EVENTS: [&str; 6] = [
    "kmem/mm_page_alloc",
    "kmem/mm_page_free",
    "kmem/mm_page_free_batched",
    "kmem/mm_page_alloc_extfrag",
    "kmem/mm_page_pcpu_drain",
    "kmem/mm_page_alloc_zone_locked",
];

/// The `/proc` files copied into `before/` and `after/` (all required).
pub const PROC_SNAPSHOT_FILES: [&str; 5] =
    ["zoneinfo", "buddyinfo", "pagetypeinfo", "vmstat", "meminfo"];

/// The largest accepted per-CPU buffer (16 GiB).
pub const MAX_BUFFER_KB: u32 = 16 << 20;

const FRAME_BYTES: u64 = 64 << 20;
const ZSTD_LEVEL: i32 = 3;

/// What to capture and where.
#[derive(Clone, Debug, PartialEq)]
pub struct CaptureOptions {
    /// How long to trace between the before/ and after/ snapshots.
    pub duration: Duration,
    /// Output directory (created; must not exist or be empty).
    pub out: PathBuf,
    /// tracefs mount point; `None` = find or mount it. A given directory must contain
    /// `instances/`. (Also the hook that lets tests run the whole flow on a fake tree.)
    pub tracefs: Option<PathBuf>,
    /// Ring-buffer size per CPU in KiB (`buffer_size_kb`), 64..=[`MAX_BUFFER_KB`].
    pub buffer_kb: u32,
    /// Where the `/proc` snapshot files are read from (default `/proc`).
    pub proc_root: PathBuf,
    /// Also snapshot `kpageflags`/`kpagecount` (default true).
    pub kpage_snapshots: bool,
    /// Remove the hashed ` page=<ptr>` field of kmem lines (default true, like the shared
    /// captures; the parser accepts both).
    pub strip_page_field: bool,
    /// Further events to enable if they exist (e.g. `compaction`, `migrate`,
    /// `vmscan/mm_vmscan_kswapd_wake`); missing ones are only recorded in meta.json.
    pub extra_events: Vec<String>,
    /// From boot (issue 12): the kernel was booted with `trace_event=kmem:mm_page_alloc,...`;
    /// once the stream is recording, stop the top-level buffer and save it to
    /// `boot_trace.txt.zst` (plus `iomem.txt`, `cmdline.txt`), use the top-level buffer's trace
    /// clock for the stream so the two can be merged, and mark the end of the workload with
    /// `PHASE stress_end` (`spb replay DIR` then replays from boot).
    pub from_boot: bool,
}

impl CaptureOptions {
    /// Defaults: 256 MiB buffer per CPU, `/proc`, kpage snapshots on, page field stripped, no
    /// extra events.
    pub fn new(duration: Duration, out: impl Into<PathBuf>) -> Self {
        CaptureOptions {
            duration,
            out: out.into(),
            tracefs: None,
            buffer_kb: 256 << 10,
            proc_root: PathBuf::from("/proc"),
            kpage_snapshots: true,
            strip_page_field: true,
            extra_events: Vec::new(),
            from_boot: false,
        }
    }

    /// Check the options without touching the system (the output directory is only inspected).
    pub fn validate(&self) -> Result<(), CaptureError> {
        let bad = |m: String| Err(CaptureError::InvalidOptions(m));
        if self.duration.is_zero() {
            return bad("duration must be > 0".into());
        }
        if self.duration > Duration::from_secs(7 * 24 * 3600) {
            return bad(format!(
                "duration {:?} is longer than a week",
                self.duration
            ));
        }
        if self.buffer_kb < 64 || self.buffer_kb > MAX_BUFFER_KB {
            return bad(format!(
                "buffer_kb {} outside 64..={MAX_BUFFER_KB}",
                self.buffer_kb
            ));
        }
        if self.out.as_os_str().is_empty() {
            return bad("empty output path".into());
        }
        match fs::metadata(&self.out) {
            Ok(m) if !m.is_dir() => {
                return bad(format!(
                    "{} exists and is not a directory",
                    self.out.display()
                ))
            }
            Ok(_) => {
                let non_empty = fs::read_dir(&self.out)
                    .map(|mut d| d.next().is_some())
                    .unwrap_or(true);
                if non_empty {
                    return bad(format!("{} exists and is not empty", self.out.display()));
                }
            }
            Err(_) => {}
        }
        for e in &self.extra_events {
            if e.is_empty() || e.contains("..") || e.starts_with('/') {
                return bad(format!("bad event name {e:?}"));
            }
        }
        Ok(())
    }
}

/// Why a capture failed.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// Tracing needs root (CAP_SYS_ADMIN for tracefs writes and /proc/kpageflags).
    #[error("capturing needs root (effective uid is not 0)")]
    NotRoot,
    /// No tracefs mount found and mounting one failed.
    #[error("no tracefs: {0}")]
    NoTracefs(String),
    /// A required trace event does not exist in this kernel.
    #[error("trace event {0} is not available in this kernel")]
    EventMissing(String),
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Bad [`CaptureOptions`].
    #[error("invalid capture options: {0}")]
    InvalidOptions(String),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> CaptureError + '_ {
    move |source| CaptureError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Phase reported to the progress callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CapturePhase {
    /// Finding tracefs, creating and configuring the instance.
    Setup,
    /// Tracing is on; taking the before/ snapshot.
    SnapshotBefore,
    /// Waiting for `duration` (or `stop`).
    Tracing,
    /// Taking the after/ snapshot.
    SnapshotAfter,
    /// Tracing off; reading what is left in the ring buffer.
    Draining,
    /// Everything written and cleaned up.
    Done,
}

/// Progress report (phase changes, and about once a second while tracing).
#[derive(Clone, Debug)]
pub struct CaptureProgress {
    /// Current phase.
    pub phase: CapturePhase,
    /// Time since tracing was switched on.
    pub elapsed: Duration,
    /// Trace lines written so far.
    pub lines: u64,
    /// Uncompressed trace bytes so far.
    pub bytes: u64,
}

/// A marker written through `trace_marker`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct MarkerInfo {
    /// CLOCK_MONOTONIC seconds just before the write (the trace clock is `mono`).
    pub mono_s: f64,
    /// The marker text.
    pub text: String,
}

/// One CPU's `per_cpu/cpuN/stats` after the drain.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct CpuBufferStats {
    /// CPU number.
    pub cpu: u32,
    /// Events still in the buffer.
    pub entries: u64,
    /// Events overwritten before being read.
    pub overrun: u64,
    /// Events lost to commit overruns.
    pub commit_overrun: u64,
    /// Events dropped because the buffer was full.
    pub dropped_events: u64,
    /// Events read through trace_pipe.
    pub read_events: u64,
}

/// The result of a capture; also written to `out/meta.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct CaptureSummary {
    /// `spb-lab capture <version>`.
    pub tool: String,
    /// `/proc/sys/kernel/osrelease`.
    pub kernel: String,
    /// The tracefs mount used.
    pub tracefs: String,
    /// This capture mounted tracefs itself (and unmounted it afterwards).
    pub mounted_tracefs: bool,
    /// The private instance name.
    pub instance: String,
    /// The selected `trace_clock` as read back (`mono`).
    pub trace_clock: String,
    /// Per-CPU ring-buffer size requested (KiB).
    pub buffer_size_kb: u32,
    /// Events enabled (required + extra that existed).
    pub enabled_events: Vec<String>,
    /// Extra events that do not exist in this kernel.
    pub missing_extra_events: Vec<String>,
    /// `CaptureOptions::duration` in seconds.
    pub duration_requested_s: f64,
    /// From WORKLOAD_BEGIN to WORKLOAD_END.
    pub duration_s: f64,
    /// From tracing on to tracing off.
    pub duration_tracing_s: f64,
    /// The `stop` flag ended the capture early.
    pub interrupted: bool,
    /// CLOCK_MONOTONIC when tracing was switched on.
    pub trace_on_mono_s: f64,
    /// CLOCK_MONOTONIC when tracing was switched off.
    pub trace_off_mono_s: f64,
    /// Unix time when tracing was switched on.
    pub trace_on_unix_s: f64,
    /// Markers written, in order.
    pub markers: Vec<MarkerInfo>,
    /// Lines written to trace.txt.zst.
    pub lines_total: u64,
    /// Bytes read from trace_pipe.
    pub bytes_uncompressed: u64,
    /// Size of trace.txt.zst.
    pub trace_txt_zst_bytes: u64,
    /// Lines per event name (as counted while streaming).
    pub event_counts: BTreeMap<String, u64>,
    /// `CPU:N [LOST M EVENTS]` lines in the stream.
    pub lost_event_lines: u64,
    /// Sum of M over those lines.
    pub lost_events_in_stream: u64,
    /// `per_cpu/cpu*/stats` after the drain.
    pub ringbuffer_stats: Vec<CpuBufferStats>,
    /// dropped + overrun events over all CPUs (0 means nothing was lost).
    pub events_lost: u64,
    /// The hashed ` page=` field was removed from kmem lines.
    pub page_field_stripped: bool,
    /// `--from-boot`: lines of the saved boot ring buffer (`boot_trace.txt.zst`).
    #[serde(default)]
    pub boot_trace_lines: u64,
    /// Of those lines, kmem page events.
    #[serde(default)]
    pub boot_trace_kmem_events: u64,
}

/// System hooks (real Linux, or a fake tree in tests).
trait Backend: Sync {
    fn is_root(&self) -> bool;
    fn is_kernel_tracefs(&self, path: &Path) -> bool;
    fn mount_tracefs(&self, at: &Path) -> io::Result<()>;
    fn unmount(&self, at: &Path) -> io::Result<()>;
    fn create_instance(&self, dir: &Path) -> io::Result<()>;
    fn remove_instance(&self, dir: &Path) -> io::Result<()>;
}

struct LinuxBackend;

fn cstr(p: &Path) -> io::Result<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))
}

impl Backend for LinuxBackend {
    fn is_root(&self) -> bool {
        // SAFETY: geteuid has no preconditions.
        unsafe { libc::geteuid() == 0 }
    }
    fn is_kernel_tracefs(&self, path: &Path) -> bool {
        const TRACEFS_MAGIC: i64 = 0x7472_6163;
        const DEBUGFS_MAGIC: i64 = 0x6462_6720;
        let Ok(c) = cstr(path) else { return false };
        // SAFETY: statfs writes into the zeroed struct we own; the path is NUL-terminated.
        let mut st: libc::statfs = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::statfs(c.as_ptr(), &mut st) };
        #[allow(clippy::unnecessary_cast)]
        let t = st.f_type as i64;
        r == 0 && (t == TRACEFS_MAGIC || t == DEBUGFS_MAGIC)
    }
    fn mount_tracefs(&self, at: &Path) -> io::Result<()> {
        let target = cstr(at)?;
        // SAFETY: all pointers are valid NUL-terminated strings or NULL data.
        let r = unsafe {
            libc::mount(
                c"nodev".as_ptr(),
                target.as_ptr(),
                c"tracefs".as_ptr(),
                0,
                std::ptr::null(),
            )
        };
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
    fn unmount(&self, at: &Path) -> io::Result<()> {
        let target = cstr(at)?;
        // SAFETY: valid NUL-terminated path.
        let r = unsafe { libc::umount2(target.as_ptr(), 0) };
        if r == 0 {
            return Ok(());
        }
        // SAFETY: as above; lazy detach if still busy.
        let r = unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
    fn create_instance(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir(dir)
    }
    fn remove_instance(&self, dir: &Path) -> io::Result<()> {
        fs::remove_dir(dir)
    }
}

/// `"local global [mono] boot"` → `"mono"` (the whole trimmed text if there are no brackets).
fn selected_clock(s: &str) -> String {
    match (s.find('['), s.find(']')) {
        (Some(a), Some(b)) if a < b => s[a + 1..b].to_string(),
        _ => s.trim().to_string(),
    }
}

fn mono_now() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn write_file(path: &Path, data: &str) -> Result<(), CaptureError> {
    fs::write(path, data).map_err(io_err(path))
}

fn read_string(path: &Path) -> Result<String, CaptureError> {
    let mut s = String::new();
    File::open(path)
        .and_then(|mut f| f.read_to_string(&mut s))
        .map_err(io_err(path))?;
    Ok(s)
}

/// Capture into `opts.out` until `opts.duration` elapsed or `stop` is set.
///
/// `progress` is called on each phase change and about once a second while tracing.
/// Requires root when tracefs has to be found/mounted or the given path is a kernel tracefs.
pub fn capture(
    opts: &CaptureOptions,
    stop: Arc<AtomicBool>,
    progress: impl FnMut(&CaptureProgress),
) -> Result<CaptureSummary, CaptureError> {
    capture_with(&LinuxBackend, opts, stop, progress)
}

/// Cleanup of what setup changed: disable events, remove the instance, unmount.
struct Cleanup<'b> {
    backend: &'b dyn Backend,
    instance: Option<PathBuf>,
    mounted: Option<PathBuf>,
    /// The top-level `tracing_on` file and its value before `--from-boot` stopped it.
    top_tracing_on: Option<(PathBuf, String)>,
}

impl Cleanup<'_> {
    fn run(&mut self) -> Result<(), CaptureError> {
        let mut first_err = None;
        if let Some((p, v)) = self.top_tracing_on.take() {
            let _ = fs::write(p, v);
        }
        if let Some(i) = self.instance.take() {
            let _ = fs::write(i.join("tracing_on"), "0");
            let _ = fs::write(i.join("events/enable"), "0");
            let _ = fs::write(i.join("trace"), "");
            if let Err(e) = self.backend.remove_instance(&i) {
                first_err.get_or_insert(CaptureError::Io { path: i, source: e });
            }
        }
        if let Some(m) = self.mounted.take() {
            match self.backend.unmount(&m) {
                Ok(()) => {
                    let _ = fs::remove_dir(&m);
                }
                Err(e) => {
                    first_err.get_or_insert(CaptureError::Io { path: m, source: e });
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = self.run();
    }
}

/// `--from-boot`: stop the top-level buffer (restored at cleanup) and save its `trace` file to
/// `boot_trace.txt.zst`, the per-CPU stats to `boot_ringbuffer_stats.txt`, and `/proc/iomem`,
/// `/proc/cmdline` to `iomem.txt`, `cmdline.txt`. Returns (lines, kmem page events); a buffer
/// without any kmem page event is an error naming the kernel command line to use.
fn save_boot_buffer(
    tracefs: &Path,
    opts: &CaptureOptions,
    cleanup: &mut Cleanup<'_>,
) -> Result<(u64, u64), CaptureError> {
    let on = tracefs.join("tracing_on");
    let prev = read_string(&on)?.trim().to_string();
    cleanup.top_tracing_on = Some((on.clone(), prev));
    write_file(&on, "0")?;
    let src = tracefs.join("trace");
    let dst = opts.out.join("boot_trace.txt.zst");
    let f = File::open(&src).map_err(io_err(&src))?;
    let out = File::create(&dst).map_err(io_err(&dst))?;
    let mut enc = zstd::stream::write::Encoder::new(out, 3).map_err(io_err(&dst))?;
    let mut r = io::BufReader::with_capacity(1 << 20, f);
    let (mut lines, mut kmem) = (0u64, 0u64);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = io::BufRead::read_until(&mut r, b'\n', &mut line).map_err(io_err(&src))?;
        if n == 0 {
            break;
        }
        lines += 1;
        if let Some(name) = crate::trace::parse::event_name_of(&line) {
            kmem += name.starts_with(b"mm_page_") as u64;
        }
        enc.write_all(&line).map_err(io_err(&dst))?;
    }
    enc.finish().map_err(io_err(&dst))?;
    let (_, stats) = read_cpu_stats(tracefs);
    write_file(&opts.out.join("boot_ringbuffer_stats.txt"), &stats)?;
    for (f, to) in [("iomem", "iomem.txt"), ("cmdline", "cmdline.txt")] {
        if let Ok(t) = fs::read_to_string(opts.proc_root.join(f)) {
            write_file(&opts.out.join(to), &t)?;
        }
    }
    if kmem == 0 {
        return Err(CaptureError::InvalidOptions(format!(
            "--from-boot: {} holds no kmem page event ({lines} lines): boot with `trace_event=kmem:mm_page_alloc,kmem:mm_page_free,kmem:mm_page_alloc_extfrag,kmem:mm_page_alloc_zone_locked trace_buf_size=64M` on the kernel command line (docs/replay.md)",
            src.display()
        )));
    }
    Ok((lines, kmem))
}

fn find_tracefs(
    backend: &dyn Backend,
    opts: &CaptureOptions,
    cleanup: &mut Cleanup<'_>,
) -> Result<PathBuf, CaptureError> {
    if let Some(t) = &opts.tracefs {
        if backend.is_kernel_tracefs(t) && !backend.is_root() {
            return Err(CaptureError::NotRoot);
        }
        if !t.join("instances").is_dir() {
            return Err(CaptureError::NoTracefs(format!(
                "{} has no instances/ directory",
                t.display()
            )));
        }
        return Ok(t.clone());
    }
    if !backend.is_root() {
        return Err(CaptureError::NotRoot);
    }
    for c in ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"] {
        let p = PathBuf::from(c);
        if p.join("instances").is_dir() {
            return Ok(p);
        }
    }
    let at = std::env::temp_dir().join(format!("spb-tracefs-{}", std::process::id()));
    fs::create_dir_all(&at).map_err(io_err(&at))?;
    match backend.mount_tracefs(&at) {
        Ok(()) => {
            cleanup.mounted = Some(at.clone());
            if at.join("instances").is_dir() {
                Ok(at)
            } else {
                Err(CaptureError::NoTracefs(format!(
                    "mounted tracefs at {} has no instances/",
                    at.display()
                )))
            }
        }
        Err(e) => {
            let _ = fs::remove_dir(&at);
            Err(CaptureError::NoTracefs(format!(
                "not mounted at /sys/kernel/tracing or /sys/kernel/debug/tracing, and `mount -t tracefs nodev {}` failed: {e}",
                at.display()
            )))
        }
    }
}

/// Copy the /proc files and (optionally) zstd-compress kpageflags/kpagecount into `dir`.
fn snapshot(opts: &CaptureOptions, dir: &Path) -> Result<(), CaptureError> {
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    for f in PROC_SNAPSHOT_FILES {
        let src = opts.proc_root.join(f);
        let mut data = Vec::new();
        File::open(&src)
            .and_then(|mut h| h.read_to_end(&mut data))
            .map_err(io_err(&src))?;
        let dst = dir.join(f);
        fs::write(&dst, &data).map_err(io_err(&dst))?;
    }
    // Optional extra: uptime.
    let up = opts.proc_root.join("uptime");
    if let Ok(s) = fs::read(&up) {
        let dst = dir.join("uptime");
        fs::write(&dst, s).map_err(io_err(&dst))?;
    }
    if opts.kpage_snapshots {
        for f in ["kpageflags", "kpagecount"] {
            let src = opts.proc_root.join(f);
            let dst = dir.join(format!("{f}.zst"));
            let mut input = File::open(&src).map_err(io_err(&src))?;
            let out = File::create(&dst).map_err(io_err(&dst))?;
            let mut enc = zstd::Encoder::new(BufWriter::with_capacity(1 << 20, out), ZSTD_LEVEL)
                .map_err(io_err(&dst))?;
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = match input.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        return Err(CaptureError::Io {
                            path: src,
                            source: e,
                        })
                    }
                };
                enc.write_all(&buf[..n]).map_err(io_err(&dst))?;
            }
            let w = enc.finish().map_err(io_err(&dst))?;
            w.into_inner().map_err(|e| CaptureError::Io {
                path: dst.clone(),
                source: e.into_error(),
            })?;
        }
    }
    Ok(())
}

/// Counters shared between the reader thread and the main thread.
#[derive(Default)]
struct Live {
    lines: AtomicU64,
    bytes: AtomicU64,
    failed: AtomicBool,
}

struct PumpResult {
    lines: u64,
    bytes: u64,
    counts: BTreeMap<String, u64>,
    lost_lines: u64,
    lost_events: u64,
}

/// Remove ` page=<token>` right after the `<event>:` of a kmem page event line.
fn strip_page(line: &[u8]) -> Option<(usize, usize)> {
    let name = event_name_of(line)?;
    if !name.starts_with(b"mm_page") {
        return None;
    }
    // Offset of the ':' that ends the event name (the name is a subslice of `line`).
    let p = (name.as_ptr() as usize).checked_sub(line.as_ptr() as usize)? + name.len();
    if !line.get(p..)?.starts_with(b": page=") {
        return None;
    }
    let after = p + 2 + 5;
    let q = line[after..]
        .iter()
        .position(|&b| b == b' ')
        .map_or(line.len(), |r| after + r);
    // Cut [p+1, q): keeps ":" and the following " pfn=...".
    Some((p + 1, q))
}

#[cfg(test)]
pub(crate) fn tests_strip_page(line: &[u8]) -> Option<(usize, usize)> {
    strip_page(line)
}

/// Per-line accounting of the reader thread.
struct Sink {
    strip: bool,
    lines: u64,
    hot: [(&'static [u8], u64); 6],
    counts: BTreeMap<String, u64>,
    lost_lines: u64,
    lost_events: u64,
}

impl Sink {
    fn handle(&mut self, line: &[u8], outbuf: &mut Vec<u8>) {
        self.lines += 1;
        match event_name_of(line) {
            Some(n) => match self.hot.iter_mut().find(|(h, _)| *h == n) {
                Some((_, c)) => *c += 1,
                None => {
                    *self
                        .counts
                        .entry(String::from_utf8_lossy(n).into_owned())
                        .or_default() += 1
                }
            },
            None => {
                if line.starts_with(b"CPU:") {
                    self.lost_lines += 1;
                    if let Some(p) = memchr::memmem::find(line, b"[LOST ") {
                        let digits = line[p + 6..]
                            .iter()
                            .take_while(|b| b.is_ascii_digit())
                            .count();
                        self.lost_events +=
                            crate::trace::parse::parse_dec_u64(&line[p + 6..p + 6 + digits])
                                .unwrap_or(0);
                    }
                }
            }
        }
        match if self.strip { strip_page(line) } else { None } {
            Some((a, b)) => {
                outbuf.extend_from_slice(&line[..a]);
                outbuf.extend_from_slice(&line[b..]);
            }
            None => outbuf.extend_from_slice(line),
        }
        outbuf.push(b'\n');
    }
}

/// The reader thread: trace_pipe → (count, strip) → zstd file.
fn pump(
    mut pipe: File,
    out_path: &Path,
    strip: bool,
    drain: &AtomicBool,
    live: &Live,
) -> Result<PumpResult, CaptureError> {
    let out = File::create(out_path).map_err(io_err(out_path))?;
    let mut enc = zstd::Encoder::new(BufWriter::with_capacity(1 << 20, out), ZSTD_LEVEL)
        .map_err(io_err(out_path))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut carry: Vec<u8> = Vec::new();
    let mut outbuf: Vec<u8> = Vec::with_capacity(2 << 20);
    let mut sink = Sink {
        strip,
        lines: 0,
        hot: [
            (b"mm_page_alloc", 0),
            (b"mm_page_free", 0),
            (b"mm_page_free_batched", 0),
            (b"mm_page_alloc_zone_locked", 0),
            (b"mm_page_pcpu_drain", 0),
            (b"mm_page_alloc_extfrag", 0),
        ],
        counts: BTreeMap::new(),
        lost_lines: 0,
        lost_events: 0,
    };
    let (mut bytes, mut frame_bytes) = (0u64, 0u64);
    let mut empties = 0u32;
    let mut drain_started: Option<Instant> = None;
    let pipe_path = PathBuf::from("trace_pipe");

    loop {
        let n = match pipe.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            Err(e) => {
                return Err(CaptureError::Io {
                    path: pipe_path,
                    source: e,
                })
            }
        };
        if n == 0 {
            if drain.load(Ordering::Acquire) {
                let t0 = *drain_started.get_or_insert_with(Instant::now);
                empties += 1;
                // Drained: several empty reads in a row after tracing was switched off.
                if empties >= 3 || t0.elapsed() > Duration::from_secs(60) {
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(if drain.load(Ordering::Relaxed) {
                20
            } else {
                5
            }));
            continue;
        }
        empties = 0;
        bytes += n as u64;
        let data = &buf[..n];
        let mut start = 0;
        if !carry.is_empty() {
            match memchr::memchr(b'\n', data) {
                Some(nl) => {
                    carry.extend_from_slice(&data[..nl]);
                    sink.handle(&carry, &mut outbuf);
                    carry.clear();
                    start = nl + 1;
                }
                None => {
                    carry.extend_from_slice(data);
                    start = n;
                }
            }
        }
        while start < n {
            match memchr::memchr(b'\n', &data[start..]) {
                Some(r) => {
                    sink.handle(&data[start..start + r], &mut outbuf);
                    start += r + 1;
                }
                None => {
                    carry.extend_from_slice(&data[start..]);
                    break;
                }
            }
        }
        enc.write_all(&outbuf).map_err(io_err(out_path))?;
        frame_bytes += outbuf.len() as u64;
        outbuf.clear();
        if frame_bytes >= FRAME_BYTES {
            // Close the frame so that everything written so far stays decodable.
            let w = enc.finish().map_err(io_err(out_path))?;
            enc = zstd::Encoder::new(w, ZSTD_LEVEL).map_err(io_err(out_path))?;
            frame_bytes = 0;
        }
        live.lines.store(sink.lines, Ordering::Relaxed);
        live.bytes.store(bytes, Ordering::Relaxed);
    }
    drop(pipe);
    if !carry.is_empty() {
        // A last line without '\n' (should not happen with trace_pipe): keep it, terminated.
        sink.handle(&carry, &mut outbuf);
    }
    enc.write_all(&outbuf).map_err(io_err(out_path))?;
    let w = enc.finish().map_err(io_err(out_path))?;
    let f = w.into_inner().map_err(|e| CaptureError::Io {
        path: out_path.to_path_buf(),
        source: e.into_error(),
    })?;
    f.sync_all().map_err(io_err(out_path))?;
    let mut counts = sink.counts;
    for (h, c) in sink.hot {
        if c > 0 {
            counts.insert(String::from_utf8_lossy(h).into_owned(), c);
        }
    }
    live.lines.store(sink.lines, Ordering::Relaxed);
    live.bytes.store(bytes, Ordering::Relaxed);
    Ok(PumpResult {
        lines: sink.lines,
        bytes,
        counts,
        lost_lines: sink.lost_lines,
        lost_events: sink.lost_events,
    })
}

fn read_cpu_stats(instance: &Path) -> (Vec<CpuBufferStats>, String) {
    let mut stats = Vec::new();
    let mut text = String::new();
    let dir = instance.join("per_cpu");
    let mut cpus: Vec<(u32, PathBuf)> = fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    n.strip_prefix("cpu")
                        .and_then(|c| c.parse::<u32>().ok())
                        .map(|c| (c, e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    cpus.sort();
    for (cpu, p) in cpus {
        let Ok(s) = fs::read_to_string(p.join("stats")) else {
            continue;
        };
        text.push_str(&format!("== cpu{cpu}\n{s}"));
        if !s.ends_with('\n') {
            text.push('\n');
        }
        let mut st = CpuBufferStats {
            cpu,
            ..Default::default()
        };
        for l in s.lines() {
            let Some((k, v)) = l.split_once(':') else {
                continue;
            };
            let Ok(v) = v.trim().parse::<u64>() else {
                continue;
            };
            match k.trim() {
                "entries" => st.entries = v,
                "overrun" => st.overrun = v,
                "commit overrun" => st.commit_overrun = v,
                "dropped events" => st.dropped_events = v,
                "read events" => st.read_events = v,
                _ => {}
            }
        }
        stats.push(st);
    }
    (stats, text)
}

struct Markers {
    file: File,
    path: PathBuf,
    list: Vec<MarkerInfo>,
}

impl Markers {
    fn mark(&mut self, text: &str) -> Result<(), CaptureError> {
        let t = mono_now();
        self.file
            .write_all(format!("{text}\n").as_bytes())
            .map_err(io_err(&self.path))?;
        self.list.push(MarkerInfo {
            mono_s: t,
            text: text.to_string(),
        });
        Ok(())
    }
}

fn capture_with(
    backend: &dyn Backend,
    opts: &CaptureOptions,
    stop: Arc<AtomicBool>,
    mut progress: impl FnMut(&CaptureProgress),
) -> Result<CaptureSummary, CaptureError> {
    opts.validate()?;
    let mut report = |phase, elapsed, lines, bytes| {
        progress(&CaptureProgress {
            phase,
            elapsed,
            lines,
            bytes,
        })
    };
    report(CapturePhase::Setup, Duration::ZERO, 0, 0);

    let mut cleanup = Cleanup {
        backend,
        instance: None,
        mounted: None,
        top_tracing_on: None,
    };
    let tracefs = find_tracefs(backend, opts, &mut cleanup)?;

    let out = &opts.out;
    fs::create_dir_all(out).map_err(io_err(out))?;
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "capture".into());
    let kernel = fs::read_to_string(opts.proc_root.join("sys/kernel/osrelease"))
        .unwrap_or_default()
        .trim()
        .to_string();

    // The private instance.
    let inst_name = format!("spb-{}", std::process::id());
    let inst = tracefs.join("instances").join(&inst_name);
    backend.create_instance(&inst).map_err(io_err(&inst))?;
    cleanup.instance = Some(inst.clone());

    for e in REQUIRED_EVENTS {
        if !inst.join("events").join(e).join("enable").exists() {
            return Err(CaptureError::EventMissing(e.to_string()));
        }
    }
    write_file(&inst.join("tracing_on"), "0")?;
    // From boot, the stream must use the boot buffer's clock (the default `local`) so that the
    // replay can merge the two by timestamp; otherwise `mono`.
    let clock = if opts.from_boot {
        selected_clock(&read_string(&tracefs.join("trace_clock"))?)
    } else {
        "mono".to_string()
    };
    write_file(&inst.join("trace_clock"), &clock)?;
    write_file(&inst.join("buffer_size_kb"), &opts.buffer_kb.to_string())?;
    write_file(&inst.join("events/enable"), "0")?;
    write_file(&inst.join("trace"), "")?;
    let mut enabled = Vec::new();
    let mut missing_extra = Vec::new();
    for e in REQUIRED_EVENTS {
        write_file(&inst.join("events").join(e).join("enable"), "1")?;
        enabled.push(e.to_string());
    }
    for e in &opts.extra_events {
        let p = inst.join("events").join(e).join("enable");
        if p.exists() {
            write_file(&p, "1")?;
            enabled.push(e.clone());
        } else {
            missing_extra.push(e.clone());
        }
    }
    let trace_clock = selected_clock(&read_string(&inst.join("trace_clock"))?);

    let pipe_path = inst.join("trace_pipe");
    let pipe = {
        use std::os::unix::fs::OpenOptionsExt;
        OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&pipe_path)
            .map_err(io_err(&pipe_path))?
    };
    let marker_path = inst.join("trace_marker");
    let mut markers = Markers {
        file: OpenOptions::new()
            .append(true)
            .open(&marker_path)
            .map_err(io_err(&marker_path))?,
        path: marker_path,
        list: Vec::new(),
    };

    let trace_path = out.join("trace.txt.zst");
    let drain = AtomicBool::new(false);
    let live = Live::default();

    write_file(&inst.join("tracing_on"), "1")?;
    let t_on = Instant::now();
    // From boot: the instance records from now on (its ring buffer holds what the reader has
    // not read yet), so stopping the top-level buffer now leaves no gap; the overlap is removed
    // by the replay.
    let boot_saved = if opts.from_boot {
        save_boot_buffer(&tracefs, opts, &mut cleanup)?
    } else {
        (0, 0)
    };
    let trace_on_mono = mono_now();
    let trace_on_unix = unix_now();

    let (main_result, pump_result, t_wl, trace_off_mono, interrupted) = std::thread::scope(|s| {
        let pump_thread = s.spawn(|| {
            let r = pump(pipe, &trace_path, opts.strip_page_field, &drain, &live);
            if r.is_err() {
                live.failed.store(true, Ordering::Release);
            }
            r
        });
        let snap_lines = |live: &Live| {
            (
                live.lines.load(Ordering::Relaxed),
                live.bytes.load(Ordering::Relaxed),
            )
        };
        let mut interrupted = false;
        let mut t_wl = (0.0f64, 0.0f64);
        let main_result = (|| -> Result<(), CaptureError> {
            let (l, b) = snap_lines(&live);
            report(CapturePhase::SnapshotBefore, t_on.elapsed(), l, b);
            markers.mark(&format!("BUDDYCAP SNAPSHOT_BEGIN name={name}"))?;
            snapshot(opts, &out.join("before"))?;
            markers.mark("BUDDYCAP SNAPSHOT_END")?;
            markers.mark(&format!("BUDDYCAP WORKLOAD_BEGIN name={name}"))?;
            let t0 = Instant::now();
            t_wl.0 = mono_now();
            let mut last_report = Instant::now();
            let (l, b) = snap_lines(&live);
            report(CapturePhase::Tracing, t_on.elapsed(), l, b);
            while t0.elapsed() < opts.duration {
                if stop.load(Ordering::Acquire) {
                    interrupted = true;
                    break;
                }
                if live.failed.load(Ordering::Acquire) {
                    break;
                }
                std::thread::sleep(
                    Duration::from_millis(20).min(opts.duration.saturating_sub(t0.elapsed())),
                );
                if last_report.elapsed() >= Duration::from_secs(1) {
                    last_report = Instant::now();
                    let (l, b) = snap_lines(&live);
                    report(CapturePhase::Tracing, t_on.elapsed(), l, b);
                }
            }
            t_wl.1 = mono_now();
            if opts.from_boot {
                markers.mark(crate::replay::boot::STRESS_END)?;
            }
            markers.mark(&format!(
                "BUDDYCAP WORKLOAD_END rc={}",
                if interrupted { 130 } else { 0 }
            ))?;
            if live.failed.load(Ordering::Acquire) {
                return Ok(()); // the pump's error is reported below
            }
            let (l, b) = snap_lines(&live);
            report(CapturePhase::SnapshotAfter, t_on.elapsed(), l, b);
            markers.mark("BUDDYCAP AFTER_SNAPSHOT_BEGIN")?;
            snapshot(opts, &out.join("after"))?;
            markers.mark("BUDDYCAP AFTER_SNAPSHOT_END")?;
            Ok(())
        })();
        // Always: tracing off, drain, finish the zstd frame.
        let on_path = inst.join("tracing_on");
        let off = fs::write(&on_path, "0").map_err(io_err(&on_path));
        let trace_off_mono = mono_now();
        let (l, b) = snap_lines(&live);
        report(CapturePhase::Draining, t_on.elapsed(), l, b);
        drain.store(true, Ordering::Release);
        let pump_result = match pump_thread.join() {
            Ok(r) => r,
            Err(_) => Err(CaptureError::Io {
                path: trace_path.clone(),
                source: io::Error::other("trace reader thread panicked"),
            }),
        };
        (
            main_result.and(off),
            pump_result,
            t_wl,
            trace_off_mono,
            interrupted,
        )
    });
    let pumped = pump_result?;
    main_result?;

    let (ringbuffer_stats, stats_text) = read_cpu_stats(&inst);
    let stats_path = out.join("ringbuffer_stats.txt");
    write_file(&stats_path, &stats_text)?;
    let events_lost = ringbuffer_stats
        .iter()
        .map(|s| s.overrun + s.dropped_events)
        .sum::<u64>();

    let summary = CaptureSummary {
        tool: format!("spb-lab capture {}", env!("CARGO_PKG_VERSION")),
        kernel,
        tracefs: tracefs.display().to_string(),
        mounted_tracefs: cleanup.mounted.is_some(),
        instance: inst_name,
        trace_clock,
        buffer_size_kb: opts.buffer_kb,
        enabled_events: enabled,
        missing_extra_events: missing_extra,
        duration_requested_s: opts.duration.as_secs_f64(),
        duration_s: (t_wl.1 - t_wl.0).max(0.0),
        duration_tracing_s: trace_off_mono - trace_on_mono,
        interrupted,
        trace_on_mono_s: trace_on_mono,
        trace_off_mono_s: trace_off_mono,
        trace_on_unix_s: trace_on_unix,
        markers: std::mem::take(&mut markers.list),
        lines_total: pumped.lines,
        bytes_uncompressed: pumped.bytes,
        trace_txt_zst_bytes: fs::metadata(&trace_path).map(|m| m.len()).unwrap_or(0),
        event_counts: pumped.counts,
        lost_event_lines: pumped.lost_lines,
        lost_events_in_stream: pumped.lost_events,
        ringbuffer_stats,
        events_lost,
        page_field_stripped: opts.strip_page_field,
        boot_trace_lines: boot_saved.0,
        boot_trace_kmem_events: boot_saved.1,
    };
    let meta_path = out.join("meta.json");
    let json = serde_json::to_string_pretty(&summary).map_err(|e| CaptureError::Io {
        path: meta_path.clone(),
        source: io::Error::other(e),
    })?;
    write_file(&meta_path, &json)?;
    drop(markers);
    cleanup.run()?;
    report(
        CapturePhase::Done,
        t_on.elapsed(),
        summary.lines_total,
        summary.bytes_uncompressed,
    );
    Ok(summary)
}

#[cfg(test)]
mod tests;
