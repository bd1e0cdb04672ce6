//! `spb run` and `spb scenarios`.
//!
//! `spb run [SCENARIO|FILE]` runs a scenario under one or more policies on the identical request
//! stream (same seed, same scenario: each policy gets its own simulator, in its own thread, at
//! most `--jobs` of them at once) and prints the policies side by side. `spb run` with no
//! argument runs `seed-16g` under the four default policies (the README's main job).

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar};
use spb_alloc::policy::spec;
use spb_alloc::{MemoryLayout, PolicyConfig, PolicyKind};
use spb_lab::metrics::{RunMetrics, RunsDoc};
use spb_lab::scenario::units::{fmt_bytes, parse_duration, parse_memory};
use spb_lab::scenario::{builtin, LayoutKind, Overrides, PcpFree, Scenario, SlabModel};
use spb_lab::{run_scenario, SimOptions};

use crate::CliError;

/// The scenario and its overrides, shared by `spb run`, `ablate`, `dump` and `map`.
#[derive(clap::Args, Debug, Default, Clone)]
pub struct ScenarioArgs {
    /// A built-in scenario (see `spb scenarios`) or a scenario TOML file [default: seed-16g].
    pub scenario: Option<String>,
    /// Scenario seed (all random choices derive from it).
    #[arg(long)]
    pub seed: Option<u64>,
    /// RAM of the machine, 64M to 15T, e.g. 64G (sizes given in % of RAM scale with it).
    #[arg(long, value_parser = parse_memory)]
    pub memory: Option<u64>,
    /// Virtual duration, above 0 and at most 24h, e.g. 120s or 10m.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<u64>,
    /// The lab's slab model: `objects` (every object a record) or `pages` (counts per slab
    /// page, churn drawn page by page: same law, faster at large memory, different draws)
    /// [default: the scenario's `slab_model`, else objects].
    #[arg(long)]
    pub slab_model: Option<SlabModel>,
    /// How frees trim the allocator's per-CPU lists: `mainline` (6.18's free_frozen_page_commit),
    /// `mainline-batch` (the same with the free_high threshold of earlier kernels) or `simple`
    /// (the model before 2026-12-05) [default: the scenario's `pcp_free`, else mainline].
    #[arg(long)]
    pub pcp_free: Option<PcpFree>,
    /// Compaction's skip hints: `on` (the kernel's PB_compact_skip) or `off` (the model before
    /// 2026-12-05) [default: the scenario's `compaction_skip_hints`, else on].
    #[arg(long, value_name = "on|off", value_parser = on_off)]
    pub skip_hints: Option<bool>,
    /// Change one value of the scenario before it is read: KEY (top level), machine.KEY,
    /// vm.KEY, boot.KEY or [workload.]WORKLOAD.KEY (the `[[workload]]` of that name), e.g.
    /// `--set gigantic.count=36`; repeat for more. The scenario's name then lists them.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

/// Arguments of `spb run`.
#[derive(clap::Args, Debug, Default, Clone)]
pub struct RunArgs {
    #[command(flatten)]
    pub sc: ScenarioArgs,
    /// Policies to run, comma-separated (or the option repeated): vanilla, defrag, spb,
    /// spb-next, or spb-off:SWITCH,... (docs/spb.md) [default: vanilla,defrag,spb,spb-next].
    #[arg(long)]
    pub policy: Vec<String>,
    /// spb behaviours to turn off in every spb policy (comma-separated switch names).
    #[arg(long = "spb-off", value_delimiter = ',')]
    pub spb_off: Vec<String>,
    /// Write the metrics as JSON to FILE (`-` for stdout; the table then goes to stderr).
    #[arg(long, value_name = "FILE")]
    pub json: Option<String>,
    /// Machine layout: i440fx (3 GiB below 4 GiB) or q35 (2 GiB below 4 GiB).
    #[arg(long)]
    pub layout: Option<String>,
    /// Run the allocator's invariant checker every N operations (slow; 0 = never).
    #[arg(long = "check-every", value_name = "N")]
    pub check_every: Option<u64>,
    /// Write an HTML/SVG report into DIR.
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
    /// Print the end-of-run SPB map of every policy (one letter per pageblock).
    #[arg(long)]
    pub map: bool,
    #[command(flatten)]
    pub jobs: JobsArgs,
}

impl RunArgs {
    /// The README's main job: `seed-16g` under every policy.
    pub fn default_main_job() -> RunArgs {
        RunArgs {
            sc: ScenarioArgs {
                scenario: Some("seed-16g".into()),
                ..ScenarioArgs::default()
            },
            ..RunArgs::default()
        }
    }
}

/// Parse a `--policy` list (the run spec of [`spb_alloc::policy::spec`]; `None` = every policy)
/// and turn the `--spb-off` switches off in every spb policy of it. `option` names the option
/// in messages.
pub fn parse_policies(
    option: &str,
    list: Option<&str>,
    spb_off: &[String],
) -> Result<Vec<PolicyConfig>, CliError> {
    let mut out = match list {
        None => PolicyKind::ALL
            .iter()
            .map(|k| PolicyConfig::of(*k))
            .collect(),
        Some(l) => spec::parse_list(l).map_err(|e| CliError::Usage(format!("{option}: {e}")))?,
    };
    for s in spb_off.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        let w = spec::parse_switch(s).map_err(|e| CliError::Usage(format!("--spb-off: {e}")))?;
        for p in out.iter_mut().filter(|p| p.kind.has_switches()) {
            p.spb.set(w, false);
        }
    }
    Ok(out)
}

