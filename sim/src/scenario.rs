//! Scenarios: what to set up, and what each simulated CPU runs concurrently.
//!
//! A scenario is a RON document (see `sim/scenarios/*.ron`). Addresses and lengths are bytes
//! (`0x40000000`) or expressions in units that scale with the architecture (`"PUD"`,
//! `"2*PMD"`, `"PUD+PMD"`); resolving them against an arch never changes their meaning
//! silently: a byte value that is misaligned for the chosen arch is an error saying so.

use mmsim_arch::Arch;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A scenario as written.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub doc: String,
    /// Default architecture configuration (`--arch` overrides).
    #[serde(default)]
    pub arch: Option<String>,
    /// Default kernel profile (`--profile` overrides).
    #[serde(default)]
    pub profile: Option<String>,
    /// Switch overrides, `name=value`, applied before the CLI's `--set`.
    #[serde(default)]
    pub set: Vec<String>,
    #[serde(default)]
    pub setup: Vec<SetupOp>,
    pub cpus: Vec<CpuSpec>,
}

/// An address or length: bytes, or an expression in arch units.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Quantity {
    Bytes(u64),
    Expr(String),
}

/// By hand rather than `untagged`, so that `-1` or `2^64` says what a quantity may be.
impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Quantity;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a number of bytes from 0 to 2^64-1, or an expression such as \"PUD+2*PMD\"",
                )
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Quantity, E> {
                Ok(Quantity::Bytes(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Quantity, E> {
                u64::try_from(v)
                    .map(Quantity::Bytes)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
            }
            // RON reads an integer past 2^64-1 as a float
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Quantity, E> {
                Err(E::custom("a number of bytes is a whole number from 0 to 2^64-1"))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Quantity, E> {
                Ok(Quantity::Expr(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub enum SetupOp {
    /// `mmap()` of a hugetlbfs file (huge pages of `PMD_SIZE`).
    MapFile {
        mm: String,
        file: String,
        at: Quantity,
        len: Quantity,
        #[serde(default = "yes")]
        shared: bool,
        #[serde(default)]
        offset: Option<Quantity>,
        /// Make `hugetlb_vma_lock_alloc()` fail (the VMA then never shares).
        #[serde(default)]
        fail_vma_lock_alloc: bool,
    },
    /// A write fault at `at` (`hugetlb_fault()`, or `do_anonymous_page()` in anonymous memory).
    Touch { mm: String, at: Quantity },
    /// `mmap(MAP_PRIVATE | MAP_ANONYMOUS)`: ordinary pages in PTE tables.
    MapAnon { mm: String, at: Quantity, len: Quantity },
    /// `fork()` of `mm` into the new process `child` (hugetlbfs mappings only: private ones
    /// are shared copy-on-write).
    Fork { mm: String, child: String },
}

fn yes() -> bool {
    true
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CpuSpec {
    pub mm: String,
    pub ops: Vec<CpuOp>,
}

/// An operation a CPU runs in the concurrent phase.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub enum CpuOp {
    /// Slow GUP: `MADV_POPULATE_WRITE` -> `__get_user_pages()` -> `follow_hugetlb_page()`.
    GupSlow { at: Quantity },
    /// GUP-fast: `get_user_pages_fast()` -> `gup_fast()`, lockless with IRQs off.
    GupFast { at: Quantity },
    /// `madvise(MADV_DONTNEED)`.
    MadviseDontneed { at: Quantity, len: Quantity },
    /// `munmap()`; a range that covers part of a mapping splits it (`__split_vma()`).
    Munmap { at: Quantity, len: Quantity },
    /// `mmap(MAP_FIXED)` of a hugetlbfs file over `[at, at + len)`: whatever the range overlaps
    /// is unmapped first, splitting straddling mappings.
    MmapFixed {
        file: String,
        at: Quantity,
        len: Quantity,
        #[serde(default = "yes")]
        shared: bool,
        #[serde(default)]
        offset: Option<Quantity>,
    },
    /// `mmap(MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS)` over `[at, at + len)`.
    MmapFixedAnon { at: Quantity, len: Quantity },
    /// `fork()` into the process `child`, a name no setup mapping uses: `dup_mmap()` copies
    /// this CPU's mm's VMAs (hugetlbfs mappings only) and `copy_hugetlb_page_range()`: for a
    /// private mapping always (copy-on-write), for a shared one where the profile copies page
    /// tables at fork.
    Fork { child: String },
    /// `mprotect()` of a range inside one mapping (a part splits it); `write: false` makes the
    /// range read-only.
    Mprotect { at: Quantity, len: Quantity, write: bool },
    /// A user load (`write: false`) or store through the MMU: TLB, hardware walk, and a page
    /// fault if the translation is missing.
    Access {
        at: Quantity,
        #[serde(default)]
        write: bool,
    },
    /// A PFN walker takes and drops a temporary reference on the PMD table mapping `at`.
    TempRef { at: Quantity },
    /// `fallocate(FALLOC_FL_PUNCH_HOLE)` on a file: unmaps the hole from every process.
    PunchHole { file: String, offset: Quantity, len: Quantity },
    /// A user access that faults: `hugetlb_fault()`.
    Fault {
        at: Quantity,
        #[serde(default = "yes")]
        write: bool,
    },
}

/// An operation with concrete numbers for one arch, as the kernel model runs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    MapFile {
        file: u8,
        at: u64,
        len: u64,
        shared: bool,
        pgoff: u64,
        fail_vma_lock_alloc: bool,
    },
    MapAnon {
        at: u64,
        len: u64,
    },
    Fault {
        at: u64,
        write: bool,
    },
    Access {
        at: u64,
        write: bool,
    },
    TempRef {
        at: u64,
    },
    /// Punch the file pages `[first, last)` (in huge pages) out of file `file`.
    PunchHole {
        file: u8,
        first: u64,
        last: u64,
    },
    GupSlow {
        at: u64,
    },
    GupFast {
        at: u64,
    },
    MadviseDontneed {
        at: u64,
        len: u64,
    },
    Munmap {
        at: u64,
        len: u64,
    },
    /// `mmap(MAP_FIXED)`: a hugetlbfs file (`file`) or anonymous memory (`None`).
    MmapFixed {
        file: Option<u8>,
        at: u64,
        len: u64,
        shared: bool,
        pgoff: u64,
    },
    Mprotect {
        at: u64,
        len: u64,
        write: bool,
    },
    /// `fork()` into the mm `child`.
    Fork {
        child: u8,
    },
    /// `exit_mmap()`, run for every mm at teardown.
    ExitMmap,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Op::MapFile { file, at, len, shared, .. } => write!(
                f,
                "mmap(0x{at:x}, 0x{len:x}, {}, file{file})",
                if shared { "MAP_SHARED" } else { "MAP_PRIVATE" }
            ),
            Op::MapAnon { at, len } => {
                write!(f, "mmap(0x{at:x}, 0x{len:x}, MAP_PRIVATE|MAP_ANONYMOUS)")
            }
            Op::Fault { at, write } => {
                write!(f, "{} fault 0x{at:x}", if write { "write" } else { "read" })
            }
            Op::Access { at, write } => {
                write!(f, "user {} 0x{at:x}", if write { "store" } else { "load" })
            }
            Op::TempRef { at } => write!(f, "get_page/put_page on the PMD table of 0x{at:x}"),
            Op::PunchHole { file, first, last } => {
                write!(f, "fallocate(file{file}, PUNCH_HOLE, huge pages {first}..{last})")
            }
            Op::GupSlow { at } => write!(f, "madvise(0x{at:x}, MADV_POPULATE_WRITE)"),
            Op::GupFast { at } => write!(f, "get_user_pages_fast(0x{at:x})"),
            Op::MadviseDontneed { at, len } => {
                write!(f, "madvise(0x{at:x}, 0x{len:x}, MADV_DONTNEED)")
            }
            Op::Munmap { at, len } => write!(f, "munmap(0x{at:x}, 0x{len:x})"),
            Op::MmapFixed { file: Some(file), at, len, shared, .. } => write!(
                f,
                "mmap(0x{at:x}, 0x{len:x}, MAP_FIXED|{}, file{file})",
                if shared { "MAP_SHARED" } else { "MAP_PRIVATE" }
            ),
            Op::MmapFixed { file: None, at, len, .. } => {
                write!(f, "mmap(0x{at:x}, 0x{len:x}, MAP_FIXED|MAP_PRIVATE|MAP_ANONYMOUS)")
            }
            Op::Mprotect { at, len, write } => write!(
                f,
                "mprotect(0x{at:x}, 0x{len:x}, {})",
                if write { "PROT_READ|PROT_WRITE" } else { "PROT_READ" }
            ),
            Op::Fork { child } => write!(f, "fork() into mm{child}"),
            Op::ExitMmap => write!(f, "exit_mmap"),
        }
    }
}

/// A scenario resolved against one arch: numbers are bytes, names are indices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub name: String,
    pub mm_names: Vec<String>,
    pub file_names: Vec<String>,
    /// Size of each file in huge pages.
    pub file_pages: Vec<u64>,
    /// Setup operations as (mm, op), run in order before the concurrent phase.
    pub setup: Vec<(u8, Op)>,
    /// Per CPU: its mm and operations.
    pub cpus: Vec<(u8, Vec<Op>)>,
}

/// Why a scenario cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{origin}:{line}:{col}: {msg}")]
    Parse { origin: String, line: usize, col: usize, msg: String },
    #[error("{origin}: {field}: {msg}")]
    Invalid { origin: String, field: String, msg: String },
    #[error(
        "unknown scenario `{0}`: not a built-in name (see `mmsim scenarios`) and no such file"
    )]
    Unknown(String),
    #[error("{origin}: {source}")]
    Io { origin: String, source: std::io::Error },
}

