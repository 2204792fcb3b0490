//! Bounded exhaustive search (`mmsim explore --exhaustive`, `--strategy dfs`): a depth-first
//! search over the scheduling decisions of the concurrent phase that visits, for a preemption
//! bound b, every violation signature that any schedule with at most b preemptions can show.
//!
//! * **Preemptions** are counted as in CHESS (Musuvathi and Qadeer, PLDI 2007): running an
//!   actor other than the last one while the last one is still runnable costs one; switching
//!   when it blocks or finishes is free. Interrupt and RCU actors count like CPUs. The bound is
//!   deepened 0, 1, ..., b; each bound is a complete search of its own.
//! * **Partial-order reduction** over the steps' declared accesses ([`footprint`]), one of two
//!   ([`Por`]): a stateful search with bound-aware sleep sets and visited-state pruning
//!   ([`sleep`], the default) or bounded DPOR with backtracking sets ([`dpor`]). The stateful
//!   search does not branch where the running CPU's next step races with nothing any other
//!   actor can still do ([`alone`]).
//!
//! This module owns the configuration, the per-bound driver, the summary and its traces.
//! `tests/dfs_soundness.rs` checks both reductions against a brute-force enumeration of every
//! schedule within the bound.

pub mod alone;
pub mod dpor;
pub mod footprint;
pub mod key;
pub mod sleep;

pub use footprint::{covers, dependent, footprint, Footprint, Key, Mutant};

use crate::engine::strategy::{Choice, Diverged, Replay, Strategy};
use crate::engine::Engine;
use crate::explore::{outcome_of_reports, SeedOutcome};
use crate::run::{Prepared, RunError};
use mmsim_traces::{Actor, Decision, Severity, Trace, Verdict};
use serde::{Deserialize, Serialize};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// What a running search shares with another thread: counts for a progress display, and a
/// flag (Ctrl-C) that stops it like `--runs` does, the result then saying it is not
/// exhaustive. Only whether the search stops depends on it, never what it reports.
#[derive(Debug, Default)]
pub struct Live {
    /// The bound being searched.
    pub bound: AtomicU32,
    /// Executions so far, over all bounds.
    pub executions: AtomicU64,
    /// Violating executions so far.
    pub violations: AtomicU64,
    pub stop: Arc<crate::explore::StopFlag>,
}

/// Which partial-order reduction the search runs.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Por {
    /// Bounded DPOR with backtracking sets and conservative backtrack points (module dpor).
    Dpor,
    /// Every enabled child within the bound, pruned by bound-aware sleep sets and visited
    /// states (module sleep). The default: on the built-in scenarios it runs far fewer
    /// executions (see the book's "Bounded exhaustive search").
    #[default]
    Sleep,
}

impl Por {
    pub fn cli_name(self) -> &'static str {
        match self {
            Por::Dpor => "dpor",
            Por::Sleep => "sleep",
        }
    }
}

/// What to search.
#[derive(Clone, Debug)]
pub struct DfsConfig {
    /// The largest preemption bound; bounds 0..=`preemptions` are searched in turn.
    pub preemptions: u32,
    /// Stop after this many executions (then the result is not exhaustive).
    pub max_executions: Option<u64>,
    pub stop_on_first: bool,
    /// Stop when this instant has passed (then the result is not exhaustive). Only whether
    /// the search stopped depends on the clock, never what a completed search reports.
    pub deadline: Option<Instant>,
    /// The reduction.
    pub por: Por,
    /// With [`Por::Sleep`]: sleep sets (off: every schedule within the bound, up to
    /// visited-state pruning).
    pub sleep_sets: bool,
    /// With [`Por::Sleep`]: visited-state pruning.
    pub visited: bool,
    /// Collect [`DfsSummary::final_states`] (for tests: the brute-force check compares them).
    pub final_states: bool,
    /// Progress counts and the stop flag, shared with the caller's threads.
    pub live: Option<Arc<Live>>,
    /// The lowest severity that makes an execution a violation (`--min-severity`); an
    /// execution whose reports are all below it is a warning execution.
    pub min_severity: Severity,
    /// Bounds searched at once (`--jobs`); the summary is the same for every value.
    pub jobs: usize,
    /// A deliberately broken dependence relation (for the soundness test only).
    #[doc(hidden)]
    pub mutant: Mutant,
    /// Let serial loops skip their empty slots ([`Engine::skip_repeats`]); off only in the
    /// test that the search does not depend on it.
    #[doc(hidden)]
    pub skip_repeats: bool,
    /// With [`Por::Sleep`]: no preemption before a step no other actor can race with
    /// ([`alone`]); off in the tests that compare the search with and without it.
    #[doc(hidden)]
    pub alone: bool,
}

