//! `mmsim explore`: many seeds of one strategy, grouped by violation signature. The wall
//! clock is read here only to stop early (`--time-limit`) and for the progress bar; neither
//! changes the result of a seed that ran.

use super::{fail, run::prepare, Target};
use crate::checkpoint::Checkpoint;
use crate::engine::strategy::Liveness;
use crate::explore::{self, Config, Shard, StopFlag, StrategyKind, Summary};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `--time-limit`: `90s`, `5m`, `1h`, `500ms` or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}`: expected a duration such as 90s, 5m, 1h or 500ms"))?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        u => return Err(format!("`{s}`: unknown unit `{u}` (use ms, s, m or h)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("`{s}`: {e}"))
}

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
    /// reduction (--por). --runs becomes a budget of executions and --time-limit a budget of
    /// time (the result then says NOT exhaustive); --jobs searches that many bounds at once
    /// (the same summary; with --runs one after another); --seed-start, --depth and --shard do
    /// not apply.
    #[arg(long)]
    pub exhaustive: bool,
    /// Partial-order reduction of the exhaustive search: stateful search with bound-aware sleep
    /// sets and visited-state pruning, or bounded DPOR with backtracking sets (no state caching;
    /// far more executions on the built-in scenarios).
    #[arg(long, value_enum, default_value_t = crate::dfs::Por::Sleep)]
    pub por: crate::dfs::Por,
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
    /// Take the shard from the environment, as a batch system's array task: VAR/N runs part
    /// `$VAR - base + 1` of N. The index is 0-based by default, as Kubernetes Indexed Jobs set
    /// JOB_COMPLETION_INDEX (0..N-1) and Slurm sets SLURM_ARRAY_TASK_ID for --array=0-<N-1>;
    /// see --shard-base. Unset, not a number or out of range is an error (exit 2).
    #[arg(long, value_name = "VAR/N", conflicts_with = "shard")]
    pub shard_from_env: Option<String>,
    /// The value of --shard-from-env's variable that means shard 1: 0 (Kubernetes, Slurm
    /// --array=0-<N-1>) or 1 (Slurm --array=1-N).
    #[arg(long, default_value_t = 0, requires = "shard_from_env", value_name = "0|1",
          value_parser = clap::value_parser!(u64).range(0..=1))]
    pub shard_base: u64,
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
    /// Write checkpoint.json into --out every this many seeds, and at the end, replaced
    /// atomically: an exploration killed on the way continues with --resume.
    #[arg(long, value_name = "SEEDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub checkpoint_every: Option<u64>,
    /// Continue the exploration whose --out directory is DIR from its checkpoint.json (give
    /// the same command otherwise; a different scenario, arch, profile, switch, strategy,
    /// depth, seed range, shard or --min-severity is refused, naming it). It ends with the
    /// summary an uninterrupted run writes, byte for byte. Seeded strategies only.
    #[arg(long, value_name = "DIR")]
    pub resume: Option<PathBuf>,
    /// Stop starting new seeds after this long (90s, 5m, 1h); the summary says it was cut.
    #[arg(long, value_parser = parse_duration)]
    pub time_limit: Option<Duration>,
    /// Liveness phase: after this many adversarial choices, schedule round-robin and report
    /// a CPU that stays blocked while the others complete more than --liveness-limit
    /// operations (with its blocking chain).
    #[arg(long, value_name = "STEPS")]
    pub liveness: Option<u64>,
    /// Operations the other CPUs may complete while one stays blocked (liveness phase).
    #[arg(long, default_value_t = 8, requires = "liveness")]
    pub liveness_limit: u64,
    /// Do not re-run failing and sampled seeds to check determinism.
    #[arg(long)]
    pub no_determinism_check: bool,
    /// No progress bar or timing on stderr.
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub severity: MinSeverity,
}

/// `--min-severity`, shared by run, explore and compare.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct MinSeverity {
    /// The lowest report severity that counts as a violation (exit status 1, stops --seeds and
    /// --stop-on-first): warning, bug or memory-safety. Reports below it are still printed, as
    /// warnings. The default leaves out warnings (a range revisit, a stale but safe walk).
    #[arg(long = "min-severity", value_name = "SEVERITY", default_value = "bug")]
    pub min: mmsim_traces::Severity,
}

pub(crate) fn print(s: &Summary, format: Format) {
    match format {
        Format::Text => print!("{s}"),
        Format::Json => print!("{}", explore::to_json(s)),
    }
}

pub fn explore(a: &ExploreArgs) -> i32 {
    // first, so an early Ctrl-C already stops cleanly
    let stop = Arc::new(StopFlag::default());
    {
        let stop = stop.clone();
        // a second handler cannot be installed (tests call this twice): keep the first
        // the second Ctrl-C does not wait for the running seeds
        let _ = ctrlc::set_handler(move || {
            if stop.is_raised() {
                std::process::exit(130);
            }
            stop.raise("interrupted (Ctrl-C)")
        });
    }
    let shard = match &a.shard_from_env {
        Some(spec) => {
            let lookup = |v: &str| std::env::var_os(v).map(|s| s.to_string_lossy().into_owned());
            match Shard::from_env(spec, a.shard_base, lookup) {
                Ok(s) => Some(s),
                Err(e) => return fail(e),
            }
        }
        None => a.shard,
    };
    let out = match (&a.resume, &a.out) {
        (Some(r), Some(o)) if r != o => {
            return fail("--resume DIR writes into DIR: --out, when given, must be the same")
        }
        (Some(r), _) => Some(r.clone()),
        (None, o) => o.clone(),
    };
    if a.checkpoint_every.is_some() && out.is_none() {
        return fail("--checkpoint-every needs --out DIR: the checkpoint is written there");
    }
    let prepared = match prepare(&a.target) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    if a.exhaustive || a.strategy == StrategyKind::Dfs {
        if a.checkpoint_every.is_some() || a.resume.is_some() {
            return fail("--checkpoint-every and --resume are for seeded explorations; the exhaustive search cannot be resumed yet");
        }
        return exhaustive(a, &prepared, stop);
    }
    let resume = match &a.resume {
        Some(dir) => match Checkpoint::read(dir) {
            Ok(c) => Some(Box::new(c)),
            Err(e) => return fail(e),
        },
        None => None,
    };
    let skip = resume.as_ref().map_or(0, |c| c.seeds_done);
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
        shard,
        stop_on_first: a.stop_on_first,
        check_determinism: !a.no_determinism_check,
        liveness: a.liveness.map(|after| Liveness { after, limit: a.liveness_limit }),
        stop: Some(stop.clone()),
        coverage: a.coverage,
        min_severity: a.severity.min,
        checkpoint_every: a.checkpoint_every,
        resume,
    };
    let total = (cfg.seeds().count() as u64).saturating_sub(skip);
    let show = !a.quiet && std::io::stderr().is_terminal();
    let bar = if show {
        let b = indicatif::ProgressBar::new(total);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} runs, {per_sec}, ETA {eta}, {msg}",
            )
            .expect("a valid template"),
        );
        b.set_message("0 violations");
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let found = std::sync::atomic::AtomicU64::new(0);
    let started = Instant::now();
    let each = |r: &explore::SeedResult| {
        bar.inc(1);
        if matches!(r.outcome, explore::SeedOutcome::Violation(_) | explore::SeedOutcome::Panic(_))
        {
            let n = found.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            bar.set_message(format!("{n} violations"));
        }
        if a.time_limit.is_some_and(|limit| started.elapsed() >= limit) {
            stop.raise(&format!("time limit {}", humane(a.time_limit.expect("checked"))));
        }
    };
    let summary = match explore::explore_config(&prepared, &cfg, &each, out.as_deref()) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    print(&summary, a.format);
    // timing is not part of the summary: it differs between machines and job counts
    if show {
        eprintln!(
            "{} runs in {secs:.2} s on {jobs} threads: {:.0} runs/s, {:.2e} steps/s",
            summary.runs,
            summary.runs as f64 / secs,
            summary.steps as f64 / secs
        );
    }
    if let Some(dir) = &out {
        if a.format == Format::Text {
            println!("summary written to {}", dir.join("summary.json").display());
        }
    }
    summary.exit_code()
}

/// `--exhaustive` / `--strategy dfs`: the bounded exhaustive search.
fn exhaustive(a: &ExploreArgs, p: &crate::run::Prepared, stop: Arc<StopFlag>) -> i32 {
    if a.shard.is_some() || a.shard_from_env.is_some() {
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
    let live = Arc::new(crate::dfs::Live { stop, ..Default::default() });
    let cfg = crate::dfs::DfsConfig {
        preemptions: a.preemptions,
        max_executions: a.runs,
        stop_on_first: a.stop_on_first,
        deadline: a.time_limit.map(|limit| Instant::now() + limit),
        por: a.por,
        live: Some(live.clone()),
        min_severity: a.severity.min,
        jobs: a
            .jobs
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .max(1),
        ..Default::default()
    };
    let started = Instant::now();
    let show = !a.quiet && std::io::stderr().is_terminal();
    let bar = if show {
        let b = indicatif::ProgressBar::new_spinner();
        b.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {elapsed} {msg}")
                .expect("a valid template"),
        );
        b.enable_steady_tick(Duration::from_millis(200));
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let searching = std::sync::atomic::AtomicBool::new(true);
    let result = std::thread::scope(|scope| {
        if show {
            // the search thread only bumps counters; this one turns them into the message
            scope.spawn(|| {
                use std::sync::atomic::Ordering::Relaxed;
                while searching.load(Relaxed) {
                    bar.set_message(format!(
                        "preemption bound {}/{}: {} executions, {} violations",
                        live.bound.load(Relaxed),
                        a.preemptions,
                        live.executions.load(Relaxed),
                        live.violations.load(Relaxed)
                    ));
                    std::thread::sleep(Duration::from_millis(100));
                }
            });
        }
        let r = crate::dfs::explore(p, &cfg, a.out.as_deref());
        searching.store(false, std::sync::atomic::Ordering::Relaxed);
        r
    });
    bar.finish_and_clear();
    let summary = match result {
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
    if show {
        eprintln!("{} executions in {secs:.2} s", summary.executions);
    }
    if let Some(dir) = &a.out {
        if a.format == Format::Text {
            println!("summary written to {}", dir.join("summary.json").display());
        }
    }
    summary.exit_code()
}

fn humane(d: Duration) -> String {
    format!("{:?}", d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units_and_bad_ones_say_why() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("5y").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("soon").unwrap_err().contains("expected a duration"));
    }
}
