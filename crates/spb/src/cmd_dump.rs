//! `spb dump` (being built).
use crate::CliError;

#[derive(clap::Args, Debug)]
pub struct DumpArgs {}

pub fn run(_a: DumpArgs) -> Result<(), CliError> {
    Err(CliError::Run("not implemented yet".into()))
}
