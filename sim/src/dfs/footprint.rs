//! Step footprints for the bounded search's partial-order reduction: what a step touches
//! ([`footprint`], from the engine's pending access and, for an entry, the value it holds in
//! the state where the step is about to run) and whether two steps of different actors may not
//! commute ([`dependent`]).
//!
//! A footprint is a short list of [`Key`]s, each read or written. Two steps are dependent when
//! they touch an overlapping key and one of them writes it. The keys follow what the step's
//! `Ctx` access and the checkers it runs really read and write:
//!
//! * an entry read of (table, index): that entry, the table's lifecycle (KASAN's liveness
//!   check) and owners (the wrong-mm check), and the owners of the table the entry points to
//!   (what `judge_foreign_walk()` reads to call it a stale walk or a wrong mm);
//! * an entry write: that entry (written), the table's lifecycle and owners (read: the check
//!   after the store, the owners it hands on) and the owners of the tables the old and the new
//!   value point to (written: they lose or gain those owners, the old one its unlink site);
//! * a table's descriptor: `Share`/`Unshare` and `Read` its references (and its lifecycle, read);
//!   a `Write` (a reference taken or dropped) also its lifecycle; `QueueFree` its lifecycle;
//! * a split ptlock: lock and unlock its word and read the table's lifecycle; `LockFree` the word;
//! * the table allocator hands out the last freed page (a LIFO list): `Alloc` and `Free` both
//!   write the allocator, and the page's lifecycle, owners, references and ptlock;
//! * the TLBs and the mms' flush times are one key ([`Key::Tlbs`]): the search's state keeps
//!   only the order of fill and flush times, so every step that stamps one is ordered with
//!   every other (a TLB flush, the IPI wait that completes it, the IPI handler's flush, a user
//!   access filling its TLB);
//! * the IPI mailboxes and acknowledgements are one key ([`Key::Ipi`]): sending, waiting and
//!   handling; the handler on CPU n also reads CPU n's interrupt state (IRQs off delay it);
//! * a user access (TLB lookup, then the hardware walk) writes [`Key::Tlbs`] and reads every
//!   entry and descriptor ([`Key::AnyPt`]);
//! * data-page allocation, a page-cache lookup and the punch hole's release of
//!   `i_mmap_rwsem` (where it drops the file's pages) share one key ([`Key::PageCache`]);
//! * locks, VMA trees, data pages and a CPU's interrupt and RCU-reader state are one key each.
//!
//! Still global: the RCU actor and `call_rcu()` (a callback snapshots every CPU's quiescent
//! state), the per-VMA lock (`lock_vma_under_rcu()` reads the tree and `mm_lock_seq` outside
//! `mmap_lock`) and anything not listed. What is left out, as before: the VMA trees and page caches `judge_foreign_walk()`
//! reads to classify a foreign walk that found a leaf, and a report filed once per (kind,
//! object) by whichever of two reading steps comes first.

use crate::engine::Engine;
use crate::kernel::ctx::Pending;
use mmsim_traces::{Access, Actor, Object};

/// One thing a step may read or write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    /// Entry `index` of page-table page `pfn`.
    Entry { pfn: u64, index: u16 },
    /// A page-table page's lifecycle: allocated or freed, its generation, its entries as a
    /// whole (an allocation zeroes them).
    Life(u64),
    /// The mms that reach a page-table page (`Frame::owners`) and its unlink site.
    Owners(u64),
    /// Its references: refcount and `pt_share_count`.
    Refs(u64),
    /// Its split ptlock: the lock word and whether the lock lives.
    PtLock(u64),
    /// Every entry and every table's lifecycle and owners (the hardware walk and its checks).
    AnyPt,
    /// The page-table page allocator (its free list).
    TableAlloc,
    /// Every TLB and every mm's flush time.
    Tlbs,
    /// Every CPU's IPI mailbox and acknowledgement word.
    Ipi,
    /// The hugetlb page pool and every file's page cache.
    PageCache,
    /// One object: a lock word, a data page, a VMA tree, a CPU's interrupt and RCU state.
    Obj(Object),
}

