//! Replay: follow recorded decisions, checking each names a runnable actor at its position.

use super::{Choice, Diverged, Liveness, Strategy};
use mmsim_traces::Decision;

/// Re-execute recorded decisions, checking each names a runnable actor at the recorded position.
pub struct Replay<'a> {
    decisions: &'a [Decision],
    next: usize,
    liveness: Option<Liveness>,
}

impl<'a> Replay<'a> {
    pub fn new(decisions: &'a [Decision]) -> Self {
        Replay { decisions, next: 0, liveness: None }
    }
    /// Check the liveness phase the recorded run had (its strategy name says which).
    pub fn with_liveness(mut self, liveness: Option<Liveness>) -> Self {
        self.liveness = liveness;
        self
    }
    pub fn consumed(&self) -> usize {
        self.next
    }
}

impl Strategy for Replay<'_> {
    fn name(&self) -> String {
        "replay".into()
    }
    fn liveness(&self) -> Option<Liveness> {
        self.liveness
    }
    fn choose(&mut self, step: u64, runnable: &[Choice]) -> Result<usize, Diverged> {
        let Some(d) = self.decisions.get(self.next) else {
            return Err(Diverged {
                step,
                why: format!("the recorded decisions end after {} choices, but the run still has runnable actors", self.next),
            });
        };
        self.next += 1;
        match runnable.iter().position(|c| c.actor == d.actor) {
            Some(i) if runnable[i].op == d.op && runnable[i].op_step == d.op_step => Ok(i),
            Some(i) => Err(Diverged {
                step,
                why: format!(
                    "decision {} chose {:?} at op {} step {}, but it is at op {} step {}",
                    self.next - 1,
                    d.actor,
                    d.op,
                    d.op_step,
                    runnable[i].op,
                    runnable[i].op_step
                ),
            }),
            None => Err(Diverged {
                step,
                why: format!(
                    "decision {} chose {:?}, which is not runnable here",
                    self.next - 1,
                    d.actor
                ),
            }),
        }
    }
}
