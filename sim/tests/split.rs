//! VMA splits (`__split_vma()`) by partial munmap and `mmap(MAP_FIXED)`, and where each
//! profile unshares the PMD table straddling the split (kernel-notes §3.5, §9.7).

mod common;
use common::{builtin, prepare};

use mmsim::run::{Prepared, Request};
use mmsim::scenario::Source;
use mmsim_arch::configs;
use mmsim_traces::{Access, Actor, ReportKind, Verdict};

fn prepared_src(src: Source, arch: &str, profile: &str) -> Prepared {
    prepare(src, Some(arch), Some(profile), &[])
}

fn prepared(scenario: &str, arch: &str, profile: &str) -> Prepared {
    prepared_src(builtin(scenario), arch, profile)
}

fn inline(name: &str, text: &str) -> Source {
    common::inline(&format!("{name}.ron"), text)
}

/// The first seed in `seeds` whose run reports `kind`.
fn first(p: &Prepared, seeds: std::ops::Range<u64>, kind: ReportKind) -> Option<u64> {
    seeds.into_iter().find(|&s| {
        let (t, out) = p.run_seed(s, false).unwrap();
        out.verdict == Verdict::Violation && t.reports.iter().any(|r| r.kind == kind)
    })
}

fn all_clean(p: &Prepared, seeds: std::ops::Range<u64>, what: &str) {
    for s in seeds {
        let (t, out) = p.run_seed(s, false).unwrap();
        assert_eq!(out.verdict, Verdict::Clean, "{what} seed {s}: {:#?}", t.reports);
    }
}

#[test]
fn split_race_found_before_v6_16_and_clean_after_on_every_sharing_config() {
    for c in configs().iter().filter(|c| c.format.pmd_sharing().is_ok()) {
        for profile in ["v6.1", "v6.3", "v6.15"] {
            let p = prepared("split-unshare", c.name, profile);
            assert!(
                first(&p, 0..300, ReportKind::SplitShared).is_some(),
                "{} {profile}: no split_shared report in seeds 0..300",
                c.name
            );
        }
        let n = if c.format.ptrs_per_table() > 512 { 40 } else { 150 };
        for profile in ["v6.16", "latest"] {
            all_clean(&prepared("split-unshare", c.name, profile), 0..n, c.name);
        }
    }
}

#[test]
fn split_switch_overrides_the_profile() {
    let mut req = Request {
        source: Source::load("split-unshare").unwrap(),
        arch: Some("x86_64".into()),
        profile: Some("latest".into()),
        set: vec!["split_unshare=may_split".into()],
    };
    let p = Prepared::new(&req).unwrap();
    assert!(first(&p, 0..300, ReportKind::SplitShared).is_some());
    req.set = vec!["split_unshare=sometimes".into()];
    let e = Prepared::new(&req).err().expect("bad value refused").to_string();
    assert!(e.contains("split_unshare") && e.contains("in_split"), "{e}");
}

/// A and B share the table; A unmaps one huge page in the middle. The split unshares A (the
/// profile decides where), the unmap of the middle finds nothing left to share, and teardown
/// finds correct share counts and no leaked tables.
const SHARED_THEN_SPLIT: &str = r#"Scenario(
    name: "shared-then-split",
    setup: [
        MapFile(mm: "A", file: "huge", at: "PUD", len: "PUD", shared: true),
        MapFile(mm: "B", file: "huge", at: "PUD", len: "PUD", shared: true),
        Touch(mm: "A", at: "PUD"),
        Touch(mm: "B", at: "PUD+PMD"),
    ],
    cpus: [ (mm: "A", ops: [Munmap(at: "PUD+PMD", len: "PMD"), Access(at: "PUD")]) ],
)"#;

