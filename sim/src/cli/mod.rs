//! The `mmsim` command line. Exit status: 0 nothing found, 1 a violation found (a report at or
//! above `--min-severity`, default `bug`, or a step limit), 2 bad usage or input. Errors are printed as one clear line naming the file and what was expected.
//!
//! This file holds the clap definitions and the dispatch; each command's body lives in its own
//! module beside it, so commands can grow without touching each other.

pub(crate) mod arch;
mod bench;
mod book;
mod compare;
mod explore;
mod lists;
mod merge;
mod minimize;
mod predict;
mod render;
mod run;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "mmsim",
    version,
    about = "Deterministic emulator of Linux kernel memory management races"
)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

/// Options shared by commands that run a scenario.
#[derive(clap::Args, Debug, Clone)]
pub struct Target {
    /// Built-in scenario name (see `mmsim scenarios`) or a path to a .ron file.
    pub scenario: String,
    /// Architecture configuration (see `mmsim arch list`); default: the scenario's.
    #[arg(long)]
    pub arch: Option<String>,
    /// Kernel profile (see `mmsim profiles`); default: the scenario's.
    #[arg(long)]
    pub profile: Option<String>,
    /// Override a profile switch: --set name=value (repeatable).
    #[arg(long = "set")]
    pub set: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Run a scenario: one seed, or the first violating seed of a range (--seeds).
    Run {
        #[command(flatten)]
        target: Target,
        /// The seed of the random scheduler.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Try seeds seed..seed+N and stop at the first violation.
        #[arg(long)]
        seeds: Option<u64>,
        /// Write the trace (RON) here.
        #[arg(short, long)]
        output: Option<PathBuf>,
        #[command(flatten)]
        severity: explore::MinSeverity,
    },
    /// Re-execute a trace's decisions and check every event reproduces.
    Replay {
        trace: PathBuf,
        /// Print every event as it is replayed.
        #[arg(long)]
        events: bool,
        #[command(flatten)]
        severity: explore::MinSeverity,
    },
    /// Run many seeds of a strategy and group the violations by signature.
    Explore(explore::ExploreArgs),
    /// Merge the JSON summaries of `explore --shard` parts.
    Merge(merge::MergeArgs),
    /// Measure steps/s, executions/s and executions to the first violation per strategy.
    Bench(bench::BenchArgs),
    /// Shrink a failing trace: fewest operations, CPUs and preemptions with the same violation.
    Minimize {
        trace: PathBuf,
        /// Write the minimised trace here.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Seeds tried for each smaller scenario.
        #[arg(long, default_value_t = crate::minimize::SEED_BUDGET)]
        budget: u64,
    },
    /// Predict from a recorded trace: the memory-safety violations (use-after-free, wrong mm,
    /// stale TLB) a reordering or a few away, each confirmed by running it.
    Predict {
        trace: PathBuf,
        /// Write the confirmed violating trace here.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Draw a trace: SVG swimlane, Graphviz DOT, Mermaid sequence diagram or Perfetto JSON.
    Render(render::RenderArgs),
    /// Regenerate the book's diagrams from the built-in scenarios (--check: compare only).
    Book(book::BookArgs),
    /// List the built-in scenarios.
    Scenarios,
    /// List the kernel profiles and their switches.
    Profiles,
    /// Architecture configurations: `arch list`, `arch show NAME`.
    #[command(subcommand)]
    Arch(arch::ArchCmd),
    /// Run one scenario over arch configurations x kernel profiles; print the verdict matrix.
    Compare(compare::CompareArgs),
}

/// Print an error the way every command does, and return the usage/input exit status.
pub(crate) fn fail(msg: impl std::fmt::Display) -> i32 {
    eprintln!("mmsim: error: {msg}");
    2
}

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    init_tracing();
    match cli.cmd {
        Cmd::Run { target, seed, seeds, output, severity } => {
            run::run(&target, seed, seeds, output.as_deref(), severity.min)
        }
        Cmd::Replay { trace, events, severity } => run::replay(&trace, events, severity.min),
        Cmd::Minimize { trace, output, budget } => {
            minimize::minimize(&trace, output.as_deref(), budget)
        }
        Cmd::Predict { trace, output } => predict::predict(&trace, output.as_deref()),
        Cmd::Explore(a) => explore::explore(&a),
        Cmd::Merge(a) => merge::merge(&a),
        Cmd::Bench(a) => bench::bench(&a),
        Cmd::Render(a) => render::render(&a),
        Cmd::Book(a) => book::book(&a),
        Cmd::Scenarios => lists::scenarios(),
        Cmd::Profiles => lists::profiles(),
        Cmd::Arch(cmd) => arch::arch(&cmd),
        Cmd::Compare(args) => compare::compare(&args),
    }
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}
