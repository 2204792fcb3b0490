//! The engine: simulation state, the step loop and its three phases.
//!
//! A run is: setup (the scenario's setup operations on a serial actor, no decisions), the
//! concurrent phase (the strategy picks one runnable actor per step), teardown (`exit_mmap()`
//! of every mm, then RCU drains), and the end-of-run checks. Each CPU always sits at a
//! declared next access, so runnability is a cheap look at a lock word or an IPI mask. The
//! step loop allocates nothing and formats nothing unless tracing is on.

pub mod hash;
pub mod rng;
pub mod strategy;

use crate::check::{self, Checker};
use crate::env::Env;
use crate::kernel::ctx::{Ctx, Fuse, Pending, Who};
use crate::kernel::interrupts;
use crate::kernel::ops::Running;
use crate::model::cpu::Cpu;
use crate::model::fingerprint::{KeyCache, Keyed};
use crate::model::mem::{PhysMem, SiteRef};
use crate::model::mm::{File, Mm, PageCache};
use crate::model::sync::RwLock;
use crate::model::{CopyFrom, Kernel, FAULT_MUTEXES};
use crate::scenario::Op;
use mmsim_traces::{Access, Actor, Decision, Object, Verdict};
use std::sync::Arc;
use std::task::Poll;
use strategy::{Choice, Diverged, FirstRunnable, Liveness, Strategy};

/// Upper bound on steps of one run before it is cut off as `StepLimit`.
pub const STEPS_MAX_DEFAULT: u64 = 200_000;

/// One program slot: a scenario CPU, or the serial setup/teardown actor.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Prog {
    pub next_op: u16,
    pub running: Option<Running>,
    pub op_step: u32,
    pub pending: Option<Pending>,
    /// The slot's part of the exhaustive search's state key, reset whenever the engine lets
    /// the slot's path run (derived data: not part of equality).
    pub key_cache: KeyCache,
}

impl Prog {
    /// Book-keeping after the running path performed its declared access (the step `r` ended):
    /// the op's step count moves on, nothing is pending, and a finished op gives way to the next.
    #[inline]
    fn performed(&mut self, r: Poll<()>) {
        self.op_step += 1;
        self.pending = None;
        if r.is_ready() {
            self.running = None;
            self.next_op += 1;
        }
    }
}

/// The whole simulation state: cheap to clone and hash.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct State {
    pub k: Kernel,
    /// Shared between copies of the state until written ([`Arc::make_mut`]): the search
    /// copies the state at every branch, and a step writes one program.
    pub progs: Vec<Arc<Prog>>,
    pub step: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Setup,
    Concurrent,
    Teardown,
}

/// What the scenario's setup leaves, the same in every untraced run of an environment: setup
/// runs on the serial actor, first-runnable, with no decisions ([`Engine::after_setup`]).
#[derive(Clone)]
pub struct AfterSetup {
    state: State,
    check: Checker,
}

/// The result of one run.
#[derive(Debug)]
pub struct Outcome {
    pub verdict: Verdict,
    pub check: Checker,
    pub decisions: Vec<Decision>,
    pub steps: u64,
}

#[derive(Clone)]
pub struct Engine<'e> {
    pub env: &'e Env,
    pub state: State,
    pub check: Checker,
    pub decisions: Vec<Decision>,
    phase: Phase,
    runnable: Vec<Choice>,
    /// The step and phase `runnable` was filled for by [`Engine::runnable_now`]: the search
    /// asks again for the same state (a branch's child, then the child's node).
    runnable_for: Option<(u64, Phase)>,
    pub steps_max: u64,
    /// An untraced run lets a range loop account for the empty slots it would only step over
    /// when its actor runs alone ([`crate::kernel::skip`]); off, every step runs (a test
    /// compares the two).
    pub skip_repeats: bool,
}

impl CopyFrom for State {
    fn copy_from(&mut self, src: &Self) {
        let State { k, progs, step } = src;
        self.k.copy_from(k);
        crate::model::copy_arcs_from(&mut self.progs, progs);
        self.step = *step;
    }
}

impl CopyFrom for Engine<'_> {
    /// Only between engines of one environment (the search's recycled engines).
    fn copy_from(&mut self, src: &Self) {
        let Engine {
            env,
            state,
            check,
            decisions,
            phase,
            runnable,
            runnable_for,
            steps_max,
            skip_repeats,
        } = src;
        debug_assert!(std::ptr::eq(self.env, *env), "an engine of another environment");
        self.state.copy_from(state);
        self.check.copy_from(check);
        self.decisions.clone_from(decisions);
        self.phase = *phase;
        self.runnable.clone_from(runnable);
        self.runnable_for = *runnable_for;
        (self.steps_max, self.skip_repeats) = (*steps_max, *skip_repeats);
    }
}

