//! Minimisation of a failing trace: keep its violation signature while removing operations,
//! whole CPUs and preemptions, then resetting switches to the profile's defaults, each pass
//! kept only if the failure reproduces.
//!
//! Operations and CPUs are removed from the embedded scenario; each candidate is searched with
//! the default random strategy over a bounded number of seeds. Preemptions are removed by
//! guided replay: follow the recorded order of (CPU, operation, step) positions, but at one
//! preemption let the preempted CPU keep running until it blocks or finishes. A switch that
//! differs from the profile's default (from `--set` or the scenario's own `set`) is put back to
//! the default when the same order of positions, or failing that a seed in the budget, still
//! shows the signature: what is left is what the bug needs.

use crate::engine::strategy::{Choice, Diverged, Strategy};
use crate::run::{self, Prepared, Request, RunError};
use crate::scenario::{Scenario, Source};
use mmsim_traces::{Actor, Decision, Trace, Verdict};

/// What identifies a failure across schedules: the report kinds with the kernel function of
/// the violating access, sorted and deduplicated.
pub fn signature(t: &Trace) -> Vec<String> {
    let mut s: Vec<String> =
        t.reports.iter().map(|r| format!("{}@{}", r.kind, r.at.func)).collect();
    s.sort();
    s.dedup();
    s
}

/// Whether `t` shows every part of `sig`.
fn reproduces(t: &Trace, sig: &[String]) -> bool {
    let have = signature(t);
    t.verdict == Verdict::Violation && sig.iter().all(|s| have.contains(s))
}

/// Preemptions in a decision list: switches away from an actor that could have continued. The
/// recorded runnable sets are not stored, so an actor counts as able to continue when it takes
/// a later step of the same operation.
pub fn preemptions(d: &[Decision]) -> usize {
    (1..d.len())
        .filter(|&i| {
            let prev = d[i - 1];
            d[i].actor != prev.actor
                && matches!(prev.actor, Actor::Cpu(_))
                && d[i..].iter().any(|x| x.actor == prev.actor && x.op == prev.op)
        })
        .count()
}

/// Follow a recorded order of positions; from decision `keep_from` on, keep running `keep`
/// while it is runnable.
struct Guided<'a> {
    order: &'a [Decision],
    done: Vec<bool>,
    keep: Option<(usize, Actor)>,
}

impl Strategy for Guided<'_> {
    fn name(&self) -> String {
        "guided".into()
    }
    fn choose(&mut self, step: u64, runnable: &[Choice]) -> Result<usize, Diverged> {
        let taken = self.done.iter().filter(|&&d| d).count();
        let pick = match self.keep {
            Some((from, a)) if taken >= from => runnable.iter().position(|c| c.actor == a),
            _ => None,
        };
        let pick = pick.or_else(|| {
            // the first not-yet-taken recorded position that is runnable now
            self.order.iter().enumerate().filter(|(i, _)| !self.done[*i]).find_map(|(_, d)| {
                runnable
                    .iter()
                    .position(|c| c.actor == d.actor && c.op == d.op && c.op_step == d.op_step)
            })
        });
        let i = pick.unwrap_or(0);
        let c = runnable[i];
        if let Some(j) = self.order.iter().enumerate().position(|(j, d)| {
            !self.done[j] && d.actor == c.actor && d.op == c.op && d.op_step == c.op_step
        }) {
            self.done[j] = true;
        }
        if self.keep.is_some_and(|(_, a)| a != c.actor) && taken >= self.keep.map_or(0, |k| k.0) {
            self.keep = None;
        }
        let _ = step;
        Ok(i)
    }
}

/// The result of minimisation.
pub struct Minimized {
    pub trace: Trace,
    pub signature: Vec<String>,
    pub removed_ops: usize,
    pub preemptions_before: usize,
    pub preemptions_after: usize,
    /// Switches put back to the profile's default (`name=value` as they are now).
    pub switches_reset: Vec<String>,
    /// Switches that still differ from the profile's default: the failure needs them.
    pub switches_kept: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum MinimizeError {
    #[error("the trace shows no violation: nothing to minimise")]
    NotFailing,
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("the trace's own scenario does not reproduce its violation within {0} seeds")]
    NoRepro(u64),
}

