//! `mmsim bench`: how fast the engine runs and how fast each strategy finds a violation, and
//! how fast the exhaustive search runs beside the seeded loop.
//!
//! Wall-clock time is measured here and only here: it is a benchmark, never a result. Prints a
//! markdown table, one row per scenario and strategy ([`StrategyKind::ALL`]: a new strategy is
//! one more entry there and gets its rows here).

use super::fail;
use crate::explore::{self, Config, StrategyKind};
use crate::run::{Prepared, Request};
use crate::scenario::{Source, BUILTIN};
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Scenarios (default: every built-in one).
    pub scenarios: Vec<String>,
    /// Seeds per measurement (tracing on uses a tenth).
    #[arg(long, default_value_t = 2000)]
    pub runs: u64,
    /// Kernel profile (default: each scenario's own).
    #[arg(long)]
    pub profile: Option<String>,
    /// Threads for the scaling measurement (default: all cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Strategies (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub strategies: Vec<StrategyKind>,
    /// Largest preemption bound of the exhaustive-search rows: the seed race's v6.3 proof at
    /// every bound from 1 (0 alone with `--exhaustive-bound 0`) to this one, and the v6.1
    /// search to its first violation at this one. The rows run when gup-vs-unshare is
    /// benchmarked; each search is repeated for at least half a second.
    #[arg(long, default_value_t = 3)]
    pub exhaustive_bound: u32,
}

/// The exhaustive-search rows: `mmsim explore gup-vs-unshare --exhaustive --preemptions K` on
/// v6.3 (a proof: every schedule) for K = 1..=`bound`, and on v6.1 with `--stop-on-first` for
/// K = `bound`, each with the seeded random strategy's steps/s on the same scenario and
/// profile beside it.
fn exhaustive_rows(bound: u32, runs: u64) -> Result<(), String> {
    println!();
    println!(
        "| exhaustive search | profile | bound | executions | steps | skipped | seconds | steps/s | seeded steps/s | seeded / exhaustive | executed steps/s | seeded executed steps/s | seeded / exhaustive, executed | result |"
    );
    println!(
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
    );
    let rows = (bound.min(1)..=bound).map(|b| ("v6.3", false, b)).chain([("v6.1", true, bound)]);
    let mut seeded_of = Vec::<(&str, Rates)>::new();
    for (profile, first, bound) in rows {
        let source = Source::load("gup-vs-unshare").map_err(|e| e.to_string())?;
        let req = Request { source, arch: None, profile: Some(profile.into()), set: vec![] };
        let p = Prepared::new(&req).map_err(|e| e.to_string())?;
        let seeded = match seeded_of.iter().find(|(q, _)| *q == profile) {
            Some(&(_, s)) => s,
            None => {
                let s = seeded_loop(&p, runs);
                seeded_of.push((profile, s));
                s
            }
        };
        let cfg = crate::dfs::DfsConfig {
            preemptions: bound,
            stop_on_first: first,
            ..Default::default()
        };
        // repeated until half a second has passed: one search of a bound takes milliseconds
        let started = Instant::now();
        let mut repeats = 0u32;
        let s = loop {
            let s = crate::dfs::search(&p, &cfg);
            repeats += 1;
            if started.elapsed().as_secs_f64() >= 0.5 {
                break s;
            }
        };
        let secs = (started.elapsed().as_secs_f64() / f64::from(repeats)).max(1e-9);
        let skipped: u64 = s.bounds.iter().map(|b| b.skipped).sum();
        let rate = Rates::of(s.steps, skipped, secs);
        let result = if s.exhaustive() {
            format!("exhaustive, {} violation signatures", s.violation_groups().count())
        } else {
            s.stopped.clone().unwrap_or_else(|| "stopped".into())
        };
        println!(
            "| gup-vs-unshare{} | {profile} | {bound} | {} | {} | {:.0}% | {secs:.3} | {} | {} | {:.1}x | {} | {} | {:.1}x | {result} |",
            if first { " (to the first violation)" } else { "" },
            s.executions,
            s.steps,
            100.0 * skipped as f64 / s.steps.max(1) as f64,
            si(rate.steps),
            si(seeded.steps),
            seeded.steps / rate.steps,
            si(rate.executed),
            si(seeded.executed),
            seeded.executed / rate.executed,
        );
    }
    Ok(())
}

/// Steps per second, and of them those that ran (not skipped: [`crate::kernel::skip`]).
#[derive(Clone, Copy)]
struct Rates {
    steps: f64,
    executed: f64,
}