impl<'e> Engine<'e> {
    pub fn new(env: &'e Env, tracing: bool) -> Self {
        let arch = env.arch;
        let huge_stride = arch.pmd_size() >> arch.page_shift();
        // hugetlb pool from 4 GiB physical upwards, aligned to the huge page size
        let mut mem =
            PhysMem::new(arch.ptrs_per_table(), (4u64 << 30) >> arch.page_shift(), huge_stride);
        mem.set_quarantine(env.sw.quarantine);
        let ncpus = env.ncpus();
        let mut mms = Vec::new();
        for m in 0..env.scenario.mm_names.len() {
            let site = SiteRef { step: 0, actor: Actor::Setup, op: 0, func: "mm_alloc_pgd" };
            let pgd = mem.alloc_table(0, site);
            if let Some(f) = mem.frame_mut(pgd) {
                f.owners = 1 << m;
                f.ptlock_alive = false;
            }
            let cpumask = env
                .scenario
                .cpus
                .iter()
                .enumerate()
                .filter(|(_, (mm, _))| *mm as usize == m)
                .fold(0u8, |acc, (c, _)| acc | (1 << c));
            mms.push(Keyed::new(Mm {
                pgd,
                mmap_lock: RwLock::default(),
                page_table_lock: RwLock::default(),
                vmas: Vec::new(),
                nr_pmds: 0,
                cpumask,
                next_vma_id: 0,
                flushed_at: 0,
                mm_lock_seq: 0,
                dup_mmap: false,
            }));
        }
        let files = env
            .scenario
            .file_pages
            .iter()
            .map(|&n| {
                Keyed::new(File {
                    i_mmap_rwsem: RwLock::default(),
                    i_mmap: Vec::new(),
                    pages: PageCache::new(n as usize),
                })
            })
            .collect();
        let k = Kernel {
            mem,
            mms,
            files,
            cpus: vec![Keyed::new(Cpu::default()); ncpus + 1],
            rcu: Default::default(),
            fault_mutex: [RwLock::default(); FAULT_MUTEXES],
        };
        let idle = Prog {
            next_op: 0,
            running: None,
            op_step: 0,
            pending: None,
            key_cache: KeyCache::default(),
        };
        let progs = (0..=ncpus).map(|_| Arc::new(idle.clone())).collect();
        Engine::new_empty(env, State { k, progs, step: 0 }, Checker::new(tracing))
    }

    /// An engine in `state`, before setup, with no decisions.
    fn new_empty(env: &'e Env, state: State, check: Checker) -> Self {
        Engine {
            env,
            state,
            check,
            decisions: Vec::new(),
            phase: Phase::Setup,
            runnable: Vec::with_capacity(2 * env.ncpus() + 2),
            runnable_for: None,
            steps_max: STEPS_MAX_DEFAULT,
            skip_repeats: true,
        }
    }

    /// The bound a step's [`Ctx::skip_until`] gets: the step limit when nothing records the
    /// steps a loop skips (untraced); else 0 (no step may be skipped). Whether nothing else
    /// can run between them is asked at the skip ([`crate::kernel::ctx::Fuse::keeps_running`]).
    fn skip_until(&self) -> u64 {
        if self.skip_repeats && !self.check.tracing {
            self.steps_max
        } else {
            0
        }
    }

    fn serial_slot(&self) -> usize {
        self.env.serial_cpu as usize
    }

    fn actor_of(&self, slot: usize) -> Actor {
        actor_of(self.env, self.phase, slot)
    }

    /// Run local transitions of `slot` until it declares its next access or has no work left.
    fn declare(&mut self, slot: usize) {
        self.declare_fused(slot, None, None);
    }

    /// [`Engine::declare`] after `slot` executed step `self.state.step`. With `sched`, each
    /// declared access goes to the scheduler at once (the next step's decision, made exactly
    /// as [`Engine::run_phase`] would make it); if it picks `slot`, the path performs the
    /// access in the same pass and goes on, so a CPU that keeps running steps its path once
    /// per step instead of twice. With `alone` (the exhaustive search's hook for a CPU it
    /// gives every step to), a loop may skip as that hook allows. On return
    /// `self.state.step` is the last step executed.
    fn declare_fused(
        &mut self,
        slot: usize,
        sched: Option<&mut Sched<'_>>,
        mut alone: Option<&mut dyn Fuse>,
    ) {
        let mut step = self.state.step;
        // without a hook (the exhaustive search's concurrent phase) nothing says a CPU runs
        // alone: its loops do not even remember their iterations
        let alone_known = sched.is_some() || alone.is_some() || self.phase != Phase::Concurrent;
        let skip_until = if alone_known { self.skip_until() } else { 0 };
        let (phase, steps_max) = (self.phase, self.steps_max);
        let Engine { env, state: State { k, progs, .. }, check, runnable, decisions, .. } = self;
        let env: &Env = env;
        let (before, rest) = progs.split_at_mut(slot);
        let (p, after) = rest.split_first_mut().expect("slot in range");
        let p = Arc::make_mut(p);
        p.key_cache.reset();
        let mut hook = sched.map(|sched| Hook {
            env,
            before,
            after,
            sched,
            runnable,
            decisions,
            phase,
            slot,
            step: 0,
            steps_max,
        });
        let mut local = 0u32;
        loop {
            if p.running.is_none() {
                match op_of(env, phase, slot, p.next_op) {
                    Some((mm, op)) => {
                        p.running = Some(Running::start(op, mm));
                        p.op_step = 0;
                    }
                    None => {
                        p.pending = None;
                        break;
                    }
                }
            }
            let who = who_of(env, phase, slot, p);
            // step the path in place: moving it out and back costs a copy of the whole enum
            let running = p.running.as_mut().expect("running");
            let mut cx = Ctx::new(k, env, who, step, check, true);
            cx.skip_until = skip_until;
            if let Some(h) = hook.as_mut() {
                h.step = step + 1;
                cx.set_fuse(h);
            } else if let Some(a) = alone.as_mut() {
                cx.set_fuse(&mut **a);
            }
            let r = running.step(&mut cx);
            let (pending, fused, skipped) = (cx.pending, cx.fused(), cx.skipped);
            if fused {
                // the tail of `exec` for the step just performed (and those it skipped)
                step += 1 + skipped;
                p.op_step += skipped as u32;
                local = 0;
                p.performed(r.expect("a fused step runs in execute mode"));
                continue;
            }
            match r {
                Err(_) => {
                    p.pending = pending;
                    break;
                }
                Ok(Poll::Ready(())) => {
                    p.running = None;
                    p.next_op += 1;
                }
                Ok(Poll::Pending) => {}
            }
            local += 1;
            if local >= 100_000 {
                panic!(
                    "{:?} made 100000 local transitions without an access: a model bug",
                    actor_of(env, phase, slot)
                );
            }
        }
        self.state.step = step;
    }

