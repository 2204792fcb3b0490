//! The bounded exhaustive search must never miss: for small scenarios with races, a brute-force
//! enumeration of every schedule with at most k preemptions (k = 0..3) finds no violation
//! signature and no end state the search with bound k does not find, and the sleep-set search
//! explores far fewer executions. The brute force shares with `mmsim::dfs` only the engine's
//! stepping interface, the signature and the end-state key (`dfs::key::state_key`, which
//! normalises step numbers that only say *when*; a bug there would hide from both sides): no
//! reduction, no visited table, its own preemption count.

mod common;
use common::{builtin, data, prepare};
use mmsim::dfs::{self, DfsConfig, DfsSummary, Por};
use mmsim::engine::Engine;
use mmsim::explore::signature;
use mmsim::run::Prepared;
use mmsim_traces::{Actor, Severity, Verdict};
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, Hash, Hasher};

fn prepared(scenario: &str, profile: &str, arch: Option<&str>) -> Prepared {
    let source =
        if scenario.ends_with(".ron") { builtin(&data(scenario)) } else { builtin(scenario) };
    prepare(source, arch, Some(profile), &[])
}

#[derive(Default)]
struct Brute {
    executions: u64,
    signatures: BTreeSet<Vec<String>>,
    /// The state (and reports) each schedule's concurrent phase ended in, keyed as the search
    /// keys them (`dfs::key::state_key`: step numbers that only say when normalised away).
    finals: BTreeSet<u64>,
    /// Teardown is deterministic: the signature of a run ending in an exactly equal state with
    /// the same reports so far is remembered rather than recomputed (no reduction: every
    /// schedule is still enumerated and counted).
    finished: HashMap<u64, Vec<String>, BuildHasherDefault<DefaultHasher>>,
}

fn end_key(e: &Engine) -> u64 {
    let mut h = DefaultHasher::new();
    e.state.hash(&mut h);
    for r in &e.check.reports {
        (r.kind, r.object, r.at.func.as_str()).hash(&mut h);
    }
    h.finish()
}

/// Every schedule of the concurrent phase with at most `bound` preemptions (CHESS's count:
/// switching away from a last actor that is still runnable).
fn brute(p: &Prepared, bound: u32) -> Brute {
    fn go(mut e: Engine, last: Option<Actor>, used: u32, bound: u32, b: &mut Brute) {
        let en = if e.at_step_limit() { Vec::new() } else { e.runnable_now().to_vec() };
        if en.is_empty() {
            b.executions += 1;
            b.finals.insert(dfs::key::state_key(&e));
            let key = end_key(&e);
            let sig = match b.finished.get(&key) {
                Some(sig) => sig.clone(),
                None => {
                    let out = e.finish_concurrent();
                    let sig = match out.verdict {
                        Verdict::Violation => signature(&out.check.reports),
                        _ => Vec::new(),
                    };
                    b.finished.insert(key, sig.clone());
                    sig
                }
            };
            if !sig.is_empty() {
                b.signatures.insert(sig);
            }
            return;
        }
        let last_runnable = last.is_some_and(|l| en.iter().any(|c| c.actor == l));
        for c in en {
            let cost = u32::from(last_runnable && last != Some(c.actor));
            if used + cost > bound {
                continue;
            }
            let mut child = e.clone();
            child.step_choice(c);
            go(child, Some(c.actor), used + cost, bound, b);
        }
    }
    let mut root = Engine::new(&p.env, false);
    assert!(root.start_concurrent().is_none(), "setup ended the run");
    let mut b = Brute::default();
    go(root, None, 0, bound, &mut b);
    b
}

fn search(p: &Prepared, bound: u32) -> DfsSummary {
    // every report counts: the comparison with brute force covers warnings too
    let min_severity = Severity::Warning;
    dfs::search(p, &DfsConfig { preemptions: bound, min_severity, ..DfsConfig::default() })
}

fn search_with(p: &Prepared, bound: u32, por: Por) -> DfsSummary {
    let min_severity = Severity::Warning;
    let cfg = DfsConfig {
        preemptions: bound,
        por,
        final_states: true,
        min_severity,
        ..DfsConfig::default()
    };
    dfs::search(p, &cfg)
}

