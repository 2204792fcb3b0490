//! Page-table walks over the encoded tables: `huge_pte_offset()` / `hugetlb_walk()` (no
//! allocation) and the `p?d_alloc()` chain (allocating missing tables under
//! `mm->page_table_lock`). One entry read per step.

use super::ctx::{Ctx, R};
use crate::model::mem::EntryPtr;
use mmsim_arch::Entry;
use mmsim_traces::{Object, ReportKind};
use std::task::Poll;

/// `pgd_offset(mm, addr)`: the top-level entry mapping `addr` (`mm->pgd` never changes).
pub fn pgd_offset(cx: &Ctx, mm: u8, addr: u64) -> EntryPtr {
    cx.ptr(cx.k.mms[mm as usize].pgd, 0, addr)
}

/// `huge_pte_offset(mm, addr, sz)` (mm/hugetlb.c, v6.1 generic version): descend from the PGD
/// to the entry of level `target` that maps `addr`, without taking any lock. Returns `None`
/// when an upper level is not a table. Simplification: PMD-size pages only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Walk {
    pub mm: u8,
    pub addr: u64,
    pub target: u8,
    cur: Option<EntryPtr>,
    /// `hugetlb_walk()` (v6.3): check the locking contract for this VMA on the first step.
    lockdep_vma: Option<u16>,
}

impl Walk {
    pub fn new(mm: u8, addr: u64, target: usize) -> Self {
        Walk { mm, addr, target: target as u8, cur: None, lockdep_vma: None }
    }

    /// `hugetlb_walk(vma, addr, sz)` (v6.3, 9c67a20704e7): `huge_pte_offset()` plus, when the
    /// profile has it, the lockdep assertion that the vma lock or `i_mmap_rwsem` is held.
    pub fn hugetlb_walk(cx: &Ctx, mm: u8, vma: u16, addr: u64) -> Self {
        let mut w = Walk::new(mm, addr, cx.env.pmd_level());
        if cx.env.sw.hugetlb_walk_lockdep {
            w.lockdep_vma = Some(vma);
        }
        w
    }

    pub fn step(&mut self, cx: &mut Ctx, func: &'static str) -> R<Poll<Option<EntryPtr>>> {
        let cur = *self.cur.get_or_insert_with(|| pgd_offset(cx, self.mm, self.addr));
        if cur.level == self.target {
            return Ok(Poll::Ready(Some(cur)));
        }
        let e = cx.read_entry(func, cur, self.mm)?;
        if let Some(vma) = self.lockdep_vma.take() {
            check_hugetlb_walk(cx, self.mm, vma);
        }
        match e {
            Entry::Table { pfn } => {
                let next = cx.ptr(pfn, cur.level as usize + 1, self.addr);
                self.cur = Some(next);
                if next.level == self.target {
                    Ok(Poll::Ready(Some(next)))
                } else {
                    Ok(Poll::Pending)
                }
            }
            _ => Ok(Poll::Ready(None)),
        }
    }
}

/// The `hugetlb_walk()` assertion (include/linux/hugetlb.h, v6.3): on a VMA with a shareable
/// lock, the caller must hold the hugetlb vma lock or the file's `i_mmap_rwsem`.
fn check_hugetlb_walk(cx: &mut Ctx, mm: u8, vma_id: u16) {
    let cpu = cx.who.cpu;
    let Some(vma) = cx.k.mms[mm as usize].vma(vma_id) else { return };
    if !vma.shareable_lock() {
        return;
    }
    let vma_locked = vma.vma_lock.is_some_and(|l| l.held_by(cpu).is_some());
    let i_mmap_locked =
        vma.file.is_some_and(|f| cx.k.files[f as usize].i_mmap_rwsem.held_by(cpu).is_some());
    if !vma_locked && !i_mmap_locked {
        crate::check::report(
            cx,
            ReportKind::LockContract,
            "hugetlb_walk",
            Object::VmaLock { mm, vma: vma_id },
            "WARNING: suspicious hugetlb_walk() usage: hugetlb_walk() on a shareable VMA without \
             the hugetlb vma lock or i_mmap_rwsem held (include/linux/hugetlb.h)"
                .to_string(),
        );
    }
}

/// The `pud_alloc()` / `pmd_alloc()` chain (`__pud_alloc()`, `__pmd_alloc()` in mm/memory.c,
/// v6.1): descend to the entry of level `target` mapping `addr`, allocating each missing table,
/// populating it under `mm->page_table_lock` unless another CPU populated it first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AllocWalk {
    pub mm: u8,
    pub addr: u64,
    pub target: u8,
    cur: Option<EntryPtr>,
    new: u64,
    pc: u8,
}

impl AllocWalk {
    pub fn new(mm: u8, addr: u64, target: usize) -> Self {
        AllocWalk { mm, addr, target: target as u8, cur: None, new: 0, pc: 0 }
    }

