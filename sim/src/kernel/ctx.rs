//! `Ctx`: the one door through which kernel paths touch shared state.
//!
//! Every shared access goes through a `Ctx` method that first calls [`Ctx::begin`]. The engine
//! runs a kernel path in two modes: in *declare* mode `begin` records what the next step will
//! touch and stops the path (`Err(Yield)`), so the scheduler knows each CPU's next access and
//! whether it is enabled; in *execute* mode `begin` lets the access happen, records the event,
//! and the checkers look at it. Rule for path authors: in a step that accesses shared state, the
//! `Ctx` call comes before any change to the path's own locals.
//!
//! A declare-mode `Ctx` may carry a *fuse* hook from the engine: at the declared access the
//! hook says whether the scheduler picks this CPU for the very next step anyway; if so the path
//! goes straight on in execute mode (the step that follows), which saves running it twice.

use crate::check::{self, Checker};
use crate::env::Env;
use crate::model::mem::{EntryPtr, FrameState, SiteRef};
use crate::model::sync::Held;
use crate::model::Kernel;
use mmsim_arch::Entry;
use mmsim_traces::{Access, Actor, Object, ReportKind};

/// A decoded entry (`Entry::None` if it does not decode), rebuilt field by field: copying
/// the decoder's result whole loads wide words over the bytes it just stored, which the CPU
/// cannot forward (profiled: most of `read_entry`'s time).
#[inline(always)]
fn rebuild<E>(d: Result<Entry, E>) -> Entry {
    match d {
        Ok(Entry::Table { pfn }) => Entry::Table { pfn },
        Ok(Entry::Leaf { pfn, flags: f }) => Entry::Leaf {
            pfn,
            flags: mmsim_arch::LeafFlags {
                write: f.write,
                user: f.user,
                exec: f.exec,
                accessed: f.accessed,
                dirty: f.dirty,
                cont: f.cont,
            },
        },
        _ => Entry::None,
    }
}

/// Returned through `?` when a path, run in declare mode, reaches its next access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Yield;

pub type R<T> = Result<T, Yield>;

/// The engine's fuse hook (see the module doc).
pub trait Fuse {
    /// Given the kernel and the access `who` just declared (`access` to `object`): true if
    /// that access is performed as the next step now.
    fn go(&mut self, k: &Kernel, object: &Object, access: Access, who: &Who) -> bool;
    /// How many steps in a row, from the next one, the engine would give `who` if its steps
    /// change nothing but take and release a lock it has just released: in a serial phase
    /// all of them; in the concurrent phase what the strategy promises
    /// ([`crate::engine::strategy::Strategy::keeps_choosing`]) against every other actor that
    /// is runnable now (one that waits keeps waiting while only `who` runs such steps); for
    /// the exhaustive search, all of them if every node since step `since`, where the
    /// iteration those steps repeat began, gave `who` its only child ([`crate::dfs::sleep`]).
    fn keeps_running(&mut self, k: &Kernel, who: &Who, since: u64) -> u64;
    /// Make the decisions of the `n` steps after the current one, each for `who` alone, as
    /// the engine would have (the strategy is asked, the decisions recorded).
    fn decide_alone(&mut self, who: &Who, n: u64);
}

/// The next access a CPU will make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    pub func: &'static str,
    pub object: Object,
    pub access: Access,
    /// For an entry write: the table the new value points to (its owners change), so that
    /// the search's footprint of the step can name it.
    pub link: Option<u64>,
}

/// The function's name is left out (the search's key hashes a program at every step it
/// takes): the op machine that declared the access names it, and the machine is hashed with
/// its program counter beside this. Equal values still hash equally.
impl std::hash::Hash for Pending {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        let Pending { func: _, object, access, link } = self;
        (object, access, link).hash(h);
    }
}

/// Who is running: the actor, its CPU and mm, and the operation index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Who {
    pub actor: Actor,
    pub cpu: u8,
    pub mm: u8,
    pub op: u16,
    /// Steps this operation has taken before the current one.
    pub op_step: u32,
}

