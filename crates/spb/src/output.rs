//! Output files: checked before the work starts (so a bad `--json`/`--report`/`--out` path fails
//! at once, not after a long run) and written to a temporary name in the target directory, then
//! renamed, so a failure never leaves half a file. Errors name the path the user gave (exit 4).

use std::path::Path;

use crate::CliError;

/// `opt FILE` can be written: its directory exists and it is not itself a directory.
pub fn check_file(opt: &str, path: &Path) -> Result<(), CliError> {
    let io = |what: &str| Err(CliError::Io(format!("{opt} {}: {what}", path.display())));
    if path.file_name().is_none() {
        return io("not a file name");
    }
    if path.is_dir() {
        return io("is a directory, expected a file name");
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.is_dir() {
        return io(&format!("the directory {} does not exist", dir.display()));
    }
    Ok(())
}

/// `opt DIR` can be created or written: it is a directory, or its nearest existing ancestor is.
pub fn check_dir(opt: &str, dir: &Path) -> Result<(), CliError> {
    let io = |what: String| Err(CliError::Io(format!("{opt} {}: {what}", dir.display())));
    if dir.exists() {
        return if dir.is_dir() {
            Ok(())
        } else {
            io("exists and is not a directory".into())
        };
    }
    let mut a = dir.parent();
    while let Some(p) = a {
        if p.as_os_str().is_empty() {
            return Ok(());
        }
        if p.exists() {
            return if p.is_dir() {
                Ok(())
            } else {
                io(format!(
                    "cannot be created: {} is not a directory",
                    p.display()
                ))
            };
        }
        a = p.parent();
    }
    Ok(())
}

/// Write `data` to `path` through a temporary file in the same directory and a rename.
pub fn atomic_write(path: &Path, data: &[u8]) -> Result<(), CliError> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| CliError::Io(format!("{}: not a file name", path.display())))?;
    let tmp = dir.join(format!(
        ".{}.tmp.{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let r = (|| {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    r.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        CliError::Io(format!("{}: {e}", path.display()))
    })
}
