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
    /// Whether `choose` always succeeds when one actor is runnable: then the engine may skip
    /// steps of a CPU running alone, calling `choose` for each of them as it would have
    /// (`kernel::skip`). A strategy that can fail (replay) keeps the default.
    fn chooses_the_only_actor(&self) -> bool {
        false
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
