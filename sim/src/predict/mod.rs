//! Predictive detection: from one clean execution, find the use-after-free it was one
//! reordering away from, and confirm it by running that reordering.
//!
//! Per seed: one traced run of the random strategy; [`hb`] computes happens-before over its
//! events; [`reorder`] lists the frees of page-table pages (and their ptlocks) that are
//! unordered with another CPU's use or walk, each with the reordered schedule that would show
//! it; each schedule runs in the engine under [`reorder::Guided`]. Only a run in which the
//! engine's own checkers fire counts as a violation; its trace has the engine's recorded
//! decisions, so `mmsim replay` reproduces it. Predictions no run confirmed are counted
//! separately as "predicted, not confirmed".

pub mod hb;
pub mod reorder;

use crate::engine::strategy::RandomPriorities;
use crate::run::{Prepared, RunError};
use hb::RacePair;
use mmsim_traces::{Actor, Trace, Verdict};
use std::collections::BTreeSet;

/// What predictive detection made of one seed.
#[derive(Debug)]
pub struct Prediction {
    /// The observed execution.
    pub first: Trace,
    /// The candidates found in it, described.
    pub candidates: Vec<String>,
    /// The violating run: the first execution itself, or the confirmed reordering (with its
    /// index among `candidates`).
    pub confirmed: Option<(Option<usize>, Trace)>,
    /// Race-pair coverage of the first execution.
    pub pairs: BTreeSet<RacePair>,
    /// Executions run (the first one included).
    pub executions: u32,
}

/// Executions per seed at most (the first one and the reorderings).
pub const MAX_EXECUTIONS: u32 = 16;

/// The strategy name summaries and traces carry.
pub fn strategy_name(depth: u32) -> String {
    format!("predict(depth={depth})")
}

/// Run one seed: a random execution, its analysis, and the candidate reorderings until one is
/// confirmed.
pub fn predict_seed(p: &Prepared, seed: u64, depth: u32) -> Result<Prediction, RunError> {
    let mut random = RandomPriorities::new(seed, &p.lengths, depth);
    let first = p.run_with(seed, &mut random, true)?;
    let pairs = hb::race_pairs(&first.events);
    if first.verdict == Verdict::Violation {
        return Ok(Prediction {
            confirmed: Some((None, first.clone())),
            first,
            candidates: Vec::new(),
            pairs,
            executions: 1,
        });
    }
    let mut pred = Prediction {
        candidates: Vec::new(),
        confirmed: None,
        pairs,
        executions: 1,
        first: first.clone(),
    };
    // executions to analyse: (trace, whether its critical sections may still be reordered)
    let mut queue = vec![(first, true)];
    while let Some((t, flip)) = queue.pop() {
        let (setup, concurrent) = split(&t);
        let mut cands = reorder::candidates(&p.env, setup, concurrent);
        if flip {
            cands.extend(reorder::critical_section_flips(concurrent));
        }
        for c in cands {
            if pred.executions > MAX_EXECUTIONS {
                return Ok(pred);
            }
            let k = pred.candidates.len();
            pred.candidates.push(c.describe(concurrent));
            let name = format!("{}, reordering {k}: {}", strategy_name(depth), pred.candidates[k]);
            let mut g = reorder::Guided::new(&c.plan, name);
            let r = p.run_with(seed, &mut g, true)?;
            pred.executions += 1;
            if r.verdict == Verdict::Violation {
                pred.confirmed = Some((Some(k), r));
                return Ok(pred);
            }
            if matches!(c.kind, reorder::Kind::UnshareBeforeCheck { .. }) {
                queue.push((r, false));
            }
        }
    }
    Ok(pred)
}

