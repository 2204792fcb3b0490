//! Page-table freeing and TLB shootdown: `struct mmu_gather` (mm/mmu_gather.c,
//! include/asm-generic/tlb.h), `free_pgtables()`/`free_pgd_range()` (mm/memory.c),
//! `__pmd_free_tlb()`, `tlb_remove_table()`, `tlb_finish_mmu()`, `flush_tlb_mm_range()` and
//! `tlb_remove_table_sync_one()`, following v6.1 with the table-free policy of the arch
//! configuration (RCU or after the flush) and the profile's ptlock lifetime.

use super::ctx::{Ctx, R};
use super::skip::EmptySlots;
use crate::model::mem::EntryPtr;
use crate::profile::PtlockDies;
use mmsim_arch::{Entry, TableFree, TlbFlush};
use mmsim_traces::{Access, Object};
use std::task::Poll;

/// Tables one gather can hold before it must flush (`MAX_TABLE_BATCH` is a page of pointers;
/// scenarios here never come close).
pub const TABLE_BATCH: usize = 16;

/// `struct mmu_gather`: the range to flush and the page-table pages waiting to be freed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmuGather {
    pub mm: u8,
    pub start: u64,
    pub end: u64,
    pub freed_tables: bool,
    tables: [u64; TABLE_BATCH],
    ntables: u8,
}

/// The tables held, not the unused slots after them (the search's key hashes every step).
impl std::hash::Hash for MmuGather {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        let MmuGather { mm, start, end, freed_tables, tables: _, ntables: _ } = self;
        (mm, start, end, freed_tables, self.tables()).hash(h);
    }
}

impl MmuGather {
    /// `tlb_gather_mmu()`.
    pub fn new(mm: u8) -> Self {
        MmuGather {
            mm,
            start: u64::MAX,
            end: 0,
            freed_tables: false,
            tables: [0; TABLE_BATCH],
            ntables: 0,
        }
    }
    /// `tlb_flush_pmd_range()` and friends: widen the range to flush.
    pub fn add_range(&mut self, start: u64, len: u64) {
        self.start = self.start.min(start);
        self.end = self.end.max(start + len);
    }
    pub fn needs_flush(&self) -> bool {
        self.end > self.start || self.freed_tables
    }
    pub fn tables(&self) -> &[u64] {
        &self.tables[..self.ntables as usize]
    }
    fn push_table(&mut self, pfn: u64) {
        // A full batch would be flushed early (tlb_table_flush()); scenarios stay far below.
        assert!((self.ntables as usize) < TABLE_BATCH, "mmu_gather table batch overflow");
        self.tables[self.ntables as usize] = pfn;
        self.ntables += 1;
    }
    fn clear(&mut self) {
        self.ntables = 0;
        self.start = u64::MAX;
        self.end = 0;
        self.freed_tables = false;
    }
}

/// `flush_tlb_mm_range()` / `flush_tlb_multi()`: invalidate the TLBs that may cache an mm.
/// With IPIs (x86 native, riscv IPI mode) the sender flushes locally, interrupts every other CPU
/// in `mm_cpumask()` and waits for each to acknowledge, which a CPU with IRQs disabled delays;
/// broadcast invalidation (arm64 TLBI IS, x86 INVLPGB), PV hypercalls and SBI remote fences
/// reach every CPU at once without interrupting it. A leaf-only flush (arm64 `VALE1IS`) keeps
/// walk-cache entries. When the flush returns, the mm's `flushed_at` records the claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlushTlb {
    /// The mm to flush; `None` for a pure synchronisation IPI (`tlb_remove_table_sync_one()`).
    mm: Option<u8>,
    leaf_only: bool,
    /// Only this CPU's TLB (a test mutant: a flush that loses its remote half).
    local: bool,
    targets: u8,
    pc: u8,
    func: &'static str,
}

impl FlushTlb {
    /// Flush `mm` here and on the CPUs in its `mm_cpumask()`.
    pub fn mm(cx: &Ctx, mm: u8, func: &'static str) -> Self {
        let targets = cx.k.mms[mm as usize].cpumask & !(1 << cx.who.cpu);
        FlushTlb { mm: Some(mm), leaf_only: false, local: false, targets, pc: 0, func }
    }

    /// Flush only this CPU's TLB but claim completion for the whole mm: a broken flush, for
    /// the mutant tests that prove the stale-TLB checker catches one.
    pub fn local_only(mut self) -> Self {
        self.local = true;
        self.targets = 0;
        self
    }

    /// Only invalidate leaf entries (arm64 `tlb_flush()` with `last_level`).
    pub fn leaf_only(mut self, leaf_only: bool) -> Self {
        self.leaf_only = leaf_only;
        self
    }

