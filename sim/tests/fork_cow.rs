//! `fork()` of a MAP_PRIVATE hugetlb mapping: `copy_hugetlb_page_range()` write-protects the
//! parent's entry and shares the page read-only with the child, `dup_mmap()` flushes the
//! parent's TLB, and `hugetlb_wp()` copies (or reuses) on the write fault. The built-in
//! scenario fork-cow-private runs the v5.12 bug (`fork_child_writable`: 4eae4efa2c29 left the
//! child's entry writable until 84894e1c42e9) and is clean without it on every profile, each
//! process reading its own data; the mutants (a line of the kernel left out, `Env::mutants`)
//! show the checkers catch a missing write-protect, a missing flush and a flush that loses its
//! IPI.

mod common;
use common::prepare;

use mmsim::env::Mutants;
use mmsim::run::Prepared;
use mmsim_traces::{Access, Actor, Event, Object, ReportKind, Trace, Verdict};

/// The scenario with 84894e1c42e9 applied (the child's entry write-protected too).
fn builtin(arch: &str, profile: &str) -> Prepared {
    prepare(common::builtin("fork-cow-private"), Some(arch), Some(profile), &[FIXED])
}

const FIXED: &str = "fork_child_writable=false";

/// The events of `actor`'s operation `op` in function `func`.
fn events<'t>(t: &'t Trace, actor: Actor, op: u16, func: &str) -> Vec<&'t Event> {
    t.events.iter().filter(|e| e.actor == actor && e.op == op && e.func == func).collect()
}

/// The detail of the user access (`mmu_hw_walk`) that completed `actor`'s operation `op`.
fn access_detail(t: &Trace, actor: Actor, op: u16) -> String {
    let e = events(t, actor, op, "mmu_hw_walk");
    let last = e.last().unwrap_or_else(|| panic!("{actor:?} op {op} made no access"));
    last.detail.clone()
}

const PROFILES: &[&str] = &["v4.20", "v5.7", "v6.1", "v6.4", "v6.9", "v6.16", "latest"];

#[test]
fn each_process_reads_its_own_data_on_every_profile_and_both_cow_paths_run() {
    let (mut copies, mut reuses) = (0, 0);
    for profile in PROFILES {
        let p = builtin("x86_64", profile);
        for seed in 0..40 {
            let (t, out) = p.run_seed(seed, true).unwrap();
            assert_eq!(out.verdict, Verdict::Clean, "{profile} {seed}: {:#?}", t.reports);
            // CPU0 (A): store, store, load; CPU1 (C): store, load
            let a = access_detail(&t, Actor::Cpu(0), 2);
            assert!(a.ends_with("reads mm A's data"), "{profile} {seed}: A read: {a}");
            let c = access_detail(&t, Actor::Cpu(1), 1);
            assert!(c.ends_with("reads mm C's data"), "{profile} {seed}: C read: {c}");
            for e in t.events.iter().filter(|e| e.func == "hugetlb_wp" && e.object_is_page()) {
                if e.detail.ends_with("copy") {
                    copies += 1;
                } else if e.detail.ends_with("reuse") {
                    reuses += 1;
                }
            }
        }
    }
    // the second writer of a page mapped twice copies it; the last one mapping it reuses it
    assert!(copies > 0 && reuses > 0, "copies {copies}, reuses {reuses}");
}

trait PageEvent {
    fn object_is_page(&self) -> bool;
}

impl PageEvent for Event {
    fn object_is_page(&self) -> bool {
        matches!(self.object, Object::Page(_)) && self.access == Access::Read
    }
}