/// A [`Key`] packed into one word, as footprints hold it (comparing two is one compare):
/// the key's kind in the top 4 bits, for [`Key::Obj`] the object's kind in the next 4, and
/// the pfns, indices and ids below, each in a field of its own, so that distinct keys are
/// distinct words and [`Code::key`] gives the key back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Code(u64);

/// Bits below the kinds: the payload.
const PAYLOAD_BITS: u32 = 56;
/// An entry's pfn sits above its 16-bit index: pfns below 2^40 (4 PiB of memory) fit.
const ENTRY_PFN_LIMIT: u64 = 1 << (PAYLOAD_BITS - 16);

const ENTRY: u64 = 1;
const LIFE: u64 = 2;
const OWNERS: u64 = 3;
const REFS: u64 = 4;
const PTLOCK: u64 = 5;
const ANY_PT: u64 = 6;
const TABLE_ALLOC: u64 = 7;
const TLBS: u64 = 8;
const IPI: u64 = 9;
const PAGE_CACHE: u64 = 10;
const OBJ: u64 = 11;

impl Code {
    const ANY_PT: Code = Code(ANY_PT << 60);

    /// The word for `key`; `None` for a pfn too large for its field (the caller then treats
    /// the step as touching everything, which is always sound).
    fn of(key: Key) -> Option<Code> {
        let word = |kind: u64, sub: u64, payload: u64| {
            (payload < 1 << PAYLOAD_BITS)
                .then_some(Code(kind << 60 | sub << PAYLOAD_BITS | payload))
        };
        let entry =
            |pfn: u64, index: u16| (pfn < ENTRY_PFN_LIMIT).then_some(pfn << 16 | u64::from(index));
        match key {
            Key::Entry { pfn, index } => word(ENTRY, 0, entry(pfn, index)?),
            Key::Life(pfn) => word(LIFE, 0, pfn),
            Key::Owners(pfn) => word(OWNERS, 0, pfn),
            Key::Refs(pfn) => word(REFS, 0, pfn),
            Key::PtLock(pfn) => word(PTLOCK, 0, pfn),
            Key::AnyPt => word(ANY_PT, 0, 0),
            Key::TableAlloc => word(TABLE_ALLOC, 0, 0),
            Key::Tlbs => word(TLBS, 0, 0),
            Key::Ipi => word(IPI, 0, 0),
            Key::PageCache => word(PAGE_CACHE, 0, 0),
            Key::Obj(o) => {
                let (sub, payload) = match o {
                    Object::MmapLock(mm) => (0, u64::from(mm)),
                    Object::PageTableLock(mm) => (1, u64::from(mm)),
                    Object::VmaLock { mm, vma } => (2, u64::from(mm) << 16 | u64::from(vma)),
                    Object::VmLock { mm, vma } => (3, u64::from(mm) << 16 | u64::from(vma)),
                    Object::IMmapRwsem(f) => (4, u64::from(f)),
                    Object::FaultMutex(h) => (5, u64::from(h)),
                    Object::PtLock(pfn) => (6, pfn),
                    Object::Table(pfn) => (7, pfn),
                    Object::Entry { pfn, index } => (8, entry(pfn, index)?),
                    Object::Page(pfn) => (9, pfn),
                    Object::Cpu(c) => (10, u64::from(c)),
                    Object::Tlb(c) => (11, u64::from(c)),
                    Object::Rcu => (12, 0),
                    Object::Vmas(mm) => (13, u64::from(mm)),
                };
                word(OBJ, sub, payload)
            }
        }
    }

