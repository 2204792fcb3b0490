//! Every checker fires on a scenario built to break its rule, and stays silent on the fix.

mod common;
use common::{assert_clean, builtin, mmsim, prepare, stderr, stdout};

use mmsim::run::{Prepared, Request};
use mmsim::scenario::Source;
use mmsim_traces::{Report, ReportKind, Severity, Verdict};

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

/// The first seed in 0..2000 whose run has a report of `kind` in `func`, and that report.
fn first_report(p: &Prepared, kind: ReportKind, func: &str) -> Option<(u64, Report)> {
    (0..2000).find_map(|s| {
        let (t, _) = p.run_seed(s, false).unwrap();
        t.reports.into_iter().find(|r| r.kind == kind && r.at.func == func).map(|r| (s, r))
    })
}

#[test]
fn wrong_mm_fires_when_a_fault_writes_into_an_unshared_table() {
    let p = prepared("fault-vs-unshare", "v4.20", &[]);
    let (_, r) = first_report(&p, ReportKind::WrongMm, "set_huge_pte_at")
        .expect("the fault's PTE lands in a table its mm no longer maps");
    assert!(r.text.contains("Write of pmd["), "{}", r.text);
    assert!(r.text.contains("the write lands in the tables of B, not in mm A's own"), "{}", r.text);
    assert!(r.text.contains("Unlinked from mm A by:\n  CPU1 in huge_pmd_unshare"), "{}", r.text);
    assert_eq!(r.unlinked.as_ref().map(|s| s.func.as_str()), Some("huge_pmd_unshare"));
    // the fault's read of the empty entry just before is only stale: nothing obtained
    let (_, r) = first_report(&p, ReportKind::StaleWalk, "hugetlb_no_page").expect("stale read");
    assert!(r.text.contains("the entry is empty, so the walk obtained nothing"), "{}", r.text);
    assert_eq!(r.kind.severity(), Severity::Warning);
}

