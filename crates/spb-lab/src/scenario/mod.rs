//! Scenarios: a machine, VM settings, boot, and a list of workload components, loaded from TOML
//! (the built-ins are TOML too; see `docs/scenarios.md` for the language).
//!
//! Errors name the file, the key (as a path such as `workload[2].rss`) and what was expected;
//! unknown keys are errors.

pub mod builtin;
pub mod sets;
pub mod units;

use std::fmt;

use units::{parse_dur, parse_size};
pub use units::{Dur, Size};

/// A scenario error: where and what was expected.
#[derive(Clone, Debug, PartialEq)]
pub struct ScenarioError {
    /// The file (or `built-in:NAME`).
    pub file: String,
    /// The 1-based line of the key (or of a TOML syntax error), when it can be found.
    pub line: Option<usize>,
    /// The key path, e.g. `workload[2].rss`; empty for whole-file errors.
    pub key: String,
    pub message: String,
    /// The file does not exist or cannot be read (as opposed to bad content).
    pub unreadable: bool,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        if self.key.is_empty() {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": {}: {}", self.key, self.message)
        }
    }
}

/// The 1-based line where a key path such as `machine.memory`, `workload[2].rss` or
/// `workload[0].phases[1]` is set in TOML text (`[table]` and `[[array]]` headers, `key = `
/// and dotted `a.b = ` lines; a best effort that ignores multi-line strings).
pub fn key_line(text: &str, key: &str) -> Option<usize> {
    fn render(h: &str, counts: &std::collections::HashMap<String, usize>) -> String {
        let segs: Vec<&str> = h.split('.').map(|s| s.trim().trim_matches('"')).collect();
        let mut out = String::new();
        for (j, seg) in segs.iter().enumerate() {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(seg);
            if j + 1 < segs.len() {
                if let Some(c) = counts.get(&out) {
                    out.push_str(&format!("[{}]", c.saturating_sub(1)));
                }
            }
        }
        out
    }
    let mut counts = std::collections::HashMap::new();
    let mut current = String::new();
    for (i, raw) in text.lines().enumerate() {
        let l = raw.trim();
        if l.starts_with('#') {
            continue;
        }
        if l.starts_with('[') {
            let l = l.split('#').next().unwrap_or("").trim();
            if let Some(h) = l.strip_prefix("[[").and_then(|r| r.strip_suffix("]]")) {
                let base = render(h, &counts);
                let n = counts.entry(base.clone()).or_insert(0);
                current = format!("{base}[{n}]");
                *n += 1;
                if current == key || base == key {
                    return Some(i + 1);
                }
            } else if let Some(h) = l.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
                current = render(h, &counts);
                if current == key {
                    return Some(i + 1);
                }
            }
        } else if let Some((k, _)) = l.split_once('=') {
            let k: Vec<&str> = k.split('.').map(|s| s.trim().trim_matches('"')).collect();
            let k = k.join(".");
            let full = if current.is_empty() {
                k
            } else {
                format!("{current}.{k}")
            };
            if full == key
                || key.starts_with(&format!("{full}["))
                || key.starts_with(&format!("{full}."))
            {
                return Some(i + 1);
            }
        }
    }
    None
}

impl std::error::Error for ScenarioError {}

/// QEMU machine type (where RAM below 4 GiB ends).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutKind {
    /// 3 GiB of RAM below 4 GiB.
    I440fx,
    /// 2 GiB of RAM below 4 GiB.
    Q35,
}

/// A scenario key whose value is one of a few words: `name()`, `Display` and `FromStr` (the
/// error lists the words) for an enum of unit variants, each with its word.
macro_rules! keyword_values {
    ($t:ident { $($v:ident => $word:literal),+ $(,)? }) => {
        impl $t {
            /// The word of this value (as in the scenario file and the JSON).
            pub fn name(self) -> &'static str {
                match self {
                    $($t::$v => $word,)+
                }
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }

        impl std::str::FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<$t, String> {
                match s {
                    $($word => Ok($t::$v),)+
                    o => Err(format!(
                        "expected {}, got \"{o}\"",
                        [$(concat!("\"", $word, "\"")),+].join(" or ")
                    )),
                }
            }
        }
    };
}

/// How the lab models slab populations' objects (scenario key `slab_model`, `--slab-model`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SlabModel {
    /// Every object of a slab population is a record of its own (the original model).
    #[default]
    Objects,
    /// A slab population's in-use objects are counts per slab page and churn is drawn page
    /// by page (`sim::world::slab::pages`): same law, cost per slab page, not per object;
    /// different random draws, so different results from `objects`.
    Pages,
}

keyword_values!(SlabModel { Objects => "objects", Pages => "pages" });

/// When the lab's kswapd runs (scenario key `kswapd`).
///
/// The lab's clock stands still inside one workload event, so a burst of requests in one event
/// (a large read, a process's start-up) sees no kswapd at all under `between-events`: every
/// request of the burst below min stalls in direct reclaim, however many there are, while the
/// same requests spread over several events would have found kswapd's work done. The kernel's
/// kswapd is a thread of its own that starts reclaiming as soon as a request wakes it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KswapdModel {
    /// kswapd runs as soon as a request wakes it (right after that request, before the next
    /// one, inside the event as between events) and on the background tick.
    #[default]
    OnWake,
    /// kswapd runs only between workload events and on the background tick (the lab before
    /// this switch: a burst inside one event falls into direct reclaim).
    BetweenEvents,
}

keyword_values!(KswapdModel { OnWake => "on-wake", BetweenEvents => "between-events" });

/// How frees tune and trim the allocator's per-CPU lists (scenario key `pcp_free`,
/// `--pcp-free`): the words of `spb_alloc::pcp::PcpFreeTuning`, whose variants say what each
/// rule does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PcpFree {
    #[default]
    Mainline,
    MainlineBatch,
    Simple,
}

keyword_values!(PcpFree { Mainline => "mainline", MainlineBatch => "mainline-batch", Simple => "simple" });

impl PcpFree {
    /// The allocator setting.
    pub fn tuning(self) -> spb_alloc::pcp::PcpFreeTuning {
        use spb_alloc::pcp::PcpFreeTuning as T;
        match self {
            PcpFree::Mainline => T::Mainline,
            PcpFree::MainlineBatch => T::MainlineBatch,
            PcpFree::Simple => T::Simple,
        }
    }

