//! VMA splitting: `__split_vma()` (mm/vma.c; `__vma_adjust()` in mm/mmap.c before v6.3) and
//! the hugetlb unsharing a split needs, `hugetlb_unshare_pmds()`, called from `->may_split()`
//! (`hugetlb_vm_op_split()`, b30c14cd6102) or from `hugetlb_split()` inside the split
//! (081056dc00a2, v6.16) as the profile's `split_unshare` switch says.

use super::ctx::{Ctx, R};
use super::hugetlb::HugePmdUnshare;
use super::mmu_gather::FlushTlb;
use super::walk::Walk;
use crate::model::mem::EntryPtr;
use crate::model::mm::Vma;
use crate::model::sync::RwLock;
use crate::profile::SplitUnshare;
use mmsim_traces::{Access, Object, ReportKind};
use std::task::Poll;

/// The PUD range `[floor, ceil)` around `addr` that a split at `addr` must unshare: only when
/// `addr` is not PUD-aligned and the VMA covers the whole range (else nothing there can be
/// shared). `hugetlb_split()` / the old `hugetlb_vm_op_split()`.
pub fn split_unshare_range(v: &Vma, addr: u64, pud: u64) -> Option<(u64, u64)> {
    if addr & (pud - 1) == 0 {
        return None;
    }
    let floor = addr & !(pud - 1);
    let ceil = floor + pud;
    (floor >= v.start && ceil <= v.end).then_some((floor, ceil))
}

/// `hugetlb_unshare_pmds(vma, start, end, take_locks)` (mm/hugetlb.c, v6.16; before
/// 081056dc00a2 it always took the locks): for each PUD range in `[start, end)`,
/// `hugetlb_walk()`, `huge_pte_lock()`, `huge_pmd_unshare()`; then
/// `flush_hugetlb_tlb_range()`. With `take_locks` it takes the hugetlb vma lock and
/// `i_mmap_rwsem` for write itself; without, its caller holds `i_mmap_rwsem` (and `mmap_lock`
/// and the VMA write lock). Left out: mmu notifiers, `flush_cache_range()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HugetlbUnsharePmds {
    mm: u8,
    vma: u16,
    file: u8,
    end: u64,
    take_locks: bool,
    vma_locked: bool,
    pc: u8,
    addr: u64,
    walk: Option<Walk>,
    ptep: Option<EntryPtr>,
    unshare: Option<HugePmdUnshare>,
    flush: Option<FlushTlb>,
}

impl HugetlbUnsharePmds {
    pub fn new(mm: u8, vma: u16, file: u8, start: u64, end: u64, take_locks: bool) -> Self {
        HugetlbUnsharePmds {
            mm,
            vma,
            file,
            end,
            take_locks,
            vma_locked: false,
            pc: 0,
            addr: start,
            walk: None,
            ptep: None,
            unshare: None,
            flush: None,
        }
    }

    pub fn step(&mut self, cx: &mut Ctx) -> R<Poll<()>> {
        const F: &str = "hugetlb_unshare_pmds";
        let (mm, vma) = (self.mm, self.vma);
        let i_mmap = Object::IMmapRwsem(self.file);
        let vlock = Object::VmaLock { mm, vma };
        match self.pc {
            // if (take_locks) { hugetlb_vma_lock_write(vma); i_mmap_lock_write(mapping); }
            0 => {
                let has_lock = cx.env.sw.unsharer_vma_lock
                    && cx.k.mms[mm as usize].vma(vma).is_some_and(|v| v.vma_lock.is_some());
                if self.take_locks && has_lock {
                    cx.down_write("hugetlb_vma_lock_write", vlock)?;
                    self.vma_locked = true;
                }
                self.pc = 1;
            }
            1 => {
                if self.take_locks {
                    cx.down_write(F, i_mmap)?;
                }
                self.pc = 2;
            }
            // for (address = start; address < end; address += PUD_SIZE) {
            //     ptep = hugetlb_walk(vma, address, sz); if (!ptep) continue;
            2 => {
                if self.addr >= self.end {
                    self.pc = 6;
                    return Ok(Poll::Pending);
                }
                let addr = self.addr;
                let w = self.walk.get_or_insert_with(|| Walk::hugetlb_walk(cx, mm, vma, addr));
                if let Poll::Ready(p) = w.step(cx, F)? {
                    self.walk = None;
                    match p {
                        Some(p) => {
                            self.ptep = Some(p);
                            self.pc = 3;
                        }
                        None => self.addr += cx.env.arch.pud_size(),
                    }
                }
            }
            // ptl = huge_pte_lock(h, mm, ptep)
            3 => {
                cx.ptl_lock(F, self.ptep.expect("walked"))?;
                self.pc = 4;
            }
            // huge_pmd_unshare(mm, vma, address, ptep)
            4 => {
                let (addr, ptep, take) = (self.addr, self.ptep.expect("walked"), self.take_locks);
                let u = self.unshare.get_or_insert_with(|| {
                    let u = HugePmdUnshare::new(cx, mm, vma, addr, ptep);
                    if take {
                        u
                    } else {
                        u.without_vma_lock_assert()
                    }
                });
                if u.step(cx)?.is_ready() {
                    self.unshare = None;
                    self.pc = 5;
                }
            }
            // spin_unlock(ptl)
            5 => {
                cx.ptl_unlock(F, self.ptep.expect("walked"))?;
                self.addr += cx.env.arch.pud_size();
                self.pc = 2;
            }
            // flush_hugetlb_tlb_range(vma, start, end)
            6 => {
                let fl = self
                    .flush
                    .get_or_insert_with(|| FlushTlb::mm(cx, mm, "flush_hugetlb_tlb_range"));
                if fl.step(cx, false)?.is_ready() {
                    self.pc = 7;
                }
            }
            // if (take_locks) { i_mmap_unlock_write(mapping); hugetlb_vma_unlock_write(vma); }
            7 => {
                if self.take_locks {
                    cx.up_write(F, i_mmap)?;
                }
                self.pc = 8;
            }
            _ => {
                if self.vma_locked {
                    cx.up_write("hugetlb_vma_unlock_write", vlock)?;
                    self.vma_locked = false;
                }
                return Ok(Poll::Ready(()));
            }
        }
        Ok(Poll::Pending)
    }
}

