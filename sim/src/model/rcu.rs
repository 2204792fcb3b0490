//! RCU: callbacks queued by `call_rcu()` and the grace periods that release them.
//!
//! A callback records, for every CPU in a read-side section when it was queued, that CPU's
//! quiescent-state count; it becomes ready once each of them has moved on. Readers that start
//! later do not hold it back, as in the real implementation. The grace period's end is a
//! transition of the RCU actor, which the scheduler chooses like any other.

use super::cpu::{Cpu, MAX_CPUS};
use super::fingerprint::Keyed;
use super::mem::SiteRef;

/// What a callback does when invoked.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Callback {
    /// `tlb_remove_table_rcu()`: free these page-table pages (`__tlb_remove_table()` each).
    FreeTables(Vec<u64>),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RcuCallback {
    /// CPUs that were readers at `call_rcu()` time.
    pub wait_mask: u8,
    pub qs_snapshot: [u32; MAX_CPUS],
    pub what: Callback,
    pub queued: SiteRef,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Rcu {
    pub callbacks: Vec<RcuCallback>,
}

impl Rcu {
    pub fn call_rcu(&mut self, cpus: &[Keyed<Cpu>], what: Callback, queued: SiteRef) {
        let mut wait_mask = 0u8;
        let mut qs_snapshot = [0u32; MAX_CPUS];
        for (i, c) in cpus.iter().enumerate() {
            qs_snapshot[i] = c.qs;
            if c.in_rcu_reader() {
                wait_mask |= 1 << i;
            }
        }
        self.callbacks.push(RcuCallback { wait_mask, qs_snapshot, what, queued });
    }

    /// Index of the oldest callback whose grace period has elapsed.
    pub fn ready(&self, cpus: &[Keyed<Cpu>]) -> Option<usize> {
        self.callbacks.iter().position(|cb| {
            (0..cpus.len()).all(|i| cb.wait_mask & (1 << i) == 0 || cpus[i].qs > cb.qs_snapshot[i])
        })
    }
}