/// Mappings one mm may have (bounded so kernel paths keep fixed-size state).
pub const MAX_MAPPINGS: usize = 8;

/// VMAs one mm may reach, splits included: every munmap or `mmap(MAP_FIXED)` can add two.
pub const MAX_VMAS: usize = 16;

/// Operations in setup, and per CPU (the engine counts them in a `u16`; a run this long
/// would only meet the step limit).
pub const MAX_OPS: usize = 1024;

/// Levels of brackets and parentheses the scenario reader follows (deeper is an error, not a
/// stack overflow).
pub const MAX_NESTING: usize = 128;

/// Distinct files a scenario may map (files are numbered in a `u8`).
pub const MAX_FILES: usize = 64;

/// Size of one file in huge pages, offset included: its page cache is a table of this many
/// slots, copied with every simulated state (8192 is one PUD range on arm64 with 64K pages).
pub const MAX_FILE_PAGES: u64 = 65536;

/// Built-in scenarios: (name, RON source).
pub const BUILTIN: &[(&str, &str)] = &[
    ("gup-vs-unshare", include_str!("../scenarios/gup-vs-unshare.ron")),
    ("fault-vs-unshare", include_str!("../scenarios/fault-vs-unshare.ron")),
    ("share-pud-lock", include_str!("../scenarios/share-pud-lock.ron")),
    ("gup-vs-mprotect", include_str!("../scenarios/gup-vs-mprotect.ron")),
    ("tlb-walk-cache", include_str!("../scenarios/tlb-walk-cache.ron")),
    ("refcount-share", include_str!("../scenarios/refcount-share.ron")),
    ("gup-fast-vs-munmap", include_str!("../scenarios/gup-fast-vs-munmap.ron")),
    ("ptlock-early-free", include_str!("../scenarios/ptlock-early-free.ron")),
    ("punch-hole-nolock", include_str!("../scenarios/punch-hole-nolock.ron")),
    ("anon-fault-munmap", include_str!("../scenarios/anon-fault-munmap.ron")),
    ("unshare-addr", include_str!("../scenarios/unshare-addr.ron")),
    ("split-unshare", include_str!("../scenarios/split-unshare.ron")),
    ("fork-copy-shared", include_str!("../scenarios/fork-copy-shared.ron")),
    ("gup-stale-walk", include_str!("../scenarios/gup-stale-walk.ron")),
    ("gup-vs-reuse", include_str!("../scenarios/gup-vs-reuse.ron")),
    ("gup-fast-vs-reuse", include_str!("../scenarios/gup-fast-vs-reuse.ron")),
    ("split-vs-vma-locked-fault", include_str!("../scenarios/split-vs-vma-locked-fault.ron")),
    ("fork-cow-private", include_str!("../scenarios/fork-cow-private.ron")),
];

/// Scenario text and where it came from.
#[derive(Clone, Debug)]
pub struct Source {
    /// File path, or `builtin:NAME`.
    pub origin: String,
    pub text: String,
}

impl Source {
    /// A built-in scenario by name, else a file path.
    pub fn load(name_or_path: &str) -> Result<Source, ScenarioError> {
        if let Some((n, text)) = BUILTIN.iter().find(|(n, _)| *n == name_or_path) {
            return Ok(Source { origin: format!("builtin:{n}"), text: text.to_string() });
        }
        let path = std::path::Path::new(name_or_path);
        if !path.exists() {
            return Err(ScenarioError::Unknown(name_or_path.into()));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|source| ScenarioError::Io { origin: name_or_path.into(), source })?;
        Ok(Source { origin: name_or_path.into(), text })
    }

    pub fn parse(&self) -> Result<Scenario, ScenarioError> {
        let options = ron::Options::default().with_recursion_limit(MAX_NESTING);
        options.from_str::<Scenario>(&self.text).map_err(|e| ScenarioError::Parse {
            origin: self.origin.clone(),
            line: e.span.start.line,
            col: e.span.start.col,
            msg: match e.code {
                ron::Error::ExceededRecursionLimit => {
                    format!("nested more than {MAX_NESTING} levels deep")
                }
                code => code.to_string(),
            },
        })
    }
}

/// Evaluate a quantity for `arch`: bytes as given, or `k*UNIT + ...` with UNIT one of
/// `PUD`, `PMD`, `PAGE`, `K`, `M`, `G` (binary) or a number.
pub fn eval(q: &Quantity, arch: &dyn Arch) -> Result<u64, String> {
    match q {
        Quantity::Bytes(b) => Ok(*b),
        Quantity::Expr(e) => {
            let mut total: u64 = 0;
            for term in e.split('+') {
                let mut product: u64 = 1;
                for factor in term.split('*') {
                    let f = factor.trim();
                    let v = match f {
                        "PUD" => arch.pud_size(),
                        "PMD" => arch.pmd_size(),
                        "PAGE" => arch.page_size(),
                        "K" => 1 << 10,
                        "M" => 1 << 20,
                        "G" => 1 << 30,
                        _ => parse_number(f).ok_or_else(|| {
                            let digits = f.strip_prefix("0x").map_or_else(
                                || f.bytes().all(|b| b.is_ascii_digit() || b == b'_'),
                                |h| h.bytes().all(|b| b.is_ascii_hexdigit() || b == b'_'),
                            );
                            if digits && f.bytes().any(|b| b.is_ascii_hexdigit()) {
                                format!("`{f}` in `{e}` overflows: numbers are at most 2^64-1")
                            } else {
                                format!(
                                    "`{f}` in `{e}` is not a number or one of PUD, PMD, PAGE, K, M, G"
                                )
                            }
                        })?,
                    };
                    product = product.checked_mul(v).ok_or_else(|| format!("`{e}` overflows"))?;
                }
                total = total.checked_add(product).ok_or_else(|| format!("`{e}` overflows"))?;
            }
            Ok(total)
        }
    }
}

