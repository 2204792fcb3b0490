//! Bounded dynamic partial-order reduction (`--por dpor`): Flanagan and Godefroid's DPOR
//! (POPL 2005) with the conservative backtrack points of Coons, Musuvathi and McKinley's
//! bounded partial-order reduction (OOPSLA 2013), so that no race is lost to the preemption
//! bound.
//!
//! * Each node of the current schedule keeps its enabled actors, a backtrack set and a done
//!   set. A node first runs the last actor if it can still run (no preemption), else the first
//!   enabled one; further children come only from its backtrack set, and a child that would
//!   exceed the bound is skipped (the conservative points below cover it).
//! * Every transition gets a vector clock over program order and dependent transitions of
//!   other actors ([`dependent`]). At each new state, for every actor `p` with a next step
//!   (enabled, or a CPU blocked on its pending lock access, an interrupt actor with an IPI
//!   pending while its CPU has IRQs off, RCU with callbacks queued), the last transition `i` of another actor that
//!   is dependent with `p`'s next step and does not happen before `p` is a race: `p` (or, if `p`
//!   could not run there, every enabled actor) is added to the backtrack set before `i`, and
//!   also before the latest transition `j <= i` where the schedule switched actors (or at the
//!   root): running `p` there costs no more preemptions than the schedule already paid, so the
//!   reversal stays reachable when adding it at `i` would exceed the bound. Analysis never
//!   stops at the bound: a node whose budget is spent still adds backtrack points above it.
//! * The analysis is incremental: an actor that did not move only races with the newest
//!   transition (older races of its unchanged next step were found at earlier states); the
//!   actor that moved scans back and stops at the first transition that [`covers`] its next
//!   step (everything dependent before that one happens before it), and so do interrupt and
//!   RCU actors, whose next step may have just appeared (an IPI sent, a callback queued).
//! * No sleep sets: they only save redundant executions in DPOR, and plain ones are unsound
//!   under a bound (see [`super::sleep`] for the budget rule that fixes them). No visited-state
//!   pruning either: caching states under DPOR is unsound without summaries of the races below
//!   a cached state, so every node is searched.

use super::footprint::{covers, dependent, footprint_with, Footprint, GLOBAL};
use super::{cost, Recorder};
use crate::engine::Engine;
use mmsim_traces::Actor;

/// One node of the current schedule: the state before transition `k` for node `k`.
struct Node {
    enabled: Vec<Actor>,
    backtrack: Vec<Actor>,
    done: Vec<Actor>,
    last: Option<Actor>,
    last_enabled: bool,
}

/// One transition of the current schedule.
#[derive(Clone, Copy)]
struct Trans {
    actor: Actor,
    fp: Footprint,
    /// The same actor's previous transition.
    prev: Option<u32>,
}

pub(super) struct Search<'s, 'r> {
    rec: &'r mut Recorder<'s>,
    nodes: Vec<Node>,
    trans: Vec<Trans>,
    /// Transition `k`'s vector clock at `k * width..(k + 1) * width`: per actor slot, 1 + the
    /// index of that actor's latest transition that happens before it (0: none).
    clocks: Vec<u32>,
    width: usize,
    ncpus: usize,
    /// Per actor slot: its latest transition on the current schedule.
    latest: Vec<Option<u32>>,
}

impl<'s, 'r> Search<'s, 'r> {
    pub(super) fn new(rec: &'r mut Recorder<'s>) -> Self {
        Search {
            rec,
            nodes: Vec::new(),
            trans: Vec::new(),
            clocks: Vec::new(),
            width: 0,
            ncpus: 0,
            latest: Vec::new(),
        }
    }

    /// Search the tree below `root` (the start of the concurrent phase).
    pub(super) fn run(&mut self, root: Engine) {
        self.ncpus = root.env.ncpus();
        // CPUs, their interrupts (and the extra interrupt slot), RCU
        self.width = 2 * self.ncpus + 2;
        self.latest = vec![None; self.width];
        self.visit(root, 0, None);
    }

    fn slot(&self, a: Actor) -> usize {
        match a {
            Actor::Cpu(c) => c as usize,
            Actor::Irq(c) => self.ncpus + c as usize,
            _ => self.width - 1,
        }
    }

    fn clock(&self, k: usize) -> &[u32] {
        &self.clocks[k * self.width..(k + 1) * self.width]
    }

    /// Whether transition `j` happens before `p`'s latest transition.
    fn hb(&self, j: usize, p: Actor) -> bool {
        match self.latest[self.slot(p)] {
            Some(l) => {
                let a = self.slot(self.trans[j].actor);
                self.clock(l as usize)[a] > j as u32
            }
            None => false,
        }
    }

    /// Append transition `actor` with footprint `fp` and its vector clock.
    fn push(&mut self, actor: Actor, fp: Footprint) {
        let k = self.trans.len();
        let s = self.slot(actor);
        let prev = self.latest[s];
        let w = self.width;
        match prev {
            Some(p) => self.clocks.extend_from_within(p as usize * w..(p as usize + 1) * w),
            None => self.clocks.resize((k + 1) * w, 0),
        }
        if !fp.is_nothing() {
            for j in (0..k).rev() {
                let t = self.trans[j];
                // already joined through a later transition of t's actor (program order)
                let known = self.clocks[k * w + self.slot(t.actor)] > j as u32;
                let dep = dependent(t.fp, fp);
                if dep && !known && t.actor != actor {
                    for x in 0..w {
                        let v = self.clocks[j * w + x];
                        let c = &mut self.clocks[k * w + x];
                        *c = (*c).max(v);
                    }
                }
                // (covering implies dependent)
                if dep && covers(t.fp, fp) {
                    break;
                }
            }
        }
        self.clocks[k * w + s] = k as u32 + 1;
        self.trans.push(Trans { actor, fp, prev });
        self.latest[s] = Some(k as u32);
    }