impl Default for DfsConfig {
    fn default() -> Self {
        DfsConfig {
            preemptions: 2,
            max_executions: None,
            stop_on_first: false,
            deadline: None,
            por: Por::default(),
            sleep_sets: true,
            visited: true,
            final_states: false,
            live: None,
            min_severity: Severity::Bug,
            jobs: 1,
            mutant: Mutant::None,
            skip_repeats: true,
            alone: true,
        }
    }
}

/// What the search did at one bound.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoundStats {
    pub bound: u32,
    /// Executions run to the end (teardown and final checks included).
    pub executions: u64,
    pub clean: u64,
    pub violations: u64,
    /// Executions whose reports were all below the minimum severity.
    #[serde(default)]
    pub warnings: u64,
    pub step_limits: u64,
    /// Steps of the search and of each execution's whole run (setup, concurrent phase and
    /// teardown), probes and all, executed or skipped ([`BoundStats::skipped`]).
    pub steps: u64,
    /// The part of `steps` a range loop accounted for without running them
    /// ([`crate::kernel::skip`]): in the search, at nodes that gave its CPU the only child
    /// (`sleep::Alone`), and in the executions' runs (teardown's loops, and those).
    #[serde(default)]
    pub skipped: u64,
    /// Prefixes cut at a state already explored with no more preemptions.
    pub pruned_visited: u64,
    /// Steps skipped because an equivalent schedule within the bound covers them.
    pub pruned_sleep: u64,
    /// Nodes with other actors runnable where none was tried: the running CPU's step races
    /// with nothing they can do ([`alone`]).
    #[serde(default)]
    pub alone: u64,
    /// DPOR: backtrack entries added (races and conservative points, duplicates left out).
    #[serde(default)]
    pub backtracks: u64,
    /// DPOR: backtrack entries not run because they would exceed the bound.
    #[serde(default)]
    pub pruned_bound: u64,
    /// Whether this bound was searched to the end.
    pub complete: bool,
}

/// One violation (or warning) signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DfsGroup {
    pub signature: Vec<String>,
    /// Its reports are all below the minimum severity: a warning, not a violation.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub warning: bool,
    /// Executions that showed it (over all bounds).
    pub executions: u64,
    /// The first execution showing it (counted over all bounds from 0) and its bound.
    pub first_execution: u64,
    pub bound: u32,
    /// The first execution's decisions (replayable).
    pub decisions: Vec<Decision>,
    /// Its trace, as a file name inside the `--out` directory.
    pub trace: Option<String>,
}