    /// The rule of a kernel release (`6.12.95+deb12-amd64`, `6.18.44-fc`): `mainline-batch`
    /// before 6.18 (the `free_high` threshold of `batch`), `mainline` from 6.18 on; `None`
    /// when the release does not start with MAJOR.MINOR.
    pub fn for_kernel(release: &str) -> Option<PcpFree> {
        let mut it = release.trim().split(|c: char| !c.is_ascii_digit());
        let major: u32 = it.next()?.parse().ok()?;
        let minor: u32 = it.next()?.parse().ok()?;
        Some(if (major, minor) < (6, 18) {
            PcpFree::MainlineBatch
        } else {
            PcpFree::Mainline
        })
    }
}

/// The simulated machine.
#[derive(Clone, Debug, PartialEq)]
pub struct Machine {
    /// RAM of the machine (reported as `memory_bytes`).
    pub memory: u64,
    pub layout: LayoutKind,
    /// RAM below 4 GiB (overrides the layout's default).
    pub below_4g: Option<u64>,
    /// RAM at the top of memory that firmware keeps (e820 reserved): not visible to the kernel.
    pub firmware_reserved: Size,
    pub cpus: usize,
    /// KASLR seed for the kernel image placement (default: derived from the scenario seed).
    pub kaslr_seed: Option<u64>,
}

/// `/sys/kernel/mm/transparent_hugepage/enabled`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThpEnabled {
    Always,
    Madvise,
    Never,
}

/// `/sys/kernel/mm/transparent_hugepage/defrag`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThpDefrag {
    Always,
    Defer,
    DeferMadvise,
    Madvise,
    Never,
}

/// VM settings.
#[derive(Clone, Debug, PartialEq)]
pub struct VmSettings {
    pub thp_enabled: ThpEnabled,
    pub thp_defrag: ThpDefrag,
    pub khugepaged: bool,
    /// khugepaged/defrag (GFP_TRANSHUGE instead of GFP_TRANSHUGE_LIGHT for collapses).
    pub khugepaged_defrag: bool,
    /// Swap present: reclaim may swap anonymous memory.
    pub swap: bool,
    /// vm.dirty_expire_centisecs, as a duration.
    pub dirty_expire_ns: u64,
    /// vm.dirty_ratio in percent of RAM: beyond it writers write back synchronously.
    pub dirty_ratio: f64,
    pub min_free_kbytes: Option<u64>,
    pub compaction_proactiveness: u64,
    pub watermark_boost_factor: Option<u64>,
}

impl Default for VmSettings {
    fn default() -> Self {
        VmSettings {
            thp_enabled: ThpEnabled::Always,
            thp_defrag: ThpDefrag::Madvise,
            khugepaged: true,
            khugepaged_defrag: true,
            swap: false,
            dirty_expire_ns: 30_000_000_000,
            dirty_ratio: 20.0,
            min_free_kbytes: None,
            compaction_proactiveness: 20,
            watermark_boost_factor: None,
        }
    }
}

/// Early boot kernel allocations.
#[derive(Clone, Debug, PartialEq)]
pub struct Boot {
    pub unmovable: Size,
    pub reclaimable: Size,
    /// Fraction of the boot allocations freed again shortly after boot (init data, probes).
    pub freed: f64,
}

/// Fields every workload component has.
#[derive(Clone, Debug, PartialEq)]
pub struct Common {
    pub name: String,
    pub start: Dur,
    /// None: until the end.
    pub stop: Option<Dur>,
}

/// THP use of a process class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThpUse {
    /// VMAs not madvised: THP per `vm.thp_enabled = always`.
    Inherit,
    /// VMAs madvised (MADV_HUGEPAGE).
    Madvise,
    /// MADV_NOHUGEPAGE.
    Never,
}

/// A class of processes (anonymous memory, page tables, kernel stacks, slab objects, pins,
/// pipes, fork storms).
#[derive(Clone, Debug, PartialEq)]
pub struct Procs {
    pub count: u32,
    pub rss: Size,
    pub rss_jitter: f64,
    /// Bytes faulted per second per process.
    pub fault_rate: Size,
    /// Mean lifetime (exponential); None = the whole run.
    pub lifetime: Option<Dur>,
    /// Processes are replaced when they exit or are killed.
    pub respawn: bool,
    /// Unmap everything once `rss` is reached (after `hold`), then fault again.
    pub cycle: bool,
    pub hold: Dur,
    /// Fraction of the resident set unmapped and faulted again per second.
    pub churn: f64,
    pub thp: ThpUse,
    pub threads: u32,
    /// Children forked per storm (0: none).
    pub children: u32,
    /// Mean time between fork storms.
    pub fork_every: Dur,
    pub child_rss: Size,
    pub child_lifetime: Dur,
    /// Fraction of a child's resident set that are copy-on-write copies of the parent's pages.
    pub cow: f64,
    /// Fraction of the resident set pinned (GUP/DMA) at any time, and for how long.
    pub pin: f64,
    pub pin_time: Dur,
    /// Pipe buffer bytes written per second (GFP_HIGHUSER|__GFP_ACCOUNT pages, short-lived).
    pub pipe_rate: Size,
    /// Multiplier of the per-process kernel objects (task_struct, mm, vmas, files, ...).
    pub kernel_objects: f64,
    /// vmalloc'd kernel memory per process (order-0 pages, unmovable, freed at exit).
    pub vmalloc: Size,
}

/// Page cache on a disk filesystem (ext4-like, large folios): evictable.
#[derive(Clone, Debug, PartialEq)]
pub struct PageCache {
    /// Files kept (the oldest are deleted beyond this).
    pub files: u32,
    pub file_size: Size,
    pub write_rate: Size,
    pub read_rate: Size,
    /// The write size: sets the folio order of written page cache (4K: order 0, 64K: 4, 1M: 8).
    pub write_block: Size,
    /// Largest readahead folio order.
    pub read_order: u8,
    /// Readahead window (`read_ahead_kb`): a refused large folio costs the rest of its window
    /// in order-0 folios, and the next window tries the large order again.
    pub read_ahead: Size,
    /// Mean file lifetime before deletion (None: kept until pushed out by `files`).
    pub lifetime: Option<Dur>,
}

/// sb-stress: tmpfs mount / create / unmount loops.
#[derive(Clone, Debug, PartialEq)]
pub struct Tmpfs {
    pub workers: u32,
    pub files: u32,
    pub dirs: u32,
    pub file_size: Size,
    pub blob: Size,
    /// Mean time a mount lives.
    pub period: Dur,
}

