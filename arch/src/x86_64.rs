//! x86_64 paging (Intel SDM vol. 3A §4.5): 4-level (PML4) and 5-level (LA57, PML5) paging with
//! 4 KiB pages. Kernel side: `arch/x86/include/asm/pgtable_types.h`, `pgtable_64_types.h`.
//!
//! Entry bits used: P(0) RW(1) US(2) A(5) D(6) PS(7, in PDPTE/PDE) NX(63), address 51:12.
//! Software bits, PAT/PWT/PCD, G and protection keys are ignored on decode and never set.

use crate::entry::{DecodeError, Entry, LeafFlags};
use crate::format::{Arch, HugeSize, LevelInfo, LinuxLevel, NoShare};

pub const P: u64 = 1 << 0;
pub const RW: u64 = 1 << 1;
pub const US: u64 = 1 << 2;
pub const A: u64 = 1 << 5;
pub const D: u64 = 1 << 6;
pub const PS: u64 = 1 << 7;
pub const NX: u64 = 1 << 63;
/// Physical address bits 51:12 (MAXPHYADDR 52).
pub const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

/// `_PAGE_TABLE`: the flags Linux sets on non-leaf user entries (P, RW, US, A; D is ignored).
pub const PAGE_TABLE: u64 = P | RW | US | A | D;

/// x86_64 with 4-level paging (48-bit virtual addresses; P4D folded).
#[derive(Debug)]
pub struct X86_64FourLevel;

pub static X86_64_4LEVEL: X86_64FourLevel = X86_64FourLevel;

static LEVELS_4: [LevelInfo; 4] = [
    LevelInfo { linux: LinuxLevel::Pgd, arch_name: "PML4", shift: 39, bits: 9, leaf_ok: false },
    LevelInfo { linux: LinuxLevel::Pud, arch_name: "PDPT", shift: 30, bits: 9, leaf_ok: true },
    LevelInfo { linux: LinuxLevel::Pmd, arch_name: "PD", shift: 21, bits: 9, leaf_ok: true },
    LevelInfo { linux: LinuxLevel::Pte, arch_name: "PT", shift: 12, bits: 9, leaf_ok: true },
];

static HUGE_4: [HugeSize; 2] = [
    HugeSize { bytes: 1 << 21, level: 2, contiguous: 1, name: "PMD_SIZE" },
    HugeSize { bytes: 1 << 30, level: 1, contiguous: 1, name: "PUD_SIZE (GBPAGES)" },
];

/// x86_64 with 5-level paging (`CONFIG_X86_5LEVEL`, LA57 chosen at boot: 57-bit virtual
/// addresses; the PML4 becomes the P4D).
#[derive(Debug)]
pub struct X86_64La57;

pub static X86_64_LA57: X86_64La57 = X86_64La57;

static LEVELS_5: [LevelInfo; 5] = [
    LevelInfo { linux: LinuxLevel::Pgd, arch_name: "PML5", shift: 48, bits: 9, leaf_ok: false },
    LevelInfo { linux: LinuxLevel::P4d, arch_name: "PML4", shift: 39, bits: 9, leaf_ok: false },
    LevelInfo { linux: LinuxLevel::Pud, arch_name: "PDPT", shift: 30, bits: 9, leaf_ok: true },
    LevelInfo { linux: LinuxLevel::Pmd, arch_name: "PD", shift: 21, bits: 9, leaf_ok: true },
    LevelInfo { linux: LinuxLevel::Pte, arch_name: "PT", shift: 12, bits: 9, leaf_ok: true },
];

static HUGE_5: [HugeSize; 2] = [
    HugeSize { bytes: 1 << 21, level: 3, contiguous: 1, name: "PMD_SIZE" },
    HugeSize { bytes: 1 << 30, level: 2, contiguous: 1, name: "PUD_SIZE (GBPAGES)" },
];

impl Arch for X86_64La57 {
    fn name(&self) -> &'static str {
        "x86_64-la57"
    }
    fn page_shift(&self) -> u32 {
        12
    }
    fn levels(&self) -> &'static [LevelInfo] {
        &LEVELS_5
    }
    fn huge_sizes(&self) -> &'static [HugeSize] {
        &HUGE_5
    }
    fn pmd_sharing(&self) -> Result<(), NoShare> {
        Ok(())
    }
    /// `TASK_SIZE_MAX` = `(1 << __VIRTUAL_MASK_SHIFT) - PAGE_SIZE`: the lower canonical half,
    /// minus the guard page below the non-canonical hole (arch/x86/include/asm/page_64.h).
    fn task_size(&self) -> u64 {
        self.va_limit() / 2 - self.page_size()
    }
    fn encode(&self, level: usize, entry: Entry) -> u64 {
        encode(&LEVELS_5, level, entry)
    }
    fn decode(&self, level: usize, raw: u64) -> Result<Entry, DecodeError> {
        decode("x86_64-la57", &LEVELS_5, level, raw)
    }
}

