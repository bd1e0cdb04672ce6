//! `spb run` and `spb scenarios`.
//!
//! `spb run [SCENARIO|FILE]` runs a scenario under one or more policies on the identical request
//! stream (same seed, same scenario: each policy gets its own simulator, in its own thread) and
//! prints the policies side by side. `spb run` with no argument runs `seed-16g` under all three
//! policies (the README's main job).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use spb_alloc::{PolicyConfig, PolicyKind, SpbSwitch};
use spb_lab::metrics::{RunMetrics, RunsDoc};
use spb_lab::scenario::units::{fmt_bytes, parse_dur, parse_size, Size};
use spb_lab::scenario::{builtin, LayoutKind, Overrides, Scenario, MAX_MEMORY, MIN_MEMORY};
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
    /// RAM of the machine, e.g. 64G (sizes given in % of RAM scale with it).
    #[arg(long)]
    pub memory: Option<String>,
    /// Virtual duration, e.g. 120s or 10m.
    #[arg(long)]
    pub duration: Option<String>,
}

/// Arguments of `spb run`.
#[derive(clap::Args, Debug, Default, Clone)]
pub struct RunArgs {
    #[command(flatten)]
    pub sc: ScenarioArgs,
    /// Policies to run, comma-separated [default: vanilla,defrag,spb].
    #[arg(long, value_delimiter = ',')]
    pub policy: Vec<String>,
    /// spb behaviours to turn off (comma-separated switch names), for ablations.
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
}

impl RunArgs {
    /// The README's main job: `seed-16g` under all three policies.
    pub fn default_main_job() -> RunArgs {
        RunArgs {
            sc: ScenarioArgs {
                scenario: Some("seed-16g".into()),
                ..ScenarioArgs::default()
            },
            policy: PolicyKind::ALL
                .iter()
                .map(|p| p.name().to_string())
                .collect(),
            ..RunArgs::default()
        }
    }
}

/// Parse the policy list and the spb switches turned off.
pub fn policies(a: &RunArgs) -> Result<Vec<PolicyConfig>, CliError> {
    let names: Vec<String> = if a.policy.is_empty() {
        PolicyKind::ALL
            .iter()
            .map(|p| p.name().to_string())
            .collect()
    } else {
        a.policy.clone()
    };
    let mut off = Vec::new();
    for s in &a.spb_off {
        let s = s.trim();
        if s.is_empty() {
            continue;
        }
        match SpbSwitch::from_name(s) {
            Some(w) => off.push(w),
            None => {
                let all: Vec<&str> = SpbSwitch::ALL.iter().map(|w| w.name()).collect();
                return Err(CliError::Usage(format!(
                    "--spb-off: unknown spb switch \"{s}\"; expected one of: {}",
                    all.join(", ")
                )));
            }
        }
    }
    let mut out = Vec::new();
    for n in names {
        let n = n.trim();
        let k = PolicyKind::from_name(n).ok_or_else(|| {
            CliError::Usage(format!(
                "--policy: unknown policy \"{n}\"; expected vanilla, defrag or spb"
            ))
        })?;
        let mut p = PolicyConfig::of(k);
        if k == PolicyKind::Spb {
            for w in &off {
                p.spb.set(*w, false);
            }
        }
        out.push(p);
    }
    Ok(out)
}

fn overrides(a: &ScenarioArgs, layout: Option<&str>) -> Result<Overrides, CliError> {
    let memory = match &a.memory {
        None => None,
        Some(m) => match parse_size(m, false) {
            Ok(Size::Bytes(b)) if (MIN_MEMORY..=MAX_MEMORY).contains(&b) => Some(b),
            Ok(_) => {
                return Err(CliError::Usage(format!(
                    "--memory: expected a RAM size from 64M to 16T, got \"{m}\""
                )))
            }
            Err(e) => return Err(CliError::Usage(format!("--memory: {e}"))),
        },
    };
    let duration_ns = match &a.duration {
        None => None,
        Some(d) => match parse_dur(d, false) {
            Ok(d) => {
                let ns = d.ns(0);
                if ns == 0 {
                    return Err(CliError::Usage(
                        "--duration: expected a positive duration".into(),
                    ));
                }
                Some(ns)
            }
            Err(e) => return Err(CliError::Usage(format!("--duration: {e}"))),
        },
    };
    let layout = match layout {
        None => None,
        Some("i440fx") | Some("pc") => Some(LayoutKind::I440fx),
        Some("q35") => Some(LayoutKind::Q35),
        Some(o) => {
            return Err(CliError::Usage(format!(
                "--layout: expected i440fx or q35, got \"{o}\""
            )))
        }
    };
    Ok(Overrides {
        memory,
        duration_ns,
        seed: a.seed,
        layout,
    })
}

