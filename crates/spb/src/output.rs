//! Everything `spb` writes goes through here: output files (`--json`, `--report`, `sweep --out`),
//! standard output and standard error.
//!
//! **Files.** Every output is checked before the work starts ([`check_file`], [`check_dir`]), so a
//! bad path fails at once (exit 4), not after a long run. The check resolves the target the way
//! the write will: `-` is standard output; a symbolic link is followed (the file it points to is
//! written, the link stays); a target that exists and is not a regular file (a character device
//! such as `/dev/null`, a FIFO, `/dev/fd/N` of a pipe) is written in place, never replaced; a
//! directory, a name ending in `/`, a name longer than [`NAME_MAX`] bytes, a missing or read-only
//! directory, a symbolic link loop are refused, naming the path given and the problem. For a
//! regular file the check creates and removes a temporary file in the target's directory, the
//! same one the write will use. The write itself goes to a temporary file in the target's
//! directory (a short name, independent of the target's), is fsynced and renamed over the
//! target, so a failure leaves the old file (or nothing) and no temporary file. A report
//! directory is written whole or not at all ([`write_dir`]): every file goes to a temporary file
//! first, the renames come last, and a directory created for it is removed on failure.
//!
//! **Standard output.** [`print()`] writes through a checked writer instead of `print!` (which
//! panics when stdout is full or closed): a closed pipe (`EPIPE`, e.g. `spb ... | head -c1`)
//! makes later stdout writes no-ops and the command ends quietly with exit 0, as Unix tools do;
//! any other error (`> /dev/full`: `ENOSPC`) is reported once at the end as `spb: stdout: ...`
//! with exit 4. Either way the command finishes its other outputs (a `--json FILE` is still
//! written). [`eprint()`] writes to stderr and ignores errors (there is nowhere left to report
//! them).

use std::fs;
use std::io::{ErrorKind, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::CliError;

/// The longest file name (one path component) accepted, in bytes (Linux's `NAME_MAX`).
pub const NAME_MAX: usize = 255;

/// The longest chain of symbolic links followed (Linux's own limit).
const MAX_LINKS: usize = 40;

/// Where an output path leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `-`: standard output.
    Stdout,
    /// An existing file that is not a regular file (a device, a FIFO): opened and written in
    /// place (the path as given, so `/dev/fd/N` magic links work).
    InPlace(PathBuf),
    /// A regular file, existing or not, after following symbolic links: written through a
    /// temporary file in its directory and a rename.
    File(PathBuf),
}

fn io_err(opt: &str, path: &Path, what: impl std::fmt::Display) -> CliError {
    if opt.is_empty() {
        CliError::Io(format!("{}: {what}", path.display()))
    } else {
        CliError::Io(format!("{opt} {}: {what}", path.display()))
    }
}

/// A human message for an OS error (no "(os error N)" noise for the common ones).
fn os_msg(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::ELOOP) => "symbolic link loop (too many levels of symbolic links)".into(),
        Some(libc::ENAMETOOLONG) => "file name too long".into(),
        Some(libc::EACCES) | Some(libc::EPERM) => "permission denied".into(),
        Some(libc::EROFS) => "read-only file system".into(),
        Some(libc::ENOSPC) => "no space left on device".into(),
        Some(libc::ENOTDIR) => "a component of the path is not a directory".into(),
        _ => match e.kind() {
            ErrorKind::NotFound => "no such file or directory".into(),
            _ => e.to_string(),
        },
    }
}

fn dir_of(path: &Path) -> PathBuf {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf()
}

/// Follow `path` through symbolic links to the path that will be written (which need not exist:
/// a dangling link leads to the file it names).
fn follow_links(opt: &str, given: &Path) -> Result<PathBuf, CliError> {
    let mut p = given.to_path_buf();
    for _ in 0..MAX_LINKS {
        match fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let t = fs::read_link(&p).map_err(|e| io_err(opt, given, os_msg(&e)))?;
                p = if t.is_absolute() {
                    t
                } else {
                    dir_of(&p).join(t)
                };
            }
            Ok(_) => return Ok(p),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(p),
            Err(e) if e.raw_os_error() == Some(libc::ENAMETOOLONG) => return Ok(p),
            Err(e) => return Err(io_err(opt, given, os_msg(&e))),
        }
    }
    Err(io_err(
        opt,
        given,
        "symbolic link loop (too many levels of symbolic links)",
    ))
}

