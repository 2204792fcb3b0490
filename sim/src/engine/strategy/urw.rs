//! `urw`: a uniformly random choice among the runnable actors at every step.

use super::{Choice, Diverged, Strategy};
use crate::engine::rng::Rng;

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
    fn chooses_the_only_actor(&self) -> bool {
        true
    }

    fn name(&self) -> String {
        "urw".into()
    }
    fn choose(&mut self, _step: u64, runnable: &[Choice]) -> Result<usize, Diverged> {
        Ok(self.rng.below(runnable.len() as u32) as usize)
    }
}
