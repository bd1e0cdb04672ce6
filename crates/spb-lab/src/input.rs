//! Bounded reading of input files, and the model-memory check before a machine is built.
//!
//! Every whole-file input (scenario TOML, zoneinfo, a capture's `meta.json`, `sweep --merge`
//! files) is read through [`read_text`] with a documented size limit (the `*_MAX_BYTES`
//! constants, listed in docs/reliability.md): the file is opened first and checked to be a file
//! (a directory, a symbolic link loop, a missing file are I/O errors, exit 4, with the path and
//! the problem), then at most `limit + 1` bytes are read, so `/dev/zero` or a huge file costs at
//! most `limit` bytes of memory and is refused as bad input (exit 3). A leading UTF-8 byte order
//! mark is dropped, as TOML and the trace reader do; text that is not UTF-8 is bad input naming
//! the byte offset.
//!
//! [`check_model_memory`] estimates the memory the model of a machine needs (measured:
//! [`MODEL_BYTES_PER_PAGE`]) and refuses a machine that does not fit in the memory this host has
//! available, before anything is allocated.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::path::Path;

/// A scenario TOML file (the built-ins are 1–3 KiB).
pub const SCENARIO_MAX_BYTES: u64 = 1 << 20;
/// A `/proc/zoneinfo` snapshot (about 2 KiB per zone and CPU; 1 024 CPUs × 5 zones fit).
pub const ZONEINFO_MAX_BYTES: u64 = 16 << 20;
/// A capture directory's `meta.json` (a few KiB: the kernel, the options, the markers).
pub const META_JSON_MAX_BYTES: u64 = 1 << 20;
/// One `sweep --merge` file (a JSON line is about 3 KiB: some 80 000 cells).
pub const SWEEP_FILE_MAX_BYTES: u64 = 256 << 20;

/// Why an input file could not be read: displayed as `PATH[:LINE]: MESSAGE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadError {
    /// The file is missing, a directory, a symbolic link loop, unreadable (exit 4), rather
    /// than too large or not UTF-8 (bad input, exit 3).
    pub io: bool,
    pub path: String,
    pub line: Option<usize>,
    pub message: String,
}

impl ReadError {
    fn io(path: &Path, message: String) -> ReadError {
        ReadError {
            io: true,
            path: path.display().to_string(),
            line: None,
            message,
        }
    }
    fn bad(path: &Path, line: Option<usize>, message: String) -> ReadError {
        ReadError {
            io: false,
            path: path.display().to_string(),
            line,
            message,
        }
    }
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.path)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// A message for an OS error that says what happened (a loop is not "no such file").
pub fn os_message(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        // ELOOP, EISDIR (Linux numbers; the lab is Linux-only)
        Some(40) => "symbolic link loop (too many levels of symbolic links)".into(),
        Some(21) => "is a directory, expected a file".into(),
        _ => match e.kind() {
            ErrorKind::NotFound => "no such file or directory".into(),
            ErrorKind::PermissionDenied => "permission denied".into(),
            _ => e.to_string(),
        },
    }
}

/// Open `path` for reading: a file (regular, a device, a FIFO), not a directory.
pub fn open_file(path: &Path) -> Result<File, ReadError> {
    let io = |m: String| ReadError::io(path, m);
    let f = File::open(path).map_err(|e| io(os_message(&e)))?;
    match f.metadata() {
        Ok(m) if m.is_dir() => Err(io("is a directory, expected a file".into())),
        Ok(_) => Ok(f),
        Err(e) => Err(io(os_message(&e))),
    }
}

/// Read at most `limit` bytes of `path` (see the module documentation); `what` names the kind
/// of file in the too-large message.
pub fn read_bytes(path: &Path, what: &str, limit: u64) -> Result<Vec<u8>, ReadError> {
    let f = open_file(path)?;
    let mut buf = Vec::new();
    if let Ok(m) = f.metadata() {
        if m.is_file() && m.len() > limit {
            return Err(too_large(path, what, limit, Some(m.len())));
        }
    }
    f.take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(|e| ReadError::io(path, os_message(&e)))?;
    if buf.len() as u64 > limit {
        return Err(too_large(path, what, limit, None));
    }
    Ok(buf)
}

fn too_large(path: &Path, what: &str, limit: u64, size: Option<u64>) -> ReadError {
    ReadError::bad(
        path,
        None,
        format!(
            "{}larger than the {} limit for {what}",
            size.map(|s| format!("{s} bytes, ")).unwrap_or_default(),
            human(limit)
        ),
    )
}

fn human(b: u64) -> String {
    if b >= 1 << 30 && b.is_multiple_of(1 << 30) {
        format!("{} GiB", b >> 30)
    } else if b >= 1 << 20 && b.is_multiple_of(1 << 20) {
        format!("{} MiB", b >> 20)
    } else {
        format!("{b}-byte")
    }
}

