//! Replay a real Linux page-allocator trace under every policy (issue 5; method in
//! `docs/replay.md`).
//!
//! ```no_run
//! use spb_lab::replay::{replay, ReplayOptions, PolicySel};
//! let opts = ReplayOptions::default(); // real, vanilla, defrag, spb
//! let out = replay("../shared/traces/build".as_ref(), &opts).unwrap();
//! println!("{}", spb_lab::report::summary_table(&out.doc));
//! println!("{}", out.text_table());
//! ```
//!
//! Two passes: [`decode`] streams the trace once (never loading it whole), follows the kernel's
//! own allocations in a per-pfn shadow and resolves every kmem line into 16-byte [`oplog::Op`]s
//! (alloc, free, split, grow); then [`run`] replays that log under each policy in parallel
//! threads, each with its own `Allocator`: the modelled policies place every request themselves,
//! the `real` column places it where the kernel did.

pub mod boot;
pub mod decode;
pub mod measure;
pub mod oplog;
pub(crate) mod pfnmap;
pub mod prefill;
pub mod run;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use spb_alloc::layout::{MemoryLayout, PfnRange, ZoneKind, ZoneSpec};
use spb_alloc::zone::WMARK_MIN;
use spb_alloc::{Geometry, PolicyConfig, PolicyKind};

use crate::metrics::{RunsDoc, TraceStats};
pub use measure::{measure, SnapshotMeasure};
pub use oplog::{Op, OpKind, OpLog};

/// Which placement a column uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicySel {
    /// The kernel's own placement, read from the trace pfns.
    Real,
    /// A modelled policy.
    Model(PolicyConfig),
}

impl PolicySel {
    /// The column name: `real`, or the policy's run spec (`vanilla`, `spb-off:a,b`, ...).
    pub fn label(&self) -> String {
        match self {
            PolicySel::Real => "real".to_string(),
            PolicySel::Model(p) => p.to_string(),
        }
    }

    /// Parse `real,vanilla,defrag,spb` (policies in the run-spec syntax of
    /// [`spb_alloc::policy::spec`]); `spb_off` switches are turned off in every spb column.
    pub fn parse_list(s: &str, spb_off: &[String]) -> Result<Vec<PolicySel>, String> {
        use spb_alloc::policy::spec;
        let mut off = Vec::new();
        for name in spb_off.iter().filter(|n| !n.trim().is_empty()) {
            off.push(spec::parse_switch(name).map_err(|e| e.to_string())?);
        }
        let mut out = Vec::new();
        for p in spec::split_list(s) {
            if p == "real" {
                out.push(PolicySel::Real);
                continue;
            }
            let mut cfg: PolicyConfig =
                p.parse().map_err(|e: spb_alloc::policy::PolicySpecError| {
                    e.to_string()
                        .replace("expected vanilla, defrag", "expected real, vanilla, defrag")
                })?;
            if cfg.kind.has_switches() {
                for w in &off {
                    cfg.spb.set(*w, false);
                }
            }
            out.push(PolicySel::Model(cfg));
        }
        if out.is_empty() {
            return Err("no policy given".into());
        }
        Ok(out)
    }

    /// real, vanilla, defrag, spb.
    pub fn all() -> Vec<PolicySel> {
        let mut v = vec![PolicySel::Real];
        v.extend(
            PolicyKind::ALL
                .iter()
                .map(|k| PolicySel::Model(PolicyConfig::of(*k))),
        );
        v
    }
}

/// Migratetype fallback events by kind (`mm_page_alloc_extfrag` for the kernel, the same
/// counters for a model).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ExtfragCounts {
    /// All fallbacks.
    pub events: u64,
    /// fragmenting=1: the fallback buddy was smaller than a pageblock.
    pub fragmenting: u64,
    /// change_ownership=1: the block was claimed for the requested type.
    pub claim: u64,
    /// change_ownership=0: pages stolen without relabelling.
    pub steal: u64,
    /// `"<alloc mt>-><fallback mt> frag=<0|1> claim=<0|1>"` → count.
    pub by_pair: BTreeMap<String, u64>,
}

impl ExtfragCounts {
    pub(crate) fn pair_key(
        alloc_mt: u32,
        fallback_mt: u32,
        fragmenting: bool,
        claim: bool,
    ) -> String {
        let n = |m: u32| {
            spb_alloc::MigrateType::from_u8(m as u8)
                .map(|t| t.name())
                .unwrap_or("?")
        };
        format!(
            "{}->{} frag={} claim={}",
            n(alloc_mt),
            n(fallback_mt),
            fragmenting as u8,
            claim as u8
        )
    }
    pub(crate) fn record(
        &mut self,
        fragmenting: bool,
        change_ownership: bool,
        alloc_mt: u32,
        fallback_mt: u32,
    ) {
        self.events += 1;
        self.fragmenting += fragmenting as u64;
        if change_ownership {
            self.claim += 1;
        } else {
            self.steal += 1;
        }
        *self
            .by_pair
            .entry(Self::pair_key(
                alloc_mt,
                fallback_mt,
                fragmenting,
                change_ownership,
            ))
            .or_default() += 1;
    }
}

