//! Page-table formats and per-architecture facts.
//!
//! This crate owns *what the hardware and the kernel's arch code say*: how many levels a
//! configuration walks, which virtual-address bits index each level, the real bit layout of
//! table, block and page descriptors, the hugetlb sizes, whether hugetlb PMD sharing is possible
//! (and why not), and the default table-free and TLB-flush policies.
//!
//! Invariant: pure data and functions. No simulator state, no I/O, no allocation on the
//! encode/decode path. Everything here is `'static` and `Sync`.

mod config;
mod entry;
mod format;
pub mod riscv64;
pub mod x86_64;

pub use config::{ArchConfig, TableFree, TlbFlush};
pub use entry::{DecodeError, Entry, LeafFlags};
pub use format::{Arch, HugeSize, LevelInfo, LinuxLevel, NoShare};

/// Every page-table format mmsim knows, by its canonical name.
pub fn formats() -> &'static [&'static dyn Arch] {
    &FORMATS
}

static FORMATS: [&dyn Arch; 5] =
    [&x86_64::X86_64_4LEVEL, &x86_64::X86_64_LA57, &riscv64::SV39, &riscv64::SV48, &riscv64::SV57];

/// Look a page-table format up by name (`x86_64`, ...).
pub fn format_by_name(name: &str) -> Option<&'static dyn Arch> {
    formats().iter().copied().find(|a| a.name() == name)
}
