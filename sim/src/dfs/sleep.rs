//! The stateful search with sleep sets (`--por sleep`): a depth-first search over the
//! scheduling decisions that runs every enabled child of every node within the bound, pruned by
//! sleep sets and a visited-state table.
//!
//! * **Sleep sets** (Godefroid 1996) made sound under the bound. Plain sleep sets are not: the
//!   schedule a sleeping step stands for may need more preemptions than the one it prunes (the
//!   reason tools miss races at low bounds). Here a sleeping entry carries the preemptions its
//!   covering schedule has used; a step is never skipped for being asleep, but after a sleeping
//!   step runs, its successor `x` is skipped only when the covering schedule reaches the same
//!   state after `x` with no more preemptions and the same last actor, so it has at least the
//!   budget this path has ([`Point`]).
//! * **Visited-state pruning**: a node is skipped when the same key was already explored with
//!   no more preemptions used (a node entered by a step nothing races with is not looked up:
//!   that rarely prunes and costs more than the step). The key ([`super::key`]) fingerprints
//!   the engine state, the checker's history (which reports a path already filed decides
//!   what the rest of it can still report) and the last actor: a node with more budget and
//!   the same future explores a superset (what the earlier visit skipped as covered is
//!   covered for the later one too). The table is only looked up, never iterated, so results
//!   do not depend on its order. Tables are per bound. End states are looked up too: an
//!   execution that ends in a state another one ended in (with no more preemptions) is not
//!   finished again, since its teardown and checks would repeat the other's.
//! * **Cheap nodes**: the last child of a node takes the node's engine instead of a copy (at
//!   the bound most nodes have one child), the others are copied into engines whose subtree
//!   is done ([`crate::model::CopyFrom`]: their vectors are reused), a copy shares the
//!   page-table frames and programs until one is written ([`crate::model::mem::PhysMem`]),
//!   and the schedule is kept once, in the search.
//! * **Range loops at one-child nodes**: where the search runs only the CPU that just ran,
//!   its range loops skip their empty slots as in the seeded loop ([`Alone`]); a node's
//!   children are then those of every repeat of the loop's iteration, so nothing changes but
//!   the nodes visited.

use super::alone::races_with_none;
use super::footprint::{dependent, footprint_with, Footprint, Key as Touched, Mutant};
use super::key::{state_key, KeyHasher};
use super::{cost, Recorder};
use crate::engine::strategy::Choice;
use crate::engine::Engine;
use crate::kernel::ctx::{Fuse, Who};
use crate::model::fingerprint::StateHasher;
use crate::model::{CopyFrom, Kernel};
use mmsim_traces::{Access, Actor, Decision, Object};
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

/// A visited-table key: a 64-bit [`StateHasher`] fingerprint (a collision, about 2^-24 for a
/// million states, would prune one node wrongly).
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

pub(super) struct Search<'s, 'r, 'e> {
    pub(super) rec: &'r mut Recorder<'s>,
    visited: HashMap<Key, u32, BuildHasherDefault<KeyHasher>>,
    /// The decisions from the root to the node being visited: kept here, not in each
    /// engine, so that a branch does not copy the whole schedule.
    path: Vec<Decision>,
    /// Engines whose subtree is done, kept for the next branch to copy a node into
    /// ([`CopyFrom`]): a copy then reuses their vectors instead of allocating its own.
    // boxed on purpose: an engine moves into a child and back, a pointer instead of 464 bytes
    #[allow(clippy::vec_box)]
    pool: Vec<Box<Engine<'e>>>,
    /// Sleep sets and branch lists whose node is done, kept for the next ones (a child's
    /// sleep set is built at every branch).
    sleep_pool: Vec<Vec<Sleep>>,
    done_pool: Vec<Vec<(Sleep, bool)>>,
}

/// The most engines [`Search::pool`] keeps (a branch takes one; they come back as subtrees end).
const POOL_MAX: usize = 256;

impl<'s, 'r, 'e> Search<'s, 'r, 'e> {
    pub(super) fn new(rec: &'r mut Recorder<'s>) -> Self {
        Search {
            rec,
            visited: HashMap::default(),
            path: Vec::new(),
            pool: Vec::new(),
            sleep_pool: Vec::new(),
            done_pool: Vec::new(),
        }
    }

