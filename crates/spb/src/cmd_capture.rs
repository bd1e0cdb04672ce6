//! `spb capture --duration 60s --out DIR`: capture this machine's page-allocator trace (Linux,
//! root) into a directory that `spb replay DIR` reads.
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use spb_lab::capture::{capture, CaptureError, CaptureOptions, CapturePhase};

use crate::CliError;

#[derive(clap::Args, Debug)]
pub struct CaptureArgs {
    /// How long to trace: `60s`, `5m`, `1h`, `500ms`, or plain seconds.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Duration,
    /// Output directory (created; must be empty if it exists).
    #[arg(long)]
    pub out: PathBuf,
    /// Ring-buffer size per CPU in KiB.
    #[arg(long, default_value_t = 256 * 1024)]
    pub buffer_kb: u32,
    /// Skip the kpageflags/kpagecount snapshots.
    #[arg(long)]
    pub no_kpageflags: bool,
    /// Keep the hashed `page=` field in the trace lines.
    #[arg(long)]
    pub keep_page_field: bool,
    /// Further events to enable if present (comma separated, e.g. `compaction,migrate`).
    #[arg(long, value_delimiter = ',')]
    pub extra_events: Vec<String>,
    /// The kernel was booted with `trace_event=kmem:mm_page_alloc,kmem:mm_page_free,
    /// kmem:mm_page_alloc_extfrag,kmem:mm_page_alloc_zone_locked trace_buf_size=64M`: save
    /// that boot ring buffer (boot_trace.txt.zst) once the stream records, and mark the end of
    /// the capture `PHASE stress_end`, so that `spb replay OUT` replays from boot.
    #[arg(long)]
    pub from_boot: bool,
    /// tracefs mount point (default: find it, or mount it).
    #[arg(long)]
    pub tracefs: Option<PathBuf>,
}

/// `60s`, `5m`, `1h`, `250ms`, `1.5` (seconds): the one duration parser
/// ([`spb_lab::scenario::units::parse_duration`]), above 0 and at most 24h.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    spb_lab::scenario::units::parse_duration(s).map(Duration::from_nanos)
}

static STOP: OnceLock<Arc<AtomicBool>> = OnceLock::new();

extern "C" fn on_signal(_sig: libc::c_int) {
    if let Some(s) = STOP.get() {
        s.store(true, Ordering::SeqCst);
    }
}

fn install_handlers(stop: Arc<AtomicBool>) {
    let _ = STOP.set(stop);
    let h = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only performs an atomic store.
    unsafe {
        libc::signal(libc::SIGINT, h);
        libc::signal(libc::SIGTERM, h);
    }
}

pub fn run(a: CaptureArgs) -> Result<(), CliError> {
    let mut opts = CaptureOptions::new(a.duration, a.out.clone());
    opts.buffer_kb = a.buffer_kb;
    opts.kpage_snapshots = !a.no_kpageflags;
    opts.strip_page_field = !a.keep_page_field;
    opts.extra_events = a.extra_events;
    opts.from_boot = a.from_boot;
    opts.tracefs = a.tracefs;
    let stop = Arc::new(AtomicBool::new(false));
    install_handlers(stop.clone());
    let mut last_phase = None;
    // seconds traced of --duration, with lines and bytes (hidden unless on a terminal)
    let pb = crate::progress::bar(
        a.duration.as_secs().max(1),
        "tracing [{bar:40}] {pos}/{len} s  {msg}",
    );
    let r = capture(&opts, stop, |p| {
        if last_phase != Some(p.phase) {
            pb.suspend(|| {
                crate::output::eprint(format!(
                    "spb capture: {:?} ({:.1} s, {} lines)\n",
                    p.phase,
                    p.elapsed.as_secs_f64(),
                    p.lines
                ))
            });
            last_phase = Some(p.phase);
        } else if p.phase == CapturePhase::Tracing {
            pb.set_position(p.elapsed.as_secs());
            pb.set_message(format!("{} lines, {:.1} MB", p.lines, p.bytes as f64 / 1e6));
        }
    });
    pb.finish_and_clear();
    let s = r.map_err(|e| match e {
        CaptureError::NotRoot | CaptureError::NoTracefs(_) | CaptureError::EventMissing(_) => {
            CliError::Environment(e.to_string())
        }
        CaptureError::Io { .. } => CliError::Io(e.to_string()),
        CaptureError::InvalidOptions(m) => CliError::Input(m),
    })?;
    crate::output::print(format!(
        "captured {} lines ({:.1} s{}) into {}; events lost: {}; replay with: spb replay {}\n",
        s.lines_total,
        s.duration_tracing_s,
        if s.interrupted { ", interrupted" } else { "" },
        a.out.display(),
        s.events_lost,
        a.out.display()
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("60s").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("abc").is_err());
    }
}
