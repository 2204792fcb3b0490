//! The golden trace corpus `traces/corpus/`: traces written by an earlier mmsim must keep
//! replaying identically (every event, decision, the verdict and the reports), or be refused
//! with both schema versions named. See `traces/corpus/README.md` for what is promised.
//!
//! Regenerate (only when an intended model change alters traces, and say so in the commit):
//! `cargo test -p mmsim --test corpus -- --ignored regenerate_corpus`

mod common;

use mmsim::run::{Prepared, ReplayResult};
use mmsim::scenario::BUILTIN;
use mmsim_traces::{TraceError, Verdict, OLDEST_READABLE_SCHEMA, SCHEMA_VERSION};
use std::path::{Path, PathBuf};

/// The corpus: every built-in scenario on its own arch configuration, and the small ones also
/// on the other PMD-sharing page-table formats (`None`: the scenario's own arch).
const EXTRA_ARCHS: &[(&str, &[&str])] = &[
    ("anon-fault-munmap", &["arm64-4k", "riscv64-sv39"]),
    ("fork-copy-shared", &["arm64-4k", "riscv64-sv39"]),
    ("refcount-share", &["arm64-4k", "riscv64-sv39"]),
    ("gup-vs-unshare", &["arm64-4k"]),
    ("split-unshare", &["riscv64-sv39"]),
    ("fork-cow-private", &["arm64-4k", "riscv64-sv39"]),
];

/// Seeds the generator scans for a run that reports something.
const SCAN_SEEDS: u64 = 64;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../traces/corpus")
}

fn corpus_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("traces/corpus exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "ron"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_corpus_trace_replays_identically() {
    let files = corpus_files();
    assert!(!files.is_empty(), "no traces in {}", corpus_dir().display());
    // two threads: the corpus is a few dozen replays
    let (a, b) = files.split_at(files.len() / 2);
    std::thread::scope(|s| {
        for part in [a, b] {
            s.spawn(move || part.iter().for_each(|f| replay_one(f)));
        }
    });
}

fn replay_one(path: &Path) {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let t = mmsim_traces::read(path).unwrap_or_else(|e| panic!("{e}"));
    let schema = t.header.schema_version;
    assert!((OLDEST_READABLE_SCHEMA..=SCHEMA_VERSION).contains(&schema), "{name}: {schema}");
    match mmsim::run::replay(&t, &name).unwrap_or_else(|e| panic!("{name}: {e}")) {
        ReplayResult::Identical(again) => {
            assert_eq!(again.decisions, t.decisions, "{name}: decisions");
            assert_eq!(again.events.len(), t.events.len(), "{name}: events");
            assert_eq!(again.verdict, t.verdict, "{name}: verdict");
            assert_eq!(again.reports, t.reports, "{name}: reports");
            if schema == SCHEMA_VERSION {
                // the same version writes the same events byte for byte (values included)
                assert_eq!(again.events, t.events, "{name}: events");
            }
        }
        ReplayResult::Diverged(d) => panic!(
            "{name}: the corpus trace no longer replays: {d}\n(if the model change is \
             intended, regenerate the corpus and say so in the commit; see traces/corpus/README.md)"
        ),
    }
}

#[test]
fn every_builtin_scenario_has_a_corpus_trace() {
    let files: Vec<String> = corpus_files()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for (name, _) in BUILTIN {
        assert!(
            files.iter().any(|f| f.split_once('.').is_some_and(|(s, _)| s == *name)),
            "{name} has no trace in traces/corpus (regenerate it)"
        );
    }
}

#[test]
fn a_corpus_trace_of_an_unreadable_schema_is_refused_naming_both_versions() {
    let path = corpus_files().into_iter().next().expect("a corpus trace");
    let text = std::fs::read_to_string(&path).unwrap();
    let line = format!(
        "schema_version: {},",
        mmsim_traces::from_ron(&text, "x").unwrap().header.schema_version
    );
    assert!(text.contains(&line));
    for other in [OLDEST_READABLE_SCHEMA - 1, SCHEMA_VERSION + 1] {
        let edited = text.replacen(&line, &format!("schema_version: {other},"), 1);
        match mmsim_traces::from_ron(&edited, "old.ron") {
            Err(e @ TraceError::SchemaVersion { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains(&format!("version {other}")), "{msg}");
                assert!(
                    msg.contains(&format!("{OLDEST_READABLE_SCHEMA}..={SCHEMA_VERSION}")),
                    "{msg}"
                );
            }
            other => panic!("schema {other:?} not refused by version"),
        }
    }
}

/// The corpus entries: (scenario, arch override).
fn entries() -> Vec<(&'static str, Option<&'static str>)> {
    let mut v = Vec::new();
    for (name, _) in BUILTIN {
        v.push((*name, None));
        if let Some((_, archs)) = EXTRA_ARCHS.iter().find(|(s, _)| s == name) {
            v.extend(archs.iter().map(|a| (*name, Some(*a))));
        }
    }
    v
}

/// Writes `traces/corpus/SCENARIO.ARCH.ron` for every entry: the first seed in
/// 0..[`SCAN_SEEDS`] whose run reports anything (warnings included), else seed 0, with the
/// default random strategy. Removes corpus traces no entry names.
#[test]
#[ignore = "regenerates traces/corpus: run only for an intended model change"]
fn regenerate_corpus() {
    let dir = corpus_dir();
    let mut written = Vec::new();
    for (scenario, arch) in entries() {
        let p: Prepared =
            match Prepared::new(&common::request(common::builtin(scenario), arch, None, &[])) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("skipped {scenario} on {arch:?}: {e}");
                    continue;
                }
            };
        let seed = (0..SCAN_SEEDS)
            .find(|&s| p.run_seed(s, false).unwrap().1.verdict != Verdict::Clean)
            .unwrap_or(0);
        let t = p.run_seed(seed, true).unwrap().0;
        let file = format!("{scenario}.{}.ron", t.header.arch);
        mmsim_traces::write_atomic(&dir.join(&file), &t).unwrap();
        eprintln!("{file}: seed {seed}, {:?}, {} events", t.verdict, t.events.len());
        written.push(file);
    }
    for f in corpus_files() {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        if !written.contains(&name) {
            std::fs::remove_file(&f).unwrap();
            eprintln!("removed {name}");
        }
    }
}