pub struct Ctx<'a> {
    pub k: &'a mut Kernel,
    pub env: &'a Env,
    pub who: Who,
    pub step: u64,
    pub check: &'a mut Checker,
    declare: bool,
    pub pending: Option<Pending>,
    accessed: bool,
    fuse: Option<&'a mut dyn Fuse>,
    fused: bool,
    /// Steps that a loop may account for without running them ([`Ctx::skip_steps`]) must be
    /// numbered below this (0: none may). The engine sets it in untraced runs, where it can
    /// tell whether the actor runs alone (serial phases, and the fused concurrent path).
    pub skip_until: u64,
    /// Steps the current step accounted for beyond itself.
    pub skipped: u64,
}

impl<'a> Ctx<'a> {
    pub fn new(
        k: &'a mut Kernel,
        env: &'a Env,
        who: Who,
        step: u64,
        check: &'a mut Checker,
        declare: bool,
    ) -> Self {
        Ctx {
            k,
            env,
            who,
            step,
            check,
            declare,
            pending: None,
            accessed: false,
            fuse: None,
            fused: false,
            skip_until: 0,
            skipped: 0,
        }
    }

    /// How many more iterations, each `per` steps long, the current step (which released the
    /// iteration's lock) may account for without running them: none unless the engine allows
    /// it here ([`Ctx::skip_until`]), and no more than the scheduler would give this actor in
    /// a row ([`Fuse::keeps_running`]).
    pub fn skippable(&mut self, per: u64) -> u64 {
        let Some(room) = self.skip_until.checked_sub(self.step + 1).filter(|_| per > 0) else {
            return 0;
        };
        let kept = match self.fuse.as_mut() {
            Some(f) => f.keeps_running(self.k, &self.who, self.step.saturating_sub(per)),
            // an executed step without the fuse hook: a serial phase runs alone, a CPU of the
            // concurrent phase (the exhaustive search) does not skip
            None if !matches!(self.who.actor, Actor::Cpu(_)) => u64::MAX,
            None => 0,
        };
        room.min(kept) / per
    }

    /// Account `n` steps that a loop proved would repeat the iteration just performed with no
    /// effect but their count ([`crate::kernel::skip`]): their decisions are made (the fuse
    /// hook), the engine numbers the next step after them, and the op's step count and the
    /// checker's clock move on as they would have.
    pub fn skip_steps(&mut self, n: u64) {
        debug_assert!(self.step + n < self.skip_until, "skipped past the allowed steps");
        if let Some(f) = self.fuse.as_mut() {
            f.decide_alone(&self.who, n);
        }
        self.skipped += n;
        self.check.skipped += n;
        if matches!(self.who.actor, Actor::Cpu(_)) {
            self.check.skipped_concurrent += n;
        }
        self.step += n;
        self.check.time = self.step;
    }

    /// Declare mode with a fuse hook: a declared access the hook accepts is performed at once,
    /// as step `step + 1`.
    pub fn set_fuse(&mut self, f: &'a mut dyn Fuse) {
        self.fuse = Some(f);
    }

    /// Whether the declared access was accepted by the fuse hook and performed.
    pub fn fused(&self) -> bool {
        self.fused
    }

    pub fn accessed(&self) -> bool {
        self.accessed
    }

    /// Declare (declare mode) or perform-and-record (execute mode) one access.
    #[inline]
    pub fn begin(&mut self, func: &'static str, object: Object, access: Access) -> R<()> {
        self.begin_as(func, object, access, access, None)
    }

    /// [`Ctx::begin`] for an access declared as `declared` and performed as `performed` (a
    /// trylock declares a read of the lock word and performs the lock if it is free). Not
    /// inlined: the object then travels in registers, not through a stack copy that the CPU
    /// cannot forward (profiled: a third of `read_entry` was such stalls).
    #[inline(never)]
    fn begin_as(
        &mut self,
        func: &'static str,
        object: Object,
        declared: Access,
        performed: Access,
        link: Option<u64>,
    ) -> R<()> {
        if self.declare {
            // the hook reads the object field by field: building a `Pending` first costs a
            // wide copy of bytes just stored, which the CPU cannot forward (profiled)
            let go = match self.fuse.as_mut() {
                Some(f) => f.go(self.k, &object, declared, &self.who),
                None => false,
            };
            if !go {
                self.pending = Some(Pending { func, object, access: declared, link });
                return Err(Yield);
            }
            // the engine ended the step before: this access is the next step
            self.declare = false;
            self.fused = true;
            self.step += 1;
            self.check.time = self.step;
        }
        debug_assert!(!self.accessed, "a step made two shared accesses ({func})");
        self.accessed = true;
        self.check.record(self.step, self.who, func, object, performed);
        Ok(())
    }

