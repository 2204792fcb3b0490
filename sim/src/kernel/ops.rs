//! The operations scenarios name, as the system calls and faults that run them: `mmap()` of a
//! hugetlbfs file, a user fault, `MADV_POPULATE_WRITE` (slow GUP), `MADV_DONTNEED`,
//! `munmap()`, `mprotect()` and `exit_mmap()`. Each takes the mm-level locks its syscall takes
//! and calls into the hugetlb paths of [`super::hugetlb`].

use super::anon::{DoAnonymousPage, ZapPteRange};
use super::ctx::{Ctx, R};
use super::hugetlb::{HugetlbChangeProtection, HugetlbFault, ZapHugetlbVma};
use super::mmu_gather::{FreePgdRange, MmuGather, TlbFinishMmu};
use super::user_access::UserAccess;
use super::vma::SplitVma;
use super::walk::Walk;
use crate::model::mem::EntryPtr;
use crate::model::mm::{VmFlags, Vma};
use crate::model::sync::RwLock;
use crate::scenario::Op;
use mmsim_arch::Entry;
use mmsim_traces::{Access, Object};
use std::task::Poll;

/// A running operation: which one, and where it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Running {
    MapFile(MapFile),
    MapAnon(MapAnon),
    PunchHole(super::hugetlbfs::PunchHole),
    TempRef(TempRef),
    Access(UserAccess),
    Fault(UserFault),
    GupSlow(FollowHugetlbPage),
    GupFast(GetUserPagesFast),
    MadviseDontneed(MadviseDontneed),
    Munmap(Unmap),
    Mprotect(Mprotect),
    MmapFixed(MmapFixed),
    Fork(super::fork::Fork),
    ExitMmap(Unmap),
}

impl Running {
    pub fn start(op: Op, mm: u8) -> Running {
        match op {
            Op::MapFile { file, at, len, shared, pgoff, fail_vma_lock_alloc } => {
                Running::MapFile(MapFile {
                    mm,
                    file,
                    at,
                    len,
                    shared,
                    pgoff,
                    fail_vma_lock_alloc,
                    pc: 0,
                    vma: 0,
                    locked: false,
                })
            }
            Op::MapAnon { at, len } => {
                Running::MapAnon(MapAnon { mm, at, len, pc: 0, locked: false })
            }
            Op::Fork { child } => Running::Fork(super::fork::Fork::new(mm, child)),
            Op::MmapFixed { file, at, len, shared, pgoff } => {
                Running::MmapFixed(MmapFixed::new(mm, file, at, len, shared, pgoff))
            }
            Op::Fault { at, write } => Running::Fault(UserFault::new(mm, at, write)),
            Op::Access { at, write } => Running::Access(UserAccess::new(mm, at, write)),
            Op::PunchHole { file, first, last } => {
                Running::PunchHole(super::hugetlbfs::PunchHole::new(mm, file, first, last))
            }
            Op::TempRef { at } => Running::TempRef(TempRef { mm, at, pc: 0, pfn: None }),
            Op::GupSlow { at } => Running::GupSlow(FollowHugetlbPage::new(mm, at)),
            Op::GupFast { at } => Running::GupFast(GetUserPagesFast { mm, at, path: None }),
            Op::MadviseDontneed { at, len } => Running::MadviseDontneed(MadviseDontneed {
                mm,
                at,
                len,
                pc: 0,
                zap: None,
                tlb: MmuGather::new(mm),
                finish: TlbFinishMmu::new(),
            }),
            Op::Munmap { at, len } => Running::Munmap(Unmap::new(mm, at, len, false)),
            Op::Mprotect { at, len, write } => {
                Running::Mprotect(Mprotect { mm, at, len, write, pc: 0, inner: None, split: None })
            }
            Op::ExitMmap => Running::ExitMmap(Unmap::new(mm, 0, u64::MAX, true)),
        }
    }

    /// One transition; `Ready` when the operation has returned.
    pub fn step(&mut self, cx: &mut Ctx) -> R<Poll<()>> {
        match self {
            Running::MapFile(m) => m.step(cx),
            Running::MapAnon(m) => m.step(cx),
            Running::PunchHole(m) => m.step(cx),
            Running::TempRef(m) => m.step(cx),
            Running::Access(m) => m.step(cx),
            Running::Fault(m) => m.step(cx),
            Running::GupSlow(m) => m.step(cx),
            Running::GupFast(m) => m.step(cx),
            Running::MadviseDontneed(m) => m.step(cx),
            Running::Munmap(m) | Running::ExitMmap(m) => m.step(cx),
            Running::Mprotect(m) => m.step(cx),
            Running::MmapFixed(m) => m.step(cx),
            Running::Fork(m) => m.step(cx),
        }
    }
}