/// Brute force vs both reductions for bounds 0..=`max_bound`.
fn check(scenario: &str, profile: &str, arch: Option<&str>, max_bound: u32) {
    let p = prepared(scenario, profile, arch);
    let brutes: Vec<Brute> = (0..=max_bound).map(|k| brute(&p, k)).collect();
    for por in [Por::Dpor, Por::Sleep] {
        check_one(scenario, &p, &brutes, por);
    }
}

/// Brute force vs the search with `por`; returns (bound, brute, search) executions.
fn check_one(scenario: &str, p: &Prepared, brutes: &[Brute], por: Por) -> Vec<(u32, u64, u64)> {
    let profile = &p.env.profile;
    let max_bound = brutes.len() as u32 - 1;
    let mut rows = Vec::new();
    let mut found_any = false;
    for (k, b) in brutes.iter().enumerate() {
        let k = k as u32;
        let s = search_with(p, k, por);
        assert!(s.exhaustive(), "{s}");
        let found: BTreeSet<Vec<String>> = s.groups.iter().map(|g| g.signature.clone()).collect();
        let missed: Vec<_> = b.signatures.difference(&found).collect();
        assert!(
            missed.is_empty(),
            "{scenario} {profile} bound {k} --por {}: the search missed {missed:?} that brute force found\n{s}",
            por.cli_name()
        );
        // and it finds nothing a schedule within the bound cannot show
        assert!(
            found.is_subset(&b.signatures),
            "{scenario} bound {k}: {found:?} vs {:?}",
            b.signatures
        );
        // Stronger than the signatures: every state a schedule within the bound can end in is
        // reached (a schedule equivalent to it under the declared accesses ends in the same
        // state), so a reduction that loses a schedule class fails even where no violation
        // depends on it.
        let reached: BTreeSet<u64> = s.final_states.iter().copied().collect();
        let lost = b.finals.difference(&reached).count();
        assert!(
            lost == 0,
            "{scenario} {profile} bound {k} --por {}: {lost} of {} end states of the brute force not reached\n{s}",
            por.cli_name(),
            b.finals.len()
        );
        found_any |= !b.signatures.is_empty();
        eprintln!(
            "{scenario} {profile} bound {k}: brute force {} executions, --por {} {} executions (all bounds 0..={k}), {} signatures",
            b.executions,
            por.cli_name(),
            s.executions,
            b.signatures.len()
        );
        rows.push((k, b.executions, s.executions));
    }
    assert!(
        found_any,
        "{scenario} {profile}: no race within bound {max_bound}: a useless test case"
    );
    let (_, bmax, dmax) = *rows.last().unwrap();
    let btotal: u64 = rows.iter().map(|r| r.1).sum();
    match por {
        // far fewer executions where the brute force has many
        Por::Sleep => assert!(
            dmax * 4 <= bmax,
            "{scenario} --por sleep: {dmax} executions vs brute force {bmax}"
        ),
        // DPOR without state caching runs one execution per class of schedules that the
        // declared accesses cannot tell apart: never more than the brute force over the same
        // bounds, but on these scenarios (TLB flushes, IPIs and interrupts conflict with every
        // step) not far fewer
        Por::Dpor => assert!(
            dmax <= btotal,
            "{scenario} --por dpor: {dmax} executions vs brute force {btotal} over bounds 0..={max_bound}"
        ),
    }
    rows
}

#[test]
fn gup_vs_unshare_reduced_v6_1() {
    check("gup-unshare-2cpu.ron", "v6.1", None, 3);
}

/// Catches unbounded sleep sets (see the scenario's comment): the race needs one preemption,
/// and the schedule that covers it when a sleeping step is pruned needs two.
#[test]
fn unshare_vs_gup_reduced_v6_1() {
    check("unshare-gup-2cpu.ron", "v6.1", None, 3);
}