#[test]
fn the_v5_12_child_entry_stays_writable_and_the_childs_store_lands_in_the_parents_page() {
    // the scenario's own configuration: v5.7 with fork_child_writable=true
    let p = prepare(common::builtin("fork-cow-private"), None, None, &[]);
    let (t, out) = p.run_seed(0, true).unwrap();
    assert_eq!(out.verdict, Verdict::Violation);
    let r = &t.reports[0];
    assert_eq!((r.kind, r.at.actor), (ReportKind::CowViolation, Actor::Cpu(1)), "{}", r.text);
    assert!(r.text.contains("through mm C's writable entry"), "{}", r.text);
    assert!(r.text.contains("mapped 2 times, also by mm A"), "{}", r.text);
    // the parent's entry was write-protected, the child's copy is the value read before
    let wp = events(&t, Actor::Setup, 2, "huge_ptep_set_wrprotect");
    let copy = events(&t, Actor::Setup, 2, "copy_hugetlb_page_range");
    let set = copy.iter().find(|e| e.access == Access::Write).expect("the child's entry");
    let (parent, child) = (wp[0].value.unwrap().raw, set.value.unwrap().raw);
    assert_eq!((parent & 2, child & 2), (0, 2), "parent 0x{parent:x} child 0x{child:x}");
    // found on every profile with the switch, in most seeds (not when A copied the page
    // before C's store: then C's writable entry maps a page only C maps)
    for profile in PROFILES {
        let p = prepare(common::builtin("fork-cow-private"), None, Some(profile), &[]);
        let found = (0..100)
            .filter(|&s| p.run_seed(s, false).unwrap().1.verdict == Verdict::Violation)
            .count();
        assert!(found > 50 && found < 100, "{profile}: found in {found} of 100");
    }
}

#[test]
fn fork_write_protects_the_parent_and_maps_the_page_read_only_in_the_child() {
    let p = builtin("x86_64", "latest");
    let (t, _) = p.run_seed(0, true).unwrap();
    // setup op 2 is Fork(A -> C)
    let wp = events(&t, Actor::Setup, 2, "huge_ptep_set_wrprotect");
    assert_eq!(wp.len(), 1, "one entry write-protected");
    let copy = events(&t, Actor::Setup, 2, "copy_hugetlb_page_range");
    let set: Vec<_> = copy.iter().filter(|e| e.access == Access::Write).collect();
    assert_eq!(set.len(), 1);
    assert!(set[0].detail.ends_with("refcount 2 mapcount 2"), "{}", set[0].detail);
    // the parent's and the child's entries are the same read-only value (x86: RW is bit 1)
    let (parent, child) = (wp[0].value.unwrap().raw, set[0].value.unwrap().raw);
    assert_eq!(parent, child);
    assert_eq!(parent & 2, 0, "entry 0x{parent:x} still writable");
    // flush_tlb_mm(oldmm) after the copy, before mmap_write_unlock(oldmm)
    let flush = t.events.iter().position(|e| e.actor == Actor::Setup && e.func == "flush_tlb_mm");
    let unlock = t.events.iter().rposition(|e| {
        e.actor == Actor::Setup
            && e.op == 2
            && e.func == "dup_mmap"
            && e.object == Object::MmapLock(0)
            && e.access == Access::UnlockWrite
    });
    assert!(flush.is_some() && flush < unlock, "flush {flush:?} unlock {unlock:?}");
}

