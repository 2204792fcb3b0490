//! arm64 stage-1 translation (TTBR0, user space) with 4K, 16K and 64K granules.
//!
//! Follows the Arm ARM (DDI 0487) chapter D8 "The AArch64 Virtual Memory System Architecture"
//! (translation granules, starting level, VMSAv8-64 descriptor formats) with a 48-bit output
//! address; kernel side `arch/arm64/include/asm/pgtable-hwdef.h` (`ARM64_HW_PGTABLE_LEVEL_SHIFT`,
//! `PMD_TYPE_*`, `PTE_*`), `pgtable-prot.h` (`PAGE_SHARED`, `PAGE_READONLY`), `pgtable.h`
//! (`pte_mkdirty()`, `pte_mkwrite_novma()`, `pte_wrprotect()`), `memory.h` (`MT_NORMAL` = 0) and
//! `hugetlb.h`/`mm/hugetlbpage.c` (`arch_hugetlb_valid_size()`).
//!
//! This module owns every arm64 format. Levels are named by the hardware level (`L0`..`L3`);
//! the number of levels is `(VA_BITS - 4) / (PAGE_SHIFT - 3)` and level `n` is indexed from bit
//! `(PAGE_SHIFT - 3) * (4 - n) + 3`. The top level may have fewer index bits than a full table
//! (16K VA48: L0 is bit 47 alone, 2 entries; 64K VA48: L1 is bits 47:42, 64 entries).
//!
//! Generic names: the top level is always `Pgd`. Where the kernel folds levels the PGD entries
//! act as the first unfolded level below (4K VA39: PGD acts as PUD; 64K VA48: PUD folded, PGD
//! entries point at PMD tables). In the two-level formats (16K VA36, 64K VA42) the kernel folds
//! the PMD into the PGD (`pgtable-nopmd.h`): there is no PMD table page, the PGD *is* the table
//! whose entries map `PMD_SIZE`. mmsim calls that level `Pgd` (so `level_of(LinuxLevel::Pmd)`
//! is `None`, telling the simulator there is no separate PMD table to share), while
//! `pmd_level()` is still 0 and `pmd_size()` still the entry size (32 MiB / 512 MiB).
//! `pud_size()` follows the kernel there: with PUD and PMD folded, `PUD_SIZE == PMD_SIZE`.
//!
//! Descriptors (Linux's view, 48-bit PA, no LPA2): bits 1:0 `01` block, `11` table (L0-L2) or
//! page (L3); AttrIndx 4:2 = `MT_NORMAL` (0); `AP[1]` bit 6 `PTE_USER`; `AP[2]` bit 7 `PTE_RDONLY`;
//! SH 9:8 = inner shareable; AF bit 10; nG bit 11 (set on user mappings); DBM bit 51
//! (`PTE_WRITE`); CONT bit 52; PXN 53; UXN 54; software `PTE_DIRTY` bit 55. Table descriptors
//! are `address | 0b11` (table attribute bits 63:59 are ignored on decode).
//!
//! Write/dirty follow Linux: writable-clean is DBM=1, RDONLY=1; writable-dirty is DBM=1,
//! RDONLY=0 (+ `PTE_DIRTY` when software made it dirty, as `make_huge_pte()` does);
//! read-only-dirty is DBM=0, RDONLY=1, `PTE_DIRTY`. `pte_dirty()` = `PTE_DIRTY` or
//! (DBM and !RDONLY). DBM=0 with RDONLY=0 (hardware-writable but not `pte_write()`) is rejected.

use crate::entry::{DecodeError, Entry, LeafFlags};
use crate::format::{Arch, HugeSize, LevelInfo, LinuxLevel, NoShare};