    fn enabled(&self, slot: usize) -> bool {
        let Some(p) = self.state.progs[slot].pending else { return false };
        access_enabled(&self.state.k, slot, p.access, &p.object)
    }

    /// Fill `self.runnable` for the current phase.
    fn collect_runnable(&mut self) {
        self.runnable_for = None;
        let (env, k, phase, progs) = (self.env, &self.state.k, self.phase, &self.state.progs);
        fill_runnable(&mut self.runnable, env, k, phase, |s| {
            enabled_choice(env, k, phase, s, progs.get(s)?)
        });
    }

    fn has_work(&self) -> bool {
        let ncpus = self.env.ncpus();
        let slots = if self.phase == Phase::Concurrent { 0..ncpus } else { ncpus..ncpus + 1 };
        slots.into_iter().any(|s| self.state.progs[s].pending.is_some())
    }

    /// Execute one step of `actor`; with `sched`, the steps that follow while the scheduler
    /// keeps picking the same CPU too (see [`Engine::declare_fused`]); with `alone`, a CPU
    /// the exhaustive search gives every step to, as that hook allows.
    fn exec(
        &mut self,
        actor: Actor,
        sched: Option<&mut Sched<'_>>,
        mut alone: Option<&mut dyn Fuse>,
    ) {
        match actor {
            Actor::Cpu(_) | Actor::Setup | Actor::Teardown => {
                let slot = match actor {
                    Actor::Cpu(c) => c as usize,
                    _ => self.serial_slot(),
                };
                let who = who_of(self.env, self.phase, slot, &self.state.progs[slot]);
                // a step executed here has no scheduler hook: a CPU knows it runs alone only
                // when the search says so
                let skip_until = match actor {
                    Actor::Cpu(_) if alone.is_none() => 0,
                    _ => self.skip_until(),
                };
                let State { k, progs, step } = &mut self.state;
                let p = Arc::make_mut(&mut progs[slot]);
                p.key_cache.reset();
                let running = p.running.as_mut().expect("runnable slot has an op");
                let mut cx = Ctx::new(k, self.env, who, *step, &mut self.check, false);
                cx.skip_until = skip_until;
                if let Some(a) = alone.as_mut() {
                    cx.set_fuse(&mut **a);
                }
                let r = running.step(&mut cx);
                debug_assert!(cx.accessed(), "{actor:?} stepped without its declared access");
                let skipped = cx.skipped;
                *step += skipped;
                p.op_step += skipped as u32;
                p.performed(r.expect("execute mode never yields"));
                self.declare_fused(slot, sched, alone);
            }
            Actor::Irq(c) => {
                let who = Who { actor, cpu: c, mm: 0, op: 0, op_step: 0 };
                let mut cx = Ctx::new(
                    &mut self.state.k,
                    self.env,
                    who,
                    self.state.step,
                    &mut self.check,
                    false,
                );
                let _ = interrupts::handle_ipi(&mut cx);
            }
            Actor::Rcu => {
                let who = Who { actor, cpu: self.env.serial_cpu, mm: 0, op: 0, op_step: 0 };
                let mut cx = Ctx::new(
                    &mut self.state.k,
                    self.env,
                    who,
                    self.state.step,
                    &mut self.check,
                    false,
                );
                let _ = interrupts::rcu_invoke(&mut cx);
            }
        }
        self.state.step += 1;
        self.check.time = self.state.step;
    }

    /// Start the current phase: every slot of the phase declares its first access.
    fn enter_phase(&mut self) {
        for slot in 0..self.state.progs.len() {
            let is_serial = slot == self.serial_slot();
            let in_phase = (self.phase == Phase::Concurrent) != is_serial;
            if in_phase {
                let p = Arc::make_mut(&mut self.state.progs[slot]);
                p.next_op = 0;
                p.running = None;
                p.key_cache.reset();
                self.declare(slot);
            }
        }
    }

    /// Run one phase to completion with `strategy`; false if it deadlocked or hit the limit.
    fn run_phase(
        &mut self,
        strategy: &mut dyn Strategy,
        record: bool,
    ) -> Result<Option<Verdict>, Diverged> {
        self.enter_phase();
        let live = if self.phase == Phase::Concurrent { strategy.liveness() } else { None };
        // Fusing makes each decision when the running CPU declares its access, which is the
        // same moment as the loop below would make it, except where the loop looks at more
        // than the runnable list: the liveness phase (`starved`).
        let fuse = live.is_none() && (self.phase == Phase::Concurrent || !record);
        let mut sched = Sched { strategy, record, pre: None };
        let mut chosen = 0u64;
        // per CPU: operations completed when it became blocked (liveness phase only)
        let mut blocked = [u64::MAX; crate::model::cpu::MAX_CPUS];
        loop {
            // a decision the fuse hook made (for another actor) or failed to make
            if let Some(pre) = sched.pre.take() {
                let c = pre?;
                self.exec(c.actor, Some(&mut sched), None);
                continue;
            }
            if self.state.step >= self.steps_max {
                return Ok(Some(Verdict::StepLimit));
            }
            // Serial phases run first-runnable, and the serial actor comes first in
            // `runnable` when it is enabled: run it without building the list (profiled:
            // teardown's range loops are half the steps of a typical run).
            if self.phase != Phase::Concurrent && !record {
                let s = self.serial_slot();
                if self.enabled(s) {
                    self.exec(self.actor_of(s), Some(&mut sched), None);
                    continue;
                }
            }
            self.collect_runnable();
            if self.runnable.is_empty() {
                if self.has_work() {
                    self.deadlock();
                    return Ok(Some(Verdict::Violation));
                }
                return Ok(None);
            }
            if let Some(l) = live {
                if chosen >= l.after && self.starved(l, &mut blocked) {
                    return Ok(Some(Verdict::Violation));
                }
            }
            chosen += 1;
            let i = sched.strategy.choose(self.state.step, &self.runnable)?;
            let c = self.runnable[i];
            if record {
                self.decisions.push(Decision { actor: c.actor, op: c.op, op_step: c.op_step });
            }
            self.exec(c.actor, fuse.then_some(&mut sched), None);
        }
    }

