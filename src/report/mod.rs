//! Reporting a run: live on the terminal, and as JUnit XML or JSON files.

pub mod json;
pub mod junit;
pub mod terminal;

use crate::engine::image::Available;
use crate::run::outcome::ScenarioOutcome;

/// What the orchestrator tells the reporter as the run goes.
pub trait Reporter: Send {
    /// How many scenarios were selected.
    fn planned(&mut self, total: usize);
    /// An image had to be pulled or built.
    fn image(&mut self, image: &Available);
    fn started(&mut self, scenario: &str);
    fn finished(&mut self, outcome: &ScenarioOutcome);
    /// The run is over; cleaning up.
    fn cleaning(&mut self);
}
