//! `urw`: a uniformly random choice among the runnable actors at every step.

use super::{Choice, Diverged, Strategy};
use crate::engine::rng::Rng;
use mmsim_traces::Actor;

/// Uniformly random among runnable actors at every step.
pub struct RandomWalk {
    rng: Rng,
}

impl RandomWalk {
    pub fn new(seed: u64) -> Self {
        RandomWalk { rng: Rng::new(seed) }
    }
}

impl Strategy for RandomWalk {
    /// One draw per decision, as `choose` makes.
    fn choose_alone(&mut self, _step: u64, _c: Choice, n: u64) {
        for _ in 0..n {
            self.rng.below(1);
        }
    }

    /// One draw per decision, whatever is runnable: a promise only for an actor alone.
    fn keeps_choosing(&self, _actor: Actor, others: &[Actor]) -> u64 {
        if others.is_empty() {
            u64::MAX
        } else {
            0
        }
    }

    fn name(&self) -> String {
        "urw".into()
    }
    fn choose(&mut self, _step: u64, runnable: &[Choice]) -> Result<usize, Diverged> {
        Ok(self.rng.below(runnable.len() as u32) as usize)
    }
}
