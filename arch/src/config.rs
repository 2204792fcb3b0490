//! Named configurations: a page-table format plus the kernel policies that matter for
//! page-table lifetime (how tables are freed, how remote TLBs are flushed).

use crate::format::Arch;

/// How freed page-table pages are protected against lockless walkers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TableFree {
    /// `MMU_GATHER_RCU_TABLE_FREE`: `tlb_remove_table()` batches tables and frees them from an
    /// RCU callback after a grace period (IRQ-off regions count as read sections).
    Rcu,
    /// No RCU table free: `tlb_remove_table()` is `tlb_remove_page()`; the page is freed after
    /// the TLB flush, whose IPIs cannot complete while a walker has IRQs disabled.
    AfterFlush,
}

/// How a CPU invalidates other CPUs' TLBs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TlbFlush {
    /// Synchronous IPI to each CPU in `mm_cpumask`, sender waits for every acknowledgement
    /// (x86 native `native_flush_tlb_multi()`, riscv IPI mode).
    Ipi,
    /// Broadcast invalidate instruction, no interrupt (arm64 TLBI ..IS, x86 INVLPGB).
    Broadcast,
    /// Paravirt hypercall: the hypervisor flushes preempted vCPUs later, no wait for IRQ-off.
    Paravirt,
    /// riscv SBI remote fence (M-mode IPIs the S-mode IRQ mask does not hold off).
    SbiRfence,
}

/// A named architecture configuration as users select it with `--arch`.
#[derive(Clone, Copy, Debug)]
pub struct ArchConfig {
    pub name: &'static str,
    pub format: &'static dyn Arch,
    pub table_free: TableFree,
    pub tlb_flush: TlbFlush,
    pub doc: &'static str,
}

/// The built-in configurations.
pub fn configs() -> &'static [ArchConfig] {
    &CONFIGS
}

static CONFIGS: [ArchConfig; 1] = [ArchConfig {
    name: "x86_64",
    format: &crate::x86_64::X86_64_4LEVEL,
    table_free: TableFree::AfterFlush,
    tlb_flush: TlbFlush::Ipi,
    doc: "x86_64 4-level paging, bare metal: tables freed after the IPI flush (before v6.15)",
}];

impl ArchConfig {
    pub fn by_name(name: &str) -> Option<&'static ArchConfig> {
        configs().iter().find(|c| c.name == name)
    }
}