    /// Attach human detail to the current step's event (only formatted when tracing).
    pub fn detail(&mut self, f: impl FnOnce() -> String) {
        if self.check.tracing {
            self.check.set_detail(f());
        }
    }

    /// Append to the current step's event detail (`; ` between), e.g. after an entry write
    /// set its value.
    pub fn detail_more(&mut self, f: impl FnOnce() -> String) {
        if self.check.tracing {
            self.check.append_detail(f());
        }
    }

    pub fn site(&self, func: &'static str) -> SiteRef {
        SiteRef { step: self.step, actor: self.who.actor, op: self.who.op, func }
    }

    fn report(&mut self, kind: ReportKind, func: &'static str, object: Object, what: String) {
        check::report(self, kind, func, object, what);
    }

    // ---- locks -------------------------------------------------------------------------

    fn check_sleepable(&mut self, func: &'static str, obj: Object) {
        let c = &self.k.cpus[self.who.cpu as usize];
        if c.in_rcu_reader() {
            let why = if c.irqs_off > 0 {
                "with IRQs disabled"
            } else {
                "inside an RCU read-side critical section"
            };
            self.report(
                ReportKind::LockRule,
                func,
                obj,
                format!(
                    "BUG: sleeping function called from invalid context: {} taken {why}",
                    crate::check::obj_name(obj)
                ),
            );
        }
    }

    /// `down_read()` on an rwsem (or `mmap_read_lock()`, `hugetlb_vma_lock_read()`, ...).
    pub fn down_read(&mut self, func: &'static str, lock: Object) -> R<()> {
        self.begin(func, lock, Access::LockRead)?;
        self.check_sleepable(func, lock);
        let cpu = self.who.cpu;
        if let Some(l) = self.k.lock_mut(lock) {
            l.readers |= 1 << cpu;
        }
        Ok(())
    }

    pub fn up_read(&mut self, func: &'static str, lock: Object) -> R<()> {
        self.begin(func, lock, Access::UnlockRead)?;
        let cpu = self.who.cpu;
        if let Some(l) = self.k.lock_mut(lock) {
            l.readers &= !(1 << cpu);
        }
        Ok(())
    }

    /// `down_write()`, `mutex_lock()`.
    pub fn down_write(&mut self, func: &'static str, lock: Object) -> R<()> {
        self.begin(func, lock, Access::LockWrite)?;
        self.check_sleepable(func, lock);
        let cpu = self.who.cpu;
        if let Some(l) = self.k.lock_mut(lock) {
            l.writer = Some(cpu);
        }
        Ok(())
    }

    /// `down_write_trylock()`: never waits; returns whether the lock was taken.
    pub fn down_write_trylock(&mut self, func: &'static str, lock: Object) -> R<bool> {
        let free = self.k.lock(lock).is_none_or(|l| l.can_write());
        self.trylock(func, lock, free, Held::Write, "trylock failed")
    }

    /// A trylock of `lock` that succeeds iff `free`, taking it as `how`: declared as a read of
    /// the lock word (a trylock never blocks the CPU), performed as the lock if it succeeds.
    fn trylock(
        &mut self,
        func: &'static str,
        lock: Object,
        free: bool,
        how: Held,
        failed: &'static str,
    ) -> R<bool> {
        let performed = match (free, how) {
            (false, _) => Access::Read,
            (true, Held::Read) => Access::LockRead,
            (true, Held::Write) => Access::LockWrite,
        };
        self.begin_as(func, lock, Access::Read, performed, None)?;
        if !free {
            self.detail(|| failed.to_string());
            return Ok(false);
        }
        let cpu = self.who.cpu;
        if let Some(l) = self.k.lock_mut(lock) {
            match how {
                Held::Read => l.readers |= 1 << cpu,
                Held::Write => l.writer = Some(cpu),
            }
        }
        Ok(true)
    }

    /// `up_write()`; for `mmap_lock` (`mmap_write_unlock()`) also `vma_end_write_all()`: the
    /// bump of `mm_lock_seq` that ends the write lock of every VMA locked in this section.
    pub fn up_write(&mut self, func: &'static str, lock: Object) -> R<()> {
        self.begin(func, lock, Access::UnlockWrite)?;
        if let Some(l) = self.k.lock_mut(lock) {
            l.writer = None;
        }
        if let Object::MmapLock(m) = lock {
            if let Some(mm) = self.k.mms.get_mut(m as usize) {
                mm.mm_lock_seq = mm.mm_lock_seq.wrapping_add(1);
            }
        }
        Ok(())
    }

