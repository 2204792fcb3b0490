//! Kernel profiles: the locking rules of a kernel release as a named set of switches.
//!
//! Profiles are cumulative along the timeline in `kernel-notes.md` §2: each one starts from its
//! predecessor and flips the switches its commits changed. A scenario or `--set name=value`
//! may override single switches; the resolved set is written into every trace.

use std::fmt;

/// Which lock `hugetlb_fault()` holds across `huge_pte_alloc()` and the PTE update.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultLock {
    /// Only `mmap_lock` read and the fault mutex (before v5.7).
    MmapOnly,
    /// `i_mmap_rwsem` read from table allocation to PTE use (v5.7, c0d0381ade79).
    IMmapRead,
    /// The hugetlb vma lock for read (v6.1, 40549ba8f8e0).
    VmaLock,
}

/// How `huge_pmd_share()` protects its scan of the file's `i_mmap` tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ShareScanLock {
    /// `i_mmap_lock_write()` inside `huge_pmd_share()` (before v5.7).
    Write,
    /// The caller (`hugetlb_fault()`) already holds `i_mmap_rwsem` read (v5.7).
    CallerRead,
    /// `i_mmap_lock_read()` inside `huge_pmd_share()` (v6.1).
    Read,
}

/// How sharers of a PMD table are counted (§3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ShareCount {
    /// The table page's refcount: shared iff `page_count() > 1`.
    Refcount,
    /// `ptdesc->pt_share_count` (59d9094df3d7, v6.13).
    PtShareCount,
}

/// When the split PMD ptlock is destroyed (§4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PtlockDies {
    /// In `__pmd_free_tlb()`, before the deferred page free.
    AtPmdFree,
    /// With the table, in `__tlb_remove_table()` (Qi Zheng, v6.14).
    WithTable,
}

/// Which lock `huge_pmd_share()` takes to fill the PUD (§3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SharePudLock {
    /// The shared table's split ptlock (`huge_pte_lock()` on `spte`), v6.1 to v6.4.
    SharedPtlock,
    /// `mm->page_table_lock`, as `__pmd_alloc()` (349d1670008d, v6.5).
    PageTableLock,
}

/// How an unsharing loop advances past the PUD range it just unshared (§3.4, §10.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnshareAddr {
    /// Round up to the PUD boundary, minus one huge page (wrong when `addr` is aligned).
    RoundUp,
    /// `addr |= hugetlb_mask_last_page(h)` (v6.0).
    MaskLastPage,
}

/// Where a VMA split unshares the PMD tables of the PUD range around the split address
/// (kernel-notes §3.5, §9.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SplitUnshare {
    /// Nowhere: `hugetlb_vm_op_split()` only checks huge-page alignment, so a split can leave a
    /// shared table under VMAs that no longer cover its PUD range (before b30c14cd6102).
    Never,
    /// In `->may_split()` = `hugetlb_vm_op_split()` -> `hugetlb_unshare_pmds()` taking the vma
    /// lock and `i_mmap_rwsem` itself, *before* `__split_vma()` write-locks the rmap: a
    /// concurrent `huge_pmd_share()` can re-share the table before the boundary moves
    /// (b30c14cd6102, Jan 2023, to CVE-2025-38084).
    MaySplit,
    /// In `__split_vma()` as `hugetlb_split()`, after `vma_prepare()` took `i_mmap_rwsem` for
    /// write, atomically with the boundary change (081056dc00a2, v6.16).
    InSplit,
}

/// How `copy_hugetlb_page_range()` decides that the child's PMD table is shared (§3.3, §3.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ForkShareTest {
    /// `page_count(virt_to_page(dst_pte)) > 1`: right while sharers are counted in the
    /// refcount, wrong once `pt_share_count` counts them (v6.13 to 2025-07).
    PageCount,
    /// `ptdesc_pmd_is_shared()` (14967a9c7d24, 2025-10).
    PtShareCount,
}

/// How riscv64 frees page tables (kernel-notes §6.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RiscvTableFree {
    /// No `MMU_GATHER_RCU_TABLE_FREE`: tables are freed after the flush (before v6.8).
    AfterFlush,
    /// v6.8 (69be3fb111e7): RCU table free for SMP && MMU, but `tlb_remove_page_ptdesc()`
    /// (free after the flush) when `riscv_use_ipi_for_rfence()`: RCU only in SBI mode.
    RcuUnlessIpi,
    /// `tlb_remove_ptdesc()` always (Qi Zheng, 2025; release unverified, with the v6.14 series).
    Rcu,
}

