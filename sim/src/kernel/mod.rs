//! Kernel paths as explicit step machines, named after the kernel functions they model.
//!
//! Each path is a struct holding its position (`pc`) and locals; `step()` makes at most one
//! shared access through [`ctx::Ctx`] and returns `Poll::Ready` when the function returns.
//! Paths call each other by embedding the callee's machine. The whole position of a CPU is
//! therefore plain data: cloneable, hashable and comparable, as the explorer needs.

pub mod anon;
pub mod ctx;
pub mod fork;
pub mod gup_fast;
pub mod hugetlb;
pub mod hugetlbfs;
pub mod interrupts;
pub mod mmu_gather;
pub mod ops;
pub mod skip;
pub mod user_access;
pub mod vma;
pub mod walk;
