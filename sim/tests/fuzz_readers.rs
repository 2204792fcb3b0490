//! Fuzzing what users feed mmsim, end to end: mutations of real traces through the reader,
//! replay and every renderer; and the committed corpus (`tests/fuzz-corpus/`) through the
//! binary, each file refused with exit 2 and the message its first line expects. The readers'
//! own property tests live beside them (`scenario.rs`, `profile.rs`, `traces/src/io.rs`).

mod common;
use common::{builtin, mmsim, prepare, stderr};

use mmsim_traces::{Trace, TraceError};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, RngSeed};
use std::path::Path;
use std::sync::OnceLock;

/// Real traces written by the library: a fork scenario (small) and an anonymous-memory one.
fn traces() -> &'static [String] {
    static TRACES: OnceLock<Vec<String>> = OnceLock::new();
    TRACES.get_or_init(|| {
        ["fork-copy-shared", "anon-fault-munmap"]
            .iter()
            .map(|name| {
                let (t, _) = prepare(builtin(name), None, None, &[]).run_seed(1, true).unwrap();
                mmsim_traces::to_ron(&t)
            })
            .collect()
    })
}

/// One edit of a trace, by line (so most mutants still parse and reach replay) or by byte.
#[derive(Clone, Debug)]
enum Edit {
    DeleteLine(usize),
    DuplicateLine(usize),
    SwapLines(usize, usize),
    /// Replace the n-th number on a line.
    Number(usize, usize, &'static str),
    /// Replace the n-th of a word's occurrences with another word.
    Word(usize, &'static str, &'static str),
    Flip(usize, u8),
    Truncate(usize),
}

const NUMBERS: &[&str] = &[
    "0",
    "1",
    "2",
    "7",
    "8",
    "255",
    "256",
    "65535",
    "65536",
    "4294967295",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "-1",
];
const WORDS: &[(&str, &str)] = &[
    ("Cpu(", "Irq("),
    ("Cpu(", "Cpu(9"),
    ("Irq(", "Cpu("),
    ("Setup", "Teardown"),
    ("Teardown", "Rcu"),
    ("Read", "Write"),
    ("LockWrite", "UnlockWrite"),
    ("Alloc", "Free"),
    ("Clean", "Violation"),
    ("\"x86_64\"", "\"arm64-64k\""),
    ("\"v6.1\"", "\"v6.3\""),
    ("random(depth=3)", "swarm(ops=1, prio=0, stall=0, quarantine=false)"),
    ("random(depth=3)", "fair(random(depth=3))"),
    ("random(depth=3)", "random(depth=0)"),
    ("\"true\"", "\"maybe\""),
    ("fault_lock", "no_such_switch"),
    ("GupSlow", "GupFast"),
    ("Fork(", "Fork(mm: \"A\", "),
    ("\"PUD\"", "\"1000000*PUD\""),
    ("\"PUD\"", "\"PMD\""),
    ("ops: [", "ops: [ExitMmap, "),
];

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        2 => any::<usize>().prop_map(Edit::DeleteLine),
        2 => any::<usize>().prop_map(Edit::DuplicateLine),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
        4 => (any::<usize>(), any::<usize>(), prop::sample::select(NUMBERS))
            .prop_map(|(l, n, to)| Edit::Number(l, n, to)),
        3 => (any::<usize>(), prop::sample::select(WORDS)).prop_map(|(n, (a, b))| Edit::Word(n, a, b)),
        1 => (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Edit::Flip(at, bit)),
        1 => any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut lines: Vec<String> = text.split('\n').map(String::from).collect();
    let mut bytes = None;
    for e in edits {
        let n = lines.len();
        match *e {
            Edit::DeleteLine(i) => {
                lines.remove(i % n);
            }
            Edit::DuplicateLine(i) => lines.insert(i % n, lines[i % n].clone()),
            Edit::SwapLines(a, b) => lines.swap(a % n, b % n),
            Edit::Number(l, k, to) => {
                let line = &mut lines[l % n];
                let runs: Vec<(usize, usize)> = line
                    .match_indices(|c: char| c.is_ascii_digit())
                    .map(|(i, _)| i)
                    .filter(|&i| i == 0 || !line.as_bytes()[i - 1].is_ascii_alphanumeric())
                    .map(|i| (i, i + line[i..].bytes().take_while(u8::is_ascii_digit).count()))
                    .collect();
                if let Some(&(s, e)) = runs.get(k % runs.len().max(1)) {
                    line.replace_range(s..e, to);
                }
            }
            Edit::Word(k, from, to) => {
                let whole = lines.join("\n");
                if let Some((i, _)) = whole.match_indices(from).nth(k % 64) {
                    let whole = format!("{}{to}{}", &whole[..i], &whole[i + from.len()..]);
                    lines = whole.split('\n').map(String::from).collect();
                }
            }
            // a byte edit ends the line edits: the text may no longer be UTF-8
            Edit::Flip(i, bit) => {
                let mut b = lines.join("\n").into_bytes();
                let at = i % b.len();
                b[at] ^= 1 << bit;
                bytes = Some(b);
                break;
            }
            Edit::Truncate(i) => {
                let mut b = lines.join("\n").into_bytes();
                b.truncate(i % b.len());
                bytes = Some(b);
                break;
            }
        }
    }
    match bytes {
        Some(b) => String::from_utf8_lossy(&b).into_owned(),
        None => lines.join("\n"),
    }
}