#[test]
fn split_unshares_and_leaves_no_shared_table_or_leak() {
    for (profile, unsharer) in [("v6.3", "hugetlb_vm_op_split"), ("v6.16", "vma_prepare")] {
        let p = prepared_src(inline("shared-then-split", SHARED_THEN_SPLIT), "x86_64", profile);
        let (t, out) = p.run_seed(0, true).unwrap();
        assert_eq!(out.verdict, Verdict::Clean, "{profile}: {:#?}", t.reports);
        // CPU0's munmap unshared A's PUD exactly once, inside the split
        let unshares: Vec<_> = t
            .events
            .iter()
            .filter(|e| e.actor == Actor::Cpu(0) && e.access == Access::Unshare)
            .collect();
        assert_eq!(unshares.len(), 1, "{profile}: {unshares:#?}");
        assert_eq!(unshares[0].func, "huge_pmd_unshare");
        // the unshare ran where the profile puts it: after may_split's VMA read (v6.3) or
        // after vma_prepare() took i_mmap_rwsem (v6.16)
        let before =
            t.events.iter().rev().find(|e| {
                e.actor == Actor::Cpu(0) && e.step < unshares[0].step && e.func == unsharer
            });
        assert!(before.is_some(), "{profile}: no {unsharer} before the unshare");
    }
    // v6.1 splits without unsharing: the checker catches the straddling shared table
    let p = prepared_src(inline("shared-then-split", SHARED_THEN_SPLIT), "x86_64", "v6.1");
    let (t, out) = p.run_seed(0, false).unwrap();
    assert_eq!(out.verdict, Verdict::Violation);
    assert_eq!(t.reports[0].kind, ReportKind::SplitShared, "{:#?}", t.reports);
    assert!(t.reports[0].text.contains("no VMA covers the PUD range"), "{}", t.reports[0].text);
}

#[test]
fn mmap_fixed_and_mprotect_split_like_munmap() {
    // the same race with a partial mprotect, and mmap(MAP_FIXED) of anonymous memory and of
    // another hugetlbfs file
    for (name, op) in [
        ("mprotect", r#"Mprotect(at: "PUD+PMD", len: "PMD", write: false)"#),
        ("anon", r#"MmapFixedAnon(at: "PUD+PMD", len: "PMD")"#),
        ("file", r#"MmapFixed(file: "other", at: "PUD+PMD", len: "PMD")"#),
    ] {
        let text = format!(
            r#"Scenario(
    name: "fixed-{name}",
    setup: [
        MapFile(mm: "A", file: "huge", at: "PUD", len: "PUD", shared: true),
        MapFile(mm: "B", file: "huge", at: "PUD", len: "PUD", shared: true),
        Touch(mm: "A", at: "PUD"),
    ],
    cpus: [
        (mm: "A", ops: [{op}, Fault(at: "PUD+PMD"), Access(at: "PUD+PMD", write: true)]),
        (mm: "B", ops: [Fault(at: "PUD")]),
    ],
)"#
        );
        let src = || inline(name, &text);
        let old = prepared_src(src(), "x86_64", "v6.15");
        assert!(first(&old, 0..400, ReportKind::SplitShared).is_some(), "{name}: no race");
        all_clean(&prepared_src(src(), "arm64-4k", "v6.16"), 0..150, name);
        all_clean(&prepared_src(src(), "x86_64", "latest"), 0..150, name);
    }
}

#[test]
fn anonymous_partial_munmap_splits_and_frees_nothing_shared() {
    let text = r#"Scenario(
    name: "anon-split",
    setup: [
        MapAnon(mm: "A", at: "PUD", len: "16*PAGE"),
        Touch(mm: "A", at: "PUD"),
        Touch(mm: "A", at: "PUD+8*PAGE"),
    ],
    cpus: [
        (mm: "A", ops: [Munmap(at: "PUD+4*PAGE", len: "4*PAGE"), Access(at: "PUD+8*PAGE")]),
        (mm: "A", ops: [Fault(at: "PUD+12*PAGE"), Access(at: "PUD", write: true)]),
    ],
)"#;
    for c in configs() {
        all_clean(&prepared_src(inline("anon-split", text), c.name, "latest"), 0..40, c.name);
    }
}

#[test]
fn misaligned_hugetlb_split_is_refused_like_einval() {
    let text = r#"Scenario(
    name: "misaligned",
    setup: [ MapFile(mm: "A", file: "huge", at: "PUD", len: "PUD", shared: true) ],
    cpus: [ (mm: "A", ops: [Munmap(at: "PUD+PMD", len: "PAGE")]) ],
)"#;
    let req = Request {
        source: inline("misaligned", text),
        arch: Some("x86_64".into()),
        profile: None,
        set: vec![],
    };
    let e = Prepared::new(&req).err().expect("refused").to_string();
    assert!(e.starts_with("misaligned.ron: cpus[0].ops[0]"), "{e}");
    assert!(e.contains("-EINVAL") && e.contains("hugetlb_vm_op_split"), "{e}");
    assert!(e.contains("at 0x40201000"), "{e}");
}

