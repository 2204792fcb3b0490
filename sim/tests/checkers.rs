//! Every checker fires on a scenario built to break its rule, and stays silent on the fix.

mod common;
use common::{builtin, prepare};

use mmsim::run::{Prepared, Request};
use mmsim::scenario::Source;
use mmsim_traces::{ReportKind, Verdict};

fn prepared(scenario: &str, profile: &str, set: &[&str]) -> Prepared {
    prepare(builtin(scenario), Some("x86_64"), Some(profile), set)
}

/// Report kinds seen over `seeds`, in order of first appearance.
fn kinds(p: &Prepared, seeds: std::ops::Range<u64>) -> Vec<ReportKind> {
    let mut seen = Vec::new();
    for s in seeds {
        let (t, _) = p.run_seed(s, false).unwrap();
        for r in &t.reports {
            if !seen.contains(&r.kind) {
                seen.push(r.kind);
            }
        }
    }
    seen
}

#[test]
fn share_count_and_leak_fire_when_two_locks_fill_one_pud() {
    let k = kinds(&prepared("share-pud-lock", "v6.1", &[]), 0..2000);
    assert!(k.contains(&ReportKind::ShareCount), "{k:?}");
    assert!(k.contains(&ReportKind::Leak), "{k:?}");
    let fixed = kinds(&prepared("share-pud-lock", "v6.5", &[]), 0..2000);
    assert!(fixed.is_empty(), "v6.5 fills the PUD under page_table_lock: {fixed:?}");
}

#[test]
fn wrong_mm_fires_when_a_fault_writes_into_an_unshared_table() {
    let p = prepared("fault-vs-unshare", "v4.20", &[]);
    let found = (0..2000).any(|s| {
        let (t, _) = p.run_seed(s, false).unwrap();
        t.reports.iter().any(|r| {
            r.kind == ReportKind::WrongMm
                && ["hugetlb_fault", "hugetlb_no_page", "set_huge_pte_at"]
                    .contains(&r.at.func.as_str())
        })
    });
    assert!(found, "the fault path reaches a table its mm no longer maps");
}

#[test]
fn hugetlb_walk_contract_fires_like_lockdep_when_the_walker_skips_the_vma_lock() {
    // v6.3 checks hugetlb_walk(); a walker without the vma lock breaks the contract every time
    let p = prepared("gup-vs-unshare", "v6.3", &["walker_vma_lock=false"]);
    let (t, out) = p.run_seed(0, false).unwrap();
    assert_eq!(out.verdict, Verdict::Violation);
    let r = t.reports.iter().find(|r| r.kind == ReportKind::LockContract).expect("contract report");
    assert_eq!(r.at.func, "hugetlb_walk");
    assert!(r.text.contains("mmap_lock(mm0) (read)"), "lockdep lists held locks: {}", r.text);
    // and with the vma lock (the real v6.3) it never fires
    let ok = prepared("gup-vs-unshare", "v6.3", &[]);
    assert!(kinds(&ok, 0..200).is_empty());
}

#[test]
fn mprotect_unsharing_under_mmap_lock_write_is_clean_on_every_profile() {
    for profile in ["v6.0", "v6.1", "v6.3"] {
        let k = kinds(&prepared("gup-vs-mprotect", profile, &[]), 0..300);
        assert!(k.is_empty(), "{profile}: {k:?}");
    }
    // before v6.0 the aligned mprotect also walks the unshared range twice (§10.6), nothing else
    let old = kinds(&prepared("gup-vs-mprotect", "v4.20", &[]), 0..300);
    assert_eq!(old, vec![ReportKind::RangeRevisit]);
}

#[test]
fn private_hugetlb_mappings_never_share_and_get_private_pages() {
    use mmsim_traces::{Access, Object};
    let text = r#"Scenario(name: "private", setup: [
        MapFile(mm: "A", file: "f", at: "PUD", len: "PUD", shared: false),
        MapFile(mm: "B", file: "f", at: "PUD", len: "PUD", shared: false),
        Touch(mm: "A", at: "PUD"), Touch(mm: "B", at: "PUD")],
        cpus: [(mm: "A", ops: [Munmap(at: "PUD", len: "PUD")]), (mm: "B", ops: [GupSlow(at: "PUD")])])"#;
    let req = Request {
        source: Source { origin: "private.ron".into(), text: text.into() },
        arch: None,
        profile: Some("v6.1".into()),
        set: vec![],
    };
    let p = Prepared::new(&req).unwrap();
    for seed in 0..50 {
        let (t, out) = p.run_seed(seed, true).unwrap();
        assert_eq!(out.verdict, Verdict::Clean, "{:#?}", t.reports);
        assert!(
            !t.events.iter().any(|e| e.access == Access::Share),
            "private mappings never share"
        );
        let pages: Vec<Object> = t
            .events
            .iter()
            .filter(|e| e.access == Access::Alloc && matches!(e.object, Object::Page(_)))
            .map(|e| e.object)
            .collect();
        assert_eq!(pages.len(), 2, "each write fault gets its own page: {pages:?}");
        assert_ne!(pages[0], pages[1]);
    }
}