/// `mmap(MAP_SHARED)` of a hugetlbfs file: `do_mmap()` -> `mmap_region()`; the VMA gets its
/// vma lock from `hugetlb_reserve_pages()` -> `hugetlb_vma_lock_alloc()`, and `vma_link()`
/// inserts it into the file's `i_mmap` tree under `i_mmap_rwsem`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MapFile {
    mm: u8,
    file: u8,
    at: u64,
    len: u64,
    shared: bool,
    pgoff: u64,
    fail_vma_lock_alloc: bool,
    pc: u8,
    vma: u16,
    /// The caller (`mmap(MAP_FIXED)` after its unmap) holds `mmap_lock` for write.
    locked: bool,
}

impl MapFile {
    fn step(&mut self, cx: &mut Ctx) -> R<Poll<()>> {
        let mmap_lock = Object::MmapLock(self.mm);
        let i_mmap = Object::IMmapRwsem(self.file);
        match self.pc {
            0 => {
                if self.locked {
                    cx.touch("mmap_region", Object::Vmas(self.mm), Access::Write)?;
                } else {
                    cx.down_write("do_mmap", mmap_lock)?;
                }
                let m = &mut cx.k.mms[self.mm as usize];
                self.vma = m.next_vma_id;
                m.next_vma_id += 1;
                let flags = VmFlags {
                    shared: self.shared,
                    mayshare: self.shared,
                    read: true,
                    write: true,
                    hugetlb: true,
                };
                let lock = (self.shared && !self.fail_vma_lock_alloc).then(RwLock::default);
                let vma = Vma {
                    id: self.vma,
                    start: self.at,
                    end: self.at + self.len,
                    flags,
                    file: Some(self.file),
                    pgoff: self.pgoff,
                    huge_size: cx.env.arch.pmd_size(),
                    vma_lock: lock,
                    vm_lock: RwLock::default(),
                    // mmap_region(): vma_start_write(vma) on the new VMA
                    vm_lock_seq: m.mm_lock_seq,
                };
                let pos = m.vmas.partition_point(|v| v.start < vma.start);
                m.vmas.insert(pos, vma);
                self.pc = 1;
            }
            // vma_link() -> __vma_link_file(): insert into mapping->i_mmap
            1 => {
                cx.down_write("vma_link", i_mmap)?;
                cx.k.files[self.file as usize].i_mmap.push((self.mm, self.vma));
                self.pc = 2;
            }
            2 => {
                cx.up_write("vma_link", i_mmap)?;
                self.pc = 3;
            }
            _ => {
                if !self.locked {
                    cx.up_write("do_mmap", mmap_lock)?;
                }
                return Ok(Poll::Ready(()));
            }
        }
        Ok(Poll::Pending)
    }
}

/// `mmap(MAP_PRIVATE | MAP_ANONYMOUS)`: `do_mmap()` -> `mmap_region()` inserts a VMA with no
/// file; page tables are allocated by the first faults.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MapAnon {
    mm: u8,
    at: u64,
    len: u64,
    pc: u8,
    /// The caller holds `mmap_lock` for write (as [`MapFile::locked`]).
    locked: bool,
}

impl MapAnon {
    fn step(&mut self, cx: &mut Ctx) -> R<Poll<()>> {
        let lock = Object::MmapLock(self.mm);
        if self.pc == 0 {
            if self.locked {
                cx.touch("mmap_region", Object::Vmas(self.mm), Access::Write)?;
            } else {
                cx.down_write("do_mmap", lock)?;
            }
            let page = cx.env.arch.page_size();
            let m = &mut cx.k.mms[self.mm as usize];
            let id = m.next_vma_id;
            m.next_vma_id += 1;
            let flags =
                VmFlags { shared: false, mayshare: false, read: true, write: true, hugetlb: false };
            let vma = Vma {
                id,
                start: self.at,
                end: self.at + self.len,
                flags,
                file: None,
                pgoff: 0,
                huge_size: page,
                vma_lock: None,
                vm_lock: RwLock::default(),
                vm_lock_seq: m.mm_lock_seq,
            };
            let pos = m.vmas.partition_point(|v| v.start < vma.start);
            m.vmas.insert(pos, vma);
            self.pc = 1;
            return Ok(Poll::Pending);
        }
        if !self.locked {
            cx.up_write("do_mmap", lock)?;
        }
        Ok(Poll::Ready(()))
    }
}

/// A user access that faults (`do_user_addr_fault()`, v6.9 shape): first
/// `lock_vma_under_rcu()` where the profile handles this kind of VMA under the per-VMA lock
/// (anonymous from v6.4, hugetlb from v6.9), else, or if that fails, `lock_mm_and_find_vma()`
/// (`mmap_lock` read); then `handle_mm_fault()` -> `hugetlb_fault()` or
/// `do_anonymous_page()`, and `vma_end_read()` or `mmap_read_unlock()`. Simplified: no
/// `VM_FAULT_RETRY` from inside the handlers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UserFault {
    mm: u8,
    at: u64,
    write: bool,
    pc: u8,
    fault: Option<FaultPath>,
    /// The VMA whose per-VMA lock the fault holds (`None`: it holds `mmap_lock`).
    vma_locked: Option<u16>,
    /// `lock_vma_under_rcu()` was tried and failed: the fault takes `mmap_lock`.
    fell_back: bool,
}