/// Bits 1:0, the descriptor type.
pub const TYPE_MASK: u64 = 0b11;
/// `PMD_TYPE_SECT` / `PUD_TYPE_SECT`: a block at L1/L2.
pub const TYPE_BLOCK: u64 = 0b01;
/// `PMD_TYPE_TABLE` at L0-L2, `PTE_TYPE_PAGE` at L3.
pub const TYPE_TABLE_OR_PAGE: u64 = 0b11;
/// `PTE_VALID`.
pub const PTE_VALID: u64 = 1 << 0;
/// `PTE_TABLE_BIT`.
pub const PTE_TABLE_BIT: u64 = 1 << 1;
/// `MT_NORMAL`: MAIR index of normal write-back memory (0 since v5.10; it was 4 before).
pub const MT_NORMAL: u64 = 0;
/// AttrIndx, bits 4:2.
pub const ATTRINDX_MASK: u64 = 0b111 << 2;
/// `AP[1]`: EL0 access.
pub const PTE_USER: u64 = 1 << 6;
/// `AP[2]`: read-only.
pub const PTE_RDONLY: u64 = 1 << 7;
/// SH = 0b11, inner shareable (`PTE_SHARED`).
pub const PTE_SHARED: u64 = 0b11 << 8;
/// Access flag.
pub const PTE_AF: u64 = 1 << 10;
/// not-Global: ASID-tagged.
pub const PTE_NG: u64 = 1 << 11;
/// DBM, which Linux uses as `PTE_WRITE`.
pub const PTE_WRITE: u64 = 1 << 51;
/// Contiguous hint.
pub const PTE_CONT: u64 = 1 << 52;
pub const PTE_PXN: u64 = 1 << 53;
pub const PTE_UXN: u64 = 1 << 54;
/// Software dirty bit (`PTE_DIRTY`).
pub const PTE_DIRTY: u64 = 1 << 55;
/// Output address bits 47:12 (a granule masks off its own low bits further).
pub const OA_MASK_48: u64 = 0x0000_ffff_ffff_f000;
/// Bits 49:48: `OA[49:48]` under LPA2, RES0 with a 48-bit PA.
pub const OA_HIGH_RES0: u64 = 0b11 << 48;

/// `ARCH_WANT_HUGE_PMD_SHARE` condition on arm64.
pub const SHARE_KCONFIG: &str = "ARCH_WANT_HUGE_PMD_SHARE needs 4K, or 16K without VA_BITS_36";

/// One arm64 stage-1 format: a granule and a VA size.
#[derive(Debug)]
pub struct Arm64 {
    name: &'static str,
    page_shift: u32,
    va_bits: u32,
    levels: &'static [LevelInfo],
    huge: &'static [HugeSize],
    sharing: Result<(), NoShare>,
}

impl Arm64 {
    /// `CONFIG_ARM64_VA_BITS`.
    pub fn va_bits(&self) -> u32 {
        self.va_bits
    }
    /// Output-address mask of a descriptor: bits 47:`PAGE_SHIFT`.
    fn oa_mask(&self) -> u64 {
        OA_MASK_48 & !((1u64 << self.page_shift) - 1)
    }
}

/// Level `n` (0..=3) of a granule with `page_shift`, with `bits` index bits.
const fn lvl(
    linux: LinuxLevel,
    arch_name: &'static str,
    page_shift: u32,
    n: u32,
    bits: u32,
    leaf_ok: bool,
) -> LevelInfo {
    LevelInfo { linux, arch_name, shift: (page_shift - 3) * (4 - n) + 3, bits, leaf_ok }
}

use LinuxLevel::{Pgd, Pmd, Pte, Pud};

// 4K granule: 9 bits per level; blocks at L1 (1 GiB, pud_sect_supported) and L2.
static LEVELS_4K_VA39: [LevelInfo; 3] = [
    lvl(Pgd, "L1", 12, 1, 9, true),
    lvl(Pmd, "L2", 12, 2, 9, true),
    lvl(Pte, "L3", 12, 3, 9, true),
];
static LEVELS_4K_VA48: [LevelInfo; 4] = [
    lvl(Pgd, "L0", 12, 0, 9, false),
    lvl(Pud, "L1", 12, 1, 9, true),
    lvl(Pmd, "L2", 12, 2, 9, true),
    lvl(Pte, "L3", 12, 3, 9, true),
];
// 16K granule: 11 bits per level; blocks at L2 only (L1 blocks need LPA2).
static LEVELS_16K_VA36: [LevelInfo; 2] =
    [lvl(Pgd, "L2", 14, 2, 11, true), lvl(Pte, "L3", 14, 3, 11, true)];
