//! Span expectations: the selector language (parsed and validated by `dry-run`) and checking
//! `[[expect.span]]` and `[expect.trace]` against the spans collected from a run.
//!
//! [`check`] is the entry point; [`matcher`] evaluates selectors over a trace indexed by
//! [`crate::telemetry::index`], which [`check`] also uses to render the trace as a tree in failure
//! messages.

pub mod check;
mod describe;
mod explain;
pub mod failure;
pub mod matcher;
pub mod model;
pub mod read;
pub mod selector;
mod trace;
mod tree;
