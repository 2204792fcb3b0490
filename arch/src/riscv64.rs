//! riscv64 paging: Sv39, Sv48 and Sv57 with 4 KiB pages and the Svnapot 64 KiB extension.
//!
//! Follows the RISC-V Privileged Architecture, "Supervisor-Level ISA" chapters on Sv39/Sv48/Sv57
//! (PTE layout, leaf/non-leaf rules, superpage alignment) and the "Svnapot" chapter; kernel side
//! `arch/riscv/include/asm/pgtable-bits.h`, `pgtable-64.h`, `hugetlb.h`.
//!
//! This module owns the three riscv64 formats. The mode is chosen at boot and the kernel folds
//! P4D/PUD at run time (`pgtable_l4_enabled`, `pgtable_l5_enabled`); `levels()` lists only the
//! levels walked, so in Sv39 the PGD entries act as PUDs.
//!
//! PTE: V R W X U G A D in bits 0-7, RSW 9:8, PPN 53:10, reserved 60:54, PBMT 62:61, N 63.
//! `leaf_ok` follows what Linux installs (4K, 2M megapage, 1G gigapage): the hardware also allows
//! Sv48/Sv57 leaves above 1 GiB, which Linux never uses and which decode rejects.

use crate::entry::{DecodeError, Entry, LeafFlags};
use crate::format::{Arch, HugeSize, LevelInfo, LinuxLevel, NoShare};

pub const V: u64 = 1 << 0;
pub const R: u64 = 1 << 1;
pub const W: u64 = 1 << 2;
pub const X: u64 = 1 << 3;
pub const U: u64 = 1 << 4;
pub const G: u64 = 1 << 5;
pub const A: u64 = 1 << 6;
pub const D: u64 = 1 << 7;
/// `_PAGE_PFN_SHIFT`: the PPN starts at bit 10.
pub const PFN_SHIFT: u32 = 10;
/// PPN, bits 53:10.
pub const PPN_MASK: u64 = 0x003f_ffff_ffff_fc00;
/// Bits 60:54, reserved for future standard use: must be zero.
pub const RESERVED_MASK: u64 = 0x1fc0_0000_0000_0000;
/// Svpbmt memory type, bits 62:61 (0 PMA, 1 NC, 2 IO, 3 reserved).
pub const PBMT_MASK: u64 = 0x6000_0000_0000_0000;
/// Svnapot `N` bit (`_PAGE_NAPOT`).
pub const N: u64 = 1 << 63;
/// `NAPOT_CONT_ORDER_BASE`: a 64 KiB NAPOT group is 1 << 4 PTEs.
pub const NAPOT_ORDER: u32 = 4;
/// `ppn[3:0]` of a 64 KiB NAPOT PTE.
pub const NAPOT_64K_PPN_LOW: u64 = 0b1000;

/// One riscv64 paging mode.
#[derive(Debug)]
pub struct Riscv64 {
    name: &'static str,
    levels: &'static [LevelInfo],
    huge: &'static [HugeSize],
}

const fn lvl(linux: LinuxLevel, arch_name: &'static str, vpn: u32, leaf_ok: bool) -> LevelInfo {
    LevelInfo { linux, arch_name, shift: 12 + 9 * vpn, bits: 9, leaf_ok }
}

static LEVELS_SV39: [LevelInfo; 3] = [
    lvl(LinuxLevel::Pgd, "VPN[2]", 2, true),
    lvl(LinuxLevel::Pmd, "VPN[1]", 1, true),
    lvl(LinuxLevel::Pte, "VPN[0]", 0, true),
];
static LEVELS_SV48: [LevelInfo; 4] = [
    lvl(LinuxLevel::Pgd, "VPN[3]", 3, false),
    lvl(LinuxLevel::Pud, "VPN[2]", 2, true),
    lvl(LinuxLevel::Pmd, "VPN[1]", 1, true),
    lvl(LinuxLevel::Pte, "VPN[0]", 0, true),
];
static LEVELS_SV57: [LevelInfo; 5] = [
    lvl(LinuxLevel::Pgd, "VPN[4]", 4, false),
    lvl(LinuxLevel::P4d, "VPN[3]", 3, false),
    lvl(LinuxLevel::Pud, "VPN[2]", 2, true),
    lvl(LinuxLevel::Pmd, "VPN[1]", 1, true),
    lvl(LinuxLevel::Pte, "VPN[0]", 0, true),
];

const fn huge(n: usize) -> [HugeSize; 3] {
    [
        HugeSize { bytes: 64 << 10, level: n - 1, contiguous: 16, name: "napot 64K (Svnapot)" },
        HugeSize { bytes: 2 << 20, level: n - 2, contiguous: 1, name: "PMD_SIZE" },
        HugeSize { bytes: 1 << 30, level: n - 3, contiguous: 1, name: "PUD_SIZE" },
    ]
}
static HUGE_SV39: [HugeSize; 3] = huge(3);
static HUGE_SV48: [HugeSize; 3] = huge(4);
static HUGE_SV57: [HugeSize; 3] = huge(5);