    /// The key this word stands for.
    fn key(self) -> Key {
        let payload = self.0 & ((1 << PAYLOAD_BITS) - 1);
        let (pfn, index) = (payload >> 16, payload as u16);
        let (byte, half) = (payload as u8, payload as u16);
        match self.0 >> 60 {
            ENTRY => Key::Entry { pfn, index },
            LIFE => Key::Life(payload),
            OWNERS => Key::Owners(payload),
            REFS => Key::Refs(payload),
            PTLOCK => Key::PtLock(payload),
            ANY_PT => Key::AnyPt,
            TABLE_ALLOC => Key::TableAlloc,
            TLBS => Key::Tlbs,
            IPI => Key::Ipi,
            PAGE_CACHE => Key::PageCache,
            _ => Key::Obj(match (self.0 >> PAYLOAD_BITS) & 0xf {
                0 => Object::MmapLock(byte),
                1 => Object::PageTableLock(byte),
                2 => Object::VmaLock { mm: (payload >> 16) as u8, vma: half },
                3 => Object::VmLock { mm: (payload >> 16) as u8, vma: half },
                4 => Object::IMmapRwsem(byte),
                5 => Object::FaultMutex(half),
                6 => Object::PtLock(payload),
                7 => Object::Table(payload),
                8 => Object::Entry { pfn, index },
                9 => Object::Page(payload),
                10 => Object::Cpu(byte),
                11 => Object::Tlb(byte),
                12 => Object::Rcu,
                _ => Object::Vmas(byte),
            }),
        }
    }

    /// Whether the key is an entry, a table's lifecycle or owners, or every one of them.
    #[inline]
    fn in_any_pt(self) -> bool {
        matches!(self.0 >> 60, ENTRY | LIFE | OWNERS | ANY_PT)
    }

    /// Whether the two keys name overlapping state.
    #[inline]
    fn overlaps(self, other: Code) -> bool {
        self == other
            || (self == Code::ANY_PT && other.in_any_pt())
            || (other == Code::ANY_PT && self.in_any_pt())
    }

    /// Whether every key overlapping `other` overlaps this one.
    #[inline]
    fn contains(self, other: Code) -> bool {
        self == other || (self == Code::ANY_PT && other.in_any_pt())
    }
}

/// One key, read or written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Item {
    pub key: Key,
    pub write: bool,
}

/// The most keys one step touches (a table allocation or free).
const MAX: usize = 5;

/// A step's footprint: what it touches and whether it may change it. The keys are packed
/// words ([`Code`]), the unused ones zero, so that equal footprints are equal values.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Footprint {
    codes: [Code; MAX],
    /// Bit i set: key i is written.
    writes: u8,
    /// Keys used; [`GLOBAL_N`] for a step that touches anything.
    n: u8,
}

/// [`Footprint::n`] of the global footprint.
const GLOBAL_N: u8 = u8::MAX;

/// Anything: dependent with every step.
pub(crate) const GLOBAL: Footprint = Footprint { codes: [Code(0); MAX], writes: 0, n: GLOBAL_N };

/// Only the actor's own state: independent of every step.
pub const NOTHING: Footprint = Footprint { codes: [Code(0); MAX], writes: 0, n: 0 };

impl std::fmt::Debug for Footprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_global() {
            return f.write_str("Global");
        }
        f.debug_list().entries(self.items()).finish()
    }
}

impl Footprint {
    fn of(list: &[(Key, bool)]) -> Self {
        let mut f = NOTHING;
        for &(key, write) in list {
            f.add(key, write);
        }
        f
    }

    /// Add a key; the same key twice (an entry pointing into its own table) keeps the write.
    /// A key with a pfn too large to pack makes the footprint global.
    fn add(&mut self, key: Key, write: bool) {
        if self.is_global() {
            return;
        }
        let Some(code) = Code::of(key) else {
            *self = GLOBAL;
            return;
        };
        let len = usize::from(self.n);
        match self.codes[..len].iter().position(|&c| c == code) {
            Some(i) => self.writes |= u8::from(write) << i,
            None => {
                self.codes[len] = code;
                self.writes |= u8::from(write) << len;
                self.n += 1;
            }
        }
    }

    /// The packed keys and whether each is written (none for the global footprint).
    #[inline]
    fn coded(&self) -> impl Iterator<Item = (Code, bool)> + '_ {
        let n = if self.is_global() { 0 } else { usize::from(self.n) };
        self.codes[..n].iter().enumerate().map(|(i, &c)| (c, self.writes & (1 << i) != 0))
    }

    /// The items (none for the global footprint, which is dependent with everything).
    pub fn items(&self) -> impl Iterator<Item = Item> + '_ {
        self.coded().map(|(c, write)| Item { key: c.key(), write })
    }

    /// Whether the step may touch anything.
    #[inline]
    pub fn is_global(&self) -> bool {
        self.n == GLOBAL_N
    }

    /// Whether the step touches only its actor's own state.
    pub fn is_nothing(&self) -> bool {
        self.n == 0
    }
}