/// The result of a bounded exhaustive search.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DfsSummary {
    pub scenario: String,
    pub arch: String,
    pub profile: String,
    pub switches: Vec<(String, String)>,
    /// The bound asked for.
    pub preemptions: u32,
    /// The reduction that ran.
    #[serde(default)]
    pub por: Por,
    pub sleep_sets: bool,
    pub visited: bool,
    pub bounds: Vec<BoundStats>,
    pub executions: u64,
    pub violations: u64,
    /// The lowest severity counted as a violation.
    #[serde(default = "crate::explore::severity_warning")]
    pub min_severity: Severity,
    /// Executions whose reports were all below `min_severity`.
    #[serde(default)]
    pub warnings: u64,
    pub steps: u64,
    /// Violation and warning signatures, in the order first found.
    pub groups: Vec<DfsGroup>,
    /// Why the search stopped early, if it did.
    pub stopped: Option<String>,
    /// A panic inside the search (a model bug): where and what.
    pub panic: Option<String>,
    /// With [`DfsConfig::final_states`]: the [`key::state_key`] of every state an
    /// execution's concurrent phase ended in (sorted, no repeats; not serialised).
    #[serde(skip)]
    pub final_states: Vec<u64>,
}

impl DfsSummary {
    /// The highest bound searched to the end, if any.
    pub fn exhausted_bound(&self) -> Option<u32> {
        self.bounds.iter().take_while(|b| b.complete).map(|b| b.bound).last()
    }

    /// Whether the requested bound was searched to the end.
    pub fn exhaustive(&self) -> bool {
        self.exhausted_bound() == Some(self.preemptions)
    }

    pub fn exit_code(&self) -> i32 {
        i32::from(self.violations > 0 || self.panic.is_some())
    }

    /// The violation signatures (warnings left out).
    pub fn violation_groups(&self) -> impl Iterator<Item = &DfsGroup> {
        self.groups.iter().filter(|g| !g.warning)
    }
}

/// Why a search at one bound stopped early, and after how many of its own executions.
#[derive(Clone, Debug)]
pub(crate) enum Stop {
    FirstViolation(u64),
    Budget(u64),
    TimeLimit(u64),
    /// The caller's stop flag (Ctrl-C), with its reason.
    Flag(String, u64),
    /// A search of a lower bound stopped: this one's results are not used.
    Superseded,
    Panic,
}

impl Stop {
    /// The summary's wording, counting the executions of the bounds before (`base`) too.
    fn message(&self, base: u64) -> String {
        match self {
            Stop::FirstViolation(n) => {
                format!("stopped at the first violation, after {} executions", base + n)
            }
            Stop::Budget(n) => format!("stopped after {} executions (--runs)", base + n),
            Stop::TimeLimit(n) => format!("time limit, after {} executions", base + n),
            Stop::Flag(why, n) => format!("{why}, after {} executions", base + n),
            Stop::Superseded => "stopped".into(),
            Stop::Panic => "stopped by a panic".into(),
        }
    }
}

/// What a search at one bound shares, whatever its reduction: the bound, the counters, the
/// groups found so far and why it stopped. Execution numbers are the bound's own (from 0);
/// [`search`] offsets them by the executions of the bounds before when it merges.
pub(crate) struct Recorder<'s> {
    pub(crate) bound: u32,
    pub(crate) cfg: &'s DfsConfig,
    pub(crate) stats: BoundStats,
    /// Executions before this bound, when it runs after them ([`DfsConfig::max_executions`]
    /// counts over all bounds); 0 when bounds run at once.
    base: u64,
    groups: Vec<DfsGroup>,
    finals: std::collections::BTreeSet<u64>,
    pub(crate) stopped: Option<Stop>,
    /// The lowest bound whose search stopped early (bounds run at once): a higher one stops.
    lowest_stop: &'s AtomicU32,
}

