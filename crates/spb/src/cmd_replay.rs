//! `spb replay TRACE`: replay a real ftrace allocation trace under every policy.
use std::path::{Path, PathBuf};

use spb_lab::replay::{replay, PolicySel, ReplayError, ReplayOptions, ReplayProgress};

use crate::CliError;

#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    /// Trace file (trace_pipe / trace / trace-cmd report text; plain, zstd or gzip) or a capture
    /// directory made by `spb capture` (its before/ snapshots are used automatically).
    pub trace: PathBuf,
    /// Columns: `real` (the kernel's own placement) and modelled policies.
    #[arg(long, default_value = "real,vanilla,defrag,spb")]
    pub policy: String,
    /// Write the metrics JSON (`spb run` keys plus `trace`) to FILE, or `-` for stdout.
    #[arg(long)]
    pub json: Option<String>,
    /// /proc/zoneinfo of the traced machine (default: the capture directory's before/zoneinfo;
    /// without one the layout is inferred from the pfns seen).
    #[arg(long)]
    pub zoneinfo: Option<PathBuf>,
    /// /proc/kpageflags dump taken when the trace started (default: the capture directory's
    /// before/kpageflags.zst): pages in use then are in use in the model too.
    #[arg(long)]
    pub kpageflags: Option<PathBuf>,
    /// /proc/kpagecount dump of the same moment (default: the kpageflags file's sibling).
    #[arg(long)]
    pub kpagecount: Option<PathBuf>,
    /// Start from an empty machine even when a kpageflags dump is available.
    #[arg(long)]
    pub no_prefill: bool,
    /// Fail on bad input (order above max, double free, pfn outside the layout, unparsable kmem
    /// line) with a message naming the file and line, instead of counting it as skipped.
    #[arg(long)]
    pub strict: bool,
    /// Write an HTML report with timelines to DIR.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// spb switches to turn off in the spb column (comma separated).
    #[arg(long, value_delimiter = ',')]
    pub spb_off: Vec<String>,
    /// Columns replayed at once (default: the number of CPUs).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Do not emulate the kernel's once-a-second per-CPU list decay (decay_pcp_high) in the
    /// modelled columns.
    #[arg(long)]
    pub no_pcp_decay: bool,
    /// How frees trim the modelled columns' per-CPU lists: `mainline` (6.18), `mainline-batch`
    /// (the free_high threshold of earlier kernels) or `simple` (the model before 2026-12-05)
    /// [default: the traced kernel's, when the capture names it (meta.json, dmesg_boot.txt),
    /// else mainline].
    #[arg(long)]
    pub pcp_free: Option<spb_lab::scenario::PcpFree>,
    /// Compaction's skip hints in the modelled columns: `on` (the kernel's PB_compact_skip) or
    /// `off` (the model before 2026-12-05).
    #[arg(
        long,
        value_name = "on|off",
        default_value = "on",
        value_parser = crate::cmd_run::on_off,
        action = clap::ArgAction::Set
    )]
    pub skip_hints: bool,
    /// From-boot replay of a plain pair of files: this boot ftrace text (the kernel command
    /// line's trace_event= ring buffer), then TRACE (a trace-cmd .dat or text stream); with
    /// --zoneinfo/--kpageflags of the boot snapshot (reservations only, no prefill).
    #[arg(long)]
    pub boot_trace: Option<PathBuf>,
    /// From-boot captures: replay past the `PHASE stress_end` marker to the end of the trace.
    #[arg(long)]
    pub past_stress_end: bool,
    /// Stop at the first trace marker containing TEXT (any trace).
    #[arg(long)]
    pub stop_marker: Option<String>,
}