/// The switches of one kernel profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Switches {
    pub fault_lock: FaultLock,
    pub share_scan_lock: ShareScanLock,
    /// Unsharers take the hugetlb vma lock for write (v6.1, 40549ba8f8e0).
    pub unsharer_vma_lock: bool,
    /// Slow-GUP and page walkers take the hugetlb vma lock for read (v6.3, eefc7fa53608 et al.).
    pub walker_vma_lock: bool,
    /// `hugetlb_walk()` asserts the vma lock or `i_mmap_rwsem` under lockdep (v6.3, 9c67a20704e7).
    pub hugetlb_walk_lockdep: bool,
    pub share_count: ShareCount,
    pub ptlock_dies: PtlockDies,
    pub share_pud_lock: SharePudLock,
    pub unshare_addr: UnshareAddr,
    /// x86 bare metal frees page tables through RCU as well (v6.15, a37259732a7d: `x86/mm: enable
    /// RCU based page table freeing` selects `MMU_GATHER_RCU_TABLE_FREE` unconditionally and drops
    /// the `pv_ops.mmu.tlb_remove_table` hook). Before, native x86 freed tables with
    /// `tlb_remove_page()` after the IPI flush (§6.4, §6.6). Only configurations whose default
    /// is free-after-flush on x86 (`x86_64`, `x86_64-la57`) change.
    pub x86_rcu_table_free: bool,
    /// Override of the configuration's table-free policy (`--set rcu_table_free=true|false`);
    /// `None` (`arch`) keeps the configuration's default for the profile. Lets a run model an
    /// arch without `MMU_GATHER_RCU_TABLE_FREE` (e.g. `arm64-4k --set rcu_table_free=false`).
    pub rcu_table_free: Option<bool>,
    /// `huge_pmd_unshare()` calls `tlb_remove_table_sync_one()` (v6.16, 1013af4f585f).
    pub unshare_sync_one: bool,
    /// Keep freed page-table pages poisoned instead of reusing them (KASAN quarantine).
    pub quarantine: bool,
    /// The flush after an unshare is leaf-only on arm64 (`tlb_flush()` with `last_level =
    /// !freed_tables`), keeping walk-cache entries through the cleared PUD: after the v6.19
    /// unshare rework (8ce720d5bd91) until c2ff4764e03e (2026). Other archs' flushes drop
    /// walk caches either way. Of that rework the model has this and the sync only for tables
    /// left exclusive; the unshare still flushes per VMA, not through the caller's gather.
    pub unshare_flush_leaf_only: bool,
    /// Slow GUP protects its walk with `rcu_read_lock()` instead of the vma lock: the
    /// "walker lock" of Peter Xu's RFC v2 (Nov 2022), dropped before v6.3 because
    /// `__pmd_free_tlb()` freed the ptlock before the RCU-deferred page free (§10.3).
    /// No profile sets it; use `--set` together with `walker_vma_lock=false`.
    pub walker_rcu: bool,
    /// `huge_pmd_unshare()` asserts `i_mmap_rwsem` and the vma lock before checking whether
    /// the table is shared, so a `VM_MAYSHARE` VMA whose vma lock failed to allocate trips the
    /// assertion when hole punch or truncate unmaps it (v6.1 to 2025-07, §10.7).
    pub unshare_asserts_first: bool,
    /// Where a VMA split unshares PMD tables straddling the split address.
    pub split_unshare: SplitUnshare,
    /// Override of the configuration's remote TLB-flush mechanism (`--set
    /// tlb_flush=ipi|broadcast|paravirt|sbi`); `None` (`arch`) keeps the configuration's.
    /// Checked against the arch when a run is prepared; the table-free policy does not follow
    /// it (set `rcu_table_free` too, as a PV guest's `pv_ops.mmu.tlb_remove_table` does).
    pub tlb_flush: Option<mmsim_arch::TlbFlush>,
    /// `fork()` leaves the page tables of hugetlb mappings without an anon_vma to the child's
    /// faults (bcd51a3c679d, "hugetlb: lazy page table copies in fork()", v6.0); `false`
    /// copies them with `copy_hugetlb_page_range()`, as before and as with that commit reverted.
    pub lazy_fork_copy: bool,
    pub fork_share_test: ForkShareTest,
    /// riscv64's page-table free policy; `rcu_table_free` overrides it.
    pub riscv_table_free: RiscvTableFree,
    /// riscv64 has GUP-fast (v6.8, 3f910b7a522e); before, `get_user_pages_fast()` falls back
    /// to slow GUP under `mmap_lock`.
    pub riscv_gup_fast: bool,
    /// The unshare's `tlb_remove_table_sync_one()` runs only when the table is left with one
    /// owner (`fully_unshared_tables`, v6.19, 8ce720d5bd91); before, after every unshare.
    pub unshare_sync_exclusive_only: bool,
}

