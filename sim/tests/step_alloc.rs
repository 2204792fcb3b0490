//! The step loop allocates nothing (and so formats nothing) when tracing is off: a run's heap
//! allocations come from setting up the run and from model state that grows per operation
//! (tables, VMAs, RCU callbacks) or per report (a violation's report is formatted when it is
//! found), never per step. Counted with a counting global allocator; one test in this
//! binary, so no other test's allocations are counted.

mod common;

use common::{builtin, inline, prepare};
use mmsim::engine::strategy::{FirstRunnable, RandomPriorities};
use mmsim::run::{execute, DEFAULT_DEPTH};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use std::alloc::System;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[test]
fn untraced_runs_allocate_per_run_not_per_step() {
    for (scenario, profile) in [
        ("gup-vs-unshare", "v6.3"),
        ("gup-vs-unshare", "v6.1"),
        ("share-pud-lock", "v6.1"),
        ("split-unshare", "v6.15"),
        ("refcount-share", "v6.1"),
    ] {
        let p = prepare(builtin(scenario), Some("x86_64"), Some(profile), &[]);
        for seed in 0..10 {
            let mut s = RandomPriorities::new(seed, &p.lengths, DEFAULT_DEPTH);
            let region = Region::new(GLOBAL);
            let out = execute(&p.env, &mut s, false).unwrap();
            let stats = region.change();
            let allocs = (stats.allocations + stats.reallocations) as u64;
            // one allocation per step would make this at least `out.steps`
            assert!(
                allocs * 10 < out.steps,
                "{scenario} {profile} seed {seed}: {allocs} allocations in {} steps",
                out.steps
            );
            // and tracing does allocate per step: the count above would see it
            let mut s = RandomPriorities::new(seed, &p.lengths, DEFAULT_DEPTH);
            let region = Region::new(GLOBAL);
            let traced = execute(&p.env, &mut s, true).unwrap();
            let stats = region.change();
            assert!(
                (stats.allocations + stats.reallocations) as u64 >= traced.steps,
                "{scenario} {profile} seed {seed}: tracing allocates per step"
            );
        }
    }
    // copy-on-write after fork (fork-cow-private's shape) is too short for the ratio above:
    // more stores and loads after the COW faults (TLB hits, the data-page checks) add steps
    // and no allocation
    let cow = |n: usize| {
        let ops = vec![r#"Access(at: "PUD", write: true), Access(at: "PUD")"#; n].join(", ");
        let text = format!(
            r#"Scenario(name: "cow", setup: [
                MapFile(mm: "A", file: "huge", at: "PUD", len: "PMD", shared: false),
                Touch(mm: "A", at: "PUD"), Fork(mm: "A", child: "C")],
            cpus: [(mm: "A", ops: [{ops}]), (mm: "C", ops: [{ops}]), (mm: "A", ops: [Fork(child: "D")])])"#
        );
        let p = prepare(inline("cow.ron", &text), Some("x86_64"), Some("latest"), &[]);
        let region = Region::new(GLOBAL);
        let out = execute(&p.env, &mut FirstRunnable, false).unwrap();
        let stats = region.change();
        ((stats.allocations + stats.reallocations) as u64, out.steps)
    };
    let ((few, short), (many, long)) = (cow(1), cow(12));
    assert!(long > short + 40, "{short} vs {long} steps");
    assert_eq!(few, many, "{short} steps: {few} allocations; {long} steps: {many}");
}