pub fn run(a: ReplayArgs) -> Result<(), CliError> {
    let policies = PolicySel::parse_list(&a.policy, &a.spb_off)
        .map_err(|e| CliError::Usage(format!("--policy/--spb-off: {e}")))?;
    // the trace may be a capture directory; the other inputs are files (a directory, a link
    // loop, a dangling link: exit 4 naming the option); a FIFO such as `<(zcat ...)` or a
    // device is read like a file (every reader stops at the zoneinfo's end or its size limit)
    if let Err(e) = std::fs::metadata(&a.trace) {
        let m = spb_lab::input::os_message(&e);
        return Err(CliError::Io(format!("{}: {m}", a.trace.display())));
    }
    for (opt, p) in [
        ("--zoneinfo", a.zoneinfo.as_ref()),
        ("--kpageflags", a.kpageflags.as_ref()),
        ("--kpagecount", a.kpagecount.as_ref()),
        ("--boot-trace", a.boot_trace.as_ref()),
    ] {
        let Some(p) = p else { continue };
        if let Err(e) = spb_lab::input::check_regular_file(p).or_else(|e| {
            if e.io {
                Err(e)
            } else {
                Ok(()) // not a regular file, but readable as one
            }
        }) {
            let m = format!("{opt} {e}");
            return Err(if e.io {
                CliError::Io(m)
            } else {
                CliError::Input(m)
            });
        }
    }
    for (opt, p) in [
        ("the trace", Some(&a.trace)),
        ("--zoneinfo", a.zoneinfo.as_ref()),
        ("--kpageflags", a.kpageflags.as_ref()),
        ("--kpagecount", a.kpagecount.as_ref()),
        ("--boot-trace", a.boot_trace.as_ref()),
    ] {
        if let Some(p) = p {
            crate::output::claim_input(opt, p);
        }
    }
    crate::cmd_run::check_outputs(a.json.as_deref(), a.report.as_deref())?;
    let mut opts = ReplayOptions {
        policies,
        zoneinfo: a.zoneinfo,
        kpageflags: a.kpageflags,
        kpagecount: a.kpagecount,
        no_prefill: a.no_prefill,
        strict: a.strict,
        pcp_decay: !a.no_pcp_decay,
        pcp_free: a.pcp_free,
        skip_hints: a.skip_hints,
        boot_trace: a.boot_trace,
        past_stop: a.past_stress_end,
        stop_marker: a.stop_marker,
        ..ReplayOptions::default()
    };
    if let Some(t) = a.threads {
        opts.threads = t.max(1);
    }
    // bytes of the trace read by the decode pass, on a terminal only
    let pb = crate::progress::bar(
        0,
        "reading [{bar:40}] {bytes}/{total_bytes}  {bytes_per_sec}  ETA {eta}",
    );
    if !pb.is_hidden() {
        let bar = pb.clone();
        opts.progress = Some(ReplayProgress(std::sync::Arc::new(move |read, total| {
            bar.set_length(total.max(read));
            bar.set_position(read);
            if read >= total {
                bar.set_message("replaying the columns");
                bar.finish_with_message("read; replaying the columns");
            }
        })));
    }
    let out = replay(&a.trace, &opts);
    pb.finish_and_clear();
    let out = out.map_err(|e| match e {
        ReplayError::Input(m) => CliError::Input(m),
        ReplayError::Io(m) => CliError::Io(m),
        ReplayError::Layout(m) => CliError::Input(format!("layout: {m}")),
    })?;
    for w in &out.warnings {
        crate::output::eprint(format!("spb: warning: {w}\n"));
    }
    let mut doc = out.doc.clone();
    if let Some(first) = doc.runs.first_mut() {
        first.extra.insert(
            "comparison".to_string(),
            serde_json::to_value(&out.comparison).unwrap_or_default(),
        );
    }
    let tables = format!(
        "{}\n{}\n{}",
        spb_lab::report::summary_table(&doc),
        out.text_table(),
        spb_lab::report::bill_tables(&doc)
    );
    let json = serde_json::to_string_pretty(&doc).map_err(|e| CliError::Run(e.to_string()))?;
    match a.json.as_deref() {
        Some("-") => {
            crate::output::print(json + "\n");
            crate::output::eprint(&tables);
        }
        Some(f) => {
            crate::output::atomic_write(Path::new(f), json.as_bytes())?;
            crate::output::print(&tables);
        }
        None => crate::output::print(&tables),
    }
    if let Some(dir) = &a.report {
        let title = format!("spb replay: {}", a.trace.display());
        crate::output::write_report("--report", dir, &doc, &title)?;
    }
    Ok(())
}