/// Replay settings.
#[derive(Clone, Debug)]
pub struct ReplayOptions {
    pub policies: Vec<PolicySel>,
    /// /proc/zoneinfo of the machine; default: the capture directory's before/zoneinfo.
    pub zoneinfo: Option<PathBuf>,
    /// /proc/kpageflags dump for the prefill; default: the capture directory's before/.
    pub kpageflags: Option<PathBuf>,
    /// /proc/kpagecount dump; default: the kpageflags file's sibling.
    pub kpagecount: Option<PathBuf>,
    /// Do not prefill even when a dump is available.
    pub no_prefill: bool,
    /// Bad input (order above max, double free, pfn outside the layout, unparsable line) is an
    /// error naming the file and line instead of a skipped line.
    pub strict: bool,
    /// Timeline sample period (trace time).
    pub sample_ns: u64,
    /// Policies replayed at once (threads).
    pub threads: usize,
    /// Scenario name in the output (default: the capture directory or file name).
    pub name: Option<String>,
    /// Emulate the kernel's once-a-second `decay_pcp_high` in the modelled columns (a
    /// workaround for the allocator core, see `run::decay_pcp_high`).
    pub pcp_decay: bool,
    /// Modelled columns grow a deferred-init zone when their own watermark fails (taking the
    /// kernel's grown ranges in the kernel's order), not only when the trace shows the growth.
    pub grow_on_demand: bool,
    /// Stop at the first marker containing this text. `None`: a from-boot capture stops at
    /// [`boot::STRESS_END`] unless `past_stop`; other traces run to their end.
    pub stop_marker: Option<String>,
    /// From-boot captures: go on past the `stress_end` marker.
    pub past_stop: bool,
    /// A from-boot replay from a plain pair of files: this boot ftrace text, then the trace
    /// (`.dat` or text) given as the path; `zoneinfo`/`kpageflags` are the boot snapshot's.
    pub boot_trace: Option<PathBuf>,
    /// Called as the trace file is read (for a progress bar); `None`: no calls.
    pub progress: Option<ReplayProgress>,
    /// How frees trim the modelled columns' per-CPU lists. `None`: the traced kernel's rule
    /// when the capture names its kernel (`meta.json`, `dmesg_boot.txt`), else mainline's.
    pub pcp_free: Option<crate::scenario::PcpFree>,
    /// Compaction's skip hints in the modelled columns (`Config::compaction_skip_hints`,
    /// default on).
    pub skip_hints: bool,
}

/// A progress hook of the decode pass: called with (bytes of the trace file read so far, the
/// file's size) about every MiB read and at the end, from the decoding thread.
#[derive(Clone)]
pub struct ReplayProgress(pub std::sync::Arc<dyn Fn(u64, u64) + Send + Sync>);

impl std::fmt::Debug for ReplayProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReplayProgress")
    }
}

/// A reader that reports the bytes read through a [`ReplayProgress`].
struct CountingRead<R> {
    inner: R,
    read: u64,
    reported: u64,
    total: u64,
    hook: ReplayProgress,
}

impl<R: std::io::Read> std::io::Read for CountingRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if n == 0 || self.read - self.reported >= 1 << 20 {
            self.reported = self.read;
            (self.hook.0)(self.read, self.total);
        }
        Ok(n)
    }
}

/// Open a trace (file or capture directory) for the decode pass, reporting the bytes read to
/// `progress` when given.
pub(crate) fn open_trace(
    path: &Path,
    progress: Option<&ReplayProgress>,
) -> Result<crate::trace::TraceReader, crate::trace::InputError> {
    use crate::trace::input::{resolve_trace_path, InputErrorKind};
    let Some(hook) = progress else {
        return crate::trace::TraceReader::open(path);
    };
    let file = resolve_trace_path(path)?;
    let f = std::fs::File::open(&file).map_err(|e| crate::trace::InputError {
        path: file.clone(),
        compression: None,
        lines_read: 0,
        kind: InputErrorKind::Open(e),
    })?;
    let total = f.metadata().map(|m| m.len()).unwrap_or(0);
    crate::trace::TraceReader::from_reader(
        file,
        CountingRead {
            inner: f,
            read: 0,
            reported: 0,
            total,
            hook: hook.clone(),
        },
    )
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            policies: PolicySel::all(),
            zoneinfo: None,
            kpageflags: None,
            kpagecount: None,
            no_prefill: false,
            strict: false,
            sample_ns: 1_000_000_000,
            threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            name: None,
            pcp_decay: true,
            grow_on_demand: true,
            stop_marker: None,
            past_stop: false,
            boot_trace: None,
            progress: None,
            pcp_free: None,
            skip_hints: true,
        }
    }
}

/// Why a replay failed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// Bad input: the message names the file, line and what was expected.
    #[error("{0}")]
    Input(String),
    /// Reading a file failed.
    #[error("{0}")]
    Io(String),
    /// The layout cannot be built.
    #[error("layout: {0}")]
    Layout(String),
}

/// The vanilla model against what the real kernel recorded.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Comparison {
    /// Fallbacks in the trace's mm_page_alloc_extfrag lines.
    pub real_extfrag: ExtfragCounts,
    /// Fallbacks per modelled policy.
    pub model_extfrag: BTreeMap<String, ExtfragCounts>,
    /// "Number of blocks type" of before/ and after/ pagetypeinfo (zone → type → count).
    pub before_blocks: BTreeMap<String, BTreeMap<String, u64>>,
    pub after_blocks: BTreeMap<String, BTreeMap<String, u64>>,
    /// The same counts at the end of each column's replay.
    pub model_blocks: BTreeMap<String, BTreeMap<String, BTreeMap<String, u64>>>,
    /// The after/ kpageflags snapshot measured like the models (the `real` column's end).
    pub after_snapshot: Option<SnapshotMeasure>,
    /// The before/ snapshot likewise.
    pub before_snapshot: Option<SnapshotMeasure>,
}

