//! Errors that end a command, each mapped to its [`Exit`] (contract, see README "Exit codes").
//! Problems inside files are diagnostics, printed before the command returns one of these.

use thiserror::Error;

use crate::exit::Exit;

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
    /// A run (or `pull`) ended other than passing: failures, a regression, an infrastructure
    /// failure or a signal. What happened has been printed.
    #[error("the run ended with exit code {}", .0.code())]
    Ended(Exit),
    /// Reading or writing the project's files failed (exit 5, an infrastructure failure).
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub fn exit(&self) -> Exit {
        match self {
            Error::WouldReformat { .. } | Error::Differs => Exit::Failed,
            Error::Usage(_) => Exit::Usage,
            Error::Invalid { .. } => Exit::Invalid,
            Error::Io { .. } | Error::Engine(_) => Exit::Infrastructure,
            Error::Ended(exit) => *exit,
            Error::NoScenarios { .. } => Exit::NoScenarios,
        }
    }

    /// Whether the problem has been shown to the user already (diagnostics, a run summary).
    pub fn reported(&self) -> bool {
        matches!(self, Error::Invalid { .. } | Error::Ended(_) | Error::Differs)
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io { context: context.into(), source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each error ends the process with the code the README documents for its meaning.
    #[test]
    fn each_error_maps_to_its_exit() {
        let io = || std::io::Error::other("disk full");
        let cases = [
            (Error::WouldReformat { files: 1 }, 1),
            (Error::Differs, 1),
            (Error::Usage("no".into()), 2),
            (Error::Invalid { files: 1, errors: 2 }, 3),
            (Error::Ended(Exit::Regressed), 4),
            (Error::io("cannot write report.json", io()), 5),
            (Error::Ended(Exit::Infrastructure), 5),
            (Error::NoScenarios { searched: "scenarios".into() }, 6),
            (Error::Ended(Exit::Signalled(crate::exit::Signal::Interrupt)), 130),
        ];
        for (error, code) in cases {
            assert_eq!(error.exit().code(), code, "{error:?}");
        }
        assert!(Error::Ended(Exit::Failed).reported() && !Error::Usage("x".into()).reported());
    }
}
