//! `fork()`: `dup_mmap()` (kernel/fork.c, v6.1 shape) copying the parent's VMAs into the
//! child mm, and `copy_hugetlb_page_range()` (mm/hugetlb.c) for shared hugetlb mappings when
//! the profile copies page tables at fork (kernel-notes §3.6).

use super::ctx::{Ctx, R};
use super::hugetlb::HugePteAlloc;
use super::walk::Walk;
use crate::model::mem::EntryPtr;
use crate::model::sync::RwLock;
use crate::profile::ForkShareTest;
use mmsim_arch::Entry;
use mmsim_traces::{Access, Object};
use std::task::Poll;

/// `copy_hugetlb_page_range(dst, src, dst_vma, src_vma)` (v6.1) for a `VM_MAYSHARE` mapping
/// (no COW): under the source vma lock (read), for each huge page of the source,
/// `hugetlb_walk()` in the parent, `huge_pte_alloc()` in the child (which usually shares the
/// parent's table through `huge_pmd_share()`), and if the child's table is shared skip the
/// PUD range; else take the child's ptlock, then the parent's (`spin_lock_nested()`), and copy
/// the entry. The shared test is `page_count() > 1` until 14967a9c7d24 (2025-10) made it
/// `ptdesc_pmd_is_shared()`: with `pt_share_count` (v6.13) the page count no longer counts
/// sharers, so a shared table looks private and both ptlocks are the same lock (a soft lockup).
/// Left out: the page reference and rmap accounting of the copied entry, migration entries.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CopyHugetlbPageRange {
    src_mm: u8,
    src_vma: u16,
    dst_mm: u8,
    dst_vma: u16,
    file: u8,
    addr: u64,
    end: u64,
    sz: u64,
    pc: u8,
    vma_locked: bool,
    walk: Option<Walk>,
    src_pte: Option<EntryPtr>,
    alloc: Option<HugePteAlloc>,
    dst_pte: Option<EntryPtr>,
    entry: Entry,
}

