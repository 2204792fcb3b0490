//! Scheduler strategies: given the runnable actors, pick the next. One file a strategy: random
//! priorities with per-CPU change points (the default, `random`), PCT proper (`pct`), a uniform
//! random walk (`urw`), replay of recorded decisions, and first-runnable (the serial setup and
//! teardown phases).

mod first;
mod pct;
mod random_priorities;
mod replay;
mod urw;

pub use first::FirstRunnable;
pub use pct::{guarantee as pct_guarantee, Pct};
pub use random_priorities::RandomPriorities;
pub use replay::Replay;
pub use urw::RandomWalk;

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
