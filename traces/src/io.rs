//! Reading and writing trace files: the one fixed RON layout ([`to_ron`]), parsing with the
//! schema version checked first ([`from_ron`], [`read`]), and atomic file replacement
//! ([`write_atomic`], [`write_atomic_bytes`]) that any mmsim output may reuse.
//!
//! Invariant: the same [`Trace`] always serializes to the same bytes. The layout puts each header
//! field on its own line and each decision, event and report on one line, for line diffs. Strings
//! are written verbatim (a raw string `r#"..."#` when they hold quotes or backslashes), so one that
//! contains newlines, such as the embedded scenario source or a report's text, spans lines and
//! stays readable; event details are single-line by convention and so keep their event on one line.
//!
//! ```text
//! Event(step: 1, time: 10, actor: Cpu(0), op: 0, op_step: 1, func: "hugetlb_walk", object: Entry(pfn: 419, index: 5), access: Read, detail: "pud 0x1a3067"),
//! ```

use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use ron::ser::PrettyConfig;
use serde::Deserialize;

use crate::schema::{Trace, OLDEST_READABLE_SCHEMA, SCHEMA_VERSION};

/// Why a trace could not be read or written. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The file system refused (open, read, write, sync, rename).
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The trace was written by an mmsim with a schema version this one cannot read.
    #[error(
        "{path}: trace schema version {found}, this mmsim reads versions {}..={expected} (schema 3 without entry values)",
        crate::schema::OLDEST_READABLE_SCHEMA
    )]
    SchemaVersion { path: String, found: u32, expected: u32 },
    /// The text is not a valid trace of this schema version. `line` and `col` are 1-based.
    #[error("{path}:{line}:{col}: {msg}")]
    Parse { path: String, line: usize, col: usize, msg: String },
}

/// The fixed pretty-printing layout. Changing it changes the bytes of every trace written.
///
/// Depth 1 is the `Trace` itself, depth 2 its fields (the header's fields, the lists), so with a
/// limit of 2 every element of `decisions`, `events` and `reports` (depth 3) is one line, and so are
/// `switches` and `cpus` inside the header.
fn pretty_config() -> PrettyConfig {
    PrettyConfig::new()
        .depth_limit(2)
        .new_line("\n")
        .indentor("    ")
        .separator(" ")
        .struct_names(true)
        .separate_tuple_members(false)
        .enumerate_arrays(false)
        .compact_arrays(false)
        .compact_structs(false)
        .compact_maps(false)
        .number_suffixes(false)
        .escape_strings(false)
        .extensions(ron::extensions::Extensions::empty())
}

/// Serializes a trace in the fixed layout, ending with a newline. Deterministic: same trace, same
/// bytes.
pub fn to_ron(trace: &Trace) -> String {
    // The schema has no maps, no floats and no non-string keys: serializing cannot fail.
    let mut text = ron::ser::to_string_pretty(trace, pretty_config())
        .expect("a Trace always serializes to RON");
    text.push('\n');
    text
}

/// Only the schema version, read while ignoring every other field, so that a trace of another
/// version (whose shape may differ anywhere) is named as such rather than as a syntax error.
/// The serde names must match the real types: RON checks struct names.
#[derive(Deserialize)]
#[serde(rename = "Trace")]
struct VersionProbe {
    header: HeaderProbe,
}

#[derive(Deserialize)]
#[serde(rename = "Header")]
struct HeaderProbe {
    schema_version: u32,
}

