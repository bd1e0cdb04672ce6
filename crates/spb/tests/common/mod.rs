//! Shared helpers of the end-to-end tests of the `spb` binary: a scratch directory, running the
//! binary, and the exit-code check every test of bad input makes.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `spb` binary under test.
pub const SPB: &str = env!("CARGO_BIN_EXE_spb");

/// A fresh directory under the system temp dir, named after the test file, the process and
/// `name`; removed on drop.
pub struct Tmp(pub PathBuf);

impl Tmp {
    pub fn new(name: &str) -> Tmp {
        let d = std::env::temp_dir().join(format!(
            "spb-{}-{}-{name}",
            env!("CARGO_CRATE_NAME"),
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Tmp(d)
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    /// Write `data` to `name` (creating its parent directories); returns the path.
    pub fn write(&self, name: &str, data: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(name);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(&p, data).unwrap();
        p
    }
    /// The entries of the subdirectory `sub` ("" for the directory itself), sorted: to see
    /// that nothing, not even a temporary file, was left behind.
    pub fn listing(&self, sub: &str) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.0.join(sub))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The `spb` command with `args`, not yet run.
pub fn cmd(args: &[&str]) -> Command {
    let mut c = Command::new(SPB);
    c.args(args);
    c
}

/// Run `spb` with `args` and collect its output.
pub fn spb(args: &[&str]) -> Output {
    cmd(args).output().expect("run spb")
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Exit code `code`, no panic, and stderr contains every one of `needles`.
#[track_caller]
pub fn assert_exit(out: &Output, code: i32, needles: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "exit code; stderr:\n{err}");
    assert!(!err.contains("panicked"), "panic:\n{err}");
    for n in needles {
        assert!(err.contains(n), "stderr should contain {n:?}:\n{err}");
    }
}
