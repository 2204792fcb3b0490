//! Every built-in scenario on every architecture configuration (kernel-notes §7.4, §10.1,
//! §10.2): the seed race is found with v6.1 wherever PMD tables can be shared and is silent
//! with v6.3; where they cannot, the run is refused naming the reason.

mod common;
use common::{builtin, prepare};

use mmsim::run::{Prepared, Request, RunError};
use mmsim_arch::{configs, ArchConfig};
use mmsim_traces::{ReportKind, Verdict};

fn request(scenario: &str, arch: &str, profile: &str) -> Request {
    common::request(builtin(scenario), Some(arch), Some(profile), &[])
}

fn prepared(scenario: &str, arch: &str, profile: &str) -> Prepared {
    prepare(builtin(scenario), Some(arch), Some(profile), &[])
}

fn sharing_configs() -> impl Iterator<Item = &'static ArchConfig> {
    configs().iter().filter(|c| c.format.pmd_sharing().is_ok())
}

/// The first seed in `seeds` whose run reports a use-after-free of a table or its ptlock.
fn first_uaf(p: &Prepared, seeds: std::ops::Range<u64>) -> Option<(u64, ReportKind)> {
    seeds.into_iter().find_map(|s| {
        let (_, out) = p.run_seed(s, false).unwrap();
        if out.verdict != Verdict::Violation {
            return None;
        }
        let (t, _) = p.run_seed(s, true).unwrap();
        t.reports
            .iter()
            .map(|r| r.kind)
            .find(|k| matches!(k, ReportKind::UseAfterFreePtlock | ReportKind::UseAfterFreeTable))
            .map(|k| (s, k))
    })
}

#[test]
fn seed_race_is_found_with_v6_1_on_every_sharing_config() {
    let mut found = Vec::new();
    for c in sharing_configs() {
        let p = prepared("gup-vs-unshare", c.name, "v6.1");
        let (seed, kind) = first_uaf(&p, 0..2000)
            .unwrap_or_else(|| panic!("{}: no use-after-free in seeds 0..2000", c.name));
        found.push(format!("{}: seed {seed} {kind:?}", c.name));
    }
    eprintln!("{}", found.join("\n"));
    assert!(found.len() >= 15, "{found:?}");
}

#[test]
fn seed_race_is_clean_with_v6_3_on_every_sharing_config() {
    for c in sharing_configs() {
        let p = prepared("gup-vs-unshare", c.name, "v6.3");
        // The 16K configurations walk 2048 huge pages per PUD range: fewer seeds there.
        let n = if c.format.ptrs_per_table() > 512 { 100 } else { 300 };
        for seed in 0..n {
            let (t, out) = p.run_seed(seed, false).unwrap();
            if out.verdict != Verdict::Clean {
                let (t2, _) = p.run_seed(seed, true).unwrap();
                panic!("{} seed {seed}: {:?} {:#?}", c.name, out.verdict, (t.reports, t2.reports));
            }
        }
    }
}

#[test]
fn sharing_scenarios_are_not_applicable_where_pmd_tables_cannot_be_shared() {
    for (arch, why) in [
        ("arm64-16k-va36", "PMD level is folded into the PGD"),
        ("arm64-64k", "does not select ARCH_WANT_HUGE_PMD_SHARE"),
        ("arm64-64k-va42", "does not select ARCH_WANT_HUGE_PMD_SHARE"),
    ] {
        for scenario in ["gup-vs-unshare", "fault-vs-unshare"] {
            match Prepared::new(&request(scenario, arch, "v6.1")) {
                Err(e @ RunError::CannotShare { .. }) => {
                    let msg = e.to_string();
                    assert!(msg.contains(arch) && msg.contains(why), "{msg}");
                }
                Err(e) => panic!("{scenario} on {arch}: wrong error {e}"),
                Ok(_) => panic!("{scenario} on {arch} must not run"),
            }
        }
    }
}

#[test]
fn table_free_policy_follows_profile_and_override() {
    use mmsim_arch::TableFree::{AfterFlush, Rcu};
    let policy = |arch: &str, profile: &str, set: &[&str]| {
        let mut req = request("gup-vs-unshare", arch, profile);
        req.set = set.iter().map(|s| s.to_string()).collect();
        Prepared::new(&req).unwrap().env.table_free
    };
    assert_eq!(policy("x86_64", "v6.14", &[]), AfterFlush);
    assert_eq!(policy("x86_64", "v6.15", &[]), Rcu);
    assert_eq!(policy("x86_64-la57", "latest", &[]), Rcu);
    assert_eq!(policy("x86_64", "v6.15", &["x86_rcu_table_free=false"]), AfterFlush);
    assert_eq!(policy("x86_64", "v6.1", &["rcu_table_free=true"]), Rcu);
    assert_eq!(policy("arm64-4k", "v6.1", &[]), Rcu);
    assert_eq!(policy("arm64-4k", "v6.1", &["rcu_table_free=false"]), AfterFlush);
    assert_eq!(policy("riscv64-sv39", "v6.14", &[]), Rcu);
    // the resolved switch travels in the trace header, so replay reproduces the policy
    let mut req = request("gup-vs-unshare", "arm64-4k", "v6.3");
    req.set = vec!["rcu_table_free=false".into()];
    let (t, _) = Prepared::new(&req).unwrap().run_seed(0, true).unwrap();
    assert!(t.header.switches.contains(&("rcu_table_free".into(), "false".into())));
    assert!(matches!(
        mmsim::run::replay(&t, "test").unwrap(),
        mmsim::run::ReplayResult::Identical(_)
    ));
}

#[test]
fn fault_vs_unshare_breaks_before_v5_7_only_on_every_sharing_config() {
    for c in sharing_configs() {
        let old = prepared("fault-vs-unshare", c.name, "v4.20");
        assert!(first_uaf(&old, 0..2000).is_some(), "{}: v4.20 finds no use-after-free", c.name);
        let p = prepared("fault-vs-unshare", c.name, "v6.1");
        for seed in 0..100 {
            let (t, out) = p.run_seed(seed, false).unwrap();
            assert_eq!(out.verdict, Verdict::Clean, "{} seed {seed}: {:#?}", c.name, t.reports);
        }
    }
}