/// Load the scenario with overrides applied, and check that its machine can be built.
///
/// A file that does not exist or cannot be read is an I/O error (exit 4), an unknown built-in
/// name (no `/`, no `.toml`) a bad command line (exit 2), bad content bad input (exit 3).
pub fn load(a: &RunArgs) -> Result<Scenario, CliError> {
    let name = a.sc.scenario.clone().unwrap_or_else(|| "seed-16g".into());
    let mut sc = spb_lab::load_scenario(&name).map_err(|e| {
        if !e.unreadable {
            CliError::Input(e.to_string())
        } else if name.contains(std::path::MAIN_SEPARATOR)
            || name.contains('/')
            || name.ends_with(".toml")
            || std::fs::symlink_metadata(&name).is_ok()
        {
            CliError::Io(e.to_string())
        } else {
            CliError::Usage(e.to_string())
        }
    })?;
    sc.apply(&overrides(&a.sc, a.layout.as_deref())?);
    if let Err(e) = spb_lab::sim::layout_of(&sc) {
        return Err(match &a.sc.memory {
            Some(m) => CliError::Usage(format!("--memory {m}: {e}")),
            None => CliError::Input(format!("{name}: {e}")),
        });
    }
    Ok(sc)
}

/// Run the policies in parallel threads; one progress bar each.
pub fn run_all(
    sc: &Scenario,
    pols: &[PolicyConfig],
    check_every: u64,
    show_progress: bool,
) -> Result<Vec<RunMetrics>, CliError> {
    // validate the machine once, before spawning anything
    spb_lab::sim::layout_of(sc).map_err(CliError::Input)?;
    spb_lab::input::check_scenario_memory(sc, pols.len()).map_err(CliError::Input)?;
    let mp = MultiProgress::with_draw_target(if show_progress {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    });
    let style = ProgressStyle::with_template(
        "{prefix:>12} [{bar:40}] {pos:>5}/{len} virtual s  {elapsed_precise}  {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    let total_s = sc.duration_ns / 1_000_000_000;
    let results: Vec<Result<RunMetrics, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = pols
            .iter()
            .map(|p| {
                let pb = mp.add(ProgressBar::new(total_s.max(1)));
                pb.set_style(style.clone());
                pb.set_prefix(spb_lab::sim::run::policy_label(p));
                let opts = SimOptions {
                    policy: p.clone(),
                    check_every,
                };
                let sc = sc.clone();
                s.spawn(move || {
                    let mut prog = |ns: u64| pb.set_position(ns / 1_000_000_000);
                    let r = run_scenario(&sc, &opts, &mut prog);
                    match &r {
                        Ok(m) => pb.finish_with_message(format!(
                            "done, {:.1} M events/s",
                            m.events as f64 / m.wall_seconds.max(1e-9) / 1e6
                        )),
                        Err(e) => pb.abandon_with_message(format!("failed: {e}")),
                    }
                    r
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("the simulator panicked".to_string()))
            })
            .collect()
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

// ---------------------------------------------------------------------------------------------
// REPORT HOOK: `--report DIR` calls `spb_lab::report::write_report(dir, &doc, title)`, which is
// being built on another branch. Until it is merged this returns an error. When it lands,
// replace the body with:
//     spb_lab::report::write_report(dir, doc, title).map_err(|e| CliError::Io(e.to_string()))
// ---------------------------------------------------------------------------------------------
fn write_report_hook(dir: &Path, doc: &RunsDoc, title: &str) -> Result<(), CliError> {
    crate::output::write_report("--report", dir, doc, title)
}

/// The side-by-side table.
pub fn table(sc: &Scenario, runs: &[RunMetrics]) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "scenario {}  seed {}  memory {}  {} virtual s\n",
        sc.name,
        sc.seed,
        fmt_bytes(sc.machine.memory),
        sc.duration_ns as f64 / 1e9
    ));
    type Cell<'a> = &'a dyn Fn(&RunMetrics) -> String;
    let mut rows: Vec<(&str, Vec<String>)> = Vec::new();
    let mut row = |name: &'static str, f: Cell| rows.push((name, runs.iter().map(f).collect()));
    row("Normal SPBs", &|r| r.normal.spb_total.to_string());
    row("  tainted (end / peak)", &|r| {
        format!("{} / {}", r.normal.spb_tainted, r.normal.spb_tainted_peak)
    });
    row("  tainted floor", &|r| r.normal.tainted_floor.to_string());
    row("  pinned", &|r| r.normal.spb_pinned.to_string());
    row("  lost (floor)", &|r| {
        format!("{} ({})", r.normal.spb_lost, r.normal.lost_floor)
    });
    row("  clean / empty", &|r| {
        format!("{} / {}", r.normal.spb_clean, r.normal.spb_empty)
    });
    row("all zones: SPBs tainted / lost", &|r| {
        format!("{} / {}", r.all_zones.spb_tainted, r.all_zones.spb_lost)
    });
    row("1 GiB probe / limit", &|r| {
        format!("{} / {}", r.gigantic.allocatable, r.gigantic.limit)
    });
    row("  Normal probe / limit", &|r| {
        format!(
            "{} / {}",
            r.extra
                .get("gigantic_normal_allocatable")
                .and_then(|v| v.as_u64())
                .unwrap_or(0),
            r.extra
                .get("gigantic_normal_limit")
                .and_then(|v| v.as_u64())
                .unwrap_or(0)
        )
    });
    row("  probe pages migrated", &|r| {
        r.gigantic.probe_pages_migrated.to_string()
    });
    row("1 GiB requests during run", &|r| {
        format!(
            "{} / {}",
            r.extra
                .get("hugetlb_obtained")
                .and_then(|v| v.as_u64())
                .unwrap_or(0),
            r.extra
                .get("hugetlb_requested")
                .and_then(|v| v.as_u64())
                .unwrap_or(0)
        )
    });
    row("THP success / attempts", &|r| {
        let pct = if r.thp.attempts > 0 {
            100.0 * r.thp.success as f64 / r.thp.attempts as f64
        } else {
            0.0
        };
        format!("{:.0}% of {}", pct, r.thp.attempts)
    });
    row("pages migrated", &|r| r.pages_migrated.to_string());
    row("compact stall / success", &|r| {
        format!(
            "{} / {}",
            r.vmstat.get("compact_stall").copied().unwrap_or(0),
            r.vmstat.get("compact_success").copied().unwrap_or(0)
        )
    });
    row("extfrag events (fragmenting)", &|r| {
        format!(
            "{} ({})",
            r.vmstat.get("extfrag_events").copied().unwrap_or(0),
            r.vmstat.get("extfrag_fragmenting").copied().unwrap_or(0)
        )
    });
    row("kswapd wakes / direct stalls", &|r| {
        let st: u64 = [
            "allocstall_dma",
            "allocstall_dma32",
            "allocstall_normal",
            "allocstall_movable",
        ]
        .iter()
        .map(|k| r.vmstat.get(*k).copied().unwrap_or(0))
        .sum();
        format!(
            "{} / {}",
            r.vmstat.get("kswapd_wake").copied().unwrap_or(0),
            st
        )
    });
    row("alloc failures", &|r| {
        r.alloc_failures.values().sum::<u64>().to_string()
    });
    row("  without __GFP_NOWARN", &|r| {
        r.extra
            .get("alloc_failures_warned")
            .and_then(|v| v.as_u64())
            .map(|v| v.to_string())
            .unwrap_or_default()
    });
    row("OOM kills", &|r| r.oom_kills.to_string());
    row("events", &|r| r.events.to_string());
    row("events/s (M)", &|r| {
        format!("{:.2}", r.events as f64 / r.wall_seconds.max(1e-9) / 1e6)
    });
    row("  workload only (no probe)", &|r| {
        r.extra
            .get("workload_events_per_second")
            .and_then(|v| v.as_f64())
            .map(|v| format!("{:.2}", v / 1e6))
            .unwrap_or_default()
    });
    row("wall s", &|r| format!("{:.1}", r.wall_seconds));
    row("SPBs visited per walk (mean)", &|r| {
        r.extra
            .get("spb_walk")
            .and_then(|w| w.get("mean_spbs_visited"))
            .and_then(|v| v.as_f64())
            .map(|v| format!("{:.2}", v))
            .unwrap_or_else(|| "-".into())
    });
    row("metadata bytes per page", &|r| {
        r.extra
            .get("metadata_bytes_per_page")
            .and_then(|v| v.as_f64())
            .map(|v| format!("{:.2}", v))
            .unwrap_or_default()
    });
    let w = rows
        .iter()
        .flat_map(|(_, c)| c.iter().map(|x| x.len()))
        .chain(runs.iter().map(|r| r.policy.len()))
        .max()
        .unwrap_or(8)
        .max(10);
    s.push_str(&format!("{:<32}", ""));
    for r in runs {
        s.push_str(&format!("  {:>w$}", r.policy, w = w));
    }
    s.push('\n');
    for (name, cells) in rows {
        s.push_str(&format!("{:<32}", name));
        for c in cells {
            s.push_str(&format!("  {:>w$}", c, w = w));
        }
        s.push('\n');
    }
    s
}