static LEVELS_16K_VA47: [LevelInfo; 3] = [
    lvl(Pgd, "L1", 14, 1, 11, false),
    lvl(Pmd, "L2", 14, 2, 11, true),
    lvl(Pte, "L3", 14, 3, 11, true),
];
static LEVELS_16K_VA48: [LevelInfo; 4] = [
    lvl(Pgd, "L0", 14, 0, 1, false),
    lvl(Pud, "L1", 14, 1, 11, false),
    lvl(Pmd, "L2", 14, 2, 11, true),
    lvl(Pte, "L3", 14, 3, 11, true),
];
// 64K granule: 13 bits per level; blocks at L2 only (L1 blocks need 52-bit PA).
static LEVELS_64K_VA42: [LevelInfo; 2] =
    [lvl(Pgd, "L2", 16, 2, 13, true), lvl(Pte, "L3", 16, 3, 13, true)];
static LEVELS_64K_VA48: [LevelInfo; 3] = [
    lvl(Pgd, "L1", 16, 1, 6, false),
    lvl(Pmd, "L2", 16, 2, 13, true),
    lvl(Pte, "L3", 16, 3, 13, true),
];

/// 4K: 64K `CONT_PTE`, 2M `PMD`, 32M `CONT_PMD`, 1G `PUD` (levels counted from the bottom).
const fn huge_4k(n: usize) -> [HugeSize; 4] {
    [
        HugeSize { bytes: 64 << 10, level: n - 1, contiguous: 16, name: "CONT_PTE_SIZE" },
        HugeSize { bytes: 2 << 20, level: n - 2, contiguous: 1, name: "PMD_SIZE" },
        HugeSize { bytes: 32 << 20, level: n - 2, contiguous: 16, name: "CONT_PMD_SIZE" },
        HugeSize { bytes: 1 << 30, level: n - 3, contiguous: 1, name: "PUD_SIZE" },
    ]
}
/// 16K: 2M `CONT_PTE` (128), 32M `PMD`, 1G `CONT_PMD` (32).
const fn huge_16k(n: usize) -> [HugeSize; 3] {
    [
        HugeSize { bytes: 2 << 20, level: n - 1, contiguous: 128, name: "CONT_PTE_SIZE" },
        HugeSize { bytes: 32 << 20, level: n - 2, contiguous: 1, name: "PMD_SIZE" },
        HugeSize { bytes: 1 << 30, level: n - 2, contiguous: 32, name: "CONT_PMD_SIZE" },
    ]
}
/// 64K: 2M `CONT_PTE` (32), 512M `PMD`, 16G `CONT_PMD` (32).
const fn huge_64k(n: usize) -> [HugeSize; 3] {
    [
        HugeSize { bytes: 2 << 20, level: n - 1, contiguous: 32, name: "CONT_PTE_SIZE" },
        HugeSize { bytes: 512 << 20, level: n - 2, contiguous: 1, name: "PMD_SIZE" },
        HugeSize { bytes: 16 << 30, level: n - 2, contiguous: 32, name: "CONT_PMD_SIZE" },
    ]
}
static HUGE_4K_VA39: [HugeSize; 4] = huge_4k(3);
static HUGE_4K_VA48: [HugeSize; 4] = huge_4k(4);
static HUGE_16K_VA36: [HugeSize; 3] = huge_16k(2);
static HUGE_16K_VA47: [HugeSize; 3] = huge_16k(3);
static HUGE_16K_VA48: [HugeSize; 3] = huge_16k(4);
static HUGE_64K_VA42: [HugeSize; 3] = huge_64k(2);
static HUGE_64K_VA48: [HugeSize; 3] = huge_64k(3);

const NOT_64K: NoShare = NoShare::NotSelected { arch: "arm64 with 64K pages", why: SHARE_KCONFIG };

