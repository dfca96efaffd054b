//! clnrm's exit codes, the contract CI scripts rely on (README, "Exit codes"): one value per
//! meaning, and the one table that turns each into a number.

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Everything passed.
    Passed,
    /// A scenario failed or timed out; `fmt --check` would reformat; `diff` found differences.
    Failed,
    /// The command line asks for something impossible.
    Usage,
    /// Scenario, template or config files have errors; nothing ran.
    Invalid,
    /// Scenarios passed, but a baseline threshold broke (and nothing failed).
    Regressed,
    /// The engine, an image or the project's files failed clnrm, not a test.
    Infrastructure,
    /// No scenario file matched, or the selection left none.
    NoScenarios,
    /// A signal ended the run early.
    Signalled(Signal),
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Passed => 0,
            Exit::Failed => 1,
            Exit::Usage => 2,
            Exit::Invalid => 3,
            Exit::Regressed => 4,
            Exit::Infrastructure => 5,
            Exit::NoScenarios => 6,
            // 128 + the signal's number, as a shell reports a process the signal ended.
            Exit::Signalled(Signal::Hangup) => 129,
            Exit::Signalled(Signal::Interrupt) => 130,
            Exit::Signalled(Signal::Quit) => 131,
            Exit::Signalled(Signal::Terminate) => 143,
        }
    }
}

/// A signal that ended a run early. Each stops the run the same way (scheduling stops, whatever
/// the run created is removed); they differ only in the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Signal {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM.
    Terminate,
    /// SIGHUP: the terminal went away.
    Hangup,
    /// SIGQUIT (Ctrl-\\).
    Quit,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README's table, value by value: a change here is a breaking change for every CI script.
    #[test]
    fn every_exit_has_its_documented_code() {
        let table = [
            (Exit::Passed, 0),
            (Exit::Failed, 1),
            (Exit::Usage, 2),
            (Exit::Invalid, 3),
            (Exit::Regressed, 4),
            (Exit::Infrastructure, 5),
            (Exit::NoScenarios, 6),
            (Exit::Signalled(Signal::Hangup), 129),
            (Exit::Signalled(Signal::Interrupt), 130),
            (Exit::Signalled(Signal::Quit), 131),
            (Exit::Signalled(Signal::Terminate), 143),
        ];
        for (exit, code) in table {
            assert_eq!(exit.code(), code, "{exit:?}");
        }
    }
}
