//! Steps no other actor can race with: where the exhaustive search (`--por sleep`) need not
//! consider a preemption.
//!
//! If the next step `a` of the CPU that just ran commutes with every step any other actor can
//! take before it (whatever they interleave), every schedule from here is equivalent to one
//! that runs `a` first, with no more preemptions (`a` continues the running CPU; taking it out
//! of a later switch never adds one) and the same end state and reports. So the node has one
//! child, `a` (a persistent set of one, Godefroid 1996). [`races_with_none`] decides it by a
//! sound over-approximation of what the others can still reach:
//!
//! * `a` touches only page tables: entry, lifecycle, owner and reference reads, and its
//!   tables' split ptlocks (the range loops: `huge_pte_offset()`, `huge_pte_lock()`, the
//!   unshare check, the entry read, the unlock). It writes no entry, lifecycle, owner or
//!   reference, so the others' reads (a hardware walk through a cached walk included) commute
//!   with it, and only another actor that reaches one of its tables could race with it;
//! * each table is live (allocated, not queued for freeing: the allocator cannot hand it out
//!   and no RCU callback frees it);
//! * no other CPU with work reaches it: its mm's tree does not (`Frame::owners`), its program
//!   holds no pointer to it and no entry value pointing to it (a stale walk; [`Mentions`]),
//!   none of its remaining operations scans page frames or other mms (`TempRef`'s PFN walker,
//!   the hole punch's unmap of every mapping), and it cannot be shared into any mm: that needs
//!   `huge_pmd_share()` to find the table through a file's `i_mmap` tree, so either no
//!   remaining operation of another CPU can fault or fork, or no file maps an mm reaching
//!   the table except files whose `i_mmap_rwsem` the running CPU holds for write (the share
//!   scan takes it; the running CPU does not release it before `a`), and no other CPU can
//!   still map (`mmap`) anything;
//! * no RCU callback names it.
//!
//! Or `a` takes or releases a lock of one mm only (`mmap_lock`, `page_table_lock`, a hugetlb
//! vma lock, whose footprint is the mm's VMA tree) or touches that tree, and no other CPU with
//! work is in that mm or has a remaining operation that reaches into another mm (`fork()`
//! into it, the hole punch's unmap of every mapping, `TempRef`'s PFN walker): the operations
//! of a CPU take the locks and change the VMAs of their own mm, and a fork those of its child.
//! When `a` takes or releases `mmap_lock` for read, CPUs in the mm whose remaining operations
//! only ever take it for read do not count (rwsem readers commute, [`mmap_lock_mode`]).
//!
//! Or `a` is a TLB flush of its CPU's own mm `m` (this CPU's TLB, or every CPU's by a broadcast
//! invalidation, for `m`'s entries; and `m`'s flush claim when no IPI follows), no other CPU
//! with work is in `m` or reaches into it (so no other user access fills, and no other flush
//! claims, `m`'s entries), and no CPU has an IPI pending that flushes `m`. Flushes of other
//! mms remove other entries and claim other flush times; a TLB holds only its mm's entries
//! once filled for it, and the search's key compares each entry with its own mm's claim.
//!
//! Or `a` takes or releases a `hugetlb_fault_mutex_table` entry and no other CPU with work can
//! still fault ([`may_fault`]: `hugetlb_fault()` is the mutexes' one taker).
//!
//! Interrupt contexts take IPIs and flush TLBs only, RCU callbacks free tables. The
//! brute-force check (`tests/dfs_soundness.rs`) runs the search with and without this rule,
//! and checks that it changes no signature or end state of any built-in scenario at bound 1.

use super::footprint::{Footprint, Item, Key, Mutant};
use crate::engine::Engine;
use crate::model::mem::FrameState;
use crate::model::sync::Held;
use crate::scenario::Op;
use mmsim_arch::Entry;
use mmsim_traces::{Access, Object};
use std::hash::{Hash, Hasher};

/// Most tables one step's footprint names.
const MAX_TABLES: usize = 5;

