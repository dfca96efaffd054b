//! Everything that talks to the container engine: the client and run identity, images, the warm
//! pool, running commands, services, and cleanup.

pub mod cleanup;
pub mod container;
pub mod docker;
pub mod exec;
pub mod feed;
pub mod image;
pub mod pool;
pub mod service;

pub use docker::{Engine, EngineError, RunIdentity};
