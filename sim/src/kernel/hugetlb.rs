//! Hugetlb page-table paths of mm/hugetlb.c: table allocation and PMD sharing
//! (`huge_pte_alloc()`, `huge_pmd_share()`), unsharing (`huge_pmd_unshare()`) and its callers
//! (`__unmap_hugepage_range()`, `hugetlb_change_protection()`), and the fault path
//! (`hugetlb_fault()`, `hugetlb_no_page()`). They follow v6.1; the profile's switches select the
//! older or newer locking where it differs. Simplifications: PMD-size huge pages only; no
//! reservations, no migration or hwpoison entries, no uffd; the page cache is a plain array.

use super::ctx::{Ctx, R};
use super::mmu_gather::{FlushTlb, MmuGather};
use super::skip::EmptySlots;
use super::walk::{AllocWalk, Walk};
use crate::model::mem::EntryPtr;
use crate::profile::{FaultLock, SharePudLock, ShareScanLock, UnshareAddr};
use mmsim_arch::{Entry, LeafFlags, TableFree};
use mmsim_traces::{Access, Object, ReportKind};
use std::task::Poll;

/// Lock objects of a hugetlb VMA.
fn vma_lock(mm: u8, vma: u16) -> Object {
    Object::VmaLock { mm, vma }
}

/// `want_pmd_share(vma, addr)` + `vma_shareable()`: sharing is configured, the VMA is
/// `VM_MAYSHARE` (with a vma lock from v6.1) and covers the whole PUD range around `addr`.
pub fn want_pmd_share(cx: &Ctx, mm: u8, vma: u16, addr: u64) -> bool {
    if cx.env.arch.pmd_sharing().is_err() {
        return false;
    }
    let Some(v) = cx.k.mms[mm as usize].vma(vma) else { return false };
    let pud = cx.env.arch.pud_size();
    let base = addr & !(pud - 1);
    let lock_ok = !cx.env.sw.unsharer_vma_lock || v.vma_lock.is_some();
    v.flags.mayshare && lock_ok && v.start <= base && base + pud <= v.end
}

/// The next address an unsharing loop visits after unsharing (or finding no table) at `addr`.
fn after_unshare(cx: &Ctx, addr: u64, sz: u64) -> u64 {
    let pud = cx.env.arch.pud_size();
    match cx.env.sw.unshare_addr {
        // addr |= hugetlb_mask_last_page(h); then the loop adds sz
        UnshareAddr::MaskLastPage => (addr | (pud - sz)) + sz,
        // *addr = ALIGN(*addr, HPAGE_SIZE * PTRS_PER_PTE) - HPAGE_SIZE; then the loop adds sz
        UnshareAddr::RoundUp => {
            let span = sz * cx.env.arch.ptrs_per_table() as u64;
            ((addr + span - 1) & !(span - 1)) - sz + sz
        }
    }
}

// -------------------------------------------------------------------------------------------

/// `huge_pmd_share(mm, vma, addr, pud)` (v6.1): look in the file's `i_mmap` tree for another VMA
/// mapping the same file range with a PMD table, take a reference on that table, and install it
/// in this mm's PUD if it is still none. Returns the `pmd_alloc()` result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HugePmdShare {
    mm: u8,
    vma: u16,
    file: u8,
    addr: u64,
    pud: EntryPtr,
    pc: u8,
    scan: usize,
    swalk: Option<Walk>,
    spte: Option<EntryPtr>,
    alloc: Option<AllocWalk>,
    result: Option<EntryPtr>,
}

impl HugePmdShare {
    pub fn new(mm: u8, vma: u16, file: u8, addr: u64, pud: EntryPtr) -> Self {
        HugePmdShare {
            mm,
            vma,
            file,
            addr,
            pud,
            pc: 0,
            scan: 0,
            swalk: None,
            spte: None,
            alloc: None,
            result: None,
        }
    }

    /// `page_table_shareable(svma, vma, addr, idx)`: the address in `svma` that maps the same
    /// file page at the same PMD index, if `svma` covers its whole PUD range.
    fn page_table_shareable(
        cx: &Ctx,
        smm: u8,
        svma: u16,
        mm: u8,
        vma: u16,
        addr: u64,
    ) -> Option<u64> {
        let ps = cx.env.arch.page_shift();
        let pud = cx.env.arch.pud_size();
        let v = cx.k.mms[mm as usize].vma(vma)?;
        let s = cx.k.mms[smm as usize].vma(svma)?;
        let idx = ((addr - v.start) >> ps) + v.pgoff;
        if idx < s.pgoff {
            return None;
        }
        let saddr = s.start + ((idx - s.pgoff) << ps);
        let sbase = saddr & !(pud - 1);
        let same_index = (saddr & (pud - 1)) == (addr & (pud - 1));
        let lock_ok = !cx.env.sw.unsharer_vma_lock || s.vma_lock.is_some();
        let covers = s.start <= sbase && sbase + pud <= s.end;
        (same_index && s.flags == v.flags && lock_ok && covers).then_some(saddr)
    }

