//! Named configurations: a page-table format plus the kernel policies that matter for
//! page-table lifetime (how tables are freed, how remote TLBs are flushed).
//!
//! Follows kernel-notes §6.6 (per-arch `MMU_GATHER_RCU_TABLE_FREE` and flush selection) and §8
//! (TLB flush mechanics); the Kconfig sources are `arch/{x86,arm64,riscv}/Kconfig` and the
//! flush code `arch/x86/mm/tlb.c`, `arch/arm64/include/asm/tlbflush.h`,
//! `arch/riscv/mm/tlbflush.c`. A configuration is a default: scenarios and kernel profiles may
//! override either policy.

use crate::format::Arch;
use crate::{arm64, riscv64, x86_64};

/// An arm64 configuration: RCU table free always, broadcast TLBI (no IPIs).
macro_rules! arm {
    ($name:literal, $format:expr, $doc:literal $(,)?) => {
        ArchConfig {
            name: $name,
            format: $format,
            table_free: TableFree::Rcu,
            tlb_flush: TlbFlush::Broadcast,
            doc: concat!($doc, ": RCU table free, broadcast TLBI ..IS (no IPIs)"),
        }
    };
}

/// A riscv64 configuration from v6.8 (`MMU_GATHER_RCU_TABLE_FREE` for SMP && MMU).
macro_rules! riscv {
    ($name:literal, $format:expr, Ipi, $doc:literal) => {
        ArchConfig {
            name: $name,
            format: $format,
            table_free: TableFree::Rcu,
            tlb_flush: TlbFlush::Ipi,
            doc: concat!(
                $doc,
                ", IPI remote flush (S-mode IPIs, serialise with IRQ-off walkers): RCU table \
                 free as since 2025 (from v6.8 until then, this mode freed tables after the flush)"
            ),
        }
    };
    ($name:literal, $format:expr, Sbi, $doc:literal) => {
        ArchConfig {
            name: $name,
            format: $format,
            table_free: TableFree::Rcu,
            tlb_flush: TlbFlush::SbiRfence,
            doc: concat!(
                $doc,
                ", SBI remote fence (firmware M-mode IPIs that do not wait for IRQ-off harts): \
                 RCU table free (from v6.8)"
            ),
        }
    };
}

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

impl TlbFlush {
    /// Every mechanism, in `--set tlb_flush=` order.
    pub const ALL: [TlbFlush; 4] =
        [TlbFlush::Ipi, TlbFlush::Broadcast, TlbFlush::Paravirt, TlbFlush::SbiRfence];

    /// The `--set tlb_flush=` spelling (`ipi`, `broadcast`, `paravirt`, `sbi`).
    pub const fn key(self) -> &'static str {
        match self {
            TlbFlush::Ipi => "ipi",
            TlbFlush::Broadcast => "broadcast",
            TlbFlush::Paravirt => "paravirt",
            TlbFlush::SbiRfence => "sbi",
        }
    }

    pub fn from_key(key: &str) -> Option<TlbFlush> {
        TlbFlush::ALL.into_iter().find(|t| t.key() == key)
    }
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

