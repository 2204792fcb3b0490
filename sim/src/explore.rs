//! Exploration: run many seeds of one strategy over one prepared scenario, on any number of
//! threads, and group what they find by violation signature.
//!
//! Invariant: the [`Summary`] depends only on the scenario, the strategy and the seeds, never on
//! the number of threads, their timing or the shard split. Seeds run in chunks; the results of a
//! chunk are folded in seed order, and everything a summary holds is a sum, a minimum or a
//! sorted prefix, so [`merge`] of the shards' summaries equals the unsharded summary.
//!
//! A panic inside one execution (a model bug) is caught, reported with its seed, and the
//! exploration goes on. Determinism is checked as we go: every failing seed and every
//! [`DETERMINISM_SAMPLE`]-th seed is run twice more with a fingerprint of the final state, and
//! any difference is reported with the seed. An exploration cut short (time limit, Ctrl-C)
//! stops handing out seeds; the seeds it ran are a prefix of the range and their results are
//! what an uncut run of that prefix gives.

use crate::engine::strategy::{Fair, Liveness, Pct, RandomPriorities, RandomWalk, Strategy, Swarm};
use crate::predict::{self, hb::RacePair};
use crate::run::{self, Prepared, RunError};
use mmsim_traces::{Report, Severity, Verdict};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The strategies exploration can run, by their CLI names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum StrategyKind {
    /// Random priorities with per-CPU change points (the default).
    Random,
    /// Uniform random walk: a uniformly random runnable actor at every step.
    Urw,
    /// PCT (Burckhardt et al. 2010) with bug depth `--depth`.
    Pct,
    /// Swarm testing: each seed draws operations, CPUs, a switch and per-actor delays.
    Swarm,
    /// Bounded exhaustive search (`--exhaustive`; see `mmsim::dfs`): not a per-seed strategy.
    Dfs,
    /// Predictive detection: one random run per seed, happens-before analysis, and the
    /// reorderings it predicts run to confirm them (`crate::predict`).
    Predict,
}

impl StrategyKind {
    pub fn cli_name(self) -> &'static str {
        match self {
            StrategyKind::Random => "random",
            StrategyKind::Urw => "urw",
            StrategyKind::Pct => "pct",
            StrategyKind::Swarm => "swarm",
            StrategyKind::Dfs => "dfs",
            StrategyKind::Predict => "predict",
        }
    }

    /// Every per-seed strategy, in the order tables list them (`dfs` is not per seed: the
    /// exhaustive search reports its own figures).
    pub const ALL: [StrategyKind; 5] = [
        StrategyKind::Random,
        StrategyKind::Urw,
        StrategyKind::Pct,
        StrategyKind::Swarm,
        StrategyKind::Predict,
    ];

    /// The strategy's name in a summary: per-seed parameters (swarm's configuration) left out.
    pub fn summary_name(self, p: &Prepared, seed: u64, depth: u32) -> String {
        match self {
            StrategyKind::Swarm => "swarm".into(),
            StrategyKind::Predict => predict::strategy_name(depth),
            _ => self.build(p, seed, depth).name(),
        }
    }

    /// The strategy for one seed.
    pub fn build(self, p: &Prepared, seed: u64, depth: u32) -> Box<dyn Strategy> {
        match self {
            StrategyKind::Random => Box::new(RandomPriorities::new(seed, &p.lengths, depth)),
            StrategyKind::Urw => Box::new(RandomWalk::new(seed)),
            StrategyKind::Pct => Box::new(Pct::new(seed, p.steps_estimate, depth)),
            StrategyKind::Swarm => Box::new(Swarm::for_env(seed, &p.env, &p.lengths)),
            // the search drives the engine itself (`dfs::search`); per seed it has no choice
            StrategyKind::Dfs => Box::new(crate::engine::strategy::FirstRunnable),
            // the first execution of a seed; `crate::predict` runs the reorderings
            StrategyKind::Predict => Box::new(RandomPriorities::new(seed, &p.lengths, depth)),
        }
    }

    /// The strategy for one seed, followed by the liveness phase when `live` is set.
    pub fn build_with(
        self,
        p: &Prepared,
        seed: u64,
        depth: u32,
        live: Option<Liveness>,
    ) -> Box<dyn Strategy> {
        let s = self.build(p, seed, depth);
        match live {
            Some(l) => Box::new(Fair::new(s, l)),
            None => s,
        }
    }
}

/// One part of a seed range split `count` ways: the seeds with `seed % count == index - 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// 1-based.
    pub index: u64,
    pub count: u64,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Shard, String> {
        let bad = || format!("--shard `{s}`: expected i/N with 1 <= i <= N, e.g. 1/4");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u64 = i.trim().parse().map_err(|_| bad())?;
        let count: u64 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    pub fn contains(self, seed: u64) -> bool {
        seed % self.count == self.index - 1
    }

    /// The shard a batch system's array task runs (`--shard-from-env VAR/N`): `spec` is
    /// `VAR/N`, the index is the value of the environment variable `VAR` (read through
    /// `lookup`), counted from `base` (0: Kubernetes' `JOB_COMPLETION_INDEX`, Slurm's
    /// `SLURM_ARRAY_TASK_ID` with `--array=0-<N-1>`; 1: `--array=1-N`). Index `base` is
    /// shard 1/N.
    pub fn from_env(
        spec: &str,
        base: u64,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Shard, ShardEnvError> {
        let bad = || ShardEnvError::Spec(spec.to_string());
        let (var, n) = spec.split_once('/').ok_or_else(bad)?;
        let var_ok = var.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        let count: u64 = n.trim().parse().map_err(|_| bad())?;
        if !var_ok || count == 0 || base > 1 {
            return Err(bad());
        }
        let value = lookup(var).ok_or_else(|| ShardEnvError::Unset(var.to_string()))?;
        let index: u64 = value.trim().parse().map_err(|_| ShardEnvError::NotANumber {
            var: var.to_string(),
            value: value.clone(),
        })?;
        let (lo, hi) = (base, base + count - 1);
        if !(lo..=hi).contains(&index) {
            let hint = match (base, index) {
                (0, i) if i == count => "; for a 1-based array (Slurm --array=1-N) add --shard-base 1",
                (1, 0) => "; for a 0-based index (Kubernetes, Slurm --array=0-<N-1>) leave out --shard-base 1",
                _ => "",
            };
            return Err(ShardEnvError::OutOfRange {
                var: var.to_string(),
                index,
                lo,
                hi,
                base,
                count,
                hint,
            });
        }
        Ok(Shard { index: index - base + 1, count })
    }
}

/// Why `--shard-from-env` could not pick a shard.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShardEnvError {
    #[error("--shard-from-env `{0}`: expected VAR/N with N >= 1, e.g. JOB_COMPLETION_INDEX/4")]
    Spec(String),
    #[error("--shard-from-env: the environment variable {0} is not set (a Kubernetes Indexed Job sets JOB_COMPLETION_INDEX, a Slurm array job SLURM_ARRAY_TASK_ID)")]
    Unset(String),
    #[error("--shard-from-env: {var}=`{value}` is not a number")]
    NotANumber { var: String, value: String },
    #[error("--shard-from-env: {var}={index} is outside {lo}..={hi}, the {base}-based indices of {count} shards{hint}")]
    OutOfRange {
        var: String,
        index: u64,
        lo: u64,
        hi: u64,
        base: u64,
        count: u64,
        hint: &'static str,
    },
}

