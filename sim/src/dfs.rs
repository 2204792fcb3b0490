//! Bounded exhaustive search (`mmsim explore --exhaustive`, `--strategy dfs`): a depth-first
//! search over the scheduling decisions of the concurrent phase that visits, for a preemption
//! bound b, every violation signature that any schedule with at most b preemptions can show.
//!
//! * **Preemptions** are counted as in CHESS (Musuvathi and Qadeer, PLDI 2007): running an
//!   actor other than the last one while the last one is still runnable costs one; switching
//!   when it blocks or finishes is free. Interrupt and RCU actors count like CPUs. The bound is
//!   deepened 0, 1, ..., b; each bound is a complete search of its own.
//! * **Partial-order reduction** from the steps' declared accesses ([`footprint`],
//!   [`dependent`]): sleep sets (Godefroid 1996) made sound under the bound. Plain sleep sets
//!   are not: the schedule a sleeping step stands for may need more preemptions than the one it
//!   prunes (the reason tools miss races at low bounds). Here a sleeping entry carries the
//!   preemptions its covering schedule has used; a step is never skipped for being asleep, but
//!   after a sleeping step runs, its successor `x` is skipped only when the covering schedule
//!   reaches the same state after `x` with no more preemptions and the same last actor, so it
//!   has at least the budget this path has ([`Point`]).
//! * **Visited-state pruning**: a node is skipped when the same key was already explored with
//!   no more preemptions used. The key hashes the whole engine state, the checker's history
//!   (which reports a path already filed decides what the rest of it can still report) and the
//!   last actor: a node with more budget and the same future explores a superset (what the
//!   earlier visit skipped as covered is covered for the later one too). Hashing uses `DefaultHasher::new()` (fixed
//!   keys, never `RandomState`); the table is only looked up, never iterated, so results do not
//!   depend on it. Tables are per bound.
//!
//! Dependence is conservative: interrupt and RCU actors, allocation and free, IPIs, TLB
//! flushes and TLB-mediated user accesses depend on everything; page-table entries and pages
//! depend on each other unless both only read. `tests/dfs_soundness.rs` checks the search
//! against a brute-force enumeration of every schedule within the bound.
//!
//! This is a stateful search with sleep sets, not DPOR with backtracking sets: the visited
//! table prunes what DPOR's persistent sets would, and combining DPOR's race analysis with
//! both state caching and a preemption bound needs subtree summaries and conservative
//! backtracking (Coons et al., OOPSLA 2013) that this module does not attempt.

use crate::engine::strategy::{Choice, Diverged, Replay, Strategy};
use crate::engine::{Engine, State};
use crate::explore::signature;
use crate::kernel::ctx::Pending;
use crate::run::{Prepared, RunError};
use mmsim_traces::{Access, Actor, Decision, Object, Trace, Verdict};
use serde::{Deserialize, Serialize};
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

/// What a step may touch, as far as independence is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Res {
    /// Anything: dependent with every step.
    Global,
    /// Only the actor's own state.
    Nothing,
    /// Page-table memory: one page's entries, descriptor and ptlock, or (`None`) any page's.
    Pt(Option<u64>),
    /// One object (a lock word, a data page, a VMA tree, a CPU's interrupt state).
    Obj(Object),
}

/// A step's footprint: what it touches and whether it may change it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Footprint {
    pub res: Res,
    pub write: bool,
}

const GLOBAL: Footprint = Footprint { res: Res::Global, write: true };

