//! Page-table formats and per-architecture facts.
//!
//! This crate owns *what the hardware and the kernel's arch code say*: how many levels a
//! configuration walks, which virtual-address bits index each level, the real bit layout of
//! table, block and page descriptors, the hugetlb sizes, whether hugetlb PMD sharing is possible
//! (and why not), and the default table-free and TLB-flush policies.
//!
//! One module per format family, each following its manual and kernel headers (kernel-notes §7):
//! [`x86_64`] (Intel SDM vol. 3A §4.5: `x86_64`, `x86_64-la57`), [`arm64`] (Arm ARM D8,
//! stage 1: `arm64-{4k,16k,64k}-vaNN`), [`riscv64`] (privileged spec Sv39/48/57 + Svnapot:
//! `riscv64-sv39`, `-sv48`, `-sv57`). `format.rs` holds the `Arch` trait and [`describe`],
//! `entry.rs` the neutral entry, `config.rs` the named configurations (kernel-notes §6.6, §8).
//!
//! Invariant: pure data and functions. No simulator state, no I/O, no allocation on the
//! encode/decode path. Everything here is `'static` and `Sync`.

pub mod arm64;
mod config;
mod entry;
mod format;
pub mod riscv64;
pub mod x86_64;

pub use config::{configs, ArchConfig, TableFree, TlbFlush};
pub use entry::{DecodeError, Entry, LeafFlags};
pub use format::{describe, human_size, Arch, HugeSize, LevelInfo, LinuxLevel, NoShare};

/// Every page-table format mmsim knows, by its canonical name.
pub fn formats() -> &'static [&'static dyn Arch] {
    &FORMATS
}

static FORMATS: [&dyn Arch; 12] = [
    &x86_64::X86_64_4LEVEL,
    &x86_64::X86_64_LA57,
    &arm64::ARM64_4K_VA39,
    &arm64::ARM64_4K_VA48,
    &arm64::ARM64_16K_VA36,
    &arm64::ARM64_16K_VA47,
    &arm64::ARM64_16K_VA48,
    &arm64::ARM64_64K_VA42,
    &arm64::ARM64_64K_VA48,
    &riscv64::SV39,
    &riscv64::SV48,
    &riscv64::SV57,
];