/// 4K granule, 39-bit VA: 3 levels from L1 (PGD entries act as PUDs).
pub static ARM64_4K_VA39: Arm64 = Arm64 {
    name: "arm64-4k-va39",
    page_shift: 12,
    va_bits: 39,
    levels: &LEVELS_4K_VA39,
    huge: &HUGE_4K_VA39,
    sharing: Ok(()),
};
/// 4K granule, 48-bit VA: 4 levels from L0.
pub static ARM64_4K_VA48: Arm64 = Arm64 {
    name: "arm64-4k-va48",
    page_shift: 12,
    va_bits: 48,
    levels: &LEVELS_4K_VA48,
    huge: &HUGE_4K_VA48,
    sharing: Ok(()),
};
/// 16K granule, 36-bit VA: 2 levels from L2, PMD folded into the PGD.
pub static ARM64_16K_VA36: Arm64 = Arm64 {
    name: "arm64-16k-va36",
    page_shift: 14,
    va_bits: 36,
    levels: &LEVELS_16K_VA36,
    huge: &HUGE_16K_VA36,
    sharing: Err(NoShare::TooFewLevels { levels: 2 }),
};
/// 16K granule, 47-bit VA: 3 levels from L1 (PGD entries act as PUDs).
pub static ARM64_16K_VA47: Arm64 = Arm64 {
    name: "arm64-16k-va47",
    page_shift: 14,
    va_bits: 47,
    levels: &LEVELS_16K_VA47,
    huge: &HUGE_16K_VA47,
    sharing: Ok(()),
};
/// 16K granule, 48-bit VA: 4 levels from L0, which has 2 entries (bit 47).
pub static ARM64_16K_VA48: Arm64 = Arm64 {
    name: "arm64-16k-va48",
    page_shift: 14,
    va_bits: 48,
    levels: &LEVELS_16K_VA48,
    huge: &HUGE_16K_VA48,
    sharing: Ok(()),
};
/// 64K granule, 42-bit VA: 2 levels from L2, PMD folded into the PGD.
pub static ARM64_64K_VA42: Arm64 = Arm64 {
    name: "arm64-64k-va42",
    page_shift: 16,
    va_bits: 42,
    levels: &LEVELS_64K_VA42,
    huge: &HUGE_64K_VA42,
    sharing: Err(NOT_64K),
};
/// 64K granule, 48-bit VA: 3 levels from L1 (64 entries), PUD folded.
pub static ARM64_64K_VA48: Arm64 = Arm64 {
    name: "arm64-64k-va48",
    page_shift: 16,
    va_bits: 48,
    levels: &LEVELS_64K_VA48,
    huge: &HUGE_64K_VA48,
    sharing: Err(NOT_64K),
};

