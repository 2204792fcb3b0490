//! `mmsim compare`: the seed race over configurations x {v6.1, v6.3} gives the expected cells.

mod common;
use common::mmsim;

use mmsim::compare::{compare, Cell, Spec};
use mmsim::scenario::Source;
use mmsim_traces::Severity;

const ARCHS: [&str; 5] = ["x86_64", "arm64-4k", "arm64-16k", "riscv64-sv57", "arm64-16k-va36"];

#[test]
fn seed_race_matrix_over_configs_and_v6_1_v6_3() {
    let spec = Spec {
        source: Source::load("gup-vs-unshare").unwrap(),
        archs: ARCHS.iter().map(|s| s.to_string()).chain(["arm64-64k".into()]).collect(),
        profiles: vec!["v6.1".into(), "v6.3".into()],
        runs: 150,
        set: vec![],
        min_severity: Severity::Bug,
    };
    let m = compare(&spec, 2, &|_, _, _| {}).unwrap();
    for (a, row) in m.archs.iter().zip(&m.cells) {
        match a.as_str() {
            "arm64-16k-va36" | "arm64-64k" => {
                for c in row {
                    assert!(matches!(c, Cell::NotApplicable { .. }), "{a}: {c:?}");
                }
            }
            _ => {
                // v6.1: the stale walks (warnings) of the GUP that loses the race early on
                // every sharing config, and on x86_64 (IPI flush, no RCU table free) the seed
                // race's use-after-free; most severe first
                let Cell::Ran { kinds, clean, runs: 150, .. } = &row[0] else {
                    panic!("{a} v6.1: {:?}", row[0])
                };
                assert!(*clean < 150, "{a} v6.1");
                let names: Vec<&str> = kinds.iter().map(|k| k.kind.name()).collect();
                assert!(names.contains(&"stale_walk"), "{a}: {names:?}");
                if a == "x86_64" {
                    assert_eq!(row[0].status(Severity::Bug), "violation", "{a} v6.1");
                    assert!(names.iter().any(|k| k.starts_with("use_after_free")), "{names:?}");
                }
                let sev: Vec<Severity> = kinds.iter().map(|k| k.kind.severity()).collect();
                assert!(sev.windows(2).all(|w| w[0] >= w[1]), "{a}: most severe first {names:?}");
                for k in kinds {
                    assert!(k.runs >= 1 && k.runs <= 150 && k.first_seed < 150, "{a}: {k:?}");
                }
                let Cell::Ran { kinds, clean: 150, .. } = &row[1] else {
                    panic!("{a} v6.3: {:?}", row[1])
                };
                assert!(kinds.is_empty(), "{a} v6.3: {kinds:?}");
            }
        }
    }
    assert!(m.violated());
    // the same matrix with another thread count
    assert_eq!(compare(&spec, 1, &|_, _, _| {}).unwrap(), m);
    let md = m.markdown();
    assert!(md.contains("| arch | v6.1 | v6.3 |"), "{md}");
    let row = md.lines().find(|l| l.starts_with("| arm64-16k-va36 |")).unwrap();
    assert!(row.contains("not applicable: the PMD level is folded into the PGD"), "{row}");
    let row = md.lines().find(|l| l.starts_with("| x86_64 |")).unwrap();
    assert!(row.contains("/150 (seed ") && row.ends_with("clean (150 runs) |"), "{row}");
    assert!(row.contains("stale_walk ") && row.contains(", warning)"), "{row}");
}

#[test]
fn cli_exit_codes_and_json() {
    let archs = ARCHS.join(",");
    let r = mmsim(&["compare", "gup-vs-unshare", "--arch", &archs, "--profile", "v6.1,v6.3"]);
    assert_eq!(r.status.code(), Some(1), "a violation: exit 1");
    let out = String::from_utf8_lossy(&r.stdout);
    assert_eq!(out.lines().filter(|l| l.starts_with("| ")).count(), 2 + ARCHS.len(), "{out}");

    let clean =
        ["compare", "gup-vs-unshare", "--arch", &archs, "--profile", "v6.3", "--runs", "50"];
    let r = mmsim(&[&clean[..], &["--format", "json"]].concat());
    assert_eq!(r.status.code(), Some(0), "only clean and not-applicable cells: exit 0");
    let out = String::from_utf8_lossy(&r.stdout);
    assert!(
        out.contains(
            "\"arch\": \"x86_64\", \"profile\": \"v6.3\", \"status\": \"clean\", \"runs\": 50, \"clean\": 50, \"step_limits\": 0, \"signatures\": []"
        ),
        "{out}"
    );
    // v6.1 with only the first two CPUs' race (no free): stale walks only, a warning cell,
    // which counts only with --min-severity warning
    let stale =
        ["compare", "gup-stale-walk", "--arch", "x86_64", "--profile", "v6.1", "--runs", "100"];
    let r = mmsim(&[&stale[..], &["--format", "json"]].concat());
    let warned = String::from_utf8_lossy(&r.stdout);
    assert_eq!(r.status.code(), Some(0), "warnings only: exit 0: {warned}");
    assert!(warned.contains("\"status\": \"warning\""), "{warned}");
    assert!(warned.contains("\"kind\": \"stale_walk\", \"severity\": \"warning\""), "{warned}");
    let r = mmsim(&[&stale[..], &["--min-severity", "warning"]].concat());
    assert_eq!(r.status.code(), Some(1), "{}", String::from_utf8_lossy(&r.stdout));
    assert!(out.contains("\"arch\": \"arm64-16k-va36\", \"profile\": \"v6.3\", \"status\": \"not_applicable\", \"reason\": \"the PMD level is folded"), "{out}");

    for bad in [
        vec!["compare", "gup-vs-unshare", "--arch", "vax"],
        vec!["compare", "gup-vs-unshare", "--profile", "v9.9"],
        vec!["compare", "no-such-scenario"],
        vec!["compare", "gup-vs-unshare", "--format", "xml"],
    ] {
        let r = mmsim(&bad);
        assert_eq!(r.status.code(), Some(2), "{bad:?}");
    }
}