/// A slab cache population.
#[derive(Clone, Debug, PartialEq)]
pub struct SlabLoad {
    pub cache: String,
    /// Object bytes at the start.
    pub size: Size,
    /// Object bytes at the end (linear growth), default = `size`.
    pub grow_to: Option<Size>,
    /// Fraction of the objects freed and replaced per second.
    pub churn: f64,
    /// Fraction of objects in use (not shrinkable); the rest sit unused on the cache's LRU
    /// (shrinkable) if the cache is reclaimable.
    pub in_use: f64,
}

/// Network: UDP-like flows.
#[derive(Clone, Debug, PartialEq)]
pub struct Net {
    pub flows: u32,
    /// Packets per second per flow.
    pub rate: f64,
    pub size: Size,
    /// Mean time a packet stays queued before it is consumed.
    pub latency: Dur,
    pub burst: u32,
    /// Bytes a flow may have queued (sk_rcvbuf); beyond it packets are dropped.
    pub rcvbuf: Size,
    /// Fraction of packets received into page fragments (GFP_ATOMIC order-3 page_frag refills).
    pub frag: f64,
}

/// 1 GiB hugetlb requests.
#[derive(Clone, Debug, PartialEq)]
pub struct Hugetlb {
    pub at: Vec<Dur>,
    pub every: Option<Dur>,
    pub count: u32,
    pub hold: Dur,
}

/// A workload component.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    Processes(Procs),
    PageCache(PageCache),
    Tmpfs(Tmpfs),
    Slab(SlabLoad),
    Net(Net),
    Hugetlb(Hugetlb),
}

impl Kind {
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Processes(_) => "processes",
            Kind::PageCache(_) => "pagecache",
            Kind::Tmpfs(_) => "tmpfs",
            Kind::Slab(_) => "slab",
            Kind::Net(_) => "net",
            Kind::Hugetlb(_) => "hugetlb",
        }
    }
}

/// A workload component with its common fields.
#[derive(Clone, Debug, PartialEq)]
pub struct Workload {
    pub common: Common,
    pub kind: Kind,
}

/// A whole scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    /// What the series (or the QEMU experiment) reported for this setup, for RESULTS.md.
    pub reference: String,
    pub machine: Machine,
    pub duration_ns: u64,
    pub seed: u64,
    pub sample_every_ns: u64,
    pub vm: VmSettings,
    pub boot: Boot,
    pub workloads: Vec<Workload>,
    /// The lab's slab model (`slab_model`, default `objects`).
    pub slab_model: SlabModel,
    /// When the lab's kswapd runs (`kswapd`, default `on-wake`).
    pub kswapd: KswapdModel,
    /// How frees trim the per-CPU lists (`pcp_free`, default `mainline`).
    pub pcp_free: PcpFree,
    /// Compaction's skip hints (`compaction_skip_hints`, default true; false is the model
    /// before 2026-12-05).
    pub compaction_skip_hints: bool,
    /// The async free scanner's stride (`compaction_async_stride`, default false).
    pub compaction_async_stride: bool,
    /// kswapd reclaims the high watermark per round (`kswapd_reclaims_high_watermark`, default
    /// true; false is the model before 2026-12-06 night).
    pub kswapd_reclaims_high_watermark: bool,
    /// Direct compaction stops at the first free block of its order (`compaction_capture`,
    /// default true; false is the model before 2026-12-07).
    pub compaction_capture: bool,
    /// Async direct compaction passes over an order-aligned chunk that cannot be freed
    /// (`compaction_skip_on_failure`, default true; false is the model before 2026-12-07,
    /// second session).
    pub compaction_skip_on_failure: bool,
}

/// Command-line overrides.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Overrides {
    pub memory: Option<u64>,
    pub duration_ns: Option<u64>,
    pub seed: Option<u64>,
    pub layout: Option<LayoutKind>,
    pub slab_model: Option<SlabModel>,
    pub pcp_free: Option<PcpFree>,
    /// Compaction's skip hints on or off (`--skip-hints`).
    pub skip_hints: Option<bool>,
    /// `--set KEY=VALUE` edits of the scenario text, applied before it is read
    /// ([`load_with`]); held here so that every command that loads takes them.
    pub sets: Vec<String>,
}

impl Scenario {
    /// Apply command-line overrides (not `o.sets`: those edit the text, see [`load_with`]).
    pub fn apply(&mut self, o: &Overrides) {
        if let Some(m) = o.memory {
            self.machine.memory = m;
        }
        if let Some(d) = o.duration_ns {
            self.duration_ns = d;
        }
        if let Some(s) = o.seed {
            self.seed = s;
        }
        if let Some(l) = o.layout {
            self.machine.layout = l;
        }
        if let Some(p) = o.pcp_free {
            self.pcp_free = p;
        }
        if let Some(h) = o.skip_hints {
            self.compaction_skip_hints = h;
        }
        if let Some(m) = o.slab_model {
            self.slab_model = m;
        }
    }

    /// RAM visible to the kernel.
    pub fn visible_ram(&self) -> u64 {
        let fw = self.machine.firmware_reserved.bytes(self.machine.memory);
        (self.machine.memory.saturating_sub(fw)) / (2 << 20) * (2 << 20)
    }

    /// Parse a scenario from TOML text. `file` names the source in errors.
    pub fn from_toml(text: &str, file: &str) -> Result<Scenario, ScenarioError> {
        Scenario::from_toml_with(text, file, &[])
    }

