//! The `Arch` interface: one page-table format (an architecture in one paging mode and granule).
//!
//! Owns the architecture-neutral vocabulary (Linux level names after folding, level geometry,
//! hugetlb sizes, why PMD sharing is impossible) and [`describe`], the text `mmsim arch show`
//! prints. The generic level names and `PMD_SIZE`/`PUD_SIZE` follow the kernel's
//! `include/asm-generic/pgtable-nop4d.h`, `pgtable-nopud.h` and `pgtable-nopmd.h` folding; the
//! per-format facts live in `x86_64.rs`, `arm64.rs` and `riscv64.rs`.

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
    /// The architecture manual's name (x86 "PML4", arm64 "L1", riscv `"VPN[2]"`).
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
    /// `TASK_SIZE`: one past the highest user virtual address. The default is the whole
    /// VA width (arm64 gives user space its own TTBR0 tables); x86_64 and riscv64 keep the upper
    /// half for the kernel and override it.
    fn task_size(&self) -> u64 {
        self.va_limit()
    }
    /// A human description of the format, as `mmsim arch show NAME` prints it; see [`describe`].
    fn describe(&self) -> String {
        describe(self)
    }
}

/// `bytes` as a binary size with the largest unit that divides it exactly: `64 KiB`, `2 MiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = bytes;
    let mut u = 0;
    while u + 1 < UNITS.len() && v >= 1024 && v & 1023 == 0 {
        v /= 1024;
        u += 1;
    }
    format!("{v} {}", UNITS[u])
}

/// A human description of a format: its levels with the manual's names, the VA bits, shift and
/// entries of each, `PMD_SIZE`/`PUD_SIZE`, the hugetlb sizes, and whether PMD sharing is
/// possible (and why not). Plain text, deterministic, std only.
pub fn describe<A: Arch + ?Sized>(a: &A) -> String {
    use std::fmt::Write as _;
    let levels = a.levels();
    let va_bits = a.va_limit().trailing_zeros();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{}: {} levels, {} pages, {}-bit virtual addresses",
        a.name(),
        levels.len(),
        human_size(a.page_size()),
        va_bits
    );
    let _ = writeln!(
        s,
        "  {:<5} {:<5} {:<7} {:>7} {:>5} {:>7} {:>10}  leaf",
        "level", "linux", "arch", "VA bits", "shift", "entries", "entry maps"
    );
    for (i, l) in levels.iter().enumerate() {
        let last = i + 1 == levels.len();
        let bits = format!("{}:{}", l.shift + l.bits - 1, l.shift);
        let leaf = match (l.leaf_ok, last) {
            (false, _) => "no",
            (true, true) => "page",
            (true, false) => "block",
        };
        let _ = writeln!(
            s,
            "  {:<5} {:<5} {:<7} {:>7} {:>5} {:>7} {:>10}  {}",
            i,
            l.linux.name(),
            l.arch_name,
            bits,
            l.shift,
            1u64 << l.bits,
            human_size(l.entry_size()),
            leaf
        );
    }
    let pmd = a.pmd_level();
    let _ = writeln!(
        s,
        "  PMD_SIZE {} ({} entries), PUD_SIZE {}",
        human_size(a.pmd_size()),
        levels[pmd].arch_name,
        human_size(a.pud_size())
    );
    let sizes: Vec<String> = a
        .huge_sizes()
        .iter()
        .map(|h| {
            let at = levels[h.level].arch_name;
            if h.contiguous > 1 {
                format!("{} ({}, {} x {})", human_size(h.bytes), h.name, h.contiguous, at)
            } else {
                format!("{} ({}, {})", human_size(h.bytes), h.name, at)
            }
        })
        .collect();
    let _ = writeln!(s, "  hugetlb sizes: {}", sizes.join(", "));
    match a.pmd_sharing() {
        Ok(()) => {
            let _ = writeln!(
                s,
                "  hugetlb PMD sharing: yes (a shared PMD table spans {})",
                human_size(a.pud_size())
            );
        }
        Err(why) => {
            let _ = writeln!(s, "  hugetlb PMD sharing: no: {why}");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes() {
        assert_eq!(human_size(64 << 10), "64 KiB");
        assert_eq!(human_size(32 << 20), "32 MiB");
        assert_eq!(human_size(4 << 40), "4 TiB");
        assert_eq!(human_size(1536), "1536 B");
    }

    #[test]
    fn describe_arm64_16k_va47() {
        let d = crate::format_by_name("arm64-16k-va47").unwrap().describe();
        println!("{d}");
        assert!(d.starts_with("arm64-16k-va47: 3 levels, 16 KiB pages, 47-bit virtual addresses"));
        let pmd_row = d.lines().find(|l| l.contains(" L2 ")).unwrap();
        for want in ["pmd", "35:25", "25", "2048", "32 MiB", "block"] {
            assert!(pmd_row.contains(want), "{want} missing in {pmd_row:?}");
        }
        assert!(d.contains("PMD_SIZE 32 MiB (L2 entries), PUD_SIZE 64 GiB"));
        assert!(d.contains("1 GiB (CONT_PMD_SIZE, 32 x L2)"));
        assert!(d.contains("hugetlb PMD sharing: yes (a shared PMD table spans 64 GiB)"));
    }

    #[test]
    fn describe_says_why_not_shared() {
        let d = describe(crate::format_by_name("arm64-16k-va36").unwrap());
        assert!(d.contains("hugetlb PMD sharing: no: the PMD level is folded into the PGD"), "{d}");
        let d = describe(crate::format_by_name("arm64-64k-va48").unwrap());
        assert!(d.contains("16K without VA_BITS_36"), "{d}");
        // The 16K VA48 L0 has 2 entries, indexed by bit 47 alone.
        let d = describe(crate::format_by_name("arm64-16k-va48").unwrap());
        let l0 = d.lines().find(|l| l.contains(" L0 ")).unwrap();
        assert!(l0.contains("47:47") && l0.contains(" 2 "), "{l0}");
    }
}
