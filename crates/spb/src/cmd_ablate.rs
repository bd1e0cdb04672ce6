//! `spb ablate`: run a policy with switches (`spb`, or `spb-next` with `--policy spb-next`)
//! with each of its switches off in turn (plus its default set and `vanilla` for reference) on
//! the identical request stream, and print each switch's effect on tainted SPBs, 1 GiB pages
//! obtainable and pages migrated. With `--report DIR`, the runs go into the HTML report as well.

use spb_alloc::{PolicyConfig, PolicyKind};
use spb_lab::metrics::RunsDoc;

use crate::cmd_run::{self, RunArgs, ScenarioArgs};
use crate::CliError;

/// Arguments of `spb ablate`.
#[derive(clap::Args, Debug)]
pub struct AblateArgs {
    #[command(flatten)]
    pub sc: ScenarioArgs,
    /// The policy whose switches are ablated, in the run-spec syntax (`spb`, `spb-next`, or
    /// either with `-off:`/`-on:`); every run starts from this set.
    #[arg(long, default_value = "spb")]
    pub policy: String,
    /// Only these switches (comma-separated) [default: every switch on in --policy].
    #[arg(long, value_delimiter = ',')]
    pub switches: Vec<String>,
    /// Write the metrics as JSON to FILE (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    pub json: Option<String>,
    /// Write an HTML report into DIR.
    #[arg(long, value_name = "DIR")]
    pub report: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub jobs: cmd_run::JobsArgs,
}

pub fn run(a: AblateArgs) -> Result<(), CliError> {
    let ra = RunArgs {
        sc: a.sc.clone(),
        ..RunArgs::default()
    };
    cmd_run::check_outputs(a.json.as_deref(), a.report.as_deref())?;
    let base: PolicyConfig =
        a.policy
            .parse()
            .map_err(|e: spb_alloc::policy::PolicySpecError| {
                CliError::Usage(format!("--policy: {e}"))
            })?;
    if !base.kind.has_switches() {
        return Err(CliError::Usage(format!(
            "--policy: \"{}\" has no switches to ablate; expected a policy with switches \
             (spb, spb-next)",
            a.policy
        )));
    }
    let l = cmd_run::load(&ra)?;
    let mut switches = Vec::new();
    if a.switches.is_empty() {
        switches.extend(
            spb_alloc::SpbSwitch::ALL
                .iter()
                .copied()
                .filter(|w| base.spb.on(*w)),
        );
    } else {
        for n in &a.switches {
            switches.push(
                spb_alloc::policy::spec::parse_switch(n)
                    .map_err(|e| CliError::Usage(format!("--switches: {e}")))?,
            );
        }
    }
    let mut pols = vec![PolicyConfig::of(PolicyKind::Vanilla), base.clone()];
    for w in &switches {
        pols.push(PolicyConfig {
            kind: base.kind,
            spb: base.spb.without(*w),
        });
    }
    let runs = cmd_run::run_all(&l, &pols, 0, a.jobs.jobs)?;
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
