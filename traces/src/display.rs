//! Short, stable human names for trace values: [`Actor`] (`CPU0`, `CPU0.irq`, `RCU`), [`Object`]
//! (`entry(pfn 0x1a3)[5]`), [`Access`] (`lock_write`), [`Decision`], [`Verdict`], [`ReportKind`]
//! and the one-line [`Event::summary`]. The CLI, replay messages and `mmsim-viz` all print these,
//! so their text is part of the interface: change it only deliberately.

use std::fmt;

use crate::schema::{Access, Actor, Decision, Event, Object, ReportKind, Verdict};

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Actor::Cpu(n) => write!(f, "CPU{n}"),
            Actor::Irq(n) => write!(f, "CPU{n}.irq"),
            Actor::Rcu => f.write_str("RCU"),
            Actor::Setup => f.write_str("setup"),
            Actor::Teardown => f.write_str("teardown"),
        }
    }
}

impl fmt::Display for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Object::MmapLock(mm) => write!(f, "mmap_lock(mm{mm})"),
            Object::PageTableLock(mm) => write!(f, "page_table_lock(mm{mm})"),
            Object::VmaLock { mm, vma } => write!(f, "vma_lock(mm{mm} vma{vma})"),
            Object::VmLock { mm, vma } => write!(f, "vm_lock(mm{mm} vma{vma})"),
            Object::IMmapRwsem(file) => write!(f, "i_mmap_rwsem(file{file})"),
            Object::FaultMutex(hash) => write!(f, "fault_mutex[{hash}]"),
            Object::PtLock(pfn) => write!(f, "ptlock(pfn {pfn:#x})"),
            Object::Table(pfn) => write!(f, "table(pfn {pfn:#x})"),
            Object::Entry { pfn, index } => write!(f, "entry(pfn {pfn:#x})[{index}]"),
            Object::Page(pfn) => write!(f, "page(pfn {pfn:#x})"),
            Object::Cpu(n) => write!(f, "cpu{n}"),
            Object::Tlb(n) => write!(f, "tlb(cpu{n})"),
            Object::Rcu => f.write_str("rcu"),
            Object::Vmas(mm) => write!(f, "vmas(mm{mm})"),
        }
    }
}

impl Access {
    /// Every access kind, in declaration order.
    pub const ALL: [Access; 22] = [
        Access::Read,
        Access::Write,
        Access::LockRead,
        Access::UnlockRead,
        Access::LockWrite,
        Access::UnlockWrite,
        Access::Alloc,
        Access::Share,
        Access::Unshare,
        Access::LockFree,
        Access::QueueFree,
        Access::Free,
        Access::IrqDisable,
        Access::IrqEnable,
        Access::RcuReadLock,
        Access::RcuReadUnlock,
        Access::GracePeriod,
        Access::IpiSend,
        Access::IpiHandle,
        Access::IpiWait,
        Access::TlbFlush,
        Access::Local,
    ];

    /// The snake_case name (`lock_write`), as [`Display`](fmt::Display) prints it.
    pub const fn name(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
            Access::LockRead => "lock_read",
            Access::UnlockRead => "unlock_read",
            Access::LockWrite => "lock_write",
            Access::UnlockWrite => "unlock_write",
            Access::Alloc => "alloc",
            Access::Share => "share",
            Access::Unshare => "unshare",
            Access::LockFree => "lock_free",
            Access::QueueFree => "queue_free",
            Access::Free => "free",
            Access::IrqDisable => "irq_disable",
            Access::IrqEnable => "irq_enable",
            Access::RcuReadLock => "rcu_read_lock",
            Access::RcuReadUnlock => "rcu_read_unlock",
            Access::GracePeriod => "grace_period",
            Access::IpiSend => "ipi_send",
            Access::IpiHandle => "ipi_handle",
            Access::IpiWait => "ipi_wait",
            Access::TlbFlush => "tlb_flush",
            Access::Local => "local",
        }
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `CPU1 op 0 step 3`.
impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} op {} step {}", self.actor, self.op, self.op_step)
    }
}