/// What [`replay`] returns.
#[derive(Clone, Debug, Default)]
pub struct ReplayOutput {
    /// One run per column, `spb run` keys plus `trace`.
    pub doc: RunsDoc,
    /// Trace statistics (shared by all columns; each run's `trace` has its own
    /// `fallback_replays`).
    pub stats: TraceStats,
    /// Reconciliation counters of the decode pass.
    pub notes: BTreeMap<String, u64>,
    /// CPU seconds of the decode pass.
    pub decode_cpu_s: f64,
    /// Per column: trace lines per CPU second, decode + that column's replay (one core).
    pub lines_per_s: BTreeMap<String, f64>,
    /// Per column: CPU seconds of its replay alone.
    pub replay_cpu_s: BTreeMap<String, f64>,
    pub comparison: Comparison,
    /// The inputs used.
    pub inputs: BTreeMap<String, String>,
    /// Bad input that was skipped (without `strict`), one line per kind: the first such line as
    /// `FILE:LINE: what was wrong`, and how many lines were skipped for it.
    pub warnings: Vec<String>,
    /// From-boot captures: the capture's own per-region result (analysis.json), if present.
    pub kernel_regions: Vec<boot::KernelRegion>,
    /// Whether this was a from-boot replay.
    pub from_boot: bool,
}

/// The files of a capture directory (`DIR/trace.txt.zst`, `DIR/before/…`, `DIR/after/…`).
fn capture_file(dir: &Path, sub: &str, names: &[&str]) -> Option<PathBuf> {
    names
        .iter()
        .map(|n| dir.join(sub).join(n))
        .find(|p| p.exists())
}

fn read_text(p: &Path) -> Result<String, ReplayError> {
    use crate::input::{read_text, ZONEINFO_MAX_BYTES};
    read_text(p, "a /proc text file", ZONEINFO_MAX_BYTES).map_err(|e| {
        if e.io {
            ReplayError::Io(e.to_string())
        } else {
            ReplayError::Input(e.to_string())
        }
    })
}