    /// `smp_call_function(tlb_remove_table_smp_sync, NULL, 1)`: an empty IPI to every other
    /// online CPU, waiting for each; flushes nothing.
    pub fn all_others(cx: &Ctx, func: &'static str) -> Self {
        let online = ((1u16 << cx.env.ncpus()) - 1) as u8;
        let targets = online & !(1 << cx.who.cpu);
        FlushTlb { mm: None, leaf_only: false, local: false, targets, pc: 0, func }
    }

    fn uses_ipi(cx: &Ctx) -> bool {
        cx.env.tlb_flush == TlbFlush::Ipi
    }

    /// `sync_only` is kept for callers that build a sync IPI with [`FlushTlb::all_others`].
    pub fn step(&mut self, cx: &mut Ctx, sync_only: bool) -> R<Poll<()>> {
        let me = cx.who.cpu;
        let sync_only = sync_only || self.mm.is_none();
        match self.pc {
            // flush_tlb_func() on this CPU, or the broadcast instruction / hypercall / SBI call
            0 if !sync_only => {
                cx.touch(self.func, Object::Tlb(me), Access::TlbFlush)?;
                let mm = self.mm.expect("not a sync IPI");
                let ipi = Self::uses_ipi(cx);
                for (c, cpu) in cx.k.cpus.iter_mut().enumerate() {
                    if c == me as usize || (!ipi && !self.local) {
                        cpu.tlb.flush_mm(mm, self.leaf_only);
                    }
                }
                if ipi && self.targets != 0 {
                    self.pc = 1;
                } else {
                    cx.k.mms[mm as usize].flushed_at = cx.step;
                    self.pc = 3;
                }
            }
            0 => self.pc = 1,
            // send one IPI per target
            1 => {
                if self.targets == 0 {
                    self.pc = 3;
                    return Ok(Poll::Pending);
                }
                let t = self.targets.trailing_zeros() as u8;
                cx.touch(self.func, Object::Cpu(t), Access::IpiSend)?;
                let target = &mut cx.k.cpus[t as usize];
                target.ipi_from |= 1 << me;
                if let Some(mm) = self.mm {
                    target.ipi_flush |= 1 << mm;
                    target.ipi_flush_leaf_only = self.leaf_only;
                }
                cx.k.cpus[me as usize].ipi_waiting |= 1 << t;
                self.targets &= !(1 << t);
                if self.targets == 0 {
                    self.pc = 2;
                }
            }
            // wait for every acknowledgement (csd_lock_wait())
            2 => {
                cx.touch(self.func, Object::Cpu(me), Access::IpiWait)?;
                if let Some(mm) = self.mm {
                    cx.k.mms[mm as usize].flushed_at = cx.step;
                }
                self.pc = 3;
            }
            _ => return Ok(Poll::Ready(())),
        }
        if self.pc == 3 {
            return Ok(Poll::Ready(()));
        }
        Ok(Poll::Pending)
    }
}

/// `__pmd_free_tlb()` / `__pte_free_tlb()` / `__pud_free_tlb()`: run the table's dtor when the
/// profile frees the ptlock here, then `tlb_remove_table()` (x86 `paravirt_tlb_remove_table()`),
/// which queues the page in the gather. v6.1 x86 order: dtor, then remove.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FreeTableTlb {
    pfn: u64,
    level: u8,
    pc: u8,
}

impl FreeTableTlb {
    pub fn new(pfn: u64, level: usize) -> Self {
        FreeTableTlb { pfn, level: level as u8, pc: 0 }
    }

    fn func(cx: &Ctx, level: usize) -> &'static str {
        match cx.env.arch.levels()[level].linux {
            mmsim_arch::LinuxLevel::Pmd => "__pmd_free_tlb",
            mmsim_arch::LinuxLevel::Pte => "__pte_free_tlb",
            mmsim_arch::LinuxLevel::Pud => "__pud_free_tlb",
            _ => "__p4d_free_tlb",
        }
    }

    fn has_split_ptlock(cx: &Ctx, level: usize) -> bool {
        level >= cx.env.pmd_level()
    }

    pub fn step(&mut self, cx: &mut Ctx, tlb: &mut MmuGather) -> R<Poll<()>> {
        let level = self.level as usize;
        match self.pc {
            // pagetable_pmd_dtor() -> ptlock_free(), before the deferred free (before v6.14)
            0 => {
                if Self::has_split_ptlock(cx, level)
                    && cx.env.sw.ptlock_dies == PtlockDies::AtPmdFree
                {
                    cx.ptlock_free(Self::func(cx, level), self.pfn)?;
                }
                self.pc = 1;
            }
            // tlb_remove_table(tlb, table) / tlb_remove_page(tlb, page)
            _ => {
                let func = match cx.env.table_free {
                    TableFree::Rcu => "tlb_remove_table",
                    TableFree::AfterFlush => "tlb_remove_page",
                };
                cx.queue_table_free(func, self.pfn)?;
                tlb.push_table(self.pfn);
                tlb.freed_tables = true;
                return Ok(Poll::Ready(()));
            }
        }
        Ok(Poll::Pending)
    }
}

