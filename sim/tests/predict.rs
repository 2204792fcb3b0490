//! `mmsim explore --strategy predict` end to end: the seed race confirmed from first
//! executions and saved as a replayable trace, nothing with v6.3, summaries independent of
//! threads and shards, race-pair coverage merged as a union.

mod common;
use common::{builtin, explore, fresh_dir, mmsim, prepare};

use mmsim::explore::{self, Config, Shard, StrategyKind, Summary};
use mmsim::run::Prepared;

fn prepared(profile: &str) -> Prepared {
    prepare(builtin("gup-vs-unshare"), Some("x86_64"), Some(profile), &[])
}

#[test]
fn predict_confirms_the_seed_race_and_its_trace_replays() {
    let out = fresh_dir("predict", "v61");
    let o = mmsim(&[
        "explore",
        "gup-vs-unshare",
        "--strategy",
        "predict",
        "--runs",
        "12",
        "--jobs",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(text.contains("use_after_free_ptlock@huge_pte_lock"), "{text}");
    assert!(text.contains("predicted, not confirmed: "), "{text}");
    assert!(text.contains("race-pair coverage: "), "{text}");
    let s = explore::read_json(&out.join("summary.json")).unwrap();
    assert!(s.violations >= 8, "{s}");
    assert!(!s.race_pairs.is_empty());
    for g in &s.groups {
        let trace = out.join(g.trace.as_ref().expect("a saved trace"));
        let r = mmsim(&["replay", trace.to_str().unwrap()]);
        let rt = String::from_utf8_lossy(&r.stdout);
        assert_eq!(r.status.code(), Some(1), "{rt}");
        assert!(rt.contains("identical"), "{rt}");
    }
}

#[test]
fn predict_finds_nothing_with_v6_3() {
    let o = mmsim(&[
        "explore",
        "gup-vs-unshare",
        "--profile",
        "v6.3",
        "--strategy",
        "predict",
        "--runs",
        "30",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stdout));
    let s: Summary = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((s.violations, s.predicted_unconfirmed, s.runs), (0, 0, 30));
    assert!(!s.race_pairs.is_empty());
}

#[test]
fn predict_summaries_do_not_depend_on_jobs_or_shards() {
    let p = prepared("v6.1");
    let cfg = Config {
        strategy: StrategyKind::Predict,
        runs: 24,
        seed_start: 5,
        jobs: 1,
        ..Config::default()
    };
    let whole = explore(&p, &cfg);
    assert_eq!(
        explore::to_json(&whole),
        explore::to_json(&explore(&p, &Config { jobs: 2, ..cfg.clone() }))
    );
    let part =
        |index| explore(&p, &Config { shard: Some(Shard { index, count: 2 }), ..cfg.clone() });
    let (a, b) = (part(1), part(2));
    assert_eq!(explore::merge(&[b, a]).unwrap(), whole);
    assert!(whole.violations > 0 && !whole.race_pairs.is_empty(), "{whole}");
}

#[test]
fn coverage_of_random_runs_is_deterministic_and_merges_as_a_union() {
    let p = prepared("v6.1");
    let cfg = Config { runs: 40, jobs: 2, coverage: true, ..Config::default() };
    let whole = explore(&p, &cfg);
    assert!(whole.coverage);
    assert!(whole.race_pairs.iter().any(|c| !c.ordered), "{:?}", whole.race_pairs);
    assert_eq!(whole, explore(&p, &Config { jobs: 1, ..cfg.clone() }));
    let part =
        |index| explore(&p, &Config { shard: Some(Shard { index, count: 2 }), ..cfg.clone() });
    let (a, b) = (part(1), part(2));
    assert!(a.race_pairs.len() <= whole.race_pairs.len());
    assert_eq!(explore::merge(&[a, b]).unwrap(), whole);
    // without --coverage nothing is measured
    let plain = explore(&p, &Config { coverage: false, ..cfg });
    assert!(!plain.coverage && plain.race_pairs.is_empty());
    assert!(!plain.to_string().contains("race-pair coverage"));
}

#[test]
fn gup_fast_is_confirmed_without_a_sync_and_never_with_one() {
    let run = |args: &[&str]| -> Summary {
        let mut a = vec!["explore", "gup-fast-vs-munmap", "--strategy", "predict"];
        a.extend(args);
        a.extend(["--runs", "20", "--format", "json"]);
        let o = mmsim(&a);
        serde_json::from_slice(&o.stdout).unwrap()
    };
    // a broadcast TLBI and no RCU table free: nothing holds the free back
    let bare = run(&["--arch", "arm64-4k", "--set", "rcu_table_free=false"]);
    assert!(bare.violations >= 15, "{bare}");
    // x86_64 frees after an IPI the IRQs-off walk must acknowledge; arm64 frees by RCU
    for arch in ["x86_64", "arm64-4k"] {
        let safe = run(&["--arch", arch]);
        assert_eq!(safe.violations, 0, "{safe}");
    }
}

#[test]
fn predict_on_a_recorded_clean_trace_confirms_the_race_and_writes_a_replayable_trace() {
    let dir = fresh_dir("predict", "recorded");
    std::fs::create_dir_all(&dir).unwrap();
    let clean = dir.join("seed0.ron");
    let confirmed = dir.join("confirmed.ron");
    // seed 0 of the random strategy is clean on v6.1 ...
    let o = mmsim(&["run", "gup-vs-unshare", "--seed", "0", "-o", clean.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stdout));
    // ... but one reordering away from the use-after-free
    let o = mmsim(&["predict", clean.to_str().unwrap(), "-o", confirmed.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(text.contains("confirmed by reordering"), "{text}");
    assert!(text.contains("BUG: KASAN: use-after-free"), "{text}");
    let o = mmsim(&["replay", confirmed.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("identical"), "replay: {o:?}");
    // a v6.3 trace has nothing to confirm
    let fixed = dir.join("v63.ron");
    let o = mmsim(&[
        "run",
        "gup-vs-unshare",
        "--profile",
        "v6.3",
        "--seed",
        "0",
        "-o",
        fixed.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0));
    let o = mmsim(&["predict", fixed.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stdout));
    // a missing file is bad input
    let o = mmsim(&["predict", dir.join("nothere.ron").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A schema-3 trace: what `text` (a clean schema-6 trace: no reports, so nothing of schema 5
/// or 6 in it) was before schema 4 added entry values.
fn as_schema_3(text: &str) -> String {
    let current = format!("schema_version: {},", mmsim_traces::SCHEMA_VERSION);
    assert_eq!(mmsim_traces::SCHEMA_VERSION, 6);
    let mut out = text.replacen(&current, "schema_version: 3,", 1);
    while let Some(at) = out.find(", value: Some(") {
        let end = at + out[at..].find("))),").expect("a value ends its event") + 2;
        out.replace_range(at..end, "");
    }
    out
}

#[test]
fn a_schema_3_trace_replays_and_predict_recovers_its_entry_values() {
    let dir = fresh_dir("predict", "schema3");
    std::fs::create_dir_all(&dir).unwrap();
    let v4 = dir.join("seed0.ron");
    let o = mmsim(&["run", "gup-vs-unshare", "--seed", "0", "-o", v4.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    let text = std::fs::read_to_string(&v4).unwrap();
    assert!(text.contains("value: Some(EntryValue(level: "), "entry events carry values");
    let v3 = dir.join("seed0-v3.ron");
    let old = as_schema_3(&text);
    assert!(!old.contains("value:") && old.contains("schema_version: 3,"));
    std::fs::write(&v3, &old).unwrap();
    let o = mmsim(&["replay", v3.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("identical"), "replay: {o:?}");
    // the analysis needs values: predict replays the old trace to recover them
    let o = mmsim(&["predict", v3.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("confirmed by reordering"), "{out}");
    // a schema-3 trace that no longer replays is refused with the reason
    let bad = dir.join("bad-v3.ron");
    std::fs::write(&bad, old.replacen("op_step: 1)", "op_step: 7)", 1)).unwrap();
    let o = mmsim(&["predict", bad.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("schema-3 trace has no entry values"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn predict_on_a_trace_with_a_lesser_violation_looks_for_a_memory_safety_one() {
    let dir = fresh_dir("predict", "lesser");
    std::fs::create_dir_all(&dir).unwrap();
    let first = dir.join("fv0.ron");
    let confirmed = dir.join("confirmed.ron");
    // seed 0 of fault-vs-unshare (v4.20) only revisits its unshared range: a warning, which
    // the default --min-severity bug does not count (exit 0), and --min-severity warning does
    let o = mmsim(&["run", "fault-vs-unshare", "--seed", "0", "-o", first.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains("only warnings (below --min-severity bug)"));
    let o = mmsim(&["run", "fault-vs-unshare", "--seed", "0", "--min-severity", "warning"]);
    assert_eq!(o.status.code(), Some(1));
    let t = mmsim_traces::read(&first).unwrap();
    assert!(t.reports.iter().all(|r| r.kind.severity() != mmsim_traces::Severity::MemorySafety));
    let o = mmsim(&["predict", first.to_str().unwrap(), "-o", confirmed.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(text.contains("confirmed by reordering"), "{text}");
    let c = mmsim_traces::read(&confirmed).unwrap();
    assert!(c.reports.iter().any(|r| r.kind.severity() == mmsim_traces::Severity::MemorySafety));
    let o = mmsim(&["replay", confirmed.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("identical"), "replay: {o:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_reordering_that_shows_only_a_warning_confirms_nothing() {
    // ptlock-early-free with v6.15: the ptlock lives as long as the table, so what a walk
    // held past the unshare shows is a stale walk, a warning: predict must not call it a
    // confirmed violation, and explore counts such seeds as warnings, never as violations
    let dir = fresh_dir("predict", "warning");
    std::fs::create_dir_all(&dir).unwrap();
    let t = dir.join("seed0.ron");
    let o = mmsim(&[
        "run",
        "ptlock-early-free",
        "--profile",
        "v6.15",
        "--seed",
        "0",
        "-o",
        t.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0));
    let o = mmsim(&["predict", t.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(!out.contains("confirmed by reordering"), "{out}");
    let o = mmsim(&[
        "explore",
        "ptlock-early-free",
        "--profile",
        "v6.15",
        "--strategy",
        "predict",
        "--runs",
        "40",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains(" 0 violations (severity bug and above)"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}