    /// In the fair phase: a CPU with work that stays blocked while the other CPUs complete
    /// more than `l.limit` operations is starved (bounded bypass); report the first, with its
    /// blocking chain. A long critical section inside one operation is not starvation.
    /// `since[c]`: operations completed by all CPUs when CPU c became blocked (`u64::MAX`:
    /// it is not blocked).
    fn starved(&mut self, l: Liveness, since: &mut [u64]) -> bool {
        let ncpus = self.env.ncpus();
        let done: u64 = self.state.progs[..ncpus].iter().map(|p| u64::from(p.next_op)).sum();
        for (slot, mark) in since.iter_mut().enumerate().take(ncpus) {
            if self.state.progs[slot].pending.is_none() || self.enabled(slot) {
                *mark = u64::MAX;
                continue;
            }
            if *mark == u64::MAX {
                *mark = done;
            } else if done - *mark > l.limit {
                let chain = self.blocking_chain(slot);
                let p = self.state.progs[slot].pending.expect("blocked on an access");
                let op = self.env.op(Actor::Cpu(slot as u8), self.state.progs[slot].next_op);
                check::report_starvation(
                    self.state.step,
                    (Actor::Cpu(slot as u8), p.func, p.object),
                    op.map_or("-".into(), |o| o.to_string()),
                    l.limit,
                    &chain,
                    &mut self.check,
                );
                return true;
            }
        }
        false
    }

    /// Who waits for what, held by whom: from `slot` through the holders of what it waits
    /// for, each CPU once, as lines `CPU2 in zap_page_range waits for mmap_lock(A) (write),
    /// held by CPU0 (read), CPU1 (read)` and `CPU0 runnable in follow_hugetlb_page (op 3
    /// GupSlow(..))`.
    fn blocking_chain(&self, slot: usize) -> Vec<String> {
        let mut lines = Vec::new();
        let mut todo = vec![slot];
        let mut seen = 0u32;
        while let Some(s) = todo.pop() {
            if seen & (1 << s) != 0 {
                continue;
            }
            seen |= 1 << s;
            let actor = Actor::Cpu(s as u8);
            let name = check::actor_name(actor);
            let prog = &self.state.progs[s];
            let Some(p) = prog.pending else {
                lines.push(format!("{name} has no work left"));
                continue;
            };
            let op = self.env.op(actor, prog.next_op).map_or("-".into(), |o| o.to_string());
            if self.enabled(s) {
                lines.push(format!(
                    "{name} runnable in {} (op {} {op}, step {})",
                    p.func, prog.next_op, prog.op_step
                ));
                continue;
            }
            let mut line = format!(
                "{name} in {} (op {} {op}) waits for {} ({:?})",
                p.func,
                prog.next_op,
                check::obj_name(p.object),
                p.access
            );
            if let Some(l) = self.state.k.lock(p.object) {
                let mut holders = Vec::new();
                if let Some(w) = l.writer {
                    holders.push((w, "write"));
                }
                for c in 0..8u8 {
                    if l.readers & (1 << c) != 0 {
                        holders.push((c, "read"));
                    }
                }
                let list: Vec<String> = holders
                    .iter()
                    .map(|(c, how)| format!("{} ({how})", check::actor_name(Actor::Cpu(*c))))
                    .collect();
                line.push_str(&format!(", held by {}", list.join(", ")));
                for &(c, _) in holders.iter().rev() {
                    if (c as usize) < self.env.ncpus() {
                        todo.push(c as usize);
                    }
                }
            } else if p.access == Access::IpiWait {
                line.push_str(", an IPI not yet acknowledged");
            }
            lines.push(line);
        }
        lines
    }

    fn deadlock(&mut self) {
        let ncpus = self.env.ncpus();
        let mut waits = Vec::new();
        for slot in 0..=ncpus {
            if let Some(p) = self.state.progs[slot].pending {
                waits.push((self.actor_of(slot), p.func, p.object, p.access));
            }
        }
        check::report_deadlock(&self.state.k, self.env, self.state.step, &waits, &mut self.check);
    }

    /// A whole run: setup, the concurrent phase under `strategy`, teardown, final checks.
    pub fn run(mut self, strategy: &mut dyn Strategy) -> Result<Outcome, Diverged> {
        let v = self.run_to_end(strategy)?;
        Ok(self.finish(v))
    }

    /// A whole run, and a fingerprint of it: a deterministic hash of the final state, the
    /// decisions, the verdict and the reports. Two runs of the same seed must agree on it.
    pub fn run_fingerprinted(
        mut self,
        strategy: &mut dyn Strategy,
    ) -> Result<(Outcome, u64), Diverged> {
        let v = self.run_to_end(strategy)?;
        let mut h = hash::Fnv64::default();
        std::hash::Hash::hash(&self.state, &mut h);
        std::hash::Hash::hash(&self.decisions, &mut h);
        let out = self.finish(v);
        for r in &out.check.reports {
            std::hash::Hash::hash(&(r.kind, r.at.step, &r.title, &r.text), &mut h);
        }
        std::hash::Hash::hash(&(out.steps, out.verdict as u8), &mut h);
        Ok((out, std::hash::Hasher::finish(&h)))
    }

