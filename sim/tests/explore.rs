//! `mmsim explore` end to end: results independent of threads and shards, the seed race found
//! by each strategy with v6.1 and nothing with v6.3, panics caught and reported by seed.

use mmsim::engine::strategy::{Choice, Diverged, Strategy};
use mmsim::explore::{self, Config, SeedOutcome, Shard, StrategyKind, Summary};
use mmsim::run::{Prepared, Request};
use mmsim::scenario::Source;
use std::path::PathBuf;
use std::process::{Command, Output};

fn prepared(profile: &str) -> Prepared {
    Prepared::new(&Request {
        source: Source::load("gup-vs-unshare").unwrap(),
        arch: Some("x86_64".into()),
        profile: Some(profile.into()),
        set: vec![],
    })
    .unwrap()
}

fn explore(p: &Prepared, cfg: &Config) -> Summary {
    explore::explore_config(p, cfg, &|_| {}, None).unwrap()
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mmsim-explore-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn mmsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mmsim")).args(args).output().expect("mmsim runs")
}

fn has_seed_race(s: &Summary) -> bool {
    s.groups.iter().any(|g| g.signature.iter().any(|k| k == "use_after_free_ptlock@huge_pte_lock"))
}

#[test]
fn jobs_do_not_change_the_summary() {
    let p = prepared("v6.1");
    for strategy in [StrategyKind::Random, StrategyKind::Urw, StrategyKind::Pct] {
        let cfg = Config { strategy, runs: 1500, jobs: 1, ..Config::default() };
        let one = explore(&p, &cfg);
        let two = explore(&p, &Config { jobs: 2, ..cfg.clone() });
        let five = explore(&p, &Config { jobs: 5, ..cfg });
        assert!(one.violations > 0 || strategy == StrategyKind::Pct, "{one}");
        assert_eq!(one.runs, 1500);
        assert_eq!(explore::to_json(&one), explore::to_json(&two));
        assert_eq!(one, five);
    }
}

#[test]
fn merged_shards_equal_the_whole_run() {
    let p = prepared("v6.1");
    let cfg = Config { runs: 1200, seed_start: 17, jobs: 2, ..Config::default() };
    let whole = explore(&p, &cfg);
    assert!(whole.violations > 0, "{whole}");
    let part =
        |index| explore(&p, &Config { shard: Some(Shard { index, count: 2 }), ..cfg.clone() });
    let (a, b) = (part(1), part(2));
    assert_eq!(a.runs + b.runs, 1200);
    assert_ne!(a, whole);
    // in either order
    assert_eq!(explore::merge(&[a.clone(), b.clone()]).unwrap(), whole);
    assert_eq!(explore::merge(&[b, a]).unwrap(), whole);
}

#[test]
fn cli_shards_merge_to_the_unsharded_json_and_write_traces() {
    let out = tmp("out");
    let common = ["explore", "gup-vs-unshare", "--profile", "v6.1", "--runs", "800"];
    let run = |extra: &[&str]| {
        let o = mmsim(&[&common[..], extra].concat());
        assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
        o.stdout
    };
    let whole = run(&["--format", "json", "--jobs", "2", "--out", out.to_str().unwrap()]);
    let (s1, s2) = (tmp("s1.json"), tmp("s2.json"));
    std::fs::write(&s1, run(&["--format", "json", "--shard", "1/2"])).unwrap();
    std::fs::write(&s2, run(&["--format", "json", "--shard", "2/2", "--jobs", "1"])).unwrap();
    let merged = mmsim(&["merge", s2.to_str().unwrap(), s1.to_str().unwrap(), "--format", "json"]);
    assert_eq!(merged.status.code(), Some(1));
    let mut w: Summary = serde_json::from_slice(&whole).unwrap();
    let m: Summary = serde_json::from_slice(&merged.stdout).unwrap();
    // the whole run wrote its traces; the shards did not (no --out)
    for g in &mut w.groups {
        let name = g.trace.take().expect("--out names each signature's trace");
        let t = mmsim_traces::read(&out.join(&name)).unwrap();
        assert_eq!(t.header.seed, g.first_seed);
        assert_eq!(explore::signature(&t.reports), g.signature);
    }
    assert_eq!(m, w);
    let on_disk = explore::read_json(&out.join("summary.json")).unwrap();
    assert_eq!(explore::to_json(&on_disk).as_bytes(), &whole[..]);
    // a part given twice is refused with the usage/input status
    let twice = mmsim(&["merge", s1.to_str().unwrap(), s1.to_str().unwrap()]);
    assert_eq!(twice.status.code(), Some(2));
}

