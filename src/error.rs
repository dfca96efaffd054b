//! Errors that end a command, each with its exit code (contract, see README "Exit codes").
//! Problems inside files are diagnostics, printed before the command returns one of these.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    /// The command line asks for something impossible (exit 2).
    #[error("{0}")]
    Usage(String),
    /// Scenario, template or config files have errors; nothing was run (exit 3). The diagnostics
    /// have been printed already.
    #[error("{files} invalid file(s), {errors} error(s)")]
    Invalid { files: usize, errors: usize },
    /// No scenario file matched (exit 6).
    #[error("no scenario files found in {searched}")]
    NoScenarios { searched: String },
    /// `fmt --check` found files that would change (exit 1).
    #[error("{files} file(s) would be reformatted")]
    WouldReformat { files: usize },
    /// `clnrm diff` found spans that differ (exit 1); the diff has been printed.
    #[error("the baselines differ")]
    Differs,
    /// The engine failed before scenarios could run: unreachable, an image unavailable (exit 5).
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
    /// A run finished with failures, an infrastructure failure or an interruption; its summary
    /// has been printed. The code is 1, 4, 5, 129, 130, 131 or 143 (`RunReport::exit_code`).
    #[error("the run ended with exit code {code}")]
    RunFailed { code: u8 },
    /// Reading or writing the project's files failed (exit 5, an infrastructure failure).
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::WouldReformat { .. } | Error::Differs => 1,
            Error::Usage(_) => 2,
            Error::Invalid { .. } => 3,
            Error::Io { .. } | Error::Engine(_) => 5,
            Error::RunFailed { code } => *code,
            Error::NoScenarios { .. } => 6,
        }
    }

    /// Whether the problem has been shown to the user already (diagnostics, a run summary).
    pub fn reported(&self) -> bool {
        matches!(self, Error::Invalid { .. } | Error::RunFailed { .. } | Error::Differs)
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io { context: context.into(), source }
    }
}
