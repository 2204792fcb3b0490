//! Scheduler strategies: given the runnable actors, pick the next. One file a strategy: random
//! priorities with per-CPU change points (the default, `random`), PCT proper (`pct`), a uniform
//! random walk (`urw`), swarm (`swarm`), the fair liveness phase wrapped around any of them
//! (`fair`), replay of recorded decisions, and first-runnable (the serial setup and teardown
//! phases).

mod fair;
mod first;
mod pct;
mod random_priorities;
mod replay;
mod swarm;
mod urw;

pub use fair::{Fair, Liveness};
pub use first::FirstRunnable;
pub use pct::{guarantee as pct_guarantee, Pct};
pub use random_priorities::RandomPriorities;
pub use replay::Replay;
pub use swarm::{Swarm, SwarmConfig};
pub use urw::RandomWalk;

use crate::env::Env;
use crate::model::cpu::MAX_CPUS;
use mmsim_traces::Actor;

/// Why a replay cannot follow its recorded decisions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("step {step}: {why}")]
pub struct Diverged {
    pub step: u64,
    pub why: String,
}

/// Where each runnable actor is, so replay can check it is at the recorded position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Choice {
    pub actor: Actor,
    pub op: u16,
    pub op_step: u32,
}

pub trait Strategy {
    /// Name and parameters, as written into trace headers.
    fn name(&self) -> String;
    /// Index into `runnable` (never empty) of the actor to run at `step`.
    fn choose(&mut self, step: u64, runnable: &[Choice]) -> Result<usize, Diverged>;
    /// The environment this strategy's run uses instead of `env`, if it changes it (swarm
    /// drops operations and draws switches).
    fn configure(&self, _env: &Env) -> Option<Env> {
        None
    }
    /// The liveness phase the engine checks, if this strategy has one (see [`Fair`]).
    fn liveness(&self) -> Option<Liveness> {
        None
    }
    /// How many decisions in a row, from the next one, choose `actor` whatever part of
    /// `others` is runnable beside it, each call of `choose` with `actor` alone having the
    /// same effect as with them. The engine then lets a CPU skip steps that change nothing
    /// (`kernel::skip`), still calling `choose` for each of them. 0, the default, promises
    /// nothing (a strategy that can fail, as replay, keeps it).
    fn keeps_choosing(&self, _actor: Actor, _others: &[Actor]) -> u64 {
        0
    }
    /// The `n` decisions after step `step` with `c`'s actor alone runnable (the j-th at step
    /// `step + j` with op step `c.op_step + j`, j from 1), leaving the strategy as `n` calls
    /// of `choose` would. The default makes those calls; a strategy may do it at once.
    fn choose_alone(&mut self, step: u64, c: Choice, n: u64) {
        for j in 1..=n {
            let cj = Choice { op_step: c.op_step + j as u32, ..c };
            let chosen = self.choose(step + j, &[cj]);
            debug_assert_eq!(chosen, Ok(0), "a strategy that chooses the only actor");
        }
    }
}

/// Actor slots: CPUs, their interrupt contexts, and RCU.
pub const SLOTS: usize = 2 * MAX_CPUS + 1;
/// Upper bound on `depth - 1`.
pub const MAX_CHANGE_POINTS: usize = 8;