impl CopyHugetlbPageRange {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        src_mm: u8,
        src_vma: u16,
        dst_mm: u8,
        dst_vma: u16,
        file: u8,
        start: u64,
        end: u64,
        sz: u64,
    ) -> Self {
        CopyHugetlbPageRange {
            src_mm,
            src_vma,
            dst_mm,
            dst_vma,
            file,
            addr: start,
            end,
            sz,
            pc: 0,
            vma_locked: false,
            walk: None,
            src_pte: None,
            alloc: None,
            dst_pte: None,
            entry: Entry::None,
        }
    }

    /// `huge_pte_lock(h, mm, ptep)` for a given mm: `ptl_of()` names the running CPU's mm for
    /// the `page_table_lock` fallback (folded PMD), but the child's lock is the child's.
    fn lock(cx: &mut Ctx, mm: u8, ptep: EntryPtr, take: bool) -> R<()> {
        const F: &str = "copy_hugetlb_page_range";
        match (cx.ptl_of(ptep), take) {
            (Object::PageTableLock(_), true) => cx.spin_lock(F, Object::PageTableLock(mm)),
            (Object::PageTableLock(_), false) => cx.spin_unlock(F, Object::PageTableLock(mm)),
            (_, true) => cx.ptl_lock(F, ptep),
            (_, false) => cx.ptl_unlock(F, ptep),
        }
    }

    /// `addr |= last_addr_mask; addr += sz`: on to the next PUD range.
    fn skip_pud(&mut self, cx: &Ctx) {
        let pud = cx.env.arch.pud_size();
        self.addr = (self.addr | (pud - self.sz)) + self.sz;
    }

    pub fn step(&mut self, cx: &mut Ctx) -> R<Poll<()>> {
        const F: &str = "copy_hugetlb_page_range";
        let vlock = Object::VmaLock { mm: self.src_mm, vma: self.src_vma };
        match self.pc {
            // hugetlb_vma_lock_read(src_vma) (v6.1; before, nothing for shared mappings)
            0 => {
                let has_lock = cx.env.sw.unsharer_vma_lock
                    && cx.k.mms[self.src_mm as usize]
                        .vma(self.src_vma)
                        .is_some_and(|v| v.vma_lock.is_some());
                if has_lock {
                    cx.down_read("hugetlb_vma_lock_read", vlock)?;
                    self.vma_locked = true;
                }
                self.pc = 1;
            }
            // src_pte = hugetlb_walk(src_vma, addr, sz); if (!src_pte) skip the PUD range
            1 => {
                if self.addr >= self.end {
                    self.pc = 9;
                    return Ok(Poll::Pending);
                }
                let (mm, vma, addr) = (self.src_mm, self.src_vma, self.addr);
                let w = self.walk.get_or_insert_with(|| Walk::hugetlb_walk(cx, mm, vma, addr));
                if let Poll::Ready(p) = w.step(cx, F)? {
                    self.walk = None;
                    match p {
                        Some(p) => {
                            self.src_pte = Some(p);
                            self.pc = 2;
                        }
                        None => self.skip_pud(cx),
                    }
                }
            }
            // dst_pte = huge_pte_alloc(dst, dst_vma, addr, sz)
            2 => {
                let (mm, vma, file, addr) = (self.dst_mm, self.dst_vma, self.file, self.addr);
                let a =
                    self.alloc.get_or_insert_with(|| HugePteAlloc::new(cx, mm, vma, file, addr));
                if let Poll::Ready(p) = a.step(cx)? {
                    self.alloc = None;
                    self.dst_pte = Some(p);
                    self.pc = 3;
                }
            }
            // if (page_count(virt_to_page(dst_pte)) > 1)      (v6.1 .. 2025-07)
            // if (ptdesc_pmd_is_shared(virt_to_ptdesc(dst_pte)))  (14967a9c7d24)
            //     { addr |= last_addr_mask; continue; }
            3 => {
                let pfn = self.dst_pte.expect("allocated").pfn;
                cx.touch(F, Object::Table(pfn), Access::Read)?;
                let f = cx.k.mem.frame(pfn);
                let shared = match cx.env.sw.fork_share_test {
                    ForkShareTest::PageCount => f.is_some_and(|f| f.refcount > 1),
                    ForkShareTest::PtShareCount => f.is_some_and(|f| f.pt_share_count > 0),
                };
                cx.detail(|| format!("shared: {shared}"));
                if shared {
                    self.skip_pud(cx);
                    self.pc = 1;
                } else {
                    self.pc = 4;
                }
            }
            // dst_ptl = huge_pte_lock(h, dst, dst_pte)
            4 => {
                Self::lock(cx, self.dst_mm, self.dst_pte.expect("allocated"), true)?;
                self.pc = 5;
            }
            // src_ptl = huge_pte_lockptr(h, src, src_pte); spin_lock_nested(src_ptl, ...)
            5 => {
                Self::lock(cx, self.src_mm, self.src_pte.expect("walked"), true)?;
                self.pc = 6;
            }
            // entry = huge_ptep_get(src_pte)
            6 => {
                self.entry = cx.read_entry(F, self.src_pte.expect("walked"), self.src_mm)?;
                self.pc = if matches!(self.entry, Entry::Leaf { .. }) { 7 } else { 8 };
            }
            // set_huge_pte_at(dst, addr, dst_pte, entry) (shared mapping: no COW)
            7 => {
                cx.write_entry(F, self.dst_pte.expect("allocated"), self.dst_mm, self.entry)?;
                self.pc = 8;
            }
            // spin_unlock(src_ptl); spin_unlock(dst_ptl)
            8 => {
                Self::lock(cx, self.src_mm, self.src_pte.expect("walked"), false)?;
                self.pc = 10;
            }
            10 => {
                Self::lock(cx, self.dst_mm, self.dst_pte.expect("allocated"), false)?;
                self.addr += self.sz;
                self.pc = 1;
            }
            // hugetlb_vma_unlock_read(src_vma)
            _ => {
                if self.vma_locked {
                    cx.up_read("hugetlb_vma_unlock_read", vlock)?;
                    self.vma_locked = false;
                }
                return Ok(Poll::Ready(()));
            }
        }
        Ok(Poll::Pending)
    }
}

/// `fork()` -> `dup_mmap(mm, oldmm)` (v6.1): `mmap_write_lock()` of the parent and the child;
/// for each parent VMA, `vm_area_dup()` (`hugetlb_dup_vma_private()`, then `->open()` gives
/// the copy its own vma lock), link it into the file's `i_mmap` under `i_mmap_rwsem`, insert it
/// into the child's tree, and `copy_page_range()` when `vma_needs_copy()`: a `VM_HUGETLB`
/// mapping always before bcd51a3c679d ("hugetlb: lazy page table copies in fork()", v6.0),
/// afterwards only with an anon_vma, so a shared hugetlb mapping is left to the child's faults.
/// Each parent VMA is `vma_start_write()` first (fb49c455323f, v6.5; the v6.4 window without
/// it needs anonymous COW to matter, which the model does not have), waiting for faults under
/// its per-VMA lock. Scenarios only fork mms whose mappings are shared hugetlbfs mappings (no
/// COW here).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Fork {
    mm: u8,
    child: u8,
    pc: u8,
    cur: u8,
    dst_vma: u16,
    copy: Option<CopyHugetlbPageRange>,
}

