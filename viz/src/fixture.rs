//! Hand-built traces for the tests, modelled on the seed race (kernel-notes §10.2):
//! GUP on a shared PMD table while another thread unshares it and the other process frees it.
//!
//! Owns test data only; compiled for tests.

use mmsim_traces::{
    Access, Actor, CpuInfo, Event, Header, Object, Report, ReportKind, Site, Trace, Verdict,
    SCHEMA_VERSION,
};

/// The shared PMD table.
pub const SHARED: u64 = 0x1003;
/// mm B's PUD table (touched, never freed).
pub const OTHER: u64 = 0x2000;

fn header(cpus: Vec<CpuInfo>) -> Header {
    Header {
        mmsim_version: "0.1.0".into(),
        schema_version: SCHEMA_VERSION,
        scenario: "gup-vs-unshare".into(),
        scenario_source: "Scenario(name: \"gup-vs-unshare\")".into(),
        arch: "x86_64".into(),
        profile: "v6.1".into(),
        switches: vec![("hugetlb_walk_lock".into(), "mmap_lock".into())],
        strategy: "random".into(),
        seed: 7,
        cpus,
    }
}

struct Builder {
    events: Vec<Event>,
}

impl Builder {
    fn ev(
        &mut self,
        actor: Actor,
        op: u16,
        func: &str,
        object: Object,
        access: Access,
        detail: &str,
    ) -> u64 {
        let step = self.events.len() as u64;
        self.events.push(Event {
            step,
            time: step * 10,
            actor,
            op,
            op_step: 0,
            func: func.into(),
            object,
            access,
            detail: detail.into(),
            value: None,
        });
        step
    }
}

fn site(step: u64, actor: Actor, op: &str, func: &str) -> Site {
    Site { step, actor, op: op.into(), func: func.into() }
}