impl Verdict {
    /// `clean`, `violation`, `step_limit`.
    pub const fn name(self) -> &'static str {
        match self {
            Verdict::Clean => "clean",
            Verdict::Violation => "violation",
            Verdict::StepLimit => "step_limit",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl ReportKind {
    /// The snake_case name (`use_after_free_table`).
    pub const fn name(self) -> &'static str {
        match self {
            ReportKind::UseAfterFreeTable => "use_after_free_table",
            ReportKind::UseAfterFreePtlock => "use_after_free_ptlock",
            ReportKind::WrongMm => "wrong_mm",
            ReportKind::LockContract => "lock_contract",
            ReportKind::LockRule => "lock_rule",
            ReportKind::ShareCount => "share_count",
            ReportKind::Leak => "leak",
            ReportKind::Deadlock => "deadlock",
            ReportKind::StaleTlb => "stale_tlb",
            ReportKind::RangeRevisit => "range_revisit",
            ReportKind::SplitShared => "split_shared",
            ReportKind::Starvation => "starvation",
            ReportKind::StaleWalk => "stale_walk",
            ReportKind::CowViolation => "cow_violation",
        }
    }
}

impl fmt::Display for ReportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Event {
    /// One line without the step number or time:
    /// `CPU1 op 0 step 3 huge_pmd_unshare entry(pfn 0x1a3)[5] write 'pud_clear 0x40000000'`
    /// (the quoted detail is left out when empty).
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{} op {} step {} {} {} {}",
            self.actor, self.op, self.op_step, self.func, self.object, self.access
        );
        if !self.detail.is_empty() {
            s.push_str(" '");
            s.push_str(&self.detail);
            s.push('\'');
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actor_names() {
        assert_eq!(Actor::Cpu(0).to_string(), "CPU0");
        assert_eq!(Actor::Irq(3).to_string(), "CPU3.irq");
        assert_eq!(Actor::Rcu.to_string(), "RCU");
        assert_eq!(Actor::Setup.to_string(), "setup");
        assert_eq!(Actor::Teardown.to_string(), "teardown");
    }

    #[test]
    fn object_names() {
        let cases = [
            (Object::MmapLock(0), "mmap_lock(mm0)"),
            (Object::PageTableLock(1), "page_table_lock(mm1)"),
            (Object::VmaLock { mm: 0, vma: 1 }, "vma_lock(mm0 vma1)"),
            (Object::IMmapRwsem(0), "i_mmap_rwsem(file0)"),
            (Object::FaultMutex(3), "fault_mutex[3]"),
            (Object::PtLock(0x1a3), "ptlock(pfn 0x1a3)"),
            (Object::Table(0x1a3), "table(pfn 0x1a3)"),
            (Object::Entry { pfn: 0x1a3, index: 5 }, "entry(pfn 0x1a3)[5]"),
            (Object::Page(0x40000), "page(pfn 0x40000)"),
            (Object::Cpu(0), "cpu0"),
            (Object::Tlb(2), "tlb(cpu2)"),
            (Object::Rcu, "rcu"),
            (Object::Vmas(0), "vmas(mm0)"),
        ];
        for (object, name) in cases {
            assert_eq!(object.to_string(), name);
        }
    }

    #[test]
    fn access_names_are_distinct_snake_case() {
        let names: Vec<&str> = Access::ALL.iter().map(|a| a.name()).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len(), "duplicate names: {names:?}");
        for (a, n) in Access::ALL.iter().zip(&names) {
            assert!(n.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{n}");
            // snake_case of the variant's Debug name.
            let debug = format!("{a:?}");
            let mut snake = String::new();
            for (i, c) in debug.chars().enumerate() {
                if c.is_ascii_uppercase() && i > 0 {
                    snake.push('_');
                }
                snake.push(c.to_ascii_lowercase());
            }
            assert_eq!(&snake, n);
            assert_eq!(a.to_string(), *n);
        }
        assert_eq!(Access::LockWrite.to_string(), "lock_write");
    }

    #[test]
    fn summary_line() {
        let ev = Event {
            step: 42,
            time: 7,
            actor: Actor::Cpu(1),
            op: 0,
            op_step: 3,
            func: "huge_pmd_unshare".to_owned(),
            object: Object::Entry { pfn: 0x1a3, index: 5 },
            access: Access::Write,
            detail: "pud_clear 0x40000000".to_owned(),
            value: None,
        };
        assert_eq!(
            ev.summary(),
            "CPU1 op 0 step 3 huge_pmd_unshare entry(pfn 0x1a3)[5] write 'pud_clear 0x40000000'"
        );
        let bare = Event { detail: String::new(), ..ev };
        assert_eq!(bare.summary(), "CPU1 op 0 step 3 huge_pmd_unshare entry(pfn 0x1a3)[5] write");
    }

    #[test]
    fn decision_verdict_kind_names() {
        let d = Decision { actor: Actor::Irq(0), op: 0, op_step: 2 };
        assert_eq!(d.to_string(), "CPU0.irq op 0 step 2");
        assert_eq!(Verdict::StepLimit.to_string(), "step_limit");
        assert_eq!(ReportKind::UseAfterFreePtlock.to_string(), "use_after_free_ptlock");
    }
}