impl Fork {
    pub fn new(mm: u8, child: u8) -> Self {
        Fork { mm, child, pc: 0, cur: 0, dst_vma: 0, copy: None }
    }

    pub fn step(&mut self, cx: &mut Ctx) -> R<Poll<()>> {
        const F: &str = "dup_mmap";
        let (mm, child) = (self.mm, self.child);
        match self.pc {
            // mmap_write_lock_killable(oldmm)
            0 => {
                cx.down_write(F, Object::MmapLock(mm))?;
                self.pc = 1;
            }
            // mmap_write_lock_nested(mm, SINGLE_DEPTH_NESTING)
            1 => {
                cx.down_write(F, Object::MmapLock(child))?;
                self.pc = 7;
            }
            // for_each_vma(old_vmi, mpnt): vma_start_write(mpnt)
            7 => {
                if let Some(id) = cx.k.mms[mm as usize].vmas.get(self.cur as usize).map(|v| v.id) {
                    cx.vma_start_write(F, mm, id)?;
                }
                self.pc = 2;
            }
            // for_each_vma(old_vmi, mpnt): tmp = vm_area_dup(mpnt); ...; vma_iter_bulk_store()
            2 => {
                let Some(v) = cx.k.mms[mm as usize].vmas.get(self.cur as usize) else {
                    self.pc = 5;
                    return Ok(Poll::Pending);
                };
                let file = v.file;
                match file {
                    // i_mmap_lock_write(mapping); vma_interval_tree_insert_after(tmp, mpnt)
                    Some(f) => cx.down_write(F, Object::IMmapRwsem(f))?,
                    None => cx.touch(F, Object::Vmas(child), Access::Write)?,
                }
                let mut tmp = cx.k.mms[mm as usize].vmas[self.cur as usize].clone();
                let c = &mut cx.k.mms[child as usize];
                tmp.id = c.next_vma_id;
                c.next_vma_id += 1;
                tmp.vma_lock = tmp.vma_lock.as_ref().map(|_| RwLock::default());
                // vm_area_dup(): a fresh per-VMA lock, in the child's write section
                tmp.vm_lock = RwLock::default();
                tmp.vm_lock_seq = c.mm_lock_seq;
                self.dst_vma = tmp.id;
                let pos = c.vmas.partition_point(|x| x.start < tmp.start);
                c.vmas.insert(pos, tmp);
                if let Some(f) = file {
                    cx.k.files[f as usize].i_mmap.push((child, self.dst_vma));
                }
                self.pc = if file.is_some() { 3 } else { 4 };
            }
            // i_mmap_unlock_write(mapping)
            3 => {
                let f = cx.k.mms[mm as usize].vmas[self.cur as usize].file.unwrap_or(0);
                cx.up_write(F, Object::IMmapRwsem(f))?;
                let v = &cx.k.mms[mm as usize].vmas[self.cur as usize];
                // copy_page_range(): vma_needs_copy()
                if v.flags.hugetlb && !cx.env.sw.lazy_fork_copy {
                    self.copy = Some(CopyHugetlbPageRange::new(
                        mm,
                        v.id,
                        child,
                        self.dst_vma,
                        f,
                        v.start,
                        v.end,
                        v.huge_size,
                    ));
                }
                self.pc = 4;
            }
            // copy_page_range(tmp, mpnt) -> copy_hugetlb_page_range()
            4 => {
                if let Some(c) = self.copy.as_mut() {
                    if c.step(cx)?.is_ready() {
                        self.copy = None;
                        self.cur += 1;
                        self.pc = 7;
                    }
                } else {
                    self.cur += 1;
                    self.pc = 7;
                }
            }
            // mmap_write_unlock(mm); mmap_write_unlock(oldmm)
            5 => {
                cx.up_write(F, Object::MmapLock(child))?;
                self.pc = 6;
            }
            _ => {
                cx.up_write(F, Object::MmapLock(mm))?;
                return Ok(Poll::Ready(()));
            }
        }
        Ok(Poll::Pending)
    }
}
