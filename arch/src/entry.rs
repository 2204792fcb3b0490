//! The architecture-neutral view of one page-table entry, which every format encodes to and
//! decodes from its real bit layout.
//!
//! The flags are what the kernel's generic accessors (`include/linux/pgtable.h`: `pte_write()`,
//! `pte_young()`, `pte_dirty()`, `pte_exec()`, `pte_cont()`/`pte_napot()`) report; each format
//! module documents how its bits map onto them.

use serde::{Deserialize, Serialize};

/// A decoded page-table entry. `pfn` is always in units of the format's base page size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Entry {
    /// Not present (all of the kernel's `*_none()` entries; mmsim uses no swap/migration entries).
    None,
    /// Points to the next-level table (x86 PS=0 non-leaf, arm64 table descriptor, riscv V=1 RWX=0).
    Table { pfn: u64 },
    /// Maps memory: a page at the last level, a block / huge page above it.
    Leaf { pfn: u64, flags: LeafFlags },
}

/// Permission and status bits of a leaf, as the kernel's `pte_write()`, `pte_young()`, ... see them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LeafFlags {
    pub write: bool,
    pub user: bool,
    pub exec: bool,
    pub accessed: bool,
    pub dirty: bool,
    /// Part of a contiguous group: arm64 `PTE_CONT`, riscv Svnapot `N`. Always false on x86.
    pub cont: bool,
}

impl LeafFlags {
    /// A user read/write data mapping as a hugetlb fault installs it (`make_huge_pte(writable)`).
    pub const USER_RW: LeafFlags = LeafFlags {
        write: true,
        user: true,
        exec: false,
        accessed: true,
        dirty: true,
        cont: false,
    };
    /// The same, read-only (mprotect PROT_READ).
    pub const USER_RO: LeafFlags = LeafFlags {
        write: false,
        user: true,
        exec: false,
        accessed: true,
        dirty: false,
        cont: false,
    };
}

/// A raw value that is not a valid entry of the given level in this format.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{format}: 0x{raw:016x} is not a valid {level} entry: {why}")]
pub struct DecodeError {
    pub format: &'static str,
    pub level: &'static str,
    pub raw: u64,
    pub why: &'static str,
}