    /// Continue from an entry already reached (e.g. `pmd_alloc(mm, pud, addr)`).
    pub fn from(mm: u8, addr: u64, target: usize, at: EntryPtr) -> Self {
        AllocWalk { mm, addr, target: target as u8, cur: Some(at), new: 0, pc: 0 }
    }

    fn func(cx: &Ctx, child_level: usize) -> &'static str {
        match cx.env.arch.levels()[child_level].linux {
            mmsim_arch::LinuxLevel::P4d => "__p4d_alloc",
            mmsim_arch::LinuxLevel::Pud => "__pud_alloc",
            mmsim_arch::LinuxLevel::Pmd => "__pmd_alloc",
            _ => "__pte_alloc",
        }
    }

    pub fn step(&mut self, cx: &mut Ctx) -> R<Poll<EntryPtr>> {
        let cur = *self.cur.get_or_insert_with(|| pgd_offset(cx, self.mm, self.addr));
        if cur.level == self.target {
            return Ok(Poll::Ready(cur));
        }
        let child = cur.level as usize + 1;
        let lock = Object::PageTableLock(self.mm);
        match self.pc {
            // p?d_offset(): is the next table there?
            0 => match cx.read_entry("pgtable_walk", cur, self.mm)? {
                Entry::Table { pfn } => self.descend(cx, pfn),
                _ => self.pc = 1,
            },
            // new = p?d_alloc_one(mm, addr)
            1 => {
                self.new = cx.alloc_table(Self::func(cx, child), child)?;
                self.pc = 2;
            }
            // ptl = pud_lock(mm, pud) / spin_lock(&mm->page_table_lock)
            2 => {
                cx.spin_lock(Self::func(cx, child), lock)?;
                self.pc = 3;
            }
            // if (!p?d_present(*p?d)) populate, else free ours
            3 => {
                let e = cx.read_entry(Self::func(cx, child), cur, self.mm)?;
                self.pc = if e == Entry::None { 4 } else { 6 };
            }
            // p?d_populate(mm, p?d, new); mm_inc_nr_pmds()
            4 => {
                cx.write_entry(
                    Self::func(cx, child),
                    cur,
                    self.mm,
                    Entry::Table { pfn: self.new },
                )?;
                if child == cx.env.pmd_level() {
                    cx.k.mms[self.mm as usize].nr_pmds += 1;
                }
                self.pc = 5;
            }
            // spin_unlock(ptl); then continue the walk from the entry
            5 => {
                cx.spin_unlock(Self::func(cx, child), lock)?;
                self.pc = 0;
            }
            // lost the race: p?d_free(mm, new), never visible to anyone else
            6 => {
                cx.free_table(Self::func(cx, child), self.new)?;
                self.pc = 5;
            }
            _ => unreachable!("AllocWalk pc {}", self.pc),
        }
        Ok(Poll::Pending)
    }

    fn descend(&mut self, cx: &Ctx, pfn: u64) {
        let cur = self.cur.expect("descend after the first read");
        self.cur = Some(cx.ptr(pfn, cur.level as usize + 1, self.addr));
    }
}

/// What the page tables of `mm` map at `va` now, read without steps: the oracle the stale-TLB
/// checker compares cached translations against. Returns the frame of the base page at `va`
/// (inside a huge mapping, the head pfn plus the offset) and the leaf's flags.
pub fn translate(
    k: &crate::model::Kernel,
    arch: &dyn mmsim_arch::Arch,
    mm: u8,
    va: u64,
) -> Option<(u64, mmsim_arch::LeafFlags)> {
    let mut table = k.mms.get(mm as usize)?.pgd;
    for (l, info) in arch.levels().iter().enumerate() {
        let f = k.mem.frame(table)?;
        if f.state != crate::model::mem::FrameState::Allocated {
            return None;
        }
        match arch.decode(l, f.entries.get(info.index(va))).ok()? {
            Entry::Table { pfn } => table = pfn,
            Entry::Leaf { pfn, flags } => {
                return Some((pfn + ((va & (info.entry_size() - 1)) >> arch.page_shift()), flags))
            }
            Entry::None => return None,
        }
    }
    None
}

/// The table page at `level` (index into the arch's levels) that `mm`'s tables lead to for
/// `va`, read without steps: how a PFN walker or a test finds "the PMD table of this range".
pub fn table_at(
    k: &crate::model::Kernel,
    arch: &dyn mmsim_arch::Arch,
    mm: u8,
    va: u64,
    level: usize,
) -> Option<u64> {
    let mut table = k.mms.get(mm as usize)?.pgd;
    for (l, info) in arch.levels().iter().enumerate().take(level) {
        let f = k.mem.frame(table)?;
        match arch.decode(l, f.entries.get(info.index(va))).ok()? {
            Entry::Table { pfn } => table = pfn,
            _ => return None,
        }
    }
    Some(table)
}
