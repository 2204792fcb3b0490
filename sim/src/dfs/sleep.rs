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
//!   no more preemptions used. The key hashes the whole engine state, the checker's history
//!   (which reports a path already filed decides what the rest of it can still report) and the
//!   last actor: a node with more budget and the same future explores a superset (what the
//!   earlier visit skipped as covered is covered for the later one too). Hashing uses
//!   `DefaultHasher::new()` (fixed keys, never `RandomState`); the table is only looked up, never
//!   iterated, so results do not depend on it. Tables are per bound.

use super::footprint::{dependent, footprint_with, Footprint};
use super::{cost, Recorder};
use crate::engine::strategy::Choice;
use crate::engine::{Engine, State};
use mmsim_traces::Actor;
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

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

pub(super) struct Search<'s, 'r> {
    pub(super) rec: &'r mut Recorder<'s>,
    visited: HashMap<Key, u32, BuildHasherDefault<DefaultHasher>>,
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
            let unlinked = f.unlinked.as_mut().map(|(_, s)| s);
            for site in [f.allocated.as_mut(), f.queued.as_mut(), f.freed.as_mut()]
                .into_iter()
                .chain([f.ptlock_freed.as_mut(), unlinked])
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

/// A hash of the engine's state with [`normalized`] step numbers and of the checker's reports
/// so far (kind, object and function, in sorted order): schedules that only commute
/// independent steps get the same key.
pub fn state_key(eng: &Engine) -> u64 {
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
    h.finish()
}

impl<'s, 'r> Search<'s, 'r> {
    pub(super) fn new(rec: &'r mut Recorder<'s>) -> Self {
        Search { rec, visited: HashMap::default() }
    }

    /// Search the tree below `root` (the start of the concurrent phase).
    pub(super) fn run(&mut self, root: Engine) {
        self.visit(root, 0, None, Vec::new(), None)
    }

    /// The visited-table key: the state, the checker's history and the last actor. Sleep
    /// information is left out: what a node skips for it is covered by schedules that reach
    /// the same states with no more preemptions, so they cover a later visit as well.
    fn key(&self, eng: &Engine, last: Option<Actor>) -> Key {
        let mut h = DefaultHasher::new();
        state_key(eng).hash(&mut h);
        last.hash(&mut h);
        h.finish()
    }

    fn visit(
        &mut self,
        mut eng: Engine,
        used: u32,
        last: Option<Actor>,
        sleep: Vec<Sleep>,
        point: Option<Point>,
    ) {
        if self.rec.stopped.is_some() {
            return;
        }
        if eng.at_step_limit() {
            self.rec.finish(eng);
            return;
        }
        let en: Vec<Choice> = eng.runnable_now().to_vec();
        if en.is_empty() {
            // the covering schedule ended in this very state with no more preemptions
            if point.is_some_and(|p| p.alt_used <= used) {
                self.rec.stats.pruned_sleep += 1;
            } else {
                self.rec.finish(eng);
            }
            return;
        }
        if self.rec.cfg.visited {
            let key = self.key(&eng, last);
            match self.visited.get_mut(&key) {
                Some(u) if *u <= used => {
                    self.rec.stats.pruned_visited += 1;
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
        let mutant = self.rec.cfg.mutant;
        let last_fp = match last {
            Some(l @ Actor::Cpu(_)) => eng.pending_of(l).map(|_| footprint_with(&eng, l, mutant)),
            // an interrupt or RCU actor's next step is known whether or not it can run
            Some(l) => Some(footprint_with(&eng, l, mutant)),
            None => None,
        };
        let mut done: Vec<(Sleep, bool)> = Vec::new();
        for i in order {
            if self.rec.stopped.is_some() {
                return;
            }
            let c = en[i];
            let c_cost = cost(last, last_enabled, c.actor);
            let used2 = used + c_cost;
            if used2 > self.rec.bound {
                continue;
            }
            if let Some(p) = point {
                let alt2 = p.alt_used + cost(Some(p.alt_last), point_enabled, c.actor);
                if alt2 <= used2 {
                    self.rec.stats.pruned_sleep += 1;
                    continue;
                }
            }
            let fp = footprint_with(&eng, c.actor, mutant);
            let asleep = sleep.iter().find(|z| z.actor == c.actor).copied();
            let mut child = eng.clone();
            child.step_choice(c);
            self.rec.stats.steps += 1;
            let c_enabled_after = child.runnable_now().iter().any(|d| d.actor == c.actor);
            let mut zs = Vec::new();
            if self.rec.cfg.sleep_sets {
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
                .filter(|_| self.rec.cfg.sleep_sets)
                .zip(last)
                .map(|(z, alt_last)| Point { alt_used: z.alt_used, alt_last });
            self.visit(child, used2, Some(c.actor), zs, child_point);
            done.push((Sleep { actor: c.actor, fp, alt_used: used2 }, c_enabled_after));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        // the steps of every provenance site of a frame are left out, the unlink's included
        // (kept, it split equal states: 63 executions of the seed race at bound 1 became 241)
        let mut c = e.state.clone();
        let mut d = e.state.clone();
        let (pfn, _) = c.k.mem.frames().next().expect("setup allocated tables");
        let site = |step| crate::model::mem::SiteRef {
            step,
            actor: mmsim_traces::Actor::Cpu(1),
            op: 0,
            func: "huge_pmd_unshare",
        };
        c.k.mem.frame_mut(pfn).unwrap().unlinked = Some((1, site(10)));
        d.k.mem.frame_mut(pfn).unwrap().unlinked = Some((1, site(20)));
        for st in [&mut c, &mut d] {
            let f = st.k.mem.frame_mut(pfn).unwrap();
            let s = f.unlinked.unwrap().1;
            (f.allocated, f.queued, f.freed, f.ptlock_freed) = (Some(s), Some(s), Some(s), Some(s));
        }
        d.k.mem.frame_mut(pfn).unwrap().freed.as_mut().unwrap().step = 30;
        assert_ne!(c, d);
        assert_eq!(normalized(&c), normalized(&d));
        // but not which mms it left
        d.k.mem.frame_mut(pfn).unwrap().unlinked = Some((2, site(20)));
        assert_ne!(normalized(&c), normalized(&d));
    }
}
