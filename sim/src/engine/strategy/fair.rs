//! `fair`: the liveness phase. For the first `after` choices the wrapped (adversarial) strategy
//! schedules; from then on the scheduler is a fair round-robin over the runnable actors, and
//! the engine requires every blocked CPU to get going again before the others complete `limit`
//! more operations (bounded bypass; else it reports starvation with the blocking chain, see
//! `engine`). Adversarial schedules can delay
//! a CPU for as long as others have work; a fair one must not, unless a lock pattern starves it.

use super::{slot, Choice, Diverged, Strategy, SLOTS};
use crate::env::Env;

/// The liveness bound: adversarial choices before the fair phase, and how many operations
/// the other CPUs may complete while one CPU stays blocked in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Liveness {
    pub after: u64,
    pub limit: u64,
}

impl Liveness {
    /// The suffix [`Fair`] appends to its inner strategy's name.
    pub fn suffix(&self) -> String {
        format!("+fair(after={}, limit={})", self.after, self.limit)
    }

    /// Read the liveness bound back from a strategy name; `None` if it has none.
    pub fn parse(name: &str) -> Option<Result<Liveness, String>> {
        let (_, rest) = name.split_once("+fair(")?;
        let body = rest.strip_suffix(')').unwrap_or(rest);
        let mut after = None;
        let mut limit = None;
        for f in body.split(", ") {
            match f.split_once('=') {
                Some(("after", v)) => after = v.parse().ok(),
                Some(("limit", v)) => limit = v.parse().ok(),
                _ => {}
            }
        }
        Some(match (after, limit) {
            (Some(after), Some(limit)) => Ok(Liveness { after, limit }),
            _ => Err(format!("strategy `{name}`: expected +fair(after=N, limit=M)")),
        })
    }
}

/// An adversarial strategy for `after` choices, then round-robin.
pub struct Fair {
    inner: Box<dyn Strategy>,
    live: Liveness,
    taken: u64,
    /// Slot that ran last in the fair phase.
    last: usize,
}

impl Fair {
    pub fn new(inner: Box<dyn Strategy>, live: Liveness) -> Fair {
        Fair { inner, live, taken: 0, last: SLOTS - 1 }
    }
}

impl Strategy for Fair {
    fn name(&self) -> String {
        format!("{}{}", self.inner.name(), self.live.suffix())
    }

    fn configure(&self, env: &Env) -> Option<Env> {
        self.inner.configure(env)
    }

    fn liveness(&self) -> Option<Liveness> {
        Some(self.live)
    }

    fn choose(&mut self, step: u64, runnable: &[Choice]) -> Result<usize, Diverged> {
        self.taken += 1;
        if self.taken <= self.live.after {
            return self.inner.choose(step, runnable);
        }
        // the runnable actor with the next slot after the last one, cyclically
        let key = |c: &Choice| (slot(c.actor) + SLOTS - self.last - 1) % SLOTS;
        let (i, c) = runnable.iter().enumerate().min_by_key(|(_, c)| key(c)).expect("never empty");
        self.last = slot(c.actor);
        Ok(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::strategy::RandomWalk;
    use mmsim_traces::Actor;

    #[test]
    fn round_robin_after_the_bound_and_the_name_parses_back() {
        let live = Liveness { after: 5, limit: 40 };
        let mut f = Fair::new(Box::new(RandomWalk::new(3)), live);
        assert_eq!(Liveness::parse(&f.name()), Some(Ok(live)));
        assert_eq!(Liveness::parse("urw"), None);
        let all: Vec<Choice> =
            (0..3).map(|c| Choice { actor: Actor::Cpu(c), op: 0, op_step: 0 }).collect();
        for st in 0..5 {
            f.choose(st, &all).unwrap();
        }
        let picks: Vec<usize> = (0..7).map(|st| f.choose(st, &all).unwrap()).collect();
        let start = picks[0];
        let want: Vec<usize> = (0..7).map(|i| (start + i) % 3).collect();
        assert_eq!(picks, want);
        // a blocked actor is skipped, then the rotation goes on
        let two = [all[0], all[2]];
        let p = f.choose(0, &two).unwrap();
        assert!(p < 2);
    }
}
