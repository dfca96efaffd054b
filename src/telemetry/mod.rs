//! OpenTelemetry: the spans of a run, where they come from and how they reach clnrm.

pub mod own;
pub mod receiver;
pub mod span;
pub mod store;