/// `__split_vma(vmi, vma, addr, new_below)` (mm/vma.c, v6.12 shape; v6.16 adds
/// `hugetlb_split()`), caller holding `mmap_lock` for write:
/// 1. `->may_split()`: `hugetlb_vm_op_split()` refuses a split that is not huge-page aligned
///    (-EINVAL) and, from b30c14cd6102 until v6.16, unshares the straddling PUD range here,
///    taking and dropping the vma lock and `i_mmap_rwsem` itself;
/// 2. `vm_area_dup()` and `->open()` (`hugetlb_vm_op_open()` gives the new VMA its own vma
///    lock);
/// 3. `vma_prepare()`: `i_mmap_lock_write()`, link the new VMA into `i_mmap`;
/// 4. from v6.16, `hugetlb_split()`: unshare the straddling PUD range with the rmap locked;
/// 5. move the boundary and insert the new VMA (`vma_complete()` stores it);
/// 6. `i_mmap_unlock_write()`.
///
/// Between 1 and 2, `vma_start_write()` (v6.4) waits for faults holding the VMA's per-VMA
/// lock. The checker of kernel-notes §9.7 runs at step 5: no VMA that stops covering its PUD
/// range may map a shared PMD table. Left out: anon_vma, mempolicy, uprobes,
/// `vma_adjust_trans_huge()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SplitVma {
    mm: u8,
    vma: u16,
    addr: u64,
    new_below: bool,
    pc: u8,
    file: Option<u8>,
    new_id: u16,
    unshare: Option<HugetlbUnsharePmds>,
    /// The split was refused (`-EINVAL` from `hugetlb_vm_op_split()`, or no such VMA).
    pub failed: bool,
}

impl SplitVma {
    pub fn new(mm: u8, vma: u16, addr: u64, new_below: bool) -> Self {
        SplitVma {
            mm,
            vma,
            addr,
            new_below,
            pc: 0,
            file: None,
            new_id: 0,
            unshare: None,
            failed: false,
        }
    }