    /// Search the tree below `root` (the start of the concurrent phase).
    pub(super) fn run(&mut self, mut root: Engine<'e>) {
        self.path = std::mem::take(&mut root.decisions);
        self.visit(Box::new(root), 0, None, Vec::new(), None)
    }

    /// A copy of `eng` for a child of a branch, in a recycled engine when there is one.
    /// Engines are boxed: a branch moves them into its children and back to the pool.
    fn copy_of(&mut self, eng: &Engine<'e>) -> Box<Engine<'e>> {
        match self.pool.pop() {
            Some(mut e) => {
                e.copy_from(eng);
                e
            }
            None => Box::new(eng.clone()),
        }
    }

    /// File an execution that ended at `eng`, with the schedule that led there.
    fn finish(&mut self, mut eng: Box<Engine<'e>>) {
        eng.decisions = self.path.clone();
        self.rec.finish(*eng);
    }

    /// The visited-table key: the state, the checker's history and the last actor. Sleep
    /// information is left out: what a node skips for it is covered by schedules that reach
    /// the same states with no more preemptions, so they cover a later visit as well.
    fn key(&self, eng: &Engine<'e>, last: Option<Actor>) -> Key {
        let mut h = StateHasher::default();
        state_key(eng).hash(&mut h);
        last.hash(&mut h);
        h.finish()
    }

    /// Whether the node's key was already explored with no more preemptions (then the node is
    /// pruned and counted); else it is recorded as explored with `used`.
    fn seen(&mut self, eng: &Engine<'e>, last: Option<Actor>, used: u32) -> bool {
        if !self.rec.cfg.visited {
            return false;
        }
        let key = self.key(eng, last);
        // one probe of the table for the lookup and the insertion
        match self.visited.entry(key) {
            Entry::Occupied(mut o) => {
                if *o.get() <= used {
                    self.rec.stats.pruned_visited += 1;
                    return true;
                }
                o.insert(used);
            }
            Entry::Vacant(v) => {
                v.insert(used);
            }
        }
        false
    }

    /// Visit the node `eng` and everything below it. A node with one child to run (most of
    /// them: at the bound only the last actor may run on) does not recurse: the loop steps
    /// the same engine on, so a chain of such nodes costs no copy, no move of the engine and
    /// no allocation, and explores exactly what one call per node would.
    fn visit(
        &mut self,
        mut eng: Box<Engine<'e>>,
        mut used: u32,
        mut last: Option<Actor>,
        mut sleep: Vec<Sleep>,
        mut point: Option<Point>,
    ) {
        let depth = self.path.len();
        let mut en_buf = [NO_CHOICE; MAX_CHOICES];
        // the engine's step count at the first of the nodes, up to this one, that gave the
        // last CPU the only child and let its loops skip
        let mut chain_from: Option<u64> = None;
        // whether the step into this node was one nothing could race with ([`races_with_none`]):
        // such a node is neither looked up in the visited table nor recorded there. Skipping
        // a lookup only ever explores more; these pruned almost nothing (v6.3 bound 3: 10% of
        // the lookups, the same executions) and a key costs more than the step.
        let mut prev_alone = false;
        // the engine, unless an execution or a branch took it
        let left = loop {
            if self.rec.stopped.is_some() {
                break Some(eng);
            }
            if eng.at_step_limit() {
                self.finish(eng);
                break None;
            }
            let runnable = eng.runnable_now();
            let n = runnable.len();
            en_buf[..n].copy_from_slice(runnable);
            let en = &en_buf[..n];
            if en.is_empty() {
                // the covering schedule ended in this very state with no more preemptions
                if point.is_some_and(|p| p.alt_used <= used) {
                    self.rec.stats.pruned_sleep += 1;
                } else if !self.seen(&eng, last, used) {
                    // an end state reached before by another schedule: its outcome is known
                    self.finish(eng);
                    break None;
                }
                break Some(eng);
            }
            let node = Node::new(en, used, last, point, self.rec.bound);
            // the last actor first: the schedules without a preemption come first
            let mut order = [0u8; MAX_CHOICES];
            let mut k = 0;
            let first = last.and_then(|l| en.iter().position(|c| c.actor == l));
            if let Some(i) = first {
                order[0] = i as u8;
                k = 1;
            }
            for i in (0..n).filter(|&i| Some(i) != first) {
                order[k] = i as u8;
                k += 1;
            }
            let order = &order[..n];
            if !prev_alone && self.seen(&eng, last, used) {
                break Some(eng);
            }
            let mutant = self.rec.cfg.mutant;
            // the node's footprints are asked for more than once (the last actor's by the rule
            // below and by the sleep set): each is computed once
            let mut fps = Footprints::default();
            // the last actor's step, when nothing else can race with it, is the only child
            let alone =
                first.filter(|_| n > 1 && self.rec.cfg.alone).filter(|&i| match en[i].actor {
                    Actor::Cpu(cpu) => {
                        let fp = fps.of(&eng, en[i].actor, mutant);
                        races_with_none(&eng, cpu, fp, mutant)
                    }
                    _ => false,
                });
            let mut running = order
                .iter()
                .map(|&i| i as usize)
                .filter(|&i| node.runs(i) && alone.is_none_or(|a| a == i));
            let (only, second) = (running.next(), running.next());
            prev_alone = alone.is_some();
            if alone.is_some() {
                self.rec.stats.alone += 1;
                if only.is_none() {
                    // its one child is covered by the schedule a sleeping step stands for
                    self.rec.stats.pruned_sleep += 1;
                    break Some(eng);
                }
            }
            let Some(c) = only.filter(|_| second.is_none()).map(|i| en[i]) else {
                self.branch(eng, &node, order, &sleep);
                break None;
            };
            // one child: the others are over the bound or covered (counted as pruned)
            self.rec.stats.pruned_sleep += order
                .iter()
                .map(|&i| i as usize)
                .filter(|&i| node.within_bound(i) && node.covered(i))
                .count() as u64;
            let used2 = node.child_used(en.iter().position(|d| *d == c).expect("a runnable child"));
            let asleep = sleep.iter().find(|z| z.actor == c.actor).copied();
            // the last CPU runs on as the only child: its loops may skip empty slots
            // ([`Alone`]) unless a sleeping step writes what the skipped steps read
            let mut skips = self.rec.cfg.skip_repeats
                && matches!(c.actor, Actor::Cpu(_))
                && last == Some(c.actor)
                && point.is_none()
                && asleep.is_none();
            if self.rec.cfg.sleep_sets && !sleep.is_empty() {
                let last_fp = last_footprint(&eng, last, mutant, &mut fps);
                let fp = fps.of(&eng, c.actor, mutant);
                skips = skips && sleep.iter().all(|z| writes_no_entry_read_by(z.fp, fp));
                sleep.retain_mut(|z| {
                    let keep = z.actor != c.actor && !dependent(z.fp, fp);
                    if keep {
                        let last_runnable_there =
                            node.last_enabled || last_fp.is_some_and(|f| dependent(f, z.fp));
                        z.alt_used += cost(last, last_runnable_there, c.actor);
                    }
                    keep
                });
            } else {
                sleep.clear();
            }
            self.path.push(Decision { actor: c.actor, op: c.op, op_step: c.op_step });
            if skips {
                let since = *chain_from.get_or_insert(eng.step_count());
                let mut hook = Alone { since, path: &mut self.path };
                let skipped = eng.exec_choice_alone(c, &mut hook);
                self.rec.stats.steps += 1 + skipped;
                self.rec.stats.skipped += skipped;
            } else {
                chain_from = None;
                eng.exec_choice(c);
                self.rec.stats.steps += 1;
            }
            // a sleeping step has a last actor: nothing sleeps at the root
            point = asleep
                .filter(|_| self.rec.cfg.sleep_sets)
                .zip(last)
                .map(|(z, alt_last)| Point { alt_used: z.alt_used, alt_last });
            used = used2;
            last = Some(c.actor);
        };
        if let Some(e) = left.filter(|_| self.pool.len() < POOL_MAX) {
            self.pool.push(e);
        }
        if self.sleep_pool.len() < POOL_MAX {
            sleep.clear();
            self.sleep_pool.push(sleep);
        }
        self.path.truncate(depth);
    }

    /// A node with more than one child to run: each child in turn, the last one taking the
    /// node's engine instead of a copy.
    fn branch(&mut self, eng: Box<Engine<'e>>, node: &Node, order: &[u8], sleep: &[Sleep]) {
        let Node { en, last, last_enabled, .. } = *node;
        let last_child = order.iter().rposition(|&i| node.runs(i as usize));
        let mutant = self.rec.cfg.mutant;
        // In a covering schedule the sleeping step has already run, which may have enabled
        // the last actor's next step here: count it as runnable there unless it commutes.
        let mut fps = Footprints::default();
        let last_fp = last_footprint(&eng, last, mutant, &mut fps);
        let mut done = self.done_pool.pop().unwrap_or_default();
        done.clear();
        let mut eng = Some(eng);
        for (pos, &i) in order.iter().enumerate() {
            if self.rec.stopped.is_some() {
                return;
            }
            let i = i as usize;
            let c = en[i];
            let used2 = node.child_used(i);
            if !node.within_bound(i) {
                continue;
            }
            if node.covered(i) {
                self.rec.stats.pruned_sleep += 1;
                continue;
            }
            let here = eng.as_ref().expect("the last child takes the engine");
            let fp = fps.of(here, c.actor, mutant);
            let asleep = sleep.iter().find(|z| z.actor == c.actor).copied();
            let mut child = if Some(pos) == last_child {
                eng.take().expect("taken once")
            } else {
                self.copy_of(here)
            };
            child.exec_choice(c);
            self.rec.stats.steps += 1;
            let c_enabled_after = child.runnable_now().iter().any(|d| d.actor == c.actor);
            let mut zs = self.sleep_pool.pop().unwrap_or_default();
            zs.clear();
            if self.rec.cfg.sleep_sets {
                for z in sleep {
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
                .filter(|_| self.rec.cfg.sleep_sets)
                .zip(last)
                .map(|(z, alt_last)| Point { alt_used: z.alt_used, alt_last });
            self.path.push(Decision { actor: c.actor, op: c.op, op_step: c.op_step });
            self.visit(child, used2, Some(c.actor), zs, child_point);
            self.path.pop();
            done.push((Sleep { actor: c.actor, fp, alt_used: used2 }, c_enabled_after));
        }
        if self.done_pool.len() < POOL_MAX {
            self.done_pool.push(done);
        }
        // no child ran (each over the bound or covered): the engine goes back to the pool
        if let Some(e) = eng.filter(|_| self.pool.len() < POOL_MAX) {
            self.pool.push(e);
        }
    }
}

/// The hook for a CPU the search gives every step to ([`Engine::exec_choice_alone`]): its
/// range loops may skip the iterations over empty slots ([`crate::kernel::skip`]) when the
/// iteration they repeat ran at nodes that gave this CPU, the last actor, the only child,
/// from the step `since` on, with no covering point and this CPU awake. Each repeat of such
/// a node is one too: what decides the children is the same there. The other actors'
/// runnability reads the state, which a repeat finds as the iteration before it did (the
/// loop's address and the entry it reads aside, an empty one like the one before); the
/// preemptions used and the last actor do not change; the rule for steps nothing races with
/// ([`races_with_none`]) reads the same tables and locks, another entry of one of them; the
/// sleeping steps are checked ([`writes_no_entry_read_by`]). The skipped decisions go on the
/// search's path.
struct Alone<'p> {
    since: u64,
    path: &'p mut Vec<Decision>,
}

impl Fuse for Alone<'_> {
    fn go(&mut self, _: &Kernel, _: &Object, _: Access, _: &Who) -> bool {
        false
    }

    fn keeps_running(&mut self, _: &Kernel, _: &Who, since: u64) -> u64 {
        if since >= self.since {
            u64::MAX
        } else {
            0
        }
    }

    fn decide_alone(&mut self, who: &Who, n: u64) {
        let (actor, op) = (who.actor, who.op);
        let steps = (1..=n).map(|j| Decision { actor, op, op_step: who.op_step + j as u32 });
        self.path.extend(steps);
    }
}

/// Whether sleeping step `z` writes no entry of a table whose entry `fp` reads. The steps a
/// loop skips repeat the steps of its last iteration, with other entries of the same table:
/// a sleeping step independent of those (it stayed asleep through them) and of this is
/// independent of them all, and stays asleep.
fn writes_no_entry_read_by(z: Footprint, fp: Footprint) -> bool {
    let tables = || {
        fp.items().filter_map(|it| match it.key {
            Touched::Entry { pfn, .. } => Some(pfn),
            _ => None,
        })
    };
    !z.is_global()
        && z.items().all(|it| match it.key {
            _ if !it.write => true,
            Touched::Entry { pfn, .. } => tables().all(|t| t != pfn),
            Touched::AnyPt => false,
            _ => true,
        })
}

/// A node's runnable actors and what running each of them costs.
struct Node<'a> {
    en: &'a [Choice],
    used: u32,
    last: Option<Actor>,
    last_enabled: bool,
    point: Option<Point>,
    point_enabled: bool,
    bound: u32,
}

