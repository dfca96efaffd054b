//! Span expectations. For now the selector language (parsed and validated by `dry-run`); the
//! checks against collected spans arrive with span collection.

pub mod selector;