pub fn slot(a: Actor) -> usize {
    match a {
        Actor::Cpu(c) => c as usize,
        Actor::Irq(c) => MAX_CPUS + c as usize,
        Actor::Rcu | Actor::Setup | Actor::Teardown => 2 * MAX_CPUS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::rng::Rng;

    /// Every actor of the test universe, in the engine's runnable order.
    const ALL: [Actor; 6] =
        [Actor::Cpu(0), Actor::Cpu(1), Actor::Cpu(2), Actor::Irq(0), Actor::Irq(1), Actor::Rcu];

    fn build(kind: u32, seed: u64) -> Box<dyn Strategy> {
        let lengths = [40, 25, 60];
        match kind {
            0 => Box::new(RandomPriorities::new(seed, &lengths, 4)),
            1 => Box::new(RandomWalk::new(seed)),
            2 => Box::new(Pct::new(seed, 120, 4)),
            _ => Box::new(Swarm::new(seed, &[1, 1, 1], &lengths)),
        }
    }

    fn list(actors: impl Iterator<Item = Actor>) -> Vec<Choice> {
        actors.map(|actor| Choice { actor, op: 0, op_step: 0 }).collect()
    }

    /// A random part of the universe as a runnable list, or `fallback` alone if that is empty.
    fn some_of(rng: &mut Rng, fallback: Actor) -> Vec<Choice> {
        let r = list(ALL.iter().copied().filter(|_| rng.below(2) == 0));
        if r.is_empty() {
            list([fallback].into_iter())
        } else {
            r
        }
    }

    /// The strategies make the same 20 decisions from step `from` on, over random runnable
    /// lists: they are in the same state.
    fn same_after<const N: usize>(
        rng: &mut Rng,
        a: Actor,
        from: u64,
        mut strategies: [Box<dyn Strategy>; N],
        case: &str,
    ) {
        for j in from + 1..from + 20 {
            let r = some_of(rng, a);
            let chosen: Vec<usize> =
                strategies.iter_mut().map(|s| s.choose(j, &r).unwrap()).collect();
            assert!(chosen.windows(2).all(|w| w[0] == w[1]), "{case}: {chosen:?} at {j}");
        }
    }

    /// A random runnable list holding `a` and part of `others`, in the engine's order.
    fn with_some(rng: &mut Rng, a: Actor, others: &[Actor]) -> Vec<Choice> {
        let mut keep = vec![a];
        keep.extend(others.iter().copied().filter(|_| rng.below(2) == 0));
        list(ALL.iter().copied().filter(|x| keep.contains(x)))
    }

    /// `keeps_choosing(a, others) = h` is a promise: the next `h` decisions choose `a` whatever
    /// part of `others` is runnable, and making them with `a` alone, one by one or at once
    /// (`choose_alone`), leaves the strategy as making them with the others does (the
    /// decisions after are the same). Checked from many points of random schedules of every
    /// seeded strategy, and the promise is made.
    #[test]
    fn a_promise_to_keep_choosing_an_actor_holds_whatever_else_is_runnable() {
        let mut promised = [0u64; 4];
        for kind in 0..4 {
            for seed in 0..30 {
                let mut rng = Rng::new(1000 + seed);
                // a random history of decisions, replayed to copy the strategy at any point
                let mut history: Vec<Vec<Choice>> = Vec::new();
                let replayed = |history: &[Vec<Choice>]| {
                    let mut s = build(kind, seed);
                    for (t, r) in history.iter().enumerate() {
                        s.choose(t as u64, r).unwrap();
                    }
                    s
                };
                let mut s = build(kind, seed);
                for t in 0..150u64 {
                    for &a in &ALL[..3] {
                        // the others that may run: a random part of the universe
                        let others: Vec<Actor> =
                            ALL.iter().copied().filter(|&x| x != a && rng.below(3) > 0).collect();
                        let h = s.keeps_choosing(a, &others).min(40);
                        if h == 0 {
                            continue;
                        }
                        promised[kind as usize] += h;
                        let (mut full, mut alone) = (replayed(&history), replayed(&history));
                        // `choose_alone` at once, where `alone` makes the calls one by one
                        let mut batch = replayed(&history);
                        batch.choose_alone(t, Choice { actor: a, op: 0, op_step: 0 }, h);
                        for j in 0..h {
                            let r = with_some(&mut rng, a, &others);
                            let i = full.choose(t + j, &r).unwrap();
                            assert_eq!(r[i].actor, a, "kind {kind} seed {seed} step {t}+{j}");
                            let only = list([a].into_iter());
                            assert_eq!(alone.choose(t + j, &only), Ok(0));
                        }
                        let case = format!("kind {kind} seed {seed}: after the promise at {t}");
                        same_after(&mut rng, a, t + h, [full, alone, batch], &case);
                    }
                    // choose_alone is `n` calls with the actor alone, for any `n`
                    let a = ALL[rng.below(3) as usize];
                    let n = 1 + u64::from(rng.below(60));
                    let (mut calls, mut batch) = (replayed(&history), replayed(&history));
                    for j in 1..=n {
                        calls.choose(t + j, &list([a].into_iter())).unwrap();
                    }
                    batch.choose_alone(t, Choice { actor: a, op: 0, op_step: 0 }, n);
                    let case = format!("kind {kind} seed {seed}: choose_alone({n}) at {t}");
                    same_after(&mut rng, a, t + n, [calls, batch], &case);
                    let r = some_of(&mut rng, ALL[0]);
                    s.choose(t, &r).unwrap();
                    history.push(r);
                }
            }
        }
        assert!(promised.iter().all(|&p| p > 1000), "promises made: {promised:?}");
    }
}