/// A trace's setup events and its concurrent-phase events.
pub fn split(t: &Trace) -> (&[mmsim_traces::Event], &[mmsim_traces::Event]) {
    let start = t.events.iter().position(|e| e.actor != Actor::Setup).unwrap_or(t.events.len());
    (&t.events[..start], reorder::concurrent_events(t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::Request;
    use crate::scenario::Source;

    pub(crate) fn prepared(profile: &str) -> Prepared {
        Prepared::new(&Request {
            source: Source::load("gup-vs-unshare").unwrap(),
            arch: None,
            profile: Some(profile.into()),
            set: vec![],
        })
        .unwrap()
    }

    #[test]
    fn finds_the_seed_race_from_the_first_execution_of_most_seeds_on_v6_1() {
        let p = prepared("v6.1");
        let mut found = 0;
        let mut uaf = 0;
        for seed in 0..50 {
            let r = predict_seed(&p, seed, crate::run::DEFAULT_DEPTH).unwrap();
            if let Some((_, t)) = &r.confirmed {
                found += 1;
                let replayed = crate::run::replay(t, "predict").unwrap();
                assert!(
                    matches!(replayed, crate::run::ReplayResult::Identical(_)),
                    "seed {seed}: the confirmed trace must replay: {replayed:?}"
                );
                if t.reports.iter().any(|r| {
                    matches!(
                        r.kind,
                        mmsim_traces::ReportKind::UseAfterFreeTable
                            | mmsim_traces::ReportKind::UseAfterFreePtlock
                    )
                }) {
                    uaf += 1;
                }
            }
        }
        eprintln!("confirmed {found}/50, use-after-free {uaf}/50");
        assert!(uaf >= 26, "use-after-free confirmed for {uaf} of 50 seeds");
    }

    #[test]
    fn confirms_nothing_on_v6_3() {
        let p = prepared("v6.3");
        for seed in 0..40 {
            let r = predict_seed(&p, seed, crate::run::DEFAULT_DEPTH).unwrap();
            assert!(r.confirmed.is_none(), "seed {seed}: {:?}", r.confirmed.map(|c| c.1.reports));
        }
    }

    #[test]
    fn coverage_is_deterministic_and_not_empty() {
        let p = prepared("v6.1");
        let a = predict_seed(&p, 3, 3).unwrap().pairs;
        let b = predict_seed(&p, 3, 3).unwrap().pairs;
        assert_eq!(a, b);
        assert!(a.iter().any(|c| !c.ordered), "{a:?}");
        assert!(a.iter().any(|c| c.ordered), "{a:?}");
    }
}

#[cfg(test)]
mod measure {
    use super::*;
    #[test]
    #[ignore]
    fn measure() {
        let prof = std::env::var("PROF").unwrap_or("v6.1".into());
        let n: u64 = std::env::var("N").map(|s| s.parse().unwrap()).unwrap_or(200);
        let p = tests::prepared(&prof);
        let (mut found, mut uaf, mut first_v, mut unconf, mut execs) = (0, 0, 0, 0, 0);
        for seed in 0..n {
            let r = predict_seed(&p, seed, 3).unwrap();
            execs += r.executions;
            match &r.confirmed {
                Some((k, t)) => {
                    found += 1;
                    if k.is_none() {
                        first_v += 1;
                    }
                    if t.reports.iter().any(|r| format!("{:?}", r.kind).starts_with("UseAfterFree"))
                    {
                        uaf += 1;
                    }
                    if std::env::var("V").is_ok() {
                        eprintln!(
                            "seed {seed}: {:?} {:?}",
                            k,
                            crate::explore::signature(&t.reports)
                        );
                    }
                }
                None => {
                    if !r.candidates.is_empty() {
                        unconf += 1;
                    }
                    if std::env::var("V").is_ok() {
                        eprintln!("seed {seed}: none, cands {:?}", r.candidates);
                    }
                }
            }
        }
        eprintln!("{prof}: seeds {n}: confirmed {found}, uaf {uaf}, first-run violations {first_v}, unconfirmed {unconf}, executions {execs}");
    }
}