/// A named profile.
#[derive(Clone, Copy, Debug)]
pub struct Profile {
    pub name: &'static str,
    pub doc: &'static str,
    pub switches: Switches,
}

/// What one profile changes relative to its predecessor.
struct Change {
    name: &'static str,
    doc: &'static str,
    apply: fn(&mut Switches),
}

const BASE: Switches = Switches {
    fault_lock: FaultLock::MmapOnly,
    share_scan_lock: ShareScanLock::Write,
    unsharer_vma_lock: false,
    walker_vma_lock: false,
    hugetlb_walk_lockdep: false,
    share_count: ShareCount::Refcount,
    ptlock_dies: PtlockDies::AtPmdFree,
    share_pud_lock: SharePudLock::SharedPtlock,
    unshare_addr: UnshareAddr::RoundUp,
    x86_rcu_table_free: false,
    rcu_table_free: None,
    unshare_sync_one: false,
    quarantine: false,
    unshare_flush_leaf_only: false,
    walker_rcu: false,
    unshare_asserts_first: false,
    split_unshare: SplitUnshare::Never,
    tlb_flush: None,
    lazy_fork_copy: false,
    fork_share_test: ForkShareTest::PageCount,
    riscv_table_free: RiscvTableFree::AfterFlush,
    riscv_gup_fast: false,
    unshare_sync_exclusive_only: false,
};

const TIMELINE: &[Change] = &[
    Change {
        name: "v4.20",
        doc: "PMD sharing counted by refcount; faults hold only mmap_lock and the fault mutex",
        apply: |_| {},
    },
    Change {
        name: "v5.7",
        doc: "fault holds i_mmap_rwsem read from table allocation to PTE use (c0d0381ade79)",
        apply: |s| {
            s.fault_lock = FaultLock::IMmapRead;
            s.share_scan_lock = ShareScanLock::CallerRead;
        },
    },
    Change {
        name: "v6.0",
        doc: "unsharing loops advance with hugetlb_mask_last_page() (May 2022 fix); fork leaves shared hugetlb page tables to the child's faults (bcd51a3c679d)",
        apply: |s| {
            s.unshare_addr = UnshareAddr::MaskLastPage;
            s.lazy_fork_copy = true;
        },
    },
    Change {
        name: "v6.1",
        doc: "hugetlb vma lock guards sharing; i_mmap_rwsem leaves the fault path (40549ba8f8e0)",
        apply: |s| {
            s.fault_lock = FaultLock::VmaLock;
            s.share_scan_lock = ShareScanLock::Read;
            s.unsharer_vma_lock = true;
            s.unshare_asserts_first = true;
        },
    },
    Change {
        name: "v6.3",
        doc: "every hugetlb walker holds the vma lock or i_mmap_rwsem; hugetlb_walk() checks (9c67a20704e7, eefc7fa53608); VMA splits unshare in ->may_split() (b30c14cd6102, Jan 2023)",
        apply: |s| {
            s.walker_vma_lock = true;
            s.hugetlb_walk_lockdep = true;
            s.split_unshare = SplitUnshare::MaySplit;
        },
    },
    Change {
        name: "v6.5",
        doc: "huge_pmd_share() fills the PUD under mm->page_table_lock (349d1670008d)",
        apply: |s| s.share_pud_lock = SharePudLock::PageTableLock,
    },
    Change {
        name: "v6.8",
        doc: "riscv frees page tables by RCU (MMU_GATHER_RCU_TABLE_FREE, 69be3fb111e7; not in IPI-flush mode) and gains GUP-fast (3f910b7a522e)",
        apply: |s| {
            s.riscv_table_free = RiscvTableFree::RcuUnlessIpi;
            s.riscv_gup_fast = true;
        },
    },
    Change {
        name: "v6.13",
        doc: "pt_share_count in struct ptdesc replaces the refcount (59d9094df3d7)",
        apply: |s| s.share_count = ShareCount::PtShareCount,
    },
    Change {
        name: "v6.14",
        doc: "table dtor (and ptlock free) moves into __tlb_remove_table(); riscv frees tables by RCU in IPI mode too (Qi Zheng's series; release unverified)",
        apply: |s| {
            s.ptlock_dies = PtlockDies::WithTable;
            s.riscv_table_free = RiscvTableFree::Rcu;
        },
    },
    Change {
        name: "v6.15",
        doc: "x86 frees page tables by RCU on bare metal too; pv tlb_remove_table hook gone (a37259732a7d)",
        apply: |s| s.x86_rcu_table_free = true,
    },
    Change {
        name: "v6.16",
        doc: "huge_pmd_unshare() calls tlb_remove_table_sync_one() (1013af4f585f); split unsharing moves into __split_vma() as hugetlb_split() (081056dc00a2)",
        apply: |s| {
            s.unshare_sync_one = true;
            s.split_unshare = SplitUnshare::InSplit;
        },
    },
    Change {
        name: "2025-10",
        doc: "huge_pmd_unshare() asserts its locks only after the early returns, for a really shared table (Deepanshu Kartikey; 91a830422707, unverified); fork tests ptdesc_pmd_is_shared() (14967a9c7d24)",
        apply: |s| {
            s.unshare_asserts_first = false;
            s.fork_share_test = ForkShareTest::PtShareCount;
        },
    },
    Change {
        name: "v6.19",
        doc: "unshare through mmu_gather: one sync IPI only for tables left exclusive; arm64's flush after it is leaf-only (8ce720d5bd91)",
        apply: |s| {
            s.unshare_sync_exclusive_only = true;
            s.unshare_flush_leaf_only = true;
        },
    },
    Change {
        name: "2026",
        doc: "arm64 flushes walk caches after an unshare as after a free (c2ff4764e03e)",
        apply: |s| s.unshare_flush_leaf_only = false,
    },
];

