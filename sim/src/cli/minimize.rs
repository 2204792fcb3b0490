//! `mmsim minimize`: shrink a failing trace to the fewest operations and preemptions that keep
//! its violation, write the result, and print the chain of events that matter.

use super::fail;
use crate::minimize::{self, MinimizeError};
use std::path::Path;

pub fn minimize(trace: &Path, output: Option<&Path>, budget: u64) -> i32 {
    let t = match mmsim_traces::read(trace) {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    let m = match minimize::minimize(&t, &trace.display().to_string(), budget) {
        Ok(m) => m,
        Err(e @ MinimizeError::NotFailing) => return fail(format!("{}: {e}", trace.display())),
        Err(e) => return fail(format!("{}: {e}", trace.display())),
    };
    println!("signature: {}", m.signature.join(", "));
    println!(
        "removed {} operation(s) or CPU(s); preemptions {} -> {}; {} decisions (was {})",
        m.removed_ops,
        m.preemptions_before,
        m.preemptions_after,
        m.trace.decisions.len(),
        t.decisions.len()
    );
    if !m.switches_reset.is_empty() {
        println!(
            "switches back to the profile's default (not needed): {}",
            m.switches_reset.join(", ")
        );
    }
    if !m.switches_kept.is_empty() {
        println!("switches the failure needs: {}", m.switches_kept.join(", "));
    }
    for (i, c) in m.trace.header.cpus.iter().enumerate() {
        println!("  CPU{i} (mm {}): {}", c.mm, c.ops.join("; "));
    }
    println!("chain:");
    for line in minimize::chain(&m.trace) {
        println!("  {line}");
    }
    if let Some(out) = output {
        if let Err(e) = mmsim_traces::write_atomic(out, &m.trace) {
            return fail(e);
        }
        println!("minimised trace written to {}", out.display());
    }
    1
}