/// Which fault handler `handle_mm_fault()` picks for the VMA. Not boxed: state stays inline
/// so the step loop never allocates.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum FaultPath {
    Hugetlb(HugetlbFault),
    Anon(DoAnonymousPage),
}

impl UserFault {
    pub fn new(mm: u8, at: u64, write: bool) -> Self {
        UserFault { mm, at, write, pc: 0, fault: None, vma_locked: None, fell_back: false }
    }

    pub fn step(&mut self, cx: &mut Ctx) -> R<Poll<()>> {
        let lock = Object::MmapLock(self.mm);
        match self.pc {
            0 => {
                use crate::profile::PerVmaLock;
                let found = cx.k.mms[self.mm as usize].find_vma(self.at).map(|v| (v.id, v.flags));
                let by_vma_lock = match (cx.env.sw.per_vma_lock, found) {
                    (PerVmaLock::Off, _) | (_, None) => None,
                    (PerVmaLock::Anon, Some((id, f))) => (!f.hugetlb).then_some(id),
                    (PerVmaLock::AnonHugetlb, Some((id, _))) => Some(id),
                };
                if let Some(id) = by_vma_lock.filter(|_| !self.fell_back) {
                    if !cx.lock_vma_under_rcu("lock_vma_under_rcu", id)? {
                        self.fell_back = true;
                        return Ok(Poll::Pending);
                    }
                    self.vma_locked = Some(id);
                } else {
                    cx.down_read("lock_mm_and_find_vma", lock)?;
                }
                // the VMA found above: the lock just taken keeps it as it was
                let vma = found.map(|(_, f)| f.hugetlb);
                self.fault = match vma {
                    Some(true) => {
                        HugetlbFault::new(cx, self.mm, self.at, self.write).map(FaultPath::Hugetlb)
                    }
                    Some(false) => Some(FaultPath::Anon(DoAnonymousPage::new(
                        cx, self.mm, self.at, self.write,
                    ))),
                    None => None,
                };
                self.pc = if self.fault.is_some() { 1 } else { 2 };
            }
            1 => {
                let done = match self.fault.as_mut().expect("vma found") {
                    FaultPath::Hugetlb(f) => f.step(cx)?,
                    FaultPath::Anon(f) => f.step(cx)?,
                };
                if done.is_ready() {
                    self.pc = 2;
                }
            }
            _ => {
                match self.vma_locked {
                    Some(id) => cx.vma_end_read("do_user_addr_fault", id)?,
                    None => cx.up_read("do_user_addr_fault", lock)?,
                }
                return Ok(Poll::Ready(()));
            }
        }
        Ok(Poll::Pending)
    }
}

/// Slow GUP on a hugetlb VMA: `madvise(MADV_POPULATE_WRITE)` -> `faultin_page_range()` ->
/// `__get_user_pages()` -> `follow_hugetlb_page()` (v6.1, removed ~v6.5): `huge_pte_offset()`,
/// `huge_pte_lock()`, read the entry and grab the page; if the entry is missing, drop the locks
/// and call `hugetlb_fault()`, then retry. From v6.3 (eefc7fa53608) it holds the hugetlb vma
/// lock for read around the walk; the `walker_rcu` switch holds `rcu_read_lock()` instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FollowHugetlbPage {
    mm: u8,
    at: u64,
    vma: u16,
    pc: u8,
    vma_locked: bool,
    rcu_held: bool,
    walk: Option<Walk>,
    ptep: Option<EntryPtr>,
    page: u64,
    fault: Option<HugetlbFault>,
}

impl FollowHugetlbPage {
    fn new(mm: u8, at: u64) -> Self {
        FollowHugetlbPage {
            mm,
            at,
            vma: 0,
            pc: 0,
            vma_locked: false,
            rcu_held: false,
            walk: None,
            ptep: None,
            page: 0,
            fault: None,
        }
    }

