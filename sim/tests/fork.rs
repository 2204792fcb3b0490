//! `fork()` of shared hugetlb mappings: `dup_mmap()` and `copy_hugetlb_page_range()`, lazy
//! page-table copy (bcd51a3c679d) and the shared-table test that `pt_share_count` broke
//! until 14967a9c7d24 (kernel-notes §3.3, §3.6).

mod common;
use common::prepare;

use mmsim::run::{Prepared, Request};
use mmsim::scenario::Source;
use mmsim_arch::configs;
use mmsim_traces::{Access, Actor, ReportKind, Trace, Verdict};

fn prepared_src(src: Source, arch: &str, profile: &str, set: &[&str]) -> Prepared {
    prepare(src, Some(arch), Some(profile), set)
}

fn builtin(arch: &str, profile: &str) -> Prepared {
    prepared_src(common::builtin("fork-copy-shared"), arch, profile, &[])
}

fn inline(text: &str) -> Source {
    common::inline("fork.ron", text)
}

fn count(t: &Trace, actor: Actor, func: &str, access: Access) -> usize {
    t.events.iter().filter(|e| e.actor == actor && e.func == func && e.access == access).count()
}

#[test]
fn copying_fork_locks_up_from_v6_13_until_2025_10_where_tables_are_shared() {
    for c in configs() {
        let sharing = c.format.pmd_sharing().is_ok();
        for profile in ["v6.13", "v6.16"] {
            let (t, out) = builtin(c.name, profile).run_seed(0, false).unwrap();
            if sharing {
                assert_eq!(out.verdict, Verdict::Violation, "{} {profile}", c.name);
                let r = &t.reports[0];
                assert_eq!(r.kind, ReportKind::Deadlock, "{} {profile}: {:#?}", c.name, t.reports);
                assert!(r.text.contains("copy_hugetlb_page_range waits for ptlock"), "{}", r.text);
                assert!(r.text.contains("held by CPU0"), "{}", r.text);
            } else {
                // no sharing, so the child's table really is private
                assert_eq!(out.verdict, Verdict::Clean, "{} {profile}: {:#?}", c.name, t.reports);
            }
        }
        let seeds = if c.format.ptrs_per_table() > 512 { 3 } else { 20 };
        for profile in ["v6.1", "latest"] {
            let p = builtin(c.name, profile);
            for s in 0..seeds {
                let (t, out) = p.run_seed(s, false).unwrap();
                assert_eq!(
                    out.verdict,
                    Verdict::Clean,
                    "{} {profile} {s}: {:#?}",
                    c.name,
                    t.reports
                );
            }
        }
    }
}

const FORK_ALONE: &str = r#"Scenario(
    name: "fork-alone",
    setup: [
        MapFile(mm: "A", file: "huge", at: "PUD", len: "PUD", shared: true),
        Touch(mm: "A", at: "PUD"),
        Touch(mm: "A", at: "PUD+PMD"),
    ],
    cpus: [ (mm: "A", ops: [Fork(child: "C")]) ],
)"#;

#[test]
fn copy_shares_the_parent_table_or_copies_entries_where_it_cannot() {
    // x86_64, copying fork (v6.1 with the lazy copy reverted): C's huge_pte_alloc() shares A's
    // table, the page-count test sees it shared and copies nothing
    let p = prepared_src(inline(FORK_ALONE), "x86_64", "v6.1", &["lazy_fork_copy=false"]);
    let (t, out) = p.run_seed(0, true).unwrap();
    assert_eq!(out.verdict, Verdict::Clean, "{:#?}", t.reports);
    assert_eq!(count(&t, Actor::Cpu(0), "huge_pmd_share", Access::Share), 1);
    assert_eq!(count(&t, Actor::Cpu(0), "copy_hugetlb_page_range", Access::Write), 0);
    // arm64-64k cannot share: C gets its own table and both entries are copied into it
    let p = prepared_src(inline(FORK_ALONE), "arm64-64k", "v6.1", &["lazy_fork_copy=false"]);
    let (t, out) = p.run_seed(0, true).unwrap();
    assert_eq!(out.verdict, Verdict::Clean, "{:#?}", t.reports);
    assert_eq!(count(&t, Actor::Cpu(0), "huge_pmd_share", Access::Share), 0);
    assert_eq!(count(&t, Actor::Cpu(0), "copy_hugetlb_page_range", Access::Write), 2);
    // lazy copy (v6.0 on): fork copies no page tables at all
    let p = prepared_src(inline(FORK_ALONE), "x86_64", "latest", &[]);
    let (t, out) = p.run_seed(0, true).unwrap();
    assert_eq!(out.verdict, Verdict::Clean, "{:#?}", t.reports);
    assert!(t.events.iter().all(|e| e.func != "copy_hugetlb_page_range"));
}

#[test]
fn the_child_faults_and_shares_after_a_lazy_fork() {
    let text = r#"Scenario(
    name: "fork-then-fault",
    setup: [
        MapFile(mm: "A", file: "huge", at: "PUD", len: "PUD", shared: true),
        Touch(mm: "A", at: "PUD"),
        Fork(mm: "A", child: "C"),
    ],
    cpus: [
        (mm: "C", ops: [Fault(at: "PUD+PMD"), Access(at: "PUD", write: true)]),
        (mm: "A", ops: [MadviseDontneed(at: "PUD", len: "PMD")]),
    ],
)"#;
    for c in configs().iter().filter(|c| c.format.pmd_sharing().is_ok()) {
        let p = prepared_src(inline(text), c.name, "latest", &[]);
        let seeds = if c.format.ptrs_per_table() > 512 { 5 } else { 40 };
        let mut shared = 0;
        for s in 0..seeds {
            let (t, out) = p.run_seed(s, true).unwrap();
            assert_eq!(out.verdict, Verdict::Clean, "{} {s}: {:#?}", c.name, t.reports);
            shared += count(&t, Actor::Cpu(0), "huge_pmd_share", Access::Share);
        }
        assert!(shared > 0, "{}: the child never shared the parent's table", c.name);
    }
}

#[test]
fn forks_the_model_cannot_do_are_refused() {
    for (text, want) in [
        (
            r#"Scenario(name: "x", setup: [MapAnon(mm: "A", at: "PUD", len: "PAGE")], cpus: [(mm: "A", ops: [Fork(child: "C")])])"#,
            "copy-on-write of PTE-mapped anonymous pages at fork is not modelled",
        ),
        (
            r#"Scenario(name: "x", setup: [MapFile(mm: "A", file: "f", at: "PUD", len: "PUD"), MapFile(mm: "C", file: "f", at: "PUD", len: "PUD")], cpus: [(mm: "A", ops: [Fork(child: "C")])])"#,
            "mm C already exists",
        ),
    ] {
        let req = Request { source: inline(text), arch: None, profile: None, set: vec![] };
        let e = Prepared::new(&req).err().expect("refused").to_string();
        assert!(e.starts_with("fork.ron: cpus[0].ops[0]") && e.contains(want), "{e}");
    }
}
