//! GUP-fast (kernel-notes §4.4): `get_user_pages_fast()` -> `gup_fast_fallback()` ->
//! `gup_fast()` (mm/gup.c, v6.10 names), the lockless walk that runs with IRQs disabled.
//!
//! Follows v6.10 for a PMD-size leaf: `local_irq_save()`, then `gup_fast_pgd_range()` reads
//! each upper entry once without any lock (`READ_ONCE`, `pmdp_get_lockless()`), and on a leaf
//! PMD `gup_fast_pmd_leaf()` grabs the folio (`try_grab_folio_fast()`), rereads `*pmdp` and
//! drops the folio if it changed; then `local_irq_restore()`. Its safety comes from outside:
//! either page tables are freed by RCU and IRQs-off is a read-side section, or the free waits
//! for a flush IPI that an IRQs-off CPU cannot take (§4.4, §6.4). Simplifications: one page;
//! no `FOLL_PIN` `write_protect_seq` sample, no PTE-level or PUD-leaf walk, and the slow
//! fallback (`__gup_longterm_locked()`) when the fast walk finds nothing is not run.

use super::ctx::{Ctx, R};
use super::interrupts::{local_irq_disable, local_irq_enable};
use crate::model::mem::EntryPtr;
use mmsim_arch::Entry;
use mmsim_traces::{Access, Object};
use std::task::Poll;

/// A lockless read of one entry (`READ_ONCE(*p)` / `pmdp_get_lockless()`) on behalf of mm
/// `mm`: no lock, so the table's lifetime is checked (KASAN), and only what the read obtains
/// (`Ctx::hw_read_entry`): a lockless walker may legitimately read a table its mm is
/// unlinking, as long as the table is not freed and still maps what the walker's VMA maps.
/// `mm` is `None` for the recheck, whose value is only compared with the first read.
fn read_once(cx: &mut Ctx, func: &'static str, p: EntryPtr, mm: Option<u8>) -> R<Entry> {
    cx.begin(func, Object::Entry { pfn: p.pfn, index: p.index }, Access::Read)?;
    let e = cx.hw_read_entry(func, p, mm);
    let (env, raw) = (cx.env, cx.k.mem.load(p));
    cx.detail(|| format!("{} = 0x{raw:x}", crate::check::entry_name(env, p)));
    Ok(e)
}

/// `gup_fast(start, end, gup_flags, pages)` for one PMD-size hugetlb page at `at`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GupFast {
    mm: u8,
    at: u64,
    pc: u8,
    /// The entry the walk reads next (`pgdp`, `p4dp`, `pudp`, `pmdp`).
    cur: Option<EntryPtr>,
    /// `orig = pmdp_get_lockless(pmdp)`, and the folio it maps.
    pmdp: Option<EntryPtr>,
    orig: Entry,
    page: u64,
}

impl GupFast {
    pub fn new(mm: u8, at: u64) -> Self {
        GupFast { mm, at, pc: 0, cur: None, pmdp: None, orig: Entry::None, page: 0 }
    }

    pub fn step(&mut self, cx: &mut Ctx) -> R<Poll<()>> {
        const F: &str = "gup_fast";
        let pmd_level = cx.env.pmd_level();
        match self.pc {
            // local_irq_save(flags)
            0 => {
                local_irq_disable(cx, F)?;
                self.pc = 1;
            }
            // gup_fast_pgd_range(): pgd = READ_ONCE(*pgdp); ... gup_fast_pud_range();
            // gup_fast_pmd_range(): pmd = pmdp_get_lockless(pmdp)
            1 => {
                let cur = match self.cur {
                    Some(c) => c,
                    None => cx.ptr(cx.k.mms[self.mm as usize].pgd, 0, self.at),
                };
                let e = read_once(cx, "gup_fast_pgd_range", cur, Some(self.mm))?;
                self.cur = Some(cur);
                match e {
                    Entry::Table { pfn } if (cur.level as usize) < pmd_level => {
                        self.cur = Some(cx.ptr(pfn, cur.level as usize + 1, self.at));
                    }
                    // a leaf PMD: gup_fast_pmd_leaf()
                    Entry::Leaf { pfn, .. } if cur.level as usize == pmd_level => {
                        self.pmdp = Some(cur);
                        self.orig = e;
                        self.page = pfn;
                        self.pc = 2;
                    }
                    // none, or a table where a leaf was expected: nothing pinned, the caller
                    // would fall back to slow GUP
                    _ => self.pc = 5,
                }
            }
            // folio = try_grab_folio_fast(page, refs, flags)
            2 => {
                cx.touch("try_grab_folio_fast", Object::Page(self.page), Access::Write)?;
                self.pc = 3;
            }
            // if (unlikely(pmd_val(orig) != pmd_val(*pmdp))) { gup_put_folio(); return 0; }
            3 => {
                let pmdp = self.pmdp.expect("leaf found");
                // only compared: a changed entry makes the walk drop the folio
                let now = read_once(cx, "gup_fast_pmd_leaf", pmdp, None)?;
                self.pc = if now == self.orig { 5 } else { 4 };
            }
            // gup_put_folio(folio, refs, flags)
            4 => {
                cx.touch("gup_put_folio", Object::Page(self.page), Access::Write)?;
                self.pc = 5;
            }
            // local_irq_restore(flags)
            _ => {
                local_irq_enable(cx, F)?;
                return Ok(Poll::Ready(()));
            }
        }
        Ok(Poll::Pending)
    }
}