/// What to explore.
#[derive(Clone, Debug)]
pub struct Config {
    pub strategy: StrategyKind,
    /// Bug depth: d - 1 change points (random, pct).
    pub depth: u32,
    pub seed_start: u64,
    /// Size of the seed range (before sharding).
    pub runs: u64,
    /// Worker threads; the summary does not depend on it.
    pub jobs: usize,
    pub shard: Option<Shard>,
    /// Stop after the lowest violating seed (all lower seeds are still run and counted).
    pub stop_on_first: bool,
    /// Re-run failing and sampled seeds and compare fingerprints.
    pub check_determinism: bool,
    /// The liveness phase after the adversarial bound (`--liveness`).
    pub liveness: Option<Liveness>,
    /// Set from outside (time limit, Ctrl-C) to stop handing out seeds; with the reason.
    pub stop: Option<Arc<StopFlag>>,
    /// Trace every run and collect race-pair coverage (always on for `predict`).
    pub coverage: bool,
    /// The lowest severity that makes a run a violation (`--min-severity`); a run whose
    /// reports are all below it counts as a warning run.
    pub min_severity: Severity,
    /// With an output directory: write `checkpoint.json` there every this many seeds (and at
    /// the end), so that an exploration killed on the way can be resumed.
    pub checkpoint_every: Option<u64>,
    /// Continue from this checkpoint (checked against this configuration first): its seeds
    /// are not run again, the rest fold into its summary.
    pub resume: Option<Box<crate::checkpoint::Checkpoint>>,
}

/// Stops an exploration from another thread: no new seed starts once it is raised.
#[derive(Debug, Default)]
pub struct StopFlag {
    raised: AtomicBool,
    reason: Mutex<Option<String>>,
}

impl StopFlag {
    /// Raise the flag; the first reason given is kept.
    pub fn raise(&self, reason: &str) {
        let mut r = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        if r.is_none() {
            *r = Some(reason.to_string());
        }
        self.raised.store(true, Ordering::SeqCst);
    }
    pub fn is_raised(&self) -> bool {
        self.raised.load(Ordering::Relaxed)
    }
    pub fn reason(&self) -> Option<String> {
        self.reason.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            strategy: StrategyKind::Random,
            depth: run::DEFAULT_DEPTH,
            seed_start: 0,
            runs: 1000,
            jobs: 1,
            shard: None,
            stop_on_first: false,
            check_determinism: true,
            liveness: None,
            stop: None,
            coverage: false,
            min_severity: Severity::Bug,
            checkpoint_every: None,
            resume: None,
        }
    }
}

impl Config {
    /// The seeds this configuration runs, ascending.
    pub fn seeds(&self) -> impl Iterator<Item = u64> + '_ {
        let end = self.seed_start.saturating_add(self.runs);
        (self.seed_start..end).filter(move |&s| self.shard.is_none_or(|sh| sh.contains(s)))
    }

    /// The strategy for one seed, as configured.
    pub fn build(&self, p: &Prepared, seed: u64) -> Box<dyn Strategy> {
        self.strategy.build_with(p, seed, self.depth, self.liveness)
    }

    fn stopped(&self) -> bool {
        self.stop.as_ref().is_some_and(|s| s.is_raised())
    }
}

/// Every this many seeds (by seed value, so independent of jobs and shards) a passing seed is
/// re-run for the determinism check too.
pub const DETERMINISM_SAMPLE: u64 = 64;

/// What one seed did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SeedOutcome {
    Clean,
    StepLimit,
    /// A checker fired at or above the minimum severity: the signature of those reports.
    Violation(Vec<String>),
    /// Checkers fired, all below the minimum severity: the signature of their reports.
    Warning(Vec<String>),
    /// The execution panicked (or failed to run): the message.
    Panic(String),
    /// Clean, but `predict` predicted this many reorderings that no run confirmed.
    Unconfirmed(u32),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedResult {
    pub seed: u64,
    pub steps: u64,
    pub outcome: SeedOutcome,
    /// Race-pair coverage of the run (empty unless measured).
    pub pairs: BTreeSet<RacePair>,
}

/// What identifies a failure across schedules: each report's kind with the kernel function of
/// the violating access (`kind@func`), sorted and deduplicated (as `minimize::signature`).
pub fn signature(reports: &[Report]) -> Vec<String> {
    let mut s: Vec<String> = reports.iter().map(|r| format!("{}@{}", r.kind, r.at.func)).collect();
    s.sort();
    s.dedup();
    s
}

/// The outcome of a run that reported: a violation signed by the reports at or above `min`,
/// or, if every report is below it, a warning signed by all of them.
pub fn outcome_of_reports(reports: &[Report], min: Severity) -> SeedOutcome {
    let counted: Vec<Report> =
        reports.iter().filter(|r| r.kind.severity() >= min).cloned().collect();
    if counted.is_empty() {
        SeedOutcome::Warning(signature(reports))
    } else {
        SeedOutcome::Violation(signature(&counted))
    }
}