/// Seeds tried for each candidate scenario.
pub const SEED_BUDGET: u64 = 2000;

/// Minimise `trace` (from `origin`).
pub fn minimize(trace: &Trace, origin: &str, budget: u64) -> Result<Minimized, MinimizeError> {
    if trace.verdict != Verdict::Violation {
        return Err(MinimizeError::NotFailing);
    }
    let sig = signature(trace);
    let base = run::request_of(trace, origin);
    let mut scenario = base.source.parse().map_err(RunError::from)?;
    let mut best = trace.clone();
    let mut removed = 0;

    // 1. fewer operations and CPUs
    loop {
        let mut improved = false;
        for cand in candidates(&scenario) {
            if let Some(t) = search(&base, &cand, &sig, budget)? {
                scenario = cand;
                best = t;
                removed += 1;
                improved = true;
                break;
            }
        }
        if !improved {
            break;
        }
    }

    // 2. fewer preemptions: at each preemption, let the preempted CPU run on
    let before = preemptions(&best.decisions);
    let req = Request {
        source: Source { origin: origin.into(), text: scenario.to_ron() },
        ..base.clone()
    };
    let prepared = Prepared::new(&req)?;
    loop {
        let d = best.decisions.clone();
        let mut improved = false;
        for i in 1..d.len() {
            let prev = d[i - 1];
            if d[i].actor == prev.actor || !matches!(prev.actor, Actor::Cpu(_)) {
                continue;
            }
            let mut g =
                Guided { order: &d, done: vec![false; d.len()], keep: Some((i, prev.actor)) };
            let Ok(out) = run::execute(&prepared.env, &mut g, true) else { continue };
            let t = run::trace_of(&req, &prepared.env, "minimized", best.header.seed, out);
            if reproduces(&t, &sig) && preemptions(&t.decisions) < preemptions(&best.decisions) {
                best = t;
                improved = true;
                break;
            }
        }
        if !improved {
            break;
        }
    }
    let after = preemptions(&best.decisions);

    // 3. switches back to the profile's defaults, one at a time
    let (switches_reset, switches_kept) = reset_switches(&mut best, &req, &sig, budget, after)?;
    Ok(Minimized {
        trace: best,
        signature: sig,
        removed_ops: removed,
        preemptions_before: before,
        preemptions_after: after,
        switches_reset,
        switches_kept,
    })
}

/// Pass 3: try each switch that differs from the profile's default at its default, keeping the
/// change when the recorded order of positions still shows `sig` (with no more preemptions),
/// or else when some seed in the budget does. Returns (reset, kept), as `name=value`.
fn reset_switches(
    best: &mut Trace,
    req: &Request,
    sig: &[String],
    budget: u64,
    max_preemptions: usize,
) -> Result<(Vec<String>, Vec<String>), MinimizeError> {
    // the defaults as resolved for this arch and profile (e.g. `tlb_flush=arch` resolves to the
    // configuration's mechanism), with neither --set nor the scenario's own `set`
    let mut bare = prepared_scenario(req)?;
    bare.set.clear();
    let bare = Request {
        source: Source { origin: req.source.origin.clone(), text: bare.to_ron() },
        arch: Some(best.header.arch.clone()),
        profile: Some(best.header.profile.clone()),
        set: Vec::new(),
    };
    let Ok(env) = run::prepare(&bare) else {
        return Ok((Vec::new(), Vec::new()));
    };
    let defaults = env.sw.list();
    let default_of = |n: &str| defaults.iter().find(|(d, _)| d == n).map(|(_, v)| v.clone());
    let (mut reset, mut kept) = (Vec::new(), Vec::new());
    let differing: Vec<(String, String)> = best
        .header
        .switches
        .iter()
        .filter(|(n, v)| default_of(n).is_some_and(|d| &d != v))
        .cloned()
        .collect();
    for (name, value) in differing {
        let Some(default) = default_of(&name) else { continue };
        let mut cand = run::request_of(best, &req.source.origin);
        cand.source = req.source.clone();
        for a in cand.set.iter_mut() {
            if a.split_once('=').is_some_and(|(n, _)| n == name) {
                *a = format!("{name}={default}");
            }
        }
        let Ok(prepared) = Prepared::new(&cand) else {
            kept.push(format!("{name}={value}"));
            continue;
        };
        let d = best.decisions.clone();
        let mut g = Guided { order: &d, done: vec![false; d.len()], keep: None };
        let guided = run::execute(&prepared.env, &mut g, true)
            .ok()
            .map(|out| run::trace_of(&cand, &prepared.env, "minimized", best.header.seed, out))
            .filter(|t| reproduces(t, sig) && preemptions(&t.decisions) <= max_preemptions);
        let found = match guided {
            Some(t) => Some(t),
            None => search(&cand, &prepared_scenario(&cand)?, sig, budget)?,
        };
        match found {
            Some(t) => {
                *best = t;
                reset.push(format!("{name}={value}"));
            }
            None => kept.push(format!("{name}={value}")),
        }
    }
    Ok((reset, kept))
}