/// The seed race, 22 steps, ending in a use-after-free of the ptlock of table 0x1003.
pub fn seed_race() -> Trace {
    use Access::*;
    use Actor::{Cpu, Irq, Rcu, Setup};
    let mut b = Builder { events: Vec::new() };
    let alloc = b.ev(Setup, 0, "huge_pte_alloc", Object::Table(SHARED), Alloc, "pmd table for mm0");
    b.ev(Setup, 0, "huge_pmd_share", Object::Table(SHARED), Share, "mm1 shares");
    b.ev(Setup, 0, "__pud_alloc", Object::Table(OTHER), Alloc, "pud table for mm1");
    // CPU0: GUP under mmap_lock read only (buggy before v6.3).
    b.ev(Cpu(0), 0, "follow_hugetlb_page", Object::MmapLock(0), LockRead, "mmap_read_lock");
    b.ev(
        Cpu(0),
        0,
        "huge_pte_offset",
        Object::Entry { pfn: SHARED, index: 0 },
        Read,
        "pmd 0x40000000",
    );
    // CPU1: MADV_DONTNEED unshares mm0.
    b.ev(Cpu(1), 0, "do_madvise", Object::MmapLock(0), LockRead, "mmap_read_lock");
    b.ev(Cpu(1), 0, "hugetlb_vma_lock_write", Object::VmaLock { mm: 0, vma: 0 }, LockWrite, "");
    b.ev(Cpu(1), 0, "i_mmap_lock_write", Object::IMmapRwsem(0), LockWrite, "");
    b.ev(
        Cpu(1),
        0,
        "huge_pmd_unshare",
        Object::Entry { pfn: 0x1001, index: 1 },
        Write,
        "pud_clear 0x40000000",
    );
    b.ev(Cpu(1), 0, "huge_pmd_unshare", Object::Table(SHARED), Unshare, "pt_share_count 1 -> 0");
    b.ev(Cpu(1), 0, "i_mmap_unlock_write", Object::IMmapRwsem(0), UnlockWrite, "");
    b.ev(Cpu(1), 0, "hugetlb_vma_unlock_write", Object::VmaLock { mm: 0, vma: 0 }, UnlockWrite, "");
    b.ev(Cpu(1), 0, "do_madvise", Object::MmapLock(0), UnlockRead, "mmap_read_unlock");
    // CPU2: munmap in mm1 frees the table.
    b.ev(Cpu(2), 0, "do_vmi_munmap", Object::MmapLock(1), LockWrite, "mmap_write_lock");
    b.ev(Cpu(2), 0, "free_pgtables", Object::Entry { pfn: OTHER, index: 1 }, Write, "pud_clear");
    let freed =
        b.ev(Cpu(2), 0, "pagetable_pmd_dtor", Object::PtLock(SHARED), LockFree, "ptlock_free");
    let queued = b.ev(Cpu(2), 0, "tlb_remove_table", Object::Table(SHARED), QueueFree, "call_rcu");
    b.ev(Cpu(2), 0, "tlb_remove_table_sync_one", Object::Cpu(1), IpiSend, "");
    b.ev(Irq(1), 0, "tlb_remove_table_smp_sync", Object::Cpu(1), IpiHandle, "");
    b.ev(Cpu(2), 0, "tlb_remove_table_sync_one", Object::Cpu(1), IpiWait, "");
    b.ev(Rcu, 0, "rcu_do_batch", Object::Rcu, GracePeriod, "");
    b.ev(Rcu, 0, "tlb_remove_table_rcu", Object::Table(SHARED), Free, "");
    b.ev(Cpu(2), 0, "do_vmi_munmap", Object::MmapLock(1), UnlockWrite, "mmap_write_unlock");
    // CPU0 wakes up and takes the dead lock.
    let at = b.ev(Cpu(0), 0, "huge_pte_lock", Object::PtLock(SHARED), LockWrite, "spin_lock");
    let gup = "GupSlow(0x40000000)";
    let report = Report {
        kind: ReportKind::UseAfterFreePtlock,
        title: "BUG: KASAN: use-after-free in huge_pte_lock".into(),
        object: Some(Object::PtLock(SHARED)),
        at: site(at, Cpu(0), gup, "huge_pte_lock"),
        allocated: Some(site(alloc, Setup, "Touch(0x40000000)", "huge_pte_alloc")),
        queued: Some(site(queued, Cpu(2), "Munmap(0x40000000, 0x40000000)", "tlb_remove_table")),
        freed: Some(site(freed, Cpu(2), "Munmap(0x40000000, 0x40000000)", "pagetable_pmd_dtor")),
        unlinked: None,
        held: vec!["mmap_lock(mm0) R".into()],
        text: "BUG: KASAN: use-after-free in huge_pte_lock\n...".into(),
    };
    Trace {
        header: header(vec![
            CpuInfo { name: "CPU0".into(), mm: "A".into(), ops: vec![gup.into()] },
            CpuInfo {
                name: "CPU1".into(),
                mm: "A".into(),
                ops: vec!["MadviseDontneed(0x40000000, 0x200000)".into()],
            },
            CpuInfo {
                name: "CPU2".into(),
                mm: "B".into(),
                ops: vec!["Munmap(0x40000000, 0x40000000)".into()],
            },
        ]),
        decisions: Vec::new(),
        events: b.events,
        verdict: Verdict::Violation,
        reports: vec![report],
    }
}

/// 3 CPUs x `steps` steps of busy work over several tables, for layout-size checks.
pub fn busy(steps: u64) -> Trace {
    let mut t = seed_race();
    let base = t.events.len() as u64;
    let mut b = Builder { events: std::mem::take(&mut t.events) };
    for i in 0..steps {
        let cpu = (i % 3) as u8;
        let pfn = 0x3000 + (i / 40);
        let (obj, acc, func) = match i % 7 {
            0 => (Object::MmapLock(cpu), Access::LockRead, "mmap_read_lock"),
            3 => (Object::MmapLock(cpu), Access::UnlockRead, "mmap_read_unlock"),
            1 if i % 40 < 3 => (Object::Table(pfn), Access::Alloc, "pagetable_alloc"),
            _ => (Object::Entry { pfn, index: (i % 512) as u16 }, Access::Read, "hugetlb_walk"),
        };
        b.ev(Actor::Cpu(cpu), 0, func, obj, acc, "");
    }
    t.events = b.events;
    assert_eq!(t.events.len() as u64, base + steps);
    t
}

/// The seed race followed by `n` quiet steps (CPU2 reading entries of mm B's PUD table).
pub fn with_quiet_loop(n: u64) -> Trace {
    let mut t = seed_race();
    let mut b = Builder { events: std::mem::take(&mut t.events) };
    for i in 0..n {
        let index = (i % 512) as u16;
        b.ev(
            Actor::Cpu(2),
            1,
            "free_pgd_range",
            Object::Entry { pfn: OTHER, index },
            Access::Read,
            "",
        );
    }
    b.ev(Actor::Cpu(2), 1, "free_pgd_range", Object::Table(OTHER), Access::Free, "");
    t.events = b.events;
    t
}
