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

/// Which page faults `lock_vma_under_rcu()` handles under the per-VMA lock instead of
/// `mmap_lock` (CONFIG_PER_VMA_LOCK).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PerVmaLock {
    /// None: every fault takes `mmap_lock` for read (before v6.4).
    Off,
    /// Anonymous VMAs (v6.4, 0bff0aaea03e "x86/mm: try VMA lock-based page fault handling
    /// first"); hugetlb faults fall back to `mmap_lock` (the "TODO: Handle faults under the
    /// VMA lock" return in `hugetlb_fault()` from v6.5 has the same effect).
    Anon,
    /// Hugetlb VMAs too (v6.9, 7c43a553792a "hugetlb: allow faults to be handled under the
    /// VMA lock").
    AnonHugetlb,
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

/// How a switch's values are spelled in `--set`, `mmsim profiles` and trace headers.
pub trait SwitchValue: Sized {
    /// Every accepted spelling, space-separated, for error messages.
    const EXPECTED: &'static str;
    /// The value's canonical spelling (what `list()` and trace headers show).
    fn key(&self) -> &'static str;
    /// The value a spelling names, if any.
    fn parse(text: &str) -> Option<Self>;
}

/// Spells an enum switch: one `Variant => "key"` line per variant, nothing kept in parallel.
macro_rules! spelled {
    ($ty:ident { $($variant:ident => $key:literal),+ $(,)? }) => {
        impl SwitchValue for $ty {
            const EXPECTED: &'static str = concat!($($key, " "),+);
            fn key(&self) -> &'static str {
                match self {
                    $($ty::$variant => $key,)+
                }
            }
            fn parse(text: &str) -> Option<Self> {
                match text {
                    $($key => Some($ty::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

spelled!(FaultLock { MmapOnly => "mmap_only", IMmapRead => "i_mmap_read", VmaLock => "vma_lock" });
spelled!(ShareScanLock { Write => "write", CallerRead => "caller_read", Read => "read" });
spelled!(ShareCount { Refcount => "refcount", PtShareCount => "pt_share_count" });
spelled!(PtlockDies { AtPmdFree => "at_pmd_free", WithTable => "with_table" });
spelled!(SharePudLock { SharedPtlock => "shared_ptlock", PageTableLock => "page_table_lock" });
spelled!(UnshareAddr { RoundUp => "round_up", MaskLastPage => "mask_last_page" });
spelled!(SplitUnshare { Never => "never", MaySplit => "may_split", InSplit => "in_split" });
spelled!(ForkShareTest { PageCount => "page_count", PtShareCount => "pt_share_count" });
spelled!(PerVmaLock { Off => "off", Anon => "anon", AnonHugetlb => "anon_hugetlb" });
spelled!(RiscvTableFree {
    AfterFlush => "after_flush",
    RcuUnlessIpi => "rcu_unless_ipi",
    Rcu => "rcu",
});

impl SwitchValue for bool {
    const EXPECTED: &'static str = "true false";
    fn key(&self) -> &'static str {
        if *self {
            "true"
        } else {
            "false"
        }
    }
    fn parse(text: &str) -> Option<Self> {
        match text {
            "true" | "on" | "1" => Some(true),
            "false" | "off" | "0" => Some(false),
            _ => None,
        }
    }
}

/// An override of the arch configuration's default: `arch` (or `default`) keeps it.
impl SwitchValue for Option<bool> {
    const EXPECTED: &'static str = "arch true false";
    fn key(&self) -> &'static str {
        self.as_ref().map_or("arch", SwitchValue::key)
    }
    fn parse(text: &str) -> Option<Self> {
        match text {
            "arch" | "default" => Some(None),
            t => bool::parse(t).map(Some),
        }
    }
}

impl SwitchValue for Option<mmsim_arch::TlbFlush> {
    const EXPECTED: &'static str = "arch ipi broadcast paravirt sbi";
    fn key(&self) -> &'static str {
        self.map_or("arch", |t| t.key())
    }
    fn parse(text: &str) -> Option<Self> {
        match text {
            "arch" | "default" => Some(None),
            t => mmsim_arch::TlbFlush::from_key(t).map(Some),
        }
    }
}

/// Declares `Switches` from one field list and derives from that same list its `list()` and
/// `set()`, so the names `mmsim profiles`, `--set` and trace headers use cannot drift apart.
macro_rules! switches {
    ($(#[$meta:meta])* pub struct Switches { $($(#[$fmeta:meta])* pub $field:ident: $ty:ty,)+ }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub struct Switches {
                $($(#[$fmeta])* pub $field: $ty,)+
            }

            impl Switches {
                /// Every switch name, in declaration order.
                pub const NAMES: &'static [&'static str] = &[$(stringify!($field)),+];

                /// Every switch as (name, value), sorted by name.
                pub fn list(&self) -> Vec<(String, String)> {
                    let mut v = vec![$((stringify!($field).to_string(), self.$field.key().to_string())),+];
                    v.sort();
                    v
                }

                /// Apply one `name=value` override.
                pub fn set(&mut self, assignment: &str) -> Result<(), SetError> {
                    let (name, value) =
                        assignment.split_once('=').ok_or_else(|| SetError::Form(assignment.into()))?;
                    let (name, value) = (name.trim(), value.trim());
                    match name {
                        $(stringify!($field) => assign(&mut self.$field, name, value),)+
                        _ => Err(SetError::Unknown(name.into())),
                    }
                }
            }
        };
    }
/// Parse `value` into `slot`, or say which spellings the switch takes.
fn assign<T: SwitchValue>(slot: &mut T, name: &str, value: &str) -> Result<(), SetError> {
    *slot = T::parse(value).ok_or_else(|| SetError::BadValue {
        name: name.into(),
        value: value.into(),
        expected: T::EXPECTED,
    })?;
    Ok(())
}

switches! {
        /// The switches of one kernel profile. Each field is a switch of the same name in
        /// `--set name=value`, `mmsim profiles` and every trace header; its values are spelled
        /// by its type's [`SwitchValue`] impl.
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
        /// `copy_hugetlb_page_range()` of a private (COW) mapping gives the child the entry it
        /// read before `huge_ptep_set_wrprotect()` of the parent's, so the child's entry stays
        /// writable and its stores land in the page the parent still maps: introduced by
        /// 4eae4efa2c29 ("hugetlb: do early cow when page pinned on src mm", v5.12, which moved
        /// `huge_ptep_get()` above the write-protect), fixed by 84894e1c42e9 ("mm/hugetlb: fix
        /// cow where page writtable in child", v5.13: `entry = huge_pte_wrprotect(entry)`). No
        /// profile lies in that window (v5.7, then v6.0): `--set fork_child_writable=true`.
        pub fork_child_writable: bool,
        /// riscv64's page-table free policy; `rcu_table_free` overrides it.
        pub riscv_table_free: RiscvTableFree,
        /// riscv64 has GUP-fast (v6.8, 3f910b7a522e); before, `get_user_pages_fast()` falls back
        /// to slow GUP under `mmap_lock`.
        pub riscv_gup_fast: bool,
        /// The unshare's `tlb_remove_table_sync_one()` runs only when the table is left with one
        /// owner (`fully_unshared_tables`, v6.19, 8ce720d5bd91); before, after every unshare.
        pub unshare_sync_exclusive_only: bool,
        /// Which faults take the per-VMA lock instead of `mmap_lock`.
        pub per_vma_lock: PerVmaLock,
    }
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
    fork_child_writable: false,
    riscv_table_free: RiscvTableFree::AfterFlush,
    riscv_gup_fast: false,
    unshare_sync_exclusive_only: false,
    per_vma_lock: PerVmaLock::Off,
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
        name: "v6.4",
        doc: "anonymous page faults under the per-VMA lock, lock_vma_under_rcu() (0bff0aaea03e); mmap_lock writers write-lock the VMAs they change (vma_start_write())",
        apply: |s| s.per_vma_lock = PerVmaLock::Anon,
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
        name: "v6.9",
        doc: "hugetlb page faults under the per-VMA lock too (7c43a553792a)",
        apply: |s| s.per_vma_lock = PerVmaLock::AnonHugetlb,
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
    #[error("switch `{name}` takes one of {}, not `{value}`", expected.trim_end())]
    BadValue { name: String, value: String, expected: &'static str },
    #[error("`{0}` is not of the form name=value")]
    Form(String),
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

    #[test]
    fn every_spelling_of_every_switch_sets_and_lists_back() {
        let bad = "no-such-value";
        for name in Switches::NAMES {
            let mut s = BASE;
            let Err(SetError::BadValue { expected, .. }) = s.set(&format!("{name}={bad}")) else {
                panic!("{name} accepted {bad}");
            };
            for value in expected.split_whitespace() {
                s.set(&format!("{name}={value}")).unwrap();
                let listed = s.list().into_iter().find(|(n, _)| n == name).unwrap().1;
                // `default` is another spelling of `arch`
                let canonical = if value == "default" { "arch" } else { value };
                assert_eq!(listed, canonical, "{name}={value}");
            }
        }
        assert_eq!(BASE.list().len(), Switches::NAMES.len());
    }
}

/// Property-based fuzzing of `--set name=value`: never a panic, a refused assignment changes
/// nothing and its error names the switch or the text at fault. Fixed seeds.
#[cfg(test)]
mod fuzz {
    use super::*;
    use crate::scenario::fuzz::config;
    use proptest::prelude::*;

    /// Every spelling any switch takes, and near misses.
    fn value() -> impl Strategy<Value = String> {
        let mut spellings: Vec<&'static str> = Vec::new();
        for name in Switches::NAMES {
            let mut s = BASE;
            let Err(SetError::BadValue { expected, .. }) = s.set(&format!("{name}=?")) else {
                unreachable!("`?` is no spelling")
            };
            spellings.extend(expected.split_whitespace());
        }
        spellings.extend([
            "default",
            "on",
            "off",
            "1",
            "0",
            "",
            " ",
            "TRUE",
            "vma_lock ",
            "=",
            "é",
        ]);
        prop_oneof![
            4 => prop::sample::select(spellings).prop_map(String::from),
            1 => any::<String>(),
        ]
    }

    fn name() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => prop::sample::select(Switches::NAMES.to_vec()).prop_map(String::from),
            1 => prop::sample::select(Switches::NAMES.to_vec()).prop_map(|n| format!(" {n}\t")),
            1 => prop::sample::select(vec!["", "nope", "FAULT_LOCK", "fault-lock", "tlb_flush=ipi"])
                .prop_map(String::from),
            1 => any::<String>(),
        ]
    }

    fn assignment() -> impl Strategy<Value = String> {
        prop_oneof![
            6 => (name(), prop::sample::select(vec!["=", " = ", "=="]), value())
                .prop_map(|(n, eq, v)| format!("{n}{eq}{v}")),
            1 => any::<String>(),
        ]
    }

    proptest! {
        #![proptest_config(config(3000, 0x5e7_5e7))]

        #[test]
        fn assignments_never_panic_and_errors_name_the_fault(text in assignment()) {
            let mut s = BASE;
            let result = s.set(&text);
            let shown = result.as_ref().err().map(ToString::to_string).unwrap_or_default();
            match result {
                Ok(()) => {
                    let (n, _) = text.split_once('=').unwrap();
                    prop_assert!(Switches::NAMES.contains(&n.trim()), "{:?} was accepted", text);
                    // what `list()` shows sets the same value again
                    let listed = s.list().into_iter().find(|(x, _)| x == n.trim()).unwrap().1;
                    let mut again = BASE;
                    again.set(&format!("{}={listed}", n.trim())).unwrap();
                    prop_assert_eq!(again, s);
                }
                Err(e) => {
                    prop_assert_eq!(s, BASE, "a refused {:?} changed a switch", text);
                    match e {
                        SetError::Form(t) => {
                            prop_assert!(!text.contains('=') && t == text, "{}", shown);
                        }
                        SetError::Unknown(n) => {
                            prop_assert!(!Switches::NAMES.contains(&n.as_str()), "{}", shown);
                            prop_assert!(shown.contains(&format!("`{n}`")), "{}", shown);
                        }
                        SetError::BadValue { name, value, .. } => {
                            prop_assert!(Switches::NAMES.contains(&name.as_str()), "{}", shown);
                            let both = format!("switch `{name}` takes one of ");
                            prop_assert!(shown.starts_with(&both), "{}", shown);
                            prop_assert!(shown.ends_with(&format!("not `{value}`")), "{}", shown);
                        }
                    }
                }
            }
        }
    }
}
