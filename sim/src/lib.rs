//! mmsim: a deterministic discrete-event emulator of Linux kernel memory management.
//!
//! Map of the crate: [`model`] is the kernel's data; [`kernel`] the kernel paths as step
//! machines; [`engine`] the step loop and scheduler strategies; [`check`] the checkers;
//! [`profile`] kernel versions as switch sets; [`scenario`] the input format; [`run`] ties a
//! scenario, an arch, a profile and a strategy into a trace; [`explore`] runs many seeds
//! ([`checkpoint`]: resuming one after a crash); [`cli`] is the command line.

pub mod book;
pub mod check;
pub mod checkpoint;
pub mod cli;
pub mod compare;
pub mod dfs;
pub mod engine;
pub mod env;
pub mod explore;
pub mod kernel;
pub mod minimize;
pub mod model;
pub mod predict;
pub mod profile;
pub mod run;
pub mod scenario;
