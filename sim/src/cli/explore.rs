//! `mmsim explore`: many seeds of one strategy, grouped by violation signature.

use super::{fail, run::prepare, Target};
use crate::explore::{self, Config, Shard, StrategyKind, Summary};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

/// Output format of a summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(clap::Args, Debug)]
pub struct ExploreArgs {
    #[command(flatten)]
    pub target: Target,
    /// Scheduler strategy (dfs: the bounded exhaustive search, as --exhaustive).
    #[arg(long, value_enum, default_value_t = StrategyKind::Random)]
    pub strategy: StrategyKind,
    /// Bounded exhaustive search (strategy dfs): every schedule of the concurrent phase with at
    /// most --preemptions preemptions, bounds 0, 1, ..., K in turn, up to partial-order
    /// reduction and visited-state pruning. --runs becomes a budget of executions (the result
    /// then says NOT exhaustive); --jobs, --seed-start, --depth and --shard do not apply.
    #[arg(long)]
    pub exhaustive: bool,
    /// Preemption bound of the exhaustive search.
    #[arg(long, default_value_t = 2)]
    pub preemptions: u32,
    /// Bug depth d (random, pct): d - 1 priority change points per run.
    #[arg(long, default_value_t = crate::run::DEFAULT_DEPTH)]
    pub depth: u32,
    /// Size of the seed range [default: 1000]; with --exhaustive, a budget of executions
    /// [default: none].
    #[arg(long)]
    pub runs: Option<u64>,
    /// First seed of the range.
    #[arg(long, default_value_t = 0)]
    pub seed_start: u64,
    /// Worker threads (default: all cores); the summary is the same for any number.
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Run only part i of N of the seed range (seeds with seed % N == i - 1); `mmsim merge`
    /// the parts' JSON summaries.
    #[arg(long)]
    pub shard: Option<Shard>,
    /// Stop at the lowest violating seed.
    #[arg(long)]
    pub stop_on_first: bool,
    /// Trace every run and report race-pair coverage: the distinct happens-before classes of
    /// conflicting accesses seen (always on with --strategy predict; slower otherwise).
    #[arg(long)]
    pub coverage: bool,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Write the first trace of each violation signature, and summary.json, here.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub(crate) fn print(s: &Summary, format: Format) {
    match format {
        Format::Text => print!("{s}"),
        Format::Json => print!("{}", explore::to_json(s)),
    }
}

pub fn explore(a: &ExploreArgs) -> i32 {
    let prepared = match prepare(&a.target) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    if a.exhaustive || a.strategy == StrategyKind::Dfs {
        return exhaustive(a, &prepared);
    }
    let jobs = a
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let cfg = Config {
        strategy: a.strategy,
        depth: a.depth,
        seed_start: a.seed_start,
        runs: a.runs.unwrap_or(1000),
        jobs,
        shard: a.shard,
        stop_on_first: a.stop_on_first,
        coverage: a.coverage,
    };
    let total = cfg.seeds().count() as u64;
    let bar = if std::io::stderr().is_terminal() {
        let b = indicatif::ProgressBar::new(total);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} runs, {per_sec}, ETA {eta} {msg}",
            )
            .expect("a valid template"),
        );
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let found = std::sync::atomic::AtomicU64::new(0);
    let each = |r: &explore::SeedResult| {
        bar.inc(1);
        if matches!(r.outcome, explore::SeedOutcome::Violation(_) | explore::SeedOutcome::Panic(_))
        {
            let n = found.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            bar.set_message(format!("{n} violations or panics"));
        }
    };
    let started = Instant::now();
    let summary = match explore::explore_config(&prepared, &cfg, &each, a.out.as_deref()) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    print(&summary, a.format);
    // timing is not part of the summary: it differs between machines and job counts
    if std::io::stderr().is_terminal() {
        eprintln!(
            "{} runs in {secs:.2} s on {jobs} threads: {:.0} runs/s, {:.2e} steps/s",
            summary.runs,
            summary.runs as f64 / secs,
            summary.steps as f64 / secs
        );
    }
    if let Some(dir) = &a.out {
        if a.format == Format::Text {
            println!("summary written to {}", dir.join("summary.json").display());
        }
    }
    summary.exit_code()
}

/// `--exhaustive` / `--strategy dfs`: the bounded exhaustive search.
fn exhaustive(a: &ExploreArgs, p: &crate::run::Prepared) -> i32 {
    if a.shard.is_some() {
        return fail(
            "--shard does not apply to --exhaustive: the search is one tree, not a seed range",
        );
    }
    if !matches!(a.strategy, StrategyKind::Random | StrategyKind::Dfs) {
        return fail(format!(
            "--exhaustive is the dfs strategy; it cannot be combined with --strategy {}",
            a.strategy.cli_name()
        ));
    }
    let cfg = crate::dfs::DfsConfig {
        preemptions: a.preemptions,
        max_executions: a.runs,
        stop_on_first: a.stop_on_first,
        ..Default::default()
    };
    let started = Instant::now();
    let summary = match crate::dfs::explore(p, &cfg, a.out.as_deref()) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let secs = started.elapsed().as_secs_f64();
    match a.format {
        Format::Text => print!("{summary}"),
        Format::Json => {
            let mut j = serde_json::to_string_pretty(&summary).expect("a summary serialises");
            j.push('\n');
            print!("{j}");
        }
    }
    if std::io::stderr().is_terminal() {
        eprintln!("{} executions in {secs:.2} s", summary.executions);
    }
    if let Some(dir) = &a.out {
        if a.format == Format::Text {
            println!("summary written to {}", dir.join("summary.json").display());
        }
    }
    summary.exit_code()
}
