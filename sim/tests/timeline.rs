//! Profiles added along the kernel-notes timeline (§2): v6.8 (riscv RCU table free and
//! GUP-fast), v6.19 (unshare through mmu_gather: sync only for tables left exclusive, arm64
//! leaf-only flush) and 2026 (arm64 non-leaf flush after an unshare).

mod common;
use common::prepare;

use mmsim::profile::{by_name, latest, profiles};
use mmsim::run::Prepared;
use mmsim::scenario::Source;
use mmsim_traces::{Actor, ReportKind, Verdict};

fn prepared(src: Source, arch: &str, profile: &str) -> Prepared {
    prepare(src, Some(arch), Some(profile), &[])
}

#[test]
fn the_timeline_has_the_new_profiles_in_order_each_with_its_commit() {
    let names: Vec<_> = profiles().iter().map(|p| p.name).collect();
    let pos = |n: &str| names.iter().position(|x| *x == n).unwrap_or_else(|| panic!("{n}"));
    assert!(pos("v6.5") < pos("v6.8") && pos("v6.8") < pos("v6.13"));
    assert!(pos("2025-10") < pos("v6.19") && pos("v6.19") < pos("2026"));
    assert_eq!(latest().name, "2026");
    for (name, commit) in
        [("v6.8", "69be3fb111e7"), ("v6.19", "8ce720d5bd91"), ("2026", "c2ff4764e03e")]
    {
        assert!(by_name(name).unwrap().doc.contains(commit), "{name}");
    }
    let v68 = by_name("v6.8").unwrap().switches;
    assert!(v68.riscv_gup_fast && !by_name("v6.5").unwrap().switches.riscv_gup_fast);
    let v619 = by_name("v6.19").unwrap().switches;
    assert!(v619.unshare_flush_leaf_only && v619.unshare_sync_exclusive_only);
    assert!(!latest().switches.unshare_flush_leaf_only);
}

#[test]
fn arm64_walk_cache_goes_stale_with_v6_19_only() {
    let stale = |arch: &str, profile: &str, n: u64| {
        let p = prepared(Source::load("tlb-walk-cache").unwrap(), arch, profile);
        (0..n).find(|&s| {
            let (t, out) = p.run_seed(s, false).unwrap();
            out.verdict == Verdict::Violation
                && t.reports.iter().any(|r| r.kind == ReportKind::StaleTlb)
        })
    };
    assert!(stale("arm64-4k", "v6.19", 1500).is_some(), "v6.19 leaves a stale walk cache");
    assert_eq!(stale("arm64-4k", "2026", 1500), None, "c2ff4764e03e flushes walk caches");
    assert_eq!(stale("arm64-4k", "v6.16", 600), None);
    assert_eq!(stale("x86_64", "v6.19", 600), None, "x86 flushes drop paging-structure caches");
}

#[test]
fn v6_19_syncs_only_when_the_unshare_leaves_the_table_exclusive() {
    let text = |sharers: &[&str]| {
        let maps: String = sharers
            .iter()
            .map(|m| {
                format!(
                    "MapFile(mm: \"{m}\", file: \"f\", at: \"PUD\", len: \"PUD\"), Touch(mm: \"{m}\", at: \"PUD\"),"
                )
            })
            .collect();
        format!(
            "Scenario(name: \"sync\", setup: [{maps}], cpus: [(mm: \"A\", ops: [MadviseDontneed(at: \"PUD\", len: \"PMD\")]), (mm: \"B\", ops: [Access(at: \"PUD+PMD\")])])"
        )
    };
    let syncs = |sharers: &[&str], profile: &str| {
        let src = Source { origin: "sync.ron".into(), text: text(sharers) };
        let (t, out) = prepared(src, "arm64-4k", profile).run_seed(0, true).unwrap();
        assert_eq!(out.verdict, Verdict::Clean, "{:#?}", t.reports);
        t.events
            .iter()
            // the sync IPI to CPU1 (an empty smp_call_function())
            .filter(|e| e.actor == Actor::Cpu(0) && e.func == "tlb_remove_table_sync_one")
            .count()
    };
    // A's unshare leaves the table with B and C: v6.16 syncs anyway, v6.19 does not
    assert!(syncs(&["A", "B", "C"], "v6.16") > 0);
    assert_eq!(syncs(&["A", "B", "C"], "v6.19"), 0);
    // left with B alone (fully unshared): both sync
    assert!(syncs(&["A", "B"], "v6.19") > 0);
}