/// Look a page-table format up by name (`x86_64`, `arm64-16k-va47`, `riscv64-sv39`, ...).
pub fn format_by_name(name: &str) -> Option<&'static dyn Arch> {
    formats().iter().copied().find(|a| a.name() == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic xorshift, so the property loops need no extra crates.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    fn all_flags() -> impl Iterator<Item = LeafFlags> {
        (0u32..64).map(|b| LeafFlags {
            write: b & 1 != 0,
            user: b & 2 != 0,
            exec: b & 4 != 0,
            accessed: b & 8 != 0,
            dirty: b & 16 != 0,
            cont: b & 32 != 0,
        })
    }

    #[test]
    fn names_are_unique_and_found() {
        let names: Vec<_> = formats().iter().map(|f| f.name()).collect();
        assert_eq!(
            names,
            [
                "x86_64",
                "x86_64-la57",
                "arm64-4k-va39",
                "arm64-4k-va48",
                "arm64-16k-va36",
                "arm64-16k-va47",
                "arm64-16k-va48",
                "arm64-64k-va42",
                "arm64-64k-va48",
                "riscv64-sv39",
                "riscv64-sv48",
                "riscv64-sv57",
            ]
        );
        for n in &names {
            assert_eq!(format_by_name(n).unwrap().name(), *n);
        }
        assert!(format_by_name("arm64").is_none());
    }

    #[test]
    fn every_format_round_trips_every_level() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for f in formats() {
            let n = f.levels().len();
            // 48-bit physical addresses fit every format (arm64 without LPA is the smallest).
            let max_pfn = 1u64 << (48 - f.page_shift());
            for (level, info) in f.levels().iter().enumerate() {
                let last = level + 1 == n;
                assert_eq!(f.decode(level, f.encode(level, Entry::None)), Ok(Entry::None));
                let cont_ok = f.huge_sizes().iter().any(|h| h.level == level && h.contiguous > 1);
                let group = f
                    .huge_sizes()
                    .iter()
                    .filter(|h| h.level == level)
                    .map(|h| u64::from(h.contiguous))
                    .max()
                    .unwrap_or(1);
                let mut checked = 0;
                for _ in 0..200 {
                    let pfn = rng.next() % max_pfn;
                    if !last {
                        let e = Entry::Table { pfn };
                        assert_eq!(f.decode(level, f.encode(level, e)), Ok(e), "{}", f.name());
                    }
                    if !info.leaf_ok {
                        continue;
                    }
                    let align = (info.entry_size() >> f.page_shift()) * group;
                    let pfn = pfn / align * align;
                    for flags in all_flags().filter(|fl| cont_ok || !fl.cont) {
                        let e = Entry::Leaf { pfn, flags };
                        let raw = f.encode(level, e);
                        assert_eq!(
                            f.decode(level, raw),
                            Ok(e),
                            "{} {} 0x{raw:016x}",
                            f.name(),
                            info.arch_name
                        );
                        checked += 1;
                    }
                }
                assert!(info.leaf_ok == (checked > 0));
            }
        }
    }

    #[test]
    fn decode_of_arbitrary_values_never_panics_and_is_stable() {
        let mut rng = Rng(0x1234_5678_9abc_def1);
        for f in formats() {
            let mut ok = 0;
            for i in 0..20_000u32 {
                // Mix dense random words with sparse ones, which hit the valid forms more often.
                let raw =
                    if i % 2 == 0 { rng.next() } else { rng.next() & rng.next() & rng.next() };
                for level in 0..=f.levels().len() {
                    if let Ok(e) = f.decode(level, raw) {
                        ok += 1;
                        let again = f.decode(level, f.encode(level, e));
                        assert_eq!(again, Ok(e), "{} L{level} 0x{raw:016x}", f.name());
                    }
                }
            }
            assert!(ok > 0, "{} decoded nothing", f.name());
        }
    }

    #[test]
    fn pmd_and_pud_sizes_per_format() {
        for f in formats() {
            let (pmd, pud) = match f.name() {
                n if n.starts_with("x86_64") || n.starts_with("riscv64") => (2 << 20, 1 << 30),
                n if n.starts_with("arm64-4k") => (2 << 20, 1 << 30),
                "arm64-16k-va36" => (32 << 20, 32 << 20),
                n if n.starts_with("arm64-16k") => (32 << 20, 64u64 << 30),
                "arm64-64k-va42" => (512 << 20, 512 << 20),
                "arm64-64k-va48" => (512 << 20, 4u64 << 40),
                n => panic!("no expectation for {n}"),
            };
            assert_eq!((f.pmd_size(), f.pud_size()), (pmd, pud), "{}", f.name());
            assert_eq!(f.pmd_level(), f.levels().len() - 2);
            assert_eq!(f.levels().last().unwrap().linux, LinuxLevel::Pte);
            assert_eq!(f.levels()[0].linux, LinuxLevel::Pgd);
        }
    }

    #[test]
    fn pmd_sharing_per_format() {
        for f in formats() {
            let got = f.pmd_sharing();
            match f.name() {
                "arm64-16k-va36" => assert_eq!(got, Err(NoShare::TooFewLevels { levels: 2 })),
                "arm64-64k-va42" | "arm64-64k-va48" => {
                    assert!(matches!(got, Err(NoShare::NotSelected { .. })), "{}", f.name())
                }
                n => assert_eq!(got, Ok(()), "{n}"),
            }
            // Where sharing is possible, a PMD table is its own page under a PUD(-acting) entry.
            if got.is_ok() {
                assert!(f.levels().len() >= 3);
                assert_eq!(f.levels()[f.pmd_level()].linux, LinuxLevel::Pmd);
            }
        }
    }
}