    fn step(&mut self, cx: &mut Ctx) -> R<Poll<()>> {
        const F: &str = "follow_hugetlb_page";
        let mm = self.mm;
        let mmap_lock = Object::MmapLock(mm);
        let vlock = Object::VmaLock { mm, vma: self.vma };
        match self.pc {
            // mmap_read_lock(mm); vma = vma_lookup(mm, start)
            0 => {
                cx.down_read("faultin_page_range", mmap_lock)?;
                // check_vma_flags(): FOLL_WRITE on a VMA without VM_WRITE is -EFAULT
                match cx.k.mms[mm as usize].find_vma(self.at) {
                    Some(v) if v.flags.hugetlb && v.flags.write => {
                        self.vma = v.id;
                        self.pc = 1;
                    }
                    _ => self.pc = 12,
                }
            }
            // hugetlb_vma_lock_read(vma) (v6.3), or rcu_read_lock() with the walker_rcu switch
            1 => {
                if cx.env.sw.walker_rcu {
                    cx.rcu_read_lock("follow_hugetlb_page")?;
                    self.rcu_held = true;
                } else {
                    let has_lock =
                        cx.k.mms[mm as usize].vma(self.vma).is_some_and(|v| v.vma_lock.is_some());
                    if cx.env.sw.walker_vma_lock && has_lock {
                        cx.down_read("hugetlb_vma_lock_read", vlock)?;
                        self.vma_locked = true;
                    }
                }
                self.pc = 2;
            }
            // pte = huge_pte_offset(mm, vaddr & huge_page_mask(h), huge_page_size(h))
            2 => {
                let (vma, at) = (self.vma, self.at);
                let w = self.walk.get_or_insert_with(|| {
                    if cx.env.sw.hugetlb_walk_lockdep {
                        Walk::hugetlb_walk(cx, mm, vma, at)
                    } else {
                        Walk::new(mm, at, cx.env.pmd_level())
                    }
                });
                if let Poll::Ready(p) = w.step(cx, F)? {
                    self.walk = None;
                    self.ptep = p;
                    self.pc = if p.is_some() { 3 } else { 8 };
                }
            }
            // if (pte) ptl = huge_pte_lock(h, mm, pte)
            3 => {
                cx.ptl_lock("huge_pte_lock", self.ptep.expect("walked"))?;
                self.pc = 4;
            }
            // absent = !pte || huge_pte_none(huge_ptep_get(pte)); needs a fault if absent or RO
            4 => {
                let e = cx.read_entry(F, self.ptep.expect("walked"), mm)?;
                self.pc = match e {
                    Entry::Leaf { pfn, flags } if flags.write => {
                        self.page = pfn;
                        5
                    }
                    _ => 7,
                };
            }
            // try_grab_folio(page, refs, flags)
            5 => {
                cx.touch("try_grab_folio", Object::Page(self.page), Access::Write)?;
                self.pc = 6;
            }
            // spin_unlock(ptl); done with this page
            // (the pointer is dead after the unlock: a pfn no later step uses, which the
            // search must not take for one a stale walk could still use; `dfs::alone`)
            6 => {
                cx.ptl_unlock(F, self.ptep.expect("walked"))?;
                self.ptep = None;
                self.pc = 11;
            }
            // needs a fault: spin_unlock(ptl) first
            7 => {
                cx.ptl_unlock(F, self.ptep.expect("walked"))?;
                self.ptep = None;
                self.pc = 8;
            }
            // hugetlb_vma_unlock_read(vma) before faulting (v6.3)
            8 => {
                if self.rcu_held {
                    cx.rcu_read_unlock("follow_hugetlb_page")?;
                    self.rcu_held = false;
                } else if self.vma_locked {
                    cx.up_read("hugetlb_vma_unlock_read", vlock)?;
                    self.vma_locked = false;
                }
                self.fault = HugetlbFault::new(cx, mm, self.at, true);
                self.pc = if self.fault.is_some() { 9 } else { 12 };
            }
            // ret = hugetlb_fault(mm, vma, vaddr, fault_flags); then retry the walk
            9 => {
                if self.fault.as_mut().expect("vma").step(cx)?.is_ready() {
                    self.fault = None;
                    self.pc = 1;
                }
            }
            // hugetlb_vma_unlock_read(vma) / rcu_read_unlock()
            11 => {
                if self.rcu_held {
                    cx.rcu_read_unlock("follow_hugetlb_page")?;
                    self.rcu_held = false;
                } else if self.vma_locked {
                    cx.up_read("hugetlb_vma_unlock_read", vlock)?;
                    self.vma_locked = false;
                }
                self.pc = 12;
            }
            // mmap_read_unlock(mm)
            _ => {
                cx.up_read("faultin_page_range", mmap_lock)?;
                return Ok(Poll::Ready(()));
            }
        }
        Ok(Poll::Pending)
    }
}

/// Unmapping one VMA's range: `__unmap_hugepage_range_final()` for hugetlb VMAs,
/// `unmap_page_range()` for anonymous ones. Kept inline (not boxed): a path's state is cloned
/// with the kernel state and must not allocate.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Zap {
    Hugetlb(ZapHugetlbVma),
    Anon(ZapPteRange),
}

impl Zap {
    fn for_vma(cx: &Ctx, mm: u8, id: u16, start: u64, end: u64, final_unmap: bool) -> Option<Zap> {
        let v = cx.k.mms[mm as usize].vma(id)?;
        Some(match v.file {
            Some(file) if v.flags.hugetlb => {
                Zap::Hugetlb(ZapHugetlbVma::new(mm, id, file, start, end, v.huge_size, final_unmap))
            }
            _ => Zap::Anon(ZapPteRange::new(mm, start, end)),
        })
    }

    fn step(&mut self, cx: &mut Ctx, tlb: &mut MmuGather) -> R<Poll<()>> {
        match self {
            Zap::Hugetlb(z) => z.step(cx, tlb),
            Zap::Anon(z) => z.step(cx, tlb),
        }
    }
}

