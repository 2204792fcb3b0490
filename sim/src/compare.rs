//! `mmsim compare`: one scenario over architecture configurations x kernel profiles.
//!
//! Every cell runs seeds `0..runs` of the default random strategy with tracing off and stops at
//! the first violating seed. A configuration that cannot share PMD tables gets "not applicable"
//! with the reason, as `run::prepare` refuses it. Cells run in a fixed order and each depends
//! only on its own seeds, so the matrix is deterministic.

use crate::run::{Prepared, Request, RunError};
use crate::scenario::Source;
use mmsim_arch::ArchConfig;
use mmsim_traces::{ReportKind, Verdict};
use std::fmt::Write as _;

/// What to compare.
#[derive(Clone, Debug)]
pub struct Spec {
    pub source: Source,
    /// Configuration names, in row order.
    pub archs: Vec<String>,
    /// Profile names, in column order.
    pub profiles: Vec<String>,
    /// Seeds per cell.
    pub runs: u64,
    /// `name=value` switch overrides applied to every cell.
    pub set: Vec<String>,
}

/// The verdict of one (arch, profile) cell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cell {
    /// The first violating seed, and the kinds its reports name, in order of appearance.
    Violation { seed: u64, kinds: Vec<ReportKind> },
    /// A run that hit the step limit before finishing.
    StepLimit { seed: u64 },
    /// Every seed ran clean.
    Clean { runs: u64 },
    /// The configuration cannot run the scenario (it cannot share PMD tables).
    NotApplicable { reason: String },
    /// The scenario does not fit the configuration (e.g. an absolute address misaligned there).
    Error { msg: String },
}

impl Cell {
    /// The markdown text of the cell.
    pub fn text(&self) -> String {
        match self {
            Cell::Violation { seed, kinds } => {
                let k: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
                format!("violation (seed {seed}: {})", k.join(", "))
            }
            Cell::StepLimit { seed } => format!("step limit (seed {seed})"),
            Cell::Clean { runs } => format!("clean ({runs} runs)"),
            Cell::NotApplicable { reason } => format!("not applicable: {reason}"),
            Cell::Error { msg } => format!("error: {msg}"),
        }
    }

    fn status(&self) -> &'static str {
        match self {
            Cell::Violation { .. } => "violation",
            Cell::StepLimit { .. } => "step_limit",
            Cell::Clean { .. } => "clean",
            Cell::NotApplicable { .. } => "not_applicable",
            Cell::Error { .. } => "error",
        }
    }
}

/// The result: `cells[row][column]` for `archs[row]` x `profiles[column]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Matrix {
    pub scenario: String,
    pub archs: Vec<String>,
    pub profiles: Vec<String>,
    pub runs: u64,
    pub cells: Vec<Vec<Cell>>,
}

/// A list argument: `all`, or comma-separated names, each checked against `known`.
pub fn parse_list(arg: &str, known: &[&str], what: &str) -> Result<Vec<String>, String> {
    if arg == "all" {
        return Ok(known.iter().map(|s| s.to_string()).collect());
    }
    let mut out = Vec::new();
    for n in arg.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let latest = what == "kernel profile" && n == "latest";
        if !latest && !known.contains(&n) {
            return Err(format!("unknown {what} `{n}` (one of: all, {})", known.join(", ")));
        }
        out.push(n.to_string());
    }
    if out.is_empty() {
        return Err(format!("no {what} given"));
    }
    Ok(out)
}

/// All configuration names, in `mmsim arch list` order.
pub fn all_archs() -> Vec<&'static str> {
    mmsim_arch::configs().iter().map(|c| c.name).collect()
}

/// All profile names, oldest first.
pub fn all_profiles() -> Vec<&'static str> {
    crate::profile::profiles().iter().map(|p| p.name).collect()
}