fn parse_number(s: &str) -> Option<u64> {
    if let Some(h) = s.strip_prefix("0x") {
        u64::from_str_radix(&h.replace('_', ""), 16).ok()
    } else {
        s.replace('_', "").parse().ok()
    }
}

impl Scenario {
    /// The scenario as RON text (used when a tool derives a new scenario, e.g. minimisation).
    pub fn to_ron(&self) -> String {
        let cfg = ron::ser::PrettyConfig::new().depth_limit(3).struct_names(true);
        ron::ser::to_string_pretty(self, cfg)
            .unwrap_or_else(|e| format!("// cannot serialise: {e}"))
    }

    /// Resolve names and quantities for `arch`, checking what the kernel would refuse.
    pub fn resolve(&self, origin: &str, arch: &dyn Arch) -> Result<Resolved, ScenarioError> {
        let invalid = |field: String, msg: String| ScenarioError::Invalid {
            origin: origin.to_string(),
            field,
            msg,
        };
        let mut r = Resolved {
            name: self.name.clone(),
            mm_names: Vec::new(),
            file_names: Vec::new(),
            file_pages: Vec::new(),
            setup: Vec::new(),
            cpus: Vec::new(),
        };
        let huge = arch.pmd_size();
        let limit = arch.task_size();
        let mm_index = |names: &mut Vec<String>, n: &str| -> u8 {
            match names.iter().position(|x| x == n) {
                Some(i) => i as u8,
                None => {
                    names.push(n.to_string());
                    (names.len() - 1) as u8
                }
            }
        };
        let q = |field: String, v: &Quantity| eval(v, arch).map_err(|m| invalid(field, m));
        // a file offset must be huge-page aligned
        let huge_offset = |field: String,
                           offset: &Option<Quantity>|
         -> Result<u64, ScenarioError> {
            let off = match offset {
                Some(o) => q(field.clone(), o)?,
                None => 0,
            };
            if !off.is_multiple_of(huge) {
                return Err(invalid(field, format!("offset 0x{off:x} is not huge-page aligned")));
            }
            Ok(off)
        };
        // the file's index, its page count grown to cover a mapping of `len` bytes at file
        // offset `off`; `field` names what made the file too big or too many
        let file_window = |r: &mut Resolved,
                           field: String,
                           file: &str,
                           off: u64,
                           len: u64|
         -> Result<u8, ScenarioError> {
            let pages = off.checked_add(len).map(|end| end / huge);
            if pages.is_none_or(|p| p > MAX_FILE_PAGES) {
                return Err(invalid(
                    field,
                    format!(
                        "file `{file}` would be {} bytes long (offset 0x{off:x} + length 0x{len:x}); \
                         at most {MAX_FILE_PAGES} huge pages (0x{:x} bytes on {}) per file are supported",
                        off.checked_add(len).map_or("more than 2^64".into(), |e| format!("0x{e:x}")),
                        MAX_FILE_PAGES * huge,
                        arch.name()
                    ),
                ));
            }
            if !r.file_names.iter().any(|n| n == file) && r.file_names.len() >= MAX_FILES {
                return Err(invalid(
                    field,
                    format!("file `{file}` is one file too many: at most {MAX_FILES} files are supported"),
                ));
            }
            let f = mm_index(&mut r.file_names, file);
            if r.file_pages.len() <= f as usize {
                r.file_pages.push(0);
            }
            r.file_pages[f as usize] = r.file_pages[f as usize].max(pages.unwrap_or(0));
            Ok(f)
        };
        let page = arch.page_size();
        // `align`: the huge page size for hugetlb mappings, else the base page size
        let range_aligned =
            |field: String, at: u64, len: u64, align: u64| -> Result<(), ScenarioError> {
                if !at.is_multiple_of(align) || !len.is_multiple_of(align) {
                    let what = if align == huge { "the huge page size" } else { "the page size" };
                    return Err(invalid(
                        field,
                        format!(
                            "range 0x{at:x}+0x{len:x} is not aligned to {what} 0x{align:x} of {} \
                         (write it in units such as \"PMD\" or \"PUD\" to scale with the arch)",
                            arch.name()
                        ),
                    ));
                }
                if len == 0 || at.checked_add(len).is_none_or(|end| end > limit) {
                    return Err(invalid(
                        field,
                        format!(
                        "range 0x{at:x}+0x{len:x} is empty or beyond the user address space of {} \
                        (TASK_SIZE 0x{limit:x})",
                        arch.name()
                    ),
                    ));
                }
                if at == 0 {
                    return Err(invalid(field, "address 0 is below mmap_min_addr".into()));
                }
                Ok(())
            };
        let range = |field: String, at: u64, len: u64| range_aligned(field, at, len, huge);
        let page_range = |field: String, at: u64, len: u64| range_aligned(field, at, len, page);
        if self.setup.len() > MAX_OPS {
            return Err(invalid(
                "setup".into(),
                format!(
                    "{} operations given; at most {MAX_OPS} operations are supported",
                    self.setup.len()
                ),
            ));
        }
        for (i, op) in self.setup.iter().enumerate() {
            let field = |f: &str| format!("setup[{i}].{f}");
            match op {
                SetupOp::MapFile { mm, file, at, len, shared, offset, fail_vma_lock_alloc } => {
                    let at_v = q(field("at"), at)?;
                    let len_v = q(field("len"), len)?;
                    range(field("at"), at_v, len_v)?;
                    let off = huge_offset(field("offset"), offset)?;
                    let m = mm_index(&mut r.mm_names, mm);
                    let f = file_window(&mut r, field("len"), file, off, len_v)?;
                    r.setup.push((
                        m,
                        Op::MapFile {
                            file: f,
                            at: at_v,
                            len: len_v,
                            shared: *shared,
                            pgoff: off >> arch.page_shift(),
                            fail_vma_lock_alloc: *fail_vma_lock_alloc,
                        },
                    ));
                }
                SetupOp::MapAnon { mm, at, len } => {
                    let (a, l) = (q(field("at"), at)?, q(field("len"), len)?);
                    page_range(field("at"), a, l)?;
                    let m = mm_index(&mut r.mm_names, mm);
                    r.setup.push((m, Op::MapAnon { at: a, len: l }));
                }
                SetupOp::Fork { mm, child } => {
                    let m = mm_index(&mut r.mm_names, mm);
                    let c = mm_index(&mut r.mm_names, child);
                    r.setup.push((m, Op::Fork { child: c }));
                }
                SetupOp::Touch { mm, at } => {
                    let at_v = q(field("at"), at)?;
                    let m = mm_index(&mut r.mm_names, mm);
                    r.setup.push((m, Op::Fault { at: at_v, write: true }));
                }
            }
        }
        if self.cpus.is_empty() || self.cpus.len() > crate::model::cpu::MAX_CPUS {
            return Err(invalid(
                "cpus".into(),
                format!(
                    "{} CPUs given; between 1 and {} are supported",
                    self.cpus.len(),
                    crate::model::cpu::MAX_CPUS
                ),
            ));
        }
        for (c, cpu) in self.cpus.iter().enumerate() {
            if cpu.ops.len() > MAX_OPS {
                return Err(invalid(
                    format!("cpus[{c}].ops"),
                    format!(
                        "{} operations given; at most {MAX_OPS} operations per CPU are supported",
                        cpu.ops.len()
                    ),
                ));
            }
            let m = mm_index(&mut r.mm_names, &cpu.mm);
            let mut ops = Vec::new();
            for (i, op) in cpu.ops.iter().enumerate() {
                let field = |f: &str| format!("cpus[{c}].ops[{i}].{f}");
                ops.push(match op {
                    CpuOp::GupSlow { at } => Op::GupSlow { at: q(field("at"), at)? },
                    CpuOp::GupFast { at } => Op::GupFast { at: q(field("at"), at)? },
                    CpuOp::TempRef { at } => Op::TempRef { at: q(field("at"), at)? },
                    CpuOp::PunchHole { file, offset, len } => {
                        let (o, l) = (q(field("offset"), offset)?, q(field("len"), len)?);
                        let f = r.file_names.iter().position(|n| n == file).ok_or_else(|| {
                            invalid(field("file"), format!("no file `{file}` is mapped in setup"))
                        })?;
                        if !o.is_multiple_of(huge) || !l.is_multiple_of(huge) || l == 0 {
                            return Err(invalid(
                                field("offset"),
                                format!("hole 0x{o:x}+0x{l:x} is not a whole number of huge pages (0x{huge:x})"),
                            ));
                        }
                        // a hole past the end of the file punches nothing there: clamp it
                        let last = o.checked_add(l).map_or(u64::MAX / huge, |end| end / huge);
                        Op::PunchHole { file: f as u8, first: o / huge, last }
                    }
                    CpuOp::Access { at, write } => {
                        Op::Access { at: q(field("at"), at)?, write: *write }
                    }
                    CpuOp::Fault { at, write } => {
                        Op::Fault { at: q(field("at"), at)?, write: *write }
                    }
                    CpuOp::MadviseDontneed { at, len } => {
                        let (a, l) = (q(field("at"), at)?, q(field("len"), len)?);
                        page_range(field("at"), a, l)?;
                        Op::MadviseDontneed { at: a, len: l }
                    }
                    CpuOp::Munmap { at, len } => {
                        let (a, l) = (q(field("at"), at)?, q(field("len"), len)?);
                        page_range(field("at"), a, l)?;
                        Op::Munmap { at: a, len: l }
                    }
                    CpuOp::MmapFixed { file, at, len, shared, offset } => {
                        let (a, l) = (q(field("at"), at)?, q(field("len"), len)?);
                        range(field("at"), a, l)?;
                        let off = huge_offset(field("offset"), offset)?;
                        let f = file_window(&mut r, field("len"), file, off, l)?;
                        Op::MmapFixed {
                            file: Some(f),
                            at: a,
                            len: l,
                            shared: *shared,
                            pgoff: off >> arch.page_shift(),
                        }
                    }
                    CpuOp::Fork { child } => Op::Fork { child: mm_index(&mut r.mm_names, child) },
                    CpuOp::MmapFixedAnon { at, len } => {
                        let (a, l) = (q(field("at"), at)?, q(field("len"), len)?);
                        page_range(field("at"), a, l)?;
                        Op::MmapFixed { file: None, at: a, len: l, shared: false, pgoff: 0 }
                    }
                    CpuOp::Mprotect { at, len, write } => {
                        let (a, l) = (q(field("at"), at)?, q(field("len"), len)?);
                        page_range(field("at"), a, l)?;
                        Op::Mprotect { at: a, len: l, write: *write }
                    }
                });
            }
            r.cpus.push((m, ops));
        }
        if r.mm_names.len() > 8 {
            return Err(invalid("mm".into(), "at most 8 processes (mms) are supported".into()));
        }
        self.check_ranges(&r, huge).map_err(|(f, m)| invalid(f, m))?;
        Ok(r)
    }