/// Builds the strategy for a seed; tests substitute their own.
pub type MakeStrategy<'a> = dyn Fn(u64) -> Box<dyn Strategy> + Sync + 'a;

/// The message of a caught panic, for reports (shared with the exhaustive search).
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".into()
    }
}

/// Run one seed without tracing, catching a panic; reports below `min` make a warning run.
pub fn run_one(p: &Prepared, make: &MakeStrategy, seed: u64, min: Severity) -> SeedResult {
    run_inner(p, make, seed, false, min).0
}

/// Run one seed, with the fingerprint of its run (`Engine::run_fingerprinted`) if asked.
fn run_inner(
    p: &Prepared,
    make: &MakeStrategy,
    seed: u64,
    fingerprint: bool,
    min: Severity,
) -> (SeedResult, Option<u64>) {
    let r = catch_unwind(AssertUnwindSafe(|| {
        let mut s = make(seed);
        let configured = s.configure(&p.env);
        let env = configured.as_ref().unwrap_or(&p.env);
        let engine = p.engine(env, false);
        if fingerprint {
            engine.run_fingerprinted(&mut *s).map(|(o, h)| (o, Some(h)))
        } else {
            engine.run(&mut *s).map(|o| (o, None))
        }
    }));
    let mut hash = None;
    let (steps, outcome) = match r {
        Ok(Ok((out, h))) => {
            hash = h;
            (
                out.steps,
                match out.verdict {
                    Verdict::Clean => SeedOutcome::Clean,
                    Verdict::StepLimit => SeedOutcome::StepLimit,
                    Verdict::Violation => outcome_of_reports(&out.check.reports, min),
                },
            )
        }
        Ok(Err(e)) => (0, SeedOutcome::Panic(RunError::from(e).to_string())),
        Err(payload) => (0, SeedOutcome::Panic(panic_message(&*payload))),
    };
    (SeedResult { seed, steps, outcome, pairs: BTreeSet::new() }, hash)
}

/// A seed whose re-runs disagreed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeterminismFailure {
    pub seed: u64,
    /// What differed.
    pub what: String,
}

/// The determinism check of one seed: run it twice more with fingerprints and compare both
/// with each other and with the first run's result. `None`: identical.
pub fn check_determinism(
    p: &Prepared,
    make: &MakeStrategy,
    first: &SeedResult,
    min: Severity,
) -> Option<DeterminismFailure> {
    let (a, ha) = run_inner(p, make, first.seed, true, min);
    let (b, hb) = run_inner(p, make, first.seed, true, min);
    let same = |x: &SeedResult, y: &SeedResult| (x.steps, &x.outcome) == (y.steps, &y.outcome);
    let what = if !same(&a, first) {
        format!(
            "first run {:?} after {} steps, re-run {:?} after {} steps",
            first.outcome, first.steps, a.outcome, a.steps
        )
    } else if !same(&b, &a) {
        format!(
            "re-runs differ: {:?} after {} steps vs {:?} after {} steps",
            a.outcome, a.steps, b.outcome, b.steps
        )
    } else if ha != hb {
        format!(
            "re-runs end in different states: fingerprint {:016x} vs {:016x}",
            ha.unwrap_or(0),
            hb.unwrap_or(0)
        )
    } else {
        return None;
    };
    Some(DeterminismFailure { seed: first.seed, what })
}

/// Whether `r` gets the determinism check: it failed, or its seed is sampled. Not for
/// `predict`, whose result is a confirmed reordering rather than one run of the seed (its
/// confirmation is itself a replay).
fn checked(cfg: &Config, r: &SeedResult) -> bool {
    cfg.check_determinism
        && cfg.strategy != StrategyKind::Predict
        && (r.seed.is_multiple_of(DETERMINISM_SAMPLE) || !matches!(r.outcome, SeedOutcome::Clean))
}

fn outcome_of(t: &mmsim_traces::Trace, min: Severity) -> SeedOutcome {
    match t.verdict {
        Verdict::Clean => SeedOutcome::Clean,
        Verdict::StepLimit => SeedOutcome::StepLimit,
        Verdict::Violation => outcome_of_reports(&t.reports, min),
    }
}

/// Run one seed as `cfg` says: `predict` analyses and reorders, `coverage` traces the run to
/// measure race pairs; otherwise [`run_one`].
pub fn run_one_cfg(p: &Prepared, cfg: &Config, make: &MakeStrategy, seed: u64) -> SeedResult {
    if cfg.strategy != StrategyKind::Predict && !cfg.coverage {
        return run_one(p, make, seed, cfg.min_severity);
    }
    let r = catch_unwind(AssertUnwindSafe(|| -> Result<SeedResult, RunError> {
        if cfg.strategy == StrategyKind::Predict {
            let pred = predict::predict_seed(p, seed, cfg.depth)?;
            let steps = pred.first.events.len() as u64;
            let outcome = match &pred.confirmed {
                Some((_, t)) => outcome_of(t, cfg.min_severity),
                // a first execution with warnings keeps them when nothing is confirmed
                None if pred.predicted == 0 || !pred.first.reports.is_empty() => {
                    outcome_of(&pred.first, cfg.min_severity)
                }
                None => SeedOutcome::Unconfirmed(pred.predicted),
            };
            return Ok(SeedResult { seed, steps, outcome, pairs: pred.pairs });
        }
        let mut s = make(seed);
        let t = p.run_with(seed, &mut *s, true)?;
        let pairs = predict::hb::race_pairs(&t.events);
        Ok(SeedResult {
            seed,
            steps: t.events.len() as u64,
            outcome: outcome_of(&t, cfg.min_severity),
            pairs,
        })
    }));
    match r {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => SeedResult {
            seed,
            steps: 0,
            outcome: SeedOutcome::Panic(e.to_string()),
            pairs: BTreeSet::new(),
        },
        Err(payload) => SeedResult {
            seed,
            steps: 0,
            outcome: SeedOutcome::Panic(panic_message(&*payload)),
            pairs: BTreeSet::new(),
        },
    }
}