fn prepared_scenario(req: &Request) -> Result<Scenario, MinimizeError> {
    Ok(req.source.parse().map_err(RunError::from)?)
}

/// Scenarios with one CPU operation, or one whole CPU, removed.
fn candidates(s: &Scenario) -> Vec<Scenario> {
    let mut out = Vec::new();
    for c in 0..s.cpus.len() {
        if s.cpus.len() > 1 {
            let mut x = s.clone();
            x.cpus.remove(c);
            out.push(x);
        }
        for o in 0..s.cpus[c].ops.len() {
            let mut x = s.clone();
            x.cpus[c].ops.remove(o);
            out.push(x);
        }
    }
    out
}

/// The first seed in the budget whose run of `s` shows `sig`, as a trace.
fn search(
    base: &Request,
    s: &Scenario,
    sig: &[String],
    budget: u64,
) -> Result<Option<Trace>, MinimizeError> {
    let req = Request {
        source: Source { origin: base.source.origin.clone(), text: s.to_ron() },
        ..base.clone()
    };
    let Ok(p) = Prepared::new(&req) else { return Ok(None) };
    for seed in 0..budget {
        let (_, out) = p.run_seed(seed, false)?;
        if out.verdict == Verdict::Violation {
            let (t, _) = p.run_seed(seed, true)?;
            if reproduces(&t, sig) {
                return Ok(Some(t));
            }
        }
    }
    Ok(None)
}