#[test]
fn random_and_pct_find_the_seed_race_with_v6_1() {
    let p = prepared("v6.1");
    let random = explore(&p, &Config { runs: 3000, jobs: 2, ..Config::default() });
    assert!(has_seed_race(&random), "{random}");
    // PCT proper draws its change point over all ~3600 steps of the run (CPU2's munmap is
    // long), so it needs more runs than the per-CPU change points of `random`
    let pct = explore(
        &p,
        &Config { strategy: StrategyKind::Pct, depth: 3, runs: 5000, jobs: 2, ..Config::default() },
    );
    let b = pct.pct.as_ref().expect("pct prints its bound");
    assert_eq!((b.actors as usize, b.depth), (p.env.ncpus() + 1, 3));
    assert_eq!(b.steps, p.steps_estimate);
    assert!(pct.to_string().contains("1/(n k^(d-1))"));
    assert!(
        pct.groups.iter().any(|g| g.signature.iter().any(|k| k.ends_with("@follow_hugetlb_page"))),
        "{pct}"
    );
    let pct2 = explore(
        &p,
        &Config { strategy: StrategyKind::Pct, depth: 2, runs: 3000, jobs: 2, ..Config::default() },
    );
    assert!(has_seed_race(&pct2), "{pct2}");
}

#[test]
fn nothing_is_reported_with_v6_3() {
    let p = prepared("v6.3");
    for (strategy, depth) in [
        (StrategyKind::Random, 3),
        (StrategyKind::Urw, 3),
        (StrategyKind::Pct, 2),
        (StrategyKind::Pct, 3),
    ] {
        let s = explore(&p, &Config { strategy, depth, runs: 1500, jobs: 2, ..Config::default() });
        assert_eq!(s.runs, 1500);
        assert_eq!((s.violations, s.panics, s.step_limits), (0, 0, 0), "{s}");
        assert!(s.to_string().contains("no violation found"));
    }
}

/// Random priorities, but panics at the 50th choice of seed 7: a stand-in for a model bug.
struct PanicsAtSeed7 {
    seed: u64,
    chosen: u32,
    inner: Box<dyn Strategy>,
}

impl Strategy for PanicsAtSeed7 {
    fn name(&self) -> String {
        self.inner.name()
    }
    fn choose(&mut self, step: u64, runnable: &[Choice]) -> Result<usize, Diverged> {
        self.chosen += 1;
        if self.seed == 7 && self.chosen == 50 {
            panic!("model bug planted at seed 7");
        }
        self.inner.choose(step, runnable)
    }
}

#[test]
fn a_panicking_execution_is_reported_with_its_seed_and_the_rest_goes_on() {
    let p = prepared("v6.1");
    for jobs in [1, 2] {
        let cfg = Config { runs: 200, jobs, ..Config::default() };
        let make = |seed| -> Box<dyn Strategy> {
            Box::new(PanicsAtSeed7 {
                seed,
                chosen: 0,
                inner: cfg.strategy.build(&p, seed, cfg.depth),
            })
        };
        let results = explore::run_seeds(&p, &cfg, &make, &|_| {});
        assert_eq!(results.len(), 200);
        let normal =
            explore::run_seeds(&p, &cfg, &|s| cfg.strategy.build(&p, s, cfg.depth), &|_| {});
        for (r, n) in results.iter().zip(&normal) {
            if r.seed == 7 {
                assert_eq!(r.outcome, SeedOutcome::Panic("model bug planted at seed 7".into()));
            } else {
                assert_eq!(r, n, "every other seed runs as without the panic");
            }
        }
        let s = explore::explore(&p, &cfg, &make, &|_| {}, None).unwrap();
        assert_eq!((s.runs, s.panics), (200, 1));
        assert_eq!(s.panicked[0].seed, 7);
        assert_eq!(s.exit_code(), 1);
        assert!(s.to_string().contains("PANIC at seed 7"), "{s}");
    }
}