/// What reading, replaying and rendering a mutant may do: anything but panic, and errors
/// that say where.
fn read_replay_render(text: &str) -> Result<(), TestCaseError> {
    let t: Trace = match mmsim_traces::from_ron(text, "fuzz.ron") {
        Ok(t) => t,
        Err(TraceError::Parse { line, col, .. }) => {
            prop_assert!(line >= 1 && line <= text.split('\n').count() && col >= 1);
            return Ok(());
        }
        Err(TraceError::SchemaVersion { found, expected, .. }) => {
            prop_assert!(found != expected);
            return Ok(());
        }
        Err(e) => return Err(TestCaseError::fail(format!("{e}"))),
    };
    match mmsim::run::replay(&t, "fuzz.ron") {
        Ok(_) => {}
        Err(e) => prop_assert!(!e.to_string().is_empty()),
    }
    let opts = mmsim_viz::RenderOptions::default();
    for format in mmsim_viz::Format::ALL {
        let _ = mmsim_viz::render(&t, format, &opts);
    }
    Ok(())
}

proptest! {
    #![proptest_config(Config {
        cases: 1000,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(0xf022_7ace),
        failure_persistence: None,
        max_shrink_iters: 512,
        ..Config::default()
    })]

    #[test]
    fn mutated_real_traces_read_replay_and_render_without_panicking(
        which in 0..2usize,
        edits in prop::collection::vec(edit(), 1..4),
    ) {
        read_replay_render(&apply(&traces()[which], &edits))?;
    }
}

#[test]
fn the_unmutated_traces_replay_identically() {
    for text in traces() {
        let t = mmsim_traces::from_ron(text, "real.ron").unwrap();
        let r = mmsim::run::replay(&t, "real.ron").unwrap();
        assert!(matches!(r, mmsim::run::ReplayResult::Identical(_)), "{r:?}");
    }
}

/// Every file under `tests/fuzz-corpus/{scenarios,traces}` starts with `// expect: TEXT`;
/// `mmsim run` (scenarios) or `mmsim replay` (traces) must exit 2 with TEXT in its message,
/// `{file}` standing for the file's path, and never panic.
#[test]
fn corpus_files_are_refused_with_exit_2_and_the_expected_message() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-corpus");
    let mut seen = 0;
    for (dir, cmd) in [("scenarios", "run"), ("traces", "replay")] {
        let mut files: Vec<_> =
            std::fs::read_dir(root.join(dir)).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        for path in files {
            let bytes = std::fs::read(&path).unwrap();
            let first = bytes.split(|&b| b == b'\n').next().unwrap();
            let first = String::from_utf8_lossy(first);
            let expect = first
                .strip_prefix("// expect: ")
                .unwrap_or_else(|| panic!("{}: no `// expect: ` first line", path.display()));
            let file = path.display().to_string();
            let expect = expect.replace("{file}", &file);
            let out = mmsim(&[cmd, &file]);
            let err = stderr(&out);
            assert!(!err.contains("panicked"), "{file}: {err}");
            assert_eq!(out.status.code(), Some(2), "{file}: {err}");
            assert!(err.contains(&expect), "{file}: expected `{expect}` in:\n{err}");
            seen += 1;
        }
    }
    assert!(seen >= 20, "the corpus has {seen} files");
}