    pub fn step(&mut self, cx: &mut Ctx) -> R<Poll<()>> {
        const F: &str = "__split_vma";
        let (mm, vma, addr) = (self.mm, self.vma, self.addr);
        match self.pc {
            // if (vma->vm_ops && vma->vm_ops->may_split) err = vma->vm_ops->may_split(vma, addr)
            0 => {
                cx.touch("hugetlb_vm_op_split", Object::Vmas(mm), Access::Read)?;
                let Some(v) = cx.k.mms[mm as usize].vma(vma) else {
                    self.failed = true;
                    return Ok(Poll::Ready(()));
                };
                self.file = v.file;
                self.pc = 6;
                if v.flags.hugetlb {
                    // if (addr & ~(huge_page_mask(hstate_vma(vma)))) return -EINVAL;
                    if addr & (v.huge_size - 1) != 0 {
                        cx.detail(|| format!("-EINVAL: 0x{addr:x} is not huge-page aligned"));
                        self.failed = true;
                        return Ok(Poll::Ready(()));
                    }
                    let pud = cx.env.arch.pud_size();
                    if let (SplitUnshare::MaySplit, Some((floor, ceil)), Some(file)) =
                        (cx.env.sw.split_unshare, split_unshare_range(v, addr, pud), v.file)
                    {
                        self.unshare =
                            Some(HugetlbUnsharePmds::new(mm, vma, file, floor, ceil, true));
                        self.pc = 1;
                    }
                }
            }
            // hugetlb_vm_op_split() -> hugetlb_unshare_pmds(vma, floor, ceil) (b30c14cd6102)
            1 => {
                if self.unshare.as_mut().expect("set").step(cx)?.is_ready() {
                    self.unshare = None;
                    self.pc = 6;
                }
            }
            // new = vm_area_dup(vma); vma_start_write(vma); vma_start_write(new) (v6.4): after
            // ->may_split(), so before v6.16 a fault under the per-VMA lock can re-share the
            // table ->may_split() just unshared (CVE-2025-38084)
            6 => {
                cx.vma_start_write("__split_vma", mm, vma)?;
                self.pc = 2;
            }
            // new = vm_area_dup(vma); new->vm_ops->open(new); vma_prepare(): i_mmap_lock_write()
            2 => {
                if let Some(file) = self.file {
                    cx.down_write("vma_prepare", Object::IMmapRwsem(file))?;
                    let m = &mut cx.k.mms[mm as usize];
                    self.new_id = m.next_vma_id;
                    m.next_vma_id += 1;
                    // __vma_link_file(vp->insert, mapping)
                    cx.k.files[file as usize].i_mmap.push((mm, self.new_id));
                }
                self.pc = 3;
                let pud = cx.env.arch.pud_size();
                let v = cx.k.mms[mm as usize].vma(vma);
                if let (SplitUnshare::InSplit, Some(Some((floor, ceil))), Some(file)) = (
                    cx.env.sw.split_unshare,
                    v.filter(|v| v.flags.hugetlb).map(|v| split_unshare_range(v, addr, pud)),
                    self.file,
                ) {
                    self.unshare = Some(HugetlbUnsharePmds::new(mm, vma, file, floor, ceil, false));
                }
            }
            // if (is_vm_hugetlb_page(vma)) hugetlb_split(vma, addr) (081056dc00a2, v6.16)
            3 => {
                if let Some(u) = self.unshare.as_mut() {
                    if u.step(cx)?.is_ready() {
                        self.unshare = None;
                        self.pc = 4;
                    }
                } else {
                    self.pc = 4;
                }
            }
            // vma->vm_end = addr (or vm_start = addr, vm_pgoff += ...); vma_complete() stores new
            4 => {
                cx.touch(F, Object::Vmas(mm), Access::Write)?;
                let ps = cx.env.arch.page_shift();
                let new_below = self.new_below;
                let m = &mut cx.k.mms[mm as usize];
                if self.file.is_none() {
                    self.new_id = m.next_vma_id;
                    m.next_vma_id += 1;
                }
                let new_id = self.new_id;
                let Some(v) = m.vma_mut(vma) else {
                    self.failed = true;
                    return Ok(Poll::Ready(()));
                };
                let mut new = v.clone();
                new.id = new_id;
                // hugetlb_vm_op_open(): a fresh vma lock for the new VMA
                new.vma_lock = v.vma_lock.as_ref().map(|_| RwLock::default());
                // vm_area_dup(): a fresh per-VMA lock, write-locked like the original
                new.vm_lock = RwLock::default();
                if new_below {
                    new.end = addr;
                    v.pgoff += (addr - v.start) >> ps;
                    v.start = addr;
                } else {
                    new.start = addr;
                    new.pgoff += (addr - v.start) >> ps;
                    v.end = addr;
                }
                let pos = m.vmas.partition_point(|x| x.start < new.start);
                m.vmas.insert(pos, new);
                cx.detail(|| format!("split at 0x{addr:x}"));
                check_split_shared(cx, mm, addr);
                self.pc = 5;
            }
            // vma_complete(): i_mmap_unlock_write()
            _ => {
                if let Some(file) = self.file {
                    cx.up_write("vma_complete", Object::IMmapRwsem(file))?;
                }
                return Ok(Poll::Ready(()));
            }
        }
        Ok(Poll::Pending)
    }

    /// The id of the VMA the split created.
    pub fn new_vma(&self) -> u16 {
        self.new_id
    }
}

/// Oracle of kernel-notes §9.7: after a split at a non-PUD-aligned `addr`, neither side covers
/// the PUD range around it, so the PMD table this mm maps there must not be shared.
fn check_split_shared(cx: &mut Ctx, mm: u8, addr: u64) {
    let pud = cx.env.arch.pud_size();
    if addr & (pud - 1) == 0 || cx.env.arch.pmd_sharing().is_err() {
        return;
    }
    let level = cx.env.pmd_level();
    let Some(pfn) = super::walk::table_at(cx.k, cx.env.arch, mm, addr, level) else { return };
    let Some(f) = cx.k.mem.frame(pfn) else { return };
    let sharers = match cx.env.sw.share_count {
        crate::profile::ShareCount::Refcount => f.refcount.saturating_sub(1),
        crate::profile::ShareCount::PtShareCount => f.pt_share_count,
    };
    if sharers == 0 {
        return;
    }
    let floor = addr & !(pud - 1);
    let what = format!(
        "the VMA split at 0x{addr:x} leaves mm {} mapping PMD table pfn 0x{pfn:x}, shared with {sharers} other mm(s), \
         although no VMA covers the PUD range 0x{floor:x}-0x{:x} any more (sharing needs the whole range)",
        cx.env.mm_name(mm),
        floor + pud
    );
    crate::check::report(cx, ReportKind::SplitShared, "__split_vma", Object::Table(pfn), what);
}