    fn pop(&mut self) {
        let t = self.trans.pop().expect("a transition to pop");
        let s = self.slot(t.actor);
        self.latest[s] = t.prev;
        self.clocks.truncate(self.trans.len() * self.width);
    }

    /// Add `p` (or every enabled actor, if `p` cannot run there) to node `i`'s backtrack set.
    fn add_backtrack(&mut self, i: usize, p: Actor) {
        let node = &mut self.nodes[i];
        let before = node.backtrack.len();
        if node.enabled.contains(&p) {
            if !node.backtrack.contains(&p) {
                node.backtrack.push(p);
            }
        } else {
            for &q in &node.enabled {
                if !node.backtrack.contains(&q) {
                    node.backtrack.push(q);
                }
            }
        }
        self.rec.stats.backtracks += (node.backtrack.len() - before) as u64;
    }

    /// `p`'s next step races with transition `i`: backtrack before it and before the
    /// latest actor switch at or above it.
    fn race(&mut self, i: usize, p: Actor) {
        self.add_backtrack(i, p);
        let mut j = i;
        while j > 0 && self.trans[j - 1].actor == self.trans[j].actor {
            j -= 1;
        }
        if j != i {
            self.add_backtrack(j, p);
        }
    }

    /// The race analysis at the newest state (`eng`, after the newest transition).
    fn analyse(&mut self, eng: &Engine, enabled: &[Actor]) {
        let Some(&newest) = self.trans.last() else { return };
        let n = self.trans.len() - 1;
        let mutant = self.rec.cfg.mutant;
        // (actor, its next step, whether that step is new: no earlier state analysed it)
        let mut next: Vec<(Actor, Footprint, bool)> = Vec::new();
        for c in 0..self.ncpus {
            let a = Actor::Cpu(c as u8);
            if eng.pending_of(a).is_some() {
                next.push((a, footprint_with(eng, a, mutant), false));
            }
        }
        // an interrupt actor with an IPI to take, whether or not its CPU has IRQs on (blocked
        // like a CPU on a lock), and RCU with callbacks queued, ready or not. Their next step
        // may have appeared only now (an IPI sent, a callback queued): scan every transition.
        let k = &eng.state.k;
        for (c, cpu) in k.cpus.iter().enumerate() {
            if cpu.ipi_from != 0 {
                let a = Actor::Irq(c as u8);
                next.push((a, footprint_with(eng, a, mutant), true));
            }
        }
        if !k.rcu.callbacks.is_empty() || enabled.contains(&Actor::Rcu) {
            next.push((Actor::Rcu, GLOBAL, true));
        }
        for &a in enabled {
            if !matches!(a, Actor::Cpu(_)) && !next.iter().any(|n| n.0 == a) {
                next.push((a, footprint_with(eng, a, mutant), true));
            }
        }
        for (p, fp, new) in next {
            if fp.is_nothing() {
                continue;
            }
            if p != newest.actor && !new {
                // nothing newer than p's latest transition happens before it
                if dependent(newest.fp, fp) {
                    self.race(n, p);
                }
                continue;
            }
            let from = if p == newest.actor { n } else { n + 1 };
            for j in (0..from).rev() {
                let t = self.trans[j];
                let dep = dependent(t.fp, fp);
                if dep && t.actor != p && !self.hb(j, p) {
                    self.race(j, p);
                    break;
                }
                if dep && covers(t.fp, fp) {
                    break;
                }
            }
        }
    }

    fn visit(&mut self, mut eng: Engine, used: u32, last: Option<Actor>) {
        if self.rec.stopped.is_some() {
            return;
        }
        let en: Vec<Actor> = if eng.at_step_limit() {
            Vec::new()
        } else {
            eng.runnable_now().iter().map(|c| c.actor).collect()
        };
        self.analyse(&eng, &en);
        if en.is_empty() {
            self.rec.finish(eng);
            return;
        }
        let last_enabled = last.is_some_and(|l| en.contains(&l));
        let first = if last_enabled { last.unwrap() } else { en[0] };
        let n = self.nodes.len();
        self.nodes.push(Node {
            enabled: en,
            backtrack: vec![first],
            done: Vec::new(),
            last,
            last_enabled,
        });
        loop {
            if self.rec.stopped.is_some() {
                break;
            }
            let node = &self.nodes[n];
            // the non-preemptive choice first, then the others in the order they came
            let pick = node
                .backtrack
                .iter()
                .copied()
                .filter(|a| !node.done.contains(a))
                .min_by_key(|a| cost(node.last, node.last_enabled, *a));
            let Some(a) = pick else { break };
            let c_cost = cost(node.last, node.last_enabled, a);
            self.nodes[n].done.push(a);
            if used + c_cost > self.rec.bound {
                self.rec.stats.pruned_bound += 1;
                continue;
            }
            let choice = *eng
                .runnable_now()
                .iter()
                .find(|c| c.actor == a)
                .expect("a backtrack entry is enabled");
            let fp = footprint_with(&eng, a, self.rec.cfg.mutant);
            let mut child = eng.clone();
            child.step_choice(choice);
            self.rec.stats.steps += 1;
            self.push(a, fp);
            self.visit(child, used + c_cost, Some(a));
            self.pop();
        }
        self.nodes.pop();
    }
}