impl Rates {
    fn of(steps: u64, skipped: u64, secs: f64) -> Self {
        Rates { steps: steps as f64 / secs, executed: steps.saturating_sub(skipped) as f64 / secs }
    }
}

/// The seeded loop's rates on `p`: `runs` seeds of the default strategy, untraced, on one
/// thread, each run from the setup snapshot as `explore` runs it; the seeds are run again
/// until half a second has passed, as the searches beside them are (2000 runs of the seed
/// race take some 20 ms, too short to measure on a shared machine).
fn seeded_loop(p: &Prepared, runs: u64) -> Rates {
    let cfg = Config { runs, jobs: 1, ..Config::default() };
    let (mut steps, mut skipped) = (0, 0);
    let started = Instant::now();
    loop {
        for seed in cfg.seeds() {
            let mut s = cfg.build(p, seed);
            if let Ok(out) = p.execute(&p.env, &mut *s, false) {
                steps += out.steps;
                skipped += out.check.skipped;
            }
        }
        if started.elapsed().as_secs_f64() >= 0.5 {
            break;
        }
    }
    Rates::of(steps, skipped, started.elapsed().as_secs_f64().max(1e-9))
}

/// Seconds for `cfg` on `p`, and the results (tracing off, no determinism re-runs).
fn timed(p: &Prepared, cfg: &Config) -> (f64, Vec<explore::SeedResult>) {
    let cfg = Config { check_determinism: false, ..cfg.clone() };
    let started = Instant::now();
    let make = |seed| cfg.build(p, seed);
    let results = explore::run_seeds(p, &cfg, &make, &|_| {});
    (started.elapsed().as_secs_f64().max(1e-9), results)
}

/// Seconds for `cfg`'s seeds with tracing on (every event recorded).
fn timed_traced(p: &Prepared, cfg: &Config) -> f64 {
    let started = Instant::now();
    for seed in cfg.seeds() {
        let mut s = cfg.build(p, seed);
        let _ = p.run_with(seed, &mut *s, true);
    }
    started.elapsed().as_secs_f64().max(1e-9)
}

fn to_first(results: &[explore::SeedResult]) -> String {
    let mut gaps = explore::executions_to_violation(results);
    match (explore::quantile(&mut gaps, 0.5), explore::quantile(&mut gaps, 0.9)) {
        (Some(m), Some(p90)) => format!("{m} / {p90}"),
        _ => format!("none in {}", results.len()),
    }
}

fn si(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.1}M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1}k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

pub fn bench(a: &BenchArgs) -> i32 {
    let names: Vec<String> = if a.scenarios.is_empty() {
        BUILTIN.iter().map(|(n, _)| n.to_string()).collect()
    } else {
        a.scenarios.clone()
    };
    let strategies: &[StrategyKind] =
        if a.strategies.is_empty() { &StrategyKind::ALL } else { &a.strategies };
    let jobs = a
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let runs = a.runs.max(10);
    println!(
        "| scenario | profile | strategy | steps/run | steps/s | runs/s | runs/s traced | untraced/traced | x{jobs} jobs speed-up | runs to 1st violation (median / p90) |"
    );
    println!("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for name in &names {
        let source = match Source::load(name) {
            Ok(s) => s,
            Err(e) => return fail(e),
        };
        let req = Request { source, arch: None, profile: a.profile.clone(), set: vec![] };
        let p = match Prepared::new(&req) {
            Ok(p) => p,
            Err(e) => return fail(format!("{name}: {e}")),
        };
        for &strategy in strategies {
            let cfg = Config { strategy, runs, jobs: 1, ..Config::default() };
            let (secs, results) = timed(&p, &cfg);
            let steps: u64 = results.iter().map(|r| r.steps).sum();
            let runs_s = results.len() as f64 / secs;
            let traced = Config { runs: (runs / 10).max(1), ..cfg.clone() };
            let traced_s = traced.runs as f64 / timed_traced(&p, &traced);
            let (par_secs, _) = timed(&p, &Config { jobs, ..cfg.clone() });
            println!(
                "| {name} | {} | {} | {} | {} | {} | {} | {:.1}x | {:.2}x | {} |",
                p.env.profile,
                strategy.cli_name(),
                steps / results.len().max(1) as u64,
                si(steps as f64 / secs),
                si(runs_s),
                si(traced_s),
                runs_s / traced_s,
                secs / par_secs,
                to_first(&results)
            );
        }
    }
    if names.iter().any(|n| n == "gup-vs-unshare") {
        if let Err(e) = exhaustive_rows(a.exhaustive_bound, runs) {
            return fail(e);
        }
    }
    0
}