    /// Parse a scenario from TOML text with `sets` applied first (`KEY=VALUE`, see
    /// [`sets::apply`]); the scenario's name then carries them, so that every table and JSON
    /// file says what was run.
    pub fn from_toml_with(
        text: &str,
        file: &str,
        sets: &[String],
    ) -> Result<Scenario, ScenarioError> {
        let err = |key: &str, message: String| ScenarioError {
            file: file.to_string(),
            line: key_line(text, key),
            key: key.to_string(),
            message,
            unreadable: false,
        };
        let root: toml::Table = toml::from_str(text).map_err(|e| ScenarioError {
            line: e.span().map(|s| {
                text[..s.start.min(text.len())]
                    .bytes()
                    .filter(|&b| b == b'\n')
                    .count()
                    + 1
            }),
            ..err("", format!("not valid TOML: {}", e.message()))
        })?;
        let mut root = root;
        for set in sets {
            sets::apply(&mut root, set).map_err(|(key, message)| ScenarioError {
                file: file.to_string(),
                line: None,
                key,
                message: format!("--set {set}: {message}"),
                unreadable: false,
            })?;
        }
        let mut t = Tbl::new("", root);
        let r = (|| -> Result<Scenario, (String, String)> {
            let name = t.str("name")?.ok_or_else(|| {
                (
                    "name".to_string(),
                    "expected a scenario name (string)".to_string(),
                )
            })?;
            let description = t.str("description")?.unwrap_or_default();
            let reference = t.str("reference")?.unwrap_or_default();
            let duration_ns = t
                .dur("duration", false)?
                .map(|d| d.ns(0))
                .unwrap_or(120_000_000_000);
            units::check_duration(duration_ns).map_err(|e| ("duration".to_string(), e))?;
            let seed = t.u64("seed")?.unwrap_or(1);
            let slab_model: SlabModel = t.word("slab_model")?;
            let kswapd: KswapdModel = t.word("kswapd")?;
            let pcp_free: PcpFree = t.word("pcp_free")?;
            let compaction_skip_hints = t.bool("compaction_skip_hints")?.unwrap_or(true);
            let compaction_async_stride = t.bool("compaction_async_stride")?.unwrap_or(false);
            let kswapd_reclaims_high_watermark =
                t.bool("kswapd_reclaims_high_watermark")?.unwrap_or(true);
            let compaction_capture = t.bool("compaction_capture")?.unwrap_or(true);
            let compaction_skip_on_failure = t.bool("compaction_skip_on_failure")?.unwrap_or(true);
            let sample_every_ns = t
                .dur("sample_every", false)?
                .map(|d| d.ns(0))
                .unwrap_or(10_000_000_000);
            if sample_every_ns < 1_000_000 {
                return Err(("sample_every".into(), "expected at least 1ms".into()));
            }
            let machine = {
                let mut m = t
                    .sub("machine")?
                    .unwrap_or_else(|| Tbl::new("machine", toml::Table::new()));
                let memory = match m.size("memory", false)? {
                    Some(Size::Bytes(b)) => b,
                    _ => 16 << 30,
                };
                if let Err(e) = units::check_memory(memory) {
                    return Err((
                        m.key("memory"),
                        format!("{e}, got {}", units::fmt_bytes(memory)),
                    ));
                }
                let layout = match m.str("layout")?.as_deref() {
                    None | Some("i440fx") | Some("pc") => LayoutKind::I440fx,
                    Some("q35") => LayoutKind::Q35,
                    Some(o) => {
                        return Err((
                            m.key("layout"),
                            format!("expected \"i440fx\" or \"q35\", got \"{o}\""),
                        ))
                    }
                };
                let below_4g = match m.size("below_4g", false)? {
                    Some(Size::Bytes(b)) => Some(b),
                    _ => None,
                };
                let firmware_reserved =
                    m.size("firmware_reserved", true)?.unwrap_or(Size::Bytes(0));
                let cpus = m.u64("cpus")?.unwrap_or(2);
                if cpus == 0 || cpus > 1024 {
                    return Err((
                        m.key("cpus"),
                        format!("expected 1 to 1024 CPUs, got {cpus}"),
                    ));
                }
                let kaslr_seed = m.u64("kaslr_seed")?;
                // the RAM left to the kernel (Scenario::visible_ram) must still be a machine
                let fw = firmware_reserved.bytes(memory);
                if memory.saturating_sub(fw) / (2 << 20) * (2 << 20) < MIN_MEMORY {
                    return Err((
                        m.key("firmware_reserved"),
                        format!(
                            "reserves {} of the {} of RAM: expected at least {} left to the kernel",
                            units::fmt_bytes(fw.min(memory)),
                            units::fmt_bytes(memory),
                            units::fmt_bytes(MIN_MEMORY)
                        ),
                    ));
                }
                m.finish()?;
                Machine {
                    memory,
                    layout,
                    below_4g,
                    firmware_reserved,
                    cpus: cpus as usize,
                    kaslr_seed,
                }
            };
            let vm = {
                let mut v = t
                    .sub("vm")?
                    .unwrap_or_else(|| Tbl::new("vm", toml::Table::new()));
                let d = VmSettings::default();
                let thp_enabled = match v.str("thp_enabled")?.as_deref() {
                    None => d.thp_enabled,
                    Some("always") => ThpEnabled::Always,
                    Some("madvise") => ThpEnabled::Madvise,
                    Some("never") => ThpEnabled::Never,
                    Some(o) => {
                        return Err((
                            v.key("thp_enabled"),
                            format!("expected \"always\", \"madvise\" or \"never\", got \"{o}\""),
                        ))
                    }
                };
                let thp_defrag = match v.str("thp_defrag")?.as_deref() {
                    None => d.thp_defrag,
                    Some("always") => ThpDefrag::Always,
                    Some("defer") => ThpDefrag::Defer,
                    Some("defer+madvise") => ThpDefrag::DeferMadvise,
                    Some("madvise") => ThpDefrag::Madvise,
                    Some("never") => ThpDefrag::Never,
                    Some(o) => {
                        return Err((v.key("thp_defrag"), format!("expected \"always\", \"defer\", \"defer+madvise\", \"madvise\" or \"never\", got \"{o}\"")))
                    }
                };
                let s = VmSettings {
                    thp_enabled,
                    thp_defrag,
                    khugepaged: v.bool("khugepaged")?.unwrap_or(d.khugepaged),
                    khugepaged_defrag: v.bool("khugepaged_defrag")?.unwrap_or(d.khugepaged_defrag),
                    swap: v.bool("swap")?.unwrap_or(d.swap),
                    dirty_expire_ns: v
                        .dur("dirty_expire", false)?
                        .map(|x| x.ns(0))
                        .unwrap_or(d.dirty_expire_ns),
                    dirty_ratio: v
                        .f64_in("dirty_ratio", 0.0, 100.0)?
                        .unwrap_or(d.dirty_ratio),
                    min_free_kbytes: v.u64("min_free_kbytes")?,
                    compaction_proactiveness: v
                        .u64_in("compaction_proactiveness", 0, 100)?
                        .unwrap_or(d.compaction_proactiveness),
                    watermark_boost_factor: v.u64("watermark_boost_factor")?,
                };
                v.finish()?;
                s
            };
            let boot = {
                let mut b = t
                    .sub("boot")?
                    .unwrap_or_else(|| Tbl::new("boot", toml::Table::new()));
                let s = Boot {
                    unmovable: b.size("unmovable", true)?.unwrap_or(Size::Bytes(48 << 20)),
                    reclaimable: b.size("reclaimable", true)?.unwrap_or(Size::Bytes(4 << 20)),
                    freed: b.f64_in("freed", 0.0, 1.0)?.unwrap_or(0.3),
                };
                b.finish()?;
                s
            };
            let mut workloads = Vec::new();
            for (i, mut w) in t.array("workload")?.into_iter().enumerate() {
                workloads.push(parse_workload(&mut w, i)?);
                w.finish()?;
            }
            t.finish()?;
            let name = if sets.is_empty() {
                name
            } else {
                format!("{name} [{}]", sets.join(", "))
            };
            Ok(Scenario {
                name,
                description,
                reference,
                machine,
                duration_ns,
                seed,
                sample_every_ns,
                vm,
                boot,
                workloads,
                slab_model,
                kswapd,
                pcp_free,
                compaction_skip_hints,
                compaction_async_stride,
                kswapd_reclaims_high_watermark,
                compaction_capture,
                compaction_skip_on_failure,
            })
        })();
        r.map_err(|(k, m)| {
            if sets.is_empty() {
                err(&k, m)
            } else {
                err(
                    &k,
                    format!("{m} (the scenario with --set {})", sets.join(" --set ")),
                )
            }
        })
    }
}