/// Whether no other actor can take a step that races with CPU `cpu`'s next step, whose
/// footprint is `fp` (see the module doc), under the (mutated) rule.
pub(super) fn races_with_none(eng: &Engine, cpu: u8, fp: Footprint, mutant: Mutant) -> bool {
    if let Some((mm, read)) = mm_lock_of(fp) {
        return no_other_cpu_reaches_mm(eng, cpu, mm, read, mutant);
    }
    if is_fault_mutex(fp) {
        return no_other_cpu_can_fault(eng, cpu);
    }
    if let Some(mm) = own_mm_flush(eng, cpu) {
        return no_other_cpu_reaches_mm(eng, cpu, mm, false, mutant)
            && eng.state.k.cpus.iter().all(|c| c.ipi_flush & (1 << mm) == 0);
    }
    let owners_matter = mutant != Mutant::AloneIgnoresOwners;
    let Some(tables) = tables_of(fp) else { return false };
    let k = &eng.state.k;
    let env = eng.env;
    let scenario = &env.scenario;
    let ncpus = env.ncpus();
    // what the other CPUs can still do
    let (mut may_share, mut may_map) = (false, false);
    for (c, p) in eng.state.progs.iter().enumerate().take(ncpus) {
        if c == cpu as usize || p.pending.is_none() {
            continue;
        }
        let ops = scenario.cpus[c].1.get(p.next_op as usize..).unwrap_or(&[]);
        for op in ops {
            match op {
                Op::TempRef { .. } | Op::PunchHole { .. } => return false,
                Op::Fault { .. }
                | Op::Access { .. }
                | Op::GupSlow { .. }
                | Op::GupFast { .. }
                | Op::Fork { .. } => may_share = true,
                Op::MapFile { .. } | Op::MapAnon { .. } | Op::MmapFixed { .. } => may_map = true,
                Op::MadviseDontneed { .. }
                | Op::Munmap { .. }
                | Op::Mprotect { .. }
                | Op::ExitMmap => {}
            }
        }
    }
    let shifts = PfnShifts::of(env.arch);
    for &pfn in tables.iter().flatten() {
        let Some(f) = k.mem.frame(pfn) else { return false };
        if f.state != FrameState::Allocated || f.queued.is_some() {
            return false;
        }
        if may_share && (may_map || shareable(eng, cpu, f.owners)) {
            return false;
        }
        for (c, p) in eng.state.progs.iter().enumerate().take(ncpus) {
            if c == cpu as usize || p.pending.is_none() {
                continue;
            }
            let mm = scenario.cpus[c].0;
            if (owners_matter && f.owners & (1 << mm) != 0) || mentions(p, pfn, &shifts) {
                return false;
            }
        }
        if k.rcu.callbacks.iter().any(|cb| mentions(cb, pfn, &shifts)) {
            return false;
        }
    }
    true
}

/// The mm whose lock or VMA tree `fp` touches, if that is all it touches, and whether the
/// step takes or releases `mmap_lock` for read.
fn mm_lock_of(fp: Footprint) -> Option<(u8, bool)> {
    let mut items = fp.items();
    let (Some(it), None) = (items.next(), items.next()) else { return None };
    match it.key {
        Key::Obj(Object::MmapLock(mm)) => Some((mm, !it.write)),
        Key::Obj(Object::PageTableLock(mm) | Object::Vmas(mm)) => Some((mm, false)),
        _ => None,
    }
}

/// The mm of CPU `cpu`'s next step if it is a TLB flush of that CPU's own mm (the flush of
/// `flush_tlb_mm_range()` and its kin on this CPU, or the broadcast instruction): every
/// operation flushes only its own mm (a fork its own, the parent) but the hole punch, which
/// unmaps every mapping of the file, and the PFN walker, counted as reaching everything.
fn own_mm_flush(eng: &Engine, cpu: u8) -> Option<u8> {
    let p = eng.state.progs.get(cpu as usize)?;
    let pending = p.pending?;
    if pending.access != Access::TlbFlush {
        return None;
    }
    let (mm, ops) = &eng.env.scenario.cpus[cpu as usize];
    match ops.get(p.next_op as usize)? {
        Op::TempRef { .. } | Op::PunchHole { .. } => None,
        _ => Some(*mm),
    }
}

/// Whether `fp` is a step on one `hugetlb_fault_mutex_table` entry and nothing else.
fn is_fault_mutex(fp: Footprint) -> bool {
    let mut items = fp.items();
    matches!(
        (items.next(), items.next()),
        (Some(Item { key: Key::Obj(Object::FaultMutex(_)), .. }), None)
    )
}

