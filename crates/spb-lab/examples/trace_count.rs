//! Count the events of traces with `spb_lab::trace::count_events` and report parse throughput
//! (wall clock and this process's CPU time, which is what matters on a shared machine).
//!
//! ```text
//! cargo run --release -p spb-lab --example trace_count -- ../shared/traces/build [more ...]
//! LINES_ONLY=1 cargo run --release -p spb-lab --example trace_count -- FILE   # reader only
//! JSON=1 ...                                                                   # print the Summary
//! ```
use std::time::Instant;

use spb_lab::trace::{count_events, TraceReader};

fn cpu_secs() -> f64 {
    // SAFETY: getrusage fills the struct we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn main() {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.is_empty() {
        eprintln!("usage: trace_count <trace file or capture dir>...");
        std::process::exit(2);
    }
    let lines_only = std::env::var_os("LINES_ONLY").is_some();
    let mut rc = 0;
    for p in paths {
        let (t, c) = (Instant::now(), cpu_secs());
        let res = if lines_only {
            TraceReader::open(&p).and_then(|mut r| {
                while r.next_line()?.is_some() {}
                Ok((r.line_no(), r.bytes_read(), String::new()))
            })
        } else {
            count_events(&p).map(|s| {
                let json = if std::env::var_os("JSON").is_some() {
                    serde_json::to_string_pretty(&s).unwrap_or_default()
                } else {
                    format!(
                        "events {:?}\nskipped {:?} parse_errors {} failed_allocs {} inversions {} distinct_gfp {}",
                        s.events, s.skipped, s.parse_errors, s.failed_allocs, s.timestamp_inversions, s.distinct_gfp
                    )
                };
                (s.lines, s.bytes, json)
            })
        };
        let (wall, cpu) = (t.elapsed().as_secs_f64(), cpu_secs() - c);
        match res {
            Ok((lines, bytes, text)) => {
                if !text.is_empty() {
                    println!("{text}");
                }
                println!(
                    "{p}: {}{lines} lines, {:.1} MB text; wall {wall:.3} s = {:.2} M lines/s; cpu {cpu:.3} s = {:.2} M lines/s",
                    if lines_only { "[reader only] " } else { "" },
                    bytes as f64 / 1e6,
                    lines as f64 / wall / 1e6,
                    lines as f64 / cpu / 1e6,
                );
            }
            Err(e) => {
                eprintln!("error: {e}");
                rc = 1;
            }
        }
    }
    std::process::exit(rc);
}