/// The snapshot window from a capture's meta.json markers (`ts` or `mono_s`).
fn snapshot_window(dir: &Path) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(dir.join("meta.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let mut b = None;
    let mut e = None;
    for m in v.get("markers")?.as_array()? {
        let t = m.get("ts").or_else(|| m.get("mono_s"))?.as_f64()?;
        let s = m.get("text")?.as_str()?;
        let ns = (t * 1e9).round() as u64;
        if s.contains("AFTER_") {
            continue;
        }
        if s.contains("SNAPSHOT_BEGIN") && b.is_none() {
            b = Some(ns);
        } else if s.contains("SNAPSHOT_END") && e.is_none() {
            e = Some(ns);
        }
    }
    Some((b?, e.unwrap_or(u64::MAX)))
}

/// The layout a trace implies when no zoneinfo is given: x86_64 zones (DMA below 16 MiB, DMA32
/// below 4 GiB, Normal above) covering the pfns seen, Normal rounded up to a whole GiB; all
/// memory managed from the start (so lazy-init frees become unknown frees).
pub fn infer_layout(pfn_min: u64, pfn_end: u64) -> MemoryLayout {
    let g = Geometry::X86_64;
    let spb = g.spb_pages();
    let end = pfn_end.max(pfn_min + 1).div_ceil(spb) * spb;
    let mut zones = Vec::new();
    if pfn_min < 0x1000 {
        zones.push(ZoneSpec::plain(
            ZoneKind::Dma,
            PfnRange::new(1, 0x1000.min(end)),
        ));
    }
    if end > 0x1000 && pfn_min < 0x10_0000 {
        zones.push(ZoneSpec::plain(
            ZoneKind::Dma32,
            PfnRange::new(0x1000.max(pfn_min & !(spb - 1)), 0x10_0000.min(end)),
        ));
    }
    if end > 0x10_0000 {
        zones.push(ZoneSpec::plain(
            ZoneKind::Normal,
            PfnRange::new(0x10_0000.max(pfn_min & !(spb - 1)), end),
        ));
    }
    MemoryLayout { geometry: g, zones }
}

/// Replay a trace file or capture directory under `opts.policies`.
pub fn replay(path: &Path, opts: &ReplayOptions) -> Result<ReplayOutput, ReplayError> {
    if opts.boot_trace.is_some() {
        let bc = boot::BootCapture {
            root: path.parent().unwrap_or(path).to_path_buf(),
            boot_text: opts.boot_trace.clone(),
            stream: Some(path.to_path_buf()),
            ..Default::default()
        };
        return replay_from_boot(path, bc, opts);
    }
    if let Some(bc) = boot::detect(path) {
        return replay_from_boot(path, bc, opts);
    }
    let is_dir = path.is_dir();
    let mut inputs = BTreeMap::new();
    inputs.insert("trace".to_string(), path.display().to_string());
    let name = opts.name.clone().unwrap_or_else(|| {
        let p = if is_dir {
            path
        } else {
            path.parent()
                .filter(|p| p.join("before").is_dir())
                .unwrap_or(path)
        };
        let n = p
            .file_name()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_else(|| "trace".into());
        n.trim_end_matches(".zst")
            .trim_end_matches(".gz")
            .trim_end_matches(".txt")
            .to_string()
    });
    let cap_dir: Option<PathBuf> = if is_dir {
        Some(path.to_path_buf())
    } else {
        path.parent()
            .filter(|p| p.join("before").is_dir())
            .map(|p| p.to_path_buf())
    };
    if let Some(d) = &cap_dir {
        crate::input::validate_capture_dir(d).map_err(|e| {
            if e.io {
                ReplayError::Io(e.to_string())
            } else {
                ReplayError::Input(e.to_string())
            }
        })?;
    }
    // layout
    let zi_path = opts.zoneinfo.clone().or_else(|| {
        cap_dir
            .as_ref()
            .and_then(|d| capture_file(d, "before", &["zoneinfo"]))
    });
    let layout = match &zi_path {
        Some(p) => {
            let t = read_text(p)?;
            inputs.insert("zoneinfo".to_string(), p.display().to_string());
            let place = |e: spb_alloc::layout::LayoutError| match e.place.strip_prefix("line ") {
                Some(n) => format!("{}:{n}: {}", p.display(), e.message),
                None => format!("{}: {e}", p.display()),
            };
            Some(
                MemoryLayout::from_zoneinfo(&t, Geometry::X86_64)
                    .map_err(|e| ReplayError::Input(place(e)))?,
            )
        }
        None => None,
    };
    if let (Some(l), Some(p)) = (&layout, &zi_path) {
        // the model's tables are indexed by pfn: one allocator per column replayed at once,
        // plus the decoder's and the prefill's per-pfn tables (about two machines' worth)
        let end = l.zones.iter().map(|z| z.span.end).max().unwrap_or(0);
        let at_once = opts.threads.clamp(1, opts.policies.len().max(1)) as u64;
        crate::input::check_model_memory(&p.display().to_string(), end, at_once + 2)
            .map_err(ReplayError::Input)?;
    }
    // pagetypeinfo before/after
    let mut comparison = Comparison::default();
    if let Some(d) = &cap_dir {
        if let Some(p) = capture_file(d, "before", &["pagetypeinfo"]) {
            comparison.before_blocks = prefill::parse_block_counts(&read_text(&p)?);
        }
        if let Some(p) = capture_file(d, "after", &["pagetypeinfo"]) {
            comparison.after_blocks = prefill::parse_block_counts(&read_text(&p)?);
        }
    }
    // prefill
    let kpf_path = opts.kpageflags.clone().or_else(|| {
        if opts.no_prefill {
            None
        } else {
            cap_dir.as_ref().and_then(|d| {
                capture_file(
                    d,
                    "before",
                    &["kpageflags.zst", "kpageflags.gz", "kpageflags"],
                )
            })
        }
    });
    let mut plan = prefill::PrefillPlan::default();
    if let (Some(kp), false) = (&kpf_path, opts.no_prefill) {
        let Some(l) = &layout else {
            return Err(ReplayError::Input(format!(
                "{}: a kpageflags prefill needs the machine's zoneinfo (--zoneinfo)",
                kp.display()
            )));
        };
        let kc = opts
            .kpagecount
            .clone()
            .or_else(|| prefill::sibling_count_path(kp));
        inputs.insert("kpageflags".to_string(), kp.display().to_string());
        if let Some(c) = &kc {
            inputs.insert("kpagecount".to_string(), c.display().to_string());
        }
        let counts = (!comparison.before_blocks.is_empty()).then_some(&comparison.before_blocks);
        plan = prefill::plan_prefill(kp, kc.as_deref(), l, counts, Geometry::X86_64.max_order)?;
    }
    let snapshot_ns = cap_dir.as_deref().and_then(snapshot_window);
    // pass 1
    let cpu0 = run::thread_cpu_s();
    let settings = decode::DecodeSettings {
        layout: layout.as_ref(),
        prefill: &plan.blocks,
        pageblock_types: &plan.pageblock_types,
        snapshot_ns,
        strict: opts.strict,
        max_order: Geometry::X86_64.max_order,
        max_inferred_pfn: decode::INFERRED_LAYOUT_MAX_PFN,
        stop_marker: opts.stop_marker.clone(),
    };
    let trace_label = match &cap_dir {
        Some(d) if is_dir => crate::trace::input::resolve_trace_path(d)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| path.display().to_string()),
        _ => path.display().to_string(),
    };
    let dec = decode::Decoder::new(settings, &trace_label).run(path, opts.progress.as_ref())?;
    let decode_cpu_s = run::thread_cpu_s() - cpu0;
    let mut snaps: Vec<(&'static str, PathBuf, Option<PathBuf>)> = Vec::new();
    if let Some(d) = &cap_dir {
        for sub in ["after", "before"] {
            if let Some(f) =
                capture_file(d, sub, &["kpageflags.zst", "kpageflags.gz", "kpageflags"])
            {
                snaps.push((sub, f, capture_file(d, sub, &["zoneinfo"])));
            }
        }
    }
    columns(Columns {
        opts,
        dec,
        decode_cpu_s,
        layout,
        plan_pages: plan.pages,
        plan_blocks: plan.blocks.len(),
        comparison,
        inputs,
        name,
        snaps,
        from_boot: false,
        kernel_regions: Vec::new(),
        kernel: kernel_release(path),
    })
}

/// A from-boot replay (see `docs/replay.md`, "From boot"): the boot text up to the stream's
/// first event, then the stream; the layout's reservations from the boot snapshot's
/// PG_reserved pages and nothing else in use; stop at `stress_end` unless told otherwise.
fn replay_from_boot(
    path: &Path,
    bc: boot::BootCapture,
    opts: &ReplayOptions,
) -> Result<ReplayOutput, ReplayError> {
    let mut inputs = BTreeMap::new();
    let name = opts.name.clone().unwrap_or_else(|| {
        bc.root
            .file_name()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_else(|| "boot".into())
    });
    let zi = opts.zoneinfo.clone().or(bc.zoneinfo.clone());
    let kp = opts.kpageflags.clone().or(bc.kpageflags_boot.clone());
    let mut notes_extra: BTreeMap<String, u64> = BTreeMap::new();
    let layout = match (&zi, &kp) {
        (Some(z), Some(k)) => {
            inputs.insert("zoneinfo".to_string(), z.display().to_string());
            inputs.insert("kpageflags_boot".to_string(), k.display().to_string());
            let (l, pages) = boot::boot_layout(z, k, bc.iomem.as_deref())?;
            for (k, v) in pages {
                notes_extra.insert(format!("boot_layout_{k}"), v);
            }
            Some(l)
        }
        (Some(z), None) => {
            inputs.insert("zoneinfo".to_string(), z.display().to_string());
            let t = read_text(z)?;
            Some(
                MemoryLayout::from_zoneinfo(&t, Geometry::X86_64)
                    .map_err(|e| ReplayError::Input(format!("{}: {e}", z.display())))?,
            )
        }
        (None, _) => None,
    };
    let stop = opts
        .stop_marker
        .clone()
        .or_else(|| (!opts.past_stop).then(|| boot::STRESS_END.to_string()));
    let mut comparison = Comparison::default();
    if let Some(p) = &bc.pagetypeinfo_before {
        comparison.before_blocks = prefill::parse_block_counts(&read_text(p)?);
    }
    if stop.as_deref() == Some(boot::STRESS_END) {
        if let Some(p) = &bc.end_pagetypeinfo {
            comparison.after_blocks = prefill::parse_block_counts(&read_text(p)?);
        }
    }
    // sources: the stream first (its first timestamp cuts the boot text)
    let mut sources = Vec::new();
    let stream = match &bc.stream {
        Some(p) => {
            inputs.insert("trace".to_string(), p.display().to_string());
            Some(decode::Source::open(p, opts.progress.as_ref())?)
        }
        None => None,
    };
    let until = stream.as_ref().and_then(|s| s.first_ts());
    if let Some(b) = &bc.boot_text {
        inputs.insert("boot_trace".to_string(), b.display().to_string());
        sources.push(decode::SourceSpec {
            src: decode::Source::open(b, opts.progress.as_ref())?,
            until_ns: until,
        });
    }
    if let Some(s) = stream {
        sources.push(decode::SourceSpec {
            src: s,
            until_ns: None,
        });
    }
    if sources.is_empty() {
        return Err(ReplayError::Input(format!(
            "{}: a from-boot capture without a trace: expected trace/boot_trace.txt.zst or trace/run.dat",
            path.display()
        )));
    }
    let cpu0 = run::thread_cpu_s();
    let settings = decode::DecodeSettings {
        layout: layout.as_ref(),
        prefill: &[],
        pageblock_types: &[],
        snapshot_ns: None,
        strict: opts.strict,
        max_order: Geometry::X86_64.max_order,
        max_inferred_pfn: decode::INFERRED_LAYOUT_MAX_PFN,
        stop_marker: stop.clone(),
    };
    let mut dec = decode::decode_sources(sources, settings)?;
    let decode_cpu_s = run::thread_cpu_s() - cpu0;
    dec.notes.extend(notes_extra);
    if let Some(l) = &layout {
        let labels = boot::deferred_reserved_labels(l);
        dec.notes.insert(
            "boot_unmovable_reserved_pageblocks".to_string(),
            labels.len() as u64,
        );
        dec.log.pageblock_types.extend(labels);
    }
    if stop.is_some()
        && !dec
            .markers
            .iter()
            .any(|(_, t)| stop.as_deref().is_some_and(|m| t.contains(m)))
    {
        dec.notes.insert("stop_marker_not_found".to_string(), 1);
    }
    let mut snaps = Vec::new();
    let at_stress_end = stop.as_deref() == Some(boot::STRESS_END);
    if at_stress_end {
        if let Some(f) = &bc.end_kpageflags {
            snaps.push(("after", f.clone(), bc.end_zoneinfo.clone()));
        }
    }
    if let Some(f) = &kp {
        snaps.push(("before", f.clone(), zi.clone()));
    }
    let kernel_regions = match (&bc.analysis, at_stress_end) {
        (Some(a), true) => {
            inputs.insert("analysis".to_string(), a.display().to_string());
            boot::read_analysis(a)?
        }
        _ => Vec::new(),
    };
    columns(Columns {
        opts,
        dec,
        decode_cpu_s,
        layout,
        plan_pages: BTreeMap::new(),
        plan_blocks: 0,
        comparison,
        inputs,
        name,
        snaps,
        from_boot: true,
        kernel: kernel_release(&bc.root),
        kernel_regions,
    })
}

/// What pass 2 and the output need.
struct Columns<'a> {
    opts: &'a ReplayOptions,
    dec: decode::Decoded,
    decode_cpu_s: f64,
    layout: Option<MemoryLayout>,
    plan_pages: BTreeMap<String, u64>,
    plan_blocks: usize,
    comparison: Comparison,
    inputs: BTreeMap<String, String>,
    name: String,
    /// (`after`/`before`, kpageflags dump, its zoneinfo) measured like the models.
    snaps: Vec<(&'static str, PathBuf, Option<PathBuf>)>,
    from_boot: bool,
    kernel_regions: Vec<boot::KernelRegion>,
    /// The traced kernel's release, when the capture names it.
    kernel: Option<String>,
}

/// The release of the traced kernel, when the capture names it: `meta.json`'s `kernel` (made
/// by `spb capture`) in the capture directory (or the trace file's directory), else the
/// `Linux version` line of a from-boot capture's `dmesg_boot.txt`.
pub fn kernel_release(path: &Path) -> Option<String> {
    let dir = if path.is_dir() { path } else { path.parent()? };
    for d in [dir.to_path_buf(), dir.join("out")] {
        if let Ok(t) = std::fs::read_to_string(d.join("meta.json")) {
            if let Some(k) = serde_json::from_str::<serde_json::Value>(&t)
                .ok()
                .and_then(|v| v.get("kernel")?.as_str().map(str::to_string))
                .filter(|k| !k.is_empty())
            {
                return Some(k);
            }
        }
        if let Ok(t) = std::fs::read_to_string(d.join("dmesg_boot.txt")) {
            if let Some(k) = t.lines().find_map(|l| {
                let rest = &l[l.find("Linux version ")? + "Linux version ".len()..];
                rest.split_whitespace().next().map(str::to_string)
            }) {
                return Some(k);
            }
        }
    }
    None
}

/// The per-CPU free rule of the modelled columns and where it came from.
fn pcp_rule(opts: &ReplayOptions, kernel: Option<&str>) -> (crate::scenario::PcpFree, String) {
    use crate::scenario::PcpFree;
    if let Some(p) = opts.pcp_free {
        return (p, "--pcp-free".into());
    }
    match kernel.and_then(|k| PcpFree::for_kernel(k).map(|p| (p, k))) {
        Some((p, k)) => (p, format!("kernel {k}")),
        None => (PcpFree::default(), "default".into()),
    }
}

/// Pass 2 (the columns, in parallel) and the output.
fn columns(c: Columns<'_>) -> Result<ReplayOutput, ReplayError> {
    let Columns {
        opts,
        dec,
        decode_cpu_s,
        layout,
        plan_pages,
        plan_blocks,
        mut comparison,
        inputs,
        name,
        snaps,
        from_boot,
        kernel_regions,
        kernel,
    } = c;
    let (pcp_free, pcp_free_from) = pcp_rule(opts, kernel.as_deref());
    let col = run::ColumnOpts {
        pcp_decay: opts.pcp_decay,
        on_demand_grow: opts.grow_on_demand,
        pcp_free,
        pcp_free_from: &pcp_free_from,
        skip_hints: opts.skip_hints,
    };
    let layout = layout.unwrap_or_else(|| infer_layout(dec.pfn_min, dec.pfn_end));
    let mut notes = dec.notes.clone();
    for (k, v) in &plan_pages {
        notes.insert(format!("prefill_pages_{k}"), *v);
    }
    notes.insert("prefill_blocks".to_string(), plan_blocks as u64);
    notes.insert("ops".to_string(), dec.log.ops.len() as u64);
    // pass 2: the columns, in parallel
    let results: Mutex<Vec<Option<Result<run::PolicyRun, ReplayError>>>> =
        Mutex::new((0..opts.policies.len()).map(|_| None).collect());
    let next = AtomicUsize::new(0);
    let threads = opts.threads.clamp(1, opts.policies.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= opts.policies.len() {
                    break;
                }
                let r = run::run_policy(
                    &dec.log,
                    &layout,
                    &opts.policies[i],
                    opts.sample_ns,
                    &name,
                    &col,
                );
                results.lock().expect("no poisoned lock")[i] = Some(r);
            });
        }
    });
    let mut out = ReplayOutput {
        stats: dec.stats.clone(),
        decode_cpu_s,
        inputs,
        ..Default::default()
    };
    out.stats.parsed = dec.stats.parsed;
    comparison.real_extfrag = dec.real_extfrag.clone();
    // snapshots measured like the models
    let min_wmark = {
        let a = spb_alloc::Allocator::new(&layout, spb_alloc::Config::default())
            .map_err(|e| ReplayError::Layout(e.to_string()))?;
        a.zones()
            .iter()
            .map(|z| z.wmark_pages(WMARK_MIN))
            .sum::<u64>()
    };
    for (sub, f, zi) in &snaps {
        let slot = if *sub == "after" {
            &mut comparison.after_snapshot
        } else {
            &mut comparison.before_snapshot
        };
        let c = prefill::sibling_count_path(f);
        let l = zi
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|t| MemoryLayout::from_zoneinfo(&t, Geometry::X86_64).ok())
            .unwrap_or_else(|| layout.clone());
        *slot = measure::measure_snapshot(f, c.as_deref(), &l, min_wmark).ok();
    }
    let runs = results.into_inner().expect("no poisoned lock");
    for (sel, r) in opts.policies.iter().zip(runs) {
        let r = r.expect("every column ran")?;
        let label = sel.label();
        let mut m = r.metrics;
        let mut ts = out.stats.clone();
        ts.fallback_replays = m
            .extra
            .get("fallback_replays")
            .and_then(|v| v.as_u64())
            .unwrap_or(0);
        if matches!(sel, PolicySel::Real) {
            m.extra.insert(
                "extfrag_model_of_real".to_string(),
                m.extra.get("extfrag").cloned().unwrap_or_default(),
            );
            m.extra.insert(
                "extfrag".to_string(),
                serde_json::to_value(&dec.real_extfrag).unwrap_or_default(),
            );
            for (k, v) in [
                ("extfrag_events", dec.real_extfrag.events),
                ("extfrag_fragmenting", dec.real_extfrag.fragmenting),
                ("extfrag_claim", dec.real_extfrag.claim),
                ("extfrag_steal", dec.real_extfrag.steal),
            ] {
                m.vmstat.insert(k.to_string(), v);
            }
            if let Some(a) = &comparison.after_snapshot {
                m.extra.insert(
                    "gigantic_model_of_real".to_string(),
                    serde_json::to_value(&m.gigantic).unwrap_or_default(),
                );
                m.gigantic.allocatable = a.obtainable;
                m.extra.insert(
                    "after_snapshot".to_string(),
                    serde_json::to_value(a).unwrap_or_default(),
                );
            }
        } else {
            comparison
                .model_extfrag
                .insert(label.clone(), r.extfrag.clone());
        }
        comparison
            .model_blocks
            .insert(label.clone(), r.block_counts.clone());
        m.extra
            .insert("replay_cpu_seconds".to_string(), serde_json::json!(r.cpu_s));
        m.extra.insert(
            "decode_cpu_seconds".to_string(),
            serde_json::json!(decode_cpu_s),
        );
        let lps = out.stats.lines as f64 / (decode_cpu_s + r.cpu_s).max(1e-9);
        m.extra.insert(
            "trace_lines_per_cpu_second".to_string(),
            serde_json::json!(lps),
        );
        m.extra.insert(
            "decode_notes".to_string(),
            serde_json::to_value(&notes).unwrap_or_default(),
        );
        out.lines_per_s.insert(label.clone(), lps);
        out.replay_cpu_s.insert(label, r.cpu_s);
        m.trace = Some(ts);
        out.doc.runs.push(m);
    }
    for (reason, first) in &dec.first_bad {
        let n = out.stats.skipped.get(reason).copied().unwrap_or(0);
        let more = if n > 1 {
            format!(" and {} more such lines", n - 1)
        } else {
            String::new()
        };
        let strict = if reason == "unrecognized" {
            ""
        } else {
            "; --strict makes this an error"
        };
        out.warnings
            .push(format!("{first}{more} (skipped as `{reason}`{strict})"));
    }
    out.notes = notes;
    out.comparison = comparison;
    out.from_boot = from_boot;
    out.kernel_regions = kernel_regions;
    Ok(out)
}