    pub fn step(&mut self, cx: &mut Ctx) -> R<Poll<EntryPtr>> {
        const F: &str = "huge_pmd_share";
        let i_mmap = Object::IMmapRwsem(self.file);
        match self.pc {
            // i_mmap_lock_read(mapping) (i_mmap_lock_write() before v5.7; v5.7 callers hold it)
            0 => {
                match cx.env.sw.share_scan_lock {
                    ShareScanLock::Read => cx.down_read(F, i_mmap)?,
                    ShareScanLock::Write => cx.down_write(F, i_mmap)?,
                    ShareScanLock::CallerRead => {}
                }
                self.pc = 1;
            }
            // vma_interval_tree_foreach(svma, &mapping->i_mmap, idx, idx)
            1 => {
                if let Some(w) = self.swalk.as_mut() {
                    // spte = huge_pte_offset(svma->vm_mm, saddr, ...) (hugetlb_walk() in v6.3)
                    if let Poll::Ready(spte) = w.step(cx, F)? {
                        self.swalk = None;
                        if let Some(spte) = spte {
                            self.spte = Some(spte);
                            self.pc = 2;
                        }
                    }
                    return Ok(Poll::Pending);
                }
                let tree = &cx.k.files[self.file as usize].i_mmap;
                match tree.get(self.scan).copied() {
                    None => self.pc = 7,
                    Some((smm, svma)) => {
                        self.scan += 1;
                        if (smm, svma) != (self.mm, self.vma) {
                            if let Some(saddr) = Self::page_table_shareable(
                                cx, smm, svma, self.mm, self.vma, self.addr,
                            ) {
                                self.swalk = Some(if cx.env.sw.hugetlb_walk_lockdep {
                                    Walk::hugetlb_walk(cx, smm, svma, saddr)
                                } else {
                                    Walk::new(smm, saddr, cx.env.pmd_level())
                                });
                            }
                        }
                    }
                }
            }
            // get_page(virt_to_page(spte)) / ptdesc_pmd_pts_inc()
            2 => {
                let spte = self.spte.expect("found");
                cx.table_share(F, spte)?;
                self.pc = 3;
            }
            // ptl = huge_pte_lock(h, mm, spte) (v6.1) / spin_lock(&mm->page_table_lock) (v6.5)
            3 => {
                let spte = self.spte.expect("found");
                match cx.env.sw.share_pud_lock {
                    SharePudLock::SharedPtlock => cx.ptl_lock(F, spte)?,
                    SharePudLock::PageTableLock => {
                        cx.spin_lock(F, Object::PageTableLock(self.mm))?
                    }
                }
                self.pc = 4;
            }
            // if (pud_none(*pud))
            4 => {
                let e = cx.read_entry(F, self.pud, self.mm)?;
                self.pc = if e == Entry::None { 5 } else { 8 };
            }
            // pud_populate(mm, pud, spte & PAGE_MASK); mm_inc_nr_pmds(mm)
            5 => {
                let spte = self.spte.expect("found");
                cx.write_entry(F, self.pud, self.mm, Entry::Table { pfn: spte.pfn })?;
                cx.k.mms[self.mm as usize].nr_pmds += 1;
                self.pc = 6;
            }
            // spin_unlock(ptl)
            6 => {
                let spte = self.spte.expect("found");
                match cx.env.sw.share_pud_lock {
                    SharePudLock::SharedPtlock => cx.ptl_unlock(F, spte)?,
                    SharePudLock::PageTableLock => {
                        cx.spin_unlock(F, Object::PageTableLock(self.mm))?
                    }
                }
                self.pc = 7;
            }
            // out: pte = (pte_t *)pmd_alloc(mm, pud, addr)
            7 => {
                let target = cx.env.pmd_level();
                let a = self
                    .alloc
                    .get_or_insert_with(|| AllocWalk::from(self.mm, self.addr, target, self.pud));
                if let Poll::Ready(p) = a.step(cx)? {
                    self.result = Some(p);
                    self.pc = 9;
                }
            }
            // someone populated the PUD meanwhile: put_page(virt_to_page(spte)), then unlock
            8 => {
                let spte = self.spte.expect("found");
                cx.table_unshare(F, spte)?;
                self.pc = 6;
            }
            // i_mmap_unlock_read(mapping)
            _ => {
                match cx.env.sw.share_scan_lock {
                    ShareScanLock::Read => cx.up_read(F, i_mmap)?,
                    ShareScanLock::Write => cx.up_write(F, i_mmap)?,
                    ShareScanLock::CallerRead => {}
                }
                return Ok(Poll::Ready(self.result.expect("pmd_alloc ran")));
            }
        }
        Ok(Poll::Pending)
    }
}

/// `huge_pte_alloc(mm, vma, addr, sz)` (generic, mm/hugetlb.c v6.1): allocate down to the PUD,
/// then share a PMD table if possible (`want_pmd_share() && pud_none(*pud)`), else
/// `pmd_alloc()`. The result is only stable while the vma lock is held (§4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HugePteAlloc {
    mm: u8,
    vma: u16,
    file: u8,
    addr: u64,
    pc: u8,
    walk: AllocWalk,
    pud: Option<EntryPtr>,
    share: Option<HugePmdShare>,
    pmd: Option<AllocWalk>,
}

impl HugePteAlloc {
    pub fn new(cx: &Ctx, mm: u8, vma: u16, file: u8, addr: u64) -> Self {
        let walk = AllocWalk::new(mm, addr, cx.env.pud_level());
        HugePteAlloc { mm, vma, file, addr, pc: 0, walk, pud: None, share: None, pmd: None }
    }

    pub fn step(&mut self, cx: &mut Ctx) -> R<Poll<EntryPtr>> {
        match self.pc {
            // pgd_offset(); p4d_alloc(); pud = pud_alloc(mm, p4d, addr)
            0 => {
                if let Poll::Ready(pud) = self.walk.step(cx)? {
                    self.pud = Some(pud);
                    self.pc = if want_pmd_share(cx, self.mm, self.vma, self.addr) { 1 } else { 3 };
                }
            }
            // want_pmd_share(vma, addr) && pud_none(*pud)
            1 => {
                let e = cx.read_entry("huge_pte_alloc", self.pud.expect("walked"), self.mm)?;
                self.pc = if e == Entry::None { 2 } else { 3 };
            }
            // pte = huge_pmd_share(mm, vma, addr, pud)
            2 => {
                let (mm, vma, file, addr, pud) =
                    (self.mm, self.vma, self.file, self.addr, self.pud.expect("walked"));
                let s =
                    self.share.get_or_insert_with(|| HugePmdShare::new(mm, vma, file, addr, pud));
                return s.step(cx);
            }
            // pte = (pte_t *)pmd_alloc(mm, pud, addr)
            _ => {
                let target = cx.env.pmd_level();
                let (mm, addr, pud) = (self.mm, self.addr, self.pud.expect("walked"));
                let a = self.pmd.get_or_insert_with(|| AllocWalk::from(mm, addr, target, pud));
                return a.step(cx);
            }
        }
        Ok(Poll::Pending)
    }
}

