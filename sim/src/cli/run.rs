//! `mmsim run` and `mmsim replay`.

use super::{fail, Target};
use crate::run::{self, Prepared, ReplayResult, Request};
use crate::scenario::Source;
use mmsim_traces::{Severity, Trace, Verdict};
use std::path::Path;

/// Resolve a `Target` into a prepared request, or the error line to print.
pub(crate) fn prepare(t: &Target) -> Result<Prepared, String> {
    let source = Source::load(&t.scenario).map_err(|e| e.to_string())?;
    let req =
        Request { source, arch: t.arch.clone(), profile: t.profile.clone(), set: t.set.clone() };
    Prepared::new(&req).map_err(|e| e.to_string())
}

/// Whether a run counts as found: a step limit, or a report at or above `min`.
fn counts(t: &Trace, min: Severity) -> bool {
    t.verdict == Verdict::StepLimit || Severity::worst(&t.reports) >= Some(min)
}

pub fn run(
    target: &Target,
    seed: u64,
    seeds: Option<u64>,
    output: Option<&Path>,
    min: Severity,
) -> i32 {
    let prepared = match prepare(target) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    // scan quietly, then run the seed to report again with every event recorded
    let count = seeds.unwrap_or(1).max(1);
    let mut chosen = seed;
    for s in seed..seed.saturating_add(count) {
        chosen = s;
        match prepared.run_seed(s, false) {
            Ok((t, _)) if counts(&t, min) => break,
            Ok(_) => {}
            Err(e) => return fail(e),
        }
    }
    let t = match prepared.run_seed(chosen, true) {
        Ok((t, _)) => t,
        Err(e) => return fail(e),
    };
    let found = counts(&t, min);
    print_summary(&t, count, found);
    if !found && !t.reports.is_empty() {
        println!(
            "only warnings (below --min-severity {min}): not counted as a violation, exit status 0"
        );
    }
    if let Some(path) = output {
        if let Err(e) = mmsim_traces::write_atomic(path, &t) {
            return fail(e);
        }
        println!("trace written to {}", path.display());
    }
    i32::from(found)
}

/// Exit 1 if the replayed run counts as found (a report at or above `min`, or a step limit).
pub fn replay(trace: &Path, events: bool, min: Severity) -> i32 {
    let t = match mmsim_traces::read(trace) {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    match run::replay(&t, &trace.display().to_string()) {
        Ok(ReplayResult::Identical(again)) => {
            if events {
                for e in &again.events {
                    println!("{}", e.summary());
                }
            }
            println!(
                "replay of {} identical: {} decisions, {} events, verdict {:?}",
                trace.display(),
                t.decisions.len(),
                t.events.len(),
                t.verdict
            );
            for r in &again.reports {
                print!("{}", r.text);
            }
            i32::from(counts(&again, min))
        }
        Ok(ReplayResult::Diverged(msg)) => {
            fail(format!("{}: replay diverged: {msg}", trace.display()))
        }
        Err(e) => fail(format!("{}: {e}", trace.display())),
    }
}

/// The run's one-line summary and its reports; a run whose reports are all below
/// `--min-severity` (`found` false) reads "Warnings only", not "Violation".
fn print_summary(t: &Trace, seeds: u64, found: bool) {
    let h = &t.header;
    let verdict = match t.verdict {
        Verdict::Violation if !found => "Warnings only".to_string(),
        v => format!("{v:?}"),
    };
    println!(
        "{} on {} with profile {}, {} seed {}{}: {verdict} after {} steps",
        h.scenario,
        h.arch,
        h.profile,
        h.strategy,
        h.seed,
        if seeds > 1 { format!(" (of {seeds} tried)") } else { String::new() },
        t.events.len()
    );
    for r in &t.reports {
        print!("{}", r.text);
    }
}