/// All profiles, oldest first.
pub fn profiles() -> Vec<Profile> {
    let mut s = BASE;
    TIMELINE
        .iter()
        .map(|c| {
            (c.apply)(&mut s);
            Profile { name: c.name, doc: c.doc, switches: s }
        })
        .collect()
}

/// The newest profile.
pub fn latest() -> Profile {
    *profiles().last().expect("timeline is not empty")
}

pub fn by_name(name: &str) -> Option<Profile> {
    if name == "latest" {
        return Some(latest());
    }
    profiles().into_iter().find(|p| p.name == name)
}

/// A `--set` that cannot be applied.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SetError {
    #[error("unknown switch `{0}` (see `mmsim profiles` for the list)")]
    Unknown(String),
    #[error("switch `{name}` takes one of {expected}, not `{value}`")]
    BadValue { name: String, value: String, expected: &'static str },
    #[error("`{0}` is not of the form name=value")]
    Form(String),
}

macro_rules! enum_switch {
    ($s:ident, $field:ident, $value:ident, $name:literal, { $($text:literal => $variant:expr),+ $(,)? }) => {{
        $s.$field = match $value {
            $($text => $variant,)+
            _ => return Err(SetError::BadValue {
                name: $name.into(), value: $value.into(), expected: concat!($($text, " "),+),
            }),
        };
    }};
}

