//! `spb ablate`: run `spb` with each switch off in turn (plus all on and `vanilla` for
//! reference) on the identical request stream, and print each switch's effect on tainted SPBs,
//! 1 GiB pages obtainable and pages migrated. With `--report DIR`, the runs go into the HTML
//! report as well.

use spb_alloc::{PolicyConfig, PolicyKind, SpbSwitch};
use spb_lab::metrics::RunsDoc;

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

pub fn run(a: AblateArgs) -> Result<(), CliError> {
    let ra = RunArgs {
        sc: a.sc.clone(),
        ..RunArgs::default()
    };
    cmd_run::check_outputs(a.json.as_deref(), a.report.as_deref())?;
    let l = cmd_run::load(&ra)?;
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
            switches.push(
                spb_alloc::policy::spec::parse_switch(n)
                    .map_err(|e| CliError::Usage(format!("--switches: {e}")))?,
            );
        }
    }
    let mut pols = vec![PolicyConfig::of(PolicyKind::Vanilla), PolicyConfig::spb()];
    for w in &switches {
        pols.push(PolicyConfig {
            kind: PolicyKind::Spb,
            spb: spb_alloc::SpbSwitches::all_on().without(*w),
        });
    }
    let runs = cmd_run::run_all(&l, &pols, 0)?;
    let t = spb_lab::report::ablation_table(&runs);
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
        let title = format!("spb ablation: {}", l.sc.name);
        crate::output::write_report("--report", dir, &doc, &title)?;
    }
    Ok(())
}
