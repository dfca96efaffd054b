//! Span expectations: the selector language (parsed and validated by `dry-run`) and its evaluation
//! over the spans of a trace ([`matcher`]); checking expectations builds on it.

pub mod matcher;
pub mod selector;
