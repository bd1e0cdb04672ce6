//! `spb capture` (being built).
use crate::CliError;

#[derive(clap::Args, Debug)]
pub struct CaptureArgs {}

pub fn run(_a: CaptureArgs) -> Result<(), CliError> {
    Err(CliError::Run("not implemented yet".into()))
}
