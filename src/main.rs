//! The `clnrm` binary: parse the command line, run the command, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    std::sync::LazyLock::force(&clnrm::record::PROCESS_STARTED);
    let cli = clnrm::cli::Cli::parse();
    match clnrm::commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if !err.reported() {
                eprintln!("error: {err}");
            }
            ExitCode::from(err.exit().code())
        }
    }
}
