//! The trace schema. Changing the meaning or shape of any type here bumps [`SCHEMA_VERSION`].

use serde::{Deserialize, Serialize};

/// Version of this schema. Schema 4 added [`Event::value`]; schema 5 split the stale walk
/// ([`ReportKind::StaleWalk`]) from [`ReportKind::WrongMm`] and added [`Report::unlinked`];
/// schema 6 added [`ReportKind::CowViolation`] (a schema-5 trace has none, and reads as is).
/// A trace of [`OLDEST_READABLE_SCHEMA`] up to this version loads (an older one has no entry
/// values: every `value` is `None`); any other version is refused with both versions named.
pub const SCHEMA_VERSION: u32 = 6;

/// The oldest schema version [`crate::from_ron`] still reads: schema 3, whose events lack
/// [`Event::value`]. It loads as is (header version kept, values `None`); replay compares its
/// events without values, and analyses that need values re-derive them by replaying.
pub const OLDEST_READABLE_SCHEMA: u32 = 3;

/// One recorded execution.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trace {
    pub header: Header,
    /// The scheduler's choices, one per step, in order. Replay re-executes exactly these.
    pub decisions: Vec<Decision>,
    /// What every step did, in order: setup, then the decided steps, then teardown
    /// (`events[i].step == i`).
    pub events: Vec<Event>,
    pub verdict: Verdict,
    pub reports: Vec<Report>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// `CARGO_PKG_VERSION` of the mmsim that wrote the trace.
    pub mmsim_version: String,
    pub schema_version: u32,
    /// Scenario name (`gup-vs-unshare`).
    pub scenario: String,
    /// The scenario's RON source, verbatim: replay re-parses it, so the trace stands alone.
    pub scenario_source: String,
    /// Resolved architecture configuration name (`x86_64`).
    pub arch: String,
    /// Resolved kernel profile name (`v6.1`).
    pub profile: String,
    /// Every profile switch with its resolved value, sorted by name (overrides applied).
    pub switches: Vec<(String, String)>,
    /// Strategy name and parameters (`random`).
    pub strategy: String,
    pub seed: u64,
    /// The simulated actors, indexed by `Actor`.
    pub cpus: Vec<CpuInfo>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuInfo {
    /// `CPU0`, ...
    pub name: String,
    /// Name of the mm (process) this CPU runs in.
    pub mm: String,
    /// The operations this CPU runs, in order, as written (`GupSlow(0x40000000)`).
    pub ops: Vec<String>,
}

/// Who takes a step. Interrupt handling and RCU grace-period progress are actors too, so the
/// scheduler owns every source of nondeterminism.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Actor {
    /// The task running on CPU n.
    Cpu(u8),
    /// CPU n taking a pending interrupt (IPI).
    Irq(u8),
    /// The RCU grace-period machinery.
    Rcu,
    /// The scenario's setup phase, run to completion before any decision is taken.
    Setup,
    /// Teardown after the concurrent phase (`exit_mmap` of every mm), run to completion.
    Teardown,
}

/// One scheduling choice, named by position in the program (not by raw step number) so that a
/// trace survives unrelated model changes and replay can say exactly where it diverged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Decision {
    pub actor: Actor,
    /// Index of the operation in that CPU's list (0 for Irq/Rcu).
    pub op: u16,
    /// Step number within that operation (counted from 0).
    pub op_step: u32,
}