/// `tlb_finish_mmu()` -> `tlb_flush_mmu()`: `tlb_flush_mmu_tlbonly()` (the shootdown), then
/// `tlb_flush_mmu_free()`: with RCU table free, `tlb_table_flush()` queues the batch with
/// `call_rcu()`; otherwise `tlb_batch_pages_flush()` frees the pages now, after the flush.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TlbFinishMmu {
    pc: u8,
    flush: Option<FlushTlb>,
    next: u8,
    dtor_done: bool,
}

impl TlbFinishMmu {
    pub fn new() -> Self {
        TlbFinishMmu { pc: 0, flush: None, next: 0, dtor_done: false }
    }

    pub fn step(&mut self, cx: &mut Ctx, tlb: &mut MmuGather) -> R<Poll<()>> {
        match self.pc {
            // tlb_flush_mmu_tlbonly()
            0 => {
                if !tlb.needs_flush() {
                    self.pc = 1;
                    return Ok(Poll::Pending);
                }
                let f = self
                    .flush
                    .get_or_insert_with(|| FlushTlb::mm(cx, tlb.mm, "flush_tlb_mm_range"));
                if f.step(cx, false)?.is_ready() {
                    self.pc = 1;
                }
            }
            // tlb_flush_mmu_free()
            1 => match cx.env.table_free {
                TableFree::Rcu => {
                    if tlb.tables().is_empty() {
                        self.pc = 9;
                    } else {
                        // tlb_table_flush() -> tlb_remove_table_free() -> call_rcu()
                        cx.touch("tlb_table_flush", Object::Rcu, Access::QueueFree)?;
                        let site = cx.site("tlb_table_flush");
                        let tables = tlb.tables().to_vec();
                        let cpus = cx.k.cpus.clone();
                        cx.k.rcu.call_rcu(
                            &cpus,
                            crate::model::rcu::Callback::FreeTables(tables),
                            site,
                        );
                        self.pc = 9;
                    }
                }
                TableFree::AfterFlush => {
                    // tlb_batch_pages_flush(): free_pages_and_swap_cache() on the batch
                    let Some(&pfn) = tlb.tables().get(self.next as usize) else {
                        self.pc = 9;
                        return Ok(Poll::Pending);
                    };
                    if !self.dtor_done && cx.env.sw.ptlock_dies == PtlockDies::WithTable {
                        if cx.k.mem.frame(pfn).is_some_and(|f| f.ptlock_alive) {
                            cx.ptlock_free("pagetable_dtor", pfn)?;
                        }
                        self.dtor_done = true;
                        return Ok(Poll::Pending);
                    }
                    cx.free_table("tlb_batch_pages_flush", pfn)?;
                    self.dtor_done = false;
                    self.next += 1;
                }
            },
            _ => {
                tlb.clear();
                return Ok(Poll::Ready(()));
            }
        }
        Ok(Poll::Pending)
    }
}

impl Default for TlbFinishMmu {
    fn default() -> Self {
        Self::new()
    }
}

/// One table being visited by [`FreePgdRange`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Visit {
    table: u64,
    level: u8,
    addr: u64,
    end: u64,
    /// The entry in the parent table that points here (none for the PGD).
    via: Option<EntryPtr>,
}

/// `free_pgd_range(tlb, addr, end, floor, ceiling)` (mm/memory.c, v6.1): walk the tables under
/// `[addr, end)`, and free every table whose whole span lies inside `[floor, ceiling)`, clearing
/// the entry that pointed at it first (`pud_clear(); pmd_free_tlb(); mm_dec_nr_pmds()`).
/// Hugetlb VMAs use it too (x86 `hugetlb_free_pgd_range()` is `free_pgd_range()`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FreePgdRange {
    stack: [Visit; 6],
    depth: u8,
    floor: u64,
    ceiling: u64,
    pc: u8,
    /// The entry pointing at the child being considered, and the child.
    parent_ptr: Option<EntryPtr>,
    child: u64,
    free: Option<FreeTableTlb>,
    /// The skip of the empty entries after an empty one ([`EmptySlots`]).
    empty: EmptySlots,
}

