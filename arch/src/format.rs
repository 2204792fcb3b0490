//! The `Arch` interface: one page-table format (an architecture in one paging mode and granule).

use crate::entry::{DecodeError, Entry};

/// The kernel's generic name for a level, after folding. A folded level does not appear in
/// [`Arch::levels`]; e.g. x86_64 4-level has Pgd, Pud, Pmd, Pte (P4D folded), riscv Sv39 has
/// Pgd, Pmd, Pte (the PGD entries act as PUDs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LinuxLevel {
    Pgd,
    P4d,
    Pud,
    Pmd,
    Pte,
}

impl LinuxLevel {
    pub fn name(self) -> &'static str {
        match self {
            LinuxLevel::Pgd => "pgd",
            LinuxLevel::P4d => "p4d",
            LinuxLevel::Pud => "pud",
            LinuxLevel::Pmd => "pmd",
            LinuxLevel::Pte => "pte",
        }
    }
}

/// One level of the walk, top level first in [`Arch::levels`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LevelInfo {
    /// The kernel's generic name for this level.
    pub linux: LinuxLevel,
    /// The architecture manual's name (x86 "PML4", arm64 "L1", riscv "VPN[2]").
    pub arch_name: &'static str,
    /// Lowest virtual-address bit that indexes this level (the size one entry maps is 1 << shift).
    pub shift: u32,
    /// Number of index bits; the table at this level has 1 << bits entries.
    pub bits: u32,
    /// Whether a leaf (block / huge page) may be installed at this level.
    pub leaf_ok: bool,
}

impl LevelInfo {
    /// Bytes mapped by one entry of this level.
    pub fn entry_size(&self) -> u64 {
        1u64 << self.shift
    }
    /// Index of `va` in a table of this level.
    pub fn index(&self, va: u64) -> usize {
        ((va >> self.shift) & ((1u64 << self.bits) - 1)) as usize
    }
}

/// A hugetlb page size the format supports, and how it is mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HugeSize {
    pub bytes: u64,
    /// Level (index into [`Arch::levels`]) whose entries map it.
    pub level: usize,
    /// Entries per huge page: 1 for a plain block, 16/32/128 for arm64 CONT, 16 for riscv NAPOT.
    pub contiguous: u32,
    /// The kernel's name for it (`PMD_SIZE`, `CONT_PTE_SIZE`, `napot 64K`, ...).
    pub name: &'static str,
}

/// Why hugetlb PMD sharing is impossible in a format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NoShare {
    #[error("the PMD level is folded into the PGD ({levels} levels): there is no PUD entry to share a PMD table through")]
    TooFewLevels { levels: usize },
    #[error("{arch} does not select ARCH_WANT_HUGE_PMD_SHARE ({why})")]
    NotSelected { arch: &'static str, why: &'static str },
}

/// One page-table format: an architecture in one paging mode and granule.
///
/// Implementations are `'static` constants; the simulator holds `&'static dyn Arch`.
pub trait Arch: Sync + std::fmt::Debug {
    /// Canonical name, e.g. `x86_64`, `x86_64-la57`, `arm64-4k-va48`, `riscv64-sv39`.
    fn name(&self) -> &'static str;
    /// log2 of the base page size (12 for 4 KiB, 14 for 16 KiB, 16 for 64 KiB).
    fn page_shift(&self) -> u32;
    /// Levels walked, top first, folded levels omitted.
    fn levels(&self) -> &'static [LevelInfo];
    /// The hugetlb sizes, smallest first.
    fn huge_sizes(&self) -> &'static [HugeSize];
    /// Whether hugetlb PMD sharing is possible (`ARCH_WANT_HUGE_PMD_SHARE` and enough levels).
    fn pmd_sharing(&self) -> Result<(), NoShare>;
    /// Encode an entry of level `level` (index into `levels()`) in the real bit layout.
    /// A `Leaf` is only valid where `levels()[level].leaf_ok`.
    fn encode(&self, level: usize, entry: Entry) -> u64;
    /// Decode a raw entry of level `level`.
    fn decode(&self, level: usize, raw: u64) -> Result<Entry, DecodeError>;

    /// Base page size in bytes.
    fn page_size(&self) -> u64 {
        1 << self.page_shift()
    }
    /// Entries in one table page (8-byte entries on every supported arch).
    fn ptrs_per_table(&self) -> usize {
        (self.page_size() / 8) as usize
    }
    /// Index into `levels()` of the level with the given generic name, if not folded.
    fn level_of(&self, l: LinuxLevel) -> Option<usize> {
        self.levels().iter().position(|i| i.linux == l)
    }
    /// Index of the PMD level: the level whose entries map `PMD_SIZE`.
    fn pmd_level(&self) -> usize {
        self.levels().len() - 2
    }
    /// `PMD_SIZE`: bytes mapped by one PMD entry.
    fn pmd_size(&self) -> u64 {
        self.levels()[self.pmd_level()].entry_size()
    }
    /// `PUD_SIZE`: bytes mapped by one PUD(-acting) entry, i.e. by one whole PMD table.
    fn pud_size(&self) -> u64 {
        self.pmd_size() << self.levels()[self.pmd_level()].bits
    }
    /// Highest user virtual address + 1 (`TASK_SIZE` upper bound for this format).
    fn va_limit(&self) -> u64 {
        let top = self.levels()[0];
        1u64 << (top.shift + top.bits)
    }
}