/// One simulated object that steps access. Identities are stable small numbers, never addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Object {
    /// `mm->mmap_lock` of mm n.
    MmapLock(u8),
    /// `mm->page_table_lock` of mm n.
    PageTableLock(u8),
    /// Hugetlb vma lock (`vm_private_data->rw_sema`) of VMA `vma` of mm `mm`.
    VmaLock { mm: u8, vma: u16 },
    /// The per-VMA lock (`vma->vm_lock`, CONFIG_PER_VMA_LOCK) of VMA `vma` of mm `mm`
    /// (schema 5).
    VmLock { mm: u8, vma: u16 },
    /// `mapping->i_mmap_rwsem` of file n.
    IMmapRwsem(u8),
    /// `hugetlb_fault_mutex_table[hash]`.
    FaultMutex(u16),
    /// The split ptlock living in the `struct ptdesc` of page-table page `pfn`.
    PtLock(u64),
    /// Page-table page `pfn` as a whole (its lifetime, refcount, share count).
    Table(u64),
    /// Entry `index` of page-table page `pfn`.
    Entry { pfn: u64, index: u16 },
    /// A data page (hugetlb folio) by head pfn.
    Page(u64),
    /// CPU n's interrupt state / its IPI mailbox.
    Cpu(u8),
    /// CPU n's TLB.
    Tlb(u8),
    /// RCU: read sections, callbacks, grace periods.
    Rcu,
    /// An mm's VMA tree (`mm->mm_mt`).
    Vmas(u8),
}

/// What a step does to its object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Access {
    Read,
    Write,
    /// rwsem `down_read` / `up_read`.
    LockRead,
    UnlockRead,
    /// rwsem `down_write`, mutex or spinlock acquire, and their release.
    LockWrite,
    UnlockWrite,
    /// Page-table page allocated (`pagetable_alloc` + ctor), or data page allocated.
    Alloc,
    /// Sharer added (`get_page` / `ptdesc_pmd_pts_inc`).
    Share,
    /// Sharer dropped (`put_page` / `ptdesc_pmd_pts_dec`).
    Unshare,
    /// Split ptlock destroyed (`pagetable_pmd_dtor` -> `ptlock_free`).
    LockFree,
    /// Free queued (`tlb_remove_table`, `call_rcu`) but not done.
    QueueFree,
    /// Page returned to the allocator.
    Free,
    IrqDisable,
    IrqEnable,
    RcuReadLock,
    RcuReadUnlock,
    /// An RCU grace period ended and its callbacks ran.
    GracePeriod,
    IpiSend,
    IpiHandle,
    IpiWait,
    TlbFlush,
    /// A step that touches only the actor's own state.
    Local,
}

/// What one step did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub step: u64,
    /// Virtual time (ticks) when the step ran.
    pub time: u64,
    pub actor: Actor,
    pub op: u16,
    pub op_step: u32,
    /// The kernel function the step belongs to (`huge_pmd_unshare`).
    pub func: String,
    pub object: Object,
    pub access: Access,
    /// Human detail: entry values, addresses, counts (`pud_clear 0x40000000`).
    pub detail: String,
    /// For an entry read or write (`object: Entry`, `access: Read | Write`): the entry value
    /// read or written, for analyses that must not parse `detail` (schema 4; `None` on every
    /// other event and in schema-3 traces, and then not written).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<EntryValue>,
}

/// The raw value of a page-table entry and its level (0 = the top level, as
/// `mmsim_arch` numbers them), so that it decodes with the trace's architecture (schema 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EntryValue {
    pub level: u8,
    pub raw: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    /// All CPUs finished and no checker fired.
    Clean,
    /// A checker fired; see `reports`.
    Violation,
    /// The step budget ran out first.
    StepLimit,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ReportKind {
    /// KASAN-style: a freed page-table page was accessed.
    UseAfterFreeTable,
    /// KASAN-style: a destroyed split ptlock was taken.
    UseAfterFreePtlock,
    /// A walk through a table that no longer belongs to the walker's mm obtained a translation
    /// its mm does not map (another file or offset, more permission, a lower-level table of
    /// another mm), or wrote into such a table.
    WrongMm,
    /// lockdep-style: `hugetlb_walk()` without the vma lock or `i_mmap_rwsem`.
    LockContract,
    /// lockdep-style: sleeping lock with IRQs off or in an RCU read section, or order inversion.
    LockRule,
    /// Share count / refcount disagrees with the PUD entries pointing at a table.
    ShareCount,
    /// Page-table pages left allocated at teardown.
    Leak,
    /// Nothing runnable but work left.
    Deadlock,
    /// A TLB translation used after its entry changed and the flush claimed completion.
    StaleTlb,
    /// An unsharing loop revisits the PUD range it just unshared instead of moving past it
    /// (schema 2).
    RangeRevisit,
    /// After a VMA split, a VMA that does not cover its whole PUD range maps a shared PMD
    /// table (kernel-notes §9.7; schema 3).
    SplitShared,
    /// Hung-task style: in the liveness phase (fair scheduling after an adversarial bound) a
    /// CPU stayed blocked while the others completed more operations than the limit; the text
    /// gives the blocking chain (schema 3).
    Starvation,
    /// A read through a table that no longer belongs to the walker's mm, which obtained what the
    /// walker's own VMA maps there (same file page, same or fewer permissions, or nothing): the
    /// obsolete-but-safe read `hugetlb_walk()`'s rule 2.3 allows (kernel-notes §4.1; schema 5).
    StaleWalk,
    /// A store through a private (copy-on-write) mapping into a page that is not that
    /// mapping's own: one another process maps too (after the `fork()` that shared it
    /// returned), or a file's page cache page. The other process sees the write: a missing
    /// write-protect at fork, or a TLB entry still writable after it (schema 6).
    CowViolation,
}