/// `madvise(MADV_DONTNEED)` on a hugetlb VMA: `mmap_read_lock()`, then
/// `zap_page_range_single()`: `tlb_gather_mmu()`, `unmap_single_vma()` ->
/// `__unmap_hugepage_range_final()`, `tlb_finish_mmu()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MadviseDontneed {
    mm: u8,
    at: u64,
    len: u64,
    pc: u8,
    zap: Option<Zap>,
    tlb: MmuGather,
    finish: TlbFinishMmu,
}

impl MadviseDontneed {
    fn step(&mut self, cx: &mut Ctx) -> R<Poll<()>> {
        let lock = Object::MmapLock(self.mm);
        match self.pc {
            0 => {
                cx.down_read("madvise", lock)?;
                let end = self.at + self.len;
                self.zap = cx.k.mms[self.mm as usize]
                    .find_vma(self.at)
                    .filter(|v| end <= v.end)
                    .map(|v| v.id)
                    .and_then(|id| Zap::for_vma(cx, self.mm, id, self.at, end, false));
                self.pc = if self.zap.is_some() { 1 } else { 3 };
            }
            1 => {
                if self.zap.as_mut().expect("vma").step(cx, &mut self.tlb)?.is_ready() {
                    self.pc = 2;
                }
            }
            2 => {
                if self.finish.step(cx, &mut self.tlb)?.is_ready() {
                    self.pc = 3;
                }
            }
            _ => {
                cx.up_read("madvise", lock)?;
                return Ok(Poll::Ready(()));
            }
        }
        Ok(Poll::Pending)
    }
}

/// `munmap()` of whole VMAs (`__vm_munmap()` -> `do_vmi_munmap()` -> `unmap_region()`), and
/// `exit_mmap()` when `exit` is set: `mmap_write_lock()`, `tlb_gather_mmu()`, for each VMA
/// `unmap_vmas()` (-> `__unmap_hugepage_range_final()`), `free_pgtables()` (`unlink_file_vma()`
/// then `free_pgd_range()` between the neighbours), `tlb_finish_mmu()`, remove the VMAs; at exit
/// also free the PGD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unmap {
    mm: u8,
    at: u64,
    end: u64,
    exit: bool,
    pc: u8,
    /// VMA ids to remove, in address order (at most a few per scenario).
    vmas: [u16; crate::scenario::MAX_VMAS],
    nvmas: u8,
    cur: u8,
    floor: u64,
    ceiling: u64,
    /// The sub-machine of the current stage: one at a time, so a copy of a munmap in
    /// progress (the exhaustive search copies states) holds the largest one, not all four.
    stage: UnmapStage,
    tlb: MmuGather,
    /// The caller (`mmap(MAP_FIXED)`) already holds `mmap_lock` for write.
    locked: bool,
    /// `-EINVAL` from a refused split: nothing was unmapped.
    pub failed: bool,
}

/// The VMAs to remove, not the unused slots after them (the search's key hashes every step).
impl std::hash::Hash for Unmap {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        let Unmap {
            mm,
            at,
            end,
            exit,
            pc,
            vmas,
            nvmas,
            cur,
            floor,
            ceiling,
            stage,
            tlb,
            locked,
            failed,
        } = self;
        (mm, at, end, exit, pc, &vmas[..usize::from(*nvmas).min(vmas.len())], cur).hash(h);
        (floor, ceiling, stage, tlb, locked, failed).hash(h);
    }
}

/// What an [`Unmap`] is in the middle of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum UnmapStage {
    Idle,
    /// `__split_vma()` at a range end.
    Split(SplitVma),
    /// `unmap_vmas()` of one VMA.
    Zap(Zap),
    /// `free_pgd_range()`.
    Free(FreePgdRange),
    /// `tlb_finish_mmu()`.
    Finish(TlbFinishMmu),
}

impl Unmap {
    fn new(mm: u8, at: u64, len: u64, exit: bool) -> Self {
        Unmap {
            stage: UnmapStage::Idle,
            locked: false,
            failed: false,
            mm,
            at,
            end: at.saturating_add(len),
            exit,
            pc: 0,
            vmas: [0; crate::scenario::MAX_VMAS],
            nvmas: 0,
            cur: 0,
            floor: 0,
            ceiling: 0,
            tlb: MmuGather::new(mm),
        }
    }