    fn run_to_end(&mut self, strategy: &mut dyn Strategy) -> Result<Verdict, Diverged> {
        // an engine made by `from_setup` starts past setup
        if self.phase == Phase::Setup {
            if let Some(v) = self.run_phase(&mut FirstRunnable, false)? {
                return Ok(v);
            }
        }
        self.phase = Phase::Concurrent;
        if let Some(v) = self.run_phase(strategy, true)? {
            return Ok(v);
        }
        self.teardown_and_checks()
    }

    /// Teardown and the end-of-run checks, after a concurrent phase that ran out of work.
    fn after_concurrent(mut self) -> Result<Outcome, Diverged> {
        let v = self.teardown_and_checks()?;
        Ok(self.finish(v))
    }

    fn teardown_and_checks(&mut self) -> Result<Verdict, Diverged> {
        let mut serial = FirstRunnable;
        check::check_share_counts(&self.state.k, self.env, self.state.step, &mut self.check);
        self.phase = Phase::Teardown;
        if let Some(v) = self.run_phase(&mut serial, false)? {
            return Ok(v);
        }
        check::check_leaks(&self.state.k, self.env, self.state.step, &mut self.check);
        Ok(if self.check.violated() { Verdict::Violation } else { Verdict::Clean })
    }

    /// Run `env`'s setup untraced and keep what it leaves: every untraced run of `env`
    /// starts its concurrent phase from it ([`Engine::from_setup`]). `None` when setup
    /// itself ended the run (a violation, a deadlock or the step limit): a run from the
    /// start shows that.
    pub fn after_setup(env: &Env) -> Option<AfterSetup> {
        let mut e = Engine::new(env, false);
        match e.run_phase(&mut FirstRunnable, false) {
            Ok(None) => Some(AfterSetup { state: e.state, check: e.check }),
            _ => None,
        }
    }

    /// An untraced engine where [`Engine::after_setup`] of the same `env` left off: its
    /// [`Engine::run`] is the run [`Engine::new`]`(env, false)` makes, without repeating the
    /// setup (a test compares the two on every built-in scenario).
    pub fn from_setup(env: &'e Env, after: &AfterSetup) -> Self {
        let mut e = Engine::new_empty(env, after.state.clone(), after.check.clone());
        e.phase = Phase::Concurrent;
        e
    }

    // ---- stepping from outside: the exhaustive search (`engine::dfs`) drives these -------

    /// Run setup and enter the concurrent phase. `Some` if setup already ended the run.
    pub fn start_concurrent(&mut self) -> Option<Outcome> {
        self.phase = Phase::Setup;
        match self.run_phase(&mut FirstRunnable, false) {
            Ok(None) => {}
            Ok(Some(v)) => return Some(self.clone().finish(v)),
            Err(_) => unreachable!("first-runnable never diverges"),
        }
        self.phase = Phase::Concurrent;
        self.enter_phase();
        None
    }

    /// The actors runnable now in the concurrent phase, in the order strategies see them.
    pub fn runnable_now(&mut self) -> &[Choice] {
        // every change of the state is a step (the engine's own code changes it, nothing else)
        let now = Some((self.state.step, self.phase));
        if self.runnable_for != now {
            self.collect_runnable();
            self.runnable_for = now;
        }
        &self.runnable
    }

    /// The declared next access of a CPU (`None` for interrupt and RCU actors).
    pub fn pending_of(&self, actor: Actor) -> Option<Pending> {
        match actor {
            Actor::Cpu(c) => self.state.progs.get(c as usize).and_then(|p| p.pending),
            _ => None,
        }
    }

    /// Record `c` as the next decision and execute its step.
    pub fn step_choice(&mut self, c: Choice) {
        self.decisions.push(Decision { actor: c.actor, op: c.op, op_step: c.op_step });
        self.exec(c.actor, None, None);
    }

    /// Execute `c`'s step without recording the decision: for a search that keeps the
    /// schedule itself and sets [`Engine::decisions`] when an execution ends.
    pub fn exec_choice(&mut self, c: Choice) {
        self.exec(c.actor, None, None);
    }

    /// [`Engine::exec_choice`] for a CPU the search gives every step to while `alone` says
    /// so: its range loops may then skip the iterations over empty slots that `alone`
    /// allows ([`Fuse::keeps_running`]), making their decisions through it
    /// ([`Fuse::decide_alone`]). Returns the steps skipped.
    pub fn exec_choice_alone(&mut self, c: Choice, alone: &mut dyn Fuse) -> u64 {
        let before = self.state.step;
        self.exec(c.actor, None, Some(alone));
        self.state.step - before - 1
    }

    /// Steps executed or skipped so far.
    pub fn step_count(&self) -> u64 {
        self.state.step
    }

    /// Whether the run has reached its step limit.
    pub fn at_step_limit(&self) -> bool {
        self.state.step >= self.steps_max
    }

    /// End a concurrent phase that has nothing runnable (or hit the step limit): the deadlock
    /// check, teardown and the end-of-run checks, as [`Engine::run`] does.
    pub fn finish_concurrent(mut self) -> Outcome {
        if self.at_step_limit() {
            return self.finish(Verdict::StepLimit);
        }
        self.collect_runnable();
        debug_assert!(self.runnable.is_empty(), "finish_concurrent with runnable actors");
        if self.has_work() {
            self.deadlock();
            return self.finish(Verdict::Violation);
        }
        match self.after_concurrent() {
            Ok(o) => o,
            Err(_) => unreachable!("first-runnable never diverges"),
        }
    }