    // ---- the per-VMA lock (CONFIG_PER_VMA_LOCK, v6.4) ----------------------------------

    /// `lock_vma_under_rcu()` (mm/memory.c, v6.9 shape) for VMA `vma` of the running mm:
    /// under RCU, find the VMA and `vma_start_read()` it, a trylock that fails if a writer
    /// holds `vm_lock` or the VMA is write-locked in the current `mmap_lock` write section
    /// (`vm_lock_seq == mm_lock_seq`). Simplified: one step (the RCU read section, the tree
    /// walk and the trylock cannot be split by a grace period or a VMA free here).
    pub fn lock_vma_under_rcu(&mut self, func: &'static str, vma: u16) -> R<bool> {
        let mm = self.who.mm;
        let obj = Object::VmLock { mm, vma };
        let m = &self.k.mms[mm as usize];
        let free = m
            .vma(vma)
            .is_some_and(|v| !v.write_locked(m.mm_lock_seq) && v.vm_lock.writer.is_none());
        self.trylock(func, obj, free, Held::Read, "vma_start_read() failed: fall back to mmap_lock")
    }

    /// `vma_end_read()`.
    pub fn vma_end_read(&mut self, func: &'static str, vma: u16) -> R<()> {
        self.up_read(func, Object::VmLock { mm: self.who.mm, vma })
    }

    /// `vma_start_write()` under `mmap_lock` write: wait for the per-VMA readers (faults) to
    /// leave, then mark the VMA write-locked until `mmap_write_unlock()`. Only where the
    /// profile has per-VMA locks (before v6.4 there is nothing to lock).
    pub fn vma_start_write(&mut self, func: &'static str, mm: u8, vma: u16) -> R<()> {
        if self.env.sw.per_vma_lock == crate::profile::PerVmaLock::Off {
            return Ok(());
        }
        let seq = self.k.mms[mm as usize].mm_lock_seq;
        if self.k.mms[mm as usize].vma(vma).is_none_or(|v| v.write_locked(seq)) {
            return Ok(());
        }
        self.begin(func, Object::VmLock { mm, vma }, Access::LockWrite)?;
        if let Some(v) = self.k.mms[mm as usize].vma_mut(vma) {
            v.vm_lock_seq = seq;
        }
        Ok(())
    }

    /// `spin_lock()` on a lock that lives outside page-table pages (`mm->page_table_lock`).
    pub fn spin_lock(&mut self, func: &'static str, lock: Object) -> R<()> {
        self.begin(func, lock, Access::LockWrite)?;
        let cpu = self.who.cpu;
        if let Some(l) = self.k.lock_mut(lock) {
            l.writer = Some(cpu);
        }
        Ok(())
    }

    pub fn spin_unlock(&mut self, func: &'static str, lock: Object) -> R<()> {
        self.up_write(func, lock)
    }

    /// The split ptlock of the table `ptep` points into, as `huge_pte_lockptr()`/`pmd_lockptr()`
    /// compute it from the pointer: the lock lives in that page's `struct ptdesc`. With the PMD
    /// folded into the PGD (two levels: arm64-16k-va36, arm64-64k-va42) there are no split PMD
    /// locks (`USE_SPLIT_PMD_PTLOCKS` needs more than two levels) and it is
    /// `&mm->page_table_lock`.
    pub fn ptl_of(&self, ptep: EntryPtr) -> Object {
        if ptep.level == 0 {
            Object::PageTableLock(self.who.mm)
        } else {
            Object::PtLock(ptep.pfn)
        }
    }

    /// `spin_lock(ptl)` on the split ptlock of the page `ptep` points into.
    pub fn ptl_lock(&mut self, func: &'static str, ptep: EntryPtr) -> R<()> {
        let obj = self.ptl_of(ptep);
        if let Object::PageTableLock(_) = obj {
            return self.spin_lock(func, obj);
        }
        self.begin(func, obj, Access::LockWrite)?;
        self.check_ptlock(func, ptep, "lock");
        let cpu = self.who.cpu;
        if let Some(f) = self.k.mem.frame_mut(ptep.pfn) {
            f.ptlock.writer = Some(cpu);
        }
        Ok(())
    }

