//! `spb ablate`: run `spb` with each switch off in turn (plus all on and `vanilla` for
//! reference) on the identical request stream, and print each switch's effect on tainted SPBs,
//! 1 GiB pages obtainable and pages migrated. With `--report DIR`, the runs go into the HTML
//! report as well.

use spb_alloc::{PolicyConfig, PolicyKind, SpbSwitch};
use spb_lab::metrics::{RunMetrics, RunsDoc};

use crate::cmd_run::{self, RunArgs, ScenarioArgs};
use crate::CliError;

/// Arguments of `spb ablate`.
#[derive(clap::Args, Debug)]
pub struct AblateArgs {
    #[command(flatten)]
    pub sc: ScenarioArgs,
    /// Only these switches (comma-separated) [default: all].
    #[arg(long, value_delimiter = ',')]
    pub switches: Vec<String>,
    /// Write the metrics as JSON to FILE (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    pub json: Option<String>,
    /// Write an HTML report into DIR.
    #[arg(long, value_name = "DIR")]
    pub report: Option<std::path::PathBuf>,
}

/// The ablation table: one row per configuration, with deltas against `spb` all on.
pub fn table(runs: &[RunMetrics]) -> String {
    let base = runs.iter().find(|r| r.policy == "spb");
    let mut s = String::new();
    s.push_str(&format!(
        "{:<34} {:>8} {:>6} {:>6} {:>10} {:>12} {:>9}\n",
        "configuration", "tainted", "lost", "1GiB", "limit", "migrated", "failures"
    ));
    for r in runs {
        let fails: u64 = r.alloc_failures.values().sum::<u64>() + r.oom_kills;
        let d = |x: i64, b: i64| {
            if base.is_some() && r.policy != "spb" {
                format!(" ({:+})", x - b)
            } else {
                String::new()
            }
        };
        let (bt, bg, bm) = base
            .map(|b| {
                (
                    b.normal.spb_tainted as i64,
                    b.gigantic.allocatable as i64,
                    b.pages_migrated as i64,
                )
            })
            .unwrap_or((0, 0, 0));
        s.push_str(&format!(
            "{:<34} {:>8} {:>6} {:>6} {:>10} {:>12} {:>9}\n",
            r.policy,
            format!(
                "{}{}",
                r.normal.spb_tainted,
                d(r.normal.spb_tainted as i64, bt)
            ),
            r.normal.spb_lost,
            format!(
                "{}{}",
                r.gigantic.allocatable,
                d(r.gigantic.allocatable as i64, bg)
            ),
            r.gigantic.limit,
            format!("{}{}", r.pages_migrated, d(r.pages_migrated as i64, bm)),
            fails
        ));
    }
    s
}

pub fn run(a: AblateArgs) -> Result<(), CliError> {
    let ra = RunArgs {
        sc: a.sc.clone(),
        ..RunArgs::default()
    };
    cmd_run::check_outputs(a.json.as_deref(), a.report.as_deref())?;
    let sc = cmd_run::load(&ra)?;
    let mut switches = Vec::new();
    if a.switches.is_empty() {
        switches.extend(
            SpbSwitch::ALL
                .iter()
                .copied()
                .filter(|w| *w != SpbSwitch::RefuseLiteral),
        );
    } else {
        for n in &a.switches {
            switches.push(SpbSwitch::from_name(n.trim()).ok_or_else(|| {
                CliError::Usage(format!("--switches: unknown spb switch \"{}\"", n.trim()))
            })?);
        }
    }
    let mut pols = vec![PolicyConfig::of(PolicyKind::Vanilla), PolicyConfig::spb()];
    for w in &switches {
        pols.push(PolicyConfig {
            kind: PolicyKind::Spb,
            spb: spb_alloc::SpbSwitches::all_on().without(*w),
        });
    }
    let show = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let runs = cmd_run::run_all(&sc, &pols, 0, show)?;
    let t = table(&runs);
    let doc = RunsDoc { runs };
    match a.json.as_deref() {
        Some("-") => {
            crate::output::eprint(t);
            crate::output::print(format!(
                "{}\n",
                serde_json::to_string_pretty(&doc).map_err(|e| CliError::Run(e.to_string()))?
            ));
        }
        Some(f) => {
            cmd_run::write_json(f, &doc)?;
            crate::output::print(t);
        }
        None => crate::output::print(t),
    }
    if let Some(dir) = &a.report {
        let title = format!("spb ablation: {}", sc.name);
        crate::output::write_report("--report", dir, &doc, &title)?;
    }
    Ok(())
}
