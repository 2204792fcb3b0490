//! `fork()`: `dup_mmap()` (kernel/fork.c, v6.1 shape) copying the parent's VMAs into the
//! child mm, and `copy_hugetlb_page_range()` (mm/hugetlb.c): shared hugetlb mappings when the
//! profile copies page tables at fork (kernel-notes §3.6), private (copy-on-write) ones always.

use super::ctx::{Ctx, R};
use super::hugetlb::HugePteAlloc;
use super::mmu_gather::FlushTlb;
use super::walk::Walk;
use crate::model::mem::EntryPtr;
use crate::model::sync::RwLock;
use crate::profile::ForkShareTest;
use mmsim_arch::{Entry, LeafFlags};
use mmsim_traces::{Access, Object};
use std::task::Poll;

/// `copy_hugetlb_page_range(dst, src, dst_vma, src_vma)` (v6.1-v6.6 shape): for a
/// `VM_MAYSHARE` mapping under the source vma lock (read); for each huge page of the source,
/// `hugetlb_walk()` in the parent, `huge_pte_alloc()` in the child (which for a shared mapping
/// usually shares the parent's table through `huge_pmd_share()`), and if the child's table is
/// shared skip the PUD range; else take the child's ptlock, then the parent's
/// (`spin_lock_nested()`), read the entry, `folio_get()` + `page_dup_file_rmap()` /
/// `page_try_dup_anon_rmap()` (refcount and mapcount up), and for a COW mapping
/// (`is_cow_mapping()`: here every private one) `huge_ptep_set_wrprotect()` the parent's entry
/// and give the child the write-protected copy (`huge_pte_wrprotect()`); then
/// `set_huge_pte_at()` in the child. The TLB flush for the parent's write-protected entries is
/// `dup_mmap()`'s `flush_tlb_mm(oldmm)` (the `mmu_notifier_invalidate_range_start/end()`
/// around a COW copy have no listener in the model). The shared test is `page_count() > 1`
/// until 14967a9c7d24 (2025-10) made it `ptdesc_pmd_is_shared()`: with `pt_share_count`
/// (v6.13) the page count no longer counts sharers, so a shared table looks private and both
/// ptlocks are the same lock (a soft lockup). `fork_child_writable` is the v5.12 child entry
/// left writable (4eae4efa2c29 until 84894e1c42e9). Left out: pinned pages. The kernel copies
/// a page that may be DMA-pinned at once (`page_needs_cow_for_dma()`, later
/// `page_try_dup_anon_rmap()` failing: 4eae4efa2c29, v5.12) and takes `write_protect_seq`,
/// which GUP-fast checks (623a1ddfeb23, ~v5.19); the model's GUP takes no pins, so every
/// anonymous page is shared read-only. Migration, hwpoison and uffd-wp entries are left out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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
    /// `is_cow_mapping(src_vma->vm_flags)`.
    cow: bool,
    /// A parent entry was write-protected (the parent's TLB must be flushed).
    pub wrprotected: bool,
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
        cow: bool,
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
            cow,
            wrprotected: false,
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
            // entry = huge_ptep_get(src_pte); folio_get(pte_folio);
            // page_dup_file_rmap() / page_try_dup_anon_rmap() (never fails: no pins)
            6 => {
                let e = cx.read_entry(F, self.src_pte.expect("walked"), self.src_mm)?;
                self.entry = e;
                self.pc = match e {
                    Entry::Leaf { pfn, .. } => {
                        cx.k.mem.huge_page_map(pfn, 1);
                        if self.cow && !cx.env.mutants.fork_no_wrprotect {
                            11
                        } else {
                            7
                        }
                    }
                    _ => 8,
                };
            }
            // if (cow) { huge_ptep_set_wrprotect(src, addr, src_pte);
            //            entry = huge_pte_wrprotect(entry); }
            11 => {
                let Entry::Leaf { pfn, flags } = self.entry else { unreachable!("a leaf") };
                let ro = Entry::Leaf { pfn, flags: LeafFlags { write: false, ..flags } };
                cx.write_entry(
                    "huge_ptep_set_wrprotect",
                    self.src_pte.expect("walked"),
                    self.src_mm,
                    ro,
                )?;
                // entry = huge_pte_wrprotect(entry): missing from 4eae4efa2c29 (v5.12) until
                // 84894e1c42e9 (v5.13), when the child got the entry read before this
                if !cx.env.sw.fork_child_writable {
                    self.entry = ro;
                }
                self.wrprotected = true;
                self.pc = 7;
            }
            // set_huge_pte_at(dst, addr, dst_pte, entry); hugetlb_count_add(npages, dst)
            7 => {
                cx.write_entry(F, self.dst_pte.expect("allocated"), self.dst_mm, self.entry)?;
                if let (Entry::Leaf { pfn, .. }, true) = (self.entry, self.cow) {
                    let p = cx.k.mem.huge_page(pfn).copied().unwrap_or_default();
                    cx.detail_more(|| {
                        format!(
                            "page pfn 0x{pfn:x}: refcount {} mapcount {}",
                            p.refcount, p.mapcount
                        )
                    });
                }
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
/// its per-VMA lock. A private hugetlb mapping is always copied (`vma_needs_copy()`: it has an
/// anon_vma once faulted; simplified: whether or not it was), write-protecting the parent's
/// entries, and then, after `mmap_write_unlock(mm)`, `flush_tlb_mm(oldmm)` drops the parent's
/// writable translations before `mmap_write_unlock(oldmm)` lets the parent's threads fault
/// again. Simplified: the flush is made only when a parent entry was write-protected (without
/// one it changes no translation), so that forks of shared mappings step as before. Private
/// anonymous (PTE) memory is not copied: scenarios cannot fork an mm that has some.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fork {
    mm: u8,
    child: u8,
    pc: u8,
    cur: u8,
    dst_vma: u16,
    copy: Option<CopyHugetlbPageRange>,
    /// Some parent entry was write-protected: `flush_tlb_mm(oldmm)` has work.
    wrprotected: bool,
    flush: Option<FlushTlb>,
}