/// The footprint of `actor`'s next step, from its declared access (`None` for interrupt and
/// RCU actors, which are global).
pub fn footprint(actor: Actor, pending: Option<Pending>) -> Footprint {
    let (Actor::Cpu(cpu), Some(p)) = (actor, pending) else { return GLOBAL };
    use Access::*;
    match p.access {
        // the allocator, IPIs, flushes and grace periods reach beyond the declared object
        Alloc | Free | QueueFree | IpiSend | IpiWait | IpiHandle | TlbFlush | GracePeriod => {
            return GLOBAL
        }
        Local => return Footprint { res: Res::Nothing, write: false },
        _ => {}
    }
    let reads = matches!(p.access, Read | LockRead | UnlockRead);
    match p.object {
        // reading an entry also reads its page's descriptor; writing one changes the owners
        // of the table it points to, wherever that is
        Object::Entry { .. } => Footprint { res: Res::Pt(None), write: p.access != Read },
        Object::Table(pfn) => Footprint { res: Res::Pt(Some(pfn)), write: p.access != Read },
        // lock and unlock check the page is alive
        Object::PtLock(pfn) => Footprint { res: Res::Pt(Some(pfn)), write: true },
        // a trylock is declared as a read of the lock word but may take it
        Object::MmapLock(_)
        | Object::PageTableLock(_)
        | Object::IMmapRwsem(_)
        | Object::FaultMutex(_) => {
            Footprint { res: Res::Obj(p.object), write: !matches!(p.access, LockRead | UnlockRead) }
        }
        // a VMA's lock lives and dies with the VMA
        Object::VmaLock { mm, .. } => Footprint {
            res: Res::Obj(Object::Vmas(mm)),
            write: !matches!(p.access, LockRead | UnlockRead),
        },
        Object::Vmas(_) | Object::Page(_) => Footprint { res: Res::Obj(p.object), write: !reads },
        Object::Cpu(n) if matches!(p.access, IrqDisable | IrqEnable) => {
            Footprint { res: Res::Obj(Object::Cpu(n)), write: true }
        }
        Object::Rcu if matches!(p.access, RcuReadLock | RcuReadUnlock) => {
            Footprint { res: Res::Obj(Object::Cpu(cpu)), write: true }
        }
        _ => GLOBAL,
    }
}

/// Whether two steps of different actors may not commute.
pub fn dependent(a: Footprint, b: Footprint) -> bool {
    match (a.res, b.res) {
        (Res::Global, _) | (_, Res::Global) => true,
        (Res::Nothing, _) | (_, Res::Nothing) => false,
        (Res::Pt(x), Res::Pt(y)) => (x.is_none() || y.is_none() || x == y) && (a.write || b.write),
        (Res::Obj(x), Res::Obj(y)) => x == y && (a.write || b.write),
        _ => false,
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
    /// Sleep sets (off: every schedule within the bound, up to visited-state pruning).
    pub sleep_sets: bool,
    /// Visited-state pruning.
    pub visited: bool,
}

impl Default for DfsConfig {
    fn default() -> Self {
        DfsConfig {
            preemptions: 2,
            max_executions: None,
            stop_on_first: false,
            sleep_sets: true,
            visited: true,
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
    pub step_limits: u64,
    /// Steps executed, probes and all.
    pub steps: u64,
    /// Prefixes cut at a state already explored with no more preemptions.
    pub pruned_visited: u64,
    /// Steps skipped because an equivalent schedule within the bound covers them.
    pub pruned_sleep: u64,
    /// Whether this bound was searched to the end.
    pub complete: bool,
}

/// One violation signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DfsGroup {
    pub signature: Vec<String>,
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
    pub sleep_sets: bool,
    pub visited: bool,
    pub bounds: Vec<BoundStats>,
    pub executions: u64,
    pub violations: u64,
    pub steps: u64,
    pub groups: Vec<DfsGroup>,
    /// Why the search stopped early, if it did.
    pub stopped: Option<String>,
    /// A panic inside the search (a model bug): where and what.
    pub panic: Option<String>,
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
}

/// A visited-table key: 64 bits of `DefaultHasher` (a collision, about 2^-40 for a million
/// states, would prune one node wrongly).
type Key = u64;

/// A step that sleeps: it is covered by an earlier-explored schedule that ran it sooner.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Sleep {
    actor: Actor,
    fp: Footprint,
    /// Preemptions used by the covering schedule up to the same point.
    alt_used: u32,
}

/// After a sleeping step ran: the covering schedule is in the same state, having used
/// `alt_used` preemptions with `alt_last` as its last actor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Point {
    alt_used: u32,
    alt_last: Actor,
}

struct Search<'s> {
    bound: u32,
    cfg: &'s DfsConfig,
    visited: HashMap<Key, u32, BuildHasherDefault<DefaultHasher>>,
    stats: BoundStats,
    /// Executions before this bound.
    base: u64,
    groups: &'s mut Vec<DfsGroup>,
    stopped: Option<String>,
}

