//! `mmsim compare`: one scenario over architecture configurations x kernel profiles.
//!
//! Every cell runs all seeds `0..runs` of the default random strategy with tracing off and
//! counts, for every report kind, the runs that show it and the first seed that does: the
//! matrix shows what differs between archs and policies, not only whether something broke. A configuration that cannot share PMD tables gets "not applicable"
//! with the reason, as `run::prepare` refuses it. Cells run in a fixed order and each depends
//! only on its own seeds, so the matrix is deterministic.

use crate::run::{Prepared, Request, RunError};
use crate::scenario::Source;
use mmsim_arch::ArchConfig;
use mmsim_traces::{ReportKind, Severity, Verdict};
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
    /// The lowest severity a cell counts as a violation (`--min-severity`).
    pub min_severity: Severity,
}

/// One report kind seen in a cell: in how many of its runs, and the first seed showing it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KindCount {
    pub kind: ReportKind,
    pub runs: u64,
    pub first_seed: u64,
}

/// The verdict of one (arch, profile) cell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cell {
    /// Every seed ran: how many were clean or hit the step limit (and the first that did), and
    /// every report kind seen, most severe first (then by first seed).
    Ran {
        runs: u64,
        clean: u64,
        step_limits: u64,
        first_step_limit: Option<u64>,
        kinds: Vec<KindCount>,
    },
    /// The configuration cannot run the scenario (it cannot share PMD tables).
    NotApplicable { reason: String },
    /// The scenario does not fit the configuration (e.g. an absolute address misaligned there).
    Error { msg: String },
}

impl Cell {
    /// The markdown text of the cell; kinds below `min` are marked as warnings.
    pub fn text(&self, min: Severity) -> String {
        match self {
            Cell::Ran { runs, kinds, step_limits, first_step_limit, .. } => {
                let mut parts: Vec<String> = kinds
                    .iter()
                    .map(|k| {
                        let warn = if k.kind.severity() < min { ", warning" } else { "" };
                        format!("{} {}/{runs} (seed {}{warn})", k.kind.name(), k.runs, k.first_seed)
                    })
                    .collect();
                if let Some(seed) = first_step_limit {
                    parts.push(format!("step limit {step_limits}/{runs} (seed {seed})"));
                }
                if parts.is_empty() {
                    format!("clean ({runs} runs)")
                } else {
                    parts.join("; ")
                }
            }
            Cell::NotApplicable { reason } => format!("not applicable: {reason}"),
            Cell::Error { msg } => format!("error: {msg}"),
        }
    }

    /// `violation` (a report at or above `min`), `step_limit`, `warning` (reports, all below
    /// `min`), `clean`, `not_applicable` or `error`.
    pub fn status(&self, min: Severity) -> &'static str {
        match self {
            Cell::Ran { kinds, step_limits, .. } => {
                if kinds.iter().any(|k| k.kind.severity() >= min) {
                    "violation"
                } else if *step_limits > 0 {
                    "step_limit"
                } else if !kinds.is_empty() {
                    "warning"
                } else {
                    "clean"
                }
            }
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
    pub min_severity: Severity,
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
    let (mut clean, mut step_limits, mut first_step_limit) = (0, 0, None);
    let mut kinds: Vec<KindCount> = Vec::new();
    for seed in 0..spec.runs {
        let (t, out) = p.run_seed(seed, false)?;
        match out.verdict {
            Verdict::Clean => clean += 1,
            Verdict::StepLimit => {
                step_limits += 1;
                first_step_limit.get_or_insert(seed);
            }
            Verdict::Violation => {}
        }
        let mut seen: Vec<ReportKind> = t.reports.iter().map(|r| r.kind).collect();
        seen.sort();
        seen.dedup();
        for kind in seen {
            match kinds.iter_mut().find(|k| k.kind == kind) {
                Some(k) => k.runs += 1,
                None => kinds.push(KindCount { kind, runs: 1, first_seed: seed }),
            }
        }
    }
    kinds.sort_by_key(|k| (std::cmp::Reverse(k.kind.severity()), k.first_seed, k.kind));
    Ok(Cell::Ran { runs: spec.runs, clean, step_limits, first_step_limit, kinds })
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
        min_severity: spec.min_severity,
        cells,
    })
}

impl Matrix {
    /// Whether any cell found a violation at or above the minimum severity (or did not finish).
    pub fn violated(&self) -> bool {
        self.cells
            .iter()
            .flatten()
            .any(|c| matches!(c.status(self.min_severity), "violation" | "step_limit"))
    }

    /// Whether any cell could not be run because the scenario does not fit its arch.
    pub fn errors(&self) -> bool {
        self.cells.iter().flatten().any(|c| matches!(c, Cell::Error { .. }))
    }