/// Parses a trace. `origin` names the text in errors (normally the file's path).
///
/// The schema version is checked first: a trace of a version outside
/// [`OLDEST_READABLE_SCHEMA`]..=[`SCHEMA_VERSION`] gives [`TraceError::SchemaVersion`] even if
/// its shape is otherwise unreadable. A schema-3 trace loads unchanged (its header keeps
/// version 3; its events have no `value`). Anything else wrong gives [`TraceError::Parse`] with
/// the 1-based position.
pub fn from_ron(text: &str, origin: &str) -> Result<Trace, TraceError> {
    if let Ok(probe) = ron::from_str::<VersionProbe>(text) {
        let found = probe.header.schema_version;
        if !(OLDEST_READABLE_SCHEMA..=SCHEMA_VERSION).contains(&found) {
            return Err(TraceError::SchemaVersion {
                path: origin.to_owned(),
                found,
                expected: SCHEMA_VERSION,
            });
        }
    }
    let trace = ron::from_str::<Trace>(text).map_err(|e| TraceError::Parse {
        path: origin.to_owned(),
        line: e.span.start.line,
        col: e.span.start.col,
        msg: match e.code {
            // RON's own text advises its API; say what is wrong with the file instead
            ron::Error::ExceededRecursionLimit => "nested more than 128 levels deep".to_owned(),
            code => code.to_string(),
        },
    })?;
    // what every reader of a trace relies on (step-indexed lookups, spans `from..=to`)
    if let Some((i, e)) = trace.events.iter().enumerate().find(|(i, e)| e.step != *i as u64) {
        let (line, col) = event_position(text, i);
        return Err(TraceError::Parse {
            path: origin.to_owned(),
            line,
            col,
            msg: format!(
                "event {i} has step {}: events are numbered 0, 1, 2, ... in order",
                e.step
            ),
        });
    }
    Ok(trace)
}

/// 1-based line and column of the `i`-th `Event(` after the `events` field (the field itself
/// if there are fewer).
fn event_position(text: &str, i: usize) -> (usize, usize) {
    let start = text.find("events:").unwrap_or(0);
    let at = text[start..].match_indices("Event(").nth(i).map_or(start, |(k, _)| start + k);
    let line = text[..at].matches('\n').count() + 1;
    let col = at - text[..at].rfind('\n').map_or(0, |n| n + 1) + 1;
    (line, col)
}

/// Reads and parses the trace file at `path`.
pub fn read(path: &Path) -> Result<Trace, TraceError> {
    let text = fs::read_to_string(path)
        .map_err(|source| TraceError::Io { path: path.to_owned(), source })?;
    from_ron(&text, &path.display().to_string())
}

/// Writes `trace` to `path` atomically (see [`write_atomic_bytes`]).
pub fn write_atomic(path: &Path, trace: &Trace) -> Result<(), TraceError> {
    write_atomic_bytes(path, to_ron(trace).as_bytes())
}