#[test]
fn a_walk_through_an_unshared_table_that_reads_its_own_mapping_is_stale_not_wrong() {
    let p = prepared("gup-stale-walk", "v6.1", &[]);
    let (seed, r) =
        first_report(&p, ReportKind::StaleWalk, "follow_hugetlb_page").expect("a stale walk");
    assert!(r.title.starts_with("WARNING: stale walk"), "{}", r.title);
    assert!(r.text.contains("which mm A's VMA maps there too"), "{}", r.text);
    assert!(r.text.contains("hugetlb_walk() rule 2.3"), "{}", r.text);
    assert!(r.text.contains("(index 0 of file huge)"), "{}", r.text);
    assert_eq!(r.unlinked.as_ref().map(|s| s.func.as_str()), Some("huge_pmd_unshare"));
    // no seed of this scenario is anything worse: the table is never freed, nothing else maps
    for s in 0..500 {
        let (t, _) = p.run_seed(s, false).unwrap();
        assert!(
            t.reports.iter().all(|r| r.kind == ReportKind::StaleWalk),
            "seed {s}: {:?}",
            t.reports
        );
    }
    // a warning is printed but not counted unless asked for
    let seed = seed.to_string();
    let o = mmsim(&["run", "gup-stale-walk", "--seed", &seed]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("only warnings (below --min-severity bug)"), "{}", stdout(&o));
    let o = mmsim(&["run", "gup-stale-walk", "--seed", &seed, "--min-severity", "warning"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    // replay counts the same way
    let t = common::tmp("checkers", "stale.ron");
    let t = t.to_str().unwrap();
    assert_eq!(mmsim(&["run", "gup-stale-walk", "--seed", &seed, "-o", t]).status.code(), Some(0));
    let o = mmsim(&["replay", t]);
    assert!(stdout(&o).contains("identical"), "{}", stdout(&o));
    assert_eq!(o.status.code(), Some(0), "a warning is not counted on replay either");
    assert_eq!(mmsim(&["replay", t, "--min-severity", "warning"]).status.code(), Some(1));
    let o = mmsim(&["run", "gup-stale-walk", "--seeds", "1000"]);
    assert_eq!(o.status.code(), Some(0), "--seeds skips warning-only seeds: {}", stdout(&o));
    let o =
        mmsim(&["explore", "gup-stale-walk", "--runs", "300", "--min-severity", "memory-safety"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("warning stale_walk@follow_hugetlb_page in "), "{}", stdout(&o));
    let o = mmsim(&["explore", "gup-stale-walk", "--runs", "300", "--min-severity", "warning"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("violation stale_walk@follow_hugetlb_page in "), "{}", stdout(&o));
    let o = mmsim(&["run", "gup-stale-walk", "--min-severity", "fatal"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("unknown severity `fatal` (one of: warning, bug, memory-safety)"),
        "{}",
        stderr(&o)
    );
    // v6.3's GUP holds the vma lock: the unshare waits, no stale read
    assert_clean(&prepared("gup-stale-walk", "v6.3", &[]), 300, "gup-stale-walk v6.3");
}

#[test]
fn a_walk_that_obtains_another_files_page_is_wrong_mm() {
    let p = prepared("gup-vs-reuse", "v6.1", &[]);
    let (_, r) =
        first_report(&p, ReportKind::WrongMm, "follow_hugetlb_page").expect("a wrong-mm read");
    assert_eq!(r.kind.severity(), Severity::MemorySafety);
    assert!(r.text.contains("Read of pmd[0]"), "{}", r.text);
    assert!(
        r.text.contains("it leaks page pfn 0x100200 (index 0 of file other) of B"),
        "{}",
        r.text
    );
    assert!(
        r.text.contains("mm A's VMA maps page pfn 0x100000 (index 0 of file huge) there"),
        "{}",
        r.text
    );
    assert!(r.text.contains("\nAllocated by:\n") && r.text.contains("\nUnlinked from mm A by:\n"));
    // v6.3 holds the vma lock across the walk: no walk through the unshared table at all
    let fixed = prepared("gup-vs-reuse", "v6.3", &[]);
    for s in 0..300 {
        let (t, _) = fixed.run_seed(s, false).unwrap();
        assert!(
            t.reports
                .iter()
                .all(|r| !matches!(r.kind, ReportKind::WrongMm | ReportKind::StaleWalk)),
            "seed {s}: {:?}",
            t.reports
        );
    }
}

#[test]
fn a_schema_4_trace_whose_reports_are_judged_differently_now_is_refused_naming_both() {
    let dir = common::fresh_dir("checkers", "schema4");
    std::fs::create_dir_all(&dir).unwrap();
    let now = dir.join("stale.ron");
    let o = mmsim(&["run", "gup-vs-unshare", "--seed", "5", "-o", now.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "seed 5 is a stale walk only: {}", stdout(&o));
    // what schema 4 recorded for the same run: the walk as wrong mm, without an unlink site
    let mut t = mmsim_traces::read(&now).unwrap();
    t.header.schema_version = 4;
    for r in &mut t.reports {
        r.kind = ReportKind::WrongMm;
        r.unlinked = None;
    }
    let old = dir.join("schema4.ron");
    mmsim_traces::write_atomic(&old, &t).unwrap();
    let o = mmsim(&["replay", old.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    let err = stderr(&o);
    assert!(err.contains("every event matches but the reports differ"), "{err}");
    assert!(
        err.contains("[wrong_mm@follow_hugetlb_page]")
            && err.contains("[stale_walk@follow_hugetlb_page]"),
        "{err}"
    );
    assert!(err.contains("the trace is schema 4; from schema 5 on"), "{err}");
    // the trace this mmsim wrote replays
    let o = mmsim(&["replay", now.to_str().unwrap()]);
    assert!(stdout(&o).contains("identical"), "{}", stdout(&o));
    let _ = std::fs::remove_dir_all(&dir);
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