/// Resolve an output file path (see the module documentation); no side effects.
pub fn resolve(opt: &str, path: &Path) -> Result<Target, CliError> {
    let raw = path.as_os_str().as_bytes();
    if raw == b"-" {
        return Ok(Target::Stdout);
    }
    if raw.is_empty() {
        return Err(io_err(opt, path, "empty path, expected a file name"));
    }
    if raw.ends_with(b"/") || path.file_name().is_none() {
        return Err(io_err(
            opt,
            path,
            "names a directory (ends in `/`, `.` or `..`), expected a file name",
        ));
    }
    // the process's own descriptors (`/dev/stdout`, `/dev/fd/N`, `/proc/self/fd/N`) are written
    // in place even when they lead to a regular file: a rename would replace the file the shell
    // redirected stdout to, and stdout would then write to a deleted file
    let fd_path = ["/dev/stdout", "/dev/stderr", "/dev/fd/", "/proc/self/fd/"]
        .iter()
        .any(|p| raw.starts_with(p.as_bytes()));
    match fs::metadata(path) {
        Ok(m) if m.is_dir() => return Err(io_err(opt, path, "is a directory, expected a file")),
        Ok(_) if fd_path => return Ok(Target::InPlace(path.to_path_buf())),
        Ok(m) if !m.is_file() => {
            let ft = m.file_type();
            return if ft.is_char_device() || ft.is_fifo() || ft.is_block_device() {
                Ok(Target::InPlace(path.to_path_buf()))
            } else {
                Err(io_err(
                    opt,
                    path,
                    "is a socket, expected a file, a device or a FIFO",
                ))
            };
        }
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        // said below with the name's length
        Err(e) if e.raw_os_error() == Some(libc::ENAMETOOLONG) => {}
        Err(e) => return Err(io_err(opt, path, os_msg(&e))),
    }
    let real = follow_links(opt, path)?;
    let name = real.file_name().map(|n| n.len()).unwrap_or(0);
    if name > NAME_MAX {
        return Err(io_err(
            opt,
            path,
            format!("the file name is {name} bytes long; the limit is {NAME_MAX}"),
        ));
    }
    let dir = dir_of(&real);
    match fs::metadata(&dir) {
        Ok(m) if m.is_dir() => Ok(Target::File(real)),
        Ok(_) => Err(io_err(
            opt,
            path,
            format!("{} is not a directory", dir.display()),
        )),
        Err(e) if e.kind() == ErrorKind::NotFound => Err(io_err(
            opt,
            path,
            format!("the directory {} does not exist", dir.display()),
        )),
        Err(e) => Err(io_err(
            opt,
            path,
            format!("{}: {}", dir.display(), os_msg(&e)),
        )),
    }
}

static TMP_SEQ: AtomicUsize = AtomicUsize::new(0);