/// Run one cell.
pub fn cell(spec: &Spec, arch: &str, profile: &str) -> Result<Cell, RunError> {
    let req = Request {
        source: spec.source.clone(),
        arch: Some(arch.to_string()),
        profile: Some(profile.to_string()),
        set: spec.set.clone(),
    };
    let p = match Prepared::new(&req) {
        Ok(p) => p,
        Err(RunError::CannotShare { why, .. }) => {
            return Ok(Cell::NotApplicable { reason: why.to_string() })
        }
        Err(RunError::Scenario(e)) => return Ok(Cell::Error { msg: e.to_string() }),
        Err(e) => return Err(e),
    };
    for seed in 0..spec.runs {
        let (t, out) = p.run_seed(seed, false)?;
        match out.verdict {
            Verdict::Clean => {}
            Verdict::StepLimit => return Ok(Cell::StepLimit { seed }),
            Verdict::Violation => {
                let mut kinds: Vec<ReportKind> = Vec::new();
                for r in &t.reports {
                    if !kinds.contains(&r.kind) {
                        kinds.push(r.kind);
                    }
                }
                return Ok(Cell::Violation { seed, kinds });
            }
        }
    }
    Ok(Cell::Clean { runs: spec.runs })
}

/// Run every cell on `jobs` threads; `progress` is told each finished cell (in completion
/// order). The matrix does not depend on `jobs`.
pub fn compare(
    spec: &Spec,
    jobs: usize,
    progress: &(dyn Fn(&str, &str, &Cell) + Sync),
) -> Result<Matrix, RunError> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    let scenario = spec.source.parse()?.name;
    for a in &spec.archs {
        ArchConfig::by_name(a).ok_or_else(|| RunError::UnknownArch(a.clone()))?;
    }
    for p in &spec.profiles {
        crate::profile::by_name(p).ok_or_else(|| RunError::UnknownProfile(p.clone()))?;
    }
    let np = spec.profiles.len();
    let n = spec.archs.len() * np;
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<Cell, RunError>>>> =
        Mutex::new((0..n).map(|_| None).collect());
    std::thread::scope(|sc| {
        for _ in 0..jobs.clamp(1, n.max(1)) {
            sc.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let (a, p) = (&spec.archs[i / np], &spec.profiles[i % np]);
                let c = cell(spec, a, p);
                if let Ok(c) = &c {
                    progress(a, p, c);
                }
                results.lock().expect("no cell panics while holding the lock")[i] = Some(c);
            });
        }
    });
    let mut flat = results.into_inner().expect("threads joined");
    let mut cells = Vec::with_capacity(spec.archs.len());
    for r in 0..spec.archs.len() {
        let mut row = Vec::with_capacity(np);
        for c in 0..np {
            row.push(flat[r * np + c].take().expect("every cell ran")?);
        }
        cells.push(row);
    }
    Ok(Matrix {
        scenario,
        archs: spec.archs.clone(),
        profiles: spec.profiles.clone(),
        runs: spec.runs,
        cells,
    })
}

impl Matrix {
    /// Whether any cell found a violation (or did not finish).
    pub fn violated(&self) -> bool {
        self.cells
            .iter()
            .flatten()
            .any(|c| matches!(c, Cell::Violation { .. } | Cell::StepLimit { .. }))
    }

    /// Whether any cell could not be run because the scenario does not fit its arch.
    pub fn errors(&self) -> bool {
        self.cells.iter().flatten().any(|c| matches!(c, Cell::Error { .. }))
    }

    /// A markdown table: rows are configurations, columns profiles.
    pub fn markdown(&self) -> String {
        let esc = |s: &str| s.replace('|', "\\|");
        let mut s = String::new();
        let _ = writeln!(s, "{}: {} seeds per cell\n", self.scenario, self.runs);
        let _ = writeln!(s, "| arch | {} |", self.profiles.join(" | "));
        let _ = writeln!(s, "| --- |{}", " --- |".repeat(self.profiles.len()));
        for (a, row) in self.archs.iter().zip(&self.cells) {
            let texts: Vec<String> = row.iter().map(|c| esc(&c.text())).collect();
            let _ = writeln!(s, "| {a} | {} |", texts.join(" | "));
        }
        s
    }