/// The policies of `spb run`.
pub fn policies(a: &RunArgs) -> Result<Vec<PolicyConfig>, CliError> {
    let list = (!a.policy.is_empty()).then(|| a.policy.join(","));
    parse_policies("--policy", list.as_deref(), &a.spb_off)
}

/// `--layout`.
pub fn parse_layout(layout: Option<&str>) -> Result<Option<LayoutKind>, CliError> {
    match layout {
        None => Ok(None),
        Some("i440fx") | Some("pc") => Ok(Some(LayoutKind::I440fx)),
        Some("q35") => Ok(Some(LayoutKind::Q35)),
        Some(o) => Err(CliError::Usage(format!(
            "--layout: expected i440fx or q35, got \"{o}\""
        ))),
    }
}

/// A scenario with its overrides applied and its machine built once: what every command runs.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub sc: Scenario,
    /// The memory layout, built once here ([`spb_lab::sim::layout_of`]) and handed to every
    /// simulator through [`SimOptions::layout`].
    pub layout: MemoryLayout,
}

impl Loaded {
    /// The options of one simulator of this scenario.
    pub fn options(&self, policy: &PolicyConfig, check_every: u64) -> SimOptions {
        SimOptions {
            policy: policy.clone(),
            check_every,
            layout: Some(self.layout.clone()),
        }
    }
}

/// Load a scenario by built-in name or file, apply `o`, and build its machine.
///
/// A file that does not exist or cannot be read is an I/O error (exit 4), an unknown built-in
/// name (no `/`, no `.toml`) a bad command line (exit 2), bad content bad input (exit 3), a
/// machine that cannot be built from `--memory` a bad command line, and so is a `--set` that
/// the scenario does not accept when it loads without the `--set`s.
pub fn load_scenario(name: Option<&str>, o: &Overrides) -> Result<Loaded, CliError> {
    let name = name.unwrap_or("seed-16g");
    let mut sc = spb_lab::scenario::load_with(name, &o.sets).map_err(|e| {
        if !e.unreadable && !o.sets.is_empty() && spb_lab::scenario::load(name).is_ok() {
            CliError::Usage(e.to_string())
        } else if !e.unreadable {
            CliError::Input(e.to_string())
        } else if name.contains(std::path::MAIN_SEPARATOR)
            || name.contains('/')
            || name.ends_with(".toml")
            || std::fs::symlink_metadata(name).is_ok()
        {
            CliError::Io(e.to_string())
        } else {
            CliError::Usage(e.to_string())
        }
    })?;
    sc.apply(o);
    let layout = spb_lab::sim::layout_of(&sc).map_err(|e| match o.memory {
        Some(m) => {
            // the layout sees only the RAM the firmware leaves: say so, or "got N bytes"
            // contradicts the size the user asked for
            let fw = m - sc.visible_ram().min(m);
            let why = if fw > 0 {
                format!(
                    " (the scenario's machine.firmware_reserved keeps {} of it, leaving {})",
                    fmt_bytes(fw),
                    fmt_bytes(m - fw)
                )
            } else {
                String::new()
            };
            CliError::Usage(format!("--memory {}: {e}{why}", fmt_bytes(m)))
        }
        None => CliError::Input(format!("{name}: {e}")),
    })?;
    Ok(Loaded { sc, layout })
}

