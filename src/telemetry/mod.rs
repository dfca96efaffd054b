//! OpenTelemetry: the spans of a run, where they come from and how they reach clnrm.

pub mod export;
pub mod index;
pub mod own;
pub mod peers;
pub mod receiver;
pub mod session;
pub mod span;
pub mod store;
pub mod wiring;