/// `huge_pmd_unshare(mm, vma, addr, ptep)` (v6.1): if the PMD table `ptep` points into has
/// other sharers, clear this mm's PUD, drop the reference and return true. With
/// `unshare_sync_one` (v6.16) it then waits, via `tlb_remove_table_sync_one()`, for every
/// IRQ-off walker that may still see the table (RCU table-free configurations only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HugePmdUnshare {
    mm: u8,
    vma: u16,
    ptep: EntryPtr,
    addr: u64,
    pc: u8,
    walk: Walk,
    pud: Option<EntryPtr>,
    sync: Option<FlushTlb>,
    assert_vma_lock: bool,
    /// Sharers beyond the first, as read before the unshare.
    sharers: u32,
}

impl HugePmdUnshare {
    pub fn new(cx: &Ctx, mm: u8, vma: u16, addr: u64, ptep: EntryPtr) -> Self {
        let walk = Walk::new(mm, addr, cx.env.pud_level());
        HugePmdUnshare {
            mm,
            vma,
            ptep,
            addr,
            pc: 0,
            walk,
            pud: None,
            sync: None,
            assert_vma_lock: true,
            sharers: 0,
        }
    }

    /// For `hugetlb_split()` (v6.16), which cannot take the vma lock under `i_mmap_rwsem` and
    /// does not need it (its caller write-locks mm, VMA and rmap): skip that assertion. The
    /// v6.16 kernels' lockdep assertion here is a false positive later avoided by
    /// `__huge_pmd_unshare(..., check_locks)` (b4aea43cd37a); not modelled.
    pub fn without_vma_lock_assert(mut self) -> Self {
        self.assert_vma_lock = false;
        self
    }

    pub fn step(&mut self, cx: &mut Ctx) -> R<Poll<bool>> {
        const F: &str = "huge_pmd_unshare";
        match self.pc {
            // i_mmap_assert_write_locked(); hugetlb_vma_assert_locked(vma); (v6.1: first)
            // if (page_count(virt_to_page(ptep)) == 1) return 0;
            // (2025-10: the early returns first, then the assertions for a shared table)
            0 => {
                let sharers = cx.table_sharers(F, self.ptep)?;
                self.sharers = sharers;
                if cx.env.sw.unshare_asserts_first || sharers > 0 {
                    crate::check::assert_unshare_locks(cx, self.mm, self.vma, self.assert_vma_lock);
                }
                if sharers == 0 {
                    return Ok(Poll::Ready(false));
                }
                self.pc = 1;
            }
            // pud = pud_offset(p4d_offset(pgd_offset(mm, addr), addr), addr)
            1 => {
                if let Poll::Ready(pud) = self.walk.step(cx, F)? {
                    self.pud = pud;
                    self.pc = if pud.is_some() { 2 } else { 4 };
                }
            }
            // pud_clear(pud)
            2 => {
                cx.write_entry(F, self.pud.expect("walked"), self.mm, Entry::None)?;
                self.pc = 3;
            }
            // put_page(virt_to_page(ptep)) / ptdesc_pmd_pts_dec(); mm_dec_nr_pmds(mm)
            3 => {
                cx.table_unshare(F, self.ptep)?;
                cx.k.mms[self.mm as usize].nr_pmds -= 1;
                // v6.19: tlb_flush_unshared_tables() syncs only if fully_unshared_tables
                let left = self.sharers.saturating_sub(1);
                let sync = cx.env.sw.unshare_sync_one
                    && cx.env.table_free == TableFree::Rcu
                    && (!cx.env.sw.unshare_sync_exclusive_only || left == 0);
                self.pc = if sync { 5 } else { 4 };
            }
            4 => return Ok(Poll::Ready(true)),
            // tlb_remove_table_sync_one() (v6.16, 1013af4f585f)
            _ => {
                let s = self
                    .sync
                    .get_or_insert_with(|| FlushTlb::all_others(cx, "tlb_remove_table_sync_one"));
                if s.step(cx, true)?.is_ready() {
                    return Ok(Poll::Ready(true));
                }
            }
        }
        let _ = self.addr;
        Ok(Poll::Pending)
    }
}

/// What a range loop does to each present entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RangeAction {
    /// `__unmap_hugepage_range()`: `huge_ptep_get_and_clear()`.
    Unmap,
    /// `hugetlb_change_protection()`: rewrite the entry with the new protection.
    ChangeProt { write: bool },
}

/// The loop shared by `__unmap_hugepage_range()` and `hugetlb_change_protection()` (v6.1):
/// for each huge page, `huge_pte_offset()`, `huge_pte_lock()`, try `huge_pmd_unshare()`
/// (and skip the rest of the PUD range if it did), else act on the entry. Callers hold the
/// vma lock (v6.1) and `i_mmap_rwsem` for write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HugeRangeLoop {
    mm: u8,
    vma: u16,
    addr: u64,
    end: u64,
    sz: u64,
    action: RangeAction,
    pub unshared: bool,
    pc: u8,
    walk: Option<Walk>,
    ptep: Option<EntryPtr>,
    unshare: Option<HugePmdUnshare>,
    entry: Entry,
    empty: EmptySlots,
}

