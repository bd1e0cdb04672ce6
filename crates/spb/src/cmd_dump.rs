//! `spb dump` and `spb map`: run a scenario under one policy and print the allocator's state in
//! the kernel's formats (/proc/buddyinfo, /proc/pagetypeinfo, /proc/vmstat) or as the
//! superpageblock map (one line per SPB, the kernel's migratetype letters per pageblock).

use std::io::IsTerminal;

use spb_lab::Sim;

use crate::cmd_run::{self, ScenarioArgs};
use crate::CliError;

/// What to dump.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum What {
    Buddyinfo,
    Pagetypeinfo,
    Vmstat,
}

/// Arguments of `spb dump`.
#[derive(clap::Args, Debug)]
pub struct DumpArgs {
    /// Which /proc file to print.
    pub what: What,
    #[command(flatten)]
    pub run: OneRun,
}

/// Arguments of `spb map`.
#[derive(clap::Args, Debug)]
pub struct MapArgs {
    #[command(flatten)]
    pub run: OneRun,
    /// Colour: auto (when stdout is a terminal), always or never.
    #[arg(long, default_value = "auto")]
    pub color: String,
}

/// One scenario under one policy.
#[derive(clap::Args, Debug, Clone)]
pub struct OneRun {
    #[command(flatten)]
    pub sc: ScenarioArgs,
    /// The policy: vanilla, defrag, spb or spb-off:SWITCH,... [default: spb].
    #[arg(long, default_value = "spb")]
    pub policy: String,
    /// spb behaviours to turn off.
    #[arg(long = "spb-off", value_delimiter = ',')]
    pub spb_off: Vec<String>,
}

fn simulate(o: &OneRun) -> Result<Sim, CliError> {
    let mut pols = cmd_run::parse_policies("--policy", Some(&o.policy), &o.spb_off)?;
    if pols.len() != 1 {
        return Err(CliError::Usage(format!(
            "--policy: expected one policy, got {} in \"{}\"",
            pols.len(),
            o.policy
        )));
    }
    let l = cmd_run::load_scenario(o.sc.scenario.as_deref(), &cmd_run::overrides(&o.sc, None)?)?;
    spb_lab::input::check_scenario_memory(&l.sc, 1).map_err(CliError::Input)?;
    let mut sim = Sim::new(&l.sc, &l.options(&pols.remove(0), 0)).map_err(CliError::Input)?;
    let pb = crate::progress::bar(
        (sim.end / 1_000_000_000).max(1),
        "{prefix} [{bar:40}] {pos}/{len} virtual s  {elapsed_precise}",
    );
    pb.set_prefix(o.policy.clone());
    sim.run(&mut |s: &mut Sim| pb.set_position(s.now / 1_000_000_000));
    pb.finish_and_clear();
    Ok(sim)
}

pub fn run(a: DumpArgs) -> Result<(), CliError> {
    let sim = simulate(&a.run)?;
    let text = match a.what {
        What::Buddyinfo => sim.a.buddyinfo(),
        What::Pagetypeinfo => sim.a.pagetypeinfo(),
        What::Vmstat => sim.a.vmstat_text(),
    };
    crate::output::print(text);
    Ok(())
}

pub fn map(a: MapArgs) -> Result<(), CliError> {
    let color = match a.color.as_str() {
        "auto" => std::io::stdout().is_terminal(),
        "always" => true,
        "never" => false,
        o => {
            return Err(CliError::Usage(format!(
                "--color: expected auto, always or never, got \"{o}\""
            )))
        }
    };
    let sim = simulate(&a.run)?;
    let m = spb_lab::measure::spb_map(&sim.a, sim.end as f64 / 1e9);
    crate::output::print(spb_lab::report::terminal_map(&m, color));
    Ok(())
}