    /// A markdown table: rows are configurations, columns profiles.
    pub fn markdown(&self) -> String {
        let esc = |s: &str| s.replace('|', "\\|");
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{}: {} seeds per cell; each report kind with the runs showing it and its first seed, most severe first (below --min-severity {}: marked warning)\n",
            self.scenario, self.runs, self.min_severity
        );
        let _ = writeln!(s, "| arch | {} |", self.profiles.join(" | "));
        let _ = writeln!(s, "| --- |{}", " --- |".repeat(self.profiles.len()));
        for (a, row) in self.archs.iter().zip(&self.cells) {
            let texts: Vec<String> = row.iter().map(|c| esc(&c.text(self.min_severity))).collect();
            let _ = writeln!(s, "| {a} | {} |", texts.join(" | "));
        }
        s
    }

    /// JSON: `{"scenario", "runs", "min_severity", "archs", "profiles", "cells": [{"arch",
    /// "profile", "status", "runs"?, "clean"?, "step_limits"?, "first_step_limit"?,
    /// "signatures"?: [{"kind", "severity", "runs", "first_seed"}], "reason"?, "text"}]}`,
    /// cells row by row, signatures most severe first.
    pub fn json(&self) -> String {
        let mut s = String::new();
        let list = |v: &[String]| v.iter().map(|x| json_str(x)).collect::<Vec<_>>().join(", ");
        let _ = write!(
            s,
            "{{\n  \"scenario\": {},\n  \"runs\": {},\n  \"min_severity\": \"{}\",\n  \"archs\": [{}],\n  \"profiles\": [{}],\n  \"cells\": [",
            json_str(&self.scenario),
            self.runs,
            self.min_severity,
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
                    c.status(self.min_severity)
                );
                match c {
                    Cell::Ran { runs, clean, step_limits, first_step_limit, kinds } => {
                        let _ = write!(
                            s,
                            ", \"runs\": {runs}, \"clean\": {clean}, \"step_limits\": {step_limits}"
                        );
                        if let Some(seed) = first_step_limit {
                            let _ = write!(s, ", \"first_step_limit\": {seed}");
                        }
                        let sigs: Vec<String> = kinds
                            .iter()
                            .map(|k| {
                                format!(
                                    "{{\"kind\": \"{}\", \"severity\": \"{}\", \"runs\": {}, \"first_seed\": {}}}",
                                    k.kind.name(),
                                    k.kind.severity(),
                                    k.runs,
                                    k.first_seed
                                )
                            })
                            .collect();
                        let _ = write!(s, ", \"signatures\": [{}]", sigs.join(", "));
                    }
                    Cell::NotApplicable { reason } => {
                        let _ = write!(s, ", \"reason\": {}", json_str(reason));
                    }
                    Cell::Error { msg } => {
                        let _ = write!(s, ", \"reason\": {}", json_str(msg));
                    }
                }
                let _ = write!(s, ", \"text\": {}}}", json_str(&c.text(self.min_severity)));
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
        let ran = |kinds: Vec<KindCount>| Cell::Ran {
            runs: 7,
            clean: 7 - kinds.iter().map(|k| k.runs).max().unwrap_or(0),
            step_limits: 0,
            first_step_limit: None,
            kinds,
        };
        let k = |kind, runs, first_seed| KindCount { kind, runs, first_seed };
        let mut m = Matrix {
            scenario: "s".into(),
            archs: vec!["a1".into(), "a2".into()],
            profiles: vec!["p1".into(), "p2".into()],
            runs: 7,
            min_severity: Severity::Bug,
            cells: vec![
                vec![
                    ran(vec![
                        k(ReportKind::UseAfterFreePtlock, 2, 3),
                        k(ReportKind::StaleWalk, 5, 1),
                    ]),
                    ran(vec![]),
                ],
                vec![
                    Cell::NotApplicable { reason: "x|y".into() },
                    ran(vec![k(ReportKind::StaleWalk, 4, 0)]),
                ],
            ],
        };
        let md = m.markdown();
        assert!(md.contains("| arch | p1 | p2 |"), "{md}");
        assert!(
            md.contains(
                "| a1 | use_after_free_ptlock 2/7 (seed 3); stale_walk 5/7 (seed 1, warning) | clean (7 runs) |"
            ),
            "{md}"
        );
        assert!(
            md.contains("| a2 | not applicable: x\\|y | stale_walk 4/7 (seed 0, warning) |"),
            "{md}"
        );
        let j = m.json();
        assert!(
            j.contains(
                "\"status\": \"violation\", \"runs\": 7, \"clean\": 2, \"step_limits\": 0, \"signatures\": [{\"kind\": \"use_after_free_ptlock\", \"severity\": \"memory-safety\", \"runs\": 2, \"first_seed\": 3}"
            ),
            "{j}"
        );
        assert!(j.contains("\"status\": \"warning\""), "{j}");
        assert!(j.contains("\"status\": \"clean\", \"runs\": 7"), "{j}");
        assert!(m.violated());
        // a warning-only matrix counts only when warnings do
        m.cells[0][0] = ran(vec![]);
        assert!(!m.violated());
        m.min_severity = Severity::Warning;
        assert!(m.violated());
        assert!(!m.markdown().contains(", warning)"), "nothing is below --min-severity warning");
    }
}