impl Switches {
    /// Every switch as (name, value), sorted by name.
    pub fn list(&self) -> Vec<(String, String)> {
        let b = |v: bool| if v { "true" } else { "false" }.to_string();
        let mut v = vec![
            (
                "fault_lock".into(),
                match self.fault_lock {
                    FaultLock::MmapOnly => "mmap_only",
                    FaultLock::IMmapRead => "i_mmap_read",
                    FaultLock::VmaLock => "vma_lock",
                }
                .into(),
            ),
            (
                "share_scan_lock".into(),
                match self.share_scan_lock {
                    ShareScanLock::Write => "write",
                    ShareScanLock::CallerRead => "caller_read",
                    ShareScanLock::Read => "read",
                }
                .into(),
            ),
            ("unsharer_vma_lock".into(), b(self.unsharer_vma_lock)),
            ("walker_vma_lock".into(), b(self.walker_vma_lock)),
            ("hugetlb_walk_lockdep".into(), b(self.hugetlb_walk_lockdep)),
            (
                "share_count".into(),
                match self.share_count {
                    ShareCount::Refcount => "refcount",
                    ShareCount::PtShareCount => "pt_share_count",
                }
                .into(),
            ),
            (
                "ptlock_dies".into(),
                match self.ptlock_dies {
                    PtlockDies::AtPmdFree => "at_pmd_free",
                    PtlockDies::WithTable => "with_table",
                }
                .into(),
            ),
            (
                "share_pud_lock".into(),
                match self.share_pud_lock {
                    SharePudLock::SharedPtlock => "shared_ptlock",
                    SharePudLock::PageTableLock => "page_table_lock",
                }
                .into(),
            ),
            (
                "unshare_addr".into(),
                match self.unshare_addr {
                    UnshareAddr::RoundUp => "round_up",
                    UnshareAddr::MaskLastPage => "mask_last_page",
                }
                .into(),
            ),
            ("x86_rcu_table_free".into(), b(self.x86_rcu_table_free)),
            (
                "rcu_table_free".into(),
                match self.rcu_table_free {
                    None => "arch".into(),
                    Some(v) => b(v),
                },
            ),
            ("unshare_sync_one".into(), b(self.unshare_sync_one)),
            ("quarantine".into(), b(self.quarantine)),
            ("unshare_flush_leaf_only".into(), b(self.unshare_flush_leaf_only)),
            ("walker_rcu".into(), b(self.walker_rcu)),
            ("unshare_asserts_first".into(), b(self.unshare_asserts_first)),
            ("lazy_fork_copy".into(), b(self.lazy_fork_copy)),
            (
                "riscv_table_free".into(),
                match self.riscv_table_free {
                    RiscvTableFree::AfterFlush => "after_flush",
                    RiscvTableFree::RcuUnlessIpi => "rcu_unless_ipi",
                    RiscvTableFree::Rcu => "rcu",
                }
                .into(),
            ),
            ("riscv_gup_fast".into(), b(self.riscv_gup_fast)),
            ("unshare_sync_exclusive_only".into(), b(self.unshare_sync_exclusive_only)),
            (
                "fork_share_test".into(),
                match self.fork_share_test {
                    ForkShareTest::PageCount => "page_count",
                    ForkShareTest::PtShareCount => "pt_share_count",
                }
                .into(),
            ),
            ("tlb_flush".into(), self.tlb_flush.map_or("arch", |t| t.key()).into()),
            (
                "split_unshare".into(),
                match self.split_unshare {
                    SplitUnshare::Never => "never",
                    SplitUnshare::MaySplit => "may_split",
                    SplitUnshare::InSplit => "in_split",
                }
                .into(),
            ),
        ];
        v.sort();
        v
    }