/// Whether an operation may run `hugetlb_fault()`, the one taker of the fault mutexes: a
/// fault, a user access (which faults on a miss), GUP (the slow path faults). Every operation
/// is named: a new one does not compile until it says.
fn may_fault(op: &Op) -> bool {
    match op {
        Op::Access { .. } | Op::Fault { .. } | Op::GupSlow { .. } | Op::GupFast { .. } => true,
        // not known not to (the PFN walker and the hole punch count as reaching everything)
        Op::TempRef { .. } | Op::PunchHole { .. } => true,
        Op::MapFile { .. }
        | Op::MapAnon { .. }
        | Op::MmapFixed { .. }
        | Op::Munmap { .. }
        | Op::Mprotect { .. }
        | Op::MadviseDontneed { .. }
        | Op::Fork { .. }
        | Op::ExitMmap => false,
    }
}

/// The CPUs but `cpu` with work left: each one's mm and its remaining operations (the one
/// running included).
fn others_with_work<'a>(eng: &'a Engine, cpu: u8) -> impl Iterator<Item = (u8, &'a [Op])> + 'a {
    let scenario = &eng.env.scenario;
    let progs = eng.state.progs.iter().enumerate().take(eng.env.ncpus());
    progs.filter(move |&(c, p)| c != cpu as usize && p.pending.is_some()).map(|(c, p)| {
        let (mm, ops) = &scenario.cpus[c];
        (*mm, ops.get(p.next_op as usize..).unwrap_or(&[]))
    })
}

/// Whether no CPU but `cpu` with work left may still take a fault mutex.
fn no_other_cpu_can_fault(eng: &Engine, cpu: u8) -> bool {
    others_with_work(eng, cpu).all(|(_, ops)| !ops.iter().any(may_fault))
}

/// How an operation takes its own mm's `mmap_lock`: for read only (a fault, GUP, `madvise`;
/// the per-VMA lock a fault may take instead reads neither the lock word nor what a reader
/// changes), or for write as well (or not known to be read only). Every operation is named:
/// a new one does not compile until it says.
fn mmap_lock_mode(op: &Op) -> Held {
    match op {
        Op::Access { .. }
        | Op::Fault { .. }
        | Op::GupSlow { .. }
        | Op::GupFast { .. }
        | Op::MadviseDontneed { .. } => Held::Read,
        Op::MapFile { .. }
        | Op::MapAnon { .. }
        | Op::MmapFixed { .. }
        | Op::Munmap { .. }
        | Op::Mprotect { .. }
        | Op::Fork { .. }
        | Op::ExitMmap
        | Op::TempRef { .. }
        | Op::PunchHole { .. } => Held::Write,
    }
}

/// Whether no CPU but `cpu` with work left can race with a step on `mm`'s lock or VMA tree:
/// none is in `mm` (or, for a step that takes or releases `mmap_lock` for read, those in it
/// only ever take it for read) and none can reach into another mm (see the module doc).
fn no_other_cpu_reaches_mm(eng: &Engine, cpu: u8, mm: u8, read: bool, mutant: Mutant) -> bool {
    let sharers_matter = mutant != Mutant::AloneIgnoresMm;
    let writers_matter = mutant != Mutant::AloneIgnoresWriters;
    others_with_work(eng, cpu).all(|(own, ops)| {
        let in_mm = own == mm && sharers_matter;
        let readers =
            read && ops.iter().all(|op| mmap_lock_mode(op) == Held::Read || !writers_matter);
        (!in_mm || readers)
            && ops.iter().all(|op| match op {
                Op::TempRef { .. } | Op::PunchHole { .. } => false,
                Op::Fork { child } => *child != mm,
                _ => true,
            })
    })
}

/// The tables `fp` names, if it touches page tables only, writing nothing but ptlocks.
fn tables_of(fp: Footprint) -> Option<[Option<u64>; MAX_TABLES]> {
    if fp.is_global() || fp.is_nothing() {
        return None;
    }
    let mut out = [None; MAX_TABLES];
    for it in fp.items() {
        let pfn = match it.key {
            Key::PtLock(pfn) => pfn,
            Key::Entry { pfn, .. } | Key::Life(pfn) | Key::Owners(pfn) | Key::Refs(pfn)
                if !it.write =>
            {
                pfn
            }
            _ => return None,
        };
        if !out.contains(&Some(pfn)) {
            *out.iter_mut().find(|t| t.is_none())? = Some(pfn);
        }
    }
    Some(out)
}

/// Whether `huge_pmd_share()` could find a table reached by the mms in `owners`: some file's
/// `i_mmap` holds a VMA of one of them, and the running CPU does not hold that file's
/// `i_mmap_rwsem` for write (the scan takes it for read, for write before v5.7).
fn shareable(eng: &Engine, cpu: u8, owners: u8) -> bool {
    eng.state.k.files.iter().any(|file| {
        file.i_mmap_rwsem.writer != Some(cpu)
            && file.i_mmap.iter().any(|&(mm, _)| owners & (1 << mm) != 0)
    })
}

/// Where an entry that points to a table keeps the table's pfn, per level: `(raw >> shift) &
/// PFN_MASK` is the pfn.
struct PfnShifts {
    shifts: [u32; 8],
    n: usize,
}

/// Wide enough for any pfn the model allocates; narrower than any arch's address field, so
/// no attribute bit above the field is read as part of the pfn.
const PFN_MASK: u64 = (1 << 36) - 1;

impl PfnShifts {
    fn of(arch: &dyn mmsim_arch::Arch) -> Self {
        let mut p = PfnShifts { shifts: [0; 8], n: 1 };
        for level in 0..arch.levels().len() {
            let one = arch.encode(level, Entry::Table { pfn: 1 });
            let zero = arch.encode(level, Entry::Table { pfn: 0 });
            let shift = (one ^ zero).trailing_zeros();
            if !p.shifts[..p.n].contains(&shift) && p.n < p.shifts.len() {
                p.shifts[p.n] = shift;
                p.n += 1;
            }
        }
        p
    }

    /// Whether `word` is `pfn` or an entry value pointing to it (or could be: a word that
    /// only looks like one counts too).
    fn names(&self, word: u64, pfn: u64) -> bool {
        self.shifts[..self.n].iter().any(|&s| (word >> s) & PFN_MASK == pfn)
    }
}

/// Whether `state` holds `pfn` or an entry value pointing to it, in any 64-bit field: its
/// derived `Hash` is fed to [`Mentions`], which hashes nothing and looks at every word.
fn mentions<T: Hash>(state: &T, pfn: u64, shifts: &PfnShifts) -> bool {
    let mut m = Mentions { pfn, shifts, found: false };
    state.hash(&mut m);
    m.found
}

/// A [`Hasher`] that only notes whether a word it is fed names a table (see [`mentions`]).
/// Integers reach it by `write_u64` (a `u64` field), and by `write` in 8-byte words (slices
/// of `u64`, `usize`); narrower integers cannot hold a pfn the model allocates.
struct Mentions<'a> {
    pfn: u64,
    shifts: &'a PfnShifts,
    found: bool,
}