fn parse_workload(w: &mut Tbl, i: usize) -> Result<Workload, (String, String)> {
    let kind = w.str("kind")?.ok_or_else(|| (w.key("kind"), "expected a kind: \"processes\", \"pagecache\", \"tmpfs\", \"slab\", \"net\" or \"hugetlb\"".to_string()))?;
    let name = w.str("name")?.unwrap_or_else(|| format!("{kind}{i}"));
    let start = w.dur("start", true)?.unwrap_or(Dur::Ns(0));
    let stop = w.dur("stop", true)?;
    let common = Common { name, start, stop };
    let k = match kind.as_str() {
        "processes" => {
            let count = w.u64_in("count", 0, 1_000_000)?.unwrap_or(1) as u32;
            let rss = w.size("rss", true)?.unwrap_or(Size::Bytes(64 << 20));
            let thp = match w.str("thp")?.as_deref() {
                None | Some("inherit") => ThpUse::Inherit,
                Some("madvise") => ThpUse::Madvise,
                Some("never") => ThpUse::Never,
                Some(o) => return Err((w.key("thp"), format!("expected \"inherit\", \"madvise\" or \"never\", got \"{o}\""))),
            };
            Kind::Processes(Procs {
                count,
                rss,
                rss_jitter: w.f64_in("rss_jitter", 0.0, 1.0)?.unwrap_or(0.3),
                fault_rate: w.size("fault_rate", false)?.unwrap_or(Size::Bytes(1 << 30)),
                lifetime: w.dur("lifetime", false)?,
                respawn: w.bool("respawn")?.unwrap_or(true),
                cycle: w.bool("cycle")?.unwrap_or(false),
                hold: w.dur("hold", false)?.unwrap_or(Dur::Ns(1_000_000_000)),
                churn: w.f64_in("churn", 0.0, 100.0)?.unwrap_or(0.0),
                thp,
                threads: w.u64_in("threads", 1, 10_000)?.unwrap_or(1) as u32,
                children: w.u64_in("children", 0, 100_000)?.unwrap_or(0) as u32,
                fork_every: w.dur("fork_every", false)?.unwrap_or(Dur::Ns(1_000_000_000)),
                child_rss: w.size("child_rss", true)?.unwrap_or(Size::Bytes(4 << 20)),
                child_lifetime: w.dur("child_lifetime", false)?.unwrap_or(Dur::Ns(500_000_000)),
                cow: w.f64_in("cow", 0.0, 1.0)?.unwrap_or(0.5),
                pin: w.f64_in("pin", 0.0, 1.0)?.unwrap_or(0.0),
                pin_time: w.dur("pin_time", false)?.unwrap_or(Dur::Ns(1_000_000_000)),
                pipe_rate: w.size("pipe_rate", false)?.unwrap_or(Size::Bytes(0)),
                kernel_objects: w.f64_in("kernel_objects", 0.0, 1000.0)?.unwrap_or(1.0),
                vmalloc: w.size("vmalloc", false)?.unwrap_or(Size::Bytes(0)),
            })
        }
        "pagecache" => Kind::PageCache(PageCache {
            files: w.u64_in("files", 1, 100_000_000)?.unwrap_or(1000) as u32,
            file_size: w.size("file_size", true)?.unwrap_or(Size::Bytes(16 << 20)),
            write_rate: w.size("write_rate", false)?.unwrap_or(Size::Bytes(64 << 20)),
            read_rate: w.size("read_rate", false)?.unwrap_or(Size::Bytes(64 << 20)),
            write_block: w.size("write_block", false)?.unwrap_or(Size::Bytes(4096)),
            read_order: w.u64_in("read_order", 0, 9)?.unwrap_or(2) as u8,
            read_ahead: w.size("read_ahead", false)?.unwrap_or(Size::Bytes(128 << 10)),
            lifetime: w.dur("lifetime", false)?,
        }),
        "tmpfs" => Kind::Tmpfs(Tmpfs {
            workers: w.u64_in("workers", 1, 10_000)?.unwrap_or(2) as u32,
            files: w.u64_in("files", 0, 10_000_000)?.unwrap_or(200) as u32,
            dirs: w.u64_in("dirs", 0, 10_000_000)?.unwrap_or(200) as u32,
            file_size: w.size("file_size", false)?.unwrap_or(Size::Bytes(4096)),
            blob: w.size("blob", true)?.unwrap_or(Size::Bytes(8 << 20)),
            period: w.dur("period", false)?.unwrap_or(Dur::Ns(2_000_000_000)),
        }),
        "slab" => {
            let cache = w.str("cache")?.ok_or_else(|| (w.key("cache"), format!("expected a slab cache name, one of: {}", crate::sim::slab::CACHE_NAMES.join(", "))))?;
            if crate::sim::slab::cache_spec(&cache).is_none() {
                return Err((w.key("cache"), format!("expected a slab cache name, one of: {}; got \"{cache}\"", crate::sim::slab::CACHE_NAMES.join(", "))));
            }
            Kind::Slab(SlabLoad {
                cache,
                size: w.size("size", true)?.unwrap_or(Size::Bytes(16 << 20)),
                grow_to: w.size("grow_to", true)?,
                churn: w.f64_in("churn", 0.0, 100.0)?.unwrap_or(0.05),
                in_use: w.f64_in("in_use", 0.0, 1.0)?.unwrap_or(0.1),
            })
        }
        "net" => Kind::Net(Net {
            flows: w.u64_in("flows", 1, 1_000_000)?.unwrap_or(2) as u32,
            rate: w.f64_in("rate", 0.0, 1e9)?.unwrap_or(10000.0),
            size: w.size("size", false)?.unwrap_or(Size::Bytes(1024)),
            latency: w.dur("latency", false)?.unwrap_or(Dur::Ns(200_000)),
            burst: w.u64_in("burst", 1, 100_000)?.unwrap_or(16) as u32,
            rcvbuf: w.size("rcvbuf", false)?.unwrap_or(Size::Bytes(212_992)),
            frag: w.f64_in("frag", 0.0, 1.0)?.unwrap_or(0.5),
        }),
        "hugetlb" => Kind::Hugetlb(Hugetlb {
            at: w.dur_list("at")?.unwrap_or_default(),
            every: w.dur("every", false)?,
            count: w.u64_in("count", 0, 1_000_000)?.unwrap_or(1) as u32,
            hold: w.dur("hold", false)?.unwrap_or(Dur::Ns(10_000_000_000)),
        }),
        o => return Err((w.key("kind"), format!("expected \"processes\", \"pagecache\", \"tmpfs\", \"slab\", \"net\" or \"hugetlb\", got \"{o}\""))),
    };
    Ok(Workload { common, kind: k })
}

