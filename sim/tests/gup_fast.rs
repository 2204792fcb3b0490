//! GUP-fast racing a munmap that frees the walked tables (kernel-notes §4.4, §6.4, §6.6):
//! safe on x86_64 native (the free waits for a flush IPI that an IRQs-off CPU cannot take) and
//! on every configuration that frees tables by RCU; a use-after-free where neither holds.

mod common;
use common::{assert_clean, builtin, prepare};

use mmsim::run::{Prepared, Request};
use mmsim::scenario::Source;
use mmsim_arch::{configs, TableFree, TlbFlush};
use mmsim_traces::{Access, Actor, Object, ReportKind, Verdict};

/// v6.1, except riscv64 with v6.14: riscv has GUP-fast from v6.8 and frees tables by RCU in
/// IPI mode too from Qi Zheng's series (see `riscv_before_v6_8_falls_back_to_slow_gup`).
fn prepared(arch: &str, set: &[&str]) -> Prepared {
    let profile = if arch.starts_with("riscv64") { "v6.14" } else { "v6.1" };
    prepare(builtin("gup-fast-vs-munmap"), Some(arch), Some(profile), set)
}

#[test]
fn x86_64_native_is_safe_because_the_flush_ipi_waits_for_irqs_on() {
    let p = prepared("x86_64", &[]);
    assert_eq!(p.env.table_free, TableFree::AfterFlush);
    assert_clean(&p, 2000, "x86_64");
    // The window is exercised: runs where munmap unlinked the tables while CPU0 had IRQs off,
    // and the IPI flush made CPU1 wait until CPU0 re-enabled them before anything was freed.
    let mut exercised = 0;
    for seed in 0..300 {
        let (t, _) = p.run_seed(seed, true).unwrap();
        let step_of = |actor: Actor, access: Access| {
            t.events.iter().find(|e| e.actor == actor && e.access == access).map(|e| e.step)
        };
        let (Some(off), Some(on)) =
            (step_of(Actor::Cpu(0), Access::IrqDisable), step_of(Actor::Cpu(0), Access::IrqEnable))
        else {
            panic!("seed {seed}: CPU0 disables and enables IRQs")
        };
        let queued = t.events.iter().any(|e| {
            e.actor == Actor::Cpu(1) && e.access == Access::QueueFree && (off..on).contains(&e.step)
        });
        if queued {
            exercised += 1;
            let first_free = t
                .events
                .iter()
                .find(|e| e.actor == Actor::Cpu(1) && e.access == Access::Free)
                .map(|e| e.step)
                .expect("munmap frees the tables");
            assert!(first_free > on, "seed {seed}: a table freed while CPU0 still walked");
        }
    }
    eprintln!("{exercised} of 300 traced x86_64 runs queued the free during the IRQs-off walk");
    assert!(exercised >= 10, "only {exercised} of 300 runs exercised the window");
}

#[test]
fn every_rcu_table_free_configuration_is_safe() {
    let mut n = 0;
    for c in configs() {
        let p = prepared(c.name, &[]);
        if p.env.table_free != TableFree::Rcu {
            continue;
        }
        n += 1;
        // 16K and 64K granules unmap 2048 and 8192 huge pages: fewer seeds there.
        let seeds = if c.format.page_shift() > 12 { 60 } else { 400 };
        assert_clean(&p, seeds, c.name);
    }
    assert!(n >= 15, "{n} RCU configurations");
}

#[test]
fn without_rcu_table_free_or_ipi_flush_the_walk_uses_a_freed_table() {
    let p = prepared("arm64-4k", &["rcu_table_free=false"]);
    assert_eq!(p.env.table_free, TableFree::AfterFlush);
    let (seed, t) = (0..2000)
        .find_map(|s| {
            let (t, out) = p.run_seed(s, false).unwrap();
            (out.verdict == Verdict::Violation).then_some((s, t))
        })
        .expect("a use-after-free within seeds 0..2000");
    let r = &t.reports[0];
    assert_eq!(r.kind, ReportKind::UseAfterFreeTable, "seed {seed}: {r:#?}");
    assert_eq!(r.at.actor, Actor::Cpu(0));
    assert!(r.at.func.starts_with("gup_fast"), "{}", r.at.func);
    assert!(r.at.op.starts_with("get_user_pages_fast"), "{}", r.at.op);
    let freed = r.freed.as_ref().expect("free site");
    assert_eq!((freed.actor, freed.func.as_str()), (Actor::Cpu(1), "tlb_batch_pages_flush"));
    assert!(matches!(r.object, Some(Object::Table(_))));

    // The same holds for every flush that does not wait for IRQs-off CPUs, which is why those
    // configurations select RCU table free; an IPI flush stays safe even without it.
    for c in configs().iter().filter(|c| c.format.page_shift() == 12) {
        let p = prepared(c.name, &["rcu_table_free=false"]);
        let broken = (0..2000).any(|s| p.run_seed(s, false).unwrap().1.verdict != Verdict::Clean);
        assert_eq!(broken, c.tlb_flush != TlbFlush::Ipi, "{} without RCU table free", c.name);
    }
}