/// A fresh temporary file name in `dir` (short, so a long target name still fits).
fn tmp_in(dir: &Path) -> PathBuf {
    dir.join(format!(
        ".spb-{}-{}.tmp",
        std::process::id(),
        TMP_SEQ.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Create (and remove) a temporary file in `dir`: the directory exists and is writable.
fn probe_dir(opt: &str, given: &Path, dir: &Path) -> Result<(), CliError> {
    let t = tmp_in(dir);
    match fs::OpenOptions::new().write(true).create_new(true).open(&t) {
        Ok(f) => {
            drop(f);
            let _ = fs::remove_file(&t);
            Ok(())
        }
        Err(e) => Err(io_err(
            opt,
            given,
            format!("cannot write in {}: {}", dir.display(), os_msg(&e)),
        )),
    }
}

/// Writable by this process (`access(2)`, which knows about root and read-only mounts).
fn writable(p: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: a valid NUL-terminated path; access(2) only reads it.
    unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
}

/// What the command reads and writes, for [`claim`]: `(option, path as given, absolute path,
/// is an output directory)`.
type Claim = (String, PathBuf, PathBuf, bool);
static CLAIMED: Mutex<Vec<Claim>> = Mutex::new(Vec::new());

/// An absolute path without `.`/`..`, symbolic links resolved as far as the path exists.
fn absolute(p: &Path) -> PathBuf {
    if let Ok(c) = fs::canonicalize(p) {
        return c;
    }
    match (p.parent(), p.file_name()) {
        (Some(d), Some(n)) if !d.as_os_str().is_empty() => absolute(d).join(n),
        (_, Some(n)) => absolute(Path::new(".")).join(n),
        _ => std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()),
    }
}

/// Record that the command reads the input `path` (given as `opt`), so that no output of the
/// same command may overwrite it (`spb replay t.txt --json t.txt` would destroy the trace).
pub fn claim_input(opt: &str, path: &Path) {
    if path.as_os_str() == "-" || fs::metadata(path).map(|m| !m.is_file()).unwrap_or(true) {
        return;
    }
    let mut c = CLAIMED.lock().unwrap_or_else(|e| e.into_inner());
    c.push((opt.into(), path.to_path_buf(), absolute(path), false));
}

/// Claim an output (`real`: the file written, or the report directory when `dir`): refused if it
/// is an input of the command, the same file as another output, or a file the report directory
/// of another output will write.
fn claim(opt: &str, given: &Path, real: &Path, dir: bool) -> Result<(), CliError> {
    let abs = absolute(real);
    let mut c = CLAIMED.lock().unwrap_or_else(|e| e.into_inner());
    let in_report = |file: &Path, d: &Path| {
        file.parent() == Some(d)
            && file
                .file_name()
                .is_some_and(|n| is_report_file(&n.to_string_lossy()))
    };
    for (o, g, a, is_dir) in c.iter() {
        if o == opt && *a == abs && *is_dir == dir {
            return Ok(()); // the same output checked again (before writing)
        }
        let clash = match (dir, *is_dir) {
            (false, false) => *a == abs,
            (false, true) => in_report(&abs, a) || *a == abs,
            (true, false) => in_report(a, &abs) || *a == abs,
            (true, true) => *a == abs,
        };
        if clash {
            return Err(io_err(
                opt,
                given,
                format!(
                    "is {o} {} too; expected different files for the inputs and outputs of one command",
                    g.display()
                ),
            ));
        }
    }
    c.push((opt.into(), given.to_path_buf(), abs, dir));
    Ok(())
}

/// Pre-flight check of `opt FILE`: resolves it and proves it can be written (see the module
/// documentation), and that it is none of the command's inputs or other outputs ([`claim`]).
/// Nothing is left behind.
pub fn check_file(opt: &str, path: &Path) -> Result<(), CliError> {
    match resolve(opt, path)? {
        Target::Stdout => Ok(()),
        Target::InPlace(p) => {
            if writable(&p) {
                Ok(())
            } else {
                Err(io_err(opt, path, "permission denied"))
            }
        }
        Target::File(real) => {
            probe_dir(opt, path, &dir_of(&real))?;
            claim(opt, path, &real, false)
        }
    }
}

/// Write `data` to the output `path` (see [`resolve`]): stdout, in place, or through a temporary
/// file and a rename. Errors name the path given (exit 4).
pub fn atomic_write(path: &Path, data: &[u8]) -> Result<(), CliError> {
    match resolve("", path)? {
        Target::Stdout => {
            print(data);
            Ok(())
        }
        // append: through /dev/stdout to a file, after what stdout already wrote there
        Target::InPlace(p) => fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .and_then(|mut f| f.write_all(data).and_then(|_| f.flush()))
            .map_err(|e| io_err("", path, os_msg(&e))),
        Target::File(real) => {
            let tmp = tmp_in(&dir_of(&real));
            let r = write_tmp(&tmp, data).and_then(|_| fs::rename(&tmp, &real));
            r.map_err(|e| {
                let _ = fs::remove_file(&tmp);
                io_err("", path, os_msg(&e))
            })
        }
    }
}

fn write_tmp(tmp: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(tmp)?;
    f.write_all(data)?;
    f.sync_all()
}

/// Files a report directory may hold that must be replaceable: an existing entry with one of
/// these names (or `timeline-*.csv`) that is not a regular file is refused before the run.
const REPORT_FILES: [&str; 1] = ["index.html"];

fn is_report_file(name: &str) -> bool {
    REPORT_FILES.contains(&name) || (name.starts_with("timeline-") && name.ends_with(".csv"))
}

/// Directories from the nearest existing ancestor of `dir` down to `dir` that do not exist yet
/// (outermost first); an error if an ancestor is not a directory.
fn missing_dirs(opt: &str, dir: &Path) -> Result<Vec<PathBuf>, CliError> {
    let mut missing = Vec::new();
    let mut cur = Some(dir);
    while let Some(p) = cur {
        if p.as_os_str().is_empty() {
            break;
        }
        match fs::metadata(p) {
            Ok(m) if m.is_dir() => break,
            Ok(_) => {
                return Err(if p == dir {
                    io_err(opt, dir, "exists and is not a directory")
                } else {
                    io_err(
                        opt,
                        dir,
                        format!("cannot be created: {} is not a directory", p.display()),
                    )
                })
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                missing.push(p.to_path_buf());
                cur = p.parent();
            }
            Err(e) => return Err(io_err(opt, dir, os_msg(&e))),
        }
    }
    missing.reverse();
    Ok(missing)
}

/// Create the missing directories of `dir`; on error remove what was created.
fn create_dirs(opt: &str, dir: &Path) -> Result<Vec<PathBuf>, CliError> {
    let missing = missing_dirs(opt, dir)?;
    let mut made = Vec::new();
    for d in &missing {
        if let Err(e) = fs::create_dir(d) {
            remove_dirs(&made);
            return Err(io_err(
                opt,
                dir,
                format!("cannot create {}: {}", d.display(), os_msg(&e)),
            ));
        }
        made.push(d.clone());
    }
    Ok(made)
}

fn remove_dirs(made: &[PathBuf]) {
    for d in made.iter().rev() {
        let _ = fs::remove_dir(d);
    }
}

/// Pre-flight check of `opt DIR` for a report: the directory exists or can be created (it is
/// created and removed again), a file can be created in it, and no file the report replaces
/// (`index.html`, `timeline-*.csv`) exists as something else than a regular file.
pub fn check_dir(opt: &str, dir: &Path) -> Result<(), CliError> {
    if dir.as_os_str().as_bytes() == b"-" {
        return Err(io_err(
            opt,
            dir,
            "a report is a directory of files; it cannot go to stdout",
        ));
    }
    if dir.as_os_str().is_empty() {
        return Err(io_err(opt, dir, "empty path, expected a directory"));
    }
    claim(opt, dir, dir, true)?;
    let made = create_dirs(opt, dir)?;
    let r = (|| {
        if made.is_empty() {
            let rd = fs::read_dir(dir).map_err(|e| io_err(opt, dir, os_msg(&e)))?;
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !is_report_file(&name) {
                    continue;
                }
                let p = e.path();
                match fs::metadata(&p) {
                    Ok(m) if m.is_file() => {}
                    // a dangling link: the report writes the file it names
                    Err(err) if err.kind() == ErrorKind::NotFound => {}
                    Ok(_) => {
                        return Err(io_err(
                            opt,
                            dir,
                            format!(
                            "{name} exists and is not a regular file; the report cannot replace it"
                        ),
                        ))
                    }
                    Err(err) => return Err(io_err(opt, dir, format!("{name}: {}", os_msg(&err)))),
                }
            }
        }
        probe_dir(opt, dir, dir)
    })();
    remove_dirs(&made);
    r
}

/// Write the files of a report into `dir` whole or not at all: every file to a temporary file
/// first (a failure removes them, and the directory if it was created for the report), then the
/// renames, `index.html` last.
pub fn write_dir(opt: &str, dir: &Path, files: &[(String, Vec<u8>)]) -> Result<(), CliError> {
    check_dir(opt, dir)?;
    for (name, _) in files {
        if name.len() > NAME_MAX || name.contains('/') || name.is_empty() {
            return Err(io_err(opt, dir, format!("bad report file name {name:?}")));
        }
    }
    let made = create_dirs(opt, dir)?;
    let mut tmps: Vec<PathBuf> = Vec::new();
    let mut targets: Vec<PathBuf> = Vec::new();
    let cleanup = |tmps: &[PathBuf]| {
        for t in tmps {
            let _ = fs::remove_file(t);
        }
        remove_dirs(&made);
    };
    for (name, data) in files {
        // a report file that is a symbolic link is written through, like --json
        let target = match follow_links(opt, &dir.join(name)) {
            Ok(t) => t,
            Err(e) => {
                cleanup(&tmps);
                return Err(e);
            }
        };
        let t = tmp_in(&dir_of(&target));
        if let Err(e) = write_tmp(&t, data) {
            let _ = fs::remove_file(&t);
            cleanup(&tmps);
            return Err(io_err(opt, &dir.join(name), os_msg(&e)));
        }
        tmps.push(t);
        targets.push(target);
    }
    let mut order: Vec<usize> = (0..files.len()).collect();
    order.sort_by_key(|&i| files[i].0 == "index.html");
    for (k, &i) in order.iter().enumerate() {
        let target = &targets[i];
        if let Err(e) = fs::rename(&tmps[i], target) {
            let left: Vec<PathBuf> = order[k..].iter().map(|&j| tmps[j].clone()).collect();
            for t in &left {
                let _ = fs::remove_file(t);
            }
            if k == 0 {
                remove_dirs(&made);
            }
            return Err(io_err(opt, target, os_msg(&e)));
        }
    }
    Ok(())
}

/// Render the HTML report of `doc` and write it into `dir` whole or not at all ([`write_dir`]).
pub fn write_report(
    opt: &str,
    dir: &Path,
    doc: &spb_lab::metrics::RunsDoc,
    title: &str,
) -> Result<(), CliError> {
    let files = spb_lab::report::render_report(doc, title)
        .map_err(|e| CliError::Run(format!("{opt} {}: {e}", dir.display())))?;
    write_dir(opt, dir, &files)
}

/// The first error writing standard output (other than a closed pipe), reported at the end.
static STDOUT_ERROR: Mutex<Option<String>> = Mutex::new(None);
/// Standard output is a closed pipe: later writes are skipped, exit quietly.
static STDOUT_CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Write to standard output (instead of `print!`); never panics. See the module documentation.
pub fn print(data: impl AsRef<[u8]>) {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut err = STDOUT_ERROR.lock().unwrap_or_else(|e| e.into_inner());
    if err.is_some() {
        return;
    }
    let mut o = std::io::stdout().lock();
    if let Err(e) = o.write_all(data.as_ref()).and_then(|_| o.flush()) {
        if e.kind() == ErrorKind::BrokenPipe {
            STDOUT_CLOSED.store(true, Ordering::Relaxed);
        } else {
            *err = Some(os_msg(&e));
        }
    }
}

/// Write to standard error; errors are ignored (nowhere left to report them).
pub fn eprint(data: impl AsRef<[u8]>) {
    let mut e = std::io::stderr().lock();
    let _ = e.write_all(data.as_ref()).and_then(|_| e.flush());
}

/// How standard output fared: `Err(message)` if a write failed other than on a closed pipe,
/// `Ok(true)` if the pipe was closed, `Ok(false)` if all went well.
pub fn stdout_status() -> Result<bool, String> {
    if let Some(m) = STDOUT_ERROR
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
    {
        return Err(m);
    }
    Ok(STDOUT_CLOSED.load(Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("spb-out-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn resolve_follows_links_and_keeps_devices() {
        let d = tmpdir("resolve");
        assert_eq!(resolve("--json", Path::new("-")).unwrap(), Target::Stdout);
        assert_eq!(
            resolve("--json", Path::new("/dev/null")).unwrap(),
            Target::InPlace("/dev/null".into())
        );
        let real = d.join("real.json");
        std::os::unix::fs::symlink(&real, d.join("link.json")).unwrap();
        // dangling: the link's target is written
        assert_eq!(
            resolve("--json", &d.join("link.json")).unwrap(),
            Target::File(real.clone())
        );
        std::os::unix::fs::symlink("loop2", d.join("loop1")).unwrap();
        std::os::unix::fs::symlink("loop1", d.join("loop2")).unwrap();
        let e = resolve("--json", &d.join("loop1")).unwrap_err().to_string();
        assert!(e.contains("symbolic link loop"), "{e}");
        let e = resolve("--json", Path::new("newfile/"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("names a directory"), "{e}");
        let long = d.join("x".repeat(256));
        let e = resolve("--json", &long).unwrap_err().to_string();
        assert!(e.contains("256 bytes"), "{e}");
        atomic_write(&d.join("link.json"), b"{}").unwrap();
        assert!(fs::symlink_metadata(d.join("link.json"))
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read(&real).unwrap(), b"{}");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn report_dir_is_written_whole_or_not_at_all() {
        let d = tmpdir("dir");
        let r = d.join("a/b");
        write_dir(
            "--report",
            &r,
            &[
                ("x.csv".into(), b"1".to_vec()),
                ("index.html".into(), b"2".to_vec()),
            ],
        )
        .unwrap();
        assert_eq!(fs::read(r.join("index.html")).unwrap(), b"2");
        assert_eq!(fs::read_dir(&r).unwrap().count(), 2);
        let r2 = d.join("c");
        fs::create_dir_all(r2.join("index.html")).unwrap();
        assert!(check_dir("--report", &r2).is_err());
        assert_eq!(fs::read_dir(&r2).unwrap().count(), 1);
        // a report file that is a link: its target is written, the link stays
        let r3 = d.join("e");
        fs::create_dir_all(&r3).unwrap();
        std::os::unix::fs::symlink(d.join("kept.html"), r3.join("index.html")).unwrap();
        write_dir("--report", &r3, &[("index.html".into(), b"3".to_vec())]).unwrap();
        assert_eq!(fs::read(d.join("kept.html")).unwrap(), b"3");
        assert!(fs::symlink_metadata(r3.join("index.html"))
            .unwrap()
            .file_type()
            .is_symlink());
        fs::remove_dir_all(&d).unwrap();
    }
}
