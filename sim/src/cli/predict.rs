//! `mmsim predict TRACE`: predictive detection on a recorded execution (any strategy, clean or
//! not): list the reorderings happens-before allows, run them, and write the first confirmed
//! violation as a replayable trace.

use super::fail;
use std::path::Path;

pub fn predict(trace: &Path, output: Option<&Path>) -> i32 {
    let t = match mmsim_traces::read(trace) {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    let origin = trace.display().to_string();
    let p = match crate::predict::predict_trace(&t, &origin) {
        Ok(p) => p,
        Err(e) => return fail(format!("{origin}: {e}")),
    };
    let unordered = p.pairs.iter().filter(|r| !r.ordered).count();
    println!(
        "{origin}: {} on {} with profile {}, seed {}: {} after {} steps",
        t.header.scenario,
        t.header.arch,
        t.header.profile,
        t.header.seed,
        crate::book::verdict_name(&t),
        t.events.len()
    );
    println!(
        "race-pair coverage: {} classes of conflicting accesses, {unordered} of them unordered",
        p.pairs.len()
    );
    // a recorded violation that is not a memory-safety one is still analysed for one
    let upgraded = matches!(p.confirmed, Some((Some(_), _)));
    if crate::predict::counts(&t) && !upgraded {
        println!("the recorded execution already shows a violation; nothing to predict");
        return 1;
    }
    if !t.reports.is_empty() && !crate::predict::counts(&t) {
        println!(
            "the recorded execution shows only warnings (below severity {}): analysed for a violation",
            crate::predict::MIN_SEVERITY
        );
    }
    println!(
        "{} reorderings tried, {} predicted memory-safety violations:",
        p.candidates.len(),
        p.predicted
    );
    for (i, c) in p.candidates.iter().enumerate() {
        println!("  [{i}] {c}");
    }
    let Some((which, confirmed)) = &p.confirmed else {
        println!(
            "nothing confirmed in {} executions{}",
            p.executions,
            if p.predicted > 0 { " (predicted, not confirmed)" } else { "" }
        );
        return 0;
    };
    if let Some(i) = which {
        println!("confirmed by reordering [{i}] ({} executions in all):", p.executions);
    }
    if let Some(r) = crate::book::worst_report(confirmed) {
        print!("{}", r.text);
    }
    if let Some(out) = output {
        if let Err(e) = mmsim_traces::write_atomic(out, confirmed) {
            return fail(e);
        }
        println!("confirmed trace written to {} (mmsim replay reproduces it)", out.display());
    }
    1
}
