//! `clnrm gc`: remove everything clnrm created on the engine.

use std::path::Path;

use crate::engine::cleanup;
use crate::engine::{Engine, RunIdentity};
use crate::error::Error;
use crate::output;

pub fn run(cwd: &Path) -> Result<(), Error> {
    let removed = super::runtime()?.block_on(async {
        let engine = Engine::connect(RunIdentity::current(cwd)).await?;
        cleanup::gc(&engine).await
    })?;
    output::line(format!(
        "gc: removed {} and {} of {}",
        output::count(removed.containers, "container"),
        output::count(removed.networks, "network"),
        output::count(removed.runs, "run")
    ));
    Ok(())
}