    fn func(&self) -> &'static str {
        if self.exit {
            "exit_mmap"
        } else {
            "__vm_munmap"
        }
    }

    fn step(&mut self, cx: &mut Ctx) -> R<Poll<()>> {
        let f = self.func();
        let mm = self.mm;
        let lock = Object::MmapLock(mm);
        match self.pc {
            // mmap_write_lock(mm)
            0 => {
                if !self.locked {
                    cx.down_write(f, lock)?;
                }
                self.pc = if self.exit { 12 } else { 10 };
            }
            // do_vmi_align_munmap(): if (start > vma->vm_start) __split_vma(vmi, vma, start, 1);
            // then for the last VMA: if (next->vm_end > end) __split_vma(vmi, next, end, 0)
            10 | 11 => {
                if !matches!(self.stage, UnmapStage::Split(_)) {
                    let (cut, below) =
                        if self.pc == 10 { (self.at, true) } else { (self.end, false) };
                    let straddling = cx.k.mms[mm as usize]
                        .vmas
                        .iter()
                        .find(|v| v.start < cut && cut < v.end)
                        .map(|v| v.id);
                    match straddling {
                        Some(id) => {
                            self.stage = UnmapStage::Split(SplitVma::new(mm, id, cut, below))
                        }
                        None => {
                            self.pc += 1;
                            return Ok(Poll::Pending);
                        }
                    }
                }
                let UnmapStage::Split(s) = &mut self.stage else { unreachable!("set above") };
                if s.step(cx)?.is_ready() {
                    let failed = s.failed;
                    self.stage = UnmapStage::Idle;
                    if failed {
                        // the munmap fails with -EINVAL (an earlier split stays done)
                        self.failed = true;
                        self.pc = 6;
                    } else {
                        self.pc += 1;
                    }
                }
            }
            // find the VMAs and their neighbours
            12 => {
                let m = &cx.k.mms[mm as usize];
                self.nvmas = 0;
                for v in m.vmas.iter().filter(|v| v.start < self.end && self.at < v.end) {
                    if (self.nvmas as usize) < self.vmas.len() {
                        self.vmas[self.nvmas as usize] = v.id;
                        self.nvmas += 1;
                    }
                }
                self.floor =
                    m.vmas.iter().filter(|v| v.end <= self.at).map(|v| v.end).max().unwrap_or(0);
                self.ceiling = m
                    .vmas
                    .iter()
                    .filter(|v| v.start >= self.end)
                    .map(|v| v.start)
                    .min()
                    .unwrap_or(0);
                self.cur = 0;
                self.pc = 13;
            }
            // do_vmi_align_munmap(): vma_start_write(next) for each VMA it detaches (v6.4):
            // waits for faults holding their per-VMA lock
            13 => {
                if self.cur >= self.nvmas {
                    self.cur = 0;
                    self.pc = 1;
                    return Ok(Poll::Pending);
                }
                cx.vma_start_write("do_vmi_align_munmap", mm, self.vmas[self.cur as usize])?;
                self.cur += 1;
            }
            // unmap_vmas(): __unmap_hugepage_range_final() for each VMA
            1 => {
                if self.cur >= self.nvmas {
                    self.cur = 0;
                    self.pc = 2;
                    return Ok(Poll::Pending);
                }
                let id = self.vmas[self.cur as usize];
                if !matches!(self.stage, UnmapStage::Zap(_)) {
                    let zap = cx.k.mms[mm as usize]
                        .vma(id)
                        .map(|v| (v.start, v.end))
                        .and_then(|(start, end)| Zap::for_vma(cx, mm, id, start, end, true));
                    let Some(zap) = zap else {
                        self.cur += 1;
                        return Ok(Poll::Pending);
                    };
                    self.stage = UnmapStage::Zap(zap);
                }
                let UnmapStage::Zap(zap) = &mut self.stage else { unreachable!("set above") };
                if zap.step(cx, &mut self.tlb)?.is_ready() {
                    self.stage = UnmapStage::Idle;
                    self.cur += 1;
                }
            }
            // free_pgtables(): unlink_file_vma() for each VMA: i_mmap_lock_write(); remove
            2 => {
                if self.cur >= self.nvmas {
                    self.pc = 4;
                    return Ok(Poll::Pending);
                }
                let id = self.vmas[self.cur as usize];
                match cx.k.mms[mm as usize].vma(id).and_then(|v| v.file) {
                    Some(file) => {
                        cx.down_write("unlink_file_vma", Object::IMmapRwsem(file))?;
                        cx.k.files[file as usize].i_mmap.retain(|&(m, v)| (m, v) != (mm, id));
                        self.pc = 3;
                    }
                    None => self.cur += 1,
                }
            }
            // i_mmap_unlock_write()
            3 => {
                let id = self.vmas[self.cur as usize];
                let file = cx.k.mms[mm as usize].vma(id).and_then(|v| v.file).unwrap_or(0);
                cx.up_write("unlink_file_vma", Object::IMmapRwsem(file))?;
                self.cur += 1;
                self.pc = 2;
            }
            // free_pgd_range(tlb, addr, end, floor, ceiling) (hugetlb_free_pgd_range() on x86)
            4 => {
                if self.nvmas == 0 {
                    self.pc = 5;
                    return Ok(Poll::Pending);
                }
                let first = cx.k.mms[mm as usize].vma(self.vmas[0]).map_or(self.at, |v| v.start);
                let last = cx.k.mms[mm as usize]
                    .vma(self.vmas[self.nvmas as usize - 1])
                    .map_or(self.end, |v| v.end);
                let (floor, ceiling) = (self.floor, self.ceiling);
                if !matches!(self.stage, UnmapStage::Free(_)) {
                    let fr = FreePgdRange::new(cx, mm, first, last, floor, ceiling);
                    self.stage = UnmapStage::Free(fr);
                }
                let UnmapStage::Free(fr) = &mut self.stage else { unreachable!("set above") };
                if fr.step(cx, &mut self.tlb)?.is_ready() {
                    self.stage = UnmapStage::Finish(TlbFinishMmu::new());
                    self.pc = 5;
                }
            }
            // tlb_finish_mmu(&tlb)
            5 => {
                if !matches!(self.stage, UnmapStage::Finish(_)) {
                    self.stage = UnmapStage::Finish(TlbFinishMmu::new());
                }
                let UnmapStage::Finish(finish) = &mut self.stage else { unreachable!("set above") };
                if finish.step(cx, &mut self.tlb)?.is_ready() {
                    self.stage = UnmapStage::Idle;
                    let (at, end) = (self.at, self.end);
                    cx.k.mms[mm as usize].vmas.retain(|v| !(v.start < end && at < v.end));
                    self.pc = 6;
                }
            }
            // mmap_write_unlock(mm)
            6 => {
                if !self.locked {
                    cx.up_write(f, lock)?;
                }
                self.pc = if self.exit { 7 } else { 8 };
            }
            // mm_free_pgd() -> pgd_free()
            7 => {
                let pgd = cx.k.mms[mm as usize].pgd;
                cx.free_table("pgd_free", pgd)?;
                self.pc = 8;
            }
            _ => return Ok(Poll::Ready(())),
        }
        Ok(Poll::Pending)
    }
}