/// The tables being visited, not the slots above the stack's depth (the search's key hashes
/// the program at every step it takes). Those slots are dead: a pop leaves its slot as it
/// was, but a push writes it before the depth covers it again, so walks that differ only
/// there run the same.
impl std::hash::Hash for FreePgdRange {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        let FreePgdRange { stack, depth, floor, ceiling, pc, parent_ptr, child, free, empty } =
            self;
        (&stack[..usize::from(*depth).min(stack.len())], floor, ceiling, pc).hash(h);
        (parent_ptr, child, free, empty).hash(h);
    }
}

impl FreePgdRange {
    /// `ceiling == 0` means the top of the address space (`USER_PGTABLES_CEILING`).
    pub fn new(cx: &Ctx, mm: u8, addr: u64, end: u64, floor: u64, ceiling: u64) -> Self {
        let pgd = cx.k.mms[mm as usize].pgd;
        let mut stack = [Visit { table: 0, level: 0, addr: 0, end: 0, via: None }; 6];
        stack[0] = Visit { table: pgd, level: 0, addr, end, via: None };
        let ceiling = if ceiling == 0 { cx.env.arch.va_limit() } else { ceiling };
        FreePgdRange {
            stack,
            depth: 1,
            floor,
            ceiling,
            pc: 0,
            parent_ptr: None,
            child: 0,
            free: None,
            empty: EmptySlots::default(),
        }
    }

    pub fn step(&mut self, cx: &mut Ctx, tlb: &mut MmuGather) -> R<Poll<()>> {
        let levels = cx.env.arch.levels();
        let last = levels.len() - 1;
        let mm = tlb.mm;
        if self.depth == 0 {
            return Ok(Poll::Ready(()));
        }
        let top = self.stack[self.depth as usize - 1];
        let info = levels[top.level as usize];
        let span = info.entry_size();
        let entry_start = top.addr & !(span - 1);
        let entry_end = entry_start.saturating_add(span);
        match self.pc {
            // read the entry covering top.addr
            0 => {
                if top.addr >= top.end {
                    // done with this table's range: back in the parent, consider freeing it
                    self.empty.forget();
                    self.depth -= 1;
                    if let Some(via) = top.via {
                        self.parent_ptr = Some(via);
                        self.child = top.table;
                        self.pc = 2;
                    }
                    return Ok(Poll::Pending);
                }
                let p = cx.ptr(top.table, top.level as usize, top.addr);
                let e = cx.read_entry("free_pgd_range", p, mm)?;
                match e {
                    Entry::Table { pfn } if (top.level as usize) < last => {
                        self.empty.forget();
                        self.parent_ptr = Some(p);
                        self.child = pfn;
                        let child_level = top.level as usize + 1;
                        if child_level < last {
                            // descend: free_p?d_range() on the child first
                            self.stack[self.depth as usize] = Visit {
                                table: pfn,
                                level: child_level as u8,
                                addr: top.addr,
                                end: top.end.min(entry_end),
                                via: Some(p),
                            };
                            self.depth += 1;
                        } else {
                            self.pc = 2;
                        }
                    }
                    _ => {
                        self.advance(entry_end);
                        // the following empty entries of this table (module `skip`)
                        let top = &mut self.stack[self.depth as usize - 1];
                        let empty = matches!(e, Entry::None);
                        self.empty.after_iteration(cx, p, empty, &mut top.addr, span, top.end);
                    }
                }
            }
            // if the child's whole span is inside [floor, ceiling): p?d_clear() the entry
            2 => {
                self.empty.forget();
                let inside = entry_start >= self.floor && entry_end - 1 < self.ceiling;
                if !inside {
                    self.advance(entry_end);
                    return Ok(Poll::Pending);
                }
                let p = self.parent_ptr.expect("entry pointer recorded");
                cx.write_entry("free_pgd_range", p, mm, Entry::None)?;
                if top.level as usize + 1 == cx.env.pmd_level() {
                    cx.k.mms[mm as usize].nr_pmds -= 1;
                }
                tlb.add_range(entry_start, span);
                self.free = Some(FreeTableTlb::new(self.child, top.level as usize + 1));
                self.pc = 3;
            }
            // p?d_free_tlb(tlb, child)
            _ => {
                let f = self.free.as_mut().expect("free in progress");
                if f.step(cx, tlb)?.is_ready() {
                    self.free = None;
                    self.advance(entry_end);
                }
            }
        }
        Ok(Poll::Pending)
    }

    fn advance(&mut self, entry_end: u64) {
        let top = &mut self.stack[self.depth as usize - 1];
        top.addr = entry_end;
        self.pc = 0;
    }
}