/// The state with step numbers that only name *when* something happened taken out: report
/// provenance becomes step 0 and TLB fill and flush times keep only their order (all the
/// stale-TLB check compares). Schedules that commute independent steps then meet again.
fn normalized(state: &State) -> State {
    let mut s = state.clone();
    s.step = 0;
    let pfns: Vec<u64> = s.k.mem.frames().map(|(p, _)| p).collect();
    for p in pfns {
        if let Some(f) = s.k.mem.frame_mut(p) {
            for site in [&mut f.allocated, &mut f.queued, &mut f.freed, &mut f.ptlock_freed]
                .into_iter()
                .flatten()
            {
                site.step = 0;
            }
        }
    }
    for cb in &mut s.k.rcu.callbacks {
        cb.queued.step = 0;
    }
    let mut times: Vec<u64> = s.k.mms.iter().map(|m| m.flushed_at).collect();
    for c in &s.k.cpus {
        times.extend(c.tlb.entries.iter().filter(|e| e.valid).map(|e| e.filled));
    }
    times.sort_unstable();
    times.dedup();
    let rank = |t: u64| times.binary_search(&t).map_or(0, |i| i as u64 + 1);
    for m in &mut s.k.mms {
        m.flushed_at = rank(m.flushed_at);
    }
    for c in &mut s.k.cpus {
        for e in c.tlb.entries.iter_mut() {
            e.filled = if e.valid { rank(e.filled) } else { 0 };
        }
    }
    s
}

fn cost(last: Option<Actor>, last_enabled: bool, next: Actor) -> u32 {
    u32::from(last_enabled && last != Some(next))
}

impl Search<'_> {
    /// The visited-table key: the state, the checker's history and the last actor. Sleep
    /// information is left out: what a node skips for it is covered by schedules that reach
    /// the same states with no more preemptions, so they cover a later visit as well.
    fn key(&self, eng: &Engine, last: Option<Actor>) -> Key {
        let mut h = DefaultHasher::new();
        normalized(&eng.state).hash(&mut h);
        let mut reps: Vec<u64> = eng
            .check
            .reports
            .iter()
            .map(|r| {
                let mut rh = DefaultHasher::new();
                (r.kind, r.object, r.at.func.as_str()).hash(&mut rh);
                rh.finish()
            })
            .collect();
        reps.sort_unstable();
        reps.hash(&mut h);
        last.hash(&mut h);
        h.finish()
    }

    fn finish(&mut self, eng: Engine) {
        let out = eng.finish_concurrent();
        self.stats.executions += 1;
        self.stats.steps += out.steps;
        let index = self.base + self.stats.executions - 1;
        match out.verdict {
            Verdict::Clean => self.stats.clean += 1,
            Verdict::StepLimit => self.stats.step_limits += 1,
            Verdict::Violation => {
                self.stats.violations += 1;
                let sig = signature(&out.check.reports);
                match self.groups.iter_mut().find(|g| g.signature == sig) {
                    Some(g) => g.executions += 1,
                    None => self.groups.push(DfsGroup {
                        signature: sig,
                        executions: 1,
                        first_execution: index,
                        bound: self.bound,
                        decisions: out.decisions,
                        trace: None,
                    }),
                }
                if self.cfg.stop_on_first {
                    self.stopped = Some(format!(
                        "stopped at the first violation, after {} executions",
                        index + 1
                    ));
                }
            }
        }
        if self.cfg.max_executions.is_some_and(|m| index + 1 >= m) && self.stopped.is_none() {
            self.stopped = Some(format!("stopped after {} executions (--runs)", index + 1));
        }
    }

    fn visit(
        &mut self,
        mut eng: Engine,
        used: u32,
        last: Option<Actor>,
        sleep: Vec<Sleep>,
        point: Option<Point>,
    ) {
        if self.stopped.is_some() {
            return;
        }
        if eng.at_step_limit() {
            self.finish(eng);
            return;
        }
        let en: Vec<Choice> = eng.runnable_now().to_vec();
        if en.is_empty() {
            // the covering schedule ended in this very state with no more preemptions
            if point.is_some_and(|p| p.alt_used <= used) {
                self.stats.pruned_sleep += 1;
            } else {
                self.finish(eng);
            }
            return;
        }
        if self.cfg.visited {
            let key = self.key(&eng, last);
            match self.visited.get_mut(&key) {
                Some(u) if *u <= used => {
                    self.stats.pruned_visited += 1;
                    return;
                }
                Some(u) => *u = used,
                None => {
                    self.visited.insert(key, used);
                }
            }
        }
        let last_enabled = last.is_some_and(|l| en.iter().any(|c| c.actor == l));
        let point_enabled = point.is_some_and(|p| en.iter().any(|c| c.actor == p.alt_last));
        // the last actor first: the schedules without a preemption come first
        let mut order: Vec<usize> = (0..en.len()).collect();
        if let Some(i) = last.and_then(|l| en.iter().position(|c| c.actor == l)) {
            order.remove(i);
            order.insert(0, i);
        }
        // In a covering schedule the sleeping step has already run, which may have enabled
        // the last actor's next step here: count it as runnable there unless it commutes.
        let last_fp = match last {
            Some(l @ Actor::Cpu(_)) => eng.pending_of(l).map(|p| footprint(l, Some(p))),
            Some(_) => Some(GLOBAL),
            None => None,
        };
        let mut done: Vec<(Sleep, bool)> = Vec::new();
        for i in order {
            if self.stopped.is_some() {
                return;
            }
            let c = en[i];
            let c_cost = cost(last, last_enabled, c.actor);
            let used2 = used + c_cost;
            if used2 > self.bound {
                continue;
            }
            if let Some(p) = point {
                let alt2 = p.alt_used + cost(Some(p.alt_last), point_enabled, c.actor);
                if alt2 <= used2 {
                    self.stats.pruned_sleep += 1;
                    continue;
                }
            }
            let fp = footprint(c.actor, eng.pending_of(c.actor));
            let asleep = sleep.iter().find(|z| z.actor == c.actor).copied();
            let mut child = eng.clone();
            child.step_choice(c);
            self.stats.steps += 1;
            let c_enabled_after = child.runnable_now().iter().any(|d| d.actor == c.actor);
            let mut zs = Vec::new();
            if self.cfg.sleep_sets {
                for z in &sleep {
                    if z.actor != c.actor && !dependent(z.fp, fp) {
                        // the covering schedule takes the same step from the same last actor
                        let last_runnable_there =
                            last_enabled || last_fp.is_some_and(|f| dependent(f, z.fp));
                        let alt_cost = cost(last, last_runnable_there, c.actor);
                        zs.push(Sleep { alt_used: z.alt_used + alt_cost, ..*z });
                    }
                }
                for (d, d_enabled_after) in &done {
                    if d.actor != c.actor && !dependent(d.fp, fp) {
                        let extra = u32::from(*d_enabled_after);
                        zs.push(Sleep { alt_used: d.alt_used + extra, ..*d });
                    }
                }
            }
            // a sleeping step has a last actor: nothing sleeps at the root
            let child_point = asleep
                .filter(|_| self.cfg.sleep_sets)
                .zip(last)
                .map(|(z, alt_last)| Point { alt_used: z.alt_used, alt_last });
            self.visit(child, used2, Some(c.actor), zs, child_point);
            done.push((Sleep { actor: c.actor, fp, alt_used: used2 }, c_enabled_after));
        }
    }
}