/// [`read_bytes`] as UTF-8 text, without a leading byte order mark.
pub fn read_text(path: &Path, what: &str, limit: u64) -> Result<String, ReadError> {
    let b = read_bytes(path, what, limit)?;
    let b = b.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&b).to_vec();
    String::from_utf8(b).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..at].iter().filter(|&&c| c == b'\n').count() + 1;
        ReadError::bad(
            path,
            Some(line),
            format!("not UTF-8 text (byte offset {at}): expected {what}"),
        )
    })
}

/// The files a capture directory (`spb capture`, docs/replay.md) may provide, relative to it.
/// [`validate_capture_dir`] checks each one present before a replay reads any.
pub const CAPTURE_FILES: &[&str] = &[
    "trace.txt.zst",
    "trace.txt.gz",
    "trace.txt",
    "trace.zst",
    "meta.json",
    "ringbuffer_stats.txt",
];

/// The files of a capture directory's `before/` and `after/` snapshots.
pub const SNAPSHOT_FILES: &[&str] = &[
    "zoneinfo",
    "buddyinfo",
    "pagetypeinfo",
    "vmstat",
    "meminfo",
    "uptime",
    "kpageflags.zst",
    "kpageflags.gz",
    "kpageflags",
    "kpagecount.zst",
    "kpagecount.gz",
    "kpagecount",
];

/// Check an input path that is given or found: it exists (a dangling link, a link loop, a
/// missing file are I/O errors naming it) and is a regular file (a directory is an I/O error; a
/// device or FIFO, such as a link to `/dev/zero`, is bad input: the lab reads files).
pub fn check_regular_file(path: &Path) -> Result<(), ReadError> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(()),
        Ok(m) if m.is_dir() => Err(ReadError::io(
            path,
            "is a directory, expected a file".into(),
        )),
        Ok(m) => {
            use std::os::unix::fs::FileTypeExt;
            let t = m.file_type();
            let what = if t.is_char_device() {
                "a character device"
            } else if t.is_block_device() {
                "a block device"
            } else if t.is_fifo() {
                "a FIFO"
            } else {
                "a socket"
            };
            Err(ReadError::bad(
                path,
                None,
                format!("is {what}, expected a regular file"),
            ))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let msg = match std::fs::read_link(path) {
                Ok(t) => format!("dangling symbolic link to {}", t.display()),
                Err(_) => "no such file or directory".into(),
            };
            Err(ReadError::io(path, msg))
        }
        Err(e) => Err(ReadError::io(path, os_message(&e))),
    }
}

/// Validate every file a capture directory provides ([`CAPTURE_FILES`], and [`SNAPSHOT_FILES`]
/// under `before/` and `after/`): each present name must lead to a regular file
/// ([`check_regular_file`]); `meta.json` must be a JSON object (at most
/// [`META_JSON_MAX_BYTES`]) whose `markers`, if any, are `{ts|mono_s: number, text: string}`
/// objects (the replay takes its snapshot window from them); the `zoneinfo` snapshots must parse.
/// An absent file is fine (the replay says what it does without it); a present but broken one
/// is an error naming the file and the problem, never silently skipped.
pub fn validate_capture_dir(dir: &Path) -> Result<(), ReadError> {
    let mut names: Vec<String> = CAPTURE_FILES.iter().map(|s| s.to_string()).collect();
    for sub in ["before", "after"] {
        let d = dir.join(sub);
        if std::fs::symlink_metadata(&d).is_err() {
            continue;
        }
        match std::fs::metadata(&d) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(ReadError::bad(&d, None, "expected a directory".into())),
            Err(e) => return Err(ReadError::io(&d, os_message(&e))),
        }
        names.extend(SNAPSHOT_FILES.iter().map(|f| format!("{sub}/{f}")));
    }
    for n in &names {
        let p = dir.join(n);
        if std::fs::symlink_metadata(&p).is_err() {
            continue;
        }
        check_regular_file(&p)?;
        if n == "meta.json" {
            check_meta_json(&p)?;
        } else if n.ends_with("/zoneinfo") {
            let t = read_text(&p, "a /proc/zoneinfo snapshot", ZONEINFO_MAX_BYTES)?;
            spb_alloc::MemoryLayout::from_zoneinfo(&t, spb_alloc::Geometry::X86_64).map_err(
                |e| match e.place.strip_prefix("line ").and_then(|l| l.parse().ok()) {
                    Some(l) => ReadError::bad(&p, Some(l), e.message),
                    None => ReadError::bad(&p, None, e.to_string()),
                },
            )?;
        }
    }
    Ok(())
}