impl Recorder<'_> {
    /// Run `eng`'s teardown and final checks and file the execution.
    pub(crate) fn finish(&mut self, eng: Engine) {
        if self.cfg.final_states {
            self.finals.insert(key::state_key(&eng));
        }
        let out = eng.finish_concurrent();
        let out_violates = out.verdict == Verdict::Violation
            && Severity::worst(&out.check.reports) >= Some(self.cfg.min_severity);
        self.stats.executions += 1;
        self.stats.steps += out.steps;
        self.stats.skipped += out.check.skipped;
        let index = self.stats.executions - 1;
        let done = self.stats.executions;
        match out.verdict {
            Verdict::Clean => self.stats.clean += 1,
            Verdict::StepLimit => self.stats.step_limits += 1,
            Verdict::Violation => {
                let (sig, warning) = signature_of(&out.check.reports, self.cfg.min_severity);
                if warning {
                    self.stats.warnings += 1;
                } else {
                    self.stats.violations += 1;
                }
                match self.groups.iter_mut().find(|g| g.signature == sig) {
                    Some(g) => g.executions += 1,
                    None => self.groups.push(DfsGroup {
                        signature: sig,
                        warning,
                        executions: 1,
                        first_execution: index,
                        bound: self.bound,
                        decisions: out.decisions,
                        trace: None,
                    }),
                }
                if self.cfg.stop_on_first && !warning {
                    self.stopped = Some(Stop::FirstViolation(done));
                }
            }
        }
        if self.stopped.is_none() && self.cfg.max_executions.is_some_and(|m| self.base + done >= m)
        {
            self.stopped = Some(Stop::Budget(done));
        }
        if self.stopped.is_none() && self.cfg.deadline.is_some_and(|d| Instant::now() >= d) {
            self.stopped = Some(Stop::TimeLimit(done));
        }
        if self.stopped.is_none() && self.lowest_stop.load(Ordering::Relaxed) < self.bound {
            self.stopped = Some(Stop::Superseded);
        }
        if let Some(live) = &self.cfg.live {
            live.bound.store(self.bound, Ordering::Relaxed);
            live.executions.fetch_add(1, Ordering::Relaxed);
            if out_violates {
                live.violations.fetch_add(1, Ordering::Relaxed);
            }
            if self.stopped.is_none() && live.stop.is_raised() {
                let why = live.stop.reason().unwrap_or_else(|| "stopped".into());
                self.stopped = Some(Stop::Flag(why, done));
            }
        }
        if self.stopped.is_some() {
            self.lowest_stop.fetch_min(self.bound, Ordering::Relaxed);
        }
    }
}

/// The signature of a violating execution's reports, and whether they are all below
/// `min_severity` (a warning).
fn signature_of(reports: &[mmsim_traces::Report], min_severity: Severity) -> (Vec<String>, bool) {
    match outcome_of_reports(reports, min_severity) {
        SeedOutcome::Warning(sig) => (sig, true),
        SeedOutcome::Violation(sig) => (sig, false),
        o => unreachable!("a report makes a violation or a warning, not {o:?}"),
    }
}

/// The preemptions running `next` costs after `last` (`last_enabled`: whether it could run on).
pub(crate) fn cost(last: Option<Actor>, last_enabled: bool, next: Actor) -> u32 {
    u32::from(last_enabled && last != Some(next))
}

/// Stack of a search thread: the search recurses once per step of a schedule.
const SEARCH_STACK: usize = 1 << 30;

/// What the search of one bound found, before [`search`] merges it.
struct BoundResult {
    stats: BoundStats,
    groups: Vec<DfsGroup>,
    finals: std::collections::BTreeSet<u64>,
    stopped: Option<Stop>,
    panic: Option<String>,
}

/// Search one bound of the tree below `root`, on a thread of its own (one stack frame a step).
fn search_bound(
    root: &Engine,
    cfg: &DfsConfig,
    bound: u32,
    base: u64,
    lowest_stop: &AtomicU32,
) -> BoundResult {
    let mut s = Recorder {
        bound,
        cfg,
        stats: BoundStats { bound, ..Default::default() },
        base,
        groups: Vec::new(),
        finals: std::collections::BTreeSet::new(),
        stopped: None,
        lowest_stop,
    };
    let start = root.clone();
    let r = std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name(format!("dfs-bound-{bound}"))
            .stack_size(SEARCH_STACK)
            .spawn_scoped(scope, || {
                catch_unwind(AssertUnwindSafe(|| match cfg.por {
                    Por::Sleep => sleep::Search::new(&mut s).run(start),
                    Por::Dpor => dpor::Search::new(&mut s).run(start),
                }))
            })
            .map_err(|e| e.to_string())
            .and_then(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Box::new("search thread died")))
                    .map_err(|p| crate::explore::panic_message(&*p))
            })
    });
    let panic = r.err();
    if panic.is_some() {
        s.stopped = Some(Stop::Panic);
        lowest_stop.fetch_min(bound, Ordering::Relaxed);
    }
    s.stats.complete = s.stopped.is_none();
    BoundResult { stats: s.stats, groups: s.groups, finals: s.finals, stopped: s.stopped, panic }
}