impl Fork {
    pub fn new(mm: u8, child: u8) -> Self {
        Fork { mm, child, pc: 0, cur: 0, dst_vma: 0, copy: None, wrprotected: false, flush: None }
    }

    pub fn step(&mut self, cx: &mut Ctx) -> R<Poll<()>> {
        const F: &str = "dup_mmap";
        let (mm, child) = (self.mm, self.child);
        match self.pc {
            // mmap_write_lock_killable(oldmm)
            0 => {
                cx.down_write(F, Object::MmapLock(mm))?;
                cx.k.mms[mm as usize].dup_mmap = true;
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
                // copy_page_range(): vma_needs_copy(): always before the lazy copy, then
                // only with an anon_vma (a private mapping)
                let private = !v.flags.mayshare;
                if v.flags.hugetlb && (!cx.env.sw.lazy_fork_copy || private) {
                    self.copy = Some(CopyHugetlbPageRange::new(
                        mm,
                        v.id,
                        child,
                        self.dst_vma,
                        f,
                        v.start,
                        v.end,
                        v.huge_size,
                        private,
                    ));
                }
                self.pc = 4;
            }
            // copy_page_range(tmp, mpnt) -> copy_hugetlb_page_range()
            4 => {
                if let Some(c) = self.copy.as_mut() {
                    if c.step(cx)?.is_ready() {
                        self.wrprotected |= c.wrprotected;
                        self.copy = None;
                        self.cur += 1;
                        self.pc = 7;
                    }
                } else {
                    self.cur += 1;
                    self.pc = 7;
                }
            }
            // mmap_write_unlock(mm)
            5 => {
                cx.up_write(F, Object::MmapLock(child))?;
                self.pc = if self.wrprotected && !cx.env.mutants.fork_no_flush { 8 } else { 6 };
            }
            // flush_tlb_mm(oldmm)
            8 => {
                let local = cx.env.mutants.fork_flush_local_only;
                let fl = self.flush.get_or_insert_with(|| {
                    let f = FlushTlb::mm(cx, mm, "flush_tlb_mm");
                    if local {
                        f.local_only()
                    } else {
                        f
                    }
                });
                if fl.step(cx, false)?.is_ready() {
                    self.flush = None;
                    self.pc = 6;
                }
            }
            // mmap_write_unlock(oldmm)
            _ => {
                cx.up_write(F, Object::MmapLock(mm))?;
                cx.k.mms[mm as usize].dup_mmap = false;
                return Ok(Poll::Ready(()));
            }
        }
        Ok(Poll::Pending)
    }
}