#[test]
fn stale_walk_cache_fires_only_when_the_unshare_flush_is_leaf_only() {
    let arm = |set: &[&str]| {
        let req = Request {
            source: Source::load("tlb-walk-cache").unwrap(),
            arch: Some("arm64-4k".into()),
            profile: Some("v6.3".into()),
            set: set.iter().map(|s| s.to_string()).collect(),
        };
        let p = Prepared::new(&req).unwrap();
        kinds(&p, 0..1500)
    };
    assert!(arm(&[]).is_empty(), "a non-leaf flush drops the walk cache");
    let k = arm(&["unshare_flush_leaf_only=true"]);
    assert!(k.contains(&ReportKind::StaleTlb), "{k:?}");
}

#[test]
fn a_temporary_reference_breaks_refcount_sharing_before_v6_13_only() {
    let old = kinds(&prepared("refcount-share", "v6.1", &[]), 0..500);
    assert!(old.contains(&ReportKind::ShareCount), "Bad page state before v6.13: {old:?}");
    let fixed = kinds(&prepared("refcount-share", "v6.13", &[]), 0..500);
    assert!(fixed.is_empty(), "pt_share_count is immune to temporary references: {fixed:?}");
}

#[test]
fn rcu_walker_hits_the_early_freed_ptlock_only_before_v6_14() {
    let run = |profile: &str| {
        let req = Request {
            source: Source::load("ptlock-early-free").unwrap(),
            arch: None,
            profile: Some(profile.into()),
            set: vec![],
        };
        kinds(&Prepared::new(&req).unwrap(), 0..2000)
    };
    let old = run("v6.13");
    assert!(old.contains(&ReportKind::UseAfterFreePtlock), "{old:?}");
    assert!(
        !old.contains(&ReportKind::UseAfterFreeTable),
        "RCU keeps the table page itself alive: {old:?}"
    );
    let new = run("v6.14");
    assert!(
        !new.contains(&ReportKind::UseAfterFreePtlock)
            && !new.contains(&ReportKind::UseAfterFreeTable),
        "the ptlock dies with the table after the grace period: {new:?}"
    );
}

#[test]
fn hole_punch_on_a_lockless_vma_trips_the_early_assertion_until_2025_10() {
    use mmsim_traces::{Access, Actor};
    let old = kinds(&prepared("punch-hole-nolock", "v6.1", &[]), 0..50);
    assert!(old.contains(&ReportKind::LockRule), "{old:?}");
    let p = prepared("punch-hole-nolock", "2025-10", &[]);
    for seed in 0..100 {
        let (t, out) = p.run_seed(seed, true).unwrap();
        assert_eq!(out.verdict, Verdict::Clean, "{:#?}", t.reports);
        // the lock-less VMA never shares, yet the punch must zap it
        let zapped = t.events.iter().any(|e| {
            e.actor == Actor::Cpu(0)
                && e.func == "__unmap_hugepage_range"
                && e.access == Access::Write
                && e.detail.ends_with(":= 0x0")
        });
        assert!(zapped, "seed {seed}: the hole was not unmapped");
    }
}

#[test]
fn anonymous_memory_faults_into_pte_tables_and_munmap_frees_them() {
    use mmsim_traces::Access;
    for profile in ["v4.20", "v6.1", "latest"] {
        let p = prepared("anon-fault-munmap", profile, &[]);
        for seed in 0..100 {
            let (t, out) = p.run_seed(seed, true).unwrap();
            assert_eq!(out.verdict, Verdict::Clean, "{profile} seed {seed}: {:#?}", t.reports);
            let has = |func: &str, acc: Access| {
                t.events.iter().any(|e| e.func == func && e.access == acc)
            };
            assert!(has("set_pte_at", Access::Write), "faults install PTEs");
            assert!(has("zap_pte_range", Access::Write), "munmap clears PTEs");
            assert!(has("__pte_alloc", Access::Alloc), "faults allocate PTE tables");
            assert!(
                t.events.iter().any(|e| e.access == Access::LockFree),
                "a PTE table's ptlock dies"
            );
        }
    }
}

#[test]
fn unshare_at_an_aligned_address_revisits_the_range_before_v6_0() {
    let old = kinds(&prepared("unshare-addr", "v5.7", &[]), 0..5);
    assert_eq!(old, vec![ReportKind::RangeRevisit]);
    let fixed = kinds(&prepared("unshare-addr", "v6.0", &[]), 0..5);
    assert!(fixed.is_empty(), "{fixed:?}");
}