    /// Mapping limits and overlaps in setup; a partial mprotect (a split this model does not
    /// do) and a munmap or `mmap(MAP_FIXED)` that would split a hugetlb mapping off a huge-page
    /// boundary (`-EINVAL`) are refused with the reason.
    fn check_ranges(&self, r: &Resolved, huge: u64) -> Result<(), (String, String)> {
        let mut maps: Vec<(u8, u64, u64)> = Vec::new();
        let mut huge_maps: Vec<(u8, u64, u64)> = Vec::new();
        for (m, op) in &r.setup {
            if let Op::MapFile { at, len, .. } = *op {
                huge_maps.push((*m, at, len));
            }
            if let Op::MapFile { at, len, .. } | Op::MapAnon { at, len } = *op {
                if maps.iter().filter(|&&(mm, _, _)| mm == *m).count() >= MAX_MAPPINGS {
                    return Err((
                        "setup".into(),
                        format!(
                            "more than {MAX_MAPPINGS} mappings in mm {}",
                            r.mm_names[*m as usize]
                        ),
                    ));
                }
                if maps.iter().any(|&(mm, a, l)| mm == *m && at < a + l && a < at + len) {
                    return Err((
                        "setup".into(),
                        format!(
                            "mmap at 0x{at:x} overlaps an earlier mapping of mm {}",
                            r.mm_names[*m as usize]
                        ),
                    ));
                }
                maps.push((*m, at, len));
            }
        }
        let forks = r
            .setup
            .iter()
            .enumerate()
            .map(|(i, (m, op))| (format!("setup[{i}]"), *m, *op))
            .chain(r.cpus.iter().enumerate().flat_map(|(c, (m, ops))| {
                ops.iter().enumerate().map(move |(i, op)| (format!("cpus[{c}].ops[{i}]"), *m, *op))
            }));
        let mut children: Vec<u8> = Vec::new();
        for (field, m, op) in forks {
            let Op::Fork { child } = op else { continue };
            let name = |x: u8| r.mm_names[x as usize].clone();
            if child == m || maps.iter().any(|&(mm, _, _)| mm == child) || children.contains(&child)
            {
                return Err((
                    field,
                    format!(
                        "fork() needs a new process as child, but mm {} already exists",
                        name(child)
                    ),
                ));
            }
            children.push(child);
            // private hugetlb mappings are copied on write; private anonymous (PTE) memory
            // is not (no copy_pte_range())
            let anon = r.setup.iter().any(|(mm, op)| *mm == m && matches!(op, Op::MapAnon { .. }))
                || r.cpus.iter().any(|(mm, ops)| {
                    *mm == m && ops.iter().any(|op| matches!(op, Op::MmapFixed { file: None, .. }))
                });
            if anon {
                return Err((
                    field,
                    format!("fork() of mm {} with anonymous memory: copy-on-write of PTE-mapped anonymous pages at fork is not modelled (fork processes with hugetlbfs mappings, shared or private, only)", name(m)),
                ));
            }
        }
        // a munmap or mmap(MAP_FIXED) in the middle of a mapping leaves one VMA more, and a
        // new one; a fork gives the child as many as its parent
        let mut bound: Vec<usize> = (0..r.mm_names.len())
            .map(|mm| maps.iter().filter(|&&(m, _, _)| m as usize == mm).count())
            .collect();
        let all_ops = r
            .setup
            .iter()
            .map(|(m, op)| (*m, *op))
            .chain(r.cpus.iter().flat_map(|(m, ops)| ops.iter().map(move |op| (*m, *op))));
        for (m, op) in all_ops {
            match op {
                Op::Munmap { .. } | Op::MmapFixed { .. } | Op::Mprotect { .. } => {
                    bound[m as usize] = bound[m as usize].saturating_add(2)
                }
                // saturating: forks back and forth between two children grow like Fibonacci
                Op::Fork { child } => {
                    bound[child as usize] = bound[child as usize].saturating_add(bound[m as usize])
                }
                _ => {}
            }
        }
        if let Some(mm) = bound.iter().position(|&n| n > MAX_VMAS) {
            return Err((
                "cpus".into(),
                format!(
                    "mm {} could reach {} VMAs through its mappings and splits; at most {MAX_VMAS} are supported",
                    r.mm_names[mm], bound[mm]
                ),
            ));
        }
        for (c, (m, ops)) in r.cpus.iter().enumerate() {
            for (i, op) in ops.iter().enumerate() {
                if let Op::MadviseDontneed { at, len } = *op {
                    let in_huge =
                        huge_maps.iter().any(|&(mm, a, l)| mm == *m && a <= at && at < a + l);
                    if in_huge && (!at.is_multiple_of(huge) || !len.is_multiple_of(huge)) {
                        return Err((
                            format!("cpus[{c}].ops[{i}]"),
                            format!("MADV_DONTNEED 0x{at:x}+0x{len:x} in a hugetlb mapping is not aligned to the huge page size 0x{huge:x}"),
                        ));
                    }
                }
                if let Op::Mprotect { at, len, .. } = *op {
                    let inside =
                        maps.iter().any(|&(mm, a, l)| mm == *m && a <= at && at + len <= a + l);
                    if !inside {
                        return Err((
                            format!("cpus[{c}].ops[{i}]"),
                            format!("mprotect 0x{at:x}+0x{len:x} is not inside one mapping: an mprotect over several VMAs or holes is not modelled"),
                        ));
                    }
                }
                if let Op::Munmap { at, len }
                | Op::MmapFixed { at, len, .. }
                | Op::Mprotect { at, len, .. } = *op
                {
                    // hugetlb_vm_op_split(): a split of a hugetlb VMA off a huge-page boundary
                    // is -EINVAL; say so instead of running a call that does nothing
                    for cut in [at, at + len] {
                        let straddled = huge_maps
                            .iter()
                            .find(|&&(mm, a, l)| mm == *m && a < cut && cut < a + l);
                        if let (Some(&(_, a, l)), false) = (straddled, cut.is_multiple_of(huge)) {
                            return Err((
                                format!("cpus[{c}].ops[{i}]"),
                                format!("0x{at:x}+0x{len:x} would split the hugetlb mapping 0x{a:x}+0x{l:x} at 0x{cut:x}, which is not aligned to the huge page size 0x{huge:x}: the kernel refuses the split with -EINVAL (hugetlb_vm_op_split)"),
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mmsim_arch::x86_64::X86_64_4LEVEL;

    #[test]
    fn builtins_parse_and_resolve() {
        for (name, _) in BUILTIN {
            let s = Source::load(name).unwrap();
            let sc = s.parse().unwrap();
            sc.resolve(&s.origin, &X86_64_4LEVEL).unwrap();
        }
    }

    #[test]
    fn expressions_scale_with_arch() {
        let a = &X86_64_4LEVEL;
        assert_eq!(eval(&Quantity::Expr("PUD".into()), a).unwrap(), 1 << 30);
        assert_eq!(eval(&Quantity::Expr("2*PMD + PUD".into()), a).unwrap(), (1 << 30) + (4 << 20));
        assert!(eval(&Quantity::Expr("3*LOTS".into()), a).is_err());
    }

    #[test]
    fn syntax_error_names_line_and_column() {
        let s = Source {
            origin: "bad.ron".into(),
            text: "Scenario(\n  name: \"x\",\n  cpus: [ (mm: \"A\" ops: []) ],\n)".into(),
        };
        let e = s.parse().unwrap_err().to_string();
        assert!(e.starts_with("bad.ron:3:"), "{e}");
    }

    #[test]
    fn unknown_operation_is_named() {
        let s = Source {
            origin: "op.ron".into(),
            text: "Scenario(name: \"x\", cpus: [ (mm: \"A\", ops: [Frobnicate(at: 1)]) ])".into(),
        };
        let e = s.parse().unwrap_err().to_string();
        assert!(e.contains("op.ron:1:") && e.contains("Frobnicate"), "{e}");
    }

    #[test]
    fn ranges_beyond_task_size_are_refused_per_arch() {
        let text = |at: &str| {
            format!(
                "Scenario(name: \"x\", setup: [MapFile(mm: \"A\", file: \"f\", at: {at}, len: \"PUD\")], cpus: [ (mm: \"A\", ops: []) ])"
            )
        };
        let resolve = |at: &str, arch: &dyn Arch| {
            let s = Source { origin: "big.ron".into(), text: text(at) };
            s.parse().unwrap().resolve(&s.origin, arch).map(|_| ())
        };
        // Sv39 user space is the lower 256 GiB; x86_64 stops one page below 128 TiB.
        let sv39 = mmsim_arch::format_by_name("riscv64-sv39").unwrap();
        assert!(resolve("\"255*G\"", sv39).is_ok());
        let e = resolve("\"256*G\"", sv39).unwrap_err().to_string();
        assert!(e.contains("beyond the user address space of riscv64-sv39"), "{e}");
        assert!(e.contains("TASK_SIZE 0x4000000000"), "{e}");
        assert!(resolve("\"131070*G\"", &X86_64_4LEVEL).is_ok());
        assert!(resolve("\"131071*G\"", &X86_64_4LEVEL).is_err());
        // arm64 user space has TTBR0 to itself: all of VA_BITS.
        let a = mmsim_arch::format_by_name("arm64-4k-va39").unwrap();
        assert!(resolve("\"511*G\"", a).is_ok());
    }

    #[test]
    fn misaligned_range_says_why() {
        let s = Source { origin: "mis.ron".into(), text: "Scenario(name: \"x\", setup: [MapFile(mm: \"A\", file: \"f\", at: 0x40001000, len: \"PUD\")], cpus: [ (mm: \"A\", ops: []) ])".into() };
        let e = s.parse().unwrap().resolve(&s.origin, &X86_64_4LEVEL).unwrap_err().to_string();
        assert!(e.contains("mis.ron: setup[0].at") && e.contains("not aligned"), "{e}");
    }
}

#[cfg(test)]
mod robustness {
    use super::*;
    use crate::run::{Prepared, Request};

    /// Deterministic single-character mutations of every built-in scenario: each must give a
    /// clear error or a runnable scenario, never a panic.
    #[test]
    fn mutated_scenarios_never_panic() {
        let replacements = ["", "0", "9", "\"", ")", ",", "x", "PUD", "0xfffffffffffff000", "-"];
        let mut ran = 0;
        for (name, text) in BUILTIN {
            let body = &text[text.find("Scenario(").unwrap()..];
            let mut pos = 7usize;
            for i in 0..120 {
                pos = (pos * 31 + 17 + i) % body.len();
                while !body.is_char_boundary(pos) {
                    pos -= 1;
                }
                let mut end = pos + body[pos..].chars().next().map_or(0, char::len_utf8);
                end = end.min(body.len());
                let mutated = format!(
                    "{}{}{}",
                    &body[..pos],
                    replacements[i % replacements.len()],
                    &body[end..]
                );
                let src = Source { origin: format!("{name}-mutant-{i}"), text: mutated };
                let req = Request { source: src, arch: None, profile: None, set: vec![] };
                if let Ok(p) = Prepared::new(&req) {
                    if ran < 12 {
                        let _ = p.run_seed(i as u64, false).unwrap();
                        ran += 1;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod round_trip {
    use super::*;

    #[test]
    fn serialised_scenarios_parse_back_to_the_same_resolution() {
        let arch = &mmsim_arch::x86_64::X86_64_4LEVEL;
        for (name, _) in BUILTIN {
            let s = Source::load(name).unwrap();
            let sc = s.parse().unwrap();
            let again = Source { origin: "again".into(), text: sc.to_ron() }.parse().unwrap();
            assert_eq!(sc.resolve("a", arch).unwrap(), again.resolve("a", arch).unwrap(), "{name}");
        }
    }
}

/// Property-based fuzzing of the scenario reader: address expressions against a u128 model,
/// token soup through parse and resolve on every arch configuration, and the size limits
/// (each with the crash it fixed). Fixed seeds: the same cases on every run.
#[cfg(test)]
pub(crate) mod fuzz {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngAlgorithm, RngSeed};

    /// A deterministic proptest configuration: `cases` cases from a fixed ChaCha seed, no
    /// persistence files, bounded shrinking.
    pub(crate) fn config(cases: u32, seed: u64) -> Config {
        Config {
            cases,
            rng_algorithm: RngAlgorithm::ChaCha,
            rng_seed: RngSeed::Fixed(seed),
            failure_persistence: None,
            max_shrink_iters: 2048,
            ..Config::default()
        }
    }

    /// A factor of an address expression, and its value under `arch` when it is one.
    fn factor() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => prop::sample::select(vec!["PUD", "PMD", "PAGE", "K", "M", "G"]).prop_map(String::from),
            3 => (0u64..4096).prop_map(|n| n.to_string()),
            1 => any::<u64>().prop_map(|n| n.to_string()),
            1 => any::<u64>().prop_map(|n| format!("0x{n:x}")),
            1 => (0u64..1 << 20).prop_map(|n| format!("1_{n:06}")),
            1 => prop::sample::select(vec![
                "", " ", "-1", "pud", "PUDD", "1e3", "0x", "0xg", "_", "٣", "18446744073709551616",
                "0x10000000000000000", "(PUD)", "2PMD", "\u{0}", "0X10", "1.5",
            ])
            .prop_map(String::from),
        ]
    }

    /// `factor`'s value as the grammar defines it, `None` if it is not a factor.
    fn model(f: &str, arch: &dyn Arch) -> Option<u128> {
        let f = f.trim();
        let v = match f {
            "PUD" => arch.pud_size(),
            "PMD" => arch.pmd_size(),
            "PAGE" => arch.page_size(),
            "K" => 1 << 10,
            "M" => 1 << 20,
            "G" => 1 << 30,
            _ => match f.strip_prefix("0x") {
                Some(h) => u64::from_str_radix(&h.replace('_', ""), 16).ok()?,
                None => f.replace('_', "").parse().ok()?,
            },
        };
        Some(u128::from(v))
    }

    /// `terms` joined as `a*b + c`, with the spacing varied.
    fn expression() -> impl Strategy<Value = (Vec<Vec<String>>, String)> {
        (prop::collection::vec(prop::collection::vec(factor(), 1..4), 1..4), any::<bool>())
            .prop_map(|(terms, spaced)| {
                let (plus, times) = if spaced { (" + ", " * ") } else { ("+", "*") };
                let text = terms.iter().map(|t| t.join(times)).collect::<Vec<_>>().join(plus);
                (terms, text)
            })
    }

    /// Parse errors name `origin:line:col` inside the text; invalid values name their field.
    pub(crate) fn check_error(e: &ScenarioError, src: &Source) -> Result<(), TestCaseError> {
        let shown = e.to_string();
        match e {
            ScenarioError::Parse { origin, line, col, msg } => {
                let lines = src.text.split('\n').count();
                prop_assert!(origin == &src.origin && !msg.is_empty(), "{shown}");
                prop_assert!(*line >= 1 && *line <= lines && *col >= 1, "{shown} ({lines} lines)");
                prop_assert!(shown.starts_with(&format!("{origin}:{line}:{col}: ")), "{shown}");
            }
            ScenarioError::Invalid { origin, field, msg } => {
                let known = ["setup", "cpus", "mm"].iter().any(|f| field.starts_with(f));
                prop_assert!(origin == &src.origin && known && !msg.is_empty(), "{shown}");
                prop_assert!(shown.starts_with(&format!("{origin}: {field}: ")), "{shown}");
            }
            other => prop_assert!(false, "parse or resolve gave {other:?}"),
        }
        Ok(())
    }

    /// Parse `src` and resolve it for every arch configuration: never a panic, errors that
    /// say where, and resolutions that keep to the limits.
    pub(crate) fn parse_and_resolve_everywhere(src: &Source) -> Result<(), TestCaseError> {
        let sc = match src.parse() {
            Ok(sc) => sc,
            Err(e) => return check_error(&e, src),
        };
        for cfg in mmsim_arch::configs() {
            match sc.resolve(&src.origin, cfg.format) {
                Err(e) => check_error(&e, src)?,
                Ok(r) => {
                    prop_assert!(r.setup.len() <= MAX_OPS);
                    prop_assert!(r.cpus.iter().all(|(_, ops)| ops.len() <= MAX_OPS));
                    prop_assert!((1..=crate::model::cpu::MAX_CPUS).contains(&r.cpus.len()));
                    prop_assert!(r.file_names.len() <= MAX_FILES && r.mm_names.len() <= 8);
                    prop_assert!(r.file_pages.iter().all(|&p| p <= MAX_FILE_PAGES));
                }
            }
        }
        Ok(())
    }

    /// Pieces of scenario syntax, valid and not, for token soup.
    const TOKENS: &[&str] = &[
        "Scenario(",
        "(",
        ")",
        "[",
        "]",
        ",",
        ":",
        "\"",
        "name: \"x\",",
        "cpus: [",
        "setup: [",
        "(mm: \"A\", ops: [",
        "mm: \"B\"",
        "ops:",
        "GupFast(at: \"PUD\")",
        "GupSlow(at: 0x40000000)",
        "Munmap(at: \"PUD\", len: \"PUD\")",
        "MapFile(mm: \"A\", file: \"f\", at: \"PUD\", len: \"PUD\")",
        "MapAnon(mm: \"A\", at: \"PUD\", len: \"PAGE\")",
        "Touch(mm: \"A\", at: \"PUD\")",
        "Fork(mm: \"A\", child: \"B\")",
        "Fork(child: \"A\")",
        "PunchHole(file: \"f\", offset: 0xffffffffffe00000, len: \"PMD\")",
        "offset: Some(0xffffffffffe00000)",
        "offset: Some(\"1000000*PUD\")",
        "len: \"1000000*PUD\"",
        "at: -1",
        "at: 18446744073709551616",
        "at: \"PMD*PMD*PMD*PMD\"",
        "set: [\"fault_lock=x\"],",
        "arch: Some(\"arm64-64k\"),",
        "profile: Some(\"v0\"),",
        "Some(",
        "None",
        "true",
        "1.5",
        "r#\"",
        "\"#",
        "//",
        "/*",
        "*/",
        "\n",
        " ",
        "\u{0}",
        "é",
        "#![enable(implicit_some)]",
    ];

    fn soup() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(TOKENS), 0..48).prop_map(|t| t.concat())
    }

    proptest! {
        #![proptest_config(config(2000, 0x5ce7_a410))]

        #[test]
        fn expressions_match_the_model_and_never_wrap((terms, text) in expression()) {
            for cfg in mmsim_arch::configs() {
                let arch = cfg.format;
                let got = eval(&Quantity::Expr(text.clone()), arch);
                let factors: Option<Vec<Vec<u128>>> = terms
                    .iter()
                    .map(|t| t.iter().map(|f| model(f, arch)).collect())
                    .collect();
                match factors {
                    // every factor is one: the exact value, or an overflow error
                    Some(terms) => {
                        let exact = terms.iter().try_fold(0u128, |sum, t| {
                            let p = t.iter().try_fold(1u128, |p, &f| {
                                p.checked_mul(f).filter(|&p| p <= u128::from(u64::MAX))
                            })?;
                            sum.checked_add(p).filter(|&s| s <= u128::from(u64::MAX))
                        });
                        match (exact, got) {
                            (Some(v), Ok(g)) => prop_assert_eq!(u128::from(g), v, "{}", text),
                            (None, Err(m)) => prop_assert!(m.contains("overflows"), "{}", m),
                            (e, g) => prop_assert!(false, "`{}`: model {:?}, eval {:?}", text, e, g),
                        }
                    }
                    None => {
                        let m = got.expect_err(&text);
                        prop_assert!(m.contains("is not a number") || m.contains("overflows"), "{}", m);
                        prop_assert!(m.contains(&format!("`{text}`")), "{}", m);
                    }
                }
            }
        }
    }

    proptest! {
        #![proptest_config(config(1000, 0x5ce7_a411))]

        #[test]
        fn token_soup_is_refused_with_a_place(body in soup(), wrapped in any::<bool>()) {
            let text = if wrapped { format!("Scenario(name: \"s\", cpus: [{body}]") } else { body };
            parse_and_resolve_everywhere(&Source { origin: "soup.ron".into(), text })?;
        }

        #[test]
        fn arbitrary_text_is_refused_with_a_place(text in any::<String>()) {
            parse_and_resolve_everywhere(&Source { origin: "any.ron".into(), text })?;
        }
    }

    /// One edit of a scenario's text; positions are taken modulo its length.
    #[derive(Clone, Debug)]
    enum Edit {
        Flip(usize, u8),
        Truncate(usize),
        Delete(usize, usize),
        Insert(usize, &'static str),
        /// Replace the n-th run of digits (in a number or an expression) with another.
        Number(usize, &'static str),
        /// Open `depth` brackets or parentheses.
        Nest(usize, usize, bool),
    }

    const NUMBERS: &[&str] = &[
        "0",
        "1",
        "-1",
        "-0x200000",
        "0x1",
        "4095",
        "1000000",
        "18446744073709551615",
        "18446744073709551616",
        "0xffffffffffffffff",
        "99999999999999999999999999",
        "1e9",
        "1.5",
    ];

    fn edit() -> impl Strategy<Value = Edit> {
        prop_oneof![
            2 => (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Edit::Flip(at, bit)),
            1 => any::<usize>().prop_map(Edit::Truncate),
            2 => (any::<usize>(), 1usize..32).prop_map(|(at, n)| Edit::Delete(at, n)),
            3 => (any::<usize>(), prop::sample::select(TOKENS)).prop_map(|(at, t)| Edit::Insert(at, t)),
            4 => (any::<usize>(), prop::sample::select(NUMBERS)).prop_map(|(n, to)| Edit::Number(n, to)),
            1 => (any::<usize>(), 1usize..400, any::<bool>()).prop_map(|(at, d, b)| Edit::Nest(at, d, b)),
        ]
    }

    fn apply(text: &str, edits: &[Edit]) -> String {
        let mut b = text.as_bytes().to_vec();
        for e in edits {
            let at = |i: usize| i % (b.len() + 1);
            match *e {
                Edit::Flip(i, bit) => {
                    if !b.is_empty() {
                        let i = i % b.len();
                        b[i] ^= 1 << bit;
                    }
                }
                Edit::Truncate(i) => b.truncate(at(i)),
                Edit::Delete(i, n) => {
                    let i = at(i);
                    b.drain(i..(i + n).min(b.len()));
                }
                Edit::Insert(i, t) => {
                    let i = at(i);
                    b.splice(i..i, t.bytes());
                }
                Edit::Nest(i, depth, square) => {
                    let i = at(i);
                    let open = if square { "[" } else { "(" }.repeat(depth);
                    b.splice(i..i, open.bytes());
                }
                Edit::Number(n, to) => {
                    let mut runs = Vec::new();
                    let mut i = 0;
                    while i < b.len() {
                        if b[i].is_ascii_digit() {
                            let start = i;
                            while i < b.len() && b[i].is_ascii_alphanumeric() {
                                i += 1;
                            }
                            runs.push(start..i);
                        } else {
                            i += 1;
                        }
                    }
                    if !runs.is_empty() {
                        let r = runs[n % runs.len()].clone();
                        b.splice(r, to.bytes());
                    }
                }
            }
        }
        String::from_utf8_lossy(&b).into_owned()
    }

    proptest! {
        #![proptest_config(config(2000, 0x5ce7_a412))]

        /// Mutants of every built-in scenario: parse and resolve on every arch, and where the
        /// CLI would run one, prepare it (a calibration run) and run a seed.
        #[test]
        fn mutated_builtins_never_panic(
            which in 0..BUILTIN.len(),
            edits in prop::collection::vec(edit(), 1..5),
        ) {
            let (name, text) = BUILTIN[which];
            let src = Source { origin: format!("{name}-mutant.ron"), text: apply(text, &edits) };
            parse_and_resolve_everywhere(&src)?;
            let req = crate::run::Request { source: src, arch: None, profile: None, set: vec![] };
            if let Ok(p) = crate::run::Prepared::new(&req) {
                prop_assert!(p.run_seed(1, false).is_ok());
            }
        }
    }

    fn resolve_x86(text: &str) -> Result<Resolved, String> {
        let s = Source { origin: "limit.ron".into(), text: text.into() };
        let sc = s.parse().map_err(|e| e.to_string())?;
        sc.resolve(&s.origin, &mmsim_arch::x86_64::X86_64_4LEVEL).map_err(|e| e.to_string())
    }

    fn map_with_offset(offset: &str) -> String {
        format!("Scenario(name: \"x\", setup: [MapFile(mm: \"A\", file: \"f\", at: \"PUD\", len: \"PUD\", offset: Some({offset}))], cpus: [(mm: \"A\", ops: [])])")
    }

    /// Was `attempt to add with overflow` on `offset + len`.
    #[test]
    fn regression_file_offset_plus_length_overflow_is_an_error() {
        let e = resolve_x86(&map_with_offset("0xffffffffffe00000")).unwrap_err();
        assert!(
            e.starts_with("limit.ron: setup[0].len: file `f` would be more than 2^64 bytes"),
            "{e}"
        );
        assert!(
            e.contains("at most 65536 huge pages (0x2000000000 bytes on x86_64) per file"),
            "{e}"
        );
    }

    /// Was an allocation of 2^41 page-cache slots at the first run (abort, not a panic).
    #[test]
    fn regression_a_file_larger_than_the_limit_is_refused_in_huge_pages() {
        let e = resolve_x86(&map_with_offset("0x4000000000000000")).unwrap_err();
        assert!(e.contains("file `f` would be 0x4000000040000000 bytes long"), "{e}");
        assert!(e.contains("at most 65536 huge pages"), "{e}");
        // the largest file allowed resolves: 128 GiB on x86_64 (offset + one PUD)
        assert!(resolve_x86(&map_with_offset("\"127*G\"")).is_ok());
        assert!(resolve_x86(&map_with_offset("\"128*G\"")).is_err());
    }

    /// Was `attempt to add with overflow` on the hole's end.
    #[test]
    fn regression_punch_hole_end_overflow_is_clamped() {
        let r = resolve_x86("Scenario(name: \"x\", setup: [MapFile(mm: \"A\", file: \"f\", at: \"PUD\", len: \"PUD\")], cpus: [(mm: \"A\", ops: [PunchHole(file: \"f\", offset: 0xffffffffffe00000, len: \"PMD\")])])").unwrap();
        let huge = 1u64 << 21;
        assert_eq!(
            r.cpus[0].1[0],
            Op::PunchHole { file: 0, first: 0xffffffffffe00000 / huge, last: u64::MAX / huge }
        );
    }

    /// Was `attempt to add with overflow` in the engine's `u16` operation counter.
    #[test]
    fn regression_operation_counts_are_limited() {
        let ops = vec!["GupFast(at: \"PUD\")"; MAX_OPS + 1].join(", ");
        let e = resolve_x86(&format!("Scenario(name: \"x\", cpus: [(mm: \"A\", ops: [{ops}])])"))
            .unwrap_err();
        assert_eq!(
            e,
            "limit.ron: cpus[0].ops: 1025 operations given; at most 1024 operations per CPU are supported"
        );
        let touches = vec!["Touch(mm: \"A\", at: \"PUD\")"; MAX_OPS + 1].join(", ");
        let e = resolve_x86(&format!(
            "Scenario(name: \"x\", setup: [{touches}], cpus: [(mm: \"A\", ops: [])])"
        ))
        .unwrap_err();
        assert!(e.starts_with("limit.ron: setup: 1025 operations given; at most 1024"), "{e}");
    }

    /// File numbers are a `u8`: more files than [`MAX_FILES`] wrapped around silently.
    #[test]
    fn files_beyond_the_limit_are_refused() {
        let maps: Vec<String> = (0..=MAX_FILES)
            .map(|i| format!("MmapFixed(file: \"f{i}\", at: \"{}*PUD\", len: \"PMD\")", i + 1))
            .collect();
        let e = resolve_x86(&format!(
            "Scenario(name: \"x\", cpus: [(mm: \"A\", ops: [{}])])",
            maps.join(", ")
        ))
        .unwrap_err();
        assert!(
            e.starts_with(
                "limit.ron: cpus[0].ops[64].len: file `f64` is one file too many: at most 64 files"
            ),
            "{e}"
        );
    }

    /// Was `attempt to add with overflow` in the VMA bound: forks back and forth between two
    /// children doubled it each time. A child that already exists is refused now.
    #[test]
    fn regression_forking_into_an_existing_child_is_refused() {
        let forks: Vec<String> = std::iter::once("Fork(mm: \"A\", child: \"B\")".to_string())
            .chain((0..120).map(|i| {
                let (m, c) = if i % 2 == 0 { ("B", "C") } else { ("C", "B") };
                format!("Fork(mm: \"{m}\", child: \"{c}\")")
            }))
            .collect();
        let e = resolve_x86(&format!("Scenario(name: \"x\", setup: [MapFile(mm: \"A\", file: \"f\", at: \"PUD\", len: \"PUD\"), {}], cpus: [(mm: \"A\", ops: [])])", forks.join(", ")))
            .unwrap_err();
        assert_eq!(
            e,
            "limit.ron: setup[3]: fork() needs a new process as child, but mm B already exists"
        );
    }

    #[test]
    fn numbers_beyond_64_bits_are_an_overflow() {
        let x86 = &mmsim_arch::x86_64::X86_64_4LEVEL;
        let e = eval(&Quantity::Expr("2*18446744073709551616".into()), x86).unwrap_err();
        assert_eq!(e, "`18446744073709551616` in `2*18446744073709551616` overflows: numbers are at most 2^64-1");
        let e = eval(&Quantity::Expr("0x1_0000_0000_0000_0000".into()), x86).unwrap_err();
        assert!(e.ends_with("overflows: numbers are at most 2^64-1"), "{e}");
        let e = eval(&Quantity::Expr("_".into()), x86).unwrap_err();
        assert!(e.ends_with("is not a number or one of PUD, PMD, PAGE, K, M, G"), "{e}");
    }

    #[test]
    fn unknown_names_in_a_scenario_name_its_field() {
        let text = |arch: &str, profile: &str, set: &str| {
            format!("Scenario(name: \"x\", arch: Some(\"{arch}\"), profile: Some(\"{profile}\"), set: [\"{set}\"], cpus: [(mm: \"A\", ops: [])])")
        };
        let prepare = |text: String, arch: Option<&str>| {
            let source = Source { origin: "names.ron".into(), text };
            let req = crate::run::Request {
                source,
                arch: arch.map(Into::into),
                profile: None,
                set: vec![],
            };
            crate::run::prepare(&req).map(|_| ()).unwrap_err().to_string()
        };
        let e = prepare(text("vax", "v6.1", "quarantine=on"), None);
        assert_eq!(
            e,
            "names.ron: arch: unknown architecture configuration `vax` (see `mmsim arch list`)"
        );
        // --arch overrides the scenario's: an unknown --arch is not the file's fault
        let e = prepare(text("x86_64", "v6.1", "quarantine=on"), Some("vax"));
        assert_eq!(e, "unknown architecture configuration `vax` (see `mmsim arch list`)");
        let e = prepare(text("x86_64", "v0", "quarantine=on"), None);
        assert_eq!(e, "names.ron: profile: unknown kernel profile `v0` (see `mmsim profiles`)");
        let e = prepare(text("x86_64", "v6.1", "quarantine=maybe"), None);
        assert_eq!(
            e,
            "names.ron: set[0]: switch `quarantine` takes one of true false, not `maybe`"
        );
    }

    #[test]
    fn deep_nesting_is_a_parse_error_not_a_stack_overflow() {
        // a quantity is refused at its first bracket
        let text = format!(
            "Scenario(name: \"x\", cpus: [(mm: \"A\", ops: [GupFast(at: {})])])",
            "[".repeat(10_000)
        );
        let e = resolve_x86(&text).unwrap_err();
        assert!(e.starts_with("limit.ron:1:56: Expected a number of bytes"), "{e}");
        // nothing in a scenario is read as "any value", so the nesting limit is a backstop
        let text = format!("Scenario(name: \"x\", cpus: [{}])", "(".repeat(10_000));
        let e = resolve_x86(&text).unwrap_err();
        assert!(e.starts_with("limit.ron:1:"), "{e}");
    }
}