fn check_meta_json(p: &Path) -> Result<(), ReadError> {
    let t = read_text(p, "a capture's meta.json", META_JSON_MAX_BYTES)?;
    let v: serde_json::Value = serde_json::from_str(&t).map_err(|e| {
        ReadError::bad(
            p,
            Some(e.line()),
            format!("expected the capture's JSON summary: {e}"),
        )
    })?;
    let bad = |m: String| Err(ReadError::bad(p, None, m));
    let Some(o) = v.as_object() else {
        return bad("expected a JSON object (the capture's summary)".into());
    };
    if let Some(m) = o.get("markers") {
        let Some(a) = m.as_array() else {
            return bad("markers: expected an array".into());
        };
        for (i, m) in a.iter().enumerate() {
            let ts = m.get("ts").or_else(|| m.get("mono_s"));
            if !ts.is_some_and(|t| t.as_f64().is_some_and(|x| x.is_finite() && x >= 0.0))
                || !m.get("text").is_some_and(|t| t.is_string())
            {
                return bad(format!(
                    "markers[{i}]: expected {{\"ts\": seconds, \"text\": \"...\"}}, got {m}"
                ));
            }
        }
    }
    Ok(())
}

/// The most operations a replay keeps in its op log: half the available memory
/// ([`available_memory`]) at 16 B per operation, and never more than 2^31 (unbounded memory
/// when the check is off: `SPB_MEMORY_AVAILABLE=unlimited`).
pub fn max_trace_ops() -> usize {
    let cap = 1usize << 31;
    match available_memory() {
        Ok(Some(b)) => ((b / 2 / 16) as usize).min(cap),
        _ => cap,
    }
}

/// Bytes of model memory per page of a simulated machine, measured with `/usr/bin/time -v` on
/// `spb run --duration 1s --policy vanilla --memory M` (maximum resident set, 64G vs 256G:
/// 215 216 KiB vs 807 152 KiB, 12.04 B per added page; the allocator's page metadata is 12 of
/// them). A long run adds the workload's objects on top (`seed-16g`, 120 s, 3 policies: about
/// 20 B/page), hence the margin in [`model_memory`].
pub const MODEL_BYTES_PER_PAGE: f64 = 12.04;

/// Estimated bytes of model memory for `machines` machines of `pages` pages each, with a 25 %
/// margin for the workload's own objects and 64 MiB for the program.
pub fn model_memory(pages: u64, machines: u64) -> u64 {
    let per = pages as f64 * MODEL_BYTES_PER_PAGE * 1.25;
    (per * machines.max(1) as f64) as u64 + (64 << 20)
}

/// The environment variable that overrides the memory this host is taken to have available
/// (a size such as `4G`, or `unlimited` to switch the check off), for tests and for hosts whose
/// `/proc/meminfo` does not tell the truth (containers with a cgroup limit).
pub const MEMORY_ENV: &str = "SPB_MEMORY_AVAILABLE";

/// The memory available to the model: [`MEMORY_ENV`] if set, else the cgroup v2 limit or
/// `MemAvailable` of `/proc/meminfo`, whichever is smaller; `None` when unknown or unlimited.
pub fn available_memory() -> Result<Option<u64>, String> {
    if let Ok(v) = std::env::var(MEMORY_ENV) {
        let v = v.trim();
        if v.eq_ignore_ascii_case("unlimited") {
            return Ok(None);
        }
        return match crate::scenario::units::parse_size(v, false) {
            Ok(crate::scenario::units::Size::Bytes(b)) => Ok(Some(b)),
            _ => Err(format!(
                "{MEMORY_ENV}: expected a size such as 8G, or unlimited; got \"{v}\""
            )),
        };
    }
    let mut best: Option<u64> = None;
    if let Ok(t) = std::fs::read_to_string("/proc/meminfo") {
        for l in t.lines() {
            if let Some(rest) = l.strip_prefix("MemAvailable:") {
                if let Some(kb) = rest
                    .split_whitespace()
                    .next()
                    .and_then(|x| x.parse::<u64>().ok())
                {
                    best = Some(kb.saturating_mul(1024));
                }
            }
        }
    }
    if let Ok(t) = std::fs::read_to_string("/sys/fs/cgroup/memory.max") {
        if let Ok(lim) = t.trim().parse::<u64>() {
            let used = std::fs::read_to_string("/sys/fs/cgroup/memory.current")
                .ok()
                .and_then(|c| c.trim().parse::<u64>().ok())
                .unwrap_or(0);
            let free = lim.saturating_sub(used);
            best = Some(best.map_or(free, |b| b.min(free)));
        }
    }
    Ok(best)
}