impl HugeRangeLoop {
    pub fn new(mm: u8, vma: u16, start: u64, end: u64, sz: u64, action: RangeAction) -> Self {
        HugeRangeLoop {
            mm,
            vma,
            addr: start,
            end,
            sz,
            action,
            unshared: false,
            pc: 0,
            walk: None,
            ptep: None,
            unshare: None,
            entry: Entry::None,
            empty: EmptySlots::default(),
        }
    }

    fn func(&self) -> &'static str {
        match self.action {
            RangeAction::Unmap => "__unmap_hugepage_range",
            RangeAction::ChangeProt { .. } => "hugetlb_change_protection",
        }
    }

    pub fn step(&mut self, cx: &mut Ctx, tlb: &mut MmuGather) -> R<Poll<()>> {
        let f = self.func();
        match self.pc {
            // for (; address < end; address += sz) { ptep = huge_pte_offset(mm, address, sz);
            0 => {
                if self.addr >= self.end {
                    return Ok(Poll::Ready(()));
                }
                let w = self.walk.get_or_insert_with(|| {
                    if cx.env.sw.hugetlb_walk_lockdep {
                        Walk::hugetlb_walk(cx, self.mm, self.vma, self.addr)
                    } else {
                        Walk::new(self.mm, self.addr, cx.env.pmd_level())
                    }
                });
                if let Poll::Ready(ptep) = w.step(cx, f)? {
                    self.walk = None;
                    match ptep {
                        Some(p) => {
                            self.ptep = Some(p);
                            self.pc = 1;
                        }
                        // if (!ptep) { address |= last_addr_mask; continue; }
                        None => {
                            self.addr = self.next_without_table(cx);
                            self.empty.forget();
                        }
                    }
                }
            }
            // ptl = huge_pte_lock(h, mm, ptep)
            1 => {
                cx.ptl_lock(f, self.ptep.expect("walked"))?;
                self.pc = 2;
            }
            // if (huge_pmd_unshare(mm, vma, address, ptep)) { spin_unlock(ptl); ...; continue; }
            2 => {
                let (mm, vma, addr, ptep) =
                    (self.mm, self.vma, self.addr, self.ptep.expect("walked"));
                let u = self
                    .unshare
                    .get_or_insert_with(|| HugePmdUnshare::new(cx, mm, vma, addr, ptep));
                if let Poll::Ready(did) = u.step(cx)? {
                    self.unshare = None;
                    if did {
                        self.unshared = true;
                        let pud = cx.env.arch.pud_size();
                        // tlb_flush_pmd_range(tlb, address & PUD_MASK, PUD_SIZE); force_flush
                        tlb.add_range(self.addr & !(pud - 1), pud);
                        self.pc = 5;
                    } else {
                        self.pc = 3;
                    }
                }
            }
            // pte = huge_ptep_get(ptep); if (huge_pte_none(pte)) { spin_unlock(ptl); continue; }
            3 => {
                self.entry = cx.read_entry(f, self.ptep.expect("walked"), self.mm)?;
                self.pc = if matches!(self.entry, Entry::Leaf { .. }) { 4 } else { 6 };
            }
            // huge_ptep_get_and_clear() / huge_ptep_modify_prot_commit()
            4 => {
                let ptep = self.ptep.expect("walked");
                let new = match (self.action, self.entry) {
                    (RangeAction::Unmap, _) => Entry::None,
                    (RangeAction::ChangeProt { write }, Entry::Leaf { pfn, flags }) => {
                        Entry::Leaf { pfn, flags: LeafFlags { write, ..flags } }
                    }
                    (_, e) => e,
                };
                cx.write_entry(f, ptep, self.mm, new)?;
                if let (RangeAction::Unmap, Entry::Leaf { pfn, .. }) = (self.action, self.entry) {
                    // page_remove_rmap(); tlb_remove_page_size() (its put: at once here)
                    cx.k.mem.huge_page_map(pfn, -1);
                }
                tlb.add_range(self.addr, self.sz);
                self.pc = 6;
            }
            // unshared: spin_unlock(ptl); address |= last_addr_mask; continue
            5 => {
                cx.ptl_unlock(f, self.ptep.expect("walked"))?;
                let pud = cx.env.arch.pud_size();
                let next = after_unshare(cx, self.addr, self.sz);
                // oracle (§10.6): after an unshare at addr, the loop continues at the next PUD
                if next != (self.addr & !(pud - 1)) + pud && next < self.end {
                    let what = format!(
                        "after unsharing at 0x{:x} the loop continues at 0x{next:x}, inside the same PUD range, instead of 0x{:x}",
                        self.addr,
                        (self.addr & !(pud - 1)) + pud
                    );
                    crate::check::report(
                        cx,
                        ReportKind::RangeRevisit,
                        f,
                        Object::Table(self.ptep.expect("walked").pfn),
                        what,
                    );
                }
                self.addr = next;
                self.pc = 0;
                self.ptep = None;
                self.empty.forget();
            }
            // spin_unlock(ptl); next huge page (`ptep` is dead: see `FollowHugetlbPage`)
            _ => {
                let ptep = self.ptep.expect("walked");
                cx.ptl_unlock(f, ptep)?;
                self.ptep = None;
                self.addr += self.sz;
                self.pc = 0;
                self.skip_empty_slots(cx, ptep);
            }
        }
        Ok(Poll::Pending)
    }

    /// The following empty slots of this table, skipped in an untraced serial phase
    /// ([`EmptySlots`]): with huge pages of `PMD_SIZE` only, whose slots are the entries of
    /// one PMD table, all reached through the same PUD entry up to the PUD range's end.
    fn skip_empty_slots(&mut self, cx: &mut Ctx, ptep: EntryPtr) {
        let arch = cx.env.arch;
        if self.sz != arch.pmd_size() || ptep.level as usize != cx.env.pmd_level() {
            self.empty.forget();
            return;
        }
        let pud = arch.pud_size();
        let limit = self.end.min(((self.addr - self.sz) & !(pud - 1)) + pud);
        let empty = matches!(self.entry, Entry::None);
        self.empty.after_iteration(cx, ptep, empty, &mut self.addr, self.sz, limit);
    }

    fn next_without_table(&self, cx: &Ctx) -> u64 {
        match cx.env.sw.unshare_addr {
            UnshareAddr::MaskLastPage => (self.addr | (cx.env.arch.pud_size() - self.sz)) + self.sz,
            UnshareAddr::RoundUp => self.addr + self.sz,
        }
    }
}

