//! `mmsim bench`: how fast the engine runs and how fast each strategy finds a violation.
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
    0
}