/// Refuse a model that will not fit: `what` (e.g. `--memory 16T` or a zoneinfo's path) names
/// the machine, `pages` its spanned pages, `machines` how many are built at once.
pub fn check_model_memory(what: &str, pages: u64, machines: u64) -> Result<(), String> {
    let need = model_memory(pages, machines);
    let Some(have) = available_memory()? else {
        return Ok(());
    };
    if need <= have {
        return Ok(());
    }
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    Err(format!(
        "{what}: {} machine{} of {} pages need{} {:.1} GiB of model memory \
         (about {MODEL_BYTES_PER_PAGE} B per page), this machine has {:.1} GiB available \
         (set {MEMORY_ENV} to override)",
        machines,
        if machines == 1 { "" } else { "s" },
        pages,
        if machines == 1 { "s" } else { "" },
        gib(need),
        gib(have)
    ))
}

/// How many of `want` machines of `pages` pages each (at least one) can be built at once in
/// the memory available: `want` when it is unknown, else the most that [`model_memory`] says
/// fit, and the refusal of [`check_model_memory`] when not even one does.
pub fn machines_that_fit(what: &str, pages: u64, want: u64) -> Result<u64, String> {
    check_model_memory(what, pages, 1)?;
    Ok(fitting(pages, want, available_memory()?))
}

/// The most machines of `pages` pages, from 1 to `want`, whose [`model_memory`] fits in `have`
/// bytes (`None`: unknown, so `want`); 1 when none does (the caller has refused that case).
fn fitting(pages: u64, want: u64, have: Option<u64>) -> u64 {
    let want = want.max(1);
    match have {
        None => want,
        Some(have) => (1..=want)
            .rev()
            .find(|&k| model_memory(pages, k) <= have)
            .unwrap_or(1),
    }
}

/// Scenario `sc`'s name for the memory messages (with its RAM size) and its spanned pages.
fn scenario_machine(sc: &crate::Scenario) -> Result<(String, u64), String> {
    let layout = crate::sim::layout_of(sc)?;
    let pages: u64 = layout.zones.iter().map(|z| z.span.len()).sum();
    let what = format!(
        "{} with {} of RAM",
        sc.name,
        crate::scenario::units::fmt_bytes(sc.machine.memory)
    );
    Ok((what, pages))
}

/// [`check_model_memory`] for `machines` machines of scenario `sc` (built at once: one per
/// cell that a sweep runs at a time), named by its RAM size.
pub fn check_scenario_memory(sc: &crate::Scenario, machines: usize) -> Result<(), String> {
    let (what, pages) = scenario_machine(sc)?;
    check_model_memory(&what, pages, machines as u64)
}

/// [`machines_that_fit`] for scenario `sc`: how many of `want` machines of it (one per policy
/// in `spb run`) to build at once.
pub fn scenario_machines_that_fit(sc: &crate::Scenario, want: usize) -> Result<usize, String> {
    let (what, pages) = scenario_machine(sc)?;
    machines_that_fit(&what, pages, want as u64).map(|k| k as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_reads() {
        let e = read_text(Path::new("/dev/zero"), "a test file", 1024).unwrap_err();
        assert!(!e.io && e.to_string().contains("limit"), "{e}");
        let e = read_text(Path::new("/"), "a test file", 1024).unwrap_err();
        assert!(e.io && e.to_string().contains("is a directory"), "{e}");
        let d = std::env::temp_dir().join(format!("spb-input-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let f = d.join("bom.txt");
        std::fs::write(&f, b"\xef\xbb\xbfhello\n").unwrap();
        assert_eq!(read_text(&f, "x", 100).unwrap(), "hello\n");
        std::fs::write(&f, b"ok\n\xff").unwrap();
        let e = read_text(&f, "x", 100).unwrap_err();
        assert!(!e.io && e.to_string().contains(":2: not UTF-8"), "{e}");
        let l = d.join("loop");
        std::os::unix::fs::symlink(&l, &l).unwrap();
        let e = read_text(&l, "x", 100).unwrap_err();
        assert!(e.io && e.to_string().contains("loop"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn memory_estimate() {
        // 16 TiB of 4 KiB pages, three machines at once: far above any test host
        assert!(model_memory(1 << 32, 3) > 150 << 30);
        assert!(model_memory(1 << 18, 1) < 128 << 20);
    }

    #[test]
    fn machines_fitting_in_memory() {
        // 1 TiB of 4 KiB pages: about 4 GiB of model memory per machine
        let pages = 1u64 << 28;
        let one = model_memory(pages, 1);
        assert_eq!(fitting(pages, 4, None), 4);
        assert_eq!(fitting(pages, 0, None), 1);
        assert_eq!(fitting(pages, 4, Some(u64::MAX)), 4);
        assert_eq!(fitting(pages, 4, Some(model_memory(pages, 2))), 2);
        assert_eq!(fitting(pages, 4, Some(model_memory(pages, 2) - 1)), 1);
        assert_eq!(fitting(pages, 4, Some(one - 1)), 1);
        assert_eq!(fitting(pages, 3, Some(model_memory(pages, 5))), 3);
    }
}