#[test]
fn fault_vs_unshare_reduced_v4_20() {
    check("fault-unshare-2cpu.ron", "v4.20", None, 3);
}

#[test]
fn ptlock_early_free_reduced_v6_13_arm64() {
    check("ptlock-early-free-2cpu.ron", "v6.13", Some("arm64-4k"), 3);
}

/// Three CPUs: brute force beyond bound 2 takes minutes.
#[test]
fn share_pud_lock_v6_1() {
    check("share-pud-lock", "v6.1", None, 2);
}

#[test]
fn punch_hole_nolock_v6_1() {
    check("punch-hole-nolock", "v6.1", None, 3);
}

#[test]
fn every_signature_replays() {
    let p = prepared("fault-unshare-2cpu.ron", "v4.20", None);
    let s = search(&p, 2);
    assert!(s.groups.len() >= 2, "{s}");
    for g in &s.groups {
        let t = dfs::trace_of_group(&p, g).unwrap();
        assert_eq!(t.verdict, Verdict::Violation);
        assert_eq!(signature(&t.reports), g.signature);
        match mmsim::run::replay(&t, "dfs").unwrap() {
            mmsim::run::ReplayResult::Identical(_) => {}
            mmsim::run::ReplayResult::Diverged(d) => panic!("execution {}: {d}", g.first_execution),
        }
    }
}

#[test]
fn a_budget_makes_the_result_not_exhaustive() {
    let p = prepared("gup-unshare-2cpu.ron", "v6.1", None);
    let s = dfs::search(
        &p,
        &DfsConfig { preemptions: 2, max_executions: Some(3), ..DfsConfig::default() },
    );
    assert_eq!(s.executions, 3);
    assert!(!s.exhaustive());
    let text = s.to_string();
    assert!(text.contains("NOT exhaustive: stopped after 3 executions"), "{text}");
    let full = search(&p, 2).to_string();
    assert!(full.contains("exhaustive up to preemption bound 2:"), "{full}");
}

#[test]
fn finds_the_seed_race_with_v6_1() {
    let p = prepared("gup-vs-unshare", "v6.1", None);
    let s =
        dfs::search(&p, &DfsConfig { preemptions: 1, stop_on_first: true, ..DfsConfig::default() });
    // stale walks come first (warnings, below the default --min-severity bug); the search
    // stops at the first violation, the use-after-free
    let found: Vec<_> = s.violation_groups().collect();
    assert_eq!(found.len(), 1, "{s}");
    assert!(found[0].signature.iter().all(|k| k.starts_with("use_after_free")), "{s}");
    assert!(
        s.groups
            .iter()
            .filter(|g| g.warning)
            .all(|g| g.signature == ["stale_walk@follow_hugetlb_page"]),
        "{s}"
    );
    assert!(s.to_string().contains("NOT exhaustive: stopped at the first violation"), "{s}");
}

#[test]
fn reduced_gup_vs_unshare_is_clean_with_v6_3() {
    let p = prepared("gup-unshare-2cpu.ron", "v6.3", None);
    let s = search(&p, 3);
    assert!(s.exhaustive() && s.groups.is_empty(), "{s}");
    assert!(s.to_string().contains("exhaustive up to preemption bound 3:"), "{s}");
}

/// The full seed scenario with the fix, proved up to three preemptions (seconds in a debug
/// build since the search skips the range loops' empty slots where it gives their CPU the
/// only child).
#[test]
fn gup_vs_unshare_v6_3_is_clean_up_to_bound_3() {
    let p = prepared("gup-vs-unshare", "v6.3", None);
    let s = search(&p, 3);
    eprintln!("{s}");
    assert!(s.exhaustive(), "{s}");
    assert!(s.groups.is_empty(), "{s}");
    assert!(s.executions > 0);
}

/// A free in the concurrent phase: GUP-fast reads an empty entry of the PMD table munmap
/// frees (the only scenario here whose table lifecycle, queued free and free, the allocator's
/// included, happen concurrently with a walk).
#[test]
fn gup_fast_vs_munmap_reduced_v6_1_arm64() {
    check("gup-fast-munmap-2cpu.ron", "v6.1", None, 3);
}