/// `mprotect()` within one VMA: `mmap_write_lock()`, `mprotect_fixup()` (which splits the VMA
/// at the range's ends through `vma_modify_flags()` -> `__split_vma()`) ->
/// `change_protection()` -> `hugetlb_change_protection()`, update `vm_flags`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Mprotect {
    mm: u8,
    at: u64,
    len: u64,
    write: bool,
    pc: u8,
    inner: Option<HugetlbChangeProtection>,
    split: Option<SplitVma>,
}

impl Mprotect {
    fn step(&mut self, cx: &mut Ctx) -> R<Poll<()>> {
        let lock = Object::MmapLock(self.mm);
        let mm = self.mm;
        match self.pc {
            0 => {
                cx.down_write("do_mprotect_pkey", lock)?;
                self.pc = 10;
            }
            // vma_modify_flags(): split_vma() at start, then at end, where they fall inside
            10 | 11 => {
                let end = self.at + self.len;
                if self.split.is_none() {
                    let (cut, below) = if self.pc == 10 { (self.at, true) } else { (end, false) };
                    let straddling = cx.k.mms[mm as usize]
                        .vmas
                        .iter()
                        .find(|v| v.start < cut && cut < v.end)
                        .map(|v| v.id);
                    match straddling {
                        Some(id) => self.split = Some(SplitVma::new(mm, id, cut, below)),
                        None => {
                            self.pc += 1;
                            return Ok(Poll::Pending);
                        }
                    }
                }
                let s = self.split.as_mut().expect("set");
                if s.step(cx)?.is_ready() {
                    let failed = s.failed;
                    self.split = None;
                    self.pc = if failed { 2 } else { self.pc + 1 };
                }
            }
            // mprotect_fixup(): vma_start_write(vma) before changing it (v6.4)
            12 => {
                if let Some(id) = cx.k.mms[mm as usize].find_vma(self.at).map(|v| v.id) {
                    cx.vma_start_write("mprotect_fixup", mm, id)?;
                }
                self.pc = 15;
            }
            15 => {
                let end = self.at + self.len;
                self.inner = cx.k.mms[self.mm as usize]
                    .find_vma(self.at)
                    .filter(|v| v.file.is_some())
                    .map(|v| {
                        HugetlbChangeProtection::new(
                            self.mm,
                            v.id,
                            v.file.unwrap_or(0),
                            self.at,
                            end,
                            v.huge_size,
                            self.write,
                        )
                    });
                self.pc = if self.inner.is_some() { 1 } else { 2 };
            }
            1 => {
                if self.inner.as_mut().expect("vma").step(cx)?.is_ready() {
                    if let Some(v) =
                        cx.k.mms[self.mm as usize].vmas.iter_mut().find(|v| v.contains(self.at))
                    {
                        v.flags.write = self.write;
                        v.flags.shared = self.write && v.flags.mayshare;
                    }
                    self.pc = 2;
                }
            }
            _ => {
                cx.up_write("do_mprotect_pkey", lock)?;
                return Ok(Poll::Ready(()));
            }
        }
        Ok(Poll::Pending)
    }
}