/// Stack of the search thread: the search recurses once per step of a schedule.
const SEARCH_STACK: usize = 1 << 30;

/// Search bounds 0..=`cfg.preemptions` of `p`'s concurrent phase.
pub fn search(p: &Prepared, cfg: &DfsConfig) -> DfsSummary {
    let mut sum = DfsSummary {
        scenario: p.env.scenario.name.clone(),
        arch: p.env.cfg.name.to_string(),
        profile: p.env.profile.to_string(),
        switches: p.env.sw.list(),
        preemptions: cfg.preemptions,
        sleep_sets: cfg.sleep_sets,
        visited: cfg.visited,
        bounds: Vec::new(),
        executions: 0,
        violations: 0,
        steps: 0,
        groups: Vec::new(),
        stopped: None,
        panic: None,
    };
    let mut root = Engine::new(&p.env, false);
    if let Some(out) = root.start_concurrent() {
        // setup alone ended the run: one execution, no decisions
        let stats = BoundStats { executions: 1, complete: true, ..Default::default() };
        sum.executions = 1;
        if out.verdict == Verdict::Violation {
            sum.violations = 1;
            sum.groups.push(DfsGroup {
                signature: signature(&out.check.reports),
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
    for bound in 0..=cfg.preemptions {
        let mut s = Search {
            bound,
            cfg,
            visited: HashMap::default(),
            stats: BoundStats { bound, ..Default::default() },
            base: sum.executions,
            groups: &mut sum.groups,
            stopped: None,
        };
        // one stack frame a step: run the search on a thread with room for long schedules
        let start = root.clone();
        let r = std::thread::scope(|scope| {
            std::thread::Builder::new()
                .name("dfs".into())
                .stack_size(SEARCH_STACK)
                .spawn_scoped(scope, || {
                    catch_unwind(AssertUnwindSafe(|| s.visit(start, 0, None, Vec::new(), None)))
                })
                .map_err(|e| e.to_string())
                .and_then(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(Box::new("search thread died")))
                        .map_err(|p| crate::explore::panic_message(&*p))
                })
        });
        if let Err(msg) = r {
            let at = s.base + s.stats.executions;
            sum.panic =
                Some(format!("panic at preemption bound {bound} after {at} executions: {msg}"));
            s.stopped = Some("stopped by a panic".into());
        }
        s.stats.complete = s.stopped.is_none();
        let (stats, stopped) = (s.stats, s.stopped);
        sum.executions += stats.executions;
        sum.violations += stats.violations;
        sum.steps += stats.steps;
        sum.bounds.push(stats);
        if stopped.is_some() {
            sum.stopped = stopped;
            break;
        }
    }
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
        if self.sleep_sets {
            how.push("sleep sets over declared accesses");
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
            writeln!(
                f,
                "bound {}: {} executions ({} clean, {} violations, {} step limits), {} steps, pruned {} visited and {} covered{}",
                b.bound,
                b.executions,
                b.clean,
                b.violations,
                b.step_limits,
                b.steps,
                b.pruned_visited,
                b.pruned_sleep,
                if b.complete { "" } else { ", NOT complete" }
            )?;
        }
        for g in &self.groups {
            writeln!(
                f,
                "violation {} in {} executions, first execution {} (preemption bound {})",
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
                "exhaustive up to preemption bound {}: {} executions explored, {} distinct violation signatures",
                self.preemptions,
                self.executions,
                self.groups.len()
            )?;
        } else {
            let why = self.stopped.as_deref().unwrap_or("stopped");
            let upto = match self.exhausted_bound() {
                Some(b) => format!("exhaustive only up to preemption bound {b}"),
                None => "not exhaustive at any bound".into(),
            };
            writeln!(
                f,
                "NOT exhaustive: {why}; {upto}; {} distinct violation signatures",
                self.groups.len()
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(object: Object, access: Access) -> Footprint {
        footprint(Actor::Cpu(0), Some(Pending { func: "f", object, access }))
    }

    #[test]
    fn independence_follows_the_declared_accesses() {
        let e = |index| Object::Entry { pfn: 0x1003, index };
        // reads commute; a write does not commute with a read of any entry
        assert!(!dependent(fp(e(1), Access::Read), fp(e(2), Access::Read)));
        assert!(dependent(fp(e(1), Access::Write), fp(e(2), Access::Read)));
        // rwsem readers commute, a writer does not
        let l = Object::MmapLock(0);
        assert!(!dependent(fp(l, Access::LockRead), fp(l, Access::UnlockRead)));
        assert!(dependent(fp(l, Access::LockRead), fp(l, Access::LockWrite)));
        assert!(!dependent(fp(l, Access::LockWrite), fp(Object::MmapLock(1), Access::LockWrite)));
        // a trylock is declared as a read but may take the lock
        assert!(dependent(fp(l, Access::Read), fp(l, Access::LockRead)));
        // a VMA's lock goes with its VMA tree
        let vl = Object::VmaLock { mm: 0, vma: 3 };
        assert!(dependent(fp(vl, Access::LockRead), fp(Object::Vmas(0), Access::Write)));
        // the allocator and interrupt actors touch everything
        let alloc = fp(Object::Table(0x1005), Access::Alloc);
        assert!(dependent(alloc, fp(Object::MmapLock(1), Access::LockRead)));
        assert!(dependent(footprint(Actor::Irq(1), None), fp(e(1), Access::Read)));
        assert!(!dependent(fp(e(1), Access::Local), fp(e(2), Access::Write)));
    }

    #[test]
    fn normalizing_keeps_the_order_of_tlb_times_and_drops_provenance_steps() {
        let req = crate::run::Request {
            source: crate::scenario::Source::load("gup-vs-unshare").unwrap(),
            arch: None,
            profile: Some("v6.1".into()),
            set: vec![],
        };
        let env = crate::run::prepare(&req).unwrap();
        let mut e = Engine::new(&env, false);
        assert!(e.start_concurrent().is_none());
        let mut a = e.state.clone();
        let mut b = e.state.clone();
        a.step = 100;
        b.step = 200;
        a.k.mms[0].flushed_at = 50;
        b.k.mms[0].flushed_at = 70;
        assert_eq!(normalized(&a), normalized(&b));
        b.k.cpus[0].tlb.entries[0].valid = true;
        b.k.cpus[0].tlb.entries[0].filled = 60;
        a.k.cpus[0].tlb.entries[0] = b.k.cpus[0].tlb.entries[0];
        a.k.cpus[0].tlb.entries[0].filled = 40;
        // filled before the flush in both: the same state
        assert_eq!(normalized(&a), normalized(&b));
        // filled after the flush in one: not the same state
        a.k.cpus[0].tlb.entries[0].filled = 55;
        assert_ne!(normalized(&a), normalized(&b));
    }
}