/// fault-unshare-2cpu (v4.20) at bound 1, its brute force, and the signature the mutants
/// below miss.
fn fault_unshare_at_bound_1() -> (Prepared, u32, Brute, Vec<String>) {
    let p = prepared("fault-unshare-2cpu.ron", "v4.20", None);
    let bound = 1;
    let b = brute(&p, bound);
    let want: Vec<String> = [
        "range_revisit@__unmap_hugepage_range",
        "stale_walk@hugetlb_fault",
        "wrong_mm@set_huge_pte_at",
    ]
    .map(String::from)
    .to_vec();
    (p, bound, b, want)
}

/// The harness fails for the reason that matters: under a mutant of the dependence relation
/// (`Mutant::ReadIgnoresTable`: an entry read commutes with its table's unlink and free) both
/// reductions miss a violation signature that brute force finds, while the relation as it is
/// finds it. In fault-unshare-2cpu the fault's walk reads the PUD entry before the unshare
/// clears it, then writes into the unshared table: the walk's reads of that table and the
/// unlink are ordered only by the table's owners.
#[test]
fn a_mutant_relation_misses_a_violation_signature() {
    let (p, bound, b, want) = fault_unshare_at_bound_1();
    assert!(b.signatures.contains(&want), "{:?}", b.signatures);
    for por in [Por::Dpor, Por::Sleep] {
        let found = |mutant| {
            let cfg = DfsConfig {
                preemptions: bound,
                por,
                min_severity: Severity::Warning,
                mutant,
                ..DfsConfig::default()
            };
            let s = dfs::search(&p, &cfg);
            assert!(s.exhaustive(), "{s}");
            s.groups.iter().map(|g| g.signature.clone()).collect::<BTreeSet<_>>()
        };
        assert_eq!(found(dfs::Mutant::None), b.signatures, "--por {}", por.cli_name());
        let mutated = found(dfs::Mutant::ReadIgnoresTable);
        let missed: Vec<_> = b.signatures.difference(&mutated).collect();
        assert_eq!(missed, [&want], "--por {}: the mutant missed {missed:?}", por.cli_name());
    }
}

/// The rule that runs a step nothing can race with without trying a preemption before it
/// (`dfs::alone`) fails the same way when broken: if it does not ask whether another CPU's mm
/// reaches the step's table (`Mutant::AloneIgnoresOwners`), steps of the unshare's range loop
/// on a table the fault's mm still reaches run with no preemption tried before them, and the
/// search misses a signature of fault-unshare-2cpu that brute force finds and the rule as it
/// is keeps.
#[test]
fn a_mutant_of_the_alone_rule_misses_a_violation_signature() {
    let (p, bound, b, want) = fault_unshare_at_bound_1();
    let found = |mutant, alone| {
        let cfg = DfsConfig {
            preemptions: bound,
            min_severity: Severity::Warning,
            mutant,
            alone,
            ..DfsConfig::default()
        };
        let s = dfs::search(&p, &cfg);
        assert!(s.exhaustive(), "{s}");
        let fired: u64 = s.bounds.iter().map(|b| b.alone).sum();
        (s.groups.iter().map(|g| g.signature.clone()).collect::<BTreeSet<_>>(), fired)
    };
    let (kept, fired) = found(dfs::Mutant::None, true);
    assert_eq!(kept, b.signatures);
    assert!(fired > 0, "the rule never applied");
    assert_eq!(found(dfs::Mutant::None, false).0, b.signatures);
    let (mutated, _) = found(dfs::Mutant::AloneIgnoresOwners, true);
    let missed: Vec<_> = b.signatures.difference(&mutated).collect();
    assert_eq!(missed, [&want], "the mutant missed {missed:?}");
    // the mutant breaks the rule, not the relation
    assert_eq!(found(dfs::Mutant::AloneIgnoresOwners, false).0, b.signatures);
}

