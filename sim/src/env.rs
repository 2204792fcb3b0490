//! `Env`: everything fixed for one run (arch configuration, resolved profile switches, the
//! resolved scenario). Shared read-only by all steps; never part of the cloned state.

use crate::profile::Switches;
use crate::scenario::{Op, Resolved};
use mmsim_arch::{Arch, ArchConfig, TableFree, TlbFlush};

#[derive(Clone, Debug)]
pub struct Env {
    pub arch: &'static dyn Arch,
    pub cfg: &'static ArchConfig,
    pub profile: &'static str,
    pub sw: Switches,
    pub table_free: TableFree,
    /// The remote TLB-flush mechanism: the configuration's, or `--set tlb_flush`.
    pub tlb_flush: TlbFlush,
    pub scenario: Resolved,
    /// CPU slot the Setup/Teardown actor runs on (one past the scenario's CPUs).
    pub serial_cpu: u8,
    /// Deliberate kernel bugs for the tests that prove a checker catches them; never set by a
    /// scenario, profile, switch or flag (only a test assigns `Prepared::env.mutants`).
    pub mutants: Mutants,
}

/// Kernel bugs no profile has: each is a line of the modelled kernel left out, so that a test
/// can show the checker that should catch it does. All off in every real run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mutants {
    /// `copy_hugetlb_page_range()` of a COW mapping without `huge_ptep_set_wrprotect()` and
    /// `huge_pte_wrprotect()`: parent and child keep writable entries to one page.
    pub fork_no_wrprotect: bool,
    /// `dup_mmap()` without `flush_tlb_mm(oldmm)`.
    pub fork_no_flush: bool,
    /// `dup_mmap()`'s `flush_tlb_mm(oldmm)` flushes only the forking CPU yet claims
    /// completion (a lost flush IPI).
    pub fork_flush_local_only: bool,
}

impl Env {
    pub fn mm_name(&self, mm: u8) -> &str {
        self.scenario.mm_names.get(mm as usize).map_or("?", |s| s.as_str())
    }
    pub fn ncpus(&self) -> usize {
        self.scenario.cpus.len()
    }
    /// The operation an actor runs (for reports); `op` indexes the CPU's list or the setup list.
    pub fn op(&self, actor: mmsim_traces::Actor, op: u16) -> Option<Op> {
        use mmsim_traces::Actor::*;
        match actor {
            Cpu(c) => self.scenario.cpus.get(c as usize)?.1.get(op as usize).copied(),
            Setup => self.scenario.setup.get(op as usize).map(|x| x.1),
            Teardown => Some(Op::ExitMmap),
            Irq(_) | Rcu => None,
        }
    }
    /// The table-free policy of `cfg` under the profile switches `sw`: `--set rcu_table_free`
    /// wins; else x86 configurations that free after the flush use RCU from v6.15
    /// (`x86_rcu_table_free`); riscv64 follows `riscv_table_free` (none before v6.8, then
    /// RCU except in IPI-flush mode, RCU always from Qi Zheng's 2025 series); else the
    /// configuration's default.
    pub fn table_free_for(cfg: &ArchConfig, sw: &Switches) -> TableFree {
        match sw.rcu_table_free {
            Some(true) => TableFree::Rcu,
            Some(false) => TableFree::AfterFlush,
            None if sw.x86_rcu_table_free
                && cfg.table_free == TableFree::AfterFlush
                && cfg.format.name().starts_with("x86_64") =>
            {
                TableFree::Rcu
            }
            None if cfg.format.name().starts_with("riscv64") => {
                use crate::profile::RiscvTableFree::*;
                let ipi = Env::tlb_flush_for(cfg, sw).unwrap_or(cfg.tlb_flush) == TlbFlush::Ipi;
                match sw.riscv_table_free {
                    AfterFlush => TableFree::AfterFlush,
                    RcuUnlessIpi if ipi => TableFree::AfterFlush,
                    RcuUnlessIpi | Rcu => TableFree::Rcu,
                }
            }
            None => cfg.table_free,
        }
    }
    /// The TLB-flush mechanism of `cfg` under `sw`: `--set tlb_flush` if the arch has it (an
    /// error naming what the arch can do otherwise), else the configuration's.
    pub fn tlb_flush_for(cfg: &ArchConfig, sw: &Switches) -> Result<TlbFlush, String> {
        match sw.tlb_flush {
            Some(t) => cfg.supports_tlb_flush(t).map(|()| t),
            None => Ok(cfg.tlb_flush),
        }
    }
    pub fn pmd_level(&self) -> usize {
        self.arch.pmd_level()
    }
    /// The level whose entries point at PMD tables. With two levels (arm64-16k-va36,
    /// arm64-64k-va42) the PMD is folded into the PGD and this is the PMD level itself:
    /// `pud_offset()` of the folded levels returns the PGD entry (pgtable-nopud.h).
    pub fn pud_level(&self) -> usize {
        self.arch.pmd_level().saturating_sub(1)
    }
}