#[test]
fn riscv_before_v6_8_falls_back_to_slow_gup() {
    let req = |profile: &str, set: &[&str]| Request {
        source: Source::load("gup-fast-vs-munmap").unwrap(),
        arch: Some("riscv64-sv39-sbi".into()),
        profile: Some(profile.into()),
        set: set.iter().map(|s| s.to_string()).collect(),
    };
    let p = |profile: &str, set: &[&str]| Prepared::new(&req(profile, set)).unwrap();
    // v6.1: no GUP-fast on riscv (3f910b7a522e is v6.8): slow GUP under mmap_lock, no race
    // even though tables are freed after a flush that does not wait for IRQs-off harts
    let old = p("v6.1", &[]);
    assert_eq!(old.env.table_free, TableFree::AfterFlush);
    assert_clean(&old, 300, "riscv64 v6.1");
    let (t, _) = old.run_seed(0, true).unwrap();
    let cpu0 = |f: &str| t.events.iter().any(|e| e.actor == Actor::Cpu(0) && e.func == f);
    assert!(cpu0("faultin_page_range"), "slow GUP takes mmap_lock");
    assert!(t.events.iter().all(|e| !e.func.starts_with("gup_fast")));
    // with GUP-fast but without RCU table free, the SBI fence leaves the walk unprotected
    let broken = p("v6.1", &["riscv_gup_fast=true"]);
    assert!((0..2000).any(|s| broken.run_seed(s, false).unwrap().1.verdict != Verdict::Clean));
    // v6.8 gives both: RCU table free in SBI mode; IPI mode frees after the (waiting) flush
    assert_eq!(p("v6.8", &[]).env.table_free, TableFree::Rcu);
    assert_clean(&p("v6.8", &[]), 300, "riscv64-sbi v6.8");
    let ipi =
        Prepared::new(&Request { arch: Some("riscv64-sv39".into()), ..req("v6.8", &[]) }).unwrap();
    assert_eq!(ipi.env.table_free, TableFree::AfterFlush);
    assert_clean(&ipi, 300, "riscv64-ipi v6.8");
    let ipi14 =
        Prepared::new(&Request { arch: Some("riscv64-sv39".into()), ..req("v6.14", &[]) }).unwrap();
    assert_eq!(ipi14.env.table_free, TableFree::Rcu);
}

/// CVE-2025-38085 (1013af4f585f, v6.16): GUP-fast reads A's PUD entry, A's unshare drops S to
/// B, B reuses S for another file's page, and GUP-fast then pins that page through S. Found
/// where the unshare's TLB flush does not IPI the walker (broadcast TLBI, INVLPGB, SBI
/// rfence); absent on x86_64 native and riscv64 IPI flush (the flush waits for IRQs on); gone
/// from v6.16 everywhere (`tlb_remove_table_sync_one()` before `i_mmap_rwsem` is dropped).
#[test]
fn gup_fast_sees_an_unshared_table_reused_by_the_other_mm_until_v6_16() {
    let reuse = |arch: &str, profile: &str| {
        prepare(builtin("gup-fast-vs-reuse"), Some(arch), Some(profile), &[])
    };
    for arch in ["arm64-4k", "x86_64-invlpgb", "riscv64-sv39-sbi"] {
        let p = reuse(arch, "v6.15");
        let found = (0..1000).find_map(|s| {
            let (t, _) = p.run_seed(s, false).unwrap();
            t.reports.into_iter().find(|r| r.kind == ReportKind::WrongMm)
        });
        let r = found.unwrap_or_else(|| panic!("{arch} v6.15: GUP-fast obtains B's page"));
        assert_eq!(r.at.func, "gup_fast_pgd_range", "{arch}: {}", r.text);
        assert!(r.text.contains("(index 0 of file other) of B"), "{arch}: {}", r.text);
        assert_clean(&reuse(arch, "v6.16"), 1000, &format!("{arch} v6.16"));
    }
    for arch in ["x86_64", "riscv64-sv39"] {
        assert_eq!(reuse(arch, "v6.15").env.tlb_flush, TlbFlush::Ipi, "{arch}");
        assert_clean(&reuse(arch, "v6.15"), 1000, &format!("{arch} v6.15 (IPI flush)"));
    }
}
