//! First-runnable: the serial phases, and a deterministic baseline.

use super::{Choice, Diverged, Strategy};

/// Always the first runnable actor (the serial phases, and a deterministic baseline).
pub struct FirstRunnable;

impl Strategy for FirstRunnable {
    fn name(&self) -> String {
        "first".into()
    }
    fn choose(&mut self, _step: u64, _runnable: &[Choice]) -> Result<usize, Diverged> {
        Ok(0)
    }
}