    fn finish(self, v: Verdict) -> Outcome {
        let verdict =
            if self.check.violated() && v != Verdict::StepLimit { Verdict::Violation } else { v };
        Outcome { verdict, steps: self.state.step, decisions: self.decisions, check: self.check }
    }
}

/// The scheduler of one phase, as the fuse hook sees it.
struct Sched<'s> {
    strategy: &'s mut dyn Strategy,
    record: bool,
    /// A decision the hook made for another actor (or the strategy's error), for the loop.
    pre: Option<Result<Choice, Diverged>>,
}

/// The fuse hook of one [`Engine::declare_fused`]: the engine state the decision for the
/// next step looks at, besides the kernel (`before`, `after`: the other slots' programs).
struct Hook<'h, 's> {
    env: &'h Env,
    before: &'h [Arc<Prog>],
    after: &'h [Arc<Prog>],
    sched: &'h mut Sched<'s>,
    runnable: &'h mut Vec<Choice>,
    decisions: &'h mut Vec<Decision>,
    phase: Phase,
    slot: usize,
    /// The step to decide.
    step: u64,
    steps_max: u64,
}

impl Fuse for Hook<'_, '_> {
    /// The decision for step `self.step`, made as [`Engine::run_phase`] makes it: true if it
    /// is this slot, which then performs `pend` now. A decision for another actor is kept in
    /// `sched.pre` for the loop; when the loop would not reach the strategy (step limit, this
    /// slot blocked) nothing is decided here.
    #[inline]
    fn go(&mut self, k: &Kernel, object: &Object, access: Access, who: &Who) -> bool {
        if self.step >= self.steps_max || !access_enabled(k, self.slot, access, object) {
            return false;
        }
        // serial phases: the fast path of `run_phase` (the serial actor comes first)
        self.phase != Phase::Concurrent || self.choose(k, who)
    }

    fn keeps_running(&mut self, k: &Kernel, _who: &Who, _since: u64) -> u64 {
        if self.phase == Phase::Concurrent {
            self.keeps_running_concurrent(k)
        } else {
            u64::MAX
        }
    }

    /// The decisions `run_phase` would make for the `n` steps after step `self.step`, all for
    /// `who` ([`Hook::keeps_running_concurrent`]): the strategy makes them as with `who` alone
    /// (`Strategy::choose_alone`), which its promise makes the same as with the others, and
    /// they are recorded.
    fn decide_alone(&mut self, who: &Who, n: u64) {
        if self.phase != Phase::Concurrent {
            return;
        }
        let sched = &mut *self.sched;
        let c = Choice { actor: who.actor, op: who.op, op_step: who.op_step };
        sched.strategy.choose_alone(self.step, c, n);
        if sched.record {
            let (actor, op) = (who.actor, who.op);
            let steps = (1..=n).map(|j| Decision { actor, op, op_step: who.op_step + j as u32 });
            self.decisions.extend(steps);
        }
    }
}

impl Hook<'_, '_> {
    /// How many decisions in a row, from the next one, would give this slot the CPU while it
    /// repeats steps that change nothing but take and release a lock it has just released:
    /// what the strategy promises against every actor that is runnable meanwhile, which are
    /// the ones runnable now: the other CPUs whose declared access can happen, the interrupt
    /// contexts with an IPI to take, RCU with callbacks. A CPU that waits stays waiting: for
    /// a lock, it is held by someone else than the lock those steps take (that one is free,
    /// just released) and only this slot runs; for IPI acknowledgements, no interrupt
    /// context runs; and those steps send no IPI and queue no callback.
    fn keeps_running_concurrent(&self, k: &Kernel) -> u64 {
        if self.sched.pre.is_some() {
            return 0;
        }
        let ncpus = self.env.ncpus();
        let mut others = [Actor::Rcu; 2 * crate::model::cpu::MAX_CPUS + 2];
        let mut n = 0;
        let cpus = self.before.iter().chain(self.after.iter()).take(ncpus - 1);
        for (i, p) in cpus.enumerate() {
            let s = if i < self.slot { i } else { i + 1 };
            if p.pending.is_some_and(|d| access_enabled(k, s, d.access, &d.object)) {
                others[n] = Actor::Cpu(s as u8);
                n += 1;
            }
        }
        for c in 0..=ncpus {
            if interrupts::irq_enabled(&k.cpus, c) {
                others[n] = Actor::Irq(c as u8);
                n += 1;
            }
        }
        if !k.rcu.callbacks.is_empty() {
            others[n] = Actor::Rcu;
            n += 1;
        }
        self.sched.strategy.keeps_choosing(Actor::Cpu(self.slot as u8), &others[..n])
    }

    #[inline(never)]
    fn choose(&mut self, k: &Kernel, who: &Who) -> bool {
        // the runnable list as the loop builds it, with this slot's access just declared (and
        // enabled: `go` checked) but not yet stored in its `Prog`
        let (env, slot, before, after) = (self.env, self.slot, self.before, self.after);
        fill_runnable(self.runnable, env, k, Phase::Concurrent, |s| {
            if s == slot {
                return Some(Choice {
                    actor: Actor::Cpu(s as u8),
                    op: who.op,
                    op_step: who.op_step,
                });
            }
            let p = if s < slot { &before[s] } else { after.get(s - slot - 1)? };
            enabled_choice(env, k, Phase::Concurrent, s, p)
        });
        let sched = &mut *self.sched;
        let c = match sched.strategy.choose(self.step, self.runnable) {
            Ok(i) => self.runnable[i],
            Err(d) => {
                sched.pre = Some(Err(d));
                return false;
            }
        };
        if sched.record {
            self.decisions.push(Decision { actor: c.actor, op: c.op, op_step: c.op_step });
        }
        if c.actor == Actor::Cpu(slot as u8) {
            return true;
        }
        sched.pre = Some(Ok(c));
        false
    }
}

