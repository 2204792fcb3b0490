//! What the integration tests share: running the `mmsim` binary, scratch paths, and preparing
//! a scenario the way the CLI does. Each file under `tests/` is its own crate and uses a part.
#![allow(dead_code)]

use mmsim::explore::{Config, Summary};
use mmsim::run::{Prepared, Request};
use mmsim::scenario::Source;
use mmsim_traces::Verdict;
use std::path::PathBuf;
use std::process::{Command, Output};

/// Run the `mmsim` binary built for these tests.
pub fn mmsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mmsim")).args(args).output().expect("mmsim runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A path inside this test process's scratch directory `mmsim-<group>-<pid>` (created).
pub fn tmp(group: &str, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mmsim-{group}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// A fresh scratch directory that does not exist yet (for commands that create it).
pub fn fresh_dir(group: &str, name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mmsim-{group}-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// A built-in scenario, or a scenario file by path.
pub fn builtin(name: &str) -> Source {
    Source::load(name).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Scenario text given inline, named `origin` in errors.
pub fn inline(origin: &str, text: &str) -> Source {
    Source { origin: origin.into(), text: text.into() }
}

/// A scenario file under `sim/tests/data/`.
pub fn data(name: &str) -> String {
    format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// The request the CLI makes for `--arch`, `--profile` and `--set` (`None`: the scenario's own).
pub fn request(source: Source, arch: Option<&str>, profile: Option<&str>, set: &[&str]) -> Request {
    Request {
        source,
        arch: arch.map(Into::into),
        profile: profile.map(Into::into),
        set: set.iter().map(|s| s.to_string()).collect(),
    }
}

/// Prepare a run as the CLI does, panicking with what was asked for when it is refused.
pub fn prepare(
    source: Source,
    arch: Option<&str>,
    profile: Option<&str>,
    set: &[&str],
) -> Prepared {
    let what = format!("{} {arch:?} {profile:?} {set:?}", source.origin);
    Prepared::new(&request(source, arch, profile, set)).unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// Seeds `0..seeds` all run clean.
pub fn assert_clean(p: &Prepared, seeds: u64, what: &str) {
    for seed in 0..seeds {
        let (t, out) = p.run_seed(seed, false).unwrap();
        assert_eq!(out.verdict, Verdict::Clean, "{what} seed {seed}: {:#?}", t.reports);
    }
}

/// Explore as `cfg` says, with no progress callback and no output directory.
pub fn explore(p: &Prepared, cfg: &Config) -> Summary {
    mmsim::explore::explore_config(p, cfg, &|_| {}, None).unwrap()
}