static CONFIGS: [ArchConfig; 18] = [
    ArchConfig {
        name: "x86_64",
        format: &x86_64::X86_64_4LEVEL,
        table_free: TableFree::AfterFlush,
        tlb_flush: TlbFlush::Ipi,
        doc: "x86_64 4-level paging, bare metal: tables freed after the IPI flush (before v6.15)",
    },
    ArchConfig {
        name: "x86_64-la57",
        format: &x86_64::X86_64_LA57,
        table_free: TableFree::AfterFlush,
        tlb_flush: TlbFlush::Ipi,
        doc: "x86_64 5-level paging (LA57), bare metal: tables freed after the IPI flush \
              (before v6.15)",
    },
    ArchConfig {
        name: "x86_64-rcu",
        format: &x86_64::X86_64_4LEVEL,
        table_free: TableFree::Rcu,
        tlb_flush: TlbFlush::Ipi,
        doc: "x86_64 4-level, bare metal from v6.15: RCU table free always (a37259732a7d), \
              native IPI flush",
    },
    ArchConfig {
        name: "x86_64-paravirt",
        format: &x86_64::X86_64_4LEVEL,
        table_free: TableFree::Rcu,
        tlb_flush: TlbFlush::Paravirt,
        doc: "x86_64 4-level KVM/Hyper-V/Xen guest: PV flush hypercalls that do not wait for \
              IRQ-off vCPUs, so pv_ops.mmu.tlb_remove_table frees tables by RCU",
    },
    ArchConfig {
        name: "x86_64-invlpgb",
        format: &x86_64::X86_64_4LEVEL,
        table_free: TableFree::Rcu,
        tlb_flush: TlbFlush::Broadcast,
        doc: "x86_64 4-level with AMD INVLPGB broadcast invalidation (v6.15): no IPIs, RCU \
              table free",
    },
    arm!("arm64-4k", &arm64::ARM64_4K_VA48, "arm64 4K granule, VA_BITS=48 (4 levels)"),
    arm!("arm64-4k-va39", &arm64::ARM64_4K_VA39, "arm64 4K granule, VA_BITS=39 (3 levels)"),
    arm!("arm64-16k", &arm64::ARM64_16K_VA47, "arm64 16K granule, VA_BITS=47 (3 levels)"),
    arm!(
        "arm64-16k-va48",
        &arm64::ARM64_16K_VA48,
        "arm64 16K granule, VA_BITS=48 (4 levels, L0 has 2 entries)",
    ),
    arm!(
        "arm64-16k-va36",
        &arm64::ARM64_16K_VA36,
        "arm64 16K granule, VA_BITS=36 (2 levels, PMD folded into the PGD: no PMD sharing)",
    ),
    arm!(
        "arm64-64k",
        &arm64::ARM64_64K_VA48,
        "arm64 64K granule, VA_BITS=48 (3 levels, PUD folded; no PMD sharing), for reference",
    ),
    arm!(
        "arm64-64k-va42",
        &arm64::ARM64_64K_VA42,
        "arm64 64K granule, VA_BITS=42 (2 levels; no PMD sharing), for reference",
    ),
    riscv!("riscv64-sv39", &riscv64::SV39, Ipi, "riscv64 Sv39 (3 levels)"),
    riscv!("riscv64-sv48", &riscv64::SV48, Ipi, "riscv64 Sv48 (4 levels)"),
    riscv!("riscv64-sv57", &riscv64::SV57, Ipi, "riscv64 Sv57 (5 levels)"),
    riscv!("riscv64-sv39-sbi", &riscv64::SV39, Sbi, "riscv64 Sv39 (3 levels)"),
    riscv!("riscv64-sv48-sbi", &riscv64::SV48, Sbi, "riscv64 Sv48 (4 levels)"),
    riscv!("riscv64-sv57-sbi", &riscv64::SV57, Sbi, "riscv64 Sv57 (5 levels)"),
];