/// The temporary file [`write_atomic_bytes`] uses for `path`: `.{name}.tmp` in the same directory
/// (same file system, so the rename is atomic).
pub fn temp_path_for(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

/// Replaces the file at `path` with `bytes` atomically: readers see the old content or the new,
/// never a torn file. Writes `.{name}.tmp` beside the target, syncs it, renames it over the target
/// and syncs the directory (where the platform allows). On failure the temporary file is removed.
/// Two concurrent writers of the same path are not supported (they share the temporary name).
pub fn write_atomic_bytes(path: &Path, bytes: &[u8]) -> Result<(), TraceError> {
    if path.file_name().is_none() {
        return Err(TraceError::Io {
            path: path.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file path"),
        });
    }
    let tmp = temp_path_for(path);
    let io_err = |p: &Path| {
        let p = p.to_owned();
        move |source| TraceError::Io { path: p, source }
    };
    let result = (|| {
        let mut file = File::create(&tmp).map_err(io_err(&tmp))?;
        file.write_all(bytes).map_err(io_err(&tmp))?;
        file.sync_all().map_err(io_err(&tmp))?;
        drop(file);
        fs::rename(&tmp, path).map_err(io_err(path))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
        return result;
    }
    // Make the rename itself durable. Directories cannot be opened for syncing everywhere
    // (Windows), and the data is already safe, so this is best effort.
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::schema::*;

    pub(crate) fn event(
        step: u64,
        actor: Actor,
        func: &str,
        object: Object,
        access: Access,
    ) -> Event {
        Event {
            step,
            time: step * 10,
            actor,
            op: 0,
            op_step: step as u32,
            func: func.to_owned(),
            object,
            access,
            detail: format!("detail {step}"),
            value: None,
        }
    }

    pub(crate) fn sample() -> Trace {
        let site = |step, func: &str| Site {
            step,
            actor: Actor::Cpu(1),
            op: "Munmap(0x40000000, 0x40000000)".to_owned(),
            func: func.to_owned(),
        };
        Trace {
            header: Header {
                mmsim_version: "0.1.0".to_owned(),
                schema_version: SCHEMA_VERSION,
                scenario: "gup-vs-unshare".to_owned(),
                // Quotes, backslashes, hashes, newlines, tabs, non-ASCII: must survive verbatim.
                scenario_source:
                    "Scenario(\n    name: \"gup-vs-unshare\",\n\t// r#\"x\"# \\ ü\n)\n".to_owned(),
                arch: "x86_64".to_owned(),
                profile: "v6.1".to_owned(),
                switches: vec![
                    ("pmd_sharing".to_owned(), "true".to_owned()),
                    ("vma_lock".to_owned(), "false".to_owned()),
                ],
                strategy: "random".to_owned(),
                seed: 42,
                cpus: vec![
                    CpuInfo {
                        name: "CPU0".to_owned(),
                        mm: "mm0".to_owned(),
                        ops: vec!["GupSlow(0x40000000)".to_owned()],
                    },
                    CpuInfo {
                        name: "CPU1".to_owned(),
                        mm: "mm1".to_owned(),
                        ops: vec!["Munmap(0x40000000, 0x40000000)".to_owned()],
                    },
                ],
            },
            decisions: vec![
                Decision { actor: Actor::Cpu(0), op: 0, op_step: 0 },
                Decision { actor: Actor::Irq(1), op: 0, op_step: 1 },
            ],
            events: vec![
                event(0, Actor::Setup, "setup", Object::Table(0x1a3), Access::Alloc),
                Event {
                    value: Some(EntryValue { level: 1, raw: 0x1a4067 }),
                    ..event(
                        1,
                        Actor::Cpu(0),
                        "hugetlb_walk",
                        Object::Entry { pfn: 0x1a3, index: 5 },
                        Access::Read,
                    )
                },
                event(
                    2,
                    Actor::Cpu(1),
                    "huge_pmd_unshare",
                    Object::VmaLock { mm: 1, vma: 2 },
                    Access::LockWrite,
                ),
                event(3, Actor::Rcu, "rcu_gp", Object::Rcu, Access::GracePeriod),
                event(4, Actor::Teardown, "exit_mmap", Object::Vmas(0), Access::Write),
            ],
            verdict: Verdict::Violation,
            reports: vec![Report {
                kind: ReportKind::UseAfterFreeTable,
                title: "BUG: KASAN: use-after-free in huge_pte_lock".to_owned(),
                object: Some(Object::Table(0x1a3)),
                at: site(1, "huge_pte_lock"),
                allocated: Some(site(0, "pagetable_alloc")),
                queued: None,
                freed: Some(site(2, "free_pages")),
                unlinked: None,
                held: vec!["mmap_lock(mm0)".to_owned()],
                text: "BUG: KASAN: use-after-free\nRead of size 8\n".to_owned(),
            }],
        }
    }

    /// A fresh, empty directory for one test (no external tempdir crate).
    pub(crate) fn scratch_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("mmsim-traces-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn round_trip_is_equal_and_bytes_are_stable() {
        let trace = sample();
        let text = to_ron(&trace);
        let back = from_ron(&text, "mem.ron").expect("parses");
        assert_eq!(back, trace);
        assert_eq!(to_ron(&back), text, "re-serializing changed the bytes");
        assert_eq!(to_ron(&trace), text, "serializing twice changed the bytes");
        assert!(text.ends_with(")\n"));
    }

    #[test]
    fn each_event_and_decision_is_one_line() {
        let trace = sample();
        let text = to_ron(&trace);
        for ev in &trace.events {
            let needle = format!("step: {},", ev.step);
            let lines: Vec<&str> = text.lines().filter(|l| l.contains(&needle)).collect();
            // The event line (and the report sites mention `step` too, but not with `time`).
            let ev_lines: Vec<&&str> =
                lines.iter().filter(|l| l.trim_start().starts_with("Event(")).collect();
            assert_eq!(ev_lines.len(), 1, "event {} not on one line:\n{text}", ev.step);
            let line = ev_lines[0];
            assert!(line.contains(&format!("func: \"{}\"", ev.func)), "{line}");
            assert!(line.trim_end().ends_with("),"), "{line}");
        }
        let decision_lines =
            text.lines().filter(|l| l.trim_start().starts_with("Decision(")).count();
        assert_eq!(decision_lines, trace.decisions.len(), "{text}");
        // Header fields are each on their own line.
        assert!(text.contains("\n        seed: 42,\n"), "{text}");
        assert!(text.contains("\n        arch: \"x86_64\",\n"), "{text}");
    }

    #[test]
    fn schema_version_mismatch_names_both_versions_and_path() {
        let mut trace = sample();
        trace.header.schema_version = SCHEMA_VERSION + 6;
        let text = to_ron(&trace);
        let err = from_ron(&text, "race.ron").unwrap_err();
        assert!(
            matches!(
                err,
                TraceError::SchemaVersion { ref path, found, expected }
                    if path == "race.ron" && found == SCHEMA_VERSION + 6 && expected == SCHEMA_VERSION
            ),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "race.ron: trace schema version {}, this mmsim reads versions 3..={} (schema 3 without entry values)",
                SCHEMA_VERSION + 6,
                SCHEMA_VERSION
            )
        );
        // older than the oldest readable version: refused too
        trace.header.schema_version = 2;
        let err = from_ron(&to_ron(&trace), "old.ron").unwrap_err();
        assert!(matches!(err, TraceError::SchemaVersion { found: 2, .. }), "{err:?}");
    }

    #[test]
    fn entry_values_are_written_only_when_present() {
        let text = to_ron(&sample());
        let lines: Vec<&str> = text.lines().filter(|l| l.contains("value:")).collect();
        assert_eq!(lines.len(), 1, "{text}");
        assert!(
            lines[0].ends_with(
                "access: Read, detail: \"detail 1\", value: Some(EntryValue(level: 1, raw: 1720423))),"
            ),
            "{}",
            lines[0]
        );
    }

    #[test]
    fn a_schema_3_trace_loads_without_entry_values() {
        // what mmsim wrote before schema 4: version 3, no `value` fields
        let mut v3 = sample();
        v3.header.schema_version = 3;
        for e in &mut v3.events {
            e.value = None;
        }
        let text = to_ron(&v3);
        assert!(!text.contains("value:") && text.contains("schema_version: 3,"));
        let back = from_ron(&text, "v3.ron").expect("a schema-3 trace loads");
        assert_eq!(back, v3);
        assert!(back.events.iter().all(|e| e.value.is_none()));
    }

    #[test]
    fn schema_version_is_checked_before_the_shape() {
        // A future trace whose shape this version cannot read at all.
        let text = "Trace(header: Header(schema_version: 99, brand_new: [1, 2]), events: Foo)";
        let err = from_ron(text, "future.ron").unwrap_err();
        assert!(matches!(err, TraceError::SchemaVersion { found: 99, .. }), "{err:?}");
    }

    #[test]
    fn syntax_error_gives_path_line_and_col() {
        let text = to_ron(&sample());
        // Break the line of the `seed` field: `seed: 42,` -> `seed: 42 42,`.
        let (line_no, line) =
            text.lines().enumerate().find(|(_, l)| l.contains("seed: 42,")).unwrap();
        let broken = text.replacen("seed: 42,", "seed: 42 42,", 1);
        let err = from_ron(&broken, "race.ron").unwrap_err();
        match &err {
            TraceError::Parse { path, line: l, col, .. } => {
                assert_eq!(path, "race.ron");
                assert_eq!(*l, line_no + 1, "{err}");
                let at = line.find("42").unwrap() + 1; // 1-based column of the first `42`
                assert!(*col > at && *col <= line.len() + 4, "col {col}: {err}");
            }
            other => panic!("expected a parse error, got {other:?}"),
        }
        assert!(err.to_string().starts_with(&format!("race.ron:{}:", line_no + 1)), "{err}");
    }

    #[test]
    fn garbage_is_a_parse_error_not_a_version_error() {
        let err = from_ron("not a trace", "x.ron").unwrap_err();
        assert!(matches!(err, TraceError::Parse { line: 1, .. }), "{err:?}");
        assert!(err.to_string().starts_with("x.ron:1:"), "{err}");
    }

    #[test]
    fn missing_field_is_named() {
        let text = to_ron(&sample());
        let broken: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("profile:"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_ne!(broken, text);
        let err = from_ron(&broken, "race.ron").unwrap_err();
        assert!(matches!(err, TraceError::Parse { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.starts_with("race.ron:"), "{msg}");
        assert!(msg.contains("profile"), "{msg}");
    }

    #[test]
    fn write_atomic_replaces_and_leaves_no_temp_file() {
        let dir = scratch_dir("write-atomic");
        let path = dir.join("race.ron");
        fs::write(&path, "old content that is longer than nothing").unwrap();
        let trace = sample();
        write_atomic(&path, &trace).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), to_ron(&trace));
        assert_eq!(read(&path).unwrap(), trace);
        let names: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["race.ron".to_owned()]);
        assert!(!temp_path_for(&path).exists());

        write_atomic_bytes(&path, b"short").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"short");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn write_atomic_failure_names_the_file_and_cleans_up() {
        let dir = scratch_dir("write-atomic-fail");
        // The target is a non-empty directory: the rename fails.
        let path = dir.join("taken");
        fs::create_dir_all(path.join("inside")).unwrap();
        let err = write_atomic_bytes(&path, b"x").unwrap_err();
        assert!(matches!(err, TraceError::Io { .. }), "{err:?}");
        assert!(err.to_string().contains("taken"), "{err}");
        assert!(!temp_path_for(&path).exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn read_missing_file_names_it() {
        let err = read(Path::new("/nonexistent/mmsim/race.ron")).unwrap_err();
        assert!(matches!(err, TraceError::Io { .. }), "{err:?}");
        assert!(err.to_string().starts_with("/nonexistent/mmsim/race.ron: "), "{err}");
    }

    #[test]
    fn temp_path_is_hidden_sibling() {
        assert_eq!(temp_path_for(Path::new("out/race.ron")), PathBuf::from("out/.race.ron.tmp"));
        assert_eq!(temp_path_for(Path::new("race.ron")), PathBuf::from(".race.ron.tmp"));
    }
}

/// Property-based fuzzing of the trace reader: every schema version in the header, and
/// mutations of a written trace. Never a panic; errors name `path:line:col` or both schema
/// versions. Fixed seeds.
#[cfg(test)]
mod fuzz {
    use super::tests::sample;
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngAlgorithm, RngSeed};

    fn config(cases: u32, seed: u64) -> Config {
        Config {
            cases,
            rng_algorithm: RngAlgorithm::ChaCha,
            rng_seed: RngSeed::Fixed(seed),
            failure_persistence: None,
            max_shrink_iters: 1024,
            ..Config::default()
        }
    }

    /// What the reader may say: a position inside the text, or both versions.
    fn check(result: Result<Trace, TraceError>, text: &str) -> Result<(), TestCaseError> {
        let Err(e) = result else { return Ok(()) };
        let shown = e.to_string();
        match e {
            TraceError::Parse { path, line, col, msg } => {
                let lines = text.split('\n').count();
                prop_assert!(path == "fuzz.ron" && !msg.is_empty(), "{}", shown);
                prop_assert!(line >= 1 && line <= lines && col >= 1, "{} ({} lines)", shown, lines);
                prop_assert!(shown.starts_with(&format!("fuzz.ron:{line}:{col}: ")), "{}", shown);
            }
            TraceError::SchemaVersion { found, expected, .. } => {
                prop_assert!(!(OLDEST_READABLE_SCHEMA..=SCHEMA_VERSION).contains(&found));
                let both = format!(
                    "fuzz.ron: trace schema version {found}, this mmsim reads version {expected}"
                );
                prop_assert!(shown.starts_with(&both), "{}", shown);
            }
            TraceError::Io { .. } => prop_assert!(false, "{}", shown),
        }
        Ok(())
    }

    /// One edit of a text, positions taken modulo its length.
    #[derive(Clone, Debug)]
    enum Edit {
        Flip(usize, u8),
        Truncate(usize),
        Delete(usize, usize),
        Insert(usize, &'static str),
    }

    const TOKENS: &[&str] = &[
        "(",
        ")",
        "[",
        "]",
        ",",
        ":",
        "\"",
        "r#\"",
        "\"#",
        "Some(",
        "None",
        "-1",
        "4294967296",
        "18446744073709551616",
        "Cpu(",
        "Irq(255)",
        "Event(",
        "Decision(actor: Cpu(9), op: 0, op_step: 0),",
        "header: ",
        "schema_version: 3,",
        "schema_version: 99,",
        "//",
        "/*",
        "\n",
        "\u{0}",
        "é",
        "#![enable(implicit_some)]",
        "value: Some(EntryValue(level: 9, raw: 0)),",
    ];

    fn edit() -> impl Strategy<Value = Edit> {
        prop_oneof![
            3 => (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Edit::Flip(at, bit)),
            1 => any::<usize>().prop_map(Edit::Truncate),
            2 => (any::<usize>(), 1usize..64).prop_map(|(at, n)| Edit::Delete(at, n)),
            3 => (any::<usize>(), prop::sample::select(TOKENS)).prop_map(|(at, t)| Edit::Insert(at, t)),
        ]
    }

    fn apply(text: &str, edits: &[Edit]) -> String {
        let mut b = text.as_bytes().to_vec();
        for e in edits {
            let at = |i: usize| if b.is_empty() { 0 } else { i % (b.len() + 1) };
            match *e {
                Edit::Flip(i, bit) if !b.is_empty() => {
                    let i = i % b.len();
                    b[i] ^= 1 << bit;
                }
                Edit::Flip(..) => {}
                Edit::Truncate(i) => b.truncate(at(i)),
                Edit::Delete(i, n) => {
                    let i = at(i);
                    b.drain(i..(i + n).min(b.len()));
                }
                Edit::Insert(i, t) => {
                    let i = at(i);
                    b.splice(i..i, t.bytes());
                }
            }
        }
        String::from_utf8_lossy(&b).into_owned()
    }

    proptest! {
        #![proptest_config(config(1000, 0x7ace_0001))]

        #[test]
        fn every_schema_version_is_read_or_named(version in prop_oneof![0u32..8, any::<u32>()]) {
            let text = to_ron(&sample());
            let needle = format!("schema_version: {SCHEMA_VERSION},");
            prop_assert!(text.contains(&needle));
            let text = text.replacen(&needle, &format!("schema_version: {version},"), 1);
            let result = from_ron(&text, "fuzz.ron");
            if (OLDEST_READABLE_SCHEMA..=SCHEMA_VERSION).contains(&version) {
                prop_assert_eq!(result.unwrap().header.schema_version, version);
            } else {
                let refused = matches!(result, Err(TraceError::SchemaVersion { found, .. }) if found == version);
                prop_assert!(refused, "version {} was not named", version);
            }
        }

        #[test]
        fn mutated_traces_never_panic(edits in prop::collection::vec(edit(), 1..6)) {
            let text = apply(&to_ron(&sample()), &edits);
            check(from_ron(&text, "fuzz.ron"), &text)?;
        }

        #[test]
        fn arbitrary_text_is_a_parse_error(text in any::<String>()) {
            check(from_ron(&text, "fuzz.ron"), &text)?;
        }
    }

    /// Was `attempt to subtract with overflow` in the Perfetto renderer: a lock hold that
    /// ended before it began, from an event whose step had been edited.
    #[test]
    fn regression_events_out_of_order_are_refused_at_their_line() {
        let text = to_ron(&sample());
        let broken = text.replacen("Event(step: 2,", "Event(step: 255,", 1);
        let line = broken.lines().position(|l| l.contains("step: 255,")).unwrap() + 1;
        let e = from_ron(&broken, "order.ron").unwrap_err().to_string();
        assert_eq!(
            e,
            format!("order.ron:{line}:9: event 2 has step 255: events are numbered 0, 1, 2, ... in order")
        );
    }

    #[test]
    fn deep_nesting_is_refused_with_its_limit() {
        let text = format!("Trace(header: Header(junk: {}))", "[".repeat(10_000));
        let e = from_ron(&text, "deep.ron").unwrap_err().to_string();
        assert!(
            e.starts_with("deep.ron:1:") && e.ends_with("nested more than 128 levels deep"),
            "{e}"
        );
    }
}