    pub fn ptl_unlock(&mut self, func: &'static str, ptep: EntryPtr) -> R<()> {
        let obj = self.ptl_of(ptep);
        if let Object::PageTableLock(_) = obj {
            return self.spin_unlock(func, obj);
        }
        self.begin(func, obj, Access::UnlockWrite)?;
        self.check_ptlock(func, ptep, "unlock");
        if let Some(f) = self.k.mem.frame_mut(ptep.pfn) {
            f.ptlock.writer = None;
        }
        Ok(())
    }

    fn check_ptlock(&mut self, func: &'static str, ptep: EntryPtr, what: &str) {
        let Some(f) = self.k.mem.frame(ptep.pfn) else { return };
        if f.gen != ptep.gen || !f.ptlock_alive {
            let why = if f.gen != ptep.gen {
                "the page was freed and reused as another table"
            } else if f.state == FrameState::Allocated {
                "its page-table page is still allocated but the ptlock was destroyed"
            } else {
                "the ptlock was destroyed with its page-table page"
            };
            self.report(
                ReportKind::UseAfterFreePtlock,
                func,
                Object::PtLock(ptep.pfn),
                format!("{what} of split ptlock of page-table page pfn 0x{:x}: {why}", ptep.pfn),
            );
        }
    }

    // ---- RCU ---------------------------------------------------------------------------

    /// `rcu_read_lock()`.
    pub fn rcu_read_lock(&mut self, func: &'static str) -> R<()> {
        self.begin(func, Object::Rcu, Access::RcuReadLock)?;
        self.k.cpus[self.who.cpu as usize].rcu_nesting += 1;
        Ok(())
    }

    /// `rcu_read_unlock()`: leaving the outermost read-side section (with IRQs on) is a
    /// quiescent state that lets pending grace periods end.
    pub fn rcu_read_unlock(&mut self, func: &'static str) -> R<()> {
        self.begin(func, Object::Rcu, Access::RcuReadUnlock)?;
        let c = &mut self.k.cpus[self.who.cpu as usize];
        c.rcu_nesting = c.rcu_nesting.saturating_sub(1);
        if !c.in_rcu_reader() {
            c.qs += 1;
        }
        Ok(())
    }

    // ---- page-table entries ------------------------------------------------------------

    /// KASAN's check: the page behind `p` must still be the allocation `p` was derived from.
    /// Returns false if it reported. Inlined test, reporting out of line (profiled: the
    /// check was a tenth of the step loop as a call).
    #[inline]
    fn check_table_alive(&mut self, func: &'static str, p: EntryPtr, write: bool) -> bool {
        match self.k.mem.frame(p.pfn) {
            Some(f) if f.gen != p.gen || f.state == FrameState::Freed => {
                self.report_table_alive(func, p, write)
            }
            _ => true,
        }
    }

    #[cold]
    #[inline(never)]
    fn report_table_alive(&mut self, func: &'static str, p: EntryPtr, write: bool) -> bool {
        let Some(f) = self.k.mem.frame(p.pfn) else { return true };
        let kind = if write { "Write" } else { "Read" };
        if f.gen != p.gen || f.state == FrameState::Freed {
            let why = if f.gen != p.gen { " (the page has since been reused)" } else { "" };
            self.report(
                ReportKind::UseAfterFreeTable,
                func,
                Object::Table(p.pfn),
                format!(
                    "{kind} of size 8 at entry {} of freed page-table page pfn 0x{:x}{why}",
                    p.index, p.pfn
                ),
            );
            return false;
        }
        true
    }

    /// A walk of mm `mm`'s tables must only reach tables that mm still maps.
    #[inline]
    fn check_table_use(&mut self, func: &'static str, p: EntryPtr, mm: u8, write: bool) {
        let Some(f) = self.k.mem.frame(p.pfn) else { return };
        let dead = f.gen != p.gen || f.state == FrameState::Freed;
        let foreign = f.owners & (1 << mm) == 0 && f.state == FrameState::Allocated;
        if dead || foreign {
            self.report_table_use(func, p, mm, write);
        }
    }