/// The operation `slot` runs as its `index`th in `phase`, with its mm.
#[inline]
fn op_of(env: &Env, phase: Phase, slot: usize, index: u16) -> Option<(u8, Op)> {
    let i = index as usize;
    if slot == env.serial_cpu as usize {
        match phase {
            Phase::Setup => env.scenario.setup.get(i).copied(),
            _ => (i < env.scenario.mm_names.len()).then_some((i as u8, Op::ExitMmap)),
        }
    } else {
        let (mm, ops) = &env.scenario.cpus[slot];
        ops.get(i).map(|&op| (*mm, op))
    }
}

#[inline]
fn actor_of(env: &Env, phase: Phase, slot: usize) -> Actor {
    if slot != env.serial_cpu as usize {
        Actor::Cpu(slot as u8)
    } else if phase == Phase::Setup {
        Actor::Setup
    } else {
        Actor::Teardown
    }
}

/// Who runs in `slot`: its actor, CPU, the mm and index of its operation and its step in it.
#[inline]
fn who_of(env: &Env, phase: Phase, slot: usize, p: &Prog) -> Who {
    let mm = op_of(env, phase, slot, p.next_op).map_or(0, |(mm, _)| mm);
    Who {
        actor: actor_of(env, phase, slot),
        cpu: slot as u8,
        mm,
        op: p.next_op,
        op_step: p.op_step,
    }
}

/// Whether a CPU's declared access can happen now.
#[inline]
fn access_enabled(k: &Kernel, slot: usize, access: Access, object: &Object) -> bool {
    match access {
        Access::LockRead => k.lock(*object).is_none_or(RwLock::can_read),
        Access::LockWrite => k.lock(*object).is_none_or(RwLock::can_write),
        Access::IpiWait => k.cpus[slot].ipi_waiting == 0,
        _ => true,
    }
}

/// The runnable actors of `phase`, in the order strategies see them: the phase's program
/// slots in slot order (`enabled_choice`: a slot's choice if it has a declared access that
/// can happen now), then interrupt contexts with an IPI to take, then RCU. The one place that
/// order is defined: the loop and the fuse hook both build the list here.
#[inline]
fn fill_runnable(
    out: &mut Vec<Choice>,
    env: &Env,
    k: &Kernel,
    phase: Phase,
    enabled_choice: impl Fn(usize) -> Option<Choice>,
) {
    out.clear();
    let ncpus = env.ncpus();
    let slots = if phase == Phase::Concurrent { 0..ncpus } else { ncpus..ncpus + 1 };
    out.extend(slots.filter_map(enabled_choice));
    push_interrupts(out, k, ncpus);
}

/// `slot`'s choice if `p` has a declared access that can happen now.
#[inline]
fn enabled_choice(env: &Env, k: &Kernel, phase: Phase, slot: usize, p: &Prog) -> Option<Choice> {
    let pend = p.pending?;
    access_enabled(k, slot, pend.access, &pend.object).then(|| Choice {
        actor: actor_of(env, phase, slot),
        op: p.next_op,
        op_step: p.op_step,
    })
}