/// End states a schedule within `bound` reaches (brute force) that the search under `mutant`
/// does not.
fn end_states_lost(p: &Prepared, bound: u32, mutant: dfs::Mutant) -> usize {
    let b = brute(p, bound);
    let cfg = DfsConfig {
        preemptions: bound,
        min_severity: Severity::Warning,
        final_states: true,
        mutant,
        ..DfsConfig::default()
    };
    let s = dfs::search(p, &cfg);
    assert!(s.exhaustive(), "{s}");
    let reached: BTreeSet<u64> = s.final_states.iter().copied().collect();
    b.finals.difference(&reached).count()
}

/// The rule's other half, for a step that only takes or releases a lock of one mm, fails the
/// same way when broken: if it does not ask whether another CPU is in that mm
/// (`Mutant::AloneIgnoresMm`), the two faults of mm A in share-pud-lock take
/// `page_table_lock` with no preemption tried before it, and the search no longer reaches end
/// states that brute force reaches, while the rule as it is reaches every one.
#[test]
fn a_mutant_of_the_mm_lock_rule_loses_end_states() {
    let p = prepared("share-pud-lock", "v6.1", None);
    assert_eq!(end_states_lost(&p, 1, dfs::Mutant::None), 0);
    let lost = end_states_lost(&p, 1, dfs::Mutant::AloneIgnoresMm);
    assert!(lost > 0, "the mutant lost no end state");
}

/// And for `mmap_lock` taken for read, where CPUs of the mm that only ever read-lock it do not
/// count: if every operation counted as a reader (`Mutant::AloneIgnoresWriters`), the second
/// fault's `mmap_read_lock()` in fault-mprotect-same-mm would run with no preemption tried
/// before it, and the end state where the mprotect runs between the two faults (the first page
/// mapped, the second fault refused) is lost; the rule as it is, with the mprotect's write lock
/// in the mm, keeps it. No violation hangs on it: this mutant is killed by an end state.
#[test]
fn a_mutant_of_the_mmap_lock_reader_rule_loses_end_states() {
    let p = prepared("fault-mprotect-same-mm.ron", "v6.1", None);
    for bound in 0..=2 {
        assert_eq!(end_states_lost(&p, bound, dfs::Mutant::None), 0, "bound {bound}");
    }
    assert_eq!(end_states_lost(&p, 1, dfs::Mutant::AloneIgnoresWriters), 1);
}

/// The rule for steps nothing races with changes no result on any built-in scenario: at bounds
/// 0 and 1 the search with it finds the same signatures and reaches the same end states as the
/// search without it (which explores a superset of schedules), and it applies on most of
/// them. Brute force is too slow for the full scenarios; this is the cheap check that every
/// half of the rule (tables, mm locks, `mmap_lock` readers, fault mutexes, own-mm flushes) is
/// exercised beyond the reductions above.
#[test]
fn the_alone_rule_changes_no_result_on_any_builtin_scenario() {
    let mut applied = 0;
    for (name, _) in mmsim::scenario::BUILTIN {
        let p = prepare(builtin(name), None, None, &[]);
        for bound in 0..=1 {
            let run = |alone| {
                let cfg = DfsConfig {
                    preemptions: bound,
                    min_severity: Severity::Warning,
                    alone,
                    final_states: true,
                    ..DfsConfig::default()
                };
                let s = dfs::search(&p, &cfg);
                assert!(s.exhaustive(), "{name}: {s}");
                let sigs: BTreeSet<_> = s.groups.iter().map(|g| g.signature.clone()).collect();
                let finals: BTreeSet<u64> = s.final_states.iter().copied().collect();
                (sigs, finals, s.bounds.iter().map(|b| b.alone).sum::<u64>())
            };
            let (sigs, finals, fired) = run(true);
            let (all_sigs, all_finals, _) = run(false);
            assert_eq!(sigs, all_sigs, "{name} bound {bound}: signatures");
            assert_eq!(finals, all_finals, "{name} bound {bound}: end states");
            applied += u64::from(fired > 0 && bound == 1);
        }
    }
    assert!(applied * 2 > mmsim::scenario::BUILTIN.len() as u64, "applied on {applied}");
}