    #[cold]
    #[inline(never)]
    fn report_table_use(&mut self, func: &'static str, p: EntryPtr, mm: u8, write: bool) {
        if !self.check_table_alive(func, p, write) {
            return;
        }
        let Some(f) = self.k.mem.frame(p.pfn) else { return };
        if f.owners & (1 << mm) == 0 && f.state == FrameState::Allocated {
            let (kind, what) = check::judge_foreign_walk(self.k, self.env, p, mm, write);
            self.report(kind, func, Object::Table(p.pfn), what);
        }
    }

    /// Read the entry `p` points at, walking the tables of mm `mm`. Always inlined: returned
    /// from a call, the entry is copied whole over the bytes just stored, which the CPU
    /// cannot forward (profiled).
    #[inline(always)]
    pub fn read_entry(&mut self, func: &'static str, p: EntryPtr, mm: u8) -> R<Entry> {
        self.begin(func, Object::Entry { pfn: p.pfn, index: p.index }, Access::Read)?;
        self.check_table_use(func, p, mm, false);
        let raw = self.k.mem.load(p);
        let e = rebuild(self.env.arch.decode(p.level as usize, raw));
        self.entry_event(p, raw, "=");
        Ok(e)
    }

    /// A further entry read inside a step that already made its declared access: the MMU's
    /// multi-level walk within one translation, which no flush can split. Only the table's
    /// lifetime is checked: between an unshare and its flush, walking a cached pointer into
    /// the other mm's table is the window the kernel allows (the stale-TLB checker judges uses
    /// after the flush).
    ///
    /// A lockless walker (this, GUP-fast) may read a table its mm `mm` is unlinking: reading
    /// what its own VMA maps there is the obsolete-but-safe read, not reported. What it must
    /// not obtain is a translation its mm does not have: a table unshared from `mm` and reused
    /// by its other mm for another mapping (CVE-2025-38085) is reported as wrong mm.
    ///
    /// `mm` is `None` for a read whose value is only compared, never used (GUP-fast's recheck
    /// of `*pmdp`): then only the table's lifetime is checked.
    pub fn hw_read_entry(&mut self, func: &'static str, p: EntryPtr, mm: Option<u8>) -> Entry {
        debug_assert!(self.accessed, "hw_read_entry outside an executed step");
        if self.check_table_alive(func, p, false) {
            if let Some(mm) = mm {
                self.check_lockless_use(func, p, mm);
            }
        }
        let raw = self.k.mem.load(p);
        self.env.arch.decode(p.level as usize, raw).unwrap_or(Entry::None)
    }

    /// The wrong-mm half of [`Ctx::check_table_use`], for lockless walkers.
    #[inline]
    fn check_lockless_use(&mut self, func: &'static str, p: EntryPtr, mm: u8) {
        let Some(f) = self.k.mem.frame(p.pfn) else { return };
        if f.owners & (1 << mm) == 0 && f.state == FrameState::Allocated {
            self.report_lockless_use(func, p, mm);
        }
    }

    #[cold]
    #[inline(never)]
    fn report_lockless_use(&mut self, func: &'static str, p: EntryPtr, mm: u8) {
        let (kind, what) = check::judge_foreign_walk(self.k, self.env, p, mm, false);
        if kind == ReportKind::WrongMm {
            self.report(kind, func, Object::Table(p.pfn), what);
        }
    }

    /// Write `e` into the entry `p` points at, in the tables of mm `mm`. Keeps table ownership.
    pub fn write_entry(&mut self, func: &'static str, p: EntryPtr, mm: u8, e: Entry) -> R<()> {
        let link = match e {
            Entry::Table { pfn } => Some(pfn),
            _ => None,
        };
        let entry = Object::Entry { pfn: p.pfn, index: p.index };
        self.begin_as(func, entry, Access::Write, Access::Write, link)?;
        let raw = self.env.arch.encode(p.level as usize, e);
        let old = self.env.arch.decode(p.level as usize, self.k.mem.load(p)).unwrap_or(Entry::None);
        let parent_owners = self.k.mem.frame(p.pfn).map_or(0, |f| f.owners);
        if let Entry::Table { pfn } = old {
            let site = self.site(func);
            if let Some(c) = self.k.mem.frame_mut(pfn) {
                let left = c.owners & parent_owners;
                c.owners &= !parent_owners;
                if left != 0 {
                    c.unlinked = Some((left, site));
                }
            }
        }
        if let Entry::Table { pfn } = e {
            if let Some(c) = self.k.mem.frame_mut(pfn) {
                c.owners |= parent_owners;
            }
        }
        self.k.mem.store(p, raw);
        // after the store, so that a report shows the value written
        self.check_table_use(func, p, mm, true);
        self.entry_event(p, raw, ":=");
        Ok(())
    }