impl<'a> Node<'a> {
    fn new(
        en: &'a [Choice],
        used: u32,
        last: Option<Actor>,
        point: Option<Point>,
        bound: u32,
    ) -> Self {
        let last_enabled = last.is_some_and(|l| en.iter().any(|c| c.actor == l));
        let point_enabled = point.is_some_and(|p| en.iter().any(|c| c.actor == p.alt_last));
        Node { en, used, last, last_enabled, point, point_enabled, bound }
    }

    /// The preemptions used after running `en[i]` here.
    fn child_used(&self, i: usize) -> u32 {
        self.used + cost(self.last, self.last_enabled, self.en[i].actor)
    }

    fn within_bound(&self, i: usize) -> bool {
        self.child_used(i) <= self.bound
    }

    /// Whether the covering schedule already reached the state after `en[i]` with no more
    /// preemptions and the same last actor.
    fn covered(&self, i: usize) -> bool {
        self.point.is_some_and(|p| {
            p.alt_used + cost(Some(p.alt_last), self.point_enabled, self.en[i].actor)
                <= self.child_used(i)
        })
    }

    /// Whether `en[i]` is run from here.
    fn runs(&self, i: usize) -> bool {
        self.within_bound(i) && !self.covered(i)
    }
}

/// The last actor's next step, as the covering schedule of a sleeping step would see it.
fn last_footprint(
    eng: &Engine,
    last: Option<Actor>,
    mutant: Mutant,
    fps: &mut Footprints,
) -> Option<Footprint> {
    match last {
        Some(l @ Actor::Cpu(_)) => eng.pending_of(l).map(|_| fps.of(eng, l, mutant)),
        // an interrupt or RCU actor's next step is known whether or not it can run
        Some(l) => Some(fps.of(eng, l, mutant)),
        None => None,
    }
}

/// The footprints of one node's actors, each computed once ([`footprint_with`] reads only
/// the node's state, so asking again gives the same).
#[derive(Default)]
struct Footprints {
    known: [Option<(Actor, Footprint)>; 2],
}

impl Footprints {
    fn of(&mut self, eng: &Engine, actor: Actor, mutant: Mutant) -> Footprint {
        if let Some((_, fp)) = self.known.iter().flatten().find(|(a, _)| *a == actor) {
            return *fp;
        }
        let fp = footprint_with(eng, actor, mutant);
        // keep the first two asked for: the last actor's and the one it runs
        if let Some(slot) = self.known.iter_mut().find(|k| k.is_none()) {
            *slot = Some((actor, fp));
        }
        fp
    }
}

/// Room for every actor that can be runnable at once: each CPU, each CPU's interrupt
/// context (and one more, as `push_interrupts` counts), RCU.
const MAX_CHOICES: usize = 2 * crate::model::cpu::MAX_CPUS + 2;

const NO_CHOICE: Choice = Choice { actor: Actor::Rcu, op: 0, op_step: 0 };