/// A TOML table being consumed key by key: every accessor removes its key, `finish` reports
/// the keys nobody asked for.
struct Tbl {
    path: String,
    t: toml::Table,
}

type KeyErr = (String, String);

impl Tbl {
    fn new(path: &str, t: toml::Table) -> Tbl {
        Tbl {
            path: path.to_string(),
            t,
        }
    }
    fn key(&self, k: &str) -> String {
        if self.path.is_empty() {
            k.to_string()
        } else {
            format!("{}.{}", self.path, k)
        }
    }
    fn take(&mut self, k: &str) -> Option<toml::Value> {
        self.t.remove(k)
    }
    fn str(&mut self, k: &str) -> Result<Option<String>, KeyErr> {
        match self.take(k) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s)),
            Some(v) => Err((
                self.key(k),
                format!("expected a string, got {}", v.type_str()),
            )),
        }
    }
    /// A word-valued key ([`keyword_values!`]): its default when absent.
    fn word<T>(&mut self, k: &str) -> Result<T, KeyErr>
    where
        T: Default + std::str::FromStr<Err = String>,
    {
        match self.str(k)? {
            None => Ok(T::default()),
            Some(v) => v.parse().map_err(|e| (self.key(k), e)),
        }
    }
    fn bool(&mut self, k: &str) -> Result<Option<bool>, KeyErr> {
        match self.take(k) {
            None => Ok(None),
            Some(toml::Value::Boolean(b)) => Ok(Some(b)),
            Some(v) => Err((
                self.key(k),
                format!("expected true or false, got {}", v.type_str()),
            )),
        }
    }
    fn u64(&mut self, k: &str) -> Result<Option<u64>, KeyErr> {
        match self.take(k) {
            None => Ok(None),
            Some(toml::Value::Integer(i)) if i >= 0 => Ok(Some(i as u64)),
            Some(v) => Err((
                self.key(k),
                format!("expected a non-negative integer, got {}", show(&v)),
            )),
        }
    }
    fn u64_in(&mut self, k: &str, lo: u64, hi: u64) -> Result<Option<u64>, KeyErr> {
        match self.u64(k)? {
            Some(x) if x < lo || x > hi => Err((
                self.key(k),
                format!("expected an integer from {lo} to {hi}, got {x}"),
            )),
            o => Ok(o),
        }
    }
    fn f64_in(&mut self, k: &str, lo: f64, hi: f64) -> Result<Option<f64>, KeyErr> {
        let v = match self.take(k) {
            None => return Ok(None),
            Some(toml::Value::Float(f)) => f,
            Some(toml::Value::Integer(i)) => i as f64,
            Some(v) => {
                return Err((
                    self.key(k),
                    format!("expected a number from {lo} to {hi}, got {}", show(&v)),
                ))
            }
        };
        if !(lo..=hi).contains(&v) {
            return Err((
                self.key(k),
                format!("expected a number from {lo} to {hi}, got {v}"),
            ));
        }
        Ok(Some(v))
    }
    fn size(&mut self, k: &str, pct: bool) -> Result<Option<Size>, KeyErr> {
        match self.take(k) {
            None => Ok(None),
            Some(toml::Value::String(s)) => {
                parse_size(&s, pct).map(Some).map_err(|e| (self.key(k), e))
            }
            Some(toml::Value::Integer(i)) if i >= 0 => Ok(Some(Size::Bytes(i as u64))),
            Some(v) => Err((
                self.key(k),
                format!(
                    "expected a size string like \"64M\"{}, got {}",
                    if pct { " or \"20%\"" } else { "" },
                    show(&v)
                ),
            )),
        }
    }
    fn dur(&mut self, k: &str, pct: bool) -> Result<Option<Dur>, KeyErr> {
        match self.take(k) {
            None => Ok(None),
            Some(toml::Value::String(s)) => {
                parse_dur(&s, pct).map(Some).map_err(|e| (self.key(k), e))
            }
            Some(v) => Err((
                self.key(k),
                format!(
                    "expected a duration string like \"480s\"{}, got {}",
                    if pct { " or \"50%\"" } else { "" },
                    show(&v)
                ),
            )),
        }
    }
    fn dur_list(&mut self, k: &str) -> Result<Option<Vec<Dur>>, KeyErr> {
        match self.take(k) {
            None => Ok(None),
            Some(toml::Value::Array(a)) => {
                let mut out = Vec::new();
                for (i, v) in a.iter().enumerate() {
                    match v {
                        toml::Value::String(s) => out.push(
                            parse_dur(s, true)
                                .map_err(|e| (format!("{}[{}]", self.key(k), i), e))?,
                        ),
                        v => {
                            return Err((
                                format!("{}[{}]", self.key(k), i),
                                format!(
                                    "expected a duration string like \"60s\" or \"50%\", got {}",
                                    show(v)
                                ),
                            ))
                        }
                    }
                }
                Ok(Some(out))
            }
            Some(v) => Err((
                self.key(k),
                format!(
                    "expected a list of durations like [\"60s\", \"90%\"], got {}",
                    show(&v)
                ),
            )),
        }
    }
    fn sub(&mut self, k: &str) -> Result<Option<Tbl>, KeyErr> {
        match self.take(k) {
            None => Ok(None),
            Some(toml::Value::Table(t)) => Ok(Some(Tbl::new(&self.key(k), t))),
            Some(v) => Err((
                self.key(k),
                format!("expected a table [{}], got {}", k, v.type_str()),
            )),
        }
    }
    fn array(&mut self, k: &str) -> Result<Vec<Tbl>, KeyErr> {
        match self.take(k) {
            None => Ok(Vec::new()),
            Some(toml::Value::Array(a)) => {
                let mut out = Vec::new();
                for (i, v) in a.into_iter().enumerate() {
                    match v {
                        toml::Value::Table(t) => {
                            out.push(Tbl::new(&format!("{}[{}]", self.key(k), i), t))
                        }
                        v => {
                            return Err((
                                format!("{}[{}]", self.key(k), i),
                                format!("expected a table [[{}]], got {}", k, v.type_str()),
                            ))
                        }
                    }
                }
                Ok(out)
            }
            Some(v) => Err((
                self.key(k),
                format!(
                    "expected an array of tables [[{}]], got {}",
                    k,
                    v.type_str()
                ),
            )),
        }
    }
    fn finish(self) -> Result<(), KeyErr> {
        if let Some(k) = self.t.keys().next() {
            return Err((self.key(k), "unknown key".to_string()));
        }
        Ok(())
    }
}