    /// The detail (`pud[1]@0x1002 = 0x1003067`, `:=` for a write) and the structured value of
    /// an entry read or write's event; nothing when tracing is off.
    #[inline]
    fn entry_event(&mut self, p: EntryPtr, raw: u64, op: &str) {
        if self.check.tracing {
            self.entry_event_traced(p, raw, op);
        }
    }

    #[inline(never)]
    fn entry_event_traced(&mut self, p: EntryPtr, raw: u64, op: &str) {
        let d = format!("{} {op} 0x{raw:x}", crate::check::entry_name(self.env, p));
        self.check.set_detail(d);
        self.check.set_value(mmsim_traces::EntryValue { level: p.level, raw });
    }

    /// A pointer to entry `index` of table `pfn` as of now (`pmd_offset()`, `pte_offset()`).
    /// The pointer keeps the address rounded down to what one entry of that level maps, so
    /// that pointers to one entry derived for addresses in its span are equal (the search's
    /// visited states must not tell them apart).
    pub fn ptr(&self, pfn: u64, level: usize, addr: u64) -> EntryPtr {
        let info = self.env.arch.levels()[level];
        let index = info.index(addr);
        let mut p = self.k.mem.ptr(pfn, index, addr & !(info.entry_size() - 1));
        p.level = level as u8;
        p
    }

    // ---- page-table page lifecycle -----------------------------------------------------

    /// `pagetable_alloc()` + ctor (`pagetable_pmd_ctor()` zeroes `pt_share_count`, inits ptlock).
    pub fn alloc_table(&mut self, func: &'static str, level: usize) -> R<u64> {
        let next = self.k.mem.peek_alloc();
        self.begin(func, Object::Table(next), Access::Alloc)?;
        let site = self.site(func);
        let pfn = self.k.mem.alloc_table(level as u8, site);
        debug_assert_eq!(pfn, next);
        // only PMD and PTE tables carry a split ptlock (pud_lock() is mm->page_table_lock)
        let split = level >= self.env.pmd_level();
        if let Some(f) = self.k.mem.frame_mut(pfn) {
            f.ptlock_alive = split;
        }
        self.detail(|| format!("{} table", self.env.arch.levels()[level].linux.name()));
        Ok(pfn)
    }

    /// Read a table's sharer count as the profile counts it (`page_count()` before v6.13,
    /// `ptdesc_pmd_pts_count()` after): returns sharers beyond the first.
    pub fn table_sharers(&mut self, func: &'static str, p: EntryPtr) -> R<u32> {
        self.begin(func, Object::Table(p.pfn), Access::Read)?;
        let Some(f) = self.k.mem.frame(p.pfn) else { return Ok(0) };
        let n = match self.env.sw.share_count {
            crate::profile::ShareCount::Refcount => f.refcount.saturating_sub(1),
            crate::profile::ShareCount::PtShareCount => f.pt_share_count,
        };
        self.detail(|| format!("sharers beyond the first: {n}"));
        Ok(n)
    }

    /// `get_page()` / `ptdesc_pmd_pts_inc()` on the table `p` points into.
    pub fn table_share(&mut self, func: &'static str, p: EntryPtr) -> R<()> {
        self.begin(func, Object::Table(p.pfn), Access::Share)?;
        self.check_table_alive(func, p, true);
        let sc = self.env.sw.share_count;
        if let Some(f) = self.k.mem.frame_mut(p.pfn) {
            match sc {
                crate::profile::ShareCount::Refcount => f.refcount += 1,
                crate::profile::ShareCount::PtShareCount => f.pt_share_count += 1,
            }
        }
        Ok(())
    }

    /// `put_page()` / `ptdesc_pmd_pts_dec()`.
    pub fn table_unshare(&mut self, func: &'static str, p: EntryPtr) -> R<()> {
        self.begin(func, Object::Table(p.pfn), Access::Unshare)?;
        self.check_table_alive(func, p, true);
        let sc = self.env.sw.share_count;
        if let Some(f) = self.k.mem.frame_mut(p.pfn) {
            match sc {
                crate::profile::ShareCount::Refcount => f.refcount = f.refcount.saturating_sub(1),
                crate::profile::ShareCount::PtShareCount => {
                    f.pt_share_count = f.pt_share_count.saturating_sub(1)
                }
            }
        }
        Ok(())
    }