/// A deliberately broken dependence relation, for the soundness test to kill
/// (`tests/dfs_soundness.rs`): the search must then miss a violation brute force finds.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Mutant {
    /// The relation as documented.
    #[default]
    None,
    /// An entry read does not read its table's lifecycle and owners: it commutes with the
    /// table's unlink, queued free and free.
    ReadIgnoresTable,
    /// The relation as documented, but the search's rule for steps nothing races with
    /// ([`super::alone`]) does not ask whether another CPU's mm reaches the table.
    AloneIgnoresOwners,
    /// The same rule, for a lock of one mm, does not ask whether another CPU is in the mm.
    AloneIgnoresMm,
    /// The same rule, for `mmap_lock` taken for read, counts every operation as a reader.
    AloneIgnoresWriters,
}

/// The footprint of `actor`'s next step in the state `eng` is in.
pub fn footprint(eng: &Engine, actor: Actor) -> Footprint {
    footprint_with(eng, actor, Mutant::None)
}

/// [`footprint`] under a (mutated) relation.
pub fn footprint_with(eng: &Engine, actor: Actor, mutant: Mutant) -> Footprint {
    match actor {
        Actor::Cpu(cpu) => match eng.pending_of(actor) {
            Some(p) => of_pending(cpu, p, |pfn, index| child(eng, pfn, index), mutant),
            None => GLOBAL,
        },
        Actor::Irq(c) => irq(c),
        _ => GLOBAL,
    }
}

/// The footprint of interrupt actor `Irq(c)`'s step, whenever it can run: the IPI handler
/// takes the mailbox, flushes CPU c's TLB and acknowledges to the senders; it can only run
/// while CPU c has IRQs on.
pub fn irq(c: u8) -> Footprint {
    Footprint::of(&[(Key::Ipi, true), (Key::Tlbs, true), (Key::Obj(Object::Cpu(c)), false)])
}

/// The table entry (`pfn`, `index`) points to now, if it points to one.
fn child(eng: &Engine, pfn: u64, index: u16) -> Option<u64> {
    let mem = &eng.state.k.mem;
    let p = mem.ptr(pfn, index as usize, 0);
    match eng.env.arch.decode(p.level as usize, mem.load(p)) {
        Ok(mmsim_arch::Entry::Table { pfn }) => Some(pfn),
        _ => None,
    }
}