impl ArchConfig {
    pub fn by_name(name: &str) -> Option<&'static ArchConfig> {
        configs().iter().find(|c| c.name == name)
    }

    /// A human description: name, doc, policies, then the format's [`Arch::describe`].
    /// Whether this configuration's architecture can flush remote TLBs by `t` (kernel-notes §8):
    /// x86_64 by native IPIs, paravirt hypercalls or INVLPGB broadcast; arm64 only by broadcast
    /// TLBI (its PEs are never interrupted for a flush); riscv64 by S-mode IPIs or an SBI remote
    /// fence. Otherwise the reason.
    pub fn supports_tlb_flush(&self, t: TlbFlush) -> Result<(), String> {
        let arch = self.format.name();
        let ok = if arch.starts_with("x86_64") {
            t != TlbFlush::SbiRfence
        } else if arch.starts_with("arm64") {
            t == TlbFlush::Broadcast
        } else {
            matches!(t, TlbFlush::Ipi | TlbFlush::SbiRfence)
        };
        if ok {
            return Ok(());
        }
        let how = if arch.starts_with("x86_64") {
            "x86_64 flushes by native IPIs (ipi), paravirt hypercalls (paravirt) or INVLPGB (broadcast); SBI is riscv-only"
        } else if arch.starts_with("arm64") {
            "arm64 flushes only by broadcast TLBI ..IS instructions (broadcast): it has no IPI, hypercall or SBI flush"
        } else {
            "riscv64 flushes by S-mode IPIs (ipi) or an SBI remote fence (sbi): it has no broadcast invalidation or paravirt flush"
        };
        Err(format!("{} cannot flush TLBs by `{}`: {how}", self.name, t.key()))
    }

    pub fn describe(&self) -> String {
        format!(
            "{}: {}\n  table free: {:?}, TLB flush: {:?}\n{}",
            self.name,
            self.doc,
            self.table_free,
            self.tlb_flush,
            self.format.describe()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_resolve() {
        for (i, c) in configs().iter().enumerate() {
            assert!(configs()[..i].iter().all(|d| d.name != c.name), "duplicate {}", c.name);
            assert_eq!(ArchConfig::by_name(c.name).unwrap().name, c.name);
            assert!(crate::format_by_name(c.format.name()).is_some(), "{}", c.name);
            assert!(!c.doc.is_empty());
        }
        assert!(ArchConfig::by_name("arm64").is_none());
    }

    #[test]
    fn defaults_follow_the_per_arch_table() {
        let get = |n| {
            let c = ArchConfig::by_name(n).unwrap();
            (c.format.name(), c.table_free, c.tlb_flush)
        };
        use TableFree::*;
        use TlbFlush::*;
        assert_eq!(get("x86_64"), ("x86_64", AfterFlush, Ipi));
        assert_eq!(get("x86_64-la57"), ("x86_64-la57", AfterFlush, Ipi));
        assert_eq!(get("x86_64-rcu"), ("x86_64", Rcu, Ipi));
        assert_eq!(get("x86_64-paravirt"), ("x86_64", Rcu, Paravirt));
        assert_eq!(get("x86_64-invlpgb"), ("x86_64", Rcu, Broadcast));
        assert_eq!(get("arm64-4k"), ("arm64-4k-va48", Rcu, Broadcast));
        assert_eq!(get("arm64-4k-va39"), ("arm64-4k-va39", Rcu, Broadcast));
        assert_eq!(get("arm64-16k"), ("arm64-16k-va47", Rcu, Broadcast));
        assert_eq!(get("arm64-16k-va48"), ("arm64-16k-va48", Rcu, Broadcast));
        assert_eq!(get("arm64-16k-va36"), ("arm64-16k-va36", Rcu, Broadcast));
        assert_eq!(get("arm64-64k"), ("arm64-64k-va48", Rcu, Broadcast));
        assert_eq!(get("arm64-64k-va42"), ("arm64-64k-va42", Rcu, Broadcast));
        assert_eq!(get("riscv64-sv39"), ("riscv64-sv39", Rcu, Ipi));
        assert_eq!(get("riscv64-sv48"), ("riscv64-sv48", Rcu, Ipi));
        assert_eq!(get("riscv64-sv57"), ("riscv64-sv57", Rcu, Ipi));
        assert_eq!(get("riscv64-sv39-sbi"), ("riscv64-sv39", Rcu, SbiRfence));
        assert_eq!(get("riscv64-sv48-sbi"), ("riscv64-sv48", Rcu, SbiRfence));
        assert_eq!(get("riscv64-sv57-sbi"), ("riscv64-sv57", Rcu, SbiRfence));
        assert_eq!(configs().len(), 18);
    }

    #[test]
    fn config_description_names_policies_and_format() {
        let d = ArchConfig::by_name("arm64-16k-va36").unwrap().describe();
        assert!(d.starts_with("arm64-16k-va36: arm64 16K granule, VA_BITS=36"), "{d}");
        assert!(d.contains("table free: Rcu, TLB flush: Broadcast"), "{d}");
        assert!(d.contains("PMD_SIZE 32 MiB (L2 entries), PUD_SIZE 32 MiB"), "{d}");
    }

    #[test]
    fn every_format_has_a_config() {
        for f in crate::formats() {
            assert!(configs().iter().any(|c| c.format.name() == f.name()), "{}", f.name());
        }
    }
}
