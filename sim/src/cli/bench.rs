//! `mmsim bench`: how fast the engine runs and how fast each strategy finds a violation.
//!
//! Wall-clock time is measured here and only here: it is a benchmark, never a result. Prints a
//! markdown table, one row per scenario.

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
}

/// Runs/s and steps/s of `cfg` on `p`, and the results.
fn timed(p: &Prepared, cfg: &Config, tracing: bool) -> (f64, f64, Vec<explore::SeedResult>) {
    let started = Instant::now();
    let results = if tracing {
        cfg.seeds()
            .map(|seed| {
                let mut s = cfg.strategy.build(p, seed, cfg.depth);
                let t = p.run_with(seed, &mut *s, true).expect("a built-in scenario runs");
                explore::SeedResult {
                    seed,
                    steps: t.decisions.len() as u64,
                    outcome: explore::SeedOutcome::Clean,
                    pairs: Default::default(),
                }
            })
            .collect()
    } else {
        let make = |seed| cfg.strategy.build(p, seed, cfg.depth);
        explore::run_seeds(p, cfg, &make, &|_| {})
    };
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    let steps: u64 = if tracing {
        // a traced run's steps: run untraced once more to count them the same way
        let make = |seed| cfg.strategy.build(p, seed, cfg.depth);
        cfg.seeds().map(|s| explore::run_one(p, &make, s).steps).sum()
    } else {
        results.iter().map(|r| r.steps).sum()
    };
    (results.len() as f64 / secs, steps as f64 / secs, results)
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
    let jobs = a
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let runs = a.runs.max(10);
    println!(
        "| scenario | profile | steps/run | steps/s | runs/s | runs/s traced | untraced/traced | runs/s x{jobs} jobs | speed-up | to 1st violation random (median / p90) | urw | pct d=3 |"
    );
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
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
        let cfg = Config { runs, jobs: 1, ..Config::default() };
        let (runs_s, steps_s, random) = timed(&p, &cfg, false);
        let steps_run: u64 = random.iter().map(|r| r.steps).sum::<u64>() / random.len() as u64;
        let (traced_s, _, _) = timed(&p, &Config { runs: runs / 10, ..cfg.clone() }, true);
        let (par_s, _, _) = timed(&p, &Config { jobs, ..cfg.clone() }, false);
        let (_, _, urw) =
            timed(&p, &Config { strategy: StrategyKind::Urw, jobs, ..cfg.clone() }, false);
        let (_, _, pct) =
            timed(&p, &Config { strategy: StrategyKind::Pct, jobs, ..cfg.clone() }, false);
        println!(
            "| {name} | {} | {steps_run} | {} | {} | {} | {:.1}x | {} | {:.2}x | {} | {} | {} |",
            p.env.profile,
            si(steps_s),
            si(runs_s),
            si(traced_s),
            runs_s / traced_s,
            si(par_s),
            par_s / runs_s,
            to_first(&random),
            to_first(&urw),
            to_first(&pct)
        );
    }
    0
}
