//! `mmsim compare SCENARIO --arch LIST|all --profile LIST|all [--runs N] [--format F]`.

use super::fail;
use crate::compare::{self, all_archs, all_profiles, parse_list, Spec};
use crate::scenario::Source;

/// Output format of the matrix.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Markdown,
    Json,
}

/// Arguments of `mmsim compare`.
#[derive(clap::Args, Debug, Clone)]
pub struct CompareArgs {
    /// Built-in scenario name (see `mmsim scenarios`) or a path to a .ron file.
    pub scenario: String,
    /// Architecture configurations, comma-separated, or `all` (see `mmsim arch list`).
    #[arg(long, default_value = "all")]
    pub arch: String,
    /// Kernel profiles, comma-separated, or `all` (see `mmsim profiles`).
    #[arg(long, default_value = "all")]
    pub profile: String,
    /// Seeds per cell (0..N); every seed runs, and a cell counts the runs showing each report kind.
    #[arg(long, default_value_t = 200)]
    pub runs: u64,
    /// Override a profile switch in every cell: --set name=value (repeatable).
    #[arg(long = "set")]
    pub set: Vec<String>,
    #[arg(long, value_enum, default_value = "markdown")]
    pub format: Format,
    /// Cells run on this many threads (the result does not depend on it).
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    #[command(flatten)]
    pub severity: super::explore::MinSeverity,
}

/// Exit 1 if a cell found a violation (a report at or above --min-severity, or a step limit), 2 for bad input (or a scenario that does not fit an
/// arch), else 0.
pub fn compare(a: &CompareArgs) -> i32 {
    let source = match Source::load(&a.scenario) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let archs = match parse_list(&a.arch, &all_archs(), "architecture configuration") {
        Ok(v) => v,
        Err(e) => return fail(format!("--arch: {e}")),
    };
    let profiles = match parse_list(&a.profile, &all_profiles(), "kernel profile") {
        Ok(v) => v,
        Err(e) => return fail(format!("--profile: {e}")),
    };
    let spec = Spec {
        source,
        archs,
        profiles,
        runs: a.runs.max(1),
        set: a.set.clone(),
        min_severity: a.severity.min,
    };
    let progress = |arch: &str, profile: &str, c: &compare::Cell| {
        tracing::info!("{arch} x {profile}: {}", c.text(a.severity.min));
    };
    let m = match compare::compare(&spec, a.jobs, &progress) {
        Ok(m) => m,
        Err(e) => return fail(e),
    };
    match a.format {
        Format::Markdown => print!("{}", m.markdown()),
        Format::Json => print!("{}", m.json()),
    }
    if m.violated() {
        1
    } else if m.errors() {
        2
    } else {
        0
    }
}