#[test]
fn a_misaligned_split_of_a_mapping_made_at_run_time_fails_with_einval() {
    // the hugetlb mapping appears only in the concurrent phase, so the scenario check cannot
    // see it: __split_vma() refuses at run time and the munmap unmaps nothing
    let text = r#"Scenario(
    name: "einval",
    setup: [ MapAnon(mm: "A", at: "PUD", len: "PUD") ],
    cpus: [ (mm: "A", ops: [
        MmapFixed(file: "huge", at: "PUD", len: "PUD"),
        Fault(at: "PUD+PMD"),
        Munmap(at: "PUD+PMD", len: "PAGE"),
        Access(at: "PUD+PMD", write: true),
    ]) ],
)"#;
    let p = prepared_src(inline("einval", text), "x86_64", "latest");
    let (t, out) = p.run_seed(0, true).unwrap();
    assert_eq!(out.verdict, Verdict::Clean, "{:#?}", t.reports);
    let op2 = |e: &&mmsim_traces::Event| e.actor == Actor::Cpu(0) && e.op == 2;
    let refused: Vec<_> = t
        .events
        .iter()
        .filter(op2)
        .filter(|e| e.func == "hugetlb_vm_op_split" && e.detail.contains("-EINVAL"))
        .collect();
    assert_eq!(refused.len(), 1, "{refused:#?}");
    assert!(t.events.iter().filter(op2).all(|e| e.func != "__unmap_hugepage_range_final"));
    // the page is still mapped: the store after the failed munmap does not fault
    assert!(t.events.iter().filter(|e| e.op == 3).all(|e| e.func != "hugetlb_fault"));
}

#[test]
fn too_many_splits_for_the_fixed_vma_bound_are_refused() {
    let maps: String = (1..=8)
        .map(|i| format!("MapAnon(mm: \"A\", at: \"{i}*PUD\", len: \"16*PAGE\"),"))
        .collect();
    let cuts: String =
        (1..=5).map(|i| format!("Munmap(at: \"{i}*PUD+4*PAGE\", len: \"PAGE\"),")).collect();
    let text =
        format!("Scenario(name: \"many\", setup: [{maps}], cpus: [(mm: \"A\", ops: [{cuts}])])");
    let req = Request { source: inline("many", &text), arch: None, profile: None, set: vec![] };
    let e = Prepared::new(&req).err().expect("refused").to_string();
    assert!(e.contains("could reach 18 VMAs") && e.contains("at most 16"), "{e}");
}

/// CVE-2025-38084's other half: a fault of the splitting process itself, under the per-VMA
/// lock, re-shares the table `->may_split()` just unshared, before `vma_start_write()`.
/// v6.1: nothing unshares at the split at all; v6.3 to v6.8: the fault takes `mmap_lock` and
/// waits for the munmap; v6.9 (hugetlb faults under the per-VMA lock) to v6.15: found;
/// v6.16 unshares after `vma_start_write()`.
#[test]
fn a_fault_under_the_per_vma_lock_reshares_before_the_split_until_v6_16() {
    let p = |profile| prepared("split-vs-vma-locked-fault", "x86_64", profile);
    for profile in ["v6.1", "v6.9", "v6.15"] {
        let seed = first(&p(profile), 0..300, ReportKind::SplitShared);
        assert!(seed.is_some(), "{profile}: no split_shared in seeds 0..300");
    }
    for profile in ["v6.3", "v6.8", "v6.16", "latest"] {
        all_clean(&p(profile), 0..300, profile);
    }
    // the v6.15 race is the fault's: it held the per-VMA lock, not mmap_lock, and shared the
    // table back into A after the unshare and before the split write-locked the VMA
    let v615 = p("v6.15");
    let seed = first(&v615, 0..300, ReportKind::SplitShared).unwrap();
    let (t, _) = v615.run_seed(seed, true).unwrap();
    let step_of = |actor: Actor, func: &str, access: Access| {
        t.events
            .iter()
            .find(|e| e.actor == actor && e.func == func && e.access == access)
            .map(|e| e.step)
    };
    let unshared = step_of(Actor::Cpu(0), "hugetlb_unshare_pmds", Access::LockWrite).unwrap();
    let locked = step_of(Actor::Cpu(1), "lock_vma_under_rcu", Access::LockRead).unwrap();
    let shared = step_of(Actor::Cpu(1), "huge_pmd_share", Access::Share).unwrap();
    let wlock = step_of(Actor::Cpu(0), "__split_vma", Access::LockWrite).unwrap();
    assert!(
        unshared < shared && locked < shared && shared < wlock,
        "{unshared} {locked} {shared} {wlock}"
    );
    assert!(
        !t.events
            .iter()
            .any(|e| e.actor == Actor::Cpu(1) && e.object == mmsim_traces::Object::MmapLock(0)),
        "the fault never touched mmap_lock"
    );
}