/// `on` / `off` of a switch option.
pub fn on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("expected `on` or `off`, found `{s}`")),
    }
}

/// The overrides of `a` (and `--layout`).
pub fn overrides(a: &ScenarioArgs, layout: Option<&str>) -> Result<Overrides, CliError> {
    Ok(Overrides {
        memory: a.memory,
        duration_ns: a.duration,
        seed: a.seed,
        layout: parse_layout(layout)?,
        slab_model: a.slab_model,
        pcp_free: a.pcp_free,
        skip_hints: a.skip_hints,
        sets: a.set.clone(),
    })
}

/// Load the scenario of `spb run` (and `ablate`, `dump`, `map`).
pub fn load(a: &RunArgs) -> Result<Loaded, CliError> {
    load_scenario(
        a.sc.scenario.as_deref(),
        &overrides(&a.sc, a.layout.as_deref())?,
    )
}

/// How many simulated machines `spb run` and `spb ablate` run at once.
#[derive(clap::Args, Debug, Default, Clone)]
pub struct JobsArgs {
    /// Run at most N policies at once, each in its own thread [default: the cores, fewer when
    /// that many machines would not fit in the memory available]. Results do not depend on
    /// it; peak memory and wall times do (N above the cores makes policies wait for a core).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,
}

/// `--jobs` (default: the cores), at most `max` (the runs there are), at least 1.
pub fn jobs_wanted(jobs: Option<u16>, max: usize) -> usize {
    jobs.map(usize::from)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, max.max(1))
}

/// Run the policies, at most `jobs` at once (default: the cores), fewer when their machines
/// would not fit in the memory available; each policy runs whole in one thread, so its wall
/// time is its own. One progress bar each (drawn only on a terminal).
pub fn run_all(
    l: &Loaded,
    pols: &[PolicyConfig],
    check_every: u64,
    jobs: Option<u16>,
) -> Result<Vec<RunMetrics>, CliError> {
    let sc = &l.sc;
    let want = jobs_wanted(jobs, pols.len());
    let at_once = spb_lab::input::scenario_machines_that_fit(sc, want).map_err(CliError::Input)?;
    if at_once < want {
        crate::output::eprint(format!(
            "spb: {at_once} of the {} policies at a time ({want} would not fit in the memory \
             available; see --jobs)\n",
            pols.len()
        ));
    }
    let mp = MultiProgress::with_draw_target(crate::progress::target());
    let style = crate::progress::style(
        "{prefix:>12} [{bar:40}] {pos:>5}/{len} virtual s  {elapsed_precise}  {msg}",
    );
    let total_s = sc.duration_ns / 1_000_000_000;
    let bars: Vec<ProgressBar> = pols
        .iter()
        .map(|p| {
            let pb = mp.add(ProgressBar::new(total_s.max(1)));
            pb.set_style(style.clone());
            pb.set_prefix(p.to_string());
            pb.set_message("waiting");
            pb
        })
        .collect();
    let next = AtomicUsize::new(0);
    let done: Vec<Mutex<Option<Result<RunMetrics, String>>>> =
        pols.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..at_once {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let (Some(p), Some(pb)) = (pols.get(i), bars.get(i)) else {
                    break;
                };
                pb.reset_elapsed();
                pb.set_message("");
                let opts = l.options(p, check_every);
                let mut prog = |ns: u64| pb.set_position(ns / 1_000_000_000);
                let r = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    run_scenario(sc, &opts, &mut prog)
                }))
                .unwrap_or_else(|_| Err("the simulator panicked".to_string()));
                match &r {
                    Ok(m) => pb.finish_with_message(format!(
                        "done, {:.1} M events/s",
                        m.events as f64 / m.wall_seconds.max(1e-9) / 1e6
                    )),
                    Err(e) => pb.abandon_with_message(format!("failed: {e}")),
                }
                *done[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
            });
        }
    });
    let results = done.into_iter().map(|m| {
        m.into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .unwrap_or_else(|| Err("the simulator panicked".to_string()))
    });
    let mut out = Vec::new();
    for r in results {
        // a machine too big for this host's memory (a failed fallible allocation) is refused
        // like the memory check's refusal, not reported as a failed run
        out.push(r.map_err(|e| {
            if e.contains("out of memory: cannot allocate") {
                CliError::Input(e)
            } else {
                CliError::Run(e)
            }
        })?);
    }
    Ok(out)
}