/// The short happens-before chain a reader needs: the violating object's lifecycle
/// (allocation, shares and unshares, ptlock destruction, queued and real free) and every access
/// the violating CPU made to it, up to the violation.
pub fn chain(t: &Trace) -> Vec<String> {
    use mmsim_traces::{Access, Object};
    let Some(r) = t.reports.first() else { return Vec::new() };
    let pfn = match r.object {
        Some(Object::Table(p) | Object::PtLock(p)) => Some(p),
        Some(Object::Entry { pfn, .. }) => Some(pfn),
        _ => None,
    };
    let on_pfn = |o: Object| match (o, pfn) {
        (Object::Table(p) | Object::PtLock(p), Some(q)) => p == q,
        (Object::Entry { pfn: p, .. }, Some(q)) => p == q,
        _ => false,
    };
    let lifecycle = |a: Access| {
        matches!(
            a,
            Access::Alloc
                | Access::Share
                | Access::Unshare
                | Access::LockFree
                | Access::QueueFree
                | Access::Free
        )
    };
    let cpu_of = |a: Actor| match a {
        Actor::Cpu(c) | Actor::Irq(c) => Some(c),
        _ => None,
    };
    let violator = cpu_of(r.at.actor);
    t.events
        .iter()
        .filter(|e| e.step <= r.at.step && on_pfn(e.object))
        .filter(|e| lifecycle(e.access) || (violator.is_some() && cpu_of(e.actor) == violator))
        .map(|e| format!("step {:>5}  {}", e.step, e.summary()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimising_the_seed_race_keeps_its_signature_and_does_not_grow() {
        let req = Request {
            source: Source::load("gup-vs-unshare").unwrap(),
            arch: None,
            profile: Some("v6.1".into()),
            set: vec![],
        };
        let p = Prepared::new(&req).unwrap();
        let t = (0..1000)
            .map(|s| p.run_seed(s, true).unwrap().0)
            .find(|t| {
                t.reports.iter().any(|r| r.kind == mmsim_traces::ReportKind::UseAfterFreePtlock)
            })
            .expect("seed race found");
        let m = minimize(&t, "test", 300).unwrap();
        assert_eq!(signature(&m.trace), signature(&t));
        assert!(m.preemptions_after <= m.preemptions_before);
        // all three CPUs are needed for this race: nothing can be removed
        assert_eq!(m.removed_ops, 0);
        // the minimised trace replays
        assert!(matches!(run::replay(&m.trace, "min").unwrap(), run::ReplayResult::Identical(_)));
        assert!(!chain(&m.trace).is_empty());
    }

    fn first_failing(scenario: &str, set: &[&str], seeds: u64) -> Trace {
        let req = Request {
            source: Source::load(scenario).unwrap(),
            arch: None,
            profile: None,
            set: set.iter().map(|s| s.to_string()).collect(),
        };
        let p = Prepared::new(&req).unwrap();
        (0..seeds)
            .map(|s| p.run_seed(s, true).unwrap().0)
            .find(|t| t.verdict == Verdict::Violation)
            .expect("a failing seed")
    }

    #[test]
    fn a_switch_the_failure_needs_is_kept_and_one_it_does_not_is_reset() {
        // the stale walk-cache entry needs the leaf-only unshare flush; KASAN-style quarantine
        // (never reuse freed frames) does not change whether the stale entry is used
        let t = first_failing(
            "tlb-walk-cache",
            &["unshare_flush_leaf_only=true", "quarantine=true"],
            1000,
        );
        let m = minimize(&t, "test", 300).unwrap();
        assert_eq!(m.switches_kept, vec!["unshare_flush_leaf_only=true".to_string()]);
        assert_eq!(m.switches_reset, vec!["quarantine=true".to_string()]);
        assert_eq!(signature(&m.trace), signature(&t));
        let q = m.trace.header.switches.iter().find(|(n, _)| n == "quarantine").unwrap();
        assert_eq!(q.1, "false", "the minimised trace runs with the default");
        assert!(matches!(run::replay(&m.trace, "min").unwrap(), run::ReplayResult::Identical(_)));
    }

    #[test]
    fn an_operation_the_race_does_not_need_is_removed() {
        let text = Source::load("gup-vs-unshare")
            .unwrap()
            .text
            .replace("[GupSlow(at: \"PUD\")]", "[GupSlow(at: \"PUD\"), Fault(at: \"PUD+4*PMD\")]");
        assert!(text.contains("Fault(at"), "the extra operation was added");
        let req = Request {
            source: Source { origin: "extra".into(), text },
            arch: None,
            profile: Some("v6.1".into()),
            set: vec![],
        };
        let p = Prepared::new(&req).unwrap();
        let t = (0..2000)
            .map(|s| p.run_seed(s, true).unwrap().0)
            .find(|t| {
                t.reports.iter().any(|r| r.kind == mmsim_traces::ReportKind::UseAfterFreePtlock)
            })
            .expect("race found with the extra operation");
        let m = minimize(&t, "extra", 2000).unwrap();
        assert_eq!(m.removed_ops, 1);
        assert_eq!(m.trace.header.cpus[0].ops.len(), 1, "{:?}", m.trace.header.cpus);
        assert_eq!(signature(&m.trace), signature(&t));
    }
}