/// A PFN walker's temporary reference to the PMD table mapping `at` (compaction, memory
/// failure or the `split_huge_pages` debugfs scanner: `get_page_unless_zero()` ...
/// `put_page()`), kernel-notes §10.4. The walker finds the page by pfn, not through the page
/// tables, so locating it takes no step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TempRef {
    mm: u8,
    at: u64,
    pc: u8,
    pfn: Option<u64>,
}

impl TempRef {
    fn step(&mut self, cx: &mut Ctx) -> R<Poll<()>> {
        match self.pc {
            // the walker reaches the table's pfn (no step: it scans pfns, not page tables)
            0 => {
                let level = cx.env.pmd_level();
                self.pfn = super::walk::table_at(cx.k, cx.env.arch, self.mm, self.at, level);
                if self.pfn.is_none() {
                    return Ok(Poll::Ready(()));
                }
                self.pc = 1;
            }
            // get_page_unless_zero(page)
            1 => {
                let pfn = self.pfn.expect("found");
                if !cx.table_get_ref("get_page_unless_zero", pfn)? {
                    return Ok(Poll::Ready(()));
                }
                self.pc = 2;
            }
            // ... put_page(page)
            _ => {
                cx.table_put_ref("put_page", self.pfn.expect("found"))?;
                return Ok(Poll::Ready(()));
            }
        }
        Ok(Poll::Pending)
    }
}

/// `mmap(MAP_FIXED)` over a range that may hold mappings: `do_mmap()` -> `mmap_region()`
/// under `mmap_lock` write unmaps what the range overlaps first (`do_vmi_munmap()`, splitting
/// straddling VMAs through `__split_vma()`), then inserts the new VMA. Simplification: the
/// old range is unmapped completely before the new VMA goes in (v6.12's
/// `vms_gather_munmap_vmas()` / `vms_complete_munmap_vmas()` split the same work around the
/// insertion); a refused split fails the call with `-EINVAL` and maps nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MmapFixed {
    mm: u8,
    pc: u8,
    unmap: Unmap,
    map: MapNew,
}

/// The mapping `mmap(MAP_FIXED)` inserts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum MapNew {
    File(MapFile),
    Anon(MapAnon),
}

impl MmapFixed {
    fn new(mm: u8, file: Option<u8>, at: u64, len: u64, shared: bool, pgoff: u64) -> Self {
        let mut unmap = Unmap::new(mm, at, len, false);
        unmap.locked = true;
        let map = match file {
            Some(file) => MapNew::File(MapFile {
                mm,
                file,
                at,
                len,
                shared,
                pgoff,
                fail_vma_lock_alloc: false,
                pc: 0,
                vma: 0,
                locked: true,
            }),
            None => MapNew::Anon(MapAnon { mm, at, len, pc: 0, locked: true }),
        };
        MmapFixed { mm, pc: 0, unmap, map }
    }

    fn step(&mut self, cx: &mut Ctx) -> R<Poll<()>> {
        let lock = Object::MmapLock(self.mm);
        match self.pc {
            0 => {
                cx.down_write("do_mmap", lock)?;
                self.pc = 1;
            }
            // mmap_region(): do_vmi_munmap(&vmi, mm, addr, len, uf, false)
            1 => {
                if self.unmap.step(cx)?.is_ready() {
                    self.pc = if self.unmap.failed { 3 } else { 2 };
                }
            }
            // the new VMA: vma_link() (and its file's i_mmap)
            2 => {
                let done = match &mut self.map {
                    MapNew::File(m) => m.step(cx)?,
                    MapNew::Anon(m) => m.step(cx)?,
                };
                if done.is_ready() {
                    self.pc = 3;
                }
            }
            _ => {
                cx.up_write("do_mmap", lock)?;
                return Ok(Poll::Ready(()));
            }
        }
        Ok(Poll::Pending)
    }
}

/// `get_user_pages_fast()`: the lockless `gup_fast()` walk where the arch has GUP-fast, else
/// (riscv64 before v6.8, `riscv_gup_fast` off) the slow-GUP fallback under `mmap_lock`
/// (`get_user_pages_unlocked()` -> `follow_hugetlb_page()`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GetUserPagesFast {
    mm: u8,
    at: u64,
    path: Option<GupPath>,
}

#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum GupPath {
    Fast(super::gup_fast::GupFast),
    Slow(FollowHugetlbPage),
}

impl GetUserPagesFast {
    fn step(&mut self, cx: &mut Ctx) -> R<Poll<()>> {
        let (mm, at) = (self.mm, self.at);
        let path = self.path.get_or_insert_with(|| {
            if cx.env.arch.name().starts_with("riscv64") && !cx.env.sw.riscv_gup_fast {
                GupPath::Slow(FollowHugetlbPage::new(mm, at))
            } else {
                GupPath::Fast(super::gup_fast::GupFast::new(mm, at))
            }
        });
        match path {
            GupPath::Fast(g) => g.step(cx),
            GupPath::Slow(g) => g.step(cx),
        }
    }
}