/// Seeds per chunk: results are folded in seed order one chunk at a time.
const CHUNK_SEEDS: usize = 1024;

/// Run the configured seeds on `cfg.jobs` threads, calling `each` (from any thread, in any
/// order) after every seed, and return the results in seed order. With `stop_on_first`, the
/// results end at the lowest violating seed.
pub fn run_seeds(
    p: &Prepared,
    cfg: &Config,
    make: &MakeStrategy,
    each: &(dyn Fn(&SeedResult) + Sync),
) -> Vec<SeedResult> {
    run_seeds_checked(p, cfg, make, each).into_iter().map(|(r, _)| r).collect()
}

/// A seed's result with its determinism check: `None` when not checked, else whether it failed.
pub type Checked = (SeedResult, Option<Option<DeterminismFailure>>);

/// [`run_seeds`], with each seed's determinism check.
pub fn run_seeds_checked(
    p: &Prepared,
    cfg: &Config,
    make: &MakeStrategy,
    each: &(dyn Fn(&SeedResult) + Sync),
) -> Vec<Checked> {
    let mut all = Vec::new();
    let _ = run_seed_chunks(p, cfg, make, each, 0, None, &mut |chunk| -> Result<(), ()> {
        all.extend(chunk);
        Ok(())
    });
    all
}

/// Run the configured seeds after the first `skip` of the range, on `cfg.jobs` threads, and
/// hand their results to `fold` one chunk at a time, in seed order (every chunk follows the
/// one before it without a gap). A chunk has at most [`CHUNK_SEEDS`] seeds and, with `every`,
/// ends at each multiple of `every` seeds after `skip`. With `stop_on_first`, the last chunk
/// ends at the lowest violating seed; a raised stop flag ends the run after a prefix. An
/// error from `fold` ends the run with it.
pub fn run_seed_chunks<E>(
    p: &Prepared,
    cfg: &Config,
    make: &MakeStrategy,
    each: &(dyn Fn(&SeedResult) + Sync),
    skip: usize,
    every: Option<u64>,
    fold: &mut dyn FnMut(Vec<Checked>) -> Result<(), E>,
) -> Result<(), E> {
    let seeds: Vec<u64> = cfg.seeds().skip(skip).collect();
    let jobs = cfg.jobs.max(1);
    let mut at = 0;
    while at < seeds.len() {
        let mut len = CHUNK_SEEDS.min(seeds.len() - at);
        if let Some(n) = every {
            let n = usize::try_from(n.max(1)).unwrap_or(usize::MAX);
            len = len.min(n - at % n);
        }
        let chunk = &seeds[at..at + len];
        at += len;
        let next = AtomicUsize::new(0);
        // lowest index in this chunk that violated, when stopping on the first
        let stop = AtomicUsize::new(usize::MAX);
        let results: Mutex<Vec<Checked>> = Mutex::new(Vec::with_capacity(chunk.len()));
        let work = || {
            let mut mine = Vec::new();
            loop {
                // checked before taking an index: every index handed out is run, so the
                // seeds run before a stop are a prefix of the range
                if cfg.stopped() {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                // indices are handed out in order, so every index below `stop` is run
                if i >= chunk.len() || i > stop.load(Ordering::Relaxed) {
                    break;
                }
                let r = run_one_cfg(p, cfg, make, chunk[i]);
                if cfg.stop_on_first && matches!(r.outcome, SeedOutcome::Violation(_)) {
                    stop.fetch_min(i, Ordering::Relaxed);
                }
                let det =
                    checked(cfg, &r).then(|| check_determinism(p, make, &r, cfg.min_severity));
                each(&r);
                mine.push((r, det));
            }
            results.lock().expect("no worker panics outside catch_unwind").extend(mine);
        };
        if jobs == 1 {
            work();
        } else {
            std::thread::scope(|s| {
                for _ in 0..jobs {
                    s.spawn(work);
                }
            });
        }
        let mut results = results.into_inner().expect("workers joined");
        results.sort_by_key(|r| r.0.seed);
        let stop_seed = chunk.get(stop.into_inner()).copied();
        if let Some(last) = stop_seed {
            results.retain(|r| r.0.seed <= last);
            return fold(results);
        }
        fold(results)?;
        if cfg.stopped() {
            break;
        }
    }
    Ok(())
}

/// Executions to the first violation, from each starting point just after a violation (the
/// first from the range's start): the gaps between violating seeds in seed order. Seeds are
/// independent, so these are samples of executions-to-first-violation.
pub fn executions_to_violation(results: &[SeedResult]) -> Vec<u64> {
    let mut gaps = Vec::new();
    let mut since = 0;
    for r in results {
        since += 1;
        if matches!(r.outcome, SeedOutcome::Violation(_)) {
            gaps.push(since);
            since = 0;
        }
    }
    gaps
}

/// The `q`-quantile (0..=1, nearest rank) of `v`, sorting it.
pub fn quantile(v: &mut [u64], q: f64) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    Some(v[rank - 1])
}

/// PCT's probability bound for the explored scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PctBound {
    /// n: actors (CPUs, plus the interrupt and RCU actors the calibration run scheduled).
    pub actors: u32,
    /// k: steps of the concurrent phase in the calibration run.
    pub steps: u64,
    pub depth: u32,
    /// 1/(n k^(d-1)): a lower bound on finding a given depth-d bug in one run.
    pub per_run: f64,
}

/// One violation signature and the seeds that showed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub signature: Vec<String>,
    pub runs: u64,
    pub first_seed: u64,
    /// The lowest seeds showing it (at most [`EXAMPLE_SEEDS`]).
    pub seeds: Vec<u64>,
    /// The first seed's trace, as a file name inside the `--out` directory.
    pub trace: Option<String>,
    /// The first seed's strategy configuration when it differs from seed to seed (swarm).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
}

/// A panicked execution.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PanicReport {
    pub seed: u64,
    pub message: String,
}

pub(crate) fn severity_warning() -> Severity {
    Severity::Warning
}

/// How many seeds of each signature a summary lists.
pub const EXAMPLE_SEEDS: usize = 8;
/// How many panics a summary lists (all are counted).
pub const PANICS_LISTED: usize = 32;

