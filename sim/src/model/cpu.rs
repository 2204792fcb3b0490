//! Per-CPU state: interrupt masking, RCU read-side nesting, the IPI mailbox and the TLB.

use super::cow::Shared;
use super::tlb::Tlb;

/// Upper bound on simulated CPUs (masks are `u8`).
pub const MAX_CPUS: usize = 8;

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Cpu {
    /// `local_irq_disable()` nesting; > 0 means IRQs are off.
    pub irqs_off: u8,
    /// `rcu_read_lock()` nesting.
    pub rcu_nesting: u8,
    /// Quiescent states passed: bumped whenever the CPU leaves its last read-side section
    /// (RCU read lock or IRQ-off region). An RCU callback waits for this to move.
    pub qs: u32,
    /// An IPI is pending on this CPU from the CPUs in this mask.
    pub ipi_from: u8,
    /// CPUs this CPU sent an IPI to and still waits on.
    pub ipi_waiting: u8,
    /// mms whose TLB entries the pending IPI asks this CPU to flush (bit per mm).
    pub ipi_flush: u8,
    /// The pending flush keeps walk-cache entries (a leaf-only invalidation).
    pub ipi_flush_leaf_only: bool,
    /// Shared between copies of the state until filled or flushed.
    pub tlb: Shared<Tlb>,
}

impl Cpu {
    /// In an RCU read-side critical section (IRQ-off counts, since the flavours merged).
    pub fn in_rcu_reader(&self) -> bool {
        self.irqs_off > 0 || self.rcu_nesting > 0
    }
}