#[test]
fn the_cow_copy_replaces_the_entry_under_the_ptl_in_the_kernels_order() {
    let p = builtin("x86_64", "latest");
    let mut seen = false;
    for seed in 0..40 {
        let (t, _) = p.run_seed(seed, true).unwrap();
        for (actor, op) in [(Actor::Cpu(0), 0), (Actor::Cpu(1), 0)] {
            let steps: Vec<(&str, Access)> = t
                .events
                .iter()
                .filter(|e| e.actor == actor && e.op == op)
                .map(|e| (e.func.as_str(), e.access))
                .skip_while(|&(f, a)| !(f == "hugetlb_wp" && a == Access::Read))
                .collect();
            let Some(i) = t.events.iter().position(|e| {
                e.actor == actor
                    && e.op == op
                    && e.func == "hugetlb_wp"
                    && e.detail.ends_with("copy")
            }) else {
                continue;
            };
            seen = true;
            let funcs: Vec<&str> = steps.iter().map(|s| s.0).collect();
            let at = |f: &str| funcs.iter().position(|x| *x == f).unwrap_or(usize::MAX);
            // folio_get, unlock, alloc, copy, relock + pte_same, clear + flush, set, unlock, puts
            assert!(at("alloc_hugetlb_folio") < at("copy_user_large_folio"), "{funcs:?}");
            assert!(at("copy_user_large_folio") < at("huge_ptep_clear_flush"), "{funcs:?}");
            let clear = at("huge_ptep_clear_flush");
            assert_eq!(steps[clear].1, Access::Write, "{funcs:?}");
            assert_eq!(steps[clear + 1], ("huge_ptep_clear_flush", Access::TlbFlush), "{funcs:?}");
            assert!(clear < at("set_huge_pte_at") && at("set_huge_pte_at") < at("folio_put"));
            // the ptl is held from the pte_same() recheck to the set
            let relock = (0..clear).rev().find(|&k| steps[k] == ("hugetlb_wp", Access::LockWrite));
            assert!(relock.is_some_and(|r| r > at("copy_user_large_folio")), "{funcs:?}");
            // the two puts of this copy (a store may fault twice: the second fork can
            // write-protect the entry again between the fault and the retried access)
            let puts: Vec<&Event> = t.events[i..]
                .iter()
                .filter(|e| e.actor == actor && e.op == op && e.func == "folio_put")
                .take(2)
                .collect();
            assert_eq!(puts.len(), 2);
            let d = &puts[1].detail;
            // the new page is the writer's alone; the old one keeps the other processes'
            // mappings (C's, and D's after the second fork), one reference each
            assert!(d.ends_with("refcount 1 mapcount 1"), "{d}");
            let old = d.split("; new page").next().unwrap();
            let n: Vec<u32> =
                old.split(' ').filter_map(|w| w.trim_end_matches(';').parse().ok()).collect();
            assert!(n.len() == 2 && n[0] == n[1] && n[0] >= 1, "{d}");
            // (not necessarily one less than the decision saw: the fault of C does not
            // exclude A's fork into D, which can map the old page meanwhile)
        }
    }
    assert!(seen, "no seed copied");
}

const MUNMAP_PARENT: &str = r#"Scenario(
    name: "cow-munmap-parent",
    setup: [
        MapFile(mm: "A", file: "huge", at: "PUD", len: "PMD", shared: false),
        Touch(mm: "A", at: "PUD"),
        Fork(mm: "A", child: "C"),
    ],
    cpus: [
        (mm: "A", ops: [Munmap(at: "PUD", len: "PMD")]),
        (mm: "C", ops: [Access(at: "PUD", write: true), Access(at: "PUD")]),
    ],
)"#;

#[test]
fn after_the_parent_unmaps_the_child_reuses_the_page_instead_of_copying() {
    let p = prepare(common::inline("cow.ron", MUNMAP_PARENT), None, Some("latest"), &[]);
    let (mut copied, mut reused) = (false, false);
    for seed in 0..60 {
        let (t, out) = p.run_seed(seed, true).unwrap();
        assert_eq!(out.verdict, Verdict::Clean, "{seed}: {:#?}", t.reports);
        let c = access_detail(&t, Actor::Cpu(1), 1);
        assert!(c.ends_with("reads mm C's data"), "{seed}: {c}");
        let wp = events(&t, Actor::Cpu(1), 0, "hugetlb_wp");
        let decided = wp.iter().find(|e| e.object_is_page()).expect("a COW fault");
        let munmap_first = t.events.iter().position(|e| {
            e.actor == Actor::Cpu(0)
                && e.func == "__unmap_hugepage_range"
                && e.access == Access::Write
        }) < t.events.iter().position(|e| std::ptr::eq(e, *decided));
        if decided.detail.ends_with("reuse") {
            reused = true;
            assert!(munmap_first, "{seed}: reused a page A still maps");
        } else {
            copied = true;
        }
    }
    assert!(copied && reused, "copied {copied} reused {reused}");
}