fn show(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => format!("\"{s}\""),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        v => v.type_str().to_string(),
    }
}

pub use units::{MAX_DURATION_NS, MAX_MEMORY, MIN_MEMORY};

/// Load a scenario by built-in name or from a TOML file.
pub fn load(name_or_file: &str) -> Result<Scenario, ScenarioError> {
    load_with(name_or_file, &[])
}

/// Load a scenario by built-in name or from a TOML file, with `sets` (`KEY=VALUE` edits, see
/// [`sets::apply`]) applied to its text before it is read.
pub fn load_with(name_or_file: &str, sets: &[String]) -> Result<Scenario, ScenarioError> {
    if let Some(b) = builtin::get(name_or_file) {
        return Scenario::from_toml_with(b.toml, &format!("built-in:{}", b.name), sets);
    }
    let p = std::path::Path::new(name_or_file);
    let unreadable = |message: String| ScenarioError {
        file: name_or_file.to_string(),
        line: None,
        key: String::new(),
        message,
        unreadable: true,
    };
    // symlink_metadata: a dangling link or a link loop exists (and is reported as what it is)
    if std::fs::symlink_metadata(p).is_err() {
        let names: Vec<&str> = builtin::BUILTINS.iter().map(|b| b.name).collect();
        return Err(unreadable(format!(
            "no such built-in scenario or file (built-ins: {})",
            names.join(", ")
        )));
    }
    let what = "a scenario TOML file";
    let text = match crate::input::read_text(p, what, crate::input::SCENARIO_MAX_BYTES) {
        Ok(t) => t,
        Err(e) => {
            return Err(ScenarioError {
                unreadable: e.io,
                line: e.line,
                ..unreadable(e.message)
            })
        }
    };
    Scenario::from_toml_with(&text, name_or_file, sets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(text: &str) -> ScenarioError {
        Scenario::from_toml(text, "t.toml").unwrap_err()
    }

    #[test]
    fn builtins_parse() {
        for b in builtin::BUILTINS {
            let s = Scenario::from_toml(b.toml, b.name).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(s.name, b.name);
            assert!(!s.workloads.is_empty());
        }
    }

    #[test]
    fn unknown_keys_are_named() {
        let x = e("name = \"x\"\nbogus = 1\n");
        assert_eq!(x.key, "bogus");
        assert!(
            x.to_string().contains("t.toml:2: bogus: unknown key"),
            "{x}"
        );
        let x = e("name = \"x\"\n[machine]\nmemroy = \"16G\"\n");
        assert_eq!((x.key.as_str(), x.line), ("machine.memroy", Some(3)));
        let x = e("name = \"x\"\n[[workload]]\nkind = \"processes\"\nrss = \"1G\"\nrsss = 2\n");
        assert_eq!((x.key.as_str(), x.line), ("workload[0].rsss", Some(5)));
        let x = e("name = \"x\"\n[[workload]]\nkind = \"processes\"\n[[workload]]\nkind = \"processes\"\n# rss = 1\nrss = true\n");
        assert_eq!((x.key.as_str(), x.line), ("workload[1].rss", Some(7)));
        let x = e("name = \"x\"\nmachine.memory = \"4K\"\n");
        assert_eq!((x.key.as_str(), x.line), ("machine.memory", Some(2)));
        assert!(x.message.contains("64M"), "{x}");
        let x = e("name = \"x\"\n[machine]\nmemory = \"17T\"\n");
        assert_eq!(x.line, Some(3), "{x}");
        let x = e("name = \"x\"\n\n[machine\nmemory = 1\n");
        assert_eq!(x.line, Some(3), "a TOML syntax error names its line: {x}");
    }

    #[test]
    fn bad_values_say_what_was_expected() {
        let x = e("name = \"x\"\n[machine]\nmemory = \"lots\"\n");
        assert_eq!(x.key, "machine.memory");
        assert!(x.message.contains("expected a size"), "{x}");
        let x = e("name = \"x\"\n[machine]\nmemory = \"50%\"\n");
        assert!(x.message.contains("not allowed"), "{x}");
        let x = e("name = \"x\"\nduration = 480\n");
        assert_eq!(x.key, "duration");
        assert!(x.message.contains("duration string"), "{x}");
        let x = e("name = \"x\"\n[vm]\nthp_enabled = \"sometimes\"\n");
        assert!(
            x.message.contains("\"always\", \"madvise\" or \"never\""),
            "{x}"
        );
        let x = e("name = \"x\"\n[[workload]]\nkind = \"slab\"\ncache = \"nope\"\n");
        assert_eq!(x.key, "workload[0].cache");
        assert!(x.message.contains("dentry"), "{x}");
        let x = e("name = \"x\"\n[[workload]]\nkind = \"teleport\"\n");
        assert_eq!(x.key, "workload[0].kind");
        let x = e("name = \"x\"\n[[workload]]\nkind = \"processes\"\nchurn = -1\n");
        assert!(x.message.contains("from 0 to 100"), "{x}");
        let x = e("name = \"x\"\n[[workload]]\nkind = \"hugetlb\"\nat = [\"10s\", 5]\n");
        assert_eq!(x.key, "workload[0].at[1]");
        let x = e("name = = \"x\"");
        assert!(x.message.contains("not valid TOML"), "{x}");
        let x = e("description = \"no name\"");
        assert_eq!(x.key, "name");
    }

    #[test]
    fn slab_model_key() {
        let s = Scenario::from_toml("name = \"x\"", "t.toml").unwrap();
        assert_eq!(s.slab_model, SlabModel::Objects, "objects by default");
        let s = Scenario::from_toml("name = \"x\"\nslab_model = \"pages\"", "t.toml").unwrap();
        assert_eq!(s.slab_model, SlabModel::Pages);
        let x = e("name = \"x\"\nslab_model = \"bytes\"");
        assert_eq!((x.key.as_str(), x.line), ("slab_model", Some(2)));
        assert!(
            x.message.contains("\"objects\" or \"pages\""),
            "{}",
            x.message
        );
        assert_eq!("pages".parse::<SlabModel>().unwrap().to_string(), "pages");
    }

    #[test]
    fn kswapd_key() {
        let s = Scenario::from_toml("name = \"x\"", "t.toml").unwrap();
        assert_eq!(s.kswapd, KswapdModel::OnWake, "on-wake by default");
        let s = Scenario::from_toml("name = \"x\"\nkswapd = \"between-events\"", "t.toml").unwrap();
        assert_eq!(s.kswapd, KswapdModel::BetweenEvents);
        let x = e("name = \"x\"\nkswapd = \"never\"");
        assert_eq!((x.key.as_str(), x.line), ("kswapd", Some(2)));
        assert!(x.message.contains("\"on-wake\""), "{}", x.message);
    }

    #[test]
    fn compaction_skip_hints_key() {
        let s = Scenario::from_toml("name = \"x\"", "t.toml").unwrap();
        assert!(s.compaction_skip_hints, "on by default");
        let s =
            Scenario::from_toml("name = \"x\"\ncompaction_skip_hints = false", "t.toml").unwrap();
        assert!(!s.compaction_skip_hints && !s.compaction_async_stride);
        let s =
            Scenario::from_toml("name = \"x\"\ncompaction_async_stride = true", "t.toml").unwrap();
        assert!(s.compaction_async_stride);
        let x = e("name = \"x\"\ncompaction_skip_hints = \"off\"");
        assert_eq!((x.key.as_str(), x.line), ("compaction_skip_hints", Some(2)));
    }

    #[test]
    fn kswapd_reclaims_high_watermark_key() {
        let s = Scenario::from_toml("name = \"x\"", "t.toml").unwrap();
        assert!(s.kswapd_reclaims_high_watermark, "on by default");
        let s = Scenario::from_toml(
            "name = \"x\"\nkswapd_reclaims_high_watermark = false",
            "t.toml",
        )
        .unwrap();
        assert!(!s.kswapd_reclaims_high_watermark);
        let x = e("name = \"x\"\nkswapd_reclaims_high_watermark = 1");
        assert_eq!(
            (x.key.as_str(), x.line),
            ("kswapd_reclaims_high_watermark", Some(2))
        );
    }

    #[test]
    fn compaction_capture_key() {
        let s = Scenario::from_toml("name = \"x\"", "t.toml").unwrap();
        assert!(s.compaction_capture, "on by default");
        let s = Scenario::from_toml("name = \"x\"\ncompaction_capture = false", "t.toml").unwrap();
        assert!(!s.compaction_capture);
        let x = e("name = \"x\"\ncompaction_capture = \"no\"");
        assert_eq!((x.key.as_str(), x.line), ("compaction_capture", Some(2)));
        let s = Scenario::from_toml("name = \"x\"", "t.toml").unwrap();
        assert!(s.compaction_skip_on_failure, "on by default");
        let s = Scenario::from_toml("name = \"x\"\ncompaction_skip_on_failure = false", "t.toml")
            .unwrap();
        assert!(!s.compaction_skip_on_failure);
    }

    #[test]
    fn pcp_free_key_and_kernel_rule() {
        let s = Scenario::from_toml("name = \"x\"", "t.toml").unwrap();
        assert_eq!(s.pcp_free, PcpFree::Mainline, "mainline by default");
        let s = Scenario::from_toml("name = \"x\"\npcp_free = \"simple\"", "t.toml").unwrap();
        assert_eq!(s.pcp_free, PcpFree::Simple);
        assert_eq!(s.pcp_free.tuning(), spb_alloc::pcp::PcpFreeTuning::Simple);
        let x = e("name = \"x\"\npcp_free = \"6.12\"");
        assert_eq!((x.key.as_str(), x.line), ("pcp_free", Some(2)));
        for (release, rule) in [
            ("6.12.95+deb12-amd64", Some(PcpFree::MainlineBatch)),
            ("6.17.0", Some(PcpFree::MainlineBatch)),
            ("6.18.44-fc-v769", Some(PcpFree::Mainline)),
            ("7.0-rc1", Some(PcpFree::Mainline)),
            ("5.15.0-91-generic", Some(PcpFree::MainlineBatch)),
            ("", None),
            ("linux", None),
        ] {
            assert_eq!(PcpFree::for_kernel(release), rule, "{release}");
        }
    }

    #[test]
    fn overrides() {
        let mut s = load("seed-16g").unwrap();
        s.apply(&Overrides {
            memory: Some(2 << 30),
            duration_ns: Some(20_000_000_000),
            seed: Some(7),
            slab_model: Some(SlabModel::Pages),
            pcp_free: Some(PcpFree::MainlineBatch),
            ..Overrides::default()
        });
        assert_eq!(s.slab_model, SlabModel::Pages);
        assert_eq!(s.pcp_free, PcpFree::MainlineBatch);
        assert_eq!(s.machine.memory, 2 << 30);
        assert_eq!(s.duration_ns, 20_000_000_000);
        assert_eq!(s.seed, 7);
        assert!(load("no-such-scenario")
            .unwrap_err()
            .message
            .contains("built-ins"));
    }
}