/// `__unmap_hugepage_range_final()` (v6.1) around [`HugeRangeLoop`]: vma lock and
/// `i_mmap_rwsem` for write, the loop, the forced flush when it unshared (before
/// `i_mmap_rwsem` is dropped), then unlock. `final_unmap` (`ZAP_FLAG_UNMAP`, munmap/exit) frees
/// the vma lock and stops the VMA from being found for sharing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ZapHugetlbVma {
    mm: u8,
    vma: u16,
    file: u8,
    final_unmap: bool,
    pc: u8,
    lp: HugeRangeLoop,
    flush: Option<FlushTlb>,
}

impl ZapHugetlbVma {
    pub fn new(
        mm: u8,
        vma: u16,
        file: u8,
        start: u64,
        end: u64,
        sz: u64,
        final_unmap: bool,
    ) -> Self {
        ZapHugetlbVma {
            mm,
            vma,
            file,
            final_unmap,
            pc: 0,
            lp: HugeRangeLoop::new(mm, vma, start, end, sz, RangeAction::Unmap),
            flush: None,
        }
    }

    fn vma_lock_used(cx: &Ctx, mm: u8, vma: u16) -> bool {
        cx.env.sw.unsharer_vma_lock
            && cx.k.mms[mm as usize].vma(vma).is_some_and(|v| v.vma_lock.is_some())
    }

    pub fn step(&mut self, cx: &mut Ctx, tlb: &mut MmuGather) -> R<Poll<()>> {
        const F: &str = "__unmap_hugepage_range_final";
        let (mm, vma) = (self.mm, self.vma);
        match self.pc {
            // hugetlb_vma_lock_write(vma)
            0 => {
                if Self::vma_lock_used(cx, mm, vma) {
                    cx.down_write(F, vma_lock(mm, vma))?;
                }
                self.pc = 1;
            }
            // i_mmap_lock_write(vma->vm_file->f_mapping)
            1 => {
                cx.down_write(F, Object::IMmapRwsem(self.file))?;
                self.pc = 2;
            }
            // __unmap_hugepage_range(tlb, vma, start, end, NULL, zap_flags)
            2 => {
                if self.lp.step(cx, tlb)?.is_ready() {
                    self.pc = if self.lp.unshared { 3 } else { 4 };
                }
            }
            // if (force_flush) tlb_flush_mmu_tlbonly(tlb): before i_mmap_rwsem is dropped
            3 => {
                // arm64 tlb_flush(): last_level = !freed_tables (v6.19 until c2ff4764e03e)
                let leaf_only =
                    cx.env.sw.unshare_flush_leaf_only && cx.env.arch.name().starts_with("arm64");
                let fl = self.flush.get_or_insert_with(|| {
                    FlushTlb::mm(cx, mm, "tlb_flush_mmu_tlbonly").leaf_only(leaf_only)
                });
                if fl.step(cx, false)?.is_ready() {
                    self.pc = 4;
                }
            }
            // final: __hugetlb_vma_unlock_write_free(vma); i_mmap_unlock_write()
            // else:  i_mmap_unlock_write(); hugetlb_vma_unlock_write(vma)
            4 => {
                if self.final_unmap {
                    if Self::vma_lock_used(cx, mm, vma) {
                        cx.up_write("__hugetlb_vma_unlock_write_free", vma_lock(mm, vma))?;
                    }
                    if let Some(v) = cx.k.mms[mm as usize].vma_mut(vma) {
                        // the lock is freed; old kernels clear VM_MAYSHARE here instead
                        v.vma_lock = None;
                        v.flags.mayshare = false;
                    }
                } else {
                    cx.up_write(F, Object::IMmapRwsem(self.file))?;
                }
                self.pc = 5;
            }
            _ => {
                if self.final_unmap {
                    cx.up_write(F, Object::IMmapRwsem(self.file))?;
                } else if Self::vma_lock_used(cx, mm, vma) {
                    cx.up_write("hugetlb_vma_unlock_write", vma_lock(mm, vma))?;
                }
                return Ok(Poll::Ready(()));
            }
        }
        Ok(Poll::Pending)
    }
}

/// `hugetlb_change_protection()` (v6.1) minus its caller's `mmap_lock`: vma lock and
/// `i_mmap_rwsem` for write, the range loop, then `flush_hugetlb_tlb_range()` over the widened
/// range if it unshared, before unlocking.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HugetlbChangeProtection {
    mm: u8,
    vma: u16,
    file: u8,
    pc: u8,
    lp: HugeRangeLoop,
    tlb: MmuGather,
    flush: Option<FlushTlb>,
}

impl HugetlbChangeProtection {
    pub fn new(mm: u8, vma: u16, file: u8, start: u64, end: u64, sz: u64, write: bool) -> Self {
        HugetlbChangeProtection {
            mm,
            vma,
            file,
            pc: 0,
            lp: HugeRangeLoop::new(mm, vma, start, end, sz, RangeAction::ChangeProt { write }),
            tlb: MmuGather::new(mm),
            flush: None,
        }
    }