/// The result of an exploration, or of merging the shards of one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub scenario: String,
    pub arch: String,
    pub profile: String,
    pub switches: Vec<(String, String)>,
    pub strategy: StrategyKind,
    pub depth: u32,
    /// As written into trace headers (`pct(depth=3, k=57)`).
    pub strategy_name: String,
    pub seed_start: u64,
    /// Size of the whole seed range.
    pub seed_count: u64,
    /// Into how many shards the range was split, and which of them this summary covers
    /// (`1` and `[1]`: the whole range).
    pub shard_count: u64,
    pub shards: Vec<u64>,
    pub stop_on_first: bool,
    pub pct: Option<PctBound>,
    /// Executions run, and how they ended.
    pub runs: u64,
    pub clean: u64,
    pub violations: u64,
    pub step_limits: u64,
    pub panics: u64,
    /// Steps over all executions (for `predict`: the first execution of each seed).
    pub steps: u64,
    /// `predict`: seeds whose first execution was clean and whose predicted reorderings no
    /// run confirmed (counted as clean, not as violations).
    #[serde(default)]
    pub predicted_unconfirmed: u64,
    /// Whether race-pair coverage was measured (`predict`, or `--coverage`).
    #[serde(default)]
    pub coverage: bool,
    /// Race-pair coverage: the distinct happens-before classes of conflicting pairs seen.
    #[serde(default)]
    pub race_pairs: BTreeSet<RacePair>,
    /// The lowest severity counted as a violation (`--min-severity`; summaries written before
    /// it existed counted every report).
    #[serde(default = "severity_warning")]
    pub min_severity: Severity,
    /// Runs whose reports were all below `min_severity` (not violations, not clean).
    #[serde(default)]
    pub warnings: u64,
    /// Violation signatures, sorted by first seed.
    pub groups: Vec<Group>,
    /// Signatures of the warning runs, sorted by first seed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warning_groups: Vec<Group>,
    /// The lowest-seeded panics (at most [`PANICS_LISTED`]).
    pub panicked: Vec<PanicReport>,
    /// Seeds re-run for the determinism check (0: the check was off).
    #[serde(default)]
    pub determinism_checked: u64,
    /// Seeds whose re-runs disagreed (the lowest [`PANICS_LISTED`]); any is a model bug.
    #[serde(default)]
    pub determinism_failures: Vec<DeterminismFailure>,
    #[serde(default)]
    pub determinism_failed: u64,
    /// Why the exploration stopped before the end of its range (time limit, Ctrl-C); `runs`
    /// says how many seeds ran, a prefix of the range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cut: Option<String>,
}

impl Summary {
    /// An empty summary for `cfg` over `p`.
    pub fn new(p: &Prepared, cfg: &Config) -> Summary {
        let mut name = cfg.strategy.summary_name(p, cfg.seed_start, cfg.depth);
        if let Some(l) = cfg.liveness {
            name.push_str(&l.suffix());
        }
        let pct = (cfg.strategy == StrategyKind::Pct).then(|| {
            let depth = cfg.depth.clamp(1, crate::engine::strategy::MAX_CHANGE_POINTS as u32 + 1);
            PctBound {
                actors: p.actors,
                steps: p.steps_estimate,
                depth,
                per_run: crate::engine::strategy::pct_guarantee(p.actors, p.steps_estimate, depth),
            }
        });
        let shard = cfg.shard.unwrap_or(Shard { index: 1, count: 1 });
        Summary {
            scenario: p.env.scenario.name.clone(),
            arch: p.env.cfg.name.to_string(),
            profile: p.env.profile.to_string(),
            switches: p.env.sw.list(),
            strategy: cfg.strategy,
            depth: cfg.depth,
            strategy_name: name,
            seed_start: cfg.seed_start,
            seed_count: cfg.runs,
            shard_count: shard.count,
            shards: vec![shard.index],
            stop_on_first: cfg.stop_on_first,
            pct,
            runs: 0,
            clean: 0,
            violations: 0,
            step_limits: 0,
            panics: 0,
            steps: 0,
            predicted_unconfirmed: 0,
            coverage: cfg.coverage || cfg.strategy == StrategyKind::Predict,
            race_pairs: BTreeSet::new(),
            min_severity: cfg.min_severity,
            warnings: 0,
            groups: Vec::new(),
            warning_groups: Vec::new(),
            panicked: Vec::new(),
            determinism_checked: 0,
            determinism_failures: Vec::new(),
            determinism_failed: 0,
            cut: None,
        }
    }

    /// Fold one seed's determinism check in (`None`: not checked), in ascending seed order.
    pub fn add_check(&mut self, det: Option<&Option<DeterminismFailure>>) {
        if let Some(d) = det {
            self.determinism_checked += 1;
            if let Some(f) = d {
                self.determinism_failed += 1;
                if self.determinism_failures.len() < PANICS_LISTED {
                    self.determinism_failures.push(f.clone());
                }
            }
        }
    }

    /// Fold one result in; results must come in ascending seed order.
    pub fn add(&mut self, r: &SeedResult) {
        self.runs += 1;
        self.steps += r.steps;
        self.race_pairs.extend(r.pairs.iter().cloned());
        match &r.outcome {
            SeedOutcome::Clean => self.clean += 1,
            SeedOutcome::Unconfirmed(_) => {
                self.clean += 1;
                self.predicted_unconfirmed += 1;
            }
            SeedOutcome::StepLimit => self.step_limits += 1,
            SeedOutcome::Violation(sig) => {
                self.violations += 1;
                add_to_group(&mut self.groups, sig, r.seed);
            }
            SeedOutcome::Warning(sig) => {
                self.warnings += 1;
                add_to_group(&mut self.warning_groups, sig, r.seed);
            }
            SeedOutcome::Panic(message) => {
                self.panics += 1;
                if self.panicked.len() < PANICS_LISTED {
                    self.panicked.push(PanicReport { seed: r.seed, message: message.clone() });
                }
            }
        }
    }

    /// Whether the exploration found anything: a violation or a panic.
    pub fn found(&self) -> bool {
        self.violations > 0 || self.panics > 0 || self.determinism_failed > 0
    }

