//! End-to-end tests of `mmsim explore --exhaustive` (the bounded exhaustive search): what it
//! says, what it saves, that its traces replay, and that --jobs does not change what it finds.

mod common;
use common::{data, mmsim, stdout, tmp};

use mmsim_traces::Severity;
use std::path::PathBuf;

#[test]
fn exhaustive_search_reports_its_bound_saves_replayable_traces_and_jobs_change_nothing() {
    let scenario = data("fault-unshare-2cpu.ron");
    let out = tmp("dfs-cli", "out");
    let args = |jobs: &'static str| {
        vec![
            "explore",
            scenario.as_str(),
            "--profile",
            "v4.20",
            "--exhaustive",
            "--preemptions",
            "2",
            "--jobs",
            jobs,
        ]
    };
    let mut with_out = args("1");
    with_out.extend(["--out", out.to_str().unwrap()]);
    let r = mmsim(&with_out);
    assert_eq!(r.status.code(), Some(1), "{}", String::from_utf8_lossy(&r.stderr));
    let text = stdout(&r);
    assert!(text.contains("exhaustive up to preemption bound 2: "), "{text}");
    assert!(text.contains("distinct violation signatures"), "{text}");
    assert!(!text.contains("NOT exhaustive"), "{text}");
    let traces: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "ron"))
        .collect();
    assert!(traces.len() >= 2, "one trace per signature: {traces:?}");
    for t in &traces {
        let rep = mmsim(&["replay", t.to_str().unwrap()]);
        // a warning signature's trace (a range revisit) replays with exit 0: it is below the
        // default --min-severity bug
        let trace = mmsim_traces::read(t).unwrap();
        let counted = mmsim_traces::Severity::worst(&trace.reports) >= Some(Severity::Bug);
        let want = i32::from(counted);
        assert_eq!(rep.status.code(), Some(want), "{}", String::from_utf8_lossy(&rep.stderr));
        assert!(stdout(&rep).contains("identical"), "{}", stdout(&rep));
    }
    // --jobs searches bounds at once: the same summary, also when a bound stops the search
    let one = stdout(&mmsim(&args("1")));
    let two = stdout(&mmsim(&args("2")));
    assert_eq!(one, two);
    let first = |jobs| {
        let mut a = args(jobs);
        a.extend(["--stop-on-first", "--format", "json"]);
        stdout(&mmsim(&a))
    };
    let (one, three) = (first("1"), first("3"));
    assert!(one.contains("stopped at the first violation"), "{one}");
    assert_eq!(one, three);
    // JSON says the same
    let mut json = args("1");
    json.extend(["--format", "json"]);
    let j: serde_json::Value = serde_json::from_str(&stdout(&mmsim(&json))).unwrap();
    assert_eq!(j["preemptions"], 2);
    assert!(j["groups"].as_array().unwrap().len() >= 2);
}

#[test]
fn a_budget_is_said_and_strategy_dfs_is_the_same_search() {
    let scenario = data("gup-unshare-2cpu.ron");
    let r =
        mmsim(&["explore", &scenario, "--strategy", "dfs", "--preemptions", "2", "--runs", "4"]);
    let text = stdout(&r);
    assert!(text.contains("NOT exhaustive: stopped after 4 executions"), "{text}");
    let bad = mmsim(&["explore", &scenario, "--exhaustive", "--strategy", "pct"]);
    assert_eq!(bad.status.code(), Some(2));
    let bad = mmsim(&["explore", &scenario, "--exhaustive", "--shard", "1/2"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn por_picks_the_reduction_and_the_summary_names_it() {
    let scenario = data("fault-unshare-2cpu.ron");
    let run = |por: &str, format: &str| {
        let r = mmsim(&[
            "explore",
            &scenario,
            "--profile",
            "v4.20",
            "--exhaustive",
            "--preemptions",
            "1",
            "--por",
            por,
            "--format",
            format,
        ]);
        assert_eq!(r.status.code(), Some(1), "{}", String::from_utf8_lossy(&r.stderr));
        stdout(&r)
    };
    let dpor = run("dpor", "text");
    assert!(dpor.contains("bounded DPOR over declared accesses (--por dpor)"), "{dpor}");
    assert!(dpor.contains("backtrack points"), "{dpor}");
    assert!(dpor.contains("exhaustive up to preemption bound 1: "), "{dpor}");
    let sleep = run("sleep", "text");
    assert!(sleep.contains("sleep sets over declared accesses (--por sleep)"), "{sleep}");
    let j: serde_json::Value = serde_json::from_str(&run("dpor", "json")).unwrap();
    assert_eq!(j["por"], "dpor");
    let j: serde_json::Value = serde_json::from_str(&run("sleep", "json")).unwrap();
    assert_eq!(j["por"], "sleep");
    // both find the same signatures
    let sigs = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| l.starts_with("violation "))
            .map(|l| l.split(" in ").next().unwrap().to_string())
            .collect()
    };
    assert_eq!(sigs(&dpor), sigs(&sleep));
    let bad = mmsim(&["explore", &scenario, "--exhaustive", "--por", "chess"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn a_time_limit_makes_the_search_not_exhaustive() {
    let scenario = data("gup-unshare-2cpu.ron");
    let r =
        mmsim(&["explore", &scenario, "--exhaustive", "--preemptions", "3", "--time-limit", "0s"]);
    let text = stdout(&r);
    assert!(text.contains("NOT exhaustive: time limit, after 1 executions"), "{text}");
}

#[test]
fn ctrl_c_stops_the_search_cleanly_and_still_writes_the_summary() {
    let out = tmp("dfs-cli", "cut-int");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_mmsim"))
        // DPOR: the search that takes minutes here (sleep sets prove bound 6 in seconds)
        .args(["explore", "gup-vs-unshare", "--profile", "v6.3", "--exhaustive", "--por", "dpor"])
        .args(["--preemptions", "3", "--format", "json", "--out", out.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let o = child.wait_with_output().unwrap();
    let printed: mmsim::dfs::DfsSummary = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)));
    let written: mmsim::dfs::DfsSummary =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(printed, written);
    assert!(!written.exhaustive());
    let why = written.stopped.as_deref().unwrap_or_default();
    assert!(why.starts_with("interrupted (Ctrl-C), after "), "{why}");
    assert_eq!(o.status.code(), Some(written.exit_code()));
}