/// Search bounds 0..=`cfg.preemptions` of `p`'s concurrent phase, `cfg.jobs` bounds at once.
///
/// Each bound is a search of its own (its own visited table), so running them at once changes
/// nothing but the time: the results are merged in bound order, a group's first execution
/// counted over the bounds before it, and what a stopped bound leaves out is left out of the
/// higher ones too (they are stopped, their results dropped). With an execution budget
/// (`--runs`, which counts over all bounds in order) the bounds run one after another.
pub fn search(p: &Prepared, cfg: &DfsConfig) -> DfsSummary {
    let mut sum = DfsSummary {
        scenario: p.env.scenario.name.clone(),
        arch: p.env.cfg.name.to_string(),
        profile: p.env.profile.to_string(),
        switches: p.env.sw.list(),
        preemptions: cfg.preemptions,
        por: cfg.por,
        sleep_sets: cfg.por == Por::Sleep && cfg.sleep_sets,
        visited: cfg.por == Por::Sleep && cfg.visited,
        bounds: Vec::new(),
        executions: 0,
        violations: 0,
        min_severity: cfg.min_severity,
        warnings: 0,
        steps: 0,
        groups: Vec::new(),
        stopped: None,
        panic: None,
        final_states: Vec::new(),
    };
    let mut root = Engine::new(&p.env, false);
    root.skip_repeats = cfg.skip_repeats;
    if let Some(out) = root.start_concurrent() {
        // setup alone ended the run: one execution, no decisions
        let stats = BoundStats { executions: 1, complete: true, ..Default::default() };
        sum.executions = 1;
        if out.verdict == Verdict::Violation {
            let (signature, warning) = signature_of(&out.check.reports, cfg.min_severity);
            if warning {
                sum.warnings = 1;
            } else {
                sum.violations = 1;
            }
            sum.groups.push(DfsGroup {
                signature,
                warning,
                executions: 1,
                first_execution: 0,
                bound: 0,
                decisions: Vec::new(),
                trace: None,
            });
        }
        sum.bounds.push(stats);
        return sum;
    }
    let lowest_stop = AtomicU32::new(u32::MAX);
    let bounds = cfg.preemptions + 1;
    let jobs = if cfg.max_executions.is_some() { 1 } else { cfg.jobs.clamp(1, bounds as usize) };
    let mut results: Vec<Option<BoundResult>> = (0..bounds).map(|_| None).collect();
    if jobs == 1 {
        let mut base = 0;
        for bound in 0..bounds {
            let r = search_bound(&root, cfg, bound, base, &lowest_stop);
            base += r.stats.executions;
            let stop = r.stopped.is_some();
            results[bound as usize] = Some(r);
            if stop {
                break;
            }
        }
    } else {
        // the highest bound, the longest search, first
        let next = AtomicU32::new(bounds);
        let done = std::sync::Mutex::new(&mut results);
        std::thread::scope(|scope| {
            for _ in 0..jobs {
                scope.spawn(|| {
                    let take = |b: u32| b.checked_sub(1);
                    while let Ok(b) = next.fetch_update(Ordering::Relaxed, Ordering::Relaxed, take)
                    {
                        let bound = b - 1;
                        if lowest_stop.load(Ordering::Relaxed) < bound {
                            continue;
                        }
                        let r = search_bound(&root, cfg, bound, 0, &lowest_stop);
                        done.lock().unwrap_or_else(|e| e.into_inner())[bound as usize] = Some(r);
                    }
                });
            }
        });
    }
    let mut finals = std::collections::BTreeSet::new();
    for r in results.into_iter() {
        let Some(r) = r else { break };
        let base = sum.executions;
        for mut g in r.groups {
            match sum.groups.iter_mut().find(|h| h.signature == g.signature) {
                Some(h) => h.executions += g.executions,
                None => {
                    g.first_execution += base;
                    sum.groups.push(g);
                }
            }
        }
        finals.extend(r.finals);
        sum.executions += r.stats.executions;
        sum.violations += r.stats.violations;
        sum.warnings += r.stats.warnings;
        sum.steps += r.stats.steps;
        sum.bounds.push(r.stats);
        if let Some(msg) = r.panic {
            let at = base + sum.bounds.last().map_or(0, |b| b.executions);
            let bound = sum.bounds.len() - 1;
            sum.panic =
                Some(format!("panic at preemption bound {bound} after {at} executions: {msg}"));
        }
        if let Some(stop) = r.stopped {
            sum.stopped = Some(stop.message(base));
            break;
        }
    }
    sum.final_states = finals.into_iter().collect();
    sum
}