    /// Exit status of `explore` and `merge`: 1 if anything was found.
    pub fn exit_code(&self) -> i32 {
        i32::from(self.found())
    }
}

/// Count one run of signature `sig` (results in ascending seed order).
fn add_to_group(groups: &mut Vec<Group>, sig: &[String], seed: u64) {
    match groups.iter_mut().find(|g| g.signature == sig) {
        Some(g) => {
            g.runs += 1;
            if g.seeds.len() < EXAMPLE_SEEDS {
                g.seeds.push(seed);
            }
        }
        None => groups.push(Group {
            signature: sig.to_vec(),
            runs: 1,
            first_seed: seed,
            seeds: vec![seed],
            trace: None,
            config: None,
        }),
    }
}

/// Fold shard `from`'s groups into `into`, by signature.
fn merge_groups(into: &mut Vec<Group>, from: &[Group]) {
    for g in from {
        match into.iter_mut().find(|h| h.signature == g.signature) {
            Some(h) => {
                h.runs += g.runs;
                if g.first_seed < h.first_seed {
                    h.first_seed = g.first_seed;
                    h.trace = g.trace.clone();
                    h.config = g.config.clone();
                }
                h.seeds.extend(&g.seeds);
                h.seeds.sort_unstable();
                h.seeds.truncate(EXAMPLE_SEEDS);
            }
            None => into.push(g.clone()),
        }
    }
    into.sort_by_key(|g| g.first_seed);
}

/// The file name of a signature's first trace.
pub fn trace_file_name(s: &Summary, seed: u64) -> String {
    format!("{}-{}-{}-{}-seed{seed}.ron", s.scenario, s.arch, s.profile, s.strategy.cli_name())
}

/// Explore: run the seeds, summarise, and (with `out`) write each signature's first trace
/// (re-run with tracing) and `summary.json` into `out`, atomically.
pub fn explore(
    p: &Prepared,
    cfg: &Config,
    make: &MakeStrategy,
    each: &(dyn Fn(&SeedResult) + Sync),
    out: Option<&Path>,
) -> Result<Summary, String> {
    let (mut sum, skip) = match &cfg.resume {
        Some(c) => {
            c.check(p, cfg, out.unwrap_or(Path::new("."))).map_err(|e| e.to_string())?;
            (c.summary.clone(), c.seeds_done)
        }
        None => (Summary::new(p, cfg), 0),
    };
    // checkpoints go into the output directory, when asked for (or resuming)
    let every = cfg.checkpoint_every.or(cfg.resume.as_ref().map(|c| c.checkpoint_every));
    let ckpt_dir = out.filter(|_| every.is_some());
    if let Some(dir) = ckpt_dir {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let write_ckpt = |sum: &Summary, done: u64| -> Result<(), String> {
        match (ckpt_dir, every) {
            (Some(dir), Some(n)) => crate::checkpoint::Checkpoint::new(p, cfg, sum, done, n)
                .write(dir)
                .map_err(|e| e.to_string()),
            _ => Ok(()),
        }
    };
    let mut done = skip;
    // a --stop-on-first checkpoint with a violation is where the run stopped
    if !(cfg.stop_on_first && sum.violations > 0) {
        let skip = usize::try_from(skip).unwrap_or(usize::MAX);
        run_seed_chunks::<String>(p, cfg, make, each, skip, every, &mut |chunk| {
            for (r, det) in &chunk {
                sum.add(r);
                sum.add_check(det.as_ref());
            }
            done += chunk.len() as u64;
            if every.is_some_and(|n| (done - skip as u64).is_multiple_of(n.max(1))) {
                write_ckpt(&sum, done)?;
            }
            Ok(())
        })?;
    }
    // the last one, at the end of the range or where the run was cut
    write_ckpt(&sum, done)?;
    if let Some(stop) = &cfg.stop {
        if stop.is_raised() && done < cfg.seeds().count() as u64 {
            sum.cut = Some(stop.reason().unwrap_or_else(|| "stopped".into()));
        }
    }
    for g in sum.groups.iter_mut().chain(sum.warning_groups.iter_mut()) {
        let n = make(g.first_seed).name();
        if n != sum.strategy_name {
            g.config = Some(n);
        }
    }
    if let Some(dir) = out {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let firsts: Vec<u64> =
            sum.groups.iter().chain(&sum.warning_groups).map(|g| g.first_seed).collect();
        for (i, seed) in firsts.into_iter().enumerate() {
            let traced = catch_unwind(AssertUnwindSafe(|| {
                if cfg.strategy == StrategyKind::Predict {
                    let pred = predict::predict_seed(p, seed, cfg.depth)?;
                    return Ok(pred.confirmed.map_or(pred.first, |c| c.1));
                }
                let mut s = make(seed);
                p.run_with(seed, &mut *s, true)
            }));
            let Ok(Ok(t)) = traced else {
                return Err(format!("seed {seed} no longer runs when traced: a model bug"));
            };
            let name = trace_file_name(&sum, seed);
            mmsim_traces::write_atomic(&dir.join(&name), &t).map_err(|e| e.to_string())?;
            let n = sum.groups.len();
            let g = if i < n { &mut sum.groups[i] } else { &mut sum.warning_groups[i - n] };
            g.trace = Some(name);
        }
        write_json(&dir.join("summary.json"), &sum)?;
    }
    Ok(sum)
}

/// Explore with the configured strategy.
pub fn explore_config(
    p: &Prepared,
    cfg: &Config,
    each: &(dyn Fn(&SeedResult) + Sync),
    out: Option<&Path>,
) -> Result<Summary, String> {
    let make = |seed| cfg.build(p, seed);
    explore(p, cfg, &make, each, out)
}

pub fn to_json(s: &Summary) -> String {
    let mut j = serde_json::to_string_pretty(s).expect("a summary serialises");
    j.push('\n');
    j
}

pub fn write_json(path: &Path, s: &Summary) -> Result<(), String> {
    mmsim_traces::write_atomic_bytes(path, to_json(s).as_bytes()).map_err(|e| e.to_string())
}

pub fn read_json(path: &Path) -> Result<Summary, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text)
        .map_err(|e| format!("{}: not an `mmsim explore` JSON summary: {e}", path.display()))
}

