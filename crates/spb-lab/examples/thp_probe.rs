//! Does this machine gain from backing the lab's large arrays with transparent huge pages?
//!
//! The lab's per-page and per-object arrays reach gigabytes at 1 TiB and are read at random,
//! so with 4 KiB pages nearly every access misses the TLB. This probe measures the two costs
//! that decide whether huge pages pay: random reads over an array of the given size with
//! `MADV_NOHUGEPAGE` and with `MADV_HUGEPAGE` (ns per read), and the first touch of that
//! array (the page faults, whose zeroing is the kernel's and, in a VM, often the host's).
//! A whole lab run can be put on huge pages without rebuilding through glibc's
//! `GLIBC_TUNABLES=glibc.malloc.hugetlb=1` (BENCHMARKS.md, "Issue 16: memory access cost at
//! 1 TiB" has the measurements and why the lab does not do it by default).
//!
//! ```text
//! cargo run --release -p spb-lab --example thp_probe -- [SIZE_MIB [READS]]   # 1024, 20000000
//! ```

#[cfg(target_os = "linux")]
mod probe {
    use std::time::Instant;

    /// The x86-64 PMD size: the unit a huge page maps and the alignment `MADV_HUGEPAGE` needs.
    const HUGE: usize = 2 << 20;
    const PAGE: usize = 4096;

    /// One anonymous mapping of `len` bytes aligned to [`HUGE`], unmapped on drop.
    struct Region {
        base: *mut libc::c_void,
        map_len: usize,
        ptr: *mut u64,
        len: usize,
    }

    impl Region {
        fn new(len: usize, huge: bool) -> Result<Region, String> {
            let map_len = len + HUGE;
            // SAFETY: a fresh private anonymous mapping; no existing memory is touched.
            let base = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    map_len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            if base == libc::MAP_FAILED {
                return Err(format!(
                    "mmap of {} MiB failed: {}",
                    map_len >> 20,
                    std::io::Error::last_os_error()
                ));
            }
            let off = (HUGE - (base as usize % HUGE)) % HUGE;
            // SAFETY: off < HUGE, so the aligned start and `len` bytes lie inside the mapping.
            let ptr = unsafe { (base as *mut u8).add(off) } as *mut u64;
            let advice = if huge {
                libc::MADV_HUGEPAGE
            } else {
                libc::MADV_NOHUGEPAGE
            };
            // SAFETY: the range is inside our mapping; madvise only changes its paging policy.
            if unsafe { libc::madvise(ptr as *mut libc::c_void, len, advice) } != 0 {
                let e = std::io::Error::last_os_error();
                // SAFETY: unmapping what we mapped above.
                unsafe { libc::munmap(base, map_len) };
                return Err(format!(
                    "madvise({}) failed: {e}",
                    if huge { "HUGEPAGE" } else { "NOHUGEPAGE" }
                ));
            }
            Ok(Region {
                base,
                map_len,
                ptr,
                len,
            })
        }

        fn words(&mut self) -> &mut [u64] {
            // SAFETY: `ptr` is aligned, points at `len` bytes of our mapping, which lives as
            // long as `self`, and nothing else refers to it.
            unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len / 8) }
        }
    }

    impl Drop for Region {
        fn drop(&mut self) {
            // SAFETY: unmapping exactly the mapping made in `new`.
            unsafe { libc::munmap(self.base, self.map_len) };
        }
    }

    /// The process's `AnonHugePages` (kB) from `/proc/self/smaps_rollup`, if readable.
    fn anon_huge_kb() -> Option<u64> {
        let s = std::fs::read_to_string("/proc/self/smaps_rollup").ok()?;
        s.lines()
            .find_map(|l| l.strip_prefix("AnonHugePages:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// Seconds to fault in and fill the region, and ns per random read over it.
    fn measure(len: usize, reads: u64, huge: bool) -> Result<(f64, f64, Option<u64>), String> {
        let mut r = Region::new(len, huge)?;
        let w = r.words();
        let t = Instant::now();
        for (i, x) in w.iter_mut().enumerate() {
            *x = i as u64;
        }
        let touch = t.elapsed().as_secs_f64();
        let thp = anon_huge_kb();
        // independent reads at pseudo-random indices (the lab's pattern: the index comes from
        // a draw, not from the previous load), an LCG so that the index costs a few cycles
        let n = w.len() as u64;
        let (mut x, mut sum) = (0x9e37_79b9_7f4a_7c15u64, 0u64);
        let t = Instant::now();
        for _ in 0..reads {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            sum = sum.wrapping_add(w[((x >> 11) % n) as usize]);
        }
        let ns = t.elapsed().as_secs_f64() * 1e9 / reads as f64;
        std::hint::black_box(sum);
        Ok((touch, ns, thp))
    }

    fn arg(args: &[String], i: usize, name: &str, default: u64) -> Result<u64, String> {
        match args.get(i) {
            None => Ok(default),
            Some(s) => match s.parse::<u64>() {
                Ok(v) if v > 0 => Ok(v),
                _ => Err(format!(
                    "argument {} ({name}): expected a positive integer, got {s:?}",
                    i + 1
                )),
            },
        }
    }

    pub fn main() -> Result<(), String> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let mib = arg(&args, 0, "SIZE_MIB", 1024)?;
        let reads = arg(&args, 1, "READS", 20_000_000)?;
        let len = usize::try_from(mib)
            .ok()
            .and_then(|m| m.checked_mul(1 << 20))
            .filter(|&l| l >= HUGE)
            .ok_or_else(|| format!("argument 1 (SIZE_MIB): expected 2 to 2^43, got {mib}"))?;
        let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
            .unwrap_or_else(|_| "unknown".into());
        println!(
            "array {mib} MiB, {reads} random reads, THP setting: {}",
            thp.trim()
        );
        for huge in [false, true] {
            let (touch, ns, kb) = measure(len, reads, huge)?;
            println!(
                "{:>10}: first touch {:.2} s ({:.2} GB/s, {} faults at most), random read {:.1} ns, AnonHugePages {}",
                if huge { "hugepage" } else { "nohugepage" },
                touch,
                len as f64 / 1e9 / touch,
                len / if huge { HUGE } else { PAGE },
                ns,
                kb.map_or("unknown".into(), |k| format!("{k} kB")),
            );
        }
        Ok(())
    }
}

fn main() {
    #[cfg(target_os = "linux")]
    if let Err(e) = probe::main() {
        eprintln!("thp_probe: {e}");
        std::process::exit(2);
    }
    #[cfg(not(target_os = "linux"))]
    {
        eprintln!("thp_probe: transparent huge pages (madvise) are Linux only");
        std::process::exit(2);
    }
}