    /// JSON: `{"scenario", "runs", "archs", "profiles", "cells": [{"arch", "profile",
    /// "status", "seed"?, "kinds"?, "runs"?, "reason"?, "text"}]}`, cells row by row.
    pub fn json(&self) -> String {
        let mut s = String::new();
        let list = |v: &[String]| v.iter().map(|x| json_str(x)).collect::<Vec<_>>().join(", ");
        let _ = write!(
            s,
            "{{\n  \"scenario\": {},\n  \"runs\": {},\n  \"archs\": [{}],\n  \"profiles\": [{}],\n  \"cells\": [",
            json_str(&self.scenario),
            self.runs,
            list(&self.archs),
            list(&self.profiles)
        );
        let mut first = true;
        for (a, row) in self.archs.iter().zip(&self.cells) {
            for (p, c) in self.profiles.iter().zip(row) {
                s.push_str(if first { "\n    {" } else { ",\n    {" });
                first = false;
                let _ = write!(
                    s,
                    "\"arch\": {}, \"profile\": {}, \"status\": \"{}\"",
                    json_str(a),
                    json_str(p),
                    c.status()
                );
                match c {
                    Cell::Violation { seed, kinds } => {
                        let k: Vec<String> = kinds.iter().map(|k| json_str(k.name())).collect();
                        let _ = write!(s, ", \"seed\": {seed}, \"kinds\": [{}]", k.join(", "));
                    }
                    Cell::StepLimit { seed } => {
                        let _ = write!(s, ", \"seed\": {seed}");
                    }
                    Cell::Clean { runs } => {
                        let _ = write!(s, ", \"runs\": {runs}");
                    }
                    Cell::NotApplicable { reason } => {
                        let _ = write!(s, ", \"reason\": {}", json_str(reason));
                    }
                    Cell::Error { msg } => {
                        let _ = write!(s, ", \"reason\": {}", json_str(msg));
                    }
                }
                let _ = write!(s, ", \"text\": {}}}", json_str(&c.text()));
            }
        }
        s.push_str("\n  ]\n}\n");
        s
    }
}

/// A JSON string literal.
fn json_str(v: &str) -> String {
    let mut s = String::with_capacity(v.len() + 2);
    s.push('"');
    for ch in v.chars() {
        match ch {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(s, "\\u{:04x}", c as u32);
            }
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_all_and_reject_unknown_names() {
        let archs = all_archs();
        assert_eq!(parse_list("all", &archs, "arch").unwrap().len(), archs.len());
        assert_eq!(parse_list("x86_64, arm64-4k", &archs, "arch").unwrap(), ["x86_64", "arm64-4k"]);
        assert!(parse_list("x86_64,vax", &archs, "arch").unwrap_err().contains("`vax`"));
        assert!(parse_list("", &archs, "arch").is_err());
        assert!(parse_list("latest", &all_profiles(), "kernel profile").is_ok());
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_str("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\u0001\"");
    }

    #[test]
    fn markdown_and_json_shapes() {
        let m = Matrix {
            scenario: "s".into(),
            archs: vec!["a1".into(), "a2".into()],
            profiles: vec!["p1".into(), "p2".into()],
            runs: 7,
            cells: vec![
                vec![
                    Cell::Violation { seed: 3, kinds: vec![ReportKind::UseAfterFreePtlock] },
                    Cell::Clean { runs: 7 },
                ],
                vec![
                    Cell::NotApplicable { reason: "x|y".into() },
                    Cell::NotApplicable { reason: "x|y".into() },
                ],
            ],
        };
        let md = m.markdown();
        assert!(md.contains("| arch | p1 | p2 |"), "{md}");
        assert!(md.contains("| a1 | violation (seed 3: use_after_free_ptlock) | clean (7 runs) |"));
        assert!(md.contains("| a2 | not applicable: x\\|y |"), "{md}");
        let j = m.json();
        assert!(
            j.contains(
                "\"status\": \"violation\", \"seed\": 3, \"kinds\": [\"use_after_free_ptlock\"]"
            ),
            "{j}"
        );
        assert!(j.contains("\"status\": \"clean\", \"runs\": 7"), "{j}");
        assert!(m.violated());
    }
}
