//! `clnrm watch`: rerun exactly the scenarios a saved file affects, on a warm pool.
//!
//! Being built in steps (issue 6); so far the dependency graph that decides what a change reruns
//! and the filter of file events it never reacts to.

pub mod filter;
pub mod graph;