/// Replays a group's decisions under the name the trace header records.
struct Named<'a> {
    name: String,
    inner: Replay<'a>,
}

impl Strategy for Named<'_> {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn choose(&mut self, step: u64, runnable: &[Choice]) -> Result<usize, Diverged> {
        self.inner.choose(step, runnable)
    }
}

/// The trace of a group's first execution.
pub fn trace_of_group(p: &Prepared, g: &DfsGroup) -> Result<Trace, RunError> {
    let mut s = Named {
        name: format!("dfs(preemptions<={}, execution {})", g.bound, g.first_execution),
        inner: Replay::new(&g.decisions),
    };
    p.run_with(g.first_execution, &mut s, true)
}

/// The file name of a group's trace.
pub fn trace_file_name(s: &DfsSummary, g: &DfsGroup) -> String {
    format!("{}-{}-{}-dfs-exec{}.ron", s.scenario, s.arch, s.profile, g.first_execution)
}

/// Search, and with `out` write each signature's first trace and `summary.json` there.
pub fn explore(p: &Prepared, cfg: &DfsConfig, out: Option<&Path>) -> Result<DfsSummary, String> {
    let mut sum = search(p, cfg);
    if let Some(dir) = out {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for i in 0..sum.groups.len() {
            let t = trace_of_group(p, &sum.groups[i]).map_err(|e| {
                format!("execution {} does not replay: {e}", sum.groups[i].first_execution)
            })?;
            if t.verdict != Verdict::Violation {
                return Err(format!(
                    "execution {} no longer violates when traced: a model bug",
                    sum.groups[i].first_execution
                ));
            }
            let name = trace_file_name(&sum, &sum.groups[i]);
            mmsim_traces::write_atomic(&dir.join(&name), &t).map_err(|e| e.to_string())?;
            sum.groups[i].trace = Some(name);
        }
        let mut j = serde_json::to_string_pretty(&sum).expect("a summary serialises");
        j.push('\n');
        mmsim_traces::write_atomic_bytes(&dir.join("summary.json"), j.as_bytes())
            .map_err(|e| e.to_string())?;
    }
    Ok(sum)
}