/// The footprint of CPU `cpu`'s declared access `p`; `child` gives the table an entry points
/// to in the state the step is about to run in.
pub fn of_pending(
    cpu: u8,
    p: Pending,
    child: impl Fn(u64, u16) -> Option<u64>,
    mutant: Mutant,
) -> Footprint {
    use Access::*;
    use Key::*;
    let reads = matches!(p.access, Read | LockRead | UnlockRead);
    match (p.object, p.access) {
        (_, Local) => NOTHING,
        // one key each for the IPI words and for TLBs and flush times (see the module doc)
        (_, IpiSend) => Footprint::of(&[(Ipi, true)]),
        (_, IpiWait) => Footprint::of(&[(Ipi, true), (Tlbs, true)]),
        (_, TlbFlush) => Footprint::of(&[(Tlbs, true)]),
        // a user access: TLB lookup and fill, the hardware walk and the stale-TLB check
        (Object::Tlb(_), Read) => Footprint::of(&[(Tlbs, true), (AnyPt, false)]),
        (Object::Entry { pfn, index }, Read) => {
            let mut f = Footprint::of(&[(Entry { pfn, index }, false)]);
            if mutant != Mutant::ReadIgnoresTable {
                f.add(Life(pfn), false);
                f.add(Owners(pfn), false);
            }
            if let Some(c) = child(pfn, index) {
                f.add(Owners(c), false);
            }
            f
        }
        (Object::Entry { pfn, index }, Write) => {
            let mut f = Footprint::of(&[
                (Entry { pfn, index }, true),
                (Life(pfn), false),
                (Owners(pfn), false),
            ]);
            for c in [child(pfn, index), p.link].into_iter().flatten() {
                f.add(Owners(c), true);
            }
            f
        }
        (Object::Table(pfn), Alloc | Free) => Footprint::of(&[
            (TableAlloc, true),
            (Life(pfn), true),
            (Owners(pfn), true),
            (Refs(pfn), true),
            (PtLock(pfn), true),
        ]),
        (Object::Table(pfn), QueueFree) => Footprint::of(&[(Life(pfn), true)]),
        (Object::Table(pfn), Read) => Footprint::of(&[(Refs(pfn), false), (Life(pfn), false)]),
        (Object::Table(pfn), Share | Unshare) => {
            Footprint::of(&[(Refs(pfn), true), (Life(pfn), false)])
        }
        // get_page_unless_zero(), or a put_page() that leaves references (and may mark the
        // page pending free)
        (Object::Table(pfn), Write) => Footprint::of(&[(Refs(pfn), true), (Life(pfn), true)]),
        (Object::PtLock(pfn), LockFree) => Footprint::of(&[(PtLock(pfn), true)]),
        // lock and unlock check the page and its lock are alive
        (Object::PtLock(pfn), _) => Footprint::of(&[(PtLock(pfn), true), (Life(pfn), false)]),
        // hugetlbfs_punch_hole() drops the file's pages as it releases i_mmap_rwsem
        (Object::IMmapRwsem(_), UnlockWrite) => {
            Footprint::of(&[(Obj(p.object), true), (PageCache, true)])
        }
        // a trylock is declared as a read of the lock word but may take it
        (
            Object::MmapLock(_)
            | Object::PageTableLock(_)
            | Object::IMmapRwsem(_)
            | Object::FaultMutex(_),
            _,
        ) => Footprint::of(&[(Obj(p.object), !matches!(p.access, LockRead | UnlockRead))]),
        // a VMA's lock lives and dies with the VMA
        (Object::VmaLock { mm, .. }, _) => {
            Footprint::of(&[(Obj(Object::Vmas(mm)), !matches!(p.access, LockRead | UnlockRead))])
        }
        // lock_vma_under_rcu() reads the VMA tree and mm_lock_seq outside mmap_lock, and
        // mmap_write_unlock() ends every VMA write lock: no narrower footprint is sound
        (Object::VmLock { .. }, _) => GLOBAL,
        // data-page allocation takes the pool's next page and may enter it in the page cache;
        // hugetlb_no_page() finds a cached page (declared as a read of it) in the page cache
        (Object::Page(_), Alloc) => Footprint::of(&[(Obj(p.object), true), (PageCache, true)]),
        (Object::Page(_), Read) => Footprint::of(&[(Obj(p.object), false), (PageCache, false)]),
        (Object::Vmas(_) | Object::Page(_), _) => Footprint::of(&[(Obj(p.object), !reads)]),
        (Object::Cpu(n), IrqDisable | IrqEnable) => Footprint::of(&[(Obj(Object::Cpu(n)), true)]),
        (Object::Rcu, RcuReadLock | RcuReadUnlock) => {
            Footprint::of(&[(Obj(Object::Cpu(cpu)), true)])
        }
        _ => GLOBAL,
    }
}

/// Whether two steps of different actors may not commute.
pub fn dependent(a: Footprint, b: Footprint) -> bool {
    if a.is_global() || b.is_global() {
        return true;
    }
    // reads commute (the search asks this for every sleeping step at every node)
    if a.writes | b.writes == 0 {
        return false;
    }
    let (a_keys, b_keys) = (&a.codes[..usize::from(a.n)], &b.codes[..usize::from(b.n)]);
    a_keys.iter().enumerate().any(|(i, &x)| {
        let xw = a.writes & (1 << i) != 0;
        b_keys.iter().enumerate().any(|(j, &y)| (xw || b.writes & (1 << j) != 0) && x.overlaps(y))
    })
}

