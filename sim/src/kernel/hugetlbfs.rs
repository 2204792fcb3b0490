//! hugetlbfs file operations that unmap from every process: hole punching.

use super::ctx::{Ctx, R};
use super::hugetlb::{HugeRangeLoop, RangeAction};
use super::mmu_gather::{MmuGather, TlbFinishMmu};
use mmsim_traces::Object;
use std::task::Poll;

/// `fallocate(FALLOC_FL_PUNCH_HOLE)`: `hugetlbfs_punch_hole()` (v6.1). Under `i_mmap_rwsem`
/// write, `hugetlb_vmdelete_list()` unmaps the hole from every VMA mapping it, trylocking each
/// VMA's vma lock (`unmap_hugepage_range()`: gather, the unmap loop, `tlb_finish_mmu()`); then
/// `remove_inode_hugepages()` drops the pages from the page cache. Simplified: a VMA whose vma
/// lock is busy is skipped (the kernel takes a kref, drops `i_mmap_rwsem` and retries); no
/// `i_rwsem`, no reservations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PunchHole {
    file: u8,
    /// The hole in file pages (of the huge page size), `[first, last)`.
    first: u64,
    last: u64,
    pc: u8,
    scan: usize,
    target: Option<(u8, u16)>,
    locked: bool,
    lp: Option<HugeRangeLoop>,
    tlb: MmuGather,
    finish: TlbFinishMmu,
}

impl PunchHole {
    pub fn new(mm: u8, file: u8, first: u64, last: u64) -> Self {
        PunchHole {
            file,
            first,
            last,
            pc: 0,
            scan: 0,
            target: None,
            locked: false,
            lp: None,
            tlb: MmuGather::new(mm),
            finish: TlbFinishMmu::new(),
        }
    }

    pub fn step(&mut self, cx: &mut Ctx) -> R<Poll<()>> {
        const F: &str = "hugetlbfs_punch_hole";
        let i_mmap = Object::IMmapRwsem(self.file);
        match self.pc {
            // i_mmap_lock_write(mapping)
            0 => {
                cx.down_write(F, i_mmap)?;
                self.pc = 1;
            }
            // hugetlb_vmdelete_list(): the next VMA of the i_mmap tree overlapping the hole
            1 => {
                let Some(&(mm, id)) = cx.k.files[self.file as usize].i_mmap.get(self.scan) else {
                    self.pc = 6;
                    return Ok(Poll::Pending);
                };
                self.scan += 1;
                let ps = cx.env.arch.page_shift();
                let Some(v) = cx.k.mms[mm as usize].vma(id) else { return Ok(Poll::Pending) };
                let huge = v.huge_size;
                let first_idx = (v.pgoff << ps) / huge;
                let pages = v.len() / huge;
                let from = self.first.max(first_idx);
                let to = self.last.min(first_idx + pages);
                if from >= to {
                    return Ok(Poll::Pending);
                }
                let start = v.start + (from - first_idx) * huge;
                let end = v.start + (to - first_idx) * huge;
                self.target = Some((mm, id));
                self.tlb = MmuGather::new(mm);
                self.lp = Some(HugeRangeLoop::new(mm, id, start, end, huge, RangeAction::Unmap));
                self.pc = 2;
            }
            // if (!hugetlb_vma_trylock_write(vma)) skip it
            2 => {
                let (mm, id) = self.target.expect("vma chosen");
                let has_lock = cx.k.mms[mm as usize].vma(id).is_some_and(|v| v.vma_lock.is_some());
                if has_lock && cx.env.sw.unsharer_vma_lock {
                    if !cx.down_write_trylock(
                        "hugetlb_vmdelete_list",
                        Object::VmaLock { mm, vma: id },
                    )? {
                        self.pc = 1;
                        return Ok(Poll::Pending);
                    }
                    self.locked = true;
                } else {
                    self.locked = false;
                }
                self.pc = 3;
            }
            // unmap_hugepage_range(vma, start, end, NULL, ZAP_FLAG_DROP_MARKER)
            3 => {
                let lp = self.lp.as_mut().expect("range set");
                if lp.step(cx, &mut self.tlb)?.is_ready() {
                    self.pc = 4;
                }
            }
            4 => {
                if self.finish.step(cx, &mut self.tlb)?.is_ready() {
                    self.finish = TlbFinishMmu::new();
                    self.pc = 5;
                }
            }
            // hugetlb_vma_unlock_write(vma)
            5 => {
                if self.locked {
                    let (mm, id) = self.target.expect("vma chosen");
                    cx.up_write("hugetlb_vmdelete_list", Object::VmaLock { mm, vma: id })?;
                    self.locked = false;
                }
                self.pc = 1;
            }
            // i_mmap_unlock_write(mapping); remove_inode_hugepages(): drop the pages
            _ => {
                cx.up_write(F, i_mmap)?;
                let k = &mut *cx.k;
                let pages = &mut k.files[self.file as usize].pages;
                for idx in self.first..self.last.min(pages.len() as u64) {
                    // the page cache's reference
                    if let Some(pfn) = pages[idx as usize] {
                        pages.set(idx as usize, None);
                        k.mem.huge_page_ref(pfn, -1);
                    }
                }
                return Ok(Poll::Ready(()));
            }
        }
        Ok(Poll::Pending)
    }
}