/// Write the JSON document atomically (temporary file + rename), or to stdout for `-`.
pub fn write_json(path: &str, doc: &RunsDoc) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(doc)
        .map_err(|e| CliError::Run(format!("cannot serialise the metrics: {e}")))?;
    if path == "-" {
        crate::output::print(text + "\n");
        return Ok(());
    }
    crate::output::atomic_write(Path::new(path), text.as_bytes())
}

/// Check the output paths of `--json FILE` and `--report DIR` before any work is done.
pub fn check_outputs(json: Option<&str>, report: Option<&Path>) -> Result<(), CliError> {
    if let Some(j) = json.filter(|j| *j != "-") {
        crate::output::check_file("--json", Path::new(j))?;
    }
    if let Some(d) = report {
        crate::output::check_dir("--report", d)?;
    }
    Ok(())
}

pub fn run(a: RunArgs) -> Result<(), CliError> {
    let pols = policies(&a)?;
    if let Some(f) = &a.sc.scenario {
        crate::output::claim_input("the scenario", Path::new(f));
    }
    check_outputs(a.json.as_deref(), a.report.as_deref())?;
    let l = load(&a)?;
    let runs = run_all(&l, &pols, a.check_every.unwrap_or(0), a.jobs.jobs)?;
    let doc = RunsDoc { runs };
    let mut text = spb_lab::report::run_table(&doc.runs);
    let bill = spb_lab::report::bill_table(&doc.runs);
    if !bill.is_empty() {
        text.push('\n');
        text.push_str(&bill);
    }
    if a.map {
        text.push_str(&spb_lab::report::end_maps(&doc.runs));
    }
    if a.json.as_deref() != Some("-") {
        crate::output::print(text);
    } else {
        crate::output::eprint(text);
    }
    if let Some(j) = &a.json {
        write_json(j, &doc)?;
    }
    if let Some(dir) = &a.report {
        crate::output::write_report(
            "--report",
            dir,
            &doc,
            &format!("{} (seed {})", l.sc.name, l.sc.seed),
        )?;
    }
    Ok(())
}