impl Hasher for Mentions<'_> {
    fn finish(&self) -> u64 {
        0
    }

    fn write(&mut self, bytes: &[u8]) {
        for w in bytes.chunks_exact(8) {
            let word = u64::from_le_bytes(w.try_into().expect("8 bytes"));
            self.found |= self.shifts.names(word, self.pfn);
        }
    }

    fn write_u64(&mut self, word: u64) {
        self.found |= self.shifts.names(word, self.pfn);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_pointing_to_a_table_names_it_on_every_arch() {
        for &arch in mmsim_arch::formats() {
            let shifts = PfnShifts::of(arch);
            for level in 0..arch.levels().len() {
                for pfn in [1u64, 7, 0x1003, (4u64 << 30) >> arch.page_shift(), (1 << 30) - 1] {
                    let raw = arch.encode(level, Entry::Table { pfn });
                    assert!(shifts.names(raw, pfn), "{} level {level} pfn {pfn:#x}", arch.name());
                    assert!(shifts.names(pfn, pfn), "the pfn itself");
                }
            }
        }
    }

    #[test]
    fn a_pfn_anywhere_in_a_state_is_seen() {
        #[derive(Hash)]
        struct Held {
            a: u16,
            list: Vec<u64>,
            ptr: Option<(u64, u8)>,
        }
        let shifts = PfnShifts { shifts: [0, 12, 0, 0, 0, 0, 0, 0], n: 2 };
        let held = |list: Vec<u64>, ptr| Held { a: 9, list, ptr };
        assert!(mentions(&held(vec![3, 42], None), 42, &shifts), "in a slice");
        assert!(mentions(&held(vec![], Some((42, 1))), 42, &shifts), "in an option");
        assert!(mentions(&held(vec![(42 << 12) | 0x67], None), 42, &shifts), "an entry value");
        assert!(!mentions(&held(vec![3, 41], Some((43, 42))), 42, &shifts), "a u8 is no pfn");
    }
}