/// Whether every step dependent with `b` is also dependent with `a`, and `a` with `b`: then
/// whatever happened before a step dependent with `b` happened before `a` too.
pub fn covers(a: Footprint, b: Footprint) -> bool {
    if a.is_global() {
        return true;
    }
    if b.is_global() || b.is_nothing() {
        return false;
    }
    // each key of b lies in one of a's, written there if b only reads it
    dependent(a, b)
        && b.coded().all(|(y, yw)| a.coded().any(|(x, xw)| x.contains(y) && (xw || !yw)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(object: Object, access: Access) -> Footprint {
        fpl(object, access, None, None)
    }

    /// With the entry pointing to table `child` and, for a write, the new value to `link`.
    fn fpl(object: Object, access: Access, child: Option<u64>, link: Option<u64>) -> Footprint {
        let p = Pending { func: "f", object, access, link };
        of_pending(0, p, |_, _| child, Mutant::None)
    }

    #[test]
    fn independence_follows_the_declared_accesses() {
        let e = |index| Object::Entry { pfn: 0x1003, index };
        // reads commute; a write commutes with reads of other entries only
        assert!(!dependent(fp(e(1), Access::Read), fp(e(2), Access::Read)));
        assert!(!dependent(fp(e(1), Access::Write), fp(e(2), Access::Read)));
        assert!(dependent(fp(e(1), Access::Write), fp(e(1), Access::Read)));
        let other = Object::Entry { pfn: 0x1005, index: 1 };
        assert!(!dependent(fp(e(1), Access::Write), fp(other, Access::Write)));
        // an entry write changes the owners of the tables it unlinks and links: reads of
        // their entries depend on it, and so does a read of an entry pointing to them
        let inner = Object::Entry { pfn: 0x1004, index: 7 };
        let unlink = fpl(e(1), Access::Write, Some(0x1004), None);
        let link = fpl(e(1), Access::Write, None, Some(0x1004));
        for w in [unlink, link] {
            assert!(dependent(w, fp(inner, Access::Read)));
            assert!(dependent(w, fpl(other, Access::Read, Some(0x1004), None)));
            assert!(!dependent(w, fpl(other, Access::Read, Some(0x1006), None)));
        }
        // a table's free and allocation depend on reads of its entries and on each other
        let free = fp(Object::Table(0x1003), Access::Free);
        let alloc = fp(Object::Table(0x1006), Access::Alloc);
        assert!(dependent(free, fp(e(1), Access::Read)));
        assert!(dependent(free, alloc), "the allocator reuses the freed page");
        assert!(!dependent(alloc, fp(e(1), Access::Read)));
        assert!(dependent(fp(Object::Table(0x1003), Access::QueueFree), fp(e(1), Access::Read)));
        // sharer counts and ptlocks do not touch the entries
        assert!(!dependent(fp(Object::Table(0x1003), Access::Unshare), fp(e(1), Access::Read)));
        let ptl = Object::PtLock(0x1003);
        assert!(!dependent(fp(ptl, Access::LockWrite), fp(e(1), Access::Write)));
        assert!(dependent(fp(ptl, Access::LockWrite), free));
        assert!(dependent(fp(ptl, Access::LockWrite), fp(ptl, Access::LockFree)));
        // rwsem readers commute, a writer does not
        let l = Object::MmapLock(0);
        assert!(!dependent(fp(l, Access::LockRead), fp(l, Access::UnlockRead)));
        assert!(dependent(fp(l, Access::LockRead), fp(l, Access::LockWrite)));
        assert!(!dependent(fp(l, Access::LockWrite), fp(Object::MmapLock(1), Access::LockWrite)));
        // a trylock is declared as a read but may take the lock
        assert!(dependent(fp(l, Access::Read), fp(l, Access::LockRead)));
        // a VMA's lock goes with its VMA tree
        let vl = Object::VmaLock { mm: 0, vma: 3 };
        assert!(dependent(fp(vl, Access::LockRead), fp(Object::Vmas(0), Access::Write)));
        // the per-VMA lock depends on mmap_lock (mm_lock_seq) and the tree: on everything
        let pv = fp(Object::VmLock { mm: 0, vma: 3 }, Access::Read);
        assert!(dependent(pv, fp(l, Access::UnlockWrite)));
        assert!(dependent(pv, fp(Object::Vmas(0), Access::Write)));
        // flushes, IPIs and user accesses: TLBs and mailboxes, not entries or locks
        let flush = fp(Object::Tlb(1), Access::TlbFlush);
        let user = fp(Object::Tlb(0), Access::Read);
        let send = fp(Object::Cpu(0), Access::IpiSend);
        let wait = fp(Object::Cpu(1), Access::IpiWait);
        assert!(
            !dependent(flush, fp(e(1), Access::Write)) && !dependent(send, fp(l, Access::LockRead))
        );
        assert!(dependent(flush, user) && dependent(wait, user) && dependent(irq(0), user));
        assert!(dependent(user, fp(e(1), Access::Write)) && dependent(user, free));
        assert!(!dependent(user, fp(e(1), Access::Read)));
        assert!(dependent(send, irq(0)) && dependent(wait, irq(0)));
        assert!(dependent(irq(0), fp(Object::Cpu(0), Access::IrqDisable)));
        assert!(!dependent(irq(0), fp(Object::Cpu(1), Access::IrqDisable)));
        assert!(!dependent(irq(0), fp(e(1), Access::Write)));
        // data-page allocation: the pool and the page cache
        let page = fp(Object::Page(0x40000), Access::Alloc);
        assert!(!dependent(page, fp(Object::MmapLock(1), Access::LockRead)));
        assert!(dependent(page, fp(Object::Page(0x40200), Access::Alloc)));
        assert!(dependent(page, fp(Object::Page(0x40200), Access::Read)));
        assert!(dependent(page, fp(Object::IMmapRwsem(0), Access::UnlockWrite)));
        assert!(!dependent(page, fp(Object::IMmapRwsem(0), Access::UnlockRead)));
        // a local step touches nothing
        assert!(!dependent(fp(e(1), Access::Local), fp(e(2), Access::Write)));
    }

    #[test]
    fn a_packed_key_gives_its_key_back_and_distinct_keys_stay_distinct() {
        let pfns = [0, 1, 0x1003, ENTRY_PFN_LIMIT - 1];
        let mut keys = vec![Key::AnyPt, Key::TableAlloc, Key::Tlbs, Key::Ipi, Key::PageCache];
        for &pfn in &pfns {
            for index in [0, 1, 511, 2047, u16::MAX] {
                keys.push(Key::Entry { pfn, index });
                keys.push(Key::Obj(Object::Entry { pfn, index }));
            }
            keys.extend([Key::Life(pfn), Key::Owners(pfn), Key::Refs(pfn), Key::PtLock(pfn)]);
            keys.extend([Object::PtLock(pfn), Object::Table(pfn), Object::Page(pfn)].map(Key::Obj));
        }
        for n in [0u8, 1, 7, u8::MAX] {
            let objs = [
                Object::MmapLock(n),
                Object::PageTableLock(n),
                Object::IMmapRwsem(n),
                Object::Cpu(n),
                Object::Tlb(n),
                Object::Vmas(n),
                Object::FaultMutex(u16::from(n) << 8 | 3),
                Object::VmaLock { mm: n, vma: 300 },
                Object::VmLock { mm: n, vma: 300 },
            ];
            keys.extend(objs.map(Key::Obj));
        }
        keys.push(Key::Obj(Object::Rcu));
        let codes: Vec<Code> = keys.iter().map(|&k| Code::of(k).expect("fits")).collect();
        for (i, (&k, &c)) in keys.iter().zip(&codes).enumerate() {
            assert_eq!(c.key(), k, "{k:?} round trip");
            for (j, &d) in codes.iter().enumerate() {
                assert_eq!(c == d, keys[i] == keys[j], "{k:?} vs {:?}", keys[j]);
            }
        }
        // a pfn too large for its field: the step touches everything
        let far = Object::Entry { pfn: ENTRY_PFN_LIMIT, index: 0 };
        assert!(fp(far, Access::Read).is_global());
        assert!(fp(Object::Table(1 << PAYLOAD_BITS), Access::Free).is_global());
        assert!(!fp(Object::Table((1 << PAYLOAD_BITS) - 1), Access::Free).is_global());
    }

    #[test]
    fn the_mutants_break_what_they_say() {
        let e = Object::Entry { pfn: 0x1003, index: 1 };
        let m = |object, access, mutant| {
            of_pending(0, Pending { func: "f", object, access, link: None }, |_, _| None, mutant)
        };
        let read = m(e, Access::Read, Mutant::ReadIgnoresTable);
        assert!(!dependent(fp(Object::Table(0x1003), Access::Free), read));
        assert!(!dependent(fp(Object::Table(0x1003), Access::QueueFree), read));
        let unlink =
            fpl(Object::Entry { pfn: 0x1002, index: 0 }, Access::Write, Some(0x1003), None);
        assert!(!dependent(unlink, read));
        assert!(dependent(fp(e, Access::Write), read), "still the entry itself");
    }

    #[test]
    fn a_covering_step_is_dependent_with_whatever_the_covered_one_is() {
        let e = |index| Object::Entry { pfn: 0x1003, index };
        let w = fp(e(1), Access::Write);
        let r = fp(e(1), Access::Read);
        assert!(covers(w, r) && covers(w, w) && !covers(r, w) && !covers(r, r));
        assert!(!covers(w, fp(e(2), Access::Read)), "one entry does not cover another");
        // a user access writes the TLBs and reads every table: it covers an entry read only
        // where it is dependent with it
        let user = fp(Object::Tlb(0), Access::Read);
        assert!(!covers(user, r), "not dependent with a read");
        assert!(!covers(user, w), "reads what a write writes");
        let flush = fp(Object::Tlb(1), Access::TlbFlush);
        assert!(covers(user, flush) && covers(flush, flush));
        let rcu = GLOBAL;
        assert!(covers(rcu, fp(Object::MmapLock(0), Access::LockRead)));
        assert!(!covers(fp(e(1), Access::Local), fp(e(1), Access::Local)));
        assert!(!covers(w, rcu));
    }

    /// `covers` is what the DPOR relies on: checked against `dependent` over a sample of
    /// footprints, for every third footprint.
    #[test]
    fn covers_agrees_with_dependent() {
        let objs = [
            (Object::Entry { pfn: 0x1003, index: 1 }, Access::Read),
            (Object::Entry { pfn: 0x1003, index: 1 }, Access::Write),
            (Object::Entry { pfn: 0x1004, index: 0 }, Access::Read),
            (Object::Table(0x1003), Access::Free),
            (Object::Table(0x1004), Access::Alloc),
            (Object::Table(0x1003), Access::Unshare),
            (Object::Table(0x1003), Access::Read),
            (Object::PtLock(0x1003), Access::LockWrite),
            (Object::PtLock(0x1003), Access::LockFree),
            (Object::Tlb(0), Access::Read),
            (Object::Tlb(0), Access::TlbFlush),
            (Object::Cpu(0), Access::IpiSend),
            (Object::Cpu(1), Access::IpiWait),
            (Object::Cpu(0), Access::IrqDisable),
            (Object::MmapLock(0), Access::LockRead),
            (Object::MmapLock(0), Access::LockWrite),
            (Object::Page(0x40000), Access::Write),
            (Object::Page(0x40000), Access::Read),
            (Object::Page(0x40200), Access::Alloc),
            (Object::IMmapRwsem(0), Access::UnlockWrite),
        ];
        let mut fps: Vec<Footprint> = Vec::new();
        for (o, a) in objs {
            for child in [None, Some(0x1004)] {
                fps.push(fpl(o, a, child, None));
                fps.push(fpl(o, a, child, Some(0x1003)));
            }
        }
        fps.extend([irq(0), irq(1), GLOBAL, NOTHING]);
        for &a in &fps {
            for &b in &fps {
                if !covers(a, b) {
                    continue;
                }
                assert!(dependent(a, b), "{a:?} covers {b:?}");
                for &c in &fps {
                    assert!(
                        !dependent(c, b) || dependent(c, a),
                        "{a:?} covers {b:?} but not {c:?}"
                    );
                }
            }
        }
    }
}