impl ReplayOutput {
    /// Per 1 GiB region of a from-boot replay: the capture's own analysis (tainted from boot to
    /// stress_end, live non-movable pages at stress_end) against each column (`T`/`-` ever
    /// tainted, live non-movable pages at the end of the replay).
    pub fn region_table(&self) -> String {
        let mut out = String::new();
        let _ = write!(out, "per 1 GiB region (T = received a non-movable allocation; live = non-movable pages at the end):\n{:<8} {:<7} {:>16}", "region", "zone", "kernel (summary)");
        for m in &self.doc.runs {
            let _ = write!(out, " {:>16}", m.policy);
        }
        out.push('\n');
        let col_regions: Vec<Vec<serde_json::Value>> = self
            .doc
            .runs
            .iter()
            .map(|m| {
                m.extra
                    .get("regions")
                    .and_then(|v| v.as_array())
                    .cloned()
                    .unwrap_or_default()
            })
            .collect();
        let Some(first) = col_regions.first() else {
            return out;
        };
        for r in first {
            let gib = r.get("region").and_then(|v| v.as_u64()).unwrap_or(0);
            let zone = r.get("zone").and_then(|v| v.as_str()).unwrap_or("?");
            let k = self.kernel_regions.iter().find(|k| k.region == gib);
            let kc = match k {
                Some(k) => format!(
                    "{} {}",
                    if k.tainted { "T" } else { "-" },
                    k.live_nonmovable_pages_at_stress_end
                ),
                None => "".into(),
            };
            let _ = write!(
                out,
                "{:<8} {:<7} {:>16}",
                format!("{}G-{}G", gib, gib + 1),
                zone,
                kc
            );
            for regs in &col_regions {
                let c = regs
                    .iter()
                    .find(|x| {
                        x.get("region").and_then(|v| v.as_u64()) == Some(gib)
                            && x.get("zone").and_then(|v| v.as_str()) == Some(zone)
                    })
                    .map(|x| {
                        format!(
                            "{} {}",
                            if x.get("ever_tainted").and_then(|v| v.as_bool()) == Some(true) {
                                "T"
                            } else {
                                "-"
                            },
                            x.get("live_nonmovable_pages")
                                .and_then(|v| v.as_u64())
                                .unwrap_or(0)
                        )
                    })
                    .unwrap_or_default();
                let _ = write!(out, " {:>16}", c);
            }
            out.push('\n');
        }
        out
    }