/// How bad a report is, for choosing which run or report to show first. Memory-safety bugs
/// (KASAN-style, wrong-mm, stale TLB) outrank lock and accounting bugs, which outrank warnings
/// about wasted work (`RangeRevisit`, a slowdown with no safety effect) or an obsolete read the
/// kernel's rules allow (`StaleWalk`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    Warning,
    Bug,
    MemorySafety,
}

impl Severity {
    /// Every severity, lowest first.
    pub const ALL: [Severity; 3] = [Severity::Warning, Severity::Bug, Severity::MemorySafety];

    /// The command-line name (`memory-safety`).
    pub const fn name(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Bug => "bug",
            Severity::MemorySafety => "memory-safety",
        }
    }

    /// The worst severity among `reports`, if any.
    pub fn worst(reports: &[Report]) -> Option<Severity> {
        reports.iter().map(|r| r.kind.severity()).max()
    }
}

impl std::str::FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Severity, String> {
        Severity::ALL
            .into_iter()
            .find(|v| v.name() == s)
            .ok_or_else(|| format!("unknown severity `{s}` (one of: warning, bug, memory-safety)"))
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl ReportKind {
    pub fn severity(self) -> Severity {
        match self {
            ReportKind::UseAfterFreeTable
            | ReportKind::UseAfterFreePtlock
            | ReportKind::WrongMm
            | ReportKind::StaleTlb
            | ReportKind::CowViolation => Severity::MemorySafety,
            ReportKind::LockContract
            | ReportKind::LockRule
            | ReportKind::ShareCount
            | ReportKind::Leak
            | ReportKind::Deadlock
            | ReportKind::SplitShared
            | ReportKind::Starvation => Severity::Bug,
            ReportKind::RangeRevisit | ReportKind::StaleWalk => Severity::Warning,
        }
    }
}

/// A step named for a report's provenance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Site {
    pub step: u64,
    pub actor: Actor,
    /// The operation as written (`Munmap(0x40000000, 0x40000000)`).
    pub op: String,
    pub func: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub kind: ReportKind,
    /// One-line header in the dialect of the kernel tool it imitates
    /// (`BUG: KASAN: use-after-free in huge_pte_lock`).
    pub title: String,
    pub object: Option<Object>,
    /// The offending access.
    pub at: Site,
    /// Where the object was allocated, queued for freeing, and freed (KASAN histories).
    pub allocated: Option<Site>,
    pub queued: Option<Site>,
    pub freed: Option<Site>,
    /// Where the table stopped being reachable from the walker's mm (`pud_clear()` of the
    /// unshare), for wrong-mm and stale-walk reports (schema 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unlinked: Option<Site>,
    /// Locks held by the offending actor (lockdep style).
    pub held: Vec<String>,
    /// The full human-readable report.
    pub text: String,
}