    pub fn step(&mut self, cx: &mut Ctx) -> R<Poll<()>> {
        const F: &str = "hugetlb_change_protection";
        let (mm, vma) = (self.mm, self.vma);
        let vma_lock_used = ZapHugetlbVma::vma_lock_used(cx, mm, vma);
        match self.pc {
            0 => {
                if vma_lock_used {
                    cx.down_write(F, vma_lock(mm, vma))?;
                }
                self.pc = 1;
            }
            1 => {
                cx.down_write(F, Object::IMmapRwsem(self.file))?;
                self.pc = 2;
            }
            2 => {
                if self.lp.step(cx, &mut self.tlb)?.is_ready() {
                    self.pc = 3;
                }
            }
            // flush_hugetlb_tlb_range(vma, range.start, range.end)
            3 => {
                let fl = self
                    .flush
                    .get_or_insert_with(|| FlushTlb::mm(cx, mm, "flush_hugetlb_tlb_range"));
                if fl.step(cx, false)?.is_ready() {
                    self.pc = 4;
                }
            }
            4 => {
                cx.up_write(F, Object::IMmapRwsem(self.file))?;
                self.pc = 5;
            }
            _ => {
                if vma_lock_used {
                    cx.up_write(F, vma_lock(mm, vma))?;
                }
                return Ok(Poll::Ready(()));
            }
        }
        Ok(Poll::Pending)
    }
}

/// `hugetlb_fault(mm, vma, address, flags)` (v6.1) for a file-backed VMA: fault mutex, the
/// profile's fault lock (vma lock read in v6.1, `i_mmap_rwsem` read in v5.7, nothing before),
/// `huge_pte_alloc()`, then `hugetlb_no_page()` installs the page under `huge_pte_lock()`: the
/// page cache page, or for a `MAP_PRIVATE` mapping whose page is not cached, or on a write
/// fault, a new anonymous page (read-only on a read fault: `make_huge_pte(vma, page,
/// VM_WRITE && VM_SHARED)`). A write fault on a present read-only entry goes to
/// `hugetlb_wp()` (v6.1-v6.6 shape): a shared mapping only makes it writable; a private one
/// reuses an anonymous page mapped once (`folio_mapcount() == 1`), else copies it (see
/// [`HugetlbFault::step`], pc 15 on). Left out: the v6.1 unlocked pre-check of the entry,
/// reservations (so `alloc_hugetlb_folio()` never fails and `unmap_ref_private()`, which
/// unmaps the page from the other processes when the reservation owner cannot get a page, is
/// not modelled), `PageAnonExclusive`/`page_move_anon_rmap()`, migration and hwpoison entries,
/// uffd-wp, the page cache folio a private write fault copies from (it takes a new page at
/// once instead of mapping the cached one and copying in `hugetlb_wp()`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HugetlbFault {
    mm: u8,
    vma: u16,
    file: u8,
    addr: u64,
    idx: u64,
    write: bool,
    pc: u8,
    alloc: Option<HugePteAlloc>,
    ptep: Option<EntryPtr>,
    page: u64,
    /// `hugetlb_wp()` on a private mapping: the entry it found (`pte`), the new page, and
    /// whether the new page replaced the old one (`new_folio = old_folio`).
    orig: Entry,
    new_page: u64,
    replaced: bool,
    flush: Option<FlushTlb>,
}

impl HugetlbFault {
    /// `None` if there is no hugetlb VMA at `addr` (the fault would SIGSEGV).
    pub fn new(cx: &Ctx, mm: u8, addr: u64, write: bool) -> Option<Self> {
        let v = cx.k.mms[mm as usize].find_vma(addr)?;
        let file = v.file?;
        let haddr = addr & !(v.huge_size - 1);
        let idx = v.hugecache_index(haddr, cx.env.arch.page_shift());
        Some(HugetlbFault {
            mm,
            vma: v.id,
            file,
            addr: haddr,
            idx,
            write,
            pc: 0,
            alloc: None,
            ptep: None,
            page: 0,
            orig: Entry::None,
            new_page: 0,
            replaced: false,
            flush: None,
        })
    }

    fn hash(&self) -> u16 {
        // hugetlb_fault_mutex_hash(mapping, idx): a fixed mix of the two, masked
        ((self.file as u64 * 0x9e37 + self.idx) % crate::model::FAULT_MUTEXES as u64) as u16
    }

