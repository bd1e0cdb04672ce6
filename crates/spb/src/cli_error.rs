//! Errors of the command line, each with its documented exit code.

use std::fmt;

/// A failure of a subcommand.
#[derive(Debug)]
pub enum CliError {
    /// The run failed (exit 1).
    Run(String),
    /// Bad command line: an option's value is wrong (exit 2, like clap's own usage errors).
    Usage(String),
    /// Bad input: the message names the file, line and what was expected (exit 3).
    Input(String),
    /// I/O error (exit 4).
    Io(String),
    /// The environment cannot do it (exit 5).
    Environment(String),
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Run(_) => 1,
            CliError::Usage(_) => 2,
            CliError::Input(_) => 3,
            CliError::Io(_) => 4,
            CliError::Environment(_) => 5,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Run(m)
            | CliError::Usage(m)
            | CliError::Input(m)
            | CliError::Io(m)
            | CliError::Environment(m) => f.write_str(m),
        }
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::Io(e.to_string())
    }
}