    /// `pagetable_pmd_dtor()` -> `ptlock_free()`: the split ptlock dies.
    pub fn ptlock_free(&mut self, func: &'static str, pfn: u64) -> R<()> {
        self.begin(func, Object::PtLock(pfn), Access::LockFree)?;
        let site = self.site(func);
        if let Some(f) = self.k.mem.frame_mut(pfn) {
            f.ptlock_alive = false;
            f.ptlock_freed = Some(site);
        }
        Ok(())
    }

    /// Mark a table as queued for freeing (`tlb_remove_table()` / `tlb_remove_page()`).
    pub fn queue_table_free(&mut self, func: &'static str, pfn: u64) -> R<()> {
        self.begin(func, Object::Table(pfn), Access::QueueFree)?;
        let site = self.site(func);
        if let Some(f) = self.k.mem.frame_mut(pfn) {
            f.state = FrameState::PendingFree;
            f.queued = Some(site);
        }
        Ok(())
    }

    /// Drop a free path's reference to a table page (`pagetable_free()` -> `put_page()`): the
    /// page returns to the allocator when its refcount reaches zero; a reference held elsewhere
    /// (a PFN walker's `get_page()`) keeps it until that one is dropped.
    pub fn free_table(&mut self, func: &'static str, pfn: u64) -> R<()> {
        let refs = self.k.mem.frame(pfn).map_or(1, |f| f.refcount);
        let access = if refs <= 1 { Access::Free } else { Access::Write };
        self.begin(func, Object::Table(pfn), access)?;
        if refs > 1 {
            if let Some(f) = self.k.mem.frame_mut(pfn) {
                f.refcount -= 1;
                if f.state == FrameState::Allocated {
                    f.state = FrameState::PendingFree;
                }
            }
            self.detail(|| format!("put_page: refcount {refs} -> {}, still referenced", refs - 1));
            return Ok(());
        }
        let site = self.site(func);
        if let Some(f) = self.k.mem.frame_mut(pfn) {
            f.refcount = 0;
        }
        self.k.mem.free_table(pfn, site);
        Ok(())
    }

    /// A temporary reference from outside the page tables (`get_page_unless_zero()` by a PFN
    /// walker). Fails, returning false, if the page is already free.
    pub fn table_get_ref(&mut self, func: &'static str, pfn: u64) -> R<bool> {
        self.begin(func, Object::Table(pfn), Access::Write)?;
        let Some(f) = self.k.mem.frame_mut(pfn) else { return Ok(false) };
        if f.refcount == 0 || f.state == FrameState::Freed {
            return Ok(false);
        }
        f.refcount += 1;
        let r = f.refcount;
        self.detail(|| format!("get_page_unless_zero: refcount {r}"));
        Ok(true)
    }

    /// Drop a temporary reference (`put_page()`). If it was the last one while the page is
    /// still a live page table, the page reaches the allocator in use: "Bad page state".
    pub fn table_put_ref(&mut self, func: &'static str, pfn: u64) -> R<()> {
        let refs = self.k.mem.frame(pfn).map_or(0, |f| f.refcount);
        let access = if refs == 1 { Access::Free } else { Access::Write };
        self.begin(func, Object::Table(pfn), access)?;
        let Some(f) = self.k.mem.frame_mut(pfn) else { return Ok(()) };
        f.refcount = f.refcount.saturating_sub(1);
        if f.refcount > 0 {
            return Ok(());
        }
        let live = f.state == FrameState::Allocated;
        let site = self.site(func);
        self.k.mem.free_table(pfn, site);
        if live {
            let msg = format!(
                "page-table page pfn 0x{pfn:x} freed by the last put_page() while it is still a page table (never unlinked by free_pgtables())"
            );
            crate::check::report(self, ReportKind::ShareCount, func, Object::Table(pfn), msg);
        }
        Ok(())
    }

    /// A step touching only data pages or the actor's own bookkeeping.
    pub fn touch(&mut self, func: &'static str, object: Object, access: Access) -> R<()> {
        self.begin(func, object, access)
    }
}
