//! Private anonymous memory with ordinary PTE tables: the fault (`do_anonymous_page()`) and the
//! unmap (`zap_pte_range()`), following mm/memory.c of v6.1. PTE tables carry their own split
//! ptlock and are freed by `free_pgtables()` like PMD tables. Simplified: no THP, no swap, no
//! rmap or memcg accounting; a write fault maps a fresh page, a read fault too (no zero page).

use super::ctx::{Ctx, R};
use super::mmu_gather::MmuGather;
use super::skip::EmptySlots;
use super::walk::{AllocWalk, Walk};
use crate::model::mem::EntryPtr;
use mmsim_arch::{Entry, LeafFlags};
use mmsim_traces::{Access, Object};
use std::task::Poll;

/// `__handle_mm_fault()` -> `do_anonymous_page()`: allocate the tables down to the PTE table
/// (`pte_alloc()`), then under the PTE table's ptlock install a new page if the entry is none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DoAnonymousPage {
    mm: u8,
    at: u64,
    write: bool,
    pc: u8,
    alloc: AllocWalk,
    ptep: Option<EntryPtr>,
    page: u64,
}

impl DoAnonymousPage {
    pub fn new(cx: &Ctx, mm: u8, at: u64, write: bool) -> Self {
        let last = cx.env.arch.levels().len() - 1;
        let at = at & !(cx.env.arch.page_size() - 1);
        DoAnonymousPage {
            mm,
            at,
            write,
            pc: 0,
            alloc: AllocWalk::new(mm, at, last),
            ptep: None,
            page: 0,
        }
    }

    pub fn step(&mut self, cx: &mut Ctx) -> R<Poll<()>> {
        const F: &str = "do_anonymous_page";
        let mm = self.mm;
        match self.pc {
            // pmd = pmd_alloc(); pte_alloc(mm, pmd)
            0 => {
                if let Poll::Ready(p) = self.alloc.step(cx)? {
                    self.ptep = Some(p);
                    self.pc = 1;
                }
            }
            // folio = vma_alloc_zeroed_movable_folio()
            1 => {
                let pfn = cx.k.mem.peek_huge_page();
                cx.touch(F, Object::Page(pfn), Access::Alloc)?;
                self.page = cx.k.mem.alloc_huge_page();
                self.pc = 2;
            }
            // vmf->pte = pte_offset_map_lock(mm, pmd, addr, &vmf->ptl)
            2 => {
                cx.ptl_lock(F, self.ptep.expect("allocated"))?;
                self.pc = 3;
            }
            // if (!pte_none(ptep_get(vmf->pte))) goto release
            3 => {
                let e = cx.read_entry(F, self.ptep.expect("allocated"), mm)?;
                self.pc = if e == Entry::None { 4 } else { 5 };
            }
            // set_pte_at(mm, addr, vmf->pte, entry)
            4 => {
                let flags =
                    LeafFlags { write: self.write, dirty: self.write, ..LeafFlags::USER_RW };
                cx.write_entry(
                    "set_pte_at",
                    self.ptep.expect("allocated"),
                    mm,
                    Entry::Leaf { pfn: self.page, flags },
                )?;
                self.pc = 5;
            }
            // pte_unmap_unlock(vmf->pte, vmf->ptl)
            _ => {
                cx.ptl_unlock(F, self.ptep.expect("allocated"))?;
                return Ok(Poll::Ready(()));
            }
        }
        Ok(Poll::Pending)
    }
}

/// `unmap_page_range()` -> ... -> `zap_pte_range()` over `[start, end)` of an anonymous VMA:
/// for each page, find its PTE table (skipping a whole PMD range without one), clear the entry
/// under the table's ptlock and add it to the gather's flush range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ZapPteRange {
    mm: u8,
    addr: u64,
    end: u64,
    pc: u8,
    walk: Option<Walk>,
    ptep: Option<EntryPtr>,
    /// Whether the entry read was empty (none), and the skip of the empty entries after it.
    empty: bool,
    skip: EmptySlots,
}

impl ZapPteRange {
    pub fn new(mm: u8, start: u64, end: u64) -> Self {
        let skip = EmptySlots::default();
        ZapPteRange { mm, addr: start, end, pc: 0, walk: None, ptep: None, empty: false, skip }
    }

    pub fn step(&mut self, cx: &mut Ctx, tlb: &mut MmuGather) -> R<Poll<()>> {
        const F: &str = "zap_pte_range";
        let mm = self.mm;
        let page = cx.env.arch.page_size();
        match self.pc {
            // pte = pte_offset_map_lock(): the walk to this page's PTE table
            0 => {
                if self.addr >= self.end {
                    return Ok(Poll::Ready(()));
                }
                let last = cx.env.arch.levels().len() - 1;
                let addr = self.addr;
                let w = self.walk.get_or_insert_with(|| Walk::new(mm, addr, last));
                if let Poll::Ready(p) = w.step(cx, "unmap_page_range")? {
                    self.walk = None;
                    match p {
                        Some(p) => {
                            self.ptep = Some(p);
                            self.pc = 1;
                        }
                        // pmd_none_or_trans_huge_or_clear_bad(): next PMD range
                        None => {
                            let pmd = cx.env.arch.pmd_size();
                            self.addr = (self.addr | (pmd - 1)) + 1;
                            self.skip.forget();
                        }
                    }
                }
            }
            1 => {
                cx.ptl_lock(F, self.ptep.expect("walked"))?;
                self.pc = 2;
            }
            2 => {
                let e = cx.read_entry(F, self.ptep.expect("walked"), mm)?;
                self.empty = matches!(e, Entry::None);
                self.pc = if matches!(e, Entry::Leaf { .. }) { 3 } else { 4 };
            }
            // ptent = ptep_get_and_clear_full(mm, addr, pte, tlb->fullmm)
            3 => {
                cx.write_entry(F, self.ptep.expect("walked"), mm, Entry::None)?;
                tlb.add_range(self.addr, page);
                self.empty = false;
                self.pc = 4;
            }
            // pte_unmap_unlock(start_pte, ptl)
            _ => {
                let ptep = self.ptep.expect("walked");
                cx.ptl_unlock(F, ptep)?;
                self.addr += page;
                self.pc = 0;
                // the following empty entries of this PTE table (module `skip`)
                let pmd = cx.env.arch.pmd_size();
                let limit = self.end.min(((self.addr - page) & !(pmd - 1)) + pmd);
                self.skip.after_iteration(cx, ptep, self.empty, &mut self.addr, page, limit);
            }
        }
        Ok(Poll::Pending)
    }
}