    /// The per-trace table of the issue: tainted 1 GiB regions (end, peak), fallback events by
    /// kind, 1 GiB pages obtainable, plus the replay's own counters.
    pub fn text_table(&self) -> String {
        let mut rows: Vec<(String, Vec<String>)> = Vec::new();
        let runs = &self.doc.runs;
        let col = |f: &dyn Fn(&crate::metrics::RunMetrics) -> String| {
            runs.iter().map(f).collect::<Vec<_>>()
        };
        let ef = |m: &crate::metrics::RunMetrics, k: &str| {
            m.extra
                .get("extfrag")
                .and_then(|v| v.get(k))
                .and_then(|v| v.as_u64())
                .unwrap_or(0)
        };
        rows.push((
            "tainted SPBs Normal (end / peak)".into(),
            col(&|m| format!("{} / {}", m.normal.spb_tainted, m.normal.spb_tainted_peak)),
        ));
        rows.push((
            "tainted SPBs all zones (end / peak)".into(),
            col(&|m| {
                format!(
                    "{} / {}",
                    m.all_zones.spb_tainted, m.all_zones.spb_tainted_peak
                )
            }),
        ));
        rows.push((
            "SPBs total / lost (all zones)".into(),
            col(&|m| format!("{} / {}", m.all_zones.spb_total, m.all_zones.spb_lost)),
        ));
        rows.push((
            "fallback events (extfrag)".into(),
            col(&|m| ef(m, "events").to_string()),
        ));
        rows.push((
            "  fragmenting".into(),
            col(&|m| ef(m, "fragmenting").to_string()),
        ));
        rows.push((
            "  claim (change_ownership=1)".into(),
            col(&|m| ef(m, "claim").to_string()),
        ));
        rows.push((
            "  steal (change_ownership=0)".into(),
            col(&|m| ef(m, "steal").to_string()),
        ));
        rows.push((
            "1 GiB pages obtainable (end)".into(),
            col(&|m| m.gigantic.allocatable.to_string()),
        ));
        rows.push((
            "fallback replays".into(),
            col(&|m| {
                m.trace
                    .as_ref()
                    .map(|t| t.fallback_replays)
                    .unwrap_or(0)
                    .to_string()
            }),
        ));
        rows.push((
            "failed requests".into(),
            col(&|m| m.alloc_failures.values().sum::<u64>().to_string()),
        ));
        rows.push((
            "THP order-9 served".into(),
            col(&|m| format!("{}/{}", m.thp.success, m.thp.attempts)),
        ));
        rows.push((
            "pages migrated".into(),
            col(&|m| m.pages_migrated.to_string()),
        ));
        rows.push((
            "lines/s (decode+replay, 1 core)".into(),
            col(&|m| {
                format!(
                    "{:.2} M",
                    self.lines_per_s.get(&m.policy).copied().unwrap_or(0.0) / 1e6
                )
            }),
        ));
        let mut out = String::new();
        let w0 = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
        let ws: Vec<usize> = (0..runs.len())
            .map(|i| {
                rows.iter()
                    .map(|r| r.1[i].len())
                    .max()
                    .unwrap_or(0)
                    .max(runs[i].policy.len())
            })
            .collect();
        let _ = write!(out, "{:<w0$}", "");
        for (i, m) in runs.iter().enumerate() {
            let _ = write!(out, "  {:>w$}", m.policy, w = ws[i]);
        }
        out.push('\n');
        for (label, cells) in &rows {
            let _ = write!(out, "{label:<w0$}");
            for (i, c) in cells.iter().enumerate() {
                let _ = write!(out, "  {:>w$}", c, w = ws[i]);
            }
            out.push('\n');
        }
        let s = &self.stats;
        let _ = writeln!(
            out,
            "trace: {} lines, {} parsed, {} unknown frees, {} inferred bulk pages; skipped: {}",
            s.lines,
            s.parsed,
            s.unknown_frees,
            s.inferred_bulk_pages,
            s.skipped
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        if let Some(r) = runs.iter().find_map(|m| m.extra.get("pcp_free")) {
            let _ = writeln!(
                out,
                "per-CPU free rule of the modelled columns: {} ({})",
                r["rule"].as_str().unwrap_or("?"),
                r["from"].as_str().unwrap_or("?")
            );
        }
        if self.from_boot {
            out.push_str(&self.region_table());
        }
        // pageblock labels
        let c = &self.comparison;
        if !c.after_blocks.is_empty() || !c.model_blocks.is_empty() {
            let _ = writeln!(
                out,
                "pageblocks by type (Unmovable/Movable/Reclaimable), Normal zone:"
            );
            let fmt = |m: Option<&BTreeMap<String, u64>>| match m {
                Some(m) => format!(
                    "{}/{}/{}",
                    m.get("Unmovable").copied().unwrap_or(0),
                    m.get("Movable").copied().unwrap_or(0),
                    m.get("Reclaimable").copied().unwrap_or(0)
                ),
                None => "-".into(),
            };
            let _ = writeln!(
                out,
                "  kernel before: {}  kernel after: {}",
                fmt(c.before_blocks.get("Normal")),
                fmt(c.after_blocks.get("Normal"))
            );
            for (k, v) in &c.model_blocks {
                let _ = writeln!(out, "  {k} at end: {}", fmt(v.get("Normal")));
            }
        }
        out
    }
}
