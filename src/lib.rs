//! clnrm: hermetic integration tests in Docker, checked through the OpenTelemetry spans the system
//! under test emits.
//!
//! The pipeline runs one way: scenario file → render (Tera) → parse and validate → cache key →
//! run (collecting spans) → check expectations → compare with the baseline → the run's record →
//! reports rendered from it (docs/architecture.md). The binary is a thin layer over [`commands`].

pub mod baseline;
pub mod cache;
pub mod cli;
pub mod commands;
pub mod config;
pub mod diagnostic;
pub mod duration;
pub mod engine;
pub mod environment;
pub mod error;
pub mod exit;
pub mod expect;
pub mod fsutil;
pub mod output;
pub mod project;
pub mod record;
pub mod reference;
pub mod report;
pub mod run;
pub mod scenario;
pub mod schema;
pub mod sourcemap;
pub mod suggest;
pub mod telemetry;