impl std::fmt::Display for DfsSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut how = Vec::new();
        if self.por == Por::Dpor {
            how.push("bounded DPOR over declared accesses (--por dpor)");
        }
        if self.sleep_sets {
            how.push("sleep sets over declared accesses (--por sleep)");
        }
        if self.visited {
            how.push("visited-state pruning");
        }
        writeln!(
            f,
            "searched {} on {} with profile {}, strategy dfs ({}), preemption bounds 0..={}",
            self.scenario,
            self.arch,
            self.profile,
            if how.is_empty() { "no reduction".into() } else { how.join(", ") },
            self.preemptions
        )?;
        for b in &self.bounds {
            write!(
                f,
                "bound {}: {} executions ({} clean, {} violations{}, {} step limits), {} steps, ",
                b.bound,
                b.executions,
                b.clean,
                b.violations,
                if b.warnings > 0 {
                    format!(", {} with warnings only", b.warnings)
                } else {
                    String::new()
                },
                b.step_limits,
                b.steps,
            )?;
            match self.por {
                Por::Dpor => write!(
                    f,
                    "{} backtrack points, {} over the bound",
                    b.backtracks, b.pruned_bound
                )?,
                Por::Sleep => {
                    write!(f, "pruned {} visited and {} covered", b.pruned_visited, b.pruned_sleep)?
                }
            }
            writeln!(f, "{}", if b.complete { "" } else { ", NOT complete" })?;
        }
        let mut groups: Vec<&DfsGroup> = self.violation_groups().collect();
        groups.extend(self.groups.iter().filter(|g| g.warning));
        for g in groups {
            writeln!(
                f,
                "{} {} in {} executions, first execution {} (preemption bound {})",
                if g.warning { "warning" } else { "violation" },
                g.signature.join(" + "),
                g.executions,
                g.first_execution,
                g.bound
            )?;
            if let Some(t) = &g.trace {
                writeln!(f, "  trace: {t}")?;
            }
        }
        if let Some(p) = &self.panic {
            writeln!(f, "PANIC: {p}")?;
        }
        if self.exhaustive() {
            writeln!(
                f,
                "exhaustive up to preemption bound {}: {} executions explored, {} distinct violation signatures (severity {} and above)",
                self.preemptions,
                self.executions,
                self.violation_groups().count(),
                self.min_severity
            )?;
        } else {
            let why = self.stopped.as_deref().unwrap_or("stopped");
            let upto = match self.exhausted_bound() {
                Some(b) => format!("exhaustive only up to preemption bound {b}"),
                None => "not exhaustive at any bound".into(),
            };
            writeln!(
                f,
                "NOT exhaustive: {why}; {upto}; {} distinct violation signatures (severity {} and above)",
                self.violation_groups().count(),
                self.min_severity
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed_race(profile: &str) -> Prepared {
        Prepared::new(&crate::run::Request {
            source: crate::scenario::Source::load("gup-vs-unshare").unwrap(),
            arch: None,
            profile: Some(profile.into()),
            set: vec![],
        })
        .unwrap()
    }

    #[test]
    fn bounds_searched_at_once_give_the_summary_of_bounds_searched_in_turn() {
        let p = seed_race("v6.1");
        for stop_on_first in [false, true] {
            let cfg = |jobs| DfsConfig {
                preemptions: 1,
                stop_on_first,
                final_states: true,
                jobs,
                ..DfsConfig::default()
            };
            let one = search(&p, &cfg(1));
            let two = search(&p, &cfg(2));
            assert_eq!(one, two, "stop_on_first {stop_on_first}");
            assert_eq!(one.final_states, two.final_states);
            assert!(one.violations > 0, "the seed race is found at bound 1");
            assert_eq!(one.stopped.is_some(), stop_on_first);
            if stop_on_first {
                // bound 0 is clean: the bound that stopped counts the executions before it
                assert_eq!(one.bounds.len(), 2);
                let g = one.violation_groups().next().unwrap();
                assert!(g.first_execution >= one.bounds[0].executions, "{g:?}");
                assert_eq!(g.bound, 1);
            }
        }
    }

    /// The empty-slot skip (`kernel::skip`) changes no count of the search but the nodes it
    /// does not visit: in the concurrent phase its loops skip only at nodes that give their
    /// CPU the only child (and teardown counts the steps it skips); they remember nothing a
    /// state key could see. On the fixed and the racy kernel, up to two preemptions.
    #[test]
    fn the_search_is_the_same_whether_loops_may_skip_or_not() {
        for profile in ["v6.1", "v6.3"] {
            let p = seed_race(profile);
            let cfg = |skip_repeats| DfsConfig {
                preemptions: 2,
                final_states: true,
                min_severity: Severity::Warning,
                skip_repeats,
                ..DfsConfig::default()
            };
            let (mut with, mut without) = (search(&p, &cfg(true)), search(&p, &cfg(false)));
            let skipped: u64 = with.bounds.iter().map(|b| b.skipped).sum();
            assert!(
                skipped > with.steps / 4,
                "{profile}: {skipped} of {} steps skipped",
                with.steps
            );
            assert!(without.bounds.iter().all(|b| b.skipped == 0), "{profile}");
            // nodes where the rule for steps nothing races with was asked: fewer when skipping
            let nodes = |s: &mut DfsSummary| {
                s.bounds.iter_mut().map(|b| std::mem::take(&mut b.alone)).sum::<u64>()
            };
            assert!(nodes(&mut with) < nodes(&mut without), "{profile}");
            with.bounds.iter_mut().for_each(|b| b.skipped = 0);
            // compared part by part: a failure then shows what differs, not two schedules
            assert_eq!(with.bounds, without.bounds, "{profile}");
            assert_eq!(with.to_string(), without.to_string(), "{profile}");
            assert_eq!(with.final_states, without.final_states, "{profile}");
            assert_eq!(with, without, "{profile}: the groups' schedules");
            if profile == "v6.1" {
                assert!(with.violations > 0, "the seed race is found");
            }
        }
    }

    /// Not trying preemptions before steps nothing can race with ([`alone`]) keeps every
    /// signature and end state of the seed race, on the fixed and the racy kernel, and saves
    /// steps: the munmap's range loops over the table only its own mm reaches.
    #[test]
    fn the_seed_race_keeps_its_signatures_and_end_states_without_preemptions_nothing_races_with() {
        for profile in ["v6.1", "v6.3"] {
            let p = seed_race(profile);
            let cfg = |alone| DfsConfig {
                preemptions: 1,
                final_states: true,
                min_severity: Severity::Warning,
                alone,
                ..DfsConfig::default()
            };
            let (with, without) = (search(&p, &cfg(true)), search(&p, &cfg(false)));
            let signatures =
                |s: &DfsSummary| s.groups.iter().map(|g| g.signature.clone()).collect::<Vec<_>>();
            assert_eq!(signatures(&with), signatures(&without), "{profile}");
            let ends = |s: &DfsSummary| {
                let mut v = s.final_states.clone();
                v.sort_unstable();
                v.dedup();
                v
            };
            assert_eq!(ends(&with), ends(&without), "{profile}");
            let fired: u64 = with.bounds.iter().map(|b| b.alone).sum();
            assert!(fired > 1000, "{profile}: the rule applied at {fired} nodes");
            assert!(with.steps < without.steps, "{profile}: {} >= {}", with.steps, without.steps);
        }
    }

    #[test]
    fn a_raised_stop_flag_ends_the_search_not_exhaustive_with_its_reason_and_counts_live() {
        let p = seed_race("v6.3");
        let live = Arc::new(Live::default());
        live.stop.raise("interrupted (Ctrl-C)");
        let cfg = DfsConfig { preemptions: 1, live: Some(live.clone()), ..DfsConfig::default() };
        let s = search(&p, &cfg);
        assert_eq!(s.executions, 1);
        assert!(!s.exhaustive());
        let text = s.to_string();
        assert!(
            text.contains("NOT exhaustive: interrupted (Ctrl-C), after 1 executions"),
            "{text}"
        );
        assert_eq!(live.executions.load(Ordering::Relaxed), 1);
        assert_eq!(live.violations.load(Ordering::Relaxed), 0);
    }
}