/// Sv39: 3 levels, 39-bit VA, PGD entries act as PUDs.
pub static SV39: Riscv64 = Riscv64 { name: "riscv64-sv39", levels: &LEVELS_SV39, huge: &HUGE_SV39 };
/// Sv48: 4 levels, 48-bit VA, P4D folded.
pub static SV48: Riscv64 = Riscv64 { name: "riscv64-sv48", levels: &LEVELS_SV48, huge: &HUGE_SV48 };
/// Sv57: 5 levels, 57-bit VA.
pub static SV57: Riscv64 = Riscv64 { name: "riscv64-sv57", levels: &LEVELS_SV57, huge: &HUGE_SV57 };

impl Arch for Riscv64 {
    fn name(&self) -> &'static str {
        self.name
    }
    fn page_shift(&self) -> u32 {
        12
    }
    fn levels(&self) -> &'static [LevelInfo] {
        self.levels
    }
    fn huge_sizes(&self) -> &'static [HugeSize] {
        self.huge
    }
    /// riscv selects `ARCH_WANT_HUGE_PMD_SHARE if 64BIT`, and every mode has >= 3 levels.
    fn pmd_sharing(&self) -> Result<(), NoShare> {
        Ok(())
    }
    /// `TASK_SIZE_64` = `PGDIR_SIZE * PTRS_PER_PGD / 2`: the lower half of the VA space
    /// (arch/riscv/include/asm/pgtable.h).
    fn task_size(&self) -> u64 {
        self.va_limit() / 2
    }
    /// Non-leaf: `_PAGE_TABLE` = V only. Leaf: V R, W if write, X if exec, U, A, D as given,
    /// and for `cont` at the last level the Svnapot form (N=1, `ppn[3:0]=0b1000`, all 16 PTEs of
    /// the group identical, as `pte_mknapot()` builds them).
    fn encode(&self, level: usize, entry: Entry) -> u64 {
        match entry {
            Entry::None => 0,
            Entry::Table { pfn } => ((pfn << PFN_SHIFT) & PPN_MASK) | V,
            Entry::Leaf { pfn, flags } => {
                debug_assert!(self.levels[level].leaf_ok, "leaf at a level that cannot map one");
                let last = level + 1 == self.levels.len();
                debug_assert!(!flags.cont || last, "Svnapot is only used at the last level");
                let mut ppn = pfn;
                let mut raw = V | R;
                if flags.cont && last {
                    ppn = (pfn & !((1 << NAPOT_ORDER) - 1)) | NAPOT_64K_PPN_LOW;
                    raw |= N;
                }
                raw |= (ppn << PFN_SHIFT) & PPN_MASK;
                if flags.write {
                    raw |= W;
                }
                if flags.exec {
                    raw |= X;
                }
                if flags.user {
                    raw |= U;
                }
                if flags.accessed {
                    raw |= A;
                }
                if flags.dirty {
                    raw |= D;
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
        if raw & V == 0 {
            return if raw == 0 {
                Ok(Entry::None)
            } else {
                Err(err("V=0 but not clear (swap/migration entries are not modelled)"))
            };
        }
        if raw & RESERVED_MASK != 0 {
            return Err(err("reserved bits 60:54 set"));
        }
        if raw & PBMT_MASK == PBMT_MASK {
            return Err(err("PBMT=3 is reserved"));
        }
        let last = level + 1 == self.levels.len();
        let ppn = (raw & PPN_MASK) >> PFN_SHIFT;
        if raw & (R | W | X) == 0 {
            if last {
                return Err(err("pointer to a next level at the last level"));
            }
            if raw & (U | A | D | N | PBMT_MASK) != 0 {
                return Err(err("U, A, D, N and PBMT are reserved in a non-leaf PTE"));
            }
            return Ok(Entry::Table { pfn: ppn });
        }
        if raw & (R | W) == W {
            return Err(err("W=1 with R=0 is reserved"));
        }
        if raw & R == 0 {
            return Err(err("execute-only leaf (mmsim models readable mappings only)"));
        }
        if !info.leaf_ok {
            return Err(err("leaf at a level Linux never maps"));
        }
        let mut pfn = ppn;
        let cont = raw & N != 0;
        if cont {
            if !last {
                return Err(err("N=1 on a superpage is reserved"));
            }
            if ppn & ((1 << NAPOT_ORDER) - 1) != NAPOT_64K_PPN_LOW {
                return Err(err("N=1 with ppn[3:0] other than 0b1000 is reserved"));
            }
            pfn = ppn & !((1 << NAPOT_ORDER) - 1);
        } else if !last {
            let low = (1u64 << (info.shift - 12)) - 1;
            if ppn & low != 0 {
                return Err(err("misaligned superpage: low PPN fields not zero"));
            }
        }
        let flags = LeafFlags {
            write: raw & W != 0,
            user: raw & U != 0,
            exec: raw & X != 0,
            accessed: raw & A != 0,
            dirty: raw & D != 0,
            cont,
        };
        Ok(Entry::Leaf { pfn, flags })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sv39_non_leaf_is_ppn_and_v() {
        // ppn 0x80001 (PA 0x8000_1000): 0x80001 << 10 = 0x2000_0400, plus V.
        assert_eq!(SV39.encode(0, Entry::Table { pfn: 0x80001 }), 0x2000_0401);
        assert_eq!(SV39.decode(1, 0x2000_0401).unwrap(), Entry::Table { pfn: 0x80001 });
    }

    #[test]
    fn sv39_megapage_leaf_layout() {
        // 2 MiB at PA 0x8020_0000: ppn 0x80200 << 10 = 0x2008_0000; V R W U A D = 0xd7.
        let e = Entry::Leaf { pfn: 0x80200, flags: LeafFlags::USER_RW };
        assert_eq!(SV39.encode(1, e), 0x2008_00d7);
        assert_eq!(SV39.decode(1, 0x2008_00d7).unwrap(), e);
        // Read-only user: V R U A = 0x53.
        let ro = Entry::Leaf { pfn: 0x80200, flags: LeafFlags::USER_RO };
        assert_eq!(SV39.encode(1, ro), 0x2008_0053);
    }

    #[test]
    fn svnapot_64k_example() {
        // Svnapot: a 64 KiB NAPOT PTE has N=1 and ppn[3:0]=0b1000. Group at PA 0x8001_0000
        // (ppn 0x80010): ppn field 0x80018 << 10 = 0x2000_6000, V R W U A D, N at bit 63.
        let flags = LeafFlags { cont: true, ..LeafFlags::USER_RW };
        let raw = SV39.encode(2, Entry::Leaf { pfn: 0x80010, flags });
        assert_eq!(raw, 0x8000_0000_2000_60d7);
        // Every PTE of the group encodes the same, whatever page of the group is named.
        assert_eq!(SV39.encode(2, Entry::Leaf { pfn: 0x8001f, flags }), raw);
        assert_eq!(SV39.decode(2, raw).unwrap(), Entry::Leaf { pfn: 0x80010, flags });
    }

    #[test]
    fn decode_rejects_reserved_forms() {
        // W without R.
        assert!(SV39.decode(2, 0x2000_0405).is_err());
        // Misaligned megapage: ppn 0x80201 at VPN[1].
        assert!(SV39.decode(1, (0x80201 << 10) | V | R).is_err());
        // Misaligned gigapage: ppn 0x80200 at VPN[2] (ppn[1] != 0).
        assert!(SV39.decode(0, (0x80200 << 10) | V | R).is_err());
        // NAPOT with ppn[3:0] = 0b0100 (would be 32 KiB: reserved).
        assert!(SV39.decode(2, N | (0x80014 << 10) | V | R).is_err());
        // NAPOT on a megapage.
        assert!(SV39.decode(1, N | (0x80208 << 10) | V | R).is_err());
        // Pointer at the last level.
        assert!(SV39.decode(2, 0x2000_0401).is_err());
        // Reserved bit 54.
        assert!(SV39.decode(2, (1 << 54) | 0x2000_0403).is_err());
        // Terapage leaf in Sv48 VPN[3]: hardware-legal, never used by Linux.
        assert!(SV48.decode(0, V | R).is_err());
        // Non-leaf with A set.
        assert!(SV48.decode(0, 0x2000_0441).is_err());
        // Out-of-range level does not panic.
        assert!(SV39.decode(3, 0).is_err());
    }

    #[test]
    fn level_layout_matches_the_spec() {
        assert_eq!(SV39.levels().len(), 3);
        assert_eq!(SV48.levels().len(), 4);
        assert_eq!(SV57.levels().len(), 5);
        assert_eq!(SV39.va_limit(), 1 << 39);
        assert_eq!(SV48.va_limit(), 1 << 48);
        assert_eq!(SV57.va_limit(), 1 << 57);
        assert_eq!(SV39.task_size(), 1 << 38);
        // VPN[2] of 0x40_2060_3000 is bits 38:30.
        let va = 0x40_2060_3000u64;
        assert_eq!(SV39.levels()[0].index(va), 0x100);
        assert_eq!(SV39.levels()[1].index(va), 0x103);
        assert_eq!(SV39.levels()[2].index(va), 0x3);
        for f in [&SV39, &SV48, &SV57] {
            assert_eq!(f.pmd_size(), 2 << 20, "{}", f.name);
            assert_eq!(f.pud_size(), 1 << 30, "{}", f.name);
            assert_eq!(f.levels()[f.pmd_level()].arch_name, "VPN[1]");
            assert_eq!(f.pmd_sharing(), Ok(()));
        }
    }
}
