//! The `spb` command: run the lab, replay and capture traces, compare policies, report.
//!
//! Exit codes (documented in README.md):
//! - 0: success
//! - 1: the run itself failed (an internal error or an invariant violation)
//! - 2: bad command line (clap's usage errors, and option values such as `--memory 1M`)
//! - 3: bad input: a malformed trace, scenario, zoneinfo or kpageflags file (the message names
//!   the file, the line and what was expected)
//! - 4: an I/O error reading or writing a file (a missing input, an output directory that does
//!   not exist, a full stdout); a closed stdout pipe (`spb ... | head -c1`) is not an error: the
//!   command finishes its file outputs and exits 0 without a message
//! - 5: the environment cannot do what was asked (e.g. `spb capture` without root or tracefs)

mod cli_error;
mod cmd_ablate;
mod cmd_bill;
mod cmd_capture;
mod cmd_diff;
mod cmd_dump;
mod cmd_replay;
mod cmd_run;
mod cmd_soak;
mod cmd_sweep;
mod output;
mod progress;
mod results;

use clap::{Parser, Subcommand};

pub use cli_error::CliError;

/// Superpageblock allocator lab: 1 GiB pages under the Linux buddy allocator.
#[derive(Parser, Debug)]
#[command(name = "spb", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run a scenario under one or more policies on the identical request stream.
    Run(cmd_run::RunArgs),
    /// List the built-in scenarios.
    Scenarios,
    /// Replay a real ftrace allocation trace under every policy.
    Replay(cmd_replay::ReplayArgs),
    /// Capture a trace of this machine's page allocator (Linux, root).
    Capture(cmd_capture::CaptureArgs),
    /// Print /proc-style dumps (buddyinfo, pagetypeinfo, vmstat) after a run.
    Dump(cmd_dump::DumpArgs),
    /// Print the superpageblock map after a run (the kernel's migratetype letters).
    Map(cmd_dump::MapArgs),
    /// Run spb with each switch off in turn and print each switch's effect.
    Ablate(cmd_ablate::AblateArgs),
    /// Print the bill (direct work per request, background work, failures, fallbacks) of saved
    /// results side by side: every run of every FILE (`spb run --json`, `spb replay --json`,
    /// `spb sweep` lines); `--against POLICY` adds issue 15's targets.
    Bill(cmd_bill::BillArgs),
    /// Compare two saved results without their timings (wall and CPU seconds, events per
    /// second): exit 0 when every run is the same, 1 with the differing fields when not.
    Diff(cmd_diff::DiffArgs),
    /// Run a grid of scenarios x policies x memory sizes x seeds on all cores.
    Sweep(cmd_sweep::SweepArgs),
    /// Soak the allocator: millions of random operations against a reference model.
    Soak(cmd_soak::SoakArgs),
}

fn main() {
    let cli = Cli::parse();
    let r = match cli.cmd {
        None => cmd_run::run(cmd_run::RunArgs::default_main_job()),
        Some(Cmd::Run(a)) => cmd_run::run(a),
        Some(Cmd::Scenarios) => cmd_run::scenarios(),
        Some(Cmd::Replay(a)) => cmd_replay::run(a),
        Some(Cmd::Capture(a)) => cmd_capture::run(a),
        Some(Cmd::Dump(a)) => cmd_dump::run(a),
        Some(Cmd::Map(a)) => cmd_dump::map(a),
        Some(Cmd::Ablate(a)) => cmd_ablate::run(a),
        Some(Cmd::Bill(a)) => cmd_bill::run(a),
        Some(Cmd::Diff(a)) => cmd_diff::run(a),
        Some(Cmd::Sweep(a)) => cmd_sweep::run(a),
        Some(Cmd::Soak(a)) => cmd_soak::run(a),
    };
    // Every message goes through output::eprint, which never panics (stderr may be closed or
    // full too); a failed write to stdout is reported here, after the command's other outputs.
    let code = match r {
        Err(e) => {
            output::eprint(format!("spb: {e}\n"));
            e.exit_code()
        }
        Ok(()) => match output::stdout_status() {
            Err(m) => {
                output::eprint(format!("spb: stdout: {m}\n"));
                4
            }
            Ok(_closed_pipe_is_quiet) => 0,
        },
    };
    std::process::exit(code);
}