pub fn run(a: RunArgs) -> Result<(), CliError> {
    let pols = policies(&a)?;
    if let Some(f) = &a.sc.scenario {
        crate::output::claim_input("the scenario", Path::new(f));
    }
    check_outputs(a.json.as_deref(), a.report.as_deref())?;
    let sc = load(&a)?;
    let show = std::io::stderr().is_terminal();
    let runs = run_all(&sc, &pols, a.check_every.unwrap_or(0), show)?;
    let doc = RunsDoc { runs };
    let t = table(&sc, &doc.runs);
    let to_stdout = a.json.as_deref() != Some("-");
    let mut maps = String::new();
    if a.map {
        for r in &doc.runs {
            if let Some(m) = r.maps.last() {
                maps.push_str(&format!("\nSPB map at the end, {} (U unmovable, E reclaimable, M movable, H highatomic, R reserved, . free, ' ' hole):\n", r.policy));
                maps.push_str(&spb_lab::measure::map_text(m));
            }
        }
    }
    if to_stdout {
        crate::output::print(format!("{t}{maps}"));
    } else {
        crate::output::eprint(format!("{t}{maps}"));
    }
    if let Some(j) = &a.json {
        write_json(j, &doc)?;
    }
    if let Some(dir) = &a.report {
        write_report_hook(dir, &doc, &format!("{} (seed {})", sc.name, sc.seed))?;
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
            policy: vec!["vanilla".into(), "bogus".into()],
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
        assert_eq!(p.len(), 3);
        assert_eq!(
            spb_lab::sim::run::policy_label(&p[2]),
            "spb-off:steer_tainted"
        );
        assert_eq!(
            spb_lab::sim::run::policy_label(&PolicyConfig::of(PolicyKind::Spb)),
            "spb"
        );
        let a = RunArgs {
            sc: ScenarioArgs {
                memory: Some("lots".into()),
                ..ScenarioArgs::default()
            },
            ..RunArgs::default()
        };
        assert!(matches!(load(&a), Err(CliError::Usage(m)) if m.contains("--memory")));
        let a = RunArgs {
            sc: ScenarioArgs {
                memory: Some("1M".into()),
                ..ScenarioArgs::default()
            },
            ..RunArgs::default()
        };
        assert!(matches!(load(&a), Err(CliError::Usage(m)) if m.contains("--memory")));
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
            sc: ScenarioArgs {
                scenario: None,
                memory: Some("8G".into()),
                duration: Some("30s".into()),
                seed: Some(9),
            },
            layout: Some("q35".into()),
            ..RunArgs::default()
        };
        let sc = load(&a).unwrap();
        assert_eq!(
            (
                sc.machine.memory,
                sc.duration_ns,
                sc.seed,
                sc.machine.layout
            ),
            (8 << 30, 30_000_000_000, 9, LayoutKind::Q35)
        );
        assert_eq!(RunArgs::default_main_job().policy.len(), 3);
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