pub fn scenarios() -> Result<(), CliError> {
    let w = builtin::BUILTINS
        .iter()
        .map(|b| b.name.len())
        .max()
        .unwrap_or(8);
    for b in builtin::BUILTINS {
        crate::output::print(format!("{:<w$}  {}\n", b.name, b.summary, w = w));
    }
    crate::output::print("\nRun one with `spb run NAME`; any TOML file in the same language works too (docs/scenarios.md).\n");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_and_override_errors_are_input_errors() {
        let a = RunArgs {
            policy: vec!["vanilla,bogus".into()],
            ..RunArgs::default()
        };
        assert!(matches!(policies(&a), Err(CliError::Usage(m)) if m.contains("bogus")));
        let a = RunArgs {
            spb_off: vec!["nope".into()],
            ..RunArgs::default()
        };
        assert!(matches!(policies(&a), Err(CliError::Usage(m)) if m.contains("steer_tainted")));
        let a = RunArgs {
            spb_off: vec!["steer_tainted".into()],
            ..RunArgs::default()
        };
        let p = policies(&a).unwrap();
        assert_eq!(p.len(), 4);
        assert_eq!(p[2].to_string(), "spb-off:steer_tainted");
        assert_eq!(
            p[3].to_string(),
            "spb-next-off:steer_tainted",
            "--spb-off changes every policy with switches"
        );
        assert_eq!(
            p[0].to_string(),
            "vanilla",
            "--spb-off changes spb policies only"
        );
        // the run spec: switch lists inside the comma-separated list, and --spb-off on top
        let a = RunArgs {
            policy: vec!["defrag".into(), "spb-off:hint_cache,lost_first".into()],
            spb_off: vec!["steer_tainted".into()],
            ..RunArgs::default()
        };
        let p = policies(&a).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(
            p[1].to_string(),
            "spb-off:steer_tainted,hint_cache,lost_first"
        );
        assert_eq!(PolicyConfig::of(PolicyKind::Spb).to_string(), "spb");
        let a = RunArgs {
            sc: ScenarioArgs {
                scenario: Some("/nonexistent/x.toml".into()),
                ..ScenarioArgs::default()
            },
            ..RunArgs::default()
        };
        assert!(matches!(load(&a), Err(CliError::Io(m)) if m.contains("/nonexistent/x.toml")));
        let a = RunArgs {
            sc: ScenarioArgs {
                scenario: Some("no-such-builtin".into()),
                ..ScenarioArgs::default()
            },
            ..RunArgs::default()
        };
        assert!(matches!(load(&a), Err(CliError::Usage(m)) if m.contains("built-ins")));
        let a = RunArgs {
            layout: Some("pc99".into()),
            ..RunArgs::default()
        };
        assert!(matches!(load(&a), Err(CliError::Usage(m)) if m.contains("--layout")));
        let a = RunArgs {
            sc: ScenarioArgs {
                scenario: None,
                memory: Some(8 << 30),
                duration: Some(30_000_000_000),
                seed: Some(9),
                slab_model: Some(SlabModel::Pages),
                pcp_free: Some(PcpFree::Simple),
                skip_hints: Some(false),
                set: vec!["boot.freed=0.5".into()],
            },
            layout: Some("q35".into()),
            ..RunArgs::default()
        };
        let l = load(&a).unwrap();
        let sc = &l.sc;
        assert_eq!(
            (
                sc.machine.memory,
                sc.duration_ns,
                sc.seed,
                sc.machine.layout
            ),
            (8 << 30, 30_000_000_000, 9, LayoutKind::Q35)
        );
        assert_eq!(sc.slab_model, SlabModel::Pages);
        assert_eq!(sc.pcp_free, PcpFree::Simple);
        assert!(!sc.compaction_skip_hints);
        assert!(on_off("on").unwrap() && !on_off("off").unwrap() && on_off("yes").is_err());
        assert_eq!(sc.boot.freed, 0.5);
        assert_eq!(sc.name, "seed-16g [boot.freed=0.5]");
        // a --set the scenario does not accept is a bad command line
        for bad in ["nosuch.x=1", "boot.freed=lots", "boot"] {
            let a = RunArgs {
                sc: ScenarioArgs {
                    set: vec![bad.into()],
                    ..ScenarioArgs::default()
                },
                ..RunArgs::default()
            };
            assert!(
                matches!(load(&a), Err(CliError::Usage(m)) if m.contains(bad.split('=').next().unwrap())),
                "{bad}"
            );
        }
        assert_eq!(l.layout, spb_lab::sim::layout_of(sc).unwrap());
        assert_eq!(
            policies(&RunArgs::default_main_job()).unwrap().len(),
            PolicyKind::ALL.len()
        );
        // the largest --memory builds a machine whose pfns fit the lab's 32-bit records, on
        // both layouts (the check Sim::new makes before allocating anything)
        for layout in ["i440fx", "q35"] {
            let a = RunArgs {
                sc: ScenarioArgs {
                    memory: Some(spb_lab::scenario::MAX_MEMORY),
                    ..ScenarioArgs::default()
                },
                layout: Some(layout.into()),
                ..RunArgs::default()
            };
            let l = load(&a).unwrap();
            let end = l.layout.zones.iter().map(|z| z.span.end).max().unwrap();
            assert!(end < u32::MAX as u64, "{layout}: {end:#x}");
        }
    }

    #[test]
    fn json_is_written_atomically() {
        let dir = std::env::temp_dir().join(format!("spb-json-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("out.json");
        write_json(f.to_str().unwrap(), &RunsDoc::default()).unwrap();
        let back: RunsDoc = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        assert_eq!(back, RunsDoc::default());
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "no temporary file left behind"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
