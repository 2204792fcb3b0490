//! `mmsim explore` end to end: results independent of threads and shards, the seed race found
//! by each strategy with v6.1 and nothing with v6.3, panics caught and reported by seed; swarm
//! configurations replayed, the determinism check, the liveness phase, and explorations cut
//! short by a time limit or Ctrl-C.

mod common;
use common::{builtin, explore, mmsim, prepare, tmp};

use mmsim::engine::strategy::{Choice, Diverged, Liveness, Strategy};
use mmsim::explore::{self, Config, SeedOutcome, Shard, StopFlag, StrategyKind, Summary};
use mmsim::run::{Prepared, ReplayResult};
use mmsim_traces::{ReportKind, Severity};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

fn prepared(profile: &str) -> Prepared {
    prepare(builtin("gup-vs-unshare"), Some("x86_64"), Some(profile), &[])
}

fn has_seed_race(s: &Summary) -> bool {
    s.groups.iter().any(|g| g.signature.iter().any(|k| k == "use_after_free_ptlock@huge_pte_lock"))
}

#[test]
fn jobs_do_not_change_the_summary() {
    let p = prepared("v6.1");
    // predict has its own test of this (its runs are traced and reordered: slower)
    for strategy in StrategyKind::ALL.into_iter().filter(|&s| s != StrategyKind::Predict) {
        let cfg = Config { strategy, runs: 1500, jobs: 1, ..Config::default() };
        let one = explore(&p, &cfg);
        let two = explore(&p, &Config { jobs: 2, ..cfg.clone() });
        let five = explore(&p, &Config { jobs: 5, ..cfg });
        // urw finds only the stale walk (a warning) in these seeds, not the use-after-free
        assert!(one.violations + one.warnings > 0 || strategy == StrategyKind::Pct, "{one}");
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
    let out = tmp("explore", "out");
    let common = ["explore", "gup-vs-unshare", "--profile", "v6.1", "--runs", "800"];
    let run = |extra: &[&str]| {
        let o = mmsim(&[&common[..], extra].concat());
        assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
        o.stdout
    };
    let whole = run(&["--format", "json", "--jobs", "2", "--out", out.to_str().unwrap()]);
    let (s1, s2) = (tmp("explore", "s1.json"), tmp("explore", "s2.json"));
    std::fs::write(&s1, run(&["--format", "json", "--shard", "1/2"])).unwrap();
    std::fs::write(&s2, run(&["--format", "json", "--shard", "2/2", "--jobs", "1"])).unwrap();
    let merged = mmsim(&["merge", s2.to_str().unwrap(), s1.to_str().unwrap(), "--format", "json"]);
    assert_eq!(merged.status.code(), Some(1));
    let mut w: Summary = serde_json::from_slice(&whole).unwrap();
    let m: Summary = serde_json::from_slice(&merged.stdout).unwrap();
    // the whole run wrote its traces; the shards did not (no --out)
    for g in w.groups.iter_mut().chain(w.warning_groups.iter_mut()) {
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
    // depth 3 reaches the window (GUP reads the table after the unshare: a stale walk) but
    // not, in these seeds, the free that makes it a use-after-free
    assert!(
        pct.warning_groups
            .iter()
            .chain(&pct.groups)
            .any(|g| g.signature.iter().any(|k| k.ends_with("@follow_hugetlb_page"))),
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

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn prepared_file(path: &str) -> Prepared {
    prepare(builtin(path), None, None, &[])
}

#[test]
fn swarm_finds_the_seed_race_and_its_trace_replays_with_the_drawn_configuration() {
    let p = prepared("v6.1");
    let out = tmp("explore", "swarm");
    let cfg = Config { strategy: StrategyKind::Swarm, runs: 3000, jobs: 2, ..Config::default() };
    let s = explore::explore_config(&p, &cfg, &|_| {}, Some(&out)).unwrap();
    assert!(has_seed_race(&s), "{s}");
    assert_eq!(s.strategy_name, "swarm");
    for g in &s.groups {
        let config = g.config.as_deref().expect("each group names its first seed's configuration");
        assert!(config.starts_with("swarm(ops="), "{config}");
        assert!(s.to_string().contains(config));
        let t = mmsim_traces::read(&out.join(g.trace.as_ref().unwrap())).unwrap();
        assert_eq!(t.header.strategy, config);
        let quarantine = config.contains("quarantine=true");
        assert!(t.header.switches.contains(&("quarantine".into(), quarantine.to_string())));
        match mmsim::run::replay(&t, "swarm trace").unwrap() {
            ReplayResult::Identical(again) => assert_eq!(again.reports, t.reports),
            ReplayResult::Diverged(d) => panic!("{config}: {d}"),
        }
        // the header lists the operations that ran: dropping one shows there
        let dropped = config.split_once("ops=").unwrap().1.split(',').next().unwrap().contains('0');
        let listed: usize = t.header.cpus.iter().map(|c| c.ops.len()).sum();
        assert_eq!(listed < 3, dropped, "{config}");
    }
    // a dropped operation is part of what replay re-applies: without it the decisions fail
    let g = s.groups.iter().find(|g| g.config.as_ref().unwrap().contains("ops=1/1/0"));
    if let Some(g) = g {
        let mut t = mmsim_traces::read(&out.join(g.trace.as_ref().unwrap())).unwrap();
        t.header.strategy = "random(depth=3)".into();
        assert!(matches!(
            mmsim::run::replay(&t, "swarm trace without its mask").unwrap(),
            ReplayResult::Diverged(_)
        ));
    }
    // nothing with the fixed profile
    let fixed = explore(&prepared("v6.3"), &Config { runs: 1000, ..cfg });
    assert_eq!(fixed.violations, 0, "{fixed}");
}

/// Random priorities, except that every other run of seed 3 deviates at its first real
/// choice: nondeterminism planted the way a global counter or a HashMap order would plant it.
struct Flaky {
    inner: Box<dyn Strategy>,
    deviate: bool,
}

static RUNS_OF_SEED_3: AtomicU64 = AtomicU64::new(0);

impl Strategy for Flaky {
    fn name(&self) -> String {
        self.inner.name()
    }
    fn choose(&mut self, step: u64, runnable: &[Choice]) -> Result<usize, Diverged> {
        let i = self.inner.choose(step, runnable)?;
        if self.deviate && runnable.len() > 1 {
            self.deviate = false;
            return Ok((i + 1) % runnable.len());
        }
        Ok(i)
    }
}

#[test]
fn a_nondeterministic_seed_is_reported_and_the_check_can_be_turned_off() {
    let p = prepared("v6.1");
    let cfg = Config { runs: 200, jobs: 2, ..Config::default() };
    let make = |seed| -> Box<dyn Strategy> {
        let deviate = seed == 3 && RUNS_OF_SEED_3.fetch_add(1, Ordering::SeqCst) % 2 == 1;
        Box::new(Flaky { inner: cfg.strategy.build(&p, seed, cfg.depth), deviate })
    };
    // seed 3 is neither failing nor sampled, so the exploration does not see it
    let clean = explore::explore(&p, &cfg, &make, &|_| {}, None).unwrap();
    assert_eq!(clean.determinism_failed, 0, "{clean}");
    assert!(clean.determinism_checked >= 200 / explore::DETERMINISM_SAMPLE);
    let first = explore::run_one(&p, &make, 3, Severity::Bug);
    let f = explore::check_determinism(&p, &make, &first, Severity::Bug)
        .expect("a planted difference is seen");
    assert_eq!(f.seed, 3);
    // an honest seed passes the same check
    let honest = explore::run_one(&p, &make, 5, Severity::Bug);
    assert_eq!(explore::check_determinism(&p, &make, &honest, Severity::Bug), None);
    // in a summary: counted, listed with the seed, and it makes the exploration fail
    let mut s = clean.clone();
    s.add_check(Some(&Some(f)));
    assert_eq!((s.determinism_failed, s.exit_code()), (1, i32::from(true)));
    assert!(s.to_string().contains("NONDETERMINISTIC seed 3"), "{s}");
    // turned off: nothing re-run
    let off = explore(&p, &Config { check_determinism: false, ..cfg.clone() });
    assert_eq!(off.determinism_checked, 0);
    assert_eq!((off.runs, off.violations), (clean.runs, clean.violations));
}

#[test]
fn the_liveness_phase_reports_a_starved_writer_with_its_blocking_chain_and_replays() {
    let live = Liveness { after: 0, limit: 8 };
    let cfg = Config { runs: 40, jobs: 2, liveness: Some(live), ..Config::default() };
    let starve = prepared_file(&fixture("reader-starves-writer.ron"));
    let out = tmp("explore", "liveness");
    let s = explore::explore_config(&starve, &cfg, &|_| {}, Some(&out)).unwrap();
    assert_eq!(s.violations, 40, "{s}");
    assert_eq!(s.groups.len(), 1, "{s}");
    assert!(s.strategy_name.ends_with("+fair(after=0, limit=8)"));
    let t = mmsim_traces::read(&out.join(s.groups[0].trace.as_ref().unwrap())).unwrap();
    let r = &t.reports[0];
    assert_eq!(r.kind, ReportKind::Starvation);
    assert!(r.title.starts_with("INFO: task CPU2:"), "{}", r.title);
    assert!(r.text.contains("CPU2 in __vm_munmap"), "{}", r.text);
    assert!(r.text.contains("waits for mmap_lock"), "{}", r.text);
    assert!(r.text.contains("held by CPU"), "{}", r.text);
    assert!(matches!(mmsim::run::replay(&t, "starved").unwrap(), ReplayResult::Identical(_)));
    // without the liveness phase the same runs are clean: every operation ends eventually
    let plain = explore(&starve, &Config { liveness: None, ..cfg.clone() });
    assert_eq!(plain.violations, 0, "{plain}");
    // one reader cannot starve the writer; the reader waiting out munmap's long critical
    // section is not starvation either
    let fine = explore(&prepared_file(&fixture("one-reader-and-a-writer.ron")), &cfg);
    assert_eq!((fine.violations, fine.step_limits), (0, 0), "{fine}");
    // nor does the built-in race scenario starve anyone with its fix
    let fixed = explore(&prepared("v6.3"), &Config { runs: 300, ..cfg });
    assert_eq!(fixed.violations, 0, "{fixed}");
}

#[test]
fn a_stopped_exploration_keeps_the_prefix_it_ran_and_says_it_was_cut() {
    let p = prepared("v6.1");
    for jobs in [1, 2] {
        let stop = Arc::new(StopFlag::default());
        let cfg = Config { runs: 3000, jobs, stop: Some(stop.clone()), ..Config::default() };
        let seen = AtomicU64::new(0);
        let each = |_: &explore::SeedResult| {
            if seen.fetch_add(1, Ordering::SeqCst) + 1 == 700 {
                stop.raise("time limit 1s");
            }
        };
        let cut = explore::explore_config(&p, &cfg, &each, None).unwrap();
        assert_eq!(cut.cut.as_deref(), Some("time limit 1s"));
        assert!(cut.runs >= 700 && cut.runs < 3000, "{}", cut.runs);
        assert!(cut
            .to_string()
            .contains(&format!("cut short (time limit 1s): {} of 3000", cut.runs)));
        // the same as an uncut run of exactly that prefix, but for the range and the note
        let mut prefix = explore(&p, &Config { runs: cut.runs, stop: None, ..cfg.clone() });
        prefix.seed_count = 3000;
        prefix.cut = cut.cut.clone();
        assert_eq!(explore::to_json(&prefix), explore::to_json(&cut));
    }
    // a flag raised after the last seed cuts nothing
    let stop = Arc::new(StopFlag::default());
    let cfg = Config { runs: 50, stop: Some(stop.clone()), ..Config::default() };
    let s = explore::explore_config(&p, &cfg, &|_| {}, None).unwrap();
    stop.raise("late");
    assert_eq!(s.cut, None);
    assert!(!explore::to_json(&s).contains("\"cut\""));
}

#[test]
fn cli_time_limit_and_ctrl_c_still_write_the_summary() {
    let out = tmp("explore", "cut-time");
    let o = mmsim(&[
        "explore",
        "gup-vs-unshare",
        "--profile",
        "v6.3",
        "--runs",
        "100000000",
        "--jobs",
        "1",
        "--time-limit",
        "1s",
        "--format",
        "json",
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let s: Summary = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s.cut.as_deref(), Some("time limit 1s"));
    assert!(s.runs > 0 && s.runs < 100_000_000);
    assert_eq!(explore::read_json(&out.join("summary.json")).unwrap(), s);
    let bad = mmsim(&["explore", "gup-vs-unshare", "--time-limit", "soon"]);
    assert_eq!(bad.status.code(), Some(2));

    // Ctrl-C: SIGINT to the process; it stops handing out seeds and writes what it has
    let out = tmp("explore", "cut-int");
    let child = Command::new(env!("CARGO_BIN_EXE_mmsim"))
        .args([
            "explore",
            "gup-vs-unshare",
            "--profile",
            "v6.1",
            "--runs",
            "100000000",
            "--jobs",
            "2",
            "--out",
            out.to_str().unwrap(),
            "--format",
            "json",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    let kill = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let o = child.wait_with_output().unwrap();
    let s = explore::read_json(&out.join("summary.json")).unwrap();
    // exit status and stdout as for any finished exploration (how many seeds ran depends on
    // the machine: whether any violated is not asserted)
    assert_eq!(o.status.code(), Some(s.exit_code()), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(serde_json::from_slice::<Summary>(&o.stdout).unwrap(), s);
    assert_eq!(s.cut.as_deref(), Some("interrupted (Ctrl-C)"));
    assert!(s.runs < 100_000_000);
    assert!(s.groups.iter().all(|g| out.join(g.trace.as_ref().unwrap()).exists()));
}