impl Arch for Arm64 {
    fn name(&self) -> &'static str {
        self.name
    }
    fn page_shift(&self) -> u32 {
        self.page_shift
    }
    fn levels(&self) -> &'static [LevelInfo] {
        self.levels
    }
    fn huge_sizes(&self) -> &'static [HugeSize] {
        self.huge
    }
    fn pmd_sharing(&self) -> Result<(), NoShare> {
        self.sharing
    }
    /// With two levels the kernel folds PUD and PMD into the PGD: `PUD_SIZE == PMD_SIZE`.
    fn pud_size(&self) -> u64 {
        if self.levels.len() == 2 {
            self.pmd_size()
        } else {
            self.pmd_size() << self.levels[self.pmd_level()].bits
        }
    }
    fn encode(&self, level: usize, entry: Entry) -> u64 {
        let last = level + 1 == self.levels.len();
        match entry {
            Entry::None => 0,
            Entry::Table { pfn } => {
                ((pfn << self.page_shift) & self.oa_mask()) | TYPE_TABLE_OR_PAGE
            }
            Entry::Leaf { pfn, flags } => {
                debug_assert!(self.levels[level].leaf_ok, "block at a level that cannot map one");
                let mut raw = (pfn << self.page_shift) & self.oa_mask();
                raw |= if last { TYPE_TABLE_OR_PAGE } else { TYPE_BLOCK };
                raw |= (MT_NORMAL << 2) | PTE_SHARED;
                if flags.accessed {
                    raw |= PTE_AF;
                }
                if flags.user {
                    raw |= PTE_USER | PTE_NG | PTE_PXN;
                    if !flags.exec {
                        raw |= PTE_UXN;
                    }
                } else {
                    raw |= PTE_UXN;
                    if !flags.exec {
                        raw |= PTE_PXN;
                    }
                }
                match (flags.write, flags.dirty) {
                    (true, true) => raw |= PTE_WRITE | PTE_DIRTY,
                    (true, false) => raw |= PTE_WRITE | PTE_RDONLY,
                    (false, true) => raw |= PTE_RDONLY | PTE_DIRTY,
                    (false, false) => raw |= PTE_RDONLY,
                }
                if flags.cont {
                    raw |= PTE_CONT;
                }
                raw
            }
        }
    }
    fn decode(&self, level: usize, raw: u64) -> Result<Entry, DecodeError> {
        let format = self.name;
        let Some(&info) = self.levels.get(level) else {
            return Err(DecodeError { format, level: "?", raw, why: "level index out of range" });
        };
        let err = |why| DecodeError { format, level: info.arch_name, raw, why };
        if raw & PTE_VALID == 0 {
            return if raw == 0 {
                Ok(Entry::None)
            } else {
                Err(err("invalid descriptor not clear (swap/PROT_NONE entries are not modelled)"))
            };
        }
        let last = level + 1 == self.levels.len();
        let below_granule = OA_MASK_48 & ((1u64 << self.page_shift) - 1);
        if raw & (OA_HIGH_RES0 | below_granule) != 0 {
            return Err(err("output address beyond a 48-bit PA (52-bit PA / LPA2 not modelled)"));
        }
        let pfn = (raw & self.oa_mask()) >> self.page_shift;
        if raw & TYPE_MASK == TYPE_TABLE_OR_PAGE && !last {
            return Ok(Entry::Table { pfn });
        }
        if raw & TYPE_MASK == TYPE_BLOCK {
            if last {
                return Err(err("descriptor type 0b01 is reserved at L3"));
            }
            if !info.leaf_ok {
                return Err(err("block descriptor not permitted at this level and granule"));
            }
            let align = (1u64 << (info.shift - self.page_shift)) - 1;
            if pfn & align != 0 {
                return Err(err("block output address not aligned to the block size"));
            }
        }
        let write = raw & PTE_WRITE != 0;
        let rdonly = raw & PTE_RDONLY != 0;
        if !write && !rdonly {
            return Err(err("AP[2]=0 without DBM: hardware-writable but not pte_write()"));
        }
        let user = raw & PTE_USER != 0;
        let flags = LeafFlags {
            write,
            user,
            exec: if user { raw & PTE_UXN == 0 } else { raw & PTE_PXN == 0 },
            accessed: raw & PTE_AF != 0,
            dirty: raw & PTE_DIRTY != 0 || (write && !rdonly),
            cont: raw & PTE_CONT != 0,
        };
        Ok(Entry::Leaf { pfn, flags })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [&Arm64; 7] = [
        &ARM64_4K_VA39,
        &ARM64_4K_VA48,
        &ARM64_16K_VA36,
        &ARM64_16K_VA47,
        &ARM64_16K_VA48,
        &ARM64_64K_VA42,
        &ARM64_64K_VA48,
    ];

    #[test]
    fn l2_block_user_rw_matches_descriptor_layout() {
        // 4K VA48, L2 block at PA 0x4020_0000, user RW dirty normal memory:
        //   bits 1:0 = 01 (block)           0x001
        //   AttrIndx = MT_NORMAL (0)         0x000
        //   AP[1] PTE_USER (bit 6)           0x040
        //   AP[2] clear (dirty writable)     0x000
        //   SH = 0b11 (bits 9:8)             0x300
        //   AF (bit 10)                      0x400
        //   nG (bit 11)                      0x800
        //   OA                               0x4020_0000
        //   DBM 51 | PXN 53 | UXN 54 | DIRTY 55 = 0x00e8 << 48
        let e = Entry::Leaf { pfn: 0x40200, flags: LeafFlags::USER_RW };
        let raw = ARM64_4K_VA48.encode(2, e);
        assert_eq!(raw, 0x00e8_0000_4020_0f41);
        assert_eq!(ARM64_4K_VA48.decode(2, raw).unwrap(), e);
    }

    #[test]
    fn l3_page_user_ro_matches_page_readonly() {
        // PAGE_READONLY: page (11) | USER | RDONLY | SH | AF | nG | PXN | UXN.
        let e = Entry::Leaf { pfn: 0x80001, flags: LeafFlags::USER_RO };
        assert_eq!(ARM64_4K_VA48.encode(3, e), 0x0060_0000_8000_1fc3);
        // Same page in 64K: PA 0x8001_0000 is pfn 0x8001.
        let e = Entry::Leaf { pfn: 0x8001, flags: LeafFlags::USER_RO };
        assert_eq!(ARM64_64K_VA48.encode(2, e), 0x0060_0000_8001_0fc3);
    }

    #[test]
    fn write_dirty_combinations_follow_linux() {
        let f = &ARM64_4K_VA48;
        let page = |write, dirty| {
            f.encode(
                3,
                Entry::Leaf { pfn: 1, flags: LeafFlags { write, dirty, ..LeafFlags::USER_RO } },
            )
        };
        let ap = PTE_WRITE | PTE_RDONLY | PTE_DIRTY;
        assert_eq!(page(true, false) & ap, PTE_WRITE | PTE_RDONLY);
        assert_eq!(page(true, true) & ap, PTE_WRITE | PTE_DIRTY);
        assert_eq!(page(false, true) & ap, PTE_RDONLY | PTE_DIRTY);
        assert_eq!(page(false, false) & ap, PTE_RDONLY);
        // Hardware DBM dirtying: RDONLY cleared, PTE_DIRTY not set -> still pte_dirty().
        let hw_dirty = page(true, false) & !PTE_RDONLY;
        match f.decode(3, hw_dirty).unwrap() {
            Entry::Leaf { flags, .. } => assert!(flags.write && flags.dirty),
            other => panic!("{other:?}"),
        }
        // Writable by hardware without DBM: not a Linux entry.
        assert!(f.decode(3, page(false, false) & !PTE_RDONLY).is_err());
    }

    #[test]
    fn table_descriptor_is_address_or_3() {
        assert_eq!(ARM64_4K_VA48.encode(0, Entry::Table { pfn: 0x41234 }), 0x4123_4003);
        assert_eq!(ARM64_16K_VA47.encode(1, Entry::Table { pfn: 0x10001 }), 0x4000_4003);
        assert_eq!(ARM64_16K_VA47.decode(1, 0x4000_4003).unwrap(), Entry::Table { pfn: 0x10001 });
        // Table attribute bits (PXNTable, UXNTable) are tolerated.
        assert_eq!(
            ARM64_4K_VA48.decode(0, 0x4123_4003 | (1 << 59) | (1 << 60)).unwrap(),
            Entry::Table { pfn: 0x41234 }
        );
    }

    #[test]
    fn decode_rejects_what_hardware_or_linux_does_not_produce() {
        // Block at L0 (4K) and at L1 (16K: needs LPA2).
        assert!(ARM64_4K_VA48.decode(0, 0x0060_0000_0000_0fc1).is_err());
        assert!(ARM64_16K_VA47.decode(0, 0x0060_0000_0000_0fc1).is_err());
        // 0b01 at L3 is reserved.
        assert!(ARM64_4K_VA48.decode(3, 0x0060_0000_8000_1fc1).is_err());
        // Misaligned 2M block.
        assert!(ARM64_4K_VA48.decode(2, 0x0060_0000_4020_1fc1).is_err());
        // 64K descriptor with PA[51:48] in bits 15:12.
        assert!(ARM64_64K_VA48.decode(2, 0x0060_0000_8001_1fc3).is_err());
        // Invalid but non-zero.
        assert!(ARM64_4K_VA48.decode(3, 0x0400_0000_8000_1000).is_err());
        assert!(ARM64_4K_VA48.decode(4, 0).is_err());
    }

    #[test]
    fn levels_and_indices() {
        // 16K VA47: PMD index is VA bits 35:25, PGD (L1) bits 46:36, PTE bits 24:14.
        let f = &ARM64_16K_VA47;
        let va = (0x5a5u64 << 36) | (0x3c3 << 25) | (0x10f << 14) | 0x1234;
        assert_eq!(f.levels()[0].index(va), 0x5a5);
        assert_eq!(f.levels()[1].index(va), 0x3c3);
        assert_eq!(f.levels()[2].index(va), 0x10f);
        // 16K VA48: L0 is bit 47 alone.
        let l0 = ARM64_16K_VA48.levels()[0];
        assert_eq!((l0.shift, l0.bits), (47, 1));
        assert_eq!(l0.index(0x8000_0000_0000), 1);
        assert_eq!(l0.index(0x7fff_ffff_ffff), 0);
        // 64K VA48: L1 is bits 47:42.
        let l1 = ARM64_64K_VA48.levels()[0];
        assert_eq!((l1.arch_name, l1.shift, l1.bits), ("L1", 42, 6));
        // Starting levels and VA limits.
        for f in ALL {
            assert_eq!(f.va_limit(), 1 << f.va_bits(), "{}", f.name);
            assert_eq!(f.task_size(), 1 << f.va_bits(), "{}", f.name);
            let expect = ((f.va_bits - 4) / (f.page_shift - 3)) as usize;
            assert_eq!(f.levels().len(), expect, "{}", f.name);
            assert_eq!(f.levels().last().unwrap().arch_name, "L3");
            assert_eq!(f.levels()[f.pmd_level()].arch_name, "L2", "{}", f.name);
        }
        assert_eq!(ARM64_4K_VA39.levels()[0].arch_name, "L1");
        assert_eq!(ARM64_16K_VA36.levels()[0].arch_name, "L2");
    }

    #[test]
    fn pmd_and_pud_sizes() {
        let sizes: Vec<_> = ALL.iter().map(|f| (f.name, f.pmd_size(), f.pud_size())).collect();
        assert_eq!(
            sizes,
            [
                ("arm64-4k-va39", 2 << 20, 1 << 30),
                ("arm64-4k-va48", 2 << 20, 1 << 30),
                ("arm64-16k-va36", 32 << 20, 32 << 20),
                ("arm64-16k-va47", 32 << 20, 64 << 30),
                ("arm64-16k-va48", 32 << 20, 64 << 30),
                ("arm64-64k-va42", 512 << 20, 512 << 20),
                ("arm64-64k-va48", 512 << 20, 4 << 40),
            ]
        );
    }

    #[test]
    fn sharing_per_format() {
        for f in ALL {
            let got = f.pmd_sharing();
            match f.page_shift {
                16 => assert_eq!(got, Err(NOT_64K), "{}", f.name),
                14 if f.va_bits == 36 => {
                    assert_eq!(got, Err(NoShare::TooFewLevels { levels: 2 }))
                }
                _ => assert_eq!(got, Ok(()), "{}", f.name),
            }
        }
        assert!(NOT_64K.to_string().contains("16K without VA_BITS_36"));
    }

    #[test]
    fn huge_sizes_per_granule() {
        let bytes = |f: &Arm64| f.huge_sizes().iter().map(|h| h.bytes).collect::<Vec<_>>();
        assert_eq!(bytes(&ARM64_4K_VA48), [64 << 10, 2 << 20, 32 << 20, 1 << 30]);
        assert_eq!(bytes(&ARM64_16K_VA47), [2 << 20, 32 << 20, 1 << 30]);
        assert_eq!(bytes(&ARM64_64K_VA48), [2 << 20, 512 << 20, 16 << 30]);
        for f in ALL {
            for h in f.huge_sizes() {
                let l = f.levels()[h.level];
                assert!(l.leaf_ok, "{} {}", f.name, h.name);
                assert_eq!(
                    l.entry_size() * u64::from(h.contiguous),
                    h.bytes,
                    "{} {}",
                    f.name,
                    h.name
                );
            }
        }
    }
}