impl Arch for X86_64FourLevel {
    fn name(&self) -> &'static str {
        "x86_64"
    }
    fn page_shift(&self) -> u32 {
        12
    }
    fn levels(&self) -> &'static [LevelInfo] {
        &LEVELS_4
    }
    fn huge_sizes(&self) -> &'static [HugeSize] {
        &HUGE_4
    }
    fn pmd_sharing(&self) -> Result<(), NoShare> {
        Ok(())
    }
    /// `TASK_SIZE_MAX` = `(1 << __VIRTUAL_MASK_SHIFT) - PAGE_SIZE`: the lower canonical half,
    /// minus the guard page below the non-canonical hole (arch/x86/include/asm/page_64.h).
    fn task_size(&self) -> u64 {
        self.va_limit() / 2 - self.page_size()
    }
    fn encode(&self, level: usize, entry: Entry) -> u64 {
        encode(&LEVELS_4, level, entry)
    }
    fn decode(&self, level: usize, raw: u64) -> Result<Entry, DecodeError> {
        decode("x86_64", &LEVELS_4, level, raw)
    }
}

fn encode(levels: &[LevelInfo], level: usize, entry: Entry) -> u64 {
    let last = level + 1 == levels.len();
    match entry {
        Entry::None => 0,
        Entry::Table { pfn } => (pfn << 12) & ADDR_MASK | PAGE_TABLE,
        Entry::Leaf { pfn, flags } => {
            debug_assert!(levels[level].leaf_ok, "leaf at a level that cannot map one");
            let mut raw = ((pfn << 12) & ADDR_MASK) | P;
            if !last {
                raw |= PS;
            }
            if flags.write {
                raw |= RW;
            }
            if flags.user {
                raw |= US;
            }
            if flags.accessed {
                raw |= A;
            }
            if flags.dirty {
                raw |= D;
            }
            if !flags.exec {
                raw |= NX;
            }
            raw
        }
    }
}

fn decode(
    format: &'static str,
    levels: &[LevelInfo],
    level: usize,
    raw: u64,
) -> Result<Entry, DecodeError> {
    let Some(&info) = levels.get(level) else {
        return Err(DecodeError { format, level: "?", raw, why: "level index out of range" });
    };
    let err = |why| DecodeError { format, level: info.arch_name, raw, why };
    if raw & P == 0 {
        return if raw == 0 { Ok(Entry::None) } else { Err(err("not present but not clear")) };
    }
    let pfn = (raw & ADDR_MASK) >> 12;
    let last = level + 1 == levels.len();
    if !last && raw & PS == 0 {
        return Ok(Entry::Table { pfn });
    }
    if !info.leaf_ok {
        return Err(err("PS=1 at a level that cannot map a page"));
    }
    if !last {
        let align = (1u64 << (info.shift - 12)) - 1;
        if pfn & align != 0 {
            return Err(err("huge page frame not aligned to its size"));
        }
    }
    let flags = LeafFlags {
        write: raw & RW != 0,
        user: raw & US != 0,
        exec: raw & NX == 0,
        accessed: raw & A != 0,
        dirty: raw & D != 0,
        cont: false,
    };
    Ok(Entry::Leaf { pfn, flags })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pmd_huge_leaf_matches_sdm_layout() {
        let raw = X86_64_4LEVEL.encode(2, Entry::Leaf { pfn: 0x200, flags: LeafFlags::USER_RW });
        // 2 MiB page at 0x200000: P RW US A D PS NX
        assert_eq!(raw, 0x8000_0000_0020_00e7);
        assert_eq!(
            X86_64_4LEVEL.decode(2, raw).unwrap(),
            Entry::Leaf { pfn: 0x200, flags: LeafFlags::USER_RW }
        );
    }

    #[test]
    fn table_entry_round_trips() {
        let raw = X86_64_4LEVEL.encode(1, Entry::Table { pfn: 0x1234 });
        assert_eq!(raw, 0x0123_4067);
        assert_eq!(X86_64_4LEVEL.decode(1, raw).unwrap(), Entry::Table { pfn: 0x1234 });
    }

    #[test]
    fn misaligned_huge_leaf_is_rejected() {
        let raw = (0x201u64 << 12) | P | PS;
        assert!(X86_64_4LEVEL.decode(2, raw).is_err());
    }

    #[test]
    fn sizes_follow_levels() {
        assert_eq!(X86_64_4LEVEL.pmd_size(), 2 << 20);
        assert_eq!(X86_64_4LEVEL.pud_size(), 1 << 30);
        assert_eq!(X86_64_4LEVEL.va_limit(), 1 << 48);
        assert_eq!(X86_64_4LEVEL.task_size(), 0x7fff_ffff_f000);
    }

    #[test]
    fn la57_walks_five_levels() {
        let f = &X86_64_LA57;
        let names: Vec<_> = f.levels().iter().map(|l| l.arch_name).collect();
        assert_eq!(names, ["PML5", "PML4", "PDPT", "PD", "PT"]);
        assert_eq!(f.va_limit(), 1 << 57);
        assert_eq!(f.task_size(), (1 << 56) - 4096);
        assert_eq!(f.pmd_level(), 3);
        assert_eq!(f.pmd_size(), 2 << 20);
        assert_eq!(f.pud_size(), 1 << 30);
        // PML5 index is VA bits 56:48.
        assert_eq!(f.levels()[0].index(0x00ab_0000_0000_0000), 0xab);
        // A 1 GiB page at PA 0x4000_0000 in the PDPT: P RW US A D PS NX.
        let e = Entry::Leaf { pfn: 0x40000, flags: LeafFlags::USER_RW };
        assert_eq!(f.encode(2, e), 0x8000_0000_4000_00e7);
        assert_eq!(f.decode(2, 0x8000_0000_4000_00e7).unwrap(), e);
        // PS=1 in a PML4E is not a valid leaf.
        assert!(f.decode(1, 0x4000_00e7).is_err());
        assert!(f.decode(5, 0).is_err());
    }
}