    /// Apply one `name=value` override.
    pub fn set(&mut self, assignment: &str) -> Result<(), SetError> {
        let (name, value) =
            assignment.split_once('=').ok_or_else(|| SetError::Form(assignment.into()))?;
        let (name, value) = (name.trim(), value.trim());
        let boolean = |v: &str| match v {
            "true" | "on" | "1" => Ok(true),
            "false" | "off" | "0" => Ok(false),
            _ => Err(SetError::BadValue {
                name: name.into(),
                value: v.into(),
                expected: "true false",
            }),
        };
        match name {
            "fault_lock" => enum_switch!(self, fault_lock, value, "fault_lock", {
                "mmap_only" => FaultLock::MmapOnly, "i_mmap_read" => FaultLock::IMmapRead,
                "vma_lock" => FaultLock::VmaLock }),
            "share_scan_lock" => enum_switch!(self, share_scan_lock, value, "share_scan_lock", {
                "write" => ShareScanLock::Write, "caller_read" => ShareScanLock::CallerRead,
                "read" => ShareScanLock::Read }),
            "share_count" => enum_switch!(self, share_count, value, "share_count", {
                "refcount" => ShareCount::Refcount, "pt_share_count" => ShareCount::PtShareCount }),
            "ptlock_dies" => enum_switch!(self, ptlock_dies, value, "ptlock_dies", {
                "at_pmd_free" => PtlockDies::AtPmdFree, "with_table" => PtlockDies::WithTable }),
            "share_pud_lock" => enum_switch!(self, share_pud_lock, value, "share_pud_lock", {
                "shared_ptlock" => SharePudLock::SharedPtlock,
                "page_table_lock" => SharePudLock::PageTableLock }),
            "unshare_addr" => enum_switch!(self, unshare_addr, value, "unshare_addr", {
                "round_up" => UnshareAddr::RoundUp, "mask_last_page" => UnshareAddr::MaskLastPage }),
            "split_unshare" => enum_switch!(self, split_unshare, value, "split_unshare", {
                "never" => SplitUnshare::Never, "may_split" => SplitUnshare::MaySplit,
                "in_split" => SplitUnshare::InSplit }),
            "unsharer_vma_lock" => self.unsharer_vma_lock = boolean(value)?,
            "walker_vma_lock" => self.walker_vma_lock = boolean(value)?,
            "hugetlb_walk_lockdep" => self.hugetlb_walk_lockdep = boolean(value)?,
            "x86_rcu_table_free" => self.x86_rcu_table_free = boolean(value)?,
            "rcu_table_free" => {
                self.rcu_table_free = match value {
                    "arch" | "default" => None,
                    v => Some(boolean(v).map_err(|_| SetError::BadValue {
                        name: name.into(),
                        value: v.into(),
                        expected: "arch true false",
                    })?),
                }
            }
            "lazy_fork_copy" => self.lazy_fork_copy = boolean(value)?,
            "riscv_gup_fast" => self.riscv_gup_fast = boolean(value)?,
            "unshare_sync_exclusive_only" => self.unshare_sync_exclusive_only = boolean(value)?,
            "riscv_table_free" => enum_switch!(self, riscv_table_free, value, "riscv_table_free", {
                "after_flush" => RiscvTableFree::AfterFlush,
                "rcu_unless_ipi" => RiscvTableFree::RcuUnlessIpi,
                "rcu" => RiscvTableFree::Rcu }),
            "fork_share_test" => enum_switch!(self, fork_share_test, value, "fork_share_test", {
                "page_count" => ForkShareTest::PageCount,
                "pt_share_count" => ForkShareTest::PtShareCount }),
            "tlb_flush" => {
                self.tlb_flush = match value {
                    "arch" | "default" => None,
                    v => Some(mmsim_arch::TlbFlush::from_key(v).ok_or_else(|| {
                        SetError::BadValue {
                            name: name.into(),
                            value: v.into(),
                            expected: "arch ipi broadcast paravirt sbi",
                        }
                    })?),
                }
            }
            "unshare_sync_one" => self.unshare_sync_one = boolean(value)?,
            "quarantine" => self.quarantine = boolean(value)?,
            "unshare_flush_leaf_only" => self.unshare_flush_leaf_only = boolean(value)?,
            "walker_rcu" => self.walker_rcu = boolean(value)?,
            "unshare_asserts_first" => self.unshare_asserts_first = boolean(value)?,
            _ => return Err(SetError::Unknown(name.into())),
        }
        Ok(())
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name, self.doc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeline_is_cumulative() {
        let v61 = by_name("v6.1").unwrap().switches;
        let v63 = by_name("v6.3").unwrap().switches;
        assert!(v61.unsharer_vma_lock && !v61.walker_vma_lock);
        assert!(v63.unsharer_vma_lock && v63.walker_vma_lock);
        assert_eq!(v63.unshare_addr, UnshareAddr::MaskLastPage);
        assert_eq!(latest().switches.share_count, ShareCount::PtShareCount);
    }

    #[test]
    fn set_overrides_and_rejects() {
        let mut s = by_name("v6.1").unwrap().switches;
        s.set("walker_vma_lock=true").unwrap();
        assert!(s.walker_vma_lock);
        assert!(matches!(s.set("nope=1"), Err(SetError::Unknown(_))));
        assert!(matches!(s.set("fault_lock=maybe"), Err(SetError::BadValue { .. })));
        assert!(matches!(s.set("walker_vma_lock"), Err(SetError::Form(_))));
    }

    #[test]
    fn v6_15_frees_x86_tables_by_rcu_and_rcu_table_free_overrides() {
        assert!(!by_name("v6.14").unwrap().switches.x86_rcu_table_free);
        assert!(by_name("v6.15").unwrap().switches.x86_rcu_table_free);
        assert!(latest().switches.x86_rcu_table_free);
        let mut s = by_name("v6.1").unwrap().switches;
        assert_eq!(s.rcu_table_free, None);
        s.set("rcu_table_free=false").unwrap();
        assert_eq!(s.rcu_table_free, Some(false));
        s.set("rcu_table_free=arch").unwrap();
        assert_eq!(s.rcu_table_free, None);
        assert!(matches!(s.set("rcu_table_free=maybe"), Err(SetError::BadValue { .. })));
    }

    #[test]
    fn list_round_trips_through_set() {
        let p = by_name("v6.3").unwrap().switches;
        let mut s = BASE;
        for (n, v) in p.list() {
            s.set(&format!("{n}={v}")).unwrap();
        }
        assert_eq!(s, p);
    }
}
