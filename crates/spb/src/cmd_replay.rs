//! `spb replay` (being built).
use crate::CliError;

#[derive(clap::Args, Debug)]
pub struct ReplayArgs {}

pub fn run(_a: ReplayArgs) -> Result<(), CliError> {
    Err(CliError::Run("not implemented yet".into()))
}
