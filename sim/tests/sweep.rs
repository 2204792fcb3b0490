//! Sweeps on a real batch system, end to end through the binary: an exploration killed with
//! SIGKILL resumes from its checkpoint to the uninterrupted run's summary, byte for byte; and
//! shards whose index comes from the environment (a Kubernetes Indexed Job's
//! JOB_COMPLETION_INDEX, a Slurm array's SLURM_ARRAY_TASK_ID), run in parallel by `xargs -P`,
//! merge to the unsharded summary.

mod common;
use common::{fresh_dir, mmsim, stderr, stdout};

use mmsim::checkpoint::Checkpoint;
use mmsim::explore::Summary;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: &str = "2000";

/// The kill test's range: long enough that the kill lands well before the end (0.6 s per 2000
/// seeds on one thread of the test build here).
const KILLED_RUNS: &str = "8000";

fn explore_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    explore_n(RUNS, extra)
}

fn explore_n<'a>(runs: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["explore", "gup-vs-unshare", "--profile", "v6.1", "--runs", runs, "--quiet"];
    v.extend_from_slice(extra);
    v
}

fn files_of(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap())
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_killed_exploration_resumes_to_the_uninterrupted_summary_byte_for_byte() {
    let dir = fresh_dir("sweep", "killed");
    let d = dir.to_str().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mmsim"))
        .args(explore_n(KILLED_RUNS, &["--jobs", "1", "--checkpoint-every", "50", "--out", d]))
        .args(["--format", "json"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // every read of the checkpoint while it is being replaced parses: it is never torn
    let ckpt_path = Checkpoint::path(&dir);
    let started = Instant::now();
    let mut reads = 0;
    let seen = loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the exploration ended ({status}) before it was killed: give it more --runs");
        }
        assert!(started.elapsed() < Duration::from_secs(120), "no checkpoint appeared");
        if let Ok(text) = std::fs::read_to_string(&ckpt_path) {
            let c: Checkpoint = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("torn checkpoint after {reads} reads: {e}\n{text}"));
            reads += 1;
            if c.seeds_done >= 100 {
                break c.seeds_done;
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(9), "{status}");
    // what the killed run left: a valid checkpoint of a prefix, a whole multiple of 50 seeds
    let c = Checkpoint::read(&dir).unwrap();
    assert!(c.seeds_done >= seen && c.seeds_done < 8000, "{}", c.seeds_done);
    assert_eq!(c.seeds_done % 50, 0);
    assert_eq!((c.summary.runs, c.next_seed), (c.seeds_done, Some(c.seeds_done)));
    let summary = dir.join("summary.json");
    if summary.exists() {
        serde_json::from_slice::<Summary>(&std::fs::read(&summary).unwrap()).unwrap();
    }

    // resumed (on another number of threads), and an uninterrupted run for comparison
    let resumed =
        mmsim(&explore_n(KILLED_RUNS, &["--jobs", "2", "--resume", d, "--format", "json"]));
    assert_eq!(resumed.status.code(), Some(1), "{}", stderr(&resumed));
    let whole_dir = fresh_dir("sweep", "whole");
    let whole =
        mmsim(&explore_n(KILLED_RUNS, &["--out", whole_dir.to_str().unwrap(), "--format", "json"]));
    assert_eq!(whole.status.code(), Some(1), "{}", stderr(&whole));
    assert_eq!(stdout(&resumed), stdout(&whole));
    let read = |d: &Path| std::fs::read(d.join("summary.json")).unwrap();
    assert_eq!(read(&dir), read(&whole_dir), "summary.json byte for byte");
    assert_eq!(read(&dir), whole.stdout);
    // the traces too; the resumed directory has its checkpoint besides (of the whole range)
    let (mut a, b) = (files_of(&dir), files_of(&whole_dir));
    a.retain(|(n, _)| n != "checkpoint.json" && !n.ends_with(".tmp"));
    assert_eq!(a, b);
    let end = Checkpoint::read(&dir).unwrap();
    assert_eq!((end.seeds_done, end.next_seed), (8000, None));
    // resuming a finished exploration runs nothing and gives the same summary again
    let again = mmsim(&explore_n(KILLED_RUNS, &["--resume", d, "--format", "json"]));
    assert_eq!(again.stdout, whole.stdout);
}

#[test]
fn a_resume_with_another_configuration_is_refused_naming_the_field() {
    let dir = fresh_dir("sweep", "refuse");
    let d = dir.to_str().unwrap();
    let o = mmsim(&[
        "explore",
        "gup-vs-unshare",
        "--profile",
        "v6.3",
        "--runs",
        "40",
        "--quiet",
        "--checkpoint-every",
        "20",
        "--out",
        d,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let base = ["explore", "gup-vs-unshare", "--profile", "v6.3", "--runs", "40", "--resume", d];
    for (extra, field) in [
        (&["--profile", "v6.1"][..], "profile"),
        (&["--arch", "arm64-4k"][..], "arch"),
        (&["--set", "quarantine=true"][..], "switches"),
        (&["--strategy", "pct"][..], "strategy"),
        (&["--depth", "2"][..], "depth"),
        (&["--runs", "41"][..], "seed range"),
        (&["--seed-start", "1"][..], "seed range"),
        (&["--shard", "1/2"][..], "shard"),
        (&["--min-severity", "warning"][..], "min_severity"),
        (&["--no-determinism-check"][..], "determinism check"),
    ] {
        let mut args = vec!["explore", "gup-vs-unshare", "--resume", d];
        args.extend_from_slice(extra);
        for (flag, value) in [("--profile", "v6.3"), ("--runs", "40")] {
            if !extra.contains(&flag) {
                args.extend([flag, value]);
            }
        }
        let o = mmsim(&args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains(&format!("cannot resume: the checkpoint's {field} is ")), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    let other = mmsim(&["explore", "fork-copy-shared", "--runs", "40", "--resume", d]);
    assert!(
        stderr(&other).contains("checkpoint's scenario is gup-vs-unshare"),
        "{}",
        stderr(&other)
    );
    // no checkpoint, a torn one, a misplaced --out, --checkpoint-every without a directory
    let none = mmsim(&["explore", "gup-vs-unshare", "--resume", "/nonexistent/dir"]);
    assert_eq!(none.status.code(), Some(2));
    assert!(stderr(&none).contains("/nonexistent/dir/checkpoint.json"), "{}", stderr(&none));
    let torn = fresh_dir("sweep", "torn");
    std::fs::create_dir_all(&torn).unwrap();
    std::fs::write(torn.join("checkpoint.json"), "{\"format\": 1, \"mmsim_ver").unwrap();
    let o = mmsim(&["explore", "gup-vs-unshare", "--resume", torn.to_str().unwrap()]);
    assert!(stderr(&o).contains("not an mmsim explore checkpoint"), "{}", stderr(&o));
    let o = mmsim(&[&base[..], &["--out", "/tmp/elsewhere"]].concat());
    assert!(stderr(&o).contains("must be the same"), "{}", stderr(&o));
    let o = mmsim(&["explore", "gup-vs-unshare", "--checkpoint-every", "10"]);
    assert!(stderr(&o).contains("needs --out"), "{}", stderr(&o));
    let o = mmsim(&["explore", "gup-vs-unshare", "--exhaustive", "--resume", d]);
    assert!(stderr(&o).contains("exhaustive search cannot be resumed"), "{}", stderr(&o));
}

/// Run `N` shards of one sweep as a batch system would: the same command line for each, the
/// index in `var` only, 2 at a time through `xargs -P 2` and `sh -c`; then merge the parts.
fn sweep_through_xargs(name: &str, var: &str, indices: &[u64], base: &str) -> Vec<u8> {
    let dir = fresh_dir("sweep", name);
    std::fs::create_dir_all(&dir).unwrap();
    let n = indices.len();
    // as in the book's Kubernetes and Slurm scripts: exit status 1 (found) is a result
    let script = format!(
        "\"$0\" explore gup-vs-unshare --profile v6.1 --runs {RUNS} --jobs 1 --quiet \
         --shard-from-env {var}/{n} --shard-base {base} --format json > \"$1/part-${var}.json\"; \
         test $? -le 1"
    );
    let list: String = indices.iter().map(|i| format!("{i}\n")).collect();
    let mut xargs = Command::new("xargs")
        .args(["-P", "2", "-I", "{}", "env", &format!("{var}={{}}"), "sh", "-c", &script])
        .args([env!("CARGO_BIN_EXE_mmsim"), dir.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("xargs runs");
    use std::io::Write as _;
    xargs.stdin.take().unwrap().write_all(list.as_bytes()).unwrap();
    let o = xargs.wait_with_output().unwrap();
    assert!(o.status.success(), "xargs: {}", String::from_utf8_lossy(&o.stderr));
    let parts: Vec<String> = indices
        .iter()
        .map(|i| dir.join(format!("part-{i}.json")).to_str().unwrap().to_owned())
        .collect();
    let mut args = vec!["merge", "--format", "json"];
    args.extend(parts.iter().map(String::as_str));
    let merged = mmsim(&args);
    assert_eq!(merged.status.code(), Some(1), "{}", stderr(&merged));
    merged.stdout
}

#[test]
fn shards_indexed_from_the_environment_through_xargs_merge_to_the_unsharded_json() {
    let whole = mmsim(&explore_args(&["--format", "json"]));
    assert_eq!(whole.status.code(), Some(1), "{}", stderr(&whole));
    // Kubernetes Indexed Job: JOB_COMPLETION_INDEX 0..N-1
    let k8s = sweep_through_xargs("k8s", "JOB_COMPLETION_INDEX", &[0, 1, 2], "0");
    assert_eq!(String::from_utf8_lossy(&k8s), stdout(&whole));
    // Slurm --array=1-3: SLURM_ARRAY_TASK_ID 1..N
    let slurm = sweep_through_xargs("slurm", "SLURM_ARRAY_TASK_ID", &[1, 2, 3], "1");
    assert_eq!(slurm, whole.stdout);
}

#[test]
fn a_shard_index_missing_or_wrong_in_the_environment_is_one_clear_line() {
    let run = |env: &[(&str, &str)], spec: &str, extra: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_mmsim"));
        c.args(["explore", "gup-vs-unshare", "--runs", "4", "--shard-from-env", spec]);
        c.args(extra).env_remove("JOB_COMPLETION_INDEX");
        for (k, v) in env {
            c.env(k, v);
        }
        let o = c.output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{spec} {env:?}: {}", stderr(&o));
        assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
        stderr(&o)
    };
    assert!(run(&[], "JOB_COMPLETION_INDEX/4", &[]).contains("JOB_COMPLETION_INDEX is not set"));
    let e = run(&[("JOB_COMPLETION_INDEX", "two")], "JOB_COMPLETION_INDEX/4", &[]);
    assert!(e.contains("JOB_COMPLETION_INDEX=`two` is not a number"), "{e}");
    let e = run(&[("SLURM_ARRAY_TASK_ID", "4")], "SLURM_ARRAY_TASK_ID/4", &[]);
    assert!(e.contains("outside 0..=3") && e.contains("--shard-base 1"), "{e}");
    let e = run(&[("SLURM_ARRAY_TASK_ID", "0")], "SLURM_ARRAY_TASK_ID/4", &["--shard-base", "1"]);
    assert!(e.contains("outside 1..=4"), "{e}");
    assert!(run(&[], "4", &[]).contains("expected VAR/N"));
    // the index it took shows in the summary, 1-based as --shard
    let o = Command::new(env!("CARGO_BIN_EXE_mmsim"))
        .args(["explore", "gup-vs-unshare", "--profile", "v6.3", "--runs", "8"])
        .args(["--shard-from-env", "JOB_COMPLETION_INDEX/4", "--quiet"])
        .env("JOB_COMPLETION_INDEX", "3")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("seeds 0..8 (shard 4/4)"), "{}", stdout(&o));
}

#[test]
fn a_cut_exploration_resumes_from_its_prefix_without_running_it_again() {
    use mmsim::explore::{self, Config, StopFlag};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    let p = common::prepare(common::builtin("gup-vs-unshare"), None, Some("v6.1"), &[]);
    let cfg = Config { runs: 600, jobs: 2, checkpoint_every: Some(64), ..Config::default() };
    let whole = explore::explore_config(
        &p,
        &Config { checkpoint_every: None, ..cfg.clone() },
        &|_| {},
        None,
    )
    .unwrap();
    // cut by the stop flag (a time limit, Ctrl-C): the last checkpoint is the prefix it ran
    let dir = fresh_dir("sweep", "cut");
    let stop = Arc::new(StopFlag::default());
    let seen = AtomicU64::new(0);
    let each = |_: &explore::SeedResult| {
        if seen.fetch_add(1, Ordering::SeqCst) + 1 == 150 {
            stop.raise("time limit 1s");
        }
    };
    let cut_cfg = Config { stop: Some(stop.clone()), ..cfg.clone() };
    let cut = explore::explore_config(&p, &cut_cfg, &each, Some(&dir)).unwrap();
    assert!(cut.cut.is_some() && cut.runs >= 150 && cut.runs < 600, "{cut}");
    let mut c = Checkpoint::read(&dir).unwrap();
    assert_eq!((c.seeds_done, c.summary.cut.as_deref()), (cut.runs, None));
    // resumed: the rest of the range only (a mark planted in the prefix's summary survives)
    let resume = |c: &Checkpoint| {
        let cfg =
            Config { resume: Some(Box::new(c.clone())), checkpoint_every: None, ..cfg.clone() };
        explore::explore_config(&p, &cfg, &|_| {}, Some(&dir)).unwrap()
    };
    let mut resumed = resume(&c);
    for g in resumed.groups.iter_mut().chain(resumed.warning_groups.iter_mut()) {
        g.trace = None;
    }
    assert_eq!(explore::to_json(&resumed), explore::to_json(&whole));
    c.summary.steps += 1;
    assert_eq!(resume(&c).steps, whole.steps + 1);
}
