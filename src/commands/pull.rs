//! `clnrm pull`: make every image the scenarios name available ahead of a run.

use std::path::PathBuf;

use futures_util::future::join_all;

use crate::engine::image::{self, Obtained};
use crate::engine::{Engine, RunIdentity};
use crate::error::Error;
use crate::exit::Exit;
use crate::output::{self, BAD, DIM, Format, OK};
use crate::project::Project;

pub fn run(project: &Project, paths: &[PathBuf], vars: Vec<(String, String)>) -> Result<(), Error> {
    let planned = super::load_valid(project, paths, vars, Format::Human)?;
    let needs = crate::run::needs(planned.iter().map(|p| p.scenario.as_ref()), project.config.defaults.pull);
    let runtime = super::runtime()?;
    let results = runtime.block_on(async {
        let engine = Engine::connect(RunIdentity::current(&project.root)).await?;
        Ok::<_, Error>(join_all(needs.iter().map(|need| image::ensure(&engine, need))).await)
    })?;
    let mut failures = 0;
    for result in &results {
        match result {
            Ok(image) => {
                let word = match image.obtained {
                    Obtained::Present => "present",
                    Obtained::Pulled => "pulled",
                    Obtained::Built => "built",
                    Obtained::BuildCached => "built (unchanged)",
                };
                output::line(format!(
                    "{OK}{word:>17}{OK:#} {} {DIM}{}{DIM:#}",
                    image.reference,
                    &image.id[..image.id.len().min(19)]
                ));
            }
            Err(e) => {
                failures += 1;
                output::line(format!("{BAD}{:>17}{BAD:#} {e}", "unavailable"));
            }
        }
    }
    output::line(format!("pull: {}, {failures} unavailable", output::count(results.len(), "image")));
    if failures > 0 { Err(Error::Ended(Exit::Infrastructure)) } else { Ok(()) }
}