    pub fn step(&mut self, cx: &mut Ctx) -> R<Poll<()>> {
        const F: &str = "hugetlb_fault";
        let (mm, vma) = (self.mm, self.vma);
        let mutex = Object::FaultMutex(self.hash());
        let vma_locked = cx.env.sw.fault_lock == FaultLock::VmaLock
            && cx.k.mms[mm as usize].vma(vma).is_some_and(|v| v.vma_lock.is_some());
        match self.pc {
            // mutex_lock(&hugetlb_fault_mutex_table[hash])
            0 => {
                cx.down_write(F, mutex)?;
                self.pc = 1;
            }
            // hugetlb_vma_lock_read(vma) (v6.1) / i_mmap_lock_read(mapping) (v5.7)
            1 => {
                match cx.env.sw.fault_lock {
                    FaultLock::VmaLock if vma_locked => {
                        cx.down_read("hugetlb_vma_lock_read", vma_lock(mm, vma))?
                    }
                    FaultLock::IMmapRead => cx.down_read(F, Object::IMmapRwsem(self.file))?,
                    _ => {}
                }
                self.pc = 2;
            }
            // ptep = huge_pte_alloc(mm, vma, haddr, huge_page_size(h))
            2 => {
                let (file, addr) = (self.file, self.addr);
                let a =
                    self.alloc.get_or_insert_with(|| HugePteAlloc::new(cx, mm, vma, file, addr));
                if let Poll::Ready(p) = a.step(cx)? {
                    self.ptep = Some(p);
                    self.alloc = None;
                    self.pc = 3;
                }
            }
            // entry = huge_ptep_get(ptep); if (huge_pte_none(entry)) -> hugetlb_no_page()
            3 => {
                let e = cx.read_entry(F, self.ptep.expect("allocated"), mm)?;
                let vma_write = cx.k.mms[mm as usize].vma(vma).is_some_and(|v| v.flags.write);
                self.pc = match e {
                    Entry::None => 4,
                    // write fault on a read-only entry of a writable shared VMA: hugetlb_wp()
                    Entry::Leaf { flags, .. } if self.write && !flags.write && vma_write => 11,
                    _ => 9,
                };
            }
            // hugetlb_wp() on a shared mapping: ptl = huge_pte_lock(); make the entry writable
            11 => {
                cx.ptl_lock("hugetlb_wp", self.ptep.expect("allocated"))?;
                self.pc = 12;
            }
            // pte = huge_ptep_get(ptep); if (vma->vm_flags & VM_MAYSHARE)
            //     { set_huge_ptep_writable(); return 0; }
            12 => {
                let e = cx.read_entry("hugetlb_wp", self.ptep.expect("allocated"), mm)?;
                let shared = cx.k.mms[mm as usize].vma(vma).is_some_and(|v| v.flags.mayshare);
                self.pc = 14;
                if let Entry::Leaf { pfn, flags } = e {
                    if !flags.write {
                        self.page = pfn;
                        self.orig = e;
                        self.pc = if shared { 13 } else { 15 };
                    }
                }
            }
            // retry_avoidcopy: if (folio_mapcount(old_folio) == 1 && folio_test_anon(old_folio))
            //     { set_huge_ptep_writable(vma, haddr, ptep); return 0; }   (reuse)
            15 => {
                cx.touch("hugetlb_wp", Object::Page(self.page), Access::Read)?;
                let p = cx.k.mem.huge_page(self.page).copied().unwrap_or_default();
                cx.detail(|| {
                    format!(
                        "folio_mapcount = {}, anon = {}: {}",
                        p.mapcount,
                        p.anon,
                        if p.mapcount == 1 && p.anon { "reuse" } else { "copy" }
                    )
                });
                self.pc = if p.mapcount == 1 && p.anon { 13 } else { 16 };
            }
            // folio_get(old_folio)
            16 => {
                cx.touch("hugetlb_wp", Object::Page(self.page), Access::Write)?;
                cx.k.mem.huge_page_ref(self.page, 1);
                self.pc = 17;
            }
            // spin_unlock(ptl): the allocation and the copy run unlocked
            17 => {
                cx.ptl_unlock("hugetlb_wp", self.ptep.expect("allocated"))?;
                self.pc = 18;
            }
            // new_folio = alloc_hugetlb_folio(vma, haddr, outside_reserve)
            18 => {
                let pfn = cx.k.mem.peek_huge_page();
                cx.touch("alloc_hugetlb_folio", Object::Page(pfn), Access::Alloc)?;
                self.new_page = cx.k.mem.alloc_huge_page();
                debug_assert_eq!(self.new_page, pfn);
                if let Some(p) = cx.k.mem.huge_page_mut(pfn) {
                    p.anon = true;
                }
                self.pc = 19;
            }
            // copy_user_large_folio(new_folio, old_folio, address, vma)
            19 => {
                cx.touch("copy_user_large_folio", Object::Page(self.page), Access::Read)?;
                let data = cx.k.mem.huge_page(self.page).map_or(0, |p| p.data);
                if let Some(p) = cx.k.mem.huge_page_mut(self.new_page) {
                    p.data = data;
                }
                self.pc = 20;
            }
            // spin_lock(ptl); ptep = hugetlb_walk(vma, haddr, huge_page_size(h)) (the same
            // pointer: a private VMA's table is not shared, and the fault's locks keep it)
            20 => {
                cx.ptl_lock("hugetlb_wp", self.ptep.expect("allocated"))?;
                self.pc = 21;
            }
            // if (likely(ptep && pte_same(huge_ptep_get(ptep), pte)))
            21 => {
                let e = cx.read_entry("hugetlb_wp", self.ptep.expect("allocated"), mm)?;
                self.pc = if e == self.orig { 22 } else { 25 };
            }
            // huge_ptep_clear_flush(vma, haddr, ptep): clear, then flush the old translation
            22 => {
                cx.write_entry(
                    "huge_ptep_clear_flush",
                    self.ptep.expect("allocated"),
                    mm,
                    Entry::None,
                )?;
                self.pc = 23;
            }
            23 => {
                let fl =
                    self.flush.get_or_insert_with(|| FlushTlb::mm(cx, mm, "huge_ptep_clear_flush"));
                if fl.step(cx, false)?.is_ready() {
                    self.flush = None;
                    self.pc = 24;
                }
            }
            // page_remove_rmap(old); hugepage_add_new_anon_rmap(new_folio, vma, haddr);
            // set_huge_pte_at(mm, haddr, ptep, make_huge_pte(vma, new_page, 1))
            24 => {
                let flags = LeafFlags { write: true, dirty: true, ..LeafFlags::USER_RW };
                let new = Entry::Leaf { pfn: self.new_page, flags };
                cx.write_entry("set_huge_pte_at", self.ptep.expect("allocated"), mm, new)?;
                if let Some(p) = cx.k.mem.huge_page_mut(self.page) {
                    p.mapcount = p.mapcount.saturating_sub(1);
                }
                if let Some(p) = cx.k.mem.huge_page_mut(self.new_page) {
                    p.mapcount += 1;
                }
                // new_folio = old_folio: the puts below drop the old page's mapping reference
                self.replaced = true;
                self.pc = 25;
            }
            25 => {
                cx.ptl_unlock("hugetlb_wp", self.ptep.expect("allocated"))?;
                self.pc = 26;
            }
            // out_release_all: folio_put(new_folio) (the old page if it was replaced)
            26 => {
                let put = if self.replaced { self.page } else { self.new_page };
                cx.touch("folio_put", Object::Page(put), Access::Write)?;
                cx.k.mem.huge_page_ref(put, -1);
                self.pc = 27;
            }
            // out_release_old: folio_put(old_folio) (the folio_get() above)
            27 => {
                cx.touch("folio_put", Object::Page(self.page), Access::Write)?;
                cx.k.mem.huge_page_ref(self.page, -1);
                let p = cx.k.mem.huge_page(self.page).copied().unwrap_or_default();
                let n = cx.k.mem.huge_page(self.new_page).copied().unwrap_or_default();
                cx.detail(|| {
                    format!(
                        "old page pfn 0x{:x}: refcount {} mapcount {}; new page pfn 0x{:x}: refcount {} mapcount {}",
                        self.page, p.refcount, p.mapcount, self.new_page, n.refcount, n.mapcount
                    )
                });
                self.pc = 28;
            }
            // spin_lock(ptl): hugetlb_wp() returns with it held, as it was called
            28 => {
                cx.ptl_lock("hugetlb_wp", self.ptep.expect("allocated"))?;
                self.pc = 14;
            }
            // set_huge_pte_at(mm, haddr, ptep, huge_pte_mkwrite(huge_pte_mkdirty(entry)))
            13 => {
                let flags = LeafFlags { write: true, dirty: true, ..LeafFlags::USER_RW };
                cx.write_entry(
                    "hugetlb_wp",
                    self.ptep.expect("allocated"),
                    mm,
                    Entry::Leaf { pfn: self.page, flags },
                )?;
                self.pc = 14;
            }
            14 => {
                cx.ptl_unlock("hugetlb_wp", self.ptep.expect("allocated"))?;
                self.pc = 9;
            }
            // hugetlb_no_page(): find the page cache folio or allocate and add one; a write
            // fault on a MAP_PRIVATE mapping gets a private copy instead (not in the cache)
            4 => {
                let private = !cx.k.mms[mm as usize].vma(vma).is_some_and(|v| v.flags.mayshare);
                let cached =
                    cx.k.files[self.file as usize].pages.get(self.idx as usize).copied().flatten();
                let use_cache = cached.is_some() && !(private && self.write);
                let pfn = if use_cache { cached.unwrap_or(0) } else { cx.k.mem.peek_huge_page() };
                let access = if use_cache { Access::Read } else { Access::Alloc };
                cx.touch("hugetlb_no_page", Object::Page(pfn), access)?;
                if use_cache {
                    // filemap_lock_hugetlb_folio(): the lookup's reference, the mapping's later
                    cx.k.mem.huge_page_ref(pfn, 1);
                } else {
                    let got = cx.k.mem.alloc_huge_page();
                    debug_assert_eq!(got, pfn);
                    let pages = &mut cx.k.files[self.file as usize].pages;
                    if !private && (self.idx as usize) < pages.len() {
                        pages.set(self.idx as usize, Some(pfn));
                        // hugetlb_add_to_page_cache(): the page cache's reference
                        cx.k.mem.huge_page_ref(pfn, 1);
                    }
                    // a private copy of a cached page starts with its contents
                    let data = cached.and_then(|c| cx.k.mem.huge_page(c)).map_or(0, |c| c.data);
                    if let (Some(p), true) = (cx.k.mem.huge_page_mut(pfn), private) {
                        p.anon = true;
                        p.data = data;
                    }
                }
                self.page = pfn;
                self.pc = 5;
            }
            // ptl = huge_pte_lock(h, mm, ptep)
            5 => {
                cx.ptl_lock("hugetlb_no_page", self.ptep.expect("allocated"))?;
                self.pc = 6;
            }
            // if (!huge_pte_none(huge_ptep_get(ptep))) goto backout
            6 => {
                let e = cx.read_entry("hugetlb_no_page", self.ptep.expect("allocated"), mm)?;
                if e != Entry::None {
                    // backout: folio_put()
                    cx.k.mem.huge_page_ref(self.page, -1);
                }
                self.pc = if e == Entry::None { 7 } else { 8 };
            }
            // set_huge_pte_at(mm, haddr, ptep, make_huge_pte(vma, page, writable))
            7 => {
                // writable if VM_WRITE && VM_SHARED, or a private write fault on its own new
                // anonymous page (hugetlb_wp() reuses it at once)
                let v = cx.k.mms[mm as usize].vma(vma).map(|v| v.flags).unwrap_or_default();
                let flags = LeafFlags {
                    write: self.write || (v.write && v.mayshare),
                    ..LeafFlags::USER_RW
                };
                cx.write_entry(
                    "set_huge_pte_at",
                    self.ptep.expect("allocated"),
                    mm,
                    Entry::Leaf { pfn: self.page, flags },
                )?;
                // hugetlb_add_file_rmap() / hugetlb_add_new_anon_rmap(): the fault's
                // reference becomes the mapping's
                if let Some(p) = cx.k.mem.huge_page_mut(self.page) {
                    p.mapcount += 1;
                }
                self.pc = 8;
            }
            // spin_unlock(ptl)
            8 => {
                cx.ptl_unlock("hugetlb_no_page", self.ptep.expect("allocated"))?;
                self.pc = 9;
            }
            // hugetlb_vma_unlock_read(vma) / i_mmap_unlock_read(mapping)
            9 => {
                match cx.env.sw.fault_lock {
                    FaultLock::VmaLock if vma_locked => {
                        cx.up_read("hugetlb_vma_unlock_read", vma_lock(mm, vma))?
                    }
                    FaultLock::IMmapRead => cx.up_read(F, Object::IMmapRwsem(self.file))?,
                    _ => {}
                }
                self.pc = 10;
            }
            // mutex_unlock(&hugetlb_fault_mutex_table[hash])
            10 => {
                cx.up_write(F, mutex)?;
                return Ok(Poll::Ready(()));
            }
            _ => unreachable!("hugetlb_fault pc {}", self.pc),
        }
        Ok(Poll::Pending)
    }
}