/// Merge the summaries of disjoint shards of one exploration. When the shards cover the whole
/// range the result equals the unsharded exploration's summary.
pub fn merge(parts: &[Summary]) -> Result<Summary, String> {
    let (first, rest) = parts.split_first().ok_or("nothing to merge")?;
    let mut m = first.clone();
    if first.stop_on_first {
        return Err("summaries of --stop-on-first explorations cannot be merged: each shard stopped at its own first violation".into());
    }
    for (i, p) in rest.iter().enumerate() {
        let same = |what: &str, a: String, b: String| {
            if a == b {
                Ok(())
            } else {
                Err(format!("part {} differs from part 1 in {what}: {b} vs {a}", i + 2))
            }
        };
        same("scenario", m.scenario.clone(), p.scenario.clone())?;
        same("arch", m.arch.clone(), p.arch.clone())?;
        same("profile", m.profile.clone(), p.profile.clone())?;
        same("switches", format!("{:?}", m.switches), format!("{:?}", p.switches))?;
        same("strategy", m.strategy_name.clone(), p.strategy_name.clone())?;
        same("depth", m.depth.to_string(), p.depth.to_string())?;
        same(
            "seed range",
            format!("{}+{}", m.seed_start, m.seed_count),
            format!("{}+{}", p.seed_start, p.seed_count),
        )?;
        same("shard count", m.shard_count.to_string(), p.shard_count.to_string())?;
        same("--stop-on-first", m.stop_on_first.to_string(), p.stop_on_first.to_string())?;
        same("coverage", m.coverage.to_string(), p.coverage.to_string())?;
        same("--min-severity", m.min_severity.to_string(), p.min_severity.to_string())?;
        if let Some(dup) = p.shards.iter().find(|s| m.shards.contains(s)) {
            return Err(format!("shard {dup}/{} is given twice", m.shard_count));
        }
        m.shards.extend(&p.shards);
        m.runs += p.runs;
        m.clean += p.clean;
        m.violations += p.violations;
        m.step_limits += p.step_limits;
        m.panics += p.panics;
        m.steps += p.steps;
        m.predicted_unconfirmed += p.predicted_unconfirmed;
        m.race_pairs.extend(p.race_pairs.iter().cloned());
        m.warnings += p.warnings;
        merge_groups(&mut m.groups, &p.groups);
        merge_groups(&mut m.warning_groups, &p.warning_groups);
        m.determinism_checked += p.determinism_checked;
        m.determinism_failed += p.determinism_failed;
        m.determinism_failures.extend(p.determinism_failures.iter().cloned());
        m.determinism_failures.sort_by_key(|f| f.seed);
        m.determinism_failures.truncate(PANICS_LISTED);
        if let Some(c) = &p.cut {
            m.cut = Some(match m.cut.take() {
                Some(mine) if &mine != c => format!("{mine}; {c}"),
                _ => c.clone(),
            });
        }
        m.panicked.extend(p.panicked.iter().cloned());
        m.panicked.sort_by_key(|p| p.seed);
        m.panicked.truncate(PANICS_LISTED);
    }
    m.shards.sort_unstable();
    if m.shards.len() as u64 == m.shard_count {
        m.shard_count = 1;
        m.shards = vec![1];
    }
    Ok(m)
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let end = self.seed_start.saturating_add(self.seed_count);
        write!(
            f,
            "explored {} on {} with profile {}, strategy {}, seeds {}..{}",
            self.scenario, self.arch, self.profile, self.strategy_name, self.seed_start, end
        )?;
        if self.shard_count > 1 {
            let list: Vec<String> = self.shards.iter().map(|s| s.to_string()).collect();
            write!(f, " (shard {}/{})", list.join(","), self.shard_count)?;
        }
        if self.stop_on_first {
            write!(f, ", stopping at the first violation")?;
        }
        writeln!(f)?;
        if let Some(b) = &self.pct {
            let miss = (1.0 - b.per_run).powf(self.runs as f64);
            writeln!(
                f,
                "PCT guarantee: n = {} actors, k = {} steps (calibration run), d = {}: each run finds a given depth-{} bug with probability >= 1/(n k^(d-1)) = {:.3e}; {} runs all miss it with probability <= {:.3}",
                b.actors, b.steps, b.depth, b.depth, b.per_run, self.runs, miss
            )?;
        }
        if let Some(why) = &self.cut {
            writeln!(
                f,
                "cut short ({why}): {} of {} seeds ran, the lowest of the range",
                self.runs, self.seed_count
            )?;
        }
        let warned = if self.warnings > 0 || self.min_severity > Severity::Warning {
            format!(", {} with warnings only", self.warnings)
        } else {
            String::new()
        };
        writeln!(
            f,
            "{} runs: {} clean, {} violations (severity {} and above){warned}, {} step limits, {} panics; {} steps",
            self.runs,
            self.clean,
            self.violations,
            self.min_severity,
            self.step_limits,
            self.panics,
            self.steps
        )?;
        if self.determinism_checked > 0 {
            writeln!(
                f,
                "determinism: {} seeds re-run, {} differed",
                self.determinism_checked, self.determinism_failed
            )?;
        }
        for d in &self.determinism_failures {
            writeln!(f, "NONDETERMINISTIC seed {}: {}", d.seed, d.what)?;
        }
        if self.strategy == StrategyKind::Predict {
            writeln!(
                f,
                "predicted, not confirmed: {} seeds (clean first execution; no reordering showed a violation)",
                self.predicted_unconfirmed
            )?;
        }
        if self.coverage {
            let unordered = self.race_pairs.iter().filter(|p| !p.ordered).count();
            writeln!(
                f,
                "race-pair coverage: {} happens-before classes of conflicting pairs ({} unordered, {} ordered)",
                self.race_pairs.len(),
                unordered,
                self.race_pairs.len() - unordered
            )?;
        }
        if self.groups.is_empty() {
            writeln!(f, "no violation found")?;
        }
        let groups = self.groups.iter().map(|g| ("violation", g));
        let warnings = self.warning_groups.iter().map(|g| ("warning", g));
        for (what, g) in groups.chain(warnings) {
            let seeds: Vec<String> = g.seeds.iter().map(|s| s.to_string()).collect();
            writeln!(
                f,
                "{what} {} in {} runs, first seed {} (seeds {}{})",
                g.signature.join(" + "),
                g.runs,
                g.first_seed,
                seeds.join(", "),
                if g.runs as usize > g.seeds.len() { ", ..." } else { "" }
            )?;
            if let Some(c) = &g.config {
                writeln!(f, "  configuration: {c}")?;
            }
            if let Some(t) = &g.trace {
                writeln!(f, "  trace: {t}")?;
            }
        }
        for p in &self.panicked {
            writeln!(
                f,
                "PANIC at seed {} (rerun: mmsim explore {} --strategy {} --depth {} --seed-start {} --runs 1): {}",
                p.seed,
                self.scenario,
                self.strategy.cli_name(),
                self.depth,
                p.seed,
                p.message
            )?;
        }
        if self.panics > self.panicked.len() as u64 {
            writeln!(f, "... and {} more panics", self.panics - self.panicked.len() as u64)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    // gup-vs-unshare on x86_64 with the given profile, as predict's tests build it
    use crate::predict::tests::prepared;

    #[test]
    fn shard_parses_and_partitions_the_range() {
        assert_eq!("2/3".parse::<Shard>(), Ok(Shard { index: 2, count: 3 }));
        for bad in ["0/3", "4/3", "1/0", "x", "1/"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        let cfg = |shard| Config { seed_start: 5, runs: 10, shard, ..Config::default() };
        let whole: Vec<u64> = cfg(None).seeds().collect();
        let mut parts: Vec<u64> = (1..=3)
            .flat_map(|i| cfg(Some(Shard { index: i, count: 3 })).seeds().collect::<Vec<_>>())
            .collect();
        parts.sort();
        assert_eq!(parts, whole);
        assert_eq!(whole, (5..15).collect::<Vec<_>>());
    }

    #[test]
    fn shard_from_env_counts_from_its_base_and_says_what_is_wrong() {
        let env = |v: &'static str| move |k: &str| (k == "IDX").then(|| v.to_string());
        assert_eq!(Shard::from_env("IDX/4", 0, env("0")), Ok(Shard { index: 1, count: 4 }));
        assert_eq!(Shard::from_env("IDX/4", 0, env(" 3\n")), Ok(Shard { index: 4, count: 4 }));
        assert_eq!(Shard::from_env("IDX/4", 1, env("1")), Ok(Shard { index: 1, count: 4 }));
        assert_eq!(Shard::from_env("IDX/4", 1, env("4")), Ok(Shard { index: 4, count: 4 }));
        let err = |spec, base, v| Shard::from_env(spec, base, env(v)).unwrap_err().to_string();
        assert!(err("OTHER/4", 0, "1").contains("OTHER is not set"));
        assert!(err("IDX/4", 0, "x").contains("IDX=`x` is not a number"));
        let e = err("IDX/4", 0, "4");
        assert!(
            e.contains("IDX=4 is outside 0..=3, the 0-based") && e.contains("--shard-base 1"),
            "{e}"
        );
        assert!(err("IDX/4", 1, "0").contains("outside 1..=4"));
        for spec in ["IDX", "IDX/0", "IDX/x", "/4", "$IDX/4", "1/4"] {
            assert!(err(spec, 0, "1").contains("expected VAR/N"), "{spec}");
        }
    }

    #[test]
    fn signature_matches_minimize() {
        let p = prepared("v6.1");
        let t = (0..2000)
            .map(|s| p.run_seed(s, false).unwrap().0)
            .find(|t| t.verdict == Verdict::Violation)
            .expect("a violation in 2000 seeds");
        assert_eq!(signature(&t.reports), crate::minimize::signature(&t));
        assert!(!signature(&t.reports).is_empty());
    }

    #[test]
    fn stop_on_first_ends_at_the_lowest_violating_seed_for_any_jobs() {
        let p = prepared("v6.1");
        let run = |jobs| {
            let cfg = Config { runs: 3000, jobs, stop_on_first: true, ..Config::default() };
            run_seeds(&p, &cfg, &|s| cfg.strategy.build(&p, s, cfg.depth), &|_| {})
        };
        let one = run(1);
        let last = one.last().expect("some results");
        assert!(matches!(last.outcome, SeedOutcome::Violation(_)), "{last:?}");
        assert!(one[..one.len() - 1]
            .iter()
            .all(|r| !matches!(r.outcome, SeedOutcome::Violation(_))));
        assert_eq!(
            one.iter().map(|r| r.seed).collect::<Vec<_>>(),
            (0..one.len() as u64).collect::<Vec<_>>()
        );
        assert_eq!(run(3), one);
    }

    #[test]
    fn gaps_and_quantiles() {
        let r = |seed, bad: bool| SeedResult {
            seed,
            steps: 1,
            outcome: if bad { SeedOutcome::Violation(vec![]) } else { SeedOutcome::Clean },
            pairs: BTreeSet::new(),
        };
        let rs: Vec<SeedResult> = [false, false, true, true, false, false, false, true, false]
            .iter()
            .enumerate()
            .map(|(i, &b)| r(i as u64, b))
            .collect();
        let mut g = executions_to_violation(&rs);
        assert_eq!(g, vec![3, 1, 4]);
        assert_eq!(quantile(&mut g, 0.5), Some(3));
        assert_eq!(quantile(&mut g, 0.9), Some(4));
        assert_eq!(quantile(&mut [], 0.5), None);
    }

    #[test]
    fn merge_refuses_mismatched_parts() {
        let p = prepared("v6.3");
        let a = Summary::new(
            &p,
            &Config { shard: Some(Shard { index: 1, count: 2 }), ..Config::default() },
        );
        let mut b = a.clone();
        assert!(merge(&[a.clone(), b.clone()]).unwrap_err().contains("given twice"));
        b.shards = vec![2];
        b.profile = "v6.1".into();
        assert!(merge(&[a.clone(), b.clone()]).unwrap_err().contains("profile"));
        b.profile = a.profile.clone();
        let m = merge(&[a, b]).unwrap();
        assert_eq!((m.shard_count, m.shards), (1, vec![1]));
    }
}
