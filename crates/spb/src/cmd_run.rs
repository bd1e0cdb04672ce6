//! `spb run` and `spb scenarios` (being built).
use crate::CliError;

#[derive(clap::Args, Debug, Default)]
pub struct RunArgs {}

impl RunArgs {
    /// The README's main job: `seed-16g` under all three policies.
    pub fn default_main_job() -> RunArgs {
        RunArgs::default()
    }
}

pub fn run(_a: RunArgs) -> Result<(), CliError> {
    Err(CliError::Run("not implemented yet".into()))
}

pub fn scenarios() -> Result<(), CliError> {
    Ok(())
}
