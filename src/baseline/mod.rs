//! Baselines: each scenario's trace, normalized and stored under `baselines/`, so that later runs
//! can be compared with it and gated on thresholds.

pub mod changes;
pub mod diff;
pub mod files;
pub mod merge;
pub mod normalize;
pub mod redact;
pub mod store;
pub mod thresholds;
