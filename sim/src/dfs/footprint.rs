//! Step footprints for the bounded search's partial-order reduction: what a step declares it
//! touches ([`footprint`], from the engine's pending access) and whether two steps of different
//! actors may not commute ([`dependent`]). Conservative: interrupt and RCU actors, allocation
//! and free, IPIs, TLB flushes and TLB-mediated user accesses depend on everything; page-table
//! entries and pages depend on each other unless both only read.

use crate::kernel::ctx::Pending;
use mmsim_traces::{Access, Actor, Object};

/// What a step may touch, as far as independence is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Res {
    /// Anything: dependent with every step.
    Global,
    /// Only the actor's own state.
    Nothing,
    /// Page-table memory: one page's entries, descriptor and ptlock, or (`None`) any page's.
    Pt(Option<u64>),
    /// One object (a lock word, a data page, a VMA tree, a CPU's interrupt state).
    Obj(Object),
}

/// A step's footprint: what it touches and whether it may change it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Footprint {
    pub res: Res,
    pub write: bool,
}

pub(crate) const GLOBAL: Footprint = Footprint { res: Res::Global, write: true };

/// The footprint of `actor`'s next step, from its declared access (`None` for interrupt and
/// RCU actors, which are global).
pub fn footprint(actor: Actor, pending: Option<Pending>) -> Footprint {
    let (Actor::Cpu(cpu), Some(p)) = (actor, pending) else { return GLOBAL };
    use Access::*;
    match p.access {
        // the allocator, IPIs, flushes and grace periods reach beyond the declared object
        Alloc | Free | QueueFree | IpiSend | IpiWait | IpiHandle | TlbFlush | GracePeriod => {
            return GLOBAL
        }
        Local => return Footprint { res: Res::Nothing, write: false },
        _ => {}
    }
    let reads = matches!(p.access, Read | LockRead | UnlockRead);
    match p.object {
        // reading an entry also reads its page's descriptor; writing one changes the owners
        // of the table it points to, wherever that is
        Object::Entry { .. } => Footprint { res: Res::Pt(None), write: p.access != Read },
        Object::Table(pfn) => Footprint { res: Res::Pt(Some(pfn)), write: p.access != Read },
        // lock and unlock check the page is alive
        Object::PtLock(pfn) => Footprint { res: Res::Pt(Some(pfn)), write: true },
        // a trylock is declared as a read of the lock word but may take it
        Object::MmapLock(_)
        | Object::PageTableLock(_)
        | Object::IMmapRwsem(_)
        | Object::FaultMutex(_) => {
            Footprint { res: Res::Obj(p.object), write: !matches!(p.access, LockRead | UnlockRead) }
        }
        // a VMA's lock lives and dies with the VMA
        Object::VmaLock { mm, .. } => Footprint {
            res: Res::Obj(Object::Vmas(mm)),
            write: !matches!(p.access, LockRead | UnlockRead),
        },
        // lock_vma_under_rcu() reads the VMA tree and mm_lock_seq outside mmap_lock, and
        // mmap_write_unlock() ends every VMA write lock: no narrower footprint is sound
        Object::VmLock { .. } => GLOBAL,
        Object::Vmas(_) | Object::Page(_) => Footprint { res: Res::Obj(p.object), write: !reads },
        Object::Cpu(n) if matches!(p.access, IrqDisable | IrqEnable) => {
            Footprint { res: Res::Obj(Object::Cpu(n)), write: true }
        }
        Object::Rcu if matches!(p.access, RcuReadLock | RcuReadUnlock) => {
            Footprint { res: Res::Obj(Object::Cpu(cpu)), write: true }
        }
        _ => GLOBAL,
    }
}

/// Whether two steps of different actors may not commute.
pub fn dependent(a: Footprint, b: Footprint) -> bool {
    match (a.res, b.res) {
        (Res::Global, _) | (_, Res::Global) => true,
        (Res::Nothing, _) | (_, Res::Nothing) => false,
        (Res::Pt(x), Res::Pt(y)) => (x.is_none() || y.is_none() || x == y) && (a.write || b.write),
        (Res::Obj(x), Res::Obj(y)) => x == y && (a.write || b.write),
        _ => false,
    }
}

/// Whether every step dependent with `b` is also dependent with `a` (and `a` with `b`): then
/// whatever happened before a step dependent with `b` happened before `a` too.
pub fn covers(a: Footprint, b: Footprint) -> bool {
    match (a.res, b.res) {
        (Res::Global, _) => true,
        (Res::Nothing, _) | (_, Res::Nothing) | (_, Res::Global) => false,
        (Res::Pt(None), Res::Pt(_)) => a.write,
        (x, y) => a.write && x == y,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(object: Object, access: Access) -> Footprint {
        footprint(Actor::Cpu(0), Some(Pending { func: "f", object, access }))
    }

    #[test]
    fn independence_follows_the_declared_accesses() {
        let e = |index| Object::Entry { pfn: 0x1003, index };
        // reads commute; a write does not commute with a read of any entry
        assert!(!dependent(fp(e(1), Access::Read), fp(e(2), Access::Read)));
        assert!(dependent(fp(e(1), Access::Write), fp(e(2), Access::Read)));
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
        // the allocator and interrupt actors touch everything
        let alloc = fp(Object::Table(0x1005), Access::Alloc);
        assert!(dependent(alloc, fp(Object::MmapLock(1), Access::LockRead)));
        assert!(dependent(footprint(Actor::Irq(1), None), fp(e(1), Access::Read)));
        assert!(!dependent(fp(e(1), Access::Local), fp(e(2), Access::Write)));
    }

    #[test]
    fn a_covering_step_is_dependent_with_whatever_the_covered_one_is() {
        let e = |index| Object::Entry { pfn: 0x1003, index };
        let w = fp(Object::Table(0x1003), Access::Write);
        let r = fp(Object::Table(0x1003), Access::Read);
        assert!(covers(w, r) && covers(w, w) && !covers(r, w));
        assert!(covers(fp(e(1), Access::Write), w), "any entry write covers one table");
        assert!(!covers(w, fp(e(1), Access::Read)), "one table does not cover all");
        assert!(covers(footprint(Actor::Rcu, None), fp(Object::MmapLock(0), Access::LockRead)));
        assert!(!covers(fp(e(1), Access::Local), fp(e(1), Access::Local)));
    }
}
