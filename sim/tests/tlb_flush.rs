//! `--set tlb_flush=ipi|broadcast|paravirt|sbi`: the remote TLB-flush mechanism as a switch,
//! checked against what the architecture can do (kernel-notes §8), and changing the verdict
//! where the notes say it must: without RCU table free, only a flush that waits for IRQs-off
//! CPUs (synchronous IPIs) keeps GUP-fast from walking a freed table (§4.4, §6.4).

mod common;
use common::{assert_clean, builtin, prepare};

use mmsim::run::{Prepared, Request, RunError};
use mmsim_arch::TlbFlush;
use mmsim_traces::{ReportKind, Verdict};

/// v6.1; riscv64 with v6.8, its first release with GUP-fast.
fn request(arch: &str, set: &[&str]) -> Request {
    let profile = if arch.starts_with("riscv64") { "v6.8" } else { "v6.1" };
    common::request(builtin("gup-fast-vs-munmap"), Some(arch), Some(profile), set)
}

fn prepared(arch: &str, set: &[&str]) -> Prepared {
    let profile = if arch.starts_with("riscv64") { "v6.8" } else { "v6.1" };
    prepare(builtin("gup-fast-vs-munmap"), Some(arch), Some(profile), set)
}

fn first_uaf(p: &Prepared, seeds: u64) -> Option<u64> {
    (0..seeds).find(|&s| {
        let (t, out) = p.run_seed(s, false).unwrap();
        out.verdict == Verdict::Violation
            && t.reports.iter().any(|r| r.kind == ReportKind::UseAfterFreeTable)
    })
}

#[test]
fn without_rcu_table_free_only_the_ipi_flush_protects_gup_fast() {
    // x86_64: native IPIs wait for CPU0's IRQs-off walk; INVLPGB and PV flushes do not
    let ipi = prepared("x86_64", &["rcu_table_free=false"]);
    assert_eq!(ipi.env.tlb_flush, TlbFlush::Ipi);
    assert_clean(&ipi, 500, "x86_64 ipi");
    for mech in ["broadcast", "paravirt"] {
        let set = format!("tlb_flush={mech}");
        let p = prepared("x86_64", &["rcu_table_free=false", &set]);
        assert!(first_uaf(&p, 500).is_some(), "x86_64 {mech}: no use-after-free");
        // RCU table free makes the same mechanism safe again
        let rcu = prepared("x86_64", &["rcu_table_free=true", &set]);
        assert_clean(&rcu, 300, &format!("x86_64 {mech} with RCU"));
    }
    // riscv64: S-mode IPIs serialise with the walker, the SBI remote fence does not
    let p = prepared("riscv64-sv39", &["rcu_table_free=false", "tlb_flush=ipi"]);
    assert_clean(&p, 500, "riscv64 ipi");
    let p = prepared("riscv64-sv39", &["rcu_table_free=false", "tlb_flush=sbi"]);
    assert!(first_uaf(&p, 500).is_some(), "riscv64 sbi: no use-after-free");
}

#[test]
fn impossible_mechanisms_are_refused_with_what_the_arch_can_do() {
    for (arch, mech, can) in [
        ("arm64-4k", "ipi", "only by broadcast TLBI"),
        ("arm64-16k", "sbi", "only by broadcast TLBI"),
        ("riscv64-sv48", "broadcast", "S-mode IPIs (ipi) or an SBI remote fence"),
        ("riscv64-sv39-sbi", "paravirt", "S-mode IPIs (ipi) or an SBI remote fence"),
        ("x86_64", "sbi", "SBI is riscv-only"),
    ] {
        let set = format!("tlb_flush={mech}");
        match Prepared::new(&request(arch, &[&set])) {
            Err(e @ RunError::TlbFlush(_)) => {
                let m = e.to_string();
                assert!(m.contains(arch) && m.contains(mech) && m.contains(can), "{m}");
            }
            Err(e) => panic!("{arch} {mech}: wrong error {e}"),
            Ok(_) => panic!("{arch} {mech} must be refused"),
        }
    }
    let e = Prepared::new(&request("x86_64", &["tlb_flush=smoke-signals"])).err().unwrap();
    assert!(e.to_string().contains("arch ipi broadcast paravirt sbi"), "{e}");
}

#[test]
fn the_trace_header_names_the_mechanism_and_replay_keeps_it() {
    let (t, _) = prepared("arm64-4k", &[]).run_seed(0, true).unwrap();
    assert!(t.header.switches.contains(&("tlb_flush".into(), "broadcast".into())));
    let (t, _) = prepared("x86_64", &["rcu_table_free=false", "tlb_flush=paravirt"])
        .run_seed(3, true)
        .unwrap();
    assert!(t.header.switches.contains(&("tlb_flush".into(), "paravirt".into())));
    assert!(matches!(
        mmsim::run::replay(&t, "test").unwrap(),
        mmsim::run::ReplayResult::Identical(_)
    ));
}

#[test]
fn arch_show_and_list_resolve_the_override() {
    let mmsim = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_mmsim")).args(args).output().unwrap()
    };
    let o = mmsim(&["arch", "show", "x86_64", "--profile", "v6.1", "--set", "tlb_flush=broadcast"]);
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("table free: after flush, TLB flush: broadcast"), "{out}");
    let o = mmsim(&["arch", "show", "arm64-4k", "--set", "tlb_flush=ipi"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("arm64-4k cannot flush TLBs by `ipi`"));
    let o = mmsim(&["arch", "list", "--set", "tlb_flush=sbi"]);
    let out = String::from_utf8_lossy(&o.stdout);
    let row =
        |name: &str| out.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap().to_string();
    assert!(row("riscv64-sv39").contains("SBI rfence"), "{out}");
    assert!(row("arm64-4k").contains("n/a"), "{out}");
}