/// The first seed in 0..`seeds` with a report of `kind`, and that report's text.
fn find(p: &Prepared, seeds: u64, kind: ReportKind) -> Option<(u64, Trace)> {
    (0..seeds).find_map(|s| {
        let (t, _) = p.run_seed(s, true).unwrap();
        t.reports.iter().any(|r| r.kind == kind).then_some((s, t))
    })
}

fn mutant(m: Mutants) -> Prepared {
    let mut p = builtin("x86_64", "latest");
    p.env.mutants = m;
    p
}

#[test]
fn a_fork_that_does_not_write_protect_is_a_cow_violation() {
    let p = mutant(Mutants { fork_no_wrprotect: true, ..Mutants::default() });
    let (seed, t) = find(&p, 20, ReportKind::CowViolation).expect("found");
    let r = t.reports.iter().find(|r| r.kind == ReportKind::CowViolation).unwrap();
    assert!(
        r.text.contains("writable entry: the page was shared without write-protecting it"),
        "{seed}: {}",
        r.text
    );
    assert!(r.title.contains("copy-on-write broken"), "{}", r.title);
}

#[test]
fn a_fork_that_does_not_flush_lets_the_parent_store_into_the_childs_page() {
    let p = mutant(Mutants { fork_no_flush: true, ..Mutants::default() });
    let (seed, t) = find(&p, 400, ReportKind::CowViolation).expect("found");
    let r = t.reports.iter().find(|r| r.kind == ReportKind::CowViolation).unwrap();
    assert_eq!(r.at.actor, Actor::Cpu(0), "{seed}: {}", r.text);
    assert!(r.text.contains("through a TLB entry filled writable"), "{seed}: {}", r.text);
    assert!(r.text.contains("also by mm D"), "{seed}: {}", r.text);
    // nothing claimed a flush, so the stale-TLB checker has nothing to hold it to
    assert!(t.reports.iter().all(|r| r.kind != ReportKind::StaleTlb), "{:#?}", t.reports);
}

#[test]
fn a_fork_flush_that_loses_its_ipi_is_a_stale_writable_tlb_entry() {
    let p = mutant(Mutants { fork_flush_local_only: true, ..Mutants::default() });
    let (seed, t) = find(&p, 400, ReportKind::StaleTlb).expect("found");
    let r = t.reports.iter().find(|r| r.kind == ReportKind::StaleTlb).unwrap();
    assert!(
        r.text.contains("read-only (write-protected): the store bypasses the write fault"),
        "{seed}: {}",
        r.text
    );
    assert!(t.reports.iter().any(|r| r.kind == ReportKind::CowViolation), "{:#?}", t.reports);
}

#[test]
fn every_arch_is_clean_and_catches_the_missing_flush() {
    for c in mmsim_arch::configs() {
        let mut p = builtin(c.name, "latest");
        for seed in 0..8 {
            let (t, out) = p.run_seed(seed, false).unwrap();
            assert_eq!(out.verdict, Verdict::Clean, "{} {seed}: {:#?}", c.name, t.reports);
        }
        p.env.mutants.fork_no_flush = true;
        assert!(find(&p, 400, ReportKind::CowViolation).is_some(), "{}: not found", c.name);
    }
}

#[test]
fn forking_private_anonymous_memory_is_still_refused() {
    let text = r#"Scenario(name: "x", setup: [MapAnon(mm: "A", at: "PUD", len: "PAGE"), MapFile(mm: "A", file: "f", at: "2*PUD", len: "PMD", shared: false)], cpus: [(mm: "A", ops: [Fork(child: "C")])])"#;
    let req = common::request(common::inline("fork.ron", text), None, None, &[]);
    let e = Prepared::new(&req).err().expect("refused").to_string();
    assert!(e.contains("anonymous memory") && e.contains("cpus[0].ops[0]"), "{e}");
}