/// The tail of the runnable list: interrupt contexts with an IPI to take, then RCU.
#[inline]
fn push_interrupts(out: &mut Vec<Choice>, k: &Kernel, ncpus: usize) {
    for c in 0..=ncpus {
        if interrupts::irq_enabled(&k.cpus, c) {
            out.push(Choice { actor: Actor::Irq(c as u8), op: 0, op_step: 0 });
        }
    }
    if !k.rcu.callbacks.is_empty() && interrupts::rcu_ready(k) {
        out.push(Choice { actor: Actor::Rcu, op: 0, op_step: 0 });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::{prepare, Request};
    use crate::scenario::Source;
    use mmsim_traces::{Object, ReportKind};

    fn env(profile: &str) -> Env {
        let req = Request {
            source: Source::load("gup-vs-unshare").unwrap(),
            arch: None,
            profile: Some(profile.into()),
            set: vec![],
        };
        prepare(&req).unwrap()
    }

    /// Run setup, apply `tweak` to the state, then the concurrent phase in CPU order.
    fn run_tweaked(env: &Env, tweak: impl FnOnce(&mut State)) -> Checker {
        let mut e = Engine::new(env, false);
        e.phase = Phase::Setup;
        assert_eq!(e.run_phase(&mut FirstRunnable, false).unwrap(), None);
        tweak(&mut e.state);
        e.phase = Phase::Concurrent;
        let _ = e.run_phase(&mut FirstRunnable, true).unwrap();
        e.check
    }

    #[test]
    fn deadlock_is_reported_with_who_waits_for_what() {
        let env = env("v6.3");
        // a lock held by a CPU that will never release it: everyone needing it is stuck
        let check = run_tweaked(&env, |s| s.k.mms[0].mmap_lock.writer = Some(7));
        let r =
            check.reports.iter().find(|r| r.kind == ReportKind::Deadlock).expect("deadlock report");
        assert_eq!(r.object, Some(Object::MmapLock(0)));
        assert!(
            r.text.contains("CPU0")
                && r.text.contains("mmap_lock(mm0)")
                && r.text.contains("held by CPU7"),
            "{}",
            r.text
        );
    }

    #[test]
    fn sleeping_lock_with_irqs_off_is_a_lock_rule_violation() {
        let env = env("v6.3");
        let check = run_tweaked(&env, |s| s.k.cpus[0].irqs_off = 1);
        let r = check
            .reports
            .iter()
            .find(|r| r.kind == ReportKind::LockRule)
            .expect("lock rule report");
        assert!(r.text.contains("sleeping function called from invalid context"), "{}", r.text);
        assert!(r.text.contains("with IRQs disabled"), "{}", r.text);
    }

    /// Skipping the empty slots of range loops run alone changes nothing a run shows: for
    /// every built-in scenario (its own arch and profile) and the seed race on other arches
    /// and profiles, each seed of each seeded strategy gives the same steps, decisions,
    /// verdict, reports and final state with the skip as without it, and as a traced run
    /// (which never skips); and the skip happens, in serial phases and in the concurrent one.
    /// What a run reported: kind, step and text of each report.
    fn reports_of(out: &Outcome) -> Vec<(ReportKind, u64, String)> {
        out.check.reports.iter().map(|r| (r.kind, r.at.step, r.text.clone())).collect()
    }

    /// Every built-in scenario, and the seed race on five more architectures and at v6.1.
    fn builtin_cases() -> Vec<(String, crate::run::Prepared)> {
        let mut cases: Vec<(&str, Option<&str>, Option<&str>)> =
            crate::scenario::BUILTIN.iter().map(|(n, _)| (*n, None, None)).collect();
        for arch in ["arm64-4k", "arm64-16k", "riscv64-sv48", "x86_64-la57", "riscv64-sv39"] {
            cases.push(("gup-vs-unshare", Some(arch), Some("v6.3")));
        }
        cases.push(("gup-vs-unshare", None, Some("v6.1")));
        cases
            .into_iter()
            .map(|(name, arch, profile)| {
                let req = Request {
                    source: Source::load(name).unwrap(),
                    arch: arch.map(String::from),
                    profile: profile.map(String::from),
                    set: vec![],
                };
                (format!("{name} {arch:?} {profile:?}"), crate::run::Prepared::new(&req).unwrap())
            })
            .collect()
    }

    #[test]
    fn a_run_from_the_setup_snapshot_is_the_run_from_the_start() {
        use crate::explore::StrategyKind;
        let mut resumed = 0;
        for (name, p) in builtin_cases() {
            let Some(after) = Engine::after_setup(&p.env) else { continue };
            resumed += 1;
            let kinds = [StrategyKind::Random, StrategyKind::Urw, StrategyKind::Pct];
            for (seed, kind) in (0..6).zip(kinds.iter().cycle()) {
                let run = |e: Engine| {
                    let mut s = kind.build(&p, seed, 3);
                    let (out, hash) = e.run_fingerprinted(&mut *s).unwrap();
                    let reports = reports_of(&out);
                    (out.steps, out.verdict, reports, hash, out.check.skipped)
                };
                let from_start = run(Engine::new(&p.env, false));
                let from_setup = run(Engine::from_setup(&p.env, &after));
                assert_eq!(from_start, from_setup, "{name} seed {seed} {kind:?}");
            }
        }
        assert!(resumed > 10, "setup ended the run in most scenarios: {resumed} resumed");
    }

    #[test]
    fn skipping_empty_slots_of_an_actor_alone_changes_nothing_but_speed() {
        let (mut skipped, mut concurrent) = (0, 0);
        for (case_name, p) in builtin_cases() {
            use crate::explore::StrategyKind;
            let kinds =
                [StrategyKind::Random, StrategyKind::Urw, StrategyKind::Pct, StrategyKind::Swarm];
            for (seed, kind) in (0..8).zip(kinds.iter().cycle()) {
                let run = |skip: bool, tracing: bool| {
                    let mut s = kind.build(&p, seed, 3);
                    let configured = s.configure(&p.env);
                    let mut e = Engine::new(configured.as_ref().unwrap_or(&p.env), tracing);
                    e.skip_repeats = skip;
                    let (out, hash) = e.run_fingerprinted(&mut *s).unwrap();
                    let reports = reports_of(&out);
                    let skipped = (out.check.skipped, out.check.skipped_concurrent);
                    (out.steps, out.verdict, reports, hash, skipped)
                };
                let (slow, fast, traced) = (run(false, false), run(true, false), run(true, true));
                let case = format!("{case_name} seed {seed} {kind:?}");
                assert_eq!(slow.4, (0, 0), "{case}: nothing skipped when told not to");
                assert_eq!(traced.4, (0, 0), "{case}: a traced run skips nothing");
                let shown =
                    |r: &(u64, Verdict, Vec<_>, u64, (u64, u64))| (r.0, r.1, r.2.clone(), r.3);
                assert_eq!(shown(&slow), shown(&fast), "{case}: skipping");
                assert_eq!(shown(&slow), shown(&traced), "{case}: tracing");
                skipped += fast.4 .0;
                concurrent += fast.4 .1;
            }
        }
        assert!(skipped > 100_000, "the skip hardly happened: {skipped} steps");
        assert!(concurrent > 10_000, "a CPU alone hardly skipped: {concurrent} steps");
    }

    #[test]
    fn the_same_seed_gives_the_same_state() {
        use std::hash::{Hash, Hasher};
        let env = env("v6.1");
        let hash = |seed| {
            let lengths = crate::run::calibrate(&env).unwrap();
            let mut e = Engine::new(&env, false);
            let mut s = strategy::RandomPriorities::new(seed, &lengths, 3);
            e.phase = Phase::Setup;
            e.run_phase(&mut FirstRunnable, false).unwrap();
            e.phase = Phase::Concurrent;
            e.run_phase(&mut s, true).unwrap();
            let mut h = std::collections::hash_map::DefaultHasher::new();
            e.state.hash(&mut h);
            (h.finish(), e.decisions.len())
        };
        assert_eq!(hash(5), hash(5));
        assert_ne!(hash(5).0, 0);
    }
}
